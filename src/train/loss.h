/* loss.h - classification losses for training and distillation, each
 * returning the batch-mean loss and its gradient w.r.t. the logits, plus a
 * top-1 accuracy helper.
 *
 * Logits are row-major [n, c] floats. Labels are an array of n class
 * indices stored as int32 or int64 (label_dtype QF_DT_I32 / QF_DT_I64); a
 * label outside [0, c) is QF_ERR_INVALID_ARG naming the sample and the
 * label. Everything is computed through log-sum-exp (max subtracted), so
 * logits of any magnitude give finite results; internal sums are double.
 * A NULL grad pointer skips the gradient. */
#ifndef QF_TRAIN_LOSS_H
#define QF_TRAIN_LOSS_H

#include "base/base.h"

/* Softmax cross-entropy, mean over the batch, with optional label smoothing
 * eps in [0, 1) as in torch.nn.CrossEntropyLoss(label_smoothing=eps): the
 * target is (1 - eps) * onehot(label) + eps / c.
 *   loss  = mean_i( -sum_j target_ij * log_softmax(z_i)_j )
 *   dlogits[i][j] = (softmax(z_i)_j - target_ij) / n */
qf_status qf_loss_softmax_ce(const float *logits, int64_t n, int64_t c, const void *labels,
                             qf_dtype label_dtype, float smoothing, float *loss, float *dlogits,
                             qf_err *err);

/* Knowledge distillation (Hinton et al.) with temperature T > 0 and
 * alpha in [0, 1]:
 *   loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)
 * KL summed over classes and averaged over the batch (torch's
 * kl_div(..., reduction="batchmean")); CE as qf_loss_softmax_ce with
 * `smoothing`. Gradient w.r.t. the student logits s:
 *   alpha * T * (softmax(s/T) - softmax(t/T)) / n + (1 - alpha) * dCE.
 * labels may be NULL only when alpha == 1 (pure distillation). */
qf_status qf_loss_kd(const float *student, const float *teacher, int64_t n, int64_t c,
                     const void *labels, qf_dtype label_dtype, float temperature, float alpha,
                     float smoothing, float *loss, float *dstudent, qf_err *err);

/* Number of rows whose arg-max (first maximum on ties) equals the label;
 * *correct receives it. Label checks as above. */
qf_status qf_accuracy_top1(const float *logits, int64_t n, int64_t c, const void *labels,
                           qf_dtype label_dtype, int64_t *correct, qf_err *err);

#endif /* QF_TRAIN_LOSS_H */
