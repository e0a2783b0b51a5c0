/*
 * row.c - a record's decoded values kept beyond the record: copied with
 * their strings into one block, written into and read back from a
 * checkpoint (see engine_int.h).  The detect operator keeps a key's
 * previous record this way, the join each buffered record.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

size_t row_bytes(const struct value *v, uint32_t nv)
{
    size_t size = nv * sizeof(struct value);
    for (uint32_t i = 0; i < nv; i++)
        if (v[i].type == VT_STRING)
            size += v[i].u.s.len;
    return size;
}

void row_copy(struct value *dst, const struct value *v, uint32_t nv)
{
    char *p = (char *)(dst + nv);
    for (uint32_t i = 0; i < nv; i++) {
        dst[i] = v[i];
        if (v[i].type == VT_STRING) {
            if (v[i].u.s.len)
                memcpy(p, v[i].u.s.p, v[i].u.s.len);
            dst[i].u.s.p = p;
            p += v[i].u.s.len;
        }
    }
}

void row_save(struct ckpt_writer *w, const struct value *v, uint32_t nv)
{
    ckpt_put_u32(w, nv);
    for (uint32_t i = 0; i < nv; i++) {
        ckpt_put_u32(w, (uint32_t)v[i].type);
        switch ((int)v[i].type) {
        case VT_STRING:
            ckpt_put_u32(w, (uint32_t)v[i].u.s.len);
            ckpt_put(w, v[i].u.s.p, v[i].u.s.len);
            break;
        case VT_INT:
            ckpt_put_i64(w, v[i].u.i);
            break;
        case VT_DOUBLE:
            ckpt_put(w, &v[i].u.d, 8);
            break;
        case VT_BOOL:
            ckpt_put_u32(w, v[i].u.b != 0);
            break;
        default:
            break;
        }
    }
}

int row_load(struct ckpt_cur *c, const struct job_source *src, struct value *v)
{
    uint32_t nv;
    if (ckpt_get_u32(c, &nv) < 0 || nv != src->nfields)
        return -EINVAL;
    for (uint32_t i = 0; i < nv; i++) {
        uint32_t type, x;
        if (ckpt_get_u32(c, &type) < 0 || type != (uint32_t)src->fields[i].type)
            return -EINVAL;             /* each value has its schema field's type */
        v[i].type = (enum value_type)type;
        int rc = 0;
        switch ((int)type) {
        case VT_STRING:
            rc = ckpt_get_u32(c, &x);
            v[i].u.s.len = x;
            v[i].u.s.p = rc < 0 ? NULL : (const char *)ckpt_get_ptr(c, x);
            rc = rc < 0 || v[i].u.s.p == NULL ? -1 : 0;
            break;
        case VT_INT:
            rc = ckpt_get_i64(c, &v[i].u.i);
            break;
        case VT_DOUBLE:
            rc = ckpt_get(c, &v[i].u.d, 8);
            break;
        default:
            rc = ckpt_get_u32(c, &x);
            v[i].u.b = x != 0;
            break;
        }
        if (rc < 0)
            return -EINVAL;
    }
    return 0;
}
