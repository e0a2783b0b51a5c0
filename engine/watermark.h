/*
 * watermark.h - the event-time clock of one source.
 *
 * docs/semantics.md: each partition p has W_p = (max event time seen on p) -
 * out_of_orderness - 1 ms, advanced after every record (not on a timer, so
 * a replay makes the same decisions); the source's watermark is the
 * minimum over partitions that are neither idle nor ended.  A partition
 * with no records for idle_timeout (processing time) stops holding the
 * watermark back until its next record, as Flink's withIdleness; a newly
 * assigned partition holds it at -infinity until its first record or until
 * it has been idle that long; in bounded mode a partition at its end
 * offset stops holding it back.  The watermark never goes backwards.
 *
 * Time is passed in by the caller (now_ms), so tests drive a fake clock.
 */
#ifndef SLUICE_WATERMARK_H
#define SLUICE_WATERMARK_H

#include <stddef.h>
#include <stdint.h>

#define WM_MIN INT64_MIN
#define WM_MAX INT64_MAX

struct wm_part {
    int32_t id;
    int64_t max_ts;             /* WM_MIN before the first record */
    int64_t last_active;        /* processing time of the last record (or assignment) */
    int idle, ended;
};

struct watermark {
    int64_t ooo_ms;
    int64_t idle_ms;            /* < 0: never idle */
    struct wm_part *p;
    size_t n, cap;
    int64_t current;            /* the source watermark, monotonic */
};

void wm_init(struct watermark *w, int64_t ooo_ms, int64_t idle_ms);
void wm_destroy(struct watermark *w);

/* Partition assignment and revocation.  Returns 0 or -ENOMEM. */
int wm_add(struct watermark *w, int32_t part, int64_t now_ms);
void wm_remove(struct watermark *w, int32_t part);

/* A record with event time ts on part (added if unknown).  Returns the
 * source watermark after it. */
int64_t wm_observe(struct watermark *w, int32_t part, int64_t ts, int64_t now_ms);

/* A restored partition's latest event time (after wm_add). */
void wm_restore_partition(struct watermark *w, int32_t part, int64_t max_ts);

/* Re-evaluates idleness at now_ms; returns the watermark. */
int64_t wm_tick(struct watermark *w, int64_t now_ms);

/* Bounded mode: part has reached its end offset. */
int64_t wm_end_partition(struct watermark *w, int32_t part);

/* End of all input: the watermark becomes +infinity. */
int64_t wm_finish(struct watermark *w);

/* A partition's own watermark (for metrics), or WM_MIN. */
int64_t wm_partition(const struct watermark *w, int32_t part);

#endif
