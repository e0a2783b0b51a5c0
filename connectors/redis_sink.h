/*
 * redis_sink.h - what the Redis sink's settings resolve to, for those who
 * must know it without running the sink (tests, tools).
 */
#ifndef SLUICE_REDIS_SINK_H
#define SLUICE_REDIS_SINK_H

#include "../config/job.h"
#include "../engine/engine.h"
#include "format.h"

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

/* One result as the sink sends it (the sink's own encoding, exposed for
 * `sluice bench`, which measures it without sending): out holds HSET key
 * field value ... (then PEXPIRE key ttl), or, for a versioned sink, the
 * key and the guard script's arguments; out[0 .. part1) is the first
 * command (the key, when versioned), out[kend - 2 - key.len .. kend - 2)
 * the key's bytes.  Buffers are reused from call to call.  Returns 0 or
 * -ENOMEM. */
struct redis_plan;
struct redis_enc {
    struct sbuf key, out;
    size_t part1, kend;
    struct redis_plan *plans;   /* the constant bytes per (sink, operator), built
                                 * on first use; freed by redis_enc_free() */
    size_t nplans;
};
int redis_encode_result(struct redis_enc *enc, const struct job_sink *js, const struct job *job,
                        const struct job_operator *op, const struct engine_result *res);
void redis_enc_free(struct redis_enc *enc);

#endif
