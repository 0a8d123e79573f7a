/* eltwise_pow.c - Pow: base ** exponent with numpy broadcasting.
 *
 * Output dtype is the base's (ONNX T); the exponent (T1) may be any numeric
 * dtype. Float bases use libm pow. Integer bases with integer exponents are
 * computed exactly by square-and-multiply, wrapping modulo 2^bits like the
 * other integer arithmetic; a negative exponent gives 1/x^|e| truncated
 * toward zero (so 0 unless |x| == 1; 0 ** negative, mathematically infinite,
 * is defined as 0 here). Integer bases with float exponents go through
 * double pow and convert with truncation, saturating out-of-range results
 * and mapping NaN to 0 (eltwise.h). */
#include <string.h>

#include "kernels/ref/eltwise.h"

static void pow_f32(const void *va, const void *vb, void *vo, int64_t n, int sa, int sb) {
    const float *a = va, *b = vb;
    float *o = vo;
    for (int64_t i = 0; i < n; i++)
        o[i] = powf(a[sa ? i : 0], b[sb ? i : 0]);
}

static void pow_f64(const void *va, const void *vb, void *vo, int64_t n, int sa, int sb) {
    const double *a = va, *b = vb;
    double *o = vo;
    for (int64_t i = 0; i < n; i++)
        o[i] = pow(a[sa ? i : 0], b[sb ? i : 0]);
}

static uint64_t ipow_wrap(uint64_t x, int64_t e) {
    if (e < 0) {
        int64_t sx = (int64_t)x;
        if (sx == 1) return 1;
        if (sx == -1) return (e & 1) ? x : 1;
        return 0;
    }
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return r;
}

static int64_t read_int_exponent(const qf_tensor *b, int64_t i) {
    if (b->dtype == QF_DT_U64) {
        uint64_t u = ((const uint64_t *)b->data)[i];
        return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
    return qf_tensor_get_i64(b, i);
}

/* Store a float result into an integer tensor (saturating) or float tensor. */
static void store_f64(qf_tensor *o, int64_t i, double v) {
    switch (o->dtype) {
    case QF_DT_F32: ((float *)o->data)[i] = (float)v; break;
    case QF_DT_F64: ((double *)o->data)[i] = v; break;
    case QF_DT_F16: ((uint16_t *)o->data)[i] = qf_f32_to_f16((float)v); break;
    case QF_DT_I8:
        ((int8_t *)o->data)[i] = (int8_t)qf_ref_f64_to_i64_sat(v, INT8_MIN, INT8_MAX);
        break;
    case QF_DT_I16:
        ((int16_t *)o->data)[i] = (int16_t)qf_ref_f64_to_i64_sat(v, INT16_MIN, INT16_MAX);
        break;
    case QF_DT_I32:
        ((int32_t *)o->data)[i] = (int32_t)qf_ref_f64_to_i64_sat(v, INT32_MIN, INT32_MAX);
        break;
    case QF_DT_I64: ((int64_t *)o->data)[i] = qf_ref_f64_to_i64_sat(v, INT64_MIN, INT64_MAX); break;
    case QF_DT_U8: ((uint8_t *)o->data)[i] = (uint8_t)qf_ref_f64_to_u64_sat(v, UINT8_MAX); break;
    case QF_DT_U16:
        ((uint16_t *)o->data)[i] = (uint16_t)qf_ref_f64_to_u64_sat(v, UINT16_MAX);
        break;
    case QF_DT_U32:
        ((uint32_t *)o->data)[i] = (uint32_t)qf_ref_f64_to_u64_sat(v, UINT32_MAX);
        break;
    case QF_DT_U64: ((uint64_t *)o->data)[i] = qf_ref_f64_to_u64_sat(v, UINT64_MAX); break;
    default: break;
    }
}

/* Store the low bits of an exact integer result (modulo 2^bits). */
static void store_wrap(qf_tensor *o, int64_t i, uint64_t v) {
    switch (o->dtype) {
    case QF_DT_I8: ((int8_t *)o->data)[i] = (int8_t)v; break;
    case QF_DT_I16: ((int16_t *)o->data)[i] = (int16_t)v; break;
    case QF_DT_I32: ((int32_t *)o->data)[i] = (int32_t)v; break;
    case QF_DT_I64: ((int64_t *)o->data)[i] = (int64_t)v; break;
    case QF_DT_U8: ((uint8_t *)o->data)[i] = (uint8_t)v; break;
    case QF_DT_U16: ((uint16_t *)o->data)[i] = (uint16_t)v; break;
    case QF_DT_U32: ((uint32_t *)o->data)[i] = (uint32_t)v; break;
    case QF_DT_U64: ((uint64_t *)o->data)[i] = v; break;
    default: break;
    }
}

/* Any dtype pair, element by element (mixed-type Pow is rare). */
static void pow_generic(const qf_tensor *a, const qf_tensor *b, qf_tensor *out) {
    qf_bcast p;
    qf_bcast_init(&p, a, b, out);
    bool int_base = !qf_ref_is_float(a->dtype), int_exp = !qf_ref_is_float(b->dtype);
    qf_bcast_iter it;
    qf_bcast_iter_start(&it);
    for (int64_t r = 0; r < p.runs; r++, qf_bcast_iter_next(&p, &it)) {
        for (int64_t i = 0; i < p.inner; i++) {
            int64_t ia = it.off_a + (p.step_a ? i : 0), ib = it.off_b + (p.step_b ? i : 0);
            int64_t io = r * p.inner + i;
            if (int_base && int_exp)
                store_wrap(out, io,
                           ipow_wrap((uint64_t)qf_tensor_get_i64(a, ia), read_int_exponent(b, ib)));
            else
                store_f64(out, io, pow(qf_tensor_get_f64(a, ia), qf_tensor_get_f64(b, ib)));
        }
    }
}

static qf_status infer_pow(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                           int n_out, qf_err *err) {
    char d[200];
    if (n_in != 2 || n_out < 1 || in[0].dtype == QF_DT_UNDEF || in[1].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs X and Y",
                       qf_node_desc(n, d, sizeof d));
    for (int i = 0; i < 2; i++)
        if (!qf_ref_is_numeric(in[i].dtype))
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(in[i].dtype));
    qf_status s = qf_broadcast_shape(n, &in[0], &in[1], &out[0], err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    return QF_OK;
}

static qf_status run_pow(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    if (in[0].dtype == QF_DT_F32 && in[1].dtype == QF_DT_F32)
        qf_ref_binary_apply(pow_f32, &in[0], &in[1], &out[0]);
    else if (in[0].dtype == QF_DT_F64 && in[1].dtype == QF_DT_F64)
        qf_ref_binary_apply(pow_f64, &in[0], &in[1], &out[0]);
    else
        pow_generic(&in[0], &in[1], &out[0]);
    return QF_OK;
}

const qf_op_def qf_opdef_pow = {
    .name = "Pow",
    .flags = QF_OPF_ELEMENTWISE,
    .infer = infer_pow,
    .run = run_pow,
};
