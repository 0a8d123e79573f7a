/* remove_dead.c - dead-node and unused-constant removal.
 *
 * A node is live when one of its outputs reaches a graph output; liveness
 * flows backwards through the topologically sorted node list in one sweep.
 * Constants that no live node reads (and that are not graph outputs) lose
 * their data. Value entries themselves stay: values are addressed by
 * index, so an unused entry is cleared (data NULL, flags 0) rather than
 * deleted. *n_removed counts removed nodes; freed constants are logged.
 */
#include "ir/ops.h"
#include "ir/passes.h"

qf_status qf_pass_remove_dead(qf_graph *g, int *n_removed, qf_err *err) {
    if (n_removed) *n_removed = 0;
    bool *live_val = qf_calloc((size_t)g->n_values + 1, sizeof *live_val);
    bool *dead = qf_calloc((size_t)g->n_nodes + 1, sizeof *dead);
    if (!live_val || !dead) {
        qf_free(live_val);
        qf_free(dead);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory removing dead nodes", g->source_path);
    }
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] >= 0) live_val[g->outputs[k]] = true;
    int removed = 0;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const qf_node *n = &g->nodes[i];
        bool live = false;
        for (int j = 0; j < n->n_outputs && !live; j++)
            live = n->outputs[j] >= 0 && live_val[n->outputs[j]];
        if (!live) {
            dead[i] = true;
            removed++;
            continue;
        }
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] >= 0) live_val[n->inputs[j]] = true;
    }
    if (removed) qf_graph_remove_nodes(g, dead);
    int freed = 0;
    for (int v = 0; v < g->n_values; v++) {
        qf_value *val = &g->values[v];
        if (!(val->flags & QF_VAL_CONST) || live_val[v]) continue;
        if (val->data && !val->data_external) qf_free_aligned(val->data);
        val->data = NULL;
        val->nbytes = 0;
        val->data_external = false;
        val->flags = 0;
        freed++;
    }
    qf_free(live_val);
    qf_free(dead);
    if (removed || freed)
        qf_log(QF_LOG_DEBUG, "%s: removed %d dead node%s, %d unused constant%s", g->source_path,
               removed, removed == 1 ? "" : "s", freed, freed == 1 ? "" : "s");
    if (n_removed) *n_removed = removed;
    return QF_OK;
}
