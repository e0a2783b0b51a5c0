/*
 * engine.h - the job graph at run time: records in, window results out.
 *
 * The engine owns everything between a raw record and a fired window:
 * decoding (record.h), keying, the state tables (state_table.h), window
 * operators with their timers, watermarks, and counters.  It does no I/O.
 * Callers feed it records (from Kafka, a file, or a benchmark buffer) and
 * receive results through a struct engine_output; connectors turn those
 * into Redis writes, Kafka records or JSON lines.
 *
 * Processing order, the contract of docs/semantics.md: for each record, (1)
 * decode it, (2) for every operator on its source, judge lateness against
 * the watermark as it was before this record, update state, and fire
 * immediately any window a late-but-allowed record updates, then (3)
 * advance the partition's watermark with the record's event time and fire,
 * in time order, every window the new watermark has passed, before the
 * next record is looked at.
 *
 * Time: event time comes from records.  Processing time and idleness come
 * from engine_opts.clock (the wall clock by default; tests pass a fake).
 * Single-threaded: one loop thread calls everything.
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../config/job.h"
#include "record.h"
#include "value.h"

struct engine;

/*
 * One fired window. Everything it points to is valid during the callback only.
 *
 * version grows with the input of the result's key, so a sink can keep the
 * newest result of a key when results arrive again (a replay after a crash
 * or after a partition moved): a result with a smaller version is older.
 * Equal versions are the same window fired again (a late re-fire, or a
 * replay): the later one is the one to keep.  Per operator type:
 *   - types with bounds (tumbling, sliding, session): the window end (ms);
 *   - one-input types without bounds (global, count, detect, reduce with
 *     emit on_update): the offset of the record whose arrival produced the
 *     result, in its partition (a file source: the line's byte offset).
 *     Input keyed by the job's key puts a key's records in one partition,
 *     so the offsets of a key's records grow, whatever engine reads them;
 *   - results no record of their own produced (reduce with `emit: every`)
 *     and joins (two inputs, whose offsets are not comparable): the
 *     engine's input position, the greatest offset it has been fed on any
 *     partition of any source (restored from a checkpoint's read
 *     positions).  It grows within one engine; it is comparable across
 *     engines only when each engine reads one partition (shards).
 * docs/semantics.md ("Versions") says the same for users.
 */
struct engine_result {
    int op;                         /* index into job->operators */
    const struct value *keys;       /* the operator's key_by fields, in order */
    size_t nkeys;
    int64_t start, end;             /* window bounds (ms); INT64_MIN for global windows */
    const struct value *vals;       /* one per aggregate, in job order */
    size_t nvals;
    int refire;                     /* a late record updated an already fired window */
    int64_t version;                /* grows with the key's input (above) */
};

struct engine_output {
    void *ud;
    /* A window fired. */
    void (*result)(void *ud, const struct engine_result *r);
    /* A record was too late for every window of operator op; sink is the
     * operator's late_events sink (index into job->sinks). */
    void (*late)(void *ud, int op, int sink, const struct record *rec);
    /* A record was rejected; dead_letter is the source's dead-letter sink
     * or -1 when on_error is skip. */
    void (*invalid)(void *ud, int source, int dead_letter, int32_t partition,
                    int64_t offset, const char *raw, size_t len, const struct reject *rej);
    /* Optional (NULL: not asked): a key new to the state of key group
     * `group`, one in ENGINE_KEY_SAMPLE of them (picked by their hash, so
     * the same keys in every engine of a job), with its encoded bytes: the
     * host checks that a key stays on one input partition. */
    void (*new_key)(void *ud, int group, const char *key, size_t len);
};

#define ENGINE_KEY_SAMPLE 16

typedef int64_t (*engine_clock_fn)(void *ud);   /* processing time, ms since the epoch */

struct engine_opts {
    engine_clock_fn clock;          /* NULL: the wall clock */
    void *clock_ud;
    uint64_t hash_seed;             /* 0: a fixed default (reproducible layouts) */
    int time_firing;                /* count engine_cycles() spent firing windows
                                     * (engine_stats.fire_cycles): for `sluice bench` */
};

/* Builds the engine for job (borrowed: it must outlive the engine).
 * Returns 0 or -ENOMEM. */
int engine_new(const struct job *job, const struct engine_opts *opts,
               const struct engine_output *out, struct engine **ep);
void engine_free(struct engine *e);

/*
 * Feeds one raw record of source `source` from `partition` at `offset`
 * (offsets are carried for dead letters and checkpoints; any value works
 * for files).  kafka_ts is the Kafka timestamp (ms) or 0.  Bad records are
 * counted and reported through out->invalid; they never fail the call.
 * Returns 0, or -ENOMEM when state could not grow (the record is not
 * applied; the caller should stop and restore).
 */
int engine_feed(struct engine *e, int source, int32_t partition, int64_t offset,
                const char *data, size_t len, int64_t kafka_ts);

/*
 * Lookups that hide memory latency.  The host tells the engine which
 * records of `source` it is about to feed, in order: in[0 .. n) (borrowed,
 * with their bytes, until the next engine_prefetch of the source).  Each
 * engine_feed of the next of them (same data, len and kafka_ts) then uses
 * it decoded ahead: groups of ENGINE_BATCH are decoded together and their
 * keys' index slots, entries and operator states prefetched, a step for
 * the whole group before the next, so the cache misses of a group overlap
 * instead of following one another.  Only the speed changes: each record
 * is still applied by its own engine_feed, in order, with the same state
 * and results.  A feed of anything else ends the hints (the record is
 * decoded as usual); engine_prefetch(e, source, NULL, 0) ends them too,
 * and must come before the bytes go away.
 */
#define ENGINE_BATCH 16
struct engine_in {
    const char *data;
    size_t len;
    int64_t offset;
    int64_t kafka_ts;
};
void engine_prefetch(struct engine *e, int source, const struct engine_in *in, size_t n);

/* engine_prefetch(in, n), engine_feed of each in order, engine_prefetch(NULL,
 * 0): *done is set to the records applied (n, or the index of the one that
 * failed).  Returns 0 or -ENOMEM, as engine_feed. */
int engine_feed_batch(struct engine *e, int source, int32_t partition,
                      const struct engine_in *in, size_t n, size_t *done);

/*
 * The event time of a record of `source` ahead of feeding it, or INT64_MIN
 * when it has none (it will be rejected, or the source has no event time):
 * the host orders the records of several bounded file sources by it.  The
 * record is decoded once: the decoded form is kept, and the engine_feed of
 * the same bytes (same data, len and kafka_ts) uses it.
 */
int64_t engine_peek_time(struct engine *e, int source, const char *data, size_t len,
                         int64_t kafka_ts);

/* The source's partitions never go idle (a bounded file source: its records
 * are all there, so idleness could only make results depend on the speed
 * of the machine). */
void engine_source_never_idle(struct engine *e, int source);

/* Partition assignment (a new partition holds the watermark back until its
 * first record or until it is idle) and revocation. */
int engine_partition_add(struct engine *e, int source, int32_t partition);
void engine_partition_remove(struct engine *e, int source, int32_t partition);

/* The partition has seen event times up to max_ts without a record of this
 * engine carrying it (a repartition topic's marker, or the greatest event
 * time of its input partition carried by a record): its watermark advances
 * as a record at max_ts would advance it (docs/semantics.md), and windows
 * it passes fire.  INT64_MIN, or a source without event time: nothing. */
void engine_partition_observe(struct engine *e, int source, int32_t partition, int64_t max_ts);

/* Bounded mode: the partition has reached the end offset it had at start. */
void engine_partition_end(struct engine *e, int source, int32_t partition);

/* Re-reads the clock: idleness, processing-time windows.  Call it on a
 * timer (the daemon does every 100 ms). */
void engine_tick(struct engine *e);

/* End of bounded input: every source's watermark goes to +infinity, so
 * every open event-time window fires; processing-time windows fire too. */
void engine_finish(struct engine *e);

struct engine_stats {
    uint64_t records_in;            /* fed, valid or not */
    uint64_t records_invalid;
    uint64_t invalid_by_kind[REJ_NKINDS];
    uint64_t records_late;          /* dropped (or sent to late_events) by some operator */
    uint64_t results;               /* windows fired (re-fires included) */
    uint64_t results_lost;          /* for lack of memory: a window not combined, or a
                                     * key's timer not set again (engine_result_lost) */
    uint64_t state_keys;            /* keys with state, over all key groups */
    uint64_t state_bytes;           /* all of the below */
    uint64_t state_table_bytes;     /* key index and entries */
    uint64_t state_slab_bytes;      /* slab pages and large blobs (panes, sessions...) */
    uint64_t state_slab_live;       /* of which in use */
    uint64_t state_timer_bytes;     /* timer queues */
    uint64_t fire_cycles;           /* with opts.time_firing: engine_cycles() spent firing
                                     * due windows (results computed, encoded by the
                                     * output callback and handed over) */
    uint64_t fire_results;          /* the results fired in that time */
};

/* A cheap monotonic tick count (the TSC on x86-64, else nanoseconds):
 * only differences mean anything, in units the caller calibrates. */
static inline uint64_t engine_cycles(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

void engine_get_stats(const struct engine *e, struct engine_stats *st);

/* Per operator: fired windows, late records and lost results (as in
 * engine_stats). */
void engine_op_stats(const struct engine *e, int op, uint64_t *results, uint64_t *late,
                     uint64_t *lost);

/* The watermark of a source (WM_MIN before any, WM_MAX after finish). */
int64_t engine_watermark(const struct engine *e, int source);

/* Per source: records fed, and rejected by kind. */
void engine_source_stats(const struct engine *e, int source, uint64_t *in,
                         uint64_t invalid[REJ_NKINDS]);

/* The partitions a source's watermark follows, with their own watermarks
 * (INT64_MIN before a record).  Returns how many (at most max). */
size_t engine_partitions(const struct engine *e, int source, int32_t *ids, int64_t *wms,
                         size_t max);

/* ---- checkpoints (engine/snapshot.c) ---- */

struct ckpt_writer;
struct ckpt_reader;

struct engine_offset {
    int32_t partition;
    int64_t next;                   /* offset of the next record to apply */
};

/* The caller's read positions: fills out (at most max) for source. */
typedef size_t (*engine_offsets_fn)(void *ud, int source, struct engine_offset *out,
                                    size_t max);

/* Writes every source's watermarks and offsets and every operator's state.
 * Only memory and write(2): safe in a fork()ed child.  Returns 0 or the
 * writer's error. */
int engine_snapshot(const struct engine *e, struct ckpt_writer *w, engine_offsets_fn offsets,
                    void *ud);

struct engine_restore_cb {
    void *ud;
    /* a partition's read position in the checkpoint */
    void (*offset)(void *ud, int source, int32_t partition, int64_t next);
    /* something worth a warning (state dropped or ignored) */
    void (*note)(void *ud, const char *msg);
};

/*
 * Loads a verified checkpoint into a new engine (before any record).
 * Operators are matched by name and fingerprint: a changed operator fails
 * the restore unless allow_non_restored, which starts it empty; state of
 * operators the job no longer has is ignored (noted).  On failure the
 * engine is half-loaded: free it.  Returns 0, -EPERM when the job's
 * definition refuses the state, or another negative code (malformed, out
 * of memory), with err.
 */
int engine_restore(struct engine *e, struct ckpt_reader *r, int allow_non_restored,
                   const struct engine_restore_cb *cb, char *err, size_t errsize);

/* A hash of what an operator's state means (window, keys, aggregates), as
 * checkpoint format `format` writes it: CKPT_VERSION for a new file, a
 * file's own version to compare with what it holds (1: sluice 0.1.0). */
uint64_t engine_op_fingerprint(const struct job *job, int op, uint32_t format);
/* The same for a source (its type and topic or path). */
uint64_t engine_source_fingerprint(const struct job_source *js, uint32_t format);

#endif
