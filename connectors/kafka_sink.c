/*
 * kafka_sink.c - window results, late records and dead letters as Kafka
 * records, through librdkafka's idempotent producer.
 *
 * Window results are JSON objects (format.h); raw records are passed as
 * they are.  The record key is the sink's key template when it has one.
 * The producer is idempotent with an unlimited delivery timeout, so a
 * record is retried until the cluster takes it, without duplicates or
 * reordering within a partition; a write counts as pending until its
 * delivery report arrives.  Delivery reports are served from a 50 ms
 * timer on the loop.  Above KAFKA_HIGH_WATER pending records the host
 * pauses the sources; if librdkafka's own queue is ever full the sink
 * waits for room (briefly blocking the loop) rather than dropping.
 *
 * Its settings (brokers, topic, key, properties) are declared in
 * kafka_sink_map below and read by the job loader into a struct
 * kafka_sink_conf.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "format.h"
#include "kafka_common.h"
#include "log.h"

#define POLL_MS 50
#define KAFKA_HIGH_WATER 200000
#define KAFKA_LOW_WATER 100000

/* ---- settings ------------------------------------------------------------------ */

struct kafka_sink_conf {
    const char *brokers, *topic;
    struct cm_template key;             /* of each record; none: no key */
    struct cm_props props;
};

static const char *const producer_owned[] = {
    "bootstrap.servers", "set it with 'brokers'",
    NULL, NULL,
};

static const struct cm_entry kafka_sink_entries[] = {
    { .key = "brokers", .type = CM_STR, .flags = CM_REQUIRED,
      .offset = offsetof(struct kafka_sink_conf, brokers), .desc = "bootstrap servers" },
    { .key = "topic", .type = CM_STR, .flags = CM_REQUIRED | CM_IDENTITY,
      .offset = offsetof(struct kafka_sink_conf, topic), .desc = "the topic" },
    { .key = "key", .type = CM_TEMPLATE, .offset = offsetof(struct kafka_sink_conf, key),
      .desc = "template for the record key" },
    { .key = "properties", .type = CM_PROPS, .owned = producer_owned,
      .offset = offsetof(struct kafka_sink_conf, props),
      .desc = "librdkafka producer settings, passed through" },
    { .key = NULL },
};

static const struct cm_map kafka_sink_map = { kafka_sink_entries, NULL };

static void kafka_sink_print(const void *conf, FILE *out)
{
    const struct kafka_sink_conf *cf = conf;
    fprintf(out, " topic=%s brokers=%s", cf->topic, cf->brokers);
    if (cf->key.set)
        fprintf(out, " key=\"%s\"", cf->key.t.src);
}

/* ---- the sink --------------------------------------------------------------------- */

struct kafka_sink {
    struct sink *s;
    const struct kafka_sink_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uv_timer_t poll;
    int congested, closing;
    uint64_t seq;                       /* records produced, ever */
    uint64_t inflight;                  /* produced, no delivery report yet */
    uint64_t barrier_seq, barrier_left; /* checkpoint mark, reports it waits for */
    struct sbuf val, key;
    struct log_rate err_rate;
    void (*done)(struct sink *);
};

static void check_drained(struct kafka_sink *k)
{
    if (k->congested && (size_t)rd_kafka_outq_len(k->rk) < KAFKA_LOW_WATER) {
        k->congested = 0;
        k->s->host->drained(k->s->host->ud, k->s);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_sink *k = opaque;
    (void)rk;
    k->inflight--;
    if ((uint64_t)(uintptr_t)m->_private <= k->barrier_seq && k->barrier_left > 0)
        k->barrier_left--;
    if (m->err) {
        k->s->failed++;
        log_rate_msg(&k->err_rate, LOG_ERR, k->s->name, "delivery failed: %s",
                     rd_kafka_err2str(m->err));
    } else {
        k->s->written++;
    }
}

static void on_poll(uv_timer_t *t)
{
    struct kafka_sink *k = t->data;
    rd_kafka_poll(k->rk, 0);
    char err[256];
    if (rd_kafka_fatal_error(k->rk, err, sizeof(err)))
        log_rate_msg(&k->err_rate, LOG_ERR, k->s->name, "fatal producer error: %s", err);
    check_drained(k);
}

static int ksk_open(struct sink *s)
{
    const struct kafka_sink_conf *cf = s->js->conf;
    char err[512];
    struct kafka_sink *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->s = s;
    k->conf = cf;
    s->impl = k;
    uv_timer_init(s->host->loop, &k->poll);
    k->poll.data = k;
    const char *defaults[] = {
        "enable.idempotence", "true",
        "message.timeout.ms", "0",              /* retry until delivered */
        "queue.buffering.max.messages", "1000000",
        "linger.ms", "5",
        "client.id", "sluice",
        NULL,
    };
    rd_kafka_conf_t *conf = kafka_conf_new(cf->brokers, defaults, cf->props.v, cf->props.n,
                                           err, sizeof(err));
    if (conf == NULL) {
        log_msg(LOG_ERR, s->name, "%s", err);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (k->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        log_msg(LOG_ERR, s->name, "%s", err);
        return -EINVAL;
    }
    k->rkt = rd_kafka_topic_new(k->rk, cf->topic, NULL);
    uv_timer_start(&k->poll, on_poll, POLL_MS, POLL_MS);
    LOG(LOG_INFO, s->name, "producing to %s at %s", cf->topic, kafka_bootstrap(cf->brokers));
    return 0;
}

static SL_MUST_USE int produce(struct kafka_sink *k, const char *val, size_t vlen, const char *key,
                   size_t klen)
{
    for (;;) {
        if (rd_kafka_produce(k->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)val,
                             vlen, key, klen, (void *)(uintptr_t)(k->seq + 1)) == 0) {
            k->seq++;
            k->inflight++;
            break;
        }
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            log_rate_msg(&k->err_rate, LOG_ERR, k->s->name, "produce: %s", rd_kafka_err2str(e));
            k->s->failed++;
            return -EIO;
        }
        rd_kafka_poll(k->rk, 100);      /* wait for room; never drop */
    }
    if (!k->congested && (size_t)rd_kafka_outq_len(k->rk) >= KAFKA_HIGH_WATER) {
        k->congested = 1;
        k->s->host->congested(k->s->host->ud, k->s);
    }
    return 0;
}

static int ksk_write_result(struct sink *s, const struct job_operator *op,
                            const struct engine_result *r)
{
    struct kafka_sink *k = s->impl;
    const struct cm_template *key = &k->conf->key;
    k->val.len = k->key.len = 0;
    if (fmt_json_result(&k->val, s->job, op, r) < 0)
        return -ENOMEM;
    if (key->set && fmt_key(&k->key, &key->t, s->job, op, r) < 0)
        return -ENOMEM;
    return produce(k, k->val.p, k->val.len, key->set ? k->key.p : NULL, k->key.len);
}

static int ksk_write_raw(struct sink *s, const char *data, size_t len, const char *key,
                         size_t klen)
{
    return produce(s->impl, data, len, key, klen);
}

static size_t ksk_pending(const struct sink *s)
{
    const struct kafka_sink *k = s->impl;
    return k && k->rk ? (size_t)rd_kafka_outq_len(k->rk) : 0;
}

/* Every record produced so far gets its delivery report. */
static int ksk_barrier(struct sink *s)
{
    struct kafka_sink *k = s->impl;
    k->barrier_seq = k->seq;
    k->barrier_left = k->inflight;
    return 0;
}

static int ksk_barrier_done(const struct sink *s)
{
    const struct kafka_sink *k = s->impl;
    return k->barrier_left == 0;
}

static void on_closed(uv_handle_t *h)
{
    struct kafka_sink *k = h->data;
    struct sink *s = k->s;
    void (*done)(struct sink *) = k->done;
    if (k->rk != NULL) {
        rd_kafka_resp_err_t e = rd_kafka_flush(k->rk, 5000);
        if (e)
            log_msg(LOG_WARNING, s->name, "closed with %d records not delivered: %s",
                    rd_kafka_outq_len(k->rk), rd_kafka_err2str(e));
        rd_kafka_topic_destroy(k->rkt);
        rd_kafka_destroy(k->rk);
    }
    sbuf_free(&k->val);
    sbuf_free(&k->key);
    free(k);
    s->impl = NULL;
    if (done != NULL)
        done(s);
}

static void ksk_close(struct sink *s, void (*done)(struct sink *))
{
    struct kafka_sink *k = s->impl;
    if (k == NULL) {
        if (done != NULL)
            done(s);
        return;
    }
    k->closing = 1;
    k->done = done;
    uv_close((uv_handle_t *)&k->poll, on_closed);
}

static const struct sink_ops kafka_sink_ops = {
    .type = "kafka",
    .open = ksk_open,
    .write_result = ksk_write_result,
    .write_raw = ksk_write_raw,
    .pending = ksk_pending,
    .barrier = ksk_barrier,
    .barrier_done = ksk_barrier_done,
    .close = ksk_close,
};

const struct conn_type kafka_sink_type = {
    .name = "kafka", .kind = CONN_SINK, .flags = CONN_RAW, .map = &kafka_sink_map,
    .conf_size = sizeof(struct kafka_sink_conf), .print = kafka_sink_print,
    .sink = &kafka_sink_ops,
};
