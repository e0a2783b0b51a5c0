/*
 * kafka_common.c - librdkafka configuration helpers (see kafka_common.h).
 */
#include "kafka_common.h"

#include <stdio.h>
#include <string.h>

#include "connector.h"

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
