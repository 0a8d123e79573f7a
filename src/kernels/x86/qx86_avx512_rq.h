/* qx86_avx512_rq.h - the AVX-512 requantization epilogues shared by the
 * VNNI kernels (qx86_avx512vnni.c, qx86_dw_avx512vnni.c): the spec's SIMD
 * FP32 form and the FIXED mode's gemmlowp steps on 16 lanes, both
 * bit-identical to qf_ref_requant_fp32 / qf_ref_requant_fixed, and the
 * FP32 QAdd that residual connections fuse into the convolution epilogue.
 * Include only from x86-64 files that define TGT as an AVX-512 (F, BW, VL)
 * target attribute. */
#ifndef QF_KERNELS_X86_QX86_AVX512_RQ_H
#define QF_KERNELS_X86_QX86_AVX512_RQ_H

#include <immintrin.h>

#include "kernels/ref/qref_util.h"

/* 16 lanes of the FP32 QAdd (qf_ref_add_s8): int8 -> int32 -> float, two
 * multiplies, one add, clamp, cvtps2dq (round half even under the default
 * MXCSR), + out_zp. No FMA: each operation rounds on its own. */
TGT static inline __m128i rq_add16(__m128i qa, __m128i qb, __m512i za, __m512i zb, __m512 ma,
                                   __m512 mb, __m512 lo, __m512 hi, __m512i zo) {
    __m512 fa = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepi8_epi32(qa), za));
    __m512 fb = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepi8_epi32(qb), zb));
    __m512 s = _mm512_add_ps(_mm512_mul_ps(fa, ma), _mm512_mul_ps(fb, mb));
    s = _mm512_min_ps(_mm512_max_ps(s, lo), hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(s), zo));
}

/* The spec's SIMD form: cvtdq2ps, mulps, maxps, minps, cvtps2dq, paddd. The
 * conversion rounds to nearest even under the default MXCSR. Results lie in
 * [lo, hi] within int8, so the narrowing vpmovdb is exact. */
TGT static inline __m128i rq_fp32(__m512i acc, __m512 mult, __m512 lo, __m512 hi, __m512i z) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), z));
}

/* rq_fp32 with the lower clamp after the conversion, on the integer pipes
 * (lo_i = act_min - z as int32). Same bits: for integer bounds lo <= hi,
 * round(max(f, lo)) == max(round(f), lo) (rounding is monotone and keeps
 * integers), and f below INT32_MIN, where cvtps2dq returns INT32_MIN, still
 * ends at lo. The upper clamp stays in float: above INT32_MAX cvtps2dq
 * would also return INT32_MIN. */
TGT static inline __m128i rq_fp32i(__m512i acc, __m512 mult, __m512 hi, __m512i lo_i, __m512i z) {
    const __m512 f = _mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult), hi);
    const __m512i q = _mm512_max_epi32(_mm512_cvtps_epi32(f), lo_i);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(q, z));
}

/* FIXED mode, lane by lane with the reference function. */
TGT static inline __m128i rq_fixed(__m512i acc, const qf_ref_requant *rq, int64_t ch,
                                   int64_t ch_step) {
    int32_t a[16];
    int8_t q[16];
    _mm512_storeu_si512(a, acc);
    for (int i = 0; i < 16; i++) {
        const qf_ref_rescale *r = qr_mult_of(rq, ch + ch_step * i);
        q[i] = (int8_t)qf_ref_requant_fixed(a[i], r->mult_q, r->shift, rq->out_zp, rq->act_min,
                                            rq->act_max);
    }
    return _mm_loadu_si128((const __m128i *)q);
}

/* SRDHM on the 64-bit products of one parity: round(ab / 2^31), ties toward
 * +inf, as gemmlowp (nudge, then a division truncating toward zero). */
TGT static inline __m512i srdhm64(__m512i ab) {
    const __m512i zero = _mm512_setzero_si512();
    const __mmask8 neg = _mm512_cmplt_epi64_mask(ab, zero);
    const __m512i nudge = _mm512_mask_blend_epi64(neg, _mm512_set1_epi64(INT64_C(1) << 30),
                                                  _mm512_set1_epi64(1 - (INT64_C(1) << 30)));
    __m512i t = _mm512_add_epi64(ab, nudge);
    const __mmask8 tneg = _mm512_cmplt_epi64_mask(t, zero);
    t = _mm512_mask_add_epi64(t, tneg, t, _mm512_set1_epi64((INT64_C(1) << 31) - 1));
    return _mm512_srai_epi64(t, 31);
}

/* FIXED mode on 16 lanes (qf_ref_requant_fixed, shifts in [-31, 31]):
 * saturating left shift, SRDHM, RDBP (ties away from zero), clamp, + z. */
TGT static inline __m128i rq_fixed_vec(__m512i acc, __m512i mq, __m512i shift,
                                       const qf_ref_requant *rq) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i left = _mm512_max_epi32(shift, zero);
    const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    /* acc * 2^left, saturated: the shift is exact iff shifting back restores acc */
    const __m512i sh = _mm512_sllv_epi32(acc, left);
    const __mmask16 ovf = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(sh, left), acc);
    const __m512i sat =
        _mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(acc, zero), _mm512_set1_epi32(INT32_MAX),
                                _mm512_set1_epi32(INT32_MIN));
    const __m512i v = _mm512_mask_blend_epi32(ovf, sh, sat);
    const __m512i even = srdhm64(_mm512_mul_epi32(v, mq));
    const __m512i odd =
        srdhm64(_mm512_mul_epi32(_mm512_srli_epi64(v, 32), _mm512_srli_epi64(mq, 32)));
    __m512i r = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
    const __m512i imin = _mm512_set1_epi32(INT32_MIN);
    const __mmask16 both = _mm512_cmpeq_epi32_mask(v, imin) & _mm512_cmpeq_epi32_mask(mq, imin);
    r = _mm512_mask_mov_epi32(r, both, _mm512_set1_epi32(INT32_MAX));
    /* RDBP: floor(r / 2^e) + (remainder > threshold) */
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    const __m512i rem = _mm512_and_si512(r, mask);
    const __m512i thr = _mm512_add_epi32(_mm512_srli_epi32(mask, 1), _mm512_srli_epi32(r, 31));
    __m512i q = _mm512_srav_epi32(r, right);
    q = _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, one);
    /* clamp before adding z (the sum could overflow int32 otherwise) */
    q = _mm512_max_epi32(q, _mm512_set1_epi32(rq->act_min - rq->out_zp));
    q = _mm512_min_epi32(q, _mm512_set1_epi32(rq->act_max - rq->out_zp));
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(q, _mm512_set1_epi32(rq->out_zp)));
}

#endif /* QF_KERNELS_X86_QX86_AVX512_RQ_H */
