/* infer_shapes.c - static shape inference over the graph.
 *
 * Walks the (topologically sorted) nodes and asks each op's infer callback
 * for its output dtype/rank/dims. Dynamic input dims (-1) are handled by
 * running the whole inference twice, binding -1 to 1 and then to 2: a dim
 * that comes out different in the two runs depends on a dynamic dim and is
 * recorded as -1, every other dim is concrete.
 *
 * Ops that need the *contents* of an input (Reshape's shape, Slice's starts)
 * get them when the input is constant, or when it can be computed from
 * shapes alone: PyTorch exports build shapes at run time with chains such
 * as Shape -> Gather -> Unsqueeze -> Concat -> Reshape. Such producers are
 * evaluated on the fly through their reference kernels into temporaries
 * kept in a per-run side table, so the graph itself only ever receives
 * dtypes and shapes from this pass.
 *
 * Requires the graph's op params to be parsed (qf_graph_parse_ops).
 */
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "ir/passes/eval_node.h"

/* Temporaries above this size are not computed on the fly: shape tensors
 * are tiny, and anything big is better left to the runtime. */
#define QF_INFER_EVAL_MAX_BYTES ((size_t)16 << 20)
/* Depth of producer chains followed when computing a value on the fly. */
#define QF_INFER_EVAL_MAX_DEPTH 64

/* What one inference run knows about each value. */
typedef struct shape_tab {
    qf_tensor *t; /* dtype/rank/dims, data when contents are known */
    bool *known;  /* shape known */
    bool *owned;  /* t[v].data is a temporary of this pass */
} shape_tab;

typedef struct infer_run {
    qf_graph *g;
    shape_tab tab;
    int64_t bind; /* value substituted for -1 input dims */
    qf_err *err;
} infer_run;

static void tab_free(shape_tab *tab, int n_values) {
    if (tab->t && tab->owned)
        for (int v = 0; v < n_values; v++)
            if (tab->owned[v]) qf_free_aligned(tab->t[v].data);
    qf_free(tab->t);
    qf_free(tab->known);
    qf_free(tab->owned);
    memset(tab, 0, sizeof *tab);
}

static qf_status tab_init(infer_run *r) {
    qf_graph *g = r->g;
    size_t nv = (size_t)g->n_values + 1;
    r->tab.t = qf_calloc(nv, sizeof(qf_tensor));
    r->tab.known = qf_calloc(nv, sizeof(bool));
    r->tab.owned = qf_calloc(nv, sizeof(bool));
    if (!r->tab.t || !r->tab.known || !r->tab.owned) {
        tab_free(&r->tab, 0);
        return qf_errf(r->err, QF_ERR_NOMEM, "%s: out of memory in shape inference",
                       g->source_path);
    }
    for (int v = 0; v < g->n_values; v++) {
        const qf_value *val = &g->values[v];
        if (val->flags & QF_VAL_CONST) {
            if (!val->data && val->nbytes) continue;
            r->tab.t[v] = qf_value_tensor(val);
            r->tab.known[v] = val->rank >= 0 && val->dtype != QF_DT_UNDEF;
        } else if (val->flags & QF_VAL_INPUT) {
            if (val->rank < 0 || val->rank > QF_MAX_DIMS || val->dtype == QF_DT_UNDEF) continue;
            qf_tensor *t = &r->tab.t[v];
            t->dtype = val->dtype;
            t->rank = val->rank;
            for (int i = 0; i < val->rank; i++)
                t->dims[i] = val->dims[i] < 0 ? r->bind : val->dims[i];
            r->tab.known[v] = true;
        }
    }
    return QF_OK;
}

static qf_status unsupported(const qf_graph *g, const qf_node *n, qf_err *err) {
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: unsupported op (no kernel linked)",
                   g->source_path, qf_node_desc(n, d, sizeof d));
}

static const qf_tensor omitted_input; /* dtype UNDEF, data NULL */

/* Try to compute the contents of value v from its producer chain. Leaves
 * tab.t[v].data NULL (and returns QF_OK) when v depends on data that is only
 * known at run time; returns an error only for real failures. */
static qf_status compute_value(infer_run *r, int v, int depth) {
    qf_graph *g = r->g;
    if (r->tab.t[v].data || !r->tab.known[v]) return QF_OK;
    int p = g->values[v].producer;
    if (p < 0 || depth > QF_INFER_EVAL_MAX_DEPTH) return QF_OK;
    const qf_node *n = &g->nodes[p];
    const qf_op_def *def = qf_op_get(n->op);
    if (!def || !def->run || !def->infer) return QF_OK;
    bool shape_only = (def->flags & QF_OPF_SHAPE_ONLY) != 0;
    for (int j = 0; j < n->n_inputs; j++) {
        int u = n->inputs[j];
        if (u < 0) continue;
        if (!r->tab.known[u]) return QF_OK;
        if (shape_only) continue;
        qf_status s = compute_value(r, u, depth + 1);
        if (s) return s;
        if (!r->tab.t[u].data) return QF_OK;
    }
    size_t total = 0;
    for (int j = 0; j < n->n_outputs; j++) {
        int o = n->outputs[j];
        size_t b;
        if (o < 0) continue;
        if (!r->tab.known[o] || !qf_pass_tensor_bytes(&r->tab.t[o], &b) ||
            !qf_add_size(total, b, &total) || total > QF_INFER_EVAL_MAX_BYTES)
            return QF_OK;
    }
    /* Own arrays: this function recurses, so it cannot share the caller's. */
    size_t n_in = (size_t)n->n_inputs, n_out = (size_t)n->n_outputs;
    qf_tensor *in = qf_calloc(n_in + 1, sizeof *in);
    qf_tensor *out = qf_calloc(n_out + 1, sizeof *out);
    qf_status s = QF_OK;
    if (!in || !out) {
        s = qf_errf(r->err, QF_ERR_NOMEM, "%s: out of memory in shape inference", g->source_path);
        goto done;
    }
    for (int j = 0; j < n->n_inputs; j++) {
        int u = n->inputs[j];
        in[j] = u < 0 ? omitted_input : r->tab.t[u];
        if (shape_only) in[j].data = NULL;
    }
    for (int j = 0; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0) out[j] = r->tab.t[n->outputs[j]];
    s = qf_pass_eval_node(n, def, in, n->n_inputs, out, n->n_outputs, r->err);
    if (s) {
        qf_err_prefix(r->err, "%s: evaluating a shape computation", g->source_path);
        goto done;
    }
    for (int j = 0; j < n->n_outputs; j++) {
        int o = n->outputs[j];
        if (o < 0) continue;
        r->tab.t[o].data = out[j].data;
        r->tab.owned[o] = true;
    }
done:
    qf_free(in);
    qf_free(out);
    return s;
}

static qf_status check_output(const qf_graph *g, const qf_node *n, int j, const qf_tensor *t,
                              qf_err *err) {
    char d[200];
    bool ok =
        t->rank >= 0 && t->rank <= QF_MAX_DIMS && t->dtype > QF_DT_UNDEF && t->dtype < QF_DT_COUNT;
    for (int i = 0; ok && i < t->rank; i++)
        ok = t->dims[i] >= 0;
    if (!ok)
        return qf_errf(err, QF_ERR_INTERNAL, "%s: %s: shape inference gave a bad output %d",
                       g->source_path, qf_node_desc(n, d, sizeof d), j);
    return QF_OK;
}

/* One full inference run with -1 bound to r->bind. On failure the table
 * keeps what was inferred before the failing node. */
static qf_status run_inference(infer_run *r, qf_tensor *in, qf_tensor *out) {
    qf_graph *g = r->g;
    qf_status s = tab_init(r);
    if (s) return s;
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        const qf_op_def *def = qf_op_get(n->op);
        if (!def || !def->infer) return unsupported(g, n, r->err);
        for (int j = 0; j < n->n_inputs; j++) {
            int u = n->inputs[j];
            if (u < 0) {
                in[j] = omitted_input;
                continue;
            }
            if (!r->tab.known[u]) {
                char d[200];
                return qf_errf(r->err, QF_ERR_SHAPE, "%s: %s reads '%s', whose shape is unknown",
                               g->source_path, qf_node_desc(n, d, sizeof d), g->values[u].name);
            }
            if (j < 32 && (def->value_inputs & (1u << j)) && !r->tab.t[u].data) {
                s = compute_value(r, u, 0);
                if (s) return s;
            }
            in[j] = r->tab.t[u];
        }
        memset(out, 0, sizeof *out * (size_t)(n->n_outputs + 1));
        s = def->infer(n, in, n->n_inputs, out, n->n_outputs, r->err);
        if (s) {
            qf_err_prefix(r->err, "%s", g->source_path);
            return s;
        }
        for (int j = 0; j < n->n_outputs; j++) {
            int o = n->outputs[j];
            if (o < 0) continue;
            s = check_output(g, n, j, &out[j], r->err);
            if (s) return s;
            if (r->tab.owned[o]) qf_free_aligned(r->tab.t[o].data);
            r->tab.owned[o] = false;
            r->tab.t[o] = out[j];
            r->tab.t[o].data = NULL;
            r->tab.known[o] = true;
        }
    }
    return QF_OK;
}

/* Write the runs' results into the graph: a dim that differs between runs
 * depends on a dynamic input dim and becomes -1. Only values known in every
 * run are written; inputs and constants keep their declared shapes. */
static void commit(qf_graph *g, const infer_run *runs, int n_runs) {
    for (int v = 0; v < g->n_values; v++) {
        qf_value *val = &g->values[v];
        if (val->flags & (QF_VAL_INPUT | QF_VAL_CONST)) continue;
        bool known = true;
        for (int k = 0; k < n_runs; k++)
            known = known && runs[k].tab.known[v];
        if (!known) continue;
        const qf_tensor *t0 = &runs[0].tab.t[v];
        val->dtype = t0->dtype;
        val->rank = t0->rank;
        for (int i = 0; i < t0->rank; i++)
            val->dims[i] = t0->dims[i];
        for (int k = 1; k < n_runs; k++) {
            const qf_tensor *tk = &runs[k].tab.t[v];
            if (tk->rank != t0->rank) {
                val->rank = -1; /* rank itself depends on the binding */
                break;
            }
            for (int i = 0; i < t0->rank; i++)
                if (tk->dims[i] != t0->dims[i]) val->dims[i] = -1;
        }
    }
}

static bool has_dynamic_inputs(const qf_graph *g) {
    for (int v = 0; v < g->n_values; v++) {
        const qf_value *val = &g->values[v];
        if (!(val->flags & QF_VAL_INPUT) || (val->flags & QF_VAL_CONST)) continue;
        for (int i = 0; i < val->rank; i++)
            if (val->dims[i] < 0) return true;
    }
    return false;
}

qf_status qf_pass_infer_shapes(qf_graph *g, qf_err *err) {
    int max_io = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        max_io = QF_MAX(max_io, g->nodes[i].n_inputs);
        max_io = QF_MAX(max_io, g->nodes[i].n_outputs);
    }
    qf_tensor *in = qf_calloc((size_t)max_io + 1, sizeof *in);
    qf_tensor *out = qf_calloc((size_t)max_io + 1, sizeof *out);
    if (!in || !out) {
        qf_free(in);
        qf_free(out);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory in shape inference", g->source_path);
    }
    /* Producers are derived data; on-the-fly evaluation follows them. */
    qf_graph_update_producers(g);
    infer_run runs[2];
    int n_runs = has_dynamic_inputs(g) ? 2 : 1;
    qf_status first = QF_OK;
    for (int k = 0; k < n_runs; k++) {
        memset(&runs[k], 0, sizeof runs[k]);
        runs[k].g = g;
        runs[k].bind = k + 1;
        /* The second run gets its own error buffer so the first failure is
         * the one reported. */
        qf_err scratch_err;
        runs[k].err = first ? &scratch_err : err;
        qf_status s = run_inference(&runs[k], in, out);
        if (s && !first) first = s;
        if (!runs[k].tab.t) {
            /* Out of memory before this run started: a partial set of runs
             * would record bound dims as concrete, so commit nothing. */
            for (int m = 0; m < k; m++)
                tab_free(&runs[m].tab, g->n_values);
            n_runs = 0;
            break;
        }
    }
    if (n_runs > 0) commit(g, runs, n_runs);
    for (int k = 0; k < n_runs; k++)
        tab_free(&runs[k].tab, g->n_values);
    qf_free(in);
    qf_free(out);
    return first;
}
