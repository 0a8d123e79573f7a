/* qops_misc.c - qforge.QConcat, qforge.QResize and qforge.QPad, the int8
 * data-movement ops of the quantized runtime (docs/quantized-graph.md).
 *
 * QConcat (axis, requant) requantizes each input whose scale or zero point
 * differs from the output's. QResize (mode nearest/linear,
 * coordinate_transformation_mode, nearest_mode, and a constant `scales`
 * FLOATS or `sizes` INTS attribute, one entry per axis) resizes the last one
 * or two axes of a rank-3/4 tensor; QPad (pads INTS, begins then ends as in
 * ONNX; mode constant/edge/reflect) pads with the zero point, i.e. real 0.
 * Neither QResize nor QPad requantizes: their output keeps the input's
 * scale and zero point.
 */
#include <stdio.h>
#include <string.h>

#include "kernels/ref/qops_util.h"
#include "kernels/x86/qx86_ew.h"

/* ---- QConcat ---------------------------------------------------------- */

typedef struct qconcat_params {
    int64_t axis; /* as written; normalised against the rank in infer */
    int n_in;
    float *scale; /* per input (graph arena) */
    int32_t *zp;
    qo_act out;
    qf_ref_rq_mode mode;
    /* per input: NULL when it is quantized like the output (copied), else
     * its 256-entry requantization table, indexed by (uint8_t)q. Requantizing
     * one int8 value is a pure function of that value, so the table is the
     * reference arithmetic (qf_ref_requantize) evaluated once per value. */
    int8_t **lut;
} qconcat_params;

static qf_status qconcat_parse(qf_graph *g, qf_node *n, qf_err *err) {
    qf_status s = qo_check_io(n, 1, QF_MAX_NODE_IO, err);
    if (s) return s;
    char d[200];
    qf_node_desc(n, d, sizeof d);
    qconcat_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    p->n_in = n->n_inputs;
    p->scale = qf_graph_alloc(g, sizeof(float) * (size_t)p->n_in);
    p->zp = qf_graph_alloc(g, sizeof(int32_t) * (size_t)p->n_in);
    if (!p->scale || !p->zp) return qo_nomem(n, err);
    for (int i = 0; i < p->n_in; i++) {
        if (n->inputs[i] < 0) return qf_errf(err, QF_ERR_FORMAT, "%s: input %d is omitted", d, i);
        qo_act a;
        char role[32];
        snprintf(role, sizeof role, "input %d", i);
        if ((s = qo_act_qp(g, n, n->inputs[i], role, false, &a, err))) return s;
        p->scale[i] = a.scale;
        p->zp[i] = a.zp;
    }
    if ((s = qo_act_qp(g, n, n->outputs[0], "output", false, &p->out, err)) ||
        (s = qo_parse_requant(n, &p->mode, err)))
        return s;
    const qf_attr *ax = qf_node_attr(n, "axis");
    if (!ax || ax->type != QF_ATTR_INT)
        return qf_errf(err, QF_ERR_FORMAT, "%s: required attribute 'axis' missing", d);
    p->axis = ax->i;
    /* every input's multiplier scale_i / out_scale must be representable */
    p->lut = qf_graph_alloc(g, sizeof(int8_t *) * (size_t)p->n_in);
    if (!p->lut) return qo_nomem(n, err);
    for (int i = 0; i < p->n_in; i++) {
        qf_ref_rescale r;
        if (qf_ref_rescale_init((double)p->scale[i] / (double)p->out.scale, &r) != QF_OK)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: input %d scale %g is out of range for output scale %g", d, i,
                           (double)p->scale[i], (double)p->out.scale);
        p->lut[i] = NULL;
        if (p->scale[i] == p->out.scale && p->zp[i] == p->out.zp) continue;
        if (!(p->lut[i] = qf_graph_alloc(g, 256))) return qo_nomem(n, err);
        for (int q = -128; q < 128; q++)
            p->lut[i][(uint8_t)(int8_t)q] = (int8_t)qf_ref_requantize(
                p->mode, q - p->zp[i], &r, p->out.zp, -128, 127);
    }
    n->params = p;
    return QF_OK;
}

/* Shapes -> output shape, the normalised axis, outer and inner extents. */
static qf_status qconcat_setup(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *y,
                               int *axis, int64_t *outer, int64_t *inner, qf_err *err) {
    const qconcat_params *p = n->params;
    char d[200];
    qf_status s;
    for (int i = 0; i < n_in; i++)
        if ((s = qo_check_dtype(n, &in[i], QF_DT_I8, "an input", err))) return s;
    const qf_tensor *x0 = &in[0];
    if (x0->rank < 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: inputs must have rank >= 1",
                       qf_node_desc(n, d, sizeof d));
    if ((s = qf_norm_axis(n, p->axis, x0->rank, axis, err))) return s;
    *y = *x0;
    y->data = NULL;
    y->dims[*axis] = 0;
    for (int i = 0; i < n_in; i++) {
        const qf_tensor *x = &in[i];
        bool ok = x->rank == x0->rank;
        for (int k = 0; ok && k < x0->rank; k++)
            if (k != *axis && x->dims[k] != x0->dims[k]) ok = false;
        if (!ok)
            return qf_errf(err, QF_ERR_SHAPE, "%s: input %d does not match input 0 outside axis %d",
                           qf_node_desc(n, d, sizeof d), i, *axis);
        y->dims[*axis] += x->dims[*axis];
    }
    *outer = 1;
    *inner = 1;
    for (int k = 0; k < *axis; k++)
        *outer *= y->dims[k];
    for (int k = *axis + 1; k < y->rank; k++)
        *inner *= y->dims[k];
    if (qf_tensor_numel(y) < 0)
        return qf_errf(err, QF_ERR_SHAPE, "%s: output too large", qf_node_desc(n, d, sizeof d));
    return QF_OK;
}

static qf_status qconcat_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    int axis;
    int64_t outer, inner;
    return qconcat_setup(n, in, n_in, &out[0], &axis, &outer, &inner, err);
}

static qf_status qconcat_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const qconcat_params *p = n->params;
    qf_tensor y;
    int axis;
    int64_t outer, inner;
    qf_status s = qconcat_setup(n, in, n_in, &y, &axis, &outer, &inner, err);
    if (s) return s;
    /* the tables of parse give qf_ref_concat_s8's results (test_qops); the
     * x86 driver splits the copy over the pool and looks them up with
     * vpermi2b where the CPU has it */
    const int8_t *src[QF_MAX_NODE_IO], *luts[QF_MAX_NODE_IO];
    int64_t block[QF_MAX_NODE_IO];
    if (n_in > 64) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: more than 64 inputs",
                       qf_node_desc(n, d, sizeof d));
    }
    for (int i = 0; i < n_in; i++) {
        src[i] = in[i].data;
        luts[i] = p->lut[i];
        block[i] = in[i].dims[axis] * inner;
    }
    const qx_concat c = {.n_in = n_in,
                         .src = src,
                         .lut = luts,
                         .block = block,
                         .outer = outer,
                         .out_block = y.dims[axis] * inner,
                         .dst = out[0].data};
    qf_x86_concat_s8(ctx ? ctx->pool : NULL, qf_isa_active(), &c);
    return QF_OK;
}

const qf_op_def qf_opdef_qconcat = {
    .name = "qforge.QConcat", .parse = qconcat_parse, .infer = qconcat_infer, .run = qconcat_run};

/* ---- QResize ---------------------------------------------------------- */

typedef struct qresize_params {
    qf_ref_resize_mode mode;
    qf_ref_resize_coord coord;
    qf_ref_resize_nearest nearest;
    bool has_scales;
    int count; /* entries of scales/sizes: the input rank */
    float scales[QF_MAX_DIMS];
    int64_t sizes[QF_MAX_DIMS];
} qresize_params;

typedef struct name_val {
    const char *name;
    int val;
} name_val;

static qf_status pick(const qf_node *n, const char *attr, const char *dflt, const name_val *tab,
                      int n_tab, int *out, qf_err *err) {
    const char *v = qf_node_attr_str(n, attr, dflt);
    for (int i = 0; i < n_tab; i++)
        if (strcmp(v, tab[i].name) == 0) {
            *out = tab[i].val;
            return QF_OK;
        }
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s '%s' not supported",
                   qf_node_desc(n, d, sizeof d), attr, v);
}

static const name_val resize_modes[] = {{"nearest", QF_RESIZE_NEAREST},
                                        {"linear", QF_RESIZE_LINEAR}};
static const name_val resize_coords[] = {{"half_pixel", QF_COORD_HALF_PIXEL},
                                         {"pytorch_half_pixel", QF_COORD_PYTORCH_HALF_PIXEL},
                                         {"align_corners", QF_COORD_ALIGN_CORNERS},
                                         {"asymmetric", QF_COORD_ASYMMETRIC}};
static const name_val resize_nearests[] = {{"round_prefer_floor", QF_NEAREST_ROUND_PREFER_FLOOR},
                                           {"round_prefer_ceil", QF_NEAREST_ROUND_PREFER_CEIL},
                                           {"floor", QF_NEAREST_FLOOR},
                                           {"ceil", QF_NEAREST_CEIL}};

static qf_status qresize_parse(qf_graph *g, qf_node *n, qf_err *err) {
    qf_status s = qo_check_io(n, 1, 1, err);
    if (s) return s;
    char d[200];
    qf_node_desc(n, d, sizeof d);
    qresize_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    qo_act in, out;
    if ((s = qo_act_qp(g, n, n->inputs[0], "input", false, &in, err)) ||
        (s = qo_act_qp(g, n, n->outputs[0], "output", false, &out, err)) ||
        (s = qo_require_same_qp(g, n, &in, &out, err)))
        return s;
    int mode = 0, coord = 0, nearest = 0;
    if ((s = pick(n, "mode", "nearest", resize_modes, 2, &mode, err)) ||
        (s = pick(n, "coordinate_transformation_mode", "half_pixel", resize_coords, 4, &coord,
                  err)) ||
        (s = pick(n, "nearest_mode", "round_prefer_floor", resize_nearests, 4, &nearest, err)))
        return s;
    p->mode = (qf_ref_resize_mode)mode;
    p->coord = (qf_ref_resize_coord)coord;
    p->nearest = (qf_ref_resize_nearest)nearest;
    if (qf_node_attr_int(n, "antialias", 0) != 0 || qf_node_attr(n, "axes"))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: antialias and axes are not supported", d);
    const float *sc;
    const int64_t *sz;
    int n_sc = qf_node_attr_floats(n, "scales", &sc);
    int n_sz = qf_node_attr_ints(n, "sizes", &sz);
    if ((n_sc > 0) == (n_sz > 0))
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: exactly one of the attributes scales and sizes must be given", d);
    p->has_scales = n_sc > 0;
    p->count = p->has_scales ? n_sc : n_sz;
    if (p->count > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %d scales/sizes", d, p->count);
    for (int i = 0; i < p->count; i++) {
        if (p->has_scales) {
            if (!(sc[i] > 0.0f && sc[i] <= 1e6f))
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scales[%d] = %g", d, i, (double)sc[i]);
            p->scales[i] = sc[i];
        } else {
            if (sz[i] < 1 || sz[i] > INT32_MAX)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes[%d] = %lld", d, i,
                               (long long)sz[i]);
            p->sizes[i] = sz[i];
        }
    }
    n->params = p;
    return QF_OK;
}

static qf_status qresize_setup(const qf_node *n, const qf_tensor *x, qf_ref_resize_params *rp,
                               qf_tensor *y, qf_err *err) {
    const qresize_params *p = n->params;
    char d[200];
    qf_node_desc(n, d, sizeof d);
    qf_status s = qo_check_dtype(n, x, QF_DT_I8, "input", err);
    if (s) return s;
    if (x->rank != 3 && x->rank != 4)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: input rank %d (3 or 4 supported)", d, x->rank);
    if (p->count != x->rank)
        return qf_errf(err, QF_ERR_SHAPE, "%s: %d scales/sizes for an input of rank %d", d,
                       p->count, x->rank);
    *y = *x;
    y->data = NULL;
    double sc[QF_MAX_DIMS];
    for (int i = 0; i < x->rank; i++) {
        if (p->has_scales) {
            /* float product, as ONNX Runtime (and the float Resize) computes it */
            float o = floorf((float)x->dims[i] * p->scales[i]);
            if (!(o >= 1.0f && o <= (float)INT32_MAX))
                return qf_errf(err, QF_ERR_SHAPE, "%s: axis %d: scale %g gives output size %g", d,
                               i, (double)p->scales[i], (double)o);
            y->dims[i] = (int64_t)o;
            sc[i] = p->scales[i];
        } else {
            y->dims[i] = p->sizes[i];
            sc[i] = -1.0; /* the kernel uses out / in */
        }
        if (i < 2 && y->dims[i] != x->dims[i])
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: only the spatial axes can be resized (axis %d: %lld -> %lld)", d, i,
                           (long long)x->dims[i], (long long)y->dims[i]);
        if (!qo_fits_i32(x->dims[i]))
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: tensor extents exceed int32", d);
    }
    memset(rp, 0, sizeof *rp);
    rp->batch = (int32_t)x->dims[0];
    rp->channels = (int32_t)x->dims[1];
    /* rank 3 resizes one axis: a height of 1 that stays 1 */
    rp->in_h = x->rank == 4 ? (int32_t)x->dims[2] : 1;
    rp->out_h = x->rank == 4 ? (int32_t)y->dims[2] : 1;
    rp->scale_h = x->rank == 4 ? sc[2] : 1.0;
    rp->in_w = (int32_t)x->dims[x->rank - 1];
    rp->out_w = (int32_t)y->dims[x->rank - 1];
    rp->scale_w = sc[x->rank - 1];
    rp->mode = p->mode;
    rp->coord = p->coord;
    rp->nearest = p->nearest;
    return QF_OK;
}

static qf_status qresize_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    qf_ref_resize_params rp;
    return qresize_setup(n, &in[0], &rp, &out[0], err);
}

static qf_status qresize_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_ref_resize_params rp;
    qf_tensor y;
    qf_status s = qresize_setup(n, &in[0], &rp, &y, err);
    if (s) return s;
    if (rp.batch == 0 || rp.channels == 0 || rp.in_h == 0 || rp.in_w == 0) return QF_OK;
    return qf_ref_resize_s8(&rp, in[0].data, out[0].data, err);
}

const qf_op_def qf_opdef_qresize = {
    .name = "qforge.QResize", .parse = qresize_parse, .infer = qresize_infer, .run = qresize_run};

/* ---- QPad ------------------------------------------------------------- */

typedef struct qpad_params {
    qf_ref_pad_mode mode;
    int n_pads;
    int64_t pads[2 * QF_MAX_DIMS];
    int32_t value; /* the input zero point */
} qpad_params;

static qf_status qpad_parse(qf_graph *g, qf_node *n, qf_err *err) {
    qf_status s = qo_check_io(n, 1, 1, err);
    if (s) return s;
    char d[200];
    qf_node_desc(n, d, sizeof d);
    qpad_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    qo_act in, out;
    if ((s = qo_act_qp(g, n, n->inputs[0], "input", false, &in, err)) ||
        (s = qo_act_qp(g, n, n->outputs[0], "output", false, &out, err)) ||
        (s = qo_require_same_qp(g, n, &in, &out, err)))
        return s;
    p->value = in.zp;
    const char *mode = qf_node_attr_str(n, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        p->mode = QF_PAD_CONSTANT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = QF_PAD_EDGE;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = QF_PAD_REFLECT;
    else
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: mode '%s' not supported", d, mode);
    if (qf_node_attr_float(n, "value", 0.0f) != 0.0f)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: a constant other than real 0 (the zero point) is not supported", d);
    const int64_t *pads;
    p->n_pads = qf_node_attr_ints(n, "pads", &pads);
    if (!qf_node_attr(n, "pads") || p->n_pads % 2 || p->n_pads > 2 * QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_FORMAT, "%s: attribute 'pads' missing or malformed", d);
    for (int i = 0; i < p->n_pads; i++) {
        if (pads[i] < -INT32_MAX || pads[i] > INT32_MAX)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: pads[%d] = %lld", d, i,
                           (long long)pads[i]);
        p->pads[i] = pads[i];
    }
    n->params = p;
    return QF_OK;
}

static qf_status qpad_setup(const qf_node *n, const qf_tensor *x, qf_ref_pad_params *pp,
                            qf_tensor *y, qf_err *err) {
    const qpad_params *p = n->params;
    char d[200];
    qf_node_desc(n, d, sizeof d);
    qf_status s = qo_check_dtype(n, x, QF_DT_I8, "input", err);
    if (s) return s;
    if (x->rank < 1 || p->n_pads != 2 * x->rank)
        return qf_errf(err, QF_ERR_SHAPE, "%s: %d pads for an input of rank %d", d, p->n_pads,
                       x->rank);
    memset(pp, 0, sizeof *pp);
    *y = *x;
    y->data = NULL;
    pp->rank = x->rank;
    pp->mode = p->mode;
    pp->value = p->value;
    for (int i = 0; i < x->rank; i++) {
        int64_t b = p->pads[i], e = p->pads[i + x->rank];
        int64_t o = x->dims[i] + b + e; /* each term below 2^31 in magnitude */
        if (o < 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: axis %d: pads %lld, %lld crop more than %lld", d,
                           i, (long long)b, (long long)e, (long long)x->dims[i]);
        if (p->mode != QF_PAD_CONSTANT && x->dims[i] == 0 && o > 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: axis %d is empty and cannot be %s-padded", d, i,
                           p->mode == QF_PAD_EDGE ? "edge" : "reflect");
        pp->in_dims[i] = x->dims[i];
        pp->pad_begin[i] = b;
        pp->pad_end[i] = e;
        y->dims[i] = o;
    }
    if (qf_tensor_numel(y) < 0) return qf_errf(err, QF_ERR_SHAPE, "%s: output too large", d);
    return QF_OK;
}

static qf_status qpad_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    qf_ref_pad_params pp;
    return qpad_setup(n, &in[0], &pp, &out[0], err);
}

static qf_status qpad_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_ref_pad_params pp;
    qf_tensor y;
    qf_status s = qpad_setup(n, &in[0], &pp, &y, err);
    if (s) return s;
    return qf_ref_pad_s8(&pp, in[0].data, out[0].data, err);
}

const qf_op_def qf_opdef_qpad = {
    .name = "qforge.QPad", .parse = qpad_parse, .infer = qpad_infer, .run = qpad_run};
