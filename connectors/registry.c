/*
 * registry.c - connector types by name: the one place a new source or
 * sink type is added.
 */
#include "connector.h"

const struct source_ops *source_ops_for(const struct job_source *js)
{
    return js->type == SOURCE_KAFKA ? &kafka_source_ops : &file_source_ops;
}

const struct sink_ops *sink_ops_for(const struct job_sink *js)
{
    switch (js->type) {
    case SINK_REDIS: return &redis_sink_ops;
    case SINK_KAFKA: return &kafka_sink_ops;
    case SINK_STDOUT: return &stdout_sink_ops;
    case SINK_FILE: return &file_sink_ops;
    }
    return &stdout_sink_ops;
}
