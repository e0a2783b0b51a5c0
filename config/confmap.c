/*
 * confmap.c - reading settings back through a config map (confmap.h).
 *
 * The reader itself (and cm_entry_find) lives in job_load.c, on top of the
 * loader's getters, so its messages and positions are the loader's.  What is here needs no job
 * file: finding an entry, and the value an entry describes inside a
 * settings struct already read, for code that treats every connector alike
 * (checkpoint fingerprints, key templates, tests of the docs).
 */
#include "confmap.h"

#include <string.h>

const struct cm_entry *cm_entry_of_type(const struct cm_map *map, enum cm_type t)
{
    for (const struct cm_entry *e = map->entries; e->key != NULL; e++)
        if (e->type == t)
            return e;
    return NULL;
}

const void *cm_value(const struct cm_map *map, const void *conf, const char *key)
{
    const struct cm_entry *e = cm_entry_find(map, key);
    return e != NULL ? (const char *)conf + e->offset : NULL;
}

const char *cm_str(const struct cm_map *map, const void *conf, const char *key)
{
    const struct cm_entry *e = cm_entry_find(map, key);
    const char *s;
    if (e == NULL || e->type != CM_STR)
        return NULL;
    memcpy(&s, (const char *)conf + e->offset, sizeof(s));
    return s;
}

const char *cm_identity(const struct cm_map *map, const void *conf)
{
    for (const struct cm_entry *e = map->entries; e->key != NULL; e++)
        if (e->type == CM_STR && (e->flags & CM_IDENTITY)) {
            const char *s = cm_str(map, conf, e->key);
            return s != NULL ? s : "";
        }
    return "";
}
