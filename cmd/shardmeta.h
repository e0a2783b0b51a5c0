/*
 * shardmeta.h - what a partition's Kafka offset commit says about its
 * shard's snapshot (docs/state.md "Shared store").
 *
 * Publishing a shard snapshot IS committing the partition's offset: the
 * commit carries, as librdkafka topic-partition metadata, the name of the
 * snapshot object in the shared store, its length and XXH64, the offset
 * it resumes at, its checkpoint id, and the same for the snapshot before
 * it (the fall-back when the newest is damaged).  One line of text:
 *
 *   sluice-shard 1 obj=<name> len=<n> xxh=<16 hex> off=<n> id=<n>
 *       prev=<name or empty> plen=<n> pxxh=<16 hex> poff=<n> sum=<16 hex>
 *
 * (on one line, single spaces), at most SHARD_META_MAX bytes; sum is the
 * XXH64 of the text before " sum=", so a cut or changed byte is refused.  The parser
 * is strict, since the metadata comes over the network from whatever
 * committed to the group last: every field in that order, decimal numbers
 * without signs or leading zeros, names by store_url.h's rules.
 */
#ifndef SLUICE_SHARDMETA_H
#define SLUICE_SHARDMETA_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"

#define SHARD_META_VERSION 1
#define SHARD_META_MAX 1024             /* bytes of formatted metadata, at most */

struct shard_meta {
    char obj[256];          /* object name in the store */
    uint64_t len;           /* its size in bytes */
    uint64_t xxh;           /* XXH64 (seed 0) of the whole file */
    int64_t offset;         /* the next offset the snapshot resumes the partition at
                             * (must equal the committed offset); >= 0 */
    uint64_t id;            /* checkpoint id */
    char prev[256];         /* the previous published snapshot of the shard ("" none) */
    uint64_t prev_len, prev_xxh;
    int64_t prev_offset;    /* all three 0 when prev is "" */
};

/* Writes m as metadata text (NUL-terminated) into buf.  Returns its length
 * (without the NUL), -ENOSPC when size is too small, -EINVAL when m breaks
 * the rules the parser enforces (a bad name, a negative offset, prev
 * fields without prev). */
int shard_meta_format(const struct shard_meta *m, char *buf, size_t size) SL_MUST_USE;

/* Parses len bytes of metadata into *m.  Returns
 *   0          ours, and valid
 *   -ENODATA   empty: the partition was committed without metadata
 *   -ENOMSG    not ours: metadata some other client committed to the group
 *   -EINVAL    ours (it starts with "sluice-shard "), but an unknown
 *              version, a missing or malformed field, garbage; the reason
 *              is in err
 * err gets a reason for every non-zero result. */
int shard_meta_parse(const char *buf, size_t len, struct shard_meta *m, char *err,
                     size_t errsize) SL_MUST_USE;

/* The size and XXH64 (seed 0) of the file at path.  0 or a negative errno. */
int shard_file_hash(const char *path, uint64_t *len, uint64_t *xxh) SL_MUST_USE;

#endif
