/*
 * http.c - a one-request-per-connection HTTP server on libuv (see http.h).
 *
 * The endpoint is for probes and scrapers on loopback, but it must stay up
 * when something misbehaves there: a slowloris holding thousands of
 * connections open with a partial request line, an 8 MB header, binary
 * garbage, clients that send a request and never read the answer.  A
 * health probe must still get its answer at once.  So:
 *
 *   - Memory and file descriptors are bounded: at most MAX_CONNS
 *     connections of about 1 KB each (the path is kept, up to 255 bytes;
 *     the request is parsed as it comes, never buffered), plus each
 *     answer until the kernel has taken it.  Reads go through one static
 *     buffer (the loop thread is the only reader).
 *   - When full, a new connection closes the OLDEST connection the
 *     server may close (every state but HANDLING: a request waiting for
 *     its handler is never closed under it), rather than being turned
 *     away: whoever holds connections open without finishing a request
 *     loses them to newcomers, and a probe, the newest, gets in.  Every
 *     state has a deadline too (REQUEST_TIMEOUT_MS for the whole request,
 *     WRITE_TIMEOUT_MS for the answer, LINGER_TIMEOUT_MS after an error
 *     answer), so connections also go when nobody new comes.
 *   - A connection's first bytes are read right after accept(), not at
 *     the next turn of the loop: under a flood one turn may accept
 *     hundreds of connections, and a probe whose request is already there
 *     is answered before newer connections could evict it.
 *   - The listen backlog is 511 (as Redis and nginx): a flood of SYNs
 *     should not make a probe's SYN be dropped and retried a second later.
 *   - The process must not run out of file descriptors because of us:
 *     when accept() fails with EMFILE, libuv closes a descriptor it keeps
 *     in reserve, accepts and closes every pending connection, and mostly
 *     does not even tell us (it calls back only if the reserve is gone),
 *     so a probe would be reset however we evict.  So the limit is also
 *     at most half the RLIMIT_NOFILE soft limit (the rest is the job's:
 *     Kafka, Redis, checkpoint files).  An accept() error that is
 *     reported is counted and logged, rate-limited, and for EMFILE the
 *     oldest closable connection is closed to free a descriptor.
 *
 * A connection is one struct http_req with a TCP handle and a timer,
 * freed when both have closed.  Its states and the allowed moves are next
 * to enum conn_state; conn_move() is the only function that changes the
 * state.  Runs on the loop thread.
 */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <http_parser.h>

#include "../connectors/log.h"

#define MAX_REQUEST 8192            /* request line, headers and body */
#define MAX_PATH 256                /* with its NUL: a longer path is 414 */
#define MAX_LINGER (64 * 1024)      /* read and dropped after an error answer */
#define MAX_CONNS 256
#define LISTEN_BACKLOG 511
#define REQUEST_TIMEOUT_MS 5000     /* the whole request, from the connection */
#define WRITE_TIMEOUT_MS 10000      /* the answer, from the request */
#define LINGER_TIMEOUT_MS 2000      /* the client's going, after an error answer */
/* (http_set_timeouts() changes the three for tests) */

/* --- types ---------------------------------------------------------------- */

/*
 * A connection's states.  Allowed moves (conn_move() checks them):
 *
 *   READING   -> HANDLING   the whole request is there: the handler has it
 *   READING   -> WRITING    an error answer (400, 413, 414), then LINGERING
 *   READING   -> CLOSING    EOF or error, REQUEST_TIMEOUT_MS, evicted
 *   HANDLING  -> WRITING    http_respond()
 *   HANDLING  -> CLOSING    http_respond() found no memory for the answer
 *   WRITING   -> LINGERING  an error answer written: our side shut down
 *   WRITING   -> CLOSING    written, failed, WRITE_TIMEOUT_MS, evicted
 *   LINGERING -> CLOSING    the client's EOF, MAX_LINGER bytes,
 *                           LINGER_TIMEOUT_MS, evicted
 *   CLOSING   -> (none)     the handles close; the struct is freed after
 *
 * HANDLING is the one state the server never leaves by itself: the
 * handler owns the request until it answers (http_stop() answers 503).
 */
enum conn_state { CONN_READING, CONN_HANDLING, CONN_WRITING, CONN_LINGERING, CONN_CLOSING };

static const char *const state_names[] = { "reading", "handling", "writing", "lingering",
                                           "closing" };
static const unsigned allowed_moves[] = {
    [CONN_READING] = 1u << CONN_HANDLING | 1u << CONN_WRITING | 1u << CONN_CLOSING,
    [CONN_HANDLING] = 1u << CONN_WRITING | 1u << CONN_CLOSING,
    [CONN_WRITING] = 1u << CONN_LINGERING | 1u << CONN_CLOSING,
    [CONN_LINGERING] = 1u << CONN_CLOSING,
    [CONN_CLOSING] = 0,
};

struct http_req {
    struct http_server *srv;
    struct http_req *prev, *next;       /* in srv's list, oldest first */
    enum conn_state state;
    int handles;                        /* open: tcp, timer */
    int linger;                         /* WRITING an error answer: LINGERING after */
    int peer_eof;                       /* the client has shut down its side */
    int path_too_long;                  /* on_url stopped the parser: 414 */
    int in_query;                       /* on_url is past the '?' */
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_parser parser;
    size_t received;                    /* bytes read */
    size_t path_len;
    char path[MAX_PATH];
    union {                             /* one at a time: the answer, then a shutdown */
        uv_write_t wr;
        uv_shutdown_t sd;
    } u;
    char *out;                          /* the answer being written */
};

struct http_server {
    uv_tcp_t listener;
    uv_tcp_t spare;                     /* accepts and closes when no memory */
    int spare_busy, accept_pending;     /* spare closing; a connection waits for it */
    int handles;                        /* open: listener, spare while it closes */
    http_handler handler;
    void *ud;
    struct http_req *oldest, *newest;
    struct http_stats st;
    struct log_rate accept_rate;
    uint64_t request_ms, write_ms, linger_ms;   /* the deadlines */
    uint64_t max_conns;                 /* MAX_CONNS, or half the descriptors */
    int stopping;
};

/* --- connections ---------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static void on_timeout(uv_timer_t *t);

static void conn_closed(uv_handle_t *h)
{
    struct http_req *r = h->data;
    if (--r->handles > 0)
        return;
    free(r->out);
    free(r);
}

static void conn_unlink(struct http_req *r)
{
    struct http_server *s = r->srv;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        s->oldest = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        s->newest = r->prev;
    r->prev = r->next = NULL;
    s->st.open--;
}

/* The one place a connection's state changes; it also sets the state's
 * deadline and, for CLOSING, closes the handles. */
static void conn_move(struct http_req *r, enum conn_state to)
{
    if (!(allowed_moves[r->state] & (1u << to))) {
        log_msg(LOG_ERR, "http", "bug: connection moved from %s to %s", state_names[r->state],
                state_names[to]);
        abort();
    }
    r->state = to;
    switch (to) {
    case CONN_READING:
        break;
    case CONN_HANDLING:
        uv_timer_stop(&r->timer);
        break;
    case CONN_WRITING:
        uv_timer_start(&r->timer, on_timeout, r->srv->write_ms, 0);
        break;
    case CONN_LINGERING:
        uv_timer_start(&r->timer, on_timeout, r->srv->linger_ms, 0);
        break;
    case CONN_CLOSING:
        conn_unlink(r);
        uv_close((uv_handle_t *)&r->tcp, conn_closed);
        uv_close((uv_handle_t *)&r->timer, conn_closed);
        break;
    }
}

static void conn_close(struct http_req *r)
{
    if (r->state != CONN_CLOSING)
        conn_move(r, CONN_CLOSING);
}

/* The oldest connection the server may close, or NULL. */
static struct http_req *oldest_closable(const struct http_server *s)
{
    for (struct http_req *c = s->oldest; c != NULL; c = c->next)
        if (c->state != CONN_HANDLING)
            return c;
    return NULL;
}

static void on_timeout(uv_timer_t *t)
{
    struct http_req *r = t->data;
    if (r->state == CONN_READING)
        r->srv->st.request_timeouts++;
    else if (r->state == CONN_WRITING)
        r->srv->st.write_timeouts++;
    else if (r->state != CONN_LINGERING)
        return;
    conn_close(r);
}

static void on_shutdown(uv_shutdown_t *sd, int status)
{
    (void)sd, (void)status;         /* on_read closes at the client's EOF */
}

/* An answer written (or failed, or cancelled by a close).  An error
 * answer to a request not read to its end: closing now, with unread
 * bytes, would reset the connection and lose the answer; so shut down our
 * side and read (and drop) until the client closes. */
static void on_written(uv_write_t *w, int status)
{
    struct http_req *r = w->data;
    if (r->state != CONN_WRITING)
        return;                     /* closed meanwhile: status is ECANCELED */
    if (status < 0 || !r->linger || r->peer_eof) {
        conn_close(r);
        return;
    }
    conn_move(r, CONN_LINGERING);
    r->u.sd.data = r;
    if (uv_shutdown(&r->u.sd, (uv_stream_t *)&r->tcp, on_shutdown) < 0)
        conn_close(r);
}

static void conn_answer(struct http_req *r, int status, const char *content_type,
                        const char *body, size_t len)
{
    char head[256];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", status,
                      reason(status), content_type, len);
    r->out = malloc((size_t)hl + len);
    if (r->out == NULL) {
        conn_close(r);
        return;
    }
    memcpy(r->out, head, (size_t)hl);
    if (len)
        memcpy(r->out + hl, body, len);
    conn_move(r, CONN_WRITING);
    uv_buf_t buf = uv_buf_init(r->out, (unsigned)((size_t)hl + len));
    r->u.wr.data = r;
    if (uv_write(&r->u.wr, (uv_stream_t *)&r->tcp, &buf, 1, on_written) < 0)
        conn_close(r);
}

/* 400, 413, 414: answered, then the rest of the request is dropped. */
static void conn_reject(struct http_req *r, int status)
{
    static const char *const bodies[] = { "bad request\n", "request too large\n",
                                          "path too long\n" };
    const char *body = bodies[status == 413 ? 1 : status == 414 ? 2 : 0];
    if (status == 400)
        r->srv->st.bad_request++;
    else
        r->srv->st.too_large++;
    r->linger = 1;
    conn_answer(r, status, "text/plain", body, strlen(body));
}

void http_respond(struct http_req *r, int status, const char *content_type,
                  const char *body, size_t len)
{
    if (r->state != CONN_HANDLING)
        return;                     /* answered already */
    conn_answer(r, status, content_type, body, len);
}

/* --- reading a request ---------------------------------------------------- */

/* Keeps the path, up to MAX_PATH - 1 bytes; the query string is dropped. */
static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_req *r = p->data;
    if (r->in_query)
        return 0;
    const char *q = memchr(at, '?', len);
    if (q != NULL) {
        len = (size_t)(q - at);
        r->in_query = 1;
    }
    if (r->path_len + len >= sizeof(r->path)) {
        r->path_too_long = 1;
        return -1;
    }
    memcpy(r->path + r->path_len, at, len);
    r->path_len += len;
    r->path[r->path_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    struct http_req *r = p->data;
    if (r->state != CONN_READING)
        return -1;                  /* a second request on the connection: ignored */
    uv_read_stop((uv_stream_t *)&r->tcp);
    conn_move(r, CONN_HANDLING);
    r->srv->handler(r->srv->ud, r, http_method_str((enum http_method)p->method), r->path);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_complete,
};

/* The loop thread's one read buffer: what is read is parsed at once. */
static char read_buf[4096];

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h, (void)hint;
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

/* n bytes read, or n < 0: EOF or an error. */
static void conn_input(struct http_req *r, const char *data, ssize_t n)
{
    if (n < 0) {
        if (r->state == CONN_WRITING && n == UV_EOF) {
            r->peer_eof = 1;        /* it may still read the answer */
            uv_read_stop((uv_stream_t *)&r->tcp);
        } else {
            conn_close(r);
        }
        return;
    }
    r->received += (size_t)n;
    if (r->state == CONN_LINGERING || r->state == CONN_WRITING) {
        if (r->received > MAX_REQUEST + MAX_LINGER)
            conn_close(r);
        return;
    }
    if (r->state != CONN_READING)
        return;
    if (r->received > MAX_REQUEST) {
        conn_reject(r, 413);
        return;
    }
    size_t done = http_parser_execute(&r->parser, &settings, data, (size_t)n);
    if (r->state != CONN_READING)
        return;
    if (done != (size_t)n || r->parser.http_errno != HPE_OK)
        conn_reject(r, r->path_too_long ? 414 : 400);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n == 0)
        return;                     /* EAGAIN; to http-parser, 0 bytes would mean EOF */
    conn_input(s->data, buf->base, n);
}

/* Reads what the client has already sent, before the loop turns (see the
 * opening comment).  libuv has no non-blocking read of its own; a recv()
 * on its descriptor is safe here: libuv reads only when the descriptor
 * is readable and takes EAGAIN as "nothing yet". */
static void conn_read_now(struct http_req *r)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&r->tcp, &fd) < 0)
        return;
    ssize_t n = recv(fd, read_buf, sizeof(read_buf), MSG_DONTWAIT);
    if (n > 0)
        conn_input(r, read_buf, n);
    else if (n == 0)
        conn_input(r, NULL, UV_EOF);
}

/* --- accepting ------------------------------------------------------------ */

static void on_connection(uv_stream_t *server, int status);

static void server_release(struct http_server *s)
{
    if (--s->handles == 0)
        free(s);
}

static void server_handle_closed(uv_handle_t *h)
{
    server_release(h->data);
}

static void spare_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->spare_busy = 0;
    if (s->accept_pending && !s->stopping) {
        s->accept_pending = 0;
        on_connection((uv_stream_t *)&s->listener, 0);
    }
    server_release(s);
}

/* No memory for a connection: accept it into the spare handle and close
 * it at once.  A connection left in the backlog would stop libuv's
 * accepting for good (it waits for the uv_accept() that never comes). */
static void refuse_without_memory(struct http_server *s)
{
    s->st.refused++;
    if (s->spare_busy) {
        s->accept_pending = 1;      /* spare_closed() comes back for it */
        return;
    }
    uv_tcp_init(s->listener.loop, &s->spare);
    s->spare.data = s;
    s->spare_busy = 1;
    s->handles++;                   /* s stays until spare_closed() */
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->spare) < 0)
        log_rate_msg(&s->accept_rate, LOG_WARNING, "http", "accept failed with no memory");
    uv_close((uv_handle_t *)&s->spare, spare_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *srv = server->data;
    if (srv->stopping)
        return;
    if (status < 0) {
        srv->st.accept_errors++;
        log_rate_msg(&srv->accept_rate, LOG_WARNING, "http", "accept: %s%s",
                     uv_strerror(status),
                     status == UV_EMFILE || status == UV_ENFILE
                         ? " (out of file descriptors: pending connections dropped)" : "");
        if (status == UV_EMFILE || status == UV_ENFILE) {
            struct http_req *victim = oldest_closable(srv);
            if (victim != NULL) {
                srv->st.evicted++;
                conn_close(victim);
            }
        }
        return;
    }
    struct http_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        refuse_without_memory(srv);
        return;
    }
    r->srv = srv;
    r->state = CONN_READING;
    uv_tcp_init(server->loop, &r->tcp);
    uv_timer_init(server->loop, &r->timer);
    r->tcp.data = r->timer.data = r;
    r->handles = 2;
    r->prev = srv->newest;
    if (srv->newest != NULL)
        srv->newest->next = r;
    else
        srv->oldest = r;
    srv->newest = r;
    srv->st.open++;
    if (uv_accept(server, (uv_stream_t *)&r->tcp) < 0) {
        conn_close(r);
        return;
    }
    srv->st.accepted++;
    if (srv->st.open > srv->max_conns) {
        struct http_req *victim = oldest_closable(srv);
        if (victim == r) {          /* every other one waits for its handler */
            srv->st.refused++;
            conn_close(r);
            return;
        }
        srv->st.evicted++;
        conn_close(victim);
    }
    uv_timer_start(&r->timer, on_timeout, srv->request_ms, 0);
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    conn_read_now(r);
    if (r->state == CONN_READING &&
        uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read) < 0)
        conn_close(r);
    else if (r->state == CONN_WRITING && r->linger)
        uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);   /* to drop */
}

/* --- API ------------------------------------------------------------------ */

int http_start(uv_loop_t *loop, const char *hostport, http_handler handler, void *ud,
               struct http_server **out, char *err, size_t errsize)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    *out = NULL;
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
        snprintf(err, errsize, "bad address %s", hostport);
        return -EINVAL;
    }
    int port = atoi(colon + 1);
    const char *h = hostport;
    size_t hl = (size_t)(colon - hostport);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        if (strcmp(host, "localhost") != 0 ||
            uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)&addr) != 0) {
            snprintf(err, errsize, "%s is not an IP address", host);
            return -EINVAL;
        }
    }
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    s->handler = handler;
    s->ud = ud;
    s->handles = 1;
    s->request_ms = REQUEST_TIMEOUT_MS;
    s->write_ms = WRITE_TIMEOUT_MS;
    s->linger_ms = LINGER_TIMEOUT_MS;
    s->max_conns = MAX_CONNS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 2 < MAX_CONNS) {
        s->max_conns = rl.rlim_cur / 2 > 8 ? rl.rlim_cur / 2 : 8;
        log_msg(LOG_WARNING, "http", "at most %" PRIu64 " connections at once, not %d: the "
                "file descriptor limit (RLIMIT_NOFILE) is %" PRIu64, s->max_conns, MAX_CONNS,
                (uint64_t)rl.rlim_cur);
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        snprintf(err, errsize, "listen on %s: %s", hostport, uv_strerror(rc));
        s->stopping = 1;
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
        return rc;
    }
    *out = s;
    return 0;
}

void http_stats(const struct http_server *s, struct http_stats *out)
{
    if (s == NULL)
        memset(out, 0, sizeof(*out));
    else
        *out = s->st;
}

void http_set_timeouts(struct http_server *s, unsigned request_ms, unsigned write_ms,
                       unsigned linger_ms)
{
    s->request_ms = request_ms;
    s->write_ms = write_ms;
    s->linger_ms = linger_ms;
}

const struct http_server *http_req_server(const struct http_req *req)
{
    return req->srv;
}

void http_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    s->stopping = 1;
    while (s->oldest != NULL) {
        struct http_req *r = s->oldest;
        if (r->state == CONN_HANDLING)
            http_respond(r, 503, "text/plain", "stopping\n", 9);
        conn_close(r);
    }
    uv_close((uv_handle_t *)&s->listener, server_handle_closed);
}
