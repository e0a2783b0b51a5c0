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
 * While writes wait unsent, a newer write of the same operator to the same
 * key replaces the older one (`coalesce`, on by default where the key
 * template has no window bounds): the older item is marked dead in place
 * and skipped when batches are put together; a hash table
 * (connectors/coalesce.c) finds it.  Never a write already sent, never
 * one a checkpoint barrier covers (coalesce_floor() says why).  Each item
 * carries the times its write latency and freshness are measured from,
 * observed into the sink's histograms when Redis acknowledges it.
 *
 * The connection is ours (redis_conn.c: libuv socket, TLS through OpenSSL
 * when the URL is rediss:// or `tls` sets anything, hiredis only parsing
 * replies).  Replies come in command order, so a small FIFO (struct
 * expect) says what each answers: a setup command (AUTH, SELECT, SCRIPT
 * LOAD), or a batch, whose MULTI and QUEUED replies are skipped and whose
 * EXEC (or EVALSHA) reply acknowledges its windows.  A batch goes to the
 * connection as one buffer; the connection sends whatever was queued in a
 * loop iteration as one write.
 *
 * Its settings (url, key, ttl, username, password, max_pending, versioned,
 * coalesce, tls, cluster)
 * are declared here, in redis_sink_map, and read by the job loader into a
 * struct redis_sink_conf (config/confmap.h); the URL is taken apart here
 * too, at load time, so `sluice validate` reports a bad one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "coalesce.h"
#include "connector.h"
#include "format.h"
#include "log.h"
#include "redis_cconn.h"
#include "redis_cluster.h"
#include "redis_conn.h"
#include "redis_sink.h"

#define REDIS_BATCH 64
/* 128 batches (8,192 windows) in flight, not 32: with 32 the guarded
 * writes kept Redis busy 77-87 % of the time, with 128 95-99 % (as busy as
 * a bare client), +15 % windows/s best of 3 (tests/bench/redis_limit.sh,
 * docs/connectors.md "Performance"); a batch stays 64 windows, so each
 * script call holds Redis no longer. */
#define REDIS_INFLIGHT 128
#define CLUSTER_INFLIGHT 256            /* a cluster's batches are mostly one window */
#define REDIRECT_RETRY_MS 10            /* a slot moved: connect again (almost) at once */
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
    int coalesce;                       /* replace unsent writes of a key; -1: by the key */
    struct redis_endpoint ep;           /* from url, then username and password */
    struct redis_tls tls;               /* the `tls` mapping; verify 1 when absent */
    int use_tls;                        /* rediss://, or a `tls` mapping that sets something */
    int cluster;                        /* the URL names a node of a Redis Cluster */
};

/* redis[s]://[[user]:password@]host[:port][/db], at load time. */
static void parse_redis_url(struct cm_ctx *c, struct redis_sink_conf *cf, struct cm_node *v)
{
    struct arena *a = cm_arena(c);
    const char *url = cf->url;
    const char *p;

    cf->ep.port = 6379;
    cf->ep.db = 0;
    if (strncmp(url, "rediss://", 9) == 0) {
        cf->use_tls = 1;
        p = url + 9;
    } else if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else {
        cm_err(c, v, "url: expected redis://[user:password@]host[:port][/db], "
               "got \"%.60s\"", url);
        return;
    }
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

static const char *const bool_names[] = { "false", "true", NULL };

static const struct cm_entry redis_tls_entries[] = {
    { .key = "ca_file", .type = CM_STR, .offset = offsetof(struct redis_tls, ca_file),
      .desc = "CA certificates (PEM) to verify the server with; empty: the system's" },
    { .key = "ca_dir", .type = CM_STR, .offset = offsetof(struct redis_tls, ca_dir),
      .desc = "a directory of hashed CA certificates (c_rehash)" },
    { .key = "cert_file", .type = CM_STR, .offset = offsetof(struct redis_tls, cert_file),
      .desc = "client certificate chain (PEM), for mutual TLS" },
    { .key = "key_file", .type = CM_STR, .offset = offsetof(struct redis_tls, key_file),
      .desc = "the client certificate's private key (PEM)" },
    { .key = "server_name", .type = CM_STR, .offset = offsetof(struct redis_tls, server_name),
      .desc = "the name sent (SNI) and verified; default: the URL's host" },
    { .key = "verify", .type = CM_ENUM, .names = bool_names, .dflt = 1,
      .offset = offsetof(struct redis_tls, verify),
      .desc = "verify the server's certificate chain and name" },
    { .key = NULL },
};

static const struct cm_map redis_tls_map = { redis_tls_entries, NULL };

static int is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* `tls:`, a mapping.  On a redis:// URL it turns TLS on when it sets
 * anything: the reference job passes an empty CA file when the operator
 * gives none, which must leave a plain URL plain. */
static void read_tls(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct redis_sink_conf *cf = conf;
    struct redis_tls *t = &cf->tls;
    t->verify = 1;
    if (v == NULL || cm_is_null(v))
        return;
    if (!cm_is_map(v)) {
        cm_err(c, v, "%s: 'tls' must be a mapping (ca_file, ca_dir, cert_file, key_file, "
               "server_name, verify)", cm_what(c));
        return;
    }
    char what[CM_NAME_MAX + 64];
    snprintf(what, sizeof(what), "%s, tls", cm_what(c));
    struct cm_ctx *tc = cm_child_new(c, v, what);
    if (tc == NULL || cm_read(tc, &redis_tls_map, t) < 0)
        return;
    struct cm_node *vv = cm_get(tc, "verify");
    if (is_set(t->ca_file) || is_set(t->ca_dir) || is_set(t->cert_file) ||
        is_set(t->key_file) || is_set(t->server_name) || (vv != NULL && !cm_is_null(vv)))
        cf->use_tls = 1;
}

/* With TLS, the files are read now, so `sluice validate` reports a file
 * that cannot be read or a key that does not match its certificate. */
static void check_tls(struct cm_ctx *c, struct redis_sink_conf *cf)
{
    char err[512];
    if (redis_tls_check(&cf->tls, err, sizeof(err)) < 0) {
        struct cm_node *n = cm_get(c, "tls");
        cm_err(c, n ? n : cm_get(c, "url"), "%s: %s", cm_what(c), err);
    }
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
    if (cf->coalesce < 0) {
        /* by default only where a key holds the newest window: a key
         * naming its window is written once per window anyway */
        cf->coalesce = 1;
        for (size_t i = 0; cf->key.set && i < cf->key.t.nparts; i++)
            if (cf->key.t.parts[i].kind == TPL_WINDOW_START ||
                cf->key.t.parts[i].kind == TPL_WINDOW_END)
                cf->coalesce = 0;
    }
    if (cf->use_tls)
        check_tls(c, cf);
    if (cf->cluster && cf->ep.db != 0)
        cm_err(c, cm_get(c, "url"), "%s: a Redis Cluster has database 0 only; the URL "
               "names database %d", cm_what(c), cf->ep.db);
}

static const struct cm_entry redis_sink_entries[] = {
    { .key = "url", .type = CM_CUSTOM, .read = read_url, .flags = CM_REQUIRED | CM_SECRET,
      .offset = offsetof(struct redis_sink_conf, url),
      .desc = "redis://[[user]:password@]host[:port][/db]; rediss:// for TLS" },
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
    { .key = "versioned", .type = CM_ENUM, .names = bool_names, .dflt = 1,
      .offset = offsetof(struct redis_sink_conf, versioned),
      .desc = "keep the newest result of each hash (a version field per operator)" },
    { .key = "coalesce", .type = CM_ENUM, .names = bool_names, .dflt = -1,
      .offset = offsetof(struct redis_sink_conf, coalesce),
      .desc = "a newer write replaces an unsent one to the same key (default: true unless "
              "the key names its window)" },
    { .key = "tls", .type = CM_CUSTOM, .read = read_tls,
      .offset = offsetof(struct redis_sink_conf, tls),
      .desc = "TLS settings: ca_file, ca_dir, cert_file, key_file, server_name, verify" },
    { .key = "cluster", .type = CM_ENUM, .names = bool_names, .dflt = 0,
      .offset = offsetof(struct redis_sink_conf, cluster),
      .desc = "the URL names a node of a Redis Cluster: write each key to its slot's primary" },
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
    fprintf(out, " coalesce=%s", cf->coalesce ? "true" : "false");
    if (cf->cluster)
        fputs(" cluster", out);
    if (cf->use_tls) {
        fprintf(out, " tls(ca=%s", is_set(cf->tls.ca_file) ? cf->tls.ca_file :
                is_set(cf->tls.ca_dir) ? cf->tls.ca_dir : "system");
        if (is_set(cf->tls.cert_file))
            fprintf(out, " cert=%s", cf->tls.cert_file);
        if (is_set(cf->tls.server_name))
            fprintf(out, " server_name=%s", cf->tls.server_name);
        fputs(cf->tls.verify ? ")" : " verify=false)", out);
    }
}

const struct redis_tls *redis_sink_tls(const struct job_sink *js)
{
    const struct redis_sink_conf *cf = js->conf;
    return cf->use_tls ? &cf->tls : NULL;
}

const struct redis_endpoint *redis_sink_endpoint(const struct job_sink *js)
{
    return &((const struct redis_sink_conf *)js->conf)->ep;
}

int redis_sink_cluster(const struct job_sink *js)
{
    return ((const struct redis_sink_conf *)js->conf)->cluster;
}

int redis_sink_versioned(const struct job_sink *js)
{
    return ((const struct redis_sink_conf *)js->conf)->versioned;
}

/* ---- the queue of encoded writes ----------------------------------------- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];                        /* items, each at a multiple of 8 */
};

/*
 * An item: this header, then its two parts in RESP, padded to a multiple
 * of 8 bytes so the next header is aligned and read in place.  Without
 * versions the parts are the HSET and the PEXPIRE (none without a TTL).
 * Versioned: the key as a bulk string, and the window's arguments to the
 * guard (their count, then field, value pairs), put together into one
 * EVALSHA per batch when it is sent.
 *
 * Every item has a sequence number, the sink's count of items appended
 * before it, so the queue holds the consecutive sequences [popped,
 * appended).  An item replaced by a newer write to its key before it was
 * sent is marked dead and stays where it is until acknowledgements pop
 * it: sending skips it, and a batch is n live items.  A dead item is
 * always followed, somewhere behind it, by the live write that replaced
 * it, so the queue never ends with dead items and popping n live items
 * (with the dead ones between them) pops exactly what a batch covered.
 */
#define ITEM_DEAD 1

struct item {
    uint32_t len1, len2;                /* the two parts (len2 0 when none) */
    uint64_t seq;
    uint64_t queued_ns;                 /* uv_hrtime() when the result was queued */
    uint64_t cause_ns;                  /* arrival of its record (the oldest, when it
                                         * replaced others); queued_ns when none */
    int64_t version;                    /* the result's (struct engine_result) */
    uint32_t tag;                       /* its operator */
    uint8_t flags;                      /* ITEM_DEAD */
};

static const char *item_part1(const struct item *it) { return (const char *)(it + 1); }
static const char *item_part2(const struct item *it) { return item_part1(it) + it->len1; }

static size_t item_size(size_t l1, size_t l2)
{
    return (sizeof(struct item) + l1 + l2 + 7) & ~(size_t)7;
}

struct pos {
    struct chunk *c;
    size_t off;
};

/* The replies of one connection come in the order of its commands; the
 * FIFO says what each one answers.  A batch's replies are `skip` that need
 * no look (MULTI's OK and the QUEUED lines: an error among them makes EXEC
 * fail, which is looked at) and then its EXEC's (or EVALSHA's). */
enum expect_kind { EX_AUTH, EX_SELECT, EX_SCRIPT, EX_BATCH };

struct expect {
    enum expect_kind kind;
    uint32_t skip;                      /* EX_BATCH: replies before the one that counts */
    uint32_t n;                         /* EX_BATCH: its windows */
};

/* batches in flight (one node or a cluster), plus AUTH, SELECT, SCRIPT LOAD */
#define EXPECT_MAX ((REDIS_INFLIGHT > CLUSTER_INFLIGHT ? REDIS_INFLIGHT : CLUSTER_INFLIGHT) + 4)

struct redis_sink {
    struct sink *s;
    const struct redis_sink_conf *conf;
    struct redis_conn *conn;            /* one node: NULL between connections */
    struct redis_cconn *cc;             /* a cluster: for the sink's life */
    struct redis_cconn_conf ccf;
    struct sbuf setup;                  /* a cluster's: AUTH, SCRIPT LOAD on every node */
    int linked;                         /* connecting or connected (conn or cc) */
    SSL_CTX *tls;                       /* NULL: plain TCP */
    int connected, closing, congested;
    int broken;                         /* an error on this connection: ack nothing more */
    uv_timer_t retry;
    int nclosed;
    struct expect exp[EXPECT_MAX];      /* what the next replies answer, oldest first */
    size_t exp_head, exp_len;
    int64_t backoff;
    struct chunk *head_c, *tail_c;
    struct pos head, send;              /* oldest unacknowledged, next to send */
    size_t queued;                      /* items held, dead ones included (memory) */
    size_t live, unsent;                /* windows held / not sent yet (live items) */
    size_t inflight;                    /* transactions sent, not answered */
    uint64_t appended, popped;          /* items queued / dropped, ever: the sequences */
    uint64_t send_seq;                  /* items below it were sent on this connection */
    uint64_t acked;                     /* windows acknowledged, ever */
    uint64_t moved;                     /* a cluster's connections ended by a MOVED */
    uint64_t asks, unreplicated;        /* a cluster's, kept when it is freed */
    uint64_t barrier;                   /* checkpoint mark: appended at the time */
    struct coalesce *newest;            /* key -> its newest unsent item; NULL: coalesce off */
    char sha[SHA_LEN + 1];              /* the guard's, once Redis has told it; "" before */
    struct sbuf batch;                  /* one guarded batch, being put together */
    struct redis_enc enc;
    struct log_rate err_rate;
    void (*done)(struct sink *);
};

/* Appends an item of the two parts, live, with the next sequence; *out is
 * where it sits (valid until it is popped).  Returns 0 or -ENOMEM. */
static SL_MUST_USE int q_append(struct redis_sink *r, const char *p1, size_t l1, const char *p2,
                                size_t l2, struct item **out)
{
    size_t need = item_size(l1, l2);
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
    struct item *it = (struct item *)(void *)(c->data + c->used);
    *it = (struct item){ .len1 = (uint32_t)l1, .len2 = (uint32_t)l2, .seq = r->appended };
    memcpy(it + 1, p1, l1);
    if (l2)
        memcpy((char *)(it + 1) + l1, p2, l2);
    c->used += need;
    r->queued++;
    r->live++;
    r->unsent++;
    r->appended++;
    *out = it;
    return 0;
}

/* The item at p, dead or alive; advances p. */
static struct item *q_item(struct pos *p)
{
    if (p->off == p->c->used) {
        p->c = p->c->next;
        p->off = 0;
    }
    struct item *it = (struct item *)(void *)(p->c->data + p->off);
    p->off += item_size(it->len1, it->len2);
    return it;
}

/* The next live item from p (there is one: the queue ends with one);
 * advances p past it. */
static struct item *q_live(struct pos *p)
{
    struct item *it;
    do
        it = q_item(p);
    while (it->flags & ITEM_DEAD);
    return it;
}

/* Drops the n oldest live items (acknowledged at now_ns) and the dead
 * ones before them, observing the live ones' latency and freshness. */
static void q_pop(struct redis_sink *r, size_t n, uint64_t now_ns)
{
    while (n > 0) {
        struct item *it = q_item(&r->head);
        if (!(it->flags & ITEM_DEAD)) {
            histo_observe(&r->s->write_latency, now_ns - it->queued_ns);
            histo_observe(&r->s->freshness, now_ns - it->cause_ns);
            r->live--;
            n--;
        }
        r->queued--;
        r->popped++;
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

/* ---- coalescing ------------------------------------------------------------ */

/*
 * The first sequence a newer write may replace.  Not one that was sent:
 * its acknowledgement pops it as one of a batch's live items, and Redis
 * may apply it anyway.  Not one a pending checkpoint barrier covers
 * (sequence < barrier): the barrier is done once the items before it are
 * popped, and a dead one before it would count as done while the write
 * that replaced it, behind the barrier, is not acknowledged; the
 * checkpoint would complete without that key's value of the window it
 * covers ever acknowledged, and a restore from it would never fire that
 * window again.  Kept, the older write goes out as it would have, and only
 * writes after the barrier replace each other.
 */
static uint64_t coalesce_floor(const struct redis_sink *r)
{
    return r->send_seq > r->barrier ? r->send_seq : r->barrier;
}

/* The item it just appended, with its key at key..key+klen inside the
 * item, replaces the newest unsent write to the same key by the same
 * operator, if any.  Returns 0 or -ENOMEM (nothing replaced). */
static SL_MUST_USE int coalesce_item(struct redis_sink *r, struct item *it, const char *key,
                                     size_t klen)
{
    void *pv;
    uint64_t floor = coalesce_floor(r);
    /* the tag keeps operators apart: each writes its own fields, and a
     * versioned write its own version field, so one operator's result
     * replaces only that operator's; within one operator every result
     * sets the same fields (its key fields and every aggregate) */
    if (coalesce_put(r->newest, key, klen, it->tag, it->seq, it, floor, &pv) < 0)
        return -ENOMEM;
    struct item *old = pv;
    if (old == NULL || (old->flags & ITEM_DEAD))
        return 0;
    /* versioned: an older version (a late re-fire of an earlier window)
     * would lose to the newer in Redis; it must not take its place */
    if (r->conf->versioned && it->version < old->version)
        return 0;
    old->flags |= ITEM_DEAD;
    if (old->cause_ns < it->cause_ns)
        it->cause_ns = old->cause_ns;   /* the key's value waited since then */
    r->live--;
    r->unsent--;
    r->s->coalesced++;
    return 0;
}

/* After batches went out: keep the table to the unsent writes.  It is
 * rebuilt from its live entries once it holds more than twice as many as
 * there are unsent writes (plus a little, so that a queue sending every
 * write as it comes does not rebuild on each), which, with nothing
 * unsent, empties it; so it is bounded by the queue, and the rebuilds
 * cost O(1) per write. */
static void coalesce_trim(struct redis_sink *r)
{
    if (r->newest != NULL && coalesce_count(r->newest) > 2 * r->unsent + 64 &&
        coalesce_prune(r->newest, coalesce_floor(r)) < 0)
        coalesce_clear(r->newest);  /* out of memory: forget, coalesce less */
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

/* ---- what each reply answers ------------------------------------------- */

static void expect_push(struct redis_sink *r, enum expect_kind k, uint32_t skip, uint32_t n)
{
    /* never full: at most REDIS_INFLIGHT batches and three setup commands */
    r->exp[(r->exp_head + r->exp_len++) % EXPECT_MAX] = (struct expect){ k, skip, n };
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
    if (r->live > r->unsent)
        r->s->retried += r->live - r->unsent;
    r->send = r->head;
    r->send_seq = r->popped;            /* unsent again, so replaceable again */
    r->unsent = r->live;
    r->inflight = 0;
    r->exp_head = r->exp_len = 0;
}

/* Drops the connection after an error on it (a failed write or setup): its
 * other replies are not looked at, and closed() reconnects. */
static void on_cc_freed(void *ud);

/* The sink closes: its cluster connection goes, its counters are kept. */
static void cc_close(struct redis_sink *r)
{
    r->asks = redis_cconn_asks(r->cc);
    r->unreplicated = redis_cconn_unreplicated(r->cc);
    redis_cconn_close(r->cc, on_cc_freed);
}

/* Ends the connection: a cluster's is dropped (or, closing, freed). */
static void link_close(struct redis_sink *r)
{
    if (r->cc == NULL)
        redis_conn_close(r->conn);
    else if (r->closing)
        cc_close(r);
    else
        redis_cconn_drop(r->cc);
}

static void conn_broken(struct redis_sink *r)
{
    r->broken = 1;
    link_close(r);
}

/* The connection is over (why: NULL when we closed it); redirect: a
 * cluster's slot moved, which the next connection's slot map knows. */
static void link_closed(struct redis_sink *r, const char *why, int redirect)
{
    const struct redis_endpoint *ep = &r->conf->ep;
    int was_connected = r->connected;
    r->conn = NULL;
    r->linked = 0;
    r->connected = 0;
    rewind_unacked(r);
    if (r->closing) {
        maybe_done(r);
        return;
    }
    if (redirect) {
        LOG(LOG_INFO, r->s->name, "%s; %zu writes waiting, reconnecting", why, r->live);
        r->moved++;
        uv_timer_start(&r->retry, on_retry, REDIRECT_RETRY_MS, 0);
        return;
    }
    if (!was_connected)
        log_rate_msg(&r->err_rate, LOG_WARNING, r->s->name, "cannot connect to %s:%d: %s; "
                     "retrying", ep->host, ep->port, why ? why : "closed");
    else
        log_msg(LOG_WARNING, r->s->name, "disconnected%s%s; %zu writes waiting, reconnecting",
                why ? ": " : "", why ? why : "", r->live);
    schedule_retry(r);
}

static void on_conn_closed(struct redis_conn *c, const char *why, void *ud)
{
    (void)c;
    link_closed(ud, why, 0);
}

static void on_cc_closed(struct redis_cconn *cc, const char *why, int redirect, void *ud)
{
    (void)cc;
    link_closed(ud, why, redirect);
}

static void on_cc_freed(void *ud)
{
    struct redis_sink *r = ud;
    r->cc = NULL;
    r->linked = 0;
    maybe_done(r);
}

static void link_ready(struct redis_sink *r)
{
    r->connected = 1;
    r->broken = 0;
    if (r->cc != NULL)
        LOG(LOG_INFO, r->s->name, "connected to a cluster of %zu primaries (asked %s:%d%s)",
            redis_cconn_primaries(r->cc), r->conf->ep.host, r->conf->ep.port,
            r->tls ? ", TLS" : "");
    else
        LOG(LOG_INFO, r->s->name, "connected to %s:%d%s", r->conf->ep.host, r->conf->ep.port,
            r->tls ? " (TLS)" : "");
    send_more(r);
}

static void on_conn_ready(struct redis_conn *c, void *ud)
{
    (void)c;
    link_ready(ud);
}

static void on_cc_ready(struct redis_cconn *cc, void *ud)
{
    (void)cc;
    link_ready(ud);
}

static void on_setup_reply(struct redis_sink *r, const redisReply *rep, const char *what)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "%s failed: %s", what, rep->str);
        conn_broken(r);
    }
}

/* The guard's SHA1; the first one lets the writes go. */
static void on_script_loaded(struct redis_sink *r, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_STRING || rep->len != SHA_LEN) {
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "SCRIPT LOAD of the version guard "
                     "failed: %s; retrying", rep->type == REDIS_REPLY_ERROR ? rep->str
                     : "unexpected reply");
        conn_broken(r);
        return;
    }
    if (r->sha[0] == '\0') {
        memcpy(r->sha, rep->str, SHA_LEN);
        send_more(r);
    }
}

static void on_exec(struct redis_sink *r, const redisReply *rep, size_t n);

static void link_reply(struct redis_sink *r, const redisReply *rep)
{
    if (r->broken)
        return;                         /* closing: rewound when it has */
    if (r->exp_len == 0) {
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "a reply to no command; reconnecting");
        conn_broken(r);
        return;
    }
    struct expect *e = &r->exp[r->exp_head];
    if (e->kind == EX_BATCH && e->skip > 0) {
        e->skip--;
        return;
    }
    struct expect x = *e;
    r->exp_head = (r->exp_head + 1) % EXPECT_MAX;
    r->exp_len--;
    switch (x.kind) {
    case EX_AUTH:
        on_setup_reply(r, rep, "AUTH");
        break;
    case EX_SELECT:
        on_setup_reply(r, rep, "SELECT");
        break;
    case EX_SCRIPT:
        on_script_loaded(r, rep);
        break;
    case EX_BATCH:
        on_exec(r, rep, x.n);
        break;
    }
}

static void on_conn_reply(struct redis_conn *c, const redisReply *rep, void *ud)
{
    (void)c;
    link_reply(ud, rep);
}

static void on_cc_reply(struct redis_cconn *cc, const redisReply *rep, void *ud)
{
    (void)cc;
    link_reply(ud, rep);
}

static const struct redis_conn_cb conn_cb = {
    .ready = on_conn_ready, .reply = on_conn_reply, .closed = on_conn_closed,
};

static const struct redis_cconn_cb cc_cb = {
    .ready = on_cc_ready, .reply = on_cc_reply, .closed = on_cc_closed,
};

/* A batch of slot `slot` (a cluster's; 0 otherwise) that gets nreplies
 * replies.  Returns 0 or a negative errno (nothing sent). */
static SL_MUST_USE int link_send(struct redis_sink *r, unsigned slot, const char *p, size_t len,
                                 size_t nreplies)
{
    if (r->cc != NULL)
        return redis_cconn_send(r->cc, slot, p, len, nreplies);
    return redis_conn_send(r->conn, p, len);
}

/* A command of argc arguments, appended to b in RESP. */
static SL_MUST_USE int resp_command(struct sbuf *b, int argc, const char **argv)
{
    int rc = sbuf_printf(b, "*%d\r\n", argc);
    for (int i = 0; i < argc && rc == 0; i++)
        rc = resp_bulk(b, argv[i], strlen(argv[i]));
    return rc;
}

/* AUTH's arguments (argv: room for 3) and their count, for an endpoint
 * with a password. */
static int auth_args(const struct redis_endpoint *ep, const char **argv)
{
    argv[0] = "AUTH";
    argv[1] = ep->username ? ep->username : ep->password;
    argv[2] = ep->password;
    return ep->username ? 3 : 2;
}

/* The TLS name to send and verify: `server_name`, or NULL (the host). */
static const char *server_name_of(const struct redis_sink_conf *cf)
{
    const char *n = cf->tls.server_name;
    return n != NULL && n[0] != '\0' ? n : NULL;
}

/* A setup command, queued on the connection (sent first once it is
 * ready).  Returns 0 or -ENOMEM. */
static SL_MUST_USE int send_setup(struct redis_sink *r, enum expect_kind k, int argc,
                                  const char **argv)
{
    struct sbuf *b = &r->batch;
    b->len = 0;
    int rc = resp_command(b, argc, argv);
    rc = rc ? rc : redis_conn_send(r->conn, b->p, b->len);
    if (rc == 0)
        expect_push(r, k, 0, 0);
    return rc;
}

static void connect_now(struct redis_sink *r)
{
    const struct redis_endpoint *ep = &r->conf->ep;
    char db[24];
    int rc;
    if (r->closing || r->linked)
        return;
    if (r->cc != NULL)
        rc = redis_cconn_connect(r->cc);
    else
        rc = redis_conn_open(&r->conn, r->s->host->loop, r->tls, server_name_of(r->conf),
                             ep->host, ep->port, CONNECT_TIMEOUT_MS, &conn_cb, r);
    if (rc < 0) {
        log_rate_msg(&r->err_rate, LOG_WARNING, r->s->name, "cannot connect to %s:%d: %s",
                     ep->host, ep->port, rc == -ENOMEM ? "out of memory" : uv_strerror(rc));
        r->conn = NULL;
        schedule_retry(r);
        return;
    }
    r->linked = 1;
    r->exp_head = r->exp_len = 0;
    if (r->cc != NULL)
        return;                         /* it sends r->setup on each node */
    /* queued now, sent first once connected */
    if (ep->password != NULL) {
        const char *auth[3];
        rc = send_setup(r, EX_AUTH, auth_args(ep, auth), auth);
    }
    if (rc == 0 && ep->db != 0) {
        db[fmt_i64(db, ep->db)] = '\0';
        const char *sel[] = { "SELECT", db };
        rc = send_setup(r, EX_SELECT, 2, sel);
    }
    /* before any write on this connection, so EVALSHA finds it */
    if (rc == 0 && r->conf->versioned) {
        const char *load[] = { "SCRIPT", "LOAD", GUARD_SCRIPT };
        rc = send_setup(r, EX_SCRIPT, 3, load);
    }
    if (rc < 0) {
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "out of memory; reconnecting");
        conn_broken(r);
    }
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

static void on_exec(struct redis_sink *r, const redisReply *rep, size_t n)
{
    const char *err;
    r->inflight--;
    if (!exec_ok(rep, &err)) {
        r->s->failed += n;
        log_rate_msg(&r->err_rate, LOG_ERR, r->s->name, "write of %zu windows failed: %s; "
                     "retrying", n, err);
        /* later transactions on this connection may still succeed, but the
         * queue is acknowledged in order: send all of it again */
        conn_broken(r);
        return;
    }
    q_pop(r, n, uv_hrtime());
    r->s->written += n;
    if (rep->type == REDIS_REPLY_INTEGER)     /* the guard: how many it kept out */
        r->s->stale += (uint64_t)rep->integer;
    r->acked += n;
    r->backoff = 0;                 /* a write went through: the next outage starts fresh */
    if (r->congested && r->queued <= (size_t)r->conf->max_pending / 2) {
        r->congested = 0;
        r->s->host->drained(r->s->host->ud, r->s);
    }
    if (r->closing) {
        if (r->inflight == 0)
            link_close(r);              /* every reply in: done */
        return;
    }
    send_more(r);
}

/* The arguments to the guard an item holds: the count they start with,
 * plus one for the count itself. */
static size_t guard_argc(const char *args)
{
    const char *p = memchr(args, '\n', 24) + 1;
    return 1 + (size_t)strtoul(p, NULL, 10);
}

/* MULTI, n windows' HSET and PEXPIRE, EXEC, as one send.  Returns 0 or
 * -ENOMEM (nothing sent). */
static SL_MUST_USE int send_plain(struct redis_sink *r, size_t n, unsigned slot)
{
    struct sbuf *b = &r->batch;
    struct pos p = r->send;
    const struct item *it = NULL;
    uint32_t replies = 1;               /* MULTI's, then one per command */
    b->len = 0;
    int rc = sbuf_put(b, resp_multi, sizeof(resp_multi) - 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        it = q_live(&p);
        rc = sbuf_put(b, item_part1(it), it->len1);
        rc = rc ? rc : sbuf_put(b, item_part2(it), it->len2);
        replies += it->len2 ? 2 : 1;
    }
    rc = rc ? rc : sbuf_put(b, resp_exec, sizeof(resp_exec) - 1);
    rc = rc ? rc : link_send(r, slot, b->p, b->len, replies + 1);
    if (rc < 0)
        return rc;
    r->send = p;
    r->send_seq = it->seq + 1;
    expect_push(r, EX_BATCH, replies, (uint32_t)n);
    return 0;
}

/* EVALSHA <guard> n key... ttl window-arguments...: one command, applied
 * atomically.  Returns 0 or -ENOMEM (nothing sent). */
static SL_MUST_USE int send_guarded(struct redis_sink *r, size_t n, unsigned slot)
{
    struct sbuf *b = &r->batch;
    struct pos p = r->send;
    const struct item *it = NULL;
    size_t argc = 4 + n;            /* EVALSHA, sha, numkeys, ttl, keys */
    char num[24];
    for (size_t i = 0; i < n; i++)
        argc += guard_argc(item_part2(q_live(&p)));
    b->len = 0;
    int rc = sbuf_printf(b, "*%zu\r\n", argc);
    rc = rc ? rc : sbuf_put(b, resp_evalsha, sizeof(resp_evalsha) - 1);
    rc = rc ? rc : sbuf_put(b, r->sha, SHA_LEN);
    rc = rc ? rc : sbuf_put(b, "\r\n", 2);
    rc = rc ? rc : resp_bulk(b, num, fmt_i64(num, (int64_t)n));
    p = r->send;
    for (size_t i = 0; i < n && rc == 0; i++) {
        it = q_live(&p);
        rc = sbuf_put(b, item_part1(it), it->len1);
    }
    int64_t ttl = r->conf->ttl_ms == JOB_DURATION_NONE ? 0 : r->conf->ttl_ms;
    rc = rc ? rc : resp_bulk(b, num, fmt_i64(num, ttl));
    p = r->send;
    for (size_t i = 0; i < n && rc == 0; i++) {
        it = q_live(&p);
        rc = sbuf_put(b, item_part2(it), it->len2);
    }
    rc = rc ? rc : link_send(r, slot, b->p, b->len, 1);
    if (rc < 0)
        return rc;
    r->send = p;
    r->send_seq = it->seq + 1;
    expect_push(r, EX_BATCH, 0, (uint32_t)n);
    return 0;
}

/* The slot of an item's key: the key is the item's first bulk string
 * (versioned), or the HSET's first argument. */
static unsigned item_slot(const char *a, size_t la, int versioned)
{
    const char *end = a + la;
    if (!versioned) {
        a = memchr(a, '\n', (size_t)(end - a)) + 1;   /* *<argc>\r\n */
        a += sizeof("$4\r\nHSET\r\n") - 1;
    }
    size_t klen = (size_t)strtoul(a + 1, NULL, 10);
    const char *key = memchr(a, '\n', (size_t)(end - a)) + 1;
    return redis_slot(key, klen);
}

/* A cluster's batch: the next unsent items whose keys share a slot (a
 * script or a transaction may touch one slot only), at most max. */
static size_t slot_run(struct redis_sink *r, size_t max, unsigned *slot)
{
    struct pos p = r->send;
    size_t n = 0;
    while (n < max) {
        const struct item *it = q_live(&p);
        unsigned s = item_slot(item_part1(it), it->len1, r->conf->versioned);
        if (n > 0 && s != *slot)
            break;
        *slot = s;
        n++;
    }
    return n;
}

static void send_more(struct redis_sink *r)
{
    size_t inflight_max = r->cc != NULL ? CLUSTER_INFLIGHT : REDIS_INFLIGHT;
    if (r->conf->versioned && r->sha[0] == '\0')
        return;                         /* the first SCRIPT LOAD has not answered */
    while (r->connected && !r->broken && !r->closing && r->linked && r->unsent > 0 &&
           r->inflight < inflight_max) {
        size_t n = r->unsent < REDIS_BATCH ? r->unsent : REDIS_BATCH;
        unsigned slot = 0;
        if (r->cc != NULL)
            n = slot_run(r, n, &slot);
        int rc = r->conf->versioned ? send_guarded(r, n, slot) : send_plain(r, n, slot);
        if (rc == -EHOSTUNREACH || rc == -EAGAIN) {
            log_rate_msg(&r->err_rate, LOG_WARNING, r->s->name, "slot %u is served by no "
                         "primary; asking the cluster again", slot);
            conn_broken(r);
            return;
        }
        if (rc < 0)
            return;                     /* out of memory: sent with the next write or ack */
        r->unsent -= n;
        r->inflight++;
    }
    coalesce_trim(r);
}

/*
 * ---- encoding a result ------------------------------------------------------
 *
 * A result is encoded once per sink, for every window fired, so this is
 * the sink's hot path.  Everything about it that depends on the sink and
 * the operator alone is written once, on first use, into a plan: the
 * HSET header with its argument count, each field name as a bulk string,
 * the guard's argument count and version field, the PEXPIRE header and
 * TTL, and the key template with its fields resolved to key positions.
 * A result is then copies of those and its values' numbers (fmt_i64,
 * fmt_double) written in place into a buffer reserved once, from a bound
 * on the result's size: no printf, no allocation once buffers have grown.
 */

#define BULK_HEAD_MAX 24                /* "$<length>\r\n" */
#define NUM_MAX FMT_VALUE_MAX           /* fmt_i64 or fmt_double */

struct key_part {
    enum tpl_part_kind kind;
    const char *text;                   /* TPL_TEXT */
    size_t len;
    size_t k;                           /* TPL_FIELD: the key field's position */
};

struct redis_plan {
    const struct job_sink *js;
    const struct job_operator *op;
    size_t nvals;                       /* the results' values (their aggregates) */
    struct sbuf text;                   /* the constant bytes, addressed by the offsets */
    size_t *name;                       /* bulk field names: text[name[i] .. name[i + 1]) */
    size_t nfields;                     /* key fields, then aggregates */
    size_t head, head_end;              /* HSET header, or the guard's argument count */
    size_t tail, tail_mid, tail_end;    /* version field; or PEXPIRE header, TTL */
    struct key_part *key;
    size_t nkey;
    size_t fixed;                       /* text.len: the constant bytes of a result */
};

/* n bytes from s to o; returns the end.  The pieces of a result are
 * mostly under 16 bytes (names, numbers, keys), where a call to memcpy
 * costs more than the copy: two overlapping fixed-size moves instead. */
static inline char *put(char *o, const char *s, size_t n)
{
    uint64_t a, b;
    uint32_t c, d;
    if (n > 16) {
        memcpy(o, s, n);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4) {
        memcpy(&c, s, 4);
        memcpy(&d, s + n - 4, 4);
        memcpy(o, &c, 4);
        memcpy(o + n - 4, &d, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            o[i] = s[i];
    }
    return o + n;
}

/* "$<n>\r\n<s>\r\n" at o; returns the end. */
static char *put_bulk(char *o, const char *s, size_t n)
{
    *o++ = '$';
    if (n < 10)                         /* most: a number or a short name */
        *o++ = (char)('0' + n);
    else
        o += fmt_i64(o, (int64_t)n);
    *o++ = '\r';
    *o++ = '\n';
    o = put(o, s, n);
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

/* The most bytes value v takes as text. */
static size_t value_max(const struct value *v)
{
    return v->type == VT_STRING ? v->u.s.len : NUM_MAX;
}

static SL_MUST_USE int text_bulk(struct sbuf *t, const char *s, size_t n)
{
    int rc = sbuf_reserve(t, BULK_HEAD_MAX + n + 2);
    if (rc == 0)
        t->len = (size_t)(put_bulk(t->p + t->len, s, n) - t->p);
    return rc;
}

static SL_MUST_USE int plan_build(struct redis_plan *pl, const struct job *job,
                                  const struct job_operator *op, size_t nvals)
{
    const struct redis_sink_conf *cf = pl->js->conf;
    const struct job_source *src = &job->sources[op->source];
    const struct template *t = &cf->key.t;
    struct sbuf *x = &pl->text;
    char num[24];
    int rc = 0;
    pl->nvals = nvals;
    pl->nfields = op->nkeys + nvals;
    pl->name = malloc((pl->nfields + 1) * sizeof(*pl->name));
    pl->key = malloc((t->nparts + 1) * sizeof(*pl->key));
    if (pl->name == NULL || pl->key == NULL)
        return -ENOMEM;
    pl->head = x->len;
    if (cf->versioned)
        rc = text_bulk(x, num, fmt_i64(num, 2 * (int64_t)(pl->nfields + 1)));
    else
        rc = sbuf_printf(x, "*%zu\r\n$4\r\nHSET\r\n", 2 + 2 * pl->nfields);
    pl->head_end = x->len;
    for (size_t i = 0; i < pl->nfields && rc == 0; i++) {
        const char *name = i < op->nkeys ? src->fields[op->key_fields[i]].name
                           : op->aggs[i - op->nkeys].name;
        pl->name[i] = x->len;
        rc = text_bulk(x, name, strlen(name));
    }
    pl->name[pl->nfields] = pl->tail = x->len;
    int pexpire = !cf->versioned && cf->ttl_ms != JOB_DURATION_NONE;
    if (rc == 0 && cf->versioned)
        rc = sbuf_printf(x, "$%zu\r\n" REDIS_VERSION_PREFIX "%s\r\n",
                         sizeof(REDIS_VERSION_PREFIX) - 1 + strlen(op->name), op->name);
    else if (rc == 0 && pexpire)
        rc = SBUF_LIT(x, "*3\r\n$7\r\nPEXPIRE\r\n");
    pl->tail_mid = x->len;
    if (rc == 0 && pexpire)
        rc = text_bulk(x, num, fmt_i64(num, cf->ttl_ms));
    pl->tail_end = x->len;
    pl->fixed = x->len;
    /* the key template: a field found by name now, not per result */
    pl->nkey = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        const struct tpl_part *p = &t->parts[i];
        struct key_part kp = { .kind = p->kind, .text = p->text, .len = p->len };
        if (p->kind == TPL_FIELD) {
            kp.k = SIZE_MAX;            /* no such key field: nothing, as fmt_key does */
            for (size_t k = 0; k < op->nkeys && kp.k == SIZE_MAX; k++) {
                const char *name = src->fields[op->key_fields[k]].name;
                if (strlen(name) == p->len && memcmp(name, p->text, p->len) == 0)
                    kp.k = k;
            }
            if (kp.k == SIZE_MAX)
                continue;
        }
        pl->key[pl->nkey++] = kp;
    }
    return rc;
}

static void plan_free(struct redis_plan *pl)
{
    sbuf_free(&pl->text);
    free(pl->name);
    free(pl->key);
}

/* The plan for results of op with nvals values to sink js; NULL when out
 * of memory. */
static struct redis_plan *plan_get(struct redis_enc *enc, const struct job_sink *js,
                                   const struct job *job, const struct job_operator *op,
                                   size_t nvals)
{
    for (size_t i = 0; i < enc->nplans; i++) {
        struct redis_plan *pl = &enc->plans[i];
        if (pl->js == js && pl->op == op && pl->nvals == nvals)
            return pl;
    }
    struct redis_plan *np = realloc(enc->plans, (enc->nplans + 1) * sizeof(*np));
    if (np == NULL)
        return NULL;
    enc->plans = np;
    struct redis_plan *pl = &np[enc->nplans];
    *pl = (struct redis_plan){ .js = js, .op = op };
    if (plan_build(pl, job, op, nvals) < 0) {
        plan_free(pl);
        return NULL;
    }
    enc->nplans++;
    return pl;
}

/* The key template expanded for res into enc->key (fmt_key's bytes). */
static SL_MUST_USE int plan_key(const struct redis_plan *pl, struct sbuf *key,
                                const struct engine_result *res)
{
    size_t bound = 0;
    for (size_t i = 0; i < pl->nkey; i++) {
        const struct key_part *kp = &pl->key[i];
        bound += kp->kind == TPL_TEXT ? kp->len
                 : kp->kind == TPL_FIELD ? value_max(&res->keys[kp->k]) : NUM_MAX;
    }
    key->len = 0;
    if (sbuf_reserve(key, bound) < 0)
        return -ENOMEM;
    char *o = key->p;
    for (size_t i = 0; i < pl->nkey; i++) {
        const struct key_part *kp = &pl->key[i];
        char tmp[NUM_MAX];
        size_t n;
        const char *s;
        switch (kp->kind) {
        case TPL_TEXT:
            s = kp->text, n = kp->len;
            break;
        case TPL_FIELD:
            s = fmt_value_text(&res->keys[kp->k], tmp, &n);
            break;
        default:
            s = tmp, n = fmt_i64(tmp, kp->kind == TPL_WINDOW_START ? res->start : res->end);
            break;
        }
        o = put(o, s, n);
    }
    key->len = (size_t)(o - key->p);
    key->p[key->len] = '\0';
    return 0;
}

static char *put_text(char *o, const struct redis_plan *pl, size_t from, size_t to)
{
    return put(o, pl->text.p + from, to - from);
}

/*
 * Versioned: the key as a bulk string, then the window's arguments to the
 * guard: their count, field, value ..., _sluice:<op>, version.
 * Plain: HSET key field value ..., then PEXPIRE key ttl when there is a
 * TTL.
 */
int redis_encode_result(struct redis_enc *enc, const struct job_sink *js, const struct job *job,
                        const struct job_operator *op, const struct engine_result *res)
{
    const struct redis_sink_conf *cf = js->conf;
    struct redis_plan *pl = plan_get(enc, js, job, op, res->nvals);
    if (pl == NULL || plan_key(pl, &enc->key, res) < 0)
        return -ENOMEM;
    size_t klen = enc->key.len;
    size_t bound = pl->fixed + 2 * (klen + BULK_HEAD_MAX + 2) + BULK_HEAD_MAX + NUM_MAX + 2;
    for (size_t k = 0; k < op->nkeys; k++)
        bound += value_max(&res->keys[k]) + BULK_HEAD_MAX + 2;
    for (size_t i = 0; i < res->nvals; i++)
        bound += value_max(&res->vals[i]) + BULK_HEAD_MAX + 2;
    enc->out.len = 0;
    if (sbuf_reserve(&enc->out, bound) < 0)
        return -ENOMEM;
    char *base = enc->out.p, *o = base;
    if (cf->versioned) {
        o = put_bulk(o, enc->key.p, klen);
        enc->part1 = enc->kend = (size_t)(o - base);
        o = put_text(o, pl, pl->head, pl->head_end);
    } else {
        o = put_text(o, pl, pl->head, pl->head_end);
        o = put_bulk(o, enc->key.p, klen);
        enc->kend = (size_t)(o - base);
    }
    for (size_t i = 0; i < pl->nfields; i++) {
        const struct value *v = i < op->nkeys ? &res->keys[i] : &res->vals[i - op->nkeys];
        char tmp[NUM_MAX];
        size_t n;
        const char *s = fmt_value_text(v, tmp, &n);
        o = put_text(o, pl, pl->name[i], pl->name[i + 1]);
        o = put_bulk(o, s, n);
    }
    if (cf->versioned) {
        char tmp[NUM_MAX];
        o = put_text(o, pl, pl->tail, pl->tail_end);
        o = put_bulk(o, tmp, fmt_i64(tmp, res->version));
    } else {
        enc->part1 = (size_t)(o - base);
        if (pl->tail_end > pl->tail) {
            o = put_text(o, pl, pl->tail, pl->tail_mid);
            o = put_bulk(o, enc->key.p, klen);
            o = put_text(o, pl, pl->tail_mid, pl->tail_end);
        }
    }
    enc->out.len = (size_t)(o - base);
    base[enc->out.len] = '\0';
    return 0;
}

void redis_enc_free(struct redis_enc *enc)
{
    sbuf_free(&enc->key);
    sbuf_free(&enc->out);
    for (size_t i = 0; i < enc->nplans; i++)
        plan_free(&enc->plans[i]);
    free(enc->plans);
    enc->plans = NULL;
    enc->nplans = 0;
}

static SL_MUST_USE int queue_write(struct redis_sink *r, const struct job_operator *op,
                       const struct engine_result *res)
{
    const struct redis_sink_conf *cf = r->conf;
    struct redis_enc *en = &r->enc;
    struct item *it;
    int rc;

    if ((rc = redis_encode_result(en, r->s->js, r->s->job, op, res)) < 0)
        return rc;
    if ((rc = q_append(r, en->out.p, en->part1, en->out.p + en->part1,
                       en->out.len - en->part1, &it)) < 0)
        return rc;
    it->queued_ns = uv_hrtime();
    it->cause_ns = r->s->host->cause_ns ? r->s->host->cause_ns : it->queued_ns;
    it->version = res->version;
    it->tag = (uint32_t)res->op;
    /* the key's bytes, inside the item: the bulk string's, before its CRLF */
    if (r->newest != NULL &&
        (rc = coalesce_item(r, it, item_part1(it) + en->kend - 2 - en->key.len,
                            en->key.len)) < 0)
        return rc;
    if (!r->congested && r->queued >= (size_t)cf->max_pending) {
        r->congested = 1;
        r->s->host->congested(r->s->host->ud, r->s);
    }
    send_more(r);
    return 0;
}

/* ---- the sink ------------------------------------------------------------------------ */

/* A cluster's connection: the commands every node gets first (AUTH, and
 * SCRIPT LOAD: each node has its own script cache), and the guard's SHA1,
 * which no single node's reply can be waited for. */
static SL_MUST_USE int cluster_open(struct redis_sink *r)
{
    const struct redis_endpoint *ep = &r->conf->ep;
    struct sbuf *b = &r->setup;
    size_t n = 0;
    int rc = 0;
    if (ep->password != NULL) {
        const char *auth[3];
        rc = resp_command(b, auth_args(ep, auth), auth);
        n++;
    }
    if (r->conf->versioned) {
        unsigned char md[SHA_DIGEST_LENGTH];
        const char *load[] = { "SCRIPT", "LOAD", GUARD_SCRIPT };
        SHA1((const unsigned char *)GUARD_SCRIPT, sizeof(GUARD_SCRIPT) - 1, md);
        for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++)
            snprintf(r->sha + 2 * i, 3, "%02x", md[i]);
        rc = rc ? rc : resp_command(b, 3, load);
        n++;
    }
    if (rc < 0)
        return rc;
    r->ccf = (struct redis_cconn_conf){
        .loop = r->s->host->loop, .tls = r->tls, .server_name = server_name_of(r->conf),
        .host = ep->host, .port = ep->port, .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .setup = b->p, .setup_len = b->len, .setup_replies = n,
    };
    return redis_cconn_new(&r->cc, &r->ccf, &cc_cb, r);
}

static int rs_open(struct sink *s)
{
    struct redis_sink *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->s = s;
    r->conf = s->js->conf;
    int rc;
    if (r->conf->use_tls) {
        char err[512];
        rc = redis_tls_ctx_new(&r->tls, &r->conf->tls, err, sizeof(err));
        if (rc < 0) {
            log_msg(LOG_ERR, s->name, "%s", err);
            free(r);
            return rc;
        }
    }
    if ((r->conf->coalesce && (rc = coalesce_new(&r->newest)) < 0) ||
        (r->conf->cluster && (rc = cluster_open(r)) < 0)) {
        log_msg(LOG_ERR, s->name, "out of memory");
        coalesce_free(r->newest);
        sbuf_free(&r->setup);
        redis_tls_ctx_free(r->tls);
        free(r);
        return rc;
    }
    s->impl = r;
    s->timed = 1;
    uv_timer_init(s->host->loop, &r->retry);
    r->retry.data = r;
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
    return r ? r->live : 0;
}

/* Acknowledgements come in queue order, so a count is enough: the
 * barrier is done once every item before it is popped.  Dead ones among
 * them were replaced by writes before the barrier too (coalesce_floor()
 * lets nothing behind it replace one before it), so this is every live
 * write before the barrier acknowledged. */
static int rs_barrier(struct sink *s)
{
    struct redis_sink *r = s->impl;
    r->barrier = r->appended;
    return 0;
}

static int rs_barrier_done(const struct sink *s)
{
    const struct redis_sink *r = s->impl;
    return r->popped >= r->barrier;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct redis_sink *r = h->data;
    r->nclosed++;
    maybe_done(r);
}

static void maybe_done(struct redis_sink *r)
{
    if (!r->closing || r->linked || r->cc != NULL || r->nclosed < 1)
        return;
    struct sink *s = r->s;
    void (*done)(struct sink *) = r->done;
    if (r->live > 0)
        log_msg(LOG_WARNING, s->name, "closed with %zu writes not acknowledged", r->live);
    if (r->conf->cluster)
        LOG(LOG_INFO, s->name, "cluster: %" PRIu64 " writes redirected, %" PRIu64 " moved "
            "slots met, %" PRIu64 " acknowledged without a replica", r->asks, r->moved,
            r->unreplicated);
    sbuf_free(&r->setup);
    struct chunk *c = r->head_c;
    while (c != NULL) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    redis_tls_ctx_free(r->tls);
    redis_enc_free(&r->enc);
    sbuf_free(&r->batch);
    coalesce_free(r->newest);
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
    uv_close((uv_handle_t *)&r->retry, on_timer_closed);
    /* connected and writes answered soon: wait for their replies (on_exec
     * closes after the last); otherwise close now */
    if (r->linked && !(r->connected && !r->broken && r->inflight > 0))
        link_close(r);
    else if (!r->linked && r->cc != NULL)
        cc_close(r);
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
