/*
 * fuzz_ckpt.c - libFuzzer target for restoring checkpoints.
 *
 * Checksums stop random damage at the door (tests/unit/test_ckpt.c shows
 * every flipped bit is caught), so this target goes behind them: it wraps
 * the fuzzer's bytes into a well-formed file with valid checksums, as if a
 * buggy or hostile writer had produced them, and restores it.  The input is
 * cut at 0xFF 0xFF 0xFF 0xFF into the raw records of the job's source and
 * operator sections (each of which the fuzzer fills with length-prefixed
 * records or garbage).  Whatever the bytes, restore must fail cleanly or
 * give an engine that then processes records and fires every window
 * without a crash, a sanitizer report or a leak.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "../../config/job.h"
#include "../../engine/ckpt_file.h"
#include "../../engine/engine.h"

static const char job_text[] =
    "job: fz\n"
    "sources:\n"
    "  events:\n"
    "    type: file\n"
    "    path: /dev/null\n"
    "    schema: { user_id: string, event_type: string, price: double, n: int }\n"
    "    event_time: { field: t, format: epoch_ms }\n"
    "operators:\n"
    "  slide:\n"
    "    from: events\n"
    "    key_by: user_id\n"
    "    window: { type: sliding, size: 1h, slide: 10m, allowed_lateness: 5m }\n"
    "    aggregates: { v: count() where event_type == \"view\", a: avg(price),"
    " f: first(event_type), d: count_distinct(event_type), m: min(n) }\n"
    "    to: out\n"
    "  sess:\n"
    "    from: events\n"
    "    key_by: [user_id, n]\n"
    "    window: { type: session, gap: 10m }\n"
    "    aggregates: { c: count(), du: duration(), l: last(event_type) }\n"
    "    to: out\n"
    "  glob:\n"
    "    from: events\n"
    "    key_by: event_type\n"
    "    window: { type: global, trigger: count 2 }\n"
    "    aggregates: { c: count(), u: count_distinct(user_id), s: sum(n) }\n"
    "    to: out\n"
    "  tot:\n"
    "    from: events\n"
    "    key_by: user_id\n"
    "    reduce: { emit: every 1m, ttl: 1h }\n"
    "    aggregates: { c: count(), m: max(price) }\n"
    "    to: out\n"
    "  jump:\n"
    "    from: events\n"
    "    key_by: user_id\n"
    "    detect: { when: current.price > previous.price * 2, ttl: 1h }\n"
    "    fields: { p: previous.price, e: previous.event_type }\n"
    "    to: out\n"
    "  pair:\n"
    "    key_by: user_id\n"
    "    join:\n"
    "      left: { from: events, where: event_type == \"view\" }\n"
    "      right: { from: events, where: event_type != \"view\" }\n"
    "      within: 1h\n"
    "      type: outer\n"
    "    to: out\n"
    "  recent:\n"
    "    from: events\n"
    "    key_by: user_id\n"
    "    window: { count: 3, slide: 2 }\n"
    "    aggregates: { c: count(), a: avg(price), m: max(n) }\n"
    "    to: out\n"
    "sinks:\n"
    "  out: { type: stdout }\n";

static struct job *job;
static char path[64];

static void put(int fd, const void *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        abort();
}

static void section(int fd, uint32_t type, const char *name, uint64_t fp,
                    const uint8_t *raw, size_t n)
{
    unsigned char h[300];
    size_t k = 0;
    uint16_t nl = (uint16_t)strlen(name);
    memcpy(h + k, &type, 4), k += 4;
    memcpy(h + k, &nl, 2), k += 2;
    memcpy(h + k, name, nl), k += nl;
    memcpy(h + k, &fp, 8), k += 8;
    uint64_t hh = XXH64(h, k, 0);
    memcpy(h + k, &hh, 8), k += 8;
    put(fd, h, k);
    if (n > 0) {
        unsigned char c[20];
        uint32_t len = (uint32_t)n, flags = 0;
        memcpy(c, &len, 4);
        memcpy(c + 4, &len, 4);
        memcpy(c + 8, &flags, 4);
        uint64_t ch = XXH64(raw, n, XXH64(c, 12, 0));
        memcpy(c + 12, &ch, 8);
        put(fd, c, 20);
        put(fd, raw, n);
    }
    unsigned char end[20] = { 0 };
    put(fd, end, 20);
}


static const char *const recs[] = {
    "{\"user_id\":\"a\",\"event_type\":\"view\",\"price\":1.5,\"n\":1,\"t\":1000}",
    "{\"user_id\":\"b\",\"event_type\":\"cart\",\"price\":2,\"n\":2,\"t\":4000000}",
    "{\"user_id\":\"a\",\"event_type\":\"view\",\"price\":3,\"n\":1,\"t\":500}",
    "{\"user_id\":\"c\",\"event_type\":\"buy\",\"price\":9,\"n\":3,\"t\":4000100}",
};

static void load_job(void)
{
    if (job == NULL) {
        struct diags d = { 0 };
        if (job_load_buffer("fz.yaml", job_text, strlen(job_text), NULL, &job, &d) < 0)
            abort();
        diags_free(&d);
        strcpy(path, "/tmp/sluice-fuzz-ckpt-XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
    }
}

/*
 * FUZZ_CKPT_WRITE_SEED=FILE: writes a seed input made from a real
 * snapshot (the raw records of each section, separated as the target
 * expects) and exits.  `make fuzz-ckpt` starts the corpus with it.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *seed = getenv("FUZZ_CKPT_WRITE_SEED");
    if (seed == NULL)
        return 0;
    load_job();
    struct engine *e;
    struct engine_output out = { 0 };
    if (engine_new(job, NULL, &out, &e) < 0)
        abort();
    engine_partition_add(e, 0, 0);
    for (size_t i = 0; i < 4; i++)
        engine_feed(e, 0, 0, (int64_t)i, recs[i], strlen(recs[i]), 0);
    int fd = open(path, O_WRONLY | O_TRUNC);
    struct ckpt_writer w;
    if (fd < 0 || ckpt_writer_init(&w, 0) < 0)
        abort();
    ckpt_write_header(&w, fd, CKPT_CHECKPOINT, 1, 0, "fz");
    if (engine_snapshot(e, &w, NULL, NULL) < 0 || ckpt_finish(&w) < 0)
        abort();
    ckpt_writer_free(&w);
    close(fd);
    engine_free(e);
    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[256];
    if (ckpt_open(path, &r, &info, err, sizeof(err)) < 0)
        abort();
    FILE *f = fopen(seed, "wb");
    struct ckpt_section_info si;
    int first = 1;
    while (f != NULL && ckpt_next_section(r, &si) == 1) {
        if (!first)
            fwrite("\xff\xff\xff\xff", 1, 4, f);
        first = 0;
        const unsigned char *p;
        size_t n;
        while (ckpt_next_record(r, &p, &n) == 1) {
            uint32_t len = (uint32_t)n;
            fwrite(&len, 4, 1, f);
            fwrite(p, 1, n, f);
        }
    }
    if (f != NULL)
        fclose(f);
    ckpt_close(r);
    exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_job();
    /* cut the input into the raw bytes of the sections: the source's,
     * then each operator's */
    enum { NSEC = 8 };
    if (job->noperators + 1 != NSEC)
        abort();
    const uint8_t *part[NSEC] = { 0 };
    size_t plen[NSEC] = { 0 };
    size_t pi = 0, start = 0;
    for (size_t i = 0; i + 4 <= size && pi < NSEC - 1; i++) {
        if (data[i] == 0xFF && data[i + 1] == 0xFF && data[i + 2] == 0xFF && data[i + 3] == 0xFF) {
            part[pi] = data + start;
            plen[pi++] = i - start;
            start = i + 4;
            i += 3;
        }
    }
    part[pi] = data + start;
    plen[pi] = size > start ? size - start : 0;

    int fd = open(path, O_WRONLY | O_TRUNC);
    struct ckpt_writer w;
    if (fd < 0 || ckpt_writer_init(&w, 0) < 0)
        abort();
    ckpt_write_header(&w, fd, CKPT_CHECKPOINT, 1, 0, "fz");
    ckpt_writer_free(&w);
    section(fd, CKPT_SEC_SOURCE, "events",
            engine_source_fingerprint(&job->sources[0], CKPT_VERSION), part[0], plen[0]);
    for (int o = 0; o < NSEC - 1; o++)
        section(fd, CKPT_SEC_OPERATOR, job->operators[o].name,
                engine_op_fingerprint(job, o, CKPT_VERSION), part[o + 1], plen[o + 1]);
    unsigned char h[300];
    size_t k = 0;
    uint32_t type = CKPT_SEC_END;
    uint16_t nl = 0;
    uint64_t count = NSEC;
    memcpy(h + k, &type, 4), k += 4;
    memcpy(h + k, &nl, 2), k += 2;
    memcpy(h + k, &count, 8), k += 8;
    uint64_t hh = XXH64(h, k, 0);
    memcpy(h + k, &hh, 8), k += 8;
    put(fd, h, k);
    unsigned char end[20] = { 0 };
    put(fd, end, 20);
    close(fd);

    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[512];
    if (ckpt_open(path, &r, &info, err, sizeof(err)) < 0)
        abort();                    /* the wrapper itself is well-formed */
    struct engine *e;
    struct engine_output out = { 0 };
    if (engine_new(job, NULL, &out, &e) < 0)
        abort();
    if (engine_restore(e, r, 0, NULL, err, sizeof(err)) == 0) {
        engine_partition_add(e, 0, 0);
        for (size_t i = 0; i < 4; i++)
            engine_feed(e, 0, 0, (int64_t)i, recs[i], strlen(recs[i]), 0);
        engine_finish(e);
    }
    ckpt_close(r);
    engine_free(e);
    return 0;
}
