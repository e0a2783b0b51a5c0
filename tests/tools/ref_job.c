/*
 * ref_job.c - what a job should produce, computed by the reference
 * implementation (tests/ref/), for the integration tests.
 *
 *   ref_job -c JOB --input FILE.jsonl [--source NAME] --results OUT.jsonl
 *           [--redis OUT.txt]
 *
 * Feeds every line of the input to the reference, in order, as one
 * partition.  --results gets every window result as a JSON line, exactly as
 * a file sink writes it; --redis gets the final state the job's Redis
 * sinks should leave, one key per line, sorted:
 *     key<TAB>field=value<TAB>field=value...     (fields sorted)
 * A versioned sink (the default) keeps, per key, the write with the
 * greatest version (the last of equals), and writes the version field
 * `_sluice:<operator>`: the window end for windows with bounds, else the
 * index of the record it fired after, which is the record's Kafka offset
 * when the input is produced to one partition, line by line.
 * Prints "records=N invalid=M windows=W" on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../connectors/format.h"
#include "../../connectors/redis_sink.h"
#include "../ref/reference.h"

struct kv {
    char *key, *fields;
    size_t seq;
    int versioned;
    int64_t version;
};

struct ctx {
    const struct job *job;
    FILE *results;
    struct kv *redis;
    size_t nredis, capredis;
    size_t windows;
    struct sbuf line;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_result(void *ud, size_t fired_at, const struct engine_result *r)
{
    struct ctx *c = ud;
    const struct job_operator *op = &c->job->operators[r->op];
    const struct job_source *src = &c->job->sources[op->source];
    c->windows++;
    c->line.len = 0;
    fmt_json_result(&c->line, c->job, op, r);
    if (c->results != NULL)
        fprintf(c->results, "%s\n", c->line.p);
    for (size_t i = 0; i < op->nsinks; i++) {
        const struct job_sink *js = &c->job->sinks[op->sinks[i]];
        if (strcmp(js->type->name, "redis") != 0)
            continue;
        struct sbuf key = { 0 }, f = { 0 };
        fmt_key(&key, &job_sink_key(js)->t, c->job, op, r);
        int versioned = redis_sink_versioned(js);
        int64_t version = op_has_bounds(op) ? r->end : (int64_t)fired_at;
        size_t n = op->nkeys + r->nvals;
        char **fields = calloc(n + 1, sizeof(*fields));
        for (size_t k = 0; k < n; k++) {
            struct sbuf one = { 0 };
            const char *name = k < op->nkeys ? src->fields[op->key_fields[k]].name
                                             : op->aggs[k - op->nkeys].name;
            sbuf_printf(&one, "%s=", name);
            fmt_redis_value(&one, k < op->nkeys ? &r->keys[k] : &r->vals[k - op->nkeys]);
            fields[k] = one.p;
        }
        if (versioned) {
            struct sbuf one = { 0 };
            sbuf_printf(&one, REDIS_VERSION_PREFIX "%s=%lld", op->name, (long long)version);
            fields[n++] = one.p;
        }
        qsort(fields, n, sizeof(*fields), cmp_str);
        for (size_t k = 0; k < n; k++) {
            sbuf_printf(&f, "\t%s", fields[k]);
            free(fields[k]);
        }
        free(fields);
        if (c->nredis == c->capredis) {
            c->capredis = c->capredis ? c->capredis * 2 : 1024;
            c->redis = realloc(c->redis, c->capredis * sizeof(*c->redis));
        }
        c->redis[c->nredis] = (struct kv){ key.p, f.p, c->nredis, versioned, version };
        c->nredis++;
    }
}

static int cmp_kv(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int k = strcmp(x->key, y->key);
    return k ? k : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

int main(int argc, char **argv)
{
    const char *jobf = NULL, *input = NULL, *results = NULL, *redis = NULL, *source = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-c") == 0) jobf = argv[i + 1];
        else if (strcmp(argv[i], "--input") == 0) input = argv[i + 1];
        else if (strcmp(argv[i], "--results") == 0) results = argv[i + 1];
        else if (strcmp(argv[i], "--redis") == 0) redis = argv[i + 1];
        else if (strcmp(argv[i], "--source") == 0) source = argv[i + 1];
    }
    if (jobf == NULL || input == NULL) {
        fprintf(stderr, "usage: ref_job -c JOB --input FILE [--source S] [--results OUT] "
                "[--redis OUT]\n");
        return 2;
    }
    struct diags d = { 0 };
    struct job *job = NULL;
    if (job_load(jobf, NULL, &job, &d) < 0) {
        diags_sort(&d);
        diags_print(&d, jobf, stderr);
        return 1;
    }
    diags_free(&d);
    int src = 0;
    for (size_t i = 0; source != NULL && i < job->nsources; i++)
        if (strcmp(job->sources[i].name, source) == 0)
            src = (int)i;
    struct ctx c = { .job = job };
    if (results != NULL && (c.results = fopen(results, "w")) == NULL) {
        perror(results);
        return 2;
    }
    FILE *in = fopen(input, "r");
    if (in == NULL) {
        perror(input);
        return 2;
    }
    struct reference *ref = ref_new(job, on_result, &c);
    char *line = NULL;
    size_t cap = 0, records = 0, invalid = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n == 0)
            continue;
        records++;
        if (ref_feed(ref, src, line, (size_t)n) < 0)
            invalid++;
    }
    ref_finish(ref);
    free(line);
    fclose(in);
    if (redis != NULL) {
        FILE *out = fopen(redis, "w");
        if (out == NULL) {
            perror(redis);
            return 2;
        }
        qsort(c.redis, c.nredis, sizeof(*c.redis), cmp_kv);
        const struct kv *keep = NULL;       /* what the key holds so far */
        for (size_t i = 0; i < c.nredis; i++) {
            const struct kv *w = &c.redis[i];
            if (keep == NULL || !w->versioned || w->version >= keep->version)
                keep = w;
            if (i + 1 == c.nredis || strcmp(w->key, c.redis[i + 1].key) != 0) {
                fprintf(out, "%s%s\n", keep->key, keep->fields);
                keep = NULL;
            }
        }
        fclose(out);
    }
    for (size_t i = 0; i < c.nredis; i++) {
        free(c.redis[i].key);
        free(c.redis[i].fields);
    }
    free(c.redis);
    sbuf_free(&c.line);
    if (c.results != NULL)
        fclose(c.results);
    printf("records=%zu invalid=%zu windows=%zu\n", records, invalid, c.windows);
    ref_free(ref);
    job_free(job);
    return 0;
}
