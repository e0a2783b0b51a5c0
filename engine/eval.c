/*
 * eval.c - where-condition evaluation (see eval.h).
 */
#include "eval.h"

#include <float.h>
#include <math.h>
#include <string.h>

static int cmp_int_double(int64_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double f = floor(d);
    int64_t fi = (int64_t)f;            /* exact: f is integral and in range */
    if (i < fi)
        return -1;
    if (i > fi)
        return 1;
    return f < d ? -1 : 0;              /* i == floor(d): less unless d integral */
}

int value_cmp(const struct value *a, const struct value *b)
{
    switch ((int)a->type) {
    case VT_STRING: {
        size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        if (c != 0)
            return c < 0 ? -1 : 1;
        return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
    }
    case VT_INT:
        if (b->type == VT_DOUBLE)
            return cmp_int_double(a->u.i, b->u.d);
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    case VT_DOUBLE:
        if (b->type == VT_INT)
            return -cmp_int_double(b->u.i, a->u.d);
        return a->u.d < b->u.d ? -1 : a->u.d > b->u.d;
    case VT_BOOL:
        return !a->u.b < !b->u.b ? 1 : !a->u.b > !b->u.b ? -1 : 0;
    default:
        return 0;
    }
}

static int cond(const struct expr *e, const struct value *const *sv);

static int64_t sat(int64_t a, int64_t b, char op)
{
    int64_t x;
    int over = op == '+' ? __builtin_add_overflow(a, b, &x)
             : op == '-' ? __builtin_sub_overflow(a, b, &x)
                         : __builtin_mul_overflow(a, b, &x);
    if (!over)
        return x;
    /* the sign the exact result has */
    int neg = op == '*' ? (a < 0) != (b < 0) : op == '+' ? a < 0 : a < b;
    return neg ? INT64_MIN : INT64_MAX;
}

static const struct value null_value = { .type = VT_NULL };

/* The value of e; sv[0] the record's values, sv[1] the other record's.  A
 * missing record (NULL: the absent side of an outer join's result) has
 * null fields; arithmetic over null is null. */
static void operand(const struct expr *e, const struct value *const *sv, struct value *v)
{
    switch (e->kind) {
    case EX_FIELD:
        *v = sv[e->side] ? sv[e->side][e->u.field] : null_value;
        break;
    case EX_STR:
        v->type = VT_STRING;
        v->u.s.p = e->u.str.s;
        v->u.s.len = e->u.str.len;
        break;
    case EX_INT:
        v->type = VT_INT;
        v->u.i = e->u.i;
        break;
    case EX_DOUBLE:
        v->type = VT_DOUBLE;
        v->u.d = e->u.d;
        break;
    case EX_BOOL:
        v->type = VT_BOOL;
        v->u.b = e->u.b;
        break;
    case EX_ARITH: {
        struct value a, b;
        operand(e->u.arith.l, sv, &a);
        operand(e->u.arith.r, sv, &b);
        char op = e->u.arith.op;
        if ((int)a.type == (int)VT_NULL || (int)b.type == (int)VT_NULL)
            *v = null_value;
        else if (a.type == VT_INT && b.type == VT_INT) {
            v->type = VT_INT;
            v->u.i = sat(a.u.i, b.u.i, op);
        } else {
            double x = a.type == VT_INT ? (double)a.u.i : a.u.d;
            double y = b.type == VT_INT ? (double)b.u.i : b.u.d;
            v->type = VT_DOUBLE;
            double z = op == '+' ? x + y : op == '-' ? x - y : x * y;
            /* saturates like ints: no infinity reaches a sink as JSON */
            v->u.d = z > DBL_MAX ? DBL_MAX : z < -DBL_MAX ? -DBL_MAX : z;
        }
        break;
    }
    default:
        v->type = VT_BOOL;
        v->u.b = cond(e, sv);
        break;
    }
}

static int cond(const struct expr *e, const struct value *const *sv)
{
    struct value a, b;

    switch (e->kind) {
    case EX_AND:
        return cond(e->u.bin.l, sv) && cond(e->u.bin.r, sv);
    case EX_OR:
        return cond(e->u.bin.l, sv) || cond(e->u.bin.r, sv);
    case EX_NOT:
        return !cond(e->u.not, sv);
    case EX_CMP: {
        operand(e->u.cmp.l, sv, &a);
        operand(e->u.cmp.r, sv, &b);
        if ((int)a.type == (int)VT_NULL || (int)b.type == (int)VT_NULL)
            return 0;               /* null compares with nothing, as in SQL */
        if (a.type == VT_STRING && (e->u.cmp.op == CMP_EQ || e->u.cmp.op == CMP_NE)) {
            int eq = a.u.s.len == b.u.s.len &&
                     (a.u.s.len == 0 || memcmp(a.u.s.p, b.u.s.p, a.u.s.len) == 0);
            return e->u.cmp.op == CMP_EQ ? eq : !eq;
        }
        int c = value_cmp(&a, &b);
        switch (e->u.cmp.op) {
        case CMP_EQ: return c == 0;
        case CMP_NE: return c != 0;
        case CMP_LT: return c < 0;
        case CMP_LE: return c <= 0;
        case CMP_GT: return c > 0;
        case CMP_GE: return c >= 0;
        }
        return 0;
    }
    case EX_IN: {
        operand(e->u.in.l, sv, &a);
        if ((int)a.type == (int)VT_NULL)
            return 0;
        int found = 0;
        for (size_t i = 0; i < e->u.in.n && !found; i++) {
            operand(e->u.in.set[i], sv, &b);
            found = value_cmp(&a, &b) == 0;
        }
        return e->u.in.negate ? !found : found;
    }
    case EX_BOOL:
        return e->u.b;
    case EX_FIELD:
        return sv[e->side] ? sv[e->side][e->u.field].u.b : 0;
    default:
        return 0;
    }
}

int eval_where(const struct expr *e, const struct record *r)
{
    const struct value *sv[2] = { r->v, NULL };
    return cond(e, sv);
}

void eval_value2(const struct expr *e, const struct value *cur, const struct value *prev,
                 struct value *out)
{
    const struct value *sv[2] = { cur, prev };
    operand(e, sv, out);
}
