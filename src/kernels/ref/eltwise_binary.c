/* eltwise_binary.c - Add, Sub, Mul, Div: numpy-broadcast binary arithmetic
 * for every numeric dtype, plus the typed inner loops and broadcasting
 * driver that Sum/Mean/Max/Min/PRelu reuse (eltwise.h).
 *
 * Integer semantics follow ONNX Runtime: arithmetic wraps modulo 2^bits
 * (computed in uint64_t so signed overflow is never undefined behaviour),
 * division truncates toward zero. Integer division by zero has no ONNX
 * meaning and would trap: it yields 0 here. INT_MIN / -1 wraps to INT_MIN. */
#include <string.h>

#include "kernels/ref/eltwise.h"

/* One run with the four stride patterns specialised, so the common cases
 * (equal shapes, scalar operand) are plain vectorisable loops. */
#define DEF_BIN(name, T, EXPR)                                                                     \
    static void name(const void *va, const void *vb, void *vo, int64_t n, int sa, int sb) {        \
        const T *a = va, *b = vb;                                                                  \
        T *o = vo;                                                                                 \
        if (sa && sb) {                                                                            \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i], y = b[i];                                                              \
                o[i] = (T)(EXPR);                                                                  \
            }                                                                                      \
        } else if (sa) {                                                                           \
            const T y = b[0];                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i];                                                                        \
                o[i] = (T)(EXPR);                                                                  \
            }                                                                                      \
        } else if (sb) {                                                                           \
            const T x = a[0];                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T y = b[i];                                                                        \
                o[i] = (T)(EXPR);                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            const T x = a[0], y = b[0];                                                            \
            const T v = (T)(EXPR);                                                                 \
            for (int64_t i = 0; i < n; i++)                                                        \
                o[i] = v;                                                                          \
        }                                                                                          \
    }

/* Wrapping integer arithmetic. */
#define W_ADD(x, y) ((uint64_t)(x) + (uint64_t)(y))
#define W_SUB(x, y) ((uint64_t)(x) - (uint64_t)(y))
#define W_MUL(x, y) ((uint64_t)(x) * (uint64_t)(y))

/* clang-format off */
/* Per dtype class: F float, S signed integer, U unsigned integer. */
#define DEF_ALL_F(sfx, T)                                                                          \
    DEF_BIN(add_##sfx, T, x + y)                                                                   \
    DEF_BIN(sub_##sfx, T, x - y)                                                                   \
    DEF_BIN(mul_##sfx, T, x * y)                                                                   \
    DEF_BIN(div_##sfx, T, x / y)                                                                   \
    /* NaN in either operand propagates (numpy maximum/minimum). */                                \
    DEF_BIN(max_##sfx, T, (x > y || x != x) ? x : y)                                               \
    DEF_BIN(min_##sfx, T, (x < y || x != x) ? x : y)                                               \
    DEF_BIN(prelu_##sfx, T, x < 0 ? x * y : x)

#define DEF_ALL_S(sfx, T)                                                                          \
    DEF_BIN(add_##sfx, T, W_ADD(x, y))                                                             \
    DEF_BIN(sub_##sfx, T, W_SUB(x, y))                                                             \
    DEF_BIN(mul_##sfx, T, W_MUL(x, y))                                                             \
    DEF_BIN(div_##sfx, T, y == 0 ? 0 : y == -1 ? (T)W_SUB(0, x) : x / y)                           \
    DEF_BIN(max_##sfx, T, x > y ? x : y)                                                           \
    DEF_BIN(min_##sfx, T, x < y ? x : y)                                                           \
    DEF_BIN(prelu_##sfx, T, x < 0 ? (T)W_MUL(x, y) : x)

#define DEF_ALL_U(sfx, T)                                                                          \
    DEF_BIN(add_##sfx, T, W_ADD(x, y))                                                             \
    DEF_BIN(sub_##sfx, T, W_SUB(x, y))                                                             \
    DEF_BIN(mul_##sfx, T, W_MUL(x, y))                                                             \
    DEF_BIN(div_##sfx, T, y == 0 ? 0 : x / y)                                                      \
    DEF_BIN(max_##sfx, T, x > y ? x : y)                                                           \
    DEF_BIN(min_##sfx, T, x < y ? x : y)                                                           \
    DEF_BIN(prelu_##sfx, T, ((void)y, x)) /* x is never negative */

/* clang-format on */

DEF_ALL_F(f32, float)
DEF_ALL_F(f64, double)
DEF_ALL_S(i8, int8_t)
DEF_ALL_S(i16, int16_t)
DEF_ALL_S(i32, int32_t)
DEF_ALL_S(i64, int64_t)
DEF_ALL_U(u8, uint8_t)
DEF_ALL_U(u16, uint16_t)
DEF_ALL_U(u32, uint32_t)
DEF_ALL_U(u64, uint64_t)

#define ROW(op)                                                                                    \
    {                                                                                              \
        [QF_DT_F32] = op##_f32, [QF_DT_F16] = op##_f32, [QF_DT_F64] = op##_f64,                    \
        [QF_DT_I8] = op##_i8, [QF_DT_I16] = op##_i16, [QF_DT_I32] = op##_i32,                      \
        [QF_DT_I64] = op##_i64, [QF_DT_U8] = op##_u8, [QF_DT_U16] = op##_u16,                      \
        [QF_DT_U32] = op##_u32, [QF_DT_U64] = op##_u64                                             \
    }

static const qf_ref_bin_fn bin_table[QF_BIN_COUNT][QF_DT_COUNT] = {
    [QF_BIN_ADD] = ROW(add),     [QF_BIN_SUB] = ROW(sub), [QF_BIN_MUL] = ROW(mul),
    [QF_BIN_DIV] = ROW(div),     [QF_BIN_MAX] = ROW(max), [QF_BIN_MIN] = ROW(min),
    [QF_BIN_PRELU] = ROW(prelu),
};

qf_ref_bin_fn qf_ref_binary_fn(qf_ref_binop op, qf_dtype dt) {
    if ((int)op < 0 || op >= QF_BIN_COUNT || (int)dt < 0 || dt >= QF_DT_COUNT) return NULL;
    return bin_table[op][dt];
}

bool qf_ref_is_float(qf_dtype dt) { return dt == QF_DT_F32 || dt == QF_DT_F64 || dt == QF_DT_F16; }

bool qf_ref_is_numeric(qf_dtype dt) {
    switch (dt) {
    case QF_DT_F32:
    case QF_DT_F64:
    case QF_DT_F16:
    case QF_DT_I8:
    case QF_DT_I16:
    case QF_DT_I32:
    case QF_DT_I64:
    case QF_DT_U8:
    case QF_DT_U16:
    case QF_DT_U32:
    case QF_DT_U64: return true;
    default: return false;
    }
}

/* F16 runs go through the F32 loop in chunks converted on the stack. */
#define F16_CHUNK 256
static void run_f16(qf_ref_bin_fn fn, const uint16_t *a, const uint16_t *b, uint16_t *o, int64_t n,
                    int sa, int sb) {
    float fa[F16_CHUNK], fb[F16_CHUNK], fo[F16_CHUNK];
    if (!sa) fa[0] = qf_f16_to_f32(a[0]);
    if (!sb) fb[0] = qf_f16_to_f32(b[0]);
    for (int64_t s = 0; s < n; s += F16_CHUNK) {
        int64_t m = QF_MIN(n - s, (int64_t)F16_CHUNK);
        for (int64_t i = 0; i < m && sa; i++)
            fa[i] = qf_f16_to_f32(a[s + i]);
        for (int64_t i = 0; i < m && sb; i++)
            fb[i] = qf_f16_to_f32(b[s + i]);
        fn(fa, fb, fo, m, sa, sb);
        for (int64_t i = 0; i < m; i++)
            o[s + i] = qf_f32_to_f16(fo[i]);
    }
}

void qf_ref_binary_apply(qf_ref_bin_fn fn, const qf_tensor *a, const qf_tensor *b, qf_tensor *out) {
    qf_bcast p;
    qf_bcast_init(&p, a, b, out);
    size_t es = qf_dtype_size(out->dtype);
    const char *pa = a->data, *pb = b->data;
    char *po = out->data;
    qf_bcast_iter it;
    qf_bcast_iter_start(&it);
    for (int64_t r = 0; r < p.runs; r++, qf_bcast_iter_next(&p, &it)) {
        const char *ra = pa + (size_t)it.off_a * es, *rb = pb + (size_t)it.off_b * es;
        char *ro = po + (size_t)(r * p.inner) * es;
        if (out->dtype == QF_DT_F16)
            run_f16(fn, (const uint16_t *)ra, (const uint16_t *)rb, (uint16_t *)ro, p.inner,
                    p.step_a, p.step_b);
        else
            fn(ra, rb, ro, p.inner, p.step_a, p.step_b);
    }
}

/* ---- Add / Sub / Mul / Div ------------------------------------------- */

static qf_status infer_binary(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    char d[200];
    if (n_in != 2 || n_out < 1 || in[0].dtype == QF_DT_UNDEF || in[1].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs A and B",
                       qf_node_desc(n, d, sizeof d));
    if (in[0].dtype != in[1].dtype)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input types differ (%s vs %s)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype),
                       qf_dtype_name(in[1].dtype));
    if (!qf_ref_is_numeric(in[0].dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    qf_status s = qf_broadcast_shape(n, &in[0], &in[1], &out[0], err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    return QF_OK;
}

static qf_status run_binary(qf_ref_binop op, const qf_node *n, const qf_tensor *in, qf_tensor *out,
                            qf_err *err) {
    qf_ref_bin_fn fn = qf_ref_binary_fn(op, out[0].dtype);
    if (!fn) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(out[0].dtype));
    }
    qf_ref_binary_apply(fn, &in[0], &in[1], &out[0]);
    return QF_OK;
}

#define DEF_BINARY_OP(id, onnx, OP)                                                                \
    static qf_status run_##id(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,       \
                              int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {   \
        return run_binary(OP, n, in, out, err);                                                    \
    }                                                                                              \
    const qf_op_def qf_opdef_##id = {                                                              \
        .name = onnx,                                                                              \
        .flags = QF_OPF_ELEMENTWISE,                                                               \
        .infer = infer_binary,                                                                     \
        .run = run_##id,                                                                           \
    };

DEF_BINARY_OP(add, "Add", QF_BIN_ADD)
DEF_BINARY_OP(sub, "Sub", QF_BIN_SUB)
DEF_BINARY_OP(mul, "Mul", QF_BIN_MUL)
DEF_BINARY_OP(div, "Div", QF_BIN_DIV)
