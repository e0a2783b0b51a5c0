/*
 * connector.h - sources and sinks as callback structs, and the host that
 * runs them.
 *
 * As in Fluent Bit, a connector type is a static struct of callbacks
 * (struct source_ops, struct sink_ops) built with designated initializers,
 * kept apart from its runtime instance (struct source, struct sink), so one
 * type can be used by many instances.  A type also declares its settings
 * (a config map, config/confmap.h) and is registered by one line in
 * connectors/registry.c (config/conntype.h).  The host (cmd/cmd_run.c) owns the
 * engine, retry policy and backpressure: sources push records up through
 * struct source_host; sinks say when they are congested or drained through
 * struct sink_host, and the host pauses or resumes every source.  A sink
 * never drops a write to relieve pressure; it keeps it until it is
 * acknowledged.
 *
 * Everything runs on the libuv loop thread.  Close callbacks follow libuv:
 * close() starts closing, done() is called when the instance's handles
 * are closed and its memory may be freed.
 */
#ifndef SLUICE_CONNECTOR_H
#define SLUICE_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../config/job.h"
#include "../engine/engine.h"
#include "histo.h"
#include "rp_header.h"

struct source;
struct sink;

/* ---- sources ------------------------------------------------------------ */

/* What the group holds for a partition when it is assigned. */
struct source_committed {
    int64_t offset;                 /* -1: nothing committed */
    const char *meta;               /* the commit's metadata; NULL when none */
    size_t meta_len;
};

struct source_host {
    void *ud;
    uv_loop_t *loop;
    int bounded;                    /* --bounded: stop at the end offsets of the start */
    /* A record at `offset`; `next` is the offset of the record after it,
     * where a checkpoint taken now resumes (the source knows it: Kafka's
     * offset + 1, a file's next line however long this one was).  rp: a
     * repartition source's (SRC_REPARTITION) record header, parsed
     * (rp_header.h); NULL for every other source (a repartition record
     * without a valid header is counted and skipped by the source, never
     * handed over).  Returns 0, SOURCE_PART_ENDED (a repartition source in
     * bounded mode: the partition has received the end marker of every
     * input partition, so it has no more records: the source pauses it and
     * reports it through ended()), or a negative code to stop the job. */
    int (*record)(void *ud, int source, int32_t partition, int64_t offset, int64_t next,
                  const char *data, size_t len, int64_t ts_ms, const struct rp_meta *rp);
    /* Optional (NULL: none): the source is about to hand over in[0 .. n), in
     * order, all of `partition`, through record(); then it says (NULL, 0)
     * before their bytes go away.  A hint for the engine (engine_prefetch):
     * nothing else may depend on it. */
    void (*prefetch)(void *ud, int source, int32_t partition, const struct engine_in *in,
                     size_t n);
    /* A record a source rejected itself (stage 1 of a repartitioning decodes
     * records before producing them): counted, logged and dead-lettered by
     * the host as the engine's rejects are. */
    void (*invalid)(void *ud, int source, int32_t partition, int64_t offset, const char *data,
                    size_t len, const struct reject *rej);
    /* A partition is assigned.  c: what the group has committed for it (NULL
     * for sources without a group, e.g. files; valid during the call only).
     * The host installs the partition's state (it may load a snapshot,
     * synchronously) and sets *resume to the offset of the next record to
     * read, or -1 for the source's `start`.  Returns 0, SOURCE_PART_ENDED
     * (a repartition source in bounded mode whose restored state has
     * every input partition's end marker: the source ends it at once), or
     * a negative errno: the source then fails (logged by the host). */
    int (*assigned)(void *ud, int source, int32_t partition, const struct source_committed *c,
                    int64_t *resume);
    /* The partition is no longer ours.  lost: the group took it without a
     * revocation (rd_kafka_assignment_lost(): our session expired): the host
     * must not commit it. */
    void (*revoked)(void *ud, int source, int32_t partition, int lost);
    /* What became of a commit asked with ops->commit: err 0 (committed),
     * -ESTALE (fenced: we are not a member or not the owner any more: the
     * commit is dropped), or -EIO (failed for another reason and given up;
     * logged by the source). */
    void (*committed)(void *ud, int source, int32_t partition, int64_t next, int err);
    /* Bounded mode (and files): the partition has no more records. */
    void (*ended)(void *ud, int source, int32_t partition);
    /* Bounded mode: the source has nothing more to read at all. */
    void (*finished)(void *ud, int source);
    /* Bounded mode: a source that had finished was given partitions again
     * (a rebalance took them and gave them back, or gave it others): it
     * reads them to their end before the input is all read, and says
     * finished() again then. */
    void (*unfinished)(void *ud, int source);
    /* The source cannot go on (logged by the source). */
    void (*failed)(void *ud, int source);
    /* A record's event time (INT64_MIN: none, or it will be rejected), for
     * sources that order records of several inputs by it (bounded files).
     * The record must then be handed over unchanged as the source's next. */
    int64_t (*event_time)(void *ud, int source, const char *data, size_t len);
};

/* A position to commit: the partition's next offset, and the metadata to
 * commit with it. */
struct source_commit {
    int32_t partition;
    int64_t next;                   /* the offset committed */
    const char *meta;               /* metadata to commit with it (copied), NULL: none */
};

/* What became of a source's commits since it started (ops->commit_stats).
 * Each partition's outcome counts once, except `retried`, which counts
 * attempts that failed and were tried again. */
struct source_commit_stats {
    uint64_t ok;                    /* confirmed by the group */
    uint64_t fenced;                /* refused: not a member or not the owner (-ESTALE) */
    uint64_t retried;               /* failed for a reason that passes, tried again */
    uint64_t failed;                /* given up (-EIO) */
};

#define SOURCE_PART_ENDED 1

/* What a source that applies its records itself counts (stage 1 of a
 * repartitioning); the host exports them. */
struct source_own_stats {
    uint64_t records_in;            /* read */
    uint64_t invalid[REJ_NKINDS];   /* rejected (also reported through host->invalid) */
    uint64_t produced;              /* records produced and acknowledged */
    uint64_t markers;               /* watermark and end markers produced */
    uint64_t in_flight;             /* produced, not acknowledged yet */
    uint64_t commits;               /* input offsets committed */
};

struct source_ops {
    const char *type;
    int (*start)(struct source *s);
    void (*pause)(struct source *s);
    void (*resume)(struct source *s);
    /* A checkpoint is complete: asks to commit these positions where the
     * source keeps them (Kafka: the consumer group), asynchronously; the
     * outcome of each comes through host->committed.  A partition not owned
     * at this moment is not committed (-ESTALE).  c and its metadata are
     * copied. */
    void (*commit)(struct source *s, const struct source_commit *c, size_t n);
    /* Before close at the end of a run: returns once whatever was asked and
     * not yet confirmed is committed, or after timeout_ms (the loop waits:
     * the call serves the source's own events meanwhile), retrying
     * "rebalance in progress" and other retriable errors.  Returns 0, or a
     * negative errno when some could not be committed (logged): -ESTALE
     * when every one that was not committed was fenced (another member owns
     * it now), else -EIO. */
    int (*flush_commits)(struct source *s, int timeout_ms);
    /* The commits' outcomes so far (zeros for a source that commits nothing). */
    void (*commit_stats)(const struct source *s, struct source_commit_stats *out);
    /* NULL, or what the source counts itself (stage 1). */
    void (*own_stats)(const struct source *s, struct source_own_stats *out);
    /* Records between `next` and the end of partition, or -1 when unknown. */
    int64_t (*lag)(const struct source *s, int32_t partition, int64_t next);
    /* NULL, or this instance's name in the group that assigns the
     * partitions (Kafka: the member id) into buf ("" when none yet). */
    void (*member)(const struct source *s, char *buf, size_t size);
    void (*close)(struct source *s, void (*done)(struct source *s));
};

struct source {
    const struct source_ops *ops;
    const struct job *job;
    const struct job_source *js;
    int index;
    const struct source_host *host;
    void *impl;
    char name[160];                 /* "kafka events", for logs */
    struct histo delay;             /* the host's: a record's timestamp (Kafka's) to
                                     * its arrival, over the records that have one */
};

/* ---- sinks ---------------------------------------------------------------- */

struct sink_host {
    void *ud;
    uv_loop_t *loop;
    /* Pending writes crossed the sink's high-water mark / fell below its
     * low-water mark. */
    void (*congested)(void *ud, struct sink *s);
    void (*drained)(void *ud, struct sink *s);
    /* The arrival (uv_hrtime()) of the record being applied while results
     * are written, for the freshness of what it fires; 0 when the results
     * come from elsewhere (end of input, a processing-time timer).  The
     * host sets it around each record; sinks read it in write_result. */
    uint64_t cause_ns;
};

struct sink_ops {
    const char *type;
    int (*open)(struct sink *s);
    /* A fired window of operator op.  Returns 0 or a negative code (the
     * write could not even be queued: out of memory). */
    int (*write_result)(struct sink *s, const struct job_operator *op,
                        const struct engine_result *r);
    /* Raw bytes: a late record, or a dead-letter JSON line; key may be NULL. */
    int (*write_raw)(struct sink *s, const char *data, size_t len, const char *key,
                     size_t klen);
    /* Writes accepted but not yet acknowledged by the destination. */
    size_t (*pending)(const struct sink *s);
    /* Checkpoints: marks every write made so far (returns 0, or a negative
     * code when they can never be made durable) ... */
    int (*barrier)(struct sink *s);
    /* ... and says whether all of them are acknowledged, durably. */
    int (*barrier_done)(const struct sink *s);
    void (*close)(struct sink *s, void (*done)(struct sink *s));
};

struct sink {
    const struct sink_ops *ops;
    const struct job *job;
    const struct job_sink *js;
    int index;
    const struct sink_host *host;
    void *impl;
    char name[160];
    uint64_t written, retried, failed;  /* acknowledged, retried, failed attempts */
    uint64_t stale;                     /* of the written: kept out by a newer result
                                         * the destination holds (Redis, versioned) */
    uint64_t coalesced;                 /* replaced in the queue by a newer write to the
                                         * same key before being sent (Redis) */
    int timed;                          /* the sink observes the two histograms: */
    struct histo write_latency;         /* result queued -> acknowledged */
    struct histo freshness;             /* its record's arrival -> acknowledged */
};

/* ---- types --------------------------------------------------------------- */

/* The callbacks of an instance's type (config/conntype.h: each type's
 * descriptor is defined next to its code and listed in
 * connectors/registry.c); an SRC_STAGE1 source's are
 * repartition_source_ops (connectors/repartition.c), whatever its type. */
extern const struct source_ops repartition_source_ops;
const struct source_ops *source_ops_for(const struct job_source *js);
const struct sink_ops *sink_ops_for(const struct job_sink *js);

#endif
