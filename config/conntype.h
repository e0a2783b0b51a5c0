/*
 * conntype.h - connector types as the job loader sees them: the one list
 * of source and sink types, each with its name, its config map and the
 * size of the settings struct the map fills.
 *
 * As in Fluent Bit (a plugin is a `struct flb_input_plugin` defined in its
 * own folder, and one list names every plugin), each connector defines its
 * `struct conn_type` next to its code (connectors/kafka_source.c, ...) and
 * connectors/registry.c lists them, one line each.  That list is the only
 * place a new connector type is registered: the loader looks types up by
 * name in it, reads a block's connector keys through the type's map into a
 * settings struct of conf_size bytes (struct job_source.conf), and never
 * names a connector's keys.
 *
 * Layering: config/ sits below connectors/ in the data flow, so the list is
 * resolved at link time: config/ declares conn_types[] here and
 * connectors/registry.c defines it.  Anything that links the loader links
 * the connectors too (the fuzz targets included, see the Makefile).  The
 * ops are opaque here (connectors/connector.h defines them).
 */
#ifndef SLUICE_CONNTYPE_H
#define SLUICE_CONNTYPE_H

#include <stddef.h>
#include <stdio.h>

#include "arena.h"
#include "confmap.h"

struct source_ops;
struct sink_ops;

enum conn_kind { CONN_SOURCE, CONN_SINK };

/* What the core must know of a type beyond its keys. */
enum {
    /* source: records carry their own timestamp (event_time format
     * kafka_timestamp reads it) */
    CONN_RECORD_TIME = 1 << 0,
    /* source: in --bounded mode every record is there from the start (a
     * file), so the source is never idle */
    CONN_COMPLETE = 1 << 1,
    /* sink: takes raw records (late events, dead letters), not only fired
     * windows */
    CONN_RAW = 1 << 2,
};

struct conn_type {
    const char *name;                   /* `type:` in the job file */
    enum conn_kind kind;
    unsigned flags;
    const struct cm_map *map;           /* its keys, besides the common ones */
    size_t conf_size;                   /* the settings struct map fills */
    /* `sluice validate`: prints the settings after "  name: type" on the
     * instance's line (a leading blank each), secrets masked; NULL: none */
    void (*print)(const void *conf, FILE *out);
    /* source: a copy of conf, made in arena a, that reads `topic` from its
     * beginning in the same group: the settings of a repartition source
     * (config/job.h) added for an input of this type; NULL: the type's
     * sources cannot be repartitioned (only kafka's can) */
    const void *(*repartition_conf)(struct arena *a, const void *conf, const char *topic);
    const struct source_ops *source;    /* CONN_SOURCE */
    const struct sink_ops *sink;        /* CONN_SINK */
};

/* Every type, in the order "expected ..." lists show them; NULL-terminated.
 * Defined in connectors/registry.c. */
extern const struct conn_type *const conn_types[];

/* The type of that kind and name, or NULL. */
const struct conn_type *conn_type_find(enum conn_kind kind, const char *name);

#endif
