/* arch.c - the functional graph builder of arch.h: each layer function adds
 * its parameters (initialised with the builder's seeded RNG) and one node,
 * computing the output shape itself so "same" padding can be written as
 * explicit pads. The built-in models live in arch_zoo.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/passes.h"
#include "train/arch.h"
#include "train/augment.h"

#define ARCH_OPSET 13

struct qf_arch {
    qf_graph *g;
    qf_rng rng;
    qf_err err; /* first error (sticky) */
    bool failed;
    int auto_id; /* counter for generated layer names */
};

static int fail(qf_arch *a, qf_status s, const char *fmt, ...) QF_PRINTF(3, 4);
static int fail(qf_arch *a, qf_status s, const char *fmt, ...) {
    if (!a->failed) {
        a->failed = true;
        a->err.status = s;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err.msg, sizeof a->err.msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

qf_status qf_arch_begin(uint64_t seed, qf_arch **out, qf_err *err) {
    if (!out) return qf_errf(err, QF_ERR_INVALID_ARG, "arch: NULL output pointer");
    *out = NULL;
    qf_arch *a = qf_calloc(1, sizeof *a);
    if (!a) return qf_errf(err, QF_ERR_NOMEM, "arch: out of memory");
    a->g = qf_graph_create();
    if (!a->g) {
        qf_free(a);
        return qf_errf(err, QF_ERR_NOMEM, "arch: out of memory");
    }
    a->g->opset = ARCH_OPSET;
    qf_rng_seed(&a->rng, seed);
    *out = a;
    return QF_OK;
}

void qf_arch_free(qf_arch *a) {
    if (!a) return;
    qf_graph_free(a->g);
    qf_free(a);
}

qf_graph *qf_arch_graph(qf_arch *a) { return a ? a->g : NULL; }

/* A usable layer name: the caller's, or "<op>_<k>" in buf. */
static const char *layer_name(qf_arch *a, const char *name, const char *op, char *buf, size_t len) {
    if (name && *name) return name;
    snprintf(buf, len, "%s_%d", op, a->auto_id++);
    return buf;
}

/* Check that x is a value of the expected rank (-1: any) produced by an
 * earlier call. */
static bool arg_ok(qf_arch *a, const char *layer, int x, int rank) {
    if (a->failed) return false;
    if (x < 0 || x >= a->g->n_values) {
        fail(a, QF_ERR_INVALID_ARG, "arch: layer '%s': input value index %d is not a value", layer,
             x);
        return false;
    }
    const qf_value *v = &a->g->values[x];
    if (rank >= 0 && v->rank != rank) {
        fail(a, QF_ERR_SHAPE, "arch: layer '%s': input '%s' has rank %d, expected %d", layer,
             v->name, v->rank, rank);
        return false;
    }
    return true;
}

/* New float activation value named `name` with the given shape. */
static int new_value(qf_arch *a, const char *name, int rank, const int64_t *dims) {
    int v = qf_graph_add_value(a->g, name, QF_DT_F32, rank, dims);
    if (v < 0) return fail(a, QF_ERR_NOMEM, "arch: out of memory adding value '%s'", name);
    return v;
}

typedef enum init_kind { INIT_ZERO, INIT_ONE, INIT_NORMAL, INIT_VALUE } init_kind;

/* New float constant "<layer><suffix>" filled per `kind` (NORMAL: N(0,
 * std^2); VALUE: every element = std). */
static int new_const(qf_arch *a, const char *layer, const char *suffix, int rank,
                     const int64_t *dims, init_kind kind, float std) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", layer, suffix);
    size_t n = 1, bytes;
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0 || !qf_mul_size(n, (size_t)dims[i], &n))
            return fail(a, QF_ERR_INVALID_ARG, "arch: constant '%s' has a bad shape", name);
    if (!qf_mul_size(n, sizeof(float), &bytes))
        return fail(a, QF_ERR_INVALID_ARG, "arch: constant '%s' is too large", name);
    int v = new_value(a, name, rank, dims);
    if (v < 0) return -1;
    float *d = qf_malloc_aligned(bytes ? bytes : 1);
    if (!d) return fail(a, QF_ERR_NOMEM, "arch: out of memory for constant '%s'", name);
    if (kind == INIT_NORMAL) {
        qf_rng_normal_fill(&a->rng, d, n, std);
    } else {
        float value = kind == INIT_ONE ? 1.0f : kind == INIT_VALUE ? std : 0.0f;
        for (size_t i = 0; i < n; i++)
            d[i] = value;
    }
    qf_graph_set_const_owned(a->g, v, QF_DT_F32, rank, dims, d, bytes);
    return v;
}

static int add_node(qf_arch *a, const char *name, const char *op, const int *in, int n_in, int out,
                    const qf_attr *attrs, int n_attrs) {
    if (qf_graph_add_node(a->g, name, op, "", ARCH_OPSET, in, n_in, &out, 1, attrs, n_attrs) < 0)
        return fail(a, QF_ERR_NOMEM, "arch: out of memory adding node '%s'", name);
    return out;
}

static qf_attr attr_ints(const char *name, int64_t *v, int n) {
    qf_attr at;
    memset(&at, 0, sizeof at);
    at.name = name;
    at.type = QF_ATTR_INTS;
    at.ints = v;
    at.n = n;
    return at;
}

static qf_attr attr_int(const char *name, int64_t v) {
    qf_attr at;
    memset(&at, 0, sizeof at);
    at.name = name;
    at.type = QF_ATTR_INT;
    at.i = v;
    return at;
}

static qf_attr attr_float(const char *name, float v) {
    qf_attr at;
    memset(&at, 0, sizeof at);
    at.name = name;
    at.type = QF_ATTR_FLOAT;
    at.f = v;
    return at;
}

/* Output size and pads of one spatial axis for a window op. */
static bool window_axis(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t *out, int64_t *pb,
                        int64_t *pe) {
    if (pad == QF_ARCH_PAD_SAME) {
        int64_t o = (in + s - 1) / s;
        int64_t total = (o - 1) * s + k - in;
        if (total < 0) total = 0;
        *pb = total / 2;
        *pe = total - *pb;
        *out = o;
    } else {
        *pb = *pe = pad;
        if (in + 2 * pad < k) return false;
        *out = (in + 2 * pad - k) / s + 1;
    }
    return *out > 0;
}

/* Shared by conv and pools: geometry attributes and output shape. */
static bool window_geometry(qf_arch *a, const char *layer, int x, int64_t k, int64_t stride,
                            int64_t pad, int64_t out_ch, int64_t *dims, int64_t pads[4]) {
    const qf_value *v = &a->g->values[x];
    if (k < 1 || stride < 1 || (pad < 0 && pad != QF_ARCH_PAD_SAME)) {
        fail(a, QF_ERR_INVALID_ARG,
             "arch: layer '%s': kernel %lld, stride %lld, pad %lld "
             "invalid",
             layer, (long long)k, (long long)stride, (long long)pad);
        return false;
    }
    dims[0] = v->dims[0];
    dims[1] = out_ch;
    for (int ax = 0; ax < 2; ax++)
        if (!window_axis(v->dims[2 + ax], k, stride, pad, &dims[2 + ax], &pads[ax],
                         &pads[2 + ax])) {
            fail(a, QF_ERR_SHAPE,
                 "arch: layer '%s': window %lld does not fit input '%s' (%lld x "
                 "%lld)",
                 layer, (long long)k, v->name, (long long)v->dims[2], (long long)v->dims[3]);
            return false;
        }
    return true;
}

int qf_arch_input(qf_arch *a, const char *name, int64_t c, int64_t h, int64_t w) {
    if (!a || a->failed) return -1;
    char buf[64];
    name = layer_name(a, name, "input", buf, sizeof buf);
    if (c < 1 || h < 1 || w < 1)
        return fail(a, QF_ERR_INVALID_ARG, "arch: input '%s': bad shape %lld x %lld x %lld", name,
                    (long long)c, (long long)h, (long long)w);
    int64_t dims[4] = {-1, c, h, w};
    int v = new_value(a, name, 4, dims);
    if (v < 0) return -1;
    if (qf_graph_add_input(a->g, v)) return fail(a, QF_ERR_NOMEM, "arch: out of memory");
    return v;
}

int qf_arch_conv(qf_arch *a, const char *name, int x, int64_t out_ch, int64_t k, int64_t stride,
                 int64_t pad, int64_t groups, bool bias) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "conv", buf, sizeof buf);
    if (!arg_ok(a, name, x, 4)) return -1;
    int64_t in_ch = a->g->values[x].dims[1];
    if (out_ch < 1 || groups < 1 || in_ch % groups || out_ch % groups)
        return fail(a, QF_ERR_INVALID_ARG,
                    "arch: conv '%s': %lld -> %lld channels with %lld "
                    "groups",
                    name, (long long)in_ch, (long long)out_ch, (long long)groups);
    int64_t dims[4], pads[4];
    if (!window_geometry(a, name, x, k, stride, pad, out_ch, dims, pads)) return -1;
    int64_t wd[4] = {out_ch, in_ch / groups, k, k};
    /* Kaiming normal, mode fan_out, gain sqrt(2): torch counts fan_out as
     * out_ch * k * k whatever the groups */
    float std = (float)sqrt(2.0 / (double)(out_ch * k * k));
    int in[3];
    in[0] = x;
    in[1] = new_const(a, name, ".weight", 4, wd, INIT_NORMAL, std);
    int n_in = 2;
    if (bias) in[n_in++] = new_const(a, name, ".bias", 1, &out_ch, INIT_ZERO, 0.0f);
    if (a->failed) return -1;
    int y = new_value(a, name, 4, dims);
    if (y < 0) return -1;
    int64_t ks[2] = {k, k}, st[2] = {stride, stride}, dil[2] = {1, 1};
    qf_attr at[5] = {attr_ints("kernel_shape", ks, 2), attr_ints("strides", st, 2),
                     attr_ints("pads", pads, 4), attr_ints("dilations", dil, 2),
                     attr_int("group", groups)};
    return add_node(a, name, "Conv", in, n_in, y, at, 5);
}

int qf_arch_batchnorm(qf_arch *a, const char *name, int x) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "bn", buf, sizeof buf);
    if (!arg_ok(a, name, x, -1)) return -1;
    const qf_value *v = &a->g->values[x];
    if (v->rank < 2)
        return fail(a, QF_ERR_SHAPE, "arch: batchnorm '%s': input '%s' has rank %d (need >= 2)",
                    name, v->name, v->rank);
    int64_t c = v->dims[1], dims[QF_MAX_DIMS];
    int rank = v->rank;
    memcpy(dims, v->dims, sizeof dims);
    int in[5] = {x, new_const(a, name, ".weight", 1, &c, INIT_ONE, 0.0f),
                 new_const(a, name, ".bias", 1, &c, INIT_ZERO, 0.0f),
                 new_const(a, name, ".running_mean", 1, &c, INIT_ZERO, 0.0f),
                 new_const(a, name, ".running_var", 1, &c, INIT_ONE, 0.0f)};
    if (a->failed) return -1;
    int y = new_value(a, name, rank, dims);
    if (y < 0) return -1;
    qf_attr at[2] = {attr_float("epsilon", 1e-5f), attr_float("momentum", 0.9f)};
    return add_node(a, name, "BatchNormalization", in, 5, y, at, 2);
}

/* A node with one input and an output of the input's shape. */
static int unary(qf_arch *a, const char *name, const char *op, int x, const int *extra, int n_extra,
                 const qf_attr *at, int n_at) {
    const qf_value *v = &a->g->values[x];
    int64_t dims[QF_MAX_DIMS];
    int rank = v->rank;
    memcpy(dims, v->dims, sizeof dims);
    int in[4] = {x, -1, -1, -1};
    for (int i = 0; i < n_extra && i < 3; i++)
        in[1 + i] = extra[i];
    int y = new_value(a, name, rank, dims);
    if (y < 0) return -1;
    return add_node(a, name, op, in, 1 + n_extra, y, at, n_at);
}

int qf_arch_relu(qf_arch *a, const char *name, int x) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "relu", buf, sizeof buf);
    if (!arg_ok(a, name, x, -1)) return -1;
    return unary(a, name, "Relu", x, NULL, 0, NULL, 0);
}

int qf_arch_relu6(qf_arch *a, const char *name, int x) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "relu6", buf, sizeof buf);
    if (!arg_ok(a, name, x, -1)) return -1;
    int lim[2] = {new_const(a, name, ".min", 0, NULL, INIT_ZERO, 0.0f),
                  new_const(a, name, ".max", 0, NULL, INIT_VALUE, 6.0f)};
    if (a->failed) return -1;
    return unary(a, name, "Clip", x, lim, 2, NULL, 0);
}

static int pool(qf_arch *a, const char *name, const char *op, int x, int64_t k, int64_t stride,
                int64_t pad) {
    if (!arg_ok(a, name, x, 4)) return -1;
    int64_t dims[4], pads[4];
    if (!window_geometry(a, name, x, k, stride, pad, a->g->values[x].dims[1], dims, pads))
        return -1;
    int y = new_value(a, name, 4, dims);
    if (y < 0) return -1;
    int64_t ks[2] = {k, k}, st[2] = {stride, stride};
    qf_attr at[3] = {attr_ints("kernel_shape", ks, 2), attr_ints("strides", st, 2),
                     attr_ints("pads", pads, 4)};
    return add_node(a, name, op, &x, 1, y, at, 3);
}

int qf_arch_maxpool(qf_arch *a, const char *name, int x, int64_t k, int64_t stride, int64_t pad) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "maxpool", buf, sizeof buf);
    return pool(a, name, "MaxPool", x, k, stride, pad);
}

int qf_arch_avgpool(qf_arch *a, const char *name, int x, int64_t k, int64_t stride, int64_t pad) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "avgpool", buf, sizeof buf);
    return pool(a, name, "AveragePool", x, k, stride, pad);
}

int qf_arch_global_avgpool(qf_arch *a, const char *name, int x) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "gap", buf, sizeof buf);
    if (!arg_ok(a, name, x, 4)) return -1;
    const qf_value *v = &a->g->values[x];
    int64_t dims[4] = {v->dims[0], v->dims[1], 1, 1};
    int y = new_value(a, name, 4, dims);
    if (y < 0) return -1;
    return add_node(a, name, "GlobalAveragePool", &x, 1, y, NULL, 0);
}

int qf_arch_add(qf_arch *a, const char *name, int x, int y) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "add", buf, sizeof buf);
    if (!arg_ok(a, name, x, -1) || !arg_ok(a, name, y, -1)) return -1;
    const qf_value *vx = &a->g->values[x], *vy = &a->g->values[y];
    bool same = vx->rank == vy->rank;
    for (int i = 0; same && i < vx->rank; i++)
        same = vx->dims[i] == vy->dims[i];
    if (!same)
        return fail(a, QF_ERR_SHAPE, "arch: add '%s': '%s' and '%s' differ in shape", name,
                    vx->name, vy->name);
    return unary(a, name, "Add", x, &y, 1, NULL, 0);
}

int qf_arch_flatten(qf_arch *a, const char *name, int x) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "flatten", buf, sizeof buf);
    if (!arg_ok(a, name, x, -1)) return -1;
    const qf_value *v = &a->g->values[x];
    if (v->rank < 1) return fail(a, QF_ERR_SHAPE, "arch: flatten '%s': input is a scalar", name);
    int64_t rest = 1;
    for (int i = 1; i < v->rank; i++)
        rest *= v->dims[i];
    int64_t dims[2] = {v->dims[0], rest};
    int y = new_value(a, name, 2, dims);
    if (y < 0) return -1;
    qf_attr at = attr_int("axis", 1);
    return add_node(a, name, "Flatten", &x, 1, y, &at, 1);
}

int qf_arch_dense(qf_arch *a, const char *name, int x, int64_t units, bool bias) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "dense", buf, sizeof buf);
    if (!arg_ok(a, name, x, 2)) return -1;
    int64_t fan_in = a->g->values[x].dims[1];
    if (units < 1 || fan_in < 1)
        return fail(a, QF_ERR_INVALID_ARG, "arch: dense '%s': %lld -> %lld units", name,
                    (long long)fan_in, (long long)units);
    int64_t wd[2] = {units, fan_in};
    float std = (float)sqrt(2.0 / (double)fan_in);
    int in[3] = {x, new_const(a, name, ".weight", 2, wd, INIT_NORMAL, std), -1};
    int n_in = 2;
    if (bias) in[n_in++] = new_const(a, name, ".bias", 1, &units, INIT_ZERO, 0.0f);
    if (a->failed) return -1;
    int64_t dims[2] = {a->g->values[x].dims[0], units};
    int y = new_value(a, name, 2, dims);
    if (y < 0) return -1;
    qf_attr at = attr_int("transB", 1);
    return add_node(a, name, "Gemm", in, n_in, y, &at, 1);
}

int qf_arch_dropout(qf_arch *a, const char *name, int x, float ratio) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "dropout", buf, sizeof buf);
    if (!arg_ok(a, name, x, -1)) return -1;
    if (!(ratio >= 0.0f && ratio < 1.0f))
        return fail(a, QF_ERR_INVALID_ARG, "arch: dropout '%s': ratio %g not in [0, 1)", name,
                    (double)ratio);
    int r = new_const(a, name, ".ratio", 0, NULL, INIT_VALUE, ratio);
    if (r < 0) return -1;
    return unary(a, name, "Dropout", x, &r, 1, NULL, 0);
}

int qf_arch_softmax(qf_arch *a, const char *name, int x) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "softmax", buf, sizeof buf);
    if (!arg_ok(a, name, x, 2)) return -1;
    qf_attr at = attr_int("axis", 1);
    return unary(a, name, "Softmax", x, NULL, 0, &at, 1);
}

int qf_arch_concat(qf_arch *a, const char *name, const int *xs, int n) {
    if (!a) return -1;
    char buf[64];
    name = layer_name(a, name, "concat", buf, sizeof buf);
    if (a->failed) return -1;
    if (!xs || n < 1 || n > QF_MAX_NODE_IO)
        return fail(a, QF_ERR_INVALID_ARG, "arch: concat '%s': %d inputs", name, n);
    if (!arg_ok(a, name, xs[0], -1)) return -1;
    const qf_value *v0 = &a->g->values[xs[0]];
    if (v0->rank < 2)
        return fail(a, QF_ERR_SHAPE, "arch: concat '%s': inputs need rank >= 2", name);
    int64_t dims[QF_MAX_DIMS];
    int rank = v0->rank;
    memcpy(dims, v0->dims, sizeof dims);
    dims[1] = 0;
    for (int i = 0; i < n; i++) {
        if (!arg_ok(a, name, xs[i], rank)) return -1;
        const qf_value *v = &a->g->values[xs[i]];
        for (int d = 0; d < rank; d++)
            if (d != 1 && v->dims[d] != v0->dims[d])
                return fail(a, QF_ERR_SHAPE,
                            "arch: concat '%s': '%s' and '%s' differ outside "
                            "the channel axis",
                            name, v0->name, v->name);
        dims[1] += v->dims[1];
    }
    int y = new_value(a, name, rank, dims);
    if (y < 0) return -1;
    qf_attr at = attr_int("axis", 1);
    return add_node(a, name, "Concat", xs, n, y, &at, 1);
}

int qf_arch_output(qf_arch *a, int x, const char *name) {
    if (!a || !arg_ok(a, name ? name : "output", x, -1)) return -1;
    if (name && *name) {
        if (qf_graph_find_value(a->g, name) >= 0 && qf_graph_find_value(a->g, name) != x)
            return fail(a, QF_ERR_INVALID_ARG, "arch: output name '%s' is already taken", name);
        const char *copy = qf_arena_strdup(&a->g->arena, name);
        if (!copy) return fail(a, QF_ERR_NOMEM, "arch: out of memory");
        a->g->values[x].name = copy;
    }
    if (qf_graph_add_output(a->g, x)) return fail(a, QF_ERR_NOMEM, "arch: out of memory");
    return x;
}

qf_status qf_arch_finish(qf_arch *a, qf_graph **out, qf_err *err) {
    if (out) *out = NULL;
    if (!a || !out) {
        qf_arch_free(a);
        return qf_errf(err, QF_ERR_INVALID_ARG, "arch: finish needs a builder and an output");
    }
    qf_status s = QF_OK;
    if (a->failed) {
        s = qf_errf(err, a->err.status, "%s", a->err.msg);
    } else if (a->g->n_inputs < 1 || a->g->n_outputs < 1) {
        s = qf_errf(err, QF_ERR_INVALID_ARG, "arch: the model needs an input and an output");
    } else if ((s = qf_graph_toposort(a->g, err)) || (s = qf_graph_parse_ops(a->g, err)) ||
               (s = qf_pass_infer_shapes(a->g, err))) {
        qf_err_prefix(err, "arch");
    }
    if (s) {
        qf_arch_free(a);
        return s;
    }
    *out = a->g;
    qf_free(a);
    return QF_OK;
}
