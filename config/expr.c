/*
 * expr.c - recursive-descent parser, type checker and printer for aggregate
 * specs and `where` expressions (grammar in expr.h).
 *
 * Type rules: int and double compare with each other; otherwise both sides
 * of a comparison have the same type; bools take only == and !=; `and`,
 * `or`, `not` and a whole `where` take booleans.  sum/avg/min/max need a
 * numeric field; count() and duration() take no argument.
 *
 * Nesting is bounded (EXPR_MAX_DEPTH) so hostile input cannot exhaust the
 * stack; every error carries the byte offset of the token it is about.
 */
#include "expr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_SET 1024
/* Operators (comparisons, and, or, not, in) in one expression.  A chain of
 * `or`s builds a tree as deep as it is long, and the printer and the
 * engine's evaluator recurse over it, so its size is bounded too. */
#define EXPR_MAX_OPS 256

enum tok_kind { T_END, T_IDENT, T_STRING, T_NUMBER, T_LPAREN, T_RPAREN,
                T_COMMA, T_OP, T_ARITH, T_BAD };

struct tok {
    enum tok_kind kind;
    size_t off, len;            /* span in the source */
    enum cmp_op op;             /* T_OP */
    char arith;                 /* T_ARITH: '+', '-' or '*' */
};

struct parser {
    struct arena *a;
    const char *src;
    size_t pos;
    struct tok t;               /* current token */
    const struct schema_field *schema;
    size_t nschema;
    struct expr_error *err;
    int failed;
    int depth;
    int nops;                   /* operator nodes built so far */
    const struct expr_sides *sides; /* fields are <side>.<f>; NULL: bare names */
};

const char *value_type_name(enum value_type t)
{
    switch (t) {
    case VT_STRING: return "string";
    case VT_INT:    return "int";
    case VT_DOUBLE: return "double";
    case VT_BOOL:   return "bool";
    }
    return "?";
}

static const char *const agg_names[] = {
    [AGG_COUNT] = "count", [AGG_SUM] = "sum", [AGG_AVG] = "avg",
    [AGG_MIN] = "min", [AGG_MAX] = "max", [AGG_FIRST] = "first",
    [AGG_LAST] = "last", [AGG_COUNT_DISTINCT] = "count_distinct",
    [AGG_DURATION] = "duration",
};

const char *agg_fn_name(enum agg_fn fn)
{
    return agg_names[fn];
}

static void fail_at(struct parser *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(struct parser *p, size_t off, const char *fmt, ...)
{
    va_list ap;
    if (p->failed)
        return;             /* keep the first, most precise error */
    p->failed = 1;
    p->err->off = off;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
}

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_keyword(const struct parser *p);

static void next(struct parser *p)
{
    const char *s = p->src;
    size_t i = p->pos;
    /* after an operand, '+' and '-' are operators, not signs of a number */
    int after_operand = p->t.kind == T_NUMBER || p->t.kind == T_STRING ||
                        p->t.kind == T_RPAREN || (p->t.kind == T_IDENT && !is_keyword(p));

    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    p->t.off = i;
    p->t.kind = T_BAD;
    if (s[i] == '\0') {
        p->t.kind = T_END;
    } else if (is_ident_start(s[i])) {
        while (is_ident_start(s[i]) || is_digit(s[i]) ||
               (s[i] == '.' && is_ident_start(s[i + 1])))
            i++;
        p->t.kind = T_IDENT;
    } else if ((s[i] == '+' || s[i] == '-') && after_operand) {
        p->t.kind = T_ARITH;
        p->t.arith = s[i++];
    } else if (s[i] == '*') {
        p->t.kind = T_ARITH;
        p->t.arith = s[i++];
    } else if (is_digit(s[i]) || ((s[i] == '-' || s[i] == '+' || s[i] == '.') &&
                                  (is_digit(s[i + 1]) || (s[i + 1] == '.' && is_digit(s[i + 2]))))) {
        if (s[i] == '-' || s[i] == '+')
            i++;
        while (is_digit(s[i]))
            i++;
        if (s[i] == '.') {
            i++;
            while (is_digit(s[i]))
                i++;
        }
        if ((s[i] == 'e' || s[i] == 'E') &&
            (is_digit(s[i + 1]) || ((s[i + 1] == '-' || s[i + 1] == '+') && is_digit(s[i + 2])))) {
            i += 2;
            while (is_digit(s[i]))
                i++;
        }
        p->t.kind = T_NUMBER;
    } else if (s[i] == '"' || s[i] == '\'') {
        char q = s[i++];
        while (s[i] != '\0' && s[i] != q) {
            if (s[i] == '\\' && s[i + 1] != '\0')
                i++;
            i++;
        }
        if (s[i] == q) {
            i++;
            p->t.kind = T_STRING;
        } else {
            p->t.kind = T_BAD;
            p->t.len = i - p->t.off;
            fail_at(p, p->t.off, "unterminated string literal");
            p->pos = i;
            return;
        }
    } else if (s[i] == '(') {
        i++;
        p->t.kind = T_LPAREN;
    } else if (s[i] == ')') {
        i++;
        p->t.kind = T_RPAREN;
    } else if (s[i] == ',') {
        i++;
        p->t.kind = T_COMMA;
    } else if (s[i] == '=' && s[i + 1] == '=') {
        i += 2; p->t.kind = T_OP; p->t.op = CMP_EQ;
    } else if (s[i] == '!' && s[i + 1] == '=') {
        i += 2; p->t.kind = T_OP; p->t.op = CMP_NE;
    } else if (s[i] == '<') {
        p->t.kind = T_OP;
        p->t.op = s[i + 1] == '=' ? CMP_LE : CMP_LT;
        i += s[i + 1] == '=' ? 2 : 1;
    } else if (s[i] == '>') {
        p->t.kind = T_OP;
        p->t.op = s[i + 1] == '=' ? CMP_GE : CMP_GT;
        i += s[i + 1] == '=' ? 2 : 1;
    } else if (s[i] == '=') {
        p->t.len = 1;
        fail_at(p, i, "'=' is not an operator; use '==' to compare");
        i++;
    } else {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x21 && c < 0x7f)
            fail_at(p, i, "unexpected character '%c'", c);
        else
            fail_at(p, i, "unexpected byte 0x%02x", c);
        i++;
    }
    p->t.len = i - p->t.off;
    p->pos = i;
}

static int tok_is(const struct parser *p, const char *word)
{
    size_t n = strlen(word);
    return p->t.kind == T_IDENT && p->t.len == n &&
           memcmp(p->src + p->t.off, word, n) == 0;
}

static int is_keyword(const struct parser *p)
{
    static const char *const kw[] = { "and", "or", "not", "in", "true",
                                      "false", "where" };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (tok_is(p, kw[i]))
            return 1;
    return 0;
}

static struct expr *node(struct parser *p, enum expr_kind k, size_t off)
{
    if (k >= EX_CMP && ++p->nops > EXPR_MAX_OPS) {
        fail_at(p, off, "expression has more than %d operators (use 'in (...)' "
                "for long lists of values)", EXPR_MAX_OPS);
        return NULL;
    }
    struct expr *e = arena_alloc(p->a, sizeof(*e));
    if (e == NULL) {
        fail_at(p, off, "out of memory");
        return NULL;
    }
    e->kind = k;
    e->off = off;
    return e;
}

static const char *tok_desc(const struct parser *p, char *buf, size_t size)
{
    switch (p->t.kind) {
    case T_END:
        return "end of expression";
    default:
        snprintf(buf, size, "'%.*s'", (int)(p->t.len > 40 ? 40 : p->t.len),
                 p->src + p->t.off);
        return buf;
    }
}

static int lookup_field(const struct schema_field *schema, size_t nschema, const char *s,
                        size_t len)
{
    for (size_t i = 0; i < nschema; i++)
        if (strlen(schema[i].name) == len && memcmp(schema[i].name, s, len) == 0)
            return (int)i;
    return -1;
}

/* The schema a field of side `side` is looked up in. */
static const struct schema_field *side_schema(const struct parser *p, int side, size_t *n)
{
    *n = p->sides ? p->sides->nschema[side] : p->nschema;
    return p->sides ? p->sides->schema[side] : p->schema;
}

/* Decodes the escapes of the current string token into the arena. */
static struct expr *parse_string(struct parser *p)
{
    const char *s = p->src + p->t.off + 1;
    size_t n = p->t.len - 2;
    char *out = arena_alloc(p->a, n + 1);
    struct expr *e = node(p, EX_STR, p->t.off);
    size_t k = 0;

    if (out == NULL || e == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[k++] = s[i];
            continue;
        }
        i++;
        switch (s[i]) {
        case '"':  out[k++] = '"'; break;
        case '\'': out[k++] = '\''; break;
        case '\\': out[k++] = '\\'; break;
        case 'n':  out[k++] = '\n'; break;
        case 't':  out[k++] = '\t'; break;
        default:
            fail_at(p, p->t.off + 1 + i - 1,
                    "unknown escape '\\%c' in string (use \\\" \\' \\\\ \\n \\t)",
                    s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
            return NULL;
        }
    }
    out[k] = '\0';
    e->type = VT_STRING;
    e->u.str.s = out;
    e->u.str.len = k;
    next(p);
    return e;
}

static struct expr *parse_number(struct parser *p)
{
    char buf[64];
    size_t off = p->t.off;

    if (p->t.len >= sizeof(buf)) {
        fail_at(p, off, "number literal is too long");
        return NULL;
    }
    memcpy(buf, p->src + off, p->t.len);
    buf[p->t.len] = '\0';
    int is_int = strpbrk(buf, ".eE") == NULL;
    struct expr *e = node(p, is_int ? EX_INT : EX_DOUBLE, off);
    if (e == NULL)
        return NULL;
    errno = 0;
    if (is_int) {
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE) {
            fail_at(p, off, "integer literal %s is out of range", buf);
            return NULL;
        }
        e->type = VT_INT;
        e->u.i = v;
    } else {
        double v = strtod(buf, NULL);
        if (errno == ERANGE && isinf(v)) {
            fail_at(p, off, "number literal %s is out of range", buf);
            return NULL;
        }
        e->type = VT_DOUBLE;
        e->u.d = v;
    }
    next(p);
    return e;
}

static struct expr *parse_or(struct parser *p);

static struct expr *parse_literal(struct parser *p)
{
    char b[64];
    if (p->t.kind == T_STRING)
        return parse_string(p);
    if (p->t.kind == T_NUMBER)
        return parse_number(p);
    if (tok_is(p, "true") || tok_is(p, "false")) {
        struct expr *e = node(p, EX_BOOL, p->t.off);
        if (e == NULL)
            return NULL;
        e->type = VT_BOOL;
        e->u.b = tok_is(p, "true");
        next(p);
        return e;
    }
    fail_at(p, p->t.off, "expected a literal, found %s", tok_desc(p, b, sizeof(b)));
    return NULL;
}

static struct expr *parse_prim(struct parser *p)
{
    char b[64];
    if (p->failed)
        return NULL;
    if (p->t.kind == T_LPAREN) {
        next(p);
        struct expr *e = parse_or(p);
        if (e == NULL)
            return NULL;
        if (p->t.kind != T_RPAREN) {
            fail_at(p, p->t.off, "expected ')' to close '(', found %s",
                    tok_desc(p, b, sizeof(b)));
            return NULL;
        }
        next(p);
        return e;
    }
    if (p->t.kind == T_IDENT && !is_keyword(p)) {
        size_t off = p->t.off, len = p->t.len;
        int side = 0;
        if (p->sides) {
            const struct expr_sides *sd = p->sides;
            size_t n0 = strlen(sd->name[0]), n1 = strlen(sd->name[1]);
            if (len > n0 + 1 && memcmp(p->src + off, sd->name[0], n0) == 0 &&
                p->src[off + n0] == '.') {
                off += n0 + 1, len -= n0 + 1;
            } else if (len > n1 + 1 && memcmp(p->src + off, sd->name[1], n1) == 0 &&
                       p->src[off + n1] == '.') {
                off += n1 + 1, len -= n1 + 1;
                side = 1;
            } else {
                fail_at(p, p->t.off, "'%.*s': write %s.<field> or %s.<field>",
                        (int)(len > 60 ? 60 : len), p->src + off, sd->name[0], sd->name[1]);
                return NULL;
            }
        }
        size_t ns;
        const struct schema_field *schema = side_schema(p, side, &ns);
        int f = lookup_field(schema, ns, p->src + off, len);
        if (f < 0) {
            fail_at(p, off, "unknown field '%.*s' (not in the %s schema)",
                    (int)(len > 60 ? 60 : len), p->src + off,
                    p->sides && p->sides->schema[0] != p->sides->schema[1] ? "side's"
                                                                           : "source");
            return NULL;
        }
        struct expr *e = node(p, EX_FIELD, p->t.off);
        if (e == NULL)
            return NULL;
        e->side = side;
        e->u.field = f;
        e->type = schema[f].type;
        next(p);
        return e;
    }
    if (p->t.kind == T_STRING || p->t.kind == T_NUMBER || tok_is(p, "true") ||
        tok_is(p, "false"))
        return parse_literal(p);
    fail_at(p, p->t.off, "expected a field, a literal or '(', found %s",
            tok_desc(p, b, sizeof(b)));
    return NULL;
}

static int numeric(enum value_type t)
{
    return t == VT_INT || t == VT_DOUBLE;
}

static int comparable(enum value_type a, enum value_type b)
{
    return a == b || (numeric(a) && numeric(b));
}

static const char *operand_desc(const struct parser *p, const struct expr *e,
                                char *buf, size_t size)
{
    size_t ns;
    if (e->kind == EX_FIELD)
        snprintf(buf, size, "%s field '%s%s%s'", value_type_name(e->type),
                 p->sides ? p->sides->name[e->side] : "", p->sides ? "." : "",
                 side_schema(p, e->side, &ns)[e->u.field].name);
    else if (e->kind == EX_STR || e->kind == EX_INT || e->kind == EX_DOUBLE ||
             e->kind == EX_BOOL)
        snprintf(buf, size, "%s literal", value_type_name(e->type));
    else
        snprintf(buf, size, "%s expression", value_type_name(e->type));
    return buf;
}

static const char *const op_text[] = {
    [CMP_EQ] = "==", [CMP_NE] = "!=", [CMP_LT] = "<",
    [CMP_LE] = "<=", [CMP_GT] = ">", [CMP_GE] = ">=",
};

/* term := prim ("*" prim)*; sum := term (("+" | "-") term)* */
static struct expr *parse_arith(struct parser *p, int sum)
{
    char b1[96], b2[96];
    struct expr *l = sum ? parse_arith(p, 0) : parse_prim(p);
    while (l != NULL && !p->failed && p->t.kind == T_ARITH &&
           (p->t.arith == '*') != sum) {
        char op = p->t.arith;
        size_t off = p->t.off;
        next(p);
        struct expr *r = sum ? parse_arith(p, 0) : parse_prim(p);
        if (r == NULL)
            return NULL;
        if (!numeric(l->type) || !numeric(r->type)) {
            fail_at(p, off, "'%c' needs numbers, got %s and %s", op,
                    operand_desc(p, l, b1, sizeof(b1)), operand_desc(p, r, b2, sizeof(b2)));
            return NULL;
        }
        struct expr *e = node(p, EX_ARITH, off);
        if (e == NULL)
            return NULL;
        e->type = l->type == VT_INT && r->type == VT_INT ? VT_INT : VT_DOUBLE;
        e->u.arith.op = op;
        e->u.arith.l = l;
        e->u.arith.r = r;
        l = e;
    }
    return p->failed ? NULL : l;
}

static struct expr *parse_cmp(struct parser *p)
{
    char b1[96], b2[96];
    struct expr *l = parse_arith(p, 1);
    if (l == NULL || p->failed)
        return NULL;

    if (p->t.kind == T_OP) {
        enum cmp_op op = p->t.op;
        size_t off = p->t.off;
        next(p);
        struct expr *r = parse_arith(p, 1);
        if (r == NULL)
            return NULL;
        if (!comparable(l->type, r->type)) {
            fail_at(p, off, "cannot compare %s with %s",
                    operand_desc(p, l, b1, sizeof(b1)), operand_desc(p, r, b2, sizeof(b2)));
            return NULL;
        }
        if (l->type == VT_BOOL && op != CMP_EQ && op != CMP_NE) {
            fail_at(p, off, "'%s' needs ordered values; bools take only == and !=",
                    op_text[op]);
            return NULL;
        }
        struct expr *e = node(p, EX_CMP, off);
        if (e == NULL)
            return NULL;
        e->type = VT_BOOL;
        e->u.cmp.op = op;
        e->u.cmp.l = l;
        e->u.cmp.r = r;
        return e;
    }

    int negate = 0;
    size_t off = p->t.off;
    if (tok_is(p, "not")) {
        /* "x not in (...)": peek that "in" follows */
        size_t save_pos = p->pos;
        struct tok save = p->t;
        next(p);
        if (!tok_is(p, "in")) {
            p->pos = save_pos;
            p->t = save;
            return l;
        }
        negate = 1;
    }
    if (!tok_is(p, "in"))
        return l;
    next(p);
    if (p->t.kind != T_LPAREN) {
        fail_at(p, p->t.off, "expected '(' after 'in', found %s", tok_desc(p, b1, sizeof(b1)));
        return NULL;
    }
    next(p);
    struct expr *e = node(p, EX_IN, off);
    struct expr **set = arena_alloc(p->a, EXPR_MAX_SET * sizeof(*set));
    if (e == NULL || set == NULL)
        return NULL;
    size_t n = 0;
    for (;;) {
        if (n == 0 && p->t.kind == T_RPAREN) {
            fail_at(p, p->t.off, "'in ()' needs at least one value");
            return NULL;
        }
        struct expr *v = parse_literal(p);
        if (v == NULL)
            return NULL;
        if (!comparable(l->type, v->type)) {
            fail_at(p, v->off, "cannot compare %s with %s",
                    operand_desc(p, l, b1, sizeof(b1)), operand_desc(p, v, b2, sizeof(b2)));
            return NULL;
        }
        if (n == EXPR_MAX_SET) {
            fail_at(p, v->off, "'in' list has more than %d values", EXPR_MAX_SET);
            return NULL;
        }
        set[n++] = v;
        if (p->t.kind == T_COMMA) {
            next(p);
            continue;
        }
        if (p->t.kind == T_RPAREN) {
            next(p);
            break;
        }
        fail_at(p, p->t.off, "expected ',' or ')' in 'in' list, found %s",
                tok_desc(p, b1, sizeof(b1)));
        return NULL;
    }
    e->type = VT_BOOL;
    e->u.in.l = l;
    e->u.in.set = set;
    e->u.in.n = n;
    e->u.in.negate = negate;
    return e;
}

static int need_bool(struct parser *p, const struct expr *e, const char *what)
{
    char b[96];
    if (e->type == VT_BOOL)
        return 0;
    fail_at(p, e->off, "'%s' needs true/false operands, got %s", what,
            operand_desc(p, e, b, sizeof(b)));
    return -1;
}

static struct expr *parse_not(struct parser *p)
{
    if (tok_is(p, "not")) {
        size_t off = p->t.off;
        if (++p->depth > EXPR_MAX_DEPTH) {
            fail_at(p, off, "expression is nested more than %d deep", EXPR_MAX_DEPTH);
            return NULL;
        }
        next(p);
        struct expr *x = parse_not(p);
        p->depth--;
        if (x == NULL || need_bool(p, x, "not") < 0)
            return NULL;
        struct expr *e = node(p, EX_NOT, off);
        if (e == NULL)
            return NULL;
        e->type = VT_BOOL;
        e->u.not = x;
        return e;
    }
    return parse_cmp(p);
}

static struct expr *parse_and(struct parser *p)
{
    struct expr *l = parse_not(p);
    while (l != NULL && !p->failed && tok_is(p, "and")) {
        size_t off = p->t.off;
        next(p);
        struct expr *r = parse_not(p);
        if (r == NULL || need_bool(p, l, "and") < 0 || need_bool(p, r, "and") < 0)
            return NULL;
        struct expr *e = node(p, EX_AND, off);
        if (e == NULL)
            return NULL;
        e->type = VT_BOOL;
        e->u.bin.l = l;
        e->u.bin.r = r;
        l = e;
    }
    return p->failed ? NULL : l;
}

static struct expr *parse_or(struct parser *p)
{
    if (++p->depth > EXPR_MAX_DEPTH) {
        fail_at(p, p->t.off, "expression is nested more than %d deep", EXPR_MAX_DEPTH);
        return NULL;
    }
    struct expr *l = parse_and(p);
    while (l != NULL && !p->failed && tok_is(p, "or")) {
        size_t off = p->t.off;
        next(p);
        struct expr *r = parse_and(p);
        if (r == NULL || need_bool(p, l, "or") < 0 || need_bool(p, r, "or") < 0)
            return NULL;
        struct expr *e = node(p, EX_OR, off);
        if (e == NULL)
            return NULL;
        e->type = VT_BOOL;
        e->u.bin.l = l;
        e->u.bin.r = r;
        l = e;
    }
    p->depth--;
    return p->failed ? NULL : l;
}

/* Parses a whole condition up to the end of the text. */
static struct expr *parse_condition(struct parser *p)
{
    char b[96];
    if (p->t.kind == T_END) {
        fail_at(p, p->t.off, "expected a condition, found end of expression");
        return NULL;
    }
    struct expr *e = parse_or(p);
    if (e == NULL || p->failed)
        return NULL;
    if (p->t.kind != T_END) {
        fail_at(p, p->t.off, "unexpected %s after the condition", tok_desc(p, b, sizeof(b)));
        return NULL;
    }
    if (e->type != VT_BOOL) {
        fail_at(p, e->off, "a condition must be true/false, got %s",
                operand_desc(p, e, b, sizeof(b)));
        return NULL;
    }
    return e;
}

static void parser_init(struct parser *p, struct arena *a, const char *src,
                        const struct schema_field *schema, size_t nschema,
                        struct expr_error *err)
{
    memset(p, 0, sizeof(*p));
    p->a = a;
    p->src = src;
    p->schema = schema;
    p->nschema = nschema;
    p->err = err;
    err->off = 0;
    err->msg[0] = '\0';
    next(p);
}

int expr_parse(struct arena *a, const char *src, const struct schema_field *schema,
               size_t nschema, struct expr **out, struct expr_error *err)
{
    struct parser p;
    parser_init(&p, a, src, schema, nschema, err);
    *out = p.failed ? NULL : parse_condition(&p);
    return p.failed || *out == NULL ? -EINVAL : 0;
}

int expr_parse_sides(struct arena *a, const char *src, const struct expr_sides *sides,
                     struct expr **out, struct expr_error *err)
{
    struct parser p;
    char b[96];
    parser_init(&p, a, src, sides->schema[0], sides->nschema[0], err);
    p.sides = sides;
    *out = NULL;
    if (!p.failed && p.t.kind == T_END)
        fail_at(&p, p.t.off, "expected an expression, found end of expression");
    else if (!p.failed)
        *out = parse_or(&p);
    if (*out != NULL && !p.failed && p.t.kind != T_END)
        fail_at(&p, p.t.off, "unexpected %s after the expression", tok_desc(&p, b, sizeof(b)));
    return p.failed || *out == NULL ? -EINVAL : 0;
}

static struct expr_sides detect_sides(const struct schema_field *schema, size_t nschema)
{
    struct expr_sides s = { { "current", "previous" }, { schema, schema }, { nschema, nschema } };
    return s;
}

int expr_parse2(struct arena *a, const char *src, const struct schema_field *schema,
                size_t nschema, struct expr **out, struct expr_error *err)
{
    struct expr_sides s = detect_sides(schema, nschema);
    return expr_parse_sides(a, src, &s, out, err);
}

int agg_parse(struct arena *a, const char *src, const struct schema_field *schema,
              size_t nschema, struct agg_spec *out, struct expr_error *err)
{
    struct parser p;
    char b[96];
    size_t i;

    memset(out, 0, sizeof(*out));
    out->arg = -1;
    parser_init(&p, a, src, schema, nschema, err);
    if (p.failed)
        return -EINVAL;
    if (p.t.kind != T_IDENT) {
        fail_at(&p, p.t.off, "expected an aggregate like count() or sum(price), found %s",
                tok_desc(&p, b, sizeof(b)));
        return -EINVAL;
    }
    for (i = 0; i < sizeof(agg_names) / sizeof(agg_names[0]); i++)
        if (tok_is(&p, agg_names[i]))
            break;
    if (i == sizeof(agg_names) / sizeof(agg_names[0])) {
        fail_at(&p, p.t.off, "unknown aggregate function '%.*s' (expected count, sum, "
                "avg, min, max, first, last, count_distinct or duration)",
                (int)(p.t.len > 40 ? 40 : p.t.len), src + p.t.off);
        return -EINVAL;
    }
    out->fn = (enum agg_fn)i;
    size_t fn_off = p.t.off;
    next(&p);
    if (p.t.kind != T_LPAREN) {
        fail_at(&p, p.t.off, "expected '(' after '%s', found %s", agg_names[i],
                tok_desc(&p, b, sizeof(b)));
        return -EINVAL;
    }
    next(&p);
    int takes_arg = out->fn != AGG_COUNT && out->fn != AGG_DURATION;
    if (p.t.kind == T_IDENT && !is_keyword(&p)) {
        if (!takes_arg) {
            fail_at(&p, p.t.off, "%s() takes no argument%s", agg_names[i],
                    out->fn == AGG_COUNT ? "; filter with count() where ..." : "");
            return -EINVAL;
        }
        int f = lookup_field(schema, nschema, p.src + p.t.off, p.t.len);
        if (f < 0) {
            fail_at(&p, p.t.off, "unknown field '%.*s' (not in the source schema)",
                    (int)(p.t.len > 60 ? 60 : p.t.len), src + p.t.off);
            return -EINVAL;
        }
        enum value_type t = schema[f].type;
        if ((out->fn == AGG_SUM || out->fn == AGG_AVG || out->fn == AGG_MIN ||
             out->fn == AGG_MAX) && !numeric(t)) {
            fail_at(&p, p.t.off, "%s() needs a numeric field, but '%s' is %s",
                    agg_names[i], schema[f].name, value_type_name(t));
            return -EINVAL;
        }
        out->arg = f;
        next(&p);
    } else if (takes_arg) {
        fail_at(&p, p.t.off, "%s() needs a field name, found %s", agg_names[i],
                tok_desc(&p, b, sizeof(b)));
        return -EINVAL;
    }
    if (p.t.kind != T_RPAREN) {
        fail_at(&p, p.t.off, "expected ')' to close %s(, found %s", agg_names[i],
                tok_desc(&p, b, sizeof(b)));
        return -EINVAL;
    }
    next(&p);
    (void)fn_off;
    if (p.t.kind == T_END)
        return p.failed ? -EINVAL : 0;
    if (!tok_is(&p, "where")) {
        fail_at(&p, p.t.off, "expected 'where' or the end after %s(...), found %s",
                agg_names[i], tok_desc(&p, b, sizeof(b)));
        return -EINVAL;
    }
    next(&p);
    out->where = parse_condition(&p);
    return p.failed || out->where == NULL ? -EINVAL : 0;
}

/* ---- printing ---------------------------------------------------------- */

struct writer {
    char *buf;
    size_t size, len;
    const struct expr_sides *sides; /* fields as <side>.<f>; NULL: bare names */
};

static void w_put(struct writer *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, w->len++)
        if (w->len + 1 < w->size)
            w->buf[w->len] = s[i];
    if (w->size > 0)
        w->buf[w->len < w->size ? w->len : w->size - 1] = '\0';
}

static void w_str(struct writer *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static void w_literal(struct writer *w, const struct expr *e)
{
    char b[64];
    switch (e->kind) {
    case EX_STR:
        w_put(w, "\"", 1);
        for (size_t i = 0; i < e->u.str.len; i++) {
            char c = e->u.str.s[i];
            if (c == '"' || c == '\\') {
                char esc[2] = { '\\', c };
                w_put(w, esc, 2);
            } else if (c == '\n') {
                w_put(w, "\\n", 2);
            } else if (c == '\t') {
                w_put(w, "\\t", 2);
            } else {
                w_put(w, &c, 1);
            }
        }
        w_put(w, "\"", 1);
        break;
    case EX_INT:
        snprintf(b, sizeof(b), "%lld", (long long)e->u.i);
        w_str(w, b);
        break;
    case EX_DOUBLE:
        if (e->u.d == (double)(long long)e->u.d && fabs(e->u.d) < 1e15) {
            snprintf(b, sizeof(b), "%.1f", e->u.d);
        } else {
            /* shortest form that reads back the same */
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(b, sizeof(b), "%.*g", prec, e->u.d);
                if (strtod(b, NULL) == e->u.d)
                    break;
            }
        }
        w_str(w, b);
        break;
    case EX_BOOL:
        w_str(w, e->u.b ? "true" : "false");
        break;
    default:
        break;
    }
}

static void w_expr(struct writer *w, const struct expr *e,
                   const struct schema_field *schema)
{
    switch (e->kind) {
    case EX_FIELD:
        if (w->sides) {
            w_str(w, w->sides->name[e->side]);
            w_str(w, ".");
            w_str(w, w->sides->schema[e->side][e->u.field].name);
        } else {
            w_str(w, schema[e->u.field].name);
        }
        break;
    case EX_ARITH: {
        char op[4] = { ' ', e->u.arith.op, ' ', '\0' };
        w_str(w, "(");
        w_expr(w, e->u.arith.l, schema);
        w_str(w, op);
        w_expr(w, e->u.arith.r, schema);
        w_str(w, ")");
        break;
    }
    case EX_STR: case EX_INT: case EX_DOUBLE: case EX_BOOL:
        w_literal(w, e);
        break;
    case EX_CMP:
        w_expr(w, e->u.cmp.l, schema);
        w_str(w, " ");
        w_str(w, op_text[e->u.cmp.op]);
        w_str(w, " ");
        w_expr(w, e->u.cmp.r, schema);
        break;
    case EX_AND: case EX_OR:
        w_str(w, "(");
        w_expr(w, e->u.bin.l, schema);
        w_str(w, e->kind == EX_AND ? " and " : " or ");
        w_expr(w, e->u.bin.r, schema);
        w_str(w, ")");
        break;
    case EX_NOT:
        w_str(w, "not (");
        w_expr(w, e->u.not, schema);
        w_str(w, ")");
        break;
    case EX_IN:
        w_expr(w, e->u.in.l, schema);
        w_str(w, e->u.in.negate ? " not in (" : " in (");
        for (size_t i = 0; i < e->u.in.n; i++) {
            if (i > 0)
                w_str(w, ", ");
            w_literal(w, e->u.in.set[i]);
        }
        w_str(w, ")");
        break;
    }
}

static size_t format(const struct expr *e, const struct schema_field *schema, char *buf,
                     size_t size, const struct expr_sides *sides)
{
    struct writer w = { buf, size, 0, sides };
    if (size > 0)
        buf[0] = '\0';
    w_expr(&w, e, schema);
    return w.len;
}

size_t expr_format(const struct expr *e, const struct schema_field *schema,
                   char *buf, size_t size)
{
    return format(e, schema, buf, size, NULL);
}

size_t expr_format2(const struct expr *e, const struct schema_field *schema,
                    char *buf, size_t size)
{
    struct expr_sides s = detect_sides(schema, 0);
    return format(e, schema, buf, size, &s);
}

size_t expr_format_sides(const struct expr *e, const struct expr_sides *sides,
                         char *buf, size_t size)
{
    return format(e, sides->schema[0], buf, size, sides);
}

size_t agg_format(const struct agg_spec *s, const struct schema_field *schema,
                  char *buf, size_t size)
{
    struct writer w = { buf, size, 0, 0 };
    if (size > 0)
        buf[0] = '\0';
    w_str(&w, agg_names[s->fn]);
    w_str(&w, "(");
    if (s->arg >= 0)
        w_str(&w, schema[s->arg].name);
    w_str(&w, ")");
    if (s->where != NULL) {
        w_str(&w, " where ");
        w_expr(&w, s->where, schema);
    }
    return w.len;
}
