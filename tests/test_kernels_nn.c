/* test_kernels_nn.c - float reference kernels of the heavy NN ops: sgemm,
 * Conv, ConvTranspose, Gemm, MatMul, MaxPool, AveragePool, Global*Pool,
 * BatchNormalization, LayerNormalization, Softmax, LogSoftmax, Resize.
 *
 * Each op runs through the registry as the runtime drives it (parse on a
 * node of a real graph, infer, scratch, run) with outputs and scratch fenced
 * by sentinel bytes, so a kernel that writes past what it declared fails.
 * Expected values come from naive loops written separately here (direct
 * 7-loop convolution, scatter transposed convolution, window pooling, ...)
 * evaluated in double, with expected output shapes and pads worked out by
 * hand in the case tables, plus a few hand-computed examples from the ONNX
 * operator documentation.
 */
#include <float.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "kernels/ref/sgemm.h"
#include "qtest.h"

/* Referencing the definitions pulls their objects out of the static library
 * (the registry refers to them only weakly). */
extern const qf_op_def qf_opdef_conv, qf_opdef_conv_transpose, qf_opdef_gemm, qf_opdef_matmul,
    qf_opdef_max_pool, qf_opdef_average_pool, qf_opdef_global_average_pool,
    qf_opdef_global_max_pool, qf_opdef_batch_norm, qf_opdef_layer_norm, qf_opdef_softmax,
    qf_opdef_log_softmax, qf_opdef_resize;

/* ---- small utilities ---------------------------------------------------- */
static uint32_t rng_state = 12345u;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)(rng_state >> 8) / (float)(1u << 23) - 1.0f;
}
static float *rand_buf(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static int64_t prod(const int64_t *d, int r) {
    int64_t p = 1;
    for (int i = 0; i < r; i++)
        p *= d[i];
    return p;
}

static qf_tensor tens(qf_dtype dt, int rank, const int64_t *dims, void *data) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.data = data;
    return t;
}
static qf_tensor f32t(int rank, const int64_t *dims, float *data) {
    return tens(QF_DT_F32, rank, dims, data);
}
static qf_tensor omitted(void) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    return t;
}

/* attribute builders */
static qf_attr a_int(const char *name, int64_t v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INT;
    a.i = v;
    return a;
}
static qf_attr a_float(const char *name, float v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_FLOAT;
    a.f = v;
    return a;
}
static qf_attr a_str(const char *name, const char *v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_STRING;
    a.s = v;
    return a;
}
static qf_attr a_ints(const char *name, int64_t *v, int n) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INTS;
    a.ints = v;
    a.n = n;
    return a;
}

/* |got - want| <= tol * (1 + |want|) everywhere */
static bool close_all(const float *got, const double *want, int64_t n, double tol, int64_t *bad) {
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol * (1.0 + fabs(want[i])))) {
            *bad = i;
            return false;
        }
    }
    return true;
}

#define CHECK_CLOSE(got, want, n, tol)                                                             \
    do {                                                                                           \
        int64_t bad_ = -1;                                                                         \
        CHECK_MSG(close_all(got, want, n, tol, &bad_), "element %lld: got %.9g want %.9g",         \
                  (long long)bad_, (double)(got)[bad_], (want)[bad_]);                             \
    } while (0)

/* ---- harness: one node through parse / infer / scratch / run ----------- */
#define MAX_IO 6
#define FENCE 64
#define FENCE_BYTE 0x5C

typedef struct op_run {
    qf_graph *g;
    qf_node *n;
    const qf_op_def *def;
    qf_tensor out[MAX_IO];
    unsigned char *buf[MAX_IO];
    qf_err err;
} op_run;

static void op_free(op_run *r) {
    for (int j = 0; j < MAX_IO; j++)
        free(r->buf[j]);
    qf_graph_free(r->g);
    memset(r, 0, sizeof *r);
}

static bool fence_ok(const unsigned char *p) {
    for (int i = 0; i < FENCE; i++)
        if (p[i] != FENCE_BYTE) return false;
    return true;
}

/* Build a one-node graph for op_type and parse it. in[i].dtype == UNDEF
 * marks an omitted input; out_mask bit j clear marks output j omitted. */
static qf_status op_parse(op_run *r, const char *op_type, int opset, const qf_attr *attrs,
                          int n_attrs, const qf_tensor *in, int n_in, int n_out,
                          uint32_t out_mask) {
    memset(r, 0, sizeof *r);
    r->g = qf_graph_create();
    int ins[MAX_IO], outs[MAX_IO];
    for (int i = 0; i < n_in; i++) {
        char name[8];
        snprintf(name, sizeof name, "in%d", i);
        ins[i] = in[i].dtype == QF_DT_UNDEF
                     ? -1
                     : qf_graph_add_value(r->g, name, in[i].dtype, in[i].rank, in[i].dims);
    }
    for (int j = 0; j < n_out; j++) {
        char name[8];
        snprintf(name, sizeof name, "out%d", j);
        outs[j] = (out_mask >> j) & 1 ? qf_graph_add_value(r->g, name, QF_DT_UNDEF, -1, NULL) : -1;
    }
    int ni =
        qf_graph_add_node(r->g, "nut", op_type, "", opset, ins, n_in, outs, n_out, attrs, n_attrs);
    r->n = &r->g->nodes[ni];
    r->def = qf_op_get(r->n->op);
    if (!r->def) return qf_errf(&r->err, QF_ERR_UNSUPPORTED, "op %s not registered", op_type);
    return r->def->parse ? r->def->parse(r->g, r->n, &r->err) : QF_OK;
}

/* Infer, allocate fenced outputs and scratch, run, check the fences. */
static qf_status op_exec(op_run *r, qf_tensor *in, int n_in) {
    qf_node *n = r->n;
    int n_out = n->n_outputs;
    qf_status s = r->def->infer(n, in, n_in, r->out, n_out, &r->err);
    if (s) return s;
    for (int j = 0; j < n_out; j++) {
        if (n->outputs[j] < 0) {
            r->out[j].data = NULL;
            continue;
        }
        size_t bytes = (size_t)qf_tensor_numel(&r->out[j]) * qf_dtype_size(r->out[j].dtype);
        r->buf[j] = malloc(bytes + FENCE);
        memset(r->buf[j], 0x7F, bytes); /* garbage a kernel must overwrite */
        memset(r->buf[j] + bytes, FENCE_BYTE, FENCE);
        r->out[j].data = r->buf[j];
    }
    size_t sb = r->def->scratch ? r->def->scratch(n, in, n_in, r->out, n_out) : 0;
    unsigned char *scratch = malloc(sb + FENCE);
    memset(scratch, FENCE_BYTE, sb + FENCE);
    s = r->def->run(NULL, n, in, n_in, r->out, n_out, sb ? scratch : NULL, &r->err);
    bool ok = fence_ok(scratch + sb);
    free(scratch);
    if (s) return s;
    if (!ok) return qf_errf(&r->err, QF_ERR_INTERNAL, "scratch overrun (declared %zu)", sb);
    for (int j = 0; j < n_out; j++) {
        if (!r->buf[j]) continue;
        size_t bytes = (size_t)qf_tensor_numel(&r->out[j]) * qf_dtype_size(r->out[j].dtype);
        if (!fence_ok(r->buf[j] + bytes))
            return qf_errf(&r->err, QF_ERR_INTERNAL, "output %d overrun", j);
    }
    return QF_OK;
}

static qf_status op_call(op_run *r, const char *op_type, int opset, const qf_attr *attrs,
                         int n_attrs, qf_tensor *in, int n_in, int n_out) {
    qf_status s = op_parse(r, op_type, opset, attrs, n_attrs, in, n_in, n_out, 0xFFu);
    return s ? s : op_exec(r, in, n_in);
}

#define CHECK_RUN(expr, r)                                                                         \
    do {                                                                                           \
        qf_status st_ = (expr);                                                                    \
        CHECK_MSG(st_ == QF_OK, "status %s: %s", qf_status_str(st_), (r)->err.msg);                \
    } while (0)

/* ---- registry ------------------------------------------------------------ */
static void test_registry(void) {
    static const struct {
        qf_op_id id;
        const qf_op_def *def;
    } ops[] = {
        {QF_OP_CONV, &qf_opdef_conv},
        {QF_OP_CONV_TRANSPOSE, &qf_opdef_conv_transpose},
        {QF_OP_GEMM, &qf_opdef_gemm},
        {QF_OP_MATMUL, &qf_opdef_matmul},
        {QF_OP_MAX_POOL, &qf_opdef_max_pool},
        {QF_OP_AVERAGE_POOL, &qf_opdef_average_pool},
        {QF_OP_GLOBAL_AVERAGE_POOL, &qf_opdef_global_average_pool},
        {QF_OP_GLOBAL_MAX_POOL, &qf_opdef_global_max_pool},
        {QF_OP_BATCH_NORM, &qf_opdef_batch_norm},
        {QF_OP_LAYER_NORM, &qf_opdef_layer_norm},
        {QF_OP_SOFTMAX, &qf_opdef_softmax},
        {QF_OP_LOG_SOFTMAX, &qf_opdef_log_softmax},
        {QF_OP_RESIZE, &qf_opdef_resize},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        CHECK(qf_op_get(ops[i].id) == ops[i].def);
        CHECK(strcmp(ops[i].def->name, qf_op_name(ops[i].id)) == 0);
        CHECK(ops[i].def->infer && ops[i].def->run);
    }
}

/* ---- sgemm ---------------------------------------------------------------- */
static void test_sgemm(void) {
    static const struct {
        int m, n, k;
        bool ta, tb;
        float alpha, beta;
    } cases[] = {
        {1, 1, 1, false, false, 1.0f, 0.0f},    {5, 7, 3, false, false, 1.0f, 0.0f},
        {6, 16, 8, true, false, 0.5f, 1.0f},    {7, 17, 9, false, true, 1.0f, -2.0f},
        {13, 33, 300, true, true, 1.5f, 0.25f}, {130, 20, 40, false, false, 1.0f, 1.0f},
        {3, 2100, 5, false, true, 1.0f, 0.0f},  {121, 19, 257, true, false, -1.0f, 0.5f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int m = cases[ci].m, n = cases[ci].n, k = cases[ci].k, ldc = n + 3;
        float *a = rand_buf((int64_t)m * k), *b = rand_buf((int64_t)k * n);
        float *c = rand_buf((int64_t)m * ldc);
        double *want = malloc(sizeof(double) * (size_t)m * (size_t)ldc);
        if (cases[ci].beta == 0.0f)
            for (int i = 0; i < m * ldc; i++)
                c[i] = NAN; /* beta 0 must not read C */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++) {
                double acc = 0.0;
                for (int p = 0; p < k && j < n; p++) {
                    double av = cases[ci].ta ? a[p * m + i] : a[i * k + p];
                    double bv = cases[ci].tb ? b[j * k + p] : b[p * n + j];
                    acc += av * bv;
                }
                double old = c[i * ldc + j];
                want[i * ldc + j] = j >= n ? old
                                    : cases[ci].beta == 0.0f
                                        ? cases[ci].alpha * acc
                                        : cases[ci].alpha * acc + cases[ci].beta * old;
            }
        void *scratch = malloc(qf_sgemm_f32_scratch((size_t)m, (size_t)n, (size_t)k));
        qf_sgemm_f32(cases[ci].ta, cases[ci].tb, (size_t)m, (size_t)n, (size_t)k, cases[ci].alpha,
                     a, cases[ci].ta ? (size_t)m : (size_t)k, b,
                     cases[ci].tb ? (size_t)k : (size_t)n, cases[ci].beta, c, (size_t)ldc, scratch);
        bool ok = true;
        int64_t bad = -1;
        for (int i = 0; i < m && ok; i++) {
            /* the padding columns past n must be untouched (NaN stays NaN) */
            for (int j = n; j < ldc; j++)
                if (!(isnan(want[i * ldc + j]) ? isnan(c[i * ldc + j])
                                               : c[i * ldc + j] == want[i * ldc + j]))
                    ok = false;
            if (!close_all(c + i * ldc, want + i * ldc, n, 1e-5, &bad)) ok = false;
        }
        free(a);
        free(b);
        free(c);
        free(want);
        free(scratch);
        CHECK_MSG(ok, "sgemm case %zu (bad %lld)", ci, (long long)bad);
    }
}

/* ---- Conv ----------------------------------------------------------------- */
typedef struct conv_case {
    const char *name;
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3];
    int64_t strides[3], dil[3]; /* 0 = attribute omitted */
    int64_t pads[6];            /* used when has_pads */
    bool has_pads, bias, kernel_attr;
    const char *auto_pad;
    int64_t out[3], pb[3]; /* expected output size and begin padding */
} conv_case;

static const conv_case conv_cases[] = {
    {"3x3 pad1",
     2,
     1,
     3,
     4,
     1,
     {6, 7},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     true,
     true,
     true,
     NULL,
     {6, 7},
     {1, 1}},
    {"stride2 asym pads",
     2,
     2,
     2,
     3,
     1,
     {7, 5},
     {3, 3},
     {2, 2},
     {0},
     {1, 0, 1, 0},
     true,
     false,
     false,
     NULL,
     {4, 2},
     {1, 0}},
    {"dilation2",
     2,
     1,
     2,
     2,
     1,
     {9, 8},
     {3, 2},
     {1, 2},
     {2, 3},
     {2, 1, 0, 2},
     true,
     true,
     true,
     NULL,
     {7, 4},
     {2, 1}},
    {"groups2",
     2,
     1,
     4,
     6,
     2,
     {5, 6},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     true,
     true,
     false,
     NULL,
     {5, 6},
     {1, 1}},
    {"depthwise",
     2,
     2,
     5,
     5,
     5,
     {8, 9},
     {3, 3},
     {1, 1},
     {0},
     {1, 1, 1, 1},
     true,
     true,
     false,
     NULL,
     {8, 9},
     {1, 1}},
    {"depthwise stride2",
     2,
     1,
     4,
     4,
     4,
     {9, 10},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     true,
     false,
     false,
     NULL,
     {5, 5},
     {1, 1}},
    {"depthwise x2 dil",
     2,
     1,
     3,
     6,
     3,
     {7, 7},
     {3, 3},
     {0},
     {2, 2},
     {2, 2, 2, 2},
     true,
     true,
     false,
     NULL,
     {7, 7},
     {2, 2}},
    {"pointwise",
     2,
     2,
     8,
     5,
     1,
     {4, 6},
     {1, 1},
     {0},
     {0},
     {0},
     false,
     true,
     false,
     NULL,
     {4, 6},
     {0, 0}},
    {"1x1 stride2",
     2,
     1,
     3,
     4,
     1,
     {5, 6},
     {1, 1},
     {2, 2},
     {0},
     {0},
     false,
     false,
     false,
     NULL,
     {3, 3},
     {0, 0}},
    {"same_upper s2",
     2,
     1,
     2,
     3,
     1,
     {5, 6},
     {3, 3},
     {2, 2},
     {0},
     {0},
     false,
     true,
     false,
     "SAME_UPPER",
     {3, 3},
     {1, 0}},
    {"same_lower s2",
     2,
     1,
     2,
     3,
     1,
     {5, 6},
     {3, 3},
     {2, 2},
     {0},
     {0},
     false,
     false,
     false,
     "SAME_LOWER",
     {3, 3},
     {1, 1}},
    {"same_upper even k",
     2,
     1,
     2,
     2,
     1,
     {5, 5},
     {4, 2},
     {0},
     {0},
     {0},
     false,
     false,
     false,
     "SAME_UPPER",
     {5, 5},
     {1, 0}},
    {"valid",
     2,
     1,
     2,
     3,
     1,
     {6, 7},
     {3, 2},
     {2, 3},
     {0},
     {0},
     false,
     true,
     false,
     "VALID",
     {2, 2},
     {0, 0}},
    {"1-D", 1, 2, 3, 4, 1, {11}, {3}, {2}, {2}, {1, 2}, true, true, false, NULL, {5}, {1}},
    {"1-D groups", 1, 1, 4, 2, 2, {9}, {2}, {0}, {0}, {0}, false, false, false, NULL, {8}, {0}},
    {"3-D",
     3,
     1,
     2,
     3,
     1,
     {4, 5, 6},
     {2, 3, 3},
     {1, 2, 1},
     {0},
     {1, 1, 0, 0, 1, 2},
     true,
     true,
     true,
     NULL,
     {4, 3, 6},
     {1, 1, 0}},
    {"3-D depthwise",
     3,
     1,
     3,
     3,
     3,
     {3, 4, 5},
     {3, 3, 3},
     {0},
     {0},
     {1, 1, 1, 1, 1, 1},
     true,
     false,
     false,
     NULL,
     {3, 4, 5},
     {1, 1, 1}},
    /* K * Wo * rows is over the 2M-float band budget: several im2col bands */
    {"banded",
     2,
     1,
     16,
     3,
     1,
     {130, 128},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     true,
     true,
     false,
     NULL,
     {130, 128},
     {1, 1}},
};

/* direct convolution in double, geometry from the case table */
static double *conv_ref(const conv_case *cc, const float *x, const float *w, const float *b) {
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, out[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
    int off = 3 - cc->nsp;
    for (int i = 0; i < cc->nsp; i++) {
        in[off + i] = cc->in[i];
        k[off + i] = cc->k[i];
        out[off + i] = cc->out[i];
        s[off + i] = cc->strides[i] ? cc->strides[i] : 1;
        d[off + i] = cc->dil[i] ? cc->dil[i] : 1;
        pb[off + i] = cc->pb[i];
    }
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    int64_t osz = out[0] * out[1] * out[2], isz = in[0] * in[1] * in[2], ksz = k[0] * k[1] * k[2];
    double *y = malloc(sizeof(double) * (size_t)(cc->n * cc->m * osz));
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++)
            for (int64_t o0 = 0; o0 < out[0]; o0++)
                for (int64_t o1 = 0; o1 < out[1]; o1++)
                    for (int64_t o2 = 0; o2 < out[2]; o2++) {
                        double acc = b ? b[m] : 0.0;
                        int64_t grp = m / mg;
                        for (int64_t c = 0; c < cg; c++)
                            for (int64_t k0 = 0; k0 < k[0]; k0++)
                                for (int64_t k1 = 0; k1 < k[1]; k1++)
                                    for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                        int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
                                        int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
                                        int64_t i2 = o2 * s[2] - pb[2] + k2 * d[2];
                                        if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] ||
                                            i2 < 0 || i2 >= in[2])
                                            continue;
                                        double xv = x[(n * cc->c + grp * cg + c) * isz +
                                                      (i0 * in[1] + i1) * in[2] + i2];
                                        double wv =
                                            w[(m * cg + c) * ksz + (k0 * k[1] + k1) * k[2] + k2];
                                        acc += xv * wv;
                                    }
                        y[((n * cc->m + m) * out[0] + o0) * out[1] * out[2] + o1 * out[2] + o2] =
                            acc;
                    }
    return y;
}

static void test_conv_cases(void) {
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++) {
        const conv_case *cc = &conv_cases[ci];
        int r = cc->nsp + 2;
        int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group}, bd[1] = {cc->m};
        for (int i = 0; i < cc->nsp; i++) {
            xd[2 + i] = cc->in[i];
            wd[2 + i] = cc->k[i];
        }
        float *x = rand_buf(prod(xd, r)), *w = rand_buf(prod(wd, r)), *b = rand_buf(cc->m);
        qf_attr attrs[8];
        int na = 0;
        int64_t strides[3], dil[3], pads[6], ks[3];
        memcpy(strides, cc->strides, sizeof strides);
        memcpy(dil, cc->dil, sizeof dil);
        memcpy(pads, cc->pads, sizeof pads);
        memcpy(ks, cc->k, sizeof ks);
        if (cc->strides[0]) attrs[na++] = a_ints("strides", strides, cc->nsp);
        if (cc->dil[0]) attrs[na++] = a_ints("dilations", dil, cc->nsp);
        if (cc->has_pads) attrs[na++] = a_ints("pads", pads, 2 * cc->nsp);
        if (cc->kernel_attr) attrs[na++] = a_ints("kernel_shape", ks, cc->nsp);
        if (cc->auto_pad) attrs[na++] = a_str("auto_pad", cc->auto_pad);
        if (cc->group != 1) attrs[na++] = a_int("group", cc->group);
        qf_tensor in[3] = {f32t(r, xd, x), f32t(r, wd, w), cc->bias ? f32t(1, bd, b) : omitted()};
        op_run run;
        qf_status s = op_call(&run, "Conv", 11, attrs, na, in, 3, 1);
        double *want = s == QF_OK ? conv_ref(cc, x, w, cc->bias ? b : NULL) : NULL;
        bool shape_ok = s == QF_OK && run.out[0].rank == r && run.out[0].dims[0] == cc->n &&
                        run.out[0].dims[1] == cc->m;
        for (int i = 0; shape_ok && i < cc->nsp; i++)
            if (run.out[0].dims[2 + i] != cc->out[i]) shape_ok = false;
        int64_t bad = -1;
        bool vals_ok =
            shape_ok && close_all(run.out[0].data, want, qf_tensor_numel(&run.out[0]), 1e-5, &bad);
        char msg[QF_ERR_MSG_LEN];
        snprintf(msg, sizeof msg, "%s", run.err.msg);
        op_free(&run);
        free(x);
        free(w);
        free(b);
        free(want);
        CHECK_MSG(s == QF_OK, "case %s: %s", cc->name, msg);
        CHECK_MSG(shape_ok, "case %s: output shape", cc->name);
        CHECK_MSG(vals_ok, "case %s: element %lld", cc->name, (long long)bad);
    }
}

/* ONNX Conv doc example: 5x5 ramp, 3x3 ones, pads 1 */
static void test_conv_onnx_example(void) {
    float x[25], w[9];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    for (int i = 0; i < 9; i++)
        w[i] = 1.0f;
    static const double want[25] = {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                                    117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    int64_t xd[4] = {1, 1, 5, 5}, wd[4] = {1, 1, 3, 3}, pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
    qf_attr attrs[2] = {a_ints("kernel_shape", ks, 2), a_ints("pads", pads, 4)};
    qf_tensor in[2] = {f32t(4, xd, x), f32t(4, wd, w)};
    op_run r;
    CHECK_RUN(op_call(&r, "Conv", 11, attrs, 2, in, 2, 1), &r);
    bool ok = true;
    int64_t bad;
    ok = close_all(r.out[0].data, want, 25, 1e-6, &bad);
    op_free(&r);
    CHECK(ok);
}

static void test_conv_errors(void) {
    float x[2 * 4 * 5 * 5] = {0}, w[3 * 3 * 3 * 3] = {0};
    int64_t xd[4] = {2, 4, 5, 5}, wd[4] = {3, 3, 3, 3};
    op_run r;
    /* W has 3 input channels but X has 4 (group 1) */
    qf_tensor in[2] = {f32t(4, xd, x), f32t(4, wd, w)};
    qf_status s = op_call(&r, "Conv", 11, NULL, 0, in, 2, 1);
    bool named = strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    CHECK(named);
    /* negative stride rejected at parse */
    int64_t bad_strides[2] = {1, -1};
    qf_attr a1 = a_ints("strides", bad_strides, 2);
    s = op_parse(&r, "Conv", 11, &a1, 1, in, 2, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
    /* odd pads count rejected at parse; 2 pads for a 2-D conv fail in infer */
    int64_t pads3[3] = {1, 1, 1}, pads2[2] = {1, 1};
    qf_attr a2 = a_ints("pads", pads3, 3);
    s = op_parse(&r, "Conv", 11, &a2, 1, in, 2, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
    int64_t wd4[4] = {3, 4, 3, 3};
    float w4[3 * 4 * 9] = {0};
    qf_tensor in4[2] = {f32t(4, xd, x), f32t(4, wd4, w4)};
    qf_attr a3 = a_ints("pads", pads2, 2);
    s = op_call(&r, "Conv", 11, &a3, 1, in4, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    /* kernel_shape disagreeing with W */
    int64_t ks[2] = {2, 3};
    qf_attr a4 = a_ints("kernel_shape", ks, 2);
    s = op_call(&r, "Conv", 11, &a4, 1, in4, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    /* int8 input: unsupported, message names the dtype */
    int8_t xi[2 * 4 * 5 * 5] = {0};
    qf_tensor in8[2] = {tens(QF_DT_I8, 4, xd, xi), f32t(4, wd4, w4)};
    s = op_call(&r, "Conv", 11, NULL, 0, in8, 2, 1);
    bool says_dtype = strstr(r.err.msg, "int8") != NULL && strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    CHECK(says_dtype);
    /* bias of the wrong length */
    float bias[2] = {0};
    int64_t bdim[1] = {2};
    qf_tensor inb[3] = {f32t(4, xd, x), f32t(4, wd4, w4), f32t(1, bdim, bias)};
    s = op_call(&r, "Conv", 11, NULL, 0, inb, 3, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    /* kernel larger than the padded input */
    int64_t big[4] = {3, 4, 7, 7};
    float wb[3 * 4 * 49] = {0};
    qf_tensor inbig[2] = {f32t(4, xd, x), f32t(4, big, wb)};
    s = op_call(&r, "Conv", 11, NULL, 0, inbig, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

/* ---- ConvTranspose --------------------------------------------------------- */
typedef struct convt_case {
    const char *name;
    int nsp;
    int64_t n, c, mg, group;
    int64_t in[3], k[3];
    int64_t strides[3], dil[3], out_pad[3]; /* 0 = omitted */
    int64_t pads[6];
    bool has_pads, bias;
    int64_t out_shape[3]; /* 0 = omitted */
    const char *auto_pad;
    int64_t out[3], pb[3]; /* expected */
} convt_case;

static const convt_case convt_cases[] = {
    {"basic",
     2,
     1,
     2,
     3,
     1,
     {3, 4},
     {3, 3},
     {0},
     {0},
     {0},
     {0},
     false,
     true,
     {0},
     NULL,
     {5, 6},
     {0, 0}},
    {"stride2 outpad",
     2,
     2,
     3,
     2,
     1,
     {3, 3},
     {3, 3},
     {2, 2},
     {0},
     {1, 1},
     {0},
     false,
     false,
     {0},
     NULL,
     {8, 8},
     {0, 0}},
    {"pads",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {3, 2},
     {0},
     {0},
     {1, 2, 1, 2},
     true,
     false,
     {0},
     NULL,
     {7, 3},
     {1, 2}},
    {"dilation",
     2,
     1,
     2,
     1,
     1,
     {3, 4},
     {2, 2},
     {0},
     {2, 3},
     {0},
     {0},
     false,
     true,
     {0},
     NULL,
     {5, 7},
     {0, 0}},
    {"groups",
     2,
     1,
     4,
     3,
     2,
     {4, 3},
     {3, 2},
     {2, 1},
     {0},
     {0},
     {1, 0, 0, 1},
     true,
     true,
     {0},
     NULL,
     {8, 3},
     {1, 0}},
    {"output_shape",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {3, 2},
     {0},
     {0},
     {0},
     false,
     false,
     {10, 8},
     NULL,
     {10, 8},
     {0, 0}},
    {"output_shape crop",
     2,
     1,
     1,
     1,
     1,
     {3, 3},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {0},
     false,
     false,
     {6, 5},
     NULL,
     {6, 5},
     {1, 1}},
    {"same_upper",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {0},
     false,
     true,
     {0},
     "SAME_UPPER",
     {6, 6},
     {0, 0}},
    {"same_lower",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {0},
     false,
     false,
     {0},
     "SAME_LOWER",
     {6, 6},
     {1, 1}},
    {"1-D", 1, 2, 2, 3, 1, {5}, {3}, {2}, {0}, {1}, {1, 0}, true, true, {0}, NULL, {11}, {1}},
    {"3-D",
     3,
     1,
     2,
     2,
     1,
     {2, 3, 3},
     {2, 2, 3},
     {2, 1, 2},
     {0},
     {0},
     {0},
     false,
     true,
     {0},
     NULL,
     {4, 4, 7},
     {0, 0, 0}},
    {"depthwise",
     2,
     1,
     3,
     1,
     3,
     {4, 4},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {1, 1, 1, 1},
     true,
     true,
     {0},
     NULL,
     {7, 7},
     {1, 1}},
};

static double *convt_ref(const convt_case *cc, const float *x, const float *w, const float *b) {
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, out[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
    int off = 3 - cc->nsp;
    for (int i = 0; i < cc->nsp; i++) {
        in[off + i] = cc->in[i];
        k[off + i] = cc->k[i];
        out[off + i] = cc->out[i];
        s[off + i] = cc->strides[i] ? cc->strides[i] : 1;
        d[off + i] = cc->dil[i] ? cc->dil[i] : 1;
        pb[off + i] = cc->pb[i];
    }
    int64_t cg = cc->c / cc->group, m = cc->mg * cc->group;
    int64_t osz = out[0] * out[1] * out[2], isz = in[0] * in[1] * in[2], ksz = k[0] * k[1] * k[2];
    double *y = malloc(sizeof(double) * (size_t)(cc->n * m * osz));
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t co = 0; co < m; co++)
            for (int64_t i = 0; i < osz; i++)
                y[(n * m + co) * osz + i] = b ? b[co] : 0.0;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t ci = 0; ci < cc->c; ci++)
            for (int64_t mo = 0; mo < cc->mg; mo++)
                for (int64_t i0 = 0; i0 < in[0]; i0++)
                    for (int64_t i1 = 0; i1 < in[1]; i1++)
                        for (int64_t i2 = 0; i2 < in[2]; i2++)
                            for (int64_t k0 = 0; k0 < k[0]; k0++)
                                for (int64_t k1 = 0; k1 < k[1]; k1++)
                                    for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                        int64_t o0 = i0 * s[0] - pb[0] + k0 * d[0];
                                        int64_t o1 = i1 * s[1] - pb[1] + k1 * d[1];
                                        int64_t o2 = i2 * s[2] - pb[2] + k2 * d[2];
                                        if (o0 < 0 || o0 >= out[0] || o1 < 0 || o1 >= out[1] ||
                                            o2 < 0 || o2 >= out[2])
                                            continue;
                                        int64_t co = (ci / cg) * cc->mg + mo;
                                        double xv = x[(n * cc->c + ci) * isz +
                                                      (i0 * in[1] + i1) * in[2] + i2];
                                        double wv = w[(ci * cc->mg + mo) * ksz +
                                                      (k0 * k[1] + k1) * k[2] + k2];
                                        y[(n * m + co) * osz + (o0 * out[1] + o1) * out[2] + o2] +=
                                            xv * wv;
                                    }
    return y;
}

static void test_conv_transpose_cases(void) {
    for (size_t ci = 0; ci < sizeof convt_cases / sizeof convt_cases[0]; ci++) {
        const convt_case *cc = &convt_cases[ci];
        int r = cc->nsp + 2;
        int64_t m = cc->mg * cc->group;
        int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->c, cc->mg}, bd[1] = {m};
        for (int i = 0; i < cc->nsp; i++) {
            xd[2 + i] = cc->in[i];
            wd[2 + i] = cc->k[i];
        }
        float *x = rand_buf(prod(xd, r)), *w = rand_buf(prod(wd, r)), *b = rand_buf(m);
        qf_attr attrs[8];
        int na = 0;
        int64_t strides[3], dil[3], pads[6], op[3], os[3];
        memcpy(strides, cc->strides, sizeof strides);
        memcpy(dil, cc->dil, sizeof dil);
        memcpy(pads, cc->pads, sizeof pads);
        memcpy(op, cc->out_pad, sizeof op);
        memcpy(os, cc->out_shape, sizeof os);
        if (cc->strides[0]) attrs[na++] = a_ints("strides", strides, cc->nsp);
        if (cc->dil[0]) attrs[na++] = a_ints("dilations", dil, cc->nsp);
        if (cc->has_pads) attrs[na++] = a_ints("pads", pads, 2 * cc->nsp);
        if (cc->out_pad[0]) attrs[na++] = a_ints("output_padding", op, cc->nsp);
        if (cc->out_shape[0]) attrs[na++] = a_ints("output_shape", os, cc->nsp);
        if (cc->auto_pad) attrs[na++] = a_str("auto_pad", cc->auto_pad);
        if (cc->group != 1) attrs[na++] = a_int("group", cc->group);
        qf_tensor in[3] = {f32t(r, xd, x), f32t(r, wd, w), cc->bias ? f32t(1, bd, b) : omitted()};
        op_run run;
        qf_status s = op_call(&run, "ConvTranspose", 11, attrs, na, in, 3, 1);
        bool shape_ok = s == QF_OK && run.out[0].rank == r && run.out[0].dims[1] == m;
        for (int i = 0; shape_ok && i < cc->nsp; i++)
            if (run.out[0].dims[2 + i] != cc->out[i]) shape_ok = false;
        double *want = shape_ok ? convt_ref(cc, x, w, cc->bias ? b : NULL) : NULL;
        int64_t bad = -1;
        bool vals_ok =
            shape_ok && close_all(run.out[0].data, want, qf_tensor_numel(&run.out[0]), 1e-5, &bad);
        char msg[QF_ERR_MSG_LEN];
        snprintf(msg, sizeof msg, "%s", run.err.msg);
        op_free(&run);
        free(x);
        free(w);
        free(b);
        free(want);
        CHECK_MSG(s == QF_OK, "case %s: %s", cc->name, msg);
        CHECK_MSG(shape_ok, "case %s: output shape", cc->name);
        CHECK_MSG(vals_ok, "case %s: element %lld", cc->name, (long long)bad);
    }
}

/* ONNX ConvTranspose doc example: 3x3 ramp, two 3x3 ones filters */
static void test_conv_transpose_onnx_example(void) {
    float x[9], w[18];
    for (int i = 0; i < 9; i++)
        x[i] = (float)i;
    for (int i = 0; i < 18; i++)
        w[i] = 1.0f;
    static const double plane[25] = {0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                     27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
    double want[50];
    for (int i = 0; i < 50; i++)
        want[i] = plane[i % 25];
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3};
    qf_tensor in[2] = {f32t(4, xd, x), f32t(4, wd, w)};
    op_run r;
    CHECK_RUN(op_call(&r, "ConvTranspose", 11, NULL, 0, in, 2, 1), &r);
    int64_t bad;
    bool ok = r.out[0].dims[2] == 5 && r.out[0].dims[3] == 5 &&
              close_all(r.out[0].data, want, 50, 1e-6, &bad);
    op_free(&r);
    CHECK(ok);
}

static void test_conv_transpose_errors(void) {
    float x[1 * 4 * 3 * 3] = {0}, w[3 * 2 * 3 * 3] = {0};
    int64_t xd[4] = {1, 4, 3, 3}, wd[4] = {3, 2, 3, 3};
    qf_tensor in[2] = {f32t(4, xd, x), f32t(4, wd, w)};
    op_run r;
    qf_status s = op_call(&r, "ConvTranspose", 11, NULL, 0, in, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    int64_t bad_op[2] = {-1, 0};
    qf_attr a = a_ints("output_padding", bad_op, 2);
    s = op_parse(&r, "ConvTranspose", 11, &a, 1, in, 2, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
}

/* ---- Gemm / MatMul --------------------------------------------------------- */
static void test_gemm(void) {
    static const struct {
        int m, n, k;
        bool ta, tb;
        float alpha, beta;
        int c_rank;
        int64_t c_dims[2];
    } cases[] = {
        {3, 4, 5, false, false, 1.0f, 1.0f, -1, {0}}, /* no C */
        {3, 4, 5, true, false, 0.5f, 1.0f, 2, {3, 4}},
        {3, 4, 5, false, true, 1.0f, 0.3f, 1, {4}},
        {3, 4, 5, true, true, 0.25f, 0.35f, 2, {1, 4}},
        {2, 5, 7, false, false, 1.0f, 2.0f, 2, {2, 1}},
        {2, 5, 7, false, false, 1.0f, 1.0f, 0, {0}}, /* scalar C */
        {2, 5, 7, false, false, 1.0f, 1.0f, 1, {1}},
        {9, 33, 70, false, true, 1.0f, 0.0f, 2, {9, 33}}, /* beta 0 ignores C */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int m = cases[ci].m, n = cases[ci].n, k = cases[ci].k;
        int64_t ad[2] = {cases[ci].ta ? k : m, cases[ci].ta ? m : k};
        int64_t bd[2] = {cases[ci].tb ? n : k, cases[ci].tb ? k : n};
        float *a = rand_buf(m * k), *b = rand_buf(k * n), *c = rand_buf(m * n);
        int cr = cases[ci].c_rank;
        double *want = malloc(sizeof(double) * (size_t)(m * n));
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0.0;
                for (int p = 0; p < k; p++)
                    acc += (double)(cases[ci].ta ? a[p * m + i] : a[i * k + p]) *
                           (cases[ci].tb ? b[j * k + p] : b[p * n + j]);
                double cv = 0.0;
                if (cr == 0) cv = c[0];
                if (cr == 1) cv = cases[ci].c_dims[0] == 1 ? c[0] : c[j];
                if (cr == 2) {
                    int64_t ci0 = cases[ci].c_dims[0] == 1 ? 0 : i;
                    int64_t cj = cases[ci].c_dims[1] == 1 ? 0 : j;
                    cv = c[ci0 * cases[ci].c_dims[1] + cj];
                }
                want[i * n + j] = cases[ci].alpha * acc + (cr >= 0 ? cases[ci].beta * cv : 0.0);
            }
        qf_attr attrs[4] = {a_float("alpha", cases[ci].alpha), a_float("beta", cases[ci].beta),
                            a_int("transA", cases[ci].ta), a_int("transB", cases[ci].tb)};
        qf_tensor in[3] = {f32t(2, ad, a), f32t(2, bd, b),
                           cr >= 0 ? f32t(cr, cases[ci].c_dims, c) : omitted()};
        op_run r;
        qf_status s = op_call(&r, "Gemm", 13, attrs, 4, in, 3, 1);
        int64_t bad = -1;
        bool ok = s == QF_OK && r.out[0].rank == 2 && r.out[0].dims[0] == m &&
                  r.out[0].dims[1] == n && close_all(r.out[0].data, want, m * n, 1e-5, &bad);
        op_free(&r);
        free(a);
        free(b);
        free(c);
        free(want);
        CHECK_MSG(ok, "gemm case %zu (status %d, element %lld)", ci, (int)s, (long long)bad);
    }
    /* inner dimension mismatch and a C that does not broadcast */
    float z[64] = {0};
    int64_t ad[2] = {2, 3}, bd[2] = {4, 5}, bd2[2] = {3, 5}, cd[2] = {3, 5};
    qf_tensor in[3] = {f32t(2, ad, z), f32t(2, bd, z), omitted()};
    op_run r;
    qf_status s = op_call(&r, "Gemm", 13, NULL, 0, in, 3, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    qf_tensor in2[3] = {f32t(2, ad, z), f32t(2, bd2, z), f32t(2, cd, z)};
    s = op_call(&r, "Gemm", 13, NULL, 0, in2, 3, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

static void test_matmul(void) {
    static const struct {
        int ra, rb;
        int64_t ad[4], bd[4];
        int ro;
        int64_t od[4];
    } cases[] = {
        {2, 2, {3, 4}, {4, 5}, 2, {3, 5}},
        {1, 2, {4}, {4, 5}, 1, {5}},
        {2, 1, {3, 4}, {4}, 1, {3}},
        {1, 1, {6}, {6}, 0, {0}},
        {3, 2, {2, 3, 4}, {4, 5}, 3, {2, 3, 5}},             /* batch folded into M */
        {2, 3, {3, 4}, {2, 4, 5}, 3, {2, 3, 5}},             /* A broadcast */
        {4, 4, {2, 1, 3, 4}, {1, 3, 4, 2}, 4, {2, 3, 3, 2}}, /* both broadcast */
        {3, 1, {2, 3, 4}, {4}, 2, {2, 3}},
        {1, 3, {4}, {2, 4, 5}, 2, {2, 5}},
        {3, 3, {3, 20, 70}, {3, 70, 9}, 3, {3, 20, 9}},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int ra = cases[ci].ra, rb = cases[ci].rb;
        const int64_t *ad = cases[ci].ad, *bd = cases[ci].bd;
        float *a = rand_buf(prod(ad, ra)), *b = rand_buf(prod(bd, rb));
        /* reference: promote to 4-D with explicit broadcasting */
        int64_t A[4] = {1, 1, 1, 1}, B[4] = {1, 1, 1, 1};
        if (ra == 1) {
            A[3] = ad[0];
        } else {
            for (int i = 0; i < ra; i++)
                A[4 - ra + i] = ad[i];
        }
        if (rb == 1) {
            B[2] = bd[0];
        } else {
            for (int i = 0; i < rb; i++)
                B[4 - rb + i] = bd[i];
        }
        int64_t b0 = A[0] > B[0] ? A[0] : B[0], b1 = A[1] > B[1] ? A[1] : B[1];
        int64_t m = A[2], k = A[3], n = B[3];
        double *want = malloc(sizeof(double) * (size_t)(b0 * b1 * m * n));
        for (int64_t i0 = 0; i0 < b0; i0++)
            for (int64_t i1 = 0; i1 < b1; i1++)
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        int64_t ab = ((A[0] == 1 ? 0 : i0) * A[1] + (A[1] == 1 ? 0 : i1)) * m * k;
                        int64_t bb = ((B[0] == 1 ? 0 : i0) * B[1] + (B[1] == 1 ? 0 : i1)) * k * n;
                        double acc = 0.0;
                        for (int64_t p = 0; p < k; p++)
                            acc += (double)a[ab + i * k + p] * b[bb + p * n + j];
                        want[((i0 * b1 + i1) * m + i) * n + j] = acc;
                    }
        qf_tensor in[2] = {f32t(ra, ad, a), f32t(rb, bd, b)};
        op_run r;
        qf_status s = op_call(&r, "MatMul", 13, NULL, 0, in, 2, 1);
        bool ok = s == QF_OK && r.out[0].rank == cases[ci].ro;
        for (int i = 0; ok && i < cases[ci].ro; i++)
            if (r.out[0].dims[i] != cases[ci].od[i]) ok = false;
        int64_t bad = -1;
        if (ok) ok = close_all(r.out[0].data, want, b0 * b1 * m * n, 1e-5, &bad);
        op_free(&r);
        free(a);
        free(b);
        free(want);
        CHECK_MSG(ok, "matmul case %zu (status %d, element %lld)", ci, (int)s, (long long)bad);
    }
    float z[64] = {0};
    int64_t ad[3] = {2, 3, 4}, bd[3] = {3, 4, 5};
    qf_tensor in[2] = {f32t(3, ad, z), f32t(3, bd, z)};
    op_run r;
    qf_status s = op_call(&r, "MatMul", 13, NULL, 0, in, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

/* ---- pooling ----------------------------------------------------------------- */
typedef struct pool_case {
    const char *name;
    int nsp;
    int64_t n, c;
    int64_t in[3], k[3];
    int64_t strides[3], dil[3]; /* 0 = omitted */
    int64_t pads[6];
    bool has_pads, ceil, include_pad;
    const char *auto_pad;
    int64_t out[3], pb[3], pe[3]; /* expected */
} pool_case;

static const pool_case pool_cases[] = {
    {"2x2", 2, 1, 3, {6, 7}, {2, 2}, {0}, {0}, {0}, false, false, false, NULL, {5, 6}, {0}, {0}},
    {"3x3 s2 pads",
     2,
     2,
     2,
     {7, 6},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 0},
     true,
     false,
     false,
     NULL,
     {4, 3},
     {1, 1},
     {1, 0}},
    {"pads include",
     2,
     1,
     2,
     {5, 5},
     {3, 3},
     {0},
     {0},
     {2, 2, 2, 2},
     true,
     false,
     true,
     NULL,
     {7, 7},
     {2, 2},
     {2, 2}},
    {"ceil", 2, 1, 1, {4, 4}, {3, 3}, {2, 2}, {0}, {0}, false, true, false, NULL, {2, 2}, {0}, {0}},
    {"ceil drops pad window",
     2,
     1,
     2,
     {5, 6},
     {2, 2},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     true,
     true,
     true,
     NULL,
     {3, 4},
     {1, 1},
     {1, 1}},
    {"dilations",
     2,
     1,
     1,
     {4, 5},
     {2, 2},
     {1, 1},
     {2, 2},
     {0},
     false,
     false,
     false,
     NULL,
     {2, 3},
     {0},
     {0}},
    {"same_upper",
     2,
     1,
     2,
     {5, 5},
     {3, 3},
     {2, 2},
     {0},
     {0},
     false,
     false,
     false,
     "SAME_UPPER",
     {3, 3},
     {1, 1},
     {1, 1}},
    {"same_lower even",
     2,
     1,
     1,
     {6, 5},
     {2, 2},
     {0},
     {0},
     {0},
     false,
     false,
     false,
     "SAME_LOWER",
     {6, 5},
     {1, 1},
     {0, 0}},
    {"valid",
     2,
     1,
     1,
     {7, 6},
     {3, 2},
     {2, 3},
     {0},
     {0},
     false,
     false,
     false,
     "VALID",
     {3, 2},
     {0},
     {0}},
    {"1-D", 1, 2, 3, {9}, {3}, {2}, {0}, {1, 1}, true, false, false, NULL, {5}, {1}, {1}},
    {"3-D",
     3,
     1,
     2,
     {4, 5, 6},
     {2, 2, 3},
     {2, 1, 2},
     {0},
     {0, 1, 1, 0, 0, 1},
     true,
     true,
     true,
     NULL,
     {2, 5, 4},
     {0, 1, 1},
     {0, 0, 1}},
};

/* naive window pooling; idx receives flat argmax indices (row-major) */
static void pool_ref(const pool_case *pc, const float *x, bool avg, double *y, int64_t *idx) {
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, out[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, pb[3] = {0}, pe[3] = {0};
    int off = 3 - pc->nsp;
    for (int i = 0; i < pc->nsp; i++) {
        in[off + i] = pc->in[i];
        k[off + i] = pc->k[i];
        out[off + i] = pc->out[i];
        s[off + i] = pc->strides[i] ? pc->strides[i] : 1;
        d[off + i] = pc->dil[i] ? pc->dil[i] : 1;
        pb[off + i] = pc->pb[i];
        pe[off + i] = pc->pe[i];
    }
    int64_t isz = in[0] * in[1] * in[2], e = 0;
    for (int64_t pl = 0; pl < pc->n * pc->c; pl++)
        for (int64_t o0 = 0; o0 < out[0]; o0++)
            for (int64_t o1 = 0; o1 < out[1]; o1++)
                for (int64_t o2 = 0; o2 < out[2]; o2++, e++) {
                    double best = -INFINITY, sum = 0.0;
                    int64_t cnt = 0, cnt_pad = 0, bi = -1;
                    for (int64_t k0 = 0; k0 < k[0]; k0++)
                        for (int64_t k1 = 0; k1 < k[1]; k1++)
                            for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                int64_t p[3] = {o0 * s[0] - pb[0] + k0 * d[0],
                                                o1 * s[1] - pb[1] + k1 * d[1],
                                                o2 * s[2] - pb[2] + k2 * d[2]};
                                bool real = true, padded = true;
                                for (int a = 0; a < 3; a++) {
                                    if (p[a] < 0 || p[a] >= in[a]) real = false;
                                    if (p[a] < -pb[a] || p[a] >= in[a] + pe[a]) padded = false;
                                }
                                if (padded) cnt_pad++;
                                if (!real) continue;
                                int64_t fi = (p[0] * in[1] + p[1]) * in[2] + p[2];
                                double v = x[pl * isz + fi];
                                sum += v;
                                cnt++;
                                if (v > best) {
                                    best = v;
                                    bi = pl * isz + fi;
                                }
                            }
                    y[e] = avg ? sum / (double)(pc->include_pad ? cnt_pad : cnt) : best;
                    if (idx) idx[e] = bi;
                }
}

static void pool_case_attrs(const pool_case *pc, qf_attr *attrs, int *na, int64_t *ks,
                            int64_t *strides, int64_t *dil, int64_t *pads) {
    memcpy(ks, pc->k, 3 * sizeof(int64_t));
    memcpy(strides, pc->strides, 3 * sizeof(int64_t));
    memcpy(dil, pc->dil, 3 * sizeof(int64_t));
    memcpy(pads, pc->pads, 6 * sizeof(int64_t));
    *na = 0;
    attrs[(*na)++] = a_ints("kernel_shape", ks, pc->nsp);
    if (pc->strides[0]) attrs[(*na)++] = a_ints("strides", strides, pc->nsp);
    if (pc->dil[0]) attrs[(*na)++] = a_ints("dilations", dil, pc->nsp);
    if (pc->has_pads) attrs[(*na)++] = a_ints("pads", pads, 2 * pc->nsp);
    if (pc->auto_pad) attrs[(*na)++] = a_str("auto_pad", pc->auto_pad);
    if (pc->ceil) attrs[(*na)++] = a_int("ceil_mode", 1);
}

static void test_pool_cases(void) {
    for (size_t ci = 0; ci < sizeof pool_cases / sizeof pool_cases[0]; ci++) {
        const pool_case *pc = &pool_cases[ci];
        int r = pc->nsp + 2;
        int64_t xd[5] = {pc->n, pc->c};
        for (int i = 0; i < pc->nsp; i++)
            xd[2 + i] = pc->in[i];
        float *x = rand_buf(prod(xd, r));
        int64_t n_out = pc->n * pc->c * prod(pc->out, pc->nsp);
        double *want_max = malloc(sizeof(double) * (size_t)n_out);
        double *want_avg = malloc(sizeof(double) * (size_t)n_out);
        int64_t *want_idx = malloc(sizeof(int64_t) * (size_t)n_out);
        pool_ref(pc, x, false, want_max, want_idx);
        pool_ref(pc, x, true, want_avg, NULL);
        qf_attr attrs[9];
        int na;
        int64_t ks[3], strides[3], dil[3], pads[6];
        pool_case_attrs(pc, attrs, &na, ks, strides, dil, pads);
        qf_tensor in[1] = {f32t(r, xd, x)};
        /* MaxPool with Indices */
        op_run rm;
        qf_status sm = op_call(&rm, "MaxPool", 12, attrs, na, in, 1, 2);
        bool shape_ok = sm == QF_OK && rm.out[0].rank == r && rm.out[1].dtype == QF_DT_I64;
        for (int i = 0; shape_ok && i < pc->nsp; i++)
            if (rm.out[0].dims[2 + i] != pc->out[i]) shape_ok = false;
        int64_t bad = -1;
        bool max_ok = shape_ok && close_all(rm.out[0].data, want_max, n_out, 0.0, &bad);
        bool idx_ok =
            shape_ok && memcmp(rm.out[1].data, want_idx, sizeof(int64_t) * (size_t)n_out) == 0;
        op_free(&rm);
        /* MaxPool without Indices (the float runtime's fast path where it
         * applies: values equal, as floats, to the same reference) */
        op_run rf;
        qf_status sf = op_call(&rf, "MaxPool", 12, attrs, na, in, 1, 1);
        bool fast_ok = sf == QF_OK && rf.out[0].rank == r &&
                       close_all(rf.out[0].data, want_max, n_out, 0.0, &bad);
        op_free(&rf);
        /* AveragePool */
        if (pc->include_pad) attrs[na++] = a_int("count_include_pad", 1);
        bool uses_dil = pc->dil[0] != 0;
        op_run ra;
        qf_status sa = op_call(&ra, "AveragePool", uses_dil ? 19 : 11, attrs, na, in, 1, 1);
        bool avg_ok = sa == QF_OK && close_all(ra.out[0].data, want_avg, n_out, 1e-6, &bad);
        op_free(&ra);
        free(x);
        free(want_max);
        free(want_avg);
        free(want_idx);
        CHECK_MSG(sm == QF_OK && shape_ok, "case %s: maxpool status/shape", pc->name);
        CHECK_MSG(max_ok, "case %s: maxpool values", pc->name);
        CHECK_MSG(fast_ok, "case %s: maxpool values without indices (status %d)", pc->name,
                  (int)sf);
        CHECK_MSG(idx_ok, "case %s: maxpool indices", pc->name);
        CHECK_MSG(avg_ok, "case %s: averagepool (status %d)", pc->name, (int)sa);
    }
}

/* MaxPool's NaNs without Indices (the fast path) as with them (the
 * reference scan): a window whose first element is NaN gives NaN, a NaN
 * elsewhere in a window is passed over (the comparisons with it are false),
 * so the outputs are NaN at the same places and equal elsewhere. */
static void test_maxpool_nan(void) {
    float x[36];
    for (int i = 0; i < 36; i++)
        x[i] = (float)((i * 7) % 11) - 5.0f;
    x[0] = x[9] = x[14] = x[27] = NAN;
    int64_t xd[4] = {1, 1, 6, 6}, k[2] = {3, 3}, st[2] = {2, 1}, pads[4] = {1, 0, 1, 2};
    qf_tensor in[1] = {f32t(4, xd, x)};
    qf_attr a[3] = {a_ints("kernel_shape", k, 2), a_ints("strides", st, 2),
                    a_ints("pads", pads, 4)};
    op_run r1, r2;
    CHECK_RUN(op_call(&r1, "MaxPool", 12, a, 3, in, 1, 1), &r1);
    CHECK_RUN(op_call(&r2, "MaxPool", 12, a, 3, in, 1, 2), &r2);
    const int64_t n = qf_tensor_numel(&r1.out[0]);
    CHECK(n == qf_tensor_numel(&r2.out[0]) && n == 3 * 6);
    const float *f = r1.out[0].data, *g = r2.out[0].data;
    int nan = 0, same = 0;
    for (int64_t i = 0; i < n; i++) {
        nan += isnan(f[i]) != 0;
        same += isnan(f[i]) ? isnan(g[i]) != 0 : f[i] == g[i];
    }
    op_free(&r1);
    op_free(&r2);
    CHECK(same == n);
    CHECK(nan > 0 && nan < n); /* both kinds of windows occur */
}

/* ONNX MaxPool/AveragePool doc examples on a 5x5 ramp 1..25 */
static void test_pool_onnx_examples(void) {
    float x[25];
    for (int i = 0; i < 25; i++)
        x[i] = (float)(i + 1);
    int64_t xd[4] = {1, 1, 5, 5}, k5[2] = {5, 5}, pads[4] = {2, 2, 2, 2}, k2[2] = {2, 2},
            s2[2] = {2, 2};
    qf_tensor in[1] = {f32t(4, xd, x)};
    /* maxpool_2d_precomputed_pads */
    static const double max_pads[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                                        25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    /* averagepool_2d_precomputed_pads_count_include_pad */
    static const double avg_incl[25] = {2.52,  3.6,  4.8,  4.08, 3.24, 4.56, 6.4,  8.4, 7.04,
                                        5.52,  7.2,  10.0, 13.0, 10.8, 8.4,  6.96, 9.6, 12.4,
                                        10.24, 7.92, 6.12, 8.4,  10.8, 8.88, 6.84};
    qf_attr am[2] = {a_ints("kernel_shape", k5, 2), a_ints("pads", pads, 4)};
    op_run r;
    CHECK_RUN(op_call(&r, "MaxPool", 12, am, 2, in, 1, 1), &r);
    int64_t bad;
    bool ok = close_all(r.out[0].data, max_pads, 25, 0.0, &bad);
    op_free(&r);
    CHECK(ok);
    qf_attr aa[3] = {a_ints("kernel_shape", k5, 2), a_ints("pads", pads, 4),
                     a_int("count_include_pad", 1)};
    CHECK_RUN(op_call(&r, "AveragePool", 11, aa, 3, in, 1, 1), &r);
    ok = close_all(r.out[0].data, avg_incl, 25, 1e-6, &bad);
    op_free(&r);
    CHECK(ok);
    /* maxpool_with_argmax_2d_precomputed_strides, storage_order 1: column-major indices */
    qf_attr as[3] = {a_ints("kernel_shape", k2, 2), a_ints("strides", s2, 2),
                     a_int("storage_order", 1)};
    CHECK_RUN(op_call(&r, "MaxPool", 12, as, 3, in, 1, 2), &r);
    static const double max_s[4] = {7, 9, 17, 19};
    static const int64_t idx_s[4] = {6, 16, 8, 18};
    ok = close_all(r.out[0].data, max_s, 4, 0.0, &bad) &&
         memcmp(r.out[1].data, idx_s, sizeof idx_s) == 0;
    op_free(&r);
    CHECK(ok);
}

static void test_maxpool_int8(void) {
    uint8_t xu[16];
    int8_t xi[16];
    for (int i = 0; i < 16; i++) {
        xu[i] = (uint8_t)((i * 37) % 251);
        xi[i] = (int8_t)((i * 37) % 251 - 128);
    }
    int64_t xd[4] = {1, 1, 4, 4}, k2[2] = {2, 2}, s2[2] = {2, 2};
    qf_attr a[2] = {a_ints("kernel_shape", k2, 2), a_ints("strides", s2, 2)};
    for (int t = 0; t < 2; t++) {
        qf_tensor in[1] = {t == 0 ? tens(QF_DT_U8, 4, xd, xu) : tens(QF_DT_I8, 4, xd, xi)};
        op_run r;
        qf_status s = op_call(&r, "MaxPool", 12, a, 2, in, 1, 1);
        bool ok = s == QF_OK && r.out[0].dtype == in[0].dtype;
        for (int oy = 0; ok && oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                int best = -1000;
                for (int ky = 0; ky < 2; ky++)
                    for (int kx = 0; kx < 2; kx++) {
                        int i = (oy * 2 + ky) * 4 + ox * 2 + kx;
                        int v = t == 0 ? xu[i] : xi[i];
                        if (v > best) best = v;
                    }
                int got = t == 0 ? ((uint8_t *)r.out[0].data)[oy * 2 + ox]
                                 : ((int8_t *)r.out[0].data)[oy * 2 + ox];
                if (got != best) ok = false;
            }
        op_free(&r);
        CHECK_MSG(ok, "maxpool %s", t == 0 ? "uint8" : "int8");
    }
}

static void test_global_pools(void) {
    int64_t xd[4] = {2, 3, 4, 5};
    float *x = rand_buf(prod(xd, 4));
    double avg[6], mx[6];
    for (int p = 0; p < 6; p++) {
        double s = 0.0, m = -INFINITY;
        for (int i = 0; i < 20; i++) {
            s += x[p * 20 + i];
            m = x[p * 20 + i] > m ? x[p * 20 + i] : m;
        }
        avg[p] = s / 20.0;
        mx[p] = m;
    }
    qf_tensor in[1] = {f32t(4, xd, x)};
    op_run r;
    qf_status s = op_call(&r, "GlobalAveragePool", 7, NULL, 0, in, 1, 1);
    int64_t bad;
    bool ok = s == QF_OK && r.out[0].rank == 4 && r.out[0].dims[1] == 3 && r.out[0].dims[2] == 1 &&
              r.out[0].dims[3] == 1 && close_all(r.out[0].data, avg, 6, 1e-6, &bad);
    op_free(&r);
    bool ok2 = false;
    s = op_call(&r, "GlobalMaxPool", 7, NULL, 0, in, 1, 1);
    ok2 = s == QF_OK && close_all(r.out[0].data, mx, 6, 0.0, &bad);
    op_free(&r);
    free(x);
    CHECK(ok);
    CHECK(ok2);
}

/* ---- normalisations ----------------------------------------------------------- */
static void test_batch_norm(void) {
    int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
    float *x = rand_buf(120), sc[3], bias[3], mean[3], var[3];
    for (int c = 0; c < 3; c++) {
        sc[c] = frand();
        bias[c] = frand();
        mean[c] = frand();
        var[c] = 0.5f + frand() * 0.4f;
    }
    const float eps = 1e-2f;
    double want[120];
    for (int i = 0; i < 120; i++) {
        int c = (i / 20) % 3;
        want[i] = (x[i] - mean[c]) / sqrt((double)var[c] + eps) * sc[c] + bias[c];
    }
    qf_attr a = a_float("epsilon", eps);
    qf_tensor in[5] = {f32t(4, xd, x), f32t(1, cd, sc), f32t(1, cd, bias), f32t(1, cd, mean),
                       f32t(1, cd, var)};
    op_run r;
    qf_status s = op_call(&r, "BatchNormalization", 15, &a, 1, in, 5, 1);
    int64_t bad = -1;
    bool ok = s == QF_OK && close_all(r.out[0].data, want, 120, 1e-5, &bad);
    op_free(&r);
    CHECK_MSG(ok, "batchnorm values (status %d, element %lld)", (int)s, (long long)bad);
    /* training mode and opset-7 spatial=0 are rejected at parse, naming the node */
    qf_attr tm = a_int("training_mode", 1);
    s = op_parse(&r, "BatchNormalization", 15, &tm, 1, in, 5, 1, 1);
    bool named = strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    CHECK(named);
    qf_attr sp = a_int("spatial", 0);
    s = op_parse(&r, "BatchNormalization", 7, &sp, 1, in, 5, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    /* per-channel params of the wrong size */
    int64_t cd2[1] = {2};
    in[1] = f32t(1, cd2, sc);
    s = op_call(&r, "BatchNormalization", 15, NULL, 0, in, 5, 1);
    op_free(&r);
    free(x);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

static void test_layer_norm(void) {
    static const struct {
        int rank;
        int64_t dims[4];
        int64_t axis;
        int sc_rank;
        int64_t sc_dims[3];
        bool bias;
    } cases[] = {
        {3, {2, 3, 5}, -1, 1, {5}, true},
        {3, {2, 3, 5}, 1, 2, {3, 5}, true},
        {4, {2, 3, 4, 5}, 0, 3, {3, 4, 5}, false}, /* Scale broadcast over the first axis */
        {2, {4, 6}, 1, 1, {1}, true},
        {4, {2, 3, 4, 5}, 2, 2, {1, 5}, true},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int r = cases[ci].rank,
            axis = (int)(cases[ci].axis < 0 ? cases[ci].axis + r : cases[ci].axis);
        int64_t total = prod(cases[ci].dims, r), rows = prod(cases[ci].dims, axis);
        int64_t cols = total / rows, sn = prod(cases[ci].sc_dims, cases[ci].sc_rank);
        float *x = rand_buf(total), *sc = rand_buf(sn), *b = rand_buf(sn);
        double *want = malloc(sizeof(double) * (size_t)total), want_mean[64], want_inv[64];
        for (int64_t rr = 0; rr < rows; rr++) {
            double mu = 0.0, var = 0.0;
            for (int64_t j = 0; j < cols; j++)
                mu += x[rr * cols + j];
            mu /= (double)cols;
            for (int64_t j = 0; j < cols; j++)
                var += (x[rr * cols + j] - mu) * (x[rr * cols + j] - mu);
            var /= (double)cols;
            double inv = 1.0 / sqrt(var + 1e-5);
            want_mean[rr] = mu;
            want_inv[rr] = inv;
            for (int64_t j = 0; j < cols; j++) {
                /* Scale/B index: trailing-aligned broadcast over the normalised block */
                int64_t si = j % sn;
                if (cases[ci].sc_rank == 2 && cases[ci].sc_dims[0] == 1) si = j % 5;
                if (sn == 1) si = 0;
                want[rr * cols + j] =
                    (x[rr * cols + j] - mu) * inv * sc[si] + (cases[ci].bias ? b[si] : 0.0);
            }
        }
        qf_attr a = a_int("axis", cases[ci].axis);
        qf_tensor in[3] = {
            f32t(r, cases[ci].dims, x), f32t(cases[ci].sc_rank, cases[ci].sc_dims, sc),
            cases[ci].bias ? f32t(cases[ci].sc_rank, cases[ci].sc_dims, b) : omitted()};
        op_run run;
        qf_status s = op_call(&run, "LayerNormalization", 17, &a, 1, in, 3, 3);
        int64_t bad = -1;
        bool ok = s == QF_OK && close_all(run.out[0].data, want, total, 1e-5, &bad) &&
                  close_all(run.out[1].data, want_mean, rows, 1e-6, &bad) &&
                  close_all(run.out[2].data, want_inv, rows, 1e-5, &bad);
        bool shape_ok = s == QF_OK && run.out[1].rank == r;
        for (int i = 0; shape_ok && i < r; i++)
            if (run.out[1].dims[i] != (i < axis ? cases[ci].dims[i] : 1)) shape_ok = false;
        op_free(&run);
        free(x);
        free(sc);
        free(b);
        free(want);
        CHECK_MSG(ok, "layernorm case %zu (status %d, element %lld)", ci, (int)s, (long long)bad);
        CHECK_MSG(shape_ok, "layernorm case %zu: Mean shape", ci);
    }
    /* only Y requested: the optional outputs are omitted */
    int64_t xd[2] = {3, 4}, sd[1] = {4};
    float *x = rand_buf(12), *sc = rand_buf(4);
    qf_tensor in[2] = {f32t(2, xd, x), f32t(1, sd, sc)};
    op_run r;
    qf_status s = op_parse(&r, "LayerNormalization", 17, NULL, 0, in, 2, 3, 1);
    if (s == QF_OK) s = op_exec(&r, in, 2);
    op_free(&r);
    CHECK_EQ_INT(s, QF_OK);
    /* a Scale that does not broadcast */
    int64_t bad_sd[1] = {3};
    in[1] = f32t(1, bad_sd, sc);
    s = op_call(&r, "LayerNormalization", 17, NULL, 0, in, 2, 1);
    op_free(&r);
    free(x);
    free(sc);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

/* ---- Softmax / LogSoftmax ----------------------------------------------------- */
static void test_softmax(void) {
    static const struct {
        int opset;
        int64_t axis;              /* INT64_MIN = attribute omitted */
        int64_t outer, len, inner; /* expected decomposition of dims {2, 3, 4} */
    } cases[] = {
        {13, INT64_MIN, 6, 4, 1},  {13, 1, 2, 3, 4}, {13, 0, 1, 2, 12}, {13, -2, 2, 3, 4},
        {11, INT64_MIN, 2, 12, 1}, {11, 2, 6, 4, 1}, {11, 0, 1, 24, 1},
    };
    int64_t dims[3] = {2, 3, 4};
    float *x = rand_buf(24);
    for (int i = 0; i < 24; i++)
        x[i] *= 5.0f;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int lg = 0; lg < 2; lg++) {
            double want[24];
            int64_t len = cases[ci].len, inner = cases[ci].inner;
            for (int64_t o = 0; o < cases[ci].outer; o++)
                for (int64_t k = 0; k < inner; k++) {
                    double sum = 0.0;
                    for (int64_t j = 0; j < len; j++)
                        sum += exp(x[(o * len + j) * inner + k]);
                    for (int64_t j = 0; j < len; j++) {
                        int64_t i = (o * len + j) * inner + k;
                        want[i] = lg ? x[i] - log(sum) : exp(x[i]) / sum;
                    }
                }
            qf_attr a = a_int("axis", cases[ci].axis);
            qf_tensor in[1] = {f32t(3, dims, x)};
            op_run r;
            qf_status s = op_call(&r, lg ? "LogSoftmax" : "Softmax", cases[ci].opset, &a,
                                  cases[ci].axis == INT64_MIN ? 0 : 1, in, 1, 1);
            int64_t bad = -1;
            bool ok = s == QF_OK && close_all(r.out[0].data, want, 24, 1e-5, &bad);
            op_free(&r);
            CHECK_MSG(ok, "%s case %zu (element %lld)", lg ? "logsoftmax" : "softmax", ci,
                      (long long)bad);
        }
    free(x);
    /* large inputs must not overflow: softmax([1000, 1001, 1002, 1003]) */
    float big[4] = {1000.0f, 1001.0f, 1002.0f, 1003.0f};
    static const double want_sm[4] = {0.0320586, 0.08714432, 0.23688284, 0.64391428};
    static const double want_lsm[4] = {-3.4401897, -2.4401897, -1.4401897, -0.4401897};
    int64_t bd[2] = {1, 4};
    qf_tensor in[1] = {f32t(2, bd, big)};
    op_run r;
    CHECK_RUN(op_call(&r, "Softmax", 13, NULL, 0, in, 1, 1), &r);
    int64_t bad;
    bool ok = close_all(r.out[0].data, want_sm, 4, 1e-6, &bad);
    op_free(&r);
    CHECK(ok);
    CHECK_RUN(op_call(&r, "LogSoftmax", 13, NULL, 0, in, 1, 1), &r);
    ok = close_all(r.out[0].data, want_lsm, 4, 1e-6, &bad);
    op_free(&r);
    CHECK(ok);
    qf_attr a = a_int("axis", 2);
    qf_status s = op_call(&r, "Softmax", 13, &a, 1, in, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
}

/* ---- Resize --------------------------------------------------------------------- */
typedef struct resize_io {
    qf_tensor in[4];
    int n_in;
} resize_io;

/* X plus either scales (float) or sizes (int64), as opset 13 lays them out */
static resize_io resize_inputs(qf_tensor x, float *scales, int64_t *sizes, int n) {
    resize_io io;
    int64_t d[1] = {n};
    io.in[0] = x;
    io.in[1] = omitted();
    io.in[2] = scales ? f32t(1, d, scales) : omitted();
    io.in[3] = sizes ? tens(QF_DT_I64, 1, d, sizes) : omitted();
    io.n_in = sizes ? 4 : 3;
    return io;
}

static bool resize_run(const qf_attr *attrs, int na, resize_io *io, int64_t rank,
                       const int64_t *exp_dims, const double *want, double tol, int opset) {
    op_run r;
    qf_status s = op_call(&r, "Resize", opset, attrs, na, io->in, io->n_in, 1);
    bool ok = s == QF_OK && r.out[0].rank == rank;
    for (int i = 0; ok && i < rank; i++)
        if (r.out[0].dims[i] != exp_dims[i]) ok = false;
    int64_t bad = -1;
    if (ok) ok = close_all(r.out[0].data, want, qf_tensor_numel(&r.out[0]), tol, &bad);
    if (!ok)
        fprintf(stderr, "    resize: status %d (%s), element %lld: got %.9g want %.9g\n", (int)s,
                r.err.msg, (long long)bad, bad >= 0 ? ((float *)r.out[0].data)[bad] : 0.0,
                bad >= 0 ? want[bad] : 0.0);
    op_free(&r);
    return ok;
}

static void test_resize_onnx_examples(void) {
    float x22[4] = {1, 2, 3, 4}, x24[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t d22[4] = {1, 1, 2, 2}, d24[4] = {1, 1, 2, 4};
    /* upsample_scales_nearest: scales 2 x 3 */
    float sc_up[4] = {1, 1, 2, 3};
    static const double near_up[24] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                       3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    qf_attr nearest = a_str("mode", "nearest");
    resize_io io = resize_inputs(f32t(4, d22, x22), sc_up, NULL, 4);
    int64_t e1[4] = {1, 1, 4, 6};
    CHECK(resize_run(&nearest, 1, &io, 4, e1, near_up, 0.0, 13));
    /* downsample_scales_nearest: 0.6 -> [[1, 3]] */
    float sc_dn[4] = {1, 1, 0.6f, 0.6f};
    static const double near_dn[2] = {1, 3};
    io = resize_inputs(f32t(4, d24, x24), sc_dn, NULL, 4);
    int64_t e2[4] = {1, 1, 1, 2};
    CHECK(resize_run(&nearest, 1, &io, 4, e2, near_dn, 0.0, 13));
    /* downsample_scales_linear (half_pixel): [[2.6666665, 4.3333331]] */
    qf_attr linear = a_str("mode", "linear");
    static const double lin_dn[2] = {2.6666665, 4.3333331};
    CHECK(resize_run(&linear, 1, &io, 4, e2, lin_dn, 1e-6, 13));
    /* downsample_scales_linear_align_corners: [[1, 3.142857]] */
    qf_attr lin_ac[2] = {linear, a_str("coordinate_transformation_mode", "align_corners")};
    static const double lin_dn_ac[2] = {1.0, 3.1428571};
    CHECK(resize_run(lin_ac, 2, &io, 4, e2, lin_dn_ac, 1e-6, 13));
    /* upsample_scales_linear (half_pixel), 2x2 -> 4x4 */
    float sc2[4] = {1, 1, 2, 2};
    static const double lin_up[16] = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                                      2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
    io = resize_inputs(f32t(4, d22, x22), sc2, NULL, 4);
    int64_t e3[4] = {1, 1, 4, 4};
    CHECK(resize_run(&linear, 1, &io, 4, e3, lin_up, 1e-6, 13));
    /* upsample_scales_linear_align_corners */
    static const double lin_up_ac[16] = {
        1,         1.3333333, 1.6666667, 2,         1.6666666, 2,         2.3333333, 2.6666665,
        2.3333333, 2.6666665, 3,         3.3333333, 3,         3.3333333, 3.6666667, 4};
    CHECK(resize_run(lin_ac, 2, &io, 4, e3, lin_up_ac, 1e-6, 13));
    /* downsample_sizes_nearest: sizes 1 x 3 */
    int64_t sz[4] = {1, 1, 1, 3};
    static const double near_sz[3] = {1, 2, 4};
    io = resize_inputs(f32t(4, d24, x24), NULL, sz, 4);
    int64_t e4[4] = {1, 1, 1, 3};
    CHECK(resize_run(&nearest, 1, &io, 4, e4, near_sz, 0.0, 13));
}

/* nearest index of one axis, written from the ONNX formulas */
static int64_t near_index(const char *ct, const char *nm, int64_t o, int64_t in, int64_t out) {
    double sc = (double)out / (double)in, x;
    if (strcmp(ct, "align_corners") == 0)
        x = out == 1 ? 0.0 : (double)o * (double)(in - 1) / (double)(out - 1);
    else if (strcmp(ct, "asymmetric") == 0)
        x = (double)o / sc;
    else if (strcmp(ct, "tf_half_pixel_for_nearest") == 0)
        x = ((double)o + 0.5) / sc;
    else
        x = ((double)o + 0.5) / sc - 0.5;
    double fl = floor(x), fr = x - fl;
    int64_t i;
    if (strcmp(nm, "floor") == 0)
        i = (int64_t)fl;
    else if (strcmp(nm, "ceil") == 0)
        i = (int64_t)ceil(x);
    else if (strcmp(nm, "round_prefer_ceil") == 0)
        i = fr >= 0.5 ? (int64_t)fl + 1 : (int64_t)fl;
    else
        i = fr > 0.5 ? (int64_t)fl + 1 : (int64_t)fl;
    return i < 0 ? 0 : i >= in ? in - 1 : i;
}

static void test_resize_nearest_modes(void) {
    static const char *const cts[] = {"half_pixel", "align_corners", "asymmetric",
                                      "tf_half_pixel_for_nearest"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    int64_t xd[4] = {1, 2, 5, 4};
    float *x = rand_buf(40);
    int64_t sizes[4] = {1, 2, 8, 3};
    for (int c = 0; c < 4; c++)
        for (int m = 0; m < 4; m++) {
            double want[48];
            for (int ch = 0; ch < 2; ch++)
                for (int64_t oy = 0; oy < 8; oy++)
                    for (int64_t ox = 0; ox < 3; ox++) {
                        int64_t iy = near_index(cts[c], nms[m], oy, 5, 8);
                        int64_t ix = near_index(cts[c], nms[m], ox, 4, 3);
                        want[(ch * 8 + oy) * 3 + ox] = x[(ch * 5 + iy) * 4 + ix];
                    }
            qf_attr a[3] = {a_str("mode", "nearest"),
                            a_str("coordinate_transformation_mode", cts[c]),
                            a_str("nearest_mode", nms[m])};
            resize_io io = resize_inputs(f32t(4, xd, x), NULL, sizes, 4);
            bool ok = resize_run(a, 3, &io, 4, sizes, want, 0.0, 13);
            CHECK_MSG(ok, "nearest %s / %s", cts[c], nms[m]);
        }
    free(x);
}

/* bilinear with clamped source coordinates (equivalent to edge padding) */
static void test_resize_bilinear_random(void) {
    static const char *const cts[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                      "asymmetric"};
    int64_t xd[4] = {2, 3, 5, 6};
    float *x = rand_buf(prod(xd, 4));
    float scales[4] = {1.0f, 1.0f, 1.6f, 0.5f};
    int64_t od[4] = {2, 3, 8, 3};
    for (int c = 0; c < 4; c++) {
        double *want = malloc(sizeof(double) * (size_t)prod(od, 4));
        for (int64_t p = 0; p < 6; p++)
            for (int64_t oy = 0; oy < 8; oy++)
                for (int64_t ox = 0; ox < 3; ox++) {
                    double src[2];
                    int64_t o[2] = {oy, ox}, in[2] = {5, 6};
                    double sc[2] = {1.6f, 0.5f};
                    for (int a = 0; a < 2; a++) {
                        double v;
                        if (c == 0 || c == 1)
                            v = ((double)o[a] + 0.5) / sc[a] - 0.5;
                        else if (c == 2)
                            v = (double)o[a] * (double)(in[a] - 1) / (sc[a] * in[a] - 1.0);
                        else
                            v = (double)o[a] / sc[a];
                        src[a] = v < 0 ? 0 : v > in[a] - 1 ? (double)(in[a] - 1) : v;
                    }
                    int64_t y0 = (int64_t)floor(src[0]), x0 = (int64_t)floor(src[1]);
                    int64_t y1 = y0 + 1 < 5 ? y0 + 1 : 4, x1 = x0 + 1 < 6 ? x0 + 1 : 5;
                    double ly = src[0] - y0, lx = src[1] - x0;
                    const float *pl = x + p * 30;
                    want[(p * 8 + oy) * 3 + ox] =
                        (1 - ly) * ((1 - lx) * pl[y0 * 6 + x0] + lx * pl[y0 * 6 + x1]) +
                        ly * ((1 - lx) * pl[y1 * 6 + x0] + lx * pl[y1 * 6 + x1]);
                }
        qf_attr a[2] = {a_str("mode", "linear"), a_str("coordinate_transformation_mode", cts[c])};
        resize_io io = resize_inputs(f32t(4, xd, x), scales, NULL, 4);
        bool ok = resize_run(a, 2, &io, 4, od, want, 1e-5, 13);
        free(want);
        CHECK_MSG(ok, "bilinear %s", cts[c]);
    }
    free(x);
}

static void test_resize_misc(void) {
    /* tf_crop_and_resize: roi outside the input gives extrapolation_value */
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    int64_t xd[4] = {1, 1, 4, 4}, rd[1] = {8}, sd[1] = {4};
    float roi[8] = {0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f};
    int64_t sizes[4] = {1, 1, 3, 3};
    static const double want[9] = {7.6000004, 10, 10, 12.400001, 10, 10, 10, 10, 10};
    qf_attr a[3] = {a_str("mode", "linear"),
                    a_str("coordinate_transformation_mode", "tf_crop_and_resize"),
                    a_float("extrapolation_value", 10.0f)};
    resize_io io;
    io.in[0] = f32t(4, xd, x);
    io.in[1] = f32t(1, rd, roi);
    io.in[2] = omitted();
    io.in[3] = tens(QF_DT_I64, 1, sd, sizes);
    io.n_in = 4;
    CHECK(resize_run(a, 3, &io, 4, sizes, want, 1e-6, 13));
    /* cubic on a constant image stays constant (weights sum to one), with
     * and without exclude_outside */
    float cst[16];
    for (int i = 0; i < 16; i++)
        cst[i] = 2.5f;
    float sc[4] = {1, 1, 2, 0.75f};
    int64_t od[4] = {1, 1, 8, 3};
    double want_c[24];
    for (int i = 0; i < 24; i++)
        want_c[i] = 2.5;
    for (int ex = 0; ex < 2; ex++) {
        qf_attr ac[3] = {a_str("mode", "cubic"), a_int("exclude_outside", ex),
                         a_float("cubic_coeff_a", -0.5f)};
        io = resize_inputs(f32t(4, xd, cst), sc, NULL, 4);
        CHECK(resize_run(ac, 3, &io, 4, od, want_c, 1e-6, 13));
    }
    /* opset 18 axes: resize only the last axis; keep_aspect_ratio_policy */
    int64_t ax[1] = {-1}, sz1[1] = {8};
    double want_ax[32];
    for (int i = 0; i < 32; i++)
        want_ax[i] = x[(i / 8) * 4 + (i % 8) / 2];
    qf_attr aa[2] = {a_str("mode", "nearest"), a_ints("axes", ax, 1)};
    int64_t one[1] = {1};
    io.in[0] = f32t(4, xd, x);
    io.in[1] = omitted();
    io.in[2] = omitted();
    io.in[3] = tens(QF_DT_I64, 1, one, sz1);
    io.n_in = 4;
    int64_t e_ax[4] = {1, 1, 4, 8};
    CHECK(resize_run(aa, 2, &io, 4, e_ax, want_ax, 0.0, 18));
    int64_t ax2[2] = {2, 3}, sz2[2] = {8, 6}, two[1] = {2};
    qf_attr ak[3] = {a_str("mode", "nearest"), a_ints("axes", ax2, 2),
                     a_str("keep_aspect_ratio_policy", "not_larger")};
    io.in[3] = tens(QF_DT_I64, 1, two, sz2);
    int64_t e_k[4] = {1, 1, 6, 6}; /* scale min(8/4, 6/4) = 1.5 on both axes */
    double want_k[36];
    for (int oy = 0; oy < 6; oy++)
        for (int ox = 0; ox < 6; ox++) {
            int64_t iy = (int64_t)floor((oy + 0.5) / 1.5 - 0.5 + 0.5);
            int64_t ix = (int64_t)floor((ox + 0.5) / 1.5 - 0.5 + 0.5);
            /* round_prefer_floor: exact halves go down */
            double fy = (oy + 0.5) / 1.5 - 0.5, fx = (ox + 0.5) / 1.5 - 0.5;
            if (fy - floor(fy) == 0.5) iy = (int64_t)floor(fy);
            if (fx - floor(fx) == 0.5) ix = (int64_t)floor(fx);
            iy = iy < 0 ? 0 : iy > 3 ? 3 : iy;
            ix = ix < 0 ? 0 : ix > 3 ? 3 : ix;
            want_k[oy * 6 + ox] = x[iy * 4 + ix];
        }
    CHECK(resize_run(ak, 3, &io, 4, e_k, want_k, 0.0, 18));
    /* opset 10: (X, scales), asymmetric, nearest truncates */
    float sc10[4] = {1, 1, 2, 1.5f};
    int64_t d4[1] = {4};
    io.in[0] = f32t(4, xd, x);
    io.in[1] = f32t(1, d4, sc10);
    io.n_in = 2;
    int64_t e10[4] = {1, 1, 8, 6};
    double want10[48];
    for (int oy = 0; oy < 8; oy++)
        for (int ox = 0; ox < 6; ox++)
            want10[oy * 6 + ox] = x[(oy / 2) * 4 + (int)(ox / 1.5)];
    CHECK(resize_run(&aa[0], 1, &io, 4, e10, want10, 0.0, 10));
    /* rejected: antialias, unknown modes, both scales and sizes */
    op_run r;
    qf_attr bad1 = a_int("antialias", 1);
    io = resize_inputs(f32t(4, xd, x), sc, NULL, 4);
    qf_status s = op_parse(&r, "Resize", 18, &bad1, 1, io.in, io.n_in, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    qf_attr bad2 = a_str("mode", "lanczos");
    s = op_parse(&r, "Resize", 13, &bad2, 1, io.in, io.n_in, 1, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    int64_t both_sizes[4] = {1, 1, 8, 3};
    io = resize_inputs(f32t(4, xd, x), sc, both_sizes, 4);
    s = op_call(&r, "Resize", 13, NULL, 0, io.in, io.n_in, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
}

QT_MAIN(QT_CASE(test_registry), QT_CASE(test_sgemm), QT_CASE(test_conv_cases),
        QT_CASE(test_conv_onnx_example), QT_CASE(test_conv_errors),
        QT_CASE(test_conv_transpose_cases), QT_CASE(test_conv_transpose_onnx_example),
        QT_CASE(test_conv_transpose_errors), QT_CASE(test_gemm), QT_CASE(test_matmul),
        QT_CASE(test_pool_cases), QT_CASE(test_maxpool_nan), QT_CASE(test_pool_onnx_examples),
        QT_CASE(test_maxpool_int8), QT_CASE(test_global_pools), QT_CASE(test_batch_norm),
        QT_CASE(test_layer_norm), QT_CASE(test_softmax), QT_CASE(test_resize_onnx_examples),
        QT_CASE(test_resize_nearest_modes), QT_CASE(test_resize_bilinear_random),
        QT_CASE(test_resize_misc))
