/* eval_node.h - private helper of the graph passes (src/ir/passes only):
 * run one node's reference kernel at pass time into freshly allocated
 * buffers. Passes are not on the run path, so they may allocate. */
#ifndef QF_IR_PASSES_EVAL_NODE_H
#define QF_IR_PASSES_EVAL_NODE_H

#include "ir/ops.h"

/* Bytes of a tensor with known dtype/dims; false for an unknown dtype, a
 * negative dim or overflow. */
bool qf_pass_tensor_bytes(const qf_tensor *t, size_t *bytes);

/* Evaluate node n with def->run. out[j] must already carry the dtype/rank/
 * dims that def->infer produced. For each output j that the node names
 * (n->outputs[j] >= 0) a qf_malloc_aligned buffer is stored in out[j].data
 * and owned by the caller afterwards; omitted outputs get data NULL. On
 * failure nothing is left allocated and every out[j].data is NULL. */
qf_status qf_pass_eval_node(const qf_node *n, const qf_op_def *def, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, qf_err *err);

#endif /* QF_IR_PASSES_EVAL_NODE_H */
