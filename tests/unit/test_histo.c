/*
 * test_histo.c - the latency histogram (connectors/histo.h): bucket
 * edges (le: less than or equal), sum, count, exact maximum, adding two,
 * and quantiles interpolated inside a bucket.
 */
#include <check.h>

#include "../../connectors/histo.h"
#include "suites.h"

START_TEST(buckets)
{
    struct histo h = { 0 };
    ck_assert_uint_eq(histo_bound_ns(0), 100000);
    ck_assert_uint_eq(histo_bound_ns(HISTO_NBOUNDS - 1), 60000000000ULL);
    for (int i = 1; i < HISTO_NBOUNDS; i++)
        ck_assert_uint_gt(histo_bound_ns(i), histo_bound_ns(i - 1));
    histo_observe(&h, 0);
    histo_observe(&h, 100000);              /* on the bound: in it */
    histo_observe(&h, 100001);
    histo_observe(&h, 61000000000ULL);      /* past 60 s: +Inf only */
    ck_assert_uint_eq(h.n[0], 2);
    ck_assert_uint_eq(h.n[1], 1);
    ck_assert_uint_eq(h.n[HISTO_NBOUNDS], 1);
    ck_assert_uint_eq(h.count, 4);
    ck_assert_uint_eq(h.sum_ns, 200001 + 61000000000ULL);
    ck_assert_uint_eq(h.max_ns, 61000000000ULL);
}
END_TEST

START_TEST(add_and_quantile)
{
    struct histo a = { 0 }, b = { 0 };
    ck_assert_uint_eq(histo_quantile_ns(&a, 0.5), 0);
    for (int i = 0; i < 100; i++)
        histo_observe(&a, 1000000);         /* 1 ms: bucket (800 us, 1.131 ms] */
    histo_observe(&b, 3000000);             /* 3 ms */
    histo_add(&a, &b);
    ck_assert_uint_eq(a.count, 101);
    ck_assert_uint_eq(a.max_ns, 3000000);
    uint64_t p50 = histo_quantile_ns(&a, 0.5);
    ck_assert_msg(p50 > 800000 && p50 <= 1131371, "p50 %llu not in (800 us, 1.131 ms]",
                  (unsigned long long)p50);
    /* the top bucket holding the maximum answers no more than the maximum */
    ck_assert_uint_eq(histo_quantile_ns(&a, 1.0), 3000000);
}
END_TEST

Suite *histo_suite(void)
{
    Suite *s = suite_create("histo");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buckets);
    tcase_add_test(tc, add_and_quantile);
    suite_add_tcase(s, tc);
    return s;
}
