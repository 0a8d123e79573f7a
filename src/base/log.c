/* log.c - library logging: silent unless the application installs a sink. */
#include <stdio.h>

#include "base/base.h"

static qf_log_fn g_log_fn;
static void *g_log_user;
static qf_log_level g_log_max = QF_LOG_WARN;

void qf_set_log(qf_log_fn fn, void *user, qf_log_level max_level) {
    g_log_fn = fn;
    g_log_user = user;
    g_log_max = max_level;
}

void qf_log(qf_log_level lvl, const char *fmt, ...) {
    if (!g_log_fn || lvl > g_log_max) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(g_log_user, lvl, buf);
}
