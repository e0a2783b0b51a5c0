/*
 * watermark.c - per-partition watermarks and idleness (see watermark.h).
 *
 * The minimum is recomputed over all partitions after each change: a source
 * has a handful of partitions, and a linear pass over a few structs is
 * cheaper than keeping a heap in step.
 */
#include "watermark.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void wm_init(struct watermark *w, int64_t ooo_ms, int64_t idle_ms)
{
    memset(w, 0, sizeof(*w));
    w->ooo_ms = ooo_ms;
    w->idle_ms = idle_ms;
    w->current = WM_MIN;
}

void wm_destroy(struct watermark *w)
{
    free(w->p);
    memset(w, 0, sizeof(*w));
}

static struct wm_part *find(const struct watermark *w, int32_t part)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->p[i].id == part)
            return &w->p[i];
    return NULL;
}

static int64_t part_wm(const struct watermark *w, const struct wm_part *p)
{
    if (p->max_ts == WM_MIN)
        return WM_MIN;
    return p->max_ts - w->ooo_ms - 1;
}

static int64_t recompute(struct watermark *w)
{
    int64_t m = WM_MAX;
    int any = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct wm_part *p = &w->p[i];
        if (p->idle || p->ended)
            continue;
        int64_t pw = part_wm(w, p);
        if (pw < m)
            m = pw;
        any = 1;
    }
    /* all idle: hold (Flink); all ended: bounded input is done with them */
    if (any && m > w->current)
        w->current = m;
    return w->current;
}

int wm_add(struct watermark *w, int32_t part, int64_t now_ms)
{
    struct wm_part *p = find(w, part);
    if (p != NULL)
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct wm_part *np = realloc(w->p, cap * sizeof(*np));
        if (np == NULL)
            return -ENOMEM;
        w->p = np;
        w->cap = cap;
    }
    w->p[w->n++] = (struct wm_part){ .id = part, .max_ts = WM_MIN, .last_active = now_ms };
    return 0;
}

void wm_remove(struct watermark *w, int32_t part)
{
    for (size_t i = 0; i < w->n; i++) {
        if (w->p[i].id == part) {
            w->p[i] = w->p[--w->n];
            break;
        }
    }
    recompute(w);
}

int64_t wm_observe(struct watermark *w, int32_t part, int64_t ts, int64_t now_ms)
{
    struct wm_part *p = find(w, part);
    if (p == NULL) {
        if (wm_add(w, part, now_ms) < 0)
            return w->current;
        p = find(w, part);
    }
    p->last_active = now_ms;
    int was_idle = p->idle;
    p->idle = 0;
    if (ts > p->max_ts) {
        p->max_ts = ts;
    } else if (!was_idle && w->n == 1) {
        return w->current;          /* nothing moved: skip the pass */
    }
    return recompute(w);
}

void wm_restore_partition(struct watermark *w, int32_t part, int64_t max_ts)
{
    struct wm_part *p = find(w, part);
    if (p != NULL && max_ts > p->max_ts)
        p->max_ts = max_ts;
}

int64_t wm_tick(struct watermark *w, int64_t now_ms)
{
    if (w->idle_ms < 0)
        return w->current;
    for (size_t i = 0; i < w->n; i++) {
        struct wm_part *p = &w->p[i];
        if (!p->idle && now_ms - p->last_active >= w->idle_ms)
            p->idle = 1;
    }
    return recompute(w);
}

int64_t wm_end_partition(struct watermark *w, int32_t part)
{
    struct wm_part *p = find(w, part);
    if (p != NULL)
        p->ended = 1;
    return recompute(w);
}

int64_t wm_finish(struct watermark *w)
{
    w->current = WM_MAX;
    return w->current;
}

int64_t wm_partition(const struct watermark *w, int32_t part)
{
    const struct wm_part *p = find(w, part);
    return p ? part_wm(w, p) : WM_MIN;
}
