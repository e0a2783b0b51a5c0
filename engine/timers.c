/*
 * timers.c - bucketed and heap timer queues (see timers.h).
 *
 * Arrays grow through hm_realloc: a queue of a million keys (a heap of
 * 16 MB, a bucket of 4 MB) lives in 2 MB huge pages, which keeps a
 * checkpoint's fork short (hugemem.h).
 */
#include "timers.h"

#include <errno.h>
#include <stddef.h>
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

/* *p, a full array of cap elements of elem bytes, grown to its next
 * capacity (first when empty, at most max): that capacity, or 0 without
 * memory (*p unchanged). */
static size_t grow_full(void **p, size_t cap, size_t elem, size_t first, size_t max)
{
    size_t c = next_cap(cap, elem, first);
    void *np = c <= max ? grow(*p, cap * elem, c * elem) : NULL;
    if (np == NULL)
        return 0;
    *p = np;
    return c;
}

/* ---- buckets ------------------------------------------------------------ */

/* The buckets of one queue and the far slots of the other are both a run
 * of elements sorted by an int64_t key they start with, live in
 * arr[*head .. *n) of *cap: the element with `key`, made in place (zeroed
 * but for the key, *made set) when absent.  Keys mostly come in rising
 * order, so the newest is looked at first.  NULL without memory. */
static void *sorted_at(void **arr, size_t size, size_t *head, size_t *n, size_t *cap,
                       int64_t key, int *made)
{
#define KEY_AT(i) (*(const int64_t *)((const char *)*arr + (i) * size))
    size_t lo = *head, hi = *n;
    *made = 0;
    if (hi > lo && KEY_AT(hi - 1) == key)
        return (char *)*arr + (hi - 1) * size;
    if (hi == lo || KEY_AT(hi - 1) < key) {
        lo = hi;
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (KEY_AT(mid) < key)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < *n && KEY_AT(lo) == key)
            return (char *)*arr + lo * size;
    }
#undef KEY_AT
    if (*n == *cap) {
        if (*head > 0) {                /* reuse the popped prefix */
            memmove(*arr, (char *)*arr + *head * size, (*n - *head) * size);
            *n -= *head;
            lo -= *head;
            *head = 0;
        } else {
            size_t c = grow_full(arr, *cap, size, 16, SIZE_MAX);
            if (c == 0)
                return NULL;
            *cap = c;
        }
    }
    char *at = (char *)*arr + lo * size;
    memmove(at + size, at, (*n - lo) * size);
    (*n)++;
    memset(at, 0, size);
    memcpy(at, &key, sizeof(key));
    *made = 1;
    return at;
}

_Static_assert(offsetof(struct tq_bucket, time) == 0, "sorted_at: the key comes first");
_Static_assert(offsetof(struct tq_slot, slot) == 0, "sorted_at: the key comes first");

static struct tq_bucket *bucket_for(struct tq_buckets *q, int64_t time)
{
    int made;
    void *arr = q->b;
    struct tq_bucket *b = sorted_at(&arr, sizeof(*q->b), &q->head, &q->n, &q->cap, time, &made);
    q->b = arr;
    return b;
}

int tqb_add(struct tq_buckets *q, int64_t time, uint32_t id)
{
    struct tq_bucket *b = bucket_for(q, time);
    if (b == NULL)
        return -ENOMEM;
    if (b->n == b->cap) {
        void *ids = b->ids;
        size_t cap = grow_full(&ids, b->cap, sizeof(*b->ids), 8, UINT32_MAX);
        if (cap == 0)
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

/* ---- 4-ary heap of the near entries, slots of the far ones ---------------- */

static int before(const struct tq_entry *a, const struct tq_entry *b)
{
    return a->time < b->time || (a->time == b->time && (int32_t)(a->seq - b->seq) < 0);
}

static int64_t slot_of(int64_t time)
{
    return time >= 0 ? time >> TQH_SLOT_SHIFT : -((-(time + 1)) >> TQH_SLOT_SHIFT) - 1;
}

static int heap_push(struct tq_heap *q, struct tq_entry x)
{
    if (q->n == q->cap) {
        void *e = q->e;
        size_t cap = grow_full(&e, q->cap, sizeof(*q->e), 64, SIZE_MAX);
        if (cap == 0)
            return -ENOMEM;
        q->e = e;
        q->cap = cap;
    }
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

/* The far slot for `slot`, made (in order) when absent; NULL without memory. */
static struct tq_slot *far_slot(struct tq_heap *q, int64_t slot)
{
    int made;
    void *arr = q->far;
    struct tq_slot *s = sorted_at(&arr, sizeof(*q->far), &q->fhead, &q->fn, &q->fcap, slot,
                                  &made);
    q->far = arr;
    if (s != NULL && made)
        s->min = INT64_MAX;
    return s;
}

int tqh_add(struct tq_heap *q, int64_t time, uint32_t id)
{
    struct tq_entry x = { time, q->seq, id };
    int64_t slot = slot_of(time);
    if (!q->started) {
        q->cur = slot - 1;          /* every slot from the first time's on is far */
        q->started = 1;
    }
    if (slot <= q->cur) {
        if (heap_push(q, x) < 0)
            return -ENOMEM;
        q->seq++;
        return 0;
    }
    struct tq_slot *s = far_slot(q, slot);
    if (s == NULL)
        return -ENOMEM;
    if (s->n == s->cap) {
        void *e = s->e;
        size_t cap = grow_full(&e, s->cap, sizeof(*s->e), 8, UINT32_MAX);
        if (cap == 0)
            return -ENOMEM;
        s->e = e;
        s->cap = (uint32_t)cap;
    }
    s->e[s->n++] = x;
    if (time < s->min)
        s->min = time;
    q->far_entries++;
    q->seq++;
    return 0;
}

int tqh_pop_due(struct tq_heap *q, int64_t now, int64_t *time, uint32_t *id)
{
    /* the near heap empty, the first far slot due: its entries move in
     * (far entries are all later than any near one, so order holds) */
    while (q->n == 0 && q->fhead < q->fn && q->far[q->fhead].slot <= slot_of(now)) {
        struct tq_slot *s = &q->far[q->fhead];
        if (q->cap < s->n) {
            struct tq_entry *e = grow(q->e, q->cap * sizeof(*e), s->n * sizeof(*e));
            if (e == NULL)
                return 0;           /* tried again at the next pop */
            q->e = e;
            q->cap = s->n;
        }
        for (uint32_t i = 0; i < s->n; i++)
            (void)heap_push(q, s->e[i]);    /* room was made above */
        q->far_entries -= s->n;
        q->cur = s->slot;
        hm_free(s->e, s->cap * sizeof(*s->e));
        q->fhead++;
        if (q->fhead == q->fn)
            q->fhead = q->fn = 0;
    }
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
    if (q->n > 0)
        return q->e[0].time;        /* far entries are all later */
    return q->fhead < q->fn ? q->far[q->fhead].min : INT64_MAX;
}

size_t tqh_bytes(const struct tq_heap *q)
{
    size_t b = hm_size(q->cap * sizeof(*q->e)) + hm_size(q->fcap * sizeof(*q->far));
    for (size_t i = q->fhead; i < q->fn; i++)
        b += hm_size(q->far[i].cap * sizeof(struct tq_entry));
    return b;
}

void tqh_destroy(struct tq_heap *q)
{
    hm_free(q->e, q->cap * sizeof(*q->e));
    for (size_t i = q->fhead; i < q->fn; i++)
        hm_free(q->far[i].e, q->far[i].cap * sizeof(struct tq_entry));
    hm_free(q->far, q->fcap * sizeof(*q->far));
    memset(q, 0, sizeof(*q));
}
