/* qx86_avx512vnni.c - AVX-512 VNNI micro-kernels of the x86 int8 kernels
 * (qx86.h): vpdpbusd tiles (conv: 8 channels x 32 slots in 16 zmm
 * accumulators; gemm: up to 8 rows x 32 channels) with the fused epilogue
 * (correction, requantization, clamp, narrow, masked store). Compiled with a
 * per-function target attribute so the rest of the library stays baseline
 * x86-64; empty on other architectures. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INL __attribute__((always_inline)) inline

#include "kernels/x86/qx86_avx512_rq.h"

static inline int32_t load32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

TGT static inline void store_vec(__m128i v, const qx_vec_store *st, int8_t *base) {
    for (int32_t s = 0; s < st->n_seg; s++) {
        const qx_seg *g = &st->seg[s];
        /* byte `lane` lands at base + off; masked-off bytes are not touched */
        void *p = (void *)((uintptr_t)(base + g->off) - (uintptr_t)g->lane);
        _mm_mask_storeu_epi8(p, (__mmask16)g->mask, v);
    }
}

/* store_vec, with the tile's fused residual add when it has one: the
 * residual's lanes are read from the same places the results go. */
TGT static inline void store_out(__m128i v, const qx_vec_store *st, int8_t *base,
                                 const qx_conv_tile *t) {
    if (t->add) {
        const int8_t *rb = t->res + (base - t->out);
        __m128i r = _mm_setzero_si128();
        for (int32_t s = 0; s < st->n_seg; s++) {
            const qx_seg *g = &st->seg[s];
            const void *p = (const void *)((uintptr_t)(rb + g->off) - (uintptr_t)g->lane);
            r = _mm_mask_loadu_epi8(r, (__mmask16)g->mask, p);
        }
        const qx_add_consts *c = t->add;
        v = rq_add16(v, r, _mm512_set1_epi32(c->a_zp), _mm512_set1_epi32(c->b_zp),
                     _mm512_set1_ps(c->a_mult), _mm512_set1_ps(c->b_mult), _mm512_set1_ps(c->lo),
                     _mm512_set1_ps(c->hi), _mm512_set1_epi32(c->out_zp));
    }
    store_vec(v, st, base);
}

/* Requantization constants shared by every row of a tile. The row epilogue
 * stays out of line: inlined, it makes GCC spill the 16 accumulators inside
 * the dot-product loop. */
typedef struct rq_consts {
    __m512 lo, hi;
    __m512i z;
} rq_consts;

TGT static __attribute__((noinline)) void conv_row_out(const qx_conv_tile *t, const rq_consts *k,
                                                       int r, __m512i v0, __m512i v1) {
    if (r >= t->n_rows) return;
    const qf_ref_requant *rq = t->e.rq;
    const int64_t ch = (int64_t)t->ch0 + r;
    __m128i q0, q1;
    if (rq->mode == QF_RQ_FP32) {
        const __m512 m = _mm512_set1_ps(t->e.mult_f[r]);
        q0 = rq_fp32(v0, m, k->lo, k->hi, k->z);
        q1 = rq_fp32(v1, m, k->lo, k->hi, k->z);
    } else if (t->e.fixed_vec) {
        const __m512i mq = _mm512_set1_epi32(t->e.mult_q[r]);
        const __m512i sh = _mm512_set1_epi32(t->e.shift[r]);
        q0 = rq_fixed_vec(v0, mq, sh, rq);
        q1 = rq_fixed_vec(v1, mq, sh, rq);
    } else {
        q0 = rq_fixed(v0, rq, ch, 0);
        q1 = rq_fixed(v1, rq, ch, 0);
    }
    int8_t *base = t->out + ch * t->ch_stride;
    store_out(q0, &t->st[0], base, t);
    store_out(q1, &t->st[1], base, t);
}

/* FP32 epilogue of two rows at once (no residual add). Both rows' 32 slots
 * are requantized like rq_fp32i up to the conversion, then narrowed with
 * saturating packs: int32 -> int16, + z (saturating), -> int8, and clamped
 * to [act_min, act_max] on bytes. Same bits as the reference: a value at or
 * above the float bound hi = act_max - z converts to hi exactly; any value
 * below act_min - z stays below it through the saturations (act_min - z >=
 * -255 > INT16_MIN) and ends at act_min. The packs interleave 128-bit lanes;
 * one vpermd puts row r's 32 bytes in the low half, row r + 1's in the high. */
typedef struct pair_consts {
    __m512 hi;
    __m512i z16, lo8, hi8, perm;
} pair_consts;

TGT static inline pair_consts pair_consts_of(const qf_ref_requant *rq) {
    pair_consts k;
    k.hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp));
    k.z16 = _mm512_set1_epi16((int16_t)rq->out_zp);
    k.lo8 = _mm512_set1_epi8((char)rq->act_min);
    k.hi8 = _mm512_set1_epi8((char)rq->act_max);
    k.perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return k;
}

TGT static INL __m512i cvt_hi(__m512i acc, __m512 m, __m512 hi, bool small) {
    const __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
    return _mm512_cvtps_epi32(small ? x : _mm512_min_ps(x, hi));
}

/* The 32 bytes of one row: lanes 0-15 go by st[0], 16-31 by st[1]. */
TGT static inline void store_row32(__m256i v, const qx_vec_store *st, int8_t *base) {
    for (int32_t s = 0; s < st[0].n_seg; s++) {
        const qx_seg *g = &st[0].seg[s];
        void *p = (void *)((uintptr_t)(base + g->off) - (uintptr_t)g->lane);
        _mm256_mask_storeu_epi8(p, (__mmask32)g->mask, v);
    }
    for (int32_t s = 0; s < st[1].n_seg; s++) {
        const qx_seg *g = &st[1].seg[s];
        void *p = (void *)((uintptr_t)(base + g->off) - (uintptr_t)(16 + g->lane));
        _mm256_mask_storeu_epi8(p, (__mmask32)g->mask << 16, v);
    }
}

/* Rows r and r + 1 (r < n_rows; row r + 1 is stored when it is valid).
 * small: every multiplier passes qx_mult_small (no upper clamp before the
 * conversion). */
TGT static INL void out_pair(const qx_conv_tile *t, const pair_consts *k, int r, __m512i a0,
                             __m512i a1, __m512i b0, __m512i b1, bool small) {
    const __m512 ma = _mm512_set1_ps(t->e.mult_f[r]), mb = _mm512_set1_ps(t->e.mult_f[r + 1]);
    const __m512i pa = _mm512_adds_epi16(
        _mm512_packs_epi32(cvt_hi(a0, ma, k->hi, small), cvt_hi(a1, ma, k->hi, small)), k->z16);
    const __m512i pb = _mm512_adds_epi16(
        _mm512_packs_epi32(cvt_hi(b0, mb, k->hi, small), cvt_hi(b1, mb, k->hi, small)), k->z16);
    __m512i q = _mm512_permutexvar_epi32(k->perm, _mm512_packs_epi16(pa, pb));
    q = _mm512_min_epi8(_mm512_max_epi8(q, k->lo8), k->hi8);
    const qx_vec_store *st = t->st;
    int8_t *base = t->out + (int64_t)(t->ch0 + r) * t->ch_stride;
    const bool two = r + 1 < t->n_rows;
    if (st[0].n_seg == 1 && st[1].n_seg == 1 && st[0].seg[0].mask == 0xFFFF &&
        st[1].seg[0].mask == 0xFFFF && st[1].seg[0].off == st[0].seg[0].off + 16) {
        /* both vectors whole and back to back: plain 32-byte stores */
        _mm256_storeu_si256((__m256i *)(void *)(base + st[0].seg[0].off),
                            _mm512_castsi512_si256(q));
        if (two)
            _mm256_storeu_si256((__m256i *)(void *)(base + t->ch_stride + st[0].seg[0].off),
                                _mm512_extracti64x4_epi64(q, 1));
        return;
    }
    store_row32(_mm512_castsi512_si256(q), st, base);
    if (two) store_row32(_mm512_extracti64x4_epi64(q, 1), st, base + t->ch_stride);
}

/* The whole tile's FP32 epilogue, out of line (inlined, it makes GCC spill
 * the accumulators inside the dot-product loop); the accumulators come
 * through memory once, and the four row pairs, independent, overlap. */
TGT static INL void out_tile_k(const qx_conv_tile *t, const __m512i *acc, bool small) {
    const pair_consts k = pair_consts_of(t->e.rq);
    out_pair(t, &k, 0, acc[0], acc[1], acc[2], acc[3], small);
    if (t->n_rows > 2) out_pair(t, &k, 2, acc[4], acc[5], acc[6], acc[7], small);
    if (t->n_rows > 4) out_pair(t, &k, 4, acc[8], acc[9], acc[10], acc[11], small);
    if (t->n_rows > 6) out_pair(t, &k, 6, acc[12], acc[13], acc[14], acc[15], small);
}

TGT static __attribute__((noinline)) void out_tile(const qx_conv_tile *t, const __m512i *acc) {
    if (t->e.mult_small)
        out_tile_k(t, acc, true);
    else
        out_tile_k(t, acc, false);
}

#define ROW_DOT(r)                                                                                 \
    do {                                                                                           \
        const __m512i b = _mm512_set1_epi32(load32(wk + 4 * (r)));                                 \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, x0, b);                                             \
        c##r##1 = _mm512_dpbusd_epi32(c##r##1, x1, b);                                             \
    } while (0)
#define ALL_ROWS()                                                                                 \
    do {                                                                                           \
        ROW_DOT(0);                                                                                \
        ROW_DOT(1);                                                                                \
        ROW_DOT(2);                                                                                \
        ROW_DOT(3);                                                                                \
        ROW_DOT(4);                                                                                \
        ROW_DOT(5);                                                                                \
        ROW_DOT(6);                                                                                \
        ROW_DOT(7);                                                                                \
    } while (0)

/* The 16 lanes of a vector at byte offset o: run 0 whole, then each later
 * run's lanes (AVX-512 masked loads). */
TGT static inline __m512i load_runs(const qx_src *s, int64_t o) {
    __m512i x = _mm512_loadu_si512(s->p[0] + o);
    for (int32_t r = 1; r < s->n; r++)
        x = _mm512_mask_loadu_epi32(x, (__mmask16)s->mask[r], s->p[r] + o);
    return x;
}

TGT static void conv_tile(const qx_conv_tile *t) {
    /* the accumulators start at the row's correction term (bias - (128 + z)
     * * wsum), so the epilogue has one addition less; the sum is modulo 2^32
     * either way */
    const int32_t *cr = t->e.corr;
    __m512i c00 = _mm512_set1_epi32(cr[0]), c01 = c00, c10 = _mm512_set1_epi32(cr[1]), c11 = c10,
            c20 = _mm512_set1_epi32(cr[2]), c21 = c20, c30 = _mm512_set1_epi32(cr[3]), c31 = c30,
            c40 = _mm512_set1_epi32(cr[4]), c41 = c40, c50 = _mm512_set1_epi32(cr[5]), c51 = c50,
            c60 = _mm512_set1_epi32(cr[6]), c61 = c60, c70 = _mm512_set1_epi32(cr[7]), c71 = c70;
    const int8_t *wk = t->w;
    const int32_t *ko = t->koff;
    const qx_src *s0 = &t->src[0], *s1 = &t->src[1];
    if (s0->n == 1 && s1->n == 1) {
        /* both vectors are consecutive slots: one load each per step */
        const uint8_t *a0 = s0->p[0], *a1 = s1->p[0];
        for (int32_t k = 0; k < t->k4; k++, wk += 32) {
            const __m512i x0 = _mm512_loadu_si512(a0 + ko[k]), x1 = _mm512_loadu_si512(a1 + ko[k]);
            ALL_ROWS();
        }
    } else {
        for (int32_t k = 0; k < t->k4; k++, wk += 32) {
            const __m512i x0 = load_runs(s0, ko[k]), x1 = load_runs(s1, ko[k]);
            ALL_ROWS();
        }
    }
    const qf_ref_requant *rq = t->e.rq;
    if (rq->mode == QF_RQ_FP32 && !t->add) {
        /* the common epilogue: rows in pairs, four vectors narrowed at once */
        const __m512i acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31,
                                 c40, c41, c50, c51, c60, c61, c70, c71};
        out_tile(t, acc);
        return;
    }
    if (rq->mode == QF_RQ_FP32) {
        /* with the fused residual add: accumulators through a stack tile,
         * one loop over the rows (no per-row call, constants loaded once) */
        __m512i acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31,
                           c40, c41, c50, c51, c60, c61, c70, c71};
        const __m512i lo = _mm512_set1_epi32(rq->act_min - rq->out_zp);
        const __m512 hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp));
        const __m512i z = _mm512_set1_epi32(rq->out_zp);
        const qx_vec_store *st0 = &t->st[0], *st1 = &t->st[1];
        int8_t *base = t->out + (int64_t)t->ch0 * t->ch_stride;
        for (int r = 0; r < t->n_rows; r++, base += t->ch_stride) {
            const __m512 m = _mm512_set1_ps(t->e.mult_f[r]);
            store_out(rq_fp32i(acc[2 * r], m, hi, lo, z), st0, base, t);
            store_out(rq_fp32i(acc[2 * r + 1], m, hi, lo, z), st1, base, t);
        }
        return;
    }
    const rq_consts k = {.lo = _mm512_set1_ps((float)(rq->act_min - rq->out_zp)),
                         .hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp)),
                         .z = _mm512_set1_epi32(rq->out_zp)};
    conv_row_out(t, &k, 0, c00, c01);
    conv_row_out(t, &k, 1, c10, c11);
    conv_row_out(t, &k, 2, c20, c21);
    conv_row_out(t, &k, 3, c30, c31);
    conv_row_out(t, &k, 4, c40, c41);
    conv_row_out(t, &k, 5, c50, c51);
    conv_row_out(t, &k, 6, c60, c61);
    conv_row_out(t, &k, 7, c70, c71);
}

/* One output row of a gemm tile: 32 channels in two vectors. */
TGT static void gemm_row_out(const qx_gemm_tile *t, int r, __m512i v0, __m512i v1) {
    if (r >= t->n_rows) return;
    const qf_ref_requant *rq = t->e.rq;
    int8_t *y = t->y + (size_t)r * t->ldy;
    __m512i v[2] = {v0, v1};
    for (int j = 0; j < 2; j++) {
        const int nc = t->n_ch - 16 * j;
        if (nc <= 0) break;
        const __m512i a = _mm512_add_epi32(v[j], _mm512_loadu_si512(t->e.corr + 16 * j));
        __m128i q;
        if (rq->mode == QF_RQ_FP32) {
            const __m512 lo = _mm512_set1_ps((float)(rq->act_min - rq->out_zp));
            const __m512 hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp));
            q = rq_fp32(a, _mm512_loadu_ps(t->e.mult_f + 16 * j), lo, hi,
                        _mm512_set1_epi32(rq->out_zp));
        } else if (t->e.fixed_vec) {
            q = rq_fixed_vec(a, _mm512_loadu_si512(t->e.mult_q + 16 * j),
                             _mm512_loadu_si512(t->e.shift + 16 * j), rq);
        } else {
            q = rq_fixed(a, rq, (int64_t)t->ch0 + 16 * j, 1);
        }
        const __mmask16 m = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1u);
        _mm_mask_storeu_epi8(y + 16 * j, m, q);
    }
}

#define GROW_DOT(r)                                                                                \
    do {                                                                                           \
        const __m512i b = _mm512_set1_epi32(load32(ar##r + 4 * k));                                \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, b, w0);                                             \
        c##r##1 = _mm512_dpbusd_epi32(c##r##1, b, w1);                                             \
    } while (0)

TGT static void gemm_tile(const qx_gemm_tile *t) {
    const int8_t *wb0 = t->w, *wb1 = t->w + (size_t)t->k4 * 64;
    if (t->n_rows == 1) {
        /* two chains per vector hide the vpdpbusd latency */
        __m512i e0 = _mm512_setzero_si512(), e1 = e0, o0 = e0, o1 = e0;
        const uint8_t *a = t->a;
        int32_t k = 0;
        for (; k + 2 <= t->k4; k += 2) {
            const __m512i b0 = _mm512_set1_epi32(load32(a + 4 * k));
            const __m512i b1 = _mm512_set1_epi32(load32(a + 4 * k + 4));
            e0 = _mm512_dpbusd_epi32(e0, b0, _mm512_loadu_si512(wb0 + 64 * k));
            e1 = _mm512_dpbusd_epi32(e1, b0, _mm512_loadu_si512(wb1 + 64 * k));
            o0 = _mm512_dpbusd_epi32(o0, b1, _mm512_loadu_si512(wb0 + 64 * k + 64));
            o1 = _mm512_dpbusd_epi32(o1, b1, _mm512_loadu_si512(wb1 + 64 * k + 64));
        }
        if (k < t->k4) {
            const __m512i b0 = _mm512_set1_epi32(load32(a + 4 * k));
            e0 = _mm512_dpbusd_epi32(e0, b0, _mm512_loadu_si512(wb0 + 64 * k));
            e1 = _mm512_dpbusd_epi32(e1, b0, _mm512_loadu_si512(wb1 + 64 * k));
        }
        gemm_row_out(t, 0, _mm512_add_epi32(e0, o0), _mm512_add_epi32(e1, o1));
        return;
    }
    /* rows past n_rows repeat the last row: computed, never stored */
    const uint8_t *ar[8];
    for (int r = 0; r < 8; r++)
        ar[r] = t->a + t->a_stride * (size_t)(r < t->n_rows ? r : t->n_rows - 1);
    const uint8_t *ar0 = ar[0], *ar1 = ar[1], *ar2 = ar[2], *ar3 = ar[3];
    if (t->n_rows <= 4) {
        __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                c30 = c00, c31 = c00;
        for (int32_t k = 0; k < t->k4; k++) {
            const __m512i w0 = _mm512_loadu_si512(wb0 + 64 * k);
            const __m512i w1 = _mm512_loadu_si512(wb1 + 64 * k);
            GROW_DOT(0);
            GROW_DOT(1);
            GROW_DOT(2);
            GROW_DOT(3);
        }
        gemm_row_out(t, 0, c00, c01);
        gemm_row_out(t, 1, c10, c11);
        gemm_row_out(t, 2, c20, c21);
        gemm_row_out(t, 3, c30, c31);
        return;
    }
    const uint8_t *ar4 = ar[4], *ar5 = ar[5], *ar6 = ar[6], *ar7 = ar[7];
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
            c70 = c00, c71 = c00;
    for (int32_t k = 0; k < t->k4; k++) {
        const __m512i w0 = _mm512_loadu_si512(wb0 + 64 * k);
        const __m512i w1 = _mm512_loadu_si512(wb1 + 64 * k);
        GROW_DOT(0);
        GROW_DOT(1);
        GROW_DOT(2);
        GROW_DOT(3);
        GROW_DOT(4);
        GROW_DOT(5);
        GROW_DOT(6);
        GROW_DOT(7);
    }
    gemm_row_out(t, 0, c00, c01);
    gemm_row_out(t, 1, c10, c11);
    gemm_row_out(t, 2, c20, c21);
    gemm_row_out(t, 3, c30, c31);
    gemm_row_out(t, 4, c40, c41);
    gemm_row_out(t, 5, c50, c51);
    gemm_row_out(t, 6, c60, c61);
    gemm_row_out(t, 7, c70, c71);
}

static const qx_ukernels k_vnni = {.conv_tile = conv_tile, .gemm_tile = gemm_tile};

const qx_ukernels *qx_ukernels_avx512vnni(void) { return &k_vnni; }

#else

const qx_ukernels *qx_ukernels_avx512vnni(void) { return NULL; }

#endif
