/* qops_util.h - private helpers of the qforge-domain integer ops (qops_*.c):
 * reading and validating the quantization parameters of a node's values and
 * the attributes every integer op shares (requant, act_min/act_max).
 *
 * Every check happens in parse, once per graph, and reports
 * "<Op> node '<name>': ..." naming the tensor at fault; run trusts the
 * result (the kernels re-check their parameter blocks anyway).
 */
#ifndef QF_KERNELS_REF_QOPS_UTIL_H
#define QF_KERNELS_REF_QOPS_UTIL_H

#include <math.h>
#include <string.h>

#include "ir/ops.h"
#include "kernels/ref/qref.h"

/* Per-tensor quantization of an activation value. The storage type follows
 * the bit width: up to 8 bits live in int8, 9..16 bits in int16. */
typedef struct qo_act {
    float scale;
    int32_t zp;
    int bits;
    qf_dtype dtype;     /* QF_DT_I8 or QF_DT_I16 */
    int32_t tmin, tmax; /* range of dtype */
} qo_act;

/* int8 QConv/QGemm runs that fell back to the reference kernels in this
 * process (qops_conv.c): tests check with it that a layer took a fast path. */
uint64_t qf_qops_reference_runs(void);

static inline bool qo_scale_ok(float s) { return isfinite(s) && s > 0.0f; }

static inline const char *qo_vname(const qf_graph *g, int v) {
    return v >= 0 && v < g->n_values ? g->values[v].name : "(omitted)";
}

/* The qparams of value v, which the node reads or writes as `role` ("input",
 * "weight", "output", ...). Missing ones are a malformed quantized graph. */
static inline qf_status qo_get_qp(const qf_graph *g, const qf_node *n, int v, const char *role,
                                  const qf_qparams **qp, qf_err *err) {
    char d[200];
    if (v < 0 || v >= g->n_values)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s is missing", qf_node_desc(n, d, sizeof d), role);
    const qf_qparams *q = g->values[v].qp;
    if (!q)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s '%s' has no quantization parameters",
                       qf_node_desc(n, d, sizeof d), role, g->values[v].name);
    if (q->n < 1 || !q->scale || !q->zero_point)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s '%s' has empty quantization parameters",
                       qf_node_desc(n, d, sizeof d), role, g->values[v].name);
    for (int i = 0; i < q->n; i++)
        if (!qo_scale_ok(q->scale[i]))
            return qf_errf(
                err, QF_ERR_FORMAT, "%s: %s '%s': scale[%d] = %g must be positive and finite",
                qf_node_desc(n, d, sizeof d), role, g->values[v].name, i, (double)q->scale[i]);
    *qp = q;
    return QF_OK;
}

/* Per-tensor activation qparams of value v. allow16: the op has an int16
 * kernel; otherwise more than 8 bits is rejected as unsupported. */
static inline qf_status qo_act_qp(const qf_graph *g, const qf_node *n, int v, const char *role,
                                  bool allow16, qo_act *a, qf_err *err) {
    const qf_qparams *q = NULL;
    qf_status s = qo_get_qp(g, n, v, role, &q, err);
    if (s) return s;
    char d[200];
    const char *name = g->values[v].name;
    if (q->n != 1)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s '%s' is quantized per channel (%d scales); activations must be "
                       "quantized per tensor",
                       qf_node_desc(n, d, sizeof d), role, name, q->n);
    if (q->bits < 2 || q->bits > 16)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s '%s' has %d bits (2..16 allowed)",
                       qf_node_desc(n, d, sizeof d), role, name, q->bits);
    if (q->bits > 8 && !allow16)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s '%s' has %d-bit activations; this op runs on int8 only",
                       qf_node_desc(n, d, sizeof d), role, name, q->bits);
    a->scale = q->scale[0];
    a->zp = q->zero_point[0];
    a->bits = q->bits;
    a->dtype = q->bits > 8 ? QF_DT_I16 : QF_DT_I8;
    a->tmin = q->bits > 8 ? INT16_MIN : INT8_MIN;
    a->tmax = q->bits > 8 ? INT16_MAX : INT8_MAX;
    if (a->zp < a->tmin || a->zp > a->tmax)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s '%s': zero point %d outside %s",
                       qf_node_desc(n, d, sizeof d), role, name, (int)a->zp,
                       qf_dtype_name(a->dtype));
    return QF_OK;
}

/* Ops that move int8 values without requantizing them (max pool, resize,
 * pad) need the output to carry exactly the input's scale and zero point. */
static inline qf_status qo_require_same_qp(const qf_graph *g, const qf_node *n, const qo_act *in,
                                           const qo_act *out, qf_err *err) {
    if (in->scale == out->scale && in->zp == out->zp) return QF_OK;
    char d[200];
    return qf_errf(err, QF_ERR_FORMAT,
                   "%s: output '%s' (scale %g, zero point %d) must keep the input's scale %g and "
                   "zero point %d",
                   qf_node_desc(n, d, sizeof d), qo_vname(g, n->outputs[0]), (double)out->scale,
                   (int)out->zp, (double)in->scale, (int)in->zp);
}

/* requant = "fp32" (default) or "fixed". */
static inline qf_status qo_parse_requant(const qf_node *n, qf_ref_rq_mode *mode, qf_err *err) {
    const char *r = qf_node_attr_str(n, "requant", "fp32");
    if (strcmp(r, "fp32") == 0) {
        *mode = QF_RQ_FP32;
    } else if (strcmp(r, "fixed") == 0) {
        *mode = QF_RQ_FIXED;
    } else {
        char d[200];
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: requant '%s' (expected fp32 or fixed)",
                       qf_node_desc(n, d, sizeof d), r);
    }
    return QF_OK;
}

/* act_min/act_max: the fused ReLU/Clip in quantized units of the output;
 * the defaults are the output type's whole range (-128/127 for int8). */
static inline qf_status qo_parse_act_range(const qf_node *n, const qo_act *out, int32_t *lo,
                                           int32_t *hi, qf_err *err) {
    int64_t mn = qf_node_attr_int(n, "act_min", out->tmin);
    int64_t mx = qf_node_attr_int(n, "act_max", out->tmax);
    char d[200];
    if (mn < out->tmin || mx > out->tmax || mn > out->tmax || mx < out->tmin)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: act_min %lld / act_max %lld outside %s",
                       qf_node_desc(n, d, sizeof d), (long long)mn, (long long)mx,
                       qf_dtype_name(out->dtype));
    if (mn > mx)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: act_min %lld > act_max %lld",
                       qf_node_desc(n, d, sizeof d), (long long)mn, (long long)mx);
    *lo = (int32_t)mn;
    *hi = (int32_t)mx;
    return QF_OK;
}

/* Input/output count check done first by every parse. */
static inline qf_status qo_check_io(const qf_node *n, int min_in, int max_in, qf_err *err) {
    char d[200];
    if (n->n_inputs < min_in || n->n_inputs > max_in)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %d inputs (expected %d..%d)",
                       qf_node_desc(n, d, sizeof d), n->n_inputs, min_in, max_in);
    for (int i = 0; i < min_in; i++)
        if (n->inputs[i] < 0)
            return qf_errf(err, QF_ERR_FORMAT, "%s: required input %d is omitted",
                           qf_node_desc(n, d, sizeof d), i);
    if (n->n_outputs < 1 || n->outputs[0] < 0)
        return qf_errf(err, QF_ERR_FORMAT, "%s: has no output", qf_node_desc(n, d, sizeof d));
    for (int j = 1; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: only one output is supported",
                           qf_node_desc(n, d, sizeof d));
    return QF_OK;
}

/* infer-time check that a tensor has the storage type its qparams say. */
static inline qf_status qo_check_dtype(const qf_node *n, const qf_tensor *t, qf_dtype want,
                                       const char *role, qf_err *err) {
    if (t->dtype == want) return QF_OK;
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s is %s, its quantization parameters need %s",
                   qf_node_desc(n, d, sizeof d), role, qf_dtype_name(t->dtype),
                   qf_dtype_name(want));
}

/* Dimensions the int32 parameter blocks of the kernels can hold. */
static inline bool qo_fits_i32(int64_t v) { return v >= 0 && v <= INT32_MAX; }

static inline qf_status qo_nomem(const qf_node *n, qf_err *err) {
    char d[200];
    return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
}

/* QAdd node `add` with inputs a, b and output out as a residual add that
 * qf_x86_conv2d_s8_add can fuse (same shapes, FP32 mode, active ISA with
 * the x86 kernels): true and its constants in *c (qops_eltwise.c). */
struct qx_add_consts;
bool qf_qadd_fusable(const qf_node *add, const qf_tensor *a, const qf_tensor *b,
                     const qf_tensor *out, struct qx_add_consts *c);

#endif /* QF_KERNELS_REF_QOPS_UTIL_H */
