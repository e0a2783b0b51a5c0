/*
 * keycheck.h - is the input keyed by the job's key?  Several instances
 * are exact only when every record of a key arrives on one partition
 * (docs/operations.md, "Running several instances").  The run shows the
 * keys the engines sample (engine_output.new_key) to a keycheck, which
 * remembers the partition each was first seen on and says when one turns
 * up on another.  Loop thread only.
 */
#ifndef SLUICE_KEYCHECK_H
#define SLUICE_KEYCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"

struct keycheck;

/* Returns 0 or -ENOMEM. */
int keycheck_new(struct keycheck **out) SL_MUST_USE;
void keycheck_free(struct keycheck *kc);

/* The key (key group `group`, its encoded bytes) was seen on partition
 * part.  Returns 1 and sets *first when it was first seen on another
 * partition (counted once per key), else 0 (or 0 when out of memory: the
 * key is not remembered). */
int keycheck_seen(struct keycheck *kc, int group, const char *key, size_t len, int32_t part,
                  int32_t *first);

/* Keys seen on two partitions so far (of those sampled). */
uint64_t keycheck_count(const struct keycheck *kc);

#endif
