/*
 * win_count.c - count windows: the last `count` records of a key, fired
 * every `slide` records of that key.
 *
 * Flink's countWindow(count, slide) on a keyed stream: a GlobalWindow with
 * CountTrigger.of(slide) and CountEvictor.of(count).  Every slide-th record
 * of a key fires the window over that key's last `count` records (fewer
 * while the key has had fewer); countWindow(count) is the tumbling case,
 * slide == count.  Records are counted in the order they arrive: there is
 * no time, so nothing is late and nothing fires on a watermark.  At the
 * end of bounded input a partial window does not fire (Flink's does not
 * either: GlobalWindow never ends), and the state has no TTL: a key's last
 * records are kept, and checkpointed, for as long as the job runs.
 * Results carry no window bounds.
 *
 * Evicting records means knowing what the last `count` records contribute
 * to every aggregate (a min cannot be "subtracted").  Records are grouped
 * into panes of g = gcd(count, slide) records: every window starts and
 * ends on a pane boundary, so a window is the combination of its
 * count / g panes, built when it fires, and a record costs one
 * accumulator update (as sliding windows in time do, win_sliding.c).
 * A key's blob is a ring of count / g pane accumulators, pane p in slot
 * p % (count / g), grown as the key's first panes fill; the pane a new
 * one replaces is one no later window holds.  The tumbling case is one
 * pane, emitted as it is.  Memory per key: count / g accumulators.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

/* The settings (job_operator.conf). */
struct cw_conf {
    int64_t count;                  /* records in a window */
    int64_t slide;                  /* records between firings */
};

struct cw_blob {
    int64_t n;                      /* records of the key so far */
    uint32_t cap;                   /* pane slots allocated, at most the window's panes */
    uint32_t pad;
    /* cap accumulators of op->L.size bytes */
};

/* op->size: count, op->slide: slide, op->pane: records per pane (their gcd). */
static uint32_t panes(const struct op_rt *op)
{
    return (uint32_t)(op->size / op->pane);
}

static size_t blob_size(const struct op_rt *op, size_t cap)
{
    return sizeof(struct cw_blob) + cap * op->L.size;
}

static void *slot_acc(const struct op_rt *op, struct cw_blob *b, uint32_t slot)
{
    return (char *)(b + 1) + (size_t)slot * op->L.size;
}

/* Panes begun so far, and how many of them the blob holds. */
static int64_t begun(const struct op_rt *op, const struct cw_blob *b)
{
    return (b->n + op->pane - 1) / op->pane;
}

static uint32_t held(const struct op_rt *op, const struct cw_blob *b)
{
    int64_t k = begun(op, b);
    return k < panes(op) ? (uint32_t)k : panes(op);
}

/* Room for `want` slots (at most the window's panes), and as many more as
 * the slab class taken anyway holds. */
static uint32_t fit_cap(const struct op_rt *op, uint32_t want)
{
    size_t stride = op->L.size ? op->L.size : 1;
    size_t cap = (slab_class_size(blob_size(op, want)) - sizeof(struct cw_blob)) / stride;
    return cap > panes(op) ? panes(op) : (uint32_t)cap;
}

/* A blob like b (or a new one) with cap slots; b's panes move over. */
static struct cw_blob *grow(struct op_rt *op, struct cw_blob *b, uint32_t cap)
{
    struct slab *slab = engine_slab(op->e);
    struct cw_blob *nb = slab_alloc(slab, blob_size(op, cap));
    if (nb == NULL)
        return NULL;
    memset(nb, 0, blob_size(op, cap));
    if (b != NULL) {
        memcpy(nb, b, blob_size(op, b->cap));  /* accumulators are memcpy-able */
        slab_free(slab, b, blob_size(op, b->cap));
    }
    nb->cap = cap;
    return nb;
}

static void blob_free(struct op_rt *op, struct cw_blob *b)
{
    struct slab *slab = engine_slab(op->e);
    for (uint32_t i = 0, h = held(op, b); i < h; i++)
        agg_release(&op->L, slot_acc(op, b, i), slab);
    slab_free(slab, b, blob_size(op, b->cap));
}

/* The window over the key's last `count` records (its last panes, oldest
 * first, so first() and last() break ties by arrival). */
static void fire(struct op_rt *op, uint32_t id, struct cw_blob *b)
{
    struct slab *slab = engine_slab(op->e);
    int64_t end = b->n / op->pane, lo = end - panes(op);
    if (panes(op) == 1) {
        engine_emit(op, id, INT64_MIN, INT64_MIN, slot_acc(op, b, 0), 0, 0);
        return;
    }
    int rc = 0;
    memset(op->scratch, 0, op->L.size);
    for (int64_t p = lo < 0 ? 0 : lo; p < end && rc == 0; p++)
        rc = agg_merge(&op->L, op->scratch, slot_acc(op, b, (uint32_t)(p % panes(op))),
                       AGG_BORROW, slab);
    if (rc < 0)
        engine_result_lost(op);
    else
        engine_emit(op, id, INT64_MIN, INT64_MIN, op->scratch, 0, 0);
    agg_release_borrowed(&op->L, op->scratch, slab);
}

static int cw_feed(struct op_rt *op, int input, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t wm)
{
    (void)input;
    (void)wm;
    struct slab *slab = engine_slab(op->e);
    void **slot = op_blob(op, id);
    struct cw_blob *b = *slot;
    if (b == NULL) {
        if ((b = grow(op, NULL, fit_cap(op, 1))) == NULL)
            return -ENOMEM;
        *slot = b;
    }
    int64_t p = b->n / op->pane;            /* this record's pane */
    uint32_t s = (uint32_t)(p % panes(op));
    if (b->n % op->pane == 0) {             /* it begins the pane */
        if (p >= panes(op)) {
            agg_release(&op->L, slot_acc(op, b, s), slab);     /* pane p - count/g */
            memset(slot_acc(op, b, s), 0, op->L.size);
        } else if (s >= b->cap) {
            uint32_t cap = b->cap * 2 < panes(op) ? b->cap * 2 : panes(op);
            struct cw_blob *nb = grow(op, b, fit_cap(op, cap));
            if (nb == NULL)
                return -ENOMEM;
            *slot = b = nb;
        }
    }
    if (agg_add(&op->L, slot_acc(op, b, s), r, wres, t, slab) < 0)
        return -ENOMEM;
    if (++b->n % op->slide == 0)
        fire(op, id, b);
    return WIN_ADDED;
}

static void cw_fire_due(struct op_rt *op, int64_t wm)
{
    (void)op;                               /* counted, not timed */
    (void)wm;
}

static void cw_release(struct op_rt *op, void *blob)
{
    blob_free(op, blob);
}

static size_t cw_blob_bytes(const struct op_rt *op, const void *blob)
{
    struct cw_blob *b = (struct cw_blob *)blob;
    size_t n = slab_class_size(blob_size(op, b->cap));
    for (uint32_t i = 0, h = held(op, b); op->L.owns && i < h; i++)
        n += agg_owned_bytes(&op->L, slot_acc(op, b, i));
    return n;
}

/* i64 records so far, u32 panes held, then those panes, oldest first. */
static void cw_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    struct cw_blob *b = (struct cw_blob *)blob;
    uint32_t h = held(op, b);
    ckpt_put_i64(w, b->n);
    ckpt_put_u32(w, h);
    for (int64_t p = begun(op, b) - h; p < begun(op, b); p++)
        agg_save(&op->L, slot_acc(op, b, (uint32_t)(p % panes(op))), w);
}

static int cw_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    int64_t n;
    uint32_t h;
    if (ckpt_get_i64(c, &n) < 0 || n <= 0 || n > INT64_MAX - op->pane ||
        ckpt_get_u32(c, &h) < 0)
        return -EINVAL;
    struct cw_blob probe = { .n = n };
    if (h != held(op, &probe))
        return -EINVAL;
    struct cw_blob *b = grow(op, NULL, fit_cap(op, h));
    if (b == NULL)
        return -ENOMEM;
    b->n = 0;                               /* nothing to release yet */
    int64_t first = begun(op, &probe) - h;
    for (uint32_t i = 0; i < h; i++) {
        uint32_t s = (uint32_t)((first + i) % panes(op));
        int rc = agg_load(&op->L, slot_acc(op, b, s), c, engine_slab(op->e));
        if (rc < 0) {
            for (uint32_t k = 0; k < i; k++)
                agg_release(&op->L, slot_acc(op, b, (uint32_t)((first + k) % panes(op))),
                            engine_slab(op->e));
            slab_free(engine_slab(op->e), b, blob_size(op, b->cap));
            return rc;
        }
    }
    b->n = n;
    *op_blob(op, id) = b;
    return 0;
}

static int cw_init(struct op_rt *op)
{
    const struct cw_conf *cf = op->jop->conf;
    op->size = cf->count;
    op->slide = cf->slide;
    op->pane = gcd64(op->size, op->slide);
    return 0;
}

static const struct op_engine count_engine = {
    .init = cw_init,
    .feed = cw_feed,
    .fire_due = cw_fire_due,
    .release = cw_release,
    .blob_bytes = cw_blob_bytes,
    .save = cw_save,
    .load = cw_load,
};

/* ---- in the job file ---------------------------------------------------------- */

#define CW_MAX 1000000

/* slide defaults to count (tumbling) and may not skip records */
static void cw_validate(struct cm_ctx *c, void *conf)
{
    struct cw_conf *cf = conf;
    struct cm_node *v = cm_get(c, "count");
    if (v != NULL && cm_is_null(v))
        cm_err(c, v, "%s: missing required key 'count'", cm_what(c));
    if (cf->count == 0)
        cf->count = 1;                      /* reported; a neutral value */
    if (cf->slide == 0)
        cf->slide = cf->count;
    if (cf->slide > cf->count)
        cm_err(c, cm_get(c, "slide"), "slide must not be larger than count "
               "(slide %lld > count %lld would skip records)", (long long)cf->slide,
               (long long)cf->count);
}

static const struct cm_entry count_entries[] = {
    { .key = "count", .type = CM_INT, .lo = 1, .hi = CW_MAX,
      .offset = offsetof(struct cw_conf, count),
      .desc = "the window holds the key's last this many records (1 to 1000000)" },
    { .key = "slide", .type = CM_INT, .lo = 1, .hi = CW_MAX,
      .offset = offsetof(struct cw_conf, slide),
      .desc = "the window fires every this many records of the key; at most count "
              "(default: count, tumbling)" },
    { .key = NULL },
};

static const struct cm_map count_map = { count_entries, cw_validate };

static void cw_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    (void)job;
    const struct cw_conf *cf = op->conf;
    fprintf(out, "count %lld record%s, fires every %lld record%s", (long long)cf->count,
            cf->count == 1 ? "" : "s", (long long)cf->slide, cf->slide == 1 ? "" : "s");
}

/* The window is in records, not time: the common text's size and slide
 * are zero, so the state's meaning is here. */
static size_t cw_fingerprint(const struct job *job, const struct job_operator *op, char *buf,
                             size_t size)
{
    (void)job;
    const struct cw_conf *cf = op->conf;
    return (size_t)snprintf(buf, size, ";records=%lld;every=%lld", (long long)cf->count,
                            (long long)cf->slide);
}

const struct op_type op_type_count = {
    .name = "count",
    .block = "window",
    .label = "count window",
    .marker = "count",
    .v1_code = -1,
    .ninputs = 1,
    .map = &count_map,
    .conf_size = sizeof(struct cw_conf),
    .print = cw_print,
    .fingerprint = cw_fingerprint,
    .engine = &count_engine,
};
