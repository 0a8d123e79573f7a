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

/* One channel block (n_blk ignored): FIXED requantization, or FP32 with
 * the fused add (blocks_fp32_k takes FP32 without it). */
TGT static void conv_tile1(const qx_conv_tile *t) {
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
    } else if (s0->n <= 2 && s1->n <= 2) {
        /* a row break in either vector (most per-pixel tiles): run 1's
         * lanes merged by one masked load, which reads nothing where its
         * mask is empty */
        const uint8_t *a0 = s0->p[0], *a1 = s1->p[0];
        const uint8_t *b0 = s0->n > 1 ? s0->p[1] : a0, *b1 = s1->n > 1 ? s1->p[1] : a1;
        const __mmask16 m0 = s0->n > 1 ? (__mmask16)s0->mask[1] : 0;
        const __mmask16 m1 = s1->n > 1 ? (__mmask16)s1->mask[1] : 0;
        for (int32_t k = 0; k < t->k4; k++, wk += 32) {
            const int64_t o = ko[k];
            const __m512i x0 = _mm512_mask_loadu_epi32(_mm512_loadu_si512(a0 + o), m0, b0 + o);
            const __m512i x1 = _mm512_mask_loadu_epi32(_mm512_loadu_si512(a1 + o), m1, b1 + o);
            ALL_ROWS();
        }
    } else {
        for (int32_t k = 0; k < t->k4; k++, wk += 32) {
            const __m512i x0 = load_runs(s0, ko[k]), x1 = load_runs(s1, ko[k]);
            ALL_ROWS();
        }
    }
    const qf_ref_requant *rq = t->e.rq;
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

/* The common case, FP32 requantization without a fused add: all n_blk
 * blocks of the tile in one call, each block's dot products followed by
 * its row-pair epilogue inline, so the accumulators stay in registers (32
 * zmm: 16 accumulators, the two slot vectors, a weight broadcast and the
 * epilogue's constants) instead of going through memory to an out-of-line
 * epilogue, and the slot vectors' pointers and masks are set up once.
 * form: 0 both vectors one run, 1 up to two runs each, 2 any. */
TGT static INL void blocks_fp32_k(const qx_conv_tile *t0, const int form, const bool small) {
    const pair_consts pk = pair_consts_of(t0->e.rq);
    const qx_src *s0 = &t0->src[0], *s1 = &t0->src[1];
    const uint8_t *a0 = s0->p[0], *a1 = s1->p[0];
    const uint8_t *b0 = s0->n > 1 ? s0->p[1] : a0, *b1 = s1->n > 1 ? s1->p[1] : a1;
    const __mmask16 m0 = s0->n > 1 ? (__mmask16)s0->mask[1] : 0;
    const __mmask16 m1 = s1->n > 1 ? (__mmask16)s1->mask[1] : 0;
    const int32_t *ko = t0->koff;
    qx_conv_tile t = *t0;
    for (int32_t blk = 0; blk < t0->n_blk; blk++) {
        qx_tile_block(t0, blk, &t);
        const int32_t *cr = t.e.corr;
        __m512i c00 = _mm512_set1_epi32(cr[0]), c01 = c00, c10 = _mm512_set1_epi32(cr[1]),
                c11 = c10, c20 = _mm512_set1_epi32(cr[2]), c21 = c20,
                c30 = _mm512_set1_epi32(cr[3]), c31 = c30, c40 = _mm512_set1_epi32(cr[4]),
                c41 = c40, c50 = _mm512_set1_epi32(cr[5]), c51 = c50,
                c60 = _mm512_set1_epi32(cr[6]), c61 = c60, c70 = _mm512_set1_epi32(cr[7]),
                c71 = c70;
        const int8_t *wk = t.w;
        for (int32_t k = 0; k < t.k4; k++, wk += 32) {
            const int64_t o = ko[k];
            __m512i x0, x1;
            if (form == 0) {
                x0 = _mm512_loadu_si512(a0 + o);
                x1 = _mm512_loadu_si512(a1 + o);
            } else if (form == 1) {
                x0 = _mm512_mask_loadu_epi32(_mm512_loadu_si512(a0 + o), m0, b0 + o);
                x1 = _mm512_mask_loadu_epi32(_mm512_loadu_si512(a1 + o), m1, b1 + o);
            } else {
                x0 = load_runs(s0, o);
                x1 = load_runs(s1, o);
            }
            ALL_ROWS();
        }
        out_pair(&t, &pk, 0, c00, c01, c10, c11, small);
        if (t.n_rows > 2) out_pair(&t, &pk, 2, c20, c21, c30, c31, small);
        if (t.n_rows > 4) out_pair(&t, &pk, 4, c40, c41, c50, c51, small);
        if (t.n_rows > 6) out_pair(&t, &pk, 6, c60, c61, c70, c71, small);
    }
}

/* blocks_fp32_k for each form, with and without the small-multiplier
 * epilogue. */
TGT static __attribute__((noinline)) void blocks_fp32(const qx_conv_tile *t, int form, bool small) {
    if (form == 0)
        small ? blocks_fp32_k(t, 0, true) : blocks_fp32_k(t, 0, false);
    else if (form == 1)
        small ? blocks_fp32_k(t, 1, true) : blocks_fp32_k(t, 1, false);
    else
        small ? blocks_fp32_k(t, 2, true) : blocks_fp32_k(t, 2, false);
}

/* The tile's n_blk channel blocks on its 32 slots. */
TGT static void conv_tile(const qx_conv_tile *t0) {
    if (t0->e.rq->mode == QF_RQ_FP32 && !t0->add) {
        const int32_t n = t0->src[0].n > t0->src[1].n ? t0->src[0].n : t0->src[1].n;
        blocks_fp32(t0, n == 1 ? 0 : n == 2 ? 1 : 2, t0->e.mult_small);
        return;
    }
    qx_conv_tile t = *t0;
    for (int32_t b = 0; b < t0->n_blk; b++) {
        qx_tile_block(t0, b, &t);
        conv_tile1(&t);
    }
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

/* ---- transposed conv tiles (qx_conv_tt) ---------------------------------- */

/* 16 channels of both 8-channel blocks at reduction step k: one vector. */
TGT static inline __m512i tt_w(const int8_t *b0, const int8_t *b1, int32_t k) {
    const __m512i lo =
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(b0 + 32 * k)));
    return _mm512_inserti64x4(lo, _mm256_loadu_si256((const __m256i *)(const void *)(b1 + 32 * k)),
                              1);
}

#define TT_ROW(r)                                                                                  \
    do {                                                                                           \
        const __m512i b = _mm512_set1_epi32(load32(p##r + o));                                     \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, b, w0);                                             \
        c##r##1 = _mm512_dpbusd_epi32(c##r##1, b, w1);                                             \
    } while (0)

/* FIXED mode lane by lane (rq_fixed) for the first n lanes (channels ch,
 * ch + 1, ...), 0 in the others. */
TGT static inline __m128i tt_fixed(__m512i acc, const qf_ref_requant *rq, int64_t ch, int n) {
    int32_t a[16];
    int8_t q[16] = {0};
    _mm512_storeu_si512(a, acc);
    for (int i = 0; i < 16 && i < n; i++) {
        const qf_ref_rescale *r = qr_mult_of(rq, ch + i);
        q[i] = (int8_t)qf_ref_requant_fixed(a[i], r->mult_q, r->shift, rq->out_zp, rq->act_min,
                                            rq->act_max);
    }
    return _mm_loadu_si128((const __m128i *)(const void *)q);
}

/* The first n of 16 lanes (all for n >= 16, none for n <= 0). */
static inline __mmask16 tt_lanes(int32_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* The tile's rows requantized to bytes: row[r] lanes 0-15 are channels
 * 0-15 (acc[2r]), 16-31 channels 16-31 (acc[2r + 1]); `rows` of them. */
TGT static INL void tt_requant(const qx_conv_tt *t, const __m512i *acc, int rows, __m256i *row) {
    const qf_ref_requant *rq = t->e.rq;
    const __mmask16 m0 = tt_lanes(t->n_ch), m1 = tt_lanes(t->n_ch - 16);
    if (rq->mode == QF_RQ_FP32) {
        const __m512 lo = _mm512_set1_ps((float)(rq->act_min - rq->out_zp));
        const __m512 hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp));
        const __m512i z = _mm512_set1_epi32(rq->out_zp);
        const __m512 f0 = _mm512_maskz_loadu_ps(m0, t->e.mult_f);
        const __m512 f1 = _mm512_maskz_loadu_ps(m1, t->e.mult_f + 16);
        for (int r = 0; r < rows; r++)
            row[r] =
                _mm256_inserti128_si256(_mm256_castsi128_si256(rq_fp32(acc[2 * r], f0, lo, hi, z)),
                                        rq_fp32(acc[2 * r + 1], f1, lo, hi, z), 1);
        return;
    }
    if (t->e.fixed_vec) {
        const __m512i q0 = _mm512_maskz_loadu_epi32(m0, t->e.mult_q);
        const __m512i s0 = _mm512_maskz_loadu_epi32(m0, t->e.shift);
        const __m512i q1 = _mm512_maskz_loadu_epi32(m1, t->e.mult_q + 16);
        const __m512i s1 = _mm512_maskz_loadu_epi32(m1, t->e.shift + 16);
        for (int r = 0; r < rows; r++)
            row[r] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(rq_fixed_vec(acc[2 * r], q0, s0, rq)),
                rq_fixed_vec(acc[2 * r + 1], q1, s1, rq), 1);
        return;
    }
    for (int r = 0; r < rows; r++)
        row[r] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(tt_fixed(acc[2 * r], rq, t->ch0, t->n_ch)),
            tt_fixed(acc[2 * r + 1], rq, t->ch0 + 16, t->n_ch - 16), 1);
}

/* Channels c and c + 1 of the tile (x: 8 pixel bytes of each), stored as
 * runs of n_rows bytes, with the fused add when there is one. */
TGT static inline void tt_store2(const qx_conv_tt *t, int c, __m128i x) {
    if (c >= t->n_ch) return;
    if (t->n_rows == 8 && c + 1 < t->n_ch) {
        /* whole runs of both channels: plain 8-byte moves */
        int8_t *o0 = t->out + (int64_t)c * t->ch_stride, *o1 = o0 + t->ch_stride;
        if (t->add) {
            const int8_t *r0 = t->res + (int64_t)c * t->ch_stride, *r1 = r0 + t->ch_stride;
            const __m128i rv =
                _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(const void *)r0),
                                   _mm_loadl_epi64((const __m128i *)(const void *)r1));
            const qx_add_consts *a = t->add;
            x = rq_add16(x, rv, _mm512_set1_epi32(a->a_zp), _mm512_set1_epi32(a->b_zp),
                         _mm512_set1_ps(a->a_mult), _mm512_set1_ps(a->b_mult),
                         _mm512_set1_ps(a->lo), _mm512_set1_ps(a->hi),
                         _mm512_set1_epi32(a->out_zp));
        }
        _mm_storel_epi64((__m128i *)(void *)o0, x);
        _mm_storel_epi64((__m128i *)(void *)o1, _mm_unpackhi_epi64(x, x));
        return;
    }
    const __mmask16 m = (__mmask16)((1u << t->n_rows) - 1u);
    const bool two = c + 1 < t->n_ch;
    const __mmask16 mhi = two ? (__mmask16)(m << 8) : (__mmask16)0;
    const int64_t off0 = (int64_t)c * t->ch_stride, off1 = off0 + t->ch_stride;
    int8_t *o0 = t->out + off0;
    /* channel c + 1's run, addressed as bytes 8.. of a vector */
    int8_t *o1 = two ? (int8_t *)((uintptr_t)(t->out + off1) - 8u) : NULL;
    if (t->add) {
        __m128i rv = _mm_maskz_loadu_epi8(m, t->res + off0);
        if (two) rv = _mm_mask_loadu_epi8(rv, mhi, (const void *)((uintptr_t)(t->res + off1) - 8u));
        const qx_add_consts *a = t->add;
        x = rq_add16(x, rv, _mm512_set1_epi32(a->a_zp), _mm512_set1_epi32(a->b_zp),
                     _mm512_set1_ps(a->a_mult), _mm512_set1_ps(a->b_mult), _mm512_set1_ps(a->lo),
                     _mm512_set1_ps(a->hi), _mm512_set1_epi32(a->out_zp));
    }
    _mm_mask_storeu_epi8(o0, m, x);
    if (two) _mm_mask_storeu_epi8(o1, mhi, x);
}

/* The 8 rows x 32 channel bytes, transposed into 16 vectors of two
 * channels x 8 pixels by three rounds of unpacks, then stored. */
TGT static void tt_out(const qx_conv_tt *t, const __m256i *row) {
    const __m256i a0 = _mm256_unpacklo_epi8(row[0], row[1]),
                  a1 = _mm256_unpackhi_epi8(row[0], row[1]);
    const __m256i a2 = _mm256_unpacklo_epi8(row[2], row[3]),
                  a3 = _mm256_unpackhi_epi8(row[2], row[3]);
    const __m256i a4 = _mm256_unpacklo_epi8(row[4], row[5]),
                  a5 = _mm256_unpackhi_epi8(row[4], row[5]);
    const __m256i a6 = _mm256_unpacklo_epi8(row[6], row[7]),
                  a7 = _mm256_unpackhi_epi8(row[6], row[7]);
    /* b: 4 pixels x 4 channels (0-3, 4-7, 8-11, 12-15 of each 16-channel half) */
    const __m256i b0 = _mm256_unpacklo_epi16(a0, a2), b1 = _mm256_unpackhi_epi16(a0, a2);
    const __m256i b2 = _mm256_unpacklo_epi16(a1, a3), b3 = _mm256_unpackhi_epi16(a1, a3);
    const __m256i b4 = _mm256_unpacklo_epi16(a4, a6), b5 = _mm256_unpackhi_epi16(a4, a6);
    const __m256i b6 = _mm256_unpacklo_epi16(a5, a7), b7 = _mm256_unpackhi_epi16(a5, a7);
    /* c[i]: channels 2i, 2i + 1 (low lane) and 16 + 2i, 17 + 2i (high lane) */
    const __m256i c[8] = {_mm256_unpacklo_epi32(b0, b4), _mm256_unpackhi_epi32(b0, b4),
                          _mm256_unpacklo_epi32(b1, b5), _mm256_unpackhi_epi32(b1, b5),
                          _mm256_unpacklo_epi32(b2, b6), _mm256_unpackhi_epi32(b2, b6),
                          _mm256_unpacklo_epi32(b3, b7), _mm256_unpackhi_epi32(b3, b7)};
    for (int i = 0; i < 8; i++) {
        tt_store2(t, 2 * i, _mm256_castsi256_si128(c[i]));
        tt_store2(t, 16 + 2 * i, _mm256_extracti128_si256(c[i], 1));
    }
}

/* Accumulators start at the channels' correction terms (as conv_tile's). */
TGT static void conv_tt(const qx_conv_tt *t) {
    const int8_t *wb0 = t->wb[0], *wb1 = t->wb[1], *wb2 = t->wb[2], *wb3 = t->wb[3];
    const int32_t *ko = t->koff;
    const __m512i k0 = _mm512_maskz_loadu_epi32(tt_lanes(t->n_ch), t->e.corr);
    const __m512i k1 = _mm512_maskz_loadu_epi32(tt_lanes(t->n_ch - 16), t->e.corr + 16);
    __m256i row[8];
    const uint8_t *p0 = t->px[0], *p1 = t->px[1], *p2 = t->px[2], *p3 = t->px[3];
    if (t->n_rows <= 4) {
        /* a short tail (e.g. 49 = 6 x 8 + 1 pixels): half the rows */
        __m512i c00 = k0, c01 = k1, c10 = k0, c11 = k1, c20 = k0, c21 = k1, c30 = k0, c31 = k1;
        for (int32_t k = 0; k < t->k4; k++) {
            const int32_t o = ko[k];
            const __m512i w0 = tt_w(wb0, wb1, k), w1 = tt_w(wb2, wb3, k);
            TT_ROW(0);
            TT_ROW(1);
            TT_ROW(2);
            TT_ROW(3);
        }
        const __m512i acc[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
        tt_requant(t, acc, 4, row);
        row[4] = row[5] = row[6] = row[7] = row[3];
        tt_out(t, row);
        return;
    }
    const uint8_t *p4 = t->px[4], *p5 = t->px[5], *p6 = t->px[6], *p7 = t->px[7];
    __m512i c00 = k0, c01 = k1, c10 = k0, c11 = k1, c20 = k0, c21 = k1, c30 = k0, c31 = k1,
            c40 = k0, c41 = k1, c50 = k0, c51 = k1, c60 = k0, c61 = k1, c70 = k0, c71 = k1;
    for (int32_t k = 0; k < t->k4; k++) {
        const int32_t o = ko[k];
        const __m512i w0 = tt_w(wb0, wb1, k), w1 = tt_w(wb2, wb3, k);
        TT_ROW(0);
        TT_ROW(1);
        TT_ROW(2);
        TT_ROW(3);
        TT_ROW(4);
        TT_ROW(5);
        TT_ROW(6);
        TT_ROW(7);
    }
    const __m512i acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31,
                             c40, c41, c50, c51, c60, c61, c70, c71};
    tt_requant(t, acc, 8, row);
    tt_out(t, row);
}

/* see qx_ukernels.fill_s2: one two-source permute, a blend, a masked store */
TGT static void fill_s2(const uint8_t *row, const int32_t *idx, uint32_t valid, uint32_t store,
                        uint32_t pad4, uint8_t *dst) {
    const __m512i lo = _mm512_loadu_si512(row), hi = _mm512_loadu_si512(row + 64);
    const __m512i v = _mm512_permutex2var_epi32(lo, _mm512_loadu_si512(idx), hi);
    _mm512_mask_storeu_epi32(
        dst, (__mmask16)store,
        _mm512_mask_blend_epi32((__mmask16)valid, _mm512_set1_epi32((int32_t)pad4), v));
}

#define TGTV __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))

/* The conv8c4 VBMI fills' two source registers: bytes o.. of channels 0
 * and 1 (32 each, lm of them read, the rest 0) in *a, of channels 2 and 3
 * in *b, flipped to u8. The row pointers come by value: read from the
 * caller's array, they were reloaded after every store (the stores may
 * alias it), which cost 1.5% on a 14x14 32->32 layer. */
TGTV static inline void fill_pairs(const uint8_t *s0, const uint8_t *s1, const uint8_t *s2,
                                   const uint8_t *s3, int64_t o, __mmask32 lm, __m512i *a,
                                   __m512i *b) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    *a = _mm512_xor_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_maskz_loadu_epi8(lm, s0 + o)),
                           _mm256_maskz_loadu_epi8(lm, s1 + o), 1),
        flip);
    *b = _mm512_xor_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_maskz_loadu_epi8(lm, s2 + o)),
                           _mm256_maskz_loadu_epi8(lm, s3 + o), 1),
        flip);
}

/* The first n bytes (n <= 64). */
static inline __mmask64 first_bytes(int64_t n) {
    return n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1;
}

/* see qx_ukernels.fill_s1: per group of rows the two source registers,
 * then one two-source byte permute (pads from the index bytes) and one
 * store per 64 bytes of plane rows */
TGTV static void fill_s1(const uint8_t *const src[4], int64_t rows, int64_t w, int64_t g_rows,
                         const uint8_t *idx, const uint64_t *valid, int64_t row_bytes,
                         uint8_t *dst) {
    const int64_t gb = g_rows * row_bytes;
    const __m512i x0 = _mm512_loadu_si512(idx), x1 = _mm512_loadu_si512(idx + 64);
    const __m512i x2 = _mm512_loadu_si512(idx + 128), x3 = _mm512_loadu_si512(idx + 192);
    const uint8_t *s0 = src[0], *s1 = src[1], *s2 = src[2], *s3 = src[3];
    for (int64_t r = 0; r < rows; r += g_rows) {
        const int64_t nr = rows - r < g_rows ? rows - r : g_rows;
        const int64_t n = nr * w, nb = nr * row_bytes;
        __m512i a, b;
        fill_pairs(s0, s1, s2, s3, r * w, n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1u, &a, &b);
        uint8_t *d = dst + r * row_bytes;
        if (nb == gb && gb % 64 == 0) {
            /* whole groups of whole vectors (14x14 planes: 2 rows of 64
             * bytes): plain stores, unrolled */
            _mm512_storeu_si512(d, _mm512_mask2_permutex2var_epi8(a, x0, valid[0], b));
            if (gb > 64)
                _mm512_storeu_si512(d + 64, _mm512_mask2_permutex2var_epi8(a, x1, valid[1], b));
            if (gb > 128)
                _mm512_storeu_si512(d + 128, _mm512_mask2_permutex2var_epi8(a, x2, valid[2], b));
            if (gb > 192)
                _mm512_storeu_si512(d + 192, _mm512_mask2_permutex2var_epi8(a, x3, valid[3], b));
            continue;
        }
        const __m512i xs[4] = {x0, x1, x2, x3};
        for (int64_t v = 0; v * 64 < nb; v++)
            _mm512_mask_storeu_epi8(d + v * 64, first_bytes(nb - v * 64),
                                    _mm512_mask2_permutex2var_epi8(a, xs[v], valid[v], b));
    }
}

/* see qx_ukernels.fill_s2v: the two source registers of fill_s1, then one
 * permute and one masked store per column phase */
TGTV static void fill_s2v(const uint8_t *const src[4], int64_t w, const uint8_t *idx,
                          const uint64_t *valid, int64_t row_bytes, uint8_t *const dst[2]) {
    __m512i a, b;
    fill_pairs(src[0], src[1], src[2], src[3], 0, w >= 32 ? 0xFFFFFFFFu : (1u << w) - 1u, &a, &b);
    for (int x = 0; x < 2; x++)
        if (dst[x])
            _mm512_mask_storeu_epi8(
                dst[x], first_bytes(row_bytes),
                _mm512_mask2_permutex2var_epi8(a, _mm512_loadu_si512(idx + 64 * x), valid[x], b));
}

static const qx_ukernels k_vnni = {.conv_tile = conv_tile,
                                   .gemm_tile = gemm_tile,
                                   .conv_tt = conv_tt,
                                   .multi_blk = true,
                                   .runs2 = true,
                                   .fill_s2 = fill_s2,
                                   .fill_s1 = fill_s1,
                                   .fill_s2v = fill_s2v};

const qx_ukernels *qx_ukernels_avx512vnni(void) { return &k_vnni; }

#else

const qx_ukernels *qx_ukernels_avx512vnni(void) { return NULL; }

#endif
