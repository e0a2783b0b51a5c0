/*
 * fuzz_config.c - libFuzzer target for the job-file loader.
 *
 * Feeds arbitrary bytes through the whole loader: ${VAR} substitution,
 * libyaml, the model builder, expression and template parsers, and the
 * printer of a job that loads.  The environment is a fixed fake (a few
 * variables set, the rest unset) so every run is reproducible.  Any crash,
 * sanitizer report or leak is a bug; the inputs that found one are kept
 * under tests/bad/ or tests/fuzz/regress/ and replayed by the unit tests.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../config/job.h"

static const char *fuzz_env(const char *name, void *ud)
{
    (void)ud;
    if (strcmp(name, "SET") == 0)
        return "value";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    if (strcmp(name, "BROKERS") == 0)
        return "127.0.0.1:9092";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct job_load_opts opts = { fuzz_env, NULL };
    struct diags d = { 0 };
    struct job *job = NULL;

    if (job_load_buffer("fuzz.yaml", (const char *)data, size, &opts, &job, &d) == 0) {
        FILE *null = fopen("/dev/null", "w");
        if (null != NULL) {
            job_print(job, null);
            fclose(null);
        }
        job_free(job);
    } else {
        diags_sort(&d);
    }
    diags_free(&d);
    return 0;
}
