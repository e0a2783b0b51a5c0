/*
 * hugemem.c - 2 MB-aligned huge-page mappings and an arena over them
 * (see hugemem.h).
 *
 * A mapping is made 2 MB-aligned by asking for 2 MB more than needed and
 * unmapping the slack at both ends; madvise(MADV_HUGEPAGE) then lets the
 * kernel back it with huge pages from the first touch (the system setting
 * "madvise" of Debian and most distributions; "always" needs no advice,
 * "never" ignores it).  Growing a mapping moves its pages with mremap into
 * a larger aligned mapping: page tables move, nothing is copied.
 */
#define _GNU_SOURCE                 /* mremap */
#include "hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct hm_block {
    struct hm_block *next;
    void *base;
    size_t size;
    int huge;                       /* a mapping of huge pages, else malloc'ed */
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

size_t hm_size(size_t n)
{
    return n >= HM_MIN ? round_up(n, HM_PAGE) : n;
}

/* n (whole huge pages) of zeroed memory at a 2 MB boundary, or NULL. */
static void *map_aligned(size_t n)
{
    size_t len = n + HM_PAGE;
    char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *p = (char *)round_up((uintptr_t)raw, HM_PAGE);
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    if (raw + len > p + n)
        munmap(p + n, (size_t)(raw + len - (p + n)));
    (void)madvise(p, n, MADV_HUGEPAGE);    /* without THP: 4 KB pages, still correct */
    return p;
}

void *hm_calloc(size_t n)
{
    return n >= HM_MIN ? map_aligned(hm_size(n)) : calloc(1, n ? n : 1);
}

void hm_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n >= HM_MIN)
        munmap(p, hm_size(n));
    else
        free(p);
}

void *hm_realloc(void *p, size_t old, size_t n)
{
    if (p == NULL)
        old = 0;
    if (n < HM_MIN && old < HM_MIN)
        return realloc(p, n);
    if (n >= HM_MIN && old >= HM_MIN && hm_size(n) == hm_size(old))
        return p;
    if (n < HM_MIN) {               /* a mapping shrinks below the threshold */
        void *q = malloc(n);
        if (q == NULL)
            return NULL;
        memcpy(q, p, n);
        munmap(p, hm_size(old));
        return q;
    }
    char *q = map_aligned(hm_size(n));
    if (q == NULL)
        return NULL;
    if (old >= HM_MIN && old < n &&
        mremap(p, hm_size(old), hm_size(old), MREMAP_MAYMOVE | MREMAP_FIXED, q) == q) {
        /* the old pages now sit at the start of q, in huge pages */
        (void)madvise(q, hm_size(n), MADV_HUGEPAGE);
        return q;
    }
    if (p != NULL)                  /* (memcpy must not see NULL, even for 0 bytes) */
        memcpy(q, p, old < n ? old : n);
    hm_free(p, old);
    return q;
}

void *hm_arena_alloc(struct hm_arena *a, size_t n)
{
    n = round_up(n ? n : 1, 64);
    if (a->left < n) {
        struct hm_block *b = malloc(sizeof(*b));
        if (b == NULL)
            return NULL;
        /* small arenas take exactly what they are asked for, from malloc;
         * from HM_MIN on, whole huge pages */
        b->huge = a->bytes + n >= HM_MIN;
        b->size = b->huge ? round_up(n, HM_PAGE) : n;
        b->base = b->huge ? map_aligned(b->size) : aligned_alloc(64, b->size);
        if (b->base == NULL) {
            free(b);
            return NULL;
        }
        b->next = a->blocks;
        a->blocks = b;
        a->bytes += b->size;
        a->cur = b->base;
        a->left = b->size;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

void hm_arena_destroy(struct hm_arena *a)
{
    struct hm_block *b = a->blocks;
    while (b != NULL) {
        struct hm_block *next = b->next;
        if (b->huge)
            munmap(b->base, b->size);
        else
            free(b->base);
        free(b);
        b = next;
    }
    *a = (struct hm_arena){ 0 };
}
