/* layer_norm_f32.c - ONNX LayerNormalization (opset 17+), float reference.
 * Each row of X.shape[axis:] is normalised with its own mean and variance
 * (accumulated in double), then scaled and shifted by Scale and the
 * optional B, both unidirectionally broadcast to X.shape[axis:]. The
 * optional Mean and InvStdDev outputs have X's shape with the normalised
 * axes set to 1. */
#include <math.h>
#include <string.h>

#include "kernels/ref/spatial.h"

typedef struct ln_params {
    int64_t axis;
    float epsilon;
} ln_params;

static qf_status ln_parse(qf_graph *g, qf_node *n, qf_err *err) {
    ln_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "LayerNormalization: out of memory");
    p->axis = qf_node_attr_int(n, "axis", -1);
    p->epsilon = qf_node_attr_float(n, "epsilon", 1e-5f);
    n->params = p;
    return QF_OK;
}

/* Does t broadcast (numpy, trailing-aligned) onto dims[0..r)? */
static bool broadcasts_to(const qf_tensor *t, const int64_t *dims, int r) {
    if (t->rank > r) return false;
    for (int i = 0; i < t->rank; i++) {
        int64_t td = t->dims[t->rank - 1 - i], dd = dims[r - 1 - i];
        if (td != 1 && td != dd) return false;
    }
    return true;
}

static qf_status ln_check(const qf_node *n, const qf_tensor *in, int n_in, int *axis, qf_err *err) {
    const ln_params *p = n->params;
    char d[200];
    qf_status s;
    if (n_in < 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs X and Scale",
                       qf_node_desc(n, d, sizeof d));
    if ((s = qf_require_f32(n, &in[0], "X", err)) || (s = qf_require_f32(n, &in[1], "Scale", err)))
        return s;
    if ((s = qf_norm_axis(n, p->axis, in[0].rank, axis, err))) return s;
    const int64_t *nd = in[0].dims + *axis;
    int nr = in[0].rank - *axis;
    if (!broadcasts_to(&in[1], nd, nr))
        return qf_errf(err, QF_ERR_SHAPE, "%s: Scale does not broadcast to the normalised shape",
                       qf_node_desc(n, d, sizeof d));
    if (n_in > 2 && in[2].dtype != QF_DT_UNDEF) {
        if ((s = qf_require_f32(n, &in[2], "B", err))) return s;
        if (!broadcasts_to(&in[2], nd, nr))
            return qf_errf(err, QF_ERR_SHAPE, "%s: B does not broadcast to the normalised shape",
                           qf_node_desc(n, d, sizeof d));
    }
    return QF_OK;
}

static qf_status ln_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                          int n_out, qf_err *err) {
    int axis;
    qf_status s = ln_check(n, in, n_in, &axis, err);
    if (s) return s;
    out[0] = in[0];
    out[0].data = NULL;
    for (int i = 1; i < n_out && i < 3; i++) {
        out[i] = in[0];
        out[i].data = NULL;
        for (int k = axis; k < in[0].rank; k++)
            out[i].dims[k] = 1;
    }
    return QF_OK;
}

/* Index into a broadcast operand t of element j of the normalised block. */
static int64_t bcast_index(const qf_tensor *t, const int64_t *nd, int nr, int64_t j) {
    int64_t idx = 0, stride = 1;
    for (int i = 0; i < t->rank; i++) {
        int64_t dd = nd[nr - 1 - i], td = t->dims[t->rank - 1 - i];
        int64_t coord = j % dd;
        j /= dd;
        if (td != 1) idx += coord * stride;
        stride *= td;
    }
    return idx;
}

static qf_status ln_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                        qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const ln_params *p = n->params;
    int axis;
    qf_status s = ln_check(n, in, n_in, &axis, err);
    if (s) return s;
    const qf_tensor *x = &in[0], *sc = &in[1];
    const qf_tensor *bt = n_in > 2 && in[2].dtype != QF_DT_UNDEF ? &in[2] : NULL;
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < axis; i++)
        rows *= x->dims[i];
    for (int i = axis; i < x->rank; i++)
        cols *= x->dims[i];
    const int64_t *nd = x->dims + axis;
    int nr = x->rank - axis;
    bool sc_full = qf_tensor_numel(sc) == cols, b_full = bt && qf_tensor_numel(bt) == cols;
    const float *xv = x->data, *scv = sc->data, *bv = bt ? bt->data : NULL;
    float *y = out[0].data;
    float *mean_out = n_out > 1 ? out[1].data : NULL;
    float *inv_out = n_out > 2 ? out[2].data : NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xv + r * cols;
        float *yr = y + r * cols;
        double sum = 0.0;
        for (int64_t j = 0; j < cols; j++)
            sum += xr[j];
        double mean = cols ? sum / (double)cols : 0.0;
        double sq = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            double dv = xr[j] - mean;
            sq += dv * dv;
        }
        double var = cols ? sq / (double)cols : 0.0;
        float inv = (float)(1.0 / sqrt(var + (double)p->epsilon));
        float mf = (float)mean;
        for (int64_t j = 0; j < cols; j++) {
            float scale = sc_full ? scv[j] : scv[bcast_index(sc, nd, nr, j)];
            float bias = !bv ? 0.0f : b_full ? bv[j] : bv[bcast_index(bt, nd, nr, j)];
            yr[j] = (xr[j] - mf) * inv * scale + bias;
        }
        if (mean_out) mean_out[r] = mf;
        if (inv_out) inv_out[r] = inv;
    }
    return QF_OK;
}

const qf_op_def qf_opdef_layer_norm = {
    .name = "LayerNormalization",
    .parse = ln_parse,
    .infer = ln_infer,
    .run = ln_run,
};
