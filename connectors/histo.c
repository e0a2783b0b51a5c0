/*
 * histo.c - fixed log-spaced latency buckets (histo.h).
 *
 * The bounds are a table rather than computed: observing is a binary
 * search over 40 integers, with no floating point and no libm on the
 * write path, and the exported `le` values are the same on every run.
 */
#include <stddef.h>

#include "histo.h"

/* 100 us * sqrt(2)^i, rounded to the nanosecond, i = 0..38; then 60 s. */
static const uint64_t bounds_ns[HISTO_NBOUNDS] = {
    100000, 141421, 200000, 282843, 400000, 565685, 800000, 1131371, 1600000, 2262742,
    3200000, 4525483, 6400000, 9050967, 12800000, 18101934, 25600000, 36203867, 51200000,
    72407734, 102400000, 144815469, 204800000, 289630938, 409600000, 579261875, 819200000,
    1158523750, 1638400000, 2317047501, 3276800000, 4634095001, 6553600000, 9268190002,
    13107200000, 18536380005, 26214400000, 37072760009, 52428800000, 60000000000,
};

uint64_t histo_bound_ns(int i)
{
    return bounds_ns[i];
}

void histo_observe(struct histo *h, uint64_t ns)
{
    /* the first bound >= ns (le: "less than or equal") */
    size_t lo = 0, hi = HISTO_NBOUNDS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (bounds_ns[mid] < ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    h->n[lo]++;
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void histo_add(struct histo *dst, const struct histo *src)
{
    for (int i = 0; i <= HISTO_NBOUNDS; i++)
        dst->n[i] += src->n[i];
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t histo_quantile_ns(const struct histo *h, double q)
{
    if (h->count == 0)
        return 0;
    double rank = q * (double)h->count;
    uint64_t below = 0;
    for (int i = 0; i < HISTO_NBOUNDS; i++) {
        if ((double)(below + h->n[i]) >= rank && h->n[i] > 0) {
            uint64_t lo = i ? bounds_ns[i - 1] : 0;
            double f = (rank - (double)below) / (double)h->n[i];
            uint64_t v = lo + (uint64_t)(f * (double)(bounds_ns[i] - lo));
            return v < h->max_ns ? v : h->max_ns;
        }
        below += h->n[i];
    }
    return h->max_ns;
}
