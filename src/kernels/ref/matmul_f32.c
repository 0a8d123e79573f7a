/* matmul_f32.c - ONNX MatMul (opsets 1..21), float reference kernel with
 * numpy semantics: 1-D operands are promoted (and the added axis removed
 * from the result), leading batch axes broadcast. When B has no batch (the
 * common "activations x weights" case) and A is contiguous, the whole batch
 * runs as one taller GEMM. Large GEMMs run on OpenBLAS (qf_sgemm_f32_auto). */
#include <string.h>

#include "kernels/blas/sgemm_blas.h"
#include "kernels/ref/sgemm.h"
#include "kernels/ref/spatial.h"

typedef struct mm_shape {
    int64_t m, n, k;
    int batch_rank; /* rank of the broadcast batch */
    int64_t batch[QF_MAX_DIMS];
    int64_t a_bstride[QF_MAX_DIMS], b_bstride[QF_MAX_DIMS]; /* 0 where broadcast */
    int64_t n_batch;
    bool b_shared; /* B is the same matrix for every batch entry */
    int out_rank;
    int64_t out_dims[QF_MAX_DIMS];
} mm_shape;

static qf_status mm_shape_of(const qf_node *n, const qf_tensor *in, int n_in, mm_shape *ms,
                             qf_err *err) {
    char d[200];
    qf_status s;
    if (n_in < 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs A and B",
                       qf_node_desc(n, d, sizeof d));
    if ((s = qf_require_f32(n, &in[0], "A", err)) || (s = qf_require_f32(n, &in[1], "B", err)))
        return s;
    const qf_tensor *a = &in[0], *b = &in[1];
    if (a->rank < 1 || b->rank < 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: operands must have rank >= 1",
                       qf_node_desc(n, d, sizeof d));
    memset(ms, 0, sizeof *ms);
    ms->m = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    ms->k = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    ms->n = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != ms->k)
        return qf_errf(err, QF_ERR_SHAPE, "%s: inner dimensions differ (%lld vs %lld)",
                       qf_node_desc(n, d, sizeof d), (long long)ms->k, (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int r = ra > rb ? ra : rb;
    ms->batch_rank = r;
    ms->n_batch = 1;
    int64_t sa = ms->m * ms->k, sb = ms->k * ms->n; /* element strides, innermost batch */
    ms->b_shared = true;
    for (int i = r - 1; i >= 0; i--) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return qf_errf(err, QF_ERR_SHAPE, "%s: batch dims do not broadcast (%lld vs %lld)",
                           qf_node_desc(n, d, sizeof d), (long long)da, (long long)db);
        ms->batch[i] = da > db ? da : db;
        if (da == 0 || db == 0) ms->batch[i] = 0;
        ms->a_bstride[i] = da == 1 ? 0 : sa;
        ms->b_bstride[i] = db == 1 ? 0 : sb;
        if (db != 1) ms->b_shared = false;
        sa *= da;
        sb *= db;
        ms->n_batch *= ms->batch[i];
    }
    int o = 0;
    for (int i = 0; i < r; i++)
        ms->out_dims[o++] = ms->batch[i];
    if (a->rank > 1) ms->out_dims[o++] = ms->m;
    if (b->rank > 1) ms->out_dims[o++] = ms->n;
    ms->out_rank = o;
    return QF_OK;
}

static qf_status mm_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                          int n_out, qf_err *err) {
    mm_shape ms;
    qf_status s = mm_shape_of(n, in, n_in, &ms, err);
    if (s) return s;
    out[0].dtype = QF_DT_F32;
    out[0].rank = ms.out_rank;
    memcpy(out[0].dims, ms.out_dims, sizeof(int64_t) * (size_t)ms.out_rank);
    return QF_OK;
}

/* With B shared and A not broadcast along the batch, the batch folds into M. */
static bool mm_fold_batch(const mm_shape *ms, const qf_tensor *a) {
    return ms->b_shared && a->rank - 2 == ms->batch_rank;
}

static size_t mm_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                         int n_out) {
    mm_shape ms;
    if (mm_shape_of(n, in, n_in, &ms, NULL)) return 0;
    size_t m = (size_t)ms.m;
    if (mm_fold_batch(&ms, &in[0])) m *= (size_t)ms.n_batch;
    return qf_sgemm_f32_scratch(m, (size_t)ms.n, (size_t)ms.k);
}

static qf_status mm_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                        qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    mm_shape ms;
    qf_status s = mm_shape_of(n, in, n_in, &ms, err);
    if (s) return s;
    const float *a = in[0].data, *b = in[1].data;
    float *y = out[0].data;
    size_t m = (size_t)ms.m, nn = (size_t)ms.n, k = (size_t)ms.k;
    if (ms.n_batch == 0 || m == 0 || nn == 0) return QF_OK;
    if (mm_fold_batch(&ms, &in[0])) {
        qf_sgemm_f32_auto(ctx, false, false, m * (size_t)ms.n_batch, nn, k, 1.0f, a, k, b, nn,
                          0.0f, y, nn, scratch);
        return QF_OK;
    }
    int64_t idx[QF_MAX_DIMS] = {0};
    for (int64_t t = 0; t < ms.n_batch; t++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < ms.batch_rank; i++) {
            oa += idx[i] * ms.a_bstride[i];
            ob += idx[i] * ms.b_bstride[i];
        }
        qf_sgemm_f32_auto(ctx, false, false, m, nn, k, 1.0f, a + oa, k, b + ob, nn, 0.0f,
                          y + t * (int64_t)(m * nn), nn, scratch);
        for (int i = ms.batch_rank - 1; i >= 0; i--) {
            if (++idx[i] < ms.batch[i]) break;
            idx[i] = 0;
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_matmul = {
    .name = "MatMul",
    .flags = 0,
    .value_inputs = 0,
    .parse = NULL,
    .infer = mm_infer,
    .scratch = mm_scratch,
    .run = mm_run,
};
