/*
 * envsubst.h - ${VAR} substitution of the job-file text, with a position map.
 *
 * Environment variables are substituted before the YAML is parsed
 * (docs/configuration.md), so a variable may stand anywhere a value may,
 * flow mappings included.  That shifts columns, so the substitution also
 * records where each replaced span came from: envsubst_pos() turns a
 * position in the substituted text (what libyaml reports) back into the
 * line and column of the file the operator edits.  A position inside a
 * substituted value maps to its "${".
 *
 * Forms: ${NAME}, ${NAME:-default} (unset or empty -> default),
 * ${NAME:?message} (unset or empty -> error), and $$ for a literal '$'.
 * Comments (a '#' at line start or after a blank, outside quotes) are copied
 * verbatim, so a commented-out ${VAR:?...} does not fire.
 */
#ifndef SLUICE_ENVSUBST_H
#define SLUICE_ENVSUBST_H

#include <stddef.h>

#include "diag.h"

/* Looks a variable up; returns NULL when unset. */
typedef const char *(*envsubst_lookup_fn)(const char *name, void *ud);

struct envsubst_seg {
    size_t out_off, out_len;    /* span in the substituted text */
    size_t in_off, in_len;      /* the ${...} it replaced */
    int failed;                 /* the reference was reported as an error */
};

struct envsubst {
    char *text;                 /* substituted, NUL-terminated (malloc) */
    size_t len;
    struct envsubst_seg *segs;  /* in increasing offset order (malloc) */
    size_t nsegs, capsegs;
    const char *in;             /* original text, borrowed */
    size_t in_len;
    size_t *in_lines, n_in_lines;   /* byte offset of each line start */
    size_t *out_lines, n_out_lines;
    unsigned char *out_line_failed; /* per substituted line: holds a failed ref */
};

/*
 * Substitutes in[0..len).  Problems (unset ${X:?msg}, bad names, unclosed
 * "${") go to d with their positions; the text is still produced, with the
 * offending reference replaced by nothing.  Returns 0, or -ENOMEM.
 * `in` must stay valid until envsubst_free().
 */
int envsubst_run(struct envsubst *s, const char *in, size_t len,
                 envsubst_lookup_fn lookup, void *ud, struct diags *d);

/* Maps 0-based (line, column-in-characters) of the substituted text to a
 * 1-based line and column of the original text. */
void envsubst_pos(const struct envsubst *s, size_t line0, size_t col0,
                  int *line, int *col);

/* Maps a byte offset of the substituted text to a 1-based line and column
 * of the original text. */
void envsubst_out_pos(const struct envsubst *s, size_t out_off, int *line, int *col);

/* Maps a byte offset of the original text to a 1-based line and column. */
void envsubst_in_pos(const struct envsubst *s, size_t in_off,
                     int *line, int *col);

/* Whether a failed reference stands on 0-based line `line0` of the
 * substituted text.  The loader stays quiet about such lines: the
 * substitution error already explains them. */
int envsubst_line_failed(const struct envsubst *s, size_t line0);

void envsubst_free(struct envsubst *s);

#endif
