/* runtime.h - internal view of models and sessions. */
#ifndef QF_RUNTIME_H
#define QF_RUNTIME_H

#include "ir/graph.h"
#include "ir/ops.h"

struct qf_model {
    qf_graph *g; /* owned */
    char *path;  /* file it came from (for messages) */
};

/* Wrap a graph as a model (takes ownership of g). */
qf_status qf_model_from_graph(qf_graph *g, const char *path, qf_model **out, qf_err *err);
/* Access the graph behind a model (inspect, passes, quantizer). */
qf_graph *qf_model_graph(qf_model *m);

/* Called after every node a run executes, with the node's outputs (omitted
 * optional outputs have data NULL). Calibration and per-layer error reports
 * use it to see intermediate tensors without making them graph outputs.
 * A non-OK return aborts the run with that status. NULL fn removes it. */
typedef qf_status (*qf_node_observer)(void *user, const qf_graph *g, int node, const qf_tensor *out,
                                      int n_out);
void qf_session_set_observer(qf_session *s, qf_node_observer fn, void *user);

/* After a run: the kernel graph node `node` runs with the current plan's
 * tensors (its op's qf_op_def.kernel), or NULL when the op does not say,
 * the node is not part of the plan, or nothing ran yet. */
const char *qf_session_node_kernel(const qf_session *s, int node);

#endif /* QF_RUNTIME_H */
