/*
 * repartition.c - stage 1 of a repartitioning (config/job.h, SRC_STAGE1).
 *
 * Stage 1 reads an input topic whose records are not partitioned by an
 * operator's key and writes each valid record to the repartition topic of
 * every key that needs it (its targets, SRC_REPARTITION sources), keyed by
 * the key's text (rp_header.h) and routed to partition XXH64(key) mod n, so
 * that stage 2 (a kafka source per repartition topic) sees every record of
 * a key in one partition.  It applies nothing itself: the engine never sees
 * its records, and it counts what it does (source_own_stats).
 *
 * Exactness without transactions comes from three facts: routing is a pure
 * function of the record (the same record goes to the same partition
 * every time it is produced), the producer is idempotent with an unlimited
 * delivery timeout and the gapless guarantee (each repartition partition
 * receives the records of one input partition in input order, never with
 * a gap; a record is retried until the cluster has it, and an error that
 * would break that is fatal), and input offsets are committed only once
 * everything produced from them is acknowledged.  A crash then replays a
 * suffix of each input partition; every replayed record carries its input
 * position in its header (d <src> <nsrc> <off> <max>), and stage 2 drops
 * what it has applied already by a high-water mark per (repartition
 * partition, input partition).
 *
 * Commits: each input partition keeps a ring of its records in flight (one
 * entry per input record, with how many of its produces are unacknowledged;
 * a delivery report finds its entry by the sequence number packed in the
 * message's opaque).  The position committed is the offset of the oldest
 * entry still in flight, or the next offset when none is.  Commits go out
 * asynchronously every state.checkpoint_interval, and synchronously when a
 * partition is revoked (after waiting, bounded, for its deliveries) and at
 * the end of a run (flush_commits).  The group is <group>-stage1, apart
 * from the input's own group (which stage 2's sources use for the
 * repartition topics).
 *
 * Event time: per input partition, the greatest event time seen goes in
 * every record's header, and every MARKER_MS a 'w' marker carries it to
 * every partition of every target when it has grown, so that a repartition
 * partition that receives nothing of some input partition still follows
 * its event time.  In --bounded mode each partition's end offset is taken
 * at assignment; when it is reached an 'e' marker goes to every partition
 * of every target, and when every owned partition has ended and every
 * produce is acknowledged and committed, the source is finished.
 *
 * Wiring into the loop, as kafka_source.c: librdkafka writes a byte to one
 * pipe when the consumer queue or the producer's queue (delivery reports)
 * becomes non-empty; a uv_poll wakes the loop and a uv_idle pump drains the
 * consumer in batches of BATCH.  Above MAX_IN_FLIGHT unacknowledged
 * produces (or MAX_IN_FLIGHT_BYTES) the consumer pauses itself until half
 * of them are acknowledged; a keepalive timer serves both queues while
 * paused.  Everything runs on the loop thread; librdkafka's own threads
 * never call back into this file except through the queues served here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "kafka_common.h"
#include "log.h"

#define BATCH 1024
#define KEEPALIVE_MS 500
#define MARKER_MS 200
#define MAX_IN_FLIGHT 100000            /* produces not acknowledged: pause above */
#define MAX_IN_FLIGHT_BYTES (256u << 20)
#define META_TIMEOUT_MS 10000
#define CREATE_TIMEOUT_MS 10000
#define REVOKE_WAIT_MS 10000            /* a revoked partition's deliveries */
#define CLOSE_FLUSH_MS 10000
#define EMPTY_GRACE_MS 3000             /* as kafka_source.c */
#define HEADER_SLACK 512                /* a record's header and framing, over value and key */
#define TXN_MS 100                      /* transactions: how often one is committed */
#define TXN_TIMEOUT_MS 10000

/* ---- state ---------------------------------------------------------------------- */

struct rp_target {
    const char *topic;
    int32_t nparts;
    const int *keys;
    size_t nkeys;
    rd_kafka_topic_t *rkt;
    char *key;                          /* the current record's key text */
    size_t keycap, klen;
};

/* An input record whose produces are not all acknowledged. */
struct flight {
    int64_t off;
    uint32_t left;                      /* produces without a delivery report */
};

/* A partition of the input topic, owned or once owned.  Its ring of
 * records in flight is indexed by sequence numbers that only grow, over
 * every ownership: a delivery report of an earlier ownership (its records
 * were dropped at the revocation) falls before head and is ignored. */
struct rpart {
    int32_t id;
    int assigned, ended;
    int64_t next;                       /* the next offset to read; -1: not known yet */
    int64_t end;                        /* bounded: the high watermark at assignment */
    int64_t max_ts;                     /* greatest event time seen; INT64_MIN: none */
    int64_t marked_ts;                  /* max_ts in the last 'w' marker */
    int64_t committed;                  /* the last position the group confirmed; -1 */
    uint64_t head, tail;                /* ring[head..tail) in flight, by sequence */
    struct flight *ring;
    size_t cap;                         /* a power of two */
};

struct rp_src {
    struct source *s;
    const struct kafka_source_conf *cf;
    char group[512];
    rd_kafka_t *rk;                     /* the consumer */
    rd_kafka_queue_t *q;
    rd_kafka_t *pk;                     /* the producer */
    rd_kafka_queue_t *pq;
    int32_t nsrc;                       /* partitions of the input topic */
    struct rp_target *t;
    size_t nt;
    struct decoder *dec;
    int pipe[2];
    uv_poll_t poll;
    uv_idle_t pump;
    uv_timer_t keepalive, markers, commits;
    int host_paused, backlog, closing, nclosed, finished, failed, have_poll, started;
    int txn, txn_open;                  /* js->rp_transactions; a transaction is open */
    uint64_t empty_since;
    struct rpart *parts;                /* [nsrc], by partition id */
    size_t nparts;
    size_t max_bytes;                   /* the producer's message.max.bytes */
    uint64_t in_flight_bytes;
    struct source_own_stats own;
    struct source_commit_stats cstats;
    rd_kafka_message_t *msgs[BATCH];
    struct log_rate err_rate, commit_rate;
    int steady;                     /* the consumer's join state is "steady" (statistics) */
    uint64_t hold_until;            /* a rebalance runs: no commit goes out before (ms) */
    void (*done)(struct source *);
};

#define NHANDLES 5                      /* pump, keepalive, markers, commits, poll */

/* A delivery report's opaque: a data record's partition and sequence
 * number, with the top bit set; markers carry 0. */
#define OP_DATA (UINT64_C(1) << 63)
#define OP_SLOT_SHIFT 47
#define OP_SEQ_MASK ((UINT64_C(1) << OP_SLOT_SHIFT) - 1)

static void fail(struct rp_src *k)
{
    const struct source_host *h = k->s->host;
    if (k->failed)
        return;
    k->failed = 1;
    h->failed(h->ud, k->s->index);
}

/* Partition id's entry; NULL for an id the input topic did not have at
 * the start. */
static struct rpart *part_find(struct rp_src *k, int32_t id)
{
    return id >= 0 && (size_t)id < k->nparts ? &k->parts[id] : NULL;
}

/* One entry per partition of the input topic, indexed by id. */
static SL_MUST_USE int parts_make(struct rp_src *k)
{
    k->parts = calloc((size_t)k->nsrc, sizeof(*k->parts));
    if (k->parts == NULL)
        return -ENOMEM;
    k->nparts = (size_t)k->nsrc;
    for (size_t i = 0; i < k->nparts; i++)
        k->parts[i] = (struct rpart){ .id = (int32_t)i, .next = -1, .end = -1,
                                      .max_ts = INT64_MIN, .marked_ts = INT64_MIN,
                                      .committed = -1 };
    return 0;
}

/* A partition's ownership starts or ends: nothing of the previous one is
 * kept but the sequence numbers and the ring's memory. */
static void part_reset(struct rpart *p, int assigned)
{
    p->assigned = assigned;
    p->ended = 0;
    p->next = p->end = p->committed = -1;
    p->max_ts = p->marked_ts = INT64_MIN;
    p->head = p->tail;
}

/* Where the group may resume the partition: the oldest record still in
 * flight, or the next offset; -1: nothing read yet. */
static int64_t part_position(const struct rpart *p)
{
    return p->head < p->tail ? p->ring[p->head & (p->cap - 1)].off : p->next;
}

/* Records an input record with `left` produces in flight; returns its
 * sequence number, or -ENOMEM. */
static int64_t flight_push(struct rpart *p, int64_t off, uint32_t left)
{
    if (p->tail - p->head == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        struct flight *r = malloc(cap * sizeof(*r));
        if (r == NULL)
            return -ENOMEM;
        for (uint64_t q = p->head; q < p->tail; q++)
            r[q & (cap - 1)] = p->ring[q & (p->cap - 1)];
        free(p->ring);
        p->ring = r;
        p->cap = cap;
    }
    uint64_t seq = p->tail++;
    p->ring[seq & (p->cap - 1)] = (struct flight){ off, left };
    return (int64_t)(seq & OP_SEQ_MASK);
}

/* A produce of record seq is acknowledged.  (Sequence numbers fit the
 * opaque's 47 bits for 10^14 records of a partition.) */
static void flight_ack(struct rpart *p, uint64_t seq)
{
    if (seq < p->head || seq >= p->tail)
        return;                         /* of an ownership that ended */
    struct flight *f = &p->ring[seq & (p->cap - 1)];
    if (f->left > 0)
        f->left--;
    while (p->head < p->tail && p->ring[p->head & (p->cap - 1)].left == 0)
        p->head++;
}

static size_t owned(const struct rp_src *k)
{
    size_t n = 0;
    for (size_t i = 0; i < k->nparts; i++)
        n += k->parts[i].assigned != 0;
    return n;
}

/* ---- producing --------------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct rp_src *k = opaque;
    uint64_t op = (uint64_t)(uintptr_t)m->_private;
    (void)rk;
    if (k->own.in_flight > 0)
        k->own.in_flight--;
    size_t bytes = m->len + m->key_len;
    k->in_flight_bytes = k->in_flight_bytes > bytes ? k->in_flight_bytes - bytes : 0;
    if (m->err) {
        /* with an unlimited timeout and the gapless guarantee, only a fatal
         * error ends a delivery: the partition would get a gap */
        if (!k->closing) {
            char why[256];
            if (rd_kafka_fatal_error(k->pk, why, sizeof(why)) == 0)
                snprintf(why, sizeof(why), "%s", rd_kafka_err2str(m->err));
            log_msg(LOG_ERR, k->s->name, "a record to %s [%" PRId32 "] was not delivered: %s",
                    rd_kafka_topic_name(m->rkt), m->partition, why);
            fail(k);
        }
        return;
    }
    if (!(op & OP_DATA)) {
        return;
    }
    k->own.produced++;
    struct rpart *p = part_find(k, (int32_t)((op & ~OP_DATA) >> OP_SLOT_SHIFT));
    if (p != NULL)
        flight_ack(p, op & OP_SEQ_MASK);
}

/* Serves delivery reports and other producer events. */
static void serve_producer(struct rp_src *k, int wait_ms)
{
    if (k->pk != NULL)
        rd_kafka_poll(k->pk, wait_ms);
}

static SL_MUST_USE int txn_begin(struct rp_src *k);

/* Produces one message; waits for room when librdkafka's queue is full
 * (the consumer pauses itself long before, so this is rare), never drops.
 * Returns 0 or -EIO (logged). */
static SL_MUST_USE int produce(struct rp_src *k, const struct rp_target *t, int32_t part,
                               const char *val, size_t vlen, const char *key, size_t klen,
                               int64_t ts, const struct rp_meta *m, uint64_t op)
{
    char hdr[RP_HEADER_MAX];
    int hl = rp_meta_format(m, hdr, sizeof(hdr));
    if (hl < 0 || txn_begin(k) < 0)
        return -EIO;                    /* (the header cannot fail: RP_HEADER_MAX fits all) */
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            k->pk, RD_KAFKA_V_RKT(t->rkt), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)val, vlen),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0),
            RD_KAFKA_V_HEADER(RP_HEADER, hdr, hl), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)op),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            log_msg(LOG_ERR, k->s->name, "producing to %s [%" PRId32 "]: %s", t->topic, part,
                    rd_kafka_err2str(e));
            return -EIO;
        }
        log_rate_msg(&k->err_rate, LOG_NOTICE, k->s->name,
                     "the producer's queue is full; waiting for deliveries");
        serve_producer(k, 100);
    }
    k->own.in_flight++;
    k->in_flight_bytes += vlen + klen;
    return 0;
}

/* A marker of input partition p to every partition of every target. */
static SL_MUST_USE int send_markers(struct rp_src *k, struct rpart *p, char kind)
{
    struct rp_meta m = { .kind = kind, .src = p->id, .nsrc = k->nsrc,
                         .off = p->next, .max_ts = p->max_ts };
    for (size_t i = 0; i < k->nt; i++)
        for (int32_t r = 0; r < k->t[i].nparts; r++) {
            if (produce(k, &k->t[i], r, NULL, 0, NULL, 0, 0, &m, 0) < 0)
                return -EIO;
            k->own.markers++;
        }
    if (kind == RP_WATERMARK)
        p->marked_ts = p->max_ts;
    return 0;
}

/* ---- commits ------------------------------------------------------------------------- */

/* While the group rebalances no commit goes out, as in kafka_source.c: a
 * commit queued behind our own JoinGroup makes librdkafka take the whole
 * assignment for lost.  A "rebalance in progress" (or a stale generation)
 * answer holds commits until the next assignment, at most
 * REBALANCE_HOLD_MS; the statistics' join state says when the member
 * rejoins on its own. */
#define REBALANCE_HOLD_MS 7000
#define STATS_MS "100"

static void hold_commits(struct rp_src *k)
{
    if (k->hold_until == 0)
        k->hold_until = uv_hrtime() / 1000000 + REBALANCE_HOLD_MS;
}

static int commits_held(struct rp_src *k)
{
    if (k->hold_until != 0 && uv_hrtime() / 1000000 >= k->hold_until)
        k->hold_until = 0;
    return k->hold_until != 0 || !k->steady;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct rp_src *k = opaque;
    (void)rk, (void)len;
    int steady = kafka_join_steady(json);
    if (steady >= 0)
        k->steady = steady;
    return 0;                           /* librdkafka frees json */
}

/* The positions of owned partitions (one, or all with only = -1) that have
 * moved past what the group has: the oldest record in flight, or (in a
 * transaction, which commits every record produced with the offsets) the
 * next offset. */
static rd_kafka_topic_partition_list_t *positions(struct rp_src *k, int32_t only)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->nparts + 1);
    for (size_t i = 0; i < k->nparts; i++) {
        struct rpart *p = &k->parts[i];
        int64_t pos = k->txn ? p->next : part_position(p);
        if (!p->assigned || (only >= 0 && p->id != only) || pos < 0 || pos <= p->committed)
            continue;
        rd_kafka_topic_partition_list_add(l, k->cf->topic, p->id)->offset = pos;
    }
    return l;
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct rp_src *k = opaque;
    (void)rk;
    if (l == NULL)
        return;
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_resp_err_t e = l->elems[i].err ? l->elems[i].err : err;
        struct rpart *p = part_find(k, l->elems[i].partition);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->cstats.ok++;
            k->own.commits++;
            if (p != NULL && p->assigned && l->elems[i].offset > p->committed)
                p->committed = l->elems[i].offset;
            continue;
        }
        /* not committed: the next interval tries again from the position
         * then, or the partition's next owner replays from the group's
         * older commit (stage 2 drops what it has applied) */
        if (e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
            e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
            hold_commits(k);
        if (e == RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST || e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID ||
            e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
            k->cstats.fenced++;
        else
            k->cstats.retried++;
        log_rate_msg(&k->commit_rate, LOG_NOTICE, k->s->name,
                     "commit of %s [%" PRId32 "] at %" PRId64 ": %s", k->cf->topic,
                     l->elems[i].partition, l->elems[i].offset, rd_kafka_err2str(e));
    }
}

/* Commits the positions that moved (one partition, or all with only = -1):
 * asynchronously (the answers come through the consumer queue), or
 * synchronously.  Returns 0, or -EIO when a synchronous one failed. */
static int commit_positions(struct rp_src *k, int32_t only, int sync)
{
    if (k->rk == NULL || (!sync && commits_held(k)))
        return 0;                       /* the next interval tries again */
    rd_kafka_topic_partition_list_t *l = positions(k, only);
    int rc = 0;
    if (l->cnt > 0) {
        uint64_t bad = k->cstats.retried + k->cstats.fenced;
        rd_kafka_resp_err_t e = rd_kafka_commit_queue(k->rk, l, sync ? NULL : k->q, on_commit, k);
        if (e) {
            on_commit(k->rk, e, l, k);  /* refused before it went out */
        }
        if (e || (sync && k->cstats.retried + k->cstats.fenced > bad))
            rc = -EIO;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* ---- transactions ------------------------------------------------------------------ */

/*
 * With `repartition: { transactions: true }` the records, the markers and
 * the input positions go in Kafka transactions: one is begun before the
 * first produce after a commit, and every TXN_MS the positions are added
 * (send_offsets_to_transaction, with the consumer's group metadata) and it
 * is committed.  Stage 2 reads with isolation.level=read_committed, so it
 * never sees records of a transaction that did not commit.  The two calls
 * block the loop while the cluster answers (a few ms on a local cluster,
 * tens of ms on a remote one; commit_transaction also waits for the
 * transaction's deliveries): accepted, as the rebalance callbacks' sync
 * commits are.  An error that needs the transaction aborted (or a lost
 * assignment) aborts it and stops the source: the restart resumes from the
 * last committed transaction.  A retriable one is tried again next time.
 */

/* Logs e (and frees it); returns 0 for none, -EAGAIN when it may be tried
 * again, else -EIO. */
static int txn_error(struct rp_src *k, const char *what, rd_kafka_error_t *e)
{
    if (e == NULL)
        return 0;
    int retry = rd_kafka_error_is_retriable(e) && !rd_kafka_error_txn_requires_abort(e) &&
                !rd_kafka_error_is_fatal(e);
    if (retry)
        log_rate_msg(&k->commit_rate, LOG_NOTICE, k->s->name, "%s: %s; retrying", what,
                     rd_kafka_error_string(e));
    else
        log_msg(LOG_ERR, k->s->name, "%s: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return retry ? -EAGAIN : -EIO;
}

/* The transaction cannot commit: aborted (best effort, so that stage 2's
 * read_committed consumers are not held back until it times out), and the
 * source stops. */
static void txn_fail(struct rp_src *k)
{
    if (k->txn_open && !rd_kafka_fatal_error(k->pk, NULL, 0)) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(k->pk, TXN_TIMEOUT_MS);
        if (e != NULL) {
            log_msg(LOG_WARNING, k->s->name, "abort_transaction: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    k->txn_open = 0;
    log_msg(LOG_ERR, k->s->name, "the transaction was aborted; a restart resumes from the "
            "last committed one");
    fail(k);
}

/* A transaction is open before anything is produced in transactional mode. */
static SL_MUST_USE int txn_begin(struct rp_src *k)
{
    if (!k->txn || k->txn_open)
        return 0;
    if (txn_error(k, "begin_transaction", rd_kafka_begin_transaction(k->pk)) < 0)
        return -EIO;
    k->txn_open = 1;
    return 0;
}

/* Commits the open transaction with the input positions.  Returns 0, or
 * -EAGAIN (still open, tried again later), or -EIO (the source failed). */
static int txn_commit(struct rp_src *k)
{
    if (!k->txn_open || k->failed)
        return k->failed ? -EIO : 0;
    rd_kafka_topic_partition_list_t *l = positions(k, -1);
    int rc = 0;
    if (l->cnt > 0) {
        rd_kafka_consumer_group_metadata_t *gm = rd_kafka_consumer_group_metadata(k->rk);
        rc = txn_error(k, "send_offsets_to_transaction",
                       rd_kafka_send_offsets_to_transaction(k->pk, l, gm, TXN_TIMEOUT_MS));
        rd_kafka_consumer_group_metadata_destroy(gm);
    }
    if (rc == 0)
        rc = txn_error(k, "commit_transaction",
                       rd_kafka_commit_transaction(k->pk, TXN_TIMEOUT_MS));
    if (rc == 0) {
        k->txn_open = 0;
        for (int i = 0; i < l->cnt; i++) {
            struct rpart *p = part_find(k, l->elems[i].partition);
            if (p != NULL && l->elems[i].offset > p->committed)
                p->committed = l->elems[i].offset;
            k->cstats.ok++;
            k->own.commits++;
        }
    } else if (rc == -EAGAIN) {
        k->cstats.retried++;
    } else {
        k->cstats.failed++;
        txn_fail(k);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* txn_commit, tried again on retriable errors for up to timeout_ms. */
static int txn_commit_retrying(struct rp_src *k, int timeout_ms)
{
    uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)timeout_ms;
    int rc;
    while ((rc = txn_commit(k)) == -EAGAIN && uv_hrtime() / 1000000 < deadline)
        serve_producer(k, 100);
    return rc;
}

/* Commits what was produced: the transaction, or else the positions
 * whose records are all acknowledged (asynchronously, or synchronously). */
static int commit_now(struct rp_src *k, int sync)
{
    return k->txn ? txn_commit(k) : commit_positions(k, -1, sync);
}

static void on_commit_timer(uv_timer_t *t)
{
    struct rp_src *k = t->data;
    if (!k->closing && !k->failed)
        (void)commit_now(k, 0);         /* the outcomes are counted where they come */
}

/* ---- bounded mode ------------------------------------------------------------------- */

static void pause_one(struct rp_src *k, int32_t id)
{
    kafka_pause_one(k->rk, k->cf->topic, id, 1);
}

/* The partition has reached its end offset: its 'e' markers follow its
 * last record into every repartition partition. */
static void part_end(struct rp_src *k, struct rpart *p, int pause)
{
    if (p->ended)
        return;
    p->ended = 1;
    if (pause)
        pause_one(k, p->id);
    if (send_markers(k, p, RP_END) < 0)
        fail(k);
}

static void check_finished(struct rp_src *k)
{
    const struct source_host *h = k->s->host;
    size_t n = 0;
    if (!h->bounded || k->finished || k->closing || k->failed)
        return;
    for (size_t i = 0; i < k->nparts; i++) {
        if (!k->parts[i].assigned)
            continue;
        if (!k->parts[i].ended)
            return;
        n++;
    }
    if (n == 0) {
        if (k->empty_since == 0 || uv_now(h->loop) - k->empty_since < EMPTY_GRACE_MS)
            return;
        k->finished = 1;
        LOG(LOG_INFO, k->s->name, "the group has given this instance no partition for %d s; "
            "nothing to read", EMPTY_GRACE_MS / 1000);
        h->finished(h->ud, k->s->index);
        return;
    }
    if (!k->txn && k->own.in_flight > 0)
        return;                         /* the end markers and records are not all in */
    int rc = commit_now(k, 1);
    if (rc == -EAGAIN || k->failed)
        return;                         /* the transaction is tried again, or failed */
    if (rc < 0)
        log_msg(LOG_WARNING, k->s->name, "the final positions could not be committed; "
                "a later run replays them (stage 2 drops what it has)");
    k->finished = 1;
    LOG(LOG_INFO, k->s->name, "every assigned partition has reached its end offset; "
        "%" PRIu64 " records produced", k->own.produced);
    h->finished(h->ud, k->s->index);
}

/* ---- consuming ---------------------------------------------------------------------- */

/* The engine's pause (the host's backpressure) or our own (too much in
 * flight): the assigned partitions stop fetching. */
static void apply_pause(struct rp_src *k)
{
    int pause = k->host_paused || k->backlog;
    if (k->rk == NULL)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->nparts + 1);
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].assigned && !k->parts[i].ended)
            rd_kafka_topic_partition_list_add(l, k->cf->topic, k->parts[i].id);
    if (pause)
        rd_kafka_pause_partitions(k->rk, l);
    else
        rd_kafka_resume_partitions(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (pause)
        uv_idle_stop(&k->pump);
}

static void on_pump(uv_idle_t *h);

/* Pauses above the high-water mark of produces in flight, resumes below
 * half of it. */
static void check_backlog(struct rp_src *k)
{
    int over = k->own.in_flight >= MAX_IN_FLIGHT || k->in_flight_bytes >= MAX_IN_FLIGHT_BYTES;
    int under = k->own.in_flight < MAX_IN_FLIGHT / 2 &&
                k->in_flight_bytes < MAX_IN_FLIGHT_BYTES / 2;
    if (!k->backlog && over) {
        k->backlog = 1;
        apply_pause(k);
    } else if (k->backlog && under) {
        k->backlog = 0;
        if (!k->host_paused) {
            apply_pause(k);
            if (!k->closing)
                uv_idle_start(&k->pump, on_pump);
        }
    }
}

/* The key text of rec for every target, into each target's buffer.
 * Returns 0, or a negative errno (logged). */
static SL_MUST_USE int key_texts(struct rp_src *k, const struct record *rec, size_t len)
{
    for (size_t i = 0; i < k->nt; i++) {
        struct rp_target *t = &k->t[i];
        /* escaping makes a string at most 6 times longer */
        size_t need = 6 * len + 64;
        if (need > t->keycap) {
            char *nk = realloc(t->key, need);
            if (nk == NULL) {
                log_msg(LOG_ERR, k->s->name, "out of memory");
                return -ENOMEM;
            }
            t->key = nk;
            t->keycap = need;
        }
        int kl = rp_key_text(rec, t->keys, t->nkeys, t->key, t->keycap);
        if (kl < 0) {
            log_msg(LOG_ERR, k->s->name, "the key of %s: %s", t->topic, strerror(-kl));
            return kl;
        }
        t->klen = (size_t)kl;
    }
    return 0;
}

/* A record that would be too large for a repartition topic, with its key
 * and header (the producer's message.max.bytes), is rejected as too big
 * before anything of it is produced. */
static int too_big(const struct rp_src *k, size_t len)
{
    for (size_t i = 0; i < k->nt; i++)
        if (len + k->t[i].klen + HEADER_SLACK > k->max_bytes)
            return 1;
    return 0;
}

/* One input record: decoded, then produced to every target.  Returns 0,
 * or a negative code when the source cannot go on (logged). */
static SL_MUST_USE int handle_record(struct rp_src *k, struct rpart *p, rd_kafka_message_t *m)
{
    const struct source_host *h = k->s->host;
    struct record rec;
    struct reject rej;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    k->own.records_in++;
    int rc = decoder_decode(k->dec, m->payload, m->len, ts, &rec, &rej);
    if (rc == 0 && (rc = key_texts(k, &rec, m->len)) < 0)
        return rc;
    if (rc == 0 && too_big(k, m->len)) {
        rej = (struct reject){ .kind = REJ_TOO_BIG, .at = -1,
                               .why = "larger than the repartition topic's records may be "
                                      "(the producer's message.max.bytes)" };
        rc = -EINVAL;
    }
    if (rc < 0) {
        k->own.invalid[rej.kind]++;
        h->invalid(h->ud, k->s->index, m->partition, m->offset, m->payload, m->len, &rej);
        return 0;
    }
    if (rec.event_time != EVTIME_NONE && rec.event_time > p->max_ts)
        p->max_ts = rec.event_time;
    int64_t seq = flight_push(p, m->offset, (uint32_t)k->nt);
    if (seq < 0) {
        log_msg(LOG_ERR, k->s->name, "out of memory");
        return -ENOMEM;
    }
    uint64_t op = OP_DATA | ((uint64_t)p->id << OP_SLOT_SHIFT) | (uint64_t)seq;
    struct rp_meta meta = { .kind = RP_DATA, .src = p->id, .nsrc = k->nsrc, .off = m->offset,
                            .max_ts = p->max_ts };
    for (size_t i = 0; i < k->nt; i++) {
        const struct rp_target *t = &k->t[i];
        int32_t r = rp_partition(t->key, t->klen, t->nparts);
        if (produce(k, t, r, m->payload, m->len, t->key, t->klen, ts, &meta, op) < 0)
            return -EIO;
    }
    return 0;
}

/* Returns 0, or a negative code to stop consuming (the host was told). */
static SL_MUST_USE int handle(struct rp_src *k, rd_kafka_message_t *m)
{
    if (m->err) {
        if (kafka_message_error(k->rk, m, k->s->name, &k->err_rate) == 0)
            return 0;
        fail(k);
        return -EIO;
    }
    struct rpart *p = part_find(k, m->partition);
    if (p == NULL) {
        log_msg(LOG_ERR, k->s->name, "%s has more partitions than the %" PRId32 " it had at the "
                "start; restart sluice (changing the count loses exactness)", k->cf->topic, k->nsrc);
        fail(k);
        return -EIO;
    }
    if (!p->assigned || p->ended)
        return 0;                       /* not (or no longer) ours */
    if (p->next >= 0 && m->offset < p->next)
        return 0;                       /* seen already (redelivered after a pause) */
    int rc = handle_record(k, p, m);
    if (rc < 0) {
        fail(k);
        return rc;
    }
    p->next = m->offset + 1;
    if (k->s->host->bounded && p->end >= 0 && p->next >= p->end)
        part_end(k, p, 1);
    return 0;
}

/* Drains up to one batch, waiting up to wait_ms for the first event;
 * returns how many events came out, or the negative code that stopped it. */
static ssize_t drain_wait(struct rp_src *k, int wait_ms)
{
    ssize_t n = rd_kafka_consume_batch_queue(k->q, wait_ms, k->msgs, BATCH);
    ssize_t rc = n;
    for (ssize_t i = 0; i < n; i++) {
        if (rc >= 0 && !k->failed) {
            int e = handle(k, k->msgs[i]);
            if (e < 0)
                rc = e;
        }
        rd_kafka_message_destroy(k->msgs[i]);
    }
    serve_producer(k, 0);
    check_backlog(k);
    check_finished(k);
    return rc;
}

static void on_pump(uv_idle_t *h)
{
    struct rp_src *k = h->data;
    if (k->closing || k->failed || k->host_paused || k->backlog || drain_wait(k, 0) <= 0)
        uv_idle_stop(&k->pump);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct rp_src *k = h->data;
    (void)status, (void)events;
    kafka_wake_drain(k->pipe[0]);
    if (k->closing)
        return;
    serve_producer(k, 0);
    check_backlog(k);
    if (!k->failed && !k->host_paused && !k->backlog)
        uv_idle_start(&k->pump, on_pump);
    check_finished(k);
}

/* Bounded: partitions assigned while the group's commits could not be read
 * (bounds) ask again from the keepalive, outside the rebalance callback,
 * until the coordinator answers; one already at its end then ends (its 'e'
 * markers go out). */
static void positions_known(struct rp_src *k)
{
    if (!k->s->host->bounded || k->failed)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < k->nparts; i++) {
        struct rpart *p = &k->parts[i];
        if (p->assigned && !p->ended && p->next < 0 && p->end >= 0)
            rd_kafka_topic_partition_list_add(l, k->cf->topic, p->id);
    }
    if (l->cnt > 0 && rd_kafka_committed(k->rk, l, 1000) == 0) {
        rd_kafka_topic_partition_list_t *b = rd_kafka_topic_partition_list_copy(l);
        if (kafka_list_offsets(k->rk, b, RD_KAFKA_OFFSET_BEGINNING, k->s->name) == 0) {
            for (int i = 0; i < l->cnt; i++) {
                struct rpart *p = part_find(k, l->elems[i].partition);
                if (p == NULL || l->elems[i].err || p->next >= 0)
                    continue;       /* not answered yet, or a record told it */
                int64_t from = l->elems[i].offset >= 0 ? l->elems[i].offset
                               : k->cf->start == START_LATEST ? p->end : b->elems[i].offset;
                if (from < b->elems[i].offset)
                    from = b->elems[i].offset;
                p->next = from;
                if (p->next >= p->end)
                    part_end(k, p, 1);
            }
        }
        rd_kafka_topic_partition_list_destroy(b);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_keepalive(uv_timer_t *t)
{
    struct rp_src *k = t->data;
    if (k->closing)
        return;
    positions_known(k);
    if (!uv_is_active((uv_handle_t *)&k->pump))
        (void)drain_wait(k, 0);         /* serves callbacks; a paused consumer fetches nothing */
    serve_producer(k, 0);
    char why[256];
    if (!k->failed && rd_kafka_fatal_error(k->pk, why, sizeof(why))) {
        log_msg(LOG_ERR, k->s->name, "fatal producer error: %s", why);
        fail(k);
    }
    check_backlog(k);
    check_finished(k);
}

static void on_markers(uv_timer_t *t)
{
    struct rp_src *k = t->data;
    if (k->closing || k->failed)
        return;
    for (size_t i = 0; i < k->nparts; i++) {
        struct rpart *p = &k->parts[i];
        if (p->assigned && !p->ended && p->max_ts > p->marked_ts && send_markers(k, p, RP_WATERMARK) < 0) {
            fail(k);
            return;
        }
    }
}

/* ---- rebalances ------------------------------------------------------------------------ */

/* Bounded mode: where each new partition starts (the group's commit, or
 * `start`) and where it ends; partitions with nothing to read end now. */
static SL_MUST_USE int bounds(struct rp_src *k, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_topic_partition_list_t *e = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_topic_partition_list_t *b = rd_kafka_topic_partition_list_copy(l);
    /* the group's commits: where reading starts, so whether a partition is
     * at its end already.  The coordinator may not answer while the group
     * rebalances (the embedded broker, after a member died): then the
     * consumer's own position says it later (positions_known) */
    int known = kafka_committed(k->rk, c, k->s->name) == 0;
    if (!known)
        log_msg(LOG_NOTICE, k->s->name, "where reading starts is not known yet: the "
                "consumer's position will tell");
    int rc = kafka_list_offsets(k->rk, e, RD_KAFKA_OFFSET_END, k->s->name);
    if (rc == 0)
        rc = kafka_list_offsets(k->rk, b, RD_KAFKA_OFFSET_BEGINNING, k->s->name);
    for (int i = 0; rc == 0 && i < l->cnt; i++) {
        struct rpart *p = part_find(k, l->elems[i].partition);
        int64_t from = c->elems[i].offset >= 0 ? c->elems[i].offset
                       : k->cf->start == START_LATEST ? e->elems[i].offset : b->elems[i].offset;
        if (from < b->elems[i].offset)
            from = b->elems[i].offset;  /* the commit's records are gone */
        p->end = e->elems[i].offset;
        p->next = known ? from : -1;
    }
    rd_kafka_topic_partition_list_destroy(c);
    rd_kafka_topic_partition_list_destroy(e);
    rd_kafka_topic_partition_list_destroy(b);
    return rc;
}

static SL_MUST_USE int assigned(struct rp_src *k, rd_kafka_topic_partition_list_t *l)
{
    LOG(LOG_INFO, k->s->name, "assigned %d partition%s of %s", l->cnt, l->cnt == 1 ? "" : "s",
        k->cf->topic);
    for (int i = 0; i < l->cnt; i++) {
        struct rpart *p = part_find(k, l->elems[i].partition);
        if (p == NULL) {
            log_msg(LOG_ERR, k->s->name, "%s has more partitions than the %" PRId32 " it had at "
                    "the start; restart sluice (changing the count loses exactness)",
                    k->cf->topic, k->nsrc);
            return -ERANGE;
        }
        part_reset(p, 1);
    }
    if (k->s->host->bounded && l->cnt > 0)
        return bounds(k, l);
    return 0;
}

/* Waits, bounded, until every record of partition p is acknowledged. */
static void wait_deliveries(struct rp_src *k, struct rpart *p)
{
    uint64_t deadline = uv_hrtime() / 1000000 + REVOKE_WAIT_MS;
    while (p->head < p->tail && !k->failed && uv_hrtime() / 1000000 < deadline)
        serve_producer(k, 50);
    if (p->head < p->tail)
        log_msg(LOG_WARNING, k->s->name, "partition %" PRId32 " is revoked with %" PRIu64
                " records not acknowledged; its next owner replays from offset %" PRId64,
                p->id, p->tail - p->head, part_position(p));
}

static void revoked(struct rp_src *k, rd_kafka_topic_partition_list_t *l, int lost)
{
    for (int i = 0; i < l->cnt; i++) {
        struct rpart *p = part_find(k, l->elems[i].partition);
        if (p == NULL || !p->assigned)
            continue;
        if (k->txn) {
            /* the open transaction holds records of this partition: it
             * commits now, with its position, or not at all */
            if (lost)
                txn_fail(k);
            else
                (void)txn_commit_retrying(k, REVOKE_WAIT_MS);
        } else if (!lost) {
            wait_deliveries(k, p);
            int rc = -EIO;              /* "rebalance in progress": tried again, as the
                                         * kafka source does on revocation */
            for (int t = 0; t < 3 && rc < 0; t++)
                rc = commit_positions(k, p->id, 1);
            if (rc < 0)
                log_msg(LOG_WARNING, k->s->name, "partition %" PRId32 " is revoked without its "
                        "last position committed; its next owner replays from the group's",
                        p->id);
        }
        part_reset(p, 0);
    }
    LOG(lost ? LOG_WARNING : LOG_INFO, k->s->name, "%s %d partition%s of %s",
        lost ? "lost" : "revoked", l->cnt, l->cnt == 1 ? "" : "s", k->cf->topic);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct rp_src *k = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);   /* NULL while closing */
    int coop = proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        k->hold_until = 0;              /* the rebalance is over: commits may go out */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && l->cnt > 0 && k->finished &&
        k->s->host->bounded) {
        k->finished = 0;            /* partitions again: read to their end first */
        k->s->host->unfinished(k->s->host->ud, k->s->index);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (assigned(k, l) < 0)
            fail(k);                    /* still take them, as the protocol asks */
        /* paused before they are assigned: a pause survives the assignment,
         * and no fetch starts that a pause set afterwards would race */
        for (int i = 0; i < l->cnt && (k->host_paused || k->backlog); i++)
            kafka_pause_one(k->rk, k->cf->topic, l->elems[i].partition, 1);
        kafka_assign_result(k->s->name, "assign", coop ? rd_kafka_incremental_assign(rk, l) : NULL,
                            coop ? 0 : rd_kafka_assign(rk, l));
        for (int i = 0; i < l->cnt; i++) {
            struct rpart *p = part_find(k, l->elems[i].partition);
            if (p == NULL)
                continue;
            if (!k->failed && k->s->host->bounded && p->next >= p->end)
                part_end(k, p, 1);      /* nothing to read: its end markers now */
            else                        /* a pause survives assignments (librdkafka) */
                kafka_pause_one(k->rk, k->cf->topic, p->id, k->host_paused || k->backlog);
        }
        if (owned(k) == 0) {
            if (k->empty_since == 0 && !k->closing)
                k->empty_since = uv_now(k->s->host->loop);
        } else {
            k->empty_since = 0;
        }
    } else {
        revoked(k, l, rd_kafka_assignment_lost(rk));
        kafka_assign_result(k->s->name, "unassign",
                            coop ? rd_kafka_incremental_unassign(rk, l) : NULL,
                            coop ? 0 : rd_kafka_assign(rk, NULL));
    }
    if (!k->closing)
        check_finished(k);
}

/* ---- topics ---------------------------------------------------------------------------- */

/* topic's partition count into *n (0: it does not exist), from the
 * cluster's metadata; the consumer's metadata requests never create a
 * topic (allow.auto.create.topics is false).  Returns 0 or -EIO (logged). */
static SL_MUST_USE int topic_partitions(struct rp_src *k, const char *topic, int32_t *n)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    if (rkt == NULL) {
        log_msg(LOG_ERR, k->s->name, "topic %s: %s", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -EIO;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->rk, 0, rkt, &md, META_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e == 0 && md->topic_cnt == 1) {
        e = md->topics[0].err;
        *n = e == 0 ? md->topics[0].partition_cnt : 0;
        if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            e = 0;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (e) {
        log_msg(LOG_ERR, k->s->name, "the metadata of %s: %s", topic, rd_kafka_err2str(e));
        return -EIO;
    }
    return 0;
}

/* Creates a repartition topic of n partitions (CreateTopics; delete
 * retention, kept until consumed: stage 2 purges below its commits, as
 * Kafka Streams does).  Returns 0, or a negative errno (logged). */
static SL_MUST_USE int create_topic(struct rp_src *k, const char *topic, int32_t n)
{
    char err[256];
    int rc = -EIO;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, n, -1, err, sizeof(err));
    if (nt == NULL) {
        log_msg(LOG_ERR, k->s->name, "repartition topic %s: %s", topic, err);
        return -EINVAL;
    }
    if (rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "delete") ||
        rd_kafka_NewTopic_set_config(nt, "retention.ms", "-1")) {
        rd_kafka_NewTopic_destroy(nt);
        return -ENOMEM;
    }
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(k->pk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, CREATE_TIMEOUT_MS, err, sizeof(err));
    rd_kafka_AdminOptions_set_operation_timeout(o, CREATE_TIMEOUT_MS, err, sizeof(err));
    rd_kafka_queue_t *rq = rd_kafka_queue_new(k->pk);
    rd_kafka_CreateTopics(k->pk, &nt, 1, o, rq);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(rq, CREATE_TIMEOUT_MS + 2000);
    const char *why = "no answer from the cluster";
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (ev != NULL && rd_kafka_event_error(ev)) {
        why = rd_kafka_event_error_string(ev);
    } else if (res != NULL) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        rd_kafka_resp_err_t e = cnt == 1 ? rd_kafka_topic_result_error(tr[0])
                                         : RD_KAFKA_RESP_ERR__FAIL;
        if (e == 0 || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;                     /* made, or another instance made it just now */
        else
            why = cnt == 1 && rd_kafka_topic_result_error_string(tr[0])
                  ? rd_kafka_topic_result_error_string(tr[0]) : rd_kafka_err2str(e);
    }
    if (rc < 0)
        log_msg(LOG_ERR, k->s->name, "cannot create the repartition topic %s with %" PRId32
                " partition%s: %s; create it with %" PRId32 " partition%s", topic, n,
                n == 1 ? "" : "s", why, n, n == 1 ? "" : "s");
    else
        LOG(LOG_INFO, k->s->name, "created the repartition topic %s with %" PRId32
            " partition%s", topic, n, n == 1 ? "" : "s");
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(rq);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* The input topic's partition count, and each target's topic: found, or
 * created.  Returns 0, or a negative errno (logged). */
static SL_MUST_USE int setup_topics(struct rp_src *k)
{
    const struct job_source *js = k->s->js;
    int rc = topic_partitions(k, k->cf->topic, &k->nsrc);
    if (rc < 0)
        return rc;
    if (k->nsrc == 0) {
        log_msg(LOG_ERR, k->s->name, "the input topic %s does not exist", k->cf->topic);
        return -ENOENT;
    }
    if (k->nsrc > RP_MAX_SOURCES) {
        log_msg(LOG_ERR, k->s->name, "%s has %" PRId32 " partitions; a repartitioned input may "
                "have at most %d", k->cf->topic, k->nsrc, RP_MAX_SOURCES);
        return -EINVAL;
    }
    for (size_t i = 0; i < k->nt; i++) {
        struct rp_target *t = &k->t[i];
        int32_t want = js->rp_partitions > 0 ? (int32_t)js->rp_partitions : k->nsrc;
        if (js->rp_partitions > RP_MAX_PARTITIONS) {
            log_msg(LOG_ERR, k->s->name, "repartition: partitions %" PRId64 ": at most %d",
                    js->rp_partitions, RP_MAX_PARTITIONS);
            return -EINVAL;
        }
        if ((rc = topic_partitions(k, t->topic, &t->nparts)) < 0)
            return rc;
        if (t->nparts == 0) {
            if ((rc = create_topic(k, t->topic, want)) < 0)
                return rc;
            if ((rc = topic_partitions(k, t->topic, &t->nparts)) < 0)
                return rc;
            if (t->nparts == 0)
                t->nparts = want;       /* created; the metadata has not caught up */
        } else if (js->rp_partitions > 0 && t->nparts != want) {
            log_msg(LOG_WARNING, k->s->name, "the repartition topic %s has %" PRId32
                    " partitions, not the %" PRId32 " configured: its own count is used "
                    "(changing the count of a topic in use breaks exactness)", t->topic,
                    t->nparts, want);
        }
        if (t->nparts > RP_MAX_PARTITIONS) {
            log_msg(LOG_ERR, k->s->name, "the repartition topic %s has %" PRId32 " partitions; "
                    "at most %d", t->topic, t->nparts, RP_MAX_PARTITIONS);
            return -EINVAL;
        }
        t->rkt = rd_kafka_topic_new(k->pk, t->topic, NULL);
        if (t->rkt == NULL) {
            log_msg(LOG_ERR, k->s->name, "topic %s: %s", t->topic,
                    rd_kafka_err2str(rd_kafka_last_error()));
            return -EIO;
        }
        LOG(LOG_INFO, k->s->name, "repartitioning %s to %s (%" PRId32 " partition%s)",
            k->cf->topic, t->topic, t->nparts, t->nparts == 1 ? "" : "s");
    }
    return 0;
}

/* ---- the source -------------------------------------------------------------------- */

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct rp_src *k = opaque;
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        return;                         /* found by on_keepalive with its cause */
    log_rate_msg(&k->err_rate, LOG_WARNING, k->s->name, "%s", reason);
}

/* A consumer (with our rebalance callback) or a producer (with our
 * delivery reports) of the input's brokers, the given defaults and the
 * input's properties; NULL when librdkafka refuses them (logged). */
static rd_kafka_t *client_new(struct rp_src *k, rd_kafka_type_t type, const char *const *defaults)
{
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(k->cf->brokers, defaults, k->cf->props.v,
                                           k->cf->props.n, err, sizeof(err));
    if (conf == NULL) {
        log_msg(LOG_ERR, k->s->name, "%s", err);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_stats_cb(conf, on_stats);
    } else {
        char v[32];
        size_t vs = sizeof(v);
        k->max_bytes = rd_kafka_conf_get(conf, "message.max.bytes", v, &vs) == RD_KAFKA_CONF_OK
                       ? (size_t)strtoull(v, NULL, 10) : 1000000;
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        log_msg(LOG_ERR, k->s->name, "%s", err);
    }
    return rk;
}

/* The consumer of the input, in <group>-stage1. */
static SL_MUST_USE int make_consumer(struct rp_src *k)
{
    struct source *s = k->s;
    char iid[256];
    const char *env = getenv("SLUICE_INSTANCE_ID");
    int static_member = env != NULL && env[0] != '\0' &&
                        kafka_prop(&k->cf->props, "group.instance.id") == NULL;
    if (static_member)
        snprintf(iid, sizeof(iid), "%s-stage1", env);
    const char *defaults[] = {
        "group.id", k->group,
        "partition.assignment.strategy", "cooperative-sticky",
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", k->cf->start == START_LATEST ? "latest" : "earliest",
        "allow.auto.create.topics", "false",
        "client.id", "sluice-stage1",
        "session.timeout.ms", "6000",
        "heartbeat.interval.ms", "2000",
        "statistics.interval.ms", STATS_MS,     /* the join state (on_stats) */
        static_member ? "group.instance.id" : NULL, iid,
        NULL,
    };
    if ((k->rk = client_new(k, RD_KAFKA_CONSUMER, defaults)) == NULL)
        return -EINVAL;
    rd_kafka_poll_set_consumer(k->rk);
    k->q = rd_kafka_queue_get_consumer(k->rk);
    if (static_member)
        LOG(LOG_INFO, s->name, "static group member %s (SLUICE_INSTANCE_ID)", iid);
    return 0;
}

/* The idempotent producer to the repartition topics. */
static SL_MUST_USE int make_producer(struct rp_src *k)
{
    struct source *s = k->s;
    char tid[1024];
    if (k->txn) {
        const char *env = getenv("SLUICE_INSTANCE_ID");
        char host[256];
        if (env != NULL && env[0] != '\0')
            snprintf(tid, sizeof(tid), "%.500s-%.255s", k->group, env);
        else if (gethostname(host, sizeof(host)) == 0)
            snprintf(tid, sizeof(tid), "%.500s-%.255s-%ld", k->group, host, (long)getpid());
        else
            snprintf(tid, sizeof(tid), "%.500s-%ld", k->group, (long)getpid());
    }
    const char *defaults[] = {
        /* exactness: no duplicates or reordering within a partition, and
         * no gap: a record is retried until the cluster has it */
        "enable.idempotence", "true",
        "enable.gapless.guarantee", "true",
        "acks", "all",
        "linger.ms", "5",
        "queue.buffering.max.messages", "1000000",
        "client.id", "sluice-stage1",
        /* a transactional producer's records may not outlive its
         * transaction (librdkafka's default: transaction.timeout.ms) */
        k->txn ? "transactional.id" : "message.timeout.ms", k->txn ? tid : "0",
        NULL,
    };
    if ((k->pk = client_new(k, RD_KAFKA_PRODUCER, defaults)) == NULL)
        return -EINVAL;
    k->pq = rd_kafka_queue_get_main(k->pk);
    if (k->txn) {
        /* fences an earlier producer with the same id and ends what it left open */
        if (txn_error(k, "init_transactions",
                      rd_kafka_init_transactions(k->pk, TXN_TIMEOUT_MS)) < 0)
            return -EIO;
        LOG(LOG_INFO, s->name, "producing in transactions as %s", tid);
    }
    return 0;
}

static SL_MUST_USE int make_targets(struct rp_src *k)
{
    const struct job_source *js = k->s->js;
    if (js->ntargets == 0) {
        log_msg(LOG_ERR, k->s->name, "a repartitioning stage without a repartition topic");
        return -EINVAL;
    }
    k->t = calloc(js->ntargets, sizeof(*k->t));
    if (k->t == NULL)
        return -ENOMEM;
    k->nt = js->ntargets;
    for (size_t i = 0; i < k->nt; i++) {
        const struct job_source *tj = &k->s->job->sources[js->targets[i]];
        k->t[i] = (struct rp_target){ .topic = tj->rp_topic, .keys = tj->rp_keys,
                                      .nkeys = tj->nrp_keys };
    }
    return 0;
}

/* The pipe both queues wake the loop through. */
static SL_MUST_USE int wire(struct rp_src *k)
{
    rd_kafka_queue_t *qs[] = { k->q, k->pq };
    int rc = kafka_wake_start(k->s->host->loop, &k->poll, k->pipe, qs, 2, on_readable, k,
                              k->s->name);
    if (rc < 0)
        return rc;
    k->have_poll = 1;
    int64_t every = k->txn ? TXN_MS : k->s->job->state.checkpoint_interval_ms;
    uv_timer_start(&k->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    uv_timer_start(&k->markers, on_markers, MARKER_MS, MARKER_MS);
    uv_timer_start(&k->commits, on_commit_timer, every > 0 ? (uint64_t)every : 30000,
                   every > 0 ? (uint64_t)every : 30000);
    return 0;
}

static int rp_start(struct source *s)
{
    struct rp_src *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->s = s;
    k->cf = s->js->conf;
    k->txn = s->js->rp_transactions;
    k->pipe[0] = k->pipe[1] = -1;
    s->impl = k;
    uv_idle_init(s->host->loop, &k->pump);
    uv_timer_init(s->host->loop, &k->keepalive);
    uv_timer_init(s->host->loop, &k->markers);
    uv_timer_init(s->host->loop, &k->commits);
    k->pump.data = k->keepalive.data = k->markers.data = k->commits.data = k;
    snprintf(k->group, sizeof(k->group), "%s-stage1", k->cf->group);

    int rc = make_targets(k);
    if (rc == 0 && (k->dec = decoder_new(s->js)) == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = make_consumer(k);
    if (rc == 0)
        rc = make_producer(k);
    if (rc == 0)
        rc = setup_topics(k);
    if (rc == 0)
        rc = parts_make(k);
    if (rc == 0)
        rc = wire(k);
    if (rc < 0)
        return rc;

    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, k->cf->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        log_msg(LOG_ERR, s->name, "subscribe %s: %s", k->cf->topic, rd_kafka_err2str(e));
        return -EINVAL;
    }
    k->started = 1;
    LOG(LOG_INFO, s->name, "repartitioning %s (%" PRId32 " partitions) from %s as group %s",
        k->cf->topic, k->nsrc, kafka_bootstrap(k->cf->brokers), k->group);
    uv_idle_start(&k->pump, on_pump);
    return 0;
}

static void rp_pause(struct source *s)
{
    struct rp_src *k = s->impl;
    k->host_paused = 1;
    apply_pause(k);
}

static void rp_resume(struct source *s)
{
    struct rp_src *k = s->impl;
    k->host_paused = 0;
    if (k->backlog)
        return;
    apply_pause(k);
    if (!k->closing && !k->failed)
        uv_idle_start(&k->pump, on_pump);
}

/* The host never asks stage 1 to commit: it commits its own positions. */
static void rp_commit(struct source *s, const struct source_commit *c, size_t n)
{
    (void)s, (void)c, (void)n;
}

/* At the end of a run: every produce acknowledged (up to timeout_ms), then
 * every position committed. */
static int rp_flush_commits(struct source *s, int timeout_ms)
{
    struct rp_src *k = s->impl;
    if (k == NULL || k->pk == NULL || k->rk == NULL)
        return 0;
    if (k->txn)
        return txn_commit_retrying(k, timeout_ms) < 0 ? -EIO : 0;
    if (rd_kafka_flush(k->pk, timeout_ms > 0 ? timeout_ms : 0))
        log_msg(LOG_WARNING, s->name, "%" PRIu64 " records not acknowledged within %d ms; "
                "their input is not committed (a later run replays it)", k->own.in_flight,
                timeout_ms);
    /* one try, unless the group rebalances (a commit then makes librdkafka
     * take the assignment for lost, and a loop here would keep the other
     * consumers of this process from being served); not a failure of the
     * run either way: the next owner replays from the group's older commit,
     * and stage 2 drops what it has applied already */
    int rc = commits_held(k) ? -EAGAIN : commit_positions(k, -1, 1);
    if (rc < 0)
        log_msg(LOG_WARNING, s->name, "the last positions could not be committed; the next "
                "owner replays from the group's commit (stage 2 drops the duplicates)");
    return 0;
}

static void rp_commit_stats(const struct source *s, struct source_commit_stats *out)
{
    const struct rp_src *k = s->impl;
    *out = k != NULL ? k->cstats : (struct source_commit_stats){ 0 };
}

static void rp_own_stats(const struct source *s, struct source_own_stats *out)
{
    const struct rp_src *k = s->impl;
    *out = k != NULL ? k->own : (struct source_own_stats){ 0 };
}

static int64_t rp_lag(const struct source *s, int32_t partition, int64_t next)
{
    struct rp_src *k = s->impl;
    if (k == NULL)
        return -1;
    const struct rpart *p = part_find(k, partition);
    return kafka_lag(k->rk, k->cf->topic, partition, next < 0 && p != NULL ? p->next : next);
}

static void rp_member(const struct source *s, char *buf, size_t size)
{
    const struct rp_src *k = s->impl;
    kafka_member(k != NULL ? k->rk : NULL, buf, size);
}

static void on_closed(uv_handle_t *h)
{
    struct rp_src *k = h->data;
    if (++k->nclosed < NHANDLES)
        return;
    struct source *s = k->s;
    void (*done)(struct source *) = k->done;
    if (k->txn && k->started && !k->failed) {
        if (txn_commit_retrying(k, CLOSE_FLUSH_MS) < 0)
            log_msg(LOG_WARNING, s->name, "the last transaction could not be committed");
    } else if (k->pk != NULL && k->rk != NULL && k->started && !k->failed) {
        if (rd_kafka_flush(k->pk, CLOSE_FLUSH_MS) != 0)
            log_msg(LOG_WARNING, s->name, "closed with %" PRIu64 " records not acknowledged; "
                    "their input is replayed by the next run", k->own.in_flight);
        if (commit_positions(k, -1, 1) < 0)
            log_msg(LOG_WARNING, s->name, "the last positions could not be committed");
    }
    if (k->rk != NULL) {
        rd_kafka_consumer_close(k->rk);     /* leaves the group (revocation commits) */
        LOG(LOG_INFO, s->name, "%" PRIu64 " records in, %" PRIu64 " produced, %" PRIu64
            " markers; commits: %" PRIu64 " confirmed, %" PRIu64 " not", k->own.records_in,
            k->own.produced, k->own.markers, k->cstats.ok, k->cstats.retried + k->cstats.fenced);
    }
    for (size_t i = 0; i < k->nt; i++) {
        if (k->t[i].rkt != NULL)
            rd_kafka_topic_destroy(k->t[i].rkt);
        free(k->t[i].key);
    }
    if (k->q != NULL)
        rd_kafka_queue_destroy(k->q);
    if (k->pq != NULL)
        rd_kafka_queue_destroy(k->pq);
    if (k->rk != NULL)
        rd_kafka_destroy(k->rk);
    if (k->pk != NULL)
        rd_kafka_destroy(k->pk);
    kafka_wake_close(k->pipe);
    for (size_t i = 0; i < k->nparts; i++)
        free(k->parts[i].ring);
    free(k->parts);
    free(k->t);
    decoder_free(k->dec);
    free(k);
    s->impl = NULL;
    if (done != NULL)
        done(s);
}

static void rp_close(struct source *s, void (*done)(struct source *))
{
    struct rp_src *k = s->impl;
    if (k == NULL) {
        if (done != NULL)
            done(s);
        return;
    }
    k->closing = 1;
    k->done = done;
    if (k->q != NULL)
        rd_kafka_queue_io_event_enable(k->q, -1, NULL, 0);
    if (k->pq != NULL)
        rd_kafka_queue_io_event_enable(k->pq, -1, NULL, 0);
    uv_close((uv_handle_t *)&k->pump, on_closed);
    uv_close((uv_handle_t *)&k->keepalive, on_closed);
    uv_close((uv_handle_t *)&k->markers, on_closed);
    uv_close((uv_handle_t *)&k->commits, on_closed);
    if (k->have_poll)
        uv_close((uv_handle_t *)&k->poll, on_closed);
    else
        k->nclosed++;
}

const struct source_ops repartition_source_ops = {
    .type = "repartition",
    .start = rp_start,
    .pause = rp_pause,
    .resume = rp_resume,
    .commit = rp_commit,
    .flush_commits = rp_flush_commits,
    .commit_stats = rp_commit_stats,
    .own_stats = rp_own_stats,
    .lag = rp_lag,
    .member = rp_member,
    .close = rp_close,
};
