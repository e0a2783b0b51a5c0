/*
 * hugemem.h - memory for large, long-lived state in 2 MB huge pages.
 *
 * A checkpoint fork()s, and the loop stalls while the kernel copies the
 * process's page tables: one entry per 4 KB page, about 18-21 ms per GB of
 * state on the 2-core EPYC we measure on.  Memory in 2 MB-aligned mappings
 * with madvise(MADV_HUGEPAGE) is mapped by page-middle-directory entries,
 * 512 times fewer, and fork() copies the same GB in about 0.6 ms
 * (docs/state.md, "Memory per key and the fork").
 *
 * Two ways in:
 *   - hm_calloc/hm_realloc/hm_free for big arrays (the state table's index,
 *     timer queues): from HM_MIN bytes they are their own aligned mapping,
 *     below that plain malloc; the caller passes the size back, as to
 *     slab_free, and that size alone says which it was.
 *   - struct hm_arena for many small blocks that live as long as their
 *     owner (slab pages, state table entry chunks): bump-allocated from
 *     blocks that are malloc'ed while the arena is small (a shard with a
 *     few keys must not cost 2 MB per structure) and 2 MB huge mappings
 *     once it holds HM_MIN bytes.  Blocks are freed all at once.
 *
 * Where the kernel has transparent huge pages off, the madvise fails and
 * the memory is ordinary 4 KB pages: nothing else changes.  Not
 * thread-safe; a fork()ed child only reads what it inherited.
 */
#ifndef SLUICE_HUGEMEM_H
#define SLUICE_HUGEMEM_H

#include <stddef.h>

#define HM_PAGE ((size_t)2 << 20)   /* one huge page */
/* From this size a block is a mapping of its own, and an arena holding this
 * much takes huge pages.  Smaller structures stay on malloc: their 4 KB
 * pages cost a fork at most 0.3 ms each, while a huge page counts whole
 * from its first byte (with 2 MB, a job of 73 k keys held 17 % more). */
#define HM_MIN (8 * HM_PAGE)

/* n zeroed bytes, or NULL.  Free with hm_free(p, n). */
void *hm_calloc(size_t n);

/* p (from hm_calloc/hm_realloc with old bytes, or NULL with old 0) resized
 * to n > 0 bytes, contents kept up to the smaller size, the rest not
 * initialised; NULL when out of memory (p is then untouched). */
void *hm_realloc(void *p, size_t old, size_t n);

void hm_free(void *p, size_t n);

/* The bytes a block of n takes from the system (a mapping is whole huge
 * pages). */
size_t hm_size(size_t n);

struct hm_block;

struct hm_arena {
    struct hm_block *blocks;        /* newest first */
    char *cur;                      /* bump region of the newest block */
    size_t left;
    size_t bytes;                   /* held from the system */
};

/* A zeroed struct hm_arena is empty. */

/* n bytes, 64-byte aligned, not initialised, or NULL.  Lives until
 * hm_arena_destroy. */
void *hm_arena_alloc(struct hm_arena *a, size_t n);

void hm_arena_destroy(struct hm_arena *a);

#endif
