/*
 * win_detect.c - the detect operator: each record against the key's
 * previous one (the fraud rule of Flink's keyed-state example).
 *
 * A key's blob is its previous record: its decoded values, strings copied
 * (row.c), behind a TTL clock (state_ttl.c; every record both reads and
 * writes it, so both `update` kinds behave alike).  For each record, when
 * the key has a previous record that is visible, the `when` condition over
 * current.<field> and previous.<field> decides whether the detect's fields
 * (expressions, no accumulator) are emitted; then the record becomes the
 * previous one and the clock is its processing time.  A key's first
 * record, or its first after its state expired unread, emits nothing.
 * Nothing is ever late, nothing waits: the only timer is the TTL's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "eval.h"

#define NONE TTL_NONE

struct dt_blob {
    struct ttl_clock ttl;
    uint32_t size, nv;              /* the whole blob's bytes; values */
    /* struct value v[nv], then their strings' bytes */
};

static struct value *dt_values(struct dt_blob *b)
{
    return (struct value *)(b + 1);
}

/* A blob holding record r's values (strings copied), with head h. */
static struct dt_blob *dt_new(struct op_rt *op, const struct value *v, uint32_t nv,
                              const struct ttl_clock *h)
{
    size_t size = sizeof(struct dt_blob) + row_bytes(v, nv);
    if (size > UINT32_MAX)
        return NULL;
    struct dt_blob *b = slab_alloc(engine_slab(op->e), size);
    if (b == NULL)
        return NULL;
    b->ttl = *h;
    b->size = (uint32_t)size;
    b->nv = nv;
    row_copy(dt_values(b), v, nv);
    return b;
}

static void dt_release(struct op_rt *op, void *blob)
{
    slab_free(engine_slab(op->e), blob, ((struct dt_blob *)blob)->size);
}

static int dt_feed(struct op_rt *op, int input, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t now)
{
    (void)input;
    (void)wres;
    (void)now;
    const struct job_operator *jop = op->jop;
    void **slot = op_blob(op, id);
    struct dt_blob *old = *slot;
    if (old != NULL && !ttl_hidden(op, &old->ttl, t)) {
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
    struct ttl_clock h = { t, NONE };
    if (old != NULL)
        h.expire_check = old->ttl.expire_check;
    struct dt_blob *b = dt_new(op, r->v, (uint32_t)op->e->job->sources[jop->source].nfields, &h);
    if (b == NULL)
        return -ENOMEM;
    if (old != NULL)
        dt_release(op, old);
    *slot = b;
    if (jop->window.ttl_ms > 0 && b->ttl.expire_check == NONE && ttl_arm(op, id, &b->ttl) < 0)
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
    ckpt_put_i64(w, b->ttl.touched);
    ckpt_put_i64(w, b->ttl.expire_check);
    row_save(w, dt_values((struct dt_blob *)b), b->nv);
}

static int dt_load(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
{
    const struct job_source *src = &op->e->job->sources[op->jop->source];
    struct ttl_clock h = { 0, NONE };
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

static const struct op_engine detect_engine = {
    .feed = dt_feed,
    .fire_due = dt_fire_due,
    .finish = dt_finish,
    .release = dt_release,
    .blob_bytes = dt_blob_bytes,
    .save = dt_save,
    .load = dt_load,
};

/* ---- in the job file ---------------------------------------------------------- */

/* when: a condition over current.<field> and previous.<field> */
static void dt_read_when(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct job_operator *op = conf;
    struct job_window *w = &op->window;
    const struct job *job = cm_job(c);
    const struct job_source *src = op->source >= 0 ? &job->sources[op->source] : NULL;
    if (v == NULL) {
        cm_err(c, NULL, "%s: missing required key 'when' (a condition over current.<field> "
               "and previous.<field>)", cm_what(c));
        return;
    }
    const char *text = cm_scalar(c, v, "'when'");
    if (text == NULL || src == NULL || src->nfields == 0)
        return;
    struct expr_error ee;
    w->when_text = arena_strdup(cm_arena(c), text);
    if (w->when_text == NULL) {
        cm_err(c, v, "out of memory");
        return;
    }
    if (expr_parse2(cm_arena(c), w->when_text, src->fields, src->nfields, &w->when, &ee) < 0) {
        char msg[400];
        snprintf(msg, sizeof(msg), "when: %s", ee.msg);
        cm_err_in_scalar(c, v, ee.off, msg);
    } else if (w->when->type != VT_BOOL) {
        cm_err(c, v, "when: a condition must be true/false, got %s",
               value_type_name(w->when->type));
        w->when = NULL;
    }
}

static const struct cm_entry detect_entries[] = {
    { .key = "when", .type = CM_CUSTOM, .read = dt_read_when,
      .desc = "a condition over current.<field> and previous.<field>" },
    TTL_ENTRIES,
    { .key = NULL },
};

static const struct cm_map detect_map = { detect_entries, ttl_validate };

/* Its fields compare the record (current) with the key's previous one. */
static void dt_sides(const struct job *job, const struct job_operator *op,
                     struct expr_sides *s)
{
    const struct job_source *src = &job->sources[op->source];
    *s = (struct expr_sides){ { "current", "previous" }, { src->fields, src->fields },
                              { src->nfields, src->nfields } };
}

static void dt_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    (void)job;
    fprintf(out, "emits when %s (previous = the key's last record)",
            op->window.when_text ? op->window.when_text : "?");
    ttl_print(out, op);
}

/* Its state is the previous record: it depends on the schema, not on the
 * condition or the fields, which may change freely. */
static size_t dt_fingerprint(const struct job *job, const struct job_operator *op, char *buf,
                             size_t size)
{
    const struct job_source *src = &job->sources[op->source];
    size_t n = 0;
    for (size_t f = 0; f < src->nfields && n < size; f++)
        n += (size_t)snprintf(buf + n, size - n, ";%s:%s", src->fields[f].name,
                              value_type_name(src->fields[f].type));
    return n;
}

const struct op_type op_type_detect = {
    .name = "detect",
    .block = "detect",
    .label = "detect",
    .v1_code = 5,
    .ninputs = 1,
    .flags = OPT_PROCESSING,
    .map = &detect_map,
    .sides = dt_sides,
    .print = dt_print,
    .fingerprint = dt_fingerprint,
    .engine = &detect_engine,
};
