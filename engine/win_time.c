/*
 * win_time.c - what the windows in time (tumbling, sliding, session)
 * share in the job file: the `type` key that picks them, the time
 * characteristic, allowed lateness and the late_events sink, as config
 * map entries (WIN_TIME_ENTRIES in engine_int.h), the checks between
 * them, and how `sluice validate` prints them.
 *
 * These run on the loader's side of a descriptor (config/optype.h): they
 * read the job file through confmap.h and touch only the job model.
 */
#include <string.h>

#include "engine_int.h"

const char *const win_time_names[] = { "event", "processing", NULL };

void win_read_late_events(struct cm_ctx *c, struct cm_node *v, void *conf)
{
    struct job_operator *op = conf;
    if (v == NULL)
        return;
    const char *s = cm_scalar(c, v, "'late_events'");
    if (op->window.time == TIME_PROCESSING)
        cm_err(c, cm_key(c, "late_events"), "late_events applies to event time only");
    else if (s != NULL && strcmp(s, "drop") != 0)
        op->window.late_sink = cm_sink_ref(c, v, "late_events", 1);
}

void win_time_validate(struct cm_ctx *c, struct job_operator *op)
{
    const struct job *job = cm_job(c);
    const struct job_source *src = op->source >= 0 ? &job->sources[op->source] : NULL;
    if (op->window.time == TIME_EVENT && src != NULL && !src->has_event_time)
        cm_err(c, NULL, "%s uses event time, but source '%s' has no event_time "
               "(add one, or set time: processing)", cm_what(c), src->name);
    if (cm_key(c, "allowed_lateness") != NULL && op->window.time == TIME_PROCESSING)
        cm_err(c, cm_key(c, "allowed_lateness"), "allowed_lateness applies to event time only");
}

void win_time_print(FILE *out, const struct job *job, const struct job_operator *op)
{
    const struct job_window *w = &op->window;
    char a[32];
    fprintf(out, ", %s time", time_char_name(w->time));
    if (w->time == TIME_EVENT) {
        duration_format(w->allowed_lateness_ms, a, sizeof(a));
        fprintf(out, ", allowed lateness %s, late events %s",
                w->allowed_lateness_ms ? a : "0",
                w->late_sink >= 0 ? job->sinks[w->late_sink].name : "dropped");
    }
}
