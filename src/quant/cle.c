/* cle.c - cross-layer equalisation over a float graph (see cle.h).
 *
 * A layer's channel is addressed as a set of strided runs in its weight
 * tensor: `runs` runs of `len` elements each `step` apart, starting at
 * `first + i * chan_stride`... which differs per layout, so each side
 * describes itself with a small struct and one visit function scales a
 * channel and returns its range. */
#include <math.h>
#include <string.h>

#include "quant/cle.h"

/* Elements of one channel: for r in [0, runs), for e in [0, len):
 *   w[base(i) + r * run_step + e * elem_step]. */
typedef struct chan_view {
    float *w;
    int64_t n_chan;
    int64_t chan_step;   /* base(i) = i * chan_step + (i / group_chans) * group_step */
    int64_t group_chans; /* 0: no grouping term */
    int64_t group_step;
    int64_t runs, run_step;
    int64_t len, elem_step;
} chan_view;

typedef struct cle_pair {
    chan_view out;   /* A's output channels */
    float *bias;     /* A's bias (n_chan entries) or NULL */
    chan_view in;    /* B's input channels */
} cle_pair;

/* Range (max |w|) of channel i, then scaled by mul when mul != 1. */
static double visit(const chan_view *v, int64_t i, float mul) {
    int64_t base = i * v->chan_step;
    if (v->group_chans > 0) base += (i / v->group_chans) * v->group_step;
    double r = 0;
    for (int64_t a = 0; a < v->runs; a++)
        for (int64_t e = 0; e < v->len; e++) {
            float *p = v->w + base + a * v->run_step + e * v->elem_step;
            r = QF_MAX(r, fabs((double)*p));
            if (mul != 1.0f) *p *= mul;
        }
    return r;
}

/* The only node reading value v as an input (once, and not a graph
 * output), or -1. */
static int single_reader(const qf_graph *g, int v) {
    if (g->values[v].flags & QF_VAL_OUTPUT) return -1;
    int found = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == v) {
                if (found >= 0) return -1;
                found = i;
            }
    return found;
}

/* Float constant weight owned by the graph and read by node n only. */
static float *own_weight(const qf_graph *g, int n, int k, int min_rank) {
    const qf_node *nd = &g->nodes[n];
    if (nd->n_inputs <= k || nd->inputs[k] < 0) return NULL;
    int v = nd->inputs[k];
    const qf_value *w = &g->values[v];
    if (!(w->flags & QF_VAL_CONST) || !w->data || w->data_external || w->dtype != QF_DT_F32 ||
        w->rank < min_rank || single_reader(g, v) != n)
        return NULL;
    for (int d = 0; d < w->rank; d++)
        if (w->dims[d] <= 0) return NULL;
    return w->data;
}

static bool is_op(const qf_node *n, const char *t) {
    return (!n->domain || !n->domain[0]) && strcmp(n->op_type, t) == 0;
}

static bool gemm_plain(const qf_node *n) {
    return qf_node_attr_int(n, "transA", 0) == 0;
}

/* Output-channel view of layer A (Conv or Gemm); false if not usable. */
static bool out_view(const qf_graph *g, int a, chan_view *v, float **bias) {
    const qf_node *nd = &g->nodes[a];
    memset(v, 0, sizeof *v);
    *bias = NULL;
    if (is_op(nd, "Conv")) {
        if (!(v->w = own_weight(g, a, 1, 3))) return false;
        const qf_value *w = &g->values[nd->inputs[1]];
        int64_t per = 1;
        for (int d = 1; d < w->rank; d++)
            per *= w->dims[d];
        v->n_chan = w->dims[0];
        v->chan_step = per;
        v->runs = 1;
        v->len = per;
        v->elem_step = 1;
    } else if (is_op(nd, "Gemm") && gemm_plain(nd)) {
        if (!(v->w = own_weight(g, a, 1, 2))) return false;
        const qf_value *w = &g->values[nd->inputs[1]];
        if (w->rank != 2) return false;
        bool tb = qf_node_attr_int(nd, "transB", 0) != 0;
        int64_t K = tb ? w->dims[1] : w->dims[0], N = tb ? w->dims[0] : w->dims[1];
        v->n_chan = N;
        v->runs = 1;
        v->len = K;
        v->chan_step = tb ? K : 1;
        v->elem_step = tb ? 1 : N;
    } else {
        return false;
    }
    if (nd->n_inputs > 2 && nd->inputs[2] >= 0) {
        int bv = nd->inputs[2];
        const qf_value *b = &g->values[bv];
        qf_tensor t = qf_value_tensor(b);
        if (!(b->flags & QF_VAL_CONST) || !b->data || b->data_external || b->dtype != QF_DT_F32 ||
            qf_tensor_numel(&t) != v->n_chan || single_reader(g, bv) != a)
            return false;
        *bias = b->data;
    }
    return true;
}

/* Input-channel view of layer B reading A's n_chan channels, each of
 * `spatial` features (1 unless a Flatten sits between). */
static bool in_view(const qf_graph *g, int b, int64_t n_chan, int64_t spatial, chan_view *v) {
    const qf_node *nd = &g->nodes[b];
    memset(v, 0, sizeof *v);
    if (is_op(nd, "Conv") && spatial == 1) {
        if (!(v->w = own_weight(g, b, 1, 3))) return false;
        const qf_value *w = &g->values[nd->inputs[1]];
        int64_t groups = qf_node_attr_int(nd, "group", 1);
        int64_t M = w->dims[0], cg = w->dims[1], kk = 1;
        for (int d = 2; d < w->rank; d++)
            kk *= w->dims[d];
        if (groups < 1 || cg * groups != n_chan || M % groups) return false;
        /* channel i: group i / cg, column i % cg of that group's M / groups rows */
        v->n_chan = n_chan;
        v->chan_step = kk;
        v->group_chans = cg;
        v->group_step = (M / groups) * cg * kk - cg * kk;
        v->runs = M / groups;
        v->run_step = cg * kk;
        v->len = kk;
        v->elem_step = 1;
        return true;
    }
    if (is_op(nd, "Gemm") && gemm_plain(nd)) {
        if (!(v->w = own_weight(g, b, 1, 2))) return false;
        const qf_value *w = &g->values[nd->inputs[1]];
        if (w->rank != 2) return false;
        bool tb = qf_node_attr_int(nd, "transB", 0) != 0;
        int64_t K = tb ? w->dims[1] : w->dims[0], N = tb ? w->dims[0] : w->dims[1];
        if (K != n_chan * spatial) return false;
        v->n_chan = n_chan;
        /* channel i: input features i*spatial .. +spatial, each a row of N
         * (B [K, N]) or a column (B [N, K] with transB) */
        v->runs = spatial;
        v->len = N;
        if (tb) {
            v->chan_step = spatial;
            v->run_step = 1;
            v->elem_step = K;
        } else {
            v->chan_step = spatial * N;
            v->run_step = N;
            v->elem_step = 1;
        }
        return true;
    }
    return false;
}

/* Is node a the start of an equalisable pair? Fills p. */
static bool find_pair(const qf_graph *g, int a, cle_pair *p) {
    const qf_node *na = &g->nodes[a];
    if (na->n_outputs < 1 || na->outputs[0] < 0) return false;
    if (!out_view(g, a, &p->out, &p->bias)) return false;
    int v = na->outputs[0];
    int r = single_reader(g, v);
    if (r < 0) return false;
    if (is_op(&g->nodes[r], "Relu")) {
        v = g->nodes[r].outputs[0];
        if (v < 0 || (r = single_reader(g, v)) < 0) return false;
    }
    if (g->nodes[r].inputs[0] != v) return false;
    int64_t spatial = 1;
    if (is_op(&g->nodes[r], "Flatten")) {
        /* only Conv [N, C, H, W] -> Flatten(axis 1) -> Gemm keeps channel blocks contiguous */
        const qf_value *o = &g->values[na->outputs[0]];
        if (!is_op(na, "Conv") || qf_node_attr_int(&g->nodes[r], "axis", 1) != 1 || o->rank < 3)
            return false;
        for (int d = 2; d < o->rank; d++) {
            if (o->dims[d] <= 0) return false;
            spatial *= o->dims[d];
        }
        v = g->nodes[r].outputs[0];
        if (v < 0 || (r = single_reader(g, v)) < 0 || g->nodes[r].inputs[0] != v) return false;
        if (!is_op(&g->nodes[r], "Gemm")) return false;
    }
    if (r == a) return false;
    return in_view(g, r, p->out.n_chan, spatial, &p->in);
}

qf_status qf_cle_apply(qf_graph *g, int iterations, qf_cle_stats *stats, qf_err *err) {
    if (!g) return qf_errf(err, QF_ERR_INVALID_ARG, "cle: no graph");
    if (iterations <= 0) iterations = 4;
    if (iterations > 100)
        return qf_errf(err, QF_ERR_INVALID_ARG, "cle: %d iterations (at most 100)", iterations);
    qf_cle_stats s = {0};
    int npairs = 0;
    cle_pair *pairs = qf_calloc((size_t)g->n_nodes + 1, sizeof(cle_pair));
    if (!pairs) return qf_errf(err, QF_ERR_NOMEM, "cle: out of memory");
    for (int a = 0; a < g->n_nodes; a++)
        if (find_pair(g, a, &pairs[npairs])) npairs++;
    for (int it = 0; it < iterations; it++)
        for (int k = 0; k < npairs; k++) {
            cle_pair *p = &pairs[k];
            for (int64_t i = 0; i < p->out.n_chan; i++) {
                double r1 = visit(&p->out, i, 1.0f), r2 = visit(&p->in, i, 1.0f);
                /* a dead channel on either side has nothing to balance */
                if (!(r1 > 0) || !(r2 > 0) || !isfinite(r1) || !isfinite(r2)) continue;
                double imb = QF_MAX(r1 / r2, r2 / r1);
                if (it == 0) s.imbalance_before = QF_MAX(s.imbalance_before, imb);
                float sc = (float)sqrt(r1 / r2);
                visit(&p->out, i, 1.0f / sc);
                if (p->bias) p->bias[i] /= sc;
                visit(&p->in, i, sc);
            }
        }
    for (int k = 0; k < npairs; k++)
        for (int64_t i = 0; i < pairs[k].out.n_chan; i++) {
            double r1 = visit(&pairs[k].out, i, 1.0f), r2 = visit(&pairs[k].in, i, 1.0f);
            if (r1 > 0 && r2 > 0)
                s.imbalance_after = QF_MAX(s.imbalance_after, QF_MAX(r1 / r2, r2 / r1));
        }
    s.n_pairs = npairs;
    qf_free(pairs);
    if (stats) *stats = s;
    return QF_OK;
}
