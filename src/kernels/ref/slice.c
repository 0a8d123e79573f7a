/* slice.c - Slice: numpy-style basic slicing along chosen axes with
 * starts/ends (attributes before opset 10, then inputs 1..4 with optional
 * axes and steps). Starts and ends are clamped as the spec says, which lets
 * INT64_MAX / INT64_MIN mean "to the end"; negative steps walk backwards.
 * The copy itself is one strided read (qf_ref_copy_strided). */
#include "kernels/ref/movement_util.h"
#include "kernels/ref/strided_copy.h"

typedef struct slice_params {
    /* opset < 10 attributes */
    int n_starts, n_ends, n_axes; /* n_axes -1: absent */
    const int64_t *starts, *ends, *axes;
} slice_params;

static qf_status slice_parse(qf_graph *g, qf_node *n, qf_err *err) {
    slice_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->n_axes = -1;
    if (n->opset < 10) {
        if (!qf_node_attr(n, "starts") || !qf_node_attr(n, "ends")) {
            char d[200];
            return qf_errf(err, QF_ERR_FORMAT, "%s: attributes 'starts' and 'ends' required",
                           qf_node_desc(n, d, sizeof d));
        }
        p->n_starts = qf_node_attr_ints(n, "starts", &p->starts);
        p->n_ends = qf_node_attr_ints(n, "ends", &p->ends);
        if (qf_node_attr(n, "axes")) p->n_axes = qf_node_attr_ints(n, "axes", &p->axes);
    }
    n->params = p;
    return QF_OK;
}

/* One list of the slice spec: from the attribute (opset < 10) or input i. */
typedef struct int_list {
    int64_t count; /* -1: absent */
    const int64_t *attr;
    const qf_tensor *t;
} int_list;

static int64_t list_get(const int_list *l, int64_t i) {
    return l->t ? qf_tensor_get_i64(l->t, i) : l->attr[i];
}

static qf_status list_from_input(const qf_node *n, const qf_tensor *in, int n_in, int i,
                                 const char *what, int_list *l, qf_err *err) {
    l->count = -1;
    l->attr = NULL;
    l->t = mv_opt_in(in, n_in, i);
    if (!l->t) return QF_OK;
    return mv_need_ints(n, l->t, what, &l->count, err);
}

/* Effective start, step and output size of every axis of in[0]. */
static qf_status slice_plan(const qf_node *n, const qf_tensor *in, int n_in, int64_t *start,
                            int64_t *step, int64_t *size, qf_err *err) {
    const slice_params *p = n->params;
    char d[200];
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int r = in[0].rank;
    int_list starts, ends, axes, steps;
    if (n->opset < 10) {
        starts = (int_list){p->n_starts, p->starts, NULL};
        ends = (int_list){p->n_ends, p->ends, NULL};
        axes = (int_list){p->n_axes, p->axes, NULL};
        steps = (int_list){-1, NULL, NULL};
    } else {
        if ((s = list_from_input(n, in, n_in, 1, "starts", &starts, err)) ||
            (s = list_from_input(n, in, n_in, 2, "ends", &ends, err)) ||
            (s = list_from_input(n, in, n_in, 3, "axes", &axes, err)) ||
            (s = list_from_input(n, in, n_in, 4, "steps", &steps, err)))
            return s;
        if (starts.count < 0 || ends.count < 0)
            return qf_errf(err, QF_ERR_FORMAT, "%s: inputs 'starts' and 'ends' required",
                           qf_node_desc(n, d, sizeof d));
    }
    int64_t k = starts.count;
    if (ends.count != k || (axes.count >= 0 && axes.count != k) ||
        (steps.count >= 0 && steps.count != k))
        return qf_errf(err, QF_ERR_SHAPE, "%s: starts, ends, axes and steps differ in length",
                       qf_node_desc(n, d, sizeof d));
    if (k > r)
        return qf_errf(err, QF_ERR_SHAPE, "%s: %lld slice axes for rank %d",
                       qf_node_desc(n, d, sizeof d), (long long)k, r);
    int64_t end[QF_MAX_DIMS];
    for (int a = 0; a < r; a++) {
        start[a] = 0;
        end[a] = in[0].dims[a];
        step[a] = 1;
    }
    uint32_t seen = 0;
    for (int64_t i = 0; i < k; i++) {
        int a = (int)i;
        if (axes.count >= 0 && (s = qf_norm_axis(n, list_get(&axes, i), r, &a, err))) return s;
        if ((seen >> a) & 1u)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %d sliced twice",
                           qf_node_desc(n, d, sizeof d), a);
        seen |= 1u << a;
        int64_t st = steps.count >= 0 ? list_get(&steps, i) : 1;
        if (st == 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: step 0 on axis %d",
                           qf_node_desc(n, d, sizeof d), a);
        int64_t dim = in[0].dims[a], b = list_get(&starts, i), e = list_get(&ends, i);
        /* no overflow: a negative value plus a non-negative dim */
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        if (st > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
        } else {
            b = b < 0 ? 0 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
        }
        start[a] = b;
        end[a] = e;
        step[a] = st;
    }
    for (int a = 0; a < r; a++) {
        int64_t b = start[a], e = end[a], st = step[a];
        if (st > 0)
            size[a] = e > b ? (e - b - 1) / st + 1 : 0;
        else /* -st cannot overflow for st > INT64_MIN; clamp that one */
            size[a] = b > e ? (b - e - 1) / (st == INT64_MIN ? INT64_MAX : -st) + 1 : 0;
        /* a single element needs no stride: keeps step * stride bounded */
        if (size[a] <= 1) step[a] = 1;
    }
    return QF_OK;
}

static qf_status slice_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    int64_t start[QF_MAX_DIMS], step[QF_MAX_DIMS], size[QF_MAX_DIMS];
    qf_status s = slice_plan(n, in, n_in, start, step, size, err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    for (int a = 0; a < in[0].rank; a++)
        out[0].dims[a] = size[a];
    return QF_OK;
}

static qf_status slice_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int64_t start[QF_MAX_DIMS], step[QF_MAX_DIMS], size[QF_MAX_DIMS];
    qf_status s = slice_plan(n, in, n_in, start, step, size, err);
    if (s) return s;
    int r = in[0].rank;
    int64_t strides[QF_MAX_DIMS], src_strides[QF_MAX_DIMS], dst_strides[QF_MAX_DIMS];
    int64_t offset = 0;
    for (int a = 0; a < r; a++)
        if (size[a] == 0) return QF_OK; /* empty: starts may point past the end */
    qf_ref_row_strides(r, in[0].dims, strides);
    for (int a = 0; a < r; a++) {
        offset += start[a] * strides[a];
        src_strides[a] = step[a] * strides[a];
    }
    qf_ref_row_strides(r, size, dst_strides);
    size_t es = qf_dtype_size(in[0].dtype);
    qf_ref_copy_strided(out[0].data, dst_strides,
                        (const unsigned char *)in[0].data + (size_t)offset * es, src_strides, r,
                        size, es);
    return QF_OK;
}

const qf_op_def qf_opdef_slice = {
    .name = "Slice",
    .value_inputs = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4),
    .parse = slice_parse,
    .infer = slice_infer,
    .run = slice_run,
};
