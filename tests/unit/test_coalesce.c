/*
 * test_coalesce.c - the newest-unsent-write table of the Redis sink
 * (connectors/coalesce.h): a newer write finds the older one of its key
 * and operator, compares the key bytes rather than trusting the hash,
 * never finds one below min_seq, and stays bounded by pruning.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../connectors/coalesce.h"
#include "suites.h"

/* keys the table points into, as the sink's queue items are */
static char keys[4096][16];

static void *put(struct coalesce *t, int k, uint32_t tag, uint64_t seq, uint64_t min_seq)
{
    void *prev = (void *)1;
    snprintf(keys[seq % 4096], sizeof(keys[0]), "user:%d", k);
    ck_assert_int_eq(coalesce_put(t, keys[seq % 4096], strlen(keys[seq % 4096]), tag, seq,
                                  &keys[seq % 4096], min_seq, &prev), 0);
    return prev;
}

START_TEST(newest_per_key_and_tag)
{
    struct coalesce *t;
    ck_assert_int_eq(coalesce_new(&t), 0);
    ck_assert_ptr_null(put(t, 1, 0, 0, 0));
    ck_assert_ptr_null(put(t, 2, 0, 1, 0));
    ck_assert_ptr_null(put(t, 1, 1, 2, 0));             /* another operator */
    ck_assert_ptr_eq(put(t, 1, 0, 3, 0), &keys[0]);      /* replaces seq 0 */
    ck_assert_ptr_eq(put(t, 1, 0, 4, 0), &keys[3]);      /* then the newest, 3 */
    ck_assert_ptr_eq(put(t, 1, 1, 5, 0), &keys[2]);
    ck_assert_ptr_eq(put(t, 2, 0, 6, 0), &keys[1]);
    ck_assert_uint_eq(coalesce_count(t), 3);
    coalesce_free(t);
}
END_TEST

/* Below min_seq (sent, or covered by a checkpoint barrier) nothing is
 * found, and the key bytes of such an entry are not even read: they are
 * scribbled over here, as a freed item's would be. */
START_TEST(below_min_seq_is_never_found)
{
    struct coalesce *t;
    ck_assert_int_eq(coalesce_new(&t), 0);
    ck_assert_ptr_null(put(t, 7, 0, 0, 0));
    ck_assert_ptr_null(put(t, 8, 0, 1, 0));
    memset(keys[0], 'X', sizeof(keys[0]));
    ck_assert_ptr_null(put(t, 7, 0, 2, 1));             /* seq 0 < 1: sent */
    ck_assert_ptr_eq(put(t, 8, 0, 3, 1), &keys[1]);      /* seq 1 >= 1: unsent */
    ck_assert_ptr_eq(put(t, 7, 0, 4, 2), &keys[2]);
    ck_assert_ptr_null(put(t, 8, 0, 5, 4));             /* seq 3 < 4 */
    coalesce_free(t);
}
END_TEST

/* Same hash is not enough: the bytes decide (keys of one length that
 * differ in a byte, many of them, so chains form). */
START_TEST(compares_key_bytes)
{
    struct coalesce *t;
    ck_assert_int_eq(coalesce_new(&t), 0);
    for (int k = 0; k < 1000; k++)
        ck_assert_ptr_null(put(t, k, 0, (uint64_t)k, 0));
    for (int k = 0; k < 1000; k++)
        ck_assert_ptr_eq(put(t, k, 0, (uint64_t)(1000 + k), 0), &keys[k]);
    ck_assert_uint_eq(coalesce_count(t), 1000);
    coalesce_free(t);
}
END_TEST

/* Stale entries are reused and pruned: a queue that sends each write
 * right away keeps the table small however many writes pass. */
START_TEST(bounded)
{
    struct coalesce *t;
    ck_assert_int_eq(coalesce_new(&t), 0);
    for (uint64_t s = 0; s < 20000; s++) {
        /* every write is sent before the next: min_seq = its own sequence */
        ck_assert_ptr_null(put(t, (int)(s % 5000), 0, s, s));
        ck_assert_uint_le(coalesce_count(t), 64);
    }
    ck_assert_int_eq(coalesce_prune(t, 20000), 0);
    ck_assert_uint_eq(coalesce_count(t), 0);
    /* a key still unsent survives a prune, and is found after it */
    ck_assert_ptr_null(put(t, 1, 0, 20000, 20000));
    ck_assert_ptr_null(put(t, 2, 0, 20001, 20000));
    ck_assert_int_eq(coalesce_prune(t, 20001), 0);
    ck_assert_uint_eq(coalesce_count(t), 1);
    ck_assert_ptr_eq(put(t, 2, 0, 20002, 20001), &keys[20001 % 4096]);
    coalesce_clear(t);
    ck_assert_uint_eq(coalesce_count(t), 0);
    ck_assert_ptr_null(put(t, 2, 0, 20003, 20001));
    coalesce_free(t);
}
END_TEST

Suite *coalesce_suite(void)
{
    Suite *s = suite_create("coalesce");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, newest_per_key_and_tag);
    tcase_add_test(tc, below_min_seq_is_never_found);
    tcase_add_test(tc, compares_key_bytes);
    tcase_add_test(tc, bounded);
    suite_add_tcase(s, tc);
    return s;
}
