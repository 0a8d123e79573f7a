/* reduce.c - ReduceSum, ReduceMean, ReduceMax, ReduceMin on F32, F64, I32
 * and I64.
 *
 * Axes come from the `axes` attribute (ReduceSum opset < 13, the others
 * opset < 18) or from the optional input 1 (later opsets; its contents must
 * be known when shapes are inferred, hence value_inputs). Empty axes reduce
 * everything unless noop_with_empty_axes is set, which makes the op an
 * identity.
 *
 * The reduction is a broadcast in reverse: the keepdims-shaped output is
 * planned as an operand broadcast to the input's shape (broadcast.h), so
 * each run of the input either folds into one output element (the run's
 * dim is reduced) or adds element-wise onto a run of outputs.
 * Sum/Mean accumulate in 8-byte scratch per output element: double for
 * floats, wrapping uint64 for integers. Reducing over an empty set gives 0
 * for Sum, NaN for float Mean (0 for integer Mean), and -inf/+inf (the
 * type's min/max for integers) for Max/Min, as the spec says. Float Max/Min
 * propagate NaN. */
#include <string.h>

#include "kernels/ref/eltwise.h"

typedef struct reduce_params {
    bool keepdims;
    bool noop_with_empty_axes;
    bool axes_from_input;
    int n_axes; /* attribute axes (when !axes_from_input) */
    const int64_t *axes;
} reduce_params;

static qf_status parse_reduce(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    reduce_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    p->keepdims = qf_node_attr_int(n, "keepdims", 1) != 0;
    p->noop_with_empty_axes = qf_node_attr_int(n, "noop_with_empty_axes", 0) != 0;
    p->axes_from_input = n->opset >= (n->op == QF_OP_REDUCE_SUM ? 13 : 18);
    if (!p->axes_from_input) {
        const int64_t *a;
        int k = qf_node_attr_ints(n, "axes", &a);
        if (k > 0) {
            int64_t *copy = qf_graph_alloc(g, sizeof(int64_t) * (size_t)k);
            if (!copy)
                return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory",
                               qf_node_desc(n, d, sizeof d));
            memcpy(copy, a, sizeof(int64_t) * (size_t)k);
            p->axes = copy;
            p->n_axes = k;
        }
    }
    n->params = p;
    return QF_OK;
}

/* Which dims of x are reduced; *noop when the op is an identity. */
static qf_status resolve_axes(const qf_node *n, const qf_tensor *in, int n_in, bool *reduced,
                              bool *noop, qf_err *err) {
    char d[200];
    const reduce_params *p = n->params;
    if (!p)
        return qf_errf(err, QF_ERR_INTERNAL, "%s: attributes not parsed",
                       qf_node_desc(n, d, sizeof d));
    int rank = in[0].rank;
    int64_t count = p->n_axes;
    const qf_tensor *ax = NULL;
    if (p->axes_from_input && n_in > 1 && in[1].dtype != QF_DT_UNDEF) {
        ax = &in[1];
        if (ax->dtype != QF_DT_I64 && ax->dtype != QF_DT_I32)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axes must be int64, not %s",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(ax->dtype));
        count = qf_tensor_numel(ax);
        if (count < 0 || ax->rank > 1)
            return qf_errf(err, QF_ERR_SHAPE, "%s: axes must be a 1-D tensor",
                           qf_node_desc(n, d, sizeof d));
        if (count > 0 && !ax->data)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: axes are not known before running",
                           qf_node_desc(n, d, sizeof d));
    }
    *noop = false;
    for (int i = 0; i < rank; i++)
        reduced[i] = count == 0;
    if (count == 0) {
        *noop = p->noop_with_empty_axes;
        if (*noop)
            for (int i = 0; i < rank; i++)
                reduced[i] = false;
        return QF_OK;
    }
    if (count > rank)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %lld axes for rank %d",
                       qf_node_desc(n, d, sizeof d), (long long)count, rank);
    for (int64_t i = 0; i < count; i++) {
        int64_t a = ax ? qf_tensor_get_i64(ax, i) : p->axes[i];
        int k;
        qf_status s = qf_norm_axis(n, a, rank, &k, err);
        if (s) return s;
        if (reduced[k])
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %lld repeated",
                           qf_node_desc(n, d, sizeof d), (long long)a);
        reduced[k] = true;
    }
    return QF_OK;
}

static bool reduce_type_ok(qf_dtype t) {
    return t == QF_DT_F32 || t == QF_DT_F64 || t == QF_DT_I32 || t == QF_DT_I64;
}

static qf_status infer_reduce(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    char d[200];
    if (n_in < 1 || n_out < 1 || in[0].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs input data",
                       qf_node_desc(n, d, sizeof d));
    if (!reduce_type_ok(in[0].dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    bool reduced[QF_MAX_DIMS], noop;
    qf_status s = resolve_axes(n, in, n_in, reduced, &noop, err);
    if (s) return s;
    const reduce_params *p = n->params;
    int r = 0;
    for (int i = 0; i < in[0].rank; i++) {
        if (!reduced[i])
            out[0].dims[r++] = in[0].dims[i];
        else if (p->keepdims)
            out[0].dims[r++] = 1;
    }
    out[0].rank = r;
    out[0].dtype = in[0].dtype;
    return QF_OK;
}

static size_t scratch_reduce(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                             int n_out) {
    if (n->op != QF_OP_REDUCE_SUM && n->op != QF_OP_REDUCE_MEAN) return 0;
    int64_t m = qf_tensor_numel(&out[0]);
    size_t bytes;
    if (m < 0 || !qf_mul_size((size_t)m, 8, &bytes)) return SIZE_MAX;
    return bytes;
}

/* ---- typed loops ------------------------------------------------------ */

/* acc[j] = ADD(acc[j], x[i]) over the plan (x walks, acc broadcasts). */
#define DEF_SUM(sfx, T, A)                                                                         \
    static void sum_##sfx(const qf_bcast *p, const T *x, A *acc) {                                 \
        qf_bcast_iter it;                                                                          \
        qf_bcast_iter_start(&it);                                                                  \
        for (int64_t r = 0; r < p->runs; r++, qf_bcast_iter_next(p, &it)) {                        \
            const T *xr = x + r * p->inner;                                                        \
            if (p->step_b) {                                                                       \
                A *ar = acc + it.off_b;                                                            \
                for (int64_t i = 0; i < p->inner; i++)                                             \
                    ar[i] += (A)xr[i];                                                             \
            } else {                                                                               \
                A s = 0;                                                                           \
                for (int64_t i = 0; i < p->inner; i++)                                             \
                    s += (A)xr[i];                                                                 \
                acc[it.off_b] += s;                                                                \
            }                                                                                      \
        }                                                                                          \
    }
DEF_SUM(f32, float, double)
DEF_SUM(f64, double, double)
DEF_SUM(i32, int32_t, uint64_t) /* wraps like the binary ops */
DEF_SUM(i64, int64_t, uint64_t)

/* o[j] = PICK(o[j], x[i]) where PICK(c, v) keeps the winner. */
#define DEF_EXT(name, T, BETTER)                                                                   \
    static void name(const qf_bcast *p, const T *x, T *o) {                                        \
        qf_bcast_iter it;                                                                          \
        qf_bcast_iter_start(&it);                                                                  \
        for (int64_t r = 0; r < p->runs; r++, qf_bcast_iter_next(p, &it)) {                        \
            const T *xr = x + r * p->inner;                                                        \
            if (p->step_b) {                                                                       \
                T *orun = o + it.off_b;                                                            \
                for (int64_t i = 0; i < p->inner; i++) {                                           \
                    T c = orun[i], v = xr[i];                                                      \
                    orun[i] = (BETTER) ? v : c;                                                    \
                }                                                                                  \
            } else {                                                                               \
                T c = o[it.off_b];                                                                 \
                for (int64_t i = 0; i < p->inner; i++) {                                           \
                    T v = xr[i];                                                                   \
                    c = (BETTER) ? v : c;                                                          \
                }                                                                                  \
                o[it.off_b] = c;                                                                   \
            }                                                                                      \
        }                                                                                          \
    }
/* A NaN candidate always wins and then stays (NaN compares false). */
DEF_EXT(max_f32, float, v > c || v != v)
DEF_EXT(max_f64, double, v > c || v != v)
DEF_EXT(max_i32, int32_t, v > c)
DEF_EXT(max_i64, int64_t, v > c)
DEF_EXT(min_f32, float, v < c || v != v)
DEF_EXT(min_f64, double, v < c || v != v)
DEF_EXT(min_i32, int32_t, v < c)
DEF_EXT(min_i64, int64_t, v < c)

#define FILL(T, V)                                                                                 \
    do {                                                                                           \
        T *o_ = out->data;                                                                         \
        for (int64_t i = 0; i < m; i++)                                                            \
            o_[i] = (V);                                                                           \
    } while (0)

static void run_extreme(bool is_max, const qf_bcast *p, const qf_tensor *x, qf_tensor *out) {
    int64_t m = qf_tensor_numel(out);
    switch (x->dtype) {
    case QF_DT_F32:
        FILL(float, is_max ? -INFINITY : INFINITY);
        (is_max ? max_f32 : min_f32)(p, x->data, out->data);
        break;
    case QF_DT_F64:
        FILL(double, is_max ? -INFINITY : INFINITY);
        (is_max ? max_f64 : min_f64)(p, x->data, out->data);
        break;
    case QF_DT_I32:
        FILL(int32_t, is_max ? INT32_MIN : INT32_MAX);
        (is_max ? max_i32 : min_i32)(p, x->data, out->data);
        break;
    case QF_DT_I64:
        FILL(int64_t, is_max ? INT64_MIN : INT64_MAX);
        (is_max ? max_i64 : min_i64)(p, x->data, out->data);
        break;
    default: break;
    }
}

static void run_sum_mean(bool mean, const qf_bcast *p, const qf_tensor *x, qf_tensor *out,
                         void *scratch) {
    int64_t m = qf_tensor_numel(out), nx = qf_tensor_numel(x);
    int64_t count = m > 0 ? nx / m : 0; /* elements folded into each output */
    if (qf_ref_is_float(x->dtype)) {
        double *acc = scratch;
        for (int64_t i = 0; i < m; i++)
            acc[i] = 0;
        if (x->dtype == QF_DT_F32)
            sum_f32(p, x->data, acc);
        else
            sum_f64(p, x->data, acc);
        double scale = 1.0;
        if (mean) scale = count > 0 ? 1.0 / (double)count : NAN;
        if (x->dtype == QF_DT_F32)
            FILL(float, (float)(acc[i] * scale));
        else
            FILL(double, acc[i] * scale);
    } else {
        uint64_t *acc = scratch;
        for (int64_t i = 0; i < m; i++)
            acc[i] = 0;
        if (x->dtype == QF_DT_I32)
            sum_i32(p, x->data, acc);
        else
            sum_i64(p, x->data, acc);
        /* Integer mean divides the (wrapped) signed sum, truncating. */
        if (x->dtype == QF_DT_I32)
            FILL(int32_t, mean ? (count > 0 ? (int64_t)acc[i] / count : 0) : (int64_t)acc[i]);
        else
            FILL(int64_t, mean ? (count > 0 ? (int64_t)acc[i] / count : 0) : (int64_t)acc[i]);
    }
}

static qf_status run_reduce(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    char d[200];
    if (!reduce_type_ok(in[0].dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    bool reduced[QF_MAX_DIMS], noop;
    qf_status s = resolve_axes(n, in, n_in, reduced, &noop, err);
    if (s) return s;
    int64_t nx = qf_tensor_numel(&in[0]);
    if (noop) {
        if (nx > 0 && out[0].data != in[0].data)
            memcpy(out[0].data, in[0].data, (size_t)nx * qf_dtype_size(in[0].dtype));
        return QF_OK;
    }
    /* The output seen with keepdims: in's shape with reduced dims set to 1. */
    qf_tensor kept = in[0];
    for (int i = 0; i < kept.rank; i++)
        if (reduced[i]) kept.dims[i] = 1;
    qf_bcast p;
    qf_bcast_init(&p, &in[0], &kept, &in[0]);
    bool needs_scratch = n->op == QF_OP_REDUCE_SUM || n->op == QF_OP_REDUCE_MEAN;
    if (needs_scratch && !scratch && qf_tensor_numel(&out[0]) > 0)
        return qf_errf(err, QF_ERR_INTERNAL, "%s: no scratch memory", qf_node_desc(n, d, sizeof d));
    switch (n->op) {
    case QF_OP_REDUCE_SUM: run_sum_mean(false, &p, &in[0], &out[0], scratch); break;
    case QF_OP_REDUCE_MEAN: run_sum_mean(true, &p, &in[0], &out[0], scratch); break;
    case QF_OP_REDUCE_MAX: run_extreme(true, &p, &in[0], &out[0]); break;
    case QF_OP_REDUCE_MIN: run_extreme(false, &p, &in[0], &out[0]); break;
    default:
        return qf_errf(err, QF_ERR_INTERNAL, "%s: not a reduction", qf_node_desc(n, d, sizeof d));
    }
    return QF_OK;
}

#define DEF_REDUCE_OP(id, onnx)                                                                    \
    const qf_op_def qf_opdef_##id = {.name = onnx,                                                 \
                                     .value_inputs = 1u << 1,                                      \
                                     .parse = parse_reduce,                                        \
                                     .infer = infer_reduce,                                        \
                                     .scratch = scratch_reduce,                                    \
                                     .run = run_reduce};
DEF_REDUCE_OP(reduce_sum, "ReduceSum")
DEF_REDUCE_OP(reduce_mean, "ReduceMean")
DEF_REDUCE_OP(reduce_max, "ReduceMax")
DEF_REDUCE_OP(reduce_min, "ReduceMin")
