/*
 * http.c - a one-request-per-connection HTTP server on libuv (see http.h).
 */
#include "http.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#define MAX_REQUEST 8192
#define MAX_LINGER (64 * 1024)      /* read and dropped after an error answer */
#define MAX_CONNS 256
#define REQUEST_TIMEOUT_MS 10000    /* to send a request, or to go after an error answer */

struct http_req {
    struct http_server *srv;
    struct http_req *next, **prevp;     /* in srv->conns */
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles;                        /* open: tcp, timer */
    http_parser parser;
    char url[1024];
    size_t url_len;
    size_t received;
    int dispatched, answered, closing, linger;
    uv_write_t wr;
    uv_shutdown_t sd;
    char *out;
};

struct http_server {
    uv_tcp_t listener;
    http_handler handler;
    void *ud;
    struct http_req *conns;
    size_t nconns;
    uint64_t evicted;                   /* idle connections closed to make room */
    int stopping;
};

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static void conn_closed(uv_handle_t *h)
{
    struct http_req *r = h->data;
    if (--r->handles > 0)
        return;
    free(r->out);
    free(r);
}

static void conn_close(struct http_req *r)
{
    if (r->closing)
        return;
    r->closing = 1;
    *r->prevp = r->next;
    if (r->next != NULL)
        r->next->prevp = r->prevp;
    r->srv->nconns--;
    uv_close((uv_handle_t *)&r->tcp, conn_closed);
    uv_close((uv_handle_t *)&r->timer, conn_closed);
}

/* A client that does not finish its request (or, after an error answer,
 * does not go) in time is dropped.  A request being answered is not. */
static void on_timeout(uv_timer_t *t)
{
    struct http_req *r = t->data;
    if (!r->dispatched || r->linger)
        conn_close(r);
}

static void on_shutdown(uv_shutdown_t *sd, int status)
{
    (void)sd, (void)status;         /* on_read closes at the client's EOF */
}

/* An error answer to a request not read to its end: closing now, with
 * unread bytes, would reset the connection and lose the answer; so shut
 * down our side and read (and drop) until the client closes. */
static void on_written(uv_write_t *w, int status)
{
    struct http_req *r = w->data;
    if (status < 0 || !r->linger ||
        uv_shutdown(&r->sd, (uv_stream_t *)&r->tcp, on_shutdown) < 0)
        conn_close(r);
}

void http_respond(struct http_req *r, int status, const char *content_type,
                  const char *body, size_t len)
{
    if (r->answered)
        return;
    r->answered = 1;
    if (r->closing)
        return;                     /* the client is gone; nothing to answer */
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
    uv_buf_t buf = uv_buf_init(r->out, (unsigned)((size_t)hl + len));
    r->wr.data = r;
    if (uv_write(&r->wr, (uv_stream_t *)&r->tcp, &buf, 1, on_written) < 0)
        conn_close(r);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_req *r = p->data;
    if (r->url_len + len >= sizeof(r->url))
        return -1;
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    struct http_req *r = p->data;
    if (r->dispatched)
        return 0;
    r->dispatched = 1;
    char *q = strchr(r->url, '?');
    if (q != NULL)
        *q = '\0';
    uv_read_stop((uv_stream_t *)&r->tcp);
    r->srv->handler(r->srv->ud, r, http_method_str((enum http_method)p->method), r->url);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_complete,
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char mem[4096];
    (void)h, (void)hint;
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct http_req *r = s->data;
    if (n < 0) {
        if (r->dispatched && !r->answered)
            uv_read_stop(s);        /* keep it until the handler answers */
        else
            conn_close(r);
        return;
    }
    if (n == 0)
        return;                     /* EAGAIN; to http-parser, 0 bytes would mean EOF */
    r->received += (size_t)n;
    if (r->linger) {
        if (r->received > MAX_REQUEST + MAX_LINGER)
            conn_close(r);
        return;
    }
    if (r->received > MAX_REQUEST) {
        r->dispatched = r->linger = 1;
        http_respond(r, 413, "text/plain", "request too large\n", 18);
        return;
    }
    size_t done = http_parser_execute(&r->parser, &settings, buf->base, (size_t)n);
    if (r->dispatched)
        return;
    if (done != (size_t)n || r->parser.http_errno != HPE_OK) {
        r->dispatched = r->linger = 1;
        http_respond(r, 400, "text/plain", "bad request\n", 12);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *srv = server->data;
    if (status < 0 || srv->stopping)
        return;
    struct http_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    r->srv = srv;
    uv_tcp_init(server->loop, &r->tcp);
    uv_timer_init(server->loop, &r->timer);
    r->tcp.data = r->timer.data = r;
    r->handles = 2;
    srv->nconns++;
    r->next = srv->conns;
    r->prevp = &srv->conns;
    if (srv->conns != NULL)
        srv->conns->prevp = &r->next;
    srv->conns = r;
    if (uv_accept(server, (uv_stream_t *)&r->tcp) < 0) {
        conn_close(r);
        return;
    }
    /* full: the oldest connection that has not sent a whole request goes
     * (a slowloris holds connections open without ever finishing one; a
     * health probe, the newest, must still get in), else the new one */
    if (srv->nconns > MAX_CONNS) {
        struct http_req *victim = NULL;
        for (struct http_req *c = r->next; c != NULL; c = c->next)
            if (!c->dispatched || c->linger)
                victim = c;         /* the list is newest first: the last is oldest */
        if (victim == NULL) {
            conn_close(r);
            return;
        }
        srv->evicted++;
        conn_close(victim);
    }
    uv_timer_start(&r->timer, on_timeout, REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
}

static void listener_closed(uv_handle_t *h)
{
    free(h->data);
}

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
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
    if (rc < 0) {
        snprintf(err, errsize, "listen on %s: %s", hostport, uv_strerror(rc));
        s->stopping = 1;
        uv_close((uv_handle_t *)&s->listener, listener_closed);
        return rc;
    }
    *out = s;
    return 0;
}

void http_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    s->stopping = 1;
    while (s->conns != NULL) {
        struct http_req *r = s->conns;
        if (r->dispatched && !r->answered)
            http_respond(r, 503, "text/plain", "stopping\n", 9);
        conn_close(r);
    }
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}
