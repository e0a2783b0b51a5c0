/*
 * redis_conn.h - one connection to one Redis node on the libuv loop, plain
 * TCP or TLS (OpenSSL over memory BIOs), replies parsed by hiredis's
 * redisReader.  See redis_conn.c for how it is driven.
 */
#ifndef SLUICE_REDIS_CONN_H
#define SLUICE_REDIS_CONN_H

#include <stddef.h>

#include <hiredis.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "../config/compiler.h"

struct redis_tls {                  /* a sink's TLS settings; NULL = plain TCP */
    const char *ca_file, *ca_dir;   /* both NULL: the system's trust store */
    const char *cert_file, *key_file;   /* client certificate (mutual TLS) */
    const char *server_name;        /* SNI and the name verified; NULL: the host */
    int verify;                     /* 1 (default): verify the chain and name */
};

/* One SSL_CTX per sink, shared by its connections.  Returns 0 or a negative
 * errno with a clear message in err (a file that cannot be read, a key that
 * does not match the certificate, ...).  An empty string counts as NULL. */
SL_MUST_USE int redis_tls_ctx_new(SSL_CTX **out, const struct redis_tls *t, char *err,
                                  size_t errlen);
void redis_tls_ctx_free(SSL_CTX *ctx);
/* What redis_tls_ctx_new would say of t, without loading the system's
 * trust store (for load time: `sluice validate`). */
SL_MUST_USE int redis_tls_check(const struct redis_tls *t, char *err, size_t errlen);

struct redis_conn;
struct redis_conn_cb {
    /* TCP connected and, with TLS, the handshake done: commands may flow. */
    void (*ready)(struct redis_conn *c, void *ud);
    /* The next reply, in the order of the commands sent; owned by the conn,
     * valid during the call only. */
    void (*reply)(struct redis_conn *c, const redisReply *rep, void *ud);
    /* The connection is over: why (a clear message), or NULL after
     * redis_conn_close().  Called exactly once, always from the loop (never
     * from inside redis_conn_open or redis_conn_close); the conn is freed
     * right after it returns.  Replies not yet received are never
     * delivered. */
    void (*closed)(struct redis_conn *c, const char *why, void *ud);
};

/* Starts connecting to host:port (tls: NULL for plain; server_name: the
 * name to send and verify, NULL: host).  connect_timeout_ms covers
 * resolution, TCP and handshake.  Returns 0 (closed() will be called some
 * day) or a negative errno (nothing to free, no callback). */
SL_MUST_USE int redis_conn_open(struct redis_conn **out, uv_loop_t *loop, SSL_CTX *tls,
                                const char *server_name, const char *host, int port,
                                int connect_timeout_ms, const struct redis_conn_cb *cb,
                                void *ud);
/* Queues RESP bytes (copied) to send; allowed before ready() (sent once
 * ready).  Consecutive sends within one loop iteration go out in one write.
 * Returns 0 or -ENOMEM. */
SL_MUST_USE int redis_conn_send(struct redis_conn *c, const char *resp, size_t len);
/* Bytes queued but not yet handed to the kernel (for tests and backpressure). */
size_t redis_conn_unsent(const struct redis_conn *c);
/* Closes now (pending sends dropped); closed(c, NULL, ud) follows from the loop. */
void redis_conn_close(struct redis_conn *c);

/* Writes handed to the kernel (uv_write calls) since the start: for tests
 * and benchmarks of the batching. */
unsigned long redis_conn_writes_total(void);

#endif
