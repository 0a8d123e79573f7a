/* cast.c - Cast between every numeric dtype, BOOL and F16.
 *
 * Elements are converted in chunks through one of three wide buffers chosen
 * by the source class (double for floats, int64 for signed integers and
 * BOOL, uint64 for unsigned), so every conversion is exact up to the final
 * store. Semantics of the store:
 *  - float -> integer truncates toward zero; NaN gives 0 and out-of-range
 *    values saturate to the target's limits (C leaves both undefined; ONNX
 *    calls them undefined too, ONNX Runtime gives whatever the CPU does);
 *  - integer -> integer keeps the low bits (two's complement wrap, as C
 *    casts and ONNX Runtime do);
 *  - anything -> BOOL is `v != 0` (NaN is true, as in numpy); BOOL reads as
 *    0/1;
 *  - F64 -> F16 rounds through F32 (double rounding can differ from a direct
 *    conversion by one F16 ulp in rare halfway cases).
 * STRING, BFLOAT16 and the float8 types are not supported. */
#include <string.h>

#include "kernels/ref/eltwise.h"

typedef struct cast_params {
    qf_dtype to;
} cast_params;

static bool cast_type_ok(int64_t t) { return t > 0 && t < QF_DT_COUNT && t != QF_DT_STRING; }

static qf_status parse_cast(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    const qf_attr *a = qf_node_attr(n, "to");
    if (!a || a->type != QF_ATTR_INT)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: missing integer attribute 'to'",
                       qf_node_desc(n, d, sizeof d));
    if (!cast_type_ok(a->i))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: attribute 'to' = %lld (%s) is not supported",
                       qf_node_desc(n, d, sizeof d), (long long)a->i,
                       a->i > 0 && a->i < QF_DT_COUNT ? qf_dtype_name((qf_dtype)a->i) : "?");
    cast_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    p->to = (qf_dtype)a->i;
    n->params = p;
    return QF_OK;
}

static qf_status infer_cast(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    char d[200];
    const cast_params *p = n->params;
    if (!p)
        return qf_errf(err, QF_ERR_INTERNAL, "%s: attributes not parsed",
                       qf_node_desc(n, d, sizeof d));
    if (n_in < 1 || n_out < 1 || in[0].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs input", qf_node_desc(n, d, sizeof d));
    if (!cast_type_ok(in[0].dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: cannot cast from %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    out[0].dtype = p->to;
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof in[0].dims);
    return QF_OK;
}

#define CHUNK 256

typedef enum { CLS_F, CLS_S, CLS_U } num_class;

static num_class class_of(qf_dtype t) {
    switch (t) {
    case QF_DT_F32:
    case QF_DT_F64:
    case QF_DT_F16: return CLS_F;
    case QF_DT_U8:
    case QF_DT_U16:
    case QF_DT_U32:
    case QF_DT_U64: return CLS_U;
    default: return CLS_S;
    }
}

#define LOAD(T, buf)                                                                               \
    do {                                                                                           \
        const T *s_ = (const T *)src;                                                              \
        for (int64_t i = 0; i < m; i++)                                                            \
            buf[i] = s_[i];                                                                        \
    } while (0)

/* Load m elements of dtype t into the buffer of its class. */
static void load_chunk(qf_dtype t, const void *src, int64_t m, double *f, int64_t *s, uint64_t *u) {
    switch (t) {
    case QF_DT_F32: LOAD(float, f); break;
    case QF_DT_F64: LOAD(double, f); break;
    case QF_DT_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < m; i++)
            f[i] = qf_f16_to_f32(h[i]);
        break;
    }
    case QF_DT_I8: LOAD(int8_t, s); break;
    case QF_DT_I16: LOAD(int16_t, s); break;
    case QF_DT_I32: LOAD(int32_t, s); break;
    case QF_DT_I64: LOAD(int64_t, s); break;
    case QF_DT_BOOL: {
        const uint8_t *b = src; /* any nonzero byte is true */
        for (int64_t i = 0; i < m; i++)
            s[i] = b[i] != 0;
        break;
    }
    case QF_DT_U8: LOAD(uint8_t, u); break;
    case QF_DT_U16: LOAD(uint16_t, u); break;
    case QF_DT_U32: LOAD(uint32_t, u); break;
    case QF_DT_U64: LOAD(uint64_t, u); break;
    default: break;
    }
}

/* Store from the double buffer: the only lossy class (see header). */
#define STORE_F(T, EXPR)                                                                           \
    do {                                                                                           \
        T *d_ = (T *)dst;                                                                          \
        for (int64_t i = 0; i < m; i++) {                                                          \
            double v = f[i];                                                                       \
            d_[i] = (T)(EXPR);                                                                     \
        }                                                                                          \
    } while (0)

static void store_from_f(qf_dtype t, void *dst, int64_t m, const double *f) {
    switch (t) {
    case QF_DT_F32: STORE_F(float, v); break;
    case QF_DT_F64: STORE_F(double, v); break;
    case QF_DT_F16: STORE_F(uint16_t, qf_f32_to_f16((float)v)); break;
    case QF_DT_BOOL: STORE_F(uint8_t, v != 0); break;
    case QF_DT_I8: STORE_F(int8_t, qf_ref_f64_to_i64_sat(v, INT8_MIN, INT8_MAX)); break;
    case QF_DT_I16: STORE_F(int16_t, qf_ref_f64_to_i64_sat(v, INT16_MIN, INT16_MAX)); break;
    case QF_DT_I32: STORE_F(int32_t, qf_ref_f64_to_i64_sat(v, INT32_MIN, INT32_MAX)); break;
    case QF_DT_I64: STORE_F(int64_t, qf_ref_f64_to_i64_sat(v, INT64_MIN, INT64_MAX)); break;
    case QF_DT_U8: STORE_F(uint8_t, qf_ref_f64_to_u64_sat(v, UINT8_MAX)); break;
    case QF_DT_U16: STORE_F(uint16_t, qf_ref_f64_to_u64_sat(v, UINT16_MAX)); break;
    case QF_DT_U32: STORE_F(uint32_t, qf_ref_f64_to_u64_sat(v, UINT32_MAX)); break;
    case QF_DT_U64: STORE_F(uint64_t, qf_ref_f64_to_u64_sat(v, UINT64_MAX)); break;
    default: break;
    }
}

/* Store from an integer buffer (W = int64_t or uint64_t): integer targets
 * keep the low bits, float targets round to nearest. */
#define DEF_STORE_INT(name, W)                                                                     \
    static void name(qf_dtype t, void *dst, int64_t m, const W *w) {                               \
        switch (t) {                                                                               \
        case QF_DT_F32: STORE_W(W, float, (float)v); break;                                        \
        case QF_DT_F64: STORE_W(W, double, (double)v); break;                                      \
        case QF_DT_F16: STORE_W(W, uint16_t, qf_f32_to_f16((float)v)); break;                      \
        case QF_DT_BOOL: STORE_W(W, uint8_t, v != 0); break;                                       \
        case QF_DT_I8: STORE_W(W, int8_t, v); break;                                               \
        case QF_DT_I16: STORE_W(W, int16_t, v); break;                                             \
        case QF_DT_I32: STORE_W(W, int32_t, v); break;                                             \
        case QF_DT_I64: STORE_W(W, int64_t, v); break;                                             \
        case QF_DT_U8: STORE_W(W, uint8_t, v); break;                                              \
        case QF_DT_U16: STORE_W(W, uint16_t, v); break;                                            \
        case QF_DT_U32: STORE_W(W, uint32_t, v); break;                                            \
        case QF_DT_U64: STORE_W(W, uint64_t, v); break;                                            \
        default: break;                                                                            \
        }                                                                                          \
    }
#define STORE_W(W, T, EXPR)                                                                        \
    do {                                                                                           \
        T *d_ = (T *)dst;                                                                          \
        for (int64_t i = 0; i < m; i++) {                                                          \
            W v = w[i];                                                                            \
            d_[i] = (T)(EXPR);                                                                     \
        }                                                                                          \
    } while (0)
DEF_STORE_INT(store_from_s, int64_t)
DEF_STORE_INT(store_from_u, uint64_t)

static qf_status run_cast(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_dtype from = in[0].dtype, to = out[0].dtype;
    int64_t total = qf_tensor_numel(&in[0]);
    size_t es_in = qf_dtype_size(from), es_out = qf_dtype_size(to);
    if (!cast_type_ok(from) || !cast_type_ok(to) || total < 0) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: cannot cast %s to %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(from), qf_dtype_name(to));
    }
    if (from == to) {
        if (total > 0 && out[0].data != in[0].data)
            memcpy(out[0].data, in[0].data, (size_t)total * es_in);
        return QF_OK;
    }
    double f[CHUNK];
    int64_t s[CHUNK];
    uint64_t u[CHUNK];
    const char *src = in[0].data;
    char *dst = out[0].data;
    num_class cls = class_of(from);
    for (int64_t off = 0; off < total; off += CHUNK) {
        int64_t m = QF_MIN(total - off, (int64_t)CHUNK);
        load_chunk(from, src + (size_t)off * es_in, m, f, s, u);
        void *d = dst + (size_t)off * es_out;
        if (cls == CLS_F)
            store_from_f(to, d, m, f);
        else if (cls == CLS_S)
            store_from_s(to, d, m, s);
        else
            store_from_u(to, d, m, u);
    }
    return QF_OK;
}

const qf_op_def qf_opdef_cast = {.name = "Cast",
                                 .flags = QF_OPF_ELEMENTWISE,
                                 .parse = parse_cast,
                                 .infer = infer_cast,
                                 .run = run_cast};
