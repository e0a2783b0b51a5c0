/*
 * test_timers.c - bucketed and heap timer queues: order, ties, due times.
 */
#include <check.h>
#include <stdlib.h>

#include "../../engine/timers.h"
#include "suites.h"

START_TEST(buckets_pop_in_time_then_insertion_order)
{
    struct tq_buckets q = { 0 };
    ck_assert_int_eq(tqb_add(&q, 200, 1), 0);
    ck_assert_int_eq(tqb_add(&q, 100, 2), 0);
    ck_assert_int_eq(tqb_add(&q, 200, 3), 0);
    ck_assert_int_eq(tqb_add(&q, 150, 4), 0);
    ck_assert_int_eq(tqb_add(&q, 100, 5), 0);
    ck_assert_int_eq(tqb_next(&q), 100);
    int64_t t;
    uint32_t id;
    ck_assert_int_eq(tqb_pop_due(&q, 99, &t, &id), 0);
    const uint32_t want[] = { 2, 5, 4, 1, 3 };
    const int64_t wt[] = { 100, 100, 150, 200, 200 };
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(tqb_pop_due(&q, 1000, &t, &id), 1);
        ck_assert_uint_eq(id, want[i]);
        ck_assert_int_eq(t, wt[i]);
    }
    ck_assert_int_eq(tqb_pop_due(&q, 1000, &t, &id), 0);
    ck_assert_int_eq(tqb_next(&q), INT64_MAX);
    tqb_destroy(&q);
}
END_TEST

START_TEST(buckets_accept_adds_while_popping)
{
    struct tq_buckets q = { 0 };
    int64_t t;
    uint32_t id;
    for (uint32_t i = 0; i < 100; i++)
        ck_assert_int_eq(tqb_add(&q, 10, i), 0);
    int n = 0;
    while (tqb_pop_due(&q, 50, &t, &id)) {
        if (t == 10 && id < 50) {
            ck_assert_int_eq(tqb_add(&q, 20 + id % 3, 1000 + id), 0);  /* due, later */
            ck_assert_int_eq(tqb_add(&q, 10, 2000 + id), 0);           /* same bucket */
        }
        n++;
    }
    ck_assert_int_eq(n, 200);
    /* many distinct times, added out of order */
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(tqb_add(&q, (i * 7919) % 2000, (uint32_t)i), 0);
    int64_t last = -1;
    n = 0;
    while (tqb_pop_due(&q, 5000, &t, &id)) {
        ck_assert_int_ge(t, last);
        last = t;
        n++;
    }
    ck_assert_int_eq(n, 2000);
    tqb_destroy(&q);
}
END_TEST

START_TEST(heap_orders_by_time_then_sequence)
{
    struct tq_heap q = { 0 };
    enum { N = 20000 };
    srand(7);
    for (uint32_t i = 0; i < N; i++)
        ck_assert_int_eq(tqh_add(&q, rand() % 500, i), 0);
    int64_t t, last = -1;
    uint32_t id, last_id = 0;
    size_t n = 0;
    ck_assert_int_eq(tqh_pop_due(&q, -1, &t, &id), 0);
    while (tqh_pop_due(&q, 10000, &t, &id)) {
        ck_assert_int_ge(t, last);
        if (t == last)
            ck_assert_uint_gt(id, last_id);     /* equal times: insertion order */
        last = t;
        last_id = id;
        n++;
    }
    ck_assert_uint_eq(n, N);
    ck_assert_int_eq(tqh_next(&q), INT64_MAX);
    tqh_destroy(&q);
}
END_TEST

Suite *timers_suite(void)
{
    Suite *s = suite_create("timers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buckets_pop_in_time_then_insertion_order);
    tcase_add_test(tc, buckets_accept_adds_while_popping);
    tcase_add_test(tc, heap_orders_by_time_then_sequence);
    suite_add_tcase(s, tc);
    return s;
}
