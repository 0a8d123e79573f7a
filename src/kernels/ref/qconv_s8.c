/* qconv_s8.c - integer reference 2-D convolution (NCHW, grouped and
 * depthwise, strides, dilations, explicit pads) for int8 and int16
 * activations with 8/4/2-bit packed weights. The direct seven-loop form is
 * the specification; optimized kernels reorder freely because the int32
 * accumulation wraps (qref.h) and so is order independent. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

int32_t qf_ref_conv_out_size(int32_t in, int32_t k, int32_t stride, int32_t dil, int32_t pad_begin,
                             int32_t pad_end) {
    if (in < 1 || k < 1 || stride < 1 || dil < 1 || pad_begin < 0 || pad_end < 0) return -1;
    int64_t span = (int64_t)in + pad_begin + pad_end - (int64_t)dil * (k - 1) - 1;
    if (span < 0) return -1;
    int64_t out = span / stride + 1;
    return out > INT32_MAX ? -1 : (int32_t)out;
}

/* Activations arrive as int8 or int16; exactly one pointer of each pair is
 * set. Widening per element keeps one code path for both types. */
typedef struct conv_io {
    const int8_t *in8;
    const int16_t *in16;
    int8_t *out8;
    int16_t *out16;
} conv_io;

static bool dims_product(const int32_t *d, int n, size_t *out) {
    size_t acc = 1;
    for (int i = 0; i < n; i++)
        if (!qf_mul_size(acc, (size_t)d[i], &acc)) return false;
    *out = acc;
    return true;
}

static qf_status conv_check(const qf_ref_conv_params *p, const void *in, const uint8_t *w,
                            const void *out, int32_t tmin, int32_t tmax, const char *who,
                            qf_err *err) {
    if (!p || !in || !w || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->batch < 1 || p->in_c < 1 || p->out_c < 1 || p->groups < 1 || p->in_c % p->groups != 0 ||
        p->out_c % p->groups != 0)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: batch %d in_c %d out_c %d groups %d inconsistent", who, (int)p->batch,
                       (int)p->in_c, (int)p->out_c, (int)p->groups);
    int32_t oh =
        qf_ref_conv_out_size(p->in_h, p->k_h, p->stride_h, p->dil_h, p->pad_top, p->pad_bottom);
    int32_t ow =
        qf_ref_conv_out_size(p->in_w, p->k_w, p->stride_w, p->dil_w, p->pad_left, p->pad_right);
    if (oh < 1 || ow < 1 || oh != p->out_h || ow != p->out_w)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: output %dx%d does not match the geometry (expected %dx%d)", who,
                       (int)p->out_h, (int)p->out_w, (int)oh, (int)ow);
    if (p->w_bits != 8 && p->w_bits != 4 && p->w_bits != 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: w_bits %d not 8, 4 or 2", who, (int)p->w_bits);
    if (!qr_in_range(p->in_zp, tmin, tmax))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    int32_t din[4] = {p->batch, p->in_c, p->in_h, p->in_w};
    int32_t dout[4] = {p->batch, p->out_c, p->out_h, p->out_w};
    int32_t dk[3] = {p->in_c / p->groups, p->k_h, p->k_w};
    size_t n_in, n_out, k;
    if (!dims_product(din, 4, &n_in) || !dims_product(dout, 4, &n_out) ||
        !dims_product(dk, 3, &k) || n_in > (size_t)INT64_MAX || n_out > (size_t)INT64_MAX)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: tensor sizes overflow", who);
    if (p->w_zp) {
        int32_t half = 1 << (p->w_bits - 1);
        for (int32_t c = 0; c < p->out_c; c++)
            if (p->w_zp[c] < -half || p->w_zp[c] >= half)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: w_zp[%d] = %d outside %d-bit range",
                               who, (int)c, (int)p->w_zp[c], (int)p->w_bits);
    }
    return qr_check_requant(&p->rq, p->out_c, tmin, tmax, who, err);
}

static void conv_run(const qf_ref_conv_params *p, const conv_io *io, const uint8_t *w,
                     const int32_t *bias) {
    const int64_t cpg = p->in_c / p->groups;  /* input channels per group */
    const int64_t opg = p->out_c / p->groups; /* output channels per group */
    const int64_t kk = cpg * p->k_h * p->k_w;
    const size_t row_bytes = qf_ref_packed_row_bytes(kk, p->w_bits);
    const int32_t zp = p->in_zp;
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t oc = 0; oc < p->out_c; oc++) {
            const int64_t ic0 = (oc / opg) * cpg;
            const uint8_t *row = w + (size_t)oc * row_bytes;
            const qf_ref_rescale *r = qr_mult_of(&p->rq, oc);
            const int32_t wz = p->w_zp ? p->w_zp[oc] : 0;
            for (int64_t oy = 0; oy < p->out_h; oy++) {
                for (int64_t ox = 0; ox < p->out_w; ox++) {
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int64_t ic = 0; ic < cpg; ic++) {
                        const int64_t plane = ((b * p->in_c) + ic0 + ic) * p->in_h;
                        for (int64_t ky = 0; ky < p->k_h; ky++) {
                            const int64_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                            for (int64_t kx = 0; kx < p->k_w; kx++) {
                                const int64_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                                /* A padded tap reads in_zp: (zp - zp) * w = 0. */
                                if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) continue;
                                const int64_t at = (plane + iy) * p->in_w + ix;
                                int32_t x = (io->in8 ? io->in8[at] : io->in16[at]) - zp;
                                int32_t wv = qf_ref_weight_get(
                                                 row, (ic * p->k_h + ky) * p->k_w + kx, p->w_bits) -
                                             wz;
                                acc = qr_wrap_add(acc, x * wv);
                            }
                        }
                    }
                    int32_t q = qf_ref_requantize(p->rq.mode, acc, r, p->rq.out_zp, p->rq.act_min,
                                                  p->rq.act_max);
                    const int64_t at = ((b * p->out_c + oc) * p->out_h + oy) * p->out_w + ox;
                    if (io->out8)
                        io->out8[at] = (int8_t)q;
                    else
                        io->out16[at] = (int16_t)q;
                }
            }
        }
    }
}

qf_status qf_ref_conv2d_s8(const qf_ref_conv_params *p, const int8_t *in, const uint8_t *w,
                           const int32_t *bias, int8_t *out, qf_err *err) {
    qf_status s = conv_check(p, in, w, out, -128, 127, "qf_ref_conv2d_s8", err);
    if (s != QF_OK) return s;
    conv_io io = {.in8 = in, .out8 = out};
    conv_run(p, &io, w, bias);
    return QF_OK;
}

qf_status qf_ref_conv2d_s16(const qf_ref_conv_params *p, const int16_t *in, const uint8_t *w,
                            const int32_t *bias, int16_t *out, qf_err *err) {
    qf_status s = conv_check(p, in, w, out, -32768, 32767, "qf_ref_conv2d_s16", err);
    if (s != QF_OK) return s;
    conv_io io = {.in16 = in, .out16 = out};
    conv_run(p, &io, w, bias);
    return QF_OK;
}
