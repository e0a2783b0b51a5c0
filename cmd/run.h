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
#include "counters.h"
#include "graph.h"
#include "http.h"
#include "run_state.h"
#include "service.h"

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
    struct graph g;                 /* the job graph that runs */
    struct broker *broker;
    struct source_host shost;
    struct sink_host khost;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t tick;
    enum run_state state;           /* moved by run_set_state() only */
    int bounded, exit_code;
    int paused;                     /* the sources are paused */
    int signalled;                  /* SIGTERM or SIGINT came: stop within the deadline */
    size_t congested, finished, open;
    uint64_t stop_at;
    uint64_t first_ns, last_ns;     /* first record, end of input or stop */
    struct sbuf dl;
    struct log_rate invalid_rate;
    struct checkpoints ck;
    uint64_t failed_before_final;   /* checkpoints failed before the final one */
    const char *from_savepoint;
    int allow_non_restored;
    /* reload */
    struct job *next_job;
    char reload_path[PATH_MAX];
    uint64_t dropped;               /* records that came while sources were stopped */
    struct counters *counters;
    /* service */
    struct service svc;
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

#endif
