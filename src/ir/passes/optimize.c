/* optimize.c - the standard inference pipeline of graph passes.
 *
 * Identity removal first (it exposes Conv -> BN pairs and constant chains
 * hidden behind Identity), then constant folding (which also resolves
 * Shape-derived subgraphs), BatchNorm folding, and finally dead-node removal
 * to drop whatever the others left unread.
 */
#include "ir/passes.h"

qf_status qf_pass_optimize(qf_graph *g, qf_err *err) {
    int n_ident = 0, n_const = 0, n_bn = 0, n_dead = 0;
    qf_status s = qf_pass_remove_identity(g, &n_ident, err);
    if (!s) s = qf_pass_fold_constants(g, &n_const, err);
    if (!s) s = qf_pass_fold_batchnorm(g, &n_bn, err);
    if (!s) s = qf_pass_remove_dead(g, &n_dead, err);
    if (s) return s;
    qf_log(QF_LOG_INFO,
           "%s: optimize: %d identity removed, %d constant folded, %d BatchNorm folded, "
           "%d dead removed; %d nodes left",
           g->source_path, n_ident, n_const, n_bn, n_dead, g->n_nodes);
    return QF_OK;
}
