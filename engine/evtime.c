/*
 * evtime.c - ISO-8601 and epoch event times (see evtime.h).
 *
 * The date arithmetic is the usual days-from-civil computation over 400-year
 * eras, exact for the proleptic Gregorian calendar, with no libc time
 * functions: timegm() and friends consult the TZ database and locale, are
 * slow, and are not what a record's explicit offset means anyway.
 */
#include "evtime.h"

#include <errno.h>
#include <stdio.h>

int64_t evtime_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);                 /* [0, 399] */
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;     /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n digits at s[*i]; -1 when they are not all digits. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    if (*i + (size_t)n > len)
        return -1;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    return v;
}

int evtime_parse_iso8601(const char *s, size_t len, int32_t naive_offset_s,
                         int64_t *ms, const char **why)
{
    size_t i = 0;
    int y, mo, d, h, mi, sec, frac_ms = 0;
    int64_t off_s = naive_offset_s;

    if ((y = digits(s, len, &i, 4)) < 0 || i >= len || s[i++] != '-' ||
        (mo = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != '-' ||
        (d = digits(s, len, &i, 2)) < 0) {
        *why = "not an ISO-8601 date (expected YYYY-MM-DD)";
        return -EINVAL;
    }
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) {
        *why = "ISO-8601 time missing (expected YYYY-MM-DDTHH:MM:SS)";
        return -EINVAL;
    }
    i++;
    if ((h = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != ':' ||
        (mi = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != ':' ||
        (sec = digits(s, len, &i, 2)) < 0) {
        *why = "not an ISO-8601 time of day (expected HH:MM:SS)";
        return -EINVAL;
    }
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
            i++;
        }
        size_t nd = i - start;
        if (nd == 0 || nd > 9) {
            *why = "bad fractional seconds (1 to 9 digits)";
            return -EINVAL;
        }
        for (size_t k = nd; k < 3; k++)
            frac_ms *= 10;
    }
    if (i < len) {
        if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
            off_s = 0;
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int sign = s[i++] == '-' ? -1 : 1;
            int oh = digits(s, len, &i, 2), om;
            if (oh >= 0 && i < len && s[i] == ':')
                i++;
            om = oh < 0 ? -1 : digits(s, len, &i, 2);
            if (oh < 0 || om < 0 || i != len || oh > 23 || om > 59) {
                *why = "bad UTC offset (expected Z, +HH:MM or -HH:MM)";
                return -EINVAL;
            }
            off_s = sign * (oh * 3600 + om * 60);
        } else {
            *why = "unexpected text after the time";
            return -EINVAL;
        }
    }
    if (y < 1900) {
        *why = "year before 1900";
        return -EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo)) {
        *why = "no such date";
        return -EINVAL;
    }
    if (h > 23 || mi > 59 || sec > 59) {
        *why = "no such time of day";
        return -EINVAL;
    }
    int64_t days = evtime_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t t = ((days * 24 + h) * 60 + mi) * 60 + sec - off_s;
    t = t * 1000 + frac_ms;
    if (!evtime_in_range(t)) {
        *why = "time outside 1900..9999";
        return -EINVAL;
    }
    *ms = t;
    return 0;
}

int evtime_in_range(int64_t ms)
{
    return ms >= EVTIME_MIN_MS && ms <= EVTIME_MAX_MS;
}

void evtime_format(int64_t ms, char buf[64])
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, 64, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
             (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
             (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
}
