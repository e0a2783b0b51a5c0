/*
 * counters.h - the run's counters, as /metrics, /status, systemd's
 * STATUS= line and the summary at exit show them.
 *
 * The live counters are in the engine (records in, invalid, late, fired,
 * lost) and in the sinks (written, retried, failed, stale, coalesced, and
 * the latency histograms).  A reload replaces
 * both; so that the counters stay monotonic, the totals of the replaced
 * graphs are kept here and carried over, by name, to the indices of the
 * new job.  counters_read() adds the two.  Loop thread only.
 */
#ifndef SLUICE_COUNTERS_H
#define SLUICE_COUNTERS_H

#include <stdint.h>

#include "../config/compiler.h"
#include "../config/job.h"
#include "../engine/record.h"
#include "graph.h"

/* Counters of one job's sources, operators and sinks, by index. */
struct totals {
    uint64_t *in, (*invalid)[REJ_NKINDS];   /* per source */
    uint64_t *late, *fired, *lost;          /* per operator */
    uint64_t *written, *retried, *failed;   /* per sink */
    uint64_t *stale;                        /* per sink: writes kept out as older */
    uint64_t *coalesced;                    /* per sink: replaced before being sent */
    struct histo *latency, *freshness;      /* per sink (struct sink's histograms) */
};

/* Zeroed totals sized for job.  Returns 0 or -ENOMEM; free with
 * totals_free(). */
int totals_new(const struct job *job, struct totals *t) SL_MUST_USE;
void totals_free(struct totals *t);

/* Source s's invalid records, all reasons. */
uint64_t totals_invalid(const struct totals *t, size_t s);

struct counters;

/* Counters of the graph g (read through the pointer, whatever graph it
 * holds), starting at zero for g->job.  Returns 0 or -ENOMEM. */
int counters_new(const struct graph *g, struct counters **out) SL_MUST_USE;
void counters_free(struct counters *c);

/* The counters now, replaced graphs included, into t (sized for the
 * graph's job). */
void counters_read(const struct counters *c, struct totals *t);

/* A reload, before the graph changes: the counters so far become the
 * totals of the replaced graphs, by name, at the indices of next, the job
 * of the next graph.  Returns 0 or -ENOMEM (nothing changed). */
int counters_carry(struct counters *c, const struct job *next) SL_MUST_USE;

/* Records read, valid or not, over every source.  Returns 0 or -ENOMEM. */
int counters_records_in(const struct counters *c, uint64_t *n) SL_MUST_USE;

#endif
