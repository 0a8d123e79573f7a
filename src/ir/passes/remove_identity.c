/* remove_identity.c - drop Identity and inference-mode Dropout nodes.
 *
 * Readers of the node's output are rewired to its input. Graph outputs need
 * care: callers bind outputs by the names the model declared, so the output
 * value (and its name) must survive. When the Identity's output is a graph
 * output, the value that feeds it is renamed instead: its producer writes
 * the graph output value directly and the producer's other readers follow.
 * That is impossible when the input is itself a graph input, a graph output
 * (both names must exist) or a constant; then the node stays.
 */
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"

/* Dropout is a no-op at inference unless training_mode is a constant true
 * (or not a constant at all) or its mask output is used. Dropout before
 * opset 7 had is_test; an inference runtime treats it as a no-op too. */
static bool dropout_is_noop(const qf_graph *g, const qf_node *n) {
    if (n->n_inputs >= 3 && n->inputs[2] >= 0) {
        const qf_value *tm = &g->values[n->inputs[2]];
        if (!(tm->flags & QF_VAL_CONST) || !tm->data) return false;
        qf_tensor t = qf_value_tensor(tm);
        int64_t numel = qf_tensor_numel(&t);
        if (numel != 1 || qf_dtype_size(t.dtype) == 0) return false;
        if (qf_tensor_get_f64(&t, 0) != 0.0) return false;
    }
    for (int j = 1; j < n->n_outputs; j++) {
        int v = n->outputs[j];
        if (v >= 0 && qf_graph_consumers(g, v) > 0) return false;
    }
    return true;
}

static void replace_reads(qf_graph *g, int from, int to) {
    for (int i = 0; i < g->n_nodes; i++) {
        qf_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == from) n->inputs[j] = to;
    }
}

/* Try to remove node i (an Identity-like node reading `in`, writing `out`).
 * Returns true when the node can be deleted. */
static bool bypass(qf_graph *g, int i, int in, int out) {
    uint32_t out_flags = g->values[out].flags;
    if (!(out_flags & QF_VAL_OUTPUT)) {
        replace_reads(g, out, in);
        return true;
    }
    const qf_value *src = &g->values[in];
    int p = src->producer;
    if (p < 0 || p == i || (src->flags & (QF_VAL_INPUT | QF_VAL_OUTPUT | QF_VAL_CONST)))
        return false;
    /* The producer now writes the graph output value; everyone who read its
     * old output (the node being removed included) reads that instead. */
    qf_node *pn = &g->nodes[p];
    for (int j = 0; j < pn->n_outputs; j++)
        if (pn->outputs[j] == in) pn->outputs[j] = out;
    replace_reads(g, in, out);
    g->values[out].producer = p;
    g->values[in].producer = -1;
    return true;
}

qf_status qf_pass_remove_identity(qf_graph *g, int *n_removed, qf_err *err) {
    if (n_removed) *n_removed = 0;
    bool *dead = qf_calloc((size_t)g->n_nodes + 1, sizeof *dead);
    if (!dead)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory removing identities", g->source_path);
    qf_graph_update_producers(g);
    int removed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        bool candidate = false;
        if (n->op == QF_OP_IDENTITY)
            candidate = n->n_inputs == 1 && n->n_outputs == 1;
        else if (n->op == QF_OP_DROPOUT)
            candidate = n->n_inputs >= 1 && n->n_outputs >= 1 && dropout_is_noop(g, n);
        if (!candidate || n->inputs[0] < 0 || n->outputs[0] < 0) continue;
        int in = n->inputs[0], out = n->outputs[0];
        if (in == out || !bypass(g, i, in, out)) continue;
        dead[i] = true;
        removed++;
    }
    if (removed) qf_graph_remove_nodes(g, dead);
    qf_free(dead);
    if (n_removed) *n_removed = removed;
    return QF_OK;
}
