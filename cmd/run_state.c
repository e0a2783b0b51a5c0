/*
 * run_state.c - the table of run_state.h: which moves are allowed, and
 * what each state is called.  Pure functions of the state; the one that
 * moves the run is run_set_state() in cmd_run.c.
 */
#include "run_state.h"

#define TO(s) (1u << (s))

/* Keep in step with the table in run_state.h and docs/internals.md. */
static const unsigned allowed[] = {
    [RUN_STARTING] = TO(RUN_RUNNING) | TO(RUN_CLOSING),
    [RUN_RUNNING] = TO(RUN_RELOAD_WAIT) | TO(RUN_DRAINING) | TO(RUN_CLOSING),
    [RUN_RELOAD_WAIT] = TO(RUN_RELOAD_SAVEPOINT) | TO(RUN_RUNNING) | TO(RUN_CLOSING),
    [RUN_RELOAD_SAVEPOINT] = TO(RUN_SWAPPING_GRAPH) | TO(RUN_RUNNING) | TO(RUN_CLOSING),
    [RUN_SWAPPING_GRAPH] = TO(RUN_STARTING) | TO(RUN_CLOSING),
    [RUN_DRAINING] = TO(RUN_FINAL_CHECKPOINT) | TO(RUN_CLOSING),
    [RUN_FINAL_CHECKPOINT] = TO(RUN_CLOSING),
    [RUN_CLOSING] = TO(RUN_STOPPED),
    [RUN_STOPPED] = 0,
};

static const char *const names[] = {
    [RUN_STARTING] = "starting",
    [RUN_RUNNING] = "running",
    [RUN_RELOAD_WAIT] = "reload_wait",
    [RUN_RELOAD_SAVEPOINT] = "reload_savepoint",
    [RUN_SWAPPING_GRAPH] = "swapping_graph",
    [RUN_DRAINING] = "draining",
    [RUN_FINAL_CHECKPOINT] = "final_checkpoint",
    [RUN_CLOSING] = "closing",
    [RUN_STOPPED] = "stopped",
};

static int valid(enum run_state s)
{
    return (unsigned)s < sizeof(names) / sizeof(names[0]);
}

int run_state_allowed(enum run_state from, enum run_state to)
{
    return valid(from) && valid(to) && (allowed[from] & TO(to)) != 0;
}

const char *run_state_name(enum run_state s)
{
    return valid(s) ? names[s] : "invalid";
}

int run_state_reloading(enum run_state s)
{
    return s == RUN_RELOAD_WAIT || s == RUN_RELOAD_SAVEPOINT || s == RUN_SWAPPING_GRAPH;
}

int run_state_live(enum run_state s)
{
    return s == RUN_STARTING || s == RUN_RUNNING || run_state_reloading(s);
}

const char *run_state_shown(enum run_state s)
{
    if (run_state_reloading(s))
        return "reloading";
    if (s == RUN_DRAINING || s == RUN_FINAL_CHECKPOINT)
        return "draining";
    return run_state_live(s) ? "running" : "closing";
}
