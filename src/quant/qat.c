/* qat.c - quantization-aware training (qat.h): fake-quant insertion from a
 * post-training-quantized twin, training, and the freeze. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "quant/qat.h"

typedef struct act_site {
    char name[160]; /* float value */
    int v;          /* its index in the QAT graph */
    int bits;
    int32_t zp;     /* signed container zero point */
    int scale_v;    /* scale constant in the QAT graph */
    int fq_node_out;
    float scale;    /* after training */
} act_site;

typedef struct w_site {
    char layer[160];
    int node;      /* float node in the QAT graph */
    int64_t rows;  /* output channels */
    int bits;
    int scale_v;
    int fq_node_out;
    float *scales; /* after training (owned) */
} w_site;

typedef struct qat_ctx {
    qf_graph *g;
    act_site *acts;
    int n_acts;
    w_site *ws;
    int n_ws;
    qf_err *err;
    bool lsq;
} qat_ctx;

static qf_status nomem(qat_ctx *c) { return qf_errf(c->err, QF_ERR_NOMEM, "out of memory (QAT)"); }

/* Float value of g that the quantized value `name` stands for: the same
 * name, or the name without its last ".suffix" (".q", ".q16"). */
static int float_twin(const qf_graph *g, const char *name) {
    int v = qf_graph_find_value(g, name);
    if (v < 0) {
        const char *dot = strrchr(name, '.');
        if (!dot) return -1;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(dot - name), name);
        v = qf_graph_find_value(g, base);
    }
    if (v < 0) return -1;
    const qf_value *fv = &g->values[v];
    return (fv->flags & QF_VAL_CONST) || fv->dtype != QF_DT_F32 ? -1 : v;
}

static int find_node(const qf_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

/* Sites from the post-training-quantized twin qg0. */
static qf_status collect_sites(qat_ctx *c, const qf_graph *qg0) {
    qf_graph *g = c->g;
    c->acts = qf_calloc((size_t)qg0->n_values + 1, sizeof(act_site));
    c->ws = qf_calloc((size_t)qg0->n_nodes + 1, sizeof(w_site));
    if (!c->acts || !c->ws) return nomem(c);
    for (int i = 0; i < qg0->n_values; i++) {
        const qf_value *q = &qg0->values[i];
        if ((q->flags & QF_VAL_CONST) || !q->qp || q->qp->n != 1 ||
            (q->dtype != QF_DT_I8 && q->dtype != QF_DT_I16))
            continue;
        int v = float_twin(g, q->name);
        if (v < 0) continue;
        bool dup = false;
        for (int k = 0; k < c->n_acts; k++) dup |= c->acts[k].v == v;
        if (dup) continue;
        act_site *a = &c->acts[c->n_acts++];
        snprintf(a->name, sizeof a->name, "%s", g->values[v].name);
        a->v = v;
        a->bits = q->qp->bits;
        a->zp = q->qp->zero_point[0];
        a->scale = q->qp->scale[0];
    }
    for (int i = 0; i < qg0->n_nodes; i++) {
        const qf_node *qn = &qg0->nodes[i];
        if (qn->op != QF_OP_QCONV && qn->op != QF_OP_QGEMM) continue;
        const qf_value *w = &qg0->values[qn->inputs[1]];
        int fn = find_node(g, qn->name);
        if (fn < 0 || !w->qp || w->qp->n < 1) continue;
        w_site *s = &c->ws[c->n_ws++];
        snprintf(s->layer, sizeof s->layer, "%s", qn->name);
        s->node = fn;
        s->rows = w->qp->n;
        s->bits = w->qp->bits;
        s->scales = qf_malloc(sizeof(float) * (size_t)s->rows);
        if (!s->scales) return nomem(c);
        for (int64_t r = 0; r < s->rows; r++)
            s->scales[r] = w->qp->scale[w->qp->n == 1 ? 0 : r];
    }
    return QF_OK;
}

static int add_const_f32(qf_graph *g, const char *name, const float *data, int64_t n) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s", name);
    for (int k = 2; qf_graph_find_value(g, nm) >= 0; k++) snprintf(nm, sizeof nm, "%s%d", name, k);
    int64_t d[1] = {n};
    int v = qf_graph_add_value(g, nm, QF_DT_F32, 1, d);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = 1, .dims = {n}, .data = (void *)data};
    if (v < 0 || qf_graph_set_const(g, v, &t, NULL)) return -1;
    return v;
}

/* Insert y = FakeQuantize(x, scale[, zp]) and make `only_node` (or, when
 * -1, every other reader of x and the graph outputs) read y instead. */
static int insert_fq(qat_ctx *c, int x, const float *scale, int64_t ns, const float *zp, int bits,
                     bool is_signed, int64_t axis, int only_node, int *scale_v) {
    qf_graph *g = c->g;
    char nm[256];
    snprintf(nm, sizeof nm, "%s.fq_scale", g->values[x].name);
    int sv = add_const_f32(g, nm, scale, ns);
    int zv = -1;
    if (sv >= 0 && zp) {
        snprintf(nm, sizeof nm, "%s.fq_zero_point", g->values[x].name);
        zv = add_const_f32(g, nm, zp, ns);
        if (zv < 0) return -1;
    }
    snprintf(nm, sizeof nm, "%s.fq", g->values[x].name);
    for (int k = 2; qf_graph_find_value(g, nm) >= 0; k++)
        snprintf(nm, sizeof nm, "%s.fq%d", g->values[x].name, k);
    int y = sv < 0 ? -1 : qf_graph_add_value(g, nm, QF_DT_F32, g->values[x].rank, g->values[x].dims);
    if (y < 0) return -1;
    qf_attr at[4] = {{.name = "bits", .type = QF_ATTR_INT, .i = bits},
                     {.name = "signed", .type = QF_ATTR_INT, .i = is_signed},
                     {.name = "axis", .type = QF_ATTR_INT, .i = axis},
                     {.name = "lsq", .type = QF_ATTR_INT, .i = c->lsq}};
    int in[3] = {x, sv, zv};
    char node[300];
    snprintf(node, sizeof node, "%s/fake_quant", g->values[x].name);
    int nn = g->n_nodes;
    if (qf_graph_add_node(g, node, "FakeQuantize", "qforge", 1, in, zp ? 3 : 2, &y, 1, at, 4) < 0)
        return -1;
    for (int i = 0; i < nn; i++) {
        if (only_node >= 0 && i != only_node) continue;
        qf_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == x && !(only_node >= 0 && j != 1)) n->inputs[j] = y;
    }
    if (only_node < 0)
        for (int k = 0; k < g->n_outputs; k++)
            if (g->outputs[k] == x) {
                g->outputs[k] = y;
                g->values[x].flags &= ~(uint32_t)QF_VAL_OUTPUT;
                g->values[y].flags |= QF_VAL_OUTPUT;
            }
    *scale_v = sv;
    return y;
}

static qf_status insert_sites(qat_ctx *c) {
    qf_graph *g = c->g;
    for (int k = 0; k < c->n_ws; k++) {
        w_site *s = &c->ws[k];
        const qf_node *n = &g->nodes[s->node];
        int64_t axis = 0;
        if (n->op == QF_OP_GEMM && !qf_node_attr_int(n, "transB", 0)) axis = 1;
        if (n->op == QF_OP_MATMUL) axis = 1;
        int w = n->inputs[1];
        s->fq_node_out = insert_fq(c, w, s->scales, s->rows, NULL, s->bits, true, axis, s->node,
                                   &s->scale_v);
        if (s->fq_node_out < 0) return nomem(c);
    }
    for (int k = 0; k < c->n_acts; k++) {
        act_site *a = &c->acts[k];
        /* the value's signed b-bit range as the unsigned [0, 2^b - 1] */
        float zp = (float)(a->zp + (1 << (a->bits - 1)));
        a->fq_node_out = insert_fq(c, a->v, &a->scale, 1, &zp, a->bits, false, 1, -1, &a->scale_v);
        if (a->fq_node_out < 0) return nomem(c);
    }
    qf_status s = qf_graph_toposort(g, c->err);
    if (!s) s = qf_graph_parse_ops(g, c->err);
    if (!s) s = qf_pass_infer_shapes(g, c->err);
    return s;
}

/* Read the trained step sizes, then undo the insertion. */
static qf_status strip_sites(qat_ctx *c) {
    qf_graph *g = c->g;
    for (int k = 0; k < c->n_acts; k++) {
        act_site *a = &c->acts[k];
        a->scale = fabsf(*(const float *)g->values[a->scale_v].data);
    }
    for (int k = 0; k < c->n_ws; k++) {
        w_site *s = &c->ws[k];
        const float *d = g->values[s->scale_v].data;
        for (int64_t r = 0; r < s->rows; r++) s->scales[r] = fabsf(d[r]);
    }
    bool *dead = qf_calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (!dead) return nomem(c);
    for (int i = 0; i < g->n_nodes; i++) {
        qf_node *n = &g->nodes[i];
        if (n->op != QF_OP_FAKE_QUANTIZE) continue;
        int x = n->inputs[0], y = n->outputs[0];
        dead[i] = true;
        for (int m = 0; m < g->n_nodes; m++)
            for (int j = 0; j < g->nodes[m].n_inputs; j++)
                if (g->nodes[m].inputs[j] == y) g->nodes[m].inputs[j] = x;
        for (int o = 0; o < g->n_outputs; o++)
            if (g->outputs[o] == y) {
                g->outputs[o] = x;
                g->values[x].flags |= QF_VAL_OUTPUT;
                g->values[y].flags &= ~(uint32_t)QF_VAL_OUTPUT;
            }
    }
    qf_graph_remove_nodes(g, dead);
    qf_free(dead);
    return qf_graph_toposort(g, c->err);
}

static bool act_params_cb(void *user, const char *value, int bits, float *scale, int32_t *zp) {
    const qat_ctx *c = user;
    for (int k = 0; k < c->n_acts; k++)
        if (strcmp(c->acts[k].name, value) == 0 && (c->acts[k].bits > 8) == (bits > 8)) {
            *scale = c->acts[k].scale;
            *zp = c->acts[k].zp;
            return true;
        }
    return false;
}

static bool weight_scales_cb(void *user, const char *layer, int64_t rows, float *scales) {
    const qat_ctx *c = user;
    for (int k = 0; k < c->n_ws; k++)
        if (strcmp(c->ws[k].layer, layer) == 0 && c->ws[k].rows == rows) {
            memcpy(scales, c->ws[k].scales, sizeof(float) * (size_t)rows);
            return true;
        }
    return false;
}

static qf_status prepare(const qf_graph *fg, qf_graph **out, qf_err *err) {
    qf_graph *g;
    qf_status s = qf_graph_clone(fg, &g, err);
    if (s) return s;
    if ((s = qf_pass_optimize(g, err)) || (s = qf_pass_infer_shapes(g, err))) {
        qf_graph_free(g);
        return s;
    }
    if (g->n_inputs == 1 && g->values[g->inputs[0]].rank >= 1)
        g->values[g->inputs[0]].dims[0] = -1;
    *out = g;
    return QF_OK;
}

qf_status qf_qat(const qf_graph *fg, const qf_dataset *train, const qf_dataset *val,
                 const qf_qconfig *cfg, const qf_qat_options *o, qf_graph **out,
                 qf_quant_report *report, qf_qat_result *res, qf_err *err) {
    *out = NULL;
    memset(res, 0, sizeof *res);
    res->ptq_val_accuracy = res->fq_val_accuracy = -1;
    if (!cfg->symmetric_weights)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: QAT trains symmetric weights (\"symmetric\": true); asymmetric "
                       "weights are a post-training option",
                       o->config_path ? o->config_path : "config");
    qat_ctx c = {.err = err, .lsq = o->lsq};
    qf_graph *qg0 = NULL;
    qf_quant_options qo = {.calib_limit = o->calib_limit,
                           .num_threads = o->train.num_threads,
                           .config_path = o->config_path};
    qf_status s = prepare(fg, &c.g, err);
    if (s) return s;
    /* 1. initial ranges and weight scales from post-training quantization */
    if ((s = qf_quantize(c.g, train, cfg, &qo, &qg0, NULL, err))) goto out;
    if ((s = collect_sites(&c, qg0))) goto out;
    qf_graph_free(qg0);
    qg0 = NULL;
    if (c.n_ws == 0) {
        s = qf_errf(err, QF_ERR_UNSUPPORTED, "%s: no layer of the model is quantized (QAT needs "
                    "Conv, Gemm or MatMul layers with integer kernels)",
                    fg->source_path ? fg->source_path : "model");
        goto out;
    }
    /* 2. fake quantization, 3. training */
    if ((s = insert_sites(&c))) goto out;
    res->n_act_sites = c.n_acts;
    res->n_weight_sites = c.n_ws;
    qf_train_options to = o->train;
    to.checkpoint = o->fake_quant_onnx;
    if ((s = qf_train(c.g, train, val, &to, &res->train, err))) goto out;
    res->fq_val_accuracy = res->train.best_val_accuracy;
    /* 4. freeze with the trained parameters */
    if ((s = strip_sites(&c))) goto out;
    qo.act_params = act_params_cb;
    qo.weight_scales = weight_scales_cb;
    qo.params_user = &c;
    s = qf_quantize(c.g, train, cfg, &qo, out, report, err);
out:
    qf_graph_free(qg0);
    qf_graph_free(c.g);
    for (int k = 0; k < c.n_ws; k++) qf_free(c.ws[k].scales);
    qf_free(c.ws);
    qf_free(c.acts);
    return s;
}
