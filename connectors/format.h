/*
 * format.h - how window results, keys and dead letters are written.
 *
 * Shared by every sink so that one window reads the same in Redis, Kafka
 * and JSON lines:
 *   - key templates expand {field} to the key value, {window_start} and
 *     {window_end} to epoch milliseconds;
 *   - Redis field values: ints in decimal, doubles in the shortest form
 *     that reads back (fmt_double), bools as true/false, strings as they
 *     are, null as an empty string;
 *   - JSON results: {"<key fields>":..., "window_start": ms,
 *     "window_end": ms, "<aggregates>":...} (no window fields for global
 *     windows), in job order.
 * Output goes to a growable buffer (struct sbuf) reused by its owner.
 */
#ifndef SLUICE_FORMAT_H
#define SLUICE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "../config/job.h"
#include "../engine/engine.h"
#include "../engine/record.h"

struct sbuf {
    char *p;
    size_t len, cap;
};

/* Appends; return 0 or -ENOMEM. */
int sbuf_put(struct sbuf *b, const char *s, size_t n);
/* Room for n more bytes and a NUL after them, so that a writer that knows
 * its bound can write p[len ..] directly; 0 or -ENOMEM. */
int sbuf_reserve(struct sbuf *b, size_t n);
/* A string literal, its length counted by the compiler. */
#define SBUF_LIT(b, lit) sbuf_put((b), "" lit, sizeof(lit) - 1)
int sbuf_putc(struct sbuf *b, char c);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_free(struct sbuf *b);

/* The value as a Redis field value (appended). */
int fmt_redis_value(struct sbuf *b, const struct value *v);
/* The same text without a buffer: a string's own bytes, or the number
 * written into tmp (FMT_VALUE_MAX bytes); *n is its length. */
#define FMT_VALUE_MAX 40
const char *fmt_value_text(const struct value *v, char *tmp, size_t *n);

/* Expands template t for result r of operator op (appended). */
int fmt_key(struct sbuf *b, const struct template *t, const struct job *job,
            const struct job_operator *op, const struct engine_result *r);

/* The result as one JSON object, no newline (appended). */
int fmt_json_result(struct sbuf *b, const struct job *job, const struct job_operator *op,
                    const struct engine_result *r);

/* A JSON string literal of s (escaped; appended). */
int fmt_json_string(struct sbuf *b, const char *s, size_t n);

/* src[0..n) into dst (n bytes) with each byte that is not part of
 * well-formed UTF-8 replaced by '?': text that may quote input (a log
 * line) made safe for JSON and HTML.  Returns the length, n. */
size_t fmt_utf8_clean(char *dst, const char *src, size_t n);

/* A dead letter, one JSON object: source, partition, offset, error kind,
 * reason, for bad_json the offset in the record of the byte at fault, and
 * the record (as a string when it is UTF-8, else base64). */
int fmt_dead_letter(struct sbuf *b, const char *source, int32_t partition, int64_t offset,
                    const struct reject *rej, const char *raw, size_t len);

#endif
