/* softmax_f32.c - ONNX Softmax and LogSoftmax (opsets 1..21), float
 * reference. Before opset 13 the input is coerced to 2-D at `axis`
 * (default 1) and normalised over everything from axis on; from opset 13 it
 * is normalised along the single axis `axis` (default -1). Both subtract the
 * maximum first, so large inputs do not overflow. */
#include <math.h>
#include <string.h>

#include "kernels/ref/spatial.h"

typedef struct softmax_params {
    int64_t axis;
    bool log;
} softmax_params;

static qf_status softmax_parse_common(qf_graph *g, qf_node *n, bool log, qf_err *err) {
    softmax_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", n->op_type);
    p->axis = qf_node_attr_int(n, "axis", n->opset < 13 ? 1 : -1);
    p->log = log;
    n->params = p;
    return QF_OK;
}
static qf_status softmax_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return softmax_parse_common(g, n, false, err);
}
static qf_status log_softmax_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return softmax_parse_common(g, n, true, err);
}

/* outer x len x inner decomposition of X for the node's opset and axis */
static qf_status softmax_layout(const qf_node *n, const qf_tensor *x, int64_t *outer, int64_t *len,
                                int64_t *inner, qf_err *err) {
    const softmax_params *p = n->params;
    qf_status s = qf_require_f32(n, x, "input", err);
    if (s) return s;
    int axis = 0;
    if (x->rank == 0) {
        *outer = *len = *inner = 1;
        return QF_OK;
    }
    if ((s = qf_norm_axis(n, p->axis, x->rank, &axis, err))) return s;
    *outer = *len = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= x->dims[i];
    if (n->opset < 13) {
        for (int i = axis; i < x->rank; i++)
            *len *= x->dims[i];
    } else {
        *len = x->dims[axis];
        for (int i = axis + 1; i < x->rank; i++)
            *inner *= x->dims[i];
    }
    return QF_OK;
}

static qf_status softmax_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    int64_t o, l, i;
    qf_status s = softmax_layout(n, &in[0], &o, &l, &i, err);
    if (s) return s;
    out[0] = in[0];
    out[0].data = NULL;
    return QF_OK;
}

static size_t softmax_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                              int n_out) {
    int64_t o, l, i;
    if (softmax_layout(n, &in[0], &o, &l, &i, NULL) || i == 1) return 0;
    return 2 * sizeof(float) * (size_t)i;
}

static void softmax_row(const float *x, float *y, int64_t len, bool log) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < len; j++)
        mx = x[j] > mx ? x[j] : mx;
    float sum = 0.0f;
    for (int64_t j = 0; j < len; j++) {
        float e = expf(x[j] - mx);
        if (!log) y[j] = e;
        sum += e;
    }
    if (log) {
        float ls = logf(sum);
        for (int64_t j = 0; j < len; j++)
            y[j] = x[j] - mx - ls;
    } else {
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < len; j++)
            y[j] *= inv;
    }
}

/* Softmax along a strided axis: the inner positions are processed together
 * (vectorisable), with per-position max and sum in scratch. */
static void softmax_strided(const float *x, float *y, int64_t len, int64_t inner, bool log,
                            float *mx, float *sum) {
    for (int64_t k = 0; k < inner; k++) {
        mx[k] = -INFINITY;
        sum[k] = 0.0f;
    }
    for (int64_t j = 0; j < len; j++) {
        const float *xj = x + j * inner;
        for (int64_t k = 0; k < inner; k++)
            mx[k] = xj[k] > mx[k] ? xj[k] : mx[k];
    }
    for (int64_t j = 0; j < len; j++)
        for (int64_t k = 0; k < inner; k++) {
            float e = expf(x[j * inner + k] - mx[k]);
            if (!log) y[j * inner + k] = e;
            sum[k] += e;
        }
    if (log) {
        for (int64_t k = 0; k < inner; k++)
            sum[k] = logf(sum[k]);
        for (int64_t j = 0; j < len; j++)
            for (int64_t k = 0; k < inner; k++)
                y[j * inner + k] = x[j * inner + k] - mx[k] - sum[k];
    } else {
        for (int64_t k = 0; k < inner; k++)
            sum[k] = 1.0f / sum[k];
        for (int64_t j = 0; j < len; j++)
            for (int64_t k = 0; k < inner; k++)
                y[j * inner + k] *= sum[k];
    }
}

static qf_status softmax_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const softmax_params *p = n->params;
    int64_t outer, len, inner;
    qf_status s = softmax_layout(n, &in[0], &outer, &len, &inner, err);
    if (s) return s;
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t o = 0; o < outer; o++) {
        const float *xo = x + o * len * inner;
        float *yo = y + o * len * inner;
        if (inner == 1)
            softmax_row(xo, yo, len, p->log);
        else
            softmax_strided(xo, yo, len, inner, p->log, scratch, (float *)scratch + inner);
    }
    return QF_OK;
}

const qf_op_def qf_opdef_softmax = {
    .name = "Softmax",
    .parse = softmax_parse,
    .infer = softmax_infer,
    .scratch = softmax_scratch,
    .run = softmax_run,
};

const qf_op_def qf_opdef_log_softmax = {
    .name = "LogSoftmax",
    .parse = log_softmax_parse,
    .infer = softmax_infer,
    .scratch = softmax_scratch,
    .run = softmax_run,
};
