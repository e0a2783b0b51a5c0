/*
 * format.c - results, keys and dead letters as text (see format.h).
 */
#include "format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/json.h"

int sbuf_reserve(struct sbuf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    return 0;
}

int sbuf_put(struct sbuf *b, const char *s, size_t n)
{
    if (sbuf_reserve(b, n) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int sbuf_putc(struct sbuf *b, char c)
{
    return sbuf_put(b, &c, 1);
}

int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(tmp))
        return sbuf_put(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sbuf_put(b, big, (size_t)n);
    free(big);
    return rc;
}

void sbuf_free(struct sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

const char *fmt_value_text(const struct value *v, char *tmp, size_t *n)
{
    switch ((int)v->type) {
    case VT_STRING:
        *n = v->u.s.len;
        return v->u.s.p;
    case VT_INT:
        *n = fmt_i64(tmp, v->u.i);
        return tmp;
    case VT_DOUBLE:
        *n = fmt_double(v->u.d, tmp);
        return tmp;
    case VT_BOOL:
        *n = v->u.b ? 4 : 5;
        return v->u.b ? "true" : "false";
    default:
        *n = 0;                         /* null: an empty string */
        return "";
    }
}

int fmt_redis_value(struct sbuf *b, const struct value *v)
{
    char tmp[FMT_VALUE_MAX];
    size_t n;
    const char *s = fmt_value_text(v, tmp, &n);
    return sbuf_put(b, s, n);
}

int fmt_key(struct sbuf *b, const struct template *t, const struct job *job,
            const struct job_operator *op, const struct engine_result *r)
{
    const struct job_source *src = &job->sources[op->source];
    int rc = 0;
    for (size_t i = 0; i < t->nparts && rc == 0; i++) {
        const struct tpl_part *p = &t->parts[i];
        switch (p->kind) {
        case TPL_TEXT:
            rc = sbuf_put(b, p->text, p->len);
            break;
        case TPL_WINDOW_START:
        case TPL_WINDOW_END: {
            char n[24];
            rc = sbuf_put(b, n, fmt_i64(n, p->kind == TPL_WINDOW_START ? r->start : r->end));
            break;
        }
        case TPL_FIELD:
            for (size_t k = 0; k < op->nkeys; k++) {
                const char *name = src->fields[op->key_fields[k]].name;
                if (strlen(name) == p->len && memcmp(name, p->text, p->len) == 0) {
                    rc = fmt_redis_value(b, &r->keys[k]);
                    break;
                }
            }
            break;
        }
    }
    return rc;
}

int fmt_json_string(struct sbuf *b, const char *s, size_t n)
{
    int rc = sbuf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = sbuf_put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': rc = rc ? rc : sbuf_put(b, "\\\"", 2); break;
        case '\\': rc = rc ? rc : sbuf_put(b, "\\\\", 2); break;
        case '\n': rc = rc ? rc : sbuf_put(b, "\\n", 2); break;
        case '\r': rc = rc ? rc : sbuf_put(b, "\\r", 2); break;
        case '\t': rc = rc ? rc : sbuf_put(b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            rc = rc ? rc : sbuf_put(b, esc, 6);
        }
    }
    if (rc == 0)
        rc = sbuf_put(b, s + run, n - run);
    return rc ? rc : sbuf_putc(b, '"');
}

size_t fmt_utf8_clean(char *dst, const char *src, size_t n)
{
    const unsigned char *p = (const unsigned char *)src, *end = p + n;
    size_t k = 0;
    while (p < end) {
        size_t len = *p < 0x80 ? 1 : *p >= 0xC2 && *p <= 0xDF ? 2 : *p >= 0xE0 && *p <= 0xEF ? 3
                   : *p >= 0xF0 && *p <= 0xF4 ? 4 : 0;
        if (len == 0 || len > (size_t)(end - p) || (len > 1 && !json_utf8_valid(p, len))) {
            dst[k++] = '?';
            p++;
            continue;
        }
        memmove(dst + k, p, len);
        k += len;
        p += len;
    }
    return k;
}

static int json_value(struct sbuf *b, const struct value *v)
{
    if (v->type == VT_STRING)
        return fmt_json_string(b, v->u.s.p, v->u.s.len);
    if ((int)v->type == (int)VT_NULL)
        return sbuf_put(b, "null", 4);
    return fmt_redis_value(b, v);
}

int fmt_json_result(struct sbuf *b, const struct job *job, const struct job_operator *op,
                    const struct engine_result *r)
{
    const struct job_source *src = &job->sources[op->source];
    int rc = sbuf_putc(b, '{');
    for (size_t k = 0; k < op->nkeys && rc == 0; k++) {
        const char *name = src->fields[op->key_fields[k]].name;
        if (k)
            rc = sbuf_putc(b, ',');
        rc = rc ? rc : fmt_json_string(b, name, strlen(name));
        rc = rc ? rc : sbuf_putc(b, ':');
        rc = rc ? rc : json_value(b, &r->keys[k]);
    }
    if (rc == 0 && r->start != INT64_MIN) {
        char n[24];
        rc = sbuf_put(b, ",\"window_start\":", 16);
        rc = rc ? rc : sbuf_put(b, n, fmt_i64(n, r->start));
        rc = rc ? rc : sbuf_put(b, ",\"window_end\":", 14);
        rc = rc ? rc : sbuf_put(b, n, fmt_i64(n, r->end));
    }
    for (size_t i = 0; i < r->nvals && rc == 0; i++) {
        rc = sbuf_putc(b, ',');
        rc = rc ? rc : fmt_json_string(b, op->aggs[i].name, strlen(op->aggs[i].name));
        rc = rc ? rc : sbuf_putc(b, ':');
        rc = rc ? rc : json_value(b, &r->vals[i]);
    }
    return rc ? rc : sbuf_putc(b, '}');
}

static int base64(struct sbuf *b, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63],
                      i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
        rc = sbuf_put(b, q, 4);
    }
    return rc;
}

int fmt_dead_letter(struct sbuf *b, const char *source, int32_t partition, int64_t offset,
                    const struct reject *rej, const char *raw, size_t len)
{
    int rc = sbuf_put(b, "{\"source\":", 10);
    rc = rc ? rc : fmt_json_string(b, source, strlen(source));
    rc = rc ? rc : sbuf_printf(b, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64
                               ",\"error\":\"%s\",\"reason\":", partition, offset,
                               reject_kind_name(rej->kind));
    rc = rc ? rc : fmt_json_string(b, rej->why, strlen(rej->why));
    if (rej->at >= 0)
        rc = rc ? rc : sbuf_printf(b, ",\"byte_offset\":%" PRId64, rej->at);
    if (json_utf8_valid((const unsigned char *)raw, len)) {
        rc = rc ? rc : sbuf_put(b, ",\"record\":", 10);
        rc = rc ? rc : fmt_json_string(b, raw, len);
    } else {
        rc = rc ? rc : sbuf_put(b, ",\"record_base64\":\"", 18);
        rc = rc ? rc : base64(b, (const unsigned char *)raw, len);
        rc = rc ? rc : sbuf_putc(b, '"');
    }
    return rc ? rc : sbuf_putc(b, '}');
}
