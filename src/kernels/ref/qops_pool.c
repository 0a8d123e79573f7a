/* qops_pool.c - qforge.QMaxPool, qforge.QAveragePool and
 * qforge.QGlobalAveragePool over int8 NCHW tensors (docs/quantized-graph.md).
 *
 * Attributes are ONNX's (kernel_shape, strides, dilations, pads, auto_pad,
 * ceil_mode, count_include_pad; spatial.h computes the geometry), plus the
 * fused clamp act_min/act_max and, for the averages, requant. Max pooling
 * works on q directly, so its output must carry the input's scale and zero
 * point; the averages requantize to the output's. 1-D and 2-D windows run on
 * the 2-D reference kernels (1-D as height 1); the global average pools any
 * number of spatial axes as one flattened axis.
 */
#include "kernels/ref/qops_util.h"
#include "kernels/ref/spatial.h"
#include "kernels/x86/qx86_ew.h"

typedef enum { QPOOL_MAX, QPOOL_AVG, QPOOL_GLOBAL_AVG } qpool_kind;

typedef struct qpool_params {
    qf_spatial_attrs sp; /* windowed pools */
    int32_t count_include_pad;
    qo_act in, out;
    qf_ref_rq_mode mode;
    int32_t act_min, act_max;
} qpool_params;

/* Largest |sum of (q - zp)| the average kernels accumulate in int32:
 * 255 per tap (both int8). */
static qf_status check_taps(const qf_node *n, int64_t taps, qf_err *err) {
    if (qf_ref_check_accum_range(taps, 8, 2) == QF_OK) return QF_OK; /* taps * 255 * 1 */
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED,
                   "%s: a window of %lld taps could overflow the int32 sum",
                   qf_node_desc(n, d, sizeof d), (long long)taps);
}

static qf_status qpool_parse(qf_graph *g, qf_node *n, qpool_kind kind, qf_err *err) {
    qf_status s = qo_check_io(n, 1, 1, err);
    if (s) return s;
    qpool_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    char d[200];
    qf_node_desc(n, d, sizeof d);
    if ((s = qo_act_qp(g, n, n->inputs[0], "input", false, &p->in, err)) ||
        (s = qo_act_qp(g, n, n->outputs[0], "output", false, &p->out, err)) ||
        (s = qo_parse_act_range(n, &p->out, &p->act_min, &p->act_max, err)))
        return s;
    if (kind != QPOOL_GLOBAL_AVG) {
        if ((s = qf_spatial_parse(n, &p->sp, true, true, err))) return s;
        if (p->sp.n_kernel > 2)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %d-D pooling (1-D and 2-D supported)", d,
                           p->sp.n_kernel);
    }
    if (kind == QPOOL_MAX) {
        if (qf_node_attr_int(n, "storage_order", 0) != 0)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: storage_order 1", d);
        if ((s = qo_require_same_qp(g, n, &p->in, &p->out, err))) return s;
        n->params = p;
        return QF_OK;
    }
    if ((s = qo_parse_requant(n, &p->mode, err))) return s;
    qf_ref_rescale r;
    if (qf_ref_avgpool_rescale(p->in.scale, p->out.scale, 1, &r) != QF_OK)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: scale ratio %g / %g is out of range for requantization", d,
                       (double)p->in.scale, (double)p->out.scale);
    if (kind == QPOOL_AVG) {
        int64_t c = qf_node_attr_int(n, "count_include_pad", 0);
        if (c != 0 && c != 1)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: count_include_pad must be 0 or 1", d);
        p->count_include_pad = (int32_t)c;
        int64_t taps = 1;
        for (int i = 0; i < p->sp.n_kernel; i++)
            taps *= p->sp.kernel[i]; /* each < 2^31 */
        if ((s = check_taps(n, taps, err))) return s;
    }
    n->params = p;
    return QF_OK;
}

static qf_status qmaxpool_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qpool_parse(g, n, QPOOL_MAX, err);
}
static qf_status qavgpool_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qpool_parse(g, n, QPOOL_AVG, err);
}
static qf_status qgavgpool_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qpool_parse(g, n, QPOOL_GLOBAL_AVG, err);
}

/* Shapes -> kernel parameters (and the output shape) for every kind. */
static qf_status qpool_setup(const qf_node *n, const qf_tensor *x, qpool_kind kind,
                             qf_ref_pool_params *pp, qf_tensor *y, qf_err *err) {
    const qpool_params *p = n->params;
    char d[200];
    qf_status s = qo_check_dtype(n, x, QF_DT_I8, "input", err);
    if (s) return s;
    if (x->rank < 3)
        return qf_errf(err, QF_ERR_SHAPE, "%s: input must have rank >= 3 (got %d)",
                       qf_node_desc(n, d, sizeof d), x->rank);
    memset(pp, 0, sizeof *pp);
    y->dtype = QF_DT_I8;
    y->rank = x->rank;
    y->dims[0] = x->dims[0];
    y->dims[1] = x->dims[1];
    int64_t in_h, in_w;
    if (kind == QPOOL_GLOBAL_AVG) {
        /* the average over every spatial position is the average over one
         * flattened axis: in_h = 1, in_w = product of the spatial dims */
        int64_t count = 1;
        for (int i = 2; i < x->rank; i++) {
            if (x->dims[i] != 0 && count > INT32_MAX / x->dims[i])
                return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: more than 2^31 spatial positions",
                               qf_node_desc(n, d, sizeof d));
            count *= x->dims[i];
            y->dims[i] = 1;
        }
        if (count < 1)
            return qf_errf(err, QF_ERR_SHAPE, "%s: empty spatial extent",
                           qf_node_desc(n, d, sizeof d));
        if ((s = check_taps(n, count, err))) return s;
        in_h = 1;
        in_w = count;
        pp->out_h = pp->out_w = 1;
    } else {
        qf_spatial_geom geo;
        s = qf_spatial_resolve(n, &p->sp, x->rank - 2, x->dims + 2, NULL, &geo, err);
        if (s) return s;
        for (int i = 0; i < geo.nsp; i++)
            y->dims[2 + i] = geo.out[QF_SPATIAL_MAX - geo.nsp + i];
        /* normalised axes 1 and 2 are height and width (nsp <= 2) */
        in_h = geo.in[1];
        in_w = geo.in[2];
        if (!qo_fits_i32(geo.out[1]) || !qo_fits_i32(geo.out[2]) ||
            !qo_fits_i32(geo.pad_b[1] + geo.pad_e[1]) || !qo_fits_i32(geo.pad_b[2] + geo.pad_e[2]))
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: tensor extents exceed int32",
                           qf_node_desc(n, d, sizeof d));
        pp->out_h = (int32_t)geo.out[1];
        pp->out_w = (int32_t)geo.out[2];
        pp->k_h = (int32_t)geo.kernel[1];
        pp->k_w = (int32_t)geo.kernel[2];
        pp->stride_h = (int32_t)geo.stride[1];
        pp->stride_w = (int32_t)geo.stride[2];
        pp->dil_h = (int32_t)geo.dil[1];
        pp->dil_w = (int32_t)geo.dil[2];
        pp->pad_top = (int32_t)geo.pad_b[1];
        pp->pad_bottom = (int32_t)geo.pad_e[1];
        pp->pad_left = (int32_t)geo.pad_b[2];
        pp->pad_right = (int32_t)geo.pad_e[2];
    }
    if (!qo_fits_i32(x->dims[0]) || !qo_fits_i32(x->dims[1]) || !qo_fits_i32(in_h) ||
        !qo_fits_i32(in_w))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: tensor extents exceed int32",
                       qf_node_desc(n, d, sizeof d));
    pp->batch = (int32_t)x->dims[0];
    pp->channels = (int32_t)x->dims[1];
    pp->in_h = (int32_t)in_h;
    pp->in_w = (int32_t)in_w;
    pp->count_include_pad = p->count_include_pad;
    pp->in_scale = p->in.scale;
    pp->out_scale = p->out.scale;
    pp->in_zp = p->in.zp;
    pp->out_zp = p->out.zp;
    pp->act_min = p->act_min;
    pp->act_max = p->act_max;
    pp->mode = p->mode;
    return QF_OK;
}

static qf_status qpool_infer(const qf_node *n, const qf_tensor *in, qf_tensor *out, qpool_kind kind,
                             qf_err *err) {
    qf_ref_pool_params pp;
    return qpool_setup(n, &in[0], kind, &pp, &out[0], err);
}

static qf_status qpool_run(qf_threadpool *pool, const qf_node *n, const qf_tensor *in,
                           qf_tensor *out, qpool_kind kind, qf_err *err) {
    qf_ref_pool_params pp;
    qf_tensor y;
    qf_status s = qpool_setup(n, &in[0], kind, &pp, &y, err);
    if (s) return s;
    if (pp.batch == 0 || pp.channels == 0) return QF_OK; /* nothing to compute */
    /* the x86 kernels run the reference themselves for QF_ISA=scalar */
    const qf_isa isa = qf_isa_active();
    switch (kind) {
    case QPOOL_MAX:
        if (qf_x86_maxpool_s8_supported(&pp))
            return qf_x86_maxpool_s8(pool, isa, &pp, in[0].data, out[0].data, err);
        return qf_ref_maxpool_s8(&pp, in[0].data, out[0].data, err);
    case QPOOL_AVG: return qf_ref_avgpool_s8(&pp, in[0].data, out[0].data, err);
    default: return qf_x86_global_avgpool_s8(pool, isa, &pp, in[0].data, out[0].data, err);
    }
}

#define QPOOL_OP(id, kind, opname, parse_fn)                                                       \
    static qf_status id##_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,   \
                                int n_out, qf_err *err) {                                          \
        return qpool_infer(n, in, out, kind, err);                                                 \
    }                                                                                              \
    static qf_status id##_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,       \
                              int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {   \
        return qpool_run(ctx ? ctx->pool : NULL, n, in, out, kind, err);                           \
    }                                                                                              \
    const qf_op_def qf_opdef_##id = {                                                              \
        .name = opname, .parse = parse_fn, .infer = id##_infer, .run = id##_run};

QPOOL_OP(qmax_pool, QPOOL_MAX, "qforge.QMaxPool", qmaxpool_parse)
QPOOL_OP(qaverage_pool, QPOOL_AVG, "qforge.QAveragePool", qavgpool_parse)
QPOOL_OP(qglobal_average_pool, QPOOL_GLOBAL_AVG, "qforge.QGlobalAveragePool", qgavgpool_parse)
