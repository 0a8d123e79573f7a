/* onnx.h - ONNX model import (protobuf-c, schema from libonnx-dev). */
#ifndef QF_IO_ONNX_H
#define QF_IO_ONNX_H

#include "ir/graph.h"

/* Decode an ONNX ModelProto into a new graph.
 *  - path_for_errors names the file in every message;
 *  - base_dir resolves external data locations (NULL = current directory);
 *  - initializers and Constant nodes become QF_VAL_CONST values (Constant
 *    nodes are kept as nodes only if their value is not a plain tensor);
 *  - graph inputs that are also initializers are constants, not inputs;
 *  - dim_param / missing dims become -1 (bound at run time);
 *  - nodes are topologically sorted and their attributes parsed through the
 *    op registry: every unsupported op of the model is listed in one error.
 * On failure *out is NULL and nothing leaks. */
qf_status qf_onnx_import(const void *buf, size_t len, const char *path_for_errors,
                         const char *base_dir, qf_graph **out, qf_err *err);
/* Read a file and import it (base_dir = the file's directory). */
qf_status qf_onnx_import_file(const char *path, qf_graph **out, qf_err *err);

/* Decode a serialized TensorProto (the input_N.pb / output_N.pb files of
 * ONNX's test data) into a tensor whose data is qf_malloc_aligned'd and
 * owned by the caller (free with qf_free_aligned(t->data)). */
qf_status qf_onnx_read_tensor_file(const char *path, qf_tensor *t, qf_err *err);
qf_status qf_onnx_decode_tensor(const void *buf, size_t len, const char *path_for_errors,
                                qf_tensor *t, qf_err *err);

#endif /* QF_IO_ONNX_H */
