/*
 * redis_sink.c - window results as Redis hashes (docs/connectors.md).
 *
 * Each fired window sets the fields of one hash, its key fields and
 * aggregates, and refreshes its TTL when the sink has one.  With
 * `versioned` (the default) the write is conditional: the hash keeps, in a
 * field `_sluice:<operator>`, the version of the result that last wrote it
 * (struct engine_result: the window end, or a record offset), and a result
 * with a smaller version leaves the hash as it is.  A replay (after a
 * crash, or when a partition moves to another instance) therefore never
 * moves a hash back to an older result, while an equal version (a late
 * re-fire of the same window, or the replay of the newest result itself)
 * writes again.  The comparisons and the writes are one Lua script
 * (GUARD_SCRIPT) over a batch of up to REDIS_BATCH windows, atomic in
 * Redis, loaded with SCRIPT LOAD at the start of every connection and
 * called by its SHA1: one EVALSHA per batch, put together at send time
 * from each window's key and arguments, encoded once when the result was
 * queued (one call per batch rather than per window: a script call costs
 * Redis more than the commands it runs).  A script Redis has lost (SCRIPT
 * FLUSH, a restart behind a proxy, a failover) fails the batch with
 * NOSCRIPT, which is handled as any failed write: reconnect, which loads
 * it again, and resend.
 *
 * Without `versioned`, a window is `HSET key field value ...` plus
 * `PEXPIRE key ttl`, and up to REDIS_BATCH windows make one transaction
 * (MULTI, their commands, EXEC), so each window is applied atomically
 * with its TTL and a failure is one reply per batch.  Either way up to
 * REDIS_INFLIGHT batches are pipelined on one connection.
 *
 * Every write stays in the sink's queue, already encoded as RESP, until
 * the EXEC that carries it succeeds.  When the connection drops, or a
 * transaction reports an error, the sink reconnects with exponential
 * backoff (100 ms to 5 s) and sends everything unacknowledged again, in
 * order.  Writes are idempotent (a window rewrites the same values, with
 * the same version), so sending one twice is harmless; losing one is not
 * possible.  When the
 * sink's max_pending windows wait (100,000 by default), the sink tells the
 * host, which pauses the sources until the queue is down to half of that:
 * a slow or absent Redis costs memory proportional to max_pending, not to
 * the outage.
 *
 * hiredis drives the socket through the small libuv binding below (rather
 * than hiredis's adapters/libuv.h, whose poll callback ignores error
 * events, which leaves a refused or reset connection hanging forever on
 * the hiredis version Debian ships).
 *
 * Its settings (url, key, ttl, username, password, max_pending, versioned)
 * are declared here, in redis_sink_map, and read by the job loader into a
 * struct redis_sink_conf (config/confmap.h); the URL is taken apart here
 * too, at load time, so `sluice validate` reports a bad one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <async.h>

#include "connector.h"
#include "format.h"
#include "log.h"
#include "redis_sink.h"

#define REDIS_BATCH 64
/* 128 batches (8,192 windows) in flight, not 32: with 32 the guarded
 * writes kept Redis busy 77-87 % of the time, with 128 95-99 % (as busy as
 * a bare client), +15 % windows/s best of 3 (tests/bench/redis_limit.sh,
 * docs/connectors.md "Performance"); a batch stays 64 windows, so each
 * script call holds Redis no longer. */
#define REDIS_INFLIGHT 128
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define CHUNK_BYTES (64 * 1024)
#define SHA_LEN 40                  /* a script's SHA1, in hex */

/*
 * The guard, over one batch of windows: KEYS, their hashes; ARGV[1], the
 * TTL in ms ("0": none); then per window, in KEYS' order, the number m of
 * its arguments and m arguments: field, value pairs, the last pair being
 * the version field and the version.  A window's pairs are written (the
 * version with them) and its TTL set unless its hash holds a greater
 * version.  Returns how many windows it kept out.  Versions compare as Lua
 * numbers (doubles): exact up to 2^53, far beyond epoch milliseconds and
 * offsets.  A version field that is not a number (written by hand) is
 * overwritten.
 */
static const char GUARD_SCRIPT[] =
    "local ttl, a, kept = ARGV[1], 2, 0 "
    "for i = 1, #KEYS do "
    "  local m = tonumber(ARGV[a]) "
    "  local cur = tonumber(redis.call('HGET', KEYS[i], ARGV[a + m - 1])) "
    "  if cur and cur > tonumber(ARGV[a + m]) then "
    "    kept = kept + 1 "
    "  else "
    "    redis.call('HSET', KEYS[i], unpack(ARGV, a + 1, a + m)) "
    "    if ttl ~= '0' then redis.call('PEXPIRE', KEYS[i], ttl) end "
    "  end "
    "  a = a + m + 1 "
    "end "
    "return kept";


/* ---- settings -------------------------------------------------------------- */

struct redis_sink_conf {
    const char *url;                    /* as written (may hold a password) */
    struct cm_template key;
    int64_t ttl_ms;                     /* JOB_DURATION_NONE: no expiry */
    const char *username, *password;    /* the keys; NULL when absent */
    int64_t max_pending;                /* writes queued before sources pause */
    int versioned;                      /* guard writes by version (the default) */
    struct redis_endpoint ep;           /* from url, then username and password */
};

/* redis://[[user]:password@]host[:port][/db], at load time. */
static void parse_redis_url(struct cm_ctx *c, struct redis_sink_conf *cf, struct cm_node *v)
{
    struct arena *a = cm_arena(c);
    const char *url = cf->url;
    const char *p;

    cf->ep.port = 6379;
    cf->ep.db = 0;
    if (strncmp(url, "redis://", 8) != 0) {
        if (strncmp(url, "rediss://", 9) == 0)
            cm_err(c, v, "url: TLS (rediss://) is not supported yet; use redis:// "
                   "on a trusted network or a local TLS proxy");
        else
            cm_err(c, v, "url: expected redis://[user:password@]host[:port][/db], "
                   "got \"%.60s\"", url);
        return;
    }
    p = url + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            if (colon > p)
                cf->ep.username = arena_strndup(a, p, (size_t)(colon - p));
            cf->ep.password = arena_strndup(a, colon + 1, (size_t)(at - colon - 1));
        } else if (at > p) {
            cf->ep.password = arena_strndup(a, p, (size_t)(at - p));
        }
        p = at + 1;
    }
    const char *end = p + strcspn(p, ":/");
    if (end == p) {
        cm_err(c, v, "url: no host in \"%.60s\"", url);
        return;
    }
    cf->ep.host = arena_strndup(a, p, (size_t)(end - p));
    p = end;
    if (*p == ':') {
        long port = 0;
        p++;
        const char *d = p;
        while (*p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == d || port < 1 || port > 65535 || (*p != '\0' && *p != '/')) {
            cm_err(c, v, "url: bad port in \"%.60s\"", url);
            return;
        }
        cf->ep.port = (int)port;
    }
    if (*p == '/') {
        long db = 0;
        p++;
        const char *d = p;
        while (*p >= '0' && *p <= '9' && db <= 1000000)
            db = db * 10 + (*p++ - '0');
        if (p == d || *p != '\0' || db > 1000000) {
            cm_err(c, v, "url: bad database number in \"%.60s\"", url);
            return;
        }
        cf->ep.db = (int)db;
    }
}

static void read_url(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct redis_sink_conf *cf = conf;
    cf->url = cm_read_str(c, "url", CM_REQUIRED);
    if (cf->url != NULL)
        parse_redis_url(c, cf, v);
}

/* Its own message: zero or less is a mistake, not "never expire". */
static void read_ttl(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct redis_sink_conf *cf = conf;
    cf->ttl_ms = JOB_DURATION_NONE;
    int64_t ms = cm_read_duration(c, "ttl", INT64_MIN, 0);
    if (ms == INT64_MIN)
        return;                         /* absent, null, or reported */
    if (ms <= 0)
        cm_err(c, v, "ttl must be greater than zero (leave it out for keys that never "
               "expire)");
    else
        cf->ttl_ms = ms;
}

static void redis_validate(struct cm_ctx *c, void *conf)
{
    struct redis_sink_conf *cf = conf;
    struct cm_node *k = cm_get(c, "key");
    if (k == NULL)
        cm_err(c, NULL, "%s: missing required key 'key' (the Redis key template, like "
               "\"features:{user_id}\")", cm_what(c));
    else if (cm_is_null(k))
        cm_err(c, k, "%s: 'key' is empty", cm_what(c));
    if (cf->username != NULL)
        cf->ep.username = cf->username;
    if (cf->password != NULL)
        cf->ep.password = cf->password;
}

static const char *const versioned_names[] = { "false", "true", NULL };

static const struct cm_entry redis_sink_entries[] = {
    { .key = "url", .type = CM_CUSTOM, .read = read_url, .flags = CM_REQUIRED | CM_SECRET,
      .offset = offsetof(struct redis_sink_conf, url),
      .desc = "redis://[[user]:password@]host[:port][/db]" },
    { .key = "key", .type = CM_TEMPLATE, .flags = CM_REQUIRED,
      .offset = offsetof(struct redis_sink_conf, key),
      .desc = "the key template of each hash" },
    { .key = "ttl", .type = CM_CUSTOM, .read = read_ttl,
      .offset = offsetof(struct redis_sink_conf, ttl_ms),
      .desc = "expiry of each key, refreshed on every write" },
    { .key = "username", .type = CM_STR, .offset = offsetof(struct redis_sink_conf, username),
      .desc = "ACL user, overriding the URL's" },
    { .key = "password", .type = CM_STR, .flags = CM_SECRET,
      .offset = offsetof(struct redis_sink_conf, password),
      .desc = "password, overriding the URL's" },
    { .key = "max_pending", .type = CM_INT, .lo = 1, .hi = 10000000, .dflt = 100000,
      .offset = offsetof(struct redis_sink_conf, max_pending),
      .desc = "windows waiting for Redis before the sources pause" },
    { .key = "versioned", .type = CM_ENUM, .names = versioned_names, .dflt = 1,
      .offset = offsetof(struct redis_sink_conf, versioned),
      .desc = "keep the newest result of each hash (a version field per operator)" },
    { .key = NULL },
};

static const struct cm_map redis_sink_map = { redis_sink_entries, redis_validate };

/* The URL with its password masked. */
static void print_masked_url(FILE *out, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *at = strrchr(url, '@');
    if (scheme == NULL || at == NULL || at < scheme) {
        fputs(url, out);
        return;
    }
    const char *auth = scheme + 3;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL) {                /* password only */
        fprintf(out, "%.*s***%s", (int)(auth - url), url, at);
        return;
    }
    fprintf(out, "%.*s:***%s", (int)(colon - url), url, at);
}

static void redis_sink_print(const void *conf, FILE *out)
{
    const struct redis_sink_conf *cf = conf;
    char d[32];
    fputc(' ', out);
    print_masked_url(out, cf->url);
    if (cf->ep.password != NULL && strchr(cf->url, '@') == NULL)
        fputs(" (password set)", out);
    if (cf->key.set)
        fprintf(out, " key=\"%s\"", cf->key.t.src);
    fprintf(out, " ttl=%s", cf->ttl_ms == JOB_DURATION_NONE ? "none" :
            (duration_format(cf->ttl_ms, d, sizeof(d)), d));
    if (!cf->versioned)
        fputs(" versioned=false", out);
}

const struct redis_endpoint *redis_sink_endpoint(const struct job_sink *js)
{
    return &((const struct redis_sink_conf *)js->conf)->ep;
}

int redis_sink_versioned(const struct job_sink *js)
{
    return ((const struct redis_sink_conf *)js->conf)->versioned;
}

/* ---- the queue of encoded writes ----------------------------------------- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

/* An item: u32 length of its first part, u32 length of its second (0 when
 * none), then both parts in RESP.  Without versions: the HSET and the
 * PEXPIRE (none without a TTL).  Versioned: the key as a bulk string, and
 * the window's arguments to the guard (their count, then field, value
 * pairs), put together into one EVALSHA per batch when it is sent. */
struct pos {
    struct chunk *c;
    size_t off;
};

struct redis_sink {
    struct sink *s;
    const struct redis_sink_conf *conf;
    redisAsyncContext *ac;
    int connected, closing, congested;
    int broken;                         /* an error on this connection: ack nothing more */
    uv_timer_t retry, connect_timeout;
    int nclosed;
    int64_t backoff;
    struct chunk *head_c, *tail_c;
    struct pos head, send;              /* oldest unacknowledged, next to send */
    size_t queued, unsent;              /* windows */
    size_t inflight;                    /* transactions sent, not answered */
    uint64_t appended, acked;           /* windows queued / acknowledged, ever */
    uint64_t barrier;                   /* checkpoint mark: appended at the time */
    char sha[SHA_LEN + 1];              /* the guard's, once Redis has told it; "" before */
    struct sbuf batch;                  /* one guarded batch, being put together */
    struct sbuf enc, key;
    struct log_rate err_rate;
    void (*done)(struct sink *);
};

static SL_MUST_USE int q_append(struct redis_sink *r, const char *hset, size_t hlen, const char *exp,
                    size_t elen)
{
    size_t need = 8 + hlen + elen;
    struct chunk *c = r->tail_c;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = need > CHUNK_BYTES ? need : CHUNK_BYTES;
        struct chunk *n = malloc(sizeof(*n) + cap);
        if (n == NULL)
            return -ENOMEM;
        n->next = NULL;
        n->used = 0;
        n->cap = cap;
        if (c != NULL)
            c->next = n;
        else
            r->head_c = n;
        r->tail_c = c = n;
        if (r->head.c == NULL)
            r->head = (struct pos){ n, 0 };
        if (r->send.c == NULL || (r->send.c->used == r->send.off && r->send.c->next == n))
            r->send = (struct pos){ n, 0 };
    }
    uint32_t l1 = (uint32_t)hlen, l2 = (uint32_t)elen;
    memcpy(c->data + c->used, &l1, 4);
    memcpy(c->data + c->used + 4, &l2, 4);
    memcpy(c->data + c->used + 8, hset, hlen);
    if (elen)
        memcpy(c->data + c->used + 8 + hlen, exp, elen);
    c->used += need;
    r->queued++;
    r->unsent++;
    r->appended++;
    return 0;
}

/* The item at p; advances p. */
static void q_item(struct pos *p, const char **hset, size_t *hlen, const char **exp,
                   size_t *elen)
{
    if (p->off == p->c->used) {
        p->c = p->c->next;
        p->off = 0;
    }
    uint32_t l1, l2;
    memcpy(&l1, p->c->data + p->off, 4);
    memcpy(&l2, p->c->data + p->off + 4, 4);
    *hset = p->c->data + p->off + 8;
    *hlen = l1;
    *exp = *hset + l1;
    *elen = l2;
    p->off += 8 + (size_t)l1 + l2;
}

/* Drops the n oldest items (acknowledged). */
static void q_pop(struct redis_sink *r, size_t n)
{
    const char *a, *b;
    size_t la, lb;
    while (n-- > 0) {
        q_item(&r->head, &a, &la, &b, &lb);
        r->queued--;
        while (r->head_c != r->head.c) {
            struct chunk *c = r->head_c;
            r->head_c = c->next;
            free(c);
        }
    }
    if (r->queued == 0 && r->head_c != NULL && r->head.off == r->head_c->used) {
        /* empty: keep the last chunk, rewound */
        struct chunk *c = r->head_c;
        while (c->next != NULL) {
            struct chunk *nx = c->next;
            free(c);
            c = nx;
        }
        c->used = 0;
        r->head_c = r->tail_c = c;
        r->head = r->send = (struct pos){ c, 0 };
    }
}

/* ---- RESP ------------------------------------------------------------------ */

static int resp_bulk(struct sbuf *b, const char *s, size_t n)
{
    char len[24];
    len[0] = '$';
    size_t l = 1 + fmt_i64(len + 1, (int64_t)n);
    len[l++] = '\r';
    len[l++] = '\n';
    int rc = sbuf_put(b, len, l);
    rc = rc ? rc : sbuf_put(b, s, n);
    return rc ? rc : sbuf_put(b, "\r\n", 2);
}

static const char resp_multi[] = "*1\r\n$5\r\nMULTI\r\n";
static const char resp_evalsha[] = "$7\r\nEVALSHA\r\n$40\r\n";
static const char resp_exec[] = "*1\r\n$4\r\nEXEC\r\n";

/* ---- libuv binding for hiredis ---------------------------------------------- */

struct rev {
    redisAsyncContext *ac;
    uv_poll_t h;
    int events;
};

static void rev_poll(uv_poll_t *h, int status, int events)
{
    struct rev *p = h->data;
    if (p->ac == NULL)
        return;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;     /* let hiredis meet the error */
    if (events & UV_WRITABLE)
        redisAsyncHandleWrite(p->ac);
    if (p->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
}

static void rev_update(struct rev *p, int add, int ev)
{
    int old = p->events;
    if (add)
        p->events |= ev;
    else
        p->events &= ~ev;
    if (p->events == old)
        return;                     /* hiredis asks on every command: no syscall */
    if (p->events)
        uv_poll_start(&p->h, p->events, rev_poll);
    else
        uv_poll_stop(&p->h);
}

static void rev_add_read(void *d) { rev_update(d, 1, UV_READABLE); }
static void rev_del_read(void *d) { rev_update(d, 0, UV_READABLE); }
static void rev_add_write(void *d) { rev_update(d, 1, UV_WRITABLE); }
static void rev_del_write(void *d) { rev_update(d, 0, UV_WRITABLE); }

static void rev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void rev_cleanup(void *d)
{
    struct rev *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->h, rev_closed);
}

/* Returns 0, or -ENOMEM or libuv's negative code. */
static SL_MUST_USE int rev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct rev *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    int rc = uv_poll_init(loop, &p->h, ac->c.fd);
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->ac = ac;
    p->h.data = p;
    ac->ev.data = p;
    ac->ev.addRead = rev_add_read;
    ac->ev.delRead = rev_del_read;
    ac->ev.addWrite = rev_add_write;
    ac->ev.delWrite = rev_del_write;
    ac->ev.cleanup = rev_cleanup;
    return 0;
}

/* ---- connection ------------------------------------------------------------------ */

static void connect_now(struct redis_sink *r);
static void send_more(struct redis_sink *r);

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

static void schedule_retry(struct redis_sink *r)
{
    if (r->closing)
        return;
    r->backoff = r->backoff ? r->backoff * 2 : BACKOFF_MIN_MS;
    if (r->backoff > BACKOFF_MAX_MS)
        r->backoff = BACKOFF_MAX_MS;
    uv_timer_start(&r->retry, on_retry, (uint64_t)r->backoff, 0);
}

static void maybe_done(struct redis_sink *r);

/* Everything sent but not acknowledged goes out again on the next connection. */
static void rewind_unacked(struct redis_sink *r)
{
    if (r->queued > r->unsent)
        r->s->retried += r->queued - r->unsent;
    r->send = r->head;
    r->unsent = r->queued;
    r->inflight = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_sink *r = ac->data;
    r->ac = NULL;
    r->connected = 0;
    uv_timer_stop(&r->connect_timeout);
    rewind_unacked(r);
    if (r->closing) {
        maybe_done(r);
        return;
    }
    log_msg(LOG_WARNING, r->s->name, "disconnected%s%s; %zu writes waiting, reconnecting",
            status == REDIS_OK ? "" : ": ", status == REDIS_OK ? "" : ac->errstr, r->queued);
    schedule_retry(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_sink *r = ac->data;
    uv_timer_stop(&r->connect_timeout);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        r->ac = NULL;
        log_rate_msg(&r->err_rate, LOG_WARNING, r->s->name, "cannot connect to %s:%d: %s; "
                     "retrying", r->conf->ep.host, r->conf->ep.port, ac->errstr);
        rewind_unacked(r);
        if (r->closing)
            maybe_done(r);
        else
            schedule_retry(r);
        return;
    }
    r->connected = 1;
    r->broken = 0;
    LOG(LOG_INFO, r->s->name, "connected to %s:%d", r->conf->ep.host, r->conf->ep.port);
    send_more(r);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis_sink *r = ac->data;
    redisReply *rep = reply;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "%s failed: %s", (const char *)priv,
                     rep->str);
        r->broken = 1;
        redisAsyncDisconnect(ac);
    }
}

/* The guard's SHA1; the first one lets the writes go. */
static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis_sink *r = ac->data;
    redisReply *rep = reply;
    (void)priv;
    if (rep == NULL)
        return;                         /* disconnected: loaded again on the next */
    if (rep->type != REDIS_REPLY_STRING || rep->len != SHA_LEN) {
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "SCRIPT LOAD of the version guard "
                     "failed: %s; retrying", rep->type == REDIS_REPLY_ERROR ? rep->str
                     : "unexpected reply");
        r->broken = 1;
        redisAsyncDisconnect(ac);
        return;
    }
    if (r->sha[0] == '\0') {
        memcpy(r->sha, rep->str, SHA_LEN);
        send_more(r);
    }
}

static void on_connect_timeout(uv_timer_t *t)
{
    struct redis_sink *r = t->data;
    if (r->ac == NULL || r->connected)
        return;
    log_rate_msg(&r->err_rate, LOG_WARNING, r->s->name, "connecting to %s:%d timed out; "
                 "retrying", r->conf->ep.host, r->conf->ep.port);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    redisAsyncFree(ac);             /* not connected: no disconnect callback */
    schedule_retry(r);
}

static void connect_now(struct redis_sink *r)
{
    const struct redis_endpoint *ep = &r->conf->ep;
    if (r->closing || r->ac != NULL)
        return;
    redisAsyncContext *ac = redisAsyncConnect(ep->host, ep->port);
    if (ac == NULL || ac->err) {
        log_rate_msg(&r->err_rate, LOG_WARNING, r->s->name, "cannot connect to %s:%d: %s",
                     ep->host, ep->port, ac ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    if (rev_attach(ac, r->s->host->loop) < 0) {
        redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&r->connect_timeout, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
    /* queued now, sent first once connected */
    if (ep->password != NULL) {
        if (ep->username != NULL)
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", ep->username,
                              ep->password);
        else
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", ep->password);
    }
    if (ep->db != 0)
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %d", ep->db);
    /* before any write on this connection, so EVALSHA finds it */
    if (r->conf->versioned)
        redisAsyncCommand(ac, on_script_loaded, NULL, "SCRIPT LOAD %s", GUARD_SCRIPT);
}

/* ---- writing ----------------------------------------------------------------------- */

/* The reply to a batch: EXEC's array, or the guard's count. */
static int exec_ok(const redisReply *rep, const char **err)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        *err = rep->str;
        return 0;
    }
    if (rep->type == REDIS_REPLY_INTEGER)
        return 1;
    if (rep->type != REDIS_REPLY_ARRAY) {
        *err = "transaction aborted";
        return 0;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_ERROR) {
            *err = rep->element[i]->str;
            return 0;
        }
    }
    return 1;
}

static void on_exec(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis_sink *r = ac->data;
    size_t n = (size_t)(uintptr_t)priv;
    redisReply *rep = reply;
    const char *err;
    if (rep == NULL || r->broken)
        return;                     /* disconnected or failing: rewound by on_disconnect */
    r->inflight--;
    if (!exec_ok(rep, &err)) {
        r->s->failed += n;
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "write of %zu windows failed: %s; "
                     "retrying", n, err);
        /* later transactions on this connection may still succeed, but the
         * queue is acknowledged in order: send all of it again */
        r->broken = 1;
        redisAsyncDisconnect(ac);
        return;
    }
    q_pop(r, n);
    r->s->written += n;
    if (rep->type == REDIS_REPLY_INTEGER)     /* the guard: how many it kept out */
        r->s->stale += (uint64_t)rep->integer;
    r->acked += n;
    r->backoff = 0;                 /* a write went through: the next outage starts fresh */
    if (r->congested && r->queued <= (size_t)r->conf->max_pending / 2) {
        r->congested = 0;
        r->s->host->drained(r->s->host->ud, r->s);
    }
    send_more(r);
    if (r->closing)
        maybe_done(r);
}

/* The arguments to the guard an item holds: the count they start with,
 * plus one for the count itself. */
static size_t guard_argc(const char *args)
{
    const char *p = memchr(args, '\n', 24) + 1;
    return 1 + (size_t)strtoul(p, NULL, 10);
}

/* MULTI, n windows' HSET and PEXPIRE, EXEC. */
static void send_plain(struct redis_sink *r, size_t n)
{
    redisAsyncFormattedCommand(r->ac, NULL, NULL, resp_multi, sizeof(resp_multi) - 1);
    for (size_t i = 0; i < n; i++) {
        const char *a, *b;
        size_t la, lb;
        q_item(&r->send, &a, &la, &b, &lb);
        redisAsyncFormattedCommand(r->ac, NULL, NULL, a, la);
        if (lb)
            redisAsyncFormattedCommand(r->ac, NULL, NULL, b, lb);
    }
    redisAsyncFormattedCommand(r->ac, on_exec, (void *)(uintptr_t)n, resp_exec,
                               sizeof(resp_exec) - 1);
}

/* EVALSHA <guard> n key... ttl window-arguments...: one command, applied
 * atomically.  Returns 0 or -ENOMEM (nothing sent). */
static SL_MUST_USE int send_guarded(struct redis_sink *r, size_t n)
{
    struct sbuf *b = &r->batch;
    struct pos p = r->send;
    const char *a, *x;
    size_t la, lx, argc = 4 + n;    /* EVALSHA, sha, numkeys, ttl, keys */
    char num[24];
    for (size_t i = 0; i < n; i++) {
        q_item(&p, &a, &la, &x, &lx);
        argc += guard_argc(x);
    }
    b->len = 0;
    int rc = sbuf_printf(b, "*%zu\r\n", argc);
    rc = rc ? rc : sbuf_put(b, resp_evalsha, sizeof(resp_evalsha) - 1);
    rc = rc ? rc : sbuf_put(b, r->sha, SHA_LEN);
    rc = rc ? rc : sbuf_put(b, "\r\n", 2);
    rc = rc ? rc : resp_bulk(b, num, fmt_i64(num, (int64_t)n));
    p = r->send;
    for (size_t i = 0; i < n && rc == 0; i++) {
        q_item(&p, &a, &la, &x, &lx);
        rc = sbuf_put(b, a, la);
    }
    int64_t ttl = r->conf->ttl_ms == JOB_DURATION_NONE ? 0 : r->conf->ttl_ms;
    rc = rc ? rc : resp_bulk(b, num, fmt_i64(num, ttl));
    p = r->send;
    for (size_t i = 0; i < n && rc == 0; i++) {
        q_item(&p, &a, &la, &x, &lx);
        rc = sbuf_put(b, x, lx);
    }
    if (rc < 0)
        return rc;
    r->send = p;
    redisAsyncFormattedCommand(r->ac, on_exec, (void *)(uintptr_t)n, b->p, b->len);
    return 0;
}

static void send_more(struct redis_sink *r)
{
    if (r->conf->versioned && r->sha[0] == '\0')
        return;                         /* the first SCRIPT LOAD has not answered */
    while (r->connected && !r->broken && r->ac != NULL && r->unsent > 0 &&
           r->inflight < REDIS_INFLIGHT) {
        size_t n = r->unsent < REDIS_BATCH ? r->unsent : REDIS_BATCH;
        if (!r->conf->versioned)
            send_plain(r, n);
        else if (send_guarded(r, n) < 0)
            return;                     /* out of memory: sent with the next write or ack */
        r->unsent -= n;
        r->inflight++;
    }
}

/* The result's fields as RESP bulk strings: key fields, then aggregates. */
static SL_MUST_USE int encode_fields(struct sbuf *e, const struct job *job,
                                     const struct job_operator *op,
                                     const struct engine_result *res)
{
    const struct job_source *src = &job->sources[op->source];
    struct sbuf v = { 0 };
    int rc = 0;
    for (size_t k = 0; k < op->nkeys && rc == 0; k++) {
        const char *name = src->fields[op->key_fields[k]].name;
        v.len = 0;
        rc = resp_bulk(e, name, strlen(name));
        rc = rc ? rc : fmt_redis_value(&v, &res->keys[k]);
        rc = rc ? rc : resp_bulk(e, v.p ? v.p : "", v.len);
    }
    for (size_t i = 0; i < res->nvals && rc == 0; i++) {
        v.len = 0;
        rc = resp_bulk(e, op->aggs[i].name, strlen(op->aggs[i].name));
        rc = rc ? rc : fmt_redis_value(&v, &res->vals[i]);
        rc = rc ? rc : resp_bulk(e, v.p ? v.p : "", v.len);
    }
    sbuf_free(&v);
    return rc;
}

/* The key as a bulk string, then the window's arguments to the guard:
 * their count, field, value ..., _sluice:<op>, version; into r->enc, *klen
 * being the key's length. */
static SL_MUST_USE int encode_guarded(struct redis_sink *r, const struct job_operator *op,
                                      const struct engine_result *res, size_t *klen)
{
    struct sbuf *e = &r->enc;
    char num[24];
    int rc = resp_bulk(e, r->key.p, r->key.len);
    *klen = e->len;
    rc = rc ? rc : resp_bulk(e, num, fmt_i64(num, 2 * (int64_t)(op->nkeys + res->nvals + 1)));
    rc = rc ? rc : encode_fields(e, r->s->job, op, res);
    rc = rc ? rc : sbuf_printf(e, "$%zu\r\n" REDIS_VERSION_PREFIX "%s\r\n",
                               sizeof(REDIS_VERSION_PREFIX) - 1 + strlen(op->name), op->name);
    return rc ? rc : resp_bulk(e, num, fmt_i64(num, res->version));
}

/* HSET key field value ..., then PEXPIRE key ttl when there is a TTL, into
 * r->enc; *hlen is the HSET's length. */
static SL_MUST_USE int encode_plain(struct redis_sink *r, const struct job_operator *op,
                                    const struct engine_result *res, size_t *hlen)
{
    const struct redis_sink_conf *cf = r->conf;
    struct sbuf *e = &r->enc;
    int rc = sbuf_printf(e, "*%zu\r\n$4\r\nHSET\r\n", 2 + 2 * (op->nkeys + res->nvals));
    rc = rc ? rc : resp_bulk(e, r->key.p, r->key.len);
    rc = rc ? rc : encode_fields(e, r->s->job, op, res);
    *hlen = e->len;
    if (rc == 0 && cf->ttl_ms != JOB_DURATION_NONE) {
        char ttl[24];
        size_t tl = fmt_i64(ttl, cf->ttl_ms);
        rc = sbuf_put(e, "*3\r\n$7\r\nPEXPIRE\r\n", 17);
        rc = rc ? rc : resp_bulk(e, r->key.p, r->key.len);
        rc = rc ? rc : resp_bulk(e, ttl, tl);
    }
    return rc;
}

static SL_MUST_USE int queue_write(struct redis_sink *r, const struct job_operator *op,
                       const struct engine_result *res)
{
    const struct redis_sink_conf *cf = r->conf;
    struct sbuf *e = &r->enc;
    size_t hlen;
    int rc;

    r->key.len = 0;
    if ((rc = fmt_key(&r->key, &cf->key.t, r->s->job, op, res)) < 0)
        return rc;
    e->len = 0;
    if (cf->versioned) {
        rc = encode_guarded(r, op, res, &hlen);
    } else {
        rc = encode_plain(r, op, res, &hlen);
    }
    if (rc < 0)
        return rc;
    if ((rc = q_append(r, e->p, hlen, e->p + hlen, e->len - hlen)) < 0)
        return rc;
    if (!r->congested && r->queued >= (size_t)cf->max_pending) {
        r->congested = 1;
        r->s->host->congested(r->s->host->ud, r->s);
    }
    send_more(r);
    return 0;
}

/* ---- the sink ------------------------------------------------------------------------ */

static int rs_open(struct sink *s)
{
    struct redis_sink *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->s = s;
    r->conf = s->js->conf;
    s->impl = r;
    uv_timer_init(s->host->loop, &r->retry);
    uv_timer_init(s->host->loop, &r->connect_timeout);
    r->retry.data = r->connect_timeout.data = r;
    connect_now(r);
    return 0;
}

static int rs_write_result(struct sink *s, const struct job_operator *op,
                           const struct engine_result *res)
{
    return queue_write(s->impl, op, res);
}

static int rs_write_raw(struct sink *s, const char *data, size_t len, const char *key,
                        size_t klen)
{
    (void)data, (void)len, (void)key, (void)klen;
    log_msg(LOG_ERR, s->name, "raw records cannot be written to a Redis hash sink");
    return -EINVAL;                 /* the job loader refuses such jobs */
}

static size_t rs_pending(const struct sink *s)
{
    const struct redis_sink *r = s->impl;
    return r ? r->queued : 0;
}

/* Acknowledgements come in queue order, so a count is enough. */
static int rs_barrier(struct sink *s)
{
    struct redis_sink *r = s->impl;
    r->barrier = r->appended;
    return 0;
}

static int rs_barrier_done(const struct sink *s)
{
    const struct redis_sink *r = s->impl;
    return r->acked >= r->barrier;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct redis_sink *r = h->data;
    r->nclosed++;
    maybe_done(r);
}

static void maybe_done(struct redis_sink *r)
{
    if (!r->closing || r->ac != NULL || r->nclosed < 2)
        return;
    struct sink *s = r->s;
    void (*done)(struct sink *) = r->done;
    if (r->queued > 0)
        log_msg(LOG_WARNING, s->name, "closed with %zu writes not acknowledged", r->queued);
    struct chunk *c = r->head_c;
    while (c != NULL) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    sbuf_free(&r->enc);
    sbuf_free(&r->batch);
    sbuf_free(&r->key);
    free(r);
    s->impl = NULL;
    if (done != NULL)
        done(s);
}

static void rs_close(struct sink *s, void (*done)(struct sink *))
{
    struct redis_sink *r = s->impl;
    if (r == NULL) {
        if (done != NULL)
            done(s);
        return;
    }
    r->closing = 1;
    r->done = done;
    uv_timer_stop(&r->retry);
    uv_timer_stop(&r->connect_timeout);
    uv_close((uv_handle_t *)&r->retry, on_timer_closed);
    uv_close((uv_handle_t *)&r->connect_timeout, on_timer_closed);
    if (r->ac != NULL) {
        if (r->connected)
            redisAsyncDisconnect(r->ac);   /* after the pending replies */
        else {
            redisAsyncContext *ac = r->ac;
            r->ac = NULL;
            redisAsyncFree(ac);
        }
    }
}

static const struct sink_ops redis_sink_ops = {
    .type = "redis",
    .open = rs_open,
    .write_result = rs_write_result,
    .write_raw = rs_write_raw,
    .pending = rs_pending,
    .barrier = rs_barrier,
    .barrier_done = rs_barrier_done,
    .close = rs_close,
};

const struct conn_type redis_sink_type = {
    .name = "redis", .kind = CONN_SINK, .map = &redis_sink_map,
    .conf_size = sizeof(struct redis_sink_conf), .print = redis_sink_print,
    .sink = &redis_sink_ops,
};
