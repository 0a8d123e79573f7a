/* qx86_ew.h - x86 (AVX2, AVX-512) kernels for the memory-bound int8 ops of
 * the quantized runtime: QAdd of two same-shape tensors (FP32 requant),
 * QMaxPool, QGlobalAveragePool, and the float <-> int8/uint8 conversions of
 * QuantizeLinear / DequantizeLinear.
 *
 * Each kernel reproduces its specification bit for bit:
 *  - add: qf_ref_add_s8 in FP32 mode (two binary32 multiplies, one add,
 *    clamp, round half even: cvtdq2ps, mulps, addps, maxps, minps, cvtps2dq);
 *  - max pool: qf_ref_maxpool_s8 (max of the valid taps, clamped; a window
 *    with no valid tap gives act_min, which a -128 identity also yields);
 *  - global average pool: qf_ref_global_avgpool_s8 (exact int32 sum, then
 *    the reference requantization, once per plane);
 *  - quantize: ONNX QuantizeLinear as quantize_linear.c computes it (one
 *    binary32 division, round to nearest even, + zero point in float, clamp,
 *    NaN -> zero point); dequantize: (float)(q - z) * scale.
 * isa QF_ISA_SCALAR runs the reference (or the same scalar formula), so
 * every QF_ISA gives the same bytes. Work is split over pool (may be NULL)
 * only when a call is large enough to pay for the hand-off; each output
 * element is computed by one task with the same arithmetic, so results do
 * not depend on the thread count. Nothing here allocates. */
#ifndef QF_KERNELS_X86_QX86_EW_H
#define QF_KERNELS_X86_QX86_EW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "kernels/dispatch.h"
#include "kernels/ref/qref.h"

/* True when p is the case qf_x86_add_s8 handles: FP32 mode and a, b and
 * out of one shape (no broadcasting). */
bool qf_x86_add_s8_supported(const qf_ref_eltwise_params *p);
/* As qf_ref_add_s8 for supported p; out may alias a or b. */
qf_status qf_x86_add_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_eltwise_params *p,
                        const int8_t *a, const int8_t *b, int8_t *out, qf_err *err);

/* Concatenation of int8 tensors along one axis, each input requantized by
 * its 256-entry table (y = lut[i][(uint8_t)q];
 * NULL: a plain copy): for o < outer, input i's block o (block[i] bytes at
 * src[i] + o * block[i]) goes to dst + o * out_block + at_i, where at_i is
 * the sum of the blocks before i. n_in <= 64. */
typedef struct qx_concat {
    int n_in;
    const int8_t *const *src;
    const int8_t *const *lut;
    const int64_t *block;
    int64_t outer, out_block;
    int8_t *dst;
} qx_concat;
/* Splits the copy over pool in chunks; with AVX-512 VBMI (isa avx512vnni)
 * a table lookup is two vpermi2b and a blend per 64 bytes, else a scalar
 * loop. Same bytes on every path. */
void qf_x86_concat_s8(qf_threadpool *pool, qf_isa isa, const qx_concat *c);
/* y[i] = lut[(uint8_t)x[i]], i < n; the VBMI row kernel (NULL when the CPU
 * or the build lacks it: then use the scalar loop). */
typedef void (*qx_lut_fn)(const int8_t *lut, const int8_t *x, int8_t *y, size_t n);
qx_lut_fn qx_ew_lut_vbmi(void);

/* Table lookup of x as [outer, channels, inner] int8 elements: element
 * (o, c, i) becomes lut[c * 256 + (uint8_t)x] (qforge.QLut; channels 1: one
 * table). The VBMI row kernel with isa avx512vnni where the CPU has VBMI,
 * else a scalar loop; split over pool in chunks when large. y may alias x. */
void qf_x86_lut_s8(qf_threadpool *pool, qf_isa isa, const int8_t *lut, int64_t channels,
                   int64_t outer, int64_t inner, const int8_t *x, int8_t *y);

/* True when the row buffer of the max pool fits (padded width <= 8000). */
bool qf_x86_maxpool_s8_supported(const qf_ref_pool_params *p);
qf_status qf_x86_maxpool_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_pool_params *p,
                            const int8_t *in, int8_t *out, qf_err *err);
qf_status qf_x86_global_avgpool_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_pool_params *p,
                                   const int8_t *in, int8_t *out, qf_err *err);

/* y[i] = clamp(nearbyintf(x[i] / scale) + zp, qmin, qmax) (NaN -> zp), stored
 * as uint8 when is_u8 else int8; qmin/qmax the type's range, scale > 0. */
void qf_x86_quantize_f32_8(qf_threadpool *pool, qf_isa isa, const float *x, size_t n, float scale,
                           float zp, bool is_u8, void *y);
/* x[i] = (float)(q[i] - zp) * scale, q uint8 when is_u8 else int8. */
void qf_x86_dequantize_8_f32(qf_threadpool *pool, qf_isa isa, const void *q, bool is_u8, size_t n,
                             float scale, int32_t zp, float *x);

/* ---- row kernels (internal: qx86_ew_avx2.c, qx86_ew_avx512.c) ----------- */

/* FP32 add constants (qf_ref_add_prepare), lo/hi = act_min/max - out_zp. */
typedef struct qx_add_consts {
    int32_t a_zp, b_zp, out_zp;
    float a_mult, b_mult, lo, hi;
} qx_add_consts;

/* The FP32 add's constants for p (qf_x86_add_s8_supported; checks the
 * multipliers, clamp and zero point). */
qf_status qf_x86_add_consts(const qf_ref_eltwise_params *p, qx_add_consts *c, qf_err *err);

/* Window geometry of one max-pool output row over a row buffer `t` in which
 * tap kx of output ox sits at t[ox * stride + kx * dil]; the buffer has at
 * least QX_POOL_SLACK readable bytes past its last tap. */
#define QX_POOL_SLACK 128
typedef struct qx_ew_kernels {
    void (*add)(const int8_t *a, const int8_t *b, int8_t *out, size_t n, const qx_add_consts *c);
    /* dst[i] = max over rows r of rows[r][i], i < n; n_rows >= 1 */
    void (*vmax)(const int8_t *const *rows, int n_rows, size_t n, int8_t *dst);
    /* out[ox] = clamp(max_kx t[ox * stride + kx * dil], lo, hi), stride 1 or 2 */
    void (*hmax)(const int8_t *t, int32_t out_w, int32_t stride, int32_t k_w, int32_t dil,
                 int32_t lo, int32_t hi, int8_t *out);
    /* 2x2 stride-2 max pool of one plane without padding: out[oy][ox] = clamp(max of in[2oy +
     * dy][2ox + dx], lo, hi) for rows of in_w >= 2 * out_w bytes and in_h >= 2 * out_h */
    void (*pool2)(const int8_t *in, int32_t in_w, int32_t out_h, int32_t out_w, int32_t lo,
                  int32_t hi, int8_t *out);
    /* 3x3 stride-2 (dilation 1) max pool of one in_h x in_w plane with pad_top, pad_left <= 2:
     * out[oy][ox] = clamp(max of the in[2oy - pad_top + dy][2ox - pad_left + dx] inside the
     * plane, else -128, lo, hi); rows and columns past the plane count as padding */
    void (*pool3s2)(const int8_t *in, int32_t in_h, int32_t in_w, int32_t pad_top, int32_t pad_left,
                    int32_t out_h, int32_t out_w, int32_t lo, int32_t hi, int8_t *out);
    /* sum of (x[i] + 128) as an exact 64-bit integer */
    int64_t (*sum_biased)(const int8_t *x, size_t n);
    void (*quant)(const float *x, size_t n, float scale, float zp, bool is_u8, void *y);
    void (*dequant)(const void *q, bool is_u8, size_t n, float scale, int32_t zp, float *x);
} qx_ew_kernels;

/* NULL when not compiled in. */
const qx_ew_kernels *qx_ew_kernels_avx2(void);
const qx_ew_kernels *qx_ew_kernels_avx512(void);

/* Scalar forms shared by the tails of the vector kernels. */
static inline int8_t qx_add_one(int32_t qa, int32_t qb, const qx_add_consts *c) {
    /* exact double products rounded once (= a binary32 multiply) leave no
     * a*b+c for -ffp-contract to fuse, as in qadd_s8.c */
    float fa = (float)((double)(qa - c->a_zp) * (double)c->a_mult);
    float fb = (float)((double)(qb - c->b_zp) * (double)c->b_mult);
    float s = fa + fb;
    if (s < c->lo) s = c->lo;
    if (s > c->hi) s = c->hi;
    return (int8_t)((int32_t)qf_ref_round_half_even_f(s) + c->out_zp);
}

/* quantize_linear.c's quantize_val with x / scale done by the caller. */
static inline int32_t qx_quant_one(float v, float zp, int32_t qmin, int32_t qmax) {
    float r = qf_ref_round_half_even_f(v) + zp;
    if (r != r) return (int32_t)zp;
    if (r < (float)qmin) return qmin;
    if (r > (float)qmax) return qmax;
    return (int32_t)r;
}

#endif /* QF_KERNELS_X86_QX86_EW_H */
