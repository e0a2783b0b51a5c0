/*
 * reference.c - the specification, run (see reference.h).
 */
#include "reference.h"

#include <stdlib.h>
#include <string.h>

#include "../../engine/agg.h"
#include "../../engine/eval.h"
#include "../../engine/record.h"
#include "../../engine/watermark.h"

struct rrec {                   /* a kept record: its values and key */
    struct value *v;
    int64_t t;
    int64_t pt;                 /* processing time it arrived at */
    size_t idx;                 /* arrival */
    char *key;                  /* per operator: the encoded key */
};

struct rwin {
    int op;
    char *key;
    size_t keyrec;              /* a record of the key, for its key values */
    int64_t start, end;         /* sessions: end = latest event + gap */
    int fired, dead;
    int64_t touched, emit_at;   /* reduce: TTL clock, pending emission */
    size_t *recs;
    size_t n, cap;
};

struct rjoin {                  /* a record buffered by a join */
    int op, side, matched, dead;
    size_t rec;
    char *key;
};

struct reference {
    const struct job *job;
    ref_result_fn fn;
    void *ud;
    struct decoder **dec;
    int64_t *maxt, *wm;         /* per source */
    struct rrec *recs;
    size_t nrecs, caprecs;
    struct rwin *w;
    size_t nw, capw;
    uint64_t *late;
    struct rjoin *jn;
    size_t njn, capjn;
    struct value vals[1024], keys[16];
};

struct reference *ref_new(const struct job *job, ref_result_fn fn, void *ud)
{
    struct reference *r = calloc(1, sizeof(*r));
    r->job = job;
    r->fn = fn;
    r->ud = ud;
    r->dec = calloc(job->nsources, sizeof(*r->dec));
    r->maxt = calloc(job->nsources, sizeof(*r->maxt));
    r->wm = calloc(job->nsources, sizeof(*r->wm));
    r->late = calloc(job->noperators ? job->noperators : 1, sizeof(*r->late));
    for (size_t s = 0; s < job->nsources; s++) {
        r->dec[s] = decoder_new(&job->sources[s]);
        r->maxt[s] = r->wm[s] = INT64_MIN;
    }
    return r;
}

void ref_free(struct reference *r)
{
    for (size_t i = 0; i < r->nrecs; i++) {
        free(r->recs[i].v);
        free(r->recs[i].key);
    }
    for (size_t i = 0; i < r->nw; i++) {
        free(r->w[i].key);
        free(r->w[i].recs);
    }
    for (size_t i = 0; i < r->njn; i++)
        free(r->jn[i].key);
    free(r->jn);
    for (size_t s = 0; s < r->job->nsources; s++)
        decoder_free(r->dec[s]);
    free(r->recs);
    free(r->w);
    free(r->dec);
    free(r->maxt);
    free(r->wm);
    free(r->late);
    free(r);
}

uint64_t ref_late(const struct reference *r, int op)
{
    return r->late[op];
}

/* ---- records ---------------------------------------------------------------- */

/* A deep copy of the decoded values (strings in one allocation after them). */
static struct value *copy_values(const struct record *rec)
{
    size_t bytes = rec->nv * sizeof(struct value);
    for (size_t i = 0; i < rec->nv; i++)
        if (rec->v[i].type == VT_STRING)
            bytes += rec->v[i].u.s.len + 1;
    struct value *v = malloc(bytes);
    char *p = (char *)(v + rec->nv);
    for (size_t i = 0; i < rec->nv; i++) {
        v[i] = rec->v[i];
        if (v[i].type == VT_STRING) {
            memcpy(p, rec->v[i].u.s.p, rec->v[i].u.s.len);
            v[i].u.s.p = p;
            p += rec->v[i].u.s.len + 1;
        }
    }
    return v;
}

/* The key made of fields `fields` of a record, as text (unambiguous:
 * each part length-prefixed). */
static char *key_text(const int *fields, size_t nkeys, const struct value *v)
{
    size_t cap = 16;
    for (size_t k = 0; k < nkeys; k++) {
        const struct value *x = &v[fields[k]];
        cap += 24 + (x->type == VT_STRING ? x->u.s.len : 0);
    }
    char *s = malloc(cap), *p = s;
    for (size_t k = 0; k < nkeys; k++) {
        const struct value *x = &v[fields[k]];
        if (x->type == VT_STRING) {
            p += sprintf(p, "%zu:", x->u.s.len);
            memcpy(p, x->u.s.p, x->u.s.len);
            p += x->u.s.len;
        } else if (x->type == VT_INT) {
            p += sprintf(p, "i%lld", (long long)x->u.i);
        } else {
            p += sprintf(p, "b%d", x->u.b != 0);
        }
        *p++ = '|';
    }
    *p = '\0';
    return s;
}

static char *key_of(const struct job_operator *op, const struct value *v)
{
    return key_text(op->key_fields, op->nkeys, v);
}

static void win_add(struct rwin *w, size_t rec)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->recs = realloc(w->recs, w->cap * sizeof(*w->recs));
    }
    w->recs[w->n++] = rec;
}

static struct rwin *win_new(struct reference *r)
{
    if (r->nw == r->capw) {
        r->capw = r->capw ? r->capw * 2 : 64;
        r->w = realloc(r->w, r->capw * sizeof(*r->w));
    }
    struct rwin *w = &r->w[r->nw++];
    memset(w, 0, sizeof(*w));
    return w;
}

/* ---- aggregates, from the raw records ---------------------------------------------- */

/* op is an operator of type `type`. */
static int is(const struct job_operator *op, const char *type)
{
    return strcmp(op->type->name, type) == 0;
}

/* Operators without window bounds in their results. */
static int windowless(const struct job_operator *op)
{
    return !op_has_bounds(op);
}

/* Operators with keyed state under a TTL, in processing time. */
static int keyed(const struct job_operator *op)
{
    return is(op, "reduce") || is(op, "detect");
}

static int matches(const struct agg_spec *sp, const struct rrec *rec)
{
    if (sp->where == NULL)
        return 1;
    struct record x = { .v = rec->v, .nv = 0, .event_time = rec->t };
    return eval_where(sp->where, &x);
}

static void aggregate(struct reference *r, const struct job_operator *op,
                      const struct rwin *w)
{
    const struct job_source *src = &r->job->sources[op->source];
    for (size_t a = 0; a < op->naggs; a++) {
        const struct agg_spec *sp = &op->aggs[a].spec;
        enum value_type ft = sp->arg >= 0 ? src->fields[sp->arg].type : VT_INT;
        struct value *out = &r->vals[a];
        int64_t n = 0, isum = 0, tmin = 0, tmax = 0, bt = 0;
        struct dsum dsum = { 0 };
        const struct rrec *best = NULL;
        size_t distinct = 0;
        for (size_t i = 0; i < w->n; i++) {
            /* reduce runs in processing time: first, last and duration
             * go by arrival */
            struct rrec tr = r->recs[w->recs[i]];
            if (is(op, "reduce"))
                tr.t = tr.pt;
            const struct rrec *rec = &tr;
            if (!matches(sp, rec))
                continue;
            const struct value *v = sp->arg >= 0 ? &rec->v[sp->arg] : NULL;
            if (n == 0 || rec->t < tmin)
                tmin = rec->t;
            if (n == 0 || rec->t > tmax)
                tmax = rec->t;
            n++;
            switch (sp->fn) {
            case AGG_SUM:
            case AGG_AVG:
                if (ft == VT_DOUBLE)
                    dsum_add(&dsum, v->u.d);
                else if (__builtin_add_overflow(isum, v->u.i, &isum))
                    isum = v->u.i > 0 ? INT64_MAX : INT64_MIN;
                break;
            case AGG_MIN:
            case AGG_MAX:
                if (best == NULL || value_cmp(v, &best->v[sp->arg]) ==
                                        (sp->fn == AGG_MIN ? -1 : 1))
                    best = &r->recs[w->recs[i]];
                break;
            case AGG_FIRST:             /* earliest time; ties: first to arrive */
                if (best == NULL || rec->t < bt || (rec->t == bt && rec->idx < best->idx))
                    best = &r->recs[w->recs[i]], bt = rec->t;
                break;
            case AGG_LAST:              /* latest time; ties: last to arrive */
                if (best == NULL || rec->t > bt || (rec->t == bt && rec->idx > best->idx))
                    best = &r->recs[w->recs[i]], bt = rec->t;
                break;
            case AGG_COUNT_DISTINCT: {
                int seen = 0;
                for (size_t j = 0; j < i && !seen; j++) {
                    const struct rrec *o = &r->recs[w->recs[j]];
                    seen = matches(sp, o) && value_eq(&o->v[sp->arg], v);
                }
                distinct += !seen;
                break;
            }
            default:
                break;
            }
        }
        out->type = VT_INT;
        switch (sp->fn) {
        case AGG_COUNT:
            out->u.i = n;
            break;
        case AGG_SUM:
            out->type = ft;
            if (ft == VT_DOUBLE)
                out->u.d = dsum_value(&dsum);
            else
                out->u.i = isum;
            break;
        case AGG_AVG:
            out->type = VT_DOUBLE;
            out->u.d = n == 0 ? 0 : (ft == VT_DOUBLE ? dsum_value(&dsum) : (double)isum) / (double)n;
            break;
        case AGG_MIN:
        case AGG_MAX:
        case AGG_FIRST:
        case AGG_LAST:
            if (best == NULL)
                out->type = VT_NULL;
            else
                *out = best->v[sp->arg];
            break;
        case AGG_COUNT_DISTINCT:
            out->u.i = (int64_t)distinct;
            break;
        case AGG_DURATION:
            out->u.i = n == 0 ? 0 : (tmax - tmin) / 1000;
            break;
        }
    }
}

static void emit(struct reference *r, size_t at, const struct rwin *w, int refire)
{
    const struct job_operator *op = &r->job->operators[w->op];
    const struct rrec *kr = &r->recs[w->keyrec];
    for (size_t k = 0; k < op->nkeys; k++)
        r->keys[k] = kr->v[op->key_fields[k]];
    aggregate(r, op, w);
    int global = windowless(op);
    struct engine_result res = {
        .op = w->op, .keys = r->keys, .nkeys = op->nkeys,
        .start = global ? INT64_MIN : w->start, .end = global ? INT64_MIN : w->end,
        .vals = r->vals, .nvals = op->naggs, .refire = refire,
    };
    r->fn(r->ud, at, &res);
}

/* ---- windows ------------------------------------------------------------------------ */

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Each model: record ri of source s arrives for operator o while the
 * watermark (the operator's own, or the source's) is wm, at processing
 * time now (models[] below). */

static void add_timed(struct reference *r, int o, size_t ri, int src, int64_t wm, int64_t now)
{
    (void)src;
    (void)now;
    const struct job_operator *op = &r->job->operators[o];
    const struct rrec *rec = &r->recs[ri];
    int64_t size = op->window.size_ms, al = op->window.allowed_lateness_ms;
    int64_t slide = is(op, "tumbling") ? size : op->window.slide_ms;
    int any = 0;
    for (int64_t s = fdiv(rec->t, slide) * slide; s > rec->t - size; s -= slide) {
        int64_t end = s + size;
        if (end - 1 + al <= wm)
            continue;                           /* late for this window */
        any = 1;
        struct rwin *w = NULL;
        for (size_t j = 0; j < r->nw && w == NULL; j++)
            if (r->w[j].op == o && r->w[j].start == s && strcmp(r->w[j].key, rec->key) == 0)
                w = &r->w[j];
        if (w == NULL) {
            w = win_new(r);
            *w = (struct rwin){ .op = o, .key = strdup(rec->key), .keyrec = ri, .start = s,
                                .end = end };
        }
        win_add(w, ri);
        if (end - 1 <= wm) {                    /* allowed lateness: fire again now */
            emit(r, ri, w, 1);
            w->fired = 1;
        }
    }
    if (!any)
        r->late[o]++;
}

static void add_session(struct reference *r, int o, size_t ri, int src, int64_t wm,
                        int64_t now)
{
    (void)src;
    (void)now;
    const struct job_operator *op = &r->job->operators[o];
    const struct rrec *rec = &r->recs[ri];
    int64_t gap = op->window.gap_ms, al = op->window.allowed_lateness_ms;
    int64_t start = rec->t, last = rec->t;
    size_t *hit = malloc((r->nw + 1) * sizeof(*hit)), nh = 0;
    for (size_t j = 0; j < r->nw; j++) {
        struct rwin *w = &r->w[j];
        if (w->dead || w->op != o || strcmp(w->key, rec->key) != 0)
            continue;
        /* Flink's TimeWindow.intersects: a.start <= b.end && a.end >= b.start */
        if (w->start <= rec->t + gap && w->end >= rec->t) {
            hit[nh++] = j;
            if (w->start < start)
                start = w->start;
            if (w->end - gap > last)
                last = w->end - gap;
        }
    }
    if (last + gap - 1 + al <= wm) {
        r->late[o]++;
        free(hit);
        return;
    }
    struct rwin *s = win_new(r);
    *s = (struct rwin){ .op = o, .key = strdup(rec->key), .keyrec = ri, .start = start,
                        .end = last + gap };
    for (size_t h = 0; h < nh; h++) {
        struct rwin *w = &r->w[hit[h]];
        for (size_t q = 0; q < w->n; q++)
            win_add(s, w->recs[q]);
        w->dead = 1;
    }
    free(hit);
    win_add(s, ri);
    if (s->end - 1 <= wm) {
        emit(r, ri, s, 1);
        s->fired = 1;
    }
}

/* The one window of record ri's key in operator o, every record of the
 * key so far (global and count windows), with ri added. */
static struct rwin *key_window(struct reference *r, int o, size_t ri)
{
    const struct rrec *rec = &r->recs[ri];
    struct rwin *w = NULL;
    for (size_t j = 0; j < r->nw && w == NULL; j++)
        if (r->w[j].op == o && strcmp(r->w[j].key, rec->key) == 0)
            w = &r->w[j];
    if (w == NULL) {
        w = win_new(r);
        *w = (struct rwin){ .op = o, .key = strdup(rec->key), .keyrec = ri };
    }
    win_add(w, ri);
    return w;
}

static void add_global(struct reference *r, int o, size_t ri, int src, int64_t wm, int64_t now)
{
    (void)src;
    (void)wm;
    (void)now;
    const struct job_operator *op = &r->job->operators[o];
    struct rwin *w = key_window(r, o, ri);
    if ((int64_t)w->n % op->window.trigger_count == 0)
        emit(r, ri, w, 0);
}

/* count: every slide-th record of a key fires the window over the key's
 * last `count` records (fewer while it has had fewer), in arrival order;
 * nothing else ever fires, and nothing is late. */
static void add_count(struct reference *r, int o, size_t ri, int src, int64_t wm, int64_t now)
{
    (void)src;
    (void)wm;
    (void)now;
    const struct job_operator *op = &r->job->operators[o];
    int64_t count = op_conf_int(op, "count"), slide = op_conf_int(op, "slide");
    struct rwin *w = key_window(r, o, ri);
    if ((int64_t)w->n % slide != 0)
        return;
    struct rwin last = *w;
    if ((int64_t)last.n > count) {
        last.recs += last.n - (size_t)count;
        last.n = (size_t)count;
    }
    emit(r, ri, &last, 0);
}

/* reduce: the key's running aggregate over the records since it was
 * created, under the state TTL (docs/semantics.md, in processing
 * time).  A key past touched + ttl is "expired"; it is cleaned up by the
 * timers that run after each record and on each tick (reduce_due). */
static int ttl_expired(const struct job_operator *op, const struct rwin *w, int64_t now)
{
    return op->window.ttl_ms > 0 && w->touched + op->window.ttl_ms <= now;
}

static int ttl_hidden(const struct job_operator *op, const struct rwin *w, int64_t now)
{
    return ttl_expired(op, w, now) && op->window.ttl_visibility == TTL_NEVER_RETURN_EXPIRED;
}

/* The live state of key `key` in keyed operator o, or NULL. */
static struct rwin *live_state(struct reference *r, int o, const char *key)
{
    for (size_t j = 0; j < r->nw; j++)
        if (r->w[j].op == o && !r->w[j].dead && strcmp(r->w[j].key, key) == 0)
            return &r->w[j];
    return NULL;
}

static void add_reduce(struct reference *r, int o, size_t ri, int src, int64_t wm, int64_t now)
{
    (void)src;
    (void)wm;
    const struct job_operator *op = &r->job->operators[o];
    const struct rrec *rec = &r->recs[ri];
    struct rwin *w = live_state(r, o, rec->key);
    if (w != NULL && ttl_hidden(op, w, now))
        w->n = 0;                               /* starts afresh */
    if (w == NULL) {
        w = win_new(r);
        *w = (struct rwin){ .op = o, .key = strdup(rec->key), .keyrec = ri,
                            .emit_at = INT64_MAX };
    }
    win_add(w, ri);
    w->touched = now;
    int64_t every = op->window.emit_every_ms;
    if (every == 0)
        emit(r, ri, w, 0);
    else if (w->emit_at == INT64_MAX)
        w->emit_at = fdiv(now, every) * every + every;
}

/* detect: the key's previous record is its last one; a record whose
 * comparison with it holds emits the detect's fields, then becomes the
 * previous one.  No previous (new, or expired unread): nothing emitted. */
static void add_detect(struct reference *r, int o, size_t ri, int src, int64_t wm, int64_t now)
{
    (void)src;
    (void)wm;
    const struct job_operator *op = &r->job->operators[o];
    const struct rrec *rec = &r->recs[ri];
    struct rwin *w = live_state(r, o, rec->key);
    if (w != NULL && !ttl_hidden(op, w, now)) {
        const struct value *prev = r->recs[w->keyrec].v;
        struct value ok;
        eval_value2(op->window.when, rec->v, prev, &ok);
        if (ok.u.b) {
            for (size_t k = 0; k < op->nkeys; k++)
                r->keys[k] = rec->v[op->key_fields[k]];
            for (size_t a = 0; a < op->naggs; a++)
                eval_value2(op->aggs[a].value, rec->v, prev, &r->vals[a]);
            struct engine_result res = {
                .op = o, .keys = r->keys, .nkeys = op->nkeys, .start = INT64_MIN,
                .end = INT64_MIN, .vals = r->vals, .nvals = op->naggs,
            };
            r->fn(r->ud, ri, &res);
        }
    }
    if (w == NULL) {
        w = win_new(r);
        *w = (struct rwin){ .op = o, .key = strdup(rec->key), .emit_at = INT64_MAX };
    }
    w->keyrec = ri;                             /* the previous record from now on */
    w->touched = now;
}

/* Reduce timers of source s at processing time now: emissions due, then
 * (unless at the end of input) expired keys are freed. */
static void reduce_due(struct reference *r, int s, size_t at, int64_t now, int finish)
{
    for (size_t j = 0; j < r->nw; j++) {
        struct rwin *w = &r->w[j];
        const struct job_operator *op = &r->job->operators[w->op];
        if (op->source != s || !is(op, "reduce") || w->dead ||
            w->emit_at == INT64_MAX || w->emit_at > now)
            continue;
        int64_t T = w->emit_at;
        w->emit_at = INT64_MAX;
        if (ttl_hidden(op, w, T))
            continue;
        emit(r, at, w, 0);
        if (op->window.ttl_update == TTL_ON_READ_AND_WRITE && T > w->touched)
            w->touched = T;
    }
    for (size_t j = 0; j < r->nw && !finish; j++) {
        struct rwin *w = &r->w[j];
        const struct job_operator *op = &r->job->operators[w->op];
        if (op->source == s && keyed(op) && !w->dead && ttl_expired(op, w, now))
            w->dead = 1;
    }
}

void ref_tick(struct reference *r, int64_t now, size_t at)
{
    for (size_t s = 0; s < r->job->nsources; s++)
        reduce_due(r, (int)s, at, now, 0);
}

/* Every window of source s the watermark has reached fires, in end order;
 * then windows past their allowed lateness are dropped. */
static void fire_due(struct reference *r, int s, size_t at)
{
    int64_t wm = r->wm[s];
    for (;;) {
        struct rwin *next = NULL;
        for (size_t j = 0; j < r->nw; j++) {
            struct rwin *w = &r->w[j];
            const struct job_operator *op = &r->job->operators[w->op];
            if (op->source != s || windowless(op) || w->dead || w->fired ||
                w->n == 0 || w->end - 1 > wm)
                continue;
            if (next == NULL || w->end < next->end)
                next = w;
        }
        if (next == NULL)
            break;
        emit(r, at, next, 0);
        next->fired = 1;
    }
    for (size_t j = 0; j < r->nw; j++) {
        struct rwin *w = &r->w[j];
        const struct job_operator *op = &r->job->operators[w->op];
        if (op->source == s && !windowless(op) &&
            w->end - 1 + op->window.allowed_lateness_ms <= wm)
            w->dead = 1;
    }
}

/* ---- join ---------------------------------------------------------------------- */

/* The join's watermark: the smaller of its sides' sources'. */
static int64_t join_wm(const struct reference *r, const struct job_operator *op)
{
    int64_t a = r->wm[op->join.side[0].source], b = r->wm[op->join.side[1].source];
    return a < b ? a : b;
}

/* One result: left and right records' values (NULL: that side is missing),
 * keyed by whichever is there. */
static void join_emit(struct reference *r, int o, size_t at, const struct value *l,
                      const struct value *rt)
{
    const struct job_operator *op = &r->job->operators[o];
    const struct job_join_side *sd = &op->join.side[l != NULL ? 0 : 1];
    for (size_t k = 0; k < sd->nkeys; k++)
        r->keys[k] = (l != NULL ? l : rt)[sd->key_fields[k]];
    for (size_t a = 0; a < op->naggs; a++)
        eval_value2(op->aggs[a].value, l, rt, &r->vals[a]);
    struct engine_result res = {
        .op = o, .keys = r->keys, .nkeys = sd->nkeys, .start = INT64_MIN,
        .end = INT64_MIN, .vals = r->vals, .nvals = op->naggs,
    };
    r->fn(r->ud, at, &res);
}

/* Record ri of source s, for join o whose watermark was wm before it: each
 * side that takes it joins it with every earlier record of the other side
 * with the same key within the bound, then keeps it.  A record at or
 * behind the watermark is late (counted once). */
static void add_join(struct reference *r, int o, size_t ri, int s, int64_t wm, int64_t now)
{
    (void)now;
    const struct job_operator *op = &r->job->operators[o];
    const struct rrec *rec = &r->recs[ri];
    int late = 0;
    for (int side = 0; side < 2; side++) {
        const struct job_join_side *sd = &op->join.side[side];
        struct record x = { .v = rec->v, .nv = 0, .event_time = rec->t };
        if (sd->source != s || (sd->where != NULL && !eval_where(sd->where, &x)))
            continue;
        if (rec->t <= wm) {
            late = 1;
            continue;
        }
        char *key = key_text(sd->key_fields, sd->nkeys, rec->v);
        int matched = 0;
        for (size_t i = 0; i < r->njn; i++) {
            struct rjoin *j = &r->jn[i];
            int64_t d = rec->t - r->recs[j->rec].t;
            if (j->op != o || j->dead || j->side == side || strcmp(j->key, key) != 0 ||
                d > op->join.within_ms || -d > op->join.within_ms)
                continue;
            j->matched = matched = 1;
            if (side == 0)
                join_emit(r, o, ri, rec->v, r->recs[j->rec].v);
            else
                join_emit(r, o, ri, r->recs[j->rec].v, rec->v);
        }
        if (r->njn == r->capjn) {
            r->capjn = r->capjn ? r->capjn * 2 : 64;
            r->jn = realloc(r->jn, r->capjn * sizeof(*r->jn));
        }
        r->jn[r->njn++] = (struct rjoin){ .op = o, .side = side, .matched = matched,
                                          .rec = ri, .key = key };
    }
    if (late)
        r->late[o]++;
}

/* Records no later record can join any more (time + within at or behind
 * the watermark) are dropped; a left join's unmatched left records and an
 * outer join's unmatched records are emitted then, the other side null. */
static void join_due(struct reference *r, size_t at)
{
    for (size_t i = 0; i < r->njn; i++) {
        struct rjoin *j = &r->jn[i];
        const struct job_operator *op = &r->job->operators[j->op];
        if (j->dead || r->recs[j->rec].t + op->join.within_ms > join_wm(r, op))
            continue;
        j->dead = 1;
        enum join_type t = op->join.type;
        if (j->matched || !(t == JOIN_OUTER || (t == JOIN_LEFT && j->side == 0)))
            continue;
        const struct value *v = r->recs[j->rec].v;
        join_emit(r, j->op, at, j->side == 0 ? v : NULL, j->side == 1 ? v : NULL);
    }
}

/* ---- the models, one per operator type ------------------------------------------ */

struct model {
    const char *type;
    void (*add)(struct reference *r, int o, size_t ri, int s, int64_t wm, int64_t now);
    int64_t (*own_wm)(const struct reference *r, const struct job_operator *op);
};

static const struct model models[] = {
    { "tumbling", add_timed, NULL },
    { "sliding", add_timed, NULL },
    { "session", add_session, NULL },
    { "global", add_global, NULL },
    { "reduce", add_reduce, NULL },
    { "detect", add_detect, NULL },
    { "join", add_join, join_wm },
    { "count", add_count, NULL },
};

static const struct model *model_of(const struct job_operator *op)
{
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        if (is(op, models[i].type))
            return &models[i];
    abort();                    /* a type without a model: add one above */
}

int ref_feed(struct reference *r, int s, const char *data, size_t len)
{
    return ref_feed_at(r, s, data, len, 0);
}

int ref_feed_at(struct reference *r, int s, const char *data, size_t len, int64_t now)
{
    struct record rec;
    struct reject rej;
    if (decoder_decode(r->dec[s], data, len, 0, &rec, &rej) < 0)
        return -1;
    if (r->nrecs == r->caprecs) {
        r->caprecs = r->caprecs ? r->caprecs * 2 : 1024;
        r->recs = realloc(r->recs, r->caprecs * sizeof(*r->recs));
    }
    size_t ri = r->nrecs++;
    struct rrec *x = &r->recs[ri];
    x->v = copy_values(&rec);
    x->t = rec.event_time;
    x->pt = now;
    x->idx = ri;
    x->key = NULL;
    int64_t wm = r->wm[s];
    for (size_t o = 0; o < r->job->noperators; o++) {
        const struct job_operator *op = &r->job->operators[o];
        const struct model *m = model_of(op);
        if (op->type->ninputs == 1) {
            if (op->source != s)
                continue;
            free(x->key);
            x->key = key_of(op, x->v);
        }
        m->add(r, (int)o, ri, s, m->own_wm ? m->own_wm(r, op) : wm, now);
    }
    if (rec.event_time > r->maxt[s])
        r->maxt[s] = rec.event_time;
    int64_t nw = r->maxt[s] - r->job->sources[s].out_of_orderness_ms - 1;
    if (nw > r->wm[s])
        r->wm[s] = nw;
    fire_due(r, s, ri);
    reduce_due(r, s, ri, now, 0);
    join_due(r, ri);
    return 0;
}

void ref_finish(struct reference *r)
{
    for (size_t s = 0; s < r->job->nsources; s++) {
        r->wm[s] = INT64_MAX;
        fire_due(r, (int)s, r->nrecs);
        reduce_due(r, (int)s, r->nrecs, INT64_MAX, 1);
    }
    join_due(r, r->nrecs);
}
