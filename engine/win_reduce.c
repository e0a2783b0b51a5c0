/*
 * win_reduce.c - the reduce operator: running aggregates per key, no window.
 *
 * Every record of a key is added to the key's one accumulator, which is
 * never reset by time: cumulative spend, reward points.  The result (key
 * fields and aggregates, no window bounds) is emitted after every update,
 * or, with `emit: every D`, once at the end of each processing-time period
 * of length D (aligned to the epoch, like a tumbling window) in which the
 * key was updated.
 *
 * State TTL follows Flink's StateTtlConfig, in processing time.  A key's
 * clock is `touched`: set by every write (a record), and with
 * on_read_and_write also by every read (an interval emission).  The state
 * is expired once touched + ttl <= now.  A timer at that moment frees it
 * (a real free, the key leaves the table when no other operator holds it).
 * Until that timer has run, an expired state is either invisible
 * (never_return_expired: a record starts from an empty accumulator, an
 * emission is skipped) or still read as it is
 * (return_expired_if_not_cleaned_up).  Timers run after each record and on
 * every tick, so "not cleaned up" means: no record and no tick came
 * between the expiry and this record.
 *
 * Each key has at most one TTL timer (expire_check) and one emission timer
 * (emit_at) pending; a write only moves `touched`, and a TTL timer that
 * finds the key touched since re-arms itself at the new expiry.
 *
 * The detect operator shares the keyed state and its TTL, with the key's
 * previous record (its decoded values, strings copied) instead of an
 * accumulator: each record is compared with it, the `when` condition over
 * current.<field> and previous.<field> decides whether the detect's fields
 * are emitted, and then the record becomes the previous one.  A key's
 * first record (or its first after its state expired unread) emits
 * nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "eval.h"

#define NONE INT64_MAX

struct rd_blob {                    /* reduce's, and the head of detect's */
    int64_t touched;                /* processing time the TTL counts from */
    int64_t expire_check;           /* the pending TTL timer, or NONE */
    int64_t emit_at;                /* the pending emission, or NONE */
    /* reduce: the accumulator follows */
};

struct dt_blob {
    struct rd_blob h;
    uint32_t size, nv;              /* the whole blob's bytes; values */
    /* struct value v[nv], then their strings' bytes */
};

static size_t blob_size(const struct op_rt *op)
{
    return sizeof(struct rd_blob) + op->L.size;
}

static void *acc(struct rd_blob *b)
{
    return b + 1;
}

static int expired(const struct op_rt *op, const struct rd_blob *b, int64_t now)
{
    int64_t ttl = op->jop->window.ttl_ms;
    return ttl > 0 && b->touched + ttl <= now;
}

static int hidden(const struct op_rt *op, const struct rd_blob *b, int64_t now)
{
    return expired(op, b, now) &&
           op->jop->window.ttl_visibility == TTL_NEVER_RETURN_EXPIRED;
}

static void blob_free(struct op_rt *op, struct rd_blob *b)
{
    agg_release(&op->L, acc(b), engine_slab(op->e));
    slab_free(engine_slab(op->e), b, blob_size(op));
}

static int arm_ttl(struct op_rt *op, uint32_t id, struct rd_blob *b)
{
    b->expire_check = b->touched + op->jop->window.ttl_ms;
    return tqh_add(&op->tqh, b->expire_check, id);
}

static int rd_add(struct op_rt *op, uint32_t id, const struct record *r,
                  const unsigned char *wres, int64_t t, int64_t now)
{
    (void)now;
    void **slot = op_blob(op, id);
    struct rd_blob *b = *slot;
    if (b != NULL && hidden(op, b, t)) {
        /* expired and not to be read: the record starts the key afresh */
        agg_release(&op->L, acc(b), engine_slab(op->e));
        memset(acc(b), 0, op->L.size);
    }
    if (b == NULL) {
        b = slab_alloc(engine_slab(op->e), blob_size(op));
        if (b == NULL)
            return -ENOMEM;
        memset(b, 0, blob_size(op));
        b->expire_check = b->emit_at = NONE;
        *slot = b;
    }
    if (agg_add(&op->L, acc(b), r, wres, t, engine_slab(op->e)) < 0)
        return -ENOMEM;
    b->touched = t;
    if (op->jop->window.ttl_ms > 0 && b->expire_check == NONE && arm_ttl(op, id, b) < 0)
        return -ENOMEM;
    int64_t every = op->jop->window.emit_every_ms;
    if (every == 0) {
        engine_emit(op, id, INT64_MIN, INT64_MIN, acc(b), 0, 0);
    } else if (b->emit_at == NONE) {
        b->emit_at = floordiv(t, every) * every + every;
        if (tqb_add(&op->tqb, b->emit_at, id) < 0)
            return -ENOMEM;
    }
    return WIN_ADDED;
}

static void emit_due(struct op_rt *op, int64_t now)
{
    int64_t T;
    uint32_t id;
    while (tqb_pop_due(&op->tqb, now, &T, &id)) {
        struct rd_blob *b = *op_blob(op, id);
        if (b == NULL || b->emit_at != T)
            continue;
        b->emit_at = NONE;
        if (hidden(op, b, T))
            continue;               /* expired unread: its TTL timer frees it */
        engine_emit(op, id, INT64_MIN, INT64_MIN, acc(b), 0, 0);
        if (op->jop->window.ttl_update == TTL_ON_READ_AND_WRITE && T > b->touched)
            b->touched = T;         /* a read refreshes the clock */
    }
}

/* Frees keys whose TTL ran out by now (both operators). */
static void ttl_due(struct op_rt *op, int64_t now)
{
    int64_t T;
    uint32_t id;
    while (tqh_pop_due(&op->tqh, now, &T, &id)) {
        void **slot = op_blob(op, id);
        struct rd_blob *b = *slot;
        if (b == NULL || b->expire_check != T)
            continue;
        if (!expired(op, b, T)) {
            if (arm_ttl(op, id, b) < 0) {
                b->expire_check = NONE;     /* kept until its next record sets it again */
                engine_result_lost(op);
            }
            continue;
        }
        op->w->release(op, b);
        *slot = NULL;
        engine_key_maybe_delete(op, id);
    }
}

static void rd_fire_due(struct op_rt *op, int64_t now)
{
    emit_due(op, now);
    ttl_due(op, now);
}

/* The end of bounded input: pending emissions go out, but no time passes,
 * so nothing expires (the final checkpoint keeps the state). */
static void rd_finish(struct op_rt *op)
{
    emit_due(op, INT64_MAX);
}

static void rd_release(struct op_rt *op, void *blob)
{
    blob_free(op, blob);
}

static size_t rd_blob_bytes(const struct op_rt *op, const void *blob)
{
    return slab_class_size(blob_size(op)) +
           agg_owned_bytes(&op->L, (const struct rd_blob *)blob + 1);
}

static void rd_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    const struct rd_blob *b = blob;
    ckpt_put_i64(w, b->touched);
    ckpt_put_i64(w, b->expire_check);
    ckpt_put_i64(w, b->emit_at);
    agg_save(&op->L, b + 1, w);
}

static int rd_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    struct rd_blob *b = slab_alloc(engine_slab(op->e), blob_size(op));
    if (b == NULL)
        return -ENOMEM;
    memset(b, 0, sizeof(*b));
    int rc = ckpt_get_time(c, &b->touched) < 0 ||
             ckpt_get_time_or(c, &b->expire_check, NONE) < 0 ||
             ckpt_get_time_or(c, &b->emit_at, NONE) < 0 ? -EINVAL
             : agg_load(&op->L, acc(b), c, engine_slab(op->e));
    if (rc < 0) {
        slab_free(engine_slab(op->e), b, blob_size(op));
        return rc;
    }
    *op_blob(op, id) = b;
    /* a job edited from `every` to on_update, or ttl removed: drop the timer */
    if (op->jop->window.emit_every_ms == 0)
        b->emit_at = NONE;
    if (op->jop->window.ttl_ms == 0)
        b->expire_check = NONE;
    if (b->emit_at != NONE && tqb_add(&op->tqb, b->emit_at, id) < 0)
        return -ENOMEM;
    if (b->expire_check != NONE && tqh_add(&op->tqh, b->expire_check, id) < 0)
        return -ENOMEM;
    return 0;
}

/* ---- detect ------------------------------------------------------------------- */

static struct value *dt_values(struct dt_blob *b)
{
    return (struct value *)(b + 1);
}

/* A blob holding record r's values (strings copied), with head h. */
static struct dt_blob *dt_new(struct op_rt *op, const struct value *v, uint32_t nv,
                              const struct rd_blob *h)
{
    size_t size = sizeof(struct dt_blob) + row_bytes(v, nv);
    if (size > UINT32_MAX)
        return NULL;
    struct dt_blob *b = slab_alloc(engine_slab(op->e), size);
    if (b == NULL)
        return NULL;
    b->h = *h;
    b->size = (uint32_t)size;
    b->nv = nv;
    row_copy(dt_values(b), v, nv);
    return b;
}

static void dt_release(struct op_rt *op, void *blob)
{
    slab_free(engine_slab(op->e), blob, ((struct dt_blob *)blob)->size);
}

static int dt_add(struct op_rt *op, uint32_t id, const struct record *r,
                  const unsigned char *wres, int64_t t, int64_t now)
{
    (void)wres;
    (void)now;
    const struct job_operator *jop = op->jop;
    void **slot = op_blob(op, id);
    struct dt_blob *old = *slot;
    if (old != NULL && !hidden(op, &old->h, t)) {
        const struct value *prev = dt_values(old);
        struct value w;
        eval_value2(jop->window.when, r->v, prev, &w);
        if (w.u.b) {
            for (size_t i = 0; i < jop->naggs; i++)
                eval_value2(jop->aggs[i].value, r->v, prev, &op->vals[i]);
            engine_emit_values(op, id, INT64_MIN, INT64_MIN, op->vals, jop->naggs, 0);
        }
    }
    /* the record becomes the previous one */
    struct rd_blob h = { t, NONE, NONE };
    if (old != NULL)
        h.expire_check = old->h.expire_check;
    struct dt_blob *b = dt_new(op, r->v, (uint32_t)op->e->job->sources[jop->source].nfields, &h);
    if (b == NULL)
        return -ENOMEM;
    if (old != NULL)
        dt_release(op, old);
    *slot = b;
    if (jop->window.ttl_ms > 0 && b->h.expire_check == NONE && arm_ttl(op, id, &b->h) < 0)
        return -ENOMEM;
    return WIN_ADDED;
}

static void dt_fire_due(struct op_rt *op, int64_t now)
{
    ttl_due(op, now);
}

static void dt_finish(struct op_rt *op)
{
    (void)op;                       /* nothing pending, and no time passes */
}

static size_t dt_blob_bytes(const struct op_rt *op, const void *blob)
{
    (void)op;
    return slab_class_size(((const struct dt_blob *)blob)->size);
}

static void dt_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    (void)op;
    const struct dt_blob *b = blob;
    ckpt_put_i64(w, b->h.touched);
    ckpt_put_i64(w, b->h.expire_check);
    row_save(w, dt_values((struct dt_blob *)b), b->nv);
}

static int dt_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    const struct job_source *src = &op->e->job->sources[op->jop->source];
    struct rd_blob h = { 0, NONE, NONE };
    if (ckpt_get_time(c, &h.touched) < 0 || ckpt_get_time_or(c, &h.expire_check, NONE) < 0)
        return -EINVAL;
    struct value *v = calloc(src->nfields ? src->nfields : 1, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    int bad = row_load(c, src, v) < 0;
    if (op->jop->window.ttl_ms == 0)
        h.expire_check = NONE;
    struct dt_blob *b = bad ? NULL : dt_new(op, v, (uint32_t)src->nfields, &h);
    free(v);
    if (bad)
        return -EINVAL;
    if (b == NULL)
        return -ENOMEM;
    *op_blob(op, id) = b;
    if (h.expire_check != NONE && tqh_add(&op->tqh, h.expire_check, id) < 0)
        return -ENOMEM;
    return 0;
}

const struct win_ops win_detect_ops = {
    .add = dt_add,
    .fire_due = dt_fire_due,
    .finish = dt_finish,
    .release = dt_release,
    .blob_bytes = dt_blob_bytes,
    .save = dt_save,
    .load = dt_load,
};

const struct win_ops win_reduce_ops = {
    .add = rd_add,
    .fire_due = rd_fire_due,
    .finish = rd_finish,
    .release = rd_release,
    .blob_bytes = rd_blob_bytes,
    .save = rd_save,
    .load = rd_load,
};
