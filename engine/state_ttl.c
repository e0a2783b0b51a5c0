/*
 * state_ttl.c - state TTL for keyed operators (reduce, detect), as Flink's
 * StateTtlConfig, in processing time (see engine_int.h).
 *
 * A key's blob starts with a struct ttl_clock.  `touched` is the time the
 * TTL counts from: every write sets it, and with on_read_and_write every
 * read too (the operator does that).  The state is expired once
 * touched + ttl <= now.  A timer at that moment frees it (a real free: the
 * key leaves the state table when no other operator holds it).  Until
 * that timer has run, an expired state is either invisible
 * (never_return_expired) or still read as it is
 * (return_expired_if_not_cleaned_up).  Timers run after each record and on
 * every tick, so "not cleaned up" means: no record and no tick came
 * between the expiry and the read.
 *
 * Each key has at most one TTL timer pending (expire_check); a write only
 * moves `touched`, and a timer that finds the key touched since re-arms
 * itself at the new expiry.  Runs on the loop thread, like the engine.
 */
#include "engine_int.h"

int ttl_expired(const struct op_rt *op, const struct ttl_clock *c, int64_t now)
{
    int64_t ttl = op->jop->window.ttl_ms;
    return ttl > 0 && c->touched + ttl <= now;
}

int ttl_hidden(const struct op_rt *op, const struct ttl_clock *c, int64_t now)
{
    return ttl_expired(op, c, now) &&
           op->jop->window.ttl_visibility == TTL_NEVER_RETURN_EXPIRED;
}

int ttl_arm(struct op_rt *op, uint32_t id, struct ttl_clock *c)
{
    c->expire_check = c->touched + op->jop->window.ttl_ms;
    return tqh_add(&op->tqh, c->expire_check, id);
}

void ttl_due(struct op_rt *op, int64_t now)
{
    int64_t T;
    uint32_t id;
    while (tqh_pop_due(&op->tqh, now, &T, &id)) {
        void **slot = op_blob(op, id);
        struct ttl_clock *c = *slot;
        if (c == NULL || c->expire_check != T)
            continue;
        if (!ttl_expired(op, c, T)) {
            if (ttl_arm(op, id, c) < 0) {
                c->expire_check = TTL_NONE; /* kept until its next record sets it again */
                engine_result_lost(op);
            }
            continue;
        }
        op->w->release(op, c);
        *slot = NULL;
        engine_key_maybe_delete(op, id);
    }
}

/* ---- in the job file ---------------------------------------------------------- */

const char *const ttl_update_names[] = { "on_create_and_write", "on_read_and_write", NULL };
const char *const ttl_visibility_names[] = { "never_return_expired",
                                             "return_expired_if_not_cleaned_up", NULL };

void ttl_validate(struct cm_ctx *c, void *conf)
{
    (void)conf;
    if (cm_get(c, "ttl") == NULL)
        for (int i = 0; i < 2; i++) {
            const char *k = i ? "visibility" : "update";
            if (cm_get(c, k) != NULL)
                cm_err(c, cm_key(c, k), "%s: '%s' needs a 'ttl'", cm_what(c), k);
        }
}

void ttl_print(FILE *out, const struct job_operator *op)
{
    const struct job_window *w = &op->window;
    char b[32];
    if (w->ttl_ms == 0)
        return;
    duration_format(w->ttl_ms, b, sizeof(b));
    fprintf(out, ", state ttl %s (%s, %s)", b, ttl_update_names[w->ttl_update],
            ttl_visibility_names[w->ttl_visibility]);
}
