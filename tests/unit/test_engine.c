/*
 * test_engine.c - the engine end to end on small streams: the seeds'
 * window examples in event time, processing time on a fake clock,
 * idleness, late and invalid records, and state cleanup.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../config/job.h"
#include "../../engine/ckpt_file.h"
#include "../../engine/engine.h"
#include "../../engine/timers.h"
#include "suites.h"

static struct job *job;
static struct engine *eng;
static int64_t fake_now;
static char got[64][128];
static int64_t versions[64];
static int ngot, nlate, ninvalid, last_dead_letter;

static int64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static void on_result(void *ud, const struct engine_result *r)
{
    (void)ud;
    ck_assert_int_lt(ngot, 64);
    versions[ngot] = r->version;
    char *p = got[ngot++];
    p += sprintf(p, "%.*s", (int)r->keys[0].u.s.len, r->keys[0].u.s.p);
    if (r->start != INT64_MIN)
        p += sprintf(p, " [%" PRId64 ",%" PRId64 ")", r->start, r->end);
    for (size_t i = 0; i < r->nvals; i++)
        p += sprintf(p, " %" PRId64, r->vals[i].u.i);
}

static void on_late(void *ud, int op, int sink, const struct record *rec)
{
    (void)ud, (void)op;
    ck_assert_int_ge(sink, 0);
    ck_assert_ptr_nonnull(rec->raw);
    nlate++;
}

static void on_invalid(void *ud, int source, int dl, int32_t part, int64_t off, const char *raw,
                       size_t len, const struct reject *rej)
{
    (void)ud, (void)source, (void)part, (void)off, (void)raw, (void)len, (void)rej;
    last_dead_letter = dl;
    ninvalid++;
}

/* The job of `text`, its results to `result`. */
static void start_text(const char *text, void (*result)(void *, const struct engine_result *))
{
    struct diags d = { 0 };
    int rc = job_load_buffer("t.yaml", text, strlen(text), NULL, &job, &d);
    ck_assert_msg(rc == 0, "%s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    struct engine_opts o = { .clock = fake_clock };
    struct engine_output out = { NULL, result, on_late, on_invalid, NULL };
    ck_assert_int_eq(engine_new(job, &o, &out, &eng), 0);
    ngot = nlate = ninvalid = 0;
    last_dead_letter = -2;
}

/* The job: one file source s (user, v), one operator o whose settings are
 * `block` (its window, or another type's block), summing v and counting. */
static void start_block(const char *block, const char *extra_source)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "job: t\nsources:\n  s:\n    type: file\n    path: x\n"
             "    schema: { user: string, v: int }\n%s"
             "operators:\n  o:\n    from: s\n    key_by: user\n    %s\n"
             "    aggregates: { sum: sum(v), n: count() }\n    to: out\n"
             "sinks:\n  out: { type: stdout }\n  late: { type: stdout }\n",
             extra_source, block);
    start_text(text, on_result);
}

static void start(const char *window, const char *extra_source)
{
    char block[256];
    snprintf(block, sizeof(block), "window: %s", window);
    start_block(block, extra_source);
}

static void setup(void)
{
    fake_now = 1000000;
}

static void teardown(void)
{
    engine_free(eng);
    job_free(job);
    eng = NULL;
    job = NULL;
}

static void feed_off(int32_t part, int64_t off, const char *user, int v, int64_t ts)
{
    char line[128];
    int n = snprintf(line, sizeof(line), "{\"user\":\"%s\",\"v\":%d,\"ts\":%" PRId64 "}", user, v, ts);
    ck_assert_int_eq(engine_feed(eng, 0, part, off, line, (size_t)n, 0), 0);
}

static void feed_at(int32_t part, const char *user, int v, int64_t ts)
{
    feed_off(part, 0, user, v, ts);
}

#define EVENT_TIME "    event_time: { field: ts, format: epoch_ms }\n"

/* The seed's example data: (user1, 1), (user1, 3), (user1, 4), (user1, 5),
 * (user1, 0), here with the event times the seed's story gives them
 * (0.5 s, 1.0 s, 3.8 s, 4.3 s, 9.3 s), so processing delays change nothing. */
static const struct { int v; int64_t ts; } seed_tumbling[] = {
    { 1, 500 }, { 3, 1000 }, { 4, 3800 }, { 5, 4300 }, { 0, 9300 },
};

START_TEST(seed_tumbling_in_event_time)
{
    start("{ type: tumbling, size: 2s }", EVENT_TIME "    watermark: { out_of_orderness: 3s }\n");
    engine_partition_add(eng, 0, 0);
    /* delivered out of order (within 3 s): the answer is the same */
    const int order[] = { 1, 0, 3, 2, 4 };
    for (int i = 0; i < 5; i++)
        feed_at(0, "user1", seed_tumbling[order[i]].v, seed_tumbling[order[i]].ts);
    engine_finish(eng);
    ck_assert_int_eq(ngot, 4);
    ck_assert_str_eq(got[0], "user1 [0,2000) 4 2");
    ck_assert_str_eq(got[1], "user1 [2000,4000) 4 1");
    ck_assert_str_eq(got[2], "user1 [4000,6000) 5 1");
    ck_assert_str_eq(got[3], "user1 [8000,10000) 0 1");
}
END_TEST

/* Result versions (engine.h): a window's end, the same for its re-fire ... */
START_TEST(a_window_result_is_versioned_by_its_end)
{
    start("{ type: tumbling, size: 2s, allowed_lateness: 5s }",
          EVENT_TIME "    watermark: { out_of_orderness: 0s }\n");
    engine_partition_add(eng, 0, 0);
    feed_off(0, 10, "user1", 1, 500);
    feed_off(0, 11, "user1", 2, 2500);      /* the watermark passes 2000 */
    feed_off(0, 12, "user1", 4, 600);       /* late, allowed: a re-fire */
    engine_finish(eng);
    ck_assert_int_eq(ngot, 3);
    ck_assert_str_eq(got[0], "user1 [0,2000) 1 1");
    ck_assert_int_eq(versions[0], 2000);
    ck_assert_str_eq(got[1], "user1 [0,2000) 5 2");
    ck_assert_int_eq(versions[1], 2000);
    ck_assert_str_eq(got[2], "user1 [2000,4000) 2 1");
    ck_assert_int_eq(versions[2], 4000);
}
END_TEST

/* ... and, without bounds, the offset of the record that fired it */
START_TEST(a_global_result_is_versioned_by_its_record)
{
    start("{ type: global, trigger: count 2 }", "");
    engine_partition_add(eng, 0, 3);
    feed_off(3, 100, "user1", 1, 0);
    feed_off(3, 101, "user1", 2, 0);
    feed_off(3, 102, "user2", 5, 0);
    feed_off(3, 103, "user1", 3, 0);
    feed_off(3, 104, "user2", 6, 0);
    feed_off(3, 105, "user1", 4, 0);
    engine_finish(eng);
    ck_assert_int_eq(ngot, 3);
    ck_assert_str_eq(got[0], "user1 3 2");
    ck_assert_int_eq(versions[0], 101);
    ck_assert_str_eq(got[1], "user2 11 2");
    ck_assert_int_eq(versions[1], 104);
    ck_assert_str_eq(got[2], "user1 10 4");
    ck_assert_int_eq(versions[2], 105);
}
END_TEST

/* ... and a result due on a timer, the engine's input position: the
 * greatest offset fed on any partition */
START_TEST(a_timed_reduce_result_is_versioned_by_the_input_position)
{
    start_block("reduce: { emit: every 1s }", "");
    engine_partition_add(eng, 0, 0);
    engine_partition_add(eng, 0, 1);
    feed_off(0, 40, "user1", 1, 0);
    feed_off(1, 7, "user2", 2, 0);
    fake_now += 1000;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 2);
    ck_assert_int_eq(versions[0], 40);
    ck_assert_int_eq(versions[1], 40);
    feed_off(1, 8, "user1", 3, 0);
    fake_now += 1000;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 3);
    ck_assert_str_eq(got[2], "user1 4 2");
    ck_assert_int_eq(versions[2], 40);
    feed_off(0, 41, "user1", 3, 0);
    engine_finish(eng);
    ck_assert_int_eq(ngot, 4);
    ck_assert_int_eq(versions[3], 41);
}
END_TEST

/* The read positions a checkpoint records: partition 0 at 42, 1 at 9. */
static size_t two_positions(void *ud, int source, struct engine_offset *out, size_t max)
{
    (void)ud, (void)source;
    ck_assert_uint_ge(max, 2);
    out[0] = (struct engine_offset){ 0, 42 };
    out[1] = (struct engine_offset){ 1, 9 };
    return 2;
}

/* ... restored with the checkpoint: what was due comes out after a restore
 * with the position the checkpoint was taken at */
START_TEST(the_input_position_is_restored_from_a_checkpoint)
{
    start_block("reduce: { emit: every 1s }", "");
    engine_partition_add(eng, 0, 0);
    engine_partition_add(eng, 0, 1);
    feed_off(0, 41, "user1", 1, 0);
    feed_off(1, 8, "user2", 2, 0);
    char path[] = "/tmp/sluice-test-position-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    struct ckpt_writer w;
    ck_assert_int_eq(ckpt_writer_init(&w, 0), 0);
    ckpt_write_header(&w, fd, CKPT_CHECKPOINT, 1, 0, job->name);
    ck_assert_int_eq(engine_snapshot(eng, &w, two_positions, NULL), 0);
    ck_assert_int_eq(ckpt_finish(&w), 0);
    ckpt_writer_free(&w);
    close(fd);
    engine_free(eng);
    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[256];
    ck_assert_msg(ckpt_open(path, &r, &info, err, sizeof(err)) == 0, "%s", err);
    struct engine_opts o = { .clock = fake_clock };
    struct engine_output out = { NULL, on_result, on_late, on_invalid, NULL };
    ck_assert_int_eq(engine_new(job, &o, &out, &eng), 0);
    ck_assert_msg(engine_restore(eng, r, 0, NULL, err, sizeof(err)) == 0, "%s", err);
    ckpt_close(r);
    unlink(path);
    ck_assert_int_eq(ngot, 0);
    fake_now += 1000;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 2);
    ck_assert_int_eq(versions[0], 41);
    ck_assert_int_eq(versions[1], 41);
}
END_TEST

START_TEST(seed_sliding_in_event_time)
{
    /* the seed's sliding example: 2 s windows every 1 s, events 1.2 s apart */
    start("{ type: sliding, size: 2s, slide: 1s }", EVENT_TIME);
    engine_partition_add(eng, 0, 0);
    const int v[] = { 1, 3, 4, 5, 0 };
    for (int i = 0; i < 5; i++)
        feed_at(0, "user1", v[i], 1200 * (i + 1));
    engine_finish(eng);
    /* the seed's "expected" column, which processing time could not deliver */
    const char *want[] = {
        "user1 [0,2000) 1 1", "user1 [1000,3000) 4 2", "user1 [2000,4000) 7 2",
        "user1 [3000,5000) 9 2", "user1 [4000,6000) 5 1", "user1 [5000,7000) 0 1",
        "user1 [6000,8000) 0 1",
    };
    ck_assert_int_eq(ngot, 7);
    for (int i = 0; i < 7; i++)
        ck_assert_str_eq(got[i], want[i]);
}
END_TEST

START_TEST(seed_session_in_event_time)
{
    /* the seed's session example, gap 2 s, events at 0.5, 1.0, 3.0, 3.2, 8.2 s.
     * 3.0 is exactly one gap after 1.0: in Flink's event-time sessions the
     * windows [1.0, 3.0) and [3.0, 5.0) touch, so the session continues */
    start("{ type: session, gap: 2s }", EVENT_TIME);
    engine_partition_add(eng, 0, 0);
    const int v[] = { 1, 3, 4, 5, 0 };
    const int64_t ts[] = { 500, 1000, 3000, 3200, 8200 };
    for (int i = 0; i < 5; i++)
        feed_at(0, "user1", v[i], ts[i]);
    ck_assert_int_eq(ngot, 1);                  /* fired when 8.2 s moved the watermark */
    ck_assert_str_eq(got[0], "user1 [500,5200) 13 4");
    engine_finish(eng);
    ck_assert_int_eq(ngot, 2);
    ck_assert_str_eq(got[1], "user1 [8200,10200) 0 1");
    struct engine_stats st;
    engine_get_stats(eng, &st);
    ck_assert_uint_eq(st.state_keys, 0);        /* everything fired and was freed */
}
END_TEST

START_TEST(processing_time_uses_the_clock)
{
    start("{ type: tumbling, size: 10s, time: processing }", "");
    fake_now = 100000;
    feed_at(0, "a", 1, 0);
    fake_now = 105000;
    feed_at(0, "a", 2, 0);
    feed_at(0, "b", 5, 0);
    ck_assert_int_eq(ngot, 0);
    fake_now = 109998;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 0);
    fake_now = 109999;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 2);                  /* end - 1 reached */
    ck_assert_str_eq(got[0], "a [100000,110000) 3 2");
    ck_assert_str_eq(got[1], "b [100000,110000) 5 1");
    fake_now = 111000;
    feed_at(0, "a", 7, 0);
    engine_finish(eng);
    ck_assert_int_eq(ngot, 3);
    ck_assert_str_eq(got[2], "a [110000,120000) 7 1");
}
END_TEST

START_TEST(idle_partition_releases_the_watermark)
{
    start("{ type: tumbling, size: 1s }", EVENT_TIME "    watermark: { idle_timeout: 1m }\n");
    engine_partition_add(eng, 0, 0);
    engine_partition_add(eng, 0, 1);            /* assigned, but silent */
    feed_at(0, "a", 1, 500);
    fake_now += 59000;
    engine_tick(eng);                           /* the loop's periodic tick */
    feed_at(0, "a", 1, 5000);
    ck_assert_int_eq(ngot, 0);                  /* partition 1 holds it at -infinity */
    fake_now += 999;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 0);
    fake_now += 1;                              /* 1 minute since partition 1 was assigned */
    engine_tick(eng);
    ck_assert_int_eq(ngot, 1);
    ck_assert_str_eq(got[0], "a [0,1000) 1 1");
    /* partition 0 falls silent too: all idle, the watermark holds */
    fake_now += 120000;
    engine_tick(eng);
    ck_assert_int_eq(ngot, 1);
}
END_TEST

/* A repartition partition's watermark follows each input partition apart
 * (engine_partition_observe on virtual partitions): input partition 0 runs
 * far ahead of input partition 1, and 1's records, in order in their own
 * partition, are not late although 0's are newer. */
START_TEST(virtual_partitions_keep_each_input_on_time)
{
    start("{ type: tumbling, size: 10s }", EVENT_TIME);
    int32_t v0 = (int32_t)(0x80000000u | 0), v1 = (int32_t)(0x80000000u | 1);
    ck_assert_int_eq(engine_partition_add(eng, 0, v0), 0);
    ck_assert_int_eq(engine_partition_add(eng, 0, v1), 0);
    feed_at(v0, "a", 1, 95000);                     /* input 0 is at 95 s */
    engine_partition_observe(eng, 0, v0, 95000);
    ck_assert_int_eq(ngot, 0);                      /* input 1 has said nothing */
    feed_at(v1, "b", 2, 3000);                      /* input 1 at 3 s: on time in it */
    engine_partition_observe(eng, 0, v1, 3000);
    feed_at(v1, "b", 3, 12000);
    engine_partition_observe(eng, 0, v1, 12000);
    ck_assert_int_eq(nlate, 0);
    ck_assert_int_eq(ngot, 1);
    ck_assert_str_eq(got[0], "b [0,10000) 2 1");
    engine_partition_observe(eng, 0, v1, 200000);  /* a marker: input 1 at 200 s */
    ck_assert_int_eq(ngot, 2);                      /* input 0 holds it at 95 s */
    ck_assert_str_eq(got[1], "b [10000,20000) 3 1");
    engine_partition_observe(eng, 0, v0, 200000);
    ck_assert_int_eq(ngot, 3);
    ck_assert_str_eq(got[2], "a [90000,100000) 1 1");
    ck_assert_int_eq(nlate, 0);
}
END_TEST

START_TEST(late_records_go_to_the_late_sink)
{
    start("{ type: tumbling, size: 1s, late_events: late }", EVENT_TIME);
    engine_partition_add(eng, 0, 0);
    feed_at(0, "a", 1, 500);
    feed_at(0, "a", 1, 2500);                   /* [0,1000) fires */
    feed_at(0, "a", 1, 900);                    /* too late for it */
    ck_assert_int_eq(nlate, 1);
    uint64_t results, late, lost;
    engine_op_stats(eng, 0, &results, &late, &lost);
    ck_assert_uint_eq(lost, 0);
    ck_assert_uint_eq(late, 1);
    ck_assert_uint_eq(results, 1);
}
END_TEST

static void *no_realloc(void *p, size_t n)
{
    (void)p, (void)n;
    return NULL;
}

START_TEST(a_timer_that_cannot_be_set_is_counted)
{
    /* a record at 1.2 s belongs to [0,2000) and [1000,3000); firing the
     * first sets the key's timer for the second, which the queue cannot
     * take: that window is lost, and the loss must show */
    start("{ type: sliding, size: 2s, slide: 1s }", EVENT_TIME);
    engine_partition_add(eng, 0, 0);
    feed_at(0, "a", 1, 1200);
    tq_replace_realloc(no_realloc);
    engine_finish(eng);
    tq_replace_realloc(NULL);
    ck_assert_int_eq(ngot, 1);
    ck_assert_str_eq(got[0], "a [0,2000) 1 1");
    struct engine_stats st;
    engine_get_stats(eng, &st);
    ck_assert_msg(st.results_lost == 1, "results_lost: expected 1, got %" PRIu64,
                  st.results_lost);
    uint64_t results, late, lost;
    engine_op_stats(eng, 0, &results, &late, &lost);
    ck_assert_msg(lost == 1, "the operator's lost: expected 1, got %" PRIu64, lost);
}
END_TEST

START_TEST(invalid_records_are_counted_and_reported)
{
    start("{ type: tumbling, size: 1s }",
          EVENT_TIME "    on_error: dead_letter\n    dead_letter: late\n");
    const char *bad[] = { "{", "{\"user\":1,\"v\":1,\"ts\":1}", "{\"user\":\"a\",\"v\":1}",
                          "{\"user\":\"a\",\"v\":1,\"ts\":1e99}", "" };
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(engine_feed(eng, 0, 0, i, bad[i], strlen(bad[i]), 0), 0);
    feed_at(0, "a", 1, 100);
    struct engine_stats st;
    engine_get_stats(eng, &st);
    ck_assert_uint_eq(st.records_in, 6);
    ck_assert_uint_eq(st.records_invalid, 5);
    ck_assert_uint_eq(st.invalid_by_kind[REJ_JSON], 2);
    ck_assert_uint_eq(st.invalid_by_kind[REJ_TYPE], 1);
    ck_assert_uint_eq(st.invalid_by_kind[REJ_MISSING], 1);
    ck_assert_uint_eq(st.invalid_by_kind[REJ_TIME], 1);
    ck_assert_int_eq(ninvalid, 5);
    ck_assert_int_eq(last_dead_letter, 1);      /* the sink named late */
    engine_finish(eng);
    ck_assert_int_eq(ngot, 1);                  /* the good record still counts */
}
END_TEST

START_TEST(a_peeked_record_is_decoded_once)
{
    start("{ type: tumbling, size: 1s }", EVENT_TIME);
    engine_partition_add(eng, 0, 0);
    char good[] = "{\"user\":\"a\",\"v\":2,\"ts\":1500}";
    ck_assert_int_eq(engine_peek_time(eng, 0, good, strlen(good), 0), 1500);
    /* the bytes change under the same pointer: a feed of these bytes must
     * use the record as it was peeked, which shows that it was not decoded
     * again (the merge of bounded files never does this) */
    good[16] = '9';
    ck_assert_int_eq(engine_feed(eng, 0, 0, 0, good, strlen(good), 0), 0);
    /* the peek is used once: the same bytes again are decoded anew */
    ck_assert_int_eq(engine_feed(eng, 0, 0, 1, good, strlen(good), 0), 0);
    const char *bad = "{\"user\":\"a\",\"v\":1,\"ts\":1000,}";
    ck_assert_msg(engine_peek_time(eng, 0, bad, strlen(bad), 0) == INT64_MIN,
                  "a record that will be rejected has no event time");
    ck_assert_int_eq(engine_feed(eng, 0, 0, 2, bad, strlen(bad), 0), 0);
    struct engine_stats st;
    engine_get_stats(eng, &st);
    ck_assert_uint_eq(st.records_in, 3);
    ck_assert_uint_eq(st.invalid_by_kind[REJ_JSON], 1);
    ck_assert_int_eq(ninvalid, 1);
    engine_finish(eng);
    ck_assert_int_eq(ngot, 1);
    ck_assert_str_eq(got[0], "a [1000,2000) 11 2");     /* 2 as peeked, then 9 */
}
END_TEST

/* ---- prefetching (engine_prefetch, engine_feed_batch) ------------------------ */

static uint64_t pf_digest;
static uint64_t pf_results;

static void pf_mix(uint64_t v)
{
    pf_digest = (pf_digest ^ v) * 0x100000001b3ULL;
}

static void pf_on_result(void *ud, const struct engine_result *r)
{
    (void)ud;
    pf_results++;
    pf_mix((uint64_t)r->op);
    for (size_t k = 0; k < r->nkeys; k++)
        if (r->keys[k].type == VT_STRING)
            for (size_t i = 0; i < r->keys[k].u.s.len; i++)
                pf_mix((unsigned char)r->keys[k].u.s.p[i]);
        else
            pf_mix((uint64_t)r->keys[k].u.i);
    pf_mix((uint64_t)r->start);
    pf_mix((uint64_t)r->end);
    pf_mix((uint64_t)r->version);
    for (size_t i = 0; i < r->nvals; i++)
        pf_mix((uint64_t)r->vals[i].u.i);
}

#define PF_N 6000

/* Records of many keys (a string key shared by two windowed operators, a
 * two-field key of a third), some invalid; fed one way (how), the digest
 * of every result, in order. */
static uint64_t pf_run(int how)
{
    static const char text[] =
        "job: t\nsources:\n  s:\n    type: file\n    path: x\n"
        "    schema: { user: string, shop: int, v: int }\n"
        "    event_time: { field: ts, format: epoch_ms }\n"
        "    watermark: { out_of_orderness: 2s }\n"
        "operators:\n"
        "  slide:\n    from: s\n    key_by: user\n"
        "    window: { type: sliding, size: 10s, slide: 2s }\n"
        "    aggregates: { sum: sum(v), n: count() where v > 3 }\n    to: out\n"
        "  sess:\n    from: s\n    key_by: user\n    window: { type: session, gap: 3s }\n"
        "    aggregates: { n: count() }\n    to: out\n"
        "  pair:\n    from: s\n    key_by: [user, shop]\n"
        "    window: { type: tumbling, size: 5s }\n"
        "    aggregates: { sum: sum(v) }\n    to: out\n"
        "sinks:\n  out: { type: stdout }\n";
    struct diags d = { 0 };
    struct job *j = NULL;
    ck_assert_msg(job_load_buffer("t.yaml", text, sizeof(text) - 1, NULL, &j, &d) == 0, "%s",
                  d.n ? d.v[0].msg : "?");
    diags_free(&d);
    struct engine_opts o = { .clock = fake_clock };
    struct engine_output out = { NULL, pf_on_result, NULL, NULL, NULL };
    struct engine *e = NULL;
    ck_assert_int_eq(engine_new(j, &o, &out, &e), 0);
    static char lines[PF_N][96];
    static struct engine_in in[PF_N];
    uint64_t x = 42;
    for (int i = 0; i < PF_N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(x >> 33);
        int n = i % 97 == 13 ? snprintf(lines[i], sizeof(lines[i]), "{\"user\":7}")
                : snprintf(lines[i], sizeof(lines[i]),
                           "{\"user\":\"u%u\",\"shop\":%u,\"v\":%u,\"ts\":%d}",
                           r % 700, r / 700 % 3, r / 2100 % 10, i * 20 - (int)(r % 1500));
        in[i] = (struct engine_in){ lines[i], (size_t)n, i, 0 };
    }
    pf_digest = 0xcbf29ce484222325ULL;
    pf_results = 0;
    if (how == 0) {                 /* one engine_feed per record */
        for (int i = 0; i < PF_N; i++)
            ck_assert_int_eq(engine_feed(e, 0, 0, in[i].offset, in[i].data, in[i].len, 0), 0);
    } else if (how == 1) {          /* batches of odd sizes */
        for (int i = 0, n = 1; i < PF_N; i += n, n = n * 3 % 101 + 1) {
            size_t done;
            size_t m = (size_t)(PF_N - i < n ? PF_N - i : n);
            ck_assert_int_eq(engine_feed_batch(e, 0, 0, in + i, m, &done), 0);
            ck_assert_uint_eq(done, m);
        }
    } else {                        /* hints the host leaves midway */
        for (int i = 0; i < PF_N; i += 500) {
            engine_prefetch(e, 0, in + i, 500);
            for (int k = i; k < i + 500; k++) {
                char copy[96];
                const char *p = in[k].data;
                if (k % 500 == 250 || k % 500 == 251) {     /* other bytes: no match */
                    memcpy(copy, in[k].data, in[k].len);
                    p = copy;
                }
                ck_assert_int_eq(engine_feed(e, 0, 0, k, p, in[k].len, 0), 0);
            }
            engine_prefetch(e, 0, NULL, 0);
        }
    }
    engine_finish(e);
    struct engine_stats st;
    engine_get_stats(e, &st);
    ck_assert_uint_eq(st.records_in, PF_N);
    ck_assert_uint_eq(st.records_invalid, (PF_N + 83) / 97);
    pf_mix(st.records_late);
    engine_free(e);
    job_free(j);
    return pf_digest;
}

START_TEST(prefetching_changes_nothing_but_speed)
{
    uint64_t one = pf_run(0), n1 = pf_results;
    ck_assert_msg(n1 > 3000, "expected thousands of results, got %" PRIu64, n1);
    uint64_t batched = pf_run(1);
    ck_assert_uint_eq(pf_results, n1);
    ck_assert_msg(batched == one, "engine_feed_batch: results differ from engine_feed's");
    uint64_t left = pf_run(2);
    ck_assert_uint_eq(pf_results, n1);
    ck_assert_msg(left == one, "engine_prefetch left midway: results differ from engine_feed's");
}
END_TEST

/* ---- the order of a watermark jump --------------------------------------- */

static int64_t jump_end[4096];
static int njump;

static void on_jump_result(void *ud, const struct engine_result *r)
{
    (void)ud;
    ck_assert_int_lt(njump, 4096);
    jump_end[njump++] = r->end;
}

/* 60 keys, each with records far enough apart that it has several windows
 * (or sessions) pending, ends spread over a minute, all fired by one jump
 * of the watermark (engine_finish).  Popped one at a time, the timers fire
 * windows in the order of their ends, a key's next window (set while its
 * previous one fires) before any later one; popped 16 at a time
 * (engine/win_fire.c) they must still, though a batch holds timers of many
 * times and the windows set while it is checked fall between them. */
static void jump_in_order(const char *window, int expect)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "job: t\nsources:\n  s:\n    type: file\n    path: x\n"
             "    schema: { user: string, v: int }\n" EVENT_TIME
             "    watermark: { out_of_orderness: 1h }\n"
             "operators:\n  o:\n    from: s\n    key_by: user\n    window: %s\n"
             "    aggregates: { n: count() }\n    to: out\n"
             "sinks:\n  out: { type: stdout }\n", window);
    start_text(text, on_jump_result);
    njump = 0;
    for (int k = 0; k < 60; k++) {
        char user[16];
        snprintf(user, sizeof(user), "u%02d", k);
        int64_t t0 = (int64_t)(k * 7919 % 60) * 1000 + k;       /* scattered over a minute */
        feed_at(0, user, 1, t0);
        feed_at(0, user, 1, t0 + 10000);                      /* a second session */
    }
    ck_assert_int_eq(njump, 0);                 /* nothing due before the jump */
    engine_finish(eng);
    ck_assert_int_eq(njump, expect);
    for (int i = 1; i < njump; i++)
        ck_assert_msg(jump_end[i - 1] <= jump_end[i], "result %d ends at %" PRId64
                      ", after one ending at %" PRId64, i, jump_end[i], jump_end[i - 1]);
}

START_TEST(a_watermark_jump_fires_windows_in_time_order)
{
    /* each key: two records 10 s apart, each in 4 windows, none shared */
    jump_in_order("{ type: sliding, size: 4s, slide: 1s }", 60 * 8);
}
END_TEST

START_TEST(a_watermark_jump_fires_sessions_in_time_order)
{
    jump_in_order("{ type: session, gap: 3s }", 60 * 2);
}
END_TEST

Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, seed_tumbling_in_event_time);
    tcase_add_test(tc, a_peeked_record_is_decoded_once);
    tcase_add_test(tc, seed_sliding_in_event_time);
    tcase_add_test(tc, a_window_result_is_versioned_by_its_end);
    tcase_add_test(tc, a_global_result_is_versioned_by_its_record);
    tcase_add_test(tc, a_timed_reduce_result_is_versioned_by_the_input_position);
    tcase_add_test(tc, the_input_position_is_restored_from_a_checkpoint);
    tcase_add_test(tc, seed_session_in_event_time);
    tcase_add_test(tc, processing_time_uses_the_clock);
    tcase_add_test(tc, idle_partition_releases_the_watermark);
    tcase_add_test(tc, late_records_go_to_the_late_sink);
    tcase_add_test(tc, virtual_partitions_keep_each_input_on_time);
    tcase_add_test(tc, invalid_records_are_counted_and_reported);
    tcase_add_test(tc, a_timer_that_cannot_be_set_is_counted);
    tcase_add_test(tc, prefetching_changes_nothing_but_speed);
    tcase_add_test(tc, a_watermark_jump_fires_windows_in_time_order);
    tcase_add_test(tc, a_watermark_jump_fires_sessions_in_time_order);
    suite_add_tcase(s, tc);
    return s;
}
