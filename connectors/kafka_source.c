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
 * Offsets belong to sluice: auto-commit and auto offset store are off; a
 * complete checkpoint commits the offsets its state reflects (ks_commit),
 * and a partition assigned to a restored job starts where the checkpoint
 * says, whatever the group has committed.  Each partition remembers the
 * next offset it expects, so a message redelivered after a pause or a seek
 * is never applied twice.
 *
 * Rebalances: assigned partitions are reported to the host (the engine
 * holds the watermark back for them until their first record or until
 * they are idle), revoked ones leave the watermark computation.  A
 * partition that comes back to this consumer resumes at the offset after
 * the last record its state holds (the group has no committed offset that
 * says otherwise), never from `start` again.  In
 * --bounded mode each assigned partition's high watermark is taken when
 * it is assigned; a partition that reaches it is paused and reported as
 * ended, and when every assigned partition has ended the source is done.
 *
 * Its settings (brokers, topic, group, start, properties) are declared in
 * kafka_source_map below and read by the job loader into a struct
 * kafka_source_conf; the librdkafka properties sluice sets itself are
 * refused there, at load time.
 */
#include <errno.h>
#include <fcntl.h>
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
#define WATERMARK_TIMEOUT_MS 10000

/* ---- settings -------------------------------------------------------------------- */

enum ks_start { START_EARLIEST, START_LATEST };

struct kafka_source_conf {
    const char *brokers, *topic, *group;
    int start;                      /* enum ks_start */
    struct cm_props props;
};

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

static void kafka_source_print(const void *conf, FILE *out)
{
    const struct kafka_source_conf *cf = conf;
    fprintf(out, " topic=%s brokers=%s group=%s start=%s", cf->topic, cf->brokers, cf->group,
            ks_starts[cf->start]);
}

/* ---- partitions ------------------------------------------------------------------- */

struct kpart {
    int32_t id;
    int64_t next;                   /* next offset expected; -1 before the first */
    int64_t end;                    /* bounded: the high watermark at assignment */
    int ended;
    int assigned;                   /* revoked partitions are remembered, not owned */
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
    struct kpart *parts;
    size_t nparts, capparts;
    rd_kafka_message_t *msgs[BATCH];
    struct log_rate err_rate;
    void (*done)(struct source *);
};

static struct kpart *part_find(struct kafka_src *k, int32_t id)
{
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].id == id)
            return &k->parts[i];
    return NULL;
}

static void check_finished(struct kafka_src *k)
{
    const struct source_host *h = k->s->host;
    size_t owned = 0;
    if (!h->bounded || k->finished)
        return;
    for (size_t i = 0; i < k->nparts; i++) {
        if (!k->parts[i].assigned)
            continue;
        if (!k->parts[i].ended)
            return;
        owned++;
    }
    if (owned == 0)
        return;
    k->finished = 1;
    LOG(LOG_INFO, k->s->name, "every assigned partition has reached its end offset");
    h->finished(h->ud, k->s->index);
}

static void pause_one(struct kafka_src *k, int32_t id)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, ks_conf(k->s)->topic, id);
    rd_kafka_pause_partitions(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
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

/* ---- rebalances ----------------------------------------------------------- */

/* Bounded mode: the end offset (high watermark) of every partition in l,
 * in one request per broker (ListOffsets for "latest"), rather than a
 * round trip per partition.  Returns 0, or -EIO (logged). */
static SL_MUST_USE int end_offsets(struct kafka_src *k, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(l);
    for (int i = 0; i < q->cnt; i++)
        q->elems[i].offset = RD_KAFKA_OFFSET_END;       /* timestamp -1: latest */
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(k->rk, q, WATERMARK_TIMEOUT_MS);
    for (int i = 0; err == 0 && i < q->cnt; i++) {
        struct kpart *p = part_find(k, q->elems[i].partition);
        if (q->elems[i].err)
            err = q->elems[i].err;
        else if (p != NULL)
            p->end = q->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(q);
    if (err) {
        log_msg(LOG_ERR, k->s->name, "cannot read the end offsets of %s: %s",
                ks_conf(k->s)->topic, rd_kafka_err2str(err));
        return -EIO;
    }
    return 0;
}

static void assigned(struct kafka_src *k, rd_kafka_topic_partition_list_t *l)
{
    const struct source_host *h = k->s->host;
    LOG(LOG_INFO, k->s->name, "assigned %d partition%s of %s", l->cnt, l->cnt == 1 ? "" : "s",
        ks_conf(k->s)->topic);
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_resp_err_t cerr = rd_kafka_committed(k->rk, c, WATERMARK_TIMEOUT_MS);
    for (int i = 0; i < l->cnt; i++) {
        int32_t id = l->elems[i].partition;
        struct kpart *p = part_find(k, id);
        if (p == NULL) {
            if (k->nparts == k->capparts) {
                size_t cap = k->capparts ? k->capparts * 2 : 16;
                struct kpart *np = realloc(k->parts, cap * sizeof(*np));
                if (np == NULL)
                    continue;
                k->parts = np;
                k->capparts = cap;
            }
            p = &k->parts[k->nparts++];
        }
        struct source_committed sc = { -1, NULL, 0 };
        if (cerr == 0 && c->elems[i].err == 0) {
            sc.offset = c->elems[i].offset >= 0 ? c->elems[i].offset : -1;
            sc.meta = c->elems[i].metadata;
            sc.meta_len = c->elems[i].metadata_size;
        }
        int64_t next = -1;
        if (h->assigned(h->ud, k->s->index, id, &sc, &next) < 0) {
            rd_kafka_topic_partition_list_destroy(c);
            h->failed(h->ud, k->s->index);
            return;
        }
        *p = (struct kpart){ .id = id, .next = next, .end = -1, .assigned = 1 };
        /* where our state stands, or `start` (not the group's commit: the
         * state that went with it is gone) */
        l->elems[i].offset = next >= 0 ? next : ks_conf(k->s)->start == START_LATEST ?
                                                RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_topic_partition_list_destroy(c);
    if (h->bounded) {
        if (end_offsets(k, l) < 0) {
            h->failed(h->ud, k->s->index);
            return;
        }
        for (int i = 0; i < l->cnt; i++) {
            struct kpart *p = part_find(k, l->elems[i].partition);
            if (p != NULL && (p->end <= 0 || (p->next >= 0 && p->next >= p->end) ||
                              (ks_conf(k->s)->start == START_LATEST && p->next < 0)))
                part_end(k, p, 0);
        }
    }
}

static void revoked(struct kafka_src *k, rd_kafka_topic_partition_list_t *l)
{
    const struct source_host *h = k->s->host;
    for (int i = 0; i < l->cnt; i++) {
        struct kpart *p = part_find(k, l->elems[i].partition);
        if (p == NULL || !p->assigned)
            continue;
        h->revoked(h->ud, k->s->index, p->id, rd_kafka_assignment_lost(k->rk));
        p->assigned = 0;
    }
    LOG(LOG_INFO, k->s->name, "revoked %d partition%s", l->cnt, l->cnt == 1 ? "" : "s");
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct kafka_src *k = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assigned(k, l);             /* sets resume offsets, then: */
        if (coop)
            rd_kafka_incremental_assign(rk, l);
        else
            rd_kafka_assign(rk, l);
        for (int i = 0; i < l->cnt; i++) {
            struct kpart *p = part_find(k, l->elems[i].partition);
            if (p != NULL && p->ended)
                pause_one(k, p->id);
        }
    } else {
        revoked(k, l);
        if (coop)
            rd_kafka_incremental_unassign(rk, l);
        else
            rd_kafka_assign(rk, NULL);
    }
    check_finished(k);
}

/* ---- messages ----------------------------------------------------------------- */

/* Returns 0, or a negative code to stop consuming (the host was told). */
static SL_MUST_USE int handle(struct kafka_src *k, rd_kafka_message_t *m)
{
    const struct source_host *h = k->s->host;
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return 0;
        if (rd_kafka_fatal_error(k->rk, NULL, 0)) {
            log_msg(LOG_ERR, k->s->name, "fatal consumer error: %s", rd_kafka_message_errstr(m));
            h->failed(h->ud, k->s->index);
            return -EIO;
        }
        log_rate_msg(&k->err_rate, LOG_WARNING, k->s->name, "%s", rd_kafka_message_errstr(m));
        return 0;
    }
    struct kpart *p = part_find(k, m->partition);
    if (p == NULL || !p->assigned || p->ended)
        return 0;                   /* not (or no longer) ours */
    if (m->offset < p->next)
        return 0;                   /* seen already (redelivered after a pause or seek) */
    p->next = m->offset + 1;
    int rc = h->record(h->ud, k->s->index, m->partition, m->offset, p->next, m->payload,
                       m->len, rd_kafka_message_timestamp(m, NULL));
    if (rc < 0)
        return rc;
    if (h->bounded && p->end >= 0 && p->next >= p->end)
        part_end(k, p, 1);
    return 0;
}

/* Drains up to one batch; returns how many events came out, or the
 * negative code that stopped it. */
static ssize_t drain_once(struct kafka_src *k)
{
    ssize_t n = rd_kafka_consume_batch_queue(k->q, 0, k->msgs, BATCH);
    for (ssize_t i = 0; i < n; i++) {
        int rc = handle(k, k->msgs[i]);
        if (rc < 0) {
            for (ssize_t j = i; j < n; j++)
                rd_kafka_message_destroy(k->msgs[j]);
            return rc;
        }
        rd_kafka_message_destroy(k->msgs[i]);
    }
    check_finished(k);
    return n;
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
    char buf[64];
    (void)status, (void)events;
    while (read(k->pipe[0], buf, sizeof(buf)) > 0)
        ;
    if (!k->closing && !k->paused)
        uv_idle_start(&k->pump, on_pump);
}

static void on_keepalive(uv_timer_t *t)
{
    struct kafka_src *k = t->data;
    if (k->closing)
        return;
    if (k->paused || !uv_is_active((uv_handle_t *)&k->pump))
        drain_once(k);              /* serves callbacks; a paused source fetches nothing */
}

/* ---- the source ------------------------------------------------------------------- */

static int ks_start(struct source *s)
{
    const struct kafka_source_conf *cf = ks_conf(s);
    char err[512];
    struct kafka_src *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->s = s;
    k->pipe[0] = k->pipe[1] = -1;
    s->impl = k;
    uv_idle_init(s->host->loop, &k->pump);
    uv_timer_init(s->host->loop, &k->keepalive);
    k->pump.data = k->keepalive.data = k;

    const char *defaults[] = {
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
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (k->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        log_msg(LOG_ERR, s->name, "%s", err);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(k->rk);
    k->q = rd_kafka_queue_get_consumer(k->rk);
    if (pipe(k->pipe) < 0) {
        log_msg(LOG_ERR, s->name, "pipe: %s", strerror(errno));
        return -errno;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(k->pipe[i], F_SETFL, fcntl(k->pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(k->pipe[i], F_SETFD, FD_CLOEXEC);
    }
    uv_poll_init(s->host->loop, &k->poll, k->pipe[0]);
    k->poll.data = k;
    k->have_poll = 1;
    rd_kafka_queue_io_event_enable(k->q, k->pipe[1], "1", 1);
    uv_poll_start(&k->poll, UV_READABLE, on_readable);
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

static void ks_commit(struct source *s, const struct source_commit *offs, size_t n)
{
    struct kafka_src *k = s->impl;
    if (k == NULL || k->rk == NULL || k->closing)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        struct kpart *p = part_find(k, offs[i].partition);
        if (p != NULL && p->assigned && offs[i].next >= 0) {
            rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_add(l, ks_conf(s)->topic, offs[i].partition);
            t->offset = offs[i].next;
            if (offs[i].meta != NULL) {
                t->metadata_size = strlen(offs[i].meta);
                t->metadata = malloc(t->metadata_size);
                if (t->metadata != NULL)
                    memcpy(t->metadata, offs[i].meta, t->metadata_size);
                else
                    t->metadata_size = 0;
            }
        }
    }
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, l, 1);
        if (e)
            log_rate_msg(&k->err_rate, LOG_WARNING, s->name, "commit: %s", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* From the high watermark the last fetch response carried (no round trip). */
static int64_t ks_lag(const struct source *s, int32_t partition, int64_t next)
{
    const struct kafka_src *k = s->impl;
    int64_t lo, hi;
    if (k == NULL || k->rk == NULL ||
        rd_kafka_get_watermark_offsets(k->rk, ks_conf(s)->topic, partition, &lo, &hi) != 0 || hi < 0)
        return -1;
    if (next < lo)
        next = lo;
    return hi > next ? hi - next : 0;
}

static void on_closed(uv_handle_t *h)
{
    struct kafka_src *k = h->data;
    if (++k->nclosed < 3)
        return;
    struct source *s = k->s;
    void (*done)(struct source *) = k->done;
    if (k->q != NULL)
        rd_kafka_queue_destroy(k->q);
    if (k->rk != NULL) {
        rd_kafka_consumer_close(k->rk);     /* leaves the group; commits nothing */
        rd_kafka_destroy(k->rk);
    }
    if (k->pipe[0] >= 0)
        close(k->pipe[0]);
    if (k->pipe[1] >= 0)
        close(k->pipe[1]);
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
    .lag = ks_lag,
    .close = ks_close,
};

const struct conn_type kafka_source_type = {
    .name = "kafka", .kind = CONN_SOURCE, .flags = CONN_RECORD_TIME, .map = &kafka_source_map,
    .conf_size = sizeof(struct kafka_source_conf), .print = kafka_source_print,
    .source = &kafka_source_ops,
};
