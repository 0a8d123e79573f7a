/* test_sgemm_blas.c - the lazily loaded OpenBLAS GEMM (kernels/blas): it
 * loads on this machine (libopenblas0 is a build dependency), its entry
 * points agree with a naive double-precision triple loop written here, and
 * with OpenBLAS switched off (qf_blas_set_enabled(false)) every entry point,
 * the pooled one and the out-of-memory fallback included, still does. */
#include <stdbool.h>
#include <stdlib.h>

#include "base/base.h"
#include "base/threadpool.h"
#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/sgemm.h"
#include "qtest.h"

/* Fixed-seed LCG in [-1, 1): test data independent of the library's rng. */
static float lcg(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

typedef enum { VIA_AUTO, VIA_BLAS, VIA_POOLED } entry;

typedef struct gemm_case {
    size_t m, n, k;
    bool ta, tb;
    float beta;
    entry via;
    int threads; /* pool size (VIA_POOLED, VIA_AUTO) or OpenBLAS threads */
} gemm_case;

/* Large enough for the BLAS path (>= QF_SGEMM_BLAS_MIN_FLOPS, the pooled
 * ones >= QF_SGEMM_BLAS_POOL_MIN_FLOPS), odd sizes so panels and tiles of
 * the fallbacks have ragged edges. */
static const gemm_case cases[] = {
    {200, 150, 300, false, false, 0.0f, VIA_AUTO, 1},
    {97, 131, 257, true, false, 0.5f, VIA_AUTO, 1},
    {160, 128, 512, false, true, 0.0f, VIA_AUTO, 2},
    {33, 300, 70, true, true, -1.0f, VIA_BLAS, 2},
    {61, 45, 390, false, false, 0.25f, VIA_BLAS, 1},
    {130, 517, 80, false, true, 0.0f, VIA_POOLED, 2}, /* split along n */
    {300, 100, 150, true, false, 0.5f, VIA_POOLED, 2}, /* split along m */
};

/* ld = row length + pad, so leading dimensions differ from widths. */
static void run_case(const gemm_case *gc, qf_threadpool *pool, double *worst_rel) {
    size_t m = gc->m, n = gc->n, k = gc->k;
    size_t lda = (gc->ta ? m : k) + 3, ldb = (gc->tb ? k : n) + 1, ldc = n + 2;
    size_t arows = gc->ta ? k : m, brows = gc->tb ? n : k;
    float *a = malloc(sizeof(float) * arows * lda), *b = malloc(sizeof(float) * brows * ldb);
    float *c = malloc(sizeof(float) * m * ldc), *c0 = malloc(sizeof(float) * m * ldc);
    void *scratch = malloc(qf_sgemm_f32_scratch(m, n, k));
    *worst_rel = 1e30; /* a failed allocation fails the case */
    if (!a || !b || !c || !c0 || !scratch) goto done;
    unsigned s = (unsigned)(m * 31 + n * 7 + k);
    for (size_t i = 0; i < arows * lda; i++)
        a[i] = lcg(&s);
    for (size_t i = 0; i < brows * ldb; i++)
        b[i] = lcg(&s);
    for (size_t i = 0; i < m * ldc; i++)
        c0[i] = gc->beta != 0.0f ? lcg(&s) : NAN; /* beta 0 must not read C */
    memcpy(c, c0, sizeof(float) * m * ldc);
    const float alpha = 0.75f;
    qf_exec_ctx ctx = {.num_threads = gc->threads, .pool = pool};
    if (gc->via == VIA_AUTO)
        qf_sgemm_f32_auto(&ctx, gc->ta, gc->tb, m, n, k, alpha, a, lda, b, ldb, gc->beta, c, ldc,
                          scratch);
    else if (gc->via == VIA_BLAS)
        qf_sgemm_f32_blas(gc->threads, gc->ta, gc->tb, m, n, k, alpha, a, lda, b, ldb, gc->beta, c,
                          ldc);
    else
        qf_sgemm_f32_pooled(&ctx, gc->ta, gc->tb, m, n, k, alpha, a, lda, b, ldb, gc->beta, c,
                            ldc);
    /* relative error against a naive double loop, normalised by the sum
     * of |terms| so cancellation does not inflate it */
    double worst = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0, mag = 0;
            for (size_t p = 0; p < k; p++) {
                double av = gc->ta ? a[p * lda + i] : a[i * lda + p];
                double bv = gc->tb ? b[j * ldb + p] : b[p * ldb + j];
                acc += av * bv;
                mag += fabs(av * bv);
            }
            double cin = gc->beta != 0.0f ? c0[i * ldc + j] : 0.0;
            double ref = alpha * acc + gc->beta * cin;
            double scale = alpha * mag + fabs(gc->beta * cin) + 1e-30;
            double rel = fabs(c[i * ldc + j] - ref) / scale;
            if (!(rel <= worst)) worst = rel; /* NaN sticks */
        }
    /* the padding between rows of C is never written */
    for (size_t i = 0; i < m; i++)
        for (size_t j = n; j < ldc; j++)
            if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) != 0) worst = 1e30;
    *worst_rel = worst;
done:
    free(a);
    free(b);
    free(c);
    free(c0);
    free(scratch);
}

static void run_all(const char *mode) {
    qf_threadpool *pool = NULL;
    CHECK_OK(qf_threadpool_create(2, &pool, NULL));
    double worst_all = 0;
    size_t worst_case = 0;
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        double worst;
        run_case(&cases[i], cases[i].threads > 1 ? pool : NULL, &worst);
        if (!(worst <= worst_all)) {
            worst_all = worst;
            worst_case = i;
        }
    }
    qf_threadpool_destroy(pool);
    const gemm_case *gc = &cases[worst_case];
    CHECK_MSG(worst_all <= 1e-4, "%s: case %zu (%zux%zux%zu ta %d tb %d via %d): rel err %g",
              mode, worst_case, gc->m, gc->n, gc->k, gc->ta, gc->tb, (int)gc->via, worst_all);
}

static void blas_loads_here(void) {
    qf_blas_set_enabled(true);
    CHECK(qf_blas_available());
    CHECK(qf_blas_available()); /* loading twice is harmless */
    /* every table case is large enough for the OpenBLAS path */
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++)
        CHECK(qf_sgemm_f32_blas_worthwhile(cases[i].m, cases[i].n, cases[i].k));
    CHECK(!qf_sgemm_f32_blas_worthwhile(31, 32, 32));
}

static void blas_paths_match_naive(void) {
    qf_blas_set_enabled(true);
    CHECK(qf_blas_available());
    run_all("openblas");
}

static void disabled_falls_back(void) {
    qf_blas_set_enabled(false);
    bool avail = qf_blas_available();
    run_all("portable");
    qf_blas_set_enabled(true);
    CHECK(!avail);
    CHECK(qf_blas_available());
}

/* Allocator that fails every request: the fallbacks' scratch allocations
 * fail, so they take the stack-tile path. */
static void *fail_alloc(void *u, size_t n) {
    (void)u;
    (void)n;
    return NULL;
}
static void *fail_realloc(void *u, void *p, size_t n) {
    (void)u;
    (void)p;
    (void)n;
    return NULL;
}
static void plain_free(void *u, void *p) {
    (void)u;
    free(p);
}

static void disabled_without_memory(void) {
    /* the pool is made before the allocator starts failing */
    qf_threadpool *pool = NULL;
    CHECK_OK(qf_threadpool_create(2, &pool, NULL));
    qf_blas_set_enabled(false);
    qf_allocator fail = {fail_alloc, fail_realloc, plain_free, NULL};
    qf_set_allocator(&fail);
    double worst_all = 0;
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        double worst;
        run_case(&cases[i], cases[i].threads > 1 ? pool : NULL, &worst);
        if (!(worst <= worst_all)) worst_all = worst;
    }
    qf_set_allocator(NULL);
    qf_blas_set_enabled(true);
    qf_threadpool_destroy(pool);
    CHECK_MSG(worst_all <= 1e-4, "rel err %g", worst_all);
}

QT_MAIN(QT_CASE(blas_loads_here), QT_CASE(blas_paths_match_naive), QT_CASE(disabled_falls_back),
        QT_CASE(disabled_without_memory))
