/*
 * http.h - the small HTTP/1.1 server behind `http:` (metrics, health,
 * status, savepoints).
 *
 * One request per connection (responses carry Connection: close), parsed
 * with http-parser.  Limits (why: http.c's opening comment):
 *   - at most 8 KiB of request line, headers and body (larger: 413) and
 *     a path of at most 255 bytes (longer: 414; the query string is not
 *     kept); unparsable: 400.  After an error answer the rest of the
 *     request is read and dropped, at most 64 KiB or 2 s, then closed;
 *   - the whole request within 5 s of the connection, the answer written
 *     within 10 s of the request;
 *   - at most 256 connections at once (or half the RLIMIT_NOFILE soft
 *     limit, if that is lower).  When full, a new connection
 *     closes the oldest one that is not waiting for its handler (a
 *     partial request, an error answer lingering, an answer the client
 *     does not read), so a flood of idle connections cannot shut out a
 *     health probe.
 * The handler gets the method and path and answers with http_respond(),
 * now or later: a request stays valid until it is answered, even if the
 * client has gone (the answer is then dropped); the server never closes
 * a request waiting for its answer.  Runs on the loop thread.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct http_req;

typedef void (*http_handler)(void *ud, struct http_req *req, const char *method,
                             const char *path);

/* Listens on "host:port" ("[v6]:port" for IPv6).  Returns 0 or a negative
 * code with a message in err. */
int http_start(uv_loop_t *loop, const char *hostport, http_handler handler, void *ud,
               struct http_server **out, char *err, size_t errsize);

void http_respond(struct http_req *req, int status, const char *content_type,
                  const char *body, size_t len);

/* What the server has done since http_start(), for /metrics: counters
 * only grow (Prometheus counters), `open` is a gauge. */
struct http_stats {
    uint64_t accepted;          /* connections accepted */
    uint64_t evicted;           /* closed to let a new one in (the server was full) */
    uint64_t refused;           /* closed at once: full of requests being handled, or no memory */
    uint64_t accept_errors;     /* accept() failed (EMFILE: out of file descriptors, ...) */
    uint64_t bad_request;       /* answered 400 (unparsable) */
    uint64_t too_large;         /* answered 413 (over 8 KiB) or 414 (path over 255 bytes) */
    uint64_t request_timeouts;  /* closed: no whole request within 5 s */
    uint64_t write_timeouts;    /* closed: the answer not taken within 10 s */
    uint64_t open;              /* connections open now */
};

/* Copies the server's figures into *out (all zero when s is NULL). */
void http_stats(const struct http_server *s, struct http_stats *out);

/* Sets the three deadlines (defaults 5000, 10000, 2000 ms), for tests;
 * deadlines started before the call keep their length. */
void http_set_timeouts(struct http_server *s, unsigned request_ms, unsigned write_ms,
                       unsigned linger_ms);

/* The server a request came through (to read http_stats() from a handler). */
const struct http_server *http_req_server(const struct http_req *req);

/* Stops listening and closes every connection (unanswered requests get
 * 503). */
void http_stop(struct http_server *s);

#endif
