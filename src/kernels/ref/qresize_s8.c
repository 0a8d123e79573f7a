/* qresize_s8.c - integer reference Resize of the spatial axes of NCHW int8
 * (nearest: a copy; linear: bilinear on q with Q11 weights and one rounding).
 * Coordinates follow ONNX Resize (coordinate_transformation_mode,
 * nearest_mode) and are computed in double so that optimized kernels can
 * precompute the same tap tables with the public helpers below. */
#include <math.h>

#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

#define LIN_BITS 11
#define LIN_ONE (1 << LIN_BITS)

static double axis_scale(double scale, int32_t in, int32_t out) {
    return scale > 0.0 ? scale : (double)out / (double)in;
}

double qf_ref_resize_src_coord(qf_ref_resize_coord coord, int32_t o, int32_t in, int32_t out,
                               double scale) {
    const double s = axis_scale(scale, in, out);
    switch (coord) {
    case QF_COORD_PYTORCH_HALF_PIXEL: return out > 1 ? ((double)o + 0.5) / s - 0.5 : 0.0;
    case QF_COORD_ALIGN_CORNERS:
        return out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0.0;
    case QF_COORD_ASYMMETRIC: return (double)o / s;
    case QF_COORD_HALF_PIXEL:
    default: return ((double)o + 0.5) / s - 0.5;
    }
}

static int32_t clamp_index(double v, int32_t in) {
    if (!(v >= 0.0)) return 0; /* also NaN */
    if (v > (double)(in - 1)) return in - 1;
    return (int32_t)v;
}

void qf_ref_resize_linear_taps(qf_ref_resize_coord coord, int32_t o, int32_t in, int32_t out,
                               double scale, int32_t *i0, int32_t *i1, int32_t *w1) {
    double x = qf_ref_resize_src_coord(coord, o, in, out, scale);
    /* Clamping the coordinate equals ONNX's edge-padded taps for linear. */
    if (!(x >= 0.0)) x = 0.0;
    if (x > (double)(in - 1)) x = (double)(in - 1);
    const double fl = floor(x);
    *i0 = (int32_t)fl;
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *w1 = (int32_t)floor((x - fl) * LIN_ONE + 0.5); /* in [0, 2048] */
}

int32_t qf_ref_resize_nearest_index(qf_ref_resize_coord coord, qf_ref_resize_nearest nm, int32_t o,
                                    int32_t in, int32_t out, double scale) {
    const double x = qf_ref_resize_src_coord(coord, o, in, out, scale);
    double r;
    switch (nm) {
    case QF_NEAREST_FLOOR: r = floor(x); break;
    case QF_NEAREST_CEIL: r = ceil(x); break;
    case QF_NEAREST_ROUND_PREFER_CEIL: r = floor(x + 0.5); break;
    case QF_NEAREST_ROUND_PREFER_FLOOR:
    default: r = ceil(x - 0.5); break;
    }
    return clamp_index(r, in);
}

qf_status qf_ref_resize_s8(const qf_ref_resize_params *p, const int8_t *in, int8_t *out,
                           qf_err *err) {
    const char *who = "qf_ref_resize_s8";
    if (!p || !in || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->batch < 1 || p->channels < 1 || p->in_h < 1 || p->in_w < 1 || p->out_h < 1 ||
        p->out_w < 1 || !(p->scale_h <= 1e30) || !(p->scale_w <= 1e30))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad shape or scales", who);
    if (p->mode != QF_RESIZE_NEAREST && p->mode != QF_RESIZE_LINEAR)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: mode %d (only nearest and linear)", who,
                       (int)p->mode);
    if ((unsigned)p->coord > QF_COORD_ASYMMETRIC || (unsigned)p->nearest > QF_NEAREST_CEIL)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: coordinate or nearest mode", who);
    size_t n = 1;
    int32_t d[6] = {p->batch, p->channels, p->in_h, p->in_w, p->out_h, p->out_w};
    for (int i = 0; i < 6; i++)
        if (!qf_mul_size(n, (size_t)d[i], &n) || n > (size_t)INT64_MAX)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes overflow", who);

    const int64_t planes = (int64_t)p->batch * p->channels;
    for (int64_t pl = 0; pl < planes; pl++) {
        const int8_t *src = in + pl * p->in_h * p->in_w;
        int8_t *dst = out + pl * p->out_h * p->out_w;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                int8_t v;
                if (p->mode == QF_RESIZE_NEAREST) {
                    int32_t iy = qf_ref_resize_nearest_index(p->coord, p->nearest, oy, p->in_h,
                                                             p->out_h, p->scale_h);
                    int32_t ix = qf_ref_resize_nearest_index(p->coord, p->nearest, ox, p->in_w,
                                                             p->out_w, p->scale_w);
                    v = src[(int64_t)iy * p->in_w + ix];
                } else {
                    int32_t y0, y1, wy1, x0, x1, wx1;
                    qf_ref_resize_linear_taps(p->coord, oy, p->in_h, p->out_h, p->scale_h, &y0, &y1,
                                              &wy1);
                    qf_ref_resize_linear_taps(p->coord, ox, p->in_w, p->out_w, p->scale_w, &x0, &x1,
                                              &wx1);
                    const int32_t wy0 = LIN_ONE - wy1, wx0 = LIN_ONE - wx1;
                    const int8_t *r0 = src + (int64_t)y0 * p->in_w;
                    const int8_t *r1 = src + (int64_t)y1 * p->in_w;
                    /* |acc| <= 128 * 2^22 = 2^29: exact in int32 */
                    int32_t acc =
                        wy0 * (wx0 * r0[x0] + wx1 * r0[x1]) + wy1 * (wx0 * r1[x0] + wx1 * r1[x1]);
                    /* floor((acc + 2^21) / 2^22) without shifting a negative
                     * number: bias by 128 * 2^22 first. */
                    const int32_t bias = 128 * (1 << (2 * LIN_BITS));
                    v = (int8_t)(((acc + (1 << (2 * LIN_BITS - 1)) + bias) >> (2 * LIN_BITS)) -
                                 128);
                }
                dst[(int64_t)oy * p->out_w + ox] = v;
            }
        }
    }
    return QF_OK;
}
