/* onnx_export_internal.h - the graph analysis the ONNX exporter does before
 * it builds any protobuf message (onnx_export_graph.c), shared with
 * onnx_export.c and its tests. Not part of the public API. */
#ifndef QF_IO_ONNX_EXPORT_INTERNAL_H
#define QF_IO_ONNX_EXPORT_INTERNAL_H

#include "io/onnx_export.h"

/* Check every value index the graph holds (node inputs/outputs, graph
 * inputs/outputs) and give each referenced value a non-empty name unique
 * in the model. (*names)[v] is NULL for a value nothing references. Names
 * are kept where possible: graph inputs, then graph outputs, then the rest
 * in index order claim their own name; a value left without one gets
 * "<name>_<k>" (or "qf_value_<v>" for an empty name) with the smallest k
 * that is free. The array and generated strings live in arena a; `where`
 * names the output in messages. */
qf_status qf_onnx_export_names(const qf_graph *g, const char *where, qf_arena *a,
                               const char ***names, qf_err *err);

/* A topological order of the nodes (order[i] = node index, g->n_nodes
 * entries, allocated in arena a) that keeps the graph's own order when it
 * already is one. Value indices must have been checked by
 * qf_onnx_export_names. Fails with QF_ERR_FORMAT naming the node when a value is
 * produced twice (or is a constant or a graph input that a node also
 * produces), a node reads a value nothing provides, a graph output has no
 * source, or the nodes form a cycle. */
qf_status qf_onnx_export_order(const qf_graph *g, const char *where, qf_arena *a, int **order,
                               qf_err *err);

#endif /* QF_IO_ONNX_EXPORT_INTERNAL_H */
