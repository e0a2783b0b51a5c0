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
 * The join has two inputs (config/optype.h), so the engine gives it a key
 * group of its own, not shared with one-input operators: the two sides may
 * key by differently named fields.  A record reaches the join through
 * each side whose `where` accepts it, keyed by that side's fields, and the
 * feed is told which side it came through.  A key's blob holds
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

/* Record r through input `side` for key id: late when it is at or behind
 * the join's watermark (for both sides alike: one time, one watermark). */
static int jn_feed(struct op_rt *op, int side, uint32_t id, const struct record *r,
                   const unsigned char *wres, int64_t t, int64_t wm)
{
    (void)wres;
    (void)t;
    (void)wm;                       /* one source's; the join follows both */
    if (r->event_time <= join_wm(op))
        return WIN_LATE;
    return jn_add(op, id, r, side) < 0 ? -ENOMEM : WIN_ADDED;
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

static const struct op_engine join_engine = {
    .feed = jn_feed,
    .fire_due = jn_fire_due,
    .release = jn_release,
    .blob_bytes = jn_blob_bytes,
    .save = jn_save,
    .load = jn_load,
};

/* ---- in the job file ---------------------------------------------------------- */

/* The sides' names in a join's expressions. */
static const char *const side_names[2] = { "left", "right" };

static const char *const join_types[] = { "inner", "left", "outer", NULL };

static void jn_read_late_events(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct job_operator *op = conf;
    const char *s = v ? cm_scalar(c, v, "'late_events'") : NULL;
    if (s != NULL && strcmp(s, "drop") != 0)
        op->window.late_sink = cm_sink_ref(c, v, "late_events", 1);
}

static const struct cm_entry join_entries[] = {
    { .key = "left", .type = CM_CUSTOM,
      .desc = "a side: { from, where, key_by, prefix }; only from is required" },
    { .key = "right", .type = CM_CUSTOM,
      .desc = "the other side, as left" },
    { .key = "within", .type = CM_DURATION, .flags = CM_REQUIRED | CM_NONNEG,
      .offset = offsetof(struct job_operator, join.within_ms),
      .desc = "records at most this far apart in event time join" },
    { .key = "type", .type = CM_ENUM, .names = join_types, .dflt = JOIN_INNER,
      .offset = offsetof(struct job_operator, join.type),
      .desc = "inner, left or outer" },
    { .key = "late_events", .type = CM_CUSTOM, .read = jn_read_late_events,
      .desc = "drop, or a kafka, file or stdout sink for records behind the watermark" },
    { .key = NULL },
};

static const struct cm_map join_map = { join_entries, NULL };

static const struct cm_entry side_entries[] = {
    { .key = "from", .type = CM_CUSTOM, .desc = "the source the side reads" },
    { .key = "where", .type = CM_CUSTOM, .desc = "a condition: the records the side takes" },
    { .key = "key_by", .type = CM_CUSTOM, .desc = "the side's key, if not the operator's" },
    { .key = "prefix", .type = CM_CUSTOM,
      .desc = "of the side's fields in the default output (left_, right_)" },
    { .key = NULL },
};

static const struct cm_map side_map = { side_entries, NULL };

/* Side k, the mapping v of c's join (opc: the operator, whose key_by
 * applies to a side without its own). */
static void jn_read_side(struct cm_ctx *c, struct cm_ctx *opc, struct job_operator *op, int k)
{
    struct job_join_side *sd = &op->join.side[k];
    struct cm_node *sn = cm_get(c, side_names[k]);
    struct cm_ctx *sc;
    char swhat[240];
    snprintf(swhat, sizeof(swhat), "%s side of operator '%s'", side_names[k], op->name);
    if (sn == NULL) {
        cm_err(c, NULL, "%s: missing required key '%s' (a mapping with 'from', and "
               "optionally 'where', 'key_by' and 'prefix')", cm_what(c), side_names[k]);
        return;
    }
    if ((sc = cm_child_new(c, sn, swhat)) == NULL || cm_check_keys(sc, &side_map) < 0)
        return;
    const struct job_source *src = NULL;
    struct cm_node *from = cm_get(sc, "from");
    if (from == NULL)
        cm_err(sc, NULL, "%s: missing required key 'from' (the source it reads)", swhat);
    else if ((sd->source = cm_source_ref(sc, from)) >= 0)
        src = &cm_job(c)->sources[sd->source];
    if (src != NULL && !src->has_event_time)
        cm_err(sc, from, "%s: source '%s' has no event_time; a join runs in event time",
               swhat, src->name);
    cm_key_by(sc, opc, src, &sd->key_fields, &sd->nkeys);
    struct cm_node *pn = cm_get(sc, "prefix");
    sd->prefix = k ? "right_" : "left_";
    if (pn != NULL) {
        const char *pf = cm_scalar(sc, pn, "'prefix'");
        char probe[CM_NAME_MAX + 2];
        snprintf(probe, sizeof(probe), "%sx", pf ? pf : "");
        if (pf != NULL && (strlen(pf) > CM_NAME_MAX / 2 || !cm_is_ident(probe)))
            cm_err(sc, pn, "prefix: \"%.40s\" must be letters, digits and '_', not "
                   "starting with a digit", pf);
        else if (pf != NULL && (pf = arena_strdup(cm_arena(c), pf)) == NULL)
            cm_err(sc, pn, "out of memory");
        else if (pf != NULL)
            sd->prefix = pf;
    }
    struct cm_node *wn = cm_get(sc, "where");
    const char *text = wn ? cm_scalar(sc, wn, "'where'") : NULL;
    if (text != NULL && src != NULL && src->nfields > 0) {
        struct expr_error ee;
        sd->where_text = arena_strdup(cm_arena(c), text);
        if (sd->where_text == NULL) {
            cm_err(sc, wn, "out of memory");
        } else if (expr_parse(cm_arena(c), sd->where_text, src->fields, src->nfields,
                              &sd->where, &ee) < 0) {
            char msg[400];
            snprintf(msg, sizeof(msg), "where: %s", ee.msg);
            cm_err_in_scalar(sc, wn, ee.off, msg);
            sd->where = NULL;
        }
    }
}

/* join: { left: SIDE, right: SIDE, within: D, type: inner|left|outer,
 *         late_events: sink|drop }
 * SIDE: { from: source, where: condition, key_by: fields, prefix: name_ }
 * key_by may be written once on the operator for both sides. */
static void jn_parse(struct cm_ctx *c, struct cm_ctx *opc, struct job_operator *op, void *conf)
{
    struct job_join *j = &op->join;
    if (cm_get(opc, "from") != NULL)
        cm_err(opc, cm_key(opc, "from"), "%s: a join reads its 'left' and 'right' sides; "
               "write 'from' in each of them", cm_what(opc));
    op->window.time = TIME_EVENT;
    j->side[0].source = j->side[1].source = -1;
    if (cm_read(c, &join_map, conf) < 0)
        return;
    for (int k = 0; k < 2; k++)
        jn_read_side(c, opc, op, k);
    /* the two keys must be comparable: same number of fields, same types */
    const struct job_join_side *a = &j->side[0], *b = &j->side[1];
    if (a->source >= 0 && b->source >= 0 && a->nkeys > 0 && b->nkeys > 0) {
        const struct job_source *sa = &cm_job(c)->sources[a->source];
        const struct job_source *sb = &cm_job(c)->sources[b->source];
        int same = a->nkeys == b->nkeys;
        for (size_t i = 0; same && i < a->nkeys; i++)
            same = sa->fields[a->key_fields[i]].type == sb->fields[b->key_fields[i]].type;
        if (!same)
            cm_err(c, NULL, "%s: the left and right key_by differ in number or types of "
                   "fields; both sides must be keyed alike", cm_what(c));
    }
    /* the operator's own key (sinks' key templates, results) is the left's */
    op->source = a->source;
    op->key_fields = a->key_fields;
    op->nkeys = a->nkeys;
}

static size_t jn_inputs(const struct job_operator *op, struct op_input in[OP_INPUTS_MAX])
{
    for (int k = 0; k < 2; k++) {
        const struct job_join_side *sd = &op->join.side[k];
        in[k] = (struct op_input){ sd->source, sd->key_fields, sd->nkeys, sd->where };
    }
    return 2;
}

/* Its fields are over the left and the right record. */
static void jn_sides(const struct job *job, const struct job_operator *op, struct expr_sides *s)
{
    const struct job_source *l = &job->sources[op->join.side[0].source];
    const struct job_source *r = &job->sources[op->join.side[1].source];
    *s = (struct expr_sides){ { side_names[0], side_names[1] }, { l->fields, r->fields },
                              { l->nfields, r->nfields } };
}

/* Without `fields`: every field of both sides, prefixed. */
static void jn_default_fields(struct cm_ctx *opc, struct job_operator *op)
{
    const struct job_join *j = &op->join;
    struct arena *a = cm_arena(opc);
    const struct job *job = cm_job(opc);
    if (j->side[0].source < 0 || j->side[1].source < 0)
        return;
    const struct job_source *s[2] = { &job->sources[j->side[0].source],
                                      &job->sources[j->side[1].source] };
    op->aggs = arena_alloc(a, (s[0]->nfields + s[1]->nfields + 1) * sizeof(*op->aggs));
    if (op->aggs == NULL) {
        cm_err(opc, NULL, "out of memory");
        return;
    }
    for (int k = 0; k < 2; k++)
        for (size_t f = 0; f < s[k]->nfields; f++) {
            struct job_aggregate *agg = &op->aggs[op->naggs];
            char name[2 * CM_NAME_MAX + 2];
            snprintf(name, sizeof(name), "%s%s", j->side[k].prefix, s[k]->fields[f].name);
            memset(agg, 0, sizeof(*agg));
            agg->spec.arg = -1;
            agg->name = arena_strdup(a, name);
            agg->text = agg->name;
            agg->pos = op->pos;
            agg->value = arena_alloc(a, sizeof(*agg->value));
            if (agg->name == NULL || agg->value == NULL) {
                cm_err(opc, NULL, "out of memory");
                return;
            }
            memset(agg->value, 0, sizeof(*agg->value));
            agg->value->kind = EX_FIELD;
            agg->value->side = k;
            agg->value->u.field = (int)f;
            agg->value->type = s[k]->fields[f].type;
            int clash = 0;
            for (size_t i = 0; i < op->naggs; i++)
                clash |= strcmp(op->aggs[i].name, name) == 0;
            for (size_t i = 0; i < op->nkeys; i++)
                clash |= strcmp(s[0]->fields[op->key_fields[i]].name, name) == 0;
            if (clash) {
                cm_err(opc, cm_get(opc, "join"), "join of operator '%s': the output field "
                       "'%s' would be written twice; set the sides' prefixes apart, or "
                       "list 'fields'", op->name, name);
                return;
            }
            op->naggs++;
        }
}

/* Its own head: both sides. */
static void jn_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    const struct job_join *j = &op->join;
    char a[32];
    duration_format(j->within_ms, a, sizeof(a));
    fprintf(out, "  %s: %s interval join within %s, event time, late events %s\n", op->name,
            join_types[j->type], j->within_ms ? a : "0",
            op->window.late_sink >= 0 ? job->sinks[op->window.late_sink].name : "dropped");
    for (int k = 0; k < 2; k++) {
        const struct job_join_side *sd = &j->side[k];
        const struct job_source *src = &job->sources[sd->source];
        fprintf(out, "    %s: from %s%s%s, key by ", side_names[k],
                job->sources[src->origin].name,     /* as written, not a repartition's */
                sd->where_text ? " where " : "", sd->where_text ? sd->where_text : "");
        for (size_t i = 0; i < sd->nkeys; i++)
            fprintf(out, "%s%s", i ? ", " : "", src->fields[sd->key_fields[i]].name);
        fputc('\n', out);
    }
}

/* Its state is the buffered records of both sides: it depends on the
 * bound, the sides' sources, schemas, keys and filters, not on the join
 * type or the fields, which may change freely. */
static size_t jn_fingerprint(const struct job *job, const struct job_operator *op, char *buf,
                             size_t size)
{
    size_t n = 0;
    for (int k = 0; k < 2 && n < size; k++) {
        const struct job_join_side *sd = &op->join.side[k];
        const struct job_source *ss = &job->sources[sd->source];
        /* the source the file names: reading it through a repartition
         * topic (config/job.h) changes the route, not the state */
        n += (size_t)snprintf(buf + n, size - n, ";within=%lld;side%d=%s;keys=",
                              (long long)op->join.within_ms, k, job->sources[ss->origin].name);
        for (size_t i = 0; i < sd->nkeys && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, "%s,", ss->fields[sd->key_fields[i]].name);
        for (size_t f = 0; f < ss->nfields && n < size; f++)
            n += (size_t)snprintf(buf + n, size - n, ";%s:%s", ss->fields[f].name,
                                  value_type_name(ss->fields[f].type));
        if (sd->where != NULL && n < size) {
            n += (size_t)snprintf(buf + n, size - n, ";where=");
            if (n < size)
                n += expr_format(sd->where, ss->fields, buf + n, size - n);
        }
    }
    return n;
}

const struct op_type op_type_join = {
    .name = "join",
    .block = "join",
    .label = "join",
    .v1_code = 6,
    .ninputs = 2,
    .map = &join_map,
    .parse = jn_parse,
    .inputs = jn_inputs,
    .sides = jn_sides,
    .default_fields = jn_default_fields,
    .print = jn_print,
    .fingerprint = jn_fingerprint,
    .engine = &join_engine,
};
