/*
 * broker.h - the embedded Kafka-protocol development broker.
 *
 * librdkafka's mock cluster (rdkafka_mock.h) run inside sluice: one broker
 * on loopback, for demos and tests, never for production data.  Know its
 * limits: it keeps records in memory, about 5 MB per partition (older ones
 * are dropped), and nothing survives the process.
 *
 * The mock listens on a port the kernel picks.  With a fixed port, a small
 * libuv TCP forwarder listens on 127.0.0.1:port and relays to it, so
 * clients can bootstrap from a known address (they then talk to the
 * broker's own address, which its metadata advertises).
 *
 * Tests inject faults with broker_command(): "down" and "up" (the broker
 * refuses and drops connections), "fetch-errors N", "produce-errors N",
 * "commit-errors N" (the next N such requests fail), "rtt MS", and
 * "topic NAME PARTITIONS".
 */
#ifndef SLUICE_BROKER_H
#define SLUICE_BROKER_H

#include <stddef.h>
#include <uv.h>

struct broker;

/* Starts the mock cluster (and the forwarder when port > 0) and creates
 * each topic with `partitions` partitions.  Returns 0 or a negative code
 * with a message in err. */
int broker_start(uv_loop_t *loop, int port, int partitions, const char *const *topics,
                 size_t ntopics, struct broker **out, char *err, size_t errsize);

/* "host:port" to bootstrap from. */
const char *broker_bootstrap(const struct broker *b);

/* A fault-injection or admin command (see above); reply gets "ok" or the
 * error.  Returns 0 or -EINVAL. */
int broker_command(struct broker *b, const char *line, char *reply, size_t size);

/* Closes the forwarder (on the loop) and destroys the cluster. */
void broker_stop(struct broker *b);

#endif
