/*
 * timers.c - bucketed and heap timer queues (see timers.h).
 *
 * Arrays grow through hm_realloc: a queue of a million keys (a heap of
 * 16 MB, a bucket of 4 MB) lives in 2 MB huge pages, which keeps a
 * checkpoint's fork short (hugemem.h).
 */
#include "timers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hugemem.h"

static void *(*tq_realloc)(void *p, size_t n);     /* NULL: hm_realloc */

void tq_replace_realloc(void *(*fn)(void *p, size_t n))
{
    tq_realloc = fn;
}

/* The next capacity of an array of cap elements of size elem: double while
 * small; from a huge page on, 1/8 more, rounded up to fill whole huge pages
 * (hm_realloc then moves pages rather than copying, so growing often costs
 * little, and a queue of ten million timers wastes at most 1/8 of itself
 * instead of up to half). */
static size_t next_cap(size_t cap, size_t elem, size_t first)
{
    if (cap == 0)
        return first;
    if (cap * elem * 2 < HM_MIN)
        return cap * 2;
    return hm_size((cap + cap / 8) * elem) / elem;
}

/* p, holding old bytes, grown to n bytes. */
static void *grow(void *p, size_t old, size_t n)
{
    return tq_realloc != NULL ? tq_realloc(p, n) : hm_realloc(p, old, n);
}

/* ---- buckets ------------------------------------------------------------ */

static struct tq_bucket *bucket_for(struct tq_buckets *q, int64_t time)
{
    size_t lo = q->head, hi = q->n;

    /* the common case: the newest time, or a time after it */
    if (hi > lo && q->b[hi - 1].time == time)
        return &q->b[hi - 1];
    if (hi == lo || q->b[hi - 1].time < time) {
        lo = hi;
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (q->b[mid].time < time)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < q->n && q->b[lo].time == time)
            return &q->b[lo];
    }
    if (q->n == q->cap) {
        if (q->head > 0) {              /* reuse the popped prefix */
            memmove(q->b, q->b + q->head, (q->n - q->head) * sizeof(*q->b));
            q->n -= q->head;
            lo -= q->head;
            q->head = 0;
        } else {
            size_t cap = next_cap(q->cap, sizeof(*q->b), 16);
            struct tq_bucket *nb = grow(q->b, q->cap * sizeof(*nb), cap * sizeof(*nb));
            if (nb == NULL)
                return NULL;
            q->b = nb;
            q->cap = cap;
        }
    }
    memmove(q->b + lo + 1, q->b + lo, (q->n - lo) * sizeof(*q->b));
    q->n++;
    q->b[lo] = (struct tq_bucket){ .time = time };
    return &q->b[lo];
}

int tqb_add(struct tq_buckets *q, int64_t time, uint32_t id)
{
    struct tq_bucket *b = bucket_for(q, time);
    if (b == NULL)
        return -ENOMEM;
    if (b->n == b->cap) {
        size_t cap = next_cap(b->cap, sizeof(*b->ids), 8);
        if (cap > UINT32_MAX)
            return -ENOMEM;
        uint32_t *ids = grow(b->ids, b->cap * sizeof(*ids), cap * sizeof(*ids));
        if (ids == NULL)
            return -ENOMEM;
        b->ids = ids;
        b->cap = (uint32_t)cap;
    }
    b->ids[b->n++] = id;
    q->entries++;
    return 0;
}

int tqb_pop_due(struct tq_buckets *q, int64_t now, int64_t *time, uint32_t *id)
{
    while (q->head < q->n) {
        struct tq_bucket *b = &q->b[q->head];
        if (b->time > now)
            return 0;
        if (b->done < b->n) {
            *time = b->time;
            *id = b->ids[b->done++];
            q->entries--;
            return 1;
        }
        hm_free(b->ids, b->cap * sizeof(*b->ids));
        q->head++;
        if (q->head == q->n)
            q->head = q->n = 0;
    }
    return 0;
}

int64_t tqb_next(const struct tq_buckets *q)
{
    for (size_t i = q->head; i < q->n; i++)
        if (q->b[i].done < q->b[i].n)
            return q->b[i].time;
    return INT64_MAX;
}

size_t tqb_bytes(const struct tq_buckets *q)
{
    size_t b = hm_size(q->cap * sizeof(*q->b));
    for (size_t i = q->head; i < q->n; i++)
        b += hm_size(q->b[i].cap * sizeof(uint32_t));
    return b;
}

void tqb_destroy(struct tq_buckets *q)
{
    for (size_t i = q->head; i < q->n; i++)
        hm_free(q->b[i].ids, q->b[i].cap * sizeof(*q->b[i].ids));
    hm_free(q->b, q->cap * sizeof(*q->b));
    memset(q, 0, sizeof(*q));
}

/* ---- 4-ary heap --------------------------------------------------------- */

static int before(const struct tq_entry *a, const struct tq_entry *b)
{
    return a->time < b->time || (a->time == b->time && (int32_t)(a->seq - b->seq) < 0);
}

int tqh_add(struct tq_heap *q, int64_t time, uint32_t id)
{
    if (q->n == q->cap) {
        size_t cap = next_cap(q->cap, sizeof(*q->e), 64);
        struct tq_entry *e = grow(q->e, q->cap * sizeof(*e), cap * sizeof(*e));
        if (e == NULL)
            return -ENOMEM;
        q->e = e;
        q->cap = cap;
    }
    struct tq_entry x = { time, q->seq++, id };
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (!before(&x, &q->e[p]))
            break;
        q->e[i] = q->e[p];
        i = p;
    }
    q->e[i] = x;
    return 0;
}

int tqh_pop_due(struct tq_heap *q, int64_t now, int64_t *time, uint32_t *id)
{
    if (q->n == 0 || q->e[0].time > now)
        return 0;
    *time = q->e[0].time;
    *id = q->e[0].id;
    struct tq_entry x = q->e[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 4 * i + 1, best = 0;
        int found = 0;
        for (size_t k = c; k < c + 4 && k < q->n; k++) {
            if (!found || before(&q->e[k], &q->e[best])) {
                best = k;
                found = 1;
            }
        }
        if (!found || !before(&q->e[best], &x))
            break;
        q->e[i] = q->e[best];
        i = best;
    }
    if (q->n > 0)
        q->e[i] = x;
    return 1;
}

int64_t tqh_next(const struct tq_heap *q)
{
    return q->n ? q->e[0].time : INT64_MAX;
}

size_t tqh_bytes(const struct tq_heap *q)
{
    return hm_size(q->cap * sizeof(*q->e));
}

void tqh_destroy(struct tq_heap *q)
{
    hm_free(q->e, q->cap * sizeof(*q->e));
    memset(q, 0, sizeof(*q));
}
