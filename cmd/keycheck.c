/*
 * keycheck.c - keys seen on two partitions (keycheck.h).
 *
 * An open-addressing table of XXH64(key, seed = key group) -> the partition
 * the key was first seen on, or -1 once it has been counted.  Only sampled
 * keys come here (one in ENGINE_KEY_SAMPLE), so it costs about 1 byte per
 * key of state; two keys whose 64-bit hashes collide count as one.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "keycheck.h"

struct slot {
    uint64_t h;                     /* 0: empty (a hash of 0 is stored as 1) */
    int32_t part;                   /* first partition; -1: counted already */
};

struct keycheck {
    struct slot *v;
    size_t cap, n;                  /* cap: a power of two */
    uint64_t count;
};

int keycheck_new(struct keycheck **out)
{
    struct keycheck *kc = calloc(1, sizeof(*kc));
    if (kc == NULL || (kc->v = calloc(1024, sizeof(*kc->v))) == NULL) {
        free(kc);
        return -ENOMEM;
    }
    kc->cap = 1024;
    *out = kc;
    return 0;
}

void keycheck_free(struct keycheck *kc)
{
    if (kc == NULL)
        return;
    free(kc->v);
    free(kc);
}

static struct slot *find(struct slot *v, size_t cap, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (v[i].h != 0 && v[i].h != h)
        i = (i + 1) & (cap - 1);
    return &v[i];
}

static int grow(struct keycheck *kc)
{
    size_t cap = kc->cap * 2;
    struct slot *v = calloc(cap, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < kc->cap; i++)
        if (kc->v[i].h != 0)
            *find(v, cap, kc->v[i].h) = kc->v[i];
    free(kc->v);
    kc->v = v;
    kc->cap = cap;
    return 0;
}

int keycheck_seen(struct keycheck *kc, int group, const char *key, size_t len, int32_t part,
                  int32_t *first)
{
    uint64_t h = XXH64(key, len, (uint64_t)group);
    if (h == 0)
        h = 1;
    if (kc->n * 2 >= kc->cap && grow(kc) < 0)
        return 0;
    struct slot *s = find(kc->v, kc->cap, h);
    if (s->h == 0) {
        s->h = h;
        s->part = part;
        kc->n++;
        return 0;
    }
    if (s->part < 0 || s->part == part)
        return 0;
    *first = s->part;
    s->part = -1;
    kc->count++;
    return 1;
}

uint64_t keycheck_count(const struct keycheck *kc)
{
    return kc->count;
}
