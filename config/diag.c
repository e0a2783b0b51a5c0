/*
 * diag.c - the diagnostics list (see diag.h).
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diags_add(struct diags *d, int line, int col, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (d->n >= DIAG_MAX) {
        d->dropped++;
        return;
    }
    if (d->v == NULL) {
        d->v = arena_alloc(&d->arena, DIAG_MAX * sizeof(*d->v));
        if (d->v == NULL) {
            d->dropped++;
            return;
        }
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *msg = arena_strdup(&d->arena, buf);
    if (msg == NULL) {
        d->dropped++;
        return;
    }
    d->v[d->n].line = line;
    d->v[d->n].col = col;
    d->v[d->n].msg = msg;
    d->n++;
}

static int pos_cmp(const struct diag *a, const struct diag *b)
{
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return 0;
}

void diags_sort(struct diags *d)
{
    /* insertion sort: stable, and n is at most DIAG_MAX */
    for (size_t i = 1; i < d->n; i++) {
        struct diag x = d->v[i];
        size_t j = i;
        while (j > 0 && pos_cmp(&d->v[j - 1], &x) > 0) {
            d->v[j] = d->v[j - 1];
            j--;
        }
        d->v[j] = x;
    }
}

void diags_print(const struct diags *d, const char *file, FILE *out)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s:%d:%d: %s\n", file, d->v[i].line, d->v[i].col,
                d->v[i].msg);
    if (d->dropped > 0)
        fprintf(out, "%s: %zu more errors not shown\n", file, d->dropped);
}

size_t diags_count(const struct diags *d)
{
    return d->n + d->dropped;
}

void diags_free(struct diags *d)
{
    arena_free(&d->arena);
    memset(d, 0, sizeof(*d));
}
