/* qx86_ew_avx2.c - AVX2 row kernels of qx86_ew.h (same contracts as the
 * AVX-512 ones). Tails run the scalar forms of qx86_ew.h element by element
 * (or through a small stack buffer), so no byte outside [0, n) is touched
 * except where qx86_ew.h grants slack. No FMA: each multiply and add rounds
 * on its own, as the scalar specification does. */
#include "kernels/x86/qx86_ew.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define TGT __attribute__((target("avx2")))

/* int32 lanes of four vectors -> 32 bytes in order (values fit in int8). */
TGT static inline __m256i pack4(__m256i r0, __m256i r1, __m256i r2, __m256i r3) {
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
    /* dwords now hold r0[0:4] r1[0:4] r2[0:4] r3[0:4] | r0[4:8] r1[4:8] ... */
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

TGT static inline __m256i add8(__m128i qa, __m128i qb, __m256i za, __m256i zb, __m256 ma, __m256 mb,
                               __m256 lo, __m256 hi, __m256i zo) {
    __m256 fa = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepi8_epi32(qa), za));
    __m256 fb = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepi8_epi32(qb), zb));
    __m256 s = _mm256_add_ps(_mm256_mul_ps(fa, ma), _mm256_mul_ps(fb, mb));
    s = _mm256_min_ps(_mm256_max_ps(s, lo), hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(s), zo);
}

TGT static void add_avx2(const int8_t *a, const int8_t *b, int8_t *out, size_t n,
                         const qx_add_consts *c) {
    const __m256i za = _mm256_set1_epi32(c->a_zp), zb = _mm256_set1_epi32(c->b_zp);
    const __m256i zo = _mm256_set1_epi32(c->out_zp);
    const __m256 ma = _mm256_set1_ps(c->a_mult), mb = _mm256_set1_ps(c->b_mult);
    const __m256 lo = _mm256_set1_ps(c->lo), hi = _mm256_set1_ps(c->hi);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r[4];
        for (int j = 0; j < 4; j++) {
            __m128i qa = _mm_loadl_epi64((const __m128i *)(a + i + 8 * j));
            __m128i qb = _mm_loadl_epi64((const __m128i *)(b + i + 8 * j));
            r[j] = add8(qa, qb, za, zb, ma, mb, lo, hi, zo);
        }
        _mm256_storeu_si256((__m256i *)(out + i), pack4(r[0], r[1], r[2], r[3]));
    }
    for (; i < n; i++)
        out[i] = qx_add_one(a[i], b[i], c);
}

TGT static void vmax_avx2(const int8_t *const *rows, int n_rows, size_t n, int8_t *dst) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(rows[0] + i));
        for (int r = 1; r < n_rows; r++)
            m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(rows[r] + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), m);
    }
    for (; i < n; i++) {
        int8_t m = rows[0][i];
        for (int r = 1; r < n_rows; r++)
            if (rows[r][i] > m) m = rows[r][i];
        dst[i] = m;
    }
}

/* Stride 2 as int16 lanes (see the AVX-512 twin); 16 outputs per step. The
 * last partial step goes through a stack buffer. */
TGT static void hmax_avx2(const int8_t *t, int32_t out_w, int32_t stride, int32_t k_w, int32_t dil,
                          int32_t lo, int32_t hi, int8_t *out) {
    int8_t buf[32];
    if (stride == 1) {
        const __m256i vlo = _mm256_set1_epi8((char)lo), vhi = _mm256_set1_epi8((char)hi);
        for (int32_t ox = 0; ox < out_w; ox += 32) {
            __m256i m = _mm256_loadu_si256((const __m256i *)(t + ox));
            for (int32_t k = 1; k < k_w; k++)
                m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(t + ox + k * dil)));
            m = _mm256_min_epi8(_mm256_max_epi8(m, vlo), vhi);
            if (out_w - ox >= 32) {
                _mm256_storeu_si256((__m256i *)(out + ox), m);
            } else {
                _mm256_storeu_si256((__m256i *)buf, m);
                memcpy(out + ox, buf, (size_t)(out_w - ox));
            }
        }
        return;
    }
    const __m256i wlo = _mm256_set1_epi16((short)lo), whi = _mm256_set1_epi16((short)hi);
    for (int32_t ox = 0; ox < out_w; ox += 16) {
        __m256i m = _mm256_set1_epi16(-128);
        for (int32_t k = 0; k < k_w; k++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(t + 2 * ox + k * dil));
            m = _mm256_max_epi16(m, _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8));
        }
        m = _mm256_min_epi16(_mm256_max_epi16(m, wlo), whi);
        __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
        if (out_w - ox >= 16) {
            _mm_storeu_si128((__m128i *)(out + ox), b);
        } else {
            _mm_storeu_si128((__m128i *)buf, b);
            memcpy(out + ox, buf, (size_t)(out_w - ox));
        }
    }
}

/* 2x2 stride 2 straight from the input rows (pool2_avx512's steps on 16
 * outputs), the last few outputs in scalar. */
TGT static void pool2_avx2(const int8_t *in, int32_t in_w, int32_t out_h, int32_t out_w, int32_t lo,
                           int32_t hi, int8_t *out) {
    const __m256i wlo = _mm256_set1_epi16((short)lo), whi = _mm256_set1_epi16((short)hi);
    for (int32_t oy = 0; oy < out_h; oy++, out += out_w) {
        const int8_t *r0 = in + (int64_t)2 * oy * in_w, *r1 = r0 + in_w;
        int32_t ox = 0;
        for (; ox + 16 <= out_w; ox += 16) {
            const __m256i m =
                _mm256_max_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(r0 + 2 * ox)),
                                _mm256_loadu_si256((const __m256i *)(const void *)(r1 + 2 * ox)));
            __m256i w = _mm256_max_epi16(_mm256_srai_epi16(_mm256_slli_epi16(m, 8), 8),
                                         _mm256_srai_epi16(m, 8));
            w = _mm256_min_epi16(_mm256_max_epi16(w, wlo), whi);
            /* words 0-7 and 8-15 sit in the two 128-bit lanes: pack, then
             * gather quadwords 0 and 2 */
            const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi16(w, w), 0x08);
            _mm_storeu_si128((__m128i *)(void *)(out + ox), _mm256_castsi256_si128(p));
        }
        /* the rest in blocks of 8 (or 4) outputs, the last one moved back
         * to end at the row's end (it recomputes a few outputs, with the
         * same bytes); reads stay within 2 * out_w <= in_w columns. Narrow
         * planes (14 or 7 outputs a row, e.g. after a 28x28 layer) ran the
         * scalar tail for every output before. */
        while (ox < out_w && out_w >= 4) {
            const int32_t n = out_w >= 8 ? 8 : 4;
            const int32_t b = ox + n <= out_w ? ox : out_w - n;
            const __m128i a0 = n == 8
                                   ? _mm_loadu_si128((const __m128i *)(const void *)(r0 + 2 * b))
                                   : _mm_loadl_epi64((const __m128i *)(const void *)(r0 + 2 * b));
            const __m128i a1 = n == 8
                                   ? _mm_loadu_si128((const __m128i *)(const void *)(r1 + 2 * b))
                                   : _mm_loadl_epi64((const __m128i *)(const void *)(r1 + 2 * b));
            const __m128i m = _mm_max_epi8(a0, a1);
            __m128i w =
                _mm_max_epi16(_mm_srai_epi16(_mm_slli_epi16(m, 8), 8), _mm_srai_epi16(m, 8));
            w = _mm_min_epi16(_mm_max_epi16(w, _mm256_castsi256_si128(wlo)),
                              _mm256_castsi256_si128(whi));
            const __m128i q = _mm_packs_epi16(w, w);
            if (n == 8) {
                _mm_storel_epi64((__m128i *)(void *)(out + b), q);
            } else {
                const int32_t v = _mm_cvtsi128_si32(q);
                memcpy(out + b, &v, 4);
            }
            ox = b + n;
        }
        for (; ox < out_w; ox++) {
            int32_t m = r0[2 * ox];
            if (r0[2 * ox + 1] > m) m = r0[2 * ox + 1];
            if (r1[2 * ox] > m) m = r1[2 * ox];
            if (r1[2 * ox + 1] > m) m = r1[2 * ox + 1];
            out[ox] = (int8_t)(m < lo ? lo : m > hi ? hi : m);
        }
    }
}

/* The 16 outputs of one step from the max of their rows' columns: a =
 * columns c0 .. c0 + 31, b = c0 + 2 .. c0 + 33 (output j takes columns c0 +
 * 2j .. c0 + 2j + 2: words of a, high bytes of a, low bytes of b). */
TGT static inline __m128i pool3s2_16(__m256i a, __m256i b, __m256i wlo, __m256i whi) {
    __m256i w =
        _mm256_max_epi16(_mm256_srai_epi16(_mm256_slli_epi16(a, 8), 8), _mm256_srai_epi16(a, 8));
    w = _mm256_max_epi16(w, _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8));
    w = _mm256_min_epi16(_mm256_max_epi16(w, wlo), whi);
    /* words 0-7 and 8-15 sit in the two 128-bit lanes: pack, then gather
     * quadwords 0 and 2 */
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi16(w, w), 0x08));
}

TGT static inline void store_tail16(int8_t *out, __m128i q, int32_t n) {
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)(void *)out, q);
    } else {
        int8_t t[16];
        _mm_storeu_si128((__m128i *)(void *)t, q);
        memcpy(out, t, (size_t)n);
    }
}

/* Widest padded row pool3s2_avx2 copies (columns of 64 blocks of 16
 * outputs); wider rows take the per-block edge copies. */
#define POOL3_ROW (32 * 64 + 2)

/* 3x3 stride 2, as pool3s2_avx512 with 16 outputs per step. Each input row
 * is copied once into a ring of three rows of 32 * blocks + 2 columns (row
 * iy in slot iy % 3: an output row's rows are consecutive, and the next
 * output row's first is this one's last) at column pad_left, the ring's
 * other columns -128 from the start, so no step reaches outside a row: the
 * first and last blocks of every row used to go through a stack copy of
 * their 34 columns per input row. Rows of more than 64 blocks keep those
 * copies. */
TGT static void pool3s2_avx2(const int8_t *in, int32_t in_h, int32_t in_w, int32_t pad_top,
                             int32_t pad_left, int32_t out_h, int32_t out_w, int32_t lo, int32_t hi,
                             int8_t *out) {
    const __m256i neg = _mm256_set1_epi8(-128);
    const __m256i wlo = _mm256_set1_epi16((short)lo), whi = _mm256_set1_epi16((short)hi);
    const int64_t span = 32 * (((int64_t)out_w + 15) / 16) + 2;
    if (span <= POOL3_ROW && pad_left >= 0 && pad_left < span) {
        _Alignas(32) int8_t ring[3][POOL3_ROW];
        int64_t held[3] = {-1, -1, -1};
        /* (only the span a row uses: this runs once per plane) */
        for (int r = 0; r < 3; r++)
            memset(ring[r], -128, (size_t)span);
        /* input columns a ring row holds: [0, n_in) at pad_left */
        const int64_t n_in = in_w < span - pad_left ? in_w : span - pad_left;
        for (int32_t oy = 0; oy < out_h; oy++, out += out_w) {
            const int8_t *rows[3];
            int nr = 0;
            for (int32_t ky = 0; ky < 3; ky++) {
                const int64_t iy = 2 * (int64_t)oy - pad_top + ky;
                if (iy < 0 || iy >= in_h) continue;
                int8_t *rb = ring[iy % 3];
                if (held[iy % 3] != iy) {
                    memcpy(rb + pad_left, in + iy * in_w, (size_t)n_in);
                    held[iy % 3] = iy;
                }
                rows[nr++] = rb;
            }
            for (int32_t ox = 0; ox < out_w; ox += 16) {
                __m256i a = neg, b = neg;
                for (int r = 0; r < nr; r++) {
                    const int8_t *src = rows[r] + 2 * (int64_t)ox;
                    a = _mm256_max_epi8(a, _mm256_loadu_si256((const __m256i *)(const void *)src));
                    b = _mm256_max_epi8(
                        b, _mm256_loadu_si256((const __m256i *)(const void *)(src + 2)));
                }
                store_tail16(out + ox, pool3s2_16(a, b, wlo, whi), out_w - ox);
            }
        }
        return;
    }
    int8_t buf[3][64];
    for (int32_t oy = 0; oy < out_h; oy++, out += out_w) {
        const int8_t *rows[3];
        int nr = 0;
        for (int32_t ky = 0; ky < 3; ky++) {
            const int64_t iy = 2 * (int64_t)oy - pad_top + ky;
            if (iy >= 0 && iy < in_h) rows[nr++] = in + iy * in_w;
        }
        for (int32_t ox = 0; ox < out_w; ox += 16) {
            const int64_t c0 = 2 * (int64_t)ox - pad_left;
            const bool inside = c0 >= 0 && c0 + 34 <= in_w;
            __m256i a = neg, b = neg;
            for (int r = 0; r < nr; r++) {
                const int8_t *src = rows[r] + (inside ? c0 : 0);
                if (!inside) {
                    /* columns [j0, j1) of the 34 lie in the row */
                    const int64_t j0 = c0 < 0 ? -c0 : 0;
                    const int64_t j1 = in_w - c0 < 34 ? in_w - c0 : 34;
                    memset(buf[r], -128, 34);
                    if (j1 > j0) memcpy(buf[r] + j0, rows[r] + c0 + j0, (size_t)(j1 - j0));
                    src = buf[r];
                }
                a = _mm256_max_epi8(a, _mm256_loadu_si256((const __m256i *)(const void *)src));
                b = _mm256_max_epi8(b,
                                    _mm256_loadu_si256((const __m256i *)(const void *)(src + 2)));
            }
            store_tail16(out + ox, pool3s2_16(a, b, wlo, whi), out_w - ox);
        }
    }
}

TGT static int64_t sum_biased_avx2(const int8_t *x, size_t n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), flip);
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
    }
    int64_t l[4];
    _mm256_storeu_si256((__m256i *)l, acc);
    int64_t s = l[0] + l[1] + l[2] + l[3];
    for (; i < n; i++)
        s += x[i] + 128;
    return s;
}

TGT static inline __m256i quant8(__m256 x, __m256 scale, __m256 zp, __m256 qmin, __m256 qmax) {
    __m256 r =
        _mm256_round_ps(_mm256_div_ps(x, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_add_ps(r, zp);
    __m256 ordered = _mm256_cmp_ps(r, r, _CMP_ORD_Q);
    r = _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
    r = _mm256_blendv_ps(zp, r, ordered); /* NaN -> zp */
    return _mm256_cvtps_epi32(r);
}

TGT static void quant_avx2(const float *x, size_t n, float scale, float zp, bool is_u8, void *y) {
    const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(zp);
    const int32_t qmin = is_u8 ? 0 : -128, qmax = is_u8 ? 255 : 127;
    const __m256 fmin = _mm256_set1_ps((float)qmin), fmax = _mm256_set1_ps((float)qmax);
    /* u8 values go through int8 packing shifted by -128 and back */
    const __m256i bias = _mm256_set1_epi32(is_u8 ? -128 : 0);
    const __m256i unbias = _mm256_set1_epi8(is_u8 ? (char)0x80 : 0);
    uint8_t *yb = y;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r[4];
        for (int j = 0; j < 4; j++)
            r[j] =
                _mm256_add_epi32(quant8(_mm256_loadu_ps(x + i + 8 * j), vs, vz, fmin, fmax), bias);
        __m256i b = _mm256_xor_si256(pack4(r[0], r[1], r[2], r[3]), unbias);
        _mm256_storeu_si256((__m256i *)(yb + i), b);
    }
    for (; i < n; i++) {
        int32_t v = qx_quant_one(x[i] / scale, zp, qmin, qmax);
        yb[i] = (uint8_t)v;
    }
}

TGT static void dequant_avx2(const void *q, bool is_u8, size_t n, float scale, int32_t zp,
                             float *x) {
    const uint8_t *qb = q;
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256i vz = _mm256_set1_epi32(zp);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(qb + i));
        __m256i v = is_u8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vz)), vs));
    }
    for (; i < n; i++) {
        int32_t v = is_u8 ? (int32_t)qb[i] : (int32_t)(int8_t)qb[i];
        x[i] = (float)(v - zp) * scale;
    }
}

static const qx_ew_kernels k_avx2 = {.add = add_avx2,
                                     .vmax = vmax_avx2,
                                     .hmax = hmax_avx2,
                                     .pool2 = pool2_avx2,
                                     .pool3s2 = pool3s2_avx2,
                                     .sum_biased = sum_biased_avx2,
                                     .quant = quant_avx2,
                                     .dequant = dequant_avx2};

const qx_ew_kernels *qx_ew_kernels_avx2(void) { return &k_avx2; }

#else

const qx_ew_kernels *qx_ew_kernels_avx2(void) { return NULL; }

#endif
