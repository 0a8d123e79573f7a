/* qmul_s8.c - integer reference Mul of two int8 tensors with their own
 * scales and zero points (numpy broadcasting): the exact int32 product of
 * the centered inputs is requantized with M = s_a * s_b / s_out. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

qf_status qf_ref_mul_prepare(const qf_ref_eltwise_params *p, qf_ref_rescale *out_mult,
                             qf_err *err) {
    if (!p || !out_mult) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_mul_prepare: NULL");
    if (!qr_scale_ok(p->a_scale) || !qr_scale_ok(p->b_scale) || !qr_scale_ok(p->out_scale))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_mul_prepare: bad scales");
    double M = ((double)p->a_scale * (double)p->b_scale) / (double)p->out_scale;
    if (qf_ref_rescale_init(M, out_mult) != QF_OK)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_mul_prepare: multiplier %g out of range",
                       M);
    return QF_OK;
}

qf_status qf_ref_mul_s8(const qf_ref_eltwise_params *p, const int8_t *a, const int8_t *b,
                        int8_t *out, qf_err *err) {
    qr_bcast bc;
    qf_status s = qr_eltwise_init(p, a, b, out, &bc, "qf_ref_mul_s8", err);
    if (s != QF_OK) return s;
    qf_ref_rescale r;
    s = qf_ref_mul_prepare(p, &r, err);
    if (s != QF_OK) return s;
    int64_t idx[QF_MAX_DIMS] = {0}, oa = 0, ob = 0;
    for (int64_t i = 0; i < bc.total; i++) {
        int32_t acc = (a[oa] - p->a_zp) * (b[ob] - p->b_zp); /* |.| <= 255^2 */
        out[i] = (int8_t)qf_ref_requantize(p->mode, acc, &r, p->out_zp, p->act_min, p->act_max);
        qr_bcast_next(&bc, idx, &oa, &ob);
    }
    return QF_OK;
}
