/*
 * checkpoint.h - checkpoints, savepoints and restore for `sluice run`
 * (the protocol and its guarantees: docs/state.md).
 *
 * One struct checkpoints lives as long as the run; its fields are private
 * to checkpoint.c.  For each job graph the run calls chkpt_setup() with
 * what the checkpoints need of it (struct chkpt_host), chkpt_restore()
 * before any source starts, and chkpt_stop() before the graph goes (a
 * reload); chkpt_close() at the end.  Checkpoints are taken every
 * state.checkpoint_interval while host->may_take() says so, and on
 * request with chkpt_take(), whose end is reported through a callback.
 * The figures (/metrics, /status, STATUS=, the summary) are read with
 * chkpt_stats().  chkpt_free() when the loop has closed the handles.
 * Loop thread only.
 */
#ifndef SLUICE_CHECKPOINT_H
#define SLUICE_CHECKPOINT_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "../config/compiler.h"
#include "../connectors/connector.h"
#include "../engine/ckpt_file.h"
#include "graph.h"

struct checkpoints;

/* What the checkpoints need from the run, from chkpt_setup() to
 * chkpt_stop(). */
struct chkpt_host {
    void *ud;
    /* The engine to snapshot or restore into, the sinks' barriers, the
     * sources' commits, and the read positions: copied for each
     * checkpoint, set by a restore. */
    struct graph *g;
    /* A restore failed half-way: start over without state and without
     * read positions.  Returns 0 or a negative errno. */
    int (*reset)(void *ud);
    /* Whether a checkpoint may start now: asked every interval and before
     * a savepoint that waited behind a running checkpoint. */
    int (*may_take)(void *ud);
};

/* The end of a checkpoint or savepoint asked for with chkpt_take(): path
 * is the complete file when rc is 0, else NULL; rc is 0 or a negative
 * errno (-ECANCELED: stopped by chkpt_stop() or chkpt_close() first).
 * Called on the loop thread, at most once per chkpt_take() that returned
 * 0, possibly before chkpt_take() returns (it failed at once). */
typedef void (*chkpt_done_fn)(void *ud, enum ckpt_kind kind, uint64_t id, const char *path,
                              int rc);

/* Figures of this run, savepoints included. */
/* One checkpoint or savepoint that ended, for the status page. */
struct chkpt_record {
    uint64_t id;
    int savepoint;                  /* 0: a checkpoint */
    int ok;                         /* 1: complete, 0: failed */
    int64_t at_ms;                  /* wall clock when it ended */
    uint64_t ms;                    /* from its start to its end */
    uint64_t bytes;                 /* written (0 when it failed) */
    uint64_t stall_us;              /* the loop's pause for its fork (0: none) */
    size_t shards;                  /* shard files it wrote (0: nothing had changed) */
    char why[256];                  /* why it failed ("" when complete) */
};

#define CHKPT_HISTORY 16            /* the last ones kept */

struct chkpt_stats {
    uint64_t ok, failed;            /* complete, failed */
    /* the last CHKPT_HISTORY that ended: the newest is
     * history[(nhistory - 1) % CHKPT_HISTORY] */
    struct chkpt_record history[CHKPT_HISTORY];
    uint64_t nhistory;
    uint64_t last_id;               /* the last complete one: its id, */
    uint64_t last_bytes, last_ms;   /* size, time from the fork to complete, */
    int64_t last_at_ms;             /* wall clock when complete (0: none yet) */
    uint64_t last_stall_us;         /* the loop's pause for the last fork */
    uint64_t max_stall_us;          /* and the longest */
    char restored_from[PATH_MAX];   /* what this run restored last ("": nothing) */
    /* shards */
    uint64_t handoffs;              /* restored from a snapshot the group's commit named */
    uint64_t restore_ms;            /* time spent restoring shards, all of them */
    uint64_t damaged;               /* a named snapshot unusable: the previous one tried */
    uint64_t published;             /* shard snapshots published (committed) */
    uint64_t fenced;                /* commits refused: the partition is not ours */
    uint64_t store_errors;          /* uploads, downloads and deletes that failed */
    uint64_t uploaded, downloaded;  /* bytes to and from the shared store */
};

/* The checkpoints of a run on loop.  Returns 0 or -ENOMEM. */
int chkpt_new(uv_loop_t *loop, struct checkpoints **out) SL_MUST_USE;

/* A graph starts: creates state.dir/checkpoints/<job> and
 * state.dir/savepoints, removes what unfinished checkpoints left, finds
 * the next id, starts the interval.  Copies *host.  Returns 0 or a
 * negative errno (logged). */
int chkpt_setup(struct checkpoints *ck, const struct chkpt_host *host) SL_MUST_USE;

/* The newest usable checkpoint, or `from` (a savepoint directory or a
 * file) when not NULL, into the host's engine and read positions; logs
 * what it did.  Returns 0 (restored, or nothing to restore), -ENOMEM (a
 * runtime failure: nothing older is tried), or another negative errno
 * when the state cannot be used as asked (the job refuses it, or `from`
 * is not usable): a configuration error. */
int chkpt_restore(struct checkpoints *ck, const char *from, int allow_non_restored)
    SL_MUST_USE;

/* A partition was assigned (source_host.assigned): installs its shard -
 * the one restored already when the group's commit names the same
 * snapshot (or says nothing), else the snapshot the commit names, from the
 * local copy or the shared store, checked against the commit (size,
 * checksum, offset), falling back to its `prev` - and sets *resume.
 * Returns 0 or a negative errno (-ENOMEM; -EPERM: the job refuses the
 * state). */
int chkpt_assign(struct checkpoints *ck, int source, int32_t part,
                 const struct source_committed *c, int64_t *resume) SL_MUST_USE;

/* A partition went (revoked, or lost): its shard is dropped. */
void chkpt_revoke(struct checkpoints *ck, int source, int32_t part, int lost);

/* A commit's outcome (source_host.committed), for the figures. */
void chkpt_committed(struct checkpoints *ck, int source, int32_t part, int64_t next, int err);

/* Takes a checkpoint or a savepoint now (its barrier and fork happen
 * before this returns); on_done (may be NULL) hears of its end.  A
 * savepoint asked for while another one runs follows it, if may_take()
 * still says so then.  Returns 0, -EBUSY (a checkpoint is running: a
 * checkpoint is skipped; too many wait for the next savepoint), or
 * -EAGAIN (between graphs: nothing to take). */
int chkpt_take(struct checkpoints *ck, enum ckpt_kind kind, chkpt_done_fn on_done, void *ud)
    SL_MUST_USE;

/* From the run's tick: completion once the sinks acknowledge, timeouts. */
void chkpt_poll(struct checkpoints *ck);

/* A checkpoint or savepoint is running. */
int chkpt_busy(const struct checkpoints *ck);

/* The graph goes (a reload): the running one is stopped (on_done gets
 * -ECANCELED), the interval too; a savepoint waiting to follow it stays
 * waiting for the next graph. */
void chkpt_stop(struct checkpoints *ck);

/* The end of the run: stops, cancels what waits (on_done gets
 * -ECANCELED), closes the handles.  chkpt_stats() still answers. */
void chkpt_close(struct checkpoints *ck);

/* Frees it, once the loop has run the handles' close callbacks. */
void chkpt_free(struct checkpoints *ck);

const struct chkpt_stats *chkpt_stats(const struct checkpoints *ck);

#endif
