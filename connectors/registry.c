/*
 * registry.c - every connector type, one line each: the one place a new
 * source or sink type is registered.
 *
 * A type's descriptor (struct conn_type, config/conntype.h: name, kind,
 * flags, config map, settings size, printer, callbacks) lives next to its
 * code; this list is what the job loader looks `type:` up in.  config/ sits
 * below connectors/ in the data flow, so it declares the list and this file
 * defines it: a registry resolved at link time.
 *
 * The order is the order of the "expected ..." lists in messages: sources
 * kafka, file; sinks redis, kafka, stdout, file.  A new type adds its
 * descriptor's name to the declaration and one line to the list.
 */
#include "connector.h"

extern const struct conn_type kafka_source_type, file_source_type, redis_sink_type,
    kafka_sink_type, stdout_sink_type, file_sink_type;

const struct conn_type *const conn_types[] = {
    &kafka_source_type,
    &file_source_type,
    &redis_sink_type,
    &kafka_sink_type,
    &stdout_sink_type,
    &file_sink_type,
    NULL,
};

const struct source_ops *source_ops_for(const struct job_source *js)
{
    return js->role == SRC_STAGE1 ? &repartition_source_ops : js->type->source;
}

const struct sink_ops *sink_ops_for(const struct job_sink *js)
{
    return js->type->sink;
}
