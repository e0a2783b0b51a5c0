/*
 * test_redis_conn.c - the Redis connection (connectors/redis_conn.c) on a
 * private libuv loop against a fake server on loopback: replies in order,
 * sends before ready going out in one write, every way a connection ends
 * (refused, closed by us before or after ready, closed by the server,
 * garbage, a plain server answering a TLS client, a handshake that never
 * completes), closed() called once and never from the caller's stack, and
 * TLS settings that cannot work.  Real TLS servers are the integration
 * test's (t_redis_tls.sh); under ASan these paths show any leak.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../connectors/redis_conn.h"
#include "suites.h"

enum fake_mode {
    FAKE_REPLY,         /* once all expected bytes are in: send `reply` */
    FAKE_GREET,         /* on accept: send `reply` (garbage, say) */
    FAKE_HANGUP,        /* on accept: close */
    FAKE_SILENT,        /* accept, read, never answer */
};

struct fake {
    uv_tcp_t listen, peer;
    int peer_open;
    enum fake_mode mode;
    const char *reply;
    size_t expect;                  /* FAKE_REPLY: bytes to wait for */
    char got[4096];
    size_t ngot;
    uv_write_t w;
    int port;
};

struct probe {
    int ready, nclosed, nreplies, in_call;
    char why[320];
    int why_null;
    redisReply copy[8];             /* type and integer of each reply */
    char str[8][32];
    int close_after;                /* close from the reply callback after this many */
};

static uv_loop_t loop;
static struct fake fk;
static struct probe pr;

static void on_fake_written(uv_write_t *w, int status)
{
    (void)w, (void)status;
}

static void fake_send(struct fake *f, const char *s)
{
    uv_buf_t b = uv_buf_init((char *)s, (unsigned)strlen(s));
    ck_assert_int_eq(uv_write(&f->w, (uv_stream_t *)&f->peer, &b, 1, on_fake_written), 0);
}

static void fake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct fake *f = h->data;
    (void)hint;
    *b = uv_buf_init(f->got + f->ngot, (unsigned)(sizeof(f->got) - f->ngot));
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct fake *f = s->data;
    (void)b;
    if (n <= 0)
        return;
    size_t before = f->ngot;
    f->ngot += (size_t)n;
    if (f->mode == FAKE_REPLY && before < f->expect && f->ngot >= f->expect)
        fake_send(f, f->reply);
}

static void fake_accept(uv_stream_t *l, int status)
{
    struct fake *f = l->data;
    ck_assert_int_eq(status, 0);
    uv_tcp_init(&loop, &f->peer);
    f->peer.data = f;
    f->peer_open = 1;
    ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&f->peer), 0);
    if (f->mode == FAKE_HANGUP) {
        uv_close((uv_handle_t *)&f->peer, NULL);
        f->peer_open = 0;
        return;
    }
    uv_read_start((uv_stream_t *)&f->peer, fake_alloc, fake_read);
    if (f->mode == FAKE_GREET)
        fake_send(f, f->reply);
}

static void fake_start(enum fake_mode mode, const char *reply, size_t expect)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    memset(&fk, 0, sizeof(fk));
    fk.mode = mode;
    fk.reply = reply;
    fk.expect = expect;
    uv_tcp_init(&loop, &fk.listen);
    fk.listen.data = &fk;
    uv_ip4_addr("127.0.0.1", 0, &a);
    ck_assert_int_eq(uv_tcp_bind(&fk.listen, (struct sockaddr *)&a, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&fk.listen, 4, fake_accept), 0);
    uv_tcp_getsockname(&fk.listen, (struct sockaddr *)&got, &len);
    fk.port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* ---- the connection's callbacks ----------------------------------------- */

static void on_ready(struct redis_conn *c, void *ud)
{
    (void)c;
    ck_assert_ptr_eq(ud, &pr);
    pr.ready++;
}

static void on_reply(struct redis_conn *c, const redisReply *rep, void *ud)
{
    (void)ud;
    if (pr.nreplies < 8) {
        pr.copy[pr.nreplies].type = rep->type;
        pr.copy[pr.nreplies].integer = rep->integer;
        if (rep->str != NULL)
            snprintf(pr.str[pr.nreplies], sizeof(pr.str[0]), "%s", rep->str);
    }
    pr.nreplies++;
    if (pr.close_after && pr.nreplies == pr.close_after) {
        pr.in_call = 1;
        redis_conn_close(c);
        pr.in_call = 0;
    }
}

static void on_closed(struct redis_conn *c, const char *why, void *ud)
{
    (void)c, (void)ud;
    ck_assert_msg(!pr.in_call, "closed() called from inside the caller's own call");
    pr.nclosed++;
    pr.why_null = why == NULL;
    snprintf(pr.why, sizeof(pr.why), "%s", why ? why : "");
}

static const struct redis_conn_cb cb = { on_ready, on_reply, on_closed };

static void setup(void)
{
    memset(&pr, 0, sizeof(pr));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void teardown(void)
{
    uv_walk(&loop, close_any, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* opens to the fake server (or port), checking closed() is not called
 * from inside the open */
static struct redis_conn *open_to(SSL_CTX *tls, int port, int timeout_ms)
{
    struct redis_conn *c;
    pr.in_call = 1;
    ck_assert_int_eq(redis_conn_open(&c, &loop, tls, NULL, "127.0.0.1", port, timeout_ms, &cb,
                                     &pr), 0);
    pr.in_call = 0;
    ck_assert_int_eq(pr.nclosed, 0);
    return c;
}

/* the fake server's listening handle keeps the loop alive: run until the
 * connection has ended */
static void run_until_closed(void)
{
    while (pr.nclosed == 0)
        uv_run(&loop, UV_RUN_ONCE);
}

/* ---- tests ------------------------------------------------------------------ */

static const char ping[] = "*1\r\n$4\r\nPING\r\n";

START_TEST(replies_in_order_and_sends_batched)
{
    fake_start(FAKE_REPLY, "+PONG\r\n:42\r\n$3\r\nabc\r\n", 3 * (sizeof(ping) - 1));
    struct redis_conn *c = open_to(NULL, fk.port, 2000);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(redis_conn_send(c, ping, sizeof(ping) - 1), 0);
    ck_assert_uint_eq(redis_conn_unsent(c), 3 * (sizeof(ping) - 1));
    unsigned long w0 = redis_conn_writes_total();
    pr.close_after = 3;
    run_until_closed();
    ck_assert_int_eq(pr.ready, 1);
    ck_assert_int_eq(pr.nreplies, 3);
    ck_assert_int_eq(pr.copy[0].type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(pr.str[0], "PONG");
    ck_assert_int_eq(pr.copy[1].type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(pr.copy[1].integer, 42);
    ck_assert_int_eq(pr.copy[2].type, REDIS_REPLY_STRING);
    ck_assert_str_eq(pr.str[2], "abc");
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert_msg(pr.why_null, "expected closed(NULL) after redis_conn_close, got '%s'", pr.why);
    ck_assert_uint_eq(redis_conn_writes_total() - w0, 1);     /* three sends, one write */
    ck_assert_uint_eq(fk.ngot, 3 * (sizeof(ping) - 1));
}
END_TEST

START_TEST(refused)
{
    fake_start(FAKE_SILENT, NULL, 0);
    int port = fk.port;
    uv_close((uv_handle_t *)&fk.listen, NULL);      /* nothing listens there now */
    uv_run(&loop, UV_RUN_DEFAULT);
    struct redis_conn *c = open_to(NULL, port, 2000);
    ck_assert_int_eq(redis_conn_send(c, ping, sizeof(ping) - 1), 0);
    run_until_closed();
    ck_assert_int_eq(pr.ready, 0);
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert_str_eq(pr.why, "connection refused");
}
END_TEST

START_TEST(closed_before_ready)
{
    fake_start(FAKE_SILENT, NULL, 0);
    struct redis_conn *c = open_to(NULL, fk.port, 2000);
    ck_assert_int_eq(redis_conn_send(c, ping, sizeof(ping) - 1), 0);
    pr.in_call = 1;
    redis_conn_close(c);                    /* still resolving */
    pr.in_call = 0;
    ck_assert_int_eq(pr.nclosed, 0);
    run_until_closed();
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert(pr.why_null);
    ck_assert_int_eq(pr.ready, 0);
}
END_TEST

START_TEST(closed_by_the_server)
{
    fake_start(FAKE_HANGUP, NULL, 0);
    open_to(NULL, fk.port, 2000);
    run_until_closed();
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert_msg(strstr(pr.why, "closed by the server") != NULL || strstr(pr.why, "reset"),
                  "got '%s'", pr.why);
}
END_TEST

START_TEST(garbage_is_a_protocol_error)
{
    fake_start(FAKE_GREET, "!this is not RESP\r\n", 0);
    open_to(NULL, fk.port, 2000);
    run_until_closed();
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert_int_eq(pr.nreplies, 0);
    ck_assert_msg(strncmp(pr.why, "protocol error: ", 16) == 0, "got '%s'", pr.why);
}
END_TEST

static SSL_CTX *ctx_noverify(void)
{
    struct redis_tls t = { .verify = 0 };
    SSL_CTX *ctx;
    char err[256];
    ck_assert_int_eq(redis_tls_ctx_new(&ctx, &t, err, sizeof(err)), 0);
    return ctx;
}

START_TEST(plain_server_to_a_tls_client)
{
    /* what redis-server without TLS answers to a ClientHello */
    fake_start(FAKE_REPLY, "-ERR Protocol error: unbalanced quotes in request\r\n", 1);
    SSL_CTX *ctx = ctx_noverify();
    open_to(ctx, fk.port, 2000);
    redis_tls_ctx_free(ctx);                /* the connection holds its own reference */
    run_until_closed();
    ck_assert_int_eq(pr.ready, 0);
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert_msg(strncmp(pr.why, "TLS: handshake failed: ", 23) == 0, "got '%s'", pr.why);
}
END_TEST

START_TEST(handshake_timeout)
{
    fake_start(FAKE_SILENT, NULL, 0);
    SSL_CTX *ctx = ctx_noverify();
    struct redis_conn *c = open_to(ctx, fk.port, 1000);   /* resolving is slow under ASan */
    ck_assert_int_eq(redis_conn_send(c, ping, sizeof(ping) - 1), 0);   /* dropped with it */
    run_until_closed();
    redis_tls_ctx_free(ctx);
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert_msg(strncmp(pr.why, "timed out in the TLS handshake: the server sent nothing",
                          54) == 0, "got '%s'", pr.why);
    ck_assert_uint_gt(fk.ngot, 0);          /* the ClientHello went out */
}
END_TEST

START_TEST(close_during_handshake)
{
    fake_start(FAKE_SILENT, NULL, 0);
    SSL_CTX *ctx = ctx_noverify();
    struct redis_conn *c = open_to(ctx, fk.port, 2000);
    redis_tls_ctx_free(ctx);
    while (fk.ngot == 0)                    /* the ClientHello arrived: handshake started */
        uv_run(&loop, UV_RUN_ONCE);
    redis_conn_close(c);
    run_until_closed();
    ck_assert_int_eq(pr.nclosed, 1);
    ck_assert(pr.why_null);
}
END_TEST

START_TEST(tls_settings_that_cannot_work)
{
    SSL_CTX *ctx = NULL;
    char err[512];
    struct redis_tls t = { .ca_file = "/nonexistent/ca.pem", .verify = 1 };
    ck_assert_int_eq(redis_tls_ctx_new(&ctx, &t, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_null(ctx);
    ck_assert_str_eq(err, "TLS: cannot read CA file /nonexistent/ca.pem: No such file or "
                     "directory");
    t = (struct redis_tls){ .key_file = "/etc/hostname", .verify = 1 };
    ck_assert_int_eq(redis_tls_ctx_new(&ctx, &t, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "TLS: key_file is set without cert_file");
    t = (struct redis_tls){ .cert_file = "/etc/hostname", .key_file = "/etc/hostname" };
    ck_assert_int_eq(redis_tls_check(&t, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strncmp(err, "TLS: cannot load the certificate /etc/hostname: ", 48) == 0,
                  "got '%s'", err);
    t = (struct redis_tls){ .ca_file = "", .ca_dir = "", .verify = 1 };   /* empty: system's */
    ck_assert_int_eq(redis_tls_check(&t, err, sizeof(err)), 0);
}
END_TEST

Suite *redis_conn_suite(void)
{
    Suite *s = suite_create("redis_conn");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, replies_in_order_and_sends_batched);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, closed_before_ready);
    tcase_add_test(tc, closed_by_the_server);
    tcase_add_test(tc, garbage_is_a_protocol_error);
    tcase_add_test(tc, plain_server_to_a_tls_client);
    tcase_add_test(tc, handshake_timeout);
    tcase_add_test(tc, close_during_handshake);
    tcase_add_test(tc, tls_settings_that_cannot_work);
    suite_add_tcase(s, tc);
    return s;
}
