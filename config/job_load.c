/*
 * job_load.c - YAML job file -> validated job model (see job.h).
 *
 * Stages:
 *   1. read the file (bounded size) and substitute ${VAR}s, keeping a map
 *      from substituted positions back to the file the operator edits;
 *   2. let libyaml build a node tree (a syntax error stops here, reported
 *      at its position like every other error);
 *   3. walk the tree section by section: sinks first, then sources, then
 *      operators, so every reference can be resolved as it is read;
 *   4. cross-checks that need the whole graph (names unique across
 *      sections, key templates against each operator that feeds a sink);
 *   5. on a job with no error so far, repartitioning: sources are added
 *      for operators keyed otherwise than their source's partitioned_by,
 *      and those operators read them (job.h, above enum src_role).
 *
 * A source or sink block holds the keys every source (or sink) has, read
 * here, and its connector type's keys, which the loader does not know: it
 * looks the type up by name in the connector list (config/conntype.h, a
 * registry resolved at link time) and reads the rest of the block through
 * the type's config map into the connector's own settings struct.
 *
 * The walk never stops at the first problem: each check records a
 * diagnostic and carries on with a neutral value, so one run shows every
 * error.  The walk follows the schema of the job file, never the shape of
 * the input, so anchors, aliases and deep nesting cannot make it loop or
 * recurse without bound.
 */
#include "job.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "confmap.h"
#include "envsubst.h"
#include "store_url.h"

#define JOB_FILE_MAX (4u << 20)     /* a job file is text written by people */
#define NAME_MAX_LEN CM_NAME_MAX
/* Entries in any one mapping or list.  Far above any real job, and it keeps
 * the loader's pairwise checks (duplicate keys, references) cheap on
 * hostile input: 1024 x 1024 comparisons at worst. */
#define MAP_MAX 1024

struct loader {
    struct job *job;
    struct arena *a;
    struct diags *d;
    struct envsubst sub;
    yaml_document_t doc;
};

/* ---- positions and messages --------------------------------------------- */

static struct job_pos node_pos(const struct loader *L, const yaml_node_t *n)
{
    struct job_pos p;
    envsubst_pos(&L->sub, n->start_mark.line, n->start_mark.column, &p.line, &p.col);
    return p;
}

static void err_at(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_at(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char buf[900];
    va_list ap;
    struct job_pos p = { 0, 0 };
    if (n != NULL && envsubst_line_failed(&L->sub, n->start_mark.line))
        return;
    if (L->d->n >= DIAG_MAX) {
        L->d->dropped++;    /* not stored: spare the walk to its column */
        return;
    }
    if (n != NULL)
        p = node_pos(L, n);
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    diags_add(L->d, p.line, p.col, "%s", buf);
}

/*
 * An error at byte `off` inside a scalar (an expression or a template).
 * Exact for single-line plain or quoted scalars without escapes; otherwise
 * it falls back to the start of the scalar.
 */
static void err_in_scalar(struct loader *L, const yaml_node_t *n, size_t off,
                          const char *msg)
{
    size_t col = n->start_mark.column;
    const char *v = (const char *)n->data.scalar.value;

    if (envsubst_line_failed(&L->sub, n->start_mark.line))
        return;
    if (L->d->n >= DIAG_MAX) {
        L->d->dropped++;
        return;
    }
    int exact = n->start_mark.line == n->end_mark.line;

    if (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
        n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
        col++;
        /* escapes shift columns: only trust the offset when none are there */
        size_t raw = n->end_mark.column - n->start_mark.column;
        if (raw != n->data.scalar.length + 2)
            exact = 0;
    } else if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        exact = 0;
    }
    if (exact) {
        for (size_t i = 0; i < off && i < n->data.scalar.length; i++)
            if (((unsigned char)v[i] & 0xC0) != 0x80)
                col++;
    } else {
        col = n->start_mark.column;
    }
    int line, c;
    envsubst_pos(&L->sub, n->start_mark.line, col, &line, &c);
    diags_add(L->d, line, c, "%s", msg);
}

/* ---- node access --------------------------------------------------------- */

static yaml_node_t *node_get(struct loader *L, int id)
{
    return yaml_document_get_node(&L->doc, id);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:   return "a single value";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE:  return "a mapping";
    default:                 return "nothing";
    }
}

/* The scalar's text, or NULL (after an error) when n is not a usable scalar. */
static const char *scalar(struct loader *L, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        err_at(L, n, "%s must be a single value, not %s", what, node_kind(n));
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length) {
        err_at(L, n, "%s contains a NUL character", what);
        return NULL;
    }
    return v;
}

static int is_null_scalar(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/*
 * Checks that n is a mapping whose keys are distinct scalars from `allowed`
 * (NULL-terminated; NULL allowed means any key).  Returns 0 when n is a
 * mapping (even with bad keys, so the caller can go on), -EINVAL otherwise.
 */
static int check_map(struct loader *L, const yaml_node_t *n, const char *what,
                     const char *const *allowed)
{
    if (n->type != YAML_MAPPING_NODE) {
        err_at(L, n, "%s must be a mapping, not %s", what, node_kind(n));
        return -EINVAL;
    }
    size_t nentries = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (nentries > MAP_MAX) {
        err_at(L, n, "%s has %zu entries; at most %d", what, nentries, MAP_MAX);
        return -EINVAL;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_get(L, p->key);
        if (k == NULL)
            continue;
        if (k->type != YAML_SCALAR_NODE) {
            err_at(L, k, "keys in %s must be plain names, not %s", what, node_kind(k));
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = node_get(L, q->key);
            if (k2 != NULL && k2->type == YAML_SCALAR_NODE &&
                strcmp((const char *)k2->data.scalar.value, key) == 0) {
                struct job_pos first = node_pos(L, k2);
                err_at(L, k, "duplicate key '%.64s' in %s (first at line %d)",
                       key, what, first.line);
                break;
            }
        }
        if (allowed == NULL)
            continue;
        size_t i, best = 0, best_d = 99;
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0)
                break;
            size_t dist = edit_distance(allowed[i], key);
            if (dist < best_d) {
                best_d = dist;
                best = i;
            }
        }
        if (allowed[i] != NULL)
            continue;
        /* suggest only near misses: one edit, or two in a longer word */
        if (allowed[0] != NULL && (best_d <= 1 || (best_d == 2 && strlen(key) >= 6))) {
            err_at(L, k, "unknown key '%.64s' in %s (did you mean '%s'?)",
                   key, what, allowed[best]);
        } else {
            char list[512];
            size_t len = 0;
            list[0] = '\0';
            for (i = 0; allowed[i] != NULL && len < sizeof(list); i++)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                        i ? ", " : "", allowed[i]);
            err_at(L, k, "unknown key '%.64s' in %s (expected one of: %s)",
                   key, what, list);
        }
    }
    return 0;
}

/* Value node of `key` in mapping n (first occurrence), or NULL. */
static yaml_node_t *map_get(struct loader *L, const yaml_node_t *n, const char *key)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_get(L, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return node_get(L, p->value);
    }
    return NULL;
}

/* The key node of `key`, for errors about the key itself. */
static yaml_node_t *map_key_node(struct loader *L, const yaml_node_t *n, const char *key)
{
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_get(L, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return k;
    }
    return NULL;
}

/*
 * A string value.  Missing or null: error when required, else NULL.
 * Empty string: error ("is empty") when required.
 */
static const char *get_str(struct loader *L, const yaml_node_t *map, const char *key,
                           int required, const char *what)
{
    yaml_node_t *v = map_get(L, map, key);
    if (v == NULL || is_null_scalar(v)) {
        if (required) {
            if (v == NULL)
                err_at(L, map, "%s: missing required key '%s'", what, key);
            else
                err_at(L, v, "%s: '%s' is empty", what, key);
        }
        return NULL;
    }
    char label[160];
    snprintf(label, sizeof(label), "'%s'", key);
    const char *s = scalar(L, v, label);
    if (s == NULL)
        return NULL;
    if (s[0] == '\0' && required) {
        err_at(L, v, "%s: '%s' is empty", what, key);
        return NULL;
    }
    return arena_strdup(L->a, s);
}

enum { DUR_POSITIVE = 1, DUR_NONNEG = 2 };

/* A duration value; returns dflt when absent. */
static int64_t get_duration(struct loader *L, const yaml_node_t *map, const char *key,
                            int64_t dflt, int required, int flags, const char *what)
{
    yaml_node_t *v = map_get(L, map, key);
    if (v == NULL || is_null_scalar(v)) {
        if (required)
            err_at(L, v ? v : map, "%s: missing required key '%s'", what, key);
        return dflt;
    }
    char label[160];
    snprintf(label, sizeof(label), "'%s'", key);
    const char *s = scalar(L, v, label);
    if (s == NULL)
        return dflt;
    char msg[200];
    int64_t ms;
    if (duration_parse(s, &ms, msg, sizeof(msg)) < 0) {
        err_at(L, v, "%s: %s", key, msg);
        return dflt;
    }
    if ((flags & DUR_POSITIVE) && ms <= 0) {
        err_at(L, v, "%s must be greater than zero, got %s", key, s);
        return dflt;
    }
    if ((flags & DUR_NONNEG) && ms < 0) {
        err_at(L, v, "%s must not be negative, got %s", key, s);
        return dflt;
    }
    return ms;
}

/* A whole number in [lo, hi]; dflt when absent. */
static int64_t get_int(struct loader *L, const yaml_node_t *map, const char *key,
                       int64_t dflt, int64_t lo, int64_t hi)
{
    yaml_node_t *v = map_get(L, map, key);
    if (v == NULL || is_null_scalar(v))
        return dflt;
    char label[160];
    snprintf(label, sizeof(label), "'%s'", key);
    const char *s = scalar(L, v, label);
    if (s == NULL)
        return dflt;
    const char *p = s;
    int neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    int64_t x = 0;
    int ok = *p != '\0';
    for (; *p && ok; p++) {
        if (*p < '0' || *p > '9' || x > (INT64_MAX - 9) / 10)
            ok = 0;
        else
            x = x * 10 + (*p - '0');
    }
    if (!ok) {
        err_at(L, v, "%s must be a whole number, got \"%.40s\"", key, s);
        return dflt;
    }
    x = neg ? -x : x;
    if (x < lo || x > hi) {
        err_at(L, v, "%s must be between %lld and %lld, got %lld", key,
               (long long)lo, (long long)hi, (long long)x);
        return dflt;
    }
    return x;
}

/* One of names[] (NULL-terminated); dflt when absent or wrong. */
static int get_enum(struct loader *L, const yaml_node_t *map, const char *key,
                    const char *const *names, int dflt, int required, const char *what)
{
    yaml_node_t *v = map_get(L, map, key);
    if (v == NULL || is_null_scalar(v)) {
        if (required)
            err_at(L, v ? v : map, "%s: missing required key '%s'", what, key);
        return dflt;
    }
    char label[160];
    snprintf(label, sizeof(label), "'%s'", key);
    const char *s = scalar(L, v, label);
    if (s == NULL)
        return dflt;
    char list[256];
    size_t len = 0;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
        if (len < sizeof(list))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                    i ? (names[i + 1] ? ", " : " or ") : "", names[i]);
    }
    err_at(L, v, "%s: unknown %s \"%.40s\" (expected %s)", what, key, s, list);
    return -1;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int valid_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static int find_sink(const struct job *job, const char *name)
{
    for (size_t i = 0; i < job->nsinks; i++)
        if (job->sinks[i].name != NULL && strcmp(job->sinks[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int find_source(const struct job *job, const char *name)
{
    for (size_t i = 0; i < job->nsources; i++)
        if (job->sources[i].name != NULL && strcmp(job->sources[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Key names of a named section entry, with their value nodes, in order. */
struct entry {
    yaml_node_t *key, *value;
    const char *name;
};

/* Lists the entries of a section mapping (sources, operators, sinks). */
static size_t section_entries(struct loader *L, yaml_node_t *sec, const char *what,
                              struct entry **out)
{
    *out = NULL;
    if (sec == NULL)
        return 0;
    if (check_map(L, sec, what, NULL) < 0)
        return 0;
    size_t n = (size_t)(sec->data.mapping.pairs.top - sec->data.mapping.pairs.start);
    struct entry *e = arena_alloc(L->a, (n ? n : 1) * sizeof(*e));
    if (e == NULL)
        return 0;
    size_t k = 0;
    for (yaml_node_pair_t *p = sec->data.mapping.pairs.start;
         p < sec->data.mapping.pairs.top; p++) {
        yaml_node_t *key = node_get(L, p->key), *val = node_get(L, p->value);
        if (key == NULL || val == NULL || key->type != YAML_SCALAR_NODE)
            continue;
        const char *name = (const char *)key->data.scalar.value;
        if (!valid_name(name)) {
            err_at(L, key, "bad name '%.64s' in %s: use letters, digits, '_', '-' "
                   "and '.', at most %d characters", name, what, NAME_MAX_LEN);
        }
        e[k].key = key;
        e[k].value = val;
        e[k].name = arena_strdup(L->a, name);
        k++;
    }
    if (k == 0)
        err_at(L, sec, "%s is empty: define at least one", what);
    *out = e;
    return k;
}

/* ---- config maps (confmap.h) ---------------------------------------------- */

struct cm_ctx {
    struct loader *L;
    yaml_node_t *map;
    char what[240];         /* "redis sink 'features'" */
    const char *owner;      /* "sink 'features'", for nested labels; NULL: what */
};

#define CM_MAX_KEYS 64

/* A context for mapping n of L, for the loader's own use of config maps. */
static void cm_ctx_init(struct cm_ctx *c, struct loader *L, yaml_node_t *n, const char *what)
{
    c->L = L;
    c->map = n;
    c->owner = NULL;
    snprintf(c->what, sizeof(c->what), "%s", what);
}

int cm_check_keys(struct cm_ctx *c, const struct cm_map *map)
{
    const char *allowed[CM_MAX_KEYS + 1];
    size_t n = 0;
    for (const struct cm_entry *e = map->entries; e->key != NULL && n < CM_MAX_KEYS; e++)
        allowed[n++] = e->key;
    allowed[n] = NULL;
    return check_map(c->L, c->map, c->what, allowed);
}

const struct cm_entry *cm_entry_find(const struct cm_map *map, const char *key)
{
    for (const struct cm_entry *e = map->entries; e->key != NULL; e++)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* CM_PROPS: a mapping of names to single values, as written; the names
 * in owned are refused.  Labelled "<key> of <owner>" ("properties of
 * source 'events'"). */
static void read_props(struct cm_ctx *c, const struct cm_entry *e, struct cm_props *out)
{
    struct loader *L = c->L;
    yaml_node_t *n = map_get(L, c->map, e->key);
    char what[300];

    out->v = NULL;
    out->n = 0;
    snprintf(what, sizeof(what), "%s of %s", e->key, c->owner ? c->owner : c->what);
    if (n == NULL || check_map(L, n, what, NULL) < 0)
        return;
    size_t cap = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    struct cm_kv *kv = arena_alloc(L->a, (cap ? cap : 1) * sizeof(*kv));
    if (kv == NULL)
        return;
    size_t k = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *key = node_get(L, p->key), *val = node_get(L, p->value);
        if (key == NULL || val == NULL || key->type != YAML_SCALAR_NODE)
            continue;
        const char *ks = (const char *)key->data.scalar.value;
        const char *why = NULL;
        for (size_t i = 0; e->owned != NULL && e->owned[i] != NULL; i += 2)
            if (strcmp(e->owned[i], ks) == 0)
                why = e->owned[i + 1];
        if (why != NULL) {
            err_at(L, key, "property '%s' is managed by sluice: %s", ks, why);
            continue;
        }
        char label[160];
        snprintf(label, sizeof(label), "property '%.64s'", ks);
        const char *vs = scalar(L, val, label);
        if (vs == NULL)
            continue;
        kv[k].key = arena_strdup(L->a, ks);
        kv[k].value = arena_strdup(L->a, vs);
        k++;
    }
    out->v = kv;
    out->n = k;
}

/* CM_TEMPLATE: syntax only; names are checked against each operator that
 * feeds the sink once the whole job is read (check_templates). */
static void read_template(struct cm_ctx *c, const struct cm_entry *e, struct cm_template *out)
{
    struct loader *L = c->L;
    yaml_node_t *v = map_get(L, c->map, e->key);
    char label[160];

    out->set = 0;
    if (v == NULL || is_null_scalar(v))
        return;
    snprintf(label, sizeof(label), "'%s'", e->key);
    const char *str = scalar(L, v, label);
    if (str == NULL)
        return;
    struct tpl_error te;
    const char *copy = arena_strdup(L->a, str);
    if (copy == NULL)
        return;
    if (template_parse(L->a, copy, &out->t, &te) < 0) {
        err_in_scalar(L, v, te.off, te.msg);
        return;
    }
    out->set = 1;
}

static int dur_flags(unsigned flags)
{
    return ((flags & CM_POSITIVE) ? DUR_POSITIVE : 0) | ((flags & CM_NONNEG) ? DUR_NONNEG : 0);
}

int cm_read_entries(struct cm_ctx *c, const struct cm_map *map, void *conf)
{
    struct loader *L = c->L;
    if (c->map == NULL || c->map->type != YAML_MAPPING_NODE)
        return -EINVAL;
    for (const struct cm_entry *e = map->entries; e->key != NULL; e++) {
        char *at = (char *)conf + e->offset;
        int req = (e->flags & CM_REQUIRED) != 0;
        switch (e->type) {
        case CM_STR: {
            const char *s = get_str(L, c->map, e->key, req, c->what);
            if (s == NULL && !req)
                s = e->sdflt;
            memcpy(at, &s, sizeof(s));
            break;
        }
        case CM_INT: {
            int64_t x = get_int(L, c->map, e->key, e->dflt, e->lo, e->hi);
            memcpy(at, &x, sizeof(x));
            break;
        }
        case CM_DURATION: {
            int64_t ms = get_duration(L, c->map, e->key, e->dflt, req, dur_flags(e->flags),
                                      c->what);
            memcpy(at, &ms, sizeof(ms));
            break;
        }
        case CM_ENUM: {
            int v = get_enum(L, c->map, e->key, e->names, (int)e->dflt, req, c->what);
            if (v < 0)
                v = (int)e->dflt;
            memcpy(at, &v, sizeof(v));
            break;
        }
        case CM_CUSTOM:
            if (e->read != NULL)
                e->read(c, (struct cm_node *)map_get(L, c->map, e->key), conf);
            break;
        case CM_PROPS:
            read_props(c, e, (struct cm_props *)(void *)at);
            break;
        case CM_TEMPLATE:
            read_template(c, e, (struct cm_template *)(void *)at);
            break;
        }
    }
    if (map->validate != NULL)
        map->validate(c, conf);
    return 0;
}

int cm_read(struct cm_ctx *c, const struct cm_map *map, void *conf)
{
    if (cm_check_keys(c, map) < 0)
        return -EINVAL;
    return cm_read_entries(c, map, conf);
}

const char *cm_read_str(struct cm_ctx *c, const char *key, unsigned flags)
{
    return get_str(c->L, c->map, key, (flags & CM_REQUIRED) != 0, c->what);
}

int64_t cm_read_duration(struct cm_ctx *c, const char *key, int64_t dflt, unsigned flags)
{
    return get_duration(c->L, c->map, key, dflt, (flags & CM_REQUIRED) != 0, dur_flags(flags),
                        c->what);
}

struct cm_node *cm_get(struct cm_ctx *c, const char *key)
{
    return (struct cm_node *)map_get(c->L, c->map, key);
}

struct cm_node *cm_key(struct cm_ctx *c, const char *key)
{
    if (c->map == NULL || c->map->type != YAML_MAPPING_NODE)
        return NULL;
    return (struct cm_node *)map_key_node(c->L, c->map, key);
}

struct cm_node *cm_self(struct cm_ctx *c)
{
    return (struct cm_node *)c->map;
}

const char *cm_what(const struct cm_ctx *c)
{
    return c->what;
}

void cm_child(struct cm_ctx *c, struct cm_node *n, const char *what, struct cm_ctx *child)
{
    cm_ctx_init(child, c->L, (yaml_node_t *)n, what);
}

const char *cm_scalar(struct cm_ctx *c, struct cm_node *n, const char *label)
{
    return scalar(c->L, (const yaml_node_t *)n, label);
}

int cm_is_map(const struct cm_node *n)
{
    return n != NULL && ((const yaml_node_t *)n)->type == YAML_MAPPING_NODE;
}

int cm_is_null(const struct cm_node *n)
{
    return n != NULL && is_null_scalar((const yaml_node_t *)n);
}

void cm_err(struct cm_ctx *c, const struct cm_node *n, const char *fmt, ...)
{
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    err_at(c->L, n != NULL ? (const yaml_node_t *)n : c->map, "%s", buf);
}

void cm_err_in_scalar(struct cm_ctx *c, const struct cm_node *n, size_t off, const char *msg)
{
    err_in_scalar(c->L, (const yaml_node_t *)n, off, msg);
}

struct arena *cm_arena(struct cm_ctx *c)
{
    return c->L->a;
}

struct job *cm_job(struct cm_ctx *c)
{
    return c->L->job;
}

/* ---- connector blocks ------------------------------------------------------ */

/*
 * A source or sink block holds the keys every source (or sink) has, read
 * here, and its type's keys, read through the type's map (conntype.h) into
 * a settings struct the connector owns.
 */

#define CONN_TYPES_MAX 32

const struct conn_type *conn_type_find(enum conn_kind kind, const char *name)
{
    for (size_t i = 0; conn_types[i] != NULL; i++)
        if (conn_types[i]->kind == kind && strcmp(conn_types[i]->name, name) == 0)
            return conn_types[i];
    return NULL;
}

/* The names of kind's types, in the list's order, NULL-terminated. */
static void conn_type_names(enum conn_kind kind, const char **names)
{
    size_t n = 0;
    for (size_t i = 0; conn_types[i] != NULL && n < CONN_TYPES_MAX; i++)
        if (conn_types[i]->kind == kind)
            names[n++] = conn_types[i]->name;
    names[n] = NULL;
}

/*
 * The keys a block of type t accepts, in the order "expected one of" lists
 * have always shown them: 'type', the type's own keys, then the other
 * common keys, with the type's passthrough properties (CM_PROPS) just
 * before 'on_error' (or last, when there is none).
 */
static void block_keys(const struct cm_map *common, const struct conn_type *t,
                       const char **out, size_t max)
{
    size_t n = 0;
    int props_done = 0;
    const struct cm_entry *ce = common->entries, *e;

    out[n++] = ce->key;                 /* type */
    for (e = t->map->entries; e->key != NULL && n < max; e++)
        if (e->type != CM_PROPS)
            out[n++] = e->key;
    for (ce++; ce->key != NULL && n < max; ce++) {
        if (strcmp(ce->key, "on_error") == 0) {
            for (e = t->map->entries; e->key != NULL && n < max; e++)
                if (e->type == CM_PROPS)
                    out[n++] = e->key;
            props_done = 1;
        }
        if (n < max)
            out[n++] = ce->key;
    }
    for (e = t->map->entries; !props_done && e->key != NULL && n < max; e++)
        if (e->type == CM_PROPS)
            out[n++] = e->key;
    out[n] = NULL;
}

/*
 * The type of block m (labelled what), or NULL after reporting it; then
 * checks m's keys against the type's and the common ones and reads the
 * type's keys into a new settings struct (*conf).  label is the block's
 * label with its type ("kafka source 'events'"), owner without it.
 */
static const struct conn_type *load_conn_block(struct loader *L, yaml_node_t *m,
                                               enum conn_kind kind, const char *name,
                                               const void **conf, char *label,
                                               size_t labelsize)
{
    const char *kname = kind == CONN_SOURCE ? "source" : "sink";
    const char *names[CONN_TYPES_MAX + 1], *keys[CM_MAX_KEYS * 2 + 1];
    char owner[200];
    struct cm_ctx c;

    snprintf(owner, sizeof(owner), "%s '%s'", kname, name);
    conn_type_names(kind, names);
    int i = get_enum(L, m, "type", names, -1, 1, owner);
    if (i < 0) {
        check_map(L, m, owner, NULL);
        return NULL;
    }
    const struct conn_type *t = conn_type_find(kind, names[i]);
    snprintf(label, labelsize, "%s %s '%s'", t->name, kname, name);
    block_keys(kind == CONN_SOURCE ? &job_source_map : &job_sink_map, t, keys,
               sizeof(keys) / sizeof(keys[0]) - 1);
    check_map(L, m, label, keys);
    void *settings = arena_alloc(L->a, t->conf_size ? t->conf_size : 1);
    if (settings == NULL) {
        diags_add(L->d, 0, 0, "out of memory");     /* never a job without settings */
        return t;
    }
    cm_ctx_init(&c, L, m, label);
    c.owner = owner;
    (void)cm_read_entries(&c, t->map, settings);   /* m is a mapping: reads */
    *conf = settings;
    return t;
}

/* What operator types read with (confmap.h: "for operator types"); the
 * loader's own helpers, so wording and positions are the loader's. */
static void load_key_by(struct loader *L, int **fields, size_t *nkeys,
                        const struct job_source *src, yaml_node_t *m, yaml_node_t *dflt,
                        const char *what);
static void load_field_list(struct loader *L, yaml_node_t *kb, const char *key,
                            const struct job_source *src, int keys, int **fields,
                            size_t *nkeys);
static int sink_ref(struct loader *L, yaml_node_t *v, const char *key, int raw_events);

int cm_is_ident(const char *s)
{
    return valid_ident(s);
}

int cm_source_ref(struct cm_ctx *c, struct cm_node *v)
{
    const char *name = scalar(c->L, (const yaml_node_t *)v, "'from'");
    if (name == NULL)
        return -1;
    int k = find_source(c->L->job, name);
    if (k < 0)
        err_at(c->L, (const yaml_node_t *)v, "from: no source named '%.64s'", name);
    return k;
}

int cm_sink_ref(struct cm_ctx *c, struct cm_node *v, const char *key, int raw_events)
{
    return sink_ref(c->L, (yaml_node_t *)v, key, raw_events);
}

void cm_key_by(struct cm_ctx *c, struct cm_ctx *dflt, const struct job_source *src,
               int **fields, size_t *nkeys)
{
    load_key_by(c->L, fields, nkeys, src, c->map, dflt ? dflt->map : NULL, c->what);
}

struct cm_ctx *cm_child_new(struct cm_ctx *c, struct cm_node *n, const char *what)
{
    struct cm_ctx *child = arena_alloc(c->L->a, sizeof(*child));
    if (child == NULL)
        diags_add(c->L->d, 0, 0, "out of memory");
    else
        cm_ctx_init(child, c->L, (yaml_node_t *)n, what);
    return child;
}

/* ---- sinks --------------------------------------------------------------- */

static const struct cm_entry sink_entries[] = {
    { .key = "type", .type = CM_CUSTOM, .flags = CM_REQUIRED,
      .desc = "the connector type" },
    { .key = NULL },
};

const struct cm_map job_sink_map = { sink_entries, NULL };

const struct cm_template *job_sink_key(const struct job_sink *s)
{
    if (s->type == NULL || s->conf == NULL)
        return NULL;
    const struct cm_entry *te = cm_entry_of_type(s->type->map, CM_TEMPLATE);
    if (te == NULL)
        return NULL;
    const struct cm_template *k = cm_value(s->type->map, s->conf, te->key);
    return k->set ? k : NULL;
}

static void load_sink(struct loader *L, struct job_sink *s, const struct entry *e)
{
    char what[200];
    yaml_node_t *m = e->value;

    s->name = e->name;
    s->pos = node_pos(L, e->key);
    s->type = NULL;
    snprintf(what, sizeof(what), "sink '%s'", e->name);
    if (m->type != YAML_MAPPING_NODE) {
        err_at(L, m, "%s must be a mapping, not %s", what, node_kind(m));
        return;
    }
    s->type = load_conn_block(L, m, CONN_SINK, e->name, &s->conf, what, sizeof(what));
}

/* Whether sink k can take raw records (late events, dead letters); an
 * unreadable sink's own error explains it. */
static int sink_takes_raw(const struct job *job, int k)
{
    const struct conn_type *t = job->sinks[k].type;
    return t == NULL || (t->flags & CONN_RAW);
}

/* ---- sources ------------------------------------------------------------- */

static const char *const field_types[] = { "string", "int", "double", "bool", NULL };

/* "+09:00", "-0530", "Z", "UTC" -> seconds east of UTC.  Returns 0, or -EINVAL. */
static int parse_tz(const char *s, int32_t *off)
{
    if (strcmp(s, "Z") == 0 || strcmp(s, "UTC") == 0 || strcmp(s, "+00:00") == 0) {
        *off = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) < 3)
        return -EINVAL;
    const char *p = s + 1;
    int hh, mm = 0;
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -EINVAL;
    hh = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    if (*p == ':')
        p++;
    if (*p != '\0') {
        if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] != '\0')
            return -EINVAL;
        mm = (p[0] - '0') * 10 + (p[1] - '0');
    }
    if (hh > 18 || mm > 59 || (hh == 18 && mm > 0))
        return -EINVAL;
    *off = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return 0;
}

static void load_schema(struct loader *L, struct job_source *src, yaml_node_t *m,
                        const char *what)
{
    char label[200];
    snprintf(label, sizeof(label), "schema of source '%s'", src->name);
    yaml_node_t *sch = map_get(L, m, "schema");
    if (sch == NULL) {
        err_at(L, m, "%s: missing required key 'schema' (the fields events carry, "
               "like user_id: string)", what);
        return;
    }
    if (check_map(L, sch, label, NULL) < 0)
        return;
    size_t cap = (size_t)(sch->data.mapping.pairs.top - sch->data.mapping.pairs.start);
    if (cap == 0) {
        err_at(L, sch, "%s is empty: declare at least one field", label);
        return;
    }
    src->fields = arena_alloc(L->a, cap * sizeof(*src->fields));
    if (src->fields == NULL)
        return;
    for (yaml_node_pair_t *p = sch->data.mapping.pairs.start;
         p < sch->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_get(L, p->key), *v = node_get(L, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
            continue;
        const char *name = (const char *)k->data.scalar.value;
        if (!valid_ident(name)) {
            err_at(L, k, "bad field name '%.64s': use letters, digits and '_', "
                   "not starting with a digit", name);
            continue;
        }
        int dup = 0;
        for (size_t i = 0; i < src->nfields; i++)
            dup |= strcmp(src->fields[i].name, name) == 0;
        if (dup)
            continue;       /* reported by check_map */
        char fl[160];
        snprintf(fl, sizeof(fl), "type of field '%s'", name);
        const char *ts = scalar(L, v, fl);
        if (ts == NULL)
            continue;
        int t;
        for (t = 0; field_types[t] != NULL; t++)
            if (strcmp(field_types[t], ts) == 0)
                break;
        if (field_types[t] == NULL) {
            err_at(L, v, "field '%s': unknown type \"%.40s\" (expected string, int, "
                   "double or bool)", name, ts);
            continue;
        }
        src->fields[src->nfields].name = arena_strdup(L->a, name);
        src->fields[src->nfields].type = (enum value_type)t;
        src->nfields++;
    }
}

static void load_event_time(struct loader *L, struct job_source *src, yaml_node_t *m)
{
    static const char *const keys[] = { "field", "format", "timezone", NULL };
    static const char *const formats[] = { "iso8601", "epoch_ms", "epoch_s",
                                           "kafka_timestamp", NULL };
    char what[200];
    yaml_node_t *et = map_get(L, m, "event_time");

    if (et == NULL)
        return;
    snprintf(what, sizeof(what), "event_time of source '%s'", src->name);
    if (check_map(L, et, what, keys) < 0)
        return;
    src->has_event_time = 1;
    int f = get_enum(L, et, "format", formats, TS_ISO8601, 0, what);
    src->ts_format = f < 0 ? TS_ISO8601 : (enum ts_format)f;
    if (src->ts_format == TS_KAFKA_TIMESTAMP) {
        if (!(src->type->flags & CONN_RECORD_TIME))
            err_at(L, map_get(L, et, "format"), "kafka_timestamp needs a kafka source");
        yaml_node_t *fk = map_key_node(L, et, "field");
        if (fk != NULL)
            err_at(L, fk, "kafka_timestamp takes the time from the Kafka record, "
                   "so 'field' must be left out");
    } else {
        src->ts_field = get_str(L, et, "field", 1, what);
        if (src->ts_field != NULL && !valid_ident(src->ts_field)) {
            err_at(L, map_get(L, et, "field"), "bad field name '%.64s'", src->ts_field);
        } else if (src->ts_field != NULL) {
            for (size_t i = 0; i < src->nfields; i++) {
                if (strcmp(src->fields[i].name, src->ts_field) != 0)
                    continue;
                enum value_type t = src->fields[i].type;
                int ok = src->ts_format == TS_ISO8601 ? t == VT_STRING
                                                      : (t == VT_INT || t == VT_DOUBLE);
                if (!ok)
                    err_at(L, map_get(L, et, "field"), "event_time field '%s' is %s "
                           "in the schema, but %s needs %s", src->ts_field,
                           value_type_name(t), formats[src->ts_format],
                           src->ts_format == TS_ISO8601 ? "a string" : "a number");
            }
        }
    }
    yaml_node_t *tz = map_get(L, et, "timezone");
    if (tz != NULL) {
        const char *s = scalar(L, tz, "'timezone'");
        if (s != NULL && src->ts_format != TS_ISO8601) {
            err_at(L, tz, "timezone applies only to iso8601 times; %s times are UTC",
                   formats[src->ts_format]);
        } else if (s != NULL && parse_tz(s, &src->tz_offset_s) < 0) {
            err_at(L, tz, "bad timezone \"%.40s\": use an offset like +09:00 or "
                   "-05:30, or UTC", s);
        }
    }
}

/* The keys every source has; 'type' first (see block_keys). */
static const struct cm_entry source_entries[] = {
    { .key = "type", .type = CM_CUSTOM, .flags = CM_REQUIRED, .desc = "the connector type" },
    { .key = "format", .type = CM_CUSTOM, .desc = "record format: json" },
    { .key = "schema", .type = CM_CUSTOM, .flags = CM_REQUIRED,
      .desc = "field names and their types" },
    { .key = "event_time", .type = CM_CUSTOM, .desc = "where event time comes from" },
    { .key = "watermark", .type = CM_CUSTOM, .desc = "how far event time runs out of order" },
    { .key = "on_error", .type = CM_CUSTOM, .desc = "what happens to a rejected record" },
    { .key = "dead_letter", .type = CM_CUSTOM, .desc = "the sink of rejected records" },
    { .key = "partitioned_by", .type = CM_CUSTOM,
      .desc = "the fields the topic's records are partitioned by, or none" },
    { .key = "repartition", .type = CM_CUSTOM,
      .desc = "the repartition topics of operators keyed otherwise" },
    { .key = NULL },
};

const struct cm_map job_source_map = { source_entries, NULL };

/* repartition: { partitions, transactions }, read into the source.  The
 * largest partition count is RP_MAX_PARTITIONS of connectors/rp_header.h
 * (below config/ in the data flow; a unit test keeps the two equal). */
static const char *const bool_names[] = { "false", "true", NULL };

static const struct cm_entry repartition_entries[] = {
    { .key = "partitions", .type = CM_INT, .lo = 1, .hi = 32768, .dflt = 0,
      .offset = offsetof(struct job_source, rp_partitions),
      .desc = "partitions of its repartition topics when sluice creates them (default: as "
              "many as the input topic has)" },
    { .key = "transactions", .type = CM_ENUM, .names = bool_names, .dflt = 0,
      .offset = offsetof(struct job_source, rp_transactions),
      .desc = "stage 1 produces in Kafka transactions, and stage 2 reads committed records "
              "only" },
    { .key = "purge", .type = CM_ENUM, .names = bool_names, .dflt = 1,
      .offset = offsetof(struct job_source, rp_purge),
      .desc = "stage 2 deletes the records of its repartition topics it has applied and "
              "published (DeleteRecords)" },
    { .key = NULL },
};

const struct cm_map job_repartition_map = { repartition_entries, NULL };

/*
 * partitioned_by: <field> | [<field>, ...] | none, and repartition: {...}.
 * Only a type that can make a repartition source of its settings
 * (conn_type.repartition_conf) takes them; the other types' sources are
 * read as one partition, so any key is whole in it.
 */
static void load_partitioning(struct loader *L, struct job_source *src, yaml_node_t *m)
{
    static const char *const keys[] = { "partitioned_by", "repartition" };
    yaml_node_t *pb = map_get(L, m, keys[0]), *rp = map_get(L, m, keys[1]);
    char what[200], types[100];
    size_t len = 0;

    if (pb == NULL && rp == NULL)
        return;
    if (src->type->repartition_conf == NULL) {
        types[0] = '\0';
        for (size_t i = 0; conn_types[i] != NULL && len < sizeof(types); i++)
            if (conn_types[i]->kind == CONN_SOURCE && conn_types[i]->repartition_conf != NULL)
                len += (size_t)snprintf(types + len, sizeof(types) - len, "%s%s",
                                        len ? " and " : "", conn_types[i]->name);
        for (int k = 0; k < 2; k++)
            if (map_get(L, m, keys[k]) != NULL)
                err_at(L, map_key_node(L, m, keys[k]), "%s: only %s sources can be "
                       "repartitioned (a %s source is read as one partition)", keys[k],
                       types, src->type->name);
        return;
    }
    if (pb == NULL) {
        err_at(L, map_key_node(L, m, keys[1]), "repartition: source '%s' has no "
               "partitioned_by, so no operator reads it through a repartition topic",
               src->name);
    } else if (is_null_scalar(pb)) {
        err_at(L, pb, "partitioned_by is empty: name the field or fields the topic's "
               "records are partitioned by, or write none");
    } else if (pb->type == YAML_SCALAR_NODE && strcmp((const char *)pb->data.scalar.value,
                                                      "none") == 0) {
        src->part_declared = 1;
        src->part_none = 1;
    } else {
        load_field_list(L, pb, keys[0], src, 0, &src->part_fields, &src->npart_fields);
        src->part_declared = src->npart_fields > 0;
    }
    if (rp != NULL) {
        struct cm_ctx c;
        snprintf(what, sizeof(what), "repartition of source '%s'", src->name);
        cm_ctx_init(&c, L, rp, what);
        cm_read(&c, &job_repartition_map, src);
    }
}

static void load_source(struct loader *L, struct job_source *src, const struct entry *e)
{
    static const char *const formats[] = { "json", NULL };
    static const char *const on_errors[] = { "skip", "dead_letter", NULL };
    static const char *const wm_keys[] = { "out_of_orderness", "idle_timeout", NULL };
    char what[200];
    yaml_node_t *m = e->value;

    src->name = e->name;
    src->pos = node_pos(L, e->key);
    src->idle_timeout_ms = JOB_DURATION_NONE;
    src->dead_letter_sink = -1;
    src->rp_purge = 1;
    snprintf(what, sizeof(what), "source '%s'", e->name);
    if (m->type != YAML_MAPPING_NODE) {
        err_at(L, m, "%s must be a mapping, not %s", what, node_kind(m));
        return;
    }
    src->type = load_conn_block(L, m, CONN_SOURCE, e->name, &src->conf, what, sizeof(what));
    if (src->type == NULL)
        return;
    get_enum(L, m, "format", formats, 0, 0, what);
    load_schema(L, src, m, what);
    load_event_time(L, src, m);
    load_partitioning(L, src, m);

    yaml_node_t *wm = map_get(L, m, "watermark");
    if (wm != NULL) {
        char ww[200];
        snprintf(ww, sizeof(ww), "watermark of source '%s'", e->name);
        if (!src->has_event_time)
            err_at(L, wm, "watermark needs event_time: without it there is no "
                   "event time to hold back");
        if (check_map(L, wm, ww, wm_keys) == 0) {
            src->out_of_orderness_ms = get_duration(L, wm, "out_of_orderness", 0, 0,
                                                    DUR_NONNEG, ww);
            src->idle_timeout_ms = get_duration(L, wm, "idle_timeout",
                                                JOB_DURATION_NONE, 0, DUR_POSITIVE, ww);
        }
    }

    int oe = get_enum(L, m, "on_error", on_errors, ON_ERROR_SKIP, 0, what);
    src->on_error = oe < 0 ? ON_ERROR_SKIP : (enum on_error)oe;
    yaml_node_t *dl = map_get(L, m, "dead_letter");
    if (src->on_error == ON_ERROR_DEAD_LETTER && dl == NULL) {
        err_at(L, map_get(L, m, "on_error"), "on_error: dead_letter needs "
               "'dead_letter: <sink>' naming a kafka, file or stdout sink");
    } else if (dl != NULL && src->on_error != ON_ERROR_DEAD_LETTER) {
        err_at(L, map_key_node(L, m, "dead_letter"), "'dead_letter' is set but "
               "on_error is not dead_letter");
    } else if (dl != NULL) {
        const char *name = scalar(L, dl, "'dead_letter'");
        int k = name ? find_sink(L->job, name) : -1;
        if (name != NULL && k < 0)
            err_at(L, dl, "dead_letter: no sink named '%.64s'", name);
        else if (k >= 0 && !sink_takes_raw(L->job, k))
            err_at(L, dl, "dead_letter: sink '%s' is %s; rejected records need a "
                   "kafka, file or stdout sink", name, L->job->sinks[k].type->name);
        else
            src->dead_letter_sink = k;
    }
}

/* ---- operators ----------------------------------------------------------- */

const char *time_char_name(enum time_char t)
{
    return t == TIME_EVENT ? "event" : "processing";
}

/* p is NULL: an allocation from the job's arena failed, and the load
 * fails saying so (a model missing a part would load otherwise). */
static int nomem(struct loader *L, const void *p)
{
    if (p == NULL)
        diags_add(L->d, 0, 0, "out of memory");
    return p == NULL;
}

static int schema_index(const struct job_source *src, const char *name)
{
    for (size_t i = 0; i < src->nfields; i++)
        if (strcmp(src->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* key_by of map m (or, when m has none and dflt is given, dflt's) into
 * *fields and *nkeys (0 when broken). */
static void load_key_by(struct loader *L, int **fields, size_t *nkeys,
                        const struct job_source *src, yaml_node_t *m, yaml_node_t *dflt,
                        const char *what)
{
    yaml_node_t *kb = map_get(L, m, "key_by");
    if (kb == NULL && dflt != NULL)
        kb = map_get(L, dflt, "key_by");
    if (kb == NULL || is_null_scalar(kb)) {
        err_at(L, kb ? kb : m, "%s: missing required key 'key_by' (the field or "
               "list of fields that identify a key, like user_id)", what);
        return;
    }
    load_field_list(L, kb, "key_by", src, 1, fields, nkeys);
}

/* A field or a list of up to 16 fields of src's schema, each once, at node
 * kb of key `key` (key_by, a source's partitioned_by), into *fields (arena)
 * and *nkeys, which stays 0 when the list is broken.  keys: they are key
 * fields, which cannot be doubles. */
static void load_field_list(struct loader *L, yaml_node_t *kb, const char *key,
                            const struct job_source *src, int keys, int **fields,
                            size_t *nkeys)
{
    char label[64];
    yaml_node_t *one[1] = { kb };
    yaml_node_t **items = one;
    size_t n = 1;
    yaml_node_t *tmp[16];
    if (kb->type == YAML_SEQUENCE_NODE) {
        n = (size_t)(kb->data.sequence.items.top - kb->data.sequence.items.start);
        if (n == 0) {
            err_at(L, kb, "%s is an empty list", key);
            return;
        }
        if (n > 16) {
            err_at(L, kb, "%s has %zu fields; at most 16", key, n);
            return;
        }
        for (size_t i = 0; i < n; i++)
            tmp[i] = node_get(L, kb->data.sequence.items.start[i]);
        items = tmp;
    }
    *fields = arena_alloc(L->a, n * sizeof(int));
    if (nomem(L, *fields))
        return;
    snprintf(label, sizeof(label), "a %s field", key);
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL)
            continue;
        const char *f = scalar(L, items[i], label);
        if (f == NULL)
            continue;
        if (src == NULL || src->nfields == 0)
            continue;       /* the source's own error explains it */
        int k = schema_index(src, f);
        if (k < 0) {
            err_at(L, items[i], "%s: unknown field '%.64s' (not in the schema of "
                   "source '%s')", key, f, src->name);
            continue;
        }
        if (keys && src->fields[k].type == VT_DOUBLE) {
            err_at(L, items[i], "%s: field '%s' is double; keys must be string, "
                   "int or bool", key, f);
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < *nkeys; j++)
            dup |= (*fields)[j] == k;
        if (dup) {
            err_at(L, items[i], "%s: field '%s' is listed twice", key, f);
            continue;
        }
        (*fields)[(*nkeys)++] = k;
    }
    if (*nkeys != n)
        *nkeys = 0;         /* a broken key_by: key templates are not checked */
}

/* late_events / to: a sink reference that may not be redis for raw events. */
static int sink_ref(struct loader *L, yaml_node_t *v, const char *key, int raw_events)
{
    char label[100];
    snprintf(label, sizeof(label), "'%s'", key);
    const char *name = scalar(L, v, label);
    if (name == NULL)
        return -1;
    int k = find_sink(L->job, name);
    if (k < 0) {
        err_at(L, v, "%s: no sink named '%.64s'", key, name);
        return -1;
    }
    if (raw_events && !sink_takes_raw(L->job, k)) {
        err_at(L, v, "%s: sink '%s' is %s; late events are raw records and need "
               "a kafka, file or stdout sink", key, name, L->job->sinks[k].type->name);
        return -1;
    }
    return k;
}

size_t op_inputs(const struct job_operator *op, struct op_input in[OP_INPUTS_MAX])
{
    if (op->type->inputs != NULL)
        return op->type->inputs(op, in);
    in[0] = (struct op_input){ op->source, op->key_fields, op->nkeys, NULL };
    return 1;
}

int64_t op_conf_int(const struct job_operator *op, const char *key)
{
    const struct cm_entry *e = cm_entry_find(op->type->map, key);
    const char *conf = op->type->conf_size ? (const char *)op->conf : (const char *)op;
    int64_t x = 0;
    if (e != NULL && conf != NULL && (e->type == CM_INT || e->type == CM_DURATION))
        memcpy(&x, conf + e->offset, sizeof(x));
    return x;
}

/* The operator keys that hold a type's settings, each once, in table
 * order ("window", "reduce", ...).  Returns how many. */
static size_t op_blocks(const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; op_types[i] != NULL; i++) {
        size_t k = 0;
        while (k < n && strcmp(out[k], op_types[i]->block) != 0)
            k++;
        if (k == n && n < max)
            out[n++] = op_types[i]->block;
    }
    return n;
}

/* "a detect or a join": the types whose results are fields. */
static void fields_types(char *buf, size_t size)
{
    const char *names[16];
    size_t n = 0, len = 0;
    for (size_t i = 0; op_types[i] != NULL && n < 16; i++)
        if (op_types[i]->sides != NULL)
            names[n++] = op_types[i]->name;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%sa %s",
                                i == 0 ? "" : i + 1 < n ? ", " : " or ", names[i]);
}

/* The type of op's block `block` (node bn): the block's only type, or for
 * a block several types share, the one its `type` names, or without
 * `type`, the one whose marker key it holds.  NULL after an error. */
static const struct op_type *block_type(struct loader *L, const struct job_operator *op,
                                        const char *block, yaml_node_t *bn)
{
    const struct op_type *only = NULL;
    const char *names[32];
    size_t n = 0, ntyped = 0;
    char what[200];
    for (size_t i = 0; op_types[i] != NULL; i++)
        if (strcmp(op_types[i]->block, block) == 0) {
            only = op_types[i];
            n++;
            if (op_types[i]->marker == NULL && ntyped < 31)
                names[ntyped++] = op_types[i]->name;
        }
    names[ntyped] = NULL;
    if (n == 1)
        return only;
    snprintf(what, sizeof(what), "%s of operator '%s'", block, op->name);
    if (bn->type != YAML_MAPPING_NODE) {
        err_at(L, bn, "%s must be a mapping, not %s", what, node_kind(bn));
        return NULL;
    }
    for (size_t i = 0; op_types[i] != NULL && map_get(L, bn, "type") == NULL; i++)
        if (op_types[i]->marker != NULL && strcmp(op_types[i]->block, block) == 0 &&
            map_get(L, bn, op_types[i]->marker) != NULL)
            return op_types[i];
    int t = get_enum(L, bn, "type", names, -1, 1, what);
    if (t < 0) {
        check_map(L, bn, what, NULL);
        return NULL;
    }
    for (size_t i = 0; op_types[i] != NULL; i++)
        if (strcmp(op_types[i]->name, names[t]) == 0 && strcmp(op_types[i]->block, block) == 0)
            return op_types[i];
    return NULL;
}

/* aggregates: name -> "fn(arg) where ..."; or, for a type whose results
 * are fields, name -> an expression over its two records */
static void load_aggregates(struct loader *L, struct job_operator *op,
                            const struct job_source *src, struct cm_ctx *opc, const char *what)
{
    yaml_node_t *m = opc->map;
    const struct op_type *t = op->type;
    int exprs = t->sides != NULL;
    const char *key = exprs ? "fields" : "aggregates", *noun = exprs ? "field" : "aggregate";
    char label[200];
    yaml_node_t *an = map_get(L, m, key);
    if (map_get(L, m, exprs ? "aggregates" : "fields") != NULL) {
        char list[200];
        fields_types(list, sizeof(list));
        err_at(L, map_key_node(L, m, exprs ? "aggregates" : "fields"), exprs
               ? "%s: a %s has 'fields' (expressions), not 'aggregates'"
               : "%s: 'fields' belong to %s; this operator has 'aggregates'", what,
               exprs ? t->name : list);
    }
    if (an == NULL && t->default_fields != NULL) {
        t->default_fields(opc, op);
        return;
    }
    if (an == NULL) {
        err_at(L, m, "%s: missing required key '%s'", what, key);
        return;
    }
    snprintf(label, sizeof(label), "%s of operator '%s'", key, op->name);
    if (check_map(L, an, label, NULL) < 0)
        return;
    size_t cap = (size_t)(an->data.mapping.pairs.top - an->data.mapping.pairs.start);
    if (cap == 0) {
        err_at(L, an, "%s is empty: define at least one", label);
        return;
    }
    op->aggs = arena_alloc(L->a, cap * sizeof(*op->aggs));
    if (nomem(L, op->aggs))
        return;
    struct op_input in[OP_INPUTS_MAX];
    int resolved = src != NULL;
    for (size_t i = 0, n = op_inputs(op, in); i < n; i++)
        resolved &= in[i].source >= 0;
    for (yaml_node_pair_t *p = an->data.mapping.pairs.start;
         p < an->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_get(L, p->key), *v = node_get(L, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
            continue;
        const char *name = (const char *)k->data.scalar.value;
        int bad = 0;
        if (!valid_ident(name)) {
            err_at(L, k, "bad %s name '%.64s': use letters, digits and '_', "
                   "not starting with a digit", noun, name);
            bad = 1;
        } else if (strcmp(name, "window_start") == 0 || strcmp(name, "window_end") == 0) {
            err_at(L, k, "'%s' is reserved for the window bound", name);
            bad = 1;
        } else if (src != NULL) {
            for (size_t i = 0; i < op->nkeys; i++)
                if (strcmp(src->fields[op->key_fields[i]].name, name) == 0) {
                    err_at(L, k, "%s '%s' has the name of a key field; sinks "
                           "write both into one record", noun, name);
                    bad = 1;
                }
        }
        for (size_t i = 0; i < op->naggs; i++)
            if (strcmp(op->aggs[i].name, name) == 0)
                bad = 1;    /* duplicate: reported by check_map */
        char al[160];
        snprintf(al, sizeof(al), "%s '%.64s'", noun, name);
        const char *text = scalar(L, v, al);
        if (text == NULL || bad || !resolved)
            continue;
        struct job_aggregate *agg = &op->aggs[op->naggs];
        struct expr_error ee;
        agg->text = arena_strdup(L->a, text);
        if (nomem(L, agg->text))
            continue;
        memset(&agg->spec, 0, sizeof(agg->spec));
        agg->value = NULL;
        agg->spec.arg = -1;
        int rc;
        if (exprs) {
            struct expr_sides sides;
            t->sides(L->job, op, &sides);
            rc = expr_parse_sides(L->a, agg->text, &sides, &agg->value, &ee);
        } else {
            rc = agg_parse(L->a, agg->text, src->fields, src->nfields, &agg->spec, &ee);
        }
        if (rc < 0) {
            char msg[400];
            snprintf(msg, sizeof(msg), "%s '%s': %s", noun, name, ee.msg);
            err_in_scalar(L, v, ee.off, msg);
            continue;
        }
        agg->name = arena_strdup(L->a, name);
        agg->pos = node_pos(L, k);
        if (!nomem(L, agg->name))
            op->naggs++;
    }
}

static void load_to(struct loader *L, struct job_operator *op, yaml_node_t *m,
                    const char *what)
{
    yaml_node_t *to = map_get(L, m, "to");
    if (to == NULL || is_null_scalar(to)) {
        err_at(L, to ? to : m, "%s: missing required key 'to' (the sink or list of "
               "sinks its results go to)", what);
        return;
    }
    yaml_node_t *one[1] = { to };
    yaml_node_t **items = one;
    size_t n = 1;
    if (to->type == YAML_SEQUENCE_NODE) {
        n = (size_t)(to->data.sequence.items.top - to->data.sequence.items.start);
        if (n == 0) {
            err_at(L, to, "to: is an empty list");
            return;
        }
        if (n > MAP_MAX) {
            err_at(L, to, "to: has %zu entries; at most %d", n, MAP_MAX);
            return;
        }
        items = arena_alloc(L->a, n * sizeof(*items));
        if (nomem(L, items))
            return;
        for (size_t i = 0; i < n; i++)
            items[i] = node_get(L, to->data.sequence.items.start[i]);
    }
    op->sinks = arena_alloc(L->a, n * sizeof(int));
    if (nomem(L, op->sinks))
        return;
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL)
            continue;
        int k = sink_ref(L, items[i], "to", 0);
        if (k < 0)
            continue;
        int dup = 0;
        for (size_t j = 0; j < op->nsinks; j++)
            dup |= op->sinks[j] == k;
        if (dup) {
            err_at(L, items[i], "to: sink '%s' is listed twice", L->job->sinks[k].name);
            continue;
        }
        op->sinks[op->nsinks++] = k;
    }
}

/* An operator: `from` and `key_by` (or a type's own inputs), one block
 * with its type's settings, the aggregates or fields, and `to`. */
static void load_operator(struct loader *L, struct job_operator *op, const struct entry *e)
{
    const char *blocks[16], *keys[16 + 6];
    char what[200], list[400];
    yaml_node_t *m = e->value;
    size_t nblocks = op_blocks(blocks, 16), nk = 0, len = 0;

    keys[nk++] = "from";
    keys[nk++] = "key_by";
    for (size_t i = 0; i < nblocks; i++)
        keys[nk++] = blocks[i];
    keys[nk++] = "aggregates";
    keys[nk++] = "fields";
    keys[nk++] = "to";
    keys[nk] = NULL;
    op->name = e->name;
    op->pos = node_pos(L, e->key);
    op->type = op_types[0];
    op->source = -1;
    op->window.late_sink = -1;
    snprintf(what, sizeof(what), "operator '%s'", e->name);
    if (check_map(L, m, what, keys) < 0)
        return;
    /* one block; when there are several, the error is at the last in
     * table order */
    const char *block = NULL;
    int kinds = 0;
    for (size_t i = 0; i < nblocks; i++) {
        if (map_get(L, m, blocks[i]) != NULL) {
            kinds++;
            block = blocks[i];
        }
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s'%s'",
                                i == 0 ? "" : i + 1 < nblocks ? ", " : " and ", blocks[i]);
    }
    if (kinds > 1) {
        err_at(L, map_key_node(L, m, block), "%s: has more than one of %s; an operator is "
               "one of them", what, list);
        return;
    }
    yaml_node_t *bn = block ? map_get(L, m, block) : NULL;
    const struct op_type *t = block ? block_type(L, op, block, bn) : NULL;
    struct cm_ctx opc, bc;
    cm_ctx_init(&opc, L, m, what);
    const struct job_source *src = NULL;
    if (t == NULL || t->ninputs == 1) {
        yaml_node_t *from = map_get(L, m, "from");
        if (from == NULL)
            err_at(L, m, "%s: missing required key 'from' (the source it reads)", what);
        else if ((op->source = cm_source_ref(&opc, (struct cm_node *)from)) >= 0)
            src = &L->job->sources[op->source];
        load_key_by(L, &op->key_fields, &op->nkeys, src, m, NULL, what);
    }
    if (block == NULL)
        err_at(L, m, "%s: missing required key 'window' (or 'reduce' for running "
               "aggregates without one)", what);
    if (t != NULL) {
        char label[240];
        void *conf = op;
        snprintf(label, sizeof(label), "%s of operator '%s'", t->label, op->name);
        op->type = t;
        if (t->flags & OPT_PROCESSING)
            op->window.time = TIME_PROCESSING;
        if (t->conf_size > 0) {
            if (nomem(L, op->conf = arena_alloc(L->a, t->conf_size)))
                return;             /* zeroed */
            conf = op->conf;
        }
        cm_ctx_init(&bc, L, bn, label);
        if (t->parse != NULL)
            t->parse(&bc, &opc, op, conf);
        else
            cm_read(&bc, t->map, conf);
        if (t->ninputs > 1 && op->source >= 0)
            src = &L->job->sources[op->source];
    }
    load_aggregates(L, op, src, &opc, what);
    load_to(L, op, m, what);
}

/* ---- top level ----------------------------------------------------------- */

static void state_validate(struct cm_ctx *c, void *conf)
{
    struct job_state *st = conf;
    if (st->dir[0] == '\0') {
        cm_err(c, cm_get(c, "dir"), "state: 'dir' is empty");
        st->dir = "/var/lib/sluice";
    }
    if (st->shared == NULL)         /* `shared:` with no value: none, like "" */
        st->shared = "";
    if (st->shared[0] != '\0') {
        struct store_url u;
        char why[256];
        if (store_url_parse(st->shared, &u, why, sizeof(why)) < 0)
            cm_err(c, cm_get(c, "shared"), "state: 'shared': %s", why);
    }
}

static const struct cm_entry state_entries[] = {
    { .key = "dir", .type = CM_STR, .offset = offsetof(struct job_state, dir),
      .sdflt = "/var/lib/sluice",
      .desc = "where checkpoints and savepoints are written" },
    { .key = "checkpoint_interval", .type = CM_DURATION, .flags = CM_POSITIVE,
      .offset = offsetof(struct job_state, checkpoint_interval_ms), .dflt = 30000,
      .desc = "how often a checkpoint is taken" },
    { .key = "checkpoints_retained", .type = CM_INT, .lo = 1, .hi = 1000, .dflt = 3,
      .offset = offsetof(struct job_state, checkpoints_retained),
      .desc = "how many completed checkpoints are kept" },
    { .key = "shared", .type = CM_STR, .offset = offsetof(struct job_state, shared),
      .sdflt = "",
      .desc = "the shared store of shard snapshots for several instances: file:///dir or "
              "s3://bucket/prefix; empty: none" },
    { .key = NULL },
};

const struct cm_map job_state_map = { state_entries, state_validate };

static void load_state(struct loader *L, yaml_node_t *root)
{
    struct job_state *st = &L->job->state;
    yaml_node_t *sn = map_get(L, root, "state");
    struct cm_ctx c;

    st->dir = "/var/lib/sluice";
    st->checkpoint_interval_ms = 30000;
    st->checkpoints_retained = 3;
    st->shared = "";
    if (sn == NULL)
        return;
    cm_ctx_init(&c, L, sn, "state");
    cm_read(&c, &job_state_map, st);
}

static void load_http(struct loader *L, yaml_node_t *root)
{
    yaml_node_t *h = map_get(L, root, "http");
    L->job->http = NULL;
    if (h == NULL) {
        L->job->http = "127.0.0.1:9464";
        return;
    }
    const char *s = scalar(L, h, "'http'");
    if (s == NULL || strcmp(s, "none") == 0)
        return;
    const char *colon = strrchr(s, ':');
    long port = -1;
    if (colon != NULL && colon > s && colon[1] != '\0') {
        char *end;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || colon[1] < '0' || colon[1] > '9' || errno != 0)
            port = -1;
    }
    if (port < 0 || port > 65535 || (s[0] == '[' && colon[-1] != ']')) {
        err_at(L, h, "http: expected HOST:PORT (like 127.0.0.1:9464) or none, "
               "got \"%.60s\"", s);
        return;
    }
    L->job->http = arena_strdup(L->a, s);
}

static void check_names_unique(struct loader *L, struct entry *src, size_t nsrc,
                               struct entry *ops, size_t nops, struct entry *snk,
                               size_t nsnk)
{
    struct { struct entry *e; size_t n; const char *what; } sec[3] = {
        { src, nsrc, "source" }, { ops, nops, "operator" }, { snk, nsnk, "sink" } };
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++)
            for (size_t i = 0; i < sec[b].n; i++)
                for (size_t j = 0; j < sec[a].n; j++)
                    if (strcmp(sec[b].e[i].name, sec[a].e[j].name) == 0) {
                        struct job_pos p = node_pos(L, sec[a].e[j].key);
                        err_at(L, sec[b].e[i].key, "name '%s' is already used by a %s "
                               "(line %d); names must be unique across sources, "
                               "operators and sinks", sec[b].e[i].name, sec[a].what,
                               p.line);
                        break;
                    }
}

/* Every operator that writes to a sink must provide the template's names. */
static void check_templates(struct loader *L, struct entry *snk)
{
    struct job *job = L->job;
    for (size_t o = 0; o < job->noperators; o++) {
        const struct job_operator *op = &job->operators[o];
        if (op->source < 0 || op->nkeys == 0)
            continue;
        const struct job_source *src = &job->sources[op->source];
        const char *keys[16];
        for (size_t i = 0; i < op->nkeys; i++)
            keys[i] = src->fields[op->key_fields[i]].name;
        for (size_t i = 0; i < op->nsinks; i++) {
            const struct job_sink *s = &job->sinks[op->sinks[i]];
            const struct cm_template *key = job_sink_key(s);
            if (key == NULL)
                continue;
            const char *kname = cm_entry_of_type(s->type->map, CM_TEMPLATE)->key;
            struct tpl_error te;
            if (template_check(&key->t, keys, op->nkeys, op_has_bounds(op), &te) < 0) {
                yaml_node_t *kn = map_get(L, snk[op->sinks[i]].value, kname);
                char msg[400];
                snprintf(msg, sizeof(msg), "%s of sink '%s' (fed by operator '%s'): %s",
                         kname, s->name, op->name, te.msg);
                err_in_scalar(L, kn, te.off, msg);
            }
        }
    }
}

/* ---- repartitioning (job.h, above enum src_role) ---------------------------- */

/*
 * Once every operator is read, the operators that cannot read their input
 * directly are pointed at a repartition source.  An input reads its source
 * directly when the source did not say how its topic is partitioned (the
 * behaviour before partitioned_by), or when every field it is partitioned
 * by is a key field of the input: the records of one key are then in one
 * partition.  An operator with several inputs (a join) has all of them
 * repartitioned when any needs it, so they are co-partitioned by the same
 * partitioner.  Added sources go after the file's, so the file's keep
 * their indexes; they copy their input's struct (schema included), so the
 * schema indexes of operators (keys, aggregates, filters) stay valid.
 */

#define RP_TOPIC_MAX 249            /* Kafka's longest topic name */

static int reads_directly(const struct job_source *s, const struct op_input *in)
{
    if (!s->part_declared)
        return 1;
    if (s->part_none)
        return 0;
    for (size_t i = 0; i < s->npart_fields; i++) {
        size_t k = 0;
        while (k < in->nkeys && in->key_fields[k] != s->part_fields[i])
            k++;
        if (k == in->nkeys)
            return 0;
    }
    return 1;
}

/* Where op keeps the source of its input k: a one-input operator in
 * `source`, a join in its sides (struct job_join).  rp_point() checks the
 * move through op_inputs(), so a type keeping its inputs elsewhere is
 * reported rather than read wrongly. */
static int *input_slot(struct job_operator *op, size_t k)
{
    return op->type->ninputs > 1 ? &op->join.side[k].source : &op->source;
}

/* "user_id", "country.user_id": a key's fields joined by '.'. */
static char *key_text(struct loader *L, const struct job_source *s, const int *keys,
                      size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(s->fields[keys[i]].name) + 1;
    char *t = arena_alloc(L->a, len);
    if (t == NULL)
        return NULL;
    for (size_t i = 0, at = 0; i < n; i++)
        at += (size_t)snprintf(t + at, len - at, "%s%s", i ? "." : "", s->fields[keys[i]].name);
    return t;
}

/* The repartition topic of input `in` and key text kt:
 * <job>-<input>-<key>-repartition, every character Kafka does not allow
 * in a topic name replaced by '_' (the loader's names never hold one
 * today; the rule keeps the topic legal if they ever do). */
static char *rp_topic(struct loader *L, const char *in, const char *kt)
{
    char *t = arena_printf(L->a, "%s-%s-%s-repartition", L->job->name, in, kt);
    for (char *p = t; p != NULL && *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            *p = '_';
    return t;
}

/* An added source: a copy of input s (index `in`) in all[*n]. */
static struct job_source *rp_add(struct job_source *all, size_t *n, int in,
                                 enum src_role role)
{
    struct job_source *a = &all[(*n)++];
    *a = all[in];
    a->role = role;
    a->origin = in;
    a->unread = 0;
    a->targets = NULL;
    a->ntargets = 0;
    a->stage1 = -1;
    return a;
}

/* The repartition source of input `in` keyed by keys[0..nk) (added with
 * the input's stage 1 when missing): its index, or after reporting it,
 * -EINVAL (a name it cannot have) or -ENOMEM. */
static SL_MUST_USE int rp_source(struct loader *L, struct job_source *all, size_t *n, size_t nin,
                     const struct job_operator *op, int in, const int *keys, size_t nk)
{
    const struct job_source *s = &all[in];
    int st = -1;
    for (size_t i = nin; i < *n; i++) {
        if (all[i].origin != in)
            continue;
        if (all[i].role == SRC_STAGE1)
            st = (int)i;
        else if (all[i].nrp_keys == nk && memcmp(all[i].rp_keys, keys, nk * sizeof(int)) == 0)
            return (int)i;
    }
    const char *kt = key_text(L, s, keys, nk);
    if (nomem(L, kt))
        return -ENOMEM;
    if (strcmp(kt, "stage1") == 0) {
        diags_add(L->d, op->pos.line, op->pos.col, "operator '%s': a key of the one field "
                  "'stage1' would name its repartition source '%s~stage1', the name of the "
                  "repartition stage of source '%s'; key by another field", op->name,
                  s->name, s->name);
        return -EINVAL;
    }
    const char *topic = rp_topic(L, s->name, kt);
    if (nomem(L, topic))
        return -ENOMEM;
    if (strlen(topic) > RP_TOPIC_MAX) {
        diags_add(L->d, op->pos.line, op->pos.col, "operator '%s': its repartition topic "
                  "'%.40s...' would be %zu characters long; Kafka allows %d: shorten the "
                  "job's, the source's or the key fields' names", op->name, topic,
                  strlen(topic), RP_TOPIC_MAX);
        return -EINVAL;
    }
    if (st < 0) {
        struct job_source *a = rp_add(all, n, in, SRC_STAGE1);
        a->name = arena_printf(L->a, "%s~stage1", s->name);
        if (nomem(L, a->name))
            return -ENOMEM;
        st = (int)(a - all);
    }
    struct job_source *r = rp_add(all, n, in, SRC_REPARTITION);
    r->name = arena_printf(L->a, "%s~%s", s->name, kt);
    r->conf = s->type->repartition_conf(L->a, s->conf, topic);
    r->rp_topic = topic;
    r->rp_keys = arena_alloc(L->a, nk * sizeof(int));
    r->stage1 = st;
    if (nomem(L, r->name) || nomem(L, r->conf) || nomem(L, r->rp_keys))
        return -ENOMEM;
    memcpy(r->rp_keys, keys, nk * sizeof(int));
    r->nrp_keys = nk;
    return (int)(r - all);
}

/* Whether op needs repartitioning: 1 or 0, or -EINVAL after reporting a
 * join one of whose sides needs it while the other's source cannot be. */
static SL_MUST_USE int rp_needed(struct loader *L, const struct job_source *all,
                     const struct job_operator *op)
{
    struct op_input in[OP_INPUTS_MAX];
    size_t n = op_inputs(op, in);
    size_t need = n;
    for (size_t k = 0; k < n && need == n; k++)
        if (!reads_directly(&all[in[k].source], &in[k]))
            need = k;
    if (need == n)
        return 0;
    for (size_t k = 0; k < n; k++) {
        const struct job_source *s = &all[in[k].source];
        if (s->type->repartition_conf == NULL) {
            diags_add(L->d, op->pos.line, op->pos.col, "operator '%s': it reads source "
                      "'%s' through a repartition topic (its partitioned_by is not the "
                      "key), so all its inputs must be, but %s source '%s' cannot be "
                      "repartitioned", op->name, all[in[need].source].name, s->type->name,
                      s->name);
            return -EINVAL;
        }
    }
    return 1;
}

/* Points op's inputs whose source is input `in` at their repartition
 * sources.  Returns 0, or a negative errno after reporting it. */
static SL_MUST_USE int rp_point(struct loader *L, struct job_source *all, size_t *n, size_t nin,
                    struct job_operator *op, int in)
{
    struct op_input inputs[OP_INPUTS_MAX];
    size_t ni = op_inputs(op, inputs);
    for (size_t k = 0; k < ni; k++) {
        if (inputs[k].source != in)
            continue;
        int r = rp_source(L, all, n, nin, op, in, inputs[k].key_fields, inputs[k].nkeys);
        if (r < 0)
            return r;
        *input_slot(op, k) = r;
    }
    op->source = *input_slot(op, 0);    /* a join's is its left's */
    ni = op_inputs(op, inputs);
    for (size_t k = 0; k < ni; k++)
        if (inputs[k].source == in) {
            diags_add(L->d, op->pos.line, op->pos.col, "operator '%s': a %s operator "
                      "cannot read its input through a repartition topic", op->name,
                      op->type->name);
            return -EINVAL;
        }
    return 0;
}

/* The stage 1 sources' targets, and which inputs no operator reads.
 * Returns 0, or -ENOMEM (reported). */
static SL_MUST_USE int rp_link(struct loader *L, struct job_source *all, size_t n, size_t nin)
{
    for (size_t i = nin; i < n; i++) {
        struct job_source *st = &all[i];
        if (st->role != SRC_STAGE1)
            continue;
        st->targets = arena_alloc(L->a, n * sizeof(int));
        if (nomem(L, st->targets))
            return -ENOMEM;
        for (size_t r = nin; r < n; r++)
            if (all[r].role == SRC_REPARTITION && all[r].stage1 == (int)i)
                st->targets[st->ntargets++] = (int)r;
        all[st->origin].unread = 1;
    }
    for (size_t o = 0; o < L->job->noperators; o++) {
        struct op_input in[OP_INPUTS_MAX];
        size_t ni = op_inputs(&L->job->operators[o], in);
        for (size_t k = 0; k < ni; k++)
            if ((size_t)in[k].source < nin)
                all[in[k].source].unread = 0;
    }
    return 0;
}

/* Adds the sources of repartitioning and points operators at them; run on
 * a job that loaded without errors, so every reference is resolved. */
static void load_repartitions(struct loader *L)
{
    struct job *job = L->job;
    size_t nin = job->nsources, n = nin;
    int *need = arena_alloc(L->a, (job->noperators ? job->noperators : 1) * sizeof(int));
    int any = 0, failed = 0;

    for (size_t i = 0; i < nin; i++) {
        job->sources[i].origin = (int)i;
        job->sources[i].stage1 = -1;
    }
    if (nomem(L, need))
        return;
    for (size_t o = 0; o < job->noperators; o++) {
        need[o] = rp_needed(L, job->sources, &job->operators[o]);
        any |= need[o] > 0;
        failed |= need[o] < 0;
    }
    if (!any)
        return;
    /* at most one stage 1 per input and one repartition source per input
     * of an operator */
    struct job_source *all = arena_alloc(L->a, (2 * nin + OP_INPUTS_MAX * job->noperators) *
                                               sizeof(*all));
    if (nomem(L, all))
        return;
    memcpy(all, job->sources, nin * sizeof(*all));
    /* input by input, so each input's added sources are together; on an
     * error, on to the next operator, so one run reports them all */
    for (size_t in = 0; in < nin; in++)
        for (size_t o = 0; o < job->noperators; o++)
            if (need[o] > 0 && rp_point(L, all, &n, nin, &job->operators[o], (int)in) < 0)
                failed = 1;
    if (failed || rp_link(L, all, n, nin) < 0)
        return;
    job->sources = all;
    job->nsources = n;
}

static void load_root(struct loader *L, yaml_node_t *root)
{
    static const char *const keys[] = { "job", "http", "state", "sources",
                                        "operators", "sinks", NULL };
    struct job *job = L->job;

    if (check_map(L, root, "the job file", keys) < 0)
        return;
    job->name = get_str(L, root, "job", 1, "the job file");
    if (job->name != NULL && !valid_name(job->name)) {
        err_at(L, map_get(L, root, "job"), "bad job name '%.64s': use letters, digits, "
               "'_', '-' and '.', at most %d characters", job->name, NAME_MAX_LEN);
    }
    load_http(L, root);
    load_state(L, root);

    struct entry *src = NULL, *ops = NULL, *snk = NULL;
    size_t nsrc = 0, nops = 0, nsnk = 0;
    static const char *const sections[] = { "sources", "operators", "sinks" };
    yaml_node_t *sec[3];
    for (int i = 0; i < 3; i++) {
        sec[i] = map_get(L, root, sections[i]);
        if (sec[i] == NULL)
            err_at(L, root, "the job file: missing required key '%s'", sections[i]);
    }
    nsnk = section_entries(L, sec[2], "sinks", &snk);
    nsrc = section_entries(L, sec[0], "sources", &src);
    nops = section_entries(L, sec[1], "operators", &ops);

    job->sinks = arena_alloc(L->a, (nsnk ? nsnk : 1) * sizeof(*job->sinks));
    job->sources = arena_alloc(L->a, (nsrc ? nsrc : 1) * sizeof(*job->sources));
    job->operators = arena_alloc(L->a, (nops ? nops : 1) * sizeof(*job->operators));
    if (job->sinks == NULL || job->sources == NULL || job->operators == NULL) {
        diags_add(L->d, 0, 0, "out of memory");
        return;
    }
    /* names first, so references resolve in any order */
    for (size_t i = 0; i < nsnk; i++)
        job->sinks[i].name = snk[i].name;
    job->nsinks = nsnk;
    for (size_t i = 0; i < nsrc; i++)
        job->sources[i].name = src[i].name;
    job->nsources = nsrc;
    for (size_t i = 0; i < nsnk; i++)
        load_sink(L, &job->sinks[i], &snk[i]);
    for (size_t i = 0; i < nsrc; i++)
        load_source(L, &job->sources[i], &src[i]);
    for (size_t i = 0; i < nops; i++)
        load_operator(L, &job->operators[i], &ops[i]);
    job->noperators = nops;
    check_names_unique(L, src, nsrc, ops, nops, snk, nsnk);
    check_templates(L, snk);
}

static const char *env_getenv(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

static void yaml_error(struct loader *L, yaml_parser_t *p)
{
    int line, col;
    const yaml_mark_t *m = &p->problem_mark;
    const char *problem = p->problem ? p->problem : "malformed YAML";

    if (p->error == YAML_MEMORY_ERROR) {
        diags_add(L->d, 0, 0, "out of memory while parsing YAML");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* reader errors carry a byte offset into the substituted text */
        envsubst_out_pos(&L->sub, p->problem_offset, &line, &col);
        diags_add(L->d, line, col, "invalid text: %s", problem);
        return;
    }
    envsubst_pos(&L->sub, m->line, m->column, &line, &col);
    if (p->context != NULL) {
        int cl, cc;
        envsubst_pos(&L->sub, p->context_mark.line, p->context_mark.column, &cl, &cc);
        diags_add(L->d, line, col, "YAML syntax error: %s (%s at line %d, column %d)",
                  problem, p->context, cl, cc);
    } else {
        diags_add(L->d, line, col, "YAML syntax error: %s", problem);
    }
}

/*
 * libyaml's scanner re-walks its stack of possible simple keys for every
 * token, one entry per open flow collection, so "[[[[..." costs time
 * quadratic in the depth (80,000 brackets take seconds; 4 MiB of them,
 * hours).  No job file nests deeper than a handful of levels, so a first
 * pass over the events stops at YAML_MAX_DEPTH, having scanned only that
 * far.  Syntax errors are left to the loading pass, which reports them.
 * Returns 0, or -EINVAL with the error recorded.
 */
#define YAML_MAX_DEPTH 64

static int check_nesting(struct loader *L)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, rc = 0, done = 0;

    if (!yaml_parser_initialize(&p))
        return 0;           /* the loading pass reports the memory error */
    yaml_parser_set_input_string(&p, (const unsigned char *)L->sub.text, L->sub.len);
    while (!done && yaml_parser_parse(&p, &ev)) {
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > YAML_MAX_DEPTH) {
                int line, col;
                envsubst_pos(&L->sub, ev.start_mark.line, ev.start_mark.column,
                             &line, &col);
                diags_add(L->d, line, col, "the job file nests more than %d levels deep",
                          YAML_MAX_DEPTH);
                rc = -EINVAL;
                done = 1;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

int job_load_buffer(const char *name, const char *text, size_t len,
                    const struct job_load_opts *opts, struct job **out,
                    struct diags *d)
{
    struct loader L;
    yaml_parser_t parser;
    int rc = -EINVAL, have_doc = 0, have_parser = 0;
    size_t before = diags_count(d);

    *out = NULL;
    memset(&L, 0, sizeof(L));
    L.d = d;
    L.job = calloc(1, sizeof(*L.job));
    if (L.job == NULL) {
        diags_add(d, 0, 0, "out of memory");
        return -ENOMEM;
    }
    L.a = &L.job->arena;
    L.job->file = arena_strdup(L.a, name);
    if (len > JOB_FILE_MAX) {
        diags_add(d, 0, 0, "job file is %zu bytes; the limit is %u", len, JOB_FILE_MAX);
        goto done;
    }
    if (envsubst_run(&L.sub, text, len, opts && opts->env ? opts->env : env_getenv,
                     opts ? opts->env_ud : NULL, d) < 0) {
        diags_add(d, 0, 0, "out of memory");
        rc = -ENOMEM;
        goto done;
    }
    if (check_nesting(&L) < 0)
        goto done;
    if (!yaml_parser_initialize(&parser)) {
        diags_add(d, 0, 0, "out of memory");
        rc = -ENOMEM;
        goto done;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)L.sub.text, L.sub.len);
    if (!yaml_parser_load(&parser, &L.doc)) {
        yaml_error(&L, &parser);
        goto done;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&L.doc);
    if (root == NULL) {
        diags_add(d, 1, 1, "the job file is empty");
        goto done;
    }
    load_root(&L, root);
    if (diags_count(d) == before)
        load_repartitions(&L);
    /* a second document is a mistake worth naming */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        yaml_node_t *r2 = yaml_document_get_root_node(&extra);
        if (r2 != NULL) {
            int line, col;
            envsubst_pos(&L.sub, r2->start_mark.line, r2->start_mark.column, &line, &col);
            diags_add(d, line, col, "the job file holds more than one YAML document; "
                      "put one job in a file");
        }
        yaml_document_delete(&extra);
    } else {
        yaml_error(&L, &parser);
    }
    if (diags_count(d) == before)
        rc = 0;
done:
    if (have_doc)
        yaml_document_delete(&L.doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    envsubst_free(&L.sub);
    if (rc == 0) {
        *out = L.job;
    } else {
        job_free(L.job);
    }
    return rc;
}

int job_load(const char *path, const struct job_load_opts *opts, struct job **out,
             struct diags *d)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    if (f == NULL) {
        diags_add(d, 0, 0, "cannot open: %s", strerror(errno));
        return -errno;
    }
    for (;;) {
        if (cap - len < 65536) {
            if (cap > JOB_FILE_MAX) {
                diags_add(d, 0, 0, "job file is larger than %u bytes", JOB_FILE_MAX);
                rc = -EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                diags_add(d, 0, 0, "out of memory");
                rc = -ENOMEM;
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        diags_add(d, 0, 0, "read error: %s", strerror(errno));
        rc = -EIO;
        goto fail;
    }
    fclose(f);
    buf[len] = '\0';
    rc = job_load_buffer(path, buf, len, opts, out, d);
    free(buf);
    return rc;
fail:
    fclose(f);
    free(buf);
    return rc;
}

void job_free(struct job *job)
{
    if (job == NULL)
        return;
    arena_free(&job->arena);
    free(job);
}

