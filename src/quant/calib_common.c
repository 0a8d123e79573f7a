/* calib_common.c - the dispatch qf_calib_range and the option checks and
 * result clamping shared by all calibrators. */
#include <math.h>
#include <string.h>

#include "quant/calib_internal.h"

qf_status qf_calib_prepare(const qf_observer *o, const qf_calib_opts *opts, bool need_hist,
                           const char *method, qf_calib_input *in, qf_err *err) {
    memset(in, 0, sizeof *in);
    if (opts) in->opts = *opts;
    if (!o) return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate %s: NULL observer", method);
    in->name = qf_observer_name(o);
    qf_calib_opts *p = &in->opts;
    if (p->bits == 0) p->bits = QF_CALIB_DEFAULT_BITS;
    if (p->bits < 2 || p->bits > 16)
        return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate %s '%s': bits %d not in [2, 16]", method,
                       in->name, p->bits);
    if (p->percentile == 0) p->percentile = QF_CALIB_DEFAULT_PERCENTILE;
    if (!(p->percentile >= 50 && p->percentile <= 100))
        return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate %s '%s': percentile %g not in [50, 100]",
                       method, in->name, p->percentile);
    if (p->mse_grid == 0) p->mse_grid = QF_CALIB_DEFAULT_MSE_GRID;
    if (p->mse_grid < 8 || p->mse_grid > 4096)
        return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate %s '%s': mse_grid %d not in [8, 4096]",
                       method, in->name, p->mse_grid);
    qf_observer_get_stats(o, &in->st);
    if (in->st.count == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate %s '%s': no data observed", method,
                       in->name);
    in->absmax = QF_MAX(fabs(in->st.min), fabs(in->st.max));
    if (need_hist) {
        qf_status s = qf_observer_get_hist(o, &in->h, err);
        if (s != QF_OK) {
            qf_err_prefix(err, "calibrate %s", method);
            return s;
        }
    }
    return QF_OK;
}

void qf_calib_store(const qf_calib_input *in, double lo, double hi, float *lo_out, float *hi_out) {
    if (in->opts.symmetric) {
        double t = QF_MAX(fabs(lo), fabs(hi));
        t = QF_MIN(t, in->absmax);
        *lo_out = (float)-t;
        *hi_out = (float)t;
        return;
    }
    lo = QF_MIN(QF_MAX(lo, in->st.min), in->st.max);
    hi = QF_MIN(QF_MAX(hi, lo), in->st.max);
    *lo_out = (float)lo;
    *hi_out = (float)hi;
}

qf_status qf_calib_range(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                         qf_err *err) {
    qf_calib_method m = opts ? opts->method : QF_CALIB_MINMAX;
    switch (m) {
    case QF_CALIB_MINMAX: return qf_calib_minmax(o, opts, lo, hi, err);
    case QF_CALIB_PERCENTILE: return qf_calib_percentile(o, opts, lo, hi, err);
    case QF_CALIB_ENTROPY: return qf_calib_entropy(o, opts, lo, hi, err);
    case QF_CALIB_MSE: return qf_calib_mse(o, opts, lo, hi, err);
    default: break;
    }
    return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate: unknown method %d", (int)m);
}
