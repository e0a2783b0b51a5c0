/*
 * kafka_common.h - what the Kafka source, sink and `sluice gen` share:
 * building a librdkafka configuration, and the embedded broker's address.
 */
#ifndef SLUICE_KAFKA_COMMON_H
#define SLUICE_KAFKA_COMMON_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "../config/job.h"
#include "log.h"

/* A kafka source's settings (kafka_source.c reads them; stage 1 of a
 * repartitioning, repartition.c, reads its input with them too). */
enum ks_start { START_EARLIEST, START_LATEST };

struct kafka_source_conf {
    const char *brokers, *topic, *group;
    int start;                      /* enum ks_start */
    struct cm_props props;
};

/* `brokers: embedded` resolves to this address once the host has started
 * an embedded broker (connectors/broker.h); NULL before. */
void kafka_set_embedded_bootstrap(const char *addr);
const char *kafka_bootstrap(const char *brokers);

/* The Kafka connectors' types (kafka_source.c, kafka_sink.c). */
extern const struct conn_type kafka_source_type, kafka_sink_type;

/* The embedded broker: *used says whether any Kafka source or sink of job
 * has `brokers: embedded`; returns how many topics the Kafka sources read,
 * written to topics (at most max), for the broker to create. */
size_t kafka_embedded_topics(const struct job *job, const char **topics, size_t max,
                             int *used);

/* A configuration with bootstrap.servers, the given defaults (key, value
 * pairs, NULL-terminated) and then the job's passthrough properties, which
 * win.  Returns NULL with a message in err on a bad property. */
SL_MUST_USE rd_kafka_conf_t *kafka_conf_new(const char *brokers,
                                            const char *const *defaults,
                                            const struct cm_kv *props, size_t nprops,
                                            char *err, size_t errsize);

/* The group's committed offsets of the partitions of l, into l's offsets
 * (a round trip to the coordinator), tried a few times.  Returns 0 or
 * -EIO (logged, under component). */
SL_MUST_USE int kafka_committed(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l,
                                const char *component);

/* The first (which: RD_KAFKA_OFFSET_BEGINNING) or end (RD_KAFKA_OFFSET_END:
 * the high watermark) offsets of the partitions of l, into l's offsets, in
 * one request per broker (ListOffsets), tried a few times.  Returns 0 or
 * -EIO (logged, under component). */
SL_MUST_USE int kafka_list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l,
                                   int64_t which, const char *component);

/* Pauses (pause = 1) or resumes one partition of topic. */
void kafka_pause_one(rd_kafka_t *rk, const char *topic, int32_t partition, int pause);

/* Records between next and the end of a partition, from the high watermark
 * the last fetch response carried (no round trip); -1 when unknown. */
int64_t kafka_lag(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t next);

/* The consumer's member id in its group into buf ("" before it joined). */
void kafka_member(rd_kafka_t *rk, char *buf, size_t size);

/* What an (un)assign in a rebalance callback returned (either form; error
 * is freed): logged under component when it failed (librdkafka's state and
 * ours then differ). */
void kafka_assign_result(const char *component, const char *what, rd_kafka_error_t *error,
                         rd_kafka_resp_err_t err);

/* A consumer message that carries an error: 0 to go on (the end of a
 * partition, or an error librdkafka recovers from: logged through rate),
 * or -EIO when the consumer has a fatal error (logged). */
SL_MUST_USE int kafka_message_error(rd_kafka_t *rk, const rd_kafka_message_t *m,
                                    const char *component, struct log_rate *rate);

/* Wakes the loop when librdkafka queues become non-empty: librdkafka writes
 * a byte to a pipe (rd_kafka_queue_io_event_enable) that a uv_poll watches
 * and calls cb on.  fd[] gets the pipe; poll->data is set to data.  Returns
 * 0, or a negative errno (logged under component) before the poll handle is
 * initialised. */
SL_MUST_USE int kafka_wake_start(uv_loop_t *loop, uv_poll_t *poll, int fd[2],
                                 rd_kafka_queue_t *const *queues, size_t nqueues, uv_poll_cb cb,
                                 void *data, const char *component);

/* Empties the pipe (from the poll callback). */
void kafka_wake_drain(int fd);

/* Closes the pipe (once the poll handle is closed); -1 entries are skipped. */
void kafka_wake_close(int fd[2]);

/* The value of key among a source's passthrough properties, or NULL. */
const char *kafka_prop(const struct cm_props *props, const char *key);

/* A consumer's statistics JSON (librdkafka's stats_cb): 1 when its group
 * handler's join state is "steady", 0 when it is another (the member is
 * rejoining: commits must wait), -1 when the JSON does not say. */
int kafka_join_steady(const char *json);

#endif
