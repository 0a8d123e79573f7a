/* gptq.h - GPTQ weight rounding (Frantar et al. 2023, "GPTQ: accurate
 * post-training quantization for generative pre-trained transformers",
 * itself OBQ's column-at-a-time update made practical).
 *
 * Nearest rounding minimises each weight's own error. What a layer's output
 * loses is the error seen through its inputs: for a row w of the weights and
 * inputs x, E[(w.x - w_q.x)^2] = (w - w_q)^T H (w - w_q) with H = E[x x^T].
 * GPTQ quantizes the columns one after the other and, after each, moves the
 * rounding error it just made onto the columns not yet quantized, in the
 * direction that H says cancels it best (the row of the upper Cholesky
 * factor of H^-1). Scales and zero points are fixed beforehand (the
 * per-channel clipping calibrators choose them); GPTQ only picks the integer
 * each weight rounds to.
 *
 * Two parts:
 *   - qf_gptq_hess: accumulates H = sum x x^T of one layer's float input
 *     over calibration batches (Conv: every receptive-field patch in the
 *     weight's column order (channel, kernel axes), per group; Gemm/MatMul:
 *     every row of the [.., K] input);
 *   - qf_gptq_round: the rounding of a [rows, cols] weight matrix given H.
 */
#ifndef QF_QUANT_GPTQ_H
#define QF_QUANT_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/graph.h"
#include "kernels/ref/spatial.h"

/* Relative damping added to H's diagonal: 1% of its mean (as in the paper;
 * it keeps the Cholesky factorisation defined where inputs are collinear or
 * dead, and bounds how far errors are pushed). */
#define QF_GPTQ_DAMP 0.01
/* Hessians are cols x cols doubles per group, all held until calibration
 * ends: layers past this total budget keep nearest rounding (and the report
 * says so). 1 GiB holds every layer of ResNet-18 or AlexNet. */
#define QF_GPTQ_MEM_BUDGET ((size_t)1 << 30)
/* Layers with more columns than this keep nearest rounding: factorising the
 * cols x cols Hessian costs about cols^3 / 2 multiply-adds (a minute at
 * 8192 on one core). */
#define QF_GPTQ_MAX_COLS 8192

typedef struct qf_gptq_hess {
    bool conv;
    int64_t groups;      /* conv groups (1 for Gemm) */
    int64_t cin_g;       /* input channels per group (Gemm: K) */
    int64_t cols;        /* cin_g * kernel elements: columns of the weight matrix */
    qf_spatial_attrs sa; /* conv attributes */
    int nsp;             /* conv spatial axes */
    int64_t kernel[QF_SPATIAL_MAX];
    const qf_node *node; /* named in errors */
    double *h;           /* groups * cols * cols; symmetric, both halves */
    int64_t rows;        /* input rows (patches) accumulated per group */
    float *xbuf, *hbuf;  /* scratch: a chunk of rows, one float product */
    int64_t xrows;       /* rows xbuf holds */
} qf_gptq_hess;

/* Bytes qf_gptq_hess_init would allocate for `groups` Hessians of `cols`
 * columns (for the memory budget). */
size_t qf_gptq_hess_bytes(int64_t groups, int64_t cols);

/* Conv node n with weight dims w_dims[w_rank] ([M, C/group, k...]) or, when
 * n is NULL, a Gemm/MatMul with K input features (w_dims, w_rank unused). */
qf_status qf_gptq_hess_init(qf_gptq_hess *hs, const qf_node *n, const int64_t *w_dims, int w_rank,
                            int64_t k, qf_err *err);
void qf_gptq_hess_free(qf_gptq_hess *hs);

/* Adds the rows of one calibration batch x (float32; Conv: [N, C, spatial];
 * Gemm: [..., K]). */
qf_status qf_gptq_hess_add(qf_gptq_hess *hs, const qf_tensor *x, qf_err *err);

/* GPTQ rounding of the row-major weights w [rows, cols] with per-row scale
 * and zero point (q = clamp(round(w / scale) + zp, qmin, qmax), the
 * quantizer's own formula), given h = sum x x^T [cols, cols] (not modified).
 * Writes q [rows, cols]. With an h that is diagonal, no error moves and the
 * result is nearest rounding. Fails only for lack of memory or arguments
 * out of range. */
qf_status qf_gptq_round(const float *w, int64_t rows, int64_t cols, const double *h,
                        const float *scales, const int32_t *zps, int32_t qmin, int32_t qmax,
                        int8_t *q, qf_err *err);

#endif /* QF_QUANT_GPTQ_H */
