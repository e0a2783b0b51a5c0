/*
 * cmd_gen.c - `sluice gen`: reference e-commerce events as JSON lines.
 *
 * The events follow the schema of the reference job (feature-pipeline.yaml):
 *     {"event_time":"2024-01-01T10:00:00.000","event_type":"view",
 *      "user_id":"u000042","price":29.99}
 * Users behave in sessions: a pool of concurrently active sessions (a
 * tenth of the users), each emitting events until it ends (one chance in
 * eight after each event, or in --session-events) and is replaced by a
 * session of a random user.
 * Event time advances by 1/rate seconds per event; each event is then
 * moved back by a random jitter within --jitter (out of order, but inside a
 * 10 s bound by default), and a --late-fraction of events is moved back by
 * 15 to 75 minutes: beyond the watermark, and late for the reference job's
 * 10-minute sessions and for the older of its hourly sliding windows.  The same
 * --seed always gives the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../config/job.h"
#include "../connectors/kafka_common.h"
#include "../engine/evtime.h"
#include "cli.h"

const struct cli_command cli_gen = {
    .name = "gen",
    .summary = "write generated e-commerce events as JSON lines",
    .usage =
        "usage: sluice gen [--users N] [--events N] [--rate R] [--late-fraction F]\n"
        "                  [--invalid-fraction F] [--jitter DUR] [--start TIME] [--seed S]\n"
        "                  [--session-events N]\n"
        "                  [--brokers B --topic T [--produce-rate R]]\n"
        "\n"
        "Writes events of the reference schema (event_time, event_type, user_id,\n"
        "price) to stdout, one JSON object per line, in arrival order, or produces\n"
        "them to a Kafka topic.\n"
        "\n"
        "  --users N             distinct users (default 10000)\n"
        "  --events N            events to write (default 100000)\n"
        "  --rate R              events per second of event time (default 1000)\n"
        "  --jitter DUR          events arrive up to DUR out of order (default 5s)\n"
        "  --late-fraction F     this fraction arrives 15 to 75 minutes behind\n"
        "                        (default 0)\n"
        "  --invalid-fraction F  this fraction is malformed or violates the schema\n"
        "                        (default 0)\n"
        "  --start TIME          event time of the first event, naive ISO-8601 as in\n"
        "                        the reference data (default 2024-01-01T00:00:00)\n"
        "  --session-events N    events per session on average (default 8); 1 draws\n"
        "                        each event's user at random\n"
        "  --seed S              random seed (default 1)\n"
        "  --brokers B --topic T produce to Kafka topic T (record key: user_id) instead\n"
        "                        of writing to stdout\n"
        "  --produce-rate R      when producing, at most R records per second of wall\n"
        "                        clock (default 0: as fast as possible)\n",
    .run = cmd_gen,
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rnd01(void)
{
    return (double)(rnd() >> 11) * 0x1p-53;
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "sluice gen: %s: expected a number between %g and %g, got '%s'\n",
                opt, lo, hi, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Naive local time (as the reference data writes it) with milliseconds. */
static int put_time(char *p, int64_t ms)
{
    char buf[64];
    evtime_format(ms, buf);
    buf[23] = '\0';                     /* drop the 'Z' */
    return sprintf(p, "%s", buf);
}

/* {"event_time":"<t>" and then rest, a format taking the user number. */
static int timed_line(char *line, int64_t t, const char *rest, uint64_t user)
{
    char *p = line + sprintf(line, "{\"event_time\":\"");
    p += put_time(p, t);
    p += sprintf(p, rest, (unsigned long long)user);
    return (int)(p - line);
}

/* A bad record of one of eight kinds into line; returns its length. */
static int bad_line(char *line, uint64_t kind, int64_t t, uint64_t user)
{
    switch (kind % 8) {
    case 0:                             /* truncated JSON */
        return sprintf(line, "{\"event_time\":\"2024-01-01T10:00:00\",\"event_type\":\"view\"");
    case 1:                             /* no event time */
        return sprintf(line, "{\"event_type\":\"view\",\"user_id\":\"u%06llu\",\"price\":1.5}",
                       (unsigned long long)user);
    case 2:                             /* user_id is a number */
        return timed_line(line, t, "\",\"event_type\":\"view\",\"user_id\":%llu,\"price\":1.5}",
                          user);
    case 3:                             /* no such date */
        return sprintf(line, "{\"event_time\":\"2024-02-30T10:00:00\",\"event_type\":\"view\","
                       "\"user_id\":\"u%06llu\",\"price\":1.5}", (unsigned long long)user);
    case 4:                             /* bad UTF-8 */
        return timed_line(line, t, "\",\"event_type\":\"view\",\"user_id\":\"u\xff\xfe%06llu\","
                          "\"price\":1.5}", user);
    case 5:                             /* a trailing comma: a lenient parser takes it */
        return timed_line(line, t, "\",\"event_type\":\"view\",\"user_id\":\"u%06llu\","
                          "\"price\":1.5,}", user);
    case 6:                             /* NaN is not JSON */
        return timed_line(line, t, "\",\"event_type\":\"view\",\"user_id\":\"u%06llu\","
                          "\"price\":NaN}", user);
    default:
        return sprintf(line, "not json at all");
    }
}

/* ---- output: stdout or a Kafka topic -------------------------------------- */

struct out {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uint64_t failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct out *o = opaque;
    (void)rk;
    if (m->err)
        o->failed++;
}

static int out_open(struct out *o, const char *brokers, const char *topic)
{
    char err[512];
    static const char *const defaults[] = {
        "enable.idempotence", "true", "linger.ms", "20", "batch.num.messages", "10000",
        "queue.buffering.max.messages", "1000000", "client.id", "sluice-gen", NULL,
    };
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, defaults, NULL, 0, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "sluice gen: %s\n", err);
        return -EIO;
    }
    rd_kafka_conf_set_opaque(conf, o);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    o->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (o->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "sluice gen: %s\n", err);
        return -EIO;
    }
    o->rkt = rd_kafka_topic_new(o->rk, topic, NULL);
    return 0;
}

static int out_line(struct out *o, const char *line, size_t len, const char *key, size_t klen)
{
    if (o->rk == NULL) {
        fwrite(line, 1, len, stdout);
        return fputc('\n', stdout) == EOF ? -1 : 0;
    }
    while (rd_kafka_produce(o->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)line,
                            len, key, klen, NULL) != 0) {
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "sluice gen: produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
            return -EIO;
        }
        rd_kafka_poll(o->rk, 100);
    }
    rd_kafka_poll(o->rk, 0);
    return 0;
}

static int out_close(struct out *o)
{
    if (o->rk == NULL)
        return fflush(stdout) == 0 ? 0 : -1;
    rd_kafka_resp_err_t e = rd_kafka_flush(o->rk, 60000);
    rd_kafka_topic_destroy(o->rkt);
    rd_kafka_destroy(o->rk);
    if (e || o->failed) {
        fprintf(stderr, "sluice gen: %llu records not delivered%s%s\n",
                (unsigned long long)o->failed, e ? ": " : "", e ? rd_kafka_err2str(e) : "");
        return -EIO;
    }
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_gen(int argc, char **argv)
{
    double users = 10000, events = 100000, rate = 1000, late = 0, invalid = 0, seed = 1;
    double per_session = 8;
    double produce_rate = 0;
    const char *brokers = NULL, *topic = NULL;
    int64_t jitter_ms = 5000, start_ms;
    const char *why;

    evtime_parse_iso8601("2024-01-01T00:00:00", 19, 0, &start_ms, &why);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(cli_gen.usage, stdout);
            return EXIT_OK;
        }
        if (v == NULL) {
            fprintf(stderr, "sluice gen: unexpected argument '%s'\n%s", a, cli_gen.usage);
            return EXIT_CONFIG;
        }
        if (strcmp(a, "--users") == 0)
            rc = parse_num(a, v, 1, 1e9, &users);
        else if (strcmp(a, "--session-events") == 0)
            rc = parse_num(a, v, 1, 1e6, &per_session);
        else if (strcmp(a, "--events") == 0)
            rc = parse_num(a, v, 0, 1e12, &events);
        else if (strcmp(a, "--rate") == 0)
            rc = parse_num(a, v, 0.001, 1e9, &rate);
        else if (strcmp(a, "--late-fraction") == 0)
            rc = parse_num(a, v, 0, 1, &late);
        else if (strcmp(a, "--invalid-fraction") == 0)
            rc = parse_num(a, v, 0, 1, &invalid);
        else if (strcmp(a, "--produce-rate") == 0)
            rc = parse_num(a, v, 0, 1e9, &produce_rate);
        else if (strcmp(a, "--brokers") == 0)
            brokers = v;
        else if (strcmp(a, "--topic") == 0)
            topic = v;
        else if (strcmp(a, "--seed") == 0)
            rc = parse_num(a, v, 0, 1.8e19, &seed);
        else if (strcmp(a, "--jitter") == 0) {
            char err[160];
            if (duration_parse(v, &jitter_ms, err, sizeof(err)) < 0 || jitter_ms < 0) {
                fprintf(stderr, "sluice gen: --jitter: %s\n", jitter_ms < 0 ? "negative" : err);
                return EXIT_CONFIG;
            }
        } else if (strcmp(a, "--start") == 0) {
            if (evtime_parse_iso8601(v, strlen(v), 0, &start_ms, &why) < 0) {
                fprintf(stderr, "sluice gen: --start: %s\n", why);
                return EXIT_CONFIG;
            }
        } else {
            fprintf(stderr, "sluice gen: unexpected argument '%s'\n%s", a, cli_gen.usage);
            return EXIT_CONFIG;
        }
        if (rc < 0)
            return EXIT_CONFIG;
        i++;
    }

    if ((brokers == NULL) != (topic == NULL)) {
        fprintf(stderr, "sluice gen: --brokers and --topic go together\n");
        return EXIT_CONFIG;
    }
    struct out o = { 0 };
    if (brokers != NULL && out_open(&o, brokers, topic) < 0)
        return EXIT_RUNTIME;
    rng_state = (uint64_t)seed;
    uint64_t nusers = (uint64_t)users, nevents = (uint64_t)events;
    size_t nsess = (size_t)(nusers / 10 ? nusers / 10 : 1);
    uint64_t *sess = malloc(nsess * sizeof(*sess));
    if (sess == NULL) {
        fprintf(stderr, "sluice gen: out of memory\n");
        out_close(&o);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < nsess; i++)
        sess[i] = rnd_below(nusers);
    static char obuf[1 << 16];
    if (brokers == NULL)
        setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));

    static const char *const types[] = { "view", "cart", "purchase" };
    double step_ms = 1000.0 / rate, t0 = mono_s();
    int rc = 0;
    for (uint64_t n = 0; n < nevents && rc == 0; n++) {
        int64_t clock_ms = start_ms + (int64_t)((double)n * step_ms);
        size_t s = (size_t)rnd_below(nsess);
        uint64_t user = sess[s];
        if (rnd_below((uint64_t)per_session) == 0)
            sess[s] = rnd_below(nusers);        /* the session ends; another begins */
        int64_t t = clock_ms - (jitter_ms ? (int64_t)rnd_below((uint64_t)jitter_ms + 1) : 0);
        if (late > 0 && rnd01() < late)
            t = clock_ms - 900000 - (int64_t)rnd_below(3600001);
        char line[256], key[32];
        int klen = snprintf(key, sizeof(key), "u%06llu", (unsigned long long)user);
        int len;
        if (invalid > 0 && rnd01() < invalid) {
            len = bad_line(line, rnd(), t, user);
        } else {
            uint64_t r = rnd_below(10);
            const char *type = types[r < 7 ? 0 : r < 9 ? 1 : 2];
            uint64_t cents = 100 + rnd_below(49901);
            char *p = line + sprintf(line, "{\"event_time\":\"");
            p += put_time(p, t);
            p += sprintf(p, "\",\"event_type\":\"%s\",\"user_id\":\"%s\",\"price\":%llu.%02llu}",
                         type, key, (unsigned long long)(cents / 100),
                         (unsigned long long)(cents % 100));
            len = (int)(p - line);
        }
        rc = out_line(&o, line, (size_t)len, key, (size_t)klen);
        if (produce_rate > 0 && (n + 1) % 100 == 0) {
            double ahead = (double)(n + 1) / produce_rate - (mono_s() - t0);
            if (ahead > 0.001) {
                struct timespec ts = { (time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9) };
                nanosleep(&ts, NULL);
            }
        }
    }
    free(sess);
    if (out_close(&o) < 0 || rc < 0) {
        if (brokers == NULL)
            perror("sluice gen: write");
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
