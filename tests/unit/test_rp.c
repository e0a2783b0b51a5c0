/*
 * test_rp.c - the repartition header, key text and partitioner
 * (connectors/rp_header.h): round trips at the limits, every refusal of
 * the strict parser, the key's JSON escaping, equal text for equal values
 * from different schemas, and the partitioner's range and stability.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../config/job.h"
#include "../../connectors/rp_header.h"
#include "../../engine/record.h"
#include "suites.h"

/* ---- the header ------------------------------------------------------------ */

static void round_trip(struct rp_meta m, const char *want)
{
    char buf[RP_HEADER_MAX];
    int n = rp_meta_format(&m, buf, sizeof(buf));
    ck_assert_msg(n == (int)strlen(want) && strcmp(buf, want) == 0,
                  "formatted '%s' (%d), expected '%s'", n >= 0 ? buf : "", n, want);
    struct rp_meta back;
    ck_assert_msg(rp_meta_parse(buf, (size_t)n, &back) == 0, "'%s' was refused", buf);
    ck_assert_int_eq(back.kind, m.kind);
    ck_assert_int_eq(back.src, m.src);
    ck_assert_int_eq(back.nsrc, m.nsrc);
    ck_assert_int_eq(back.off, m.off);
    ck_assert_int_eq(back.max_ts, m.max_ts);
}

START_TEST(header_round_trips)
{
    round_trip((struct rp_meta){ 'd', 0, 1, 0, INT64_MIN }, "d 0 1 0 -");
    round_trip((struct rp_meta){ 'd', 3, 8, 125034, 1700000000123 }, "d 3 8 125034 1700000000123");
    round_trip((struct rp_meta){ 'w', 7, 8, -1, -5 }, "w 7 8 -1 -5");
    round_trip((struct rp_meta){ 'e', 65535, 65536, INT64_MAX, INT64_MAX },
               "e 65535 65536 9223372036854775807 9223372036854775807");
    round_trip((struct rp_meta){ 'w', 0, 2, 10, INT64_MIN + 1 }, "w 0 2 10 -9223372036854775807");
    /* the longest value fits RP_HEADER_MAX with room to spare */
    struct rp_meta big = { 'e', 65535, 65536, INT64_MAX, INT64_MIN + 1 };
    char buf[RP_HEADER_MAX];
    ck_assert_int_gt(rp_meta_format(&big, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(header_format_too_small)
{
    struct rp_meta m = { 'd', 3, 8, 125034, 17 };
    char buf[RP_HEADER_MAX];
    memset(buf, 'x', sizeof(buf));
    /* "d 3 8 125034 17" is 15 bytes: 16 with the NUL */
    ck_assert_int_eq(rp_meta_format(&m, buf, 15), -ENOSPC);
    ck_assert_msg(buf[0] == 'x', "a refused format wrote into the buffer");
    ck_assert_int_eq(rp_meta_format(&m, buf, 16), 15);
    ck_assert_str_eq(buf, "d 3 8 125034 17");
}
END_TEST

static const char *const refused[] = {
    "",                          /* empty */
    "d",
    "d ",
    "d 0 1 0",                   /* a field missing */
    "d 0 1 0 ",                  /* ... or empty */
    "x 0 1 0 -",                 /* kind not d/w/e */
    "D 0 1 0 -",
    "dd 0 1 0 -",
    " d 0 1 0 -",                /* extra spaces */
    "d  0 1 0 -",
    "d 0  1 0 -",
    "d 0 1 0 - ",
    "d 0 1 0  -",
    "d\t0 1 0 -",
    "d 01 2 0 -",                /* leading zeros */
    "d 0 02 0 -",
    "d 0 1 00 -",
    "d 0 1 0 007",
    "d +0 1 0 -",                /* '+' */
    "d 0 +1 0 -",
    "d 0 1 +5 -",
    "d 0 1 0 +5",
    "d -1 1 0 -",                /* src < 0 */
    "d 1 1 0 -",                 /* src >= nsrc */
    "d 5 3 0 -",
    "d 0 0 0 -",                 /* nsrc 0 */
    "d 0 65537 0 -",             /* nsrc > RP_MAX_SOURCES */
    "d 65536 65537 0 -",
    "d 0 99999999999999999999 0 -",
    "d 0 1 -1 -",                /* off < 0 for 'd' */
    "w 0 1 -2 -",                /* off < -1 for a marker */
    "e 0 1 -9223372036854775808 -",
    "d 0 1 -0 -",                /* "-0" */
    "d 0 1 0 -0",
    "d 0 1 9223372036854775808 -",   /* out of range */
    "d 0 1 0 9223372036854775808",
    "d 0 1 0 -9223372036854775809",
    "d 0 1 0 -9223372036854775808",  /* INT64_MIN is spelled '-' */
    "d 0 1 0 --",
    "d 0 1 0 -x",
    "d 0 1 0 1x",                /* trailing bytes */
    "d 0 1 0 - 1",
    "d 0 1 0 -\n",
    "d 0 1 0 1 ",
    "d 0x1 2 0 -",
    "d 0 1 1e3 -",
    "d 0 1 - -",
    "d - 1 0 -",
};

START_TEST(header_refusals)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct rp_meta m = { 'q', 9, 9, 9, 9 };
        int rc = rp_meta_parse(refused[i], strlen(refused[i]), &m);
        ck_assert_msg(rc == -EINVAL, "'%s' gave %d, expected -EINVAL", refused[i], rc);
        ck_assert_msg(m.kind == 'q' && m.src == 9, "'%s': a refused header wrote the result",
                      refused[i]);
    }
}
END_TEST

/* The length is the caller's: a NUL or anything past len is not read as
 * part of the value. */
START_TEST(header_length_bounds)
{
    struct rp_meta m;
    static const char nul_inside[] = "d 0 1 0\0-";
    ck_assert_int_eq(rp_meta_parse(nul_inside, sizeof(nul_inside) - 1, &m), -EINVAL);
    static const char nul_after[] = "d 0 1 0 -\0";
    ck_assert_int_eq(rp_meta_parse(nul_after, sizeof(nul_after) - 1, &m), -EINVAL);
    static const char longer[] = "d 0 1 0 12345";
    ck_assert_int_eq(rp_meta_parse(longer, 11, &m), 0);         /* "d 0 1 0 123" */
    ck_assert_int_eq(m.max_ts, 123);
    ck_assert_int_eq(rp_meta_parse(longer, 8, &m), -EINVAL);    /* "d 0 1 0 " */
}
END_TEST

/* ---- the key ---------------------------------------------------------------- */

static struct decoder *dec_a, *dec_b;
static struct job *job_a, *job_b;

static void key_setup(void)
{
    dec_a = decoder_for("k", "{ k: string, n: int, ok: bool, price: double }", NULL, "file",
                        &job_a);
    /* the same fields in another order, and one more */
    dec_b = decoder_for("k", "{ other: string, ok: bool, n: int, k: string, price: double }",
                        NULL, "kafka", &job_b);
}

static void key_teardown(void)
{
    decoder_free(dec_a);
    decoder_free(dec_b);
    job_free(job_a);
    job_free(job_b);
}

/* The index of field name in source 0 of job. */
static int field(const struct job *job, const char *name)
{
    const struct job_source *s = &job->sources[0];
    for (size_t i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return (int)i;
    ck_abort_msg("no field %s", name);
    return -1;
}

/* The key text of json's fields names[0..n) through decoder d. */
static int key_of(struct decoder *d, const struct job *job, const char *json,
                  const char *const *names, size_t n, char *buf, size_t size)
{
    struct record rec;
    struct reject rej;
    int rc = decoder_decode(d, json, strlen(json), 0, &rec, &rej);
    ck_assert_msg(rc == 0, "%s: %s", json, rc ? rej.why : "");
    int f[8];
    for (size_t i = 0; i < n; i++)
        f[i] = field(job, names[i]);
    return rp_key_text(&rec, f, n, buf, size);
}

static void key_is(const char *json, const char *const *names, size_t n, const char *want)
{
    char buf[256];
    int len = key_of(dec_a, job_a, json, names, n, buf, sizeof(buf));
    ck_assert_msg(len == (int)strlen(want) && memcmp(buf, want, strlen(want)) == 0,
                  "%s: key '%.*s' (%d), expected '%s'", json, len > 0 ? len : 0, buf, len, want);
}

static const char *const K[] = { "k" };
static const char *const KN[] = { "k", "n", "ok" };

START_TEST(key_text_values)
{
    key_is("{\"k\":\"u42\",\"n\":7,\"ok\":true,\"price\":1.5}", K, 1, "[\"u42\"]");
    key_is("{\"k\":\"u42\",\"n\":7,\"ok\":true,\"price\":1.5}", KN, 3, "[\"u42\",7,true]");
    key_is("{\"k\":\"\",\"n\":-9223372036854775808,\"ok\":false,\"price\":1}", KN, 3,
           "[\"\",-9223372036854775808,false]");
    static const char *const P[] = { "price" };
    key_is("{\"k\":\"a\",\"n\":1,\"ok\":true,\"price\":29.99}", P, 1, "[29.99]");
    key_is("{\"k\":\"a\",\"n\":1,\"ok\":true,\"price\":-0.0}", P, 1, "[0]");
    key_is("{\"k\":\"a\",\"n\":1,\"ok\":true,\"price\":1e300}", P, 1, "[1e+300]");
}
END_TEST

START_TEST(key_text_escaping)
{
    /* the decoded value is escaped again one way: quote, backslash, and
     * control characters; everything else (UTF-8 included) as it is */
    key_is("{\"k\":\"a\\\"b\\\\c\",\"n\":1,\"ok\":true,\"price\":1}", K, 1,
           "[\"a\\\"b\\\\c\"]");
    key_is("{\"k\":\"\\n\\t\\u0001\\u001f \",\"n\":1,\"ok\":true,\"price\":1}", K, 1,
           "[\"\\u000a\\u0009\\u0001\\u001f \"]");
    key_is("{\"k\":\"\\u0041\\/\\u00e9\",\"n\":1,\"ok\":true,\"price\":1}", K, 1,
           "[\"A/\xc3\xa9\"]");
    key_is("{\"k\":\"caf\xc3\xa9,\\u2028\",\"n\":1,\"ok\":true,\"price\":1}", K, 1,
           "[\"caf\xc3\xa9,\xe2\x80\xa8\"]");
    /* a value with a comma is not two values */
    static const char *const KK[] = { "k", "k" };
    char one[64], two[64];
    int n1 = key_of(dec_a, job_a, "{\"k\":\"a\\\",\\\"b\",\"n\":1,\"ok\":true,\"price\":1}", K, 1,
                    one, sizeof(one));
    int n2 = key_of(dec_a, job_a, "{\"k\":\"a\",\"n\":1,\"ok\":true,\"price\":1}", KK, 2, two,
                    sizeof(two));
    ck_assert_int_gt(n1, 0);
    ck_assert_int_gt(n2, 0);
    ck_assert_msg(n1 != n2 || memcmp(one, two, (size_t)n1) != 0, "'%.*s' and '%.*s' collide",
                  n1, one, n2, two);
}
END_TEST

/* Equal values from sources of different schemas (the two sides of a
 * join) give the same text, however the input spelled them. */
START_TEST(key_text_across_schemas)
{
    char a[128], b[128];
    int na = key_of(dec_a, job_a, "{\"k\":\"u\\u0031\",\"n\":12,\"ok\":false,\"price\":2.5}", KN,
                    3, a, sizeof(a));
    int nb = key_of(dec_b, job_b, "{ \"n\" : 12, \"other\":\"x\", \"k\":\"u1\", \"ok\" : false,"
                    " \"price\": 9 }", KN, 3, b, sizeof(b));
    ck_assert_int_gt(na, 0);
    ck_assert_msg(na == nb && memcmp(a, b, (size_t)na) == 0, "'%.*s' != '%.*s'", na, a, nb, b);
    ck_assert_str_eq(a, "[\"u1\",12,false]");
    ck_assert_int_eq(rp_partition(a, (size_t)na, 12), rp_partition(b, (size_t)nb, 12));
}
END_TEST

START_TEST(key_text_no_room)
{
    const char *json = "{\"k\":\"abc\",\"n\":123,\"ok\":true,\"price\":1}";
    const char *want = "[\"abc\",123,true]";   /* 16 bytes, 17 with the NUL */
    char buf[64];
    for (size_t size = 0; size <= strlen(want); size++) {
        int n = key_of(dec_a, job_a, json, KN, 3, buf, size);
        ck_assert_msg(n == -ENOSPC, "size %zu: %d, expected -ENOSPC", size, n);
    }
    ck_assert_int_eq(key_of(dec_a, job_a, json, KN, 3, buf, strlen(want) + 1), (int)strlen(want));
    ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(key_text_bad_field)
{
    struct record rec;
    struct reject rej;
    const char *json = "{\"k\":\"abc\",\"n\":123,\"ok\":true,\"price\":1}";
    ck_assert_int_eq(decoder_decode(dec_a, json, strlen(json), 0, &rec, &rej), 0);
    char buf[64];
    int bad[] = { (int)rec.nv };
    ck_assert_int_eq(rp_key_text(&rec, bad, 1, buf, sizeof(buf)), -EINVAL);
    int neg[] = { -1 };
    ck_assert_int_eq(rp_key_text(&rec, neg, 1, buf, sizeof(buf)), -EINVAL);
}
END_TEST

/* ---- the partitioner ------------------------------------------------------------ */

START_TEST(partition_range)
{
    int32_t seen[7] = { 0 };
    char key[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "[\"u%d\"]", i);
        int32_t p = rp_partition(key, (size_t)n, 7);
        ck_assert_msg(p >= 0 && p < 7, "%s: partition %d of 7", key, p);
        seen[p]++;
        ck_assert_int_eq(rp_partition(key, (size_t)n, 1), 0);
    }
    for (int p = 0; p < 7; p++)
        ck_assert_msg(seen[p] > 80, "partition %d got %d of 1000 keys", p, seen[p]);
    ck_assert_int_eq(rp_partition("x", 1, 0), -EINVAL);
    ck_assert_int_eq(rp_partition("x", 1, -3), -EINVAL);
}
END_TEST

/* Fixed values: the routing is part of the repartition topics' contents,
 * so it must never change between versions (XXH64, seed 0, mod n). */
START_TEST(partition_stable)
{
    ck_assert_int_eq(rp_partition("", 0, 1000), (int32_t)(0xEF46DB3751D8E999ULL % 1000));
    ck_assert_int_eq(rp_partition("[\"u42\"]", 7, 32768),
                     rp_partition("[\"u42\"]", 7, 32768));
}
END_TEST

Suite *rp_suite(void)
{
    Suite *s = suite_create("rp");
    TCase *t = tcase_create("header");
    tcase_add_test(t, header_round_trips);
    tcase_add_test(t, header_format_too_small);
    tcase_add_test(t, header_refusals);
    tcase_add_test(t, header_length_bounds);
    suite_add_tcase(s, t);
    t = tcase_create("key");
    tcase_add_checked_fixture(t, key_setup, key_teardown);
    tcase_add_test(t, key_text_values);
    tcase_add_test(t, key_text_escaping);
    tcase_add_test(t, key_text_across_schemas);
    tcase_add_test(t, key_text_no_room);
    tcase_add_test(t, key_text_bad_field);
    suite_add_tcase(s, t);
    t = tcase_create("partition");
    tcase_add_test(t, partition_range);
    tcase_add_test(t, partition_stable);
    suite_add_tcase(s, t);
    return s;
}
