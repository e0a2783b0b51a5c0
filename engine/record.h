/*
 * record.h - JSON records decoded into typed fields per the source schema.
 *
 * One decoder per source.  decoder_decode() turns one JSON object into a
 * struct record: a typed value for every schema field and the event time.
 * It never allocates per record: string values point into the input, or
 * into the decoder's scratch buffer when they had escapes, and stay valid
 * until the next call.  A record must be exactly RFC 8259 JSON, every byte
 * of it, fields outside the schema included (json.h); one that is not, or
 * is not an object, misses a field, has a field of the wrong type, or an
 * event time that is not a real instant, is rejected with a reason and a
 * category (for metrics); nothing about it can affect other records.
 * A key that occurs twice: the last occurrence wins.
 */
#ifndef SLUICE_RECORD_H
#define SLUICE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "../config/job.h"
#include "value.h"

#define RECORD_MAX_BYTES (1u << 20)     /* larger records are rejected */
#define EVTIME_NONE INT64_MIN           /* no event time configured */

enum reject_kind {
    REJ_JSON,           /* bad_json: not RFC 8259 JSON, or not an object */
    REJ_TOO_BIG,        /* over RECORD_MAX_BYTES */
    REJ_MISSING,        /* a schema field or the event-time field is absent or null */
    REJ_TYPE,           /* a field has the wrong JSON type, or an out-of-range number */
    REJ_TIME,           /* the event time does not parse or is out of range */
    REJ_NKINDS
};

/* "bad_json", "too_big", "missing_field", "wrong_type", "bad_time". */
const char *reject_kind_name(enum reject_kind k);

/* Why a record was rejected; valid until the decoder's next call. */
struct reject {
    enum reject_kind kind;
    const char *why;            /* human-readable: "trailing comma", "field 'x' is missing" */
    int64_t at;                 /* bad_json: offset in the record of the byte at fault; else -1 */
};

struct record {
    struct value *v;            /* one per schema field, in schema order */
    size_t nv;
    int64_t event_time;         /* ms since the epoch, or EVTIME_NONE */
    const char *raw;            /* the record as received */
    size_t raw_len;
};

struct decoder;

/* Creates a decoder for src (borrowed; must outlive the decoder).
 * Returns NULL when out of memory. */
struct decoder *decoder_new(const struct job_source *src);
void decoder_free(struct decoder *d);

/*
 * Decodes buf[0..len) (JSON whitespace, newlines included, around the
 * object is allowed).  kafka_ts is the Kafka record timestamp in ms, used
 * with format kafka_timestamp.  Returns 0 with *out filled (valid until the
 * next call), or -EINVAL with *rej.
 */
int decoder_decode(struct decoder *d, const char *buf, size_t len, int64_t kafka_ts,
                   struct record *out, struct reject *rej);

#endif
