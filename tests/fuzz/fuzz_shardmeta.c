/*
 * fuzz_shardmeta.c - libFuzzer target: the shard snapshot's commit metadata
 * parser (cmd/shardmeta.c), which reads whatever was last committed to the
 * consumer group.
 *
 * For every input: no crash, no out-of-bounds read (ASan), a result that is
 * one of the documented codes with a printable reason, and round trips
 * both ways: what the parser accepts is exactly what the formatter writes
 * for what it read (one spelling per metadata, so two instances never
 * disagree about what a commit names), and the names it accepts are
 * terminated and within their arrays.  Each input is parsed twice: as it
 * is, and with a correct " sum=" appended (the fuzzer could not find sums
 * by itself, and the checks that come before the sum would then be all it
 * ever reached as accepted input).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <inttypes.h>
#include <xxhash.h>

#include "../../cmd/shardmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *data, size_t size)
{
    struct shard_meta m;
    char err[256], again[SHARD_META_MAX + 1];
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return;
    memcpy(buf, data, size);
    err[0] = '\0';
    int rc = shard_meta_parse(buf, size, &m, err, sizeof(err));
    if (rc != 0 && rc != -ENODATA && rc != -ENOMSG && rc != -EINVAL)
        abort();
    if (rc != 0 && err[0] == '\0')
        abort();
    for (const char *p = err; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort();
    if (rc == 0) {
        if (memchr(m.obj, '\0', sizeof(m.obj)) == NULL || memchr(m.prev, '\0', sizeof(m.prev)) == NULL)
            abort();
        int n = shard_meta_format(&m, again, sizeof(again));
        if (n != (int)size || memcmp(again, buf, size) != 0)
            abort();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check((const char *)data, size);
    if (size > 4096)
        return 0;
    char summed[4096 + 32];
    memcpy(summed, data, size);
    int k = snprintf(summed + size, 32, " sum=%016" PRIx64, XXH64(data, size, 0));
    check(summed, size + (size_t)k);
    return 0;
}
