/*
 * graph.h - the job graph `sluice run` runs now: the job, its shards, one
 * source and one sink instance per definition, and where the reading of
 * each source's partitions stands.
 *
 * A shard is partition p of every source of the job (docs/state.md,
 * "Shards"): it has an engine of its own (state, timers, watermarks), so
 * what it computes depends only on its partition's records, never on which
 * other shards share the process.  Shards come and go with the consumer
 * group's assignments.  A shard restored from a checkpoint written before
 * shards existed may hold several partitions (parts[]); it stays whole.
 *
 * The run (cmd_run.c) builds it, replaces it on a reload and owns the job
 * and the engine it points to.  The checkpoints, the counters and the
 * HTTP endpoint are given a pointer to it: they read it, and only the
 * checkpoints write to it, the read positions of a restore, before any
 * source has started.  A reload
 * changes what the fields point to, never where the struct is.
 * Loop thread only.
 */
#ifndef SLUICE_GRAPH_H
#define SLUICE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"
#include "../config/job.h"
#include "../connectors/connector.h"
#include "../engine/engine.h"

/* Read positions of one source: the next offset of each partition. */
struct offsets {
    struct engine_offset *v;
    size_t n, cap;
};

struct shard {
    int32_t id;                     /* its partition (the first, for a merged one) */
    int32_t *parts;                 /* the partitions it holds: usually just id */
    size_t nparts;
    struct engine *eng;
    uint64_t gen;                   /* distinct for every shard the run creates */
    uint64_t changes;               /* records applied, windows finished ... */
    uint64_t snap_changes;          /* ... as of its last complete snapshot */
    uint64_t taking;                /* `changes` when the running checkpoint forked */
    int ended;                      /* bounded: every partition of it has ended */
    int pinned;                     /* restored from a savepoint, or from the local
                                     * checkpoints without a shared store: the group's
                                     * commit does not replace it */
    /* the last snapshot of it published (or restored): what the next
     * publication names as its `prev` */
    char snap_obj[256];
    uint64_t snap_id, snap_len, snap_xxh;
    int64_t snap_offset;
    char restored_from[300];        /* where its state came from ("" nothing) */
    /* the snapshots of its chain this instance knows in the shared store
     * (restored from, or published), oldest first: it deletes the oldest */
    char (*chain)[256];
    size_t nchain;
    /* the newest snapshot whose commit the group confirmed (or the one
     * restored: the group's commit names it), and the last one sent to be
     * committed: nothing from the confirmed one's prev on is deleted */
    char confirmed[256], pend_obj[256];
    int64_t pend_off;
    uint64_t restore_ms;
    int owned;                      /* its source assigned it to this run (a shard
                                     * restored from the local checkpoints with a shared
                                     * store is not, until the group says so) */
    uint64_t assigned_ns;           /* uv_hrtime() of its assignment until its first
                                     * record is applied (then 0): the hand-off log */
    /* stage 2 of a repartitioning: per repartition source it reads, the
     * input partitions its watermark follows (connectors/rp_header.h) */
    struct shard_rp *rp;
    size_t nrp;
};

struct shard_rp {
    int source;
    int32_t nsrc;                   /* input partitions (0: no record yet) */
    int32_t nended;                 /* of which sent their end marker (bounded) */
    unsigned char *ended;           /* [nsrc] */
};

struct graph {
    struct job *job;                /* NULL before the first graph */
    struct engine_output out;       /* what every shard's engine reports to */
    struct shard **shards;          /* sorted by id */
    size_t nshards, capshards;
    uint64_t next_gen;
    /* what dropped shards had counted, so the run's counters never go back:
     * per source records in and invalid, per operator results, late, lost */
    uint64_t *gone_in, (*gone_invalid)[REJ_NKINDS], *gone_res, *gone_late, *gone_lost;
    struct source *src;             /* [job->nsources] */
    struct sink *snk;               /* [job->nsinks] */
    struct offsets *offs;           /* [job->nsources]: where reading stands */
    int *assigned;                  /* [job->nsources]: a partition was assigned */
    /* stage 2 of repartitionings: data records dropped because stage 1
     * produced them twice, records skipped for a bad header */
    uint64_t rp_dups, rp_bad;
};

/* The arrays for job (g->job = job; the caller keeps owning it).  Returns 0
 * or -ENOMEM (then graph_free() releases what was allocated). */
int graph_alloc(struct graph *g, struct job *job) SL_MUST_USE;

/* Frees the arrays and the shards; the job is the caller's. */
void graph_free(struct graph *g);

/* The partition's read position, appended (next = -1) if new; NULL when
 * out of memory. */
struct engine_offset *offsets_slot(struct offsets *o, int32_t partition) SL_MUST_USE;

/* The partition's next offset, or -1 when nothing says. */
int64_t offsets_next(const struct offsets *o, int32_t partition);

/* *dst becomes a copy of *src (dst's memory reused).  Returns 0 or -ENOMEM
 * (dst unchanged). */
int offsets_copy(struct offsets *dst, const struct offsets *src) SL_MUST_USE;

/* Forgets every read position (a restore that failed half-way). */
void graph_clear_offsets(struct graph *g);

/* engine_offsets_fn over a struct graph: a source's read positions. */
size_t graph_offsets(void *g, int source, struct engine_offset *out, size_t max);

/* The shard holding partition part, or NULL. */
struct shard *graph_shard(const struct graph *g, int32_t part);

/* A new, empty shard for part (its engine built with g->out).  Returns 0
 * or -ENOMEM. */
int graph_shard_new(struct graph *g, int32_t part, struct shard **out) SL_MUST_USE;

/* Adds partition part to shard sh (a merged shard restored from an old
 * checkpoint).  Returns 0, -EEXIST when another shard has it, or -ENOMEM. */
int graph_shard_add_part(struct graph *g, struct shard *sh, int32_t part) SL_MUST_USE;

/* The shard's id becomes id (kept sorted). */
void graph_shard_rekey(struct graph *g, struct shard *sh, int32_t id);

/* Frees the shard and forgets its partitions' read positions. */
void graph_shard_drop(struct graph *g, struct shard *sh);

/* Drops every shard. */
void graph_shards_clear(struct graph *g);

/* Appends a snapshot's name to the shard's chain (once).  Returns 0 or
 * -ENOMEM. */
int shard_chain_push(struct shard *sh, const char *obj) SL_MUST_USE;

/* The shard's state of repartition source `source`, made on first use;
 * NULL when out of memory. */
struct shard_rp *shard_rp_get(struct shard *sh, int source) SL_MUST_USE;

/* Whether sh holds partition part (a virtual partition of a repartition
 * source, rp_header.h: whether it holds the partition it belongs to). */
int shard_has(const struct shard *sh, int32_t part);

/* engine_offsets_fn over one shard (ud: struct shard_offsets): the read
 * positions of its partitions only. */
struct shard_offsets {
    const struct graph *g;
    const struct shard *sh;
};
size_t shard_offsets(void *ud, int source, struct engine_offset *out, size_t max);

/* The engine figures over every shard: sums, and the smallest watermark. */
void graph_stats(const struct graph *g, struct engine_stats *st);
void graph_op_stats(const struct graph *g, int op, uint64_t *results, uint64_t *late,
                    uint64_t *lost);
void graph_source_stats(const struct graph *g, int source, uint64_t *in,
                        uint64_t invalid[REJ_NKINDS]);
int64_t graph_watermark(const struct graph *g, int source);
size_t graph_partitions(const struct graph *g, int source, int32_t *ids, int64_t *wms,
                        size_t max);

/* Writes accepted by the sinks and not acknowledged yet. */
size_t graph_pending(const struct graph *g);

#endif
