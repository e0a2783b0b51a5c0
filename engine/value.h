/*
 * value.h - typed values as they flow from records to window results.
 *
 * A record's fields, a key's parts and an aggregate's result are all
 * values of the four schema types, plus null (an aggregate such as min()
 * over no matching records).  Strings are borrowed (pointer and length):
 * the owner says how long they stay valid.  Values are small and passed by
 * value; nothing here allocates.
 */
#ifndef SLUICE_VALUE_H
#define SLUICE_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "../config/expr.h"     /* enum value_type */

#define VT_NULL ((enum value_type)-1)

struct value {
    enum value_type type;       /* VT_STRING, VT_INT, VT_DOUBLE, VT_BOOL, VT_NULL */
    union {
        struct { const char *p; size_t len; } s;
        int64_t i;
        double d;
        int b;
    } u;
};

/*
 * Writes d in the shortest form that reads back to the same double
 * ("29.99", "0", "12.5", "1e+300"), NUL-terminated, into buf (at least 32
 * bytes).  Integral values below 2^53 print without a fraction or
 * exponent.  Returns the length.  Infinities and NaN (never produced from
 * JSON input) print as "inf", "-inf", "nan".
 */
size_t fmt_double(double d, char *buf);

/* Writes the decimal form of v into buf (at least 21 bytes, not
 * NUL-terminated); returns the length.  No locale, no printf. */
size_t fmt_i64(char *buf, int64_t v);

/* Writes v as JSON (strings quoted and escaped) to buf of `size` bytes;
 * returns the length it needed, like snprintf. */
size_t value_to_json(const struct value *v, char *buf, size_t size);

/* Equality of two values of the same type (strings by bytes, doubles by
 * value with 0.0 == -0.0). */
int value_eq(const struct value *a, const struct value *b);

#endif
