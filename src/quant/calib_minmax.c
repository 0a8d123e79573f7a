/* calib_minmax.c - the min/max calibrator: the observed range, or its
 * moving average (PyTorch MovingAverageMinMaxObserver style). */
#include "quant/calib_internal.h"

qf_status qf_calib_minmax(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                          qf_err *err) {
    qf_calib_input in;
    qf_status s = qf_calib_prepare(o, opts, false, "minmax", &in, err);
    if (s != QF_OK) return s;
    if (!lo || !hi) return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate minmax: NULL output");
    double mn = in.opts.moving_average ? in.st.ma_min : in.st.min;
    double mx = in.opts.moving_average ? in.st.ma_max : in.st.max;
    if (in.opts.symmetric) {
        /* The moving averages lie inside [min, max], so no clamp bites. */
        double t = QF_MAX(-mn, mx);
        t = t > 0 ? t : 0;
        *lo = (float)-t;
        *hi = (float)t;
        return QF_OK;
    }
    *lo = (float)mn;
    *hi = (float)mx;
    return QF_OK;
}
