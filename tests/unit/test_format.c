/*
 * test_format.c - how results, keys and dead letters are written: key
 * templates, Redis values, JSON escaping, nulls, base64 dead letters;
 * fmt_double() against its definition (the printf search) on millions of
 * doubles.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../connectors/format.h"
#include "../../connectors/log.h"
#include "../../connectors/redis_sink.h"
#include "../fuzz/fmt_double_ref.h"
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

/* 10^k for k in [0, 18]; 0 for k = -1 */
static uint64_t pow10_of(int k)
{
    uint64_t p = 1;
    for (int i = 0; i < k; i++)
        p *= 10;
    return k < 0 ? 0 : p;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static double with_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static void same_as_ref(double d)
{
    char buf[40], ref[40];
    size_t n = fmt_double(d, buf), nr = fmt_double_ref(d, ref);
    ck_assert_msg(n == nr && strcmp(buf, ref) == 0, "%a: fmt_double gave \"%s\" (%zu), "
                  "the printf search \"%s\" (%zu)", d, buf, n, ref, nr);
}

/* d and its 2k nearest neighbours */
static void same_around(double d, int k)
{
    uint64_t b = bits_of(d);
    for (int i = -k; i <= k; i++)
        same_as_ref(with_bits(b + (uint64_t)(int64_t)i));
}

/* Every kind of double fmt_double() treats: random bit patterns, prices,
 * averages of prices (the reference job's avg()), dyadic fractions (the
 * exact ties of rounding), decimals of every scale, the edges of the
 * integer-arithmetic range (1e-4, 1e15, 2^53), powers of ten and two,
 * subnormals, zeros, infinities, NaN. */
START_TEST(fmt_double_is_the_printf_search)
{
    static const double edges[] = {
        0.0, -0.0, 1e-4, 1e15, 9007199254740992.0, 4503599627370496.0, 0.1, 0.5, 1.5,
        29.99, 247.71780487804878, 0.30000000000000004, 1e-5, 9.99999999999999e14,
        999999999999999.9, 0.00099999999999999, 0.000123456789012345, 123456.789,
        DBL_MIN, DBL_MAX, DBL_TRUE_MIN, 5e-324, 2.2250738585072009e-308,
        1.7976931348623157e308, 3.0517578125e-05, 5.9604644775390625e-08,
    };
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        same_around(edges[i], 8);
        same_around(-edges[i], 8);
    }
    same_as_ref(INFINITY);
    same_as_ref(-INFINITY);
    same_as_ref(NAN);
    for (int e = -330; e <= 310; e++) {
        same_around(pow(10, e), 2);                 /* powers of ten */
        if (e >= -1074 && e <= 1023)
            same_around(ldexp(1, e), 2);            /* powers of two */
    }
    for (int e = -1074; e < -1022; e++)
        same_around(ldexp(1, e), 2);                /* subnormals */

    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 400000; i++) {
        uint64_t r = xorshift(&x);
        double d;
        switch (i % 6) {
        case 0:
            d = with_bits(r);
            break;
        case 1:
            d = (double)(r % 100000000) / 100.0;    /* prices */
            break;
        case 2: {                                   /* their averages */
            int n = 1 + (int)(r % 60);
            double sum = 0;
            for (int k = 0; k < n; k++)
                sum += (double)(xorshift(&x) % 100000) / 100.0;
            d = sum / n;
            break;
        }
        case 3:                                     /* dyadic: exact ties */
            d = ldexp((double)(r >> (11 + r % 40)), -(int)(xorshift(&x) % 100));
            break;
        case 4:                                     /* decimals of every scale */
            d = (double)(r % 1000000000) * pow(10, (double)((int)(xorshift(&x) % 44) - 30));
            break;
        default:                                    /* log-uniform over [1e-6, 1e17] */
            d = 1e-6 * pow(10, 23.0 * (double)(r >> 11) / 9007199254740992.0);
            d = with_bits(bits_of(d) + xorshift(&x) % 5 - 2);
            break;
        }
        same_as_ref(r >> 63 ? -d : d);
    }
}
END_TEST

/* The Redis sink's encoding of a result (what it queues, byte for byte):
 * versioned with the guard's arguments, plain with HSET and PEXPIRE, from
 * plans built once per (sink, operator), and a key far longer than the
 * buffers start with. */
START_TEST(redis_encoding)
{
    const char *text =
        "job: t\nsources:\n  s: { type: file, path: x, schema: { country: string, id: int,"
        " vip: bool, amount: double } }\n"
        "operators:\n  o: { from: s, key_by: [country, id, vip], window: { type: tumbling,"
        " size: 1m, time: processing }, aggregates: { n: count(), a: avg(amount), f: first(country),"
        " m: min(amount) }, to: [v, p] }\n"
        "sinks:\n  v: { type: redis, url: redis://h, ttl: 2h, key: \"x:{country}:{id}:{window_start}\" }\n"
        "  p: { type: redis, url: redis://h, ttl: 1s, versioned: false,"
        " key: \"y:{vip}:{window_end}:{{lit}}\" }\n";
    struct job *j2;
    struct diags d = { 0 };
    ck_assert_int_eq(job_load_buffer("t2.yaml", text, strlen(text), NULL, &j2, &d), 0);
    diags_free(&d);
    struct value k[3], v[4];
    struct engine_result r = result(k, v);
    r.version = 1704067260000;
    const char *fields =
        "$7\r\ncountry\r\n$4\r\nK\"R\n\r\n$2\r\nid\r\n$3\r\n-42\r\n$3\r\nvip\r\n$4\r\ntrue\r\n"
        "$1\r\nn\r\n$1\r\n3\r\n$1\r\na\r\n$5\r\n29.99\r\n$1\r\nf\r\n$3\r\n\xed\x95\x9c\r\n"
        "$1\r\nm\r\n$0\r\n\r\n";
    char want[1024];
    struct redis_enc enc = { 0 };
    for (int round = 0; round < 2; round++) {       /* the second from the plans */
        ck_assert_int_eq(redis_encode_result(&enc, &j2->sinks[0], j2, &j2->operators[0], &r), 0);
        const char *key = "x:K\"R\n:-42:1704067200000";
        snprintf(want, sizeof(want), "$24\r\n%s\r\n$2\r\n16\r\n%s$9\r\n_sluice:o\r\n"
                 "$13\r\n1704067260000\r\n", key, fields);
        ck_assert_uint_eq(enc.out.len, strlen(want));
        ck_assert_mem_eq(enc.out.p, want, enc.out.len);
        ck_assert_uint_eq(enc.part1, 31);
        ck_assert_mem_eq(enc.out.p + enc.kend - 2 - enc.key.len, key, strlen(key));

        ck_assert_int_eq(redis_encode_result(&enc, &j2->sinks[1], j2, &j2->operators[0], &r), 0);
        key = "y:true:1704067260000:{lit}";
        int hset = snprintf(want, sizeof(want), "*16\r\n$4\r\nHSET\r\n$26\r\n%s\r\n%s", key,
                            fields);
        snprintf(want + hset, sizeof(want) - (size_t)hset,
                 "*3\r\n$7\r\nPEXPIRE\r\n$26\r\n%s\r\n$4\r\n1000\r\n", key);
        ck_assert_uint_eq(enc.out.len, strlen(want));
        ck_assert_mem_eq(enc.out.p, want, enc.out.len);
        ck_assert_uint_eq(enc.part1, (size_t)hset);
        ck_assert_mem_eq(enc.out.p + enc.kend - 2 - enc.key.len, key, strlen(key));
    }
    /* a 5,000-byte key value, in the key and as a field */
    static char big[5000];
    memset(big, 'b', sizeof(big));
    k[0].u.s.p = big;
    k[0].u.s.len = sizeof(big);
    ck_assert_int_eq(redis_encode_result(&enc, &j2->sinks[0], j2, &j2->operators[0], &r), 0);
    ck_assert_uint_eq(enc.key.len, 2 + sizeof(big) + 18);
    ck_assert_mem_eq(enc.out.p, "$5020\r\nx:bbb", 12);
    ck_assert_mem_eq(enc.out.p + enc.kend - 2 - enc.key.len, "x:bbb", 5);
    const char *at = enc.out.p + enc.part1 + strlen("$2\r\n16\r\n$7\r\ncountry\r\n");
    ck_assert_mem_eq(at, "$5000\r\nbbbb", 11);
    ck_assert_mem_eq(at + 7 + sizeof(big), "\r\n$2\r\nid\r\n", 10);
    redis_enc_free(&enc);
    job_free(j2);
}
END_TEST

/* fmt_i64 (two digits at a time) against printf, at every digit count */
START_TEST(integers_as_printf_writes_them)
{
    char buf[32], ref[32];
    uint64_t x = 0x243F6A8885A308D3ULL;
    for (int i = 0; i < 200000; i++) {
        int64_t v = (int64_t)xorshift(&x);
        v >>= xorshift(&x) % 64;                    /* every magnitude */
        if (i < 80)                                 /* 10^k, 10^k - 1, negated */
            v = (int64_t)pow10_of(i % 20 - 1) - (i / 20 % 2) * (i % 20 > 0);
        if (i >= 40 && i < 80)
            v = -v;
        if (i == 64 || i == 65)
            v = i == 64 ? INT64_MIN : INT64_MAX;
        size_t n = fmt_i64(buf, v);
        buf[n] = '\0';
        snprintf(ref, sizeof(ref), "%lld", (long long)v);
        ck_assert_msg(strcmp(buf, ref) == 0, "fmt_i64 gave %s for %s", buf, ref);
    }
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

/* Ill-formed UTF-8 (a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate) becomes '?' byte by byte; well-formed text
 * of 1 to 4 byte characters is kept as it is. */
START_TEST(utf8_clean_keeps_only_well_formed_text)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "plain ascii", "plain ascii" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        { "a\x80z", "a?z" },
        { "cut \xe2\x82", "cut ??" },
        { "overlong \xc0\xaf", "overlong ??" },
        { "surrogate \xed\xa0\x80!", "surrogate ?\?\?!" },
        { "\xff\xfe", "??" },
        { "\xf4\x90\x80\x80", "????" },             /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        size_t n = fmt_utf8_clean(out, cases[i].in, strlen(cases[i].in));
        out[n] = '\0';
        ck_assert_msg(strcmp(out, cases[i].out) == 0, "case %zu: expected '%s', got '%s'", i,
                      cases[i].out, out);
    }
}
END_TEST

/* The last LOG_RECENT warnings and errors, newest first, with their
 * component; notices and info are not kept. */
START_TEST(log_keeps_the_last_warnings_and_errors)
{
    log_init();
    log_msg(LOG_NOTICE, "t", "a notice is not kept");
    for (int i = 0; i < LOG_RECENT + 5; i++)
        log_msg(i % 2 ? LOG_ERR : LOG_WARNING, "comp", "line %d", i);
    struct log_entry e[LOG_RECENT + 1];
    size_t n = log_recent(e, LOG_RECENT + 1);
    ck_assert_msg(n == LOG_RECENT, "expected %d kept, got %zu", LOG_RECENT, n);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        int k = LOG_RECENT + 4 - (int)i;
        snprintf(want, sizeof(want), "line %d", k);
        ck_assert_msg(strcmp(e[i].text, want) == 0 && strcmp(e[i].component, "comp") == 0 &&
                      e[i].level == (k % 2 ? LOG_ERR : LOG_WARNING) && e[i].at_ms > 0,
                      "entry %zu: expected '%s' from comp, got '%s' from %s", i, want, e[i].text,
                      e[i].component);
    }
    ck_assert_uint_eq(log_recent(e, 2), 2);
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
    tcase_add_test(tc, integers_as_printf_writes_them);
    tcase_add_test(tc, redis_encoding);
    tcase_add_test(tc, utf8_clean_keeps_only_well_formed_text);
    tcase_add_test(tc, log_keeps_the_last_warnings_and_errors);
    suite_add_tcase(s, tc);
    /* ~400 k doubles through printf and strtod: longer than the default
     * timeout under ASan (make fuzz-double runs it for hours) */
    TCase *tl = tcase_create("long");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, fmt_double_is_the_printf_search);
    suite_add_tcase(s, tl);
    return s;
}
