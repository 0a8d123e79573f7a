/* eltwise_unary.c - parameterless unary math: Sqrt, Exp, Log, Reciprocal,
 * Floor, Ceil, Erf, Tanh on float dtypes (F32, F64, F16 via F32), Abs on
 * every numeric dtype and Neg on signed ones (integer negation wraps, so
 * -INT_MIN == INT_MIN as in two's complement hardware), plus the shared
 * unary driver of eltwise.h. */
#include <string.h>

#include "base/threadpool.h"
#include "kernels/ref/eltwise.h"

#define DEF_UN(name, T, EXPR)                                                                      \
    static void name(const void *vx, void *vy, int64_t n, const void *params) {                    \
        (void)params;                                                                              \
        const T *xs = vx;                                                                          \
        T *ys = vy;                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T x = xs[i];                                                                           \
            ys[i] = (T)(EXPR);                                                                     \
        }                                                                                          \
    }

/* Float ops: single- and double-precision expressions side by side. */
#define DEF_UN_F(name, E32, E64) DEF_UN(name##_f32, float, E32) DEF_UN(name##_f64, double, E64)

DEF_UN_F(sqrt, sqrtf(x), sqrt(x))
DEF_UN_F(exp, expf(x), exp(x))
DEF_UN_F(log, logf(x), log(x))
DEF_UN_F(reciprocal, 1.0f / x, 1.0 / x)
DEF_UN_F(floor, floorf(x), floor(x))
DEF_UN_F(ceil, ceilf(x), ceil(x))
DEF_UN_F(erf, erff(x), erf(x))
DEF_UN_F(tanh, tanhf(x), tanh(x))
DEF_UN_F(abs, fabsf(x), fabs(x))
DEF_UN_F(neg, -x, -x)

#define DEF_UN_S(sfx, T)                                                                           \
    DEF_UN(abs_##sfx, T, x < 0 ? (T)(0 - (uint64_t)x) : x)                                         \
    DEF_UN(neg_##sfx, T, 0 - (uint64_t)x)
DEF_UN_S(i8, int8_t)
DEF_UN_S(i16, int16_t)
DEF_UN_S(i32, int32_t)
DEF_UN_S(i64, int64_t)

#define FLOAT_ROW(op)                                                                              \
    { [QF_DT_F32] = op##_f32, [QF_DT_F16] = op##_f32, [QF_DT_F64] = op##_f64 }

static void copy_u8(const void *x, void *y, int64_t n, const void *p) {
    (void)p;
    memmove(y, x, (size_t)n);
}
static void copy_u16(const void *x, void *y, int64_t n, const void *p) {
    (void)p;
    memmove(y, x, (size_t)n * 2);
}
static void copy_u32(const void *x, void *y, int64_t n, const void *p) {
    (void)p;
    memmove(y, x, (size_t)n * 4);
}
static void copy_u64(const void *x, void *y, int64_t n, const void *p) {
    (void)p;
    memmove(y, x, (size_t)n * 8);
}

static const qf_ref_un_fn row_sqrt[QF_DT_COUNT] = FLOAT_ROW(sqrt);
static const qf_ref_un_fn row_exp[QF_DT_COUNT] = FLOAT_ROW(exp);
static const qf_ref_un_fn row_log[QF_DT_COUNT] = FLOAT_ROW(log);
static const qf_ref_un_fn row_reciprocal[QF_DT_COUNT] = FLOAT_ROW(reciprocal);
static const qf_ref_un_fn row_floor[QF_DT_COUNT] = FLOAT_ROW(floor);
static const qf_ref_un_fn row_ceil[QF_DT_COUNT] = FLOAT_ROW(ceil);
static const qf_ref_un_fn row_erf[QF_DT_COUNT] = FLOAT_ROW(erf);
static const qf_ref_un_fn row_tanh[QF_DT_COUNT] = FLOAT_ROW(tanh);
static const qf_ref_un_fn row_abs[QF_DT_COUNT] = {
    [QF_DT_F32] = abs_f32,  [QF_DT_F16] = abs_f32,  [QF_DT_F64] = abs_f64, [QF_DT_I8] = abs_i8,
    [QF_DT_I16] = abs_i16,  [QF_DT_I32] = abs_i32,  [QF_DT_I64] = abs_i64, [QF_DT_U8] = copy_u8,
    [QF_DT_U16] = copy_u16, [QF_DT_U32] = copy_u32, [QF_DT_U64] = copy_u64};
static const qf_ref_un_fn row_neg[QF_DT_COUNT] = {
    [QF_DT_F32] = neg_f32, [QF_DT_F16] = neg_f32, [QF_DT_F64] = neg_f64, [QF_DT_I8] = neg_i8,
    [QF_DT_I16] = neg_i16, [QF_DT_I32] = neg_i32, [QF_DT_I64] = neg_i64};

/* ---- shared driver ---------------------------------------------------- */

#define F16_CHUNK 256

void qf_ref_unary_apply(qf_ref_un_fn fn, const qf_tensor *x, qf_tensor *y, const void *params) {
    int64_t n = qf_tensor_numel(x);
    if (n <= 0) return;
    if (x->dtype != QF_DT_F16) {
        fn(x->data, y->data, n, params);
        return;
    }
    const uint16_t *xs = x->data;
    uint16_t *ys = y->data;
    float buf[F16_CHUNK];
    for (int64_t s = 0; s < n; s += F16_CHUNK) {
        int64_t m = QF_MIN(n - s, (int64_t)F16_CHUNK);
        for (int64_t i = 0; i < m; i++)
            buf[i] = qf_f16_to_f32(xs[s + i]);
        fn(buf, buf, m, params);
        for (int64_t i = 0; i < m; i++)
            ys[s + i] = qf_f32_to_f16(buf[i]);
    }
}

typedef struct unary_job {
    qf_ref_un_fn fn;
    const unsigned char *x;
    unsigned char *y;
    const void *params;
    int64_t n, per_task;
    size_t esize;
} unary_job;

static void unary_task(void *ctx, int64_t t, int tid) {
    (void)tid;
    const unary_job *j = ctx;
    const int64_t i0 = t * j->per_task;
    const int64_t m = j->n - i0 < j->per_task ? j->n - i0 : j->per_task;
    j->fn(j->x + (size_t)i0 * j->esize, j->y + (size_t)i0 * j->esize, m, j->params);
}

/* Tensors below this many elements run on the caller. */
#define UNARY_PAR_MIN (1 << 16)

void qf_ref_unary_apply_ctx(const qf_exec_ctx *ctx, qf_ref_un_fn fn, const qf_tensor *x,
                            qf_tensor *y, const void *params) {
    qf_threadpool *pool = ctx ? ctx->pool : NULL;
    const int64_t n = qf_tensor_numel(x);
    const int threads = qf_threadpool_size(pool);
    if (threads < 2 || n < UNARY_PAR_MIN || x->dtype == QF_DT_F16) {
        qf_ref_unary_apply(fn, x, y, params);
        return;
    }
    unary_job j = {.fn = fn,
                   .x = x->data,
                   .y = y->data,
                   .params = params,
                   .n = n,
                   .esize = qf_dtype_size(x->dtype)};
    /* 4 tasks a thread, ranges a multiple of 64 elements */
    j.per_task = (qf_parallel_chunk(pool, n, 4) + 63) & ~(int64_t)63;
    qf_parallel_for(pool, (n + j.per_task - 1) / j.per_task, unary_task, &j);
}

qf_status qf_ref_infer_unary(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, const qf_ref_un_fn *row, qf_err *err) {
    char d[200];
    if (n_in < 1 || n_out < 1 || in[0].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs input X", qf_node_desc(n, d, sizeof d));
    if ((int)in[0].dtype < 0 || in[0].dtype >= QF_DT_COUNT || !row[in[0].dtype])
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof in[0].dims);
    return QF_OK;
}

qf_ref_un_fn qf_ref_unary_fn(const qf_node *n, const qf_ref_un_fn *row, qf_dtype dt, qf_err *err) {
    qf_ref_un_fn fn = (int)dt >= 0 && dt < QF_DT_COUNT ? row[dt] : NULL;
    if (!fn) {
        char d[200];
        qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s", qf_node_desc(n, d, sizeof d),
                qf_dtype_name(dt));
    }
    return fn;
}

/* ---- op definitions --------------------------------------------------- */

#define DEF_UNARY_OP(id, onnx)                                                                     \
    static qf_status infer_##id(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,   \
                                int n_out, qf_err *err) {                                          \
        return qf_ref_infer_unary(n, in, n_in, out, n_out, row_##id, err);                         \
    }                                                                                              \
    static qf_status run_##id(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,       \
                              int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {   \
        qf_ref_un_fn fn = qf_ref_unary_fn(n, row_##id, in[0].dtype, err);                          \
        if (!fn) return QF_ERR_UNSUPPORTED;                                                        \
        qf_ref_unary_apply(fn, &in[0], &out[0], NULL);                                             \
        return QF_OK;                                                                              \
    }                                                                                              \
    const qf_op_def qf_opdef_##id = {                                                              \
        .name = onnx, .flags = QF_OPF_ELEMENTWISE, .infer = infer_##id, .run = run_##id};

DEF_UNARY_OP(sqrt, "Sqrt")
DEF_UNARY_OP(exp, "Exp")
DEF_UNARY_OP(log, "Log")
DEF_UNARY_OP(reciprocal, "Reciprocal")
DEF_UNARY_OP(floor, "Floor")
DEF_UNARY_OP(ceil, "Ceil")
DEF_UNARY_OP(erf, "Erf")
DEF_UNARY_OP(tanh, "Tanh")
DEF_UNARY_OP(abs, "Abs")
DEF_UNARY_OP(neg, "Neg")
