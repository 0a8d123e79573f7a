/* calib_qparams.c - clipping range -> (scale, zero point) by the rules of
 * DESIGN.md "Numerics" (asymmetric with zero exactly representable;
 * symmetric in the restricted range). */
#include <float.h>
#include <math.h>

#include "kernels/ref/qref.h"
#include "quant/calib.h"

/* A scale from its exact value: 0 only for an all-zero range (any scale
 * represents it; 1 keeps later multipliers well scaled); denormal scales are
 * raised to FLT_MIN so that x / scale cannot overflow for |x| <= range. */
static float scale_from(double v) {
    if (v == 0) return 1.0f;
    float s = (float)v;
    return s < FLT_MIN ? FLT_MIN : s;
}

qf_status qf_calib_qparams(float lo, float hi, int bits, bool symmetric, bool is_signed,
                           qf_qparam *out, qf_err *err) {
    if (!out) return qf_errf(err, QF_ERR_INVALID_ARG, "qparams: NULL output");
    if (bits < 2 || bits > 16)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qparams: bits %d not in [2, 16]", bits);
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qparams: bad range [%g, %g]", (double)lo,
                       (double)hi);
    double l = QF_MIN((double)lo, 0.0), h = QF_MAX((double)hi, 0.0);
    int32_t half = (int32_t)1 << (bits - 1);
    if (symmetric) {
        int32_t qr = half - 1;
        int32_t zp = is_signed ? 0 : half;
        out->scale = scale_from(QF_MAX(-l, h) / qr);
        out->zero_point = zp;
        out->qmin = zp - qr;
        out->qmax = zp + qr;
        return QF_OK;
    }
    int32_t qmin = is_signed ? -half : 0;
    int32_t qmax = is_signed ? half - 1 : 2 * half - 1;
    float s = scale_from((h - l) / (double)(qmax - qmin));
    /* lo / s is at most qmax - qmin in magnitude (s >= (h - l) / range up to
     * the float rounding), so the conversion below is in range. */
    double z = qf_ref_round_half_even_d((double)qmin - l / (double)s);
    z = QF_MIN(QF_MAX(z, (double)qmin), (double)qmax);
    out->scale = s;
    out->zero_point = (int32_t)z;
    out->qmin = qmin;
    out->qmax = qmax;
    return QF_OK;
}
