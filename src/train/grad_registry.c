/* grad_registry.c - the backward table, indexed by qf_op_id like the op
 * registry but kept apart from it (see grad.h), and the GEMM the backward kernels share. */
#include "kernels/blas/sgemm_blas.h"
#include "train/grad.h"

/* ops with a backward: registry enum suffix, grad definition suffix */
// clang-format off
#define GRAD_OPS(X)                                         \
    X(CONV, conv)                                           \
    X(CONV_TRANSPOSE, conv_transpose)                       \
    X(GEMM, gemm)                                           \
    X(MATMUL, matmul)                                       \
    X(ADD, add)                                             \
    X(SUB, sub)                                             \
    X(MUL, mul)                                             \
    X(DIV, div)                                             \
    X(RELU, relu)                                           \
    X(LEAKY_RELU, leaky_relu)                               \
    X(CLIP, clip)                                           \
    X(SIGMOID, sigmoid)                                     \
    X(HARD_SIGMOID, hard_sigmoid)                           \
    X(HARD_SWISH, hard_swish)                               \
    X(TANH, tanh)                                           \
    X(SOFTMAX, softmax)                                     \
    X(MAX_POOL, max_pool)                                   \
    X(AVERAGE_POOL, average_pool)                           \
    X(GLOBAL_AVERAGE_POOL, global_average_pool)             \
    X(BATCH_NORM, batch_norm)                               \
    X(LAYER_NORM, layer_norm)                               \
    X(FLATTEN, flatten)                                     \
    X(RESHAPE, reshape)                                     \
    X(TRANSPOSE, transpose)                                 \
    X(CONCAT, concat)                                       \
    X(DROPOUT, dropout)                                     \
    X(IDENTITY, identity)                                   \
    X(SQUEEZE, squeeze)                                     \
    X(UNSQUEEZE, unsqueeze)                                 \
    X(FAKE_QUANTIZE, fake_quantize)
// clang-format on

#define GRAD_DECL_(e, id) extern const qf_grad_def qf_graddef_##id;
GRAD_OPS(GRAD_DECL_)
#undef GRAD_DECL_

static const qf_grad_def *const grad_table[QF_OP_COUNT] = {
#define GRAD_ENTRY_(e, id) [QF_OP_##e] = &qf_graddef_##id,
    GRAD_OPS(GRAD_ENTRY_)
#undef GRAD_ENTRY_
};

const qf_grad_def *qf_grad_get(qf_op_id op) {
    if ((int)op < 0 || op >= QF_OP_COUNT) return NULL;
    return grad_table[op];
}

uint32_t qf_grad_diff_mask(const qf_node *n) {
    const qf_grad_def *g = qf_grad_get(n->op);
    if (!g) return 0;
    return g->diff_mask ? g->diff_mask(n) : g->diff_inputs;
}

void qf_grad_sgemm(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                   float alpha, const float *a, size_t lda, const float *b, size_t ldb, float beta,
                   float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
    /* panels on the tape's pool rather than OpenBLAS threads (sgemm_blas.h) */
    qf_sgemm_f32_pooled(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
