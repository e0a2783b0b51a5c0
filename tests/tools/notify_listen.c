/*
 * notify_listen - the systemd side of sd_notify(3), for tests.
 *
 *   notify_listen PATH
 *
 * Binds a unix datagram socket at PATH (what NOTIFY_SOCKET names) and
 * prints every datagram it receives as one line on stdout, its
 * newline-separated assignments joined by a space:
 *   RELOADING=1 MONOTONIC_USEC=123456789
 * Runs until killed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: notify_listen PATH\n");
        return 2;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof(a.sun_path)) {
        fprintf(stderr, "notify_listen: path too long\n");
        return 2;
    }
    strcpy(a.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fprintf(stderr, "notify_listen: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "notify_listen: recv: %s\n", strerror(errno));
            return 1;
        }
        while (n > 0 && buf[n - 1] == '\n')
            n--;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n')
                buf[i] = ' ';
        buf[n] = '\0';
        printf("%s\n", buf);
        fflush(stdout);
    }
}
