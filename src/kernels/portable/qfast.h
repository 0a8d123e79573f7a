/* qfast.h - portable fast int8 convolution and fully connected kernels.
 *
 * Plain C that compilers auto-vectorize at -O2 (no intrinsics). Results are
 * bit-identical to the reference kernels of kernels/ref/qref.h
 * (qf_ref_conv2d_s8, qf_ref_gemm_s8) in both requantization modes: the
 * accumulator is the same sum modulo 2^32 (computed in uint32, so there is
 * no signed overflow), and every output goes through qf_ref_requantize with
 * the reference's parameters.
 *
 * How (details in the .c files):
 *  - weights are widened once (qf_fast_widen_weights) into int8 rows of
 *    kp = round_up(K, QF_FAST_KBLOCK) values, zero padded;
 *  - the input is repacked per band of output pixels into int16 rows of kp
 *    values, (q_x - in_zp) per tap and 0 for padded taps (im2row; a plain
 *    transpose for 1x1 stride-1 convolutions and for gemm inputs);
 *  - a register-blocked dot-product kernel (2 channels x 4 pixels) reduces
 *    each row pair over kp; since kp is a multiple of QF_FAST_KBLOCK the
 *    compiler can vectorize the reduction without a scalar tail (pmaddwd on
 *    x86 SSE2);
 *  - depthwise convolutions (one input channel per group) run a direct loop
 *    over a zero-padded int16 copy of a band of input rows, no im2row.
 *
 * Buffers: caller-owned, CMSIS-NN style. A kernel never allocates; its
 * scratch buffer (any alignment) holds at least the bytes its
 * _scratch_size twin reports for the same parameters. Only int8 activations
 * have a fast path; int16 ones use the reference kernels.
 */
#ifndef QF_KERNELS_PORTABLE_QFAST_H
#define QF_KERNELS_PORTABLE_QFAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/ref/qref.h"

/* Reduction block: widened rows are padded to a multiple of this. */
#define QF_FAST_KBLOCK 16

/* Largest scratch a fast kernel asks for. Shapes that would need more (a
 * single band of 4 pixels with an enormous reduction, an absurdly wide
 * depthwise row) report 0 from the _scratch_size functions: the caller then
 * uses the reference kernel. */
#define QF_FAST_SCRATCH_MAX ((size_t)8 << 20)

/* Weights widened for the fast kernels: `rows` rows of `k` values, row
 * stride `kp` (a multiple of QF_FAST_KBLOCK, >= k), zeros in [k, kp).
 * data is owned by whoever filled it (the op keeps it in the graph arena).
 * zp: the rows' zero points (asymmetric weights: the kernels compute with
 * w - zp[row]), NULL for symmetric weights; the kernels read these, not the
 * parameters' w_zp (an op that folded the zero points into data passes
 * NULL). With zero points, the general and gemm kernels subtract
 * zp[row] * sum(q_x - in_zp) over each output's taps, and the depthwise
 * kernel multiplies by w - zp directly. */
typedef struct qf_fast_weights {
    const int8_t *data;
    const int32_t *zp;
    int32_t rows; /* >= 1 */
    int32_t k;    /* >= 1 */
    int32_t kp;   /* round_up(k, QF_FAST_KBLOCK) */
} qf_fast_weights;

/* Row stride of the widened layout: round_up(k, QF_FAST_KBLOCK), or 0 when
 * k < 1 or the result would exceed INT32_MAX. */
int32_t qf_fast_row_stride(int64_t k);

/* Bytes of widened weights for rows x k (rows * kp), 0 when invalid or when
 * the size overflows. */
size_t qf_fast_weights_bytes(int64_t rows, int64_t k);

/* Widen rows x k packed weights (qref.h layout, container `bits` 8, 4 or 2)
 * into dst (qf_fast_weights_bytes(rows, k) bytes, caller-owned) and describe
 * them in *out (out->data = dst, out->zp = NULL: set it for asymmetric
 * weights). QF_ERR_INVALID_ARG for bad arguments. */
qf_status qf_fast_widen_weights(const uint8_t *packed, int64_t rows, int64_t k, int bits,
                                int8_t *dst, qf_fast_weights *out, qf_err *err);

/* True when rows of k 8-bit weights stored plainly (qref.h layout) already
 * are the widened layout (k is a multiple of QF_FAST_KBLOCK), so the stored
 * tensor can be used in place without a copy. */
static inline bool qf_fast_weights_in_place(int64_t k, int bits) {
    return bits == 8 && k >= 1 && k % QF_FAST_KBLOCK == 0;
}

/* ---- convolution (qconv_fast_s8.c) ------------------------------------- */

/* Scratch bytes qf_fast_conv2d_s8 needs for p (geometry as in qref.h); 0 when
 * the parameters are invalid or the fast path would need more than
 * QF_FAST_SCRATCH_MAX (use qf_ref_conv2d_s8 then). */
size_t qf_fast_conv2d_s8_scratch_size(const qf_ref_conv_params *p);

/* Same contract and results as qf_ref_conv2d_s8, with the weights widened:
 * w->rows == p->out_c, w->k == (in_c / groups) * k_h * k_w (p->w_bits and
 * p->w_zp are ignored: w->zp holds the zero points). scratch holds scratch_bytes >=
 * qf_fast_conv2d_s8_scratch_size(p) bytes. QF_ERR_INVALID_ARG for bad parameters or too small a
 * scratch. */
qf_status qf_fast_conv2d_s8(const qf_ref_conv_params *p, const int8_t *in, const qf_fast_weights *w,
                            const int32_t *bias, int8_t *out, void *scratch, size_t scratch_bytes,
                            qf_err *err);

/* ---- fully connected (qgemm_fast_s8.c) --------------------------------- */

/* Scratch bytes qf_fast_gemm_s8 needs for p; 0 as above. */
size_t qf_fast_gemm_s8_scratch_size(const qf_ref_gemm_params *p);

/* Same contract and results as qf_ref_gemm_s8: w->rows == p->n,
 * w->k == p->k (p->w_bits and p->w_zp are ignored, as above). */
qf_status qf_fast_gemm_s8(const qf_ref_gemm_params *p, const int8_t *x, const qf_fast_weights *w,
                          const int32_t *bias, int8_t *y, void *scratch, size_t scratch_bytes,
                          qf_err *err);

/* ---- shared core (qgemm_fast_s8.c) ------------------------------------- */

/* One panel: out[ch * ld_ch + px * ld_px] = requant(bias[ch0 + ch] +
 * sum_t w[ch][t] * x[px][t] - zp[ch0 + ch] * xsum[px]) for ch < rows,
 * px < npix, with multiplier rq->mult[n_mult == 1 ? 0 : ch0 + ch] (the zp
 * term only when zp is not NULL; xsum[px] = sum_t x[px][t]). w: rows x kp
 * int8 (stride kp); x: npix x kp int16 (stride kp); kp a multiple of
 * QF_FAST_KBLOCK. The requant stage is assumed validated. Used by both
 * kernels above. */
typedef struct qf_fast_panel {
    const int8_t *w;
    const int16_t *x;
    size_t kp;
    int32_t rows;
    int64_t npix;
    const int32_t *bias; /* indexed by ch0 + ch; NULL for none */
    const int32_t *zp;   /* weight zero points, indexed by ch0 + ch; NULL for none */
    const int32_t *xsum; /* npix row sums of x when zp is set */
    int32_t ch0;
    const qf_ref_requant *rq;
    int8_t *out;
    ptrdiff_t ld_ch, ld_px;
} qf_fast_panel;

void qf_fast_panel_s8(const qf_fast_panel *pp);
/* sums[j] = sum_t x[j * kp + t] for j < npix (the panel's xsum). */
void qf_fast_row_sums(const int16_t *x, size_t kp, int64_t npix, int32_t *sums);

/* Scratch arrives at any alignment; the kernels round its start up to this
 * (the slack is included in the sizes they report). */
#define QF_FAST_SCRATCH_ALIGN 64
static inline void *qf_fast_scratch_base(void *scratch) {
    uintptr_t a = (uintptr_t)scratch + (QF_FAST_SCRATCH_ALIGN - 1);
    return (void *)(a & ~(uintptr_t)(QF_FAST_SCRATCH_ALIGN - 1));
}

#endif /* QF_KERNELS_PORTABLE_QFAST_H */
