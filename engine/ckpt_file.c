/*
 * ckpt_file.c - the checkpoint file format (see ckpt_file.h).
 *
 * Records within a chunk are length-prefixed (u32), so a reader finds
 * record boundaries without knowing what the records mean.
 */
#include "ckpt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY  /* a compression context in memory given here */
#include <zstd.h>

/* No writer makes a chunk this large (a chunk grows past CKPT_CHUNK only
 * for one huge record); a reader refuses larger ones rather than
 * allocating what a damaged length says. */
#define CKPT_MAX_CHUNK (1u << 30)

static const char magic[8] = { 'S', 'L', 'U', 'I', 'C', 'E', 'C', 'K' };

/* ---- writing ------------------------------------------------------------- */

int ckpt_writer_init(struct ckpt_writer *w, int compress)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->compress = compress;
    w->cap = CKPT_CHUNK + 4096;
    w->zcap = ZSTD_compressBound(w->cap);
    w->buf = malloc(w->cap);
    w->zbuf = malloc(w->zcap);
    /* zstd's context in a workspace of its own, sized for level 1 and any
     * input: compressing never allocates, which a fork()ed child must not
     * (another thread of the parent may have held an allocator lock) */
    w->zws_size = compress ? ZSTD_estimateCCtxSize(1) : 0;
    w->zws = compress ? malloc(w->zws_size) : NULL;
    if (w->zws != NULL)
        w->zctx = ZSTD_initStaticCCtx(w->zws, w->zws_size);
    if (w->buf == NULL || w->zbuf == NULL || (compress && w->zctx == NULL)) {
        ckpt_writer_free(w);
        return -ENOMEM;
    }
    return 0;
}

void ckpt_writer_free(struct ckpt_writer *w)
{
    free(w->buf);
    free(w->zbuf);
    free(w->zws);
    w->buf = w->zbuf = NULL;
    w->zws = w->zctx = NULL;
}

static void raw_write(struct ckpt_writer *w, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0 && w->err == 0) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            w->err = -errno;
            return;
        }
        c += k;
        n -= (size_t)k;
        w->bytes += (uint64_t)k;
    }
}

void ckpt_write_header(struct ckpt_writer *w, int fd, enum ckpt_kind kind, uint64_t id,
                       int64_t created_ms, const char *job)
{
    unsigned char h[512];
    size_t n = 0, jl = strlen(job);
    uint32_t v = CKPT_VERSION, k = (uint32_t)kind;
    uint16_t l16 = (uint16_t)(jl > 255 ? 255 : jl);
    w->fd = fd;
    memcpy(h + n, magic, 8), n += 8;
    memcpy(h + n, &v, 4), n += 4;
    memcpy(h + n, &k, 4), n += 4;
    memcpy(h + n, &id, 8), n += 8;
    memcpy(h + n, &created_ms, 8), n += 8;
    memcpy(h + n, &l16, 2), n += 2;
    memcpy(h + n, job, l16), n += l16;
    uint64_t hh = XXH64(h, n, 0);
    memcpy(h + n, &hh, 8), n += 8;
    raw_write(w, h, n);
}

void ckpt_section_begin(struct ckpt_writer *w, enum ckpt_section type, const char *name,
                        uint64_t fingerprint)
{
    unsigned char h[300];
    size_t n = 0, nl = strlen(name);
    uint32_t t = (uint32_t)type;
    uint16_t l16 = (uint16_t)(nl > 255 ? 255 : nl);
    memcpy(h + n, &t, 4), n += 4;
    memcpy(h + n, &l16, 2), n += 2;
    memcpy(h + n, name, l16), n += l16;
    memcpy(h + n, &fingerprint, 8), n += 8;
    uint64_t hh = XXH64(h, n, 0);
    memcpy(h + n, &hh, 8), n += 8;
    raw_write(w, h, n);
    w->len = 0;
    w->nsections++;
}

/* Writes buf[0 .. upto) as one chunk and keeps the rest. */
static void flush_chunk(struct ckpt_writer *w, size_t upto)
{
    if (upto == 0)
        return;
    uint32_t raw = (uint32_t)upto, stored = raw, flags = 0;
    const char *data = w->buf;
    if (w->compress) {
        size_t z = ZSTD_compressCCtx(w->zctx, w->zbuf, w->zcap, w->buf, upto, 1);
        if (!ZSTD_isError(z) && z < upto) {
            stored = (uint32_t)z;
            flags = 1;
            data = w->zbuf;
        }
    }
    unsigned char h[20];
    memcpy(h, &raw, 4);
    memcpy(h + 4, &stored, 4);
    memcpy(h + 8, &flags, 4);
    uint64_t hash = XXH64(data, stored, XXH64(h, 12, 0));   /* lengths and flags too */
    memcpy(h + 12, &hash, 8);
    raw_write(w, h, sizeof(h));
    raw_write(w, data, stored);
    memmove(w->buf, w->buf + upto, w->len - upto);
    w->len -= upto;
}

static int grow(struct ckpt_writer *w, size_t need)
{
    size_t cap = w->cap;
    while (cap < need)
        cap *= 2;
    char *b = realloc(w->buf, cap);
    if (b == NULL)
        return -ENOMEM;
    w->buf = b;
    w->cap = cap;
    size_t zcap = ZSTD_compressBound(cap);
    char *z = realloc(w->zbuf, zcap);
    if (z == NULL)
        return -ENOMEM;
    w->zbuf = z;
    w->zcap = zcap;
    return 0;
}

void ckpt_put(struct ckpt_writer *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (w->len == w->rec_start && w->len + 4 <= w->cap)
        w->len += 4;                /* room for the record's length */
    if (w->len + n > w->cap && grow(w, w->len + n) < 0) {
        w->err = -ENOMEM;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void ckpt_put_u32(struct ckpt_writer *w, uint32_t v)
{
    ckpt_put(w, &v, 4);
}

void ckpt_put_i64(struct ckpt_writer *w, int64_t v)
{
    ckpt_put(w, &v, 8);
}

void ckpt_record_end(struct ckpt_writer *w)
{
    if (w->err)
        return;
    if (w->len == w->rec_start) {      /* an empty record */
        ckpt_put(w, "", 0);
    }
    uint32_t n = (uint32_t)(w->len - w->rec_start - 4);
    memcpy(w->buf + w->rec_start, &n, 4);
    if (w->len >= CKPT_CHUNK)
        flush_chunk(w, w->len);
    w->rec_start = w->len;
}

void ckpt_section_end(struct ckpt_writer *w)
{
    flush_chunk(w, w->len);
    w->rec_start = 0;
    unsigned char h[20] = { 0 };    /* raw length 0: end of section */
    raw_write(w, h, sizeof(h));
}

int ckpt_finish(struct ckpt_writer *w)
{
    uint32_t count = w->nsections;
    ckpt_section_begin(w, CKPT_SEC_END, "", count);
    ckpt_section_end(w);
    return w->err;
}

/* ---- reading ---------------------------------------------------------------- */

struct ckpt_reader {
    const unsigned char *map;
    size_t size, pos;
    unsigned char *chunk;       /* the current decompressed chunk */
    size_t chunk_cap, chunk_len, chunk_pos;
    int in_section, section_done;
    uint32_t version;
};

static int rd(const struct ckpt_reader *r, size_t pos, void *dst, size_t n)
{
    if (pos > r->size || r->size - pos < n)
        return -1;
    memcpy(dst, r->map + pos, n);
    return 0;
}

/* Parses a section header at *pos; advances past it. */
static int section_header(const struct ckpt_reader *r, size_t *pos, struct ckpt_section_info *s)
{
    uint32_t t;
    uint16_t nl;
    uint64_t fp, hh;
    size_t start = *pos;
    if (rd(r, *pos, &t, 4) < 0 || rd(r, *pos + 4, &nl, 2) < 0 || nl > 255)
        return -1;
    memset(s, 0, sizeof(*s));
    if (rd(r, *pos + 6, s->name, nl) < 0 || rd(r, *pos + 6 + nl, &fp, 8) < 0 ||
        rd(r, *pos + 14 + nl, &hh, 8) < 0)
        return -1;
    if (XXH64(r->map + start, 14 + (size_t)nl, 0) != hh)
        return -2;
    s->type = (enum ckpt_section)t;
    s->fingerprint = fp;
    *pos += 22 + (size_t)nl;
    return 0;
}

struct chunk_hdr {
    uint32_t raw, stored, flags;
    uint64_t hash;
};

static int chunk_header(const struct ckpt_reader *r, size_t pos, struct chunk_hdr *c)
{
    if (rd(r, pos, &c->raw, 4) < 0 || rd(r, pos + 4, &c->stored, 4) < 0 ||
        rd(r, pos + 8, &c->flags, 4) < 0 || rd(r, pos + 12, &c->hash, 8) < 0)
        return -1;
    return 0;
}

int ckpt_open(const char *path, struct ckpt_reader **out, struct ckpt_info *info,
              char *err, size_t errsize)
{
    struct ckpt_reader *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (r == NULL) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        snprintf(err, errsize, "%s", strerror(e));
        if (fd >= 0)
            close(fd);
        free(r);
        return -e;
    }
    r->size = (size_t)st.st_size;
    if (r->size > 0) {
        r->map = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (r->map == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(r);
            snprintf(err, errsize, "mmap: %s", strerror(e));
            return -e;
        }
    }
    close(fd);
    memset(info, 0, sizeof(*info));
    info->file_bytes = r->size;

    /* header */
    char m[8];
    uint32_t version = 0, kind = 0;
    uint16_t jl = 0;
    uint64_t hh = 0;
    if (rd(r, 0, m, 8) < 0 || memcmp(m, magic, 8) != 0) {
        snprintf(err, errsize, "not a sluice checkpoint (bad magic)");
        goto bad;
    }
    if (rd(r, 8, &version, 4) < 0 || version < CKPT_VERSION_MIN || version > CKPT_VERSION) {
        snprintf(err, errsize, "format version %u, this sluice reads versions %u to %u",
                 (unsigned)version, CKPT_VERSION_MIN, CKPT_VERSION);
        goto bad;
    }
    if (rd(r, 12, &kind, 4) < 0 || rd(r, 16, &info->id, 8) < 0 ||
        rd(r, 24, &info->created_ms, 8) < 0 || rd(r, 32, &jl, 2) < 0 || jl > 255 ||
        rd(r, 34, info->job, jl) < 0 || rd(r, 34 + (size_t)jl, &hh, 8) < 0) {
        snprintf(err, errsize, "truncated header");
        goto bad;
    }
    if (XXH64(r->map, 34 + (size_t)jl, 0) != hh) {
        snprintf(err, errsize, "header checksum mismatch");
        goto bad;
    }
    info->version = r->version = version;
    info->kind = (enum ckpt_kind)kind;
    size_t pos = 42 + (size_t)jl;
    r->pos = pos;

    /* every section and chunk, to the END section */
    for (uint32_t n = 0;; n++) {
        struct ckpt_section_info s;
        int rc = section_header(r, &pos, &s);
        if (rc < 0) {
            snprintf(err, errsize, rc == -2 ? "section %u: header checksum mismatch"
                     : "truncated at section %u (offset %zu)", n, pos);
            goto bad;
        }
        for (;;) {
            struct chunk_hdr c;
            if (chunk_header(r, pos, &c) < 0) {
                snprintf(err, errsize, "section %u (%s): truncated at offset %zu", n, s.name,
                         pos);
                goto bad;
            }
            pos += 20;
            if (c.raw == 0) {
                if (c.stored != 0 || c.flags != 0 || c.hash != 0) {
                    snprintf(err, errsize, "section %u (%s): damaged end marker at offset %zu",
                             n, s.name, pos - 20);
                    goto bad;
                }
                break;
            }
            if (c.stored > r->size - pos || (c.flags & ~1u) != 0 || c.raw > CKPT_MAX_CHUNK ||
                (c.flags == 0 && c.stored != c.raw)) {
                snprintf(err, errsize, "section %u (%s): truncated or damaged chunk at offset "
                         "%zu", n, s.name, pos - 20);
                goto bad;
            }
            if (XXH64(r->map + pos, c.stored, XXH64(r->map + pos - 20, 12, 0)) != c.hash) {
                snprintf(err, errsize, "section %u (%s): checksum mismatch at offset %zu", n,
                         s.name, pos - 20);
                goto bad;
            }
            pos += c.stored;
        }
        if (s.type == CKPT_SEC_END) {
            if (s.fingerprint != n) {
                snprintf(err, errsize, "END counts %llu sections, found %u",
                         (unsigned long long)s.fingerprint, n);
                goto bad;
            }
            info->nsections = n;
            break;
        }
    }
    if (pos != r->size) {
        snprintf(err, errsize, "%zu bytes after the END section", r->size - pos);
        goto bad;
    }
    *out = r;
    return 0;
bad:
    ckpt_close(r);
    return -EINVAL;
}

uint32_t ckpt_format(const struct ckpt_reader *r)
{
    return r->version;
}

void ckpt_close(struct ckpt_reader *r)
{
    if (r == NULL)
        return;
    if (r->map != NULL && r->size > 0)
        munmap((void *)r->map, r->size);
    free(r->chunk);
    free(r);
}

int ckpt_next_section(struct ckpt_reader *r, struct ckpt_section_info *s)
{
    /* skip what is left of the current section */
    unsigned char *p;
    size_t n;
    while (r->in_section && ckpt_next_record(r, (const unsigned char **)&p, &n) == 1)
        ;
    if (section_header(r, &r->pos, s) < 0)
        return 0;
    if (s->type == CKPT_SEC_END)
        return 0;
    /* sizes, for inspect: walk the chunks without decompressing */
    size_t pos = r->pos;
    for (;;) {
        struct chunk_hdr c;
        chunk_header(r, pos, &c);
        pos += 20;
        if (c.raw == 0)
            break;
        s->raw_bytes += c.raw;
        s->stored_bytes += c.stored;
        pos += c.stored;
    }
    r->in_section = 1;
    r->chunk_len = r->chunk_pos = 0;
    return 1;
}

int ckpt_next_record(struct ckpt_reader *r, const unsigned char **p, size_t *n)
{
    if (!r->in_section)
        return 0;
    if (r->chunk_pos >= r->chunk_len) {
        struct chunk_hdr c;
        chunk_header(r, r->pos, &c);
        r->pos += 20;
        if (c.raw == 0) {
            r->in_section = 0;
            return 0;
        }
        if (c.raw > r->chunk_cap) {
            unsigned char *b = realloc(r->chunk, c.raw);
            if (b == NULL)
                return -ENOMEM;
            r->chunk = b;
            r->chunk_cap = c.raw;
        }
        if (c.flags & 1) {
            size_t got = ZSTD_decompress(r->chunk, c.raw, r->map + r->pos, c.stored);
            if (ZSTD_isError(got) || got != c.raw)
                return -EINVAL;
        } else {
            memcpy(r->chunk, r->map + r->pos, c.raw);
        }
        r->pos += c.stored;
        r->chunk_len = c.raw;
        r->chunk_pos = 0;
    }
    uint32_t len;
    if (r->chunk_len - r->chunk_pos < 4)
        return -EINVAL;
    memcpy(&len, r->chunk + r->chunk_pos, 4);
    if (len > r->chunk_len - r->chunk_pos - 4)
        return -EINVAL;
    *p = r->chunk + r->chunk_pos + 4;
    *n = len;
    r->chunk_pos += 4 + (size_t)len;
    return 1;
}

int ckpt_get(struct ckpt_cur *c, void *dst, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return -EINVAL;
    memcpy(dst, c->p, n);
    c->p += n;
    return 0;
}

int ckpt_get_u32(struct ckpt_cur *c, uint32_t *v)
{
    return ckpt_get(c, v, 4);
}

int ckpt_get_i64(struct ckpt_cur *c, int64_t *v)
{
    return ckpt_get(c, v, 8);
}

int ckpt_get_time(struct ckpt_cur *c, int64_t *v)
{
    if (ckpt_get(c, v, 8) < 0 || *v < -CKPT_TIME_LIMIT || *v > CKPT_TIME_LIMIT)
        return -EINVAL;
    return 0;
}

int ckpt_get_time_or(struct ckpt_cur *c, int64_t *v, int64_t sentinel)
{
    if (ckpt_get(c, v, 8) < 0)
        return -EINVAL;
    return *v == sentinel || (*v >= -CKPT_TIME_LIMIT && *v <= CKPT_TIME_LIMIT) ? 0 : -EINVAL;
}

const unsigned char *ckpt_get_ptr(struct ckpt_cur *c, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return NULL;
    const unsigned char *p = c->p;
    c->p += n;
    return p;
}
