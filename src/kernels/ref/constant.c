/* constant.c - Constant (a tensor from attributes; the importer normally
 * folds it into a constant value, this covers the rest) and ConstantOfShape
 * (a tensor of a shape given at run time, filled with one value). */
#include "kernels/ref/movement_util.h"

/* ---- Constant ----------------------------------------------------------- */
typedef struct constant_params {
    qf_tensor t; /* data points into the attribute or `scalar` */
    union {
        float f;
        int64_t i;
    } scalar;
} constant_params;

static qf_status constant_parse(qf_graph *g, qf_node *n, qf_err *err) {
    static const char *const unsupported[] = {"sparse_value", "value_string", "value_strings"};
    static const char *const known[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    char d[200];
    for (size_t i = 0; i < QF_ARRAY_LEN(unsupported); i++)
        if (qf_node_attr(n, unsupported[i]))
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: attribute '%s' not supported",
                           qf_node_desc(n, d, sizeof d), unsupported[i]);
    const qf_attr *a = NULL;
    int found = 0;
    for (size_t i = 0; i < QF_ARRAY_LEN(known); i++) {
        const qf_attr *x = qf_node_attr(n, known[i]);
        if (x) a = x, found++;
    }
    if (found != 1)
        return qf_errf(err, QF_ERR_FORMAT, "%s: needs exactly one value attribute, has %d",
                       qf_node_desc(n, d, sizeof d), found);
    constant_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    qf_tensor *t = &p->t;
    if (strcmp(a->name, "value") == 0 && a->type == QF_ATTR_TENSOR) {
        *t = a->t;
        size_t bytes;
        if (qf_dtype_size(t->dtype) == 0)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: value of dtype %s not supported",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(t->dtype));
        if (!mv_nbytes(t, &bytes) || (bytes && !t->data))
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad value tensor",
                           qf_node_desc(n, d, sizeof d));
    } else if (strcmp(a->name, "value_float") == 0 && a->type == QF_ATTR_FLOAT) {
        p->scalar.f = a->f;
        *t = (qf_tensor){.dtype = QF_DT_F32, .rank = 0, .data = &p->scalar.f};
    } else if (strcmp(a->name, "value_int") == 0 && a->type == QF_ATTR_INT) {
        p->scalar.i = a->i;
        *t = (qf_tensor){.dtype = QF_DT_I64, .rank = 0, .data = &p->scalar.i};
    } else if (strcmp(a->name, "value_floats") == 0 && a->type == QF_ATTR_FLOATS) {
        *t = (qf_tensor){.dtype = QF_DT_F32, .rank = 1, .dims = {a->n}, .data = a->floats};
    } else if (strcmp(a->name, "value_ints") == 0 && a->type == QF_ATTR_INTS) {
        *t = (qf_tensor){.dtype = QF_DT_I64, .rank = 1, .dims = {a->n}, .data = a->ints};
    } else {
        return qf_errf(err, QF_ERR_FORMAT, "%s: attribute '%s' has the wrong type",
                       qf_node_desc(n, d, sizeof d), a->name);
    }
    n->params = p;
    return QF_OK;
}

static qf_status constant_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                                int n_out, qf_err *err) {
    const constant_params *p = n->params;
    if (!p) return mv_no_params(n, err);
    out[0] = p->t;
    out[0].data = NULL;
    return QF_OK;
}

static qf_status constant_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                              int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const constant_params *p = n->params;
    size_t bytes;
    if (!p) return mv_no_params(n, err);
    if (mv_nbytes(&p->t, &bytes)) mv_copy(out[0].data, p->t.data, bytes);
    return QF_OK;
}

const qf_op_def qf_opdef_constant = {
    .name = "Constant",
    .parse = constant_parse,
    .infer = constant_infer,
    .run = constant_run,
};

/* ---- ConstantOfShape ---------------------------------------------------- */
typedef struct cos_params {
    qf_dtype dtype;
    unsigned char value[16]; /* one element; zero (float 0) by default */
} cos_params;

static qf_status cos_parse(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    cos_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->dtype = QF_DT_F32;
    const qf_attr *a = qf_node_attr(n, "value");
    if (a) {
        size_t es = qf_dtype_size(a->t.dtype);
        if (a->type != QF_ATTR_TENSOR || qf_tensor_numel(&a->t) != 1 || !a->t.data)
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: attribute 'value' must be a one-element "
                           "tensor",
                           qf_node_desc(n, d, sizeof d));
        if (es == 0 || es > sizeof p->value)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: value of dtype %s not supported",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(a->t.dtype));
        p->dtype = a->t.dtype;
        memcpy(p->value, a->t.data, es);
    }
    n->params = p;
    return QF_OK;
}

static qf_status cos_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                           int n_out, qf_err *err) {
    const cos_params *p = n->params;
    char d[200];
    if (!p) return mv_no_params(n, err);
    const qf_tensor *sh = mv_opt_in(in, n_in, 0);
    if (!sh)
        return qf_errf(err, QF_ERR_FORMAT, "%s: missing shape input", qf_node_desc(n, d, sizeof d));
    int64_t k = 0;
    qf_status s = mv_need_ints(n, sh, "input", &k, err);
    if (s) return s;
    if (k > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: rank %lld exceeds %d",
                       qf_node_desc(n, d, sizeof d), (long long)k, QF_MAX_DIMS);
    out[0].dtype = p->dtype;
    out[0].rank = (int)k;
    for (int i = 0; i < (int)k; i++) {
        out[0].dims[i] = qf_tensor_get_i64(sh, i);
        if (out[0].dims[i] < 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: negative dim %lld in shape",
                           qf_node_desc(n, d, sizeof d), (long long)out[0].dims[i]);
    }
    return mv_check_out(n, &out[0], err);
}

static qf_status cos_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const cos_params *p = n->params;
    if (!p) return mv_no_params(n, err);
    mv_fill(out[0].data, p->value, qf_tensor_numel(&out[0]), qf_dtype_size(p->dtype));
    return QF_OK;
}

const qf_op_def qf_opdef_constant_of_shape = {
    .name = "ConstantOfShape",
    .value_inputs = 1u << 0,
    .parse = cos_parse,
    .infer = cos_infer,
    .run = cos_run,
};
