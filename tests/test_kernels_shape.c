/* test_kernels_shape.c - reference kernels of the data-movement and shape
 * ops (Flatten, Reshape, Transpose, Concat, Split, Squeeze, Unsqueeze, Shape,
 * Gather, Slice, Constant, Identity, Dropout, Pad, Expand, ConstantOfShape).
 * Every op is driven through the registry exactly as the runtime does:
 * qf_op_get -> parse (on a node of a real graph) -> infer -> scratch -> run,
 * into output buffers fenced with sentinel bytes. Expected values are worked
 * out by hand or by naive index arithmetic written separately here. */
#include <stdarg.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "qtest.h"

/* Referencing the definitions also makes the linker pull their objects out
 * of the static library (the registry only refers to them weakly). */
#define DECL_(e, onnx, id) extern const qf_op_def qf_opdef_##id;
QF_OP_LIST(DECL_)
#undef DECL_

/* ---- harness ------------------------------------------------------------ */
#define MAX_IO 8
#define GUARD 64
#define GUARD_BYTE 0xA5

typedef struct harness {
    qf_graph *g;
    int node;
    qf_tensor out[MAX_IO];
    unsigned char *raw[MAX_IO];
    size_t bytes[MAX_IO];
    qf_err err;
    const char *stage; /* "parse", "infer", "run" or "guard": where it stopped */
} harness;

static void h_free(harness *h) {
    for (int j = 0; j < MAX_IO; j++)
        free(h->raw[j]);
    qf_graph_free(h->g);
    memset(h, 0, sizeof *h);
}

/* Options for one call. */
typedef struct call_opts {
    uint32_t skip_out;    /* outputs passed to run with data NULL (omitted) */
    bool alias_view;      /* run with out[0].data == in[0].data */
    bool infer_no_values; /* infer sees no input contents (non-constant) */
} call_opts;

/* Build a one-node graph and run op_type through parse/infer/scratch/run.
 * in[i].dtype == QF_DT_UNDEF marks an omitted input. On success h->out
 * holds the outputs (data in fenced buffers). */
static qf_status run_op_opts(harness *h, const char *op_type, int opset, const qf_attr *attrs,
                             int n_attrs, qf_tensor *in, int n_in, int n_out, const call_opts *o) {
    static const call_opts none;
    if (!o) o = &none;
    memset(h, 0, sizeof *h);
    h->g = qf_graph_create();
    int ins[MAX_IO], outs[MAX_IO];
    for (int i = 0; i < n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        ins[i] = in[i].dtype == QF_DT_UNDEF
                     ? -1
                     : qf_graph_add_value(h->g, name, in[i].dtype, in[i].rank, in[i].dims);
    }
    for (int j = 0; j < n_out; j++) {
        char name[16];
        snprintf(name, sizeof name, "y%d", j);
        outs[j] = qf_graph_add_value(h->g, name, QF_DT_UNDEF, -1, NULL);
    }
    h->node = qf_graph_add_node(h->g, "node_under_test", op_type, "", opset, ins, n_in, outs, n_out,
                                attrs, n_attrs);
    qf_node *n = &h->g->nodes[h->node];
    const qf_op_def *d = qf_op_get(n->op);
    if (!d) return qf_errf(&h->err, QF_ERR_UNSUPPORTED, "no op %s", op_type);
    qf_status s;
    h->stage = "parse";
    if (d->parse && (s = d->parse(h->g, n, &h->err))) return s;
    qf_tensor vin[MAX_IO];
    for (int i = 0; i < n_in; i++) {
        vin[i] = in[i];
        if (o->infer_no_values) vin[i].data = NULL;
    }
    h->stage = "infer";
    if ((s = d->infer(n, vin, n_in, h->out, n_out, &h->err))) return s;
    for (int j = 0; j < n_out; j++) {
        int64_t ne = qf_tensor_numel(&h->out[j]);
        size_t es = qf_dtype_size(h->out[j].dtype);
        if (ne < 0 || es == 0) return qf_errf(&h->err, QF_ERR_INTERNAL, "bad output %d", j);
        h->bytes[j] = (size_t)ne * es;
        h->raw[j] = malloc(h->bytes[j] + 2 * GUARD);
        memset(h->raw[j], GUARD_BYTE, h->bytes[j] + 2 * GUARD);
        h->out[j].data = (o->skip_out >> j) & 1u ? NULL : h->raw[j] + GUARD;
    }
    if (o->alias_view) h->out[0].data = in[0].data;
    size_t scratch_bytes = d->scratch ? d->scratch(n, in, n_in, h->out, n_out) : 0;
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    qf_exec_ctx ctx = {.num_threads = 1};
    h->stage = "run";
    s = d->run(&ctx, n, in, n_in, h->out, n_out, scratch, &h->err);
    free(scratch);
    if (s) return s;
    h->stage = "guard";
    for (int j = 0; j < n_out; j++) {
        const unsigned char *r = h->raw[j];
        for (size_t k = 0; k < GUARD; k++)
            if (r[k] != GUARD_BYTE || r[GUARD + h->bytes[j] + k] != GUARD_BYTE)
                return qf_errf(&h->err, QF_ERR_INTERNAL, "output %d: write outside buffer", j);
        if ((o->skip_out >> j) & 1u)
            for (size_t k = 0; k < h->bytes[j]; k++)
                if (r[GUARD + k] != GUARD_BYTE)
                    return qf_errf(&h->err, QF_ERR_INTERNAL, "omitted output %d written", j);
    }
    h->stage = NULL;
    return QF_OK;
}

static qf_status run_op(harness *h, const char *op_type, int opset, const qf_attr *attrs,
                        int n_attrs, qf_tensor *in, int n_in, int n_out) {
    return run_op_opts(h, op_type, opset, attrs, n_attrs, in, n_in, n_out, NULL);
}

#define CHECK_RUN(expr, h) CHECK_MSG((expr) == QF_OK, "%s: %s", (h)->stage, (h)->err.msg)

/* tensors and attributes */
static qf_tensor tens(qf_dtype dt, void *data, int rank, ...) {
    qf_tensor t = {.dtype = dt, .rank = rank, .data = data};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        t.dims[i] = va_arg(ap, int64_t);
    va_end(ap);
    return t;
}
#define I(x) ((int64_t)(x))
static qf_tensor i64v(int64_t *v, int64_t n) { return tens(QF_DT_I64, v, 1, n); }
static const qf_tensor OMIT = {.dtype = QF_DT_UNDEF};

static qf_attr a_int(const char *name, int64_t v) {
    return (qf_attr){.name = name, .type = QF_ATTR_INT, .i = v};
}
static qf_attr a_float(const char *name, float v) {
    return (qf_attr){.name = name, .type = QF_ATTR_FLOAT, .f = v};
}
static qf_attr a_ints(const char *name, const int64_t *v, int n) {
    return (qf_attr){.name = name, .type = QF_ATTR_INTS, .ints = (int64_t *)v, .n = n};
}
static qf_attr a_floats(const char *name, const float *v, int n) {
    return (qf_attr){.name = name, .type = QF_ATTR_FLOATS, .floats = (float *)v, .n = n};
}
static qf_attr a_str(const char *name, const char *s) {
    return (qf_attr){.name = name, .type = QF_ATTR_STRING, .s = s};
}
static qf_attr a_tensor(const char *name, qf_tensor t) {
    return (qf_attr){.name = name, .type = QF_ATTR_TENSOR, .t = t};
}

static bool dims_are(const qf_tensor *t, int rank, const int64_t *dims) {
    if (t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i]) return false;
    return true;
}
#define CHECK_DIMS(t, ...)                                                                         \
    do {                                                                                           \
        static const int64_t want_[] = {__VA_ARGS__};                                              \
        CHECK_MSG(dims_are((t), (int)QF_ARRAY_LEN(want_), want_), "rank %d dims %lld %lld %lld",   \
                  (t)->rank, (long long)(t)->dims[0], (long long)(t)->dims[1],                     \
                  (long long)(t)->dims[2]);                                                        \
    } while (0)
#define CHECK_SCALAR_SHAPE(t) CHECK_EQ_INT((t)->rank, 0)

static bool floats_are(const qf_tensor *t, const float *want, int64_t n) {
    if (qf_tensor_numel(t) != n || t->dtype != QF_DT_F32) return false;
    return n == 0 || memcmp(t->data, want, (size_t)n * sizeof(float)) == 0;
}

/* Deterministic element contents: element k of size es gets bytes that
 * differ between nearby elements for every dtype. */
static void fill_pattern(void *buf, int64_t n, size_t es) {
    unsigned char *p = buf;
    for (int64_t k = 0; k < n; k++)
        for (size_t j = 0; j < es; j++)
            p[k * (int64_t)es + (int64_t)j] = (unsigned char)(k * 131 + j * 17 + 1);
}

static const qf_dtype k_dtypes[] = {QF_DT_F32, QF_DT_U8, QF_DT_F16, QF_DT_I64, QF_DT_BOOL};

/* ---- registry ----------------------------------------------------------- */
static void registry_entries(void) {
    static const struct {
        qf_op_id op;
        const qf_op_def *def;
        uint32_t flags, value_inputs;
    } ops[] = {
        {QF_OP_FLATTEN, &qf_opdef_flatten, QF_OPF_VIEW, 0},
        {QF_OP_RESHAPE, &qf_opdef_reshape, QF_OPF_VIEW, 1u << 1},
        {QF_OP_TRANSPOSE, &qf_opdef_transpose, 0, 0},
        {QF_OP_CONCAT, &qf_opdef_concat, 0, 0},
        {QF_OP_SPLIT, &qf_opdef_split, 0, 1u << 1},
        {QF_OP_SQUEEZE, &qf_opdef_squeeze, QF_OPF_VIEW, 1u << 1},
        {QF_OP_UNSQUEEZE, &qf_opdef_unsqueeze, QF_OPF_VIEW, 1u << 1},
        {QF_OP_SHAPE, &qf_opdef_shape, QF_OPF_SHAPE_ONLY, 0},
        {QF_OP_GATHER, &qf_opdef_gather, 0, 0},
        {QF_OP_SLICE, &qf_opdef_slice, 0, 0x1e},
        {QF_OP_CONSTANT, &qf_opdef_constant, 0, 0},
        {QF_OP_IDENTITY, &qf_opdef_identity, QF_OPF_VIEW, 0},
        {QF_OP_DROPOUT, &qf_opdef_dropout, QF_OPF_VIEW, 0},
        {QF_OP_PAD, &qf_opdef_pad, 0, 0xe},
        {QF_OP_EXPAND, &qf_opdef_expand, 0, 1u << 1},
        {QF_OP_CONSTANT_OF_SHAPE, &qf_opdef_constant_of_shape, 0, 1u << 0},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(ops); i++) {
        const qf_op_def *d = qf_op_get(ops[i].op);
        CHECK(d == ops[i].def);
        CHECK_MSG(strcmp(d->name, qf_op_name(ops[i].op)) == 0, "%s", d->name);
        CHECK_MSG(d->flags == ops[i].flags, "%s flags", d->name);
        CHECK_MSG(d->value_inputs == ops[i].value_inputs, "%s value_inputs", d->name);
        CHECK(d->infer && d->run);
    }
}

/* ---- Transpose ---------------------------------------------------------- */
/* naive reference: out[i0..] = in[idx with in_idx[perm[k]] = out_idx[k]] */
static bool transpose_matches(const unsigned char *in, const int64_t *dims, int r, const int *perm,
                              size_t es, const unsigned char *out) {
    int64_t odims[QF_MAX_DIMS], n = 1;
    for (int k = 0; k < r; k++)
        odims[k] = dims[perm[k]], n *= dims[k];
    for (int64_t lin = 0; lin < n; lin++) {
        int64_t oi[QF_MAX_DIMS], ii[QF_MAX_DIMS], rem = lin;
        for (int k = r - 1; k >= 0; k--)
            oi[k] = rem % odims[k], rem /= odims[k];
        for (int k = 0; k < r; k++)
            ii[perm[k]] = oi[k];
        int64_t src = 0;
        for (int k = 0; k < r; k++)
            src = src * dims[k] + ii[k];
        if (memcmp(out + lin * (int64_t)es, in + src * (int64_t)es, es) != 0) return false;
    }
    return true;
}

/* next permutation in lexicographic order; false after the last */
static bool next_perm(int *p, int n) {
    int i = n - 2;
    while (i >= 0 && p[i] >= p[i + 1])
        i--;
    if (i < 0) return false;
    int j = n - 1;
    while (p[j] <= p[i])
        j--;
    int t = p[i];
    p[i] = p[j];
    p[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--)
        t = p[a], p[a] = p[b], p[b] = t;
    return true;
}

static void transpose_all_perms(void) {
    /* clang-format off */
    static const int64_t shapes[][6] = {
        {3, 2, 3, 4}, {4, 2, 3, 4, 5}, {4, 2, 1, 3, 4}, {4, 1, 5, 1, 7},
    };
    /* clang-format on */
    static unsigned char in[2 * 3 * 4 * 5 * 8];
    int n_checked = 0;
    for (size_t si = 0; si < QF_ARRAY_LEN(shapes); si++) {
        int r = (int)shapes[si][0];
        const int64_t *dims = &shapes[si][1];
        for (size_t di = 0; di < QF_ARRAY_LEN(k_dtypes); di++) {
            qf_dtype dt = k_dtypes[di];
            size_t es = qf_dtype_size(dt);
            int64_t n = 1;
            for (int k = 0; k < r; k++)
                n *= dims[k];
            fill_pattern(in, n, es);
            int perm[4] = {0, 1, 2, 3};
            do {
                int64_t p64[4];
                for (int k = 0; k < r; k++)
                    p64[k] = perm[k];
                qf_attr at = a_ints("perm", p64, r);
                qf_tensor x = {.dtype = dt, .rank = r, .data = in};
                memcpy(x.dims, dims, sizeof(int64_t) * (size_t)r);
                harness h;
                CHECK_RUN(run_op(&h, "Transpose", 13, &at, 1, &x, 1, 1), &h);
                for (int k = 0; k < r; k++)
                    CHECK(h.out[0].dims[k] == dims[perm[k]]);
                CHECK_MSG(transpose_matches(in, dims, r, perm, es, h.out[0].data),
                          "shape %zu dtype %s perm %d%d%d%d", si, qf_dtype_name(dt), perm[0],
                          perm[1], perm[2], r > 3 ? perm[3] : 9);
                h_free(&h);
                n_checked++;
            } while (next_perm(perm, r));
        }
    }
    CHECK_EQ_INT(n_checked, (6 + 24 * 3) * (int)QF_ARRAY_LEN(k_dtypes));
}

static void transpose_default_and_high_rank(void) {
    /* default perm reverses: [2,3] -> [3,2], hand-checked */
    float x[6] = {1, 2, 3, 4, 5, 6};
    qf_tensor t = tens(QF_DT_F32, x, 2, I(2), I(3));
    harness h;
    CHECK_RUN(run_op(&h, "Transpose", 13, NULL, 0, &t, 1, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 2);
    static const float want[6] = {1, 4, 2, 5, 3, 6};
    CHECK(floats_are(&h.out[0], want, 6));
    h_free(&h);
    /* rank 6 with perms that keep no axis pair adjacent: the odometer path */
    static const int64_t dims[6] = {2, 3, 2, 3, 2, 2};
    static const int perms[][6] = {
        {5, 3, 1, 4, 2, 0}, {1, 0, 3, 2, 5, 4}, {0, 2, 4, 1, 3, 5}, {4, 5, 0, 1, 2, 3}};
    static float big[144];
    fill_pattern(big, 144, 4);
    for (size_t pi = 0; pi < QF_ARRAY_LEN(perms); pi++) {
        int64_t p64[6];
        for (int k = 0; k < 6; k++)
            p64[k] = perms[pi][k];
        qf_attr at = a_ints("perm", p64, 6);
        qf_tensor b = {.dtype = QF_DT_F32, .rank = 6, .data = big};
        memcpy(b.dims, dims, sizeof dims);
        CHECK_RUN(run_op(&h, "Transpose", 13, &at, 1, &b, 1, 1), &h);
        CHECK(transpose_matches((unsigned char *)big, dims, 6, perms[pi], 4, h.out[0].data));
        h_free(&h);
    }
    /* a perm that is not a permutation */
    static const int64_t badp[3] = {0, 0, 1};
    qf_attr at = a_ints("perm", badp, 3);
    qf_tensor b3 = tens(QF_DT_F32, big, 3, I(2), I(3), I(4));
    CHECK(run_op(&h, "Transpose", 13, &at, 1, &b3, 1, 1) == QF_ERR_INVALID_ARG);
    CHECK(strstr(h.err.msg, "node_under_test") != NULL);
    h_free(&h);
}

/* ---- Slice -------------------------------------------------------------- */
/* Brute-force reference of one axis: walk every index of the axis and keep
 * those a Python slice with the clamped bounds would visit. */
static int64_t ref_axis(int64_t dim, int64_t s, int64_t e, int64_t st, int64_t *idx) {
    int64_t n = 0;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (st > 0) {
        if (s < 0) s = 0;
        if (e > dim) e = dim;
        for (int64_t i = 0; i < dim; i++)
            if (i >= s && i < e && (i - s) % st == 0) idx[n++] = i;
    } else {
        if (s > dim - 1) s = dim - 1;
        if (e < -1) e = -1;
        for (int64_t i = dim - 1; i >= 0; i--)
            if (i <= s && i > e && (s - i) % (-st) == 0) idx[n++] = i;
    }
    return n;
}

typedef struct slice_case {
    int rank;
    int64_t dims[3];
    int k; /* number of sliced axes */
    int64_t starts[3], ends[3], axes[3], steps[3];
    bool no_axes, no_steps;
} slice_case;

static void slice_vs_bruteforce(void) {
    /* clang-format off */
    static slice_case cases[] = {
        {1, {10}, 1, {-1}, {INT64_MIN}, {0}, {-1}, false, false},
        {1, {10}, 1, {20}, {5}, {0}, {-2}, false, false},
        {1, {10}, 1, {-100}, {3}, {0}, {1}, false, true},
        {1, {10}, 1, {5}, {2}, {0}, {1}, true, true},
        {1, {10}, 1, {1}, {INT64_MAX}, {0}, {3}, false, false},
        {1, {10}, 1, {9}, {-11}, {0}, {-4}, false, false},
        {2, {4, 5}, 2, {1, 0}, {1000, 5}, {0, 1}, {1, 2}, false, false},
        {2, {4, 5}, 1, {-2}, {-1}, {-1}, {1}, false, false},
        {3, {5, 4, 3}, 3, {4, 3, 2}, {0, 0, -4}, {0, 1, 2}, {-1, -2, -1}, false, false},
        {3, {5, 4, 3}, 2, {0, 1}, {INT64_MAX, INT64_MAX}, {2, 0}, {2, 3}, false, false},
        {3, {5, 4, 3}, 2, {INT64_MAX, 1}, {INT64_MIN, 3}, {-3, -2}, {-2, 1}, false, false},
        {3, {5, 4, 3}, 1, {2}, {2}, {1}, {1}, false, false},
    };
    /* clang-format on */
    static float data[60];
    for (int i = 0; i < 60; i++)
        data[i] = (float)i;
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        slice_case *c = &cases[ci];
        qf_tensor in[5];
        in[0] = (qf_tensor){.dtype = QF_DT_F32, .rank = c->rank, .data = data};
        memcpy(in[0].dims, c->dims, sizeof c->dims);
        in[1] = i64v(c->starts, c->k);
        in[2] = i64v(c->ends, c->k);
        in[3] = c->no_axes ? OMIT : i64v(c->axes, c->k);
        in[4] = c->no_steps ? OMIT : i64v(c->steps, c->k);
        int n_in = c->no_steps ? (c->no_axes ? 3 : 4) : 5;
        harness h;
        CHECK_RUN(run_op(&h, "Slice", 13, NULL, 0, in, n_in, 1), &h);
        /* per-axis index lists from the brute force */
        int64_t idx[3][16], cnt[3];
        for (int a = 0; a < c->rank; a++)
            cnt[a] = ref_axis(c->dims[a], 0, c->dims[a], 1, idx[a]);
        for (int i = 0; i < c->k; i++) {
            int a = c->no_axes ? i : (int)(c->axes[i] < 0 ? c->axes[i] + c->rank : c->axes[i]);
            cnt[a] = ref_axis(c->dims[a], c->starts[i], c->ends[i], c->no_steps ? 1 : c->steps[i],
                              idx[a]);
        }
        CHECK_EQ_INT(h.out[0].rank, c->rank);
        for (int a = 0; a < c->rank; a++)
            CHECK_MSG(h.out[0].dims[a] == cnt[a], "case %zu axis %d: %lld vs %lld", ci, a,
                      (long long)h.out[0].dims[a], (long long)cnt[a]);
        const float *y = h.out[0].data;
        int64_t lin = 0;
        int64_t c1 = c->rank > 1 ? cnt[1] : 1, c2 = c->rank > 2 ? cnt[2] : 1;
        for (int64_t i0 = 0; i0 < cnt[0]; i0++)
            for (int64_t i1 = 0; i1 < c1; i1++)
                for (int64_t i2 = 0; i2 < c2; i2++, lin++) {
                    int64_t src = idx[0][i0];
                    if (c->rank > 1) src = src * c->dims[1] + idx[1][i1];
                    if (c->rank > 2) src = src * c->dims[2] + idx[2][i2];
                    CHECK_MSG(y[lin] == data[src], "case %zu elem %lld", ci, (long long)lin);
                }
        h_free(&h);
    }
}

static void slice_hand_cases(void) {
    /* the spec's examples */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t st1[2] = {1, 0}, en1[2] = {2, 3}, ax1[2] = {0, 1}, sp1[2] = {1, 2};
    qf_tensor in[5] = {tens(QF_DT_F32, x, 2, I(2), I(4)), i64v(st1, 2), i64v(en1, 2), i64v(ax1, 2),
                       i64v(sp1, 2)};
    harness h;
    CHECK_RUN(run_op(&h, "Slice", 13, NULL, 0, in, 5, 1), &h);
    CHECK_DIMS(&h.out[0], 1, 2);
    static const float w1[2] = {5, 7};
    CHECK(floats_are(&h.out[0], w1, 2));
    h_free(&h);
    int64_t st2[2] = {0, 1}, en2[2] = {-1, 1000};
    qf_tensor in2[3] = {tens(QF_DT_F32, x, 2, I(2), I(4)), i64v(st2, 2), i64v(en2, 2)};
    CHECK_RUN(run_op(&h, "Slice", 13, NULL, 0, in2, 3, 1), &h);
    CHECK_DIMS(&h.out[0], 1, 3);
    static const float w2[3] = {2, 3, 4};
    CHECK(floats_are(&h.out[0], w2, 3));
    h_free(&h);
    /* int32 starts/ends, reversed whole axis */
    int32_t s32[1] = {-1}, e32[1] = {-9};
    int64_t step[1] = {-1};
    qf_tensor in3[5] = {tens(QF_DT_F32, x, 1, I(8)), tens(QF_DT_I32, s32, 1, I(1)),
                        tens(QF_DT_I32, e32, 1, I(1)), OMIT, i64v(step, 1)};
    CHECK_RUN(run_op(&h, "Slice", 13, NULL, 0, in3, 5, 1), &h);
    static const float w3[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    CHECK(floats_are(&h.out[0], w3, 8));
    h_free(&h);
    /* opset 1 attributes; ends past the end clamp */
    static const int64_t as[1] = {1}, ae[1] = {100}, aa[1] = {1};
    qf_attr at[3] = {a_ints("starts", as, 1), a_ints("ends", ae, 1), a_ints("axes", aa, 1)};
    qf_tensor in4 = tens(QF_DT_F32, x, 2, I(2), I(4));
    CHECK_RUN(run_op(&h, "Slice", 9, at, 3, &in4, 1, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 3);
    static const float w4[6] = {2, 3, 4, 6, 7, 8};
    CHECK(floats_are(&h.out[0], w4, 6));
    h_free(&h);
    /* step 0 is an error; non-constant starts cannot be planned */
    int64_t zero[1] = {0};
    qf_tensor in5[5] = {tens(QF_DT_F32, x, 1, I(8)), i64v(zero, 1), i64v(zero, 1), OMIT,
                        i64v(zero, 1)};
    CHECK(run_op(&h, "Slice", 13, NULL, 0, in5, 5, 1) == QF_ERR_INVALID_ARG);
    h_free(&h);
    call_opts o = {.infer_no_values = true};
    CHECK(run_op_opts(&h, "Slice", 13, NULL, 0, in2, 3, 1, &o) == QF_ERR_UNSUPPORTED);
    CHECK(strstr(h.err.msg, "not constant") != NULL);
    h_free(&h);
}

/* ---- Pad ---------------------------------------------------------------- */
/* data 3x4 = 1..12, pads_begin [0,1], pads_end [2,3]: the four modes worked
 * out by hand. */
static void pad_modes_by_hand(void) {
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i + 1);
    int64_t pads[4] = {0, 1, 2, 3};
    /* clang-format off */
    static const float want_constant[40] = {
        0, 1, 2, 3, 4, 0, 0, 0,  0, 5, 6, 7, 8, 0, 0, 0,  0, 9, 10, 11, 12, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0};
    static const float want_edge[40] = {
        1, 1, 2, 3, 4, 4, 4, 4,  5, 5, 6, 7, 8, 8, 8, 8,  9, 9, 10, 11, 12, 12, 12, 12,
        9, 9, 10, 11, 12, 12, 12, 12,  9, 9, 10, 11, 12, 12, 12, 12};
    static const float want_reflect[40] = {
        2, 1, 2, 3, 4, 3, 2, 1,  6, 5, 6, 7, 8, 7, 6, 5,  10, 9, 10, 11, 12, 11, 10, 9,
        6, 5, 6, 7, 8, 7, 6, 5,  2, 1, 2, 3, 4, 3, 2, 1};
    static const float want_wrap[40] = {
        4, 1, 2, 3, 4, 1, 2, 3,  8, 5, 6, 7, 8, 5, 6, 7,  12, 9, 10, 11, 12, 9, 10, 11,
        4, 1, 2, 3, 4, 1, 2, 3,  8, 5, 6, 7, 8, 5, 6, 7};
    static const struct {
        const char *mode;
        const float *want;
    } modes[] = {{"constant", want_constant}, {"edge", want_edge}, {"reflect", want_reflect},
                 {"wrap", want_wrap}};
    /* clang-format on */
    for (size_t m = 0; m < QF_ARRAY_LEN(modes); m++) {
        qf_attr at = a_str("mode", modes[m].mode);
        qf_tensor in[2] = {tens(QF_DT_F32, x, 2, I(3), I(4)), i64v(pads, 4)};
        harness h;
        CHECK_RUN(run_op(&h, "Pad", 19, &at, 1, in, 2, 1), &h);
        CHECK_DIMS(&h.out[0], 5, 8);
        CHECK_MSG(floats_are(&h.out[0], modes[m].want, 40), "mode %s", modes[m].mode);
        h_free(&h);
    }
}

static void pad_value_crop_axes_opsets(void) {
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i + 1);
    harness h;
    /* opset 2: attributes, value 7.5; pads [1,0,0,1] */
    static const int64_t ap[4] = {1, 0, 0, 1};
    qf_attr at[2] = {a_ints("pads", ap, 4), a_float("value", 7.5f)};
    qf_tensor x0 = tens(QF_DT_F32, x, 2, I(3), I(4));
    CHECK_RUN(run_op(&h, "Pad", 2, at, 2, &x0, 1, 1), &h);
    static const float w0[20] = {7.5, 7.5, 7.5, 7.5, 7.5, 1, 2,  3,  4,  7.5,
                                 5,   6,   7,   8,   7.5, 9, 10, 11, 12, 7.5};
    CHECK_DIMS(&h.out[0], 4, 5);
    CHECK(floats_are(&h.out[0], w0, 20));
    h_free(&h);
    /* negative pads crop: rows 1..2, cols 0..1, then one column of -1 first */
    int64_t pads[4] = {-1, 1, 0, -2};
    float cv = -1;
    qf_tensor in[3] = {x0, i64v(pads, 4), tens(QF_DT_F32, &cv, 0)};
    CHECK_RUN(run_op(&h, "Pad", 13, NULL, 0, in, 3, 1), &h);
    static const float w1[6] = {-1, 5, 6, -1, 9, 10};
    CHECK_DIMS(&h.out[0], 2, 3);
    CHECK(floats_are(&h.out[0], w1, 6));
    h_free(&h);
    /* opset 18 axes input: pad only axis -1 by [2, 1] in edge mode */
    int64_t p2[2] = {2, 1}, ax[1] = {-1};
    qf_attr edge = a_str("mode", "edge");
    qf_tensor in2[4] = {x0, i64v(p2, 2), OMIT, i64v(ax, 1)};
    CHECK_RUN(run_op(&h, "Pad", 18, &edge, 1, in2, 4, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 7);
    static const float w2[21] = {1, 1, 1, 2, 3, 4, 4, 5, 5, 5, 6, 7, 8, 8, 9, 9, 9, 10, 11, 12, 12};
    CHECK(floats_are(&h.out[0], w2, 21));
    h_free(&h);
    /* int8 data, constant_value input of the same type */
    int8_t b[4] = {1, 2, 3, 4}, bv = -5;
    int64_t p3[2] = {1, 2};
    qf_tensor in3[3] = {tens(QF_DT_I8, b, 1, I(4)), i64v(p3, 2), tens(QF_DT_I8, &bv, 0)};
    CHECK_RUN(run_op(&h, "Pad", 13, NULL, 0, in3, 3, 1), &h);
    static const int8_t w3[7] = {-5, 1, 2, 3, 4, -5, -5};
    CHECK(h.out[0].dtype == QF_DT_I8 && memcmp(h.out[0].data, w3, 7) == 0);
    h_free(&h);
    /* bad mode; pads that would make a negative dim */
    qf_attr bad = a_str("mode", "symmetric");
    CHECK(run_op(&h, "Pad", 13, &bad, 1, in3, 2, 1) == QF_ERR_UNSUPPORTED);
    h_free(&h);
    int64_t p4[2] = {-3, -2};
    qf_tensor in4[2] = {tens(QF_DT_I8, b, 1, I(4)), i64v(p4, 2)};
    CHECK(run_op(&h, "Pad", 13, NULL, 0, in4, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
}

/* naive per-element reference: map every output index back by the mode's
 * definition, reflecting repeatedly for pads wider than the axis */
static int64_t ref_pad_index(const char *mode, int64_t j, int64_t n) {
    if (j >= 0 && j < n) return j;
    if (strcmp(mode, "edge") == 0) return j < 0 ? 0 : n - 1;
    if (strcmp(mode, "wrap") == 0) {
        while (j < 0)
            j += n;
        while (j >= n)
            j -= n;
        return j;
    }
    if (n == 1) return 0;
    while (j < 0 || j >= n) {
        if (j < 0) j = -j;
        if (j >= n) j = 2 * (n - 1) - j;
    }
    return j;
}

static void pad_3d_vs_naive(void) {
    static const char *const modes[] = {"edge", "reflect", "wrap"};
    static const int64_t pad_sets[][6] = {
        {1, 2, 3, 2, 1, 0}, {0, 5, 1, 4, 0, 6}, {2, 0, 0, 0, 3, 1}};
    const int64_t dims[3] = {2, 3, 4};
    uint16_t x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (uint16_t)(i * 3 + 1);
    for (size_t m = 0; m < QF_ARRAY_LEN(modes); m++)
        for (size_t ps = 0; ps < QF_ARRAY_LEN(pad_sets); ps++) {
            int64_t pads[6];
            memcpy(pads, pad_sets[ps], sizeof pads);
            qf_attr at = a_str("mode", modes[m]);
            qf_tensor in[2] = {tens(QF_DT_F16, x, 3, dims[0], dims[1], dims[2]), i64v(pads, 6)};
            harness h;
            CHECK_RUN(run_op(&h, "Pad", 19, &at, 1, in, 2, 1), &h);
            int64_t od[3];
            for (int a = 0; a < 3; a++) {
                od[a] = dims[a] + pads[a] + pads[a + 3];
                CHECK(h.out[0].dims[a] == od[a]);
            }
            const uint16_t *y = h.out[0].data;
            for (int64_t i = 0; i < od[0]; i++)
                for (int64_t j = 0; j < od[1]; j++)
                    for (int64_t k = 0; k < od[2]; k++) {
                        int64_t si = ref_pad_index(modes[m], i - pads[0], dims[0]);
                        int64_t sj = ref_pad_index(modes[m], j - pads[1], dims[1]);
                        int64_t sk = ref_pad_index(modes[m], k - pads[2], dims[2]);
                        CHECK_MSG(y[(i * od[1] + j) * od[2] + k] == x[(si * 3 + sj) * 4 + sk],
                                  "mode %s set %zu at %lld,%lld,%lld", modes[m], ps, (long long)i,
                                  (long long)j, (long long)k);
                    }
            h_free(&h);
        }
}

/* ---- Gather ------------------------------------------------------------- */
static void gather_cases(void) {
    /* the spec's axis=0 example */
    float data[6] = {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f};
    int64_t idx[4] = {0, 1, 1, 2};
    qf_tensor in[2] = {tens(QF_DT_F32, data, 2, I(3), I(2)), tens(QF_DT_I64, idx, 2, I(2), I(2))};
    harness h;
    CHECK_RUN(run_op(&h, "Gather", 13, NULL, 0, in, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 2, 2);
    static const float w0[8] = {1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f};
    CHECK(floats_are(&h.out[0], w0, 8));
    h_free(&h);
    /* the axis=1 example, with int32 indices, one negative (-1 = 2) */
    float d3[9] = {1.0f, 1.2f, 1.9f, 2.3f, 3.4f, 3.9f, 4.5f, 5.7f, 5.9f};
    int32_t i32[2] = {0, -1};
    qf_attr ax = a_int("axis", 1);
    qf_tensor in2[2] = {tens(QF_DT_F32, d3, 2, I(3), I(3)), tens(QF_DT_I32, i32, 2, I(1), I(2))};
    CHECK_RUN(run_op(&h, "Gather", 13, &ax, 1, in2, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 1, 2);
    static const float w1[6] = {1.0f, 1.9f, 2.3f, 3.9f, 4.5f, 5.9f};
    CHECK(floats_are(&h.out[0], w1, 6));
    h_free(&h);
    /* scalar index on axis -1 drops the axis: [2,3,4] -> [2,3] */
    int64_t big[24];
    for (int i = 0; i < 24; i++)
        big[i] = 100 + i;
    int64_t one = -2;
    qf_attr axm = a_int("axis", -1);
    qf_tensor in3[2] = {tens(QF_DT_I64, big, 3, I(2), I(3), I(4)), tens(QF_DT_I64, &one, 0)};
    CHECK_RUN(run_op(&h, "Gather", 11, &axm, 1, in3, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 3);
    const int64_t *y = h.out[0].data;
    for (int i = 0; i < 6; i++)
        CHECK(y[i] == 100 + i * 4 + 2);
    h_free(&h);
    /* out of range indices (3 and -4 for a size-3 axis) fail in run */
    int64_t bad[2] = {0, 3};
    qf_tensor in4[2] = {tens(QF_DT_F32, data, 2, I(3), I(2)), tens(QF_DT_I64, bad, 1, I(2))};
    CHECK(run_op(&h, "Gather", 13, NULL, 0, in4, 2, 1) == QF_ERR_INVALID_ARG);
    CHECK(strcmp(h.stage, "run") == 0);
    CHECK(strstr(h.err.msg, "Gather node 'node_under_test'") != NULL);
    h_free(&h);
    bad[1] = -4;
    CHECK(run_op(&h, "Gather", 13, NULL, 0, in4, 2, 1) == QF_ERR_INVALID_ARG);
    h_free(&h);
    bad[1] = -3;
    CHECK_RUN(run_op(&h, "Gather", 13, NULL, 0, in4, 2, 1), &h);
    static const float w4[4] = {1.0f, 1.2f, 1.0f, 1.2f};
    CHECK(floats_are(&h.out[0], w4, 4));
    h_free(&h);
}

/* ---- Reshape / Flatten / Squeeze / Unsqueeze / Identity ----------------- */
static void reshape_cases(void) {
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    static const struct {
        int64_t shape[4];
        int k;
        int allowzero;
        int64_t want[4];
        int want_rank;
    } cases[] = {
        {{0, -1}, 2, 0, {2, 12}, 2},     /* 0 copies, -1 infers */
        {{4, 0, 2}, 3, 0, {4, 3, 2}, 3}, /* 0 copies dim 1 */
        {{-1}, 1, 0, {24}, 1},           {{2, -1, 4}, 3, 1, {2, 3, 4}, 3},
        {{6, 4}, 2, 1, {6, 4}, 2},
    };
    for (size_t c = 0; c < QF_ARRAY_LEN(cases); c++) {
        int64_t shape[4];
        memcpy(shape, cases[c].shape, sizeof shape);
        qf_attr at = a_int("allowzero", cases[c].allowzero);
        qf_tensor in[2] = {tens(QF_DT_F32, x, 3, I(2), I(3), I(4)), i64v(shape, cases[c].k)};
        harness h;
        CHECK_RUN(run_op(&h, "Reshape", 14, &at, 1, in, 2, 1), &h);
        CHECK_MSG(dims_are(&h.out[0], cases[c].want_rank, cases[c].want), "case %zu", c);
        CHECK(floats_are(&h.out[0], x, 24));
        h_free(&h);
        /* aliased output: nothing moves, contents intact */
        call_opts o = {.alias_view = true};
        CHECK_RUN(run_op_opts(&h, "Reshape", 14, &at, 1, in, 2, 1, &o), &h);
        for (int i = 0; i < 24; i++)
            CHECK(x[i] == (float)i);
        h_free(&h);
    }
    /* allowzero keeps a literal 0: [0,3] -> [3,0] */
    int64_t s0[2] = {3, 0};
    qf_attr az = a_int("allowzero", 1);
    qf_tensor e0[2] = {tens(QF_DT_F32, NULL, 2, I(0), I(3)), i64v(s0, 2)};
    harness h;
    CHECK_RUN(run_op(&h, "Reshape", 14, &az, 1, e0, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 0);
    h_free(&h);
    /* without allowzero the 0 copies input dim 1 (3): 9 != 0 elements */
    CHECK(run_op(&h, "Reshape", 13, NULL, 0, e0, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
    /* count mismatch names both shapes */
    int64_t s1[2] = {4, 2};
    float x6[6] = {0};
    qf_tensor m[2] = {tens(QF_DT_F32, x6, 2, I(2), I(3)), i64v(s1, 2)};
    CHECK(run_op(&h, "Reshape", 13, NULL, 0, m, 2, 1) == QF_ERR_SHAPE);
    CHECK_MSG(strstr(h.err.msg, "[2,3]") && strstr(h.err.msg, "[4,2]") &&
                  strstr(h.err.msg, "node_under_test"),
              "%s", h.err.msg);
    h_free(&h);
    /* -1 that does not divide: 6 elements as [4,-1] */
    int64_t s4[2] = {4, -1};
    m[1] = i64v(s4, 2);
    CHECK(run_op(&h, "Reshape", 13, NULL, 0, m, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
    /* two -1, a -2, and a shape only known at run time */
    int64_t s2[2] = {-1, -1}, s3[2] = {-2, -3};
    m[1] = i64v(s2, 2);
    CHECK(run_op(&h, "Reshape", 13, NULL, 0, m, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
    m[1] = i64v(s3, 2);
    CHECK(run_op(&h, "Reshape", 13, NULL, 0, m, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
    m[1] = i64v(s1, 2);
    call_opts o = {.infer_no_values = true};
    CHECK(run_op_opts(&h, "Reshape", 13, NULL, 0, m, 2, 1, &o) == QF_ERR_UNSUPPORTED);
    CHECK(strstr(h.err.msg, "shape input not constant") != NULL);
    h_free(&h);
}

static void flatten_squeeze_unsqueeze_identity(void) {
    int16_t x[120];
    for (int i = 0; i < 120; i++)
        x[i] = (int16_t)(i - 60);
    qf_tensor x4 = tens(QF_DT_I16, x, 4, I(2), I(3), I(4), I(5));
    static const struct {
        int64_t axis;
        int64_t d0, d1;
    } fl[] = {{0, 1, 120}, {1, 2, 60}, {2, 6, 20}, {4, 120, 1}, {-1, 24, 5}, {-4, 1, 120}};
    harness h;
    for (size_t c = 0; c < QF_ARRAY_LEN(fl); c++) {
        qf_attr at = a_int("axis", fl[c].axis);
        CHECK_RUN(run_op(&h, "Flatten", 13, &at, 1, &x4, 1, 1), &h);
        CHECK_MSG(h.out[0].rank == 2 && h.out[0].dims[0] == fl[c].d0 &&
                      h.out[0].dims[1] == fl[c].d1,
                  "axis %lld", (long long)fl[c].axis);
        CHECK(h.out[0].dtype == QF_DT_I16 && memcmp(h.out[0].data, x, sizeof x) == 0);
        h_free(&h);
    }
    qf_attr a5 = a_int("axis", 5);
    CHECK(run_op(&h, "Flatten", 13, &a5, 1, &x4, 1, 1) == QF_ERR_INVALID_ARG);
    h_free(&h);

    /* Squeeze: opset 11 attribute, opset 13 input, all ones when absent */
    qf_tensor x1 = tens(QF_DT_I16, x, 5, I(1), I(3), I(1), I(5), I(1));
    static const int64_t sq_axes[2] = {0, -1};
    qf_attr sq = a_ints("axes", sq_axes, 2);
    CHECK_RUN(run_op(&h, "Squeeze", 11, &sq, 1, &x1, 1, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 1, 5);
    CHECK(memcmp(h.out[0].data, x, 15 * 2) == 0);
    h_free(&h);
    int64_t ax13[1] = {2};
    qf_tensor sin[2] = {x1, i64v(ax13, 1)};
    CHECK_RUN(run_op(&h, "Squeeze", 13, NULL, 0, sin, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 1, 3, 5, 1);
    h_free(&h);
    CHECK_RUN(run_op(&h, "Squeeze", 13, NULL, 0, &x1, 1, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 5);
    h_free(&h);
    ax13[0] = 1; /* a dim of 3 cannot be squeezed */
    CHECK(run_op(&h, "Squeeze", 13, NULL, 0, sin, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);

    /* Unsqueeze: axes index the output, any order, negative allowed */
    qf_tensor x2 = tens(QF_DT_I16, x, 2, I(3), I(5));
    int64_t ua[3] = {4, 0, -3};
    qf_tensor uin[2] = {x2, i64v(ua, 3)};
    CHECK_RUN(run_op(&h, "Unsqueeze", 13, NULL, 0, uin, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 1, 3, 1, 5, 1);
    CHECK(memcmp(h.out[0].data, x, 15 * 2) == 0);
    h_free(&h);
    static const int64_t ua11[1] = {-1};
    qf_attr ut = a_ints("axes", ua11, 1);
    CHECK_RUN(run_op(&h, "Unsqueeze", 11, &ut, 1, &x2, 1, 1), &h);
    CHECK_DIMS(&h.out[0], 3, 5, 1);
    h_free(&h);
    int64_t dup[2] = {1, 1};
    uin[1] = i64v(dup, 2);
    CHECK(run_op(&h, "Unsqueeze", 13, NULL, 0, uin, 2, 1) == QF_ERR_INVALID_ARG);
    h_free(&h);
    /* scalar -> [1] */
    qf_tensor sc = tens(QF_DT_I16, x, 0);
    int64_t z[1] = {0};
    qf_tensor sin2[2] = {sc, i64v(z, 1)};
    CHECK_RUN(run_op(&h, "Unsqueeze", 13, NULL, 0, sin2, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 1);
    CHECK(((int16_t *)h.out[0].data)[0] == -60);
    h_free(&h);

    /* Identity on bool and on an aliased buffer */
    uint8_t bits[5] = {1, 0, 1, 1, 0};
    qf_tensor bt = tens(QF_DT_BOOL, bits, 1, I(5));
    CHECK_RUN(run_op(&h, "Identity", 16, NULL, 0, &bt, 1, 1), &h);
    CHECK(h.out[0].dtype == QF_DT_BOOL && memcmp(h.out[0].data, bits, 5) == 0);
    h_free(&h);
    call_opts o = {.alias_view = true};
    CHECK_RUN(run_op_opts(&h, "Identity", 16, NULL, 0, &bt, 1, 1, &o), &h);
    CHECK(bits[0] == 1 && bits[1] == 0 && bits[4] == 0);
    h_free(&h);
}

/* ---- Concat / Split ----------------------------------------------------- */
static void concat_cases(void) {
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {7, 8, 9, 10}, c[2] = {11, 12};
    qf_tensor in[3] = {tens(QF_DT_F32, a, 2, I(2), I(3)), tens(QF_DT_F32, b, 2, I(2), I(2)),
                       tens(QF_DT_F32, c, 2, I(2), I(1))};
    qf_attr ax = a_int("axis", -1);
    harness h;
    CHECK_RUN(run_op(&h, "Concat", 13, &ax, 1, in, 3, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 6);
    static const float w[12] = {1, 2, 3, 7, 8, 11, 4, 5, 6, 9, 10, 12};
    CHECK(floats_are(&h.out[0], w, 12));
    h_free(&h);
    /* axis 0 with an empty input in the middle */
    qf_tensor in0[3] = {tens(QF_DT_F32, a, 2, I(3), I(2)), tens(QF_DT_F32, NULL, 2, I(0), I(2)),
                        tens(QF_DT_F32, b, 2, I(2), I(2))};
    qf_attr a0 = a_int("axis", 0);
    CHECK_RUN(run_op(&h, "Concat", 11, &a0, 1, in0, 3, 1), &h);
    CHECK_DIMS(&h.out[0], 5, 2);
    static const float w0[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(floats_are(&h.out[0], w0, 10));
    h_free(&h);
    /* shapes that differ off the axis */
    CHECK(run_op(&h, "Concat", 13, &a0, 1, in, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
    /* missing axis attribute */
    CHECK(run_op(&h, "Concat", 13, NULL, 0, in, 2, 1) == QF_ERR_FORMAT);
    h_free(&h);
}

static void split_cases(void) {
    float x[14];
    for (int i = 0; i < 14; i++)
        x[i] = (float)i;
    harness h;
    /* opset 18 num_outputs=3 on 7 columns: 3, 3, 1 */
    qf_attr at[2] = {a_int("axis", 1), a_int("num_outputs", 3)};
    qf_tensor in = tens(QF_DT_F32, x, 2, I(2), I(7));
    CHECK_RUN(run_op(&h, "Split", 18, at, 2, &in, 1, 3), &h);
    CHECK_DIMS(&h.out[0], 2, 3);
    CHECK_DIMS(&h.out[1], 2, 3);
    CHECK_DIMS(&h.out[2], 2, 1);
    static const float w0[6] = {0, 1, 2, 7, 8, 9}, w1[6] = {3, 4, 5, 10, 11, 12}, w2[2] = {6, 13};
    CHECK(floats_are(&h.out[0], w0, 6));
    CHECK(floats_are(&h.out[1], w1, 6));
    CHECK(floats_are(&h.out[2], w2, 2));
    h_free(&h);
    /* opset 13 split input [2, 0, 5] on axis -1, middle output empty */
    int64_t sp[3] = {2, 0, 5};
    qf_attr am = a_int("axis", -1);
    qf_tensor in2[2] = {in, i64v(sp, 3)};
    CHECK_RUN(run_op(&h, "Split", 13, &am, 1, in2, 2, 3), &h);
    CHECK_DIMS(&h.out[1], 2, 0);
    static const float v0[4] = {0, 1, 7, 8}, v2[10] = {2, 3, 4, 5, 6, 9, 10, 11, 12, 13};
    CHECK(floats_are(&h.out[0], v0, 4));
    CHECK(floats_are(&h.out[2], v2, 10));
    h_free(&h);
    /* opset 11 attribute on axis 0, second output omitted */
    static const int64_t sa[2] = {1, 1};
    qf_attr at11 = a_ints("split", sa, 2);
    call_opts o = {.skip_out = 2u};
    CHECK_RUN(run_op_opts(&h, "Split", 11, &at11, 1, &in, 1, 2, &o), &h);
    CHECK(floats_are(&h.out[0], x, 7));
    h_free(&h);
    /* equal split: 14 elements into 2; 7 columns do not split in 2 before
     * opset 18 */
    qf_tensor flat = tens(QF_DT_F32, x, 1, I(14));
    CHECK_RUN(run_op(&h, "Split", 13, NULL, 0, &flat, 1, 2), &h);
    CHECK(floats_are(&h.out[1], x + 7, 7));
    h_free(&h);
    CHECK(run_op(&h, "Split", 13, &am, 1, &in, 1, 2) == QF_ERR_SHAPE);
    h_free(&h);
    /* sizes that do not add up */
    int64_t sp2[2] = {3, 3};
    qf_tensor in3[2] = {in, i64v(sp2, 2)};
    CHECK(run_op(&h, "Split", 13, &am, 1, in3, 2, 2) == QF_ERR_SHAPE);
    h_free(&h);
}

/* ---- Shape, Expand, Constant, ConstantOfShape, Dropout ------------------ */
static void shape_cases(void) {
    qf_tensor x = tens(QF_DT_F32, NULL, 3, I(2), I(3), I(4)); /* data never read */
    static const struct {
        bool has_start, has_end;
        int64_t start, end;
        int n;
        int64_t want[3];
    } cases[] = {
        {false, false, 0, 0, 3, {2, 3, 4}},  {true, false, -1, 0, 1, {4}},
        {false, true, 0, -1, 2, {2, 3}},     {true, true, 1, 2, 1, {3}},
        {true, false, -10, 0, 3, {2, 3, 4}}, {false, true, 0, 10, 3, {2, 3, 4}},
        {true, true, 2, 1, 0, {0}},
    };
    for (size_t c = 0; c < QF_ARRAY_LEN(cases); c++) {
        qf_attr at[2];
        int na = 0;
        if (cases[c].has_start) at[na++] = a_int("start", cases[c].start);
        if (cases[c].has_end) at[na++] = a_int("end", cases[c].end);
        harness h;
        CHECK_RUN(run_op(&h, "Shape", 15, at, na, &x, 1, 1), &h);
        CHECK(h.out[0].dtype == QF_DT_I64 && h.out[0].rank == 1);
        CHECK_MSG(h.out[0].dims[0] == cases[c].n, "case %zu", c);
        for (int i = 0; i < cases[c].n; i++)
            CHECK(((int64_t *)h.out[0].data)[i] == cases[c].want[i]);
        h_free(&h);
    }
}

static void expand_cases(void) {
    int32_t x[3] = {1, 2, 3};
    harness h;
    /* [3,1] -> [2,1,6]: out [2,3,6] */
    int64_t s[3] = {2, 1, 6};
    qf_tensor in[2] = {tens(QF_DT_I32, x, 2, I(3), I(1)), i64v(s, 3)};
    CHECK_RUN(run_op(&h, "Expand", 13, NULL, 0, in, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 3, 6);
    const int32_t *y = h.out[0].data;
    for (int i = 0; i < 36; i++)
        CHECK(y[i] == 1 + (i / 6) % 3);
    h_free(&h);
    /* shape of lower rank than the input: [1,3] by [2,1] -> [2,3] */
    int64_t s2[2] = {2, 1};
    qf_tensor in2[2] = {tens(QF_DT_I32, x, 2, I(1), I(3)), i64v(s2, 2)};
    CHECK_RUN(run_op(&h, "Expand", 8, NULL, 0, in2, 2, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 3);
    static const int32_t w2[6] = {1, 2, 3, 1, 2, 3};
    CHECK(memcmp(h.out[0].data, w2, sizeof w2) == 0);
    h_free(&h);
    int64_t s3[1] = {2};
    qf_tensor in3[2] = {tens(QF_DT_I32, x, 1, I(3)), i64v(s3, 1)};
    CHECK(run_op(&h, "Expand", 13, NULL, 0, in3, 2, 1) == QF_ERR_SHAPE);
    h_free(&h);
}

static void constant_cases(void) {
    harness h;
    static const float fv[3] = {1.5f, -2, 3};
    qf_attr a = a_floats("value_floats", fv, 3);
    CHECK_RUN(run_op(&h, "Constant", 13, &a, 1, NULL, 0, 1), &h);
    CHECK_DIMS(&h.out[0], 3);
    CHECK(floats_are(&h.out[0], fv, 3));
    h_free(&h);
    qf_attr ai = a_int("value_int", -7);
    CHECK_RUN(run_op(&h, "Constant", 13, &ai, 1, NULL, 0, 1), &h);
    CHECK(h.out[0].dtype == QF_DT_I64 && h.out[0].rank == 0);
    CHECK(*(int64_t *)h.out[0].data == -7);
    h_free(&h);
    uint8_t bytes[4] = {9, 8, 7, 6};
    qf_attr at = a_tensor("value", tens(QF_DT_U8, bytes, 2, I(2), I(2)));
    CHECK_RUN(run_op(&h, "Constant", 9, &at, 1, NULL, 0, 1), &h);
    CHECK_DIMS(&h.out[0], 2, 2);
    CHECK(h.out[0].dtype == QF_DT_U8 && memcmp(h.out[0].data, bytes, 4) == 0);
    h_free(&h);
    qf_attr sp = {.name = "sparse_value", .type = QF_ATTR_UNDEF};
    CHECK(run_op(&h, "Constant", 13, &sp, 1, NULL, 0, 1) == QF_ERR_UNSUPPORTED);
    h_free(&h);
    CHECK(run_op(&h, "Constant", 13, NULL, 0, NULL, 0, 1) == QF_ERR_FORMAT);
    h_free(&h);

    /* ConstantOfShape: default float 0, an int64 value, empty shape */
    int64_t shp[2] = {2, 3};
    qf_tensor sin = i64v(shp, 2);
    CHECK_RUN(run_op(&h, "ConstantOfShape", 9, NULL, 0, &sin, 1, 1), &h);
    static const float z[6] = {0};
    CHECK_DIMS(&h.out[0], 2, 3);
    CHECK(floats_are(&h.out[0], z, 6));
    h_free(&h);
    int64_t v = 42;
    qf_attr av = a_tensor("value", tens(QF_DT_I64, &v, 1, I(1)));
    CHECK_RUN(run_op(&h, "ConstantOfShape", 9, &av, 1, &sin, 1, 1), &h);
    CHECK(h.out[0].dtype == QF_DT_I64);
    for (int i = 0; i < 6; i++)
        CHECK(((int64_t *)h.out[0].data)[i] == 42);
    h_free(&h);
    qf_tensor empty = tens(QF_DT_I64, NULL, 1, I(0));
    CHECK_RUN(run_op(&h, "ConstantOfShape", 9, &av, 1, &empty, 1, 1), &h);
    CHECK_SCALAR_SHAPE(&h.out[0]);
    CHECK(*(int64_t *)h.out[0].data == 42);
    h_free(&h);
    int64_t neg[1] = {-1};
    qf_tensor nin = i64v(neg, 1);
    CHECK(run_op(&h, "ConstantOfShape", 9, NULL, 0, &nin, 1, 1) == QF_ERR_SHAPE);
    h_free(&h);
}

static void dropout_cases(void) {
    float x[4] = {1, -2, 3, -4};
    harness h;
    /* opset 13: output = input, mask = bool ones */
    float ratio = 0.5f;
    uint8_t train = 0;
    qf_tensor in[3] = {tens(QF_DT_F32, x, 2, I(2), I(2)), tens(QF_DT_F32, &ratio, 0),
                       tens(QF_DT_BOOL, &train, 0)};
    CHECK_RUN(run_op(&h, "Dropout", 13, NULL, 0, in, 3, 2), &h);
    CHECK(floats_are(&h.out[0], x, 4));
    CHECK(h.out[1].dtype == QF_DT_BOOL);
    CHECK_DIMS(&h.out[1], 2, 2);
    static const uint8_t ones[4] = {1, 1, 1, 1};
    CHECK(memcmp(h.out[1].data, ones, 4) == 0);
    h_free(&h);
    /* opset 7: the mask has the data's type */
    CHECK_RUN(run_op(&h, "Dropout", 7, NULL, 0, in, 1, 2), &h);
    static const float fones[4] = {1, 1, 1, 1};
    CHECK(floats_are(&h.out[1], fones, 4));
    h_free(&h);
    /* training mode is refused, naming the node */
    train = 1;
    CHECK(run_op(&h, "Dropout", 13, NULL, 0, in, 3, 2) == QF_ERR_UNSUPPORTED);
    CHECK(strstr(h.err.msg, "node_under_test") != NULL);
    h_free(&h);
    /* ... unless the ratio is 0, which drops nothing */
    ratio = 0.0f;
    CHECK_RUN(run_op(&h, "Dropout", 13, NULL, 0, in, 3, 2), &h);
    CHECK(floats_are(&h.out[0], x, 4));
    CHECK(memcmp(h.out[1].data, ones, 4) == 0);
    h_free(&h);
}

QT_MAIN(QT_CASE(registry_entries), QT_CASE(transpose_all_perms),
        QT_CASE(transpose_default_and_high_rank), QT_CASE(slice_vs_bruteforce),
        QT_CASE(slice_hand_cases), QT_CASE(pad_modes_by_hand), QT_CASE(pad_value_crop_axes_opsets),
        QT_CASE(pad_3d_vs_naive), QT_CASE(gather_cases), QT_CASE(reshape_cases),
        QT_CASE(flatten_squeeze_unsqueeze_identity), QT_CASE(concat_cases), QT_CASE(split_cases),
        QT_CASE(shape_cases), QT_CASE(expand_cases), QT_CASE(constant_cases),
        QT_CASE(dropout_cases))
