/* eltwise_variadic.c - Sum, Mean, Max, Min over 1..N inputs with
 * multidirectional (numpy) broadcasting.
 *
 * The output is first filled with input 0 broadcast to the final shape, then
 * each further input is folded in with the binary inner loop of eltwise.h,
 * in place (the accumulator always walks, so aliasing is element for
 * element). Float Max/Min propagate NaN like numpy. */
#include <string.h>

#include "kernels/ref/eltwise.h"

static qf_status infer_variadic(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                                int n_out, qf_err *err) {
    char d[200];
    if (n_in < 1 || n_out < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs at least one input",
                       qf_node_desc(n, d, sizeof d));
    for (int i = 0; i < n_in; i++) {
        if (in[i].dtype == QF_DT_UNDEF)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input %d is missing",
                           qf_node_desc(n, d, sizeof d), i);
        if (in[i].dtype != in[0].dtype)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input types differ (%s vs %s)",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype),
                           qf_dtype_name(in[i].dtype));
    }
    bool ok = n->op == QF_OP_MEAN ? qf_ref_is_float(in[0].dtype) : qf_ref_is_numeric(in[0].dtype);
    if (!ok)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    qf_tensor acc = in[0];
    for (int i = 1; i < n_in; i++) {
        qf_tensor next = acc; /* qf_broadcast_shape must not write its input */
        qf_status s = qf_broadcast_shape(n, &acc, &in[i], &next, err);
        if (s) return s;
        acc = next;
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = acc.rank;
    memcpy(out[0].dims, acc.dims, sizeof acc.dims);
    return QF_OK;
}

static void divide_by(qf_tensor *t, int count) {
    int64_t m = qf_tensor_numel(t);
    if (t->dtype == QF_DT_F32) {
        float *p = t->data;
        for (int64_t i = 0; i < m; i++)
            p[i] /= (float)count;
    } else if (t->dtype == QF_DT_F64) {
        double *p = t->data;
        for (int64_t i = 0; i < m; i++)
            p[i] /= (double)count;
    } else if (t->dtype == QF_DT_F16) {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < m; i++)
            p[i] = qf_f32_to_f16(qf_f16_to_f32(p[i]) / (float)count);
    }
}

static qf_status run_variadic(qf_ref_binop op, const qf_node *n, const qf_tensor *in, int n_in,
                              qf_tensor *out, qf_err *err) {
    qf_ref_bin_fn fn = qf_ref_binary_fn(op, out[0].dtype);
    if (!fn) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported type %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(out[0].dtype));
    }
    qf_bcast_copy(&out[0], &in[0]);
    for (int i = 1; i < n_in; i++)
        qf_ref_binary_apply(fn, &out[0], &in[i], &out[0]);
    return QF_OK;
}

static qf_status run_sum(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    return run_variadic(QF_BIN_ADD, n, in, n_in, out, err);
}

static qf_status run_mean(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qf_status s = run_variadic(QF_BIN_ADD, n, in, n_in, out, err);
    if (s) return s;
    divide_by(&out[0], n_in);
    return QF_OK;
}

static qf_status run_max(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    return run_variadic(QF_BIN_MAX, n, in, n_in, out, err);
}

static qf_status run_min(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    return run_variadic(QF_BIN_MIN, n, in, n_in, out, err);
}

const qf_op_def qf_opdef_sum = {
    .name = "Sum", .flags = QF_OPF_ELEMENTWISE, .infer = infer_variadic, .run = run_sum};
const qf_op_def qf_opdef_mean = {
    .name = "Mean", .flags = QF_OPF_ELEMENTWISE, .infer = infer_variadic, .run = run_mean};
const qf_op_def qf_opdef_max = {
    .name = "Max", .flags = QF_OPF_ELEMENTWISE, .infer = infer_variadic, .run = run_max};
const qf_op_def qf_opdef_min = {
    .name = "Min", .flags = QF_OPF_ELEMENTWISE, .infer = infer_variadic, .run = run_min};
