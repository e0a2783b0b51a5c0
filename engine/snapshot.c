/*
 * snapshot.c - the engine's state to and from checkpoint files.
 *
 * Sections (ckpt_file.h):
 *   SOURCE "<name>"    fingerprint: source type and topic or path
 *     record: i64 source watermark, u32 partitions
 *     record per partition: u32 id, i64 latest event time, i64 next offset
 *   OPERATOR "<name>"  fingerprint: the operator's definition
 *     record per key: u32 key length, key bytes, the window type's blob
 *
 * Fingerprints hash a text of the definition.  Format 2 names the
 * operator type (its descriptor's name), time characteristic and source
 * type; format 1 (sluice 0.1.0) hashed their positions in their enums, so
 * a type added in the middle would have changed every fingerprint.  A
 * restore compares a file's fingerprints with the ones its own format
 * computes: a descriptor's v1_code and the v1_*() codes keep the 0.1.0
 * positions (a type added since has none, so a format-1 file never
 * matches it).  What a type's state depends on beyond the common text
 * (window settings, keys, aggregates) its descriptor's fingerprint hook
 * appends.
 *
 * Timers are not written: each blob knows when it next needs its key
 * looked at (next_check), and loading re-arms that.  Keys are loaded into
 * whatever group the operator belongs to in the job being restored, so
 * state survives operators being regrouped.
 *
 * engine_snapshot() reads memory and writes with write(2): it runs in the
 * fork()ed checkpoint child.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "engine_int.h"

static const char *const type_names[] = { "string", "int", "double", "bool" };

/* Format 1's codes: the enums' positions in sluice 0.1.0, frozen (an
 * operator type's is its descriptor's v1_code). */
static int v1_time(enum time_char t)
{
    return t == TIME_EVENT ? 0 : 1;
}

/* Format 1 numbered the two source types it knew; later types never meet
 * a format 1 checkpoint. */
static int v1_source(const struct conn_type *t)
{
    return strcmp(t->name, "kafka") == 0 ? 0 : 1;
}

uint64_t engine_op_fingerprint(const struct job *job, int index, uint32_t format)
{
    const struct job_operator *op = &job->operators[index];
    const struct job_source *src = &job->sources[op->source];
    const struct job_window *w = &op->window;
    const struct op_type *t = op->type;
    char buf[8192];
    size_t n = format == 1
        ? (size_t)snprintf(buf, sizeof(buf), "v1;window=%d;time=%d;", t->v1_code,
                           v1_time(w->time))
        : (size_t)snprintf(buf, sizeof(buf), "v2;window=%s;time=%s;", t->name,
                           time_char_name(w->time));
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "size=%lld;slide=%lld;gap=%lld;"
                          "count=%lld;lateness=%lld;keys=", (long long)w->size_ms,
                          (long long)w->slide_ms, (long long)w->gap_ms,
                          (long long)w->trigger_count, (long long)w->allowed_lateness_ms);
    for (size_t k = 0; k < op->nkeys && n < sizeof(buf); k++) {
        const struct schema_field *f = &src->fields[op->key_fields[k]];
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s:%s,", f->name, type_names[f->type]);
    }
    /* what else the type's state depends on (a join's sides, a detect's schema) */
    if (t->fingerprint != NULL && n < sizeof(buf))
        n += t->fingerprint(job, op, buf + n, sizeof(buf) - n);
    /* a type whose results are fields keeps no accumulator: its aggregates
     * (fields) may change freely */
    for (size_t a = 0; t->sides == NULL && a < op->naggs && n < sizeof(buf); a++) {
        const struct agg_spec *sp = &op->aggs[a].spec;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ";%s=", op->aggs[a].name);
        if (n < sizeof(buf))
            n += agg_format(sp, src->fields, buf + n, sizeof(buf) - n);
        if (sp->arg >= 0 && n < sizeof(buf))
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, ":%s",
                                  type_names[src->fields[sp->arg].type]);
    }
    if (n > sizeof(buf))
        n = sizeof(buf);
    return XXH64(buf, n, 0);
}

uint64_t engine_source_fingerprint(const struct job_source *js, uint32_t format)
{
    char buf[1024];
    const char *what = cm_identity(js->type->map, js->conf);    /* topic, path */
    int n = format == 1 ? snprintf(buf, sizeof(buf), "v1;%d;%s", v1_source(js->type), what)
                        : snprintf(buf, sizeof(buf), "v2;%s;%s", js->type->name,
                                   what);
    return XXH64(buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1), 0);
}

/* ---- writing ------------------------------------------------------------------- */

int engine_snapshot(const struct engine *e, struct ckpt_writer *w, engine_offsets_fn offsets,
                    void *ud)
{
    const struct job *job = e->job;
    static struct engine_offset offs[4096];
    for (size_t s = 0; s < job->nsources; s++) {
        const struct src_rt *sr = &e->src[s];
        size_t no = offsets ? offsets(ud, (int)s, offs, sizeof(offs) / sizeof(offs[0])) : 0;
        ckpt_section_begin(w, CKPT_SEC_SOURCE, job->sources[s].name,
                           engine_source_fingerprint(&job->sources[s], CKPT_VERSION));
        uint32_t nparts = (uint32_t)no;
        for (size_t i = 0; i < sr->wm.n; i++) {
            int found = 0;
            for (size_t k = 0; k < no && !found; k++)
                found = offs[k].partition == sr->wm.p[i].id;
            nparts += !found;
        }
        ckpt_put_i64(w, sr->wm.current);
        ckpt_put_u32(w, nparts);
        ckpt_record_end(w);
        for (size_t k = 0; k < no; k++) {
            int64_t max_ts = WM_MIN;
            for (size_t i = 0; i < sr->wm.n; i++)
                if (sr->wm.p[i].id == offs[k].partition)
                    max_ts = sr->wm.p[i].max_ts;
            ckpt_put_u32(w, (uint32_t)offs[k].partition);
            ckpt_put_i64(w, max_ts);
            ckpt_put_i64(w, offs[k].next);
            ckpt_record_end(w);
        }
        for (size_t i = 0; i < sr->wm.n; i++) {
            int found = 0;
            for (size_t k = 0; k < no && !found; k++)
                found = offs[k].partition == sr->wm.p[i].id;
            if (found)
                continue;
            ckpt_put_u32(w, (uint32_t)sr->wm.p[i].id);
            ckpt_put_i64(w, sr->wm.p[i].max_ts);
            ckpt_put_i64(w, -1);
            ckpt_record_end(w);
        }
        ckpt_section_end(w);
    }
    for (size_t o = 0; o < job->noperators; o++) {
        const struct op_rt *op = &e->ops[o];
        const struct state_table *t = &op->g->t;
        ckpt_section_begin(w, CKPT_SEC_OPERATOR, op->jop->name,
                           engine_op_fingerprint(job, (int)o, CKPT_VERSION));
        uint32_t id = 0;
        struct st_entry *en;
        while ((en = st_next(t, &id)) != NULL) {
            const void *blob = en->op[op->slot];
            if (blob == NULL)
                continue;
            ckpt_put_u32(w, en->klen);
            ckpt_put(w, st_key(en), en->klen);
            op->w->save(op, blob, w);
            ckpt_record_end(w);
        }
        ckpt_section_end(w);
    }
    return w->err;
}

/* ---- restoring ------------------------------------------------------------------- */

static void note(const struct engine_restore_cb *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(const struct engine_restore_cb *cb, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (cb != NULL && cb->note != NULL)
        cb->note(cb->ud, buf);
}

static int restore_source(struct engine *e, struct ckpt_reader *r, int s,
                          const struct engine_restore_cb *cb, char *err, size_t errsize)
{
    struct src_rt *sr = &e->src[s];
    const unsigned char *p;
    size_t n;
    struct ckpt_cur c;
    int64_t wm;
    uint32_t nparts;
    int rc;
    if ((rc = ckpt_next_record(r, &p, &n)) != 1)
        goto bad;
    c = (struct ckpt_cur){ p, p + n };
    if (ckpt_get_i64(&c, &wm) < 0 || ckpt_get_u32(&c, &nparts) < 0)
        goto bad;
    if (wm != WM_MIN && wm != WM_MAX && (wm < -CKPT_TIME_LIMIT || wm > CKPT_TIME_LIMIT))
        goto bad;
    if (wm > sr->wm.current)
        sr->wm.current = wm;
    for (uint32_t i = 0; i < nparts; i++) {
        uint32_t part;
        int64_t max_ts, next;
        if ((rc = ckpt_next_record(r, &p, &n)) != 1)
            goto bad;
        c = (struct ckpt_cur){ p, p + n };
        if (ckpt_get_u32(&c, &part) < 0 || ckpt_get_time_or(&c, &max_ts, WM_MIN) < 0 ||
            ckpt_get_i64(&c, &next) < 0)
            goto bad;
        struct wm_part *np = realloc(sr->restored, (sr->nrestored + 1) * sizeof(*np));
        if (np == NULL) {
            snprintf(err, errsize, "out of memory");
            return -ENOMEM;
        }
        sr->restored = np;
        np[sr->nrestored++] = (struct wm_part){ .id = (int32_t)part, .max_ts = max_ts };
        /* the input position: results it fires carry it (a negative id is a
         * repartition source's high-water mark of an input's offsets,
         * connectors/rp_header.h: not a position of this engine's input) */
        if ((int32_t)part >= 0 && next > e->position)
            e->position = next - 1;
        if (next >= 0 && cb != NULL && cb->offset != NULL)
            cb->offset(cb->ud, s, (int32_t)part, next);
    }
    return 0;
bad:
    if (rc == -ENOMEM) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    snprintf(err, errsize, "source %s: malformed record", e->job->sources[s].name);
    return -EINVAL;
}

static int restore_operator(struct engine *e, struct ckpt_reader *r, int o, char *err,
                            size_t errsize)
{
    struct op_rt *op = &e->ops[o];
    struct state_table *t = &op->g->t;
    const unsigned char *p;
    size_t n;
    int rc;
    while ((rc = ckpt_next_record(r, &p, &n)) == 1) {
        struct ckpt_cur c = { p, p + n };
        uint32_t klen;
        const unsigned char *key;
        if (ckpt_get_u32(&c, &klen) < 0 || (key = ckpt_get_ptr(&c, klen)) == NULL) {
            rc = -EINVAL;
            break;
        }
        /* the index grows here, at once, rather than by the incremental
         * migration of st_upsert, whose lookups probe two indexes */
        uint32_t id = st_reserve(t, t->count + 1) < 0 ? ST_NONE
                      : st_upsert(t, key, klen, st_hash(t, key, klen));
        if (id == ST_NONE) {
            rc = -ENOMEM;
            break;
        }
        if (*op_blob(op, id) != NULL) {
            rc = -EINVAL;               /* the same key twice */
            break;
        }
        if ((rc = op->w->load(op, id, &c)) < 0)
            break;
    }
    if (rc < 0) {
        snprintf(err, errsize, "operator %s: %s", op->jop->name,
                 rc == -ENOMEM ? "out of memory" : "malformed state record");
        return rc;
    }
    return 0;
}

int engine_restore(struct engine *e, struct ckpt_reader *r, int allow_non_restored,
                   const struct engine_restore_cb *cb, char *err, size_t errsize)
{
    const struct job *job = e->job;
    uint32_t format = ckpt_format(r);
    struct ckpt_section_info s;
    while (ckpt_next_section(r, &s) == 1) {
        if (s.type == CKPT_SEC_SOURCE) {
            int idx = -1;
            for (size_t i = 0; i < job->nsources; i++)
                if (strcmp(job->sources[i].name, s.name) == 0)
                    idx = (int)i;
            if (idx < 0) {
                note(cb, "the checkpoint has offsets for source %s, which the job no longer "
                     "has; ignored", s.name);
                continue;
            }
            if (s.fingerprint != engine_source_fingerprint(&job->sources[idx], format)) {
                if (!allow_non_restored) {
                    snprintf(err, errsize, "source %s reads another topic or file than when "
                             "the checkpoint was taken; restore with "
                             "--allow-non-restored-state to start it from scratch", s.name);
                    return -EPERM;
                }
                note(cb, "source %s changed its topic or file: its offsets are not restored",
                     s.name);
                continue;
            }
            int rc = restore_source(e, r, idx, cb, err, errsize);
            if (rc < 0)
                return rc;
        } else if (s.type == CKPT_SEC_OPERATOR) {
            int idx = -1;
            for (size_t i = 0; i < job->noperators; i++)
                if (strcmp(job->operators[i].name, s.name) == 0)
                    idx = (int)i;
            if (idx < 0) {
                note(cb, "the checkpoint has state for operator %s, which the job no longer "
                     "has; ignored", s.name);
                continue;
            }
            if (s.fingerprint != engine_op_fingerprint(job, idx, format)) {
                if (!allow_non_restored) {
                    snprintf(err, errsize, "operator %s changed since the checkpoint (window, "
                             "keys or aggregates); restore with --allow-non-restored-state to "
                             "start it empty", s.name);
                    return -EPERM;
                }
                note(cb, "operator %s changed since the checkpoint: it starts empty (its old "
                     "state is dropped)", s.name);
                continue;
            }
            int rc = restore_operator(e, r, idx, err, errsize);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}
