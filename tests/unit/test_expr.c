/*
 * test_expr.c - aggregate specs and where-expressions: precedence,
 * parentheses, in (...), string escapes, type checking, error offsets.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/expr.h"
#include "suites.h"

static const struct schema_field schema[] = {
    { "user_id", VT_STRING }, { "event_type", VT_STRING }, { "price", VT_DOUBLE },
    { "qty", VT_INT }, { "mobile", VT_BOOL },
};
#define NS (sizeof(schema) / sizeof(schema[0]))

static struct arena a;

static void teardown(void)
{
    arena_free(&a);
}

/* Parses a condition and returns its canonical form. */
static const char *canon(const char *src)
{
    static char buf[1024];
    struct expr *e;
    struct expr_error err;
    int rc = expr_parse(&a, src, schema, NS, &e, &err);
    ck_assert_msg(rc == 0, "%s: %s at %zu", src, err.msg, err.off);
    expr_format(e, schema, buf, sizeof(buf));
    return buf;
}

/* Parses a condition that must fail; returns "OFF: message". */
static const char *fails(const char *src)
{
    static char buf[512];
    struct expr *e;
    struct expr_error err;
    ck_assert_msg(expr_parse(&a, src, schema, NS, &e, &err) < 0, "%s parsed", src);
    snprintf(buf, sizeof(buf), "%zu: %s", err.off, err.msg);
    return buf;
}

static const char *agg_canon(const char *src)
{
    static char buf[1024];
    struct agg_spec s;
    struct expr_error err;
    int rc = agg_parse(&a, src, schema, NS, &s, &err);
    ck_assert_msg(rc == 0, "%s: %s at %zu", src, err.msg, err.off);
    agg_format(&s, schema, buf, sizeof(buf));
    return buf;
}

static const char *agg_fails(const char *src)
{
    static char buf[512];
    struct agg_spec s;
    struct expr_error err;
    ck_assert_msg(agg_parse(&a, src, schema, NS, &s, &err) < 0, "%s parsed", src);
    snprintf(buf, sizeof(buf), "%zu: %s", err.off, err.msg);
    return buf;
}

START_TEST(precedence)
{
    /* and binds tighter than or; not tighter than and */
    ck_assert_str_eq(canon("qty > 1 or qty < 0 and mobile"),
                     "(qty > 1 or (qty < 0 and mobile))");
    ck_assert_str_eq(canon("not mobile and qty == 2"), "(not (mobile) and qty == 2)");
    ck_assert_str_eq(canon("not not mobile"), "not (not (mobile))");
    /* left associative */
    ck_assert_str_eq(canon("mobile or mobile or mobile"), "((mobile or mobile) or mobile)");
}
END_TEST

START_TEST(parentheses)
{
    ck_assert_str_eq(canon("(qty > 1 or qty < 0) and mobile"),
                     "((qty > 1 or qty < 0) and mobile)");
    ck_assert_str_eq(canon("((((mobile))))"), "mobile");
    ck_assert_str_eq(fails("(qty > 1"), "8: expected ')' to close '(', found end of "
                     "expression");
    ck_assert_str_eq(fails("qty > 1)"), "7: unexpected ')' after the condition");
}
END_TEST

START_TEST(comparisons)
{
    ck_assert_str_eq(canon("price>=9.5"), "price >= 9.5");
    ck_assert_str_eq(canon("qty != -3"), "qty != -3");
    ck_assert_str_eq(canon("price < 1e3"), "price < 1000.0");
    ck_assert_str_eq(canon("qty <= price"), "qty <= price");   /* int vs double */
    ck_assert_str_eq(canon("mobile == true"), "mobile == true");
    ck_assert_str_eq(canon("user_id > 'm'"), "user_id > \"m\"");
}
END_TEST

START_TEST(in_lists)
{
    ck_assert_str_eq(canon("event_type in ('view', \"cart\")"),
                     "event_type in (\"view\", \"cart\")");
    ck_assert_str_eq(canon("qty not in (1, 2, 3) and mobile"),
                     "(qty not in (1, 2, 3) and mobile)");
    ck_assert_str_eq(canon("price in (1, 2.5)"), "price in (1, 2.5)");
    ck_assert_str_eq(fails("qty in ()"), "8: 'in ()' needs at least one value");
    ck_assert_str_eq(fails("qty in (1, 'a')"), "11: cannot compare int field 'qty' with "
                     "string literal");
    ck_assert_str_eq(fails("qty in 1"), "7: expected '(' after 'in', found '1'");
    ck_assert_str_eq(fails("qty in (1 2)"), "10: expected ',' or ')' in 'in' list, found '2'");
    ck_assert_str_eq(fails("qty in (price)"), "8: expected a literal, found 'price'");
}
END_TEST

START_TEST(string_escapes)
{
    ck_assert_str_eq(canon("user_id == \"a\\\"b\""), "user_id == \"a\\\"b\"");
    ck_assert_str_eq(canon("user_id == 'it\\'s'"), "user_id == \"it's\"");
    ck_assert_str_eq(canon("user_id == 'a\\\\b\\n\\t'"), "user_id == \"a\\\\b\\n\\t\"");
    ck_assert_str_eq(canon("user_id == ''"), "user_id == \"\"");
    ck_assert_str_eq(fails("user_id == 'a\\qb'"), "13: unknown escape '\\q' in string "
                     "(use \\\" \\' \\\\ \\n \\t)");
    ck_assert_str_eq(fails("user_id == \"abc"), "11: unterminated string literal");
}
END_TEST

START_TEST(type_errors)
{
    ck_assert_str_eq(fails("event_type == 3"), "11: cannot compare string field "
                     "'event_type' with int literal");
    ck_assert_str_eq(fails("mobile < true"), "7: '<' needs ordered values; bools take "
                     "only == and !=");
    ck_assert_str_eq(fails("qty and mobile"), "0: 'and' needs true/false operands, got "
                     "int field 'qty'");
    ck_assert_str_eq(fails("mobile or price"), "10: 'or' needs true/false operands, got "
                     "double field 'price'");
    ck_assert_str_eq(fails("not qty"), "4: 'not' needs true/false operands, got int "
                     "field 'qty'");
    ck_assert_str_eq(fails("price"), "0: a condition must be true/false, got double "
                     "field 'price'");
    ck_assert_str_eq(fails("nope == 1"), "0: unknown field 'nope' (not in the source "
                     "schema)");
}
END_TEST

START_TEST(syntax_errors)
{
    ck_assert_str_eq(fails(""), "0: expected a condition, found end of expression");
    ck_assert_str_eq(fails("qty = 1"), "4: '=' is not an operator; use '==' to compare");
    ck_assert_str_eq(fails("qty == "), "7: expected a field, a literal or '(', found end "
                     "of expression");
    ck_assert_str_eq(fails("qty == 1 and"), "12: expected a field, a literal or '(', "
                     "found end of expression");
    ck_assert_str_eq(fails("qty @ 1"), "4: unexpected character '@'");
    ck_assert_str_eq(fails("qty == 99999999999999999999"), "7: integer literal "
                     "99999999999999999999 is out of range");
}
END_TEST

START_TEST(depth_limit)
{
    char deep[300];
    memset(deep, '(', 200);
    strcpy(deep + 200, "mobile");
    const char *msg = fails(deep);
    ck_assert_ptr_nonnull(strstr(msg, "expression is nested more than 64 deep"));
    char nots[600] = "";
    for (int i = 0; i < 100; i++)
        strcat(nots, "not ");
    strcat(nots, "mobile");
    ck_assert_ptr_nonnull(strstr(fails(nots), "nested more than 64 deep"));
}
END_TEST

START_TEST(operator_limit)
{
    /* a chain of or's is as deep as it is long; 256 operators at most */
    size_t n = 300, len = 0;
    char *chain = malloc(n * 16);
    ck_assert_ptr_nonnull(chain);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(chain + len, "%sqty > %zu", i ? " or " : "", i);
    ck_assert_ptr_nonnull(strstr(fails(chain), "expression has more than 256 operators"));
    /* 128 comparisons joined by 127 or's stay under the limit */
    len = 0;
    for (size_t i = 0; i < 128; i++)
        len += (size_t)sprintf(chain + len, "%sqty > %zu", i ? " or " : "", i);
    canon(chain);
    free(chain);
}
END_TEST

START_TEST(aggregates)
{
    ck_assert_str_eq(agg_canon("count()"), "count()");
    ck_assert_str_eq(agg_canon("count() where event_type == \"view\""),
                     "count() where event_type == \"view\"");
    ck_assert_str_eq(agg_canon("avg(price) where event_type in ('view') and qty > 0"),
                     "avg(price) where (event_type in (\"view\") and qty > 0)");
    ck_assert_str_eq(agg_canon("sum(qty)"), "sum(qty)");
    ck_assert_str_eq(agg_canon("min(price)"), "min(price)");
    ck_assert_str_eq(agg_canon("max(qty)"), "max(qty)");
    ck_assert_str_eq(agg_canon("first(user_id)"), "first(user_id)");
    ck_assert_str_eq(agg_canon("last(mobile)"), "last(mobile)");
    ck_assert_str_eq(agg_canon("count_distinct(event_type)"), "count_distinct(event_type)");
    ck_assert_str_eq(agg_canon("  duration( )  "), "duration()");
}
END_TEST

START_TEST(aggregate_errors)
{
    ck_assert_str_eq(agg_fails("sum(event_type)"), "4: sum() needs a numeric field, but "
                     "'event_type' is string");
    ck_assert_str_eq(agg_fails("avg(mobile)"), "4: avg() needs a numeric field, but "
                     "'mobile' is bool");
    ck_assert_str_eq(agg_fails("count(price)"), "6: count() takes no argument; filter "
                     "with count() where ...");
    ck_assert_str_eq(agg_fails("duration(price)"), "9: duration() takes no argument");
    ck_assert_str_eq(agg_fails("sum()"), "4: sum() needs a field name, found ')'");
    ck_assert_str_eq(agg_fails("median(price)"), "0: unknown aggregate function 'median' "
                     "(expected count, sum, avg, min, max, first, last, count_distinct "
                     "or duration)");
    ck_assert_str_eq(agg_fails("count"), "5: expected '(' after 'count', found end of "
                     "expression");
    ck_assert_str_eq(agg_fails("count() when qty > 1"), "8: expected 'where' or the end "
                     "after count(...), found 'when'");
    ck_assert_str_eq(agg_fails("count() where"), "13: expected a condition, found end of "
                     "expression");
    ck_assert_str_eq(agg_fails("sum(nope)"), "4: unknown field 'nope' (not in the source "
                     "schema)");
    ck_assert_str_eq(agg_fails("42"), "0: expected an aggregate like count() or "
                     "sum(price), found '42'");
}
END_TEST

/* + - * bind tighter than comparisons, * tighter than + -, left to right;
 * a sign after an operand is an operator, elsewhere part of a number. */
START_TEST(arithmetic)
{
    ck_assert_str_eq(canon("qty + 2 * 3 > 10"), "(qty + (2 * 3)) > 10");
    ck_assert_str_eq(canon("qty - 1 - 2 == 0"), "((qty - 1) - 2) == 0");
    ck_assert_str_eq(canon("(qty - 1) * 2 >= -4"), "((qty - 1) * 2) >= -4");
    ck_assert_str_eq(canon("qty-1 < price*2"), "(qty - 1) < (price * 2)");
    ck_assert_str_eq(canon("qty in (-1, +2)"), "qty in (-1, 2)");
    ck_assert_str_eq(fails("user_id + 1 > 0"), "8: '+' needs numbers, got string field "
                     "'user_id' and int literal");
    ck_assert_str_eq(fails("qty * mobile"), "4: '*' needs numbers, got int field 'qty' "
                     "and bool field 'mobile'");
    ck_assert_str_eq(fails("qty + 1"), "4: a condition must be true/false, got int "
                     "expression");
}
END_TEST

/* Detect expressions: current.<f> and previous.<f>, any type of result. */
START_TEST(two_records)
{
    static char buf[256];
    struct expr *e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse2(&a, "current.qty - previous.qty >= 10000", schema, NS,
                                 &e, &err), 0);
    expr_format2(e, schema, buf, sizeof(buf));
    ck_assert_str_eq(buf, "(current.qty - previous.qty) >= 10000");
    ck_assert_int_eq(expr_parse2(&a, "current.price * 2", schema, NS, &e, &err), 0);
    ck_assert_int_eq(e->type, VT_DOUBLE);
    ck_assert_int_lt(expr_parse2(&a, "qty > previous.qty", schema, NS, &e, &err), 0);
    ck_assert_str_eq(err.msg, "'qty': write current.<field> or previous.<field>");
    ck_assert_int_lt(expr_parse2(&a, "previous.amount", schema, NS, &e, &err), 0);
    ck_assert_str_eq(err.msg, "unknown field 'amount' (not in the source schema)");
    ck_assert_uint_eq(err.off, 9);
    ck_assert_int_lt(expr_parse2(&a, "", schema, NS, &e, &err), 0);
    ck_assert_int_lt(expr_parse(&a, "previous.qty > 1", schema, NS, &e, &err), 0);
    ck_assert_str_eq(err.msg, "unknown field 'previous.qty' (not in the source schema)");
}
END_TEST

Suite *expr_suite(void)
{
    Suite *s = suite_create("expr");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, precedence);
    tcase_add_test(tc, parentheses);
    tcase_add_test(tc, comparisons);
    tcase_add_test(tc, in_lists);
    tcase_add_test(tc, string_escapes);
    tcase_add_test(tc, type_errors);
    tcase_add_test(tc, syntax_errors);
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, operator_limit);
    tcase_add_test(tc, aggregates);
    tcase_add_test(tc, aggregate_errors);
    tcase_add_test(tc, arithmetic);
    tcase_add_test(tc, two_records);
    suite_add_tcase(s, tc);
    return s;
}
