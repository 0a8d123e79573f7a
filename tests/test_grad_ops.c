/* test_grad_ops.c - every backward kernel against central finite
 * differences, through the tape.
 *
 * Each case builds a one-node graph: some inputs are graph inputs (their
 * gradient comes from qf_tape_input_grad), some float constants (they
 * become tape parameters, gradient in qf_param.grad), some non-differentiable
 * constants (shapes, bounds, running statistics). The loss is
 * L = sum(Y * R) for a fixed random R, so dL/dY = R; each analytic gradient
 * element is compared with (L(x + eps) - L(x - eps)) / (2 eps) evaluated by
 * two more forwards (L summed in double). Inputs are kept away from kinks
 * (Relu/Clip/HardSigmoid/HardSwish bounds) and from MaxPool ties.
 * Separate cases check Dropout (mask routing), FakeQuantize (STE and LSQ
 * against hand-written formulas; forward by hand and through the float
 * runtime) and the op coverage of the backward table.
 */
#include <math.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "qforge.h"
#include "qtest.h"
#include "runtime/runtime.h"
#include "train/autograd.h"
#include "train/grad.h"

/* the case tables leave trailing fields to their zero defaults */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* ---- utilities ----------------------------------------------------------- */
static uint32_t rng = 2463534242u;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)(rng >> 8) / (float)(1u << 23) - 1.0f;
}

enum { IN_NONE = 0, IN_VAR, IN_PARAM, IN_CONST, IN_CONST_I64 };
enum { GEN_UNI = 0, GEN_POS, GEN_DISTINCT, GEN_WIDE };

typedef struct in_spec {
    int kind;
    int rank;
    int64_t dims[6];
    int gen;
    float fv[4];   /* IN_CONST with gen < 0: explicit values (numel <= 4) */
    int64_t iv[6]; /* IN_CONST_I64 values */
} in_spec;

typedef struct attr_spec {
    const char *name;
    int type; /* QF_ATTR_INT, FLOAT, INTS, STRING */
    int64_t i;
    float f;
    int n;
    int64_t ints[6];
    const char *s;
} attr_spec;

typedef struct grad_case {
    const char *label, *op;
    int opset;
    int n_in;
    in_spec in[5];
    int n_attr;
    attr_spec at[6];
    int n_out;
    bool training;
    int n_kink;
    float kink[4];
} grad_case;

#define T4(a, b, c, d)                                                                             \
    4, { a, b, c, d }
#define T3(a, b, c)                                                                                \
    3, { a, b, c }
#define T2(a, b)                                                                                   \
    2, { a, b }
#define T1(a)                                                                                      \
    1, { a }
#define VAR(...)                                                                                   \
    { IN_VAR, __VA_ARGS__ }
#define PAR(...)                                                                                   \
    { IN_PARAM, __VA_ARGS__ }
#define AI(nm, v)                                                                                  \
    { nm, QF_ATTR_INT, v, 0, 0, {0}, NULL }
#define AF(nm, v)                                                                                  \
    { nm, QF_ATTR_FLOAT, 0, v, 0, {0}, NULL }
#define AS(nm, v)                                                                                  \
    { nm, QF_ATTR_STRING, 0, 0, 0, {0}, v }
#define AIS(nm, cnt, ...)                                                                          \
    { nm, QF_ATTR_INTS, 0, 0, cnt, {__VA_ARGS__}, NULL }

static const grad_case cases[] = {
    /* Conv */
    {"conv_pad1",
     "Conv",
     13,
     3,
     {VAR(T4(2, 3, 5, 5)), PAR(T4(4, 3, 3, 3)), PAR(T1(4))},
     1,
     {AIS("pads", 4, 1, 1, 1, 1)},
     1},
    {"conv_stride_dil_asym",
     "Conv",
     13,
     2,
     {VAR(T4(1, 2, 7, 6)), PAR(T4(3, 2, 3, 2))},
     3,
     {AIS("strides", 2, 2, 1), AIS("dilations", 2, 1, 2), AIS("pads", 4, 1, 0, 0, 1)},
     1},
    {"conv_groups2",
     "Conv",
     13,
     3,
     {VAR(T4(1, 4, 5, 5)), PAR(T4(6, 2, 3, 3)), PAR(T1(6))},
     1,
     {AI("group", 2)},
     1},
    {"conv_depthwise_s2",
     "Conv",
     13,
     3,
     {VAR(T4(2, 3, 6, 6)), PAR(T4(3, 1, 3, 3)), PAR(T1(3))},
     3,
     {AI("group", 3), AIS("strides", 2, 2, 2), AIS("pads", 4, 1, 1, 1, 1)},
     1},
    {"conv_depthwise_mult_dil",
     "Conv",
     13,
     3,
     {VAR(T4(1, 2, 5, 5)), PAR(T4(4, 1, 3, 3)), PAR(T1(4))},
     3,
     {AI("group", 2), AIS("dilations", 2, 2, 2), AIS("pads", 4, 2, 1, 2, 1)},
     1},
    {"conv3d",
     "Conv",
     13,
     2,
     {VAR(5, {1, 2, 3, 4, 4}), PAR(5, {2, 2, 2, 2, 2})},
     1,
     {AIS("strides", 3, 1, 2, 1)},
     1},
    {"conv_pointwise", "Conv", 13, 2, {VAR(T4(2, 4, 3, 3)), PAR(T4(5, 4, 1, 1))}, 0, {{0}}, 1},
    {"conv1d_same",
     "Conv",
     13,
     2,
     {VAR(T3(2, 2, 7)), PAR(T3(3, 2, 3))},
     1,
     {AS("auto_pad", "SAME_UPPER")},
     1},
    {"convT_s2_outpad",
     "ConvTranspose",
     13,
     3,
     {VAR(T4(1, 2, 3, 3)), PAR(T4(2, 3, 3, 3)), PAR(T1(3))},
     3,
     {AIS("strides", 2, 2, 2), AIS("pads", 4, 1, 1, 1, 1), AIS("output_padding", 2, 1, 1)},
     1},
    {"convT_group2",
     "ConvTranspose",
     13,
     2,
     {VAR(T4(1, 4, 3, 3)), PAR(T4(4, 1, 2, 2))},
     2,
     {AI("group", 2), AIS("strides", 2, 2, 2)},
     1},
    /* Gemm / MatMul */
    {"gemm_bias", "Gemm", 13, 3, {VAR(T2(3, 4)), PAR(T2(4, 5)), PAR(T1(5))}, 0, {{0}}, 1},
    {"gemm_trans_alpha_beta",
     "Gemm",
     13,
     3,
     {VAR(T2(4, 3)), PAR(T2(5, 4)), PAR(T2(3, 1))},
     4,
     {AI("transA", 1), AI("transB", 1), AF("alpha", 0.7f), AF("beta", 1.3f)},
     1},
    {"gemm_transB_var",
     "Gemm",
     13,
     3,
     {VAR(T2(2, 3)), VAR(T2(4, 3)), PAR(T2(2, 4))},
     1,
     {AI("transB", 1)},
     1},
    {"matmul_3d_2d", "MatMul", 13, 2, {VAR(T3(2, 3, 4)), PAR(T2(4, 5))}, 0, {{0}}, 1},
    {"matmul_bcast", "MatMul", 13, 2, {VAR(T4(2, 1, 3, 4)), VAR(T3(3, 4, 2))}, 0, {{0}}, 1},
    {"matmul_1d", "MatMul", 13, 2, {VAR(T1(4)), PAR(T2(4, 3))}, 0, {{0}}, 1},
    /* broadcasting binaries */
    {"add_bcast", "Add", 14, 2, {VAR(T3(2, 3, 4)), PAR(T2(3, 1))}, 0, {{0}}, 1},
    {"sub_bcast", "Sub", 14, 2, {VAR(T2(2, 3)), VAR(T2(1, 3))}, 0, {{0}}, 1},
    {"mul_bcast", "Mul", 14, 2, {VAR(T3(2, 3, 4)), PAR(T1(4))}, 0, {{0}}, 1},
    {"mul_both_bcast", "Mul", 14, 2, {VAR(T3(2, 1, 4)), VAR(T2(3, 1))}, 0, {{0}}, 1},
    {"div_bcast", "Div", 14, 2, {VAR(T2(2, 3)), {IN_VAR, T2(2, 1), GEN_POS}}, 0, {{0}}, 1},
    /* activations */
    {"relu", "Relu", 14, 1, {VAR(T2(3, 5))}, 0, {{0}}, 1, false, 1, {0.0f}},
    {"leaky_relu",
     "LeakyRelu",
     16,
     1,
     {VAR(T2(3, 5))},
     1,
     {AF("alpha", 0.1f)},
     1,
     false,
     1,
     {0.0f}},
    {"clip_inputs",
     "Clip",
     13,
     3,
     {VAR(T2(3, 5)), {IN_CONST, 0, {0}, -1, {-0.5f}}, {IN_CONST, 0, {0}, -1, {0.5f}}},
     0,
     {{0}},
     1,
     false,
     2,
     {-0.5f, 0.5f}},
    {"clip_attrs_opset6",
     "Clip",
     6,
     1,
     {VAR(T2(3, 5))},
     2,
     {AF("min", -0.3f), AF("max", 0.6f)},
     1,
     false,
     2,
     {-0.3f, 0.6f}},
    {"sigmoid", "Sigmoid", 13, 1, {{IN_VAR, T2(3, 5), GEN_WIDE}}, 0, {{0}}, 1},
    {"hard_sigmoid",
     "HardSigmoid",
     6,
     1,
     {{IN_VAR, T2(3, 5), GEN_WIDE}},
     2,
     {AF("alpha", 0.25f), AF("beta", 0.5f)},
     1,
     false,
     2,
     {-2.0f, 2.0f}},
    {"hard_swish",
     "HardSwish",
     14,
     1,
     {{IN_VAR, T2(4, 5), GEN_WIDE}},
     0,
     {{0}},
     1,
     false,
     2,
     {-3.0f, 3.0f}},
    {"tanh", "Tanh", 13, 1, {VAR(T2(3, 5))}, 0, {{0}}, 1},
    {"softmax_axis1_op13",
     "Softmax",
     13,
     1,
     {{IN_VAR, T3(2, 3, 4), GEN_WIDE}},
     1,
     {AI("axis", 1)},
     1},
    {"softmax_last", "Softmax", 13, 1, {VAR(T2(3, 5))}, 0, {{0}}, 1},
    {"softmax_op11_coerce", "Softmax", 11, 1, {VAR(T3(2, 3, 4))}, 1, {AI("axis", 1)}, 1},
    /* pooling */
    {"maxpool_2x2",
     "MaxPool",
     12,
     1,
     {{IN_VAR, T4(1, 2, 4, 4), GEN_DISTINCT}},
     2,
     {AIS("kernel_shape", 2, 2, 2), AIS("strides", 2, 2, 2)},
     1},
    {"maxpool_3x3_s2_p1",
     "MaxPool",
     12,
     1,
     {{IN_VAR, T4(2, 2, 5, 5), GEN_DISTINCT}},
     3,
     {AIS("kernel_shape", 2, 3, 3), AIS("strides", 2, 2, 2), AIS("pads", 4, 1, 1, 1, 1)},
     1},
    {"avgpool_excl_pad",
     "AveragePool",
     11,
     1,
     {VAR(T4(1, 2, 5, 5))},
     3,
     {AIS("kernel_shape", 2, 3, 3), AIS("strides", 2, 2, 2), AIS("pads", 4, 1, 1, 1, 1)},
     1},
    {"avgpool_incl_pad",
     "AveragePool",
     11,
     1,
     {VAR(T4(1, 2, 5, 5))},
     4,
     {AIS("kernel_shape", 2, 3, 3), AIS("strides", 2, 2, 2), AIS("pads", 4, 1, 1, 1, 1),
      AI("count_include_pad", 1)},
     1},
    {"avgpool_ceil",
     "AveragePool",
     11,
     1,
     {VAR(T4(1, 1, 6, 6))},
     3,
     {AIS("kernel_shape", 2, 3, 3), AIS("strides", 2, 2, 2), AI("ceil_mode", 1)},
     1},
    {"global_avgpool", "GlobalAveragePool", 13, 1, {VAR(T4(2, 3, 4, 4))}, 0, {{0}}, 1},
    /* normalisation */
    {"bn_inference",
     "BatchNormalization",
     15,
     5,
     {VAR(T4(2, 3, 3, 3)),
      PAR(T1(3)),
      PAR(T1(3)),
      {IN_CONST, T1(3), GEN_UNI},
      {IN_CONST, T1(3), GEN_POS}},
     1,
     {AF("epsilon", 1e-3f)},
     1},
    {"bn_training",
     "BatchNormalization",
     15,
     5,
     {VAR(T4(3, 2, 2, 3)),
      PAR(T1(2)),
      PAR(T1(2)),
      {IN_CONST, T1(2), GEN_UNI},
      {IN_CONST, T1(2), GEN_POS}},
     1,
     {AF("epsilon", 1e-3f)},
     1,
     true},
    {"bn_training_2d",
     "BatchNormalization",
     15,
     5,
     {VAR(T2(5, 3)),
      PAR(T1(3)),
      PAR(T1(3)),
      {IN_CONST, T1(3), GEN_UNI},
      {IN_CONST, T1(3), GEN_POS}},
     0,
     {{0}},
     1,
     true},
    {"layernorm_last",
     "LayerNormalization",
     17,
     3,
     {VAR(T3(2, 3, 4)), PAR(T1(4)), PAR(T1(4))},
     0,
     {{0}},
     1},
    {"layernorm_axis1",
     "LayerNormalization",
     17,
     3,
     {VAR(T3(2, 3, 4)), PAR(T2(3, 4)), PAR(T2(1, 4))},
     1,
     {AI("axis", 1)},
     1},
    /* data movement */
    {"flatten", "Flatten", 13, 1, {VAR(T4(2, 3, 2, 2))}, 1, {AI("axis", 1)}, 1},
    {"reshape",
     "Reshape",
     14,
     2,
     {VAR(T3(2, 3, 4)), {IN_CONST_I64, T1(2), 0, {0}, {-1, 6}}},
     0,
     {{0}},
     1},
    {"transpose", "Transpose", 13, 1, {VAR(T3(2, 3, 4))}, 1, {AIS("perm", 3, 2, 0, 1)}, 1},
    {"transpose_default", "Transpose", 13, 1, {VAR(T3(2, 3, 4))}, 0, {{0}}, 1},
    {"concat",
     "Concat",
     13,
     3,
     {VAR(T3(2, 1, 3)), PAR(T3(2, 2, 3)), VAR(T3(2, 3, 3))},
     1,
     {AI("axis", 1)},
     1},
    {"identity", "Identity", 16, 1, {VAR(T2(2, 3))}, 0, {{0}}, 1},
    {"unsqueeze",
     "Unsqueeze",
     13,
     2,
     {VAR(T2(2, 3)), {IN_CONST_I64, T1(1), 0, {0}, {1}}},
     0,
     {{0}},
     1},
    {"squeeze",
     "Squeeze",
     13,
     2,
     {VAR(T3(2, 1, 3)), {IN_CONST_I64, T1(1), 0, {0}, {1}}},
     0,
     {{0}},
     1},
    {"dropout_inference", "Dropout", 13, 1, {VAR(T2(2, 3))}, 0, {{0}}, 1},
};

static qf_attr make_attr(const attr_spec *s) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = s->name;
    a.type = (qf_attr_type)s->type;
    a.i = s->i;
    a.f = s->f;
    a.s = s->s;
    a.n = s->n;
    a.ints = (int64_t *)s->ints;
    return a;
}

static int64_t numel_of(const in_spec *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

static bool near_kink(const grad_case *c, float v) {
    for (int k = 0; k < c->n_kink; k++)
        if (fabsf(v - c->kink[k]) < 0.03f) return true;
    return false;
}

static void fill(const grad_case *c, const in_spec *s, float *p, int64_t n) {
    if (s->gen == GEN_DISTINCT) {
        /* a shuffled ramp: neighbours differ by 2/n, far more than 2 eps */
        for (int64_t i = 0; i < n; i++)
            p[i] = -1.0f + 2.0f * (float)i / (float)n;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)((frand() + 1.0f) * 0.5f * (float)(i + 1));
            if (j > i) j = i;
            float t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v;
        do {
            v = frand();
            if (s->gen == GEN_POS) v = 0.5f + fabsf(v);
            if (s->gen == GEN_WIDE) v *= 4.0f;
        } while (near_kink(c, v));
        p[i] = v;
    }
}

/* tape threads: the FD cases run with 1 and with 2 (thread pool paths) */
static int g_threads = 1;

typedef struct harness {
    qf_graph *g;
    qf_tape *t;
    float *data[5];
    int value[5];
    int n_vars;
    qf_tensor feeds[5];
    int var_slot[5]; /* slot of graph input k */
    qf_err err;
} harness;

static void harness_free(harness *h) {
    qf_tape_free(h->t);
    qf_graph_free(h->g);
    for (int i = 0; i < 5; i++)
        free(h->data[i]);
}

static qf_status build(const grad_case *c, harness *h) {
    memset(h, 0, sizeof *h);
    h->g = qf_graph_create();
    int ins[5];
    for (int i = 0; i < c->n_in; i++) {
        const in_spec *s = &c->in[i];
        ins[i] = -1;
        h->value[i] = -1;
        if (s->kind == IN_NONE) continue;
        char name[16];
        snprintf(name, sizeof name, "in%d", i);
        qf_dtype dt = s->kind == IN_CONST_I64 ? QF_DT_I64 : QF_DT_F32;
        int v = qf_graph_add_value(h->g, name, dt, s->rank, s->dims);
        ins[i] = h->value[i] = v;
        int64_t n = numel_of(s);
        if (s->kind == IN_CONST_I64) {
            qf_tensor t = {QF_DT_I64, s->rank, {0}, (void *)s->iv};
            for (int k = 0; k < s->rank; k++)
                t.dims[k] = s->dims[k];
            qf_status st = qf_graph_set_const(h->g, v, &t, &h->err);
            if (st) return st;
            continue;
        }
        h->data[i] = malloc(sizeof(float) * (size_t)(n ? n : 1));
        if (s->kind == IN_CONST && s->gen < 0)
            memcpy(h->data[i], s->fv, sizeof(float) * (size_t)n);
        else
            fill(c, s, h->data[i], n);
        qf_tensor t = {QF_DT_F32, s->rank, {0}, h->data[i]};
        for (int k = 0; k < s->rank; k++)
            t.dims[k] = s->dims[k];
        if (s->kind == IN_VAR) {
            h->var_slot[h->n_vars] = i;
            h->feeds[h->n_vars++] = t;
            qf_graph_add_input(h->g, v);
        } else {
            qf_status st = qf_graph_set_const(h->g, v, &t, &h->err);
            if (st) return st;
        }
    }
    int outs[3];
    for (int j = 0; j < c->n_out; j++) {
        char name[16];
        snprintf(name, sizeof name, "out%d", j);
        outs[j] = qf_graph_add_value(h->g, name, QF_DT_UNDEF, -1, NULL);
    }
    qf_attr attrs[6];
    for (int k = 0; k < c->n_attr; k++)
        attrs[k] = make_attr(&c->at[k]);
    if (qf_graph_add_node(h->g, c->label, c->op, "", c->opset, ins, c->n_in, outs, c->n_out, attrs,
                          c->n_attr) < 0)
        return QF_ERR_NOMEM;
    qf_graph_add_output(h->g, outs[0]);
    qf_status st = qf_graph_parse_ops(h->g, &h->err);
    if (st) return st;
    qf_tape_options opt = {.num_threads = g_threads, .seed = 7, .input_grads = true};
    return qf_tape_create(h->g, &opt, &h->t, &h->err);
}

/* L = sum(Y * R) of a fresh forward */
static qf_status loss(const grad_case *c, harness *h, const float *r, double *out) {
    qf_status st = qf_tape_forward(h->t, h->feeds, h->n_vars, c->training, &h->err);
    if (st) return st;
    const qf_tensor *y = qf_tape_output(h->t, 0);
    int64_t n = qf_tensor_numel(y);
    const float *yv = y->data;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)yv[i] * r[i];
    *out = s;
    return QF_OK;
}

#define FD_EPS 1e-3f
#define FD_MAX_POINTS 48

static void run_case(const grad_case *c) {
    harness h;
    qf_status st = build(c, &h);
    CHECK_MSG(st == QF_OK, "%s: build: %s", c->label, h.err.msg);
    st = qf_tape_forward(h.t, h.feeds, h.n_vars, c->training, &h.err);
    CHECK_MSG(st == QF_OK, "%s: forward: %s", c->label, h.err.msg);
    const qf_tensor *y = qf_tape_output(h.t, 0);
    int64_t ny = qf_tensor_numel(y);
    float *r = malloc(sizeof(float) * (size_t)ny);
    for (int64_t i = 0; i < ny; i++)
        r[i] = frand();
    qf_tensor dy = *y;
    dy.data = r;
    st = qf_tape_backward(h.t, &dy, 1, &h.err);
    CHECK_MSG(st == QF_OK, "%s: backward: %s", c->label, h.err.msg);
    /* snapshot the analytic gradients before the FD forwards */
    float *grads[5] = {0};
    float *target[5] = {0};
    int checked = 0;
    for (int i = 0; i < c->n_in; i++) {
        const in_spec *s = &c->in[i];
        int64_t n = numel_of(s);
        if (s->kind == IN_VAR) {
            int k = 0;
            while (h.var_slot[k] != i)
                k++;
            const qf_tensor *gt = qf_tape_input_grad(h.t, k);
            CHECK_MSG(gt != NULL, "%s: no gradient for input %d", c->label, i);
            grads[i] = malloc(sizeof(float) * (size_t)n);
            memcpy(grads[i], gt->data, sizeof(float) * (size_t)n);
            target[i] = h.data[i]; /* the feed: the tape copies it each forward */
        } else if (s->kind == IN_PARAM) {
            qf_param *p = NULL;
            for (int k = 0; k < qf_tape_num_params(h.t); k++)
                if (qf_tape_param(h.t, k)->value == h.value[i]) p = qf_tape_param(h.t, k);
            CHECK_MSG(p != NULL, "%s: input %d is not a parameter", c->label, i);
            CHECK_EQ_INT(p->n, n);
            grads[i] = malloc(sizeof(float) * (size_t)n);
            memcpy(grads[i], p->grad, sizeof(float) * (size_t)n);
            target[i] = p->data;
        }
    }
    bool ok = true;
    for (int i = 0; i < c->n_in && ok; i++) {
        if (!grads[i]) continue;
        int64_t n = numel_of(&c->in[i]);
        int64_t step = n > FD_MAX_POINTS ? n / FD_MAX_POINTS : 1;
        for (int64_t e = 0; e < n && ok; e += step) {
            float keep = target[i][e];
            double lp = 0, lm = 0;
            target[i][e] = keep + FD_EPS;
            st = loss(c, &h, r, &lp);
            target[i][e] = keep - FD_EPS;
            if (!st) st = loss(c, &h, r, &lm);
            target[i][e] = keep;
            if (st) {
                ok = false;
                break;
            }
            double num = (lp - lm) / (2.0 * (double)FD_EPS), an = grads[i][e];
            double tol = 3e-3 + 1e-2 * fmax(fabs(num), fabs(an));
            if (fabs(num - an) > tol) {
                fprintf(stderr, "  %s: input %d elem %lld: analytic %.6g, numeric %.6g\n", c->label,
                        i, (long long)e, an, num);
                ok = false;
            }
            checked++;
        }
    }
    for (int i = 0; i < 5; i++)
        free(grads[i]);
    free(r);
    harness_free(&h);
    CHECK_MSG(st == QF_OK, "%s: FD forward failed", c->label);
    CHECK_MSG(ok, "%s: gradient mismatch", c->label);
    CHECK_MSG(checked > 0, "%s: nothing checked", c->label);
}

static void test_finite_differences(void) {
    /* run every case (each reports its own failure) */
    int failed = 0;
    for (g_threads = 1; g_threads <= 2; g_threads++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            qt_failed_flag = 0;
            run_case(&cases[i]);
            failed += qt_failed_flag;
        }
    g_threads = 1;
    qt_failed_flag = failed > 0;
}

/* Every op the brief lists has a backward in the table. */
static void test_coverage(void) {
    static const qf_op_id ops[] = {QF_OP_CONV,
                                   QF_OP_CONV_TRANSPOSE,
                                   QF_OP_GEMM,
                                   QF_OP_MATMUL,
                                   QF_OP_ADD,
                                   QF_OP_SUB,
                                   QF_OP_MUL,
                                   QF_OP_DIV,
                                   QF_OP_RELU,
                                   QF_OP_LEAKY_RELU,
                                   QF_OP_CLIP,
                                   QF_OP_SIGMOID,
                                   QF_OP_HARD_SIGMOID,
                                   QF_OP_HARD_SWISH,
                                   QF_OP_TANH,
                                   QF_OP_SOFTMAX,
                                   QF_OP_MAX_POOL,
                                   QF_OP_AVERAGE_POOL,
                                   QF_OP_GLOBAL_AVERAGE_POOL,
                                   QF_OP_BATCH_NORM,
                                   QF_OP_LAYER_NORM,
                                   QF_OP_FLATTEN,
                                   QF_OP_RESHAPE,
                                   QF_OP_TRANSPOSE,
                                   QF_OP_CONCAT,
                                   QF_OP_DROPOUT,
                                   QF_OP_IDENTITY,
                                   QF_OP_FAKE_QUANTIZE};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        const qf_grad_def *g = qf_grad_get(ops[i]);
        CHECK_MSG(g && g->backward, "%s has no backward", qf_op_name(ops[i]));
        CHECK(g->diff_inputs & 1u);
    }
    CHECK(qf_grad_get(QF_OP_SHAPE) == NULL);
    CHECK(qf_grad_get(QF_OP_UNKNOWN) == NULL);
}

/* ---- Dropout in training mode --------------------------------------------- */
static void test_dropout_training(void) {
    grad_case c = {
        "dropout_train", "Dropout", 13,  2, {VAR(T2(40, 50)), {IN_CONST, 0, {0}, -1, {0.25f}}}, 0,
        {{0}},           1,         true};
    harness h;
    qf_status st = build(&c, &h);
    CHECK_MSG(st == QF_OK, "build: %s", h.err.msg);
    /* inputs away from 0 so y/x identifies the mask */
    for (int i = 0; i < 2000; i++)
        h.data[0][i] = 0.5f + fabsf(frand());
    st = qf_tape_forward(h.t, h.feeds, 1, true, &h.err);
    CHECK_MSG(st == QF_OK, "forward: %s", h.err.msg);
    const qf_tensor *y = qf_tape_output(h.t, 0);
    const float *yv = y->data;
    float *dyv = malloc(sizeof(float) * 2000);
    for (int i = 0; i < 2000; i++)
        dyv[i] = frand();
    qf_tensor dy = *y;
    dy.data = dyv;
    int kept = 0;
    bool ok = true;
    for (int i = 0; i < 2000; i++) {
        if (yv[i] != 0.0f) {
            kept++;
            if (fabsf(yv[i] - h.data[0][i] / 0.75f) > 1e-5f) ok = false;
        }
    }
    st = qf_tape_backward(h.t, &dy, 1, &h.err);
    const qf_tensor *gx = qf_tape_input_grad(h.t, 0);
    for (int i = 0; i < 2000 && gx; i++) {
        float want = yv[i] != 0.0f ? dyv[i] / 0.75f : 0.0f;
        if (fabsf(((const float *)gx->data)[i] - want) > 1e-5f) ok = false;
    }
    /* a second step draws a different mask */
    float *first = malloc(sizeof(float) * 2000);
    memcpy(first, yv, sizeof(float) * 2000);
    qf_status st2 = qf_tape_forward(h.t, h.feeds, 1, true, &h.err);
    int same = 0;
    for (int i = 0; i < 2000 && !st2; i++)
        same += (first[i] == 0.0f) == (((const float *)qf_tape_output(h.t, 0)->data)[i] == 0.0f);
    free(first);
    free(dyv);
    harness_free(&h);
    CHECK_MSG(st == QF_OK, "backward failed");
    CHECK(gx != NULL);
    CHECK(ok);
    /* 1500 expected; binomial sd ~19 */
    CHECK_MSG(kept > 1400 && kept < 1600, "kept %d of 2000", kept);
    CHECK(st2 == QF_OK);
    CHECK_MSG(same < 1950, "masks of two steps agree on %d of 2000", same);
}

/* ---- FakeQuantize ----------------------------------------------------------- */
static float ref_round_half_even(float v) {
    float f = floorf(v), d = v - f;
    if (d > 0.5f) return f + 1.0f;
    if (d < 0.5f) return f;
    return fmodf(f, 2.0f) == 0.0f ? f : f + 1.0f;
}

typedef struct fq_case {
    const char *label;
    int bits, is_signed, lsq, per_channel;
    float zero;
} fq_case;

static void test_fake_quantize(void) {
    static const fq_case fcs[] = {
        {"s4_tensor_lsq", 4, 1, 1, 0, 0.0f},
        {"s8_channel_lsq", 8, 1, 1, 1, 0.0f},
        {"u4_tensor_zp", 4, 0, 0, 0, 5.0f},
        {"u2_channel_lsq_zp", 2, 0, 1, 1, 1.0f},
    };
    for (size_t ci = 0; ci < sizeof fcs / sizeof fcs[0]; ci++) {
        const fq_case *f = &fcs[ci];
        enum { N = 2, C = 3, HW = 4, NX = N * C * HW };
        float scale[C] = {0.1f, 0.25f, 0.05f};
        int nsc = f->per_channel ? C : 1;
        float zp[C] = {f->zero, f->zero, f->zero};
        grad_case c = {f->label,
                       "FakeQuantize",
                       1,
                       3,
                       {VAR(T3(N, C, HW)), PAR(1, {nsc}), {IN_CONST, 1, {nsc}, -1, {0}}},
                       3,
                       {AI("bits", f->bits), AI("signed", f->is_signed), AI("lsq", f->lsq)},
                       1};
        harness h;
        memset(&h, 0, sizeof h);
        /* build by hand: the domain is "qforge" */
        h.g = qf_graph_create();
        int64_t xd[3] = {N, C, HW}, sd[1] = {nsc};
        int vx = qf_graph_add_value(h.g, "x", QF_DT_F32, 3, xd);
        int vs = qf_graph_add_value(h.g, "s", QF_DT_F32, 1, sd);
        int vz = qf_graph_add_value(h.g, "z", QF_DT_F32, 1, sd);
        int vy = qf_graph_add_value(h.g, "y", QF_DT_UNDEF, -1, NULL);
        float xv[NX];
        for (int i = 0; i < NX; i++)
            xv[i] = frand() * 1.2f;
        xv[0] = 0.125f; /* x/s = 1.25 or 0.5: exercises rounding */
        xv[1] = 100.0f; /* saturates */
        xv[2] = -100.0f;
        qf_tensor ts = {QF_DT_F32, 1, {nsc}, scale}, tz = {QF_DT_F32, 1, {nsc}, zp};
        CHECK_OK(qf_graph_set_const(h.g, vs, &ts, NULL));
        CHECK_OK(qf_graph_set_const(h.g, vz, &tz, NULL));
        qf_graph_add_input(h.g, vx);
        qf_attr at[3];
        for (int k = 0; k < 3; k++)
            at[k] = make_attr(&c.at[k]);
        int ins[3] = {vx, vs, vz};
        CHECK(qf_graph_add_node(h.g, "fq", "FakeQuantize", "qforge", 1, ins, 3, &vy, 1, at, 3) >=
              0);
        CHECK(h.g->nodes[0].op == QF_OP_FAKE_QUANTIZE);
        qf_graph_add_output(h.g, vy);
        CHECK_OK(qf_graph_parse_ops(h.g, &h.err));
        qf_tape_options opt = {.num_threads = 1, .input_grads = true};
        qf_status st = qf_tape_create(h.g, &opt, &h.t, &h.err);
        CHECK_MSG(st == QF_OK, "%s", h.err.msg);
        CHECK_EQ_INT(qf_tape_num_params(h.t), f->lsq ? 1 : 0);
        qf_tensor feed = {QF_DT_F32, 3, {N, C, HW}, xv};
        CHECK_OK(qf_tape_forward(h.t, &feed, 1, true, &h.err));
        const float *y = qf_tape_output(h.t, 0)->data;
        float qmin = f->is_signed ? -(float)((1 << (f->bits - 1)) - 1) : 0.0f;
        float qmax = f->is_signed ? (float)((1 << (f->bits - 1)) - 1) : (float)((1 << f->bits) - 1);
        float dyv[NX], want_dx[NX], want_ds[C] = {0, 0, 0};
        for (int i = 0; i < NX; i++)
            dyv[i] = frand();
        double gsc = 1.0 / sqrt((double)(NX / nsc) * qmax);
        for (int i = 0; i < NX; i++) {
            int ch = f->per_channel ? (i / HW) % C : 0;
            float s = scale[ch], z = zp[ch], v = xv[i] / s;
            float q = ref_round_half_even(v) + z;
            float qc = fminf(fmaxf(q, qmin), qmax);
            CHECK_MSG(fabsf(y[i] - s * (qc - z)) <= 1e-6f, "%s: y[%d] %g vs %g", f->label, i,
                      (double)y[i], (double)(s * (qc - z)));
            bool inside = v + z >= qmin && v + z <= qmax;
            want_dx[i] = inside ? dyv[i] : 0.0f;
            float dsv = inside ? ref_round_half_even(v) - v : (v + z < qmin ? qmin - z : qmax - z);
            want_ds[ch] += (float)(dyv[i] * dsv * gsc);
        }
        /* the same graph in the float runtime */
        qf_graph *g2 = NULL;
        CHECK_OK(qf_graph_clone(h.g, &g2, NULL));
        qf_model *m = NULL;
        CHECK_OK(qf_model_from_graph(g2, "fq", &m, NULL));
        qf_session *sess = NULL;
        CHECK_OK(qf_session_create(m, NULL, &sess, NULL));
        qf_tensor ro;
        qf_err e2;
        st = qf_session_run(sess, &feed, 1, &ro, 1, &e2);
        bool same = st == QF_OK && memcmp(ro.data, y, sizeof(float) * NX) == 0;
        qf_session_free(sess);
        qf_model_free(m);
        CHECK_MSG(same, "%s: float runtime differs (%s)", f->label, st ? e2.msg : "values");
        qf_tensor dy = {QF_DT_F32, 3, {N, C, HW}, dyv};
        CHECK_OK(qf_tape_backward(h.t, &dy, 1, &h.err));
        const float *gx = qf_tape_input_grad(h.t, 0)->data;
        for (int i = 0; i < NX; i++)
            CHECK_NEAR(gx[i], want_dx[i], 1e-6);
        CHECK(gx[1] == 0.0f && gx[2] == 0.0f);
        if (f->lsq) {
            const qf_param *p = qf_tape_param(h.t, 0);
            CHECK(p->value == vs);
            for (int k = 0; k < nsc; k++)
                CHECK_MSG(fabsf(p->grad[k] - want_ds[k]) <= 1e-5f + 1e-4f * fabsf(want_ds[k]),
                          "%s: ds[%d] %g vs %g", f->label, k, (double)p->grad[k],
                          (double)want_ds[k]);
        }
        harness_free(&h);
    }
}

static void test_fake_quantize_bad_attrs(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[2] = {2, 2}, sd[1] = {1};
    int vx = qf_graph_add_value(g, "x", QF_DT_F32, 2, xd);
    int vs = qf_graph_add_value(g, "s", QF_DT_F32, 1, sd);
    int vy = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    attr_spec bad = AI("bits", 17);
    qf_attr a = make_attr(&bad);
    int ins[2] = {vx, vs};
    qf_graph_add_node(g, "fq_bad", "FakeQuantize", "qforge", 1, ins, 2, &vy, 1, &a, 1);
    qf_err e;
    e.msg[0] = 0;
    qf_status st = qf_graph_parse_ops(g, &e);
    qf_graph_free(g);
    CHECK(st == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "fq_bad") && strstr(e.msg, "bits"));
}

QT_MAIN(QT_CASE(test_coverage), QT_CASE(test_finite_differences), QT_CASE(test_dropout_training),
        QT_CASE(test_fake_quantize), QT_CASE(test_fake_quantize_bad_attrs))
