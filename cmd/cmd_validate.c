/*
 * cmd_validate.c - `sluice validate -c FILE`: load, check, print the graph.
 *
 * Every problem in the file is printed as FILE:LINE:COL: message on stderr
 * and the exit code is 1; a clean file prints the job graph on stdout.
 */
#include <stdio.h>
#include <string.h>

#include "../config/job.h"
#include "cli.h"

const struct cli_command cli_validate = {
    .name = "validate",
    .summary = "check a job file and print its job graph",
    .usage =
        "usage: sluice validate -c FILE\n"
        "\n"
        "Reads the job file, substitutes ${VAR}, ${VAR:-default} and\n"
        "${VAR:?message} from the environment, and checks everything that can be\n"
        "checked without running: types, references, durations, key templates and\n"
        "aggregate expressions.  Prints the job graph and exits 0, or prints every\n"
        "error as FILE:LINE:COL: message and exits 1.\n",
    .run = cmd_validate,
};

int cmd_validate(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
            i + 1 < argc) {
            file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(cli_validate.usage, stdout);
            return EXIT_OK;
        } else {
            fprintf(stderr, "sluice validate: unexpected argument '%s'\n%s", argv[i],
                    cli_validate.usage);
            return EXIT_CONFIG;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "sluice validate: -c FILE is required\n%s", cli_validate.usage);
        return EXIT_CONFIG;
    }
    struct job *job = NULL;
    if (cli_load_job(file, &job) != EXIT_OK)
        return EXIT_CONFIG;
    job_print(job, stdout);
    job_free(job);
    return EXIT_OK;
}
