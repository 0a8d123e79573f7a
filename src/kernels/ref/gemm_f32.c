/* gemm_f32.c - ONNX Gemm (opsets 7..21), float reference kernel:
 * Y = alpha * op(A) * op(B) + beta * C, with C optional (opset >= 11) and
 * unidirectionally broadcast to [M, N]. Large products run on OpenBLAS
 * (qf_sgemm_f32_auto), small ones on the portable qf_sgemm_f32. */
#include <string.h>

#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/sgemm.h"
#include "kernels/ref/spatial.h"

typedef struct gemm_params {
    float alpha, beta;
    bool trans_a, trans_b;
} gemm_params;

static qf_status gemm_parse(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    gemm_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "Gemm: out of memory");
    p->alpha = qf_node_attr_float(n, "alpha", 1.0f);
    p->beta = qf_node_attr_float(n, "beta", 1.0f);
    int64_t ta = qf_node_attr_int(n, "transA", 0), tb = qf_node_attr_int(n, "transB", 0);
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: transA/transB must be 0 or 1",
                       qf_node_desc(n, d, sizeof d));
    p->trans_a = ta == 1;
    p->trans_b = tb == 1;
    n->params = p;
    return QF_OK;
}

typedef struct gemm_dims {
    int64_t m, n, k;
    bool has_c;
} gemm_dims;

static qf_status gemm_dims_of(const qf_node *n, const qf_tensor *in, int n_in, gemm_dims *gd,
                              qf_err *err) {
    const gemm_params *p = n->params;
    char d[200];
    qf_status s;
    if (n_in < 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs A and B",
                       qf_node_desc(n, d, sizeof d));
    if ((s = qf_require_f32(n, &in[0], "A", err)) || (s = qf_require_f32(n, &in[1], "B", err)))
        return s;
    if (in[0].rank != 2 || in[1].rank != 2)
        return qf_errf(err, QF_ERR_SHAPE, "%s: A and B must be 2-D (got ranks %d and %d)",
                       qf_node_desc(n, d, sizeof d), in[0].rank, in[1].rank);
    gd->m = p->trans_a ? in[0].dims[1] : in[0].dims[0];
    gd->k = p->trans_a ? in[0].dims[0] : in[0].dims[1];
    int64_t kb = p->trans_b ? in[1].dims[1] : in[1].dims[0];
    gd->n = p->trans_b ? in[1].dims[0] : in[1].dims[1];
    if (kb != gd->k)
        return qf_errf(err, QF_ERR_SHAPE, "%s: inner dimensions differ (%lld vs %lld)",
                       qf_node_desc(n, d, sizeof d), (long long)gd->k, (long long)kb);
    gd->has_c = n_in > 2 && in[2].dtype != QF_DT_UNDEF;
    if (gd->has_c) {
        const qf_tensor *c = &in[2];
        if ((s = qf_require_f32(n, c, "C", err))) return s;
        bool ok = c->rank <= 2;
        if (ok && c->rank == 2)
            ok = (c->dims[0] == 1 || c->dims[0] == gd->m) &&
                 (c->dims[1] == 1 || c->dims[1] == gd->n);
        if (ok && c->rank == 1) ok = c->dims[0] == 1 || c->dims[0] == gd->n;
        if (!ok)
            return qf_errf(err, QF_ERR_SHAPE, "%s: C (rank %d) does not broadcast to [%lld, %lld]",
                           qf_node_desc(n, d, sizeof d), c->rank, (long long)gd->m,
                           (long long)gd->n);
    }
    return QF_OK;
}

static qf_status gemm_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                            int n_out, qf_err *err) {
    gemm_dims gd;
    qf_status s = gemm_dims_of(n, in, n_in, &gd, err);
    if (s) return s;
    out[0].dtype = QF_DT_F32;
    out[0].rank = 2;
    out[0].dims[0] = gd.m;
    out[0].dims[1] = gd.n;
    return QF_OK;
}

static size_t gemm_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                           int n_out) {
    gemm_dims gd;
    if (gemm_dims_of(n, in, n_in, &gd, NULL)) return 0;
    return qf_sgemm_f32_scratch((size_t)gd.m, (size_t)gd.n, (size_t)gd.k);
}

static qf_status gemm_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const gemm_params *p = n->params;
    gemm_dims gd;
    qf_status s = gemm_dims_of(n, in, n_in, &gd, err);
    if (s) return s;
    float *y = out[0].data;
    float beta = 0.0f;
    if (gd.has_c && p->beta != 0.0f) {
        const qf_tensor *c = &in[2];
        const float *cv = c->data;
        /* broadcast strides of C over [M, N] (0 where C has size 1) */
        int64_t cm = c->rank == 2 ? c->dims[0] : 1;
        int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        int64_t sm = cm == 1 ? 0 : cn, sn = cn == 1 ? 0 : 1;
        for (int64_t i = 0; i < gd.m; i++)
            for (int64_t j = 0; j < gd.n; j++)
                y[i * gd.n + j] = cv[i * sm + j * sn];
        beta = p->beta;
    }
    const float *a = in[0].data, *b = in[1].data;
    qf_sgemm_f32_auto(ctx, p->trans_a, p->trans_b, (size_t)gd.m, (size_t)gd.n, (size_t)gd.k,
                      p->alpha, a, (size_t)in[0].dims[1], b, (size_t)in[1].dims[1], beta, y,
                      (size_t)gd.n, scratch);
    return QF_OK;
}

const qf_op_def qf_opdef_gemm = {
    .name = "Gemm",
    .flags = 0,
    .value_inputs = 0,
    .parse = gemm_parse,
    .infer = gemm_infer,
    .scratch = gemm_scratch,
    .run = gemm_run,
};
