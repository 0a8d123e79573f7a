/* qgemm_s8.c - integer reference fully-connected layer (y = x W^T + b with
 * per-output-channel requantization, int8 or int16 activations, 8/4/2-bit
 * packed weights) and QLinearMatMul-style matmul of two asymmetric int8
 * operands. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

typedef struct gemm_io {
    const int8_t *x8;
    const int16_t *x16;
    int8_t *y8;
    int16_t *y16;
} gemm_io;

static qf_status gemm_check(const qf_ref_gemm_params *p, const void *x, const uint8_t *w,
                            const void *y, int32_t tmin, int32_t tmax, const char *who,
                            qf_err *err) {
    if (!p || !x || !w || !y) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->m < 1 || p->n < 1 || p->k < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: m %d n %d k %d must be >= 1", who, (int)p->m,
                       (int)p->n, (int)p->k);
    if (p->w_bits != 8 && p->w_bits != 4 && p->w_bits != 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: w_bits %d not 8, 4 or 2", who, (int)p->w_bits);
    if (!qr_in_range(p->in_zp, tmin, tmax))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    if (p->w_zp) {
        int32_t half = 1 << (p->w_bits - 1);
        for (int32_t c = 0; c < p->n; c++)
            if (p->w_zp[c] < -half || p->w_zp[c] >= half)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: w_zp[%d] = %d outside %d-bit range",
                               who, (int)c, (int)p->w_zp[c], (int)p->w_bits);
    }
    return qr_check_requant(&p->rq, p->n, tmin, tmax, who, err);
}

static void gemm_run(const qf_ref_gemm_params *p, const gemm_io *io, const uint8_t *w,
                     const int32_t *bias) {
    const size_t row_bytes = qf_ref_packed_row_bytes(p->k, p->w_bits);
    for (int64_t i = 0; i < p->m; i++) {
        for (int64_t j = 0; j < p->n; j++) {
            const uint8_t *row = w + (size_t)j * row_bytes;
            const int32_t wz = p->w_zp ? p->w_zp[j] : 0;
            int32_t acc = bias ? bias[j] : 0;
            for (int64_t t = 0; t < p->k; t++) {
                const int64_t at = i * p->k + t;
                int32_t x = (io->x8 ? io->x8[at] : io->x16[at]) - p->in_zp;
                acc = qr_wrap_add(acc, x * (qf_ref_weight_get(row, t, p->w_bits) - wz));
            }
            int32_t q = qf_ref_requantize(p->rq.mode, acc, qr_mult_of(&p->rq, j), p->rq.out_zp,
                                          p->rq.act_min, p->rq.act_max);
            if (io->y8)
                io->y8[i * p->n + j] = (int8_t)q;
            else
                io->y16[i * p->n + j] = (int16_t)q;
        }
    }
}

qf_status qf_ref_gemm_s8(const qf_ref_gemm_params *p, const int8_t *x, const uint8_t *w,
                         const int32_t *bias, int8_t *y, qf_err *err) {
    qf_status s = gemm_check(p, x, w, y, -128, 127, "qf_ref_gemm_s8", err);
    if (s != QF_OK) return s;
    gemm_io io = {.x8 = x, .y8 = y};
    gemm_run(p, &io, w, bias);
    return QF_OK;
}

qf_status qf_ref_gemm_s16(const qf_ref_gemm_params *p, const int16_t *x, const uint8_t *w,
                          const int32_t *bias, int16_t *y, qf_err *err) {
    qf_status s = gemm_check(p, x, w, y, -32768, 32767, "qf_ref_gemm_s16", err);
    if (s != QF_OK) return s;
    gemm_io io = {.x16 = x, .y16 = y};
    gemm_run(p, &io, w, bias);
    return QF_OK;
}

qf_status qf_ref_matmul_s8(const qf_ref_matmul_params *p, const int8_t *a, const int8_t *b,
                           int8_t *out, qf_err *err) {
    const char *who = "qf_ref_matmul_s8";
    if (!p || !a || !b || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->batch < 1 || p->m < 1 || p->k < 1 || p->n < 1 ||
        (p->b_batched != 0 && p->b_batched != 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: batch %d m %d k %d n %d b_batched %d", who,
                       (int)p->batch, (int)p->m, (int)p->k, (int)p->n, (int)p->b_batched);
    if (!qr_in_range(p->a_zp, -128, 127) || !qr_in_range(p->b_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: zero points %d/%d out of range", who,
                       (int)p->a_zp, (int)p->b_zp);
    qf_status s = qr_check_requant(&p->rq, p->n, -128, 127, who, err);
    if (s != QF_OK) return s;
    for (int64_t bt = 0; bt < p->batch; bt++) {
        const int8_t *ab = a + bt * p->m * p->k;
        const int8_t *bb = b + (p->b_batched ? bt * p->k * p->n : 0);
        int8_t *ob = out + bt * p->m * p->n;
        for (int64_t i = 0; i < p->m; i++) {
            for (int64_t j = 0; j < p->n; j++) {
                int32_t acc = 0;
                for (int64_t t = 0; t < p->k; t++) {
                    int32_t x = ab[i * p->k + t] - p->a_zp;
                    int32_t y = bb[t * p->n + j] - p->b_zp;
                    acc = qr_wrap_add(acc, x * y);
                }
                ob[i * p->n + j] =
                    (int8_t)qf_ref_requantize(p->rq.mode, acc, qr_mult_of(&p->rq, j), p->rq.out_zp,
                                              p->rq.act_min, p->rq.act_max);
            }
        }
    }
    return QF_OK;
}
