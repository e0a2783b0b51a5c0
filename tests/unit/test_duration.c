/*
 * test_duration.c - duration parsing and formatting.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "../../config/job.h"
#include "suites.h"

static int64_t parse_ok(const char *s)
{
    int64_t ms = -12345;
    char err[200];
    ck_assert_msg(duration_parse(s, &ms, err, sizeof(err)) == 0, "%s: %s", s, err);
    return ms;
}

static const char *parse_err(const char *s)
{
    static char err[200];
    int64_t ms;
    ck_assert_int_lt(duration_parse(s, &ms, err, sizeof(err)), 0);
    return err;
}

START_TEST(units)
{
    ck_assert_int_eq(parse_ok("500ms"), 500);
    ck_assert_int_eq(parse_ok("10s"), 10000);
    ck_assert_int_eq(parse_ok("10m"), 600000);
    ck_assert_int_eq(parse_ok("1h"), 3600000);
    ck_assert_int_eq(parse_ok("7d"), 7 * 86400000LL);
    ck_assert_int_eq(parse_ok("0s"), 0);
    ck_assert_int_eq(parse_ok("-5s"), -5000);
}
END_TEST

START_TEST(errors)
{
    ck_assert_str_eq(parse_err("10"), "duration \"10\" has no unit (use ms, s, m, h or d)");
    ck_assert_str_eq(parse_err("10sec"), "bad duration \"10sec\": unknown unit \"sec\" "
                     "(use ms, s, m, h or d)");
    ck_assert_str_eq(parse_err("1.5h"), "bad duration \"1.5h\": unknown unit \".5h\" "
                     "(use ms, s, m, h or d)");
    ck_assert_str_eq(parse_err("h"), "bad duration \"h\": expected a whole number and a "
                     "unit, like 500ms, 10s, 10m, 1h or 7d");
    ck_assert_str_eq(parse_err(""), "bad duration \"\": expected a whole number and a "
                     "unit, like 500ms, 10s, 10m, 1h or 7d");
    ck_assert_str_eq(parse_err("10 s"), "bad duration \"10 s\": unknown unit \" s\" "
                     "(use ms, s, m, h or d)");
}
END_TEST

START_TEST(overflow)
{
    ck_assert_str_eq(parse_err("99999999999999999999ms"),
                     "duration \"99999999999999999999ms\" is too large");
    ck_assert_str_eq(parse_err("9999999999999d"), "duration \"9999999999999d\" is too large");
    /* the largest accepted value leaves room for window arithmetic */
    ck_assert_int_le(parse_ok("100000000d"), INT64_MAX / 4);
}
END_TEST

START_TEST(format)
{
    char b[32];
    duration_format(600000, b, sizeof(b));
    ck_assert_str_eq(b, "10m");
    duration_format(3600000, b, sizeof(b));
    ck_assert_str_eq(b, "1h");
    duration_format(90000, b, sizeof(b));
    ck_assert_str_eq(b, "90s");
    duration_format(1500, b, sizeof(b));
    ck_assert_str_eq(b, "1500ms");
    duration_format(0, b, sizeof(b));
    ck_assert_str_eq(b, "0ms");
    duration_format(7 * 86400000LL, b, sizeof(b));
    ck_assert_str_eq(b, "7d");
}
END_TEST

Suite *duration_suite(void)
{
    Suite *s = suite_create("duration");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, units);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, overflow);
    tcase_add_test(tc, format);
    suite_add_tcase(s, tc);
    return s;
}
