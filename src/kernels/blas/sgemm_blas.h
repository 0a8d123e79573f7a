/* sgemm_blas.h - float GEMM through OpenBLAS (cblas_sgemm), and the
 * dispatcher the float kernels (Conv via im2col, Gemm, MatMul) call.
 *
 * Same contract as qf_sgemm_f32 (kernels/ref/sgemm.h): row-major
 * C = alpha * op(A) * op(B) + beta * C, beta == 0 means C is not read.
 * The portable qf_sgemm_f32 stays the reference twin and runs the small
 * problems, where OpenBLAS's call and threading overheads dominate.
 * Results agree with the portable kernel within float rounding (the
 * summation order differs), not bit for bit. */
#ifndef QF_KERNELS_BLAS_SGEMM_BLAS_H
#define QF_KERNELS_BLAS_SGEMM_BLAS_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/ops.h"

/* m * n * k at or above which qf_sgemm_f32_auto uses OpenBLAS. */
#define QF_SGEMM_BLAS_MIN_FLOPS ((size_t)32 * 32 * 32)
/* m * n * k at or above which qf_sgemm_f32_auto lets OpenBLAS use more
 * than one thread: below it, waking and joining OpenBLAS's threads costs
 * more than it saves (measured: a 64x49x576 product ran ~10x slower on two
 * threads than on one on the shared 2-core machine). */
#define QF_SGEMM_BLAS_MT_MIN_FLOPS ((size_t)1 << 23)

/* Always OpenBLAS, with num_threads threads (<= 0: 1). The thread count is
 * process-wide in OpenBLAS; it is set only when it changes. */
void qf_sgemm_f32_blas(int num_threads, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc);

/* True when qf_sgemm_f32_auto would call OpenBLAS for these sizes. */
bool qf_sgemm_f32_blas_worthwhile(size_t m, size_t n, size_t k);

/* OpenBLAS for large problems (split on ctx->pool as qf_sgemm_f32_pooled
 * does when ctx has a pool; else ctx->num_threads OpenBLAS threads from
 * QF_SGEMM_BLAS_MT_MIN_FLOPS on, one below; ctx may be NULL = 1), else
 * qf_sgemm_f32 with `scratch` of qf_sgemm_f32_scratch(m, n, k) bytes
 * (unused on the OpenBLAS path). */
void qf_sgemm_f32_auto(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                       size_t k, float alpha, const float *a, size_t lda, const float *b,
                       size_t ldb, float beta, float *c, size_t ldc, void *scratch);

/* Added for training speed: OpenBLAS on one thread per call, with a large
 * product (from QF_SGEMM_BLAS_POOL_MIN_FLOPS on) cut into panels of C that
 * run as tasks on ctx->pool. The pool hands panels out dynamically and never
 * waits for a worker the OS has not scheduled, so unlike OpenBLAS's own
 * threads (static split, spin-waiting workers) it does not slow down on a
 * loaded machine. Without a pool (or ctx NULL) it is qf_sgemm_f32_blas with
 * ctx->num_threads threads. Always OpenBLAS, whatever the size. */
#define QF_SGEMM_BLAS_POOL_MIN_FLOPS ((size_t)1 << 22)
void qf_sgemm_f32_pooled(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                         size_t k, float alpha, const float *a, size_t lda, const float *b,
                         size_t ldb, float beta, float *c, size_t ldc);

#endif /* QF_KERNELS_BLAS_SGEMM_BLAS_H */
