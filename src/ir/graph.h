/* graph.h - the qforge graph IR.
 *
 * A graph is a list of values (tensors: graph inputs, initializers/constants,
 * intermediate results) and a list of nodes that read and write values by
 * index. Node order is kept topological by qf_graph_toposort(). All strings,
 * attributes and parsed op params live in the graph's arena; constant tensor
 * data is owned by the value (qf_malloc_aligned) unless `data_external` says
 * it points into a mapping owned elsewhere.
 */
#ifndef QF_IR_GRAPH_H
#define QF_IR_GRAPH_H

#include "base/base.h"
#include "ir/op_list.h"

/* ---- attributes (ONNX AttributeProto, decoded) ------------------------ */
typedef enum qf_attr_type {
    QF_ATTR_UNDEF = 0,
    QF_ATTR_FLOAT = 1,
    QF_ATTR_INT = 2,
    QF_ATTR_STRING = 3,
    QF_ATTR_TENSOR = 4,
    QF_ATTR_GRAPH = 5,
    QF_ATTR_FLOATS = 6,
    QF_ATTR_INTS = 7,
    QF_ATTR_STRINGS = 8
} qf_attr_type;

typedef struct qf_attr {
    const char *name;
    qf_attr_type type;
    int64_t i;
    float f;
    const char *s;        /* STRING (NUL-terminated) */
    int64_t *ints;        /* INTS */
    float *floats;        /* FLOATS */
    const char **strings; /* STRINGS */
    int n;                /* count for INTS/FLOATS/STRINGS */
    qf_tensor t;          /* TENSOR (data in the graph arena) */
} qf_attr;

/* ---- quantization parameters of a value -------------------------------- */
/* x = scale[c] * (q - zero_point[c]); per-tensor when axis < 0 (n == 1),
 * else per slice along `axis` (n == dims[axis]). bits is the integer width
 * actually used (2..16); the storage dtype is the value's dtype. */
typedef struct qf_qparams {
    int bits;
    int axis;
    int n;
    float *scale;
    int32_t *zero_point;
} qf_qparams;

/* ---- values ----------------------------------------------------------- */
enum {
    QF_VAL_INPUT = 1u << 0,  /* graph input fed by the caller */
    QF_VAL_OUTPUT = 1u << 1, /* graph output */
    QF_VAL_CONST = 1u << 2   /* initializer or folded constant: `data` valid */
};

typedef struct qf_value {
    const char *name;
    qf_dtype dtype;  /* QF_DT_UNDEF until known */
    int rank;        /* -1 = unknown */
    int64_t dims[QF_MAX_DIMS]; /* -1 = dynamic (e.g. batch) */
    uint32_t flags;
    void *data;      /* CONST values: row-major contents */
    size_t nbytes;
    bool data_external; /* data not owned by the value */
    int producer;    /* node index, -1 for inputs/constants */
    qf_qparams *qp;  /* quantization parameters (graph arena), NULL if float */
    /* How a CONST value was stored in the qfm file it was loaded from
     * (io/qfm.h QF_QFM_ENC_*, and the bytes on disk); 0/0 otherwise. */
    uint32_t stored_encoding;
    uint64_t stored_nbytes;
} qf_value;

/* ---- nodes ------------------------------------------------------------ */
#define QF_MAX_NODE_IO 64

typedef struct qf_node {
    const char *name;     /* ONNX node name (generated if the model had none) */
    const char *op_type;  /* ONNX op type as written in the model */
    const char *domain;   /* "" for the default domain */
    qf_op_id op;          /* QF_OP_UNKNOWN if not in the registry */
    int opset;            /* opset version of the node's domain */
    int n_inputs;
    int *inputs;          /* value indices; -1 = omitted optional input */
    int n_outputs;
    int *outputs;         /* value indices; -1 = omitted optional output */
    int n_attrs;
    qf_attr *attrs;
    void *params;         /* op-specific parsed attributes (graph arena) */
} qf_node;

typedef struct qf_graph {
    qf_arena arena;
    qf_value *values;
    int n_values, cap_values;
    qf_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs;  /* graph inputs (values fed by the caller, not initializers) */
    int n_inputs;
    int *outputs;
    int n_outputs;
    int opset;    /* default-domain opset */
    const char *name;
    const char *source_path; /* file name used in error messages */
    const char *producer;    /* producer_name from the model */
    /* Read-only mmap of a qfm file that constant data may point into
     * (data_external values); unmapped by qf_graph_free. NULL if none. */
    void *mapping;
    size_t mapping_len;
} qf_graph;

qf_graph *qf_graph_create(void);
void qf_graph_free(qf_graph *g);

/* Append a value; returns its index or -1 on OOM. name is copied. */
int qf_graph_add_value(qf_graph *g, const char *name, qf_dtype dtype, int rank,
                       const int64_t *dims);
/* Index of the value with this name, or -1. Linear scan: use at build time. */
int qf_graph_find_value(const qf_graph *g, const char *name);
/* Give value v constant contents; `data` is copied into owned, 64-byte
 * aligned memory. dims/dtype/rank are set from t. */
qf_status qf_graph_set_const(qf_graph *g, int v, const qf_tensor *t, qf_err *err);
/* Same, but takes ownership of `data` (allocated with qf_malloc_aligned). */
qf_status qf_graph_set_const_owned(qf_graph *g, int v, qf_dtype dt, int rank,
                                   const int64_t *dims, void *data, size_t nbytes);
/* Append a node; inputs/outputs/attrs copied into the arena. Returns node
 * index or -1 on OOM. op is looked up from op_type (default domain). */
int qf_graph_add_node(qf_graph *g, const char *name, const char *op_type, const char *domain,
                      int opset, const int *inputs, int n_inputs, const int *outputs,
                      int n_outputs, const qf_attr *attrs, int n_attrs);
/* Mark graph inputs/outputs (appends). */
qf_status qf_graph_add_input(qf_graph *g, int v);
qf_status qf_graph_add_output(qf_graph *g, int v);

/* View of a constant value as a tensor (data NULL if not constant). */
qf_tensor qf_value_tensor(const qf_value *v);

/* Sort nodes topologically and set producer indices. Fails with
 * QF_ERR_FORMAT naming a node on a cycle, a value produced twice, or a node
 * reading a value that nothing produces. */
qf_status qf_graph_toposort(qf_graph *g, qf_err *err);
/* Recompute value->producer from the node list. */
void qf_graph_update_producers(qf_graph *g);
/* Number of nodes that read value v (graph outputs count as one reader). */
int qf_graph_consumers(const qf_graph *g, int v);
/* Remove nodes flagged in `dead` (n_nodes entries), compacting the list. */
void qf_graph_remove_nodes(qf_graph *g, const bool *dead);

/* ---- attribute access (used by op parse functions) -------------------- */
const qf_attr *qf_node_attr(const qf_node *n, const char *name);
int64_t qf_node_attr_int(const qf_node *n, const char *name, int64_t dflt);
float qf_node_attr_float(const qf_node *n, const char *name, float dflt);
const char *qf_node_attr_str(const qf_node *n, const char *name, const char *dflt);
/* Returns count (0 if absent) and sets *vals (NULL if absent). */
int qf_node_attr_ints(const qf_node *n, const char *name, const int64_t **vals);
int qf_node_attr_floats(const qf_node *n, const char *name, const float **vals);

/* Attach quantization parameters to value v (copied into the arena). */
qf_status qf_value_set_qparams(qf_graph *g, int v, int bits, int axis, int n, const float *scale,
                               const int32_t *zero_point);

/* Deep copy (values, constant data, nodes, attributes, qparams); op params
 * are re-parsed through the registry. */
qf_status qf_graph_clone(const qf_graph *g, qf_graph **out, qf_err *err);
/* Deep copy of one attribute into g's arena (for moving nodes between graphs). */
qf_status qf_attr_copy(qf_graph *g, const qf_attr *src, qf_attr *dst);

/* Allocate op params in the graph arena (zeroed). */
void *qf_graph_alloc(qf_graph *g, size_t n);

/* Parse the attributes of every node through the op registry. Unknown ops
 * and rejected attributes are collected: the error lists every unsupported
 * op type of the model at once, e.g.
 * "model.onnx: unsupported ops: NonMaxSuppression (2 nodes), TopK (1 node)". */
qf_status qf_graph_parse_ops(qf_graph *g, qf_err *err);

#endif /* QF_IR_GRAPH_H */
