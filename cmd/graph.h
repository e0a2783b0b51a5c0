/*
 * graph.h - the job graph `sluice run` runs now: the job, its engine, one
 * source and one sink instance per definition, and where the reading of
 * each source's partitions stands.
 *
 * The run (cmd_run.c) builds it, replaces it on a reload and owns the job
 * and the engine it points to.  The checkpoints, the counters and the
 * HTTP endpoint are given a pointer to it: they read it, and only the
 * checkpoints write to it, the read positions of a restore, before any
 * source has started.  A reload
 * changes what the fields point to, never where the struct is.
 * Loop thread only.
 */
#ifndef SLUICE_GRAPH_H
#define SLUICE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"
#include "../config/job.h"
#include "../connectors/connector.h"
#include "../engine/engine.h"

/* Read positions of one source: the next offset of each partition. */
struct offsets {
    struct engine_offset *v;
    size_t n, cap;
};

struct graph {
    struct job *job;                /* NULL before the first graph */
    struct engine *eng;             /* NULL between two graphs */
    struct source *src;             /* [job->nsources] */
    struct sink *snk;               /* [job->nsinks] */
    struct offsets *offs;           /* [job->nsources]: where reading stands */
    int *assigned;                  /* [job->nsources]: a partition was assigned */
};

/* The arrays for job (g->job = job; the caller keeps owning it).  Returns 0
 * or -ENOMEM (then graph_free() releases what was allocated). */
int graph_alloc(struct graph *g, struct job *job) SL_MUST_USE;

/* Frees the arrays; the job and the engine are the caller's. */
void graph_free(struct graph *g);

/* The partition's read position, appended (next = -1) if new; NULL when
 * out of memory. */
struct engine_offset *offsets_slot(struct offsets *o, int32_t partition) SL_MUST_USE;

/* The partition's next offset, or -1 when nothing says. */
int64_t offsets_next(const struct offsets *o, int32_t partition);

/* *dst becomes a copy of *src (dst's memory reused).  Returns 0 or -ENOMEM
 * (dst unchanged). */
int offsets_copy(struct offsets *dst, const struct offsets *src) SL_MUST_USE;

/* Forgets every read position (a restore that failed half-way). */
void graph_clear_offsets(struct graph *g);

/* engine_offsets_fn over a struct graph: a source's read positions. */
size_t graph_offsets(void *g, int source, struct engine_offset *out, size_t max);

/* Writes accepted by the sinks and not acknowledged yet. */
size_t graph_pending(const struct graph *g);

#endif
