/*
 * test_store.c - the shared snapshot store (connectors/store.h) on file://,
 * and the syntax of its URLs and names (config/store_url.h).  s3:// runs
 * against a real S3-compatible server in tests/integration/t_store.sh.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../config/store_url.h"
#include "../../connectors/store.h"
#include "suites.h"

static char root[64], url[128];

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        rm_rf(p);
    }
    closedir(d);
    rmdir(path);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/sluice-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    /* the store's directory itself does not exist yet: put creates it */
    snprintf(url, sizeof(url), "file://%s/shared/", root);
}

static void teardown(void)
{
    rm_rf(root);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static char *read_file(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Counts the entries of dir whose name contains needle. */
static int count_in_dir(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "expected directory %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, needle) != NULL;
    closedir(d);
    return n;
}

START_TEST(url_syntax)
{
    struct store_url u;
    char err[256];
    ck_assert_int_eq(store_url_parse("file:///var/lib/x/", &u, err, sizeof(err)), 0);
    ck_assert_int_eq(u.kind, STORE_FILE);
    ck_assert_str_eq(u.dir, "/var/lib/x");
    ck_assert_int_eq(store_url_parse("file:///", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.dir, "/");
    ck_assert_int_eq(store_url_parse("s3://my-bucket.1", &u, err, sizeof(err)), 0);
    ck_assert_int_eq(u.kind, STORE_S3);
    ck_assert_str_eq(u.bucket, "my-bucket.1");
    ck_assert_str_eq(u.prefix, "");
    ck_assert_int_eq(store_url_parse("s3://bkt/a/b_c/", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.prefix, "a/b_c");
    ck_assert_int_eq(store_url_parse("s3://bkt/", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.prefix, "");

    static const struct { const char *url, *why; } bad[] = {
        { "", "expected file:///abs/dir" },
        { "/var/lib/x", "expected file:///abs/dir" },
        { "http://x/y", "expected file:///abs/dir" },
        { "file://relative/dir", "absolute path" },
        { "file://", "absolute path" },
        { "file:///a/../b", "component" },
        { "file:///a/./b", "component" },
        { "file:///a/b?x", "not allowed" },
        { "file:///a/\tb", "not allowed" },
        { "s3://", "3 to 63" },
        { "s3://ab", "3 to 63" },
        { "s3://Bucket", "lowercase" },
        { "s3://-bkt", "lowercase" },
        { "s3://bkt_x", "lowercase" },
        { "s3://bkt//a", "double '/'" },
        { "s3://bkt/a//b", "double '/'" },
        { "s3://bkt/a/../b", ".." },
        { "s3://bkt/a b", "not one of" },
        { "s3://bkt/%41", "not one of" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(store_url_parse(bad[i].url, &u, err, sizeof(err)) == -EINVAL,
                      "expected \"%s\" refused", bad[i].url);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "\"%s\": expected \"%s\" in \"%s\"",
                      bad[i].url, bad[i].why, err);
    }
    char longurl[STORE_DIR_MAX + 32] = "file:///";
    memset(longurl + 8, 'a', STORE_DIR_MAX + 1);
    longurl[8 + STORE_DIR_MAX + 1] = '\0';
    ck_assert_int_eq(store_url_parse(longurl, &u, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "at most"));
}
END_TEST

START_TEST(name_syntax)
{
    char err[256];
    static const char *const good[] = {
        "a", "myjob/p3/0000018c2f3a9b10-42.sluice", "A-Z_a.z/0-9", ".hidden/x", "a.b/c.d",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(store_url_name_check(good[i], err, sizeof(err)) == 0,
                      "expected \"%s\" accepted: %s", good[i], err);
    static const char *const bad[] = {
        "", "/a", "a/", "a//b", "..", "a/../b", "a..b", ".", "a/./b", "a/.", "a b", "a\\b",
        "a:b", "a%2fb", "\xc3\xa9", "a\nb", "a*b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(store_url_name_check(bad[i], err, sizeof(err)) == -EINVAL,
                      "expected \"%s\" refused", bad[i]);
    char longname[STORE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[STORE_NAME_MAX] = '\0';
    ck_assert_int_eq(store_url_name_check(longname, err, sizeof(err)), 0);
    longname[STORE_NAME_MAX] = 'a';
    longname[STORE_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(store_url_name_check(longname, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(open_refuses)
{
    struct store *st = (struct store *)1;
    char err[256];
    ck_assert_int_eq(store_open("file://rel", &st, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(st);
    /* s3:// without credentials says which variables it needs */
    char *id = getenv("AWS_ACCESS_KEY_ID") ? strdup(getenv("AWS_ACCESS_KEY_ID")) : NULL;
    unsetenv("AWS_ACCESS_KEY_ID");
    ck_assert_int_eq(store_open("s3://bkt/x", &st, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "AWS_ACCESS_KEY_ID"));
    setenv("AWS_ACCESS_KEY_ID", "k", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    setenv("AWS_ENDPOINT_URL", "ftp://x", 1);
    ck_assert_int_eq(store_open("s3://bkt/x", &st, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "AWS_ENDPOINT_URL"));
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/", 1);
    setenv("AWS_REGION", "EU WEST", 1);
    ck_assert_int_eq(store_open("s3://bkt/x", &st, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "AWS_REGION"));
    unsetenv("AWS_REGION");
    ck_assert_int_eq(store_open("s3://bkt/x", &st, err, sizeof(err)), 0);
    ck_assert_str_eq(store_url(st), "s3://bkt/x");
    store_free(st);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ENDPOINT_URL");
    if (id != NULL)
        setenv("AWS_ACCESS_KEY_ID", id, 1);
    else
        unsetenv("AWS_ACCESS_KEY_ID");
    free(id);
}
END_TEST

START_TEST(file_put_get_list_delete)
{
    struct store *st;
    char err[512], src[PATH_MAX], dst[PATH_MAX], p[PATH_MAX];
    ck_assert_int_eq(store_open(url, &st, err, sizeof(err)), 0);
    ck_assert_str_eq(store_url(st), url);
    snprintf(src, sizeof(src), "%s/src", root);
    write_file(src, "snapshot one");

    /* parent directories (and the store's own) are created */
    ck_assert_msg(store_put(st, "job/p3/0001-1.sluice", src, err, sizeof(err)) == 0, "%s", err);
    write_file(src, "snapshot two");
    ck_assert_int_eq(store_put(st, "job/p3/0001-2.sluice", src, err, sizeof(err)), 0);
    ck_assert_int_eq(store_put(st, "job/p10/0001-2.sluice", src, err, sizeof(err)), 0);
    ck_assert_int_eq(store_put(st, "other/x", src, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/shared/job/p3/0001-1.sluice", root);
    ck_assert_str_eq(read_file(p), "snapshot one");

    /* no temporary file is left behind */
    snprintf(p, sizeof(p), "%s/shared/job/p3", root);
    ck_assert_int_eq(count_in_dir(p, ".tmp"), 0);
    ck_assert_int_eq(count_in_dir(p, ".sluice"), 2);

    snprintf(dst, sizeof(dst), "%s/got", root);
    ck_assert_int_eq(store_get(st, "job/p3/0001-1.sluice", dst, err, sizeof(err)), 0);
    ck_assert_str_eq(read_file(dst), "snapshot one");
    ck_assert_int_eq(count_in_dir(root, "got.tmp"), 0);
    /* a get replaces what was at path */
    ck_assert_int_eq(store_get(st, "job/p3/0001-2.sluice", dst, err, sizeof(err)), 0);
    ck_assert_str_eq(read_file(dst), "snapshot two");

    /* missing: -ENOENT, and path untouched */
    ck_assert_int_eq(store_get(st, "job/p3/0009-9.sluice", dst, err, sizeof(err)), -ENOENT);
    ck_assert_msg(strstr(err, "no such object") != NULL, "expected the reason, got %s", err);
    ck_assert_str_eq(read_file(dst), "snapshot two");
    /* a directory is not an object */
    ck_assert_int_eq(store_get(st, "job/p3", dst, err, sizeof(err)), -ENOENT);

    char **names;
    size_t n;
    ck_assert_int_eq(store_list(st, "job/p3/", &names, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], "job/p3/0001-1.sluice");
    ck_assert_str_eq(names[1], "job/p3/0001-2.sluice");
    store_names_free(names, n);
    /* a prefix that is not a whole directory */
    ck_assert_int_eq(store_list(st, "job/p1", &names, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(names[0], "job/p10/0001-2.sluice");
    store_names_free(names, n);
    ck_assert_int_eq(store_list(st, "", &names, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(names[0], "job/p10/0001-2.sluice");
    ck_assert_str_eq(names[3], "other/x");
    store_names_free(names, n);
    ck_assert_int_eq(store_list(st, "nothing/", &names, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(names);
    ck_assert_int_eq(store_list(st, "../", &names, &n, err, sizeof(err)), -EINVAL);

    /* an upload in progress (or left by a crash) is never listed */
    snprintf(p, sizeof(p), "%s/shared/job/p3/0001-3.sluice.tmp-0123456789abcdef", root);
    write_file(p, "half");
    ck_assert_int_eq(store_list(st, "job/p3/", &names, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    store_names_free(names, n);

    ck_assert_int_eq(store_delete(st, "job/p3/0001-1.sluice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_delete(st, "job/p3/0001-1.sluice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_list(st, "job/p3/", &names, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(names[0], "job/p3/0001-2.sluice");
    store_names_free(names, n);

    struct store_stats s;
    store_get_stats(st, &s);
    ck_assert_uint_eq(s.puts, 4);
    ck_assert_uint_eq(s.put_bytes, 4 * 12);
    ck_assert_uint_eq(s.gets, 2);
    ck_assert_uint_eq(s.get_bytes, 24);
    ck_assert_uint_eq(s.deletes, 2);
    ck_assert_uint_eq(s.errors, 1);        /* the bad list prefix; a missing object is none */
    store_free(st);
}
END_TEST

START_TEST(file_bad_names_and_paths)
{
    struct store *st;
    char err[512], src[PATH_MAX];
    ck_assert_int_eq(store_open(url, &st, err, sizeof(err)), 0);
    snprintf(src, sizeof(src), "%s/src", root);
    write_file(src, "x");
    static const char *const bad[] = { "../escape", "/abs", "a//b", "a/", "", "a b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_int_eq(store_put(st, bad[i], src, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "object name") != NULL, "expected a reason, got %s", err);
        ck_assert_int_eq(store_get(st, bad[i], src, err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(store_delete(st, bad[i], err, sizeof(err)), -EINVAL);
    }
    /* nothing escaped the store's directory */
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/escape", root);
    ck_assert_int_ne(access(p, F_OK), 0);
    /* a missing source file is the source's error, with its path */
    snprintf(p, sizeof(p), "%s/missing", root);
    ck_assert_int_eq(store_put(st, "a", p, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, p));
    /* a name whose directory is a file cannot be written */
    ck_assert_int_eq(store_put(st, "f", src, err, sizeof(err)), 0);
    ck_assert_int_lt(store_put(st, "f/g", src, err, sizeof(err)), 0);
    struct store_stats s;
    store_get_stats(st, &s);
    ck_assert_uint_eq(s.errors, 3 * 6 + 2);
    ck_assert_uint_eq(s.puts, 1);
    store_free(st);
}
END_TEST

Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, url_syntax);
    tcase_add_test(tc, name_syntax);
    tcase_add_test(tc, open_refuses);
    tcase_add_test(tc, file_put_get_list_delete);
    tcase_add_test(tc, file_bad_names_and_paths);
    suite_add_tcase(s, tc);
    return s;
}
