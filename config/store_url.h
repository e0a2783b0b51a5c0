/*
 * store_url.h - the syntax of the shared snapshot store's URL and of the
 * names of its objects.
 *
 * `state.shared` (docs/configuration.md) is a URL: `file:///abs/dir` or
 * `s3://bucket/prefix`.  Its syntax lives here, in config/, so that the
 * loader reports a bad URL at `sluice validate` time with the same words
 * connectors/store.c uses when it opens the store: one parser, two callers.
 * Nothing here touches the network or the file system.
 *
 * Object names ("myjob/p3/0000018c2f3a9b10-42.sluice") are relative, made
 * of [A-Za-z0-9._-] components separated by single '/', none of them "."
 * or "..", at most STORE_NAME_MAX bytes: they are safe to append to a
 * directory and to an S3 key without escaping.
 */
#ifndef SLUICE_STORE_URL_H
#define SLUICE_STORE_URL_H

#include <stddef.h>

#include "compiler.h"

#define STORE_NAME_MAX 255          /* bytes of an object name */
#define STORE_PREFIX_MAX 512        /* bytes of an s3:// prefix */
#define STORE_DIR_MAX 1024          /* bytes of a file:// directory */

enum store_kind { STORE_FILE, STORE_S3 };

struct store_url {
    enum store_kind kind;
    char dir[STORE_DIR_MAX + 1];        /* file: absolute, no trailing '/' ("/" itself kept) */
    char bucket[64];                    /* s3: 3-63 of [a-z0-9.-] */
    char prefix[STORE_PREFIX_MAX + 1];  /* s3: a name or "" (no leading or trailing '/') */
};

/* Parses url into *out.  Returns 0, or -EINVAL with the reason in err
 * ("state.shared: expected file:///abs/dir or s3://bucket/prefix, ...").
 * Empty is not a URL here: the caller decides what "" means. */
int store_url_parse(const char *url, struct store_url *out, char *err, size_t errsize)
    SL_MUST_USE;

/* Checks an object name.  Returns 0, or -EINVAL with the reason in err. */
int store_url_name_check(const char *name, char *err, size_t errsize) SL_MUST_USE;

#endif
