/*
 * rp_header.c - the repartition record header (rp_header.h).
 * Placeholder until it is written.
 */
#include <errno.h>

#include "rp_header.h"

int rp_meta_format(const struct rp_meta *m, char *buf, size_t size)
{
    (void)m; (void)buf; (void)size;
    return -ENOSPC;
}

int rp_meta_parse(const char *p, size_t len, struct rp_meta *m)
{
    (void)p; (void)len; (void)m;
    return -EINVAL;
}

int rp_key_text(const struct record *rec, const int *fields, size_t n, char *buf, size_t size)
{
    (void)rec; (void)fields; (void)n; (void)buf; (void)size;
    return -ENOSPC;
}

int32_t rp_partition(const char *key, size_t len, int32_t npartitions)
{
    (void)key; (void)len; (void)npartitions;
    return 0;
}
