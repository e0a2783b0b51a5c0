/*
 * job_print.c - the job graph as `sluice validate` shows it.
 *
 * Sources, then operators (key, window, aggregates in canonical form, so an
 * operator can see how a `where` clause was parsed), then sinks, then the
 * edges.  A connector's settings are printed by its type (conntype.h), which
 * masks its secrets (a Redis URL's password); its passthrough properties
 * (CM_PROPS) are printed here, one a line.  Each operator type prints its
 * own settings (its descriptor's print hook, config/optype.h).
 *
 * Repartitioning (job.h) adds sources after the file's: they are printed
 * one line each, marked as added, and an operator reading one says which
 * repartition topic it reads.  A job without partitioned_by prints as it
 * always has.
 */
#include "job.h"

#include <string.h>

static const char *const ts_names[] = { "iso8601", "epoch_ms", "epoch_s",
                                        "kafka_timestamp" };

static void print_tz(FILE *out, int32_t off)
{
    if (off == 0) {
        fputs("UTC", out);
        return;
    }
    int32_t a = off < 0 ? -off : off;
    fprintf(out, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, (a % 3600) / 60);
}

static void print_keys(FILE *out, const struct job_source *src, const int *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", src->fields[keys[i]].name);
}

/* A source the loader added: one line.  A stage 1 names its group (the
 * input's group with "-stage1": only kafka sources are repartitioned) and
 * the topics it writes. */
static void print_added(FILE *out, const struct job *job, const struct job_source *s)
{
    const struct job_source *in = &job->sources[s->origin];
    if (s->role == SRC_STAGE1) {
        const char *group = cm_str(s->type->map, s->conf, "group");
        fprintf(out, "  %s: repartition stage 1 of %s (", s->name, in->name);
        if (group != NULL)
            fprintf(out, "group %s-stage1, ", group);
        fprintf(out, "%s) ->", s->rp_transactions ? "transactions" : "idempotent");
        for (size_t i = 0; i < s->ntargets; i++)
            fprintf(out, "%s %s", i ? "," : "", job->sources[s->targets[i]].rp_topic);
        fputc('\n', out);
        return;
    }
    fprintf(out, "  %s: %s", s->name, s->type->name);
    if (s->type->print != NULL)
        s->type->print(s->conf, out);
    fprintf(out, " (added: repartition topic, key ");
    print_keys(out, s, s->rp_keys, s->nrp_keys);
    if (s->rp_partitions > 0)
        fprintf(out, ", %lld partitions)\n", (long long)s->rp_partitions);
    else
        fprintf(out, ", as many partitions as the topic of %s)\n", in->name);
}

static void print_source(FILE *out, const struct job *job, const struct job_source *s)
{
    char d1[32], d2[32];
    if (s->role != SRC_INPUT) {
        print_added(out, job, s);
        return;
    }
    fprintf(out, "  %s: %s", s->name, s->type->name);
    if (s->type->print != NULL)
        s->type->print(s->conf, out);
    fputc('\n', out);
    fprintf(out, "    schema: ");
    for (size_t i = 0; i < s->nfields; i++)
        fprintf(out, "%s%s %s", i ? ", " : "", s->fields[i].name,
                value_type_name(s->fields[i].type));
    fputc('\n', out);
    if (s->has_event_time) {
        fprintf(out, "    event time: %s (%s", s->ts_field ? s->ts_field : "record timestamp",
                ts_names[s->ts_format]);
        if (s->ts_format == TS_ISO8601) {
            fputs(", naive times in ", out);
            print_tz(out, s->tz_offset_s);
        }
        duration_format(s->out_of_orderness_ms, d1, sizeof(d1));
        fprintf(out, "), watermark: out of order %s, idle %s\n", d1,
                s->idle_timeout_ms == JOB_DURATION_NONE ? "never" :
                (duration_format(s->idle_timeout_ms, d2, sizeof(d2)), d2));
    } else {
        fprintf(out, "    event time: none (processing time only)\n");
    }
    const struct cm_entry *pe = cm_entry_of_type(s->type->map, CM_PROPS);
    const struct cm_props *props = pe ? cm_value(s->type->map, s->conf, pe->key) : NULL;
    for (size_t i = 0; props != NULL && i < props->n; i++)
        fprintf(out, "    property %s=%s\n", props->v[i].key, props->v[i].value);
    if (s->part_declared) {
        fprintf(out, "    partitioned by: ");
        if (s->part_none)
            fputs("none", out);
        print_keys(out, s, s->part_fields, s->npart_fields);
        fprintf(out, "%s\n", s->unread ? " (read only by its repartition stage)" : "");
    }
    fprintf(out, "    bad records: %s\n", s->on_error == ON_ERROR_SKIP ? "skip (counted)" :
            "dead letter");
}

/* "    reads events through repartition topic T", once per source of op
 * that is a repartition source. */
static void print_through(FILE *out, const struct job *job, const struct job_operator *op)
{
    struct op_input in[OP_INPUTS_MAX];
    size_t n = op_inputs(op, in);
    for (size_t k = 0; k < n; k++) {
        const struct job_source *s = &job->sources[in[k].source];
        int seen = 0;
        for (size_t j = 0; j < k; j++)
            seen |= in[j].source == in[k].source;
        if (s->role == SRC_REPARTITION && !seen)
            fprintf(out, "    reads %s through repartition topic %s\n",
                    job->sources[s->origin].name, s->rp_topic);
    }
}

/* The operator's head (its source and key, then its type's settings, as
 * the type prints them), then its aggregates or fields. */
static void print_operator(FILE *out, const struct job *job, const struct job_operator *op)
{
    const struct op_type *t = op->type;
    const struct job_source *src = &job->sources[op->source];
    char buf[2048];
    if (t->ninputs > 1) {
        t->print(out, job, op);
    } else {
        fprintf(out, "  %s: from %s, key by ", op->name, job->sources[src->origin].name);
        print_keys(out, src, op->key_fields, op->nkeys);
        fprintf(out, "\n    %s: ", t->block);
        t->print(out, job, op);
        fputc('\n', out);
    }
    print_through(out, job, op);
    struct expr_sides sides;
    if (t->sides != NULL)
        t->sides(job, op, &sides);
    for (size_t i = 0; i < op->naggs; i++) {
        if (t->sides != NULL)
            expr_format_sides(op->aggs[i].value, &sides, buf, sizeof(buf));
        else
            agg_format(&op->aggs[i].spec, src->fields, buf, sizeof(buf));
        fprintf(out, "    %s = %s\n", op->aggs[i].name, buf);
    }
}

static void print_sink(FILE *out, const struct job_sink *s)
{
    fprintf(out, "  %s: %s", s->name, s->type->name);
    if (s->type->print != NULL)
        s->type->print(s->conf, out);
    fputc('\n', out);
}

void job_print(const struct job *job, FILE *out)
{
    char d[32];
    fprintf(out, "job %s (%s)\n", job->name, job->file);
    duration_format(job->state.checkpoint_interval_ms, d, sizeof(d));
    fprintf(out, "state: dir %s, checkpoint every %s, keep %lld%s%s\n", job->state.dir, d,
            (long long)job->state.checkpoints_retained,
            job->state.shared[0] != '\0' ? ", shared " : "", job->state.shared);
    fprintf(out, "http: %s\n", job->http ? job->http : "off");
    fprintf(out, "sources:\n");
    for (size_t i = 0; i < job->nsources; i++)
        print_source(out, job, &job->sources[i]);
    fprintf(out, "operators:\n");
    for (size_t i = 0; i < job->noperators; i++)
        print_operator(out, job, &job->operators[i]);
    fprintf(out, "sinks:\n");
    for (size_t i = 0; i < job->nsinks; i++)
        print_sink(out, &job->sinks[i]);
    fprintf(out, "graph:\n");
    for (size_t i = 0; i < job->nsources; i++) {
        const struct job_source *st = &job->sources[i];
        if (st->role != SRC_STAGE1)
            continue;
        fprintf(out, "  %s -> %s ->", job->sources[st->origin].name, st->name);
        for (size_t k = 0; k < st->ntargets; k++)
            fprintf(out, "%s %s", k ? "," : "", job->sources[st->targets[k]].name);
        fputc('\n', out);
    }
    for (size_t i = 0; i < job->noperators; i++) {
        const struct job_operator *op = &job->operators[i];
        struct op_input in[OP_INPUTS_MAX];
        size_t n = op_inputs(op, in);
        fputs(" ", out);
        for (size_t k = 0; k < n; k++) {
            int seen = 0;
            for (size_t j = 0; j < k; j++)
                seen |= in[j].source == in[k].source;
            if (!seen)
                fprintf(out, "%s %s", k ? " +" : "", job->sources[in[k].source].name);
        }
        fprintf(out, " -> %s -> ", op->name);
        for (size_t k = 0; k < op->nsinks; k++)
            fprintf(out, "%s%s", k ? ", " : "", job->sinks[op->sinks[k]].name);
        if (op->window.late_sink >= 0)
            fprintf(out, " (late events -> %s)", job->sinks[op->window.late_sink].name);
        fputc('\n', out);
    }
    for (size_t i = 0; i < job->nsources; i++)
        if (job->sources[i].dead_letter_sink >= 0)
            fprintf(out, "  %s (bad records) -> %s\n", job->sources[i].name,
                    job->sinks[job->sources[i].dead_letter_sink].name);
    for (size_t i = 0; i < job->nsinks; i++) {
        int used = 0;
        for (size_t o = 0; o < job->noperators; o++)
            for (size_t k = 0; k < job->operators[o].nsinks; k++)
                used |= job->operators[o].sinks[k] == (int)i;
        for (size_t o = 0; o < job->noperators; o++)
            used |= job->operators[o].window.late_sink == (int)i;
        for (size_t s = 0; s < job->nsources; s++)
            used |= job->sources[s].dead_letter_sink == (int)i;
        if (!used)
            fprintf(out, "  (sink %s receives nothing)\n", job->sinks[i].name);
    }
}
