/* report_internal.h - pieces shared by the report writers: a growable text
 * buffer with printf-style appends and the HTML/JSON escapers. */
#ifndef QF_REPORT_INTERNAL_H
#define QF_REPORT_INTERNAL_H

#include "report/report.h"

/* Text buffer. Appends never fail visibly: the first allocation failure
 * sets `oom` and later appends are ignored, so writers check once at the
 * end (qf_sb_finish). */
typedef struct qf_sb {
    char *buf;
    size_t len, cap;
    bool oom;
} qf_sb;

void qf_sb_put(qf_sb *b, const char *s);
void qf_sb_putn(qf_sb *b, const char *s, size_t n);
void qf_sb_printf(qf_sb *b, const char *fmt, ...) QF_PRINTF(2, 3);
/* Text with & < > " ' escaped (safe in element content and in quoted
 * attribute values). Bytes below 0x20 other than tab/newline become '?'. */
void qf_sb_html(qf_sb *b, const char *s);
/* A JSON string literal, quotes included (NULL -> null). Invalid UTF-8 is
 * not repaired: it is passed through byte by byte, control bytes escaped. */
void qf_sb_json_str(qf_sb *b, const char *s);
/* A JSON number, or null when not finite. */
void qf_sb_json_num(qf_sb *b, double v);
/* Hand over the buffer (NUL-terminated) or fail with QF_ERR_NOMEM. */
qf_status qf_sb_finish(qf_sb *b, char **out, size_t *len, qf_err *err);
void qf_sb_free(qf_sb *b);

/* SVG charts (report_svg.c); each appends one <svg> element, or nothing
 * when the report has no data for it. */
void qf_svg_sqnr_bars(qf_sb *b, const qf_report *r);
void qf_svg_sensitivity(qf_sb *b, const qf_report *r);
void qf_svg_histogram(qf_sb *b, const qf_report_hist *h, int index);
void qf_svg_configs(qf_sb *b, const qf_report *r);

#endif /* QF_REPORT_INTERNAL_H */
