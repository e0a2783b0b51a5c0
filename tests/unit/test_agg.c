/*
 * test_agg.c - accumulators: exact double sums, and the value types of
 * results (avg of nothing, null min/max/first/last, distinct strings).
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/agg.h"
#include "../../engine/ckpt_file.h"
#include "suites.h"

START_TEST(dsum_is_exact_and_order_free)
{
    /* 0.1 + 0.2 + 0.3 in floating point depends on the order; the exact
     * sum of the three doubles, rounded once, does not */
    struct dsum a = { 0 }, b = { 0 };
    dsum_add(&a, 0.1);
    dsum_add(&a, 0.2);
    dsum_add(&a, 0.3);
    dsum_add(&b, 0.3);
    dsum_add(&b, 0.2);
    dsum_add(&b, 0.1);
    ck_assert(dsum_value(&a) == dsum_value(&b));
    ck_assert(dsum_value(&a) == 0.6);
    ck_assert((0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3));      /* what naive sums do */
    /* large and small magnitudes cancel exactly */
    struct dsum c = { 0 };
    dsum_add(&c, 1e15);
    dsum_add(&c, 29.99);
    dsum_add(&c, -1e15);
    ck_assert(dsum_value(&c) == 29.99);
    /* merging partial sums gives the same as one sum */
    struct dsum p1 = { 0 }, p2 = { 0 }, all = { 0 };
    srand(3);
    for (int i = 0; i < 10000; i++) {
        double x = (rand() % 100000) / 100.0 - 300;
        dsum_add(i % 2 ? &p1 : &p2, x);
        dsum_add(&all, x);
    }
    dsum_merge(&p1, &p2);
    ck_assert(dsum_value(&p1) == dsum_value(&all));
    ck_assert(p1.rest == 0);
}
END_TEST

START_TEST(dsum_off_grid_values_still_count)
{
    struct dsum s = { 0 };
    dsum_add(&s, 1e-30);            /* below the 2^-64 grid */
    dsum_add(&s, 1e300);            /* above 2^62 */
    dsum_add(&s, 1.0);
    ck_assert(dsum_value(&s) == 1e300);
    struct dsum t = { 0 };
    dsum_add(&t, 1e-30);
    dsum_add(&t, 2e-30);
    ck_assert(fabs(dsum_value(&t) - 3e-30) < 1e-44);
    struct dsum z = { 0 };
    dsum_add(&z, -0.0);
    ck_assert(dsum_value(&z) == 0);
}
END_TEST

static struct job *load(const char *aggs)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "job: t\nsources:\n  s: { type: file, path: x, schema: { k: string, s: string, "
             "n: int, x: double, b: bool } }\n"
             "operators:\n  o: { from: s, key_by: k, window: { type: global, trigger: count 1 },"
             " aggregates: %s, to: out }\nsinks:\n  out: { type: stdout }\n", aggs);
    struct diags d = { 0 };
    struct job *job = NULL;
    int rc = job_load_buffer("t.yaml", text, strlen(text), NULL, &job, &d);
    ck_assert_msg(rc == 0, "%s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    return job;
}

static int where_ud_count;
static int where_idx(void *ud, const struct expr *w)
{
    (void)ud;
    (void)w;
    return where_ud_count++;
}

START_TEST(results_of_empty_and_filled_blocks)
{
    struct job *job = load("{ c: count(), a: avg(x), mn: min(n), f: first(s), l: last(b),"
                           " d: count_distinct(s), du: duration(), sx: sum(x), sn: sum(n) }");
    struct agg_layout L;
    where_ud_count = 0;
    ck_assert_int_eq(agg_layout_build(&L, &job->operators[0], &job->sources[0], where_idx,
                                      NULL), 0);
    /* dedupe: one count serves count(), avg's count and every presence */
    int counts = 0;
    for (size_t i = 0; i < L.nc; i++)
        counts += L.c[i].kind == C_COUNT;
    ck_assert_int_eq(counts, 1);
    struct slab slab = { 0 };
    void *blk = calloc(1, L.size);
    struct value out[9];
    agg_result(&L, blk, 0, out);
    ck_assert_int_eq(out[0].u.i, 0);
    ck_assert(out[1].type == VT_DOUBLE && out[1].u.d == 0);     /* avg of nothing is 0 */
    ck_assert_int_eq(out[2].type, VT_NULL);
    ck_assert_int_eq(out[3].type, VT_NULL);
    ck_assert_int_eq(out[4].type, VT_NULL);
    ck_assert_int_eq(out[5].u.i, 0);
    ck_assert_int_eq(out[6].u.i, 0);

    struct value v[5];
    struct record r = { .v = v, .nv = 5 };
    const char *names[] = { "kr", "jp", "kr", "us" };
    for (int i = 0; i < 4; i++) {
        v[1] = (struct value){ .type = VT_STRING, .u.s = { names[i], 2 } };
        v[2] = (struct value){ .type = VT_INT, .u.i = 10 - i };
        v[3] = (struct value){ .type = VT_DOUBLE, .u.d = 0.25 * i };
        v[4] = (struct value){ .type = VT_BOOL, .u.b = i % 2 };
        ck_assert_int_eq(agg_add(&L, blk, &r, NULL, 1000 * (4 - i), &slab), 0);
    }
    agg_result(&L, blk, 0, out);
    ck_assert_int_eq(out[0].u.i, 4);
    ck_assert(out[1].u.d == 0.375);
    ck_assert_int_eq(out[2].u.i, 7);
    ck_assert_int_eq(out[3].type, VT_STRING);                   /* earliest time: the last added */
    ck_assert_int_eq(memcmp(out[3].u.s.p, "us", 2), 0);
    ck_assert_int_eq(out[4].u.b, 0);                            /* latest time: the first added */
    ck_assert_int_eq(out[5].u.i, 3);
    ck_assert_int_eq(out[6].u.i, 3);
    ck_assert(out[7].u.d == 1.5);
    ck_assert_int_eq(out[8].u.i, 34);
    agg_release(&L, blk, &slab);
    ck_assert_uint_eq(slab.live_bytes, 0);                      /* strings and sets freed */
    free(blk);
    slab_destroy(&slab);
    agg_layout_free(&L);
    job_free(job);
}
END_TEST

/* A checkpointed block with a negative count is damaged: a result would
 * read a string that was never loaded (found by fuzz_ckpt). */
START_TEST(load_refuses_negative_counts)
{
    struct job *job = load("{ c: count(), f: first(s) }");
    struct agg_layout L;
    where_ud_count = 0;
    ck_assert_int_eq(agg_layout_build(&L, &job->operators[0], &job->sources[0], where_idx,
                                      NULL), 0);
    struct slab slab = { 0 };
    unsigned char *raw = calloc(1, L.size);
    void *blk = calloc(1, L.size);
    struct ckpt_cur cur = { raw, raw + L.size };
    ck_assert_int_eq(agg_load(&L, blk, &cur, &slab), 0);        /* all zero: empty */
    for (size_t i = 0; i < L.nc; i++)
        if (L.c[i].kind == C_COUNT) {
            int64_t minus = -1;
            memcpy(raw + L.c[i].off, &minus, sizeof(minus));
        }
    cur = (struct ckpt_cur){ raw, raw + L.size };
    ck_assert_int_eq(agg_load(&L, blk, &cur, &slab), -EINVAL);
    agg_release(&L, blk, &slab);
    ck_assert_uint_eq(slab.live_bytes, 0);
    free(raw);
    free(blk);
    slab_destroy(&slab);
    agg_layout_free(&L);
    job_free(job);
}
END_TEST

Suite *agg_suite(void)
{
    Suite *s = suite_create("agg");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, dsum_is_exact_and_order_free);
    tcase_add_test(tc, dsum_off_grid_values_still_count);
    tcase_add_test(tc, results_of_empty_and_filled_blocks);
    tcase_add_test(tc, load_refuses_negative_counts);
    suite_add_tcase(s, tc);
    return s;
}
