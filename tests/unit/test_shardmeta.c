/*
 * test_shardmeta.c - the shard snapshot's commit metadata (cmd/shardmeta.h):
 * round trips, each field, every truncation, garbage, overlong and bad
 * names, metadata that is not ours, and the file hash.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "../../cmd/shardmeta.h"
#include "suites.h"

static struct shard_meta sample(void)
{
    struct shard_meta m = { .len = 41260311, .xxh = 0x00a7f24526f80183ULL, .offset = 125034,
                            .id = 42, .prev_len = 41000000, .prev_xxh = 0xffffffffffffffffULL,
                            .prev_offset = 120000 };
    strcpy(m.obj, "ecommerce-features/p3/0000018c2f3a9b10-42.sluice");
    strcpy(m.prev, "ecommerce-features/p3/0000018c2f3a9b10-41.sluice");
    return m;
}

static void assert_same(const struct shard_meta *a, const struct shard_meta *b)
{
    ck_assert_str_eq(a->obj, b->obj);
    ck_assert_uint_eq(a->len, b->len);
    ck_assert_uint_eq(a->xxh, b->xxh);
    ck_assert_int_eq(a->offset, b->offset);
    ck_assert_uint_eq(a->id, b->id);
    ck_assert_str_eq(a->prev, b->prev);
    ck_assert_uint_eq(a->prev_len, b->prev_len);
    ck_assert_uint_eq(a->prev_xxh, b->prev_xxh);
    ck_assert_int_eq(a->prev_offset, b->prev_offset);
}

static int parse(const char *text, struct shard_meta *m, char *err, size_t errsize)
{
    return shard_meta_parse(text, strlen(text), m, err, errsize);
}

/* text and its " sum=" field, as shard_meta_format() ends it. */
static void with_sum(const char *text, char *out, size_t size)
{
    snprintf(out, size, "%s sum=%016" PRIx64, text, XXH64(text, strlen(text), 0));
}

/* Parses text with its sum appended. */
static int parse_summed(const char *text, struct shard_meta *m, char *err, size_t errsize)
{
    char buf[4096];
    with_sum(text, buf, sizeof(buf));
    return parse(buf, m, err, errsize);
}

START_TEST(round_trip)
{
    struct shard_meta m = sample(), back;
    char buf[SHARD_META_MAX], err[256];
    int n = shard_meta_format(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq((int)strlen(buf), n);
    char want[SHARD_META_MAX];
    with_sum("sluice-shard 1 obj=ecommerce-features/p3/0000018c2f3a9b10-42.sluice "
             "len=41260311 xxh=00a7f24526f80183 off=125034 id=42 "
             "prev=ecommerce-features/p3/0000018c2f3a9b10-41.sluice plen=41000000 "
             "pxxh=ffffffffffffffff poff=120000", want, sizeof(want));
    ck_assert_str_eq(buf, want);
    ck_assert_msg(shard_meta_parse(buf, (size_t)n, &back, err, sizeof(err)) == 0, "%s", err);
    assert_same(&m, &back);

    /* no previous snapshot */
    m.prev[0] = '\0';
    m.prev_len = m.prev_xxh = 0;
    m.prev_offset = 0;
    n = shard_meta_format(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(buf, " prev= plen=0 pxxh=0000000000000000 poff=0"));
    ck_assert_int_eq(shard_meta_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
    assert_same(&m, &back);

    /* the extremes of every number, and the longest names, fit in SHARD_META_MAX */
    m = sample();
    memset(m.obj, 'a', 255);
    m.obj[255] = '\0';
    memset(m.prev, 'b', 255);
    m.prev[255] = '\0';
    m.len = m.id = m.prev_len = m.xxh = UINT64_MAX;
    m.offset = m.prev_offset = INT64_MAX;
    n = shard_meta_format(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, SHARD_META_MAX);
    ck_assert_int_eq(shard_meta_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
    assert_same(&m, &back);
    m.offset = m.prev_offset = 0;
    m.len = m.id = m.xxh = 0;
    n = shard_meta_format(&m, buf, sizeof(buf));
    ck_assert_int_eq(shard_meta_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
    assert_same(&m, &back);
}
END_TEST

/* Each field, changed alone, comes back changed alone. */
START_TEST(every_field)
{
    char buf[SHARD_META_MAX], err[256];
    for (int f = 0; f < 9; f++) {
        struct shard_meta m = sample(), back;
        switch (f) {
        case 0: strcpy(m.obj, "j/p0/x-1.sluice"); break;
        case 1: m.len = 7; break;
        case 2: m.xxh = 0x1234; break;
        case 3: m.offset = 99; break;
        case 4: m.id = 1000000007; break;
        case 5: strcpy(m.prev, "j/p0/x-0.sluice"); break;
        case 6: m.prev_len = 8; break;
        case 7: m.prev_xxh = 0xabcdef; break;
        case 8: m.prev_offset = 98; break;
        }
        int n = shard_meta_format(&m, buf, sizeof(buf));
        ck_assert_int_gt(n, 0);
        ck_assert_msg(shard_meta_parse(buf, (size_t)n, &back, err, sizeof(err)) == 0,
                      "field %d: %s", f, err);
        assert_same(&m, &back);
    }
}
END_TEST

/* Every proper prefix of valid metadata is refused, never read as valid. */
START_TEST(truncation_at_every_byte)
{
    struct shard_meta m = sample(), back;
    char buf[SHARD_META_MAX], err[256];
    int n = shard_meta_format(&m, buf, sizeof(buf));
    for (int cut = 0; cut < n; cut++) {
        err[0] = '\0';
        int rc = shard_meta_parse(buf, (size_t)cut, &back, err, sizeof(err));
        ck_assert_msg(rc == (cut == 0 ? -ENODATA : cut < 13 ? -ENOMSG : -EINVAL),
                      "cut at %d: expected refused, got %d (%s)", cut, rc, err);
        ck_assert_msg(err[0] != '\0', "cut at %d: expected a reason", cut);
        ck_assert_str_eq(back.obj, "");
    }
    /* and so is anything appended */
    strcat(buf, " ");
    ck_assert_int_eq(parse(buf, &back, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "the end"));
    buf[n] = '\n';
    ck_assert_int_eq(shard_meta_parse(buf, (size_t)n + 1, &back, err, sizeof(err)), -EINVAL);
    /* a changed digit that still parses is caught by the sum */
    buf[n] = '\0';
    char *off = strstr(buf, "off=125034");
    off[4] = '2';
    ck_assert_int_eq(parse(buf, &back, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "sum mismatch"));
}
END_TEST

START_TEST(malformed_fields)
{
    struct shard_meta back;
    char err[256];
    static const char *const good =
        "sluice-shard 1 obj=j/p1/a-2.sluice len=10 xxh=0000000000000001 off=5 id=2 "
        "prev=j/p1/a-1.sluice plen=9 pxxh=0000000000000002 poff=4";
    ck_assert_msg(parse_summed(good, &back, err, sizeof(err)) == 0, "%s", err);
    static const struct { const char *from, *to, *why; } edits[] = {
        { "sluice-shard 1", "sluice-shard 2", "version 2, this sluice reads version 1" },
        { "sluice-shard 1", "sluice-shard 01", "bad version" },
        { "sluice-shard 1", "sluice-shard x", "bad version" },
        { "sluice-shard 1", "sluice-shard 99999999999999999999999", "bad version" },
        { "sluice-shard 1 obj", "sluice-shard 1  obj", "expected \" obj=\"" },
        { "len=10", "len=010", "len: bad value" },
        { "len=10", "len=-10", "len: bad value" },
        { "len=10", "len=+10", "len: bad value" },
        { "len=10", "len=", "len: bad value" },
        { "len=10", "len=18446744073709551616", "len: bad value" },
        { "len=10", "size=10", "expected \" len=\"" },
        { "xxh=0000000000000001", "xxh=1", "xxh: bad value" },
        { "xxh=0000000000000001", "xxh=000000000000000A", "xxh: bad value" },
        { "xxh=0000000000000001", "xxh=00000000000000001", "xxh: bad value" },
        { "off=5", "off=-1", "off: bad value" },
        { "off=5", "off=9223372036854775808", "off: bad value" },
        { "id=2 ", "", "expected \" id=\"" },
        { "id=2", "id=2 id=3", "expected \" prev=\"" },
        { "obj=j/p1/a-2.sluice", "obj=", "obj: object name" },
        { "obj=j/p1/a-2.sluice", "obj=../a", "obj: object name" },
        { "obj=j/p1/a-2.sluice", "obj=/etc/passwd", "obj: object name" },
        { "obj=j/p1/a-2.sluice", "obj=a;b", "obj: object name" },
        { "obj=j/p1/a-2.sluice", "obj=j/p1/a-1.sluice", "same object" },
        { "prev=j/p1/a-1.sluice", "prev=", "must be 0 without prev" },
        { "prev=j/p1/a-1.sluice", "prev=a\"b", "prev: object name" },
        { "poff=4", "poff=4x", "poff: bad value" },
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char text[2048];
        const char *at = strstr(good, edits[i].from);
        ck_assert_ptr_nonnull(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - good), good, edits[i].to,
                 at + strlen(edits[i].from));
        err[0] = '\0';
        int rc = parse_summed(text, &back, err, sizeof(err));
        ck_assert_msg(rc == -EINVAL, "\"%s\": expected -EINVAL, got %d", text, rc);
        ck_assert_msg(strstr(err, edits[i].why) != NULL, "\"%s\": expected \"%s\" in \"%s\"",
                      text, edits[i].why, err);
    }
    /* a NUL inside */
    char nul[256];
    size_t n = strlen(good);
    memcpy(nul, good, n);
    nul[20] = '\0';
    ck_assert_int_eq(shard_meta_parse(nul, n, &back, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(overlong)
{
    struct shard_meta m = sample(), back;
    char buf[4096], err[256];
    /* a name of 256 bytes */
    char name[300];
    memset(name, 'a', 256);
    name[256] = '\0';
    snprintf(buf, sizeof(buf), "sluice-shard 1 obj=%s len=1 xxh=0000000000000001 off=1 id=1 "
             "prev= plen=0 pxxh=0000000000000000 poff=0", name);
    ck_assert_int_eq(parse_summed(buf, &back, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "obj: bad value"));
    /* more than SHARD_META_MAX bytes in all */
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "sluice-shard 1 ", 15);
    ck_assert_int_eq(shard_meta_parse(buf, SHARD_META_MAX + 1, &back, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "at most 1024"));
    /* formatting into a buffer too small */
    ck_assert_int_eq(shard_meta_format(&m, buf, 40), -ENOSPC);
    int n = shard_meta_format(&m, buf, sizeof(buf));
    ck_assert_int_eq(shard_meta_format(&m, buf, (size_t)n), -ENOSPC);
    ck_assert_int_eq(shard_meta_format(&m, buf, (size_t)n + 1), n);
}
END_TEST

START_TEST(format_refuses_bad_meta)
{
    char buf[SHARD_META_MAX];
    struct shard_meta m = sample();
    strcpy(m.obj, "../x");
    ck_assert_int_eq(shard_meta_format(&m, buf, sizeof(buf)), -EINVAL);
    m = sample();
    m.obj[0] = '\0';
    ck_assert_int_eq(shard_meta_format(&m, buf, sizeof(buf)), -EINVAL);
    m = sample();
    strcpy(m.prev, "a b");
    ck_assert_int_eq(shard_meta_format(&m, buf, sizeof(buf)), -EINVAL);
    m = sample();
    m.offset = -1;
    ck_assert_int_eq(shard_meta_format(&m, buf, sizeof(buf)), -EINVAL);
    m = sample();
    m.prev[0] = '\0';
    ck_assert_int_eq(shard_meta_format(&m, buf, sizeof(buf)), -EINVAL);  /* plen set */
    m = sample();
    memset(m.obj, 'a', sizeof(m.obj));                                   /* unterminated */
    ck_assert_int_eq(shard_meta_format(&m, buf, sizeof(buf)), -EINVAL);
}
END_TEST

START_TEST(not_ours)
{
    struct shard_meta back;
    char err[256];
    ck_assert_int_eq(shard_meta_parse("", 0, &back, err, sizeof(err)), -ENODATA);
    ck_assert_str_eq(err, "no metadata");
    static const char *const others[] = {
        "{\"app\":\"other\",\"offset\":5}", "sluice-shard", "sluice-shard1 obj=a",
        "SLUICE-SHARD 1 obj=a", "x", "\x01\x02\xff", " sluice-shard 1",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        int rc = parse(others[i], &back, err, sizeof(err));
        ck_assert_msg(rc == -ENOMSG, "\"%s\": expected -ENOMSG, got %d", others[i], rc);
        ck_assert_msg(strstr(err, "not sluice's") != NULL, "expected a reason, got %s", err);
        for (const char *p = err; *p != '\0'; p++)
            ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
                          "the reason is printable: %s", err);
    }
}
END_TEST

/* Random bytes, and random edits of valid metadata: never accepted unless
 * they still format back to themselves, never a crash (ASan). */
START_TEST(random_garbage)
{
    struct shard_meta m = sample(), back;
    char good[SHARD_META_MAX], buf[SHARD_META_MAX + 64], again[SHARD_META_MAX], err[256];
    int n = shard_meta_format(&m, good, sizeof(good));
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t len;
        if (iter % 2 == 0) {                    /* valid, with a few bytes changed */
            memcpy(buf, good, (size_t)n);
            len = (size_t)n;
            for (int k = 0; k < 1 + (int)(seed % 3); k++) {
                uint64_t r = seed * (uint64_t)(k + 1) * 0x2545f4914f6cdd1dULL;
                buf[(r >> 8) % len] = (char)(r >> 40);
            }
        } else {                                /* the tag, then random bytes */
            len = 13 + (size_t)(seed % 200);
            memcpy(buf, "sluice-shard ", 13);
            for (size_t i = 13; i < len; i++)
                buf[i] = " =0123456789abcdefxojlpr/.-\0\xff"[(seed >> (i % 56)) % 30];
        }
        int rc = shard_meta_parse(buf, len, &back, err, sizeof(err));
        ck_assert_msg(rc == 0 || rc == -EINVAL || rc == -ENOMSG, "unexpected %d", rc);
        if (rc == 0) {
            /* what it accepts is exactly what format writes for it */
            int k = shard_meta_format(&back, again, sizeof(again));
            ck_assert_int_eq(k, (int)len);
            ck_assert_msg(memcmp(again, buf, len) == 0, "accepted non-canonical metadata");
            accepted++;
        }
    }
    ck_assert_int_lt(accepted, 200000);
}
END_TEST

START_TEST(file_hash)
{
    char path[64] = "/tmp/sluice-shardmeta-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = 3 * 1024 * 1024 + 17;            /* over several of the hash's chunks */
    char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 131 + (i >> 9));
    ck_assert_int_eq((int)write(fd, data, n), (int)n);
    close(fd);
    uint64_t len = 0, xxh = 0;
    ck_assert_int_eq(shard_file_hash(path, &len, &xxh), 0);
    ck_assert_uint_eq(len, n);
    ck_assert_uint_eq(xxh, XXH64(data, n, 0));
    free(data);
    unlink(path);
    ck_assert_int_eq(shard_file_hash(path, &len, &xxh), -ENOENT);
    /* empty file */
    strcpy(path, "/tmp/sluice-shardmeta-XXXXXX");
    fd = mkstemp(path);
    close(fd);
    ck_assert_int_eq(shard_file_hash(path, &len, &xxh), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(xxh, XXH64("", 0, 0));
    unlink(path);
}
END_TEST

Suite *shardmeta_suite(void)
{
    Suite *s = suite_create("shardmeta");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, every_field);
    tcase_add_test(tc, truncation_at_every_byte);
    tcase_add_test(tc, malformed_fields);
    tcase_add_test(tc, overlong);
    tcase_add_test(tc, format_refuses_bad_meta);
    tcase_add_test(tc, not_ours);
    tcase_add_test(tc, random_garbage);
    tcase_add_test(tc, file_hash);
    suite_add_tcase(s, tc);
    return s;
}
