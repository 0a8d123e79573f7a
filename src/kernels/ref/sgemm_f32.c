/* sgemm_f32.c - portable blocked single-precision GEMM (GotoBLAS layout).
 *
 * op(B) is packed into KC x NC blocks of NR-wide column panels and op(A) into
 * MC x KC blocks of MR-tall row panels, both zero-padded to whole panels, so
 * the micro-kernel always computes a full MR x NR tile with fixed trip counts
 * that the compiler unrolls and vectorizes (no intrinsics: this is the
 * portable reference; ISA-specific kernels live in kernels/x86/).
 */
#include <stdint.h>
#include <string.h>

#include "kernels/ref/sgemm.h"

#define MR 6
#define NR 16
#define MC 120 /* multiple of MR */
#define KC 256
#define NC 2048 /* multiple of NR */

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

size_t qf_sgemm_f32_scratch(size_t m, size_t n, size_t k) {
    size_t mc = m < MC ? round_up(m, MR) : MC;
    size_t nc = n < NC ? round_up(n, NR) : NC;
    size_t kc = k < KC ? k : KC;
    if (kc == 0) kc = 1;
    /* two buffers, each realigned to 64 bytes */
    return (mc * kc + kc * nc) * sizeof(float) + 128;
}

static float *align64(void *p) {
    uintptr_t u = (uintptr_t)p;
    return (float *)((u + 63) & ~(uintptr_t)63);
}

/* Pack rows [0, mc) x cols [0, kc) of op(A) (already offset) into MR-row
 * panels: panel p holds, for each k, MR consecutive row values. */
static void pack_a(bool trans, size_t mc, size_t kc, const float *a, size_t lda, float *dst) {
    for (size_t i0 = 0; i0 < mc; i0 += MR) {
        size_t mr = mc - i0 < MR ? mc - i0 : MR;
        if (!trans) {
            for (size_t i = 0; i < mr; i++) {
                const float *src = a + (i0 + i) * lda;
                for (size_t p = 0; p < kc; p++)
                    dst[p * MR + i] = src[p];
            }
        } else {
            for (size_t p = 0; p < kc; p++) {
                const float *src = a + p * lda + i0;
                for (size_t i = 0; i < mr; i++)
                    dst[p * MR + i] = src[i];
            }
        }
        if (mr < MR)
            for (size_t p = 0; p < kc; p++)
                for (size_t i = mr; i < MR; i++)
                    dst[p * MR + i] = 0.0f;
        dst += MR * kc;
    }
}

/* Pack rows [0, kc) x cols [0, nc) of op(B) into NR-column panels. */
static void pack_b(bool trans, size_t kc, size_t nc, const float *b, size_t ldb, float *dst) {
    for (size_t j0 = 0; j0 < nc; j0 += NR) {
        size_t nr = nc - j0 < NR ? nc - j0 : NR;
        if (!trans) {
            if (nr == NR) {
                for (size_t p = 0; p < kc; p++)
                    memcpy(dst + p * NR, b + p * ldb + j0, NR * 4);
            } else {
                for (size_t p = 0; p < kc; p++) {
                    const float *src = b + p * ldb + j0;
                    size_t j = 0;
                    for (; j < nr; j++)
                        dst[p * NR + j] = src[j];
                    for (; j < NR; j++)
                        dst[p * NR + j] = 0.0f;
                }
            }
        } else {
            for (size_t j = 0; j < nr; j++) {
                const float *src = b + (j0 + j) * ldb;
                for (size_t p = 0; p < kc; p++)
                    dst[p * NR + j] = src[p];
            }
            for (size_t j = nr; j < NR; j++)
                for (size_t p = 0; p < kc; p++)
                    dst[p * NR + j] = 0.0f;
        }
        dst += NR * kc;
    }
}

/* C[0:mr, 0:nr] = alpha * Ap * Bp + beta * C, for one MR x NR tile. */
static void micro_kernel(size_t kc, const float *restrict ap, const float *restrict bp,
                         float *restrict c, size_t ldc, size_t mr, size_t nr, float alpha,
                         float beta) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = 0.0f;
    for (size_t p = 0; p < kc; p++) {
        const float *restrict bv = bp + p * NR;
        const float *restrict av = ap + p * MR;
        for (int i = 0; i < MR; i++) {
            float ai = av[i];
            for (int j = 0; j < NR; j++)
                acc[i][j] += ai * bv[j];
        }
    }
    if (mr == MR && nr == NR) {
        if (beta == 0.0f) {
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++)
                    c[i * ldc + j] = alpha * acc[i][j];
        } else {
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++)
                    c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
        }
        return;
    }
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++) {
            float v = alpha * acc[i][j];
            c[i * ldc + j] = beta == 0.0f ? v : v + beta * c[i * ldc + j];
        }
}

void qf_sgemm_f32(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                  const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                  size_t ldc, void *scratch) {
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
        /* nothing to accumulate: C = beta * C (beta == 0 writes zeros) */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    size_t mc_max = m < MC ? round_up(m, MR) : MC;
    size_t kc_max = k < KC ? k : KC;
    float *apack = align64(scratch);
    float *bpack = align64(apack + mc_max * kc_max);

    for (size_t jc = 0; jc < n; jc += NC) {
        size_t nc = n - jc < NC ? n - jc : NC;
        for (size_t pc = 0; pc < k; pc += KC) {
            size_t kc = k - pc < KC ? k - pc : KC;
            const float *bsrc = trans_b ? b + jc * ldb + pc : b + pc * ldb + jc;
            pack_b(trans_b, kc, nc, bsrc, ldb, bpack);
            float beta_eff = pc == 0 ? beta : 1.0f;
            for (size_t ic = 0; ic < m; ic += MC) {
                size_t mc = m - ic < MC ? m - ic : MC;
                const float *asrc = trans_a ? a + pc * lda + ic : a + ic * lda + pc;
                pack_a(trans_a, mc, kc, asrc, lda, apack);
                for (size_t jr = 0; jr < nc; jr += NR) {
                    size_t nr = nc - jr < NR ? nc - jr : NR;
                    for (size_t ir = 0; ir < mc; ir += MR) {
                        size_t mr = mc - ir < MR ? mc - ir : MR;
                        micro_kernel(kc, apack + ir * kc, bpack + jr * kc,
                                     c + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, beta_eff);
                    }
                }
            }
        }
    }
}
