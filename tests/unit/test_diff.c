/*
 * test_diff.c - differential tests: the engine against the deliberately
 * simple reference implementation of docs/semantics.md (tests/ref/).
 *
 * Each stream is random: many keys, times out of order within and beyond
 * the bound, late records, allowed lateness, every aggregate with and
 * without where.  Both sides tag each result with the index of the record
 * after which it fired, and the two multisets must be identical, window by
 * window and value by value (doubles compared bit for bit).  Doubles in
 * the streams are multiples of 1/1024, so the reference can sum them
 * exactly in integers.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../config/job.h"
#include "../../engine/ckpt_file.h"
#include "../../engine/engine.h"
#include "../ref/reference.h"
#include "suites.h"

#define STREAMS 1000
#define MAXREC 240

/* ---- random ------------------------------------------------------------- */

static uint64_t rs;

static uint64_t rnd(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rr(int64_t lo, int64_t hi)           /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- streams --------------------------------------------------------------- */

/* The kinds of operator the streams run, in the order their seeds were
 * drawn (a kind's number is part of its streams). */
enum { WIN_TUMBLING, WIN_SLIDING, WIN_SESSION, WIN_GLOBAL, WIN_REDUCE, WIN_DETECT, WIN_JOIN,
       WIN_COUNT };

struct rec {
    int ki;                     /* the key: "k<ki>" */
    int kind;                   /* 0 a, 1 b, 2 c */
    int64_t n;
    int64_t xk;                 /* x = xk / 1024 */
    int flag;
    int64_t t;
    int64_t pt;                 /* reduce: processing time it arrives at */
    int64_t tick;               /* reduce: a tick at this time just before it, or -1 */
    int src;                    /* join: source 0 or 1 */
};

static const char *const kinds[] = { "a", "b", "c" };

struct cfg {
    int type;                   /* WIN_* */
    int64_t size, slide, gap, al, ooo, count;
    int two_keys;               /* key_by [k, kind] */
    int64_t every, ttl;         /* reduce: 0 = on every update / no ttl */
    int read_and_write, return_expired;
    int jtype, two_src, filt;   /* join: inner/left/outer, two sources, which filters */
    int64_t within, ooo2;
};

/* A source of the streams' records; its out-of-orderness is a parameter. */
#define SOURCE_BODY                                                                   \
    "    type: file\n"                                                                \
    "    path: /dev/null\n"                                                           \
    "    schema: { k: string, kind: string, n: int, x: double, flag: bool }\n"        \
    "    event_time: { field: ts, format: epoch_ms }\n"                               \
    "    watermark: { out_of_orderness: %" PRId64 "ms }\n"

/* A join of two branches of s (or of s and s2, each filtered). */
static char *join_text(const struct cfg *c)
{
    static char buf[4096];
    static const char *const types[] = { "inner", "left", "outer" };
    static const char *const lw[] = { "kind == \"a\"", "kind in (\"a\", \"b\")", "" };
    static const char *const rw[] = { "kind != \"a\"", "kind in (\"b\", \"c\")", "" };
    char left[128], right[128];
    snprintf(left, sizeof(left), "{ from: s%s%s%s }", c->filt < 2 ? ", where: '" : "",
             lw[c->filt], c->filt < 2 ? "'" : "");
    snprintf(right, sizeof(right), "{ from: %s%s%s%s }", c->two_src ? "s2" : "s",
             c->filt < 2 ? ", where: '" : "", rw[c->filt], c->filt < 2 ? "'" : "");
    snprintf(buf, sizeof(buf),
             "job: diff\n"
             "sources:\n"
             "  s:\n"
             SOURCE_BODY
             "  s2:\n"
             SOURCE_BODY
             "operators:\n"
             "  o:\n"
             "    key_by: %s\n"
             "    join:\n"
             "      left: %s\n"
             "      right: %s\n"
             "      within: %" PRId64 "ms\n"
             "      type: %s\n"
             "    fields:\n"
             "      ln: left.n\n"
             "      rn: right.n\n"
             "      lx: left.x\n"
             "      rx: right.x\n"
             "      lk: left.kind\n"
             "      rf: right.flag\n"
             "      d: left.n - right.n\n"
             "      b: left.flag or right.n > 2\n"
             "    to: out\n"
             "sinks:\n"
             "  out: { type: stdout }\n",
             c->ooo, c->ooo2, c->two_keys ? "[k, kind]" : "k", left, right, c->within,
             types[c->jtype]);
    return buf;
}

static char *job_text(const struct cfg *c)
{
    static char buf[4096];
    char win[512], ttl[200] = "";
    if (c->type == WIN_JOIN)
        return join_text(c);
    switch (c->type) {
    case WIN_TUMBLING:
        snprintf(win, sizeof(win), "{ type: tumbling, size: %" PRId64 "ms, "
                 "allowed_lateness: %" PRId64 "ms }", c->size, c->al);
        break;
    case WIN_SLIDING:
        snprintf(win, sizeof(win), "{ type: sliding, size: %" PRId64 "ms, slide: %" PRId64
                 "ms, allowed_lateness: %" PRId64 "ms }", c->size, c->slide, c->al);
        break;
    case WIN_SESSION:
        snprintf(win, sizeof(win), "{ type: session, gap: %" PRId64 "ms, "
                 "allowed_lateness: %" PRId64 "ms }", c->gap, c->al);
        break;
    case WIN_GLOBAL:
        snprintf(win, sizeof(win), "{ type: global, trigger: count %" PRId64 " }", c->count);
        break;
    case WIN_COUNT:                                     /* slide 0: left out, tumbling */
        if (c->slide)
            snprintf(win, sizeof(win), "{ count: %" PRId64 ", slide: %" PRId64 " }", c->count,
                     c->slide);
        else
            snprintf(win, sizeof(win), "{ count: %" PRId64 " }", c->count);
        break;
    default: {
        char emit[64] = "on_update";                    /* reduce; detect reuses ttl */
        if (c->every)
            snprintf(emit, sizeof(emit), "every %" PRId64 "ms", c->every);
        if (c->ttl)
            snprintf(ttl, sizeof(ttl), ", ttl: %" PRId64 "ms, update: %s, visibility: %s",
                     c->ttl, c->read_and_write ? "on_read_and_write" : "on_create_and_write",
                     c->return_expired ? "return_expired_if_not_cleaned_up"
                                       : "never_return_expired");
        snprintf(win, sizeof(win), "{ emit: %s%s }", emit, ttl);
        break;
    }
    }
    snprintf(buf, sizeof(buf),
             "job: diff\n"
             "sources:\n"
             "  s:\n"
             SOURCE_BODY
             "operators:\n"
             "  o:\n"
             "    from: s\n"
             "    key_by: %s\n"
             "    %s: %s\n"
             "%s"
             "    aggregates:\n"
             "      c: count()\n"
             "      ca: count() where kind == \"a\"\n"
             "      sn: sum(n)\n"
             "      sx: sum(x) where flag\n"
             "      ax: avg(x)\n"
             "      an: avg(n) where kind in (\"a\", \"b\")\n"
             "      mn: min(n)\n"
             "      mx: max(x) where kind != \"c\"\n"
             "      fk: first(kind)\n"
             "      ln: last(n) where flag\n"
             "      dk: count_distinct(kind)\n"
             "      dn: count_distinct(n) where not flag\n"
             "      du: duration()\n"
             "      db: duration() where kind == \"b\" and n >= 0\n"
             "    to: out\n"
             "sinks:\n"
             "  out: { type: stdout }\n",
             c->ooo, c->two_keys ? "[k, kind]" : "k",
             c->type == WIN_REDUCE ? "reduce" : "window", win, "");
    if (c->type == WIN_DETECT) {
        /* the same operator, as a detect: its fields instead of aggregates */
        static const char *const whens[] = {
            "current.n - previous.n >= 2",
            "current.kind != previous.kind or current.flag",
            "current.x > previous.x * 2 and not previous.flag",
            "current.n * previous.n < 0 or current.kind in (\"a\")",
        };
        char *p = strstr(buf, "    window: ");
        char *q = strstr(buf, "    to: out");
        char tail[256];
        snprintf(tail, sizeof(tail), "%s", q);
        snprintf(p, sizeof(buf) - (size_t)(p - buf),
                 "    detect: { when: '%s'%s }\n"
                 "    fields:\n"
                 "      pn: previous.n\n"
                 "      cn: current.n\n"
                 "      d: current.n - previous.n\n"
                 "      sx: current.x + previous.x * 2\n"
                 "      pk: previous.kind\n"
                 "      pf: previous.flag\n"
                 "      b: current.n * previous.n > 3 or current.kind == previous.kind\n"
                 "%s", whens[c->count], ttl, tail);
    }
    return buf;
}

/* ---- result strings ------------------------------------------------------------ */

struct strs {
    char **v;
    size_t n, cap;
};

static void strs_add(struct strs *s, const char *x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        ck_assert_ptr_nonnull(s->v);
    }
    s->v[s->n] = strdup(x);
    ck_assert_ptr_nonnull(s->v[s->n]);
    s->n++;
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t put_value(char *p, const struct value *v)
{
    switch ((int)v->type) {
    case VT_INT: return (size_t)sprintf(p, "i%" PRId64 "|", v->u.i);
    case VT_DOUBLE: return (size_t)sprintf(p, "d%a|", v->u.d);
    case VT_BOOL: return (size_t)sprintf(p, "b%d|", v->u.b);
    case VT_STRING: return (size_t)sprintf(p, "s%.*s|", (int)v->u.s.len, v->u.s.p);
    default: return (size_t)sprintf(p, "null|");
    }
}

static void format_result(char *buf, size_t fired_at, const char *key, int64_t start,
                          int64_t end, int refire, const struct value *vals, size_t n)
{
    char *p = buf + sprintf(buf, "%06zu|%s|%" PRId64 "|%" PRId64 "|%d|", fired_at, key,
                            start, end, refire);
    for (size_t i = 0; i < n; i++)
        p += put_value(p, &vals[i]);
}

/* ---- both sides -------------------------------------------------------------- */

struct run {
    struct strs out;
    size_t at;                  /* index of the record being fed (engine side) */
    uint64_t late;
};

static void add_result(struct run *run, size_t fired_at, const struct engine_result *r)
{
    char key[64], buf[1024];
    if (r->nkeys == 1)
        snprintf(key, sizeof(key), "%.*s", (int)r->keys[0].u.s.len, r->keys[0].u.s.p);
    else
        snprintf(key, sizeof(key), "%.*s/%.*s", (int)r->keys[0].u.s.len, r->keys[0].u.s.p,
                 (int)r->keys[1].u.s.len, r->keys[1].u.s.p);
    format_result(buf, fired_at, key, r->start, r->end, r->refire, r->vals, r->nvals);
    strs_add(&run->out, buf);
}

static void eng_result(void *ud, const struct engine_result *r)
{
    struct run *run = ud;
    add_result(run, run->at, r);
}

static void ref_result(void *ud, size_t fired_at, const struct engine_result *r)
{
    add_result(ud, fired_at, r);
}

static struct job *load_job(const struct cfg *c)
{
    const char *text = job_text(c);
    struct diags d = { 0 };
    struct job *job = NULL;
    if (job_load_buffer("diff.yaml", text, strlen(text), NULL, &job, &d) < 0) {
        diags_sort(&d);
        ck_abort_msg("job: %d:%d: %s\n%s", d.v[0].line, d.v[0].col, d.v[0].msg, text);
    }
    diags_free(&d);
    return job;
}

static int record_line(const struct rec *r, char *line, size_t size)
{
    return snprintf(line, size,
                    "{\"k\":\"k%d\",\"kind\":\"%s\",\"n\":%" PRId64 ",\"x\":%.17g,"
                    "\"flag\":%s,\"ts\":%" PRId64 "}",
                    r->ki, kinds[r->kind], r->n, (double)r->xk / 1024.0,
                    r->flag ? "true" : "false", r->t);
}

/* The processing-time clock of reduce streams: a test sets it. */
static int64_t fake_now;

static int64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static const struct engine_opts clock_opts = { .clock = fake_clock };

/* Record i of a reduce stream: a tick first when the stream has one. */
static void feed_one(struct engine *e, const struct cfg *c, const struct rec *r, size_t i,
                     struct run *run)
{
    char line[256];
    int len = record_line(r, line, sizeof(line));
    run->at = i;
    if (c->type >= WIN_REDUCE && r->tick >= 0) {
        fake_now = r->tick;
        engine_tick(e);
    }
    fake_now = r->pt;
    ck_assert_int_eq(engine_feed(e, r->src, 0, (int64_t)i, line, (size_t)len, 0), 0);
}

static void run_engine(const struct cfg *c, const struct rec *recs, size_t n, struct run *run)
{
    struct job *job = load_job(c);
    struct engine *e;
    struct engine_output out = { run, eng_result, NULL, NULL, NULL };
    ck_assert_int_eq(engine_new(job, c->type >= WIN_REDUCE ? &clock_opts : NULL, &out, &e), 0);
    ck_assert_int_eq(engine_partition_add(e, 0, 0), 0);
    if (c->two_src)
        ck_assert_int_eq(engine_partition_add(e, 1, 0), 0);
    for (size_t i = 0; i < n; i++)
        feed_one(e, c, &recs[i], i, run);
    run->at = n;
    engine_finish(e);
    struct engine_stats st;
    uint64_t results, lost;
    engine_get_stats(e, &st);
    engine_op_stats(e, 0, &results, &run->late, &lost);
    ck_assert_uint_eq(results, run->out.n);
    ck_assert_uint_eq(lost, 0);
    ck_assert_uint_eq(st.records_late, run->late);
    ck_assert_uint_eq(st.records_invalid, 0);
    if (c->type < WIN_GLOBAL || c->type == WIN_JOIN)
        ck_assert_uint_eq(st.state_keys, 0);    /* every window fired and was freed */
    engine_free(e);
    job_free(job);
}

static void run_reference(const struct cfg *c, const struct rec *recs, size_t n,
                          struct run *run)
{
    struct job *job = load_job(c);
    struct reference *ref = ref_new(job, ref_result, run);
    for (size_t i = 0; i < n; i++) {
        char line[256];
        int len = record_line(&recs[i], line, sizeof(line));
        if (c->type >= WIN_REDUCE && recs[i].tick >= 0)
            ref_tick(ref, recs[i].tick, i);
        ck_assert_int_eq(ref_feed_at(ref, recs[i].src, line, (size_t)len, recs[i].pt), 0);
    }
    ref_finish(ref);
    run->late = ref_late(ref, 0);
    ref_free(ref);
    job_free(job);
}

/* ---- streams and the comparison --------------------------------------------------------- */

static size_t make_stream(const struct cfg *c, struct rec *recs)
{
    size_t n = (size_t)rr(20, MAXREC);
    int nkeys = (int)rr(1, 12);
    int64_t clock = rr(-5000, 5000) * 1000 + rr(0, 999);   /* around the epoch, both signs */
    int64_t step = rr(1, 400), late_span = c->ooo + rr(0, 3000);
    int late_pct = (int)rr(0, 25);
    /* reduce: a processing-time clock that may stand still, and ticks
     * between records, around its TTL and emission periods */
    int64_t now = 1700000000000LL + rr(0, 99999), pstep = rr(0, 3) == 0 ? 0 : rr(1, 900);
    int tick_pct = (int)rr(0, 40);
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &recs[i];
        r->tick = -1;
        if (rr(0, 99) < tick_pct) {
            now += rr(0, pstep * 2);
            r->tick = now;
        }
        now += rr(0, 3) == 0 ? 0 : rr(0, pstep);
        r->pt = now;
        clock += rr(0, step);
        r->ki = (int)rr(0, nkeys - 1);
        r->kind = (int)rr(0, 2);
        r->n = rr(-5, 5);
        r->xk = rr(-3000, 3000);
        r->flag = (int)rr(0, 1);
        r->src = c->two_src ? (int)rr(0, 1) : 0;
        if (rr(0, 99) < late_pct)
            r->t = clock - rr(0, late_span);            /* may be beyond the bound */
        else
            r->t = clock - rr(0, c->ooo);               /* out of order within it */
    }
    return n;
}

static void random_cfg(struct cfg *c, int type)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->ooo = rr(0, 3) == 0 ? 0 : rr(1, 2000);
    c->al = rr(0, 2) == 0 ? rr(1, 3000) : 0;
    c->two_keys = rr(0, 3) == 0;
    switch (type) {
    case WIN_TUMBLING:
        c->size = rr(1, 40) * 100;
        break;
    case WIN_SLIDING:
        c->slide = rr(1, 20) * 100;
        c->size = rr(0, 1) ? c->slide * rr(1, 6) : c->slide + rr(1, 50) * 37;
        if (c->size < c->slide)
            c->size = c->slide;
        break;
    case WIN_SESSION:
        c->gap = rr(1, 30) * 100 + rr(0, 1) * rr(1, 99);
        break;
    case WIN_GLOBAL:
        c->count = rr(1, 7);
        c->al = 0;
        break;
    case WIN_COUNT:
        c->count = rr(0, 3) == 0 ? rr(1, 40) : rr(1, 8);
        c->slide = rr(0, 2) == 0 ? 0 : rr(1, c->count);
        c->al = 0;
        break;
    case WIN_JOIN:
        c->al = 0;
        c->jtype = (int)rr(0, 2);
        c->two_src = (int)rr(0, 1);
        c->filt = (int)rr(0, 2);
        c->within = rr(0, 4) == 0 ? 0 : rr(1, 3000);
        c->ooo2 = rr(0, 3) == 0 ? 0 : rr(1, 2000);
        break;
    default:
        c->al = 0;
        c->count = rr(0, 3);                        /* detect: which `when` */
        c->every = type == WIN_DETECT || rr(0, 1) ? 0 : rr(1, 30) * 100;
        c->ttl = rr(0, 3) == 0 ? 0 : rr(1, 40) * 100 + rr(0, 1) * rr(1, 99);
        c->read_and_write = (int)rr(0, 1);
        c->return_expired = (int)rr(0, 1);
        break;
    }
}

static void diff_streams(int type, uint64_t seed)
{
    static struct rec recs[MAXREC];
    rs = seed;
    for (int s = 0; s < STREAMS; s++) {
        struct cfg c;
        random_cfg(&c, type);
        size_t n = make_stream(&c, recs);
        struct run eng = { 0 }, ref = { 0 };
        run_engine(&c, recs, n, &eng);
        run_reference(&c, recs, n, &ref);
        if (eng.out.n > 1)
            qsort(eng.out.v, eng.out.n, sizeof(char *), cmpstr);
        if (ref.out.n > 1)
            qsort(ref.out.v, ref.out.n, sizeof(char *), cmpstr);
        for (size_t i = 0; i < eng.out.n || i < ref.out.n; i++) {
            const char *a = i < eng.out.n ? eng.out.v[i] : "(none)";
            const char *b = i < ref.out.n ? ref.out.v[i] : "(none)";
            ck_assert_msg(strcmp(a, b) == 0,
                          "stream %d (type %d size %" PRId64 " slide %" PRId64 " gap %" PRId64
                          " al %" PRId64 " ooo %" PRId64 " count %" PRId64 " keys2 %d every %"
                          PRId64 " ttl %" PRId64 " rw %d ret %d join %d/%d/%d within %" PRId64
                          " ooo2 %" PRId64 "), "
                          "result %zu of %zu/%zu:\n  engine    %s\n  reference %s",
                          s, type, c.size, c.slide, c.gap, c.al, c.ooo, c.count, c.two_keys,
                          c.every, c.ttl, c.read_and_write, c.return_expired, c.jtype,
                          c.two_src, c.filt, c.within, c.ooo2,
                          i, eng.out.n, ref.out.n, a, b);
        }
        ck_assert_uint_eq(eng.late, ref.late);
        strs_free(&eng.out);
        strs_free(&ref.out);
    }
}

/* ---- restore anywhere: a checkpoint and a restore change nothing ------------------ */

static void engine_run_split(const struct cfg *c, const struct rec *recs, size_t n, size_t k,
                             struct run *run)
{
    struct job *job = load_job(c);
    struct engine *e;
    struct engine_output out = { run, eng_result, NULL, NULL, NULL };
    char path[] = "/tmp/sluice-test-ckpt-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const struct engine_opts *opts = c->type >= WIN_REDUCE ? &clock_opts : NULL;
    ck_assert_int_eq(engine_new(job, opts, &out, &e), 0);
    engine_partition_add(e, 0, 0);
    if (c->two_src)
        engine_partition_add(e, 1, 0);
    for (size_t i = 0; i < n; i++) {
        if (i == k) {
            /* checkpoint, throw the engine away, restore into a new one */
            struct ckpt_writer w;
            ck_assert_int_eq(ckpt_writer_init(&w, (int)(i % 2)), 0);
            ckpt_write_header(&w, fd, CKPT_CHECKPOINT, 1, 0, job->name);
            ck_assert_int_eq(engine_snapshot(e, &w, NULL, NULL), 0);
            ck_assert_int_eq(ckpt_finish(&w), 0);
            ckpt_writer_free(&w);
            close(fd);
            engine_free(e);
            struct ckpt_reader *r;
            struct ckpt_info info;
            char err[256];
            ck_assert_msg(ckpt_open(path, &r, &info, err, sizeof(err)) == 0, "%s", err);
            ck_assert_int_eq(engine_new(job, opts, &out, &e), 0);
            ck_assert_msg(engine_restore(e, r, 0, NULL, err, sizeof(err)) == 0, "%s", err);
            engine_partition_add(e, 0, 0);
            if (c->two_src)
                engine_partition_add(e, 1, 0);
            ckpt_close(r);
        }
        feed_one(e, c, &recs[i], i, run);
    }
    if (k >= n)
        close(fd);
    run->at = n;
    engine_finish(e);
    unlink(path);
    engine_free(e);
    job_free(job);
}

static void restore_streams(int type, uint64_t seed, int streams)
{
    static struct rec recs[MAXREC];
    rs = seed;
    for (int s = 0; s < streams; s++) {
        struct cfg c;
        random_cfg(&c, type);
        size_t n = make_stream(&c, recs);
        size_t k = (size_t)rr(0, (int64_t)n - 1);
        struct run whole = { 0 }, split = { 0 };
        run_engine(&c, recs, n, &whole);
        engine_run_split(&c, recs, n, k, &split);
        ck_assert_uint_eq(whole.out.n, split.out.n);
        /* the same windows, fired after the same records, with the same
         * values (keys due at one instant may fire in another order) */
        if (whole.out.n > 1) {
            qsort(whole.out.v, whole.out.n, sizeof(char *), cmpstr);
            qsort(split.out.v, split.out.n, sizeof(char *), cmpstr);
        }
        for (size_t i = 0; i < whole.out.n; i++)
            ck_assert_msg(strcmp(whole.out.v[i], split.out.v[i]) == 0,
                          "stream %d type %d split at %zu: result %zu\n  whole %s\n  split %s",
                          s, type, k, i, whole.out.v[i], split.out.v[i]);
        strs_free(&whole.out);
        strs_free(&split.out);
    }
}

START_TEST(restore_anywhere_changes_nothing)
{
    restore_streams(WIN_TUMBLING, 505, 250);
    restore_streams(WIN_SLIDING, 606, 250);
    restore_streams(WIN_SESSION, 707, 250);
    restore_streams(WIN_GLOBAL, 808, 250);
    restore_streams(WIN_REDUCE, 909, 250);
    restore_streams(WIN_DETECT, 1111, 250);
    restore_streams(WIN_JOIN, 1313, 250);
    restore_streams(WIN_COUNT, 1515, 250);
}
END_TEST

/* count windows, tumbling and sliding, slides that divide the count and
 * ones that do not, keys far apart in how many records they get */
START_TEST(count_matches_reference)
{
    diff_streams(WIN_COUNT, 1616);
}
END_TEST

/* inner, left and outer joins of branches of one source or of two
 * sources, overlapping or not, both arrival orders, late records */
START_TEST(join_matches_reference)
{
    diff_streams(WIN_JOIN, 1414);
}
END_TEST

START_TEST(reduce_matches_reference)
{
    diff_streams(WIN_REDUCE, 1010);
}
END_TEST

START_TEST(detect_matches_reference)
{
    diff_streams(WIN_DETECT, 1212);
}
END_TEST

START_TEST(tumbling_matches_reference)
{
    diff_streams(WIN_TUMBLING, 101);
}
END_TEST

START_TEST(sliding_matches_reference)
{
    diff_streams(WIN_SLIDING, 202);
}
END_TEST

START_TEST(session_matches_reference)
{
    diff_streams(WIN_SESSION, 303);
}
END_TEST

START_TEST(global_matches_reference)
{
    diff_streams(WIN_GLOBAL, 404);
}
END_TEST

Suite *diff_suite(void)
{
    Suite *s = suite_create("diff");
    TCase *tc = tcase_create("streams");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tumbling_matches_reference);
    tcase_add_test(tc, sliding_matches_reference);
    tcase_add_test(tc, session_matches_reference);
    tcase_add_test(tc, global_matches_reference);
    tcase_add_test(tc, reduce_matches_reference);
    tcase_add_test(tc, detect_matches_reference);
    tcase_add_test(tc, join_matches_reference);
    tcase_add_test(tc, count_matches_reference);
    tcase_add_test(tc, restore_anywhere_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}
