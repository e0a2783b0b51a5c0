/*
 * service.c - sd_notify(3) for `sluice run` (see service.h).
 */
#include "service.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

void service_start(struct service *s, uv_loop_t *loop)
{
    uint64_t usec = 0;
    s->watchdog_on = 0;
    uv_timer_init(loop, &s->watchdog);
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        uint64_t every = usec / 2000;           /* half the interval, in ms */
        uv_timer_start(&s->watchdog, on_watchdog, 0, every ? every : 1);
        s->watchdog_on = 1;
    }
}

void service_ready(void)
{
    sd_notify(0, "READY=1");
}

void service_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
}

void service_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void service_status(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", buf);
}

void service_close(struct service *s)
{
    uv_close((uv_handle_t *)&s->watchdog, NULL);
}
