/*
 * win_sliding.c - tumbling and sliding windows over panes.
 *
 * A record updates exactly one pane: the slice of length
 * gcd(size, slide) holding its time.  A window [k*slide, k*slide + size)
 * is the combination of its panes, built only when it fires, so a record
 * costs one accumulator update however many windows it belongs to (a 1h
 * window sliding every 10m would otherwise update six copies).  Tumbling
 * windows are the case slide == size: one pane per window.
 *
 * Per key, a blob from the slab: a header and the key's panes, sorted by
 * pane index, each an index and an accumulator block.  The header keeps
 *   next_end:   the end of the next window with data that has not fired;
 *   next_check: the watermark at which to look at the key again, the
 *               earlier of next_end - 1 and the first pane expiry; the key
 *               is in the timer queue at that time.
 * A pane expires when the last window containing it is past
 * end - 1 + allowed_lateness.
 *
 * A timer at T does what is due at T and no more: fire window next_end if
 * next_end - 1 == T, drop panes that expire at or before T, and re-arm.
 * Because the queue pops times in order and a re-armed time may already
 * be due, a watermark jump fires a key's windows one by one in time order,
 * interleaved with other keys' as Flink's timer service would.
 *
 * Lateness (docs/semantics.md): a window is late for a record when
 * end - 1 + allowed_lateness <= the watermark.  A record late for every
 * window it belongs to is dropped and reported; otherwise it updates its
 * pane, which only the windows still to fire (or to re-fire) will read.
 * A window that has fired but is within its allowed lateness fires again
 * at once with the record included.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

struct sl_blob {
    uint32_t n, cap;
    int64_t next_end;
    int64_t next_check;
    /* then cap panes of pane_stride(op) bytes: int64 index, accumulator */
};

#define NONE INT64_MAX

static size_t pane_stride(const struct op_rt *op)
{
    return sizeof(int64_t) + op->L.size;
}

static size_t blob_size(const struct op_rt *op, size_t cap)
{
    return sizeof(struct sl_blob) + cap * pane_stride(op);
}

/* Room for at least `want` entries, and as many more as the slab class
 * that has to be taken anyway holds. */
static size_t fit_cap(const struct op_rt *op, size_t want)
{
    if (want > 4 && want < want + want / 4)
        want += want / 4;           /* large blobs grow geometrically */
    return (slab_class_size(blob_size(op, want)) - sizeof(struct sl_blob)) / pane_stride(op);
}

static int64_t *pane_at(const struct op_rt *op, struct sl_blob *b, size_t i)
{
    return (int64_t *)((char *)(b + 1) + i * pane_stride(op));
}

static void *pane_acc(int64_t *pane)
{
    return pane + 1;
}

/* Window k is [k*slide, k*slide + size).  Windows holding time t: */
static int64_t k_last(const struct op_rt *op, int64_t t)
{
    return floordiv(t, op->slide);
}

static int64_t k_first(const struct op_rt *op, int64_t t)
{
    return floordiv(t - op->size, op->slide) + 1;
}

static int64_t end_of(const struct op_rt *op, int64_t k)
{
    return k * op->slide + op->size;
}

static int64_t pane_expiry(const struct op_rt *op, int64_t idx)
{
    return end_of(op, k_last(op, idx * op->pane)) - 1 + op->al;
}

/* The end of the first window ending after `after` that holds a pane,
 * or NONE. */
static int64_t next_window(const struct op_rt *op, struct sl_blob *b, int64_t after)
{
    for (size_t i = 0; i < b->n; i++) {
        int64_t ps = *pane_at(op, b, i) * op->pane;
        int64_t last = end_of(op, k_last(op, ps));
        if (last <= after)
            continue;               /* every window of this pane is done */
        int64_t first = end_of(op, k_first(op, ps));
        return first > after ? first : after + op->slide;
    }
    return NONE;
}

static void arm(struct op_rt *op, uint32_t id, struct sl_blob *b)
{
    int64_t check = b->next_end == NONE ? NONE : b->next_end - 1;
    if (op->al > 0)
        for (size_t i = 0; i < b->n; i++) {
            int64_t x = pane_expiry(op, *pane_at(op, b, i));
            if (x < check)
                check = x;
        }
    b->next_check = check;
    if (check != NONE && tqb_add(&op->tqb, check, id) < 0) {
        b->next_check = NONE;       /* the key's next record sets it again */
        engine_result_lost(op);
    }
}

/* Combines the panes of window [end - size, end) into op->scratch and
 * emits it.  Nothing is emitted for a window without panes, nor for one
 * whose panes cannot be combined for lack of memory (counted as lost: a
 * count_distinct short of some values would be a wrong result). */
static void fire_window(struct op_rt *op, uint32_t id, struct sl_blob *b, int64_t end,
                        int refire)
{
    struct slab *slab = engine_slab(op->e);
    int64_t lo = floordiv(end - op->size, op->pane), hi = floordiv(end, op->pane);
    int any = 0, rc = 0;
    memset(op->scratch, 0, op->L.size);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        int64_t *p = pane_at(op, b, i);
        if (*p < lo || *p >= hi)
            continue;
        rc = agg_merge(&op->L, op->scratch, pane_acc(p), AGG_BORROW, slab);
        any = 1;
    }
    if (rc < 0)
        engine_result_lost(op);
    else if (any)
        engine_emit(op, id, end - op->size, end, op->scratch, 0, refire);
    agg_release_borrowed(&op->L, op->scratch, slab);
}

static void blob_free(struct op_rt *op, struct sl_blob *b)
{
    struct slab *slab = engine_slab(op->e);
    for (size_t i = 0; i < b->n; i++)
        agg_release(&op->L, pane_acc(pane_at(op, b, i)), slab);
    slab_free(slab, b, blob_size(op, b->cap));
}

/* The pane for index idx, inserted in order when absent; NULL when out of
 * memory.  *bp may move. */
static int64_t *pane_get(struct op_rt *op, struct sl_blob **bp, int64_t idx)
{
    struct sl_blob *b = *bp;
    size_t i = b->n;
    while (i > 0 && *pane_at(op, b, i - 1) > idx)
        i--;
    if (i > 0 && *pane_at(op, b, i - 1) == idx)
        return pane_at(op, b, i - 1);
    if (b->n == b->cap) {
        size_t cap = fit_cap(op, (size_t)b->n + 1);
        struct sl_blob *nb = slab_alloc(engine_slab(op->e), blob_size(op, cap));
        if (nb == NULL)
            return NULL;
        memcpy(nb, b, blob_size(op, b->n));
        nb->cap = (uint32_t)cap;
        slab_free(engine_slab(op->e), b, blob_size(op, b->cap));
        *bp = b = nb;
    }
    int64_t *p = pane_at(op, b, i);
    memmove((char *)p + pane_stride(op), p, (b->n - i) * pane_stride(op));
    memset(p, 0, pane_stride(op));
    *p = idx;
    b->n++;
    return p;
}

static int sl_feed(struct op_rt *op, int input, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t wm)
{
    (void)input;
    int64_t klo = k_first(op, t), khi = k_last(op, t);
    if (end_of(op, khi) - 1 + op->al <= wm)
        return WIN_LATE;

    void **slot = op_blob(op, id);
    struct sl_blob *b = *slot;
    if (b == NULL) {
        size_t cap = fit_cap(op, 1);
        b = slab_alloc(engine_slab(op->e), blob_size(op, cap));
        if (b == NULL)
            return -ENOMEM;
        memset(b, 0, sizeof(*b));
        b->cap = (uint32_t)cap;
        b->next_end = NONE;
        b->next_check = NONE;
        *slot = b;
    }
    int64_t *p = pane_get(op, &b, floordiv(t, op->pane));
    *slot = b;
    if (p == NULL)
        return -ENOMEM;
    if (agg_add(&op->L, pane_acc(p), r, wres, t, engine_slab(op->e)) < 0)
        return -ENOMEM;

    int64_t first_pending = NONE;
    for (int64_t k = klo; k <= khi; k++) {
        int64_t end = end_of(op, k);
        if (end - 1 + op->al <= wm)
            continue;                       /* expired: this record is late for it */
        if (end - 1 <= wm) {
            fire_window(op, id, b, end, 1); /* allowed lateness: fire again now */
            continue;
        }
        if (first_pending == NONE)
            first_pending = end;
    }
    int64_t old_check = b->next_check;
    if (first_pending < b->next_end)
        b->next_end = first_pending;
    int64_t check = b->next_end == NONE ? NONE : b->next_end - 1;
    if (op->al > 0) {
        int64_t x = pane_expiry(op, floordiv(t, op->pane));
        if (x < check)
            check = x;
    }
    if (check < old_check) {
        b->next_check = check;
        if (tqb_add(&op->tqb, check, id) < 0)
            return -ENOMEM;
    }
    return WIN_ADDED;
}

/* The work due for key id at time T (a popped timer). */
static void sl_check(struct op_rt *op, uint32_t id, int64_t T)
{
    const struct state_table *t = &op->g->t;
    if (id >= t->next_id || st_entry(t, id)->klen == ST_NONE)
        return;                             /* the key is gone: a stale timer */
    void **slot = op_blob(op, id);
    struct sl_blob *b = *slot;
    if (b == NULL || b->next_check != T)
        return;                             /* stale */
    if (b->next_end != NONE && b->next_end - 1 <= T) {
        int64_t end = b->next_end;
        fire_window(op, id, b, end, 0);
        b->next_end = next_window(op, b, end);
    }
    size_t keep = 0;
    for (size_t i = 0; i < b->n; i++) {
        int64_t *p = pane_at(op, b, i);
        if (pane_expiry(op, *p) <= T) {
            agg_release(&op->L, pane_acc(p), engine_slab(op->e));
            continue;
        }
        if (keep != i)
            memmove(pane_at(op, b, keep), p, pane_stride(op));
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
    arm(op, id, b);
}

static int sl_pop(struct op_rt *op, int64_t now, int64_t *time, uint32_t *id)
{
    return tqb_pop_due(&op->tqb, now, time, id);
}

static int64_t sl_next(const struct op_rt *op)
{
    return tqb_next(&op->tqb);
}

static size_t sl_used(const struct op_rt *op, const void *blob)
{
    return blob_size(op, ((const struct sl_blob *)blob)->n);
}

static const struct win_timers sl_timers = { sl_pop, sl_next, sl_check, sl_used };

static void sl_fire_due(struct op_rt *op, int64_t wm)
{
    win_fire_due(op, wm, &sl_timers);
}

static void sl_release(struct op_rt *op, void *blob)
{
    blob_free(op, blob);
}

static size_t sl_blob_bytes(const struct op_rt *op, const void *blob)
{
    const struct sl_blob *b = blob;
    size_t n = slab_class_size(blob_size(op, b->cap));
    if (op->L.owns)
        for (size_t i = 0; i < b->n; i++)
            n += agg_owned_bytes(&op->L, pane_acc(pane_at(op, (struct sl_blob *)b, i)));
    return n;
}

static void sl_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    const struct sl_blob *b = blob;
    ckpt_put_u32(w, b->n);
    ckpt_put_i64(w, b->next_end);
    ckpt_put_i64(w, b->next_check);
    for (size_t i = 0; i < b->n; i++) {
        int64_t *p = pane_at(op, (struct sl_blob *)b, i);
        ckpt_put_i64(w, *p);
        agg_save(&op->L, pane_acc(p), w);
    }
}

static int sl_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    uint32_t n;
    int64_t next_end, next_check;
    if (ckpt_get_u32(c, &n) < 0 || ckpt_get_time_or(c, &next_end, NONE) < 0 ||
        ckpt_get_time_or(c, &next_check, NONE) < 0 || n == 0 || n > (1u << 24))
        return -EINVAL;
    /* pane indices: ascending, their start times inside the time limit */
    int64_t idx_max = CKPT_TIME_LIMIT / op->pane, prev = -idx_max - 1;
    size_t cap = fit_cap(op, n);
    struct sl_blob *b = slab_alloc(engine_slab(op->e), blob_size(op, cap));
    if (b == NULL)
        return -ENOMEM;
    memset(b, 0, sizeof(*b));
    b->cap = (uint32_t)cap;
    b->next_end = next_end;
    b->next_check = next_check;
    for (uint32_t i = 0; i < n; i++) {
        int64_t *p = pane_at(op, b, i);
        int rc = ckpt_get_i64(c, p) < 0 || *p <= prev || *p > idx_max ? -EINVAL
                 : agg_load(&op->L, pane_acc(p), c, engine_slab(op->e));
        prev = *p;
        if (rc < 0) {
            blob_free(op, b);
            return rc;
        }
        b->n = i + 1;
    }
    *op_blob(op, id) = b;
    if (next_check != NONE && tqb_add(&op->tqb, next_check, id) < 0)
        return -ENOMEM;
    return 0;
}

/* Tumbling windows are sliding windows whose slide is their size. */
static int sl_init(struct op_rt *op)
{
    const struct job_window *w = &op->jop->window;
    op->size = w->size_ms;
    op->slide = w->slide_ms ? w->slide_ms : w->size_ms;
    op->pane = gcd64(op->size, op->slide);
    return 0;
}

static const struct op_engine sliding_engine = {
    .init = sl_init,
    .feed = sl_feed,
    .fire_due = sl_fire_due,
    .release = sl_release,
    .blob_bytes = sl_blob_bytes,
    .save = sl_save,
    .load = sl_load,
};

/* ---- in the job file ---------------------------------------------------------- */

static void sl_validate(struct cm_ctx *c, void *conf)
{
    struct job_operator *op = conf;
    const struct job_window *w = &op->window;
    if (w->size_ms > 0 && w->slide_ms > w->size_ms) {
        char a[32], b[32];
        duration_format(w->slide_ms, a, sizeof(a));
        duration_format(w->size_ms, b, sizeof(b));
        cm_err(c, cm_get(c, "slide"), "slide must not be larger than size "
               "(slide %s > size %s would skip events)", a, b);
    }
    win_time_validate(c, op);
}

static const struct cm_entry tumbling_entries[] = {
    WIN_TYPE_ENTRY,
    { .key = "size", .type = CM_DURATION, .flags = CM_REQUIRED | CM_POSITIVE,
      .offset = offsetof(struct job_operator, window.size_ms),
      .desc = "the length of each window" },
    WIN_TIME_ENTRIES,
    { .key = NULL },
};

static const struct cm_entry sliding_entries[] = {
    WIN_TYPE_ENTRY,
    { .key = "size", .type = CM_DURATION, .flags = CM_REQUIRED | CM_POSITIVE,
      .offset = offsetof(struct job_operator, window.size_ms),
      .desc = "the length of each window" },
    { .key = "slide", .type = CM_DURATION, .flags = CM_REQUIRED | CM_POSITIVE,
      .offset = offsetof(struct job_operator, window.slide_ms),
      .desc = "how often a window starts; at most size" },
    WIN_TIME_ENTRIES,
    { .key = NULL },
};

static const struct cm_map tumbling_map = { tumbling_entries, sl_validate };
static const struct cm_map sliding_map = { sliding_entries, sl_validate };

static void tumbling_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    char a[32];
    duration_format(op->window.size_ms, a, sizeof(a));
    fprintf(out, "tumbling %s", a);
    win_time_print(out, job, op);
}

static void sliding_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    char a[32], b[32];
    duration_format(op->window.size_ms, a, sizeof(a));
    duration_format(op->window.slide_ms, b, sizeof(b));
    fprintf(out, "sliding %s every %s", a, b);
    win_time_print(out, job, op);
}

const struct op_type op_type_tumbling = {
    .name = "tumbling",
    .block = "window",
    .label = "tumbling window",
    .v1_code = 0,
    .ninputs = 1,
    .flags = OPT_BOUNDS,
    .map = &tumbling_map,
    .print = tumbling_print,
    .engine = &sliding_engine,
};

const struct op_type op_type_sliding = {
    .name = "sliding",
    .block = "window",
    .label = "sliding window",
    .v1_code = 1,
    .ninputs = 1,
    .flags = OPT_BOUNDS,
    .map = &sliding_map,
    .print = sliding_print,
    .engine = &sliding_engine,
};
