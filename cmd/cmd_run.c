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
 * Lifecycle:
 *   start     state dirs; restore the newest complete checkpoint (or
 *             --from-savepoint); open sinks; start sources, which resume
 *             where the checkpoint says;
 *   running   sources feed the engine; a 100 ms tick re-reads the clock
 *             (idleness, processing-time windows) and drives checkpoints;
 *   draining  --bounded input is exhausted (engine_finish fired every
 *             window), or SIGTERM/SIGINT arrived (nothing fires early):
 *             sources are paused, sinks flushed, a final checkpoint taken;
 *             after a signal all of it within STOP_DEADLINE_MS;
 *   closing   every connector closes; the loop ends when their handles
 *             have; exit 0, or 2 after a runtime failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/diag.h"
#include "../connectors/broker.h"
#include "../engine/evtime.h"
#include "../connectors/kafka_common.h"
#include "cli.h"
#include "run.h"

#define TICK_MS 100
#define STOP_DEADLINE_MS 10000
#define STATUS_EVERY_MS 5000

const struct cli_command cli_run = {
    .name = "run",
    .summary = "run a job (foreground; systemd supervises it)",
    .usage =
        "usage: sluice run -c FILE [--bounded] [--from-savepoint PATH]\n"
        "                  [--allow-non-restored-state] [--log-level LEVEL]\n"
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
        "  --log-level LEVEL           err, warning, notice, info (default) or debug\n"
        "\n"
        "Exit codes: 0 success, 1 configuration error, 2 runtime failure.\n",
    .run = cmd_run,
};

static void begin_close(struct runtime *rt);
static void begin_drain(struct runtime *rt);
static void set_paused(struct runtime *rt, int pause);

void rt_fail(struct runtime *rt, const char *why)
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
    const struct job_operator *op = &rt->job->operators[r->op];
    for (size_t i = 0; i < op->nsinks; i++) {
        struct sink *s = &rt->snk[op->sinks[i]];
        if (s->impl != NULL && s->ops->write_result(s, op, r) < 0)
            rt_fail(rt, "a sink cannot take a window result");
    }
}

static void on_late(void *ud, int op, int sink, const struct record *rec)
{
    struct runtime *rt = ud;
    struct sink *s = &rt->snk[sink];
    (void)op;
    if (s->impl != NULL && s->ops->write_raw(s, rec->raw, rec->raw_len, NULL, 0) < 0)
        rt_fail(rt, "the late-events sink cannot take a record");
}

static void on_invalid(void *ud, int source, int dl, int32_t part, int64_t off,
                       const char *raw, size_t len, const struct reject *rej)
{
    struct runtime *rt = ud;
    struct source *src = &rt->src[source];
    char at[40] = "";
    if (rej->at >= 0)
        snprintf(at, sizeof(at), " at byte %" PRId64, rej->at);
    log_rate_msg(&rt->invalid_rate, LOG_WARNING, src->name, "partition %" PRId32 " offset %"
                 PRId64 ": %s record%s: %s", part, off, reject_kind_name(rej->kind), at,
                 rej->why);
    if (dl < 0)
        return;
    struct sink *s = &rt->snk[dl];
    rt->dl.len = 0;
    if (fmt_dead_letter(&rt->dl, src->js->name, part, off, rej, raw, len) < 0 ||
        (s->impl != NULL && s->ops->write_raw(s, rt->dl.p, rt->dl.len, NULL, 0) < 0))
        rt_fail(rt, "the dead-letter sink cannot take a record");
}

int rt_new_engine(struct runtime *rt)
{
    engine_free(rt->eng);
    rt->eng = NULL;
    struct engine_output out = { rt, on_result, on_late, on_invalid };
    int rc = engine_new(rt->job, NULL, &out, &rt->eng);
    if (rc < 0)
        log_msg(LOG_ERR, "run", "out of memory");
    return rc;
}

/* ---- source host -------------------------------------------------------------- */

static int h_record(void *ud, int source, int32_t part, int64_t off, int64_t next,
                    const char *data, size_t len, int64_t ts)
{
    struct runtime *rt = ud;
    if (rt->phase != RUNNING)
        return 0;                   /* stopping: nothing more goes in */
    if (rt->reload >= RL_SAVEPOINT) {
        rt->dropped++;              /* after the reload's savepoint: not ours to apply */
        return 0;
    }
    if (rt->first_ns == 0)
        rt->first_ns = uv_hrtime();
    if (engine_feed(rt->eng, source, part, off, data, len, ts) < 0) {
        rt_fail(rt, "out of memory for state");
        return -ENOMEM;
    }
    /* applied: a checkpoint from now on resumes after it */
    struct engine_offset *p = offsets_slot(&rt->offs[source], part);
    if (p == NULL) {
        rt_fail(rt, "out of memory");
        return -ENOMEM;
    }
    p->next = next;
    return 0;
}

static int64_t h_resume_at(void *ud, int source, int32_t part)
{
    struct runtime *rt = ud;
    const struct offsets *o = &rt->offs[source];
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].partition == part)
            return o->v[i].next;
    return -1;
}

/* READY=1 once the state is restored and every source has partitions. */
static void maybe_ready(struct runtime *rt)
{
    if (rt->ready || rt->phase != RUNNING || rt->reload != RL_NONE)
        return;
    for (size_t i = 0; i < rt->job->nsources; i++)
        if (!rt->assigned[i])
            return;
    rt->ready = 1;
    service_ready();
    service_status("running");
    LOG(LOG_INFO, "run", "ready: state restored, partitions assigned");
}

static int64_t h_event_time(void *ud, int source, const char *data, size_t len)
{
    struct runtime *rt = ud;
    return engine_peek_time(rt->eng, source, data, len, 0);
}

static void h_assigned(void *ud, int source, int32_t part)
{
    struct runtime *rt = ud;
    /* a bounded file's records are all there: it is never idle, whatever
     * the merge of several files makes it wait for */
    if (rt->bounded && rt->job->sources[source].type == SOURCE_FILE)
        engine_source_never_idle(rt->eng, source);
    if (engine_partition_add(rt->eng, source, part) < 0) {
        rt_fail(rt, "out of memory");
        return;
    }
    rt->assigned[source] = 1;
    maybe_ready(rt);
}

static void h_revoked(void *ud, int source, int32_t part)
{
    struct runtime *rt = ud;
    engine_partition_remove(rt->eng, source, part);
}

static void h_ended(void *ud, int source, int32_t part)
{
    struct runtime *rt = ud;
    if (rt->phase == RUNNING)
        engine_partition_end(rt->eng, source, part);
}

static void h_finished(void *ud, int source)
{
    struct runtime *rt = ud;
    (void)source;
    if (++rt->finished < rt->job->nsources || rt->phase != RUNNING)
        return;
    LOG(LOG_INFO, "run", "all input read; firing every open window");
    engine_finish(rt->eng);
    begin_drain(rt);
}

static void h_failed(void *ud, int source)
{
    struct runtime *rt = ud;
    char why[200];
    snprintf(why, sizeof(why), "%s failed", rt->src[source].name);
    rt_fail(rt, why);
}

/* ---- sink host: backpressure --------------------------------------------------- */

static void set_paused(struct runtime *rt, int pause)
{
    if (rt->paused == pause)
        return;
    rt->paused = pause;
    for (size_t i = 0; i < rt->job->nsources; i++)
        if (rt->src[i].impl != NULL)
            (pause ? rt->src[i].ops->pause : rt->src[i].ops->resume)(&rt->src[i]);
}

static void h_congested(void *ud, struct sink *s)
{
    struct runtime *rt = ud;
    (void)s;
    if (rt->congested++ == 0 && rt->phase == RUNNING && rt->reload == RL_NONE) {
        LOG(LOG_INFO, "run", "pausing sources: a sink is congested");
        set_paused(rt, 1);
    }
}

static void h_drained(void *ud, struct sink *s)
{
    struct runtime *rt = ud;
    (void)s;
    if (rt->congested > 0 && --rt->congested == 0 && rt->phase == RUNNING &&
        rt->reload == RL_NONE) {
        LOG(LOG_INFO, "run", "resuming sources: sinks have drained");
        set_paused(rt, 0);
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

static size_t pending(const struct runtime *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < rt->job->nsinks; i++)
        if (rt->snk[i].impl != NULL)
            n += rt->snk[i].ops->pending(&rt->snk[i]);
    return n;
}

static void swap_graph(struct runtime *rt);

/* Everything but the graph: the loop ends when these have closed. */
static void close_rest(struct runtime *rt)
{
    uv_close((uv_handle_t *)&rt->tick, NULL);
    uv_close((uv_handle_t *)&rt->sigterm, NULL);
    uv_close((uv_handle_t *)&rt->sigint, NULL);
    uv_close((uv_handle_t *)&rt->sighup, NULL);
    chkpt_close(rt);
    observe_savepoint_done(rt, NULL);
    if (rt->http != NULL) {
        http_stop(rt->http);
        rt->http = NULL;
    }
    service_close(&rt->svc);
    if (rt->broker != NULL) {
        broker_stop(rt->broker);
        rt->broker = NULL;
    }
}

static void on_closed_one(struct runtime *rt)
{
    if (--rt->open > 0)
        return;
    rt->closing_graph = 0;
    if (rt->phase == CLOSING)
        close_rest(rt);
    else if (rt->reload == RL_CLOSING)
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
    rt->closing_graph = 1;
    rt->open++;                     /* held until every close has been started */
    for (size_t i = 0; i < rt->job->nsources; i++)
        if (rt->src[i].ops != NULL && rt->src[i].impl != NULL) {
            rt->open++;
            rt->src[i].ops->close(&rt->src[i], source_closed);
        }
    for (size_t i = 0; i < rt->job->nsinks; i++)
        if (rt->snk[i].ops != NULL && rt->snk[i].impl != NULL) {
            rt->open++;
            rt->snk[i].ops->close(&rt->snk[i], sink_closed);
        }
    on_closed_one(rt);
}

static void begin_close(struct runtime *rt)
{
    if (rt->phase == CLOSING)
        return;
    rt->phase = CLOSING;
    service_stopping();
    size_t left = pending(rt);
    if (left > 0)
        log_msg(LOG_WARNING, "run", "closing with %zu writes not acknowledged", left);
    if (!rt->closing_graph)         /* else a reload is closing it: on_closed_one goes on */
        close_graph(rt);
}

static void begin_drain(struct runtime *rt)
{
    if (rt->phase != RUNNING)
        return;
    rt->phase = DRAINING;
    service_stopping();
    rt->last_ns = uv_hrtime();
    set_paused(rt, 1);              /* open, for the final checkpoint's offset commit */
    rt->stop_at = uv_now(&rt->loop) + STOP_DEADLINE_MS;
    LOG(LOG_INFO, "run", "flushing %zu pending writes", pending(rt));
}

/* Draining: sinks flushed, then the final checkpoint, then close. */
static void drain_step(struct runtime *rt)
{
    chkpt_poll(rt);
    if (rt->ck.final_wanted == 2 && !chkpt_busy(rt)) {
        if (rt->ck.failed > rt->ck.failed_before_final)
            rt_fail(rt, "the final checkpoint failed");
        else
            begin_close(rt);
        return;
    }
    if (rt->ck.final_wanted == 0 && pending(rt) == 0 && !chkpt_busy(rt)) {
        rt->ck.final_wanted = 1;
        rt->ck.failed_before_final = rt->ck.failed;
        chkpt_take(rt, CKPT_CHECKPOINT);
        rt->ck.final_wanted = 2;
        return;
    }
    if (rt->signalled && uv_now(&rt->loop) >= rt->stop_at) {
        char why[160];
        snprintf(why, sizeof(why), "stop deadline passed with %zu writes not acknowledged%s",
                 pending(rt), chkpt_busy(rt) ? " and the final checkpoint unfinished" : "");
        rt_fail(rt, why);
    }
}

/* ---- reload (SIGHUP) ------------------------------------------------------------------ */

void totals_free(struct totals *t)
{
    free(t->in);
    free(t->invalid);
    free(t->late);
    free(t->fired);
    free(t->lost);
    free(t->written);
    free(t->retried);
    free(t->failed);
    memset(t, 0, sizeof(*t));
}

int totals_new(const struct job *job, struct totals *t)
{
    size_t ns = job->nsources + 1, no = job->noperators + 1, nk = job->nsinks + 1;
    t->in = calloc(ns, sizeof(*t->in));
    t->invalid = calloc(ns, sizeof(*t->invalid));
    t->late = calloc(no, sizeof(*t->late));
    t->fired = calloc(no, sizeof(*t->fired));
    t->lost = calloc(no, sizeof(*t->lost));
    t->written = calloc(nk, sizeof(*t->written));
    t->retried = calloc(nk, sizeof(*t->retried));
    t->failed = calloc(nk, sizeof(*t->failed));
    if (!t->in || !t->invalid || !t->late || !t->fired || !t->lost || !t->written ||
        !t->retried || !t->failed) {
        totals_free(t);
        return -1;
    }
    return 0;
}

void rt_totals(const struct runtime *rt, struct totals *t)
{
    const struct job *job = rt->job;
    for (size_t i = 0; i < job->nsources; i++) {
        uint64_t in = 0, inv[REJ_NKINDS] = { 0 };
        if (rt->eng != NULL)
            engine_source_stats(rt->eng, (int)i, &in, inv);
        t->in[i] = rt->hist.in[i] + in;
        for (int k = 0; k < REJ_NKINDS; k++)
            t->invalid[i][k] = rt->hist.invalid[i][k] + inv[k];
    }
    for (size_t i = 0; i < job->noperators; i++) {
        uint64_t res = 0, late = 0, lost = 0;
        if (rt->eng != NULL)
            engine_op_stats(rt->eng, (int)i, &res, &late, &lost);
        t->fired[i] = rt->hist.fired[i] + res;
        t->late[i] = rt->hist.late[i] + late;
        t->lost[i] = rt->hist.lost[i] + lost;
    }
    for (size_t i = 0; i < job->nsinks; i++) {
        t->written[i] = rt->hist.written[i] + rt->snk[i].written;
        t->retried[i] = rt->hist.retried[i] + rt->snk[i].retried;
        t->failed[i] = rt->hist.failed[i] + rt->snk[i].failed;
    }
}

/* The run's counters so far, by name, into totals for the new job. */
static int totals_carry(const struct runtime *rt, const struct job *nj, struct totals *t)
{
    const struct job *oj = rt->job;
    struct totals cur;
    if (totals_new(oj, &cur) < 0)
        return -1;
    rt_totals(rt, &cur);
    for (size_t n = 0; n < nj->nsources; n++)
        for (size_t o = 0; o < oj->nsources; o++)
            if (strcmp(nj->sources[n].name, oj->sources[o].name) == 0) {
                t->in[n] = cur.in[o];
                memcpy(t->invalid[n], cur.invalid[o], sizeof(cur.invalid[o]));
            }
    for (size_t n = 0; n < nj->noperators; n++)
        for (size_t o = 0; o < oj->noperators; o++)
            if (strcmp(nj->operators[n].name, oj->operators[o].name) == 0) {
                t->fired[n] = cur.fired[o];
                t->late[n] = cur.late[o];
                t->lost[n] = cur.lost[o];
            }
    for (size_t n = 0; n < nj->nsinks; n++)
        for (size_t o = 0; o < oj->nsinks; o++)
            if (strcmp(nj->sinks[n].name, oj->sinks[o].name) == 0) {
                t->written[n] = cur.written[o];
                t->retried[n] = cur.retried[o];
                t->failed[n] = cur.failed[o];
            }
    totals_free(&cur);
    return 0;
}

/* Per-graph arrays, sized by rt->job. */
static int alloc_graph(struct runtime *rt)
{
    size_t ns = rt->job->nsources + 1, nk = rt->job->nsinks + 1;
    rt->src = calloc(ns, sizeof(*rt->src));
    rt->snk = calloc(nk, sizeof(*rt->snk));
    rt->offs = calloc(ns, sizeof(*rt->offs));
    rt->assigned = calloc(ns, sizeof(*rt->assigned));
    if (rt->hist.in == NULL && totals_new(rt->job, &rt->hist) < 0)
        return -1;
    return rt->src && rt->snk && rt->offs && rt->assigned ? 0 : -1;
}

static void free_graph(struct runtime *rt)
{
    for (size_t s = 0; rt->offs != NULL && s < rt->job->nsources; s++)
        free(rt->offs[s].v);
    free(rt->offs);
    free(rt->src);
    free(rt->snk);
    free(rt->assigned);
    rt->offs = NULL;
    rt->src = NULL;
    rt->snk = NULL;
    rt->assigned = NULL;
}

/* Whether the new job can continue from a savepoint of the running one:
 * the same job (checkpoints are filed by its name), and every operator
 * that keeps its name keeps its definition, unless
 * --allow-non-restored-state lets its state go. */
static int reload_compatible(const struct runtime *rt, const struct job *nj, char *why,
                             size_t size)
{
    const struct job *oj = rt->job;
    if (strcmp(oj->name, nj->name) != 0) {
        snprintf(why, size, "the job name changed (%s to %s); a renamed job is a new job: "
                 "stop this one and start the new one from a savepoint", oj->name, nj->name);
        return -1;
    }
    for (size_t n = 0; n < nj->noperators; n++)
        for (size_t o = 0; o < oj->noperators; o++) {
            if (strcmp(nj->operators[n].name, oj->operators[o].name) != 0 ||
                engine_op_fingerprint(nj, (int)n, CKPT_VERSION) ==
                engine_op_fingerprint(oj, (int)o, CKPT_VERSION))
                continue;
            if (!rt->allow_non_restored) {
                snprintf(why, size, "operator %s changed its window or aggregates, so its "
                         "state cannot carry over (rename it to start it empty, or run with "
                         "--allow-non-restored-state)", nj->operators[n].name);
                return -1;
            }
            log_msg(LOG_WARNING, "reload", "operator %s changed: it starts without state",
                    nj->operators[n].name);
        }
    return 0;
}

static void reload_abort(struct runtime *rt, const char *why)
{
    log_msg(LOG_ERR, "reload", "abandoned: %s", why);
    job_free(rt->next_job);
    rt->next_job = NULL;
    rt->reload = RL_NONE;
    if (rt->dropped > 0) {
        /* the old sources have read past records that were not applied */
        rt_fail(rt, "records arrived while the reload's savepoint was taken; restart "
                "to continue from the last checkpoint");
        return;
    }
    set_paused(rt, rt->congested > 0);
    service_ready();
}

static void reload_step(struct runtime *rt)
{
    if (rt->reload == RL_SAVEPOINT_WANTED && !chkpt_busy(rt)) {
        rt->reload = RL_SAVEPOINT;
        rt->dropped = 0;
        chkpt_take(rt, CKPT_SAVEPOINT);     /* ends in rt_savepoint_done() */
    }
}

void rt_savepoint_done(struct runtime *rt, const char *path)
{
    if (!rt->ck.savepoint_wanted)   /* else a POST waits for the one queued after this */
        observe_savepoint_done(rt, path);
    if (rt->reload != RL_SAVEPOINT)
        return;
    if (path == NULL) {
        reload_abort(rt, "its savepoint failed; the running job goes on");
        return;
    }
    snprintf(rt->reload_path, sizeof(rt->reload_path), "%s", path);
    rt->reload = RL_CLOSING;
    LOG(LOG_INFO, "reload", "savepoint taken; closing the old graph");
    close_graph(rt);
}

static int start(struct runtime *rt);

/* The old graph has closed: start the new one from the savepoint. */
static void swap_graph(struct runtime *rt)
{
    struct totals t = { 0 };
    if (totals_new(rt->next_job, &t) < 0 || totals_carry(rt, rt->next_job, &t) < 0) {
        totals_free(&t);
        rt_fail(rt, "out of memory");
        return;
    }
    totals_free(&rt->hist);
    rt->hist = t;
    chkpt_stop(rt);
    engine_free(rt->eng);
    rt->eng = NULL;
    free_graph(rt);
    job_free(rt->job);
    rt->job = rt->next_job;
    rt->next_job = NULL;
    rt->reload = RL_NONE;
    rt->finished = rt->congested = 0;
    rt->paused = rt->ready = 0;
    rt->from_savepoint = rt->reload_path;
    if (alloc_graph(rt) < 0) {
        rt_fail(rt, "out of memory");
        return;
    }
    log_msg(LOG_NOTICE, "reload", "starting the new graph of job %s from %s", rt->job->name,
            rt->reload_path);
    int rc = start(rt);
    if (rc != EXIT_OK) {
        rt->exit_code = rc;
        log_msg(LOG_ERR, "reload", "the new graph did not start; stopping (a restart "
                "continues from %s or a newer checkpoint)", rt->reload_path);
        begin_close(rt);
        return;
    }
    if (rt->stop_after_reload)
        begin_drain(rt);
}

static void log_diags(struct diags *d, const char *file)
{
    diags_sort(d);
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].line > 0)
            log_msg(LOG_ERR, "reload", "%s:%d:%d: %s", file, d->v[i].line, d->v[i].col,
                    d->v[i].msg);
        else
            log_msg(LOG_ERR, "reload", "%s: %s", file, d->v[i].msg);
    }
    if (d->dropped > 0)
        log_msg(LOG_ERR, "reload", "%s: %zu more errors", file, d->dropped);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    (void)signum;
    if (rt->phase != RUNNING || rt->reload != RL_NONE) {
        log_msg(LOG_WARNING, "reload", "SIGHUP ignored: %s", rt->phase != RUNNING ?
                "the job is stopping" : "a reload is in progress");
        return;
    }
    service_reloading();
    log_msg(LOG_NOTICE, "reload", "SIGHUP: re-reading %s", rt->file);
    struct diags d = { 0 };
    struct job *nj = NULL;
    char why[512];
    if (job_load(rt->file, NULL, &nj, &d) < 0) {
        log_diags(&d, rt->file);
        log_msg(LOG_ERR, "reload", "%s has %zu error%s: the running job goes on unchanged",
                rt->file, diags_count(&d) + d.dropped, diags_count(&d) + d.dropped == 1 ? "" : "s");
        diags_free(&d);
        service_ready();
        return;
    }
    diags_free(&d);
    if (reload_compatible(rt, nj, why, sizeof(why)) < 0) {
        log_msg(LOG_ERR, "reload", "refused: %s; the running job goes on unchanged", why);
        job_free(nj);
        service_ready();
        return;
    }
    if ((nj->http == NULL) != (rt->job->http == NULL) ||
        (nj->http != NULL && strcmp(nj->http, rt->job->http) != 0))
        log_msg(LOG_WARNING, "reload", "http: a new address takes effect at the next start");
    rt->next_job = nj;
    rt->reload = RL_SAVEPOINT_WANTED;
    set_paused(rt, 1);
    LOG(LOG_INFO, "reload", "%s is valid: taking a savepoint", rt->file);
    reload_step(rt);
}

/* ---- the tick and signals --------------------------------------------------------------- */

static uint64_t records_total(const struct runtime *rt)
{
    struct totals t;
    uint64_t n = 0;
    if (totals_new(rt->job, &t) < 0)
        return 0;
    rt_totals(rt, &t);
    for (size_t s = 0; s < rt->job->nsources; s++)
        n += t.in[s];
    totals_free(&t);
    return n;
}

/* STATUS= for systemctl status: throughput and the last checkpoint. */
static void status_step(struct runtime *rt)
{
    uint64_t now = uv_now(&rt->loop);
    if (now - rt->status_at < STATUS_EVERY_MS || !rt->ready)
        return;
    uint64_t in = records_total(rt);
    uint64_t since = rt->status_at;
    rt->status_at = now;
    if (since == 0 || in < rt->status_in) {     /* the first, or after a reload */
        rt->status_in = in;
        return;
    }
    double rate = (double)(in - rt->status_in) * 1000.0 / (double)(now - since);
    rt->status_in = in;
    struct engine_stats st = { 0 };
    if (rt->eng != NULL)
        engine_get_stats(rt->eng, &st);
    const struct checkpoints *ck = &rt->ck;
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
    if (rt->phase == RUNNING) {
        if (rt->reload == RL_NONE)
            engine_tick(rt->eng);   /* nothing fires while a reload is under way */
        chkpt_poll(rt);
        reload_step(rt);
        status_step(rt);
    } else if (rt->phase == DRAINING) {
        drain_step(rt);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    if (rt->phase != RUNNING) {
        if (rt->signalled++ > 0)
            rt_fail(rt, "second signal");
        return;
    }
    const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    if (rt->reload == RL_CLOSING) {
        /* the old graph is closing; the new one stops as soon as it starts */
        LOG(LOG_NOTICE, "run", "%s: stopping after the reload", name);
        rt->signalled = rt->stop_after_reload = 1;
        return;
    }
    if (rt->reload != RL_NONE)
        reload_abort(rt, "stopping");
    rt->signalled = 1;
    LOG(LOG_NOTICE, "run", "%s: stopping (open windows are kept, not fired)", name);
    begin_drain(rt);
}

/* ---- start ---------------------------------------------------------------------------- */

static int uses_embedded(const struct job *job)
{
    for (size_t i = 0; i < job->nsources; i++)
        if (job->sources[i].type == SOURCE_KAFKA && strcmp(job->sources[i].brokers, "embedded") == 0)
            return 1;
    for (size_t i = 0; i < job->nsinks; i++)
        if (job->sinks[i].type == SINK_KAFKA && strcmp(job->sinks[i].brokers, "embedded") == 0)
            return 1;
    return 0;
}

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

static int start(struct runtime *rt)
{
    const struct job *job = rt->job;
    char err[512];

    log_graph(job, rt->bounded);

    if (chkpt_setup(rt) < 0 || rt_new_engine(rt) < 0)
        return EXIT_RUNTIME;
    int rc = chkpt_restore(rt);
    if (rc < 0)
        return rc == -ENOMEM ? EXIT_RUNTIME : EXIT_CONFIG;
    if (uses_embedded(job) && rt->broker == NULL) {   /* a reload keeps it, and its data */
        const char *topics[64];
        size_t nt = 0;
        for (size_t i = 0; i < job->nsources && nt < 64; i++)
            if (job->sources[i].type == SOURCE_KAFKA)
                topics[nt++] = job->sources[i].topic;
        if (broker_start(&rt->loop, 0, 4, topics, nt, &rt->broker, err, sizeof(err)) < 0) {
            log_msg(LOG_ERR, "broker", "%s", err);
            return EXIT_RUNTIME;
        }
        kafka_set_embedded_bootstrap(broker_bootstrap(rt->broker));
        LOG(LOG_NOTICE, "broker", "embedded development broker at %s (in memory, about "
            "5 MB per partition)", broker_bootstrap(rt->broker));
    }
    rt->khost = (struct sink_host){ rt, &rt->loop, h_congested, h_drained };
    for (size_t i = 0; i < job->nsinks; i++) {
        struct sink *s = &rt->snk[i];
        s->ops = sink_ops_for(&job->sinks[i]);
        s->job = job;
        s->js = &job->sinks[i];
        s->index = (int)i;
        s->host = &rt->khost;
        snprintf(s->name, sizeof(s->name), "%s %s", s->ops->type, s->js->name);
        if (s->ops->open(s) < 0)
            return EXIT_RUNTIME;
    }
    rt->shost = (struct source_host){ rt, &rt->loop, rt->bounded, h_record, h_assigned,
                                      h_revoked, h_ended, h_finished, h_failed, h_resume_at,
                                      h_event_time };
    for (size_t i = 0; i < job->nsources; i++) {
        struct source *s = &rt->src[i];
        s->ops = source_ops_for(&job->sources[i]);
        s->job = job;
        s->js = &job->sources[i];
        s->index = (int)i;
        s->host = &rt->shost;
        snprintf(s->name, sizeof(s->name), "%s %s", s->ops->type, s->js->name);
        if (s->ops->start(s) < 0)
            return EXIT_RUNTIME;
    }
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
                return -1;
            }
        } else {
            fprintf(stderr, "sluice run: unexpected argument '%s'\n%s", a, cli_run.usage);
            return -1;
        }
    }
    if (*file == NULL) {
        fprintf(stderr, "sluice run: -c FILE is required\n%s", cli_run.usage);
        return -1;
    }
    return 0;
}

static void summary(struct runtime *rt)
{
    struct totals t;
    if (rt->eng == NULL || totals_new(rt->job, &t) < 0)
        return;
    rt_totals(rt, &t);
    uint64_t in = 0, invalid = 0, late = 0, fired = 0, lost = 0;
    for (size_t i = 0; i < rt->job->nsources; i++) {
        in += t.in[i];
        for (int k = 0; k < REJ_NKINDS; k++)
            invalid += t.invalid[i][k];
    }
    for (size_t i = 0; i < rt->job->noperators; i++) {
        late += t.late[i];
        fired += t.fired[i];
        lost += t.lost[i];
    }
    double secs = rt->first_ns && rt->last_ns > rt->first_ns
                  ? (double)(rt->last_ns - rt->first_ns) / 1e9 : 0;
    LOG(LOG_NOTICE, "run", "records in %" PRIu64 ", invalid %" PRIu64 ", late %" PRIu64
        ", windows fired %" PRIu64 ", results lost %" PRIu64 "; input read in %.3f s from "
        "its first record (%.0f records/s); checkpoints %" PRIu64 " complete, %" PRIu64
        " failed, longest loop stall %" PRIu64 " us", in, invalid, late, fired, lost, secs,
        secs > 0 ? (double)in / secs : 0, rt->ck.ok, rt->ck.failed, rt->ck.max_stall_us);
    for (size_t i = 0; i < rt->job->nsinks; i++)
        LOG(LOG_INFO, rt->snk[i].name, "%" PRIu64 " writes acknowledged, %" PRIu64
            " retried, %" PRIu64 " failed attempts", t.written[i], t.retried[i], t.failed[i]);
    totals_free(&t);
}

int cmd_run(int argc, char **argv)
{
    const char *file = NULL;
    struct runtime rt;
    memset(&rt, 0, sizeof(rt));
    int pa = parse_args(&rt, argc, argv, &file);
    if (pa != 0)
        return pa > 0 ? EXIT_OK : EXIT_CONFIG;
    if (cli_load_job(file, &rt.job) != EXIT_OK)
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
    rt.tick.data = rt.sigterm.data = rt.sigint.data = rt.sighup.data = &rt;
    service_start(&rt.svc, &rt.loop);
    char err[512];
    if (alloc_graph(&rt) < 0) {
        log_msg(LOG_ERR, "run", "out of memory");
        rt.exit_code = EXIT_RUNTIME;
        begin_close(&rt);
    } else if (rt.job->http != NULL &&
               http_start(&rt.loop, rt.job->http, observe_request, &rt, &rt.http, err,
                          sizeof(err)) < 0) {
        log_msg(LOG_ERR, "http", "%s (set http: to another HOST:PORT, or none)", err);
        rt.exit_code = EXIT_RUNTIME;
        begin_close(&rt);
    } else {
        if (rt.http != NULL)
            LOG(LOG_INFO, "http", "metrics, health and status on http://%s/", rt.job->http);
        uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
        uv_signal_start(&rt.sigint, on_signal, SIGINT);
        uv_signal_start(&rt.sighup, on_sighup, SIGHUP);
        uv_timer_start(&rt.tick, on_tick, TICK_MS, TICK_MS);
        int rc = start(&rt);
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
    engine_free(rt.eng);
    sbuf_free(&rt.dl);
    free_graph(&rt);
    totals_free(&rt.hist);
    job_free(rt.next_job);
    job_free(rt.job);
    return rt.exit_code;
}
