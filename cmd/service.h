/*
 * service.h - talking to systemd: readiness, watchdog, status.
 *
 * Thin wrappers over sd_notify(3).  Without NOTIFY_SOCKET (not started by
 * systemd with Type=notify) every call is silent and costs nothing.  The
 * watchdog timer runs on the loop at half of WATCHDOG_USEC, so a stuck loop
 * stops the pings and systemd restarts sluice.
 */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include <uv.h>

struct service {
    uv_timer_t watchdog;
    int watchdog_on;
};

void service_start(struct service *s, uv_loop_t *loop);
void service_ready(void);
void service_reloading(void);
void service_stopping(void);
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void service_close(struct service *s);

#endif
