/*
 * record.h - JSON records decoded into typed fields per the source schema.
 *
 * One decoder per source.  decoder_decode() turns one JSON object into a
 * struct record: a typed value for every schema field and the event time.
 * It never allocates per record: string values point into the input, or
 * into the decoder's scratch buffer when they had escapes, and stay valid
 * until the next call.  A record that is not a JSON object, misses a field,
 * has a field of the wrong type, invalid UTF-8 in a string it uses, or an
 * event time that is not a real instant is rejected with a reason and a
 * category (for metrics); nothing about it can affect other records.
 *
 * Fields outside the schema are checked for JSON structure only.
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
    REJ_JSON,           /* not a JSON object, or malformed JSON */
    REJ_TOO_BIG,        /* over RECORD_MAX_BYTES, or too many tokens */
    REJ_MISSING,        /* a schema field or the event-time field is absent or null */
    REJ_TYPE,           /* a field has the wrong JSON type, or an out-of-range number */
    REJ_UTF8,           /* a string the job uses is not valid UTF-8 */
    REJ_TIME,           /* the event time does not parse or is out of range */
    REJ_NKINDS
};

const char *reject_kind_name(enum reject_kind k);

/* Whether s[0..n) is valid UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF). */
int utf8_valid(const unsigned char *s, size_t n);

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
 * Decodes buf[0..len) (trailing whitespace and newline allowed).  kafka_ts
 * is the Kafka record timestamp in ms, used with format kafka_timestamp.
 * Returns 0 with *out filled (valid until the next call), or -EINVAL with
 * *kind and a human-readable reason in *why (valid until the next call).
 */
int decoder_decode(struct decoder *d, const char *buf, size_t len, int64_t kafka_ts,
                   struct record *out, enum reject_kind *kind, const char **why);

#endif
