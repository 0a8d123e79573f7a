/* qx86_ew_avx512.c - AVX-512 (F, BW, VL) row kernels of qx86_ew.h: QAdd,
 * the max-pool passes, the biased byte sum of the global average pool and
 * the float <-> 8-bit conversions. Tails use masked loads and stores, so no
 * byte outside [0, n) is read or written (except where qx86_ew.h grants
 * slack). No FMA anywhere: each multiply and add rounds on its own, as the
 * scalar specification does. */
#include "kernels/x86/qx86_ew.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl")))

#include "kernels/x86/qx86_avx512_rq.h"

/* lane masks for a tail of n < width elements */
static inline __mmask16 tail16(size_t n) { return (__mmask16)((1u << n) - 1u); }
static inline __mmask32 tail32(int32_t n) { return n >= 32 ? ~0u : (1u << n) - 1u; }
static inline __mmask64 tail64(size_t n) { return n >= 64 ? ~0ull : (1ull << n) - 1ull; }

TGT static void add_avx512(const int8_t *a, const int8_t *b, int8_t *out, size_t n,
                           const qx_add_consts *c) {
    const __m512i za = _mm512_set1_epi32(c->a_zp), zb = _mm512_set1_epi32(c->b_zp);
    const __m512i zo = _mm512_set1_epi32(c->out_zp);
    const __m512 ma = _mm512_set1_ps(c->a_mult), mb = _mm512_set1_ps(c->b_mult);
    const __m512 lo = _mm512_set1_ps(c->lo), hi = _mm512_set1_ps(c->hi);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i qa = _mm_loadu_si128((const __m128i *)(a + i));
        __m128i qb = _mm_loadu_si128((const __m128i *)(b + i));
        _mm_storeu_si128((__m128i *)(out + i), rq_add16(qa, qb, za, zb, ma, mb, lo, hi, zo));
    }
    if (i < n) {
        __mmask16 m = tail16(n - i);
        __m128i qa = _mm_maskz_loadu_epi8(m, a + i), qb = _mm_maskz_loadu_epi8(m, b + i);
        _mm_mask_storeu_epi8(out + i, m, rq_add16(qa, qb, za, zb, ma, mb, lo, hi, zo));
    }
}

TGT static void vmax_avx512(const int8_t *const *rows, int n_rows, size_t n, int8_t *dst) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i m = _mm512_loadu_si512(rows[0] + i);
        for (int r = 1; r < n_rows; r++)
            m = _mm512_max_epi8(m, _mm512_loadu_si512(rows[r] + i));
        _mm512_storeu_si512(dst + i, m);
    }
    if (i < n) {
        __mmask64 k = tail64(n - i);
        __m512i m = _mm512_maskz_loadu_epi8(k, rows[0] + i);
        for (int r = 1; r < n_rows; r++)
            m = _mm512_max_epi8(m, _mm512_maskz_loadu_epi8(k, rows[r] + i));
        _mm512_mask_storeu_epi8(dst + i, k, m);
    }
}

/* Stride 2: 32 outputs per step as int16 lanes. The word at t + 2*ox + off
 * holds the tap t[2*ox + off] in its low byte; shifting left then
 * arithmetically right by 8 sign-extends it. */
TGT static void hmax_avx512(const int8_t *t, int32_t out_w, int32_t stride, int32_t k_w,
                            int32_t dil, int32_t lo, int32_t hi, int8_t *out) {
    int32_t ox = 0;
    if (stride == 1) {
        const __m512i vlo = _mm512_set1_epi8((char)lo), vhi = _mm512_set1_epi8((char)hi);
        for (; ox < out_w; ox += 64) {
            __m512i m = _mm512_loadu_si512(t + ox);
            for (int32_t k = 1; k < k_w; k++)
                m = _mm512_max_epi8(m, _mm512_loadu_si512(t + ox + k * dil));
            m = _mm512_min_epi8(_mm512_max_epi8(m, vlo), vhi);
            const int32_t left = out_w - ox;
            _mm512_mask_storeu_epi8(out + ox, tail64((size_t)left), m);
        }
        return;
    }
    const __m512i wlo = _mm512_set1_epi16((short)lo), whi = _mm512_set1_epi16((short)hi);
    for (; ox < out_w; ox += 32) {
        __m512i m = _mm512_set1_epi16(-128);
        for (int32_t k = 0; k < k_w; k++) {
            __m512i w = _mm512_loadu_si512(t + 2 * ox + k * dil);
            m = _mm512_max_epi16(m, _mm512_srai_epi16(_mm512_slli_epi16(w, 8), 8));
        }
        m = _mm512_min_epi16(_mm512_max_epi16(m, wlo), whi);
        const int32_t left = out_w - ox;
        _mm256_mask_storeu_epi8(out + ox, tail32(left), _mm512_cvtepi16_epi8(m));
    }
}

/* 2x2 stride 2, straight from the input rows: the vertical max on bytes,
 * then the horizontal one on int16 words (even byte sign-extended by the
 * shift pair, odd byte by the arithmetic shift), 32 outputs per step. */
TGT static void pool2_avx512(const int8_t *in, int32_t in_w, int32_t out_h, int32_t out_w,
                             int32_t lo, int32_t hi, int8_t *out) {
    const __m512i wlo = _mm512_set1_epi16((short)lo), whi = _mm512_set1_epi16((short)hi);
    for (int32_t oy = 0; oy < out_h; oy++, out += out_w) {
        const int8_t *r0 = in + (int64_t)2 * oy * in_w, *r1 = r0 + in_w;
        for (int32_t ox = 0; ox < out_w; ox += 32) {
            const int32_t left = out_w - ox;
            const __mmask64 k = left >= 32 ? ~(__mmask64)0 : tail64((size_t)(2 * left));
            const __m512i m = _mm512_max_epi8(_mm512_maskz_loadu_epi8(k, r0 + 2 * ox),
                                              _mm512_maskz_loadu_epi8(k, r1 + 2 * ox));
            __m512i w = _mm512_max_epi16(_mm512_srai_epi16(_mm512_slli_epi16(m, 8), 8),
                                         _mm512_srai_epi16(m, 8));
            w = _mm512_min_epi16(_mm512_max_epi16(w, wlo), whi);
            _mm256_mask_storeu_epi8(out + ox, tail32(left), _mm512_cvtepi16_epi8(w));
        }
    }
}

/* Bits j of a 64-byte load at column c0 whose column c0 + j is in [0, w). */
static inline __mmask64 cols_in(int64_t c0, int32_t w) {
    const int64_t s = c0 < 0 ? -c0 : 0;
    int64_t e = (int64_t)w - c0;
    if (e > 64) e = 64;
    if (e <= s) return 0;
    return tail64((size_t)e) & ~tail64((size_t)s);
}

/* 3x3 stride 2 from the input rows. For 32 outputs at ox: a = bytes of
 * columns c0 .. c0 + 63 (c0 = 2 ox - pad_left), b = columns c0 + 2 ..
 * c0 + 65, each the max over the window's rows inside the plane, with
 * columns outside it masked to -128 (masked-off bytes are never read). As
 * int16 words, output i takes the even byte of word i of a (tap 0), its
 * odd byte (tap 1) and the even byte of word i of b (tap 2). */
TGT static void pool3s2_avx512(const int8_t *in, int32_t in_h, int32_t in_w, int32_t pad_top,
                               int32_t pad_left, int32_t out_h, int32_t out_w, int32_t lo,
                               int32_t hi, int8_t *out) {
    const __m512i neg = _mm512_set1_epi8(-128);
    const __m512i wlo = _mm512_set1_epi16((short)lo), whi = _mm512_set1_epi16((short)hi);
    for (int32_t oy = 0; oy < out_h; oy++, out += out_w) {
        uintptr_t rows[3];
        int nr = 0;
        for (int32_t ky = 0; ky < 3; ky++) {
            const int64_t iy = 2 * (int64_t)oy - pad_top + ky;
            if (iy >= 0 && iy < in_h) rows[nr++] = (uintptr_t)(in + iy * in_w);
        }
        for (int32_t ox = 0; ox < out_w; ox += 32) {
            const int64_t c0 = 2 * (int64_t)ox - pad_left;
            const __mmask64 ka = cols_in(c0, in_w), kb = cols_in(c0 + 2, in_w);
            __m512i a = neg, b = neg;
            for (int r = 0; r < nr; r++) {
                /* (addresses as integers: c0 may be -1 or -2; those bytes
                 * are masked off) */
                a = _mm512_max_epi8(
                    a, _mm512_mask_loadu_epi8(neg, ka, (const void *)(rows[r] + (uintptr_t)c0)));
                b = _mm512_max_epi8(b, _mm512_mask_loadu_epi8(
                                           neg, kb, (const void *)(rows[r] + (uintptr_t)(c0 + 2))));
            }
            __m512i w = _mm512_max_epi16(_mm512_srai_epi16(_mm512_slli_epi16(a, 8), 8),
                                         _mm512_srai_epi16(a, 8));
            w = _mm512_max_epi16(w, _mm512_srai_epi16(_mm512_slli_epi16(b, 8), 8));
            w = _mm512_min_epi16(_mm512_max_epi16(w, wlo), whi);
            _mm256_mask_storeu_epi8(out + ox, tail32(out_w - ox), _mm512_cvtepi16_epi8(w));
        }
    }
}

TGT static int64_t sum_biased_avx512(const int8_t *x, size_t n) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i acc = _mm512_setzero_si512(); /* 8 x u64, each < 2^64 for any n */
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i v = _mm512_xor_si512(_mm512_loadu_si512(x + i), flip);
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
    }
    if (i < n) {
        __mmask64 k = tail64(n - i);
        /* masked-off lanes must count 0 after the flip */
        __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, x + i), flip);
        v = _mm512_maskz_mov_epi8(k, v);
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
    }
    return (int64_t)_mm512_reduce_add_epi64(acc);
}

/* 16 floats -> 16 clamped integers (quantize_linear.c's formula). */
TGT static inline __m512i quant16(__m512 x, __m512 scale, __m512 zp, __m512 qmin, __m512 qmax) {
    __m512 r = _mm512_roundscale_ps(_mm512_div_ps(x, scale),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_add_ps(r, zp);
    __mmask16 ordered = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
    r = _mm512_min_ps(_mm512_max_ps(r, qmin), qmax);
    r = _mm512_mask_blend_ps(ordered, zp, r); /* NaN -> zp */
    return _mm512_cvtps_epi32(r);
}

TGT static void quant_avx512(const float *x, size_t n, float scale, float zp, bool is_u8, void *y) {
    const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(zp);
    const __m512 qmin = _mm512_set1_ps(is_u8 ? 0.0f : -128.0f);
    const __m512 qmax = _mm512_set1_ps(is_u8 ? 255.0f : 127.0f);
    uint8_t *yb = y;
    size_t i = 0;
    /* the low byte of each int32 is the int8 or uint8 value */
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(yb + i),
                         _mm512_cvtepi32_epi8(quant16(_mm512_loadu_ps(x + i), vs, vz, qmin, qmax)));
    if (i < n) {
        __mmask16 m = tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm_mask_storeu_epi8(yb + i, m, _mm512_cvtepi32_epi8(quant16(v, vs, vz, qmin, qmax)));
    }
}

TGT static void dequant_avx512(const void *q, bool is_u8, size_t n, float scale, int32_t zp,
                               float *x) {
    const uint8_t *qb = q;
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512i vz = _mm512_set1_epi32(zp);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m128i b = _mm_maskz_loadu_epi8(m, qb + i);
        __m512i v = is_u8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, vz)), vs);
        _mm512_mask_storeu_ps(x + i, m, f);
    }
}

static const qx_ew_kernels k_avx512 = {.add = add_avx512,
                                       .vmax = vmax_avx512,
                                       .hmax = hmax_avx512,
                                       .pool2 = pool2_avx512,
                                       .pool3s2 = pool3s2_avx512,
                                       .sum_biased = sum_biased_avx512,
                                       .quant = quant_avx512,
                                       .dequant = dequant_avx512};

const qx_ew_kernels *qx_ew_kernels_avx512(void) { return &k_avx512; }

#define TGTV __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))

/* 256-entry byte table: vpermi2b looks up the low 7 bits of each index in
 * entries 0-127 and in 128-255, the index's top bit picks one. */
TGTV static void lut_vbmi(const int8_t *lut, const int8_t *x, int8_t *y, size_t n) {
    const __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
    const __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i v = _mm512_loadu_si512(x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
        const __m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
    if (i < n) {
        const __mmask64 k = tail64(n - i);
        const __m512i v = _mm512_maskz_loadu_epi8(k, x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
        const __m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_mask_storeu_epi8(y + i, k, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
}

qx_lut_fn qx_ew_lut_vbmi(void) { return (qf_cpu_features() & QF_CPU_AVX512VBMI) ? lut_vbmi : NULL; }

#else

const qx_ew_kernels *qx_ew_kernels_avx512(void) { return NULL; }

qx_lut_fn qx_ew_lut_vbmi(void) { return NULL; }

#endif
