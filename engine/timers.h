/*
 * timers.h - event-time and processing-time timers of the window operators.
 *
 * Two queues, because the two kinds of windows have very different timers:
 *
 *  - tq_buckets: tumbling and sliding windows end on a grid (multiples of
 *    the slide, plus the size), so many keys share each firing time.  A
 *    sorted array of buckets, one per distinct time, each a list of key ids
 *    in insertion order.  Adding is an append, firing a walk along the list:
 *    no per-timer comparisons at all, which matters when a million keys
 *    fire at one slide boundary.
 *  - tq_heap: session windows end anywhere, so a 4-ary min-heap of
 *    (time, seq, id).
 *    seq is an insertion counter: timers due at the same moment fire in the
 *    order they were set.
 *
 * Checkpoints do not save the queues: each key's state knows its next
 * check time and a restore re-arms it, key by key.  So after a restore the
 * same windows fire after the same records with the same values, but keys
 * due at the very same moment may fire in another order among themselves.
 *
 * Both are "lazy": an entry is a hint to look at a key at that time, and
 * the operator checks its state to see whether anything is really due, so
 * a timer made stale by a merge or a re-registration is simply skipped and
 * never has to be found and removed.
 */
#ifndef SLUICE_TIMERS_H
#define SLUICE_TIMERS_H

#include <stddef.h>
#include <stdint.h>

struct tq_bucket {
    int64_t time;
    uint32_t *ids;
    uint32_t n, cap;
    uint32_t done;                  /* ids[0 .. done) have been popped */
};

struct tq_buckets {
    struct tq_bucket *b;            /* sorted by time from b[head] */
    size_t head, n, cap;            /* live buckets are b[head .. n) */
    size_t entries;                 /* pending ids */
};

/* Zeroed is empty. Returns 0 or -ENOMEM. */
int tqb_add(struct tq_buckets *q, int64_t time, uint32_t id);
/* Pops the next entry with time <= now into *time and *id; 0 when none is due. */
int tqb_pop_due(struct tq_buckets *q, int64_t now, int64_t *time, uint32_t *id);
/* Earliest pending time, or INT64_MAX. */
int64_t tqb_next(const struct tq_buckets *q);
size_t tqb_bytes(const struct tq_buckets *q);
void tqb_destroy(struct tq_buckets *q);

struct tq_entry {
    int64_t time;
    uint32_t seq, id;
};

/* A 4-ary min-heap of the entries due soon (the "near" ones: time in a
 * slot of TQH_SLOT_MS at or before `cur`), and the later ones ("far")
 * appended unsorted to one array per slot, the slots sorted by time.  When
 * the near heap runs dry and the first far slot is due, its entries move
 * into the heap.  Entries pop in (time, seq) order exactly as from one
 * heap, but the heap stays as small as a slot's entries: ten million
 * session timers in one heap cost a cache miss per level, a dozen per pop. */
#define TQH_SLOT_SHIFT 10           /* slots of 1024 ms */

struct tq_slot {
    int64_t slot;                   /* time >> TQH_SLOT_SHIFT */
    int64_t min;                    /* the earliest time among e */
    struct tq_entry *e;
    uint32_t n, cap;
};

struct tq_heap {
    struct tq_entry *e;             /* the near heap */
    size_t n, cap;
    uint32_t seq;
    int64_t cur;                    /* near: slots <= cur (zeroed: set on first add) */
    int started;
    struct tq_slot *far;            /* sorted by slot from far[fhead] */
    size_t fhead, fn, fcap;
    size_t far_entries;
};

int tqh_add(struct tq_heap *q, int64_t time, uint32_t id);

int tqh_pop_due(struct tq_heap *q, int64_t now, int64_t *time, uint32_t *id);
int64_t tqh_next(const struct tq_heap *q);
size_t tqh_bytes(const struct tq_heap *q);
void tqh_destroy(struct tq_heap *q);

/* Replaces the queues' allocator (hm_realloc, hugemem.h) with a
 * realloc-like function (NULL: hm_realloc again), as libuv's
 * uv_replace_allocator does: tests make a queue fail to grow with it, to
 * see that the engine counts a timer it cannot set.  Whatever it returns
 * is freed as hm_free frees (free() below HM_MIN bytes). */
void tq_replace_realloc(void *(*fn)(void *p, size_t n));

#endif
