/*
 * fuzz_double.c - differential libFuzzer target: fmt_double()
 * (engine/value.c, integer arithmetic in the common range) against its
 * definition, the printf search (fmt_double_ref.h), byte for byte.
 *
 * The input is read 8 bytes at a time, each taken three ways: as the bits
 * of a double, as a price in cents (the low 32 bits / 100), and as the
 * running average of the prices so far (what avg(price) fires), so the
 * fuzzer reaches both arbitrary doubles and the ones the engine makes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/value.h"
#include "fmt_double_ref.h"

static void check(double d)
{
    char buf[40], ref[40];
    size_t n = fmt_double(d, buf), nr = fmt_double_ref(d, ref);
    if (n != nr || strcmp(buf, ref) != 0) {
        fprintf(stderr, "fuzz_double: %a: fmt_double \"%s\", printf search \"%s\"\n", d, buf,
                ref);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double sum = 0;
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t b;
        double d;
        memcpy(&b, data + i, 8);
        memcpy(&d, &b, 8);
        check(d);
        double price = (double)(uint32_t)b / 100.0;
        check(price);
        sum += price;
        check(sum / (double)(i / 8 + 1));
    }
    return 0;
}
