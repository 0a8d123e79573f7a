/* onnx_export.h - write a qf_graph back to an ONNX ModelProto file.
 *
 * The reverse of onnx.h's importer, used after pruning, training and
 * quantization. What goes into the model:
 *  - graph inputs: the graph's inputs that are not constants;
 *  - initializers: every constant value a node reads or the graph outputs,
 *    as little-endian raw_data (or in an external data file, see below);
 *  - value_info: every other referenced value whose dtype is known;
 *  - nodes in topological order, with every attribute type except graphs
 *    (QF_ERR_UNSUPPORTED names the node); an omitted optional input or
 *    output (index -1) is written as the empty name "";
 *  - opset_import: the default domain, and each other domain a node uses.
 * Values the graph references with an empty or a repeated name are given
 * unique generated names (ONNX requires both); graph inputs and outputs
 * keep theirs first. Quantization parameters (qf_value.qp) are not written:
 * QDQ export is a separate stage.
 *
 * Files are written atomically (temp file + rename): a failed export leaves
 * neither the model nor its data file behind.
 */
#ifndef QF_IO_ONNX_EXPORT_H
#define QF_IO_ONNX_EXPORT_H

#include "ir/graph.h"

/* Highest default-domain opset whose IR version qforge knows (ONNX 1.18+). */
#define QF_ONNX_EXPORT_MAX_OPSET 23
/* Opset declared when neither the graph nor any node names one. */
#define QF_ONNX_EXPORT_FALLBACK_OPSET 17

typedef struct qf_onnx_export_options {
    /* Default-domain opset to declare. 0 = g->opset raised to the highest
     * default-domain node opset (QF_ONNX_EXPORT_FALLBACK_OPSET if both are
     * 0). A value below some node's opset is QF_ERR_INVALID_ARG. */
    int opset;
    /* ModelProto.ir_version. 0 = from the opset by ONNX's release table
     * (8 up to opset 18, 9 for 19-20, 10 for 21-22, 11 for 23). Below 4,
     * initializers are listed among the graph inputs too, as IR 3 requires. */
    int64_t ir_version;
    const char *producer_name;    /* NULL = "qforge" */
    const char *producer_version; /* NULL = qforge's version ("0.1.0") */
    /* Write a dynamic (-1) first dimension of graph inputs and outputs as
     * the symbolic dim_param "N"; other dynamic dims are left unset. */
    bool symbolic_batch;
    /* Initializers of at least this many bytes go to the external data
     * file "<path>.data" (stored location: the file's base name). 0 = none,
     * unless the model would exceed max_model_bytes. */
    size_t external_threshold;
    /* Largest serialized model before the largest initializers spill to
     * external data. 0 = protobuf's limit (2 GiB - 1). */
    size_t max_model_bytes;
} qf_onnx_export_options;

/* Defaults: every field 0/NULL except symbolic_batch = true. A NULL options
 * pointer means these defaults; a zeroed struct means the same except that
 * dynamic batch dims are left unset. */
void qf_onnx_export_options_init(qf_onnx_export_options *opt);

/* Export g to `path` (and "<path>.data" when tensors go external). The
 * graph is not modified. Errors: QF_ERR_INVALID_ARG (bad options, a graph
 * input/output without a known dtype, an out-of-range value index),
 * QF_ERR_UNSUPPORTED (graph attributes, string tensors, an opset beyond the
 * IR table without an explicit ir_version), QF_ERR_FORMAT (inconsistent
 * graph: a value produced twice, a cycle, a constant whose byte size does
 * not match its shape), QF_ERR_NOMEM, QF_ERR_IO. */
qf_status qf_onnx_export(const qf_graph *g, const char *path, const qf_onnx_export_options *opt,
                         qf_err *err);

/* Same model serialized into memory: *buf (qf_malloc'd, caller frees with
 * qf_free) holds *len bytes. Models that need external data (a nonzero
 * external_threshold that some initializer reaches, or a size beyond
 * max_model_bytes) fail with QF_ERR_UNSUPPORTED. */
qf_status qf_onnx_export_mem(const qf_graph *g, const qf_onnx_export_options *opt, void **buf,
                             size_t *len, qf_err *err);

#endif /* QF_IO_ONNX_EXPORT_H */
