/* qops_eltwise.c - qforge.QAdd, qforge.QMul and qforge.QLut, the element-wise
 * integer ops of the quantized runtime (docs/quantized-graph.md).
 *
 * QAdd/QMul take two int8 tensors with their own scales and zero points
 * (numpy broadcasting) and write the output's quantization, with a fused
 * act_min/act_max clamp; parse fills a qf_ref_eltwise_params template and
 * validates its multipliers once, run adds the shapes. QLut applies the
 * 256-entry table of its `table` attribute (table[q + 128]), which the
 * quantizer built from the float activation and the input/output qparams.
 */
#include "kernels/ref/qops_util.h"
#include "kernels/x86/qx86.h"
#include "kernels/x86/qx86_ew.h"

typedef enum { QBIN_ADD, QBIN_MUL } qbin_kind;

typedef struct qbin_params {
    qf_ref_eltwise_params tmpl; /* scales, zero points, clamp, mode; dims at run */
} qbin_params;

static qf_status qbin_parse(qf_graph *g, qf_node *n, qbin_kind kind, qf_err *err) {
    qf_status s = qo_check_io(n, 2, 2, err);
    if (s) return s;
    qbin_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    qo_act a, b, o;
    if ((s = qo_act_qp(g, n, n->inputs[0], "input A", false, &a, err)) ||
        (s = qo_act_qp(g, n, n->inputs[1], "input B", false, &b, err)) ||
        (s = qo_act_qp(g, n, n->outputs[0], "output", false, &o, err)))
        return s;
    qf_ref_eltwise_params *t = &p->tmpl;
    t->a_scale = a.scale;
    t->b_scale = b.scale;
    t->out_scale = o.scale;
    t->a_zp = a.zp;
    t->b_zp = b.zp;
    t->out_zp = o.zp;
    if ((s = qo_parse_requant(n, &t->mode, err)) ||
        (s = qo_parse_act_range(n, &o, &t->act_min, &t->act_max, err)))
        return s;
    /* the multipliers depend only on the scales: reject bad ratios now */
    if (kind == QBIN_ADD) {
        qf_ref_add_derived dv;
        s = qf_ref_add_prepare(t, &dv, err);
    } else {
        qf_ref_rescale r;
        s = qf_ref_mul_prepare(t, &r, err);
    }
    if (s) {
        char d[200];
        qf_err_prefix(err, "%s", qf_node_desc(n, d, sizeof d));
        return s;
    }
    n->params = p;
    return QF_OK;
}

static qf_status qadd_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qbin_parse(g, n, QBIN_ADD, err);
}
static qf_status qmul_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qbin_parse(g, n, QBIN_MUL, err);
}

static qf_status qbin_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    qf_status s;
    if ((s = qo_check_dtype(n, &in[0], QF_DT_I8, "input A", err)) ||
        (s = qo_check_dtype(n, &in[1], QF_DT_I8, "input B", err)) ||
        (s = qf_broadcast_shape(n, &in[0], &in[1], &out[0], err)))
        return s;
    out[0].dtype = QF_DT_I8;
    return QF_OK;
}

/* The template plus the operands' shapes right-aligned at the output rank. */
static void qbin_params_for(const qf_node *n, const qf_tensor *in, const qf_tensor *out,
                            qf_ref_eltwise_params *ep) {
    const qbin_params *p = n->params;
    *ep = p->tmpl;
    ep->rank = out->rank;
    for (int i = 0; i < out->rank; i++) {
        int ia = i - (out->rank - in[0].rank), ib = i - (out->rank - in[1].rank);
        ep->out_dims[i] = out->dims[i];
        ep->a_dims[i] = ia >= 0 ? in[0].dims[ia] : 1;
        ep->b_dims[i] = ib >= 0 ? in[1].dims[ib] : 1;
    }
}

static qf_status qadd_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_ref_eltwise_params ep;
    qbin_params_for(n, in, &out[0], &ep);
    /* same-shape FP32 adds (residual connections) take the vector kernel,
     * which falls back to the reference for an ISA without one */
    if (qf_x86_add_s8_supported(&ep))
        return qf_x86_add_s8(ctx ? ctx->pool : NULL, qf_isa_active(), &ep, in[0].data, in[1].data,
                             out[0].data, err);
    return qf_ref_add_s8(&ep, in[0].data, in[1].data, out[0].data, err);
}

bool qf_qadd_fusable(const qf_node *add, const qf_tensor *a, const qf_tensor *b,
                     const qf_tensor *out, qx_add_consts *c) {
    if (!add || add->op != QF_OP_QADD || !add->params || a->dtype != QF_DT_I8 ||
        b->dtype != QF_DT_I8 || out->dtype != QF_DT_I8 || a->rank != out->rank ||
        b->rank != out->rank || !qf_x86_isa_usable(qf_isa_active()))
        return false;
    const qf_tensor in[2] = {*a, *b};
    qf_ref_eltwise_params ep;
    qbin_params_for(add, in, out, &ep);
    for (int i = 0; i < out->rank; i++)
        if (ep.a_dims[i] != out->dims[i] || ep.b_dims[i] != out->dims[i]) return false;
    qf_err e;
    return qf_x86_add_s8_supported(&ep) && qf_x86_add_consts(&ep, c, &e) == QF_OK;
}

static qf_status qmul_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_ref_eltwise_params ep;
    qbin_params_for(n, in, &out[0], &ep);
    return qf_ref_mul_s8(&ep, in[0].data, in[1].data, out[0].data, err);
}

const qf_op_def qf_opdef_qadd = {.name = "qforge.QAdd",
                                 .flags = QF_OPF_ELEMENTWISE,
                                 .parse = qadd_parse,
                                 .infer = qbin_infer,
                                 .run = qadd_run};

const qf_op_def qf_opdef_qmul = {.name = "qforge.QMul",
                                 .flags = QF_OPF_ELEMENTWISE,
                                 .parse = qmul_parse,
                                 .infer = qbin_infer,
                                 .run = qmul_run};

/* ---- QLut ------------------------------------------------------------- */

/* One table, or with attribute `axis` one table per index of that axis
 * (`table` then holds channels x 256 entries, channel-major): the per-channel
 * affine maps (BatchNormalization, PRelu, Mul/Add by a per-channel constant)
 * that the quantizer turns into tables. */
typedef struct qlut_params {
    int axis;         /* -1: one table for every element */
    int64_t channels; /* tables (1 without axis) */
    int8_t *table;    /* channels x 256, table[c * 256 + q + 128] */
    int8_t *utable;   /* the same indexed by (uint8_t)q: the x86 driver's form */
} qlut_params;

static qf_status qlut_parse(qf_graph *g, qf_node *n, qf_err *err) {
    /* inputs after x: the float op's constants (attribute op), for export */
    qf_status s = qo_check_io(n, 1, QF_MAX_NODE_IO, err);
    if (s) return s;
    qo_act in, out;
    /* the table already embeds both quantizations; requiring them keeps
     * every activation value of a quantized graph self-describing */
    if ((s = qo_act_qp(g, n, n->inputs[0], "input", false, &in, err)) ||
        (s = qo_act_qp(g, n, n->outputs[0], "output", false, &out, err)))
        return s;
    char d[200];
    const qf_attr *ax = qf_node_attr(n, "axis");
    if (ax && (ax->type != QF_ATTR_INT || ax->i < 0 || ax->i >= QF_MAX_DIMS))
        return qf_errf(err, QF_ERR_FORMAT, "%s: attribute 'axis' must be an int in [0, %d)",
                       qf_node_desc(n, d, sizeof d), QF_MAX_DIMS);
    const qf_attr *a = qf_node_attr(n, "table");
    if (!a || a->type != QF_ATTR_INTS || a->n < 256 || a->n % 256 || (!ax && a->n != 256))
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: attribute 'table' must hold 256 ints (256 per channel with 'axis')",
                       qf_node_desc(n, d, sizeof d));
    qlut_params *p = qf_graph_alloc(g, sizeof *p);
    int8_t *t = qf_graph_alloc(g, 2 * (size_t)a->n);
    if (!p || !t) return qo_nomem(n, err);
    p->axis = ax ? (int)ax->i : -1;
    p->channels = a->n / 256;
    p->table = t;
    p->utable = t + a->n;
    for (int64_t i = 0; i < a->n; i++) {
        if (a->ints[i] < INT8_MIN || a->ints[i] > INT8_MAX)
            return qf_errf(err, QF_ERR_FORMAT, "%s: table[%lld] = %lld outside [-128, 127]",
                           qf_node_desc(n, d, sizeof d), (long long)i, (long long)a->ints[i]);
        p->table[i] = (int8_t)a->ints[i];
    }
    for (int64_t c = 0; c < p->channels; c++)
        for (int q = 0; q < 256; q++) /* code (int8_t)q sits at q ^ 128 of table */
            p->utable[c * 256 + q] = p->table[c * 256 + (q ^ 128)];
    n->params = p;
    return QF_OK;
}

static qf_status qlut_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    qf_status s = qo_check_dtype(n, &in[0], QF_DT_I8, "input", err);
    if (s) return s;
    const qlut_params *p = n->params;
    if (p->axis >= 0 && (p->axis >= in[0].rank || in[0].dims[p->axis] != p->channels)) {
        char d[200];
        return qf_errf(
            err, QF_ERR_SHAPE,
            "%s: %lld tables on axis %d, but the input has shape rank %d with %lld there",
            qf_node_desc(n, d, sizeof d), (long long)p->channels, p->axis, in[0].rank,
            (long long)(p->axis < in[0].rank ? in[0].dims[p->axis] : 0));
    }
    out[0] = in[0];
    out[0].data = NULL;
    return QF_OK;
}

static qf_status qlut_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const qlut_params *p = n->params;
    int64_t numel = qf_tensor_numel(&in[0]);
    if (numel <= 0) return QF_OK;
    /* elements as [outer, channels, inner]: channel c reads table c */
    int64_t outer = 1, inner = numel;
    if (p->axis >= 0) {
        for (int i = 0; i < p->axis; i++)
            outer *= in[0].dims[i];
        inner = numel / outer / p->channels;
    }
    const qf_isa isa = qf_isa_active();
    if (isa != QF_ISA_SCALAR && qf_x86_isa_usable(isa)) {
        qf_x86_lut_s8(ctx ? ctx->pool : NULL, isa, p->utable, p->channels, outer, inner, in[0].data,
                      out[0].data);
        return QF_OK;
    }
    const int8_t *x = in[0].data;
    int8_t *y = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < p->channels; c++, x += inner, y += inner)
            qf_ref_lut_apply(p->table + c * 256, x, y, (size_t)inner);
    return QF_OK;
}

const qf_op_def qf_opdef_qlut = {.name = "qforge.QLut",
                                 .flags = QF_OPF_ELEMENTWISE,
                                 .parse = qlut_parse,
                                 .infer = qlut_infer,
                                 .run = qlut_run};
