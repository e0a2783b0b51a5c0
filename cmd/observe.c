/*
 * observe.c - what `sluice run` shows about itself over HTTP: Prometheus
 * metrics, health, a JSON status, and savepoints on request.
 *
 *   GET  /           the status page for a person (status_page.h)
 *   GET  /metrics    Prometheus text exposition format 0.0.4
 *   GET  /healthz    200 "ok" while running, 503 otherwise
 *   GET  /status     JSON: job graph, watermarks, partitions, sinks,
 *                    checkpoints
 *   POST /savepoint  takes a savepoint (as SIGUSR1) and answers with its
 *                    path when it is complete (500 if it fails)
 *
 * Everything is read on the loop thread at request time, through what the
 * run gave observe_new() (observe.h); nothing is sampled in between, and
 * nothing of the run is written here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../connectors/format.h"
#include "../connectors/log.h"
#include "../engine/evtime.h"
#include "../engine/watermark.h"
#include "cli.h"
#include "observe.h"
#include "status_page.h"

#define MAXP 1024

struct observe {
    struct observe_host host;
    struct http_req *savepoint_req; /* a POST /savepoint waiting for its end */
};

static void label(struct sbuf *b, const char *s)
{
    /* label values escape backslash, quote and newline */
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sbuf_putc(b, '\\');
        if (*s == '\n') {
            SBUF_LIT(b, "\\n");
            continue;
        }
        sbuf_putc(b, *s);
    }
}

static void help(struct sbuf *b, const char *name, const char *type, const char *text)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static const char *sink_ptype(const struct sink *s)
{
    return s->ops ? s->ops->type : "?";
}

/* The HELP and TYPE lines of a histogram and of its _max gauge. */
static void histogram_help(struct sbuf *b, const char *name, const char *text)
{
    help(b, name, "histogram", text);
    sbuf_printf(b, "# HELP %s_max The longest observed.\n# TYPE %s_max gauge\n", name, name);
}

/* One histogram of one sink or source (label what="who"), Prometheus
 * style: cumulative buckets, sum, count; and its exact maximum as a gauge
 * of its own (name_max). */
static void histogram(struct sbuf *b, const char *name, const char *what, const char *who,
                      const char *type, const struct histo *h)
{
    uint64_t cum = 0;
    for (int k = 0; k <= HISTO_NBOUNDS; k++) {
        cum += h->n[k];
        sbuf_printf(b, "%s_bucket{%s=\"", name, what);
        label(b, who);
        if (k < HISTO_NBOUNDS)
            sbuf_printf(b, "\",type=\"%s\",le=\"%.9g\"} %" PRIu64 "\n", type,
                        (double)histo_bound_ns(k) / 1e9, cum);
        else
            sbuf_printf(b, "\",type=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", type, cum);
    }
    const char *suffix[] = { "_sum", "_count", "_max" };
    for (int k = 0; k < 3; k++) {
        sbuf_printf(b, "%s%s{%s=\"", name, suffix[k], what);
        label(b, who);
        if (k == 1)
            sbuf_printf(b, "\",type=\"%s\"} %" PRIu64 "\n", type, h->count);
        else
            sbuf_printf(b, "\",type=\"%s\"} %.9f\n", type,
                        (double)(k == 0 ? h->sum_ns : h->max_ns) / 1e9);
    }
}

/* The sinks' latency histograms, of the sinks that keep them (Redis). */
static void sink_histograms(struct sbuf *b, const struct graph *g, const struct totals *t)
{
    const struct job *job = g->job;
    static const struct {
        const char *name, *what;
    } hs[] = {
        { "sluice_sink_write_latency_seconds",
          "From a result queued in the sink to the destination acknowledging its write." },
        { "sluice_sink_freshness_seconds",
          "From the arrival of the record that fired a result (its fire time when no record "
          "did) to the destination acknowledging its write; a write that replaced others "
          "counts from the oldest." },
    };
    for (int k = 0; k < 2; k++) {
        int any = 0;
        for (size_t i = 0; i < job->nsinks; i++) {
            const struct sink *s = &g->snk[i];
            if (!s->timed)
                continue;
            if (!any++)
                histogram_help(b, hs[k].name, hs[k].what);
            histogram(b, hs[k].name, "sink", job->sinks[i].name, sink_ptype(s),
                      k == 0 ? &t->latency[i] : &t->freshness[i]);
        }
    }
}

static void per_operator(struct sbuf *b, const struct job *job, const char *name,
                         const char *text, const uint64_t *v)
{
    help(b, name, "counter", text);
    for (size_t o = 0; o < job->noperators; o++) {
        sbuf_printf(b, "%s{operator=\"", name);
        label(b, job->operators[o].name);
        sbuf_printf(b, "\"} %" PRIu64 "\n", v[o]);
    }
}

/* Source s's own figures into *out (when out is not NULL); returns 1, or 0
 * for a source that counts nothing itself. */
static int own_stats(const struct graph *g, size_t s, struct source_own_stats *out)
{
    const struct source *src = &g->src[s];
    if (src->impl == NULL || src->ops == NULL || src->ops->own_stats == NULL)
        return 0;
    if (out != NULL)
        src->ops->own_stats(src, out);
    return 1;
}

/* What stage 1 of a repartitioning counts itself (sources with own_stats);
 * nothing when the job has none. */
static void repartition_metrics(struct sbuf *b, const struct job *job, const struct graph *g)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } figures[] = {
        { "sluice_repartition_records_in_total", "counter", "Records stage 1 of a "
          "repartitioning read from its input, valid or not.",
          offsetof(struct source_own_stats, records_in) },
        { "sluice_repartition_records_produced_total", "counter", "Records stage 1 produced "
          "to repartition topics and the cluster acknowledged (one per repartition topic).",
          offsetof(struct source_own_stats, produced) },
        { "sluice_repartition_markers_total", "counter", "Watermark and end markers stage 1 "
          "produced (one per repartition partition).",
          offsetof(struct source_own_stats, markers) },
        { "sluice_repartition_in_flight", "gauge", "Records and markers stage 1 produced that "
          "are not acknowledged yet.", offsetof(struct source_own_stats, in_flight) },
    };
    size_t n = 0;
    for (size_t s = 0; s < job->nsources; s++)
        n += own_stats(g, s, NULL);
    if (n == 0)
        return;
    struct source_own_stats os;
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        help(b, figures[i].name, figures[i].type, figures[i].help);
        for (size_t s = 0; s < job->nsources; s++) {
            uint64_t v;
            if (!own_stats(g, s, &os))
                continue;
            memcpy(&v, (const char *)&os + figures[i].off, sizeof(v));
            sbuf_printf(b, "%s{source=\"", figures[i].name);
            label(b, job->sources[s].name);
            sbuf_printf(b, "\"} %" PRIu64 "\n", v);
        }
    }
    help(b, "sluice_repartition_invalid_total", "counter", "Records stage 1 rejected, by "
         "kind (each also reported to the job as an invalid record).");
    for (size_t s = 0; s < job->nsources; s++) {
        if (!own_stats(g, s, &os))
            continue;
        for (int k = 0; k < REJ_NKINDS; k++) {
            SBUF_LIT(b, "sluice_repartition_invalid_total{source=\"");
            label(b, job->sources[s].name);
            sbuf_printf(b, "\",kind=\"%s\"} %" PRIu64 "\n",
                        reject_kind_name((enum reject_kind)k), os.invalid[k]);
        }
    }
}

static void metrics(const struct observe *obs, const struct totals *t, struct sbuf *b)
{
    const struct graph *g = obs->host.g;
    const struct job *job = g->job;
    struct engine_stats st = { 0 };
    graph_stats(g, &st);

    help(b, "sluice_build_info", "gauge", "Version of sluice.");
    sbuf_printf(b, "sluice_build_info{version=\"%s\",job=\"", SLUICE_VERSION);
    label(b, job->name);
    SBUF_LIT(b, "\"} 1\n");
    help(b, "sluice_up", "gauge", "1 while the job runs, 0 while it stops or reloads.");
    sbuf_printf(b, "sluice_up %d\n", obs->host.state(obs->host.ud) == RUN_RUNNING);

    help(b, "sluice_records_in_total", "counter", "Records read, valid or not.");
    for (size_t s = 0; s < job->nsources; s++) {
        SBUF_LIT(b, "sluice_records_in_total{source=\"");
        label(b, job->sources[s].name);
        sbuf_printf(b, "\"} %" PRIu64 "\n", t->in[s]);
    }
    help(b, "sluice_records_invalid_total", "counter", "Records rejected, by reason.");
    for (size_t s = 0; s < job->nsources; s++)
        for (int k = 0; k < REJ_NKINDS; k++) {
            SBUF_LIT(b, "sluice_records_invalid_total{source=\"");
            label(b, job->sources[s].name);
            sbuf_printf(b, "\",reason=\"%s\"} %" PRIu64 "\n", reject_kind_name((enum reject_kind)k),
                        t->invalid[s][k]);
        }
    per_operator(b, job, "sluice_records_late_total",
                 "Records too late for every window of an operator.", t->late);
    per_operator(b, job, "sluice_windows_fired_total",
                 "Window results emitted (re-fires included).", t->fired);
    per_operator(b, job, "sluice_results_lost_total",
                 "Results not produced on time for lack of memory: a window not combined, "
                 "or a key whose next timer could not be set.", t->lost);

    help(b, "sluice_source_watermark_seconds", "gauge",
         "A source's event-time watermark, Unix time (absent before the first).");
    help(b, "sluice_partition_watermark_seconds", "gauge",
         "A partition's own event-time watermark, Unix time.");
    help(b, "sluice_partition_offset", "gauge", "Offset of the next record to read.");
    help(b, "sluice_partition_lag", "gauge", "Records (file sources: bytes) not yet read.");
    static int32_t ids[MAXP];
    static int64_t wms[MAXP];
    for (size_t s = 0; s < job->nsources; s++) {
        int64_t w = graph_watermark(g, (int)s);
        if (w != WM_MIN && w != WM_MAX) {
            SBUF_LIT(b, "sluice_source_watermark_seconds{source=\"");
            label(b, job->sources[s].name);
            sbuf_printf(b, "\"} %.3f\n", (double)w / 1e3);
        }
        size_t np = graph_partitions(g, (int)s, ids, wms, MAXP);
        for (size_t i = 0; i < np; i++) {
            int64_t next = offsets_next(&g->offs[s], ids[i]);
            if (wms[i] != WM_MIN) {
                SBUF_LIT(b, "sluice_partition_watermark_seconds{source=\"");
                label(b, job->sources[s].name);
                sbuf_printf(b, "\",partition=\"%" PRId32 "\"} %.3f\n", ids[i],
                            (double)wms[i] / 1e3);
            }
            if (next >= 0) {
                SBUF_LIT(b, "sluice_partition_offset{source=\"");
                label(b, job->sources[s].name);
                sbuf_printf(b, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", ids[i], next);
            }
            int64_t lag = status_lag(&g->src[s], ids[i], next);
            if (lag >= 0) {
                SBUF_LIT(b, "sluice_partition_lag{source=\"");
                label(b, job->sources[s].name);
                sbuf_printf(b, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", ids[i], lag);
            }
        }
    }

    help(b, "sluice_state_keys", "gauge", "Keys with state, over all operators.");
    sbuf_printf(b, "sluice_state_keys %" PRIu64 "\n", st.state_keys);
    help(b, "sluice_state_bytes", "gauge", "Memory held by state (tables, blobs, timers).");
    sbuf_printf(b, "sluice_state_bytes %" PRIu64 "\n", st.state_bytes);

    help(b, "sluice_sink_writes_total", "counter", "Writes acknowledged by the destination.");
    help(b, "sluice_sink_pending", "gauge", "Writes accepted, not yet acknowledged.");
    help(b, "sluice_sink_retried_total", "counter", "Writes sent again after a failure.");
    help(b, "sluice_sink_failed_total", "counter", "Failed write attempts (each retried).");
    help(b, "sluice_sink_stale_total", "counter",
         "Acknowledged writes the destination kept out: it held a newer result.");
    help(b, "sluice_sink_writes_coalesced_total", "counter",
         "Writes replaced in the sink's queue by a newer write to the same key, never sent.");
    for (size_t i = 0; i < job->nsinks; i++) {
        const struct sink *s = &g->snk[i];
        const char *names[] = { "sluice_sink_writes_total", "sluice_sink_pending",
                                "sluice_sink_retried_total", "sluice_sink_failed_total",
                                "sluice_sink_stale_total", "sluice_sink_writes_coalesced_total" };
        uint64_t v[] = { t->written[i], s->impl ? (uint64_t)s->ops->pending(s) : 0,
                         t->retried[i], t->failed[i], t->stale[i], t->coalesced[i] };
        for (int k = 0; k < 6; k++) {
            sbuf_printf(b, "%s{sink=\"", names[k]);
            label(b, job->sinks[i].name);
            sbuf_printf(b, "\",type=\"%s\"} %" PRIu64 "\n", sink_ptype(s), v[k]);
        }
    }
    sink_histograms(b, g, t);
    int any = 0;
    for (size_t i = 0; i < job->nsources; i++) {
        if (g->src[i].delay.count == 0)
            continue;               /* no timestamps (files), or nothing read yet */
        if (!any++)
            histogram_help(b, "sluice_source_delay_seconds", "From a record's timestamp "
                           "(Kafka's: producer or broker time) to its arrival at sluice; this "
                           "graph's records only (a reload starts it again).");
        histogram(b, "sluice_source_delay_seconds", "source", job->sources[i].name,
                  g->src[i].ops ? g->src[i].ops->type : "?", &g->src[i].delay);
    }

    const struct chkpt_stats *ck = chkpt_stats(obs->host.ck);
    help(b, "sluice_checkpoints_total", "counter", "Checkpoints and savepoints, by result.");
    sbuf_printf(b, "sluice_checkpoints_total{result=\"complete\"} %" PRIu64 "\n"
                "sluice_checkpoints_total{result=\"failed\"} %" PRIu64 "\n",
                ck->ok, ck->failed);
    help(b, "sluice_checkpoint_duration_seconds", "gauge",
         "The last complete checkpoint, from fork to complete.");
    sbuf_printf(b, "sluice_checkpoint_duration_seconds %.3f\n", (double)ck->last_ms / 1e3);
    help(b, "sluice_checkpoint_size_bytes", "gauge", "Size of the last complete checkpoint.");
    sbuf_printf(b, "sluice_checkpoint_size_bytes %" PRIu64 "\n", ck->last_bytes);
    help(b, "sluice_checkpoint_stall_seconds", "gauge",
         "Loop stall (the fork) of the last checkpoint.");
    sbuf_printf(b, "sluice_checkpoint_stall_seconds %.6f\n", (double)ck->last_stall_us / 1e6);
    help(b, "sluice_checkpoint_stall_max_seconds", "gauge", "Longest checkpoint loop stall.");
    sbuf_printf(b, "sluice_checkpoint_stall_max_seconds %.6f\n", (double)ck->max_stall_us / 1e6);
    help(b, "sluice_checkpoint_last_completed_seconds", "gauge",
         "Unix time of the last complete checkpoint (0: none yet).");
    sbuf_printf(b, "sluice_checkpoint_last_completed_seconds %.3f\n",
                (double)ck->last_at_ms / 1e3);
    help(b, "sluice_source_commits_total", "counter", "Offset commits of a source's "
         "partitions, by outcome: ok, fenced (not ours), retried (attempts), failed.");
    for (size_t s = 0; s < job->nsources; s++) {
        struct source_commit_stats cs = { 0 };
        const struct source *src = &g->src[s];
        if (src->impl != NULL && src->ops->commit_stats != NULL)
            src->ops->commit_stats(src, &cs);
        const char *outcome[] = { "ok", "fenced", "retried", "failed" };
        uint64_t v[] = { cs.ok, cs.fenced, cs.retried, cs.failed };
        for (int k = 0; k < 4; k++) {
            SBUF_LIT(b, "sluice_source_commits_total{source=\"");
            label(b, job->sources[s].name);
            sbuf_printf(b, "\",result=\"%s\"} %" PRIu64 "\n", outcome[k], v[k]);
        }
    }
    repartition_metrics(b, job, g);
    help(b, "sluice_keys_on_two_partitions_total", "counter", "Keys seen on a second input "
         "partition, of one key in 16 sampled: the input is not keyed by the job's key.");
    sbuf_printf(b, "sluice_keys_on_two_partitions_total %" PRIu64 "\n",
                keycheck_count(obs->host.keys));
    help(b, "sluice_repartition_duplicates_total", "counter", "Records of repartition topics "
         "dropped because stage 1 had produced them before (a replay after a crash).");
    sbuf_printf(b, "sluice_repartition_duplicates_total %" PRIu64 "\n", g->rp_dups);
    help(b, "sluice_repartition_bad_headers_total", "counter", "Records of repartition topics "
         "skipped for a missing or malformed sluice-rp header.");
    sbuf_printf(b, "sluice_repartition_bad_headers_total %" PRIu64 "\n", g->rp_bad);
    help(b, "sluice_shards", "gauge", "Shards (input partitions with their state) this "
         "instance owns.");
    sbuf_printf(b, "sluice_shards %zu\n", g->nshards);
    static const struct {
        const char *name, *type, *help;
        size_t off;
        double scale;
    } shard_figures[] = {
        { "sluice_shard_handoffs_total", "counter", "Shards restored from a snapshot the "
          "group's commit named (taken over, or after a restart).",
          offsetof(struct chkpt_stats, handoffs), 1 },
        { "sluice_shard_restore_seconds_total", "counter", "Time spent restoring shards.",
          offsetof(struct chkpt_stats, restore_ms), 1e-3 },
        { "sluice_shard_snapshots_damaged_total", "counter", "Named snapshots that could not "
          "be used (the previous one was tried).", offsetof(struct chkpt_stats, damaged), 1 },
        { "sluice_shard_snapshots_published_total", "counter", "Shard snapshots published "
          "(committed with the partition's offset).", offsetof(struct chkpt_stats, published), 1 },
        { "sluice_commits_fenced_total", "counter", "Commits the group refused: the partition "
          "belongs to another instance now.", offsetof(struct chkpt_stats, fenced), 1 },
        { "sluice_store_errors_total", "counter", "Uploads and downloads of the shared store "
          "that failed.", offsetof(struct chkpt_stats, store_errors), 1 },
        { "sluice_store_uploaded_bytes_total", "counter", "Bytes uploaded to the shared store.",
          offsetof(struct chkpt_stats, uploaded), 1 },
        { "sluice_store_downloaded_bytes_total", "counter", "Bytes downloaded from the shared "
          "store.", offsetof(struct chkpt_stats, downloaded), 1 },
    };
    for (size_t i = 0; i < sizeof(shard_figures) / sizeof(shard_figures[0]); i++) {
        uint64_t v;
        memcpy(&v, (const char *)ck + shard_figures[i].off, sizeof(v));
        help(b, shard_figures[i].name, shard_figures[i].type, shard_figures[i].help);
        if (shard_figures[i].scale == 1)
            sbuf_printf(b, "%s %" PRIu64 "\n", shard_figures[i].name, v);
        else
            sbuf_printf(b, "%s %.3f\n", shard_figures[i].name, (double)v * shard_figures[i].scale);
    }
    help(b, "process_start_time_seconds", "gauge", "Start time of the process, Unix time.");
    sbuf_printf(b, "process_start_time_seconds %.3f\n", (double)obs->host.started_ms / 1e3);
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    help(b, "process_resident_memory_bytes", "gauge", "Resident memory of the process.");
    sbuf_printf(b, "process_resident_memory_bytes %ld\n", resident * sysconf(_SC_PAGESIZE));
    help(b, "sluice_restored_info", "gauge", "The checkpoint or savepoint this run restored.");
    SBUF_LIT(b, "sluice_restored_info{path=\"");
    label(b, ck->restored_from[0] ? ck->restored_from : "none");
    SBUF_LIT(b, "\"} 1\n");
}

static void json_time(struct sbuf *b, int64_t ms)
{
    char t[64];
    if (ms == WM_MIN || ms == WM_MAX) {
        SBUF_LIT(b, "null");
        return;
    }
    evtime_format(ms, t);
    sbuf_printf(b, "\"%s\"", t);
}

/* -1 (not known yet) is null */
static void json_int(struct sbuf *b, int64_t v)
{
    if (v < 0)
        SBUF_LIT(b, "null");
    else
        sbuf_printf(b, "%" PRId64, v);
}

/* s as a JSON string, null when NULL or empty; bytes that are not
 * well-formed UTF-8 (a log line may quote input) become '?', so the text
 * stays JSON whatever it holds. */
static void json_str(struct sbuf *b, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *clean = n > 0 ? malloc(n) : NULL;
    if (clean == NULL) {
        SBUF_LIT(b, "null");
        return;
    }
    fmt_json_string(b, clean, fmt_utf8_clean(clean, s, n));
    free(clean);
}

static const char *level_name(enum log_level l)
{
    return l == LOG_ERR ? "error" : l == LOG_WARNING ? "warning" : "notice";
}

static void status_sources(const struct observe *obs, const struct totals *t, struct sbuf *b,
                           const char *self)
{
    const struct graph *g = obs->host.g;
    const struct job *job = g->job;
    static int32_t ids[MAXP];
    static int64_t wms[MAXP];
    for (size_t s = 0; s < job->nsources; s++) {
        const struct job_source *js = &job->sources[s];
        const struct source *src = &g->src[s];
        char member[256];
        status_member(src, member, sizeof(member));
        sbuf_printf(b, "%s{\"name\":", s ? "," : "");
        json_str(b, js->name);
        sbuf_printf(b, ",\"type\":\"%s\",\"records_in\":%" PRIu64 ",\"records_invalid\":%"
                    PRIu64 ",\"member\":", js->type->name, t->in[s], totals_invalid(t, s));
        json_str(b, member);
        SBUF_LIT(b, ",\"watermark\":");
        json_time(b, graph_watermark(g, (int)s));
        SBUF_LIT(b, ",\"partitions\":[");
        size_t np = graph_partitions(g, (int)s, ids, wms, MAXP);
        for (size_t i = 0; i < np; i++) {
            int64_t next = offsets_next(&g->offs[s], ids[i]);
            int64_t lag = status_lag(src, ids[i], next);
            sbuf_printf(b, "%s{\"partition\":%" PRId32 ",\"next_offset\":", i ? "," : "", ids[i]);
            json_int(b, next);
            SBUF_LIT(b, ",\"lag\":");
            json_int(b, lag);
            SBUF_LIT(b, ",\"watermark\":");
            json_time(b, wms[i]);
            SBUF_LIT(b, ",\"owner\":");
            json_str(b, member[0] ? member : self);
            sbuf_putc(b, '}');
        }
        SBUF_LIT(b, "]}");
    }
}

static void status_checkpoints(const struct observe *obs, struct sbuf *b)
{
    const struct chkpt_stats *ck = chkpt_stats(obs->host.ck);
    sbuf_printf(b, "\"checkpoints\":{\"complete\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"last\":",
                ck->ok, ck->failed);
    if (ck->last_at_ms == 0) {
        SBUF_LIT(b, "null");
    } else {
        sbuf_printf(b, "{\"id\":%" PRIu64 ",\"at\":", ck->last_id);
        json_time(b, ck->last_at_ms);
        sbuf_printf(b, ",\"duration_ms\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"stall_us\":%" PRIu64
                    "}", ck->last_ms, ck->last_bytes, ck->last_stall_us);
    }
    SBUF_LIT(b, ",\"history\":[");
    for (uint64_t i = ck->nhistory, n = 0; i > 0 && n < CHKPT_HISTORY; i--, n++) {
        const struct chkpt_record *h = &ck->history[(i - 1) % CHKPT_HISTORY];
        sbuf_printf(b, "%s{\"id\":%" PRIu64 ",\"kind\":\"%s\",\"result\":\"%s\",\"at\":",
                    n ? "," : "", h->id, h->savepoint ? "savepoint" : "checkpoint",
                    h->ok ? "complete" : "failed");
        json_time(b, h->at_ms);
        sbuf_printf(b, ",\"duration_ms\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"stall_us\":%" PRIu64
                    ",\"shards\":%zu,\"error\":", h->ms, h->bytes, h->stall_us, h->shards);
        json_str(b, h->why);
        sbuf_putc(b, '}');
    }
    SBUF_LIT(b, "],\"restored_from\":");
    json_str(b, ck->restored_from);
    sbuf_printf(b, ",\"handoffs\":%" PRIu64 ",\"fenced_commits\":%" PRIu64 "}",
                ck->handoffs, ck->fenced);
}

static void status(const struct observe *obs, const struct totals *t, struct sbuf *b)
{
    const struct graph *g = obs->host.g;
    const struct job *job = g->job;
    char self[300];
    status_instance(self, sizeof(self));
    SBUF_LIT(b, "{\"job\":");
    json_str(b, job->name);
    sbuf_printf(b, ",\"version\":\"%s\",\"state\":\"%s\",\"instance\":", SLUICE_VERSION,
                run_state_shown(obs->host.state(obs->host.ud)));
    json_str(b, self);
    SBUF_LIT(b, ",\"instance_id\":");
    json_str(b, getenv("SLUICE_INSTANCE_ID"));
    SBUF_LIT(b, ",\"started\":");
    json_time(b, obs->host.started_ms);
    SBUF_LIT(b, ",\"now\":");
    json_time(b, status_now_ms());
    sbuf_printf(b, ",\"backpressure\":%s,\"sources\":[",
                obs->host.backpressure(obs->host.ud) ? "true" : "false");
    status_sources(obs, t, b, self);
    SBUF_LIT(b, "],\"operators\":[");
    for (size_t o = 0; o < job->noperators; o++) {
        const struct job_operator *op = &job->operators[o];
        sbuf_printf(b, "%s{\"name\":", o ? "," : "");
        json_str(b, op->name);
        SBUF_LIT(b, ",\"from\":");
        json_str(b, job->sources[op->source].name);
        sbuf_printf(b, ",\"window\":\"%s\",\"to\":[", op->type->name);
        for (size_t k = 0; k < op->nsinks; k++) {
            if (k)
                sbuf_putc(b, ',');
            json_str(b, job->sinks[op->sinks[k]].name);
        }
        sbuf_printf(b, "],\"windows_fired\":%" PRIu64 ",\"records_late\":%" PRIu64
                    ",\"results_lost\":%" PRIu64 "}", t->fired[o], t->late[o], t->lost[o]);
    }
    SBUF_LIT(b, "],\"sinks\":[");
    for (size_t i = 0; i < job->nsinks; i++) {
        const struct sink *s = &g->snk[i];
        sbuf_printf(b, "%s{\"name\":", i ? "," : "");
        json_str(b, job->sinks[i].name);
        sbuf_printf(b, ",\"type\":\"%s\",\"pending\":%zu,\"written\":%" PRIu64
                    ",\"coalesced\":%" PRIu64 ",\"retried\":%" PRIu64 ",\"failed\":%" PRIu64 "}",
                    job->sinks[i].type->name, s->impl ? s->ops->pending(s) : 0,
                    t->written[i], t->coalesced[i], t->retried[i], t->failed[i]);
    }
    struct engine_stats st = { 0 };
    graph_stats(g, &st);
    sbuf_printf(b, "],\"state_size\":{\"keys\":%" PRIu64 ",\"bytes\":%" PRIu64 "},",
                st.state_keys, st.state_bytes);
    status_checkpoints(obs, b);
    SBUF_LIT(b, ",\"shards\":[");
    for (size_t i = 0; i < g->nshards; i++) {
        const struct shard *sh = g->shards[i];
        sbuf_printf(b, "%s{\"partition\":%" PRId32 ",\"next_offset\":", i ? "," : "", sh->id);
        int64_t next = -1;
        for (size_t s = 0; s < job->nsources && next < 0; s++)
            next = offsets_next(&g->offs[s], sh->id);
        json_int(b, next);
        SBUF_LIT(b, ",\"watermark\":");
        json_time(b, job->nsources ? engine_watermark(sh->eng, 0) : WM_MIN);
        SBUF_LIT(b, ",\"snapshot\":");
        json_str(b, sh->snap_obj);
        SBUF_LIT(b, ",\"restored_from\":");
        json_str(b, sh->restored_from);
        sbuf_printf(b, ",\"restore_ms\":%" PRIu64 ",\"partitions\":%zu}", sh->restore_ms,
                    sh->nparts);
    }
    SBUF_LIT(b, "],\"errors\":[");
    struct log_entry recent[LOG_RECENT];
    size_t nr = log_recent(recent, LOG_RECENT);
    for (size_t i = 0; i < nr; i++) {
        sbuf_printf(b, "%s{\"at\":", i ? "," : "");
        json_time(b, recent[i].at_ms);
        sbuf_printf(b, ",\"level\":\"%s\",\"component\":", level_name(recent[i].level));
        json_str(b, recent[i].component);
        SBUF_LIT(b, ",\"text\":");
        json_str(b, recent[i].text);
        sbuf_putc(b, '}');
    }
    SBUF_LIT(b, "]}\n");
}

/* The HTTP endpoint's own figures (http.h), of the server req came
 * through. */
static void http_metrics(struct sbuf *b, const struct http_req *req)
{
    static const struct {
        const char *name, *labels, *type, *help;
        size_t off;
    } figures[] = {
        { "sluice_http_connections_total", "", "counter", "HTTP connections accepted.",
          offsetof(struct http_stats, accepted) },
        { "sluice_http_connections_open", "", "gauge", "HTTP connections open now.",
          offsetof(struct http_stats, open) },
        { "sluice_http_connections_evicted_total", "", "counter", "HTTP connections closed "
          "to let a new one in (the endpoint was full).", offsetof(struct http_stats, evicted) },
        { "sluice_http_connections_refused_total", "", "counter", "New HTTP connections "
          "closed at once (every slot busy with a request being answered, or no memory).",
          offsetof(struct http_stats, refused) },
        { "sluice_http_accept_errors_total", "", "counter", "accept() failures on the HTTP "
          "endpoint.", offsetof(struct http_stats, accept_errors) },
        { "sluice_http_requests_rejected_total", "{reason=\"bad_request\"}", "counter",
          "HTTP requests answered 400 (bad_request), or 413 and 414 (too_large).",
          offsetof(struct http_stats, bad_request) },
        { "sluice_http_requests_rejected_total", "{reason=\"too_large\"}", NULL, NULL,
          offsetof(struct http_stats, too_large) },
        { "sluice_http_timeouts_total", "{phase=\"request\"}", "counter", "HTTP connections "
          "closed at a deadline: no whole request in time (request), the answer not taken "
          "in time (write).", offsetof(struct http_stats, request_timeouts) },
        { "sluice_http_timeouts_total", "{phase=\"write\"}", NULL, NULL,
          offsetof(struct http_stats, write_timeouts) },
    };
    struct http_stats hs;
    http_stats(http_req_server(req), &hs);
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        uint64_t v;
        memcpy(&v, (const char *)&hs + figures[i].off, sizeof(v));
        if (figures[i].type != NULL)
            help(b, figures[i].name, figures[i].type, figures[i].help);
        sbuf_printf(b, "%s%s %" PRIu64 "\n", figures[i].name, figures[i].labels, v);
    }
}

enum report { REPORT_METRICS, REPORT_STATUS, REPORT_PAGE };

/* GET /metrics, /status or /: the body, built from the run's counters. */
static void report(const struct observe *obs, struct http_req *req, enum report what)
{
    const struct graph *g = obs->host.g;
    struct sbuf b = { 0 };
    struct totals t;
    if (g->src == NULL || g->snk == NULL || g->offs == NULL || /* out of memory */
        totals_new(g->job, &t) < 0) {
        http_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    counters_read(obs->host.counters, &t);
    if (what == REPORT_PAGE) {
        struct status_view v = { g, &t, chkpt_stats(obs->host.ck),
                                 run_state_shown(obs->host.state(obs->host.ud)),
                                 obs->host.backpressure(obs->host.ud), obs->host.started_ms };
        status_page(&v, &b);
        http_respond(req, 200, "text/html; charset=utf-8", b.p ? b.p : "", b.len);
    } else if (what == REPORT_METRICS) {
        metrics(obs, &t, &b);
        http_metrics(&b, req);
        http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "",
                     b.len);
    } else {
        status(obs, &t, &b);
        http_respond(req, 200, "application/json", b.p ? b.p : "", b.len);
    }
    totals_free(&t);
    sbuf_free(&b);
}

/* The end of a POST /savepoint's savepoint: its path, or 500. */
static void savepoint_done(void *ud, enum ckpt_kind kind, uint64_t id, const char *path, int rc)
{
    struct observe *obs = ud;
    struct http_req *req = obs->savepoint_req;
    (void)kind;
    (void)id;
    (void)rc;                       /* path is NULL unless rc is 0 */
    if (req == NULL)
        return;
    obs->savepoint_req = NULL;
    struct sbuf b = { 0 };
    if (path != NULL) {
        SBUF_LIT(&b, "{\"path\":");
        fmt_json_string(&b, path, strlen(path));
        SBUF_LIT(&b, "}\n");
        http_respond(req, 200, "application/json", b.p, b.len);
    } else {
        http_respond(req, 500, "application/json", "{\"error\":\"the savepoint failed\"}\n", 33);
    }
    sbuf_free(&b);
}

static void savepoint(struct observe *obs, struct http_req *req)
{
    if (obs->host.state(obs->host.ud) != RUN_RUNNING || obs->savepoint_req != NULL) {
        http_respond(req, 503, "text/plain", "busy: try again\n", 16);
        return;
    }
    obs->savepoint_req = req;         /* answered when the savepoint ends */
    LOG(LOG_NOTICE, "http", "POST /savepoint: taking a savepoint");
    int rc = chkpt_take(obs->host.ck, CKPT_SAVEPOINT, savepoint_done, obs);
    if (rc < 0) {
        log_msg(LOG_ERR, "http", "POST /savepoint: %s", strerror(-rc));
        obs->savepoint_req = NULL;
        http_respond(req, 503, "text/plain", "busy: try again\n", 16);
    }
}

void observe_request(void *ud, struct http_req *req, const char *method, const char *path)
{
    struct observe *obs = ud;
    int get = strcmp(method, "GET") == 0;
    if (strcmp(path, "/metrics") == 0 && get) {
        report(obs, req, REPORT_METRICS);
    } else if (strcmp(path, "/status") == 0 && get) {
        report(obs, req, REPORT_STATUS);
    } else if ((strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) && get) {
        report(obs, req, REPORT_PAGE);
    } else if (strcmp(path, "/healthz") == 0 && get) {
        int ok = run_state_live(obs->host.state(obs->host.ud));
        http_respond(req, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "stopping\n",
                     ok ? 3 : 9);
    } else if (strcmp(path, "/savepoint") == 0 && strcmp(method, "POST") == 0) {
        savepoint(obs, req);
    } else if (strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
               strcmp(path, "/status") == 0 || strcmp(path, "/savepoint") == 0 ||
               strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        http_respond(req, 405, "text/plain", "method not allowed\n", 19);
    } else {
        http_respond(req, 404, "text/plain", "not found\n", 10);
    }
}

int observe_new(const struct observe_host *host, struct observe **out)
{
    struct observe *obs = calloc(1, sizeof(*obs));
    if (obs == NULL)
        return -ENOMEM;
    obs->host = *host;
    *out = obs;
    return 0;
}

void observe_free(struct observe *obs)
{
    free(obs);
}
