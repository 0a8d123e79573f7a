/* gather.c - Gather: pick slices of `data` along `axis` by int32/int64
 * indices of any rank; output shape is data.dims[:axis] + indices.dims +
 * data.dims[axis+1:]. Indices come from data, so run bounds-checks every
 * one (negative ones count from the end, once) before copying anything. */
#include "kernels/ref/movement_util.h"

typedef struct gather_params {
    int64_t axis;
} gather_params;

static qf_status gather_parse(qf_graph *g, qf_node *n, qf_err *err) {
    gather_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->axis = qf_node_attr_int(n, "axis", 0);
    n->params = p;
    return QF_OK;
}

static qf_status gather_check(const qf_node *n, const qf_tensor *in, int n_in, int *axis,
                              qf_err *err) {
    const gather_params *p = n->params;
    char d[200];
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    const qf_tensor *idx = mv_opt_in(in, n_in, 1);
    if (!idx)
        return qf_errf(err, QF_ERR_FORMAT, "%s: missing indices input",
                       qf_node_desc(n, d, sizeof d));
    if (idx->dtype != QF_DT_I64 && idx->dtype != QF_DT_I32)
        return qf_errf(err, QF_ERR_FORMAT, "%s: indices must be int32 or int64, not %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(idx->dtype));
    if (in[0].rank < 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: data must have rank >= 1",
                       qf_node_desc(n, d, sizeof d));
    if (idx->rank < 0 || idx->rank + in[0].rank - 1 > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: output rank %d exceeds %d",
                       qf_node_desc(n, d, sizeof d), idx->rank + in[0].rank - 1, QF_MAX_DIMS);
    return qf_norm_axis(n, p->axis, in[0].rank, axis, err);
}

static qf_status gather_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    int axis;
    qf_status s = gather_check(n, in, n_in, &axis, err);
    if (s) return s;
    const qf_tensor *data = &in[0], *idx = &in[1];
    int r = 0;
    for (int i = 0; i < axis; i++)
        out[0].dims[r++] = data->dims[i];
    for (int i = 0; i < idx->rank; i++)
        out[0].dims[r++] = idx->dims[i];
    for (int i = axis + 1; i < data->rank; i++)
        out[0].dims[r++] = data->dims[i];
    out[0].dtype = data->dtype;
    out[0].rank = r;
    return mv_check_out(n, &out[0], err);
}

static qf_status gather_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int axis;
    qf_status s = gather_check(n, in, n_in, &axis, err);
    if (s) return s;
    const qf_tensor *data = &in[0], *idx = &in[1];
    int64_t dim = data->dims[axis];
    int64_t n_idx = qf_tensor_numel(idx);
    for (int64_t k = 0; k < n_idx; k++) {
        int64_t v = qf_tensor_get_i64(idx, k);
        if (v < -dim || v >= dim) {
            char d[200];
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: index %lld out of range for axis %d of size %lld",
                           qf_node_desc(n, d, sizeof d), (long long)v, axis, (long long)dim);
        }
    }
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= data->dims[i];
    for (int i = axis + 1; i < data->rank; i++)
        inner *= data->dims[i];
    size_t row = (size_t)inner * qf_dtype_size(data->dtype);
    if (!row) return QF_OK;
    const unsigned char *src = data->data;
    unsigned char *dst = out[0].data;
    for (int64_t o = 0; o < outer; o++) {
        const unsigned char *block = src + (size_t)(o * dim) * row;
        for (int64_t k = 0; k < n_idx; k++, dst += row) {
            int64_t v = qf_tensor_get_i64(idx, k);
            if (v < 0) v += dim;
            memcpy(dst, block + (size_t)v * row, row);
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_gather = {
    .name = "Gather",
    .parse = gather_parse,
    .infer = gather_infer,
    .run = gather_run,
};
