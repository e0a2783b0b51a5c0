/*
 * agg.h - accumulators: the fixed-size per-window state of an operator's
 * aggregates, and the operations windows need on them.
 *
 * An operator's aggregates are compiled into components, deduplicated:
 * `count() where event_type == "view"` and `avg(price) where event_type ==
 * "view"` share one count; min/max/first/last/duration use that count to
 * know whether anything matched.  One accumulator is a block of
 * agg_layout.size bytes holding every component at a fixed offset, so a
 * pane, a session or a global window is one memcpy-able block, and adding
 * a record is one pass over the components with no allocation (except a
 * count_distinct set or a first/last string that has to grow or change).
 *
 * Doubles are summed exactly: each value is turned into a 128-bit integer
 * count of 2^-64 units (exact for every double of magnitude between 2^-11
 * and 2^62 with a short enough mantissa, which covers prices, amounts and
 * durations), integer addition is associative, and the result is rounded
 * once at the end.  So a sum or avg does not depend on the order records
 * arrived in, on batching, or on how panes were combined.  Values outside
 * that grid go to a plain double sum beside it (order-dependent, and only
 * then).
 *
 * Ownership: first/last strings and count_distinct sets live in the slab
 * and belong to the block; agg_release() frees them.  agg_merge() either
 * borrows (the result block is temporary and only read) or moves (the
 * source is released right after).
 */
#ifndef SLUICE_AGG_H
#define SLUICE_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "../config/job.h"
#include "record.h"
#include "slab.h"
#include "value.h"

enum comp_kind {
    C_COUNT, C_SUM_I, C_SUM_D, C_MIN, C_MAX, C_FIRST, C_LAST, C_DISTINCT, C_TSPAN
};

struct agg_comp {
    enum comp_kind kind;
    int field;                  /* schema index, or -1 */
    enum value_type ftype;
    int where;                  /* index into the group's where list, or -1 */
    int presence;               /* component index of the matching count, or -1 */
    size_t off;                 /* byte offset in the block */
};

struct agg_out {
    const char *name;
    enum agg_fn fn;
    int comp, count;            /* main component; count (avg, presence) or -1 */
    enum value_type type;       /* result type when not null */
    int span_from_bounds;       /* duration() of a session without where */
};

struct agg_layout {
    struct agg_comp *c;
    size_t nc;
    struct agg_out *o;
    size_t no;
    size_t size;                /* bytes of one block (a multiple of 8) */
    int owns;                   /* blocks may hold strings or sets */
};

/* Finds or adds a where-expression in the group's list; returns its index. */
typedef int (*agg_where_fn)(void *ud, const struct expr *where);

/* Compiles op's aggregates.  Returns 0 or -ENOMEM. */
int agg_layout_build(struct agg_layout *L, const struct job_operator *op,
                     const struct job_source *src, agg_where_fn where_index, void *ud);
void agg_layout_free(struct agg_layout *L);

/* Adds record r with event time t; wres[i] is the result of where i.
 * Returns 0 or -ENOMEM (the block stays consistent). */
int agg_add(const struct agg_layout *L, void *blk, const struct record *r,
            const unsigned char *wres, int64_t t, struct slab *slab);

enum agg_merge_mode { AGG_BORROW, AGG_MOVE };

/* dst += src.  AGG_BORROW: dst is temporary and only read before
 * agg_release_borrowed; AGG_MOVE: src is released (agg_release) right
 * after.  Returns 0 or -ENOMEM. */
int agg_merge(const struct agg_layout *L, void *dst, void *src,
              enum agg_merge_mode mode, struct slab *slab);

/* Frees what a block owns (not the block). */
void agg_release(const struct agg_layout *L, void *blk, struct slab *slab);
/* Frees a temporary block built with AGG_BORROW merges. */
void agg_release_borrowed(const struct agg_layout *L, void *blk, struct slab *slab);

/* Slab bytes a block owns beyond its own size (strings, sets). */
size_t agg_owned_bytes(const struct agg_layout *L, const void *blk);

/* The results, one per aggregate, into out[L->no].  span_ms is used for a
 * session's duration() without where (latest - earliest event time).
 * String results point into the block. */
void agg_result(const struct agg_layout *L, const void *blk, int64_t span_ms,
                struct value *out);

/* Checkpoints: the block as bytes, with what it owns (strings, sets)
 * written after it; agg_load rebuilds a block written by agg_save.
 * agg_load returns 0, -EINVAL (malformed) or -ENOMEM. */
struct ckpt_writer;
struct ckpt_cur;
void agg_save(const struct agg_layout *L, const void *blk, struct ckpt_writer *w);
int agg_load(const struct agg_layout *L, void *blk, struct ckpt_cur *c, struct slab *slab);

/* ---- exact double sums (exposed for tests) ---- */
struct dsum {
    uint64_t lo, hi;            /* two's-complement 128-bit count of 2^-64 units */
    double rest;                /* values off the grid */
};
void dsum_add(struct dsum *s, double x);
void dsum_merge(struct dsum *a, const struct dsum *b);
double dsum_value(const struct dsum *s);

#endif
