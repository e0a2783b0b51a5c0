/*
 * graph.c - the arrays of the running job graph and its read positions
 * (graph.h).  A read position is the offset of the next record to read:
 * the run moves it after every record the engine applied, a checkpoint
 * copies it, a restore sets it, and the HTTP endpoint shows it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/rp_header.h"
#include "../engine/watermark.h"
#include "graph.h"

int graph_alloc(struct graph *g, struct job *job)
{
    size_t ns = job->nsources + 1, nk = job->nsinks + 1;
    g->job = job;
    g->src = calloc(ns, sizeof(*g->src));
    g->snk = calloc(nk, sizeof(*g->snk));
    g->offs = calloc(ns, sizeof(*g->offs));
    g->assigned = calloc(ns, sizeof(*g->assigned));
    size_t no = job->noperators + 1;
    g->gone_in = calloc(ns, sizeof(*g->gone_in));
    g->gone_invalid = calloc(ns, sizeof(*g->gone_invalid));
    g->gone_res = calloc(no, sizeof(*g->gone_res));
    g->gone_late = calloc(no, sizeof(*g->gone_late));
    g->gone_lost = calloc(no, sizeof(*g->gone_lost));
    return g->src && g->snk && g->offs && g->assigned && g->gone_in && g->gone_invalid &&
                   g->gone_res && g->gone_late && g->gone_lost ? 0 : -ENOMEM;
}

void graph_free(struct graph *g)
{
    graph_shards_clear(g);
    free(g->shards);
    g->shards = NULL;
    g->capshards = 0;
    for (size_t s = 0; g->offs != NULL && s < g->job->nsources; s++)
        free(g->offs[s].v);
    free(g->offs);
    free(g->src);
    free(g->snk);
    free(g->assigned);
    free(g->gone_in);
    free(g->gone_invalid);
    free(g->gone_res);
    free(g->gone_late);
    free(g->gone_lost);
    g->gone_in = g->gone_res = g->gone_late = g->gone_lost = NULL;
    g->gone_invalid = NULL;
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

/* ---- shards ------------------------------------------------------------------------ */

int shard_has(const struct shard *sh, int32_t part)
{
    if (rp_is_vid(part))
        part = rp_vid_part(part);
    for (size_t i = 0; i < sh->nparts; i++)
        if (sh->parts[i] == part)
            return 1;
    return 0;
}

struct shard *graph_shard(const struct graph *g, int32_t part)
{
    size_t lo = 0, hi = g->nshards;
    while (lo < hi) {                   /* by id: a shard's own partition */
        size_t mid = lo + (hi - lo) / 2;
        if (g->shards[mid]->id == part)
            return g->shards[mid];
        if (g->shards[mid]->id < part)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < g->nshards; i++)  /* a merged one's other partitions */
        if (g->shards[i]->nparts > 1 && shard_has(g->shards[i], part))
            return g->shards[i];
    return NULL;
}

static void shard_free(struct shard *sh)
{
    if (sh == NULL)
        return;
    engine_free(sh->eng);
    free(sh->parts);
    free(sh->chain);
    for (size_t i = 0; i < sh->nrp; i++)
        free(sh->rp[i].ended);
    free(sh->rp);
    free(sh);
}

struct shard_rp *shard_rp_get(struct shard *sh, int source)
{
    for (size_t i = 0; i < sh->nrp; i++)
        if (sh->rp[i].source == source)
            return &sh->rp[i];
    struct shard_rp *v = realloc(sh->rp, (sh->nrp + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    sh->rp = v;
    v[sh->nrp] = (struct shard_rp){ .source = source };
    return &v[sh->nrp++];
}

int graph_shard_new(struct graph *g, int32_t part, struct shard **out)
{
    *out = NULL;
    if (g->nshards == g->capshards) {
        size_t cap = g->capshards ? g->capshards * 2 : 16;
        struct shard **v = realloc(g->shards, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        g->shards = v;
        g->capshards = cap;
    }
    struct shard *sh = calloc(1, sizeof(*sh));
    if (sh == NULL || (sh->parts = malloc(sizeof(*sh->parts))) == NULL ||
        engine_new(g->job, NULL, &g->out, &sh->eng) < 0) {
        shard_free(sh);
        return -ENOMEM;
    }
    sh->id = part;
    sh->parts[0] = part;
    sh->nparts = 1;
    sh->gen = ++g->next_gen;
    sh->snap_offset = -1;
    size_t i = g->nshards;
    while (i > 0 && g->shards[i - 1]->id > part) {
        g->shards[i] = g->shards[i - 1];
        i--;
    }
    g->shards[i] = sh;
    g->nshards++;
    *out = sh;
    return 0;
}

int graph_shard_add_part(struct graph *g, struct shard *sh, int32_t part)
{
    struct shard *other = graph_shard(g, part);
    if (other == sh)
        return 0;
    if (other != NULL)
        return -EEXIST;
    int32_t *v = realloc(sh->parts, (sh->nparts + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    sh->parts = v;
    sh->parts[sh->nparts++] = part;
    return 0;
}

void graph_shard_rekey(struct graph *g, struct shard *sh, int32_t id)
{
    size_t i = 0;
    while (i < g->nshards && g->shards[i] != sh)
        i++;
    if (i == g->nshards)
        return;
    memmove(&g->shards[i], &g->shards[i + 1], (g->nshards - i - 1) * sizeof(*g->shards));
    sh->id = id;
    i = g->nshards - 1;
    while (i > 0 && g->shards[i - 1]->id > id) {
        g->shards[i] = g->shards[i - 1];
        i--;
    }
    g->shards[i] = sh;
}

/* Forgets the partition's read position, and those of its virtual
 * partitions (a repartition source's: rp_header.h). */
static void offsets_forget(struct offsets *o, int32_t partition)
{
    size_t i = 0;
    while (i < o->n) {
        int32_t id = o->v[i].partition;
        if (id == partition || (rp_is_vid(id) && rp_vid_part(id) == partition))
            o->v[i] = o->v[--o->n];
        else
            i++;
    }
}

void graph_shard_drop(struct graph *g, struct shard *sh)
{
    size_t i = 0;
    while (i < g->nshards && g->shards[i] != sh)
        i++;
    if (i == g->nshards)
        return;
    for (size_t s = 0; g->gone_in != NULL && s < g->job->nsources; s++) {
        uint64_t in, inv[REJ_NKINDS];
        engine_source_stats(sh->eng, (int)s, &in, inv);
        g->gone_in[s] += in;
        for (int k = 0; k < REJ_NKINDS; k++)
            g->gone_invalid[s][k] += inv[k];
    }
    for (size_t o = 0; g->gone_res != NULL && o < g->job->noperators; o++) {
        uint64_t r, l, x;
        engine_op_stats(sh->eng, (int)o, &r, &l, &x);
        g->gone_res[o] += r;
        g->gone_late[o] += l;
        g->gone_lost[o] += x;
    }
    memmove(&g->shards[i], &g->shards[i + 1], (g->nshards - i - 1) * sizeof(*g->shards));
    g->nshards--;
    for (size_t s = 0; g->offs != NULL && s < g->job->nsources; s++)
        for (size_t k = 0; k < sh->nparts; k++)
            offsets_forget(&g->offs[s], sh->parts[k]);
    shard_free(sh);
}

void graph_shards_clear(struct graph *g)
{
    for (size_t i = 0; i < g->nshards; i++)
        shard_free(g->shards[i]);
    g->nshards = 0;
}

size_t shard_offsets(void *ud, int source, struct engine_offset *out, size_t max)
{
    const struct shard_offsets *so = ud;
    const struct offsets *o = &so->g->offs[source];
    size_t n = 0;
    for (size_t i = 0; i < o->n && n < max; i++)
        if (shard_has(so->sh, o->v[i].partition))
            out[n++] = o->v[i];
    return n;
}

void graph_stats(const struct graph *g, struct engine_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < g->nshards; i++) {
        struct engine_stats one;
        engine_get_stats(g->shards[i]->eng, &one);
        st->records_in += one.records_in;
        st->records_invalid += one.records_invalid;
        for (int k = 0; k < REJ_NKINDS; k++)
            st->invalid_by_kind[k] += one.invalid_by_kind[k];
        st->records_late += one.records_late;
        st->results += one.results;
        st->results_lost += one.results_lost;
        st->state_keys += one.state_keys;
        st->state_bytes += one.state_bytes;
        st->state_table_bytes += one.state_table_bytes;
        st->state_slab_bytes += one.state_slab_bytes;
        st->state_slab_live += one.state_slab_live;
        st->state_timer_bytes += one.state_timer_bytes;
    }
}

void graph_op_stats(const struct graph *g, int op, uint64_t *results, uint64_t *late,
                    uint64_t *lost)
{
    *results = g->gone_res[op];
    *late = g->gone_late[op];
    *lost = g->gone_lost[op];
    for (size_t i = 0; i < g->nshards; i++) {
        uint64_t r, l, x;
        engine_op_stats(g->shards[i]->eng, op, &r, &l, &x);
        *results += r;
        *late += l;
        *lost += x;
    }
}

void graph_source_stats(const struct graph *g, int source, uint64_t *in,
                        uint64_t invalid[REJ_NKINDS])
{
    *in = g->gone_in[source];
    memcpy(invalid, g->gone_invalid[source], REJ_NKINDS * sizeof(*invalid));
    for (size_t i = 0; i < g->nshards; i++) {
        uint64_t n, inv[REJ_NKINDS];
        engine_source_stats(g->shards[i]->eng, source, &n, inv);
        *in += n;
        for (int k = 0; k < REJ_NKINDS; k++)
            invalid[k] += inv[k];
    }
}

int64_t graph_watermark(const struct graph *g, int source)
{
    int64_t w = WM_MIN;
    for (size_t i = 0; i < g->nshards; i++) {
        int64_t one = engine_watermark(g->shards[i]->eng, source);
        if (i == 0 || one < w)
            w = one;
    }
    return w;
}

size_t graph_partitions(const struct graph *g, int source, int32_t *ids, int64_t *wms,
                        size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nshards && n < max; i++) {
        const struct shard *sh = g->shards[i];
        size_t k = engine_partitions(sh->eng, source, ids + n, wms + n, max - n);
        /* a repartition source's partition follows one virtual partition
         * per input partition: shown as the partition, at their minimum */
        size_t keep = 0;
        int vids = 0;
        for (size_t j = 0; j < k; j++) {
            if (rp_is_vid(ids[n + j])) {
                vids = 1;
                continue;
            }
            ids[n + keep] = ids[n + j];
            wms[n + keep++] = wms[n + j];
        }
        if (vids && keep < max - n) {
            ids[n + keep] = sh->id;
            wms[n + keep++] = engine_watermark(sh->eng, source);
        }
        n += keep;
    }
    return n;
}

int shard_chain_push(struct shard *sh, const char *obj)
{
    if (obj[0] == '\0')
        return 0;
    for (size_t i = 0; i < sh->nchain; i++)
        if (strcmp(sh->chain[i], obj) == 0)
            return 0;
    char (*v)[256] = realloc(sh->chain, (sh->nchain + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    sh->chain = v;
    snprintf(sh->chain[sh->nchain++], sizeof(*sh->chain), "%s", obj);
    return 0;
}
