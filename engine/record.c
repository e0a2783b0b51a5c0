/*
 * record.c - the JSON record decoder (see record.h).
 *
 * json_object_scan (json.c) checks the whole record against the RFC 8259
 * grammar and lists the top-level members; the decoder then matches their
 * keys against the schema and the event-time field (the last occurrence of
 * a duplicated key wins, as in Jackson, so a job moved from Flink reads the
 * same values) and converts only the values the job uses.  Numbers take
 * Clinger's fast path (an exact mantissa below 2^53 scaled by an exact
 * power of ten is one correctly rounded operation) and fall back to strtod
 * otherwise, so "29.99" costs a few nanoseconds and every double is still
 * the correctly rounded one.
 *
 * The member array and the scratch buffer for unescaped strings grow to
 * the largest record seen and are reused, so a steady stream allocates
 * nothing.  Runs on the loop thread; one decoder per source.
 */
#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evtime.h"
#include "json.h"

struct decoder {
    const struct job_source *src;
    struct value *vals;
    size_t nfields;
    size_t *name_len;           /* per schema field */
    int ts_field;               /* schema index of the event-time field, or -1 */
    int ts_outside;             /* the event-time field is not in the schema */
    size_t ts_name_len;
    uint32_t *seen;             /* per schema field: generation it was set in */
    uint32_t *at;               /* per schema field: its member (when seen) */
    uint32_t ts_seen, ts_at, gen;
    struct json_members m;
    char *scratch;              /* unescaped strings */
    size_t scratch_cap, scratch_used;
    char why[256];
};

static const char *const reject_names[] = {
    [REJ_JSON] = "bad_json", [REJ_TOO_BIG] = "too_big", [REJ_MISSING] = "missing_field",
    [REJ_TYPE] = "wrong_type", [REJ_TIME] = "bad_time",
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
    d->at = calloc(src->nfields ? src->nfields : 1, sizeof(*d->at));
    if (d->vals == NULL || d->name_len == NULL || d->seen == NULL || d->at == NULL) {
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
    free(d->at);
    json_members_free(&d->m);
    free(d->scratch);
    free(d);
}

static int reject(struct decoder *d, struct reject *rej, enum reject_kind k,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int reject(struct decoder *d, struct reject *rej, enum reject_kind k,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
    rej->kind = k;
    rej->why = d->why;
    rej->at = -1;
    return -EINVAL;
}

/* ---- scalars ------------------------------------------------------------ */

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

/* Reads s[0..n), a number json.c has checked against the grammar (so no
 * check here: -?int(.frac)?(e[+-]?exp)?). */
static void parse_decimal(const char *s, size_t n, struct decimal *x)
{
    int mant_digits = 0, int_ok = 1;

    x->neg = s[0] == '-';
    x->mant = 0;
    x->exp10 = 0;
    size_t i = (size_t)x->neg;
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
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (mant_digits < 19) {
                x->mant = x->mant * 10 + (uint64_t)(s[i] - '0');
                if (x->mant)
                    mant_digits++;
                x->exp10--;
            }
        }
    }
    if (i < n) {                            /* e or E */
        int_ok = 0;
        i++;
        int eneg = 0, e = 0;
        if (s[i] == '+' || s[i] == '-')
            eneg = s[i++] == '-';
        for (; i < n; i++)
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
        x->exp10 += eneg ? -e : e;
    }
    x->is_int = int_ok;
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

/* ---- fields --------------------------------------------------------------- */

/* A string member's text, its escapes undone into scratch when it has any. */
static void string_value(struct decoder *d, const char *buf, const struct json_member *m,
                         struct value *v)
{
    const char *s = buf + m->val;
    if (!m->val_escaped) {
        v->u.s.p = s;
        v->u.s.len = m->vlen;
        return;
    }
    char *o = d->scratch + d->scratch_used;
    size_t n = json_unescape(s, m->vlen, o);
    d->scratch_used += n;
    v->u.s.p = o;
    v->u.s.len = n;
}

static const char *member_kind(const struct json_member *m)
{
    switch (m->type) {
    case JK_OBJECT: return "an object";
    case JK_ARRAY: return "an array";
    case JK_STRING: return "a string";
    case JK_NUMBER: return "a number";
    case JK_NULL: return "null";
    default: return "a bool";
    }
}

static int set_field(struct decoder *d, int f, const char *buf, const struct json_member *m,
                     struct reject *rej)
{
    const struct schema_field *sf = &d->src->fields[f];
    struct value *v = &d->vals[f];
    const char *s = buf + m->val;
    size_t n = m->vlen;
    struct decimal x;
    double dv;

    if (m->type == JK_NULL)
        return reject(d, rej, REJ_MISSING, "field '%s' is null", sf->name);
    switch (sf->type) {
    case VT_STRING:
        if (m->type != JK_STRING)
            break;
        string_value(d, buf, m, v);
        return 0;
    case VT_INT:
        if (m->type != JK_NUMBER)
            break;
        parse_decimal(s, n, &x);
        if (decimal_to_int(&x, &v->u.i) < 0)
            return reject(d, rej, REJ_TYPE, "field '%s' must be a whole number in int64 "
                          "range, got %.*s", sf->name, (int)(n > 40 ? 40 : n), s);
        return 0;
    case VT_DOUBLE:
        if (m->type != JK_NUMBER)
            break;
        parse_decimal(s, n, &x);
        dv = decimal_to_double(&x, s, n);
        if (!isfinite(dv))
            return reject(d, rej, REJ_TYPE, "field '%s': number out of double range",
                          sf->name);
        v->u.d = dv;
        return 0;
    case VT_BOOL:
        if (m->type != JK_TRUE && m->type != JK_FALSE)
            break;
        v->u.b = m->type == JK_TRUE;
        return 0;
    }
    return reject(d, rej, REJ_TYPE, "field '%s' must be %s, got %s", sf->name,
                  sf->type == VT_STRING ? "a string" : sf->type == VT_BOOL ? "true or false"
                  : sf->type == VT_INT ? "an integer" : "a number", member_kind(m));
}

/* Event time from a member: schema field f (already set), or outside the
 * schema (f < 0). */
static int time_from_member(struct decoder *d, const char *buf, const struct json_member *m,
                            int f, int64_t *ms, struct reject *rej)
{
    const struct job_source *src = d->src;
    const char *s = buf + m->val;
    size_t n = m->vlen;
    const char *reason;

    if (m->type == JK_NULL)
        return reject(d, rej, REJ_MISSING, "event time '%s' is null", src->ts_field);
    if (src->ts_format == TS_ISO8601) {
        if (m->type != JK_STRING)
            return reject(d, rej, REJ_TIME, "event time '%s' must be an ISO-8601 string, "
                          "got %s", src->ts_field, member_kind(m));
        struct value v;
        if (f >= 0)
            v = d->vals[f];                     /* unescaped once: scratch holds len bytes */
        else
            string_value(d, buf, m, &v);
        if (evtime_parse_iso8601(v.u.s.p, v.u.s.len, src->tz_offset_s, ms, &reason) < 0)
            return reject(d, rej, REJ_TIME, "event time '%s' \"%.*s\": %s", src->ts_field,
                          (int)(n > 40 ? 40 : n), s, reason);
        return 0;
    }
    struct decimal x;
    if (m->type != JK_NUMBER)
        return reject(d, rej, REJ_TIME, "event time '%s' must be a number (%s), got %s",
                      src->ts_field, src->ts_format == TS_EPOCH_MS ? "epoch_ms" : "epoch_s",
                      member_kind(m));
    parse_decimal(s, n, &x);
    if (decimal_scaled_floor(&x, src->ts_format == TS_EPOCH_S ? 3 : 0, ms) < 0)
        *ms = INT64_MIN;
    if (!evtime_in_range(*ms))
        return reject(d, rej, REJ_TIME, "event time '%s' %.*s is outside 1900..9999",
                      src->ts_field, (int)(n > 40 ? 40 : n), s);
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/* The schema field a key names, or -1; -2 for the event-time field when it
 * is outside the schema.  An escaped key is compared unescaped. */
static int match_key(struct decoder *d, const char *buf, const struct json_member *m)
{
    const struct job_source *src = d->src;
    const char *key = buf + m->key;
    size_t klen = m->klen;
    if (m->key_escaped) {
        klen = json_unescape(key, klen, d->scratch);    /* scratch is free until the values */
        key = d->scratch;
    }
    for (size_t j = 0; j < d->nfields; j++)
        if (d->name_len[j] == klen && memcmp(src->fields[j].name, key, klen) == 0)
            return (int)j;
    if (d->ts_outside && klen == d->ts_name_len && memcmp(key, src->ts_field, klen) == 0)
        return -2;
    return -1;
}

int decoder_decode(struct decoder *d, const char *buf, size_t len, int64_t kafka_ts,
                   struct record *out, struct reject *rej)
{
    const struct job_source *src = d->src;
    struct json_error err;

    if (len > RECORD_MAX_BYTES)
        return reject(d, rej, REJ_TOO_BIG, "record is %zu bytes; the limit is %u", len,
                      RECORD_MAX_BYTES);
    if (d->scratch_cap < len) {
        size_t cap = d->scratch_cap ? d->scratch_cap : 256;
        while (cap < len)
            cap *= 2;
        char *p = realloc(d->scratch, cap);
        if (p == NULL)
            return reject(d, rej, REJ_TOO_BIG, "out of memory for a %zu-byte record", len);
        d->scratch = p;
        d->scratch_cap = cap;
    }
    d->scratch_used = 0;
    int rc = json_object_scan(buf, len, &d->m, &err);
    if (rc == -ENOMEM)
        return reject(d, rej, REJ_TOO_BIG, "out of memory for the members of a %zu-byte "
                      "record", len);
    if (rc < 0) {
        reject(d, rej, REJ_JSON, "%s", err.reason);
        rej->at = (int64_t)err.at;
        return -EINVAL;
    }
    if (++d->gen == 0) {
        memset(d->seen, 0, d->nfields * sizeof(*d->seen));
        d->ts_seen = 0;
        d->gen = 1;
    }
    for (size_t i = 0; i < d->m.n; i++) {
        int f = match_key(d, buf, &d->m.v[i]);
        if (f >= 0) {
            d->seen[f] = d->gen;
            d->at[f] = (uint32_t)i;
        } else if (f == -2) {
            d->ts_seen = d->gen;
            d->ts_at = (uint32_t)i;
        }
    }

    int64_t ts = EVTIME_NONE;
    for (size_t j = 0; j < d->nfields; j++) {
        if (d->seen[j] != d->gen)
            return reject(d, rej, REJ_MISSING, "field '%s' is missing", src->fields[j].name);
        const struct json_member *m = &d->m.v[d->at[j]];
        if (set_field(d, (int)j, buf, m, rej) < 0)
            return -EINVAL;
        if ((int)j == d->ts_field && time_from_member(d, buf, m, (int)j, &ts, rej) < 0)
            return -EINVAL;
    }
    if (src->has_event_time) {
        if (src->ts_format == TS_KAFKA_TIMESTAMP) {
            if (!evtime_in_range(kafka_ts))
                return reject(d, rej, REJ_TIME, "Kafka timestamp %lld is outside 1900..9999",
                              (long long)kafka_ts);
            ts = kafka_ts;
        } else if (d->ts_outside) {
            if (d->ts_seen != d->gen)
                return reject(d, rej, REJ_MISSING, "event time '%s' is missing",
                              src->ts_field);
            if (time_from_member(d, buf, &d->m.v[d->ts_at], -1, &ts, rej) < 0)
                return -EINVAL;
        }
    }
    out->v = d->vals;
    out->nv = d->nfields;
    out->event_time = ts;
    out->raw = buf;
    out->raw_len = len;
    return 0;
}
