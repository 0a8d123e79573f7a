/* layers.c - which weights pruning and clustering touch (constant float
 * weights of Conv, Gemm and MatMul), and per-layer statistics: parameters,
 * non-zeros and multiply-accumulates counted from inferred shapes. */
#include <string.h>

#include "prune/prune.h"

static bool const_f32(const qf_graph *g, int v) {
    if (v < 0 || v >= g->n_values) return false;
    const qf_value *val = &g->values[v];
    return (val->flags & QF_VAL_CONST) && val->dtype == QF_DT_F32 && val->data && val->rank >= 0;
}

static int64_t prod(const int64_t *d, int a, int b) {
    int64_t p = 1;
    for (int i = a; i < b; i++)
        p *= d[i] < 0 ? 1 : d[i];
    return p;
}

/* View of node i's weight as [outer, red, inner]; false if not prunable. */
static bool layer_view(const qf_graph *g, int i, qf_prunable *p) {
    const qf_node *n = &g->nodes[i];
    memset(p, 0, sizeof *p);
    p->node = i;
    if (n->op == QF_OP_CONV) {
        if (n->n_inputs < 2 || !const_f32(g, n->inputs[1])) return false;
        const qf_value *w = &g->values[n->inputs[1]];
        if (w->rank < 3) return false;
        p->value = n->inputs[1];
        p->outer = w->dims[0];
        p->red = w->dims[1];
        p->inner = prod(w->dims, 2, w->rank);
    } else if (n->op == QF_OP_GEMM) {
        if (n->n_inputs < 2 || !const_f32(g, n->inputs[1])) return false;
        const qf_value *w = &g->values[n->inputs[1]];
        if (w->rank != 2) return false;
        p->value = n->inputs[1];
        bool tb = qf_node_attr_int(n, "transB", 0) != 0;
        p->outer = tb ? w->dims[0] : 1;
        p->red = tb ? w->dims[1] : w->dims[0];
        p->inner = tb ? 1 : w->dims[1];
    } else if (n->op == QF_OP_MATMUL) {
        if (n->n_inputs < 2 || !const_f32(g, n->inputs[1])) return false;
        const qf_value *w = &g->values[n->inputs[1]];
        if (w->rank != 2) return false;
        p->value = n->inputs[1];
        p->outer = 1;
        p->red = w->dims[0];
        p->inner = w->dims[1];
    } else {
        return false;
    }
    p->n = (size_t)(p->outer * p->red * p->inner);
    return p->n > 0 && p->n * sizeof(float) == g->values[p->value].nbytes;
}

qf_status qf_prune_find_layers(const qf_graph *g, qf_prunable **out, int *n, qf_err *err) {
    *out = NULL;
    *n = 0;
    int count = 0;
    qf_prunable p;
    for (int i = 0; i < g->n_nodes; i++)
        if (layer_view(g, i, &p)) count++;
    if (!count) return QF_OK;
    qf_prunable *l = qf_calloc((size_t)count, sizeof *l);
    if (!l) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory listing layers", g->source_path);
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (layer_view(g, i, &l[k])) k++;
    *out = l;
    *n = count;
    return QF_OK;
}

static int64_t value_numel(const qf_value *v) {
    if (v->rank < 0) return 0;
    return prod(v->dims, 0, v->rank);
}

/* MACs of one Conv/Gemm/MatMul for one sample; 0 when shapes are unknown. */
static int64_t node_macs(const qf_graph *g, const qf_node *n) {
    if (n->n_inputs < 2 || n->n_outputs < 1 || n->inputs[1] < 0 || n->outputs[0] < 0) return 0;
    const qf_value *w = &g->values[n->inputs[1]];
    const qf_value *y = &g->values[n->outputs[0]];
    if (w->rank < 0 || y->rank < 1) return 0;
    if (n->op == QF_OP_CONV) {
        /* every output element reduces over C/group * kernel */
        if (w->rank < 3) return 0;
        return value_numel(y) / prod(y->dims, 0, 1) * prod(w->dims, 1, w->rank);
    }
    if (n->op == QF_OP_GEMM) {
        if (w->rank != 2) return 0;
        int64_t k = qf_node_attr_int(n, "transB", 0) ? w->dims[1] : w->dims[0];
        /* rows of A are samples: one row per sample */
        int64_t cols = y->rank > 1 ? prod(y->dims, 1, y->rank) : 1;
        return cols * k;
    }
    if (n->op == QF_OP_MATMUL) {
        const qf_value *a = &g->values[n->inputs[0]];
        if (a->rank < 1) return 0;
        int64_t k = a->dims[a->rank - 1] < 0 ? 1 : a->dims[a->rank - 1];
        /* a leading batch dim counts once */
        int64_t out = value_numel(y) / (y->rank > 2 ? prod(y->dims, 0, 1) : 1);
        return out * k;
    }
    return 0;
}

static bool is_layer_op(qf_op_id op) {
    return op == QF_OP_CONV || op == QF_OP_GEMM || op == QF_OP_MATMUL;
}

qf_status qf_prune_layer_stats(const qf_graph *g, qf_layer_stat **out, int *n, qf_err *err) {
    *out = NULL;
    *n = 0;
    int count = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (is_layer_op(g->nodes[i].op)) count++;
    if (!count) return QF_OK;
    qf_layer_stat *s = qf_calloc((size_t)count, sizeof *s);
    if (!s) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *nd = &g->nodes[i];
        if (!is_layer_op(nd->op)) continue;
        qf_layer_stat *st = &s[k++];
        st->node = nd->name;
        st->op = nd->op_type;
        st->macs = node_macs(g, nd);
        if (nd->n_inputs >= 2 && const_f32(g, nd->inputs[1])) {
            const qf_value *w = &g->values[nd->inputs[1]];
            size_t cnt = w->nbytes / sizeof(float);
            const float *d = w->data;
            st->params = (int64_t)cnt;
            for (size_t j = 0; j < cnt; j++)
                st->nonzero += d[j] != 0.0f;
        }
    }
    *out = s;
    *n = count;
    return QF_OK;
}

int64_t qf_prune_total_macs(const qf_graph *g) {
    int64_t t = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (is_layer_op(g->nodes[i].op)) t += node_macs(g, &g->nodes[i]);
    return t;
}
