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

#include "../engine/evtime.h"
#include "cli.h"
#include "run.h"

#define MIN_TIMEOUT_MS 60000        /* a checkpoint may take this long at least */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t timeout_ns(const struct runtime *rt)
{
    int64_t ms = 2 * rt->g.job->state.checkpoint_interval_ms;
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

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
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
    struct runtime *rt = ud;
    struct engine_offset *slot = offsets_slot(&rt->g.offs[source], partition);
    if (slot != NULL)
        slot->next = next;
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
static int restore_one(struct runtime *rt, const char *path)
{
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
    if (strcmp(info.job, rt->g.job->name) != 0) {
        log_msg(LOG_ERR, "restore", "%s belongs to job %s, not %s", path, info.job,
                rt->g.job->name);
        ckpt_close(r);
        return -EINVAL;
    }
    struct engine_restore_cb cb = { rt, on_restored_offset, on_restore_note };
    rc = engine_restore(rt->g.eng, r, rt->allow_non_restored, &cb, err, sizeof(err));
    ckpt_close(r);
    if (rc < 0) {
        log_msg(LOG_ERR, "restore", "%s: %s", path, err);
        return rc;
    }
    struct engine_stats st;
    engine_get_stats(rt->g.eng, &st);
    char when[64];
    evtime_format(info.created_ms, when);
    log_msg(LOG_NOTICE, "restore", "restored %s %" PRIu64 " taken %s: %" PRIu64 " keys",
            info.kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", info.id, when,
            st.state_keys);
    snprintf(rt->ck.restored_from, sizeof(rt->ck.restored_from), "%s", path);
    return 0;
}

static void reset_offsets(struct runtime *rt)
{
    for (size_t s = 0; s < rt->g.job->nsources; s++)
        rt->g.offs[s].n = 0;
}

int chkpt_restore(struct runtime *rt)
{
    char path[PATH_MAX];
    if (rt->from_savepoint != NULL) {
        struct stat st;
        if (stat(rt->from_savepoint, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(path, sizeof(path), "%s/state.sluice", rt->from_savepoint);
        else
            snprintf(path, sizeof(path), "%s", rt->from_savepoint);
        int rc = restore_one(rt, path);
        if (rc < 0)
            log_msg(LOG_ERR, "restore", "cannot restore from %s", path);
        return rc;
    }
    uint64_t *ids;
    size_t n;
    int rc = list_ids(rt->ck.dir, &ids, &n, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/chk-%" PRIu64 ".sluice", rt->ck.dir, ids[i]);
        rc = restore_one(rt, path);
        if (rc == 0)
            goto done;
        if (rc == -EPERM || rc == -ENOMEM)
            goto done;
        /* damaged or another job's: start clean and try the one before */
        reset_offsets(rt);
        rc = rt_new_engine(rt);
        if (rc == 0 && i + 1 < n)
            log_msg(LOG_WARNING, "restore", "trying the previous checkpoint");
    }
    if (rc < 0)
        log_msg(LOG_ERR, "restore", "%s: %s", rt->ck.dir, strerror(-rc));
    else if (n > 0)
        log_msg(LOG_WARNING, "restore", "no usable checkpoint: starting without state");
    else
        LOG(LOG_INFO, "restore", "no checkpoint in %s: starting without state", rt->ck.dir);
done:
    free(ids);
    return rc;
}

/* ---- taking ------------------------------------------------------------------------------ */

static void finish(struct runtime *rt, int ok, const char *why);

static void child_main(struct runtime *rt, int fd)
{
    struct checkpoints *ck = &rt->ck;
    ckpt_write_header(&ck->w, fd, ck->kind, ck->id, wall_ms(), rt->g.job->name);
    int rc = engine_snapshot(rt->g.eng, &ck->w, graph_offsets, &rt->g);
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

void chkpt_take(struct runtime *rt, enum ckpt_kind kind)
{
    struct checkpoints *ck = &rt->ck;
    if (rt->g.eng == NULL || !ck->started)
        return;
    if (ck->phase != CK_IDLE) {
        if (kind == CKPT_SAVEPOINT) {
            ck->savepoint_wanted = 1;
            LOG(LOG_INFO, "checkpoint", "a checkpoint is running; the savepoint follows it");
        }
        return;
    }
    ck->kind = kind;
    ck->id = ck->next_id++;
    snprintf(ck->tmp, sizeof(ck->tmp), "%s/chk-%" PRIu64 ".sluice.tmp", ck->dir, ck->id);
    if (kind == CKPT_SAVEPOINT)
        snprintf(ck->final, sizeof(ck->final), "%s/savepoint-%s-%" PRIu64 "/state.sluice",
                 ck->spdir, rt->g.job->name, ck->id);
    else
        snprintf(ck->final, sizeof(ck->final), "%s/chk-%" PRIu64 ".sluice", ck->dir, ck->id);
    for (size_t i = 0; i < rt->g.job->nsinks; i++) {
        struct sink *s = &rt->g.snk[i];
        if (s->impl != NULL && s->ops->barrier(s) < 0) {
            finish(rt, 0, "a sink cannot make its writes durable");
            return;
        }
    }
    for (size_t s = 0; s < rt->g.job->nsources; s++) {
        struct offsets *o = &ck->offs[s];
        o->n = 0;
        for (size_t i = 0; i < rt->g.offs[s].n; i++) {
            struct engine_offset *slot = offsets_slot(o, rt->g.offs[s].v[i].partition);
            if (slot != NULL)
                *slot = rt->g.offs[s].v[i];
        }
    }
    int fd = open(ck->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "%s: %s", ck->tmp, strerror(errno));
        finish(rt, 0, why);
        return;
    }
    uint64_t t0 = uv_hrtime();
    pid_t pid = fork();
    if (pid == 0)
        child_main(rt, fd);             /* never returns */
    uint64_t t1 = uv_hrtime();
    close(fd);
    if (pid < 0) {
        char why[128];
        snprintf(why, sizeof(why), "fork: %s", strerror(errno));
        finish(rt, 0, why);
        return;
    }
    ck->child = pid;
    ck->phase = CK_WRITING;
    ck->started_ns = ck->phase_ns = t0;
    ck->last_stall_us = (t1 - t0) / 1000;
    if (ck->last_stall_us > ck->max_stall_us)
        ck->max_stall_us = ck->last_stall_us;
    LOG(LOG_DEBUG, "checkpoint", "%" PRIu64 " started (fork took %" PRIu64 " us)", ck->id,
        ck->last_stall_us);
}

static void prune(struct runtime *rt)
{
    struct checkpoints *ck = &rt->ck;
    uint64_t *ids;
    size_t n;
    if (list_ids(ck->dir, &ids, &n, NULL) < 0) {
        log_msg(LOG_WARNING, "checkpoint", "out of memory: old checkpoints are kept");
        n = 0;                      /* a partial list could name the wrong ones */
    }
    for (size_t i = (size_t)rt->g.job->state.checkpoints_retained; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/chk-%" PRIu64 ".sluice", ck->dir, ids[i]);
        if (unlink(path) < 0)
            log_msg(LOG_WARNING, "checkpoint", "cannot delete %s: %s", path, strerror(errno));
    }
    free(ids);
}

static void complete(struct runtime *rt)
{
    struct checkpoints *ck = &rt->ck;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", ck->final);
    *strrchr(dir, '/') = '\0';
    if (ck->kind == CKPT_SAVEPOINT && mkdirs(dir) < 0) {
        finish(rt, 0, "cannot create the savepoint directory");
        return;
    }
    if (rename(ck->tmp, ck->final) < 0) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "rename to %s: %s", ck->final, strerror(errno));
        finish(rt, 0, why);
        return;
    }
    fsync_dir(dir);
    if (ck->kind == CKPT_SAVEPOINT)
        fsync_dir(ck->spdir);
    /* only now may the read positions it reflects be committed */
    for (size_t s = 0; s < rt->g.job->nsources; s++)
        if (rt->g.src[s].impl != NULL)
            rt->g.src[s].ops->commit(&rt->g.src[s], ck->offs[s].v, ck->offs[s].n);
    struct stat st;
    ck->last_bytes = stat(ck->final, &st) == 0 ? (uint64_t)st.st_size : 0;
    ck->last_ms = (uv_hrtime() - ck->started_ns) / 1000000;
    ck->last_id = ck->id;
    ck->last_at_ms = wall_ms();
    ck->ok++;
    if (ck->kind == CKPT_SAVEPOINT) {
        log_msg(LOG_NOTICE, "checkpoint", "savepoint written to %s (%.1f MB in %" PRIu64 " ms)",
                dir, (double)ck->last_bytes / 1e6, ck->last_ms);
    } else {
        prune(rt);
        LOG(LOG_INFO, "checkpoint", "checkpoint %" PRIu64 " complete: %.1f MB in %" PRIu64
            " ms, loop stalled %" PRIu64 " us", ck->id, (double)ck->last_bytes / 1e6,
            ck->last_ms, ck->last_stall_us);
    }
    finish(rt, 1, NULL);
}

static void finish(struct runtime *rt, int ok, const char *why)
{
    struct checkpoints *ck = &rt->ck;
    if (!ok) {
        ck->failed++;
        log_msg(LOG_ERR, "checkpoint", "%s %" PRIu64 " failed: %s; processing goes on",
                ck->kind == CKPT_SAVEPOINT ? "savepoint" : "checkpoint", ck->id, why);
        if (ck->tmp[0] != '\0')
            unlink(ck->tmp);
    }
    ck->phase = CK_IDLE;
    ck->child = 0;
    ck->tmp[0] = '\0';
    if (ck->kind == CKPT_SAVEPOINT)
        rt_savepoint_done(rt, ok ? ck->final : NULL);
    if (ck->savepoint_wanted && rt->state == RUN_RUNNING) {
        ck->savepoint_wanted = 0;
        chkpt_take(rt, CKPT_SAVEPOINT);
    }
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    struct checkpoints *ck = &rt->ck;
    int status;
    (void)signum;
    if (ck->child <= 0 || waitpid(ck->child, &status, WNOHANG) != ck->child)
        return;
    ck->child = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ck->phase = CK_ACKING;
        ck->phase_ns = uv_hrtime();
        chkpt_poll(rt);
        return;
    }
    char why[128];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "the writer was killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof(why), "the writer failed (exit %d)", WEXITSTATUS(status));
    finish(rt, 0, why);
}

void chkpt_poll(struct runtime *rt)
{
    struct checkpoints *ck = &rt->ck;
    uint64_t now = uv_hrtime();
    if (ck->phase == CK_WRITING && now - ck->started_ns > timeout_ns(rt) && ck->child > 0) {
        log_msg(LOG_ERR, "checkpoint", "%" PRIu64 " is taking too long; stopping its writer",
                ck->id);
        kill(ck->child, SIGKILL);       /* reaped by on_sigchld, which fails it */
        return;
    }
    if (ck->phase != CK_ACKING)
        return;
    for (size_t i = 0; i < rt->g.job->nsinks; i++) {
        struct sink *s = &rt->g.snk[i];
        if (s->impl != NULL && !s->ops->barrier_done(s)) {
            if (now - ck->phase_ns > timeout_ns(rt))
                finish(rt, 0, "the sinks did not acknowledge its writes in time");
            return;
        }
    }
    complete(rt);
}

int chkpt_busy(const struct runtime *rt)
{
    return rt->ck.phase != CK_IDLE;
}

static void on_interval(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    if (rt->state == RUN_RUNNING)
        chkpt_take(rt, CKPT_CHECKPOINT);
}

static void on_sigusr1(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    (void)signum;
    if (run_state_reloading(rt->state)) {
        log_msg(LOG_NOTICE, "checkpoint", "SIGUSR1 during a reload: the reload's savepoint "
                "is the savepoint");
        return;
    }
    if (rt->state != RUN_RUNNING) {
        log_msg(LOG_NOTICE, "checkpoint", "SIGUSR1 while stopping: the final checkpoint "
                "is the restore point");
        return;
    }
    LOG(LOG_NOTICE, "checkpoint", "SIGUSR1: taking a savepoint");
    chkpt_take(rt, CKPT_SAVEPOINT);
}

int chkpt_setup(struct runtime *rt)
{
    struct checkpoints *ck = &rt->ck;
    const struct job *job = rt->g.job;
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
            unlink(path);
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
        log_msg(LOG_ERR, "checkpoint", "out of memory");
        return -ENOMEM;
    }
    if (!ck->handles) {             /* kept across reloads: SIGUSR1 is never unhandled */
        uv_timer_init(&rt->loop, &ck->timer);
        uv_signal_init(&rt->loop, &ck->sigchld);
        uv_signal_init(&rt->loop, &ck->sigusr1);
        ck->timer.data = ck->sigchld.data = ck->sigusr1.data = rt;
        ck->handles = 1;
    }
    uint64_t every = (uint64_t)job->state.checkpoint_interval_ms;
    uv_timer_start(&ck->timer, on_interval, every, every);
    uv_signal_start(&ck->sigchld, on_sigchld, SIGCHLD);
    uv_signal_start(&ck->sigusr1, on_sigusr1, SIGUSR1);
    ck->started = 1;
    return 0;
}

void chkpt_stop(struct runtime *rt)
{
    struct checkpoints *ck = &rt->ck;
    if (!ck->started)
        return;
    ck->started = 0;
    if (ck->child > 0) {
        kill(ck->child, SIGKILL);
        waitpid(ck->child, NULL, 0);
        unlink(ck->tmp);
        ck->child = 0;
    }
    ck->phase = CK_IDLE;
    uv_timer_stop(&ck->timer);
    for (size_t s = 0; s < rt->g.job->nsources; s++)
        free(ck->offs[s].v);
    free(ck->offs);
    ck->offs = NULL;
    ckpt_writer_free(&ck->w);
}

void chkpt_close(struct runtime *rt)
{
    struct checkpoints *ck = &rt->ck;
    chkpt_stop(rt);
    if (!ck->handles)
        return;
    ck->handles = 0;
    uv_close((uv_handle_t *)&ck->timer, NULL);
    uv_close((uv_handle_t *)&ck->sigchld, NULL);
    uv_close((uv_handle_t *)&ck->sigusr1, NULL);
}
