/*
 * run_state.h - the states of `sluice run` and the moves between them.
 *
 * The run (cmd_run.c) is in exactly one of these states; run_set_state()
 * there is the one function that moves it, and it refuses (a bug: logged,
 * then abort()) any move this table does not allow.  The diagram and the
 * reasons are in docs/internals.md ("The run's lifecycle").
 *
 *   state             what happens                                allowed next
 *   STARTING          a graph is being built: checkpoints set      RUNNING, CLOSING
 *                     up, state restored, sinks opened (at start
 *                     and after a reload's old graph closed)
 *   RUNNING           sources started: records flow, the tick      RELOAD_WAIT, DRAINING,
 *                     fires processing-time windows, checkpoints   CLOSING
 *                     every interval; READY=1 once every source
 *                     has partitions
 *   RELOAD_WAIT       SIGHUP with a valid job: sources paused,     RELOAD_SAVEPOINT, RUNNING
 *                     records still applied, nothing fires;        (abandoned), CLOSING
 *                     waits for a running checkpoint to end
 *   RELOAD_SAVEPOINT  the reload's savepoint is being taken;       SWAPPING_GRAPH, RUNNING
 *                     records that still come are dropped (the     (abandoned), CLOSING
 *                     new graph reads them again)
 *   SWAPPING_GRAPH    the old graph's sources and sinks close      STARTING, CLOSING
 *   DRAINING          stopping: sources paused, sinks flushing     FINAL_CHECKPOINT, CLOSING
 *   FINAL_CHECKPOINT  every write acknowledged: the final          CLOSING
 *                     checkpoint is being taken
 *   CLOSING           every source and sink closes                 STOPPED
 *   STOPPED           they have: the last handles close and the    (none)
 *                     loop ends
 *
 * Any state but CLOSING and STOPPED may go to CLOSING: a runtime failure
 * closes everything at once.
 */
#ifndef SLUICE_RUN_STATE_H
#define SLUICE_RUN_STATE_H

enum run_state {
    RUN_STARTING,
    RUN_RUNNING,
    RUN_RELOAD_WAIT,
    RUN_RELOAD_SAVEPOINT,
    RUN_SWAPPING_GRAPH,
    RUN_DRAINING,
    RUN_FINAL_CHECKPOINT,
    RUN_CLOSING,
    RUN_STOPPED,
};

/* Whether the table above allows the move. */
int run_state_allowed(enum run_state from, enum run_state to);

/* "starting", "reload_wait", ...: for logs. */
const char *run_state_name(enum run_state s);

/* What /status shows: running, reloading, draining or closing. */
const char *run_state_shown(enum run_state s);

/* A reload is under way (RELOAD_WAIT, RELOAD_SAVEPOINT, SWAPPING_GRAPH). */
int run_state_reloading(enum run_state s);

/* The job runs, or reloads (not stopping): /healthz answers ok. */
int run_state_live(enum run_state s);

#endif
