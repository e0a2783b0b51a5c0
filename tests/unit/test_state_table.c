/*
 * test_state_table.c - the keyed state table: growth, many keys, long keys,
 * deletion, iteration, and lookups while an incremental rehash runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/state_table.h"
#include "suites.h"

static struct slab slab;
static struct state_table t;

static void setup(void)
{
    memset(&slab, 0, sizeof(slab));
    ck_assert_int_eq(st_init(&t, 2, &slab, 42), 0);
}

static void teardown(void)
{
    st_destroy(&t);
    slab_destroy(&slab);
}

static uint32_t up(const char *k)
{
    return st_upsert(&t, k, strlen(k), st_hash(&t, k, strlen(k)));
}

static uint32_t find(const char *k)
{
    return st_find(&t, k, strlen(k), st_hash(&t, k, strlen(k)));
}

START_TEST(insert_find_same_id)
{
    uint32_t a = up("alice"), b = up("bob");
    ck_assert_uint_ne(a, ST_NONE);
    ck_assert_uint_ne(a, b);
    ck_assert_uint_eq(up("alice"), a);
    ck_assert_uint_eq(find("bob"), b);
    ck_assert_uint_eq(find("carol"), ST_NONE);
    ck_assert_uint_eq(t.count, 2);
    struct st_entry *e = st_entry(&t, a);
    ck_assert_uint_eq(e->klen, 5);
    ck_assert_int_eq(memcmp(st_key(e), "alice", 5), 0);
    ck_assert_ptr_null(e->op[0]);
    ck_assert_ptr_null(e->op[1]);
}
END_TEST

START_TEST(empty_and_binary_keys)
{
    uint32_t e = st_upsert(&t, "", 0, st_hash(&t, "", 0));
    char bin[5] = { 'a', 0, 'b', 0, 0 };
    uint32_t b = st_upsert(&t, bin, 5, st_hash(&t, bin, 5));
    uint32_t b3 = st_upsert(&t, bin, 3, st_hash(&t, bin, 3));
    ck_assert_uint_ne(e, b);
    ck_assert_uint_ne(b, b3);
    ck_assert_uint_eq(st_find(&t, "", 0, st_hash(&t, "", 0)), e);
}
END_TEST

START_TEST(long_keys_live_in_the_slab)
{
    char k[300];
    memset(k, 'x', sizeof(k));
    uint32_t a = st_upsert(&t, k, 300, st_hash(&t, k, 300));
    k[299] = 'y';
    uint32_t b = st_upsert(&t, k, 300, st_hash(&t, k, 300));
    ck_assert_uint_ne(a, b);
    ck_assert_uint_gt(slab.live_bytes, 600);
    ck_assert_int_eq(memcmp(st_key(st_entry(&t, b)), k, 300), 0);
    st_delete(&t, a);
    st_delete(&t, b);
    ck_assert_uint_eq(slab.live_bytes, 0);
}
END_TEST

START_TEST(many_keys_through_growth)
{
    enum { N = 300000 };
    char k[32];
    uint32_t *ids = malloc(N * sizeof(*ids));
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "user-%d", i);
        ids[i] = up(k);
        ck_assert_uint_ne(ids[i], ST_NONE);
        /* every key stays findable while the index migrates */
        if (i % 997 == 0)
            for (int j = 0; j <= i; j += 1 + i / 50) {
                snprintf(k, sizeof(k), "user-%d", j);
                ck_assert_uint_eq(find(k), ids[j]);
            }
    }
    ck_assert_uint_eq(t.count, N);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "user-%d", i);
        ck_assert_uint_eq(find(k), ids[i]);
    }
    free(ids);
}
END_TEST

/* What the index takes: st_bytes less the entries and the free id list. */
static size_t index_bytes(void)
{
    return st_bytes(&t) - t.chunk_mem.bytes - t.capfree * sizeof(uint32_t);
}

START_TEST(reserve_sizes_the_index_once_and_keeps_keys)
{
    enum { N = 50000 };
    char k[32];
    /* keys inserted while a migration runs, so reserve has two indexes to merge */
    int i = 0;
    for (; t.old == NULL || i < 100; i++) {
        snprintf(k, sizeof(k), "user-%d", i);
        ck_assert_uint_ne(up(k), ST_NONE);
    }
    int before = i;
    ck_assert_int_eq(st_reserve(&t, N), 0);
    ck_assert_ptr_null(t.old);
    size_t cap = index_bytes() / 8;    /* 8-byte slots (and a small header) */
    ck_assert_msg((N + 1) * 4 <= cap * 3 && cap / 2 * 3 < (N + 1) * 4,
                  "%zu slots for %d keys: expected the smallest power of two at or under "
                  "3/4 load", cap, N);
    for (int j = 0; j < before; j++) {
        snprintf(k, sizeof(k), "user-%d", j);
        ck_assert_msg(find(k) != ST_NONE, "key %s lost by st_reserve", k);
    }
    for (; i < N; i++) {
        snprintf(k, sizeof(k), "user-%d", i);
        ck_assert_uint_ne(up(k), ST_NONE);
        ck_assert_msg(t.old == NULL && index_bytes() / 8 == cap,
                      "insert %d of %d after st_reserve grew the index", i, N);
    }
    ck_assert_uint_eq(t.count, N);
    ck_assert_int_eq(st_reserve(&t, 10), 0);          /* never shrinks */
    ck_assert_uint_eq(index_bytes() / 8, cap);
}
END_TEST

START_TEST(delete_and_reuse)
{
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        up(k);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(k, sizeof(k), "k%d", i);
        uint32_t id = find(k);
        ck_assert_uint_ne(id, ST_NONE);
        st_delete(&t, id);
    }
    ck_assert_uint_eq(t.count, 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        if (i % 2)
            ck_assert_uint_ne(find(k), ST_NONE);
        else
            ck_assert_uint_eq(find(k), ST_NONE);
    }
    /* deleted ids are handed out again rather than growing the entries */
    uint32_t hi = t.next_id;
    for (int i = 0; i < 2500; i++) {
        snprintf(k, sizeof(k), "new%d", i);
        ck_assert_uint_lt(up(k), hi);
    }
    ck_assert_uint_eq(t.next_id, hi);
    /* churn: insert and delete far more keys than the table holds; the
     * tombstones are cleared by rehashing in place, not by growing */
    size_t bytes = st_bytes(&t);
    for (int round = 0; round < 50000; round++) {
        snprintf(k, sizeof(k), "churn%d", round);
        st_delete(&t, up(k));
    }
    ck_assert_uint_le(st_bytes(&t), bytes * 2);
    ck_assert_uint_eq(t.count, 5000);
}
END_TEST

START_TEST(iteration_visits_live_entries_once)
{
    char k[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        up(k);
    }
    for (int i = 0; i < 3000; i += 3) {
        snprintf(k, sizeof(k), "k%d", i);
        st_delete(&t, find(k));
    }
    static char seen[3000];
    memset(seen, 0, sizeof(seen));
    uint32_t id = 0;
    struct st_entry *e;
    size_t n = 0;
    while ((e = st_next(&t, &id)) != NULL) {
        char buf[32];
        memcpy(buf, st_key(e), e->klen);
        buf[e->klen] = '\0';
        int i = atoi(buf + 1);
        ck_assert_int_eq(seen[i], 0);
        ck_assert_int_ne(i % 3, 0);
        seen[i] = 1;
        n++;
    }
    ck_assert_uint_eq(n, 2000);
}
END_TEST

Suite *state_table_suite(void)
{
    Suite *s = suite_create("state_table");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, insert_find_same_id);
    tcase_add_test(tc, empty_and_binary_keys);
    tcase_add_test(tc, long_keys_live_in_the_slab);
    tcase_add_test(tc, many_keys_through_growth);
    tcase_add_test(tc, reserve_sizes_the_index_once_and_keeps_keys);
    tcase_add_test(tc, delete_and_reuse);
    tcase_add_test(tc, iteration_visits_live_entries_once);
    suite_add_tcase(s, tc);
    return s;
}
