/*
 * engine.c - the job graph at run time (see engine.h).
 *
 * Operators that read the same source with the same key_by share a group:
 * one state table, one key encoding and one evaluation of each distinct
 * `where` condition per record.  A key is encoded as the raw bytes of its
 * one string field (the common case, no copy at all), or else as its
 * fields in order: strings length-prefixed, ints as 8 bytes, bools as one.
 *
 * An operator with several inputs (a join) has a group of its own: each
 * input is a feed of its source (engine_int.h) with that input's key
 * fields and filter.  The record path walks a source's feeds and hands
 * each operator the record through its type's feed hook; it knows types
 * only through their descriptors (config/optype.h).
 *
 * The per-record path allocates nothing in a steady state: the decoder,
 * key buffer and where results are reused, state blobs come from the slab,
 * timers from their queues' arrays.
 */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"
#include "eval.h"

static void ahead_free(struct src_rt *sr);

static int64_t wall_clock(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct slab *engine_slab(struct engine *e)
{
    return &e->slab;
}

/* ---- building ------------------------------------------------------------ */

/* The group's index of condition w.  The same condition written in several
 * aggregates (as separate trees) is evaluated once per record: conditions
 * are compared by their canonical text. */
static int where_index(void *ud, const struct expr *w)
{
    struct group *g = ud;
    char a[4096], b[4096];
    expr_format(w, g->schema, a, sizeof(a));
    for (size_t i = 0; i < g->nwheres; i++) {
        if (g->wheres[i] == w)
            return (int)i;
        expr_format(g->wheres[i], g->schema, b, sizeof(b));
        if (strcmp(a, b) == 0)
            return (int)i;
    }
    const struct expr **nw = realloc(g->wheres, (g->nwheres + 1) * sizeof(*nw));
    if (nw == NULL)
        return -2;
    g->wheres = nw;
    g->wheres[g->nwheres] = w;
    return (int)g->nwheres++;
}

static int same_keys(const struct group *g, const struct job_operator *op)
{
    if (g->source != op->source || g->nkeys != op->nkeys)
        return 0;
    for (size_t i = 0; i < g->nkeys; i++)
        if (g->key_fields[i] != op->key_fields[i])
            return 0;
    return 1;
}

static int push(void ***v, size_t *n, void *x)
{
    void **nv = realloc(*v, (*n + 1) * sizeof(**v));
    if (nv == NULL)
        return -ENOMEM;
    nv[(*n)++] = x;
    *v = nv;
    return 0;
}

static int op_init(struct engine *e, struct op_rt *op, int index, struct group *g)
{
    const struct job_operator *jop = &e->job->operators[index];
    const struct job_source *src = &e->job->sources[jop->source];
    op->e = e;
    op->index = index;
    op->jop = jop;
    op->g = g;
    op->slot = g->nops;
    op->w = jop->type->engine;
    op->processing = jop->window.time == TIME_PROCESSING;
    op->al = jop->window.allowed_lateness_ms;
    op->late_seen = UINT64_MAX;
    if (op->w->init != NULL && op->w->init(op) < 0)
        return -ENOMEM;
    /* a type whose results are fields (expressions) has no accumulator */
    if (jop->type->sides == NULL && agg_layout_build(&op->L, jop, src, where_index, g) < 0)
        return -ENOMEM;
    op->scratch = calloc(1, op->L.size ? op->L.size : 8);
    op->vals = calloc(jop->naggs ? jop->naggs : 1, sizeof(*op->vals));
    if (op->scratch == NULL || op->vals == NULL)
        return -ENOMEM;
    return push((void ***)&g->ops, &g->nops, op);
}

/* A new key group keyed as input `in`; own: for one operator alone. */
static struct group *group_new(struct engine *e, const struct op_input *in, int own)
{
    const struct job_source *js = &e->job->sources[in->source];
    struct group *g = &e->groups[e->ngroups++];
    g->own = own;
    g->source = in->source;
    g->schema = js->fields;
    g->key_fields = in->key_fields;
    g->nkeys = in->nkeys;
    g->single_string = in->nkeys == 1 && js->fields[in->key_fields[0]].type == VT_STRING;
    g->keyvals = calloc(in->nkeys ? in->nkeys : 1, sizeof(*g->keyvals));
    return g->keyvals == NULL ? NULL : g;
}

static int feed_add(struct src_rt *sr, const struct feed *f)
{
    struct feed *nf = realloc(sr->feeds, (sr->nfeeds + 1) * sizeof(*nf));
    if (nf == NULL)
        return -ENOMEM;
    nf[sr->nfeeds++] = *f;
    sr->feeds = nf;
    return 0;
}

/* The feeds of every source: the shared groups' first, in the order they
 * were made, then the inputs of operators with several, in operator
 * order.  Called once every group has all its operators. */
static int feeds_build(struct engine *e)
{
    for (size_t i = 0; i < e->ngroups; i++) {
        struct group *g = &e->groups[i];
        struct feed f = { g, g->key_fields, NULL, 0, g->ops, g->nops };
        if (!g->own && feed_add(&e->src[g->source], &f) < 0)
            return -ENOMEM;
    }
    for (size_t o = 0; o < e->job->noperators; o++) {
        struct op_rt *op = &e->ops[o];
        struct op_input in[OP_INPUTS_MAX];
        size_t n = op_inputs(op->jop, in);
        for (size_t k = 0; n > 1 && k < n; k++) {
            struct feed f = { op->g, in[k].key_fields, in[k].where, (int)k, op->g->ops, 1 };
            if (feed_add(&e->src[in[k].source], &f) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

int engine_new(const struct job *job, const struct engine_opts *opts,
               const struct engine_output *out, struct engine **ep)
{
    struct engine *e = calloc(1, sizeof(*e));
    *ep = NULL;
    if (e == NULL)
        return -ENOMEM;
    e->job = job;
    e->out = *out;
    e->clock = opts && opts->clock ? opts->clock : wall_clock;
    e->clock_ud = opts ? opts->clock_ud : NULL;
    e->time_firing = opts ? opts->time_firing : 0;
    e->now = e->clock(e->clock_ud);
    e->feed_offset = INT64_MIN;
    e->position = -1;               /* nothing fed yet */
    uint64_t seed = opts && opts->hash_seed ? opts->hash_seed : 0x5eed5111ce5eedULL;

    e->src = calloc(job->nsources ? job->nsources : 1, sizeof(*e->src));
    e->groups = calloc(job->noperators ? job->noperators : 1, sizeof(*e->groups));
    e->ops = calloc(job->noperators ? job->noperators : 1, sizeof(*e->ops));
    if (e->src == NULL || e->groups == NULL || e->ops == NULL)
        goto fail;
    for (size_t s = 0; s < job->nsources; s++) {
        const struct job_source *js = &job->sources[s];
        e->src[s].js = js;
        wm_init(&e->src[s].wm, js->out_of_orderness_ms, js->idle_timeout_ms);
        if ((e->src[s].dec = decoder_new(js)) == NULL)
            goto fail;
    }
    /* groups: operators with one input share one when they read the same
     * source with the same key fields; one with several has its own */
    for (size_t o = 0; o < job->noperators; o++) {
        const struct job_operator *jop = &job->operators[o];
        struct op_input in[OP_INPUTS_MAX];
        size_t n = op_inputs(jop, in);
        struct group *g = NULL;
        for (size_t i = 0; i < e->ngroups && n == 1; i++)
            if (!e->groups[i].own && same_keys(&e->groups[i], jop))
                g = &e->groups[i];
        if (g == NULL && (g = group_new(e, &in[0], n > 1)) == NULL)
            goto fail;
        if (op_init(e, &e->ops[o], (int)o, g) < 0)
            goto fail;
        for (size_t k = 0; k < n; k++) {
            struct src_rt *sr = &e->src[in[k].source];
            int seen = 0;
            for (size_t i = 0; i < sr->nops; i++)
                seen |= sr->ops[i] == &e->ops[o];
            if (!seen && push((void ***)&sr->ops, &sr->nops, &e->ops[o]) < 0)
                goto fail;
            sr->has_processing |= e->ops[o].processing;
        }
    }
    if (feeds_build(e) < 0)
        goto fail;
    for (size_t i = 0; i < e->ngroups; i++) {
        struct group *g = &e->groups[i];
        if (st_init(&g->t, g->nops, &e->slab, seed) < 0)
            goto fail;
        g->wres = calloc(g->nwheres ? g->nwheres : 1, 1);
        if (g->wres == NULL)
            goto fail;
    }
    *ep = e;
    return 0;
fail:
    engine_free(e);
    return -ENOMEM;
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->ngroups; i++) {
        struct group *g = &e->groups[i];
        uint32_t id = 0;
        struct st_entry *en;
        if (g->t.idx != NULL)
            while ((en = st_next(&g->t, &id)) != NULL)
                for (size_t k = 0; k < g->nops; k++)
                    if (en->op[k] != NULL)
                        g->ops[k]->w->release(g->ops[k], en->op[k]);
        st_destroy(&g->t);
        free(g->ops);
        free(g->wheres);
        free(g->wres);
        free(g->keybuf);
        free(g->keyvals);
    }
    if (e->ops != NULL)
        for (size_t o = 0; o < e->job->noperators; o++) {
            struct op_rt *op = &e->ops[o];
            tqb_destroy(&op->tqb);
            tqh_destroy(&op->tqh);
            agg_layout_free(&op->L);
            free(op->scratch);
            free(op->vals);
        }
    if (e->src != NULL)
        for (size_t s = 0; s < e->job->nsources; s++) {
            decoder_free(e->src[s].dec);
            ahead_free(&e->src[s]);
            wm_destroy(&e->src[s].wm);
            free(e->src[s].restored);
            free(e->src[s].feeds);
            free(e->src[s].ops);
        }
    slab_destroy(&e->slab);
    free(e->src);
    free(e->groups);
    free(e->ops);
    free(e);
}

/* ---- keys ------------------------------------------------------------------ */

/* Encodes the key of record r from its fields `fields` (g->nkeys of them,
 * of g's key types) into *key and *len, borrowed until the next call. */
static int key_encode(struct group *g, const int *fields, const struct record *r,
                      const char **key, size_t *len)
{
    if (g->single_string) {
        const struct value *v = &r->v[fields[0]];
        *key = v->u.s.p;
        *len = v->u.s.len;
        return 0;
    }
    size_t need = 0;
    for (size_t i = 0; i < g->nkeys; i++) {
        const struct value *v = &r->v[fields[i]];
        need += v->type == VT_STRING ? 4 + v->u.s.len : v->type == VT_INT ? 8 : 1;
    }
    if (need > g->keycap) {
        size_t cap = g->keycap ? g->keycap : 64;
        while (cap < need)
            cap *= 2;
        char *p = realloc(g->keybuf, cap);
        if (p == NULL)
            return -ENOMEM;
        g->keybuf = p;
        g->keycap = cap;
    }
    char *o = g->keybuf;
    for (size_t i = 0; i < g->nkeys; i++) {
        const struct value *v = &r->v[fields[i]];
        if (v->type == VT_STRING) {
            uint32_t n = (uint32_t)v->u.s.len;
            memcpy(o, &n, 4);
            if (n)
                memcpy(o + 4, v->u.s.p, n);
            o += 4 + n;
        } else if (v->type == VT_INT) {
            memcpy(o, &v->u.i, 8);
            o += 8;
        } else {
            *o++ = (char)(v->u.b != 0);
        }
    }
    *key = g->keybuf;
    *len = need;
    return 0;
}

static void key_decode(struct group *g, const struct job_source *src,
                       const struct st_entry *en)
{
    const char *k = st_key(en);
    if (g->single_string) {
        g->keyvals[0].type = VT_STRING;
        g->keyvals[0].u.s.p = k;
        g->keyvals[0].u.s.len = en->klen;
        return;
    }
    for (size_t i = 0; i < g->nkeys; i++) {
        struct value *v = &g->keyvals[i];
        v->type = src->fields[g->key_fields[i]].type;
        if (v->type == VT_STRING) {
            uint32_t n;
            memcpy(&n, k, 4);
            v->u.s.p = k + 4;
            v->u.s.len = n;
            k += 4 + n;
        } else if (v->type == VT_INT) {
            memcpy(&v->u.i, k, 8);
            k += 8;
        } else {
            v->u.b = *k++ != 0;
        }
    }
}

/* ---- output ----------------------------------------------------------------- */

void engine_emit(struct op_rt *op, uint32_t id, int64_t start, int64_t end,
                 const void *acc, int64_t span_ms, int refire)
{
    agg_result(&op->L, acc, span_ms, op->vals);
    engine_emit_values(op, id, start, end, op->vals, op->L.no, refire);
}

void engine_emit_values(struct op_rt *op, uint32_t id, int64_t start, int64_t end,
                        const struct value *vals, size_t n, int refire)
{
    struct engine *e = op->e;
    struct group *g = op->g;
    const struct op_type *ty = op->jop->type;
    key_decode(g, &e->job->sources[g->source], st_entry(&g->t, id));
    struct engine_result r = {
        .op = op->index, .keys = g->keyvals, .nkeys = g->nkeys,
        .start = start, .end = end, .vals = vals, .nvals = n,
        .refire = refire,
        .version = (ty->flags & OPT_BOUNDS) ? end
                   : ty->ninputs == 1 && e->feed_offset != INT64_MIN ? e->feed_offset
                   : e->position,
    };
    op->results++;
    e->st.results++;
    if (e->out.result != NULL)
        e->out.result(e->out.ud, &r);
}

void engine_result_lost(struct op_rt *op)
{
    op->lost++;
    op->e->st.results_lost++;
}

void engine_key_maybe_delete(struct op_rt *op, uint32_t id)
{
    struct group *g = op->g;
    struct st_entry *en = st_entry(&g->t, id);
    for (size_t k = 0; k < g->nops; k++)
        if (en->op[k] != NULL)
            return;
    st_delete(&g->t, id);
}

/* ---- the record path -------------------------------------------------------- */

/* The due windows of sr's operators of one kind (processing time or event
 * time), timed with opts.time_firing. */
static void fire_ops(struct src_rt *sr, int processing, int64_t upto)
{
    if (sr->nops == 0)
        return;
    struct engine *e = sr->ops[0]->e;
    uint64_t t0 = e->time_firing ? engine_cycles() : 0, r0 = e->st.results;
    for (size_t i = 0; i < sr->nops; i++)
        if (sr->ops[i]->processing == processing)
            sr->ops[i]->w->fire_due(sr->ops[i], upto);
    if (e->time_firing) {
        e->st.fire_cycles += engine_cycles() - t0;
        e->st.fire_results += e->st.results - r0;
    }
}

static void fire_event_ops(struct src_rt *sr, int64_t wm)
{
    fire_ops(sr, 0, wm);
}

static void fire_processing_ops(struct src_rt *sr, int64_t now)
{
    fire_ops(sr, 1, now);
}

/* What an operator's feed returned: a late record is counted and sent to
 * the operator's late_events sink, once however many of its inputs took
 * it; an error is kept in *rc. */
static void added(struct engine *e, struct op_rt *op, int r, const struct record *rec, int *rc)
{
    if (r == WIN_LATE && op->late_seen != e->st.records_in) {
        op->late_seen = e->st.records_in;
        op->late++;
        e->st.records_late++;
        if (op->jop->window.late_sink >= 0 && e->out.late != NULL)
            e->out.late(e->out.ud, op->index, op->jop->window.late_sink, rec);
    } else if (r < 0) {
        *rc = r;
    }
}

/* A decoded record (drc < 0: rejected, with rej), applied: the body of
 * engine_feed.  hash[fi], when given and not AHEAD_NOHASH, is the hash of
 * the key of feed fi (fi < AHEAD_FEEDS), computed ahead. */
static int feed_decoded(struct engine *e, int source, int32_t partition, int64_t offset,
                        const char *data, size_t len, int drc, const struct record *recp,
                        const struct reject *rej, const uint64_t *hash)
{
    struct src_rt *sr = &e->src[source];
    int rc = 0;

    e->st.records_in++;
    sr->records_in++;
    if (drc < 0) {
        e->st.records_invalid++;
        e->st.invalid_by_kind[rej->kind]++;
        sr->invalid[rej->kind]++;
        if (e->out.invalid != NULL)
            e->out.invalid(e->out.ud, source,
                           sr->js->on_error == ON_ERROR_DEAD_LETTER ? sr->js->dead_letter_sink : -1,
                           partition, offset, data, len, rej);
        return 0;
    }
    struct record rec = *recp;
    if (sr->has_processing)
        e->now = e->clock(e->clock_ud);
    if (offset > e->position)
        e->position = offset;
    e->feed_offset = offset;            /* what this record's own results carry */
    int64_t wm = sr->wm.current;
    for (size_t fi = 0; fi < sr->nfeeds; fi++) {
        const struct feed *f = &sr->feeds[fi];
        struct group *g = f->g;
        const char *key;
        size_t klen;
        if (f->where != NULL && !eval_where(f->where, &rec))
            continue;
        uint32_t id = ST_NONE;
        if (key_encode(g, f->key_fields, &rec, &key, &klen) == 0) {
            uint32_t h = hash != NULL && fi < AHEAD_FEEDS && hash[fi] != AHEAD_NOHASH
                         ? (uint32_t)hash[fi] : st_hash(&g->t, key, klen);
            size_t before = g->t.count;
            id = st_upsert(&g->t, key, klen, h);
            if (g->t.count > before && e->out.new_key != NULL && h % ENGINE_KEY_SAMPLE == 0)
                e->out.new_key(e->out.ud, (int)(g - e->groups), key, klen);
        }
        if (id == ST_NONE) {
            e->feed_offset = INT64_MIN;
            return -ENOMEM;
        }
        for (size_t w = 0; w < g->nwheres; w++)
            g->wres[w] = (unsigned char)eval_where(g->wheres[w], &rec);
        for (size_t k = 0; k < f->nops; k++) {
            struct op_rt *op = f->ops[k];
            int64_t t = op->processing ? e->now : rec.event_time;
            int r = op->w->feed(op, f->input, id, &rec, g->wres, t, op->processing ? e->now : wm);
            added(e, op, r, &rec, &rc);
        }
        engine_key_maybe_delete(f->ops[0], id);
    }
    e->feed_offset = INT64_MIN;         /* what fires from here on was due, not produced */
    if (sr->js->has_event_time) {
        int64_t nw = wm_observe(&sr->wm, partition, rec.event_time, e->now);
        if (nw > wm)
            fire_event_ops(sr, nw);
    }
    if (sr->has_processing)
        fire_processing_ops(sr, e->now);
    return rc;
}

static volatile unsigned ahead_sink;

/* The ring of decoders records are decoded ahead with. */
static int ahead_init(struct src_rt *sr)
{
    if (sr->ahead != NULL)
        return 0;
    struct ahead *a = calloc(ENGINE_BATCH, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < ENGINE_BATCH; i++)
        if ((a[i].dec = decoder_new(sr->js)) == NULL) {
            while (i-- > 0)
                decoder_free(a[i].dec);
            free(a);
            return -ENOMEM;
        }
    sr->ahead = a;
    return 0;
}

static void ahead_free(struct src_rt *sr)
{
    for (size_t i = 0; sr->ahead != NULL && i < ENGINE_BATCH; i++)
        decoder_free(sr->ahead[i].dec);
    free(sr->ahead);
    sr->ahead = NULL;
}

/* Decodes the next group of the host's records (engine_prefetch) ahead,
 * and prefetches what their lookups will touch: the index slots of all,
 * then the entries those name, then the entries' operator states, a step
 * for the whole group before the next.  Only hints: nothing here changes
 * the state. */
static void ahead_prepare(struct src_rt *sr)
{
    const struct engine_in *in = sr->pf.in + sr->pf.pos;
    size_t n = sr->pf.n - sr->pf.pos < ENGINE_BATCH ? sr->pf.n - sr->pf.pos : ENGINE_BATCH;
    size_t nf = sr->nfeeds < AHEAD_FEEDS ? sr->nfeeds : AHEAD_FEEDS;
    sr->pf.base = sr->pf.pos;
    sr->pf.end = sr->pf.pos + n;
    for (size_t j = 0; j < n; j++) {
        struct ahead *a = &sr->ahead[j];
        a->rc = decoder_decode(a->dec, in[j].data, in[j].len, in[j].kafka_ts, &a->rec, &a->rej);
        for (size_t fi = 0; fi < nf; fi++) {
            struct group *g = sr->feeds[fi].g;
            const char *key;
            size_t klen;
            a->hash[fi] = AHEAD_NOHASH;
            if (a->rc < 0 || key_encode(g, sr->feeds[fi].key_fields, &a->rec, &key, &klen) < 0)
                continue;
            uint32_t h = st_hash(&g->t, key, klen);
            a->hash[fi] = h;
            st_prefetch_slot(&g->t, h);
        }
    }
    for (size_t j = 0; j < n; j++)
        for (size_t fi = 0; fi < nf; fi++) {
            struct ahead *a = &sr->ahead[j];
            a->guess[fi] = a->hash[fi] == AHEAD_NOHASH ? ST_NONE
                           : st_prefetch_entry(&sr->feeds[fi].g->t, (uint32_t)a->hash[fi]);
        }
    /* loads, not prefetches, from here: a prefetch that misses the TLB is
     * dropped on this kind of machine (engine/win_fire.c) */
    unsigned sum = 0;
    for (size_t j = 0; j < n; j++)
        for (size_t fi = 0; fi < nf; fi++) {
            if (sr->ahead[j].guess[fi] == ST_NONE)
                continue;
            const struct group *g = sr->feeds[fi].g;
            const struct st_entry *en = st_entry(&g->t, sr->ahead[j].guess[fi]);
            for (size_t k = 0; k < g->nops; k++)
                if (en->op[k] != NULL)
                    sum += *(const unsigned char *)en->op[k];
        }
    ahead_sink = sum;                   /* the loads must happen */
}

void engine_prefetch(struct engine *e, int source, const struct engine_in *in, size_t n)
{
    struct src_rt *sr = &e->src[source];
    sr->pf.in = NULL;
    sr->pf.n = sr->pf.pos = sr->pf.base = sr->pf.end = 0;
    if (n == 0 || ahead_init(sr) < 0)
        return;                     /* out of memory: records are decoded as they come */
    sr->pf.in = in;
    sr->pf.n = n;
}

int engine_feed(struct engine *e, int source, int32_t partition, int64_t offset,
                const char *data, size_t len, int64_t kafka_ts)
{
    struct src_rt *sr = &e->src[source];
    struct record rec;
    struct reject rej;
    int drc;
    const struct engine_in *next = sr->pf.pos < sr->pf.n ? &sr->pf.in[sr->pf.pos] : NULL;
    if (next != NULL && next->data == data && next->len == len && next->kafka_ts == kafka_ts) {
        if (sr->pf.pos == sr->pf.end)
            ahead_prepare(sr);      /* the next group, decoded and prefetched */
        const struct ahead *a = &sr->ahead[sr->pf.pos++ - sr->pf.base];
        sr->peek.data = NULL;
        return feed_decoded(e, source, partition, offset, data, len, a->rc, &a->rec, &a->rej,
                            a->hash);
    }
    sr->pf.n = 0;                   /* the host went another way: no more hints */
    if (sr->peek.data == data && data != NULL && sr->peek.len == len &&
        sr->peek.kafka_ts == kafka_ts) {
        drc = sr->peek.rc;              /* decoded by engine_peek_time */
        rec = sr->peek.rec;
        rej = sr->peek.rej;
    } else {
        drc = decoder_decode(sr->dec, data, len, kafka_ts, &rec, &rej);
    }
    sr->peek.data = NULL;
    return feed_decoded(e, source, partition, offset, data, len, drc, &rec, &rej, NULL);
}

int engine_feed_batch(struct engine *e, int source, int32_t partition,
                      const struct engine_in *in, size_t n, size_t *done)
{
    int rc = 0;
    engine_prefetch(e, source, in, n);
    for (*done = 0; *done < n && rc >= 0; (*done)++) {
        const struct engine_in *r = &in[*done];
        if ((rc = engine_feed(e, source, partition, r->offset, r->data, r->len,
                              r->kafka_ts)) < 0)
            break;
    }
    engine_prefetch(e, source, NULL, 0);
    return rc < 0 ? rc : 0;
}

int64_t engine_peek_time(struct engine *e, int source, const char *data, size_t len,
                         int64_t kafka_ts)
{
    struct src_rt *sr = &e->src[source];
    sr->peek.data = data;
    sr->peek.len = len;
    sr->peek.kafka_ts = kafka_ts;
    sr->peek.rc = decoder_decode(sr->dec, data, len, kafka_ts, &sr->peek.rec, &sr->peek.rej);
    if (sr->peek.rc < 0 || !sr->js->has_event_time)
        return INT64_MIN;
    return sr->peek.rec.event_time;
}

void engine_source_never_idle(struct engine *e, int source)
{
    e->src[source].wm.idle_ms = -1;
}

int engine_partition_add(struct engine *e, int source, int32_t partition)
{
    struct src_rt *sr = &e->src[source];
    int rc = wm_add(&sr->wm, partition, e->now);
    for (size_t i = 0; rc == 0 && i < sr->nrestored; i++)
        if (sr->restored[i].id == partition)
            wm_restore_partition(&sr->wm, partition, sr->restored[i].max_ts);
    return rc;
}

void engine_partition_remove(struct engine *e, int source, int32_t partition)
{
    struct src_rt *sr = &e->src[source];
    int64_t before = sr->wm.current;
    int64_t nw = (wm_remove(&sr->wm, partition), sr->wm.current);
    if (nw > before)
        fire_event_ops(sr, nw);
}

void engine_partition_observe(struct engine *e, int source, int32_t partition, int64_t max_ts)
{
    struct src_rt *sr = &e->src[source];
    if (!sr->js->has_event_time || max_ts == INT64_MIN)
        return;
    int64_t before = sr->wm.current;
    int64_t nw = wm_observe(&sr->wm, partition, max_ts, e->now);
    if (nw > before)
        fire_event_ops(sr, nw);
}

void engine_partition_end(struct engine *e, int source, int32_t partition)
{
    struct src_rt *sr = &e->src[source];
    int64_t before = sr->wm.current;
    int64_t nw = wm_end_partition(&sr->wm, partition);
    if (nw > before)
        fire_event_ops(sr, nw);
}

void engine_tick(struct engine *e)
{
    e->now = e->clock(e->clock_ud);
    for (size_t s = 0; s < e->job->nsources; s++) {
        struct src_rt *sr = &e->src[s];
        int64_t before = sr->wm.current;
        int64_t nw = wm_tick(&sr->wm, e->now);
        if (nw > before)
            fire_event_ops(sr, nw);
        fire_processing_ops(sr, e->now);
    }
}

void engine_finish(struct engine *e)
{
    for (size_t s = 0; s < e->job->nsources; s++) {
        struct src_rt *sr = &e->src[s];
        fire_event_ops(sr, wm_finish(&sr->wm));
        for (size_t i = 0; i < sr->nops; i++) {
            struct op_rt *op = sr->ops[i];
            if (op->processing && op->w->finish != NULL)
                op->w->finish(op);
            else if (op->processing)
                op->w->fire_due(op, INT64_MAX);
        }
    }
}

/* ---- figures ------------------------------------------------------------------ */

void engine_get_stats(const struct engine *e, struct engine_stats *st)
{
    *st = e->st;
    st->state_keys = 0;
    st->state_slab_bytes = slab_bytes(&e->slab);
    st->state_slab_live = e->slab.live_bytes + e->slab.large_bytes;
    st->state_table_bytes = st->state_timer_bytes = 0;
    for (size_t i = 0; i < e->ngroups; i++) {
        st->state_keys += e->groups[i].t.count;
        st->state_table_bytes += st_bytes(&e->groups[i].t);
    }
    for (size_t o = 0; o < e->job->noperators; o++)
        st->state_timer_bytes += tqb_bytes(&e->ops[o].tqb) + tqh_bytes(&e->ops[o].tqh);
    st->state_bytes = st->state_slab_bytes + st->state_table_bytes + st->state_timer_bytes;
}

void engine_op_stats(const struct engine *e, int op, uint64_t *results, uint64_t *late,
                     uint64_t *lost)
{
    *results = e->ops[op].results;
    *late = e->ops[op].late;
    *lost = e->ops[op].lost;
}

int64_t engine_watermark(const struct engine *e, int source)
{
    return e->src[source].wm.current;
}

void engine_source_stats(const struct engine *e, int source, uint64_t *in,
                         uint64_t invalid[REJ_NKINDS])
{
    const struct src_rt *sr = &e->src[source];
    *in = sr->records_in;
    memcpy(invalid, sr->invalid, sizeof(sr->invalid));
}

size_t engine_partitions(const struct engine *e, int source, int32_t *ids, int64_t *wms,
                         size_t max)
{
    const struct watermark *w = &e->src[source].wm;
    size_t n = w->n < max ? w->n : max;
    for (size_t i = 0; i < n; i++) {
        ids[i] = w->p[i].id;
        wms[i] = wm_partition(w, w->p[i].id);
    }
    return n;
}
