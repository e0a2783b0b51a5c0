/*
 * value.c - formatting and comparison of typed values (see value.h).
 *
 * fmt_double() is what every sink uses for doubles, so the same window
 * result reads the same in Redis, JSON lines and Kafka.  "Shortest form
 * that reads back": a decimal of 15 or fewer significant digits that reads
 * back to the double is what %.15g prints (a normal double carries more
 * than 15 digits of precision, so rounding it to 15 digits lands on that
 * decimal), so it is enough to try %.15g, then %.16g, then %.17g, which
 * always reads back; subnormals, with fewer digits, try every precision.
 * Integral values print as integers without printf.
 */
#include "value.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t fmt_double(double d, char *buf)
{
    if (isnan(d))
        return (size_t)sprintf(buf, "nan");
    if (isinf(d))
        return (size_t)sprintf(buf, d < 0 ? "-inf" : "inf");
    if (d == 0)
        return (size_t)sprintf(buf, "0");
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        size_t n = fmt_i64(buf, (int64_t)d);
        buf[n] = '\0';
        return n;
    }
    int n = 0;
    /* subnormals carry fewer digits: there the search starts at 1 */
    for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, d);
        if (prec == 17 || strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    return len;
}

static size_t put(char *buf, size_t size, size_t at, const char *s, size_t n)
{
    if (at < size)
        memcpy(buf + at, s, at + n < size ? n : size - at);
    return at + n;
}

size_t value_to_json(const struct value *v, char *buf, size_t size)
{
    char tmp[40];
    size_t n = 0;

    switch ((int)v->type) {
    case VT_STRING:
        n = put(buf, size, n, "\"", 1);
        for (size_t i = 0; i < v->u.s.len; i++) {
            unsigned char c = (unsigned char)v->u.s.p[i];
            if (c == '"' || c == '\\') {
                tmp[0] = '\\';
                tmp[1] = (char)c;
                n = put(buf, size, n, tmp, 2);
            } else if (c < 0x20) {
                int k = snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                n = put(buf, size, n, tmp, (size_t)k);
            } else {
                n = put(buf, size, n, (const char *)&c, 1);
            }
        }
        n = put(buf, size, n, "\"", 1);
        break;
    case VT_INT:
        n = put(buf, size, n, tmp, (size_t)snprintf(tmp, sizeof(tmp), "%lld",
                                                    (long long)v->u.i));
        break;
    case VT_DOUBLE:
        n = put(buf, size, n, tmp, fmt_double(v->u.d, tmp));
        break;
    case VT_BOOL:
        n = put(buf, size, n, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
        break;
    default:
        n = put(buf, size, n, "null", 4);
        break;
    }
    if (size > 0)
        buf[n < size ? n : size - 1] = '\0';
    return n;
}

int value_eq(const struct value *a, const struct value *b)
{
    if (a->type != b->type)
        return 0;
    switch ((int)a->type) {
    case VT_STRING:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
    case VT_INT:
        return a->u.i == b->u.i;
    case VT_DOUBLE:
        return a->u.d == b->u.d;
    case VT_BOOL:
        return !a->u.b == !b->u.b;
    default:
        return 1;
    }
}
