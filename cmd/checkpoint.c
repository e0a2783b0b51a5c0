/*
 * checkpoint.c - asynchronous checkpoints, savepoints, and restore at
 * start (the protocol and its guarantees are in docs/state.md).
 *
 * Taking one (on the loop thread, between two records):
 *   1. every sink marks the writes made so far (barrier), and the read
 *      position of every partition is copied;
 *   2. fork(): the child serializes the engine (engine_snapshot: memory
 *      and write(2) only, no libuv, librdkafka or hiredis) to
 *      chk-<id>.sluice.tmp, fsyncs it and _exits.  The parent goes on at
 *      once; copy-on-write keeps the child's view of the state as it was
 *      at the fork.  The loop stalls only for the fork itself;
 *   3. when the child has exited 0 AND every sink has acknowledged every
 *      write before the barrier, the file is renamed to chk-<id>.sluice
 *      and the directory fsynced: only now is it complete, a restore
 *      point.  Then the read positions are committed to the Kafka group,
 *      and checkpoints beyond checkpoints_retained are deleted.
 * One checkpoint runs at a time.  A failed one (the child fails, for
 * instance on a full disk, or takes too long; or the sinks do not
 * acknowledge in time) is logged and counted, its file removed, and the
 * next interval tries again; processing never stops for it.
 *
 * Savepoints are the same, written to savepoints/savepoint-<job>-<id>/
 * and never deleted by sluice.  Restore: the newest complete checkpoint
 * (or --from-savepoint PATH) is verified whole before anything is loaded;
 * a damaged one is reported and the previous one tried.
 *
 * The API is checkpoint.h.  Who asked for one (the run's reload and final
 * checkpoint, SIGUSR1, POST /savepoint) hears of its end through the
 * callback it gave chkpt_take(); what this file needs of the run comes
 * through struct chkpt_host.  It knows nothing else of the run: not its
 * state, not its other parts.  The fields below are written here only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../connectors/log.h"
#include "../connectors/store.h"
#include "../engine/evtime.h"
#include "checkpoint.h"
#include "shardmeta.h"

#define MIN_TIMEOUT_MS 60000        /* a checkpoint may take this long at least */
#define WAITERS 4                   /* callbacks told of one take's end */
#define CHILD_WHY 512               /* bytes of the writer's reason for failing */

enum ckpt_phase { CK_IDLE, CK_WRITING, CK_ACKING, CK_PUBLISHING };

/* One shard's file in the running checkpoint. */
struct item {
    int32_t part;                   /* the shard's id */
    uint64_t gen, changes;          /* the shard as it was at the fork */
    int merged;                     /* it holds several partitions: no metadata */
    int fd;
    char obj[256];                  /* object name: <job>/p<N>/<epoch>-<id>.sluice */
    char tmp[PATH_MAX], final[PATH_MAX];
    uint64_t len, xxh;              /* set by the publisher */
    int rc;                         /* the publisher's result */
    char err[256];
    /* older snapshots of the shard to delete from the shared store once
     * this one is stored (the oldest of its chain beyond what is kept) */
    char (*del)[256];
    size_t ndel;
};

/* Who hears of one take's end. */
struct waiters {
    size_t n;
    struct {
        chkpt_done_fn fn;
        void *ud;
    } v[WAITERS];
};

struct checkpoints {
    struct chkpt_host host;
    char dir[2048];                 /* state.dir/checkpoints/<job> */
    char spdir[2048];               /* state.dir/savepoints */
    uint64_t next_id;
    /* the one running */
    enum ckpt_phase phase;
    enum ckpt_kind kind;
    uint64_t id;
    pid_t child;
    char final[PATH_MAX];           /* a savepoint's directory; state.dir/checkpoints/<job> */
    struct item *items;             /* the shards it writes */
    size_t nitems, capitems;
    char root[2048];                /* state.dir/checkpoints: objects are named from here */
    char epoch[24];                 /* this run's, in every object name */
    struct store *store;            /* state.shared, or NULL */
    uv_work_t work;                 /* the publisher: hashes, uploads */
    uv_loop_t *loop;
    int working;                    /* the publisher's work is queued or running */
    char shared[1024];              /* the URL ck->store was opened with */
    uint64_t started_ns, phase_ns;
    uint64_t stall_us;              /* the running one's fork (0: none yet) */
    char *child_why;                /* CHILD_WHY bytes shared with the writer, or NULL */
    struct offsets *offs;           /* per source, as of the checkpoint */
    struct waiters now;             /* told when it ends */
    /* a savepoint asked for while it runs: follows it */
    int queued;
    struct waiters next;
    struct ckpt_writer w;
    uv_timer_t timer;
    uv_signal_t sigchld;
    int started;                    /* set up for a graph */
    int closing, open_handles;
    int restore_rc;                 /* a restored read position could not be kept */
    struct chkpt_stats stats;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t timeout_ns(const struct checkpoints *ck)
{
    int64_t ms = 2 * ck->host.g->job->state.checkpoint_interval_ms;
    return (uint64_t)(ms > MIN_TIMEOUT_MS ? ms : MIN_TIMEOUT_MS) * 1000000ull;
}

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Makes a rename in dir durable.  A failure is logged: the file is in
 * place, and on most file systems durable anyway; the next checkpoint
 * tries again. */
static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        log_msg(LOG_WARNING, "checkpoint", "fsync of %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* Ids of the complete checkpoints in dir, newest first, into *out (caller
 * frees) and *np; none when dir cannot be read.  Returns 0 or -ENOMEM. */
static int list_ids(const char *dir, uint64_t **out, size_t *np, uint64_t *max_any)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    int rc = 0;
    *out = NULL;
    *np = 0;
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long id;
        char rest[16];
        if (sscanf(e->d_name, "chk-%llu.%15s", &id, rest) != 2)
            continue;
        if (max_any != NULL && id > *max_any)
            *max_any = id;
        if (strcmp(rest, "sluice") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *v = realloc(*out, cap * sizeof(*v));
            if (v == NULL) {
                rc = -ENOMEM;
                break;
            }
            *out = v;
        }
        (*out)[n++] = id;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)         /* newest first */
        for (size_t j = i; j > 0 && (*out)[j - 1] < (*out)[j]; j--) {
            uint64_t t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    *np = n;
    return rc;
}

/* ---- restore ----------------------------------------------------------------------------- */

/* The shard a restore fills: its read positions go to the graph, and a
 * file from before shards may name several partitions. */
struct restoring {
    struct checkpoints *ck;
    struct shard *sh;
    int rc;
};

static void on_restored_offset(void *ud, int source, int32_t partition, int64_t next)
{
    struct restoring *rs = ud;
    struct graph *g = rs->ck->host.g;
    struct engine_offset *slot = offsets_slot(&g->offs[source], partition);
    if (slot != NULL)
        slot->next = next;
    else
        rs->rc = -ENOMEM;           /* reported when engine_restore returns */
    /* a virtual partition (rp_header.h) is a high-water mark of the
     * shard's own partition, not a partition of its own */
    if (rs->rc == 0 && partition != rs->sh->id && !rp_is_vid(partition)) {
        int rc = graph_shard_add_part(g, rs->sh, partition);
        if (rc < 0)
            rs->rc = rc;
    }
}

static void on_restore_note(void *ud, const char *msg)
{
    (void)ud;
    log_msg(LOG_WARNING, "restore", "%s", msg);
}

/*
 * Restores one file into a new shard for partition part (-1: whatever the
 * file names, a file from before shards).  Returns 0 with *out, or a
 * negative errno-style code, the shard dropped:
 *   -EPERM   the job refuses the state (a changed operator or source): a
 *            configuration error, nothing else is tried;
 *   -ENOMEM  the host cannot map or hold it: fatal, and no older file is
 *            tried, for the file is fine and falling back (at worst to no
 *            state) would let the next checkpoints replace it;
 *   -EEXIST  it names a partition another shard has;
 *   other    the file is not usable (damaged, another job's): the caller
 *            tries the one before.
 */
static int restore_one(struct checkpoints *ck, const char *path, int32_t part,
                       int allow_non_restored, struct shard **out)
{
    struct graph *g = ck->host.g;
    const struct job *job = g->job;
    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[512];
    uint64_t t0 = uv_hrtime();
    *out = NULL;
    int rc = ckpt_open(path, &r, &info, err, sizeof(err));
    if (rc == -ENOMEM) {
        log_msg(LOG_ERR, "restore", "%s: out of memory (%s)", path, err);
        return rc;
    }
    if (rc < 0) {
        log_msg(LOG_ERR, "restore", "%s: damaged: %s", path, err);
        return rc;
    }
    if (strcmp(info.job, job->name) != 0) {
        log_msg(LOG_ERR, "restore", "%s belongs to job %s, not %s", path, info.job,
                job->name);
        ckpt_close(r);
        return -EINVAL;
    }
    struct restoring rs = { ck, NULL, 0 };
    if ((rc = graph_shard_new(g, part, &rs.sh)) < 0) {
        ckpt_close(r);
        log_msg(LOG_ERR, "restore", "out of memory");
        return rc;
    }
    struct engine_restore_cb cb = { &rs, on_restored_offset, on_restore_note };
    rc = engine_restore(rs.sh->eng, r, allow_non_restored, &cb, err, sizeof(err));
    ckpt_close(r);
    if (rc == 0 && rs.rc < 0) {
        rc = rs.rc;
        snprintf(err, sizeof(err), "%s", rc == -EEXIST ? "it holds a partition restored already"
                                                        : "out of memory (read positions)");
    }
    if (rc == 0 && part < 0) {      /* from before shards: named by its first partition */
        if (rs.sh->nparts > 1) {
            memmove(rs.sh->parts, rs.sh->parts + 1, (rs.sh->nparts - 1) * sizeof(int32_t));
            rs.sh->nparts--;
        } else {
            rs.sh->parts[0] = 0;
        }
        graph_shard_rekey(g, rs.sh, rs.sh->parts[0]);
    }
    if (rc < 0) {
        graph_shard_drop(g, rs.sh);
        log_msg(LOG_ERR, "restore", "%s: %s", path, err);
        return rc;
    }
    struct engine_stats st;
    engine_get_stats(rs.sh->eng, &st);
    char when[64];
    evtime_format(info.created_ms, when);
    rs.sh->snap_id = info.id;
    rs.sh->restore_ms = (uv_hrtime() - t0) / 1000000;
    snprintf(rs.sh->restored_from, sizeof(rs.sh->restored_from), "%s", path);
    if (rs.sh->nparts > 1)
        log_msg(LOG_NOTICE, "restore", "restored %s %" PRIu64 " taken %s: %" PRIu64 " keys "
                "of %zu partitions, kept together (written before shards)",
                info.kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", info.id, when,
                st.state_keys, rs.sh->nparts);
    else if (part >= 0)
        log_msg(LOG_NOTICE, "restore", "restored %s %" PRIu64 " taken %s: %" PRIu64 " keys of "
                "partition %" PRId32, info.kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint",
                info.id, when, st.state_keys, part);
    else
        log_msg(LOG_NOTICE, "restore", "restored %s %" PRIu64 " taken %s: %" PRIu64 " keys",
                info.kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", info.id, when,
                st.state_keys);
    snprintf(ck->stats.restored_from, sizeof(ck->stats.restored_from), "%s", path);
    ck->stats.restore_ms += rs.sh->restore_ms;
    *out = rs.sh;
    return 0;
}

/* The offset a shard's snapshot resumes partition part at, as its commit
 * metadata names it: the read position of the last source that has one
 * (-1: none), among nsources sets of read positions. */
static int64_t snapshot_offset(const struct offsets *offs, size_t nsources, int32_t part)
{
    int64_t at = -1;
    for (size_t s = 0; s < nsources; s++) {
        int64_t next = offsets_next(&offs[s], part);
        if (next >= 0)
            at = next;
    }
    return at;
}

/* The (epoch, id) of a shard file's name "<epoch>-<id>.sluice", or 0. */
static int parse_obj_name(const char *name, uint64_t *epoch, uint64_t *id)
{
    char tail[16];
    return sscanf(name, "%16" SCNx64 "-%" SCNu64 "%10s", epoch, id, tail) == 3 &&
           strcmp(tail, ".sluice") == 0;
}

/* Files of one shard directory, newest first (caller frees names). */
static int list_shard_files(const char *dir, char ***out, size_t *np)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    *out = NULL;
    *np = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        uint64_t ep, id;
        if (!parse_obj_name(e->d_name, &ep, &id))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nv = realloc(v, cap * sizeof(*nv));
            if (nv == NULL)
                goto oom;
            v = nv;
        }
        if ((v[n] = strdup(e->d_name)) == NULL)
            goto oom;
        n++;
    }
    if (d != NULL)
        closedir(d);
    for (size_t i = 1; i < n; i++)         /* newest first: by (epoch, id) */
        for (size_t j = i; j > 0; j--) {
            uint64_t ea, ia, eb, ib;
            parse_obj_name(v[j - 1], &ea, &ia);
            parse_obj_name(v[j], &eb, &ib);
            if (ea > eb || (ea == eb && ia >= ib))
                break;
            char *t = v[j - 1];
            v[j - 1] = v[j];
            v[j] = t;
        }
    *out = v;
    *np = n;
    return 0;
oom:
    if (d != NULL)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return -ENOMEM;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Every shard of a savepoint directory (p<N>.sluice), or one file. */
static int restore_from(struct checkpoints *ck, const char *from, int allow_non_restored)
{
    char path[PATH_MAX];
    struct stat st;
    struct shard *sh;
    if (stat(from, &st) < 0 || !S_ISDIR(st.st_mode))
        return restore_one(ck, from, -1, allow_non_restored, &sh);
    snprintf(path, sizeof(path), "%s/state.sluice", from);     /* before shards */
    if (access(path, F_OK) == 0)
        return restore_one(ck, path, -1, allow_non_restored, &sh);
    DIR *d = opendir(from);
    struct dirent *e;
    int rc = 0, found = 0;
    while (rc == 0 && d != NULL && (e = readdir(d)) != NULL) {
        int32_t part;
        char tail[16];
        if (sscanf(e->d_name, "p%" SCNd32 "%10s", &part, tail) != 2 ||
            strcmp(tail, ".sluice") != 0 || part < 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", from, e->d_name);
        if ((rc = restore_one(ck, path, part, allow_non_restored, &sh)) == 0) {
            sh->pinned = 1;
            found++;
        }
    }
    if (d != NULL)
        closedir(d);
    if (rc == 0 && found == 0) {
        log_msg(LOG_ERR, "restore", "%s holds no shard files (p<N>.sluice)", from);
        rc = -ENOENT;
    }
    return rc;
}

/* The newest usable file of each shard directory in ck->dir; then, when
 * there are none, the newest usable checkpoint from before shards. */
static int restore_local(struct checkpoints *ck, int allow_non_restored)
{
    DIR *d = opendir(ck->dir);
    struct dirent *e;
    int rc = 0, shards = 0;
    int pin = ck->store == NULL;    /* with a shared store, the group's commit decides */
    while (rc == 0 && d != NULL && (e = readdir(d)) != NULL) {
        int32_t part;
        char x;
        if (sscanf(e->d_name, "p%" SCNd32 "%c", &part, &x) != 1 || part < 0)
            continue;
        char dir[PATH_MAX], path[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", ck->dir, e->d_name);
        char **names;
        size_t n;
        if ((rc = list_shard_files(dir, &names, &n)) < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            struct shard *sh;
            snprintf(path, sizeof(path), "%.3800s/%.255s", dir, names[i]);
            rc = restore_one(ck, path, part, allow_non_restored, &sh);
            if (rc == 0) {
                sh->pinned = pin;
                snprintf(sh->snap_obj, sizeof(sh->snap_obj), "%.128s/%.24s/%.100s", ck->host.g->job->name,
                         e->d_name, names[i]);
                /* what its next publication names as prev */
                sh->snap_offset = snapshot_offset(ck->host.g->offs, ck->host.g->job->nsources,
                                                  part);
                if (shard_file_hash(path, &sh->snap_len, &sh->snap_xxh) < 0)
                    sh->snap_len = 0;
                shards++;
                break;
            }
            if (rc == -EPERM || rc == -ENOMEM)
                break;
            rc = 0;
            if (i + 1 < n)
                log_msg(LOG_WARNING, "restore", "trying the previous checkpoint of partition %"
                        PRId32, part);
        }
        free_names(names, n);
    }
    if (d != NULL)
        closedir(d);
    if (rc < 0 || shards > 0)
        return rc;
    /* before shards: chk-<id>.sluice, one file for every partition */
    uint64_t *ids;
    size_t n;
    char path[PATH_MAX];
    rc = list_ids(ck->dir, &ids, &n, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct shard *sh;
        snprintf(path, sizeof(path), "%s/chk-%" PRIu64 ".sluice", ck->dir, ids[i]);
        rc = restore_one(ck, path, -1, allow_non_restored, &sh);
        if (rc == 0) {
            sh->pinned = 1;
            goto done;
        }
        if (rc == -EPERM || rc == -ENOMEM)
            goto done;
        /* damaged or another job's: start clean and try the one before */
        rc = ck->host.reset(ck->host.ud);
        if (rc == 0 && i + 1 < n)
            log_msg(LOG_WARNING, "restore", "trying the previous checkpoint");
    }
    if (rc < 0)
        log_msg(LOG_ERR, "restore", "%s: %s", ck->dir, strerror(-rc));
    else if (n > 0)
        log_msg(LOG_WARNING, "restore", "no usable checkpoint: starting without state");
    else
        LOG(LOG_INFO, "restore", "no checkpoint in %s: starting without state", ck->dir);
done:
    free(ids);
    return rc;
}

int chkpt_restore(struct checkpoints *ck, const char *from, int allow_non_restored)
{
    if (from != NULL) {
        int rc = restore_from(ck, from, allow_non_restored);
        if (rc < 0)
            log_msg(LOG_ERR, "restore", "cannot restore from %s", from);
        return rc;
    }
    return restore_local(ck, allow_non_restored);
}

/* ---- assignment: a shard from the group's commit ------------------------------------------ */

/* Verifies a local copy against the metadata and restores it; 0 or < 0. */
static int restore_published(struct checkpoints *ck, int32_t part, const char *obj,
                             uint64_t len, uint64_t xxh, struct shard **out)
{
    char path[PATH_MAX], err[512];
    uint64_t l, x;
    int rc;
    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/%s", ck->root, obj) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    uint64_t t0 = uv_hrtime(), t1, t2;
    int have = shard_file_hash(path, &l, &x) == 0 && l == len && x == xxh;
    if (!have && ck->store == NULL) {
        log_msg(LOG_ERR, "restore", "partition %" PRId32 ": %s is %s", part, obj,
                access(path, F_OK) == 0 ? "damaged (its size or checksum is not the "
                "commit's)" : "missing");
        return -ENOENT;
    }
    if (!have) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        if ((rc = mkdirs(dir)) < 0 ||
            (rc = store_get(ck->store, obj, path, err, sizeof(err))) < 0) {
            ck->stats.store_errors++;
            log_msg(LOG_ERR, "restore", "partition %" PRId32 ": cannot fetch %s from %s: %s",
                    part, obj, store_url(ck->store), rc == -ENOENT ? "absent" : err);
            return rc;
        }
        t1 = uv_hrtime();
        if ((rc = shard_file_hash(path, &l, &x)) < 0)
            return rc;
        t2 = uv_hrtime();
        if (l != len || x != xxh) {
            log_msg(LOG_ERR, "restore", "partition %" PRId32 ": %s is damaged: %" PRIu64
                    " bytes, xxh64 %016" PRIx64 ", the commit says %" PRIu64 " bytes, %016"
                    PRIx64, part, obj, l, x, len, xxh);
            unlink(path);
            return -EBADMSG;
        }
        ck->stats.downloaded += l;
        LOG(LOG_INFO, "restore", "partition %" PRId32 ": fetched %s (%.1f MB) in %" PRIu64
            " ms, its xxh64 checked in %" PRIu64 " ms", part, obj, l / 1e6,
            (t1 - t0) / 1000000, (t2 - t1) / 1000000);
    } else {
        LOG(LOG_INFO, "restore", "partition %" PRId32 ": the local copy of %s is the one "
            "published (%.1f MB, its xxh64 checked in %" PRIu64 " ms)", part, obj, l / 1e6,
            (uv_hrtime() - t0) / 1000000);
    }
    rc = restore_one(ck, path, part, 0, out);
    if (rc == 0)
        snprintf((*out)->snap_obj, sizeof((*out)->snap_obj), "%s", obj);
    return rc;
}

/* A shard taken over from the store: the snapshots of its prefix other
 * than the ones restored (the previous owner's older ones, left behind when
 * it was revoked or died, and a zombie's that no commit names) go to the
 * front of its chain, so that its next publications delete them, oldest
 * chain first.  Without this every hand-off would leave up to
 * store_keep() - 2 objects in the store for ever. */
static void adopt_leftovers(struct checkpoints *ck, struct shard *sh, int32_t part)
{
    char prefix[300], err[256], **names = NULL;
    size_t n = 0, old = sh->nchain;
    if (ck->store == NULL)
        return;
    snprintf(prefix, sizeof(prefix), "%s/p%" PRId32 "/", ck->host.g->job->name, part);
    if (store_list(ck->store, prefix, &names, &n, err, sizeof(err)) < 0) {
        ck->stats.store_errors++;
        log_msg(LOG_WARNING, "restore", "partition %" PRId32 ": cannot list %s in %s (%s): "
                "older snapshots there are left", part, prefix, store_url(ck->store), err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (shard_chain_push(sh, names[i]) < 0)
            break;                  /* out of memory: the rest is left */
    store_names_free(names, n);
    size_t added = sh->nchain - old;
    if (added == 0 || old == 0)
        return;
    char (*v)[256] = malloc(sh->nchain * sizeof(*v));
    if (v == NULL)                  /* left at the end: deleted last, not never */
        return;
    memcpy(v, &sh->chain[old], added * sizeof(*v));
    memcpy(&v[added], sh->chain, old * sizeof(*v));
    memcpy(sh->chain, v, sh->nchain * sizeof(*v));
    free(v);
    LOG(LOG_INFO, "restore", "partition %" PRId32 ": %zu older snapshot%s in the store "
        "will be deleted by this instance", part, added, added == 1 ? "" : "s");
}

int chkpt_assign(struct checkpoints *ck, int source, int32_t part,
                 const struct source_committed *c, int64_t *resume)
{
    struct graph *g = ck->host.g;
    struct shard *sh = graph_shard(g, part);
    struct shard_meta m;
    int have_meta = 0;
    char err[256];
    *resume = -1;
    if (c != NULL && c->meta != NULL && c->meta_len > 0) {
        int rc = shard_meta_parse(c->meta, c->meta_len, &m, err, sizeof(err));
        if (rc == 0)
            have_meta = 1;
        else if (rc != -ENOMSG)
            log_msg(LOG_WARNING, "restore", "partition %" PRId32 ": the group's commit "
                    "metadata is unusable (%s): ignored", part, err);
    }
    if (sh != NULL && have_meta && !sh->pinned && strcmp(sh->snap_obj, m.obj) != 0) {
        LOG(LOG_INFO, "restore", "partition %" PRId32 ": the group's commit names %s, newer "
            "than the local %s", part, m.obj, sh->snap_obj[0] ? sh->snap_obj : "state");
        graph_shard_drop(g, sh);
        sh = NULL;
    }
    char local[PATH_MAX];
    if (sh == NULL && have_meta && ck->store == NULL &&
        (snprintf(local, sizeof(local), "%.2000s/%s", ck->root, m.obj) >= (int)sizeof(local) ||
         access(local, F_OK) < 0)) {
        /* another instance's, on its own disk: as before shards, the
         * partition goes on from the committed offset without its state */
        log_msg(LOG_WARNING, "restore", "partition %" PRId32 ": %s is not here (without "
                "state.shared an instance sees only its own snapshots): going on from the "
                "committed offset without its state", part, m.obj);
        have_meta = 0;
    }
    if (sh == NULL && have_meta && ck->started) {
        int rc = restore_published(ck, part, m.obj, m.len, m.xxh, &sh);
        if (rc == 0 && offsets_next(&g->offs[source], part) != m.offset) {
            log_msg(LOG_ERR, "restore", "partition %" PRId32 ": %s resumes at %" PRId64
                    ", the group committed %" PRId64, part, m.obj,
                    offsets_next(&g->offs[source], part), m.offset);
            graph_shard_drop(g, sh);
            sh = NULL;
            rc = -EBADMSG;
        }
        if (rc == -ENOMEM || rc == -EPERM)
            return rc;
        if (rc < 0 && m.prev[0] != '\0') {
            ck->stats.damaged++;
            log_msg(LOG_WARNING, "restore", "partition %" PRId32 ": trying the previous "
                    "snapshot %s (a longer replay)", part, m.prev);
            rc = restore_published(ck, part, m.prev, m.prev_len, m.prev_xxh, &sh);
            if (rc == -ENOMEM || rc == -EPERM)
                return rc;
        } else if (rc < 0) {
            ck->stats.damaged++;
        }
        if (rc < 0) {
            log_msg(LOG_ERR, "restore", "partition %" PRId32 ": no usable snapshot: reading "
                    "it again from the source's start", part);
            c = NULL;               /* the committed offset goes with the lost state */
        } else {
            ck->stats.handoffs++;
            sh->snap_id = m.id;
            if ((m.prev[0] != '\0' && strcmp(sh->snap_obj, m.obj) == 0 &&
                 shard_chain_push(sh, m.prev) < 0) || shard_chain_push(sh, sh->snap_obj) < 0)
                log_msg(LOG_WARNING, "restore", "out of memory: old snapshots of partition %"
                        PRId32 " will not be deleted from the store", part);
            else
                adopt_leftovers(ck, sh, part);
            snprintf(sh->confirmed, sizeof(sh->confirmed), "%s", sh->snap_obj);
            if (strcmp(sh->snap_obj, m.obj) == 0) {
                sh->snap_len = m.len;
                sh->snap_xxh = m.xxh;
                sh->snap_offset = m.offset;
            }
        }
    }
    if (sh == NULL) {
        int rc = graph_shard_new(g, part, &sh);
        if (rc < 0)
            return rc;
        if (c != NULL && c->offset >= 0) {
            struct engine_offset *o = offsets_slot(&g->offs[source], part);
            if (o == NULL)
                return -ENOMEM;
            o->next = c->offset;
        }
    }
    *resume = offsets_next(&g->offs[source], part);
    return 0;
}

void chkpt_committed(struct checkpoints *ck, int source, int32_t part, int64_t next, int err)
{
    (void)source;
    struct shard *sh = graph_shard(ck->host.g, part);
    if (err == 0 && sh != NULL && sh->pend_obj[0] != '\0' && sh->pend_off == next)
        snprintf(sh->confirmed, sizeof(sh->confirmed), "%s", sh->pend_obj);
    if (err == -ESTALE) {
        ck->stats.fenced++;
        log_msg(LOG_WARNING, "checkpoint", "partition %" PRId32 ": commit refused, the "
                "partition belongs to another instance now", part);
    }
}

void chkpt_revoke(struct checkpoints *ck, int source, int32_t part, int lost)
{
    struct graph *g = ck->host.g;
    struct shard *sh = graph_shard(g, part);
    if (sh == NULL)
        return;
    if (sh->nparts > 1) {           /* kept together: only this partition goes */
        engine_partition_remove(sh->eng, source, part);
        return;
    }
    LOG(LOG_INFO, "run", "partition %" PRId32 " %s: its shard is dropped", part,
        lost ? "lost" : "revoked");
    graph_shard_drop(g, sh);
}

/* ---- taking ------------------------------------------------------------------------------ */

static void finish(struct checkpoints *ck, int rc, const char *why);

static int waiters_add(struct waiters *ws, chkpt_done_fn fn, void *ud)
{
    if (fn == NULL)
        return 0;
    if (ws->n == WAITERS)
        return -EBUSY;
    ws->v[ws->n].fn = fn;
    ws->v[ws->n].ud = ud;
    ws->n++;
    return 0;
}

/* Tells them (a copy: a callback may take the next one, or stop us). */
static void waiters_tell(struct waiters *ws, enum ckpt_kind kind, uint64_t id, const char *path,
                         int rc)
{
    struct waiters told = *ws;
    ws->n = 0;
    for (size_t i = 0; i < told.n; i++)
        told.v[i].fn(told.v[i].ud, kind, id, path, rc);
}

static void child_main(struct checkpoints *ck)
{
    const struct graph *g = ck->host.g;
    int rc = 0;
    int64_t now = wall_ms();
    for (size_t i = 0; i < ck->nitems && rc == 0; i++) {
        struct item *it = &ck->items[i];
        const struct shard *sh = graph_shard(g, it->part);
        struct shard_offsets so = { g, sh };
        ck->w.nsections = 0;
        ck->w.len = 0;
        ck->w.bytes = 0;
        ck->w.err = 0;
        ckpt_write_header(&ck->w, it->fd, ck->kind, ck->id, now, g->job->name);
        rc = engine_snapshot(sh->eng, &ck->w, shard_offsets, &so);
        if (rc == 0)
            rc = ckpt_finish(&ck->w);
        if (rc == 0 && fsync(it->fd) < 0)
            rc = -errno;
        if (close(it->fd) < 0 && rc == 0)
            rc = -errno;
        if (rc < 0) {
            log_msg(LOG_ERR, "checkpoint", "writing %s: %s", it->tmp, strerror(-rc));
            if (ck->child_why != NULL)
                snprintf(ck->child_why, CHILD_WHY, "%s (writing %.400s)", strerror(-rc),
                         it->tmp);       /* the reason first: it is what a cut keeps */
        }
    }
    _exit(rc < 0 ? 1 : 0);
}

static void items_close(struct checkpoints *ck, int unlink_tmp)
{
    for (size_t i = 0; i < ck->nitems; i++) {
        if (ck->items[i].fd >= 0)
            close(ck->items[i].fd);
        ck->items[i].fd = -1;
        if (unlink_tmp && ck->items[i].tmp[0] != '\0')
            unlink(ck->items[i].tmp);
    }
}

/* The shards the checkpoint writes: for a checkpoint, those that changed
 * since their last snapshot; for a savepoint, all.  Opens their files.
 * Returns 0 or a negative errno with why. */
static int items_open(struct checkpoints *ck, char *why, size_t whysize)
{
    struct graph *g = ck->host.g;
    const struct job *job = g->job;
    ck->nitems = 0;
    for (size_t i = 0; i < g->nshards; i++) {
        struct shard *sh = g->shards[i];
        if (ck->kind == CKPT_CHECKPOINT && sh->changes == sh->snap_changes)
            continue;
        if (ck->nitems == ck->capitems) {
            size_t cap = ck->capitems ? ck->capitems * 2 : 16;
            struct item *v = realloc(ck->items, cap * sizeof(*v));
            if (v == NULL) {
                snprintf(why, whysize, "out of memory");
                return -ENOMEM;
            }
            memset(v + ck->capitems, 0, (cap - ck->capitems) * sizeof(*v));
            ck->items = v;
            ck->capitems = cap;
        }
        struct item *it = &ck->items[ck->nitems++];
        free(it->del);
        *it = (struct item){ .part = sh->id, .gen = sh->gen, .changes = sh->changes,
                             .merged = sh->nparts > 1, .fd = -1 };
        char dir[PATH_MAX];
        if (ck->kind == CKPT_SAVEPOINT) {
            snprintf(it->final, sizeof(it->final), "%s/savepoint-%s-%" PRIu64 "/p%" PRId32
                     ".sluice", ck->spdir, job->name, ck->id, sh->id);
            snprintf(it->tmp, sizeof(it->tmp), "%s/sp-%" PRIu64 "-p%" PRId32 ".sluice.tmp",
                     ck->dir, ck->id, sh->id);
        } else {
            snprintf(it->obj, sizeof(it->obj), "%s/p%" PRId32 "/%s-%" PRIu64 ".sluice",
                     job->name, sh->id, ck->epoch, ck->id);
            snprintf(it->final, sizeof(it->final), "%s/%s", ck->root, it->obj);
            snprintf(it->tmp, sizeof(it->tmp), "%.4000s.tmp", it->final);
            snprintf(dir, sizeof(dir), "%s/p%" PRId32, ck->dir, sh->id);
            int rc = mkdirs(dir);
            if (rc < 0) {
                snprintf(why, whysize, "%s: %s", dir, strerror(-rc));
                return rc;
            }
        }
        it->fd = open(it->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (it->fd < 0) {
            int rc = -errno;
            snprintf(why, whysize, "%s: %s", it->tmp, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Starts one (ck->now says who to tell): barriers, read positions, fork.
 * A failure here ends it at once, through finish(). */
static void begin(struct checkpoints *ck, enum ckpt_kind kind)
{
    struct graph *g = ck->host.g;
    const struct job *job = g->job;
    char why[PATH_MAX + 64];
    ck->kind = kind;
    ck->id = ck->next_id++;
    ck->started_ns = uv_hrtime();
    ck->stall_us = 0;
    if (ck->working) {
        finish(ck, -EBUSY, "the previous one is still being published");
        return;
    }
    snprintf(ck->final, sizeof(ck->final), "%s", ck->dir);
    if (kind == CKPT_SAVEPOINT)
        snprintf(ck->final, sizeof(ck->final), "%s/savepoint-%s-%" PRIu64, ck->spdir,
                 job->name, ck->id);
    for (size_t i = 0; i < job->nsinks; i++) {
        struct sink *s = &g->snk[i];
        if (s->impl != NULL && s->ops->barrier(s) < 0) {
            finish(ck, -EIO, "a sink cannot make its writes durable");
            return;
        }
    }
    for (size_t s = 0; s < job->nsources; s++)
        if (offsets_copy(&ck->offs[s], &g->offs[s]) < 0) {
            finish(ck, -ENOMEM, "out of memory");
            return;
        }
    int rc = items_open(ck, why, sizeof(why));
    if (rc < 0) {
        finish(ck, rc, why);
        return;
    }
    ck->started_ns = ck->phase_ns = uv_hrtime();
    if (ck->nitems == 0) {          /* nothing changed: the sinks' barrier is all */
        ck->phase = CK_ACKING;
        ck->stats.last_stall_us = 0;
        return;
    }
    if (ck->child_why != NULL)
        ck->child_why[0] = '\0';
    uint64_t t0 = uv_hrtime();
    pid_t pid = fork();
    if (pid == 0)
        child_main(ck);                 /* never returns */
    int fork_errno = errno;
    uint64_t t1 = uv_hrtime();
    items_close(ck, 0);
    if (pid < 0) {
        snprintf(why, sizeof(why), "fork: %s", strerror(fork_errno));
        finish(ck, -fork_errno, why);
        return;
    }
    ck->child = pid;
    ck->phase = CK_WRITING;
    ck->started_ns = ck->phase_ns = t0;
    ck->stats.last_stall_us = ck->stall_us = (t1 - t0) / 1000;
    if (ck->stats.last_stall_us > ck->stats.max_stall_us)
        ck->stats.max_stall_us = ck->stats.last_stall_us;
    LOG(LOG_DEBUG, "checkpoint", "%" PRIu64 " started: %zu shard%s (fork took %" PRIu64 " us)",
        ck->id, ck->nitems, ck->nitems == 1 ? "" : "s", ck->stats.last_stall_us);
}

int chkpt_take(struct checkpoints *ck, enum ckpt_kind kind, chkpt_done_fn on_done, void *ud)
{
    if (!ck->started || ck->host.g->job == NULL)
        return -EAGAIN;
    if (ck->phase != CK_IDLE) {
        if (kind != CKPT_SAVEPOINT)
            return -EBUSY;
        int rc = waiters_add(&ck->next, on_done, ud);
        if (rc < 0)
            return rc;
        ck->queued = 1;
        LOG(LOG_INFO, "checkpoint", "a checkpoint is running; the savepoint follows it");
        return 0;
    }
    ck->now.n = 0;
    if (waiters_add(&ck->now, on_done, ud) < 0)
        return -EBUSY;                  /* cannot be: it was empty */
    begin(ck, kind);
    return 0;
}

/* Keeps the newest `keep` files of a shard directory. */
static void prune_dir(const char *dir, size_t keep)
{
    char **names;
    size_t n;
    if (list_shard_files(dir, &names, &n) < 0) {
        log_msg(LOG_WARNING, "checkpoint", "out of memory: old checkpoints are kept");
        return;
    }
    for (size_t i = keep; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%.3800s/%.255s", dir, names[i]);
        if (unlink(path) < 0)
            log_msg(LOG_WARNING, "checkpoint", "cannot delete %s: %s", path, strerror(errno));
    }
    free_names(names, n);
}

/* ---- publishing: hash, upload, then commit ------------------------------------------------- */

/* Snapshots kept in the shared store per shard: the retained ones, at
 * least 2 (a commit names its prev), plus 1, since the newest one's commit
 * is still on its way when the next is stored. */
static size_t store_keep(const struct checkpoints *ck)
{
    size_t k = (size_t)ck->host.g->job->state.checkpoints_retained;
    return (k < 2 ? 2 : k) + 1;
}

/* Which old snapshots each item's upload lets go: the oldest of the
 * shard's chain (what this instance restored or published) beyond
 * store_keep() counting the new one.  Only its own chain: another
 * instance's snapshots are that instance's to delete. */
static void plan_deletes(struct checkpoints *ck)
{
    struct graph *g = ck->host.g;
    size_t keep = store_keep(ck);
    for (size_t i = 0; i < ck->nitems; i++) {
        struct item *it = &ck->items[i];
        struct shard *sh = graph_shard(g, it->part);
        free(it->del);
        it->del = NULL;
        it->ndel = 0;
        if (sh == NULL || sh->gen != it->gen || sh->nchain + 1 <= keep)
            continue;
        size_t n = sh->nchain + 1 - keep, upto = 0;
        /* never the confirmed one nor its prev: while commits wait (a
         * rebalance) they are what the group's commit names */
        for (size_t j = 0; j < sh->nchain; j++)
            if (strcmp(sh->chain[j], sh->confirmed) == 0)
                upto = j > 0 ? j - 1 : 0;
        if (n > upto)
            n = upto;
        if (n == 0)
            continue;
        if ((it->del = malloc(n * sizeof(*it->del))) == NULL)
            continue;               /* kept: deleted by a later one */
        memcpy(it->del, sh->chain, n * sizeof(*it->del));
        it->ndel = n;
    }
}

/* On the thread pool: each file's size and checksum, its upload to the
 * shared store, and the deletion there of the shard's snapshots older than
 * the last `retained` (at least 2: a commit names its previous one). */
static void publish_work(uv_work_t *w)
{
    struct checkpoints *ck = w->data;
    for (size_t i = 0; i < ck->nitems; i++) {
        struct item *it = &ck->items[i];
        it->rc = shard_file_hash(it->final, &it->len, &it->xxh);
        if (it->rc < 0) {
            snprintf(it->err, sizeof(it->err), "%.180s: %.60s", it->final, strerror(-it->rc));
            continue;
        }
        if (ck->store != NULL)
            it->rc = store_put(ck->store, it->obj, it->final, it->err, sizeof(it->err));
        for (size_t d = 0; it->rc == 0 && d < it->ndel; d++) {
            char err[256];
            if (store_delete(ck->store, it->del[d], err, sizeof(err)) < 0)
                it->del[d][0] = '\0';      /* kept in the chain: tried again next time */
        }
    }
}

static void commit_shards(struct checkpoints *ck)
{
    struct graph *g = ck->host.g;
    const struct job *job = g->job;
    size_t ok = 0;
    for (size_t s = 0; s < job->nsources; s++) {
        struct source *src = &g->src[s];
        if (src->impl == NULL)
            continue;
        const struct offsets *o = &ck->offs[s];
        struct source_commit *c = calloc(o->n ? o->n : 1, sizeof(*c));
        char (*meta)[1024] = calloc(o->n ? o->n : 1, sizeof(*meta));
        size_t n = 0;
        if (c == NULL || meta == NULL) {
            free(c);
            free(meta);
            log_msg(LOG_ERR, "checkpoint", "out of memory: offsets not committed");
            return;
        }
        for (size_t k = 0; k < o->n; k++) {
            if (rp_is_vid(o->v[k].partition))
                continue;           /* a high-water mark: in the snapshot only */
            struct shard *sh = graph_shard(g, o->v[k].partition);
            struct item *it = NULL;
            for (size_t i = 0; sh != NULL && i < ck->nitems; i++)
                if (ck->items[i].part == sh->id && ck->items[i].gen == sh->gen)
                    it = &ck->items[i];
            if (it == NULL || it->rc < 0 || o->v[k].next < 0)
                continue;           /* unchanged, dropped since, or not stored */
            c[n].partition = o->v[k].partition;
            c[n].next = o->v[k].next;
            if (!it->merged) {
                struct shard_meta m = { .len = it->len, .xxh = it->xxh,
                                        .offset = o->v[k].next, .id = ck->id };
                snprintf(m.obj, sizeof(m.obj), "%s", it->obj);
                if (sh->snap_len > 0 && sh->snap_offset >= 0 && sh->snap_obj[0] != '\0') {
                    snprintf(m.prev, sizeof(m.prev), "%s", sh->snap_obj);
                    m.prev_len = sh->snap_len;
                    m.prev_xxh = sh->snap_xxh;
                    m.prev_offset = sh->snap_offset;
                }
                if (shard_meta_format(&m, meta[n], sizeof(meta[n])) < 0) {
                    log_msg(LOG_ERR, "checkpoint", "partition %" PRId32 ": cannot describe "
                            "%s in a commit: not published", o->v[k].partition, it->obj);
                    it->rc = -EINVAL;
                    continue;
                }
                c[n].meta = meta[n];
                snprintf(sh->pend_obj, sizeof(sh->pend_obj), "%s", it->obj);
                sh->pend_off = o->v[k].next;
            }
            n++;
        }
        if (n > 0)
            src->ops->commit(src, c, n);
        ok += n;
        free(c);
        free(meta);
    }
    for (size_t i = 0; i < ck->nitems; i++) {
        struct item *it = &ck->items[i];
        struct shard *sh = graph_shard(g, it->part);
        if (sh == NULL || sh->gen != it->gen || it->rc < 0)
            continue;
        sh->snap_changes = it->changes;
        sh->snap_id = ck->id;
        snprintf(sh->snap_obj, sizeof(sh->snap_obj), "%s", it->obj);
        sh->snap_len = it->len;
        sh->snap_xxh = it->xxh;
        sh->snap_offset = snapshot_offset(ck->offs, job->nsources, it->part);
        if (ck->store != NULL) {
            ck->stats.uploaded += it->len;
            for (size_t d = 0; d < it->ndel; d++) {    /* deleted: out of the chain */
                for (size_t j = 0; it->del[d][0] != '\0' && j < sh->nchain; j++)
                    if (strcmp(sh->chain[j], it->del[d]) == 0) {
                        memmove(&sh->chain[j], &sh->chain[j + 1],
                                (sh->nchain - j - 1) * sizeof(*sh->chain));
                        sh->nchain--;
                        break;
                    }
            }
            if (shard_chain_push(sh, it->obj) < 0)
                log_msg(LOG_WARNING, "checkpoint", "out of memory: %s will not be deleted "
                        "from the store by this instance", it->obj);
        }
        ck->stats.published++;
    }
    (void)ok;
}

static void publish_done(uv_work_t *w, int status)
{
    struct checkpoints *ck = w->data;
    size_t failed = 0;
    char why[400] = "";
    ck->open_handles--;
    ck->working = 0;
    if (ck->phase != CK_PUBLISHING || !ck->started || status < 0) {
        items_close(ck, 1);         /* stopped meanwhile */
        ck->nitems = 0;
        return;
    }
    for (size_t i = 0; i < ck->nitems; i++)
        if (ck->items[i].rc < 0) {
            failed++;
            ck->stats.store_errors += ck->store != NULL;
            snprintf(why, sizeof(why), "%s", ck->items[i].err);
        }
    commit_shards(ck);
    const struct job *job = ck->host.g->job;
    size_t keep = (size_t)job->state.checkpoints_retained;
    for (size_t i = 0; i < ck->nitems; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/p%" PRId32, ck->dir, ck->items[i].part);
        prune_dir(dir, keep < 2 ? 2 : keep);
    }
    if (failed > 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%zu of %zu shard snapshot%s not stored: %s", failed,
                 ck->nitems, ck->nitems == 1 ? "" : "s", why);
        finish(ck, -EIO, msg);
        return;
    }
    struct chkpt_stats *st = &ck->stats;
    st->last_ms = (uv_hrtime() - ck->started_ns) / 1000000;
    st->last_id = ck->id;
    st->last_at_ms = wall_ms();
    st->ok++;
    LOG(LOG_INFO, "checkpoint", "checkpoint %" PRIu64
        " complete: %zu shard%s, %.1f MB in %" PRIu64 " ms, loop stalled %" PRIu64 " us",
        ck->id, ck->nitems,
        ck->nitems == 1 ? "" : "s", (double)st->last_bytes / 1e6, st->last_ms,
        st->last_stall_us);
    finish(ck, 0, NULL);
}

static void complete(struct checkpoints *ck)
{
    struct chkpt_stats *st = &ck->stats;
    int rc;
    if (ck->kind == CKPT_SAVEPOINT && (rc = mkdirs(ck->final)) < 0) {
        finish(ck, rc, "cannot create the savepoint directory");
        return;
    }
    st->last_bytes = 0;
    for (size_t i = 0; i < ck->nitems; i++) {
        struct item *it = &ck->items[i];
        if (rename(it->tmp, it->final) < 0) {
            rc = -errno;
            char why[PATH_MAX + 64];
            snprintf(why, sizeof(why), "rename to %s: %s", it->final, strerror(-rc));
            finish(ck, rc, why);
            return;
        }
        it->tmp[0] = '\0';
        struct stat sb;
        st->last_bytes += stat(it->final, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", it->final);
        *strrchr(dir, '/') = '\0';
        if (ck->kind == CKPT_CHECKPOINT)
            fsync_dir(dir);
    }
    if (ck->kind == CKPT_SAVEPOINT) {
        fsync_dir(ck->final);
        fsync_dir(ck->spdir);
        st->last_ms = (uv_hrtime() - ck->started_ns) / 1000000;
        st->last_id = ck->id;
        st->last_at_ms = wall_ms();
        st->ok++;
        log_msg(LOG_NOTICE, "checkpoint", "savepoint written to %s (%.1f MB in %" PRIu64 " ms)",
                ck->final, (double)st->last_bytes / 1e6, st->last_ms);
        finish(ck, 0, NULL);
        return;
    }
    fsync_dir(ck->dir);
    if (ck->store != NULL)
        plan_deletes(ck);
    /* only now may the read positions it reflects be published */
    ck->phase = CK_PUBLISHING;
    ck->work.data = ck;
    ck->open_handles++;
    ck->working = 1;
    if (uv_queue_work(ck->loop, &ck->work, publish_work, publish_done) < 0) {
        ck->open_handles--;
        ck->working = 0;
        finish(ck, -EIO, "cannot start the publisher");
    }
}

/* The running one ended (rc 0: complete): tell who asked, then start the
 * savepoint that waited behind it if the run still wants one now. */
static void finish(struct checkpoints *ck, int rc, const char *why)
{
    struct chkpt_stats *st = &ck->stats;
    struct chkpt_record *h = &st->history[st->nhistory++ % CHKPT_HISTORY];
    *h = (struct chkpt_record){
        .id = ck->id, .savepoint = ck->kind == CKPT_SAVEPOINT, .ok = rc == 0,
        .at_ms = wall_ms(), .ms = (uv_hrtime() - ck->started_ns) / 1000000,
        .bytes = rc == 0 ? st->last_bytes : 0, .stall_us = ck->stall_us,
        .shards = ck->nitems,
    };
    if (rc < 0) {
        snprintf(h->why, sizeof(h->why), "%s", why);
        ck->stats.failed++;
        log_msg(LOG_ERR, "checkpoint", "%s %" PRIu64 " failed: %s; processing goes on",
                ck->kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", ck->id, why);
        items_close(ck, 1);
    }
    ck->phase = CK_IDLE;
    ck->child = 0;
    ck->nitems = 0;
    waiters_tell(&ck->now, ck->kind, ck->id, rc == 0 ? ck->final : NULL, rc);
    if (ck->queued && ck->phase == CK_IDLE && ck->started && ck->host.g->job != NULL &&
        ck->host.may_take(ck->host.ud)) {
        ck->queued = 0;
        ck->now = ck->next;
        ck->next.n = 0;
        begin(ck, CKPT_SAVEPOINT);
    }
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    struct checkpoints *ck = h->data;
    int status;
    (void)signum;
    if (ck->child <= 0 || waitpid(ck->child, &status, WNOHANG) != ck->child)
        return;
    ck->child = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ck->phase = CK_ACKING;
        ck->phase_ns = uv_hrtime();
        chkpt_poll(ck);
        return;
    }
    char why[CHILD_WHY + 64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "the writer was killed by signal %d", WTERMSIG(status));
    else if (ck->child_why != NULL && ck->child_why[0] != '\0')
        snprintf(why, sizeof(why), "the writer failed: %.*s", CHILD_WHY, ck->child_why);
    else
        snprintf(why, sizeof(why), "the writer failed (exit %d)", WEXITSTATUS(status));
    finish(ck, WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? -ETIMEDOUT : -EIO, why);
}

void chkpt_poll(struct checkpoints *ck)
{
    if (!ck->started)
        return;
    const struct graph *g = ck->host.g;
    uint64_t now = uv_hrtime();
    if (ck->phase == CK_WRITING && now - ck->started_ns > timeout_ns(ck) && ck->child > 0) {
        log_msg(LOG_ERR, "checkpoint", "%" PRIu64 " is taking too long; stopping its writer",
                ck->id);
        kill(ck->child, SIGKILL);       /* reaped by on_sigchld, which fails it */
        return;
    }
    if (ck->phase != CK_ACKING)
        return;
    for (size_t i = 0; i < g->job->nsinks; i++) {
        const struct sink *s = &g->snk[i];
        if (s->impl != NULL && !s->ops->barrier_done(s)) {
            if (now - ck->phase_ns > timeout_ns(ck))
                finish(ck, -ETIMEDOUT, "the sinks did not acknowledge its writes in time");
            return;
        }
    }
    complete(ck);
}

int chkpt_busy(const struct checkpoints *ck)
{
    return ck->phase != CK_IDLE;
}

const struct chkpt_stats *chkpt_stats(const struct checkpoints *ck)
{
    return &ck->stats;
}

static void on_interval(uv_timer_t *t)
{
    struct checkpoints *ck = t->data;
    /* one at a time: an interval that comes while one runs is skipped */
    if (ck->phase == CK_IDLE && ck->host.g->job != NULL && ck->host.may_take(ck->host.ud)) {
        ck->now.n = 0;
        begin(ck, CKPT_CHECKPOINT);
    }
}

/* ---- setup and teardown ------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    struct checkpoints *ck = h->data;
    ck->open_handles--;
}

int chkpt_new(uv_loop_t *loop, struct checkpoints **out)
{
    struct checkpoints *ck = calloc(1, sizeof(*ck));
    if (ck == NULL)
        return -ENOMEM;
    uv_timer_init(loop, &ck->timer);
    uv_signal_init(loop, &ck->sigchld);
    ck->timer.data = ck->sigchld.data = ck;
    ck->open_handles = 2;
    ck->loop = loop;
    /* the writer's reason for failing, shared with it (NULL: only its exit status) */
    void *m = mmap(NULL, CHILD_WHY, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck->child_why = m == MAP_FAILED ? NULL : m;
    /* this run's epoch: object names are never reused, whatever the ids */
    snprintf(ck->epoch, sizeof(ck->epoch), "%012" PRIx64, (uint64_t)wall_ms());
    *out = ck;
    return 0;
}

int chkpt_setup(struct checkpoints *ck, const struct chkpt_host *host)
{
    const struct job *job = host->g->job;
    ck->host = *host;
    if (strlen(job->state.dir) > 1800) {
        log_msg(LOG_ERR, "checkpoint", "state.dir is too long");
        return -ENAMETOOLONG;
    }
    snprintf(ck->dir, sizeof(ck->dir), "%.1800s/checkpoints/%.128s", job->state.dir, job->name);
    snprintf(ck->spdir, sizeof(ck->spdir), "%.1800s/savepoints", job->state.dir);
    snprintf(ck->root, sizeof(ck->root), "%.1800s/checkpoints", job->state.dir);
    int rc;
    if (strcmp(ck->shared, job->state.shared) != 0 && !ck->working) {
        char err[512];
        store_free(ck->store);
        ck->store = NULL;
        ck->shared[0] = '\0';
        if (job->state.shared[0] != '\0') {
            if ((rc = store_open(job->state.shared, &ck->store, err, sizeof(err))) < 0) {
                log_msg(LOG_ERR, "checkpoint", "state.shared: %s", err);
                return rc;
            }
            snprintf(ck->shared, sizeof(ck->shared), "%s", job->state.shared);
            LOG(LOG_INFO, "checkpoint", "shard snapshots are published to %s",
                store_url(ck->store));
        }
    }
    if ((rc = mkdirs(ck->dir)) < 0 || (rc = mkdirs(ck->spdir)) < 0) {
        log_msg(LOG_ERR, "checkpoint", "cannot create %s: %s", ck->dir, strerror(-rc));
        return rc;
    }
    /* leftovers of checkpoints that never completed */
    DIR *d = opendir(ck->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", ck->dir, e->d_name);
            if (unlink(path) < 0)
                log_msg(LOG_WARNING, "checkpoint", "cannot delete %s: %s", path,
                        strerror(errno));
        }
    }
    if (d != NULL)
        closedir(d);
    uint64_t *ids, max_id = 0;
    size_t n;
    rc = list_ids(ck->dir, &ids, &n, &max_id);
    free(ids);
    d = opendir(ck->dir);                   /* and the shards' files */
    while (rc == 0 && d != NULL && (e = readdir(d)) != NULL) {
        int32_t part;
        char x, dir[PATH_MAX], **names;
        if (sscanf(e->d_name, "p%" SCNd32 "%c", &part, &x) != 1)
            continue;
        snprintf(dir, sizeof(dir), "%s/%s", ck->dir, e->d_name);
        if ((rc = list_shard_files(dir, &names, &n)) < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            uint64_t ep, id;
            if (parse_obj_name(names[i], &ep, &id) && id > max_id)
                max_id = id;
        }
        free_names(names, n);
        /* leftovers of shard files that never completed */
        DIR *pd = opendir(dir);
        struct dirent *pe;
        while (pd != NULL && (pe = readdir(pd)) != NULL) {
            size_t l = strlen(pe->d_name);
            char path[PATH_MAX];
            if (l > 4 && strcmp(pe->d_name + l - 4, ".tmp") == 0) {
                snprintf(path, sizeof(path), "%.3800s/%.255s", dir, pe->d_name);
                unlink(path);
            }
        }
        if (pd != NULL)
            closedir(pd);
    }
    if (d != NULL)
        closedir(d);
    if (rc < 0) {
        log_msg(LOG_ERR, "checkpoint", "out of memory");
        return rc;
    }
    d = opendir(ck->spdir);                 /* savepoints take ids from the same sequence */
    while (d != NULL && (e = readdir(d)) != NULL) {
        char prefix[300];
        int pl = snprintf(prefix, sizeof(prefix), "savepoint-%s-", job->name);
        unsigned long long id;
        if (strncmp(e->d_name, prefix, (size_t)pl) == 0 &&
            sscanf(e->d_name + pl, "%llu", &id) == 1 && id > max_id)
            max_id = id;
    }
    if (d != NULL)
        closedir(d);
    ck->next_id = max_id + 1;
    ck->offs = calloc(job->nsources ? job->nsources : 1, sizeof(*ck->offs));
    if (ck->offs == NULL || ckpt_writer_init(&ck->w, 1) < 0) {
        free(ck->offs);
        ck->offs = NULL;
        log_msg(LOG_ERR, "checkpoint", "out of memory");
        return -ENOMEM;
    }
    uint64_t every = (uint64_t)job->state.checkpoint_interval_ms;
    uv_timer_start(&ck->timer, on_interval, every, every);
    uv_signal_start(&ck->sigchld, on_sigchld, SIGCHLD);
    ck->started = 1;
    return 0;
}

void chkpt_stop(struct checkpoints *ck)
{
    if (ck == NULL || !ck->started)
        return;
    ck->started = 0;
    if (ck->child > 0) {
        kill(ck->child, SIGKILL);
        waitpid(ck->child, NULL, 0);
        ck->child = 0;
    }
    if (!ck->working)
        items_close(ck, 1);
    int running = ck->phase != CK_IDLE;
    ck->phase = CK_IDLE;
    uv_timer_stop(&ck->timer);
    for (size_t s = 0; s < ck->host.g->job->nsources; s++)
        free(ck->offs[s].v);
    free(ck->offs);
    ck->offs = NULL;
    ckpt_writer_free(&ck->w);
    if (running)
        waiters_tell(&ck->now, ck->kind, ck->id, NULL, -ECANCELED);
}

void chkpt_close(struct checkpoints *ck)
{
    if (ck == NULL || ck->closing)
        return;
    chkpt_stop(ck);
    ck->closing = 1;
    if (ck->queued) {
        ck->queued = 0;
        waiters_tell(&ck->next, CKPT_SAVEPOINT, 0, NULL, -ECANCELED);
    }
    uv_close((uv_handle_t *)&ck->timer, on_handle_closed);
    uv_close((uv_handle_t *)&ck->sigchld, on_handle_closed);
}

void chkpt_free(struct checkpoints *ck)
{
    if (ck == NULL)
        return;
    if (ck->open_handles > 0) {     /* a bug of the caller: freeing would crash the loop */
        log_msg(LOG_ERR, "checkpoint", "bug: freed before its handles closed");
        abort();
    }
    store_free(ck->store);
    for (size_t i = 0; i < ck->capitems; i++)
        free(ck->items[i].del);
    free(ck->items);
    if (ck->child_why != NULL)
        munmap(ck->child_why, CHILD_WHY);
    free(ck);
}
