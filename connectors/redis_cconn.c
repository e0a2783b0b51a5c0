/*
 * redis_cconn.c - one logical connection to a Redis Cluster (redis_cconn.h).
 *
 * Every command the sink sends becomes a struct rec, kept in a FIFO in send
 * order until its replies can be handed over: a rec is complete when all
 * its replies have come (copied, as the connection frees them after its
 * callback) and, on a primary with replicas, the WAIT sent after it has
 * answered.  Replies are handed over from the head of the FIFO only, so the
 * sink sees them in the order it sent the commands whatever order the
 * primaries answer in.
 *
 * Each primary's connection answers in its own order; a ring of struct
 * expect per node says what each of its replies is: one of the setup
 * commands, an ASKING, a WAIT, or reply i of a rec.  A rec resent after
 * ASK gets a new generation, so replies still owed by the node that
 * redirected it (an EXECABORT after the -ASK of a queued command) are
 * recognised and dropped.
 *
 * Everything runs on the loop thread.  No callback of the sink is called
 * from within a function the sink called: failures arrive through the
 * connections' callbacks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_cconn.h"
#include "redis_cluster.h"
#include "redis_conn.h"

#define WAIT_TIMEOUT_MS 1000
#define MAX_KNOWN 64

enum cc_state { CC_IDLE, CC_DISCOVERING, CC_CONNECTING, CC_READY, CC_DROPPING, CC_CLOSING };

struct rec {
    struct rec *next;
    int node;                       /* where it was sent last */
    uint32_t gen;                   /* bumped by an ASK resend */
    uint64_t wait_no;               /* the node's WAIT that covers it; 0: none */
    size_t want, got;
    redisReply **rep;               /* got copies */
    size_t len;
    char bytes[];
};

enum expect_kind { E_SETUP, E_ASKING, E_WAIT, E_REC };

struct expect {
    enum expect_kind kind;
    uint32_t gen;
    struct rec *rec;
};

struct node {
    struct redis_cconn *cc;
    struct redis_node_addr addr;
    struct redis_conn *conn;        /* NULL once closed */
    int up;                         /* ready() came */
    size_t setup_left;
    struct expect *exp;             /* ring */
    size_t exp_head, exp_n, exp_cap;
    uint64_t wait_sent, wait_acked;
    int wait_due;                   /* commands sent since the last WAIT went out */
};

struct redis_cconn {
    const struct redis_cconn_conf *conf;
    const struct redis_cconn_cb *cb;
    void *ud;
    enum cc_state state;
    uint64_t epoch;                 /* bumped whenever pending recs are dropped */
    struct node disc;               /* the connection that asks for the slot map */
    struct node *nodes;             /* one per primary of map */
    size_t nnodes;
    struct redis_slot_map map;
    struct redis_node_addr known[MAX_KNOWN];
    size_t nknown;
    unsigned attempt;
    int nopen;                      /* connections not yet closed */
    struct rec *head, *tail;
    char why[512];
    int redirect;
    uint64_t unreplicated, asks;
    struct log_rate warn_rate;
    void (*done)(void *ud);
};

static const char resp_cluster_slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
static const char resp_asking[] = "*1\r\n$6\r\nASKING\r\n";

/* ---- replies held ------------------------------------------------------------ */

static void reply_free(redisReply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static redisReply *reply_dup(const redisReply *r)
{
    redisReply *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->str != NULL) {
        if ((c->str = malloc(r->len + 1)) == NULL)
            goto fail;
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    if (r->elements > 0) {
        if ((c->element = calloc(r->elements, sizeof(*c->element))) == NULL)
            goto fail;
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i] != NULL && (c->element[i] = reply_dup(r->element[i])) == NULL)
                goto fail;
    }
    return c;
fail:
    reply_free(c);
    return NULL;
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->got; i++)
        reply_free(r->rep[i]);
    free(r->rep);
    free(r);
}

static void recs_drop(struct redis_cconn *cc)
{
    while (cc->head != NULL) {
        struct rec *r = cc->head;
        cc->head = r->next;
        rec_free(r);
    }
    cc->tail = NULL;
    cc->epoch++;
}

/* ---- each node's expected replies ---------------------------------------------- */

static SL_MUST_USE int expect_push(struct node *n, enum expect_kind kind, struct rec *rec)
{
    if (n->exp_n == n->exp_cap) {
        size_t cap = n->exp_cap ? n->exp_cap * 2 : 64;
        struct expect *e = malloc(cap * sizeof(*e));
        if (e == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n->exp_n; i++)
            e[i] = n->exp[(n->exp_head + i) % n->exp_cap];
        free(n->exp);
        n->exp = e;
        n->exp_head = 0;
        n->exp_cap = cap;
    }
    n->exp[(n->exp_head + n->exp_n) % n->exp_cap] = (struct expect){
        kind, rec ? rec->gen : 0, rec };
    n->exp_n++;
    return 0;
}

static int expect_pop(struct node *n, struct expect *e)
{
    if (n->exp_n == 0)
        return 0;
    *e = n->exp[n->exp_head];
    n->exp_head = (n->exp_head + 1) % n->exp_cap;
    n->exp_n--;
    return 1;
}

static void node_reset(struct node *n)
{
    free(n->exp);
    n->exp = NULL;
    n->exp_head = n->exp_n = n->exp_cap = 0;
    n->up = 0;
    n->setup_left = 0;
    n->wait_sent = n->wait_acked = 0;
    n->wait_due = 0;
}

/* ---- state -------------------------------------------------------------------------- */

static void close_all(struct redis_cconn *cc)
{
    if (cc->disc.conn != NULL)
        redis_conn_close(cc->disc.conn);
    for (size_t i = 0; i < cc->nnodes; i++)
        if (cc->nodes[i].conn != NULL)
            redis_conn_close(cc->nodes[i].conn);
}

static void finish(struct redis_cconn *cc)
{
    for (size_t i = 0; i < cc->nnodes; i++)
        node_reset(&cc->nodes[i]);
    free(cc->nodes);
    cc->nodes = NULL;
    cc->nnodes = 0;
    node_reset(&cc->disc);
    if (cc->state == CC_CLOSING) {
        void (*done)(void *) = cc->done;
        void *ud = cc->ud;
        redis_slot_map_free(&cc->map);
        free(cc);
        if (done != NULL)
            done(ud);
        return;
    }
    cc->state = CC_IDLE;
    cc->cb->closed(cc, cc->why[0] ? cc->why : NULL, cc->redirect, cc->ud);
}

/* Ends the connection because of why (NULL: asked to). */
static void fail(struct redis_cconn *cc, int redirect, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct redis_cconn *cc, int redirect, const char *fmt, ...)
{
    if (cc->state == CC_IDLE || cc->state == CC_DROPPING || cc->state == CC_CLOSING)
        return;
    cc->why[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cc->why, sizeof(cc->why), fmt, ap);
        va_end(ap);
    }
    cc->redirect = redirect;
    cc->state = CC_DROPPING;
    recs_drop(cc);
    close_all(cc);
    if (cc->nopen == 0)
        finish(cc);
}

/* ---- handing replies over ------------------------------------------------------------ */

static int deliverable(const struct redis_cconn *cc, const struct rec *r)
{
    return r->got == r->want &&
           (r->wait_no == 0 || r->wait_no <= cc->nodes[r->node].wait_acked);
}

static void deliver(struct redis_cconn *cc)
{
    uint64_t epoch = cc->epoch;
    while (cc->head != NULL && deliverable(cc, cc->head)) {
        struct rec *r = cc->head;
        cc->head = r->next;
        if (cc->head == NULL)
            cc->tail = NULL;
        for (size_t i = 0; i < r->want && cc->epoch == epoch; i++)
            cc->cb->reply(cc, r->rep[i], cc->ud);
        rec_free(r);
        if (cc->epoch != epoch)
            return;                 /* the sink dropped or closed us */
    }
}

/* ---- sending -------------------------------------------------------------------------- */

static SL_MUST_USE int send_wait(struct node *n)
{
    char cmd[64];
    int len = snprintf(cmd, sizeof(cmd), "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$%d\r\n%d\r\n",
                       WAIT_TIMEOUT_MS >= 1000 ? 4 : 3, WAIT_TIMEOUT_MS);
    int rc = redis_conn_send(n->conn, cmd, (size_t)len);
    rc = rc ? rc : expect_push(n, E_WAIT, NULL);
    if (rc == 0) {
        n->wait_sent++;
        n->wait_due = 0;
    }
    return rc;
}

/* r's bytes to node i (after ASKING when asking), with its expectations,
 * and the WAIT that will cover it. */
static SL_MUST_USE int rec_send(struct redis_cconn *cc, struct rec *r, int i, int asking)
{
    struct node *n = &cc->nodes[i];
    int rc = 0;
    r->node = i;
    if (asking) {
        rc = redis_conn_send(n->conn, resp_asking, sizeof(resp_asking) - 1);
        rc = rc ? rc : expect_push(n, E_ASKING, NULL);
    }
    rc = rc ? rc : redis_conn_send(n->conn, r->bytes, r->len);
    for (size_t k = 0; k < r->want && rc == 0; k++)
        rc = expect_push(n, E_REC, r);
    if (rc < 0)
        return rc;
    r->wait_no = 0;
    if (n->addr.replicas > 0) {
        if (n->wait_sent == n->wait_acked) {
            if ((rc = send_wait(n)) < 0)
                return rc;
            r->wait_no = n->wait_sent;
        } else {
            n->wait_due = 1;
            r->wait_no = n->wait_sent + 1;
        }
    }
    return 0;
}

int redis_cconn_send(struct redis_cconn *cc, unsigned slot, const char *resp, size_t len,
                     size_t nreplies)
{
    if (cc->state != CC_READY || slot >= REDIS_SLOTS)
        return -EAGAIN;
    unsigned i = cc->map.slot[slot];
    if (i == REDIS_SLOT_NONE || i >= cc->nnodes || cc->nodes[i].conn == NULL)
        return -EHOSTUNREACH;
    struct rec *r = malloc(sizeof(*r) + len);
    if (r == NULL)
        return -ENOMEM;
    *r = (struct rec){ .want = nreplies, .len = len };
    if ((r->rep = calloc(nreplies ? nreplies : 1, sizeof(*r->rep))) == NULL) {
        free(r);
        return -ENOMEM;
    }
    memcpy(r->bytes, resp, len);
    int rc = rec_send(cc, r, (int)i, 0);
    if (rc < 0) {
        /* part of it may be on its way: the connection is out of step */
        rec_free(r);
        fail(cc, 0, "out of memory sending to %s:%d", cc->nodes[i].addr.host,
             cc->nodes[i].addr.port);
        return rc;
    }
    if (cc->tail != NULL)
        cc->tail->next = r;
    else
        cc->head = r;
    cc->tail = r;
    return 0;
}

/* ---- replies ------------------------------------------------------------------------- */

/* A redirection in a reply or in one of its elements (a queued command). */
static enum redis_redirect redirect_in(const struct redis_cconn *cc, const redisReply *rep,
                                       unsigned *slot, struct redis_node_addr *to)
{
    if (rep->type == REDIS_REPLY_ERROR)
        return redis_redirect_parse(rep->str, rep->len, cc->conf->host, slot, to);
    return REDIS_REDIRECT_NONE;
}

static void on_rec_reply(struct redis_cconn *cc, struct node *n, const struct expect *e,
                         const redisReply *rep)
{
    struct rec *r = e->rec;
    unsigned slot;
    struct redis_node_addr to;
    if (e->gen != r->gen)
        return;                     /* owed by a node that redirected it */
    switch (redirect_in(cc, rep, &slot, &to)) {
    case REDIS_REDIRECT_MOVED:
        fail(cc, 1, "slot %u moved from %s:%d to %s:%d", slot, n->addr.host, n->addr.port,
             to.host, to.port);
        return;
    case REDIS_REDIRECT_ASK: {
        int i = redis_slot_map_find(&cc->map, to.host, to.port);
        if (i < 0 || cc->nodes[i].conn == NULL) {
            fail(cc, 1, "slot %u is migrating to %s:%d, not a primary of the slot map", slot,
                 to.host, to.port);
            return;
        }
        for (size_t k = 0; k < r->got; k++)
            reply_free(r->rep[k]);
        r->got = 0;
        r->gen++;
        cc->asks++;
        if (rec_send(cc, r, i, 1) < 0)
            fail(cc, 0, "out of memory following ASK to %s:%d", to.host, to.port);
        return;
    }
    case REDIS_REDIRECT_NONE:
        break;
    }
    if (r == cc->head && r->want == 1 && r->wait_no == 0) {
        /* the next reply the sink waits for, and all of its command's: no
         * copy (a node without replicas, a script's one reply) */
        uint64_t epoch = cc->epoch;
        cc->head = r->next;
        if (cc->head == NULL)
            cc->tail = NULL;
        cc->cb->reply(cc, rep, cc->ud);
        rec_free(r);
        if (cc->epoch == epoch)
            deliver(cc);
        return;
    }
    if ((r->rep[r->got] = reply_dup(rep)) == NULL) {
        fail(cc, 0, "out of memory holding a reply of %s:%d", n->addr.host, n->addr.port);
        return;
    }
    r->got++;
    if (r == cc->head && deliverable(cc, r))
        deliver(cc);
}

static void maybe_ready(struct redis_cconn *cc)
{
    if (cc->state != CC_CONNECTING)
        return;
    for (size_t i = 0; i < cc->nnodes; i++)
        if (!cc->nodes[i].up || cc->nodes[i].setup_left > 0)
            return;
    cc->state = CC_READY;
    cc->cb->ready(cc, cc->ud);
}

static void on_node_reply(struct redis_conn *c, const redisReply *rep, void *ud)
{
    struct node *n = ud;
    struct redis_cconn *cc = n->cc;
    struct expect e;
    (void)c;
    if (cc->state == CC_DROPPING || cc->state == CC_CLOSING)
        return;
    if (!expect_pop(n, &e)) {
        fail(cc, 0, "%s:%d sent a reply nothing asked for", n->addr.host, n->addr.port);
        return;
    }
    switch (e.kind) {
    case E_SETUP:
        if (rep->type == REDIS_REPLY_ERROR) {
            fail(cc, 0, "%s:%d: setup failed: %s", n->addr.host, n->addr.port, rep->str);
            return;
        }
        n->setup_left--;
        maybe_ready(cc);
        return;
    case E_ASKING:
        if (rep->type == REDIS_REPLY_ERROR)
            fail(cc, 0, "%s:%d: ASKING failed: %s", n->addr.host, n->addr.port, rep->str);
        return;
    case E_WAIT:
        n->wait_acked++;
        if (rep->type == REDIS_REPLY_ERROR) {
            fail(cc, 0, "%s:%d: WAIT failed: %s", n->addr.host, n->addr.port, rep->str);
            return;
        }
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer < 1) {
            cc->unreplicated++;
            log_rate_msg(&cc->warn_rate, LOG_WARNING, "redis cluster", "%s:%d: no replica "
                         "confirmed writes within %d ms; acknowledged by the primary only",
                         n->addr.host, n->addr.port, WAIT_TIMEOUT_MS);
        }
        if (n->wait_due && send_wait(n) < 0) {
            fail(cc, 0, "out of memory sending WAIT to %s:%d", n->addr.host, n->addr.port);
            return;
        }
        deliver(cc);
        return;
    case E_REC:
        on_rec_reply(cc, n, &e, rep);
        return;
    }
}

static void on_node_ready(struct redis_conn *c, void *ud)
{
    struct node *n = ud;
    (void)c;
    n->up = 1;
    maybe_ready(n->cc);
}

static void on_node_closed(struct redis_conn *c, const char *why, void *ud)
{
    struct node *n = ud;
    struct redis_cconn *cc = n->cc;
    (void)c;
    n->conn = NULL;
    cc->nopen--;
    if (why != NULL)
        fail(cc, 0, "%s:%d: %s", n->addr.host, n->addr.port, why);
    if ((cc->state == CC_DROPPING || cc->state == CC_CLOSING) && cc->nopen == 0)
        finish(cc);
}

static const struct redis_conn_cb node_cb = {
    .ready = on_node_ready, .reply = on_node_reply, .closed = on_node_closed,
};

/* Opens n's connection and queues the setup commands on it. */
static SL_MUST_USE int node_open(struct redis_cconn *cc, struct node *n)
{
    const struct redis_cconn_conf *cf = cc->conf;
    n->cc = cc;
    int rc = redis_conn_open(&n->conn, cf->loop, cf->tls, cf->server_name, n->addr.host,
                             n->addr.port, cf->connect_timeout_ms, &node_cb, n);
    if (rc < 0) {
        n->conn = NULL;
        return rc;
    }
    cc->nopen++;
    if (cf->setup_len > 0)
        rc = redis_conn_send(n->conn, cf->setup, cf->setup_len);
    for (size_t k = 0; k < cf->setup_replies && rc == 0; k++)
        rc = expect_push(n, E_SETUP, NULL);
    n->setup_left = cf->setup_replies;
    return rc;
}

/* ---- discovery --------------------------------------------------------------------- */

static void remember_nodes(struct redis_cconn *cc)
{
    cc->nknown = 0;
    for (size_t i = 0; i < cc->map.nnodes && cc->nknown < MAX_KNOWN; i++)
        cc->known[cc->nknown++] = cc->map.nodes[i];
}

static void on_slots(struct redis_cconn *cc, const redisReply *rep)
{
    char err[256];
    int rc = redis_slot_map_parse(&cc->map, rep, cc->disc.addr.host, err, sizeof(err));
    if (rc < 0) {
        fail(cc, 0, "%s:%d: %s", cc->disc.addr.host, cc->disc.addr.port, err);
        return;
    }
    size_t uncovered = redis_slot_map_uncovered(&cc->map);
    if (uncovered > 0)
        log_rate_msg(&cc->warn_rate, LOG_WARNING, "redis cluster", "%zu of %d slots are "
                     "served by no primary; their writes wait", uncovered, REDIS_SLOTS);
    remember_nodes(cc);
    redis_conn_close(cc->disc.conn);            /* its closed() comes later */
    cc->state = CC_CONNECTING;
    if ((cc->nodes = calloc(cc->map.nnodes, sizeof(*cc->nodes))) == NULL) {
        fail(cc, 0, "out of memory");
        return;
    }
    cc->nnodes = cc->map.nnodes;
    for (size_t i = 0; i < cc->nnodes; i++) {
        cc->nodes[i].addr = cc->map.nodes[i];
        if ((rc = node_open(cc, &cc->nodes[i])) < 0) {
            fail(cc, 0, "cannot connect to %s:%d: %s", cc->nodes[i].addr.host,
                 cc->nodes[i].addr.port, strerror(-rc));
            return;
        }
    }
}

static void on_disc_reply(struct redis_conn *c, const redisReply *rep, void *ud)
{
    struct node *n = ud;
    struct redis_cconn *cc = n->cc;
    struct expect e;
    (void)c;
    if (cc->state != CC_DISCOVERING)
        return;
    if (!expect_pop(n, &e)) {
        fail(cc, 0, "%s:%d sent a reply nothing asked for", n->addr.host, n->addr.port);
        return;
    }
    if (e.kind == E_SETUP) {
        if (rep->type == REDIS_REPLY_ERROR)
            fail(cc, 0, "%s:%d: setup failed: %s", n->addr.host, n->addr.port, rep->str);
        return;
    }
    on_slots(cc, rep);
}

static void on_disc_ready(struct redis_conn *c, void *ud)
{
    (void)c, (void)ud;
}

static const struct redis_conn_cb disc_cb = {
    .ready = on_disc_ready, .reply = on_disc_reply, .closed = on_node_closed,
};

int redis_cconn_connect(struct redis_cconn *cc)
{
    const struct redis_cconn_conf *cf = cc->conf;
    struct node *n = &cc->disc;
    if (cc->state != CC_IDLE)
        return -EALREADY;
    /* the seed first, then the nodes of the last map in turn */
    size_t k = cc->attempt++ % (1 + cc->nknown);
    node_reset(n);
    if (k == 0) {
        snprintf(n->addr.host, sizeof(n->addr.host), "%s", cf->host);
        n->addr.port = cf->port;
    } else {
        n->addr = cc->known[k - 1];
    }
    n->cc = cc;
    cc->why[0] = '\0';
    cc->redirect = 0;
    int rc = redis_conn_open(&n->conn, cf->loop, cf->tls, cf->server_name, n->addr.host,
                             n->addr.port, cf->connect_timeout_ms, &disc_cb, n);
    if (rc < 0) {
        n->conn = NULL;
        return rc;
    }
    cc->nopen++;
    cc->state = CC_DISCOVERING;
    if (cf->setup_len > 0)
        rc = redis_conn_send(n->conn, cf->setup, cf->setup_len);
    for (size_t i = 0; i < cf->setup_replies && rc == 0; i++)
        rc = expect_push(n, E_SETUP, NULL);
    rc = rc ? rc : redis_conn_send(n->conn, resp_cluster_slots, sizeof(resp_cluster_slots) - 1);
    rc = rc ? rc : expect_push(n, E_REC, NULL);
    if (rc < 0) {
        snprintf(cc->why, sizeof(cc->why), "out of memory");
        cc->state = CC_DROPPING;
        redis_conn_close(n->conn);
    }
    return 0;
}

/* ---- life -------------------------------------------------------------------------- */

int redis_cconn_new(struct redis_cconn **out, const struct redis_cconn_conf *conf,
                    const struct redis_cconn_cb *cb, void *ud)
{
    struct redis_cconn *cc = calloc(1, sizeof(*cc));
    if (cc == NULL)
        return -ENOMEM;
    cc->conf = conf;
    cc->cb = cb;
    cc->ud = ud;
    redis_slot_map_init(&cc->map);
    *out = cc;
    return 0;
}

void redis_cconn_drop(struct redis_cconn *cc)
{
    fail(cc, 0, NULL);
}

void redis_cconn_close(struct redis_cconn *cc, void (*done)(void *ud))
{
    enum cc_state was = cc->state;
    cc->done = done;
    cc->state = CC_CLOSING;
    recs_drop(cc);
    if (was == CC_IDLE || cc->nopen == 0) {
        finish(cc);
        return;
    }
    if (was != CC_DROPPING)
        close_all(cc);
}

uint64_t redis_cconn_unreplicated(const struct redis_cconn *cc)
{
    return cc->unreplicated;
}

uint64_t redis_cconn_asks(const struct redis_cconn *cc)
{
    return cc->asks;
}

size_t redis_cconn_primaries(const struct redis_cconn *cc)
{
    return cc->map.nnodes;
}
