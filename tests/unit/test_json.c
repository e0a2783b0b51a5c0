/*
 * test_json.c - the RFC 8259 conformance corpus (tests/json/), run through
 * the real record decoder, and json_validate on values of every kind.
 *
 * tests/json/cases/ holds one record per file, named by what it checks;
 * tests/json/expected.tsv says for each file what the decoder must do:
 *     <file> TAB ok|bad_json: <reason>|<kind> TAB <byte>|- [TAB id=<text>|n=<number>]
 * One Check test per line: the decoder (schema id: string, n: double, no
 * event time) must accept or reject with exactly that kind, reason and
 * byte offset, and an accepted record must decode to the value named.
 * The corpus and the list must match file for file.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "../../engine/json.h"
#include "../../engine/record.h"
#include "suites.h"

#define DIR_CASES "tests/json/cases"
#define LIST "tests/json/expected.tsv"

struct expect {
    char file[256];
    char result[128];           /* "ok", "bad_json: <reason>" or a kind name */
    long long at;               /* -1 for "-" */
    char check[256];            /* "", "id=..." or "n=..." */
};

static struct expect *cases;
static size_t ncases;

static void load_list(void)
{
    FILE *f = fopen(LIST, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", LIST, strerror(errno));
        exit(1);
    }
    char line[1024];
    size_t cap = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (ncases == cap) {
            cap = cap ? 2 * cap : 256;
            cases = realloc(cases, cap * sizeof(*cases));
        }
        struct expect *e = &cases[ncases++];
        memset(e, 0, sizeof(*e));
        char *cols[4] = { 0 };
        char *p = line;
        for (int i = 0; i < 4 && p != NULL; i++) {
            cols[i] = p;
            p = strchr(p, '\t');
            if (p != NULL)
                *p++ = '\0';
        }
        snprintf(e->file, sizeof(e->file), "%s", cols[0]);
        snprintf(e->result, sizeof(e->result), "%s", cols[1] ? cols[1] : "");
        e->at = cols[2] == NULL || strcmp(cols[2], "-") == 0 ? -1 : atoll(cols[2]);
        snprintf(e->check, sizeof(e->check), "%s", cols[3] ? cols[3] : "");
    }
    fclose(f);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    fclose(f);
    *len = n;
    return buf;
}

static struct job *job;
static struct decoder *dec;

static void setup(void)
{
    dec = decoder_for("id", "{ id: string, n: double }", NULL, "file", &job);
}

static void teardown(void)
{
    decoder_free(dec);
    job_free(job);
    dec = NULL;
    job = NULL;
}

START_TEST(corpus_case)
{
    const struct expect *e = &cases[_i];
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", DIR_CASES, e->file);
    char *buf = slurp(path, &len);
    struct record rec;
    struct reject rej;
    char got[256];

    int rc = decoder_decode(dec, buf, len, 0, &rec, &rej);
    if (rc == 0)
        snprintf(got, sizeof(got), "ok");
    else if (rej.kind == REJ_JSON)
        snprintf(got, sizeof(got), "bad_json: %s", rej.why);
    else
        snprintf(got, sizeof(got), "%s", reject_kind_name(rej.kind));
    ck_assert_msg(strcmp(got, e->result) == 0, "%s: expected '%s', got '%s' (%s)", e->file,
                  e->result, got, rc ? rej.why : "accepted");
    if (rc != 0) {
        ck_assert_msg(rej.at == e->at, "%s: %s at byte %lld, expected byte %lld", e->file,
                      got, (long long)rej.at, e->at);
    } else if (strncmp(e->check, "id=", 3) == 0) {
        const char *want = e->check + 3;
        ck_assert_msg(rec.v[0].u.s.len == strlen(want) &&
                      memcmp(rec.v[0].u.s.p, want, strlen(want)) == 0,
                      "%s: id is '%.*s', expected '%s'", e->file, (int)rec.v[0].u.s.len,
                      rec.v[0].u.s.p, want);
    } else if (strncmp(e->check, "n=", 2) == 0) {
        double want = strtod(e->check + 2, NULL);
        ck_assert_msg(rec.v[1].u.d == want, "%s: n is %.17g, expected %.17g", e->file,
                      rec.v[1].u.d, want);
    } else {
        ck_assert_msg(e->check[0] == '\0', "%s: unknown check '%s'", e->file, e->check);
    }
    /* the grammar alone says the same, for records that are objects */
    if (strcmp(e->result, "bad_json: not a JSON object") != 0) {
        struct json_error err;
        int v = json_validate(buf, len, &err);
        int bad_grammar = strncmp(e->result, "bad_json: ", 10) == 0;
        ck_assert_msg((v < 0) == bad_grammar, "%s: json_validate says %s", e->file,
                      v < 0 ? err.reason : "valid");
        if (bad_grammar)
            ck_assert_msg(strcmp(err.reason, e->result + 10) == 0 && (long long)err.at == e->at,
                          "%s: json_validate: %s at %zu", e->file, err.reason, err.at);
    }
    free(buf);
}
END_TEST

/* Every case file is listed once, and every listed file exists. */
START_TEST(corpus_complete)
{
    DIR *d = opendir(DIR_CASES);
    ck_assert_msg(d != NULL, "%s: %s", DIR_CASES, strerror(errno));
    size_t nfiles = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        nfiles++;
        size_t hits = 0;
        for (size_t i = 0; i < ncases; i++)
            hits += strcmp(cases[i].file, de->d_name) == 0;
        ck_assert_msg(hits == 1, "%s is listed %zu times in %s, expected once", de->d_name,
                      hits, LIST);
    }
    closedir(d);
    ck_assert_msg(nfiles == ncases, "%zu files in %s, %zu lines in %s", nfiles, DIR_CASES,
                  ncases, LIST);
    ck_assert_msg(ncases >= 150, "the corpus has %zu cases, fewer than 150", ncases);
}
END_TEST

static void valid(const char *s)
{
    struct json_error err;
    int rc = json_validate(s, strlen(s), &err);
    ck_assert_msg(rc == 0, "%s: %s at %zu", s, rc ? err.reason : "", rc ? err.at : 0);
}

static void invalid(const char *s, const char *reason, size_t at)
{
    struct json_error err;
    ck_assert_msg(json_validate(s, strlen(s), &err) < 0, "%s was accepted", s);
    ck_assert_msg(strcmp(err.reason, reason) == 0 && err.at == at,
                  "%s: %s at %zu, expected %s at %zu", s, err.reason, err.at, reason, at);
}

/* Any value may stand at the top for json_validate (the fuzz target's oracle). */
START_TEST(validate_any_value)
{
    valid("0");
    valid(" -0.5e-7 ");
    valid("\"\"");
    valid("[]");
    valid("[[[],{}],{\"\":[null,true,false]}]");
    valid("\r\n\t null \r\n\t");
    invalid("", "empty record", 0);
    invalid("[1] [2]", "text after the JSON value", 4);
    invalid("tRue", "invalid literal", 0);
    invalid("[1,2", "unexpected end of input", 4);
    invalid("{\"a\":1]", "mismatched bracket", 6);
    invalid("[1}", "mismatched bracket", 2);
    invalid("\"\\uD83D\\uZZZZ\"", "invalid \\u escape", 7);
    invalid("\"\\uD83D\\u0041\"", "lone surrogate", 1);
}
END_TEST

START_TEST(unescape)
{
    char out[64];
    static const char in[] = "a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\u20AC\\uD83D\\uDE00z";
    size_t n = json_unescape(in, sizeof(in) - 1, out);
    static const char want[] = "a\"\\/\b\f\n\r\t\0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    ck_assert_uint_eq(n, sizeof(want) - 1);
    ck_assert_int_eq(memcmp(out, want, n), 0);
}
END_TEST

Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    load_list();
    TCase *tc = tcase_create("corpus");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, corpus_case, 0, (int)ncases);
    tcase_add_test(tc, corpus_complete);
    suite_add_tcase(s, tc);
    TCase *tv = tcase_create("validate");
    tcase_add_test(tv, validate_any_value);
    tcase_add_test(tv, unescape);
    suite_add_tcase(s, tv);
    return s;
}
