/*
 * test_http.c - the HTTP server (cmd/http.h) with real loopback clients
 * on the test's own loop: when full, the oldest connection that is not
 * waiting for its handler is evicted (a partial request, an answer the
 * client does not read), a request waiting for its handler never is (the
 * newcomer is refused then); the request and write deadlines; 400, 413
 * and 414.  Clients are plain sockets: connect() completes in the kernel
 * before the server accepts, and what they send fits the socket buffers,
 * so the one thread can drive both sides.  Time passes by running the
 * loop until a timer stops it, never by sleeping.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "../../cmd/http.h"
#include "suites.h"

#define FULL 256                    /* cmd/http.c MAX_CONNS */

static uv_loop_t loop;
static struct http_server *srv;
static int port;
static size_t body_len = 3;         /* what the handler answers; 0: it holds the request */
static struct http_req *held[FULL + 8];
static int nheld, ncalls;

static void handler(void *ud, struct http_req *req, const char *method, const char *path)
{
    (void)ud, (void)method, (void)path;
    ncalls++;
    if (body_len == 0) {
        held[nheld++] = req;
        return;
    }
    char *body = malloc(body_len);
    ck_assert_ptr_nonnull(body);
    memset(body, 'x', body_len);
    http_respond(req, 200, "text/plain", body, body_len);
    free(body);
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs the loop for ms milliseconds. */
static void run_for(unsigned ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void setup(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    port = ntohs(a.sin_port);       /* free now; taken again by the server below */
    close(fd);
    char hp[64], err[256];
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(http_start(&loop, hp, handler, NULL, &srv, err, sizeof(err)), 0);
    body_len = 3;
    nheld = ncalls = 0;
}

static void teardown(void)
{
    http_stop(srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* A client that sent `req` (not NUL-terminated: len bytes), non-blocking
 * after connect; rcvbuf > 0 makes its receive buffer that small. */
static int client(const char *req, size_t len, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    if (len)
        ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    return fd;
}

#define CLIENT(s) client((s), sizeof(s) - 1, 0)

/* 1 if the server has closed fd (EOF or reset) after whatever it sent;
 * what it sent goes to ans (up to cap - 1 bytes, NUL-terminated). */
static int closed_by_server(int fd, char *ans, size_t cap)
{
    size_t got = 0;
    char sink[4096];
    for (;;) {
        char *dst = ans != NULL && got + 1 < cap ? ans + got : sink;
        size_t room = ans != NULL && got + 1 < cap ? cap - 1 - got : sizeof(sink);
        ssize_t n = recv(fd, dst, room, 0);
        if (n > 0) {
            if (dst != sink)
                got += (size_t)n;
            continue;
        }
        if (ans != NULL)
            ans[got] = '\0';
        return n == 0 || errno != EAGAIN;
    }
}

static struct http_stats stats(void)
{
    struct http_stats st;
    http_stats(srv, &st);
    return st;
}

START_TEST(evicts_oldest_partial)
{
    int fds[FULL];
    char ans[256];
    for (int i = 0; i < FULL; i++)
        fds[i] = CLIENT("GET /metr");
    run_for(50);
    ck_assert_uint_eq(stats().open, FULL);
    int probe = CLIENT("GET /healthz HTTP/1.1\r\n\r\n");
    run_for(50);
    ck_assert_int_eq(closed_by_server(probe, ans, sizeof(ans)), 1);
    ck_assert_msg(strncmp(ans, "HTTP/1.1 200 OK", 15) == 0, "the probe got: %s", ans);
    ck_assert_int_eq(closed_by_server(fds[0], NULL, 0), 1);     /* the oldest went */
    for (int i = 1; i < FULL; i++)
        ck_assert_msg(!closed_by_server(fds[i], NULL, 0), "connection %d closed", i);
    struct http_stats st = stats();
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.accepted, FULL + 1);
    ck_assert_uint_eq(st.open, FULL - 1);
    for (int i = 0; i < FULL; i++)
        close(fds[i]);
    close(probe);
}
END_TEST

/* A request waiting for its handler is never closed by the server: when
 * every connection is one, the newcomer is refused; a client that does
 * not read its answer is evicted before any of them. */
START_TEST(never_evicts_handling)
{
    int fds[FULL];
    body_len = 0;                   /* the handler holds every request */
    for (int i = 0; i < FULL; i++)
        fds[i] = CLIENT("GET /status HTTP/1.1\r\n\r\n");
    run_for(50);
    ck_assert_int_eq(nheld, FULL);
    int late = CLIENT("GET /healthz HTTP/1.1\r\n\r\n");
    run_for(50);
    ck_assert_int_eq(closed_by_server(late, NULL, 0), 1);
    ck_assert_uint_eq(stats().refused, 1);
    ck_assert_uint_eq(stats().evicted, 0);
    for (int i = 0; i < FULL; i++)
        ck_assert_msg(!closed_by_server(fds[i], NULL, 0), "held request %d closed", i);
    /* the oldest gets a big answer it never reads: it is now closable */
    char *big = malloc(4 << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 4 << 20);
    http_respond(held[0], 200, "text/plain", big, 4 << 20);
    free(big);
    run_for(50);
    ck_assert_uint_eq(stats().open, FULL);                  /* still being written */
    int next = CLIENT("GET /healthz HTTP/1.1\r\n\r\n");
    run_for(50);
    ck_assert_uint_eq(stats().evicted, 1);
    ck_assert_uint_eq(stats().refused, 1);
    ck_assert_int_eq(nheld, FULL + 1);                      /* next got in */
    for (int i = 1; i <= FULL; i++)
        http_respond(held[i], 200, "text/plain", "ok\n", 3);
    run_for(50);
    char ans[256];
    for (int i = 1; i < FULL; i++) {
        ck_assert_int_eq(closed_by_server(fds[i], ans, sizeof(ans)), 1);
        ck_assert_msg(strncmp(ans, "HTTP/1.1 200 OK", 15) == 0, "request %d got: %s", i, ans);
    }
    ck_assert_int_eq(closed_by_server(next, ans, sizeof(ans)), 1);
    ck_assert_msg(strncmp(ans, "HTTP/1.1 200 OK", 15) == 0, "the newcomer got: %s", ans);
    ck_assert_uint_eq(stats().open, 0);
    for (int i = 0; i < FULL; i++)
        close(fds[i]);
    close(late);
    close(next);
}
END_TEST

START_TEST(deadlines)
{
    http_set_timeouts(srv, 150, 150, 150);
    body_len = 4 << 20;             /* more than the socket buffers take */
    int partial = CLIENT("GET /status HTT");
    int unread = client("GET /metrics HTTP/1.1\r\n\r\n", 26, 4096);
    run_for(50);
    ck_assert_int_eq(closed_by_server(partial, NULL, 0), 0);
    ck_assert_uint_eq(stats().open, 2);
    run_for(300);
    ck_assert_int_eq(closed_by_server(partial, NULL, 0), 1);
    ck_assert_int_eq(closed_by_server(unread, NULL, 0), 1);
    struct http_stats st = stats();
    ck_assert_uint_eq(st.request_timeouts, 1);
    ck_assert_uint_eq(st.write_timeouts, 1);
    ck_assert_uint_eq(st.open, 0);
    close(partial);
    close(unread);
}
END_TEST

START_TEST(limits)
{
    char big[9000], path[400], ans[512];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(path, 'p', sizeof(path));
    memcpy(path, "GET /", 5);
    memcpy(path + sizeof(path) - 13, " HTTP/1.1\r\n\r\n", 13);
    static const char garbage[] = "\x01\x02\xff\xfe binary \x00 garbage";
    int fd_big = client(big, sizeof(big), 0);
    int fd_path = client(path, sizeof(path), 0);
    int fd_bad = client(garbage, sizeof(garbage) - 1, 0);
    int fd_query = CLIENT("GET /healthz?x=1&y=2 HTTP/1.1\r\n\r\n");
    run_for(50);
    /* after an error answer the server lingers until the client goes */
    ck_assert_int_eq(closed_by_server(fd_bad, ans, sizeof(ans)), 1);   /* EOF: shut down */
    ck_assert_msg(strncmp(ans, "HTTP/1.1 400 Bad Request", 24) == 0, "garbage got: %s", ans);
    ck_assert_int_eq(closed_by_server(fd_big, ans, sizeof(ans)), 1);
    ck_assert_msg(strncmp(ans, "HTTP/1.1 413 Payload Too Large", 30) == 0, "big got: %s", ans);
    ck_assert_int_eq(closed_by_server(fd_path, ans, sizeof(ans)), 1);
    ck_assert_msg(strncmp(ans, "HTTP/1.1 414 URI Too Long", 25) == 0, "path got: %s", ans);
    ck_assert_int_eq(closed_by_server(fd_query, ans, sizeof(ans)), 1);
    ck_assert_msg(strncmp(ans, "HTTP/1.1 200 OK", 15) == 0, "a query string got: %s", ans);
    ck_assert_uint_eq(stats().open, 3);                     /* lingering */
    close(fd_bad);
    close(fd_big);
    close(fd_path);
    run_for(50);
    struct http_stats st = stats();
    ck_assert_uint_eq(st.open, 0);
    ck_assert_uint_eq(st.bad_request, 1);
    ck_assert_uint_eq(st.too_large, 2);
    ck_assert_int_eq(ncalls, 1);
    close(fd_query);
}
END_TEST

Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, evicts_oldest_partial);
    tcase_add_test(tc, never_evicts_handling);
    tcase_add_test(tc, deadlines);
    tcase_add_test(tc, limits);
    suite_add_tcase(s, tc);
    return s;
}
