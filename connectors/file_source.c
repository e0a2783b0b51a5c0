/*
 * file_source.c - a source of JSON lines from a file (backfills, tests).
 *
 * The file is one partition (0); a record's offset is the byte offset of
 * its line, and the source hands up with each record the offset of the line
 * after it, so a checkpoint resumes exactly there whatever the lengths.  A
 * line longer than the buffer (so longer than a record may be,
 * RECORD_MAX_BYTES) is handed over once, when its end is found: its first
 * HEAD bytes, enough for the engine to reject and count it, kept aside
 * while the rest is skipped.  Until then a checkpoint resumes at the line's
 * start, so a restart reads it whole again, never a part of it.
 *
 * Two ways of reading:
 *
 * - A normal run follows each file like `tail -f`: a uv_idle handle reads a
 *   1 MiB chunk per loop iteration and hands over its complete lines, so a
 *   large file never blocks the loop; at the end it checks for more every
 *   200 ms.
 *
 * - In --bounded mode the whole input is known, so the order in which the
 *   records of several files meet must not depend on the order in which
 *   the job file declares them (a join of two files would judge different
 *   records late).  All bounded file sources of a run are read through one
 *   merge: each file keeps its own order, and of the files' next records
 *   the one with the smallest event time goes first, ties to the source
 *   whose name sorts first (the host says a record's event time; records
 *   without one, rejected ones included, go as soon as they are next).
 *   The merge hands over about a chunk's worth of records per loop
 *   iteration.  A file that has no more records ends its partition at once,
 *   so the order is a function of the files alone, and a restore from a
 *   checkpoint (each file's position) continues it exactly.
 *
 * Everything runs on the loop thread; the merges of the process are kept
 * in a list by host (one run has one host).
 *
 * Its one setting, `path`, is declared in file_source_map below and read by
 * the job loader into a struct file_source_conf.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/record.h"
#include "connector.h"
#include "log.h"

#define CHUNK (1u << 20)
#define TAIL_MS 200
#define HEAD (RECORD_MAX_BYTES + 1)     /* of an over-long line: one byte too many */

/* ---- settings ------------------------------------------------------------------ */

struct file_source_conf {
    const char *path;
};

static const struct cm_entry file_source_entries[] = {
    { .key = "path", .type = CM_STR, .flags = CM_REQUIRED | CM_IDENTITY,
      .offset = offsetof(struct file_source_conf, path), .desc = "a file of JSON lines" },
    { .key = NULL },
};

static const struct cm_map file_source_map = { file_source_entries, NULL };

static void file_source_print(const void *conf, FILE *out)
{
    fprintf(out, " path=%s", ((const struct file_source_conf *)conf)->path);
}

static const char *fs_path(const struct source *s)
{
    return ((const struct file_source_conf *)s->js->conf)->path;
}

/* ---- reading --------------------------------------------------------------------- */

struct line {
    int64_t off, next;              /* the line's offset, and the offset after it */
    const char *p;
    size_t len;
};

struct file_merge;

struct file_src {
    struct source *s;
    int fd;
    uv_idle_t idle;
    uv_timer_t tail;
    char *buf;
    size_t cap, len, pos;           /* buf[pos..len) is not handed over yet */
    int64_t base;                   /* file offset of buf[0] */
    char *head;                     /* skipping: the first HEAD bytes of the over-long */
    int64_t head_at;                /* line being skipped, and its offset */
    int paused, at_eof, skipping, closing, nclosed;
    struct file_merge *merge;       /* bounded: the merge it is read through */
    struct line next;               /* merge: the next record, when have_next */
    int64_t next_time;
    int have_next, ended;
    uint64_t commits_ok;            /* positions confirmed (commit_stats) */
    void (*done)(struct source *);
};

/* ---- lines ------------------------------------------------------------------- */

/*
 * The next line of f that is complete in buf (or, when final, the last one
 * without its newline): fills *r and returns 1, or 0 when more must be
 * read.  Empty lines are skipped.  *r points into buf (or head) and stays
 * valid until the next read_more.
 */
static int next_line(struct file_src *f, int final, struct line *r)
{
    while (f->pos < f->len || (final && f->skipping)) {
        char *nl = f->pos < f->len ? memchr(f->buf + f->pos, '\n', f->len - f->pos) : NULL;
        if (nl == NULL && !final) {
            if (f->skipping) {          /* more of the over-long line: dropped */
                f->base += (int64_t)f->len;
                f->len = f->pos = 0;
            }
            return 0;
        }
        size_t at = f->pos, end = nl ? (size_t)(nl - f->buf) : f->len;
        int64_t next = f->base + (int64_t)end + (nl != NULL);
        f->pos = nl ? end + 1 : f->len;
        if (f->skipping) {
            f->skipping = 0;
            *r = (struct line){ f->head_at, next, f->head, HEAD };
            return 1;
        }
        if (end > at) {
            *r = (struct line){ f->base + (int64_t)at, next, f->buf + at, end - at };
            return 1;
        }
    }
    return 0;
}

/* Moves what is left to the front and reads more after it.  A buffer full
 * of one line starts skipping it.  Returns bytes read, 0 at the end of the
 * file, or -errno. */
static ssize_t read_more(struct file_src *f)
{
    memmove(f->buf, f->buf + f->pos, f->len - f->pos);
    f->len -= f->pos;
    f->base += (int64_t)f->pos;
    f->pos = 0;
    if (f->len == f->cap) {
        /* a line longer than any record may be: keep enough of it for the
         * engine to reject it, and skip to its end */
        memcpy(f->head, f->buf, HEAD);
        f->head_at = f->base;
        f->base += (int64_t)f->len;
        f->len = 0;
        f->skipping = 1;
    }
    for (;;) {
        ssize_t n = read(f->fd, f->buf + f->len, f->cap - f->len);
        if (n >= 0) {
            f->len += (size_t)n;
            return n;
        }
        if (errno != EINTR)
            return -errno;
    }
}

static SL_MUST_USE int hand_over(struct file_src *f, const struct line *r)
{
    const struct source_host *h = f->s->host;
    return h->record(h->ud, f->s->index, 0, r->off, r->next, r->p, r->len, 0, NULL);
}

static void read_failed(struct file_src *f, int err)
{
    const struct source_host *h = f->s->host;
    log_msg(LOG_ERR, f->s->name, "read %s: %s", fs_path(f->s), strerror(-err));
    h->failed(h->ud, f->s->index);
}

static void at_end(struct file_src *f)
{
    const struct source_host *h = f->s->host;
    f->ended = 1;
    LOG(LOG_INFO, f->s->name, "end of %s", fs_path(f->s));
    h->ended(h->ud, f->s->index, 0);
    h->finished(h->ud, f->s->index);
}

/* ---- following one file ----------------------------------------------------------- */

static void on_idle(uv_idle_t *h);
static void on_tail(uv_timer_t *t);

static void arm(struct file_src *f)
{
    if (f->closing || f->paused)
        return;
    if (f->at_eof) {
        uv_idle_stop(&f->idle);
        if (!f->s->host->bounded)
            uv_timer_start(&f->tail, on_tail, TAIL_MS, 0);
    } else {
        uv_idle_start(&f->idle, on_idle);
    }
}

static void on_idle(uv_idle_t *handle)
{
    struct file_src *f = handle->data;
    struct line r;
    if (f->closing || f->paused)
        return;
    ssize_t n = read_more(f);
    if (n < 0) {
        uv_idle_stop(&f->idle);
        read_failed(f, (int)n);
        return;
    }
    f->at_eof = n == 0;
    while (next_line(f, 0, &r) > 0) {
        if (hand_over(f, &r) < 0) {
            uv_idle_stop(&f->idle);
            return;
        }
    }
    arm(f);
}

static void on_tail(uv_timer_t *t)
{
    struct file_src *f = t->data;
    on_idle(&f->idle);
}

/* ---- the bounded merge -------------------------------------------------------------- */

struct file_merge {
    const struct source_host *host;
    uv_idle_t idle;
    struct file_src **v;
    size_t n, cap;
    struct file_merge *link;        /* merges */
};

static struct file_merge *merges;

static void on_merge(uv_idle_t *handle);

/* Reading goes on while no file is paused. */
static void merge_arm(struct file_merge *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i]->paused) {
            uv_idle_stop(&m->idle);
            return;
        }
    uv_idle_start(&m->idle, on_merge);
}

/* Makes f's next record known (have_next), or ends it.  Returns 0 or -errno. */
static SL_MUST_USE int merge_fill(struct file_src *f)
{
    const struct source_host *h = f->s->host;
    while (!f->have_next && !f->ended) {
        if (next_line(f, f->at_eof, &f->next) > 0) {
            f->have_next = 1;
            f->next_time = h->event_time(h->ud, f->s->index, f->next.p, f->next.len);
            break;
        }
        if (f->at_eof) {
            at_end(f);
            break;
        }
        ssize_t n = read_more(f);
        if (n < 0)
            return (int)n;
        f->at_eof = n == 0;
    }
    return 0;
}

/* Whether f's next record goes before g's. */
static int merge_before(const struct file_src *f, const struct file_src *g)
{
    if (f->next_time != g->next_time)
        return f->next_time < g->next_time;
    return strcmp(f->s->js->name, g->s->js->name) < 0;
}

static void on_merge(uv_idle_t *handle)
{
    struct file_merge *m = handle->data;
    size_t budget = CHUNK;
    for (;;) {
        struct file_src *best = NULL;
        for (size_t i = 0; i < m->n; i++) {
            struct file_src *f = m->v[i];
            if (f->closing || f->paused) {
                uv_idle_stop(&m->idle);
                return;
            }
            int rc = merge_fill(f);
            if (rc < 0) {
                uv_idle_stop(&m->idle);
                read_failed(f, rc);
                return;
            }
            if (f->have_next && (best == NULL || merge_before(f, best)))
                best = f;
        }
        if (best == NULL) {             /* every file has ended */
            uv_idle_stop(&m->idle);
            return;
        }
        if (budget == 0)
            return;                     /* the rest in the next loop iteration */
        best->have_next = 0;
        budget -= best->next.len < budget ? best->next.len : budget;
        if (hand_over(best, &best->next) < 0) {
            uv_idle_stop(&m->idle);
            return;
        }
    }
}

static SL_MUST_USE int merge_join(struct file_src *f)
{
    const struct source_host *h = f->s->host;
    struct file_merge *m = merges;
    while (m != NULL && m->host != h)
        m = m->link;
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m == NULL)
            return -ENOMEM;
        m->host = h;
        uv_idle_init(h->loop, &m->idle);
        m->idle.data = m;
        m->link = merges;
        merges = m;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 4;
        struct file_src **v = realloc(m->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = f;
    f->merge = m;
    merge_arm(m);
    return 0;
}

static void merge_closed(uv_handle_t *h)
{
    struct file_merge *m = h->data;
    free(m->v);
    free(m);
}

static void merge_leave(struct file_src *f)
{
    struct file_merge *m = f->merge;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i] == f) {
            memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
            m->n--;
            break;
        }
    f->merge = NULL;
    if (m->n > 0)
        return;
    for (struct file_merge **p = &merges; *p != NULL; p = &(*p)->link)
        if (*p == m) {
            *p = m->link;
            break;
        }
    uv_close((uv_handle_t *)&m->idle, merge_closed);
}

/* ---- the source ---------------------------------------------------------------------- */

static int fs_start(struct source *s)
{
    struct file_src *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->s = s;
    s->impl = f;
    f->cap = RECORD_MAX_BYTES + 2 > CHUNK ? RECORD_MAX_BYTES + 2 : CHUNK;
    f->buf = malloc(f->cap);
    f->head = malloc(HEAD);
    f->fd = open(fs_path(s), O_RDONLY | O_CLOEXEC);
    uv_idle_init(s->host->loop, &f->idle);
    uv_timer_init(s->host->loop, &f->tail);
    f->idle.data = f->tail.data = f;
    if (f->buf == NULL || f->head == NULL || f->fd < 0) {
        int err = f->fd < 0 ? errno : ENOMEM;
        log_msg(LOG_ERR, s->name, "open %s: %s", fs_path(s), strerror(err));
        return -err;
    }
    /* a file has no group: the host says where its checkpoint stands */
    int64_t at = -1;
    int rc = s->host->assigned(s->host->ud, s->index, 0, NULL, &at);
    if (rc < 0)
        return rc;
    if (at > 0) {
        if (lseek(f->fd, (off_t)at, SEEK_SET) != (off_t)at) {
            log_msg(LOG_ERR, s->name, "seek %s to %lld: %s", fs_path(s), (long long)at,
                    strerror(errno));
            return -EIO;
        }
        f->base = at;
        LOG(LOG_INFO, s->name, "reading %s from byte %lld (checkpoint)", fs_path(s),
            (long long)at);
    } else {
        LOG(LOG_INFO, s->name, "reading %s", fs_path(s));
    }
    if (s->host->bounded)
        return merge_join(f);
    arm(f);
    return 0;
}

/* The checkpoint is where a file's position lives: there is nothing else
 * to commit it to, so every position is confirmed at once (from within
 * this call). */
static void fs_commit(struct source *s, const struct source_commit *c, size_t n)
{
    struct file_src *f = s->impl;
    for (size_t i = 0; i < n; i++) {
        if (f != NULL)
            f->commits_ok++;
        s->host->committed(s->host->ud, s->index, c[i].partition, c[i].next, 0);
    }
}

static int fs_flush_commits(struct source *s, int timeout_ms)
{
    (void)s, (void)timeout_ms;      /* nothing is ever left to commit */
    return 0;
}

static void fs_commit_stats(const struct source *s, struct source_commit_stats *out)
{
    const struct file_src *f = s->impl;
    *out = (struct source_commit_stats){ .ok = f != NULL ? f->commits_ok : 0 };
}

/* In bytes: the file is its own measure. */
static int64_t fs_lag(const struct source *s, int32_t partition, int64_t next)
{
    const struct file_src *f = s->impl;
    struct stat st;
    (void)partition;
    if (f == NULL || f->fd < 0 || fstat(f->fd, &st) < 0)
        return -1;
    if (next < 0)
        next = 0;
    return st.st_size > next ? st.st_size - next : 0;
}

static void fs_pause(struct source *s)
{
    struct file_src *f = s->impl;
    f->paused = 1;
    if (f->merge != NULL)
        uv_idle_stop(&f->merge->idle);
    uv_idle_stop(&f->idle);
    uv_timer_stop(&f->tail);
}

static void fs_resume(struct source *s)
{
    struct file_src *f = s->impl;
    f->paused = 0;
    if (f->merge != NULL)
        merge_arm(f->merge);
    else
        arm(f);
}

static void on_closed(uv_handle_t *h)
{
    struct file_src *f = h->data;
    if (++f->nclosed < 2)
        return;
    struct source *s = f->s;
    void (*done)(struct source *) = f->done;
    if (f->fd >= 0)
        close(f->fd);
    free(f->buf);
    free(f->head);
    free(f);
    s->impl = NULL;
    if (done != NULL)
        done(s);
}

static void fs_close(struct source *s, void (*done)(struct source *))
{
    struct file_src *f = s->impl;
    if (f == NULL) {
        if (done != NULL)
            done(s);
        return;
    }
    if (f->merge != NULL)
        merge_leave(f);
    f->closing = 1;
    f->done = done;
    uv_close((uv_handle_t *)&f->idle, on_closed);
    uv_close((uv_handle_t *)&f->tail, on_closed);
}

static const struct source_ops file_source_ops = {
    .type = "file",
    .start = fs_start,
    .pause = fs_pause,
    .resume = fs_resume,
    .commit = fs_commit,
    .flush_commits = fs_flush_commits,
    .commit_stats = fs_commit_stats,
    .lag = fs_lag,
    .close = fs_close,
};

const struct conn_type file_source_type = {
    .name = "file", .kind = CONN_SOURCE, .flags = CONN_COMPLETE, .map = &file_source_map,
    .conf_size = sizeof(struct file_source_conf), .print = file_source_print,
    .source = &file_source_ops,
};
