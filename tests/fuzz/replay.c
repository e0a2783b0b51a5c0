/*
 * replay.c - runs a fuzz target's entry point over files, without
 * libFuzzer: `make check` links it with each target under ASan+UBSan and
 * replays the inputs the fuzzers once crashed on (tests/fuzz/regress/),
 * so a fixed finding stays fixed on every build, clang or not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *b = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4096;
            unsigned char *nb = realloc(b, cap);
            if (nb == NULL)
                break;
            b = nb;
        }
        size_t got = fread(b + *n, 1, cap - *n, f);
        *n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f) || *n == cap;
    fclose(f);
    if (bad) {
        free(b);
        return NULL;
    }
    return b;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        size_t n;
        unsigned char *b = slurp(argv[i], &n);
        if (b == NULL) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput(b, n);
        free(b);
        printf("replayed %s (%zu bytes)\n", argv[i], n);
    }
    return 0;
}
