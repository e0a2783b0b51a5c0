/*
 * reload.c - the edited job file of a reload (reload.h): load it, log its
 * errors, and refuse a change the running state cannot carry over.
 *
 * An operator's state is matched by name and by a fingerprint of its
 * definition (engine_op_fingerprint), as a restore does, so what a reload
 * accepts is exactly what a restart from its savepoint would.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../config/diag.h"
#include "../connectors/log.h"
#include "../engine/ckpt_file.h"
#include "../engine/engine.h"
#include "reload.h"

static void log_diags(struct diags *d, const char *file)
{
    diags_sort(d);
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].line > 0)
            log_msg(LOG_ERR, "reload", "%s:%d:%d: %s", file, d->v[i].line, d->v[i].col,
                    d->v[i].msg);
        else
            log_msg(LOG_ERR, "reload", "%s: %s", file, d->v[i].msg);
    }
    if (d->dropped > 0)
        log_msg(LOG_ERR, "reload", "%s: %zu more errors", file, d->dropped);
}

/* Returns 0, or -EPERM with the reason in why. */
static int compatible(const struct job *oj, const struct job *nj, int allow_non_restored,
                      char *why, size_t size)
{
    if (strcmp(oj->name, nj->name) != 0) {
        snprintf(why, size, "the job name changed (%s to %s); a renamed job is a new job: "
                 "stop this one and start the new one from a savepoint", oj->name, nj->name);
        return -EPERM;
    }
    for (size_t n = 0; n < nj->noperators; n++)
        for (size_t o = 0; o < oj->noperators; o++) {
            if (strcmp(nj->operators[n].name, oj->operators[o].name) != 0 ||
                engine_op_fingerprint(nj, (int)n, CKPT_VERSION) ==
                engine_op_fingerprint(oj, (int)o, CKPT_VERSION))
                continue;
            if (!allow_non_restored) {
                snprintf(why, size, "operator %s changed its window or aggregates, so its "
                         "state cannot carry over (rename it to start it empty, or run with "
                         "--allow-non-restored-state)", nj->operators[n].name);
                return -EPERM;
            }
            log_msg(LOG_WARNING, "reload", "operator %s changed: it starts without state",
                    nj->operators[n].name);
        }
    return 0;
}

int reload_read(const char *file, const struct job *running, int allow_non_restored,
                struct job **out)
{
    struct diags d = { 0 };
    struct job *nj = NULL;
    char why[512];
    *out = NULL;
    if (job_load(file, NULL, &nj, &d) < 0) {
        log_diags(&d, file);
        log_msg(LOG_ERR, "reload", "%s has %zu error%s: the running job goes on unchanged",
                file, diags_count(&d) + d.dropped, diags_count(&d) + d.dropped == 1 ? "" : "s");
        diags_free(&d);
        return -EINVAL;
    }
    diags_free(&d);
    if (compatible(running, nj, allow_non_restored, why, sizeof(why)) < 0) {
        log_msg(LOG_ERR, "reload", "refused: %s; the running job goes on unchanged", why);
        job_free(nj);
        return -EPERM;
    }
    if ((nj->http == NULL) != (running->http == NULL) ||
        (nj->http != NULL && strcmp(nj->http, running->http) != 0))
        log_msg(LOG_WARNING, "reload", "http: a new address takes effect at the next start");
    *out = nj;
    return 0;
}
