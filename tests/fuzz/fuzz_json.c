/*
 * fuzz_json.c - differential libFuzzer target: sluice's RFC 8259 validator
 * (engine/json.c) against jansson, a strict parser from Debian
 * (libjansson-dev, used by the tests only).
 *
 * For every input the two must agree on accept or reject.  Where jansson
 * itself departs from RFC 8259, the harness works around it:
 *   - jansson refuses an integer beyond long long: it is asked to read
 *     integers as doubles (JSON_DECODE_INT_AS_REAL);
 *   - it refuses a number beyond the range of a double, and stops there
 *     (json_error_numeric_overflow): such inputs are not compared;
 *   - it refuses "\u0000" in an object key: it reads a copy with every
 *     "\u0000" turned into "\u0001", which changes no verdict (inside a
 *     string both are valid escapes, or plain text after an escaped
 *     backslash; outside one a backslash is invalid either way);
 *   - a raw NUL byte right after a number or literal is skipped by
 *     jansson 2.14 ("[1\0]" is accepted): the copy also has every NUL byte
 *     turned into 0x01, which changes no verdict (both are control
 *     characters: invalid inside a string and outside one);
 *   - nesting: jansson allows 2048 levels, sluice 1000 (documented), so
 *     inputs sluice refuses for depth alone are not compared.
 * Besides, on every input: json_object_scan agrees with json_validate
 * (same verdict, same reason and byte, except that a valid non-object is
 * "not a JSON object"), and the bytes before a reported error are a valid
 * prefix of some JSON text (validating them alone fails only at their end).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/json.h"

static void disagree(const char *what, const uint8_t *data, size_t size, const char *detail)
{
    fprintf(stderr, "fuzz_json: %s (%s) on %zu bytes: ", what, detail, size);
    fwrite(data, 1, size > 200 ? 200 : size, stderr);
    fputc('\n', stderr);
    abort();
}

/* 1 valid, 0 invalid, -1 jansson cannot tell (a number beyond a double). */
static int jansson_accepts(const uint8_t *data, size_t size, char *why, size_t whysize)
{
    char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    for (size_t i = 0; i < size; i++) {
        if (copy[i] == '\0')
            copy[i] = 0x01;
        else if (i + 6 <= size && memcmp(copy + i, "\\u0000", 6) == 0)
            copy[i + 5] = '1';
    }
    json_error_t je;
    json_t *j = json_loadb(copy, size, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL |
                           JSON_ALLOW_NUL, &je);
    free(copy);
    if (j != NULL) {
        json_decref(j);
        return 1;
    }
    snprintf(why, whysize, "jansson: %s at %d", je.text, je.position);
    return json_error_code(&je) == json_error_numeric_overflow ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct json_error err, oerr;
    struct json_members m = { 0 };
    char why[300] = "";

    int ours = json_validate(s, size, &err) == 0;
    if (!ours && err.at > size)
        disagree("error offset past the end", data, size, err.reason);

    /* the object walk says the same as the validator */
    size_t first = 0;
    while (first < size && (s[first] == ' ' || s[first] == '\t' || s[first] == '\r' ||
                            s[first] == '\n'))
        first++;
    int orc = json_object_scan(s, size, &m, &oerr);
    json_members_free(&m);
    if (ours && first < size && s[first] == '{') {
        if (orc != 0)
            disagree("json_object_scan refuses a valid object", data, size, oerr.reason);
    } else if (ours) {
        if (orc == 0 || strcmp(oerr.reason, "not a JSON object") != 0 || oerr.at != first)
            disagree("json_object_scan on a valid non-object", data, size,
                     orc ? oerr.reason : "accepted");
    } else if (orc == 0 || strcmp(oerr.reason, err.reason) != 0 || oerr.at != err.at) {
        disagree("json_object_scan and json_validate differ", data, size,
                 orc ? oerr.reason : "accepted");
    }

    /* what stands before the error is a valid prefix */
    if (!ours) {
        struct json_error perr;
        if (json_validate(s, err.at, &perr) < 0 &&
            strcmp(perr.reason, "unexpected end of input") != 0 &&
            strcmp(perr.reason, "empty record") != 0)
            disagree("the bytes before the error are not a valid prefix", data, size,
                     perr.reason);
    }

    /* and jansson agrees on the verdict */
    if (!ours && strcmp(err.reason, "nesting deeper than 1000") == 0)
        return 0;
    int theirs = jansson_accepts(data, size, why, sizeof(why));
    if (theirs < 0)
        return 0;                           /* jansson's own limit, not the grammar's */
    if (ours != theirs) {
        char detail[400];
        snprintf(detail, sizeof(detail), "sluice: %s at %zu; %s", ours ? "valid" : err.reason,
                 ours ? (size_t)0 : err.at, theirs ? "jansson: valid" : why);
        disagree(ours ? "sluice accepts what jansson refuses"
                      : "sluice refuses what jansson accepts", data, size, detail);
    }
    return 0;
}
