/*
 * state_table.c - keyed entries with an incrementally grown index
 * (see state_table.h).
 *
 * Index slots are (id + 1, hash); 0 is empty and TOMB a deleted slot that
 * probes walk past.  Load (live + tombstones) is kept at or below 3/4:
 * beyond it a new index is made, twice as large when live keys are over
 * half of the slots, the same size otherwise (which clears tombstones),
 * and ST_MIGRATE_STEP old slots move across on every find, insert and
 * delete.  Moved slots become tombstones in the old index, so probe chains
 * of keys not yet moved stay intact; the old index is freed when the
 * cursor reaches its end.  During a migration a lookup checks the new index
 * and then the old one.
 *
 * Memory: entry chunks come from an arena and large indexes are their own
 * mappings, both in 2 MB huge pages once they are big (hugemem.h), which
 * keeps a checkpoint's fork short.
 */
#include "state_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define ST_CHUNK 1024u
#define ST_MIGRATE_STEP 64
#define ST_MIN_SLOTS 64
#define TOMB UINT32_MAX

/* struct st_index and its slots are in the header (the prefetch hints). */

static size_t index_size(size_t cap)
{
    return sizeof(struct st_index) + cap * sizeof(struct st_slot);
}

/* Indexes from 2 MB up (256 k slots) are huge-page mappings (hugemem.h). */
static struct st_index *index_new(size_t cap)
{
    struct st_index *ix = hm_calloc(index_size(cap));
    if (ix != NULL)
        ix->cap = cap;
    return ix;
}

static void index_free(struct st_index *ix)
{
    if (ix != NULL)
        hm_free(ix, index_size(ix->cap));
}

int st_init(struct state_table *t, size_t nops, struct slab *slab, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->nops = nops;
    t->stride = sizeof(struct st_entry) + nops * sizeof(void *);
    t->slab = slab;
    t->seed = seed;
    t->idx = index_new(ST_MIN_SLOTS);
    return t->idx ? 0 : -ENOMEM;
}

void st_destroy(struct state_table *t)
{
    for (size_t c = 0; c < t->nchunks; c++) {
        for (uint32_t i = 0; i < ST_CHUNK; i++) {
            uint32_t id = (uint32_t)(c * ST_CHUNK + i);
            if (id >= t->next_id)
                break;
            struct st_entry *e = st_entry(t, id);
            if (e->klen != ST_NONE && e->klen > ST_INLINE_KEY)
                slab_free(t->slab, e->key.p, e->klen);
        }
    }
    hm_arena_destroy(&t->chunk_mem);
    free(t->chunks);
    free(t->free_ids);
    index_free(t->idx);
    index_free(t->old);
    memset(t, 0, sizeof(*t));
}

uint32_t st_hash(const struct state_table *t, const void *key, size_t len)
{
    return (uint32_t)XXH3_64bits_withSeed(key, len, t->seed);
}

static int key_eq(const struct state_table *t, uint32_t id, const void *key, size_t len)
{
    const struct st_entry *e = st_entry(t, id);
    return e->klen == len && memcmp(st_key(e), key, len) == 0;
}

/* Slot index of key in ix, or -1. */
static long index_find(const struct state_table *t, const struct st_index *ix,
                       const void *key, size_t len, uint32_t hash)
{
    size_t mask = ix->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const struct st_slot *s = &ix->slots[i];
        if (s->idp1 == 0)
            return -1;
        if (s->idp1 != TOMB && s->hash == hash && key_eq(t, s->idp1 - 1, key, len))
            return (long)i;
    }
}

static void index_put(struct st_index *ix, uint32_t id, uint32_t hash)
{
    size_t mask = ix->cap - 1;
    size_t i = hash & mask;
    while (ix->slots[i].idp1 != 0 && ix->slots[i].idp1 != TOMB)
        i = (i + 1) & mask;
    if (ix->slots[i].idp1 == TOMB)
        ix->tombs--;
    ix->slots[i].idp1 = id + 1;
    ix->slots[i].hash = hash;
    ix->used++;
}

static void migrate_step(struct state_table *t)
{
    struct st_index *old = t->old;
    if (old == NULL)
        return;
    size_t end = t->migrate_pos + ST_MIGRATE_STEP;
    if (end > old->cap)
        end = old->cap;
    for (size_t i = t->migrate_pos; i < end; i++) {
        struct st_slot *s = &old->slots[i];
        if (s->idp1 != 0 && s->idp1 != TOMB) {
            index_put(t->idx, s->idp1 - 1, s->hash);
            s->idp1 = TOMB;
            old->used--;
        }
    }
    t->migrate_pos = end;
    if (end == old->cap) {
        index_free(old);
        t->old = NULL;
    }
}

/* Starts a new index when this one is too full.  While a migration runs
 * the new index has room for every key, so it never needs to grow. */
static int maybe_grow(struct state_table *t)
{
    struct st_index *ix = t->idx;
    if (t->old != NULL || (ix->used + ix->tombs + 1) * 4 <= ix->cap * 3)
        return 0;
    size_t cap = ix->cap;
    if ((t->count + 1) * 2 > cap)
        cap *= 2;
    struct st_index *n = index_new(cap);
    if (n == NULL)
        return -ENOMEM;
    t->old = ix;
    t->idx = n;
    t->migrate_pos = 0;
    migrate_step(t);
    return 0;
}

int st_reserve(struct state_table *t, size_t n)
{
    size_t cap = t->idx->cap;
    while ((n + 1) * 4 > cap * 3)
        cap *= 2;
    if (cap == t->idx->cap)
        return 0;
    struct st_index *ix = index_new(cap);
    if (ix == NULL)
        return -ENOMEM;
    struct st_index *from[2] = { t->idx, t->old };
    for (int k = 0; k < 2; k++) {
        if (from[k] == NULL)
            continue;
        for (size_t i = 0; i < from[k]->cap; i++) {
            const struct st_slot *sl = &from[k]->slots[i];
            if (sl->idp1 != 0 && sl->idp1 != TOMB)
                index_put(ix, sl->idp1 - 1, sl->hash);
        }
        index_free(from[k]);
    }
    t->idx = ix;
    t->old = NULL;
    t->migrate_pos = 0;
    return 0;
}

uint32_t st_find(struct state_table *t, const void *key, size_t len, uint32_t hash)
{
    migrate_step(t);
    long i = index_find(t, t->idx, key, len, hash);
    if (i >= 0)
        return t->idx->slots[i].idp1 - 1;
    if (t->old != NULL && (i = index_find(t, t->old, key, len, hash)) >= 0)
        return t->old->slots[i].idp1 - 1;
    return ST_NONE;
}

static uint32_t id_alloc(struct state_table *t)
{
    if (t->nfree > 0)
        return t->free_ids[--t->nfree];
    uint32_t id = t->next_id;
    if (id == ST_NONE - 1)
        return ST_NONE;
    if (id / ST_CHUNK >= t->nchunks) {
        struct st_entry **c = realloc(t->chunks, (t->nchunks + 1) * sizeof(*c));
        if (c == NULL)
            return ST_NONE;
        t->chunks = c;
        c[t->nchunks] = hm_arena_alloc(&t->chunk_mem, ST_CHUNK * t->stride);
        if (c[t->nchunks] == NULL)
            return ST_NONE;
        t->nchunks++;
    }
    t->next_id++;
    return id;
}

uint32_t st_upsert(struct state_table *t, const void *key, size_t len, uint32_t hash)
{
    uint32_t id = st_find(t, key, len, hash);
    if (id != ST_NONE)
        return id;
    if (len >= ST_NONE || maybe_grow(t) < 0)
        return ST_NONE;
    char *long_key = NULL;
    if (len > ST_INLINE_KEY && (long_key = slab_alloc(t->slab, len)) == NULL)
        return ST_NONE;
    id = id_alloc(t);
    if (id == ST_NONE) {
        slab_free(t->slab, long_key, len);
        return ST_NONE;
    }
    struct st_entry *e = st_entry(t, id);
    memset(e, 0, t->stride);
    e->hash = hash;
    e->klen = (uint32_t)len;
    if (long_key != NULL) {
        memcpy(long_key, key, len);
        e->key.p = long_key;
    } else {
        memcpy(e->key.inl, key, len);
    }
    index_put(t->idx, id, hash);
    t->count++;
    return id;
}

static int index_remove(struct state_table *t, struct st_index *ix, uint32_t id,
                        uint32_t hash)
{
    size_t mask = ix->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct st_slot *s = &ix->slots[i];
        if (s->idp1 == 0)
            return -1;
        if (s->idp1 == id + 1) {
            s->idp1 = TOMB;
            ix->used--;
            ix->tombs++;
            (void)t;
            return 0;
        }
    }
}

void st_delete(struct state_table *t, uint32_t id)
{
    struct st_entry *e = st_entry(t, id);
    migrate_step(t);
    if (index_remove(t, t->idx, id, e->hash) < 0 && t->old != NULL)
        index_remove(t, t->old, id, e->hash);
    if (e->klen > ST_INLINE_KEY)
        slab_free(t->slab, e->key.p, e->klen);
    e->klen = ST_NONE;
    t->count--;
    if (t->nfree == t->capfree) {
        size_t cap = t->capfree ? t->capfree * 2 : 256;
        uint32_t *f = realloc(t->free_ids, cap * sizeof(*f));
        if (f == NULL)
            return;             /* the id is leaked, not reused; harmless */
        t->free_ids = f;
        t->capfree = cap;
    }
    t->free_ids[t->nfree++] = id;
}

struct st_entry *st_next(const struct state_table *t, uint32_t *id)
{
    while (*id < t->next_id) {
        struct st_entry *e = st_entry(t, (*id)++);
        if (e->klen != ST_NONE)
            return e;
    }
    return NULL;
}

uint32_t st_prefetch_entry(const struct state_table *t, uint32_t hash)
{
    const struct st_index *ix = t->idx;
    size_t mask = ix->cap - 1;
    for (size_t i = hash & mask, n = 0; n < 8; i = (i + 1) & mask, n++) {
        const struct st_slot *s = &ix->slots[i];
        if (s->idp1 == 0)
            return ST_NONE;
        if (s->idp1 != TOMB && s->hash == hash) {
            uint32_t id = s->idp1 - 1;
            if (id >= t->next_id)
                return ST_NONE;
            const char *e = (const char *)st_entry(t, id);
            __builtin_prefetch(e);
            __builtin_prefetch(e + t->stride - 1);     /* it may span two lines */
            return id;
        }
    }
    return ST_NONE;
}

size_t st_bytes(const struct state_table *t)
{
    size_t b = hm_size(index_size(t->idx->cap));
    if (t->old != NULL)
        b += hm_size(index_size(t->old->cap));
    b += t->chunk_mem.bytes;
    b += t->capfree * sizeof(uint32_t);
    return b;   /* long keys are in the slab, counted there */
}
