/*
 * rp_header.h - what stage 1 of a repartitioning (connectors/repartition.c)
 * writes into each record of a repartition topic, and what stage 2 (the
 * kafka source reading it, and the host) reads back.
 *
 * Every record of a repartition topic carries one header named RP_HEADER
 * whose value is ASCII text, readable in `kcat -J`:
 *
 *     <kind> <src> <nsrc> <off> <max>
 *
 *   kind  'd' data: the record's value is the input record, unchanged, and
 *         its Kafka key the key text (rp_key_text); 'w' watermark and 'e'
 *         end: the value is empty
 *   src   the input partition the record (or the marker) comes from
 *   nsrc  how many partitions the input topic has
 *   off   'd': the record's offset in its input partition; 'w', 'e': the
 *         next offset of the input partition when the marker was produced
 *   max   the greatest event time (ms) stage 1 has seen on input partition
 *         src up to and including this record, or '-' when none (no
 *         event time, or no record yet)
 *
 * Numbers are decimal, without leading zeros or '+'; off >= 0 ('d'), or
 * >= -1; 0 <= src < nsrc <= RP_MAX_SOURCES; fields separated by one space;
 * nothing else.  A header that does not match exactly is refused.
 *
 * 'w' is sent by stage 1 to every partition of every repartition topic of
 * an input partition whose `max` has grown since the last one (on a timer),
 * so that a repartition partition that receives no record of some input
 * partition still follows its event time.  'e' (--bounded) says the input
 * partition has no more records: sent after its last record.
 *
 * Stage 2 keeps, in each shard (repartition partition r), one watermark
 * partition per input partition s: the virtual partition rp_vid(r, s)
 * (negative ids, so they never meet a real partition), whose read position
 * in checkpoints is one past the greatest input offset applied: the
 * high-water mark that drops records stage 1 produced twice.
 */
#ifndef SLUICE_RP_HEADER_H
#define SLUICE_RP_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"
#include "../engine/record.h"

#define RP_HEADER "sluice-rp"
#define RP_MAX_SOURCES 65536        /* input partitions */
#define RP_MAX_PARTITIONS 32768     /* repartition partitions */
#define RP_HEADER_MAX 96            /* longest header value, with its NUL */

enum rp_kind { RP_DATA = 'd', RP_WATERMARK = 'w', RP_END = 'e' };

/* Set in a virtual partition's high-water mark once its input partition's
 * end marker has come (--bounded): kept in the snapshot, so an instance
 * that takes the shard over knows the partition has ended. */
#define RP_HWM_ENDED (INT64_C(1) << 62)

struct rp_meta {
    char kind;                      /* enum rp_kind */
    int32_t src, nsrc;
    int64_t off;
    int64_t max_ts;                 /* INT64_MIN: '-' */
};

/* Writes m's header value (NUL-terminated) into buf; returns its length
 * (without the NUL), or -ENOSPC when size is too small. */
int rp_meta_format(const struct rp_meta *m, char *buf, size_t size);

/* Reads a header value of len bytes (not NUL-terminated).  Returns 0, or
 * -EINVAL when it is not exactly the format above. */
int rp_meta_parse(const char *p, size_t len, struct rp_meta *m) SL_MUST_USE;

/* The virtual watermark partition of input partition s in repartition
 * partition r (0 <= r < RP_MAX_PARTITIONS, 0 <= s < RP_MAX_SOURCES). */
static inline int32_t rp_vid(int32_t r, int32_t s)
{
    return (int32_t)(0x80000000u | ((uint32_t)r << 16) | (uint32_t)s);
}

static inline int rp_is_vid(int32_t id)
{
    return id < 0;
}

static inline int32_t rp_vid_part(int32_t vid)
{
    return (int32_t)(((uint32_t)vid >> 16) & 0x7fffu);
}

static inline int32_t rp_vid_src(int32_t vid)
{
    return (int32_t)((uint32_t)vid & 0xffffu);
}

/*
 * The Kafka key of a record in a repartition topic: the values of its key
 * fields (fields[0..n), indexes into rec's values) as a JSON array, in
 * order (["u42"], ["u42",7,true]), strings escaped as RFC 8259 says.
 * Equal keys give equal text whatever the source, so the two sides of a
 * join land on the same partition.  Returns the length written (without a
 * NUL), or -ENOSPC when it does not fit in size.
 */
int rp_key_text(const struct record *rec, const int *fields, size_t n, char *buf, size_t size);

/* The repartition partition of a key text: XXH64 (seed 0) modulo
 * npartitions. */
int32_t rp_partition(const char *key, size_t len, int32_t npartitions);

#endif
