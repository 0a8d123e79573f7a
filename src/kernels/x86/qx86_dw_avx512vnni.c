/* qx86_dw_avx512vnni.c - depthwise 3x3 / 5x5 int8 convolution (stride 1 or
 * 2) with AVX-512 VNNI, bit-identical to qf_ref_conv2d_s8 (qx86.h).
 *
 * NCHW, one task per (image, channel) plane, no scratch. The plane is
 * walked in blocks of DW_ROWS output rows x 16 output pixels. For each input
 * row the block touches, 64 bytes are loaded once (masked: the bytes outside
 * the row read the zero point), flipped to u8 (q + 128), and for each group
 * of 4 taps vpermd + vpshufb put the 4 bytes pixel p needs (p * stride +
 * tap) into its 32-bit lane. That gathered vector then feeds, with vpdpbusd,
 * every output row of the block whose window covers the input row (up to 3
 * for 3x3 stride 1), each with its own broadcast weights: loads and
 * permutes per output drop by about the reuse factor, and the block's rows
 * are independent accumulator chains. Input rows outside the image are a
 * vector of (128 + z) bytes, so a padded tap adds (128 + z) * w, which the
 * per-channel correction -(128 + z) * sum(w) cancels: it contributes 0, as
 * in the reference. Rows of the last block past out_h are computed from
 * such rows and not stored. Kernel size and stride are compile-time
 * constants of four inlined instances, so the row and tap loops unroll and
 * the accumulators stay in registers. Epilogues: qx86_avx512_rq.h. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INL __attribute__((always_inline)) inline

#include "kernels/x86/qx86_avx512_rq.h"

/* Output rows per block: 4 gives 3x3 stride 1 a reuse of 12 dot products
 * per 6 gathered rows while 4 accumulators + up to 10 weight vectors + the
 * constants still fit the 32 zmm registers. */
#define DW_ROWS 4

bool qf_x86_dwconv_supported(const qf_ref_conv_params *p) {
    if (!p || p->batch < 1 || p->in_c < 1 || p->groups != p->in_c || p->out_c != p->in_c ||
        p->k_h != p->k_w || (p->k_h != 3 && p->k_h != 5) || p->stride_h != p->stride_w ||
        (p->stride_h != 1 && p->stride_h != 2) || p->dil_h != 1 || p->dil_w != 1 ||
        p->in_h < 1 || p->in_w < 1)
        return false;
    int32_t oh =
        qf_ref_conv_out_size(p->in_h, p->k_h, p->stride_h, p->dil_h, p->pad_top, p->pad_bottom);
    int32_t ow =
        qf_ref_conv_out_size(p->in_w, p->k_w, p->stride_w, p->dil_w, p->pad_left, p->pad_right);
    return oh >= 1 && ow >= 1 && oh == p->out_h && ow == p->out_w;
}

typedef struct dw_job {
    const qf_ref_conv_params *p;
    const qf_x86_weights *w;
    const int32_t *bias;
    const int8_t *in;
    int8_t *out;
} dw_job;

static inline int32_t load32(const void *q) {
    int32_t v;
    memcpy(&v, q, sizeof v);
    return v;
}

/* Per-plane requantization constants. */
typedef struct dw_epi {
    const qf_ref_requant *rq;
    int64_t c;
    bool fp32, fixed_vec;
    __m512 mult, hi;
    __m512i lo_i, zo, mq, shift;
} dw_epi;

TGT static INL void dw_store(__m512i acc, const dw_epi *e, int8_t *dst, __mmask16 sm) {
    __m128i q;
    if (e->fp32)
        q = rq_fp32i(acc, e->mult, e->hi, e->lo_i, e->zo); /* qx86_avx512_rq.h */
    else if (e->fixed_vec)
        q = rq_fixed_vec(acc, e->mq, e->shift, e->rq);
    else
        q = rq_fixed(acc, e->rq, e->c, 0);
    _mm_mask_storeu_epi8(dst, sm, q);
}

/* One (image, channel) plane; KH (3 or 5) and S (1 or 2) are constants at
 * every call site, so the loops below unroll completely. */
TGT static INL void dw_plane_k(const dw_job *j, int64_t task, const int KH, const int S) {
    const qf_ref_conv_params *p = j->p;
    const qf_ref_requant *rq = &p->rq;
    const int64_t c = task % p->in_c, b = task / p->in_c;
    const int GW = (KH + 3) / 4;            /* tap groups of 4 per kernel row */
    const int NI = (DW_ROWS - 1) * S + KH; /* input rows under one row block */
    const int8_t *wc = j->w->data + c * (int64_t)KH * GW * 4;
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    const uint32_t corr = (j->bias ? (uint32_t)j->bias[c] : 0u) - zc * (uint32_t)j->w->wsum[c];
    __m512i wv[5][2];
#pragma GCC unroll 5
    for (int ky = 0; ky < KH; ky++)
#pragma GCC unroll 2
        for (int g = 0; g < GW; g++) wv[ky][g] = _mm512_set1_epi32(load32(wc + (ky * GW + g) * 4));
    /* lane L of tap group g starts at source dword L * S + g */
    __m512i perm[2];
    for (int g = 0; g < GW; g++) {
        int32_t idx[16];
        for (int l = 0; l < 4; l++)
            for (int d = 0; d < 4; d++) idx[4 * l + d] = l * S + g + d;
        perm[g] = _mm512_loadu_si512(idx);
    }
    int8_t sh[16];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 4; t++) sh[4 * i + t] = (int8_t)(i * S + t);
    const __m512i shuf = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sh));
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i zfill = _mm512_set1_epi8((char)p->in_zp);
    const __m512i xpad = _mm512_set1_epi8((char)zc); /* a gathered row of zero points */
    const __m512i base = _mm512_set1_epi32((int32_t)corr);
    const qf_ref_rescale *r = qr_mult_of(rq, c);
    dw_epi e = {
        .rq = rq,
        .c = c,
        .fp32 = rq->mode == QF_RQ_FP32,
        .fixed_vec = r->shift >= -31,
        .mult = _mm512_set1_ps(r->mult_f),
        .lo_i = _mm512_set1_epi32(rq->act_min - rq->out_zp),
        .hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp)),
        .zo = _mm512_set1_epi32(rq->out_zp),
        .mq = _mm512_set1_epi32(r->mult_q),
        .shift = _mm512_set1_epi32(r->shift),
    };
    const int64_t in_h = p->in_h, in_w = p->in_w, out_h = p->out_h, out_w = p->out_w;
    const int8_t *plane = j->in + (b * p->in_c + c) * in_h * in_w;
    int8_t *oplane = j->out + (b * p->out_c + c) * out_h * out_w;
    for (int64_t oy0 = 0; oy0 < out_h; oy0 += DW_ROWS) {
        const int64_t nr = out_h - oy0 < DW_ROWS ? out_h - oy0 : DW_ROWS;
        const int64_t iy0 = oy0 * S - p->pad_top;
        for (int64_t ox0 = 0; ox0 < out_w; ox0 += 16) {
            const int64_t ix0 = ox0 * S - p->pad_left;
            const int64_t lo_b = ix0 < 0 ? -ix0 : 0;
            const int64_t hi_b = in_w - ix0 < 64 ? in_w - ix0 : 64;
            __mmask64 m = 0;
            if (hi_b > lo_b) {
                const __mmask64 upto = hi_b >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << hi_b) - 1);
                m = upto & ~(((__mmask64)1 << lo_b) - 1);
            }
            __m512i acc[DW_ROWS];
#pragma GCC unroll 4
            for (int rr = 0; rr < DW_ROWS; rr++) acc[rr] = base;
#pragma GCC unroll 16
            for (int i = 0; i < NI; i++) {
                const int64_t iy = iy0 + i;
                __m512i x[2] = {xpad, xpad};
                if (iy >= 0 && iy < in_h) {
                    /* byte k of the load is input column ix0 + k; masked-off
                     * bytes are never touched and read the zero point */
                    const void *src =
                        (const void *)((uintptr_t)(plane + iy * in_w) + (uintptr_t)ix0);
                    const __m512i v =
                        _mm512_xor_si512(_mm512_mask_loadu_epi8(zfill, m, src), flip);
#pragma GCC unroll 2
                    for (int g = 0; g < GW; g++)
                        x[g] = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(perm[g], v), shuf);
                }
                /* output row rr of the block reads this input row as kernel row i - rr * S */
#pragma GCC unroll 4
                for (int rr = 0; rr < DW_ROWS; rr++) {
                    const int ky = i - rr * S;
                    if (ky < 0 || ky >= KH) continue;
#pragma GCC unroll 2
                    for (int g = 0; g < GW; g++)
                        acc[rr] = _mm512_dpbusd_epi32(acc[rr], x[g], wv[ky][g]);
                }
            }
            const int64_t n = out_w - ox0 < 16 ? out_w - ox0 : 16;
            const __mmask16 sm = (__mmask16)((1u << n) - 1u);
            int8_t *dst = oplane + oy0 * out_w + ox0;
#pragma GCC unroll 4
            for (int rr = 0; rr < DW_ROWS; rr++)
                if (rr < nr) dw_store(acc[rr], &e, dst + rr * out_w, sm);
        }
    }
}

TGT static void dw_plane(void *ctx, int64_t task, int tid) {
    (void)tid;
    const dw_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    if (p->k_h == 3)
        p->stride_h == 1 ? dw_plane_k(j, task, 3, 1) : dw_plane_k(j, task, 3, 2);
    else
        p->stride_h == 1 ? dw_plane_k(j, task, 5, 1) : dw_plane_k(j, task, 5, 2);
}

qf_status qf_x86_dwconv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                             const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                             int8_t *out, qf_err *err) {
    const char *who = "qf_x86_dwconv2d_s8";
    if (!p || !in || !w || !w->data || !out)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (!qf_x86_dwconv_supported(p))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: not a supported depthwise shape", who);
    if (!qr_in_range(p->in_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    qf_status s = qr_check_requant(&p->rq, p->out_c, -128, 127, who, err);
    if (s != QF_OK) return s;
    if (w->layout != QX_LAYOUT_DW || w->rows != p->out_c || w->kh != p->k_h || w->kw != p->k_w)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: packed weights do not match the layer", who);
    if (isa != QF_ISA_AVX512VNNI || !qf_x86_isa_usable(isa))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: ISA %s not available", who, qf_isa_name(isa));
    dw_job j = {.p = p, .w = w, .bias = bias, .in = in, .out = out};
    qf_parallel_for(pool, (int64_t)p->batch * p->in_c, dw_plane, &j);
    return QF_OK;
}

#else

bool qf_x86_dwconv_supported(const qf_ref_conv_params *p) {
    (void)p;
    return false;
}

qf_status qf_x86_dwconv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                             const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                             int8_t *out, qf_err *err) {
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_dwconv2d_s8: not an x86-64 build");
}

#endif
