/*
 * job.h - the validated job model: what the job file says, typed.
 *
 * job_load() reads a YAML job file, substitutes ${VAR}s, and turns it into
 * this model, checking everything that can be checked without running:
 * types, references between sources, operators and sinks, durations, key
 * templates and aggregate expressions.  The engine consumes the model and
 * may assume it is consistent: every index is in range, every reference
 * resolved, every duration positive where it must be.
 *
 * Ownership: everything hangs off job->arena; job_free() releases it all.
 * Positions (1-based line/column in the file the operator edits) are kept
 * on each named block so later runtime messages can point into the file.
 */
#ifndef SLUICE_JOB_H
#define SLUICE_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"
#include "confmap.h"
#include "conntype.h"
#include "expr.h"
#include "optype.h"
#include "template.h"

#define JOB_DURATION_NONE (-1)      /* an optional duration left out */

struct job_pos {
    int line, col;
};

enum ts_format { TS_ISO8601, TS_EPOCH_MS, TS_EPOCH_S, TS_KAFKA_TIMESTAMP };
enum on_error { ON_ERROR_SKIP, ON_ERROR_DEAD_LETTER };

/*
 * Repartitioning (docs/configuration.md, `partitioned_by`).  An operator
 * whose key_by is not the key its source's records are partitioned by
 * reads them through a repartition topic: the loader adds, after the
 * sources of the file, one SRC_STAGE1 source per input source that needs
 * it (it consumes the input's topic in its own group, <group>-stage1, and
 * produces each valid record, keyed by an operator's key, to the
 * repartition topics of its targets: connectors/repartition.c), and one
 * SRC_REPARTITION source per (input source, key) (a kafka source reading
 * <job>-<input>-<key fields joined by '.'>-repartition in the input's
 * group), and points those operators (both sides of a join when either
 * needs it) at the SRC_REPARTITION source.  Operators that share an input
 * and a key share one repartition source and topic.
 *
 * An input source is read directly by the operators whose key_by holds
 * every field of its partitioned_by (records of one key are then in one
 * partition).  Not given: it is taken as partitioned by each operator's
 * key (nothing is repartitioned: the behaviour before partitioned_by).
 */
enum src_role {
    SRC_INPUT,          /* a source of the job file */
    SRC_STAGE1,         /* added: the repartitioning stage of input `origin` */
    SRC_REPARTITION,    /* added: a repartition topic, read by stage 2 */
};

struct job_source {
    const char *name;
    struct job_pos pos;
    const struct conn_type *type;
    const void *conf;               /* its settings: type->map's struct (the connector's) */
    /* records */
    struct schema_field *fields;
    size_t nfields;
    int has_event_time;
    const char *ts_field;           /* NULL for kafka_timestamp */
    enum ts_format ts_format;
    int32_t tz_offset_s;            /* for naive ISO-8601 times */
    int64_t out_of_orderness_ms;
    int64_t idle_timeout_ms;        /* JOB_DURATION_NONE: never idle */
    enum on_error on_error;
    int dead_letter_sink;           /* index into sinks, or -1 */
    /* partitioned_by (SRC_INPUT; the loader copies them into added sources) */
    int part_declared;              /* 0: not given */
    int part_none;                  /* partitioned_by: none */
    int *part_fields;               /* partitioned_by: <field> | [fields]: indexes into fields */
    size_t npart_fields;
    /* repartition: { partitions, transactions } (SRC_INPUT; copied) */
    int64_t rp_partitions;          /* partitions of its repartition topics; 0: the input's */
    int rp_transactions;            /* stage 1 produces in Kafka transactions */
    int rp_purge;                   /* stage 2 deletes what it applied (DeleteRecords) */
    /* roles (above) */
    enum src_role role;
    int origin;                     /* SRC_STAGE1, SRC_REPARTITION: the input's index; else its own */
    int unread;                     /* SRC_INPUT: every operator of it reads it through a
                                     * repartition topic, so stage 2 does not consume it */
    int *targets;                   /* SRC_STAGE1: its SRC_REPARTITION sources (indexes) */
    size_t ntargets;
    int stage1;                     /* SRC_REPARTITION: its SRC_STAGE1 source (index) */
    const char *rp_topic;           /* SRC_REPARTITION: the repartition topic */
    int *rp_keys;                   /* SRC_REPARTITION: the key its records are keyed by */
    size_t nrp_keys;                /*   (indexes into fields) */
};

enum time_char { TIME_EVENT, TIME_PROCESSING };
/* State TTL, as Flink's StateTtlConfig: what refreshes a key's clock, and
 * whether state past its TTL but not yet freed may still be read. */
enum ttl_update { TTL_ON_CREATE_AND_WRITE, TTL_ON_READ_AND_WRITE };
enum ttl_visibility { TTL_NEVER_RETURN_EXPIRED, TTL_RETURN_EXPIRED_IF_NOT_CLEANED_UP };

/* The settings of the types that keep theirs in the operator (optype.h):
 * windows in time, global windows, reduce and detect. */
struct job_window {
    enum time_char time;
    int64_t size_ms, slide_ms, gap_ms;  /* those the type uses; else 0 */
    int64_t trigger_count;              /* global windows */
    int64_t allowed_lateness_ms;        /* 0 unless set */
    int late_sink;                      /* index into sinks, or -1 = drop */
    /* reduce and detect */
    int64_t emit_every_ms;              /* reduce; 0: emit on every update */
    struct expr *when;                  /* detect: over current and previous */
    const char *when_text;
    int64_t ttl_ms;                     /* 0: state never expires */
    enum ttl_update ttl_update;
    enum ttl_visibility ttl_visibility;
};

struct job_aggregate {
    const char *name;
    const char *text;                   /* as written */
    struct job_pos pos;
    struct agg_spec spec;
    struct expr *value;                 /* detect's and join's fields: an expression */
};

/* An interval join: a left record at time l and a right record at time r
 * of the same key join when |l - r| <= within.  Each side is a source,
 * optionally filtered (two sides may read one source: its branches). */
enum join_type { JOIN_INNER, JOIN_LEFT, JOIN_OUTER };

struct job_join_side {
    int source;                         /* index into sources */
    int *key_fields;                    /* indexes into that source's schema */
    size_t nkeys;
    struct expr *where;                 /* NULL: every record */
    const char *where_text;
    const char *prefix;                 /* of its fields in the default output */
};

struct job_join {
    enum join_type type;
    int64_t within_ms;
    struct job_join_side side[2];       /* left, right */
};

struct job_operator {
    const char *name;
    struct job_pos pos;
    const struct op_type *type;         /* never NULL once loaded */
    void *conf;                         /* the type's own settings, or NULL (optype.h) */
    int source;                         /* index into sources (a join: its left's) */
    int *key_fields;                    /* indexes into the source schema */
    size_t nkeys;
    struct job_window window;
    struct job_join join;               /* a join only */
    struct job_aggregate *aggs;
    size_t naggs;
    int *sinks;                         /* indexes into sinks */
    size_t nsinks;
};

/* Whether op's results carry window bounds ({window_start}, {window_end}):
 * tumbling, sliding and session windows do. */
static inline int op_has_bounds(const struct job_operator *op)
{
    return (op->type->flags & OPT_BOUNDS) != 0;
}

struct job_sink {
    const char *name;
    struct job_pos pos;
    const struct conn_type *type;
    const void *conf;                   /* its settings: type->map's struct (the connector's) */
};

struct job_state {
    const char *dir;
    int64_t checkpoint_interval_ms;
    int64_t checkpoints_retained;
    const char *shared;                 /* state.shared: a store URL (store_url.h), "" none */
};

struct job {
    struct arena arena;
    const char *file;                   /* path as given */
    const char *name;
    const char *http;                   /* "host:port", or NULL for "none" */
    struct job_state state;
    struct job_source *sources;
    size_t nsources;
    struct job_operator *operators;
    size_t noperators;
    struct job_sink *sinks;
    size_t nsinks;
};

/* Looks an environment variable up (getenv by default; tests inject). */
typedef const char *(*job_env_fn)(const char *name, void *ud);

struct job_load_opts {
    job_env_fn env;                     /* NULL: getenv */
    void *env_ud;
};

/*
 * Loads and validates the job file at path.  On success returns 0 and
 * *out is the model (caller frees with job_free).  On any error returns a
 * negative code, *out is NULL, and d holds every problem found, with
 * positions (d is filled even for I/O errors).  opts may be NULL.
 */
int job_load(const char *path, const struct job_load_opts *opts,
             struct job **out, struct diags *d);

/* The same from a buffer; `name` is used for messages. */
int job_load_buffer(const char *name, const char *text, size_t len,
                    const struct job_load_opts *opts, struct job **out,
                    struct diags *d);

void job_free(struct job *job);

/* Prints the job graph readably (sluice validate). Passwords are masked. */
void job_print(const struct job *job, FILE *out);

/* "10m", "1h", "500ms": the largest unit that divides exactly. */
void duration_format(int64_t ms, char *buf, size_t size);

/* Parses "500ms", "10s", "10m", "1h", "7d".  Returns 0, or -EINVAL with a
 * message in err (size errsize).  Negative values parse (the caller decides);
 * results beyond about 290 million years are rejected as overflow. */
int duration_parse(const char *s, int64_t *ms, char *err, size_t errsize);

const char *time_char_name(enum time_char t);        /* "event", "processing" */

/* A sink's key template (its type's CM_TEMPLATE key), or NULL when its
 * type has none or the job file gives none. */
const struct cm_template *job_sink_key(const struct job_sink *s);

/* The `state:` block's keys, and the keys every source and every sink has
 * besides its type's (read by the loader itself; listed for the docs), and
 * a source's `repartition:` block's. */
extern const struct cm_map job_state_map, job_source_map, job_sink_map;
extern const struct cm_map job_repartition_map;

#endif
