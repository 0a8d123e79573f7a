/* qconcat_s8.c - integer reference Concat of int8 tensors along one axis.
 * Inputs quantized like the output are copied; the others are requantized
 * element-wise to the output's scale and zero point. */
#include <string.h>

#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

qf_status qf_ref_concat_s8(const qf_ref_concat_params *p, int8_t *out, qf_err *err) {
    const char *who = "qf_ref_concat_s8";
    if (!p || !out || !p->inputs || p->n_inputs < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument or no inputs", who);
    if (p->outer < 0 || p->inner < 0 || !qr_scale_ok(p->out_scale) ||
        !qr_in_range(p->out_zp, -128, 127) || (p->mode != QF_RQ_FP32 && p->mode != QF_RQ_FIXED))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad outer/inner, output scale/zp or mode",
                       who);
    int64_t out_axis = 0;
    for (int32_t i = 0; i < p->n_inputs; i++) {
        const qf_ref_concat_input *in = &p->inputs[i];
        qf_ref_rescale r;
        if (in->axis_dim < 0 || (!in->data && in->axis_dim > 0) || !qr_scale_ok(in->scale) ||
            !qr_in_range(in->zp, -128, 127) ||
            qf_ref_rescale_init((double)in->scale / (double)p->out_scale, &r) != QF_OK)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input %d: bad data, extent, scale or zp",
                           who, (int)i);
        if (out_axis > INT64_MAX - in->axis_dim)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis extent overflows", who);
        out_axis += in->axis_dim;
    }
    if (p->inner != 0 && out_axis > INT64_MAX / p->inner)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes overflow", who);
    const int64_t out_block = out_axis * p->inner;
    if (p->outer != 0 && out_block > INT64_MAX / p->outer)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes overflow", who);

    int64_t at = 0; /* offset of this input's block inside one output block */
    for (int32_t i = 0; i < p->n_inputs; i++) {
        const qf_ref_concat_input *in = &p->inputs[i];
        const int64_t block = in->axis_dim * p->inner;
        const bool same = in->scale == p->out_scale && in->zp == p->out_zp;
        qf_ref_rescale r;
        qf_ref_rescale_init((double)in->scale / (double)p->out_scale, &r); /* checked above */
        for (int64_t o = 0; o < p->outer && block > 0; o++) {
            const int8_t *src = in->data + o * block;
            int8_t *dst = out + o * out_block + at;
            if (same) {
                memcpy(dst, src, (size_t)block);
                continue;
            }
            for (int64_t e = 0; e < block; e++)
                dst[e] =
                    (int8_t)qf_ref_requantize(p->mode, src[e] - in->zp, &r, p->out_zp, -128, 127);
        }
        at += block;
    }
    return QF_OK;
}
