/*
 * json_baseline.c - reads every line of a JSON-lines file with a bare JSON
 * parser and nothing else: the floor under any job that reads JSON, for
 * comparing `sluice bench` figures with (make bench prints them all).
 * Two parsers on the same bytes: jsmn's tokenizer (lenient, and what the
 * decoder used until it became strict) and sluice's own strict scanner
 * (engine/json.c: every byte checked, the top-level members listed).
 */
#define JSMN_STRICT
#define JSMN_STATIC
#include <jsmn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../engine/json.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: json_baseline FILE.jsonl\n");
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
    long n = 0, tokens = 0;
    double t0 = now();
    for (long off = 0; off < len;) {
        char *nl = memchr(buf + off, '\n', (size_t)(len - off));
        long end = nl ? nl - buf : len;
        jsmn_parser p;
        jsmn_init(&p);
        tokens += jsmn_parse(&p, buf + off, (size_t)(end - off), tok, 256);
        n++;
        off = end + 1;
    }
    double s = now() - t0;
    printf("jsmn: events=%ld tokens=%ld seconds=%.3f events_per_sec=%.0f\n", n, tokens, s,
           (double)n / s);

    struct json_members m = { 0 };
    struct json_error err;
    long valid = 0, members = 0;
    n = 0;
    t0 = now();
    for (long off = 0; off < len;) {
        char *nl = memchr(buf + off, '\n', (size_t)(len - off));
        long end = nl ? nl - buf : len;
        if (json_object_scan(buf + off, (size_t)(end - off), &m, &err) == 0) {
            valid++;
            members += (long)m.n;
        }
        n++;
        off = end + 1;
    }
    s = now() - t0;
    printf("sluice json scanner: events=%ld valid=%ld members=%ld seconds=%.3f "
           "events_per_sec=%.0f\n", n, valid, members, s, (double)n / s);
    json_members_free(&m);
    free(buf);
    return 0;
}
