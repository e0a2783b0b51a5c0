/*
 * test_envsubst.c - ${VAR} substitution and its position map.
 */
#include <check.h>
#include <string.h>

#include "../../config/envsubst.h"
#include "suites.h"

static const char *fake_env(const char *name, void *ud)
{
    (void)ud;
    if (strcmp(name, "HOST") == 0) return "kafka.internal:9092";
    if (strcmp(name, "EMPTY") == 0) return "";
    if (strcmp(name, "LONG") == 0) return "0123456789012345678901234567890123456789";
    return NULL;
}

static struct diags d;
static struct envsubst s;

static void teardown(void)
{
    envsubst_free(&s);
    diags_free(&d);
}

static const char *run(const char *in)
{
    envsubst_free(&s);
    diags_free(&d);
    ck_assert_int_eq(envsubst_run(&s, in, strlen(in), fake_env, NULL, &d), 0);
    return s.text;
}

START_TEST(plain_text_unchanged)
{
    ck_assert_str_eq(run("a: b\nc: 'd $x'\n"), "a: b\nc: 'd $x'\n");
    ck_assert_uint_eq(diags_count(&d), 0);
}
END_TEST

START_TEST(set_variable)
{
    ck_assert_str_eq(run("brokers: ${HOST}\n"), "brokers: kafka.internal:9092\n");
    ck_assert_uint_eq(diags_count(&d), 0);
}
END_TEST

START_TEST(default_when_unset_or_empty)
{
    ck_assert_str_eq(run("a: ${NOPE:-x:1}"), "a: x:1");
    ck_assert_str_eq(run("a: ${EMPTY:-fallback}"), "a: fallback");
    ck_assert_str_eq(run("a: ${HOST:-fallback}"), "a: kafka.internal:9092");
    ck_assert_str_eq(run("a: ${NOPE:-}"), "a: ");
    ck_assert_uint_eq(diags_count(&d), 0);
}
END_TEST

START_TEST(empty_without_operator_is_kept)
{
    ck_assert_str_eq(run("a: '${EMPTY}'"), "a: ''");
    ck_assert_uint_eq(diags_count(&d), 0);
}
END_TEST

START_TEST(required_message)
{
    run("x: 1\ny: ${SECRET:?set SECRET to the Redis password}\n");
    ck_assert_uint_eq(diags_count(&d), 1);
    ck_assert_int_eq(d.v[0].line, 2);
    ck_assert_int_eq(d.v[0].col, 4);
    ck_assert_str_eq(d.v[0].msg, "environment variable SECRET is not set: "
                     "set SECRET to the Redis password");
    run("y: ${EMPTY:?must not be empty}");
    ck_assert_uint_eq(diags_count(&d), 1);
}
END_TEST

START_TEST(unset_without_default)
{
    run("y: ${NOPE}");
    ck_assert_uint_eq(diags_count(&d), 1);
    ck_assert_str_eq(d.v[0].msg, "environment variable NOPE is not set "
                     "(use ${NOPE:-default} to give a default)");
}
END_TEST

START_TEST(dollar_escape)
{
    ck_assert_str_eq(run("pw: a$$b$${HOST}"), "pw: a$b${HOST}");
    ck_assert_uint_eq(diags_count(&d), 0);
}
END_TEST

START_TEST(comments_are_not_substituted)
{
    ck_assert_str_eq(run("a: 1 # ${NOPE:?x}\n# ${ALSO_NOPE}\nb: ${HOST}"),
                     "a: 1 # ${NOPE:?x}\n# ${ALSO_NOPE}\nb: kafka.internal:9092");
    ck_assert_uint_eq(diags_count(&d), 0);
    /* '#' inside quotes or glued to a word is not a comment */
    ck_assert_str_eq(run("a: \"x # ${HOST}\"\nb: c#${HOST}\nc: it's # ${NOPE}"),
                     "a: \"x # kafka.internal:9092\"\nb: c#kafka.internal:9092\n"
                     "c: it's # ${NOPE}");
    ck_assert_uint_eq(diags_count(&d), 0);
}
END_TEST

START_TEST(bad_references)
{
    run("a: ${1X}\nb: ${HOST\nc: ${}");
    ck_assert_uint_eq(diags_count(&d), 3);
    ck_assert_int_eq(d.v[0].line, 1);
    ck_assert_str_eq(d.v[0].msg, "bad variable reference \"${1X}\": expected ${NAME}, "
                     "${NAME:-default} or ${NAME:?message}");
    ck_assert_int_eq(d.v[1].line, 2);
    ck_assert_int_eq(d.v[1].col, 4);
    ck_assert_str_eq(d.v[1].msg, "unterminated \"${\": expected \"}\" on the same line");
    ck_assert_int_eq(d.v[2].line, 3);
}
END_TEST

START_TEST(positions_map_back)
{
    int line, col;
    run("a: ${LONG} b\nc: ${NOPE:-x} d\n");
    /* "b" is at column 11 of the substituted line 0 -> column 12 in the file */
    const char *b = strchr(s.text, 'b');
    envsubst_pos(&s, 0, (size_t)(b - s.text), &line, &col);
    ck_assert_int_eq(line, 1);
    ck_assert_int_eq(col, 12);
    /* inside the substituted value -> the "${" */
    envsubst_pos(&s, 0, 8, &line, &col);
    ck_assert_int_eq(line, 1);
    ck_assert_int_eq(col, 4);
    /* line 2: "c: x d": 'd' is column 5 (0-based) -> column 15 in the file */
    envsubst_pos(&s, 1, 5, &line, &col);
    ck_assert_int_eq(line, 2);
    ck_assert_int_eq(col, 15);
}
END_TEST

START_TEST(positions_count_characters)
{
    int line, col;
    run("name: \xed\x95\x9c\xea\xb8\x80 ${HOST} z");
    /* two Korean characters count as two columns */
    envsubst_pos(&s, 0, 9, &line, &col);
    ck_assert_int_eq(col, 10);
    const char *z = strrchr(s.text, 'z');
    size_t chars = 0;
    for (const char *p = s.text; p < z; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    envsubst_pos(&s, 0, chars, &line, &col);
    ck_assert_int_eq(col, 18);
}
END_TEST

Suite *envsubst_suite(void)
{
    Suite *su = suite_create("envsubst");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, plain_text_unchanged);
    tcase_add_test(tc, set_variable);
    tcase_add_test(tc, default_when_unset_or_empty);
    tcase_add_test(tc, empty_without_operator_is_kept);
    tcase_add_test(tc, required_message);
    tcase_add_test(tc, unset_without_default);
    tcase_add_test(tc, dollar_escape);
    tcase_add_test(tc, comments_are_not_substituted);
    tcase_add_test(tc, bad_references);
    tcase_add_test(tc, positions_map_back);
    tcase_add_test(tc, positions_count_characters);
    suite_add_tcase(su, tc);
    return su;
}
