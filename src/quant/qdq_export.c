/* qdq_export.c - quantized qforge graph -> float + QDQ qf_graph -> ONNX file.
 *
 * The rewrite rules are listed in qdq_export.h. The builder walks the nodes
 * of the quantized graph once, creating the new graph's values on demand:
 * vmap[] maps a value of the quantized graph to its twin in the new graph
 * (same name; uint8 instead of int8 for activations in uint8 mode), and the
 * scale / zero-point initializers of each quantized value are made once and
 * shared by every QuantizeLinear and DequantizeLinear of that value. Every
 * qforge consumer gets its own DequantizeLinear, the form ORT's QDQ
 * selectors expect (one DQ per node unit).
 */
#include "quant/qdq_export.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "kernels/ref/qref.h"

#define NAME_LEN 512

typedef struct qx {
    const qf_graph *qg;
    qf_graph *g;
    qf_err *err;
    int opset;
    bool u8;
    int *vmap;      /* qg value -> g value, -1 until made */
    int *qs, *qz;   /* qg quantized value -> g scale / zero-point initializer */
    int *wmap;      /* qg weight -> g unpacked int8 initializer */
    int *ws, *wz;   /* qg weight -> g weight scale / zero point */
    char desc[200]; /* node being rewritten, for messages */
} qx;

void qf_qdq_export_options_init(qf_qdq_export_options *opt) {
    if (opt) memset(opt, 0, sizeof *opt);
}

/* ---- small builders ------------------------------------------------------- */

static qf_status nomem(qx *c) {
    return qf_errf(c->err, QF_ERR_NOMEM, "qdq export: %s: out of memory", c->desc);
}

static const char *qname(const qx *c, int v) {
    return v >= 0 && v < c->qg->n_values ? c->qg->values[v].name : "(omitted)";
}

/* A value named "<base><suffix>" (names need not be unique here: the ONNX
 * writer renames repeats, keeping the graph inputs' and outputs' names). */
static qf_status new_val(qx *c, const char *base, const char *suffix, qf_dtype dt, int rank,
                         const int64_t *dims, int *out) {
    char name[NAME_LEN];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    *out = qf_graph_add_value(c->g, name, dt, rank, dims);
    return *out < 0 ? nomem(c) : QF_OK;
}

/* Same shape as value qv of the quantized graph, another dtype. */
static qf_status val_like(qx *c, int qv, const char *base, const char *suffix, qf_dtype dt,
                          int *out) {
    const qf_value *v = &c->qg->values[qv];
    return new_val(c, base, suffix, dt, v->rank, v->rank > 0 ? v->dims : NULL, out);
}

/* A constant; `data` is copied. */
static qf_status new_const(qx *c, const char *base, const char *suffix, qf_dtype dt, int rank,
                           const int64_t *dims, const void *data, int *out) {
    qf_status s = new_val(c, base, suffix, dt, rank, dims, out);
    if (s) return s;
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.data = (void *)data;
    if (qf_graph_set_const(c->g, *out, &t, NULL)) return nomem(c);
    return QF_OK;
}

static qf_status scalar_f32(qx *c, const char *base, const char *suffix, float v, int *out) {
    return new_const(c, base, suffix, QF_DT_F32, 0, NULL, &v, out);
}

static qf_status node(qx *c, const char *base, const char *suffix, const char *op, const int *ins,
                      int n_in, int out, const qf_attr *attrs, int n_attrs) {
    char name[NAME_LEN];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    int k = qf_graph_add_node(c->g, name, op, "", c->opset, ins, n_in, &out, 1, attrs, n_attrs);
    return k < 0 ? nomem(c) : QF_OK;
}

#define A_INT(nm, v) ((qf_attr){.name = (nm), .type = QF_ATTR_INT, .i = (v)})

/* ---- quantization parameters ------------------------------------------------- */

/* Storage type of quantized value v in the new graph. Only non-constant
 * 8-bit values (activations) move to uint8 in uint8 mode; weights and other
 * constants keep their type. */
static qf_dtype qtype(const qx *c, int v) {
    const qf_value *val = &c->qg->values[v];
    qf_dtype t = val->dtype;
    if (t == QF_DT_UNDEF && val->qp) t = val->qp->bits > 8 ? QF_DT_I16 : QF_DT_I8;
    if (c->u8 && t == QF_DT_I8 && !(val->flags & QF_VAL_CONST)) return QF_DT_U8;
    return t;
}

static void qtype_range(qf_dtype t, int32_t *lo, int32_t *hi) {
    switch (t) {
    case QF_DT_U8: *lo = 0, *hi = 255; break;
    case QF_DT_I8: *lo = -128, *hi = 127; break;
    case QF_DT_U16: *lo = 0, *hi = 65535; break;
    default: *lo = -32768, *hi = 32767; break;
    }
}

/* Offset from the quantized graph's zero points to the new graph's. */
static int32_t zp_shift(const qx *c, int v) {
    return qtype(c, v) == QF_DT_U8 && c->qg->values[v].dtype != QF_DT_U8 ? 128 : 0;
}

/* The qparams of quantized value v, which the current node reads or writes
 * as `role`; per_tensor: the value must have one scale. */
static qf_status get_qp(qx *c, int v, const char *role, bool per_tensor, const qf_qparams **out) {
    const qf_qparams *q = c->qg->values[v].qp;
    const char *nm = qname(c, v);
    if (!q)
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: %s '%s' has no quantization parameters", c->desc, role, nm);
    if (q->n < 1 || !q->scale || !q->zero_point)
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: %s '%s' has empty quantization parameters", c->desc, role,
                       nm);
    if (per_tensor && q->n != 1)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: %s '%s' is quantized per channel (%d scales); expected "
                       "one scale",
                       c->desc, role, nm, q->n);
    for (int i = 0; i < q->n; i++)
        if (!isfinite(q->scale[i]) || !(q->scale[i] > 0.0f))
            return qf_errf(c->err, QF_ERR_FORMAT,
                           "qdq export: %s: %s '%s': scale[%d] = %g must be positive and finite",
                           c->desc, role, nm, i, (double)q->scale[i]);
    *out = q;
    return QF_OK;
}

/* Scale and zero-point initializers of quantized value v (made once). */
static qf_status qparam_consts(qx *c, int v, const char *role, int *s_out, int *z_out,
                               int *axis_out) {
    const qf_qparams *q;
    qf_status s = get_qp(c, v, role, false, &q);
    if (s) return s;
    *axis_out = q->n > 1 ? q->axis : -1;
    if (c->qs[v] >= 0) {
        *s_out = c->qs[v];
        *z_out = c->qz[v];
        return QF_OK;
    }
    const char *nm = qname(c, v);
    qf_dtype t = qtype(c, v);
    if (t != QF_DT_I8 && t != QF_DT_U8 && t != QF_DT_I16)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: %s '%s' is %s; quantized values must be int8 or int16",
                       c->desc, role, nm, qf_dtype_name(c->qg->values[v].dtype));
    if (t == QF_DT_I16 && c->opset < 21)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: %s '%s' has 16-bit activations, which QuantizeLinear "
                       "supports from opset 21 (exporting opset %d)",
                       c->desc, role, nm, c->opset);
    int32_t lo, hi, shift = zp_shift(c, v);
    qtype_range(t, &lo, &hi);
    uint8_t zbuf[QF_MAX_NODE_IO * 2];
    void *zd = q->n * 2 <= (int)sizeof zbuf ? zbuf : qf_malloc((size_t)q->n * 2);
    if (!zd) return nomem(c);
    for (int i = 0; i < q->n; i++) {
        int32_t z = q->zero_point[i] + shift;
        if (z < lo || z > hi) {
            if (zd != zbuf) qf_free(zd);
            return qf_errf(c->err, QF_ERR_FORMAT,
                           "qdq export: %s: %s '%s': zero point %d outside %s", c->desc, role, nm,
                           (int)q->zero_point[i], qf_dtype_name(c->qg->values[v].dtype));
        }
        if (t == QF_DT_I16)
            ((int16_t *)zd)[i] = (int16_t)z;
        else if (t == QF_DT_I8)
            ((int8_t *)zd)[i] = (int8_t)z;
        else
            ((uint8_t *)zd)[i] = (uint8_t)z;
    }
    int64_t n = q->n;
    int rank = q->n > 1 ? 1 : 0;
    s = new_const(c, nm, "/scale", QF_DT_F32, rank, &n, q->scale, &c->qs[v]);
    if (!s) s = new_const(c, nm, "/zero_point", t, rank, &n, zd, &c->qz[v]);
    if (zd != zbuf) qf_free(zd);
    if (s) return s;
    *s_out = c->qs[v];
    *z_out = c->qz[v];
    return QF_OK;
}

/* ---- value mapping ----------------------------------------------------------- */

/* The new graph's twin of quantized-graph value v (made on first use). */
static qf_status map_val(qx *c, int v, int *out) {
    if (v < 0) {
        *out = -1;
        return QF_OK;
    }
    if (c->vmap[v] >= 0) {
        *out = c->vmap[v];
        return QF_OK;
    }
    const qf_value *qv = &c->qg->values[v];
    qf_status s;
    if ((qv->flags & QF_VAL_CONST) && qv->data) {
        qf_tensor t = qf_value_tensor(qv);
        s = new_const(c, qv->name, "", t.dtype, t.rank, t.dims, t.data, out);
    } else {
        s = val_like(c, v, qv->name, "", qv->qp ? qtype(c, v) : qv->dtype, out);
    }
    if (s) return s;
    c->vmap[v] = *out;
    return QF_OK;
}

/* DequantizeLinear of new-graph value nv, which holds quantized-graph value
 * qv (whose qparams apply), for the current node's input `role`. */
static qf_status dq_of(qx *c, const qf_node *n, int nv, int qv, const char *role, int *out) {
    int sv, zv, axis;
    qf_status s = qparam_consts(c, qv, role, &sv, &zv, &axis);
    if (s) return s;
    char suffix[64];
    snprintf(suffix, sizeof suffix, "/%s_dq", role);
    if ((s = val_like(c, qv, n->name, suffix, QF_DT_F32, out))) return s;
    int ins[3] = {nv, sv, zv};
    qf_attr a = A_INT("axis", axis);
    return node(c, n->name, suffix, "DequantizeLinear", ins, 3, *out, &a, axis >= 0);
}

static qf_status dq(qx *c, const qf_node *n, int qv, const char *role, int *out) {
    int nv;
    qf_status s = map_val(c, qv, &nv);
    return s ? s : dq_of(c, n, nv, qv, role, out);
}

/* QuantizeLinear of float value fv into the twin of output qv. */
static qf_status q_out(qx *c, const qf_node *n, int fv, int qv) {
    int sv, zv, axis, nv;
    qf_status s = qparam_consts(c, qv, "output", &sv, &zv, &axis);
    if (!s) s = map_val(c, qv, &nv);
    if (s) return s;
    int ins[3] = {fv, sv, zv};
    qf_attr a = A_INT("axis", axis);
    return node(c, n->name, "/q", "QuantizeLinear", ins, 3, nv, &a, axis >= 0);
}

/* Float result of the current node's op, shaped like its output. */
static qf_status float_out(qx *c, const qf_node *n, const char *suffix, int *out) {
    return val_like(c, n->outputs[0], n->name, suffix, QF_DT_F32, out);
}

/* The fused act_min/act_max clamp in float, when it is tighter than the
 * output type: Relu when it is exactly "real >= 0", else Clip with the
 * dequantized bounds. QuantizeLinear is monotone, so clamping the float
 * input at s * (b - z) gives exactly the integer clamp at b. */
static qf_status clamp(qx *c, const qf_node *n, int *fv) {
    int qv = n->outputs[0];
    const qf_qparams *q;
    qf_status s = get_qp(c, qv, "output", true, &q);
    if (s) return s;
    int32_t tmin, tmax;
    qf_dtype t = c->qg->values[qv].dtype;
    if (t == QF_DT_UNDEF) t = q->bits > 8 ? QF_DT_I16 : QF_DT_I8;
    qtype_range(t, &tmin, &tmax);
    int64_t lo = qf_node_attr_int(n, "act_min", tmin), hi = qf_node_attr_int(n, "act_max", tmax);
    if (lo < tmin || hi > tmax || lo > hi)
        return qf_errf(c->err, QF_ERR_INVALID_ARG,
                       "qdq export: %s: act_min %lld / act_max %lld invalid for %s", c->desc,
                       (long long)lo, (long long)hi, qf_dtype_name(t));
    if (lo == tmin && hi == tmax) return QF_OK;
    const float sc = q->scale[0];
    const int32_t z = q->zero_point[0];
    int y;
    if ((s = float_out(c, n, "/act", &y))) return s;
    if (lo == z && hi == tmax) {
        if ((s = node(c, n->name, "/relu", "Relu", fv, 1, y, NULL, 0))) return s;
    } else {
        int ins[3] = {*fv, -1, -1};
        if (lo > tmin && (s = scalar_f32(c, n->name, "/act_min", sc * (float)(lo - z), &ins[1])))
            return s;
        if (hi < tmax && (s = scalar_f32(c, n->name, "/act_max", sc * (float)(hi - z), &ins[2])))
            return s;
        if ((s = node(c, n->name, "/clip", "Clip", ins, 3, y, NULL, 0))) return s;
    }
    *fv = y;
    return QF_OK;
}

/* Copy the listed attributes of n that are present (deep copies). */
static qf_status copy_attrs(qx *c, const qf_node *n, const char *const *names, int n_names,
                            qf_attr *dst, int *n_dst) {
    for (int i = 0; i < n_names; i++) {
        const qf_attr *a = qf_node_attr(n, names[i]);
        if (!a) continue;
        if (qf_attr_copy(c->g, a, &dst[*n_dst])) return nomem(c);
        (*n_dst)++;
    }
    return QF_OK;
}

/* ---- QConv / QGemm ------------------------------------------------------------- */

/* Unpacked int8 weight initializer of qforge weight wv (shape in *rank/dims)
 * and its DequantizeLinear for node n; *w_scale gets the weight scales,
 * *n_scale their count (1 or rows). */
static qf_status weights(qx *c, const qf_node *n, int *w_dq, const float **w_scale, int *n_scale) {
    int wv = n->inputs[1];
    const qf_value *w = &c->qg->values[wv];
    if (!(w->flags & QF_VAL_CONST) || !w->data)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED, "qdq export: %s: weight '%s' must be a constant",
                       c->desc, w->name);
    int64_t bits = qf_node_attr_int(n, "w_bits", 8);
    if (bits != 8 && bits != 4 && bits != 2)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED, "qdq export: %s: w_bits %lld", c->desc,
                       (long long)bits);
    int rank;
    int64_t dims[QF_MAX_DIMS];
    if (bits == 8) {
        rank = w->rank;
        for (int i = 0; i < rank; i++)
            dims[i] = w->dims[i];
    } else {
        const int64_t *ws;
        rank = qf_node_attr_ints(n, "w_shape", &ws);
        if (rank == 0 || rank > QF_MAX_DIMS)
            return qf_errf(c->err, QF_ERR_FORMAT,
                           "qdq export: %s: packed weight '%s' needs the w_shape attribute",
                           c->desc, w->name);
        for (int i = 0; i < rank; i++)
            dims[i] = ws[i];
    }
    if (rank < 2)
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: weight '%s' has rank %d", c->desc,
                       w->name, rank);
    int64_t rows = dims[0], cols = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1 || dims[i] > INT32_MAX || (i > 0 && cols > INT32_MAX / dims[i]))
            return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: weight '%s' dim %d is %lld",
                           c->desc, w->name, i, (long long)dims[i]);
        if (i > 0) cols *= dims[i];
    }
    size_t need, count;
    if (!qf_mul_size((size_t)rows, qf_ref_packed_row_bytes(cols, (int)bits), &need) ||
        !qf_mul_size((size_t)rows, (size_t)cols, &count))
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: weight '%s' is too large", c->desc,
                       w->name);
    if (w->dtype != (bits == 8 ? QF_DT_I8 : QF_DT_U8) || w->nbytes != need)
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: weight '%s' (%s, %zu bytes) does not hold %lld x %lld "
                       "%d-bit values",
                       c->desc, w->name, qf_dtype_name(w->dtype), w->nbytes, (long long)rows,
                       (long long)cols, (int)bits);
    const qf_qparams *q;
    qf_status s = get_qp(c, wv, "weight", false, &q);
    if (s) return s;
    if (q->n != 1 && (q->n != rows || q->axis != 0))
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: weight '%s' has %d scales on axis %d; expected 1 or %lld "
                       "on axis 0",
                       c->desc, w->name, q->n, q->axis, (long long)rows);
    for (int i = 0; i < q->n; i++)
        if (q->zero_point[i] < -128 || q->zero_point[i] > 127)
            return qf_errf(c->err, QF_ERR_FORMAT,
                           "qdq export: %s: weight '%s' zero point %d outside int8", c->desc,
                           w->name, (int)q->zero_point[i]);
    *w_scale = q->scale;
    *n_scale = q->n;

    if (c->wmap[wv] < 0) { /* first reader: make the initializers */
        int8_t *wd = qf_malloc_aligned(count ? count : 1);
        if (!wd) return nomem(c);
        if (bits == 8) {
            memcpy(wd, w->data, count);
        } else if (qf_ref_unpack_weights(w->data, rows, cols, (int)bits, wd, NULL)) {
            qf_free_aligned(wd);
            return qf_errf(c->err, QF_ERR_INTERNAL, "qdq export: %s: cannot unpack '%s'", c->desc,
                           w->name);
        }
        int v;
        if ((s = new_val(c, w->name, "", QF_DT_I8, rank, dims, &v))) {
            qf_free_aligned(wd);
            return s;
        }
        qf_graph_set_const_owned(c->g, v, QF_DT_I8, rank, dims, wd, count);
        int8_t zp[QF_MAX_NODE_IO];
        int8_t *zd = q->n <= QF_MAX_NODE_IO ? zp : qf_malloc((size_t)q->n);
        if (!zd) return nomem(c);
        for (int i = 0; i < q->n; i++)
            zd[i] = (int8_t)q->zero_point[i];
        int64_t nn = q->n;
        int r = q->n > 1 ? 1 : 0;
        s = new_const(c, w->name, "/scale", QF_DT_F32, r, &nn, q->scale, &c->ws[wv]);
        if (!s) s = new_const(c, w->name, "/zero_point", QF_DT_I8, r, &nn, zd, &c->wz[wv]);
        if (zd != zp) qf_free(zd);
        if (s) return s;
        c->wmap[wv] = v;
    }
    if ((s = new_val(c, n->name, "/w_dq", QF_DT_F32, rank, dims, w_dq))) return s;
    int ins[3] = {c->wmap[wv], c->ws[wv], c->wz[wv]};
    qf_attr a = A_INT("axis", 0);
    return node(c, n->name, "/w_dq", "DequantizeLinear", ins, 3, *w_dq, &a, q->n > 1);
}

/* int32 bias initializer read through DequantizeLinear with scale
 * s_x * s_w[c] (zero point 0): the pattern ORT folds into its integer
 * kernels' int32 bias. *b_dq = -1 when the node has no bias. */
static qf_status bias(qx *c, const qf_node *n, float s_x, const float *w_scale, int n_scale,
                      int64_t rows, int *b_dq) {
    *b_dq = -1;
    if (n->n_inputs < 3 || n->inputs[2] < 0) return QF_OK;
    const qf_value *b = &c->qg->values[n->inputs[2]];
    if (!(b->flags & QF_VAL_CONST) || !b->data || b->dtype != QF_DT_I32 || b->rank != 1 ||
        b->dims[0] != rows || b->nbytes != (size_t)rows * sizeof(int32_t))
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: bias '%s' must be a constant int32 [%lld]", c->desc,
                       b->name, (long long)rows);
    size_t ns = (size_t)n_scale;
    float *sc = qf_malloc(ns * sizeof(float));
    int32_t *zp = qf_calloc(ns, sizeof(int32_t));
    qf_status s = QF_OK;
    if (!sc || !zp) s = nomem(c);
    for (size_t i = 0; !s && i < ns; i++)
        sc[i] = s_x * w_scale[i];
    int bv, sv, zv;
    int64_t nn = n_scale;
    int r = n_scale > 1 ? 1 : 0;
    if (!s) s = map_val(c, n->inputs[2], &bv);
    if (!s) s = new_const(c, n->name, "/bias_scale", QF_DT_F32, r, &nn, sc, &sv);
    if (!s) s = new_const(c, n->name, "/bias_zero_point", QF_DT_I32, r, &nn, zp, &zv);
    qf_free(sc);
    qf_free(zp);
    if (s) return s;
    if ((s = new_val(c, n->name, "/bias_dq", QF_DT_F32, 1, &rows, b_dq))) return s;
    int ins[3] = {bv, sv, zv};
    qf_attr a = A_INT("axis", 0);
    return node(c, n->name, "/bias_dq", "DequantizeLinear", ins, 3, *b_dq, &a, n_scale > 1);
}

static qf_status rewrite_weighted(qx *c, const qf_node *n, bool gemm) {
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: needs inputs x and w", c->desc);
    const qf_qparams *xq;
    qf_status s = get_qp(c, n->inputs[0], "input", true, &xq);
    if (s) return s;
    int xv = -1, wv = -1, bv = -1, y = -1;
    const float *w_scale = NULL;
    int n_scale = 0;
    if ((s = weights(c, n, &wv, &w_scale, &n_scale))) return s;
    int64_t rows = c->g->values[wv].dims[0];
    if ((s = bias(c, n, xq->scale[0], w_scale, n_scale, rows, &bv))) return s;
    if (!gemm) {
        if ((s = dq(c, n, n->inputs[0], "x", &xv))) return s;
    } else {
        /* QGemm folds leading dims: [..., K] -> [M, K]. Flatten on the
         * integer side keeps DQ -> Gemm -> Q a fusable group. */
        const qf_value *x = &c->qg->values[n->inputs[0]];
        int nx;
        if ((s = map_val(c, n->inputs[0], &nx))) return s;
        if (x->rank != 2) {
            int flat;
            if ((s = new_val(c, n->name, "/x_2d", qtype(c, n->inputs[0]), -1, NULL, &flat)))
                return s;
            qf_attr a = A_INT("axis", -1);
            if ((s = node(c, n->name, "/flatten", "Flatten", &nx, 1, flat, &a, 1))) return s;
            nx = flat;
        }
        if ((s = dq_of(c, n, nx, n->inputs[0], "x", &xv))) return s;
    }
    if ((s = float_out(c, n, "/out", &y))) return s;
    int ins[3] = {xv, wv, bv};
    int n_in = bv >= 0 ? 3 : 2;
    qf_attr attrs[8];
    int n_attrs = 0;
    if (gemm) {
        attrs[n_attrs++] = A_INT("transB", 1);
        s = node(c, n->name, "", "Gemm", ins, n_in, y, attrs, n_attrs);
    } else {
        static const char *const names[] = {"auto_pad",     "dilations", "group",
                                            "kernel_shape", "pads",      "strides"};
        if ((s = copy_attrs(c, n, names, (int)QF_ARRAY_LEN(names), attrs, &n_attrs))) return s;
        s = node(c, n->name, "", "Conv", ins, n_in, y, attrs, n_attrs);
    }
    if (!s) s = clamp(c, n, &y);
    return s ? s : q_out(c, n, y, n->outputs[0]);
}

/* ---- the other qforge ops --------------------------------------------------------- */

/* DQ every input -> op_type (attrs) -> clamp (if with_clamp) -> Q. */
static qf_status rewrite_simple(qx *c, const qf_node *n, const char *op_type, const qf_attr *attrs,
                                int n_attrs, const int *extra, int n_extra, bool with_clamp) {
    int ins[QF_MAX_NODE_IO + 4];
    if (n->n_inputs < 1 || n->n_inputs > QF_MAX_NODE_IO)
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: %d inputs", c->desc, n->n_inputs);
    qf_status s;
    for (int i = 0; i < n->n_inputs; i++) {
        if (n->inputs[i] < 0)
            return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: input %d is omitted", c->desc,
                           i);
        char role[16];
        if (n->n_inputs == 1)
            snprintf(role, sizeof role, "x");
        else if (n->n_inputs == 2 && strcmp(op_type, "Concat") != 0)
            snprintf(role, sizeof role, "%s", i ? "b" : "a");
        else
            snprintf(role, sizeof role, "x%d", i);
        const qf_qparams *q;
        if ((s = get_qp(c, n->inputs[i], "input", true, &q)) ||
            (s = dq(c, n, n->inputs[i], role, &ins[i])))
            return s;
    }
    for (int i = 0; i < n_extra; i++)
        ins[n->n_inputs + i] = extra[i];
    int y;
    if ((s = float_out(c, n, "/out", &y)) ||
        (s = node(c, n->name, "", op_type, ins, n->n_inputs + n_extra, y, attrs, n_attrs)))
        return s;
    if (with_clamp && (s = clamp(c, n, &y))) return s;
    return q_out(c, n, y, n->outputs[0]);
}

static qf_status rewrite_pool(qx *c, const qf_node *n) {
    static const char *const max_names[] = {
        "auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"};
    static const char *const avg_names[] = {"auto_pad",     "ceil_mode", "count_include_pad",
                                            "kernel_shape", "pads",      "strides"};
    qf_attr attrs[8];
    int n_attrs = 0;
    qf_status s;
    if (n->op == QF_OP_QMAX_POOL) {
        if ((s = copy_attrs(c, n, max_names, (int)QF_ARRAY_LEN(max_names), attrs, &n_attrs)))
            return s;
        return rewrite_simple(c, n, "MaxPool", attrs, n_attrs, NULL, 0, true);
    }
    if (n->op == QF_OP_QGLOBAL_AVERAGE_POOL)
        return rewrite_simple(c, n, "GlobalAveragePool", NULL, 0, NULL, 0, true);
    if ((s = copy_attrs(c, n, avg_names, (int)QF_ARRAY_LEN(avg_names), attrs, &n_attrs))) return s;
    /* AveragePool has dilations from opset 19; ones can simply be dropped */
    const int64_t *dil;
    int nd = qf_node_attr_ints(n, "dilations", &dil);
    bool ones = true;
    for (int i = 0; i < nd; i++)
        ones = ones && dil[i] == 1;
    if (nd && c->opset >= 19) {
        if ((s = copy_attrs(c, n, (const char *const[]){"dilations"}, 1, attrs, &n_attrs)))
            return s;
    } else if (!ones) {
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: AveragePool dilations need opset >= 19 (exporting %d)",
                       c->desc, c->opset);
    }
    return rewrite_simple(c, n, "AveragePool", attrs, n_attrs, NULL, 0, true);
}

static qf_status rewrite_resize(qx *c, const qf_node *n) {
    static const char *const names[] = {"mode", "coordinate_transformation_mode", "nearest_mode"};
    qf_attr attrs[4];
    int n_attrs = 0;
    qf_status s = copy_attrs(c, n, names, (int)QF_ARRAY_LEN(names), attrs, &n_attrs);
    if (s) return s;
    const float *sc;
    const int64_t *sz;
    int n_sc = qf_node_attr_floats(n, "scales", &sc), n_sz = qf_node_attr_ints(n, "sizes", &sz);
    if ((n_sc > 0) == (n_sz > 0) || n_sc > QF_MAX_DIMS || n_sz > QF_MAX_DIMS)
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: exactly one of the attributes scales and sizes must be "
                       "given",
                       c->desc);
    /* inputs after X: roi (omitted), scales, sizes */
    int extra[3] = {-1, -1, -1};
    int64_t cnt = n_sc ? n_sc : n_sz;
    if (n_sc)
        s = new_const(c, n->name, "/scales", QF_DT_F32, 1, &cnt, sc, &extra[1]);
    else
        s = new_const(c, n->name, "/sizes", QF_DT_I64, 1, &cnt, sz, &extra[2]);
    if (s) return s;
    return rewrite_simple(c, n, "Resize", attrs, n_attrs, extra, n_sc ? 2 : 3, false);
}

static qf_status rewrite_pad(qx *c, const qf_node *n) {
    qf_attr attrs[1];
    int n_attrs = 0;
    qf_status s = copy_attrs(c, n, (const char *const[]){"mode"}, 1, attrs, &n_attrs);
    if (s) return s;
    if (qf_node_attr_float(n, "value", 0.0f) != 0.0f)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: a pad value other than real 0 is not supported", c->desc);
    const int64_t *pads;
    int np = qf_node_attr_ints(n, "pads", &pads);
    if (np == 0 || np % 2 || np > 2 * QF_MAX_DIMS)
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: attribute 'pads' missing or malformed", c->desc);
    /* the constant is the zero point, i.e. real 0: 0.0 before requantizing */
    int extra[2];
    int64_t cnt = np;
    if ((s = new_const(c, n->name, "/pads", QF_DT_I64, 1, &cnt, pads, &extra[0])) ||
        (s = scalar_f32(c, n->name, "/constant_value", 0.0f, &extra[1])))
        return s;
    bool constant = strcmp(qf_node_attr_str(n, "mode", "constant"), "constant") == 0;
    return rewrite_simple(c, n, "Pad", attrs, n_attrs, extra, constant ? 2 : 1, false);
}

/* A per-channel QLut that carries its float op (attributes op and x_input,
 * the op's constants as inputs 1..): DequantizeLinear -> op -> QuantizeLinear,
 * the op with the QLut's other attributes. ONNX Runtime computes the op in
 * float, so a code whose exact value falls on a rounding tie may land one
 * step from the table's. */
static qf_status rewrite_lut_source(qx *c, const qf_node *n, const char *op) {
    const qf_op_id id = qf_op_lookup(op, "");
    const qf_op_def *d = qf_op_get(id);
    if (!d || (id != QF_OP_BATCH_NORM && !(d->flags & QF_OPF_ELEMENTWISE)))
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: op '%s' is not an element-wise ONNX op", c->desc, op);
    const int x_in = (int)qf_node_attr_int(n, "x_input", -1);
    if (x_in < 0 || x_in >= n->n_inputs)
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: x_input %d out of range", c->desc,
                       x_in);
    int ins[QF_MAX_NODE_IO];
    qf_status s = dq(c, n, n->inputs[0], "x", &ins[x_in]);
    for (int j = 0, k = 1; j < n->n_inputs && !s; j++)
        if (j != x_in) s = map_val(c, n->inputs[k++], &ins[j]);
    if (s) return s;
    qf_attr attrs[32];
    int na = 0;
    for (int a = 0; a < n->n_attrs && na < 32; a++) {
        const char *an = n->attrs[a].name;
        if (strcmp(an, "table") && strcmp(an, "axis") && strcmp(an, "op") && strcmp(an, "x_input"))
            attrs[na++] = n->attrs[a];
    }
    int y;
    if ((s = float_out(c, n, "/out", &y)) ||
        (s = node(c, n->name, "", op, ins, n->n_inputs, y, attrs, na)))
        return s;
    return q_out(c, n, y, n->outputs[0]);
}

/* QLut: out = table[q + 128], exported integer-exact as a Gather (the table
 * is data; its float function is not known here). In uint8 mode the stored
 * value already is q + 128 and the table entries shift by 128 too. With
 * per-channel tables (attribute axis), the tables are one flat initializer
 * and a constant of channel offsets c * 256, shaped to broadcast along the
 * axis, is added to the index. */
static qf_status rewrite_lut(qx *c, const qf_node *n) {
    const char *op = qf_node_attr_str(n, "op", NULL);
    if (op && qf_node_attr(n, "axis")) return rewrite_lut_source(c, n, op);
    if (n->n_inputs != 1 || n->inputs[0] < 0)
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: needs one input", c->desc);
    const qf_qparams *q;
    qf_status s;
    if ((s = get_qp(c, n->inputs[0], "input", true, &q)) ||
        (s = get_qp(c, n->outputs[0], "output", true, &q)))
        return s;
    qf_dtype tin = qtype(c, n->inputs[0]), tout = qtype(c, n->outputs[0]);
    if ((tin != QF_DT_I8 && tin != QF_DT_U8) || (tout != QF_DT_I8 && tout != QF_DT_U8))
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: lookup tables need 8-bit input and output", c->desc);
    const qf_attr *a = qf_node_attr(n, "table");
    const qf_attr *ax = qf_node_attr(n, "axis");
    if (!a || a->type != QF_ATTR_INTS || a->n < 256 || a->n % 256 || (!ax && a->n != 256))
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: attribute 'table' must hold 256 ints (per channel with "
                       "'axis')",
                       c->desc);
    const int64_t channels = a->n / 256;
    const qf_value *xv_in = &c->qg->values[n->inputs[0]];
    if (ax && (ax->type != QF_ATTR_INT || ax->i < 0 || ax->i >= xv_in->rank ||
               xv_in->dims[ax->i] != channels))
        return qf_errf(c->err, QF_ERR_FORMAT,
                       "qdq export: %s: %lld tables do not match the input's axis %lld", c->desc,
                       (long long)channels, ax ? (long long)ax->i : -1LL);
    uint8_t *table = qf_malloc((size_t)a->n);
    if (!table) return nomem(c);
    const int32_t shift = tout == QF_DT_U8 ? 128 : 0;
    for (int i = 0; i < a->n; i++) {
        if (a->ints[i] < -128 || a->ints[i] > 127) {
            qf_free(table);
            return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: table[%d] = %lld", c->desc, i,
                           (long long)a->ints[i]);
        }
        int32_t v = (int32_t)a->ints[i] + shift;
        table[i] = tout == QF_DT_U8 ? (uint8_t)v : (uint8_t)(int8_t)v;
    }
    int xv, idx, tv, nv;
    int64_t n_tab = a->n;
    s = new_const(c, n->name, "/table", tout, 1, &n_tab, table, &tv);
    qf_free(table);
    if (s || (s = map_val(c, n->inputs[0], &xv)) ||
        (s = val_like(c, n->inputs[0], n->name, "/index", QF_DT_I32, &idx)) ||
        (s = map_val(c, n->outputs[0], &nv)))
        return s;
    qf_attr to = A_INT("to", QF_DT_I32);
    if ((s = node(c, n->name, "/cast", "Cast", &xv, 1, idx, &to, 1))) return s;
    if (tin == QF_DT_I8) { /* u8 data already is q + 128 */
        int k, idx2;
        int32_t off = 128;
        if ((s = new_const(c, n->name, "/offset", QF_DT_I32, 0, NULL, &off, &k)) ||
            (s = val_like(c, n->inputs[0], n->name, "/index_u", QF_DT_I32, &idx2)))
            return s;
        int ins[2] = {idx, k};
        if ((s = node(c, n->name, "/offset", "Add", ins, 2, idx2, NULL, 0))) return s;
        idx = idx2;
    }
    if (ax) { /* + c * 256 along the axis */
        int32_t *offs = qf_malloc(sizeof(int32_t) * (size_t)channels);
        if (!offs) return nomem(c);
        for (int64_t k = 0; k < channels; k++)
            offs[k] = (int32_t)(k * 256);
        int64_t dims[QF_MAX_DIMS];
        for (int i = 0; i < xv_in->rank; i++)
            dims[i] = i == ax->i ? channels : 1;
        int k, idx2;
        s = new_const(c, n->name, "/channel_offset", QF_DT_I32, xv_in->rank, dims, offs, &k);
        qf_free(offs);
        if (s || (s = val_like(c, n->inputs[0], n->name, "/index_c", QF_DT_I32, &idx2))) return s;
        int ins[2] = {idx, k};
        if ((s = node(c, n->name, "/channel_offset", "Add", ins, 2, idx2, NULL, 0))) return s;
        idx = idx2;
    }
    int ins[2] = {tv, idx};
    qf_attr gax = A_INT("axis", 0);
    return node(c, n->name, "", "Gather", ins, 2, nv, &gax, 1);
}

/* ---- copied nodes ------------------------------------------------------------------- */

/* Zero-point input for a copied Q/DQ node whose quantized side moved from
 * int8 to uint8: the old constant + 128 (or 128 when it was omitted, i.e. 0). */
static qf_status shifted_zp(qx *c, const qf_node *n, int zq, int scale_q, int *out) {
    if (zq < 0) {
        const qf_value *sv = scale_q >= 0 ? &c->qg->values[scale_q] : NULL;
        int rank = sv && sv->rank > 0 ? sv->rank : 0;
        int64_t cnt = rank ? sv->dims[0] : 1;
        if (rank > 1 || cnt < 1 || cnt > 4096)
            return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                           "qdq export: %s: cannot shift an omitted zero point to uint8", c->desc);
        uint8_t z[4096];
        memset(z, 128, (size_t)cnt);
        return new_const(c, n->name, "/zero_point_u8", QF_DT_U8, rank, &cnt, z, out);
    }
    const qf_value *z = &c->qg->values[zq];
    if (!(z->flags & QF_VAL_CONST) || !z->data || z->dtype != QF_DT_I8)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "qdq export: %s: zero point '%s' must be a constant int8 to move to uint8",
                       c->desc, z->name);
    qf_tensor t = qf_value_tensor(z);
    int64_t cnt = qf_tensor_numel(&t);
    if (cnt < 0 || (size_t)cnt != z->nbytes)
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: zero point '%s' is malformed",
                       c->desc, z->name);
    uint8_t *u = qf_malloc(cnt ? (size_t)cnt : 1);
    if (!u) return nomem(c);
    for (int64_t i = 0; i < cnt; i++)
        u[i] = (uint8_t)(((const int8_t *)z->data)[i] + 128);
    qf_status s = new_const(c, z->name, "/u8", QF_DT_U8, t.rank, t.dims, u, out);
    qf_free(u);
    return s;
}

static bool is_layout_op(qf_op_id op) {
    switch (op) {
    case QF_OP_RESHAPE:
    case QF_OP_FLATTEN:
    case QF_OP_TRANSPOSE:
    case QF_OP_SQUEEZE:
    case QF_OP_UNSQUEEZE:
    case QF_OP_IDENTITY:
    case QF_OP_CONCAT:
    case QF_OP_SPLIT:
    case QF_OP_SLICE:
    case QF_OP_GATHER:
    case QF_OP_EXPAND:
    case QF_OP_SHAPE:
    case QF_OP_MAX_POOL:
    case QF_OP_GLOBAL_MAX_POOL: return true;
    default: return false;
    }
}

/* A default-domain node as it is; in uint8 mode the zero points of Q/DQ on
 * activations shift, and only order-preserving data movement may touch a
 * shifted value. Squeeze/Unsqueeze of opset < 13 get axes as an input. */
static qf_status copy_node(qx *c, const qf_node *n) {
    int ins[QF_MAX_NODE_IO + 1], outs[QF_MAX_NODE_IO];
    if (n->n_inputs > QF_MAX_NODE_IO || n->n_outputs > QF_MAX_NODE_IO)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED, "qdq export: %s: too many inputs or outputs",
                       c->desc);
    bool shifted = false;
    qf_status s;
    for (int i = 0; i < n->n_inputs; i++) {
        if ((s = map_val(c, n->inputs[i], &ins[i]))) return s;
        if (n->inputs[i] >= 0 && zp_shift(c, n->inputs[i])) shifted = true;
    }
    for (int i = 0; i < n->n_outputs; i++) {
        if ((s = map_val(c, n->outputs[i], &outs[i]))) return s;
        if (n->outputs[i] >= 0 && zp_shift(c, n->outputs[i])) shifted = true;
    }
    int n_in = n->n_inputs;
    qf_attr *attrs = n->n_attrs ? qf_graph_alloc(c->g, sizeof(qf_attr) * (size_t)n->n_attrs) : NULL;
    if (n->n_attrs && !attrs) return nomem(c);
    int n_attrs = 0;
    bool axes_to_input = (n->op == QF_OP_SQUEEZE || n->op == QF_OP_UNSQUEEZE) && n->opset < 13 &&
                         n->opset > 0 && n_in == 1;
    for (int i = 0; i < n->n_attrs; i++) {
        const qf_attr *a = &n->attrs[i];
        if (axes_to_input && !strcmp(a->name, "axes")) {
            int64_t cnt = a->n;
            if ((s = new_const(c, n->name, "/axes", QF_DT_I64, 1, &cnt, a->ints, &ins[n_in])))
                return s;
            n_in++;
            continue;
        }
        /* output_dtype would contradict a shifted zero point */
        if (shifted && !strcmp(a->name, "output_dtype")) continue;
        if (qf_attr_copy(c->g, a, &attrs[n_attrs++])) return nomem(c);
    }
    if (shifted) {
        if (n->op == QF_OP_QUANTIZE_LINEAR || n->op == QF_OP_DEQUANTIZE_LINEAR) {
            int zq = n->n_inputs > 2 ? n->inputs[2] : -1;
            int sq = n->n_inputs > 1 ? n->inputs[1] : -1;
            if ((s = shifted_zp(c, n, zq, sq, &ins[2]))) return s;
            if (n_in < 3) n_in = 3;
        } else if (!is_layout_op(n->op)) {
            return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                           "qdq export: %s computes on int8 data, which uint8 activations would "
                           "change; export with int8 activations",
                           c->desc);
        }
    }
    bool dflt = !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
    int k = qf_graph_add_node(c->g, n->name, n->op_type, n->domain, dflt ? c->opset : n->opset, ins,
                              n_in, outs, n->n_outputs, attrs, n_attrs);
    return k < 0 ? nomem(c) : QF_OK;
}

/* ---- graph boundaries ------------------------------------------------------------------ */

/* int8 <-> uint8 at a graph input or output (uint8 mode): Cast to int32,
 * add +-128, Cast back; exact, and needs no qparams. */
static qf_status convert_u8(qx *c, int from, int to, int qv, bool to_u8) {
    const char *nm = qname(c, qv);
    const char *tag = to_u8 ? "/to_u8" : "/to_i8";
    char base[NAME_LEN];
    snprintf(base, sizeof base, "%s%s", nm, tag);
    int a, k, b;
    int32_t off = to_u8 ? 128 : -128;
    qf_status s;
    if ((s = val_like(c, qv, base, "/i32", QF_DT_I32, &a)) ||
        (s = val_like(c, qv, base, "/shifted", QF_DT_I32, &b)) ||
        (s = new_const(c, base, "/offset", QF_DT_I32, 0, NULL, &off, &k)))
        return s;
    qf_attr t1 = A_INT("to", QF_DT_I32), t2 = A_INT("to", to_u8 ? QF_DT_U8 : QF_DT_I8);
    int ins[2] = {a, k};
    if ((s = node(c, base, "/cast_in", "Cast", &from, 1, a, &t1, 1)) ||
        (s = node(c, base, "/add", "Add", ins, 2, b, NULL, 0)) ||
        (s = node(c, base, "/cast_out", "Cast", &b, 1, to, &t2, 1)))
        return s;
    return QF_OK;
}

static bool boundary_shift(const qx *c, int v) {
    const qf_value *val = &c->qg->values[v];
    return c->u8 && val->dtype == QF_DT_I8 && !(val->flags & QF_VAL_CONST);
}

static qf_status map_inputs(qx *c) {
    snprintf(c->desc, sizeof c->desc, "graph inputs");
    for (int i = 0; i < c->qg->n_inputs; i++) {
        int v = c->qg->inputs[i], nv;
        const qf_value *qv = &c->qg->values[v];
        qf_status s = val_like(c, v, qv->name, "", qv->dtype, &nv);
        if (!s) s = qf_graph_add_input(c->g, nv) ? nomem(c) : QF_OK;
        if (s) return s;
        if (boundary_shift(c, v)) {
            int u;
            if ((s = val_like(c, v, qv->name, "/u8", QF_DT_U8, &u)) ||
                (s = convert_u8(c, nv, u, v, true)))
                return s;
            nv = u;
        }
        c->vmap[v] = nv;
    }
    /* outputs that convert back: reserve their uint8 twin under another name */
    for (int i = 0; i < c->qg->n_outputs; i++) {
        int v = c->qg->outputs[i];
        if (boundary_shift(c, v) && c->vmap[v] < 0) {
            qf_status s = val_like(c, v, qname(c, v), "/u8", QF_DT_U8, &c->vmap[v]);
            if (s) return s;
        }
    }
    return QF_OK;
}

static qf_status map_outputs(qx *c) {
    snprintf(c->desc, sizeof c->desc, "graph outputs");
    for (int i = 0; i < c->qg->n_outputs; i++) {
        int v = c->qg->outputs[i], nv;
        qf_status s = map_val(c, v, &nv);
        if (s) return s;
        if (boundary_shift(c, v)) {
            int o;
            if ((s = val_like(c, v, qname(c, v), "", QF_DT_I8, &o)) ||
                (s = convert_u8(c, nv, o, v, false)))
                return s;
            nv = o;
        }
        if (qf_graph_add_output(c->g, nv)) return nomem(c);
    }
    return QF_OK;
}

/* ---- driver ------------------------------------------------------------------------------ */

static qf_status rewrite_node(qx *c, const qf_node *n) {
    qf_node_desc(n, c->desc, sizeof c->desc);
    bool qforge = n->domain && !strcmp(n->domain, "qforge");
    if (qforge && (n->n_outputs < 1 || n->outputs[0] < 0))
        return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: has no output", c->desc);
    switch (n->op) {
    case QF_OP_QCONV: return rewrite_weighted(c, n, false);
    case QF_OP_QGEMM: return rewrite_weighted(c, n, true);
    case QF_OP_QADD:
        if (n->n_inputs != 2) break;
        return rewrite_simple(c, n, "Add", NULL, 0, NULL, 0, true);
    case QF_OP_QMUL:
        if (n->n_inputs != 2) break;
        return rewrite_simple(c, n, "Mul", NULL, 0, NULL, 0, true);
    case QF_OP_QMAX_POOL:
    case QF_OP_QAVERAGE_POOL:
    case QF_OP_QGLOBAL_AVERAGE_POOL: return rewrite_pool(c, n);
    case QF_OP_QCONCAT: {
        qf_attr a[1];
        int na = 0;
        qf_status s = copy_attrs(c, n, (const char *const[]){"axis"}, 1, a, &na);
        if (s) return s;
        if (na != 1)
            return qf_errf(c->err, QF_ERR_FORMAT, "qdq export: %s: attribute 'axis' missing",
                           c->desc);
        return rewrite_simple(c, n, "Concat", a, na, NULL, 0, false);
    }
    case QF_OP_QRESIZE: return rewrite_resize(c, n);
    case QF_OP_QPAD: return rewrite_pad(c, n);
    case QF_OP_QLUT: return rewrite_lut(c, n);
    default:
        if (!qforge) return copy_node(c, n);
    }
    return qf_errf(c->err, QF_ERR_UNSUPPORTED, "qdq export: %s has no QDQ form", c->desc);
}

/* Declared opset: the requested one, raised to the highest opset of a
 * default-domain node that is copied. */
static int declared_opset(const qf_graph *qg, int requested) {
    int op = requested;
    for (int i = 0; i < qg->n_nodes; i++) {
        const qf_node *n = &qg->nodes[i];
        bool dflt = !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
        if (dflt && n->opset > op) op = n->opset;
    }
    return op;
}

static int *index_array(int n) {
    int *a = qf_malloc(sizeof(int) * (size_t)(n ? n : 1));
    for (int i = 0; a && i < n; i++)
        a[i] = -1;
    return a;
}

qf_status qf_qdq_build(const qf_graph *qg, const qf_qdq_export_options *opt, qf_graph **out,
                       qf_err *err) {
    if (out) *out = NULL;
    if (!qg || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "qdq export: NULL graph or output");
    qf_qdq_export_options dflt;
    qf_qdq_export_options_init(&dflt);
    if (!opt) opt = &dflt;
    int requested = opt->opset ? opt->opset : QF_QDQ_DEFAULT_OPSET;
    if (requested < QF_QDQ_MIN_OPSET || requested > QF_ONNX_EXPORT_MAX_OPSET)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qdq export: opset %d (%d..%d supported)",
                       requested, QF_QDQ_MIN_OPSET, QF_ONNX_EXPORT_MAX_OPSET);
    if (opt->act_type != QF_QDQ_ACT_INT8 && opt->act_type != QF_QDQ_ACT_UINT8)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qdq export: activation type %d",
                       (int)opt->act_type);
    qx c;
    memset(&c, 0, sizeof c);
    c.qg = qg;
    c.err = err;
    c.u8 = opt->act_type == QF_QDQ_ACT_UINT8;
    c.opset = declared_opset(qg, requested);
    snprintf(c.desc, sizeof c.desc, "graph");
    int nv = qg->n_values;
    c.g = qf_graph_create();
    c.vmap = index_array(nv);
    c.qs = index_array(nv);
    c.qz = index_array(nv);
    c.wmap = index_array(nv);
    c.ws = index_array(nv);
    c.wz = index_array(nv);
    qf_status s = QF_OK;
    if (!c.g || !c.vmap || !c.qs || !c.qz || !c.wmap || !c.ws || !c.wz) s = nomem(&c);
    if (!s) {
        c.g->opset = c.opset;
        c.g->name = qf_arena_strdup(&c.g->arena, qg->name && *qg->name ? qg->name : "qforge_qdq");
        c.g->source_path = qf_arena_strdup(&c.g->arena, qg->source_path ? qg->source_path : "");
        if (!c.g->name || !c.g->source_path) s = nomem(&c);
    }
    if (!s) s = map_inputs(&c);
    for (int i = 0; !s && i < qg->n_nodes; i++)
        s = rewrite_node(&c, &qg->nodes[i]);
    if (!s) s = map_outputs(&c);
    if (!s) {
        /* Best-effort shapes for value_info and the graph outputs (ONNX's
         * checker wants a shape on every graph input and output); values the
         * quantized graph left unshaped stay so when inference cannot run. */
        qf_err ignored;
        qf_status t = qf_graph_toposort(c.g, &ignored);
        if (!t) t = qf_graph_parse_ops(c.g, &ignored);
        if (!t) t = qf_pass_infer_shapes(c.g, &ignored);
        if (t == QF_ERR_NOMEM) s = nomem(&c);
    }
    qf_free(c.vmap);
    qf_free(c.qs);
    qf_free(c.qz);
    qf_free(c.wmap);
    qf_free(c.ws);
    qf_free(c.wz);
    if (s) {
        qf_graph_free(c.g);
        return s;
    }
    *out = c.g;
    return QF_OK;
}

qf_status qf_qdq_export(const qf_graph *qg, const char *path, const qf_qdq_export_options *opt,
                        qf_err *err) {
    if (!path) return qf_errf(err, QF_ERR_INVALID_ARG, "qdq export: NULL path");
    qf_graph *g = NULL;
    qf_status s = qf_qdq_build(qg, opt, &g, err);
    if (s) return s;
    qf_onnx_export_options o;
    if (opt && opt->onnx)
        o = *opt->onnx;
    else
        qf_onnx_export_options_init(&o);
    o.opset = g->opset;
    s = qf_onnx_export(g, path, &o, err);
    qf_graph_free(g);
    return s;
}
