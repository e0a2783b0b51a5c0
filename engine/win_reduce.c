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
 * State TTL follows Flink's StateTtlConfig, in processing time
 * (state_ttl.c): every record writes the key's clock, and with
 * on_read_and_write every interval emission reads it too.  An expired
 * state that is not to be read (never_return_expired) makes a record
 * start from an empty accumulator and skips a pending emission.
 *
 * Each key has at most one TTL timer (the op's heap) and one emission
 * timer (emit_at, the op's buckets) pending.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

#define NONE TTL_NONE

struct rd_blob {
    struct ttl_clock ttl;
    int64_t emit_at;                /* the pending emission, or NONE */
    /* the accumulator follows */
};

static size_t blob_size(const struct op_rt *op)
{
    return sizeof(struct rd_blob) + op->L.size;
}

static void *acc(struct rd_blob *b)
{
    return b + 1;
}

static void blob_free(struct op_rt *op, struct rd_blob *b)
{
    agg_release(&op->L, acc(b), engine_slab(op->e));
    slab_free(engine_slab(op->e), b, blob_size(op));
}

static int rd_feed(struct op_rt *op, int input, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t now)
{
    (void)input;
    (void)now;
    void **slot = op_blob(op, id);
    struct rd_blob *b = *slot;
    if (b != NULL && ttl_hidden(op, &b->ttl, t)) {
        /* expired and not to be read: the record starts the key afresh */
        agg_release(&op->L, acc(b), engine_slab(op->e));
        memset(acc(b), 0, op->L.size);
    }
    if (b == NULL) {
        b = slab_alloc(engine_slab(op->e), blob_size(op));
        if (b == NULL)
            return -ENOMEM;
        memset(b, 0, blob_size(op));
        b->ttl.expire_check = b->emit_at = NONE;
        *slot = b;
    }
    if (agg_add(&op->L, acc(b), r, wres, t, engine_slab(op->e)) < 0)
        return -ENOMEM;
    b->ttl.touched = t;
    if (op->jop->window.ttl_ms > 0 && b->ttl.expire_check == NONE && ttl_arm(op, id, &b->ttl) < 0)
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
        if (ttl_hidden(op, &b->ttl, T))
            continue;               /* expired unread: its TTL timer frees it */
        engine_emit(op, id, INT64_MIN, INT64_MIN, acc(b), 0, 0);
        if (op->jop->window.ttl_update == TTL_ON_READ_AND_WRITE && T > b->ttl.touched)
            b->ttl.touched = T;     /* a read refreshes the clock */
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
    ckpt_put_i64(w, b->ttl.touched);
    ckpt_put_i64(w, b->ttl.expire_check);
    ckpt_put_i64(w, b->emit_at);
    agg_save(&op->L, b + 1, w);
}

static int rd_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    struct rd_blob *b = slab_alloc(engine_slab(op->e), blob_size(op));
    if (b == NULL)
        return -ENOMEM;
    memset(b, 0, sizeof(*b));
    int rc = ckpt_get_time(c, &b->ttl.touched) < 0 ||
             ckpt_get_time_or(c, &b->ttl.expire_check, NONE) < 0 ||
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
        b->ttl.expire_check = NONE;
    if (b->emit_at != NONE && tqb_add(&op->tqb, b->emit_at, id) < 0)
        return -ENOMEM;
    if (b->ttl.expire_check != NONE && tqh_add(&op->tqh, b->ttl.expire_check, id) < 0)
        return -ENOMEM;
    return 0;
}

static const struct op_engine reduce_engine = {
    .feed = rd_feed,
    .fire_due = rd_fire_due,
    .finish = rd_finish,
    .release = rd_release,
    .blob_bytes = rd_blob_bytes,
    .save = rd_save,
    .load = rd_load,
};

/* ---- in the job file ---------------------------------------------------------- */

/* emit: on_update | every D */
static void rd_read_emit(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct job_operator *op = conf;
    const char *s = v ? cm_scalar(c, v, "'emit'") : NULL;
    if (s == NULL || strcmp(s, "on_update") == 0)
        return;
    char msg[200];
    int64_t ms = 0;
    if (strncmp(s, "every ", 6) != 0)
        cm_err(c, v, "emit: expected on_update or \"every <duration>\", got \"%.40s\"", s);
    else if (duration_parse(s + 6, &ms, msg, sizeof(msg)) < 0)
        cm_err(c, v, "emit: %s", msg);
    else if (ms <= 0)
        cm_err(c, v, "emit: the interval must be greater than zero, got %s", s + 6);
    else
        op->window.emit_every_ms = ms;
}

static const struct cm_entry reduce_entries[] = {
    { .key = "emit", .type = CM_CUSTOM, .read = rd_read_emit,
      .desc = "on_update, or every <duration>: when a key's result is emitted" },
    TTL_ENTRIES,
    { .key = NULL },
};

static const struct cm_map reduce_map = { reduce_entries, ttl_validate };

static void rd_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    (void)job;
    char a[32];
    int64_t every = op->window.emit_every_ms;
    duration_format(every, a, sizeof(a));
    fprintf(out, "running aggregates, emitted %s%s", every ? "every " : "on every update",
            every ? a : "");
    ttl_print(out, op);
}

const struct op_type op_type_reduce = {
    .name = "reduce",
    .block = "reduce",
    .label = "reduce",
    .v1_code = 4,
    .ninputs = 1,
    .flags = OPT_PROCESSING,
    .map = &reduce_map,
    .print = rd_print,
    .engine = &reduce_engine,
};
