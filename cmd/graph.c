/*
 * graph.c - the arrays of the running job graph and its read positions
 * (graph.h).  A read position is the offset of the next record to read:
 * the run moves it after every record the engine applied, a checkpoint
 * copies it, a restore sets it, and the HTTP endpoint shows it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

int graph_alloc(struct graph *g, struct job *job)
{
    size_t ns = job->nsources + 1, nk = job->nsinks + 1;
    g->job = job;
    g->src = calloc(ns, sizeof(*g->src));
    g->snk = calloc(nk, sizeof(*g->snk));
    g->offs = calloc(ns, sizeof(*g->offs));
    g->assigned = calloc(ns, sizeof(*g->assigned));
    return g->src && g->snk && g->offs && g->assigned ? 0 : -ENOMEM;
}

void graph_free(struct graph *g)
{
    for (size_t s = 0; g->offs != NULL && s < g->job->nsources; s++)
        free(g->offs[s].v);
    free(g->offs);
    free(g->src);
    free(g->snk);
    free(g->assigned);
    g->offs = NULL;
    g->src = NULL;
    g->snk = NULL;
    g->assigned = NULL;
}

struct engine_offset *offsets_slot(struct offsets *o, int32_t partition)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].partition == partition)
            return &o->v[i];
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct engine_offset *v = realloc(o->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n] = (struct engine_offset){ partition, -1 };
    return &o->v[o->n++];
}

int64_t offsets_next(const struct offsets *o, int32_t partition)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].partition == partition)
            return o->v[i].next;
    return -1;
}

int offsets_copy(struct offsets *dst, const struct offsets *src)
{
    if (src->n > dst->cap) {
        struct engine_offset *v = realloc(dst->v, src->n * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        dst->v = v;
        dst->cap = src->n;
    }
    if (src->n > 0)                 /* nothing read yet: src->v may be NULL */
        memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
    dst->n = src->n;
    return 0;
}

void graph_clear_offsets(struct graph *g)
{
    for (size_t s = 0; s < g->job->nsources; s++)
        g->offs[s].n = 0;
}

size_t graph_offsets(void *ud, int source, struct engine_offset *out, size_t max)
{
    const struct graph *g = ud;
    const struct offsets *o = &g->offs[source];
    size_t n = o->n < max ? o->n : max;
    if (n > 0)                      /* nothing read yet: o->v may be NULL */
        memcpy(out, o->v, n * sizeof(*out));
    return n;
}

size_t graph_pending(const struct graph *g)
{
    size_t n = 0;
    for (size_t i = 0; g->snk != NULL && i < g->job->nsinks; i++)
        if (g->snk[i].impl != NULL)
            n += g->snk[i].ops->pending(&g->snk[i]);
    return n;
}
