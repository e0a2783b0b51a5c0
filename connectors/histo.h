/*
 * histo.h - a latency histogram with fixed, log-spaced buckets, as
 * Prometheus histograms are exported (cumulative `_bucket{le=...}`, `_sum`,
 * `_count`).
 *
 * The bounds are the same for every histogram: 100 us times powers of
 * sqrt(2) up to 52 s, then 60 s, then +Inf (HISTO_NBOUNDS finite bounds),
 * so two histograms add bucket by bucket (a reload carries the counts of
 * the replaced graph over) and a quantile read from them is within a
 * factor sqrt(2) of the truth.  The exact largest observation is kept
 * beside them.  Plain counters, loop thread only; nothing allocates.
 */
#ifndef SLUICE_HISTO_H
#define SLUICE_HISTO_H

#include <stdint.h>

#define HISTO_NBOUNDS 40

struct histo {
    uint64_t n[HISTO_NBOUNDS + 1];  /* per bucket (not cumulative); the last: > 60 s */
    uint64_t count;
    uint64_t sum_ns;
    uint64_t max_ns;
};

/* The upper bound of bucket i (0 <= i < HISTO_NBOUNDS), in nanoseconds. */
uint64_t histo_bound_ns(int i);

/* One observation of ns nanoseconds. */
void histo_observe(struct histo *h, uint64_t ns);

/* dst += src, bucket by bucket. */
void histo_add(struct histo *dst, const struct histo *src);

/* The q-quantile (0 < q <= 1) in nanoseconds, interpolated linearly
 * inside its bucket as Prometheus' histogram_quantile() does (the last,
 * open bucket answers the exact maximum); 0 when empty. */
uint64_t histo_quantile_ns(const struct histo *h, double q);

#endif
