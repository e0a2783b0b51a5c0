/*
 * engine_int.h - what the engine's own files share (not for connectors).
 *
 * engine.c builds the graph and runs the per-record path; each operator
 * type lives in its own file (win_sliding.c for tumbling and sliding
 * windows, win_session.c, win_global.c, win_reduce.c, win_detect.c,
 * win_join.c) with its descriptor (config/optype.h), whose engine half is
 * a struct op_engine.  An operator keeps one blob per key in its key
 * group's state table (entry->op[slot]), allocated from the engine's
 * slab, and its own timer queues.
 *
 * Records reach operators through feeds: a feed is one way a source's
 * records go into a key group, keyed by some of the source's fields and
 * optionally filtered.  Operators with one input that read the same
 * source with the same key share a group and its one feed; an operator
 * with several inputs (a join) has a group of its own with a feed per
 * input, and is told which input a record came through.  The core never
 * knows more about a type than its descriptor says.
 */
#ifndef SLUICE_ENGINE_INT_H
#define SLUICE_ENGINE_INT_H

#include <stddef.h>
#include <stdio.h>

#include "agg.h"
#include "ckpt_file.h"
#include "engine.h"
#include "slab.h"
#include "state_table.h"
#include "timers.h"
#include "watermark.h"

struct engine;
struct group;
struct op_rt;

enum { WIN_ADDED = 0, WIN_LATE = 1 };

/* The engine half of an operator type (config/optype.h: op_type.engine). */
struct op_engine {
    /* Sets up what the type reads from its settings at run time (op->size,
     * op->slide...), before any record.  NULL: nothing.  Returns 0 or
     * -ENOMEM. */
    int (*init)(struct op_rt *op) SL_MUST_USE;
    /* Record r came through input `input` (0 for one-input types) for key
     * id, at event or processing time t, while the watermark of that
     * input's source was wm.  Returns WIN_ADDED, WIN_LATE (too late for
     * every window: not applied) or -ENOMEM. */
    int (*feed)(struct op_rt *op, int input, uint32_t id, const struct record *r,
                const unsigned char *wres, int64_t t, int64_t wm)
        SL_MUST_USE;
    /* Fires everything due at or before wm, in time order.  It cannot
     * fail: what it cannot do for lack of memory (combine a window's
     * panes, set a key's next timer) it reports to engine_result_lost()
     * and goes on with the other keys. */
    void (*fire_due)(struct op_rt *op, int64_t wm);
    /* Processing-time operators at the end of bounded input; NULL means
     * fire_due(INT64_MAX) (every pending window fires).  As fire_due. */
    void (*finish)(struct op_rt *op);
    /* Frees a key's blob (engine teardown). */
    void (*release)(struct op_rt *op, void *blob);
    /* Bytes a blob holds (for the state-size figures). */
    size_t (*blob_bytes)(const struct op_rt *op, const void *blob);
    /* Checkpoints: writes a blob into the current record (memory and
     * write(2) only: a fork()ed child runs it) ... */
    void (*save)(const struct op_rt *op, const void *blob, struct ckpt_writer *w);
    /* ... and rebuilds it for key id from a record, arming its timer.
     * Returns 0, -EINVAL for a malformed record, or -ENOMEM. */
    int (*load)(struct op_rt *op, uint32_t id, struct ckpt_cur *c)
        SL_MUST_USE;
};

struct op_rt {
    struct engine *e;
    int index;                      /* in job->operators */
    const struct job_operator *jop;
    struct group *g;
    size_t slot;                    /* entry->op[slot] */
    const struct op_engine *w;      /* jop->type->engine */
    struct agg_layout L;
    int processing;                 /* processing-time windows */
    int64_t size, slide, pane, gap, al;
    struct tq_buckets tqb;          /* sliding and tumbling; reduce's emissions */
    struct tq_heap tqh;             /* session; reduce's state TTL */
    void *scratch;                  /* one accumulator block, for firing */
    struct value *vals;             /* results of one window */
    uint64_t results, late, lost;
    uint64_t late_seen;             /* the record (engine records_in) last counted late */
};

struct group {
    int source;
    const struct schema_field *schema;
    const int *key_fields;          /* schema indexes (its first input's) */
    size_t nkeys;
    int own;                        /* one operator's, with several inputs: not shared */
    int single_string;              /* one string key: the key bytes are the string */
    struct state_table t;
    struct op_rt **ops;
    size_t nops;
    const struct expr **wheres;     /* distinct where conditions of its operators */
    size_t nwheres;
    unsigned char *wres;            /* their results for the current record */
    char *keybuf;                   /* encoded key of the current record */
    size_t keycap;
    struct value *keyvals;          /* decoded key of a firing window */
};

/* One way a source's records reach a key group (see the top). */
struct feed {
    struct group *g;
    const int *key_fields;          /* schema indexes, g->nkeys of them */
    const struct expr *where;       /* NULL: every record */
    int input;                      /* which input of its operators it is */
    struct op_rt **ops;             /* the operators it feeds: g's, or the one */
    size_t nops;
};

/* A record the host announced (engine_prefetch), decoded ahead with a decoder
 * of its own, and the hash of its key in each of the first AHEAD_FEEDS
 * feeds (AHEAD_NOHASH: none). */
#define AHEAD_FEEDS 4
#define AHEAD_NOHASH UINT64_MAX
struct ahead {
    struct decoder *dec;
    struct record rec;
    struct reject rej;
    int rc;
    uint64_t hash[AHEAD_FEEDS];
    uint32_t guess[AHEAD_FEEDS];
};

struct src_rt {
    const struct job_source *js;
    struct decoder *dec;
    struct watermark wm;
    struct feed *feeds;             /* shared groups first, then own-group inputs */
    size_t nfeeds;
    struct op_rt **ops;             /* every operator reading this source, once */
    size_t nops;
    int has_processing;
    struct wm_part *restored;       /* partitions' state from a checkpoint */
    size_t nrestored;
    uint64_t records_in, invalid[REJ_NKINDS];
    struct ahead *ahead;            /* ENGINE_BATCH records, decoded ahead */
    struct {                        /* engine_prefetch: the host's next records */
        const struct engine_in *in;
        size_t n, pos;              /* in[pos] is the next one engine_feed expects */
        size_t base, end;           /* ahead[0 .. end - base) hold in[base .. end) */
    } pf;
    struct {                        /* engine_peek_time's decoded record, kept */
        const char *data;           /* for the engine_feed of the same bytes */
        size_t len;
        int64_t kafka_ts;
        int rc;
        struct record rec;
        struct reject rej;
    } peek;
};

struct engine {
    const struct job *job;
    struct engine_output out;
    engine_clock_fn clock;
    void *clock_ud;
    int time_firing;                /* opts.time_firing */
    int64_t now;                    /* cached processing time */
    struct slab slab;
    struct src_rt *src;
    struct group *groups;
    size_t ngroups;
    struct op_rt *ops;
    struct engine_stats st;
    /* Result versions (engine.h, struct engine_result): the offset of the
     * record being fed to the operators (INT64_MIN outside that), and the
     * greatest offset fed so far, the engine's input position. */
    int64_t feed_offset;
    int64_t position;
};

/* The blob of op for key id (NULL when it holds nothing). */
static inline void **op_blob(const struct op_rt *op, uint32_t id)
{
    return &st_entry(&op->g->t, id)->op[op->slot];
}

struct slab *engine_slab(struct engine *e);

/* Emits one window of op for key id: its bounds and accumulator.  span_ms
 * is a session's (latest - earliest) event time. */
void engine_emit(struct op_rt *op, uint32_t id, int64_t start, int64_t end,
                 const void *acc, int64_t span_ms, int refire);

/* Counts a result op could not produce on time for lack of memory: a
 * window it could not combine, or a key whose next timer it could not set
 * (that key's pending results come with its next record, or never).  The
 * timer path has no caller to return an error to; the count is exported
 * (results_lost in engine_stats, sluice_results_lost_total), so the loss
 * is never silent. */
void engine_result_lost(struct op_rt *op);

/* Emits n result values of op for key id as they are (a detect's fields). */
void engine_emit_values(struct op_rt *op, uint32_t id, int64_t start, int64_t end,
                        const struct value *vals, size_t n, int refire);

/* ---- rows: a record's values kept (engine/row.c) ---- */

/* Bytes of nv values and their strings' bytes. */
size_t row_bytes(const struct value *v, uint32_t nv);
/* Copies nv values into dst (row_bytes(v, nv) bytes), strings after them. */
void row_copy(struct value *dst, const struct value *v, uint32_t nv);
void row_save(struct ckpt_writer *w, const struct value *v, uint32_t nv);
/* Reads a row of src's schema into v (src->nfields values; strings point
 * into the checkpoint).  Returns 0 or -EINVAL. */
int row_load(struct ckpt_cur *c, const struct job_source *src, struct value *v)
    SL_MUST_USE;

/* ---- windows in time: tumbling, sliding, session (engine/win_time.c) ---- */

/* The `type` key of the `window` block, read by the loader itself. */
#define WIN_TYPE_ENTRY                                                          \
    { .key = "type", .type = CM_CUSTOM,                                         \
      .desc = "the kind of window: tumbling, sliding, session or global" }

/* time, allowed_lateness and late_events, into struct job_operator. */
#define WIN_TIME_ENTRIES                                                        \
    { .key = "time", .type = CM_ENUM, .names = win_time_names, .dflt = TIME_EVENT, \
      .offset = offsetof(struct job_operator, window.time),                    \
      .desc = "event (the source's event_time) or processing (the wall clock)" }, \
    { .key = "allowed_lateness", .type = CM_DURATION, .flags = CM_NONNEG,       \
      .offset = offsetof(struct job_operator, window.allowed_lateness_ms),     \
      .desc = "how long after a window fired a late record still updates it" }, \
    { .key = "late_events", .type = CM_CUSTOM, .read = win_read_late_events,    \
      .desc = "drop, or a kafka, file or stdout sink for records too late" }

extern const char *const win_time_names[];
void win_read_late_events(struct cm_ctx *c, struct cm_node *v, void *conf);
/* The checks between those keys and the source (event time needs one). */
void win_time_validate(struct cm_ctx *c, struct job_operator *op);
/* ", event time, allowed lateness 0, late events dropped" */
void win_time_print(FILE *out, const struct job *job, const struct job_operator *op);

/* ---- firing due timers in batches (engine/win_fire.c) ---- */

/* How a window kind pops its timers (its queue in struct op_rt) and checks
 * a key whose timer is due. */
struct win_timers {
    int (*pop)(struct op_rt *op, int64_t now, int64_t *time, uint32_t *id);
    int64_t (*next)(const struct op_rt *op);    /* earliest pending time */
    void (*check)(struct op_rt *op, uint32_t id, int64_t time);
    size_t (*used)(const struct op_rt *op, const void *blob);  /* bytes it holds, >= 1 */
};

/* Checks every key whose timer is due at wm, in the order of single pops,
 * the state of up to a batch of keys read ahead at once. */
void win_fire_due(struct op_rt *op, int64_t wm, const struct win_timers *q);

/* ---- state TTL of keyed operators (engine/state_ttl.c) ---- */

#define TTL_NONE INT64_MAX          /* no timer pending */

/* The head of a reduce's or detect's blob: the processing time the TTL
 * counts from, and the pending TTL timer (or TTL_NONE). */
struct ttl_clock {
    int64_t touched;
    int64_t expire_check;
};

/* The state is past its TTL at now ... */
int ttl_expired(const struct op_rt *op, const struct ttl_clock *c, int64_t now);
/* ... and, with never_return_expired, not to be read. */
int ttl_hidden(const struct op_rt *op, const struct ttl_clock *c, int64_t now);
/* Sets the key's TTL timer at touched + ttl.  Returns 0 or -ENOMEM. */
int ttl_arm(struct op_rt *op, uint32_t id, struct ttl_clock *c)
    SL_MUST_USE;
/* Frees the blobs of keys whose TTL ran out by now (re-arming the timers
 * of keys touched since); what it cannot re-arm it counts as lost. */
void ttl_due(struct op_rt *op, int64_t now);

/* ttl, update and visibility in a reduce's or detect's block, into
 * struct job_operator, and the check that the last two need a ttl (a
 * config map's validate hook). */
#define TTL_ENTRIES                                                             \
    { .key = "ttl", .type = CM_DURATION, .flags = CM_POSITIVE,                  \
      .offset = offsetof(struct job_operator, window.ttl_ms),                  \
      .desc = "a key's state expires this long after its clock was refreshed" }, \
    { .key = "update", .type = CM_ENUM, .names = ttl_update_names,              \
      .dflt = TTL_ON_CREATE_AND_WRITE,                                          \
      .offset = offsetof(struct job_operator, window.ttl_update),              \
      .desc = "what refreshes the clock: on_create_and_write or on_read_and_write" }, \
    { .key = "visibility", .type = CM_ENUM, .names = ttl_visibility_names,      \
      .dflt = TTL_NEVER_RETURN_EXPIRED,                                         \
      .offset = offsetof(struct job_operator, window.ttl_visibility),          \
      .desc = "whether expired state not yet freed is read" }

extern const char *const ttl_update_names[], *const ttl_visibility_names[];
void ttl_validate(struct cm_ctx *c, void *conf);
/* ", state ttl 1h (on_create_and_write, never_return_expired)", or nothing */
void ttl_print(FILE *out, const struct job_operator *op);

/* Deletes key id when none of its group's operators holds anything. */
void engine_key_maybe_delete(struct op_rt *op, uint32_t id);

/* The greatest common divisor of two positive numbers (pane sizes). */
static inline int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Floor division for possibly negative times. */
static inline int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#endif
