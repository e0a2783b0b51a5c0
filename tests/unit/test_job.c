/*
 * test_job.c - the job model built from whole job files.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../connectors/redis_conn.h"
#include "../../connectors/redis_sink.h"
#include "../../connectors/rp_header.h"
#include "../../engine/ckpt_file.h"
#include "../../engine/engine.h"
#include "suites.h"

static const char *test_env(const char *name, void *ud)
{
    (void)ud;
    if (strcmp(name, "SLUICE_KAFKA_BROKERS") == 0) return "k1:9092,k2:9092";
    if (strcmp(name, "SLUICE_REDIS_URL") == 0) return "redis://app:pw@cache:6390/3";
    if (strcmp(name, "SLUICE_HTTP") == 0) return "none";
    return NULL;
}

static const struct job_load_opts opts = { test_env, NULL };
static struct diags d;
static struct job *job;

static void teardown(void)
{
    job_free(job);
    job = NULL;
    diags_free(&d);
}

static void load_text(const char *text)
{
    job_free(job);
    job = NULL;
    diags_free(&d);
    job_load_buffer("t.yaml", text, strlen(text), &opts, &job, &d);
}

START_TEST(reference_job)
{
    ck_assert_int_eq(job_load("feature-pipeline.yaml", &opts, &job, &d), 0);
    ck_assert_uint_eq(diags_count(&d), 0);
    ck_assert_str_eq(job->name, "ecommerce-features");
    ck_assert_ptr_null(job->http);                  /* SLUICE_HTTP=none */
    ck_assert_str_eq(job->state.dir, "/var/lib/sluice");
    ck_assert_int_eq(job->state.checkpoint_interval_ms, 30000);
    ck_assert_int_eq(job->state.checkpoints_retained, 3);

    ck_assert_uint_eq(job->nsources, 1);
    const struct job_source *s = &job->sources[0];
    ck_assert_str_eq(s->name, "events");
    ck_assert_str_eq(s->type->name, "kafka");
    ck_assert_str_eq(cm_str(s->type->map, s->conf, "brokers"), "k1:9092,k2:9092");
    ck_assert_str_eq(cm_str(s->type->map, s->conf, "topic"), "ecommerce-events");
    ck_assert_str_eq(cm_str(s->type->map, s->conf, "group"), "feature-engineering-group");
    ck_assert_int_eq(*(const int *)cm_value(s->type->map, s->conf, "start"), 0); /* earliest */
    ck_assert_uint_eq(s->nfields, 3);
    ck_assert_str_eq(s->fields[2].name, "price");
    ck_assert_int_eq(s->fields[2].type, VT_DOUBLE);
    ck_assert_str_eq(s->ts_field, "event_time");
    ck_assert_int_eq(s->ts_format, TS_ISO8601);
    ck_assert_int_eq(s->tz_offset_s, 9 * 3600);
    ck_assert_int_eq(s->out_of_orderness_ms, 10000);
    ck_assert_int_eq(s->idle_timeout_ms, 60000);

    ck_assert_uint_eq(job->noperators, 2);
    const struct job_operator *uf = &job->operators[0];
    ck_assert_str_eq(uf->name, "user_features");
    ck_assert_int_eq(uf->source, 0);
    ck_assert_uint_eq(uf->nkeys, 1);
    ck_assert_int_eq(uf->key_fields[0], 0);
    ck_assert_str_eq(uf->type->name, "sliding");
    ck_assert_int_eq(uf->window.size_ms, 3600000);
    ck_assert_int_eq(uf->window.slide_ms, 600000);
    ck_assert_int_eq(uf->window.time, TIME_EVENT);
    ck_assert_int_eq(uf->window.late_sink, -1);
    ck_assert_uint_eq(uf->naggs, 4);
    ck_assert_str_eq(uf->aggs[3].name, "avg_viewed_price_1h");
    ck_assert_int_eq(uf->aggs[3].spec.fn, AGG_AVG);
    ck_assert_int_eq(uf->aggs[3].spec.arg, 2);
    ck_assert_ptr_nonnull(uf->aggs[3].spec.where);
    ck_assert_int_eq(uf->aggs[0].pos.line, 38);
    ck_assert_uint_eq(uf->nsinks, 1);
    ck_assert_int_eq(uf->sinks[0], 0);

    const struct job_operator *sf = &job->operators[1];
    ck_assert_str_eq(sf->type->name, "session");
    ck_assert_int_eq(sf->window.gap_ms, 600000);
    ck_assert_int_eq(sf->aggs[1].spec.fn, AGG_DURATION);
    ck_assert_ptr_null(sf->aggs[0].spec.where);

    ck_assert_uint_eq(job->nsinks, 2);
    const struct job_sink *r = &job->sinks[1];
    ck_assert_str_eq(r->name, "session_features_redis");
    ck_assert_str_eq(r->type->name, "redis");
    const struct redis_endpoint *ep = redis_sink_endpoint(r);
    ck_assert_str_eq(ep->host, "cache");
    ck_assert_int_eq(ep->port, 6390);
    ck_assert_int_eq(ep->db, 3);
    ck_assert_str_eq(ep->username, "app");
    ck_assert_str_eq(ep->password, "pw");
    ck_assert_int_eq(*(const int64_t *)cm_value(r->type->map, r->conf, "ttl"), 3600000);
    ck_assert_uint_eq(job_sink_key(r)->t.nparts, 4);
    ck_assert_ptr_null(redis_sink_tls(r));      /* redis:// and SLUICE_REDIS_CA unset */
}
END_TEST

START_TEST(print_masks_password)
{
    ck_assert_int_eq(job_load("feature-pipeline.yaml", &opts, &job, &d), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    job_print(job, f);
    fclose(f);
    ck_assert_ptr_null(strstr(buf, "pw@"));
    ck_assert_ptr_nonnull(strstr(buf, "redis://app:***@cache:6390/3"));
    ck_assert_ptr_nonnull(strstr(buf, "events -> user_features -> user_features_redis"));
    ck_assert_ptr_nonnull(strstr(buf, "avg_viewed_price_1h = avg(price) where "
                                      "event_type == \"view\""));
    free(buf);
}
END_TEST

static const char *minimal =
    "job: j\n"
    "sources:\n"
    "  s: { type: file, path: /tmp/x, schema: { k: string, n: int },\n"
    "       event_time: { field: ts, format: epoch_ms } }\n"
    "operators:\n"
    "  o:\n"
    "    from: s\n"
    "    key_by: [k]\n"
    "    window: { type: ${WIN:-tumbling}, size: 1m, allowed_lateness: 5s, late_events: late }\n"
    "    aggregates: { total: sum(n), c: count() }\n"
    "    to: [out, late]\n"
    "sinks:\n"
    "  out: { type: stdout }\n"
    "  late: { type: file, path: /tmp/late.jsonl }\n";

START_TEST(defaults_and_flow_style)
{
    load_text(minimal);
    ck_assert_uint_eq(diags_count(&d), 0);
    ck_assert_str_eq(job->http, "127.0.0.1:9464");
    ck_assert_ptr_null(cm_str(job->sources[0].type->map, job->sources[0].conf, "group"));
    ck_assert_int_eq(job->sources[0].idle_timeout_ms, JOB_DURATION_NONE);
    ck_assert_int_eq(job->sources[0].out_of_orderness_ms, 0);
    ck_assert_str_eq(job->operators[0].type->name, "tumbling");
    ck_assert_int_eq(job->operators[0].window.allowed_lateness_ms, 5000);
    ck_assert_int_eq(job->operators[0].window.late_sink, 1);
    ck_assert_uint_eq(job->operators[0].nsinks, 2);
    ck_assert_ptr_null(job_sink_key(&job->sinks[0]));
}
END_TEST

START_TEST(kafka_group_defaults_to_job_name)
{
    load_text("job: fx\nsources:\n  s: { type: kafka, brokers: b:1, topic: t, "
              "schema: { k: string } }\noperators:\n  o: { from: s, key_by: k, "
              "window: { type: global, trigger: count 10 }, aggregates: { c: count() }, "
              "to: out }\nsinks:\n  out: { type: stdout }\n");
    ck_assert_uint_eq(diags_count(&d), 0);
    ck_assert_str_eq(cm_str(job->sources[0].type->map, job->sources[0].conf, "group"),
                     "sluice-fx");
    ck_assert_int_eq(job->operators[0].window.trigger_count, 10);
}
END_TEST

/* A job with one redis sink whose url and extra settings are given. */
static void load_redis(const char *url, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "job: j\nsources:\n  s: { type: file, path: /tmp/x, schema: { k: string } }\n"
             "operators:\n  o: { from: s, key_by: k, window: { type: global, trigger: count 1 },"
             " aggregates: { c: count() }, to: r }\n"
             "sinks:\n  r:\n    type: redis\n    url: %s\n    key: \"f:{k}\"\n%s", url, extra);
    load_text(text);
}

/* The first message, or "" */
static const char *first_msg(void)
{
    return d.n > 0 ? d.v[0].msg : "";
}

START_TEST(redis_tls_settings)
{
    /* rediss:// alone: TLS, verified against the system's trust store */
    load_redis("rediss://cache:6380/2", "");
    ck_assert_msg(diags_count(&d) == 0, "unexpected: %s", first_msg());
    const struct redis_tls *t = redis_sink_tls(&job->sinks[0]);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(t->ca_file);
    ck_assert_int_eq(t->verify, 1);
    ck_assert_int_eq(redis_sink_endpoint(&job->sinks[0])->port, 6380);
    ck_assert_int_eq(redis_sink_endpoint(&job->sinks[0])->db, 2);
    load_redis("rediss://cache", "");
    ck_assert_int_eq(redis_sink_endpoint(&job->sinks[0])->port, 6379);

    /* a tls mapping of empty values leaves redis:// plain (the reference job
     * with SLUICE_REDIS_CA unset), null or "" alike */
    load_redis("redis://cache", "    tls: { ca_file: ${SLUICE_TEST_NO_SUCH_VAR:-} }\n");
    ck_assert_msg(diags_count(&d) == 0, "unexpected: %s", first_msg());
    ck_assert_ptr_null(redis_sink_tls(&job->sinks[0]));
    load_redis("redis://cache", "    tls: { ca_file: \"\", server_name: \"\" }\n");
    ck_assert_ptr_null(redis_sink_tls(&job->sinks[0]));
    /* ... and an empty CA file on rediss:// is the system's trust store */
    load_redis("rediss://cache", "    tls: { ca_file: \"\" }\n");
    ck_assert_msg(diags_count(&d) == 0, "unexpected: %s", first_msg());
    ck_assert_ptr_nonnull(redis_sink_tls(&job->sinks[0]));

    /* a tls mapping that sets something turns TLS on for redis:// */
    load_redis("redis://cache", "    tls: { verify: false, server_name: redis.internal }\n");
    ck_assert_msg(diags_count(&d) == 0, "unexpected: %s", first_msg());
    t = redis_sink_tls(&job->sinks[0]);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->verify, 0);
    ck_assert_str_eq(t->server_name, "redis.internal");

    /* files are read at load time */
    load_redis("rediss://cache", "    tls: { ca_file: /nonexistent/ca.pem }\n");
    ck_assert_ptr_null(job);
    ck_assert_msg(strstr(first_msg(), "cannot read CA file /nonexistent/ca.pem: No such file")
                  != NULL, "got: %s", first_msg());
    load_redis("rediss://cache", "    tls: { cert_file: /etc/hostname }\n");
    ck_assert_msg(strstr(first_msg(), "cert_file is set without key_file") != NULL, "got: %s",
                  first_msg());
    load_redis("rediss://cache", "    tls: { ca_file: /etc/hostname }\n");
    ck_assert_msg(strstr(first_msg(), "TLS: cannot load the CA file /etc/hostname") != NULL,
                  "got: %s", first_msg());
    /* not a mapping, an unknown key */
    load_redis("rediss://cache", "    tls: yes\n");
    ck_assert_msg(strstr(first_msg(), "'tls' must be a mapping") != NULL, "got: %s", first_msg());
    load_redis("rediss://cache", "    tls: { ca_flie: x }\n");
    ck_assert_msg(strstr(first_msg(), "ca_flie") != NULL, "got: %s", first_msg());
    load_redis("rediss://cache", "    tls: { verify: maybe }\n");
    ck_assert_uint_eq(diags_count(&d), 1);
}
END_TEST

START_TEST(redis_cluster_setting)
{
    load_redis("redis://node-1:7000", "    cluster: true\n");
    ck_assert_msg(diags_count(&d) == 0, "unexpected: %s", first_msg());
    ck_assert_int_eq(redis_sink_cluster(&job->sinks[0]), 1);
    load_redis("redis://node-1:7000/0", "    cluster: ${SLUICE_TEST_NO_SUCH_VAR:-false}\n");
    ck_assert_msg(diags_count(&d) == 0, "unexpected: %s", first_msg());
    ck_assert_int_eq(redis_sink_cluster(&job->sinks[0]), 0);
    /* a cluster has database 0 only */
    load_redis("redis://node-1:7000/3", "    cluster: true\n");
    ck_assert_ptr_null(job);
    ck_assert_msg(strstr(first_msg(), "a Redis Cluster has database 0 only; the URL names "
                         "database 3") != NULL, "got: %s", first_msg());
    load_redis("redis://node-1:7000", "    cluster: yes\n");
    ck_assert_ptr_null(job);
    ck_assert_uint_eq(diags_count(&d), 1);
}
END_TEST

START_TEST(all_errors_in_one_run)
{
    load_text("job: j\nbogus: 1\nsources:\n  s: { type: file }\noperators: {}\n"
              "sinks:\n  out: { type: smtp }\n");
    ck_assert_ptr_null(job);
    ck_assert_uint_eq(diags_count(&d), 5);
}
END_TEST

START_TEST(positions_survive_substitution)
{
    /* the substituted value shifts columns; the error must point at the file */
    setenv("SLUICE_TEST_UNUSED", "x", 1);
    load_text("job: ${NAME:-a-rather-long-default-job-name}\nhttp: nonsense\n"
              "sources: {}\noperators: {}\nsinks: { k: { type: stdout, nope: ${Q:-1} } }\n");
    diags_sort(&d);
    ck_assert_uint_ge(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 2);
    ck_assert_int_eq(d.v[0].col, 7);
    int found = 0;
    for (size_t i = 0; i < d.n; i++)
        if (strstr(d.v[i].msg, "unknown key 'nope'") != NULL) {
            ck_assert_int_eq(d.v[i].line, 5);
            ck_assert_int_eq(d.v[i].col, 29);
            found = 1;
        }
    ck_assert(found);
}
END_TEST

START_TEST(yaml_syntax_error_position)
{
    load_text("job: j\nsources:\n  s: [1, 2\noperators: x\n");
    ck_assert_uint_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 4);
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "YAML syntax error"));
}
END_TEST

START_TEST(missing_file)
{
    ck_assert_int_lt(job_load("tests/does-not-exist.yaml", &opts, &job, &d), 0);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].msg, "cannot open: No such file or directory");
}
END_TEST

START_TEST(empty_and_garbage)
{
    load_text("");
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].msg, "the job file is empty");
    load_text("just a string");
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].msg, "the job file must be a mapping, not a single value");
    load_text("\xff\xfe\x00garbage");
    ck_assert_uint_eq(d.n, 1);
    load_text("a: 1\n---\nb: 2\n");
    ck_assert_ptr_null(job);
}
END_TEST

/* Builds text of n copies of `unit` between head and tail (caller frees). */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *t = malloc(hl + ul * n + tl + 1);
    ck_assert_ptr_nonnull(t);
    memcpy(t, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(t + hl + i * ul, unit, ul);
    memcpy(t + hl + ul * n, tail, tl + 1);
    return t;
}

/* Hostile shapes that once cost quadratic time or the stack: each must be
 * refused quickly with one clear error.  (Without the limits, 80,000
 * brackets took 6 s in libyaml, and 300,000 "${X:-y}" on one line or
 * 100,000 schema fields took minutes.) */
START_TEST(deep_nesting_refused)
{
    char *t = repeat("job: t\nsources: ", "[", 2000000, "\n");
    load_text(t);
    free(t);
    ck_assert_ptr_null(job);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].msg, "the job file nests more than 64 levels deep");
    ck_assert_int_eq(d.v[0].line, 2);
    /* the root mapping is level 1, so the 64th '[' is one too many */
    ck_assert_int_eq(d.v[0].col, 10 + 63);
}
END_TEST

START_TEST(huge_mapping_refused)
{
    /* 1025 distinct fields */
    size_t len = 0;
    char *t = malloc(1100 * 16 + 200);
    ck_assert_ptr_nonnull(t);
    len += (size_t)sprintf(t, "job: t\nsources:\n  ev: {type: file, path: x, schema: {");
    for (int i = 0; i < 1025; i++)
        len += (size_t)sprintf(t + len, "%sf%d: int", i ? ", " : "", i);
    strcpy(t + len, "}}\noperators: {}\nsinks: {}\n");
    load_text(t);
    free(t);
    ck_assert_ptr_null(job);
    diags_sort(&d);
    ck_assert_str_eq(d.v[0].msg, "schema of source 'ev' has 1025 entries; at most 1024");
    ck_assert_int_eq(d.v[0].line, 3);
}
END_TEST

/* A join of two sources keyed by differently named fields: the model
 * carries both sides, the operator's key is the left's, and without
 * `fields` every field of both sides is written, prefixed. */
START_TEST(join_of_two_sources)
{
    load_text("job: j\n"
              "sources:\n"
              "  orders: { type: file, path: /x, schema: { cid: string, total: double },\n"
              "            event_time: { field: t, format: epoch_ms } }\n"
              "  clicks: { type: file, path: /y, schema: { page: string, customer: string },\n"
              "            event_time: { field: t, format: epoch_ms } }\n"
              "operators:\n"
              "  o:\n"
              "    join:\n"
              "      left: { from: orders, key_by: cid, prefix: order_ }\n"
              "      right: { from: clicks, key_by: customer, where: page != \"home\" }\n"
              "      within: 90s\n"
              "      type: outer\n"
              "    to: out\n"
              "sinks:\n"
              "  out: { type: stdout }\n");
    ck_assert_msg(job != NULL, "%s", d.n ? d.v[0].msg : "?");
    const struct job_operator *op = &job->operators[0];
    ck_assert_str_eq(op->type->name, "join");
    ck_assert_int_eq(op->join.type, JOIN_OUTER);
    ck_assert_int_eq(op->join.within_ms, 90000);
    ck_assert_int_eq(op->join.side[0].source, 0);
    ck_assert_int_eq(op->join.side[1].source, 1);
    ck_assert_int_eq(op->join.side[1].key_fields[0], 1);
    ck_assert_ptr_nonnull(op->join.side[1].where);
    ck_assert_ptr_null(op->join.side[0].where);
    ck_assert_int_eq(op->source, 0);
    ck_assert_uint_eq(op->nkeys, 1);
    ck_assert_uint_eq(op->naggs, 4);
    const char *names[] = { "order_cid", "order_total", "right_page", "right_customer" };
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(op->aggs[i].name, names[i]);
        ck_assert_int_eq(op->aggs[i].value->kind, EX_FIELD);
        ck_assert_int_eq(op->aggs[i].value->side, i >= 2);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    job_print(job, f);
    fclose(f);
    ck_assert_msg(strstr(buf, "o: outer interval join within 90s, event time, late events "
                              "dropped\n"
                              "    left: from orders, key by cid\n"
                              "    right: from clicks where page != \"home\", key by customer\n"
                              "    order_cid = left.cid\n") != NULL, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "  orders + clicks -> o -> out\n"));
    free(buf);
}
END_TEST

START_TEST(long_line_of_failed_references)
{
    char *t = repeat("job: t\nsources: {ev: {type: file, path: \"", "${NOPE}", 300000,
                     "\", schema: {a: int}}}\noperators: {}\nsinks: {}\n");
    load_text(t);
    free(t);
    ck_assert_ptr_null(job);
    ck_assert_uint_eq(d.n, DIAG_MAX);       /* stored up to the cap ... */
    ck_assert_uint_gt(d.dropped, 299000);   /* ... and the rest counted */
    ck_assert_int_eq(d.v[0].line, 2);
    ck_assert_int_eq(d.v[0].col, 35);
    ck_assert_int_eq(d.v[1].col, 35 + 7);
}
END_TEST

/* ---- repartitioning (job.h, above enum src_role) ------------------------------ */

/* A job of kafka sources `events` (its extra keys in src_extra, from line
 * 9) and `clicks` (partitioned by user_id), a file source `logs`, and the
 * operators ops, writing to sink out. */
static void load_rp(const char *src_extra, const char *ops)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "job: shop\n"
             "sources:\n"
             "  events:\n"
             "    type: kafka\n"
             "    brokers: k:9092\n"
             "    topic: ev\n"
             "    group: g\n"
             "    schema: { user_id: string, session_id: string, price: double }\n"
             "%s"
             "    event_time: { field: ts, format: epoch_ms }\n"
             "  clicks:\n"
             "    type: kafka\n"
             "    brokers: k:9092\n"
             "    topic: cl\n"
             "    partitioned_by: user_id\n"
             "    schema: { user_id: string, page: string }\n"
             "    event_time: { field: ts, format: epoch_ms }\n"
             "  logs:\n"
             "    type: file\n"
             "    path: /x\n"
             "    schema: { user_id: string }\n"
             "    event_time: { field: ts, format: epoch_ms }\n"
             "operators:\n%s"
             "sinks:\n"
             "  out: { type: stdout }\n", src_extra, ops);
    load_text(text);
}

/* A tumbling-window operator reading `from` keyed by `key`. */
#define WIN_OP(name, from, key) \
    "  " name ": { from: " from ", key_by: " key ", window: { type: tumbling, size: 1m }, " \
    "aggregates: { n: count() }, to: out }\n"

static void assert_loaded(void)
{
    ck_assert_msg(job != NULL, "expected the job to load, got %d:%d: %s",
                  d.n ? d.v[0].line : 0, d.n ? d.v[0].col : 0, d.n ? d.v[0].msg : "?");
}

static int src_index(const char *name)
{
    for (size_t i = 0; i < job->nsources; i++)
        if (strcmp(job->sources[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *src_topic(int i)
{
    const struct job_source *s = &job->sources[i];
    return cm_str(s->type->map, s->conf, "topic");
}

/* Every source of the file is an input, its own origin, read directly. */
static void assert_file_sources_only(void)
{
    ck_assert_uint_eq(job->nsources, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(job->sources[i].role, SRC_INPUT);
        ck_assert_int_eq(job->sources[i].origin, (int)i);
        ck_assert_int_eq(job->sources[i].unread, 0);
    }
}

static char *print_job(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    job_print(job, f);
    fclose(f);
    return buf;
}

/* The errors of the last load, sorted, one "line:col: message" a line. */
static const char *errors(void)
{
    static char buf[8192];
    size_t n = 0;
    diags_sort(&d);
    buf[0] = '\0';
    for (size_t i = 0; i < d.n && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%d:%d: %s\n", d.v[i].line,
                              d.v[i].col, d.v[i].msg);
    return buf;
}

START_TEST(rp_default_reads_directly)
{
    load_rp("", WIN_OP("a", "events", "session_id") WIN_OP("b", "clicks", "user_id"));
    assert_loaded();
    assert_file_sources_only();
    ck_assert_int_eq(job->sources[0].part_declared, 0);
    ck_assert_int_eq(job->operators[0].source, 0);
    ck_assert_int_eq(job->operators[1].source, 1);
    char *out = print_job();
    ck_assert_msg(strstr(out, "repartition") == NULL, "expected no repartition in:\n%s", out);
    free(out);
}
END_TEST

START_TEST(rp_key_equal_or_superset_reads_directly)
{
    load_rp("    partitioned_by: [user_id]\n",
            WIN_OP("a", "events", "user_id") WIN_OP("b", "events", "[session_id, user_id]")
            WIN_OP("c", "clicks", "user_id"));
    assert_loaded();
    assert_file_sources_only();
    ck_assert_int_eq(job->sources[0].part_declared, 1);
    ck_assert_int_eq(job->sources[0].part_none, 0);
    ck_assert_uint_eq(job->sources[0].npart_fields, 1);
    ck_assert_int_eq(job->sources[0].part_fields[0], 0);
    for (size_t o = 0; o < 3; o++)
        ck_assert_int_eq(job->operators[o].source, o == 2 ? 1 : 0);
    char *out = print_job();
    ck_assert_msg(strstr(out, "    partitioned by: user_id\n    bad records") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "through repartition topic") == NULL, "%s", out);
    free(out);
}
END_TEST

/* partitioned_by: none: every operator reads through a repartition topic;
 * the added sources copy the input, point at each other, and are printed
 * as added. */
START_TEST(rp_none_adds_stage1_and_topic)
{
    load_rp("    partitioned_by: none\n", WIN_OP("a", "events", "user_id"));
    assert_loaded();
    ck_assert_uint_eq(job->nsources, 5);
    const struct job_source *in = &job->sources[0], *st = &job->sources[3],
                            *rp = &job->sources[4];
    ck_assert_int_eq(in->part_none, 1);
    ck_assert_int_eq(in->unread, 1);
    ck_assert_int_eq(job->sources[1].unread, 0);

    ck_assert_str_eq(st->name, "events~stage1");
    ck_assert_int_eq(st->role, SRC_STAGE1);
    ck_assert_int_eq(st->origin, 0);
    ck_assert_ptr_eq(st->type, in->type);
    ck_assert_ptr_eq(st->conf, in->conf);           /* the input's topic, group, ... */
    ck_assert_ptr_eq(st->fields, in->fields);
    ck_assert_int_eq(st->part_none, 1);
    ck_assert_uint_eq(st->ntargets, 1);
    ck_assert_int_eq(st->targets[0], 4);

    ck_assert_str_eq(rp->name, "events~user_id");
    ck_assert_int_eq(rp->role, SRC_REPARTITION);
    ck_assert_int_eq(rp->origin, 0);
    ck_assert_int_eq(rp->stage1, 3);
    ck_assert_str_eq(rp->rp_topic, "shop-events-user_id-repartition");
    ck_assert_str_eq(src_topic(4), "shop-events-user_id-repartition");
    ck_assert_str_eq(cm_str(rp->type->map, rp->conf, "group"), "g");
    ck_assert_str_eq(src_topic(0), "ev");           /* the input's own settings unchanged */
    ck_assert_uint_eq(rp->nfields, 3);
    ck_assert_uint_eq(rp->nrp_keys, 1);
    ck_assert_int_eq(rp->rp_keys[0], 0);
    ck_assert_int_eq(rp->has_event_time, 1);
    ck_assert_int_eq(rp->rp_partitions, 0);
    ck_assert_int_eq(rp->rp_transactions, 0);

    const struct job_operator *op = &job->operators[0];
    ck_assert_int_eq(op->source, 4);
    ck_assert_int_eq(op->key_fields[0], 0);         /* an index into the copied schema */
    ck_assert_int_eq(job->sources[1].origin, 1);
    ck_assert_int_eq(job->sources[1].stage1, -1);

    char *out = print_job();
    ck_assert_msg(strstr(out, "    partitioned by: none (read only by its repartition stage)\n")
                  != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  events~stage1: repartition stage 1 of events (group g-stage1, "
                              "idempotent) -> shop-events-user_id-repartition\n") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "  events~user_id: kafka topic=shop-events-user_id-repartition "
                              "brokers=k:9092 group=g start=earliest (added: repartition "
                              "topic, key user_id, as many partitions as the topic of "
                              "events)\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  a: from events, key by user_id\n"
                              "    window: tumbling 1m, event time, allowed lateness 0, late "
                              "events dropped\n"
                              "    reads events through repartition topic "
                              "shop-events-user_id-repartition\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "graph:\n  events -> events~stage1 -> events~user_id\n"
                              "  events~user_id -> a -> out\n") != NULL, "%s", out);
    free(out);
}
END_TEST

START_TEST(rp_settings_copied)
{
    load_rp("    partitioned_by: session_id\n"
            "    repartition: { partitions: 12, transactions: true }\n",
            WIN_OP("a", "events", "user_id"));
    assert_loaded();
    ck_assert_uint_eq(job->nsources, 5);
    for (size_t i = 0; i < 5; i += i == 0 ? 3 : 1) {
        ck_assert_int_eq(job->sources[i].rp_partitions, 12);
        ck_assert_int_eq(job->sources[i].rp_transactions, 1);
        ck_assert_uint_eq(job->sources[i].npart_fields, 1);
        ck_assert_int_eq(job->sources[i].part_fields[0], 1);
    }
    char *out = print_job();
    ck_assert_msg(strstr(out, "(group g-stage1, transactions) ->") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "key user_id, 12 partitions)\n") != NULL, "%s", out);
    free(out);
}
END_TEST

/* Operators sharing an input and a key share one topic; another key gets
 * its own; the stage 1 writes both. */
START_TEST(rp_topics_per_key)
{
    load_rp("    partitioned_by: none\n",
            WIN_OP("a", "events", "user_id") WIN_OP("b", "events", "[user_id, session_id]")
            WIN_OP("c", "events", "user_id") WIN_OP("d", "clicks", "user_id"));
    assert_loaded();
    ck_assert_uint_eq(job->nsources, 6);
    int st = src_index("events~stage1"), u = src_index("events~user_id"),
        us = src_index("events~user_id.session_id");
    ck_assert_int_eq(st, 3);
    ck_assert_int_eq(u, 4);
    ck_assert_int_eq(us, 5);
    ck_assert_int_eq(job->operators[0].source, u);
    ck_assert_int_eq(job->operators[1].source, us);
    ck_assert_int_eq(job->operators[2].source, u);
    ck_assert_int_eq(job->operators[3].source, 1);  /* clicks: keyed by user_id */
    ck_assert_str_eq(job->sources[us].rp_topic, "shop-events-user_id.session_id-repartition");
    ck_assert_uint_eq(job->sources[us].nrp_keys, 2);
    ck_assert_int_eq(job->sources[us].rp_keys[1], 1);
    ck_assert_int_eq(job->sources[us].stage1, st);
    ck_assert_uint_eq(job->sources[st].ntargets, 2);
    ck_assert_int_eq(job->sources[st].targets[0], u);
    ck_assert_int_eq(job->sources[st].targets[1], us);
    ck_assert_int_eq(src_index("clicks~stage1"), -1);
    char *out = print_job();
    ck_assert_msg(strstr(out, "(group g-stage1, idempotent) -> shop-events-user_id-repartition, "
                              "shop-events-user_id.session_id-repartition\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  events -> events~stage1 -> events~user_id, "
                              "events~user_id.session_id\n") != NULL, "%s", out);
    free(out);
}
END_TEST

/* A direct operator and a repartitioned one on one input: the input is
 * still read (not unread). */
START_TEST(rp_mixed_input_still_read)
{
    load_rp("    partitioned_by: user_id\n",
            WIN_OP("a", "events", "user_id") WIN_OP("b", "events", "session_id"));
    assert_loaded();
    ck_assert_uint_eq(job->nsources, 5);
    ck_assert_int_eq(job->operators[0].source, 0);
    ck_assert_int_eq(job->operators[1].source, src_index("events~session_id"));
    ck_assert_int_eq(job->sources[0].unread, 0);
    char *out = print_job();
    ck_assert_msg(strstr(out, "    partitioned by: user_id\n") != NULL, "%s", out);
    free(out);
}
END_TEST

/* A join one of whose sides needs repartitioning has both repartitioned,
 * each through its own source's topic, keyed by its own key. */
START_TEST(rp_join_both_sides)
{
    load_rp("    partitioned_by: none\n",
            "  j:\n"
            "    join:\n"
            "      left: { from: clicks, key_by: user_id }\n"
            "      right: { from: events, key_by: session_id }\n"
            "      within: 1m\n"
            "    to: out\n");
    assert_loaded();
    ck_assert_uint_eq(job->nsources, 7);
    const struct job_operator *op = &job->operators[0];
    int l = src_index("clicks~user_id"), r = src_index("events~session_id");
    ck_assert_int_eq(src_index("events~stage1"), 3);    /* input by input, in file order */
    ck_assert_int_eq(r, 4);
    ck_assert_int_eq(src_index("clicks~stage1"), 5);
    ck_assert_int_eq(l, 6);
    ck_assert_int_eq(op->join.side[0].source, l);
    ck_assert_int_eq(op->join.side[1].source, r);
    ck_assert_int_eq(op->source, l);
    ck_assert_int_eq(job->sources[l].stage1, 5);
    ck_assert_int_eq(job->sources[0].unread, 1);
    ck_assert_int_eq(job->sources[1].unread, 1);
    ck_assert_str_eq(job->sources[l].rp_topic, "shop-clicks-user_id-repartition");
    char *out = print_job();
    ck_assert_msg(strstr(out, "    left: from clicks, key by user_id\n"
                              "    right: from events, key by session_id\n"
                              "    reads clicks through repartition topic "
                              "shop-clicks-user_id-repartition\n"
                              "    reads events through repartition topic "
                              "shop-events-session_id-repartition\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  clicks~user_id + events~session_id -> j -> out\n") != NULL,
                  "%s", out);
    free(out);
}
END_TEST

/* A join whose sides both read directly is left alone; one reading a
 * repartition topic needs the other side's source to be repartitionable. */
START_TEST(rp_join_with_file_side)
{
    load_rp("    partitioned_by: user_id\n",
            "  j:\n"
            "    key_by: user_id\n"
            "    join: { left: { from: events }, right: { from: logs }, within: 1m }\n"
            "    to: out\n");
    assert_loaded();
    assert_file_sources_only();
    load_rp("    partitioned_by: none\n",
            "  j:\n"
            "    key_by: user_id\n"
            "    join: { left: { from: events }, right: { from: logs }, within: 1m }\n"
            "    to: out\n");
    ck_assert_ptr_null(job);
    ck_assert_str_eq(errors(), "24:3: operator 'j': it reads source 'events' through a "
                     "repartition topic (its partitioned_by is not the key), so all its "
                     "inputs must be, but file source 'logs' cannot be repartitioned\n");
}
END_TEST

START_TEST(rp_errors)
{
    load_rp("    partitioned_by: [user_id, nope, user_id]\n"
            "    repartition: { partitions: 0, transactions: maybe, parts: 3 }\n",
            WIN_OP("a", "events", "user_id"));
    ck_assert_ptr_null(job);
    ck_assert_str_eq(errors(),
        "9:31: partitioned_by: unknown field 'nope' (not in the schema of source 'events')\n"
        "9:37: partitioned_by: field 'user_id' is listed twice\n"
        "10:32: partitions must be between 1 and 32768, got 0\n"
        "10:49: repartition of source 'events': unknown transactions \"maybe\" "
        "(expected false or true)\n"
        "10:56: unknown key 'parts' in repartition of source 'events' (expected one of: "
        "partitions, transactions, purge)\n");

    load_rp("    partitioned_by: []\n    repartition: 8\n", WIN_OP("a", "events", "user_id"));
    ck_assert_str_eq(errors(),
        "9:21: partitioned_by is an empty list\n"
        "10:18: repartition of source 'events' must be a mapping, not a single value\n");

    load_rp("    partitioned_by:\n    repartition: { partitions: 40000 }\n",
            WIN_OP("a", "events", "user_id"));
    ck_assert_str_eq(errors(),
        "9:20: partitioned_by is empty: name the field or fields the topic's records are "
        "partitioned by, or write none\n"
        "10:32: partitions must be between 1 and 32768, got 40000\n");

    load_rp("    repartition: { partitions: 4 }\n", WIN_OP("a", "events", "user_id"));
    ck_assert_str_eq(errors(), "9:5: repartition: source 'events' has no partitioned_by, so "
                     "no operator reads it through a repartition topic\n");
}
END_TEST

START_TEST(rp_only_kafka_sources)
{
    load_text("job: t\n"
              "sources:\n"
              "  logs:\n"
              "    type: file\n"
              "    path: /x\n"
              "    schema: { user_id: string }\n"
              "    partitioned_by: none\n"
              "    repartition: { partitions: 2 }\n"
              "operators:\n"
              WIN_OP("a", "logs", "user_id")
              "sinks:\n"
              "  out: { type: stdout }\n");
    ck_assert_ptr_null(job);
    ck_assert_str_eq(errors(),
        "7:5: partitioned_by: only kafka sources can be repartitioned (a file source is "
        "read as one partition)\n"
        "8:5: repartition: only kafka sources can be repartitioned (a file source is read "
        "as one partition)\n"
        "10:45: tumbling window of operator 'a' uses event time, but source 'logs' has no "
        "event_time (add one, or set time: processing)\n");
}
END_TEST

/* <job>-<input>-<key>-repartition: the loader's names hold only what a
 * Kafka topic name may; a name longer than Kafka allows is an error at the
 * operator. */
START_TEST(rp_topic_name)
{
    load_text("job: Shop.v2_eu-west\n"
              "sources:\n"
              "  click-stream.v1:\n"
              "    type: kafka\n"
              "    brokers: k:9092\n"
              "    topic: cs\n"
              "    partitioned_by: none\n"
              "    schema: { User_ID: string, _n: int }\n"
              "operators:\n"
              "  a:\n"
              "    from: click-stream.v1\n"
              "    key_by: [_n, User_ID]\n"
              "    reduce: { }\n"
              "    aggregates: { c: count() }\n"
              "    to: out\n"
              "sinks:\n"
              "  out: { type: stdout }\n");
    assert_loaded();
    int r = src_index("click-stream.v1~_n.User_ID");
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(job->sources[r].rp_topic, "Shop.v2_eu-west-click-stream.v1-_n.User_ID-"
                     "repartition");
    ck_assert_int_eq(job->operators[0].source, r);

    /* 128 + 1 + 60 + 1 + 60 + 12 = 262 characters */
    char text[2048], jname[129], sname[61], fname[61];
    memset(jname, 'j', 128), jname[128] = '\0';
    memset(sname, 's', 60), sname[60] = '\0';
    memset(fname, 'f', 60), fname[60] = '\0';
    snprintf(text, sizeof(text),
             "job: %s\n"
             "sources:\n"
             "  %s: { type: kafka, brokers: k:9092, topic: t, partitioned_by: none,\n"
             "        schema: { %s: string } }\n"
             "operators:\n"
             "  a: { from: %s, key_by: %s, reduce: {}, aggregates: { c: count() }, to: out }\n"
             "sinks:\n"
             "  out: { type: stdout }\n", jname, sname, fname, sname, fname);
    load_text(text);
    ck_assert_ptr_null(job);
    char want[400];
    snprintf(want, sizeof(want), "6:3: operator 'a': its repartition topic '%.40s...' would be "
             "262 characters long; Kafka allows 249: shorten the job's, the source's or the "
             "key fields' names\n", jname);
    ck_assert_str_eq(errors(), want);
}
END_TEST

/* A key field named stage1 would name its repartition source like the
 * stage 1 source: an error, not two sources of one name. */
START_TEST(rp_stage1_name_taken)
{
    load_text("job: t\n"
              "sources:\n"
              "  ev: { type: kafka, brokers: k:9092, topic: t, partitioned_by: none,\n"
              "        schema: { stage1: string } }\n"
              "operators:\n"
              "  a: { from: ev, key_by: stage1, reduce: {}, aggregates: { c: count() }, to: out }\n"
              "sinks:\n"
              "  out: { type: stdout }\n");
    ck_assert_ptr_null(job);
    ck_assert_str_eq(errors(), "6:3: operator 'a': a key of the one field 'stage1' would "
                     "name its repartition source 'ev~stage1', the name of the repartition "
                     "stage of source 'ev'; key by another field\n");
}
END_TEST

/* Reading a source through a repartition topic changes no operator's
 * fingerprint: the state means the same (the added source copies the
 * schema, and a join names the source the file names). */
START_TEST(rp_fingerprints_unchanged)
{
    static const char *const ops =
        WIN_OP("a", "events", "user_id")
        "  j:\n"
        "    key_by: user_id\n"
        "    join: { left: { from: events }, right: { from: clicks }, within: 1m }\n"
        "    to: out\n";
    uint64_t before[2], after[2];
    load_rp("", ops);
    assert_loaded();
    for (int o = 0; o < 2; o++)
        before[o] = engine_op_fingerprint(job, o, CKPT_VERSION);
    load_rp("    partitioned_by: none\n", ops);
    assert_loaded();
    ck_assert_int_eq(job->operators[1].join.side[0].source, src_index("events~user_id"));
    ck_assert_int_eq(job->operators[1].join.side[1].source, src_index("clicks~user_id"));
    for (int o = 0; o < 2; o++) {
        after[o] = engine_op_fingerprint(job, o, CKPT_VERSION);
        ck_assert_msg(after[o] == before[o], "operator %d: fingerprint %llx, expected %llx", o,
                      (unsigned long long)after[o], (unsigned long long)before[o]);
    }
}
END_TEST

/* The range of `partitions` is the one the header format can carry. */
START_TEST(rp_partitions_limit)
{
    const struct cm_entry *e = cm_entry_find(&job_repartition_map, "partitions");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->hi, RP_MAX_PARTITIONS);
    ck_assert_int_eq(e->lo, 1);
}
END_TEST

Suite *job_suite(void)
{
    Suite *s = suite_create("job");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, reference_job);
    tcase_add_test(tc, print_masks_password);
    tcase_add_test(tc, defaults_and_flow_style);
    tcase_add_test(tc, redis_tls_settings);
    tcase_add_test(tc, redis_cluster_setting);
    tcase_add_test(tc, kafka_group_defaults_to_job_name);
    tcase_add_test(tc, all_errors_in_one_run);
    tcase_add_test(tc, positions_survive_substitution);
    tcase_add_test(tc, yaml_syntax_error_position);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, empty_and_garbage);
    tcase_add_test(tc, deep_nesting_refused);
    tcase_add_test(tc, huge_mapping_refused);
    tcase_add_test(tc, long_line_of_failed_references);
    tcase_add_test(tc, join_of_two_sources);
    suite_add_tcase(s, tc);
    TCase *rp = tcase_create("repartition");
    tcase_add_checked_fixture(rp, NULL, teardown);
    tcase_add_test(rp, rp_default_reads_directly);
    tcase_add_test(rp, rp_key_equal_or_superset_reads_directly);
    tcase_add_test(rp, rp_none_adds_stage1_and_topic);
    tcase_add_test(rp, rp_settings_copied);
    tcase_add_test(rp, rp_topics_per_key);
    tcase_add_test(rp, rp_mixed_input_still_read);
    tcase_add_test(rp, rp_join_both_sides);
    tcase_add_test(rp, rp_join_with_file_side);
    tcase_add_test(rp, rp_errors);
    tcase_add_test(rp, rp_only_kafka_sources);
    tcase_add_test(rp, rp_topic_name);
    tcase_add_test(rp, rp_stage1_name_taken);
    tcase_add_test(rp, rp_fingerprints_unchanged);
    tcase_add_test(rp, rp_partitions_limit);
    suite_add_tcase(s, rp);
    return s;
}
