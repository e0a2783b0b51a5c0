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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../connectors/log.h"
#include "../engine/evtime.h"
#include "checkpoint.h"

#define MIN_TIMEOUT_MS 60000        /* a checkpoint may take this long at least */
#define WAITERS 4                   /* callbacks told of one take's end */

enum ckpt_phase { CK_IDLE, CK_WRITING, CK_ACKING };

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
    char tmp[PATH_MAX], final[PATH_MAX];
    uint64_t started_ns, phase_ns;
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

static void on_restored_offset(void *ud, int source, int32_t partition, int64_t next)
{
    struct checkpoints *ck = ud;
    struct engine_offset *slot = offsets_slot(&ck->host.g->offs[source], partition);
    if (slot != NULL)
        slot->next = next;
    else
        ck->restore_rc = -ENOMEM;   /* reported when engine_restore returns */
}

static void on_restore_note(void *ud, const char *msg)
{
    (void)ud;
    log_msg(LOG_WARNING, "restore", "%s", msg);
}

/*
 * Restores one file.  Returns 0, or a negative errno-style code:
 *   -EPERM   the job refuses the state (a changed operator or source): a
 *            configuration error, nothing else is tried;
 *   -ENOMEM  the host cannot map or hold it: fatal, and no older file is
 *            tried, for the file is fine and falling back (at worst to no
 *            state) would let the next checkpoints replace it;
 *   other    the file is not usable (damaged, another job's): the caller
 *            tries the one before.
 */
static int restore_one(struct checkpoints *ck, const char *path, int allow_non_restored)
{
    const struct job *job = ck->host.g->job;
    struct ckpt_reader *r;
    struct ckpt_info info;
    char err[512];
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
    struct engine_restore_cb cb = { ck, on_restored_offset, on_restore_note };
    ck->restore_rc = 0;
    rc = engine_restore(ck->host.g->eng, r, allow_non_restored, &cb, err, sizeof(err));
    ckpt_close(r);
    if (rc < 0) {
        log_msg(LOG_ERR, "restore", "%s: %s", path, err);
        return rc;
    }
    if (ck->restore_rc < 0) {
        log_msg(LOG_ERR, "restore", "%s: out of memory (read positions)", path);
        return ck->restore_rc;
    }
    struct engine_stats st;
    engine_get_stats(ck->host.g->eng, &st);
    char when[64];
    evtime_format(info.created_ms, when);
    log_msg(LOG_NOTICE, "restore", "restored %s %" PRIu64 " taken %s: %" PRIu64 " keys",
            info.kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", info.id, when,
            st.state_keys);
    snprintf(ck->stats.restored_from, sizeof(ck->stats.restored_from), "%s", path);
    return 0;
}

int chkpt_restore(struct checkpoints *ck, const char *from, int allow_non_restored)
{
    char path[PATH_MAX];
    if (from != NULL) {
        struct stat st;
        if (stat(from, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(path, sizeof(path), "%s/state.sluice", from);
        else
            snprintf(path, sizeof(path), "%s", from);
        int rc = restore_one(ck, path, allow_non_restored);
        if (rc < 0)
            log_msg(LOG_ERR, "restore", "cannot restore from %s", path);
        return rc;
    }
    uint64_t *ids;
    size_t n;
    int rc = list_ids(ck->dir, &ids, &n, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/chk-%" PRIu64 ".sluice", ck->dir, ids[i]);
        rc = restore_one(ck, path, allow_non_restored);
        if (rc == 0)
            goto done;
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

/* ---- taking ------------------------------------------------------------------------------ */

static void finish(struct checkpoints *ck, int rc, const char *why);

/* Asks the source to commit a checkpoint's read positions (without
 * metadata), in chunks, so nothing is allocated for it. */
static void commit_positions(struct source *src, const struct offsets *o)
{
    struct source_commit c[64];
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++) {
        c[n++] = (struct source_commit){ o->v[i].partition, o->v[i].next, NULL };
        if (n == sizeof(c) / sizeof(c[0]) || i + 1 == o->n) {
            src->ops->commit(src, c, n);
            n = 0;
        }
    }
}

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

static void child_main(struct checkpoints *ck, int fd)
{
    const struct graph *g = ck->host.g;
    ckpt_write_header(&ck->w, fd, ck->kind, ck->id, wall_ms(), g->job->name);
    int rc = engine_snapshot(g->eng, &ck->w, graph_offsets, ck->host.g);
    if (rc == 0)
        rc = ckpt_finish(&ck->w);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        log_msg(LOG_ERR, "checkpoint", "writing %s: %s", ck->tmp, strerror(-rc));
    _exit(rc < 0 ? 1 : 0);
}

/* Starts one (ck->now says who to tell): barriers, read positions, fork.
 * A failure here ends it at once, through finish(). */
static void begin(struct checkpoints *ck, enum ckpt_kind kind)
{
    struct graph *g = ck->host.g;
    const struct job *job = g->job;
    ck->kind = kind;
    ck->id = ck->next_id++;
    snprintf(ck->tmp, sizeof(ck->tmp), "%s/chk-%" PRIu64 ".sluice.tmp", ck->dir, ck->id);
    if (kind == CKPT_SAVEPOINT)
        snprintf(ck->final, sizeof(ck->final), "%s/savepoint-%s-%" PRIu64 "/state.sluice",
                 ck->spdir, job->name, ck->id);
    else
        snprintf(ck->final, sizeof(ck->final), "%s/chk-%" PRIu64 ".sluice", ck->dir, ck->id);
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
    int fd = open(ck->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = -errno;
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "%s: %s", ck->tmp, strerror(-rc));
        finish(ck, rc, why);
        return;
    }
    uint64_t t0 = uv_hrtime();
    pid_t pid = fork();
    if (pid == 0)
        child_main(ck, fd);             /* never returns */
    int fork_errno = errno;
    uint64_t t1 = uv_hrtime();
    close(fd);
    if (pid < 0) {
        char why[128];
        snprintf(why, sizeof(why), "fork: %s", strerror(fork_errno));
        finish(ck, -fork_errno, why);
        return;
    }
    ck->child = pid;
    ck->phase = CK_WRITING;
    ck->started_ns = ck->phase_ns = t0;
    ck->stats.last_stall_us = (t1 - t0) / 1000;
    if (ck->stats.last_stall_us > ck->stats.max_stall_us)
        ck->stats.max_stall_us = ck->stats.last_stall_us;
    LOG(LOG_DEBUG, "checkpoint", "%" PRIu64 " started (fork took %" PRIu64 " us)", ck->id,
        ck->stats.last_stall_us);
}

int chkpt_take(struct checkpoints *ck, enum ckpt_kind kind, chkpt_done_fn on_done, void *ud)
{
    if (!ck->started || ck->host.g->eng == NULL)
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

static void prune(struct checkpoints *ck)
{
    uint64_t *ids;
    size_t n;
    if (list_ids(ck->dir, &ids, &n, NULL) < 0) {
        log_msg(LOG_WARNING, "checkpoint", "out of memory: old checkpoints are kept");
        n = 0;                      /* a partial list could name the wrong ones */
    }
    for (size_t i = (size_t)ck->host.g->job->state.checkpoints_retained; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/chk-%" PRIu64 ".sluice", ck->dir, ids[i]);
        if (unlink(path) < 0)
            log_msg(LOG_WARNING, "checkpoint", "cannot delete %s: %s", path, strerror(errno));
    }
    free(ids);
}

static void complete(struct checkpoints *ck)
{
    struct graph *g = ck->host.g;
    struct chkpt_stats *st = &ck->stats;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", ck->final);
    *strrchr(dir, '/') = '\0';
    int rc;
    if (ck->kind == CKPT_SAVEPOINT && (rc = mkdirs(dir)) < 0) {
        finish(ck, rc, "cannot create the savepoint directory");
        return;
    }
    if (rename(ck->tmp, ck->final) < 0) {
        rc = -errno;
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "rename to %s: %s", ck->final, strerror(-rc));
        finish(ck, rc, why);
        return;
    }
    fsync_dir(dir);
    if (ck->kind == CKPT_SAVEPOINT)
        fsync_dir(ck->spdir);
    /* only now may the read positions it reflects be committed */
    for (size_t s = 0; s < g->job->nsources; s++)
        if (g->src[s].impl != NULL)
            commit_positions(&g->src[s], &ck->offs[s]);
    struct stat sb;
    st->last_bytes = stat(ck->final, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    st->last_ms = (uv_hrtime() - ck->started_ns) / 1000000;
    st->last_id = ck->id;
    st->last_at_ms = wall_ms();
    st->ok++;
    if (ck->kind == CKPT_SAVEPOINT) {
        log_msg(LOG_NOTICE, "checkpoint", "savepoint written to %s (%.1f MB in %" PRIu64 " ms)",
                dir, (double)st->last_bytes / 1e6, st->last_ms);
    } else {
        prune(ck);
        LOG(LOG_INFO, "checkpoint", "checkpoint %" PRIu64 " complete: %.1f MB in %" PRIu64
            " ms, loop stalled %" PRIu64 " us", ck->id, (double)st->last_bytes / 1e6,
            st->last_ms, st->last_stall_us);
    }
    finish(ck, 0, NULL);
}

/* The running one ended (rc 0: complete): tell who asked, then start the
 * savepoint that waited behind it if the run still wants one now. */
static void finish(struct checkpoints *ck, int rc, const char *why)
{
    if (rc < 0) {
        ck->stats.failed++;
        log_msg(LOG_ERR, "checkpoint", "%s %" PRIu64 " failed: %s; processing goes on",
                ck->kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", ck->id, why);
        if (ck->tmp[0] != '\0')
            unlink(ck->tmp);
    }
    ck->phase = CK_IDLE;
    ck->child = 0;
    ck->tmp[0] = '\0';
    waiters_tell(&ck->now, ck->kind, ck->id, rc == 0 ? ck->final : NULL, rc);
    if (ck->queued && ck->phase == CK_IDLE && ck->started && ck->host.g->eng != NULL &&
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
    char why[128];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "the writer was killed by signal %d", WTERMSIG(status));
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
    if (ck->phase == CK_IDLE && ck->host.g->eng != NULL && ck->host.may_take(ck->host.ud)) {
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
    int rc;
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
        unlink(ck->tmp);
        ck->child = 0;
    }
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
    free(ck);
}
