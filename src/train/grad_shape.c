/* grad_shape.c - backward of the data-movement ops (Identity, Flatten,
 * Reshape, Transpose, Concat), Softmax, and Dropout (whose training-mode
 * forward samples the mask here).
 */
#include <math.h>
#include <string.h>

#include "train/grad.h"

/* ---- same bytes in, same bytes out ------------------------------------ */
static qf_status copy_backward(const qf_grad_args *a, qf_err *err) {
    (void)err;
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data;
    if (!dy || !dx) return QF_OK;
    int64_t n = qf_tensor_numel(&a->in[0]);
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i];
    return QF_OK;
}

const qf_grad_def qf_graddef_identity = {.diff_inputs = 1, .backward = copy_backward};
const qf_grad_def qf_graddef_flatten = {.diff_inputs = 1, .backward = copy_backward};
const qf_grad_def qf_graddef_reshape = {.diff_inputs = 1, .backward = copy_backward};
const qf_grad_def qf_graddef_squeeze = {.diff_inputs = 1, .backward = copy_backward};
const qf_grad_def qf_graddef_unsqueeze = {.diff_inputs = 1, .backward = copy_backward};

/* ---- Transpose ---------------------------------------------------------- */
static qf_status transpose_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data;
    if (!dy || !dx) return QF_OK;
    const qf_tensor *x = &a->in[0], *y = &a->out[0];
    int r = x->rank;
    int perm[QF_MAX_DIMS];
    const int64_t *pv = NULL;
    int np = qf_node_attr_ints(a->node, "perm", &pv);
    for (int d = 0; d < r; d++)
        perm[d] = np == r ? (int)pv[d] : r - 1 - d;
    int64_t sx[QF_MAX_DIMS], s = 1, st[QF_MAX_DIMS], idx[QF_MAX_DIMS] = {0};
    for (int d = r - 1; d >= 0; d--) {
        sx[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < r; d++) {
        if (perm[d] < 0 || perm[d] >= r) {
            char b[200];
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad perm",
                           qf_node_desc(a->node, b, sizeof b));
        }
        st[d] = sx[perm[d]];
    }
    int64_t n = qf_tensor_numel(y), off = 0;
    for (int64_t e = 0; e < n; e++) {
        dx[off] += dy[e];
        for (int d = r - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < y->dims[d]) break;
            off -= st[d] * y->dims[d];
            idx[d] = 0;
        }
    }
    return QF_OK;
}
const qf_grad_def qf_graddef_transpose = {.diff_inputs = 1, .backward = transpose_backward};

/* ---- Concat ------------------------------------------------------------- */
static qf_status concat_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    if (!dy) return QF_OK;
    const qf_tensor *y = &a->out[0];
    int axis = 0;
    qf_status s = qf_norm_axis(a->node, qf_node_attr_int(a->node, "axis", 0), y->rank, &axis, err);
    if (s) return s;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= y->dims[d];
    for (int d = axis + 1; d < y->rank; d++)
        inner *= y->dims[d];
    int64_t ylen = y->dims[axis], off = 0;
    for (int i = 0; i < a->n_in; i++) {
        if (a->in[i].dtype == QF_DT_UNDEF) continue;
        int64_t len = a->in[i].dims[axis];
        float *dx = a->d_in[i].data;
        if (dx) {
            for (int64_t o = 0; o < outer; o++) {
                const float *src = dy + (o * ylen + off) * inner;
                float *dst = dx + o * len * inner;
                for (int64_t k = 0; k < len * inner; k++)
                    dst[k] += src[k];
            }
        }
        off += len;
    }
    return QF_OK;
}
const qf_grad_def qf_graddef_concat = {.diff_inputs = 0xFFFFFFFFu, .backward = concat_backward};

/* ---- Softmax ------------------------------------------------------------ */
static qf_status softmax_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data;
    if (!dy || !dx) return QF_OK;
    const qf_tensor *x = &a->in[0];
    const float *y = a->out[0].data;
    int64_t outer = 1, len = 1, inner = 1;
    if (x->rank > 0) {
        int axis = 0;
        int64_t dflt = a->node->opset < 13 ? 1 : -1;
        qf_status s =
            qf_norm_axis(a->node, qf_node_attr_int(a->node, "axis", dflt), x->rank, &axis, err);
        if (s) return s;
        for (int d = 0; d < axis; d++)
            outer *= x->dims[d];
        if (a->node->opset < 13) {
            /* before opset 13 the input is coerced to 2-D at axis */
            for (int d = axis; d < x->rank; d++)
                len *= x->dims[d];
        } else {
            len = x->dims[axis];
            for (int d = axis + 1; d < x->rank; d++)
                inner *= x->dims[d];
        }
    }
    /* dx = y * (dy - sum_k dy_k y_k) along the normalised axis */
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            double dot = 0.0;
            for (int64_t k = 0; k < len; k++)
                dot += (double)dy[base + k * inner] * y[base + k * inner];
            for (int64_t k = 0; k < len; k++) {
                int64_t p = base + k * inner;
                dx[p] += y[p] * (dy[p] - (float)dot);
            }
        }
    return QF_OK;
}
const qf_grad_def qf_graddef_softmax = {.diff_inputs = 1, .backward = softmax_backward};

/* ---- Dropout ------------------------------------------------------------ */
/* ratio: input 1 from opset 12 (default 0.5), the attribute before */
static float dropout_ratio(const qf_node *n, const qf_tensor *in, int n_in) {
    if (n->opset >= 12) {
        if (n_in > 1 && in[1].data && qf_tensor_numel(&in[1]) >= 1)
            return (float)qf_tensor_get_f64(&in[1], 0);
        return 0.5f;
    }
    return qf_node_attr_float(n, "ratio", 0.5f);
}

static size_t dropout_state(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out) {
    int64_t k = qf_tensor_numel(&in[0]);
    return k > 0 ? (size_t)k : 0;
}

/* splitmix64: a small, well-mixed generator; one stream per node and step */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static qf_status dropout_train(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                               int n_in, qf_tensor *out, int n_out, void *scratch, void *saved,
                               uint64_t seed, qf_err *err) {
    char d[200];
    if (in[0].dtype != QF_DT_F32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: training needs a float input",
                       qf_node_desc(n, d, sizeof d));
    float ratio = dropout_ratio(n, in, n_in);
    if (!(ratio >= 0.0f && ratio < 1.0f))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: ratio %g is not in [0, 1)",
                       qf_node_desc(n, d, sizeof d), (double)ratio);
    int64_t k = qf_tensor_numel(&in[0]);
    const float *x = in[0].data;
    float *y = out[0].data;
    unsigned char *mask = saved;
    float scale = 1.0f / (1.0f - ratio);
    /* compare 24-bit uniforms with the ratio so the mask is exact in float */
    uint32_t thr = (uint32_t)((double)ratio * (double)(1u << 24));
    uint64_t st = seed;
    for (int64_t i = 0; i < k; i++) {
        uint32_t u = (uint32_t)(splitmix(&st) >> 40);
        mask[i] = u >= thr;
        y[i] = mask[i] ? x[i] * scale : 0.0f;
    }
    if (n_out > 1 && out[1].data) {
        if (out[1].dtype == QF_DT_BOOL) {
            memcpy(out[1].data, mask, (size_t)k);
        } else if (out[1].dtype == QF_DT_F32) {
            float *m = out[1].data;
            for (int64_t i = 0; i < k; i++)
                m[i] = mask[i];
        }
    }
    return QF_OK;
}

static qf_status dropout_backward(const qf_grad_args *a, qf_err *err) {
    (void)err;
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data;
    if (!dy || !dx) return QF_OK;
    int64_t k = qf_tensor_numel(&a->in[0]);
    if (!a->training) {
        for (int64_t i = 0; i < k; i++)
            dx[i] += dy[i];
        return QF_OK;
    }
    const unsigned char *mask = a->saved;
    float scale = 1.0f / (1.0f - dropout_ratio(a->node, a->in, a->n_in));
    for (int64_t i = 0; i < k; i++)
        if (mask[i]) dx[i] += dy[i] * scale;
    return QF_OK;
}

const qf_grad_def qf_graddef_dropout = {.diff_inputs = 1,
                                        .backward = dropout_backward,
                                        .train_forward = dropout_train,
                                        .state_bytes = dropout_state};
