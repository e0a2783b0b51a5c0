/*
 * broker.c - librdkafka's mock cluster, and a loopback TCP forwarder for a
 * fixed bootstrap port (see broker.h).
 *
 * The forwarder relays bytes both ways between each accepted client and
 * the mock broker.  It carries only bootstrap traffic (clients learn the
 * broker's real address from its metadata and connect there), so it keeps
 * no flow control beyond libuv's write queue.
 */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

struct relay;

struct broker {
    struct relay *relays;           /* open forwarded connections */
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening;
    struct sockaddr_in upstream;
    char bootstrap[128];
};

/* ---- forwarder ------------------------------------------------------------ */

struct relay {
    struct broker *br;
    struct relay *next, **prevp;    /* in br->relays */
    uv_tcp_t a, b;                  /* client, upstream */
    uv_connect_t conn;
    int nclosed, closing;
};

struct wreq {
    uv_write_t req;
    char data[];
};

static void relay_closed(uv_handle_t *h)
{
    struct relay *r = h->data;
    if (++r->nclosed == 2)
        free(r);
}

static void relay_close(struct relay *r)
{
    if (r->closing)
        return;
    r->closing = 1;
    *r->prevp = r->next;
    if (r->next != NULL)
        r->next->prevp = r->prevp;
    uv_close((uv_handle_t *)&r->a, relay_closed);
    uv_close((uv_handle_t *)&r->b, relay_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    struct wreq *w = malloc(sizeof(*w) + hint);
    *buf = uv_buf_init(w ? w->data : NULL, w ? (unsigned)hint : 0);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct relay *r = s->data;
    struct wreq *w = buf->base ? (struct wreq *)(buf->base - offsetof(struct wreq, data)) : NULL;
    if (n <= 0) {
        free(w);
        if (n < 0)
            relay_close(r);
        return;
    }
    uv_stream_t *to = s == (uv_stream_t *)&r->a ? (uv_stream_t *)&r->b : (uv_stream_t *)&r->a;
    uv_buf_t out = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, to, &out, 1, on_written) < 0) {
        free(w);
        relay_close(r);
    }
}

static void on_upstream(uv_connect_t *c, int status)
{
    struct relay *r = c->data;
    if (status < 0 || r->closing) {
        relay_close(r);
        return;
    }
    uv_read_start((uv_stream_t *)&r->a, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&r->b, on_alloc, on_read);
}

static void on_client(uv_stream_t *server, int status)
{
    struct broker *br = server->data;
    if (status < 0)
        return;
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    uv_tcp_init(br->loop, &r->a);
    uv_tcp_init(br->loop, &r->b);
    r->a.data = r->b.data = r->conn.data = r;
    r->br = br;
    r->next = br->relays;
    r->prevp = &br->relays;
    if (br->relays != NULL)
        br->relays->prevp = &r->next;
    br->relays = r;
    if (uv_accept(server, (uv_stream_t *)&r->a) < 0 ||
        uv_tcp_connect(&r->conn, &r->b, (const struct sockaddr *)&br->upstream,
                       on_upstream) < 0)
        relay_close(r);
}

/* ---- the cluster --------------------------------------------------------------- */

int broker_start(uv_loop_t *loop, int port, int partitions, const char *const *topics,
                 size_t ntopics, struct broker **out, char *err, size_t errsize)
{
    struct broker *b = calloc(1, sizeof(*b));
    *out = NULL;
    if (b == NULL) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    b->loop = loop;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsize);
    if (b->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        free(b);
        return -EINVAL;
    }
    b->mc = rd_kafka_mock_cluster_new(b->rk, 1);
    if (b->mc == NULL) {
        snprintf(err, errsize, "cannot create the mock cluster");
        broker_stop(b);
        return -EINVAL;
    }
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, topics[i], partitions, 1);
        if (e) {
            snprintf(err, errsize, "topic %s: %s", topics[i], rd_kafka_err2str(e));
            broker_stop(b);
            return -EINVAL;
        }
    }
    const char *bs = rd_kafka_mock_cluster_bootstraps(b->mc);
    snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", bs);
    if (port > 0) {
        char host[64];
        int up = 0;
        const char *colon = strrchr(bs, ':');
        if (colon == NULL || sscanf(colon + 1, "%d", &up) != 1) {
            snprintf(err, errsize, "unexpected bootstrap address %s", bs);
            broker_stop(b);
            return -EINVAL;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - bs), bs);
        if (strcmp(host, "localhost") == 0)
            snprintf(host, sizeof(host), "127.0.0.1");
        uv_ip4_addr(host, up, &b->upstream);
        struct sockaddr_in addr;
        uv_ip4_addr("127.0.0.1", port, &addr);
        uv_tcp_init(loop, &b->listener);
        b->listener.data = b;
        b->listening = 1;
        int rc = uv_tcp_bind(&b->listener, (const struct sockaddr *)&addr, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&b->listener, 64, on_client);
        if (rc < 0) {
            snprintf(err, errsize, "listen on 127.0.0.1:%d: %s", port, uv_strerror(rc));
            broker_stop(b);
            return rc;
        }
        snprintf(b->bootstrap, sizeof(b->bootstrap), "127.0.0.1:%d", port);
    }
    *out = b;
    return 0;
}

const char *broker_bootstrap(const struct broker *b)
{
    return b->bootstrap;
}

int broker_command(struct broker *b, const char *line, char *reply, size_t size)
{
    char word[32], name[256];
    long n = 0;
    int got = sscanf(line, "%31s %ld", word, &n);
    if (got < 1) {
        snprintf(reply, size, "empty command");
        return -EINVAL;
    }
    rd_kafka_resp_err_t e = 0;
    if (strcmp(word, "down") == 0) {
        e = rd_kafka_mock_broker_set_down(b->mc, -1);
    } else if (strcmp(word, "up") == 0) {
        e = rd_kafka_mock_broker_set_up(b->mc, -1);
    } else if (strcmp(word, "rtt") == 0 && got == 2) {
        e = rd_kafka_mock_broker_set_rtt(b->mc, -1, (int)n);
    } else if ((strcmp(word, "fetch-errors") == 0 || strcmp(word, "produce-errors") == 0 ||
                strcmp(word, "commit-errors") == 0) && got == 2 && n > 0 && n < 100000) {
        /* ApiKeys: Produce 0, Fetch 1, OffsetCommit 8 */
        int16_t api = word[0] == 'f' ? 1 : word[0] == 'p' ? 0 : 8;
        rd_kafka_resp_err_t *errs = malloc((size_t)n * sizeof(*errs));
        if (errs == NULL) {
            snprintf(reply, size, "out of memory");
            return -ENOMEM;
        }
        for (long i = 0; i < n; i++)
            errs[i] = api == 1 ? RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION
                               : RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
        rd_kafka_mock_push_request_errors_array(b->mc, api, (size_t)n, errs);
        free(errs);
    } else if (strcmp(word, "topic") == 0 &&
               sscanf(line, "%*s %255s %ld", name, &n) == 2 && n > 0 && n < 10000) {
        e = rd_kafka_mock_topic_create(b->mc, name, (int)n, 1);
    } else {
        snprintf(reply, size, "unknown command: %s (expected down, up, rtt MS, "
                 "fetch-errors N, produce-errors N, commit-errors N, topic NAME N)", line);
        return -EINVAL;
    }
    if (e) {
        snprintf(reply, size, "%s", rd_kafka_err2str(e));
        return -EINVAL;
    }
    snprintf(reply, size, "ok");
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    free(h->data);
}

void broker_stop(struct broker *b)
{
    if (b == NULL)
        return;
    while (b->relays != NULL)
        relay_close(b->relays);
    if (b->mc != NULL)
        rd_kafka_mock_cluster_destroy(b->mc);
    if (b->rk != NULL)
        rd_kafka_destroy(b->rk);
    b->mc = NULL;
    b->rk = NULL;
    if (b->listening)
        uv_close((uv_handle_t *)&b->listener, listener_closed);    /* frees b */
    else
        free(b);
}
