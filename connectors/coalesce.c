/*
 * coalesce.c - the newest unsent write of each key (coalesce.h).
 *
 * Linear probing, a power-of-two capacity kept at most half full, no
 * tombstones: nothing is ever deleted in place.  An entry goes stale when
 * the caller's min_seq passes it; a stale slot stays occupied (so the
 * probe chains through it still reach what lies behind it) and the first
 * stale slot of a chain is reused by an insert of a key not found live in
 * that chain.  A key therefore has at most one live entry: the insert
 * looks at the whole chain for a live one before it reuses a slot.
 * Pruning rebuilds the table from the live entries, which is how the
 * stale ones leave.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "coalesce.h"

#define MIN_CAP 64

struct entry {
    const char *key;            /* NULL: empty slot */
    void *item;
    uint64_t hash, seq;
    uint32_t klen, tag;
};

struct coalesce {
    struct entry *e;
    size_t cap, used;           /* slots, occupied slots (stale ones included) */
};

int coalesce_new(struct coalesce **out)
{
    struct coalesce *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->e = calloc(MIN_CAP, sizeof(*t->e));
    if (t->e == NULL) {
        free(t);
        return -ENOMEM;
    }
    t->cap = MIN_CAP;
    *out = t;
    return 0;
}

void coalesce_free(struct coalesce *t)
{
    if (t == NULL)
        return;
    free(t->e);
    free(t);
}

/* Into a fresh table of cap slots, the entries at or above min_seq. */
static SL_MUST_USE int rebuild(struct coalesce *t, size_t cap, uint64_t min_seq)
{
    struct entry *ne = calloc(cap, sizeof(*ne));
    if (ne == NULL)
        return -ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < t->cap; i++) {
        const struct entry *o = &t->e[i];
        if (o->key == NULL || o->seq < min_seq)
            continue;
        size_t j = o->hash & (cap - 1);
        while (ne[j].key != NULL)
            j = (j + 1) & (cap - 1);
        ne[j] = *o;
        used++;
    }
    free(t->e);
    t->e = ne;
    t->cap = cap;
    t->used = used;
    return 0;
}

/* Rebuilt with the entries at or above min_seq, in at least mincap slots
 * and at most a quarter full (one more insert included). */
static SL_MUST_USE int fit(struct coalesce *t, uint64_t min_seq, size_t mincap)
{
    size_t live = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].key != NULL && t->e[i].seq >= min_seq)
            live++;
    size_t cap = mincap;
    while (cap < 4 * (live + 1))
        cap *= 2;
    return rebuild(t, cap, min_seq);
}

int coalesce_put(struct coalesce *t, const char *key, size_t klen, uint32_t tag,
                 uint64_t seq, void *item, uint64_t min_seq, void **prev)
{
    *prev = NULL;
    if (klen > UINT32_MAX)
        return 0;                       /* not a key anyone writes; never replaced */
    /* half full: drop the stale entries, and grow unless that left it a
     * quarter full at most */
    if (2 * (t->used + 1) > t->cap && fit(t, min_seq, t->cap) < 0)
        return -ENOMEM;
    uint64_t h = XXH3_64bits_withSeed(key, klen, tag);
    size_t mask = t->cap - 1;
    struct entry *reuse = NULL, *e;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        e = &t->e[i];
        if (e->key == NULL)
            break;
        if (e->seq < min_seq) {
            if (reuse == NULL)
                reuse = e;
            continue;
        }
        if (e->hash == h && e->tag == tag && e->klen == klen &&
            memcmp(e->key, key, klen) == 0) {
            *prev = e->item;
            reuse = e;
            break;
        }
    }
    if (reuse != NULL)
        e = reuse;
    else
        t->used++;
    *e = (struct entry){ .key = key, .item = item, .hash = h, .seq = seq,
                         .klen = (uint32_t)klen, .tag = tag };
    return 0;
}

void coalesce_clear(struct coalesce *t)
{
    if (t->used == 0)
        return;
    memset(t->e, 0, t->cap * sizeof(*t->e));
    t->used = 0;
}

size_t coalesce_count(const struct coalesce *t)
{
    return t->used;
}

int coalesce_prune(struct coalesce *t, uint64_t min_seq)
{
    return fit(t, min_seq, MIN_CAP);
}
