/* qpool_s8.c - integer reference pooling over NCHW int8: max pool (on q
 * directly, output keeps the input's quantization), average pool (sum of
 * centered values requantized by in_scale / (out_scale * count)) and global
 * average pool. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

qf_status qf_ref_avgpool_rescale(float in_scale, float out_scale, int64_t count,
                                 qf_ref_rescale *r) {
    if (count < 1 || !qr_scale_ok(in_scale) || !qr_scale_ok(out_scale) || !r)
        return QF_ERR_INVALID_ARG;
    return qf_ref_rescale_init((double)in_scale / ((double)out_scale * (double)count), r);
}

static qf_status pool_check(const qf_ref_pool_params *p, const int8_t *in, const int8_t *out,
                            bool global, bool avg, const char *who, qf_err *err) {
    if (!p || !in || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->batch < 1 || p->channels < 1 || p->in_h < 1 || p->in_w < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad input shape", who);
    if (!global) {
        if (p->out_h < 1 || p->out_w < 1 || p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 ||
            p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0 ||
            p->pad_bottom < 0 || p->pad_right < 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad window geometry", who);
    }
    if (!qr_in_range(p->in_zp, -128, 127) || !qr_in_range(p->out_zp, -128, 127) ||
        !qr_in_range(p->act_min, -128, 127) || !qr_in_range(p->act_max, -128, 127) ||
        p->act_min > p->act_max)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: zero point or bounds out of range", who);
    if (avg) {
        if (p->mode != QF_RQ_FP32 && p->mode != QF_RQ_FIXED)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad requant mode", who);
        if (!qr_scale_ok(p->in_scale) || !qr_scale_ok(p->out_scale))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad scales", who);
        qf_ref_rescale r;
        if (qf_ref_avgpool_rescale(p->in_scale, p->out_scale, 1, &r) != QF_OK)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scale ratio out of range", who);
    }
    size_t n = 1;
    int32_t d[6] = {p->batch, p->channels,           p->in_h,
                    p->in_w,  global ? 1 : p->out_h, global ? 1 : p->out_w};
    for (int i = 0; i < 6; i++)
        if (!qf_mul_size(n, (size_t)d[i], &n) || n > (size_t)INT64_MAX)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes overflow", who);
    return QF_OK;
}

/* One window of one plane: the max of the valid taps, or the centered sum and
 * the tap count for the average. */
typedef struct pool_acc {
    int32_t max;
    int32_t sum;
    int64_t valid;  /* taps inside the input */
    int64_t in_pad; /* taps inside the padded extent */
} pool_acc;

static pool_acc pool_window(const qf_ref_pool_params *p, const int8_t *plane, int64_t oy,
                            int64_t ox) {
    pool_acc a = {.max = INT32_MIN};
    for (int64_t ky = 0; ky < p->k_h; ky++) {
        const int64_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
        const bool y_in = iy >= 0 && iy < p->in_h;
        const bool y_pad = iy >= -p->pad_top && iy < (int64_t)p->in_h + p->pad_bottom;
        for (int64_t kx = 0; kx < p->k_w; kx++) {
            const int64_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
            const bool x_in = ix >= 0 && ix < p->in_w;
            const bool x_pad = ix >= -p->pad_left && ix < (int64_t)p->in_w + p->pad_right;
            if (y_pad && x_pad) a.in_pad++;
            if (!y_in || !x_in) continue;
            int32_t q = plane[iy * p->in_w + ix];
            if (q > a.max) a.max = q;
            a.sum += q - p->in_zp; /* |sum| <= 255 * taps, checked by the caller's geometry */
            a.valid++;
        }
    }
    return a;
}

qf_status qf_ref_maxpool_s8(const qf_ref_pool_params *p, const int8_t *in, int8_t *out,
                            qf_err *err) {
    qf_status s = pool_check(p, in, out, false, false, "qf_ref_maxpool_s8", err);
    if (s != QF_OK) return s;
    const int64_t planes = (int64_t)p->batch * p->channels;
    for (int64_t pl = 0; pl < planes; pl++) {
        const int8_t *plane = in + pl * p->in_h * p->in_w;
        int8_t *o = out + pl * p->out_h * p->out_w;
        for (int64_t oy = 0; oy < p->out_h; oy++)
            for (int64_t ox = 0; ox < p->out_w; ox++) {
                pool_acc a = pool_window(p, plane, oy, ox);
                int32_t v = a.valid ? qr_clamp(a.max, p->act_min, p->act_max) : p->act_min;
                o[oy * p->out_w + ox] = (int8_t)v;
            }
    }
    return QF_OK;
}

qf_status qf_ref_avgpool_s8(const qf_ref_pool_params *p, const int8_t *in, int8_t *out,
                            qf_err *err) {
    qf_status s = pool_check(p, in, out, false, true, "qf_ref_avgpool_s8", err);
    if (s != QF_OK) return s;
    if ((int64_t)p->k_h * p->k_w > (int64_t)(INT32_MAX / 255))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_avgpool_s8: window too large");
    const int64_t planes = (int64_t)p->batch * p->channels;
    for (int64_t pl = 0; pl < planes; pl++) {
        const int8_t *plane = in + pl * p->in_h * p->in_w;
        int8_t *o = out + pl * p->out_h * p->out_w;
        for (int64_t oy = 0; oy < p->out_h; oy++)
            for (int64_t ox = 0; ox < p->out_w; ox++) {
                pool_acc a = pool_window(p, plane, oy, ox);
                int64_t count = p->count_include_pad ? a.in_pad : a.valid;
                int32_t v = qr_clamp(p->out_zp, p->act_min, p->act_max);
                qf_ref_rescale r;
                if (count > 0 &&
                    qf_ref_avgpool_rescale(p->in_scale, p->out_scale, count, &r) == QF_OK)
                    v = qf_ref_requantize(p->mode, a.sum, &r, p->out_zp, p->act_min, p->act_max);
                o[oy * p->out_w + ox] = (int8_t)v;
            }
    }
    return QF_OK;
}

qf_status qf_ref_global_avgpool_s8(const qf_ref_pool_params *p, const int8_t *in, int8_t *out,
                                   qf_err *err) {
    qf_status s = pool_check(p, in, out, true, true, "qf_ref_global_avgpool_s8", err);
    if (s != QF_OK) return s;
    const int64_t hw = (int64_t)p->in_h * p->in_w;
    if (hw > (int64_t)(INT32_MAX / 255))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_global_avgpool_s8: plane too large");
    qf_ref_rescale r;
    if (qf_ref_avgpool_rescale(p->in_scale, p->out_scale, hw, &r) != QF_OK)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_global_avgpool_s8: scale out of range");
    const int64_t planes = (int64_t)p->batch * p->channels;
    for (int64_t pl = 0; pl < planes; pl++) {
        const int8_t *plane = in + pl * hw;
        int32_t sum = 0;
        for (int64_t i = 0; i < hw; i++)
            sum += plane[i] - p->in_zp;
        out[pl] = (int8_t)qf_ref_requantize(p->mode, sum, &r, p->out_zp, p->act_min, p->act_max);
    }
    return QF_OK;
}
