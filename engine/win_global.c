/*
 * win_global.c - the global window with a count trigger.
 *
 * Flink's GlobalWindows with CountTrigger.of(N): one window per key that
 * never ends; every Nth record of the key fires it with the aggregates over
 * every record of the key so far (the trigger fires without purging).  It
 * has no time, so nothing is ever late and nothing fires on a watermark or
 * at the end of bounded input: the state is a running aggregate, kept (and
 * checkpointed) for as long as the job runs.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

struct gl_blob {
    int64_t count;                  /* records since the key began */
    /* accumulator follows */
};

static size_t blob_size(const struct op_rt *op)
{
    return sizeof(struct gl_blob) + op->L.size;
}

static int gl_feed(struct op_rt *op, int input, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t wm)
{
    (void)input;
    (void)wm;
    void **slot = op_blob(op, id);
    struct gl_blob *b = *slot;
    if (b == NULL) {
        b = slab_alloc(engine_slab(op->e), blob_size(op));
        if (b == NULL)
            return -ENOMEM;
        memset(b, 0, blob_size(op));
        *slot = b;
    }
    if (agg_add(&op->L, b + 1, r, wres, t, engine_slab(op->e)) < 0)
        return -ENOMEM;
    if (++b->count % op->jop->window.trigger_count == 0)
        engine_emit(op, id, INT64_MIN, INT64_MIN, b + 1, 0, 0);
    return WIN_ADDED;
}

static void gl_fire_due(struct op_rt *op, int64_t wm)
{
    (void)op;
    (void)wm;
}

static void gl_release(struct op_rt *op, void *blob)
{
    agg_release(&op->L, (struct gl_blob *)blob + 1, engine_slab(op->e));
    slab_free(engine_slab(op->e), blob, blob_size(op));
}

static size_t gl_blob_bytes(const struct op_rt *op, const void *blob)
{
    return slab_class_size(blob_size(op)) +
           agg_owned_bytes(&op->L, (const struct gl_blob *)blob + 1);
}

static void gl_save(const struct op_rt *op, const void *blob, struct ckpt_writer *w)
{
    const struct gl_blob *b = blob;
    ckpt_put_i64(w, b->count);
    agg_save(&op->L, b + 1, w);
}

static int gl_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    struct gl_blob *b = slab_alloc(engine_slab(op->e), blob_size(op));
    if (b == NULL)
        return -ENOMEM;
    int rc = ckpt_get_i64(c, &b->count) < 0 || b->count < 0 ? -EINVAL
             : agg_load(&op->L, b + 1, c, engine_slab(op->e));
    if (rc < 0) {
        slab_free(engine_slab(op->e), b, blob_size(op));
        return rc;
    }
    *op_blob(op, id) = b;
    return 0;
}

static const struct op_engine global_engine = {
    .feed = gl_feed,
    .fire_due = gl_fire_due,
    .release = gl_release,
    .blob_bytes = gl_blob_bytes,
    .save = gl_save,
    .load = gl_load,
};

/* ---- in the job file ---------------------------------------------------------- */

/* trigger: "count N" */
static void gl_read_trigger(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct job_operator *op = conf;
    if (v == NULL) {
        cm_err(c, NULL, "%s: missing required key 'trigger' (like \"count 100\")", cm_what(c));
        return;
    }
    const char *s = cm_scalar(c, v, "'trigger'");
    if (s == NULL)
        return;
    long long n = 0;
    int ok = strncmp(s, "count ", 6) == 0;
    const char *p = s + 6;
    while (ok && *p == ' ')
        p++;
    ok = ok && *p != '\0';
    for (; ok && *p; p++) {
        if (*p < '0' || *p > '9' || n > 1000000000000LL)
            ok = 0;
        else
            n = n * 10 + (*p - '0');
    }
    if (!ok)
        cm_err(c, v, "trigger: expected \"count N\" with N a whole number, got \"%.40s\"", s);
    else if (n < 1 || n > 1000000000000LL)
        cm_err(c, v, "trigger: count must be between 1 and 1000000000000, got %lld", n);
    else
        op->window.trigger_count = n;
}

static const struct cm_entry global_entries[] = {
    WIN_TYPE_ENTRY,
    { .key = "trigger", .type = CM_CUSTOM, .read = gl_read_trigger,
      .desc = "count N: the window fires every N records of the key" },
    { .key = NULL },
};

static const struct cm_map global_map = { global_entries, NULL };

static void gl_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    (void)job;
    fprintf(out, "global, fires every %lld records", (long long)op->window.trigger_count);
}

const struct op_type op_type_global = {
    .name = "global",
    .block = "window",
    .label = "global window",
    .v1_code = 3,
    .ninputs = 1,
    .map = &global_map,
    .print = gl_print,
    .engine = &global_engine,
};
