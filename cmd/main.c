/*
 * main.c - the sluice binary: subcommand dispatch, --version and help.
 *
 * Subcommands register here as struct cli_command; each lives in its own
 * cmd_<name>.c.  Only commands that really work are listed: a command that
 * a later stage of the project will add is simply not there yet, rather
 * than present and pretending.
 */
#include <stdio.h>
#include <string.h>

#include "../connectors/log.h"
#include "cli.h"

static const struct cli_command *const commands[] = {
    &cli_run,
    &cli_validate,
    &cli_inspect,
    &cli_broker,
    &cli_gen,
    &cli_bench,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "sluice %s - a single-binary streaming daemon: Kafka -> windows -> Redis\n"
            "\n"
            "usage: sluice COMMAND [ARGS]\n"
            "\n"
            "commands:\n", SLUICE_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-10s %s\n", "help", "show help for a command");
    fprintf(out, "\n'sluice help COMMAND' shows a command's options; "
            "'sluice --version' prints the version.\n");
}

static const struct cli_command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    log_init();
    if (argc < 2) {
        usage(stderr);
        return EXIT_CONFIG;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("sluice %s\n", SLUICE_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc < 3) {
            usage(stdout);
            return EXIT_OK;
        }
        const struct cli_command *c = find(argv[2]);
        if (c == NULL) {
            fprintf(stderr, "sluice: no command '%s'\n\n", argv[2]);
            usage(stderr);
            return EXIT_CONFIG;
        }
        fputs(c->usage, stdout);
        return EXIT_OK;
    }
    const struct cli_command *c = find(cmd);
    if (c == NULL) {
        fprintf(stderr, "sluice: no command '%s'\n\n", cmd);
        usage(stderr);
        return EXIT_CONFIG;
    }
    return c->run(argc - 2, argv + 2);
}
