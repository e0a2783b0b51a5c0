/*
 * log.h - the one way sluice logs.
 *
 * LOG(level, component, fmt, ...) writes one line to stderr:
 *     sluice[1234]: kafka events: assigned partitions 0-3
 * naming the component and instance ("kafka events", "redis
 * user_features_redis").  When stderr is the systemd journal (JOURNAL_STREAM
 * names it), lines carry a syslog level prefix instead, which journald
 * turns into the entry's priority:
 *     <4>kafka events: partition 3 offset 12: malformed record: ...
 * Lines at or above the configured level (--log-level) are written;
 * per-record problems go through log_rate_msg() so a flood of bad records
 * prints a few lines and a count of what was suppressed, not a line per
 * record.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level {
    LOG_ERR = 3, LOG_WARNING = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7
};

/* Looks at JOURNAL_STREAM once; call at start. */
void log_init(void);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A rate limiter: at most `burst` lines per `interval_ms`; the next line
 * after a suppressed stretch says how many were suppressed. */
struct log_rate {
    int64_t window_start;
    unsigned count, suppressed;
};

void log_rate_msg(struct log_rate *r, enum log_level level, const char *component,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The last warnings and errors written (of this process, not of a forked
 * child), for the status page: each with its wall-clock time. */
struct log_entry {
    int64_t at_ms;
    enum log_level level;
    char component[48];
    char text[256];
};

#define LOG_RECENT 20

/* Up to max of the last LOG_RECENT, newest first, into out; returns how
 * many.  Any thread. */
size_t log_recent(struct log_entry *out, size_t max);

#define LOG(level, component, ...) \
    do { \
        if ((level) <= log_get_level()) \
            log_msg((level), (component), __VA_ARGS__); \
    } while (0)

#endif
