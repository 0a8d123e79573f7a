/* batch_norm_f32.c - ONNX BatchNormalization (opsets 7..21), inference mode:
 * Y = (X - mean) / sqrt(var + epsilon) * scale + B per channel (axis 1).
 * Training mode (training_mode=1, or spatial=0 before opset 9) is rejected
 * at parse time. The optional running_mean/running_var outputs, which only
 * training updates, are copies of the inputs here. */
#include <math.h>
#include <string.h>

#include "kernels/ref/spatial.h"

typedef struct bn_params {
    float epsilon;
} bn_params;

static qf_status bn_parse(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    if (qf_node_attr_int(n, "training_mode", 0) != 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: training_mode=1 is not supported (inference only)",
                       qf_node_desc(n, d, sizeof d));
    if (n->opset < 9 && qf_node_attr_int(n, "spatial", 1) == 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: spatial=0 is not supported",
                       qf_node_desc(n, d, sizeof d));
    for (int i = 3; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0)
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: saved_mean/saved_var outputs (training) are not supported",
                           qf_node_desc(n, d, sizeof d));
    bn_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "BatchNormalization: out of memory");
    p->epsilon = qf_node_attr_float(n, "epsilon", 1e-5f);
    n->params = p;
    return QF_OK;
}

static qf_status bn_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                          int n_out, qf_err *err) {
    char d[200];
    static const char *const names[5] = {"X", "scale", "B", "input_mean", "input_var"};
    if (n_in < 5)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs 5 inputs, got %d",
                       qf_node_desc(n, d, sizeof d), n_in);
    for (int i = 0; i < 5; i++) {
        qf_status s = qf_require_f32(n, &in[i], names[i], err);
        if (s) return s;
    }
    if (in[0].rank < 2)
        return qf_errf(err, QF_ERR_SHAPE, "%s: X must have rank >= 2 (got %d)",
                       qf_node_desc(n, d, sizeof d), in[0].rank);
    int64_t c = in[0].dims[1];
    for (int i = 1; i < 5; i++)
        if (qf_tensor_numel(&in[i]) != c || in[i].rank != 1)
            return qf_errf(err, QF_ERR_SHAPE, "%s: %s must have shape [%lld]",
                           qf_node_desc(n, d, sizeof d), names[i], (long long)c);
    out[0] = in[0];
    out[0].data = NULL;
    for (int i = 1; i < n_out && i < 3; i++) {
        out[i] = in[i + 2];
        out[i].data = NULL;
    }
    return QF_OK;
}

static qf_status bn_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                        qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const bn_params *p = n->params;
    const qf_tensor *x = &in[0];
    int64_t batch = x->dims[0], c = x->dims[1], size = 1;
    for (int i = 2; i < x->rank; i++)
        size *= x->dims[i];
    const float *xv = x->data, *scale = in[1].data, *bias = in[2].data;
    const float *mean = in[3].data, *var = in[4].data;
    float *y = out[0].data;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            float a = scale[ch] / sqrtf(var[ch] + p->epsilon), m = mean[ch], bb = bias[ch];
            const float *xp = xv + (b * c + ch) * size;
            float *yp = y + (b * c + ch) * size;
            for (int64_t i = 0; i < size; i++)
                yp[i] = (xp[i] - m) * a + bb;
        }
    for (int i = 1; i < n_out && i < 3; i++)
        if (out[i].data) memcpy(out[i].data, in[i + 2].data, sizeof(float) * (size_t)c);
    return QF_OK;
}

const qf_op_def qf_opdef_batch_norm = {
    .name = "BatchNormalization",
    .parse = bn_parse,
    .infer = bn_infer,
    .run = bn_run,
};
