/*
 * template.c - key template parsing and checking (see template.h).
 */
#include "template.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TPL_MAX_PARTS 64

int template_parse(struct arena *a, const char *src, struct template *out,
                   struct tpl_error *err)
{
    size_t n = strlen(src);
    struct tpl_part *parts = arena_alloc(a, TPL_MAX_PARTS * sizeof(*parts));
    char *text = arena_alloc(a, n + 1);
    size_t np = 0, i = 0;

    memset(out, 0, sizeof(*out));
    if (parts == NULL || text == NULL) {
        err->off = 0;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -ENOMEM;
    }
    if (n == 0) {
        err->off = 0;
        snprintf(err->msg, sizeof(err->msg), "key template is empty");
        return -EINVAL;
    }
    while (i < n) {
        if (np == TPL_MAX_PARTS) {
            err->off = i;
            snprintf(err->msg, sizeof(err->msg),
                     "key template has more than %d parts", TPL_MAX_PARTS);
            return -EINVAL;
        }
        struct tpl_part *p = &parts[np];
        if (src[i] == '{' && src[i + 1] != '{') {
            size_t s = i + 1, e = s;
            while (e < n && src[e] != '}' && src[e] != '{')
                e++;
            if (e >= n || src[e] != '}') {
                err->off = i;
                snprintf(err->msg, sizeof(err->msg),
                         "unclosed '{' in key template (write '{{' for a literal brace)");
                return -EINVAL;
            }
            if (e == s) {
                err->off = i;
                snprintf(err->msg, sizeof(err->msg), "empty '{}' in key template");
                return -EINVAL;
            }
            p->text = src + s;
            p->len = e - s;
            p->off = i;
            if (p->len == 12 && memcmp(p->text, "window_start", 12) == 0)
                p->kind = TPL_WINDOW_START;
            else if (p->len == 10 && memcmp(p->text, "window_end", 10) == 0)
                p->kind = TPL_WINDOW_END;
            else
                p->kind = TPL_FIELD;
            p->text = arena_strndup(a, p->text, p->len);
            if (p->text == NULL)
                return -ENOMEM;
            np++;
            i = e + 1;
            continue;
        }
        if (src[i] == '}' && src[i + 1] != '}') {
            err->off = i;
            snprintf(err->msg, sizeof(err->msg),
                     "unmatched '}' in key template (write '}}' for a literal brace)");
            return -EINVAL;
        }
        /* literal run, with {{ and }} unescaped */
        size_t k = 0, start = i;
        char *t = text;
        while (i < n) {
            if ((src[i] == '{' || src[i] == '}') && src[i + 1] == src[i]) {
                t[k++] = src[i];
                i += 2;
            } else if (src[i] == '{' || src[i] == '}') {
                break;
            } else {
                t[k++] = src[i++];
            }
        }
        t[k] = '\0';
        p->kind = TPL_TEXT;
        p->text = t;
        p->len = k;
        p->off = start;
        text += k + 1;
        np++;
    }
    out->src = src;
    out->parts = parts;
    out->nparts = np;
    return 0;
}

int template_check(const struct template *t, const char *const *key_fields,
                   size_t nkeys, int windowed, struct tpl_error *err)
{
    for (size_t i = 0; i < t->nparts; i++) {
        const struct tpl_part *p = &t->parts[i];
        if ((p->kind == TPL_WINDOW_START || p->kind == TPL_WINDOW_END) && !windowed) {
            err->off = p->off;
            snprintf(err->msg, sizeof(err->msg),
                     "{%s} is not defined: only tumbling, sliding and session windows "
                     "have bounds (a global window, reduce, detect or join has none)",
                     p->text);
            return -EINVAL;
        }
        if (p->kind != TPL_FIELD)
            continue;
        size_t k;
        for (k = 0; k < nkeys; k++)
            if (strcmp(key_fields[k], p->text) == 0)
                break;
        if (k == nkeys) {
            err->off = p->off;
            snprintf(err->msg, sizeof(err->msg),
                     "{%.60s} is not a key field of the operator "
                     "(use a key_by field, {window_start} or {window_end})", p->text);
            return -EINVAL;
        }
    }
    return 0;
}
