/*
 * test_watermark.c - per-partition watermarks and idleness on a fake clock.
 */
#include <check.h>

#include "../../engine/watermark.h"
#include "suites.h"

START_TEST(single_partition_lags_by_the_bound)
{
    struct watermark w;
    wm_init(&w, 10000, -1);
    ck_assert_int_eq(w.current, WM_MIN);
    ck_assert_int_eq(wm_observe(&w, 0, 100000, 0), 100000 - 10000 - 1);
    ck_assert_int_eq(wm_observe(&w, 0, 50000, 0), 89999);      /* never backwards */
    ck_assert_int_eq(wm_observe(&w, 0, 100500, 0), 90499);
    wm_destroy(&w);
}
END_TEST

START_TEST(minimum_over_partitions)
{
    struct watermark w;
    wm_init(&w, 0, -1);
    wm_add(&w, 0, 0);
    wm_add(&w, 1, 0);
    ck_assert_int_eq(wm_observe(&w, 0, 1000, 0), WM_MIN);      /* 1 has no record yet */
    ck_assert_int_eq(wm_observe(&w, 1, 500, 0), 499);
    ck_assert_int_eq(wm_observe(&w, 1, 2000, 0), 999);
    ck_assert_int_eq(wm_partition(&w, 1), 1999);
    wm_remove(&w, 0);                                           /* revoked */
    ck_assert_int_eq(w.current, 1999);
    wm_destroy(&w);
}
END_TEST

START_TEST(idle_partitions_stop_holding_back)
{
    struct watermark w;
    wm_init(&w, 0, 60000);
    wm_add(&w, 0, 0);
    wm_add(&w, 1, 0);                       /* never sends a record */
    ck_assert_int_eq(wm_observe(&w, 0, 5000, 1000), WM_MIN);
    ck_assert_int_eq(wm_tick(&w, 59999), WM_MIN);
    ck_assert_int_eq(wm_tick(&w, 60000), 4999);     /* partition 1 is idle now */
    ck_assert_int_eq(wm_observe(&w, 0, 9000, 61000), 8999);
    /* partition 1 wakes up behind: it holds the watermark again, which
     * does not go back */
    ck_assert_int_eq(wm_observe(&w, 1, 3000, 62000), 8999);
    ck_assert_int_eq(wm_observe(&w, 0, 20000, 62001), 8999);
    ck_assert_int_eq(wm_observe(&w, 1, 15000, 62002), 14999);
    /* both idle: the watermark holds */
    ck_assert_int_eq(wm_tick(&w, 200000), 14999);
    wm_destroy(&w);
}
END_TEST

START_TEST(bounded_end_and_finish)
{
    struct watermark w;
    wm_init(&w, 0, -1);
    wm_add(&w, 0, 0);
    wm_add(&w, 1, 0);
    wm_observe(&w, 0, 100, 0);
    ck_assert_int_eq(wm_end_partition(&w, 1), 99);
    ck_assert_int_eq(wm_finish(&w), WM_MAX);
    wm_destroy(&w);
}
END_TEST

Suite *watermark_suite(void)
{
    Suite *s = suite_create("watermark");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, single_partition_lags_by_the_bound);
    tcase_add_test(tc, minimum_over_partitions);
    tcase_add_test(tc, idle_partitions_stop_holding_back);
    tcase_add_test(tc, bounded_end_and_finish);
    suite_add_tcase(s, tc);
    return s;
}
