/*
 * store_url.c - the shared store's URL and object names, as syntax only
 * (store_url.h).
 *
 * Strict on purpose: a URL that does not say exactly where the state goes
 * is refused at load time rather than guessed at (a "file://relative"
 * would land wherever the daemon's working directory happens to be, a
 * bucket with capitals is refused by S3 only at the first upload).  Names
 * are restricted to characters that need no escaping anywhere: in a path,
 * in an S3 key, in an HTTP request line and in the Kafka commit metadata
 * (cmd/shardmeta.c), so nothing downstream has to escape or unescape.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_url.h"

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* A relative path of n bytes: components of name_char, single '/', none
 * "." and no ".." anywhere.  what names it in err. */
static int check_path(const char *s, size_t n, size_t max, const char *what, char *err,
                      size_t errsize)
{
    if (n == 0) {
        snprintf(err, errsize, "%s is empty", what);
        return -EINVAL;
    }
    if (n > max) {
        snprintf(err, errsize, "%s is %zu bytes long, at most %zu", what, n, max);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/') {
            if (i == 0 || i + 1 == n || s[i + 1] == '/') {
                snprintf(err, errsize, "%s \"%.*s\": a leading, trailing or double '/'", what,
                         (int)(n > 80 ? 80 : n), s);
                return -EINVAL;
            }
        } else if (!name_char(s[i])) {
            snprintf(err, errsize, "%s \"%.*s\": byte 0x%02x at %zu is not one of "
                     "[A-Za-z0-9._/-]", what, (int)(n > 80 ? 80 : n), s,
                     (unsigned)(unsigned char)s[i], i);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int start = i == 0 || s[i - 1] == '/';
        int dot = s[i] == '.' && (i + 1 == n || s[i + 1] == '/');
        if ((i + 1 < n && s[i] == '.' && s[i + 1] == '.') || (start && dot)) {
            snprintf(err, errsize, "%s \"%.*s\": \"..\" or a \".\" component", what,
                     (int)(n > 80 ? 80 : n), s);
            return -EINVAL;
        }
    }
    return 0;
}

int store_url_name_check(const char *name, char *err, size_t errsize)
{
    return check_path(name, strlen(name), STORE_NAME_MAX, "object name", err, errsize);
}

static int parse_file(const char *p, struct store_url *out, char *err, size_t errsize)
{
    size_t n = strlen(p);
    if (p[0] != '/') {
        snprintf(err, errsize, "file:// needs an absolute path (file:///var/lib/shared), "
                 "got \"file://%.80s\"", p);
        return -EINVAL;
    }
    while (n > 1 && p[n - 1] == '/')
        n--;
    if (n > STORE_DIR_MAX) {
        snprintf(err, errsize, "file:// path is %zu bytes long, at most %d", n, STORE_DIR_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == '?' || c == '#' || c == '%') {
            snprintf(err, errsize, "file:// path \"%.80s\": byte 0x%02x at %zu is not allowed "
                     "(no control characters, '?', '#' or '%%')", p, c, i);
            return -EINVAL;
        }
        if (c == '.' && p[i - 1] == '/' && (i + 1 == n || p[i + 1] == '/' ||
                                            (p[i + 1] == '.' && (i + 2 == n || p[i + 2] == '/')))) {
            snprintf(err, errsize, "file:// path \"%.80s\" has a \".\" or \"..\" component", p);
            return -EINVAL;
        }
    }
    out->kind = STORE_FILE;
    memcpy(out->dir, p, n);
    out->dir[n] = '\0';
    return 0;
}

static int parse_s3(const char *p, struct store_url *out, char *err, size_t errsize)
{
    const char *slash = strchr(p, '/');
    size_t bn = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (bn < 3 || bn > 63) {
        snprintf(err, errsize, "s3:// bucket \"%.*s\" must be 3 to 63 characters", (int)(bn > 80 ? 80 : bn), p);
        return -EINVAL;
    }
    for (size_t i = 0; i < bn; i++) {
        char c = p[i];
        int edge = i == 0 || i + 1 == bn;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!edge && (c == '-' || c == '.')))) {
            snprintf(err, errsize, "s3:// bucket \"%.*s\": only lowercase letters, digits, '-' "
                     "and '.', starting and ending with a letter or digit", (int)bn, p);
            return -EINVAL;
        }
    }
    out->kind = STORE_S3;
    memcpy(out->bucket, p, bn);
    out->bucket[bn] = '\0';
    out->prefix[0] = '\0';
    if (slash == NULL)
        return 0;
    const char *pre = slash + 1;
    size_t n = strlen(pre);
    while (n > 0 && pre[n - 1] == '/')
        n--;
    if (n == 0)
        return 0;
    char why[256];
    if (check_path(pre, n, STORE_PREFIX_MAX, "s3:// prefix", why, sizeof(why)) < 0) {
        snprintf(err, errsize, "%s", why);
        return -EINVAL;
    }
    memcpy(out->prefix, pre, n);
    out->prefix[n] = '\0';
    return 0;
}

int store_url_parse(const char *url, struct store_url *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "file://", 7) == 0)
        return parse_file(url + 7, out, err, errsize);
    if (strncmp(url, "s3://", 5) == 0)
        return parse_s3(url + 5, out, err, errsize);
    snprintf(err, errsize, "expected file:///abs/dir or s3://bucket/prefix, got \"%.80s\"", url);
    return -EINVAL;
}
