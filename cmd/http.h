/*
 * http.h - the small HTTP/1.1 server behind `http:` (metrics, health,
 * status, savepoints).
 *
 * One request per connection (responses carry Connection: close), parsed
 * with http-parser, at most 8 KiB of request (larger: 413; unparsable:
 * 400), sent within 10 s, at most 64 connections at once.  The handler gets the method
 * and path and answers with http_respond(), now or later: a request stays
 * valid until it is answered, even if the client has gone (the answer is
 * then dropped).  Runs on the loop thread.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stddef.h>
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

/* Stops listening and closes every connection (unanswered requests get
 * 503). */
void http_stop(struct http_server *s);

#endif
