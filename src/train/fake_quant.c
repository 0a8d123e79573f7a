/* fake_quant.c - qforge.FakeQuantize: quantize-dequantize in float, the
 * building block of quantization-aware training.
 *
 *   inputs: x (float), scale (float, [1], rank 0, or [C] per channel along
 *           `axis`), zero_point (optional, int32 or float, same count)
 *   attrs:  bits (2..16, default 8), axis (default 1), signed (default 1:
 *           symmetric restricted range [-(2^(b-1)-1), 2^(b-1)-1]; 0: unsigned
 *           [0, 2^b-1]), lsq (default 0; 1: scale is learned, LSQ)
 *   y = s * (clamp(round_half_even(x / s) + z, qmin, qmax) - z)
 *
 * The float kernel is registered in the op registry (so the float runtime
 * evaluates a QAT graph) and the backward in the grad table: the
 * straight-through estimator for x (gradient passes where x/s + z lies in
 * [qmin, qmax]) and, with lsq=1, the LSQ gradient for the scale (Esser et
 * al. 2020) multiplied by g = 1/sqrt(n * qmax), n being the number of
 * elements that share one scale.
 */
#include <math.h>
#include <string.h>

#include "train/grad.h"

typedef struct fq_attrs {
    int bits;
    int64_t axis;
    bool is_signed;
    bool lsq;
} fq_attrs;

/* Smallest scale used: a learned scale driven to 0 or below by a large step
 * would otherwise divide by zero. */
#define FQ_MIN_SCALE 1e-12f

static qf_status fq_read_attrs(const qf_node *n, fq_attrs *a, qf_err *err) {
    char d[200];
    int64_t bits = qf_node_attr_int(n, "bits", 8);
    int64_t sg = qf_node_attr_int(n, "signed", 1);
    int64_t lsq = qf_node_attr_int(n, "lsq", 0);
    if (bits < 2 || bits > 16)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bits %lld is not in 2..16",
                       qf_node_desc(n, d, sizeof d), (long long)bits);
    if ((sg != 0 && sg != 1) || (lsq != 0 && lsq != 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: signed and lsq must be 0 or 1",
                       qf_node_desc(n, d, sizeof d));
    a->bits = (int)bits;
    a->axis = qf_node_attr_int(n, "axis", 1);
    a->is_signed = sg == 1;
    a->lsq = lsq == 1;
    return QF_OK;
}

static void fq_range(const fq_attrs *a, float *qmin, float *qmax) {
    if (a->is_signed) {
        *qmax = (float)((1 << (a->bits - 1)) - 1);
        *qmin = -*qmax;
    } else {
        *qmin = 0.0f;
        *qmax = (float)((1 << a->bits) - 1);
    }
}

/* Per-element layout: element i uses scale index (i / inner) % nch. */
typedef struct fq_layout {
    int64_t n, nch, inner;
} fq_layout;

static qf_status fq_layout_of(const qf_node *n, const fq_attrs *at, const qf_tensor *in, int n_in,
                              fq_layout *l, qf_err *err) {
    char d[200];
    if (n_in < 2 || in[1].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs x and scale",
                       qf_node_desc(n, d, sizeof d));
    if (in[0].dtype != QF_DT_F32 || in[1].dtype != QF_DT_F32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: x and scale must be float",
                       qf_node_desc(n, d, sizeof d));
    int64_t ns = qf_tensor_numel(&in[1]);
    l->n = qf_tensor_numel(&in[0]);
    l->nch = 1;
    l->inner = 1;
    if (ns != 1) {
        int axis = 0;
        qf_status s = qf_norm_axis(n, at->axis, in[0].rank, &axis, err);
        if (s) return s;
        if (in[1].rank != 1 || ns != in[0].dims[axis])
            return qf_errf(
                err, QF_ERR_SHAPE, "%s: scale has %lld elements, x has %lld channels on axis %d",
                qf_node_desc(n, d, sizeof d), (long long)ns, (long long)in[0].dims[axis], axis);
        l->nch = ns;
        for (int k = axis + 1; k < in[0].rank; k++)
            l->inner *= in[0].dims[k];
    }
    if (n_in > 2 && in[2].dtype != QF_DT_UNDEF) {
        if (in[2].dtype != QF_DT_I32 && in[2].dtype != QF_DT_F32)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: zero_point must be int32 or float",
                           qf_node_desc(n, d, sizeof d));
        if (qf_tensor_numel(&in[2]) != ns)
            return qf_errf(err, QF_ERR_SHAPE, "%s: zero_point and scale differ in size",
                           qf_node_desc(n, d, sizeof d));
    }
    return QF_OK;
}

static float fq_scale(const qf_tensor *in, int64_t c) {
    float s = ((const float *)in[1].data)[c];
    return s > FQ_MIN_SCALE ? s : FQ_MIN_SCALE;
}

static float fq_zero(const qf_tensor *in, int n_in, int64_t c) {
    if (n_in < 3 || !in[2].data) return 0.0f;
    if (in[2].dtype == QF_DT_I32) return (float)((const int32_t *)in[2].data)[c];
    return ((const float *)in[2].data)[c];
}

static qf_status fq_parse(qf_graph *g, qf_node *n, qf_err *err) {
    fq_attrs *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "FakeQuantize: out of memory");
    qf_status s = fq_read_attrs(n, p, err);
    if (s) return s;
    n->params = p;
    return QF_OK;
}

static qf_status fq_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                          int n_out, qf_err *err) {
    fq_attrs at;
    fq_layout l;
    qf_status s = fq_read_attrs(n, &at, err);
    if (s || (s = fq_layout_of(n, &at, in, n_in, &l, err))) return s;
    out[0] = in[0];
    out[0].data = NULL;
    return QF_OK;
}

static qf_status fq_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                        qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    fq_attrs at;
    fq_layout l;
    qf_status s = fq_read_attrs(n, &at, err);
    if (s || (s = fq_layout_of(n, &at, in, n_in, &l, err))) return s;
    float qmin, qmax;
    fq_range(&at, &qmin, &qmax);
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t i = 0; i < l.n; i++) {
        int64_t c = (i / l.inner) % l.nch;
        float sc = fq_scale(in, c), z = fq_zero(in, n_in, c);
        /* nearbyintf rounds half to even in the default rounding mode */
        float q = nearbyintf(x[i] / sc) + z;
        q = q < qmin ? qmin : (q > qmax ? qmax : q);
        y[i] = sc * (q - z);
    }
    return QF_OK;
}

const qf_op_def qf_opdef_fake_quantize = {
    .name = "qforge.FakeQuantize",
    /* not QF_OPF_ELEMENTWISE: a per-channel scale [C] does not broadcast
     * numpy-style against x, and quantization passes must not treat the op
     * as a generic unary function */
    .parse = fq_parse,
    .infer = fq_infer,
    .run = fq_run,
};

/* ---- backward ----------------------------------------------------------- */

static uint32_t fq_diff_mask(const qf_node *n) {
    return qf_node_attr_int(n, "lsq", 0) == 1 ? 3u : 1u;
}

static qf_status fq_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data;
    float *ds = a->n_in > 1 ? a->d_in[1].data : NULL;
    if (!dy || (!dx && !ds)) return QF_OK;
    fq_attrs at;
    fq_layout l;
    qf_status s = fq_read_attrs(a->node, &at, err);
    if (s || (s = fq_layout_of(a->node, &at, a->in, a->n_in, &l, err))) return s;
    if (!at.lsq) ds = NULL;
    float qmin, qmax;
    fq_range(&at, &qmin, &qmax);
    const float *x = a->in[0].data;
    /* LSQ's gradient scale: per-scale element count times qmax */
    float gscale = 1.0f / sqrtf((float)(l.n / l.nch) * qmax);
    for (int64_t i = 0; i < l.n; i++) {
        int64_t c = (i / l.inner) % l.nch;
        float sc = fq_scale(a->in, c), z = fq_zero(a->in, a->n_in, c);
        float v = x[i] / sc;
        float t = v + z;
        if (t < qmin) {
            if (ds) ds[c] += dy[i] * (qmin - z) * gscale;
        } else if (t > qmax) {
            if (ds) ds[c] += dy[i] * (qmax - z) * gscale;
        } else {
            if (dx) dx[i] += dy[i];
            if (ds) ds[c] += dy[i] * (nearbyintf(v) - v) * gscale;
        }
    }
    return QF_OK;
}

const qf_grad_def qf_graddef_fake_quantize = {
    .diff_inputs = 1, .diff_mask = fq_diff_mask, .backward = fq_backward};
