/*
 * fuzz_rpheader.c - libFuzzer target: the repartition record header parser
 * (connectors/rp_header.c), which reads a header of every record stage 2
 * consumes from a repartition topic (anyone can produce to it).
 *
 * For every input: no crash, no read past the input (ASan: the parser gets
 * a copy of exactly its bytes), a result of 0 or -EINVAL, and, when it is
 * accepted, values within the documented ranges (stage 2 indexes by src)
 * and one spelling: formatting what was read gives the input back, byte
 * for byte.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../connectors/rp_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct rp_meta m;
    int rc = rp_meta_parse(buf, size, &m);
    if (rc != 0 && rc != -EINVAL)
        abort();
    if (rc == 0) {
        if (m.kind != RP_DATA && m.kind != RP_WATERMARK && m.kind != RP_END)
            abort();
        if (m.src < 0 || m.src >= m.nsrc || m.nsrc > RP_MAX_SOURCES)
            abort();
        if (m.off < (m.kind == RP_DATA ? 0 : -1))
            abort();
        char again[RP_HEADER_MAX];
        int n = rp_meta_format(&m, again, sizeof(again));
        if (n != (int)size || memcmp(again, buf, size) != 0)
            abort();
    }
    free(buf);
    return 0;
}
