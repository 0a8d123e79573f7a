/* qref_util.h - small private helpers shared by the integer reference
 * kernels (qref.h): wrapping int32 accumulation, clamps, parameter checks. */
#ifndef QF_KERNELS_REF_QREF_UTIL_H
#define QF_KERNELS_REF_QREF_UTIL_H

#include "kernels/ref/qref.h"

/* int32 addition modulo 2^32. The specification says accumulators wrap (as
 * vpaddd does) instead of leaving signed overflow undefined, so a kernel
 * result never depends on the compiler or the order of the terms. */
static inline int32_t qr_wrap_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t qr_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline bool qr_in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

/* Scale usable by the kernels: positive and finite. */
static inline bool qr_scale_ok(float s) { return s > 0.0f && s <= 3.4e38f; }

/* Validate a requant stage for `channels` output channels whose values live
 * in [tmin, tmax]. `who` names the kernel in the message. */
static inline qf_status qr_check_requant(const qf_ref_requant *rq, int32_t channels, int32_t tmin,
                                         int32_t tmax, const char *who, qf_err *err) {
    if (rq->mode != QF_RQ_FP32 && rq->mode != QF_RQ_FIXED)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad requant mode %d", who, (int)rq->mode);
    if (!rq->mult || (rq->n_mult != 1 && rq->n_mult != channels))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: n_mult %d must be 1 or %d (and mult set)", who,
                       (int)rq->n_mult, (int)channels);
    if (!qr_in_range(rq->out_zp, tmin, tmax) || !qr_in_range(rq->act_min, tmin, tmax) ||
        !qr_in_range(rq->act_max, tmin, tmax) || rq->act_min > rq->act_max)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: out_zp %d / act_min %d / act_max %d outside [%d, %d] or unordered", who,
                       (int)rq->out_zp, (int)rq->act_min, (int)rq->act_max, (int)tmin, (int)tmax);
    for (int32_t c = 0; c < rq->n_mult; c++) {
        const qf_ref_rescale *r = &rq->mult[c];
        if (!(r->mult_f >= 0.0f && r->mult_f <= 3.4e38f) || r->mult_q < 0 || r->shift < -62 ||
            r->shift > 31)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad multiplier for channel %d", who,
                           (int)c);
    }
    return QF_OK;
}

static inline const qf_ref_rescale *qr_mult_of(const qf_ref_requant *rq, int64_t c) {
    return &rq->mult[rq->n_mult == 1 ? 0 : c];
}

/* ---- numpy broadcasting for the binary element-wise kernels --------------- */

typedef struct qr_bcast {
    int32_t rank;
    int64_t dims[QF_MAX_DIMS];
    int64_t sa[QF_MAX_DIMS], sb[QF_MAX_DIMS]; /* element strides; 0 = repeated */
    int64_t total;                            /* output elements */
} qr_bcast;

/* Validate an eltwise parameter block (shapes, scales, zero points, bounds)
 * and plan the broadcast. */
static inline qf_status qr_eltwise_init(const qf_ref_eltwise_params *p, const void *a,
                                        const void *b, const void *out, qr_bcast *bc,
                                        const char *who, qf_err *err) {
    if (!p || !a || !b || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->rank < 0 || p->rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: rank %d", who, (int)p->rank);
    if (p->mode != QF_RQ_FP32 && p->mode != QF_RQ_FIXED)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad requant mode", who);
    if (!qr_scale_ok(p->a_scale) || !qr_scale_ok(p->b_scale) || !qr_scale_ok(p->out_scale))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scales must be positive and finite", who);
    if (!qr_in_range(p->a_zp, -128, 127) || !qr_in_range(p->b_zp, -128, 127) ||
        !qr_in_range(p->out_zp, -128, 127) || !qr_in_range(p->act_min, -128, 127) ||
        !qr_in_range(p->act_max, -128, 127) || p->act_min > p->act_max)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: zero point or activation bound out of range",
                       who);
    bc->rank = p->rank;
    int64_t total = 1, stride_a = 1, stride_b = 1;
    for (int32_t i = p->rank - 1; i >= 0; i--) {
        int64_t d = p->out_dims[i], da = p->a_dims[i], db = p->b_dims[i];
        if (d < 0 || (da != d && da != 1) || (db != d && db != 1))
            return qf_errf(err, QF_ERR_SHAPE, "%s: dim %d: a %lld, b %lld do not broadcast to %lld",
                           who, (int)i, (long long)da, (long long)db, (long long)d);
        bc->dims[i] = d;
        bc->sa[i] = da == d ? stride_a : 0;
        bc->sb[i] = db == d ? stride_b : 0;
        stride_a *= da;
        stride_b *= db;
        if (d != 0 && total > INT64_MAX / d)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: element count overflows", who);
        total *= d;
    }
    bc->total = total;
    return QF_OK;
}

/* Odometer over the output: advances idx and the operand offsets by one
 * output element (row-major). */
static inline void qr_bcast_next(const qr_bcast *bc, int64_t *idx, int64_t *oa, int64_t *ob) {
    for (int32_t d = bc->rank - 1; d >= 0; d--) {
        *oa += bc->sa[d];
        *ob += bc->sb[d];
        if (++idx[d] < bc->dims[d]) return;
        *oa -= bc->sa[d] * bc->dims[d];
        *ob -= bc->sb[d] * bc->dims[d];
        idx[d] = 0;
    }
}

#endif /* QF_KERNELS_REF_QREF_UTIL_H */
