/* qx86_dw_avx2.c - depthwise 3x3 / 5x5 int8 convolution (stride 1 or 2)
 * with AVX2, bit-identical to qf_ref_conv2d_s8; reached through
 * qf_x86_dwconv2d_s8 (qx86.h) with QF_ISA_AVX2, which checks the arguments.
 *
 * Numerics: activations are widened to int16 and multiplied by int16
 * weights with vpmaddwd, whose pairwise int32 sums are exact (|q - z| <= 255,
 * |w| <= 128); the int32 accumulators wrap like the reference's sum. Two
 * taps share a 32-bit lane, and the two strides pair them differently:
 *
 * Stride 1, pairs of kernel rows: a "pair row" P[j] holds, for every padded
 * column, the dword (d of padded row 2j, d of padded row 2j + 1), d = q - z
 * (0 for padding, which then contributes nothing, as in the reference; the
 * sums start at the bias). Pair rows are built once per plane (and column
 * tile) into a ring on the stack, a few steps ahead of their use (a load
 * spanning stores still in flight waits for them). Tap kx of a kernel row
 * pair for 8 consecutive output pixels is then one unaligned 32-byte load
 * from P at the pixels' column + kx. Output rows 2m and 2m + 1 both read
 * P[m .. m + H] (H = 1 for 3x3, 2 for 5x5), row 2m with weights (w[2i],
 * w[2i + 1]) on P[m + i], row 2m + 1 with (w[2i - 1], w[2i]) (rows outside
 * the kernel 0), so each load feeds both.
 *
 * Stride 2, pairs of columns: output pixel ox reads the taps (2 ox + 2i,
 * 2 ox + 2i + 1) of a kernel row as one dword of the row widened to int16,
 * and vpmovsxbw of 16 input bytes gives that dword for 8 pixels: no copy of
 * the input. The widened values are q, not q - z: padded taps read q = z
 * and the sums start at bias - z * sum(w). Each padded input row feeds
 * output rows oy and oy + 1 (kernel rows t and t - 2) where it can. A block
 * whose window lies inside the row reads the input in place; one at a row
 * edge reads a zero-point padded copy of its window.
 *
 * Either way a 3x3 output costs 6 vpmaddwd per 8 pixels (72 of 96 products
 * used), a 5x5 one 15 (200 of 240).
 *
 * Columns: output pixels go in blocks of 8 * NV (NV = 2, or 1 for rows of at
 * most 8 pixels); the last block of a row is moved back to end at the row's
 * end (it recomputes a few pixels with the same bytes), so every store but
 * those of rows narrower than a block is whole. Stride 1 rows wider than
 * 256 pixels are cut into column tiles, each with its own pair rows. Input
 * bytes are read 16 at a time from the plane (contiguous NCHW rows): bytes
 * of columns outside the row (the previous or next row's, or past the
 * plane's ends through a shifted load) are replaced by the zero point, so
 * no byte outside the input buffer is read.
 *
 * Epilogue (dw2_out): FP32 requantization in the spec's SIMD form, or with
 * the clamps on the bytes when the multiplier is at most 0.5; FIXED mode in
 * a vector form of the gemmlowp steps (lane by lane with
 * qf_ref_requant_fixed for shifts below -31).
 *
 * Threads: tasks of whole (image, channel) planes (several small planes per
 * task), or bands of rows when a layer has few planes; every output byte is
 * computed by one task with the same arithmetic for any thread count. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdalign.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2")))
#define INL __attribute__((always_inline)) inline

/* Stride 1: output pixels per column tile; the ring of DW2_RING pair rows
 * of DW2_SLOT1 dwords (a tile reads npx + k - 1 <= 260 padded columns),
 * filled in chunks of 16 columns, DW2_AHEAD pair rows ahead of their first
 * use (small planes ran 7-10% faster than when built just in time). */
#define DW2_TILE_S1 256
#define DW2_SLOT1 272
#define DW2_RING 8
#define DW2_AHEAD 3
#define DW2_CHUNKS 17

/* Relative cost of a depthwise multiply-accumulate here against one of the
 * GEMM's (qf_x86_serial_macs counts GEMM MACs). */
#define DW2_MAC_COST 4.0
/* Outputs per task at least: small planes are grouped. */
#define DW2_TASK_OUTPUTS 2048
/* Layers with fewer planes are cut into row bands to make about this many
 * tasks. */
#define DW2_MIN_TASKS 16
/* Column tiles whose chunk tables are built once per call. */
#define DW2_TILES_KEPT 2

/* Which input bytes a tile's rows take: chunk ch covers input columns ic0 +
 * 16 ch .. + 15, of which those outside [0, in_w) read the zero point (mask
 * bytes 0xFF). Chunks [c_lo, c_hi) have a column inside the row; the others
 * are padding for every row, zeroed once per tile. */
typedef struct dw2_cols {
    __m128i mask[DW2_CHUNKS];
    int64_t ic0; /* input column of the tile's padded column 0 */
    int n;       /* chunks */
    int c_lo, c_hi;
} dw2_cols;

typedef struct dw2_job {
    const qf_ref_conv_params *p;
    const qf_x86_weights *w;
    const int32_t *bias;
    const int8_t *in;
    int8_t *out;
    int64_t n_planes;
    int64_t per_task;  /* planes per task (bands == 1) */
    int64_t bands;     /* row bands per plane */
    int64_t band_rows; /* output rows per band (even) */
    int n_kept;        /* tiles with a chunk table in cols */
    dw2_cols cols[DW2_TILES_KEPT];
} dw2_job;

/* Per-plane requantization constants. */
typedef struct dw2_epi {
    const qf_ref_requant *rq;
    const qf_ref_rescale *r;
    bool small;     /* FP32 multiplier in [0, 0.5] (qx_mult_small): the clamps move to the bytes */
    bool fixed_vec; /* FIXED mode with a shift in [-31, 31]: the vector form */
    int32_t left, right;     /* FIXED: the shift's left and right parts */
    __m128i left_c, right_c; /* the same as shift counts */
    __m256i mq;              /* FIXED: the Q31 multiplier */
    __m256 mult, lo, hi;
    __m256i zo;
    __m128i z16, lo8, hi8; /* out_zp (int16 lanes), act_min, act_max (int8 lanes) */
} dw2_epi;

/* The plane as the loads see it: a 16-byte load may start at base + off
 * for off in [lo, hi] (0 .. n - 16 for planes of 16 bytes or more; a
 * zero-point padded copy on the stack for smaller ones). */
typedef struct dw2_src {
    const int8_t *base;
    int64_t lo, hi;
    int64_t in_h, in_w;
} dw2_src;

/* pshufb indices: entry 16 + d + k is k + d where that is in [0, 16), else
 * 0x80 (a zero byte). */
static const int8_t dw2_shift_tab[48] = {
    -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128,
    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,
    -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128};

TGT static INL __m128i dw2_shift_idx(int64_t d) {
    return _mm_loadu_si128((const __m128i *)(const void *)(dw2_shift_tab + 16 + d));
}

/* 16 bytes of input row r (inside the image) at columns i0 .. i0 + 15 of a
 * chunk with a column inside the row; the zero point outside the row. */
TGT static INL __m128i dw2_load16(const dw2_src *s, int64_t r, int64_t i0, __m128i mask,
                                  __m128i zfill) {
    const int64_t off = r * s->in_w + i0;
    __m128i v;
    if (off >= s->lo && off <= s->hi) {
        /* bytes of other rows (the plane is contiguous) are masked below */
        v = _mm_loadu_si128((const __m128i *)(const void *)(s->base + off));
    } else {
        /* the plane's first or last bytes: load inside the plane and shift
         * the bytes into place; |off - at| < 16 as some column is inside */
        const int64_t at = off < s->lo ? s->lo : s->hi;
        v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s->base + at)),
                             dw2_shift_idx(off - at));
    }
    return _mm_blendv_epi8(v, zfill, mask);
}

/* The chunk table of a tile of n chunks from input column ic0. */
TGT static void dw2_cols_init(dw2_cols *cols, int64_t ic0, int n, int64_t in_w) {
    const __m128i k = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    cols->ic0 = ic0;
    cols->n = n;
    cols->c_lo = n;
    cols->c_hi = 0;
    for (int ch = 0; ch < n; ch++) {
        const int64_t i0 = ic0 + 16 * ch;
        /* byte k is inside the row iff -i0 <= k < in_w - i0 (bounds clamped
         * to [-1, 16]: k is in [0, 16)) */
        const int64_t a = -i0 < -1 ? -1 : (-i0 > 16 ? 16 : -i0);
        const int64_t b = in_w - i0 < -1 ? -1 : (in_w - i0 > 16 ? 16 : in_w - i0);
        const __m128i ge = _mm_cmpgt_epi8(k, _mm_set1_epi8((char)(a - 1)));
        const __m128i lt = _mm_cmpgt_epi8(_mm_set1_epi8((char)b), k);
        cols->mask[ch] = _mm_xor_si128(_mm_and_si128(ge, lt), _mm_set1_epi8(-1));
        if (i0 + 16 > 0 && i0 < in_w) {
            cols->c_lo = ch < cols->c_lo ? ch : cols->c_lo;
            cols->c_hi = ch + 1;
        }
    }
}

/* Stride 1: pair row of input rows r0, r0 + 1 into slot: per padded column
 * the dword (d of row r0, d of row r0 + 1), d = q - z (0 outside the image). */
TGT static INL void dw2_pair_row(int32_t *slot, const dw2_src *s, const dw2_cols *cols, int64_t r0,
                                 int8_t zp) {
    const bool a_in = r0 >= 0 && r0 < s->in_h, b_in = r0 + 1 >= 0 && r0 + 1 < s->in_h;
    const __m128i zfill = _mm_set1_epi8(zp);
    const __m256i z16 = _mm256_set1_epi16(zp);
    for (int ch = cols->c_lo; ch < cols->c_hi; ch++) {
        const int64_t i0 = cols->ic0 + 16 * ch;
        const __m128i va = a_in ? dw2_load16(s, r0, i0, cols->mask[ch], zfill) : zfill;
        const __m128i vb = b_in ? dw2_load16(s, r0 + 1, i0, cols->mask[ch], zfill) : zfill;
        /* bytes a0 b0 a1 b1 ..., widened: the dwords (a_i, b_i) */
        const __m256i lo = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(va, vb)), z16);
        const __m256i hi = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(va, vb)), z16);
        _mm256_storeu_si256((__m256i *)(void *)(slot + 16 * ch), lo);
        _mm256_storeu_si256((__m256i *)(void *)(slot + 16 * ch + 8), hi);
    }
}

/* Store the first n (1..16) bytes of q; idx_hi: dw2_shift_idx(n - 8) for n
 * in 9..15, dw2_shift_idx(n - 4) for n in 4..7. */
TGT static INL void dw2_store_n(int8_t *dst, __m128i q, int64_t n, __m128i idx_hi) {
    if (n == 16) {
        _mm_storeu_si128((__m128i *)(void *)dst, q);
    } else if (n == 8) {
        _mm_storel_epi64((__m128i *)(void *)dst, q);
    } else if (n > 8) { /* two overlapping 8-byte stores */
        _mm_storel_epi64((__m128i *)(void *)dst, q);
        _mm_storel_epi64((__m128i *)(void *)(dst + n - 8), _mm_shuffle_epi8(q, idx_hi));
    } else if (n >= 4) {
        const int32_t a = _mm_cvtsi128_si32(q), b = _mm_cvtsi128_si32(_mm_shuffle_epi8(q, idx_hi));
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else {
        alignas(16) int8_t t[16];
        _mm_store_si128((__m128i *)(void *)t, q);
        for (int64_t i = 0; i < n; i++)
            dst[i] = t[i];
    }
}

/* FIXED mode: 8 * nv sums lane by lane (qf_ref_requant_fixed) into q. */
static void dw2_fixed(const int32_t *a, int nv, const dw2_epi *e, int8_t *q) {
    const qf_ref_requant *rq = e->rq;
    for (int i = 0; i < 8 * nv; i++)
        q[i] = (int8_t)qf_ref_requant_fixed(a[i], e->r->mult_q, e->r->shift, rq->out_zp,
                                            rq->act_min, rq->act_max);
}

/* SRDHM on the 64-bit products ab of one parity (in the low dwords):
 * (ab + nudge) / 2^31 truncated toward zero, nudge = 2^30 for ab >= 0, else
 * 1 - 2^30 (gemmlowp; the multiplier is never INT32_MIN, so the one
 * overflowing case cannot occur). Truncation of a negative t is the floor
 * of t + 2^31 - 1; bits 31..62 of that, the low dword of the logical shift,
 * are those of the arithmetic one. */
TGT static INL __m256i dw2_srdhm64(__m256i ab) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i neg = _mm256_cmpgt_epi64(zero, ab);
    const __m256i nudge =
        _mm256_add_epi64(_mm256_set1_epi64x(INT64_C(1) << 30),
                         _mm256_and_si256(neg, _mm256_set1_epi64x(1 - (INT64_C(1) << 31))));
    __m256i t = _mm256_add_epi64(ab, nudge);
    t = _mm256_add_epi64(t, _mm256_and_si256(_mm256_cmpgt_epi64(zero, t),
                                             _mm256_set1_epi64x((INT64_C(1) << 31) - 1)));
    return _mm256_srli_epi64(t, 31);
}

/* FIXED mode on 8 lanes (qf_ref_mul_by_qmult with a shift in [-31, 31],
 * one multiplier for the plane): saturating left shift, SRDHM, rounding
 * divide by 2^right (ties away from zero). */
TGT static INL __m256i dw2_fixed_vec(__m256i acc, const dw2_epi *e) {
    __m256i v = acc;
    if (e->left > 0) {
        /* acc * 2^left saturates iff shifting back does not restore acc */
        const __m256i sh = _mm256_sll_epi32(acc, e->left_c);
        const __m256i ok = _mm256_cmpeq_epi32(_mm256_sra_epi32(sh, e->left_c), acc);
        const __m256i sat =
            _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(acc, 31));
        v = _mm256_blendv_epi8(sat, sh, ok);
    }
    const __m256i even = dw2_srdhm64(_mm256_mul_epi32(v, e->mq));
    const __m256i odd = dw2_srdhm64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), e->mq));
    __m256i r = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    if (e->right > 0) {
        /* floor(r / 2^e) + (remainder > threshold), threshold one more below 0 */
        const __m256i one = _mm256_set1_epi32(1);
        const __m256i mask = _mm256_sub_epi32(_mm256_sll_epi32(one, e->right_c), one);
        const __m256i rem = _mm256_and_si256(r, mask);
        const __m256i thr = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(r, 31));
        r = _mm256_sub_epi32(_mm256_sra_epi32(r, e->right_c), _mm256_cmpgt_epi32(rem, thr));
    }
    return r;
}

/* Requantize NV vectors of 8 sums and store the first n bytes; FX: FIXED
 * mode (a constant at every call site, so the FP32 loops hold no call).
 * FP32: the spec's SIMD form (cvtdq2ps, mulps, maxps, minps, cvtps2dq, + z,
 * saturating packs of values already in int8). With a multiplier in [0,
 * 0.5] every product is within +-2^30 (float(acc) is at most 2^31), so
 * cvtps2dq is exact and both clamps move after it, onto the bytes: rounding
 * commutes with clamping to integer bounds, and the saturating packs and
 * the 16-bit add of z are monotone and exact on [act_min - z, act_max - z],
 * so a value beyond a bound stays beyond it until max/min with the bytes of
 * act_min/act_max. Same bits, fewer float operations. FIXED mode: the
 * vector form (dw2_fixed_vec) and the same byte clamps, or, for shifts
 * below -31, qf_ref_requant_fixed lane by lane. */
TGT static INL void dw2_out(const __m256i *acc, const int NV, const int FX, const dw2_epi *e,
                            int8_t *dst, int64_t n, __m128i idx_hi) {
    __m128i q;
    if (FX ? e->fixed_vec : e->small) {
        /* exact int32 results, clamped on the bytes */
        __m256i v[2];
#pragma GCC unroll 2
        for (int t = 0; t < NV; t++)
            v[t] = FX ? dw2_fixed_vec(acc[t], e)
                      : _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[t]), e->mult));
        __m128i w;
        if (NV == 2) {
            const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xD8);
            w = _mm_adds_epi16(_mm256_castsi256_si128(p), e->z16);
            q = _mm_packs_epi16(w, _mm_adds_epi16(_mm256_extracti128_si256(p, 1), e->z16));
        } else {
            w = _mm_packs_epi32(_mm256_castsi256_si128(v[0]), _mm256_extracti128_si256(v[0], 1));
            w = _mm_adds_epi16(w, e->z16);
            q = _mm_packs_epi16(w, w);
        }
        q = _mm_min_epi8(_mm_max_epi8(q, e->lo8), e->hi8);
    } else if (!FX) {
        __m256i v[2];
#pragma GCC unroll 2
        for (int t = 0; t < NV; t++) {
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[t]), e->mult);
            f = _mm256_min_ps(_mm256_max_ps(f, e->lo), e->hi);
            v[t] = _mm256_add_epi32(_mm256_cvtps_epi32(f), e->zo);
        }
        /* values are within int8: the saturating packs are exact */
        if (NV == 2) {
            const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xD8);
            q = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        } else {
            const __m128i w =
                _mm_packs_epi32(_mm256_castsi256_si128(v[0]), _mm256_extracti128_si256(v[0], 1));
            q = _mm_packs_epi16(w, w);
        }
    } else {
        alignas(32) int32_t a[16];
        alignas(16) int8_t b[16];
#pragma GCC unroll 2
        for (int t = 0; t < NV; t++)
            _mm256_store_si256((__m256i *)(void *)(a + 8 * t), acc[t]);
        dw2_fixed(a, NV, e, b);
        q = _mm_load_si128((const __m128i *)(const void *)b);
    }
    dw2_store_n(dst, q, n, idx_hi);
}

/* acc + vpmaddwd(x, w), kept in this order: an empty asm on the sum stops
 * the compiler from reassociating the accumulator chains into trees, which
 * kept every product (and loaded vector) live at once and spilled them. */
TGT static INL __m256i dw2_madd(__m256i acc, __m256i x, __m256i w) {
    __m256i r = _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
    __asm__("" : "+x"(r));
    return r;
}

TGT static INL __m256i dw2_load8(const int32_t *p) {
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* Per-plane constants: weight pairs (wv), requantization, the loads' view of
 * the plane. */
typedef struct dw2_plane {
    alignas(32) int32_t wv[6][8];
    dw2_epi e;
    dw2_src s;
    alignas(16) int8_t small[48]; /* planes under 16 bytes, zero-point padded */
    int64_t c;
    const int8_t *src; /* the plane as stored */
    int8_t *dst;
} dw2_plane;

/* Weight pairs, from int16 rows R[ky] = w[ky][0..K-1] then zeros (packed
 * rows are 4 or 8 bytes, bytes past K zero). Stride 1: wv[i][kx] = (w[2i][kx],
 * w[2i + 1][kx]) for output row A, wv[H + 1 + i][kx] = (w[2i - 1][kx],
 * w[2i][kx]) for row B (rows outside the kernel 0). Stride 2: wv[ky][i] =
 * (w[ky][2i], w[ky][2i + 1]), R[ky] read as dwords. */
TGT static INL void dw2_plane_init(const dw2_job *j, int64_t plane, dw2_plane *d, const int K,
                                   const int S) {
    const int H = (K - 1) / 2, GW = (K + 3) / 4;
    const qf_ref_conv_params *p = j->p;
    const int64_t c = plane % p->in_c, n_in = (int64_t)p->in_h * p->in_w;
    const int8_t *wc = j->w->data + c * (int64_t)K * GW * 4;
    __m128i R[7]; /* R[ky + 1]; R[0] and R[K + 1] zero */
    R[0] = R[K + 1] = _mm_setzero_si128();
#pragma GCC unroll 5
    for (int ky = 0; ky < K; ky++) {
        int64_t b8 = 0;
        memcpy(&b8, wc + ky * GW * 4, (size_t)GW * 4);
        R[ky + 1] = _mm_cvtepi8_epi16(_mm_cvtsi64_si128(b8));
    }
    if (S == 1) {
#pragma GCC unroll 3
        for (int i = 0; i <= H; i++) {
            __m128i *wa = (__m128i *)(void *)d->wv[i], *wb = (__m128i *)(void *)d->wv[H + 1 + i];
            _mm_store_si128(wa, _mm_unpacklo_epi16(R[2 * i + 1], R[2 * i + 2]));
            _mm_store_si128(wa + 1, _mm_unpackhi_epi16(R[2 * i + 1], R[2 * i + 2]));
            _mm_store_si128(wb, _mm_unpacklo_epi16(R[2 * i], R[2 * i + 1]));
            _mm_store_si128(wb + 1, _mm_unpackhi_epi16(R[2 * i], R[2 * i + 1]));
        }
    } else {
#pragma GCC unroll 5
        for (int ky = 0; ky < K; ky++)
            _mm_store_si128((__m128i *)(void *)d->wv[ky], R[ky + 1]);
    }
    const qf_ref_requant *rq = &p->rq;
    const qf_ref_rescale *r = qr_mult_of(rq, c);
    d->e.rq = rq;
    d->e.r = r;
    d->e.mult = _mm256_set1_ps(r->mult_f);
    d->e.lo = _mm256_set1_ps((float)(rq->act_min - rq->out_zp));
    d->e.hi = _mm256_set1_ps((float)(rq->act_max - rq->out_zp));
    d->e.zo = _mm256_set1_epi32(rq->out_zp);
    d->e.small = qx_mult_small(r->mult_f);
    d->e.fixed_vec = r->shift >= -31 && r->shift <= 31;
    d->e.left = r->shift > 0 ? r->shift : 0;
    d->e.right = r->shift < 0 ? -r->shift : 0;
    d->e.left_c = _mm_cvtsi32_si128(d->e.left);
    d->e.right_c = _mm_cvtsi32_si128(d->e.right);
    d->e.mq = _mm256_set1_epi32(r->mult_q);
    d->e.z16 = _mm_set1_epi16((int16_t)rq->out_zp);
    d->e.lo8 = _mm_set1_epi8((char)rq->act_min);
    d->e.hi8 = _mm_set1_epi8((char)rq->act_max);
    d->c = c;
    d->src = j->in + plane * n_in;
    d->dst = j->out + plane * (int64_t)p->out_h * p->out_w;
    d->s.base = d->src;
    d->s.lo = 0;
    d->s.hi = n_in - 16;
    d->s.in_h = p->in_h;
    d->s.in_w = p->in_w;
    if (n_in < 16) {
        /* every 16-byte load then stays inside the copy */
        memset(d->small, p->in_zp, sizeof d->small);
        memcpy(d->small + 16, d->src, (size_t)n_in);
        d->s.base = d->small + 16;
        d->s.lo = -16;
        d->s.hi = 16;
    }
}

/* The task's ring of pair rows (stride 1); ready: its padding chunks are
 * zero for the first column tile (the only one of most layers), as left by
 * the previous plane of the task. */
typedef struct dw2_ring {
    alignas(32) int32_t d[DW2_RING * DW2_SLOT1];
    bool ready;
} dw2_ring;

/* Stride 1: rows [oy_lo, oy_hi) (oy_lo even) of one plane, from pair rows
 * built into the ring. K (3 or 5), NV (1 or 2) and FX (FIXED mode) are
 * constants at every call site, so the tap loops unroll and the
 * accumulators stay in registers. */
TGT static INL void dw2_rows_s1(const dw2_job *j, int64_t plane, int64_t oy_lo, int64_t oy_hi,
                                dw2_ring *rg, const int K, const int NV, const int FX) {
    const int H = (K - 1) / 2, PX = 8 * NV;
    const qf_ref_conv_params *p = j->p;
    const int64_t out_w = p->out_w;
    const int8_t zp = (int8_t)p->in_zp;
    dw2_plane d;
    dw2_plane_init(j, plane, &d, K, 1);
    const __m256i base = _mm256_set1_epi32(j->bias ? j->bias[d.c] : 0);
    int32_t *ring = rg->d;
    const int64_t nblk = out_w <= PX ? 1 : (out_w + PX - 1) / PX;
    const int64_t last_x = out_w > PX ? out_w - PX : 0; /* the last block ends at the row's end */
    const int64_t bpt = DW2_TILE_S1 / PX;
    const int64_t n_st = out_w < PX ? out_w : PX; /* bytes stored per block */
    const __m128i idx_hi = dw2_shift_idx(n_st > 8 ? n_st - 8 : (n_st >= 4 ? n_st - 4 : 0));
    dw2_cols own;
    for (int64_t k0 = 0, tile = 0; k0 < nblk; k0 += bpt, tile++) {
        const int64_t k1 = k0 + bpt < nblk ? k0 + bpt : nblk;
        const int64_t px0 = k0 == nblk - 1 ? last_x : k0 * PX;
        const dw2_cols *cols = &own;
        if (tile < j->n_kept) {
            cols = &j->cols[tile];
        } else {
            const int64_t px1 = (k1 == nblk ? last_x : (k1 - 1) * PX) + PX;
            dw2_cols_init(&own, px0 - p->pad_left, (int)((px1 - px0 + K - 1 + 15) / 16), p->in_w);
        }
        /* chunks without an input column hold zeros in every row */
        for (int q = 0; q < DW2_RING && !(tile == 0 && rg->ready); q++)
            for (int ch = 0; ch < cols->n; ch++)
                if (ch < cols->c_lo || ch >= cols->c_hi) {
                    int32_t *z = ring + q * DW2_SLOT1 + 16 * ch;
                    _mm256_storeu_si256((__m256i *)(void *)z, _mm256_setzero_si256());
                    _mm256_storeu_si256((__m256i *)(void *)(z + 8), _mm256_setzero_si256());
                }
        rg->ready = tile == 0;
        int64_t next = 0; /* the next pair row to build */
        for (int64_t oy = oy_lo; oy < oy_hi; oy += 2) {
            /* output rows oy, oy + 1 read pair rows oy / 2 .. oy / 2 + H */
            const int64_t first = oy / 2;
            if (next < first) next = first;
            for (; next <= first + H + DW2_AHEAD; next++)
                dw2_pair_row(ring + (next & (DW2_RING - 1)) * DW2_SLOT1, &d.s, cols,
                             2 * next - p->pad_top, zp);
            const int32_t *rw[3];
#pragma GCC unroll 3
            for (int i = 0; i <= H; i++)
                rw[i] = ring + ((first + i) & (DW2_RING - 1)) * DW2_SLOT1;
            const bool two = oy + 1 < oy_hi;
            int8_t *da = d.dst + oy * out_w;
            for (int64_t k = k0; k < k1; k++) {
                const int64_t x = k == nblk - 1 ? last_x : k * PX, xo = x - px0;
                __m256i acc_a[2], acc_b[2];
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    acc_a[v] = acc_b[v] = base;
#pragma GCC unroll 3
                for (int i = 0; i <= H; i++)
#pragma GCC unroll 5
                    for (int kx = 0; kx < K; kx++) {
                        /* each load feeds row A (weights wv[i]) and row B (wv[H + 1 + i]) */
                        const __m256i wa = _mm256_set1_epi32(d.wv[i][kx]);
                        const __m256i wb = _mm256_set1_epi32(d.wv[H + 1 + i][kx]);
#pragma GCC unroll 2
                        for (int v = 0; v < NV; v++) {
                            const __m256i xv = dw2_load8(rw[i] + xo + kx + 8 * v);
                            acc_a[v] = dw2_madd(acc_a[v], xv, wa);
                            acc_b[v] = dw2_madd(acc_b[v], xv, wb);
                        }
                    }
                dw2_out(acc_a, NV, FX, &d.e, da + x, n_st, idx_hi);
                if (two) dw2_out(acc_b, NV, FX, &d.e, da + out_w + x, n_st, idx_hi);
            }
        }
    }
}

/* Stride 2: rows [oy_lo, oy_hi) of one plane, straight from the int8
 * input. Output pixel ox takes the taps (2 ox + 2i, 2 ox + 2i + 1) of a
 * kernel row as one dword of the row widened to int16 (vpmovsxbw of 16
 * bytes gives 8 such pixels), with weights (w[2i], w[2i + 1]); the last
 * pair's second weight is 0. The widened values are q, not q - z: padded
 * taps read q = z, and the sums start at bias - z * sum(w). A block whose
 * window (2 * 8NV + K - 1 columns) lies inside the row reads the input in
 * place (the byte past its last tap, of weight 0, may be the next row's);
 * one at a row edge, or one whose window would end past the plane, reads a
 * zero-point padded copy of its window; rows outside the image read a row
 * of zero points. (Copying whole rows instead, or masking each load in
 * registers, measured slower.) */
TGT static INL void dw2_rows_s2(const dw2_job *j, int64_t plane, int64_t oy_lo, int64_t oy_hi,
                                const int K, const int NV, const int FX) {
    const int H = (K - 1) / 2, PX = 8 * NV, WIN = 2 * PX + 2 * H, NCH = (WIN + 15) / 16;
    const qf_ref_conv_params *p = j->p;
    const int64_t in_w = p->in_w, in_h = p->in_h, out_w = p->out_w, pad_left = p->pad_left;
    const int8_t zp = (int8_t)p->in_zp;
    dw2_plane d;
    dw2_plane_init(j, plane, &d, K, 2);
    const uint32_t corr =
        (j->bias ? (uint32_t)j->bias[d.c] : 0u) - (uint32_t)p->in_zp * (uint32_t)j->w->wsum[d.c];
    const __m256i base = _mm256_set1_epi32((int32_t)corr);
    const __m128i zfill = _mm_set1_epi8(zp);
    alignas(16) int8_t zrow[48];
    alignas(16) int8_t win[7][48];
    _mm_store_si128((__m128i *)(void *)zrow, zfill);
    _mm_store_si128((__m128i *)(void *)(zrow + 16), zfill);
    _mm_store_si128((__m128i *)(void *)(zrow + 32), zfill);
    const int64_t nblk = out_w <= PX ? 1 : (out_w + PX - 1) / PX;
    const int64_t last_x = out_w > PX ? out_w - PX : 0;
    const int64_t n_st = out_w < PX ? out_w : PX;
    const __m128i idx_hi = dw2_shift_idx(n_st > 8 ? n_st - 8 : (n_st >= 4 ? n_st - 4 : 0));
    const __m128i kk = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t oy = oy_lo; oy < oy_hi; oy += 2) {
        /* padded rows 2 oy + t: kernel row t of output row A, t - 2 of B */
        int64_t row[7];
        bool in[7];
        const int8_t *rowp[7];
        bool last_in = false; /* the plane's last row is among them */
#pragma GCC unroll 7
        for (int t = 0; t < K + 2; t++) {
            row[t] = 2 * oy + t - p->pad_top;
            in[t] = row[t] >= 0 && row[t] < in_h;
            rowp[t] = in[t] ? d.src + row[t] * in_w : NULL;
            last_in = last_in || row[t] == in_h - 1;
        }
        const bool two = oy + 1 < oy_hi;
        int8_t *da = d.dst + oy * out_w;
        for (int64_t k = 0; k < nblk; k++) {
            const int64_t x = k == nblk - 1 ? last_x : k * PX;
            const int64_t i0 = 2 * x - pad_left; /* input column of window byte 0 */
            /* in place when the taps of weight != 0 are inside the row and
             * the window's last byte (weight 0), if past the row, is not
             * past the plane */
            const bool direct =
                i0 >= 0 && i0 + 2 * (PX - 1) + K <= in_w && (i0 + WIN <= in_w || !last_in);
            const int8_t *src[7];
            if (direct) {
#pragma GCC unroll 7
                for (int t = 0; t < K + 2; t++)
                    src[t] = in[t] ? rowp[t] + i0 : zrow;
            } else {
                __m128i mask[3];
#pragma GCC unroll 3
                for (int ch = 0; ch < NCH; ch++) {
                    const int64_t c0 = i0 + 16 * ch;
                    const int64_t lo = -c0 < -1 ? -1 : (-c0 > 16 ? 16 : -c0);
                    const int64_t hi = in_w - c0 < -1 ? -1 : (in_w - c0 > 16 ? 16 : in_w - c0);
                    mask[ch] = _mm_xor_si128(
                        _mm_and_si128(_mm_cmpgt_epi8(kk, _mm_set1_epi8((char)(lo - 1))),
                                      _mm_cmpgt_epi8(_mm_set1_epi8((char)hi), kk)),
                        _mm_set1_epi8(-1));
                }
#pragma GCC unroll 7
                for (int t = 0; t < K + 2; t++) {
                    src[t] = zrow;
                    if (!in[t]) continue;
#pragma GCC unroll 3
                    for (int ch = 0; ch < NCH; ch++) {
                        const int64_t c0 = i0 + 16 * ch;
                        __m128i v = zfill;
                        if (c0 + 16 > 0 && c0 < in_w)
                            v = dw2_load16(&d.s, row[t], c0, mask[ch], zfill);
                        _mm_store_si128((__m128i *)(void *)(win[t] + 16 * ch), v);
                    }
                    src[t] = win[t];
                }
            }
            __m256i acc_a[2], acc_b[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                acc_a[v] = acc_b[v] = base;
#pragma GCC unroll 7
            for (int t = 0; t < K + 2; t++)
#pragma GCC unroll 3
                for (int i = 0; i <= H; i++)
#pragma GCC unroll 2
                    for (int v = 0; v < NV; v++) {
                        const __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128(
                            (const __m128i *)(const void *)(src[t] + 2 * i + 16 * v)));
                        if (t < K) acc_a[v] = dw2_madd(acc_a[v], xv, _mm256_set1_epi32(d.wv[t][i]));
                        if (t >= 2)
                            acc_b[v] = dw2_madd(acc_b[v], xv, _mm256_set1_epi32(d.wv[t - 2][i]));
                    }
            dw2_out(acc_a, NV, FX, &d.e, da + x, n_st, idx_hi);
            if (two) dw2_out(acc_b, NV, FX, &d.e, da + out_w + x, n_st, idx_hi);
        }
    }
}

/* One function per instance (each with its own register allocation). */
#define DW2_INSTANCE(K, S, NV)                                                                     \
    TGT static void dw2_k##K##_s##S##_v##NV(const dw2_job *j, int64_t plane, int64_t lo,           \
                                            int64_t hi, dw2_ring *rg) {                            \
        if (j->p->rq.mode == QF_RQ_FIXED)                                                          \
            DW2_ROWS_S##S(j, plane, lo, hi, rg, K, NV, 1);                                         \
        else                                                                                       \
            DW2_ROWS_S##S(j, plane, lo, hi, rg, K, NV, 0);                                         \
    }
#define DW2_ROWS_S1(j, plane, lo, hi, rg, K, NV, FX) dw2_rows_s1(j, plane, lo, hi, rg, K, NV, FX)
#define DW2_ROWS_S2(j, plane, lo, hi, rg, K, NV, FX)                                               \
    ((void)(rg), dw2_rows_s2(j, plane, lo, hi, K, NV, FX))
DW2_INSTANCE(3, 1, 1)
DW2_INSTANCE(3, 1, 2)
DW2_INSTANCE(3, 2, 1)
DW2_INSTANCE(3, 2, 2)
DW2_INSTANCE(5, 1, 1)
DW2_INSTANCE(5, 1, 2)
DW2_INSTANCE(5, 2, 1)
DW2_INSTANCE(5, 2, 2)

static void dw2_rows(const dw2_job *j, int64_t plane, int64_t lo, int64_t hi, dw2_ring *rg) {
    const qf_ref_conv_params *p = j->p;
    const bool v2 = p->out_w > 8, s1 = p->stride_h == 1;
    if (p->k_h == 3) {
        if (s1)
            v2 ? dw2_k3_s1_v2(j, plane, lo, hi, rg) : dw2_k3_s1_v1(j, plane, lo, hi, rg);
        else
            v2 ? dw2_k3_s2_v2(j, plane, lo, hi, rg) : dw2_k3_s2_v1(j, plane, lo, hi, rg);
    } else {
        if (s1)
            v2 ? dw2_k5_s1_v2(j, plane, lo, hi, rg) : dw2_k5_s1_v1(j, plane, lo, hi, rg);
        else
            v2 ? dw2_k5_s2_v2(j, plane, lo, hi, rg) : dw2_k5_s2_v1(j, plane, lo, hi, rg);
    }
}

static void dw2_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const dw2_job *j = ctx;
    dw2_ring rg;
    rg.ready = false;
    if (j->bands > 1) {
        const int64_t lo = task % j->bands * j->band_rows;
        const int64_t hi = lo + j->band_rows < j->p->out_h ? lo + j->band_rows : j->p->out_h;
        dw2_rows(j, task / j->bands, lo, hi, &rg);
        return;
    }
    const int64_t p0 = task * j->per_task;
    const int64_t p1 = p0 + j->per_task < j->n_planes ? p0 + j->per_task : j->n_planes;
    for (int64_t pl = p0; pl < p1; pl++)
        dw2_rows(j, pl, 0, j->p->out_h, &rg);
}

void qx_dwconv2d_s8_avx2(qf_threadpool *pool, const qf_ref_conv_params *p, const int8_t *in,
                         const qf_x86_weights *w, const int32_t *bias, int8_t *out) {
    dw2_job j = {.p = p, .w = w, .bias = bias, .in = in, .out = out};
    const int64_t planes = (int64_t)p->batch * p->in_c;
    const int64_t plane_out = (int64_t)p->out_h * p->out_w;
    /* the chunk tables of the first tiles (the same for every plane) */
    const int K = p->k_h, S = p->stride_h, PX = p->out_w > 8 ? 16 : 8;
    const int64_t nblk = p->out_w <= PX ? 1 : (p->out_w + PX - 1) / PX;
    const int64_t last_x = p->out_w > PX ? p->out_w - PX : 0;
    const int64_t bpt = DW2_TILE_S1 / PX;
    for (int64_t k0 = 0; S == 1 && k0 < nblk && j.n_kept < DW2_TILES_KEPT; k0 += bpt) {
        const int64_t k1 = k0 + bpt < nblk ? k0 + bpt : nblk;
        const int64_t px0 = k0 == nblk - 1 ? last_x : k0 * PX;
        const int64_t px1 = (k1 == nblk ? last_x : (k1 - 1) * PX) + PX;
        dw2_cols_init(&j.cols[j.n_kept++], px0 - p->pad_left, (int)((px1 - px0 + K - 1 + 15) / 16),
                      p->in_w);
    }
    j.n_planes = planes;
    j.bands = 1;
    j.per_task = plane_out >= DW2_TASK_OUTPUTS ? 1 : (DW2_TASK_OUTPUTS + plane_out - 1) / plane_out;
    int64_t n_tasks = (planes + j.per_task - 1) / j.per_task;
    if (planes < DW2_MIN_TASKS && j.per_task == 1) {
        /* few large planes: bands of an even number of rows (>= 8) */
        const int64_t want = (DW2_MIN_TASKS + planes - 1) / planes;
        int64_t rows = (p->out_h + want - 1) / want;
        rows = rows < 8 ? 8 : (rows + 1) / 2 * 2;
        j.band_rows = rows;
        j.bands = (p->out_h + rows - 1) / rows;
        n_tasks = planes * j.bands;
    }
    if ((double)planes * (double)plane_out * K * K * DW2_MAC_COST < qf_x86_serial_macs())
        pool = NULL;
    qf_parallel_for(pool, n_tasks, dw2_task, &j);
}

#endif
