/* grad_conv.c - backward of Conv and ConvTranspose (1-D..3-D, groups,
 * depthwise, strides, pads, dilations) through im2col and OpenBLAS.
 *
 * Both ops relate an "image" I and a grid of "positions" P by
 *   image index = position * stride - pad_begin + tap * dilation
 * (Conv: I = X, P = Y; ConvTranspose: I = Y, P = X). im2col gathers, for one
 * group, the (channel, tap) x position matrix of I; col2im scatter-adds it
 * back. Conv:  dW_g += dY_g col(X)^T,  dcol = W_g^T dY_g -> col2im -> dX.
 * ConvTranspose: col = col(dY),  dX_g += W_g col,  dW_g += X_g col^T.
 * Conv's backward puts the col matrices of a chunk of images side by side
 * so each GEMM is large, chunks running in parallel (scratch: a slice of
 * about 2 MiB plus the chunk's dY per task, see conv_slice_task); depthwise
 * convolutions run direct loops instead of tiny GEMMs.
 */
#include <string.h>

#include "base/threadpool.h"
#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/spatial.h"
#include "train/grad.h"

typedef struct win {
    int64_t img[QF_SPATIAL_MAX], pos[QF_SPATIAL_MAX], k[QF_SPATIAL_MAX];
    int64_t st[QF_SPATIAL_MAX], dil[QF_SPATIAL_MAX], pb[QF_SPATIAL_MAX];
} win;

static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* Valid positions [lo, hi) of the innermost axis for tap k2, shared by all
 * rows: index base + p2 * stride stays inside the image there. */
static void inner_range(const win *w, int64_t k2, int64_t *base, int64_t *lo, int64_t *hi) {
    *base = k2 * w->dil[2] - w->pb[2];
    qf_spatial_valid_range(*base, w->st[2], w->img[2], w->pos[2], lo, hi);
}

/* col[(c*KK + tap) * ld + p] = img[c][...] (0 in padding), c < ch; ld >=
 * the number of positions, so several images can sit side by side. */
static void im2col(const win *w, int64_t ch, const float *img, float *col, int64_t ld) {
    int64_t is = prod3(w->img), n2 = w->pos[2];
    for (int64_t c = 0; c < ch; c++)
        for (int64_t k0 = 0; k0 < w->k[0]; k0++)
            for (int64_t k1 = 0; k1 < w->k[1]; k1++)
                for (int64_t k2 = 0; k2 < w->k[2]; k2++, col += ld) {
                    const float *src = img + c * is;
                    int64_t base, lo, hi;
                    inner_range(w, k2, &base, &lo, &hi);
                    float *dst = col;
                    for (int64_t p0 = 0; p0 < w->pos[0]; p0++) {
                        int64_t i0 = p0 * w->st[0] - w->pb[0] + k0 * w->dil[0];
                        for (int64_t p1 = 0; p1 < w->pos[1]; p1++, dst += n2) {
                            int64_t i1 = p1 * w->st[1] - w->pb[1] + k1 * w->dil[1];
                            if (i0 < 0 || i0 >= w->img[0] || i1 < 0 || i1 >= w->img[1]) {
                                memset(dst, 0, sizeof(float) * (size_t)n2);
                                continue;
                            }
                            int64_t rb = (i0 * w->img[1] + i1) * w->img[2] + base;
                            if (w->st[2] == 1) {
                                qf_spatial_gather_row(dst, src + (rb + lo), lo, hi, n2);
                            } else {
                                for (int64_t p2 = 0; p2 < lo; p2++)
                                    dst[p2] = 0.0f;
                                for (int64_t p2 = lo; p2 < hi; p2++)
                                    dst[p2] = src[rb + p2 * w->st[2]];
                                for (int64_t p2 = hi; p2 < n2; p2++)
                                    dst[p2] = 0.0f;
                            }
                        }
                    }
                }
}

/* img[c][...] += col[...] over every (channel, tap, position); the
 * adjoint of im2col, same layout. */
static void col2im(const win *w, int64_t ch, const float *col, int64_t ld, float *img) {
    int64_t is = prod3(w->img), n2 = w->pos[2];
    for (int64_t c = 0; c < ch; c++)
        for (int64_t k0 = 0; k0 < w->k[0]; k0++)
            for (int64_t k1 = 0; k1 < w->k[1]; k1++)
                for (int64_t k2 = 0; k2 < w->k[2]; k2++, col += ld) {
                    float *dst = img + c * is;
                    int64_t base, lo, hi;
                    inner_range(w, k2, &base, &lo, &hi);
                    const float *row = col;
                    for (int64_t p0 = 0; p0 < w->pos[0]; p0++) {
                        int64_t i0 = p0 * w->st[0] - w->pb[0] + k0 * w->dil[0];
                        for (int64_t p1 = 0; p1 < w->pos[1]; p1++, row += n2) {
                            int64_t i1 = p1 * w->st[1] - w->pb[1] + k1 * w->dil[1];
                            if (i0 < 0 || i0 >= w->img[0] || i1 < 0 || i1 >= w->img[1]) continue;
                            int64_t rb = (i0 * w->img[1] + i1) * w->img[2] + base;
                            if (w->st[2] == 1) {
                                if (hi > lo) qf_grad_add(dst + (rb + lo), row + lo, hi - lo);
                            } else {
                                for (int64_t p2 = lo; p2 < hi; p2++)
                                    dst[rb + p2 * w->st[2]] += row[p2];
                            }
                        }
                    }
                }
}

/* Floats of col matrix per backward chunk: images are processed in groups
 * whose col matrices fit this budget (2 MiB, so the matrix im2col writes is
 * still in cache when the GEMM reads it), one GEMM per chunk. */
#define COL_BUDGET ((int64_t)1 << 19)
/* Most tasks (scratch slices) the backward runs in parallel. */
#define CONV_SLICES 4

static int64_t chunk_images(int64_t n, int64_t rows, int64_t ps) {
    int64_t per = rows * ps > 0 ? rows * ps : 1;
    int64_t c = COL_BUDGET / per;
    if (c < 1) c = 1;
    return c < n ? c : (n > 0 ? n : 1);
}

/* ---- Conv --------------------------------------------------------------- */
typedef struct conv_geo {
    win w;
    int64_t n, c, m, group, cg, mg, kk;
} conv_geo;

static qf_status conv_geo_of(const qf_node *n, const qf_tensor *in, int n_in, conv_geo *cg,
                             qf_err *err) {
    char d[200];
    if (n_in < 2 || in[0].dtype != QF_DT_F32 || in[1].dtype != QF_DT_F32 || in[0].rank < 3 ||
        in[1].rank != in[0].rank)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs float X and W of rank >= 3",
                       qf_node_desc(n, d, sizeof d));
    qf_spatial_attrs at;
    qf_spatial_geom g;
    qf_status s = qf_spatial_parse(n, &at, false, false, err);
    if (s) return s;
    const qf_tensor *x = &in[0], *w = &in[1];
    s = qf_spatial_resolve(n, &at, x->rank - 2, x->dims + 2, w->dims + 2, &g, err);
    if (s) return s;
    memset(cg, 0, sizeof *cg);
    cg->group = qf_node_attr_int(n, "group", 1);
    cg->n = x->dims[0];
    cg->c = x->dims[1];
    cg->m = w->dims[0];
    if (cg->group < 1 || cg->c % cg->group || cg->m % cg->group)
        return qf_errf(err, QF_ERR_SHAPE, "%s: channels do not divide into groups",
                       qf_node_desc(n, d, sizeof d));
    cg->cg = cg->c / cg->group;
    cg->mg = cg->m / cg->group;
    for (int a = 0; a < QF_SPATIAL_MAX; a++) {
        cg->w.img[a] = g.in[a];
        cg->w.pos[a] = g.out[a];
        cg->w.k[a] = g.kernel[a];
        cg->w.st[a] = g.stride[a];
        cg->w.dil[a] = g.dil[a];
        cg->w.pb[a] = g.pad_b[a];
    }
    cg->kk = prod3(cg->w.k);
    return QF_OK;
}

/* Floats of one task's scratch slice: col (rows x nb*ps), the chunk's dY
 * gathered as Mg x nb*ps, and the task's private dW (M x rows). */
static bool conv_slice_floats(const conv_geo *cg, int64_t chunk, size_t *out) {
    int64_t rows = cg->cg * cg->kk, ps = prod3(cg->w.pos);
    size_t f1, f2, f3, t;
    if (!qf_mul_size((size_t)rows, (size_t)(chunk * ps), &f1) ||
        !qf_mul_size((size_t)cg->mg, (size_t)(chunk * ps), &f2) ||
        !qf_mul_size((size_t)cg->m, (size_t)rows, &f3) || !qf_add_size(f1, f2, &t) ||
        !qf_add_size(t, f3, &t) || !qf_add_size(t, 15, &t))
        return false;
    *out = t / 16 * 16; /* slices stay 64-byte aligned */
    return true;
}

static size_t conv_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                           int n_out) {
    conv_geo cg;
    if (conv_geo_of(n, in, n_in, &cg, NULL)) return 0;
    int64_t nb = chunk_images(cg.n, cg.cg * cg.kk, prod3(cg.w.pos));
    size_t f, b;
    if (!conv_slice_floats(&cg, nb, &f) || !qf_mul_size(f, CONV_SLICES * sizeof(float), &b))
        return 0;
    return b;
}

/* One input channel per group (depthwise, channel multiplier mg): direct
 * loops over taps instead of tiny GEMMs per channel. dx/dw may be NULL. */
static void depthwise_backward(const win *w, const float *x, const float *wk, const float *dy,
                               float *dx, float *dw, int64_t mg) {
    int64_t kk = prod3(w->k);
    for (int64_t m = 0; m < mg; m++) {
        const float *dym = dy + m * prod3(w->pos);
        const float *wm = wk + m * kk;
        float *dwm = dw ? dw + m * kk : NULL;
        int64_t tap = 0;
        for (int64_t k0 = 0; k0 < w->k[0]; k0++)
            for (int64_t k1 = 0; k1 < w->k[1]; k1++)
                for (int64_t k2 = 0; k2 < w->k[2]; k2++, tap++) {
                    double acc = 0.0;
                    const float *g = dym;
                    int64_t lo, hi;
                    qf_spatial_valid_range(k2 * w->dil[2] - w->pb[2], w->st[2], w->img[2],
                                           w->pos[2], &lo, &hi);
                    for (int64_t p0 = 0; p0 < w->pos[0]; p0++) {
                        int64_t i0 = p0 * w->st[0] - w->pb[0] + k0 * w->dil[0];
                        for (int64_t p1 = 0; p1 < w->pos[1]; p1++, g += w->pos[2]) {
                            int64_t i1 = p1 * w->st[1] - w->pb[1] + k1 * w->dil[1];
                            if (i0 < 0 || i0 >= w->img[0] || i1 < 0 || i1 >= w->img[1]) continue;
                            int64_t row = (i0 * w->img[1] + i1) * w->img[2];

                            /* row base so that index = rb + p2 * stride */
                            int64_t rb = row - w->pb[2] + k2 * w->dil[2], st = w->st[2];
                            float racc = 0.0f, wv = wm[tap];
                            for (int64_t p2 = lo; p2 < hi; p2++)
                                racc += x[rb + p2 * st] * g[p2];
                            acc += racc;
                            if (dx)
                                for (int64_t p2 = lo; p2 < hi; p2++)
                                    dx[rb + p2 * st] += wv * g[p2];
                        }
                    }
                    if (dwm) dwm[tap] += (float)acc;
                }
    }
}

/* The conv backward's parallel work: depthwise convolutions one group per
 * task; the others as chunks of images dealt out round-robin to at most
 * CONV_SLICES tasks, each with its own scratch slice, single-threaded GEMMs
 * and a private dW that is summed into dW at the end. One pool call per
 * node keeps synchronisations few (each can stall on a descheduled worker
 * when the machine is busy). */
typedef struct conv_job {
    const conv_geo *cg;
    const float *x, *w, *dy;
    float *dx, *dw, *slices;
    size_t slice_floats;
    int64_t chunk, n_tasks, is, ps, rows;
} conv_job;

static void conv_depthwise_task(void *ctx, int64_t g, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const conv_geo *cg = j->cg;
    for (int64_t b = 0; b < cg->n; b++)
        depthwise_backward(&cg->w, j->x + (b * cg->c + g) * j->is, j->w + g * cg->mg * j->rows,
                           j->dy + (b * cg->m + g * cg->mg) * j->ps,
                           j->dx ? j->dx + (b * cg->c + g) * j->is : NULL,
                           j->dw ? j->dw + g * cg->mg * j->rows : NULL, cg->mg);
}

/* Images [b0, b0 + nb) of group g: dW_g += dY col^T, dX += col2im(W_g^T dY). */
static void conv_chunk(const conv_job *j, int64_t b0, int64_t nb, int64_t g, float *col, float *dyt,
                       float *dwp) {
    const conv_geo *cg = j->cg;
    int64_t ps = j->ps, rows = j->rows, ld = nb * ps;
    for (int64_t i = 0; i < nb; i++)
        for (int64_t m = 0; m < cg->mg; m++)
            memcpy(dyt + m * ld + i * ps, j->dy + ((b0 + i) * cg->m + g * cg->mg + m) * ps,
                   sizeof(float) * (size_t)ps);
    if (j->dw) {
        for (int64_t i = 0; i < nb; i++)
            im2col(&cg->w, cg->cg, j->x + ((b0 + i) * cg->c + g * cg->cg) * j->is, col + i * ps,
                   ld);
        qf_sgemm_f32_blas(1, false, true, (size_t)cg->mg, (size_t)rows, (size_t)ld, 1.0f, dyt,
                          (size_t)ld, col, (size_t)ld, 1.0f, dwp + g * cg->mg * rows, (size_t)rows);
    }
    if (j->dx) {
        qf_sgemm_f32_blas(1, true, false, (size_t)rows, (size_t)ld, (size_t)cg->mg, 1.0f,
                          j->w + g * cg->mg * rows, (size_t)rows, dyt, (size_t)ld, 0.0f, col,
                          (size_t)ld);
        for (int64_t i = 0; i < nb; i++)
            col2im(&cg->w, cg->cg, col + i * ps, ld,
                   j->dx + ((b0 + i) * cg->c + g * cg->cg) * j->is);
    }
}

static void conv_slice_task(void *ctx, int64_t t, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const conv_geo *cg = j->cg;
    float *col = j->slices + (size_t)t * j->slice_floats;
    float *dyt = col + j->rows * j->chunk * j->ps;
    float *dwp = dyt + cg->mg * j->chunk * j->ps;
    if (j->dw) memset(dwp, 0, sizeof(float) * (size_t)(cg->m * j->rows));
    for (int64_t b0 = t * j->chunk; b0 < cg->n; b0 += j->n_tasks * j->chunk) {
        int64_t nb = cg->n - b0 < j->chunk ? cg->n - b0 : j->chunk;
        for (int64_t g = 0; g < cg->group; g++)
            conv_chunk(j, b0, nb, g, col, dyt, dwp);
    }
}

static qf_status conv_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data, *dw = a->d_in[1].data;
    float *db = a->n_in > 2 ? a->d_in[2].data : NULL;
    if (!dy || (!dx && !dw && !db)) return QF_OK;
    conv_geo cg;
    qf_status s = conv_geo_of(a->node, a->in, a->n_in, &cg, err);
    if (s) return s;
    qf_threadpool *pool = a->ctx ? a->ctx->pool : NULL;
    int64_t is = prod3(cg.w.img), ps = prod3(cg.w.pos), rows = cg.cg * cg.kk;
    if (db)
        for (int64_t b = 0; b < cg.n; b++)
            for (int64_t m = 0; m < cg.m; m++)
                db[m] += qf_grad_sum(dy + (b * cg.m + m) * ps, ps);
    if ((!dx && !dw) || rows == 0 || ps == 0 || cg.mg == 0 || cg.n == 0) return QF_OK;
    conv_job j = {.cg = &cg,
                  .x = a->in[0].data,
                  .w = a->in[1].data,
                  .dy = dy,
                  .dx = dx,
                  .dw = dw,
                  .is = is,
                  .ps = ps,
                  .rows = rows};
    if (cg.cg == 1 && cg.group > 1) {
        qf_parallel_for(pool, cg.group, conv_depthwise_task, &j);
        return QF_OK;
    }
    j.chunk = chunk_images(cg.n, rows, ps);
    size_t total;
    /* the same sizes as conv_scratch, which returned 0 if they overflow */
    if (!conv_slice_floats(&cg, j.chunk, &j.slice_floats) ||
        !qf_mul_size(j.slice_floats, CONV_SLICES * sizeof(float), &total) || !a->scratch) {
        char d[200];
        return qf_errf(err, QF_ERR_NOMEM, "%s: backward scratch size overflows",
                       qf_node_desc(a->node, d, sizeof d));
    }
    j.slices = a->scratch;
    int64_t chunks = (cg.n + j.chunk - 1) / j.chunk;
    j.n_tasks = qf_threadpool_size(pool);
    if (j.n_tasks > CONV_SLICES) j.n_tasks = CONV_SLICES;
    if (j.n_tasks > chunks) j.n_tasks = chunks;
    qf_parallel_for(pool, j.n_tasks, conv_slice_task, &j);
    if (dw) /* the tasks' private dW, in task order (deterministic) */
        for (int64_t t = 0; t < j.n_tasks; t++)
            qf_grad_add(dw,
                        j.slices + (size_t)t * j.slice_floats + rows * j.chunk * ps +
                            cg.mg * j.chunk * ps,
                        cg.m * rows);
    return QF_OK;
}

const qf_grad_def qf_graddef_conv = {
    .diff_inputs = 7, .scratch = conv_scratch, .backward = conv_backward};

/* ---- ConvTranspose ------------------------------------------------------ */
/* Begin padding per axis, as the forward derives it (ONNX formulas). */
static qf_status convt_geo_of(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *y,
                              conv_geo *cg, qf_err *err) {
    char d[200];
    if (n_in < 2 || in[0].dtype != QF_DT_F32 || in[1].dtype != QF_DT_F32 || in[0].rank < 3 ||
        in[1].rank != in[0].rank || y->rank != in[0].rank)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs float X and W of rank >= 3",
                       qf_node_desc(n, d, sizeof d));
    qf_spatial_attrs at;
    qf_status s = qf_spatial_parse(n, &at, false, false, err);
    if (s) return s;
    const qf_tensor *x = &in[0], *w = &in[1];
    int nsp = x->rank - 2, off = QF_SPATIAL_MAX - nsp;
    if (nsp > QF_SPATIAL_MAX)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: too many spatial axes",
                       qf_node_desc(n, d, sizeof d));
    memset(cg, 0, sizeof *cg);
    cg->group = qf_node_attr_int(n, "group", 1);
    cg->n = x->dims[0];
    cg->c = x->dims[1];
    if (cg->group < 1 || cg->c % cg->group || w->dims[0] != cg->c)
        return qf_errf(err, QF_ERR_SHAPE, "%s: channels do not divide into groups",
                       qf_node_desc(n, d, sizeof d));
    cg->cg = cg->c / cg->group;
    cg->mg = w->dims[1];
    cg->m = cg->mg * cg->group;
    const int64_t *opv = NULL, *osv = NULL;
    int nop = qf_node_attr_ints(n, "output_padding", &opv);
    int nos = qf_node_attr_ints(n, "output_shape", &osv);
    for (int a = 0; a < QF_SPATIAL_MAX; a++) {
        cg->w.img[a] = cg->w.pos[a] = cg->w.k[a] = cg->w.st[a] = cg->w.dil[a] = 1;
        cg->w.pb[a] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int ax = off + i;
        int64_t in_sz = x->dims[2 + i], k = w->dims[2 + i];
        int64_t st = at.n_strides ? at.strides[i] : 1, dl = at.n_dilations ? at.dilations[i] : 1;
        int64_t op = nop == nsp ? opv[i] : 0;
        int64_t full = st * (in_sz - 1) + op + (k - 1) * dl + 1, pb = 0, total = 0;
        bool upper = at.auto_pad == QF_AUTO_PAD_SAME_UPPER;
        bool have_total = false;
        if (nos == nsp || nos == nsp + 2) {
            total = full - osv[nos - nsp + i];
            have_total = true;
        } else if (at.auto_pad == QF_AUTO_PAD_SAME_UPPER || at.auto_pad == QF_AUTO_PAD_SAME_LOWER) {
            total = full - in_sz * st;
            have_total = true;
        } else if (at.auto_pad != QF_AUTO_PAD_VALID) {
            pb = at.n_pads ? at.pads[i] : 0;
        }
        if (have_total) pb = total < 0 ? 0 : (upper ? total / 2 : total - total / 2);
        cg->w.img[ax] = y->dims[2 + i];
        cg->w.pos[ax] = in_sz;
        cg->w.k[ax] = k;
        cg->w.st[ax] = st;
        cg->w.dil[ax] = dl;
        cg->w.pb[ax] = pb;
    }
    cg->kk = prod3(cg->w.k);
    return QF_OK;
}

static size_t convt_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out) {
    conv_geo cg;
    if (n_out < 1 || convt_geo_of(n, in, n_in, &out[0], &cg, NULL)) return 0;
    size_t rows, b;
    if (!qf_mul_size((size_t)(cg.mg * cg.kk), (size_t)prod3(cg.w.pos), &rows) ||
        !qf_mul_size(rows, sizeof(float), &b))
        return 0;
    return b;
}

static qf_status convt_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data, *dw = a->d_in[1].data;
    float *db = a->n_in > 2 ? a->d_in[2].data : NULL;
    if (!dy || (!dx && !dw && !db)) return QF_OK;
    conv_geo cg;
    qf_status s = convt_geo_of(a->node, a->in, a->n_in, &a->out[0], &cg, err);
    if (s) return s;
    int64_t ys = prod3(cg.w.img), xs = prod3(cg.w.pos), rows = cg.mg * cg.kk;
    const float *x = a->in[0].data, *w = a->in[1].data;
    float *col = a->scratch;
    for (int64_t b = 0; b < cg.n; b++) {
        for (int64_t g = 0; g < cg.group; g++) {
            const float *dyg = dy + (b * cg.m + g * cg.mg) * ys;
            if (db)
                for (int64_t m = 0; m < cg.mg; m++) {
                    double sum = 0.0;
                    for (int64_t p = 0; p < ys; p++)
                        sum += dyg[m * ys + p];
                    db[g * cg.mg + m] += (float)sum;
                }
            if (rows == 0 || xs == 0 || cg.cg == 0 || (!dx && !dw)) continue;
            im2col(&cg.w, cg.mg, dyg, col, xs);
            const float *wg = w + g * cg.cg * rows;
            if (dx) /* dX_g (Cg x X) += W_g (Cg x rows) col (rows x X) */
                qf_grad_sgemm(a->ctx, false, false, (int)cg.cg, (int)xs, (int)rows, 1.0f, wg,
                              (int)rows, col, (int)xs, 1.0f, dx + (b * cg.c + g * cg.cg) * xs,
                              (int)xs);
            if (dw) /* dW_g (Cg x rows) += X_g (Cg x X) col^T */
                qf_grad_sgemm(a->ctx, false, true, (int)cg.cg, (int)rows, (int)xs, 1.0f,
                              x + (b * cg.c + g * cg.cg) * xs, (int)xs, col, (int)xs, 1.0f,
                              dw + g * cg.cg * rows, (int)rows);
        }
    }
    return QF_OK;
}

const qf_grad_def qf_graddef_conv_transpose = {
    .diff_inputs = 7, .scratch = convt_scratch, .backward = convt_backward};
