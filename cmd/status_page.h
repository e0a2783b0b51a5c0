/*
 * status_page.h - GET / on the HTTP endpoint: one self-contained HTML page
 * (no external scripts, styles or fonts) for a person.
 *
 * It is a snapshot that needs no JavaScript: the job graph drawn as SVG,
 * tables of sources, partitions (offset, lag, watermark, owner),
 * operators, sinks (queues, backpressure), the checkpoint history and the
 * last errors.  Its script then polls /status every second and redraws
 * the tables with rates (records in, invalid, late, results per second).
 * Loop thread only.
 */
#ifndef SLUICE_STATUS_PAGE_H
#define SLUICE_STATUS_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../connectors/format.h"
#include "checkpoint.h"
#include "counters.h"
#include "graph.h"

/* What the page shows, as the caller (observe.c) reads it at request time. */
struct status_view {
    const struct graph *g;
    const struct totals *t;         /* the counters now */
    const struct chkpt_stats *ck;
    const char *state;              /* run_state_shown() */
    int backpressure;               /* a congested sink pauses the sources */
    int64_t started_ms;             /* wall clock at start */
};

/* The page, with a snapshot of v, into b. */
void status_page(const struct status_view *v, struct sbuf *b);

/* What the page and /status both show. */

/* Records (file sources: bytes) not read yet after next, or -1 when the
 * source cannot tell. */
int64_t status_lag(const struct source *src, int32_t partition, int64_t next);
/* This instance: "host:pid". */
void status_instance(char *buf, size_t size);
/* The source's member id in its group into buf ("" when it has none). */
void status_member(const struct source *src, char *buf, size_t size);
/* The wall clock, ms since the epoch. */
int64_t status_now_ms(void);

#endif
