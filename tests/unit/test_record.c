/*
 * test_record.c - the JSON record decoder: typed fields, event times, and
 * every kind of bad record (each rejected with its reason, none crashing).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../engine/record.h"
#include "suites.h"

static struct job *job;
static struct decoder *dec;
static struct record rec;
static struct reject rej;

struct decoder *decoder_for(const char *key, const char *schema, const char *event_time,
                            const char *type, struct job **jobp)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "job: t\nsources:\n  s:\n    type: %s\n%s    schema: %s\n%s%s%s"
             "operators:\n  o: { from: s, key_by: %s, window: { type: global, trigger: count 1 },"
             " aggregates: { events: count() }, to: out }\nsinks:\n  out: { type: stdout }\n",
             type, strcmp(type, "kafka") == 0 ? "    brokers: b:1\n    topic: t\n"
                                              : "    path: /dev/null\n",
             schema, event_time ? "    event_time: " : "", event_time ? event_time : "",
             event_time ? "\n" : "", key);
    struct diags d = { 0 };
    int rc = job_load_buffer("t.yaml", text, strlen(text), NULL, jobp, &d);
    ck_assert_msg(rc == 0, "%s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    struct decoder *made = decoder_new(&(*jobp)->sources[0]);
    ck_assert_ptr_nonnull(made);
    return made;
}

static void load(const char *schema, const char *event_time, const char *type)
{
    decoder_free(dec);
    job_free(job);
    dec = decoder_for("k", schema, event_time, type, &job);
}

static void setup(void)
{
    load("{ k: string, kind: string, price: double, n: int, ok: bool }",
         "{ field: ts, format: iso8601, timezone: \"+09:00\" }", "file");
}

static void teardown(void)
{
    decoder_free(dec);
    job_free(job);
    dec = NULL;
    job = NULL;
}

static int decode(const char *s)
{
    return decoder_decode(dec, s, strlen(s), 1700000000000LL, &rec, &rej);
}

static void good(const char *s)
{
    int rc = decode(s);
    ck_assert_msg(rc == 0, "%s: %s", s, rc ? rej.why : "");
}

static void rejected(const char *s, enum reject_kind k, const char *reason)
{
    ck_assert_msg(decode(s) < 0, "%s was accepted", s);
    ck_assert_msg(rej.kind == k, "%s: kind %s, expected %s (%s)", s, reject_kind_name(rej.kind),
                  reject_kind_name(k), rej.why);
    ck_assert_str_eq(rej.why, reason);
    if (k != REJ_JSON)
        ck_assert_msg(rej.at == -1, "%s: a %s reject has no byte offset, got %lld", s,
                      reject_kind_name(k), (long long)rej.at);
}

/* A bad_json record: its reason and the byte it names. */
static void bad_at(const char *s, const char *reason, long long at)
{
    rejected(s, REJ_JSON, reason);
    ck_assert_msg(rej.at == at, "%s: %s at byte %lld, expected byte %lld", s, reason,
                  (long long)rej.at, at);
}

#define REF "\"k\":\"u1\",\"kind\":\"view\",\"price\":29.99,\"n\":3,\"ok\":true"

START_TEST(typed_fields)
{
    good("{" REF ",\"ts\":\"2024-01-01T10:00:00\"}\n");
    ck_assert_uint_eq(rec.nv, 5);
    ck_assert_int_eq(rec.v[0].type, VT_STRING);
    ck_assert_int_eq((int)rec.v[0].u.s.len, 2);
    ck_assert_int_eq(memcmp(rec.v[0].u.s.p, "u1", 2), 0);
    ck_assert(rec.v[2].u.d == 29.99);
    ck_assert_int_eq(rec.v[3].u.i, 3);
    ck_assert_int_eq(rec.v[4].u.b, 1);
    ck_assert_int_eq(rec.event_time, 1704070800000LL);      /* 10:00 at +09:00 */
    /* order, whitespace and extra fields (of any shape) do not matter */
    good(" { \"ts\" : \"2024-01-01T10:00:00Z\" , \"extra\": {\"a\":[1,2,{\"b\":null}]},"
         " \"ok\":false, \"n\":-7, \"price\":1e2, \"kind\":\"\", \"k\":\"x\" } ");
    ck_assert_int_eq(rec.event_time, 1704103200000LL);
    ck_assert(rec.v[2].u.d == 100.0);
    ck_assert_int_eq(rec.v[3].u.i, -7);
    ck_assert_int_eq(rec.v[4].u.b, 0);
    ck_assert_uint_eq(rec.v[1].u.s.len, 0);
}
END_TEST

START_TEST(numbers_are_exact)
{
    good("{\"k\":\"a\",\"kind\":\"b\",\"price\":0.1,\"n\":9223372036854775807,\"ok\":true,"
         "\"ts\":\"2024-01-01T10:00:00\"}");
    ck_assert(rec.v[2].u.d == 0.1);
    ck_assert_int_eq(rec.v[3].u.i, INT64_MAX);
    good("{\"k\":\"a\",\"kind\":\"b\",\"price\":123456789.123456789e-3,"
         "\"n\":-9223372036854775808,\"ok\":true,\"ts\":\"2024-01-01T10:00:00\"}");
    ck_assert(rec.v[2].u.d == 123456789.123456789e-3);
    ck_assert_int_eq(rec.v[3].u.i, INT64_MIN);
    good("{\"k\":\"a\",\"kind\":\"b\",\"price\":-0,\"n\":0,\"ok\":true,"
         "\"ts\":\"2024-01-01T10:00:00\"}");
    good("{\"k\":\"a\",\"kind\":\"b\",\"price\":2.2250738585072014e-308,\"n\":0,\"ok\":true,"
         "\"ts\":\"2024-01-01T10:00:00\"}");
    ck_assert(rec.v[2].u.d == 2.2250738585072014e-308);
}
END_TEST

START_TEST(strings_unescape)
{
    good("{\"k\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\",\"kind\":\"\xed\x95\x9c\","
         "\"price\":1,\"n\":1,\"ok\":true,\"ts\":\"2024-01-01T10:00:00\"}");
    const char want[] = "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80";
    ck_assert_uint_eq(rec.v[0].u.s.len, sizeof(want) - 1);
    ck_assert_int_eq(memcmp(rec.v[0].u.s.p, want, sizeof(want) - 1), 0);
    ck_assert_uint_eq(rec.v[1].u.s.len, 3);
}
END_TEST

START_TEST(bad_json)
{
    bad_at("", "empty record", 0);
    bad_at(" \n", "empty record", 0);
    bad_at("not json", "invalid literal", 0);
    bad_at("[1,2]", "not a JSON object", 0);
    bad_at(" \"s\"", "not a JSON object", 1);
    bad_at("[1,2,]", "trailing comma", 4);
    bad_at("{" REF, "unexpected end of input", 1 + strlen(REF));
    bad_at("{" REF ",\"ts\":\"2024-01-01T10:00:00\"} {}", "text after the JSON value",
           30 + strlen(REF));
    bad_at("{" REF ",\"ts\":\"2024-01-01T10:00:00\",\"x\":tru}", "invalid literal",
           33 + strlen(REF));
    bad_at("{" REF ",\"ts\":\"2024-01-01T10:00:00\",\"x\":01}", "invalid number",
           33 + strlen(REF));
    /* the record: a trailing comma after the last member */
    bad_at("{\"event_time\":\"2024-03-01T09:56:09\",\"event_type\":\"view\","
           "\"user_id\":\"9854683\",\"price\":74.38,}", "trailing comma", 89);
    bad_at("{\"k\":\"a\",\"kind\":\"b\",\"price\":1.,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "invalid number", 28);
    bad_at("{\"k\":\"a\\q\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "invalid escape", 7);
    bad_at("{\"k\":\"a\tb\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "control character in string", 7);
    /* an unused field is checked as strictly as a used one */
    bad_at("{" REF ",\"ts\":\"2024-01-01T10:00:00\",\"x\":{\"y\":[1,{\"z\":\"\xc0\xaf\"}]}}",
           "invalid UTF-8", 47 + strlen(REF));
    /* a grammar error wins over a missing field */
    bad_at("{\"k\":\"a\",}", "trailing comma", 8);
}
END_TEST

START_TEST(duplicate_keys_last_wins)
{
    good("{" REF ",\"k\":\"again\",\"ts\":\"2024-01-01T10:00:00\"}");
    ck_assert_uint_eq(rec.v[0].u.s.len, 5);
    ck_assert_int_eq(memcmp(rec.v[0].u.s.p, "again", 5), 0);
    /* the earlier value is an unused one: any valid JSON */
    good("{\"price\":\"x\",\"ts\":[]," REF ",\"ts\":\"2024-01-01T10:00:00\"}");
    ck_assert(rec.v[2].u.d == 29.99);
    rejected("{" REF ",\"price\":\"x\",\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE,
             "field 'price' must be a number, got a string");
    /* keys are compared with their escapes undone */
    good("{" REF ",\"\\u006b\":\"esc\",\"t\\u0073\":\"2024-01-01T10:00:00\"}");
    ck_assert_uint_eq(rec.v[0].u.s.len, 3);
    ck_assert_int_eq(memcmp(rec.v[0].u.s.p, "esc", 3), 0);
}
END_TEST

START_TEST(schema_violations)
{
    rejected("{\"k\":\"a\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ts\":\"2024-01-01T10:00:00\"}",
             REJ_MISSING, "field 'ok' is missing");
    rejected("{\"k\":null,\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_MISSING, "field 'k' is null");
    rejected("{\"k\":7,\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE, "field 'k' must be a string, got a number");
    rejected("{\"k\":\"a\",\"kind\":\"b\",\"price\":\"29.99\",\"n\":1,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE,
             "field 'price' must be a number, got a string");
    rejected("{\"k\":\"a\",\"kind\":\"b\",\"price\":1,\"n\":1.5,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE,
             "field 'n' must be a whole number in int64 range, got 1.5");
    rejected("{\"k\":\"a\",\"kind\":\"b\",\"price\":1,\"n\":9223372036854775808,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE,
             "field 'n' must be a whole number in int64 range, got 9223372036854775808");
    rejected("{\"k\":\"a\",\"kind\":\"b\",\"price\":1e400,\"n\":1,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE, "field 'price': number out of double range");
    rejected("{\"k\":\"a\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":1,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE, "field 'ok' must be true or false, got a number");
    rejected("{\"k\":{\"id\":1},\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
             "\"ts\":\"2024-01-01T10:00:00\"}", REJ_TYPE, "field 'k' must be a string, got an object");
    bad_at("{\"k\":\"a\xff\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "invalid UTF-8", 7);
    bad_at("{\"k\":\"\xc0\xaf\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "invalid UTF-8", 6);
    bad_at("{\"k\":\"\xed\xa0\x80\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "invalid UTF-8", 6);
    bad_at("{\"k\":\"\\ud800x\",\"kind\":\"b\",\"price\":1,\"n\":1,\"ok\":true,"
           "\"ts\":\"2024-01-01T10:00:00\"}", "lone surrogate", 6);
}
END_TEST

START_TEST(event_times)
{
    rejected("{" REF "}", REJ_MISSING, "event time 'ts' is missing");
    rejected("{" REF ",\"ts\":null}", REJ_MISSING, "event time 'ts' is null");
    rejected("{" REF ",\"ts\":1704103200000}", REJ_TIME,
             "event time 'ts' must be an ISO-8601 string, got a number");
    rejected("{" REF ",\"ts\":\"2024-02-30T10:00:00\"}", REJ_TIME,
             "event time 'ts' \"2024-02-30T10:00:00\": no such date");
    load("{ k: string, ts: int }", "{ field: ts, format: epoch_ms }", "file");
    good("{\"k\":\"a\",\"ts\":1704103200123}");
    ck_assert_int_eq(rec.event_time, 1704103200123LL);
    ck_assert_int_eq(rec.v[1].u.i, 1704103200123LL);        /* also a field */
    rejected("{\"k\":\"a\",\"ts\":99999999999999999}", REJ_TIME,
             "event time 'ts' 99999999999999999 is outside 1900..9999");
    load("{ k: string }", "{ field: at, format: epoch_s }", "file");
    good("{\"k\":\"a\",\"at\":1704103200.123}");
    ck_assert_int_eq(rec.event_time, 1704103200123LL);
    good("{\"k\":\"a\",\"at\":1.7041032e9}");
    ck_assert_int_eq(rec.event_time, 1704103200000LL);
    good("{\"k\":\"a\",\"at\":-0.0005}");
    ck_assert_int_eq(rec.event_time, -1);                   /* floor */
    rejected("{\"k\":\"a\",\"at\":\"1704103200\"}", REJ_TIME,
             "event time 'at' must be a number (epoch_s), got a string");
    rejected("{\"k\":\"a\",\"at\":1e300}", REJ_TIME, "event time 'at' 1e300 is outside 1900..9999");
    load("{ k: string }", "{ format: kafka_timestamp }", "kafka");
    good("{\"k\":\"a\"}");
    ck_assert_int_eq(rec.event_time, 1700000000000LL);
}
END_TEST

START_TEST(huge_records)
{
    size_t n = RECORD_MAX_BYTES + 10;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, "{\"k\":\"", 6);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    rejected(big, REJ_TOO_BIG, "record is 1048586 bytes; the limit is 1048576");
    /* under the byte limit, with 100,000 values, or 50,000 top-level members */
    size_t len = 0;
    len += (size_t)sprintf(big, "{" REF ",\"ts\":\"2024-01-01T10:00:00\",\"x\":[");
    for (int i = 0; i < 100000; i++)
        len += (size_t)sprintf(big + len, "%s1", i ? "," : "");
    strcpy(big + len, "]}");
    good(big);
    len = (size_t)sprintf(big, "{" REF ",\"ts\":\"2024-01-01T10:00:00\"");
    for (int i = 0; i < 50000; i++)
        len += (size_t)sprintf(big + len, ",\"x%d\":1", i);
    strcpy(big + len, "}");
    good(big);
    /* nesting: 1000 levels with the top level, not 1001 */
    len = (size_t)sprintf(big, "{" REF ",\"ts\":\"2024-01-01T10:00:00\",\"x\":");
    size_t open = len;
    memset(big + len, '[', 999);
    memset(big + len + 999, ']', 999);
    strcpy(big + len + 1998, "}");
    good(big);
    memset(big + open, '[', 1000);
    memset(big + open + 1000, ']', 1000);
    strcpy(big + open + 2000, "}");
    bad_at(big, "nesting deeper than 1000", (long long)open + 999);
    /* a long string value is fine */
    len = (size_t)sprintf(big, "{" REF ",\"ts\":\"2024-01-01T10:00:00\",\"x\":\"");
    memset(big + len, 'a', 500000);
    strcpy(big + len + 500000, "\"}");
    good(big);
    free(big);
}
END_TEST

Suite *record_suite(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, typed_fields);
    tcase_add_test(tc, numbers_are_exact);
    tcase_add_test(tc, strings_unescape);
    tcase_add_test(tc, bad_json);
    tcase_add_test(tc, duplicate_keys_last_wins);
    tcase_add_test(tc, schema_violations);
    tcase_add_test(tc, event_times);
    tcase_add_test(tc, huge_records);
    suite_add_tcase(s, tc);
    return s;
}
