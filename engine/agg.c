/*
 * agg.c - accumulator layout and operations (see agg.h).
 *
 * Component sizes: count, sum(int), min, max, count_distinct (a pointer)
 * 8 bytes; first, last (event time + value), duration (min, max time) 16;
 * sum(double) 24 (struct dsum).  Strings of first/last and the
 * count_distinct sets are slab blobs:
 *     string: u32 length, then the bytes
 *     set:    a header and an open-addressing table of (hash, value) pairs,
 *             the value being the scalar's bits or a string blob pointer.
 */
#include "agg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ckpt_file.h"

/* ---- exact double sums --------------------------------------------------- */

typedef __int128 i128;

static i128 dsum_get(const struct dsum *s)
{
    return (i128)(((unsigned __int128)s->hi << 64) | s->lo);
}

static void dsum_set(struct dsum *s, i128 v)
{
    unsigned __int128 u = (unsigned __int128)v;
    s->lo = (uint64_t)u;
    s->hi = (uint64_t)(u >> 64);
}

/* x as an exact count of 2^-64 units, when it is one and |x| < 2^62. */
static int dbl_to_fx(double x, i128 *out)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    int exp = (int)(bits >> 52 & 0x7ff);
    uint64_t m = bits & ((1ULL << 52) - 1);
    if (exp == 0) {
        if (m != 0)
            return -1;                  /* subnormal: far below the grid */
        *out = 0;
        return 0;
    }
    if (exp - 1023 >= 62)
        return -1;
    m |= 1ULL << 52;                    /* x = m * 2^(exp - 1075) */
    int shift = exp - 1075 + 64;
    i128 v;
    if (shift >= 0) {
        v = (i128)m << shift;
    } else {
        if (-shift > 52 || (m & ((1ULL << -shift) - 1)) != 0)
            return -1;
        v = (i128)(m >> -shift);
    }
    *out = (bits >> 63) ? -v : v;
    return 0;
}

void dsum_add(struct dsum *s, double x)
{
    i128 v, sum;
    if (dbl_to_fx(x, &v) == 0 && !__builtin_add_overflow(dsum_get(s), v, &sum))
        dsum_set(s, sum);
    else
        s->rest += x;
}

void dsum_merge(struct dsum *a, const struct dsum *b)
{
    i128 sum;
    if (!__builtin_add_overflow(dsum_get(a), dsum_get(b), &sum)) {
        dsum_set(a, sum);
    } else {
        a->rest += (double)dsum_get(b) * 0x1p-64;
    }
    a->rest += b->rest;
}

double dsum_value(const struct dsum *s)
{
    return (double)dsum_get(s) * 0x1p-64 + s->rest;
}

/* ---- strings and sets ------------------------------------------------------ */

struct sblob {
    uint32_t len;
    char data[];
};

static struct sblob *sblob_new(struct slab *slab, const char *p, size_t len)
{
    struct sblob *b = slab_alloc(slab, sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    b->len = (uint32_t)len;
    if (len)
        memcpy(b->data, p, len);
    return b;
}

static void sblob_free(struct slab *slab, struct sblob *b)
{
    if (b != NULL)
        slab_free(slab, b, sizeof(*b) + b->len);
}

struct dslot {
    uint64_t h;                 /* 0: empty */
    uint64_t v;                 /* scalar bits, or (struct sblob *) */
};

struct dset {
    uint32_t n, cap;
    uint32_t is_str, borrowed;
    struct dslot s[];
};

static size_t dset_size(uint32_t cap)
{
    return sizeof(struct dset) + (size_t)cap * sizeof(struct dslot);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static struct dset *dset_new(struct slab *slab, uint32_t cap, int is_str, int borrowed)
{
    struct dset *d = slab_alloc(slab, dset_size(cap));
    if (d == NULL)
        return NULL;
    memset(d, 0, dset_size(cap));
    d->cap = cap;
    d->is_str = (uint32_t)is_str;
    d->borrowed = (uint32_t)borrowed;
    return d;
}

static int slot_eq(const struct dset *d, const struct dslot *s, uint64_t h, uint64_t v)
{
    if (s->h != h)
        return 0;
    if (!d->is_str)
        return s->v == v;
    const struct sblob *a = (const struct sblob *)(uintptr_t)s->v;
    const struct sblob *b = (const struct sblob *)(uintptr_t)v;
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Finds (h, v); returns its slot, or the empty slot where it would go. */
static struct dslot *dset_probe(struct dset *d, uint64_t h, uint64_t v)
{
    uint32_t mask = d->cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask)
        if (d->s[i].h == 0 || slot_eq(d, &d->s[i], h, v))
            return &d->s[i];
}

/* Inserts into *dp (growing it); *inserted says whether it was new. */
static int dset_insert(struct dset **dp, struct slab *slab, uint64_t h, uint64_t v,
                       int *inserted)
{
    struct dset *d = *dp;
    if ((d->n + 1) * 4 > d->cap * 3) {
        struct dset *n = dset_new(slab, d->cap * 2, (int)d->is_str, (int)d->borrowed);
        if (n == NULL)
            return -ENOMEM;
        for (uint32_t i = 0; i < d->cap; i++) {
            if (d->s[i].h != 0) {
                *dset_probe(n, d->s[i].h, d->s[i].v) = d->s[i];
                n->n++;
            }
        }
        slab_free(slab, d, dset_size(d->cap));
        *dp = d = n;
    }
    struct dslot *s = dset_probe(d, h, v);
    *inserted = s->h == 0;
    if (*inserted) {
        s->h = h;
        s->v = v;
        d->n++;
    }
    return 0;
}

static void dset_free(struct slab *slab, struct dset *d)
{
    if (d == NULL)
        return;
    if (d->is_str && !d->borrowed)
        for (uint32_t i = 0; i < d->cap; i++)
            if (d->s[i].h != 0 && d->s[i].v != 0)
                sblob_free(slab, (struct sblob *)(uintptr_t)d->s[i].v);
    slab_free(slab, d, dset_size(d->cap));
}

static uint64_t scalar_bits(const struct value *v)
{
    uint64_t b = 0;
    switch ((int)v->type) {
    case VT_INT:
        b = (uint64_t)v->u.i;
        break;
    case VT_DOUBLE: {
        double d = v->u.d == 0 ? 0.0 : v->u.d;      /* -0 == 0 */
        memcpy(&b, &d, sizeof(b));
        break;
    }
    case VT_BOOL:
        b = v->u.b != 0;
        break;
    default:
        break;
    }
    return b;
}

static int distinct_add(struct dset **dp, struct slab *slab, const struct value *v)
{
    int is_str = v->type == VT_STRING, inserted;
    if (*dp == NULL && (*dp = dset_new(slab, 4, is_str, 0)) == NULL)
        return -ENOMEM;
    if (!is_str) {
        uint64_t bits = scalar_bits(v);
        return dset_insert(dp, slab, mix64(bits) | 1, bits, &inserted);
    }
    uint64_t h = XXH3_64bits(v->u.s.p, v->u.s.len) | 1;
    /* look it up with a stack key first: a known value copies nothing */
    struct { struct sblob b; char buf[64]; } probe_key;
    struct sblob *key = &probe_key.b, *heap_key = NULL;
    if (v->u.s.len > sizeof(probe_key.buf)) {
        if ((heap_key = sblob_new(slab, v->u.s.p, v->u.s.len)) == NULL)
            return -ENOMEM;
        key = heap_key;
    } else {
        key->len = (uint32_t)v->u.s.len;
        if (v->u.s.len)
            memcpy(key->data, v->u.s.p, v->u.s.len);
    }
    if (dset_probe(*dp, h, (uint64_t)(uintptr_t)key)->h != 0) {
        sblob_free(slab, heap_key);
        return 0;
    }
    struct sblob *copy = heap_key ? heap_key : sblob_new(slab, v->u.s.p, v->u.s.len);
    if (copy == NULL)
        return -ENOMEM;
    if (dset_insert(dp, slab, h, (uint64_t)(uintptr_t)copy, &inserted) < 0) {
        sblob_free(slab, copy);
        return -ENOMEM;
    }
    return 0;
}

/* ---- layout ----------------------------------------------------------------- */

static size_t comp_size(enum comp_kind k)
{
    switch (k) {
    case C_SUM_D: return sizeof(struct dsum);
    case C_FIRST: case C_LAST: case C_TSPAN: return 16;
    default: return 8;
    }
}

static int comp_find_or_add(struct agg_layout *L, enum comp_kind k, int field,
                            enum value_type ft, int where)
{
    for (size_t i = 0; i < L->nc; i++)
        if (L->c[i].kind == k && L->c[i].field == field && L->c[i].where == where)
            return (int)i;
    struct agg_comp *c = realloc(L->c, (L->nc + 1) * sizeof(*c));
    if (c == NULL)
        return -1;
    L->c = c;
    c[L->nc] = (struct agg_comp){ .kind = k, .field = field, .ftype = ft,
                                  .where = where, .presence = -1, .off = L->size };
    L->size += comp_size(k);
    if (k == C_FIRST || k == C_LAST || k == C_DISTINCT)
        L->owns |= k == C_DISTINCT || ft == VT_STRING;
    return (int)L->nc++;
}

int agg_layout_build(struct agg_layout *L, const struct job_operator *op,
                     const struct job_source *src, agg_where_fn where_index, void *ud)
{
    memset(L, 0, sizeof(*L));
    L->o = calloc(op->naggs ? op->naggs : 1, sizeof(*L->o));
    if (L->o == NULL)
        return -ENOMEM;
    L->no = op->naggs;
    for (size_t i = 0; i < op->naggs; i++) {
        const struct agg_spec *sp = &op->aggs[i].spec;
        struct agg_out *o = &L->o[i];
        int w = sp->where ? where_index(ud, sp->where) : -1;
        enum value_type ft = sp->arg >= 0 ? src->fields[sp->arg].type : VT_INT;
        if (w < -1)
            goto fail;
        o->name = op->aggs[i].name;
        o->fn = sp->fn;
        o->count = comp_find_or_add(L, C_COUNT, -1, VT_INT, w);
        if (o->count < 0)
            goto fail;
        switch (sp->fn) {
        case AGG_COUNT:
            o->comp = o->count;
            o->type = VT_INT;
            break;
        case AGG_SUM:
        case AGG_AVG:
            o->comp = comp_find_or_add(L, ft == VT_DOUBLE ? C_SUM_D : C_SUM_I, sp->arg, ft, w);
            o->type = sp->fn == AGG_AVG ? VT_DOUBLE : ft;
            break;
        case AGG_MIN:
        case AGG_MAX:
            o->comp = comp_find_or_add(L, sp->fn == AGG_MIN ? C_MIN : C_MAX, sp->arg, ft, w);
            o->type = ft;
            break;
        case AGG_FIRST:
        case AGG_LAST:
            o->comp = comp_find_or_add(L, sp->fn == AGG_FIRST ? C_FIRST : C_LAST, sp->arg,
                                       ft, w);
            o->type = ft;
            break;
        case AGG_COUNT_DISTINCT:
            o->comp = comp_find_or_add(L, C_DISTINCT, sp->arg, ft, w);
            o->type = VT_INT;
            break;
        case AGG_DURATION:
            o->type = VT_INT;
            if ((op->type->flags & OPT_SPAN) && w < 0) {
                o->span_from_bounds = 1;
                o->comp = o->count;
            } else {
                o->comp = comp_find_or_add(L, C_TSPAN, -1, VT_INT, w);
            }
            break;
        }
        if (o->comp < 0)
            goto fail;
    }
    /* presence links, now that every count exists */
    for (size_t i = 0; i < L->nc; i++) {
        struct agg_comp *c = &L->c[i];
        if (c->kind != C_COUNT) {
            int p = comp_find_or_add(L, C_COUNT, -1, VT_INT, c->where);
            if (p < 0)
                goto fail;
            L->c[i].presence = p;   /* L->c may have moved */
        }
    }
    return 0;
fail:
    agg_layout_free(L);
    return -ENOMEM;
}

void agg_layout_free(struct agg_layout *L)
{
    free(L->c);
    free(L->o);
    memset(L, 0, sizeof(*L));
}

/* ---- per-record update ---------------------------------------------------------- */

#define AT(blk, c, T) ((T *)((char *)(blk) + (c)->off))

static int64_t present(const void *blk, const struct agg_layout *L, const struct agg_comp *c)
{
    return *AT(blk, &L->c[c->presence], int64_t);
}

static void sat_add(int64_t *a, int64_t b)
{
    if (__builtin_add_overflow(*a, b, a))
        *a = b > 0 ? INT64_MAX : INT64_MIN;
}

/* A first/last slot: event time, then the value (scalar bits or sblob). */
struct tv {
    int64_t t;
    uint64_t v;
};

static int set_tv(struct tv *s, const struct agg_comp *c, const struct value *v, int64_t t,
                  struct slab *slab, int had)
{
    if (c->ftype == VT_STRING) {
        struct sblob *b = sblob_new(slab, v->u.s.p, v->u.s.len);
        if (b == NULL)
            return -ENOMEM;
        if (had)
            sblob_free(slab, (struct sblob *)(uintptr_t)s->v);
        s->v = (uint64_t)(uintptr_t)b;
    } else {
        s->v = scalar_bits(v);
    }
    s->t = t;
    return 0;
}

int agg_add(const struct agg_layout *L, void *blk, const struct record *r,
            const unsigned char *wres, int64_t t, struct slab *slab)
{
    int rc = 0;
    /* counts first: the other components read them to know if they had a value */
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_COUNT || (c->where >= 0 && !wres[c->where]))
            continue;
        const struct value *v = c->field >= 0 ? &r->v[c->field] : NULL;
        int had = present(blk, L, c) > 0;
        switch (c->kind) {
        case C_SUM_I:
            sat_add(AT(blk, c, int64_t), v->u.i);
            break;
        case C_SUM_D:
            dsum_add(AT(blk, c, struct dsum), v->u.d);
            break;
        case C_MIN:
        case C_MAX: {
            int lt;
            if (c->ftype == VT_DOUBLE) {
                double *d = AT(blk, c, double);
                lt = c->kind == C_MIN ? v->u.d < *d : v->u.d > *d;
                if (!had || lt)
                    *d = v->u.d;
            } else {
                int64_t *x = AT(blk, c, int64_t);
                lt = c->kind == C_MIN ? v->u.i < *x : v->u.i > *x;
                if (!had || lt)
                    *x = v->u.i;
            }
            break;
        }
        case C_FIRST: {
            struct tv *s = AT(blk, c, struct tv);
            if (!had || t < s->t)
                rc |= set_tv(s, c, v, t, slab, had);
            break;
        }
        case C_LAST: {
            struct tv *s = AT(blk, c, struct tv);
            if (!had || t >= s->t)
                rc |= set_tv(s, c, v, t, slab, had);
            break;
        }
        case C_DISTINCT:
            rc |= distinct_add(AT(blk, c, struct dset *), slab, v);
            break;
        case C_TSPAN: {
            int64_t *mm = AT(blk, c, int64_t);
            if (!had || t < mm[0])
                mm[0] = t;
            if (!had || t > mm[1])
                mm[1] = t;
            break;
        }
        case C_COUNT:
            break;
        }
    }
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_COUNT && (c->where < 0 || wres[c->where]))
            (*AT(blk, c, int64_t))++;
    }
    return rc ? -ENOMEM : 0;
}

/* ---- merging ------------------------------------------------------------------------ */

static int merge_distinct(struct dset **dp, struct dset **sp, enum agg_merge_mode mode,
                          struct slab *slab)
{
    struct dset *s = *sp;
    int inserted;
    if (s == NULL)
        return 0;
    if (*dp == NULL) {
        if (mode == AGG_MOVE) {
            *dp = s;
            *sp = NULL;
            return 0;
        }
        if ((*dp = dset_new(slab, s->cap, (int)s->is_str, 1)) == NULL)
            return -ENOMEM;
    }
    for (uint32_t i = 0; i < s->cap; i++) {
        if (s->s[i].h == 0)
            continue;
        if (dset_insert(dp, slab, s->s[i].h, s->s[i].v, &inserted) < 0)
            return -ENOMEM;
        if (inserted && mode == AGG_MOVE)
            s->s[i].v = 0;          /* now owned by *dp */
    }
    return 0;
}

int agg_merge(const struct agg_layout *L, void *dst, void *src, enum agg_merge_mode mode,
              struct slab *slab)
{
    int rc = 0;
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_COUNT)
            continue;
        int sh = present(src, L, c) > 0, dh = present(dst, L, c) > 0;
        if (!sh)
            continue;
        switch (c->kind) {
        case C_SUM_I:
            sat_add(AT(dst, c, int64_t), *AT(src, c, int64_t));
            break;
        case C_SUM_D:
            dsum_merge(AT(dst, c, struct dsum), AT(src, c, struct dsum));
            break;
        case C_MIN:
        case C_MAX:
            if (c->ftype == VT_DOUBLE) {
                double a = *AT(dst, c, double), b = *AT(src, c, double);
                if (!dh || (c->kind == C_MIN ? b < a : b > a))
                    *AT(dst, c, double) = b;
            } else {
                int64_t a = *AT(dst, c, int64_t), b = *AT(src, c, int64_t);
                if (!dh || (c->kind == C_MIN ? b < a : b > a))
                    *AT(dst, c, int64_t) = b;
            }
            break;
        case C_FIRST:
        case C_LAST: {
            struct tv *d = AT(dst, c, struct tv), *s = AT(src, c, struct tv);
            /* dst holds the earlier records: ties keep dst for first, take src for last */
            int take = !dh || (c->kind == C_FIRST ? s->t < d->t : s->t >= d->t);
            if (!take)
                break;
            if (c->ftype == VT_STRING && mode == AGG_MOVE && dh)
                sblob_free(slab, (struct sblob *)(uintptr_t)d->v);
            *d = *s;                /* a borrowed block only points at src's string */
            if (c->ftype == VT_STRING && mode == AGG_MOVE)
                s->v = 0;           /* moved: src's release must not free it */
            break;
        }
        case C_DISTINCT:
            rc |= merge_distinct(AT(dst, c, struct dset *), AT(src, c, struct dset *), mode,
                                 slab);
            break;
        case C_TSPAN: {
            int64_t *d = AT(dst, c, int64_t), *s = AT(src, c, int64_t);
            if (!dh || s[0] < d[0])
                d[0] = s[0];
            if (!dh || s[1] > d[1])
                d[1] = s[1];
            break;
        }
        case C_COUNT:
            break;
        }
    }
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_COUNT)
            sat_add(AT(dst, c, int64_t), *AT(src, c, int64_t));
    }
    return rc ? -ENOMEM : 0;
}

void agg_release(const struct agg_layout *L, void *blk, struct slab *slab)
{
    if (!L->owns)
        return;
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_DISTINCT) {
            dset_free(slab, *AT(blk, c, struct dset *));
            *AT(blk, c, struct dset *) = NULL;
        } else if ((c->kind == C_FIRST || c->kind == C_LAST) && c->ftype == VT_STRING) {
            struct tv *s = AT(blk, c, struct tv);
            if (present(blk, L, c) > 0 && s->v != 0)
                sblob_free(slab, (struct sblob *)(uintptr_t)s->v);
            s->v = 0;
        }
    }
}

void agg_release_borrowed(const struct agg_layout *L, void *blk, struct slab *slab)
{
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_DISTINCT) {
            dset_free(slab, *AT(blk, c, struct dset *));   /* borrowed: strings stay */
            *AT(blk, c, struct dset *) = NULL;
        }
    }
}

size_t agg_owned_bytes(const struct agg_layout *L, const void *blk)
{
    size_t b = 0;
    if (!L->owns)
        return 0;
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_DISTINCT) {
            const struct dset *d = *AT(blk, c, struct dset *const);
            if (d == NULL)
                continue;
            b += slab_class_size(dset_size(d->cap));
            if (d->is_str && !d->borrowed)
                for (uint32_t k = 0; k < d->cap; k++)
                    if (d->s[k].h != 0 && d->s[k].v != 0)
                        b += slab_class_size(sizeof(struct sblob) +
                                             ((const struct sblob *)(uintptr_t)d->s[k].v)->len);
        } else if ((c->kind == C_FIRST || c->kind == C_LAST) && c->ftype == VT_STRING &&
                   present(blk, L, c) > 0) {
            const struct tv *s = AT(blk, c, const struct tv);
            if (s->v != 0)
                b += slab_class_size(sizeof(struct sblob) +
                                     ((const struct sblob *)(uintptr_t)s->v)->len);
        }
    }
    return b;
}

/* ---- results ------------------------------------------------------------------------- */

static void from_bits(enum value_type t, uint64_t bits, struct value *out)
{
    out->type = t;
    switch ((int)t) {
    case VT_INT:
        out->u.i = (int64_t)bits;
        break;
    case VT_DOUBLE:
        memcpy(&out->u.d, &bits, sizeof(double));
        break;
    case VT_BOOL:
        out->u.b = bits != 0;
        break;
    case VT_STRING: {
        const struct sblob *b = (const struct sblob *)(uintptr_t)bits;
        out->u.s.p = b->data;
        out->u.s.len = b->len;
        break;
    }
    default:
        break;
    }
}

void agg_result(const struct agg_layout *L, const void *blk, int64_t span_ms,
                struct value *out)
{
    for (size_t i = 0; i < L->no; i++) {
        const struct agg_out *o = &L->o[i];
        const struct agg_comp *c = &L->c[o->comp];
        int64_t n = *AT(blk, &L->c[o->count], const int64_t);
        struct value *v = &out[i];
        v->type = o->type;
        switch (o->fn) {
        case AGG_COUNT:
            v->u.i = n;
            break;
        case AGG_SUM:
            if (c->kind == C_SUM_D)
                v->u.d = dsum_value(AT(blk, c, const struct dsum));
            else
                v->u.i = *AT(blk, c, const int64_t);
            break;
        case AGG_AVG:
            if (n == 0)
                v->u.d = 0;
            else if (c->kind == C_SUM_D)
                v->u.d = dsum_value(AT(blk, c, const struct dsum)) / (double)n;
            else
                v->u.d = (double)*AT(blk, c, const int64_t) / (double)n;
            break;
        case AGG_MIN:
        case AGG_MAX:
            if (n == 0)
                v->type = VT_NULL;
            else if (c->ftype == VT_DOUBLE)
                v->u.d = *AT(blk, c, const double);
            else
                v->u.i = *AT(blk, c, const int64_t);
            break;
        case AGG_FIRST:
        case AGG_LAST:
            if (n == 0)
                v->type = VT_NULL;
            else
                from_bits(c->ftype, AT(blk, c, const struct tv)->v, v);
            break;
        case AGG_COUNT_DISTINCT: {
            const struct dset *d = *AT(blk, c, struct dset *const);
            v->u.i = d ? d->n : 0;
            break;
        }
        case AGG_DURATION:
            if (o->span_from_bounds) {
                v->u.i = span_ms / 1000;
            } else if (n == 0) {
                v->u.i = 0;
            } else {
                const int64_t *mm = AT(blk, c, const int64_t);
                v->u.i = (mm[1] - mm[0]) / 1000;
            }
            break;
        }
    }
}

/* ---- checkpoints ---------------------------------------------------------------------- */

static void save_sblob(struct ckpt_writer *w, const struct sblob *b)
{
    ckpt_put_u32(w, b->len);
    ckpt_put(w, b->data, b->len);
}

void agg_save(const struct agg_layout *L, const void *blk, struct ckpt_writer *w)
{
    ckpt_put(w, blk, L->size);
    if (!L->owns)
        return;
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if ((c->kind == C_FIRST || c->kind == C_LAST) && c->ftype == VT_STRING &&
            present(blk, L, c) > 0) {
            save_sblob(w, (const struct sblob *)(uintptr_t)AT(blk, c, const struct tv)->v);
        } else if (c->kind == C_DISTINCT) {
            const struct dset *d = *AT(blk, c, struct dset *const);
            ckpt_put_u32(w, d ? d->n : 0);
            for (uint32_t k = 0; d != NULL && k < d->cap; k++) {
                if (d->s[k].h == 0)
                    continue;
                if (d->is_str)
                    save_sblob(w, (const struct sblob *)(uintptr_t)d->s[k].v);
                else
                    ckpt_put(w, &d->s[k].v, 8);
            }
        }
    }
}

int agg_load(const struct agg_layout *L, void *blk, struct ckpt_cur *cur, struct slab *slab)
{
    if (ckpt_get(cur, blk, L->size) < 0)
        return -EINVAL;
    /* clear every owned pointer first, so a failure can release the block */
    for (size_t i = 0; L->owns && i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        if (c->kind == C_DISTINCT)
            *AT(blk, c, struct dset *) = NULL;
        else if ((c->kind == C_FIRST || c->kind == C_LAST) && c->ftype == VT_STRING)
            AT(blk, c, struct tv)->v = 0;
    }
    /* counts are never negative: whether a string is stored, and whether a
     * result reads it, both follow them (a crafted -1 would leave a result
     * reading a string that was never loaded); nor near overflow, as the
     * next record increments them */
    for (size_t i = 0; i < L->nc; i++) {
        const int64_t *x = AT(blk, &L->c[i], const int64_t);
        if (L->c[i].kind == C_COUNT && (x[0] < 0 || x[0] > CKPT_TIME_LIMIT))
            return -EINVAL;
        /* a duration subtracts its bounds: both must be times */
        if (L->c[i].kind == C_TSPAN &&
            (x[0] < -CKPT_TIME_LIMIT || x[0] > CKPT_TIME_LIMIT ||
             x[1] < -CKPT_TIME_LIMIT || x[1] > CKPT_TIME_LIMIT))
            return -EINVAL;
    }
    if (!L->owns)
        return 0;
    for (size_t i = 0; i < L->nc; i++) {
        const struct agg_comp *c = &L->c[i];
        uint32_t len, n;
        const unsigned char *p;
        if ((c->kind == C_FIRST || c->kind == C_LAST) && c->ftype == VT_STRING &&
            present(blk, L, c) > 0) {
            if (ckpt_get_u32(cur, &len) < 0 || (p = ckpt_get_ptr(cur, len)) == NULL)
                goto bad;
            struct sblob *b = sblob_new(slab, (const char *)p, len);
            if (b == NULL)
                goto nomem;
            AT(blk, c, struct tv)->v = (uint64_t)(uintptr_t)b;
        } else if (c->kind == C_DISTINCT) {
            if (ckpt_get_u32(cur, &n) < 0)
                goto bad;
            struct dset **dp = AT(blk, c, struct dset *);
            for (uint32_t k = 0; k < n; k++) {
                struct value v = { .type = c->ftype };
                if (c->ftype == VT_STRING) {
                    if (ckpt_get_u32(cur, &len) < 0 || (p = ckpt_get_ptr(cur, len)) == NULL)
                        goto bad;
                    v.u.s.p = (const char *)p;
                    v.u.s.len = len;
                } else {
                    uint64_t bits;
                    if (ckpt_get(cur, &bits, 8) < 0)
                        goto bad;
                    if (c->ftype == VT_INT)
                        v.u.i = (int64_t)bits;
                    else if (c->ftype == VT_BOOL)
                        v.u.b = bits != 0;
                    else
                        memcpy(&v.u.d, &bits, 8);
                }
                if (distinct_add(dp, slab, &v) < 0)
                    goto nomem;
            }
        }
    }
    return 0;
bad:
    agg_release(L, blk, slab);
    return -EINVAL;
nomem:
    agg_release(L, blk, slab);
    return -ENOMEM;
}
