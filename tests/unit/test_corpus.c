/*
 * test_corpus.c - every bad job file under tests/bad/ gets exactly the
 * errors it declares, and every file under tests/good/ loads clean.
 *
 * A bad file declares its expected diagnostics in leading comments:
 *     # expect: LINE:COL: message
 * The loader's diagnostics, sorted by position, must match that list
 * exactly: same count, same positions, same words.  One Check test per file.
 * The environment is a fixed fake (SLUICE_TEST_SET=yes, nothing else), so
 * the results do not depend on the machine.
 */
#include <check.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "suites.h"

static glob_t bad, good;

static const char *corpus_env(const char *name, void *ud)
{
    (void)ud;
    return strcmp(name, "SLUICE_TEST_SET") == 0 ? "yes" : NULL;
}

static const struct job_load_opts opts = { corpus_env, NULL };

START_TEST(bad_file)
{
    const char *path = bad.gl_pathv[_i];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    char line[2048], expect[64][1024];
    size_t nexp = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "# expect: ", 10) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        ck_assert_uint_lt(nexp, 64);
        snprintf(expect[nexp++], sizeof(expect[0]), "%.1000s", line + 10);
    }
    fclose(f);
    ck_assert_msg(nexp > 0, "%s declares no '# expect:' lines", path);

    struct diags d = { 0 };
    struct job *job = NULL;
    int rc = job_load(path, &opts, &job, &d);
    ck_assert_msg(rc < 0 && job == NULL, "%s: loaded without errors", path);
    diags_sort(&d);
    char got[1024];
    for (size_t i = 0; i < d.n || i < nexp; i++) {
        if (i < d.n)
            snprintf(got, sizeof(got), "%d:%d: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
        ck_assert_msg(i < d.n, "%s: missing expected error: %s", path, expect[i]);
        ck_assert_msg(i < nexp, "%s: unexpected error: %s", path, got);
        ck_assert_msg(strcmp(got, expect[i]) == 0, "%s:\n  expected %s\n  got      %s",
                      path, expect[i], got);
    }
    ck_assert_uint_eq(d.dropped, 0);
    diags_free(&d);
}
END_TEST

START_TEST(good_file)
{
    const char *path = good.gl_pathv[_i];
    struct diags d = { 0 };
    struct job *job = NULL;
    int rc = job_load(path, &opts, &job, &d);
    if (rc < 0) {
        diags_sort(&d);
        ck_assert_msg(0, "%s:%d:%d: %s", path, d.v[0].line, d.v[0].col, d.v[0].msg);
    }
    ck_assert_ptr_nonnull(job);
    job_free(job);
    diags_free(&d);
}
END_TEST

START_TEST(corpus_is_large_enough)
{
    ck_assert_uint_ge(bad.gl_pathc, 30);
}
END_TEST

Suite *corpus_suite(void)
{
    Suite *s = suite_create("corpus");
    TCase *tc = tcase_create("files");
    if (glob("tests/bad/*.yaml", 0, NULL, &bad) != 0)
        bad.gl_pathc = 0;
    if (glob("tests/good/*.yaml", 0, NULL, &good) != 0)
        good.gl_pathc = 0;
    tcase_add_test(tc, corpus_is_large_enough);
    tcase_add_loop_test(tc, bad_file, 0, (int)bad.gl_pathc);
    tcase_add_loop_test(tc, good_file, 0, (int)good.gl_pathc);
    suite_add_tcase(s, tc);
    return s;
}
