/* qx86_dw_avx512vnni.c - depthwise 3x3 / 5x5 int8 convolution (stride 1 or
 * 2) with AVX-512 VNNI, bit-identical to qf_ref_conv2d_s8 (qx86.h), and the
 * entry point qf_x86_dwconv2d_s8, which checks the arguments and sends
 * QF_ISA_AVX2 calls to the AVX2 kernel (qx86_dw_avx2.c).
 *
 * NCHW, no scratch. Tasks are whole (image, channel) planes, grouped so a
 * task has at least DW_TASK_OUTPUTS outputs. Common to all paths: the
 * activations are flipped to u8 (q + 128) for vpdpbusd, a padded tap reads
 * (128 + z), which the per-channel correction -(128 + z) * sum(w) cancels
 * (it contributes 0, as in the reference), and the fourth byte of a 3-tap
 * lane has weight 0, so it may read any byte. Three paths, picked per call:
 *
 * Flat path (AVX512_VBMI, out_w <= FLAT_MAX_OW: 7x7 planes and the like):
 * outputs in flat plane order, 64 per group, each 4-tap lane gathered by
 * one vpermb from a 64- or 128-byte window of the plane, driven by index
 * tables built once per call (flat_build). No lane idles at a row end.
 *
 * Wide path (AVX512_VBMI, 3x3): blocks of 16 / NV output rows x 16 * NV
 * pixels (NV = 1, 2 or 4 by row width). Each input row under a block is
 * loaded once (1 to 3 masked 64-byte loads), and one vpermb (or vpermi2b)
 * per 16 pixels builds the 4-byte lanes, which then feed every output row
 * whose window covers that input row. Four accumulators requantize
 * together into one 64-byte result (rq4_fp32).
 *
 * Row path (everything else, and CPUs without VBMI): blocks of DW_ROWS
 * output rows x 16 output pixels. For each input
 * row the block touches, 64 bytes are loaded once (masked: the bytes outside
 * the row read the zero point), flipped, and for each group
 * of 4 taps vpermd + vpshufb put the 4 bytes pixel p needs (p * stride +
 * tap) into its 32-bit lane. That gathered vector then feeds, with vpdpbusd,
 * every output row of the block whose window covers the input row (up to 3
 * for 3x3 stride 1), each with its own broadcast weights: loads and
 * permutes per output drop by about the reuse factor, and the block's rows
 * are independent accumulator chains. Input rows outside the image are a
 * vector of (128 + z) bytes. Rows of the last block past out_h are computed
 * from such rows and not stored. Kernel size and stride are compile-time
 * constants of inlined instances (in all paths), so the row and tap loops
 * unroll and the accumulators stay in registers. Epilogues:
 * qx86_avx512_rq.h and rq4_fp32 below. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdalign.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define TGTV __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))
#define INL __attribute__((always_inline)) inline

#include "kernels/x86/qx86_avx512_rq.h"

/* Output rows per block: 4 gives 3x3 stride 1 a reuse of 12 dot products
 * per 6 gathered rows while 4 accumulators + up to 10 weight vectors + the
 * constants still fit the 32 zmm registers. */
#define DW_ROWS 4

bool qf_x86_dwconv_supported(const qf_ref_conv_params *p) {
    if (!p || p->batch < 1 || p->in_c < 1 || p->groups != p->in_c || p->out_c != p->in_c ||
        p->k_h != p->k_w || (p->k_h != 3 && p->k_h != 5) || p->stride_h != p->stride_w ||
        (p->stride_h != 1 && p->stride_h != 2) || p->dil_h != 1 || p->dil_w != 1 || p->in_h < 1 ||
        p->in_w < 1)
        return false;
    int32_t oh =
        qf_ref_conv_out_size(p->in_h, p->k_h, p->stride_h, p->dil_h, p->pad_top, p->pad_bottom);
    int32_t ow =
        qf_ref_conv_out_size(p->in_w, p->k_w, p->stride_w, p->dil_w, p->pad_left, p->pad_right);
    return oh >= 1 && ow >= 1 && oh == p->out_h && ow == p->out_w;
}

typedef struct flat_plan flat_plan;

typedef struct dw_job dw_job;
typedef void (*dw_plane_fn)(void *ctx, int64_t plane, int tid);

typedef struct dw_job {
    const qf_ref_conv_params *p;
    dw_plane_fn plane;          /* the path's per-plane function */
    int64_t n_planes, per_task; /* batch * channels; planes per task */
    const flat_plan *fp;        /* flat path tables */
    /* wide path: byte 4L + d of vector m's vpermi2b index reads byte
     * 16 * m * S + L * S + d - 64 * a_m of the register pair (d == 3 has
     * weight 0 and reads a neighbour); built once per call, since building
     * it per plane cost a store-forwarding stall every plane */
    alignas(64) uint8_t widx[4][64];
    /* row path: lane L of tap group g starts at source dword L * S + g
     * (vpermd), then byte 4i + t of each 128-bit lane takes source byte
     * i * S + t (vpshufb); built once per call for the same reason */
    alignas(64) int32_t rperm[2][16];
    alignas(64) int8_t rshuf[64];
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
    const int GW = (KH + 3) / 4;           /* tap groups of 4 per kernel row */
    const int NI = (DW_ROWS - 1) * S + KH; /* input rows under one row block */
    const int8_t *wc = j->w->data + c * (int64_t)KH * GW * 4;
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    const uint32_t corr = (j->bias ? (uint32_t)j->bias[c] : 0u) - zc * (uint32_t)j->w->wsum[c];
    __m512i wv[5][2];
#pragma GCC unroll 5
    for (int ky = 0; ky < KH; ky++)
#pragma GCC unroll 2
        for (int g = 0; g < GW; g++)
            wv[ky][g] = _mm512_set1_epi32(load32(wc + (ky * GW + g) * 4));
    __m512i perm[2];
    for (int g = 0; g < GW; g++)
        perm[g] = _mm512_load_si512(j->rperm[g]);
    const __m512i shuf = _mm512_load_si512(j->rshuf);
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
            for (int rr = 0; rr < DW_ROWS; rr++)
                acc[rr] = base;
                /* every loop below unrolls fully: acc stays in registers */
#pragma GCC unroll 64
            for (int i = 0; i < NI; i++) {
                const int64_t iy = iy0 + i;
                __m512i x[2] = {xpad, xpad};
                if (iy >= 0 && iy < in_h) {
                    /* byte k of the load is input column ix0 + k; masked-off
                     * bytes are never touched and read the zero point */
                    const void *src =
                        (const void *)((uintptr_t)(plane + iy * in_w) + (uintptr_t)ix0);
                    const __m512i v = _mm512_xor_si512(_mm512_mask_loadu_epi8(zfill, m, src), flip);
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

/* ---- flat path: whole-plane gathers with vpermb (AVX512_VBMI) ---------- */

/* Output pixels of a plane are taken in flat order, 16 per vector, 4 vectors
 * (64 outputs, one 64-byte store) per group. For each vector and each kernel
 * row and tap group, a table entry says where a 64- or 128-byte window of
 * the input plane starts (base) and, for each of the 64 lane bytes, which
 * window byte that tap reads (idx) or that the tap is padding (valid bit
 * clear: the masked vpermb keeps the index byte itself, set to 128 + z).
 * One vpermb per entry then replaces the row walk: no lane is idle at a row
 * end (7x7 planes fill 49 of 64 lanes instead of 7 of 16). */
#define FLAT_MAX_ENT 192
/* Wider rows go to the wide path, whose row reuse wins there. */
#define FLAT_MAX_OW 8

struct flat_plan {
    alignas(64) uint8_t idx[FLAT_MAX_ENT][64];
    uint64_t valid[FLAT_MAX_ENT];
    int32_t base[FLAT_MAX_ENT];
    int32_t ngrp; /* groups of 4 output vectors */
    int nl;       /* 64-byte loads per window: 1 or 2 */
    bool small;   /* the plane is <= 64 bytes: loaded once per plane */
};

/* Entries go [group][vector][ky][g]. Vectors past the plane (the last
 * group's padding) read padding only and are never stored. */
static bool flat_build(const qf_ref_conv_params *p, uint8_t zc, flat_plan *fp) {
    const int KH = p->k_h, KW = p->k_w, GW = (KW + 3) / 4, S = p->stride_h;
    const int64_t in_h = p->in_h, in_w = p->in_w, ow = p->out_w;
    const int64_t n_out = (int64_t)p->out_h * ow, n_in = in_h * in_w;
    const int64_t ngrp = (n_out + 63) / 64, nent = ngrp * 4 * KH * GW;
    if (nent > FLAT_MAX_ENT) return false;
    int64_t span = 0;
    /* pass 1: the first and last input byte each entry reads */
    for (int64_t e = 0; e < nent; e++) {
        const int64_t v = e / (KH * GW), ky = e / GW % KH, g = e % GW;
        int64_t lo = INT64_MAX, hi = -1;
        for (int l = 0; l < 16; l++) {
            const int64_t f = v * 16 + l;
            if (f >= n_out) break;
            const int64_t iy = f / ow * S - p->pad_top + ky;
            if (iy < 0 || iy >= in_h) continue;
            for (int d = 0; d < 4; d++) {
                const int64_t kx = g * 4 + d, ix = f % ow * S - p->pad_left + kx;
                if (kx >= KW || ix < 0 || ix >= in_w) continue;
                const int64_t pos = iy * in_w + ix;
                lo = pos < lo ? pos : lo;
                hi = pos > hi ? pos : hi;
            }
        }
        if (hi < 0) lo = hi = 0;
        fp->base[e] = (int32_t)lo;
        span = hi - lo + 1 > span ? hi - lo + 1 : span;
    }
    fp->small = n_in <= 64;
    fp->nl = span <= 64 ? 1 : 2;
    if (span > 128 || (!fp->small && n_in < 64 * fp->nl)) return false;
    /* pass 2: window bases inside the plane, then the indices */
    for (int64_t e = 0; e < nent; e++) {
        const int64_t v = e / (KH * GW), ky = e / GW % KH, g = e % GW;
        int64_t b = fp->base[e];
        if (fp->small)
            b = 0;
        else if (b > n_in - 64 * fp->nl)
            b = n_in - 64 * fp->nl;
        fp->base[e] = (int32_t)b;
        uint64_t valid = 0;
        memset(fp->idx[e], zc, 64);
        for (int l = 0; l < 16; l++) {
            const int64_t f = v * 16 + l;
            if (f >= n_out) break;
            const int64_t iy = f / ow * S - p->pad_top + ky;
            if (iy < 0 || iy >= in_h) continue;
            for (int d = 0; d < 4; d++) {
                const int64_t kx = g * 4 + d, ix = f % ow * S - p->pad_left + kx;
                if (kx >= KW || ix < 0 || ix >= in_w) continue;
                fp->idx[e][l * 4 + d] = (uint8_t)(iy * in_w + ix - b);
                valid |= (uint64_t)1 << (l * 4 + d);
            }
        }
        fp->valid[e] = valid;
    }
    fp->ngrp = (int32_t)ngrp;
    return true;
}

/* FP32 epilogue of 4 accumulators (64 outputs): the spec's multiply in
 * float, then the clamps and + z through saturating packs, which the row
 * path does per 16 lanes. Same bits as rq_fp32i: with the upper clamp in
 * float (needed when |mult| >= 1: above INT32_MAX cvtps2dq gives INT32_MIN)
 * cvtps2dq gives q in [INT32_MIN, hi] (INT32_MIN also for f below the int32
 * range). With |mult| < 1, |f| <= 2^31 - 128 (the largest float below 1
 * times 2^31), so cvtps2dq is exact and the upper clamp moves to the bytes
 * too. The packs and the 16-bit add saturate monotonically and are exact
 * on [lo - z, hi - z], so a q outside ends beyond the bound it crossed and
 * max/min with the byte bounds give that bound. The packs leave dword m of
 * lane k of accumulator a at byte dword 4k + a; vpermd puts it back at
 * 4a + k. */
typedef struct rq4_consts {
    __m512 mult, hi;
    __m512i z16, lo8, hi8, tperm;
    bool small; /* |mult| < 1 */
} rq4_consts;

TGTV static INL rq4_consts rq4_init(const qf_ref_requant *rq, const qf_ref_rescale *r) {
    rq4_consts k;
    k.mult = _mm512_set1_ps(r->mult_f);
    k.hi = _mm512_set1_ps((float)(rq->act_max - rq->out_zp));
    k.z16 = _mm512_set1_epi16((int16_t)rq->out_zp);
    k.lo8 = _mm512_set1_epi8((char)rq->act_min);
    k.hi8 = _mm512_set1_epi8((char)rq->act_max);
    k.tperm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    k.small = r->mult_f < 1.0f && r->mult_f > -1.0f;
    return k;
}

TGTV static INL __m512i rq4_fp32(const __m512i acc[4], const rq4_consts *k) {
    __m512i q[4];
    if (k->small) {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            q[i] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), k->mult));
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), k->mult);
            q[i] = _mm512_cvtps_epi32(_mm512_min_ps(f, k->hi));
        }
    }
    const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), k->z16);
    const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), k->z16);
    const __m512i b = _mm512_max_epi8(_mm512_packs_epi16(w01, w23), k->lo8);
    return _mm512_permutexvar_epi32(k->tperm, _mm512_min_epi8(b, k->hi8));
}

/* One (image, channel) plane of the flat path; KH, GW, NL, SMALL are
 * constants at every call site. */
TGTV static INL void flat_plane_k(const dw_job *j, int64_t task, const int KH, const int GW,
                                  const int NL, const bool SMALL) {
    const qf_ref_conv_params *p = j->p;
    const qf_ref_requant *rq = &p->rq;
    const flat_plan *fp = j->fp;
    const int64_t c = task % p->in_c, b = task / p->in_c;
    const int8_t *wc = j->w->data + c * (int64_t)KH * GW * 4;
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    const uint32_t corr = (j->bias ? (uint32_t)j->bias[c] : 0u) - zc * (uint32_t)j->w->wsum[c];
    __m512i wv[5][2];
#pragma GCC unroll 5
    for (int ky = 0; ky < KH; ky++)
#pragma GCC unroll 2
        for (int g = 0; g < GW; g++)
            wv[ky][g] = _mm512_set1_epi32(load32(wc + (ky * GW + g) * 4));
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i base = _mm512_set1_epi32((int32_t)corr);
    const qf_ref_rescale *r = qr_mult_of(rq, c);
    const bool fp32 = rq->mode == QF_RQ_FP32, fixed_vec = r->shift >= -31;
    const rq4_consts rk = rq4_init(rq, r);
    const __m512i mq = _mm512_set1_epi32(r->mult_q), shift = _mm512_set1_epi32(r->shift);
    const int64_t n_in = (int64_t)p->in_h * p->in_w, n_out = (int64_t)p->out_h * p->out_w;
    const int8_t *plane = j->in + (b * p->in_c + c) * n_in;
    int8_t *oplane = j->out + (b * p->out_c + c) * n_out;
    __m512i whole = flip;
    if (SMALL) {
        const __mmask64 m = n_in >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n_in) - 1);
        whole = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, plane), flip);
    }
    for (int64_t grp = 0; grp < fp->ngrp; grp++) {
        const int64_t e0 = grp * 4 * KH * GW;
        __m512i acc[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            acc[v] = base;
#pragma GCC unroll 5
            for (int ky = 0; ky < KH; ky++)
#pragma GCC unroll 2
                for (int g = 0; g < GW; g++) {
                    const int64_t e = e0 + (v * KH + ky) * GW + g;
                    const __m512i idx = _mm512_load_si512(fp->idx[e]);
                    const __mmask64 k = fp->valid[e];
                    __m512i x;
                    if (SMALL) {
                        x = _mm512_mask_permutexvar_epi8(idx, k, idx, whole);
                    } else {
                        const int8_t *src = plane + fp->base[e];
                        const __m512i a = _mm512_xor_si512(_mm512_loadu_si512(src), flip);
                        if (NL == 1) {
                            x = _mm512_mask_permutexvar_epi8(idx, k, idx, a);
                        } else {
                            const __m512i a2 = _mm512_xor_si512(_mm512_loadu_si512(src + 64), flip);
                            x = _mm512_mask2_permutex2var_epi8(a, idx, k, a2);
                        }
                    }
                    acc[v] = _mm512_dpbusd_epi32(acc[v], x, wv[ky][g]);
                }
        }
        const int64_t n = n_out - grp * 64 < 64 ? n_out - grp * 64 : 64;
        int8_t *dst = oplane + grp * 64;
        if (fp32) {
            const __m512i q = rq4_fp32(acc, &rk);
            if (n == 64)
                _mm512_storeu_si512(dst, q);
            else
                _mm512_mask_storeu_epi8(dst, ((__mmask64)1 << n) - 1, q);
        } else {
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const int64_t nv = n - v * 16;
                if (nv <= 0) break;
                const __m128i q =
                    fixed_vec ? rq_fixed_vec(acc[v], mq, shift, rq) : rq_fixed(acc[v], rq, c, 0);
                const __mmask16 sm = nv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv) - 1u);
                _mm_mask_storeu_epi8(dst + v * 16, sm, q);
            }
        }
    }
}

TGTV static void flat_plane(void *ctx, int64_t task, int tid) {
    (void)tid;
    const dw_job *j = ctx;
    const flat_plan *fp = j->fp;
    if (j->p->k_h == 3) {
        if (fp->small)
            flat_plane_k(j, task, 3, 1, 1, true);
        else if (fp->nl == 1)
            flat_plane_k(j, task, 3, 1, 1, false);
        else
            flat_plane_k(j, task, 3, 1, 2, false);
    } else {
        if (fp->small)
            flat_plane_k(j, task, 5, 2, 1, true);
        else if (fp->nl == 1)
            flat_plane_k(j, task, 5, 2, 1, false);
        else
            flat_plane_k(j, task, 5, 2, 2, false);
    }
}

/* ---- wide planes, 3x3: 64-pixel row blocks with vpermi2b (AVX512_VBMI) --- */

/* Accumulators per block of the wide path: 4 rows x 4 vectors, 8 rows x 2
 * vectors for rows of at most 32 pixels, 16 rows x 1 vector for rows of at
 * most 16; with 3 weight vectors and the gather operands they still fit in
 * registers. */
#define WIDE_ACC 16

/* Blocks of R = 16 / NV output rows x 16 * NV output pixels (NV = 4, 2, 1).
 * For each input row the block touches, NREG 64-byte loads (masked
 * at the row ends: those bytes read the zero point) hold the (n - 1) * S + 3
 * bytes a block of n <= min(out_w, 16 * NV) pixels reads, flipped to u8
 * once; vector m (pixels 16m .. 16m + 15) is then one vpermb, or vpermi2b
 * where it straddles two registers, from the registers at 64 * a_m, which places
 * bytes p * S + tap of each pixel p in its 32-bit lane (a_m = 0, except 1
 * for m >= 2 at stride 2). Each gathered vector feeds every output row whose
 * window covers the input row, as in the row path, and 4 accumulators (one
 * output row, or 2 or 4 rows of narrower blocks) requantize together
 * (rq4_fp32). */
TGTV static INL void wide_plane_k(const dw_job *j, int64_t task, const int S, const int NV,
                                  const int NREG) {
    const int R = WIDE_ACC / NV;
    const int NI = (R - 1) * S + 3; /* input rows under one row block */
    const qf_ref_conv_params *p = j->p;
    const qf_ref_requant *rq = &p->rq;
    const int64_t c = task % p->in_c, b = task / p->in_c;
    const int8_t *wc = j->w->data + c * (int64_t)3 * 4;
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    const uint32_t corr = (j->bias ? (uint32_t)j->bias[c] : 0u) - zc * (uint32_t)j->w->wsum[c];
    __m512i wv[3];
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ky++)
        wv[ky] = _mm512_set1_epi32(load32(wc + ky * 4));
    __m512i idx[4];
#pragma GCC unroll 4
    for (int m = 0; m < NV; m++)
        idx[m] = _mm512_load_si512(j->widx[m]);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i zfill = _mm512_set1_epi8((char)p->in_zp);
    const __m512i xpad = _mm512_set1_epi8((char)zc);
    const __m512i base = _mm512_set1_epi32((int32_t)corr);
    const qf_ref_rescale *r = qr_mult_of(rq, c);
    const bool fp32 = rq->mode == QF_RQ_FP32, fixed_vec = r->shift >= -31;
    const rq4_consts rk = rq4_init(rq, r);
    const __m512i mq = _mm512_set1_epi32(r->mult_q), shift = _mm512_set1_epi32(r->shift);
    const int64_t in_h = p->in_h, in_w = p->in_w, out_h = p->out_h, out_w = p->out_w;
    const int8_t *plane = j->in + (b * p->in_c + c) * in_h * in_w;
    int8_t *oplane = j->out + (b * p->out_c + c) * out_h * out_w;
    for (int64_t ox0 = 0; ox0 < out_w; ox0 += 16 * NV) {
        const int64_t ix0 = ox0 * S - p->pad_left;
        __mmask64 lm[3];
#pragma GCC unroll 3
        for (int q = 0; q < NREG; q++) {
            const int64_t x0 = ix0 + 64 * q; /* column of byte 0 of load q */
            const int64_t lo_b = x0 < 0 ? -x0 : 0;
            const int64_t hi_b = in_w - x0 < 64 ? in_w - x0 : 64;
            lm[q] = 0;
            if (hi_b > lo_b) {
                const __mmask64 upto = hi_b >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << hi_b) - 1);
                lm[q] = upto & ~(((__mmask64)1 << lo_b) - 1);
            }
        }
        const int64_t n = out_w - ox0 < 16 * NV ? out_w - ox0 : 16 * NV;
        for (int64_t oy0 = 0; oy0 < out_h; oy0 += R) {
            const int64_t nr = out_h - oy0 < R ? out_h - oy0 : R;
            const int64_t iy0 = oy0 * S - p->pad_top;
            __m512i acc[16][4];
#pragma GCC unroll 16
            for (int rr = 0; rr < R; rr++)
#pragma GCC unroll 4
                for (int m = 0; m < NV; m++)
                    acc[rr][m] = base;
                    /* every loop below unrolls fully: acc stays in registers */
#pragma GCC unroll 64
            for (int i = 0; i < NI; i++) {
                const int64_t iy = iy0 + i;
                /* no branch: a row outside the image loads nothing (mask 0) and
                 * gathers zero points; masked-off bytes are never touched */
                const bool row_in = iy >= 0 && iy < in_h;
                const __mmask64 rm = row_in ? ~(__mmask64)0 : 0;
                const uintptr_t src =
                    (uintptr_t)plane + (uintptr_t)((row_in ? iy : 0) * in_w) + (uintptr_t)ix0;
                __m512i v[3] = {xpad, xpad, xpad};
#pragma GCC unroll 3
                for (int q = 0; q < NREG; q++)
                    v[q] = _mm512_xor_si512(
                        _mm512_mask_loadu_epi8(zfill, lm[q] & rm, (const void *)(src + 64 * q)),
                        flip);
#pragma GCC unroll 4
                for (int m = 0; m < NV; m++) {
                    const int a = S == 2 && m >= 2 ? 1 : 0;
                    /* one register holds every real tap of the pixels that
                     * are stored: vpermb (an index past it wraps to some
                     * byte: the d == 3 taps, weight 0, or unstored pixels) */
                    const bool one = a + 1 >= NREG || 16 * m * S + 15 * S + 2 - 64 * a < 64;
                    const __m512i x = one ? _mm512_permutexvar_epi8(idx[m], v[a])
                                          : _mm512_permutex2var_epi8(v[a], idx[m], v[a + 1]);
                    /* output row rr reads this input row as kernel row i - rr * S */
#pragma GCC unroll 16
                    for (int rr = 0; rr < R; rr++) {
                        const int ky = i - rr * S;
                        if (ky < 0 || ky >= 3) continue;
                        acc[rr][m] = _mm512_dpbusd_epi32(acc[rr][m], x, wv[ky]);
                    }
                }
            }
            if (fp32) {
                /* 4 / NV rows share one conversion; row rr + t is bytes
                 * 16 * NV * t.. of the result, stored through a mask from
                 * 16 * NV * t bytes before the row (never touched) */
                const __mmask64 mn = n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1;
#pragma GCC unroll 16
                for (int rr = 0; rr < R; rr += 4 / NV) {
                    if (rr >= nr) break;
                    __m512i a4[4];
#pragma GCC unroll 4
                    for (int t = 0; t < 4; t++)
                        a4[t] = acc[rr + t / NV][t % NV];
                    const __m512i q = rq4_fp32(a4, &rk);
                    for (int t = 0; t < 4 / NV; t++) {
                        if (rr + t >= nr) break;
                        const uintptr_t dst = (uintptr_t)(oplane + (oy0 + rr + t) * out_w + ox0);
                        _mm512_mask_storeu_epi8((void *)(dst - (uintptr_t)(16 * NV * t)),
                                                mn << (16 * NV * t), q);
                    }
                }
            } else {
#pragma GCC unroll 16
                for (int rr = 0; rr < R; rr++) {
                    if (rr >= nr) break;
                    int8_t *dst = oplane + (oy0 + rr) * out_w + ox0;
#pragma GCC unroll 4
                    for (int m = 0; m < NV; m++) {
                        const int64_t nv = n - m * 16;
                        if (nv <= 0) break;
                        const __m128i q = fixed_vec ? rq_fixed_vec(acc[rr][m], mq, shift, rq)
                                                    : rq_fixed(acc[rr][m], rq, c, 0);
                        _mm_mask_storeu_epi8(
                            dst + m * 16,
                            nv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv) - 1u), q);
                    }
                }
            }
        }
    }
}

/* One function per instance (each with its own register allocation). */
#define WIDE_INSTANCE(S, NV, NREG)                                                                 \
    TGTV static void wide_s##S##_v##NV##_r##NREG(const dw_job *j, int64_t task) {                  \
        wide_plane_k(j, task, S, NV, NREG);                                                        \
    }
WIDE_INSTANCE(1, 1, 1)
WIDE_INSTANCE(2, 1, 1)
WIDE_INSTANCE(1, 2, 1)
WIDE_INSTANCE(2, 2, 1)
WIDE_INSTANCE(2, 2, 2)
WIDE_INSTANCE(1, 4, 1)
WIDE_INSTANCE(1, 4, 2)
WIDE_INSTANCE(2, 4, 2)
WIDE_INSTANCE(2, 4, 3)

/* Vectors per row block by row width; registers per input row by the bytes
 * the widest block reads ((n - 1) * S + 3 for n pixels). */
TGTV static void wide_plane(void *ctx, int64_t task, int tid) {
    (void)tid;
    const dw_job *j = ctx;
    const int64_t ow = j->p->out_w;
    const bool s1 = j->p->stride_h == 1;
    if (ow <= 16) {
        s1 ? wide_s1_v1_r1(j, task) : wide_s2_v1_r1(j, task);
    } else if (ow <= 32) {
        if (s1)
            wide_s1_v2_r1(j, task);
        else if ((ow - 1) * 2 + 3 <= 64)
            wide_s2_v2_r1(j, task);
        else
            wide_s2_v2_r2(j, task);
    } else {
        const int64_t n = ow < 64 ? ow : 64;
        if (s1) {
            if (n - 1 + 3 <= 64)
                wide_s1_v4_r1(j, task);
            else
                wide_s1_v4_r2(j, task);
        } else {
            if ((n - 1) * 2 + 3 <= 128)
                wide_s2_v4_r2(j, task);
            else
                wide_s2_v4_r3(j, task);
        }
    }
}

/* A depthwise multiply-accumulate costs about this many of the GEMM's
 * (MobileNetV2's 7x7x960 and 14x14x384 layers run at 17-24 GMAC/s on one
 * core, the GEMM at 200): the serial threshold counts MACs at GEMM speed.
 * Those layers ran on one thread under the plain threshold and took 25-28
 * us while the other thread waited. */
#define DW_MAC_COST 8.0

/* Outputs per task at least (see qf_x86_dwconv2d_s8). */
#define DW_TASK_OUTPUTS 2048

static void dw_task(void *ctx, int64_t task, int tid) {
    const dw_job *j = ctx;
    const int64_t p0 = task * j->per_task;
    const int64_t p1 = p0 + j->per_task < j->n_planes ? p0 + j->per_task : j->n_planes;
    for (int64_t pl = p0; pl < p1; pl++)
        j->plane(ctx, pl, tid);
}

qf_status qf_x86_dw_accept_requant(qf_x86_weights *w, const qf_ref_requant *rq, qf_err *err) {
    if (!w || !rq || w->layout != QX_LAYOUT_DW)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_x86_dw_accept_requant: bad arguments");
    qf_status s = qr_check_requant(rq, w->rows, -128, 127, "qf_x86_dw_accept_requant", err);
    if (s != QF_OK) return s;
    w->rq_checked = rq->mult;
    w->n_rq_checked = rq->n_mult;
    return QF_OK;
}

/* Test hook (qx86.h): when false the flat path is never taken. */
static _Atomic bool dw_vbmi_allowed = true;
void qf_x86_dw_set_vbmi(bool allow) { dw_vbmi_allowed = allow; }

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
    qf_status s;
    if (p->rq.mult && p->rq.mult == w->rq_checked && p->rq.n_mult == w->n_rq_checked) {
        /* the multipliers were checked when w took them: the rest only */
        qf_ref_requant head = p->rq;
        head.n_mult = 0;
        s = qr_check_requant(&head, 0, -128, 127, who, err);
    } else {
        s = qr_check_requant(&p->rq, p->out_c, -128, 127, who, err);
    }
    if (s != QF_OK) return s;
    if (w->layout != QX_LAYOUT_DW || w->rows != p->out_c || w->kh != p->k_h || w->kw != p->k_w)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: packed weights do not match the layer", who);
    if ((isa != QF_ISA_AVX512VNNI && isa != QF_ISA_AVX2) || !qf_x86_isa_usable(isa))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: ISA %s not available", who, qf_isa_name(isa));
    if (isa == QF_ISA_AVX2) {
        if (qx_dwcl_avx2_takes(p))
            qx_dwcl_avx2(pool, p, in, w, bias, out); /* qx86_dwcl_avx2.c */
        else
            qx_dwconv2d_s8_avx2(pool, p, in, w, bias, out); /* qx86_dw_avx2.c */
        return QF_OK;
    }
    dw_job j = {.p = p, .w = w, .bias = bias, .in = in, .out = out};
    flat_plan fp;
    const bool vbmi = dw_vbmi_allowed && (qf_cpu_features() & QF_CPU_AVX512VBMI);
    if (vbmi && p->out_w <= FLAT_MAX_OW && flat_build(p, (uint8_t)(128 + p->in_zp), &fp)) {
        j.fp = &fp;
        j.plane = flat_plane;
    } else if (vbmi && p->k_h == 3) {
        const int S = p->stride_h;
        for (int m = 0; m < 4; m++)
            for (int l = 0; l < 16; l++)
                for (int d = 0; d < 4; d++)
                    j.widx[m][4 * l + d] =
                        (uint8_t)(16 * m * S + l * S + d - (S == 2 && m >= 2 ? 64 : 0));
        j.plane = wide_plane;
    } else {
        for (int g = 0; g < 2; g++)
            for (int l = 0; l < 4; l++)
                for (int d = 0; d < 4; d++)
                    j.rperm[g][4 * l + d] = l * p->stride_h + g + d;
        for (int k = 0; k < 64; k++)
            j.rshuf[k] = (int8_t)(k % 16 / 4 * p->stride_h + k % 4);
        j.plane = dw_plane;
    }
    /* Tasks of whole planes, at least DW_TASK_OUTPUTS outputs each: a 7x7
     * plane takes ~20 ns here, less than handing a task to another thread.
     * Layers below qf_x86_serial_macs() / DW_MAC_COST run on the caller
     * alone. */
    const int64_t planes = (int64_t)p->batch * p->in_c;
    const int64_t plane_out = (int64_t)p->out_h * p->out_w;
    j.n_planes = planes;
    j.per_task = plane_out >= DW_TASK_OUTPUTS ? 1 : (DW_TASK_OUTPUTS + plane_out - 1) / plane_out;
    if ((double)planes * (double)plane_out * p->k_h * p->k_w * DW_MAC_COST < qf_x86_serial_macs())
        pool = NULL;
    qf_parallel_for(pool, (planes + j.per_task - 1) / j.per_task, dw_task, &j);
    return QF_OK;
}

#else

void qf_x86_dw_set_vbmi(bool allow) { (void)allow; }

qf_status qf_x86_dw_accept_requant(qf_x86_weights *w, const qf_ref_requant *rq, qf_err *err) {
    (void)w;
    (void)rq;
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_dw_accept_requant: not an x86-64 build");
}

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
