/* onnx_internal.h - pieces shared by the ONNX importer's files (onnx_pb.c,
 * onnx_tensor.c, onnx_attr.c, onnx_import.c) and by its unit tests. Not part
 * of the public API; nothing outside src/io/onnx_*.c and tests/ includes it.
 */
#ifndef QF_IO_ONNX_INTERNAL_H
#define QF_IO_ONNX_INTERNAL_H

#include "io/onnx.h"
#include "onnx.pb-c.h"

/* Deepest message nesting accepted before protobuf-c's recursive unpacker
 * runs (protobuf's own default limit is 100). A normal model nests about 7
 * levels, plus 3 per level of control-flow subgraph. */
#define QF_ONNX_MAX_NESTING 100

/* Where an importer call reads from and how it names things in errors. */
typedef struct qf_onnx_ctx {
    const char *path;     /* model (or tensor) file name used in every message */
    const char *base_dir; /* directory for external data; NULL = current directory */
} qf_onnx_ctx;

/* ---- onnx_pb.c: unpacking -------------------------------------------- */
/* Unpack a ModelProto / TensorProto. Every block protobuf-c allocates comes
 * from qf_malloc_aligned, so decoders may adopt a bytes or repeated-scalar
 * array without copying it (set the message's pointer to NULL and its count
 * to 0; free the adopted block with qf_free_aligned). Messages nested deeper
 * than QF_ONNX_MAX_NESTING, or malformed wire data, give NULL. *nomem is set
 * when the failure was an allocation failure. */
Onnx__ModelProto *qf_onnx_unpack_model(const void *buf, size_t len, bool *nomem);
void qf_onnx_free_model(Onnx__ModelProto *m);
Onnx__TensorProto *qf_onnx_unpack_tensor(const void *buf, size_t len, bool *nomem);
void qf_onnx_free_tensor(Onnx__TensorProto *t);
/* True when buf is well-formed protobuf wire data of message type `desc`
 * whose sub-messages nest at most max_depth levels. */
bool qf_onnx_wire_depth_ok(const void *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                           int max_depth);

/* ---- onnx_tensor.c: TensorProto -> dense tensor ---------------------- */
/* Map an ONNX TensorProto.DataType code to a qforge dtype. Fails with
 * QF_ERR_UNSUPPORTED for STRING, complex and bfloat16 and QF_ERR_FORMAT for
 * unknown codes; `what` ("initializer 'w'") names the tensor. */
qf_status qf_onnx_dtype(int32_t code, const qf_onnx_ctx *cx, const char *what, qf_dtype *out,
                        qf_err *err);
/* Decode tp (which must come from qf_onnx_unpack_*) into t: dtype, rank,
 * dims and contents in a qf_malloc_aligned block of *nbytes bytes owned by
 * the caller (never NULL on success, even for zero elements). Contents come
 * from raw_data (adopted without a copy), the typed repeated fields or an
 * external file under cx->base_dir; every size is checked first. */
qf_status qf_onnx_tensor_from_proto(Onnx__TensorProto *tp, const qf_onnx_ctx *cx, const char *what,
                                    qf_tensor *t, size_t *nbytes, qf_err *err);

/* ---- onnx_attr.c: AttributeProto -> qf_attr -------------------------- */
/* Decode one attribute of node `node_name` into *out; strings, arrays and
 * tensor contents are copied into the graph arena. Graph-valued attributes
 * become QF_ATTR_GRAPH without content; tensor lists, sparse tensors and
 * type protos become QF_ATTR_UNDEF (no supported op uses them). */
qf_status qf_onnx_decode_attr(qf_graph *g, const qf_onnx_ctx *cx, const char *node_name,
                              Onnx__AttributeProto *ap, qf_attr *out, qf_err *err);
/* The attribute's type, inferred from the fields present when the model
 * (IR version 1) did not record it. */
Onnx__AttributeProto__AttributeType qf_onnx_attr_type(const Onnx__AttributeProto *ap);

/* ---- onnx_import.c ---------------------------------------------------- */
/* Everything qf_onnx_import does except qf_graph_parse_ops: decode, build
 * values and nodes, fold Constant nodes, toposort. Used by tests to look at
 * the structure of models whose ops have no kernel linked in. */
qf_status qf_onnx_build_graph(const void *buf, size_t len, const char *path_for_errors,
                              const char *base_dir, qf_graph **out, qf_err *err);
/* The directory part of path ("." when it has none), qf_malloc'd. */
char *qf_onnx_dirname(const char *path);

#endif /* QF_IO_ONNX_INTERNAL_H */
