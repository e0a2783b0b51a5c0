/*
 * test_template.c - key templates: parts, escapes, errors, checks.
 */
#include <check.h>
#include <string.h>

#include "../../config/template.h"
#include "suites.h"

static struct arena a;

static void teardown(void)
{
    arena_free(&a);
}

START_TEST(parts)
{
    struct template t;
    struct tpl_error e;
    ck_assert_int_eq(template_parse(&a, "session_features:{user_id}:{window_start}", &t, &e), 0);
    ck_assert_uint_eq(t.nparts, 4);
    ck_assert_int_eq(t.parts[0].kind, TPL_TEXT);
    ck_assert_str_eq(t.parts[0].text, "session_features:");
    ck_assert_int_eq(t.parts[1].kind, TPL_FIELD);
    ck_assert_str_eq(t.parts[1].text, "user_id");
    ck_assert_uint_eq(t.parts[1].off, 17);
    ck_assert_int_eq(t.parts[2].kind, TPL_TEXT);
    ck_assert_str_eq(t.parts[2].text, ":");
    ck_assert_int_eq(t.parts[3].kind, TPL_WINDOW_START);
    ck_assert_int_eq(template_parse(&a, "{user_id}{window_end}", &t, &e), 0);
    ck_assert_uint_eq(t.nparts, 2);
    ck_assert_int_eq(t.parts[1].kind, TPL_WINDOW_END);
}
END_TEST

START_TEST(escapes)
{
    struct template t;
    struct tpl_error e;
    ck_assert_int_eq(template_parse(&a, "{{lit}}:{user_id}:}}", &t, &e), 0);
    ck_assert_uint_eq(t.nparts, 3);
    ck_assert_str_eq(t.parts[0].text, "{lit}:");
    ck_assert_str_eq(t.parts[1].text, "user_id");
    ck_assert_str_eq(t.parts[2].text, ":}");
}
END_TEST

START_TEST(errors)
{
    struct template t;
    struct tpl_error e;
    ck_assert_int_lt(template_parse(&a, "a:{user_id", &t, &e), 0);
    ck_assert_uint_eq(e.off, 2);
    ck_assert_str_eq(e.msg, "unclosed '{' in key template (write '{{' for a literal brace)");
    ck_assert_int_lt(template_parse(&a, "a:{}", &t, &e), 0);
    ck_assert_str_eq(e.msg, "empty '{}' in key template");
    ck_assert_int_lt(template_parse(&a, "a}b", &t, &e), 0);
    ck_assert_uint_eq(e.off, 1);
    ck_assert_str_eq(e.msg, "unmatched '}' in key template (write '}}' for a literal brace)");
    ck_assert_int_lt(template_parse(&a, "", &t, &e), 0);
    ck_assert_str_eq(e.msg, "key template is empty");
    ck_assert_int_lt(template_parse(&a, "{a{b}", &t, &e), 0);
    ck_assert_uint_eq(e.off, 0);
}
END_TEST

START_TEST(check_names)
{
    struct template t;
    struct tpl_error e;
    const char *keys[] = { "user_id", "country" };
    ck_assert_int_eq(template_parse(&a, "f:{country}:{user_id}:{window_end}", &t, &e), 0);
    ck_assert_int_eq(template_check(&t, keys, 2, 1, &e), 0);
    ck_assert_int_lt(template_check(&t, keys, 1, 1, &e), 0);
    ck_assert_uint_eq(e.off, 2);
    ck_assert_str_eq(e.msg, "{country} is not a key field of the operator "
                     "(use a key_by field, {window_start} or {window_end})");
    ck_assert_int_lt(template_check(&t, keys, 2, 0, &e), 0);
    ck_assert_str_eq(e.msg, "{window_end} is not defined: only tumbling, sliding and session "
                            "windows have bounds (a global window, reduce, detect or join has "
                            "none)");
}
END_TEST

Suite *template_suite(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, parts);
    tcase_add_test(tc, escapes);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, check_names);
    suite_add_tcase(s, tc);
    return s;
}
