/* strbuf.c - the growable text buffer and escapers the report writers use. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

static bool sb_reserve(qf_sb *b, size_t extra) {
    if (b->oom) return false;
    size_t need;
    if (!qf_add_size(b->len, extra, &need) || !qf_add_size(need, 1, &need)) {
        b->oom = true;
        return false;
    }
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *nb = qf_realloc(b->buf, cap);
    if (!nb) {
        b->oom = true;
        return false;
    }
    b->buf = nb;
    b->cap = cap;
    return true;
}

void qf_sb_putn(qf_sb *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

void qf_sb_put(qf_sb *b, const char *s) { qf_sb_putn(b, s, strlen(s)); }

void qf_sb_printf(qf_sb *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        qf_sb_putn(b, small, (size_t)n);
        return;
    }
    if (!sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void qf_sb_html(qf_sb *b, const char *s) {
    if (!s) return;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '&': qf_sb_put(b, "&amp;"); break;
        case '<': qf_sb_put(b, "&lt;"); break;
        case '>': qf_sb_put(b, "&gt;"); break;
        case '"': qf_sb_put(b, "&quot;"); break;
        case '\'': qf_sb_put(b, "&#39;"); break;
        default:
            /* control bytes are not allowed in HTML text (and NUL ends s) */
            if (c < 0x20 && c != '\t' && c != '\n') c = '?';
            qf_sb_putn(b, (const char *)&c, 1);
        }
    }
}

void qf_sb_json_str(qf_sb *b, const char *s) {
    if (!s) {
        qf_sb_put(b, "null");
        return;
    }
    qf_sb_put(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '"': qf_sb_put(b, "\\\""); break;
        case '\\': qf_sb_put(b, "\\\\"); break;
        case '\n': qf_sb_put(b, "\\n"); break;
        case '\r': qf_sb_put(b, "\\r"); break;
        case '\t': qf_sb_put(b, "\\t"); break;
        default:
            /* "</" is escaped too, so the JSON can be pasted into a <script>
             * block without ending it */
            if (c < 0x20)
                qf_sb_printf(b, "\\u%04x", c);
            else if (c == '/' && p > s && p[-1] == '<')
                qf_sb_put(b, "\\/");
            else
                qf_sb_putn(b, (const char *)&c, 1);
        }
    }
    qf_sb_put(b, "\"");
}

void qf_sb_json_num(qf_sb *b, double v) {
    if (!isfinite(v))
        qf_sb_put(b, "null");
    else
        qf_sb_printf(b, "%.9g", v);
}

qf_status qf_sb_finish(qf_sb *b, char **out, size_t *len, qf_err *err) {
    if (!b->oom && !b->buf) sb_reserve(b, 0);
    if (b->oom) {
        qf_sb_free(b);
        return qf_errf(err, QF_ERR_NOMEM, "out of memory writing a report");
    }
    b->buf[b->len] = 0;
    *out = b->buf;
    if (len) *len = b->len;
    memset(b, 0, sizeof *b);
    return QF_OK;
}

void qf_sb_free(qf_sb *b) {
    qf_free(b->buf);
    memset(b, 0, sizeof *b);
}
