/* ops.h - the op registry: one qf_op_def per ONNX op, indexed by qf_op_id.
 *
 * Adding an op = one line in op_list.h + one `const qf_op_def qf_opdef_<id>`
 * in the op's kernel file. Nothing else in the tree switches on op types.
 *
 * Tensor conventions for the callbacks below:
 *  - in[i] for an omitted optional input has dtype QF_DT_UNDEF, data NULL.
 *  - In infer, in[i].data is non-NULL only when the value is known at plan
 *    time (initializer, folded constant, or a shape input resolved by the
 *    planner: see value_inputs). infer sets dtype/rank/dims of every output.
 *  - In run, out[j].data is NULL for an omitted optional output; the kernel
 *    skips it. Output buffers are allocated by the planner from infer's shapes
 *    and are 64-byte aligned. Ops flagged QF_OPF_VIEW may receive out[0].data
 *    == in[0].data (the planner aliases them); they must handle both cases.
 *  - run never allocates: scratch (size from `scratch`) is the only extra
 *    memory it may use.
 */
#ifndef QF_IR_OPS_H
#define QF_IR_OPS_H

#include "ir/graph.h"

/* Execution context handed to kernels (thread pool etc. later). */
typedef struct qf_exec_ctx {
    int num_threads;
    /* Added for the int8 x86 kernels: the session's worker pool
     * (base/threadpool.h, num_threads threads in all), NULL = run inline. */
    struct qf_threadpool *pool;
} qf_exec_ctx;

enum {
    QF_OPF_ELEMENTWISE = 1u << 0, /* out[0] shape = broadcast of inputs */
    QF_OPF_VIEW = 1u << 1,        /* out[0] has in[0]'s bytes (Reshape, Flatten, ...) */
    QF_OPF_SHAPE_ONLY = 1u << 2   /* output depends only on input shapes (Shape) */
};

typedef struct qf_op_def {
    const char *name; /* ONNX op type */
    uint32_t flags;
    /* Bit i set: the *contents* of input i are needed by infer (e.g.
     * Reshape's shape, Slice's starts). The planner computes them first. */
    uint32_t value_inputs;
    /* Decode/validate attributes into n->params (qf_graph_alloc). Reject
     * what the kernel cannot do with QF_ERR_UNSUPPORTED naming the attribute.
     * NULL: no attributes. */
    qf_status (*parse)(qf_graph *g, qf_node *n, qf_err *err);
    qf_status (*infer)(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out, int n_out,
                       qf_err *err);
    /* Scratch bytes run needs for these shapes; NULL means 0. */
    size_t (*scratch)(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                      int n_out);
    /* Float reference kernel (fp32, plus the integer/bool dtypes the op
     * meaningfully supports for shape arithmetic). */
    qf_status (*run)(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                     qf_tensor *out, int n_out, void *scratch, qf_err *err);
    /* Optional residual fusion (quantized runtime): the planner may run a
     * node whose only use is one input of a qforge.QAdd node `add` as one
     * step that writes the add's output, when fuse_add_ok says this node
     * can for these shapes and that add. Both get this node's inputs, the add node, the
     * add's inputs (add_in[slot] is this node's output: never written, no
     * buffer) and its output (fuse_add_ok: data of values not yet computed
     * unset). run_add must produce exactly the bytes the two nodes would,
     * in the same scratch as run. */
    bool (*fuse_add_ok)(const qf_node *n, const qf_tensor *in, int n_in, const qf_node *add,
                        const qf_tensor *add_in, int slot, const qf_tensor *add_out);
    qf_status (*run_add)(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         const qf_node *add, const qf_tensor *add_in, int slot, qf_tensor *add_out,
                         void *scratch, qf_err *err);
    /* Optional: the name of the kernel run takes for these inputs when the
     * session has scratch memory (or not), for profiles ("x86 avx2",
     * "portable", "reference", ...); NULL when it cannot tell. */
    const char *(*kernel)(const qf_node *n, const qf_tensor *in, int n_in, bool scratch);
} qf_op_def;

/* Registry lookup. Returns NULL for QF_OP_UNKNOWN or an op whose kernel is
 * not linked in. */
const qf_op_def *qf_op_get(qf_op_id op);
qf_op_id qf_op_lookup(const char *onnx_name, const char *domain);
const char *qf_op_name(qf_op_id op);

/* Helpers shared by op implementations (ir/op_util.c). */
/* Normalise a possibly negative axis into [0, rank); error names the node. */
qf_status qf_norm_axis(const qf_node *n, int64_t axis, int rank, int *out, qf_err *err);
/* Numpy-style broadcast of a and b into out (rank/dims). */
qf_status qf_broadcast_shape(const qf_node *n, const qf_tensor *a, const qf_tensor *b,
                             qf_tensor *out, qf_err *err);
/* Read element i of an integer tensor (I32/I64/...) as int64. */
int64_t qf_tensor_get_i64(const qf_tensor *t, int64_t i);
/* Read element i of a numeric tensor as double. */
double qf_tensor_get_f64(const qf_tensor *t, int64_t i);
/* Node description for errors: "Conv node 'conv1'". */
const char *qf_node_desc(const qf_node *n, char *buf, size_t len);

#endif /* QF_IR_OPS_H */
