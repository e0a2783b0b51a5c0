/*
 * evtime.h - event time from record fields: ISO-8601 text and epoch numbers.
 *
 * All times are milliseconds since the Unix epoch, UTC.  Parsing is strict
 * and allocation-free: a value that is not a real instant in the accepted
 * range (years 1900..9999) is rejected with a reason rather than guessed
 * at, because a wrong event time silently moves a record into the wrong
 * window.
 */
#ifndef SLUICE_EVTIME_H
#define SLUICE_EVTIME_H

#include <stddef.h>
#include <stdint.h>

/* The accepted range: 1900-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z. */
#define EVTIME_MIN_MS (-2208988800000LL)
#define EVTIME_MAX_MS (253402300799999LL)

/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM|+HHMM|-HHMM]".
 * 't' or a space may stand for 'T'; the fraction has 1 to 9 digits and is
 * truncated to milliseconds.  A time without an offset is taken to be at
 * `naive_offset_s` seconds east of UTC.  Returns 0 and *ms, or -EINVAL
 * with a static reason in *why.
 */
int evtime_parse_iso8601(const char *s, size_t len, int32_t naive_offset_s,
                         int64_t *ms, const char **why);

/* Days since 1970-01-01 of a proleptic Gregorian date (no range checks). */
int64_t evtime_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL; 64 bytes leave room for any year) for messages. */
void evtime_format(int64_t ms, char buf[64]);

/* Checks a time computed from an epoch number against the accepted range. */
int evtime_in_range(int64_t ms);

#endif
