/*
 * expr.h - aggregate specs and `where` expressions of the job file.
 *
 * An aggregate is written `fn(arg) where <expr>`, e.g.
 *     avg(price) where event_type == "view" and price > 0
 * The parser builds a typed tree against the source schema, so every type
 * error (sum of a string, a string compared with a number, `and` over a
 * non-boolean) is found when the job is validated, not when a record
 * arrives.  Grammar, loosest binding first:
 *     expr  := and ("or" and)*
 *     and   := not ("and" not)*
 *     not   := "not" not | cmp
 *     cmp   := sum [ ("==" | "!=" | "<" | "<=" | ">" | ">=") sum
 *                  | ["not"] "in" "(" lit ("," lit)* ")" ]
 *     sum   := term (("+" | "-") term)*
 *     term  := prim ("*" prim)*
 *     prim  := field | lit | "(" expr ")"
 *     lit   := "string" | 'string' | number | true | false
 * Strings take the escapes \" \' \\ \n \t.  Nodes live in the caller's arena.
 * Arithmetic takes numbers: int with int is int, anything with a double is
 * double; results saturate (int64 bounds, +-DBL_MAX).  A detect operator's
 * expressions name fields as current.<field> and previous.<field>
 * (expr_parse2); elsewhere a field is its bare name.
 */
#ifndef SLUICE_EXPR_H
#define SLUICE_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

enum value_type { VT_STRING, VT_INT, VT_DOUBLE, VT_BOOL };

const char *value_type_name(enum value_type t);

struct schema_field {
    const char *name;
    enum value_type type;
};

enum expr_kind {
    EX_FIELD, EX_STR, EX_INT, EX_DOUBLE, EX_BOOL,
    EX_CMP, EX_AND, EX_OR, EX_NOT, EX_IN, EX_ARITH
};

enum cmp_op { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct expr {
    enum expr_kind kind;
    enum value_type type;       /* result type */
    size_t off;                 /* byte offset in the source text */
    int side;                   /* EX_FIELD: 0 the record (or current., left.),
                                   1 previous.<field> or right.<field> */
    union {
        int field;              /* EX_FIELD: index into the schema */
        struct { const char *s; size_t len; } str;  /* EX_STR */
        int64_t i;              /* EX_INT */
        double d;               /* EX_DOUBLE */
        int b;                  /* EX_BOOL */
        struct { enum cmp_op op; struct expr *l, *r; } cmp;
        struct { struct expr *l, *r; } bin;         /* EX_AND, EX_OR */
        struct expr *not;                           /* EX_NOT */
        struct { struct expr *l; struct expr **set; size_t n; int negate; } in;
        struct { char op; struct expr *l, *r; } arith;  /* EX_ARITH: + - * */
    } u;
};

enum agg_fn {
    AGG_COUNT, AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_FIRST, AGG_LAST,
    AGG_COUNT_DISTINCT, AGG_DURATION
};

const char *agg_fn_name(enum agg_fn fn);

struct agg_spec {
    enum agg_fn fn;
    int arg;                    /* schema index, or -1 for count()/duration() */
    struct expr *where;         /* NULL when absent */
};

struct expr_error {
    size_t off;                 /* byte offset in the source text */
    char msg[256];
};

/* Parses a full aggregate spec.  Returns 0, or -EINVAL with err filled. */
int agg_parse(struct arena *a, const char *src, const struct schema_field *schema,
              size_t nschema, struct agg_spec *out, struct expr_error *err);

/* Parses a boolean expression on its own (used by tests and future filters). */
int expr_parse(struct arena *a, const char *src, const struct schema_field *schema,
               size_t nschema, struct expr **out, struct expr_error *err);

/* Any expression (a value, not only a condition) over two records: fields
 * are written current.<field> or previous.<field>. */
int expr_parse2(struct arena *a, const char *src, const struct schema_field *schema,
                size_t nschema, struct expr **out, struct expr_error *err);

/* Two records with their own names and schemas: a detect's current and
 * previous (one schema), a join's left and right (each side's source). */
struct expr_sides {
    const char *name[2];
    const struct schema_field *schema[2];
    size_t nschema[2];
};

/* Any expression over two records: fields are written <name>.<field>
 * (EX_FIELD's side says which record). */
int expr_parse_sides(struct arena *a, const char *src, const struct expr_sides *sides,
                     struct expr **out, struct expr_error *err);

/* Writes the expression fully parenthesised into buf (truncating);
 * returns the length it would have had, like snprintf. */
size_t expr_format(const struct expr *e, const struct schema_field *schema,
                   char *buf, size_t size);

/* The same for expr_parse2's expressions (current. and previous. fields). */
size_t expr_format2(const struct expr *e, const struct schema_field *schema,
                    char *buf, size_t size);

/* The same for expr_parse_sides's expressions. */
size_t expr_format_sides(const struct expr *e, const struct expr_sides *sides,
                         char *buf, size_t size);

/* Writes "fn(arg) where <expr>" with the canonical expression form. */
size_t agg_format(const struct agg_spec *s, const struct schema_field *schema,
                  char *buf, size_t size);

#endif
