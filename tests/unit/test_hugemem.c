/*
 * test_hugemem.c - huge-page mappings and the arena: sizes, alignment,
 * contents kept across growth, and the kernel's huge-page advice.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/hugemem.h"
#include "suites.h"

static int aligned(const void *p, size_t to)
{
    return (uintptr_t)p % to == 0;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 4093)
        p[i] = (unsigned char)(i * 31 + seed);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 4093)
        if (p[i] != (unsigned char)(i * 31 + seed))
            return 0;
    return 1;
}

/* 1 when the kernel may give transparent huge pages to advised memory. */
static int thp_available(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128] = "";
    if (f == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = 0;
    fclose(f);
    return strstr(line, "[never]") == NULL && line[0] != 0;
}

/* The THPeligible field of the mapping holding p in /proc/self/smaps, or -1. */
static int thp_eligible(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && sscanf(line, "THPeligible: %d", &v) == 1)
            break;
    }
    fclose(f);
    return v;
}

START_TEST(small_blocks_are_malloc_sized_big_ones_whole_huge_pages)
{
    ck_assert_uint_eq(hm_size(100), 100);
    ck_assert_uint_eq(hm_size(HM_MIN - 1), HM_MIN - 1);
    ck_assert_uint_eq(hm_size(HM_MIN), HM_MIN);    /* a whole number of huge pages */
    ck_assert_uint_eq(hm_size(HM_MIN + 1), HM_MIN + HM_PAGE);

    unsigned char *s = hm_calloc(1000);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < 1000; i++)
        ck_assert_msg(s[i] == 0, "small block byte %zu: expected 0, got %u", i, s[i]);
    hm_free(s, 1000);

    size_t n = HM_MIN + 3 * HM_PAGE + 12345;
    unsigned char *b = hm_calloc(n);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(aligned(b, HM_PAGE), "a big block at %p: expected 2 MB alignment", (void *)b);
    for (size_t i = 0; i < hm_size(n); i += 4096)
        ck_assert_msg(b[i] == 0, "big block byte %zu: expected 0, got %u", i, b[i]);
    if (thp_available())
        ck_assert_msg(thp_eligible(b) == 1, "a big block: expected THPeligible 1, got %d",
                      thp_eligible(b));
    hm_free(b, n);
}
END_TEST

START_TEST(realloc_keeps_contents_across_every_size_change)
{
    /* small -> small -> big -> bigger (moved by mremap) -> same pages -> small */
    size_t sizes[] = { 100, 5000, HM_MIN + 10, HM_MIN + 5 * HM_PAGE, HM_MIN + 5 * HM_PAGE - 7,
                       3000 };
    unsigned char *p = NULL;
    size_t old = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        unsigned char *q = hm_realloc(p, old, n);
        ck_assert_msg(q != NULL, "step %zu: realloc %zu -> %zu failed", k, old, n);
        size_t kept = old < n ? old : n;
        if (kept > 0)
            ck_assert_msg(same(q, kept, (unsigned)k), "step %zu: the first %zu bytes changed",
                          k, kept);
        if (n >= HM_MIN) {
            ck_assert_msg(aligned(q, HM_PAGE), "step %zu: expected 2 MB alignment", k);
            if (thp_available())
                ck_assert_msg(thp_eligible(q) == 1 && thp_eligible(q + n - 1) == 1,
                              "step %zu: expected THPeligible 1 over the whole block", k);
        }
        fill(q, n, (unsigned)k + 1);
        p = q;
        old = n;
    }
    hm_free(p, old);
}
END_TEST

START_TEST(arena_is_small_until_it_holds_a_huge_page)
{
    struct hm_arena a = { 0 };
    /* HM_MIN and 6 MB more in all: the first HM_MIN from malloc */
    enum { SZ = 40000, N = (int)((HM_MIN + 3 * HM_PAGE) / SZ) };
    unsigned char *got[N];
    for (int i = 0; i < N; i++) {
        got[i] = hm_arena_alloc(&a, SZ);
        ck_assert_ptr_nonnull(got[i]);
        ck_assert_msg(aligned(got[i], 64), "block %d: expected 64-byte alignment", i);
        fill(got[i], SZ, (unsigned)i);
        size_t rounded = (SZ + 63) / 64 * 64;
        if ((size_t)(i + 1) * rounded < HM_MIN)
            ck_assert_msg(a.bytes == (size_t)(i + 1) * rounded,
                          "block %d: a small arena should hold exactly what it gave, "
                          "%zu, not %zu", i, (size_t)(i + 1) * rounded, a.bytes);
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(same(got[i], SZ, (unsigned)i), "block %d was overwritten", i);
    ck_assert_msg(a.bytes < (size_t)N * SZ + HM_MIN + HM_PAGE,
                  "arena holds %zu bytes for %d x %d", a.bytes, N, SZ);
    if (thp_available())
        ck_assert_msg(thp_eligible(got[N - 1]) == 1, "the last block: expected THPeligible 1");

    /* a request larger than a huge page gets whole pages of its own */
    unsigned char *big = hm_arena_alloc(&a, 3 * HM_PAGE);
    ck_assert_ptr_nonnull(big);
    fill(big, 3 * HM_PAGE, 7);
    ck_assert(same(big, 3 * HM_PAGE, 7));
    hm_arena_destroy(&a);
    ck_assert_uint_eq(a.bytes, 0);
    ck_assert_ptr_null(a.blocks);
}
END_TEST

Suite *hugemem_suite(void)
{
    Suite *s = suite_create("hugemem");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, small_blocks_are_malloc_sized_big_ones_whole_huge_pages);
    tcase_add_test(tc, realloc_keeps_contents_across_every_size_change);
    tcase_add_test(tc, arena_is_small_until_it_holds_a_huge_page);
    suite_add_tcase(s, tc);
    return s;
}
