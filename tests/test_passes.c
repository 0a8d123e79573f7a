/* test_passes.c - graph passes (src/ir/passes): shape inference (static,
 * dynamic batch, PyTorch-style Shape->...->Reshape chains), constant
 * folding, Identity/Dropout removal, BatchNorm folding and dead-node
 * removal, on small graphs built by hand.
 *
 * References: shapes and folded values are hand-computed; BatchNorm folding
 * and the rewiring passes are checked by running the graph before and after
 * the pass through a tiny node-by-node interpreter (below) over the ops'
 * reference kernels on the same random input. A case whose ops have no
 * kernel linked fails. */
#include <math.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "ir/passes.h"
#include "qtest.h"

#define OPSET 13

/* ---- graph building helpers ------------------------------------------- */
static int64_t dims_buf[QF_MAX_DIMS];
#define DIMS(...) dims_of((const int64_t[]){__VA_ARGS__}, \
                          (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define IDS(...) (const int[]){__VA_ARGS__}, (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

static int dims_count;
static const int64_t *dims_of(const int64_t *d, int n) {
    for (int i = 0; i < n; i++) dims_buf[i] = d[i];
    dims_count = n;
    return dims_buf;
}

static int val(qf_graph *g, const char *name, qf_dtype dt, const int64_t *dims) {
    return qf_graph_add_value(g, name, dt, dims_count, dims);
}

static int input(qf_graph *g, const char *name, const int64_t *dims) {
    int v = val(g, name, QF_DT_F32, dims);
    if (v >= 0) qf_graph_add_input(g, v);
    return v;
}

static int tmp(qf_graph *g, const char *name) {
    return qf_graph_add_value(g, name, QF_DT_UNDEF, -1, NULL);
}

static int output(qf_graph *g, const char *name) {
    int v = tmp(g, name);
    if (v >= 0) qf_graph_add_output(g, v);
    return v;
}

static int cnst(qf_graph *g, const char *name, qf_dtype dt, const int64_t *dims,
                const void *data) {
    int rank = dims_count;
    int v = qf_graph_add_value(g, name, dt, rank, dims);
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    t.data = (void *)data;
    qf_err e;
    if (v < 0 || qf_graph_set_const(g, v, &t, &e)) return -1;
    return v;
}

static int node(qf_graph *g, const char *op, const int *in, int n_in, const int *out, int n_out,
                const qf_attr *attrs, int n_attrs) {
    return qf_graph_add_node(g, NULL, op, "", OPSET, in, n_in, out, n_out, attrs, n_attrs);
}
#define NODE0(g, op, in, out) node(g, op, in, out, NULL, 0)
#define NODEA(g, op, in, out, attrs) node(g, op, in, out, attrs, (int)QF_ARRAY_LEN(attrs))

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

/* Sort and parse; prints the error (a test bug or a kernel's parse). */
static bool finish(qf_graph *g) {
    qf_err e;
    e.msg[0] = 0;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e)) {
        fprintf(stderr, "  graph setup failed: %s\n", e.msg);
        return false;
    }
    return true;
}

/* Every op these tests use has a reference kernel in the tree, so a missing
 * one means the kernel object was not linked into this binary: that fails
 * the case (loudly) rather than skipping it. */
static bool have_ops(const char *test, const qf_op_id *ids, int n) {
    for (int i = 0; i < n; i++)
        if (!qf_op_get(ids[i])) {
            fprintf(stderr, "  %s: op %s has no kernel linked into this binary\n", test,
                    qf_op_name(ids[i]));
            return false;
        }
    return true;
}
#define REQUIRE_OPS(...)                                                               \
    do {                                                                               \
        static const qf_op_id req_[] = {__VA_ARGS__};                                  \
        CHECK(have_ops(qt_current, req_, (int)QF_ARRAY_LEN(req_)));                   \
    } while (0)

static uint32_t rng_state = 12345u;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

/* ---- a tiny interpreter over the reference kernels --------------------- */
/* Runs graph g on inputs (one per graph input, in order); outs[k] receives a
 * malloc'd copy of graph output k (caller frees data). Independent of the
 * passes: shapes come straight from each op's infer on concrete inputs. */
static bool interp(const qf_graph *g, const qf_tensor *inputs, qf_tensor *outs) {
    bool ok = false;
    qf_tensor *tab = calloc((size_t)g->n_values + 1, sizeof *tab);
    bool *own = calloc((size_t)g->n_values + 1, 1);
    qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
    qf_err e;
    e.msg[0] = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].flags & QF_VAL_CONST) tab[v] = qf_value_tensor(&g->values[v]);
    for (int k = 0; k < g->n_inputs; k++) tab[g->inputs[k]] = inputs[k];
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        const qf_op_def *def = qf_op_get(n->op);
        if (!def || n->n_inputs > QF_MAX_NODE_IO || n->n_outputs > QF_MAX_NODE_IO) goto out;
        for (int j = 0; j < n->n_inputs; j++) {
            if (n->inputs[j] >= 0)
                in[j] = tab[n->inputs[j]];
            else
                memset(&in[j], 0, sizeof in[j]);
        }
        memset(out, 0, sizeof out);
        if (def->infer(n, in, n->n_inputs, out, n->n_outputs, &e)) goto out;
        for (int j = 0; j < n->n_outputs; j++) {
            if (n->outputs[j] < 0) continue;
            int64_t numel = qf_tensor_numel(&out[j]);
            out[j].data = calloc((size_t)numel * qf_dtype_size(out[j].dtype) + 1, 1);
        }
        size_t sb = def->scratch ? def->scratch(n, in, n->n_inputs, out, n->n_outputs) : 0;
        void *scratch = sb ? malloc(sb) : NULL;
        qf_exec_ctx ctx = {.num_threads = 1};
        qf_status s = def->run(&ctx, n, in, n->n_inputs, out, n->n_outputs, scratch, &e);
        free(scratch);
        for (int j = 0; j < n->n_outputs; j++) {
            int v = n->outputs[j];
            if (v < 0) continue;
            tab[v] = out[j];
            own[v] = true;
        }
        if (s) goto out;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        const qf_tensor *t = &tab[g->outputs[k]];
        size_t bytes = (size_t)qf_tensor_numel(t) * qf_dtype_size(t->dtype);
        outs[k] = *t;
        outs[k].data = malloc(bytes + 1);
        memcpy(outs[k].data, t->data, bytes);
    }
    ok = true;
out:
    if (!ok) fprintf(stderr, "  interpreter: %s\n", e.msg);
    for (int v = 0; v < g->n_values; v++)
        if (own[v]) free(tab[v].data);
    free(tab);
    free(own);
    return ok;
}

/* Normalised max error: max|a - b| / max|b| (0 when both are zero). */
static double norm_err(const qf_tensor *a, const qf_tensor *b) {
    int64_t n = qf_tensor_numel(b);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];
        num = fmax(num, fabs(x - y));
        den = fmax(den, fabs(y));
    }
    return den > 0 ? num / den : num;
}

static bool same_shape(const qf_tensor *a, const qf_tensor *b) {
    if (a->rank != b->rank || a->dtype != b->dtype) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static qf_tensor rand_tensor(int rank, const int64_t *dims) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = QF_DT_F32;
    t.rank = rank;
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    int64_t n = qf_tensor_numel(&t);
    float *d = malloc(sizeof(float) * (size_t)n + 1);
    for (int64_t i = 0; i < n; i++) d[i] = frand();
    t.data = d;
    return t;
}

static const float *const_f32(const qf_graph *g, int v) {
    const qf_value *val = &g->values[v];
    return (val->flags & QF_VAL_CONST) && val->dtype == QF_DT_F32 ? val->data : NULL;
}

static bool dims_are(const qf_value *v, int rank, const int64_t *want) {
    if (v->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (v->dims[i] != want[i]) return false;
    return true;
}

/* ---- graph builders shared by several cases ---------------------------- */
static int64_t perm201[] = {2, 0, 1};
static int64_t k3[] = {3, 3}, pad1[] = {1, 1, 1, 1}, stride2[] = {2, 2}, stride1[] = {1, 1};

/* PyTorch's x.view(x.size(0), -1):
 * Shape -> Gather(0) -> Unsqueeze -> Concat([n], [-1]) -> Reshape. */
static int build_flatten_chain(qf_graph *g, int x, int64_t which_dim) {
    int64_t idx = which_dim, minus1 = -1, axes0 = 0;
    int sh = tmp(g, "shape"), gi = tmp(g, "gather"), un = tmp(g, "unsq"), cat = tmp(g, "cat");
    int y = output(g, "y");
    dims_count = 0;
    int c_idx = cnst(g, "idx", QF_DT_I64, dims_buf, &idx);
    int c_m1 = cnst(g, "minus1", QF_DT_I64, DIMS(1), &minus1);
    int c_ax = cnst(g, "axes", QF_DT_I64, DIMS(1), &axes0);
    NODE0(g, "Shape", IDS(x), IDS(sh));
    NODE0(g, "Gather", IDS(sh, c_idx), IDS(gi));
    NODE0(g, "Unsqueeze", IDS(gi, c_ax), IDS(un));
    qf_attr cat_axis[] = {attr_i("axis", 0)};
    NODEA(g, "Concat", IDS(un, c_m1), IDS(cat), cat_axis);
    NODE0(g, "Reshape", IDS(x, cat), IDS(y));
    return y;
}

/* ---- shape inference ----------------------------------------------------- */
typedef struct infer_case {
    const char *name;
    int rank;
    int64_t in_dims[4];
    int (*build)(qf_graph *g, int x); /* returns the value to check */
    int want_rank;
    int64_t want[4];
    qf_op_id needs[3];
    int n_needs;
} infer_case;

static int b_add_bcast(qf_graph *g, int x) {
    float c[3] = {1, 2, 3};
    int k = cnst(g, "c", QF_DT_F32, DIMS(3, 1, 1), c);
    int t = tmp(g, "t"), y = output(g, "y");
    NODE0(g, "Add", IDS(x, k), IDS(t));
    NODE0(g, "Neg", IDS(t), IDS(y));
    return y;
}
static int b_flatten0(qf_graph *g, int x) { return build_flatten_chain(g, x, 0); }
static int b_concat_self(qf_graph *g, int x) {
    int y = output(g, "y");
    qf_attr a[] = {attr_i("axis", 0)};
    NODEA(g, "Concat", IDS(x, x), IDS(y), a);
    return y;
}
static int b_transpose(qf_graph *g, int x) {
    int y = output(g, "y");
    qf_attr a[] = {attr_ints("perm", perm201, 3)};
    NODEA(g, "Transpose", IDS(x), IDS(y), a);
    return y;
}
static int b_conv(qf_graph *g, int x) {
    static float w[4 * 3 * 3 * 3];
    int wv = cnst(g, "w", QF_DT_F32, DIMS(4, 3, 3, 3), w);
    int t = tmp(g, "t"), y = output(g, "y");
    qf_attr a[] = {attr_ints("kernel_shape", k3, 2), attr_ints("pads", pad1, 4),
                   attr_ints("strides", stride2, 2)};
    NODEA(g, "Conv", IDS(x, wv), IDS(t), a);
    NODE0(g, "Relu", IDS(t), IDS(y));
    return y;
}
static int b_gemm(qf_graph *g, int x) {
    static float b[6 * 5];
    int bv = cnst(g, "b", QF_DT_F32, DIMS(6, 5), b);
    int y = output(g, "y");
    NODE0(g, "Gemm", IDS(x, bv), IDS(y));
    return y;
}

static const infer_case infer_cases[] = {
    {"add_broadcast_dynamic", 4, {-1, 3, 4, 4}, b_add_bcast, 4, {-1, 3, 4, 4},
     {QF_OP_ADD, QF_OP_NEG}, 2},
    {"add_broadcast_static", 4, {2, 3, 4, 5}, b_add_bcast, 4, {2, 3, 4, 5},
     {QF_OP_ADD, QF_OP_NEG}, 2},
    {"flatten_chain_dynamic", 4, {-1, 2, 3, 4}, b_flatten0, 2, {-1, 24},
     {QF_OP_SHAPE, QF_OP_GATHER, QF_OP_UNSQUEEZE}, 3},
    {"flatten_chain_static", 4, {5, 2, 3, 4}, b_flatten0, 2, {5, 24},
     {QF_OP_SHAPE, QF_OP_GATHER, QF_OP_UNSQUEEZE}, 3},
    {"concat_doubles_dynamic_dim", 2, {-1, 3}, b_concat_self, 2, {-1, 3}, {QF_OP_CONCAT}, 1},
    {"transpose_moves_dynamic_dim", 3, {-1, 2, 5}, b_transpose, 3, {5, -1, 2},
     {QF_OP_TRANSPOSE}, 1},
    {"conv_relu_dynamic", 4, {-1, 3, 8, 8}, b_conv, 4, {-1, 4, 4, 4}, {QF_OP_CONV, QF_OP_RELU},
     2},
    {"gemm_dynamic", 2, {-1, 6}, b_gemm, 2, {-1, 5}, {QF_OP_GEMM}, 1},
};

static void infer_shapes_table(void) {
    for (size_t c = 0; c < QF_ARRAY_LEN(infer_cases); c++) {
        const infer_case *tc = &infer_cases[c];
        CHECK(have_ops(tc->name, tc->needs, tc->n_needs));
        qf_graph *g = qf_graph_create();
        dims_count = tc->rank;
        int x = input(g, "x", tc->in_dims);
        int y = tc->build(g, x);
        CHECK(finish(g));
        int nodes_before = g->n_nodes;
        qf_err e;
        e.msg[0] = 0;
        qf_status s = qf_pass_infer_shapes(g, &e);
        CHECK_MSG(s == QF_OK, "%s: %s", tc->name, e.msg);
        CHECK_MSG(g->values[y].dtype == QF_DT_F32, "%s", tc->name);
        CHECK_MSG(dims_are(&g->values[y], tc->want_rank, tc->want), "%s: rank %d dims %lld %lld",
                  tc->name, g->values[y].rank, (long long)g->values[y].dims[0],
                  (long long)g->values[y].dims[1]);
        /* inference changes shapes only: no node folded, no value made constant */
        CHECK_EQ_INT(g->n_nodes, nodes_before);
        CHECK(!(g->values[y].flags & QF_VAL_CONST));
        for (int v = 0; v < g->n_values; v++)
            if (g->values[v].producer >= 0) CHECK(!(g->values[v].flags & QF_VAL_CONST));
        /* the graph input keeps its declared (dynamic) dims */
        for (int i = 0; i < tc->rank; i++) CHECK_EQ_INT(g->values[x].dims[i], tc->in_dims[i]);
        qf_graph_free(g);
    }
}

/* The intermediate values of the flatten chain: Shape's output is [4]
 * int64 whatever the batch, the Concat result [2]. */
static void infer_flatten_chain_intermediates(void) {
    REQUIRE_OPS(QF_OP_SHAPE, QF_OP_GATHER, QF_OP_UNSQUEEZE, QF_OP_CONCAT, QF_OP_RESHAPE);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(-1, 2, 3, 4));
    build_flatten_chain(g, x, 0);
    CHECK(finish(g));
    qf_err e;
    CHECK_OK(qf_pass_infer_shapes(g, &e));
    const qf_value *sh = &g->values[qf_graph_find_value(g, "shape")];
    const qf_value *gi = &g->values[qf_graph_find_value(g, "gather")];
    const qf_value *cat = &g->values[qf_graph_find_value(g, "cat")];
    CHECK(sh->dtype == QF_DT_I64 && sh->rank == 1 && sh->dims[0] == 4);
    CHECK(gi->dtype == QF_DT_I64 && gi->rank == 0);
    CHECK(cat->dtype == QF_DT_I64 && cat->rank == 1 && cat->dims[0] == 2);
    CHECK(sh->data == NULL && cat->data == NULL);
    /* idempotent: a second run gives the same answer */
    CHECK_OK(qf_pass_infer_shapes(g, &e));
    const qf_value *y = &g->values[qf_graph_find_value(g, "y")];
    CHECK(dims_are(y, 2, DIMS(-1, 24)));
    qf_graph_free(g);
}

/* An op without a kernel stops inference with an error naming it; values
 * before it still get their shapes. */
static void infer_unsupported_op(void) {
    REQUIRE_OPS(QF_OP_NEG);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(2, 3));
    int t = tmp(g, "t"), u = tmp(g, "u"), y = output(g, "y");
    NODE0(g, "Neg", IDS(x), IDS(t));
    qf_graph_add_node(g, "weird", "FancyOp", "com.example", 1, IDS(t), IDS(u), NULL, 0);
    NODE0(g, "Neg", IDS(u), IDS(y));
    qf_err e;
    CHECK_OK(qf_graph_toposort(g, &e));
    e.msg[0] = 0;
    CHECK_EQ_INT(qf_pass_infer_shapes(g, &e), QF_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "FancyOp") && strstr(e.msg, "weird"), "%s", e.msg);
    CHECK(dims_are(&g->values[t], 2, DIMS(2, 3)));
    CHECK(g->values[y].rank == -1);
    qf_graph_free(g);
}

static void infer_shape_mismatch(void) {
    REQUIRE_OPS(QF_OP_ADD);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(2, 3));
    float c[4] = {0};
    int k = cnst(g, "c", QF_DT_F32, DIMS(4), c);
    int y = output(g, "y");
    qf_graph_add_node(g, "bad_add", "Add", "", OPSET, IDS(x, k), IDS(y), NULL, 0);
    CHECK(finish(g));
    qf_err e;
    e.msg[0] = 0;
    CHECK_EQ_INT(qf_pass_infer_shapes(g, &e), QF_ERR_SHAPE);
    CHECK_MSG(strstr(e.msg, "bad_add") != NULL, "%s", e.msg);
    qf_graph_free(g);
}

/* ---- constant folding ---------------------------------------------------- */
static void fold_arith_chain(void) {
    REQUIRE_OPS(QF_OP_ADD, QF_OP_MUL);
    qf_graph *g = qf_graph_create();
    float a[4] = {1, 2, 3, 4}, b[2] = {10, 20};
    int x = input(g, "x", DIMS(2, 2));
    int ca = cnst(g, "a", QF_DT_F32, DIMS(2, 2), a);
    int cb = cnst(g, "b", QF_DT_F32, DIMS(2), b);
    int t = tmp(g, "t"), u = tmp(g, "u"), y = output(g, "y");
    NODE0(g, "Add", IDS(ca, cb), IDS(t));
    NODE0(g, "Mul", IDS(t, t), IDS(u));
    NODE0(g, "Add", IDS(x, u), IDS(y));
    CHECK(finish(g));
    int folded = -1;
    qf_err e;
    CHECK_OK(qf_pass_fold_constants(g, &folded, &e));
    CHECK_EQ_INT(folded, 2);
    CHECK_EQ_INT(g->n_nodes, 1);
    const float *ud = const_f32(g, u);
    CHECK(ud != NULL);
    CHECK(dims_are(&g->values[u], 2, DIMS(2, 2)));
    const float want[4] = {121, 484, 169, 576}; /* (a + b)^2 by hand */
    for (int i = 0; i < 4; i++) CHECK_NEAR(ud[i], want[i], 0);
    CHECK(g->values[u].producer == -1);
    CHECK_OK(qf_graph_toposort(g, &e)); /* still a valid graph */
    /* the now unread constants go with remove_dead */
    int removed = -1;
    CHECK_OK(qf_pass_remove_dead(g, &removed, &e));
    CHECK_EQ_INT(removed, 0);
    CHECK(g->values[ca].data == NULL && g->values[t].data == NULL);
    CHECK(g->values[u].data != NULL);
    qf_graph_free(g);
}

typedef struct fold_shape_case {
    const char *name;
    int64_t in_dims[3];
    int64_t gather_idx;
    int want_folded;
    int64_t want_cat[2]; /* Concat result when folded */
    int64_t want_y[2];
} fold_shape_case;

static const fold_shape_case fold_shape_cases[] = {
    {"static_batch", {2, 3, 4}, 0, 4, {2, -1}, {2, 12}},
    {"static_middle_dim", {2, 3, 4}, 1, 4, {3, -1}, {3, 8}},
    {"dynamic_batch", {-1, 3, 4}, 0, 0, {0, 0}, {-1, 12}},
};

static void fold_shape_chain_table(void) {
    REQUIRE_OPS(QF_OP_SHAPE, QF_OP_GATHER, QF_OP_UNSQUEEZE, QF_OP_CONCAT, QF_OP_RESHAPE);
    for (size_t c = 0; c < QF_ARRAY_LEN(fold_shape_cases); c++) {
        const fold_shape_case *tc = &fold_shape_cases[c];
        qf_graph *g = qf_graph_create();
        dims_count = 3;
        int x = input(g, "x", tc->in_dims);
        int y = build_flatten_chain(g, x, tc->gather_idx);
        CHECK(finish(g));
        int folded = -1;
        qf_err e;
        e.msg[0] = 0;
        CHECK_MSG(qf_pass_fold_constants(g, &folded, &e) == QF_OK, "%s: %s", tc->name, e.msg);
        CHECK_MSG(folded == tc->want_folded, "%s: folded %d", tc->name, folded);
        CHECK_EQ_INT(g->n_nodes, 5 - tc->want_folded);
        int cat = qf_graph_find_value(g, "cat");
        if (tc->want_folded) {
            CHECK(g->values[cat].flags & QF_VAL_CONST);
            const int64_t *cd = g->values[cat].data;
            CHECK(cd[0] == tc->want_cat[0] && cd[1] == tc->want_cat[1]);
        } else {
            CHECK(!(g->values[cat].flags & QF_VAL_CONST));
        }
        CHECK_OK(qf_pass_infer_shapes(g, &e));
        CHECK_MSG(dims_are(&g->values[y], 2, tc->want_y), "%s", tc->name);
        qf_graph_free(g);
    }
}

/* Outputs over 64 MiB are left to the runtime; graph outputs never fold. */
static void fold_skips_big_and_graph_outputs(void) {
    REQUIRE_OPS(QF_OP_ADD, QF_OP_NEG);
    qf_graph *g = qf_graph_create();
    float *a = calloc(4096, sizeof(float)), *b = calloc(4097, sizeof(float));
    int ca = cnst(g, "a", QF_DT_F32, DIMS(4096, 1), a);
    int cb = cnst(g, "b", QF_DT_F32, DIMS(1, 4097), b);
    free(a);
    free(b);
    float k = 2;
    int ck = cnst(g, "k", QF_DT_F32, DIMS(1), &k);
    int t = tmp(g, "big"), y = output(g, "y"), z = output(g, "z");
    NODE0(g, "Add", IDS(ca, cb), IDS(t)); /* 4096 x 4097 floats: 67 MB */
    NODE0(g, "Neg", IDS(t), IDS(y));
    NODE0(g, "Neg", IDS(ck), IDS(z)); /* all-constant, but a graph output */
    CHECK(finish(g));
    int folded = -1;
    qf_err e;
    CHECK_OK(qf_pass_fold_constants(g, &folded, &e));
    CHECK_EQ_INT(folded, 0);
    CHECK_EQ_INT(g->n_nodes, 3);
    CHECK(!(g->values[t].flags & QF_VAL_CONST));
    CHECK(!(g->values[z].flags & QF_VAL_CONST));
    qf_graph_free(g);
}

/* ---- Identity / Dropout removal ------------------------------------------ */
typedef struct ident_case {
    const char *name;
    int kind;          /* which graph, see build_ident */
    int want_removed;
    int want_nodes;
    bool runnable; /* the reference kernels can run the graph */
} ident_case;

/* kinds:
 * 0  x -> Neg -> Identity -> Abs -> y            (inner identity)
 * 1  x -> Neg -> t -> Identity -> y(out)         (producer renamed to y)
 * 2  x(in) -> Identity -> y(out)                 (kept)
 * 3  x -> Neg -> Identity -> Identity -> y(out)  (both go)
 * 4  x -> Neg -> Dropout(mask unused) -> Abs -> y
 * 5  x -> Neg -> Dropout(mask is a graph output) -> y   (kept)
 * 6  x -> Neg -> Dropout(training_mode = true) -> y     (kept)
 * 7  x -> Neg -> t(out) -> Identity -> y(out)    (kept: both names needed)
 * 8  x -> Neg -> Dropout(ratio, training_mode = false) -> Abs -> y */
static void build_ident(qf_graph *g, int kind, int x) {
    int t = tmp(g, "t"), u = tmp(g, "u");
    float ratio = 0.25f;
    uint8_t tm_true = 1, tm_false = 0;
    switch (kind) {
    case 0: {
        int y = output(g, "y");
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Identity", IDS(t), IDS(u));
        NODE0(g, "Abs", IDS(u), IDS(y));
        break;
    }
    case 1: {
        int y = output(g, "y");
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Identity", IDS(t), IDS(y));
        break;
    }
    case 2: {
        int y = output(g, "y");
        NODE0(g, "Identity", IDS(x), IDS(y));
        break;
    }
    case 3: {
        int y = output(g, "y");
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Identity", IDS(t), IDS(u));
        NODE0(g, "Identity", IDS(u), IDS(y));
        break;
    }
    case 4: {
        int mask = tmp(g, "mask"), y = output(g, "y");
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Dropout", IDS(t), IDS(u, mask));
        NODE0(g, "Abs", IDS(u), IDS(y));
        break;
    }
    case 5: {
        int y = output(g, "y"), mask = output(g, "mask");
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Dropout", IDS(t), IDS(y, mask));
        break;
    }
    case 6: {
        int y = output(g, "y");
        int r = cnst(g, "ratio", QF_DT_F32, DIMS(1), &ratio);
        dims_count = 0;
        int tmv = cnst(g, "tm", QF_DT_BOOL, dims_buf, &tm_true);
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Dropout", IDS(t, r, tmv), IDS(y));
        break;
    }
    case 7: {
        qf_graph_add_output(g, t);
        int y = output(g, "y");
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Identity", IDS(t), IDS(y));
        break;
    }
    case 8: {
        int y = output(g, "y");
        int r = cnst(g, "ratio", QF_DT_F32, DIMS(1), &ratio);
        dims_count = 0;
        int tmv = cnst(g, "tm", QF_DT_BOOL, dims_buf, &tm_false);
        NODE0(g, "Neg", IDS(x), IDS(t));
        NODE0(g, "Dropout", IDS(t, r, tmv), IDS(u));
        NODE0(g, "Abs", IDS(u), IDS(y));
        break;
    }
    }
}

/* Dropout in training mode is rejected by the inference kernel, so that
 * case only checks the structure. */
static const ident_case ident_cases[] = {
    {"inner_identity", 0, 1, 2, true},
    {"identity_to_output", 1, 1, 1, true},
    {"input_to_output_kept", 2, 0, 1, true},
    {"identity_chain_to_output", 3, 2, 1, true},
    {"dropout_mask_unused", 4, 1, 2, true},
    {"dropout_mask_output_kept", 5, 0, 2, true},
    {"dropout_training_kept", 6, 0, 2, false},
    {"both_outputs_kept", 7, 0, 2, true},
    {"dropout_training_false", 8, 1, 2, true},
};

static void remove_identity_table(void) {
    REQUIRE_OPS(QF_OP_NEG, QF_OP_ABS, QF_OP_IDENTITY, QF_OP_DROPOUT);
    for (size_t c = 0; c < QF_ARRAY_LEN(ident_cases); c++) {
        const ident_case *tc = &ident_cases[c];
        qf_graph *g = qf_graph_create();
        int x = input(g, "x", DIMS(2, 3));
        build_ident(g, tc->kind, x);
        CHECK_MSG(finish(g), "%s", tc->name);
        /* names of the graph outputs as declared */
        const char *names[4];
        int n_out = g->n_outputs;
        for (int k = 0; k < n_out; k++) names[k] = g->values[g->outputs[k]].name;
        qf_tensor xin = rand_tensor(2, DIMS(2, 3)), before[4], after[4];
        if (tc->runnable) CHECK_MSG(interp(g, &xin, before), "%s", tc->name);
        int removed = -1;
        qf_err e;
        e.msg[0] = 0;
        CHECK_MSG(qf_pass_remove_identity(g, &removed, &e) == QF_OK, "%s: %s", tc->name, e.msg);
        CHECK_MSG(removed == tc->want_removed, "%s: removed %d", tc->name, removed);
        CHECK_MSG(g->n_nodes == tc->want_nodes, "%s: %d nodes", tc->name, g->n_nodes);
        CHECK_MSG(qf_graph_toposort(g, &e) == QF_OK, "%s: %s", tc->name, e.msg);
        CHECK_EQ_INT(g->n_outputs, n_out);
        for (int k = 0; k < n_out; k++) {
            const qf_value *ov = &g->values[g->outputs[k]];
            CHECK_MSG(strcmp(ov->name, names[k]) == 0, "%s: output %d renamed", tc->name, k);
            CHECK_MSG(ov->producer >= 0 || (ov->flags & QF_VAL_INPUT), "%s", tc->name);
        }
        for (int k = 0; k < n_out && tc->runnable; k++) {
            if (k == 0) CHECK(interp(g, &xin, after));
            CHECK(same_shape(&before[k], &after[k]));
            size_t bytes = (size_t)qf_tensor_numel(&before[k]) * qf_dtype_size(before[k].dtype);
            CHECK_MSG(memcmp(before[k].data, after[k].data, bytes) == 0, "%s", tc->name);
            free(before[k].data);
            free(after[k].data);
        }
        free(xin.data);
        qf_graph_free(g);
    }
}

/* In kind 1 the Neg must now write the graph output value itself. */
static void remove_identity_renames_producer(void) {
    REQUIRE_OPS(QF_OP_NEG, QF_OP_IDENTITY);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(2, 3));
    build_ident(g, 1, x);
    CHECK(finish(g));
    int removed = -1, y = g->outputs[0];
    qf_err e;
    CHECK_OK(qf_pass_remove_identity(g, &removed, &e));
    CHECK_EQ_INT(removed, 1);
    CHECK_EQ_INT(g->outputs[0], y);
    CHECK(g->nodes[0].op == QF_OP_NEG && g->nodes[0].outputs[0] == y);
    CHECK_EQ_INT(g->values[y].producer, 0);
    qf_graph_free(g);
}

/* ---- BatchNorm folding ---------------------------------------------------- */
typedef struct bn_case {
    const char *name;
    bool gemm;       /* else Conv */
    int group;       /* Conv */
    bool bias;       /* Conv B / Gemm C present */
    bool trans_b;    /* Gemm */
    float alpha, beta;
    bool shared_w;   /* a second Conv/Gemm reads the same weights */
    bool extra_reader; /* the Conv output is read by another node: no fold */
    bool c_scalar;   /* Gemm C has one element, broadcast to every column */
    int want_folded;
} bn_case;

static const bn_case bn_cases[] = {
    {.name = "conv_nobias", .group = 1, .alpha = 1, .beta = 1, .want_folded = 1},
    {.name = "conv_bias", .group = 1, .bias = true, .alpha = 1, .beta = 1, .want_folded = 1},
    {.name = "conv_depthwise_bias", .group = 3, .bias = true, .alpha = 1, .beta = 1,
     .want_folded = 1},
    {.name = "conv_shared_weights", .group = 1, .bias = true, .alpha = 1, .beta = 1,
     .shared_w = true, .want_folded = 1},
    {.name = "conv_output_also_read", .group = 1, .bias = true, .alpha = 1, .beta = 1,
     .extra_reader = true, .want_folded = 0},
    {.name = "gemm_transB_C_alpha_beta", .gemm = true, .bias = true, .trans_b = true,
     .alpha = 0.5f, .beta = 2.0f, .want_folded = 1},
    {.name = "gemm_noC", .gemm = true, .alpha = 1.5f, .beta = 1, .want_folded = 1},
    {.name = "gemm_beta0", .gemm = true, .bias = true, .alpha = 1, .beta = 0,
     .want_folded = 1},
    {.name = "gemm_scalar_C", .gemm = true, .bias = true, .c_scalar = true, .alpha = 1,
     .beta = 0.75f, .want_folded = 1},
    {.name = "gemm_shared_weights", .gemm = true, .bias = true, .trans_b = true, .alpha = 1,
     .beta = 1, .shared_w = true, .want_folded = 1},
};

enum { BN_C = 6, BN_CIN = 3, BN_K = 5 };

static void build_bn_graph(qf_graph *g, const bn_case *tc, int x) {
    static int64_t grp_pads[] = {1, 1, 1, 1};
    int c = BN_C;
    float w[BN_C * BN_CIN * 9], bias[BN_C], gw[BN_C * BN_K];
    float scale[BN_C], beta[BN_C], mean[BN_C], var[BN_C];
    for (size_t i = 0; i < QF_ARRAY_LEN(w); i++) w[i] = frand();
    for (size_t i = 0; i < QF_ARRAY_LEN(gw); i++) gw[i] = frand();
    for (int i = 0; i < c; i++) {
        bias[i] = frand();
        scale[i] = 1.5f + frand();
        beta[i] = frand();
        mean[i] = 0.5f * frand();
        var[i] = 0.3f + 0.5f * (frand() + 1.0f);
    }
    int wv, yv = tmp(g, "pre_bn"), out = output(g, "y");
    int bn_out = tmp(g, "bn_out");
    int in[3], n_in = 2;
    qf_attr bn_attr[] = {attr_f("epsilon", 1e-3f)};
    if (!tc->gemm) {
        int cin_g = BN_CIN / tc->group;
        wv = cnst(g, "W", QF_DT_F32, DIMS(c, cin_g, 3, 3), w);
        in[0] = x;
        in[1] = wv;
        if (tc->bias) in[n_in++] = cnst(g, "B", QF_DT_F32, DIMS(c), bias);
        qf_attr a[] = {attr_ints("kernel_shape", k3, 2), attr_ints("pads", grp_pads, 4),
                       attr_ints("strides", stride1, 2), attr_i("group", tc->group)};
        qf_graph_add_node(g, "conv", "Conv", "", OPSET, in, n_in, IDS(yv), a, 4);
        if (tc->shared_w) {
            int o2 = output(g, "y2");
            qf_graph_add_node(g, "conv2", "Conv", "", OPSET, in, n_in, IDS(o2), a, 4);
        }
    } else {
        if (tc->trans_b)
            wv = cnst(g, "W", QF_DT_F32, DIMS(c, BN_K), gw);
        else
            wv = cnst(g, "W", QF_DT_F32, DIMS(BN_K, c), gw);
        in[0] = x;
        in[1] = wv;
        if (tc->bias && tc->c_scalar)
            in[n_in++] = cnst(g, "C", QF_DT_F32, DIMS(1), bias);
        else if (tc->bias)
            in[n_in++] = cnst(g, "C", QF_DT_F32, DIMS(1, c), bias);
        qf_attr a[] = {attr_i("transB", tc->trans_b), attr_f("alpha", tc->alpha),
                       attr_f("beta", tc->beta)};
        qf_graph_add_node(g, "gemm", "Gemm", "", OPSET, in, n_in, IDS(yv), a, 3);
        if (tc->shared_w) {
            int o2 = output(g, "y2");
            qf_graph_add_node(g, "gemm2", "Gemm", "", OPSET, in, n_in, IDS(o2), a, 3);
        }
    }
    int s = cnst(g, "bn_scale", QF_DT_F32, DIMS(c), scale);
    int b = cnst(g, "bn_bias", QF_DT_F32, DIMS(c), beta);
    int m = cnst(g, "bn_mean", QF_DT_F32, DIMS(c), mean);
    int v = cnst(g, "bn_var", QF_DT_F32, DIMS(c), var);
    qf_graph_add_node(g, "bn", "BatchNormalization", "", OPSET, IDS(yv, s, b, m, v), IDS(bn_out),
                      bn_attr, 1);
    NODE0(g, "Relu", IDS(bn_out), IDS(out));
    if (tc->extra_reader) {
        int o3 = output(g, "y3");
        NODE0(g, "Relu", IDS(yv), IDS(o3));
    }
}

static void fold_batchnorm_table(void) {
    REQUIRE_OPS(QF_OP_CONV, QF_OP_GEMM, QF_OP_BATCH_NORM, QF_OP_RELU);
    for (size_t ci = 0; ci < QF_ARRAY_LEN(bn_cases); ci++) {
        const bn_case *tc = &bn_cases[ci];
        qf_graph *g = qf_graph_create();
        qf_tensor xin = tc->gemm ? rand_tensor(2, DIMS(4, BN_K))
                                 : rand_tensor(4, DIMS(2, BN_CIN, 5, 5));
        dims_count = xin.rank;
        int x = input(g, "x", xin.dims);
        build_bn_graph(g, tc, x);
        CHECK_MSG(finish(g), "%s", tc->name);
        int n_out = g->n_outputs, nodes = g->n_nodes;
        int bn_out = qf_graph_find_value(g, "bn_out");
        qf_tensor before[3], after[3];
        CHECK_MSG(interp(g, &xin, before), "%s", tc->name);
        int folded = -1;
        qf_err e;
        e.msg[0] = 0;
        CHECK_MSG(qf_pass_fold_batchnorm(g, &folded, &e) == QF_OK, "%s: %s", tc->name, e.msg);
        CHECK_MSG(folded == tc->want_folded, "%s: folded %d", tc->name, folded);
        CHECK_EQ_INT(g->n_nodes, nodes - folded);
        CHECK_MSG(qf_graph_toposort(g, &e) == QF_OK, "%s: %s", tc->name, e.msg);
        if (folded) {
            /* the Conv/Gemm now writes the BN's output value, with a bias */
            const qf_value *bo = &g->values[bn_out];
            CHECK(bo->producer >= 0);
            const qf_node *p = &g->nodes[bo->producer];
            CHECK(p->op == (tc->gemm ? QF_OP_GEMM : QF_OP_CONV));
            CHECK_EQ_INT(p->n_inputs, 3);
            CHECK(const_f32(g, p->inputs[2]) != NULL);
            CHECK_EQ_INT(qf_node_attr_float(p, "beta", 1.0f), 1);
        }
        CHECK(interp(g, &xin, after));
        for (int k = 0; k < n_out; k++) {
            CHECK(same_shape(&before[k], &after[k]));
            double err = norm_err(&after[k], &before[k]);
            CHECK_MSG(err <= 1e-5, "%s: output %d error %g", tc->name, k, err);
            free(before[k].data);
            free(after[k].data);
        }
        free(xin.data);
        qf_graph_free(g);
    }
}

/* The folded bias against the formula, computed here in double: with no
 * conv bias, b' = beta - mean * scale / sqrt(var + eps). */
static void fold_batchnorm_bias_formula(void) {
    REQUIRE_OPS(QF_OP_CONV, QF_OP_BATCH_NORM, QF_OP_RELU);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(1, BN_CIN, 5, 5));
    build_bn_graph(g, &bn_cases[0], x);
    CHECK(finish(g));
    const qf_node *bn = &g->nodes[1];
    CHECK(bn->op == QF_OP_BATCH_NORM);
    float sc[BN_C], be[BN_C], me[BN_C], va[BN_C], w0[BN_C];
    memcpy(sc, g->values[bn->inputs[1]].data, sizeof sc);
    memcpy(be, g->values[bn->inputs[2]].data, sizeof be);
    memcpy(me, g->values[bn->inputs[3]].data, sizeof me);
    memcpy(va, g->values[bn->inputs[4]].data, sizeof va);
    const float *w = const_f32(g, g->nodes[0].inputs[1]);
    for (int c = 0; c < BN_C; c++) w0[c] = w[c * BN_CIN * 9]; /* first tap per channel */
    int folded = -1;
    qf_err e;
    CHECK_OK(qf_pass_fold_batchnorm(g, &folded, &e));
    CHECK_EQ_INT(folded, 1);
    const float *nb = const_f32(g, g->nodes[0].inputs[2]);
    const float *nw = const_f32(g, g->nodes[0].inputs[1]);
    CHECK(nb && nw);
    for (int c = 0; c < BN_C; c++) {
        double s = sc[c] / sqrt((double)va[c] + 1e-3);
        CHECK_NEAR(nb[c], be[c] - me[c] * s, 1e-5);
        CHECK_NEAR(nw[c * BN_CIN * 9], w0[c] * s, 1e-5);
    }
    qf_graph_free(g);
}

/* ---- dead-node removal ------------------------------------------------------ */
static void remove_dead_counts(void) {
    REQUIRE_OPS(QF_OP_NEG, QF_OP_ABS, QF_OP_ADD);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(2, 2));
    float kd[4] = {1, 2, 3, 4};
    int k_used = cnst(g, "k_used", QF_DT_F32, DIMS(2, 2), kd);
    int k_dead = cnst(g, "k_dead", QF_DT_F32, DIMS(2, 2), kd);
    int k_orphan = cnst(g, "k_orphan", QF_DT_F32, DIMS(2, 2), kd);
    int a = tmp(g, "a"), b = tmp(g, "b"), c = tmp(g, "c"), y = output(g, "y");
    NODE0(g, "Add", IDS(x, k_used), IDS(a));
    NODE0(g, "Neg", IDS(a), IDS(y));
    NODE0(g, "Abs", IDS(x), IDS(b));         /* dead */
    NODE0(g, "Add", IDS(b, k_dead), IDS(c)); /* dead */
    CHECK(finish(g));
    int removed = -1;
    qf_err e;
    CHECK_OK(qf_pass_remove_dead(g, &removed, &e));
    CHECK_EQ_INT(removed, 2);
    CHECK_EQ_INT(g->n_nodes, 2);
    CHECK(g->values[k_used].data != NULL && (g->values[k_used].flags & QF_VAL_CONST));
    CHECK(g->values[k_dead].data == NULL && g->values[k_dead].flags == 0);
    CHECK(g->values[k_orphan].data == NULL && g->values[k_orphan].flags == 0);
    CHECK(g->values[x].flags & QF_VAL_INPUT);
    CHECK_OK(qf_graph_toposort(g, &e));
    /* nothing more to do the second time */
    CHECK_OK(qf_pass_remove_dead(g, &removed, &e));
    CHECK_EQ_INT(removed, 0);
    qf_tensor xin = rand_tensor(2, DIMS(2, 2)), yo;
    CHECK(interp(g, &xin, &yo));
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(((float *)yo.data)[i], -(((float *)xin.data)[i] + kd[i]), 0);
    free(xin.data);
    free(yo.data);
    qf_graph_free(g);
}

/* ---- the whole pipeline ----------------------------------------------------- */
/* x -> Conv -> Identity -> BN -> Relu -> Reshape(shape from a constant
 * Shape chain) -> Gemm -> Dropout -> y, plus a dead branch. */
static void optimize_pipeline(void) {
    REQUIRE_OPS(QF_OP_CONV, QF_OP_BATCH_NORM, QF_OP_RELU, QF_OP_GEMM, QF_OP_IDENTITY,
                QF_OP_DROPOUT, QF_OP_SHAPE, QF_OP_GATHER, QF_OP_UNSQUEEZE, QF_OP_CONCAT,
                QF_OP_RESHAPE, QF_OP_ABS);
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", DIMS(2, 3, 4, 4));
    float w[4 * 3 * 9], gw[3 * 64], st[4][4];
    for (size_t i = 0; i < QF_ARRAY_LEN(w); i++) w[i] = frand();
    for (size_t i = 0; i < QF_ARRAY_LEN(gw); i++) gw[i] = frand();
    for (int i = 0; i < 4; i++) {
        st[0][i] = 1 + 0.5f * frand();
        st[1][i] = frand();
        st[2][i] = frand();
        st[3][i] = 1 + 0.5f * frand();
    }
    int wv = cnst(g, "W", QF_DT_F32, DIMS(4, 3, 3, 3), w);
    int gv = cnst(g, "G", QF_DT_F32, DIMS(3, 64), gw);
    int bs = cnst(g, "s", QF_DT_F32, DIMS(4), st[0]);
    int bb = cnst(g, "b", QF_DT_F32, DIMS(4), st[1]);
    int bm = cnst(g, "m", QF_DT_F32, DIMS(4), st[2]);
    int bv = cnst(g, "v", QF_DT_F32, DIMS(4), st[3]);
    int64_t idx0 = 0, m1 = -1, axes0 = 0;
    dims_count = 0;
    int ci = cnst(g, "i0", QF_DT_I64, dims_buf, &idx0);
    int cm = cnst(g, "m1", QF_DT_I64, DIMS(1), &m1);
    int ca = cnst(g, "ax", QF_DT_I64, DIMS(1), &axes0);
    int c1 = tmp(g, "c1"), c2 = tmp(g, "c2"), c3 = tmp(g, "c3"), c4 = tmp(g, "c4");
    int sh = tmp(g, "sh"), g0 = tmp(g, "g0"), un = tmp(g, "un"), cat = tmp(g, "cat");
    int fl = tmp(g, "fl"), gm = tmp(g, "gm"), dead = tmp(g, "dead"), y = output(g, "y");
    qf_attr ca_[] = {attr_ints("kernel_shape", k3, 2), attr_ints("pads", pad1, 4)};
    NODEA(g, "Conv", IDS(x, wv), IDS(c1), ca_);
    NODE0(g, "Identity", IDS(c1), IDS(c2));
    NODE0(g, "BatchNormalization", IDS(c2, bs, bb, bm, bv), IDS(c3));
    NODE0(g, "Relu", IDS(c3), IDS(c4));
    NODE0(g, "Shape", IDS(c4), IDS(sh));
    NODE0(g, "Gather", IDS(sh, ci), IDS(g0));
    NODE0(g, "Unsqueeze", IDS(g0, ca), IDS(un));
    qf_attr cat_axis[] = {attr_i("axis", 0)};
    NODEA(g, "Concat", IDS(un, cm), IDS(cat), cat_axis);
    NODE0(g, "Reshape", IDS(c4, cat), IDS(fl));
    qf_attr ga[] = {attr_i("transB", 1)};
    NODEA(g, "Gemm", IDS(fl, gv), IDS(gm), ga);
    NODE0(g, "Dropout", IDS(gm), IDS(y));
    NODE0(g, "Abs", IDS(c4), IDS(dead));
    CHECK(finish(g));
    CHECK_EQ_INT(g->n_nodes, 12);
    qf_tensor xin = rand_tensor(4, DIMS(2, 3, 4, 4)), before, after;
    CHECK(interp(g, &xin, &before));
    qf_err e;
    e.msg[0] = 0;
    CHECK_MSG(qf_pass_optimize(g, &e) == QF_OK, "%s", e.msg);
    /* left: Conv (BN folded in), Relu, Reshape, Gemm */
    CHECK_EQ_INT(g->n_nodes, 4);
    CHECK(g->nodes[0].op == QF_OP_CONV && g->nodes[0].n_inputs == 3);
    CHECK(g->nodes[1].op == QF_OP_RELU && g->nodes[2].op == QF_OP_RESHAPE);
    CHECK(g->nodes[3].op == QF_OP_GEMM && g->nodes[3].outputs[0] == y);
    CHECK(strcmp(g->values[g->outputs[0]].name, "y") == 0);
    CHECK(g->values[bm].data == NULL); /* BN statistics freed */
    CHECK_OK(qf_graph_toposort(g, &e));
    CHECK(interp(g, &xin, &after));
    CHECK(same_shape(&before, &after) && after.dims[0] == 2 && after.dims[1] == 3);
    double err = norm_err(&after, &before);
    CHECK_MSG(err <= 1e-5, "error %g", err);
    free(before.data);
    free(after.data);
    free(xin.data);
    qf_graph_free(g);
}

QT_MAIN(QT_CASE(infer_shapes_table), QT_CASE(infer_flatten_chain_intermediates),
        QT_CASE(infer_unsupported_op), QT_CASE(infer_shape_mismatch), QT_CASE(fold_arith_chain),
        QT_CASE(fold_shape_chain_table), QT_CASE(fold_skips_big_and_graph_outputs),
        QT_CASE(remove_identity_table), QT_CASE(remove_identity_renames_producer),
        QT_CASE(fold_batchnorm_table), QT_CASE(fold_batchnorm_bias_formula),
        QT_CASE(remove_dead_counts), QT_CASE(optimize_pipeline))
