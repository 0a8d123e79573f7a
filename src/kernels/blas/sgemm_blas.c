/* sgemm_blas.c - OpenBLAS-backed float GEMM and the size-based dispatch
 * between it and the portable qf_sgemm_f32 (see sgemm_blas.h). */
#include <cblas.h>
#include <limits.h>
#include <stdatomic.h>

#include "base/threadpool.h"
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
    if (ctx && qf_threadpool_size(ctx->pool) > 1) {
        qf_sgemm_f32_pooled(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int threads = ctx ? ctx->num_threads : 1;
    if ((double)m * (double)n * (double)k < (double)QF_SGEMM_BLAS_MT_MIN_FLOPS) threads = 1;
    qf_sgemm_f32_blas(threads, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* One panel job of qf_sgemm_f32_pooled: C is cut along n (columns) or m
 * (rows) into panels of `step`; task t computes panel t. */
typedef struct gemm_job {
    bool ta, tb, split_n;
    size_t m, n, k, lda, ldb, ldc, step, total;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_job;

static void gemm_panel(void *ctx, int64_t t, int tid) {
    (void)tid;
    const gemm_job *j = ctx;
    size_t lo = (size_t)t * j->step, hi = lo + j->step < j->total ? lo + j->step : j->total;
    const float *a = j->a, *b = j->b;
    float *c = j->c;
    size_t m = j->m, n = j->n;
    if (j->split_n) {
        b += j->tb ? lo * j->ldb : lo; /* op(B) columns lo..hi */
        c += lo;
        n = hi - lo;
    } else {
        a += j->ta ? lo : lo * j->lda; /* op(A) rows lo..hi */
        c += lo * j->ldc;
        m = hi - lo;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)j->k, j->alpha, a, (blasint)j->lda, b,
                (blasint)j->ldb, j->beta, c, (blasint)j->ldc);
}

void qf_sgemm_f32_pooled(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                         size_t k, float alpha, const float *a, size_t lda, const float *b,
                         size_t ldb, float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
    qf_threadpool *pool = ctx ? ctx->pool : NULL;
    int threads = qf_threadpool_size(pool);
    if (threads <= 1 || m > INT_MAX || n > INT_MAX || k > INT_MAX ||
        (double)m * (double)n * (double)k < (double)QF_SGEMM_BLAS_POOL_MIN_FLOPS) {
        qf_sgemm_f32_blas(pool ? 1 : (ctx ? ctx->num_threads : 1), trans_a, trans_b, m, n, k, alpha,
                          a, lda, b, ldb, beta, c, ldc);
        return;
    }
    set_threads(1);
    /* two panels per thread: a thread the OS deschedules leaves its second
     * panel to the others; panels of at least 64 columns or 16 rows keep
     * OpenBLAS's per-call packing cost small */
    gemm_job j = {.ta = trans_a,
                  .tb = trans_b,
                  .m = m,
                  .n = n,
                  .k = k,
                  .lda = lda,
                  .ldb = ldb,
                  .ldc = ldc,
                  .alpha = alpha,
                  .beta = beta,
                  .a = a,
                  .b = b,
                  .c = c};
    j.split_n = n >= 4 * m || n >= 256;
    j.total = j.split_n ? n : m;
    size_t align = j.split_n ? 64 : 16, panels = (size_t)threads * 2;
    if (j.total / panels < align) panels = j.total / align ? j.total / align : 1;
    j.step = (j.total + panels - 1) / panels;
    j.step = (j.step + align - 1) / align * align;
    int64_t n_tasks = (int64_t)((j.total + j.step - 1) / j.step);
    qf_parallel_for(pool, n_tasks, gemm_panel, &j);
}
