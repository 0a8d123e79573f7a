/* shape_ops.c - ops that only relabel the shape of their input (views):
 * Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout (inference), plus
 * Shape, which reads nothing but the input's dims. The planner may alias a
 * view's output with its input; run then has nothing to do. */
#include "kernels/ref/movement_util.h"

/* Shared run of the view ops: copy the bytes unless the planner aliased the
 * output to the input. */
static qf_status view_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    size_t bytes;
    if (!mv_nbytes(&in[0], &bytes)) {
        char d[200];
        return qf_errf(err, QF_ERR_SHAPE, "%s: bad input size", qf_node_desc(n, d, sizeof d));
    }
    mv_copy(out[0].data, in[0].data, bytes);
    return QF_OK;
}

static void same_shape(const qf_tensor *src, qf_tensor *dst) {
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    for (int i = 0; i < src->rank; i++)
        dst->dims[i] = src->dims[i];
}

/* ---- Flatten ------------------------------------------------------------ */
typedef struct flatten_params {
    int64_t axis;
} flatten_params;

static qf_status flatten_parse(qf_graph *g, qf_node *n, qf_err *err) {
    flatten_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->axis = qf_node_attr_int(n, "axis", 1);
    n->params = p;
    return QF_OK;
}

static qf_status flatten_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    const flatten_params *p = n->params;
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int r = in[0].rank;
    /* axis is in [-r, r]: r itself is allowed (outer = everything) */
    int64_t a = p->axis < 0 ? p->axis + r : p->axis;
    if (a < 0 || a > r) {
        char d[200];
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %lld out of range for rank %d",
                       qf_node_desc(n, d, sizeof d), (long long)p->axis, r);
    }
    int64_t outer = 1, inner = 1;
    bool ok = true;
    for (int i = 0; i < r; i++) {
        if (i < a)
            ok = ok && mv_mul_i64(outer, in[0].dims[i], &outer);
        else
            ok = ok && mv_mul_i64(inner, in[0].dims[i], &inner);
    }
    if (!ok) outer = -1; /* rejected by mv_check_out below */
    out[0].dtype = in[0].dtype;
    out[0].rank = 2;
    out[0].dims[0] = outer;
    out[0].dims[1] = inner;
    return mv_check_out(n, &out[0], err);
}

const qf_op_def qf_opdef_flatten = {
    .name = "Flatten",
    .flags = QF_OPF_VIEW,
    .parse = flatten_parse,
    .infer = flatten_infer,
    .run = view_run,
};

/* ---- Reshape ------------------------------------------------------------ */
typedef struct reshape_params {
    bool allowzero;
    int n_shape; /* opset < 5: the `shape` attribute */
    const int64_t *shape;
} reshape_params;

static qf_status reshape_parse(qf_graph *g, qf_node *n, qf_err *err) {
    reshape_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->allowzero = n->opset >= 14 && qf_node_attr_int(n, "allowzero", 0) != 0;
    if (n->opset < 5) p->n_shape = qf_node_attr_ints(n, "shape", &p->shape);
    n->params = p;
    return QF_OK;
}

static qf_status reshape_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    const reshape_params *p = n->params;
    char d[200], s1[160], s2[160];
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int64_t want[QF_MAX_DIMS];
    int64_t count = 0;
    if (n->opset < 5) {
        count = p->n_shape;
        if (count > QF_MAX_DIMS) goto too_many;
        for (int64_t i = 0; i < count; i++)
            want[i] = p->shape[i];
    } else {
        const qf_tensor *sh = mv_opt_in(in, n_in, 1);
        if (!sh)
            return qf_errf(err, QF_ERR_FORMAT, "%s: missing shape input",
                           qf_node_desc(n, d, sizeof d));
        s = mv_need_ints(n, sh, "shape", &count, err);
        if (s) return s;
        if (count > QF_MAX_DIMS) goto too_many;
        for (int64_t i = 0; i < count; i++)
            want[i] = qf_tensor_get_i64(sh, i);
    }
    int64_t numel = qf_tensor_numel(&in[0]);
    int infer_at = -1;
    int64_t known = 1;
    out[0].dtype = in[0].dtype;
    out[0].rank = (int)count;
    for (int i = 0; i < (int)count; i++) {
        int64_t v = want[i];
        if (v == 0 && !p->allowzero) {
            if (i >= in[0].rank)
                return qf_errf(err, QF_ERR_SHAPE,
                               "%s: shape %s copies dim %d of input shape %s, which has "
                               "no such dim",
                               qf_node_desc(n, d, sizeof d),
                               mv_fmt_dims(s1, sizeof s1, (int)count, want), i,
                               mv_fmt_dims(s2, sizeof s2, in[0].rank, in[0].dims));
            v = in[0].dims[i];
        } else if (v == -1) {
            if (infer_at >= 0)
                return qf_errf(err, QF_ERR_SHAPE, "%s: shape %s has more than one -1",
                               qf_node_desc(n, d, sizeof d),
                               mv_fmt_dims(s1, sizeof s1, (int)count, want));
            infer_at = i;
            continue;
        } else if (v < 0) {
            return qf_errf(err, QF_ERR_SHAPE, "%s: shape %s has a negative dim",
                           qf_node_desc(n, d, sizeof d),
                           mv_fmt_dims(s1, sizeof s1, (int)count, want));
        }
        out[0].dims[i] = v;
        if (v != 0 && known > INT64_MAX / v) goto mismatch;
        known *= v;
    }
    if (infer_at >= 0) {
        /* 0 known elements would make the -1 ambiguous */
        if (known == 0 || numel % known != 0) goto mismatch;
        out[0].dims[infer_at] = numel / known;
    } else if (known != numel) {
        goto mismatch;
    }
    return QF_OK;
mismatch:
    return qf_errf(err, QF_ERR_SHAPE, "%s: cannot reshape input of shape %s to shape %s",
                   qf_node_desc(n, d, sizeof d), mv_fmt_dims(s2, sizeof s2, in[0].rank, in[0].dims),
                   mv_fmt_dims(s1, sizeof s1, (int)count, want));
too_many:
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: target rank %lld exceeds %d",
                   qf_node_desc(n, d, sizeof d), (long long)count, QF_MAX_DIMS);
}

const qf_op_def qf_opdef_reshape = {
    .name = "Reshape",
    .flags = QF_OPF_VIEW,
    .value_inputs = 1u << 1,
    .parse = reshape_parse,
    .infer = reshape_infer,
    .run = view_run,
};

/* ---- Squeeze / Unsqueeze ------------------------------------------------ */
typedef struct axes_params {
    int n_axes; /* opset < 13: the `axes` attribute (-1: absent) */
    const int64_t *axes;
} axes_params;

static qf_status axes_parse(qf_graph *g, qf_node *n, qf_err *err) {
    axes_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->n_axes = -1;
    if (n->opset < 13 && qf_node_attr(n, "axes"))
        p->n_axes = qf_node_attr_ints(n, "axes", &p->axes);
    n->params = p;
    return QF_OK;
}

/* Collect the axes (attribute or input 1) as a bitmask over a tensor of rank
 * `rank`. *present is false when no axes were given at all. */
static qf_status collect_axes(const qf_node *n, const qf_tensor *in, int n_in, int rank,
                              uint32_t *mask, int *n_axes, bool *present, qf_err *err) {
    const axes_params *p = n->params;
    char d[200];
    int64_t vals[QF_MAX_DIMS];
    int64_t count = 0;
    *present = false;
    *mask = 0;
    if (n->opset < 13) {
        if (p->n_axes >= 0) {
            *present = true;
            count = p->n_axes;
            if (count > QF_MAX_DIMS) goto too_many;
            for (int64_t i = 0; i < count; i++)
                vals[i] = p->axes[i];
        }
    } else {
        const qf_tensor *ax = mv_opt_in(in, n_in, 1);
        if (ax) {
            qf_status s = mv_need_ints(n, ax, "axes", &count, err);
            if (s) return s;
            if (count > QF_MAX_DIMS) goto too_many;
            for (int64_t i = 0; i < count; i++)
                vals[i] = qf_tensor_get_i64(ax, i);
            *present = true;
        }
    }
    for (int64_t i = 0; i < count; i++) {
        int a;
        qf_status s = qf_norm_axis(n, vals[i], rank, &a, err);
        if (s) return s;
        if (*mask & (1u << a))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %lld repeated",
                           qf_node_desc(n, d, sizeof d), (long long)vals[i]);
        *mask |= 1u << a;
    }
    *n_axes = (int)count;
    /* an empty axes list behaves like an absent one (squeeze every 1) */
    *present = count > 0;
    return QF_OK;
too_many:
    return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %lld axes given, more than %d",
                   qf_node_desc(n, d, sizeof d), (long long)count, QF_MAX_DIMS);
}

static qf_status squeeze_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    if (!n->params) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    uint32_t mask;
    int n_axes;
    bool present;
    s = collect_axes(n, in, n_in, in[0].rank, &mask, &n_axes, &present, err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    out[0].rank = 0;
    for (int i = 0; i < in[0].rank; i++) {
        bool drop = present ? (mask >> i) & 1u : in[0].dims[i] == 1;
        if (drop && in[0].dims[i] != 1) {
            char d[200], sh[160];
            return qf_errf(err, QF_ERR_SHAPE, "%s: cannot squeeze axis %d of shape %s",
                           qf_node_desc(n, d, sizeof d), i,
                           mv_fmt_dims(sh, sizeof sh, in[0].rank, in[0].dims));
        }
        if (!drop) out[0].dims[out[0].rank++] = in[0].dims[i];
    }
    return QF_OK;
}

const qf_op_def qf_opdef_squeeze = {
    .name = "Squeeze",
    .flags = QF_OPF_VIEW,
    .value_inputs = 1u << 1,
    .parse = axes_parse,
    .infer = squeeze_infer,
    .run = view_run,
};

static qf_status unsqueeze_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                                 int n_out, qf_err *err) {
    char d[200];
    if (!n->params) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    /* the axes index the *output*, whose rank is only known once we know
     * how many there are: count first, then normalise */
    int64_t count = 0;
    const axes_params *p = n->params;
    if (n->opset < 13) {
        count = p->n_axes < 0 ? 0 : p->n_axes;
    } else {
        const qf_tensor *ax = mv_opt_in(in, n_in, 1);
        if (!ax)
            return qf_errf(err, QF_ERR_FORMAT, "%s: missing axes input",
                           qf_node_desc(n, d, sizeof d));
        s = mv_need_ints(n, ax, "axes", &count, err);
        if (s) return s;
    }
    if (count == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: no axes given", qf_node_desc(n, d, sizeof d));
    if (count + in[0].rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: output rank %lld exceeds %d",
                       qf_node_desc(n, d, sizeof d), (long long)(count + in[0].rank), QF_MAX_DIMS);
    int r = (int)count + in[0].rank;
    uint32_t mask;
    int n_axes;
    bool present;
    s = collect_axes(n, in, n_in, r, &mask, &n_axes, &present, err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    out[0].rank = r;
    for (int i = 0, k = 0; i < r; i++)
        out[0].dims[i] = (mask >> i) & 1u ? 1 : in[0].dims[k++];
    return QF_OK;
}

const qf_op_def qf_opdef_unsqueeze = {
    .name = "Unsqueeze",
    .flags = QF_OPF_VIEW,
    .value_inputs = 1u << 1,
    .parse = axes_parse,
    .infer = unsqueeze_infer,
    .run = view_run,
};

/* ---- Identity ----------------------------------------------------------- */
static qf_status identity_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                                int n_out, qf_err *err) {
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    same_shape(&in[0], &out[0]);
    return QF_OK;
}

const qf_op_def qf_opdef_identity = {
    .name = "Identity",
    .flags = QF_OPF_VIEW,
    .infer = identity_infer,
    .run = view_run,
};

/* ---- Dropout (inference only) ------------------------------------------ */
/* ratio and seed only matter in training, which qforge's float runtime does
 * not do; opset < 7 `is_test` is ignored too, since models of that age that
 * reach an inference runtime were exported for inference. */
static qf_status dropout_check_training(const qf_node *n, const qf_tensor *in, int n_in,
                                        qf_err *err) {
    const qf_tensor *tm = mv_opt_in(in, n_in, 2), *ratio = mv_opt_in(in, n_in, 1);
    if (n->opset < 12 || !tm || !tm->data || qf_tensor_numel(tm) < 1) return QF_OK;
    if (qf_tensor_get_i64(tm, 0) == 0) return QF_OK;
    /* training with ratio 0 drops nothing: still a plain copy (the ratio
     * defaults to 0.5 when absent) */
    if (ratio && ratio->data && qf_tensor_numel(ratio) >= 1 && qf_tensor_get_f64(ratio, 0) == 0.0)
        return QF_OK;
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED,
                   "%s: training_mode=true with a non-zero ratio is not supported",
                   qf_node_desc(n, d, sizeof d));
}

static qf_status dropout_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    s = dropout_check_training(n, in, n_in, err);
    if (s) return s;
    same_shape(&in[0], &out[0]);
    if (n_out > 1) {
        same_shape(&in[0], &out[1]);
        /* the mask became bool in opset 10; before it had the data's type */
        if (n->opset >= 10) out[1].dtype = QF_DT_BOOL;
    }
    return QF_OK;
}

static qf_status dropout_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_status s = dropout_check_training(n, in, n_in, err);
    if (s) return s;
    s = view_run(ctx, n, in, n_in, out, n_out, scratch, err);
    if (s) return s;
    if (n_out > 1 && out[1].data) {
        /* inference keeps every element: the mask is all ones */
        unsigned char one[16];
        size_t es = qf_dtype_size(out[1].dtype);
        if (es == 0 || es > sizeof one) return QF_OK;
        mv_store_f64(out[1].dtype, 1.0, one);
        mv_fill(out[1].data, one, qf_tensor_numel(&out[1]), es);
    }
    return QF_OK;
}

const qf_op_def qf_opdef_dropout = {
    .name = "Dropout",
    .flags = QF_OPF_VIEW,
    .infer = dropout_infer,
    .run = dropout_run,
};

/* ---- Shape -------------------------------------------------------------- */
typedef struct shape_params {
    int64_t start, end;
    bool has_end;
} shape_params;

static qf_status shape_parse(qf_graph *g, qf_node *n, qf_err *err) {
    shape_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    if (n->opset >= 15) {
        p->start = qf_node_attr_int(n, "start", 0);
        p->has_end = qf_node_attr(n, "end") != NULL;
        p->end = qf_node_attr_int(n, "end", 0);
    }
    n->params = p;
    return QF_OK;
}

/* [start, end) of the dims reported, clamped into [0, rank] as the spec
 * says. */
static void shape_range(const shape_params *p, int rank, int *lo, int *hi) {
    int64_t s = p->start, e = p->has_end ? p->end : rank;
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    *lo = (int)s;
    *hi = (int)(e > s ? e : s);
}

static qf_status shape_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    const shape_params *p = n->params;
    if (!p) return mv_no_params(n, err);
    if (n_in < 1 || in[0].dtype == QF_DT_UNDEF || in[0].rank < 0 || in[0].rank > QF_MAX_DIMS) {
        char d[200];
        return qf_errf(err, QF_ERR_FORMAT, "%s: missing or bad data input",
                       qf_node_desc(n, d, sizeof d));
    }
    int lo, hi;
    shape_range(p, in[0].rank, &lo, &hi);
    out[0].dtype = QF_DT_I64;
    out[0].rank = 1;
    out[0].dims[0] = hi - lo;
    return QF_OK;
}

static qf_status shape_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const shape_params *p = n->params;
    if (!p) return mv_no_params(n, err);
    int lo, hi;
    shape_range(p, in[0].rank, &lo, &hi);
    int64_t *o = out[0].data;
    for (int i = lo; i < hi; i++)
        o[i - lo] = in[0].dims[i];
    return QF_OK;
}

const qf_op_def qf_opdef_shape = {
    .name = "Shape",
    .flags = QF_OPF_SHAPE_ONLY,
    .parse = shape_parse,
    .infer = shape_infer,
    .run = shape_run,
};
