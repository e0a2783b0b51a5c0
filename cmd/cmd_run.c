/*
 * cmd_run.c - `sluice run`: the daemon.  One libuv loop runs everything.
 *
 * The runtime is the host of the connectors (connector.h) and the owner of
 * the engine.  Records flow source -> engine_feed -> window results ->
 * sinks; the runtime routes each result to its operator's sinks, late
 * records to the operator's late_events sink and rejected records to the
 * source's dead-letter sink, and remembers, per partition, the offset of
 * the next record to read (what a checkpoint records).  It owns
 * backpressure: when any sink reports congestion every source is paused
 * until all sinks have drained.
 *
 * Lifecycle: the run is a state machine.  run_state.h lists the states
 * and the moves allowed between them, docs/internals.md draws it, and
 * run_set_state() below is the one function that moves it:
 *   STARTING   state dirs; restore the newest complete checkpoint (or
 *              --from-savepoint); open sinks;
 *   RUNNING    sources started, resuming where the checkpoint says; they
 *              feed the engine; a 100 ms tick re-reads the clock
 *              (idleness, processing-time windows) and drives checkpoints;
 *   RELOAD_WAIT, RELOAD_SAVEPOINT, SWAPPING_GRAPH
 *              SIGHUP: savepoint, close the old graph, STARTING the new;
 *   DRAINING   --bounded input is exhausted (engine_finish fired every
 *              window), or SIGTERM/SIGINT arrived (nothing fires early):
 *              sources are paused, sinks flushed;
 *   FINAL_CHECKPOINT  then the final checkpoint; after a signal all of it
 *              within STOP_DEADLINE_MS;
 *   CLOSING    every connector closes; STOPPED when they have, and the
 *              loop ends with the last handles: exit 0, or 2 after a
 *              runtime failure.
 * The checkpoints (checkpoint.h), the counters (counters.h) and the HTTP
 * endpoint (observe.h) see the graph through struct graph and the state
 * through callbacks; none of them calls into this file.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../config/compiler.h"
#include "../connectors/broker.h"
#include "../connectors/format.h"
#include "../connectors/kafka_common.h"
#include "../connectors/log.h"
#include "../engine/evtime.h"
#include "checkpoint.h"
#include "cli.h"
#include "counters.h"
#include "graph.h"
#include "keycheck.h"
#include "http.h"
#include "observe.h"
#include "reload.h"
#include "run_state.h"
#include "service.h"

#define TICK_MS 100
#define STOP_DEADLINE_MS 10000
#define FLUSH_COMMITS_MS 30000      /* the final positions' commits, retried for up to:
                                     * each rebalance as other instances leave takes a few s */
#define STATUS_EVERY_MS 5000

const struct cli_command cli_run = {
    .name = "run",
    .summary = "run a job (foreground; systemd supervises it)",
    .usage =
        "usage: sluice run -c FILE [--bounded] [--from-savepoint PATH]\n"
        "                  [--allow-non-restored-state] [--stage 1|2] [--log-level LEVEL]\n"
        "\n"
        "Runs the job.  On start it restores the newest complete checkpoint in\n"
        "state.dir (a damaged one is reported and the one before it used).\n"
        "SIGTERM or SIGINT: stop consuming, fire nothing early, flush the sinks,\n"
        "take a final checkpoint, exit 0 within 10 s.  SIGUSR1: write a savepoint.\n"
        "SIGHUP: re-read the job file; if it is valid, take a savepoint and go on with\n"
        "the new job from it, else keep running and log its errors.\n"
        "\n"
        "  --bounded                   consume every assigned partition up to the end\n"
        "                              offset it had when the job started (files: to their\n"
        "                              end), then fire every open window, flush the sinks,\n"
        "                              take a final checkpoint and exit 0\n"
        "  --from-savepoint PATH       restore this savepoint (or checkpoint file) instead\n"
        "  --allow-non-restored-state  start changed operators empty instead of refusing\n"
        "  --stage 1|2                 a job that repartitions (partitioned_by): run only\n"
        "                              stage 1 (read the inputs, produce to the repartition\n"
        "                              topics) or only stage 2 (everything else); default both\n"
        "  --log-level LEVEL           err, warning, notice, info (default) or debug\n"
        "\n"
        "Exit codes: 0 success, 1 configuration error, 2 runtime failure.\n",
    .run = cmd_run,
};


struct runtime {
    uv_loop_t loop;
    const char *file;               /* the job file, re-read on SIGHUP */
    enum run_state state;           /* moved by run_set_state() only */
    struct graph g;                 /* the job graph that runs */
    struct broker *broker;
    struct source_host shost;
    struct sink_host khost;
    uv_signal_t sigterm, sigint, sighup, sigusr1;
    uv_timer_t tick;
    int bounded, exit_code;
    int stage;                      /* --stage: 1 or 2 only, 0 both */
    size_t nrun, nengine;           /* sources this run starts; of which the engine reads */
    int paused;                     /* the sources are paused */
    int signalled;                  /* SIGTERM or SIGINT came: stop within the deadline */
    int ready;                      /* READY=1 sent for the current graph */
    size_t congested, finished, open;
    uint64_t stop_at;
    uint64_t first_ns, last_ns;     /* first record, end of input or stop */
    struct sbuf dl;
    struct log_rate invalid_rate;
    struct checkpoints *ck;
    struct counters *counters;
    struct observe *obs;
    const char *from_savepoint;
    int allow_non_restored;
    /* reload */
    struct job *next_job;
    char reload_path[PATH_MAX];
    uint64_t dropped;               /* records not applied during this reload's savepoint */
    struct keycheck *keys;          /* keys seen on two partitions */
    struct log_rate keys_rate;
    int32_t cur_part;               /* the partition of the record being fed */
    /* service */
    struct service svc;
    uint64_t status_at, status_in;  /* the last STATUS= line */
    struct http_server *http;
    int64_t started_ms;             /* wall clock at start */
};

static void begin_close(struct runtime *rt);
static void begin_drain(struct runtime *rt);
static void set_paused(struct runtime *rt, int pause);

/* The one way the run changes state.  A move run_state.h does not allow is
 * a bug in this file: it is logged and the process aborts (a restart
 * restores the last complete checkpoint), rather than go on in a state
 * nobody planned for. */
static void run_set_state(struct runtime *rt, enum run_state to)
{
    if (!run_state_allowed(rt->state, to)) {
        log_msg(LOG_ERR, "run", "bug: the run cannot go from %s to %s",
                run_state_name(rt->state), run_state_name(to));
        abort();
    }
    LOG(LOG_DEBUG, "run", "%s -> %s", run_state_name(rt->state), run_state_name(to));
    rt->state = to;
}

static enum run_state get_state(void *ud)
{
    const struct runtime *rt = ud;
    return rt->state;
}

static int get_backpressure(void *ud)
{
    const struct runtime *rt = ud;
    return rt->congested > 0;
}

static void rt_fail(struct runtime *rt, const char *why)
{
    if (rt->exit_code == 0)
        log_msg(LOG_ERR, "run", "stopping: %s", why);
    rt->exit_code = EXIT_RUNTIME;
    begin_close(rt);
}

/* ---- engine output ---------------------------------------------------------- */

static void on_result(void *ud, const struct engine_result *r)
{
    struct runtime *rt = ud;
    const struct job_operator *op = &rt->g.job->operators[r->op];
    for (size_t i = 0; i < op->nsinks; i++) {
        struct sink *s = &rt->g.snk[op->sinks[i]];
        if (s->impl != NULL && s->ops->write_result(s, op, r) < 0)
            rt_fail(rt, "a sink cannot take a window result");
    }
}

static void on_late(void *ud, int op, int sink, const struct record *rec)
{
    struct runtime *rt = ud;
    struct sink *s = &rt->g.snk[sink];
    (void)op;
    if (s->impl != NULL && s->ops->write_raw(s, rec->raw, rec->raw_len, NULL, 0) < 0)
        rt_fail(rt, "the late-events sink cannot take a record");
}

static void on_invalid(void *ud, int source, int dl, int32_t part, int64_t off,
                       const char *raw, size_t len, const struct reject *rej)
{
    struct runtime *rt = ud;
    struct source *src = &rt->g.src[source];
    char at[40] = "";
    if (rp_is_vid(part))            /* stage 2: the repartition topic's partition */
        part = rp_vid_part(part);
    if (rej->at >= 0)
        snprintf(at, sizeof(at), " at byte %" PRId64, rej->at);
    log_rate_msg(&rt->invalid_rate, LOG_WARNING, src->name, "partition %" PRId32 " offset %"
                 PRId64 ": %s record%s: %s", part, off, reject_kind_name(rej->kind), at,
                 rej->why);
    if (dl < 0)
        return;
    struct sink *s = &rt->g.snk[dl];
    rt->dl.len = 0;
    /* stage 1 rejects an input's records: named by their input */
    const char *from = src->js->role == SRC_STAGE1 ? rt->g.job->sources[src->js->origin].name
                                                   : src->js->name;
    if (fmt_dead_letter(&rt->dl, from, part, off, rej, raw, len) < 0 ||
        (s->impl != NULL && s->ops->write_raw(s, rt->dl.p, rt->dl.len, NULL, 0) < 0))
        rt_fail(rt, "the dead-letter sink cannot take a record");
}

/* source_host.invalid: a record stage 1 of a repartitioning rejected (it
 * counts it), or a record of a repartition topic without a valid header (a
 * repartition source skips it; counted here); the log and the dead letter
 * are the same as the engine's. */
static void h_invalid(void *ud, int source, int32_t part, int64_t off, const char *data,
                      size_t len, const struct reject *rej)
{
    struct runtime *rt = ud;
    const struct job_source *js = &rt->g.job->sources[source];
    if (js->role == SRC_REPARTITION)
        rt->g.rp_bad++;             /* its header, not its record, is at fault */
    on_invalid(ud, source, js->on_error == ON_ERROR_DEAD_LETTER ? js->dead_letter_sink : -1,
               part, off, data, len, rej);
}

/* A sampled key new to a shard's state: the input must keep each key on
 * one partition for several instances to be exact. */
static void on_new_key(void *ud, int group, const char *key, size_t len)
{
    struct runtime *rt = ud;
    int32_t first;
    if (keycheck_seen(rt->keys, group, key, len, rt->cur_part, &first))
        log_rate_msg(&rt->keys_rate, LOG_WARNING, "run", "a key on partition %" PRId32
                     " was seen on partition %" PRId32 " before: the input is not keyed by "
                     "the job's key, and several instances would not be exact "
                     "(sluice_keys_on_two_partitions_total)", rt->cur_part, first);
}

/* chkpt_host.reset: a restore failed half-way; no state, no positions. */
static int reset_state(void *ud)
{
    struct runtime *rt = ud;
    graph_shards_clear(&rt->g);
    graph_clear_offsets(&rt->g);
    return 0;
}

/* chkpt_host.may_take: checkpoints run while the job runs, not while it
 * reloads (the reload takes its own savepoint) or stops (the final one). */
static int may_take(void *ud)
{
    const struct runtime *rt = ud;
    return rt->state == RUN_RUNNING && rt->stage != 1;     /* stage 1 keeps no state */
}

/* ---- source host -------------------------------------------------------------- */

/* Stage 2 of a repartitioning: a record of partition part of a repartition
 * topic, with its header m (connectors/rp_header.h).  The shard follows one
 * virtual watermark partition per input partition, made when the first
 * record tells how many there are (the assignment's placeholder, which held
 * the watermark until then, goes): a marker advances its input's one, a
 * record is applied to it and then advances it to the input's greatest
 * event time.  A data record at or below the input offset already applied
 * is one stage 1 produced again after a crash, and is dropped.  Returns 0,
 * SOURCE_PART_ENDED (bounded: every input partition has sent its end
 * marker), or -ENOMEM. */
static int rp_apply(struct runtime *rt, struct shard *sh, int source, int32_t part,
                    int64_t off, const char *data, size_t len, int64_t ts,
                    const struct rp_meta *m)
{
    struct engine *e = sh->eng;
    if (part >= RP_MAX_PARTITIONS ||
        (m->max_ts != INT64_MIN && (m->max_ts < EVTIME_MIN_MS || m->max_ts > EVTIME_MAX_MS))) {
        rt->g.rp_bad++;
        log_rate_msg(&rt->invalid_rate, LOG_WARNING, rt->g.src[source].name, "partition %"
                     PRId32 " offset %" PRId64 ": repartition header out of range: skipped",
                     part, off);
        return 0;
    }
    struct shard_rp *st = shard_rp_get(sh, source);
    if (st == NULL)
        return -ENOMEM;
    if (m->nsrc > st->nsrc) {
        unsigned char *ended = realloc(st->ended, (size_t)m->nsrc);
        if (ended == NULL)
            return -ENOMEM;
        memset(ended + st->nsrc, 0, (size_t)(m->nsrc - st->nsrc));
        st->ended = ended;
        if (st->nsrc > 0)
            log_msg(LOG_WARNING, rt->g.src[source].name, "partition %" PRId32 ": the input "
                    "now has %" PRId32 " partitions, not %" PRId32 ": results across the change "
                    "are not exact", part, m->nsrc, st->nsrc);
        for (int32_t i = st->nsrc; i < m->nsrc; i++) {
            if (engine_partition_add(e, source, rp_vid(part, i)) < 0)
                return -ENOMEM;
            /* restored: its end marker came before the snapshot */
            int64_t hw = offsets_next(&rt->g.offs[source], rp_vid(part, i));
            if (hw >= 0 && (hw & RP_HWM_ENDED)) {
                st->ended[i] = 1;
                st->nended++;
                engine_partition_end(e, source, rp_vid(part, i));
            }
        }
        if (st->nsrc == 0)
            engine_partition_remove(e, source, part);  /* the assignment's placeholder */
        st->nsrc = m->nsrc;
    }
    int32_t vid = rp_vid(part, m->src);
    struct engine_offset *hw = offsets_slot(&rt->g.offs[source], vid);
    if (hw == NULL)
        return -ENOMEM;
    int64_t applied = hw->next >= 0 ? hw->next & ~RP_HWM_ENDED : -1;
    if (m->kind == RP_DATA) {
        if (applied >= 0 && m->off < applied) {
            rt->g.rp_dups++;
            return 0;
        }
        int rc = engine_feed(e, source, vid, off, data, len, ts);
        if (rc < 0)
            return rc;
        hw->next = (m->off + 1) | (hw->next >= 0 ? hw->next & RP_HWM_ENDED : 0);
    }
    engine_partition_observe(e, source, vid, m->max_ts);
    if (m->kind == RP_END) {
        hw->next = (m->off > applied ? m->off : applied) | RP_HWM_ENDED;
        if (!st->ended[m->src]) {
            st->ended[m->src] = 1;
            st->nended++;
            engine_partition_end(e, source, vid);
        }
    }
    return rt->bounded && st->nended == st->nsrc ? SOURCE_PART_ENDED : 0;
}

static void h_prefetch(void *ud, int source, int32_t part, const struct engine_in *in,
                       size_t n)
{
    struct runtime *rt = ud;
    struct shard *sh = graph_shard(&rt->g, part);
    if (sh != NULL && sh->eng != NULL)
        engine_prefetch(sh->eng, source, in, n);
}

static int h_record(void *ud, int source, int32_t part, int64_t off, int64_t next,
                    const char *data, size_t len, int64_t ts, const struct rp_meta *rpm)
{
    struct runtime *rt = ud;
    if (rt->state == RUN_RELOAD_SAVEPOINT || rt->state == RUN_SWAPPING_GRAPH) {
        rt->dropped++;              /* after the reload's savepoint: not ours to apply */
        return 0;
    }
    if (rt->state != RUN_RUNNING && rt->state != RUN_RELOAD_WAIT)
        return 0;                   /* stopping: nothing more goes in */
    if (rt->first_ns == 0)
        rt->first_ns = uv_hrtime();
    struct shard *sh = graph_shard(&rt->g, part);
    if (sh == NULL) {
        /* a partition of a second source whose shard went with the first's
         * revocation: it starts without state */
        log_rate_msg(&rt->invalid_rate, LOG_WARNING, "run", "partition %" PRId32 " has no "
                     "shard: starting one without state", part);
        if (graph_shard_new(&rt->g, part, &sh) < 0 ||
            engine_partition_add(sh->eng, source, part) < 0) {
            rt_fail(rt, "out of memory");
            return -ENOMEM;
        }
    }
    if (sh->assigned_ns != 0) {
        LOG(LOG_INFO, "run", "partition %" PRId32 ": first record at offset %" PRId64 ", %"
            PRIu64 " ms after its assignment", part, off, (uv_hrtime() - sh->assigned_ns) / 1000000);
        sh->assigned_ns = 0;
    }
    sh->changes++;
    rt->cur_part = part;
    /* what this record fires was caused by it: its arrival is the start
     * of those writes' freshness (struct sink_host) */
    rt->khost.cause_ns = uv_hrtime();
    if (ts > 0) {                   /* Kafka's timestamp: how long it took to get here */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - ts * 1000000;
        histo_observe(&rt->g.src[source].delay, ns > 0 ? (uint64_t)ns : 0);
    }
    int rc = rpm != NULL ? rp_apply(rt, sh, source, part, off, data, len, ts, rpm)
                         : engine_feed(sh->eng, source, part, off, data, len, ts);
    rt->khost.cause_ns = 0;
    if (rc < 0) {
        rt_fail(rt, "out of memory for state");
        return -ENOMEM;
    }
    /* applied: a checkpoint from now on resumes after it */
    struct engine_offset *p = offsets_slot(&rt->g.offs[source], part);
    if (p == NULL) {
        rt_fail(rt, "out of memory");
        return -ENOMEM;
    }
    p->next = next;
    return rc;
}

/* Whether this run starts a source: --stage 1 starts the repartitioning
 * stages only, --stage 2 everything else; an input every operator reads
 * through a repartition topic is read by its stage 1 only. */
static int runs_source(const struct runtime *rt, const struct job_source *js)
{
    if (js->role == SRC_STAGE1)
        return rt->stage != 2;
    return rt->stage != 1 && !(js->role == SRC_INPUT && js->unread);
}

/* Whether the engine reads a source's records in this run. */
static int engine_reads(const struct runtime *rt, const struct job_source *js)
{
    return js->role != SRC_STAGE1 && runs_source(rt, js);
}

/* READY=1 once the state is restored and every source has partitions. */
static void maybe_ready(struct runtime *rt)
{
    if (rt->ready || rt->state != RUN_RUNNING)
        return;
    for (size_t i = 0; i < rt->g.job->nsources; i++)
        if (!rt->g.assigned[i] && engine_reads(rt, &rt->g.job->sources[i]))
            return;
    rt->ready = 1;
    service_ready();
    service_status("running");
    LOG(LOG_INFO, "run", "ready: state restored, partitions assigned");
}

static int64_t h_event_time(void *ud, int source, const char *data, size_t len)
{
    struct runtime *rt = ud;
    struct shard *sh = graph_shard(&rt->g, 0);     /* files: one partition */
    return sh != NULL ? engine_peek_time(sh->eng, source, data, len, 0) : INT64_MIN;
}

/* Bounded: a repartition partition restored with the end marker of every
 * input partition it has heard of already applied (its last owner stopped
 * after it ended): it has nothing more to read. */
static int rp_all_ended(const struct runtime *rt, int source, int32_t part)
{
    const struct offsets *o = &rt->g.offs[source];
    size_t n = 0, ended = 0;
    if (!rt->bounded || rt->g.job->sources[source].role != SRC_REPARTITION)
        return 0;
    for (size_t i = 0; i < o->n; i++) {
        int32_t id = o->v[i].partition;
        if (!rp_is_vid(id) || rp_vid_part(id) != part)
            continue;
        n++;
        ended += o->v[i].next >= 0 && (o->v[i].next & RP_HWM_ENDED);
    }
    return n > 0 && ended == n;
}

static int h_assigned(void *ud, int source, int32_t part, const struct source_committed *c,
                      int64_t *resume)
{
    struct runtime *rt = ud;
    uint64_t t0 = uv_hrtime();
    int rc = chkpt_assign(rt->ck, source, part, c, resume);
    struct shard *sh = graph_shard(&rt->g, part);
    if (rc < 0 || sh == NULL) {
        rt_fail(rt, rc == -EPERM ? "the job refuses a partition's state" : "out of memory");
        return rc < 0 ? rc : -ENOMEM;
    }
    sh->assigned_ns = t0;
    sh->owned = 1;
    /* a bounded file's records are all there: it is never idle, whatever
     * the merge of several files makes it wait for */
    if (rt->bounded && (rt->g.job->sources[source].type->flags & CONN_COMPLETE))
        engine_source_never_idle(sh->eng, source);
    if (engine_partition_add(sh->eng, source, part) < 0) {
        rt_fail(rt, "out of memory");
        return -ENOMEM;
    }
    rt->g.assigned[source] = 1;
    maybe_ready(rt);
    return rp_all_ended(rt, source, part) ? SOURCE_PART_ENDED : 0;
}

static void h_revoked(void *ud, int source, int32_t part, int lost)
{
    struct runtime *rt = ud;
    chkpt_revoke(rt->ck, source, part, lost);
}

static void h_committed(void *ud, int source, int32_t part, int64_t next, int err)
{
    struct runtime *rt = ud;
    chkpt_committed(rt->ck, source, part, next, err);
}

/* Bounded: a partition has no more records.  Once every partition of its
 * shard has ended, the shard's windows all fire (its watermark goes to the
 * end of time), as they would at the end of a single run: what a shard
 * emits does not depend on when other shards end. */
static void h_ended(void *ud, int source, int32_t part)
{
    struct runtime *rt = ud;
    struct shard *sh = graph_shard(&rt->g, part);
    if (!run_state_live(rt->state) || sh == NULL)
        return;
    engine_partition_end(sh->eng, source, part);
    if (rt->nengine == 1 && sh->nparts == 1 && !sh->ended) {
        sh->ended = 1;
        sh->changes++;
        engine_finish(sh->eng);
    }
}

/* Every source has read all its input (--bounded): fire every window and
 * stop.  Not during a reload: the new graph reads to the end again from
 * the savepoint, or, if the reload is abandoned, reload_abort() calls
 * this again. */
static void input_finished(struct runtime *rt)
{
    if (rt->finished < rt->nrun || rt->state != RUN_RUNNING)
        return;
    LOG(LOG_INFO, "run", "all input read; firing every open window");
    for (size_t i = 0; i < rt->g.nshards; i++) {
        struct shard *sh = rt->g.shards[i];
        /* a local snapshot of a partition the group gave to another
         * instance: that one fires its windows, from the newer state */
        if (!sh->owned && !sh->pinned)
            continue;
        if (!sh->ended) {
            sh->ended = 1;
            sh->changes++;
            engine_finish(sh->eng);
        }
    }
    begin_drain(rt);
}

static void h_finished(void *ud, int source)
{
    struct runtime *rt = ud;
    (void)source;
    rt->finished++;
    input_finished(rt);
}

static void h_unfinished(void *ud, int source)
{
    struct runtime *rt = ud;
    (void)source;
    if (rt->finished > 0)
        rt->finished--;
}

/* A source cannot go on.  While the run stops (the sinks drain, the final
 * checkpoint is taken and its positions committed, while the group
 * rebalances as other instances leave), a partition the group hands over
 * then and cannot be set up is left to its next owner: the final
 * checkpoint holds only the shards this instance had. */
static void h_failed(void *ud, int source)
{
    struct runtime *rt = ud;
    if (rt->state == RUN_DRAINING || rt->state == RUN_FINAL_CHECKPOINT) {
        log_msg(LOG_WARNING, "run", "%s failed while the run stops: what it was given now is "
                "left to the group's next owner", rt->g.src[source].name);
        return;
    }
    char why[200];
    snprintf(why, sizeof(why), "%s failed", rt->g.src[source].name);
    rt_fail(rt, why);
}

/* ---- sink host: backpressure --------------------------------------------------- */

static void set_paused(struct runtime *rt, int pause)
{
    if (rt->paused == pause)
        return;
    rt->paused = pause;
    for (size_t i = 0; i < rt->g.job->nsources; i++)
        if (rt->g.src[i].impl != NULL)
            (pause ? rt->g.src[i].ops->pause : rt->g.src[i].ops->resume)(&rt->g.src[i]);
}

static void h_congested(void *ud, struct sink *s)
{
    struct runtime *rt = ud;
    (void)s;
    if (rt->congested++ == 0 && rt->state == RUN_RUNNING) {
        LOG(LOG_INFO, "run", "pausing sources: a sink is congested");
        set_paused(rt, 1);
    }
}

static void h_drained(void *ud, struct sink *s)
{
    struct runtime *rt = ud;
    (void)s;
    if (rt->congested > 0 && --rt->congested == 0 && rt->state == RUN_RUNNING) {
        LOG(LOG_INFO, "run", "resuming sources: sinks have drained");
        set_paused(rt, 0);
    }
}

/* ---- stopping --------------------------------------------------------------------- */

static void swap_graph(struct runtime *rt);

/* Everything but the graph: the loop ends when these have closed. */
static void close_rest(struct runtime *rt)
{
    uv_close((uv_handle_t *)&rt->tick, NULL);
    uv_close((uv_handle_t *)&rt->sigterm, NULL);
    uv_close((uv_handle_t *)&rt->sigint, NULL);
    uv_close((uv_handle_t *)&rt->sighup, NULL);
    uv_close((uv_handle_t *)&rt->sigusr1, NULL);
    chkpt_close(rt->ck);            /* a POST /savepoint still waiting gets 500 */
    if (rt->http != NULL) {
        http_stop(rt->http);
        rt->http = NULL;
    }
    service_close(&rt->svc);
    if (rt->broker != NULL) {
        broker_stop(rt->broker);
        rt->broker = NULL;
    }
    run_set_state(rt, RUN_STOPPED);
}

static void on_closed_one(struct runtime *rt)
{
    if (--rt->open > 0)
        return;
    if (rt->state == RUN_CLOSING)
        close_rest(rt);
    else if (rt->state == RUN_SWAPPING_GRAPH)
        swap_graph(rt);
}

static void source_closed(struct source *s)
{
    on_closed_one((struct runtime *)s->host->ud);
}

static void sink_closed(struct sink *s)
{
    on_closed_one((struct runtime *)s->host->ud);
}

/* Closes every source and sink; on_closed_one() goes on when all have. */
static void close_graph(struct runtime *rt)
{
    struct graph *g = &rt->g;
    rt->open++;                     /* held until every close has been started */
    for (size_t i = 0; g->src != NULL && i < g->job->nsources; i++)
        if (g->src[i].ops != NULL && g->src[i].impl != NULL) {
            rt->open++;
            g->src[i].ops->close(&g->src[i], source_closed);
        }
    for (size_t i = 0; g->snk != NULL && i < g->job->nsinks; i++)
        if (g->snk[i].ops != NULL && g->snk[i].impl != NULL) {
            rt->open++;
            g->snk[i].ops->close(&g->snk[i], sink_closed);
        }
    on_closed_one(rt);
}

static void begin_close(struct runtime *rt)
{
    if (rt->state == RUN_CLOSING || rt->state == RUN_STOPPED)
        return;
    int graph_closing = rt->state == RUN_SWAPPING_GRAPH;
    run_set_state(rt, RUN_CLOSING);
    service_stopping();
    size_t left = graph_pending(&rt->g);
    if (left > 0)
        log_msg(LOG_WARNING, "run", "closing with %zu writes not acknowledged", left);
    if (!graph_closing)             /* else a reload is closing it: on_closed_one goes on */
        close_graph(rt);
}

static void begin_drain(struct runtime *rt)
{
    if (rt->state != RUN_RUNNING)
        return;
    run_set_state(rt, RUN_DRAINING);
    service_stopping();
    rt->last_ns = uv_hrtime();
    set_paused(rt, 1);              /* open, for the final checkpoint's offset commit */
    rt->stop_at = uv_now(&rt->loop) + STOP_DEADLINE_MS;
    LOG(LOG_INFO, "run", "flushing %zu pending writes", graph_pending(&rt->g));
}

/* The final checkpoint's positions, committed before the sources close
 * (their commits went out asynchronously; "rebalance in progress" as other
 * instances leave is retried here).  Returns 0, or -EIO when a position of
 * a partition we still own could not be committed (logged by the source);
 * a partition another member owns now is theirs (-ESTALE: not a failure). */
static SL_MUST_USE int flush_commits(struct runtime *rt)
{
    int rc = 0;
    int ms = FLUSH_COMMITS_MS;
    if (rt->signalled) {            /* within the stop deadline */
        uint64_t now = uv_now(&rt->loop);
        ms = rt->stop_at > now ? (int)(rt->stop_at - now) : 0;
        if (ms > FLUSH_COMMITS_MS)
            ms = FLUSH_COMMITS_MS;
    }
    for (size_t i = 0; i < rt->g.job->nsources; i++) {
        struct source *s = &rt->g.src[i];
        if (s->impl != NULL && s->ops->flush_commits(s, ms) == -EIO)
            rc = -EIO;
    }
    return rc;
}

/* chkpt_take's callback for the final checkpoint. */
static void final_done(void *ud, enum ckpt_kind kind, uint64_t id, const char *path, int rc)
{
    struct runtime *rt = ud;
    (void)kind;
    (void)id;
    (void)path;
    if (rt->state != RUN_FINAL_CHECKPOINT)
        return;                     /* stopped by a close already under way */
    if (rc < 0)
        rt_fail(rt, "the final checkpoint failed");
    else if (flush_commits(rt) < 0)
        rt_fail(rt, "the final positions could not be committed to the group");
    else
        begin_close(rt);
}

/* Draining: sinks flushed, then the final checkpoint, then close. */
static void drain_step(struct runtime *rt)
{
    chkpt_poll(rt->ck);             /* may end the final checkpoint: CLOSING */
    if (rt->state == RUN_DRAINING && graph_pending(&rt->g) == 0 && !chkpt_busy(rt->ck)) {
        run_set_state(rt, RUN_FINAL_CHECKPOINT);
        if (rt->stage == 1) {       /* no state: only stage 1's commits */
            final_done(rt, CKPT_CHECKPOINT, 0, NULL, 0);
            return;
        }
        int rc = chkpt_take(rt->ck, CKPT_CHECKPOINT, final_done, rt);
        if (rc < 0)
            final_done(rt, CKPT_CHECKPOINT, 0, NULL, rc);
        return;
    }
    if (rt->state != RUN_DRAINING && rt->state != RUN_FINAL_CHECKPOINT)
        return;
    if (rt->signalled && uv_now(&rt->loop) >= rt->stop_at) {
        char why[160];
        snprintf(why, sizeof(why), "stop deadline passed with %zu writes not acknowledged%s",
                 graph_pending(&rt->g),
                 chkpt_busy(rt->ck) ? " and the final checkpoint unfinished" : "");
        rt_fail(rt, why);
    }
}

/* ---- reload (SIGHUP) ------------------------------------------------------------------ */

/* The reload is given up: the old graph goes on (RUNNING again). */
static void reload_abort(struct runtime *rt, const char *why)
{
    log_msg(LOG_ERR, "reload", "abandoned: %s", why);
    job_free(rt->next_job);
    rt->next_job = NULL;
    run_set_state(rt, RUN_RUNNING);
    if (rt->dropped > 0) {
        /* the old sources have read past records that were not applied */
        rt_fail(rt, "records arrived while the reload's savepoint was taken; restart "
                "to continue from the last checkpoint");
        return;
    }
    set_paused(rt, rt->congested > 0);
    service_ready();
    input_finished(rt);             /* the input may have ended meanwhile */
}

/* chkpt_take's callback for the reload's savepoint. */
static void reload_savepoint_done(void *ud, enum ckpt_kind kind, uint64_t id, const char *path,
                                  int rc)
{
    struct runtime *rt = ud;
    (void)kind;
    (void)id;
    (void)rc;                       /* path is NULL unless rc is 0 */
    if (rt->state != RUN_RELOAD_SAVEPOINT)
        return;                     /* abandoned meanwhile */
    if (path == NULL) {
        reload_abort(rt, "its savepoint failed; the running job goes on");
        return;
    }
    snprintf(rt->reload_path, sizeof(rt->reload_path), "%s", path);
    run_set_state(rt, RUN_SWAPPING_GRAPH);
    LOG(LOG_INFO, "reload", "savepoint taken; closing the old graph");
    close_graph(rt);
}

/* RELOAD_WAIT: once no checkpoint runs, the reload's savepoint. */
static void reload_step(struct runtime *rt)
{
    if (rt->state != RUN_RELOAD_WAIT || chkpt_busy(rt->ck))
        return;
    run_set_state(rt, RUN_RELOAD_SAVEPOINT);
    int rc = chkpt_take(rt->ck, CKPT_SAVEPOINT, reload_savepoint_done, rt);
    if (rc < 0)
        reload_savepoint_done(rt, CKPT_SAVEPOINT, 0, NULL, rc);
}

static SL_MUST_USE enum exit_code start(struct runtime *rt);

/* The old graph has closed: start the new one from the savepoint. */
static void swap_graph(struct runtime *rt)
{
    run_set_state(rt, RUN_STARTING);
    if (counters_carry(rt->counters, rt->next_job) < 0) {
        rt_fail(rt, "out of memory");
        return;
    }
    chkpt_stop(rt->ck);
    graph_free(&rt->g);
    job_free(rt->g.job);
    struct job *job = rt->next_job;
    rt->next_job = NULL;
    rt->finished = rt->congested = 0;
    rt->paused = rt->ready = 0;
    rt->from_savepoint = rt->reload_path;
    if (graph_alloc(&rt->g, job) < 0) {
        rt_fail(rt, "out of memory");
        return;
    }
    log_msg(LOG_NOTICE, "reload", "starting the new graph of job %s from %s", job->name,
            rt->reload_path);
    enum exit_code rc = start(rt);
    if (rc != EXIT_OK) {
        rt->exit_code = rc;
        log_msg(LOG_ERR, "reload", "the new graph did not start; stopping (a restart "
                "continues from %s or a newer checkpoint)", rt->reload_path);
        begin_close(rt);
        return;
    }
    if (rt->signalled)              /* SIGTERM or SIGINT while the old graph closed */
        begin_drain(rt);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    (void)signum;
    if (rt->state != RUN_RUNNING) {
        log_msg(LOG_WARNING, "reload", "SIGHUP ignored: %s", run_state_reloading(rt->state) ?
                "a reload is in progress" : "the job is stopping");
        return;
    }
    service_reloading();
    log_msg(LOG_NOTICE, "reload", "SIGHUP: re-reading %s", rt->file);
    struct job *nj;
    if (reload_read(rt->file, rt->g.job, rt->allow_non_restored, &nj) < 0) {
        service_ready();            /* logged: the running job goes on unchanged */
        return;
    }
    rt->next_job = nj;
    rt->dropped = 0;                /* an earlier reload's: its new graph read them again */
    run_set_state(rt, RUN_RELOAD_WAIT);
    set_paused(rt, 1);
    LOG(LOG_INFO, "reload", "%s is valid: taking a savepoint", rt->file);
    reload_step(rt);
}

/* ---- the tick and signals --------------------------------------------------------------- */

/* STATUS= for systemctl status: throughput and the last checkpoint. */
static void status_step(struct runtime *rt)
{
    uint64_t now = uv_now(&rt->loop);
    if (now - rt->status_at < STATUS_EVERY_MS || !rt->ready)
        return;
    uint64_t in;
    if (counters_records_in(rt->counters, &in) < 0) {
        log_msg(LOG_WARNING, "run", "out of memory: no STATUS= line this time");
        return;
    }
    uint64_t since = rt->status_at;
    rt->status_at = now;
    if (since == 0 || in < rt->status_in) {     /* the first, or after a reload */
        rt->status_in = in;
        return;
    }
    double rate = (double)(in - rt->status_in) * 1000.0 / (double)(now - since);
    rt->status_in = in;
    struct engine_stats st;
    graph_stats(&rt->g, &st);
    const struct chkpt_stats *ck = chkpt_stats(rt->ck);
    if (ck->last_at_ms == 0) {
        service_status("%.0f records/s, %" PRIu64 " keys; no checkpoint yet", rate,
                       st.state_keys);
        return;
    }
    char when[64];
    evtime_format(ck->last_at_ms, when);
    service_status("%.0f records/s, %" PRIu64 " keys; checkpoint %" PRIu64 " at %s "
                   "(%.1f MB in %" PRIu64 " ms)", rate, st.state_keys, ck->last_id, when,
                   (double)ck->last_bytes / 1e6, ck->last_ms);
}

static void on_tick(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    if (rt->state == RUN_RUNNING || run_state_reloading(rt->state)) {
        for (size_t i = 0; rt->state == RUN_RUNNING && i < rt->g.nshards; i++)
            engine_tick(rt->g.shards[i]->eng); /* nothing fires while a reload is under way */
        chkpt_poll(rt->ck);
        reload_step(rt);
        status_step(rt);
    } else if (rt->state == RUN_DRAINING || rt->state == RUN_FINAL_CHECKPOINT) {
        drain_step(rt);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    if (!run_state_live(rt->state)) {
        if (rt->signalled++ > 0)
            rt_fail(rt, "second signal");
        return;
    }
    const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    if (rt->state == RUN_SWAPPING_GRAPH) {
        /* the old graph is closing; the new one stops as soon as it starts */
        LOG(LOG_NOTICE, "run", "%s: stopping after the reload", name);
        rt->signalled = 1;
        return;
    }
    if (run_state_reloading(rt->state))
        reload_abort(rt, "stopping");
    rt->signalled = 1;
    LOG(LOG_NOTICE, "run", "%s: stopping (open windows are kept, not fired)", name);
    begin_drain(rt);
}

static void on_sigusr1(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    (void)signum;
    if (run_state_reloading(rt->state)) {
        log_msg(LOG_NOTICE, "checkpoint", "SIGUSR1 during a reload: the reload's savepoint "
                "is the savepoint");
        return;
    }
    if (rt->state != RUN_RUNNING) {
        log_msg(LOG_NOTICE, "checkpoint", "SIGUSR1 while stopping: the final checkpoint "
                "is the restore point");
        return;
    }
    LOG(LOG_NOTICE, "checkpoint", "SIGUSR1: taking a savepoint");
    int rc = chkpt_take(rt->ck, CKPT_SAVEPOINT, NULL, NULL);
    if (rc < 0)
        log_msg(LOG_ERR, "checkpoint", "SIGUSR1: no savepoint: %s", strerror(-rc));
}

/* ---- start ---------------------------------------------------------------------------- */

static void log_graph(const struct job *job, int bounded)
{
    LOG(LOG_INFO, "run", "job %s: %zu source%s, %zu operator%s, %zu sink%s%s", job->name,
        job->nsources, job->nsources == 1 ? "" : "s", job->noperators,
        job->noperators == 1 ? "" : "s", job->nsinks, job->nsinks == 1 ? "" : "s",
        bounded ? " (bounded)" : "");
    for (size_t o = 0; o < job->noperators; o++) {
        const struct job_operator *op = &job->operators[o];
        char to[512];
        size_t n = 0;
        to[0] = '\0';
        for (size_t k = 0; k < op->nsinks && n < sizeof(to); k++)
            n += (size_t)snprintf(to + n, sizeof(to) - n, "%s%s", k ? ", " : "",
                                  job->sinks[op->sinks[k]].name);
        struct op_input in[OP_INPUTS_MAX];
        char from[512];
        size_t nf = 0, nin = op_inputs(op, in);
        for (size_t k = 0; k < nin && nf < sizeof(from); k++)
            nf += (size_t)snprintf(from + nf, sizeof(from) - nf, "%s%s", k ? " + " : "",
                                   job->sources[in[k].source].name);
        LOG(LOG_INFO, "run", "operator %s: %s -> %s -> %s", op->name, from, op->type->label,
            to);
    }
}


/* STARTING: builds the graph in rt->g, restores its state, and starts it
 * (RUNNING from the moment its sources start).  Returns EXIT_OK, or the
 * exit status of the failure (logged): EXIT_CONFIG when the state cannot
 * be used as asked, else EXIT_RUNTIME. */
static SL_MUST_USE enum exit_code start(struct runtime *rt)
{
    const struct job *job = rt->g.job;
    char err[512];

    log_graph(job, rt->bounded);
    size_t nstage1 = 0;
    for (size_t i = 0; i < job->nsources; i++)
        nstage1 += job->sources[i].role == SRC_STAGE1;
    if (rt->stage != 0 && nstage1 == 0) {
        log_msg(LOG_ERR, "run", "--stage %d: the job repartitions nothing (no source has a "
                "partitioned_by that an operator's key_by does not hold)", rt->stage);
        return EXIT_CONFIG;
    }

    struct chkpt_host ch = { rt, &rt->g, reset_state, may_take };
    rt->g.out = (struct engine_output){ rt, on_result, on_late, on_invalid, on_new_key };
    if (chkpt_setup(rt->ck, &ch) < 0)
        return EXIT_RUNTIME;
    int rc = rt->stage == 1 ? 0 : chkpt_restore(rt->ck, rt->from_savepoint,
                                                rt->allow_non_restored);
    if (rc < 0)
        return rc == -ENOMEM ? EXIT_RUNTIME : EXIT_CONFIG;
    const char *topics[64];
    int embedded;
    size_t nt = kafka_embedded_topics(job, topics, 64, &embedded);
    if (embedded && rt->broker == NULL) {   /* a reload keeps it, and its data */
        if (broker_start(&rt->loop, 0, 4, topics, nt, &rt->broker, err, sizeof(err)) < 0) {
            log_msg(LOG_ERR, "broker", "%s", err);
            return EXIT_RUNTIME;
        }
        kafka_set_embedded_bootstrap(broker_bootstrap(rt->broker));
        LOG(LOG_NOTICE, "broker", "embedded development broker at %s (in memory, about "
            "5 MB per partition)", broker_bootstrap(rt->broker));
    }
    rt->khost = (struct sink_host){ .ud = rt, .loop = &rt->loop, .congested = h_congested,
                                    .drained = h_drained };
    for (size_t i = 0; i < job->nsinks; i++) {
        struct sink *s = &rt->g.snk[i];
        s->ops = sink_ops_for(&job->sinks[i]);
        s->job = job;
        s->js = &job->sinks[i];
        s->index = (int)i;
        s->host = &rt->khost;
        snprintf(s->name, sizeof(s->name), "%s %s", s->ops->type, s->js->name);
        if (s->ops->open(s) < 0)
            return EXIT_RUNTIME;
    }
    run_set_state(rt, RUN_RUNNING);
    rt->shost = (struct source_host){ .ud = rt, .loop = &rt->loop, .bounded = rt->bounded,
                                      .record = h_record, .prefetch = h_prefetch,
                                      .invalid = h_invalid, .assigned = h_assigned,
                                      .revoked = h_revoked, .committed = h_committed,
                                      .ended = h_ended, .finished = h_finished,
                                      .unfinished = h_unfinished,
                                      .failed = h_failed, .event_time = h_event_time };
    rt->nrun = rt->nengine = 0;
    for (size_t i = 0; i < job->nsources; i++) {
        struct source *s = &rt->g.src[i];
        s->ops = source_ops_for(&job->sources[i]);
        s->job = job;
        s->js = &job->sources[i];
        s->index = (int)i;
        s->host = &rt->shost;
        snprintf(s->name, sizeof(s->name), "%s %s", s->ops->type, s->js->name);
        if (!runs_source(rt, s->js))
            continue;
        rt->nrun++;
        rt->nengine += engine_reads(rt, s->js);
        if (s->ops->start(s) < 0)
            return EXIT_RUNTIME;
    }
    maybe_ready(rt);                /* --stage 1: nothing is assigned to the engine */
    return EXIT_OK;
}

static int parse_args(struct runtime *rt, int argc, char **argv, const char **file)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(cli_run.usage, stdout);
            return 1;
        } else if (strcmp(a, "--bounded") == 0) {
            rt->bounded = 1;
        } else if (strcmp(a, "--allow-non-restored-state") == 0) {
            rt->allow_non_restored = 1;
        } else if (strcmp(a, "--stage") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "1") != 0 && strcmp(v, "2") != 0) {
                fprintf(stderr, "sluice run: --stage: expected 1 or 2, got '%s'\n", v);
                return -EINVAL;
            }
            rt->stage = v[0] - '0';
        } else if (strcmp(a, "--from-savepoint") == 0 && i + 1 < argc) {
            rt->from_savepoint = argv[++i];
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            *file = argv[++i];
        } else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) {
            static const char *const names[] = { "err", "warning", "notice", "info", "debug" };
            const char *v = argv[++i];
            int found = 0;
            for (int k = 0; k < 5; k++)
                if (strcmp(v, names[k]) == 0) {
                    log_set_level((enum log_level)(LOG_ERR + k));
                    found = 1;
                }
            if (!found) {
                fprintf(stderr, "sluice run: --log-level: expected err, warning, notice, info "
                        "or debug, got '%s'\n", v);
                return -EINVAL;
            }
        } else {
            fprintf(stderr, "sluice run: unexpected argument '%s'\n%s", a, cli_run.usage);
            return -EINVAL;
        }
    }
    if (*file == NULL) {
        fprintf(stderr, "sluice run: -c FILE is required\n%s", cli_run.usage);
        return -EINVAL;
    }
    return 0;
}


static void summary(struct runtime *rt)
{
    struct totals t;
    if (rt->g.job == NULL || rt->g.offs == NULL)
        return;
    if (totals_new(rt->g.job, &t) < 0) {
        log_msg(LOG_WARNING, "run", "out of memory: no summary");
        return;
    }
    counters_read(rt->counters, &t);
    uint64_t in = 0, invalid = 0, late = 0, fired = 0, lost = 0;
    for (size_t i = 0; i < rt->g.job->nsources; i++) {
        in += t.in[i];
        invalid += totals_invalid(&t, i);
    }
    for (size_t i = 0; i < rt->g.job->noperators; i++) {
        late += t.late[i];
        fired += t.fired[i];
        lost += t.lost[i];
    }
    double secs = rt->first_ns && rt->last_ns > rt->first_ns
                  ? (double)(rt->last_ns - rt->first_ns) / 1e9 : 0;
    const struct chkpt_stats *ck = chkpt_stats(rt->ck);
    LOG(LOG_NOTICE, "run", "records in %" PRIu64 ", invalid %" PRIu64 ", late %" PRIu64
        ", windows fired %" PRIu64 ", results lost %" PRIu64 "; input read in %.3f s from "
        "its first record (%.0f records/s); checkpoints %" PRIu64 " complete, %" PRIu64
        " failed, longest loop stall %" PRIu64 " us", in, invalid, late, fired, lost, secs,
        secs > 0 ? (double)in / secs : 0, ck->ok, ck->failed, ck->max_stall_us);
    if (rt->g.rp_dups > 0 || rt->g.rp_bad > 0)
        LOG(LOG_NOTICE, "run", "repartition topics: %" PRIu64 " records dropped as produced "
            "twice by stage 1, %" PRIu64 " skipped for a bad header", rt->g.rp_dups,
            rt->g.rp_bad);
    for (size_t i = 0; rt->g.snk != NULL && i < rt->g.job->nsinks; i++) {
        char notes[128] = "";           /* only Redis sinks keep out or replace writes */
        int at = 0;
        if (t.stale[i] > 0)
            at = snprintf(notes, sizeof(notes), "%" PRIu64 " kept out by a newer result",
                          t.stale[i]);
        if (t.coalesced[i] > 0)
            snprintf(notes + at, sizeof(notes) - (size_t)at, "%s%" PRIu64 " more replaced in "
                     "the queue by a newer write", at ? ", " : "", t.coalesced[i]);
        LOG(LOG_INFO, rt->g.snk[i].name, "%" PRIu64 " writes acknowledged%s%s%s, %" PRIu64
            " retried, %" PRIu64 " failed attempts", t.written[i], notes[0] ? " (" : "", notes,
            notes[0] ? ")" : "", t.retried[i],
            t.failed[i]);
    }
    totals_free(&t);
}

/* The parts that live as long as the run: checkpoints, the first graph's
 * arrays, counters, the HTTP endpoint's state.  Returns 0 or -ENOMEM. */
static SL_MUST_USE int run_alloc(struct runtime *rt)
{
    if (chkpt_new(&rt->loop, &rt->ck) < 0 || graph_alloc(&rt->g, rt->g.job) < 0 ||
        counters_new(&rt->g, &rt->counters) < 0 || keycheck_new(&rt->keys) < 0)
        return -ENOMEM;
    struct observe_host oh = { rt, &rt->g, rt->counters, rt->ck, rt->keys, rt->started_ms,
                               get_state, get_backpressure };
    return observe_new(&oh, &rt->obs);
}

int cmd_run(int argc, char **argv)
{
    const char *file = NULL;
    struct runtime rt;
    memset(&rt, 0, sizeof(rt));
    rt.state = RUN_STARTING;
    int pa = parse_args(&rt, argc, argv, &file);
    if (pa != 0)
        return pa > 0 ? EXIT_OK : EXIT_CONFIG;
    if (cli_load_job(file, &rt.g.job) != EXIT_OK)
        return EXIT_CONFIG;
    rt.file = file;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rt.started_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);       /* a file-size limit is an error to report, not a crash */
    uv_loop_init(&rt.loop);
    uv_timer_init(&rt.loop, &rt.tick);
    uv_signal_init(&rt.loop, &rt.sigterm);
    uv_signal_init(&rt.loop, &rt.sigint);
    uv_signal_init(&rt.loop, &rt.sighup);
    uv_signal_init(&rt.loop, &rt.sigusr1);
    rt.tick.data = rt.sigterm.data = rt.sigint.data = rt.sighup.data = rt.sigusr1.data = &rt;
    service_start(&rt.svc, &rt.loop);
    char err[512];
    if (run_alloc(&rt) < 0) {
        log_msg(LOG_ERR, "run", "out of memory");
        rt.exit_code = EXIT_RUNTIME;
        begin_close(&rt);
    } else if (rt.g.job->http != NULL &&
               http_start(&rt.loop, rt.g.job->http, observe_request, rt.obs, &rt.http, err,
                          sizeof(err)) < 0) {
        log_msg(LOG_ERR, "http", "%s (set http: to another HOST:PORT, or none)", err);
        rt.exit_code = EXIT_RUNTIME;
        begin_close(&rt);
    } else {
        if (rt.http != NULL)
            LOG(LOG_INFO, "http", "metrics, health and status on http://%s/", rt.g.job->http);
        uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
        uv_signal_start(&rt.sigint, on_signal, SIGINT);
        uv_signal_start(&rt.sighup, on_sighup, SIGHUP);
        uv_signal_start(&rt.sigusr1, on_sigusr1, SIGUSR1);
        uv_timer_start(&rt.tick, on_tick, TICK_MS, TICK_MS);
        enum exit_code rc = start(&rt);
        if (rc != EXIT_OK) {
            rt.exit_code = rc;
            begin_close(&rt);
        }
    }
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    summary(&rt);
    if (rt.broker != NULL)
        broker_stop(rt.broker);
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    uv_loop_close(&rt.loop);
    chkpt_free(rt.ck);              /* its handles have closed */
    observe_free(rt.obs);
    counters_free(rt.counters);
    keycheck_free(rt.keys);
    sbuf_free(&rt.dl);
    graph_free(&rt.g);
    job_free(rt.next_job);
    job_free(rt.g.job);
    return rt.exit_code;
}
