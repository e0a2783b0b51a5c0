/*
 * test_ckpt.c - the checkpoint file format: what is written reads back,
 * and every damage is found before anything is loaded: each truncation,
 * each flipped bit, a wrong version, a missing file.  Fingerprints hash
 * names, and a checkpoint written by sluice 0.1.0 (format 1, hashing enum
 * positions: tests/fixtures/ckpt-0.1.0) still restores.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "../../config/job.h"
#include "../../engine/ckpt_file.h"
#include "../../engine/engine.h"
#include "suites.h"

#define FIXTURE "tests/fixtures/ckpt-0.1.0/"

static char path[64];

static void setup(void)
{
    strcpy(path, "/tmp/sluice-ckpt-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void teardown(void)
{
    unlink(path);
}

/* A file with two sections of `records` records each. */
static size_t write_file(int compress, int records, unsigned char **bytes)
{
    struct ckpt_writer w;
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ckpt_writer_init(&w, compress), 0);
    ckpt_write_header(&w, fd, CKPT_SAVEPOINT, 42, 1700000000000LL, "my-job");
    ckpt_section_begin(&w, CKPT_SEC_SOURCE, "events", 7);
    for (int i = 0; i < records; i++) {
        ckpt_put_i64(&w, i);
        ckpt_put(&w, "payload", 7);
        ckpt_record_end(&w);
    }
    ckpt_section_end(&w);
    ckpt_section_begin(&w, CKPT_SEC_OPERATOR, "op", 99);
    for (int i = 0; i < records; i++) {
        char big[300];
        memset(big, 'a' + i % 26, sizeof(big));
        ckpt_put_u32(&w, (uint32_t)i);
        ckpt_put(&w, big, (size_t)(i % 300));
        ckpt_record_end(&w);
    }
    ckpt_section_end(&w);
    ck_assert_int_eq(ckpt_finish(&w), 0);
    ckpt_writer_free(&w);
    close(fd);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *bytes = malloc(n);
    ck_assert_uint_eq(fread(*bytes, 1, n, f), n);
    fclose(f);
    return n;
}

static void put_file(const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static int opens(char *err, size_t size)
{
    struct ckpt_reader *r;
    struct ckpt_info info;
    int rc = ckpt_open(path, &r, &info, err, size);
    if (rc == 0)
        ckpt_close(r);
    return rc;
}

START_TEST(round_trip)
{
    for (int compress = 0; compress <= 1; compress++) {
        unsigned char *b;
        write_file(compress, 5000, &b);
        free(b);
        struct ckpt_reader *r;
        struct ckpt_info info;
        char err[256];
        ck_assert_msg(ckpt_open(path, &r, &info, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(info.kind, CKPT_SAVEPOINT);
        ck_assert_uint_eq(info.id, 42);
        ck_assert_int_eq(info.created_ms, 1700000000000LL);
        ck_assert_str_eq(info.job, "my-job");
        ck_assert_uint_eq(info.nsections, 2);
        struct ckpt_section_info s;
        const unsigned char *p;
        size_t n;
        ck_assert_int_eq(ckpt_next_section(r, &s), 1);
        ck_assert_int_eq(s.type, CKPT_SEC_SOURCE);
        ck_assert_str_eq(s.name, "events");
        ck_assert_uint_eq(s.fingerprint, 7);
        for (int i = 0; i < 5000; i++) {
            ck_assert_int_eq(ckpt_next_record(r, &p, &n), 1);
            struct ckpt_cur c = { p, p + n };
            int64_t v;
            ck_assert_int_eq(ckpt_get_i64(&c, &v), 0);
            ck_assert_int_eq(v, i);
            ck_assert_ptr_nonnull(ckpt_get_ptr(&c, 7));
            ck_assert_int_eq(ckpt_get_i64(&c, &v), -EINVAL);     /* past the record's end */
        }
        ck_assert_int_eq(ckpt_next_record(r, &p, &n), 0);
        ck_assert_int_eq(ckpt_next_section(r, &s), 1);
        ck_assert_str_eq(s.name, "op");
        int count = 0;
        while (ckpt_next_record(r, &p, &n) == 1) {
            ck_assert_uint_eq(n, 4 + (size_t)(count % 300));
            count++;
        }
        ck_assert_int_eq(count, 5000);
        ck_assert_int_eq(ckpt_next_section(r, &s), 0);
        ckpt_close(r);
    }
}
END_TEST

START_TEST(every_truncation_is_found)
{
    unsigned char *b;
    size_t n = write_file(1, 40, &b);
    char err[256];
    for (size_t len = 0; len < n; len++) {
        put_file(b, len);
        ck_assert_msg(opens(err, sizeof(err)) < 0, "truncated to %zu of %zu bytes: accepted",
                      len, n);
    }
    put_file(b, n);
    ck_assert_int_eq(opens(err, sizeof(err)), 0);
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    put_file(longer, n + 1);
    ck_assert_int_lt(opens(err, sizeof(err)), 0);
    ck_assert_str_eq(err, "1 bytes after the END section");
    free(longer);
    free(b);
}
END_TEST

START_TEST(every_flipped_bit_is_found)
{
    unsigned char *b;
    size_t n = write_file(1, 40, &b);
    char err[256];
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b[i] ^= (unsigned char)(1 << bit);
            put_file(b, n);
            ck_assert_msg(opens(err, sizeof(err)) < 0, "bit %d of byte %zu flipped: accepted",
                          bit, i);
            b[i] ^= (unsigned char)(1 << bit);
        }
    }
    free(b);
}
END_TEST

START_TEST(wrong_version_and_missing)
{
    unsigned char *b;
    size_t n = write_file(0, 3, &b);
    char err[256];
    b[8] = 9;                       /* the version field */
    put_file(b, n);
    ck_assert_int_lt(opens(err, sizeof(err)), 0);
    ck_assert_str_eq(err, "format version 9, this sluice reads versions 1 to 2");
    memcpy(b, "NOTSLUIC", 8);
    put_file(b, n);
    ck_assert_int_lt(opens(err, sizeof(err)), 0);
    ck_assert_str_eq(err, "not a sluice checkpoint (bad magic)");
    unlink(path);
    ck_assert_int_eq(opens(err, sizeof(err)), -ENOENT);
    ck_assert_str_eq(err, "No such file or directory");
    free(b);
}
END_TEST

/* Times read back are bounded: a value no engine writes fails the read. */
START_TEST(times_out_of_range_are_refused)
{
    const int64_t vals[] = { 0, CKPT_TIME_LIMIT, -CKPT_TIME_LIMIT, CKPT_TIME_LIMIT + 1,
                             -CKPT_TIME_LIMIT - 1, INT64_MAX, INT64_MIN };
    const int plain[] = { 0, 0, 0, -EINVAL, -EINVAL, -EINVAL, -EINVAL };
    const int or_max[] = { 0, 0, 0, -EINVAL, -EINVAL, 0, -EINVAL };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        int64_t v;
        struct ckpt_cur c = { (const unsigned char *)&vals[i],
                              (const unsigned char *)&vals[i] + 8 };
        ck_assert_int_eq(ckpt_get_time(&c, &v), plain[i]);
        c = (struct ckpt_cur){ (const unsigned char *)&vals[i],
                               (const unsigned char *)&vals[i] + 8 };
        ck_assert_int_eq(ckpt_get_time_or(&c, &v, INT64_MAX), or_max[i]);
        c = (struct ckpt_cur){ (const unsigned char *)&vals[i],
                               (const unsigned char *)&vals[i] + 7 };   /* short */
        ck_assert_int_eq(ckpt_get_time_or(&c, &v, INT64_MAX), -EINVAL);
    }
}
END_TEST

/* The fixture's job, its paths given as when the checkpoint was written. */
static const char *fixture_env(const char *name, void *ud)
{
    (void)ud;
    if (strcmp(name, "EVENTS") == 0)
        return "events.jsonl";
    return strcmp(name, "STATE_DIR") == 0 || strcmp(name, "RESULTS") == 0 ? "/tmp/unused" : NULL;
}

static struct job *fixture_job(void)
{
    struct job_load_opts o = { fixture_env, NULL };
    struct diags d = { 0 };
    struct job *job = NULL;
    int rc = job_load(FIXTURE "job.yaml", &o, &job, &d);
    ck_assert_msg(rc == 0, "%s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    return job;
}

/* The text the fixture's `tumbling` operator (operator 0) hashes, but for
 * its head: format 2 names the window type and time characteristic, format
 * 1 gave their positions in the enums of sluice 0.1.0. */
#define TUMBLING_REST "size=300000;slide=0;gap=0;count=0;lateness=0;" \
    "keys=user_id:string,;n=count();spend=sum(price) where event_type == \"purchase\":double"

static void check_fingerprint(uint64_t got, const char *text)
{
    uint64_t want = XXH64(text, strlen(text), 0);
    ck_assert_msg(got == want, "fingerprint: expected %016llx, the hash of \"%s\", got %016llx",
                  (unsigned long long)want, text, (unsigned long long)got);
}

START_TEST(fingerprints_hash_names)
{
    struct job *job = fixture_job();
    check_fingerprint(engine_op_fingerprint(job, 0, CKPT_VERSION),
                      "v2;window=tumbling;time=event;" TUMBLING_REST);
    check_fingerprint(engine_op_fingerprint(job, 0, 1), "v1;window=0;time=0;" TUMBLING_REST);
    check_fingerprint(engine_source_fingerprint(&job->sources[0], CKPT_VERSION),
                      "v2;file;events.jsonl");
    check_fingerprint(engine_source_fingerprint(&job->sources[0], 1), "v1;1;events.jsonl");
    job_free(job);
}
END_TEST

/* Format 1's fingerprints of every kind of operator, as 0.1.0 wrote them. */
START_TEST(format_1_fingerprints_are_0_1_0s)
{
    struct job *job = fixture_job();
    struct ckpt_reader *r;
    struct ckpt_info info;
    struct ckpt_section_info s;
    char err[256];
    ck_assert_msg(ckpt_open(FIXTURE "chk-2.sluice", &r, &info, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_uint_eq(info.version, 1);
    size_t ops = 0;
    while (ckpt_next_section(r, &s) == 1) {
        if (s.type == CKPT_SEC_SOURCE) {
            ck_assert_uint_eq(s.fingerprint, engine_source_fingerprint(&job->sources[0], 1));
            continue;
        }
        ck_assert_str_eq(s.name, job->operators[ops].name);
        uint64_t got = engine_op_fingerprint(job, (int)ops, 1);
        ck_assert_msg(got == s.fingerprint, "operator %s: 0.1.0 wrote %016llx, format 1 gives "
                      "%016llx", s.name, (unsigned long long)s.fingerprint,
                      (unsigned long long)got);
        ck_assert_msg(engine_op_fingerprint(job, (int)ops, CKPT_VERSION) != got,
                      "operator %s: formats 1 and 2 agree", s.name);
        ops++;
    }
    ck_assert_uint_eq(ops, job->noperators);
    ckpt_close(r);
    job_free(job);
}
END_TEST

START_TEST(a_0_1_0_checkpoint_restores)
{
    struct job *job = fixture_job();
    struct engine *e;
    struct engine_output none = { 0 };
    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[256];
    ck_assert_int_eq(engine_new(job, NULL, &none, &e), 0);
    ck_assert_msg(ckpt_open(FIXTURE "chk-2.sluice", &r, &info, err, sizeof(err)) == 0, "%s",
                  err);
    int rc = engine_restore(e, r, 0, NULL, err, sizeof(err));
    ck_assert_msg(rc == 0, "restore: %d %s", rc, err);
    struct engine_stats st;
    engine_get_stats(e, &st);
    ck_assert_uint_eq(st.state_keys, 11);
    ckpt_close(r);
    engine_free(e);
    job_free(job);
}
END_TEST

Suite *ckpt_suite(void)
{
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, every_truncation_is_found);
    tcase_add_test(tc, every_flipped_bit_is_found);
    tcase_add_test(tc, wrong_version_and_missing);
    tcase_add_test(tc, times_out_of_range_are_refused);
    tcase_add_test(tc, fingerprints_hash_names);
    tcase_add_test(tc, format_1_fingerprints_are_0_1_0s);
    tcase_add_test(tc, a_0_1_0_checkpoint_restores);
    suite_add_tcase(s, tc);
    return s;
}
