/* sgemm_blas.h - float GEMM through OpenBLAS (cblas_sgemm), and the
 * dispatcher the float kernels (Conv via im2col, Gemm, MatMul) call.
 *
 * OpenBLAS is loaded at run time (dlopen of libopenblas.so.0, then
 * libopenblas.so) on the first call that would use it, so processes that
 * never run a large float GEMM do not map it. Where it cannot be loaded,
 * every function below computes the same product with the portable
 * qf_sgemm_f32 instead (within float rounding).
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

/* OpenBLAS, with num_threads threads (<= 0: 1). The thread count is
 * process-wide in OpenBLAS; it is set only when it changes. Without
 * OpenBLAS: the portable kernel on the calling thread, with scratch from
 * qf_malloc (or, if that fails, on the stack in tiles of C). */
void qf_sgemm_f32_blas(int num_threads, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc);

/* True when qf_sgemm_f32_auto would call OpenBLAS for these sizes (if
 * qf_blas_available()). A pure size test: it does not load OpenBLAS. */
bool qf_sgemm_f32_blas_worthwhile(size_t m, size_t n, size_t k);

/* OpenBLAS for large problems (split on ctx->pool as qf_sgemm_f32_pooled
 * does when ctx has a pool; else ctx->num_threads OpenBLAS threads from
 * QF_SGEMM_BLAS_MT_MIN_FLOPS on, one below; ctx may be NULL = 1), else
 * qf_sgemm_f32 with `scratch` of qf_sgemm_f32_scratch(m, n, k) bytes
 * (unused on the OpenBLAS path). Without OpenBLAS: always qf_sgemm_f32 with
 * `scratch`, on the calling thread; never allocates. */
void qf_sgemm_f32_auto(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                       size_t k, float alpha, const float *a, size_t lda, const float *b,
                       size_t ldb, float beta, float *c, size_t ldc, void *scratch);

/* Added for training speed: OpenBLAS on one thread per call, with a large
 * product (from QF_SGEMM_BLAS_POOL_MIN_FLOPS on) cut into panels of C that
 * run as tasks on ctx->pool. The pool hands panels out dynamically and never
 * waits for a worker the OS has not scheduled, so unlike OpenBLAS's own
 * threads (static split, spin-waiting workers) it does not slow down on a
 * loaded machine. Without a pool (or ctx NULL) it is qf_sgemm_f32_blas with
 * ctx->num_threads threads. Always OpenBLAS, whatever the size, when it is
 * available; else the same panels on the pool with the portable kernel and
 * per-thread scratch from qf_malloc (if that fails, qf_sgemm_f32_blas's
 * stack tiles on the calling thread). */
#define QF_SGEMM_BLAS_POOL_MIN_FLOPS ((size_t)1 << 22)
void qf_sgemm_f32_pooled(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                         size_t k, float alpha, const float *a, size_t lda, const float *b,
                         size_t ldb, float beta, float *c, size_t ldc);

/* Added for lazy loading: true when OpenBLAS is loaded (the first call
 * tries to load it; thread-safe) and not disabled. A front end may show it,
 * e.g. in a version line. */
bool qf_blas_available(void);

/* Added for lazy loading: false makes every function above use the
 * portable kernel from now on, as if OpenBLAS were missing; true undoes it.
 * Process-wide; meant for tests and for runs that want the portable
 * kernel's results. */
void qf_blas_set_enabled(bool enabled);

#endif /* QF_KERNELS_BLAS_SGEMM_BLAS_H */
