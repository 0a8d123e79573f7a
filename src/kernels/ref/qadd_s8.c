/* qadd_s8.c - integer reference Add of two int8 tensors with their own
 * scales and zero points (numpy broadcasting), TFLite style: both inputs are
 * brought to a common scale, summed and requantized to the output scale.
 * The exact float (FP32 mode) and fixed-point (FIXED mode) pipelines are
 * specified in qref.h next to qf_ref_add_prepare. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

/* TFLite uses 20 for 8-bit inputs: (q - z) * 2^20 needs 9 + 20 bits, leaving
 * headroom in int32 for the sum of two rescaled terms. */
#define QADD_LEFT_SHIFT 20

qf_status qf_ref_add_prepare(const qf_ref_eltwise_params *p, qf_ref_add_derived *d, qf_err *err) {
    if (!p || !d) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_add_prepare: NULL argument");
    if (!qr_scale_ok(p->a_scale) || !qr_scale_ok(p->b_scale) || !qr_scale_ok(p->out_scale))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_add_prepare: bad scales");
    const double sa = p->a_scale, sb = p->b_scale, so = p->out_scale;
    d->left_shift = QADD_LEFT_SHIFT;
    d->a_mult_f = (float)(sa / so);
    d->b_mult_f = (float)(sb / so);
    const double twice_max = 2.0 * (sa > sb ? sa : sb);
    if (qf_ref_rescale_init(sa / twice_max, &d->a_mult) != QF_OK ||
        qf_ref_rescale_init(sb / twice_max, &d->b_mult) != QF_OK ||
        qf_ref_rescale_init(twice_max / ((double)(1 << QADD_LEFT_SHIFT) * so), &d->out_mult) !=
            QF_OK)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "qf_ref_add_prepare: scale ratio out of range (%g, %g -> %g)", sa, sb, so);
    return QF_OK;
}

static int32_t add_fp32(const qf_ref_eltwise_params *p, const qf_ref_add_derived *d, int32_t qa,
                        int32_t qb) {
    /* Each binary32 product is formed as an exact double product (9 x 24
     * bits) rounded once to float - the same value as a float multiply - so
     * there is no float a*b+c left for -ffp-contract=fast to fuse into an
     * FMA, whatever the compiler's defaults. */
    float fa = (float)((double)(qa - p->a_zp) * (double)d->a_mult_f);
    float fb = (float)((double)(qb - p->b_zp) * (double)d->b_mult_f);
    float s = fa + fb;
    float lo = (float)(p->act_min - p->out_zp), hi = (float)(p->act_max - p->out_zp);
    if (s < lo) s = lo;
    if (s > hi) s = hi;
    return (int32_t)qf_ref_round_half_even_f(s) + p->out_zp;
}

static int32_t add_fixed(const qf_ref_eltwise_params *p, const qf_ref_add_derived *d, int32_t qa,
                         int32_t qb) {
    int32_t xa = (qa - p->a_zp) * (1 << d->left_shift); /* |.| <= 255 * 2^20 */
    int32_t xb = (qb - p->b_zp) * (1 << d->left_shift);
    int32_t sa = qf_ref_mul_by_qmult(xa, d->a_mult.mult_q, d->a_mult.shift);
    int32_t sb = qf_ref_mul_by_qmult(xb, d->b_mult.mult_q, d->b_mult.shift);
    return qf_ref_requant_fixed(sa + sb, d->out_mult.mult_q, d->out_mult.shift, p->out_zp,
                                p->act_min, p->act_max);
}

qf_status qf_ref_add_s8(const qf_ref_eltwise_params *p, const int8_t *a, const int8_t *b,
                        int8_t *out, qf_err *err) {
    qr_bcast bc;
    qf_status s = qr_eltwise_init(p, a, b, out, &bc, "qf_ref_add_s8", err);
    if (s != QF_OK) return s;
    qf_ref_add_derived d;
    s = qf_ref_add_prepare(p, &d, err);
    if (s != QF_OK) return s;
    int64_t idx[QF_MAX_DIMS] = {0}, oa = 0, ob = 0;
    for (int64_t i = 0; i < bc.total; i++) {
        int32_t qa = a[oa], qb = b[ob];
        out[i] =
            (int8_t)(p->mode == QF_RQ_FIXED ? add_fixed(p, &d, qa, qb) : add_fp32(p, &d, qa, qb));
        qr_bcast_next(&bc, idx, &oa, &ob);
    }
    return QF_OK;
}
