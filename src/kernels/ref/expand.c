/* expand.c - Expand: broadcast the input to a shape given as input 1, with
 * numpy rules in both directions (the output may keep input dims that the
 * shape gives as 1, and may have more or fewer leading axes than the
 * shape). The copy reads broadcast axes with stride 0. */
#include "kernels/ref/movement_util.h"
#include "kernels/ref/strided_copy.h"

static qf_status expand_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    char d[200], s1[160], s2[160];
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    const qf_tensor *sh = mv_opt_in(in, n_in, 1);
    if (!sh)
        return qf_errf(err, QF_ERR_FORMAT, "%s: missing shape input", qf_node_desc(n, d, sizeof d));
    int64_t k = 0;
    if ((s = mv_need_ints(n, sh, "shape", &k, err))) return s;
    if (k > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: shape of rank %lld exceeds %d",
                       qf_node_desc(n, d, sizeof d), (long long)k, QF_MAX_DIMS);
    int64_t want[QF_MAX_DIMS];
    for (int64_t i = 0; i < k; i++) {
        want[i] = qf_tensor_get_i64(sh, i);
        if (want[i] < 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: negative dim in shape %s",
                           qf_node_desc(n, d, sizeof d), mv_fmt_dims(s1, sizeof s1, (int)k, want));
    }
    int r = in[0].rank, rk = (int)k, ro = r > rk ? r : rk;
    for (int i = 0; i < ro; i++) {
        int ii = i - (ro - r), is = i - (ro - rk);
        int64_t di = ii >= 0 ? in[0].dims[ii] : 1, ds = is >= 0 ? want[is] : 1;
        if (di == ds || ds == 1)
            out[0].dims[i] = di;
        else if (di == 1)
            out[0].dims[i] = ds;
        else
            return qf_errf(err, QF_ERR_SHAPE, "%s: cannot expand shape %s to %s",
                           qf_node_desc(n, d, sizeof d), mv_fmt_dims(s1, sizeof s1, r, in[0].dims),
                           mv_fmt_dims(s2, sizeof s2, rk, want));
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = ro;
    return mv_check_out(n, &out[0], err);
}

static qf_status expand_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int r = in[0].rank, ro = out[0].rank;
    if (ro < r) {
        char d[200];
        return qf_errf(err, QF_ERR_INTERNAL, "%s: output rank below input rank",
                       qf_node_desc(n, d, sizeof d));
    }
    int64_t istr[QF_MAX_DIMS], src_strides[QF_MAX_DIMS], dst_strides[QF_MAX_DIMS];
    qf_ref_row_strides(r, in[0].dims, istr);
    for (int i = 0; i < ro; i++) {
        int ii = i - (ro - r);
        /* a broadcast axis re-reads the same elements: stride 0 */
        src_strides[i] = ii >= 0 && in[0].dims[ii] != 1 ? istr[ii] : 0;
    }
    qf_ref_row_strides(ro, out[0].dims, dst_strides);
    qf_ref_copy_strided(out[0].data, dst_strides, in[0].data, src_strides, ro, out[0].dims,
                        qf_dtype_size(in[0].dtype));
    return QF_OK;
}

const qf_op_def qf_opdef_expand = {
    .name = "Expand",
    .value_inputs = 1u << 1,
    .infer = expand_infer,
    .run = expand_run,
};
