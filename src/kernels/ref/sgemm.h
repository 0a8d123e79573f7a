/* sgemm.h - portable blocked single-precision GEMM shared by the float
 * reference kernels (Conv via im2col, ConvTranspose, Gemm, MatMul).
 *
 * Computes C = alpha * op(A) * op(B) + beta * C, row-major, where
 * op(A) is M x K (A itself K x M when trans_a) and op(B) is K x N (B itself
 * N x K when trans_b). beta == 0 means C is not read (it may hold NaNs).
 * The kernel never allocates: packing buffers live in caller-provided
 * scratch of qf_sgemm_f32_scratch(M, N, K) bytes (any alignment).
 */
#ifndef QF_KERNELS_REF_SGEMM_H
#define QF_KERNELS_REF_SGEMM_H

#include <stdbool.h>
#include <stddef.h>

/* Scratch bytes qf_sgemm_f32 needs for these sizes (never 0). */
size_t qf_sgemm_f32_scratch(size_t m, size_t n, size_t k);

void qf_sgemm_f32(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                  const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                  size_t ldc, void *scratch);

#endif /* QF_KERNELS_REF_SGEMM_H */
