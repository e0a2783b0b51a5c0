/*
 * reload.h - reading the job file again on SIGHUP, and deciding whether
 * the edited job can take over the running one's state.
 *
 * Pure: it reads a file and compares two job models, and logs what it
 * finds (errors at FILE:LINE:COL, the reason of a refusal); the run
 * (cmd_run.c) does the reload itself.
 */
#ifndef SLUICE_RELOAD_H
#define SLUICE_RELOAD_H

#include "../config/compiler.h"
#include "../config/job.h"

/* Loads and validates file, and checks it can continue from a savepoint
 * of running: the same job name (checkpoints are filed by it), and every
 * operator that keeps its name keeps its definition, unless
 * allow_non_restored lets its state go.  Returns 0 with *out (caller
 * frees with job_free), -EINVAL (the file has errors) or -EPERM (the
 * change is refused); both are logged, ending in "the running job goes on
 * unchanged". */
int reload_read(const char *file, const struct job *running, int allow_non_restored,
                struct job **out) SL_MUST_USE;

#endif
