/*
 * win_session.c - session windows, merged as Flink's EventTimeSessionWindows.
 *
 * A record at t opens [t, t + gap).  Every session of the key that
 * intersects it, in Flink's sense (a.start <= b.end && a.end >= b.start, so
 * touching counts: a record exactly `gap` after the last one continues the
 * session), merges with it into one session [earliest event, latest event
 * + gap).  The merged session is what lateness is judged on: a record that
 * joins a session that has not fired is on time even when its own window
 * [t, t + gap) would be late (docs/semantics.md).  A session fires when the
 * watermark reaches end - 1 and is dropped at end - 1 + allowed_lateness;
 * a record that merges into a fired, not yet dropped session fires it
 * again at once.
 *
 * Per key, a blob: a header and the open sessions sorted by start (they
 * never overlap or touch, or they would have merged), each with its first
 * and latest event time, a fired flag and an accumulator.  The key has one
 * timer at its next_check: the earliest end - 1 of an unfired session or
 * end - 1 + allowed_lateness of a fired one.  Extending a session does not
 * move its timer; the timer finds the session extended, fires nothing and
 * re-arms at the new end, so a busy session costs a timer per gap, not
 * per record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

struct ss_blob {
    uint32_t n, cap;
    int64_t next_check;
    /* then cap sessions of sess_stride(op) bytes */
};

struct sess {
    int64_t start, last;            /* earliest and latest event time */
    int64_t fired;
    /* accumulator follows */
};

#define NONE INT64_MAX

static size_t sess_stride(const struct op_rt *op)
{
    return sizeof(struct sess) + op->L.size;
}

static size_t blob_size(const struct op_rt *op, size_t cap)
{
    return sizeof(struct ss_blob) + cap * sess_stride(op);
}

/* Room for at least `want` entries, and as many more as the slab class
 * that has to be taken anyway holds. */
static size_t fit_cap(const struct op_rt *op, size_t want)
{
    if (want > 4 && want < want + want / 4)
        want += want / 4;           /* large blobs grow geometrically */
    return (slab_class_size(blob_size(op, want)) - sizeof(struct ss_blob)) / sess_stride(op);
}

static struct sess *sess_at(const struct op_rt *op, struct ss_blob *b, size_t i)
{
    return (struct sess *)((char *)(b + 1) + i * sess_stride(op));
}

static void *sess_acc(struct sess *s)
{
    return s + 1;
}

static int64_t sess_end(const struct op_rt *op, const struct sess *s)
{
    return s->last + op->gap;
}

static int64_t sess_check(const struct op_rt *op, const struct sess *s)
{
    return sess_end(op, s) - 1 + (s->fired ? op->al : 0);
}

static void fire(struct op_rt *op, uint32_t id, struct sess *s, int refire)
{
    engine_emit(op, id, s->start, sess_end(op, s), sess_acc(s), s->last - s->start, refire);
    s->fired = 1;
}

static void blob_free(struct op_rt *op, struct ss_blob *b)
{
    struct slab *slab = engine_slab(op->e);
    for (size_t i = 0; i < b->n; i++)
        agg_release(&op->L, sess_acc(sess_at(op, b, i)), slab);
    slab_free(slab, b, blob_size(op, b->cap));
}

static int arm(struct op_rt *op, uint32_t id, struct ss_blob *b)
{
    int64_t check = NONE;
    for (size_t i = 0; i < b->n; i++) {
        int64_t c = sess_check(op, sess_at(op, b, i));
        if (c < check)
            check = c;
    }
    if (check >= b->next_check && b->next_check != NONE)
        return 0;                   /* the pending timer comes first anyway */
    b->next_check = check;
    if (check != NONE && tqh_add(&op->tqh, check, id) < 0)
        return -ENOMEM;
    return 0;
}

static int ss_feed(struct op_rt *op, int input, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t wm)
{
    (void)input;
    struct slab *slab = engine_slab(op->e);
    void **slot = op_blob(op, id);
    struct ss_blob *b = *slot;

    /* the sessions [lo, hi) that intersect [t, t + gap) */
    size_t lo = 0, hi = 0;
    int64_t start = t, last = t;
    if (b != NULL) {
        while (lo < b->n && sess_end(op, sess_at(op, b, lo)) < t)
            lo++;
        hi = lo;
        while (hi < b->n && sess_at(op, b, hi)->start <= t + op->gap)
            hi++;
        if (hi > lo) {
            if (sess_at(op, b, lo)->start < start)
                start = sess_at(op, b, lo)->start;
            if (sess_at(op, b, hi - 1)->last > last)
                last = sess_at(op, b, hi - 1)->last;
        }
    }
    if (last + op->gap - 1 + op->al <= wm)
        return WIN_LATE;

    if (b == NULL) {
        size_t cap = fit_cap(op, 1);
        b = slab_alloc(slab, blob_size(op, cap));
        if (b == NULL)
            return -ENOMEM;
        memset(b, 0, sizeof(*b));
        b->cap = (uint32_t)cap;
        b->next_check = NONE;
        *slot = b;
    }
    struct sess *s;
    if (hi == lo) {                         /* a new session at lo */
        if (b->n == b->cap) {
            size_t cap = fit_cap(op, (size_t)b->n + 1);
            struct ss_blob *nb = slab_alloc(slab, blob_size(op, cap));
            if (nb == NULL)
                return -ENOMEM;
            memcpy(nb, b, blob_size(op, b->n));
            nb->cap = (uint32_t)cap;
            slab_free(slab, b, blob_size(op, b->cap));
            *slot = b = nb;
        }
        s = sess_at(op, b, lo);
        memmove((char *)s + sess_stride(op), s, (b->n - lo) * sess_stride(op));
        memset(s, 0, sess_stride(op));
        b->n++;
    } else {                                /* merge lo+1 .. hi-1 into lo */
        s = sess_at(op, b, lo);
        for (size_t i = lo + 1; i < hi; i++) {
            struct sess *o = sess_at(op, b, i);
            if (agg_merge(&op->L, sess_acc(s), sess_acc(o), AGG_MOVE, slab) < 0)
                return -ENOMEM;
            agg_release(&op->L, sess_acc(o), slab);
            s->fired |= o->fired;
        }
        if (hi - lo > 1) {
            memmove(sess_at(op, b, lo + 1), sess_at(op, b, hi),
                    (b->n - hi) * sess_stride(op));
            b->n = (uint32_t)(b->n - (hi - lo - 1));
        }
    }
    s->start = start;
    s->last = last;
    if (agg_add(&op->L, sess_acc(s), r, wres, t, slab) < 0)
        return -ENOMEM;
    if (sess_end(op, s) - 1 <= wm)
        fire(op, id, s, 1);                 /* within allowed lateness: again, now */
    else
        s->fired = 0;                       /* it fires (again) at its new end */
    return arm(op, id, b) < 0 ? -ENOMEM : WIN_ADDED;
}

static void ss_check(struct op_rt *op, uint32_t id, int64_t T)
{
    const struct state_table *t = &op->g->t;
    if (id >= t->next_id || st_entry(t, id)->klen == ST_NONE)
        return;
    void **slot = op_blob(op, id);
    struct ss_blob *b = *slot;
    if (b == NULL || b->next_check != T)
        return;
    size_t keep = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct sess *s = sess_at(op, b, i);
        if (!s->fired && sess_end(op, s) - 1 <= T)
            fire(op, id, s, 0);
        if (s->fired && sess_end(op, s) - 1 + op->al <= T) {
            agg_release(&op->L, sess_acc(s), engine_slab(op->e));
            continue;
        }
        if (keep != i)
            memmove(sess_at(op, b, keep), s, sess_stride(op));
        keep++;
    }
    b->n = (uint32_t)keep;
    if (b->n == 0) {
        blob_free(op, b);
        *slot = NULL;
        engine_key_maybe_delete(op, id);
        return;
    }
    b->next_check = NONE;
    if (arm(op, id, b) < 0) {
        b->next_check = NONE;       /* the key's next record sets it again */
        engine_result_lost(op);
    }
}

static int ss_pop(struct op_rt *op, int64_t now, int64_t *time, uint32_t *id)
{
    return tqh_pop_due(&op->tqh, now, time, id);
}

static int64_t ss_next(const struct op_rt *op)
{
    return tqh_next(&op->tqh);
}

static size_t ss_used(const struct op_rt *op, const void *blob)
{
    return blob_size(op, ((const struct ss_blob *)blob)->n);
}

static const struct win_timers ss_timers = { ss_pop, ss_next, ss_check, ss_used };

static void ss_fire_due(struct op_rt *op, int64_t wm)
{
    win_fire_due(op, wm, &ss_timers);
}

static void ss_release(struct op_rt *op, void *blob)
{
    blob_free(op, blob);
}

static size_t ss_blob_bytes(const struct op_rt *op, const void *blob)
{
    const struct ss_blob *b = blob;
    size_t n = slab_class_size(blob_size(op, b->cap));
    if (op->L.owns)
        for (size_t i = 0; i < b->n; i++)
            n += agg_owned_bytes(&op->L, sess_acc(sess_at(op, (struct ss_blob *)b, i)));
    return n;
}

static void ss_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    const struct ss_blob *b = blob;
    ckpt_put_u32(w, b->n);
    ckpt_put_i64(w, b->next_check);
    for (size_t i = 0; i < b->n; i++) {
        struct sess *x = sess_at(op, (struct ss_blob *)b, i);
        ckpt_put_i64(w, x->start);
        ckpt_put_i64(w, x->last);
        ckpt_put_i64(w, x->fired);
        agg_save(&op->L, sess_acc(x), w);
    }
}

static int ss_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    uint32_t n;
    int64_t next_check;
    if (ckpt_get_u32(c, &n) < 0 || ckpt_get_time_or(c, &next_check, NONE) < 0 || n == 0 ||
        n > (1u << 24))
        return -EINVAL;
    size_t cap = fit_cap(op, n);
    struct ss_blob *b = slab_alloc(engine_slab(op->e), blob_size(op, cap));
    if (b == NULL)
        return -ENOMEM;
    memset(b, 0, sizeof(*b));
    b->cap = (uint32_t)cap;
    b->next_check = next_check;
    for (uint32_t i = 0; i < n; i++) {
        struct sess *x = sess_at(op, b, i);
        int rc = ckpt_get_time(c, &x->start) < 0 || ckpt_get_time(c, &x->last) < 0 ||
                 x->last < x->start || ckpt_get_i64(c, &x->fired) < 0 ||
                 (x->fired != 0 && x->fired != 1) ? -EINVAL
                 : agg_load(&op->L, sess_acc(x), c, engine_slab(op->e));
        if (rc < 0) {
            blob_free(op, b);
            return rc;
        }
        b->n = i + 1;
    }
    *op_blob(op, id) = b;
    if (next_check != NONE && tqh_add(&op->tqh, next_check, id) < 0)
        return -ENOMEM;
    return 0;
}

static int ss_init(struct op_rt *op)
{
    op->gap = op->jop->window.gap_ms;
    return 0;
}

static const struct op_engine session_engine = {
    .init = ss_init,
    .feed = ss_feed,
    .fire_due = ss_fire_due,
    .release = ss_release,
    .blob_bytes = ss_blob_bytes,
    .save = ss_save,
    .load = ss_load,
};

/* ---- in the job file ---------------------------------------------------------- */

static void ss_validate(struct cm_ctx *c, void *conf)
{
    win_time_validate(c, conf);
}

static const struct cm_entry session_entries[] = {
    WIN_TYPE_ENTRY,
    { .key = "gap", .type = CM_DURATION, .flags = CM_REQUIRED | CM_POSITIVE,
      .offset = offsetof(struct job_operator, window.gap_ms),
      .desc = "the session closes after this long without records of the key" },
    WIN_TIME_ENTRIES,
    { .key = NULL },
};

static const struct cm_map session_map = { session_entries, ss_validate };

static void ss_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    char a[32];
    duration_format(op->window.gap_ms, a, sizeof(a));
    fprintf(out, "session gap %s", a);
    win_time_print(out, job, op);
}

const struct op_type op_type_session = {
    .name = "session",
    .block = "window",
    .label = "session window",
    .v1_code = 2,
    .ninputs = 1,
    .flags = OPT_BOUNDS | OPT_SPAN,
    .map = &session_map,
    .print = ss_print,
    .engine = &session_engine,
};
