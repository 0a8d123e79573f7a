/* check_internal.h - shared between the parts of qforge check: the finding
 * list and the two groups of checks (static weights, data runs). */
#ifndef QF_PIPELINE_CHECK_INTERNAL_H
#define QF_PIPELINE_CHECK_INTERNAL_H

#include "pipeline/check.h"

/* Append a finding; QF_ERR_NOMEM on failure. */
qf_status qf_check_add(qf_check_result *r, qf_severity sev, const char *check, const char *subject,
                       double value, const char *remedy, qf_err *err, const char *fmt, ...)
    QF_PRINTF(8, 9);

/* Static checks on the weights (check_weights.c). */
qf_status qf_check_weights(const qf_graph *g, qf_check_result *r, qf_err *err);
/* Checks that run the model on data (check_data.c). */
qf_status qf_check_data(const qf_graph *g, const qf_check_options *opt, qf_check_result *r,
                        qf_err *err);

#endif /* QF_PIPELINE_CHECK_INTERNAL_H */
