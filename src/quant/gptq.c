/* gptq.c - GPTQ weight rounding: Hessian accumulation over calibration
 * inputs and the column-by-column rounding with error feedback (gptq.h). */
#include <math.h>
#include <string.h>

#include "base/base.h"
#include "kernels/blas/sgemm_blas.h"
#include "quant/gptq.h"

/* Rows of a chunk of patches multiplied at once: about 4 MiB of floats. */
#define CHUNK_FLOATS ((int64_t)1 << 20)
/* Columns quantized between two trailing (GEMM) updates. */
#define BLOCK 128

size_t qf_gptq_hess_bytes(int64_t groups, int64_t cols) {
    size_t n;
    if (groups <= 0 || cols <= 0 || !qf_mul_size((size_t)groups, (size_t)cols, &n) ||
        !qf_mul_size(n, (size_t)cols, &n) || !qf_mul_size(n, sizeof(double), &n))
        return SIZE_MAX;
    return n;
}

qf_status qf_gptq_hess_init(qf_gptq_hess *hs, const qf_node *n, const int64_t *w_dims, int w_rank,
                            int64_t k, qf_err *err) {
    memset(hs, 0, sizeof *hs);
    hs->node = n;
    hs->groups = 1;
    if (n) {
        qf_status s = qf_spatial_parse(n, &hs->sa, false, false, err);
        if (s) return s;
        if (w_rank < 3 || w_rank > 2 + QF_SPATIAL_MAX)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "gptq: conv weight rank %d", w_rank);
        hs->conv = true;
        hs->groups = qf_node_attr_int(n, "group", 1);
        hs->cin_g = w_dims[1];
        hs->nsp = w_rank - 2;
        hs->cols = hs->cin_g;
        for (int i = 0; i < hs->nsp; i++) {
            hs->kernel[i] = w_dims[2 + i];
            hs->cols *= w_dims[2 + i];
        }
    } else {
        hs->cin_g = hs->cols = k;
    }
    if (hs->groups < 1 || hs->cols < 1)
        return qf_errf(err, QF_ERR_SHAPE, "gptq: %lld groups of %lld columns",
                       (long long)hs->groups, (long long)hs->cols);
    size_t hb = qf_gptq_hess_bytes(hs->groups, hs->cols);
    hs->xrows = QF_MAX((int64_t)16, CHUNK_FLOATS / hs->cols);
    hs->h = hb == SIZE_MAX ? NULL : qf_calloc(1, hb);
    hs->xbuf = qf_malloc(sizeof(float) * (size_t)(hs->xrows * hs->cols));
    hs->hbuf = qf_malloc(sizeof(float) * (size_t)(hs->cols * hs->cols));
    if (!hs->h || !hs->xbuf || !hs->hbuf) {
        qf_gptq_hess_free(hs);
        return qf_errf(err, QF_ERR_NOMEM, "gptq: out of memory for a %lld-column Hessian",
                       (long long)hs->cols);
    }
    return QF_OK;
}

void qf_gptq_hess_free(qf_gptq_hess *hs) {
    if (!hs) return;
    qf_free(hs->h);
    qf_free(hs->xbuf);
    qf_free(hs->hbuf);
    hs->h = NULL;
    hs->xbuf = hs->hbuf = NULL;
}

/* h += X^T X for the first `rows` rows of xbuf. */
static void flush(qf_gptq_hess *hs, double *h, int64_t rows) {
    if (rows <= 0) return;
    int64_t K = hs->cols;
    qf_sgemm_f32_blas(1, true, false, (size_t)K, (size_t)K, (size_t)rows, 1.0f, hs->xbuf, (size_t)K,
                      hs->xbuf, (size_t)K, 0.0f, hs->hbuf, (size_t)K);
    for (int64_t i = 0; i < K * K; i++)
        h[i] += hs->hbuf[i];
}

static qf_status add_conv(qf_gptq_hess *hs, const qf_tensor *x, qf_err *err) {
    char d[200];
    if (x->rank != 2 + hs->nsp || x->dims[1] != hs->groups * hs->cin_g)
        return qf_errf(err, QF_ERR_SHAPE, "gptq: %s: input of rank %d with %lld channels",
                       qf_node_desc(hs->node, d, sizeof d), x->rank,
                       x->rank > 1 ? (long long)x->dims[1] : 0LL);
    qf_spatial_geom g;
    qf_status s = qf_spatial_resolve(hs->node, &hs->sa, hs->nsp, x->dims + 2, hs->kernel, &g, err);
    if (s) return s;
    int64_t in_plane = qf_spatial_prod(g.in), K = hs->cols;
    const float *xd = x->data;
    for (int64_t gi = 0; gi < hs->groups; gi++) {
        double *h = hs->h + gi * K * K;
        int64_t used = 0;
        for (int64_t b = 0; b < x->dims[0]; b++) {
            const float *img = xd + (b * x->dims[1] + gi * hs->cin_g) * in_plane;
            for (int64_t o0 = 0; o0 < g.out[0]; o0++)
                for (int64_t o1 = 0; o1 < g.out[1]; o1++)
                    for (int64_t o2 = 0; o2 < g.out[2]; o2++) {
                        float *row = hs->xbuf + used * K;
                        int64_t col = 0;
                        for (int64_t c = 0; c < hs->cin_g; c++) {
                            const float *pl = img + c * in_plane;
                            for (int64_t k0 = 0; k0 < g.kernel[0]; k0++) {
                                int64_t i0 = o0 * g.stride[0] - g.pad_b[0] + k0 * g.dil[0];
                                for (int64_t k1 = 0; k1 < g.kernel[1]; k1++) {
                                    int64_t i1 = o1 * g.stride[1] - g.pad_b[1] + k1 * g.dil[1];
                                    for (int64_t k2 = 0; k2 < g.kernel[2]; k2++) {
                                        int64_t i2 = o2 * g.stride[2] - g.pad_b[2] + k2 * g.dil[2];
                                        bool in = i0 >= 0 && i0 < g.in[0] && i1 >= 0 &&
                                                  i1 < g.in[1] && i2 >= 0 && i2 < g.in[2];
                                        row[col++] =
                                            in ? pl[(i0 * g.in[1] + i1) * g.in[2] + i2] : 0.0f;
                                    }
                                }
                            }
                        }
                        if (++used == hs->xrows) {
                            flush(hs, h, used);
                            used = 0;
                        }
                    }
        }
        flush(hs, h, used);
    }
    hs->rows += x->dims[0] * qf_spatial_prod(g.out);
    return QF_OK;
}

qf_status qf_gptq_hess_add(qf_gptq_hess *hs, const qf_tensor *x, qf_err *err) {
    if (!hs || !hs->h || !x || x->dtype != QF_DT_F32 || (!x->data && qf_tensor_numel(x) > 0))
        return qf_errf(err, QF_ERR_INVALID_ARG, "gptq: bad Hessian input");
    if (hs->conv) return add_conv(hs, x, err);
    int64_t K = hs->cols;
    if (x->rank < 1 || x->dims[x->rank - 1] != K)
        return qf_errf(err, QF_ERR_SHAPE, "gptq: input's last dimension is not %lld", (long long)K);
    int64_t rows = qf_tensor_numel(x) / K;
    const float *xd = x->data;
    for (int64_t r0 = 0; r0 < rows; r0 += hs->xrows) {
        int64_t n = QF_MIN(hs->xrows, rows - r0);
        memcpy(hs->xbuf, xd + r0 * K, sizeof(float) * (size_t)(n * K));
        flush(hs, hs->h, n);
    }
    hs->rows += rows;
    return QF_OK;
}

/* ---- rounding ------------------------------------------------------------ */

/* sum a[k] * b[k], k < n, in four interleaved partial sums (a fixed order:
 * the result does not depend on the machine) */
static double dot(const double *restrict a, const double *restrict b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; k++)
        s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* y[k] += f * x[k], k < n */
static void axpy(double *restrict y, const double *restrict x, double f, int64_t n) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        y[k] += f * x[k];
        y[k + 1] += f * x[k + 1];
        y[k + 2] += f * x[k + 2];
        y[k + 3] += f * x[k + 3];
    }
    for (; k < n; k++)
        y[k] += f * x[k];
}

/* Rows handled together by the factorisations below: each earlier row is
 * then read from memory once per RB rows instead of once per row (the
 * matrices are far larger than the caches: 79 MB at 3136 columns). */
#define RB 32

/* In-place lower Cholesky factor of the n x n matrix a (row-major; only the
 * lower triangle is read), row-oriented (Cholesky-Banachiewicz) in blocks of
 * RB rows; false when a pivot is not positive. */
static bool cholesky(double *a, int64_t n) {
    for (int64_t i0 = 0; i0 < n; i0 += RB) {
        int64_t i1 = QF_MIN(n, i0 + RB);
        for (int64_t j = 0; j < i1; j++) {
            const double *aj = a + j * n;
            for (int64_t i = QF_MAX(i0, j); i < i1; i++) {
                double *ai = a + i * n;
                double v = ai[j] - dot(ai, aj, j);
                if (i == j) {
                    if (!(v > 0)) return false;
                    ai[j] = sqrt(v);
                } else {
                    ai[j] = v / aj[j];
                }
            }
        }
    }
    return true;
}

/* U, upper triangular with H^-1 = U^T U, from the n x n Hessian (damped in
 * a copy). With J the order-reversing permutation, chol(J H J) = L gives
 * H = R R^T for the upper R = J L J, so H^-1 = (R^-1)^T R^-1 and U = R^-1
 * = J L^-1 J. u receives U (row-major, zero below the diagonal); acc holds
 * RB * n doubles. */
static bool upper_inverse_factor(const double *h, int64_t n, double damp_rel, double *u,
                                 double *acc) {
    double mean = 0;
    for (int64_t i = 0; i < n; i++)
        mean += h[i * n + i];
    mean /= (double)n;
    if (!(mean > 0)) return false;
    /* a = J H J, damped; a dead input (zero diagonal) gets a unit pivot */
    double *a = u;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            a[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
    for (int64_t i = 0; i < n; i++) {
        if (a[i * n + i] == 0) a[i * n + i] = 1;
        a[i * n + i] += damp_rel * mean;
    }
    if (!cholesky(a, n)) return false;
    /* L^-1 in place (lower), in blocks of RB rows: row i of L^-1 is
     * -(sum_{k<i} L[i][k] * row k of L^-1) / L[i][i] left of the diagonal,
     * 1 / L[i][i] on it. acc holds the block's sums (contiguous axpys);
     * rows before the block are inverted already, rows inside it are
     * finished in order. */
    for (int64_t i0 = 0; i0 < n; i0 += RB) {
        int64_t i1 = QF_MIN(n, i0 + RB);
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = 0; j < i; j++)
                acc[(i - i0) * n + j] = 0;
        for (int64_t k = 0; k < i0; k++)
            for (int64_t i = i0; i < i1; i++)
                axpy(acc + (i - i0) * n, a + k * n, a[i * n + k], k + 1);
        for (int64_t i = i0; i < i1; i++) {
            double *ai = a + i * n, *ri = acc + (i - i0) * n;
            for (int64_t k = i0; k < i; k++)
                axpy(ri, a + k * n, ai[k], k + 1);
            double d = 1.0 / ai[i];
            for (int64_t j = 0; j < i; j++)
                ai[j] = -ri[j] * d;
            ai[i] = d;
        }
    }
    /* U = J L^-1 J: reverse both axes in place (the strict upper part holds
     * leftovers of J H J, swapped below and then cleared) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            double t = a[i * n + j];
            a[i * n + j] = a[(n - 1 - i) * n + (n - 1 - j)];
            a[(n - 1 - i) * n + (n - 1 - j)] = t;
        }
    for (int64_t i = 0; i < n / 2; i++) {
        double t = a[i * n + i];
        a[i * n + i] = a[(n - 1 - i) * n + (n - 1 - i)];
        a[(n - 1 - i) * n + (n - 1 - i)] = t;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            u[i * n + j] = 0;
    return true;
}

static inline int8_t quant1(double w, float s, int32_t zp, int32_t qmin, int32_t qmax) {
    double x = nearbyint(w / (double)s) + zp;
    return (int8_t)QF_MAX((double)qmin, QF_MIN((double)qmax, x));
}

qf_status qf_gptq_round(const float *w, int64_t rows, int64_t cols, const double *h,
                        const float *scales, const int32_t *zps, int32_t qmin, int32_t qmax,
                        int8_t *q, qf_err *err) {
    if (rows < 0 || cols < 1 || !w || !h || !scales || !q || qmin > qmax || qmin < -128 ||
        qmax > 127)
        return qf_errf(err, QF_ERR_INVALID_ARG, "gptq: bad rounding arguments");
    size_t nn;
    if (!qf_mul_size((size_t)cols, (size_t)cols, &nn))
        return qf_errf(err, QF_ERR_NOMEM, "gptq: %lld columns", (long long)cols);
    double *u = qf_malloc(sizeof(double) * nn);
    float *uf = qf_malloc(sizeof(float) * nn);
    float *wk = qf_malloc(sizeof(float) * (size_t)(rows * cols + 1));
    float *e = qf_malloc(sizeof(float) * (size_t)(rows * BLOCK + 1));
    double *tmp = qf_malloc(sizeof(double) * (size_t)cols * RB);
    if (!u || !uf || !wk || !e || !tmp) {
        qf_free(tmp);
        qf_free(u);
        qf_free(uf);
        qf_free(wk);
        qf_free(e);
        return qf_errf(err, QF_ERR_NOMEM, "gptq: out of memory for %lld x %lld weights",
                       (long long)rows, (long long)cols);
    }
    /* a Hessian that is not positive definite even damped (or all zero: no
     * input ever reached the layer) leaves nearest rounding */
    bool ok = false;
    for (double damp = QF_GPTQ_DAMP; !ok && damp <= 100.0; damp *= 10)
        ok = upper_inverse_factor(h, cols, damp, u, tmp);
    memcpy(wk, w, sizeof(float) * (size_t)(rows * cols));
    if (!ok) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < cols; k++)
                q[r * cols + k] = quant1(wk[r * cols + k], scales[r], zps ? zps[r] : 0, qmin, qmax);
    } else {
        for (size_t i = 0; i < nn; i++)
            uf[i] = (float)u[i];
        for (int64_t i1 = 0; i1 < cols; i1 += BLOCK) {
            int64_t i2 = QF_MIN(cols, i1 + BLOCK), bw = i2 - i1;
            for (int64_t r = 0; r < rows; r++) {
                float *wr = wk + r * cols, *er = e + r * bw;
                float s = scales[r];
                int32_t zp = zps ? zps[r] : 0;
                for (int64_t i = i1; i < i2; i++) {
                    int8_t qi = quant1(wr[i], s, zp, qmin, qmax);
                    q[r * cols + i] = qi;
                    double deq = (double)(qi - zp) * (double)s;
                    const double *ui = u + i * cols;
                    double ei = ((double)wr[i] - deq) / ui[i];
                    er[i - i1] = (float)ei;
                    for (int64_t j = i + 1; j < i2; j++)
                        wr[j] -= (float)(ei * ui[j]);
                }
            }
            if (i2 < cols) /* W[:, i2:] -= E [rows, bw] * U[i1:i2, i2:] */
                qf_sgemm_f32_blas(1, false, false, (size_t)rows, (size_t)(cols - i2), (size_t)bw,
                                  -1.0f, e, (size_t)bw, uf + i1 * cols + i2, (size_t)cols, 1.0f,
                                  wk + i2, (size_t)cols);
        }
    }
    qf_free(u);
    qf_free(uf);
    qf_free(wk);
    qf_free(e);
    qf_free(tmp);
    return QF_OK;
}
