/* qgemm_fast_s8.c - the shared core of the portable fast int8 kernels
 * (weight widening, the register-blocked dot-product panel) and the fully
 * connected layer built on it. Bit-identical to qf_ref_gemm_s8 (qfast.h).
 *
 * Why dot products: with both operands stored K-contiguous and K padded to a
 * multiple of QF_FAST_KBLOCK, each output is a reduction whose trip count the
 * compiler can prove to be a multiple of its vector width, so even GCC's -O2
 * "very cheap" vectorizer turns it into widening multiply-adds (pmaddwd on
 * SSE2) without a scalar tail. Two weight rows times four input rows per call
 * reuse every load for several outputs.
 */
#include "kernels/portable/qfast.h"

#include <string.h>

#include "kernels/ref/qref_util.h"

/* Rows of x repacked per band: keeps the packed band around L2 size. */
#define GEMM_BAND_BYTES ((size_t)256 << 10)

int32_t qf_fast_row_stride(int64_t k) {
    if (k < 1 || k > INT32_MAX - (QF_FAST_KBLOCK - 1)) return 0;
    return (int32_t)((k + QF_FAST_KBLOCK - 1) / QF_FAST_KBLOCK * QF_FAST_KBLOCK);
}

size_t qf_fast_weights_bytes(int64_t rows, int64_t k) {
    int32_t kp = qf_fast_row_stride(k);
    size_t n;
    if (rows < 1 || kp == 0 || (uint64_t)rows > SIZE_MAX ||
        !qf_mul_size((size_t)rows, (size_t)kp, &n))
        return 0;
    return n;
}

qf_status qf_fast_widen_weights(const uint8_t *packed, int64_t rows, int64_t k, int bits,
                                int8_t *dst, qf_fast_weights *out, qf_err *err) {
    const char *who = "qf_fast_widen_weights";
    if (!packed || !dst || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (bits != 8 && bits != 4 && bits != 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bits %d not 8, 4 or 2", who, bits);
    if (rows > INT32_MAX || k > INT32_MAX || qf_fast_weights_bytes(rows, k) == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %lld x %lld weights", who, (long long)rows,
                       (long long)k);
    const int32_t kp = qf_fast_row_stride(k);
    const size_t row_bytes = qf_ref_packed_row_bytes(k, bits);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = packed + (size_t)r * row_bytes;
        int8_t *d = dst + (size_t)r * (size_t)kp;
        for (int64_t t = 0; t < k; t++)
            d[t] = (int8_t)qf_ref_weight_get(src, t, bits);
        memset(d + k, 0, (size_t)(kp - k));
    }
    out->data = dst;
    out->zp = NULL;
    out->rows = (int32_t)rows;
    out->k = (int32_t)k;
    out->kp = kp;
    return QF_OK;
}

/* ---- micro-kernels ------------------------------------------------------ */
/* Sums modulo 2^32 in uint32: each product fits int32 (|w| <= 128, |x| <=
 * 2^15), the additions wrap like the reference's qr_wrap_add.
 * Kept out of line: GCC 12 vectorizes these reductions as separate
 * functions but gives up on them once inlined into the panel loop. */
#if defined(__GNUC__)
#define QF_FAST_NOINLINE __attribute__((noinline))
#else
#define QF_FAST_NOINLINE
#endif

QF_FAST_NOINLINE static void dot_2x4(const int8_t *a0, const int8_t *a1, const int16_t *b0,
                                     const int16_t *b1, const int16_t *b2, const int16_t *b3,
                                     size_t nblk, uint32_t c[8]) {
    const size_t n = nblk * QF_FAST_KBLOCK; /* a multiple of the block: no tail */
    uint32_t c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
    for (size_t t = 0; t < n; t++) {
        c00 += (uint32_t)(a0[t] * b0[t]);
        c01 += (uint32_t)(a0[t] * b1[t]);
        c02 += (uint32_t)(a0[t] * b2[t]);
        c03 += (uint32_t)(a0[t] * b3[t]);
        c10 += (uint32_t)(a1[t] * b0[t]);
        c11 += (uint32_t)(a1[t] * b1[t]);
        c12 += (uint32_t)(a1[t] * b2[t]);
        c13 += (uint32_t)(a1[t] * b3[t]);
    }
    c[0] = c00;
    c[1] = c01;
    c[2] = c02;
    c[3] = c03;
    c[4] = c10;
    c[5] = c11;
    c[6] = c12;
    c[7] = c13;
}

QF_FAST_NOINLINE static void dot_4x1(const int8_t *a0, const int8_t *a1, const int8_t *a2,
                                     const int8_t *a3, const int16_t *b0, size_t nblk,
                                     uint32_t c[4]) {
    const size_t n = nblk * QF_FAST_KBLOCK;
    uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (size_t t = 0; t < n; t++) {
        c0 += (uint32_t)(a0[t] * b0[t]);
        c1 += (uint32_t)(a1[t] * b0[t]);
        c2 += (uint32_t)(a2[t] * b0[t]);
        c3 += (uint32_t)(a3[t] * b0[t]);
    }
    c[0] = c0;
    c[1] = c1;
    c[2] = c2;
    c[3] = c3;
}

/* Requantize and store a tile of n_ch x n_px sums (c[ch * c_ld + px]). */
static void store_tile(const qf_fast_panel *pp, int32_t ch, int32_t n_ch, int64_t px, int32_t n_px,
                       const uint32_t *c, int32_t c_ld) {
    const qf_ref_requant *rq = pp->rq;
    for (int32_t i = 0; i < n_ch; i++) {
        const int32_t oc = pp->ch0 + ch + i;
        const uint32_t b = pp->bias ? (uint32_t)pp->bias[oc] : 0u;
        const uint32_t z = pp->zp ? (uint32_t)pp->zp[oc] : 0u;
        const qf_ref_rescale *r = qr_mult_of(rq, oc);
        int8_t *o = pp->out + (ptrdiff_t)(ch + i) * pp->ld_ch + (ptrdiff_t)px * pp->ld_px;
        for (int32_t j = 0; j < n_px; j++) {
            /* the same wrapped int32 the reference accumulates: sum x * (w - z)
             * = sum x * w - z * sum x, modulo 2^32 */
            uint32_t a = c[i * c_ld + j] + b;
            if (pp->zp) a -= z * (uint32_t)pp->xsum[px + j];
            const int32_t acc = (int32_t)a;
            o[(ptrdiff_t)j * pp->ld_px] =
                (int8_t)qf_ref_requantize(rq->mode, acc, r, rq->out_zp, rq->act_min, rq->act_max);
        }
    }
}

void qf_fast_panel_s8(const qf_fast_panel *pp) {
    const size_t kp = pp->kp, nblk = kp / QF_FAST_KBLOCK;
    const int32_t rows = pp->rows;
    const int8_t *w = pp->w;
    const int16_t *x = pp->x;
    uint32_t c[8];
    int64_t px = 0;
    /* Four input rows stay in L1 while all weight rows stream past them. */
    for (; px + 4 <= pp->npix; px += 4) {
        const int16_t *b0 = x + (size_t)px * kp;
        for (int32_t ch = 0; ch < rows; ch += 2) {
            const int8_t *a0 = w + (size_t)ch * kp;
            /* an odd last row is computed twice and stored once */
            const int8_t *a1 = ch + 1 < rows ? a0 + kp : a0;
            dot_2x4(a0, a1, b0, b0 + kp, b0 + 2 * kp, b0 + 3 * kp, nblk, c);
            store_tile(pp, ch, ch + 1 < rows ? 2 : 1, px, 4, c, 4);
        }
    }
    for (; px < pp->npix; px++) {
        const int16_t *b0 = x + (size_t)px * kp;
        for (int32_t ch = 0; ch < rows; ch += 4) {
            const int8_t *a0 = w + (size_t)ch * kp;
            const int8_t *a1 = ch + 1 < rows ? a0 + kp : a0;
            const int8_t *a2 = ch + 2 < rows ? a0 + 2 * kp : a0;
            const int8_t *a3 = ch + 3 < rows ? a0 + 3 * kp : a0;
            dot_4x1(a0, a1, a2, a3, b0, nblk, c);
            store_tile(pp, ch, rows - ch < 4 ? rows - ch : 4, px, 1, c, 1);
        }
    }
}

/* ---- fully connected ---------------------------------------------------- */

/* Sums of npix packed rows of kp values (asymmetric weights' correction). */
void qf_fast_row_sums(const int16_t *x, size_t kp, int64_t npix, int32_t *sums) {
    for (int64_t j = 0; j < npix; j++) {
        const int16_t *r = x + (size_t)j * kp;
        uint32_t s = 0; /* modulo 2^32, like every sum here */
        for (size_t t = 0; t < kp; t++)
            s += (uint32_t)(int32_t)r[t];
        sums[j] = (int32_t)s;
    }
}

/* Rows of x packed per band (each with its int32 row sum), or 0 when even
 * the smallest band is too big. */
static int64_t gemm_band_rows(int64_t m, int32_t kp) {
    const size_t row = (size_t)kp * sizeof(int16_t) + sizeof(int32_t);
    int64_t band = (int64_t)(GEMM_BAND_BYTES / row);
    if (band < 4) band = 4;
    if (band > m) band = m;
    if ((size_t)band * row > QF_FAST_SCRATCH_MAX) return 0;
    return band;
}

size_t qf_fast_gemm_s8_scratch_size(const qf_ref_gemm_params *p) {
    if (!p || p->m < 1 || p->n < 1 || p->k < 1) return 0;
    const int32_t kp = qf_fast_row_stride(p->k);
    if (kp == 0) return 0;
    int64_t band = gemm_band_rows(p->m, kp);
    return band ? (size_t)band * ((size_t)kp * sizeof(int16_t) + sizeof(int32_t)) +
                      QF_FAST_SCRATCH_ALIGN
                : 0;
}

qf_status qf_fast_gemm_s8(const qf_ref_gemm_params *p, const int8_t *x, const qf_fast_weights *w,
                          const int32_t *bias, int8_t *y, void *scratch, size_t scratch_bytes,
                          qf_err *err) {
    const char *who = "qf_fast_gemm_s8";
    if (!p || !x || !w || !w->data || !y || !scratch)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->m < 1 || p->n < 1 || p->k < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: m %d n %d k %d must be >= 1", who, (int)p->m,
                       (int)p->n, (int)p->k);
    if (w->rows != p->n || w->k != p->k || w->kp != qf_fast_row_stride(p->k))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: widened weights are %d x %d (stride %d)", who,
                       (int)w->rows, (int)w->k, (int)w->kp);
    if (!qr_in_range(p->in_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    qf_status s = qr_check_requant(&p->rq, p->n, -128, 127, who, err);
    if (s != QF_OK) return s;
    const size_t need = qf_fast_gemm_s8_scratch_size(p);
    if (need == 0 || scratch_bytes < need)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scratch of %zu bytes, need %zu", who,
                       scratch_bytes, need);

    const int32_t k = p->k, kp = w->kp;
    const int64_t band = gemm_band_rows(p->m, kp);
    const int16_t zp = (int16_t)p->in_zp;
    int16_t *xs = qf_fast_scratch_base(scratch);
    int32_t *sums = (int32_t *)(void *)(xs + (size_t)band * (size_t)kp);
    for (int64_t i0 = 0; i0 < p->m; i0 += band) {
        const int64_t nr = p->m - i0 < band ? p->m - i0 : band;
        for (int64_t r = 0; r < nr; r++) {
            const int8_t *src = x + (size_t)(i0 + r) * (size_t)k;
            int16_t *d = xs + (size_t)r * (size_t)kp;
            for (int32_t t = 0; t < k; t++)
                d[t] = (int16_t)(src[t] - zp);
            for (int32_t t = k; t < kp; t++)
                d[t] = 0;
        }
        if (w->zp) qf_fast_row_sums(xs, (size_t)kp, nr, sums);
        qf_fast_panel pp = {.w = w->data,
                            .x = xs,
                            .kp = (size_t)kp,
                            .rows = p->n,
                            .npix = nr,
                            .bias = bias,
                            .zp = w->zp,
                            .xsum = sums,
                            .ch0 = 0,
                            .rq = &p->rq,
                            .out = y + (size_t)i0 * (size_t)p->n,
                            .ld_ch = 1,
                            .ld_px = p->n};
        qf_fast_panel_s8(&pp);
    }
    return QF_OK;
}
