/*
 * shardmeta.c - the shard snapshot's commit metadata (shardmeta.h).
 *
 * Text rather than binary, because operators read it: `kafka-consumer-groups
 * --describe` and `kcat -Q` show commit metadata as it is, and one line
 * naming the object and the offset answers "what will an instance load for
 * partition 3?" without a tool of ours.  It is small (two names of at most
 * 255 bytes and eight numbers: under 700 bytes, well below SHARD_META_MAX and
 * the broker's default offset.metadata.max.bytes of 4096).
 *
 * The parser reads it as if it were hostile, because the group's commits
 * are not only ours: another tool committing to the same group writes its
 * own metadata (or none), and a newer sluice may write a newer version.
 * So the three outcomes "none", "not ours" and "ours but wrong" are told
 * apart (-ENODATA, -ENOMSG, -EINVAL), and "ours" is accepted only when
 * every field is exactly where and what it must be: a reader that guessed
 * would load the wrong snapshot, which is worse than replaying from the
 * previous one.  Run on any thread; no state.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "../config/store_url.h"
#include "shardmeta.h"

/* ---- types --------------------------------------------------------------- */

#define TAG "sluice-shard "
#define TAG_LEN (sizeof(TAG) - 1)
#define HASH_CHUNK (1 << 20)
#define SUM_LEN (5 + 16)                /* " sum=" and 16 hex digits */

enum field_type { F_NAME, F_PREV, F_U64, F_OFFSET, F_HEX };

/* The fields after the version, in their order. */
static const struct field {
    const char *key;
    enum field_type type;
    size_t offset;
} fields[] = {
    { "obj", F_NAME, offsetof(struct shard_meta, obj) },
    { "len", F_U64, offsetof(struct shard_meta, len) },
    { "xxh", F_HEX, offsetof(struct shard_meta, xxh) },
    { "off", F_OFFSET, offsetof(struct shard_meta, offset) },
    { "id", F_U64, offsetof(struct shard_meta, id) },
    { "prev", F_PREV, offsetof(struct shard_meta, prev) },
    { "plen", F_U64, offsetof(struct shard_meta, prev_len) },
    { "pxxh", F_HEX, offsetof(struct shard_meta, prev_xxh) },
    { "poff", F_OFFSET, offsetof(struct shard_meta, prev_offset) },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* ---- helpers ------------------------------------------------------------- */

/* A decimal number without sign or leading zeros, at most max. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_hex(const char *s, size_t n, uint64_t *out)
{
    if (n != 16)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
        if (d == 16)
            return -EINVAL;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Reasons quote the metadata, which may hold any byte: make them safe to
 * log (a NUL ends the quote early, which is fine). */
static void printable(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

/* Checks the rules that go beyond each field's syntax. */
static int check_meta(const struct shard_meta *m, char *err, size_t errsize)
{
    char why[256];
    if (memchr(m->obj, '\0', sizeof(m->obj)) == NULL ||
        memchr(m->prev, '\0', sizeof(m->prev)) == NULL) {
        snprintf(err, errsize, "a name is not terminated");
        return -EINVAL;
    }
    if (store_url_name_check(m->obj, why, sizeof(why)) < 0) {
        snprintf(err, errsize, "obj: %s", why);
        return -EINVAL;
    }
    if (m->prev[0] != '\0' && store_url_name_check(m->prev, why, sizeof(why)) < 0) {
        snprintf(err, errsize, "prev: %s", why);
        return -EINVAL;
    }
    if (m->offset < 0 || m->prev_offset < 0) {
        snprintf(err, errsize, "a negative offset");
        return -EINVAL;
    }
    if (m->prev[0] == '\0' && (m->prev_len != 0 || m->prev_xxh != 0 || m->prev_offset != 0)) {
        snprintf(err, errsize, "plen, pxxh and poff must be 0 without prev");
        return -EINVAL;
    }
    if (strcmp(m->obj, m->prev) == 0) {
        snprintf(err, errsize, "prev names the same object as obj");
        return -EINVAL;
    }
    return 0;
}

/* ---- API ------------------------------------------------------------------- */

int shard_meta_format(const struct shard_meta *m, char *buf, size_t size)
{
    char err[300];
    if (check_meta(m, err, sizeof(err)) < 0)
        return -EINVAL;
    int n = snprintf(buf, size,
                     TAG "%d obj=%s len=%" PRIu64 " xxh=%016" PRIx64 " off=%" PRId64
                     " id=%" PRIu64 " prev=%s plen=%" PRIu64 " pxxh=%016" PRIx64
                     " poff=%" PRId64,
                     SHARD_META_VERSION, m->obj, m->len, m->xxh, m->offset, m->id, m->prev,
                     m->prev_len, m->prev_xxh, m->prev_offset);
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    int k = snprintf(buf + n, size - (size_t)n, " sum=%016" PRIx64, XXH64(buf, (size_t)n, 0));
    if (k < 0 || (size_t)k >= size - (size_t)n)
        return -ENOSPC;
    return n + k;
}

int shard_meta_parse(const char *buf, size_t len, struct shard_meta *m, char *err,
                     size_t errsize)
{
    memset(m, 0, sizeof(*m));
    if (len == 0) {
        snprintf(err, errsize, "no metadata");
        return -ENODATA;
    }
    if (len < TAG_LEN || memcmp(buf, TAG, TAG_LEN) != 0) {
        snprintf(err, errsize, "not sluice's shard metadata (\"%.*s\")",
                 (int)(len < 24 ? len : 24), buf);
        printable(err);
        return -ENOMSG;
    }
    if (len > SHARD_META_MAX) {
        snprintf(err, errsize, "%zu bytes, at most %d", len, SHARD_META_MAX);
        return -EINVAL;
    }
    size_t pos = TAG_LEN, end = pos;
    while (end < len && buf[end] != ' ')
        end++;
    uint64_t version;
    if (parse_dec(buf + pos, end - pos, UINT64_MAX, &version) < 0) {
        snprintf(err, errsize, "bad version \"%.*s\"", (int)(end - pos > 20 ? 20 : end - pos),
                 buf + pos);
        goto bad;
    }
    if (version != SHARD_META_VERSION) {
        snprintf(err, errsize, "version %" PRIu64 ", this sluice reads version %d", version,
                 SHARD_META_VERSION);
        goto bad;
    }
    pos = end;
    for (size_t f = 0; f < NFIELDS; f++) {
        const struct field *fd = &fields[f];
        size_t kl = strlen(fd->key);
        if (pos >= len) {
            snprintf(err, errsize, "field %s missing (truncated)", fd->key);
            goto bad;
        }
        if (buf[pos] != ' ' || len - pos - 1 < kl + 1 || memcmp(buf + pos + 1, fd->key, kl) != 0 ||
            buf[pos + 1 + kl] != '=') {
            snprintf(err, errsize, "expected \" %s=\" at byte %zu", fd->key, pos);
            goto bad;
        }
        pos += kl + 2;
        end = pos;
        while (end < len && buf[end] != ' ')
            end++;
        const char *v = buf + pos;
        size_t vn = end - pos;
        char *dst = (char *)m + fd->offset;
        uint64_t u;
        int rc = 0;
        switch (fd->type) {
        case F_NAME:
        case F_PREV:
            if (vn == 0 && fd->type == F_PREV)
                break;
            if (vn > STORE_NAME_MAX || memchr(v, '\0', vn) != NULL) {
                rc = -EINVAL;
                break;
            }
            memcpy(dst, v, vn);
            dst[vn] = '\0';
            break;
        case F_U64:
            rc = parse_dec(v, vn, UINT64_MAX, &u);
            if (rc == 0)
                memcpy(dst, &u, sizeof(u));
            break;
        case F_OFFSET:
            rc = parse_dec(v, vn, (uint64_t)INT64_MAX, &u);
            if (rc == 0) {
                int64_t i = (int64_t)u;
                memcpy(dst, &i, sizeof(i));
            }
            break;
        case F_HEX:
            rc = parse_hex(v, vn, &u);
            if (rc == 0)
                memcpy(dst, &u, sizeof(u));
            break;
        }
        if (rc < 0) {
            snprintf(err, errsize, "%s: bad value at byte %zu (%s)", fd->key, pos,
                     fd->type == F_HEX ? "16 lowercase hex digits"
                     : fd->type == F_NAME || fd->type == F_PREV ? "an object name"
                     : "a decimal number without sign or leading zeros");
            goto bad;
        }
        pos = end;
    }
    /* the sum: XXH64 of everything before it, so that a cut anywhere (even
     * inside the last number) or a changed byte is never read as valid */
    uint64_t sum;
    if (len - pos != SUM_LEN || memcmp(buf + pos, " sum=", 5) != 0 ||
        parse_hex(buf + pos + 5, 16, &sum) < 0) {
        snprintf(err, errsize, "expected \" sum=\" and 16 hex digits at byte %zu, the end", pos);
        goto bad;
    }
    if (sum != XXH64(buf, pos, 0)) {
        snprintf(err, errsize, "sum mismatch: the metadata was changed or cut");
        goto bad;
    }
    if (check_meta(m, err, errsize) < 0)
        goto bad;
    return 0;
bad:
    printable(err);
    memset(m, 0, sizeof(*m));
    return -EINVAL;
}

int shard_file_hash(const char *path, uint64_t *len, uint64_t *xxh)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(HASH_CHUNK);
    XXH64_state_t *h = XXH64_createState();
    int rc = 0;
    uint64_t n = 0;
    if (buf == NULL || h == NULL) {
        rc = -ENOMEM;
        goto done;
    }
    XXH64_reset(h, 0);
    for (;;) {
        ssize_t r = read(fd, buf, HASH_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto done;
        }
        if (r == 0)
            break;
        XXH64_update(h, buf, (size_t)r);
        n += (uint64_t)r;
    }
    *len = n;
    *xxh = XXH64_digest(h);
done:
    XXH64_freeState(h);
    free(buf);
    close(fd);
    return rc;
}
