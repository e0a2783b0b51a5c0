/*
 * test_assign.c - a partition's assignment (cmd/checkpoint.c chkpt_assign):
 * the shard the group's commit names is restored from the local copy when
 * it is the same, else from the shared store; its size, checksum and
 * offset are checked against the commit, and the commit's `prev` is used
 * when the newest is unusable.  Real snapshot files, written by the
 * engine, in a file:// store under a temporary directory.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "../../cmd/checkpoint.h"
#include "../../cmd/shardmeta.h"
#include "../../config/diag.h"
#include "../../engine/ckpt_file.h"
#include "suites.h"

static const char job_text[] =
    "job: assign\n"
    "http: none\n"
    "state: { dir: %s/state, shared: 'file://%s/store', checkpoint_interval: 1h }\n"
    "sources:\n"
    "  events:\n"
    "    type: kafka\n"
    "    brokers: 127.0.0.1:1\n"
    "    topic: t\n"
    "    format: json\n"
    "    schema: { user_id: string, price: double }\n"
    "    event_time: { field: ts, format: epoch_ms }\n"
    "operators:\n"
    "  spend:\n"
    "    from: events\n"
    "    key_by: user_id\n"
    "    window: { type: tumbling, size: 1h }\n"
    "    aggregates: { total: sum(price) }\n"
    "    to: out\n"
    "sinks:\n"
    "  out: { type: stdout }\n";

struct fixture {
    char dir[64];
    struct job *job;
    uv_loop_t loop;
    struct graph g;
    struct checkpoints *ck;
};

static int no_reset(void *ud)
{
    (void)ud;
    return 0;
}

static int never(void *ud)
{
    (void)ud;
    return 0;
}

static void setup(struct fixture *f)
{
    char text[2048];
    struct diags d = { 0 };
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-assign-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    int n = snprintf(text, sizeof(text), job_text, f->dir, f->dir);
    int rc = job_load_buffer("assign.yaml", text, (size_t)n, NULL, &f->job, &d);
    ck_assert_msg(rc == 0, "job: %s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    uv_loop_init(&f->loop);
    ck_assert_int_eq(graph_alloc(&f->g, f->job), 0);
    ck_assert_int_eq(chkpt_new(&f->loop, &f->ck), 0);
    struct chkpt_host h = { f, &f->g, no_reset, never };
    ck_assert_int_eq(chkpt_setup(f->ck, &h), 0);
}

static void teardown(struct fixture *f)
{
    char cmd[128];
    chkpt_close(f->ck);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    chkpt_free(f->ck);
    graph_free(&f->g);
    uv_loop_close(&f->loop);
    job_free(f->job);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A shard of partition 3 holding `users` keys, resuming at `next`, written
 * as object name in the store (and the same file at local, if not NULL);
 * its size and checksum in *m's obj fields. */
static void write_snapshot(struct fixture *f, const char *name, int users, int64_t next,
                           struct shard_meta *m)
{
    struct graph g = { 0 };
    struct shard *sh;
    char path[512], rec[128];
    ck_assert_int_eq(graph_alloc(&g, f->job), 0);
    g.out = (struct engine_output){ 0 };
    ck_assert_int_eq(graph_shard_new(&g, 3, &sh), 0);
    ck_assert_int_eq(engine_partition_add(sh->eng, 0, 3), 0);
    for (int i = 0; i < users; i++) {
        int len = snprintf(rec, sizeof(rec), "{\"user_id\":\"u%d\",\"price\":1.5,\"ts\":%d}", i,
                           1000 + i);
        ck_assert_int_eq(engine_feed(sh->eng, 0, 3, i, rec, (size_t)len, 0), 0);
    }
    struct engine_offset *o = offsets_slot(&g.offs[0], 3);
    ck_assert_ptr_nonnull(o);
    o->next = next;
    snprintf(path, sizeof(path), "%s/store/%s", f->dir, name);
    char dir[1024];
    snprintf(dir, sizeof(dir), "mkdir -p $(dirname %s)", path);
    ck_assert_int_eq(system(dir), 0);
    struct ckpt_writer w;
    ck_assert_int_eq(ckpt_writer_init(&w, 1), 0);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ckpt_write_header(&w, fileno(fp), CKPT_CHECKPOINT, 7, 0, "assign");
    struct shard_offsets so = { &g, sh };
    ck_assert_int_eq(engine_snapshot(sh->eng, &w, shard_offsets, &so), 0);
    ck_assert_int_eq(ckpt_finish(&w), 0);
    fclose(fp);
    ckpt_writer_free(&w);
    graph_free(&g);
    snprintf(m->obj, sizeof(m->obj), "%s", name);
    m->offset = next;
    m->id = 7;
    ck_assert_int_eq(shard_file_hash(path, &m->len, &m->xxh), 0);
}

static void commit_of(const struct shard_meta *m, char *buf, size_t size,
                      struct source_committed *c)
{
    int n = shard_meta_format(m, buf, size);
    ck_assert_msg(n > 0, "format: %d", n);
    *c = (struct source_committed){ m->offset, buf, (size_t)n };
}

static uint64_t keys_of(const struct fixture *f)
{
    struct engine_stats st;
    graph_stats(&f->g, &st);
    return st.state_keys;
}

START_TEST(the_named_snapshot_is_fetched_and_checked)
{
    struct fixture f;
    struct shard_meta m = { 0 };
    struct source_committed c;
    char buf[SHARD_META_MAX];
    int64_t resume = -2;
    setup(&f);
    write_snapshot(&f, "assign/p3/000000000001-7.sluice", 5, 120, &m);
    commit_of(&m, buf, sizeof(buf), &c);
    ck_assert_int_eq(chkpt_assign(f.ck, 0, 3, &c, &resume), 0);
    ck_assert_int_eq(resume, 120);
    ck_assert_uint_eq(keys_of(&f), 5);
    const struct chkpt_stats *st = chkpt_stats(f.ck);
    ck_assert_msg(st->handoffs == 1 && st->damaged == 0, "handoffs %" PRIu64 ", damaged %"
                  PRIu64 ": expected 1 and 0", st->handoffs, st->damaged);
    ck_assert_msg(st->downloaded == m.len, "expected the %" PRIu64 " bytes downloaded, got %"
                  PRIu64, m.len, st->downloaded);
    teardown(&f);
}
END_TEST

/* The local copy is the one the commit names: nothing is downloaded (the
 * store's object is even gone). */
START_TEST(a_matching_local_copy_is_not_downloaded)
{
    struct fixture f;
    struct shard_meta m = { 0 };
    struct source_committed c;
    char buf[SHARD_META_MAX], cmd[2048];
    int64_t resume = -2;
    setup(&f);
    write_snapshot(&f, "assign/p3/000000000001-7.sluice", 4, 90, &m);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/state/checkpoints/assign/p3 && mv %s/store/%s "
             "%s/state/checkpoints/%s", f.dir, f.dir, m.obj, f.dir, m.obj);
    ck_assert_int_eq(system(cmd), 0);
    commit_of(&m, buf, sizeof(buf), &c);
    ck_assert_int_eq(chkpt_assign(f.ck, 0, 3, &c, &resume), 0);
    ck_assert_int_eq(resume, 90);
    ck_assert_uint_eq(keys_of(&f), 4);
    ck_assert_uint_eq(chkpt_stats(f.ck)->downloaded, 0);
    teardown(&f);
}
END_TEST

/* The newest is damaged (its checksum is not the commit's), or resumes
 * elsewhere than the committed offset: the commit's prev is restored. */
static void check_prev_used(int how)
{
    struct fixture f;
    struct shard_meta m = { 0 }, p = { 0 };
    struct source_committed c;
    char buf[SHARD_META_MAX];
    int64_t resume = -2;
    setup(&f);
    write_snapshot(&f, "assign/p3/000000000001-6.sluice", 3, 60, &p);
    write_snapshot(&f, "assign/p3/000000000001-7.sluice", 6, 150, &m);
    snprintf(m.prev, sizeof(m.prev), "%s", p.obj);
    m.prev_len = p.len;
    m.prev_xxh = p.xxh;
    m.prev_offset = p.offset;
    if (how == 0)
        m.xxh ^= 1;                 /* the object is not what was committed */
    else
        m.offset = 151;             /* the snapshot resumes elsewhere */
    commit_of(&m, buf, sizeof(buf), &c);
    ck_assert_int_eq(chkpt_assign(f.ck, 0, 3, &c, &resume), 0);
    ck_assert_msg(resume == 60 && keys_of(&f) == 3, "expected the prev (3 keys, at 60), got %"
                  PRIu64 " keys at %" PRId64, keys_of(&f), resume);
    ck_assert_uint_eq(chkpt_stats(f.ck)->damaged, 1);
    teardown(&f);
}

START_TEST(a_damaged_snapshot_falls_back_to_prev)
{
    check_prev_used(0);
}
END_TEST

START_TEST(an_offset_mismatch_falls_back_to_prev)
{
    check_prev_used(1);
}
END_TEST

/* Nothing usable at all: the partition is read again from `start` (-1),
 * without state, rather than from the committed offset without its state. */
START_TEST(no_usable_snapshot_reads_from_the_start)
{
    struct fixture f;
    struct shard_meta m = { 0 };
    struct source_committed c;
    char buf[SHARD_META_MAX];
    int64_t resume = -2;
    setup(&f);
    write_snapshot(&f, "assign/p3/000000000001-7.sluice", 2, 40, &m);
    m.len += 1;
    commit_of(&m, buf, sizeof(buf), &c);
    ck_assert_int_eq(chkpt_assign(f.ck, 0, 3, &c, &resume), 0);
    ck_assert_int_eq(resume, -1);
    ck_assert_uint_eq(keys_of(&f), 0);
    teardown(&f);
}
END_TEST

/* A commit without metadata, or with another client's: an empty shard at
 * the committed offset. */
START_TEST(a_commit_without_our_metadata_resumes_there_empty)
{
    struct fixture f;
    int64_t resume = -2;
    setup(&f);
    struct source_committed c = { 77, NULL, 0 };
    ck_assert_int_eq(chkpt_assign(f.ck, 0, 3, &c, &resume), 0);
    ck_assert_int_eq(resume, 77);
    chkpt_revoke(f.ck, 0, 3, 0);
    ck_assert_ptr_null(graph_shard(&f.g, 3));
    c = (struct source_committed){ 78, "some-other-tool v2", 18 };
    ck_assert_int_eq(chkpt_assign(f.ck, 0, 3, &c, &resume), 0);
    ck_assert_int_eq(resume, 78);
    ck_assert_uint_eq(keys_of(&f), 0);
    teardown(&f);
}
END_TEST

Suite *assign_suite(void)
{
    Suite *s = suite_create("assign");
    TCase *tc = tcase_create("assign");
    tcase_add_test(tc, the_named_snapshot_is_fetched_and_checked);
    tcase_add_test(tc, a_matching_local_copy_is_not_downloaded);
    tcase_add_test(tc, a_damaged_snapshot_falls_back_to_prev);
    tcase_add_test(tc, an_offset_mismatch_falls_back_to_prev);
    tcase_add_test(tc, no_usable_snapshot_reads_from_the_start);
    tcase_add_test(tc, a_commit_without_our_metadata_resumes_there_empty);
    suite_add_tcase(s, tc);
    return s;
}
