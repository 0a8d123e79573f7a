/* trainer.h - the training loop: supervised training and knowledge
 * distillation of a float graph on a labelled dataset.
 *
 * Each epoch shuffles the training set (seeded), optionally augments every
 * image (random crop after zero padding, horizontal flip), runs the tape
 * forward in training mode, takes softmax cross-entropy (or the KD loss
 * against a teacher model), backpropagates, steps the optimizer with the
 * scheduled learning rate, then evaluates top-1 on the validation set in
 * inference mode. The weights of the best validation epoch are kept: they
 * are written to the checkpoint (ONNX, atomically) whenever the validation
 * accuracy improves, and are in the graph when training returns.
 *
 * A graph whose output comes out of a Softmax is trained through it: the
 * loss is computed on log-probabilities, whose gradient passes the Softmax
 * backward unchanged (see trainer.c).
 */
#ifndef QF_TRAIN_TRAINER_H
#define QF_TRAIN_TRAINER_H

#include "io/data.h"
#include "train/autograd.h"
#include "train/optim.h"
#include "train/schedule.h"

typedef struct qf_model qf_model;

/* Progress inside an epoch (called every few batches and at its end). */
typedef struct qf_train_progress {
    int epoch, epochs;        /* 1-based epoch */
    int64_t done, total;      /* training samples of this epoch */
    double loss, accuracy;    /* running means over the epoch so far */
    double images_per_s;      /* training throughput of the epoch so far */
    float lr;
} qf_train_progress;

typedef struct qf_train_epoch {
    int epoch;
    double train_loss, train_accuracy;
    double val_accuracy; /* -1 when there is no validation set */
    double seconds, images_per_s;
    bool best;           /* best validation accuracy so far (checkpoint written) */
} qf_train_epoch;

typedef struct qf_train_options {
    int epochs;        /* >= 1 */
    int batch;         /* 0 = 64 */
    int num_threads;   /* 0 = 1 */
    uint64_t seed;
    qf_optim_config optim;
    qf_lr_schedule lr; /* steps_per_epoch / total_steps are filled in by qf_train */
    float warmup_epochs;   /* linear warm-up length in epochs (converted to steps) */
    float label_smoothing; /* [0, 1) */
    int64_t aug_pad;   /* > 0: random crop after zero padding by this many pixels */
    bool aug_flip;     /* random horizontal flip */
    int64_t val_limit; /* 0 = the whole validation set */
    const char *checkpoint; /* ONNX written at each new best epoch; NULL: none */
    /* Knowledge distillation: a teacher (float model) and the KD loss's
     * temperature (> 0) and alpha in [0, 1]. NULL: plain cross-entropy. */
    const qf_model *teacher;
    float kd_temperature, kd_alpha;
    /* Called after every optimizer step (pruning masks, QAT range updates). */
    qf_status (*after_step)(void *user, qf_tape *t, qf_err *err);
    void *after_step_user;
    void (*progress)(void *user, const qf_train_progress *p);
    void (*epoch_done)(void *user, const qf_train_epoch *e);
    void *user;
    const char *const *frozen; /* values not trained (autograd.h) */
    /* Only epochs from this one (1-based) compete for "best" (e.g. after a
     * gradual pruning ramp, whose early epochs are denser); 0 = all. */
    int best_from_epoch;
} qf_train_options;

/* Defaults: 10 epochs, batch 64, SGD momentum 0.9 Nesterov, weight decay
 * 5e-4, cosine schedule from lr 0.05 with one warm-up epoch, no
 * augmentation, seed 1. */
void qf_train_options_default(qf_train_options *o);

typedef struct qf_train_result {
    int epochs_run, best_epoch;
    double best_val_accuracy; /* -1 without validation */
    double final_train_accuracy;
    double seconds, images_per_s; /* whole run, training steps only for images/s */
} qf_train_result;

/* Train g in place (its float constants are the parameters). The datasets'
 * samples must fit the graph's single input; labels must be < the number of
 * classes of the graph's output [N, C]. val may be NULL. */
qf_status qf_train(qf_graph *g, const qf_dataset *train, const qf_dataset *val,
                   const qf_train_options *o, qf_train_result *res, qf_err *err);

#endif /* QF_TRAIN_TRAINER_H */
