/* autograd.h - reverse-mode differentiation over a float qforge graph.
 *
 * A tape wraps a float graph (imported ONNX or built with train/arch.h) for
 * training: forward runs every node in topological order keeping each
 * intermediate tensor, in training mode when asked (BatchNormalization uses
 * batch statistics and updates its running mean/variance in the graph's
 * constants, Dropout samples a mask); backward walks the nodes in reverse,
 * calling each op's backward kernel (train/grad.h), and accumulates the
 * gradients of the parameters.
 *
 * Parameters are the float constant inputs of trainable ops in their
 * differentiable slots (Conv/ConvTranspose weight and bias, Gemm B and C,
 * MatMul's constant operand, BatchNormalization and LayerNormalization scale
 * and bias, constant operands of Add/Sub/Mul/Div, the scale of
 * qforge.FakeQuantize when learned). Their data is the graph's own constant
 * data (made owned and writable at create time), so an optimizer step
 * updates the model and qf_onnx_export of the graph saves it.
 *
 * Shapes come from the bound inputs: a new batch size re-plans the buffers.
 * Nothing is allocated per step once the shapes are stable.
 */
#ifndef QF_TRAIN_AUTOGRAD_H
#define QF_TRAIN_AUTOGRAD_H

#include "ir/graph.h"

typedef struct qf_param {
    const char *name; /* the graph value's name */
    int value;        /* graph value index (float constant) */
    float *data;      /* the value's data: optimizers update it in place */
    float *grad;      /* same length; accumulated by qf_tape_backward */
    size_t n;         /* element count */
    bool decay;       /* weight decay applies (weights yes; biases, BN/LN affine no) */
} qf_param;

typedef struct qf_tape_options {
    int num_threads; /* 0 = 1 */
    uint64_t seed;   /* Dropout masks */
    /* Values (by name) that stay frozen: not returned as parameters, no
     * gradient computed for them. NULL-terminated list, may be NULL. */
    const char *const *frozen;
    /* Added by the autograd implementation: also compute d(loss)/d(float
     * graph inputs) (qf_tape_input_grad); off by default because the first
     * layer's input gradient is pure cost when only training. */
    bool input_grads;
} qf_tape_options;

typedef struct qf_tape qf_tape;

/* Build a tape over g (not owned; g must outlive the tape and is modified
 * in place by training). Fails with QF_ERR_UNSUPPORTED naming every node
 * whose op has no backward, at once. */
qf_status qf_tape_create(qf_graph *g, const qf_tape_options *opt, qf_tape **out, qf_err *err);
void qf_tape_free(qf_tape *t);

int qf_tape_num_params(const qf_tape *t);
qf_param *qf_tape_param(qf_tape *t, int i);

/* Run forward on the graph inputs (n_in == g->n_inputs, in graph order).
 * training: BatchNormalization in training mode (running statistics
 * updated with the node's momentum), Dropout active. Inference mode gives
 * the same numbers as the float runtime (within float rounding). */
qf_status qf_tape_forward(qf_tape *t, const qf_tensor *inputs, int n_in, bool training,
                          qf_err *err);
/* Graph output i of the last forward (valid until the next forward). */
const qf_tensor *qf_tape_output(const qf_tape *t, int i);
/* Intermediate value v of the last forward (NULL if not kept), e.g. for
 * feature distillation or calibration during QAT. */
const qf_tensor *qf_tape_value(const qf_tape *t, int v);

/* Backpropagate d(loss)/d(output i) given for every graph output (entries
 * with data NULL count as zero) and ADD the parameter gradients into
 * qf_param.grad. Requires a forward since the last backward. */
qf_status qf_tape_backward(qf_tape *t, const qf_tensor *d_outputs, int n_out, qf_err *err);
/* Gradient w.r.t. graph input i of the last backward (NULL if not computed). */
const qf_tensor *qf_tape_input_grad(const qf_tape *t, int i);
void qf_tape_zero_grad(qf_tape *t);

#endif /* QF_TRAIN_AUTOGRAD_H */
