/*
 * redis_shape.c - Redis's own limit for the writes the Redis sink sends:
 * a load generator that sends exactly the sink's command shapes, pipelined
 * as deeply as asked, on one or more connections, and reports windows/s
 * and redis-server's CPU time per window (INFO cpu, before and after).
 *
 * The windows are the reference job's user_features results
 * (feature-pipeline.yaml, key "user_features:{user_id}", ttl 2h): the key
 * field user_id and the aggregates view_count_1h, cart_count_1h,
 * purchase_count_1h, avg_viewed_price_1h, for users drawn uniformly from
 * --users.  The shapes (connectors/redis_sink.c):
 *
 *   guarded  one `EVALSHA <guard> n key1..keyn ttl (12 field value ...
 *            _sluice:user_features version) x n` per batch of n windows,
 *            the sink's default (versioned: true); the script is the
 *            sink's own GUARD_SCRIPT, taken from its source by the
 *            Makefile (build/release/guard_script.h), so the two never drift
 *   multi    MULTI, (HSET key field value ..., PEXPIRE key ttl) x n, EXEC
 *            (versioned: false)
 *   plain    (HSET ..., PEXPIRE ...) x n without the transaction: what
 *            Redis does for the writes themselves, the ceiling of the other two
 *
 * Each connection is a thread with a synchronous hiredis context: it keeps
 * --depth batches written ahead of the replies it has read
 * (redisAppendFormattedCommand, then redisGetReply, which writes whatever
 * is pending before it blocks on a read).  The client must cost less than
 * Redis or it measures itself: the RESP is formatted by hand, and after
 * the first batch of each connection, whose replies are checked in full
 * (an error inside EXEC's array too), the replies are parsed without
 * building objects (hiredis's reader with no object functions gives each
 * reply's type only), so later errors are counted without their text, and
 * one inside an EXEC not at all.  Versions come from one counter, so the
 * guard applies every window (none is kept out as stale).
 * --flush empties the database first (FLUSHALL), as the sink benchmarks do
 * before each run, so the keys are created, then rewritten.
 *
 *   redis_shape --port P [--host H] [--mode guarded|multi|plain]
 *               [--batch N] [--depth D] [--conns C] [--windows W]
 *               [--users U] [--sndbuf BYTES] [--flush]
 * --sndbuf sets the connections' SO_SNDBUF (the kernel's buffer of bytes
 * written, not yet read by Redis).
 * Exit: 0, 1 when Redis answered an error (printed), 2 on bad usage or a
 * failed connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis.h>

#include "guard_script.h"      /* GUARD_SCRIPT, from connectors/redis_sink.c */

#define TTL_MS 7200000          /* the reference job's user_features ttl: 2h */
#define VERSION_BASE 1704038400000LL

enum mode { MODE_GUARDED, MODE_MULTI, MODE_PLAIN };

struct opts {
    const char *host;
    int port;
    enum mode mode;
    int batch, depth, conns, users, flush, sndbuf;
    long long windows;
};

struct worker {
    pthread_t tid;
    const struct opts *o;
    const char *sha;
    long long quota;            /* windows this connection sends */
    uint64_t rng;
    long long errors;
    char first_error[160];
    int failed;                 /* the connection failed */
    char *buf;                  /* one batch, being put together */
    size_t len, cap;
};

static atomic_llong version_next;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;            /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- RESP into the worker's buffer ----------------------------------------- */

static void put(struct worker *w, const char *s, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        char *p = realloc(w->buf, cap);
        if (p == NULL) {
            fprintf(stderr, "redis_shape: out of memory\n");
            exit(2);
        }
        w->buf = p;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* v in decimal into s (24 bytes); returns the length.  snprintf costs the
 * client more than Redis spends on a write, so the client would measure
 * itself. */
static size_t fmt_u64(char *s, unsigned long long v)
{
    char t[24];
    size_t n = 0, i = 0;
    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        s[i++] = t[--n];
    return i;
}

static void head(struct worker *w, char type, unsigned long long n)
{
    char h[32];
    h[0] = type;
    size_t l = 1 + fmt_u64(h + 1, n);
    h[l++] = '\r';
    h[l++] = '\n';
    put(w, h, l);
}

static void bulk(struct worker *w, const char *s, size_t n)
{
    head(w, '$', n);
    put(w, s, n);
    put(w, "\r\n", 2);
}

static void bulk_str(struct worker *w, const char *s)
{
    bulk(w, s, strlen(s));
}

static void bulk_i64(struct worker *w, long long v)
{
    char s[24];
    bulk(w, s, fmt_u64(s, (unsigned long long)v));
}

static void array(struct worker *w, long long n)
{
    head(w, '*', (unsigned long long)n);
}

/* ---- one window ---------------------------------------------------------- */

struct window {
    char key[32], user[16], avg[24];
    size_t klen, ulen, alen;
    long long views, carts, purchases;
};

static void window_make(struct worker *w, struct window *win)
{
    uint64_t r = rng_next(&w->rng);
    unsigned u = (unsigned)(r % (uint64_t)w->o->users);
    win->user[0] = 'u';                                 /* u%06u */
    for (int i = 6; i >= 1; i--, u /= 10)
        win->user[i] = (char)('0' + u % 10);
    win->ulen = 7;
    memcpy(win->key, "user_features:", 14);
    memcpy(win->key + 14, win->user, win->ulen);
    win->klen = 14 + win->ulen;
    r = rng_next(&w->rng);
    win->views = (long long)(r % 9);
    win->carts = (long long)(r >> 8) % 4;
    win->purchases = (long long)(r >> 16) % 3;
    unsigned cents = (unsigned)((r >> 24) % 1000000);   /* %.3f of cents / 1000 */
    size_t l = fmt_u64(win->avg, cents / 1000);
    win->avg[l++] = '.';
    for (int i = 2; i >= 0; i--, cents /= 10)
        win->avg[l + (size_t)i] = (char)('0' + cents % 10);
    win->alen = l + 3;
}

/* The fields as bulk strings: user_id, then the aggregates. */
static void window_fields(struct worker *w, const struct window *win)
{
    bulk_str(w, "user_id");
    bulk(w, win->user, win->ulen);
    bulk_str(w, "view_count_1h");
    bulk_i64(w, win->views);
    bulk_str(w, "cart_count_1h");
    bulk_i64(w, win->carts);
    bulk_str(w, "purchase_count_1h");
    bulk_i64(w, win->purchases);
    bulk_str(w, "avg_viewed_price_1h");
    bulk(w, win->avg, win->alen);
}

#define NFIELDS 5

static void put_hset_pexpire(struct worker *w, const struct window *win)
{
    array(w, 2 + 2 * NFIELDS);
    bulk_str(w, "HSET");
    bulk(w, win->key, win->klen);
    window_fields(w, win);
    array(w, 3);
    bulk_str(w, "PEXPIRE");
    bulk(w, win->key, win->klen);
    bulk_i64(w, TTL_MS);
}

/* One batch of n windows into w->buf; returns the replies it will get. */
static int batch_make(struct worker *w, int n)
{
    struct window win[n];
    for (int i = 0; i < n; i++)
        window_make(w, &win[i]);
    w->len = 0;
    switch (w->o->mode) {
    case MODE_GUARDED: {
        long long v = atomic_fetch_add(&version_next, n);
        array(w, 4 + n + (long long)n * (1 + 2 * (NFIELDS + 1)));
        bulk_str(w, "EVALSHA");
        bulk_str(w, w->sha);
        bulk_i64(w, n);
        for (int i = 0; i < n; i++)
            bulk(w, win[i].key, win[i].klen);
        bulk_i64(w, TTL_MS);
        for (int i = 0; i < n; i++) {
            bulk_i64(w, 2 * (NFIELDS + 1));
            window_fields(w, &win[i]);
            bulk_str(w, "_sluice:user_features");
            bulk_i64(w, VERSION_BASE + v + i);
        }
        return 1;
    }
    case MODE_MULTI:
        put(w, "*1\r\n$5\r\nMULTI\r\n", 15);
        for (int i = 0; i < n; i++)
            put_hset_pexpire(w, &win[i]);
        put(w, "*1\r\n$4\r\nEXEC\r\n", 14);
        return 2 + 2 * n;
    case MODE_PLAIN:
        for (int i = 0; i < n; i++)
            put_hset_pexpire(w, &win[i]);
        return 2 * n;
    }
    return 0;
}

/* ---- a connection -------------------------------------------------------------- */

static void note_error(struct worker *w, const redisReply *rep)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof(w->first_error), "%.*s", (int)rep->len, rep->str);
}

static void check_reply(struct worker *w, const redisReply *rep)
{
    if (rep->type == REDIS_REPLY_ERROR)
        note_error(w, rep);
    else if (rep->type == REDIS_REPLY_ARRAY)    /* EXEC: one reply per command */
        for (size_t i = 0; i < rep->elements; i++)
            check_reply(w, rep->element[i]);
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    const struct opts *o = w->o;
    redisContext *c = redisConnect(o->host, o->port);
    if (c == NULL || c->err) {
        fprintf(stderr, "redis_shape: connecting to %s:%d: %s\n", o->host, o->port,
                c ? c->errstr : "out of memory");
        w->failed = 1;
        if (c)
            redisFree(c);
        return NULL;
    }
    if (o->sndbuf > 0 &&
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(o->sndbuf)) != 0)
        fprintf(stderr, "redis_shape: SO_SNDBUF: %s\n", strerror(errno));
    /* the batches in flight, oldest first: their replies and windows */
    struct { int replies, n; } *ring = calloc((size_t)o->depth, sizeof(*ring));
    int head = 0, inflight = 0;
    long long sent = 0, acked = 0;
    while (acked < w->quota) {
        while (inflight < o->depth && sent < w->quota) {
            int n = (int)(w->quota - sent < o->batch ? w->quota - sent : o->batch);
            ring[(head + inflight) % o->depth].replies = batch_make(w, n);
            ring[(head + inflight) % o->depth].n = n;
            redisAppendFormattedCommand(c, w->buf, w->len);
            inflight++;
            sent += n;
        }
        for (int i = 0; i < ring[head].replies; i++) {
            redisReply *rep;
            if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
                fprintf(stderr, "redis_shape: %s\n", c->errstr);
                w->failed = 1;
                goto out;
            }
            if (c->reader->fn == NULL) {
                if ((intptr_t)rep == REDIS_REPLY_ERROR)
                    w->errors++;
            } else {
                check_reply(w, rep);
                freeReplyObject(rep);
            }
        }
        c->reader->fn = NULL;   /* the first batch checked: types only from now */
        acked += ring[head].n;
        head = (head + 1) % o->depth;
        inflight--;
    }
out:
    free(ring);
    redisFree(c);
    return NULL;
}

/* ---- main ---------------------------------------------------------------- */

/* used_cpu_user + used_cpu_sys of INFO cpu, in seconds; -1 on failure. */
static double redis_cpu(redisContext *c)
{
    redisReply *rep = redisCommand(c, "INFO cpu");
    double s = -1;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
        const char *u = strstr(rep->str, "used_cpu_user:");
        const char *y = strstr(rep->str, "used_cpu_sys:");
        if (u != NULL && y != NULL)
            s = strtod(u + 14, NULL) + strtod(y + 13, NULL);
    }
    freeReplyObject(rep);
    return s;
}

static int usage(void)
{
    fprintf(stderr, "usage: redis_shape --port P [--host H] [--mode guarded|multi|plain]\n"
                    "                   [--batch N] [--depth D] [--conns C] [--windows W]\n"
                    "                   [--users U] [--sndbuf BYTES] [--flush]\n");
    return 2;
}

static int arg_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = { .host = "127.0.0.1", .mode = MODE_GUARDED, .batch = 64, .depth = 32,
                      .conns = 1, .users = 200000, .windows = 2000000 };
    static const char *const modes[] = { "guarded", "multi", "plain" };
    for (int i = 1; i < argc; i++) {
        long long v = 0;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--flush") == 0) {
            o.flush = 1;
            continue;
        }
        if (val == NULL)
            return usage();
        i++;
        if (strcmp(a, "--host") == 0)
            o.host = val;
        else if (strcmp(a, "--mode") == 0) {
            size_t m = 0;
            while (m < 3 && strcmp(val, modes[m]) != 0)
                m++;
            if (m == 3)
                return usage();
            o.mode = (enum mode)m;
        } else if (strcmp(a, "--port") == 0 && arg_int(val, 1, 65535, &v) == 0)
            o.port = (int)v;
        else if (strcmp(a, "--batch") == 0 && arg_int(val, 1, 999, &v) == 0)
            o.batch = (int)v;
        else if (strcmp(a, "--depth") == 0 && arg_int(val, 1, 100000, &v) == 0)
            o.depth = (int)v;
        else if (strcmp(a, "--conns") == 0 && arg_int(val, 1, 256, &v) == 0)
            o.conns = (int)v;
        else if (strcmp(a, "--sndbuf") == 0 && arg_int(val, 0, 1 << 30, &v) == 0)
            o.sndbuf = (int)v;
        else if (strcmp(a, "--users") == 0 && arg_int(val, 1, 999999, &v) == 0)
            o.users = (int)v;
        else if (strcmp(a, "--windows") == 0 && arg_int(val, 1, 1LL << 40, &v) == 0)
            o.windows = v;
        else
            return usage();
    }
    if (o.port == 0)
        return usage();

    redisContext *ctl = redisConnect(o.host, o.port);
    if (ctl == NULL || ctl->err) {
        fprintf(stderr, "redis_shape: connecting to %s:%d: %s\n", o.host, o.port,
                ctl ? ctl->errstr : "out of memory");
        return 2;
    }
    char sha[64] = "";
    redisReply *rep = redisCommand(ctl, "SCRIPT LOAD %s", GUARD_SCRIPT);
    if (rep == NULL || rep->type != REDIS_REPLY_STRING || rep->len >= sizeof(sha)) {
        fprintf(stderr, "redis_shape: SCRIPT LOAD failed: %s\n",
                rep && rep->type == REDIS_REPLY_ERROR ? rep->str : ctl->errstr);
        return 2;
    }
    memcpy(sha, rep->str, rep->len + 1);
    freeReplyObject(rep);
    if (o.flush)
        freeReplyObject(redisCommand(ctl, "FLUSHALL"));

    struct worker *ws = calloc((size_t)o.conns, sizeof(*ws));
    double c0 = redis_cpu(ctl), t0 = now();
    for (int i = 0; i < o.conns; i++) {
        ws[i].o = &o;
        ws[i].sha = sha;
        ws[i].quota = o.windows / o.conns + (i < o.windows % o.conns);
        ws[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        if (pthread_create(&ws[i].tid, NULL, worker_run, &ws[i]) != 0) {
            fprintf(stderr, "redis_shape: pthread_create failed\n");
            return 2;
        }
    }
    long long errors = 0;
    int failed = 0;
    const char *first = NULL;
    for (int i = 0; i < o.conns; i++) {
        pthread_join(ws[i].tid, NULL);
        failed |= ws[i].failed;
        errors += ws[i].errors;
        if (first == NULL && ws[i].errors)
            first = ws[i].first_error;
    }
    double t1 = now(), c1 = redis_cpu(ctl);
    double wall = t1 - t0, cpu = c1 - c0;
    printf("%-7s batch %3d depth %4d conns %2d: %lld windows in %.2f s: %.0f windows/s, "
           "redis %.2f us/window, %.0f%% of a core%s\n",
           modes[o.mode], o.batch, o.depth, o.conns, o.windows, wall, (double)o.windows / wall,
           cpu * 1e6 / (double)o.windows, 100.0 * cpu / wall, o.sndbuf ? " (SO_SNDBUF set)" : "");
    if (errors)
        fprintf(stderr, "redis_shape: %lld error replies, the first: %s\n", errors,
                first[0] ? first : "(after the first batch: text not kept)");
    for (int i = 0; i < o.conns; i++)
        free(ws[i].buf);
    free(ws);
    redisFree(ctl);
    return failed ? 2 : errors ? 1 : 0;
}
