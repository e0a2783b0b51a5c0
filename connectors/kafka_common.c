/*
 * kafka_common.c - librdkafka configuration helpers (see kafka_common.h).
 */
#include "kafka_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "log.h"

static char embedded[256];

void kafka_set_embedded_bootstrap(const char *addr)
{
    snprintf(embedded, sizeof(embedded), "%s", addr ? addr : "");
}

const char *kafka_bootstrap(const char *brokers)
{
    if (brokers != NULL && strcmp(brokers, "embedded") == 0)
        return embedded[0] ? embedded : NULL;
    return brokers;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *const *defaults,
                                const struct cm_kv *props, size_t nprops,
                                char *err, size_t errsize)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *bs = kafka_bootstrap(brokers);
    if (bs == NULL) {
        snprintf(err, errsize, "brokers: embedded, but no embedded broker is running");
        goto fail;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, errsize) != RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; defaults != NULL && defaults[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], err, errsize) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; i < nprops; i++) {
        if (rd_kafka_conf_set(conf, props[i].key, props[i].value, err, errsize) !=
            RD_KAFKA_CONF_OK) {
            char msg[512];
            snprintf(msg, sizeof(msg), "property %s: %s", props[i].key, err);
            snprintf(err, errsize, "%s", msg);
            goto fail;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

#define TRIES 3
#define COMMITTED_TIMEOUT_MS 5000
#define OFFSETS_TIMEOUT_MS 10000

int kafka_committed(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, const char *component)
{
    const char *topic = l->cnt > 0 ? l->elems[0].topic : "";
    rd_kafka_resp_err_t err = 0;
    for (int t = 0; t < TRIES; t++) {
        uint64_t t0 = uv_hrtime();
        err = rd_kafka_committed(rk, l, COMMITTED_TIMEOUT_MS);
        for (int i = 0; err == 0 && i < l->cnt; i++)
            err = l->elems[i].err;
        if (err == 0)
            return 0;
        log_msg(LOG_WARNING, component, "reading the group's committed offsets of %s "
                "(try %d of %d, %" PRIu64 " ms): %s", topic, t + 1, TRIES,
                (uv_hrtime() - t0) / 1000000, rd_kafka_err2str(err));
    }
    log_msg(LOG_ERR, component, "cannot read the group's committed offsets of %s: %s", topic,
            rd_kafka_err2str(err));
    return -EIO;
}

int kafka_list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, int64_t which,
                       const char *component)
{
    const char *topic = l->cnt > 0 ? l->elems[0].topic : "";
    const char *what = which == RD_KAFKA_OFFSET_END ? "end" : "first";
    rd_kafka_resp_err_t err = 0;
    for (int t = 0; t < TRIES; t++) {
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(l);
        for (int i = 0; i < q->cnt; i++)
            q->elems[i].offset = which;     /* as a timestamp: -1 latest, -2 earliest */
        err = rd_kafka_offsets_for_times(rk, q, OFFSETS_TIMEOUT_MS);
        for (int i = 0; err == 0 && i < q->cnt; i++)
            err = q->elems[i].err;
        for (int i = 0; err == 0 && i < q->cnt; i++)
            l->elems[i].offset = q->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(q);
        if (err == 0)
            return 0;
        log_msg(LOG_WARNING, component, "reading the %s offsets of %s (try %d of %d): %s", what,
                topic, t + 1, TRIES, rd_kafka_err2str(err));
    }
    log_msg(LOG_ERR, component, "cannot read the %s offsets of %s: %s", what, topic,
            rd_kafka_err2str(err));
    return -EIO;
}

void kafka_pause_one(rd_kafka_t *rk, const char *topic, int32_t partition, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    if (pause)
        rd_kafka_pause_partitions(rk, l);
    else
        rd_kafka_resume_partitions(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

int64_t kafka_lag(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t next)
{
    int64_t lo, hi;
    if (rk == NULL || rd_kafka_get_watermark_offsets(rk, topic, partition, &lo, &hi) != 0 ||
        hi < 0)
        return -1;
    if (next < lo)
        next = lo;
    return hi > next ? hi - next : 0;
}

void kafka_member(rd_kafka_t *rk, char *buf, size_t size)
{
    char *id = rk != NULL ? rd_kafka_memberid(rk) : NULL;
    snprintf(buf, size, "%s", id != NULL ? id : "");
    if (id != NULL)
        rd_kafka_mem_free(rk, id);
}

void kafka_assign_result(const char *component, const char *what, rd_kafka_error_t *error,
                         rd_kafka_resp_err_t err)
{
    if (error != NULL) {
        log_msg(LOG_ERR, component, "%s: %s", what, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (err) {
        log_msg(LOG_ERR, component, "%s: %s", what, rd_kafka_err2str(err));
    }
}

int kafka_message_error(rd_kafka_t *rk, const rd_kafka_message_t *m, const char *component,
                        struct log_rate *rate)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return 0;
    if (rd_kafka_fatal_error(rk, NULL, 0)) {
        log_msg(LOG_ERR, component, "fatal consumer error: %s", rd_kafka_message_errstr(m));
        return -EIO;
    }
    log_rate_msg(rate, LOG_WARNING, component, "%s", rd_kafka_message_errstr(m));
    return 0;
}

int kafka_wake_start(uv_loop_t *loop, uv_poll_t *poll, int fd[2], rd_kafka_queue_t *const *queues,
                     size_t nqueues, uv_poll_cb cb, void *data, const char *component)
{
    if (pipe(fd) < 0) {
        int e = errno;
        fd[0] = fd[1] = -1;
        log_msg(LOG_ERR, component, "pipe: %s", strerror(e));
        return -e;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
        fcntl(fd[i], F_SETFD, FD_CLOEXEC);
    }
    uv_poll_init(loop, poll, fd[0]);
    poll->data = data;
    for (size_t i = 0; i < nqueues; i++)
        rd_kafka_queue_io_event_enable(queues[i], fd[1], "1", 1);
    uv_poll_start(poll, UV_READABLE, cb);
    return 0;
}

void kafka_wake_drain(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

void kafka_wake_close(int fd[2])
{
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    fd[0] = fd[1] = -1;
}

const char *kafka_prop(const struct cm_props *props, const char *key)
{
    for (size_t i = 0; i < props->n; i++)
        if (strcmp(props->v[i].key, key) == 0)
            return props->v[i].value;
    return NULL;
}

/* Kafka sources and sinks alike name their brokers `brokers` and their
 * topic `topic` (kafka_source.c, kafka_sink.c). */
static int is_embedded(const struct conn_type *t, const void *conf)
{
    const char *b = cm_str(t->map, conf, "brokers");
    return b != NULL && strcmp(b, "embedded") == 0;
}

size_t kafka_embedded_topics(const struct job *job, const char **topics, size_t max,
                             int *used)
{
    size_t n = 0;
    *used = 0;
    for (size_t i = 0; i < job->nsources; i++) {
        const struct job_source *js = &job->sources[i];
        if (js->type != &kafka_source_type)
            continue;
        *used |= is_embedded(js->type, js->conf);
        /* each topic once: a repartitioning's stage 1 reads its input's
         * topic, and two sources may read one topic */
        const char *t = cm_str(js->type->map, js->conf, "topic");
        size_t k = 0;
        while (k < n && strcmp(topics[k], t) != 0)
            k++;
        if (k == n && n < max)
            topics[n++] = t;
    }
    for (size_t i = 0; i < job->nsinks; i++)
        if (job->sinks[i].type == &kafka_sink_type)
            *used |= is_embedded(job->sinks[i].type, job->sinks[i].conf);
    return n;
}

int kafka_join_steady(const char *json)
{
    static const char key[] = "\"join_state\"";
    const char *js = strstr(json, key);
    if (js == NULL)
        return -1;
    js += sizeof(key) - 1;
    js += strspn(js, ": \"");
    return strncmp(js, "steady\"", 7) == 0;
}
