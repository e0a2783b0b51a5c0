/*
 * win_fire.c - a window operator's due timers, popped in batches so that
 * the state they touch comes from memory in parallel.
 *
 * Checking a key whose timer is due reads its state table entry, then,
 * through it, its blob: two dependent cache misses per timer once the
 * state outgrows the caches, paid one after the other when timers are
 * popped one at a time (at 100 k keys, nine tenths of sl_fire_due's time
 * was the wait for the entry and the blob).  So up to FIRE_BATCH due
 * timers are popped at once; their entries are read, then, through the
 * entries, their blobs, all loads independent of one another so that the
 * core overlaps them, and only then are the keys checked, one by one.
 *
 * The checks run in exactly the order single pops would give.  A check
 * may set a timer of its key that is already due; popped one at a time,
 * that timer would go before every later one, including those this batch
 * popped already.  So before each popped timer the queue's earliest is
 * looked at, and if it is earlier it is checked first.  Timers of equal
 * time keep their order: both queues put a timer set later behind those
 * set before it at the same time, and the batch's were set before.
 *
 * Runs on the loop thread, inside fire_due.
 */
#include "engine_int.h"

#define FIRE_BATCH 16
#define LINE 64
#define FETCH_MAX (8 * LINE)            /* of a blob: a firing's panes or session */

static volatile unsigned fetched;

struct due {
    int64_t time;
    uint32_t id;
};

/* Reads the entries of the batch's keys, then, through them, the lines
 * of their blobs, so that the checks find them in the cache.  Loads, not
 * __builtin_prefetch: on this KVM guest (AMD EPYC) a prefetch that misses
 * the TLB, as most do once the state spans more pages than the TLB maps,
 * bought nothing (ns per result unchanged), while loads, independent of
 * one another, are overlapped by the out-of-order core (-35 %). */
static void fetch(const struct op_rt *op, const struct win_timers *q, const struct due *d,
                  size_t n)
{
    const struct state_table *t = &op->g->t;
    const char *blob[FIRE_BATCH];
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        blob[i] = NULL;
        if (d[i].id < t->next_id && st_entry(t, d[i].id)->klen != ST_NONE)
            blob[i] = *op_blob(op, d[i].id);
    }
    /* only bytes the blob holds (its header says how many) */
    for (size_t i = 0; i < n; i++) {
        if (blob[i] == NULL)
            continue;
        size_t used = q->used(op, blob[i]);
        used = used < FETCH_MAX ? used : FETCH_MAX;
        for (size_t o = LINE; o < used; o += LINE)
            sum += (unsigned char)blob[i][o];
        sum += (unsigned char)blob[i][used - 1];
    }
    fetched = sum;                      /* the loads must happen */
}

void win_fire_due(struct op_rt *op, int64_t wm, const struct win_timers *q)
{
    struct due d[FIRE_BATCH];
    size_t n = 0, i = 0;
    for (;;) {
        if (i == n) {
            for (n = i = 0; n < FIRE_BATCH && q->pop(op, wm, &d[n].time, &d[n].id); n++)
                ;
            if (n == 0)
                return;
            fetch(op, q, d, n);
        }
        int64_t T;
        uint32_t id;
        if (q->next(op) < d[i].time && q->pop(op, wm, &T, &id)) {
            q->check(op, id, T);        /* set by a check of this batch, and earlier */
            continue;
        }
        q->check(op, d[i].id, d[i].time);
        i++;
    }
}
