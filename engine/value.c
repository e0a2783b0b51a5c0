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
 *
 * printf and strtod cost a microsecond or more per double, and a window
 * result's averages are doubles, so the common range (a non-integral
 * magnitude in [1e-4, 1e15), where %g prints no exponent) takes a path in
 * exact integer arithmetic that computes the very same text:
 * fmt_double_fixed().  Everything else (tiny, huge, subnormal) keeps the
 * printf search.  tests/unit/test_format.c compares the two over millions
 * of doubles.
 */
#include "value.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 128-bit arithmetic (GCC and clang); __extension__ keeps -pedantic quiet. */
__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_u64[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
    1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
    1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL,
};

/* 10^0 .. 10^20 (10^20 is past 2^64, hence 128 bits) */
static u128 pow10_u128(int k)
{
    return k < 20 ? pow10_u64[k] : (u128)pow10_u64[19] * 10;
}

/* m * 10^k, k in [0, 20]: one 64 x 64 multiplication below 10^20 */
static u128 mul_pow10(uint64_t m, int k)
{
    return k < 20 ? (u128)m * pow10_u64[k] : (u128)m * pow10_u64[19] * 10;
}

/* The decimal digits of u, written backwards so that the last ends just
 * before end, two at a time (a division by 100 is a multiplication). */
static void put_digits(char *end, uint64_t u)
{
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        end -= 2;
        memcpy(end, pairs + 2 * r, 2);
    }
    if (u >= 10) {
        end -= 2;
        memcpy(end, pairs + 2 * u, 2);
    } else {
        *--end = (char)('0' + u);
    }
}

/*
 * a = m * 2^-f (m < 2^53 its significand, f its fractional bits), rounded
 * to P significant digits as glibc's printf does (exactly, ties to even):
 * q, with P digits, and the exponent X of its first digit, so the
 * decimal is q * 10^(X - P + 1).  Returns whether that decimal reads back
 * to a (what strtod would say, decided exactly).
 *
 * With s = P - 1 - X0 (X0 = floor(log10 a), 0 <= s <= 20) and f <= 66,
 * m * 10^s < 2^53 * 2^66.5 and q * 2^f < 2^57 * 2^66: the products below
 * stay under 2^125.
 */
static int round_digits(uint64_t m, int f, int x0, int P, uint64_t *q_out, int *x_out)
{
    int s = P - 1 - x0;
    u128 n = mul_pow10(m, s);
    u128 q = n >> f;
    u128 rem = n - (q << f), half = (u128)1 << (f - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    int x = x0;
    if (q == pow10_u128(P)) {            /* 9.99..95 rounded up to 10.0..0 */
        q = pow10_u128(P - 1);
        x++;
    }
    *q_out = (uint64_t)q;
    *x_out = x;
    if (x > P - 1)
        return 0;                        /* rounded up to 10^15: an integer, not a */
    /* the decimal D = q / 10^s' (s' = P - 1 - x) reads back when it is
     * nearer to a than half the gap to a's neighbours, or exactly half
     * way and a's significand even (strtod rounds ties to even); below a
     * power of two the lower gap is half as wide.  In units of
     * 1 / (10^s' * 2^(f + 2)): */
    int s2 = P - 1 - x;                  /* s or s - 1 */
    u128 ps2 = pow10_u128(s2);
    u128 dq = q << f, dm = s2 == s ? n : mul_pow10(m, s2);     /* D and a, times 10^s' 2^f */
    int below = dq < dm;
    u128 diff = below ? dm - dq : dq - dm;
    int quarter = below && m == (1ULL << 52);
    u128 lhs = diff << (quarter ? 2 : 1);        /* 2 diff, or 4 diff */
    if (lhs != ps2)
        return lhs < ps2;
    return (m & 1) == 0;
}

/*
 * The %.15g / %.16g / %.17g search for a finite, non-integral |d| in
 * [1e-4, 1e15), without printf: the first precision whose decimal reads
 * back, printed as %g prints it there (no exponent: -4 <= X < P; trailing
 * zeros and a bare point dropped).  Returns the length, or 0 to leave d
 * to printf (an exponent turned out to be needed).
 */
static size_t fmt_double_fixed(double d, char *buf)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    int be = (int)((bits >> 52) & 0x7ff);        /* normal: 1e-4 > DBL_MIN */
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    int f = 1075 - be;                           /* a = m * 2^-f */
    if (f <= 0 || f > 66)
        return 0;
    /* floor(log10 a), in [-4, 14] for a in [1e-4, 1e15): floor(e2 log10 2)
     * (78913 / 2^18 is log10 2 to 6 digits; a = 1.x * 2^e2), then made
     * exact by the count of a's digits */
    int e2 = be - 1023, t = e2 * 78913;
    int x0 = t >= 0 ? t >> 18 : -((-t + (1 << 18) - 1) >> 18);
    x0 = x0 < -4 ? -4 : x0 > 14 ? 14 : x0;
    uint64_t q;
    int x;
    for (;;) {
        u128 n = mul_pow10(m, 17 - 1 - x0) >> f;   /* a * 10^(16-x0), floored */
        if (n < pow10_u128(16))
            x0--;
        else if (n >= pow10_u128(17))
            x0++;
        else
            break;
        if (x0 < -4 || x0 > 14)
            return 0;
    }
    int P = 15;
    while (!round_digits(m, f, x0, P, &q, &x) && P < 17)
        P++;
    if (x < -4 || x >= P)
        return 0;                                /* %g would use an exponent */
    char dig[20];
    put_digits(dig + P, q);             /* q has P digits */
    int nd = P;
    while (nd > 0 && dig[nd - 1] == '0')
        nd--;
    size_t n = 0;
    if (d < 0)
        buf[n++] = '-';
    if (x >= 0) {
        for (int i = 0; i <= x; i++)
            buf[n++] = i < nd ? dig[i] : '0';
        if (nd > x + 1) {
            buf[n++] = '.';
            for (int i = x + 1; i < nd; i++)
                buf[n++] = dig[i];
        }
    } else {
        buf[n++] = '0';
        buf[n++] = '.';
        for (int i = -1; i > x; i--)
            buf[n++] = '0';
        for (int i = 0; i < nd; i++)
            buf[n++] = dig[i];
    }
    buf[n] = '\0';
    return n;
}

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
    double a = fabs(d);
    if (a >= 1e-4 && a < 1e15) {
        size_t n = fmt_double_fixed(d, buf);
        if (n > 0)
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
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    if (u < 10) {                       /* counts, mostly */
        buf[len] = (char)('0' + u);
        return len + 1;
    }
    size_t nd = 2;
    while (nd < 20 && u >= pow10_u64[nd])
        nd++;
    put_digits(buf + len + nd, u);
    return len + nd;
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
