/*
 * run.h - the runtime of `sluice run`, shared by cmd_run.c (the loop,
 * connectors, backpressure, lifecycle) and checkpoint.c (checkpoints,
 * savepoints, restore).  Not an interface for anything else.
 */
#ifndef SLUICE_RUN_H
#define SLUICE_RUN_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "../config/job.h"
#include "../connectors/connector.h"
#include "../connectors/format.h"
#include "../connectors/log.h"
#include "../engine/ckpt_file.h"
#include "../engine/engine.h"
#include "http.h"
#include "service.h"

enum phase { RUNNING, DRAINING, CLOSING };

/* A reload (SIGHUP): wait for a running checkpoint, take a savepoint, close
 * the old graph, start the new one from the savepoint. */
enum reload_phase { RL_NONE, RL_SAVEPOINT_WANTED, RL_SAVEPOINT, RL_CLOSING };

/* Counters of graphs a reload replaced, carried by name into the current
 * one's indices, so the metrics stay monotonic. */
struct totals {
    uint64_t *in, (*invalid)[REJ_NKINDS];   /* per source */
    uint64_t *late, *fired, *lost;          /* per operator */
    uint64_t *written, *retried, *failed;   /* per sink */
};

/* Read positions of one source: next offset per partition. */
struct offsets {
    struct engine_offset *v;
    size_t n, cap;
};

enum ckpt_phase { CK_IDLE, CK_WRITING, CK_ACKING };

struct checkpoints {
    char dir[2048];                 /* state.dir/checkpoints/<job> */
    char spdir[2048];               /* state.dir/savepoints */
    uint64_t next_id;
    enum ckpt_phase phase;
    enum ckpt_kind kind;
    uint64_t id;
    pid_t child;
    char tmp[PATH_MAX], final[PATH_MAX];
    uint64_t started_ns, phase_ns;
    struct offsets *offs;           /* per source, as of the checkpoint */
    int savepoint_wanted;
    int final_wanted;               /* stopping: 1 asked, 2 taken (or tried) */
    uint64_t failed_before_final;   /* failures counted before the final one */
    struct ckpt_writer w;
    uv_timer_t timer;
    uv_signal_t sigchld, sigusr1;
    int started;
    /* figures */
    uint64_t ok, failed;
    uint64_t last_bytes, last_ms, max_stall_us, last_stall_us;
    uint64_t last_id;
    int64_t last_at_ms;
    char restored_from[PATH_MAX];
    int handles;                    /* timer and signal handles initialized */
};

struct runtime {
    uv_loop_t loop;
    const char *file;               /* the job file, re-read on SIGHUP */
    struct job *job;
    struct engine *eng;
    struct source *src;
    struct sink *snk;
    struct broker *broker;
    struct source_host shost;
    struct sink_host khost;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t tick;
    enum phase phase;
    int bounded, exit_code, paused, signalled;
    size_t congested, finished, open;
    uint64_t stop_at;
    uint64_t first_ns, last_ns;     /* first record, end of input or stop */
    struct offsets *offs;           /* per source: where reading stands */
    struct sbuf dl;
    struct log_rate invalid_rate;
    struct checkpoints ck;
    const char *from_savepoint;
    int allow_non_restored;
    /* reload */
    enum reload_phase reload;
    struct job *next_job;
    char reload_path[PATH_MAX];
    int stop_after_reload, closing_graph;
    uint64_t dropped;               /* records that came while sources were stopped */
    struct totals hist;
    /* service */
    struct service svc;
    int *assigned;                  /* per source: a partition was assigned */
    int ready;                      /* READY=1 sent for the current graph */
    uint64_t status_at, status_in;  /* the last STATUS= line */
    struct http_server *http;
    struct http_req *savepoint_req; /* a POST /savepoint waiting for its end */
    int64_t started_ms;             /* wall clock at start */
};

/* cmd_run.c */
void rt_fail(struct runtime *rt, const char *why);
int rt_new_engine(struct runtime *rt);
/* Every savepoint's end: its file, or NULL when it failed. */
void rt_savepoint_done(struct runtime *rt, const char *path);
/* Totals sized for a job; the run's counters (replaced graphs included). */
int totals_new(const struct job *job, struct totals *t);
void totals_free(struct totals *t);
void rt_totals(const struct runtime *rt, struct totals *t);

/* observe.c */
void observe_request(void *ud, struct http_req *req, const char *method, const char *path);
void observe_savepoint_done(struct runtime *rt, const char *path);

/* checkpoint.c */
int chkpt_setup(struct runtime *rt);             /* dirs, ids, handlers; 0 or -errno */
/* The newest usable checkpoint, or --from-savepoint; logs what it did.
 * Returns 0 (restored, or nothing to restore), -ENOMEM (a runtime failure:
 * nothing older is tried), or another negative code when the state cannot
 * be used as asked (the job refuses it, or the named savepoint is not
 * usable: a configuration error). */
int chkpt_restore(struct runtime *rt);
void chkpt_take(struct runtime *rt, enum ckpt_kind kind);
void chkpt_poll(struct runtime *rt);             /* from the tick: completion, timeouts */
int chkpt_busy(const struct runtime *rt);
void chkpt_stop(struct runtime *rt);             /* a reload: stops, keeps the handles */
void chkpt_close(struct runtime *rt);            /* stops and closes the handles */
size_t rt_offsets(void *ud, int source, struct engine_offset *out, size_t max);
/* the partition's entry, appended (next = -1) if new; NULL when out of memory */
struct engine_offset *offsets_slot(struct offsets *o, int32_t partition);

#endif
