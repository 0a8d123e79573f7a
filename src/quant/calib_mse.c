/* calib_mse.c - the MSE calibrator: the clipping range minimizing the
 * expected squared quantization error over the observer's histogram
 * (rounding noise inside the range plus clipping error outside), found by a
 * grid search refined around the best point. The model is in calib.h. */
#include <math.h>

#include "quant/calib_internal.h"

#define MSE_REFINE 64

/* Integral of e(y)^2 from -s/2 to u, e the rounding error to the nearest
 * multiple of s (a sawtooth of period s; each period contributes s^3/12). */
static double saw_integral(double u, double s) {
    double z = u + 0.5 * s;
    double periods = floor(z / s);
    double f = z - periods * s - 0.5 * s; /* position in the current period */
    return periods * (s * s * s / 12.0) + (f * f * f + 0.125 * s * s * s) / 3.0;
}

/* Sum over one side's bins of count * mean squared error, with values
 * uniform in each bin, levels at multiples of s up to the clip point c
 * (a multiple of s, c >= 0) and everything beyond c clipped to c. */
static double side_error(const uint64_t *cnt, size_t n, double w, double s, double c) {
    double sum = 0;
    double ha = 0;
    size_t ha_bin = (size_t)-1; /* the bin whose lower edge ha belongs to */
    for (size_t k = 0; k < n; k++) {
        if (cnt[k] == 0) continue;
        double a = w * (double)k, b = a + w, e;
        if (b <= c) {
            if (ha_bin != k) ha = saw_integral(a, s);
            double hb = saw_integral(b, s);
            e = hb - ha;
            ha = hb;
            ha_bin = k + 1;
        } else if (a >= c) {
            double da = a - c, db = b - c;
            e = (db * db * db - da * da * da) / 3.0;
        } else {
            double db = b - c;
            e = (c > 0 ? saw_integral(c, s) - saw_integral(a, s) : 0) + db * db * db / 3.0;
        }
        sum += (double)cnt[k] * e;
    }
    return sum / w;
}

/* Histogram error of the range scaled by `frac` (0 < frac <= 1). */
static double range_error(const qf_calib_input *in, double lo0, double hi0, double frac,
                          double *lo_out, double *hi_out) {
    double lo = lo0 * frac, hi = hi0 * frac;
    qf_qparam qp;
    /* Cannot fail: bits are checked and the range is finite with lo <= hi. */
    if (qf_calib_qparams((float)lo, (float)hi, in->opts.bits, in->opts.symmetric, true, &qp,
                         NULL) != QF_OK)
        return INFINITY;
    double s = qp.scale;
    double cp = s * (double)(qp.qmax - qp.zero_point);
    double cn = s * (double)(qp.zero_point - qp.qmin);
    *lo_out = lo;
    *hi_out = hi;
    const qf_hist *h = &in->h;
    return side_error(h->pos, h->nbins, h->width, s, cp) +
           side_error(h->neg, h->nbins, h->width, s, cn);
}

qf_status qf_calib_mse(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                       qf_err *err) {
    qf_calib_input in;
    qf_status st = qf_calib_prepare(o, opts, true, "mse", &in, err);
    if (st != QF_OK) return st;
    if (!lo || !hi) return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate mse: NULL output");
    if (in.absmax == 0 || in.h.width == 0) {
        *lo = *hi = 0;
        return QF_OK;
    }
    double lo0, hi0;
    if (in.opts.symmetric) {
        lo0 = -in.absmax;
        hi0 = in.absmax;
    } else {
        lo0 = QF_MIN(in.st.min, 0.0);
        hi0 = QF_MAX(in.st.max, 0.0);
    }
    int grid = in.opts.mse_grid;
    double best = INFINITY, best_lo = lo0, best_hi = hi0;
    int best_k = grid;
    for (int k = 1; k <= grid; k++) {
        double l, h;
        double e = range_error(&in, lo0, hi0, (double)k / grid, &l, &h);
        if (e < best) {
            best = e;
            best_k = k;
            best_lo = l;
            best_hi = h;
        }
    }
    /* The error is smooth in the range at the histogram's resolution, so the
     * optimum lies between the grid neighbours of the best point. */
    double f0 = (double)(best_k - 1) / grid, f1 = (double)QF_MIN(best_k + 1, grid) / grid;
    for (int r = 1; r < MSE_REFINE; r++) {
        double f = f0 + (f1 - f0) * r / MSE_REFINE;
        if (f <= 0) continue;
        double l, h;
        double e = range_error(&in, lo0, hi0, f, &l, &h);
        if (e < best) {
            best = e;
            best_lo = l;
            best_hi = h;
        }
    }
    qf_calib_store(&in, best_lo, best_hi, lo, hi);
    return QF_OK;
}
