/*
 * observe.h - what `sluice run` shows about itself over HTTP (http.h):
 * /metrics, /healthz, /status, and POST /savepoint.
 *
 * It reads the running graph (graph.h), the counters (counters.h), the
 * checkpoints' figures (checkpoint.h) and the run's state at request
 * time, through what struct observe_host gives it; it writes none of
 * them.  A POST /savepoint is one chkpt_take() whose callback answers the
 * request.  Loop thread only.
 */
#ifndef SLUICE_OBSERVE_H
#define SLUICE_OBSERVE_H

#include <stdint.h>

#include "../config/compiler.h"
#include "checkpoint.h"
#include "counters.h"
#include "graph.h"
#include "http.h"
#include "keycheck.h"
#include "run_state.h"

struct observe;

struct observe_host {
    void *ud;
    const struct graph *g;
    const struct counters *counters;
    struct checkpoints *ck;         /* figures, and savepoints on request */
    const struct keycheck *keys;    /* keys seen on two partitions */
    int64_t started_ms;             /* wall clock at start */
    enum run_state (*state)(void *ud);
    int (*backpressure)(void *ud);  /* 1 while a congested sink pauses the sources */
};

/* Copies *host.  Returns 0 or -ENOMEM. */
int observe_new(const struct observe_host *host, struct observe **out) SL_MUST_USE;

/* The http_handler; ud is the struct observe. */
void observe_request(void *ud, struct http_req *req, const char *method, const char *path);

/* After the HTTP server has stopped and the checkpoints have closed. */
void observe_free(struct observe *o);

#endif
