/*
 * counters.c - the run's counters across reloads (counters.h).
 *
 * The totals of replaced graphs (hist) are indexed like the current job;
 * counters_carry() re-indexes them by name when a reload brings a new
 * job, so a source, operator or sink that keeps its name keeps counting
 * from where it was, one that is new starts at zero, and one that is gone
 * drops out of /metrics.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"

struct counters {
    const struct graph *g;
    struct totals hist;             /* of replaced graphs, at g->job's indices */
};

uint64_t totals_invalid(const struct totals *t, size_t s)
{
    uint64_t n = 0;
    for (int k = 0; k < REJ_NKINDS; k++)
        n += t->invalid[s][k];
    return n;
}

void totals_free(struct totals *t)
{
    free(t->in);
    free(t->invalid);
    free(t->late);
    free(t->fired);
    free(t->lost);
    free(t->written);
    free(t->retried);
    free(t->failed);
    free(t->stale);
    free(t->coalesced);
    free(t->latency);
    free(t->freshness);
    memset(t, 0, sizeof(*t));
}

int totals_new(const struct job *job, struct totals *t)
{
    size_t ns = job->nsources + 1, no = job->noperators + 1, nk = job->nsinks + 1;
    t->in = calloc(ns, sizeof(*t->in));
    t->invalid = calloc(ns, sizeof(*t->invalid));
    t->late = calloc(no, sizeof(*t->late));
    t->fired = calloc(no, sizeof(*t->fired));
    t->lost = calloc(no, sizeof(*t->lost));
    t->written = calloc(nk, sizeof(*t->written));
    t->retried = calloc(nk, sizeof(*t->retried));
    t->failed = calloc(nk, sizeof(*t->failed));
    t->stale = calloc(nk, sizeof(*t->stale));
    t->coalesced = calloc(nk, sizeof(*t->coalesced));
    t->latency = calloc(nk, sizeof(*t->latency));
    t->freshness = calloc(nk, sizeof(*t->freshness));
    if (!t->in || !t->invalid || !t->late || !t->fired || !t->lost || !t->written ||
        !t->retried || !t->failed || !t->stale || !t->coalesced || !t->latency ||
        !t->freshness) {
        totals_free(t);
        return -ENOMEM;
    }
    return 0;
}

int counters_new(const struct graph *g, struct counters **out)
{
    struct counters *c = calloc(1, sizeof(*c));
    if (c == NULL || totals_new(g->job, &c->hist) < 0) {
        free(c);
        return -ENOMEM;
    }
    c->g = g;
    *out = c;
    return 0;
}

void counters_free(struct counters *c)
{
    if (c == NULL)
        return;
    totals_free(&c->hist);
    free(c);
}

void counters_read(const struct counters *c, struct totals *t)
{
    const struct graph *g = c->g;
    const struct job *job = g->job;
    const struct totals *h = &c->hist;
    for (size_t i = 0; i < job->nsources; i++) {
        uint64_t in = 0, inv[REJ_NKINDS] = { 0 };
        graph_source_stats(g, (int)i, &in, inv);
        t->in[i] = h->in[i] + in;
        for (int k = 0; k < REJ_NKINDS; k++)
            t->invalid[i][k] = h->invalid[i][k] + inv[k];
    }
    for (size_t i = 0; i < job->noperators; i++) {
        uint64_t res = 0, late = 0, lost = 0;
        graph_op_stats(g, (int)i, &res, &late, &lost);
        t->fired[i] = h->fired[i] + res;
        t->late[i] = h->late[i] + late;
        t->lost[i] = h->lost[i] + lost;
    }
    for (size_t i = 0; i < job->nsinks; i++) {
        const struct sink *s = g->snk != NULL ? &g->snk[i] : NULL;  /* NULL: out of memory */
        t->written[i] = h->written[i] + (s ? s->written : 0);
        t->retried[i] = h->retried[i] + (s ? s->retried : 0);
        t->failed[i] = h->failed[i] + (s ? s->failed : 0);
        t->stale[i] = h->stale[i] + (s ? s->stale : 0);
        t->coalesced[i] = h->coalesced[i] + (s ? s->coalesced : 0);
        t->latency[i] = h->latency[i];
        t->freshness[i] = h->freshness[i];
        if (s != NULL) {
            histo_add(&t->latency[i], &s->write_latency);
            histo_add(&t->freshness[i], &s->freshness);
        }
    }
}

int counters_carry(struct counters *c, const struct job *nj)
{
    const struct job *oj = c->g->job;
    struct totals cur, t;
    if (totals_new(oj, &cur) < 0)
        return -ENOMEM;
    if (totals_new(nj, &t) < 0) {
        totals_free(&cur);
        return -ENOMEM;
    }
    counters_read(c, &cur);
    for (size_t n = 0; n < nj->nsources; n++)
        for (size_t o = 0; o < oj->nsources; o++)
            if (strcmp(nj->sources[n].name, oj->sources[o].name) == 0) {
                t.in[n] = cur.in[o];
                memcpy(t.invalid[n], cur.invalid[o], sizeof(cur.invalid[o]));
            }
    for (size_t n = 0; n < nj->noperators; n++)
        for (size_t o = 0; o < oj->noperators; o++)
            if (strcmp(nj->operators[n].name, oj->operators[o].name) == 0) {
                t.fired[n] = cur.fired[o];
                t.late[n] = cur.late[o];
                t.lost[n] = cur.lost[o];
            }
    for (size_t n = 0; n < nj->nsinks; n++)
        for (size_t o = 0; o < oj->nsinks; o++)
            if (strcmp(nj->sinks[n].name, oj->sinks[o].name) == 0) {
                t.written[n] = cur.written[o];
                t.retried[n] = cur.retried[o];
                t.failed[n] = cur.failed[o];
                t.stale[n] = cur.stale[o];
                t.coalesced[n] = cur.coalesced[o];
                t.latency[n] = cur.latency[o];
                t.freshness[n] = cur.freshness[o];
            }
    totals_free(&cur);
    totals_free(&c->hist);
    c->hist = t;
    return 0;
}

int counters_records_in(const struct counters *c, uint64_t *n)
{
    struct totals t;
    if (totals_new(c->g->job, &t) < 0)
        return -ENOMEM;
    counters_read(c, &t);
    *n = 0;
    for (size_t s = 0; s < c->g->job->nsources; s++)
        *n += t.in[s];
    totals_free(&t);
    return 0;
}
