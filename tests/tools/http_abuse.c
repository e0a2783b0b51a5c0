/*
 * http_abuse - misbehaving clients and a load generator for sluice's HTTP
 * endpoint (cmd/http.c), for tests and measurements.
 *
 *   http_abuse abuse --port P [--host H] [--idle N] [--big-header BYTES]
 *                    [--garbage N] [--probe PATH]... [--probe-any PATH]...
 *                    [--limit-ms MS] [--wait-closed SECONDS]
 *
 * In this order: opens N connections that each send a partial request
 * line ("GET /metr") and then nothing (a slowloris); sends a request
 * whose header is BYTES long on one connection, and 5,000 bytes of
 * (seeded) binary garbage on each of N others, and sees what the server
 * answers and that it ends each of them; then, with the idle connections
 * still open, times one request to each PATH: --probe must answer 200,
 * --probe-any any complete HTTP answer, each within MS milliseconds
 * (default 100).  With --wait-closed, waits until the server has closed
 * every idle connection (evicted or timed out), at most SECONDS.
 * Prints what it saw, one line per step (the figures as key=value), and
 * exits 0 when every check held, 1 when one did not (the line says what
 * was expected), 2 on bad usage or setup.
 *
 *   http_abuse load --port P [--host H] --url-path PATH [--seconds S]
 *                   [--conns C]
 *
 * C clients (default 4), each a loop of: connect, GET PATH, read the
 * answer to its end (the server closes: one request per connection),
 * for S seconds (default 5).  Prints requests per second and the mean
 * and 99th percentile latency (connect to the answer's end); exits 1 if
 * any answer was not 200 or a connection failed.
 *
 * It raises its own RLIMIT_NOFILE soft limit to what it needs (up to the
 * hard limit).  Single-threaded: poll() and epoll.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATHS 16
#define GARBAGE_BYTES 5000
#define END_WAIT_MS 10000           /* the server must end a bad connection within */

struct opts {
    const char *host;
    int port;
    int idle, garbage;
    long big_header;
    const char *probe[MAX_PATHS], *probe_any[MAX_PATHS];
    int nprobe, nprobe_any;
    double limit_ms, wait_closed_s;
    const char *url_path;
    double seconds;
    int conns;
};

static struct sockaddr_in server;
static int failures;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void check_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A check that did not hold: says what was expected, and is counted. */
static void check_failed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAILED: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
}

static int raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if ((long)rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < need) {
        fprintf(stderr, "http_abuse: needs %ld file descriptors, the hard limit is %ld\n",
                need, (long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = (rlim_t)need;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* A blocking connection to the server, or -1 (errno set). */
static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Reads until EOF, an error or deadline_ms (now_ms() clock) into buf (the
 * rest is counted, not kept).  Returns the bytes read; *how says how it
 * ended: "eof", "reset" (or another error), "timeout". */
static size_t read_to_end(int fd, char *buf, size_t cap, double deadline_ms, const char **how)
{
    size_t got = 0;
    char sink[4096];
    for (;;) {
        double left = deadline_ms - now_ms();
        if (left <= 0) {
            *how = "timeout";
            return got;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll(&p, 1, (int)left + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue;               /* the deadline is checked above */
        char *dst = got + 1 < cap ? buf + got : sink;
        size_t room = got + 1 < cap ? cap - 1 - got : sizeof(sink);
        ssize_t n = recv(fd, dst, room, MSG_DONTWAIT);
        if (n == 0) {
            *how = "eof";
            break;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            *how = errno == ECONNRESET ? "reset" : strerror(errno);
            break;
        }
        if (dst == buf + got)
            buf[got + (size_t)n] = '\0';
        got += (size_t)n;
    }
    if (got < cap)
        buf[got] = '\0';
    return got;
}

/* The status of an HTTP answer whose body is complete (Content-Length
 * bytes after the head), or 0. */
static int complete_answer(const char *a, size_t len)
{
    int status;
    if (sscanf(a, "HTTP/1.%*[01] %d", &status) != 1)
        return 0;
    const char *end = strstr(a, "\r\n\r\n");
    const char *cl = strstr(a, "Content-Length:");
    if (end == NULL || cl == NULL || cl > end)
        return 0;
    size_t body = strtoul(cl + 15, NULL, 10);
    return (size_t)(end + 4 - a) + body == len ? status : 0;
}

static void status_line(const char *a, char *out, size_t cap)
{
    size_t n = strcspn(a, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, a, n);
    out[n] = '\0';
}

/* --- abuse ---------------------------------------------------------------- */

/* Closes the idle connections the server has closed; returns how many
 * are still open. */
static int idle_reap(int *fds, int n)
{
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    int open = 0;
    if (p == NULL)
        return -1;
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    poll(p, (nfds_t)n, 0);
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        if (p[i].revents) {
            char c[64];
            ssize_t r = recv(fds[i], c, sizeof(c), MSG_DONTWAIT);
            if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
        }
        open++;
    }
    free(p);
    return open;
}

static void big_header(long bytes)
{
    int fd = dial();
    if (fd < 0) {
        printf("FAILED: big_header: connect: %s\n", strerror(errno));
        failures++;
        return;
    }
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    static const char head[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ";
    char chunk[65536];
    memset(chunk, 'a', sizeof(chunk));
    long sent = 0;
    const char *stop = "all sent";
    double t0 = now_ms();
    if (send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0)
        stop = strerror(errno);
    else
        sent = (long)sizeof(head) - 1;
    while (sent < bytes && strcmp(stop, "all sent") == 0) {
        size_t n = (size_t)(bytes - sent) < sizeof(chunk) ? (size_t)(bytes - sent) : sizeof(chunk);
        ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);
        if (w < 0)
            stop = errno == EAGAIN ? "the server stopped reading (send timed out)" : strerror(errno);
        else
            sent += w;
    }
    char ans[512] = "";
    const char *how;
    read_to_end(fd, ans, sizeof(ans), now_ms() + END_WAIT_MS, &how);
    char line[128];
    status_line(ans, line, sizeof(line));
    printf("big_header: sent=%ld of %ld bytes (%s); answer: %s; the server ended it: %s after %.0f ms\n",
           sent, bytes, stop, line[0] ? line : "(none read)", how, now_ms() - t0);
    if (strcmp(how, "timeout") == 0)
        check_failed("big_header: expected the server to end the connection within %d ms",
                     END_WAIT_MS);
    if (line[0] && strncmp(line, "HTTP/1.1 413", 12) != 0)
        check_failed("big_header: expected no answer or 413, got %s", line);
    close(fd);
}

static void garbage(int n)
{
    uint64_t x = 0x9e3779b97f4a7c15u;   /* xorshift64, seeded: the same bytes every run */
    char bytes[GARBAGE_BYTES];
    int answered400 = 0, ended = 0;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof(bytes); j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            bytes[j] = (char)(x >> 24);
        }
        bytes[0] = '\x01';          /* never the first letter of a method */
        int fd = dial();
        if (fd < 0) {
            printf("FAILED: garbage: connect: %s\n", strerror(errno));
            failures++;
            return;
        }
        send(fd, bytes, sizeof(bytes), MSG_NOSIGNAL);   /* a reset here shows below */
        char ans[512] = "";
        const char *how;
        read_to_end(fd, ans, sizeof(ans), now_ms() + END_WAIT_MS, &how);
        answered400 += strncmp(ans, "HTTP/1.1 400", 12) == 0;
        ended += strcmp(how, "timeout") != 0;
        close(fd);
    }
    printf("garbage: connections=%d answered_400=%d ended_by_server=%d\n", n, answered400, ended);
    if (answered400 != n)
        check_failed("garbage: expected a 400 answer on each of %d connections, got %d", n,
                     answered400);
    if (ended != n)
        check_failed("garbage: expected the server to end each of %d connections, it ended %d",
                     n, ended);
}

/* One request; 0 or the status of a complete answer within limit_ms. */
static void probe(const char *path, int any, double limit_ms)
{
    double t0 = now_ms();
    int fd = dial();
    if (fd < 0) {
        printf("FAILED: probe %s: connect: %s\n", path, strerror(errno));
        failures++;
        return;
    }
    char req[512];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    static char ans[1 << 20];
    const char *how = "send failed";
    size_t got = 0;
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) == len)
        got = read_to_end(fd, ans, sizeof(ans), t0 + 5000, &how);
    double ms = now_ms() - t0;
    close(fd);
    int status = got < sizeof(ans) ? complete_answer(ans, got) : 0;
    char line[128] = "";
    if (got)
        status_line(ans, line, sizeof(line));
    printf("probe %s: status=%d ms=%.2f bytes=%zu (%s; ended: %s)\n", path, status, ms, got,
           line[0] ? line : "no answer", how);
    if (status == 0)
        check_failed("probe %s: expected a complete HTTP answer", path);
    else if (!any && status != 200)
        check_failed("probe %s: expected 200, got %d", path, status);
    if (ms > limit_ms)
        check_failed("probe %s: expected the answer within %.0f ms, it took %.1f ms", path, limit_ms,
                     ms);
}

static int abuse(const struct opts *o)
{
    if (raise_nofile(o->idle + 64) < 0)
        return 2;
    int *fds = calloc((size_t)(o->idle > 0 ? o->idle : 1), sizeof(int));
    if (fds == NULL)
        return 2;
    double t0 = now_ms();
    for (int i = 0; i < o->idle; i++) {
        fds[i] = dial();
        if (fds[i] < 0) {
            fprintf(stderr, "http_abuse: idle connection %d: %s\n", i, strerror(errno));
            return 2;
        }
        send(fds[i], "GET /metr", 9, MSG_NOSIGNAL);   /* then nothing */
    }
    printf("idle: opened=%d in %.0f ms, each sent \"GET /metr\" and nothing more\n", o->idle,
           now_ms() - t0);
    if (o->big_header > 0)
        big_header(o->big_header);
    if (o->garbage > 0)
        garbage(o->garbage);
    int open = idle_reap(fds, o->idle);
    printf("idle_open_at_probe=%d (of %d, %.0f ms after the first was opened)\n", open, o->idle,
           now_ms() - t0);
    for (int i = 0; i < o->nprobe; i++)
        probe(o->probe[i], 0, o->limit_ms);
    for (int i = 0; i < o->nprobe_any; i++)
        probe(o->probe_any[i], 1, o->limit_ms);
    if (o->wait_closed_s > 0) {
        double w0 = now_ms();
        while ((open = idle_reap(fds, o->idle)) > 0 && now_ms() - w0 < o->wait_closed_s * 1000) {
            struct timespec ts = { 0, 20 * 1000 * 1000 };     /* polling the fds' state */
            nanosleep(&ts, NULL);
        }
        printf("idle_closed=%d of %d, %.0f ms after the first was opened\n", o->idle - open,
               o->idle, now_ms() - t0);
        if (open > 0)
            check_failed("idle: expected the server to close every idle connection within %.0f s; "
                         "%d still open", o->wait_closed_s, open);
    }
    for (int i = 0; i < o->idle; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    printf("result: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

/* --- load ----------------------------------------------------------------- */

struct client {
    int fd;
    double start;
    size_t got, sent;
    char buf[8192];                 /* the answer's head; the rest is counted */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int client_start(int ep, struct client *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    c->start = now_ms();
    c->got = c->sent = 0;
    if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) < 0 && errno != EINPROGRESS)
        return -1;
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int load(const struct opts *o)
{
    if (o->url_path == NULL || o->conns < 1 || o->seconds <= 0) {
        fprintf(stderr, "http_abuse load: --url-path, --seconds > 0 and --conns >= 1 are needed\n");
        return 2;
    }
    if (raise_nofile(o->conns + 64) < 0)
        return 2;
    char req[512];
    int reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                          o->url_path);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct client *cl = calloc((size_t)o->conns, sizeof(*cl));
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof(*lat));
    long errors = 0, non200 = 0;
    if (ep < 0 || cl == NULL || lat == NULL)
        return 2;
    for (int i = 0; i < o->conns; i++)
        if (client_start(ep, &cl[i]) < 0) {
            perror("http_abuse: connect");
            return 2;
        }
    double t0 = now_ms(), end = t0 + o->seconds * 1000;
    struct epoll_event evs[64];
    while (now_ms() < end) {
        int k = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < k; i++) {
            struct client *c = evs[i].data.ptr;
            int done = 0;
            if ((evs[i].events & EPOLLOUT) && c->sent < (size_t)reqlen) {
                ssize_t w = send(c->fd, req + c->sent, (size_t)reqlen - c->sent, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                    errors++;
                    done = 1;
                } else if (w > 0 && (c->sent += (size_t)w) == (size_t)reqlen) {
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!done && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                for (;;) {
                    char sink[65536];
                    int head = c->got + 1 < sizeof(c->buf);
                    ssize_t r = recv(c->fd, head ? c->buf + c->got : sink,
                                     head ? sizeof(c->buf) - 1 - c->got : sizeof(sink), 0);
                    if (r > 0) {
                        if (head)
                            c->buf[c->got + (size_t)r] = '\0';
                        c->got += (size_t)r;
                        continue;
                    }
                    if (r == 0) {
                        int st = 0;
                        if (sscanf(c->buf, "HTTP/1.%*[01] %d", &st) != 1 || st != 200)
                            non200++;
                        if (n == cap) {
                            double *g = realloc(lat, 2 * cap * sizeof(*lat));
                            if (g == NULL)
                                return 2;
                            lat = g, cap *= 2;
                        }
                        lat[n++] = now_ms() - c->start;
                        done = 1;
                    } else if (errno != EAGAIN) {
                        errors++;
                        done = 1;
                    }
                    break;
                }
            }
            if (done) {
                close(c->fd);
                if (client_start(ep, c) < 0) {
                    perror("http_abuse: connect");
                    return 2;
                }
            }
        }
    }
    double secs = (now_ms() - t0) / 1000;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, n, sizeof(*lat), cmp_double);
    double p99 = n ? lat[(size_t)((double)(n - 1) * 0.99)] : 0;
    printf("load %s: conns=%d seconds=%.1f requests=%zu req_per_sec=%.0f mean_ms=%.3f "
           "p99_ms=%.3f errors=%ld non_200=%ld\n", o->url_path, o->conns, secs, n, n / secs,
           n ? sum / (double)n : 0, p99, errors, non200);
    for (int i = 0; i < o->conns; i++)
        close(cl[i].fd);
    free(cl);
    free(lat);
    close(ep);
    return errors || non200 || n == 0 ? 1 : 0;
}

/* --- main ----------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: http_abuse abuse --port P [--host H] [--idle N] [--big-header BYTES]\n"
            "                        [--garbage N] [--probe PATH]... [--probe-any PATH]...\n"
            "                        [--limit-ms MS] [--wait-closed SECONDS]\n"
            "       http_abuse load --port P [--host H] --url-path PATH [--seconds S] [--conns C]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct opts o = { .host = "127.0.0.1", .limit_ms = 100, .seconds = 5, .conns = 4 };
    if (argc < 2)
        return usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--port") == 0)
            o.port = atoi(v);
        else if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--idle") == 0)
            o.idle = atoi(v);
        else if (strcmp(a, "--big-header") == 0)
            o.big_header = atol(v);
        else if (strcmp(a, "--garbage") == 0)
            o.garbage = atoi(v);
        else if (strcmp(a, "--probe") == 0 && o.nprobe < MAX_PATHS)
            o.probe[o.nprobe++] = v;
        else if (strcmp(a, "--probe-any") == 0 && o.nprobe_any < MAX_PATHS)
            o.probe_any[o.nprobe_any++] = v;
        else if (strcmp(a, "--limit-ms") == 0)
            o.limit_ms = atof(v);
        else if (strcmp(a, "--wait-closed") == 0)
            o.wait_closed_s = atof(v);
        else if (strcmp(a, "--url-path") == 0)
            o.url_path = v;
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = atof(v);
        else if (strcmp(a, "--conns") == 0)
            o.conns = atoi(v);
        else
            return usage();
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)o.port);
    if (o.port <= 0 || inet_pton(AF_INET, o.host, &server.sin_addr) != 1) {
        fprintf(stderr, "http_abuse: --port and an IPv4 --host are needed\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "abuse") == 0)
        return abuse(&o);
    if (strcmp(argv[1], "load") == 0)
        return load(&o);
    return usage();
}
