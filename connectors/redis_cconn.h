/*
 * redis_cconn.h - one logical, pipelined connection to a Redis Cluster.
 *
 * The Redis sink speaks to a cluster as it speaks to one node: it sends
 * commands and gets their replies back in the order it sent them.  Under
 * that, this module keeps one connection (redis_conn.h, TLS or not) per
 * primary, sends each command to the primary that serves its slot, follows
 * ASK redirections (a slot being migrated) by itself, and ends the whole
 * connection on a MOVED (a slot has a new owner) or on any node's failure,
 * so that the sink sends everything unacknowledged again, in order, once
 * it has connected again with a fresh slot map.  Resending from the start
 * of the unacknowledged queue is what keeps every key's writes in order.
 *
 * A primary with a replica acknowledges a write only once a replica has it
 * too (WAIT 1, one in flight per primary, covering every command sent
 * before it), so a failover after a kill -9 does not lose an acknowledged
 * write.  A WAIT that times out (no replica in sync) acknowledges anyway,
 * counted and logged: availability over a second failure.
 *
 * Lifecycle (one enum in the .c file):
 *   IDLE --connect--> DISCOVERING --slot map--> CONNECTING --all set up--> READY
 *   DISCOVERING/CONNECTING/READY --failure or drop--> DROPPING --conns closed--> IDLE
 *   any --close--> CLOSING --conns closed--> freed, done()
 * closed() is called on the way back to IDLE (never from within a call the
 * sink made), after which the sink may connect again.
 */
#ifndef SLUICE_REDIS_CCONN_H
#define SLUICE_REDIS_CCONN_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "../config/compiler.h"

struct redis_cconn;

struct redis_cconn_cb {
    /* Every primary is connected and has answered the setup commands. */
    void (*ready)(struct redis_cconn *cc, void *ud);
    /* The next reply, in send order; valid during the call only. */
    void (*reply)(struct redis_cconn *cc, const redisReply *rep, void *ud);
    /* Back to IDLE: every command sent and not yet answered is dropped.
     * why: a clear message, or NULL after redis_cconn_drop().  redirect: a
     * slot moved; connecting again at once will find it. */
    void (*closed)(struct redis_cconn *cc, const char *why, int redirect, void *ud);
};

struct redis_cconn_conf {
    uv_loop_t *loop;
    SSL_CTX *tls;                       /* NULL: plain TCP */
    const char *server_name;            /* TLS: the name to verify; NULL: each node's host */
    const char *host;                   /* the node to ask for the slot map first */
    int port;
    int connect_timeout_ms;
    /* RESP sent first on every connection (AUTH, SCRIPT LOAD ...), and the
     * number of replies it gets: an error among them ends the connection. */
    const char *setup;
    size_t setup_len, setup_replies;
};

/* conf and cb are borrowed: they must outlive the connection. */
SL_MUST_USE int redis_cconn_new(struct redis_cconn **out, const struct redis_cconn_conf *conf,
                                const struct redis_cconn_cb *cb, void *ud);

/* IDLE: starts connecting (the seed node first, then, after a failure,
 * the nodes of the last slot map in turn).  Returns 0 (ready() or
 * closed() follows), or a negative errno: nothing started, still IDLE. */
SL_MUST_USE int redis_cconn_connect(struct redis_cconn *cc);

/* READY: sends a command (copied) of slot `slot`, which gets nreplies
 * replies (MULTI ... EXEC: one per command).  Returns 0, -EAGAIN when not
 * ready, -ENOMEM. */
SL_MUST_USE int redis_cconn_send(struct redis_cconn *cc, unsigned slot, const char *resp,
                                 size_t len, size_t nreplies);

/* Ends the connection (closed(NULL) follows); nothing when IDLE. */
void redis_cconn_drop(struct redis_cconn *cc);

/* Closes everything and frees cc; done(ud) when it is gone, which may be
 * before this returns.  No other callback after this call. */
void redis_cconn_close(struct redis_cconn *cc, void (*done)(void *ud));

/* Writes acknowledged by a primary whose WAIT for a replica timed out. */
uint64_t redis_cconn_unreplicated(const struct redis_cconn *cc);

/* Commands sent again to another node after ASK (a slot migrating). */
uint64_t redis_cconn_asks(const struct redis_cconn *cc);

/* How many primaries the last slot map had. */
size_t redis_cconn_primaries(const struct redis_cconn *cc);

#endif
