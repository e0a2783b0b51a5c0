/*
 * ckpt_file.h - the checkpoint and savepoint file format.
 *
 *   header   "SLUICECK", format version, kind (checkpoint or savepoint),
 *            checkpoint id, creation time, job name, xxh64 of the header
 *   sections one per source and per operator: type, name, fingerprint of
 *            the definition it was taken from, then chunks of records
 *   end      a section of type END counting the sections before it
 *
 * A chunk holds whole records: u32 raw length (0 ends the section), u32
 * stored length, u32 flags (zstd), u64 xxh64 of the stored bytes seeded
 * with the hash of the three fields before it, then the bytes.  Chunks are at most about 1 MiB raw, so writing needs one 1 MiB
 * buffer whatever the state's size, and every chunk is checked on its own:
 * a truncated file, a flipped byte or a wrong version is found before any
 * state is touched.
 *
 * Versions: 2 differs from 1 (sluice 0.1.0) only in what the sections'
 * fingerprints hash (names instead of enum positions, engine/snapshot.c);
 * this build reads both and writes 2.
 *
 * Values are written in host byte order: a checkpoint is read by the same
 * kind of machine that wrote it (sluice does not move state between
 * architectures).
 *
 * The writer uses only write(2) and memory, so a fork()ed child may use
 * it (no stdio, no libuv, no threads).
 */
#ifndef SLUICE_CKPT_FILE_H
#define SLUICE_CKPT_FILE_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_VERSION 2             /* written */
#define CKPT_VERSION_MIN 1         /* the oldest read */
#define CKPT_CHUNK (1u << 20)

enum ckpt_kind { CKPT_CHECKPOINT = 0, CKPT_SAVEPOINT = 1 };
enum ckpt_section { CKPT_SEC_SOURCE = 1, CKPT_SEC_OPERATOR = 2, CKPT_SEC_END = 3 };

/* ---- writing ------------------------------------------------------------ */

struct ckpt_writer {
    int fd;
    int compress;               /* zstd level 1 on chunks */
    char *buf, *zbuf;           /* CKPT_CHUNK-ish, grown for a huge record */
    void *zws, *zctx;           /* zstd's workspace and its context in it */
    size_t zws_size;
    size_t len, cap, zcap;
    size_t rec_start;           /* where the record being built began in buf */
    uint32_t nsections;
    uint64_t bytes;             /* written to the file */
    int err;                    /* first error (negative errno), sticky */
};

/* buffers are allocated here, so a child can write without allocating
 * (except for a record larger than a chunk). Returns 0 or -ENOMEM. */
int ckpt_writer_init(struct ckpt_writer *w, int compress);
void ckpt_writer_free(struct ckpt_writer *w);

void ckpt_write_header(struct ckpt_writer *w, int fd, enum ckpt_kind kind, uint64_t id,
                       int64_t created_ms, const char *job);
void ckpt_section_begin(struct ckpt_writer *w, enum ckpt_section type, const char *name,
                        uint64_t fingerprint);
/* Appends to the current record buffer (records may be built piecewise);
 * ckpt_record_end() lets a chunk end here. */
void ckpt_put(struct ckpt_writer *w, const void *p, size_t n);
void ckpt_put_u32(struct ckpt_writer *w, uint32_t v);
void ckpt_put_i64(struct ckpt_writer *w, int64_t v);
void ckpt_record_end(struct ckpt_writer *w);
void ckpt_section_end(struct ckpt_writer *w);
/* Writes the END section.  Returns w->err (0 on success). */
int ckpt_finish(struct ckpt_writer *w);

/* ---- reading -------------------------------------------------------------- */

struct ckpt_info {
    enum ckpt_kind kind;
    uint32_t version;
    uint64_t id;
    int64_t created_ms;
    char job[256];
    uint32_t nsections;
    uint64_t file_bytes;
};

struct ckpt_section_info {
    enum ckpt_section type;
    char name[256];
    uint64_t fingerprint;
    uint64_t raw_bytes, stored_bytes, records;
};

struct ckpt_reader;

/* Opens and fully verifies path (header, every chunk's checksum, the END
 * section).  Returns 0, or a negative code with a reason in err. */
int ckpt_open(const char *path, struct ckpt_reader **out, struct ckpt_info *info,
              char *err, size_t errsize);
void ckpt_close(struct ckpt_reader *r);

/* The file's format version (its fingerprints depend on it). */
uint32_t ckpt_format(const struct ckpt_reader *r);

/* Iterates sections: fills *s and returns 1, or 0 at the END section. */
int ckpt_next_section(struct ckpt_reader *r, struct ckpt_section_info *s);

/* The next record of the current section: *p and *n, returns 1; 0 at the
 * end of the section; -EINVAL for a malformed chunk, -ENOMEM when its
 * buffer cannot grow (the file may be fine: callers must not call it
 * corrupt).  Records are valid until the next call. */
int ckpt_next_record(struct ckpt_reader *r, const unsigned char **p, size_t *n);

/* Cursor helpers over one record; they fail (return -EINVAL) past its end. */
struct ckpt_cur {
    const unsigned char *p, *end;
};
int ckpt_get(struct ckpt_cur *c, void *dst, size_t n);
int ckpt_get_u32(struct ckpt_cur *c, uint32_t *v);
int ckpt_get_i64(struct ckpt_cur *c, int64_t *v);

/* Times a checkpoint may hold: event times and what windows derive from
 * them (ends, expiries, timers) stay far inside +-CKPT_TIME_LIMIT, so the
 * arithmetic a restored engine does on them cannot overflow.  A value
 * outside it, other than the one sentinel the field allows, fails like a
 * short record: only a crafted file (its checksums recomputed) has one. */
#define CKPT_TIME_LIMIT (INT64_C(1) << 61)
int ckpt_get_time(struct ckpt_cur *c, int64_t *v);
int ckpt_get_time_or(struct ckpt_cur *c, int64_t *v, int64_t sentinel);
const unsigned char *ckpt_get_ptr(struct ckpt_cur *c, size_t n);

#endif
