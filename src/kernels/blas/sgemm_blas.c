/* sgemm_blas.c - OpenBLAS-backed float GEMM and the size-based dispatch
 * between it and the portable qf_sgemm_f32 (see sgemm_blas.h). */
#include <cblas.h>
#include <limits.h>
#include <stdatomic.h>

#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/sgemm.h"

/* Last thread count handed to OpenBLAS (0 = never set). */
static atomic_int blas_threads;

static void set_threads(int num_threads) {
    if (num_threads < 1) num_threads = 1;
    if (atomic_exchange(&blas_threads, num_threads) != num_threads)
        openblas_set_num_threads(num_threads);
}

bool qf_sgemm_f32_blas_worthwhile(size_t m, size_t n, size_t k) {
    size_t mn, mnk;
    /* cblas takes int sizes: anything beyond INT_MAX stays portable */
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return false;
    if (!qf_mul_size(m, n, &mn) || !qf_mul_size(mn, k, &mnk)) return true;
    return mnk >= QF_SGEMM_BLAS_MIN_FLOPS;
}

void qf_sgemm_f32_blas(int num_threads, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
    set_threads(num_threads);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

void qf_sgemm_f32_auto(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                       size_t k, float alpha, const float *a, size_t lda, const float *b,
                       size_t ldb, float beta, float *c, size_t ldc, void *scratch) {
    /* k == 0 and alpha == 0 keep the portable kernel's exact "C = beta * C"
     * handling; leading dimensions beyond int range cannot go to cblas */
    if (k == 0 || alpha == 0.0f || !qf_sgemm_f32_blas_worthwhile(m, n, k) || lda > INT_MAX ||
        ldb > INT_MAX || ldc > INT_MAX) {
        qf_sgemm_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
        return;
    }
    int threads = ctx ? ctx->num_threads : 1;
    if ((double)m * (double)n * (double)k < (double)QF_SGEMM_BLAS_MT_MIN_FLOPS) threads = 1;
    qf_sgemm_f32_blas(threads, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
