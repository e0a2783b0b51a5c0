/*
 * store_tool - drives the shared snapshot store (connectors/store.h) from
 * the integration tests.
 *
 *   store_tool put URL NAME PATH     upload the file PATH as NAME
 *   store_tool get URL NAME PATH     download NAME to PATH
 *   store_tool ls  URL [PREFIX]      one name a line, sorted
 *   store_tool rm  URL NAME...       delete (absent is fine)
 *
 * URL is what state.shared takes; s3:// reads the AWS_* variables.  After
 * the command, one line on stderr: "stats: puts=.. put_bytes=.. gets=..
 * get_bytes=.. deletes=.. errors=..".  Exit 0 on success, 3 when get finds
 * no such object, 2 on any other failure (its reason on stderr, with the
 * errno name), 1 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../connectors/store.h"

static int usage(void)
{
    fprintf(stderr, "usage: store_tool put URL NAME PATH | get URL NAME PATH | "
            "ls URL [PREFIX] | rm URL NAME...\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *cmd = argv[1];
    struct store *st;
    char err[1024] = "";
    int rc = store_open(argv[2], &st, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "store_tool: %s (%s)\n", err, strerror(-rc));
        return 2;
    }
    if (strcmp(cmd, "put") == 0 && argc == 5) {
        rc = store_put(st, argv[3], argv[4], err, sizeof(err));
    } else if (strcmp(cmd, "get") == 0 && argc == 5) {
        rc = store_get(st, argv[3], argv[4], err, sizeof(err));
    } else if (strcmp(cmd, "ls") == 0 && argc <= 4) {
        char **names;
        size_t n;
        rc = store_list(st, argc == 4 ? argv[3] : "", &names, &n, err, sizeof(err));
        for (size_t i = 0; rc == 0 && i < n; i++)
            printf("%s\n", names[i]);
        if (rc == 0)
            store_names_free(names, n);
    } else if (strcmp(cmd, "rm") == 0 && argc >= 4) {
        for (int i = 3; rc == 0 && i < argc; i++)
            rc = store_delete(st, argv[i], err, sizeof(err));
    } else {
        store_free(st);
        return usage();
    }
    struct store_stats s;
    store_get_stats(st, &s);
    fprintf(stderr, "stats: puts=%" PRIu64 " put_bytes=%" PRIu64 " gets=%" PRIu64
            " get_bytes=%" PRIu64 " deletes=%" PRIu64 " errors=%" PRIu64 "\n", s.puts,
            s.put_bytes, s.gets, s.get_bytes, s.deletes, s.errors);
    store_free(st);
    if (rc < 0)
        fprintf(stderr, "store_tool: %s (%s)\n", err, strerror(-rc));
    return rc == 0 ? 0 : rc == -ENOENT ? 3 : 2;
}
