/* transpose.c - Transpose: out.dims[i] = in.dims[perm[i]], perm defaulting
 * to the reversed axes. The copy is a strided read of the input in output
 * order; qf_ref_copy_strided merges axes that stay adjacent, so e.g. NCHW ->
 * NHWC becomes a 2-d transpose of C x (H*W) and an identity perm one memcpy. */
#include "kernels/ref/movement_util.h"
#include "kernels/ref/strided_copy.h"

typedef struct transpose_params {
    int n_perm; /* 0: reverse */
    const int64_t *perm;
} transpose_params;

static qf_status transpose_parse(qf_graph *g, qf_node *n, qf_err *err) {
    transpose_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    p->n_perm = qf_node_attr_ints(n, "perm", &p->perm);
    if (p->n_perm > QF_MAX_DIMS) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: perm of %d axes exceeds %d",
                       qf_node_desc(n, d, sizeof d), p->n_perm, QF_MAX_DIMS);
    }
    n->params = p;
    return QF_OK;
}

/* The permutation for a rank-r input, validated. */
static qf_status get_perm(const qf_node *n, int r, int *perm, qf_err *err) {
    const transpose_params *p = n->params;
    char d[200];
    if (!p) return mv_no_params(n, err);
    if (p->n_perm == 0 && !qf_node_attr(n, "perm")) {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
        return QF_OK;
    }
    if (p->n_perm != r)
        return qf_errf(err, QF_ERR_SHAPE, "%s: perm has %d entries but the input has rank %d",
                       qf_node_desc(n, d, sizeof d), p->n_perm, r);
    uint32_t seen = 0;
    for (int i = 0; i < r; i++) {
        int64_t a = p->perm[i];
        if (a < 0 || a >= r || (seen >> a) & 1u)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: perm is not a permutation of 0..%d",
                           qf_node_desc(n, d, sizeof d), r - 1);
        seen |= 1u << a;
        perm[i] = (int)a;
    }
    return QF_OK;
}

static qf_status transpose_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                                 int n_out, qf_err *err) {
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int perm[QF_MAX_DIMS];
    s = get_perm(n, in[0].rank, perm, err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    for (int i = 0; i < in[0].rank; i++)
        out[0].dims[i] = in[0].dims[perm[i]];
    return QF_OK;
}

static qf_status transpose_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                               int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int r = in[0].rank;
    int perm[QF_MAX_DIMS];
    qf_status s = get_perm(n, r, perm, err);
    if (s) return s;
    int64_t in_strides[QF_MAX_DIMS], src_strides[QF_MAX_DIMS], dst_strides[QF_MAX_DIMS];
    int64_t sizes[QF_MAX_DIMS];
    qf_ref_row_strides(r, in[0].dims, in_strides);
    for (int i = 0; i < r; i++) {
        sizes[i] = in[0].dims[perm[i]];
        src_strides[i] = in_strides[perm[i]];
    }
    qf_ref_row_strides(r, sizes, dst_strides);
    qf_ref_copy_strided(out[0].data, dst_strides, in[0].data, src_strides, r, sizes,
                        qf_dtype_size(in[0].dtype));
    return QF_OK;
}

const qf_op_def qf_opdef_transpose = {
    .name = "Transpose",
    .parse = transpose_parse,
    .infer = transpose_infer,
    .run = transpose_run,
};
