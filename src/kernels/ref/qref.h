/* qref.h - portable scalar integer reference kernels of the quantized runtime.
 *
 * These functions ARE the numeric specification (DESIGN.md "Numerics"): every
 * optimized integer kernel (x86 AVX2/AVX-512, generated C) must reproduce
 * their results bit for bit in the same requantization mode. They are slow on
 * purpose and written for clarity.
 *
 * Conventions (CMSIS-NN style):
 *  - Stateless functions over const parameter structs. The caller owns every
 *    buffer (inputs, weights, bias, outputs, the multiplier arrays a params
 *    struct points to); nothing is retained after the call. No kernel
 *    allocates, prints or needs scratch memory (so there are no
 *    `_scratch_size()` twins: the weights are widened on the fly).
 *  - Kernels return QF_OK, QF_ERR_INVALID_ARG (bad parameter; message naming
 *    the function in *err when err != NULL), QF_ERR_SHAPE (operands that do
 *    not broadcast) or QF_ERR_UNSUPPORTED. On error nothing is written.
 *  - Activations are NCHW. Element types: int8 (s8) everywhere; int16 (s16)
 *    for conv and gemm (qf_ref_conv2d_s16, qf_ref_gemm_s16) and for the
 *    qf_ref_rescale_q conversion (s8 <-> s16, for moving between precisions).
 *  - Output buffers must not overlap inputs unless a function says otherwise.
 *
 * Numerics in one place:
 *  - Affine: q = clamp(round_half_even(x / s) + z, qmin, qmax); x = s * (q - z).
 *  - Weights: symmetric (z = 0), per output channel or per tensor, values in
 *    the restricted range [-(2^(b-1)-1), 2^(b-1)-1] for b bits in [2, 8],
 *    stored in a container of w_bits = 8, 4 or 2 bits (3-bit weights live in
 *    the 4-bit container, 5..7-bit ones in 8 bits). Packing: see qpack below.
 *  - Accumulation: acc = bias[c] + sum((q_x - z_x) * w) in int32. Sums wrap
 *    modulo 2^32 (two's complement, like vpaddd), so the order of the terms
 *    never matters; layers where the wrap could happen are rejected up front
 *    with qf_ref_check_accum_range and never reach a kernel.
 *  - Requantization modes (qf_ref_rq_mode), with M = real multiplier:
 *    FP32 : r = (float)acc              (int32 -> binary32, round-to-nearest-even,
 *                                        as cvtdq2ps)
 *           p = r * mult_f              (ONE binary32 multiply, RNE, as mulps)
 *           p = min(max(p, lo - z), hi - z)   (lo/hi/z integers, exact in float)
 *           q = round_half_even(p) + z  (as cvtps2dq under the default MXCSR)
 *           Clamping before rounding equals clamping after because the bounds
 *           are integers; it also keeps the float->int conversion in range.
 *           mult_f = (float)M, M computed in double (qf_ref_rescale_init).
 *           SIMD form: cvtdq2ps, mulps, maxps, minps, cvtps2dq, paddd. No
 *           kernel may use FMA or reassociate: the one multiply is all there is.
 *    FIXED: M = mult_q * 2^(shift-31), mult_q in [2^30, 2^31) (or 0);
 *           v = acc * 2^max(shift,0), saturated to int32   (exact unless saturated)
 *           v = SRDHM(v, mult_q)        gemmlowp SaturatingRoundingDoublingHighMul:
 *                                        round(v*mult_q / 2^31), ties toward +inf,
 *                                        (INT32_MIN, INT32_MIN) -> INT32_MAX
 *           v = RDBP(v, max(-shift,0))  gemmlowp RoundingDivideByPOT: round(v / 2^e),
 *                                        ties away from zero
 *           q = clamp(v + z, lo, hi)
 *           Net tie rule: an exact tie of acc*M rounds toward +inf when shift >= 0
 *           and away from zero when shift < 0; any result is floor or ceil of
 *           r = acc*mult_q*2^(shift-31), within 1/2 + 2^-(e+1) of r where
 *           e = max(-shift, 0): gemmlowp rounds twice, so for a small e the
 *           result can be one step off the correctly rounded r (e = 1: whenever
 *           r is within 1/4 of a tie). Kept for CMSIS-NN/TFLite compatibility.
 *  - Fused activations: act_min/act_max are the quantized ReLU/Clip bounds.
 */
#ifndef QF_KERNELS_REF_QREF_H
#define QF_KERNELS_REF_QREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ====================================================================== */
/* Rounding, quantize / dequantize                                         */
/* ====================================================================== */

/* Round to nearest integer, ties to even (0.5 -> 0, 1.5 -> 2, -2.5 -> -2),
 * in the default round-to-nearest floating-point environment that every
 * qforge kernel assumes (as cvtps2dq does under the default MXCSR); NaN and
 * +-inf are returned unchanged. */
float qf_ref_round_half_even_f(float x);
double qf_ref_round_half_even_d(double x);

/* q = clamp(round_half_even(x / scale) + zp, qmin, qmax) with x / scale one
 * binary32 division. NaN maps to zp. scale > 0 and finite;
 * qmin <= zp <= qmax is not required. */
int32_t qf_ref_quantize_one(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax);

/* Arrays of n elements; x and q are caller-owned. scale > 0 finite; zp within
 * the type's range. Return QF_ERR_INVALID_ARG otherwise. */
qf_status qf_ref_quantize_s8(const float *x, size_t n, float scale, int32_t zp, int8_t *q,
                             qf_err *err);
qf_status qf_ref_quantize_s16(const float *x, size_t n, float scale, int32_t zp, int16_t *q,
                              qf_err *err);
/* x = scale * (float)(q - zp): one binary32 multiply per element. */
void qf_ref_dequantize_s8(const int8_t *q, size_t n, float scale, int32_t zp, float *x);
void qf_ref_dequantize_s16(const int16_t *q, size_t n, float scale, int32_t zp, float *x);

/* ====================================================================== */
/* Requantization                                                          */
/* ====================================================================== */

typedef enum qf_ref_rq_mode {
    QF_RQ_FP32 = 0, /* float multiply + round half even (x86 default) */
    QF_RQ_FIXED = 1 /* Q31 multiplier + shift (microcontrollers, generated C) */
} qf_ref_rq_mode;

/* One real multiplier M >= 0 in both representations. */
typedef struct qf_ref_rescale {
    float mult_f;   /* FP32 mode: (float)M, M rounded once from double */
    int32_t mult_q; /* FIXED mode: Q31 mantissa in [2^30, 2^31), or 0 when M == 0 */
    int32_t shift;  /* FIXED mode: M ~= mult_q * 2^(shift - 31), in [-31, 31] */
} qf_ref_rescale;

/* gemmlowp/TFLite QuantizeMultiplier: M = frac * 2^shift with frac in
 * [0.5, 1) (frexp), m = round_half_away(frac * 2^31) (if that gives 2^31:
 * m = 2^30, shift + 1). M == 0 or M < 2^-32 (shift < -31) give m = 0,
 * shift = 0 (such M makes |acc * M| <= 1/2 for every int32 acc).
 * Returns QF_ERR_INVALID_ARG unless 0 <= M < 2^30 (NaN, infinity rejected).
 * Note the returned shift is the exponent of M: positive means left shift. */
qf_status qf_ref_quantize_multiplier(double M, int32_t *m, int *shift);

/* Fill both representations of M (mult_f = (float)M; mult_q/shift as above). */
qf_status qf_ref_rescale_init(double M, qf_ref_rescale *r);

/* Per-channel multipliers of a conv/gemm: M[c] = in_scale * w_scale[c] /
 * out_scale computed in double from the float scales (exactly in that
 * order: ((double)in_scale * (double)w_scale[c]) / (double)out_scale).
 * n >= 1 entries written to out (caller-owned). Scales > 0 finite. */
qf_status qf_ref_rescale_channels(float in_scale, const float *w_scale, int32_t n, float out_scale,
                                  qf_ref_rescale *out, qf_err *err);

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31) with ties
 * toward +inf; a == b == INT32_MIN saturates to INT32_MAX. */
int32_t qf_ref_srdhm(int32_t a, int32_t b);
/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero.
 * Exact for every exponent (computed in int64): exponents < 0 count as 0;
 * exponent 32 gives -1 for x = INT32_MIN (-1/2 rounds away) and 0 otherwise;
 * larger exponents give 0. gemmlowp itself allows [0, 31], where this agrees. */
int32_t qf_ref_rdbpot(int32_t x, int exponent);
/* v = RDBP(SRDHM(sat(x * 2^max(shift,0)), m), max(-shift,0)), no offset/clamp.
 * shift above 31 is treated as 31 (every nonzero x saturates either way),
 * below -62 as -62 (the result is 0 long before).
 * Unlike TFLite, the left shift saturates instead of overflowing (UB there):
 * when |x * M| >= 2^30 the result keeps the sign and has magnitude >= 2^30,
 * so the clamp to any activation range still gives the right answer. */
int32_t qf_ref_mul_by_qmult(int32_t x, int32_t m, int32_t shift);

/* The two requantization modes for one accumulator (see the file comment).
 * Preconditions: lo <= hi; z, lo, hi within [-2^24, 2^24] (any activation
 * type qualifies); mult_f finite and >= 0. */
int32_t qf_ref_requant_fp32(int32_t acc, float mult_f, int32_t z, int32_t lo, int32_t hi);
int32_t qf_ref_requant_fixed(int32_t acc, int32_t mult_q, int32_t shift, int32_t z, int32_t lo,
                             int32_t hi);
/* Dispatch on mode. */
int32_t qf_ref_requantize(qf_ref_rq_mode mode, int32_t acc, const qf_ref_rescale *r, int32_t z,
                          int32_t lo, int32_t hi);

/* Output stage shared by conv, gemm and matmul. */
typedef struct qf_ref_requant {
    qf_ref_rq_mode mode;
    const qf_ref_rescale *mult; /* n_mult entries, caller-owned, read during the call */
    int32_t n_mult;             /* 1: per tensor; otherwise == number of output channels */
    int32_t out_zp;             /* within the output type's range */
    int32_t act_min, act_max;   /* fused ReLU/Clip, within the output type, min <= max */
} qf_ref_requant;

/* Worst-case |accumulator| of a length-k reduction without bias: k * (2^in_bits
 * - 1) * (2^(w_bits-1) - 1) (|q_x - z_x| <= 2^in_bits - 1 for an asymmetric
 * in_bits-bit activation; restricted symmetric w_bits-bit weights). Saturates
 * at INT64_MAX; -1 when k < 0, in_bits outside [1, 16] or w_bits outside
 * [2, 16]. For matmul of two asymmetric int8 operands pass w_bits = 9
 * (2^8 - 1 = 255 = max |q_b - z_b|). */
int64_t qf_ref_accum_bound(int64_t k, int in_bits, int w_bits);

/* QF_OK when a reduction of length k can NOT overflow int32 (bound <=
 * INT32_MAX), QF_ERR_UNSUPPORTED when it can (the quantizer rejects the
 * layer), QF_ERR_INVALID_ARG for bad arguments. The bias is not included:
 * callers with a bias check qf_ref_accum_bound(...) + max|bias| themselves. */
qf_status qf_ref_check_accum_range(int64_t k, int in_bits, int w_bits);

/* Activation element types for qf_ref_rescale_q. */
typedef enum qf_ref_qtype { QF_REF_S8 = 8, QF_REF_S16 = 16 } qf_ref_qtype;

/* Requantize n activations between (in_scale, in_zp, in_type) and
 * (out_scale, out_zp, out_type): q_out = requantize(mode, q_in - in_zp,
 * M = in_scale / out_scale (double), out_zp, type min, type max). Identical
 * types, scales and zero points give a plain copy (which the formula also
 * yields). in/out caller-owned; in == out allowed only for equal types. */
qf_status qf_ref_rescale_q(qf_ref_rq_mode mode, const void *in, qf_ref_qtype in_type,
                           float in_scale, int32_t in_zp, void *out, qf_ref_qtype out_type,
                           float out_scale, int32_t out_zp, size_t n, qf_err *err);

/* ====================================================================== */
/* Packed sub-8-bit weights (qpack.c)                                      */
/* ====================================================================== */
/* Weights are rows (one per output channel) of `cols` signed values.
 * bits = 8: one int8 per byte. bits = 4: two per byte, element 2i in bits 0-3
 * (LOW nibble first) and 2i+1 in bits 4-7. bits = 2: four per byte, element 4i
 * in bits 0-1, 4i+1 in bits 2-3, 4i+2 in 4-5, 4i+3 in 6-7. Two's complement,
 * sign-extended when widened. Each row starts on a byte boundary (padding
 * bits are zero), so the row stride is qf_ref_packed_row_bytes(cols, bits). */

/* Bytes per packed row: ceil(cols * bits / 8); 0 for bad bits or cols < 0. */
size_t qf_ref_packed_row_bytes(int64_t cols, int bits);
/* Pack rows x cols int8 values (which must be in the restricted range of the
 * container, [-(2^(bits-1)-1), 2^(bits-1)-1], else QF_ERR_INVALID_ARG).
 * dst holds rows * qf_ref_packed_row_bytes(cols, bits) bytes. */
qf_status qf_ref_pack_weights(const int8_t *src, int64_t rows, int64_t cols, int bits, uint8_t *dst,
                              qf_err *err);
/* Inverse of qf_ref_pack_weights; dst holds rows * cols int8. */
qf_status qf_ref_unpack_weights(const uint8_t *src, int64_t rows, int64_t cols, int bits,
                                int8_t *dst, qf_err *err);
/* Element idx (>= 0) of one packed row, sign-extended. bits in {8, 4, 2}. */
static inline int32_t qf_ref_weight_get(const uint8_t *row, int64_t idx, int bits) {
    if (bits == 8) return (int8_t)row[idx];
    if (bits == 4) {
        int32_t v = (row[idx >> 1] >> ((idx & 1) * 4)) & 0xF;
        return v >= 8 ? v - 16 : v;
    }
    int32_t v = (row[idx >> 2] >> ((idx & 3) * 2)) & 0x3;
    return v >= 2 ? v - 4 : v;
}

/* ====================================================================== */
/* Convolution (qconv_s8.c)                                                */
/* ====================================================================== */

/* Output extent of one spatial axis: floor((in + pad_begin + pad_end -
 * dil * (k - 1) - 1) / stride) + 1, or -1 when the arguments are invalid
 * (in/k/stride/dil < 1, pads < 0) or the window does not fit. */
int32_t qf_ref_conv_out_size(int32_t in, int32_t k, int32_t stride, int32_t dil, int32_t pad_begin,
                             int32_t pad_end);

/* 2-D convolution, NCHW, grouped (groups == in_c == out_c is depthwise;
 * out_c = in_c * multiplier with groups == in_c is a depthwise multiplier).
 * Input [batch][in_c][in_h][in_w], output [batch][out_c][out_h][out_w].
 * Weights: out_c packed rows of K = (in_c/groups) * k_h * k_w elements in
 * [ic][kh][kw] order (ONNX layout), row stride qf_ref_packed_row_bytes(K, w_bits).
 * Bias: out_c int32 (scale in_scale * w_scale[c], zero point 0) or NULL.
 * Padded taps read in_zp, i.e. contribute 0 to the sum.
 * acc(c) = bias[c] + sum over taps (q_x - in_zp) * w, then the requant stage
 * with multiplier rq.mult[n_mult == 1 ? 0 : c]. */
typedef struct qf_ref_conv_params {
    int32_t batch;               /* >= 1 */
    int32_t in_c, in_h, in_w;    /* >= 1 */
    int32_t out_c, out_h, out_w; /* out_h/out_w must equal qf_ref_conv_out_size(...) */
    int32_t k_h, k_w;            /* >= 1 */
    int32_t stride_h, stride_w;  /* >= 1 */
    int32_t dil_h, dil_w;        /* >= 1 */
    int32_t pad_top, pad_left, pad_bottom, pad_right; /* >= 0 */
    int32_t groups;                                   /* >= 1, divides in_c and out_c */
    int32_t in_zp;                                    /* s8: [-128, 127]; s16: [-32768, 32767] */
    int32_t w_bits;                                   /* weight container: 8, 4 or 2 */
    qf_ref_requant rq;                                /* n_mult 1 or out_c */
    /* Asymmetric weights: out_c zero points (within the container's signed
     * range), acc = bias + sum (q_x - in_zp) * (w - w_zp[c]). NULL: all 0,
     * the symmetric default (DESIGN.md); fast kernels handle only that. */
    const int32_t *w_zp;
} qf_ref_conv_params;

qf_status qf_ref_conv2d_s8(const qf_ref_conv_params *p, const int8_t *in, const uint8_t *w,
                           const int32_t *bias, int8_t *out, qf_err *err);
/* int16 activations (input and output), same weights and bias. */
qf_status qf_ref_conv2d_s16(const qf_ref_conv_params *p, const int16_t *in, const uint8_t *w,
                            const int32_t *bias, int16_t *out, qf_err *err);

/* ====================================================================== */
/* Fully connected and matmul (qgemm_s8.c)                                 */
/* ====================================================================== */

/* y[m][n] = requant(bias[n] + sum_k (x[m][k] - in_zp) * W[n][k]) : y = x W^T + b.
 * x: [m][k]; W: n packed rows of k elements; bias: n int32 or NULL;
 * y: [m][n]; multiplier rq.mult[n_mult == 1 ? 0 : n]. */
typedef struct qf_ref_gemm_params {
    int32_t m, n, k;   /* >= 1 */
    int32_t in_zp;     /* within the input type */
    int32_t w_bits;    /* 8, 4 or 2 */
    qf_ref_requant rq; /* n_mult 1 or n */
    const int32_t *w_zp; /* n weight zero points (asymmetric weights) or NULL */
} qf_ref_gemm_params;

qf_status qf_ref_gemm_s8(const qf_ref_gemm_params *p, const int8_t *x, const uint8_t *w,
                         const int32_t *bias, int8_t *y, qf_err *err);
qf_status qf_ref_gemm_s16(const qf_ref_gemm_params *p, const int16_t *x, const uint8_t *w,
                          const int32_t *bias, int16_t *y, qf_err *err);

/* QLinearMatMul-style: out[b][i][j] = requant(sum_k (A[b][i][k] - a_zp) *
 * (B[b'][k][j] - b_zp)), no bias. A: [batch][m][k]; B: [batch][k][n] or
 * [1][k][n] (b_batched == 0: shared by every batch); out: [batch][m][n].
 * Multiplier M = a_scale * b_scale[j] / out_scale; rq.n_mult 1 or n (per
 * column of B). Use qf_ref_check_accum_range(k, 8, 9) to validate k. */
typedef struct qf_ref_matmul_params {
    int32_t batch, m, k, n; /* >= 1 */
    int32_t b_batched;      /* 0 or 1 */
    int32_t a_zp, b_zp;     /* [-128, 127] */
    qf_ref_requant rq;
} qf_ref_matmul_params;

qf_status qf_ref_matmul_s8(const qf_ref_matmul_params *p, const int8_t *a, const int8_t *b,
                           int8_t *out, qf_err *err);

/* ====================================================================== */
/* Element-wise binary ops with numpy broadcasting (qadd_s8.c, qmul_s8.c)  */
/* ====================================================================== */

/* Shapes are given at a common rank (right-align and pad with 1s); every
 * a_dims[i] and b_dims[i] is 1 or out_dims[i] (both operands may broadcast).
 * rank 0 means scalars. a, b, out are caller-owned; out may alias a or b when
 * that operand has the output's shape. */
typedef struct qf_ref_eltwise_params {
    int32_t rank;                  /* 0..QF_MAX_DIMS */
    int64_t out_dims[QF_MAX_DIMS]; /* >= 0 */
    int64_t a_dims[QF_MAX_DIMS];
    int64_t b_dims[QF_MAX_DIMS];
    float a_scale, b_scale, out_scale; /* > 0 finite */
    int32_t a_zp, b_zp, out_zp;        /* [-128, 127] */
    int32_t act_min, act_max;          /* fused ReLU/Clip in [-128, 127] */
    qf_ref_rq_mode mode;
} qf_ref_eltwise_params;

/* Add, TFLite style. Derived constants (qf_ref_add_prepare):
 *  FP32 : fa = (float)(qa - za) * a_mult_f;  fb = (float)(qb - zb) * b_mult_f;
 *         s = fa + fb  (two binary32 multiplies and one add, never fused into
 *         an FMA); q = clamp(round_half_even(s) + z_out) as in FP32 requant,
 *         with a_mult_f = (float)((double)s_a / s_out), likewise b.
 *  FIXED: left_shift = 20; twice_max = 2 * max(s_a, s_b) (double);
 *         a_mult = s_a / twice_max, b_mult = s_b / twice_max,
 *         out_mult = twice_max / (2^20 * s_out), each via qf_ref_rescale_init;
 *         xa = (qa - za) * 2^20; sa = qf_ref_mul_by_qmult(xa, a_mult); likewise
 *         sb; q = qf_ref_requant_fixed(sa + sb, out_mult, z_out, min, max). */
typedef struct qf_ref_add_derived {
    float a_mult_f, b_mult_f;
    qf_ref_rescale a_mult, b_mult, out_mult;
    int32_t left_shift;
} qf_ref_add_derived;
qf_status qf_ref_add_prepare(const qf_ref_eltwise_params *p, qf_ref_add_derived *d, qf_err *err);
qf_status qf_ref_add_s8(const qf_ref_eltwise_params *p, const int8_t *a, const int8_t *b,
                        int8_t *out, qf_err *err);

/* Mul: acc = (qa - za) * (qb - zb) (exact in int32), then the requant of the
 * mode with M = ((double)s_a * s_b) / s_out (qf_ref_mul_prepare). */
qf_status qf_ref_mul_prepare(const qf_ref_eltwise_params *p, qf_ref_rescale *out_mult, qf_err *err);
qf_status qf_ref_mul_s8(const qf_ref_eltwise_params *p, const int8_t *a, const int8_t *b,
                        int8_t *out, qf_err *err);

/* ====================================================================== */
/* Pooling (qpool_s8.c)                                                    */
/* ====================================================================== */

/* Input [batch][channels][in_h][in_w], output [batch][channels][out_h][out_w].
 * out_h/out_w are the caller's (floor or ceil mode); each window starts at
 * o * stride - pad_begin and its taps are i0 + t * dil, t < k. Taps outside
 * the input are skipped.
 *  max pool : q = clamp(max of the valid taps, act_min, act_max); the output
 *             keeps the input's scale and zero point (scales/zps unused);
 *             a window without a valid tap gives act_min.
 *  avg pool : sum = sum of (q - in_zp) over valid taps; count = number of
 *             valid taps, or with count_include_pad the number of taps inside
 *             the padded extent [-pad_begin, in + pad_end) (PyTorch/ONNX);
 *             q = requantize(mode, sum, qf_ref_avgpool_rescale(count), out_zp,
 *             act_min, act_max). A window with count 0 gives out_zp clamped.
 *  global avg pool: k = (in_h, in_w), no padding, count = in_h * in_w
 *             (stride/dil/pad/out fields ignored). */
typedef struct qf_ref_pool_params {
    int32_t batch, channels;                          /* >= 1 */
    int32_t in_h, in_w;                               /* >= 1 */
    int32_t out_h, out_w;                             /* >= 1 */
    int32_t k_h, k_w;                                 /* >= 1 */
    int32_t stride_h, stride_w;                       /* >= 1 */
    int32_t dil_h, dil_w;                             /* >= 1 */
    int32_t pad_top, pad_left, pad_bottom, pad_right; /* >= 0 */
    int32_t count_include_pad;                        /* avg pool: 0 or 1 */
    float in_scale, out_scale;                        /* avg pools: > 0 finite */
    int32_t in_zp, out_zp;                            /* [-128, 127] */
    int32_t act_min, act_max;                         /* [-128, 127] */
    qf_ref_rq_mode mode;                              /* avg pools */
} qf_ref_pool_params;

/* Multiplier for an average over `count` taps: M = (double)in_scale /
 * ((double)out_scale * count), via qf_ref_rescale_init. count >= 1. */
qf_status qf_ref_avgpool_rescale(float in_scale, float out_scale, int64_t count, qf_ref_rescale *r);

qf_status qf_ref_maxpool_s8(const qf_ref_pool_params *p, const int8_t *in, int8_t *out,
                            qf_err *err);
qf_status qf_ref_avgpool_s8(const qf_ref_pool_params *p, const int8_t *in, int8_t *out,
                            qf_err *err);
/* out: [batch][channels] (i.e. [N][C][1][1]). */
qf_status qf_ref_global_avgpool_s8(const qf_ref_pool_params *p, const int8_t *in, int8_t *out,
                                   qf_err *err);

/* ====================================================================== */
/* Concat (qconcat_s8.c)                                                   */
/* ====================================================================== */

/* Concatenation along one axis, described by outer = product of the dims
 * before the axis and inner = product of the dims after it (the same for
 * every input). Input i is [outer][axis_dim_i][inner]; the output is
 * [outer][sum axis_dim_i][inner]. An input whose scale and zero point equal
 * the output's is copied; any other is requantized element-wise with
 * qf_ref_requantize(mode, q - zp_i, M = (double)scale_i / out_scale, out_zp,
 * -128, 127). (For equal parameters the formula gives the copy too.) */
typedef struct qf_ref_concat_input {
    const int8_t *data; /* caller-owned, not aliasing the output */
    int64_t axis_dim;   /* >= 0 */
    float scale;        /* > 0 finite */
    int32_t zp;         /* [-128, 127] */
} qf_ref_concat_input;

typedef struct qf_ref_concat_params {
    int32_t n_inputs;                  /* >= 1 */
    const qf_ref_concat_input *inputs; /* n_inputs entries, caller-owned */
    int64_t outer, inner;              /* >= 0 */
    float out_scale;
    int32_t out_zp;
    qf_ref_rq_mode mode;
} qf_ref_concat_params;

qf_status qf_ref_concat_s8(const qf_ref_concat_params *p, int8_t *out, qf_err *err);

/* ====================================================================== */
/* Resize (qresize_s8.c)                                                   */
/* ====================================================================== */

typedef enum qf_ref_resize_mode { QF_RESIZE_NEAREST = 0, QF_RESIZE_LINEAR = 1 } qf_ref_resize_mode;
typedef enum qf_ref_resize_coord {
    QF_COORD_HALF_PIXEL = 0,         /* (o + 0.5) / scale - 0.5 (ONNX default) */
    QF_COORD_PYTORCH_HALF_PIXEL = 1, /* as half_pixel, 0 when out == 1 */
    QF_COORD_ALIGN_CORNERS = 2,      /* o * (in - 1) / (out - 1), 0 when out == 1 */
    QF_COORD_ASYMMETRIC = 3          /* o / scale */
} qf_ref_resize_coord;
typedef enum qf_ref_resize_nearest {
    QF_NEAREST_ROUND_PREFER_FLOOR = 0, /* ONNX default */
    QF_NEAREST_ROUND_PREFER_CEIL = 1,
    QF_NEAREST_FLOOR = 2,
    QF_NEAREST_CEIL = 3
} qf_ref_resize_nearest;

/* Resize of the two spatial axes of [batch][channels][in_h][in_w] to
 * [..][out_h][out_w]. Output has the input's scale and zero point.
 * Source coordinate per axis (double arithmetic, qf_ref_resize_src_coord),
 * scale = scale_h/scale_w when > 0 (ONNX `scales`) else out/in.
 *  nearest: index = nearest_mode(src) clamped to [0, in - 1]; a copy.
 *  linear : src clamped to [0, in - 1]; i0 = floor(src), i1 = min(i0 + 1,
 *           in - 1); w1 = floor((src - i0) * 2048 + 0.5) (Q11), w0 = 2048 - w1;
 *           v = sum over the 2x2 taps of wy * wx * q (exact int32);
 *           q_out = floor((v + 2^21) / 2^22), i.e. round half toward +inf.
 *           Working on q directly is exact in real terms because the weights
 *           sum to 2^22 (z cancels), so no requantization happens. */
typedef struct qf_ref_resize_params {
    int32_t batch, channels; /* >= 1 */
    int32_t in_h, in_w;      /* >= 1 */
    int32_t out_h, out_w;    /* >= 1 */
    double scale_h, scale_w; /* ONNX scales, or <= 0 to use out / in */
    qf_ref_resize_mode mode;
    qf_ref_resize_coord coord;
    qf_ref_resize_nearest nearest;
} qf_ref_resize_params;

/* Source coordinate of output index o on an axis (in, out >= 1). */
double qf_ref_resize_src_coord(qf_ref_resize_coord coord, int32_t o, int32_t in, int32_t out,
                               double scale);
/* Linear taps of output index o: *i0, *i1 in [0, in - 1], *w1 in [0, 2048]. */
void qf_ref_resize_linear_taps(qf_ref_resize_coord coord, int32_t o, int32_t in, int32_t out,
                               double scale, int32_t *i0, int32_t *i1, int32_t *w1);
/* Nearest source index of output index o, in [0, in - 1]. */
int32_t qf_ref_resize_nearest_index(qf_ref_resize_coord coord, qf_ref_resize_nearest nm, int32_t o,
                                    int32_t in, int32_t out, double scale);

qf_status qf_ref_resize_s8(const qf_ref_resize_params *p, const int8_t *in, int8_t *out,
                           qf_err *err);

/* ====================================================================== */
/* Pad (qpad_s8.c)                                                         */
/* ====================================================================== */

typedef enum qf_ref_pad_mode {
    QF_PAD_CONSTANT = 0, /* value: normally the input zero point (real 0) */
    QF_PAD_EDGE = 1,     /* repeat the border element */
    QF_PAD_REFLECT = 2   /* mirror without repeating the border (numpy 'reflect') */
} qf_ref_pad_mode;

/* out_dim[i] = in_dims[i] + pad_begin[i] + pad_end[i] (>= 0). Negative pads
 * crop (ONNX). Output index o reads input index o - pad_begin[i]; outside
 * [0, in) it is the constant, the clamped index (edge) or the mirrored index
 * (reflect, period 2 * (in - 1), so pads wider than in - 1 reflect again; an
 * axis of extent 1 repeats its element). Edge/reflect need in_dims[i] >= 1 on
 * every axis that produces output. */
typedef struct qf_ref_pad_params {
    int32_t rank;                 /* 1..QF_MAX_DIMS */
    int64_t in_dims[QF_MAX_DIMS]; /* >= 0 */
    int64_t pad_begin[QF_MAX_DIMS];
    int64_t pad_end[QF_MAX_DIMS];
    qf_ref_pad_mode mode;
    int32_t value; /* constant mode, [-128, 127] */
} qf_ref_pad_params;

qf_status qf_ref_pad_s8(const qf_ref_pad_params *p, const int8_t *in, int8_t *out, qf_err *err);

/* ====================================================================== */
/* 256-entry lookup table for element-wise activations (qlut_s8.c)         */
/* ====================================================================== */

/* table[q + 128] = quantize_one(f(in_scale * (float)(q - in_zp)), out_scale,
 * out_zp, -128, 127) for q in [-128, 127]: one binary32 multiply for the
 * input, f as given (a float function: the table is data afterwards, so
 * optimized kernels reproduce the op by using the same table), NaN -> out_zp.
 * f must not be NULL; scales > 0 finite; zps in [-128, 127]. */
qf_status qf_ref_lut_build(float (*f)(float), float in_scale, int32_t in_zp, float out_scale,
                           int32_t out_zp, int8_t table[256]);
/* out[i] = table[in[i] + 128]; in == out allowed. */
void qf_ref_lut_apply(const int8_t table[256], const int8_t *in, int8_t *out, size_t n);

#endif /* QF_KERNELS_REF_QREF_H */
