/* conv_transpose_f32.c - ONNX ConvTranspose (opsets 1..21), float reference.
 *
 * Per group, col = W_g^T * X_g (sgemm) gives every (output channel, kernel
 * tap) contribution of every input position; col2im then scatter-adds them
 * into Y at o = i*stride - pad_begin + tap*dilation. Bands of input rows
 * bound the col buffer. Output size and pads follow the ONNX formulas,
 * including output_shape (pads derived from it; a negative total padding
 * extends the end of the output with zeros, as the ONNX test data expects)
 * and auto_pad SAME_UPPER/SAME_LOWER (output = input * stride).
 */
#include <string.h>

#include "kernels/ref/sgemm.h"
#include "kernels/ref/spatial.h"

typedef struct convt_params {
    qf_spatial_attrs sp;
    int64_t group;
    int n_out_pad, n_out_shape;
    int64_t out_pad[QF_SPATIAL_MAX];
    int64_t out_shape[QF_SPATIAL_MAX + 2];
} convt_params;

#define COL_BUDGET ((size_t)2 << 20) /* floats per col band */

typedef struct convt_plan {
    qf_spatial_geom g; /* in = X spatial, out = Y spatial */
    int64_t n, c, m, cg, mg, kk;
    int64_t band_rows; /* input rows (of in[2] columns) per band */
} convt_plan;

static qf_status convt_parse(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    convt_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "ConvTranspose: out of memory");
    qf_status s = qf_spatial_parse(n, &p->sp, false, false, err);
    if (s) return s;
    p->group = qf_node_attr_int(n, "group", 1);
    if (p->group < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: group %lld must be positive",
                       qf_node_desc(n, d, sizeof d), (long long)p->group);
    const int64_t *v;
    int c = qf_node_attr_ints(n, "output_padding", &v);
    if (c > QF_SPATIAL_MAX)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: output_padding has %d values",
                       qf_node_desc(n, d, sizeof d), c);
    for (int i = 0; i < c; i++) {
        if (v[i] < 0 || v[i] > INT32_MAX)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: output_padding out of range",
                           qf_node_desc(n, d, sizeof d));
        p->out_pad[i] = v[i];
    }
    p->n_out_pad = c;
    c = qf_node_attr_ints(n, "output_shape", &v);
    if (c > QF_SPATIAL_MAX + 2)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: output_shape has %d values",
                       qf_node_desc(n, d, sizeof d), c);
    for (int i = 0; i < c; i++) {
        if (v[i] <= 0 || v[i] > INT32_MAX)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: output_shape out of range",
                           qf_node_desc(n, d, sizeof d));
        p->out_shape[i] = v[i];
    }
    p->n_out_shape = c;
    n->params = p;
    return QF_OK;
}

/* Split a total padding between begin and end. */
static void split_pad(int64_t total, bool upper, int64_t *pb, int64_t *pe) {
    if (total < 0) { /* output larger than the full result: zeros at the end */
        *pb = 0;
        *pe = total;
    } else if (upper) {
        *pb = total / 2;
        *pe = total - total / 2;
    } else {
        *pb = total - total / 2;
        *pe = total / 2;
    }
}

static qf_status convt_make_plan(const qf_node *n, const qf_tensor *in, int n_in, convt_plan *pl,
                                 qf_err *err) {
    const convt_params *p = n->params;
    const qf_spatial_attrs *a = &p->sp;
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
    int nsp = x->rank - 2;
    if (nsp > QF_SPATIAL_MAX)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %d spatial axes (1..%d supported)",
                       qf_node_desc(n, d, sizeof d), nsp, QF_SPATIAL_MAX);
    memset(pl, 0, sizeof *pl);
    pl->n = x->dims[0];
    pl->c = x->dims[1];
    pl->mg = w->dims[1];
    pl->m = pl->mg * p->group;
    if (w->dims[0] != pl->c || pl->c % p->group)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: X has %lld channels but W has %lld (W dim 0 must equal X channels, "
                       "divisible by group %lld)",
                       qf_node_desc(n, d, sizeof d), (long long)pl->c, (long long)w->dims[0],
                       (long long)p->group);
    pl->cg = pl->c / p->group;
    if (n_in > 2 && in[2].dtype != QF_DT_UNDEF) {
        if ((s = qf_require_f32(n, &in[2], "B", err))) return s;
        if (in[2].rank != 1 || in[2].dims[0] != pl->m)
            return qf_errf(err, QF_ERR_SHAPE, "%s: bias must have shape [%lld]",
                           qf_node_desc(n, d, sizeof d), (long long)pl->m);
    }
    if ((a->n_kernel && a->n_kernel != nsp) || (a->n_strides && a->n_strides != nsp) ||
        (a->n_dilations && a->n_dilations != nsp) || (a->n_pads && a->n_pads != 2 * nsp) ||
        (p->n_out_pad && p->n_out_pad != nsp) ||
        (p->n_out_shape && p->n_out_shape != nsp && p->n_out_shape != nsp + 2))
        return qf_errf(err, QF_ERR_SHAPE, "%s: attribute lengths do not fit %d spatial axes",
                       qf_node_desc(n, d, sizeof d), nsp);
    qf_spatial_geom *g = &pl->g;
    g->nsp = nsp;
    int off = QF_SPATIAL_MAX - nsp;
    for (int ax = 0; ax < QF_SPATIAL_MAX; ax++) {
        g->in[ax] = g->out[ax] = g->kernel[ax] = g->stride[ax] = g->dil[ax] = 1;
        g->pad_b[ax] = g->pad_e[ax] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int ax = off + i;
        int64_t in_sz = x->dims[2 + i], k = w->dims[2 + i];
        if (a->n_kernel && a->kernel[i] != k)
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: kernel_shape[%d] = %lld but the weights have %lld",
                           qf_node_desc(n, d, sizeof d), i, (long long)a->kernel[i], (long long)k);
        int64_t st = a->n_strides ? a->strides[i] : 1;
        int64_t dl = a->n_dilations ? a->dilations[i] : 1;
        int64_t op = p->n_out_pad ? p->out_pad[i] : 0;
        int64_t full = st * (in_sz - 1) + op + (k - 1) * dl + 1;
        int64_t pb = 0, pe = 0, out;
        bool upper = a->auto_pad == QF_AUTO_PAD_SAME_UPPER;
        if (p->n_out_shape) {
            out = p->out_shape[p->n_out_shape - nsp + i];
            split_pad(full - out, upper, &pb, &pe);
        } else if (a->auto_pad == QF_AUTO_PAD_SAME_UPPER || a->auto_pad == QF_AUTO_PAD_SAME_LOWER) {
            out = in_sz * st;
            split_pad(full - out, upper, &pb, &pe);
        } else if (a->auto_pad == QF_AUTO_PAD_VALID) {
            out = full;
        } else {
            pb = a->n_pads ? a->pads[i] : 0;
            pe = a->n_pads ? a->pads[i + nsp] : 0;
            out = full - pb - pe;
        }
        if (out <= 0 || in_sz <= 0 || k <= 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: spatial axis %d gives output size %lld",
                           qf_node_desc(n, d, sizeof d), i, (long long)out);
        g->in[ax] = in_sz;
        g->out[ax] = out;
        g->kernel[ax] = k;
        g->stride[ax] = st;
        g->dil[ax] = dl;
        g->pad_b[ax] = pb;
        g->pad_e[ax] = pe;
    }
    pl->kk = qf_spatial_prod(g->kernel);
    int64_t rows = g->in[0] * g->in[1];
    int64_t per_row = pl->mg * pl->kk * g->in[2];
    int64_t band = (int64_t)(COL_BUDGET / (size_t)(per_row > 0 ? per_row : 1));
    if (band < 1) band = 1;
    pl->band_rows = band < rows ? band : rows;
    return QF_OK;
}

static qf_status convt_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    convt_plan pl;
    qf_status s = convt_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    out[0].dtype = QF_DT_F32;
    out[0].rank = in[0].rank;
    out[0].dims[0] = pl.n;
    out[0].dims[1] = pl.m;
    for (int i = 0; i < pl.g.nsp; i++)
        out[0].dims[2 + i] = pl.g.out[QF_SPATIAL_MAX - pl.g.nsp + i];
    return QF_OK;
}

static size_t convt_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out) {
    convt_plan pl;
    if (convt_make_plan(n, in, n_in, &pl, NULL)) return 0;
    size_t rows = (size_t)(pl.mg * pl.kk), cols = (size_t)(pl.band_rows * pl.g.in[2]);
    return rows * cols * sizeof(float) + 64 + qf_sgemm_f32_scratch(rows, cols, (size_t)pl.cg);
}

/* Scatter-add the col band of input rows [r0, r1) into y (one group). */
static void col2im_band(const convt_plan *pl, const float *col, int64_t r0, int64_t r1, float *y) {
    const qf_spatial_geom *g = &pl->g;
    int64_t wi = g->in[2], cols = (r1 - r0) * wi;
    int64_t out_hw = g->out[1] * g->out[2], out_sp = g->out[0] * out_hw;
    const float *src = col;
    for (int64_t co = 0; co < pl->mg; co++) {
        float *yc = y + co * out_sp;
        for (int64_t kd = 0; kd < g->kernel[0]; kd++)
            for (int64_t kh = 0; kh < g->kernel[1]; kh++)
                for (int64_t kw = 0; kw < g->kernel[2]; kw++, src += cols) {
                    int64_t ow0 = kw * g->dil[2] - g->pad_b[2], lo, hi;
                    qf_spatial_valid_range(ow0, g->stride[2], g->out[2], wi, &lo, &hi);
                    for (int64_t r = r0; r < r1; r++) {
                        int64_t id = r / g->in[1], ih = r % g->in[1];
                        int64_t od = id * g->stride[0] - g->pad_b[0] + kd * g->dil[0];
                        int64_t oh = ih * g->stride[1] - g->pad_b[1] + kh * g->dil[1];
                        if (od < 0 || od >= g->out[0] || oh < 0 || oh >= g->out[1]) continue;
                        float *yrow = yc + od * out_hw + oh * g->out[2];
                        const float *seg = src + (r - r0) * wi;
                        int64_t s = g->stride[2];
                        for (int64_t iw = lo; iw < hi; iw++)
                            yrow[ow0 + iw * s] += seg[iw];
                    }
                }
    }
}

static qf_status convt_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    convt_plan pl;
    qf_status s = convt_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    const qf_spatial_geom *g = &pl.g;
    const float *x = in[0].data, *w = in[1].data;
    const float *bias = n_in > 2 && in[2].dtype != QF_DT_UNDEF ? in[2].data : NULL;
    float *y = out[0].data;
    int64_t group = pl.c / pl.cg;
    int64_t hwi = qf_spatial_prod(g->in), hwo = qf_spatial_prod(g->out);
    int64_t rows_w = pl.mg * pl.kk; /* rows of col: (output channel, tap) */
    int64_t in_rows = g->in[0] * g->in[1];
    float *col = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    void *gemm_scratch = col + rows_w * pl.band_rows * g->in[2];
    for (int64_t b = 0; b < pl.n; b++)
        for (int64_t gi = 0; gi < group; gi++) {
            const float *xg = x + (b * pl.c + gi * pl.cg) * hwi;
            float *yg = y + (b * pl.m + gi * pl.mg) * hwo;
            const float *wg = w + gi * pl.cg * rows_w;
            for (int64_t m = 0; m < pl.mg; m++) {
                float bv = bias ? bias[gi * pl.mg + m] : 0.0f;
                for (int64_t i = 0; i < hwo; i++)
                    yg[m * hwo + i] = bv;
            }
            for (int64_t r0 = 0; r0 < in_rows; r0 += pl.band_rows) {
                int64_t r1 = r0 + pl.band_rows < in_rows ? r0 + pl.band_rows : in_rows;
                int64_t cols = (r1 - r0) * g->in[2];
                /* col[rows_w x cols] = W_g^T (rows_w x cg) * X_g[:, band] (cg x cols) */
                qf_sgemm_f32(true, false, (size_t)rows_w, (size_t)cols, (size_t)pl.cg, 1.0f, wg,
                             (size_t)rows_w, xg + r0 * g->in[2], (size_t)hwi, 0.0f, col,
                             (size_t)cols, gemm_scratch);
                col2im_band(&pl, col, r0, r1, yg);
            }
        }
    return QF_OK;
}

const qf_op_def qf_opdef_conv_transpose = {
    .name = "ConvTranspose",
    .flags = 0,
    .value_inputs = 0,
    .parse = convt_parse,
    .infer = convt_infer,
    .scratch = convt_scratch,
    .run = convt_run,
};
