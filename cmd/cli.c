/*
 * cli.c - helpers the subcommands share.
 */
#include <stdio.h>

#include "../config/job.h"
#include "cli.h"

int cli_load_job(const char *file, struct job **out)
{
    struct diags d = { 0 };
    int rc = job_load(file, NULL, out, &d);
    if (rc < 0) {
        diags_sort(&d);
        diags_print(&d, file, stderr);
        fprintf(stderr, "%s: %zu error%s\n", file, diags_count(&d) + d.dropped,
                diags_count(&d) + d.dropped == 1 ? "" : "s");
    }
    diags_free(&d);
    return rc < 0 ? EXIT_CONFIG : EXIT_OK;
}
