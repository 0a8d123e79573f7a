/* quantize_linear.c - ONNX QuantizeLinear and DequantizeLinear (opsets
 * 10..21) and DynamicQuantizeLinear (opset 11), reference kernels.
 *
 *   QuantizeLinear    y = saturate(round_half_even(x / y_scale) + y_zero_point)
 *   DequantizeLinear  y = (x - x_zero_point) * x_scale
 *   DynamicQuantizeLinear: uint8 y, y_scale, y_zero_point from x's range
 *
 * Per-tensor (scalar or one-element scale) or per-axis (1-D scale of
 * dims[axis] entries, opset 13+) parameters; the zero point, when given, has
 * the scale's shape. Blocked quantization (opset 21 block_size) is rejected
 * as unsupported. Types: x float32, float16 or int32 for QuantizeLinear;
 * quantized types uint8/int8/uint16/int16 (int32 for DequantizeLinear, with
 * a zero point of 0); scales float32 or float16; DequantizeLinear's output
 * has the scale's type.
 *
 * The arithmetic follows ONNX Runtime's CPU kernels so results agree bit for
 * bit: one binary32 division x / scale, rounded by nearbyintf, the zero point
 * added in float, then clamped.
 */
#include <math.h>
#include <string.h>

#include "ir/ops.h"
#include "kernels/x86/qx86_ew.h"

typedef struct qlin_params {
    int64_t axis;
    qf_dtype out_dtype; /* QuantizeLinear output_dtype attribute, UNDEF = from zero point */
} qlin_params;

/* x viewed as [outer, ch, inner]: parameter c applies to slice c of axis 1. */
typedef struct qlin_layout {
    int64_t outer, ch, inner;
} qlin_layout;

static bool is_qtype(qf_dtype t) {
    return t == QF_DT_U8 || t == QF_DT_I8 || t == QF_DT_U16 || t == QF_DT_I16;
}

static void qtype_range(qf_dtype t, int32_t *lo, int32_t *hi) {
    switch (t) {
    case QF_DT_U8: *lo = 0, *hi = 255; break;
    case QF_DT_I8: *lo = -128, *hi = 127; break;
    case QF_DT_U16: *lo = 0, *hi = 65535; break;
    case QF_DT_I16: *lo = -32768, *hi = 32767; break;
    default: *lo = INT32_MIN, *hi = INT32_MAX; break;
    }
}

/* Element i of a quantized (or int32) tensor. */
static int32_t load_q(const void *p, qf_dtype t, int64_t i) {
    switch (t) {
    case QF_DT_U8: return ((const uint8_t *)p)[i];
    case QF_DT_I8: return ((const int8_t *)p)[i];
    case QF_DT_U16: return ((const uint16_t *)p)[i];
    case QF_DT_I16: return ((const int16_t *)p)[i];
    case QF_DT_I32: return ((const int32_t *)p)[i];
    default: return 0;
    }
}

static void store_q(void *p, qf_dtype t, int64_t i, int32_t v) {
    switch (t) {
    case QF_DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case QF_DT_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case QF_DT_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case QF_DT_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    default: break;
    }
}

/* Element i of a float32/float16/int32 tensor as float. */
static float load_f(const void *p, qf_dtype t, int64_t i) {
    switch (t) {
    case QF_DT_F32: return ((const float *)p)[i];
    case QF_DT_F16: return qf_f16_to_f32(((const uint16_t *)p)[i]);
    case QF_DT_I32: return (float)((const int32_t *)p)[i];
    default: return 0.0f;
    }
}

static bool present(const qf_tensor *in, int n_in, int i) {
    return i < n_in && in[i].dtype != QF_DT_UNDEF;
}

/* saturate(round_half_even(v) + zp). nearbyintf rounds in the current
 * rounding mode, which qforge never changes from the default
 * round-to-nearest-ties-to-even: exactly ONNX's rounding. NaN maps to the
 * zero point (ONNX leaves it undefined; a float->int conversion of NaN would
 * be undefined behaviour in C). */
static int32_t quantize_val(float v, float zp, int32_t qmin, int32_t qmax) {
    float r = nearbyintf(v) + zp;
    if (r != r) return (int32_t)zp;
    if (r < (float)qmin) return qmin;
    if (r > (float)qmax) return qmax;
    return (int32_t)r;
}

static qf_status qlin_parse_common(qf_graph *g, qf_node *n, bool quantize, qf_err *err) {
    char d[200];
    qlin_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    p->axis = qf_node_attr_int(n, "axis", 1);
    int64_t block = qf_node_attr_int(n, "block_size", 0);
    if (block != 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: blocked quantization (block_size %lld) is not supported",
                       qf_node_desc(n, d, sizeof d), (long long)block);
    p->out_dtype = QF_DT_UNDEF;
    if (quantize) {
        int64_t od = qf_node_attr_int(n, "output_dtype", 0);
        if (od != 0 && !is_qtype((qf_dtype)od))
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: output_dtype %lld is not supported (uint8, int8, uint16, int16)",
                           qf_node_desc(n, d, sizeof d), (long long)od);
        p->out_dtype = (qf_dtype)od;
    }
    n->params = p;
    return QF_OK;
}

static qf_status quant_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qlin_parse_common(g, n, true, err);
}

static qf_status dequant_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qlin_parse_common(g, n, false, err);
}

/* Check scale/zero-point shapes against x and decide the granularity. */
static qf_status qlin_layout_of(const qf_node *n, const qf_tensor *x, const qf_tensor *scale,
                                const qf_tensor *zp, qlin_layout *lay, qf_err *err) {
    char d[200];
    const qlin_params *p = n->params;
    int64_t numel = qf_tensor_numel(x), ns = qf_tensor_numel(scale);
    if (numel < 0 || ns < 0)
        return qf_errf(err, QF_ERR_SHAPE, "%s: invalid input shape", qf_node_desc(n, d, sizeof d));
    if (scale->dtype != QF_DT_F32 && scale->dtype != QF_DT_F16)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: scale has dtype %s (float32, float16)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(scale->dtype));
    if (zp) {
        int64_t nz = qf_tensor_numel(zp);
        if (nz != ns || (zp->rank > 1) != (scale->rank > 1))
            return qf_errf(err, QF_ERR_SHAPE, "%s: zero point and scale shapes differ",
                           qf_node_desc(n, d, sizeof d));
    }
    lay->outer = 1;
    lay->ch = 1;
    lay->inner = numel;
    if (ns == 1 && scale->rank <= 1) return QF_OK; /* per tensor */
    if (scale->rank > 1)
        return qf_errf(err, scale->rank == x->rank ? QF_ERR_UNSUPPORTED : QF_ERR_SHAPE,
                       "%s: scale of rank %d (blocked quantization is not supported)",
                       qf_node_desc(n, d, sizeof d), scale->rank);
    int axis;
    qf_status s = qf_norm_axis(n, p->axis, x->rank, &axis, err);
    if (s) return s;
    if (scale->dims[0] != x->dims[axis])
        return qf_errf(err, QF_ERR_SHAPE, "%s: per-axis scale has %lld entries, axis %d has %lld",
                       qf_node_desc(n, d, sizeof d), (long long)scale->dims[0], axis,
                       (long long)x->dims[axis]);
    lay->ch = x->dims[axis];
    lay->inner = 1;
    for (int i = axis + 1; i < x->rank; i++)
        lay->inner *= x->dims[i];
    for (int i = 0; i < axis; i++)
        lay->outer *= x->dims[i];
    return QF_OK;
}

/* ---- QuantizeLinear ------------------------------------------------------ */

static qf_status quant_check(const qf_node *n, const qf_tensor *in, int n_in, qf_dtype *out_dt,
                             qlin_layout *lay, qf_err *err) {
    char d[200];
    const qlin_params *p = n->params;
    if (!present(in, n_in, 0) || !present(in, n_in, 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs x and y_scale",
                       qf_node_desc(n, d, sizeof d));
    const qf_tensor *x = &in[0];
    if (x->dtype != QF_DT_F32 && x->dtype != QF_DT_F16 && x->dtype != QF_DT_I32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: x has dtype %s (float32, float16, int32)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(x->dtype));
    const qf_tensor *zp = present(in, n_in, 2) ? &in[2] : NULL;
    qf_dtype dt = p->out_dtype != QF_DT_UNDEF ? p->out_dtype : QF_DT_U8;
    if (zp) {
        if (!is_qtype(zp->dtype))
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: y_zero_point has dtype %s (uint8, int8, uint16, int16)",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(zp->dtype));
        if (p->out_dtype != QF_DT_UNDEF && p->out_dtype != zp->dtype)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: output_dtype %s differs from y_zero_point's %s",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(p->out_dtype),
                           qf_dtype_name(zp->dtype));
        dt = zp->dtype;
    }
    *out_dt = dt;
    return qlin_layout_of(n, x, &in[1], zp, lay, err);
}

static qf_status quant_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    qf_dtype dt;
    qlin_layout lay;
    qf_status s = quant_check(n, in, n_in, &dt, &lay, err);
    if (s) return s;
    out[0].dtype = dt;
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank);
    return QF_OK;
}

static qf_status quant_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_dtype dt;
    qlin_layout lay;
    qf_status s = quant_check(n, in, n_in, &dt, &lay, err);
    if (s) return s;
    const qf_tensor *x = &in[0], *sc = &in[1];
    const qf_tensor *zp = present(in, n_in, 2) ? &in[2] : NULL;
    int32_t qmin, qmax;
    qtype_range(dt, &qmin, &qmax);
    void *y = out[0].data;
    int64_t i = 0;
    for (int64_t o = 0; o < lay.outer; o++)
        for (int64_t c = 0; c < lay.ch; c++) {
            float scale = load_f(sc->data, sc->dtype, c);
            float z = zp ? (float)load_q(zp->data, zp->dtype, c) : 0.0f;
            if (x->dtype == QF_DT_F32 && (dt == QF_DT_U8 || dt == QF_DT_I8)) {
                /* the common case: vector kernel (same formula, qx86_ew.h),
                 * or this file's scalar loop under QF_ISA=scalar */
                qf_x86_quantize_f32_8(ctx ? ctx->pool : NULL, qf_isa_active(),
                                      (const float *)x->data + i, (size_t)lay.inner, scale, z,
                                      dt == QF_DT_U8, (uint8_t *)y + i);
            } else {
                for (int64_t k = 0; k < lay.inner; k++) {
                    float v = load_f(x->data, x->dtype, i + k) / scale;
                    store_q(y, dt, i + k, quantize_val(v, z, qmin, qmax));
                }
            }
            i += lay.inner;
        }
    return QF_OK;
}

const qf_op_def qf_opdef_quantize_linear = {
    .name = "QuantizeLinear",
    .flags = 0,
    .value_inputs = 0,
    .parse = quant_parse,
    .infer = quant_infer,
    .scratch = NULL,
    .run = quant_run,
};

/* ---- DequantizeLinear ---------------------------------------------------- */

static qf_status dequant_check(const qf_node *n, const qf_tensor *in, int n_in, qlin_layout *lay,
                               qf_err *err) {
    char d[200];
    if (!present(in, n_in, 0) || !present(in, n_in, 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs x and x_scale",
                       qf_node_desc(n, d, sizeof d));
    const qf_tensor *x = &in[0];
    if (!is_qtype(x->dtype) && x->dtype != QF_DT_I32)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: x has dtype %s (uint8, int8, uint16, int16, int32)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(x->dtype));
    const qf_tensor *zp = present(in, n_in, 2) ? &in[2] : NULL;
    if (zp && zp->dtype != x->dtype)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: x_zero_point has dtype %s, x has %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(zp->dtype),
                       qf_dtype_name(x->dtype));
    qf_status s = qlin_layout_of(n, x, &in[1], zp, lay, err);
    if (s) return s;
    /* int32 (bias-like) values have no zero point: it must be 0 */
    if (zp && zp->data && x->dtype == QF_DT_I32) {
        int64_t nz = qf_tensor_numel(zp);
        for (int64_t i = 0; i < nz; i++)
            if (((const int32_t *)zp->data)[i] != 0)
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "%s: int32 input needs a zero point of 0 (got %d)",
                               qf_node_desc(n, d, sizeof d), (int)((const int32_t *)zp->data)[i]);
    }
    return QF_OK;
}

static qf_status dequant_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    qlin_layout lay;
    qf_status s = dequant_check(n, in, n_in, &lay, err);
    if (s) return s;
    out[0].dtype = in[1].dtype; /* the scale's type (opset 19+); float32 before */
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank);
    return QF_OK;
}

static qf_status dequant_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qlin_layout lay;
    qf_status s = dequant_check(n, in, n_in, &lay, err);
    if (s) return s;
    const qf_tensor *x = &in[0], *sc = &in[1];
    const qf_tensor *zp = present(in, n_in, 2) ? &in[2] : NULL;
    bool f16 = out[0].dtype == QF_DT_F16;
    int64_t i = 0;
    for (int64_t o = 0; o < lay.outer; o++)
        for (int64_t c = 0; c < lay.ch; c++) {
            float scale = load_f(sc->data, sc->dtype, c);
            int64_t z = zp ? load_q(zp->data, zp->dtype, c) : 0;
            if (!f16 && (x->dtype == QF_DT_U8 || x->dtype == QF_DT_I8)) {
                qf_x86_dequantize_8_f32(ctx ? ctx->pool : NULL, qf_isa_active(),
                                        (const uint8_t *)x->data + i, x->dtype == QF_DT_U8,
                                        (size_t)lay.inner, scale, (int32_t)z,
                                        (float *)out[0].data + i);
                i += lay.inner;
                continue;
            }
            for (int64_t k = 0; k < lay.inner; k++) {
                /* integer subtraction, one conversion, one binary32 multiply */
                float v = (float)(load_q(x->data, x->dtype, i + k) - z) * scale;
                if (f16)
                    ((uint16_t *)out[0].data)[i + k] = qf_f32_to_f16(v);
                else
                    ((float *)out[0].data)[i + k] = v;
            }
            i += lay.inner;
        }
    return QF_OK;
}

const qf_op_def qf_opdef_dequantize_linear = {
    .name = "DequantizeLinear",
    .flags = 0,
    .value_inputs = 0,
    .parse = dequant_parse,
    .infer = dequant_infer,
    .scratch = NULL,
    .run = dequant_run,
};

/* ---- DynamicQuantizeLinear ----------------------------------------------- */

static qf_status dynq_check(const qf_node *n, const qf_tensor *in, int n_in, int n_out,
                            qf_err *err) {
    char d[200];
    if (!present(in, n_in, 0))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs input x", qf_node_desc(n, d, sizeof d));
    if (in[0].dtype != QF_DT_F32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: x has dtype %s (float32 only)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    if (n_out < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs output y", qf_node_desc(n, d, sizeof d));
    return QF_OK;
}

static qf_status dynq_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    qf_status s = dynq_check(n, in, n_in, n_out, err);
    if (s) return s;
    out[0].dtype = QF_DT_U8;
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank);
    if (n_out > 1) {
        out[1].dtype = QF_DT_F32;
        out[1].rank = 0;
    }
    if (n_out > 2) {
        out[2].dtype = QF_DT_U8;
        out[2].rank = 0;
    }
    return QF_OK;
}

static qf_status dynq_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_status s = dynq_check(n, in, n_in, n_out, err);
    if (s) return s;
    const float *x = in[0].data;
    int64_t numel = qf_tensor_numel(&in[0]);
    /* the range always includes 0; NaNs are ignored by the comparisons */
    float mn = 0.0f, mx = 0.0f;
    for (int64_t i = 0; i < numel; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    /* An all-zero x leaves max == min: the ONNX formula would divide 0 by 0.
     * ONNX Runtime uses a scale of 1 there (zero point 0, y all 0); so do we. */
    float scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    float zpf = 0.0f - mn / scale;
    if (zpf < 0.0f) zpf = 0.0f;
    if (zpf > 255.0f) zpf = 255.0f;
    float zp = nearbyintf(zpf); /* default rounding mode: ties to even */
    if (zp != zp) zp = 0.0f;    /* infinite range */
    uint8_t *y = out[0].data;
    for (int64_t i = 0; y && i < numel; i++)
        y[i] = (uint8_t)quantize_val(x[i] / scale, zp, 0, 255);
    if (n_out > 1 && out[1].data) *(float *)out[1].data = scale;
    if (n_out > 2 && out[2].data) *(uint8_t *)out[2].data = (uint8_t)zp;
    return QF_OK;
}

const qf_op_def qf_opdef_dynamic_quantize_linear = {
    .name = "DynamicQuantizeLinear",
    .flags = 0,
    .value_inputs = 0,
    .parse = NULL,
    .infer = dynq_infer,
    .scratch = NULL,
    .run = dynq_run,
};
