/*
 * kafka_source.c - a Kafka topic through librdkafka's high-level consumer.
 *
 * Wiring into the loop: every event of the consumer (messages, rebalances,
 * errors) is routed to the consumer queue, and librdkafka writes a byte to
 * a pipe when that queue goes from empty to non-empty
 * (rd_kafka_queue_io_event_enable).  A uv_poll on the pipe wakes the loop;
 * a uv_idle "pump" then drains the queue in batches of up to 1024 messages
 * per loop iteration until it is empty, so a busy topic never starves the
 * loop's timers and sinks, and an idle one costs no CPU at all: no busy
 * polling and no extra thread.  A 500 ms timer keeps serving the queue
 * while the source is paused, so librdkafka's callbacks run and the
 * consumer does not exceed max.poll.interval.ms and leave its group.
 *
 * Offsets belong to sluice: auto-commit and auto offset store are off.  On
 * assignment (in the rebalance callback) the group's committed offsets and
 * metadata of the new partitions are read (rd_kafka_committed) and handed
 * to the host, which installs each partition's state and says where it
 * resumes.  A revoked partition keeps nothing here: when it comes back,
 * the host decides again from the group's commit.  Within one assignment
 * each partition remembers the next offset it expects, so a message
 * redelivered after a pause or a seek is never applied twice.
 *
 * Commits (the "commits" section below): a complete checkpoint asks for
 * positions (ks_commit); each partition keeps the newest one asked until
 * the group confirms it, retrying what passes ("rebalance in progress") and
 * reporting every outcome to the host.  Nothing goes out while the group
 * rebalances (a commit queued behind our own JoinGroup would make
 * librdkafka take the assignment for lost).  A revocation commits what is
 * pending before the partitions go; a loss drops it; the end of a run
 * flushes it synchronously (ks_flush_commits).
 *
 * Rebalances: assigned partitions are reported to the host (the engine
 * holds the watermark back for them until their first record or until
 * they are idle), revoked ones leave the watermark computation.  The
 * assignor is cooperative-sticky for a job with one Kafka source and range
 * for several (a join needs partition p of both topics on one instance);
 * SLUICE_INSTANCE_ID makes the consumer a static member.  In --bounded
 * mode each assigned partition's high watermark is taken when it is
 * assigned; a partition that reaches it (or resumes at or past it) is
 * paused and reported as ended, and when every assigned partition has
 * ended the source is done; an instance the group leaves without any
 * partition for EMPTY_GRACE_MS is done too.
 *
 * Its settings (brokers, topic, group, start, properties) are declared in
 * kafka_source_map below and read by the job loader into a struct
 * kafka_source_conf; the librdkafka properties sluice sets itself are
 * refused there, at load time.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "kafka_common.h"
#include "log.h"

#define BATCH 1024
#define KEEPALIVE_MS 500

/* ---- settings -------------------------------------------------------------------- */

static const struct kafka_source_conf *ks_conf(const struct source *s)
{
    return s->js->conf;
}

static const char *const ks_starts[] = { "earliest", "latest", NULL };

static const char *const consumer_owned[] = {
    "bootstrap.servers", "set it with 'brokers'",
    "group.id", "set it with 'group'",
    "enable.auto.commit", "offsets are committed with checkpoints",
    "enable.auto.offset.store", "offsets are committed with checkpoints",
    "auto.offset.reset", "set it with 'start'",
    NULL, NULL,
};

/* The group defaults to the job's name, read before any source. */
static void ks_validate(struct cm_ctx *c, void *conf)
{
    struct kafka_source_conf *cf = conf;
    const struct job *job = cm_job(c);
    if (cf->group == NULL)
        cf->group = arena_printf(cm_arena(c), "sluice-%s", job->name ? job->name : "job");
}

static const struct cm_entry kafka_source_entries[] = {
    { .key = "brokers", .type = CM_STR, .flags = CM_REQUIRED,
      .offset = offsetof(struct kafka_source_conf, brokers),
      .desc = "bootstrap servers, or embedded" },
    { .key = "topic", .type = CM_STR, .flags = CM_REQUIRED | CM_IDENTITY,
      .offset = offsetof(struct kafka_source_conf, topic), .desc = "the topic to consume" },
    { .key = "group", .type = CM_STR, .offset = offsetof(struct kafka_source_conf, group),
      .desc = "the consumer group (default sluice-<job>)" },
    { .key = "start", .type = CM_ENUM, .names = ks_starts, .dflt = START_EARLIEST,
      .offset = offsetof(struct kafka_source_conf, start),
      .desc = "where to begin without a checkpoint" },
    { .key = "properties", .type = CM_PROPS, .owned = consumer_owned,
      .offset = offsetof(struct kafka_source_conf, props),
      .desc = "librdkafka consumer settings, passed through" },
    { .key = NULL },
};

static const struct cm_map kafka_source_map = { kafka_source_entries, ks_validate };

/* conn_type.repartition_conf: the same brokers, group and properties,
 * reading the repartition topic from its beginning (records of it that
 * stage 2 has applied are purged, so the beginning is what is left). */
static const void *kafka_repartition_conf(struct arena *a, const void *conf, const char *topic)
{
    const struct kafka_source_conf *in = conf;
    struct kafka_source_conf *cf = arena_alloc(a, sizeof(*cf));
    const char *t = arena_strdup(a, topic);
    if (cf == NULL || t == NULL)
        return NULL;
    *cf = *in;
    cf->topic = t;
    cf->start = START_EARLIEST;
    return cf;
}

static void kafka_source_print(const void *conf, FILE *out)
{
    const struct kafka_source_conf *cf = conf;
    fprintf(out, " topic=%s brokers=%s group=%s start=%s", cf->topic, cf->brokers, cf->group,
            ks_starts[cf->start]);
}

/* ---- partitions ------------------------------------------------------------------- */

/* A partition of the topic, owned or once owned.  While it is not owned
 * (assigned == 0) nothing of it is kept: its position, its end and its
 * pending commit went with it, and when it comes back the host decides
 * from the group's commit where it resumes. */
struct kpart {
    int32_t id;
    int64_t next;                   /* next offset expected; -1 before the first */
    int64_t end;                    /* bounded: the high watermark at assignment */
    int ended;
    int assigned;                   /* owned now */
    /* the commit asked for and not confirmed yet */
    int64_t want;                   /* the newest position asked; -1: none */
    char *meta;                     /* its metadata (owned), NULL: none */
    size_t meta_len;
    int64_t sent;                   /* an asynchronous commit in flight; -1: none */
    uint64_t retry_at;              /* loop time (ms) before which it is not retried */
    unsigned tries;                 /* failed attempts of `want` in a row */
    unsigned stale;                 /* of which with a stale generation */
    /* a repartition source: records below `purge` are applied and committed,
     * and may be deleted from the topic; below `purged` they are */
    int64_t purge, purged;
};

struct kafka_src {
    struct source *s;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipe[2];
    uv_poll_t poll;
    uv_idle_t pump;
    uv_timer_t keepalive;
    int paused, closing, nclosed, finished, have_poll;
    uint64_t empty_since;           /* bounded: loop time of an assignment that left us none */
    uint64_t hold_until;            /* a rebalance runs: no commit goes out before (ms) */
    int steady;                     /* the member's join state is "steady" (statistics) */
    struct kpart *parts;
    size_t nparts, capparts;
    struct source_commit_stats stats;
    rd_kafka_message_t *msgs[BATCH];
    struct engine_in ahead[BATCH];  /* a run of one partition's records, for prefetch */
    struct log_rate err_rate, commit_rate;
    /* a repartition source (SRC_REPARTITION) */
    int rp;
    rd_kafka_queue_t *admin_q;      /* DeleteRecords' results */
    int purging;                    /* a DeleteRecords request is out */
    int purge_off;                  /* the broker cannot delete records: not asked again */
    uint64_t purged;                /* partitions purged */
    void (*done)(struct source *);
};

static struct kpart *part_find(struct kafka_src *k, int32_t id)
{
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].id == id)
            return &k->parts[i];
    return NULL;
}

/* The partition's entry, made when it is first seen; NULL: out of memory. */
static struct kpart *part_get(struct kafka_src *k, int32_t id)
{
    struct kpart *p = part_find(k, id);
    if (p != NULL)
        return p;
    if (k->nparts == k->capparts) {
        size_t cap = k->capparts ? k->capparts * 2 : 16;
        struct kpart *np = realloc(k->parts, cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        k->parts = np;
        k->capparts = cap;
    }
    p = &k->parts[k->nparts++];
    *p = (struct kpart){ .id = id, .next = -1, .end = -1, .want = -1, .sent = -1 };
    return p;
}

static size_t owned(const struct kafka_src *k)
{
    size_t n = 0;
    for (size_t i = 0; i < k->nparts; i++)
        n += k->parts[i].assigned != 0;
    return n;
}

/* How long an instance that owns nothing waits, in bounded mode, before it
 * decides the group has nothing for it: longer than the second round of a
 * cooperative rebalance (which hands over what the first one revoked). */
#define EMPTY_GRACE_MS 3000

static void check_finished(struct kafka_src *k)
{
    const struct source_host *h = k->s->host;
    size_t n = 0;
    if (!h->bounded || k->finished)
        return;
    for (size_t i = 0; i < k->nparts; i++) {
        if (!k->parts[i].assigned)
            continue;
        if (!k->parts[i].ended)
            return;
        n++;
    }
    if (n == 0) {
        /* nothing owned: finished only once a rebalance has left us none for
         * a while (more instances than partitions, or all of them taken) */
        if (k->empty_since == 0 || uv_now(h->loop) - k->empty_since < EMPTY_GRACE_MS)
            return;
        k->finished = 1;
        LOG(LOG_INFO, k->s->name, "the group has given this instance no partition for %d s; "
            "nothing to read", EMPTY_GRACE_MS / 1000);
        h->finished(h->ud, k->s->index);
        return;
    }
    k->finished = 1;
    LOG(LOG_INFO, k->s->name, "every assigned partition has reached its end offset");
    h->finished(h->ud, k->s->index);
}

static void pause_one(struct kafka_src *k, int32_t id)
{
    kafka_pause_one(k->rk, ks_conf(k->s)->topic, id, 1);
}

/* The partition has nothing more to give in bounded mode.  pause: it is
 * assigned already (during a rebalance it is paused once assigned). */
static void part_end(struct kafka_src *k, struct kpart *p, int pause)
{
    const struct source_host *h = k->s->host;
    if (p->ended)
        return;
    p->ended = 1;
    if (pause)
        pause_one(k, p->id);
    h->ended(h->ud, k->s->index, p->id);
}

/* ---- commits ------------------------------------------------------------------- */

/*
 * Each partition keeps the newest position asked for (ks_commit) until the
 * group confirms it.  Commits go out asynchronously (rd_kafka_commit_queue
 * on the consumer queue, so their results come back through the queue the
 * loop already serves); a result is matched to the partition by offset.
 * The coordinator's answer decides what happens next:
 *   - committed: the host is told (0);
 *   - "rebalance in progress" and other errors that pass: tried again with
 *     a backoff, while the partition is still ours;
 *   - a stale generation (illegal generation, unknown member): tried again
 *     while the group has not taken the partition from us (CC_STALE);
 *   - fenced (fenced instance id, or the partition is not ours any more):
 *     dropped, the host is told (-ESTALE);
 *   - anything else: given up, logged, the host is told (-EIO).
 * A revoked partition's pending position is committed synchronously in the
 * rebalance callback, before it is unassigned; a lost one is never
 * committed.  At the end of a run, ks_flush_commits waits until what is
 * left is confirmed, serving rebalances meanwhile.
 */

enum commit_class { CC_OK, CC_RETRY, CC_STALE, CC_FENCED, CC_FAILED };

/* A member whose generation is stale (CC_STALE) may still own the
 * partition: a commit sent just before a rebalance completes carries the
 * old generation, and with the cooperative protocol a member keeps its
 * partitions across rebalances.  Whether it is still the owner is the
 * group's answer, which comes through the rebalance callback (a
 * revocation or a loss drops the position); until then it is retried, at
 * most STALE_TRIES times in a row. */
#define STALE_TRIES 8

static enum commit_class commit_class(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CC_OK;
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
        return CC_STALE;
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:      /* another process has our static id */
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
        return CC_FENCED;
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__STATE:              /* between leaving and rejoining */
        return CC_RETRY;
    default:
        return CC_FAILED;
    }
}

static void pending_drop(struct kpart *p)
{
    free(p->meta);
    p->meta = NULL;
    p->meta_len = 0;
    p->want = -1;
    p->sent = -1;
    p->tries = p->stale = 0;
    p->retry_at = 0;
}

/* The pending position is given up: the host is told why (-ESTALE or -EIO). */
static void pending_give_up(struct kafka_src *k, struct kpart *p, int err)
{
    const struct source_host *h = k->s->host;
    int64_t next = p->want;
    if (next < 0)
        return;
    pending_drop(p);
    if (err == -ESTALE)
        k->stats.fenced++;
    else
        k->stats.failed++;
    h->committed(h->ud, k->s->index, p->id, next, err);
}

/*
 * While the group rebalances, no commit goes out.  A commit sent while our
 * own JoinGroup waits at the coordinator is answered only after the new
 * generation is formed ("illegal generation"), and librdkafka then takes
 * the whole assignment for lost.  The coordinator tells us of a rebalance
 * by answering "rebalance in progress"; it has ended when librdkafka calls
 * the rebalance callback (the member has its new generation), or, at the
 * latest, after REBALANCE_HOLD_MS (longer than the session timeout the
 * coordinator waits for members to rejoin).
 */
#define REBALANCE_HOLD_MS 7000

static void hold_commits(struct kafka_src *k)
{
    if (k->hold_until == 0)
        k->hold_until = uv_hrtime() / 1000000 + REBALANCE_HOLD_MS;
}

static int commits_held(struct kafka_src *k)
{
    if (k->hold_until != 0 && uv_hrtime() / 1000000 >= k->hold_until)
        k->hold_until = 0;
    return k->hold_until != 0 || !k->steady;
}

/* librdkafka's statistics (every STATS_MS): the one figure read is the
 * group handler's join state, the only public sign that our member is
 * rejoining on its own (the cooperative protocol rejoins without a
 * callback when nothing of ours moves), when a commit must wait. */
#define STATS_MS "100"

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct kafka_src *k = opaque;
    (void)rk, (void)len;
    int steady = kafka_join_steady(json);
    if (steady >= 0)
        k->steady = steady;
    return 0;                       /* librdkafka frees json */
}

/* Backoff before the next attempt: 200 ms doubling up to 5 s. */
static uint64_t backoff_ms(unsigned tries)
{
    uint64_t ms = 200;
    for (unsigned i = 1; i < tries && ms < 5000; i++)
        ms *= 2;
    return ms < 5000 ? ms : 5000;
}

/* The coordinator's answer for partition `id` at `offset`. */
static void commit_result(struct kafka_src *k, int32_t id, int64_t offset, rd_kafka_resp_err_t e)
{
    const struct source_host *h = k->s->host;
    struct kpart *p = part_find(k, id);
    if (p == NULL || p->want < 0 || offset > p->want)
        return;                     /* nothing of ours waits for it (confirmed already) */
    if (p->sent == offset)
        p->sent = -1;
    enum commit_class cc = commit_class(e);
    if (cc == CC_STALE)
        cc = p->assigned && p->stale++ < STALE_TRIES ? CC_RETRY : CC_FENCED;
    switch (cc) {
    case CC_OK:
        k->stats.ok++;
        if (offset == p->want)
            pending_drop(p);        /* else a newer position waits its turn */
        if (k->rp && offset > p->purge)
            p->purge = offset;      /* applied, in a published snapshot: deletable */
        h->committed(h->ud, k->s->index, id, offset, 0);
        break;
    case CC_RETRY:
        if (e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || commit_class(e) == CC_STALE)
            hold_commits(k);
        if (offset != p->want)
            break;                  /* the newer position goes out anyway */
        k->stats.retried++;
        p->tries++;
        p->retry_at = uv_now(h->loop) + backoff_ms(p->tries);
        log_rate_msg(&k->commit_rate, LOG_NOTICE, k->s->name,
                     "commit of partition %" PRId32 " at %" PRId64 ": %s; retrying", id, offset,
                     rd_kafka_err2str(e));
        break;
    case CC_STALE:                  /* (decided above) */
    case CC_FENCED:
        log_msg(LOG_NOTICE, k->s->name, "commit of partition %" PRId32 " at %" PRId64
                " refused: %s (another member owns it now)", id, offset, rd_kafka_err2str(e));
        pending_give_up(k, p, -ESTALE);
        break;
    case CC_FAILED:
        log_msg(LOG_ERR, k->s->name, "commit of partition %" PRId32 " at %" PRId64
                " failed: %s", id, offset, rd_kafka_err2str(e));
        pending_give_up(k, p, -EIO);
        break;
    }
}

/* rd_kafka_commit_queue's callback: every partition's answer.  A request
 * that failed as a whole may carry its error only at the top. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct kafka_src *k = opaque;
    (void)rk;
    if (l == NULL)
        return;
    int any = 0;
    for (int i = 0; i < l->cnt; i++)
        any |= l->elems[i].err != 0;
    for (int i = 0; i < l->cnt; i++)
        commit_result(k, l->elems[i].partition, l->elems[i].offset,
                      any ? l->elems[i].err : err);
}

/* The pending positions of owned partitions in one list (their metadata
 * borrowed: list_release() gives it back before the list is destroyed).
 * due: only those not in flight whose backoff has passed; only: one
 * partition, or -1 for all. */
static rd_kafka_topic_partition_list_t *pending_list(struct kafka_src *k, int due, int32_t only)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->nparts + 1);
    uint64_t now = uv_now(k->s->host->loop);
    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        if (!p->assigned || p->want < 0 || (only >= 0 && p->id != only))
            continue;
        if (due && (p->sent >= 0 || p->retry_at > now))
            continue;
        rd_kafka_topic_partition_t *e =
            rd_kafka_topic_partition_list_add(l, ks_conf(k->s)->topic, p->id);
        e->offset = p->want;
        e->metadata = p->meta;
        e->metadata_size = p->meta_len;
    }
    return l;
}

static void list_release(rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        l->elems[i].metadata = NULL;
        l->elems[i].metadata_size = 0;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Sends the positions that are due, asynchronously. */
static void commit_due(struct kafka_src *k)
{
    if (k->rk == NULL || k->closing || commits_held(k))
        return;
    rd_kafka_topic_partition_list_t *l = pending_list(k, 1, -1);
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit_queue(k->rk, l, k->q, on_commit, k);
        for (int i = 0; i < l->cnt; i++) {
            if (e)
                commit_result(k, l->elems[i].partition, l->elems[i].offset, e);
            else
                part_find(k, l->elems[i].partition)->sent = l->elems[i].offset;
        }
    }
    list_release(l);
}

/* One synchronous attempt for the pending positions (of one partition, or
 * of all with only = -1); the answers go through commit_result.  Returns
 * how many were sent. */
static int commit_sync(struct kafka_src *k, int32_t only)
{
    rd_kafka_topic_partition_list_t *l = pending_list(k, 0, only);
    int n = l->cnt;
    if (n > 0) {
        for (int i = 0; i < n; i++)
            part_find(k, l->elems[i].partition)->retry_at = 0;
        /* a NULL queue: the callback is served by this call */
        rd_kafka_resp_err_t e = rd_kafka_commit_queue(k->rk, l, NULL, on_commit, k);
        if (e)
            for (int i = 0; i < n; i++)
                commit_result(k, l->elems[i].partition, l->elems[i].offset, e);
    }
    list_release(l);
    return n;
}

static void ks_commit(struct source *s, const struct source_commit *c, size_t n)
{
    struct kafka_src *k = s->impl;
    const struct source_host *h = s->host;
    for (size_t i = 0; i < n; i++) {
        struct kpart *p = k != NULL && k->rk != NULL && !k->closing ? part_find(k, c[i].partition)
                                                                   : NULL;
        if (c[i].next < 0)
            continue;
        if (p == NULL || !p->assigned) {
            if (k != NULL)
                k->stats.fenced++;
            h->committed(h->ud, s->index, c[i].partition, c[i].next, -ESTALE);
            continue;
        }
        char *meta = NULL;
        size_t len = c[i].meta != NULL ? strlen(c[i].meta) : 0;
        if (c[i].meta != NULL && (meta = malloc(len + 1)) == NULL) {
            log_msg(LOG_ERR, s->name, "out of memory for a commit's metadata");
            k->stats.failed++;
            h->committed(h->ud, s->index, c[i].partition, c[i].next, -ENOMEM);
            continue;
        }
        if (meta != NULL)
            memcpy(meta, c[i].meta, len + 1);
        free(p->meta);              /* an older position not confirmed yet: replaced */
        p->meta = meta;
        p->meta_len = len;
        p->want = c[i].next;
        p->tries = p->stale = 0;
        p->retry_at = 0;
    }
    if (k != NULL)
        commit_due(k);
}

/* ---- rebalances ----------------------------------------------------------- */

#define TRIES 3

/* Bounded mode: the end offset (high watermark) of every partition in l,
 * in one request per broker.  Returns 0, or -EIO (logged). */
static SL_MUST_USE int end_offsets(struct kafka_src *k, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(l);
    int rc = kafka_list_offsets(k->rk, q, RD_KAFKA_OFFSET_END, k->s->name);
    for (int i = 0; rc == 0 && i < q->cnt; i++) {
        struct kpart *p = part_find(k, q->elems[i].partition);
        if (p != NULL)
            p->end = q->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(q);
    return rc;
}

/* New partitions: what the group committed for them goes to the host,
 * which says where each resumes (set in l for the assign that follows).
 * Returns 0, or a negative errno (the host was told the source failed). */
static SL_MUST_USE int assigned(struct kafka_src *k, rd_kafka_topic_partition_list_t *l)
{
    const struct source_host *h = k->s->host;
    LOG(LOG_INFO, k->s->name, "assigned %d partition%s of %s", l->cnt, l->cnt == 1 ? "" : "s",
        ks_conf(k->s)->topic);
    if (l->cnt == 0)
        return 0;
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
    int rc = kafka_committed(k->rk, c, k->s->name);
    for (int i = 0; rc == 0 && i < l->cnt; i++) {
        int32_t id = l->elems[i].partition;
        struct kpart *p = part_get(k, id);
        if (p == NULL) {
            log_msg(LOG_ERR, k->s->name, "out of memory");
            rc = -ENOMEM;
            break;
        }
        pending_drop(p);            /* nothing of an earlier ownership survives */
        *p = (struct kpart){ .id = id, .next = -1, .end = -1, .assigned = 1, .want = -1,
                             .sent = -1 };
        const rd_kafka_topic_partition_t *ce = rd_kafka_topic_partition_list_find(
            c, ks_conf(k->s)->topic, id);
        struct source_committed sc = { -1, NULL, 0 };
        if (ce != NULL && ce->offset >= 0) {
            sc.offset = ce->offset;
            sc.meta = ce->metadata;
            sc.meta_len = ce->metadata_size;
        }
        int64_t resume = -1;
        rc = h->assigned(h->ud, k->s->index, id, &sc, &resume);
        if (rc == SOURCE_PART_ENDED) {
            rc = 0;
            if (h->bounded)
                part_end(k, p, 0);  /* paused once assigned (on_rebalance) */
        }
        if (rc < 0)
            break;
        p->next = resume >= 0 ? resume : -1;
        l->elems[i].offset = resume >= 0 ? resume
                             : ks_conf(k->s)->start == START_LATEST ? RD_KAFKA_OFFSET_END
                                                                     : RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_topic_partition_list_destroy(c);
    /* a repartition topic has no end of its own: its partitions end when
     * every input partition's end marker has come (rp_header.h) */
    if (rc == 0 && h->bounded && !k->rp) {
        rc = end_offsets(k, l);
        for (int i = 0; rc == 0 && i < l->cnt; i++) {
            struct kpart *p = part_find(k, l->elems[i].partition);
            if (p != NULL && (p->end <= 0 || (p->next >= 0 && p->next >= p->end) ||
                              (ks_conf(k->s)->start == START_LATEST && p->next < 0)))
                part_end(k, p, 0);
        }
    }
    if (rc < 0)
        h->failed(h->ud, k->s->index);
    return rc;
}

/* Partitions leave: a revocation commits what was asked for them first
 * (the standard place: the group waits for it); lost ones are dropped. */
static void revoked(struct kafka_src *k, rd_kafka_topic_partition_list_t *l, int lost)
{
    const struct source_host *h = k->s->host;
    for (int i = 0; i < l->cnt; i++) {
        struct kpart *p = part_find(k, l->elems[i].partition);
        if (p == NULL || !p->assigned)
            continue;
        for (int t = 0; !lost && p->want >= 0 && t < TRIES; t++)
            if (commit_sync(k, p->id) == 0)
                break;
        pending_give_up(k, p, -ESTALE); /* not committed now: the next owner's */
        h->revoked(h->ud, k->s->index, p->id, lost);
        *p = (struct kpart){ .id = p->id, .next = -1, .end = -1, .want = -1, .sent = -1 };
    }
    LOG(lost ? LOG_WARNING : LOG_INFO, k->s->name, "%s %d partition%s%s", lost ? "lost" : "revoked",
        l->cnt, l->cnt == 1 ? "" : "s", lost ? " (the group gave them to another member; "
        "nothing of them is committed)" : "");
}

/* (Un)assigning failed: librdkafka's state and ours differ; logged. */
static void assign_result(struct kafka_src *k, const char *what, rd_kafka_error_t *error,
                          rd_kafka_resp_err_t err)
{
    kafka_assign_result(k->s->name, what, error, err);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct kafka_src *k = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);   /* NULL while closing */
    int coop = proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
    LOG(LOG_DEBUG, k->s->name, "rebalance: %s %d partition%s", 
        err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign" : "revoke", l->cnt,
        l->cnt == 1 ? "" : "s");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        k->hold_until = 0;          /* the rebalance is over: commits may go out */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && l->cnt > 0 && k->finished &&
        k->s->host->bounded) {
        k->finished = 0;            /* partitions again: read to their end first */
        k->s->host->unfinished(k->s->host->ud, k->s->index);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (assigned(k, l) < 0) {
            /* the source has failed; still take the partitions, as the
             * protocol asks, and read nothing of them */
            k->paused = 1;
            uv_idle_stop(&k->pump);
        }
        assign_result(k, "assign", coop ? rd_kafka_incremental_assign(rk, l) : NULL,
                      coop ? 0 : rd_kafka_assign(rk, l));
        /* librdkafka keeps a partition's pause across assignments: one
         * paused when it ended (bounded) and given back must read again */
        for (int i = 0; i < l->cnt; i++) {
            struct kpart *p = part_find(k, l->elems[i].partition);
            if (p != NULL)
                kafka_pause_one(k->rk, ks_conf(k->s)->topic, p->id, p->ended || k->paused);
        }
        if (owned(k) == 0) {
            if (k->empty_since == 0)
                k->empty_since = uv_now(k->s->host->loop);
        } else {
            k->empty_since = 0;
        }
    } else {
        revoked(k, l, rd_kafka_assignment_lost(rk));
        assign_result(k, "unassign", coop ? rd_kafka_incremental_unassign(rk, l) : NULL,
                      coop ? 0 : rd_kafka_assign(rk, NULL));
    }
    check_finished(k);
}

/* ---- messages ----------------------------------------------------------------- */

/* Returns 0, or a negative code to stop consuming (the host was told). */
static SL_MUST_USE int handle(struct kafka_src *k, rd_kafka_message_t *m)
{
    const struct source_host *h = k->s->host;
    if (m->err) {
        if (kafka_message_error(k->rk, m, k->s->name, &k->err_rate) == 0)
            return 0;
        h->failed(h->ud, k->s->index);
        return -EIO;
    }
    struct kpart *p = part_find(k, m->partition);
    if (p == NULL || !p->assigned || p->ended)
        return 0;                   /* not (or no longer) ours */
    if (m->offset < p->next)
        return 0;                   /* seen already (redelivered after a pause or seek) */
    p->next = m->offset + 1;
    struct rp_meta meta, *rp = NULL;
    if (k->rp) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *v = NULL;
        size_t vn = 0;
        if (rd_kafka_message_headers(m, &hdrs) != 0 ||
            rd_kafka_header_get_last(hdrs, RP_HEADER, &v, &vn) != 0 || v == NULL ||
            rp_meta_parse(v, vn, &meta) < 0) {
            struct reject rej = { REJ_MISSING, "no valid " RP_HEADER " header: not a record "
                                  "of sluice's repartitioning", -1 };
            h->invalid(h->ud, k->s->index, m->partition, m->offset, m->payload, m->len, &rej);
            return 0;
        }
        rp = &meta;
    }
    int rc = h->record(h->ud, k->s->index, m->partition, m->offset, p->next, m->payload,
                       m->len, rd_kafka_message_timestamp(m, NULL), rp);
    if (rc < 0)
        return rc;
    if (rc == SOURCE_PART_ENDED && h->bounded)
        part_end(k, p, 1);
    if (h->bounded && p->end >= 0 && p->next >= p->end)
        part_end(k, p, 1);
    return 0;
}

/* Drains up to one batch, waiting up to wait_ms for the first event;
 * returns how many events came out, or the negative code that stopped it. */
static ssize_t drain_wait(struct kafka_src *k, int wait_ms)
{
    const struct source_host *h = k->s->host;
    ssize_t n = rd_kafka_consume_batch_queue(k->q, wait_ms, k->msgs, BATCH);
    int rc = 0;
    /* runs of one partition's records, told to the host ahead (prefetch) */
    for (ssize_t i = 0, j; i < n; i = j) {
        int32_t part = k->msgs[i]->partition;
        size_t m = 0;
        for (j = i; j < n && k->msgs[j]->partition == part; j++)
            if (!k->msgs[j]->err)
                k->ahead[m++] = (struct engine_in){ k->msgs[j]->payload, k->msgs[j]->len,
                                                   k->msgs[j]->offset,
                                                   rd_kafka_message_timestamp(k->msgs[j], NULL) };
        int hint = h->prefetch != NULL && !k->rp && m > 1;
        if (hint)
            h->prefetch(h->ud, k->s->index, part, k->ahead, m);
        for (ssize_t x = i; x < j; x++) {
            if (rc == 0)
                rc = handle(k, k->msgs[x]);
            rd_kafka_message_destroy(k->msgs[x]);
        }
        if (hint)
            h->prefetch(h->ud, k->s->index, part, NULL, 0);
    }
    if (rc < 0)
        return rc;
    check_finished(k);
    return n;
}

static ssize_t drain_once(struct kafka_src *k)
{
    return drain_wait(k, 0);
}

static void on_pump(uv_idle_t *h)
{
    struct kafka_src *k = h->data;
    if (k->closing || k->paused || drain_once(k) <= 0)
        uv_idle_stop(&k->pump);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct kafka_src *k = h->data;
    (void)status, (void)events;
    kafka_wake_drain(k->pipe[0]);
    if (!k->closing && !k->paused)
        uv_idle_start(&k->pump, on_pump);
}

/* ---- purging a repartition topic --------------------------------------------------- */

/*
 * Records of a repartition topic below an offset the group has confirmed are
 * in a published snapshot: nobody reads them again, and they are deleted
 * (DeleteRecords, as Kafka Streams purges its repartition topics), one
 * request at a time, from the keepalive timer.  A broker that cannot
 * (librdkafka's mock cluster, or no permission) is told once in the log and
 * not asked again: the records then stay until the topic's retention.
 */
static void purge_result(struct kafka_src *k, rd_kafka_event_t *ev)
{
    const rd_kafka_DeleteRecords_result_t *r = rd_kafka_event_DeleteRecords_result(ev);
    const rd_kafka_topic_partition_list_t *l = r ? rd_kafka_DeleteRecords_result_offsets(r)
                                                 : NULL;
    rd_kafka_resp_err_t top = rd_kafka_event_error(ev);
    for (int i = 0; l != NULL && i < l->cnt; i++) {
        rd_kafka_resp_err_t e = l->elems[i].err ? l->elems[i].err : top;
        struct kpart *p = part_find(k, l->elems[i].partition);
        if (e == 0) {
            k->purged++;
            if (p != NULL && l->elems[i].offset > p->purged)
                p->purged = l->elems[i].offset;
        } else if (e == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
                   e == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
                   e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                   e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
            if (!k->purge_off)
                log_msg(LOG_NOTICE, k->s->name, "cannot delete applied records of %s: %s; "
                        "they stay until the topic's retention", ks_conf(k->s)->topic,
                        rd_kafka_err2str(e));
            k->purge_off = 1;
        } else {
            log_rate_msg(&k->err_rate, LOG_WARNING, k->s->name, "deleting applied records "
                         "of %s partition %" PRId32 ": %s; tried again later",
                         ks_conf(k->s)->topic, l->elems[i].partition, rd_kafka_err2str(e));
        }
    }
    if (l == NULL && top)
        log_rate_msg(&k->err_rate, LOG_WARNING, k->s->name, "deleting applied records of %s: "
                     "%s; tried again later", ks_conf(k->s)->topic, rd_kafka_err2str(top));
}

static void purge_step(struct kafka_src *k)
{
    rd_kafka_event_t *ev;
    while (k->admin_q != NULL && (ev = rd_kafka_queue_poll(k->admin_q, 0)) != NULL) {
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DELETERECORDS_RESULT) {
            purge_result(k, ev);
            k->purging = 0;
        }
        rd_kafka_event_destroy(ev);
    }
    if (!k->rp || k->admin_q == NULL || k->purging || k->purge_off)
        return;
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        if (!p->assigned || p->purge <= p->purged)
            continue;
        if (l == NULL)
            l = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(l, ks_conf(k->s)->topic, p->id)->offset = p->purge;
    }
    if (l == NULL)
        return;
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_DeleteRecords(k->rk, &del, 1, NULL, k->admin_q);
    rd_kafka_DeleteRecords_destroy(del);
    k->purging = 1;
}

static void on_keepalive(uv_timer_t *t)
{
    struct kafka_src *k = t->data;
    if (k->closing)
        return;
    if (k->paused || !uv_is_active((uv_handle_t *)&k->pump))
        drain_once(k);              /* serves callbacks; a paused source fetches nothing */
    commit_due(k);                  /* positions whose retry is due */
    check_finished(k);              /* bounded: an instance left without partitions */
    purge_step(k);
}

/* ---- the source ------------------------------------------------------------------- */

static const char *prop(const struct kafka_source_conf *cf, const char *key)
{
    return kafka_prop(&cf->props, key);
}

/* Kafka sources the engine reads (stage 1 of a repartitioning has its own
 * group, and an input read only by it is not consumed in this group). */
static size_t kafka_sources(const struct job *job)
{
    size_t n = 0;
    for (size_t i = 0; i < job->nsources; i++) {
        const struct job_source *js = &job->sources[i];
        n += js->type == &kafka_source_type && js->role != SRC_STAGE1 &&
             !(js->role == SRC_INPUT && js->unread);
    }
    return n;
}

/* The group's assignor: cooperative-sticky for a job with one Kafka source
 * (a rebalance moves only what must move), range for several (a join
 * needs partition p of both topics on one instance, and range, computed
 * by the client, gives it), unless the job's properties say. */
static const char *group_strategy(const struct source *s)
{
    const char *user = prop(ks_conf(s), "partition.assignment.strategy");
    if (user != NULL) {
        LOG(LOG_INFO, s->name, "partition.assignment.strategy %s (from the job's properties)",
            user);
        return user;
    }
    return kafka_sources(s->job) > 1 ? "range" : "cooperative-sticky";
}

/* Static membership: group.instance.id from the job's properties (passed
 * through as they are), or else from SLUICE_INSTANCE_ID, suffixed with
 * "-<source>" when the job has several Kafka sources (each has its own
 * consumer, and an id is one member).  NULL: a dynamic member. */
static const char *instance_id(const struct source *s, char *buf, size_t size)
{
    const char *env = getenv("SLUICE_INSTANCE_ID");
    if (prop(ks_conf(s), "group.instance.id") != NULL || env == NULL || env[0] == '\0')
        return NULL;
    if (kafka_sources(s->job) > 1) {
        /* an id is a name Kafka checks: [A-Za-z0-9._-] (an added
         * repartition source's name has a '~') */
        int n = snprintf(buf, size, "%s-%s", env, s->js->name);
        for (int i = (int)strlen(env) + 1; i < n && (size_t)i < size; i++)
            if (!isalnum((unsigned char)buf[i]) && strchr("._-", buf[i]) == NULL)
                buf[i] = '_';
    } else {
        snprintf(buf, size, "%s", env);
    }
    LOG(LOG_INFO, s->name, "static group member %s (SLUICE_INSTANCE_ID)", buf);
    return buf;
}

static int ks_start(struct source *s)
{
    const struct kafka_source_conf *cf = ks_conf(s);
    char err[512];
    struct kafka_src *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->s = s;
    k->rp = s->js->role == SRC_REPARTITION;
    k->pipe[0] = k->pipe[1] = -1;
    s->impl = k;
    uv_idle_init(s->host->loop, &k->pump);
    uv_timer_init(s->host->loop, &k->keepalive);
    k->pump.data = k->keepalive.data = k;

    char instance[256];
    const char *strategy = group_strategy(s), *iid = instance_id(s, instance, sizeof(instance));
    const char *defaults[] = {
        /* cooperative-sticky moves only the partitions that must move; a
         * join needs partition p of both topics on one instance: range */
        "partition.assignment.strategy", strategy,
        "group.id", cf->group,
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", ks_starts[cf->start],
        "client.id", "sluice",
        /* fetch ahead: librdkafka stops fetching once this many records wait
         * locally, and its default (100,000 over all partitions) leaves the
         * loop waiting on the network (3-4x slower end to end) */
        "queued.min.messages", "1000000",
        /* a restarted sluice gets its partitions back a few seconds after
         * its predecessor's crash: the group drops a silent member after
         * 6 s (the brokers' default minimum), not librdkafka's 45 s */
        "session.timeout.ms", "6000",
        "heartbeat.interval.ms", "2000",
        "statistics.interval.ms", STATS_MS,     /* the join state (on_stats) */
        iid != NULL ? "group.instance.id" : NULL, iid,
        NULL,
    };
    rd_kafka_conf_t *conf = kafka_conf_new(cf->brokers, defaults, cf->props.v, cf->props.n,
                                           err, sizeof(err));
    if (conf == NULL) {
        log_msg(LOG_ERR, s->name, "%s", err);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    const char *stats = prop(cf, "statistics.interval.ms");
    if (stats != NULL && atoi(stats) <= 0)
        k->steady = 1;              /* no statistics: the join state stays unknown */
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (k->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        log_msg(LOG_ERR, s->name, "%s", err);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(k->rk);
    k->q = rd_kafka_queue_get_consumer(k->rk);
    if (k->rp && s->js->rp_purge)
        k->admin_q = rd_kafka_queue_new(k->rk);
    int rc = kafka_wake_start(s->host->loop, &k->poll, k->pipe, &k->q, 1, on_readable, k,
                              s->name);
    if (rc < 0)
        return rc;
    k->have_poll = 1;
    uv_timer_start(&k->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);

    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cf->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        log_msg(LOG_ERR, s->name, "subscribe %s: %s", cf->topic, rd_kafka_err2str(e));
        return -EINVAL;
    }
    LOG(LOG_INFO, s->name, "consuming %s from %s as group %s", cf->topic,
        kafka_bootstrap(cf->brokers), cf->group);
    uv_idle_start(&k->pump, on_pump);
    return 0;
}

static void set_paused(struct kafka_src *k, int pause)
{
    if (k->rk == NULL || k->nparts == 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->nparts);
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].assigned && !k->parts[i].ended)
            rd_kafka_topic_partition_list_add(l, ks_conf(k->s)->topic, k->parts[i].id);
    if (pause)
        rd_kafka_pause_partitions(k->rk, l);
    else
        rd_kafka_resume_partitions(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void ks_pause(struct source *s)
{
    struct kafka_src *k = s->impl;
    k->paused = 1;
    uv_idle_stop(&k->pump);
    set_paused(k, 1);
}

static void ks_resume(struct source *s)
{
    struct kafka_src *k = s->impl;
    k->paused = 0;
    set_paused(k, 0);
    if (!k->closing)
        uv_idle_start(&k->pump, on_pump);
}

/* At the end of a run: what is pending goes out until it is confirmed or
 * timeout_ms have passed, the consumer queue served meanwhile (the answers
 * come through it, and the rebalance callbacks that end a rebalance, so
 * that "rebalance in progress" can pass: the group waits for them).  The
 * commits themselves are the asynchronous ones, so a coordinator that does
 * not answer cannot hold the loop past the timeout. */
static int ks_flush_commits(struct source *s, int timeout_ms)
{
    struct kafka_src *k = s->impl;
    if (k == NULL || k->rk == NULL)
        return 0;
    uint64_t fenced = k->stats.fenced, now = uv_hrtime() / 1000000;
    uint64_t deadline = now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < k->nparts; i++) {
            k->parts[i].retry_at = 0;   /* the wait below is the backoff */
            left += k->parts[i].assigned && k->parts[i].want >= 0;
        }
        if (left == 0 || now >= deadline)
            break;
        commit_due(k);
        uint64_t wait = deadline - now < 100 ? deadline - now : 100;
        if (drain_wait(k, (int)wait) < 0)
            break;                  /* the source failed (the host was told) */
        now = uv_hrtime() / 1000000;
    }
    int rc = k->stats.fenced > fenced ? -ESTALE : 0;
    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        if (p->want < 0)
            continue;
        log_msg(LOG_ERR, s->name, "partition %" PRId32 " could not be committed at %" PRId64
                " within %d ms", p->id, p->want, timeout_ms);
        pending_give_up(k, p, -EIO);
        rc = -EIO;
    }
    if (rc == -ESTALE)
        log_msg(LOG_WARNING, s->name, "%" PRIu64 " commit%s refused: another member owns "
                "the partition now", k->stats.fenced - fenced,
                k->stats.fenced - fenced == 1 ? "" : "s");
    return rc;
}

static void ks_commit_stats(const struct source *s, struct source_commit_stats *out)
{
    const struct kafka_src *k = s->impl;
    *out = k != NULL ? k->stats : (struct source_commit_stats){ 0 };
}

/* From the high watermark the last fetch response carried (no round trip). */
static int64_t ks_lag(const struct source *s, int32_t partition, int64_t next)
{
    const struct kafka_src *k = s->impl;
    return k != NULL ? kafka_lag(k->rk, ks_conf(s)->topic, partition, next) : -1;
}

static void ks_member(const struct source *s, char *buf, size_t size)
{
    const struct kafka_src *k = s->impl;
    kafka_member(k != NULL ? k->rk : NULL, buf, size);
}

static void on_closed(uv_handle_t *h)
{
    struct kafka_src *k = h->data;
    if (++k->nclosed < 3)
        return;
    struct source *s = k->s;
    void (*done)(struct source *) = k->done;
    if (k->rk != NULL) {
        /* leaves the group (a revocation commits what is still pending) */
        rd_kafka_consumer_close(k->rk);
        LOG(LOG_INFO, s->name, "commits: %" PRIu64 " confirmed, %" PRIu64 " fenced, %" PRIu64
            " retried, %" PRIu64 " failed", k->stats.ok, k->stats.fenced, k->stats.retried,
            k->stats.failed);
    }
    if (k->q != NULL)
        rd_kafka_queue_destroy(k->q);
    if (k->admin_q != NULL) {
        /* a DeleteRecords still out keeps the queue alive (and leaked)
         * past rd_kafka_destroy: its answer is awaited, briefly */
        for (int i = 0; k->purging && i < 20; i++) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(k->admin_q, 100);
            if (ev == NULL)
                continue;
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DELETERECORDS_RESULT)
                k->purging = 0;
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(k->admin_q);
    }
    if (k->rk != NULL)
        rd_kafka_destroy(k->rk);
    kafka_wake_close(k->pipe);
    for (size_t i = 0; i < k->nparts; i++)
        free(k->parts[i].meta);
    free(k->parts);
    free(k);
    s->impl = NULL;
    if (done != NULL)
        done(s);
}

static void ks_close(struct source *s, void (*done)(struct source *))
{
    struct kafka_src *k = s->impl;
    if (k == NULL) {
        if (done != NULL)
            done(s);
        return;
    }
    k->closing = 1;
    k->done = done;
    if (k->q != NULL)
        rd_kafka_queue_io_event_enable(k->q, -1, NULL, 0);
    uv_close((uv_handle_t *)&k->pump, on_closed);
    uv_close((uv_handle_t *)&k->keepalive, on_closed);
    if (k->have_poll)
        uv_close((uv_handle_t *)&k->poll, on_closed);
    else
        k->nclosed++;
}

static const struct source_ops kafka_source_ops = {
    .type = "kafka",
    .start = ks_start,
    .pause = ks_pause,
    .resume = ks_resume,
    .commit = ks_commit,
    .flush_commits = ks_flush_commits,
    .commit_stats = ks_commit_stats,
    .lag = ks_lag,
    .member = ks_member,
    .close = ks_close,
};

const struct conn_type kafka_source_type = {
    .name = "kafka", .kind = CONN_SOURCE, .flags = CONN_RECORD_TIME, .map = &kafka_source_map,
    .conf_size = sizeof(struct kafka_source_conf), .print = kafka_source_print,
    .repartition_conf = kafka_repartition_conf,
    .source = &kafka_source_ops,
};
