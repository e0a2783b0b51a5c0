/*
 * test_timers.c - bucketed and heap timer queues: order, ties, due times.
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../engine/hugemem.h"
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

/* The heap's pop order against a plain sort: entries added at random times
 * (past, near, far; many equal), popped with a rising `now`, adds between
 * pops (as firing re-arms keys), must come out in (time, insertion) order
 * among those due, exactly as one big heap gives them. */
struct ref_ent {
    int64_t time;
    uint32_t seq, id;
    int popped;
};

START_TEST(heap_slots_keep_the_order_of_one_heap)
{
    enum { N = 30000 };
    static struct ref_ent ref[N];
    struct tq_heap q = { 0 };
    size_t nref = 0, npopped = 0;
    uint64_t x = 9;
    int64_t now = 5000;
    while (nref < N || npopped < nref) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(x >> 33);
        if (nref < N && r % 3 != 0) {
            int64_t t = r % 7 == 0 ? now - (int64_t)(r % 3000)          /* already due */
                        : r % 7 < 4 ? now + (int64_t)(r % 2000)          /* soon */
                        : now + (int64_t)(r % 600000);                  /* minutes on */
            if (r % 11 == 0)
                t = now + 1024 - now % 1024;                            /* a slot's edge */
            if (tqh_add(&q, t, (uint32_t)nref) < 0)
                ck_abort_msg("tqh_add failed");
            ref[nref] = (struct ref_ent){ t, (uint32_t)nref, (uint32_t)nref, 0 };
            nref++;
            continue;
        }
        now += r % 4000;
        if (nref == N)
            now += 100000;
        int64_t t;
        uint32_t id;
        while (tqh_pop_due(&q, now, &t, &id)) {
            /* the reference: the earliest (time, seq) not popped, due */
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < nref; i++)
                if (!ref[i].popped && (best == SIZE_MAX || ref[i].time < ref[best].time))
                    best = i;
            /* (plain ifs: check writes down every passing assertion) */
            if (best == SIZE_MAX || ref[best].time > now)
                ck_abort_msg("popped id %u at %" PRId64 " with nothing due", id, t);
            if (id != ref[best].id || t != ref[best].time)
                ck_abort_msg("popped id %u at %" PRId64 ", expected id %u at %" PRId64, id, t,
                             ref[best].id, ref[best].time);
            ref[best].popped = 1;
            npopped++;
            if (npopped % 5 == 0 && nref < N) {    /* re-armed while firing */
                int64_t again = t + (int64_t)(id % 1500);
                if (tqh_add(&q, again, (uint32_t)nref) < 0)
                    ck_abort_msg("tqh_add failed");
                ref[nref] = (struct ref_ent){ again, (uint32_t)nref, (uint32_t)nref, 0 };
                nref++;
            }
        }
        for (size_t i = 0; i < nref; i++)
            if (!ref[i].popped && ref[i].time <= now)
                ck_abort_msg("id %zu at %" PRId64 " was due at %" PRId64 " and not popped", i,
                             ref[i].time, now);
        if (nref == N && npopped < nref && tqh_next(&q) <= now)
            ck_abort_msg("tqh_next %" PRId64 ": something due was left", tqh_next(&q));
    }
    ck_assert_int_eq(tqh_next(&q), INT64_MAX);
    ck_assert_uint_eq(tqh_bytes(&q) > 0, 1);
    tqh_destroy(&q);
}
END_TEST

START_TEST(queues_grow_past_huge_pages_keeping_order_and_size)
{
    /* beyond a huge page, arrays grow by 1/8 in whole huge pages (moved,
     * not copied): every timer is kept, and the slack stays under 1/8 */
    enum { N = 1100000 };           /* doubling would hold 2^21 entries, 33 MB */
    struct tq_heap h = { 0 };
    struct tq_buckets q = { 0 };
    /* (plain ifs in the loops: a ck_assert per timer costs Check a write) */
    for (uint32_t i = 0; i < N; i++)
        if (tqh_add(&h, (int64_t)(i % 1000), i) < 0 ||
            tqb_add(&q, 5000 + (int64_t)(i % 2) * 1000, i) < 0)
            ck_abort_msg("timer %u of %d could not be added", i, N);
    size_t hb = tqh_bytes(&h), want = (size_t)N * sizeof(struct tq_entry);
    ck_assert_msg(hb >= want && hb <= want + want / 8 + HM_PAGE,
                  "heap of %d timers holds %zu bytes: expected %zu .. %zu", N, hb, want,
                  want + want / 8 + HM_PAGE);
    size_t bb = tqb_bytes(&q), bwant = (size_t)N * sizeof(uint32_t);
    ck_assert_msg(bb >= bwant && bb <= bwant + bwant / 8 + 3 * HM_PAGE,
                  "buckets of %d timers hold %zu bytes: expected %zu .. %zu", N, bb, bwant,
                  bwant + bwant / 8 + 3 * HM_PAGE);
    int64_t t, last = -1;
    uint32_t id, n = 0;
    while (tqh_pop_due(&h, 1000, &t, &id)) {
        if (t < last || id % 1000 != (uint32_t)t)
            ck_abort_msg("pop %u: time %lld id %u after time %lld", n, (long long)t, id,
                         (long long)last);
        last = t;
        n++;
    }
    ck_assert_uint_eq(n, N);
    for (uint32_t i = 0; i < N; i += 2)       /* the 5000 bucket, in insertion order */
        if (tqb_pop_due(&q, 5000, &t, &id) != 1 || id != i)
            ck_abort_msg("bucket 5000: expected id %u, got %u", i, id);
    ck_assert_int_eq(tqb_pop_due(&q, 5000, &t, &id), 0);
    tqh_destroy(&h);
    tqb_destroy(&q);
}
END_TEST

Suite *timers_suite(void)
{
    Suite *s = suite_create("timers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buckets_pop_in_time_then_insertion_order);
    tcase_add_test(tc, heap_slots_keep_the_order_of_one_heap);
    tcase_add_test(tc, buckets_accept_adds_while_popping);
    tcase_add_test(tc, heap_orders_by_time_then_sequence);
    tcase_add_test(tc, queues_grow_past_huge_pages_keeping_order_and_size);
    suite_add_tcase(s, tc);
    return s;
}
