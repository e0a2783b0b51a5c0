/*
 * coalesce.h - the newest unsent write of each key, for a sink that
 * replaces a queued write by a newer one to the same key (redis_sink.c).
 *
 * A table of (key bytes, tag) -> (sequence, item): the sink's newest
 * queued write of that key.  The key bytes are not copied: an entry points
 * at them where the caller keeps them (inside the queued item), and the
 * caller promises they stay put while the entry can still be used, that is
 * while its sequence is >= the `min_seq` the caller passes (the sink's
 * first sequence it may still replace: nothing before it is compared, so a
 * write that was sent, acknowledged and freed is never read).  Entries
 * below min_seq are stale: never compared, reused by the next insert that
 * meets one, dropped by coalesce_prune().  There is no deletion otherwise.
 *
 * Open addressing with linear probing on XXH3 of the key, seeded by the
 * tag; a hit compares the key bytes, never trusts the hash.  Memory grows
 * only when the table doubles; the sink keeps it bounded by clearing it
 * when nothing is unsent and pruning it when it outgrows the unsent
 * writes.  Loop thread only.
 */
#ifndef SLUICE_COALESCE_H
#define SLUICE_COALESCE_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"

struct coalesce;

/* Returns 0 or -ENOMEM; free with coalesce_free(). */
int coalesce_new(struct coalesce **out) SL_MUST_USE;
void coalesce_free(struct coalesce *t);

/*
 * Records item (sequence seq, key bytes key..key+klen, which stay valid
 * while seq >= the min_seq of later calls) as the newest of (key, tag).
 * *prev is set to the item it replaces as the newest of that key: one
 * recorded with a sequence >= min_seq, or NULL when none.  Returns 0, or
 * -ENOMEM (the table could not grow: nothing recorded, *prev NULL).
 */
int coalesce_put(struct coalesce *t, const char *key, size_t klen, uint32_t tag,
                 uint64_t seq, void *item, uint64_t min_seq, void **prev) SL_MUST_USE;

/* Forgets everything (the capacity stays). */
void coalesce_clear(struct coalesce *t);

/* Entries held, stale ones included. */
size_t coalesce_count(const struct coalesce *t);

/* Drops the entries below min_seq, shrinking the table to fit the rest.
 * Returns 0, or -ENOMEM (then nothing changed). */
int coalesce_prune(struct coalesce *t, uint64_t min_seq) SL_MUST_USE;

#endif
