/*
 * win_join.c - the interval join of two inputs (Kafka Streams' KStream
 * join with JoinWindows, Flink's interval join), in event time.
 *
 * A left record at time l and a right record at time r with the same key
 * join when |l - r| <= within, whichever arrives first.  Each side is a
 * source, optionally filtered by a `where` (two sides may read one source:
 * its branches); a record both sides accept is taken as a left record and
 * then as a right one (so it joins itself).
 *
 * The join has its own key group, not shared with window operators: the
 * two sides may key by differently named fields, and a record reaches the
 * join through each side that accepts it (join_feed).  A key's blob holds
 * its buffered records ("rows") of both sides in arrival order, each with
 * its event time, side, a matched flag and its values (strings copied).
 *
 * Time is the join's watermark: the smaller of the two sources'.  A record
 * at or behind it is late: counted, sent to late_events or dropped, and
 * neither buffered nor joined (as Flink's interval join drops late
 * records).  Otherwise it is joined at once with every buffered row of the
 * other side within the bound - one result per pair, emitted now, in the
 * order the rows arrived - and buffered.  A row at time t can meet no
 * later record once the watermark reaches t + within (any record still to
 * come is later than the watermark, or late), so it is dropped then; a
 * left join first emits its unmatched left rows with null right fields,
 * an outer join its unmatched rows of both sides, as Kafka Streams does
 * when the join window closes.  One timer per key, at the earliest
 * t + within of its rows (lazy: a stale one is skipped).
 *
 * Results: the operator's fields are expressions over left.<field> and
 * right.<field>; a missing side's fields are null.  The result's key is
 * the join key, named as the left side names it.  No window bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "eval.h"

#define NONE INT64_MAX

struct jn_row {
    uint32_t size;                  /* bytes of this row */
    uint32_t pad;
    /* struct value v[the side's nfields], then their strings' bytes */
};

/* What a scan over a key's rows needs, kept in the blob itself: joining
 * and cleaning up touch a row's values only when it joins or goes. */
struct jn_ref {
    int64_t t;
    struct jn_row *row;
    uint8_t side, matched;
};

struct jn_blob {
    int64_t check;                  /* the pending cleanup timer, or NONE */
    uint32_t n, cap;
    struct jn_ref rows[];           /* arrival order */
};

static size_t blob_size(uint32_t cap)
{
    return sizeof(struct jn_blob) + cap * sizeof(struct jn_ref);
}

static struct value *row_values(const struct jn_row *r)
{
    return (struct value *)(r + 1);
}

static const struct job_source *side_source(const struct op_rt *op, int side)
{
    return &op->e->job->sources[op->jop->join.side[side].source];
}

/* The join's watermark: the smaller of its two sources'. */
static int64_t join_wm(const struct op_rt *op)
{
    const struct job_join *j = &op->jop->join;
    int64_t a = op->e->src[j->side[0].source].wm.current;
    int64_t b = op->e->src[j->side[1].source].wm.current;
    return a < b ? a : b;
}

static int64_t expiry(const struct op_rt *op, int64_t t)
{
    int64_t x;
    return __builtin_add_overflow(t, op->jop->join.within_ms, &x) ? INT64_MAX : x;
}

static void row_free(struct op_rt *op, struct jn_row *r)
{
    slab_free(engine_slab(op->e), r, r->size);
}

/* Emits one result: left and right values, either may be NULL (null fields). */
static void emit(struct op_rt *op, uint32_t id, const struct value *l, const struct value *r)
{
    const struct job_operator *jop = op->jop;
    for (size_t i = 0; i < jop->naggs; i++)
        eval_value2(jop->aggs[i].value, l, r, &op->vals[i]);
    engine_emit_values(op, id, INT64_MIN, INT64_MIN, op->vals, jop->naggs, 0);
}

static int arm(struct op_rt *op, uint32_t id, struct jn_blob *b, int64_t at)
{
    if (b->check != NONE && b->check <= at)
        return 0;
    b->check = at;
    return tqh_add(&op->tqh, at, id);
}

/* Appends row r (side, time t) to key id's blob (growing it); the blob
 * owns r, or r is freed when that fails. */
static int append(struct op_rt *op, uint32_t id, struct jn_row *r, int side, int64_t t,
                  int matched)
{
    void **slot = op_blob(op, id);
    struct jn_blob *b = *slot;
    if (b == NULL || b->n == b->cap) {
        uint32_t cap = b == NULL ? 2 : b->cap * 2;
        struct jn_blob *nb = cap > (1u << 30) ? NULL
                             : slab_alloc(engine_slab(op->e), blob_size(cap));
        if (nb == NULL) {
            row_free(op, r);
            return -ENOMEM;
        }
        nb->check = b ? b->check : NONE;
        nb->n = b ? b->n : 0;
        nb->cap = cap;
        if (b != NULL) {
            memcpy(nb->rows, b->rows, b->n * sizeof(*b->rows));
            slab_free(engine_slab(op->e), b, blob_size(b->cap));
        }
        *slot = b = nb;
    }
    b->rows[b->n++] = (struct jn_ref){ t, r, (uint8_t)side, (uint8_t)(matched != 0) };
    return arm(op, id, b, expiry(op, t));
}

static struct jn_row *row_new(struct op_rt *op, int side, const struct value *v)
{
    uint32_t nv = (uint32_t)side_source(op, side)->nfields;
    size_t size = sizeof(struct jn_row) + row_bytes(v, nv);
    if (size > UINT32_MAX)
        return NULL;
    struct jn_row *r = slab_alloc(engine_slab(op->e), size);
    if (r == NULL)
        return NULL;
    r->size = (uint32_t)size;
    r->pad = 0;
    row_copy(row_values(r), v, nv);
    return r;
}

/* Record r (already judged not late) as a record of `side` for key id. */
static int jn_add(struct op_rt *op, uint32_t id, const struct record *r, int side)
{
    int64_t within = op->jop->join.within_ms, t = r->event_time;
    struct jn_blob *b = *op_blob(op, id);
    int matched = 0;
    for (uint32_t i = 0; b != NULL && i < b->n; i++) {
        struct jn_ref *o = &b->rows[i];
        if (o->side == side)
            continue;
        /* |t - o->t| <= within, without overflow */
        if ((t >= o->t && t - within <= o->t) || (t < o->t && o->t - within <= t)) {
            o->matched = 1;
            matched = 1;
            if (side == 0)
                emit(op, id, r->v, row_values(o->row));
            else
                emit(op, id, row_values(o->row), r->v);
        }
    }
    struct jn_row *row = row_new(op, side, r->v);
    if (row == NULL)
        return -ENOMEM;
    return append(op, id, row, side, t, matched);
}

int join_feed(struct op_rt *op, int source, const struct record *r)
{
    const struct job_join *j = &op->jop->join;
    struct group *g = op->g;
    int late = 0, rc = WIN_ADDED;
    int64_t wm = join_wm(op);
    for (int side = 0; side < 2; side++) {
        const struct job_join_side *sd = &j->side[side];
        if (sd->source != source || (sd->where != NULL && !eval_where(sd->where, r)))
            continue;
        if (r->event_time <= wm) {
            late = 1;
            continue;
        }
        const char *key;
        size_t klen;
        if (engine_key_encode(g, sd->key_fields, r, &key, &klen) < 0)
            return -ENOMEM;
        uint32_t id = st_upsert(&g->t, key, klen, st_hash(&g->t, key, klen));
        if (id == ST_NONE)
            return -ENOMEM;
        if (jn_add(op, id, r, side) < 0)
            rc = -ENOMEM;
        engine_key_maybe_delete(op, id);
    }
    return rc < 0 ? rc : late ? WIN_LATE : WIN_ADDED;
}

/* Whether an unmatched row of side `side` is emitted when dropped. */
static int emits_unmatched(const struct op_rt *op, int side)
{
    enum join_type t = op->jop->join.type;
    return t == JOIN_OUTER || (t == JOIN_LEFT && side == 0);
}

/* Drops key id's rows the watermark wm has closed. */
static void cleanup(struct op_rt *op, uint32_t id, int64_t wm)
{
    void **slot = op_blob(op, id);
    struct jn_blob *b = *slot;
    uint32_t k = 0;
    int64_t next = NONE;
    for (uint32_t i = 0; i < b->n; i++) {
        struct jn_ref r = b->rows[i];
        int64_t x = expiry(op, r.t);
        if (x > wm) {
            b->rows[k++] = r;
            next = x < next ? x : next;
            continue;
        }
        if (!r.matched && emits_unmatched(op, r.side))
            emit(op, id, r.side == 0 ? row_values(r.row) : NULL,
                 r.side == 1 ? row_values(r.row) : NULL);
        row_free(op, r.row);
    }
    b->n = k;
    b->check = NONE;
    if (k == 0) {
        slab_free(engine_slab(op->e), b, blob_size(b->cap));
        *slot = NULL;
        engine_key_maybe_delete(op, id);
    } else if (arm(op, id, b, next) < 0) {
        b->check = NONE;            /* looked at again on its next record or a restore */
        engine_result_lost(op);
    }
}

static void jn_fire_due(struct op_rt *op, int64_t ignored)
{
    (void)ignored;                  /* one source's; the join follows both */
    int64_t wm = join_wm(op), T;
    uint32_t id;
    while (tqh_pop_due(&op->tqh, wm, &T, &id)) {
        struct jn_blob *b = *op_blob(op, id);
        if (b != NULL && b->check == T)
            cleanup(op, id, wm);
    }
}

static void jn_release(struct op_rt *op, void *blob)
{
    struct jn_blob *b = blob;
    for (uint32_t i = 0; i < b->n; i++)
        row_free(op, b->rows[i].row);
    slab_free(engine_slab(op->e), b, blob_size(b->cap));
}

static size_t jn_blob_bytes(const struct op_rt *op, const void *blob)
{
    (void)op;
    const struct jn_blob *b = blob;
    size_t n = slab_class_size(blob_size(b->cap));
    for (uint32_t i = 0; i < b->n; i++)
        n += slab_class_size(b->rows[i].row->size);
    return n;
}

static void jn_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    const struct jn_blob *b = blob;
    ckpt_put_u32(w, b->n);
    for (uint32_t i = 0; i < b->n; i++) {
        const struct jn_ref *r = &b->rows[i];
        ckpt_put_u32(w, r->side);
        ckpt_put_u32(w, r->matched);
        ckpt_put_i64(w, r->t);
        row_save(w, row_values(r->row), (uint32_t)side_source(op, r->side)->nfields);
    }
}

static int jn_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    uint32_t n;
    if (ckpt_get_u32(c, &n) < 0 || n == 0)
        return -EINVAL;
    size_t nmax = side_source(op, 0)->nfields > side_source(op, 1)->nfields
                      ? side_source(op, 0)->nfields : side_source(op, 1)->nfields;
    struct value *v = calloc(nmax ? nmax : 1, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        uint32_t side, matched;
        int64_t t;
        if (ckpt_get_u32(c, &side) < 0 || side > 1 || ckpt_get_u32(c, &matched) < 0 ||
            matched > 1 || ckpt_get_time(c, &t) < 0 ||
            row_load(c, side_source(op, (int)side), v) < 0) {
            rc = -EINVAL;
            break;
        }
        struct jn_row *r = row_new(op, (int)side, v);
        if (r == NULL || append(op, id, r, (int)side, t, (int)matched) < 0)
            rc = -ENOMEM;
    }
    free(v);
    return rc;
}

const struct win_ops win_join_ops = {
    .add = NULL,                    /* records come through join_feed */
    .fire_due = jn_fire_due,
    .finish = NULL,
    .release = jn_release,
    .blob_bytes = jn_blob_bytes,
    .save = jn_save,
    .load = jn_load,
};
