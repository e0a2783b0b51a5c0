/*
 * test_format.c - how results, keys and dead letters are written: key
 * templates, Redis values, JSON escaping, nulls, base64 dead letters.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../connectors/format.h"
#include "suites.h"

static struct job *job;

static void setup(void)
{
    const char *text =
        "job: t\nsources:\n  s: { type: file, path: x, schema: { country: string, id: int,"
        " vip: bool, amount: double } }\n"
        "operators:\n  o: { from: s, key_by: [country, id, vip], window: { type: tumbling,"
        " size: 1m, time: processing }, aggregates: { n: count(), a: avg(amount), f: first(country),"
        " m: min(amount) }, to: r }\n"
        "sinks:\n  r: { type: redis, url: redis://h, key: \"x:{country}:{id}:{vip}:{window_start}"
        "-{window_end}:{{lit}}\" }\n";
    struct diags d = { 0 };
    ck_assert_int_eq(job_load_buffer("t.yaml", text, strlen(text), NULL, &job, &d), 0);
    diags_free(&d);
}

static void teardown(void)
{
    job_free(job);
}

static struct engine_result result(struct value *keys, struct value *vals)
{
    keys[0] = (struct value){ .type = VT_STRING, .u.s = { "K\"R\n", 4 } };
    keys[1] = (struct value){ .type = VT_INT, .u.i = -42 };
    keys[2] = (struct value){ .type = VT_BOOL, .u.b = 1 };
    vals[0] = (struct value){ .type = VT_INT, .u.i = 3 };
    vals[1] = (struct value){ .type = VT_DOUBLE, .u.d = 29.99 };
    vals[2] = (struct value){ .type = VT_STRING, .u.s = { "\xed\x95\x9c", 3 } };
    vals[3] = (struct value){ .type = VT_NULL };
    return (struct engine_result){ .op = 0, .keys = keys, .nkeys = 3, .start = 1704067200000,
                                   .end = 1704067260000, .vals = vals, .nvals = 4 };
}

START_TEST(key_templates)
{
    struct value k[3], v[4];
    struct engine_result r = result(k, v);
    struct sbuf b = { 0 };
    ck_assert_int_eq(fmt_key(&b, &job_sink_key(&job->sinks[0])->t, job, &job->operators[0], &r), 0);
    ck_assert_str_eq(b.p, "x:K\"R\n:-42:true:1704067200000-1704067260000:{lit}");
    sbuf_free(&b);
}
END_TEST

START_TEST(json_results)
{
    struct value k[3], v[4];
    struct engine_result r = result(k, v);
    struct sbuf b = { 0 };
    ck_assert_int_eq(fmt_json_result(&b, job, &job->operators[0], &r), 0);
    ck_assert_str_eq(b.p, "{\"country\":\"K\\\"R\\n\",\"id\":-42,\"vip\":true,"
                     "\"window_start\":1704067200000,\"window_end\":1704067260000,"
                     "\"n\":3,\"a\":29.99,\"f\":\"\xed\x95\x9c\",\"m\":null}");
    r.start = r.end = INT64_MIN;                /* global windows have no bounds */
    b.len = 0;
    fmt_json_result(&b, job, &job->operators[0], &r);
    ck_assert_ptr_null(strstr(b.p, "window_start"));
    sbuf_free(&b);
}
END_TEST

START_TEST(redis_values)
{
    struct sbuf b = { 0 };
    const struct { struct value v; const char *want; } cases[] = {
        { { .type = VT_DOUBLE, .u.d = 0.1 + 0.2 }, "0.30000000000000004" },
        { { .type = VT_DOUBLE, .u.d = 12.5 }, "12.5" },
        { { .type = VT_DOUBLE, .u.d = -0.0 }, "0" },
        { { .type = VT_DOUBLE, .u.d = 1e300 }, "1e+300" },
        { { .type = VT_DOUBLE, .u.d = 123456789012345678.0 }, "1.2345678901234568e+17" },
        { { .type = VT_DOUBLE, .u.d = 5e-324 }, "5e-324" },
        { { .type = VT_DOUBLE, .u.d = 2.5e-310 }, "2.5e-310" },
        { { .type = VT_INT, .u.i = INT64_MIN }, "-9223372036854775808" },
        { { .type = VT_BOOL, .u.b = 0 }, "false" },
        { { .type = VT_NULL }, "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b.len = 0;
        sbuf_put(&b, "", 0);
        fmt_redis_value(&b, &cases[i].v);
        ck_assert_str_eq(b.p, cases[i].want);
        if (cases[i].v.type == VT_DOUBLE)
            ck_assert(strtod(b.p, NULL) == cases[i].v.u.d);   /* reads back */
    }
    sbuf_free(&b);
}
END_TEST

START_TEST(shortest_doubles_read_back)
{
    char buf[32], brute[32];
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 30000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        if (i % 2)
            d = (double)(x % 1000000) / 100.0;     /* prices, averages */
        if (!isfinite(d))
            continue;
        fmt_double(d, buf);
        ck_assert_msg(strtod(buf, NULL) == d, "%s", buf);
        /* and it is the shortest: the first precision that reads back */
        if (d != floor(d)) {
            for (int p = 1; p <= 17; p++) {
                snprintf(brute, sizeof(brute), "%.*g", p, d);
                if (strtod(brute, NULL) == d)
                    break;
            }
            ck_assert_str_eq(buf, brute);
        }
    }
    fmt_double(29.99, buf);
    ck_assert_str_eq(buf, "29.99");
    fmt_double(247.71780487804878, buf);
    ck_assert_str_eq(buf, "247.71780487804878");
}
END_TEST

START_TEST(dead_letters)
{
    struct sbuf b = { 0 };
    struct reject rej = { REJ_JSON, "unexpected end of input", 5 };
    fmt_dead_letter(&b, "events", 3, 1234, &rej, "{\"a\":", 5);
    ck_assert_str_eq(b.p, "{\"source\":\"events\",\"partition\":3,\"offset\":1234,"
                     "\"error\":\"bad_json\",\"reason\":\"unexpected end of input\","
                     "\"byte_offset\":5,\"record\":\"{\\\"a\\\":\"}");
    b.len = 0;
    rej = (struct reject){ REJ_JSON, "invalid UTF-8", 1 };
    fmt_dead_letter(&b, "events", 0, 7, &rej, "a\xff\xfe", 3);
    ck_assert_str_eq(b.p, "{\"source\":\"events\",\"partition\":0,\"offset\":7,"
                     "\"error\":\"bad_json\",\"reason\":\"invalid UTF-8\",\"byte_offset\":1,"
                     "\"record_base64\":\"Yf/+\"}");
    b.len = 0;
    rej = (struct reject){ REJ_MISSING, "field 'k' is missing", -1 };
    fmt_dead_letter(&b, "events", 0, 8, &rej, "{}", 2);
    ck_assert_str_eq(b.p, "{\"source\":\"events\",\"partition\":0,\"offset\":8,"
                     "\"error\":\"missing_field\",\"reason\":\"field 'k' is missing\","
                     "\"record\":\"{}\"}");
    sbuf_free(&b);
}
END_TEST

Suite *format_suite(void)
{
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, key_templates);
    tcase_add_test(tc, json_results);
    tcase_add_test(tc, redis_values);
    tcase_add_test(tc, shortest_doubles_read_back);
    tcase_add_test(tc, dead_letters);
    suite_add_tcase(s, tc);
    return s;
}
