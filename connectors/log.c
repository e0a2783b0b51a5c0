/*
 * log.c - stderr logging with levels and rate limiting (see log.h).
 *
 * Each line is built in one buffer and written with one write(2), so lines
 * from a fork()ed child and the parent do not interleave mid-line.  Every
 * entry point (log_msg, log_rate_msg, and so the LOG macro) drops lines
 * below the level set by log_set_level(); LOG checks it first only to skip
 * formatting its arguments.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define RATE_INTERVAL_MS 10000
#define RATE_BURST 5

static enum log_level current = LOG_INFO;
static int journal;                 /* stderr is the journal: <N> prefixes */

/* the last warnings and errors: ring[(nring - 1) % LOG_RECENT] is the newest */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_entry ring[LOG_RECENT];
static uint64_t nring;
static pid_t owner;                 /* the process they are kept for (not a fork) */

/* A fork()ed child's lines are not kept: it may have been forked while
 * another thread held the lock, and its memory is not the daemon's. */
static void remember(enum log_level level, const char *component, const char *text,
                     size_t len)
{
    if (level > LOG_WARNING || owner != getpid())
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&ring_lock);
    struct log_entry *e = &ring[nring++ % LOG_RECENT];
    e->at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    e->level = level;
    snprintf(e->component, sizeof(e->component), "%s", component);
    if (len >= sizeof(e->text))
        len = sizeof(e->text) - 1;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    pthread_mutex_unlock(&ring_lock);
}

size_t log_recent(struct log_entry *out, size_t max)
{
    pthread_mutex_lock(&ring_lock);
    size_t n = 0;
    for (uint64_t i = nring; i > 0 && n < max && nring - i < LOG_RECENT; i--)
        out[n++] = ring[(i - 1) % LOG_RECENT];
    pthread_mutex_unlock(&ring_lock);
    return n;
}

void log_init(void)
{
    owner = getpid();
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    journal = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
              fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
              (unsigned long long)st.st_ino == ino;
}

void log_set_level(enum log_level level)
{
    current = level;
}

enum log_level log_get_level(void)
{
    return current;
}

static void vlog(enum log_level level, const char *component, const char *suffix,
                 const char *fmt, va_list ap)
{
    char buf[2048];
    int n = journal ? snprintf(buf, sizeof(buf), "<%d>%s: ", (int)level, component)
                    : snprintf(buf, sizeof(buf), "sluice[%ld]: %s: ", (long)getpid(), component);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(buf) - 64)
        len = sizeof(buf) - 64;
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\n", suffix);
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
    remember(level, component, buf + n, len - (size_t)n - 1);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    if (level > current)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, "", fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void log_rate_msg(struct log_rate *r, enum log_level level, const char *component,
                  const char *fmt, ...)
{
    if (level > current)
        return;
    int64_t now = now_ms();
    if (now - r->window_start >= RATE_INTERVAL_MS) {
        r->window_start = now;
        r->count = 0;
    }
    if (r->count >= RATE_BURST) {
        r->suppressed++;
        return;
    }
    r->count++;
    char suffix[96] = "";
    if (r->suppressed > 0) {
        snprintf(suffix, sizeof(suffix), " (%u similar messages suppressed)", r->suppressed);
        r->suppressed = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, suffix, fmt, ap);
    va_end(ap);
}
