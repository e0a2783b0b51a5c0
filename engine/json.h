/*
 * json.h - strict RFC 8259 validation, and the top level of an object.
 *
 * A record is one JSON text: one value with optional whitespace (space,
 * tab, LF, CR) around it, in UTF-8.  Everything the grammar of RFC 8259
 * does not produce is refused with a reason and the byte offset where the
 * text stopped being valid: trailing or doubled commas, missing commas or
 * colons, unquoted or single-quoted strings, literals other than true,
 * false and null, numbers outside the grammar, unescaped control
 * characters in strings, bad escapes, unpaired UTF-16 surrogates in \u
 * escapes, ill-formed UTF-8 (overlong forms, encoded surrogates, code
 * points above U+10FFFF, truncated sequences), unbalanced or mismatched
 * brackets, and anything after the value.  Every byte is checked, in used
 * fields and unused ones alike, however deep (up to JSON_MAX_DEPTH levels
 * of arrays and objects, the top level counted as 1; Jackson's default,
 * so a record Flink's JSON format takes is taken here too).
 *
 * Nothing here allocates but json_object_scan's member array, which the
 * caller keeps and reuses.  Pure functions; any thread.
 */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 1000

enum json_kind {
    JK_STRING, JK_NUMBER, JK_TRUE, JK_FALSE, JK_NULL, JK_OBJECT, JK_ARRAY
};

/* Why a text is not JSON: a static reason and the offset of the byte at
 * fault (docs/configuration.md lists the reasons and which byte each names). */
struct json_error {
    const char *reason;
    size_t at;
};

/* One member of the top-level object.  Offsets into the text: a string's
 * span is what stands between its quotes (escapes not yet undone); any
 * other value's span is the whole value. */
struct json_member {
    uint32_t key, klen;
    uint32_t val, vlen;
    uint8_t type;                   /* enum json_kind */
    uint8_t key_escaped, val_escaped;
};

/* The caller's member array, grown as needed and reused across records. */
struct json_members {
    struct json_member *v;
    size_t n, cap;
};

/* Whether buf[0..len) is one JSON text (any value at the top).  Returns 0,
 * or -EINVAL with *err. */
int json_validate(const char *buf, size_t len, struct json_error *err);

/*
 * Validates buf[0..len) (len < 4 GiB) as one JSON text whose value is an
 * object, and lists its top-level members in m, in order (duplicates
 * included).  A valid text with another value at the top is refused with
 * "not a JSON object".  Returns 0, -EINVAL with *err, or -ENOMEM.
 */
int json_object_scan(const char *buf, size_t len, struct json_members *m,
                     struct json_error *err);
void json_members_free(struct json_members *m);

/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF), as every JSON string must be. */
int json_utf8_valid(const unsigned char *s, size_t n);

/*
 * Undoes the escapes of a string that json_object_scan or json_validate
 * accepted: s[0..n) as it stands between the quotes.  Writes at most n
 * bytes to out and returns how many.
 */
size_t json_unescape(const char *s, size_t n, char *out);

#endif
