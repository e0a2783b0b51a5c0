/*
 * cmd_inspect.c - `sluice inspect PATH`: what a checkpoint or savepoint
 * holds, and whether it is intact.
 *
 * PATH is a checkpoint file, a savepoint directory, or a directory of
 * checkpoints (the newest is shown).  The whole file is verified first
 * (every checksum, the end marker); a damaged file is reported with the
 * reason and exit code 1.  With -c JOB, each operator's fingerprint is
 * compared with the job's, which tells whether a restore would accept it.
 *
 * PATH may also be a shard snapshot in the shared store, by URL
 * (file:///dir/job/p3/x-1.sluice, s3://bucket/prefix/job/p3/x-1.sluice):
 * the object is downloaded through connectors/store.h into a temporary
 * file, inspected like any other, and the temporary file removed.
 */
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config/job.h"
#include "../engine/ckpt_file.h"
#include "../engine/engine.h"
#include "../engine/evtime.h"
#include "../engine/watermark.h"
#include "../connectors/rp_header.h"
#include "../connectors/store.h"
#include "cli.h"

const struct cli_command cli_inspect = {
    .name = "inspect",
    .summary = "summarise a checkpoint or savepoint",
    .usage =
        "usage: sluice inspect PATH|URL [-c JOB]\n"
        "\n"
        "Verifies and summarises a checkpoint or savepoint: job, kind, id, time,\n"
        "sources (offsets, watermarks), operators (keys, sizes, fingerprints), and\n"
        "checksum status.  PATH is a checkpoint file, a savepoint directory, or a\n"
        "directory of checkpoints (the newest is shown).  URL is a shard snapshot in\n"
        "the shared store (file:///dir/job/p3/x-1.sluice or\n"
        "s3://bucket/prefix/job/p3/x-1.sluice, with the AWS_* variables), downloaded\n"
        "to a temporary file first.  With -c JOB, says for each operator whether the\n"
        "job's definition still matches (a restore needs it to, or\n"
        "--allow-non-restored-state).  Exit 1 when the file is damaged or absent,\n"
        "2 when the store cannot be reached.\n",
    .run = cmd_inspect,
};

static void fmt_time(int64_t ms, char *buf)
{
    if (ms == WM_MIN)
        strcpy(buf, "-infinity");
    else if (ms == WM_MAX)
        strcpy(buf, "+infinity");
    else
        evtime_format(ms, buf);
}

/* Files to show, appended to *v: a shard's newest file ("<epoch>-<id>.sluice"). */
static int newest_in(const char *dir, char *out, size_t size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned long long be = 0, bi = 0;
    int found = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        unsigned long long ep, id;
        char rest[16];
        if (sscanf(e->d_name, "%16llx-%llu.%15s", &ep, &id, rest) == 3 &&
            strcmp(rest, "sluice") == 0 && (!found || ep > be || (ep == be && id > bi))) {
            be = ep;
            bi = id;
            found = 1;
        }
    }
    if (d != NULL)
        closedir(d);
    if (!found)
        return -ENOENT;
    snprintf(out, size, "%.*s/%012llx-%llu.sluice", (int)(size - 60), dir, be, bi);
    return 0;
}

struct files {
    char (*v)[PATH_MAX];
    size_t n;
};

static int files_add(struct files *f, const char *path)
{
    char (*v)[PATH_MAX] = realloc(f->v, (f->n + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    f->v = v;
    snprintf(f->v[f->n++], PATH_MAX, "%s", path);
    return 0;
}

/* What PATH names: a file; a savepoint directory (its shard files
 * p<N>.sluice, or state.sluice from before shards); a checkpoint
 * directory (each shard's newest file, or the newest chk-<id>.sluice from
 * before shards). */
static int resolve(const char *path, struct files *f)
{
    struct stat st;
    char buf[PATH_MAX];
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return files_add(f, path);
    snprintf(buf, sizeof(buf), "%.4000s/state.sluice", path);
    if (stat(buf, &st) == 0)
        return files_add(f, buf);
    DIR *d = opendir(path);
    unsigned long long best = 0;
    int found = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && d != NULL && (e = readdir(d)) != NULL) {
        unsigned long long id;
        int part;
        char rest[16], x;
        if (sscanf(e->d_name, "p%d.%15s", &part, rest) == 2 && strcmp(rest, "sluice") == 0) {
            snprintf(buf, sizeof(buf), "%.4000s/%.64s", path, e->d_name);
            rc = files_add(f, buf);
        } else if (sscanf(e->d_name, "p%d%c", &part, &x) == 1) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%.4000s/%.64s", path, e->d_name);
            if (newest_in(dir, buf, sizeof(buf)) == 0)
                rc = files_add(f, buf);
        } else if (sscanf(e->d_name, "chk-%llu.%15s", &id, rest) == 2 &&
                   strcmp(rest, "sluice") == 0 && (!found || id > best)) {
            best = id;
            found = 1;
        }
    }
    if (d != NULL)
        closedir(d);
    if (rc == 0 && f->n == 0 && found) {
        snprintf(buf, sizeof(buf), "%.4000s/chk-%llu.sluice", path, best);
        rc = files_add(f, buf);
    }
    if (rc == 0 && f->n == 0)
        rc = -ENOENT;
    return rc;
}

static int inspect_file(const char *file, const char *shown, const struct job *job);

static int is_url(const char *path)
{
    return strncmp(path, "file://", 7) == 0 || strncmp(path, "s3://", 5) == 0;
}

/* Downloads the object url names into a new temporary file, named in tmp.
 * The store is the URL up to its last '/', the object the rest. */
static int fetch(const char *url, char *tmp, size_t size)
{
    char root[2048], err[1024];
    const char *slash = strrchr(url, '/');
    size_t n = (size_t)(slash - url);
    if (n >= sizeof(root) || slash[1] == '\0' || slash[-1] == '/') {
        fprintf(stderr, "sluice inspect: %s: expected the URL of an object, like "
                "s3://bucket/prefix/job/p3/x-1.sluice\n", url);
        return EXIT_CONFIG;
    }
    memcpy(root, url, n);
    root[n] = '\0';
    struct store *st;
    int rc = store_open(root, &st, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sluice inspect: %s\n", err);
        return EXIT_CONFIG;
    }
    const char *dir = getenv("TMPDIR");
    snprintf(tmp, size, "%s/sluice-inspect-XXXXXX", dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "sluice inspect: %s: %s\n", tmp, strerror(errno));
        store_free(st);
        return EXIT_RUNTIME;
    }
    close(fd);
    rc = store_get(st, slash + 1, tmp, err, sizeof(err));
    store_free(st);
    if (rc < 0) {
        unlink(tmp);
        fprintf(stderr, "sluice inspect: %s\n", err);
        return rc == -ENOENT || rc == -EINVAL ? EXIT_CONFIG : EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL, *jobf = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(cli_inspect.usage, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            jobf = argv[++i];
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            fprintf(stderr, "sluice inspect: unexpected argument '%s'\n%s", argv[i],
                    cli_inspect.usage);
            return EXIT_CONFIG;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "sluice inspect: PATH is required\n%s", cli_inspect.usage);
        return EXIT_CONFIG;
    }
    struct job *job = NULL;
    if (jobf != NULL && cli_load_job(jobf, &job) != EXIT_OK)
        return EXIT_CONFIG;
    char tmp[PATH_MAX] = "";
    int rc = EXIT_OK;
    if (is_url(path)) {
        rc = fetch(path, tmp, sizeof(tmp));
        if (rc == EXIT_OK)
            rc = inspect_file(tmp, path, job);
        if (tmp[0] != '\0')
            unlink(tmp);
        job_free(job);
        return rc;
    }
    struct files files = { NULL, 0 };
    if (resolve(path, &files) < 0) {
        fprintf(stderr, "sluice inspect: %s: no checkpoint there\n", path);
        free(files.v);
        job_free(job);
        return EXIT_CONFIG;
    }
    for (size_t i = 0; i < files.n; i++) {      /* every shard's */
        int one = inspect_file(files.v[i], files.v[i], job);
        if (one != EXIT_OK)
            rc = one;
    }
    free(files.v);
    job_free(job);
    return rc;
}

/* Prints what the checkpoint file holds (shown is its name for people). */
static int inspect_file(const char *file, const char *shown, const struct job *job)
{
    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[512], t[64];
    if (ckpt_open(file, &r, &info, err, sizeof(err)) < 0) {
        printf("%s: DAMAGED: %s\n", shown, err);
        return EXIT_CONFIG;
    }
    fmt_time(info.created_ms, t);
    printf("%s %" PRIu64 " of job %s, taken %s\n",
           info.kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", info.id, info.job, t);
    printf("file: %s, %.2f MB, format %u, checksums ok\n", shown,
           (double)info.file_bytes / 1e6, info.version);
    struct ckpt_section_info s;
    int rc = EXIT_OK;
    while (ckpt_next_section(r, &s) == 1) {
        const unsigned char *p;
        size_t n;
        if (s.type == CKPT_SEC_SOURCE) {
            int64_t wm;
            uint32_t nparts;
            if (ckpt_next_record(r, &p, &n) != 1)
                break;
            struct ckpt_cur c = { p, p + n };
            if (ckpt_get_i64(&c, &wm) < 0 || ckpt_get_u32(&c, &nparts) < 0)
                break;
            fmt_time(wm, t);
            printf("source %s: watermark %s, %u partition%s\n", s.name, t, nparts,
                   nparts == 1 ? "" : "s");
            while (ckpt_next_record(r, &p, &n) == 1) {
                uint32_t part;
                int64_t max_ts, next;
                c = (struct ckpt_cur){ p, p + n };
                if (ckpt_get_u32(&c, &part) < 0 || ckpt_get_i64(&c, &max_ts) < 0 ||
                    ckpt_get_i64(&c, &next) < 0)
                    break;
                fmt_time(max_ts, t);
                if (rp_is_vid((int32_t)part))   /* a repartition source's (rp_header.h) */
                    printf("  partition %" PRId32 ", input partition %" PRId32 ": applied "
                           "up to input offset %lld%s, latest event %s\n",
                           rp_vid_part((int32_t)part), rp_vid_src((int32_t)part),
                           (long long)((next & ~RP_HWM_ENDED) - 1),
                           next >= 0 && (next & RP_HWM_ENDED) ? " (ended)" : "", t);
                else
                    printf("  partition %u: next offset %lld, latest event %s\n", part,
                           (long long)next, t);
            }
        } else if (s.type == CKPT_SEC_OPERATOR) {
            uint64_t keys = 0;
            while (ckpt_next_record(r, &p, &n) == 1)
                keys++;
            printf("operator %s: %" PRIu64 " keys, %.2f MB (%.2f MB stored), fingerprint "
                   "%016" PRIx64, s.name, keys, (double)s.raw_bytes / 1e6,
                   (double)s.stored_bytes / 1e6, s.fingerprint);
            if (job != NULL) {
                int idx = -1;
                for (size_t i = 0; i < job->noperators; i++)
                    if (strcmp(job->operators[i].name, s.name) == 0)
                        idx = (int)i;
                if (idx < 0)
                    printf(": not in the job (ignored on restore)");
                else if (engine_op_fingerprint(job, idx, info.version) == s.fingerprint)
                    printf(": matches the job");
                else {
                    printf(": CHANGED in the job (restore needs --allow-non-restored-state)");
                    rc = EXIT_CONFIG;
                }
            }
            printf("\n");
        }
    }
    ckpt_close(r);
    return rc;
}
