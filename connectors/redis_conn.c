/*
 * redis_conn.c - one connection to one Redis node, plain TCP or TLS.
 *
 * hiredis 0.14 (Debian's) reads and writes its socket itself and has no
 * TLS, so the socket is ours: uv_getaddrinfo, uv_tcp_connect (TCP_NODELAY),
 * then uv_read / uv_write.  TLS sits between them as OpenSSL over two
 * memory BIOs: bytes read from the socket go into the SSL object's read
 * BIO, SSL_read gives the plaintext; SSL_write puts records into its write
 * BIO, which we drain into the next uv_write.  Nothing blocks: OpenSSL
 * never sees the socket.  hiredis stays the reply parser (redisReader).
 *
 * States (one enum, moved only by set_state):
 *   RESOLVING -> CONNECTING -> [HANDSHAKE ->] READY
 *   any -> CLOSING (a failure, the server closing, or redis_conn_close)
 * In CLOSING every handle is closed and a pending resolution cancelled;
 * when the last of them reports back, closed() is called and the conn
 * freed.  closed() therefore always comes from a libuv callback, never from
 * the caller's own stack.
 *
 * Batching: redis_conn_send only appends to `out` and starts a prepare
 * handle, whose callback runs once per loop iteration, just before the loop
 * polls (blocks): everything the iteration queued goes to one SSL_write and
 * one uv_write.  While a write is in flight, more sends gather in `out`; its
 * completion schedules the next flush the same way.  So at most one
 * uv_write is in flight and one starts per iteration, as large as the
 * traffic makes it.
 *
 * Runs on the loop's thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "format.h"
#include "redis_conn.h"

#define READ_BUF 65536

enum rc_state { RC_RESOLVING, RC_CONNECTING, RC_HANDSHAKE, RC_READY, RC_CLOSING };

struct redis_conn {
    uv_loop_t *loop;
    enum rc_state state;
    const struct redis_conn_cb *cb;
    void *ud;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_tcp_t tcp;
    uv_timer_t timer;                   /* connect timeout */
    uv_prepare_t flush;                 /* flushes `out` before the loop polls */
    int gai_pending, tcp_open, nopen;   /* what must report back before the end */
    int writing, flush_queued;
    size_t nread;                       /* bytes received, ever */
    SSL *ssl;                           /* NULL: plain TCP */
    BIO *rbio, *wbio;                   /* owned by ssl */
    redisReader *reader;
    struct sbuf out;                    /* plaintext queued by redis_conn_send */
    struct sbuf pend;                   /* bytes for the socket, not yet written */
    struct sbuf wbuf;                   /* bytes of the uv_write in flight */
    const char *why;                    /* points into whybuf, or NULL */
    char whybuf[320];
    char rbuf[READ_BUF];
};

static unsigned long writes_total;

unsigned long redis_conn_writes_total(void)
{
    return writes_total;
}

/* ---- TLS context ------------------------------------------------------------ */

static const char *nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The newest OpenSSL error's reason, or dflt; clears the queue. */
static const char *ssl_reason(const char *dflt)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : dflt;
}

static int readable(const char *what, const char *path, int dir, char *err, size_t errlen)
{
    if (access(path, R_OK | (dir ? X_OK : 0)) != 0) {
        int e = errno;
        snprintf(err, errlen, "TLS: cannot read %s %s: %s", what, path, strerror(e));
        return -e;
    }
    return 0;
}

/* The context of t; with `system` 0 the system's trust store is not
 * loaded (it is the slow part, and has nothing to report at load time). */
static int tls_ctx_build(SSL_CTX **out, const struct redis_tls *t, int system, char *err,
                         size_t errlen)
{
    const char *ca_file = nonempty(t->ca_file), *ca_dir = nonempty(t->ca_dir);
    const char *cert = nonempty(t->cert_file), *key = nonempty(t->key_file);
    int rc;
    *out = NULL;
    if ((cert == NULL) != (key == NULL)) {
        snprintf(err, errlen, "TLS: %s is set without %s", cert ? "cert_file" : "key_file",
                 cert ? "key_file" : "cert_file");
        return -EINVAL;
    }
    if ((ca_file && (rc = readable("CA file", ca_file, 0, err, errlen)) < 0) ||
        (ca_dir && (rc = readable("CA directory", ca_dir, 1, err, errlen)) < 0) ||
        (cert && (rc = readable("certificate file", cert, 0, err, errlen)) < 0) ||
        (key && (rc = readable("key file", key, 0, err, errlen)) < 0))
        return rc;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "TLS: cannot create a context: %s", ssl_reason("out of memory"));
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (ca_file || ca_dir) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, ca_dir) != 1) {
            snprintf(err, errlen, "TLS: cannot load the CA %s %s: %s",
                     ca_file ? "file" : "directory", ca_file ? ca_file : ca_dir,
                     ssl_reason("unknown error"));
            goto fail;
        }
    } else if (system && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "TLS: cannot load the system's trust store: %s",
                 ssl_reason("unknown error"));
        goto fail;
    }
    if (cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            snprintf(err, errlen, "TLS: cannot load the certificate %s: %s", cert,
                     ssl_reason("unknown error"));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errlen, "TLS: cannot load the key %s: %s", key,
                     ssl_reason("unknown error"));
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "TLS: the key %s does not match the certificate %s: %s",
                     key, cert, ssl_reason("key values mismatch"));
            goto fail;
        }
    }
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -EINVAL;
}

int redis_tls_ctx_new(SSL_CTX **out, const struct redis_tls *t, char *err, size_t errlen)
{
    return tls_ctx_build(out, t, 1, err, errlen);
}

int redis_tls_check(const struct redis_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    int rc = tls_ctx_build(&ctx, t, 0, err, errlen);
    SSL_CTX_free(ctx);
    return rc;
}

void redis_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);                  /* connections hold their own reference */
}

/* ---- lifecycle ------------------------------------------------------------- */

static void set_state(struct redis_conn *c, enum rc_state s)
{
    /* RESOLVING -> CONNECTING -> HANDSHAKE -> READY, CONNECTING -> READY
     * (plain), any -> CLOSING; nothing leaves CLOSING */
    if (c->state == RC_CLOSING)
        return;
    c->state = s;
}

static void conn_free(struct redis_conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);               /* and its BIOs */
    if (c->reader != NULL)
        redisReaderFree(c->reader);
    sbuf_free(&c->out);
    sbuf_free(&c->pend);
    sbuf_free(&c->wbuf);
    free(c);
}

static void maybe_finish(struct redis_conn *c)
{
    if (c->state != RC_CLOSING || c->nopen > 0 || c->gai_pending)
        return;
    c->cb->closed(c, c->why, c->ud);
    conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct redis_conn *c = h->data;
    c->nopen--;
    maybe_finish(c);
}

/* Moves to CLOSING (once): closes every handle; why (NULL: asked by the
 * user) is reported by closed() when they all have. */
static void shut(struct redis_conn *c, const char *why)
{
    if (c->state == RC_CLOSING)
        return;
    set_state(c, RC_CLOSING);
    c->why = NULL;
    if (why != NULL) {
        snprintf(c->whybuf, sizeof(c->whybuf), "%s", why);
        c->why = c->whybuf;
    }
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai);  /* may fail when running: its callback ends it */
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->flush, on_handle_closed);
    if (c->tcp_open)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void fail(struct redis_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct redis_conn *c, const char *fmt, ...)
{
    char msg[sizeof(c->whybuf)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    shut(c, msg);
}

void redis_conn_close(struct redis_conn *c)
{
    shut(c, NULL);
}

/* ---- writing --------------------------------------------------------------- */

static void start_write(struct redis_conn *c);

/* What SSL wrote into its write BIO, onto pend.  Returns 0 or -ENOMEM. */
static int drain_wbio(struct redis_conn *c)
{
    char tmp[16384];
    int got;
    while ((got = BIO_read(c->wbio, tmp, sizeof(tmp))) > 0)
        if (sbuf_put(&c->pend, tmp, (size_t)got) < 0)
            return -ENOMEM;
    return 0;
}

static void on_flush(uv_prepare_t *h);

/* A flush before the loop next polls (once, however many ask). */
static void schedule_flush(struct redis_conn *c)
{
    if (!c->flush_queued) {
        uv_prepare_start(&c->flush, on_flush);
        c->flush_queued = 1;
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct redis_conn *c = req->data;
    c->writing = 0;
    if (c->state == RC_CLOSING)
        return;
    if (status < 0) {
        fail(c, "write failed: %s", uv_strerror(status));
        return;
    }
    if (c->out.len > 0 || c->pend.len > 0)
        schedule_flush(c);              /* what gathered meanwhile */
}

/* The queued plaintext through SSL (or as it is) into pend, then pend to
 * the socket when no write is in flight. */
static void start_write(struct redis_conn *c)
{
    if (c->state != RC_READY && c->state != RC_HANDSHAKE)
        return;
    if (c->state == RC_READY && c->out.len > 0) {
        if (c->ssl != NULL) {
            ERR_clear_error();
            int n = SSL_write(c->ssl, c->out.p, (int)c->out.len);
            if (n <= 0 || (size_t)n != c->out.len) {
                fail(c, "TLS: write failed: %s", ssl_reason("unexpected result"));
                return;
            }
            c->out.len = 0;
        } else if (c->pend.len == 0) {
            struct sbuf t = c->pend;    /* no copy: swap */
            c->pend = c->out;
            c->out = t;
        } else {
            if (sbuf_put(&c->pend, c->out.p, c->out.len) < 0) {
                fail(c, "out of memory");
                return;
            }
            c->out.len = 0;
        }
    }
    if (c->ssl != NULL && drain_wbio(c) < 0) {
        fail(c, "out of memory");
        return;
    }
    if (c->writing || c->pend.len == 0)
        return;
    struct sbuf t = c->wbuf;
    c->wbuf = c->pend;
    c->pend = t;
    c->pend.len = 0;
    uv_buf_t b = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        fail(c, "write failed: %s", uv_strerror(rc));
        return;
    }
    c->writing = 1;
    writes_total++;
}

static void on_flush(uv_prepare_t *h)
{
    struct redis_conn *c = h->data;
    uv_prepare_stop(h);
    c->flush_queued = 0;
    start_write(c);
}

int redis_conn_send(struct redis_conn *c, const char *resp, size_t len)
{
    if (c->state == RC_CLOSING)
        return 0;                       /* dropped, as close drops them */
    if (sbuf_put(&c->out, resp, len) < 0)
        return -ENOMEM;
    if (c->state == RC_READY)
        schedule_flush(c);
    return 0;
}

size_t redis_conn_unsent(const struct redis_conn *c)
{
    size_t n = c->out.len + c->pend.len;
    if (c->tcp_open)
        n += uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
    return n;
}

/* ---- reading --------------------------------------------------------------- */

/* The replies complete in the reader, one callback each; stops when the
 * callback closed the conn. */
static void deliver(struct redis_conn *c, const char *data, size_t len)
{
    if (redisReaderFeed(c->reader, data, len) != REDIS_OK) {
        fail(c, "protocol error: %s", c->reader->errstr);
        return;
    }
    while (c->state == RC_READY) {
        void *rep = NULL;
        if (redisReaderGetReply(c->reader, &rep) != REDIS_OK) {
            fail(c, "protocol error: %s", c->reader->errstr[0] ? c->reader->errstr
                 : "unreadable reply");
            return;
        }
        if (rep == NULL)
            return;
        c->cb->reply(c, rep, c->ud);
        freeReplyObject(rep);
    }
}

/* An SSL call failed with code e: a message naming the reason and, for a
 * certificate, the verification result. */
static void fail_ssl(struct redis_conn *c, int e, const char *during)
{
    if (e == SSL_ERROR_ZERO_RETURN) {
        fail(c, "closed by the server (TLS close)");
        return;
    }
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        fail(c, "TLS: %s: unexpected end of the connection", during);
        return;
    }
    const char *reason = ssl_reason("unknown error");
    long v = SSL_get_verify_result(c->ssl);
    /* the alert OpenSSL wrote, so the server logs why too (best effort:
     * the connection is closed right after) */
    if (drain_wbio(c) == 0 && c->pend.len > 0 && !c->writing) {
        uv_buf_t b = uv_buf_init(c->pend.p, (unsigned)c->pend.len);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    if (v != X509_V_OK)
        fail(c, "TLS: %s: %s", reason, X509_verify_cert_error_string(v));
    else
        fail(c, "TLS: %s: %s", during, reason);
}

static void ready(struct redis_conn *c)
{
    set_state(c, RC_READY);
    uv_timer_stop(&c->timer);
    c->cb->ready(c, c->ud);
    start_write(c);                     /* what was queued before */
}

/* Ciphertext read from the socket: the handshake's next step, then the
 * plaintext to the reader. */
static void tls_input(struct redis_conn *c, const char *data, size_t len)
{
    char plain[16384];
    if (BIO_write(c->rbio, data, (int)len) != (int)len) {
        fail(c, "out of memory");
        return;
    }
    if (c->state == RC_HANDSHAKE) {
        ERR_clear_error();
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                fail_ssl(c, e, "handshake failed");
                return;
            }
            start_write(c);             /* the handshake's next flight */
            return;
        }
        start_write(c);                 /* its last flight, before the data */
        if (c->state != RC_HANDSHAKE)
            return;
        ready(c);
        if (c->state != RC_READY)
            return;
    }
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, plain, sizeof(plain));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                start_write(c);         /* a key update or ticket answer */
                return;
            }
            fail_ssl(c, e, "read failed");
            return;
        }
        deliver(c, plain, (size_t)n);
        if (c->state != RC_READY)
            return;
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct redis_conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct redis_conn *c = s->data;
    if (c->state == RC_CLOSING || n == 0)
        return;
    if (n < 0) {
        if (n == UV_EOF)
            fail(c, c->state == RC_HANDSHAKE ? "closed by the server during the TLS "
                 "handshake (does it speak TLS?)" : "closed by the server");
        else
            fail(c, "read failed: %s", uv_strerror((int)n));
        return;
    }
    c->nread += (size_t)n;
    if (c->ssl != NULL)
        tls_input(c, buf->base, (size_t)n);
    else
        deliver(c, buf->base, (size_t)n);
}

/* ---- connecting ------------------------------------------------------------ */

static void on_timeout(uv_timer_t *t)
{
    struct redis_conn *c = t->data;
    if (c->state == RC_HANDSHAKE && c->nread == 0)
        fail(c, "timed out in the TLS handshake: the server sent nothing (is it a TLS port? "
             "a plain Redis waits for the end of a line that never comes)");
    else
        fail(c, "timed out %s", c->state == RC_RESOLVING ? "resolving the host" :
             c->state == RC_HANDSHAKE ? "in the TLS handshake" : "connecting");
}

static void on_connect(uv_connect_t *req, int status)
{
    struct redis_conn *c = req->data;
    if (c->state == RC_CLOSING)
        return;
    if (status < 0) {
        fail(c, "%s", status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail(c, "cannot read: %s", uv_strerror(rc));
        return;
    }
    if (c->ssl == NULL) {
        ready(c);
        return;
    }
    set_state(c, RC_HANDSHAKE);
    ERR_clear_error();
    int hs = SSL_do_handshake(c->ssl);   /* the ClientHello, into wbio */
    int e = SSL_get_error(c->ssl, hs);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        fail_ssl(c, e, "handshake failed");
        return;
    }
    start_write(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct redis_conn *c = req->data;
    c->gai_pending = 0;
    if (c->state == RC_CLOSING) {
        uv_freeaddrinfo(res);
        maybe_finish(c);
        return;
    }
    if (status < 0 || res == NULL) {
        fail(c, "cannot resolve the host: %s", status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        return;
    }
    int rc = uv_tcp_init(c->loop, &c->tcp);
    if (rc == 0) {
        c->tcp.data = c;
        c->tcp_open = 1;
        c->nopen++;
        c->creq.data = c;
        rc = uv_tcp_connect(&c->creq, &c->tcp, res->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (rc < 0) {
        fail(c, "cannot connect: %s", uv_strerror(rc));
        return;
    }
    set_state(c, RC_CONNECTING);
}

/* The SSL object of a new connection: memory BIOs, SNI and the name to
 * verify (an IP address is verified as one, and never sent as SNI). */
static SL_MUST_USE int tls_setup(struct redis_conn *c, SSL_CTX *ctx, const char *name)
{
    unsigned char ip[16];
    if ((c->ssl = SSL_new(ctx)) == NULL)
        return -ENOMEM;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(c->rbio, -1);    /* empty: retry, not end of file */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!is_ip && SSL_set_tlsext_host_name(c->ssl, name) != 1)
        return -ENOMEM;
    if (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name)
                       : SSL_set1_host(c->ssl, name);
        if (ok != 1)
            return -ENOMEM;
    }
    return 0;
}

int redis_conn_open(struct redis_conn **out, uv_loop_t *loop, SSL_CTX *tls,
                    const char *server_name, const char *host, int port,
                    int connect_timeout_ms, const struct redis_conn_cb *cb, void *ud)
{
    char service[16];
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int rc;
    struct redis_conn *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->cb = cb;
    c->ud = ud;
    c->state = RC_RESOLVING;
    if ((c->reader = redisReaderCreate()) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if (tls != NULL && (rc = tls_setup(c, tls, server_name ? server_name : host)) < 0)
        goto fail;
    snprintf(service, sizeof(service), "%d", port);
    c->gai.data = c;
    if ((rc = uv_getaddrinfo(loop, &c->gai, on_resolved, host, service, &hints)) < 0)
        goto fail;
    c->gai_pending = 1;
    uv_timer_init(loop, &c->timer);
    uv_prepare_init(loop, &c->flush);
    c->timer.data = c->flush.data = c;
    c->nopen = 2;
    uv_update_time(loop);               /* the caller may have run a while since the loop did */
    uv_timer_start(&c->timer, on_timeout, (uint64_t)connect_timeout_ms, 0);
    *out = c;
    return 0;
fail:
    conn_free(c);
    return rc;
}
