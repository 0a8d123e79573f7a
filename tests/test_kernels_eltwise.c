/* test_kernels_eltwise.c - reference kernels of the elementwise, activation,
 * Cast and Reduce* ops (src/kernels/ref/eltwise_*.c, activations.c, cast.c,
 * reduce.c, broadcast.c).
 *
 * Every op is called the way the runtime calls it: qf_op_get -> parse (on a
 * node added to a qf_graph) -> infer -> run into a buffer sized from infer.
 * References are independent of the kernels: broadcasting is recomputed per
 * element by explicit index arithmetic, math in double with libm, integer
 * wrap-around by explicit modulo, reductions by a naive scan of the whole
 * input per output element. Special values (NaN/Inf, integer division by
 * zero, Cast saturation and rounding) are checked against hand-written
 * numbers. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "base/threadpool.h"
#include "kernels/ref/broadcast.h"
#include "kernels/ref/eltwise.h"
#include "qt_alloc.h"
#include "qtest.h"

/* Strong references: they also make sure the kernel files are linked from
 * the static library (the registry itself references them weakly). */
extern const qf_op_def qf_opdef_add, qf_opdef_sub, qf_opdef_mul, qf_opdef_div, qf_opdef_pow,
    qf_opdef_sqrt, qf_opdef_relu, qf_opdef_leaky_relu, qf_opdef_clip, qf_opdef_sigmoid,
    qf_opdef_hard_sigmoid, qf_opdef_hard_swish, qf_opdef_tanh, qf_opdef_erf, qf_opdef_abs,
    qf_opdef_neg, qf_opdef_exp, qf_opdef_log, qf_opdef_reciprocal, qf_opdef_floor, qf_opdef_ceil,
    qf_opdef_max, qf_opdef_min, qf_opdef_sum, qf_opdef_mean, qf_opdef_elu, qf_opdef_selu,
    qf_opdef_softplus, qf_opdef_prelu, qf_opdef_cast, qf_opdef_reduce_mean, qf_opdef_reduce_sum,
    qf_opdef_reduce_max, qf_opdef_reduce_min;

/* ---- tensors ---------------------------------------------------------- */

static size_t esize(qf_dtype dt) {
    switch (dt) {
    case QF_DT_F64:
    case QF_DT_I64:
    case QF_DT_U64: return 8;
    case QF_DT_F32:
    case QF_DT_I32:
    case QF_DT_U32: return 4;
    case QF_DT_F16:
    case QF_DT_I16:
    case QF_DT_U16: return 2;
    default: return 1;
    }
}

static int64_t numel(const qf_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

static qf_tensor mk(qf_dtype dt, int rank, const int64_t *dims) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.data = calloc((size_t)(numel(&t) > 0 ? numel(&t) : 1), esize(dt));
    return t;
}
#define MK(dt, ...)                                                                                \
    mk(dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
static qf_tensor mk0(qf_dtype dt) { return mk(dt, 0, NULL); }

static bool is_float(qf_dtype dt) { return dt == QF_DT_F32 || dt == QF_DT_F64 || dt == QF_DT_F16; }
static bool is_unsigned(qf_dtype dt) {
    return dt == QF_DT_U8 || dt == QF_DT_U16 || dt == QF_DT_U32 || dt == QF_DT_U64 ||
           dt == QF_DT_BOOL;
}

/* Element access written here, independent of the library's helpers. */
static double getd(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_F32: return ((float *)t->data)[i];
    case QF_DT_F64: return ((double *)t->data)[i];
    case QF_DT_F16: return qf_f16_to_f32(((uint16_t *)t->data)[i]);
    case QF_DT_I8: return ((int8_t *)t->data)[i];
    case QF_DT_U8:
    case QF_DT_BOOL: return ((uint8_t *)t->data)[i];
    case QF_DT_I16: return ((int16_t *)t->data)[i];
    case QF_DT_U16: return ((uint16_t *)t->data)[i];
    case QF_DT_I32: return ((int32_t *)t->data)[i];
    case QF_DT_U32: return ((uint32_t *)t->data)[i];
    case QF_DT_I64: return (double)((int64_t *)t->data)[i];
    case QF_DT_U64: return (double)((uint64_t *)t->data)[i];
    default: return NAN;
    }
}
/* Integer element as int64 (U64: the same bits). */
static int64_t geti(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_I8: return ((int8_t *)t->data)[i];
    case QF_DT_U8:
    case QF_DT_BOOL: return ((uint8_t *)t->data)[i];
    case QF_DT_I16: return ((int16_t *)t->data)[i];
    case QF_DT_U16: return ((uint16_t *)t->data)[i];
    case QF_DT_I32: return ((int32_t *)t->data)[i];
    case QF_DT_U32: return ((uint32_t *)t->data)[i];
    case QF_DT_I64: return ((int64_t *)t->data)[i];
    case QF_DT_U64: return (int64_t)((uint64_t *)t->data)[i];
    default: return 0;
    }
}
/* Store an in-range value. */
static void setd(qf_tensor *t, int64_t i, double v) {
    switch (t->dtype) {
    case QF_DT_F32: ((float *)t->data)[i] = (float)v; break;
    case QF_DT_F64: ((double *)t->data)[i] = v; break;
    case QF_DT_F16: ((uint16_t *)t->data)[i] = qf_f32_to_f16((float)v); break;
    case QF_DT_I8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case QF_DT_U8:
    case QF_DT_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case QF_DT_I16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case QF_DT_U16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case QF_DT_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case QF_DT_U32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case QF_DT_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    case QF_DT_U64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    default: break;
    }
}
static void seti(qf_tensor *t, int64_t i, int64_t v) {
    switch (t->dtype) {
    case QF_DT_I64: ((int64_t *)t->data)[i] = v; break;
    case QF_DT_U64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    default: setd(t, i, (double)v); break;
    }
}

/* Two's complement wrap of v to dt's width, as an int64 bit pattern. */
static int64_t wrap_to(qf_dtype dt, int64_t v) {
    int bits = (int)esize(dt) * 8;
    if (bits == 64) return v;
    uint64_t m = (uint64_t)1 << bits;
    uint64_t u = (uint64_t)v % m;
    if (!is_unsigned(dt) && u >= m / 2) return (int64_t)u - (int64_t)m;
    return (int64_t)u;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rnd_uniform(double lo, double hi) {
    return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}
static int64_t rnd_int(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* Random contents in a range suited to the dtype. nonzero: keep |v| large
 * enough to divide by. */
static void fill_random(qf_tensor *t, bool nonzero) {
    int64_t n = numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (is_float(t->dtype)) {
            double v = rnd_uniform(-4, 4);
            if (nonzero && fabs(v) < 0.25) v = v < 0 ? -0.25 - fabs(v) : 0.25 + v;
            setd(t, i, v);
            continue;
        }
        int64_t v;
        switch (t->dtype) {
        case QF_DT_I8: v = rnd_int(-128, 127); break;
        case QF_DT_U8: v = rnd_int(0, 255); break;
        case QF_DT_I16: v = rnd_int(-32768, 32767); break;
        case QF_DT_U16: v = rnd_int(0, 65535); break;
        case QF_DT_I32: v = rnd_int(-100000, 100000); break;
        case QF_DT_U32: v = rnd_int(0, 200000); break;
        case QF_DT_I64: v = rnd_int(-1000000, 1000000); break;
        default: v = rnd_int(0, 2000000); break;
        }
        seti(t, i, v);
    }
}

/* ---- calling an op like the runtime does ------------------------------ */

static char last_err[QF_ERR_MSG_LEN];

/* Build a one-node graph, parse, infer, allocate out (free with free()),
 * run. Inputs with dtype UNDEF are passed as omitted. */
static qf_status run_op_n(const char *op, int opset, const qf_attr *attrs, int n_attrs,
                          const qf_tensor *in, int n_in, qf_tensor *out) {
    qf_err err;
    err.msg[0] = 0;
    memset(out, 0, sizeof *out);
    qf_graph *g = qf_graph_create();
    int ids[16], oid;
    for (int i = 0; i < n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "in%d", i);
        ids[i] = in[i].dtype == QF_DT_UNDEF
                     ? -1
                     : qf_graph_add_value(g, name, in[i].dtype, in[i].rank, in[i].dims);
    }
    oid = qf_graph_add_value(g, "out", QF_DT_UNDEF, -1, NULL);
    int ni = qf_graph_add_node(g, "mynode", op, "", opset, ids, n_in, &oid, 1, attrs, n_attrs);
    qf_node *n = &g->nodes[ni];
    const qf_op_def *def = qf_op_get(n->op);
    qf_status s = QF_OK;
    void *scratch = NULL;
    if (!def) {
        s = QF_ERR_UNSUPPORTED;
        snprintf(err.msg, sizeof err.msg, "%s: no op definition", op);
        goto done;
    }
    if (def->parse && (s = def->parse(g, n, &err))) goto done;
    if ((s = def->infer(n, in, n_in, out, 1, &err))) goto done;
    int64_t m = numel(out);
    out->data = calloc((size_t)(m > 0 ? m : 1), esize(out->dtype));
    size_t sb = def->scratch ? def->scratch(n, in, n_in, out, 1) : 0;
    if (sb) scratch = malloc(sb);
    qf_exec_ctx ctx = {.num_threads = 1};
    s = def->run(&ctx, n, in, n_in, out, 1, scratch, &err);
done:
    free(scratch);
    snprintf(last_err, sizeof last_err, "%s", err.msg);
    qf_graph_free(g);
    return s;
}

static qf_attr attr_i(const char *name, int64_t v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INT;
    a.i = v;
    return a;
}
static qf_attr attr_f(const char *name, float v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_FLOAT;
    a.f = v;
    return a;
}
static qf_attr attr_ints(const char *name, int64_t *v, int n) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INTS;
    a.ints = v;
    a.n = n;
    return a;
}

static const char *dt_name(qf_dtype dt) { return qf_dtype_name(dt); }

/* Offset into t of output index `oi` of out, by broadcasting rules. */
static int64_t bcast_offset(const qf_tensor *t, const qf_tensor *out, int64_t oi) {
    int64_t idx[QF_MAX_DIMS];
    for (int d = out->rank - 1; d >= 0; d--) {
        idx[d] = oi % out->dims[d];
        oi /= out->dims[d];
    }
    int64_t off = 0;
    for (int k = 0; k < t->rank; k++) {
        int d = k + out->rank - t->rank;
        off = off * t->dims[k] + (t->dims[k] == 1 ? 0 : idx[d]);
    }
    return off;
}

static bool close_to(double got, double ref, double rel) {
    if (isnan(ref)) return isnan(got);
    if (isinf(ref)) return got == ref;
    return fabs(got - ref) <= rel * fmax(1.0, fabs(ref));
}

static double tol_of(qf_dtype dt) {
    return dt == QF_DT_F16 ? 2e-3 : dt == QF_DT_F32 ? 2e-6 : 1e-12;
}

/* ---- registry --------------------------------------------------------- */

static void test_registry(void) {
    static const struct {
        qf_op_id id;
        const qf_op_def *def;
        bool eltwise;
    } ops[] = {
        {QF_OP_ADD, &qf_opdef_add, 1},
        {QF_OP_SUB, &qf_opdef_sub, 1},
        {QF_OP_MUL, &qf_opdef_mul, 1},
        {QF_OP_DIV, &qf_opdef_div, 1},
        {QF_OP_POW, &qf_opdef_pow, 1},
        {QF_OP_SQRT, &qf_opdef_sqrt, 1},
        {QF_OP_RELU, &qf_opdef_relu, 1},
        {QF_OP_LEAKY_RELU, &qf_opdef_leaky_relu, 1},
        {QF_OP_CLIP, &qf_opdef_clip, 1},
        {QF_OP_SIGMOID, &qf_opdef_sigmoid, 1},
        {QF_OP_HARD_SIGMOID, &qf_opdef_hard_sigmoid, 1},
        {QF_OP_HARD_SWISH, &qf_opdef_hard_swish, 1},
        {QF_OP_TANH, &qf_opdef_tanh, 1},
        {QF_OP_ERF, &qf_opdef_erf, 1},
        {QF_OP_ABS, &qf_opdef_abs, 1},
        {QF_OP_NEG, &qf_opdef_neg, 1},
        {QF_OP_EXP, &qf_opdef_exp, 1},
        {QF_OP_LOG, &qf_opdef_log, 1},
        {QF_OP_RECIPROCAL, &qf_opdef_reciprocal, 1},
        {QF_OP_FLOOR, &qf_opdef_floor, 1},
        {QF_OP_CEIL, &qf_opdef_ceil, 1},
        {QF_OP_MAX, &qf_opdef_max, 1},
        {QF_OP_MIN, &qf_opdef_min, 1},
        {QF_OP_SUM, &qf_opdef_sum, 1},
        {QF_OP_MEAN, &qf_opdef_mean, 1},
        {QF_OP_ELU, &qf_opdef_elu, 1},
        {QF_OP_SELU, &qf_opdef_selu, 1},
        {QF_OP_SOFTPLUS, &qf_opdef_softplus, 1},
        {QF_OP_PRELU, &qf_opdef_prelu, 1},
        {QF_OP_CAST, &qf_opdef_cast, 1},
        {QF_OP_REDUCE_MEAN, &qf_opdef_reduce_mean, 0},
        {QF_OP_REDUCE_SUM, &qf_opdef_reduce_sum, 0},
        {QF_OP_REDUCE_MAX, &qf_opdef_reduce_max, 0},
        {QF_OP_REDUCE_MIN, &qf_opdef_reduce_min, 0},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(ops); i++) {
        const qf_op_def *d = qf_op_get(ops[i].id);
        CHECK_MSG(d == ops[i].def, "op %d", (int)ops[i].id);
        CHECK_MSG(strcmp(d->name, qf_op_name(ops[i].id)) == 0, "%s", d->name);
        CHECK_MSG(((d->flags & QF_OPF_ELEMENTWISE) != 0) == ops[i].eltwise, "%s", d->name);
        CHECK(d->infer && d->run);
    }
    /* The reductions read axes (input 1) at plan time. */
    CHECK(qf_opdef_reduce_sum.value_inputs & (1u << 1));
    CHECK(qf_opdef_reduce_mean.value_inputs & (1u << 1));
}

/* ---- broadcast plan ----------------------------------------------------- */

static void test_bcast_plan(void) {
    qf_tensor a = MK(QF_DT_F32, 2, 3, 4, 5), c = MK(QF_DT_F32, 1, 3, 1, 1), s = mk0(QF_DT_F32);
    qf_bcast p;
    qf_bcast_init(&p, &a, &a, &a); /* equal shapes: one run over everything */
    CHECK_EQ_INT(p.rank, 1);
    CHECK_EQ_INT(p.runs, 1);
    CHECK_EQ_INT(p.inner, 120);
    CHECK(p.step_a == 1 && p.step_b == 1);
    qf_bcast_init(&p, &a, &s, &a); /* scalar: step 0 */
    CHECK_EQ_INT(p.runs, 1);
    CHECK_EQ_INT(p.inner, 120);
    CHECK(p.step_a == 1 && p.step_b == 0);
    qf_bcast_init(&p, &a, &c, &a); /* per channel: N*C runs of H*W, b fixed */
    CHECK_EQ_INT(p.runs, 6);
    CHECK_EQ_INT(p.inner, 20);
    CHECK(p.step_a == 1 && p.step_b == 0);
    /* the b offsets of the runs walk the channels: 0 1 2 0 1 2 */
    qf_bcast_iter it;
    qf_bcast_iter_start(&it);
    for (int r = 0; r < 6; r++, qf_bcast_iter_next(&p, &it)) {
        CHECK_EQ_INT(it.off_b, r % 3);
        CHECK_EQ_INT(it.off_a, r * 20);
    }
    free(a.data);
    free(c.data);
    free(s.data);
}

/* ---- binary and variadic ops ------------------------------------------ */

typedef enum { R_ADD, R_SUB, R_MUL, R_DIV, R_MAX, R_MIN, R_SUM, R_MEAN, R_PRELU } refop;

static const struct {
    const char *onnx;
    refop op;
    int opset;
} bin_ops[] = {
    {"Add", R_ADD, 14},     {"Sub", R_SUB, 14}, {"Mul", R_MUL, 14}, {"Div", R_DIV, 14},
    {"Max", R_MAX, 13},     {"Min", R_MIN, 13}, {"Sum", R_SUM, 13}, {"Mean", R_MEAN, 13},
    {"PRelu", R_PRELU, 16}, {"Add", R_ADD, 7},  {"Div", R_DIV, 7},
};

static const qf_dtype all_dtypes[] = {QF_DT_F32, QF_DT_F64, QF_DT_F16, QF_DT_I8,
                                      QF_DT_U8,  QF_DT_I16, QF_DT_U16, QF_DT_I32,
                                      QF_DT_I64, QF_DT_U32, QF_DT_U64};

typedef struct shape_pair {
    const char *what;
    int ra;
    int64_t da[5];
    int rb;
    int64_t db[5];
} shape_pair;

static const shape_pair shapes[] = {
    {"equal", 3, {2, 3, 4}, 3, {2, 3, 4}},
    {"scalar b", 3, {2, 3, 4}, 0, {0}},
    {"scalar a", 0, {0}, 3, {2, 3, 4}},
    {"channel NCHW", 4, {2, 3, 4, 5}, 4, {1, 3, 1, 1}},
    {"channel C11", 4, {2, 3, 4, 5}, 3, {3, 1, 1}},
    {"row", 2, {4, 5}, 1, {5}},
    {"general", 3, {2, 1, 4}, 2, {3, 1}},
    {"both broadcast", 4, {1, 3, 1, 5}, 4, {2, 1, 4, 1}},
    {"rank 5", 5, {2, 1, 3, 1, 2}, 3, {1, 4, 2}},
    {"rank 0", 0, {0}, 0, {0}},
    {"ones", 2, {1, 1}, 0, {0}},
    {"zero-size", 3, {2, 0, 3}, 1, {3}},
    {"zero from b", 2, {2, 1}, 1, {0}},
    {"long runs", 2, {3, 300}, 2, {3, 1}},
    {"long equal", 1, {600}, 1, {600}},
    {"b walks a fixed", 2, {3, 1}, 2, {3, 70}},
};

static double ref_float(refop op, double a, double b) {
    switch (op) {
    case R_ADD:
    case R_SUM: return a + b;
    case R_SUB: return a - b;
    case R_MUL: return a * b;
    case R_DIV: return a / b;
    case R_MAX: return a > b ? a : b;
    case R_MIN: return a < b ? a : b;
    case R_MEAN: return (a + b) / 2;
    case R_PRELU: return a < 0 ? a * b : a;
    }
    return NAN;
}

/* Inputs are small enough that these never overflow int64. */
static int64_t ref_int(refop op, int64_t a, int64_t b) {
    switch (op) {
    case R_ADD:
    case R_SUM: return a + b;
    case R_SUB: return a - b;
    case R_MUL: return a * b;
    case R_DIV: return b == 0 ? 0 : a / b;
    case R_MAX: return a > b ? a : b;
    case R_MIN: return a < b ? a : b;
    case R_PRELU: return a < 0 ? a * b : a;
    default: return 0;
    }
}

static bool broadcasts_to(const qf_tensor *b, const qf_tensor *a) {
    if (b->rank > a->rank) return false;
    for (int k = 0; k < b->rank; k++) {
        int64_t db = b->dims[k], da = a->dims[k + a->rank - b->rank];
        if (db != 1 && db != da) return false;
    }
    return true;
}

static void test_binary_table(void) {
    int n_checked = 0;
    for (size_t oi = 0; oi < QF_ARRAY_LEN(bin_ops); oi++) {
        for (size_t di = 0; di < QF_ARRAY_LEN(all_dtypes); di++) {
            qf_dtype dt = all_dtypes[di];
            refop op = bin_ops[oi].op;
            if (op == R_MEAN && !is_float(dt)) continue;
            for (size_t si = 0; si < QF_ARRAY_LEN(shapes); si++) {
                const shape_pair *sp = &shapes[si];
                qf_tensor a = mk(dt, sp->ra, sp->da), b = mk(dt, sp->rb, sp->db), o;
                if (op == R_PRELU && !broadcasts_to(&b, &a)) {
                    free(a.data);
                    free(b.data);
                    continue;
                }
                fill_random(&a, false);
                fill_random(&b, op == R_DIV);
                qf_tensor in[2] = {a, b};
                qf_status s = run_op_n(bin_ops[oi].onnx, bin_ops[oi].opset, NULL, 0, in, 2, &o);
                CHECK_MSG(s == QF_OK, "%s %s %s: %s", bin_ops[oi].onnx, dt_name(dt), sp->what,
                          last_err);
                CHECK(o.dtype == dt);
                /* expected output shape: numpy broadcast, written out */
                int r = sp->ra > sp->rb ? sp->ra : sp->rb;
                CHECK_EQ_INT(o.rank, r);
                for (int d = 0; d < r; d++) {
                    int ka = d - (r - sp->ra), kb = d - (r - sp->rb);
                    int64_t x = ka >= 0 ? sp->da[ka] : 1, y = kb >= 0 ? sp->db[kb] : 1;
                    CHECK_EQ_INT(o.dims[d], x == 1 ? y : x);
                }
                for (int64_t i = 0; i < numel(&o); i++) {
                    int64_t ia = bcast_offset(&a, &o, i), ib = bcast_offset(&b, &o, i);
                    if (is_float(dt)) {
                        double ref = ref_float(op, getd(&a, ia), getd(&b, ib));
                        CHECK_MSG(close_to(getd(&o, i), ref, tol_of(dt)),
                                  "%s %s %s [%lld]: %.9g vs %.9g", bin_ops[oi].onnx, dt_name(dt),
                                  sp->what, (long long)i, getd(&o, i), ref);
                    } else {
                        int64_t av = geti(&a, ia), bv = geti(&b, ib);
                        int64_t ref = wrap_to(dt, ref_int(op, av, bv));
                        CHECK_MSG(geti(&o, i) == ref,
                                  "%s %s %s [%lld]: %lld op %lld = %lld, "
                                  "want %lld",
                                  bin_ops[oi].onnx, dt_name(dt), sp->what, (long long)i,
                                  (long long)av, (long long)bv, (long long)geti(&o, i),
                                  (long long)ref);
                    }
                    n_checked++;
                }
                free(a.data);
                free(b.data);
                free(o.data);
            }
        }
    }
    CHECK(n_checked > 100000);
}

/* Sum/Mean/Max/Min over three inputs of different shapes, and one input. */
static void test_variadic_three(void) {
    static const char *ops[] = {"Sum", "Mean", "Max", "Min"};
    for (size_t k = 0; k < QF_ARRAY_LEN(ops); k++) {
        qf_tensor x = MK(QF_DT_F32, 2, 1, 4), y = MK(QF_DT_F32, 3, 1), z = MK(QF_DT_F32, 4), o;
        fill_random(&x, false);
        fill_random(&y, false);
        fill_random(&z, false);
        qf_tensor in[3] = {x, y, z};
        CHECK_MSG(run_op_n(ops[k], 13, NULL, 0, in, 3, &o) == QF_OK, "%s", last_err);
        CHECK(o.rank == 3 && o.dims[0] == 2 && o.dims[1] == 3 && o.dims[2] == 4);
        for (int64_t i = 0; i < 24; i++) {
            double v[3];
            for (int j = 0; j < 3; j++)
                v[j] = getd(&in[j], bcast_offset(&in[j], &o, i));
            double ref = k == 0   ? v[0] + v[1] + v[2]
                         : k == 1 ? (v[0] + v[1] + v[2]) / 3
                         : k == 2 ? fmax(fmax(v[0], v[1]), v[2])
                                  : fmin(fmin(v[0], v[1]), v[2]);
            CHECK_MSG(close_to(getd(&o, i), ref, 1e-6), "%s [%lld]", ops[k], (long long)i);
        }
        free(o.data);
        /* a single input is copied */
        CHECK(run_op_n(ops[k], 13, NULL, 0, in, 1, &o) == QF_OK);
        CHECK(o.rank == 3 && o.dims[0] == 2 && o.dims[1] == 1 && o.dims[2] == 4);
        for (int64_t i = 0; i < 8; i++)
            CHECK(getd(&o, i) == getd(&x, i));
        free(o.data);
        free(x.data);
        free(y.data);
        free(z.data);
    }
}

/* Hand-checked integer division and wrap-around. */
static void test_int_division(void) {
    static const struct {
        qf_dtype dt;
        int64_t a, b, want;
    } cases[] = {
        {QF_DT_I32, 7, 2, 3},
        {QF_DT_I32, -7, 2, -3},
        {QF_DT_I32, 7, -2, -3},
        {QF_DT_I32, -7, -2, 3},
        {QF_DT_I32, 5, 0, 0}, /* defined as 0, see eltwise_binary.c */
        {QF_DT_I32, INT32_MIN, -1, INT32_MIN},
        {QF_DT_I64, INT64_MIN, -1, INT64_MIN},
        {QF_DT_I64, -9, 4, -2},
        {QF_DT_I8, -128, -1, -128},
        {QF_DT_I8, -128, 0, 0},
        {QF_DT_U8, 200, 0, 0},
        {QF_DT_U8, 200, 7, 28},
        {QF_DT_U64, (int64_t)UINT64_MAX, 2, INT64_MAX},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        qf_tensor a = mk0(cases[i].dt), b = mk0(cases[i].dt), o;
        seti(&a, 0, cases[i].a);
        seti(&b, 0, cases[i].b);
        qf_tensor in[2] = {a, b};
        CHECK(run_op_n("Div", 14, NULL, 0, in, 2, &o) == QF_OK);
        CHECK_MSG(geti(&o, 0) == cases[i].want, "case %zu: %lld", i, (long long)geti(&o, 0));
        free(a.data);
        free(b.data);
        free(o.data);
    }
    /* wrap-around instead of undefined signed overflow */
    static const struct {
        const char *op;
        qf_dtype dt;
        int64_t a, b, want;
    } wraps[] = {
        {"Add", QF_DT_I32, INT32_MAX, 1, INT32_MIN},
        {"Sub", QF_DT_I64, INT64_MIN, 1, INT64_MAX},
        {"Mul", QF_DT_I64, INT64_MAX, 2, -2},
        {"Mul", QF_DT_U16, 65535, 65535, 1},
        {"Add", QF_DT_U8, 200, 100, 44},
        {"Sub", QF_DT_U32, 0, 1, 4294967295},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(wraps); i++) {
        qf_tensor a = mk0(wraps[i].dt), b = mk0(wraps[i].dt), o;
        seti(&a, 0, wraps[i].a);
        seti(&b, 0, wraps[i].b);
        qf_tensor in[2] = {a, b};
        CHECK(run_op_n(wraps[i].op, 14, NULL, 0, in, 2, &o) == QF_OK);
        CHECK_MSG(geti(&o, 0) == wraps[i].want, "wrap %zu: %lld", i, (long long)geti(&o, 0));
        free(a.data);
        free(b.data);
        free(o.data);
    }
}

/* NaN propagation of Max/Min, IEEE results of float division. */
static void test_float_binary_special(void) {
    float av[] = {NAN, 1.0f, 1.0f, -1.0f, 0.0f, INFINITY};
    float bv[] = {1.0f, NAN, 0.0f, 0.0f, 0.0f, 2.0f};
    qf_tensor a = MK(QF_DT_F32, 6), b = MK(QF_DT_F32, 6), o;
    memcpy(a.data, av, sizeof av);
    memcpy(b.data, bv, sizeof bv);
    qf_tensor in[2] = {a, b};
    CHECK(run_op_n("Max", 13, NULL, 0, in, 2, &o) == QF_OK);
    float *r = o.data;
    CHECK(isnan(r[0]) && isnan(r[1]) && r[2] == 1.0f && r[5] == INFINITY);
    free(o.data);
    CHECK(run_op_n("Min", 13, NULL, 0, in, 2, &o) == QF_OK);
    r = o.data;
    CHECK(isnan(r[0]) && isnan(r[1]) && r[2] == 0.0f && r[3] == -1.0f);
    free(o.data);
    CHECK(run_op_n("Div", 14, NULL, 0, in, 2, &o) == QF_OK);
    r = o.data;
    CHECK(isnan(r[0]) && r[2] == INFINITY && r[3] == -INFINITY && isnan(r[4]) && r[5] == INFINITY);
    free(o.data);
    free(a.data);
    free(b.data);
}

/* ---- Pow ---------------------------------------------------------------- */

static void test_pow(void) {
    /* float base with every exponent dtype, broadcast exponents */
    static const qf_dtype exps[] = {QF_DT_F32, QF_DT_I32, QF_DT_I64, QF_DT_U32,
                                    QF_DT_U64, QF_DT_F64, QF_DT_I8};
    for (size_t e = 0; e < QF_ARRAY_LEN(exps); e++) {
        for (int pat = 0; pat < 3; pat++) {
            qf_tensor x = MK(QF_DT_F32, 2, 3, 5), y, o;
            y = pat == 0 ? MK(exps[e], 2, 3, 5) : pat == 1 ? mk0(exps[e]) : MK(exps[e], 5);
            for (int64_t i = 0; i < numel(&x); i++)
                setd(&x, i, rnd_uniform(0.1, 3));
            for (int64_t i = 0; i < numel(&y); i++)
                setd(&y, i, is_float(exps[e]) ? rnd_uniform(-2, 3) : (double)rnd_int(0, 4));
            qf_tensor in[2] = {x, y};
            CHECK_MSG(run_op_n("Pow", 15, NULL, 0, in, 2, &o) == QF_OK, "%s", last_err);
            CHECK(o.dtype == QF_DT_F32 && numel(&o) == 30);
            for (int64_t i = 0; i < 30; i++) {
                double ref = pow(getd(&x, i), getd(&y, bcast_offset(&y, &o, i)));
                CHECK_MSG(close_to(getd(&o, i), ref, 2e-6), "exp %s [%lld]: %g vs %g",
                          dt_name(exps[e]), (long long)i, getd(&o, i), ref);
            }
            free(x.data);
            free(y.data);
            free(o.data);
        }
    }
    /* integer bases: hand-checked */
    static const struct {
        qf_dtype bt, et;
        double base, ex, want;
    } cases[] = {
        {QF_DT_I32, QF_DT_I32, 3, 4, 81},
        {QF_DT_I32, QF_DT_I32, -2, 3, -8},
        {QF_DT_I32, QF_DT_I32, 2, -1, 0},
        {QF_DT_I32, QF_DT_I32, -1, -3, -1},
        {QF_DT_I32, QF_DT_I32, 1, -5, 1},
        {QF_DT_I32, QF_DT_I32, 2, 33, 0},          /* 2^33 wraps to 0 in 32 bits */
        {QF_DT_I64, QF_DT_F32, 2, 0.5, 1},         /* 1.414 truncates */
        {QF_DT_I32, QF_DT_F32, 2, 40, 2147483647}, /* saturates */
        {QF_DT_U8, QF_DT_F32, 2, -1, 0},
        {QF_DT_I32, QF_DT_F32, 4, 0.5, 2},
        {QF_DT_F64, QF_DT_I64, 2, 10, 1024},
        {QF_DT_F16, QF_DT_F16, 2, 3, 8},
    };
    /* 64-bit integer powers are exact: 3^39 needs 62 bits, 3^41 wraps */
    qf_tensor x64 = MK(QF_DT_I64, 2), y64 = MK(QF_DT_I64, 2), o64;
    int64_t xv[2] = {3, 3}, yv[2] = {39, 41};
    memcpy(x64.data, xv, sizeof xv);
    memcpy(y64.data, yv, sizeof yv);
    qf_tensor in64[2] = {x64, y64};
    CHECK(run_op_n("Pow", 15, NULL, 0, in64, 2, &o64) == QF_OK);
    CHECK(((int64_t *)o64.data)[0] == 4052555153018976267LL);
    CHECK(((int64_t *)o64.data)[1] == (int64_t)(4052555153018976267ULL * 9ULL));
    free(x64.data);
    free(y64.data);
    free(o64.data);
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        qf_tensor x = mk0(cases[i].bt), y = mk0(cases[i].et), o;
        setd(&x, 0, cases[i].base);
        setd(&y, 0, cases[i].ex);
        qf_tensor in[2] = {x, y};
        CHECK_MSG(run_op_n("Pow", 15, NULL, 0, in, 2, &o) == QF_OK, "%s", last_err);
        CHECK(o.dtype == cases[i].bt);
        if (cases[i].bt == QF_DT_I64)
            CHECK_MSG(geti(&o, 0) == (int64_t)cases[i].want, "case %zu: %lld", i,
                      (long long)geti(&o, 0));
        else
            CHECK_MSG(getd(&o, 0) == cases[i].want, "case %zu: %g", i, getd(&o, 0));
        free(x.data);
        free(y.data);
        free(o.data);
    }
}

/* ---- unary ops ---------------------------------------------------------- */

static double r_relu(double x, const double *p) {
    (void)p;
    return x > 0 ? x : 0;
}
static double r_sqrt(double x, const double *p) {
    (void)p;
    return sqrt(x);
}
static double r_exp(double x, const double *p) {
    (void)p;
    return exp(x);
}
static double r_log(double x, const double *p) {
    (void)p;
    return log(x);
}
static double r_recip(double x, const double *p) {
    (void)p;
    return 1 / x;
}
static double r_floor(double x, const double *p) {
    (void)p;
    return floor(x);
}
static double r_ceil(double x, const double *p) {
    (void)p;
    return ceil(x);
}
static double r_erf(double x, const double *p) {
    (void)p;
    return erf(x);
}
static double r_tanh(double x, const double *p) {
    (void)p;
    return tanh(x);
}
static double r_abs(double x, const double *p) {
    (void)p;
    return fabs(x);
}
static double r_neg(double x, const double *p) {
    (void)p;
    return -x;
}
static double r_sigmoid(double x, const double *p) {
    (void)p;
    return 1 / (1 + exp(-x));
}
static double r_softplus(double x, const double *p) {
    (void)p;
    return log(1 + exp(x));
}
static double r_leaky(double x, const double *p) { return x >= 0 ? x : p[0] * x; }
static double r_elu(double x, const double *p) { return x >= 0 ? x : p[0] * (exp(x) - 1); }
static double r_selu(double x, const double *p) {
    return x > 0 ? p[1] * x : p[1] * (p[0] * exp(x) - p[0]);
}
static double r_hsig(double x, const double *p) { return fmax(0, fmin(1, p[0] * x + p[1])); }
static double r_hswish(double x, const double *p) {
    (void)p;
    return x * fmax(0, fmin(1, x / 6 + 0.5));
}

typedef struct unary_case {
    const char *op;
    int opset;
    double (*ref)(double, const double *);
    double p[2]; /* reference parameters */
    int n_attrs; /* attributes: alpha = p[0], then beta/gamma = p[1] */
    const char *attr2;
    double lo, hi; /* input range */
} unary_case;

#define SELU_A 1.6732632423543772848170429916717
#define SELU_G 1.0507009873554804934193349852946

static const unary_case unary_cases[] = {
    {"Relu", 14, r_relu, {0}, 0, NULL, -5, 5},
    {"Sqrt", 13, r_sqrt, {0}, 0, NULL, 0, 10},
    {"Exp", 13, r_exp, {0}, 0, NULL, -10, 10},
    {"Log", 13, r_log, {0}, 0, NULL, 0.01, 100},
    {"Reciprocal", 13, r_recip, {0}, 0, NULL, 0.1, 10},
    {"Floor", 13, r_floor, {0}, 0, NULL, -5, 5},
    {"Ceil", 13, r_ceil, {0}, 0, NULL, -5, 5},
    {"Erf", 13, r_erf, {0}, 0, NULL, -3, 3},
    {"Tanh", 13, r_tanh, {0}, 0, NULL, -6, 6},
    {"Abs", 13, r_abs, {0}, 0, NULL, -5, 5},
    {"Neg", 13, r_neg, {0}, 0, NULL, -5, 5},
    {"Sigmoid", 13, r_sigmoid, {0}, 0, NULL, -12, 12},
    {"Softplus", 7, r_softplus, {0}, 0, NULL, -12, 12},
    {"LeakyRelu", 16, r_leaky, {0.01}, 0, NULL, -5, 5},
    {"LeakyRelu", 16, r_leaky, {0.1}, 1, NULL, -5, 5},
    {"Elu", 7, r_elu, {1.0}, 0, NULL, -5, 5},
    {"Elu", 7, r_elu, {2.0}, 1, NULL, -5, 5},
    {"Selu", 7, r_selu, {SELU_A, SELU_G}, 0, NULL, -5, 5},
    {"Selu", 7, r_selu, {2.0, 3.0}, 2, "gamma", -5, 5},
    {"HardSigmoid", 7, r_hsig, {0.2, 0.5}, 0, NULL, -5, 5},
    {"HardSigmoid", 7, r_hsig, {0.5, 0.6}, 2, "beta", -5, 5},
    {"HardSwish", 14, r_hswish, {0}, 0, NULL, -5, 5},
};

static void test_unary_table(void) {
    static const qf_dtype fdts[] = {QF_DT_F32, QF_DT_F64, QF_DT_F16};
    static const struct {
        int rank;
        int64_t dims[3];
    } ushapes[] = {{3, {3, 4, 37}}, {0, {0}}, {2, {0, 3}}, {1, {700}}};
    for (size_t c = 0; c < QF_ARRAY_LEN(unary_cases); c++) {
        const unary_case *uc = &unary_cases[c];
        qf_attr attrs[2];
        attrs[0] = attr_f("alpha", (float)uc->p[0]);
        attrs[1] = attr_f(uc->attr2 ? uc->attr2 : "beta", (float)uc->p[1]);
        /* Attributes (and their spec defaults) are floats: the reference
         * uses the float-rounded values too. The rounding goes through a
         * volatile: GCC 12 at -O2 (SLP vectorizer) drops the double->float->
         * double round trip of the pair when written as plain casts. */
        volatile float pf0 = (float)uc->p[0], pf1 = (float)uc->p[1];
        double p[2] = {pf0, pf1};
        for (size_t di = 0; di < QF_ARRAY_LEN(fdts); di++) {
            for (size_t si = 0; si < QF_ARRAY_LEN(ushapes); si++) {
                qf_dtype dt = fdts[di];
                qf_tensor x = mk(dt, ushapes[si].rank, ushapes[si].dims), o;
                for (int64_t i = 0; i < numel(&x); i++)
                    setd(&x, i, rnd_uniform(uc->lo, uc->hi));
                CHECK_MSG(run_op_n(uc->op, uc->opset, attrs, uc->n_attrs, &x, 1, &o) == QF_OK,
                          "%s %s: %s", uc->op, dt_name(dt), last_err);
                CHECK(o.dtype == dt && o.rank == x.rank);
                for (int d = 0; d < x.rank; d++)
                    CHECK(o.dims[d] == x.dims[d]);
                for (int64_t i = 0; i < numel(&x); i++) {
                    double ref = uc->ref(getd(&x, i), p);
                    if (dt == QF_DT_F16) ref = qf_f16_to_f32(qf_f32_to_f16((float)ref));
                    CHECK_MSG(close_to(getd(&o, i), ref, tol_of(dt)),
                              "%s %s [%lld] x=%.9g: %.9g vs %.9g", uc->op, dt_name(dt),
                              (long long)i, getd(&x, i), getd(&o, i), ref);
                }
                free(x.data);
                free(o.data);
            }
        }
    }
}

/* Relu/Abs/Neg on integers; float-only ops reject integers. */
static void test_unary_int(void) {
    static const qf_dtype sdts[] = {QF_DT_I8, QF_DT_I16, QF_DT_I32, QF_DT_I64};
    for (size_t di = 0; di < QF_ARRAY_LEN(sdts); di++) {
        qf_dtype dt = sdts[di];
        qf_tensor x = MK(dt, 50), o;
        fill_random(&x, false);
        int64_t tmin = dt == QF_DT_I8    ? INT8_MIN
                       : dt == QF_DT_I16 ? INT16_MIN
                       : dt == QF_DT_I32 ? INT32_MIN
                                         : INT64_MIN;
        seti(&x, 0, tmin);
        static const char *ops[] = {"Relu", "Abs", "Neg"};
        for (int k = 0; k < 3; k++) {
            CHECK_MSG(run_op_n(ops[k], 14, NULL, 0, &x, 1, &o) == QF_OK, "%s", last_err);
            for (int64_t i = 0; i < 50; i++) {
                int64_t v = geti(&x, i), want;
                if (k == 0)
                    want = v > 0 ? v : 0;
                else if (v == tmin)
                    want = tmin; /* -INT_MIN wraps to INT_MIN */
                else
                    want = k == 1 ? (v < 0 ? -v : v) : -v;
                CHECK_MSG(geti(&o, i) == want, "%s %s %lld -> %lld", ops[k], dt_name(dt),
                          (long long)v, (long long)geti(&o, i));
            }
            free(o.data);
        }
        CHECK(run_op_n("Sqrt", 13, NULL, 0, &x, 1, &o) == QF_ERR_UNSUPPORTED);
        CHECK(strstr(last_err, "mynode") != NULL);
        free(x.data);
    }
    /* Abs on unsigned is the identity */
    qf_tensor x = MK(QF_DT_U8, 3), o;
    uint8_t xv[] = {0, 200, 255};
    memcpy(x.data, xv, 3);
    CHECK(run_op_n("Abs", 13, NULL, 0, &x, 1, &o) == QF_OK);
    CHECK(memcmp(o.data, xv, 3) == 0);
    free(o.data);
    free(x.data);
}

/* NaN/Inf and extreme inputs through the activations (hand-checked). */
static void test_unary_special(void) {
    static const float xs[] = {NAN, INFINITY, -INFINITY, 1000.0f, -1000.0f, 0.0f, -0.0f};
    enum { N = 7 };
    static const struct {
        const char *op;
        float want[N];
    } cases[] = {
        {"Relu", {NAN, INFINITY, 0, 1000, 0, 0, 0}},
        {"Sigmoid", {NAN, 1, 0, 1, 0, 0.5f, 0.5f}},
        {"Softplus", {NAN, INFINITY, 0, 1000, 0, 0.693147182f, 0.693147182f}},
        {"Tanh", {NAN, 1, -1, 1, -1, 0, 0}},
        {"Erf", {NAN, 1, -1, 1, -1, 0, 0}},
        {"HardSigmoid", {NAN, 1, 0, 1, 0, 0.5f, 0.5f}},
        {"HardSwish", {NAN, INFINITY, NAN /* -inf * 0 */, 1000, 0, 0, 0}},
        {"LeakyRelu", {NAN, INFINITY, -INFINITY, 1000, -10, 0, 0}},
        {"Elu", {NAN, INFINITY, -1, 1000, -1, 0, 0}},
        {"Exp", {NAN, INFINITY, 0, INFINITY, 0, 1, 1}},
        {"Reciprocal", {NAN, 0, 0, 0.001f, -0.001f, INFINITY, -INFINITY}},
        {"Abs", {NAN, INFINITY, INFINITY, 1000, 1000, 0, 0}},
    };
    qf_tensor x = MK(QF_DT_F32, N);
    memcpy(x.data, xs, sizeof xs);
    for (size_t c = 0; c < QF_ARRAY_LEN(cases); c++) {
        qf_tensor o;
        int opset = strcmp(cases[c].op, "HardSwish") == 0 ? 14 : 13;
        CHECK_MSG(run_op_n(cases[c].op, opset, NULL, 0, &x, 1, &o) == QF_OK, "%s", last_err);
        const float *r = o.data;
        for (int i = 0; i < N; i++) {
            float w = cases[c].want[i];
            bool ok = isnan(w) ? isnan(r[i]) : (isinf(w) ? r[i] == w : fabsf(r[i] - w) <= 1e-6f);
            CHECK_MSG(ok, "%s(%g) = %g, want %g", cases[c].op, xs[i], r[i], w);
        }
        free(o.data);
    }
    free(x.data);
}

/* ---- Clip ------------------------------------------------------------- */

static void test_clip(void) {
    float xv[] = {-3, -1, 0, 0.5f, 2, 7, NAN, INFINITY, -INFINITY};
    enum { N = 9 };
    qf_tensor x = MK(QF_DT_F32, N), lo = mk0(QF_DT_F32), hi = mk0(QF_DT_F32), none, o;
    memset(&none, 0, sizeof none);
    memcpy(x.data, xv, sizeof xv);
    setd(&lo, 0, -1);
    setd(&hi, 0, 2);
    /* opset 13, both bounds, min only, max only, none; opset 6 attrs */
    static const float want[5][N] = {
        {-1, -1, 0, 0.5f, 2, 2, NAN, 2, -1},
        {-1, -1, 0, 0.5f, 2, 7, NAN, INFINITY, -1},
        {-3, -1, 0, 0.5f, 2, 2, NAN, 2, -INFINITY},
        {-3, -1, 0, 0.5f, 2, 7, NAN, INFINITY, -INFINITY},
        {-1, -1, 0, 0.5f, 2, 2, NAN, 2, -1},
    };
    qf_tensor ins[5][3] = {{x, lo, hi}, {x, lo, none}, {x, none, hi}, {x, none, none}, {x}};
    int n_in[5] = {3, 2, 3, 1, 1};
    qf_attr attrs[2] = {attr_f("min", -1), attr_f("max", 2)};
    for (int c = 0; c < 5; c++) {
        CHECK_MSG(run_op_n("Clip", c == 4 ? 6 : 13, attrs, c == 4 ? 2 : 0, ins[c], n_in[c], &o) ==
                      QF_OK,
                  "case %d: %s", c, last_err);
        const float *r = o.data;
        for (int i = 0; i < N; i++)
            CHECK_MSG(isnan(want[c][i]) ? isnan(r[i]) : r[i] == want[c][i], "case %d [%d]: %g", c,
                      i, r[i]);
        free(o.data);
    }
    /* min > max: everything becomes max (spec) */
    setd(&lo, 0, 5);
    qf_tensor in2[3] = {x, lo, hi};
    CHECK(run_op_n("Clip", 13, NULL, 0, in2, 3, &o) == QF_OK);
    for (int i = 0; i < N; i++)
        CHECK(isnan(xv[i]) ? isnan(((float *)o.data)[i]) : ((float *)o.data)[i] == 2);
    free(o.data);
    /* integer dtypes: int8 with max only, uint8 and int64 with both */
    qf_tensor xi = MK(QF_DT_I8, 4), hi8 = mk0(QF_DT_I8);
    int8_t xiv[] = {-128, -5, 5, 127};
    memcpy(xi.data, xiv, 4);
    setd(&hi8, 0, 3);
    qf_tensor in3[3] = {xi, none, hi8};
    CHECK(run_op_n("Clip", 13, NULL, 0, in3, 3, &o) == QF_OK);
    int8_t w8[] = {-128, -5, 3, 3};
    CHECK(memcmp(o.data, w8, 4) == 0);
    free(o.data);
    qf_tensor xu = MK(QF_DT_U8, 4), lou = mk0(QF_DT_U8), hiu = mk0(QF_DT_U8);
    uint8_t xuv[] = {0, 10, 100, 255};
    memcpy(xu.data, xuv, 4);
    setd(&lou, 0, 20);
    setd(&hiu, 0, 200);
    qf_tensor in4[3] = {xu, lou, hiu};
    CHECK(run_op_n("Clip", 13, NULL, 0, in4, 3, &o) == QF_OK);
    uint8_t wu[] = {20, 20, 100, 200};
    CHECK(memcmp(o.data, wu, 4) == 0);
    free(o.data);
    qf_tensor x64 = MK(QF_DT_I64, 3);
    int64_t x64v[] = {INT64_MIN, 0, INT64_MAX};
    memcpy(x64.data, x64v, sizeof x64v);
    CHECK(run_op_n("Clip", 13, NULL, 0, &x64, 1, &o) == QF_OK); /* no bounds: identity */
    CHECK(memcmp(o.data, x64v, sizeof x64v) == 0);
    free(o.data);
    /* f16 through the f32 loop */
    qf_tensor xh = MK(QF_DT_F16, 3), loh = mk0(QF_DT_F16);
    setd(&xh, 0, -2);
    setd(&xh, 1, 0.5);
    setd(&xh, 2, 3);
    setd(&loh, 0, 0);
    qf_tensor in5[2] = {xh, loh};
    CHECK(run_op_n("Clip", 13, NULL, 0, in5, 2, &o) == QF_OK);
    CHECK(getd(&o, 0) == 0 && getd(&o, 1) == 0.5 && getd(&o, 2) == 3);
    free(o.data);
    free(x.data);
    free(lo.data);
    free(hi.data);
    free(xi.data);
    free(hi8.data);
    free(xu.data);
    free(lou.data);
    free(hiu.data);
    free(x64.data);
    free(xh.data);
    free(loh.data);
}

/* ---- Cast --------------------------------------------------------------- */

static const qf_dtype cast_dtypes[] = {QF_DT_F32, QF_DT_F64, QF_DT_F16, QF_DT_I8,
                                       QF_DT_U8,  QF_DT_I16, QF_DT_U16, QF_DT_I32,
                                       QF_DT_I64, QF_DT_U32, QF_DT_U64, QF_DT_BOOL};

/* Every pair on values that every dtype holds exactly. */
static void test_cast_table(void) {
    static const double vals[] = {0, 1, 7, 100, 127};
    enum { N = 5 };
    for (size_t i = 0; i < QF_ARRAY_LEN(cast_dtypes); i++) {
        for (size_t j = 0; j < QF_ARRAY_LEN(cast_dtypes); j++) {
            qf_dtype from = cast_dtypes[i], to = cast_dtypes[j];
            qf_tensor x = MK(from, 1, N), o;
            for (int k = 0; k < N; k++)
                setd(&x, k, from == QF_DT_BOOL ? (k & 1) : vals[k]);
            qf_attr a = attr_i("to", to);
            CHECK_MSG(run_op_n("Cast", 13, &a, 1, &x, 1, &o) == QF_OK, "%s->%s: %s", dt_name(from),
                      dt_name(to), last_err);
            CHECK(o.dtype == to && o.rank == 2 && o.dims[0] == 1 && o.dims[1] == N);
            for (int k = 0; k < N; k++) {
                double v = getd(&x, k), want = to == QF_DT_BOOL ? (v != 0) : v;
                CHECK_MSG(getd(&o, k) == want, "%s->%s: %g -> %g", dt_name(from), dt_name(to), v,
                          getd(&o, k));
            }
            free(x.data);
            free(o.data);
        }
    }
}

/* Hand-checked rounding, truncation, saturation and wrap-around. */
static void test_cast_special(void) {
    static const struct {
        qf_dtype from, to;
        double in, want; /* want compared as double (exact) */
    } cases[] = {
        {QF_DT_F32, QF_DT_I32, 2.7, 2},
        {QF_DT_F32, QF_DT_I32, -2.7, -2},
        {QF_DT_F32, QF_DT_I32, 1e10, 2147483647},
        {QF_DT_F32, QF_DT_I32, -1e10, -2147483648.0},
        {QF_DT_F32, QF_DT_I32, NAN, 0},
        {QF_DT_F32, QF_DT_U8, 300, 255},
        {QF_DT_F32, QF_DT_U8, -5, 0},
        {QF_DT_F32, QF_DT_U8, 254.9, 254},
        {QF_DT_F32, QF_DT_I8, -200, -128},
        {QF_DT_F64, QF_DT_I64, 1e19, 9223372036854775807.0},
        {QF_DT_F32, QF_DT_I64, -INFINITY, -9223372036854775808.0},
        {QF_DT_F32, QF_DT_U64, INFINITY, 18446744073709551615.0},
        {QF_DT_F32, QF_DT_U32, 4294967296.0, 4294967295.0},
        {QF_DT_I32, QF_DT_U8, 300, 44},
        {QF_DT_I32, QF_DT_I8, -129, 127},
        {QF_DT_I32, QF_DT_U32, -1, 4294967295.0},
        {QF_DT_I64, QF_DT_I16, 65537, 1},
        {QF_DT_U32, QF_DT_I32, 4294967295.0, -1},
        {QF_DT_F32, QF_DT_BOOL, 0.5, 1},
        {QF_DT_F32, QF_DT_BOOL, NAN, 1},
        {QF_DT_F32, QF_DT_BOOL, -0.0, 0},
        {QF_DT_BOOL, QF_DT_F32, 1, 1},
        {QF_DT_F32, QF_DT_F16, 1.00048828125, 1.0},         /* 1 + 2^-11: tie to even */
        {QF_DT_F32, QF_DT_F16, 1.00146484375, 1.001953125}, /* 1 + 3*2^-11: tie, up */
        {QF_DT_F32, QF_DT_F16, 65520, INFINITY},
        {QF_DT_F32, QF_DT_F16, 65504, 65504},
        {QF_DT_F16, QF_DT_F32, 0.333251953125, 0.333251953125},
        {QF_DT_F64, QF_DT_F32, 0.1, (double)0.1f},
        {QF_DT_F64, QF_DT_F32, 1e300, INFINITY},
        {QF_DT_I64, QF_DT_F32, 16777217, 16777216}, /* rounds to even */
        {QF_DT_F16, QF_DT_I32, 2.5, 2},
        {QF_DT_F16, QF_DT_I8, -1000, -128},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        qf_tensor x = mk0(cases[i].from), o;
        setd(&x, 0, cases[i].in);
        qf_attr a = attr_i("to", cases[i].to);
        CHECK_MSG(run_op_n("Cast", 13, &a, 1, &x, 1, &o) == QF_OK, "%s", last_err);
        double got =
            cases[i].to == QF_DT_I64 || cases[i].to == QF_DT_U64
                ? (cases[i].to == QF_DT_U64 ? (double)(uint64_t)geti(&o, 0) : (double)geti(&o, 0))
                : getd(&o, 0);
        CHECK_MSG(got == cases[i].want, "case %zu: %s %g -> %s %.17g, want %.17g", i,
                  dt_name(cases[i].from), cases[i].in, dt_name(cases[i].to), got, cases[i].want);
        free(x.data);
        free(o.data);
    }
    /* u64 max and i64 extremes keep every bit through integer casts */
    qf_tensor x = mk0(QF_DT_U64), o;
    *(uint64_t *)x.data = UINT64_MAX;
    qf_attr a = attr_i("to", QF_DT_I64);
    CHECK(run_op_n("Cast", 13, &a, 1, &x, 1, &o) == QF_OK);
    CHECK(*(int64_t *)o.data == -1);
    free(o.data);
    a = attr_i("to", QF_DT_F32);
    CHECK(run_op_n("Cast", 13, &a, 1, &x, 1, &o) == QF_OK);
    CHECK(*(float *)o.data == 18446744073709551616.0f);
    free(o.data);
    free(x.data);
    /* a long tensor crosses the conversion chunks */
    qf_tensor y = MK(QF_DT_I32, 1000);
    for (int i = 0; i < 1000; i++)
        ((int32_t *)y.data)[i] = i * 7 - 3000;
    a = attr_i("to", QF_DT_F64);
    CHECK(run_op_n("Cast", 13, &a, 1, &y, 1, &o) == QF_OK);
    for (int i = 0; i < 1000; i++)
        CHECK(((double *)o.data)[i] == i * 7 - 3000);
    free(o.data);
    free(y.data);
    /* STRING and BFLOAT16 targets are rejected at parse time */
    qf_tensor z = MK(QF_DT_F32, 2);
    a = attr_i("to", QF_DT_STRING);
    CHECK(run_op_n("Cast", 13, &a, 1, &z, 1, &o) == QF_ERR_UNSUPPORTED);
    CHECK(strstr(last_err, "mynode") != NULL);
    a = attr_i("to", 16);
    CHECK(run_op_n("Cast", 13, &a, 1, &z, 1, &o) == QF_ERR_UNSUPPORTED);
    CHECK(run_op_n("Cast", 13, NULL, 0, &z, 1, &o) == QF_ERR_INVALID_ARG); /* no 'to' */
    free(z.data);
}

/* ---- Reduce* -------------------------------------------------------------- */

typedef enum { RD_SUM, RD_MEAN, RD_MAX, RD_MIN } rdop;
static const char *const rd_names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"};

/* Naive reference: for every output element scan the whole input. */
static double ref_reduce(rdop op, const qf_tensor *x, const bool *red, const int64_t *oidx) {
    int64_t n = numel(x), count = 0;
    double acc = op == RD_MAX ? -INFINITY : op == RD_MIN ? INFINITY : 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, idx[QF_MAX_DIMS];
        for (int d = x->rank - 1; d >= 0; d--) {
            idx[d] = rem % x->dims[d];
            rem /= x->dims[d];
        }
        bool match = true;
        for (int d = 0; d < x->rank; d++)
            if (!red[d] && idx[d] != oidx[d]) match = false;
        if (!match) continue;
        double v = getd(x, i);
        count++;
        if (op == RD_SUM || op == RD_MEAN)
            acc += v;
        else if (op == RD_MAX)
            acc = fmax(acc, v);
        else
            acc = fmin(acc, v);
    }
    if (op == RD_MEAN) acc = count ? acc / (double)count : NAN;
    return acc;
}

static void test_reduce_table(void) {
    static const qf_dtype dts[] = {QF_DT_F32, QF_DT_F64, QF_DT_I32, QF_DT_I64};
    static const struct {
        int n;
        int64_t axes[3];
    } axsets[] = {{0, {0}},    {1, {0}},     {1, {1}},    {1, {2}},      {1, {-1}},
                  {2, {0, 2}}, {2, {-2, 2}}, {2, {1, 0}}, {3, {0, 1, 2}}};
    static const struct {
        int rank;
        int64_t dims[3];
    } xshapes[] = {{3, {2, 3, 4}}, {3, {3, 0, 2}}, {3, {1, 5, 1}}};
    int n_checked = 0;
    for (int op = RD_SUM; op <= RD_MIN; op++) {
        for (size_t di = 0; di < QF_ARRAY_LEN(dts); di++) {
            for (size_t xi = 0; xi < QF_ARRAY_LEN(xshapes); xi++) {
                for (size_t ai = 0; ai < QF_ARRAY_LEN(axsets); ai++) {
                    for (int mode = 0; mode < 4; mode++) {
                        bool keep = mode & 1, via_input = mode & 2;
                        qf_dtype dt = dts[di];
                        qf_tensor x = mk(dt, xshapes[xi].rank, xshapes[xi].dims), o;
                        fill_random(&x, false);
                        bool red[QF_MAX_DIMS] = {false};
                        int na = axsets[ai].n;
                        for (int k = 0; k < na; k++) {
                            int64_t a = axsets[ai].axes[k];
                            red[a < 0 ? a + x.rank : a] = true;
                        }
                        if (na == 0)
                            for (int d = 0; d < x.rank; d++)
                                red[d] = true;
                        int64_t axes_copy[3];
                        memcpy(axes_copy, axsets[ai].axes, sizeof axes_copy);
                        qf_attr attrs[2];
                        int n_attrs = 0;
                        attrs[n_attrs++] = attr_i("keepdims", keep);
                        qf_tensor in[2];
                        int n_in = 1;
                        in[0] = x;
                        int opset;
                        qf_tensor ax;
                        memset(&ax, 0, sizeof ax);
                        if (via_input) {
                            opset = op == RD_SUM ? 13 : 18;
                            ax = MK(QF_DT_I64, na);
                            memcpy(ax.data, axes_copy, sizeof(int64_t) * (size_t)na);
                            in[n_in++] = ax;
                        } else {
                            opset = op == RD_SUM ? 11 : 13;
                            if (na) attrs[n_attrs++] = attr_ints("axes", axes_copy, na);
                        }
                        qf_status s = run_op_n(rd_names[op], opset, attrs, n_attrs, in, n_in, &o);
                        CHECK_MSG(s == QF_OK, "%s %s: %s", rd_names[op], dt_name(dt), last_err);
                        /* output shape */
                        int r = 0;
                        int64_t want_dims[QF_MAX_DIMS];
                        for (int d = 0; d < x.rank; d++) {
                            if (!red[d])
                                want_dims[r++] = x.dims[d];
                            else if (keep)
                                want_dims[r++] = 1;
                        }
                        CHECK_EQ_INT(o.rank, r);
                        for (int d = 0; d < r; d++)
                            CHECK_EQ_INT(o.dims[d], want_dims[d]);
                        CHECK(o.dtype == dt);
                        /* values: map each output element back to a kept-dims index */
                        for (int64_t i = 0; i < numel(&o); i++) {
                            int64_t oidx[QF_MAX_DIMS] = {0}, rem = i;
                            for (int d = x.rank - 1; d >= 0; d--) {
                                if (red[d]) continue;
                                oidx[d] = rem % x.dims[d];
                                rem /= x.dims[d];
                            }
                            double ref = ref_reduce((rdop)op, &x, red, oidx);
                            if (!is_float(dt)) {
                                if (isinf(ref))
                                    ref = ref > 0
                                              ? (dt == QF_DT_I32 ? INT32_MAX : (double)INT64_MAX)
                                              : (dt == QF_DT_I32 ? INT32_MIN : (double)INT64_MIN);
                                if (isnan(ref)) ref = 0; /* integer mean of nothing */
                                if (op == RD_MEAN) ref = trunc(ref);
                            }
                            double got = getd(&o, i);
                            CHECK_MSG(close_to(got, ref, is_float(dt) ? tol_of(dt) * 4 : 0),
                                      "%s %s shape %zu axes %zu keep %d input %d [%lld]: %.9g vs "
                                      "%.9g",
                                      rd_names[op], dt_name(dt), xi, ai, keep, via_input,
                                      (long long)i, got, ref);
                            n_checked++;
                        }
                        free(x.data);
                        free(ax.data);
                        free(o.data);
                    }
                }
            }
        }
    }
    CHECK(n_checked > 1000);
}

static void test_reduce_special(void) {
    /* noop_with_empty_axes: identity; without it, empty axes reduce all */
    qf_tensor x = MK(QF_DT_F32, 2, 3), ax = MK(QF_DT_I64, 0), o;
    for (int i = 0; i < 6; i++)
        ((float *)x.data)[i] = (float)i;
    qf_attr attrs[2] = {attr_i("keepdims", 1), attr_i("noop_with_empty_axes", 1)};
    qf_tensor in[2] = {x, ax};
    CHECK(run_op_n("ReduceSum", 13, attrs, 2, in, 2, &o) == QF_OK);
    CHECK(o.rank == 2 && o.dims[0] == 2 && o.dims[1] == 3);
    CHECK(memcmp(o.data, x.data, 6 * sizeof(float)) == 0);
    free(o.data);
    CHECK(run_op_n("ReduceSum", 13, attrs, 1, in, 2, &o) == QF_OK);
    CHECK(o.rank == 2 && o.dims[0] == 1 && o.dims[1] == 1 && ((float *)o.data)[0] == 15);
    free(o.data);
    /* omitted axes input at opset 18 reduces everything */
    qf_tensor none;
    memset(&none, 0, sizeof none);
    qf_tensor in2[2] = {x, none};
    CHECK(run_op_n("ReduceMax", 18, attrs, 1, in2, 2, &o) == QF_OK);
    CHECK(((float *)o.data)[0] == 5);
    free(o.data);
    /* rank 0 input */
    qf_tensor s = mk0(QF_DT_F32);
    *(float *)s.data = 4;
    CHECK(run_op_n("ReduceMean", 13, NULL, 0, &s, 1, &o) == QF_OK);
    CHECK(o.rank == 0 && ((float *)o.data)[0] == 4);
    free(o.data);
    /* empty reduction: Sum 0, Mean NaN, Max -inf, Min +inf */
    qf_tensor e = MK(QF_DT_F32, 2, 0);
    int64_t a1[1] = {1};
    qf_attr ea[2] = {attr_i("keepdims", 0), attr_ints("axes", a1, 1)};
    CHECK(run_op_n("ReduceSum", 11, ea, 2, &e, 1, &o) == QF_OK);
    CHECK(o.rank == 1 && o.dims[0] == 2 && ((float *)o.data)[1] == 0);
    free(o.data);
    CHECK(run_op_n("ReduceMean", 13, ea, 2, &e, 1, &o) == QF_OK);
    CHECK(isnan(((float *)o.data)[0]));
    free(o.data);
    CHECK(run_op_n("ReduceMax", 13, ea, 2, &e, 1, &o) == QF_OK);
    CHECK(((float *)o.data)[0] == -INFINITY);
    free(o.data);
    CHECK(run_op_n("ReduceMin", 13, ea, 2, &e, 1, &o) == QF_OK);
    CHECK(((float *)o.data)[0] == INFINITY);
    free(o.data);
    /* NaN propagates through Max/Min */
    ((float *)x.data)[4] = NAN;
    CHECK(run_op_n("ReduceMax", 13, ea, 2, &x, 1, &o) == QF_OK);
    CHECK(((float *)o.data)[0] == 2 && isnan(((float *)o.data)[1]));
    free(o.data);
    CHECK(run_op_n("ReduceMin", 13, ea, 2, &x, 1, &o) == QF_OK);
    CHECK(((float *)o.data)[0] == 0 && isnan(((float *)o.data)[1]));
    free(o.data);
    /* accumulation precision: 1e6 ones plus a large offset, summed in double */
    qf_tensor big = MK(QF_DT_F32, 1 << 20);
    for (int i = 0; i < (1 << 20); i++)
        ((float *)big.data)[i] = 1.0f;
    ((float *)big.data)[0] = 1e8f;
    CHECK(run_op_n("ReduceSum", 11, NULL, 0, &big, 1, &o) == QF_OK);
    CHECK_NEAR(((float *)o.data)[0], 1e8 + (1 << 20) - 1, 8);
    free(o.data);
    free(big.data);
    free(x.data);
    free(ax.data);
    free(s.data);
    free(e.data);
}

/* ---- infer errors name the node -------------------------------------------- */

static void test_errors(void) {
    qf_tensor f = MK(QF_DT_F32, 2, 3), i32 = MK(QF_DT_I32, 2, 3), f4 = MK(QF_DT_F32, 4), o;
    qf_tensor f23 = MK(QF_DT_F32, 2, 3), f3 = MK(QF_DT_F32, 3);
    qf_tensor in[2] = {f, i32};
    CHECK(run_op_n("Add", 14, NULL, 0, in, 2, &o) == QF_ERR_INVALID_ARG);
    CHECK(strstr(last_err, "mynode") && strstr(last_err, "Add"));
    in[1] = f4;
    CHECK(run_op_n("Mul", 14, NULL, 0, in, 2, &o) == QF_ERR_SHAPE);
    CHECK(strstr(last_err, "mynode"));
    qf_tensor sum_in[3] = {f, f3, f4};
    CHECK(run_op_n("Sum", 13, NULL, 0, sum_in, 3, &o) == QF_ERR_SHAPE);
    CHECK(run_op_n("Mean", 13, NULL, 0, &i32, 1, &o) == QF_ERR_UNSUPPORTED);
    qf_tensor max_in[2] = {f, i32};
    CHECK(run_op_n("Max", 13, NULL, 0, max_in, 2, &o) == QF_ERR_INVALID_ARG);
    /* PRelu: slope must broadcast to X, not the other way */
    qf_tensor pin[2] = {f3, f23};
    CHECK(run_op_n("PRelu", 16, NULL, 0, pin, 2, &o) == QF_ERR_SHAPE);
    CHECK(strstr(last_err, "mynode"));
    /* Clip bound of another dtype */
    qf_tensor b = mk0(QF_DT_F64);
    qf_tensor cin[2] = {f, b};
    CHECK(run_op_n("Clip", 13, NULL, 0, cin, 2, &o) == QF_ERR_INVALID_ARG);
    /* Reduce: repeated and out-of-range axes */
    int64_t rep[2] = {1, -1}, oor[1] = {2};
    qf_attr a = attr_ints("axes", rep, 2);
    CHECK(run_op_n("ReduceMean", 13, &a, 1, &f, 1, &o) == QF_ERR_INVALID_ARG);
    CHECK(strstr(last_err, "mynode"));
    a = attr_ints("axes", oor, 1);
    CHECK(run_op_n("ReduceMax", 13, &a, 1, &f, 1, &o) == QF_ERR_INVALID_ARG);
    /* Pow with a non-numeric exponent */
    qf_tensor bl = MK(QF_DT_BOOL, 2, 3);
    qf_tensor pw[2] = {f, bl};
    CHECK(run_op_n("Pow", 15, NULL, 0, pw, 2, &o) == QF_ERR_UNSUPPORTED);
    free(f.data);
    free(i32.data);
    free(f4.data);
    free(f23.data);
    free(f3.data);
    free(b.data);
    free(bl.data);
}

/* ---- run never allocates ------------------------------------------------- */

static void test_run_no_alloc(void) {
    static const char *const ops[] = {"Add",     "PRelu", "Sum",        "Pow",
                                      "Sigmoid", "Cast",  "ReduceMean", "Clip"};
    qf_tensor x = MK(QF_DT_F32, 2, 3, 4, 5), c = MK(QF_DT_F32, 3, 1, 1);
    fill_random(&x, false);
    fill_random(&c, false);
    for (size_t k = 0; k < QF_ARRAY_LEN(ops); k++) {
        qf_graph *g = qf_graph_create();
        int ids[2] = {qf_graph_add_value(g, "x", QF_DT_F32, 4, x.dims),
                      qf_graph_add_value(g, "c", QF_DT_F32, 3, c.dims)};
        int oid = qf_graph_add_value(g, "o", QF_DT_UNDEF, -1, NULL);
        qf_attr a = attr_i("to", QF_DT_F16);
        bool unary = k >= 4;
        int ni = qf_graph_add_node(g, "n", ops[k], "", 13, ids, unary ? 1 : 2, &oid, 1, &a,
                                   strcmp(ops[k], "Cast") == 0);
        qf_node *n = &g->nodes[ni];
        const qf_op_def *d = qf_op_get(n->op);
        qf_err err;
        CHECK(d && (!d->parse || d->parse(g, n, &err) == QF_OK));
        qf_tensor in[2] = {x, c}, o;
        memset(&o, 0, sizeof o);
        CHECK(d->infer(n, in, unary ? 1 : 2, &o, 1, &err) == QF_OK);
        o.data = malloc((size_t)numel(&o) * esize(o.dtype));
        size_t sb = d->scratch ? d->scratch(n, in, unary ? 1 : 2, &o, 1) : 0;
        void *scratch = sb ? malloc(sb) : NULL;
        qf_allocator al = qt_counting_allocator();
        *qt_allocs() = 0;
        qf_set_allocator(&al);
        qf_exec_ctx ctx = {.num_threads = 1};
        qf_status s = d->run(&ctx, n, in, unary ? 1 : 2, &o, 1, scratch, &err);
        qf_set_allocator(NULL);
        CHECK(s == QF_OK);
        CHECK_MSG(*qt_allocs() == 0, "%s allocated %ld times", ops[k], *qt_allocs());
        free(scratch);
        free(o.data);
        qf_graph_free(g);
    }
    free(x.data);
    free(c.data);
}

/* qf_ref_unary_apply_ctx over a 2-thread pool: every element once, the
 * same values as the serial loop (sizes below, at and above the parallel
 * threshold, and not a multiple of the ranges), int32 and float. */
static void add_one_i32(const void *vx, void *vy, int64_t n, const void *p) {
    (void)p;
    const int32_t *x = vx;
    int32_t *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i] + 1; /* y starts at 0: a range done twice shows */
}
static void sq_f32(const void *vx, void *vy, int64_t n, const void *p) {
    const float *x = vx;
    float *y = vy;
    const float k = *(const float *)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * x[i] * k;
}

static void test_unary_pool(void) {
    qf_threadpool *pool = NULL;
    qf_err e;
    CHECK_OK(qf_threadpool_create(2, &pool, &e));
    const qf_exec_ctx ctx = {.num_threads = 2, .pool = pool};
    static const int64_t sizes[] = {1, 1000, 65535, 65536, 200003};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t n = sizes[si];
        int32_t *xi = malloc(sizeof(int32_t) * (size_t)n), *yi = calloc((size_t)n, 4);
        float *xf = malloc(sizeof(float) * (size_t)n), *yf = malloc(sizeof(float) * (size_t)n);
        CHECK(xi && yi && xf && yf);
        for (int64_t i = 0; i < n; i++) {
            xi[i] = (int32_t)(i * 7 - 3);
            xf[i] = (float)(i % 1000) * 0.01f - 3.0f;
        }
        qf_tensor ti = {.dtype = QF_DT_I32, .rank = 1, .dims = {n}, .data = xi};
        qf_tensor to = {.dtype = QF_DT_I32, .rank = 1, .dims = {n}, .data = yi};
        qf_ref_unary_apply_ctx(&ctx, add_one_i32, &ti, &to, NULL);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += yi[i] != xi[i] + 1;
        CHECK_MSG(bad == 0, "int32, %lld elements: %lld wrong", (long long)n, (long long)bad);
        const float k = 0.5f;
        qf_tensor tf = {.dtype = QF_DT_F32, .rank = 1, .dims = {n}, .data = xf};
        qf_tensor tg = {.dtype = QF_DT_F32, .rank = 1, .dims = {n}, .data = yf};
        qf_ref_unary_apply_ctx(&ctx, sq_f32, &tf, &tg, &k);
        bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += yf[i] != xf[i] * xf[i] * k;
        CHECK_MSG(bad == 0, "float, %lld elements: %lld wrong", (long long)n, (long long)bad);
        free(xi);
        free(yi);
        free(xf);
        free(yf);
    }
    qf_threadpool_destroy(pool);
}

QT_MAIN(QT_CASE(test_registry), QT_CASE(test_bcast_plan), QT_CASE(test_binary_table),
        QT_CASE(test_variadic_three), QT_CASE(test_int_division),
        QT_CASE(test_float_binary_special), QT_CASE(test_pow), QT_CASE(test_unary_table),
        QT_CASE(test_unary_int), QT_CASE(test_unary_special), QT_CASE(test_clip),
        QT_CASE(test_unary_pool), QT_CASE(test_cast_table), QT_CASE(test_cast_special),
        QT_CASE(test_reduce_table), QT_CASE(test_reduce_special), QT_CASE(test_errors),
        QT_CASE(test_run_no_alloc))
