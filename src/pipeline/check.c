/* check.c - qforge check's driver: the finding list, the order of the
 * checks, and the copy into a report. The checks themselves live in
 * check_weights.c (static) and check_data.c (runs on data). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/check_internal.h"

qf_status qf_check_add(qf_check_result *r, qf_severity sev, const char *check, const char *subject,
                       double value, const char *remedy, qf_err *err, const char *fmt, ...) {
    /* grow by doubling; capacity is implied by powers of two from 16 */
    int n = r->n_findings;
    if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) {
        size_t cap = n == 0 ? 16 : (size_t)n * 2;
        qf_check_finding *f = qf_realloc(r->findings, sizeof(qf_check_finding) * cap);
        if (!f) return qf_errf(err, QF_ERR_NOMEM, "out of memory collecting check findings");
        r->findings = f;
    }
    qf_check_finding *f = &r->findings[n];
    memset(f, 0, sizeof *f);
    f->severity = sev;
    snprintf(f->check, sizeof f->check, "%s", check);
    snprintf(f->subject, sizeof f->subject, "%s", subject ? subject : "model");
    f->value = value;
    snprintf(f->remedy, sizeof f->remedy, "%s", remedy ? remedy : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    r->n_findings++;
    if (sev == QF_SEV_OK) r->n_ok++;
    if (sev == QF_SEV_WARN) r->n_warn++;
    if (sev == QF_SEV_FAIL) r->n_fail++;
    return QF_OK;
}

void qf_check_result_free(qf_check_result *r) {
    if (!r) return;
    qf_free(r->findings);
    memset(r, 0, sizeof *r);
    r->top1_data = r->top1_train = NAN;
}

qf_status qf_check_model(const qf_graph *g, const qf_check_options *opt, qf_check_result *res,
                         qf_err *err) {
    memset(res, 0, sizeof *res);
    res->top1_data = res->top1_train = NAN;
    if (!g) return qf_errf(err, QF_ERR_INVALID_ARG, "check: no model");
    qf_check_options o;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    qf_status s = qf_check_weights(g, res, err);
    if (!s && (o.data || o.train)) s = qf_check_data(g, &o, res, err);
    if (s) qf_check_result_free(res);
    return s;
}

qf_status qf_check_to_report(const qf_check_result *r, qf_report *rep, qf_err *err) {
    for (int i = 0; i < r->n_findings; i++) {
        const qf_check_finding *f = &r->findings[i];
        qf_report_finding rf = {.severity = f->severity,
                                .check = f->check,
                                .subject = f->subject,
                                .value = f->value,
                                .message = f->message,
                                .remedy = f->remedy[0] ? f->remedy : NULL};
        qf_status s = qf_report_add_finding(rep, &rf, err);
        if (s) return s;
    }
    return QF_OK;
}
