/*
 * fuzz_record.c - libFuzzer target for the record decoder and the engine
 * behind it.
 *
 * Each input is split at newlines into records, fed to an engine running
 * a job with three sources (ISO-8601, epoch_ms and epoch_s event times)
 * and window operators of every type on them; the first byte of a record
 * picks the source.  Any crash, sanitizer report or leak is a bug: bad
 * bytes must come out as counted rejections, and any set of valid records
 * must leave the engine consistent through engine_finish().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../engine/engine.h"

static const char job_text[] =
    "job: fuzz\n"
    "sources:\n"
    "  iso:\n"
    "    type: file\n"
    "    path: /dev/null\n"
    "    schema: { user_id: string, event_type: string, price: double, n: int, ok: bool }\n"
    "    event_time: { field: event_time, format: iso8601, timezone: \"+09:00\" }\n"
    "    watermark: { out_of_orderness: 10s }\n"
    "  ms:\n"
    "    type: file\n"
    "    path: /dev/null\n"
    "    schema: { user_id: string, ts: int, price: double }\n"
    "    event_time: { field: ts, format: epoch_ms }\n"
    "    watermark: { out_of_orderness: 1s }\n"
    "  s:\n"
    "    type: file\n"
    "    path: /dev/null\n"
    "    schema: { user_id: string, n: int }\n"
    "    event_time: { field: t, format: epoch_s }\n"
    "operators:\n"
    "  slide:\n"
    "    from: iso\n"
    "    key_by: user_id\n"
    "    window: { type: sliding, size: 1h, slide: 10m, allowed_lateness: 5m }\n"
    "    aggregates:\n"
    "      v: count() where event_type == \"view\"\n"
    "      a: avg(price) where event_type in (\"view\", \"cart\")\n"
    "      f: first(event_type)\n"
    "      d: count_distinct(event_type)\n"
    "    to: out\n"
    "  sess:\n"
    "    from: iso\n"
    "    key_by: [user_id, ok]\n"
    "    window: { type: session, gap: 10m, allowed_lateness: 1m }\n"
    "    aggregates: { c: count(), du: duration(), l: last(n) where ok }\n"
    "    to: out\n"
    "  tumble:\n"
    "    from: ms\n"
    "    key_by: user_id\n"
    "    window: { type: tumbling, size: 1s }\n"
    "    aggregates: { s: sum(price), mx: max(ts) }\n"
    "    to: out\n"
    "  glob:\n"
    "    from: s\n"
    "    key_by: n\n"
    "    window: { type: global, trigger: count 3 }\n"
    "    aggregates: { c: count(), u: count_distinct(user_id) }\n"
    "    to: out\n"
    "sinks:\n"
    "  out: { type: stdout }\n";

static struct job *job;

static void on_result(void *ud, const struct engine_result *r)
{
    (void)ud;
    /* read every value, as a sink would */
    volatile size_t sink = 0;
    for (size_t i = 0; i < r->nkeys; i++)
        if (r->keys[i].type == VT_STRING && r->keys[i].u.s.len)
            sink += (unsigned char)r->keys[i].u.s.p[r->keys[i].u.s.len - 1];
    for (size_t i = 0; i < r->nvals; i++)
        if (r->vals[i].type == VT_STRING && r->vals[i].u.s.len)
            sink += (unsigned char)r->vals[i].u.s.p[0];
    (void)sink;
}

static int64_t fixed_clock(void *ud)
{
    (void)ud;
    return 1700000000000LL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (job == NULL) {
        struct diags d = { 0 };
        if (job_load_buffer("fuzz.yaml", job_text, strlen(job_text), NULL, &job, &d) < 0)
            abort();
        diags_free(&d);
    }
    struct engine *e;
    struct engine_output out = { NULL, on_result, NULL, NULL, NULL };
    struct engine_opts opts = { .clock = fixed_clock };
    if (engine_new(job, &opts, &out, &e) < 0)
        abort();
    const char *p = (const char *)data, *end = p + size;
    int64_t off = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (stop > p) {
            int src = (unsigned char)p[0] % 3;
            if (engine_feed(e, src, (int32_t)(off % 2), off, p + 1, (size_t)(stop - p - 1),
                            1700000000000LL) < 0)
                abort();
            off++;
        }
        p = stop + 1;
    }
    engine_finish(e);
    engine_free(e);
    return 0;
}
