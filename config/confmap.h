/*
 * confmap.h - config maps: how a connector or an operator type declares
 * the keys of its block in the job file, next to its own code.
 *
 * As in Fluent Bit's flb_config_map, a plugin lists its keys in a table
 * (key, type, default, offset into its settings struct, flags, a one-line
 * description) and the loader reads the block through that table: it
 * rejects unknown and duplicate keys (suggesting near misses), reads each
 * value by its type, stores it at its offset, and reports every problem at
 * its file:line:col, with the same wording the loader has always used.
 * Rules that tie keys together ("slide <= size") go into a validate hook,
 * and values no type covers (a URL, a key template, an expression) into a
 * custom reader.  The core never names a plugin's keys.
 *
 * A struct cm_ctx is one mapping of the job file being read: the loader,
 * the mapping's node and its label for messages ("redis sink 'features'").
 * It is only valid during the call that receives it.  Nodes (struct
 * cm_node) are the loader's YAML nodes, opaque here.  Everything a reader
 * allocates comes from the job's arena (cm_arena) and lives as long as the
 * job.
 *
 * Tables also document: the docs' configuration reference is checked
 * against them (a key documented but not accepted, or accepted but not
 * documented, fails a test), so `desc` is written for users.
 */
#ifndef SLUICE_CONFMAP_H
#define SLUICE_CONFMAP_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "compiler.h"
#include "template.h"


struct job;
struct cm_ctx;
struct cm_node;

enum cm_type {
    CM_STR,             /* const char * (arena copy); NULL when absent */
    CM_INT,             /* int64_t, whole number in [lo, hi]; dflt when absent */
    CM_DURATION,        /* int64_t milliseconds ("10s", "5m"); dflt when absent */
    CM_ENUM,            /* int: index of the value in names[]; dflt when absent */
    CM_CUSTOM,          /* read by the entry's read hook (offset unused by the reader);
                         * with no hook, the key is accepted and read by the map's
                         * owner by hand (the loader's own common keys) */
    CM_PROPS,           /* struct cm_props: a mapping of names to single values passed
                         * through as they are (librdkafka properties); the names in
                         * `owned` are refused */
    CM_TEMPLATE,        /* struct cm_template: a key template (template.h) */
};

enum {
    CM_REQUIRED = 1 << 0,   /* missing (or empty, for strings) is an error */
    CM_POSITIVE = 1 << 1,   /* durations: > 0 */
    CM_NONNEG = 1 << 2,     /* durations: >= 0 */
    CM_SECRET = 1 << 3,     /* masked wherever settings are printed */
    CM_IDENTITY = 1 << 4,   /* CM_STR: what the instance reads (a topic, a path);
                             * checkpoints fingerprint it, so it must not change
                             * meaning between versions */
};

/* CM_PROPS values: the pairs as written, in order (arena copies). */
struct cm_kv {
    const char *key, *value;
};

struct cm_props {
    const struct cm_kv *v;
    size_t n;
};

/* CM_TEMPLATE values: set is 0 when the key is absent, null or broken. */
struct cm_template {
    struct template t;
    int set;
};

struct cm_entry {
    const char *key;
    enum cm_type type;
    size_t offset;                  /* into the settings struct */
    unsigned flags;
    int64_t dflt;                   /* CM_INT, CM_DURATION, CM_ENUM */
    const char *sdflt;              /* CM_STR: the value when absent (NULL: none) */
    int64_t lo, hi;                 /* CM_INT */
    const char *const *names;       /* CM_ENUM: NULL-terminated */
    /* CM_PROPS: names sluice sets itself, as (name, what to do instead)
     * pairs, NULL-terminated; refused with "managed by sluice: <why>" */
    const char *const *owned;
    /* CM_CUSTOM: reads value node v (NULL when the key is absent) into
     * conf.  Reports its own errors through cm_err. */
    void (*read)(struct cm_ctx *c, struct cm_node *v, void *conf);
    const char *desc;               /* one line, for users */
};

/* A whole block: its entries (terminated by an entry with key NULL) and a
 * hook run after every entry was read, for rules between keys. */
struct cm_map {
    const struct cm_entry *entries;
    void (*validate)(struct cm_ctx *c, void *conf);
};

/* Reads the mapping of c through map into conf: checks its keys against
 * the map's (in the map's order for "expected one of" lists), reads every
 * entry, then runs validate.  Returns 0, or -EINVAL when c's node is not a
 * mapping (reported). */
int cm_read(struct cm_ctx *c, const struct cm_map *map, void *conf);

/* Reads every entry of map from c's mapping into conf and runs validate,
 * without checking the mapping's keys: for a block whose keys are map's and
 * its owner's (a source: the loader's common keys and its connector's),
 * checked by the owner.  Returns 0, or -EINVAL when c's node is not a mapping
 * (not reported: the key check reports it). */
int cm_read_entries(struct cm_ctx *c, const struct cm_map *map, void *conf);

/* Checks only the keys of c's mapping against map (no values read). */
int cm_check_keys(struct cm_ctx *c, const struct cm_map *map);

/* The entry of map named key, or NULL. */
const struct cm_entry *cm_entry_find(const struct cm_map *map, const char *key);

/* ---- reading by hand, inside hooks ------------------------------------- */

/* The value node of key in c's mapping, or NULL; the key node itself (for
 * errors about the key). */
struct cm_node *cm_get(struct cm_ctx *c, const char *key);
struct cm_node *cm_key(struct cm_ctx *c, const char *key);
/* The mapping c reads, and its label for messages. */
struct cm_node *cm_self(struct cm_ctx *c);
const char *cm_what(const struct cm_ctx *c);
/* A context for the nested mapping n (the same loader), labelled what
 * (copied).  The child is valid as long as c is. */
void cm_child(struct cm_ctx *c, struct cm_node *n, const char *what, struct cm_ctx *child);

/* The text of a single-value node, or NULL after reporting an error (a
 * list, a mapping, a NUL byte).  label names it in that error ("'url'"). */
const char *cm_scalar(struct cm_ctx *c, struct cm_node *n, const char *label);
/* The node is a mapping; a null value (`key:`, `~`). */
int cm_is_map(const struct cm_node *n);
int cm_is_null(const struct cm_node *n);

/* Reports an error at node n (or at c's mapping when n is NULL). */
void cm_err(struct cm_ctx *c, const struct cm_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports msg at byte off inside scalar n (an expression, a template). */
void cm_err_in_scalar(struct cm_ctx *c, const struct cm_node *n, size_t off, const char *msg);

/* Inside hooks: key of c's mapping read as a CM_STR or CM_DURATION entry
 * with these flags would be (same checks, same messages).  A string is an
 * arena copy, NULL when absent; a duration is dflt when absent, null or
 * wrong. */
const char *cm_read_str(struct cm_ctx *c, const char *key, unsigned flags);
int64_t cm_read_duration(struct cm_ctx *c, const char *key, int64_t dflt, unsigned flags);

/* The arena everything read is allocated from, and the job being built
 * (its sinks and sources read so far). */
struct arena *cm_arena(struct cm_ctx *c);
struct job *cm_job(struct cm_ctx *c);

/* ---- reading settings back (config/confmap.c) -------------------------- */

/* Where key's value lives in conf (read through map), or NULL when map has
 * no such key. */
const void *cm_value(const struct cm_map *map, const void *conf, const char *key);
/* The CM_STR value of key, or NULL (absent, or not a CM_STR key). */
const char *cm_str(const struct cm_map *map, const void *conf, const char *key);
/* The first entry of map of type t, or NULL. */
const struct cm_entry *cm_entry_of_type(const struct cm_map *map, enum cm_type t);
/* The value of the CM_STR entry flagged CM_IDENTITY, or "". */
const char *cm_identity(const struct cm_map *map, const void *conf);

/* ---- for operator types (optype.h) --------------------------------------- */

struct job_source;

/* A CM_CUSTOM entry with no read hook is only listed and key-checked by
 * cm_read: its owner reads it (the window types' `type`, which picks the
 * type before its map is known). */

/* Names of sources, operators, sinks and fields: at most this long. */
#define CM_NAME_MAX 128

/* s is an identifier: a letter or '_', then letters, digits and '_'. */
int cm_is_ident(const char *s);
/* The source a `from` value v names (its index), or -1 after an error. */
int cm_source_ref(struct cm_ctx *c, struct cm_node *v) SL_MUST_USE;
/* The sink a value v of key `key` names (`to`, `late_events`), or -1
 * after an error; raw_events: it receives raw records, so not redis. */
int cm_sink_ref(struct cm_ctx *c, struct cm_node *v, const char *key, int raw_events)
    SL_MUST_USE;
/* `key_by` of c's mapping, or of dflt's when c's has none (dflt may be
 * NULL), over src's schema (NULL: not checked) into *fields (arena) and
 * *nkeys, which stays 0 when key_by is broken. */
void cm_key_by(struct cm_ctx *c, struct cm_ctx *dflt, const struct job_source *src,
               int **fields, size_t *nkeys);
/* cm_child for a caller that cannot hold a struct cm_ctx (its size is the
 * loader's): the child comes from the job's arena; NULL when out of
 * memory (reported: the load fails). */
struct cm_ctx *cm_child_new(struct cm_ctx *c, struct cm_node *n, const char *what)
    SL_MUST_USE;

#endif
