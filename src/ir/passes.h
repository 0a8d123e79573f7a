/* passes.h - graph passes. Each is a function over the graph with its own
 * test (tests/test_passes.c). All keep the graph valid and topologically
 * sorted, and never change what the graph computes (beyond float rounding
 * for BatchNorm folding). */
#ifndef QF_IR_PASSES_H
#define QF_IR_PASSES_H

#include "ir/graph.h"

/* Static shape inference through each op's infer callback. Dynamic input
 * dims (-1) are bound to 1 and to 2 in two runs; dims that differ between
 * the runs are recorded as -1 (symbolic, e.g. the batch). Fills dtype, rank
 * and dims of every value it can; stops with an error naming the node whose
 * inputs do not fit. */
qf_status qf_pass_infer_shapes(qf_graph *g, qf_err *err);
/* Evaluate nodes whose inputs are all constant (and whose outputs are not
 * huge), turning their outputs into constants; Shape of a value whose shape
 * is fully static folds too. Returns the number of nodes folded in *n_folded
 * (may be NULL). */
qf_status qf_pass_fold_constants(qf_graph *g, int *n_folded, qf_err *err);
/* Remove Identity and inference-mode Dropout, rewiring consumers. */
qf_status qf_pass_remove_identity(qf_graph *g, int *n_removed, qf_err *err);
/* Fold BatchNormalization (inference mode, constant params) into a
 * preceding Conv or Gemm (constant weights, single consumer). */
qf_status qf_pass_fold_batchnorm(qf_graph *g, int *n_folded, qf_err *err);
/* Remove nodes none of whose outputs reach a graph output, and constants
 * nothing reads. */
qf_status qf_pass_remove_dead(qf_graph *g, int *n_removed, qf_err *err);
/* The standard inference pipeline: identity removal, constant folding,
 * BatchNorm folding, dead-node removal. */
qf_status qf_pass_optimize(qf_graph *g, qf_err *err);

#endif /* QF_IR_PASSES_H */
