/* sgemm_blas.c - OpenBLAS-backed float GEMM and the size-based dispatch
 * between it and the portable qf_sgemm_f32 (see sgemm_blas.h).
 *
 * OpenBLAS is not linked: it is dlopen'ed on the first float GEMM that wants
 * it. Linking it mapped OpenBLAS, libgfortran and libquadmath into every
 * process (~2 MB resident), including `qforge run` on integer models, which
 * never calls a float GEMM. When the library cannot be loaded, every entry
 * point computes the same product with the portable kernel. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/base.h"
#include "base/threadpool.h"
#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/sgemm.h"

/* The standard CBLAS enum values (cblas.h: CblasRowMajor = 101,
 * CblasNoTrans = 111, CblasTrans = 112), spelled out so cblas.h is not
 * needed to build. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

/* Debian's libopenblas0 uses the 32-bit integer interface (blasint = int);
 * the 64-bit one ships under another soname (libopenblas64.so.0) that we do
 * not try. The enum parameters are passed as int, as C does for enums. */
typedef void (*cblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                               float alpha, const float *a, int lda, const float *b, int ldb,
                               float beta, float *c, int ldc);
typedef void (*set_num_threads_fn)(int num_threads);

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
/* Written only inside blas_load (pthread_once orders it before every read) */
static cblas_sgemm_fn blas_sgemm;
static set_num_threads_fn blas_set_threads;
/* qf_blas_set_enabled(false) turns the loaded library off (tests) */
static atomic_bool blas_disabled;

/* Last thread count handed to OpenBLAS (0 = never set). */
static atomic_int blas_threads;

/* dlsym returns void *; ISO C has no cast from it to a function pointer,
 * so blas_load copies the bits (POSIX guarantees they are the same). */
_Static_assert(sizeof(cblas_sgemm_fn) == sizeof(void *), "function pointers as wide as void *");
_Static_assert(sizeof(set_num_threads_fn) == sizeof(void *), "function pointers as wide as void *");

static void blas_load(void) {
    /* Debian: libopenblas.so.0 from libopenblas0 (the runtime package);
     * libopenblas.so only from -dev, tried second for other layouts */
    static const char *const sonames[] = {"libopenblas.so.0", "libopenblas.so"};
    for (size_t i = 0; i < QF_ARRAY_LEN(sonames); i++) {
        /* RTLD_LOCAL: OpenBLAS's symbols stay out of the global namespace,
         * so they cannot interpose on another BLAS the host program uses;
         * dlsym on the handle still finds them */
        void *lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) continue;
        void *gemm = dlsym(lib, "cblas_sgemm");
        void *threads = dlsym(lib, "openblas_set_num_threads");
        if (gemm && threads) {
            memcpy(&blas_sgemm, &gemm, sizeof blas_sgemm);
            memcpy(&blas_set_threads, &threads, sizeof blas_set_threads);
            return; /* kept loaded for the life of the process */
        }
        dlclose(lib);
    }
}

/* The loaded cblas_sgemm, or NULL: load on first use, and honour
 * qf_blas_set_enabled. */
static cblas_sgemm_fn blas_get(void) {
    pthread_once(&blas_once, blas_load);
    return atomic_load(&blas_disabled) ? NULL : blas_sgemm;
}

bool qf_blas_available(void) { return blas_get() != NULL; }

void qf_blas_set_enabled(bool enabled) { atomic_store(&blas_disabled, !enabled); }

static void set_threads(int num_threads) {
    if (num_threads < 1) num_threads = 1;
    if (atomic_exchange(&blas_threads, num_threads) != num_threads) blas_set_threads(num_threads);
}

static void call_sgemm(cblas_sgemm_fn gemm, bool ta, bool tb, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc) {
    gemm(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS, tb ? CBLAS_TRANS : CBLAS_NO_TRANS,
         (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* ---- portable fallback (OpenBLAS missing or disabled) ----------------- */

/* Stack scratch of the fallback when the heap has no room for the whole
 * product's: C is then computed tile by tile (each tile of C is an
 * independent product). 24 x 64 tiles are whole micro-tiles of the portable
 * kernel (6 x 16) and need qf_sgemm_f32_scratch(24, 64, k) <= 90,240 bytes
 * for any k, as the kernel blocks k by 256. */
#define FALLBACK_STACK_BYTES 90240

/* Last resort, needing no scratch at all (see portable_sgemm). */
static void naive_sgemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta,
                        float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < k; p++)
                acc += (ta ? a[p * lda + i] : a[i * lda + p]) *
                       (tb ? b[j * ldb + p] : b[p * ldb + j]);
            /* beta == 0: C is not read (it may hold NaNs) */
            c[i * ldc + j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
        }
}

/* C = alpha op(A) op(B) + beta C with the portable kernel and scratch of
 * qf_sgemm_f32_scratch(m, n, k) bytes, or NULL for stack tiles. */
static void portable_sgemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                           const float *a, size_t lda, const float *b, size_t ldb, float beta,
                           float *c, size_t ldc, void *scratch) {
    if (scratch) {
        qf_sgemm_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
        return;
    }
    _Alignas(64) unsigned char tile_scratch[FALLBACK_STACK_BYTES];
    const size_t tm = 24, tn = 64;
    /* only if the portable kernel's blocking grows past the comment above */
    if (qf_sgemm_f32_scratch(tm, tn, k) > sizeof tile_scratch) {
        naive_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    for (size_t i0 = 0; i0 < m; i0 += tm) {
        size_t mt = QF_MIN(tm, m - i0);
        for (size_t j0 = 0; j0 < n; j0 += tn) {
            size_t nt = QF_MIN(tn, n - j0);
            qf_sgemm_f32(ta, tb, mt, nt, k, alpha, a + (ta ? i0 : i0 * lda), lda,
                         b + (tb ? j0 * ldb : j0), ldb, beta, c + i0 * ldc + j0, ldc,
                         tile_scratch);
        }
    }
}

/* The whole product with heap scratch, or stack tiles when that fails. */
static void portable_sgemm_alloc(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                                 const float *a, size_t lda, const float *b, size_t ldb,
                                 float beta, float *c, size_t ldc) {
    void *scratch = qf_malloc(qf_sgemm_f32_scratch(m, n, k));
    portable_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
    qf_free(scratch);
}

/* ---- entry points ------------------------------------------------------ */

bool qf_sgemm_f32_blas_worthwhile(size_t m, size_t n, size_t k) {
    size_t mn, mnk;
    /* cblas takes int sizes: anything beyond INT_MAX stays portable */
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return false;
    if (!qf_mul_size(m, n, &mn) || !qf_mul_size(mn, k, &mnk)) return true;
    return mnk >= QF_SGEMM_BLAS_MIN_FLOPS;
}

/* Sizes and leading dimensions all fit cblas's int parameters. */
static bool fits_int(size_t m, size_t n, size_t k, size_t lda, size_t ldb, size_t ldc) {
    return m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
           ldc <= INT_MAX;
}

void qf_sgemm_f32_blas(int num_threads, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
    cblas_sgemm_fn gemm = blas_get();
    if (!gemm || !fits_int(m, n, k, lda, ldb, ldc)) {
        portable_sgemm_alloc(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    set_threads(num_threads);
    call_sgemm(gemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void qf_sgemm_f32_auto(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                       size_t k, float alpha, const float *a, size_t lda, const float *b,
                       size_t ldb, float beta, float *c, size_t ldc, void *scratch) {
    /* k == 0 and alpha == 0 keep the portable kernel's exact "C = beta * C"
     * handling; leading dimensions beyond int range cannot go to cblas.
     * The size test comes first so small products never load OpenBLAS. */
    if (k == 0 || alpha == 0.0f || !qf_sgemm_f32_blas_worthwhile(m, n, k) ||
        !fits_int(m, n, k, lda, ldb, ldc) || !blas_get()) {
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
 * (rows) into panels of `step`; task t computes panel t, with OpenBLAS
 * (gemm != NULL) or the portable kernel and thread tid's slice of scratch. */
typedef struct gemm_job {
    bool ta, tb, split_n;
    size_t m, n, k, lda, ldb, ldc, step, total;
    float alpha, beta;
    const float *a, *b;
    float *c;
    cblas_sgemm_fn gemm;
    unsigned char *scratch;
    size_t scratch_per_thread;
} gemm_job;

static void gemm_panel(void *ctx, int64_t t, int tid) {
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
    if (j->gemm)
        call_sgemm(j->gemm, j->ta, j->tb, m, n, j->k, j->alpha, a, j->lda, b, j->ldb, j->beta, c,
                   j->ldc);
    else
        qf_sgemm_f32(j->ta, j->tb, m, n, j->k, j->alpha, a, j->lda, b, j->ldb, j->beta, c, j->ldc,
                     j->scratch + (size_t)tid * j->scratch_per_thread);
}

void qf_sgemm_f32_pooled(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n,
                         size_t k, float alpha, const float *a, size_t lda, const float *b,
                         size_t ldb, float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
    qf_threadpool *pool = ctx ? ctx->pool : NULL;
    int threads = qf_threadpool_size(pool);
    if (threads <= 1 || !fits_int(m, n, k, lda, ldb, ldc) ||
        (double)m * (double)n * (double)k < (double)QF_SGEMM_BLAS_POOL_MIN_FLOPS) {
        qf_sgemm_f32_blas(pool ? 1 : (ctx ? ctx->num_threads : 1), trans_a, trans_b, m, n, k, alpha,
                          a, lda, b, ldb, beta, c, ldc);
        return;
    }
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
                  .c = c,
                  .gemm = blas_get()};
    j.split_n = n >= 4 * m || n >= 256;
    j.total = j.split_n ? n : m;
    size_t align = j.split_n ? 64 : 16, panels = (size_t)threads * 2;
    if (j.total / panels < align) panels = j.total / align ? j.total / align : 1;
    j.step = (j.total + panels - 1) / panels;
    j.step = (j.step + align - 1) / align * align;
    int64_t n_tasks = (int64_t)((j.total + j.step - 1) / j.step);
    if (j.gemm) {
        set_threads(1);
    } else {
        /* portable panels: one scratch per thread, sized for the largest
         * panel; without the memory, the whole product runs on this thread */
        j.scratch_per_thread = qf_sgemm_f32_scratch(j.split_n ? m : j.step, j.split_n ? j.step : n,
                                                    k);
        size_t bytes;
        if (!qf_mul_size(j.scratch_per_thread, (size_t)threads, &bytes) ||
            !(j.scratch = qf_malloc(bytes))) {
            portable_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
            return;
        }
    }
    qf_parallel_for(pool, n_tasks, gemm_panel, &j);
    qf_free(j.scratch);
}
