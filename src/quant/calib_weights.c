/* calib_weights.c - symmetric per-channel (or per-tensor) weight scales from
 * the weight values: max |w| or the exact minimum-MSE clipping threshold,
 * which sub-8-bit weights need to stay close to float accuracy. */
#include <math.h>

#include "kernels/ref/qref.h"
#include "quant/calib.h"

#define W_GRID 100
#define W_REFINE 50

typedef struct wchan {
    const float *x;
    size_t outer, channels, inner, c;
} wchan;

static float scale_for(double t, int bits) {
    qf_qparam qp;
    if (qf_calib_qparams((float)-t, (float)t, bits, true, true, &qp, NULL) != QF_OK) return 1.0f;
    return qp.scale;
}

/* Sum of squared errors of quantize/dequantize with scale s, exactly as the
 * reference kernels do it (one float division, round half even, clamp; one
 * float multiply back). */
static double chan_sse(const wchan *w, float s, int32_t qr) {
    double sum = 0;
    for (size_t a = 0; a < w->outer; a++) {
        const float *p = w->x + (a * w->channels + w->c) * w->inner;
        for (size_t i = 0; i < w->inner; i++) {
            int32_t q = qf_ref_quantize_one(p[i], s, 0, -qr, qr);
            double d = (double)p[i] - (double)(s * (float)q);
            sum += d * d;
        }
    }
    return sum;
}

static float chan_mse_scale(const wchan *w, double absmax, int bits) {
    int32_t qr = ((int32_t)1 << (bits - 1)) - 1;
    double best = INFINITY;
    float best_s = scale_for(absmax, bits);
    int best_k = W_GRID;
    for (int k = 1; k <= W_GRID; k++) {
        float s = scale_for(absmax * k / W_GRID, bits);
        double e = chan_sse(w, s, qr);
        if (e < best) {
            best = e;
            best_s = s;
            best_k = k;
        }
    }
    double t0 = absmax * (best_k - 1) / W_GRID, t1 = absmax * QF_MIN(best_k + 1, W_GRID) / W_GRID;
    for (int r = 1; r < W_REFINE; r++) {
        double t = t0 + (t1 - t0) * r / W_REFINE;
        if (t <= 0) continue;
        float s = scale_for(t, bits);
        double e = chan_sse(w, s, qr);
        if (e < best) {
            best = e;
            best_s = s;
        }
    }
    return best_s;
}

qf_status qf_calib_weight_scales(const qf_tensor *w, int axis, int bits, qf_calib_method method,
                                 float *scales, qf_err *err) {
    if (!w || !scales) return qf_errf(err, QF_ERR_INVALID_ARG, "weight scales: NULL argument");
    if (w->dtype != QF_DT_F32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "weight scales: dtype %s, want float32",
                       qf_dtype_name(w->dtype));
    if (bits < 2 || bits > 8)
        return qf_errf(err, QF_ERR_INVALID_ARG, "weight scales: bits %d not in [2, 8]", bits);
    if (method != QF_CALIB_MINMAX && method != QF_CALIB_MSE)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "weight scales: method '%s' not supported (valid: minmax, mse)",
                       qf_calib_method_name(method));
    if (w->rank < 0 || w->rank > QF_MAX_DIMS || axis >= w->rank)
        return qf_errf(err, QF_ERR_SHAPE, "weight scales: axis %d, rank %d", axis, w->rank);
    size_t n = 1;
    for (int d = 0; d < w->rank; d++) {
        if (w->dims[d] < 0 || !qf_mul_size(n, (size_t)w->dims[d], &n))
            return qf_errf(err, QF_ERR_SHAPE, "weight scales: bad dims");
    }
    if (n > 0 && !w->data) return qf_errf(err, QF_ERR_INVALID_ARG, "weight scales: NULL data");
    wchan ch = {.x = w->data, .outer = 1, .channels = 1, .inner = n, .c = 0};
    if (axis >= 0) {
        ch.channels = (size_t)w->dims[axis];
        ch.inner = 1;
        for (int d = 0; d < axis; d++)
            ch.outer *= (size_t)w->dims[d];
        for (int d = axis + 1; d < w->rank; d++)
            ch.inner *= (size_t)w->dims[d];
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ch.x[i]))
            return qf_errf(err, QF_ERR_INVALID_ARG, "weight scales: non-finite weight at %zu", i);
    }
    for (size_t c = 0; c < ch.channels; c++) {
        ch.c = c;
        double m = 0;
        for (size_t a = 0; a < ch.outer; a++) {
            const float *p = ch.x + (a * ch.channels + c) * ch.inner;
            for (size_t i = 0; i < ch.inner; i++)
                m = QF_MAX(m, fabs((double)p[i]));
        }
        if (m == 0)
            scales[c] = 1.0f;
        else if (method == QF_CALIB_MINMAX)
            scales[c] = scale_for(m, bits);
        else
            scales[c] = chan_mse_scale(&ch, m, bits);
    }
    return QF_OK;
}
