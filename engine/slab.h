/*
 * slab.h - size-class allocator for per-key state blobs.
 *
 * Window state per key (panes, sessions, distinct-value sets) grows and
 * shrinks as records arrive and windows fire.  Taking that from malloc per
 * change would put malloc/free on the per-record path; instead blobs come
 * from size classes (every 16 bytes up to 256, then about 1.25x apart up
 * to 4 KiB, so a blob wastes little of its class) carved from 64 KiB
 * pages, with a free list per class.  A steady stream reuses
 * freed blobs and allocates nothing.  Larger blobs (a key with thousands of
 * open panes) go to malloc and are counted the same way.
 *
 * The caller passes the size to slab_free (it always knows it: a blob's
 * capacity is in its header), so blobs carry no allocator header.
 * Pages are never returned to the system; they are reused.  Not
 * thread-safe: one slab per engine, used on the loop thread.
 */
#ifndef SLUICE_SLAB_H
#define SLUICE_SLAB_H

#include <stddef.h>

#include "hugemem.h"

#define SLAB_NCLASSES 28
#define SLAB_MAX 4096

struct slab {
    void *free[SLAB_NCLASSES];          /* free lists, linked through the blobs */
    char *cur;                          /* bump region of the newest page */
    size_t cur_left;
    struct hm_arena pages;              /* where pages come from */
    size_t page_bytes;                  /* carved into pages */
    size_t large_bytes;                 /* live blobs above SLAB_MAX */
    size_t live_bytes;                  /* live blobs, by class size */
};

/* A zeroed struct slab is ready to use. */

/* The size actually reserved for a request of n bytes (its class). */
size_t slab_class_size(size_t n);

/* Returns uninitialised memory of at least n bytes (n > 0), aligned to
 * 16 bytes, or NULL when out of memory. */
void *slab_alloc(struct slab *s, size_t n);

/* Returns p (from slab_alloc(s, n), same n) to its class. */
void slab_free(struct slab *s, void *p, size_t n);

/* Bytes the slab holds from the system: its arena (pages, and the
 * uncarved rest of the newest huge page) plus large blobs. */
size_t slab_bytes(const struct slab *s);

void slab_destroy(struct slab *s);

#endif
