/*
 * test_evtime.c - ISO-8601 event times: offsets, naive times, leap years,
 * fractions, and garbage.
 */
#include <check.h>
#include <string.h>

#include "../../engine/evtime.h"
#include "suites.h"

static int64_t ok(const char *s, int32_t tz)
{
    int64_t ms;
    const char *why = NULL;
    int rc = evtime_parse_iso8601(s, strlen(s), tz, &ms, &why);
    ck_assert_msg(rc == 0, "%s: %s", s, why);
    return ms;
}

static const char *bad(const char *s)
{
    int64_t ms;
    const char *why = NULL;
    ck_assert_msg(evtime_parse_iso8601(s, strlen(s), 0, &ms, &why) < 0, "%s parsed", s);
    return why;
}

START_TEST(utc_and_offsets)
{
    ck_assert_int_eq(ok("1970-01-01T00:00:00Z", 0), 0);
    ck_assert_int_eq(ok("2024-01-01T10:00:00Z", 0), 1704103200000LL);
    ck_assert_int_eq(ok("2024-01-01T19:00:00+09:00", 0), 1704103200000LL);
    ck_assert_int_eq(ok("2024-01-01T19:00:00+0900", 0), 1704103200000LL);
    ck_assert_int_eq(ok("2024-01-01T04:30:00-05:30", 0), 1704103200000LL);
    ck_assert_int_eq(ok("2024-01-01t10:00:00z", 0), 1704103200000LL);
    ck_assert_int_eq(ok("2024-01-01 10:00:00Z", 0), 1704103200000LL);
}
END_TEST

START_TEST(naive_times_take_the_configured_zone)
{
    /* the seed's "2024-01-01T10:00:00" in +09:00 is 01:00 UTC */
    ck_assert_int_eq(ok("2024-01-01T10:00:00", 9 * 3600), 1704070800000LL);
    ck_assert_int_eq(ok("2024-01-01T10:00:00", 0), 1704103200000LL);
    /* an explicit offset wins over the configured zone */
    ck_assert_int_eq(ok("2024-01-01T10:00:00Z", 9 * 3600), 1704103200000LL);
}
END_TEST

START_TEST(fractions_truncate_to_milliseconds)
{
    ck_assert_int_eq(ok("1970-01-01T00:00:00.5Z", 0), 500);
    ck_assert_int_eq(ok("1970-01-01T00:00:00.123Z", 0), 123);
    ck_assert_int_eq(ok("1970-01-01T00:00:00.123999999Z", 0), 123);
    ck_assert_int_eq(ok("1970-01-01T00:00:01,25Z", 0), 1250);
    ck_assert_int_eq(ok("1969-12-31T23:59:59.999Z", 0), -1);
    ck_assert_str_eq(bad("1970-01-01T00:00:00.Z"), "bad fractional seconds (1 to 9 digits)");
    ck_assert_str_eq(bad("1970-01-01T00:00:00.1234567890Z"),
                     "bad fractional seconds (1 to 9 digits)");
}
END_TEST

START_TEST(leap_years)
{
    ck_assert_int_eq(ok("2024-02-29T00:00:00Z", 0), 1709164800000LL);
    ck_assert_int_eq(ok("2000-02-29T00:00:00Z", 0), 951782400000LL);
    ck_assert_str_eq(bad("2023-02-29T00:00:00Z"), "no such date");
    ck_assert_str_eq(bad("1900-02-29T00:00:00Z"), "no such date");
    ck_assert_str_eq(bad("2024-04-31T00:00:00Z"), "no such date");
    ck_assert_int_eq(ok("2024-12-31T23:59:59Z", 0) - ok("2024-01-01T00:00:00Z", 0),
                     (366LL * 86400 - 1) * 1000);
}
END_TEST

START_TEST(garbage_and_range)
{
    ck_assert_str_eq(bad(""), "not an ISO-8601 date (expected YYYY-MM-DD)");
    ck_assert_str_eq(bad("yesterday"), "not an ISO-8601 date (expected YYYY-MM-DD)");
    ck_assert_str_eq(bad("2024-01-01"), "ISO-8601 time missing (expected YYYY-MM-DDTHH:MM:SS)");
    ck_assert_str_eq(bad("2024-01-01T10:00"), "not an ISO-8601 time of day (expected HH:MM:SS)");
    ck_assert_str_eq(bad("2024-13-01T10:00:00"), "no such date");
    ck_assert_str_eq(bad("2024-01-01T24:00:00"), "no such time of day");
    ck_assert_str_eq(bad("2024-01-01T23:60:00"), "no such time of day");
    ck_assert_str_eq(bad("2024-01-01T10:00:00+25:00"),
                     "bad UTC offset (expected Z, +HH:MM or -HH:MM)");
    ck_assert_str_eq(bad("2024-01-01T10:00:00Zjunk"), "unexpected text after the time");
    ck_assert_str_eq(bad("0001-01-01T00:00:00Z"), "year before 1900");
    ck_assert_int_eq(ok("9999-12-31T23:59:59.999Z", 0), EVTIME_MAX_MS);
    ck_assert_int_eq(ok("1900-01-01T00:00:00Z", 0), EVTIME_MIN_MS);
    ck_assert_str_eq(bad("1900-01-01T00:00:00+00:01"), "time outside 1900..9999");
}
END_TEST

START_TEST(format_round_trips)
{
    char buf[64];
    const int64_t v[] = { 0, 1704103200123LL, -1, EVTIME_MIN_MS, EVTIME_MAX_MS, 951782400000LL };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        evtime_format(v[i], buf);
        ck_assert_int_eq(ok(buf, 0), v[i]);
    }
    evtime_format(1704103200123LL, buf);
    ck_assert_str_eq(buf, "2024-01-01T10:00:00.123Z");
}
END_TEST

Suite *evtime_suite(void)
{
    Suite *s = suite_create("evtime");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, utc_and_offsets);
    tcase_add_test(tc, naive_times_take_the_configured_zone);
    tcase_add_test(tc, fractions_truncate_to_milliseconds);
    tcase_add_test(tc, leap_years);
    tcase_add_test(tc, garbage_and_range);
    tcase_add_test(tc, format_round_trips);
    suite_add_tcase(s, tc);
    return s;
}
