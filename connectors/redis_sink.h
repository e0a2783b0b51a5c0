/*
 * redis_sink.h - what the Redis sink's settings resolve to, for those who
 * must know it without running the sink (tests, tools).
 */
#ifndef SLUICE_REDIS_SINK_H
#define SLUICE_REDIS_SINK_H

#include "../config/job.h"

/* Where a redis sink writes: its URL taken apart, with the username and
 * password keys overriding the URL's (NULL when neither gives one). */
struct redis_endpoint {
    const char *host;
    int port, db;
    const char *username, *password;
};

const struct redis_endpoint *redis_sink_endpoint(const struct job_sink *js);

/* The sink keeps the newest result of each hash (`versioned`, the
 * default): its writes carry the result's version in the field
 * REDIS_VERSION_PREFIX<operator name>, and an older one changes nothing. */
int redis_sink_versioned(const struct job_sink *js);

/* The sink's TLS settings (redis_conn.h), or NULL when it speaks plain TCP:
 * on with a rediss:// URL, or a `tls` mapping that sets anything. */
struct redis_tls;
const struct redis_tls *redis_sink_tls(const struct job_sink *js);

/* The sink writes to a Redis Cluster (`cluster: true`). */
int redis_sink_cluster(const struct job_sink *js);

#define REDIS_VERSION_PREFIX "_sluice:"

#endif
