/*
 * status_page.h - GET / on the HTTP endpoint: one self-contained HTML page
 * (no external scripts, styles or fonts) for a person.
 *
 * It is a snapshot that needs no JavaScript: the job graph drawn as SVG,
 * tables of sources, partitions (offset, lag, watermark, owner),
 * operators, sinks (queues, backpressure), the checkpoint history and the
 * last errors.  Its script then polls /status every second and redraws
 * the tables with rates (records in, invalid, late, results per second).
 * Loop thread only, like observe.h.
 */
#ifndef SLUICE_STATUS_PAGE_H
#define SLUICE_STATUS_PAGE_H

#include <stddef.h>

#include "../connectors/format.h"
#include "counters.h"
#include "observe.h"

/* The page, with a snapshot of the run h observes (t: its counters now),
 * into b. */
void status_page(const struct observe_host *h, const struct totals *t, struct sbuf *b);

/* The bytes of the page before a snapshot is filled in. */
size_t status_page_size(void);

#endif
