/*
 * status_page.c - GET /: the status page (see status_page.h).
 *
 * The page is cmd/status_page.html, compiled in (the Makefile turns it
 * into a C string, status_page.inc).  Each <!--@name--> marker in it is
 * replaced here by a part of the snapshot: the same tables its script
 * draws from /status every second, with totals where the script shows
 * rates (a rate needs two readings), and the job graph as SVG.
 */
#include "status_page.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../connectors/log.h"
#include "../engine/evtime.h"
#include "../engine/watermark.h"
#include "cli.h"

#include "../build/gen/status_page.inc" /* STATUS_PAGE[]: the Makefile makes it */

#define MAXP 1024

struct page {
    const struct status_view *v;
    const struct graph *g;
    const struct job *job;
    const struct totals *t;
    const struct chkpt_stats *ck;
    struct sbuf *b;
    int64_t now;
    char self[300];
};

/* s, well-formed UTF-8 and HTML-escaped (text and attribute values). */
static void html(struct sbuf *b, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *clean = n > 0 ? malloc(n) : NULL;
    if (clean == NULL)
        return;
    n = fmt_utf8_clean(clean, s, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = clean[i] == '&' ? "&amp;" : clean[i] == '<' ? "&lt;"
                        : clean[i] == '>' ? "&gt;" : clean[i] == '"' ? "&quot;" : NULL;
        if (esc == NULL)
            continue;
        sbuf_put(b, clean + run, i - run);
        sbuf_put(b, esc, strlen(esc));
        run = i + 1;
    }
    sbuf_put(b, clean + run, n - run);
    free(clean);
}

static void when(struct sbuf *b, int64_t ms)
{
    char t[64];
    if (ms == WM_MIN || ms == WM_MAX) {
        sbuf_putc(b, '-');
        return;
    }
    evtime_format(ms, t);
    sbuf_put(b, t, strlen(t));
}

/* As the script's bytes() and span(). */
static void bytes(struct sbuf *b, uint64_t v)
{
    static const char *unit[] = { "kB", "MB", "GB", "TB" };
    if (v < 1000) {
        sbuf_printf(b, "%" PRIu64 " B", v);
        return;
    }
    double d = (double)v;
    int i = -1;
    do {
        d /= 1000;
        i++;
    } while (d >= 1000 && i < 3);
    sbuf_printf(b, "%.1f %s", d, unit[i]);
}

static void span(struct sbuf *b, int64_t ms)
{
    int64_t s = (ms + 500) / 1000;
    if (ms < 1000)
        sbuf_printf(b, "%" PRId64 " ms", ms);
    else if (s < 120)
        sbuf_printf(b, "%" PRId64 " s", s);
    else if (s < 7200)
        sbuf_printf(b, "%" PRId64 " min", s / 60);
    else if (s < 172800)
        sbuf_printf(b, "%" PRId64 " h", s / 3600);
    else
        sbuf_printf(b, "%" PRId64 " d", s / 86400);
}

static void badge(struct sbuf *b, const char *kind, const char *text)
{
    sbuf_printf(b, "<span class=\"badge %s\">", kind);
    html(b, text);
    SBUF_LIT(b, "</span>");
}

/* <td class="n">v</td>: a number, right-aligned */
static void td_n(struct sbuf *b, uint64_t v)
{
    sbuf_printf(b, "<td class=\"n\">%" PRIu64 "</td>", v);
}

static void td_text(struct sbuf *b, const char *s)
{
    SBUF_LIT(b, "<td>");
    html(b, s);
    SBUF_LIT(b, "</td>");
}

/* a rate: the snapshot has one reading only */
#define TD_RATE "<td class=\"n\">-</td>"

/* ---- shared with /status ------------------------------------------------------------------ */

int64_t status_lag(const struct source *src, int32_t partition, int64_t next)
{
    return src->impl && src->ops->lag ? src->ops->lag(src, partition, next) : -1;
}

void status_instance(char *buf, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, size, "%s:%ld", host, (long)getpid());
}

void status_member(const struct source *src, char *buf, size_t size)
{
    buf[0] = '\0';
    if (src->impl != NULL && src->ops->member != NULL)
        src->ops->member(src, buf, size);
}

int64_t status_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the parts --------------------------------------------------------------------------- */

static void part_tiles(struct page *p)
{
    struct sbuf *b = p->b;
    size_t queued = graph_pending(p->g);
    struct engine_stats st = { 0 };
    graph_stats(p->g, &st);
    static const char *rates[] = { "records in/s", "invalid/s", "late/s", "results/s" };
    for (size_t i = 0; i < 4; i++)
        sbuf_printf(b, "<div class=\"tile\"><b>-</b><span>%s</span></div>", rates[i]);
    sbuf_printf(b, "<div class=\"tile\"><b>%zu</b><span>sink queue</span></div>"
                "<div class=\"tile\"><b>%" PRIu64 "</b><span>state keys</span></div>"
                "<div class=\"tile\"><b>", queued, st.state_keys);
    bytes(b, st.state_bytes);
    sbuf_printf(b, "</b><span>state</span></div><div class=\"tile\"><b>%" PRIu64 " / %" PRIu64
                "</b><span>checkpoints ok / failed</span></div>", p->ck->ok, p->ck->failed);
}

/* The graph, in columns: sources (repartition topics in a column of their
 * own), operators, sinks; an arrow for each input and output. */
#define NODE_W 220
#define NODE_H 62
#define ROW_H 80
#define COL_W 320

struct col_pos {
    int col, row;
};

static void node_xy(const struct col_pos *c, const size_t *count, size_t rows, int *x, int *y)
{
    *x = 10 + c->col * COL_W;
    *y = 10 + (int)((rows - count[c->col]) * ROW_H / 2) + c->row * ROW_H;
}

/* the bottom edge of column col's last node */
static int col_bottom(const size_t *count, size_t rows, int col)
{
    struct col_pos last = { col, (int)count[col] - 1 };
    int x, y;
    node_xy(&last, count, rows, &x, &y);
    return y + NODE_H;
}

/* An arrow; one that skips a column (a source's dead letters to their
 * sink) goes round below that column's nodes, dashed. */
static void edge(struct sbuf *b, const struct col_pos *from, const struct col_pos *to,
                 const size_t *count, size_t rows)
{
    int x1, y1, x2, y2;
    node_xy(from, count, rows, &x1, &y1);
    node_xy(to, count, rows, &x2, &y2);
    x1 += NODE_W;
    y1 += NODE_H / 2;
    y2 += NODE_H / 2;
    if (to->col - from->col < 2) {
        sbuf_printf(b, "<path class=\"e\" d=\"M%d %dC%d %d %d %d %d %d\"/>", x1, y1, x1 + 50, y1,
                    x2 - 50, y2, x2 - 2, y2);
        return;
    }
    int yb = 0;
    for (int c = from->col + 1; c < to->col; c++)
        if (col_bottom(count, rows, c) > yb)
            yb = col_bottom(count, rows, c);
    yb += 14;
    sbuf_printf(b, "<path class=\"e skip\" d=\"M%d %dC%d %d %d %d %d %dL%d %dC%d %d %d %d %d %d\"/>",
                x1, y1, x1 + 40, y1, x1 + 40, yb, x1 + 80, yb, x2 - 80, yb, x2 - 40, yb, x2 - 40, y2,
                x2 - 2, y2);
}

/* name, truncated to what fits a node (whole UTF-8 characters) */
static void node_name(struct sbuf *b, const char *name)
{
    char cut[40];
    size_t n = strlen(name);
    if (n < 26) {
        html(b, name);
        return;
    }
    n = 24;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
        n--;
    memcpy(cut, name, n);
    memcpy(cut + n, "\xe2\x80\xa6", 4);        /* an ellipsis */
    html(b, cut);
}

static void node(struct sbuf *b, const char *cls, const struct col_pos *c, const size_t *count,
                 size_t rows, const char *name, const char *kind, const char *live_kind,
                 const char *live)
{
    int x, y;
    node_xy(c, count, rows, &x, &y);
    sbuf_printf(b, "<g class=\"node %s\" transform=\"translate(%d %d)\"><title>", cls, x, y);
    html(b, name);
    sbuf_printf(b, "</title><rect width=\"%d\" height=\"%d\" rx=\"6\"/>"
                "<text class=\"name\" x=\"10\" y=\"20\">", NODE_W, NODE_H);
    node_name(b, name);
    SBUF_LIT(b, "</text><text class=\"kind\" x=\"10\" y=\"37\">");
    html(b, kind);
    sbuf_printf(b, "</text><text class=\"live\" x=\"10\" y=\"54\" data-kind=\"%s\" data-name=\"",
                live_kind);
    html(b, name);
    SBUF_LIT(b, "\">");
    html(b, live);
    SBUF_LIT(b, "</text></g>");
}

static void part_graph(struct page *p)
{
    struct sbuf *b = p->b;
    const struct job *job = p->job;
    size_t ns = job->nsources, no = job->noperators, nk = job->nsinks;
    struct col_pos *pos = calloc(ns + no + nk + 1, sizeof(*pos));
    if (pos == NULL)
        return;
    struct col_pos *sp = pos, *op = pos + ns, *kp = pos + ns + no;
    size_t count[4] = { 0 };
    int rp = 0;
    for (size_t s = 0; s < ns; s++)
        rp |= job->sources[s].role == SRC_REPARTITION;
    for (size_t s = 0; s < ns; s++) {
        sp[s].col = rp && job->sources[s].role == SRC_REPARTITION;
        sp[s].row = (int)count[sp[s].col]++;
    }
    for (size_t o = 0; o < no; o++) {
        op[o].col = 1 + rp;
        op[o].row = (int)count[op[o].col]++;
    }
    for (size_t k = 0; k < nk; k++) {
        kp[k].col = 2 + rp;
        kp[k].row = (int)count[kp[k].col]++;
    }
    size_t rows = 1;
    for (int c = 0; c < 4; c++)
        rows = count[c] > rows ? count[c] : rows;
    /* the signature the script compares to /status's (a reload redraws) */
    SBUF_LIT(b, "<svg role=\"img\" aria-label=\"job graph\" data-sig=\"");
    for (size_t s = 0; s < ns; s++) {
        if (s)
            sbuf_putc(b, ',');
        html(b, job->sources[s].name);
    }
    sbuf_putc(b, '|');
    for (size_t o = 0; o < no; o++) {
        const struct job_operator *jo = &job->operators[o];
        if (o)
            sbuf_putc(b, ';');
        html(b, jo->name);
        SBUF_LIT(b, "&lt;");
        html(b, job->sources[jo->source].name);
        SBUF_LIT(b, "&gt;");
        for (size_t k = 0; k < jo->nsinks; k++) {
            if (k)
                sbuf_putc(b, ',');
            html(b, job->sinks[jo->sinks[k]].name);
        }
    }
    sbuf_putc(b, '|');
    for (size_t k = 0; k < nk; k++) {
        if (k)
            sbuf_putc(b, ',');
        html(b, job->sinks[k].name);
    }
    sbuf_printf(b, "\" viewBox=\"0 0 %d %zu\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" "
                "refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
                "<path d=\"M0 0L10 5L0 10z\" fill=\"#8a97a3\"/></marker></defs>",
                20 + (3 + rp) * COL_W - (COL_W - NODE_W), 40 + rows * ROW_H - (ROW_H - NODE_H));
    for (size_t s = 0; s < ns; s++) {
        const struct job_source *js = &job->sources[s];
        for (size_t i = 0; js->role == SRC_STAGE1 && i < js->ntargets; i++)
            edge(b, &sp[s], &sp[js->targets[i]], count, rows);
        if (js->dead_letter_sink >= 0)
            edge(b, &sp[s], &kp[js->dead_letter_sink], count, rows);
    }
    for (size_t o = 0; o < no; o++) {
        const struct job_operator *jo = &job->operators[o];
        for (unsigned i = 0; i < jo->type->ninputs; i++)
            edge(b, &sp[jo->type->ninputs > 1 ? jo->join.side[i].source : jo->source], &op[o],
                 count, rows);
        for (size_t k = 0; k < jo->nsinks; k++)
            edge(b, &op[o], &kp[jo->sinks[k]], count, rows);
        if (jo->window.late_sink >= 0)
            edge(b, &op[o], &kp[jo->window.late_sink], count, rows);
    }
    char kind[96], live[96];
    for (size_t s = 0; s < ns; s++) {
        const struct job_source *js = &job->sources[s];
        snprintf(kind, sizeof(kind), "%s source%s", js->type->name,
                 js->role == SRC_STAGE1 ? ", repartitioning" :
                 js->role == SRC_REPARTITION ? ", repartition topic" : "");
        snprintf(live, sizeof(live), "%" PRIu64 " records in", p->t->in[s]);
        node(b, "source", &sp[s], count, rows, js->name, kind, "src", live);
    }
    for (size_t o = 0; o < no; o++) {
        const struct job_operator *jo = &job->operators[o];
        snprintf(kind, sizeof(kind), "%s", jo->type->name);
        snprintf(live, sizeof(live), "%" PRIu64 " results", p->t->fired[o]);
        node(b, "op", &op[o], count, rows, jo->name, kind, "op", live);
    }
    for (size_t k = 0; k < nk; k++) {
        const struct sink *s = &p->g->snk[k];
        snprintf(kind, sizeof(kind), "%s sink", job->sinks[k].type->name);
        snprintf(live, sizeof(live), "%zu queued", s->impl ? s->ops->pending(s) : 0);
        node(b, "sink", &kp[k], count, rows, job->sinks[k].name, kind, "snk", live);
    }
    SBUF_LIT(b, "</svg>");
    free(pos);
}

static void part_sources(struct page *p)
{
    struct sbuf *b = p->b;
    for (size_t s = 0; s < p->job->nsources; s++) {
        const struct job_source *js = &p->job->sources[s];
        uint64_t invalid = totals_invalid(p->t, s);
        SBUF_LIT(b, "<tr>");
        td_text(b, js->name);
        td_text(b, js->type->name);
        td_n(b, p->t->in[s]);
        SBUF_LIT(b, TD_RATE);
        sbuf_printf(b, "<td class=\"n%s\">%" PRIu64 "</td>" TD_RATE "<td>",
                    invalid ? " warn" : "", invalid);
        when(b, graph_watermark(p->g, (int)s));
        SBUF_LIT(b, "</td></tr>");
    }
}

static void part_partitions(struct page *p)
{
    static int32_t ids[MAXP];
    static int64_t wms[MAXP];
    struct sbuf *b = p->b;
    for (size_t s = 0; s < p->job->nsources; s++) {
        const struct source *src = &p->g->src[s];
        char member[256];
        status_member(src, member, sizeof(member));
        size_t np = graph_partitions(p->g, (int)s, ids, wms, MAXP);
        for (size_t i = 0; i < np; i++) {
            int64_t next = offsets_next(&p->g->offs[s], ids[i]);
            int64_t lag = status_lag(src, ids[i], next);
            SBUF_LIT(b, "<tr>");
            td_text(b, p->job->sources[s].name);
            sbuf_printf(b, "<td class=\"n\">%" PRId32 "</td>", ids[i]);
            td_text(b, member[0] ? member : p->self);
            if (next >= 0)
                sbuf_printf(b, "<td class=\"n\">%" PRId64 "</td>", next);
            else
                SBUF_LIT(b, "<td class=\"n\">-</td>");
            if (lag >= 0)
                sbuf_printf(b, "<td class=\"n lag\">%" PRId64 "</td>", lag);
            else
                SBUF_LIT(b, "<td class=\"n lag\">-</td>");
            SBUF_LIT(b, "<td>");
            when(b, wms[i]);
            SBUF_LIT(b, "</td><td class=\"n\">");
            if (wms[i] == WM_MIN || wms[i] == WM_MAX)
                sbuf_putc(b, '-');
            else
                span(b, p->now > wms[i] ? p->now - wms[i] : 0);
            SBUF_LIT(b, "</td></tr>");
        }
    }
}

static void part_operators(struct page *p)
{
    struct sbuf *b = p->b;
    for (size_t o = 0; o < p->job->noperators; o++) {
        const struct job_operator *jo = &p->job->operators[o];
        SBUF_LIT(b, "<tr>");
        td_text(b, jo->name);
        td_text(b, jo->type->name);
        td_n(b, p->t->fired[o]);
        SBUF_LIT(b, TD_RATE);
        td_n(b, p->t->late[o]);
        SBUF_LIT(b, TD_RATE);
        sbuf_printf(b, "<td class=\"n%s\">%" PRIu64 "</td></tr>", p->t->lost[o] ? " bad" : "",
                    p->t->lost[o]);
    }
}

static void part_sinks(struct page *p)
{
    struct sbuf *b = p->b;
    for (size_t i = 0; i < p->job->nsinks; i++) {
        const struct sink *s = &p->g->snk[i];
        SBUF_LIT(b, "<tr>");
        td_text(b, p->job->sinks[i].name);
        td_text(b, p->job->sinks[i].type->name);
        td_n(b, s->impl ? s->ops->pending(s) : 0);
        td_n(b, p->t->written[i]);
        SBUF_LIT(b, TD_RATE);
        td_n(b, p->t->coalesced[i]);
        td_n(b, p->t->retried[i]);
        sbuf_printf(b, "<td class=\"n%s\">%" PRIu64 "</td></tr>", p->t->failed[i] ? " bad" : "",
                    p->t->failed[i]);
    }
}

static void part_checkpoints(struct page *p)
{
    struct sbuf *b = p->b;
    const struct chkpt_stats *ck = p->ck;
    if (ck->nhistory == 0)
        SBUF_LIT(b, "<tr><td colspan=\"9\">none yet</td></tr>");
    for (uint64_t i = ck->nhistory, n = 0; i > 0 && n < CHKPT_HISTORY; i--, n++) {
        const struct chkpt_record *h = &ck->history[(i - 1) % CHKPT_HISTORY];
        sbuf_printf(b, "<tr><td class=\"n\">%" PRIu64 "</td><td>%s</td><td>", h->id,
                    h->savepoint ? "savepoint" : "checkpoint");
        badge(b, h->ok ? "ok" : "bad", h->ok ? "complete" : "failed");
        SBUF_LIT(b, "</td><td>");
        when(b, h->at_ms);
        sbuf_printf(b, "</td><td class=\"n\">%" PRIu64 " ms</td><td class=\"n\">", h->ms);
        bytes(b, h->bytes);
        if (h->stall_us)
            sbuf_printf(b, "</td><td class=\"n\">%.1f ms</td>", (double)h->stall_us / 1e3);
        else
            SBUF_LIT(b, "</td><td class=\"n\">-</td>");
        if (h->shards)
            sbuf_printf(b, "<td class=\"n\">%zu</td>", h->shards);
        else
            SBUF_LIT(b, "<td class=\"n\">none changed</td>");
        SBUF_LIT(b, "<td class=\"msg\">");
        html(b, h->why);
        SBUF_LIT(b, "</td></tr>");
    }
}

static void part_errors(struct page *p)
{
    struct sbuf *b = p->b;
    struct log_entry recent[LOG_RECENT];
    size_t n = log_recent(recent, LOG_RECENT);
    if (n == 0)
        SBUF_LIT(b, "<tr><td colspan=\"4\">none</td></tr>");
    for (size_t i = 0; i < n; i++) {
        const char *level = recent[i].level == LOG_ERR ? "error" : "warning";
        SBUF_LIT(b, "<tr><td>");
        when(b, recent[i].at_ms);
        SBUF_LIT(b, "</td><td>");
        badge(b, recent[i].level == LOG_ERR ? "bad" : "warn", level);
        SBUF_LIT(b, "</td>");
        td_text(b, recent[i].component);
        SBUF_LIT(b, "<td class=\"msg\">");
        html(b, recent[i].text);
        SBUF_LIT(b, "</td></tr>");
    }
}

static void part(struct page *p, const char *name, size_t len)
{
    struct sbuf *b = p->b;
    const struct chkpt_stats *ck = p->ck;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    if (IS("job")) {
        html(b, p->job->name);
    } else if (IS("state")) {
        const char *st = p->v->state;
        badge(b, strcmp(st, "running") == 0 ? "ok" : "warn", st);
    } else if (IS("who")) {
        SBUF_LIT(b, "instance ");
        html(b, p->self);
        const char *id = getenv("SLUICE_INSTANCE_ID");
        if (id != NULL && id[0]) {
            SBUF_LIT(b, " (");
            html(b, id);
            sbuf_putc(b, ')');
        }
        SBUF_LIT(b, " \xc2\xb7 sluice " SLUICE_VERSION " \xc2\xb7 up ");
        span(b, p->now - p->v->started_ms);
    } else if (IS("now")) {
        when(b, p->now);
    } else if (IS("tiles")) {
        part_tiles(p);
    } else if (IS("graph")) {
        part_graph(p);
    } else if (IS("sources")) {
        part_sources(p);
    } else if (IS("partitions")) {
        part_partitions(p);
    } else if (IS("operators")) {
        part_operators(p);
    } else if (IS("sinks")) {
        part_sinks(p);
    } else if (IS("backpressure")) {
        if (p->v->backpressure)
            badge(b, "bad", "backpressure: sources paused");
        else
            badge(b, "ok", "no backpressure");
    } else if (IS("ckcount")) {
        sbuf_printf(b, "%" PRIu64 " complete, %" PRIu64 " failed", ck->ok, ck->failed);
        if (ck->restored_from[0]) {
            SBUF_LIT(b, " \xc2\xb7 restored from ");
            html(b, ck->restored_from);
        }
    } else if (IS("checkpoints")) {
        part_checkpoints(p);
    } else if (IS("errors")) {
        part_errors(p);
    }
#undef IS
}

void status_page(const struct status_view *v, struct sbuf *b)
{
    struct page p = { v, v->g, v->g->job, v->t, v->ck, b, status_now_ms(), "" };
    status_instance(p.self, sizeof(p.self));
    const char *s = STATUS_PAGE;
    for (;;) {
        const char *m = strstr(s, "<!--@");
        if (m == NULL)
            break;
        const char *e = strstr(m, "-->");
        if (e == NULL)
            break;
        sbuf_put(b, s, (size_t)(m - s));
        part(&p, m + 5, (size_t)(e - m - 5));
        s = e + 3;
    }
    sbuf_put(b, s, strlen(s));
}
