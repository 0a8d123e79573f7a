/* report.c - the CLI's one-line error messages, exit codes, JSON string
 * escaping and shape formatting. */
#include <stdarg.h>
#include <string.h>

#include "cli/cli.h"

static void vreport(const char *prefix, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One line, always: a message carrying a newline would break scripts
     * that read the first stderr line. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "qforge: %s%s\n", prefix, msg);
}

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

int cli_fail(const qf_err *e, qf_status s) {
    cli_error("%s", e->msg[0] ? e->msg : qf_status_str(s));
    switch (s) {
    case QF_ERR_INVALID_ARG:
    case QF_ERR_UNSUPPORTED:
    case QF_ERR_IO:
    case QF_ERR_FORMAT:
    case QF_ERR_SHAPE: return CLI_EXIT_USAGE;
    default: return CLI_EXIT_FAIL;
    }
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_error("%s: %s (see 'qforge %s --help')", cmd->name, msg, cmd->name);
    return CLI_EXIT_USAGE;
}

void cli_json_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_format_shape(char *buf, size_t len, int rank, const int64_t *dims) {
    if (rank < 0) {
        snprintf(buf, len, "?");
        return;
    }
    size_t o = 0;
    o += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && o < len; i++) {
        const char *sep = i ? ", " : "";
        if (dims[i] >= 0)
            o += (size_t)snprintf(buf + o, len - o, "%s%lld", sep, (long long)dims[i]);
        else if (i == 0)
            o += (size_t)snprintf(buf + o, len - o, "%sN", sep);
        else
            o += (size_t)snprintf(buf + o, len - o, "%sd%d", sep, i);
    }
    if (o < len) snprintf(buf + o, len - o, "]");
}
