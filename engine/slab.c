/*
 * slab.c - size classes over 64 KiB pages (see slab.h).
 *
 * Pages come from an arena (hugemem.h): once the slab holds 16 MB they are
 * carved 32 at a time from 2 MB huge pages, so a checkpoint's fork copies
 * one page-table entry for 32 pages instead of 512.
 */
#include "slab.h"

#include <stdint.h>
#include <stdlib.h>

#define SLAB_PAGE (64u * 1024u)

static const unsigned short class_size[SLAB_NCLASSES] = {
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
    320, 400, 512, 640, 800, 1024, 1280, 1600, 2048, 2560, 3200, 4096,
};

static int class_of(size_t n)
{
    int lo = 0, hi = SLAB_NCLASSES - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (class_size[mid] >= n)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

size_t slab_class_size(size_t n)
{
    if (n > SLAB_MAX)
        return (n + 15) & ~(size_t)15;
    return class_size[class_of(n)];
}

void *slab_alloc(struct slab *s, size_t n)
{
    if (n > SLAB_MAX) {
        size_t sz = (n + 15) & ~(size_t)15;
        void *p = aligned_alloc(16, sz);
        if (p != NULL)
            s->large_bytes += sz;
        return p;
    }
    int c = class_of(n);
    size_t sz = class_size[c];
    void *p = s->free[c];
    if (p != NULL) {
        s->free[c] = *(void **)p;
    } else {
        if (s->cur_left < sz) {
            char *pg = hm_arena_alloc(&s->pages, SLAB_PAGE);
            if (pg == NULL)
                return NULL;
            s->page_bytes += SLAB_PAGE;
            /* the unused tail of the old page is too small for this class;
             * give it to smaller classes so nothing is wasted */
            while (s->cur_left >= 16) {
                int k = class_of(s->cur_left);
                if (class_size[k] > s->cur_left)
                    k--;
                *(void **)s->cur = s->free[k];
                s->free[k] = s->cur;
                s->cur += class_size[k];
                s->cur_left -= class_size[k];
            }
            s->cur = pg;
            s->cur_left = SLAB_PAGE;
        }
        p = s->cur;
        s->cur += sz;
        s->cur_left -= sz;
    }
    s->live_bytes += sz;
    return p;
}

void slab_free(struct slab *s, void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n > SLAB_MAX) {
        s->large_bytes -= (n + 15) & ~(size_t)15;
        free(p);
        return;
    }
    int c = class_of(n);
    *(void **)p = s->free[c];
    s->free[c] = p;
    s->live_bytes -= class_size[c];
}

size_t slab_bytes(const struct slab *s)
{
    return s->pages.bytes + s->large_bytes;
}

void slab_destroy(struct slab *s)
{
    hm_arena_destroy(&s->pages);
    /* large blobs are freed by their owners before this */
    *s = (struct slab){ 0 };
}
