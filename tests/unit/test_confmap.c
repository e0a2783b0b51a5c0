/*
 * test_confmap.c - the configuration reference against the config maps.
 *
 * docs/configuration.md documents each block's keys in a table under the
 * block's heading; the loader accepts exactly the keys of the block's map.
 * For every (section, map) pair below, and for every connector type of the
 * registry (under "### `type: NAME`" of its kind's section), the keys in
 * the first column of the section's first table must be exactly the map's:
 * a key documented but not accepted, or accepted but not documented, fails
 * with its name.  Keys every source or sink has are documented once, under
 * "Common keys".  Run from the repository root, like the other suites.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/job.h"
#include "suites.h"

#define DOC "docs/configuration.md"
#define DOC_KEYS_MAX 64

/* A section: its "## " heading and, inside it, its "### " heading (or
 * NULL for the "## " section itself). */
struct doc_map {
    const char *h2, *h3;
    const struct cm_map *map;
};

/* One line per map that is neither a connector type's nor an operator
 * type's (those come from their tables). */
static const struct doc_map doc_maps[] = {
    { "## `state`", NULL, &job_state_map },
    { "## `sources`", "### Common keys", &job_source_map },
    { "## `sources`", "### `repartition`", &job_repartition_map },
    { "## `sinks`", "### Common keys", &job_sink_map },
};

static char *doc;

static void doc_load(void)
{
    FILE *f = fopen(DOC, "r");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", DOC);
    size_t cap = 1 << 20;
    doc = malloc(cap + 1);
    ck_assert_ptr_nonnull(doc);
    size_t n = fread(doc, 1, cap, f);
    fclose(f);
    ck_assert_uint_lt(n, cap);
    doc[n] = '\0';
}

static void doc_free(void)
{
    free(doc);
    doc = NULL;
}

/* Steps over the line at p: its length in *len, the next line's start
 * returned.  *fenced says whether the line is inside (or opens or closes)
 * a fenced code block, where a YAML comment is not a heading. */
static const char *line_step(const char *p, size_t *len, int *fenced)
{
    const char *eol = strchr(p, '\n');
    *len = eol ? (size_t)(eol - p) : strlen(p);
    if (strncmp(p, "```", 3) == 0)
        *fenced = !*fenced;
    return eol ? eol + 1 : p + *len;
}

/* The line after the one equal to heading, searched from p up to (not
 * including) a line starting with stop; NULL when absent. */
static const char *find_heading(const char *p, const char *heading, const char *stop)
{
    size_t hl = strlen(heading), len;
    int fenced = 0;
    while (*p != '\0') {
        int was = fenced;
        const char *next = line_step(p, &len, &fenced);
        if (!was && !fenced && len == hl && strncmp(p, heading, hl) == 0)
            return next;
        if (!was && !fenced && stop != NULL && strncmp(p, stop, strlen(stop)) == 0)
            return NULL;
        p = next;
    }
    return NULL;
}

/* The backquoted words of cell `col` (0-based) of the table row at p
 * (length len), appended to words[*n]. */
static void row_cell_words(const char *p, size_t len, int col, char words[][64], size_t *n,
                           size_t max)
{
    const char *end = p + len, *q = p + 1;
    for (int c = 0; c < col && q < end; c++) {
        const char *bar = memchr(q, '|', (size_t)(end - q));
        q = bar ? bar + 1 : end;
    }
    const char *cell_end = q < end ? memchr(q, '|', (size_t)(end - q)) : NULL;
    while (cell_end != NULL && q < cell_end && *n < max) {
        const char *a = memchr(q, '`', (size_t)(cell_end - q));
        const char *b = a ? memchr(a + 1, '`', (size_t)(cell_end - a - 1)) : NULL;
        if (b == NULL)
            break;
        snprintf(words[(*n)++], 64, "%.*s", (int)(b - a - 1), a + 1);
        q = b + 1;
    }
}

/* The keys (backquoted words of the first column) of the first table of
 * the section starting at p, which ends at the next heading.  Returns how
 * many; a section without a table documents none. */
static size_t section_keys(const char *p, char keys[][64], size_t max)
{
    size_t n = 0, len;
    int row = 0, fenced = 0;
    while (*p != '\0') {
        int was = fenced;
        const char *next = line_step(p, &len, &fenced);
        int text = !was && !fenced;
        if (text && p[0] == '#')
            break;
        if (text && p[0] == '|') {
            if (row++ >= 2)             /* after the header and its rule */
                row_cell_words(p, len, 0, keys, &n, max);
        } else if (row > 0) {
            break;                      /* the first table ended */
        }
        p = next;
    }
    return n;
}

/* The first difference between section (h2, h3) of the docs and map, as a
 * message in msg; 0 when there is none. */
static int section_mismatch(const char *h2, const char *h3, const struct cm_map *map,
                            char *msg, size_t size)
{
    char where[200], keys[DOC_KEYS_MAX][64];
    const char *p = find_heading(doc, h2, NULL);
    snprintf(where, sizeof(where), "%s, %s%s%s", DOC, h2, h3 ? " > " : "", h3 ? h3 : "");
    if (p != NULL && h3 != NULL)
        p = find_heading(p, h3, "## ");
    if (p == NULL) {
        snprintf(msg, size, "%s: no such section", where);
        return -1;
    }
    size_t n = section_keys(p, keys, DOC_KEYS_MAX);
    for (size_t i = 0; i < n; i++)
        if (cm_entry_find(map, keys[i]) == NULL) {
            snprintf(msg, size, "%s: key '%s' is documented but not accepted", where, keys[i]);
            return -1;
        }
    for (const struct cm_entry *e = map->entries; e->key != NULL; e++) {
        size_t i = 0;
        while (i < n && strcmp(keys[i], e->key) != 0)
            i++;
        if (i == n) {
            snprintf(msg, size, "%s: key '%s' is accepted but not documented", where, e->key);
            return -1;
        }
        if (e->desc == NULL || e->desc[0] == '\0') {
            snprintf(msg, size, "%s: key '%s' has no desc in its map", where, e->key);
            return -1;
        }
    }
    return 0;
}

START_TEST(maps_match_the_reference)
{
    char msg[400];
    for (size_t i = 0; i < sizeof(doc_maps) / sizeof(doc_maps[0]); i++)
        ck_assert_msg(section_mismatch(doc_maps[i].h2, doc_maps[i].h3, doc_maps[i].map, msg,
                                       sizeof(msg)) == 0, "%s", msg);
}
END_TEST

START_TEST(connector_types_match_the_reference)
{
    char msg[400], h3[100];
    size_t n = 0;
    for (size_t i = 0; conn_types[i] != NULL; i++, n++) {
        const struct conn_type *t = conn_types[i];
        snprintf(h3, sizeof(h3), "### `type: %s`", t->name);
        ck_assert_msg(section_mismatch(t->kind == CONN_SOURCE ? "## `sources`" : "## `sinks`",
                                       h3, t->map, msg, sizeof(msg)) == 0, "%s", msg);
    }
    ck_assert_uint_ge(n, 6);
}
END_TEST

/* Operator types with a block of their own (reduce, detect, join) are
 * documented under "### `<block>`" of the operators' section.  The window
 * types share `window:` and its section documents them in several tables
 * (by type, then the keys every time window has): the next test reads
 * those. */
START_TEST(operator_types_match_the_reference)
{
    char msg[400], h3[100];
    size_t n = 0;
    for (size_t i = 0; op_types[i] != NULL; i++) {
        const struct op_type *t = op_types[i];
        if (strcmp(t->block, "window") == 0)
            continue;
        snprintf(h3, sizeof(h3), "### `%s`", t->block);
        ck_assert_msg(section_mismatch("## `operators`", h3, t->map, msg, sizeof(msg)) == 0,
                      "%s", msg);
        n++;
    }
    ck_assert_uint_ge(n, 3);
}
END_TEST

static int word_in(char words[][64], size_t n, const char *w)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(words[i], w) == 0)
            return 1;
    return 0;
}

/* The window types share `window:`, documented in several tables: one by
 * `type` (its second column names each type's keys) and tables of keys
 * ("| key |").  Every key of every window type's map must be documented
 * there, and every documented key must be accepted by some window type;
 * every named type must be one of the table's. */
START_TEST(window_types_match_the_reference)
{
    char keys[DOC_KEYS_MAX][64], types[16][64];
    size_t nk = 0, nt = 0, len;
    int fenced = 0, table = 0, row = 0;
    const char *p = find_heading(doc, "## `operators`", NULL);
    ck_assert_msg(p != NULL, "no operators section");
    p = find_heading(p, "### `window`", "## ");
    ck_assert_msg(p != NULL, "no window section under operators");
    while (*p != '\0') {
        int was = fenced;
        const char *next = line_step(p, &len, &fenced);
        int text = !was && !fenced;
        if (text && p[0] == '#')
            break;
        if (text && p[0] == '|') {
            if (row == 0)
                table = strncmp(p, "| `type` |", 10) == 0 ? 1 : strncmp(p, "| key |", 7) == 0 ? 2 : 0;
            else if (row >= 2 && table == 1) {
                row_cell_words(p, len, 0, types, &nt, 16);
                row_cell_words(p, len, 1, keys, &nk, DOC_KEYS_MAX);
            } else if (row >= 2 && table == 2) {
                row_cell_words(p, len, 0, keys, &nk, DOC_KEYS_MAX);
            }
            row++;
        } else {
            row = 0;
        }
        p = next;
    }
    ck_assert_uint_ge(nt, 4);
    size_t ntypes = 0;
    for (size_t i = 0; op_types[i] != NULL; i++) {
        const struct op_type *t = op_types[i];
        if (strcmp(t->block, "window") != 0)
            continue;
        ntypes++;
        ck_assert_msg(t->marker != NULL || word_in(types, nt, t->name),
                      DOC ", ### `window`: type '%s' is accepted but not documented", t->name);
        for (const struct cm_entry *e = t->map->entries; e->key != NULL; e++)
            ck_assert_msg(strcmp(e->key, "type") == 0 || word_in(keys, nk, e->key),
                          DOC ", ### `window`: key '%s' of %s windows is accepted but not "
                          "documented", e->key, t->name);
    }
    for (size_t k = 0; k < nk; k++) {
        int found = 0;
        for (size_t i = 0; op_types[i] != NULL && !found; i++)
            found = strcmp(op_types[i]->block, "window") == 0 &&
                    cm_entry_find(op_types[i]->map, keys[k]) != NULL;
        ck_assert_msg(found, DOC ", ### `window`: key '%s' is documented but no window type "
                      "accepts it", keys[k]);
    }
    for (size_t k = 0; k < nt; k++) {
        int found = 0;
        for (size_t i = 0; op_types[i] != NULL && !found; i++)
            found = strcmp(op_types[i]->block, "window") == 0 &&
                    strcmp(op_types[i]->name, types[k]) == 0;
        ck_assert_msg(found, DOC ", ### `window`: type '%s' is documented but not accepted",
                      types[k]);
    }
    ck_assert_uint_ge(ntypes, 5);
}
END_TEST

/* The check itself names the key on either side. */
START_TEST(mismatch_is_named)
{
    static const struct cm_entry fewer_entries[] = {
        { .key = "dir", .desc = "d" }, { .key = "checkpoint_interval", .desc = "c" },
        { .key = NULL },
    };
    static const struct cm_entry more_entries[] = {
        { .key = "dir", .desc = "d" }, { .key = "checkpoint_interval", .desc = "c" },
        { .key = "checkpoints_retained", .desc = "r" }, { .key = "shared", .desc = "s" },
        { .key = "compress", .desc = "z" },
        { .key = NULL },
    };
    static const struct cm_map fewer = { fewer_entries, NULL }, more = { more_entries, NULL };
    char msg[400];
    ck_assert_int_eq(section_mismatch("## `state`", NULL, &fewer, msg, sizeof(msg)), -1);
    ck_assert_str_eq(msg, DOC ", ## `state`: key 'checkpoints_retained' is documented but "
                     "not accepted");
    ck_assert_int_eq(section_mismatch("## `state`", NULL, &more, msg, sizeof(msg)), -1);
    ck_assert_str_eq(msg, DOC ", ## `state`: key 'compress' is accepted but not documented");
    ck_assert_int_eq(section_mismatch("## `sinks`", "### `type: smtp`", &more, msg,
                                      sizeof(msg)), -1);
    ck_assert_str_eq(msg, DOC ", ## `sinks` > ### `type: smtp`: no such section");
}
END_TEST

Suite *confmap_suite(void)
{
    Suite *s = suite_create("confmap");
    TCase *tc = tcase_create("docs");
    tcase_add_checked_fixture(tc, doc_load, doc_free);
    tcase_add_test(tc, maps_match_the_reference);
    tcase_add_test(tc, connector_types_match_the_reference);
    tcase_add_test(tc, operator_types_match_the_reference);
    tcase_add_test(tc, window_types_match_the_reference);
    tcase_add_test(tc, mismatch_is_named);
    suite_add_tcase(s, tc);
    return s;
}
