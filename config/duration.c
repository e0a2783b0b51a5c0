/*
 * duration.c - "500ms", "10s", "10m", "1h", "7d" to and from milliseconds.
 *
 * One integer and one unit, no spaces, no fractions: what operators write
 * in Flink configs and what reads back unambiguously.  Overflow is checked
 * so that "99999999999999d" is an error rather than a negative window.
 */
#include "job.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct { const char *unit; int64_t ms; } units[] = {
    { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    { "d", 86400000 },
};

int duration_parse(const char *s, int64_t *ms, char *err, size_t errsize)
{
    const char *p = s;
    int neg = 0;
    int64_t v = 0;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9') {
        snprintf(err, errsize, "bad duration \"%.40s\": expected a whole number "
                 "and a unit, like 500ms, 10s, 10m, 1h or 7d", s);
        return -EINVAL;
    }
    while (*p >= '0' && *p <= '9') {
        if (v > (INT64_MAX - 9) / 10) {
            snprintf(err, errsize, "duration \"%.40s\" is too large", s);
            return -EINVAL;
        }
        v = v * 10 + (*p++ - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) != 0)
            continue;
        /* keep well inside int64 so window arithmetic (start + size) cannot wrap */
        if (v > INT64_MAX / 4 / units[i].ms) {
            snprintf(err, errsize, "duration \"%.40s\" is too large", s);
            return -EINVAL;
        }
        *ms = (neg ? -v : v) * units[i].ms;
        return 0;
    }
    if (*p == '\0')
        snprintf(err, errsize, "duration \"%.40s\" has no unit (use ms, s, m, h or d)", s);
    else
        snprintf(err, errsize, "bad duration \"%.40s\": unknown unit \"%.10s\" "
                 "(use ms, s, m, h or d)", s, p);
    return -EINVAL;
}

void duration_format(int64_t ms, char *buf, size_t size)
{
    for (size_t i = sizeof(units) / sizeof(units[0]); i-- > 1;) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%lldms", (long long)ms);
}
