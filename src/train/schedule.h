/* schedule.h - learning-rate schedules as pure functions of the global
 * step index (0-based, one step per mini-batch), so a resumed run gets the
 * same rate and tests can compare with closed forms.
 *
 *  warm-up   step < warmup_steps:  lr = base_lr * (step + 1) / warmup_steps
 *  then, with e = step / steps_per_epoch (integer epoch index):
 *  constant  lr = base_lr
 *  step      lr = base_lr * gamma^(e / step_epochs)       (integer division)
 *  cosine    t = step - warmup_steps, T = total_steps - warmup_steps,
 *            lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2
 * Step decay counts epochs from the start of training (warm-up included),
 * like torch's StepLR driven per epoch; cosine anneals over the steps after
 * warm-up, reaching min_lr at total_steps (and staying there). */
#ifndef QF_TRAIN_SCHEDULE_H
#define QF_TRAIN_SCHEDULE_H

#include "base/base.h"

typedef enum qf_lr_kind {
    QF_LR_CONSTANT = 0,
    QF_LR_STEP,
    QF_LR_COSINE
} qf_lr_kind;

typedef struct qf_lr_schedule {
    qf_lr_kind kind;
    float base_lr;           /* > 0 */
    int64_t warmup_steps;    /* >= 0 */
    int64_t steps_per_epoch; /* > 0 (QF_LR_STEP) */
    int64_t step_epochs;     /* k: decay every k epochs, > 0 (QF_LR_STEP) */
    float gamma;             /* decay factor (QF_LR_STEP), in (0, 1] usually */
    int64_t total_steps;     /* > warmup_steps (QF_LR_COSINE) */
    float min_lr;            /* floor of the cosine, >= 0 (QF_LR_COSINE) */
} qf_lr_schedule;

/* Check the fields the kind uses; the error names the bad field. */
qf_status qf_lr_schedule_check(const qf_lr_schedule *s, qf_err *err);
/* Learning rate at a step (a negative step counts as 0). The schedule must
 * have passed qf_lr_schedule_check. */
float qf_lr_at(const qf_lr_schedule *s, int64_t step);
/* Parse "constant", "step" or "cosine" (for CLI flags); false if unknown. */
bool qf_lr_kind_parse(const char *name, qf_lr_kind *out);

#endif /* QF_TRAIN_SCHEDULE_H */
