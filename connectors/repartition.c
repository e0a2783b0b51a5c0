/*
 * repartition.c - stage 1 of a repartitioning (config/job.h, SRC_STAGE1).
 * Placeholder until it is written: it fails to start.
 */
#include <errno.h>

#include "connector.h"
#include "log.h"

static int rp_start(struct source *s)
{
    log_msg(LOG_ERR, s->name, "repartitioning is not built yet");
    return -ENOSYS;
}

static void rp_pause(struct source *s) { (void)s; }
static void rp_resume(struct source *s) { (void)s; }
static void rp_commit(struct source *s, const struct source_commit *c, size_t n)
{
    (void)s; (void)c; (void)n;
}
static int rp_flush_commits(struct source *s, int timeout_ms)
{
    (void)s; (void)timeout_ms;
    return 0;
}
static void rp_commit_stats(const struct source *s, struct source_commit_stats *out)
{
    (void)s;
    *out = (struct source_commit_stats){ 0 };
}
static int64_t rp_lag(const struct source *s, int32_t partition, int64_t next)
{
    (void)s; (void)partition; (void)next;
    return -1;
}
static void rp_close(struct source *s, void (*done)(struct source *))
{
    done(s);
}

const struct source_ops repartition_source_ops = {
    .type = "repartition",
    .start = rp_start,
    .pause = rp_pause,
    .resume = rp_resume,
    .commit = rp_commit,
    .flush_commits = rp_flush_commits,
    .commit_stats = rp_commit_stats,
    .lag = rp_lag,
    .close = rp_close,
};
