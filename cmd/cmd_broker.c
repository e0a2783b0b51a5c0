/*
 * cmd_broker.c - `sluice broker`: the embedded development broker as a
 * process of its own, for demos and tests (connectors/broker.h).
 *
 * Prints its bootstrap address as the first line on stdout and runs until
 * SIGTERM or SIGINT.  Lines on stdin are fault-injection commands ("down",
 * "up", "fetch-errors 20", "topic name 4", ...), answered on stderr, so a
 * test can take the broker down and bring it back while sluice runs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../connectors/broker.h"
#include "../connectors/log.h"
#include "cli.h"

const struct cli_command cli_broker = {
    .name = "broker",
    .summary = "run an embedded Kafka-protocol broker for demos and tests",
    .usage =
        "usage: sluice broker [--port N] [--partitions N] [--topic T]...\n"
        "\n"
        "Runs librdkafka's mock cluster (one broker) on loopback, prints its bootstrap\n"
        "address on stdout and runs until SIGTERM or SIGINT.  For demos and tests only,\n"
        "never for production data: it keeps records in memory, only about 5 MB per\n"
        "partition (older records are dropped), and nothing survives a restart.\n"
        "\n"
        "  --port N         bootstrap on 127.0.0.1:N (default: a free port)\n"
        "  --partitions N   partitions of each --topic (default 4)\n"
        "  --topic T        create topic T (repeatable; others are created on first use)\n"
        "\n"
        "Lines on stdin inject faults: down, up, rtt MS, fetch-errors N,\n"
        "produce-errors N, commit-errors N, topic NAME PARTITIONS.\n",
    .run = cmd_broker,
};

struct bctx {
    struct broker *b;
    uv_signal_t sigterm, sigint;
    uv_pipe_t in;
    int have_in;
    char line[512];
    size_t len;
};

static void stop(struct bctx *c)
{
    uv_signal_stop(&c->sigterm);
    uv_signal_stop(&c->sigint);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    if (c->have_in) {
        c->have_in = 0;
        uv_close((uv_handle_t *)&c->in, NULL);
    }
    broker_stop(c->b);
    c->b = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    stop(h->data);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char mem[4096];
    (void)h, (void)hint;
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct bctx *c = s->data;
    if (n < 0) {                    /* EOF: keep running without commands */
        uv_close((uv_handle_t *)&c->in, NULL);
        c->have_in = 0;
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf->base[i];
        if (ch != '\n') {
            if (c->len < sizeof(c->line) - 1)
                c->line[c->len++] = ch;
            continue;
        }
        c->line[c->len] = '\0';
        c->len = 0;
        if (c->line[0] == '\0' || c->b == NULL)
            continue;
        char reply[256];
        broker_command(c->b, c->line, reply, sizeof(reply));
        log_msg(LOG_NOTICE, "broker", "%s: %s", c->line, reply);
    }
}

int cmd_broker(int argc, char **argv)
{
    long port = 0, partitions = 4;
    const char *topics[64];
    size_t nt = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(cli_broker.usage, stdout);
            return EXIT_OK;
        }
        char *end = NULL;
        if (strcmp(a, "--port") == 0 && i + 1 < argc) {
            port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, "sluice broker: --port: expected 1..65535\n");
                return EXIT_CONFIG;
            }
        } else if (strcmp(a, "--partitions") == 0 && i + 1 < argc) {
            partitions = strtol(argv[++i], &end, 10);
            if (*end != '\0' || partitions < 1 || partitions > 1000) {
                fprintf(stderr, "sluice broker: --partitions: expected 1..1000\n");
                return EXIT_CONFIG;
            }
        } else if (strcmp(a, "--topic") == 0 && i + 1 < argc && nt < 64) {
            topics[nt++] = argv[++i];
        } else {
            fprintf(stderr, "sluice broker: unexpected argument '%s'\n%s", a, cli_broker.usage);
            return EXIT_CONFIG;
        }
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct bctx c;
    memset(&c, 0, sizeof(c));
    char err[512];
    if (broker_start(&loop, (int)port, (int)partitions, topics, nt, &c.b, err,
                     sizeof(err)) < 0) {
        fprintf(stderr, "sluice broker: %s\n", err);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return EXIT_RUNTIME;
    }
    printf("%s\n", broker_bootstrap(c.b));
    fflush(stdout);
    uv_signal_init(&loop, &c.sigterm);
    uv_signal_init(&loop, &c.sigint);
    c.sigterm.data = c.sigint.data = &c;
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    if (uv_guess_handle(0) == UV_NAMED_PIPE || uv_guess_handle(0) == UV_TTY) {
        uv_pipe_init(&loop, &c.in, 0);
        if (uv_pipe_open(&c.in, 0) == 0) {
            c.in.data = &c;
            c.have_in = 1;
            uv_read_start((uv_stream_t *)&c.in, on_alloc, on_stdin);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return EXIT_OK;
}
