/* grad.h - the backward table: per trainable op, how to compute the
 * gradients of its inputs from the gradients of its outputs, plus an
 * optional training-mode forward (BatchNormalization with batch statistics,
 * Dropout with a sampled mask).
 *
 * It lives beside the op registry (ir/ops.h) rather than in it, because
 * train/ sits above kernels/: the registry's float kernels must not depend
 * on training code. The tape (autograd.c) looks ops up with qf_grad_get().
 *
 * Conventions for every callback:
 *  - in/out are the node's forward inputs and outputs exactly as the forward
 *    produced them (omitted optional ones have dtype UNDEF and data NULL).
 *  - d_out[j] has out[j]'s shape; d_out[j].data == NULL means the gradient
 *    of output j is zero (nothing downstream uses it).
 *  - d_in[i] has in[i]'s shape; d_in[i].data == NULL means input i's
 *    gradient is not wanted. Backward ACCUMULATES: it adds its
 *    contribution into d_in[i].data (the tape zeroes the buffers once per
 *    backward, so a value read by several nodes sums their contributions).
 *  - scratch holds at least scratch() bytes (64-byte aligned) and is shared
 *    between nodes: nothing survives in it from one call to the next.
 *  - saved holds state_bytes() bytes per node that the training forward
 *    writes and the backward of the same step reads (Dropout's mask).
 *  - Nothing is allocated inside forward or backward.
 */
#ifndef QF_TRAIN_GRAD_H
#define QF_TRAIN_GRAD_H

#include "ir/ops.h"

typedef struct qf_grad_args {
    const qf_exec_ctx *ctx;
    const qf_node *node;
    const qf_tensor *in;
    int n_in;
    const qf_tensor *out;
    int n_out;
    const qf_tensor *d_out; /* n_out entries */
    qf_tensor *d_in;        /* n_in entries; accumulated into */
    void *scratch;
    void *saved;
    bool training; /* the forward ran in training mode */
} qf_grad_args;

enum {
    /* Constant operands of numel 1 in this op's differentiable slots are
     * not turned into parameters (the 3 and 6 of a decomposed HardSwish). */
    QF_GRADF_NO_SCALAR_PARAMS = 1u << 0
};

typedef struct qf_grad_def {
    uint32_t flags;
    /* Bit i set: input i is differentiable (gets a gradient, and a float
     * constant there is a trainable parameter). */
    uint32_t diff_inputs;
    /* Optional per-node override of diff_inputs (FakeQuantize's scale is
     * differentiable only with lsq=1). */
    uint32_t (*diff_mask)(const qf_node *n);
    /* Scratch bytes backward needs for these shapes; NULL means 0. */
    size_t (*scratch)(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                      int n_out);
    qf_status (*backward)(const qf_grad_args *a, qf_err *err);
    /* Training-mode forward (NULL: the registry's float kernel serves both
     * modes). Same tensors as qf_op_def.run; it may update constant inputs in
     * place (BatchNormalization's running statistics). `seed` differs per
     * node and per step (Dropout masks). */
    qf_status (*train_forward)(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                               int n_in, qf_tensor *out, int n_out, void *scratch, void *saved,
                               uint64_t seed, qf_err *err);
    /* Scratch of train_forward; NULL means 0. */
    size_t (*train_scratch)(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out);
    /* Bytes of per-node state carried from train_forward to backward. */
    size_t (*state_bytes)(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                          int n_out);
} qf_grad_def;

/* Backward definition of op, or NULL when the op has none. */
const qf_grad_def *qf_grad_get(qf_op_id op);
/* Differentiable input mask of node n (0 when its op has no backward). */
uint32_t qf_grad_diff_mask(const qf_node *n);

/* ---- helpers shared by the grad_*.c files ---------------------------- */
/* Row-major C = alpha op(A) op(B) + beta C through OpenBLAS with
 * ctx->num_threads threads (kernels/blas keeps the process-wide OpenBLAS
 * thread count consistent between the runtime and the tape). */
void qf_grad_sgemm(const qf_exec_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                   float alpha, const float *a, size_t lda, const float *b, size_t ldb, float beta,
                   float *c, size_t ldc);

/* d[i] += s[i]. Blocks of 8 with restrict pointers let GCC's SLP
 * vectoriser (on at -O2, unlike the loop vectoriser's full cost model)
 * use SIMD; d and s must not overlap. */
static inline void qf_grad_add(float *restrict d, const float *restrict s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            d[i + k] += s[i + k];
    for (; i < n; i++)
        d[i] += s[i];
}

/* Sum of p[0..n) with 8 independent accumulators (no loop-carried add
 * latency, and closer to pairwise accuracy than one running float). */
static inline float qf_grad_sum(const float *p, int64_t n) {
    float a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += p[i + k];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++)
        s += p[i];
    return s;
}

#endif /* QF_TRAIN_GRAD_H */
