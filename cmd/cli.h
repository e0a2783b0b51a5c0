/*
 * cli.h - the subcommands of the sluice binary.
 *
 * Each subcommand is a function taking the arguments after its name and
 * returning the process exit code (docs/sluice.1): 0 success,
 * 1 configuration or usage error, 2 runtime failure.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#define SLUICE_VERSION "0.1.0"

enum exit_code { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_RUNTIME = 2 };

struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;      /* full help text */
    int (*run)(int argc, char **argv);
};

struct job;

/* Loads and validates a job file; on errors prints each as FILE:LINE:COL:
 * message and a count to stderr.  Returns EXIT_OK with *out (caller frees
 * with job_free) or EXIT_CONFIG. */
int cli_load_job(const char *file, struct job **out);

int cmd_validate(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_broker(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

extern const struct cli_command cli_validate, cli_gen, cli_bench, cli_run, cli_broker,
    cli_inspect;

#endif
