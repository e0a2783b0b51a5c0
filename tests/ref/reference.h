/*
 * reference.h - a deliberately simple implementation of docs/semantics.md,
 * to test the engine against.
 *
 * It keeps every record.  Tumbling and sliding windows are lists of the
 * records they hold, per (key, window start); sessions are lists of
 * records merged by the documented rule; a global window is every record of
 * its key.  Every result is recomputed from the raw records of its window:
 * no panes, no accumulators, no timers, no hash tables.  The watermark is
 * the documented one, for one partition: max event time - out_of_orderness - 1,
 * after each record, lateness judged before it.  Quadratic, and meant to
 * be: it is the specification, run.
 *
 * Records are decoded with the engine's decoder (what a record means is
 * tested elsewhere) and `where` conditions with the engine's evaluator;
 * double sums use the engine's exact adder (tested on its own in
 * test_agg.c).  Event-time operators, and reduce and detect in processing
 * time (ref_feed_at, ref_tick: the caller's clock).
 */
#ifndef SLUICE_REFERENCE_H
#define SLUICE_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "../../config/job.h"
#include "../../engine/engine.h"

struct reference;

/* result() is called for every fired window, as the engine would, with
 * `fired_at` the index of the record after which it fired (the record
 * count at the end of input). */
typedef void (*ref_result_fn)(void *ud, size_t fired_at, const struct engine_result *r);

struct reference *ref_new(const struct job *job, ref_result_fn fn, void *ud);
void ref_free(struct reference *ref);

/* One raw record of source `source`.  Returns 0, or -1 when it is invalid
 * (counted, and otherwise ignored, as the engine does). */
int ref_feed(struct reference *ref, int source, const char *data, size_t len);
/* The same, arriving at processing time `now` (ms). */
int ref_feed_at(struct reference *ref, int source, const char *data, size_t len, int64_t now);
/* The clock reached `now` between records (the engine's tick); results
 * are tagged `at`. */
void ref_tick(struct reference *ref, int64_t now, size_t at);

/* End of input: every open window fires. */
void ref_finish(struct reference *ref);

/* Records too late for every window, per operator. */
uint64_t ref_late(const struct reference *ref, int op);

#endif
