/*
 * cmd_gen.c - `sluice gen`: reference e-commerce events as JSON lines.
 *
 * The events follow the schema of the reference job (SPEC section 2):
 *     {"event_time":"2024-01-01T10:00:00.000","event_type":"view",
 *      "user_id":"u000042","price":29.99}
 * Users behave in sessions: a pool of concurrently active sessions (a
 * tenth of the users), each emitting events until it ends (one chance in
 * eight after each event) and is replaced by a session of a random user.
 * Event time advances by 1/rate seconds per event; each event is then
 * moved back by a random jitter within --jitter (out of order, but inside a
 * 10 s bound by default), and a --late-fraction of events is moved back by
 * 15 to 75 minutes: beyond the watermark, and late for the reference job's
 * 10-minute sessions and for the older of its hourly sliding windows.  The same
 * --seed always gives the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/job.h"
#include "../engine/evtime.h"
#include "cli.h"

const struct cli_command cli_gen = {
    .name = "gen",
    .summary = "write generated e-commerce events as JSON lines",
    .usage =
        "usage: sluice gen [--users N] [--events N] [--rate R] [--late-fraction F]\n"
        "                  [--invalid-fraction F] [--jitter DUR] [--start TIME] [--seed S]\n"
        "\n"
        "Writes events of the reference schema (event_time, event_type, user_id,\n"
        "price) to stdout, one JSON object per line, in arrival order.\n"
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
        "  --seed S              random seed (default 1)\n",
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
        return -1;
    }
    *out = v;
    return 0;
}

/* Naive local time (as the reference data writes it) with milliseconds. */
static void put_time(int64_t ms)
{
    char buf[64];
    evtime_format(ms, buf);
    buf[23] = '\0';                     /* drop the 'Z' */
    fputs(buf, stdout);
}

static void put_invalid(uint64_t kind, int64_t t, uint64_t user)
{
    switch (kind % 6) {
    case 0:
        fputs("{\"event_time\":\"2024-01-01T10:00:00\",\"event_type\":\"view\"", stdout);
        break;                          /* truncated JSON */
    case 1:
        printf("{\"event_type\":\"view\",\"user_id\":\"u%06llu\",\"price\":1.5}",
               (unsigned long long)user);
        break;                          /* no event time */
    case 2:
        fputs("{\"event_time\":\"", stdout);
        put_time(t);
        printf("\",\"event_type\":\"view\",\"user_id\":%llu,\"price\":1.5}",
               (unsigned long long)user);
        break;                          /* user_id is a number */
    case 3:
        printf("{\"event_time\":\"2024-02-30T10:00:00\",\"event_type\":\"view\","
               "\"user_id\":\"u%06llu\",\"price\":1.5}", (unsigned long long)user);
        break;                          /* no such date */
    case 4:
        fputs("{\"event_time\":\"", stdout);
        put_time(t);
        printf("\",\"event_type\":\"view\",\"user_id\":\"u\xff\xfe\",\"price\":1.5}");
        break;                          /* bad UTF-8 */
    default:
        fputs("not json at all", stdout);
        break;
    }
    fputc('\n', stdout);
}

int cmd_gen(int argc, char **argv)
{
    double users = 10000, events = 100000, rate = 1000, late = 0, invalid = 0, seed = 1;
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
        else if (strcmp(a, "--events") == 0)
            rc = parse_num(a, v, 0, 1e12, &events);
        else if (strcmp(a, "--rate") == 0)
            rc = parse_num(a, v, 0.001, 1e9, &rate);
        else if (strcmp(a, "--late-fraction") == 0)
            rc = parse_num(a, v, 0, 1, &late);
        else if (strcmp(a, "--invalid-fraction") == 0)
            rc = parse_num(a, v, 0, 1, &invalid);
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

    rng_state = (uint64_t)seed;
    uint64_t nusers = (uint64_t)users, nevents = (uint64_t)events;
    size_t nsess = (size_t)(nusers / 10 ? nusers / 10 : 1);
    uint64_t *sess = malloc(nsess * sizeof(*sess));
    if (sess == NULL) {
        fprintf(stderr, "sluice gen: out of memory\n");
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < nsess; i++)
        sess[i] = rnd_below(nusers);
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));

    static const char *const types[] = { "view", "cart", "purchase" };
    double step_ms = 1000.0 / rate;
    for (uint64_t n = 0; n < nevents; n++) {
        int64_t clock_ms = start_ms + (int64_t)((double)n * step_ms);
        size_t s = (size_t)rnd_below(nsess);
        uint64_t user = sess[s];
        if (rnd_below(8) == 0)
            sess[s] = rnd_below(nusers);        /* the session ends; another begins */
        int64_t t = clock_ms - (jitter_ms ? (int64_t)rnd_below((uint64_t)jitter_ms + 1) : 0);
        if (late > 0 && rnd01() < late)
            t = clock_ms - 900000 - (int64_t)rnd_below(3600001);
        if (invalid > 0 && rnd01() < invalid) {
            put_invalid(rnd(), t, user);
            continue;
        }
        uint64_t r = rnd_below(10);
        const char *type = types[r < 7 ? 0 : r < 9 ? 1 : 2];
        uint64_t cents = 100 + rnd_below(49901);
        fputs("{\"event_time\":\"", stdout);
        put_time(t);
        printf("\",\"event_type\":\"%s\",\"user_id\":\"u%06llu\",\"price\":%llu.%02llu}\n",
               type, (unsigned long long)user, (unsigned long long)(cents / 100),
               (unsigned long long)(cents % 100));
    }
    free(sess);
    if (fflush(stdout) != 0) {
        perror("sluice gen: write");
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
