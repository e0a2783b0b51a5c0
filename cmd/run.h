/*
 * run.h - the runtime of `sluice run`, shared by cmd_run.c (the loop,
 * connectors, backpressure, lifecycle) and observe.c (what it shows over
 * HTTP).  Not an interface for anything else.
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
#include "checkpoint.h"
#include "counters.h"
#include "graph.h"
#include "http.h"
#include "run_state.h"
#include "service.h"

struct runtime {
    uv_loop_t loop;
    const char *file;               /* the job file, re-read on SIGHUP */
    struct graph g;                 /* the job graph that runs */
    struct broker *broker;
    struct source_host shost;
    struct sink_host khost;
    uv_signal_t sigterm, sigint, sighup, sigusr1;
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
    struct checkpoints *ck;
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

/* observe.c */
void observe_request(void *ud, struct http_req *req, const char *method, const char *path);

#endif
