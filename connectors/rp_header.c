/*
 * rp_header.c - the repartition record header, the key text and the
 * partitioner (rp_header.h).
 *
 * The header is text so that `kcat -J` shows it, and it has exactly one
 * spelling per value: the parser refuses anything rp_meta_format would not
 * write (extra spaces, leading zeros, '+', "-0", numbers out of range,
 * trailing bytes, NULs).  Stage 2 trusts what it accepts to index arrays
 * (src < nsrc <= RP_MAX_SOURCES) and to drop replayed records by offset,
 * so a header that is almost right is refused, never guessed at.  The
 * fuzz target tests/fuzz/fuzz_rpheader.c checks that whatever is accepted
 * formats back to the same bytes.
 *
 * The key text is a JSON array of the key's values, so that it is
 * self-delimiting (["a,b"] and ["a","b"] differ) and readable; strings
 * are the decoded values (escapes in the input undone by the decoder),
 * escaped again one way (value_to_json: `"` `\` and control characters),
 * so equal values give equal bytes whatever the input spelled or which
 * schema they came from.  Doubles use the engine's shortest round-trip
 * form with -0 written as 0 (the engine's value_eq holds them equal);
 * NaN and infinities, which JSON cannot hold, are refused.
 *
 * Nothing here allocates; everything is pure and thread-free.
 */
#include "rp_header.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "../engine/value.h"

/* ---- the header ---------------------------------------------------------- */

int rp_meta_format(const struct rp_meta *m, char *buf, size_t size)
{
    char tmp[RP_HEADER_MAX];
    size_t n = 0;
    tmp[n++] = m->kind;
    tmp[n++] = ' ';
    n += fmt_i64(tmp + n, m->src);
    tmp[n++] = ' ';
    n += fmt_i64(tmp + n, m->nsrc);
    tmp[n++] = ' ';
    n += fmt_i64(tmp + n, m->off);
    tmp[n++] = ' ';
    if (m->max_ts == INT64_MIN)
        tmp[n++] = '-';
    else
        n += fmt_i64(tmp + n, m->max_ts);
    if (n + 1 > size)
        return -ENOSPC;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return (int)n;
}

/* A decimal integer at p[*i..len), in its one spelling: an optional '-'
 * (neg_ok), then "0" or digits without a leading zero, not "-0", ending at
 * len or at a single ' ' (consumed; last says which must come).  Values
 * outside [lo, hi] are refused.  Returns 0 or -EINVAL. */
static int read_num(const char *p, size_t len, size_t *i, int neg_ok, int64_t lo, int64_t hi,
                    int last, int64_t *out)
{
    size_t k = *i;
    int neg = 0;
    if (k < len && p[k] == '-') {
        if (!neg_ok)
            return -EINVAL;
        neg = 1;
        k++;
    }
    size_t start = k;
    uint64_t v = 0;
    /* the magnitude of INT64_MIN, the largest a negative number may reach */
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (k < len && p[k] >= '0' && p[k] <= '9') {
        unsigned d = (unsigned)(p[k] - '0');
        if (v > (limit - d) / 10)
            return -EINVAL;         /* out of int64's range */
        v = v * 10 + d;
        k++;
    }
    size_t digits = k - start;
    if (digits == 0 || (p[start] == '0' && (digits > 1 || neg)))
        return -EINVAL;             /* nothing, a leading zero, or "-0" */
    int64_t x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (x < lo || x > hi)
        return -EINVAL;
    if (last) {
        if (k != len)
            return -EINVAL;         /* trailing bytes */
    } else {
        if (k >= len || p[k] != ' ')
            return -EINVAL;
        k++;
    }
    *i = k;
    *out = x;
    return 0;
}

int rp_meta_parse(const char *p, size_t len, struct rp_meta *m)
{
    int64_t src, nsrc, off, max;
    size_t i = 2;
    if (len < 2 || (p[0] != RP_DATA && p[0] != RP_WATERMARK && p[0] != RP_END) || p[1] != ' ')
        return -EINVAL;
    if (read_num(p, len, &i, 0, 0, RP_MAX_SOURCES - 1, 0, &src) < 0 ||
        read_num(p, len, &i, 0, 1, RP_MAX_SOURCES, 0, &nsrc) < 0 || src >= nsrc ||
        read_num(p, len, &i, 1, p[0] == RP_DATA ? 0 : -1, INT64_MAX, 0, &off) < 0)
        return -EINVAL;
    if (i + 1 == len && p[i] == '-') {
        max = INT64_MIN;
    } else if (read_num(p, len, &i, 1, INT64_MIN + 1, INT64_MAX, 1, &max) < 0) {
        return -EINVAL;             /* INT64_MIN itself is spelled '-' */
    }
    *m = (struct rp_meta){ .kind = p[0], .src = (int32_t)src, .nsrc = (int32_t)nsrc,
                           .off = off, .max_ts = max };
    return 0;
}

/* ---- the key ------------------------------------------------------------- */

int rp_key_text(const struct record *rec, const int *fields, size_t n, char *buf, size_t size)
{
    size_t len = 0;
    if (size < 1)
        return -ENOSPC;
    buf[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (fields[i] < 0 || (size_t)fields[i] >= rec->nv)
            return -EINVAL;
        struct value v = rec->v[fields[i]];
        if (v.type == VT_DOUBLE) {
            if (!isfinite(v.u.d))
                return -EINVAL;     /* JSON has no NaN or infinity */
            if (v.u.d == 0)
                v.u.d = 0;          /* -0 reads as 0 */
        }
        if (i > 0) {
            if (len + 1 >= size)
                return -ENOSPC;
            buf[len++] = ',';
        }
        if (len >= size)
            return -ENOSPC;
        /* value_to_json NUL-terminates within what it is given */
        size_t need = value_to_json(&v, buf + len, size - len);
        if (need >= size - len)
            return -ENOSPC;
        len += need;
    }
    if (len + 2 > size)
        return -ENOSPC;             /* the ']' and a NUL */
    buf[len++] = ']';
    buf[len] = '\0';
    return (int)len;
}

int32_t rp_partition(const char *key, size_t len, int32_t npartitions)
{
    if (npartitions <= 0)
        return -EINVAL;
    return (int32_t)(XXH64(key, len, 0) % (uint64_t)npartitions);
}
