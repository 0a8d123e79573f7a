/* concat_split.c - Concat and Split, the two ops that join or cut a tensor
 * along one axis. Both view every tensor as [outer, axis * inner] rows, so
 * the copy is one memcpy per (outer index, part). */
#include "kernels/ref/movement_util.h"

typedef struct axis_params {
    int64_t axis;
    int n_split; /* Split opset < 13: the `split` attribute (-1: absent) */
    const int64_t *split;
    int64_t num_outputs; /* Split opset >= 18 (0: absent) */
} axis_params;

/* Elements per index of `axis` (the product of the dims after it) and the
 * number of leading blocks (the product of the dims before it). */
static void outer_inner(const qf_tensor *t, int axis, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++)
        *inner *= t->dims[i];
}

/* ---- Concat ------------------------------------------------------------- */
static qf_status concat_parse(qf_graph *g, qf_node *n, qf_err *err) {
    axis_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    if (!qf_node_attr(n, "axis") && n->opset >= 4) {
        char d[200];
        return qf_errf(err, QF_ERR_FORMAT, "%s: required attribute 'axis' missing",
                       qf_node_desc(n, d, sizeof d));
    }
    p->axis = qf_node_attr_int(n, "axis", 1); /* opset < 4 defaulted to 1 */
    n->params = p;
    return QF_OK;
}

static qf_status concat_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    const axis_params *p = n->params;
    char d[200], s1[160], s2[160];
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int r = in[0].rank, axis;
    if (r == 0)
        return qf_errf(err, QF_ERR_SHAPE, "%s: cannot concatenate scalars",
                       qf_node_desc(n, d, sizeof d));
    s = qf_norm_axis(n, p->axis, r, &axis, err);
    if (s) return s;
    int64_t total = 0;
    for (int k = 0; k < n_in; k++) {
        const qf_tensor *t = &in[k];
        if (t->dtype != in[0].dtype)
            return qf_errf(err, QF_ERR_FORMAT, "%s: input %d is %s, input 0 is %s",
                           qf_node_desc(n, d, sizeof d), k, qf_dtype_name(t->dtype),
                           qf_dtype_name(in[0].dtype));
        bool ok = t->rank == r;
        for (int i = 0; ok && i < r; i++)
            ok = i == axis || t->dims[i] == in[0].dims[i];
        if (!ok)
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: input %d of shape %s does not fit "
                           "input 0 of shape %s on axis %d",
                           qf_node_desc(n, d, sizeof d), k,
                           mv_fmt_dims(s1, sizeof s1, t->rank, t->dims),
                           mv_fmt_dims(s2, sizeof s2, r, in[0].dims), axis);
        if (t->dims[axis] < 0 || total > INT64_MAX - t->dims[axis])
            return qf_errf(err, QF_ERR_SHAPE, "%s: bad size on axis %d",
                           qf_node_desc(n, d, sizeof d), axis);
        total += t->dims[axis];
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = r;
    for (int i = 0; i < r; i++)
        out[0].dims[i] = in[0].dims[i];
    out[0].dims[axis] = total;
    return mv_check_out(n, &out[0], err);
}

static qf_status concat_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const axis_params *p = n->params;
    if (!p) return mv_no_params(n, err);
    int axis;
    qf_status s = qf_norm_axis(n, p->axis, out[0].rank, &axis, err);
    if (s) return s;
    size_t es = qf_dtype_size(out[0].dtype);
    int64_t outer, inner;
    outer_inner(&out[0], axis, &outer, &inner);
    unsigned char *dst = out[0].data;
    for (int64_t o = 0; o < outer; o++) {
        for (int k = 0; k < n_in; k++) {
            size_t chunk = (size_t)(in[k].dims[axis] * inner) * es;
            if (!chunk) continue;
            const unsigned char *src = in[k].data;
            memcpy(dst, src + (size_t)o * chunk, chunk);
            dst += chunk;
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_concat = {
    .name = "Concat",
    .parse = concat_parse,
    .infer = concat_infer,
    .run = concat_run,
};

/* ---- Split -------------------------------------------------------------- */
static qf_status split_parse(qf_graph *g, qf_node *n, qf_err *err) {
    axis_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->axis = qf_node_attr_int(n, "axis", 0);
    p->n_split = -1;
    if (n->opset < 13 && qf_node_attr(n, "split"))
        p->n_split = qf_node_attr_ints(n, "split", &p->split);
    if (n->opset >= 18) p->num_outputs = qf_node_attr_int(n, "num_outputs", 0);
    n->params = p;
    return QF_OK;
}

/* Size of every output along the axis, from the split input/attribute,
 * num_outputs, or an equal split over the node's outputs. */
static qf_status split_sizes(const qf_node *n, const qf_tensor *in, int n_in, int n_out,
                             int *axis_out, int64_t *sizes, qf_err *err) {
    const axis_params *p = n->params;
    char d[200];
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int axis;
    s = qf_norm_axis(n, p->axis, in[0].rank, &axis, err);
    if (s) return s;
    *axis_out = axis;
    int64_t dim = in[0].dims[axis];
    if (n_out < 1 || n_out > QF_MAX_NODE_IO)
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad output count %d", qf_node_desc(n, d, sizeof d),
                       n_out);
    const qf_tensor *sp = n->opset >= 13 ? mv_opt_in(in, n_in, 1) : NULL;
    if (sp || p->n_split >= 0) {
        int64_t count = p->n_split;
        if (sp) {
            s = mv_need_ints(n, sp, "split", &count, err);
            if (s) return s;
        }
        if (count != n_out)
            return qf_errf(err, QF_ERR_SHAPE, "%s: %lld split sizes for %d outputs",
                           qf_node_desc(n, d, sizeof d), (long long)count, n_out);
        int64_t sum = 0;
        for (int j = 0; j < n_out; j++) {
            sizes[j] = sp ? qf_tensor_get_i64(sp, j) : p->split[j];
            if (sizes[j] < 0 || sizes[j] > dim - sum)
                return qf_errf(err, QF_ERR_SHAPE, "%s: split sizes do not add up to %lld",
                               qf_node_desc(n, d, sizeof d), (long long)dim);
            sum += sizes[j];
        }
        if (sum != dim)
            return qf_errf(err, QF_ERR_SHAPE, "%s: split sizes add up to %lld, not %lld",
                           qf_node_desc(n, d, sizeof d), (long long)sum, (long long)dim);
        return QF_OK;
    }
    if (p->num_outputs && p->num_outputs != n_out)
        return qf_errf(err, QF_ERR_FORMAT, "%s: num_outputs=%lld but the node has %d outputs",
                       qf_node_desc(n, d, sizeof d), (long long)p->num_outputs, n_out);
    if (n->opset < 18 && dim % n_out != 0)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: axis of size %lld does not split into %d "
                       "equal parts",
                       qf_node_desc(n, d, sizeof d), (long long)dim, n_out);
    /* opset 18: ceil-sized chunks, the last one smaller (possibly empty) */
    int64_t chunk = dim / n_out + (dim % n_out != 0), left = dim;
    for (int j = 0; j < n_out; j++) {
        sizes[j] = chunk < left ? chunk : left;
        left -= sizes[j];
    }
    return QF_OK;
}

static qf_status split_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    int64_t sizes[QF_MAX_NODE_IO];
    int axis;
    qf_status s = split_sizes(n, in, n_in, n_out, &axis, sizes, err);
    if (s) return s;
    for (int j = 0; j < n_out; j++) {
        out[j].dtype = in[0].dtype;
        out[j].rank = in[0].rank;
        for (int i = 0; i < in[0].rank; i++)
            out[j].dims[i] = in[0].dims[i];
        out[j].dims[axis] = sizes[j];
    }
    return QF_OK;
}

static qf_status split_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int64_t sizes[QF_MAX_NODE_IO];
    int axis;
    qf_status s = split_sizes(n, in, n_in, n_out, &axis, sizes, err);
    if (s) return s;
    size_t es = qf_dtype_size(in[0].dtype);
    int64_t outer, inner;
    outer_inner(&in[0], axis, &outer, &inner);
    size_t row = (size_t)(in[0].dims[axis] * inner) * es;
    const unsigned char *src = in[0].data;
    size_t off = 0;
    for (int j = 0; j < n_out; j++) {
        size_t chunk = (size_t)(sizes[j] * inner) * es;
        unsigned char *dst = out[j].data;
        if (dst && chunk)
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)o * chunk, src + (size_t)o * row + off, chunk);
        off += chunk;
    }
    return QF_OK;
}

const qf_op_def qf_opdef_split = {
    .name = "Split",
    .value_inputs = 1u << 1,
    .parse = split_parse,
    .infer = split_infer,
    .run = split_run,
};
