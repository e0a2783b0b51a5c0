/*
 * eval.h - evaluating `where` conditions on decoded records.
 *
 * The tree was type-checked when the job was loaded (config/expr.c), so
 * evaluation never meets a type error: it compares and adds.  int and double
 * compare exactly (an int64 is not rounded to a double first), strings by
 * bytes, bools by value.  Depth is bounded by the parser (64 levels of
 * nesting, 256 operators), so the recursion is too.
 */
#ifndef SLUICE_EVAL_H
#define SLUICE_EVAL_H

#include "../config/expr.h"
#include "record.h"

int eval_where(const struct expr *e, const struct record *r);

/* The value of any expression over a record's values (cur) and, for
 * previous.<field>, the previous record's (prev); a condition gives a bool.
 * Arithmetic saturates: ints at the int64 bounds, doubles at +-DBL_MAX. */
void eval_value2(const struct expr *e, const struct value *cur, const struct value *prev,
                 struct value *out);

/* -1, 0 or 1 for a < b, a == b, a > b; values of comparable types. */
int value_cmp(const struct value *a, const struct value *b);

#endif
