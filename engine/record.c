/*
 * record.c - the JSON record decoder (see record.h).
 *
 * jsmn (strict mode) tokenizes the object into a reusable token array; the
 * decoder then walks the top-level keys once, matching each against the
 * schema and the event-time field, and converts only the values the job
 * uses.  Numbers take Clinger's fast path (an exact mantissa below 2^53
 * scaled by an exact power of ten is one correctly rounded operation) and
 * fall back to strtod otherwise, so "29.99" costs a few nanoseconds and
 * every double is still the correctly rounded one.
 *
 * The token array starts at 64 tokens and doubles when a record needs more,
 * up to DEC_MAX_TOKENS; the scratch buffer for unescaped strings grows to
 * the largest record seen.  Both are reused, so a steady stream allocates
 * nothing.  Runs on the loop thread; one decoder per source.
 */
#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STRICT
#define JSMN_STATIC
#include <jsmn.h>

#include "evtime.h"

#define DEC_MAX_TOKENS 65536

struct decoder {
    const struct job_source *src;
    struct value *vals;
    size_t nfields;
    size_t *name_len;           /* per schema field */
    int ts_field;               /* schema index of the event-time field, or -1 */
    int ts_outside;             /* the event-time field is not in the schema */
    size_t ts_name_len;
    uint32_t *seen;             /* per schema field: generation it was set in */
    uint32_t ts_seen, gen;
    jsmntok_t *tok;
    unsigned ntok;
    char *scratch;              /* unescaped strings */
    size_t scratch_cap, scratch_used;
    char why[256];
};

static const char *const reject_names[] = {
    [REJ_JSON] = "malformed", [REJ_TOO_BIG] = "too_big", [REJ_MISSING] = "missing_field",
    [REJ_TYPE] = "wrong_type", [REJ_UTF8] = "bad_utf8", [REJ_TIME] = "bad_time",
};

const char *reject_kind_name(enum reject_kind k)
{
    return k < REJ_NKINDS ? reject_names[k] : "?";
}

struct decoder *decoder_new(const struct job_source *src)
{
    struct decoder *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->src = src;
    d->nfields = src->nfields;
    d->vals = calloc(src->nfields ? src->nfields : 1, sizeof(*d->vals));
    d->name_len = calloc(src->nfields ? src->nfields : 1, sizeof(*d->name_len));
    d->seen = calloc(src->nfields ? src->nfields : 1, sizeof(*d->seen));
    d->ntok = 64;
    d->tok = malloc(d->ntok * sizeof(*d->tok));
    if (d->vals == NULL || d->name_len == NULL || d->seen == NULL || d->tok == NULL) {
        decoder_free(d);
        return NULL;
    }
    d->ts_field = -1;
    for (size_t i = 0; i < src->nfields; i++) {
        d->name_len[i] = strlen(src->fields[i].name);
        d->vals[i].type = src->fields[i].type;
        if (src->has_event_time && src->ts_field != NULL &&
            strcmp(src->fields[i].name, src->ts_field) == 0)
            d->ts_field = (int)i;
    }
    if (src->has_event_time && src->ts_field != NULL && d->ts_field < 0) {
        d->ts_outside = 1;
        d->ts_name_len = strlen(src->ts_field);
    }
    return d;
}

void decoder_free(struct decoder *d)
{
    if (d == NULL)
        return;
    free(d->vals);
    free(d->name_len);
    free(d->seen);
    free(d->tok);
    free(d->scratch);
    free(d);
}

static int reject(struct decoder *d, enum reject_kind k, enum reject_kind *kind,
                  const char **why, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int reject(struct decoder *d, enum reject_kind k, enum reject_kind *kind,
                  const char **why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
    *kind = k;
    *why = d->why;
    return -EINVAL;
}

/* ---- scalars ------------------------------------------------------------ */

int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + need >= n)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += need + 1;
    }
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/*
 * A string value s[0..n) as written between the quotes: checked for control
 * characters and UTF-8, unescaped into scratch when it has escapes.
 * Returns 0, -1 for bad UTF-8, -2 for a bad escape or control character.
 */
static int string_value(struct decoder *d, const char *s, size_t n, struct value *v)
{
    const char *bs = memchr(s, '\\', n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return -2;
    if (bs == NULL) {
        if (!utf8_valid((const unsigned char *)s, n))
            return -1;
        v->u.s.p = s;
        v->u.s.len = n;
        return 0;
    }
    char *o = d->scratch + d->scratch_used, *start = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            *o++ = s[i];
            continue;
        }
        if (++i >= n)
            return -2;
        switch (s[i]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (i + 4 >= n)
                return -2;
            if (hex4(s + i + 1, &cp) < 0)
                return -2;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 6 >= n)
                    return -1;
                if (s[i + 1] != '\\' || s[i + 2] != 'u' || hex4(s + i + 3, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
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
        default:
            return -2;
        }
    }
    size_t len = (size_t)(o - start);
    if (!utf8_valid((const unsigned char *)start, len))
        return -1;
    d->scratch_used += len;
    v->u.s.p = start;
    v->u.s.len = len;
    return 0;
}

static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number as an exact decimal: (-1)^neg * mant * 10^exp10.  Digits
 * past the 19th significant one are dropped (counted in exp10), so mant is
 * exact for every number a record realistically carries. */
struct decimal {
    int neg, is_int;            /* is_int: no fraction, no exponent, nothing dropped */
    uint64_t mant;
    int exp10;
};

/* Returns 0, or -1 when s[0..n) is not a JSON number. */
static int parse_decimal(const char *s, size_t n, struct decimal *x)
{
    size_t i = 0;
    int mant_digits = 0, int_ok = 1;

    x->neg = 0;
    x->mant = 0;
    x->exp10 = 0;
    if (i < n && s[i] == '-') {
        x->neg = 1;
        i++;
    }
    if (i >= n || s[i] < '0' || s[i] > '9')
        return -1;
    if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
        return -1;                          /* leading zeros */
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (mant_digits < 19) {
            x->mant = x->mant * 10 + (uint64_t)(s[i] - '0');
            if (x->mant)
                mant_digits++;
        } else {
            x->exp10++;
            int_ok = 0;
        }
    }
    if (i < n && s[i] == '.') {
        int_ok = 0;
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return -1;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (mant_digits < 19) {
                x->mant = x->mant * 10 + (uint64_t)(s[i] - '0');
                if (x->mant)
                    mant_digits++;
                x->exp10--;
            }
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int_ok = 0;
        i++;
        int eneg = 0, e = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i >= n || s[i] < '0' || s[i] > '9')
            return -1;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
        x->exp10 += eneg ? -e : e;
    }
    if (i != n)
        return -1;
    x->is_int = int_ok;
    return 0;
}

/* The integer value, when the number is a whole number in int64 range. */
static int decimal_to_int(const struct decimal *x, int64_t *v)
{
    if (!x->is_int)
        return -1;
    if (!x->neg && x->mant <= (uint64_t)INT64_MAX) {
        *v = (int64_t)x->mant;
        return 0;
    }
    if (x->neg && x->mant <= (uint64_t)INT64_MAX + 1) {
        *v = x->mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x->mant;
        return 0;
    }
    return -1;
}

/* The correctly rounded double: Clinger's fast path, else strtod. */
static double decimal_to_double(const struct decimal *x, const char *s, size_t n)
{
    if (x->mant < (1ULL << 53) && x->exp10 >= -22 && x->exp10 <= 22) {
        double v = (double)x->mant;
        v = x->exp10 < 0 ? v / pow10_exact[-x->exp10] : v * pow10_exact[x->exp10];
        return x->neg ? -v : v;
    }
    char buf[512];
    if (n >= sizeof(buf))
        return x->neg ? -HUGE_VAL : HUGE_VAL;   /* absurdly long: out of range */
    memcpy(buf, s, n);
    buf[n] = '\0';
    return strtod(buf, NULL);
}

/*
 * floor(x * 10^shift) as an integer, exactly (no binary rounding), for
 * epoch_s (shift 3) and epoch_ms (shift 0) times.  -1 when out of range.
 */
static int decimal_scaled_floor(const struct decimal *x, int shift, int64_t *out)
{
    int e = x->exp10 + shift;
    uint64_t m = x->mant;
    int inexact = 0;

    if (m == 0) {
        *out = 0;
        return 0;
    }
    for (; e > 0; e--) {
        if (m > UINT64_MAX / 10)
            return -1;
        m *= 10;
    }
    for (; e < 0; e++) {
        inexact |= m % 10 != 0;
        m /= 10;
        if (m == 0 && e < -1) {
            inexact = 1;
            break;
        }
    }
    if (m > (uint64_t)INT64_MAX - 1)
        return -1;
    *out = x->neg ? -(int64_t)m - inexact : (int64_t)m;
    return 0;
}

static int primitive_ok(const char *s, size_t n)
{
    struct decimal x;
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0) ||
        (n == 4 && memcmp(s, "null", 4) == 0))
        return 1;
    return parse_decimal(s, n, &x) == 0;
}

static const char *json_kind(const char *buf, const jsmntok_t *t)
{
    switch (t->type) {
    case JSMN_OBJECT: return "an object";
    case JSMN_ARRAY: return "an array";
    case JSMN_STRING: return "a string";
    default:
        if (buf[t->start] == 't' || buf[t->start] == 'f')
            return "a bool";
        if (buf[t->start] == 'n')
            return "null";
        return "a number";
    }
}

/* ---- decoding ----------------------------------------------------------- */

static int tokenize(struct decoder *d, const char *buf, size_t len, int *ntok)
{
    for (;;) {
        jsmn_parser p;
        jsmn_init(&p);
        int r = jsmn_parse(&p, buf, len, d->tok, d->ntok);
        if (r != JSMN_ERROR_NOMEM) {
            *ntok = r;
            return 0;
        }
        if (d->ntok >= DEC_MAX_TOKENS)
            return -1;
        jsmntok_t *t = realloc(d->tok, 2 * d->ntok * sizeof(*t));
        if (t == NULL)
            return -1;
        d->tok = t;
        d->ntok *= 2;
    }
}

/* Index of the token after the subtree rooted at tokens[i]. */
static int skip(const jsmntok_t *t, int n, int i)
{
    int end = t[i].end;
    i++;
    while (i < n && t[i].start < end)
        i++;
    return i;
}

static int set_field(struct decoder *d, int f, const char *buf, const jsmntok_t *t,
                     enum reject_kind *kind, const char **why)
{
    const struct schema_field *sf = &d->src->fields[f];
    struct value *v = &d->vals[f];
    const char *s = buf + t->start;
    size_t n = (size_t)(t->end - t->start);
    struct decimal x;
    double dv;

    if (t->type == JSMN_PRIMITIVE && n == 4 && memcmp(s, "null", 4) == 0)
        return reject(d, REJ_MISSING, kind, why, "field '%s' is null", sf->name);
    switch (sf->type) {
    case VT_STRING:
        if (t->type != JSMN_STRING)
            break;
        switch (string_value(d, s, n, v)) {
        case 0:
            return 0;
        case -1:
            return reject(d, REJ_UTF8, kind, why, "field '%s' is not valid UTF-8", sf->name);
        default:
            return reject(d, REJ_JSON, kind, why, "field '%s': bad escape or control "
                          "character in string", sf->name);
        }
    case VT_INT:
        if (t->type != JSMN_PRIMITIVE || s[0] == 't' || s[0] == 'f')
            break;
        if (parse_decimal(s, n, &x) < 0)
            return reject(d, REJ_JSON, kind, why, "field '%s': bad number", sf->name);
        if (decimal_to_int(&x, &v->u.i) < 0)
            return reject(d, REJ_TYPE, kind, why, "field '%s' must be a whole number in "
                          "int64 range, got %.*s", sf->name, (int)(n > 40 ? 40 : n), s);
        return 0;
    case VT_DOUBLE:
        if (t->type != JSMN_PRIMITIVE || s[0] == 't' || s[0] == 'f')
            break;
        if (parse_decimal(s, n, &x) < 0)
            return reject(d, REJ_JSON, kind, why, "field '%s': bad number", sf->name);
        dv = decimal_to_double(&x, s, n);
        if (!isfinite(dv))
            return reject(d, REJ_TYPE, kind, why, "field '%s': number out of double range",
                          sf->name);
        v->u.d = dv;
        return 0;
    case VT_BOOL:
        if (t->type != JSMN_PRIMITIVE)
            break;
        if (n == 4 && memcmp(s, "true", 4) == 0) {
            v->u.b = 1;
            return 0;
        }
        if (n == 5 && memcmp(s, "false", 5) == 0) {
            v->u.b = 0;
            return 0;
        }
        break;
    }
    return reject(d, REJ_TYPE, kind, why, "field '%s' must be %s, got %s", sf->name,
                  sf->type == VT_STRING ? "a string" : sf->type == VT_BOOL ? "true or false"
                  : sf->type == VT_INT ? "an integer" : "a number", json_kind(buf, t));
}

/* Event time from a token (the field may or may not be in the schema). */
static int time_from_token(struct decoder *d, const char *buf, const jsmntok_t *t,
                           int64_t *ms, enum reject_kind *kind, const char **why)
{
    const struct job_source *src = d->src;
    const char *s = buf + t->start;
    size_t n = (size_t)(t->end - t->start);
    const char *reason;

    if (t->type == JSMN_PRIMITIVE && n == 4 && memcmp(s, "null", 4) == 0)
        return reject(d, REJ_MISSING, kind, why, "event time '%s' is null", src->ts_field);
    if (src->ts_format == TS_ISO8601) {
        if (t->type != JSMN_STRING)
            return reject(d, REJ_TIME, kind, why, "event time '%s' must be an ISO-8601 "
                          "string, got %s", src->ts_field, json_kind(buf, t));
        if (evtime_parse_iso8601(s, n, src->tz_offset_s, ms, &reason) < 0)
            return reject(d, REJ_TIME, kind, why, "event time '%s' \"%.*s\": %s",
                          src->ts_field, (int)(n > 40 ? 40 : n), s, reason);
        return 0;
    }
    struct decimal x;
    if (t->type != JSMN_PRIMITIVE || s[0] == 't' || s[0] == 'f' ||
        parse_decimal(s, n, &x) < 0)
        return reject(d, REJ_TIME, kind, why, "event time '%s' must be a number (%s), "
                      "got %s", src->ts_field,
                      src->ts_format == TS_EPOCH_MS ? "epoch_ms" : "epoch_s",
                      json_kind(buf, t));
    if (decimal_scaled_floor(&x, src->ts_format == TS_EPOCH_S ? 3 : 0, ms) < 0)
        *ms = INT64_MIN;
    if (!evtime_in_range(*ms))
        return reject(d, REJ_TIME, kind, why, "event time '%s' %.*s is outside "
                      "1900..9999", src->ts_field, (int)(n > 40 ? 40 : n), s);
    return 0;
}

int decoder_decode(struct decoder *d, const char *buf, size_t len, int64_t kafka_ts,
                   struct record *out, enum reject_kind *kind, const char **why)
{
    const struct job_source *src = d->src;
    int ntok;

    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                       buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    if (len > RECORD_MAX_BYTES)
        return reject(d, REJ_TOO_BIG, kind, why, "record is %zu bytes; the limit is %u",
                      len, RECORD_MAX_BYTES);
    if (d->scratch_cap < len) {
        size_t cap = d->scratch_cap ? d->scratch_cap : 256;
        while (cap < len)
            cap *= 2;
        char *p = realloc(d->scratch, cap);
        if (p == NULL)
            return reject(d, REJ_TOO_BIG, kind, why, "out of memory for a %zu-byte record",
                          len);
        d->scratch = p;
        d->scratch_cap = cap;
    }
    d->scratch_used = 0;
    if (len == 0)
        return reject(d, REJ_JSON, kind, why, "empty record");
    if (tokenize(d, buf, len, &ntok) < 0)
        return reject(d, REJ_TOO_BIG, kind, why, "record has more than %d JSON tokens",
                      DEC_MAX_TOKENS);
    if (ntok < 1 || d->tok[0].type != JSMN_OBJECT)
        return reject(d, REJ_JSON, kind, why, ntok < 0 ? "malformed JSON"
                      : "not a JSON object");
    if ((size_t)d->tok[0].end != len) {
        size_t e = (size_t)d->tok[0].end;
        while (e < len && (buf[e] == ' ' || buf[e] == '\t'))
            e++;
        if (e != len)
            return reject(d, REJ_JSON, kind, why, "text after the JSON object");
    }
    {
        size_t s0 = 0;
        while (s0 < len && (buf[s0] == ' ' || buf[s0] == '\t'))
            s0++;
        if ((size_t)d->tok[0].start != s0)
            return reject(d, REJ_JSON, kind, why, "malformed JSON");
    }
    if (++d->gen == 0) {
        memset(d->seen, 0, d->nfields * sizeof(*d->seen));
        d->ts_seen = 0;
        d->gen = 1;
    }

    int64_t ts = EVTIME_NONE;
    int i = 1;
    for (int k = 0; k < d->tok[0].size; k++) {
        if (i + 1 >= ntok || d->tok[i].type != JSMN_STRING)
            return reject(d, REJ_JSON, kind, why, "malformed JSON");
        const jsmntok_t *kt = &d->tok[i], *vt = &d->tok[i + 1];
        const char *key = buf + kt->start;
        size_t klen = (size_t)(kt->end - kt->start);
        int f = -1;
        for (size_t j = 0; j < d->nfields; j++) {
            if (d->name_len[j] == klen && memcmp(src->fields[j].name, key, klen) == 0) {
                f = (int)j;
                break;
            }
        }
        if (f >= 0) {
            if (d->seen[f] == d->gen)
                return reject(d, REJ_JSON, kind, why, "field '%s' appears twice",
                              src->fields[f].name);
            d->seen[f] = d->gen;
            if (vt->type == JSMN_OBJECT || vt->type == JSMN_ARRAY)
                return reject(d, REJ_TYPE, kind, why, "field '%s' must be %s, got %s",
                              src->fields[f].name, value_type_name(src->fields[f].type),
                              json_kind(buf, vt));
            if (set_field(d, f, buf, vt, kind, why) < 0)
                return -EINVAL;
            if (f == d->ts_field && time_from_token(d, buf, vt, &ts, kind, why) < 0)
                return -EINVAL;
        } else if (d->ts_outside && klen == d->ts_name_len &&
                   memcmp(key, src->ts_field, klen) == 0) {
            if (d->ts_seen == d->gen)
                return reject(d, REJ_JSON, kind, why, "field '%s' appears twice",
                              src->ts_field);
            d->ts_seen = d->gen;
            if (time_from_token(d, buf, vt, &ts, kind, why) < 0)
                return -EINVAL;
        } else if (vt->type == JSMN_PRIMITIVE &&
                   !primitive_ok(buf + vt->start, (size_t)(vt->end - vt->start))) {
            return reject(d, REJ_JSON, kind, why, "malformed JSON value");
        }
        i = skip(d->tok, ntok, i + 1);
    }
    for (size_t j = 0; j < d->nfields; j++)
        if (d->seen[j] != d->gen)
            return reject(d, REJ_MISSING, kind, why, "field '%s' is missing",
                          src->fields[j].name);
    if (src->has_event_time) {
        if (src->ts_format == TS_KAFKA_TIMESTAMP) {
            if (!evtime_in_range(kafka_ts))
                return reject(d, REJ_TIME, kind, why, "Kafka timestamp %lld is outside "
                              "1900..9999", (long long)kafka_ts);
            ts = kafka_ts;
        } else if (d->ts_outside && d->ts_seen != d->gen) {
            return reject(d, REJ_MISSING, kind, why, "event time '%s' is missing",
                          src->ts_field);
        }
    }
    out->v = d->vals;
    out->nv = d->nfields;
    out->event_time = ts;
    out->raw = buf;
    out->raw_len = len;
    return 0;
}
