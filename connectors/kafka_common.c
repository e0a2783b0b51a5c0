/*
 * kafka_common.c - librdkafka configuration helpers (see kafka_common.h).
 */
#include "kafka_common.h"

#include <stdio.h>
#include <string.h>

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
                                const struct job_kv *props, size_t nprops,
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
