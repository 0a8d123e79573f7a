/* optim.h - first-order optimizers over the parameters of a tape
 * (qf_param, train/autograd.h), with the exact update rules of
 * torch.optim (1.13) so results can be checked against PyTorch:
 *
 *  SGD   g = grad + wd * p                      (coupled decay, if p->decay)
 *        b = g on the first step, else b = momentum * b + (1 - dampening) * g
 *        g = nesterov ? g + momentum * b : b    (when momentum != 0)
 *        p = p - lr * g
 *  Adam  g = grad + wd * p                      (coupled decay, if p->decay)
 *  AdamW p = p * (1 - lr * wd)                  (decoupled decay, if p->decay)
 *  both  m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2   (step t from 1)
 *        p = p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * The optimizer keeps pointers to the qf_param structs it was created with
 * (they must outlive it) and one state buffer per parameter (SGD: momentum;
 * Adam: m and v). A step never allocates. Gradients are read, not cleared. */
#ifndef QF_TRAIN_OPTIM_H
#define QF_TRAIN_OPTIM_H

#include "train/autograd.h"

typedef enum qf_optim_kind { QF_OPTIM_SGD = 0, QF_OPTIM_ADAM, QF_OPTIM_ADAMW } qf_optim_kind;

typedef struct qf_optim_config {
    qf_optim_kind kind;
    float weight_decay; /* >= 0; skipped for params with decay == false */
    /* SGD */
    float momentum;     /* >= 0; 0 = plain SGD */
    float dampening;    /* torch's dampening (usually 0) */
    bool nesterov;      /* needs momentum > 0 and dampening == 0 (as torch) */
    /* Adam / AdamW */
    float beta1, beta2; /* in [0, 1) */
    float eps;          /* > 0 */
} qf_optim_config;

/* torch defaults for a kind: SGD momentum 0; Adam/AdamW betas (0.9, 0.999),
 * eps 1e-8; weight decay 0 for SGD and Adam, 0.01 for AdamW. */
void qf_optim_config_default(qf_optim_config *cfg, qf_optim_kind kind);

typedef struct qf_optim qf_optim;

/* Validate cfg and allocate zeroed state for params[0..n). */
qf_status qf_optim_create(const qf_optim_config *cfg, qf_param *const *params, int n,
                          qf_optim **out, qf_err *err);
void qf_optim_free(qf_optim *o);

/* One update of every parameter with learning rate lr (>= 0, finite). */
qf_status qf_optim_step(qf_optim *o, float lr, qf_err *err);
/* Steps taken so far (Adam's bias correction uses step + 1). */
int64_t qf_optim_steps(const qf_optim *o);
/* Forget all state (momentum buffers, moments, step count). */
void qf_optim_reset(qf_optim *o);

#endif /* QF_TRAIN_OPTIM_H */
