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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/broker.h"
#include "../connectors/kafka_common.h"
#include "cli.h"
#include "run.h"

#define TICK_MS 100
#define STOP_DEADLINE_MS 10000

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
                       const char *raw, size_t len, enum reject_kind kind, const char *why)
{
    struct runtime *rt = ud;
    struct source *src = &rt->src[source];
    log_rate_msg(&rt->invalid_rate, LOG_WARNING, src->name, "partition %" PRId32 " offset %"
                 PRId64 ": %s record: %s", part, off, reject_kind_name(kind), why);
    if (dl < 0)
        return;
    struct sink *s = &rt->snk[dl];
    rt->dl.len = 0;
    if (fmt_dead_letter(&rt->dl, src->js->name, part, off, kind, why, raw, len) < 0 ||
        (s->impl != NULL && s->ops->write_raw(s, rt->dl.p, rt->dl.len, NULL, 0) < 0))
        rt_fail(rt, "the dead-letter sink cannot take a record");
}

int rt_new_engine(struct runtime *rt)
{
    engine_free(rt->eng);
    rt->eng = NULL;
    struct engine_output out = { rt, on_result, on_late, on_invalid };
    if (engine_new(rt->job, NULL, &out, &rt->eng) < 0) {
        log_msg(LOG_ERR, "run", "out of memory");
        return -1;
    }
    return 0;
}

/* ---- source host -------------------------------------------------------------- */

static struct engine_offset *position(struct runtime *rt, int source, int32_t part)
{
    struct offsets *o = &rt->offs[source];
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].partition == part)
            return &o->v[i];
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct engine_offset *v = realloc(o->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n] = (struct engine_offset){ part, -1 };
    return &o->v[o->n++];
}

static int h_record(void *ud, int source, int32_t part, int64_t off, const char *data,
                    size_t len, int64_t ts)
{
    struct runtime *rt = ud;
    if (rt->phase != RUNNING)
        return 0;                   /* stopping: nothing more goes in */
    if (rt->first_ns == 0)
        rt->first_ns = uv_hrtime();
    if (engine_feed(rt->eng, source, part, off, data, len, ts) < 0) {
        rt_fail(rt, "out of memory for state");
        return -ENOMEM;
    }
    /* applied: a checkpoint from now on resumes after it */
    struct engine_offset *p = position(rt, source, part);
    if (p == NULL) {
        rt_fail(rt, "out of memory");
        return -ENOMEM;
    }
    p->next = off + (rt->job->sources[source].type == SOURCE_FILE ? (int64_t)len + 1 : 1);
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

static void h_assigned(void *ud, int source, int32_t part)
{
    struct runtime *rt = ud;
    if (engine_partition_add(rt->eng, source, part) < 0)
        rt_fail(rt, "out of memory");
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

static void begin_drain(struct runtime *rt);

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
    if (rt->congested++ == 0 && rt->phase == RUNNING) {
        LOG(LOG_INFO, "run", "pausing sources: a sink is congested");
        set_paused(rt, 1);
    }
}

static void h_drained(void *ud, struct sink *s)
{
    struct runtime *rt = ud;
    (void)s;
    if (rt->congested > 0 && --rt->congested == 0 && rt->phase == RUNNING) {
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

static void on_closed_one(struct runtime *rt)
{
    if (--rt->open == 0 && rt->phase == CLOSING) {
        uv_close((uv_handle_t *)&rt->tick, NULL);
        uv_close((uv_handle_t *)&rt->sigterm, NULL);
        uv_close((uv_handle_t *)&rt->sigint, NULL);
        chkpt_close(rt);
        if (rt->broker != NULL) {
            broker_stop(rt->broker);
            rt->broker = NULL;
        }
    }
}

static void source_closed(struct source *s)
{
    on_closed_one((struct runtime *)s->host->ud);
}

static void sink_closed(struct sink *s)
{
    on_closed_one((struct runtime *)s->host->ud);
}

static void begin_close(struct runtime *rt)
{
    if (rt->phase == CLOSING)
        return;
    rt->phase = CLOSING;
    size_t left = pending(rt);
    if (left > 0)
        log_msg(LOG_WARNING, "run", "closing with %zu writes not acknowledged", left);
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

static void begin_drain(struct runtime *rt)
{
    if (rt->phase != RUNNING)
        return;
    rt->phase = DRAINING;
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

static void on_tick(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    if (rt->phase == RUNNING) {
        engine_tick(rt->eng);
        chkpt_poll(rt);
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
    rt->signalled = 1;
    LOG(LOG_NOTICE, "run", "%s: stopping (open windows are kept, not fired)",
        signum == SIGTERM ? "SIGTERM" : "SIGINT");
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

static int start(struct runtime *rt)
{
    const struct job *job = rt->job;
    char err[512];

    if (chkpt_setup(rt) < 0 || rt_new_engine(rt) < 0)
        return EXIT_RUNTIME;
    int rc = chkpt_restore(rt);
    if (rc != EXIT_OK)
        return rc;
    if (uses_embedded(job)) {
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
                                      h_revoked, h_ended, h_finished, h_failed, h_resume_at };
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
    if (rt->eng == NULL)
        return;
    struct engine_stats st;
    engine_get_stats(rt->eng, &st);
    double secs = rt->first_ns && rt->last_ns > rt->first_ns
                  ? (double)(rt->last_ns - rt->first_ns) / 1e9 : 0;
    LOG(LOG_NOTICE, "run", "records in %" PRIu64 ", invalid %" PRIu64 ", late %" PRIu64
        ", windows fired %" PRIu64 "; input read in %.3f s from its first record "
        "(%.0f records/s); checkpoints %" PRIu64 " complete, %" PRIu64 " failed, longest "
        "loop stall %" PRIu64 " us", st.records_in, st.records_invalid, st.records_late,
        st.results, secs, secs > 0 ? (double)st.records_in / secs : 0, rt->ck.ok,
        rt->ck.failed, rt->ck.max_stall_us);
    for (size_t i = 0; i < rt->job->nsinks; i++)
        LOG(LOG_INFO, rt->snk[i].name, "%" PRIu64 " writes acknowledged, %" PRIu64
            " retried, %" PRIu64 " failed attempts", rt->snk[i].written,
            rt->snk[i].retried, rt->snk[i].failed);
}

int cmd_run(int argc, char **argv)
{
    const char *file = NULL;
    struct runtime rt;
    memset(&rt, 0, sizeof(rt));
    int pa = parse_args(&rt, argc, argv, &file);
    if (pa != 0)
        return pa > 0 ? EXIT_OK : EXIT_CONFIG;
    struct job *job = NULL;
    if (cli_load_job(file, &job) != EXIT_OK)
        return EXIT_CONFIG;
    rt.job = job;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);       /* a file-size limit is an error to report, not a crash */
    uv_loop_init(&rt.loop);
    rt.src = calloc(job->nsources ? job->nsources : 1, sizeof(*rt.src));
    rt.snk = calloc(job->nsinks ? job->nsinks : 1, sizeof(*rt.snk));
    rt.offs = calloc(job->nsources ? job->nsources : 1, sizeof(*rt.offs));
    uv_timer_init(&rt.loop, &rt.tick);
    uv_signal_init(&rt.loop, &rt.sigterm);
    uv_signal_init(&rt.loop, &rt.sigint);
    rt.tick.data = rt.sigterm.data = rt.sigint.data = &rt;
    if (rt.src == NULL || rt.snk == NULL || rt.offs == NULL) {
        log_msg(LOG_ERR, "run", "out of memory");
        rt.exit_code = EXIT_RUNTIME;
        begin_close(&rt);
    } else {
        uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
        uv_signal_start(&rt.sigint, on_signal, SIGINT);
        uv_timer_start(&rt.tick, on_tick, TICK_MS, TICK_MS);
        LOG(LOG_INFO, "run", "job %s: %zu source%s, %zu operator%s, %zu sink%s%s", job->name,
            job->nsources, job->nsources == 1 ? "" : "s", job->noperators,
            job->noperators == 1 ? "" : "s", job->nsinks, job->nsinks == 1 ? "" : "s",
            rt.bounded ? " (bounded)" : "");
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
    for (size_t s = 0; rt.offs != NULL && s < job->nsources; s++)
        free(rt.offs[s].v);
    free(rt.offs);
    free(rt.src);
    free(rt.snk);
    job_free(job);
    return rt.exit_code;
}
