/* runtime.h - internal view of models and sessions. */
#ifndef QF_RUNTIME_H
#define QF_RUNTIME_H

#include "ir/graph.h"
#include "ir/ops.h"

struct qf_model {
    qf_graph *g;   /* owned */
    char *path;    /* file it came from (for messages) */
};

/* Wrap a graph as a model (takes ownership of g). */
qf_status qf_model_from_graph(qf_graph *g, const char *path, qf_model **out, qf_err *err);
/* Access the graph behind a model (inspect, passes, quantizer). */
qf_graph *qf_model_graph(qf_model *m);

#endif /* QF_RUNTIME_H */
