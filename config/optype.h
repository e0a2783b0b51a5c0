/*
 * optype.h - operator types: one descriptor per kind of operator (a
 * tumbling window, a count window, a reduce, a join...) and the one table
 * that lists them.
 *
 * A descriptor says everything the rest of sluice needs to know about a
 * type: its name (printed, logged and hashed into checkpoint
 * fingerprints), the key of the operator that holds its settings, its
 * config map (confmap.h), hooks to parse and check that block, to print
 * it for `sluice validate` and to fingerprint its state, how many inputs
 * it reads, and its engine half (feed, fire, snapshot and restore), which
 * is opaque here.  The loader, the printer, the checkpoint code and the
 * engine core read descriptors; none of them names a type.
 *
 * Where it lives, and why: each descriptor is defined in its type's own
 * engine file (engine/win_count.c), next to the code that runs it, and the
 * table in engine/op_types.c, one line per type.  config/ is below
 * engine/ in the data flow (the model is built before any engine runs),
 * so it sees only this half of a descriptor and reaches the table through
 * one symbol the link resolves; it never calls the engine half.  Splitting
 * each type into a config file and an engine file joined by name would
 * keep config/ linkable alone, but a type would then live in two places,
 * which is what this table exists to end.  So adding a type is: its
 * engine file, its line in the table, its reference model and its
 * generator in the differential test (tests/ref/reference.c,
 * tests/unit/test_diff.c), and its docs.
 *
 * Settings: a type whose conf_size is 0 keeps its settings in fields of
 * struct job_operator (the types sluice has had since before this table:
 * the engine, the tests and checkpoints read them there); a new type
 * declares its own struct, which the loader allocates zeroed from the
 * job's arena (job_operator.conf) and its config map's offsets point into.
 * op_conf_int() reads a setting through the map by its key, for code that
 * does not see the struct (the reference model).
 */
#ifndef SLUICE_OPTYPE_H
#define SLUICE_OPTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "confmap.h"

struct job;
struct job_operator;
struct expr;
struct expr_sides;
struct op_engine;                   /* engine/engine_int.h */

#define OP_INPUTS_MAX 2

/* An input of an operator: the records of one source it reads, keyed by
 * key_fields (a schema index each), those a `where` accepts (NULL: all). */
struct op_input {
    int source;                     /* index into job->sources, -1 when broken */
    const int *key_fields;
    size_t nkeys;
    const struct expr *where;
};

enum {
    OPT_BOUNDS = 1 << 0,            /* results carry window bounds ({window_start},
                                     * {window_end} in key templates) */
    OPT_SPAN = 1 << 1,              /* duration() without `where` is the span of the
                                     * window's own bounds (sessions) */
    OPT_PROCESSING = 1 << 2,        /* runs in processing time, records in arrival
                                     * order (reduce, detect): the loader sets the
                                     * operator's time characteristic */
};

struct op_type {
    const char *name;               /* "tumbling", "count", "reduce", "join" */
    const char *block;              /* the operator's key holding its settings */
    const char *label;              /* in messages: "<label> of operator 'x'" */
    /* Several types may share a block (the window types); they are told
     * apart by its `type: <name>`, or, for a type with a marker, by the
     * marker key when `type` is absent (`window: { count: 100 }`). */
    const char *marker;
    int v1_code;                    /* its code in checkpoint format 1 (sluice 0.1.0),
                                     * or -1 for a type added since */
    unsigned ninputs;               /* 1, or up to OP_INPUTS_MAX */
    unsigned flags;                 /* OPT_* */
    const struct cm_map *map;       /* the block's keys */
    size_t conf_size;               /* its own settings struct; 0: job_operator's fields */

    /* Reads the block c into conf (the operator itself when conf_size is
     * 0), reporting every problem through c; opc is the operator's own
     * mapping.  NULL: cm_read(c, map, conf) is all there is to it.  A one-input operator's `from` and `key_by` are read before
     * (op->source is -1 when broken); a type with several inputs reads its
     * own and sets op->source and op->key_fields to its first input's. */
    void (*parse)(struct cm_ctx *c, struct cm_ctx *opc, struct job_operator *op, void *conf);
    /* Types with several inputs: fills in[] and returns how many. */
    size_t (*inputs)(const struct job_operator *op, struct op_input in[OP_INPUTS_MAX]);
    /* Types whose results are `fields`, expressions over two records,
     * instead of `aggregates`: the two records' names and schemas.  NULL
     * for aggregates. */
    void (*sides)(const struct job *job, const struct job_operator *op, struct expr_sides *s);
    /* Types whose `fields` are optional: the fields written without them.
     * NULL: `fields` (or `aggregates`) is required. */
    void (*default_fields)(struct cm_ctx *opc, struct job_operator *op);
    /* `sluice validate`: what follows "    <block>: " on the operator's
     * second line; a type with several inputs prints its head lines
     * itself (the common head names one source). */
    void (*print)(FILE *out, const struct job *job, const struct job_operator *op);
    /* Appends to buf (size bytes left) what the type's state depends on
     * beyond its window settings and keys, for checkpoint fingerprints;
     * returns the length written (as snprintf).  NULL: nothing. */
    size_t (*fingerprint)(const struct job *job, const struct job_operator *op, char *buf,
                          size_t size);
    const struct op_engine *engine; /* the engine half */
};

/* Every type, NULL-terminated (engine/op_types.c).  The order is the one
 * messages list them in. */
extern const struct op_type *const op_types[];

/* The inputs of op (its type's, or its one source and key). */
size_t op_inputs(const struct job_operator *op, struct op_input in[OP_INPUTS_MAX])
    SL_MUST_USE;

/* A whole-number setting of op (CM_INT, CM_DURATION) read through its
 * type's config map by key; 0 when the map has no such key. */
int64_t op_conf_int(const struct job_operator *op, const char *key);

#endif
