/*
 * state_table.h - the per-key state of a group of operators.
 *
 * Operators that read the same source and key it by the same fields share
 * one table, so a record costs one key lookup however many operators use
 * it.  Each key has an entry with a stable id and one state pointer per
 * operator (the operator's blob, or NULL while it holds nothing for the
 * key).  Timers and other structures refer to keys by id.
 *
 * Layout, chosen for memory per key and for lookups that touch little:
 *   - entries live in chunks of 1024 with a fixed stride (no moves, ever:
 *     ids stay valid until the key is deleted);
 *   - keys up to 16 bytes are stored in the entry, longer ones in the slab;
 *   - the index is open addressing with linear probing over (id, hash)
 *     pairs, so a probe compares hashes without touching entries.
 * The index grows incrementally (as Redis's dict does): when it fills up a
 * new one is allocated and every later operation moves a few slots across,
 * so no single insert stalls the loop to rehash a million keys.
 *
 * Not thread-safe; the loop thread owns it.  A fork()ed checkpoint child
 * may read it (st_next) as it stood at the fork.
 */
#ifndef SLUICE_STATE_TABLE_H
#define SLUICE_STATE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "hugemem.h"
#include "slab.h"

#define ST_INLINE_KEY 16
#define ST_NONE UINT32_MAX

struct st_entry {
    uint32_t hash;
    uint32_t klen;                  /* ST_NONE marks a free entry */
    union {
        char inl[ST_INLINE_KEY];
        char *p;
    } key;
    void *op[];                     /* per operator of the group */
};

struct st_index;

struct state_table {
    size_t nops;
    size_t stride;                  /* bytes per entry */
    struct st_entry **chunks;       /* chunk i holds ids [i*1024, (i+1)*1024) */
    struct hm_arena chunk_mem;      /* where the chunks come from */
    size_t nchunks;
    uint32_t next_id;               /* ids below this have been handed out */
    uint32_t *free_ids;             /* deleted ids, reused first */
    size_t nfree, capfree;
    struct st_index *idx, *old;     /* old != NULL while migrating */
    size_t migrate_pos;
    size_t count;                   /* live keys */
    uint64_t seed;
    struct slab *slab;              /* long keys (borrowed) */
};

/* nops: operators in the group; slab: for keys longer than ST_INLINE_KEY.
 * Returns 0 or -ENOMEM. */
int st_init(struct state_table *t, size_t nops, struct slab *slab, uint64_t seed);
void st_destroy(struct state_table *t);

uint32_t st_hash(const struct state_table *t, const void *key, size_t len);

/* The id of key, or ST_NONE. */
uint32_t st_find(struct state_table *t, const void *key, size_t len, uint32_t hash);

/* The id of key, inserting it (all operator states NULL) when absent.
 * Returns ST_NONE when out of memory. */
uint32_t st_upsert(struct state_table *t, const void *key, size_t len, uint32_t hash);

/* Lookups that hide memory latency (engine_prefetch): a batch of
 * records asks for the index slots of their hashes first, then for the
 * entries those slots name, then reads the entries' operator states, each
 * step for the whole batch before the next, so the cache misses of a batch
 * overlap instead of following one another.  These are hints: they change
 * nothing, and an id st_prefetch_entry returns is only a guess (the first
 * slot with the same hash), never an answer. */
static inline void st_prefetch_slot(const struct state_table *t, uint32_t hash);
uint32_t st_prefetch_entry(const struct state_table *t, uint32_t hash);

/* Makes the index large enough for n keys at no more than 3/4 load (the
 * size growth would reach), moving every key across now rather than
 * incrementally: for a restore, which does not mind a pause, so that its
 * inserts never probe two indexes while a migration runs.  Returns 0 or
 * -ENOMEM (the table is unchanged). */
int st_reserve(struct state_table *t, size_t n);

/* Removes key id (its operator states must already be released). */
void st_delete(struct state_table *t, uint32_t id);

static inline struct st_entry *st_entry(const struct state_table *t, uint32_t id)
{
    return (struct st_entry *)((char *)t->chunks[id >> 10] + (size_t)(id & 1023) * t->stride);
}

static inline const char *st_key(const struct st_entry *e)
{
    return e->klen <= ST_INLINE_KEY ? e->key.inl : e->key.p;
}

/* The index (state_table.c), here for the prefetch hints. */
struct st_slot {
    uint32_t idp1;                  /* id + 1; 0 empty; ST_NONE deleted */
    uint32_t hash;
};

struct st_index {
    size_t cap;                     /* power of two */
    size_t used, tombs;
    struct st_slot slots[];
};

static inline void st_prefetch_slot(const struct state_table *t, uint32_t hash)
{
    __builtin_prefetch(&t->idx->slots[hash & (t->idx->cap - 1)]);
}

/* Iteration: *id starts at 0; returns the next live entry (and advances
 * *id past it) or NULL at the end. */
struct st_entry *st_next(const struct state_table *t, uint32_t *id);

/* Bytes held: index (both while migrating), entry chunks, long keys. */
size_t st_bytes(const struct state_table *t);

#endif
