/*
 * test_repartition.c - stage 1 of a repartitioning (connectors/repartition.c)
 * against the embedded broker (librdkafka's mock cluster, in process), on a
 * libuv loop with a fake host.
 *
 * The job model is built by the loader from a plain job file and then given
 * its roles by hand (source 0 plays the SRC_STAGE1 source, source 1 the
 * SRC_REPARTITION source it feeds), so these tests do not depend on how the
 * loader decides to repartition.  What is checked, reading the repartition
 * topic back with a plain consumer: every valid input record is there once,
 * unchanged, in the partition its key text hashes to, keyed by that text,
 * with a 'd' header naming its input partition and offset and the greatest
 * event time so far; records of one input partition keep their order in
 * each repartition partition; invalid records go to host->invalid, counted
 * by kind, and nowhere else; every repartition partition gets an 'e'
 * marker from every input partition after its last record (bounded mode)
 * and 'w' markers as event time advances; the group <group>-stage1 has the
 * input's end offsets committed at the end, and nothing committed while the
 * produces are not acknowledged (the broker refusing them for a while).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "../../config/job.h"
#include "../../connectors/broker.h"
#include "../../connectors/connector.h"
#include "../../connectors/rp_header.h"
#include "suites.h"

#define NSRC 3                          /* input partitions */
#define NRP 4                           /* repartition partitions */

/* ---- the harness ------------------------------------------------------------------ */

static uv_loop_t loop;
static struct broker *broker;
static struct job *job;
static struct source src;
static struct source_host host;
static int targets[1], keys[1];
static int failed, finished, closed;
static uint64_t invalid_n, invalid_kind[REJ_NKINDS];

static void h_invalid(void *ud, int source, int32_t part, int64_t off, const char *data,
                      size_t len, const struct reject *rej)
{
    (void)ud, (void)part, (void)off, (void)data, (void)len;
    ck_assert_int_eq(source, 0);
    invalid_n++;
    invalid_kind[rej->kind]++;
}

static int h_record(void *ud, int source, int32_t part, int64_t off, int64_t next,
                    const char *data, size_t len, int64_t ts, const struct rp_meta *rp)
{
    (void)ud, (void)source, (void)part, (void)off, (void)next, (void)data, (void)len, (void)ts;
    (void)rp;
    ck_abort_msg("stage 1 handed a record to the host");
    return 0;
}

static void h_failed(void *ud, int source)
{
    (void)ud, (void)source;
    failed++;
}

static void h_finished(void *ud, int source)
{
    (void)ud, (void)source;
    finished++;
}

static void h_unfinished(void *ud, int source)
{
    (void)ud, (void)source;
    finished--;
}

static const char job_text[] =
    "job: t\n"
    "sources:\n"
    "  in:\n"
    "    type: kafka\n    brokers: %s\n    topic: in\n    group: g\n%s"
    "    schema: { user: string, n: int }\n"
    "    event_time: { field: ts, format: epoch_ms }\n"
    "  rp:\n"
    "    type: kafka\n    brokers: %s\n    topic: rp\n    group: g\n"
    "    schema: { user: string, n: int }\n"
    "    event_time: { field: ts, format: epoch_ms }\n"
    "operators:\n"
    "  o: { from: in, key_by: user, window: { type: global, trigger: count 1 },"
    " aggregates: { events: count() }, to: out }\n"
    "sinks:\n  out: { type: stdout }\n";

/* The job, its input with extra lines (its properties) or "". */
static void load_job(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof(text), job_text, broker_bootstrap(broker), extra,
             broker_bootstrap(broker));
    struct diags d = { 0 };
    job_free(job);
    int rc = job_load_buffer("t.yaml", text, strlen(text), NULL, &job, &d);
    ck_assert_msg(rc == 0, "%s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    /* the roles the loader gives a repartitioned input (config/job.h) */
    struct job_source *in = &job->sources[0], *rp = &job->sources[1];
    targets[0] = 1;
    keys[0] = 0;                        /* user */
    in->role = SRC_STAGE1;
    in->origin = 0;
    in->targets = targets;
    in->ntargets = 1;
    rp->role = SRC_REPARTITION;
    rp->origin = 0;
    rp->stage1 = 0;
    rp->rp_topic = "rp";
    rp->rp_keys = keys;
    rp->nrp_keys = 1;
}

static void setup(void)
{
    char err[256], reply[64];
    const char *topics[] = { "in" };
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    int rc = broker_start(&loop, 0, NSRC, topics, 1, &broker, err, sizeof(err));
    ck_assert_msg(rc == 0, "broker: %s", err);
    ck_assert_int_eq(broker_command(broker, "topic rp 4", reply, sizeof(reply)), 0);
    job = NULL;
    load_job("");
    host = (struct source_host){ .loop = &loop, .record = h_record, .invalid = h_invalid,
                                 .failed = h_failed, .finished = h_finished,
                                 .unfinished = h_unfinished };
    failed = finished = closed = 0;
    invalid_n = 0;
    memset(invalid_kind, 0, sizeof(invalid_kind));
}

static void teardown(void)
{
    broker_stop(broker);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    job_free(job);
}

static rd_kafka_conf_t *conf_with(const char *k1, const char *v1, const char *k2, const char *v2)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    ck_assert(rd_kafka_conf_set(c, "bootstrap.servers", broker_bootstrap(broker), err,
                                sizeof(err)) == RD_KAFKA_CONF_OK);
    if (k1 != NULL)
        ck_assert_msg(rd_kafka_conf_set(c, k1, v1, err, sizeof(err)) == RD_KAFKA_CONF_OK, "%s", err);
    if (k2 != NULL)
        ck_assert_msg(rd_kafka_conf_set(c, k2, v2, err, sizeof(err)) == RD_KAFKA_CONF_OK, "%s", err);
    return c;
}

/* Input records: per input partition, `n` records of users u0..u9 with
 * event times base + i, and every 7th one invalid (n is a string). */
struct input {
    int n;
    int64_t base;
    int from;                           /* produce_input: records from..n-1 only */
};

static void record_text(int part, int i, const struct input *in, char *buf, size_t size)
{
    if (i % 7 == 6)
        snprintf(buf, size, "{\"user\":\"u%d\",\"n\":\"bad\",\"ts\":%" PRId64 "}", (i * 3 + part) % 10,
                 in->base + i);
    else
        snprintf(buf, size, "{\"user\":\"u%d\",\"n\":%d,\"ts\":%" PRId64 "}", (i * 3 + part) % 10,
                 part * 1000 + i, in->base + i);
}

static void produce_input(const struct input *in)
{
    char err[256], buf[128];
    rd_kafka_conf_t *c = conf_with("linger.ms", "0", NULL, NULL);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    for (int part = 0; part < NSRC; part++)
        for (int i = in->from; i < in->n; i++) {
            record_text(part, i, in, buf, sizeof(buf));
            rd_kafka_resp_err_t e = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(buf, strlen(buf)),
                RD_KAFKA_V_END);
            ck_assert_msg(e == 0, "produce: %s", rd_kafka_err2str(e));
        }
    ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

/* ---- running stage 1 -------------------------------------------------------------- */

static int (*until)(void);
static uv_timer_t deadline, check;

static void on_check(uv_timer_t *t)
{
    (void)t;
    if (until())
        uv_stop(&loop);
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    uv_stop(&loop);
}

/* Runs the loop until cond() holds or timeout_ms pass; returns cond(). */
static int run_until(int (*cond)(void), int timeout_ms)
{
    until = cond;
    uv_timer_init(&loop, &deadline);
    uv_timer_init(&loop, &check);
    uv_timer_start(&deadline, on_deadline, (uint64_t)timeout_ms, 0);
    uv_timer_start(&check, on_check, 20, 20);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&check, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return cond();
}

static void start_stage1(int bounded)
{
    host.bounded = bounded;
    src = (struct source){ .ops = &repartition_source_ops, .job = job, .js = &job->sources[0],
                           .index = 0, .host = &host };
    snprintf(src.name, sizeof(src.name), "repartition in");
    ck_assert_int_eq(src.ops->start(&src), 0);
}

static void on_src_closed(struct source *s)
{
    (void)s;
    closed++;
}

static int is_closed(void)
{
    return closed > 0;
}

static void close_stage1(void)
{
    src.ops->close(&src, on_src_closed);
    ck_assert_msg(run_until(is_closed, 30000), "stage 1 did not close");
}

static int is_finished(void)
{
    return finished > 0 || failed > 0;
}

/* ---- reading the repartition topic back ------------------------------------------- */

struct out {
    int32_t part;
    int64_t offset;
    char key[64], value[128];
    struct rp_meta m;
};

static struct out *outs;
static size_t nout;

static void read_rp(void)
{
    char err[256];
    rd_kafka_conf_t *c = conf_with("group.id", "reader", "enable.partition.eof", "true");
    /* as stage 2 reads: records of transactions not committed are not read */
    ck_assert(rd_kafka_conf_set(c, "isolation.level", "read_committed", err, sizeof(err)) ==
              RD_KAFKA_CONF_OK);
    rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    ck_assert_msg(k != NULL, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NRP);
    for (int r = 0; r < NRP; r++)
        rd_kafka_topic_partition_list_add(l, "rp", r)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(k, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    free(outs);
    outs = NULL;
    nout = 0;
    size_t cap = 0;
    /* each partition read to the end offset it has now (its EOF event
     * alone could come before a fetch that was still on its way) */
    int64_t end[NRP];
    for (int r = 0; r < NRP; r++) {
        int64_t lo;
        ck_assert_int_eq(rd_kafka_query_watermark_offsets(k, "rp", r, &lo, &end[r], 10000), 0);
    }
    int64_t at[NRP] = { 0 };
    int eof = 0;
    uint64_t stop = uv_hrtime() + 20000000000ULL;
    while (eof < NRP && uv_hrtime() < stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ;
        } else {
            ck_assert_msg(m->err == 0, "reading rp: %s", rd_kafka_message_errstr(m));
            if (nout == cap) {
                cap = cap ? cap * 2 : 256;
                outs = realloc(outs, cap * sizeof(*outs));
                ck_assert_ptr_nonnull(outs);
            }
            struct out *o = &outs[nout++];
            memset(o, 0, sizeof(*o));
            o->part = m->partition;
            o->offset = m->offset;
            ck_assert_uint_lt(m->key_len, sizeof(o->key));
            ck_assert_uint_lt(m->len, sizeof(o->value));
            if (m->key_len)
                memcpy(o->key, m->key, m->key_len);
            if (m->len)
                memcpy(o->value, m->payload, m->len);
            rd_kafka_headers_t *hs = NULL;
            const void *hv;
            size_t hl;
            ck_assert_msg(rd_kafka_message_headers(m, &hs) == 0 &&
                          rd_kafka_header_get_last(hs, RP_HEADER, &hv, &hl) == 0,
                          "rp [%d] @%" PRId64 " has no %s header", m->partition, m->offset,
                          RP_HEADER);
            ck_assert_msg(rp_meta_parse(hv, hl, &o->m) == 0, "rp [%d] @%" PRId64 ": header "
                          "'%.*s' refused", m->partition, m->offset, (int)hl, (const char *)hv);
            at[m->partition] = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
        eof = 0;
        for (int r = 0; r < NRP; r++)
            eof += at[r] >= end[r];
    }
    ck_assert_msg(eof == NRP, "only %d of %d repartition partitions read to their end", eof, NRP);
    rd_kafka_consumer_close(k);
    rd_kafka_destroy(k);
}

/* Every valid input record is in rp once, unchanged, in its key's
 * partition, with its position; per (rp partition, source) the offsets
 * grow; returns how many data records were read. */
static size_t check_data(const struct input *in)
{
    size_t ndata = 0;
    char buf[128], key[64];
    for (int part = 0; part < NSRC; part++)
        for (int i = 0; i < in->n; i++) {
            record_text(part, i, in, buf, sizeof(buf));
            int found = 0;
            for (size_t j = 0; j < nout; j++) {
                const struct out *o = &outs[j];
                if (o->m.kind != RP_DATA || o->m.src != part || o->m.off != i)
                    continue;
                found++;
                ck_assert_str_eq(o->value, buf);
                snprintf(key, sizeof(key), "[\"u%d\"]", (i * 3 + part) % 10);
                ck_assert_str_eq(o->key, key);
                ck_assert_int_eq(o->part, rp_partition(key, strlen(key), NRP));
                ck_assert_int_eq(o->m.nsrc, NSRC);
                /* the greatest event time so far on its input partition */
                ck_assert_int_eq(o->m.max_ts, in->base + i);
            }
            ck_assert_msg(found == (i % 7 == 6 ? 0 : 1), "input [%d] @%d is in rp %d times",
                          part, i, found);
        }
    for (size_t j = 0; j < nout; j++) {
        if (outs[j].m.kind != RP_DATA)
            continue;
        ndata++;
        for (size_t q = j + 1; q < nout; q++)
            if (outs[q].part == outs[j].part && outs[q].m.kind == RP_DATA &&
                outs[q].m.src == outs[j].m.src)
                ck_assert_msg(outs[q].m.off > outs[j].m.off, "rp [%d]: source %d offset %" PRId64
                              " after %" PRId64, outs[q].part, outs[q].m.src, outs[q].m.off,
                              outs[j].m.off);
    }
    return ndata;
}

/* The group <group>-stage1's committed offsets of the input partitions. */
static void committed(int64_t out[NSRC])
{
    char err[256];
    rd_kafka_conf_t *c = conf_with("group.id", "g-stage1", NULL, NULL);
    rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    ck_assert_msg(k != NULL, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NSRC);
    for (int p = 0; p < NSRC; p++)
        rd_kafka_topic_partition_list_add(l, "in", p);
    rd_kafka_resp_err_t e = rd_kafka_committed(k, l, 10000);
    ck_assert_msg(e == 0, "committed: %s", rd_kafka_err2str(e));
    for (int p = 0; p < NSRC; p++)
        out[p] = l->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(k);
}

static int valid_per_partition(const struct input *in)
{
    int n = 0;
    for (int i = 0; i < in->n; i++)
        n += i % 7 != 6;
    return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Produces in, runs stage 1 in bounded mode until it finishes (without
 * failing), and closes it; its figures in *st and *cs. */
static void run_bounded(const struct input *in, struct source_own_stats *st,
                        struct source_commit_stats *cs)
{
    produce_input(in);
    start_stage1(1);
    ck_assert_msg(run_until(is_finished, 30000), "stage 1 did not finish");
    ck_assert_int_eq(failed, 0);
    src.ops->own_stats(&src, st);
    src.ops->commit_stats(&src, cs);
    close_stage1();
}

/* Bounded: every record routed, invalid ones reported, 'e' markers after
 * the last record of each input partition in every repartition partition,
 * the input's end committed, and the source finished. */
START_TEST(bounded_routes_and_ends)
{
    struct input in = { .n = 40, .base = 1700000000000LL };
    struct source_own_stats st;
    struct source_commit_stats cs;
    run_bounded(&in, &st, &cs);

    int valid = valid_per_partition(&in);
    ck_assert_uint_eq(invalid_n, (uint64_t)(NSRC * (in.n - valid)));
    ck_assert_uint_eq(invalid_kind[REJ_TYPE], invalid_n);
    ck_assert_uint_eq(st.records_in, (uint64_t)(NSRC * in.n));
    ck_assert_uint_eq(st.invalid[REJ_TYPE], invalid_n);
    ck_assert_uint_eq(st.produced, (uint64_t)(NSRC * valid));
    ck_assert_uint_eq(st.in_flight, 0);

    read_rp();
    ck_assert_uint_eq(check_data(&in), (size_t)(NSRC * valid));
    /* one 'e' per (rp partition, source), after that source's last record */
    for (int r = 0; r < NRP; r++)
        for (int s = 0; s < NSRC; s++) {
            int ends = 0;
            int64_t end_at = -1, last_data = -1;
            for (size_t j = 0; j < nout; j++) {
                const struct out *o = &outs[j];
                if (o->part != r || o->m.src != s)
                    continue;
                if (o->m.kind == RP_END) {
                    ends++;
                    end_at = o->offset;
                    ck_assert_int_eq(o->m.off, in.n);       /* the next offset: the end */
                    ck_assert_int_eq(o->m.max_ts, in.base + in.n - 1);
                    ck_assert_msg(o->key[0] == '\0' && o->value[0] == '\0',
                                  "an end marker with a key or a value");
                } else if (o->m.kind == RP_DATA) {
                    last_data = o->offset;
                }
            }
            ck_assert_msg(ends == 1, "rp [%d] has %d end markers of source %d", r, ends, s);
            ck_assert_msg(end_at > last_data, "rp [%d]: the end marker of source %d at %" PRId64
                          " comes before its record at %" PRId64, r, s, end_at, last_data);
        }
    ck_assert_uint_ge(st.markers, (uint64_t)(NRP * NSRC));  /* the ends, and any 'w' */
}
END_TEST

/* A second bounded run over the same input: nothing is produced again
 * (the group has the end), and every partition sends its end markers at
 * once so that stage 2 can finish. */
START_TEST(bounded_rerun_sends_only_end_markers)
{
    struct input in = { .n = 10, .base = 1000 }, none = { 0 };
    struct source_own_stats st;
    struct source_commit_stats cs;
    run_bounded(&in, &st, &cs);
    read_rp();
    size_t first = nout;
    int64_t high[NRP] = { -1, -1, -1, -1 };     /* the last offset of each after run 1 */
    for (size_t j = 0; j < nout; j++)
        if (outs[j].offset > high[outs[j].part])
            high[outs[j].part] = outs[j].offset;

    finished = closed = 0;
    run_bounded(&none, &st, &cs);
    ck_assert_uint_eq(st.records_in, 0);
    ck_assert_uint_eq(st.produced, 0);
    ck_assert_uint_eq(st.markers, NRP * NSRC);
    read_rp();
    ck_assert_uint_eq(nout, first + NRP * NSRC);
    for (size_t j = 0; j < nout; j++) {
        if (outs[j].offset <= high[outs[j].part])
            continue;                   /* of the first run */
        ck_assert_int_eq(outs[j].m.kind, RP_END);
        ck_assert_int_eq(outs[j].m.off, in.n);
        ck_assert_int_eq(outs[j].m.max_ts, INT64_MIN);  /* nothing read in this run */
    }
}
END_TEST

static struct input slow_in = { .n = 30, .base = 5000 };

static int all_read(void)
{
    struct source_own_stats st;
    src.ops->own_stats(&src, &st);
    return st.records_in == (uint64_t)(NSRC * slow_in.n) || failed;
}

static int all_produced(void)
{
    struct source_own_stats st;
    src.ops->own_stats(&src, &st);
    return st.produced == (uint64_t)(NSRC * valid_per_partition(&slow_in)) || failed;
}

static int64_t commit_target[NSRC];

static int all_committed(void)
{
    int64_t c[NSRC];
    committed(c);
    for (int p = 0; p < NSRC; p++)
        if (c[p] != commit_target[p])
            return failed;
    return 1;
}

/* Unbounded, the broker refusing produce requests for a while: the input
 * is read, commits go out every interval, and none of them commits an
 * offset whose record is not acknowledged; once the produces pass, the
 * input's end is committed, and watermark markers reach every partition. */
START_TEST(commits_wait_for_deliveries)
{
    char reply[64];
    job->state.checkpoint_interval_ms = 200;
    produce_input(&slow_in);
    /* each produce request fails, and is retried 100 ms later: 8 s of
     * refusals, so that reading the input (slow under ASan on a loaded
     * machine: 25 refusals were once not enough) ends before any passes */
    ck_assert_int_eq(broker_command(broker, "produce-errors 80", reply, sizeof(reply)), 0);
    start_stage1(0);
    ck_assert_msg(run_until(all_read, 20000), "stage 1 did not read its input");
    struct source_own_stats st;
    src.ops->own_stats(&src, &st);
    if (st.produced == 0) {
        /* several commit intervals while nothing is acknowledged */
        for (int round = 0; round < 3; round++) {
            (void)run_until(all_produced, 300);
            src.ops->own_stats(&src, &st);
            int64_t c[NSRC];
            committed(c);
            for (int p = 0; p < NSRC; p++)
                ck_assert_msg(st.produced > 0 || c[p] <= 0, "input [%d] committed at %" PRId64
                              " before any record was acknowledged", p, c[p]);
        }
    } else {
        ck_abort_msg("the broker's produce errors did not hold the records back (%" PRIu64
                     " acknowledged at once); the test proves nothing", st.produced);
    }
    ck_assert_msg(run_until(all_produced, 30000), "the records were never acknowledged");
    for (int p = 0; p < NSRC; p++)
        commit_target[p] = slow_in.n;
    ck_assert_msg(run_until(all_committed, 10000), "the input's end was never committed");
    ck_assert_int_eq(failed, 0);
    src.ops->own_stats(&src, &st);
    ck_assert_uint_ge(st.commits, NSRC);
    ck_assert_uint_gt(st.markers, 0);
    struct source_commit_stats cs;
    src.ops->commit_stats(&src, &cs);
    ck_assert_uint_ge(cs.ok, NSRC);
    close_stage1();

    read_rp();
    check_data(&slow_in);
    /* 'w' markers: every rp partition hears of every source's event time */
    for (int r = 0; r < NRP; r++)
        for (int s = 0; s < NSRC; s++) {
            int64_t best = INT64_MIN;
            for (size_t j = 0; j < nout; j++)
                if (outs[j].part == r && outs[j].m.src == s && outs[j].m.kind == RP_WATERMARK &&
                    outs[j].m.max_ts > best)
                    best = outs[j].m.max_ts;
            ck_assert_msg(best == slow_in.base + slow_in.n - 1, "rp [%d]: the newest watermark "
                          "marker of source %d says %" PRId64 ", expected %" PRId64, r, s, best,
                          slow_in.base + slow_in.n - 1);
        }
}
END_TEST

/* repartition: { transactions: true }: the same records, in transactions
 * with the input positions; a read_committed reader sees every valid record
 * once and the end markers.  What the embedded broker cannot show (its
 * TxnOffsetCommit answers without storing the offsets, and it writes no
 * transaction markers, so nothing is ever hidden from read_committed): that
 * the group gets the positions, and that an aborted transaction's records
 * stay unseen.  Checked here: the transactional calls succeed in order, and
 * each commit carries every input partition. */
START_TEST(transactions_bounded)
{
    struct input in = { .n = 25, .base = 42 };
    job->sources[0].rp_transactions = 1;
    struct source_own_stats st;
    struct source_commit_stats cs;
    run_bounded(&in, &st, &cs);
    int valid = valid_per_partition(&in);
    ck_assert_uint_eq(st.produced, (uint64_t)(NSRC * valid));
    ck_assert_uint_ge(cs.ok, NSRC);
    ck_assert_uint_eq(cs.failed, 0);
    read_rp();
    ck_assert_uint_eq(check_data(&in), (size_t)(NSRC * valid));
    size_t ends = 0;
    for (size_t j = 0; j < nout; j++)
        ends += outs[j].m.kind == RP_END;
    ck_assert_uint_eq(ends, NRP * NSRC);
}
END_TEST

/* The host's backpressure: a paused stage 1 reads nothing (even across its
 * first assignment), and reads everything once resumed. */
START_TEST(pause_holds_the_input)
{
    produce_input(&slow_in);
    start_stage1(0);
    src.ops->pause(&src);
    ck_assert_msg(!run_until(all_read, 5000), "stage 1 read its input while paused");
    struct source_own_stats st;
    src.ops->own_stats(&src, &st);
    ck_assert_uint_eq(st.records_in, 0);
    src.ops->resume(&src);
    ck_assert_msg(run_until(all_produced, 20000), "stage 1 did not read after resume");
    ck_assert_int_eq(failed, 0);
    close_stage1();
}
END_TEST

/* A valid record larger than the repartition topic takes (the producer's
 * message.max.bytes, here 2000, less room for its key and header) is
 * rejected as too_big, reported to the host, and never produced; the
 * records around it go through. */
START_TEST(too_big_is_rejected)
{
    load_job("    properties: { message.max.bytes: \"2000\" }\n");
    char big[1700], err[256];
    int n = snprintf(big, sizeof(big), "{\"user\":\"u1\",\"n\":1,\"ts\":5,\"pad\":\"");
    memset(big + n, 'x', sizeof(big) - (size_t)n - 3);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    const char *small = "{\"user\":\"u2\",\"n\":2,\"ts\":6}";
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf_with(NULL, NULL, NULL, NULL), err,
                                 sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    for (int32_t part = 0; part < NSRC; part++) {
        const char *v = part == 1 ? big : small;
        ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_PARTITION(part),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_VALUE((void *)v, strlen(v)),
                                           RD_KAFKA_V_END), 0);
    }
    ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
    struct source_own_stats st;
    struct source_commit_stats cs;
    struct input none = { 0 };
    run_bounded(&none, &st, &cs);
    ck_assert_uint_eq(st.records_in, NSRC);
    ck_assert_uint_eq(st.invalid[REJ_TOO_BIG], 1);
    ck_assert_uint_eq(invalid_kind[REJ_TOO_BIG], 1);
    ck_assert_uint_eq(st.produced, NSRC - 1);
}
END_TEST

/* Two members of <group>-stage1 on one loop */
static struct source src2;

static int both_closed(void)
{
    return closed == 2;
}

/* The first member has committed on a revocation (nothing else commits in
 * this test: the interval is 10 minutes). */
static int handed_over(void)
{
    struct source_commit_stats cs;
    src.ops->commit_stats(&src, &cs);
    return cs.ok > 0 || cs.retried > 0 || cs.fenced > 0 || failed;
}

static struct input batch2 = { .n = 60, .base = 7000, .from = 30 };

static int both_read(void)
{
    struct source_own_stats a, b;
    src.ops->own_stats(&src, &a);
    src2.ops->own_stats(&src2, &b);
    return a.records_in + b.records_in == (uint64_t)(NSRC * batch2.n) || failed;
}

/* A second member joins: the first revokes partitions to it, waits for
 * their deliveries and commits them before they go, so the second resumes
 * where the first stopped: every record is read once over both, and the
 * second reads only what came after the hand-over. */
START_TEST(revocation_commits_before_handover)
{
    struct input batch1 = { .n = 30, .base = 7000 };
    job->state.checkpoint_interval_ms = 600000;
    produce_input(&batch1);
    start_stage1(0);
    ck_assert_msg(run_until(all_read, 20000), "the first member did not read the first batch");
    src2 = (struct source){ .ops = &repartition_source_ops, .job = job, .js = &job->sources[0],
                            .index = 0, .host = &host };
    snprintf(src2.name, sizeof(src2.name), "repartition in (2)");
    ck_assert_int_eq(src2.ops->start(&src2), 0);
    ck_assert_msg(run_until(handed_over, 30000), "no partition was revoked");
    struct source_commit_stats cs;
    src.ops->commit_stats(&src, &cs);
    ck_assert_msg(cs.ok > 0 && cs.retried == 0 && cs.fenced == 0, "the revocation's commit: "
                  "%" PRIu64 " ok, %" PRIu64 " retried, %" PRIu64 " fenced", cs.ok, cs.retried,
                  cs.fenced);
    int moved = (int)cs.ok;             /* one per partition committed */
    produce_input(&batch2);
    ck_assert_msg(run_until(both_read, 30000), "the second batch was not read once over both");
    ck_assert_int_eq(failed, 0);
    struct source_own_stats a, b;
    src.ops->own_stats(&src, &a);
    src2.ops->own_stats(&src2, &b);
    ck_assert_msg(b.records_in == (uint64_t)(moved * (batch2.n - batch2.from)), "the second "
                  "member read %" PRIu64 " records; expected %d (the second batch of the %d "
                  "partitions it took over)", b.records_in, moved * (batch2.n - batch2.from),
                  moved);
    closed = 0;
    src.ops->close(&src, on_src_closed);
    src2.ops->close(&src2, on_src_closed);
    ck_assert_msg(run_until(both_closed, 30000), "the members did not close");
    read_rp();
    struct input all = { .n = batch2.n, .base = batch2.base };
    check_data(&all);
}
END_TEST

Suite *repartition_suite(void)
{
    Suite *s = suite_create("repartition");
    TCase *t = tcase_create("stage1");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 90);
    tcase_add_test(t, bounded_routes_and_ends);
    tcase_add_test(t, bounded_rerun_sends_only_end_markers);
    tcase_add_test(t, commits_wait_for_deliveries);
    tcase_add_test(t, transactions_bounded);
    tcase_add_test(t, pause_holds_the_input);
    tcase_add_test(t, too_big_is_rejected);
    tcase_add_test(t, revocation_commits_before_handover);
    suite_add_tcase(s, t);
    return s;
}
