/* fold_constants.c - constant folding.
 *
 * A node whose inputs are all constant (or omitted) is evaluated once with
 * its reference kernel and its outputs become constants; the node goes away.
 * Shape-only ops (Shape) fold as soon as their input's shape is fully
 * static, which needs shape inference: it runs first, and when it fails
 * (e.g. an op without a kernel) only nodes with constant inputs fold.
 * Folding one node can make the next foldable; nodes are visited in
 * topological order and the sweep repeats until nothing changes.
 * Constants left without readers are dropped by qf_pass_remove_dead.
 *
 * Requires the graph's op params to be parsed (qf_graph_parse_ops).
 */
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "ir/passes/eval_node.h"

/* Folding must not blow up the model: an op like Expand or ConstantOfShape
 * can turn a few bytes into a huge tensor that is better computed at run
 * time. */
#define QF_FOLD_MAX_OUTPUT_BYTES ((size_t)64 << 20)

static bool shape_static(const qf_value *v) {
    if (v->rank < 0 || v->rank > QF_MAX_DIMS || v->dtype == QF_DT_UNDEF) return false;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] < 0) return false;
    return true;
}

/* Can node n be evaluated now from what the graph knows? */
static bool foldable(const qf_graph *g, const qf_node *n, const qf_op_def *def, bool shapes_valid) {
    if (!def || !def->run || !def->infer) return false;
    bool shape_only = (def->flags & QF_OPF_SHAPE_ONLY) != 0;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        const qf_value *val = &g->values[v];
        if ((val->flags & QF_VAL_CONST) && (val->data || val->nbytes == 0)) continue;
        if (shape_only && shapes_valid && shape_static(val)) continue;
        return false;
    }
    /* A graph output that turned into a constant would leave the runtime
     * nothing to compute into the caller's output, so those nodes stay. */
    for (int j = 0; j < n->n_outputs; j++) {
        int v = n->outputs[j];
        if (v >= 0 && (g->values[v].flags & QF_VAL_OUTPUT)) return false;
    }
    return true;
}

/* Evaluate node n and make its outputs constants. *folded is false when the
 * node was skipped (an output too large); errors are real failures. */
static qf_status fold_node(qf_graph *g, const qf_node *n, const qf_op_def *def, qf_tensor *in,
                           qf_tensor *out, bool *folded, qf_err *err) {
    *folded = false;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) {
            memset(&in[j], 0, sizeof in[j]);
            continue;
        }
        in[j] = qf_value_tensor(&g->values[v]); /* data NULL unless constant */
    }
    memset(out, 0, sizeof *out * (size_t)(n->n_outputs + 1));
    qf_status s = def->infer(n, in, n->n_inputs, out, n->n_outputs, err);
    if (s) {
        qf_err_prefix(err, "%s: constant folding", g->source_path);
        return s;
    }
    for (int j = 0; j < n->n_outputs; j++) {
        size_t bytes;
        if (n->outputs[j] < 0) continue;
        if (!qf_pass_tensor_bytes(&out[j], &bytes) || bytes > QF_FOLD_MAX_OUTPUT_BYTES)
            return QF_OK;
    }
    s = qf_pass_eval_node(n, def, in, n->n_inputs, out, n->n_outputs, err);
    if (s) {
        qf_err_prefix(err, "%s: constant folding", g->source_path);
        return s;
    }
    for (int j = 0; j < n->n_outputs; j++) {
        int v = n->outputs[j];
        if (v < 0) continue;
        size_t bytes = 0;
        qf_pass_tensor_bytes(&out[j], &bytes);
        qf_graph_set_const_owned(g, v, out[j].dtype, out[j].rank, out[j].dims, out[j].data, bytes);
        out[j].data = NULL;
    }
    *folded = true;
    return QF_OK;
}

qf_status qf_pass_fold_constants(qf_graph *g, int *n_folded, qf_err *err) {
    if (n_folded) *n_folded = 0;
    int max_io = 1, total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        max_io = QF_MAX(max_io, g->nodes[i].n_inputs);
        max_io = QF_MAX(max_io, g->nodes[i].n_outputs);
    }
    qf_tensor *in = qf_calloc((size_t)max_io + 1, sizeof *in);
    qf_tensor *out = qf_calloc((size_t)max_io + 1, sizeof *out);
    bool *dead = qf_calloc((size_t)g->n_nodes + 1, sizeof *dead);
    qf_status s = QF_OK;
    if (!in || !out || !dead) {
        s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory in constant folding", g->source_path);
        goto done;
    }
    bool changed = true;
    while (changed) {
        changed = false;
        /* Shapes are re-inferred each sweep: folding can resolve shapes
         * that depended on a folded value. A failure only disables Shape
         * folding; the node at fault is reported when the model is run. */
        qf_err ignored;
        bool shapes_valid = qf_pass_infer_shapes(g, &ignored) == QF_OK;
        memset(dead, 0, sizeof *dead * (size_t)(g->n_nodes + 1));
        int folded_now = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const qf_node *n = &g->nodes[i];
            const qf_op_def *def = qf_op_get(n->op);
            if (!foldable(g, n, def, shapes_valid)) continue;
            bool folded;
            s = fold_node(g, n, def, in, out, &folded, err);
            if (s) break;
            if (folded) {
                dead[i] = true;
                folded_now++;
            }
        }
        if (folded_now) qf_graph_remove_nodes(g, dead);
        if (s) goto done;
        total += folded_now;
        changed = folded_now > 0;
    }
done:
    if (n_folded) *n_folded = total;
    qf_free(in);
    qf_free(out);
    qf_free(dead);
    return s;
}
