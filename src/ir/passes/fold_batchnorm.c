/* fold_batchnorm.c - fold inference-mode BatchNormalization into the Conv or
 * Gemm that feeds it.
 *
 * BN(y)[c] = s[c] * y[c] + t[c] with s = scale / sqrt(var + eps) and
 * t = bias - mean * s. When y comes from a Conv (W[c, ...], b[c]) or a Gemm
 * (alpha * A * B + beta * C, output column c), scaling the weights of output
 * channel c by s[c] and replacing the bias by s * b + t gives the same
 * result up to float rounding; the BN node then disappears and the Conv/Gemm
 * writes the BN's output value, so every name downstream stays valid.
 * The folding arithmetic runs in double.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"

/* A constant fp32 tensor we can read. */
static bool const_f32(const qf_graph *g, int v) {
    if (v < 0) return false;
    const qf_value *val = &g->values[v];
    return (val->flags & QF_VAL_CONST) && val->data && val->dtype == QF_DT_F32 && val->rank >= 0;
}

static int64_t value_numel(const qf_value *val) {
    qf_tensor t = qf_value_tensor(val);
    return qf_tensor_numel(&t);
}

/* Give value v a name not used yet, "<base><suffix>" or "<base><suffix>_N". */
static const char *unique_name(qf_graph *g, const char *base, const char *suffix, char *buf,
                               size_t len) {
    snprintf(buf, len, "%s%s", base, suffix);
    for (int k = 1; qf_graph_find_value(g, buf) >= 0 && k < 1000000; k++)
        snprintf(buf, len, "%s%s_%d", base, suffix, k);
    return buf;
}

/* Make constant value `*v` safe to overwrite: when it is shared with another
 * reader, a graph output, or points into memory the graph does not own, a
 * private copy is made and `*slot` (the node's input entry) switched to it. */
static qf_status make_private(qf_graph *g, int *slot, qf_err *err) {
    int v = *slot;
    const qf_value *val = &g->values[v];
    if (!val->data_external && qf_graph_consumers(g, v) == 1 &&
        !(val->flags & (QF_VAL_OUTPUT | QF_VAL_INPUT)))
        return QF_OK;
    char name[256];
    unique_name(g, val->name, "_bnfold", name, sizeof name);
    int nv = qf_graph_add_value(g, name, QF_DT_UNDEF, 0, NULL);
    if (nv < 0)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory folding BatchNorm", g->source_path);
    qf_tensor t = qf_value_tensor(&g->values[v]); /* re-read: add_value may move values */
    qf_status s = qf_graph_set_const(g, nv, &t, err);
    if (s) return s;
    *slot = nv;
    return QF_OK;
}

/* Per-channel scale and shift of a BN node, or false if it cannot fold. */
static bool bn_params(const qf_graph *g, const qf_node *bn, int64_t *channels, double **s_out,
                      double **t_out) {
    if (bn->n_inputs < 5 || bn->n_outputs < 1 || bn->outputs[0] < 0) return false;
    if (qf_node_attr_int(bn, "training_mode", 0) != 0) return false;
    if (qf_node_attr_int(bn, "spatial", 1) == 0) return false;
    /* Extra outputs (running/saved statistics) exist only for training. */
    for (int j = 1; j < bn->n_outputs; j++)
        if (bn->outputs[j] >= 0 && qf_graph_consumers(g, bn->outputs[j]) > 0) return false;
    int64_t c = -1;
    for (int j = 1; j < 5; j++) {
        if (!const_f32(g, bn->inputs[j])) return false;
        int64_t nj = value_numel(&g->values[bn->inputs[j]]);
        if (nj <= 0 || (c >= 0 && nj != c)) return false;
        c = nj;
    }
    double eps = qf_node_attr_float(bn, "epsilon", 1e-5f);
    const float *scale = g->values[bn->inputs[1]].data, *bias = g->values[bn->inputs[2]].data;
    const float *mean = g->values[bn->inputs[3]].data, *var = g->values[bn->inputs[4]].data;
    double *s = qf_calloc((size_t)c, sizeof *s), *t = qf_calloc((size_t)c, sizeof *t);
    if (!s || !t) {
        qf_free(s);
        qf_free(t);
        return false;
    }
    for (int64_t k = 0; k < c; k++) {
        double den = (double)var[k] + eps;
        s[k] = den > 0 ? (double)scale[k] / sqrt(den) : NAN;
        t[k] = (double)bias[k] - (double)mean[k] * s[k];
        if (!isfinite(s[k]) || !isfinite(t[k])) {
            qf_free(s);
            qf_free(t);
            return false;
        }
    }
    *channels = c;
    *s_out = s;
    *t_out = t;
    return true;
}

/* Checks shared by both producers: which weight/bias layout applies. */
typedef struct fold_plan {
    int64_t rows; /* weight layout: rows x cols, channel = row or col */
    int64_t cols;
    bool channel_is_row;
    int bias_slot;    /* index of the bias input */
    bool bias_scalar; /* Gemm C with one element, broadcast to every column */
    float beta;       /* Gemm: factor on the existing bias */
} fold_plan;

static bool plan_conv(const qf_graph *g, const qf_node *p, int64_t c, fold_plan *pl) {
    if (p->n_inputs < 2 || !const_f32(g, p->inputs[1])) return false;
    const qf_value *w = &g->values[p->inputs[1]];
    if (w->rank < 3 || w->dims[0] != c) return false;
    int64_t numel = value_numel(w);
    if (numel <= 0) return false;
    pl->rows = c;
    pl->cols = numel / c;
    pl->channel_is_row = true;
    pl->bias_slot = 2;
    pl->bias_scalar = false;
    pl->beta = 1.0f;
    if (p->n_inputs >= 3 && p->inputs[2] >= 0)
        return const_f32(g, p->inputs[2]) && value_numel(&g->values[p->inputs[2]]) == c;
    return true;
}

static bool plan_gemm(const qf_graph *g, const qf_node *p, int64_t c, fold_plan *pl) {
    if (p->n_inputs < 2 || !const_f32(g, p->inputs[1])) return false;
    const qf_value *b = &g->values[p->inputs[1]];
    if (b->rank != 2) return false;
    bool trans_b = qf_node_attr_int(p, "transB", 0) != 0;
    pl->rows = b->dims[0];
    pl->cols = b->dims[1];
    pl->channel_is_row = trans_b;
    if ((trans_b ? pl->rows : pl->cols) != c) return false;
    pl->bias_slot = 2;
    pl->bias_scalar = false;
    pl->beta = qf_node_attr_float(p, "beta", 1.0f);
    if (p->n_inputs >= 3 && p->inputs[2] >= 0) {
        if (!const_f32(g, p->inputs[2])) return false;
        const qf_value *cv = &g->values[p->inputs[2]];
        int64_t n = value_numel(cv);
        /* C must be per column ([N], [1, N]) or a scalar; a C with one row
         * per batch element would need the batch size fixed. */
        bool per_col = n == c && (cv->rank == 1 || (cv->rank == 2 && cv->dims[0] == 1));
        if (n != 1 && !per_col) return false;
        pl->bias_scalar = n == 1 && c != 1;
    }
    return true;
}

/* Fold BN node `bi` into its producer; *folded tells whether it did. */
static qf_status fold_one(qf_graph *g, int bi, bool *folded, qf_err *err) {
    *folded = false;
    const qf_node *bn = &g->nodes[bi];
    int x = bn->inputs[0];
    if (x < 0) return QF_OK;
    int pi = g->values[x].producer;
    if (pi < 0 || qf_graph_consumers(g, x) != 1) return QF_OK;
    qf_node *p = &g->nodes[pi];
    if (p->n_outputs != 1 || p->outputs[0] != x) return QF_OK;
    if (p->op != QF_OP_CONV && p->op != QF_OP_GEMM) return QF_OK;
    const qf_op_def *pdef = qf_op_get(p->op);
    if (!pdef) return QF_OK;
    int64_t c;
    double *s, *t;
    if (!bn_params(g, bn, &c, &s, &t)) return QF_OK;
    fold_plan pl;
    bool ok = p->op == QF_OP_CONV ? plan_conv(g, p, c, &pl) : plan_gemm(g, p, c, &pl);
    /* Appending a bias input relies on qf_graph_add_node allocating every
     * node's inputs array with n_inputs + 1 entries. */
    if (ok && p->n_inputs < 2) ok = false;
    if (!ok) {
        qf_free(s);
        qf_free(t);
        return QF_OK;
    }
    int y = bn->outputs[0];
    qf_status st = make_private(g, &p->inputs[1], err);
    if (st) goto out;
    bool has_bias = p->n_inputs > pl.bias_slot && p->inputs[pl.bias_slot] >= 0;
    if (has_bias) st = make_private(g, &p->inputs[pl.bias_slot], err);
    if (st) goto out;

    /* Everything that can fail happens before the weights are touched, so
     * an error leaves the graph computing what it computed before. */
    float *nb = qf_malloc_aligned(sizeof(float) * (size_t)c);
    if (!nb) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory folding BatchNorm", g->source_path);
        goto out;
    }
    const float *old_b = has_bias ? g->values[p->inputs[pl.bias_slot]].data : NULL;
    for (int64_t k = 0; k < c; k++) {
        double b0 = old_b ? (double)old_b[pl.bias_scalar ? 0 : k] * pl.beta : 0.0;
        nb[k] = (float)(b0 * s[k] + t[k]);
    }
    int64_t bdims[1] = {c};
    int bv;
    if (has_bias) {
        bv = p->inputs[pl.bias_slot];
    } else {
        char name[256];
        unique_name(g, p->name, "_bias", name, sizeof name);
        bv = qf_graph_add_value(g, name, QF_DT_F32, 1, bdims);
        if (bv < 0) {
            qf_free_aligned(nb);
            st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory folding BatchNorm", g->source_path);
            goto out;
        }
        if (p->n_inputs == pl.bias_slot) p->n_inputs++; /* room: see above */
        p->inputs[pl.bias_slot] = bv;
    }

    float *w = g->values[p->inputs[1]].data;
    for (int64_t r = 0; r < pl.rows; r++)
        for (int64_t k = 0; k < pl.cols; k++) {
            double sc = s[pl.channel_is_row ? r : k];
            w[r * pl.cols + k] = (float)(w[r * pl.cols + k] * sc);
        }
    qf_graph_set_const_owned(g, bv, QF_DT_F32, 1, bdims, nb, sizeof(float) * (size_t)c);

    /* The new bias already carries Gemm's beta; set beta to 1 so it is not
     * applied twice (the attribute exists whenever beta != 1). */
    if (p->op == QF_OP_GEMM && pl.beta != 1.0f)
        for (int a = 0; a < p->n_attrs; a++)
            if (strcmp(p->attrs[a].name, "beta") == 0) {
                p->attrs[a].type = QF_ATTR_FLOAT;
                p->attrs[a].f = 1.0f;
            }
    /* Params may depend on attributes and on whether a bias is present. */
    if (pdef->parse) {
        st = pdef->parse(g, p, err);
        if (st) {
            qf_err_prefix(err, "%s: folding BatchNorm", g->source_path);
            goto out;
        }
    }
    p->outputs[0] = y;
    g->values[y].producer = pi;
    g->values[x].producer = -1;
    *folded = true;
out:
    qf_free(s);
    qf_free(t);
    return st;
}

qf_status qf_pass_fold_batchnorm(qf_graph *g, int *n_folded, qf_err *err) {
    if (n_folded) *n_folded = 0;
    bool *dead = qf_calloc((size_t)g->n_nodes + 1, sizeof *dead);
    if (!dead)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory folding BatchNorm", g->source_path);
    qf_graph_update_producers(g);
    int count = 0;
    qf_status st = QF_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        if (g->nodes[i].op != QF_OP_BATCH_NORM) continue;
        bool folded;
        st = fold_one(g, i, &folded, err);
        if (folded) {
            dead[i] = true;
            count++;
        }
    }
    if (count) qf_graph_remove_nodes(g, dead);
    qf_free(dead);
    if (n_folded) *n_folded = count;
    return st;
}
