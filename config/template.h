/*
 * template.h - sink key templates such as "session_features:{user_id}:{window_start}".
 *
 * A template is literal text with {name} references; "{{" and "}}" stand for
 * literal braces.  A name is a key field of the operator that writes to the
 * sink, or one of the window bounds {window_start} / {window_end} (epoch ms).
 * Parsing only checks the syntax; template_check() then checks the names
 * against one operator, since a sink may be fed by several.
 */
#ifndef SLUICE_TEMPLATE_H
#define SLUICE_TEMPLATE_H

#include <stddef.h>

#include "arena.h"

enum tpl_part_kind { TPL_TEXT, TPL_FIELD, TPL_WINDOW_START, TPL_WINDOW_END };

struct tpl_part {
    enum tpl_part_kind kind;
    const char *text;           /* TPL_TEXT: unescaped text; TPL_FIELD: name */
    size_t len;
    size_t off;                 /* byte offset of the part in the template */
};

struct template {
    const char *src;
    struct tpl_part *parts;
    size_t nparts;
};

struct tpl_error {
    size_t off;
    char msg[256];
};

/* Returns 0, or -EINVAL with err filled. */
int template_parse(struct arena *a, const char *src, struct template *out,
                   struct tpl_error *err);

/* Checks every {name} against the key fields; windowed says whether
 * {window_start}/{window_end} exist.  Returns 0, or -EINVAL with err. */
int template_check(const struct template *t, const char *const *key_fields,
                   size_t nkeys, int windowed, struct tpl_error *err);

#endif
