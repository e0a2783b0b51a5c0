/*
 * diag.h - positioned diagnostics for the job-file loader.
 *
 * The loader never stops at the first problem: every error is recorded with
 * the 1-based line and column of the YAML node it concerns, and the caller
 * prints them all as "FILE:LINE:COL: message" (the format compilers use, so
 * editors can jump to them).  Line 0 means "the file as a whole".
 *
 * After DIAG_MAX errors further ones are counted but not stored, so a fuzzed
 * or badly broken file cannot make the loader allocate without bound.
 */
#ifndef SLUICE_DIAG_H
#define SLUICE_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include "arena.h"

#define DIAG_MAX 200

struct diag {
    int line, col;      /* 1-based; 0 when not tied to a place */
    char *msg;
};

struct diags {
    struct arena arena; /* owns msg strings */
    struct diag *v;     /* DIAG_MAX slots, allocated on first add */
    size_t n;           /* stored */
    size_t dropped;     /* counted beyond DIAG_MAX */
};

void diags_add(struct diags *d, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sorts by position (stable for equal positions). */
void diags_sort(struct diags *d);

/* Prints every stored diagnostic as "file:line:col: msg\n". */
void diags_print(const struct diags *d, const char *file, FILE *out);

size_t diags_count(const struct diags *d);
void diags_free(struct diags *d);

#endif
