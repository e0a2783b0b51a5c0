/*
 * eval.c - where-condition evaluation (see eval.h).
 */
#include "eval.h"

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

static void operand(const struct expr *e, const struct record *r, struct value *v)
{
    switch (e->kind) {
    case EX_FIELD:
        *v = r->v[e->u.field];
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
    default:
        v->type = VT_BOOL;
        v->u.b = eval_where(e, r);
        break;
    }
}

int eval_where(const struct expr *e, const struct record *r)
{
    struct value a, b;

    switch (e->kind) {
    case EX_AND:
        return eval_where(e->u.bin.l, r) && eval_where(e->u.bin.r, r);
    case EX_OR:
        return eval_where(e->u.bin.l, r) || eval_where(e->u.bin.r, r);
    case EX_NOT:
        return !eval_where(e->u.not, r);
    case EX_CMP: {
        operand(e->u.cmp.l, r, &a);
        operand(e->u.cmp.r, r, &b);
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
        operand(e->u.in.l, r, &a);
        int found = 0;
        for (size_t i = 0; i < e->u.in.n && !found; i++) {
            operand(e->u.in.set[i], r, &b);
            found = value_cmp(&a, &b) == 0;
        }
        return e->u.in.negate ? !found : found;
    }
    case EX_BOOL:
        return e->u.b;
    case EX_FIELD:
        return r->v[e->u.field].u.b;
    default:
        return 0;
    }
}
