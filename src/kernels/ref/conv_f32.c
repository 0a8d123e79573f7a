/* conv_f32.c - ONNX Conv (opsets 1..21), float reference kernel.
 *
 * 1-D, 2-D and 3-D convolutions with groups, dilations, strides, explicit or
 * automatic padding and an optional bias. General convolutions lower to
 * im2col + sgemm per group; the im2col matrix is built for a band of output
 * rows at a time so scratch stays bounded (about 8 MiB) however large the
 * image. 1x1/stride-1/unpadded convolutions multiply X directly, and
 * depthwise-like groups (one input channel per group, few outputs) run a
 * direct loop that needs no scratch. The GEMMs go through
 * qf_sgemm_f32_auto: OpenBLAS for large ones, the portable kernel else.
 *
 * Batches of small images (training: 28x28 and smaller, one band per
 * image) put the im2col matrices of several images side by side so one
 * GEMM covers the chunk (a per-image GEMM is small enough for OpenBLAS's
 * call overhead to dominate); the chunk's result is then scattered into Y
 * with the bias added. Chunks run in parallel on the thread pool.
 */
#include <string.h>

#include "base/threadpool.h"
#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/sgemm.h"
#include "kernels/ref/spatial.h"

typedef struct conv_params {
    qf_spatial_attrs sp;
    int64_t group;
} conv_params;

/* im2col band budget in floats (8 MiB) */
#define COL_BUDGET ((size_t)2 << 20)
/* Floats of im2col matrix plus GEMM result per batched chunk (2 MiB:
 * still in cache between im2col, the GEMM and the scatter), and the most
 * tasks (scratch slices) the batched path runs in parallel. */
#define BATCH_BUDGET ((int64_t)1 << 19)
#define CONV_SLICES 4

typedef struct conv_plan {
    qf_spatial_geom g;
    int64_t n, c, m, cg, mg, kk; /* batch, channels, outputs, per group, kernel size */
    bool pointwise, direct;
    int64_t band_rows; /* output rows (of out[2] columns) per im2col band */
    int64_t chunk;     /* images per batched GEMM (>= 1), or 0: not batched */
} conv_plan;

static qf_status conv_parse(qf_graph *g, qf_node *n, qf_err *err) {
    conv_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "Conv: out of memory");
    qf_status s = qf_spatial_parse(n, &p->sp, false, false, err);
    if (s) return s;
    p->group = qf_node_attr_int(n, "group", 1);
    if (p->group < 1) {
        char d[200];
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: group %lld must be positive",
                       qf_node_desc(n, d, sizeof d), (long long)p->group);
    }
    n->params = p;
    return QF_OK;
}

static qf_status conv_make_plan(const qf_node *n, const qf_tensor *in, int n_in, conv_plan *pl,
                                qf_err *err) {
    const conv_params *p = n->params;
    const qf_tensor *x = &in[0], *w = &in[1];
    char d[200];
    if (n_in < 2 || w->dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs X and W",
                       qf_node_desc(n, d, sizeof d));
    qf_status s;
    if ((s = qf_require_f32(n, x, "X", err)) || (s = qf_require_f32(n, w, "W", err))) return s;
    if (x->rank < 3 || w->rank != x->rank)
        return qf_errf(err, QF_ERR_SHAPE, "%s: X has rank %d and W rank %d (need equal, >= 3)",
                       qf_node_desc(n, d, sizeof d), x->rank, w->rank);
    memset(pl, 0, sizeof *pl);
    pl->n = x->dims[0];
    pl->c = x->dims[1];
    pl->m = w->dims[0];
    if (pl->c % p->group || pl->m % p->group || w->dims[1] * p->group != pl->c)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: X has %lld channels, W is %lld x %lld, group %lld: W channels "
                       "times group must equal X channels and group must divide outputs",
                       qf_node_desc(n, d, sizeof d), (long long)pl->c, (long long)pl->m,
                       (long long)w->dims[1], (long long)p->group);
    pl->cg = pl->c / p->group;
    pl->mg = pl->m / p->group;
    if (n_in > 2 && in[2].dtype != QF_DT_UNDEF) {
        if ((s = qf_require_f32(n, &in[2], "B", err))) return s;
        if (in[2].rank != 1 || in[2].dims[0] != pl->m)
            return qf_errf(err, QF_ERR_SHAPE, "%s: bias must have shape [%lld]",
                           qf_node_desc(n, d, sizeof d), (long long)pl->m);
    }
    int nsp = x->rank - 2;
    s = qf_spatial_resolve(n, &p->sp, nsp, x->dims + 2, w->dims + 2, &pl->g, err);
    if (s) return s;
    const qf_spatial_geom *g = &pl->g;
    pl->kk = qf_spatial_prod(g->kernel);
    pl->pointwise = true;
    for (int a = 0; a < QF_SPATIAL_MAX; a++)
        if (g->kernel[a] != 1 || g->stride[a] != 1 || g->pad_b[a] || g->pad_e[a])
            pl->pointwise = false;
    pl->direct = !pl->pointwise && pl->cg == 1 && pl->mg < 8;
    int64_t rows = g->out[0] * g->out[1];
    int64_t k = pl->cg * pl->kk;
    int64_t band = (int64_t)(COL_BUDGET / (size_t)(k * g->out[2] > 0 ? k * g->out[2] : 1));
    if (band < 1) band = 1;
    pl->band_rows = band < rows ? band : rows;
    if (!pl->pointwise && !pl->direct && pl->band_rows == rows && pl->n > 1) {
        int64_t per = (k + pl->mg) * rows * g->out[2];
        int64_t nb = per > 0 ? BATCH_BUDGET / per : 0;
        if (nb > pl->n) nb = pl->n;
        pl->chunk = nb >= 1 ? nb : 0;
    }
    return QF_OK;
}

static qf_status conv_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    conv_plan pl;
    qf_status s = conv_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    out[0].dtype = QF_DT_F32;
    out[0].rank = in[0].rank;
    out[0].dims[0] = pl.n;
    out[0].dims[1] = pl.m;
    for (int i = 0; i < pl.g.nsp; i++)
        out[0].dims[2 + i] = pl.g.out[QF_SPATIAL_MAX - pl.g.nsp + i];
    return QF_OK;
}

static size_t batch_slice_bytes(const conv_plan *pl);

static size_t conv_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                           int n_out) {
    conv_plan pl;
    if (conv_make_plan(n, in, n_in, &pl, NULL)) return 0;
    if (pl.direct) return 0;
    size_t k = (size_t)(pl.cg * pl.kk);
    if (pl.chunk) /* per slice: col (k x chunk*hwo), GEMM result (mg x chunk*hwo) */
        return CONV_SLICES * batch_slice_bytes(&pl) + 64;
    size_t cols =
        pl.pointwise ? (size_t)qf_spatial_prod(pl.g.out) : (size_t)(pl.band_rows * pl.g.out[2]);
    size_t gemm = qf_sgemm_f32_scratch((size_t)pl.mg, cols, k);
    if (pl.pointwise) return gemm;
    return k * cols * sizeof(float) + 64 + gemm;
}

/* Build the im2col band for output rows [r0, r1) (row = (od, oh) pair):
 * col[(c, kd, kh, kw) * ld + (row - r0) * out2 + ow]; ld >= the band's
 * columns (larger when several images sit side by side). */
static void im2col_band(const conv_plan *pl, const float *x, int64_t r0, int64_t r1, float *col,
                        int64_t ld) {
    const qf_spatial_geom *g = &pl->g;
    int64_t wo = g->out[2];
    int64_t in_hw = g->in[1] * g->in[2];
    float *dst = col;
    for (int64_t c = 0; c < pl->cg; c++)
        for (int64_t kd = 0; kd < g->kernel[0]; kd++)
            for (int64_t kh = 0; kh < g->kernel[1]; kh++)
                for (int64_t kw = 0; kw < g->kernel[2]; kw++, dst += ld) {
                    int64_t iw0 = kw * g->dil[2] - g->pad_b[2], lo, hi;
                    qf_spatial_valid_range(iw0, g->stride[2], g->in[2], wo, &lo, &hi);
                    for (int64_t r = r0; r < r1; r++) {
                        int64_t od = r / g->out[1], oh = r % g->out[1];
                        int64_t id = od * g->stride[0] - g->pad_b[0] + kd * g->dil[0];
                        int64_t ih = oh * g->stride[1] - g->pad_b[1] + kh * g->dil[1];
                        float *seg = dst + (r - r0) * wo;
                        if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                            memset(seg, 0, sizeof(float) * (size_t)wo);
                            continue;
                        }
                        const float *src = x + c * g->in[0] * in_hw + id * in_hw + ih * g->in[2];
                        if (g->stride[2] == 1) {
                            qf_spatial_gather_row(seg, src + (iw0 + lo), lo, hi, wo);
                        } else {
                            int64_t s = g->stride[2];
                            for (int64_t ow = 0; ow < lo; ow++)
                                seg[ow] = 0.0f;
                            for (int64_t ow = lo; ow < hi; ow++)
                                seg[ow] = src[iw0 + ow * s];
                            for (int64_t ow = hi; ow < wo; ow++)
                                seg[ow] = 0.0f;
                        }
                    }
                }
}

/* Direct convolution of one input channel into one output channel
 * (accumulates into y, which holds the bias or zeros). */
static void conv_direct_channel(const qf_spatial_geom *g, const float *restrict x,
                                const float *restrict w, float *restrict y) {
    int64_t wo = g->out[2], in_hw = g->in[1] * g->in[2];
    for (int64_t od = 0; od < g->out[0]; od++)
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            float *yrow = y + (od * g->out[1] + oh) * wo;
            for (int64_t kd = 0; kd < g->kernel[0]; kd++) {
                int64_t id = od * g->stride[0] - g->pad_b[0] + kd * g->dil[0];
                if (id < 0 || id >= g->in[0]) continue;
                for (int64_t kh = 0; kh < g->kernel[1]; kh++) {
                    int64_t ih = oh * g->stride[1] - g->pad_b[1] + kh * g->dil[1];
                    if (ih < 0 || ih >= g->in[1]) continue;
                    const float *xrow = x + id * in_hw + ih * g->in[2];
                    const float *wrow = w + (kd * g->kernel[1] + kh) * g->kernel[2];
                    for (int64_t kw = 0; kw < g->kernel[2]; kw++) {
                        int64_t iw0 = kw * g->dil[2] - g->pad_b[2], lo, hi;
                        qf_spatial_valid_range(iw0, g->stride[2], g->in[2], wo, &lo, &hi);
                        float wv = wrow[kw];
                        int64_t s = g->stride[2];
                        if (s == 1) {
                            /* fixed-length blocks so -O2 vectorizes the bulk */
                            const float *xs = xrow + iw0;
                            int64_t ow = lo;
                            for (; ow + 8 <= hi; ow += 8)
                                for (int j = 0; j < 8; j++)
                                    yrow[ow + j] += wv * xs[ow + j];
                            for (; ow < hi; ow++)
                                yrow[ow] += wv * xs[ow];
                        } else {
                            for (int64_t ow = lo; ow < hi; ow++)
                                yrow[ow] += wv * xrow[iw0 + ow * s];
                        }
                    }
                }
            }
        }
}

/* The batched path: chunks of images, dealt out round-robin to at most
 * CONV_SLICES tasks on the pool, each with its own slice of scratch and a
 * single-threaded GEMM. One pool call per convolution keeps the number of
 * synchronisations small (each one can stall on a descheduled worker when
 * the machine is busy). */
typedef struct conv_batch {
    const conv_plan *pl;
    const float *x, *w, *bias;
    float *y;
    unsigned char *slices;
    size_t slice_bytes;
    int64_t n_tasks, hwi, hwo;
} conv_batch;

static void batch_chunk(const conv_batch *j, int64_t b0, int64_t nb, float *col, float *res,
                        void *gemm_scratch) {
    const conv_plan *pl = j->pl;
    const qf_exec_ctx one = {.num_threads = 1, .pool = NULL};
    int64_t k = pl->cg * pl->kk, group = pl->c / pl->cg, rows = pl->g.out[0] * pl->g.out[1];
    int64_t ld = nb * j->hwo;
    for (int64_t gi = 0; gi < group; gi++) {
        for (int64_t i = 0; i < nb; i++)
            im2col_band(pl, j->x + ((b0 + i) * pl->c + gi * pl->cg) * j->hwi, 0, rows,
                        col + i * j->hwo, ld);
        qf_sgemm_f32_auto(&one, false, false, (size_t)pl->mg, (size_t)ld, (size_t)k, 1.0f,
                          j->w + gi * pl->mg * k, (size_t)k, col, (size_t)ld, 0.0f, res, (size_t)ld,
                          gemm_scratch);
        for (int64_t i = 0; i < nb; i++)
            for (int64_t m = 0; m < pl->mg; m++) {
                const float *restrict src = res + m * ld + i * j->hwo;
                float *restrict dst = j->y + ((b0 + i) * pl->m + gi * pl->mg + m) * j->hwo;
                float bv = j->bias ? j->bias[gi * pl->mg + m] : 0.0f;
                for (int64_t p = 0; p < j->hwo; p++)
                    dst[p] = src[p] + bv;
            }
    }
}

static void batch_task(void *ctx, int64_t t, int tid) {
    (void)tid;
    const conv_batch *j = ctx;
    const conv_plan *pl = j->pl;
    int64_t k = pl->cg * pl->kk;
    float *col = (float *)(j->slices + (size_t)t * j->slice_bytes);
    float *res = col + k * pl->chunk * j->hwo;
    void *gemm_scratch = res + pl->mg * pl->chunk * j->hwo;
    for (int64_t b0 = t * pl->chunk; b0 < pl->n; b0 += j->n_tasks * pl->chunk) {
        int64_t nb = pl->n - b0 < pl->chunk ? pl->n - b0 : pl->chunk;
        batch_chunk(j, b0, nb, col, res, gemm_scratch);
    }
}

/* Bytes of one task's scratch slice (a multiple of 64). */
static size_t batch_slice_bytes(const conv_plan *pl) {
    size_t k = (size_t)(pl->cg * pl->kk), cols = (size_t)(pl->chunk * qf_spatial_prod(pl->g.out));
    size_t b =
        (k + (size_t)pl->mg) * cols * sizeof(float) + qf_sgemm_f32_scratch((size_t)pl->mg, cols, k);
    return (b + 63) & ~(size_t)63;
}

static void conv_run_batched(const qf_exec_ctx *ctx, const conv_plan *pl, const float *x,
                             const float *w, const float *bias, float *y, void *scratch) {
    conv_batch j = {.pl = pl, .x = x, .w = w, .bias = bias, .y = y};
    j.hwi = qf_spatial_prod(pl->g.in);
    j.hwo = qf_spatial_prod(pl->g.out);
    j.slices = (unsigned char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    j.slice_bytes = batch_slice_bytes(pl);
    qf_threadpool *pool = ctx ? ctx->pool : NULL;
    int64_t chunks = (pl->n + pl->chunk - 1) / pl->chunk;
    j.n_tasks = qf_threadpool_size(pool);
    if (j.n_tasks > CONV_SLICES) j.n_tasks = CONV_SLICES;
    if (j.n_tasks > chunks) j.n_tasks = chunks;
    qf_parallel_for(pool, j.n_tasks, batch_task, &j);
}

/* The direct path (depthwise-like groups): (image, group) pairs split over
 * the pool, each writing only its own output channels. */
typedef struct conv_direct_job {
    const conv_plan *pl;
    const float *x, *w, *bias;
    float *y;
    int64_t hwi, hwo, per_task, n_pairs;
} conv_direct_job;

static void direct_task(void *ctx, int64_t t, int tid) {
    (void)tid;
    const conv_direct_job *j = ctx;
    const conv_plan *pl = j->pl;
    const int64_t group = pl->c / pl->cg;
    const int64_t p1 = (t + 1) * j->per_task < j->n_pairs ? (t + 1) * j->per_task : j->n_pairs;
    for (int64_t pr = t * j->per_task; pr < p1; pr++) {
        const int64_t b = pr / group, gi = pr % group;
        const float *xg = j->x + (b * pl->c + gi * pl->cg) * j->hwi;
        float *yg = j->y + (b * pl->m + gi * pl->mg) * j->hwo;
        const float *wg = j->w + gi * pl->mg * pl->cg * pl->kk;
        for (int64_t m = 0; m < pl->mg; m++) {
            const float bv = j->bias ? j->bias[gi * pl->mg + m] : 0.0f;
            float *yr = yg + m * j->hwo;
            for (int64_t i = 0; i < j->hwo; i++)
                yr[i] = bv;
            conv_direct_channel(&pl->g, xg, wg + m * pl->kk, yr);
        }
    }
}

static qf_status conv_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    conv_plan pl;
    qf_status s = conv_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    if (pl.chunk) {
        const float *bias = n_in > 2 && in[2].dtype != QF_DT_UNDEF ? in[2].data : NULL;
        conv_run_batched(ctx, &pl, in[0].data, in[1].data, bias, out[0].data, scratch);
        return QF_OK;
    }
    const qf_spatial_geom *g = &pl.g;
    const float *x = in[0].data, *w = in[1].data;
    const float *bias = n_in > 2 && in[2].dtype != QF_DT_UNDEF ? in[2].data : NULL;
    float *y = out[0].data;
    int64_t group = pl.c / pl.cg;
    int64_t hwi = qf_spatial_prod(g->in), hwo = qf_spatial_prod(g->out);
    if (pl.direct) {
        qf_threadpool *pool = ctx ? ctx->pool : NULL;
        conv_direct_job j = {.pl = &pl,
                             .x = x,
                             .w = w,
                             .bias = bias,
                             .y = y,
                             .hwi = hwi,
                             .hwo = hwo,
                             .n_pairs = pl.n * group};
        j.per_task = qf_parallel_chunk(pool, j.n_pairs, 4);
        if (j.per_task)
            qf_parallel_for(pool, (j.n_pairs + j.per_task - 1) / j.per_task, direct_task, &j);
        return QF_OK;
    }
    int64_t k = pl.cg * pl.kk;
    int64_t rows = g->out[0] * g->out[1];
    float *col = NULL;
    void *gemm_scratch = scratch;
    if (!pl.pointwise) {
        col = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        gemm_scratch = col + k * pl.band_rows * g->out[2];
    }
    for (int64_t b = 0; b < pl.n; b++)
        for (int64_t gi = 0; gi < group; gi++) {
            const float *xg = x + (b * pl.c + gi * pl.cg) * hwi;
            float *yg = y + (b * pl.m + gi * pl.mg) * hwo;
            const float *wg = w + gi * pl.mg * k;
            if (bias)
                for (int64_t m = 0; m < pl.mg; m++) {
                    float bv = bias[gi * pl.mg + m];
                    float *yr = yg + m * hwo;
                    for (int64_t i = 0; i < hwo; i++)
                        yr[i] = bv;
                }
            float beta = bias ? 1.0f : 0.0f;
            if (pl.pointwise) {
                qf_sgemm_f32_auto(ctx, false, false, (size_t)pl.mg, (size_t)hwo, (size_t)k, 1.0f,
                                  wg, (size_t)k, xg, (size_t)hwi, beta, yg, (size_t)hwo,
                                  gemm_scratch);
            } else {
                for (int64_t r0 = 0; r0 < rows; r0 += pl.band_rows) {
                    int64_t r1 = r0 + pl.band_rows < rows ? r0 + pl.band_rows : rows;
                    int64_t cols = (r1 - r0) * g->out[2];
                    im2col_band(&pl, xg, r0, r1, col, cols);
                    qf_sgemm_f32_auto(ctx, false, false, (size_t)pl.mg, (size_t)cols, (size_t)k,
                                      1.0f, wg, (size_t)k, col, (size_t)cols, beta,
                                      yg + r0 * g->out[2], (size_t)hwo, gemm_scratch);
                }
            }
        }
    return QF_OK;
}

const qf_op_def qf_opdef_conv = {
    .name = "Conv",
    .flags = 0,
    .value_inputs = 0,
    .parse = conv_parse,
    .infer = conv_infer,
    .scratch = conv_scratch,
    .run = conv_run,
};
