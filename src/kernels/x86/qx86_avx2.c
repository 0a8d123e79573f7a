/* qx86_avx2.c - AVX2 micro-kernels of the x86 int8 kernels (qx86.h), with
 * the same tile contracts and packed layouts as the AVX-512 VNNI ones.
 *
 * Three dot-product forms, chosen per layer at pack time:
 *  - vpmaddubsw (u8 x s8 pairs -> s16) + vpmaddwd by ones (-> s32), exact
 *    when 255 * (|w0| + |w1|) <= 32767 for every combined pair (maddubs_ok);
 *    conv weights where few pairs break that are split into a clamped part
 *    and sparse fix-ups (qf_x86_conv_split);
 *  - the sign form (sign_ok: the other 8-bit layers, whose weights are
 *    within +-127): with q = u - 128 the signed activation, vpmaddubsw of
 *    |q| (vpabsb, u8) by w * sign(q) (vpsignb) sums q * w with every pair
 *    within 2 * 128 * 127 = 32512, exact; the accumulators start at
 *    128 * sum(w) to give the u8 form's sums. It costs a vpsignb per
 *    vpmaddubsw (and a vpxor and a vpabsb per activation vector): about
 *    0.69 of the plain form's speed in register-only loops on Zen 3, where
 *    vpmaddwd on 16-bit values ran at 0.60;
 *  - vpmaddwd on 16-bit activations and weights, for weights holding -128
 *    (which qforge's packing never produces, kept as the general fallback):
 *    conv tiles widen the tile's weights once into a stack copy and run
 *    4 rows x 8 slots per pass (8 accumulators, two vphaddd at the end);
 *    gemm tiles widen in the loop.
 * Gemm tiles run rows in quads (vpmaddubsw, sign) or pairs (16-bit), only
 * the tile's rows: at batch 1 a fully connected layer streams its weights
 * near the memory's speed.
 * Epilogue: the spec's SIMD FP32 form, a row's 16 lanes inlined into the
 * conv tile loops (out16; the gemm tiles take 8 lanes); FIXED mode scalar. */
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

/* n (<= 8) bytes from s to d: one 8-byte move when whole (the common
 * case: no library call), else byte by byte. */
static inline void move8(int8_t *d, const int8_t *s, int n) {
    if (n == 8) {
        memcpy(d, s, 8);
        return;
    }
    for (int i = 0; i < n; i++)
        d[i] = s[i];
}

/* n (<= 16) bytes from s to d: two overlapping moves of 8 or 4 bytes when
 * n >= 4 (no library call), else byte by byte. */
static inline void move16(int8_t *d, const int8_t *s, int n) {
    if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (int i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/* Store lanes [lane0, lane0 + 8) of a slot vector. */
static inline void store8(const int8_t q[8], const qx_vec_store *st, int8_t *base, int lane0) {
    for (int32_t s = 0; s < st->n_seg; s++) {
        const qx_seg *g = &st->seg[s];
        const int lo = g->lane > lane0 ? g->lane : lane0;
        const int hi = g->lane + g->n < lane0 + 8 ? g->lane + g->n : lane0 + 8;
        if (lo < hi) move8(base + g->off + (lo - g->lane), q + (lo - lane0), hi - lo);
    }
}

/* Lanes [lane0, lane0 + 8) of a slot vector from base (the residual). */
static inline void load8(int8_t r[8], const qx_vec_store *st, const int8_t *base, int lane0) {
    for (int32_t s = 0; s < st->n_seg; s++) {
        const qx_seg *g = &st->seg[s];
        const int lo = g->lane > lane0 ? g->lane : lane0;
        const int hi = g->lane + g->n < lane0 + 8 ? g->lane + g->n : lane0 + 8;
        if (lo < hi) move8(r + (lo - lane0), base + g->off + (lo - g->lane), hi - lo);
    }
}

/* The fused residual add on 8 lanes of int8 values held as int32 (a: the
 * convolution's results): qx_add_one's steps in the same order, each one
 * rounding once (an exact product of two floats rounded to binary32 is the
 * single-precision multiply; cvtps2dq rounds half to even), so the results
 * are qx_add_one's, within int8. */
TGT static inline __m256i add_i32(__m256i a, __m256i b, const qx_add_consts *c) {
    const __m256 fa = _mm256_cvtepi32_ps(_mm256_sub_epi32(a, _mm256_set1_epi32(c->a_zp)));
    const __m256 fb = _mm256_cvtepi32_ps(_mm256_sub_epi32(b, _mm256_set1_epi32(c->b_zp)));
    __m256 sum = _mm256_add_ps(_mm256_mul_ps(fa, _mm256_set1_ps(c->a_mult)),
                               _mm256_mul_ps(fb, _mm256_set1_ps(c->b_mult)));
    sum = _mm256_min_ps(_mm256_max_ps(sum, _mm256_set1_ps(c->lo)), _mm256_set1_ps(c->hi));
    return _mm256_add_epi32(_mm256_cvtps_epi32(sum), _mm256_set1_epi32(c->out_zp));
}

TGT static void conv_out8(const qx_conv_tile *t, int r, __m256i acc, const qx_vec_store *st,
                          int lane0) {
    const int64_t ch = (int64_t)t->ch0 + r;
    int8_t q[8];
    acc = _mm256_add_epi32(acc, _mm256_set1_epi32(t->e.corr[r]));
    rq8(acc, _mm256_set1_ps(t->e.mult_f[r]), t->e.rq, ch, 0, q);
    if (t->add) {
        /* the fused residual add (lanes no segment covers are computed
         * from zeros and never stored) */
        int8_t res[8] = {0};
        load8(res, st, t->res + ch * t->ch_stride, lane0);
        const __m256i v =
            add_i32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)),
                    _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)res)), t->add);
        const __m128i w16 =
            _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)q, _mm_packs_epi16(w16, w16));
    }
    store8(q, st, t->out + ch * t->ch_stride, lane0);
}

/* 16 lanes of a slot vector for row r (lo: lanes 0-7, hi: 8-15) in FIXED
 * mode: 8 lanes at a time. */
TGT static __attribute__((noinline)) void conv_out16_fixed(const qx_conv_tile *t, int r, __m256i lo,
                                                           __m256i hi, const qx_vec_store *st) {
    conv_out8(t, r, lo, st, 0);
    conv_out8(t, r, hi, st, 8);
}

/* The 16 bytes at the lanes' positions of a vector of several runs from
 * base (lanes no run covers read zeros). */
TGT static __attribute__((noinline)) __m128i gather16(const int8_t *base, const qx_vec_store *st) {
    int8_t rb[16] = {0};
    for (int32_t i = 0; i < st->n_seg; i++)
        move16(rb + st->seg[i].lane, base + st->seg[i].off, st->seg[i].n);
    return _mm_loadu_si128((const __m128i *)rb);
}

/* gather16's result without its stack buffer, whose byte stores the
 * vector load could not forward from (a stall per row of every vector of
 * several runs, 6.6% of a Fashion-MNIST ResNet run at batch 64): each run
 * is one 16-byte load ending where the run ends (within the tensor, which
 * starts `before` bytes ahead of base), shifted into its lanes by pshufb.
 * Runs that end in the tensor's first 15 bytes take gather16. */
TGT static inline __m128i gather16_reg(const int8_t *base, int64_t before, const qx_vec_store *st) {
    const __m128i id = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i acc = _mm_setzero_si128();
    for (int32_t i = 0; i < st->n_seg; i++) {
        const qx_seg *g = &st->seg[i];
        const int64_t end = g->off + g->n;
        if (before + end < 16) return gather16(base, st);
        const __m128i w = _mm_loadu_si128((const __m128i *)(base + end - 16));
        /* lane L takes the window's byte L + 16 - n - lane */
        const __m128i sh =
            _mm_shuffle_epi8(w, _mm_add_epi8(id, _mm_set1_epi8((char)(16 - g->n - g->lane))));
        const __m128i in = _mm_and_si128(_mm_cmpgt_epi8(id, _mm_set1_epi8((char)(g->lane - 1))),
                                         _mm_cmpgt_epi8(_mm_set1_epi8((char)(g->lane + g->n)), id));
        acc = _mm_or_si128(acc, _mm_and_si128(sh, in));
    }
    return acc;
}

/* Stores the lanes of b that runs cover at their positions from base. */
TGT static __attribute__((noinline)) void scatter16(int8_t *base, __m128i b,
                                                    const qx_vec_store *st) {
    int8_t q[16];
    _mm_storeu_si128((__m128i *)q, b);
    for (int32_t i = 0; i < st->n_seg; i++)
        move16(base + st->seg[i].off, q + st->seg[i].lane, st->seg[i].n);
}

/* Bytes b[lane .. lane + n) to d[0 .. n) (lane + n <= 16), without the
 * stack copy and call of scatter16: two overlapping 8- or 4-byte stores of
 * the bytes shifted into place by pshufb (one run covering part of a
 * vector: the tail of a plane, or of a row of the grid). */
TGT static inline void store_run(int8_t *d, __m128i b, int lane, int n) {
    const __m128i id = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i lo = _mm_shuffle_epi8(b, _mm_add_epi8(id, _mm_set1_epi8((char)lane)));
    if (n >= 8) {
        const __m128i hi =
            _mm_shuffle_epi8(b, _mm_add_epi8(id, _mm_set1_epi8((char)(lane + n - 8))));
        _mm_storel_epi64((__m128i *)(d + n - 8), hi);
        _mm_storel_epi64((__m128i *)d, lo);
    } else if (n >= 4) {
        const __m128i hi =
            _mm_shuffle_epi8(b, _mm_add_epi8(id, _mm_set1_epi8((char)(lane + n - 4))));
        const int32_t a = _mm_cvtsi128_si32(lo), c = _mm_cvtsi128_si32(hi);
        memcpy(d + n - 4, &c, 4);
        memcpy(d, &a, 4);
    } else {
        int8_t q[16];
        _mm_storeu_si128((__m128i *)q, lo);
        move16(d, q, n);
    }
}

/* The epilogue of one row's 16 lanes, inlined into the tile loops with its
 * constants set once per tile (out16_init): a call per row, with its
 * constants, cost more than the row's arithmetic on short reductions (1x1
 * layers of 16 channels, small images whose vectors hold several runs). */
typedef struct out16_k {
    __m256 fmin, fmax;
    __m256i zp;
    bool fp32; /* FP32 requantization (else FIXED, conv_out16_fixed) */
    bool one;  /* the vector's 16 lanes are one run of the output */
} out16_k;

/* The tile's constants (one is set per vector). */
TGT static inline void out16_init(const qx_conv_tile *t, out16_k *k) {
    const qf_ref_requant *rq = t->e.rq;
    k->fp32 = rq->mode == QF_RQ_FP32;
    k->one = false;
    k->fmin = _mm256_set1_ps((float)(rq->act_min - rq->out_zp));
    k->fmax = _mm256_set1_ps((float)(rq->act_max - rq->out_zp));
    k->zp = _mm256_set1_epi32(rq->out_zp);
}

static inline bool one_run(const qx_vec_store *st) { return st->n_seg == 1 && st->seg[0].n == 16; }

/* Row r's 16 lanes in FP32 mode: rq8's operations, then the fused add's if
 * any (lanes no run covers are computed from zeros and never stored). */
TGT static inline __attribute__((always_inline)) void out16(const qx_conv_tile *t, int r,
                                                            __m256i lo, __m256i hi,
                                                            const qx_vec_store *st,
                                                            const out16_k *k) {
    if (!k->fp32) {
        conv_out16_fixed(t, r, lo, hi, st);
        return;
    }
    const __m256i corr = _mm256_set1_epi32(t->e.corr[r]);
    const __m256 m = _mm256_set1_ps(t->e.mult_f[r]);
    __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(lo, corr)), m);
    __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(hi, corr)), m);
    f0 = _mm256_min_ps(_mm256_max_ps(f0, k->fmin), k->fmax);
    f1 = _mm256_min_ps(_mm256_max_ps(f1, k->fmin), k->fmax);
    __m256i v0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), k->zp);
    __m256i v1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), k->zp);
    const int64_t row = ((int64_t)t->ch0 + r) * t->ch_stride;
    if (t->add) {
        const __m128i rv = k->one
                               ? _mm_loadu_si128((const __m128i *)(t->res + row + st->seg[0].off))
                               : gather16_reg(t->res + row, row, st);
        v0 = add_i32(v0, _mm256_cvtepi8_epi32(rv), t->add);
        v1 = add_i32(v1, _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(rv, rv)), t->add);
    }
    /* values are within int8: the saturating packs are exact */
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
    const __m128i b =
        _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
    if (k->one)
        _mm_storeu_si128((__m128i *)(t->out + row + st->seg[0].off), b);
    else if (st->n_seg == 1)
        store_run(t->out + row + st->seg[0].off, b, st->seg[0].lane, st->seg[0].n);
    else
        scatter16(t->out + row, b, st);
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

/* vpmaddubsw path: rows r0..r0+3 x 16 slots of one activation vector
 * (8 accumulators, written out by hand). */
/* Sign form (sg): the activations' bytes u are q + 128; the loop takes
 * q = u ^ 0x80, multiplies |q| (vpabsb: 128 for -128, as u8) by the
 * weights with q's sign (vpsignb; w != -128, so -w fits) and so sums q * w,
 * which the accumulators' start (128 * sum(w)) brings back to the u8
 * form's sums. The start of a row past n_rows is 0 (never stored). */
TGT static inline int32_t sign_start(const qx_conv_tile *t, int r) {
    if (r >= t->n_rows) return 0;
    return (int32_t)(128u * (uint32_t)t->wsum[t->ch0 + r]);
}

TGT static inline __attribute__((always_inline)) void
conv_ubs(const qx_conv_tile *t, const qx_src *s, const run_masks *m, const bool multi, int r0,
         const qx_vec_store *st, const out16_k *ok, const bool sg, const uint8_t *pre) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i m80 = _mm256_set1_epi8((char)0x80);
    __m256i c00, c10, c20, c30;
    if (sg) {
        c00 = _mm256_set1_epi32(sign_start(t, r0));
        c10 = _mm256_set1_epi32(sign_start(t, r0 + 1));
        c20 = _mm256_set1_epi32(sign_start(t, r0 + 2));
        c30 = _mm256_set1_epi32(sign_start(t, r0 + 3));
    } else {
        c00 = c10 = c20 = c30 = _mm256_setzero_si256();
    }
    __m256i c01 = c00, c11 = c10, c21 = c20, c31 = c30;
    const int8_t *wk = t->w + 4 * r0;
    for (int32_t k = 0; k < t->k4; k++, wk += 32) {
        __m256i x0, x1, u0, u1;
        if (sg && pre) {
            /* q and |q|, made once for all the tile's blocks (sign_pre) */
            const uint8_t *b = pre + 128 * (int64_t)k;
            x0 = _mm256_load_si256((const __m256i *)b);
            x1 = _mm256_load_si256((const __m256i *)(b + 32));
            u0 = _mm256_load_si256((const __m256i *)(b + 64));
            u1 = _mm256_load_si256((const __m256i *)(b + 96));
        } else {
            const int64_t o = t->koff[k];
            x0 = multi ? load_half(s, m, 0, o) : _mm256_loadu_si256((const __m256i *)(s->p[0] + o));
            x1 = multi ? load_half(s, m, 1, o + 32)
                       : _mm256_loadu_si256((const __m256i *)(s->p[0] + o + 32));
            u0 = x0;
            u1 = x1;
        }
        if (sg && !pre) {
            x0 = _mm256_xor_si256(x0, m80);
            x1 = _mm256_xor_si256(x1, m80);
            u0 = _mm256_abs_epi8(x0);
            u1 = _mm256_abs_epi8(x1);
        }
#define QX_UBS_ROW(r, a0, a1)                                                                      \
    do {                                                                                           \
        const __m256i b = _mm256_set1_epi32(load32(wk + 4 * r));                                   \
        const __m256i b0 = sg ? _mm256_sign_epi8(b, x0) : b;                                       \
        const __m256i b1 = sg ? _mm256_sign_epi8(b, x1) : b;                                       \
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(u0, b0), ones));          \
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(u1, b1), ones));          \
    } while (0)
        QX_UBS_ROW(0, c00, c01);
        QX_UBS_ROW(1, c10, c11);
        QX_UBS_ROW(2, c20, c21);
        QX_UBS_ROW(3, c30, c31);
#undef QX_UBS_ROW
    }
    /* split weights: the remainders of the pairs clamped in t->w, row by row */
    if (t->fix_start) {
#define QX_UBS_FIX(r, a0, a1)                                                                      \
    for (int32_t i = t->fix_start[r0 + r]; i < t->fix_start[r0 + r + 1]; i++) {                    \
        const uint32_t e = t->fix[i];                                                              \
        const int64_t o = t->koff[e & 0x7FFF];                                                     \
        const __m256i x0 =                                                                         \
            multi ? load_half(s, m, 0, o) : _mm256_loadu_si256((const __m256i *)(s->p[0] + o));    \
        const __m256i x1 = multi ? load_half(s, m, 1, o + 32)                                      \
                                 : _mm256_loadu_si256((const __m256i *)(s->p[0] + o + 32));        \
        const __m256i b = _mm256_set1_epi32((int32_t)((e >> 16) << (e & 0x8000 ? 16 : 0)));        \
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, b), ones));           \
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(x1, b), ones));           \
    }
        QX_UBS_FIX(0, c00, c01)
        QX_UBS_FIX(1, c10, c11)
        QX_UBS_FIX(2, c20, c21)
        QX_UBS_FIX(3, c30, c31)
#undef QX_UBS_FIX
    }
#define QX_UBS_OUT(r, a0, a1)                                                                      \
    if (r0 + r < t->n_rows) out16(t, r0 + r, a0, a1, st, ok)
    QX_UBS_OUT(0, c00, c01);
    QX_UBS_OUT(1, c10, c11);
    QX_UBS_OUT(2, c20, c21);
    QX_UBS_OUT(3, c30, c31);
#undef QX_UBS_OUT
}

/* Sign form: the signed activations q = u ^ 0x80 and |q| of a vector's
 * k4 steps ([k][q 64 bytes, |q| 64 bytes]), made once when the tile runs
 * them through several 4-row passes (its blocks x 2), instead of a vpxor
 * and a vpabsb per half, step and pass. */
#define SIGN_PRE_STEPS 512
TGT static void sign_pre(const qx_conv_tile *t, const qx_src *s, uint8_t *pre) {
    const __m256i m80 = _mm256_set1_epi8((char)0x80);
    for (int32_t k = 0; k < t->k4; k++) {
        const int64_t o = t->koff[k];
        for (int h = 0; h < 2; h++) {
            const __m256i x =
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(s->p[0] + o + 32 * h)), m80);
            _mm256_store_si256((__m256i *)(pre + 128 * (int64_t)k + 32 * h), x);
            _mm256_store_si256((__m256i *)(pre + 128 * (int64_t)k + 64 + 32 * h),
                               _mm256_abs_epi8(x));
        }
    }
}

/* The tile's n_blk channel blocks on one vector, each in two 4-row passes. */
TGT static inline __attribute__((always_inline)) void
vec_blocks(const qx_conv_tile *t0, const qx_src *s, const run_masks *m, const bool multi,
           const qx_vec_store *st, const out16_k *ok, const bool sg, const uint8_t *pre) {
    qx_conv_tile t = *t0;
    for (int32_t b = 0; b < t0->n_blk; b++) {
        qx_tile_block(t0, b, &t);
        conv_ubs(&t, s, m, multi, 0, st, ok, sg, pre);
        if (t.n_rows > 4) conv_ubs(&t, s, m, multi, 4, st, ok, sg, pre);
    }
}

/* Vector h of the tile's slots for each of its n_blk channel blocks (the
 * run masks, and the sign form's q and |q|, made once). */
TGT static inline __attribute__((always_inline)) void vec_ubs_k(const qx_conv_tile *t0, int h,
                                                                const out16_k *k, const bool sg) {
    const qx_src *s = &t0->src[h];
    const qx_vec_store *st = &t0->st[h];
    run_masks m;
    out16_k ok = *k;
    ok.one = one_run(st);
    if (s->n > 1) {
        make_masks(s, &m);
        vec_blocks(t0, s, &m, true, st, &ok, sg, NULL);
        return;
    }
    /* (vectors of several runs have reductions too long for pre: their
     * runs are gathered into one when k4 <= GATHER_STEPS, qx86_conv.c) */
    if (sg && t0->k4 <= SIGN_PRE_STEPS && (t0->n_blk > 1 || t0->rows_left > 4)) {
        _Alignas(32) uint8_t pre[SIGN_PRE_STEPS * 128];
        sign_pre(t0, s, pre);
        vec_blocks(t0, s, &m, false, st, &ok, true, pre);
        return;
    }
    vec_blocks(t0, s, &m, false, st, &ok, sg, NULL);
}

TGT static void vec_ubs(const qx_conv_tile *t, int h, const out16_k *k) {
    vec_ubs_k(t, h, k, false);
}

TGT static void vec_sign(const qx_conv_tile *t, int h, const out16_k *k) {
    vec_ubs_k(t, h, k, true);
}

/* 128-bit lane masks of a vector's runs, per 4-slot quad: qm[4 * r + q]. */
typedef struct quad_masks {
    __m128i qm[4 * QX_MAX_RUNS];
} quad_masks;

TGT static void make_quad_masks(const qx_src *s, quad_masks *m) {
    const __m128i sel = _mm_setr_epi32(1, 2, 4, 8);
    for (int32_t r = 1; r < s->n; r++)
        for (int q = 0; q < 4; q++) {
            const __m128i bits = _mm_set1_epi32((s->mask[r] >> (4 * q)) & 0xF);
            m->qm[4 * r + q] = _mm_cmpeq_epi32(_mm_and_si128(bits, sel), sel);
        }
}

/* Slots 4q .. 4q+3 of a vector at reduction offset o, widened to 16 bits:
 * lanes (slot, channel pair). */
TGT static inline __m256i quad16(const qx_src *s, const quad_masks *m, bool multi, int q,
                                 int64_t o) {
    __m128i x = _mm_loadu_si128((const __m128i *)(s->p[0] + o + 16 * q));
    if (multi)
        for (int32_t r = 1; r < s->n; r++)
            x = _mm_blendv_epi8(x, _mm_loadu_si128((const __m128i *)(s->p[r] + o + 16 * q)),
                                m->qm[4 * r + q]);
    return _mm256_cvtepu8_epi16(x);
}

/* vpmaddwd path: rows r0 .. r0+NR-1 (NR <= 3) x the 16 slots of one
 * activation vector. Per reduction step the 4 channels of a slot are 4
 * 16-bit lanes and each row's 4 weights one 64-bit element broadcast to all
 * four, so vpmaddwd leaves two partial sums per slot (channels 0-1, 2-3),
 * added by vphaddd in the epilogue. 3 rows x 4 quads hold 12 accumulators,
 * 3 weight registers and one activation register. */
/* Weights widened to 16 bits once per tile: [k4][8 rows][4] int16. Longer
 * reductions are widened in the loop. */
#define WD_STEPS 2048

/* 64-bit element i of v in all four. */
TGT static inline __m256i bcast_q(__m256i v, int i) {
    switch (i) {
    case 0: return _mm256_permute4x64_epi64(v, 0x00);
    case 1: return _mm256_permute4x64_epi64(v, 0x55);
    case 2: return _mm256_permute4x64_epi64(v, 0xAA);
    default: return _mm256_permute4x64_epi64(v, 0xFF);
    }
}

/* Row r's 4 weights of step k, 16 bits each, in all four 64-bit elements:
 * from the widened copy w16 (NULL: widen the step's bytes here). */
TGT static inline __attribute__((always_inline)) __m256i
wrow(const qx_conv_tile *t, const int16_t *w16, const bool pre, int32_t k, int r) {
    if (pre) {
        int64_t v;
        memcpy(&v, w16 + 32 * (int64_t)k + 4 * r, sizeof v);
        return _mm256_set1_epi64x(v);
    }
    const int wb = r < 4 ? 0 : 4;
    const __m256i wv =
        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(t->w + 32 * (int64_t)k + 4 * wb)));
    return bcast_q(wv, r - wb);
}

/* vpmaddwd path: rows r0 .. r0+3 x slots 8h .. 8h+7 of one activation
 * vector. Per reduction step the 4 channels of a slot are 4 16-bit lanes
 * and each row's 4 weights one 64-bit element broadcast to all four, so
 * vpmaddwd leaves two partial sums per slot (channels 0-1, 2-3), added by
 * vphaddd in the epilogue. 8 accumulators, 4 weight registers and the
 * activations (written out by hand: compilers keep accumulator arrays on
 * the stack). */
TGT static inline __attribute__((always_inline)) void
conv_wd(const qx_conv_tile *t, const int16_t *w16, const bool pre, const qx_src *s,
        const quad_masks *m, const bool multi, const int r0, const int h, const qx_vec_store *st,
        __m256i save[4], const out16_k *ok) {
    const __m256i z = _mm256_setzero_si256();
    __m256i c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    for (int32_t k = 0; k < t->k4; k++) {
        const __m256i b0 = wrow(t, w16, pre, k, r0), b1 = wrow(t, w16, pre, k, r0 + 1);
        const __m256i b2 = wrow(t, w16, pre, k, r0 + 2), b3 = wrow(t, w16, pre, k, r0 + 3);
        const int64_t o = t->koff[k];
        const __m256i x0 = quad16(s, m, multi, 2 * h, o);
        const __m256i x1 = quad16(s, m, multi, 2 * h + 1, o);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x0, b0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x1, b0));
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x0, b1));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x1, b1));
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x0, b2));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x1, b2));
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x0, b3));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x1, b3));
    }
    /* hadd gives slots 0 1 4 5 2 3 6 7 of the quad pair; vpermq restores
     * the order. Slots 0-7 wait in save until slots 8-15 are done: one
     * 16-lane epilogue per row (8-lane ones cost more than this path's
     * short reductions, e.g. 1x1 layers of 16 channels). */
#define QX_WD_OUT(r, a, b)                                                                         \
    if (r0 + r < t->n_rows) {                                                                      \
        const __m256i v = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8);                 \
        if (h == 0)                                                                                \
            save[r] = v;                                                                           \
        else                                                                                       \
            out16(t, r0 + r, save[r], v, st, ok);                                                  \
    }
    QX_WD_OUT(0, c00, c01);
    QX_WD_OUT(1, c10, c11);
    QX_WD_OUT(2, c20, c21);
    QX_WD_OUT(3, c30, c31);
#undef QX_WD_OUT
}

/* The vpmaddwd path for one vector: row quads x slot halves; one copy per
 * case so that each inner loop is branch-free. */
#define QX_WD_VEC(name, PRE, MULTI)                                                                \
    TGT static void name(const qx_conv_tile *t, const int16_t *w16, const qx_src *s,               \
                         const quad_masks *m, const qx_vec_store *st, const out16_k *k) {          \
        out16_k ok = *k;                                                                           \
        ok.one = one_run(st);                                                                      \
        for (int r0 = 0; r0 < t->n_rows; r0 += 4) {                                                \
            __m256i save[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),                     \
                               _mm256_setzero_si256(), _mm256_setzero_si256()};                    \
            conv_wd(t, w16, PRE, s, m, MULTI, r0, 0, st, save, &ok);                               \
            conv_wd(t, w16, PRE, s, m, MULTI, r0, 1, st, save, &ok);                               \
        }                                                                                          \
    }
QX_WD_VEC(vec_wd_pre, true, false)
QX_WD_VEC(vec_wd_pre_multi, true, true)
QX_WD_VEC(vec_wd_long, false, false)
QX_WD_VEC(vec_wd_long_multi, false, true)
#undef QX_WD_VEC

TGT static void conv_vec_wd(const qx_conv_tile *t, const int16_t *w16, const qx_src *s,
                            const qx_vec_store *st, const out16_k *k) {
    quad_masks m;
    if (s->n > 1) {
        make_quad_masks(s, &m);
        (w16 ? vec_wd_pre_multi : vec_wd_long_multi)(t, w16, s, &m, st, k);
    } else {
        (w16 ? vec_wd_pre : vec_wd_long)(t, w16, s, &m, st, k);
    }
}

/* The 16-bit path of a tile, out of line: its widened weights (128 KiB)
 * would otherwise be conv_tile's frame on every call, which perf showed
 * costing most of conv_tile's own time on short reductions. */
TGT static __attribute__((noinline)) void conv_tile_wide(const qx_conv_tile *t, const out16_k *ok) {
    _Alignas(32) int16_t w16[WD_STEPS * 32];
    const bool wide = t->k4 <= WD_STEPS;
    if (wide)
        for (int32_t k = 0; k < t->k4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(t->w + 32 * (int64_t)k));
            _mm256_store_si256((__m256i *)(w16 + 32 * k),
                               _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)));
            _mm256_store_si256((__m256i *)(w16 + 32 * k + 16),
                               _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
        }
    for (int h = 0; h < 2; h++)
        if (t->st[h].n_seg) conv_vec_wd(t, wide ? w16 : NULL, &t->src[h], &t->st[h], ok);
}

TGT static void conv_tile(const qx_conv_tile *t0) {
    out16_k ok;
    out16_init(t0, &ok);
    if (!t0->maddubs_ok && !t0->sign_ok) {
        qx_conv_tile t = *t0;
        for (int32_t b = 0; b < t0->n_blk; b++) {
            qx_tile_block(t0, b, &t);
            conv_tile_wide(&t, &ok);
        }
        return;
    }
    for (int h = 0; h < 2; h++) {
        if (!t0->st[h].n_seg) continue;
        if (t0->maddubs_ok)
            vec_ubs(t0, h, &ok);
        else
            vec_sign(t0, h, &ok);
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

/* vpmaddubsw: NR (1-4) rows x one 16-channel block (columns c0 ..
 * c0+15): 2 accumulators a row. */
/* sg: the sign form (conv_ubs'), here with the activations broadcast: |q|
 * times the weights with q's sign; ws128 holds 128 * sum(w) of the
 * block's 16 channels (the accumulators' start). */
TGT static inline __attribute__((always_inline)) void gemm_ubs(const qx_gemm_tile *t,
                                                               const int8_t *w, int c0,
                                                               const int NR, const bool sg,
                                                               const int32_t *ws128) {
    const uint8_t *ar[4];
    for (int r = 0; r < NR; r++)
        ar[r] = t->a + t->a_stride * (size_t)r;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00;
    if (sg) {
        c00 = _mm256_loadu_si256((const __m256i *)ws128);
        c01 = _mm256_loadu_si256((const __m256i *)(ws128 + 8));
    }
    __m256i c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01;
    for (int32_t k = 0; k < t->k4; k++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 64 * k));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 64 * k + 32));
#define QX_GEMM_UBS(r, a0, a1)                                                                     \
    if (NR > r) {                                                                                  \
        if (sg) {                                                                                  \
            const __m256i q =                                                                      \
                _mm256_set1_epi32((int32_t)((uint32_t)load32(ar[r] + 4 * k) ^ 0x80808080u));       \
            const __m256i u = _mm256_abs_epi8(q);                                                  \
            a0 = _mm256_add_epi32(                                                                 \
                a0, _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(w0, q)), ones));    \
            a1 = _mm256_add_epi32(                                                                 \
                a1, _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(w1, q)), ones));    \
        } else {                                                                                   \
            const __m256i b = _mm256_set1_epi32(load32(ar[r] + 4 * k));                            \
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(b, w0), ones));       \
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(b, w1), ones));       \
        }                                                                                          \
    }
        QX_GEMM_UBS(0, c00, c01)
        QX_GEMM_UBS(1, c10, c11)
        QX_GEMM_UBS(2, c20, c21)
        QX_GEMM_UBS(3, c30, c31)
#undef QX_GEMM_UBS
    }
    gemm_out8(t, 0, c0, c00);
    gemm_out8(t, 0, c0 + 8, c01);
    if (NR > 1) {
        gemm_out8(t, 1, c0, c10);
        gemm_out8(t, 1, c0 + 8, c11);
    }
    if (NR > 2) {
        gemm_out8(t, 2, c0, c20);
        gemm_out8(t, 2, c0 + 8, c21);
    }
    if (NR > 3) {
        gemm_out8(t, 3, c0, c30);
        gemm_out8(t, 3, c0 + 8, c31);
    }
}

/* vpmaddwd on 16-bit values: NR (1-2) rows x one 16-channel block. Each
 * 16-byte quarter of a step's weights widens to 4 channels x 4 taps; the
 * row's 4 activations, widened, are broadcast to all four 64-bit elements,
 * so a vpmaddwd leaves two partial sums per channel (4 accumulators a
 * row), added by vphaddd at the end. */
TGT static inline __attribute__((always_inline)) void
gemm_wd(const qx_gemm_tile *t, const int8_t *w, int c0, const int NR) {
    const uint8_t *a0 = t->a, *a1 = t->a + (NR > 1 ? t->a_stride : 0);
    const __m256i z = _mm256_setzero_si256();
    __m256i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    for (int32_t k = 0; k < t->k4; k++) {
        const int8_t *wk = w + 64 * k;
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wk));
        const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + 16)));
        const __m256i w2 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + 32)));
        const __m256i w3 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + 48)));
        const __m256i x0 = _mm256_cvtepu8_epi16(_mm_set1_epi32(load32(a0 + 4 * k)));
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x0, w0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x0, w1));
        c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(x0, w2));
        c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(x0, w3));
        if (NR > 1) {
            const __m256i x1 = _mm256_cvtepu8_epi16(_mm_set1_epi32(load32(a1 + 4 * k)));
            c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x1, w0));
            c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x1, w1));
            c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(x1, w2));
            c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(x1, w3));
        }
    }
    /* hadd gives channels 0 1 4 5 2 3 6 7 of a pair; vpermq restores the order */
    gemm_out8(t, 0, c0, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c00, c01), 0xD8));
    gemm_out8(t, 0, c0 + 8, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c02, c03), 0xD8));
    if (NR > 1) {
        gemm_out8(t, 1, c0, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c10, c11), 0xD8));
        gemm_out8(t, 1, c0 + 8, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c12, c13), 0xD8));
    }
}

TGT static void gemm_block_ubs(const qx_gemm_tile *t, const int8_t *w, int c0) {
    switch (t->n_rows) {
    case 1: gemm_ubs(t, w, c0, 1, false, NULL); break;
    case 2: gemm_ubs(t, w, c0, 2, false, NULL); break;
    case 3: gemm_ubs(t, w, c0, 3, false, NULL); break;
    default: gemm_ubs(t, w, c0, 4, false, NULL); break;
    }
}

TGT static void gemm_block_sign(const qx_gemm_tile *t, const int8_t *w, int c0,
                                const int32_t *ws128) {
    switch (t->n_rows) {
    case 1: gemm_ubs(t, w, c0, 1, true, ws128); break;
    case 2: gemm_ubs(t, w, c0, 2, true, ws128); break;
    case 3: gemm_ubs(t, w, c0, 3, true, ws128); break;
    default: gemm_ubs(t, w, c0, 4, true, ws128); break;
    }
}

TGT static void gemm_block_wd(const qx_gemm_tile *t, const int8_t *w, int c0) {
    if (t->n_rows == 1)
        gemm_wd(t, w, c0, 1);
    else
        gemm_wd(t, w, c0, 2);
}

TGT static void gemm_tile(const qx_gemm_tile *t) {
    /* rows in quads (vpmaddubsw) or pairs (16-bit): the accumulators of one
     * 16-channel block stay in registers */
    const bool sg = !t->maddubs_ok && t->sign_ok;
    const int step = t->maddubs_ok || sg ? 4 : 2;
    int32_t ws128[QX_GEMM_COLS];
    for (int c = 0; sg && c < QX_GEMM_COLS; c++)
        ws128[c] = c < t->n_ch ? (int32_t)(128u * (uint32_t)t->wsum[t->ch0 + c]) : 0;
    for (int r0 = 0; r0 < t->n_rows; r0 += step) {
        qx_gemm_tile q = *t;
        q.a = t->a + t->a_stride * (size_t)r0;
        q.y = t->y + t->ldy * (size_t)r0;
        q.n_rows = t->n_rows - r0 < step ? t->n_rows - r0 : step;
        for (int b = 0; b < 2; b++) {
            if (b == 1 && q.n_ch <= QX_GEMM_BLOCK) break;
            const int8_t *w = q.w + (size_t)b * q.k4 * 64;
            if (t->maddubs_ok)
                gemm_block_ubs(&q, w, b * QX_GEMM_BLOCK);
            else if (sg)
                gemm_block_sign(&q, w, b * QX_GEMM_BLOCK, ws128 + b * QX_GEMM_BLOCK);
            else
                gemm_block_wd(&q, w, b * QX_GEMM_BLOCK);
        }
    }
}

/* ---- transposed conv tiles (qx_conv_tt) ---------------------------------- */

/* 4 pixels x 16 channels (8-channel weight blocks wa, wb): per reduction
 * step each pixel's 4 activation bytes are broadcast and each block's 32
 * weight bytes are one vector, 8 accumulators (the orientation of ONNX
 * Runtime's and XNNPACK's AVX2 kernels: any 4 pixels, no runs). Plain
 * vpmaddubsw only (maddubs_ok weights): in the sign form, whose vpxor and
 * vpabsb here come per pixel rather than per vector, these tiles ran no
 * faster than slot tiles (in-process A/B at batch 1, 2 threads: SqueezeNet
 * 0.99x, the Fashion-MNIST ResNet 0.98x). The accumulators start at s0
 * (channels 0-7) and s1. */
TGT static inline __attribute__((always_inline)) void tt4x16(const qx_conv_tt *t, const uint8_t *p0,
                                                             const uint8_t *p1, const uint8_t *p2,
                                                             const uint8_t *p3, const int8_t *wa,
                                                             const int8_t *wb, __m256i s0,
                                                             __m256i s1, __m256i acc[8]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = s0, c01 = s1, c10 = s0, c11 = s1, c20 = s0, c21 = s1, c30 = s0, c31 = s1;
    const int32_t *ko = t->koff;
    for (int32_t k = 0; k < t->k4; k++) {
        const int32_t o = ko[k];
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wa + 32 * (int64_t)k));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + 32 * (int64_t)k));
#define QX_TT_ROW(r)                                                                               \
    do {                                                                                           \
        const __m256i a = _mm256_set1_epi32(load32(p##r + o));                                     \
        c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w0), ones)); \
        c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w1), ones)); \
    } while (0)
        QX_TT_ROW(0);
        QX_TT_ROW(1);
        QX_TT_ROW(2);
        QX_TT_ROW(3);
#undef QX_TT_ROW
    }
    acc[0] = c00;
    acc[1] = c01;
    acc[2] = c10;
    acc[3] = c11;
    acc[4] = c20;
    acc[5] = c21;
    acc[6] = c30;
    acc[7] = c31;
}

/* The tile's per-channel constants for its 32 lanes (entries past n_ch
 * zero: the tables hold only n_ch). */
typedef struct tt_k {
    _Alignas(32) int32_t start[32]; /* the corrections */
    _Alignas(32) float mult[32];
} tt_k;

/* Pixel r's 16 channels (h: 0-15 or 16-31) of accumulators a0 (8 channels)
 * and a1 requantized into 16 bytes. */
TGT static inline __m128i tt_rq16(const qx_conv_tt *t, const tt_k *kc, int h, __m256i a0,
                                  __m256i a1) {
    const qf_ref_requant *rq = t->e.rq;
    if (rq->mode == QF_RQ_FP32) {
        const __m256 lo = _mm256_set1_ps((float)(rq->act_min - rq->out_zp));
        const __m256 hi = _mm256_set1_ps((float)(rq->act_max - rq->out_zp));
        const __m256i zp = _mm256_set1_epi32(rq->out_zp);
        __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), _mm256_load_ps(kc->mult + 16 * h));
        __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), _mm256_load_ps(kc->mult + 16 * h + 8));
        f0 = _mm256_min_ps(_mm256_max_ps(f0, lo), hi);
        f1 = _mm256_min_ps(_mm256_max_ps(f1, lo), hi);
        const __m256i v0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), zp);
        const __m256i v1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), zp);
        /* within int8: the saturating packs are exact */
        const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
        return _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
    }
    int32_t a[16];
    int8_t q[16] = {0};
    _mm256_storeu_si256((__m256i *)a, a0);
    _mm256_storeu_si256((__m256i *)(a + 8), a1);
    for (int i = 0; i < 16 && 16 * h + i < t->n_ch; i++) {
        const qf_ref_rescale *r = qr_mult_of(rq, (int64_t)t->ch0 + 16 * h + i);
        q[i] = (int8_t)qf_ref_requant_fixed(a[i], r->mult_q, r->shift, rq->out_zp, rq->act_min,
                                            rq->act_max);
    }
    return _mm_loadu_si128((const __m128i *)q);
}

/* The fused add on 16 bytes (a: the convolution's, b: the residual's). */
TGT static inline __m128i tt_add16(__m128i a, __m128i b, const qx_add_consts *c) {
    const __m256i v0 = add_i32(_mm256_cvtepi8_epi32(a), _mm256_cvtepi8_epi32(b), c);
    const __m256i v1 = add_i32(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(a, a)),
                               _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b, b)), c);
    const __m128i w16 =
        _mm_packs_epi32(_mm256_castsi256_si128(v0), _mm256_extracti128_si256(v0, 1));
    const __m128i w16b =
        _mm_packs_epi32(_mm256_castsi256_si128(v1), _mm256_extracti128_si256(v1, 1));
    return _mm_packs_epi16(w16, w16b);
}

/* Channels c and c + 1 (x: 8 pixel bytes of each), stored as runs of
 * n_rows bytes after the fused add if any. */
TGT static inline void tt_store2(const qx_conv_tt *t, int c, __m128i x) {
    if (c >= t->n_ch) return;
    const bool two = c + 1 < t->n_ch;
    const int64_t off0 = (int64_t)c * t->ch_stride, off1 = off0 + t->ch_stride;
    if (t->n_rows == 8 && two) {
        if (t->add)
            x = tt_add16(x,
                         _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(t->res + off0)),
                                            _mm_loadl_epi64((const __m128i *)(t->res + off1))),
                         t->add);
        _mm_storel_epi64((__m128i *)(t->out + off0), x);
        _mm_storel_epi64((__m128i *)(t->out + off1), _mm_unpackhi_epi64(x, x));
        return;
    }
    /* a tail tile or the last odd channel: byte runs through the stack */
    const int n = t->n_rows;
    _Alignas(16) int8_t q[16];
    if (t->add) {
        _Alignas(16) int8_t r[16] = {0};
        memcpy(r, t->res + off0, (size_t)n);
        if (two) memcpy(r + 8, t->res + off1, (size_t)n);
        x = tt_add16(x, _mm_load_si128((const __m128i *)r), t->add);
    }
    _mm_store_si128((__m128i *)q, x);
    memcpy(t->out + off0, q, (size_t)n);
    if (two) memcpy(t->out + off1, q + 8, (size_t)n);
}

/* row[r]: pixel r's 32 channel bytes (lanes 0-15 channels 0-15, 16-31
 * channels 16-31); transposed by three rounds of unpacks into channel
 * pairs of 8 pixel bytes, then stored. */
TGT static void tt_out(const qx_conv_tt *t, const __m256i row[8]) {
    __m256i a[8], b[8];
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm256_unpacklo_epi8(row[2 * i], row[2 * i + 1]);
        a[2 * i + 1] = _mm256_unpackhi_epi8(row[2 * i], row[2 * i + 1]);
    }
    /* b: 4 pixels x 4 channels per 128-bit lane */
    for (int i = 0; i < 2; i++) {
        b[4 * i] = _mm256_unpacklo_epi16(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm256_unpackhi_epi16(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm256_unpacklo_epi16(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm256_unpackhi_epi16(a[4 * i + 1], a[4 * i + 3]);
    }
    /* pixels 0-3 (b[0..3]) beside 4-7 (b[4..7]): channel pairs */
    for (int i = 0; i < 4; i++) {
        const __m256i lo = _mm256_unpacklo_epi32(b[i], b[4 + i]);
        const __m256i hi = _mm256_unpackhi_epi32(b[i], b[4 + i]);
        tt_store2(t, 4 * i, _mm256_castsi256_si128(lo));
        tt_store2(t, 4 * i + 2, _mm256_castsi256_si128(hi));
        tt_store2(t, 16 + 4 * i, _mm256_extracti128_si256(lo, 1));
        tt_store2(t, 18 + 4 * i, _mm256_extracti128_si256(hi, 1));
    }
}

/* A tile: pixel quads (the second only past 4 rows) x 16-channel halves
 * (the second only past 16 channels), each over the whole reduction. */
TGT static void conv_tt(const qx_conv_tt *t) {
    tt_k kc;
    for (int c = 0; c < 32; c++) {
        const bool in = c < t->n_ch;
        kc.start[c] = in ? t->e.corr[c] : 0;
        kc.mult[c] = in && t->e.rq->mode == QF_RQ_FP32 ? t->e.mult_f[c] : 0.0f;
    }
    __m256i row[8];
    const int nh = t->n_ch > 16 ? 2 : 1, nq = t->n_rows > 4 ? 2 : 1;
    for (int q = 0; q < nq; q++) {
        const uint8_t *const *px = t->px + 4 * q;
        __m128i part[2][4];
        for (int h = 0; h < nh; h++) {
            __m256i acc[8];
            tt4x16(t, px[0], px[1], px[2], px[3], t->wb[2 * h], t->wb[2 * h + 1],
                   _mm256_load_si256((const __m256i *)(kc.start + 16 * h)),
                   _mm256_load_si256((const __m256i *)(kc.start + 16 * h + 8)), acc);
            for (int r = 0; r < 4; r++)
                part[h][r] = tt_rq16(t, &kc, h, acc[2 * r], acc[2 * r + 1]);
        }
        for (int r = 0; r < 4; r++)
            row[4 * q + r] = _mm256_inserti128_si256(_mm256_castsi128_si256(part[0][r]),
                                                     nh > 1 ? part[1][r] : part[0][r], 1);
    }
    if (nq == 1)
        for (int r = 4; r < 8; r++)
            row[r] = row[3];
    tt_out(t, row);
}

static const qx_ukernels k_avx2 = {
    .conv_tile = conv_tile, .gemm_tile = gemm_tile, .conv_tt = conv_tt, .multi_blk = true};

const qx_ukernels *qx_ukernels_avx2(void) { return &k_avx2; }

#else

const qx_ukernels *qx_ukernels_avx2(void) { return NULL; }

#endif
