/* calib_percentile.c - the percentile calibrator: clip at the value below
 * which p% of |x| (symmetric) or of x at each tail (asymmetric) lies, read
 * from the observer's histogram with linear interpolation inside the bin. */
#include <math.h>

#include "quant/calib_internal.h"

/* Value of rank `target` (a real count in [0, total]) in the |x| histogram. */
static double quantile_abs(const qf_hist *h, double target) {
    double cum = 0;
    for (size_t k = 0; k < h->nbins; k++) {
        double c = (double)h->pos[k] + (double)h->neg[k];
        if (c > 0 && cum + c >= target) return h->width * ((double)k + (target - cum) / c);
        cum += c;
    }
    return h->width * (double)h->nbins;
}

/* The same in the signed histogram, bins in ascending order of x: neg[n-1]
 * (-x in [(n-1)w, nw)) ... neg[0], then pos[0] ... pos[n-1]. */
static double quantile_signed(const qf_hist *h, double target) {
    double cum = 0, w = h->width;
    for (size_t j = h->nbins; j-- > 0;) {
        double c = (double)h->neg[j];
        if (c > 0 && cum + c >= target) return -w * (double)(j + 1) + w * (target - cum) / c;
        cum += c;
    }
    for (size_t k = 0; k < h->nbins; k++) {
        double c = (double)h->pos[k];
        if (c > 0 && cum + c >= target) return w * ((double)k + (target - cum) / c);
        cum += c;
    }
    return w * (double)h->nbins;
}

qf_status qf_calib_percentile(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                              qf_err *err) {
    qf_calib_input in;
    qf_status s = qf_calib_prepare(o, opts, true, "percentile", &in, err);
    if (s != QF_OK) return s;
    if (!lo || !hi) return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate percentile: NULL output");
    if (in.absmax == 0 || in.h.width == 0) {
        *lo = *hi = 0;
        return QF_OK;
    }
    double f = in.opts.percentile / 100.0;
    double total = (double)in.h.total;
    if (in.opts.symmetric) {
        double t = quantile_abs(&in.h, f * total);
        qf_calib_store(&in, -t, t, lo, hi);
        return QF_OK;
    }
    double vlo = quantile_signed(&in.h, (1.0 - f) * total);
    double vhi = quantile_signed(&in.h, f * total);
    qf_calib_store(&in, vlo, vhi, lo, hi);
    return QF_OK;
}
