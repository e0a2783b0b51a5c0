/*
 * json.c - strict RFC 8259 validation (see json.h).
 *
 * One left-to-right pass, no recursion: arrays and objects inside a value
 * are tracked on a bit stack (one bit per level: object or array), so the
 * depth limit costs 128 bytes of stack, not 1000 frames.  The top-level
 * object is walked by json_object_scan itself, which notes each member's
 * key and value spans for the decoder; everything below it goes through
 * skip_value, which only checks.
 *
 * Errors name the first byte where the text stops being a valid prefix,
 * with two conventions that make them easier to read: a bad number or
 * literal is reported at the token's first byte, and a comma followed by a
 * closing bracket at the comma ("trailing comma").  Invalid UTF-8 is
 * reported at the first byte of the ill-formed sequence.
 *
 * Speed: records are mostly short strings and numbers.  Strings are
 * scanned eight bytes at a time while no byte is a quote, a backslash, a
 * control character or non-ASCII, and byte by byte otherwise; whitespace
 * and the token's first byte are table lookups.
 */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define R_END "unexpected end of input"
#define R_VALUE "expected a value"
#define R_LITERAL "invalid literal"
#define R_NUMBER "invalid number"
#define R_KEY "expected a string key"
#define R_COLON "expected ':'"
#define R_OBJ_NEXT "expected ',' or '}'"
#define R_ARR_NEXT "expected ',' or ']'"
#define R_TRAILING "trailing comma"
#define R_MISMATCH "mismatched bracket"
#define R_AFTER "text after the JSON value"
#define R_CONTROL "control character in string"
#define R_ESCAPE "invalid escape"
#define R_UESCAPE "invalid \\u escape"
#define R_SURROGATE "lone surrogate"
#define R_UTF8 "invalid UTF-8"
#define R_DEPTH "nesting deeper than 1000"
#define R_EMPTY "empty record"
#define R_NOT_OBJECT "not a JSON object"

typedef const unsigned char *cur;

struct scan {
    cur base, end;
    struct json_error *err;
};

/* Character classes, one table lookup per byte. */
enum {
    C_WS = 1,                       /* space, tab, LF, CR */
    C_DIGIT = 2,
    C_ALNUM = 4,                    /* letters and digits: a literal's run */
    C_NUMTAIL = 8,                  /* may not follow a number: alnum . + - */
    C_HEX = 16,
    C_PLAIN = 32,                   /* stands for itself in a string: ASCII but " \ and controls */
};

#define IN(c, a, b) ((c) >= (a) && (c) <= (b))
#define CL(c) (((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' ? C_WS : 0) | \
               (IN(c, '0', '9') ? C_DIGIT | C_ALNUM | C_NUMTAIL | C_HEX : 0) | \
               (IN(c, 'a', 'z') || IN(c, 'A', 'Z') ? C_ALNUM | C_NUMTAIL : 0) | \
               (IN(c, 'a', 'f') || IN(c, 'A', 'F') ? C_HEX : 0) | \
               ((c) == '.' || (c) == '+' || (c) == '-' ? C_NUMTAIL : 0) | \
               (IN(c, 0x20, 0x7F) && (c) != '"' && (c) != '\\' ? C_PLAIN : 0))
#define CL4(c) CL(c), CL((c) + 1), CL((c) + 2), CL((c) + 3)
#define CL16(c) CL4(c), CL4((c) + 4), CL4((c) + 8), CL4((c) + 12)
#define CL64(c) CL16(c), CL16((c) + 16), CL16((c) + 32), CL16((c) + 48)

static const unsigned char cls[256] = { CL64(0), CL64(64), CL64(128), CL64(192) };

static const void *fail(struct scan *sc, cur at, const char *reason)
{
    sc->err->reason = reason;
    sc->err->at = (size_t)(at - sc->base);
    return NULL;
}

static inline cur skip_ws(cur p, cur end)
{
    while (p < end && (cls[*p] & C_WS))
        p++;
    return p;
}

/* ---- strings -------------------------------------------------------------- */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/*
 * Of the 8 bytes at p, a mask with the high bit set in each byte that is a
 * quote, a backslash, below 0x20 or above 0x7F (the classic "has a zero
 * byte" tests).  A borrow can flag a byte above a flagged one, never below,
 * so the lowest flag is exact.
 */
static inline uint64_t special8(cur p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | (x - ONES * 0x20) | x) & HIGHS;
}

static inline int hex_at(cur p, cur end, int *v, int *short_)
{
    int r = 0;
    for (int k = 0; k < 4; k++) {
        if (p + k >= end) {
            *short_ = 1;
            return -1;
        }
        unsigned char c = p[k];
        if (!(cls[c] & C_HEX))
            return -1;
        r = r << 4 | (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    *v = r;
    return 0;
}

/* A \u escape at p (p[0] == '\\', p[1] == 'u'): returns the byte after it
 * (after both halves of a surrogate pair), or NULL. */
static cur scan_uescape(struct scan *sc, cur p)
{
    cur end = sc->end;
    int cp, lo, short_ = 0;
    if (hex_at(p + 2, end, &cp, &short_) < 0)
        return fail(sc, short_ ? end : p, short_ ? R_END : R_UESCAPE);
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(sc, p, R_SURROGATE);
    if (cp < 0xD800 || cp > 0xDBFF)
        return p + 6;
    cur q = p + 6;
    if (q >= end || (q[0] == '\\' && q + 1 >= end))
        return fail(sc, end, R_END);
    if (q[0] != '\\' || q[1] != 'u')
        return fail(sc, p, R_SURROGATE);
    if (hex_at(q + 2, end, &lo, &short_) < 0)
        return fail(sc, short_ ? end : q, short_ ? R_END : R_UESCAPE);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(sc, p, R_SURROGATE);
    return q + 6;
}

/* A multi-byte UTF-8 sequence at p (p[0] >= 0x80): the byte after it, or
 * NULL.  Always inlined: with json_utf8_valid as a second caller gcc stops
 * inlining it into scan_string, which then costs 35 instructions more per
 * record of ASCII text (callgrind). */
static inline __attribute__((always_inline)) cur scan_utf8(struct scan *sc, cur p)
{
    cur end = sc->end;
    unsigned char c = p[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;     /* the range of the second byte */

    if (c < 0xC2 || c > 0xF4)
        return fail(sc, p, R_UTF8);
    if (c < 0xE0) {
        need = 1;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;                      /* overlong */
        else if (c == 0xED)
            hi = 0x9F;                      /* UTF-16 surrogates */
    } else {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;                      /* overlong */
        else if (c == 0xF4)
            hi = 0x8F;                      /* above U+10FFFF */
    }
    for (int k = 1; k <= need; k++) {
        if (p + k >= end)
            return fail(sc, end, R_END);
        unsigned char b = p[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80)
            return fail(sc, p, R_UTF8);
    }
    return p + need + 1;
}

int json_utf8_valid(const unsigned char *s, size_t n)
{
    struct json_error err;
    struct scan sc = { s, s + n, &err };
    cur p = s;
    while (p != NULL && p < sc.end)
        p = *p < 0x80 ? p + 1 : scan_utf8(&sc, p);
    return p != NULL;
}

/* A string whose opening quote is at p[-1]: returns the closing quote, or
 * NULL.  *escaped is set when it has backslash escapes. */
static inline cur scan_string(struct scan *sc, cur p, uint8_t *escaped)
{
    cur end = sc->end;
    for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (;;) {
            if (end - p < 8) {
                while (p < end && (cls[*p] & C_PLAIN))
                    p++;
                break;
            }
            uint64_t hit = special8(p);
            if (hit != 0) {
                p += __builtin_ctzll(hit) / 8;
                break;
            }
            p += 8;
        }
#else
        while (p < end && (cls[*p] & C_PLAIN))
            p++;
#endif
        if (p >= end)
            return fail(sc, end, R_END);
        unsigned char c = *p;
        if (c == '"')
            return p;
        if (c == '\\') {
            *escaped = 1;
            if (p + 1 >= end)
                return fail(sc, end, R_END);
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            case 'u':
                p = scan_uescape(sc, p);
                break;
            default:
                return fail(sc, p, R_ESCAPE);
            }
        } else if (c < 0x20) {
            return fail(sc, p, R_CONTROL);
        } else {
            p = scan_utf8(sc, p);
        }
        if (p == NULL)
            return NULL;
    }
}

/* ---- scalars ------------------------------------------------------------------ */

/* A number at p (p[0] is '-', '+', '.' or a digit): the byte after it, or
 * NULL.  A number cut short by the end of the input is the input's fault. */
static cur scan_number(struct scan *sc, cur p)
{
    cur end = sc->end, start = p;
    if (*p == '-' && ++p >= end)
        return fail(sc, end, R_END);
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && (cls[*p] & C_DIGIT))
            p++;
    } else {
        return fail(sc, start, R_NUMBER);
    }
    if (p < end && *p == '.') {
        if (++p >= end)
            return fail(sc, end, R_END);
        if (!(cls[*p] & C_DIGIT))
            return fail(sc, start, R_NUMBER);
        while (p < end && (cls[*p] & C_DIGIT))
            p++;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end)
            return fail(sc, end, R_END);
        if (!(cls[*p] & C_DIGIT))
            return fail(sc, start, R_NUMBER);
        while (p < end && (cls[*p] & C_DIGIT))
            p++;
    }
    if (p < end && (cls[*p] & C_NUMTAIL))
        return fail(sc, start, R_NUMBER);
    return p;
}

/* A literal at p (p[0] is a letter): the byte after it, or NULL; *type.
 * The start of a literal cut short by the end of the input ("tr") is the
 * input's fault too. */
static cur scan_literal(struct scan *sc, cur p, uint8_t *type)
{
    static const char *const names[] = { "true", "false", "null" };
    static const uint8_t types[] = { JK_TRUE, JK_FALSE, JK_NULL };
    cur q = p;
    while (q < sc->end && (cls[*q] & C_ALNUM))
        q++;
    size_t n = (size_t)(q - p);
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(names[i]);
        if (n == len && memcmp(p, names[i], len) == 0) {
            *type = types[i];
            return q;
        }
        if (q == sc->end && n < len && memcmp(p, names[i], n) == 0)
            return fail(sc, q, R_END);
    }
    return fail(sc, p, R_LITERAL);
}

/* A value that is not an array or object, at p (p < end).  Returns the byte
 * after it, or NULL; *type; the string's content is [p + 1, result - 1). */
static inline cur scan_scalar(struct scan *sc, cur p, uint8_t *type, uint8_t *escaped)
{
    unsigned char c = *p;
    if (c == '"') {
        *type = JK_STRING;
        cur q = scan_string(sc, p + 1, escaped);
        return q ? q + 1 : NULL;
    }
    if ((cls[c] & C_DIGIT) || c == '-' || c == '+' || c == '.') {
        *type = JK_NUMBER;
        return scan_number(sc, p);
    }
    if (cls[c] & C_ALNUM)
        return scan_literal(sc, p, type);
    return fail(sc, p, R_VALUE);
}

/* ---- structure ------------------------------------------------------------------ */

/*
 * Any value at p (whitespace before it skipped), nested `depth` levels deep
 * already (its own brackets, if any, are level depth + 1).  Returns the
 * byte after it, or NULL.
 */
static cur skip_value(struct scan *sc, cur p, int depth0)
{
    cur end = sc->end;
    uint64_t stack[JSON_MAX_DEPTH / 64 + 1];    /* bit set: an object */
    int depth = 0;
    uint8_t type, esc;

value:
    if (p >= end)
        return fail(sc, end, R_END);
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        if (depth0 + depth + 1 > JSON_MAX_DEPTH)
            return fail(sc, p, R_DEPTH);
        if (obj)
            stack[depth / 64] |= 1ULL << (depth % 64);
        else
            stack[depth / 64] &= ~(1ULL << (depth % 64));
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == (obj ? '}' : ']')) {
            p++;
            depth--;
            goto next;
        }
        if (obj)
            goto key;
        goto value;
    }
    p = scan_scalar(sc, p, &type, &esc);
    if (p == NULL)
        return NULL;
    goto next;

key:
    if (p >= end)
        return fail(sc, end, R_END);
    if (*p != '"')
        return fail(sc, p, R_KEY);
    p = scan_string(sc, p + 1, &esc);
    if (p == NULL)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p >= end)
        return fail(sc, end, R_END);
    if (*p != ':')
        return fail(sc, p, R_COLON);
    p = skip_ws(p + 1, end);
    goto value;

next:
    if (depth == 0)
        return p;
    p = skip_ws(p, end);
    if (p >= end)
        return fail(sc, end, R_END);
    {
        int obj = (stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
        unsigned char close = obj ? '}' : ']';
        if (*p == ',') {
            cur comma = p;
            p = skip_ws(p + 1, end);
            if (p < end && *p == close)
                return fail(sc, comma, R_TRAILING);
            if (obj)
                goto key;
            goto value;
        }
        if (*p == close) {
            p++;
            depth--;
            goto next;
        }
        if (*p == (obj ? ']' : '}'))
            return fail(sc, p, R_MISMATCH);
        return fail(sc, p, obj ? R_OBJ_NEXT : R_ARR_NEXT);
    }
}

/* After the value: only whitespace may follow. */
static int finish(struct scan *sc, cur p)
{
    p = skip_ws(p, sc->end);
    if (p != sc->end) {
        fail(sc, p, R_AFTER);
        return -EINVAL;
    }
    return 0;
}

int json_validate(const char *buf, size_t len, struct json_error *err)
{
    struct scan sc = { (cur)buf, (cur)buf + len, err };
    cur p = skip_ws(sc.base, sc.end);
    if (p == sc.end) {
        fail(&sc, sc.base, R_EMPTY);
        return -EINVAL;
    }
    p = skip_value(&sc, p, 0);
    return p == NULL ? -EINVAL : finish(&sc, p);
}

static int push_member(struct json_members *m, const struct json_member *x)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        struct json_member *v = realloc(m->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = *x;
    return 0;
}

int json_object_scan(const char *buf, size_t len, struct json_members *m,
                     struct json_error *err)
{
    struct scan sc = { (cur)buf, (cur)buf + len, err };
    cur base = sc.base, end = sc.end, p;

    m->n = 0;
    p = skip_ws(base, end);
    if (p == end) {
        fail(&sc, base, R_EMPTY);
        return -EINVAL;
    }
    if (*p != '{') {
        cur v = p;
        p = skip_value(&sc, p, 0);
        if (p == NULL || finish(&sc, p) < 0)
            return -EINVAL;
        fail(&sc, v, R_NOT_OBJECT);
        return -EINVAL;
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return finish(&sc, p + 1);
    for (;;) {
        struct json_member x = { 0 };
        if (p >= end)
            goto eof;
        if (*p != '"')
            return fail(&sc, p, R_KEY), -EINVAL;
        cur k = p + 1;
        p = scan_string(&sc, k, &x.key_escaped);
        if (p == NULL)
            return -EINVAL;
        x.key = (uint32_t)(k - base);
        x.klen = (uint32_t)(p - k);
        p = skip_ws(p + 1, end);
        if (p >= end)
            goto eof;
        if (*p != ':')
            return fail(&sc, p, R_COLON), -EINVAL;
        p = skip_ws(p + 1, end);
        if (p >= end)
            goto eof;
        cur v = p;
        if (*p == '{' || *p == '[') {
            x.type = *p == '{' ? JK_OBJECT : JK_ARRAY;
            p = skip_value(&sc, p, 1);
        } else {
            p = scan_scalar(&sc, p, &x.type, &x.val_escaped);
        }
        if (p == NULL)
            return -EINVAL;
        if (x.type == JK_STRING) {
            x.val = (uint32_t)(v + 1 - base);
            x.vlen = (uint32_t)(p - v - 2);
        } else {
            x.val = (uint32_t)(v - base);
            x.vlen = (uint32_t)(p - v);
        }
        if (push_member(m, &x) < 0)
            return -ENOMEM;
        p = skip_ws(p, end);
        if (p >= end)
            goto eof;
        if (*p == '}')
            return finish(&sc, p + 1);
        if (*p != ',')
            return fail(&sc, p, *p == ']' ? R_MISMATCH : R_OBJ_NEXT), -EINVAL;
        cur comma = p;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}')
            return fail(&sc, comma, R_TRAILING), -EINVAL;
    }
eof:
    fail(&sc, end, R_END);
    return -EINVAL;
}

void json_members_free(struct json_members *m)
{
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}

/* ---- unescaping --------------------------------------------------------------- */

/* Four hex digits the scanner has checked. */
static unsigned hex4(const char *p)
{
    int v = 0, short_ = 0;
    hex_at((cur)p, (cur)p + 4, &v, &short_);
    return (unsigned)v;
}

size_t json_unescape(const char *s, size_t n, char *out)
{
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            *o++ = s[i];
            continue;
        }
        char c = s[++i];
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp = hex4(s + i + 1);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {     /* validated: a pair */
                cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(s + i + 3) - 0xDC00);
                i += 6;
            }
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | cp >> 12);
                *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | cp >> 18);
                *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
                *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:                        /* " \ / */
            *o++ = c;
            break;
        }
    }
    return (size_t)(o - out);
}
