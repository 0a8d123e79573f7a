/* grad_gemm.c - backward of Gemm (transA/transB, alpha/beta, C broadcast)
 * and MatMul (numpy semantics: 1-D operands promoted, batch dimensions
 * broadcast; a broadcast operand's gradient sums over the batches that
 * shared it). The products go through OpenBLAS.
 */
#include <string.h>

#include "train/grad.h"

static qf_status need_f32(const qf_grad_args *a, int i, qf_err *err) {
    if (a->in[i].dtype == QF_DT_F32) return QF_OK;
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs float input %d",
                   qf_node_desc(a->node, d, sizeof d), i);
}

/* ---- Gemm ---------------------------------------------------------------- */
static qf_status gemm_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dA = a->d_in[0].data, *dB = a->d_in[1].data;
    float *dC = a->n_in > 2 ? a->d_in[2].data : NULL;
    if (!dy || (!dA && !dB && !dC)) return QF_OK;
    qf_status s;
    if ((s = need_f32(a, 0, err)) || (s = need_f32(a, 1, err))) return s;
    const qf_node *n = a->node;
    bool ta = qf_node_attr_int(n, "transA", 0) != 0, tb = qf_node_attr_int(n, "transB", 0) != 0;
    float alpha = qf_node_attr_float(n, "alpha", 1.0f), beta = qf_node_attr_float(n, "beta", 1.0f);
    const qf_tensor *A = &a->in[0], *B = &a->in[1];
    int M = (int)a->out[0].dims[0], N = (int)a->out[0].dims[1];
    int K = (int)(ta ? A->dims[0] : A->dims[1]);
    const float *av = A->data, *bv = B->data;
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (M == 0 || N == 0) return QF_OK;
    if (dA && K > 0) {
        if (!ta) /* dA (MxK) += alpha dY op(B)^T */
            qf_grad_sgemm(a->ctx, false, tb ? false : true, M, K, N, alpha, dy, N, bv, ldb, 1.0f,
                          dA, K);
        else /* dA (KxM) += alpha op(B) dY^T */
            qf_grad_sgemm(a->ctx, tb ? true : false, true, K, M, N, alpha, bv, ldb, dy, N, 1.0f, dA,
                          M);
    }
    if (dB && K > 0) {
        if (!tb) /* dB (KxN) += alpha op(A)^T dY */
            qf_grad_sgemm(a->ctx, ta ? false : true, false, K, N, M, alpha, av, lda, dy, N, 1.0f,
                          dB, N);
        else /* dB (NxK) += alpha dY^T op(A) */
            qf_grad_sgemm(a->ctx, true, ta ? true : false, N, K, M, alpha, dy, N, av, lda, 1.0f, dB,
                          K);
    }
    if (dC) {
        if ((s = need_f32(a, 2, err))) return s;
        const qf_tensor *C = &a->in[2];
        /* C broadcasts (trailing-aligned) to [M, N] */
        int64_t cm = 1, cn = 1;
        if (C->rank == 1) cn = C->dims[0];
        if (C->rank == 2) {
            cm = C->dims[0];
            cn = C->dims[1];
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                dC[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)] += beta * dy[i * N + j];
    }
    return QF_OK;
}

const qf_grad_def qf_graddef_gemm = {.diff_inputs = 7, .backward = gemm_backward};

/* ---- MatMul -------------------------------------------------------------- */
static qf_status matmul_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dA = a->d_in[0].data, *dB = a->d_in[1].data;
    if (!dy || (!dA && !dB)) return QF_OK;
    qf_status s;
    if ((s = need_f32(a, 0, err)) || (s = need_f32(a, 1, err))) return s;
    const qf_tensor *A = &a->in[0], *B = &a->in[1];
    char d[200];
    if (A->rank < 1 || B->rank < 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: operands must have rank >= 1",
                       qf_node_desc(a->node, d, sizeof d));
    /* 1-D operands: A [K] -> [1, K]; B [K] -> [K, 1] */
    int64_t M = A->rank >= 2 ? A->dims[A->rank - 2] : 1;
    int64_t K = A->dims[A->rank - 1];
    int64_t N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
    int ba = A->rank >= 2 ? A->rank - 2 : 0, bb = B->rank >= 2 ? B->rank - 2 : 0;
    int nb = ba > bb ? ba : bb;
    int64_t bd[QF_MAX_DIMS], sa[QF_MAX_DIMS], sb[QF_MAX_DIMS], idx[QF_MAX_DIMS] = {0};
    int64_t stride_a = M * K, stride_b = K * N, nbatch = 1;
    /* batch strides (in matrices), 0 where the operand is broadcast */
    for (int d2 = nb - 1; d2 >= 0; d2--) {
        int ia = d2 - (nb - ba), ib = d2 - (nb - bb);
        int64_t da = ia >= 0 ? A->dims[ia] : 1, db = ib >= 0 ? B->dims[ib] : 1;
        bd[d2] = da > db ? da : db;
        nbatch *= bd[d2];
    }
    int64_t pa = 1, pb = 1;
    for (int d2 = nb - 1; d2 >= 0; d2--) {
        int ia = d2 - (nb - ba), ib = d2 - (nb - bb);
        int64_t da = ia >= 0 ? A->dims[ia] : 1, db = ib >= 0 ? B->dims[ib] : 1;
        sa[d2] = (da == 1) ? 0 : pa;
        sb[d2] = (db == 1) ? 0 : pb;
        pa *= da;
        pb *= db;
    }
    if (M == 0 || N == 0 || K == 0) return QF_OK;
    const float *av = A->data, *bv = B->data;
    int64_t oa = 0, ob = 0;
    for (int64_t t = 0; t < nbatch; t++) {
        const float *g = dy + t * M * N;
        const float *am = av + oa * stride_a, *bm = bv + ob * stride_b;
        if (dA) /* dA (MxK) += dY (MxN) B^T */
            qf_grad_sgemm(a->ctx, false, true, (int)M, (int)K, (int)N, 1.0f, g, (int)N, bm, (int)N,
                          1.0f, dA + oa * stride_a, (int)K);
        if (dB) /* dB (KxN) += A^T (KxM) dY */
            qf_grad_sgemm(a->ctx, true, false, (int)K, (int)N, (int)M, 1.0f, am, (int)K, g, (int)N,
                          1.0f, dB + ob * stride_b, (int)N);
        for (int d2 = nb - 1; d2 >= 0; d2--) {
            oa += sa[d2];
            ob += sb[d2];
            if (++idx[d2] < bd[d2]) break;
            oa -= sa[d2] * bd[d2];
            ob -= sb[d2] * bd[d2];
            idx[d2] = 0;
        }
    }
    return QF_OK;
}

const qf_grad_def qf_graddef_matmul = {.diff_inputs = 3, .backward = matmul_backward};
