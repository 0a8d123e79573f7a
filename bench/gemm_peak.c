/* gemm_peak.c - the machine's int8 multiply-accumulate peak and how close
 * the x86 int8 kernels (kernels/x86/qx86.h) get to it.
 *
 * Peak: a register-only loop of independent vpdpbusd (AVX-512 VNNI, 64 MACs
 * each) or vpmaddubsw + vpmaddwd + vpaddd (AVX2, 32 MACs per triple) on
 * 1 thread and on 2 threads at once. Then the VNNI and AVX2 GEMM on
 * 512x512x512, a few ResNet-style convolutions and two MobileNetV2-like
 * depthwise layers (VNNI only), median of several runs; weights spread
 * over the whole int8 range, and for AVX2 the GEMM and the first three
 * convolutions again with 7-bit weights (`quantize --reduce-range`),
 * as GMAC/s and fraction of the measured peak of the same ISA and thread
 * count. "Cycles" are TSC cycles (the TSC ticks at the nominal clock).
 *
 * Build (from the repository root, after `make`):
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/gemm_peak.c \
 *      build/libqforge.a -lprotobuf-c -lcjson -lzstd -lz -lm -lpthread -ldl \
 *      -o build/gemm_peak
 * Run: build/gemm_peak            (prints a Markdown table)
 *      build/gemm_peak WORD [T]   only the problems whose name contains WORD
 *                                 ("gemm" for the 512^3 GEMM), at T threads
 *                                 only (1 or 2), after a shorter peak loop
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "kernels/dispatch.h"
#include "kernels/ref/qref.h"
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <x86intrin.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Short runs, best of many: on a shared machine some run undisturbed. */
#define PEAK_ITERS 200000L
#define PEAK_REPS 200
static int peak_reps = PEAK_REPS;

/* 10 independent vpdpbusd chains: enough to cover the latency. The inputs
 * differ per chain and pass through an empty asm statement every
 * iteration, so the compiler can neither merge the chains nor hoist them.
 * Returns a value derived from the accumulators so nothing is dropped. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int64_t peak_vnni(long iters) {
    __m512i a0 = _mm512_set1_epi32(1), a1 = _mm512_set1_epi32(2), a2 = _mm512_set1_epi32(3),
            a3 = _mm512_set1_epi32(4), a4 = _mm512_set1_epi32(5);
    __m512i b = _mm512_set1_epi32(0x01010101), b2 = _mm512_set1_epi32(0x02020202);
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
            c7 = c0, c8 = c0, c9 = c0;
    /* inline asm: GCC copies the accumulator around the vpdpbusd intrinsic
     * in a loop like this one, and the copies would be measured too */
#define DP(c, a, bb) "vpdpbusd %[" #bb "], %[" #a "], %[" #c "]\n\t"
    for (long i = 0; i < iters; i++) {
        __asm__ volatile(
            DP(c0, a0, b) DP(c1, a1, b) DP(c2, a2, b) DP(c3, a3, b) DP(c4, a4, b) DP(c5, a0, b2)
                DP(c6, a1, b2) DP(c7, a2, b2) DP(c8, a3, b2) DP(c9, a4, b2)
            : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3), [c4] "+v"(c4),
              [c5] "+v"(c5), [c6] "+v"(c6), [c7] "+v"(c7), [c8] "+v"(c8), [c9] "+v"(c9)
            : [a0] "v"(a0), [a1] "v"(a1), [a2] "v"(a2), [a3] "v"(a3), [a4] "v"(a4), [b] "v"(b),
              [b2] "v"(b2));
    }
#undef DP
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), c2), c3);
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(c8, c9));
    return _mm512_reduce_add_epi32(s);
}
#define VNNI_MACS_PER_ITER (10 * 64)

/* vpmaddubsw + vpmaddwd + vpaddd, 4 independent chains. */
__attribute__((target("avx2"))) static int64_t peak_avx2(long iters) {
    __m256i a0 = _mm256_set1_epi32(1), a1 = _mm256_set1_epi32(2), a2 = _mm256_set1_epi32(3),
            a3 = _mm256_set1_epi32(4), b = _mm256_set1_epi32(0x01010101);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
    for (long i = 0; i < iters; i++) {
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(b));
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_maddubs_epi16(a0, b), ones));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(_mm256_maddubs_epi16(a1, b), ones));
        c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(_mm256_maddubs_epi16(a2, b), ones));
        c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(_mm256_maddubs_epi16(a3, b), ones));
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3));
    int32_t v[8];
    _mm256_storeu_si256((__m256i *)v, s);
    return v[0] + v[7];
}
#define AVX2_MACS_PER_ITER (4 * 32)

typedef struct peak_arg {
    int isa;
    long iters;
    int64_t sink;
} peak_arg;

static void *peak_thread(void *arg) {
    peak_arg *a = arg;
    a->sink = a->isa == QF_ISA_AVX512VNNI ? peak_vnni(a->iters) : peak_avx2(a->iters);
    return NULL;
}

/* MAC/s of the register loop on `threads` threads together. */
static double measure_peak(qf_isa isa, int threads) {
    pthread_t th[2];
    peak_arg args[2];
    const long iters = isa == QF_ISA_AVX512VNNI ? PEAK_ITERS : PEAK_ITERS * 2;
    const double macs =
        (double)iters * (isa == QF_ISA_AVX512VNNI ? VNNI_MACS_PER_ITER : AVX2_MACS_PER_ITER);
    double best = 0;
    for (int rep = 0; rep < peak_reps; rep++) {
        double t0 = now_s();
        for (int i = 0; i < threads; i++) {
            args[i].isa = (int)isa;
            args[i].iters = iters;
            pthread_create(&th[i], NULL, peak_thread, &args[i]);
        }
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        double r = macs * threads / (now_s() - t0);
        if (r > best) best = r;
    }
    return best;
}

static double tsc_hz(void) {
    double t0 = now_s();
    uint64_t c0 = __rdtsc();
    while (now_s() - t0 < 0.2) {
    }
    return (double)(__rdtsc() - c0) / (now_s() - t0);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define REPS 15

/* Sorts v; *best gets the fastest run (a loaded machine inflates the
 * median, never the minimum). */
static double best_s;
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    best_s = v[0];
    return v[n / 2];
}

/* Median seconds of the gemm m x n x k, weights spread evenly over [-wmax,
 * wmax] (127: every AVX2 layer takes the 16-bit path; 63: 7-bit weights, as
 * `qforge quantize --reduce-range` makes them, run plain vpmaddubsw). */
static double time_gemm(qf_isa isa, qf_threadpool *pool, int m, int n, int k, int wmax) {
    qf_ref_gemm_params p;
    memset(&p, 0, sizeof p);
    p.m = m;
    p.n = n;
    p.k = k;
    p.w_bits = 8;
    qf_ref_rescale r;
    qf_ref_rescale_init(1.0 / 4096, &r);
    p.rq.mult = &r;
    p.rq.n_mult = 1;
    p.rq.act_min = -128;
    p.rq.act_max = 127;
    int8_t *x = malloc((size_t)m * k), *w = malloc((size_t)n * k), *y = malloc((size_t)m * n);
    size_t wb = qf_x86_weights_bytes(QX_LAYOUT_GEMM16, n, k, 1);
    size_t sb = qf_x86_gemm_s8_scratch_size(&p);
    void *pw = malloc(wb), *scr = malloc(sb);
    for (size_t i = 0; i < (size_t)m * k; i++)
        x[i] = (int8_t)(i * 7);
    for (size_t i = 0; i < (size_t)n * k; i++)
        w[i] = (int8_t)((i * 13) % (size_t)(2 * wmax + 1) - (size_t)wmax);
    qf_x86_weights xw;
    qf_x86_pack_weights(QX_LAYOUT_GEMM16, (const uint8_t *)w, n, k, 8, 1, pw, &xw, NULL);
    double t[REPS];
    qf_x86_gemm_s8(pool, isa, &p, x, &xw, NULL, y, scr, sb, NULL); /* warm up */
    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        qf_x86_gemm_s8(pool, isa, &p, x, &xw, NULL, y, scr, sb, NULL);
        t[i] = now_s() - t0;
    }
    free(x), free(w), free(y), free(pw), free(scr);
    return median(t, REPS);
}

typedef struct conv_shape {
    const char *name;
    int batch, c, h, oc, k, stride, pad;
} conv_shape;

static double time_conv(qf_isa isa, qf_threadpool *pool, const conv_shape *s, int wmax,
                        double *macs) {
    qf_ref_conv_params p;
    memset(&p, 0, sizeof p);
    p.batch = s->batch;
    p.in_c = s->c;
    p.in_h = p.in_w = s->h;
    p.out_c = s->oc;
    p.k_h = p.k_w = s->k;
    p.stride_h = p.stride_w = s->stride;
    p.dil_h = p.dil_w = 1;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = s->pad;
    p.groups = 1;
    p.out_h = p.out_w = qf_ref_conv_out_size(s->h, s->k, s->stride, 1, s->pad, s->pad);
    p.in_zp = 3;
    p.w_bits = 8;
    qf_ref_rescale r;
    qf_ref_rescale_init(1.0 / 4096, &r);
    p.rq.mult = &r;
    p.rq.n_mult = 1;
    p.rq.act_min = -128;
    p.rq.act_max = 127;
    const int kk = s->c * s->k * s->k;
    const size_t n_in = (size_t)p.batch * p.in_c * p.in_h * p.in_w;
    const size_t n_out = (size_t)p.batch * p.out_c * p.out_h * p.out_w;
    int8_t *x = malloc(n_in), *w = malloc((size_t)p.out_c * kk), *y = malloc(n_out);
    const qx_layout lay = qf_x86_conv_layout(s->c, s->k * s->k);
    size_t wb = qf_x86_conv_weights_bytes(lay, p.out_c, s->c, s->k * s->k, 1);
    size_t sb = qf_x86_conv2d_s8_scratch_size(&p, lay);
    void *pw = malloc(wb), *scr = malloc(sb);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (int8_t)(i * 7);
    for (size_t i = 0; i < (size_t)p.out_c * kk; i++)
        w[i] = (int8_t)((i * 13) % (size_t)(2 * wmax + 1) - (size_t)wmax);
    qf_x86_weights xw;
    qf_x86_pack_conv_weights(lay, (const uint8_t *)w, p.out_c, s->c, s->k * s->k, 8, 1, pw, &xw,
                             NULL);
    double t[REPS];
    qf_x86_conv2d_s8(pool, isa, &p, x, &xw, NULL, y, scr, sb, NULL);
    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        qf_x86_conv2d_s8(pool, isa, &p, x, &xw, NULL, y, scr, sb, NULL);
        t[i] = now_s() - t0;
    }
    *macs = (double)n_out * kk;
    free(x), free(w), free(y), free(pw), free(scr);
    return median(t, REPS);
}

/* Depthwise (groups == channels, oc == c): the VNNI direct kernel. */
static double time_dw(qf_threadpool *pool, const conv_shape *s, double *macs) {
    qf_ref_conv_params p;
    memset(&p, 0, sizeof p);
    p.batch = s->batch;
    p.in_c = p.out_c = p.groups = s->c;
    p.in_h = p.in_w = s->h;
    p.k_h = p.k_w = s->k;
    p.stride_h = p.stride_w = s->stride;
    p.dil_h = p.dil_w = 1;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = s->pad;
    p.out_h = p.out_w = qf_ref_conv_out_size(s->h, s->k, s->stride, 1, s->pad, s->pad);
    p.in_zp = 3;
    p.w_bits = 8;
    qf_ref_rescale r;
    qf_ref_rescale_init(1.0 / 1024, &r);
    p.rq.mult = &r;
    p.rq.n_mult = 1;
    p.rq.act_min = -128;
    p.rq.act_max = 127;
    const int kk = s->k * s->k;
    const size_t n_in = (size_t)p.batch * p.in_c * p.in_h * p.in_w;
    const size_t n_out = (size_t)p.batch * p.out_c * p.out_h * p.out_w;
    int8_t *x = malloc(n_in), *w = malloc((size_t)p.out_c * kk), *y = malloc(n_out);
    void *pw = malloc(qf_x86_dw_weights_bytes(p.out_c, s->k, s->k));
    for (size_t i = 0; i < n_in; i++)
        x[i] = (int8_t)(i * 7);
    for (size_t i = 0; i < (size_t)p.out_c * kk; i++)
        w[i] = (int8_t)((i * 13) % 255 - 127);
    qf_x86_weights xw;
    qf_x86_pack_dw_weights((const uint8_t *)w, p.out_c, s->k, s->k, 8, pw, &xw, NULL);
    double t[REPS];
    qf_x86_dwconv2d_s8(pool, QF_ISA_AVX512VNNI, &p, x, &xw, NULL, y, NULL);
    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        qf_x86_dwconv2d_s8(pool, QF_ISA_AVX512VNNI, &p, x, &xw, NULL, y, NULL);
        t[i] = now_s() - t0;
    }
    *macs = (double)n_out * kk;
    free(x), free(w), free(y), free(pw);
    return median(t, REPS);
}

/* One row of the kernels table: median t and best_s seconds for macs
 * multiply-accumulates, as fractions of the same ISA's peak at th threads. */
static void print_row(qf_isa isa, const char *name, const char *suffix, int th, double t,
                      double macs, double peak) {
    printf("| %s | %s%s | %d | %.3f | %.1f | %.0f%% | %.3f | %.0f%% |\n", qf_isa_name(isa), name,
           suffix, th, t * 1e3, macs / t * 1e-9, 100 * macs / t / peak, best_s * 1e3,
           100 * macs / best_s / peak);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    const int only_th = argc > 2 ? atoi(argv[2]) : 0;
    if (only) peak_reps = 20;
    const double hz = tsc_hz();
    qf_threadpool *pool = NULL;
    qf_threadpool_create(2, &pool, NULL);
    static const qf_isa isas[] = {QF_ISA_AVX512VNNI, QF_ISA_AVX2};
    double peak[2][3] = {{0}};
    printf("## int8 peak (register-only loops), TSC %.2f GHz\n\n", hz * 1e-9);
    printf("| ISA | threads | GMAC/s | GOP/s | MAC/cycle/core |\n|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++) {
        if (!qf_isa_supported(isas[i])) {
            printf("| %s | - | not supported | | |\n", qf_isa_name(isas[i]));
            continue;
        }
        for (int th = 1; th <= 2; th++) {
            double r = measure_peak(isas[i], th);
            peak[i][th] = r;
            printf("| %s | %d | %.1f | %.1f | %.1f |\n", qf_isa_name(isas[i]), th, r * 1e-9,
                   2 * r * 1e-9, r / hz / th);
        }
    }
    static const conv_shape convs[] = {
        {"conv 3x3 64->64 56x56 b1", 1, 64, 56, 64, 3, 1, 1},
        {"conv 3x3 256->256 14x14 b1", 1, 256, 14, 256, 3, 1, 1},
        {"conv 3x3 512->512 7x7 b1", 1, 512, 7, 512, 3, 1, 1},
        {"conv 1x1 256->64 56x56 b1", 1, 256, 56, 64, 1, 1, 0},
        {"conv 7x7/2 3->64 224 b1", 1, 3, 224, 64, 7, 2, 3},
        {"conv 3x3 64->64 56x56 b16", 16, 64, 56, 64, 3, 1, 1},
        {"conv 1x1 16->96 112x112 b1", 1, 16, 112, 96, 1, 1, 0},
        {"conv 1x1 96->24 56x56 b1", 1, 96, 56, 24, 1, 1, 0},
        {"conv 3x3 3->64 224 b64 (x/2)", 64, 3, 112, 64, 3, 1, 1},
    };
    /* MobileNetV2-like depthwise layers (AVX-512 VNNI only) */
    static const conv_shape dws[] = {
        {"dw 3x3 s1 144ch 56x56 b1", 1, 144, 56, 144, 3, 1, 1},
        {"dw 3x3 s2 96ch 112x112 b1", 1, 96, 112, 96, 3, 2, 1},
    };
    printf("\n## kernels (median of %d), fraction of the same ISA's peak at the same thread "
           "count\n\n",
           REPS);
    printf("| ISA | problem | threads | median ms | GMAC/s | %% of peak | best ms | best %% |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++) {
        if (!qf_x86_isa_usable(isas[i])) continue;
        for (int th = 1; th <= 2; th++) {
            if (only_th && th != only_th) continue;
            qf_threadpool *pl = th == 1 ? NULL : pool;
            double t = 0, macs = 0;
            if (!only || strstr("gemm 512x512x512", only)) {
                t = time_gemm(isas[i], pl, 512, 512, 512, 127);
                macs = 512.0 * 512 * 512;
                print_row(isas[i], "gemm 512x512x512", "", th, t, macs, peak[i][th]);
            }
            for (size_t c = 0; c < sizeof convs / sizeof convs[0]; c++) {
                if (only && !strstr(convs[c].name, only)) continue;
                t = time_conv(isas[i], pl, &convs[c], 127, &macs);
                print_row(isas[i], convs[c].name, "", th, t, macs, peak[i][th]);
            }
            /* AVX2: the same problems with 7-bit weights (plain vpmaddubsw) */
            for (int c = -1; isas[i] == QF_ISA_AVX2 && c < 3; c++) {
                const char *name = c < 0 ? "gemm 512x512x512" : convs[c].name;
                if (only && !strstr(name, only)) continue;
                if (c < 0) {
                    t = time_gemm(isas[i], pl, 512, 512, 512, 63);
                    macs = 512.0 * 512 * 512;
                } else {
                    t = time_conv(isas[i], pl, &convs[c], 63, &macs);
                }
                print_row(isas[i], name, ", 7-bit weights", th, t, macs, peak[i][th]);
            }
            const size_t n_dw = isas[i] == QF_ISA_AVX512VNNI ? sizeof dws / sizeof dws[0] : 0;
            for (size_t c = 0; c < n_dw; c++) {
                if (only && !strstr(dws[c].name, only)) continue;
                t = time_dw(pl, &dws[c], &macs);
                print_row(isas[i], dws[c].name, "", th, t, macs, peak[i][th]);
            }
        }
    }
    qf_threadpool_destroy(pool);
    return 0;
}

#else
int main(void) {
    printf("gemm_peak: x86-64 only\n");
    return 0;
}
#endif
