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
    ck_assert_int_eq(uf->aggs[0].pos.line, 36);
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
    return s;
}
