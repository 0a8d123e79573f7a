/* qx86_avx2.c - AVX2 micro-kernels of the x86 int8 kernels (qx86.h), with
 * the same tile contracts and packed layouts as the AVX-512 VNNI ones.
 *
 * Two dot-product forms, chosen per layer at pack time (maddubs_ok):
 *  - vpmaddubsw (u8 x s8 pairs -> s16) + vpmaddwd by ones (-> s32), exact
 *    when 255 * (|w0| + |w1|) <= 32767 for every combined pair;
 *  - otherwise vpmaddwd on zero-extended activations and sign-extended
 *    weights (always exact), then vphaddd + vpermq to finish the 4-tap sums.
 * Epilogue: the spec's SIMD FP32 form on 8 lanes, scalar FIXED mode. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2")))

static inline int32_t load32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Requantize 8 sums (already corrected) into q[8]; rows of one channel
 * (ch_step 0) or 8 consecutive channels (ch_step 1, mult per lane). */
TGT static inline void rq8(__m256i acc, __m256 mult, const qf_ref_requant *rq, int64_t ch,
                           int64_t ch_step, int8_t q[8]) {
    if (rq->mode == QF_RQ_FP32) {
        const __m256 lo = _mm256_set1_ps((float)(rq->act_min - rq->out_zp));
        const __m256 hi = _mm256_set1_ps((float)(rq->act_max - rq->out_zp));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);
        f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
        const __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(rq->out_zp));
        /* values are within int8: the saturating packs are exact */
        const __m128i w16 =
            _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)q, _mm_packs_epi16(w16, w16));
        return;
    }
    int32_t a[8];
    _mm256_storeu_si256((__m256i *)a, acc);
    for (int i = 0; i < 8; i++) {
        const qf_ref_rescale *r = qr_mult_of(rq, ch + ch_step * i);
        q[i] = (int8_t)qf_ref_requant_fixed(a[i], r->mult_q, r->shift, rq->out_zp, rq->act_min,
                                            rq->act_max);
    }
}

/* Store lanes [lane0, lane0 + 8) of a slot vector. */
static inline void store8(const int8_t q[8], const qx_vec_store *st, int8_t *base, int lane0) {
    for (int32_t s = 0; s < st->n_seg; s++) {
        const qx_seg *g = &st->seg[s];
        const int lo = g->lane > lane0 ? g->lane : lane0;
        const int hi = g->lane + g->n < lane0 + 8 ? g->lane + g->n : lane0 + 8;
        if (lo < hi) memcpy(base + g->off + (lo - g->lane), q + (lo - lane0), (size_t)(hi - lo));
    }
}

/* Lanes [lane0, lane0 + 8) of a slot vector from base (the residual). */
static inline void load8(int8_t r[8], const qx_vec_store *st, const int8_t *base, int lane0) {
    for (int32_t s = 0; s < st->n_seg; s++) {
        const qx_seg *g = &st->seg[s];
        const int lo = g->lane > lane0 ? g->lane : lane0;
        const int hi = g->lane + g->n < lane0 + 8 ? g->lane + g->n : lane0 + 8;
        if (lo < hi) memcpy(r + (lo - lane0), base + g->off + (lo - g->lane), (size_t)(hi - lo));
    }
}

TGT static void conv_out8(const qx_conv_tile *t, int r, __m256i acc, const qx_vec_store *st,
                          int lane0) {
    const int64_t ch = (int64_t)t->ch0 + r;
    int8_t q[8];
    acc = _mm256_add_epi32(acc, _mm256_set1_epi32(t->e.corr[r]));
    rq8(acc, _mm256_set1_ps(t->e.mult_f[r]), t->e.rq, ch, 0, q);
    if (t->add) {
        /* the fused residual add, lane by lane (lanes no segment covers
         * are computed from zeros and never stored) */
        int8_t res[8] = {0};
        load8(res, st, t->res + ch * t->ch_stride, lane0);
        for (int i = 0; i < 8; i++)
            q[i] = qx_add_one(q[i], res[i], t->add);
    }
    store8(q, st, t->out + ch * t->ch_stride, lane0);
}

/* Lane masks of a vector's runs, per 8-lane half: bm[2 * r + h]. */
typedef struct run_masks {
    __m256i bm[2 * QX_MAX_RUNS];
} run_masks;

TGT static void make_masks(const qx_src *s, run_masks *m) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int32_t r = 1; r < s->n; r++)
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_set1_epi32((s->mask[r] >> (8 * h)) & 0xFF);
            m->bm[2 * r + h] = _mm256_cmpeq_epi32(_mm256_and_si256(bits, sel), sel);
        }
}

/* Lanes 8h .. 8h+7 of a vector at byte offset o (o includes the 32 * h). */
TGT static inline __m256i load_half(const qx_src *s, const run_masks *m, int h, int64_t o) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(s->p[0] + o));
    for (int32_t r = 1; r < s->n; r++)
        x = _mm256_blendv_epi8(x, _mm256_loadu_si256((const __m256i *)(s->p[r] + o)),
                               m->bm[2 * r + h]);
    return x;
}

/* vpmaddubsw path: rows r0..r0+3 x 16 slots of one activation vector. */
TGT static void conv_quad_ubs(const qx_conv_tile *t, const qx_src *s, const run_masks *m, int r0,
                              const qx_vec_store *st) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c[4][2];
    for (int r = 0; r < 4; r++)
        c[r][0] = c[r][1] = _mm256_setzero_si256();
    const int8_t *wk = t->w + 4 * r0;
    for (int32_t k = 0; k < t->k4; k++, wk += 32) {
        const __m256i x0 = load_half(s, m, 0, t->koff[k]);
        const __m256i x1 = load_half(s, m, 1, (int64_t)t->koff[k] + 32);
        for (int r = 0; r < 4; r++) {
            const __m256i b = _mm256_set1_epi32(load32(wk + 4 * r));
            c[r][0] =
                _mm256_add_epi32(c[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(x0, b), ones));
            c[r][1] =
                _mm256_add_epi32(c[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(x1, b), ones));
        }
    }
    for (int r = 0; r < 4 && r0 + r < t->n_rows; r++) {
        conv_out8(t, r0 + r, c[r][0], st, 0);
        conv_out8(t, r0 + r, c[r][1], st, 8);
    }
}

/* vpmaddwd path: rows r0..r0+3 x 8 slots (lanes lane0..lane0+7). */
TGT static void conv_quad_wd(const qx_conv_tile *t, const qx_src *s, const run_masks *m, int r0,
                             int lane0, const qx_vec_store *st) {
    __m256i lo[4], hi[4];
    for (int r = 0; r < 4; r++)
        lo[r] = hi[r] = _mm256_setzero_si256();
    const int8_t *wk = t->w + 4 * r0;
    for (int32_t k = 0; k < t->k4; k++, wk += 32) {
        const __m256i x = load_half(s, m, lane0 / 8, (int64_t)t->koff[k] + 4 * lane0);
        const __m256i x0 = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(x)); /* slots 0-3 */
        const __m256i x1 = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(x, 1));
        for (int r = 0; r < 4; r++) {
            const __m256i b = _mm256_cvtepi8_epi16(_mm_set1_epi32(load32(wk + 4 * r)));
            lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(x0, b));
            hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(x1, b));
        }
    }
    for (int r = 0; r < 4 && r0 + r < t->n_rows; r++) {
        /* hadd gives slots 0 1 4 5 2 3 6 7; vpermq restores the order */
        const __m256i v = _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo[r], hi[r]), 0xD8);
        conv_out8(t, r0 + r, v, st, lane0);
    }
}

TGT static void conv_tile(const qx_conv_tile *t) {
    run_masks m;
    for (int h = 0; h < 2; h++) {
        const qx_src *s = &t->src[h];
        const qx_vec_store *st = &t->st[h];
        if (st->n_seg == 0) continue;
        make_masks(s, &m);
        for (int r0 = 0; r0 < t->n_rows; r0 += 4) {
            if (t->maddubs_ok) {
                conv_quad_ubs(t, s, &m, r0, st);
            } else {
                conv_quad_wd(t, s, &m, r0, 0, st);
                conv_quad_wd(t, s, &m, r0, 8, st);
            }
        }
    }
}

/* 8 channels (c0 .. c0+7 of the tile) of row r. */
TGT static void gemm_out8(const qx_gemm_tile *t, int r, int c0, __m256i acc) {
    const int nc = t->n_ch - c0;
    if (nc <= 0) return;
    int8_t q[8];
    acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(t->e.corr + c0)));
    rq8(acc, _mm256_loadu_ps(t->e.mult_f + c0), t->e.rq, (int64_t)t->ch0 + c0, 1, q);
    memcpy(t->y + (size_t)r * t->ldy + c0, q, (size_t)(nc < 8 ? nc : 8));
}

/* One 16-channel block (columns c0 .. c0+15) for all rows. */
TGT static void gemm_block(const qx_gemm_tile *t, const int8_t *w, int c0) {
    const uint8_t *ar[4];
    for (int r = 0; r < 4; r++)
        ar[r] = t->a + t->a_stride * (size_t)(r < t->n_rows ? r : t->n_rows - 1);
    if (t->maddubs_ok) {
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i c[4][2];
        for (int r = 0; r < 4; r++)
            c[r][0] = c[r][1] = _mm256_setzero_si256();
        for (int32_t k = 0; k < t->k4; k++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 64 * k));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 64 * k + 32));
            for (int r = 0; r < 4; r++) {
                const __m256i b = _mm256_set1_epi32(load32(ar[r] + 4 * k));
                c[r][0] =
                    _mm256_add_epi32(c[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w0), ones));
                c[r][1] =
                    _mm256_add_epi32(c[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w1), ones));
            }
        }
        for (int r = 0; r < t->n_rows; r++) {
            gemm_out8(t, r, c0, c[r][0]);
            gemm_out8(t, r, c0 + 8, c[r][1]);
        }
        return;
    }
    for (int half = 0; half < 2; half++) {
        __m256i lo[4], hi[4];
        for (int r = 0; r < 4; r++)
            lo[r] = hi[r] = _mm256_setzero_si256();
        for (int32_t k = 0; k < t->k4; k++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 64 * k + 32 * half));
            const __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(wv)); /* ch 0-3 */
            const __m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(wv, 1));
            for (int r = 0; r < 4; r++) {
                const __m256i b = _mm256_cvtepu8_epi16(_mm_set1_epi32(load32(ar[r] + 4 * k)));
                lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(b, w0));
                hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(b, w1));
            }
        }
        for (int r = 0; r < t->n_rows; r++)
            gemm_out8(t, r, c0 + 8 * half,
                      _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo[r], hi[r]), 0xD8));
    }
}

TGT static void gemm_tile(const qx_gemm_tile *t) {
    /* row quads: the register file holds 4 rows x 16 channels */
    for (int r0 = 0; r0 < t->n_rows; r0 += 4) {
        qx_gemm_tile q = *t;
        q.a = t->a + t->a_stride * (size_t)r0;
        q.y = t->y + t->ldy * (size_t)r0;
        q.n_rows = t->n_rows - r0 < 4 ? t->n_rows - r0 : 4;
        gemm_block(&q, q.w, 0);
        if (q.n_ch > QX_GEMM_BLOCK) gemm_block(&q, q.w + (size_t)q.k4 * 64, QX_GEMM_BLOCK);
    }
}

static const qx_ukernels k_avx2 = {.conv_tile = conv_tile, .gemm_tile = gemm_tile};

const qx_ukernels *qx_ukernels_avx2(void) { return &k_avx2; }

#else

const qx_ukernels *qx_ukernels_avx2(void) { return NULL; }

#endif
