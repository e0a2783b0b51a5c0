/*
 * jsmn_baseline.c - tokenizes every line of a JSON-lines file with jsmn and
 * nothing else: the floor under any job that reads JSON, for comparing
 * `sluice bench` figures with (make bench prints both).
 */
#define JSMN_STRICT
#define JSMN_STATIC
#include <jsmn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: jsmn_baseline FILE.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    static jsmntok_t tok[256];
    struct timespec a, b;
    long n = 0, tokens = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long off = 0; off < len;) {
        char *nl = memchr(buf + off, '\n', (size_t)(len - off));
        long end = nl ? nl - buf : len;
        jsmn_parser p;
        jsmn_init(&p);
        tokens += jsmn_parse(&p, buf + off, (size_t)(end - off), tok, 256);
        n++;
        off = end + 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("jsmn: events=%ld tokens=%ld seconds=%.3f events_per_sec=%.0f\n", n, tokens, s,
           (double)n / s);
    free(buf);
    return 0;
}
