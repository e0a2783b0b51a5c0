/*
 * fmt_double_ref.h - the definition fmt_double() (engine/value.c) must
 * meet, written the slow, obvious way: printf's %.15g, %.16g, %.17g, the
 * first that strtod reads back (subnormals from %.1g), integers below
 * 2^53 as integers.  This was fmt_double() itself until the integer path
 * replaced printf for the common range; the unit test (test_format.c)
 * and the fuzz target (fuzz_double.c) compare the two byte for byte.
 */
#ifndef SLUICE_FMT_DOUBLE_REF_H
#define SLUICE_FMT_DOUBLE_REF_H

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static size_t fmt_double_ref(double d, char *buf)
{
    if (isnan(d))
        return (size_t)sprintf(buf, "nan");
    if (isinf(d))
        return (size_t)sprintf(buf, d < 0 ? "-inf" : "inf");
    if (d == 0)
        return (size_t)sprintf(buf, "0");
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        return (size_t)sprintf(buf, "%lld", (long long)d);
    int n = 0;
    for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, d);
        if (prec == 17 || strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

#endif
