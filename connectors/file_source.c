/*
 * file_source.c - a source of JSON lines from a file (backfills, tests).
 *
 * The file is one partition (0); a record's offset is the byte offset of
 * its line, and the source hands up with each record the offset of the line
 * after it, so a checkpoint resumes exactly there whatever the lengths.  The
 * file is read in 1 MiB chunks from a uv_idle handle, one chunk per loop
 * iteration, so a large file never blocks the loop (timers, signals and
 * sinks keep running between chunks); pausing stops the idle handle.
 *
 * At the end of the file: in --bounded mode the partition has ended; in a
 * normal run the source follows the file like `tail -f`, checking for more
 * every 200 ms.  A line longer than the buffer (so longer than a record may
 * be, RECORD_MAX_BYTES) is handed over once, when its end is found: its
 * first HEAD bytes, enough for the engine to reject and count it, kept
 * aside while the rest is skipped.  Until then a checkpoint resumes at the
 * line's start, so a restart reads it whole again, never a part of it.
 */
#include <errno.h>
#include <fcntl.h>
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

struct file_src {
    struct source *s;
    int fd;
    uv_idle_t idle;
    uv_timer_t tail;
    char *buf;
    size_t cap, len;
    int64_t base;                   /* file offset of buf[0] */
    char *head;                     /* skipping: the first HEAD bytes of the over-long */
    int64_t head_at;                /* line being skipped, and its offset */
    int paused, at_eof, skipping, closing, nclosed;
    void (*done)(struct source *);
};

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

/* The over-long line being skipped ends before `next`: hand over its head. */
static int feed_head(struct file_src *f, int64_t next)
{
    const struct source_host *h = f->s->host;
    f->skipping = 0;
    return h->record(h->ud, f->s->index, 0, f->head_at, next, f->head, HEAD, 0);
}

/* Hands over every complete line in buf (at the end of a bounded input,
 * the last one without its newline too); keeps the tail. */
static int feed_lines(struct file_src *f, int final)
{
    const struct source_host *h = f->s->host;
    size_t pos = 0;
    while (pos < f->len) {
        char *nl = memchr(f->buf + pos, '\n', f->len - pos);
        if (nl == NULL && !final)
            break;
        size_t end = nl ? (size_t)(nl - f->buf) : f->len;
        int64_t next = f->base + (int64_t)end + (nl != NULL);
        int rc = 0;
        if (f->skipping)
            rc = feed_head(f, next);
        else if (end > pos)
            rc = h->record(h->ud, f->s->index, 0, f->base + (int64_t)pos, next, f->buf + pos,
                           end - pos, 0);
        if (rc < 0)
            return rc;
        pos = end + 1;
    }
    if (pos > f->len)
        pos = f->len;
    if (f->skipping) {
        pos = f->len;               /* more of the over-long line: dropped */
        if (final) {
            int rc = feed_head(f, f->base + (int64_t)f->len);
            if (rc < 0)
                return rc;
        }
    }
    memmove(f->buf, f->buf + pos, f->len - pos);
    f->len -= pos;
    f->base += (int64_t)pos;
    if (f->len == f->cap) {
        /* a line longer than any record may be: keep enough of it for the
         * engine to reject it, and skip to its end */
        memcpy(f->head, f->buf, HEAD);
        f->head_at = f->base;
        f->base += (int64_t)f->len;
        f->len = 0;
        f->skipping = 1;
    }
    return 0;
}

static void on_idle(uv_idle_t *handle)
{
    struct file_src *f = handle->data;
    const struct source_host *h = f->s->host;
    if (f->closing || f->paused)
        return;
    ssize_t n = read(f->fd, f->buf + f->len, f->cap - f->len);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        log_msg(LOG_ERR, f->s->name, "read %s: %s", f->s->js->path, strerror(errno));
        uv_idle_stop(&f->idle);
        h->failed(h->ud, f->s->index);
        return;
    }
    if (n == 0) {
        if (!f->at_eof) {
            f->at_eof = 1;
            if (h->bounded) {
                if (feed_lines(f, 1) < 0)
                    return;
                LOG(LOG_INFO, f->s->name, "end of %s", f->s->js->path);
                h->ended(h->ud, f->s->index, 0);
                h->finished(h->ud, f->s->index);
            }
        }
        arm(f);
        return;
    }
    f->at_eof = 0;
    f->len += (size_t)n;
    if (feed_lines(f, 0) < 0) {
        uv_idle_stop(&f->idle);
        return;
    }
    arm(f);
}

static void on_tail(uv_timer_t *t)
{
    struct file_src *f = t->data;
    on_idle(&f->idle);
}

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
    f->fd = open(s->js->path, O_RDONLY | O_CLOEXEC);
    uv_idle_init(s->host->loop, &f->idle);
    uv_timer_init(s->host->loop, &f->tail);
    f->idle.data = f->tail.data = f;
    if (f->buf == NULL || f->head == NULL || f->fd < 0) {
        int err = f->fd < 0 ? errno : ENOMEM;
        log_msg(LOG_ERR, s->name, "open %s: %s", s->js->path, strerror(err));
        return -err;
    }
    int64_t at = s->host->resume_at(s->host->ud, s->index, 0);
    if (at > 0) {
        if (lseek(f->fd, (off_t)at, SEEK_SET) != (off_t)at) {
            log_msg(LOG_ERR, s->name, "seek %s to %lld: %s", s->js->path, (long long)at,
                    strerror(errno));
            return -EIO;
        }
        f->base = at;
        LOG(LOG_INFO, s->name, "reading %s from byte %lld (checkpoint)", s->js->path,
            (long long)at);
    } else {
        LOG(LOG_INFO, s->name, "reading %s", s->js->path);
    }
    s->host->assigned(s->host->ud, s->index, 0);
    arm(f);
    return 0;
}

static void fs_commit(struct source *s, const struct engine_offset *offs, size_t n)
{
    (void)s, (void)offs, (void)n;   /* the checkpoint is where a file's position lives */
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
    uv_idle_stop(&f->idle);
    uv_timer_stop(&f->tail);
}

static void fs_resume(struct source *s)
{
    struct file_src *f = s->impl;
    f->paused = 0;
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
    f->closing = 1;
    f->done = done;
    uv_close((uv_handle_t *)&f->idle, on_closed);
    uv_close((uv_handle_t *)&f->tail, on_closed);
}

const struct source_ops file_source_ops = {
    .type = "file",
    .start = fs_start,
    .pause = fs_pause,
    .resume = fs_resume,
    .commit = fs_commit,
    .lag = fs_lag,
    .close = fs_close,
};
