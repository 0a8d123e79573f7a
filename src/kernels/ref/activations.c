/* activations.c - Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Elu,
 * Selu, Softplus, Clip and PRelu.
 *
 * NaN handling: every clamp is written as `x < lo ? lo : x` so a NaN input
 * stays NaN (like PyTorch and numpy.clip) instead of being replaced by a
 * bound, as fmin/fmax would do. Float ops run on F32, F64 and F16 (through
 * the F32 loop); Relu and Clip also on integer dtypes. */
#include <float.h>
#include <string.h>

#include "kernels/ref/eltwise.h"

typedef struct act_params {
    float alpha, beta, gamma;
} act_params;

/* ---- typed loops ------------------------------------------------------ */

#define DEF_ACT(name, T, EXPR)                                                                     \
    static void name(const void *vx, void *vy, int64_t n, const void *vp) {                        \
        const act_params *p = vp;                                                                  \
        (void)p;                                                                                   \
        const T *xs = vx;                                                                          \
        T *ys = vy;                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T x = xs[i];                                                                           \
            ys[i] = (T)(EXPR);                                                                     \
        }                                                                                          \
    }
#define DEF_ACT_F(name, E32, E64) DEF_ACT(name##_f32, float, E32) DEF_ACT(name##_f64, double, E64)

/* Numerically stable logistic: exp only of non-positive arguments, so large
 * |x| saturates to exactly 0 or 1 instead of producing inf/inf. */
static inline float sigmoidf_stable(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
static inline double sigmoid_stable(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
/* log(1 + e^x) without overflow for large x: x + log1p(e^-x). */
static inline float softplusf_stable(float x) {
    return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}
static inline double softplus_stable(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
static inline float clamp01f(float v) {
    v = v < 0.0f ? 0.0f : v;
    return v > 1.0f ? 1.0f : v;
}
static inline double clamp01(double v) {
    v = v < 0.0 ? 0.0 : v;
    return v > 1.0 ? 1.0 : v;
}

/* Relu is the hot activation of training: random signs make the scalar
 * select a mispredicted branch, and GCC at -O2 does not vectorise selects,
 * so with GCC/Clang 8 floats at a time go through generic vectors. x < 0
 * -> 0 keeps NaN (the comparison is false). Each block is loaded before it
 * is stored, so x == y (in place) is fine. */
static void relu_f32(const void *vx, void *vy, int64_t n, const void *vp) {
    (void)vp;
    const float *xs = vx;
    float *ys = vy;
    int64_t i = 0;
#if defined(__GNUC__)
    /* 16-byte vectors: the x86-64 baseline (SSE2) has them natively, wider
     * ones are split through the stack */
    typedef float v4f __attribute__((vector_size(16)));
    typedef int32_t v4i __attribute__((vector_size(16)));
    for (; i + 8 <= n; i += 8) {
        v4f a, b;
        memcpy(&a, xs + i, sizeof a);
        memcpy(&b, xs + i + 4, sizeof b);
        a = (v4f)((v4i)a & ~(a < 0.0f));
        b = (v4f)((v4i)b & ~(b < 0.0f));
        memcpy(ys + i, &a, sizeof a);
        memcpy(ys + i + 4, &b, sizeof b);
    }
#endif
    for (; i < n; i++)
        ys[i] = xs[i] < 0 ? 0.0f : xs[i];
}

/* clang-format would take the `*` in these macro arguments for pointers. */
/* clang-format off */
DEF_ACT(relu_f64, double, x < 0 ? 0.0 : x)
DEF_ACT(relu_i8, int8_t, x < 0 ? 0 : x)
DEF_ACT(relu_i16, int16_t, x < 0 ? 0 : x)
DEF_ACT(relu_i32, int32_t, x < 0 ? 0 : x)
DEF_ACT(relu_i64, int64_t, x < 0 ? 0 : x)
DEF_ACT_F(leaky_relu, x < 0 ? p->alpha * x : x, x < 0 ? (double)p->alpha * x : x)
DEF_ACT_F(sigmoid, sigmoidf_stable(x), sigmoid_stable(x))
DEF_ACT_F(hard_sigmoid, clamp01f(p->alpha * x + p->beta),
          clamp01((double)p->alpha * x + (double)p->beta))
/* HardSwish = x * HardSigmoid(x) with alpha 1/6, beta 0.5 (the spec's
 * formulation; ONNX's own expanded test uses exactly these constants). */
DEF_ACT_F(hard_swish, x * clamp01f(x * (1.0f / 6.0f) + 0.5f),
          x * clamp01(x * (1.0 / 6.0) + 0.5))
DEF_ACT_F(elu, x < 0 ? p->alpha * expm1f(x) : x, x < 0 ? (double)p->alpha * expm1(x) : x)
DEF_ACT_F(selu, x <= 0 ? p->gamma * (p->alpha * expm1f(x)) : p->gamma * x,
          x <= 0 ? (double)p->gamma * ((double)p->alpha * expm1(x)) : (double)p->gamma * x)
DEF_ACT_F(softplus, softplusf_stable(x), softplus_stable(x))
/* clang-format on */

#define FLOAT_ROW(op)                                                                              \
    { [QF_DT_F32] = op##_f32, [QF_DT_F16] = op##_f32, [QF_DT_F64] = op##_f64 }

static const qf_ref_un_fn row_relu[QF_DT_COUNT] = {
    [QF_DT_F32] = relu_f32, [QF_DT_F16] = relu_f32, [QF_DT_F64] = relu_f64, [QF_DT_I8] = relu_i8,
    [QF_DT_I16] = relu_i16, [QF_DT_I32] = relu_i32, [QF_DT_I64] = relu_i64};
static const qf_ref_un_fn row_leaky_relu[QF_DT_COUNT] = FLOAT_ROW(leaky_relu);
static const qf_ref_un_fn row_sigmoid[QF_DT_COUNT] = FLOAT_ROW(sigmoid);
static const qf_ref_un_fn row_hard_sigmoid[QF_DT_COUNT] = FLOAT_ROW(hard_sigmoid);
static const qf_ref_un_fn row_hard_swish[QF_DT_COUNT] = FLOAT_ROW(hard_swish);
static const qf_ref_un_fn row_elu[QF_DT_COUNT] = FLOAT_ROW(elu);
static const qf_ref_un_fn row_selu[QF_DT_COUNT] = FLOAT_ROW(selu);
static const qf_ref_un_fn row_softplus[QF_DT_COUNT] = FLOAT_ROW(softplus);

/* ---- attribute parsing ------------------------------------------------ */

static qf_status store_params(qf_graph *g, qf_node *n, float alpha, float beta, float gamma,
                              qf_err *err) {
    act_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) {
        char d[200];
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    }
    p->alpha = alpha;
    p->beta = beta;
    p->gamma = gamma;
    n->params = p;
    return QF_OK;
}

static qf_status parse_leaky_relu(qf_graph *g, qf_node *n, qf_err *err) {
    return store_params(g, n, qf_node_attr_float(n, "alpha", 0.01f), 0, 0, err);
}
static qf_status parse_hard_sigmoid(qf_graph *g, qf_node *n, qf_err *err) {
    return store_params(g, n, qf_node_attr_float(n, "alpha", 0.2f),
                        qf_node_attr_float(n, "beta", 0.5f), 0, err);
}
static qf_status parse_elu(qf_graph *g, qf_node *n, qf_err *err) {
    return store_params(g, n, qf_node_attr_float(n, "alpha", 1.0f), 0, 0, err);
}
static qf_status parse_selu(qf_graph *g, qf_node *n, qf_err *err) {
    /* Defaults from the spec (the float32 roundings of the SELU constants). */
    return store_params(g, n, qf_node_attr_float(n, "alpha", 1.67326319217681884765625f), 0,
                        qf_node_attr_float(n, "gamma", 1.05070102214813232421875f), err);
}
#define parse_relu NULL
#define parse_sigmoid NULL
#define parse_hard_swish NULL
#define parse_softplus NULL

#define DEF_ACT_OP(id, onnx)                                                                       \
    static qf_status infer_##id(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,   \
                                int n_out, qf_err *err) {                                          \
        return qf_ref_infer_unary(n, in, n_in, out, n_out, row_##id, err);                         \
    }                                                                                              \
    static qf_status run_##id(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,       \
                              int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {   \
        qf_ref_un_fn fn = qf_ref_unary_fn(n, row_##id, in[0].dtype, err);                          \
        if (!fn) return QF_ERR_UNSUPPORTED;                                                        \
        qf_ref_unary_apply_ctx(ctx, fn, &in[0], &out[0], n->params);                               \
        return QF_OK;                                                                              \
    }                                                                                              \
    const qf_op_def qf_opdef_##id = {.name = onnx,                                                 \
                                     .flags = QF_OPF_ELEMENTWISE,                                  \
                                     .parse = parse_##id,                                          \
                                     .infer = infer_##id,                                          \
                                     .run = run_##id};

DEF_ACT_OP(relu, "Relu")
DEF_ACT_OP(leaky_relu, "LeakyRelu")
DEF_ACT_OP(sigmoid, "Sigmoid")
DEF_ACT_OP(hard_sigmoid, "HardSigmoid")
DEF_ACT_OP(hard_swish, "HardSwish")
DEF_ACT_OP(elu, "Elu")
DEF_ACT_OP(selu, "Selu")
DEF_ACT_OP(softplus, "Softplus")

/* ---- Clip ------------------------------------------------------------- */
/* Opset < 11: float attributes min/max (defaults: the float range).
 * Opset >= 11: optional scalar inputs min (1) and max (2) of X's dtype.
 * Bounds are applied as max then min, so min > max gives max everywhere,
 * as the spec says. */

typedef struct clip_bounds {
    double lo_f, hi_f;   /* float dtypes (F16 runs through the F32 loop) */
    int64_t lo_i, hi_i;  /* signed integer dtypes */
    uint64_t lo_u, hi_u; /* unsigned integer dtypes */
} clip_bounds;

/* Integer bounds are clamped to T's range first: the defaults are the
 * 64-bit limits. */
static inline int64_t clamp_s(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}
static inline uint64_t clamp_u(uint64_t v, uint64_t hi) { return v > hi ? hi : v; }

#define DEF_CLIP(name, T, LO, HI)                                                                  \
    static void name(const void *vx, void *vy, int64_t n, const void *vp) {                        \
        const clip_bounds *b = vp;                                                                 \
        const T lo = (T)(LO), hi = (T)(HI);                                                        \
        const T *xs = vx;                                                                          \
        T *ys = vy;                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T v = xs[i] < lo ? lo : xs[i];                                                         \
            ys[i] = v > hi ? hi : v;                                                               \
        }                                                                                          \
    }
#define DEF_CLIP_S(sfx, T, MN, MX)                                                                 \
    DEF_CLIP(clip_##sfx, T, clamp_s(b->lo_i, MN, MX), clamp_s(b->hi_i, MN, MX))
#define DEF_CLIP_U(sfx, T, MX) DEF_CLIP(clip_##sfx, T, clamp_u(b->lo_u, MX), clamp_u(b->hi_u, MX))
DEF_CLIP(clip_f32, float, b->lo_f, b->hi_f)
DEF_CLIP(clip_f64, double, b->lo_f, b->hi_f)
DEF_CLIP_S(i8, int8_t, INT8_MIN, INT8_MAX)
DEF_CLIP_S(i16, int16_t, INT16_MIN, INT16_MAX)
DEF_CLIP_S(i32, int32_t, INT32_MIN, INT32_MAX)
DEF_CLIP_S(i64, int64_t, INT64_MIN, INT64_MAX)
DEF_CLIP_U(u8, uint8_t, UINT8_MAX)
DEF_CLIP_U(u16, uint16_t, UINT16_MAX)
DEF_CLIP_U(u32, uint32_t, UINT32_MAX)
DEF_CLIP_U(u64, uint64_t, UINT64_MAX)

static const qf_ref_un_fn row_clip[QF_DT_COUNT] = {
    [QF_DT_F32] = clip_f32, [QF_DT_F16] = clip_f32, [QF_DT_F64] = clip_f64, [QF_DT_I8] = clip_i8,
    [QF_DT_I16] = clip_i16, [QF_DT_I32] = clip_i32, [QF_DT_I64] = clip_i64, [QF_DT_U8] = clip_u8,
    [QF_DT_U16] = clip_u16, [QF_DT_U32] = clip_u32, [QF_DT_U64] = clip_u64};

typedef struct clip_attrs {
    float min, max; /* opset < 11 only */
} clip_attrs;

static qf_status parse_clip(qf_graph *g, qf_node *n, qf_err *err) {
    clip_attrs *p = qf_graph_alloc(g, sizeof *p);
    if (!p) {
        char d[200];
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    }
    p->min = qf_node_attr_float(n, "min", -FLT_MAX);
    p->max = qf_node_attr_float(n, "max", FLT_MAX);
    n->params = p;
    return QF_OK;
}

static bool bound_given(const qf_node *n, const qf_tensor *in, int n_in, int i) {
    return n->opset >= 11 && n_in > i && in[i].dtype != QF_DT_UNDEF;
}

static qf_status infer_clip(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    qf_status s = qf_ref_infer_unary(n, in, n_in, out, n_out, row_clip, err);
    if (s) return s;
    char d[200];
    if (n->opset < 11 && !qf_ref_is_float(in[0].dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: opset %d Clip needs a float input",
                       qf_node_desc(n, d, sizeof d), n->opset);
    for (int i = 1; i <= 2; i++) {
        if (!bound_given(n, in, n_in, i)) continue;
        if (in[i].dtype != in[0].dtype)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %s has type %s, input has %s",
                           qf_node_desc(n, d, sizeof d), i == 1 ? "min" : "max",
                           qf_dtype_name(in[i].dtype), qf_dtype_name(in[0].dtype));
        if (qf_tensor_numel(&in[i]) != 1)
            return qf_errf(err, QF_ERR_SHAPE, "%s: %s must be a scalar",
                           qf_node_desc(n, d, sizeof d), i == 1 ? "min" : "max");
    }
    return QF_OK;
}

static qf_status run_clip(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_ref_un_fn fn = qf_ref_unary_fn(n, row_clip, in[0].dtype, err);
    if (!fn) return QF_ERR_UNSUPPORTED;
    clip_bounds b = {-HUGE_VAL, HUGE_VAL, INT64_MIN, INT64_MAX, 0, UINT64_MAX};
    const clip_attrs *a = n->params;
    if (n->opset < 11 && a) {
        b.lo_f = a->min;
        b.hi_f = a->max;
    }
    for (int i = 1; i <= 2; i++) {
        if (!bound_given(n, in, n_in, i)) continue;
        if (!in[i].data || qf_tensor_numel(&in[i]) != 1) {
            char d[200];
            return qf_errf(err, QF_ERR_SHAPE, "%s: %s must be a scalar",
                           qf_node_desc(n, d, sizeof d), i == 1 ? "min" : "max");
        }
        double f = qf_tensor_get_f64(&in[i], 0);
        int64_t s = qf_tensor_get_i64(&in[i], 0);
        uint64_t u = in[i].dtype == QF_DT_U64 ? ((const uint64_t *)in[i].data)[0] : (uint64_t)s;
        if (i == 1) {
            b.lo_f = f;
            b.lo_i = s;
            b.lo_u = u;
        } else {
            b.hi_f = f;
            b.hi_i = s;
            b.hi_u = u;
        }
    }
    qf_ref_unary_apply_ctx(ctx, fn, &in[0], &out[0], &b);
    return QF_OK;
}

const qf_op_def qf_opdef_clip = {.name = "Clip",
                                 .flags = QF_OPF_ELEMENTWISE,
                                 .parse = parse_clip,
                                 .infer = infer_clip,
                                 .run = run_clip};

/* ---- PRelu ------------------------------------------------------------ */
/* y = x < 0 ? slope * x : x, slope broadcast unidirectionally to X. */

static qf_status infer_prelu(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    char d[200];
    if (n_in != 2 || n_out < 1 || in[0].dtype == QF_DT_UNDEF || in[1].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs X and slope",
                       qf_node_desc(n, d, sizeof d));
    if (in[0].dtype != in[1].dtype)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input types differ (%s vs %s)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype),
                       qf_dtype_name(in[1].dtype));
    if (!qf_ref_binary_fn(QF_BIN_PRELU, in[0].dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    qf_tensor b;
    qf_status s = qf_broadcast_shape(n, &in[0], &in[1], &b, err);
    if (s) return s;
    bool same = b.rank == in[0].rank;
    for (int i = 0; same && i < b.rank; i++)
        same = b.dims[i] == in[0].dims[i];
    if (!same)
        return qf_errf(err, QF_ERR_SHAPE, "%s: slope does not broadcast to the shape of X",
                       qf_node_desc(n, d, sizeof d));
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof in[0].dims);
    return QF_OK;
}

static qf_status run_prelu(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_ref_bin_fn fn = qf_ref_binary_fn(QF_BIN_PRELU, in[0].dtype);
    if (!fn) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    }
    qf_ref_binary_apply(fn, &in[0], &in[1], &out[0]);
    return QF_OK;
}

const qf_op_def qf_opdef_prelu = {
    .name = "PRelu", .flags = QF_OPF_ELEMENTWISE, .infer = infer_prelu, .run = run_prelu};
