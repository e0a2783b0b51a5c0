/*
 * envsubst.c - ${VAR} substitution with a position map (see envsubst.h).
 *
 * One pass over the input.  A tiny lexer tracks just enough YAML to know
 * when a '#' starts a comment: quoted scalars begin with a quote that stands
 * after a blank or a flow indicator, so the apostrophe in "it's" is not one.
 * Substitutions in the output are recorded as segments; everything between
 * two segments is copied byte for byte, so the offset arithmetic in
 * envsubst_pos() is exact.
 */
#include "envsubst.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > ((size_t)-1) / 2)
                return -ENOMEM;
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int seg_add(struct envsubst *s, size_t out_off, size_t out_len,
                   size_t in_off, size_t in_len, int failed)
{
    if (s->nsegs == s->capsegs) {
        size_t cap = s->capsegs ? s->capsegs * 2 : 8;
        struct envsubst_seg *v = realloc(s->segs, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        s->segs = v;
        s->capsegs = cap;
    }
    s->segs[s->nsegs++] = (struct envsubst_seg){ out_off, out_len,
                                                 in_off, in_len, failed };
    return 0;
}

static int line_index(const char *t, size_t len, size_t **out, size_t *n)
{
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
        if (t[i] == '\n' || (t[i] == '\r' && (i + 1 >= len || t[i + 1] != '\n')))
            count++;
    size_t *v = malloc(count * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    size_t k = 0;
    v[k++] = 0;
    for (size_t i = 0; i < len; i++)
        if (t[i] == '\n' || (t[i] == '\r' && (i + 1 >= len || t[i + 1] != '\n')))
            v[k++] = i + 1;
    *out = v;
    *n = count;
    return 0;
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Where a quote may open a quoted scalar: after these, or at line start. */
static int opens_scalar(char prev)
{
    return prev == '\0' || prev == '\n' || prev == '\r' || is_blank(prev) ||
           prev == '[' || prev == '{' || prev == ',' || prev == ':' ||
           prev == '-';
}

/*
 * Position of a reference, for its error.  Computed only when the error will
 * be stored: finding a column walks its line, and a line of 300,000
 * failing references must not cost 300,000 walks.
 */
static void ref_pos(const struct envsubst *s, const struct diags *d, size_t off,
                    int *line, int *col)
{
    *line = *col = 0;
    if (d->n < DIAG_MAX)
        envsubst_in_pos(s, off, line, col);
}

int envsubst_run(struct envsubst *s, const char *in, size_t len,
                 envsubst_lookup_fn lookup, void *ud, struct diags *d)
{
    struct buf out = { 0 };
    char quote = 0;         /* '\'' or '"' while inside a quoted scalar */
    int rc = 0;
    size_t i = 0;

    memset(s, 0, sizeof(*s));
    s->in = in;
    s->in_len = len;
    rc = line_index(in, len, &s->in_lines, &s->n_in_lines);
    if (rc < 0)
        goto fail;
    rc = buf_put(&out, "", 0);
    if (rc < 0)
        goto fail;

    while (i < len) {
        char c = in[i];
        char prev = i > 0 ? in[i - 1] : '\0';

        if (quote == 0 && c == '#' && (i == 0 || is_blank(prev) ||
                                       prev == '\n' || prev == '\r')) {
            size_t e = i;
            while (e < len && in[e] != '\n' && in[e] != '\r')
                e++;
            if ((rc = buf_put(&out, in + i, e - i)) < 0)
                goto fail;
            i = e;
            continue;
        }
        if (quote == 0 && (c == '"' || c == '\'') && opens_scalar(prev)) {
            quote = c;
        } else if (quote == '"' && c == '\\' && i + 1 < len) {
            if ((rc = buf_put(&out, in + i, 2)) < 0)
                goto fail;
            i += 2;
            continue;
        } else if (quote == '\'' && c == '\'' && i + 1 < len && in[i + 1] == '\'') {
            if ((rc = buf_put(&out, in + i, 2)) < 0)
                goto fail;
            i += 2;
            continue;
        } else if (quote != 0 && c == quote) {
            quote = 0;
        }

        if (c != '$' || i + 1 >= len || (in[i + 1] != '{' && in[i + 1] != '$')) {
            if ((rc = buf_put(&out, &c, 1)) < 0)
                goto fail;
            i++;
            continue;
        }
        if (in[i + 1] == '$') {     /* "$$" -> "$" */
            if ((rc = seg_add(s, out.len, 1, i, 2, 0)) < 0 ||
                (rc = buf_put(&out, "$", 1)) < 0)
                goto fail;
            i += 2;
            continue;
        }

        /* ${NAME[:-default|:?message]} */
        size_t start = i, p = i + 2, name_off = p;
        int line, col;
        while (p < len && is_name_char(in[p]))
            p++;
        size_t name_len = p - name_off;
        const char *alt = NULL;
        size_t alt_len = 0;
        char op = 0;
        if (p + 1 < len && in[p] == ':' && (in[p + 1] == '-' || in[p + 1] == '?')) {
            op = in[p + 1];
            p += 2;
            alt = in + p;
            while (p < len && in[p] != '}' && in[p] != '\n' && in[p] != '\r')
                p++;
            alt_len = (size_t)(in + p - alt);
        }
        if (p >= len || in[p] != '}') {
            ref_pos(s, d, start, &line, &col);
            diags_add(d, line, col, "unterminated \"${\": expected \"}\" on the same line");
            /* copy the rest of the line through, so parsing can go on */
            size_t e = i;
            while (e < len && in[e] != '\n' && in[e] != '\r')
                e++;
            if ((rc = buf_put(&out, in + i, e - i)) < 0)
                goto fail;
            i = e;
            continue;
        }
        size_t end = p + 1;
        const char *val = NULL;
        size_t val_len = 0;
        size_t errors_before = diags_count(d);
        if (name_len == 0 || !is_name_start(in[name_off])) {
            ref_pos(s, d, start, &line, &col);
            diags_add(d, line, col, "bad variable reference \"%.*s\": "
                      "expected ${NAME}, ${NAME:-default} or ${NAME:?message}",
                      (int)(end - start > 60 ? 60 : end - start), in + start);
        } else {
            char name[256];
            if (name_len >= sizeof(name)) {
                ref_pos(s, d, start, &line, &col);
                diags_add(d, line, col, "variable name is longer than %zu characters",
                          sizeof(name) - 1);
            } else {
                memcpy(name, in + name_off, name_len);
                name[name_len] = '\0';
                val = lookup(name, ud);
                if (val != NULL && val[0] == '\0' && op != 0)
                    val = NULL;     /* shell semantics: ":" treats empty as unset */
                if (val != NULL) {
                    val_len = strlen(val);
                } else if (op == '-') {
                    val = alt;
                    val_len = alt_len;
                } else if (op == '?') {
                    ref_pos(s, d, start, &line, &col);
                    diags_add(d, line, col, "environment variable %s is not set: %.*s",
                              name, (int)(alt_len > 200 ? 200 : alt_len), alt);
                } else {
                    ref_pos(s, d, start, &line, &col);
                    diags_add(d, line, col, "environment variable %s is not set "
                              "(use ${%s:-default} to give a default)", name, name);
                }
            }
        }
        if ((rc = seg_add(s, out.len, val_len, start, end - start,
                          diags_count(d) != errors_before)) < 0)
            goto fail;
        if (val_len > 0 && (rc = buf_put(&out, val, val_len)) < 0)
            goto fail;
        i = end;
    }

    rc = line_index(out.p, out.len, &s->out_lines, &s->n_out_lines);
    if (rc < 0)
        goto fail;
    /* mark the lines holding a failed reference, for envsubst_line_failed() */
    s->out_line_failed = calloc(s->n_out_lines ? s->n_out_lines : 1, 1);
    if (s->out_line_failed == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t k = 0, line = 0; k < s->nsegs; k++) {
        while (line + 1 < s->n_out_lines && s->out_lines[line + 1] <= s->segs[k].out_off)
            line++;
        if (s->segs[k].failed)
            s->out_line_failed[line] = 1;
    }
    s->text = out.p;
    s->len = out.len;
    return 0;
fail:
    free(out.p);
    envsubst_free(s);
    return rc;
}

/* Counts UTF-8 characters (non-continuation bytes) in t[a..b). */
static size_t chars_between(const char *t, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        if (((unsigned char)t[i] & 0xC0) != 0x80)
            n++;
    return n;
}

void envsubst_in_pos(const struct envsubst *s, size_t in_off, int *line, int *col)
{
    if (in_off > s->in_len)
        in_off = s->in_len;
    /* last line start <= in_off */
    size_t lo = 0, hi = s->n_in_lines;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->in_lines[mid] <= in_off)
            lo = mid;
        else
            hi = mid;
    }
    *line = (int)lo + 1;
    *col = (int)chars_between(s->in, s->in_lines[lo], in_off) + 1;
}

void envsubst_pos(const struct envsubst *s, size_t line0, size_t col0,
                  int *line, int *col)
{
    if (s->out_lines == NULL || s->n_out_lines == 0) {
        *line = (int)line0 + 1;
        *col = (int)col0 + 1;
        return;
    }
    if (line0 >= s->n_out_lines)
        line0 = s->n_out_lines - 1;
    /* walk col0 characters from the line start in the substituted text */
    size_t o = s->out_lines[line0];
    while (col0 > 0 && o < s->len && s->text[o] != '\n' && s->text[o] != '\r') {
        o++;
        while (o < s->len && ((unsigned char)s->text[o] & 0xC0) == 0x80)
            o++;
        col0--;
    }
    envsubst_out_pos(s, o, line, col);
}

void envsubst_out_pos(const struct envsubst *s, size_t o, int *line, int *col)
{
    /* last segment starting at or before o */
    size_t in_off = o;
    size_t lo = 0, hi = s->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].out_off <= o)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        const struct envsubst_seg *g = &s->segs[lo - 1];
        if (o < g->out_off + g->out_len)
            in_off = g->in_off;
        else
            in_off = g->in_off + g->in_len + (o - g->out_off - g->out_len);
    }
    envsubst_in_pos(s, in_off, line, col);
}

int envsubst_line_failed(const struct envsubst *s, size_t line0)
{
    return line0 < s->n_out_lines && s->out_line_failed != NULL &&
           s->out_line_failed[line0];
}

void envsubst_free(struct envsubst *s)
{
    free(s->text);
    free(s->segs);
    free(s->in_lines);
    free(s->out_lines);
    free(s->out_line_failed);
    s->out_line_failed = NULL;
    s->text = NULL;
    s->segs = NULL;
    s->in_lines = s->out_lines = NULL;
    s->nsegs = s->capsegs = s->n_in_lines = s->n_out_lines = 0;
}
