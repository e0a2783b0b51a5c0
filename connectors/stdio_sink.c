/*
 * stdio_sink.c - the stdout and file sinks: one JSON object per line.
 *
 * Window results are written as JSON (format.h), raw records (late events,
 * dead letters) as they are.  Output is buffered (a 256 KiB buffer for
 * files) and flushed every 100 ms by a timer and when the sink closes.  A file is opened for appending and created if missing.  Writes
 * are synchronous, so nothing is ever pending; a write error is fatal to
 * the job (logged), since the data cannot be kept anywhere else.  A file
 * that a crash left ending in a partial line gets a newline first.
 *
 * The stdout sink has no settings of its own; the file sink has `path`
 * (file_sink_map below, read into a struct file_sink_conf).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "format.h"
#include "log.h"

#define FLUSH_MS 100

/* ---- settings ------------------------------------------------------------------ */

static const struct cm_entry stdout_sink_entries[] = {
    { .key = NULL },
};

static const struct cm_map stdout_sink_map = { stdout_sink_entries, NULL };

struct file_sink_conf {
    const char *path;
};

static const struct cm_entry file_sink_entries[] = {
    { .key = "path", .type = CM_STR, .flags = CM_REQUIRED | CM_IDENTITY,
      .offset = offsetof(struct file_sink_conf, path),
      .desc = "the file JSON lines are appended to" },
    { .key = NULL },
};

static const struct cm_map file_sink_map = { file_sink_entries, NULL };

static void file_sink_print(const void *conf, FILE *out)
{
    fprintf(out, " path=%s", ((const struct file_sink_conf *)conf)->path);
}

/* ---- the sinks ----------------------------------------------------------------- */

struct stdio_sink {
    struct sink *s;
    FILE *f;
    int owned;                      /* a file we opened (not stdout) */
    char *iobuf;
    struct sbuf line;
    uv_timer_t flush;
    void (*done)(struct sink *);
};

static void on_flush(uv_timer_t *t)
{
    struct stdio_sink *o = t->data;
    if (fflush(o->f) != 0)
        log_msg(LOG_ERR, o->s->name, "write: %s", strerror(errno));
}

static SL_MUST_USE int open_common(struct sink *s, FILE *f, int owned)
{
    struct stdio_sink *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    o->s = s;
    o->f = f;
    o->owned = owned;
    s->impl = o;
    if (owned) {                    /* stdout keeps its own buffer: it outlives us */
        o->iobuf = malloc(256 * 1024);
        if (o->iobuf != NULL)
            setvbuf(f, o->iobuf, _IOFBF, 256 * 1024);
    }
    uv_timer_init(s->host->loop, &o->flush);
    o->flush.data = o;
    uv_timer_start(&o->flush, on_flush, FLUSH_MS, FLUSH_MS);
    uv_unref((uv_handle_t *)&o->flush);
    return 0;
}

static int stdout_open(struct sink *s)
{
    return open_common(s, stdout, 0);
}

static int file_open(struct sink *s)
{
    const char *path = ((const struct file_sink_conf *)s->js->conf)->path;
    FILE *f = fopen(path, "a+e");
    if (f == NULL) {
        int err = errno;
        log_msg(LOG_ERR, s->name, "open %s: %s", path, strerror(err));
        return -err;
    }
    /* a line cut short by a crash is ended, so it does not swallow the next */
    if (fseek(f, -1, SEEK_END) == 0) {
        int last = fgetc(f);
        fseek(f, 0, SEEK_END);
        if (last != '\n' && last != EOF) {
            fputc('\n', f);
            log_msg(LOG_WARNING, s->name, "%s ended in a partial line (a crash?); "
                    "it is left as it is, on a line of its own", path);
        }
    }
    int rc = open_common(s, f, 1);
    if (rc < 0)
        fclose(f);
    return rc;
}

static SL_MUST_USE int put_line(struct stdio_sink *o, const char *p, size_t n)
{
    if (fwrite(p, 1, n, o->f) != n || fputc('\n', o->f) == EOF) {
        log_msg(LOG_ERR, o->s->name, "write: %s", strerror(errno));
        o->s->failed++;
        return -EIO;
    }
    o->s->written++;
    return 0;
}

static int stdio_write_result(struct sink *s, const struct job_operator *op,
                              const struct engine_result *r)
{
    struct stdio_sink *o = s->impl;
    o->line.len = 0;
    if (fmt_json_result(&o->line, s->job, op, r) < 0)
        return -ENOMEM;
    return put_line(o, o->line.p, o->line.len);
}

static int stdio_write_raw(struct sink *s, const char *data, size_t len, const char *key,
                           size_t klen)
{
    (void)key, (void)klen;
    return put_line(s->impl, data, len);
}

static size_t stdio_pending(const struct sink *s)
{
    (void)s;
    return 0;
}

/* Written and, for a file, on disk: the writes before it are durable. */
static int stdio_barrier(struct sink *s)
{
    struct stdio_sink *o = s->impl;
    /* EINVAL: a pipe or a terminal, nothing to sync */
    if (fflush(o->f) != 0 || (o->owned && fdatasync(fileno(o->f)) != 0 && errno != EINVAL)) {
        int err = errno;
        log_msg(LOG_ERR, s->name, "flush: %s", strerror(err));
        return -err;
    }
    return 0;
}

static int stdio_barrier_done(const struct sink *s)
{
    (void)s;
    return 1;
}

static void on_closed(uv_handle_t *h)
{
    struct stdio_sink *o = h->data;
    struct sink *s = o->s;
    void (*done)(struct sink *) = o->done;
    if (fflush(o->f) != 0)
        log_msg(LOG_ERR, s->name, "write: %s", strerror(errno));
    if (o->owned)
        fclose(o->f);
    free(o->iobuf);
    sbuf_free(&o->line);
    free(o);
    s->impl = NULL;
    if (done != NULL)
        done(s);
}

static void stdio_close(struct sink *s, void (*done)(struct sink *))
{
    struct stdio_sink *o = s->impl;
    if (o == NULL) {
        if (done != NULL)
            done(s);
        return;
    }
    o->done = done;
    uv_close((uv_handle_t *)&o->flush, on_closed);
}

static const struct sink_ops stdout_sink_ops = {
    .type = "stdout",
    .open = stdout_open,
    .write_result = stdio_write_result,
    .write_raw = stdio_write_raw,
    .pending = stdio_pending,
    .barrier = stdio_barrier,
    .barrier_done = stdio_barrier_done,
    .close = stdio_close,
};

static const struct sink_ops file_sink_ops = {
    .type = "file",
    .open = file_open,
    .write_result = stdio_write_result,
    .write_raw = stdio_write_raw,
    .pending = stdio_pending,
    .barrier = stdio_barrier,
    .barrier_done = stdio_barrier_done,
    .close = stdio_close,
};

const struct conn_type stdout_sink_type = {
    .name = "stdout", .kind = CONN_SINK, .flags = CONN_RAW, .map = &stdout_sink_map,
    .conf_size = 0, .sink = &stdout_sink_ops,
};

const struct conn_type file_sink_type = {
    .name = "file", .kind = CONN_SINK, .flags = CONN_RAW, .map = &file_sink_map,
    .conf_size = sizeof(struct file_sink_conf), .print = file_sink_print,
    .sink = &file_sink_ops,
};
