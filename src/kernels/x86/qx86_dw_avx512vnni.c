/* qx86_dw_avx512vnni.c - depthwise 3x3 / 5x5 int8 convolution (stride 1 or
 * 2) with AVX-512 VNNI, bit-identical to qf_ref_conv2d_s8 (qx86.h).
 *
 * NCHW, one task per (image, channel) plane, no scratch. For 16 output
 * pixels of a row and one kernel row, 64 input bytes are loaded (masked: the
 * bytes outside the row read the zero point), flipped to u8 (q + 128), and
 * for each group of 4 taps vpermd + vpshufb put the 4 bytes pixel p needs
 * (p * stride + tap) into its 32-bit lane; vpdpbusd multiplies them by the
 * broadcast 4 weights. Kernel rows outside the image are skipped and their
 * share of the correction (128 + z) * sum(w) is added back, so a padded tap
 * contributes 0 exactly as in the reference. Epilogues: qx86_avx512_rq.h. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

#include "kernels/x86/qx86_avx512_rq.h"

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

TGT static void dw_plane(void *ctx, int64_t task, int tid) {
    (void)tid;
    const dw_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    const qf_ref_requant *rq = &p->rq;
    const int64_t c = task % p->in_c, b = task / p->in_c;
    const int s = p->stride_h, kh = p->k_h, gw = (p->k_w + 3) / 4;
    const int8_t *wc = j->w->data + c * (int64_t)kh * gw * 4;
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    const uint32_t corr = (j->bias ? (uint32_t)j->bias[c] : 0u) - zc * (uint32_t)j->w->wsum[c];
    int32_t wd[5][2];
    uint32_t rowfix[5]; /* (128 + z) * sum of kernel row ky */
    for (int ky = 0; ky < kh; ky++) {
        uint32_t rs = 0;
        for (int g = 0; g < gw; g++) {
            wd[ky][g] = load32(wc + (ky * gw + g) * 4);
            for (int t = 0; t < 4; t++) rs += (uint32_t)wc[(ky * gw + g) * 4 + t];
        }
        rowfix[ky] = zc * rs;
    }
    /* lane L of tap group g starts at source dword L * s + g */
    __m512i perm[2];
    for (int g = 0; g < 2; g++) {
        int32_t idx[16];
        for (int l = 0; l < 4; l++)
            for (int d = 0; d < 4; d++) idx[4 * l + d] = l * s + g + d;
        perm[g] = _mm512_loadu_si512(idx);
    }
    int8_t sh[16];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 4; t++) sh[4 * i + t] = (int8_t)(i * s + t);
    const __m512i shuf = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sh));
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i zfill = _mm512_set1_epi8((char)p->in_zp);
    const qf_ref_rescale *r = qr_mult_of(rq, c);
    const __m512 mult = _mm512_set1_ps(r->mult_f);
    const __m512 lo = _mm512_set1_ps((float)(rq->act_min - rq->out_zp));
    const __m512 hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp));
    const __m512i zo = _mm512_set1_epi32(rq->out_zp);
    const int8_t *plane = j->in + (b * p->in_c + c) * (int64_t)p->in_h * p->in_w;
    int8_t *oplane = j->out + (b * p->out_c + c) * (int64_t)p->out_h * p->out_w;
    for (int64_t oy = 0; oy < p->out_h; oy++) {
        uint32_t base = corr;
        for (int ky = 0; ky < kh; ky++) {
            const int64_t iy = oy * s - p->pad_top + ky;
            if (iy < 0 || iy >= p->in_h) base += rowfix[ky];
        }
        for (int64_t ox0 = 0; ox0 < p->out_w; ox0 += 16) {
            __m512i acc = _mm512_set1_epi32((int32_t)base);
            const int64_t ix0 = ox0 * s - p->pad_left;
            const int64_t lo_b = ix0 < 0 ? -ix0 : 0;
            const int64_t hi_b = p->in_w - ix0 < 64 ? p->in_w - ix0 : 64;
            __mmask64 m = 0;
            if (hi_b > lo_b) {
                const __mmask64 upto = hi_b >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << hi_b) - 1);
                m = upto & ~(((__mmask64)1 << lo_b) - 1);
            }
            for (int ky = 0; ky < kh; ky++) {
                const int64_t iy = oy * s - p->pad_top + ky;
                if (iy < 0 || iy >= p->in_h) continue;
                /* byte i of the load is input column ix0 + i; masked-off
                 * bytes are never touched and read the zero point */
                const void *src =
                    (const void *)((uintptr_t)(plane + iy * p->in_w) + (uintptr_t)ix0);
                const __m512i v = _mm512_xor_si512(_mm512_mask_loadu_epi8(zfill, m, src), flip);
                for (int g = 0; g < gw; g++) {
                    const __m512i x =
                        _mm512_shuffle_epi8(_mm512_permutexvar_epi32(perm[g], v), shuf);
                    acc = _mm512_dpbusd_epi32(acc, x, _mm512_set1_epi32(wd[ky][g]));
                }
            }
            __m128i q;
            if (rq->mode == QF_RQ_FP32)
                q = rq_fp32(acc, mult, lo, hi, zo);
            else if (r->shift >= -31)
                q = rq_fixed_vec(acc, _mm512_set1_epi32(r->mult_q), _mm512_set1_epi32(r->shift),
                                 rq);
            else
                q = rq_fixed(acc, rq, c, 0);
            const int64_t n = p->out_w - ox0 < 16 ? p->out_w - ox0 : 16;
            _mm_mask_storeu_epi8(oplane + oy * p->out_w + ox0, (__mmask16)((1u << n) - 1u), q);
        }
    }
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
