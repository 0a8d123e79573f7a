/* trainer.c - the training loop of trainer.h.
 *
 * Softmax outputs: when the graph's output is produced by a Softmax node
 * (Keras-style classifiers such as the alexnet definition end with one), the
 * loss is computed on z = log(p). Since softmax(log p) = p, the loss
 * gradient dz equals (p - target)/n, and the chain rule through z = log p
 * gives dp = dz / p; the Softmax backward then returns
 * p * (dp - sum(p * dp)) = dz - p * sum(dz) = dz, because sum(dz) = 0 for
 * cross-entropy and KD. So the logits receive exactly the gradient they would
 * get without the Softmax node, and probabilities that underflow (clamped at
 * 1e-30) cannot produce infinities.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "io/onnx_export.h"
#include "runtime/runtime.h"
#include "train/augment.h"
#include "train/loss.h"
#include "train/trainer.h"

#define P_FLOOR 1e-30f

void qf_train_options_default(qf_train_options *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 64;
    o->num_threads = 1;
    o->seed = 1;
    qf_optim_config_default(&o->optim, QF_OPTIM_SGD);
    o->optim.momentum = 0.9f;
    o->optim.nesterov = true;
    o->optim.weight_decay = 5e-4f;
    o->lr.kind = QF_LR_COSINE;
    o->lr.base_lr = 0.05f;
    o->lr.gamma = 0.1f;
    o->lr.step_epochs = 1;
    o->warmup_epochs = 1.0f;
    o->kd_temperature = 4.0f;
    o->kd_alpha = 0.9f;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Snapshot of every float constant (parameters and BatchNorm running
 * statistics): the best epoch's model. */
typedef struct snapshot {
    float **data;
    size_t *bytes;
    int n;
} snapshot;

static bool snap_is(const qf_value *v) {
    return (v->flags & QF_VAL_CONST) && v->dtype == QF_DT_F32 && v->data && v->nbytes;
}

static qf_status snap_init(snapshot *s, const qf_graph *g, qf_err *err) {
    s->n = g->n_values;
    s->data = qf_calloc((size_t)s->n + 1, sizeof(float *));
    s->bytes = qf_calloc((size_t)s->n + 1, sizeof(size_t));
    if (!s->data || !s->bytes) return qf_errf(err, QF_ERR_NOMEM, "out of memory (training)");
    for (int i = 0; i < s->n; i++) {
        const qf_value *v = &g->values[i];
        if (!snap_is(v)) continue;
        if (!(s->data[i] = qf_malloc(v->nbytes)))
            return qf_errf(err, QF_ERR_NOMEM, "out of memory (training)");
        s->bytes[i] = v->nbytes;
    }
    return QF_OK;
}

static void snap_take(snapshot *s, const qf_graph *g) {
    for (int i = 0; i < s->n; i++)
        if (s->data[i] && g->values[i].nbytes == s->bytes[i])
            memcpy(s->data[i], g->values[i].data, s->bytes[i]);
}

static void snap_restore(const snapshot *s, qf_graph *g) {
    for (int i = 0; i < s->n; i++)
        if (s->data[i] && g->values[i].nbytes == s->bytes[i] && !g->values[i].data_external)
            memcpy(g->values[i].data, s->data[i], s->bytes[i]);
}

static void snap_free(snapshot *s) {
    for (int i = 0; i < s->n && s->data; i++) qf_free(s->data[i]);
    qf_free(s->data);
    qf_free(s->bytes);
}

static bool output_is_softmax(const qf_graph *g) {
    int v = g->outputs[0];
    int p = g->values[v].producer;
    return p >= 0 && g->nodes[p].op == QF_OP_SOFTMAX;
}

/* Fill `count` samples picked by idx (NULL: consecutive from first). */
static qf_status fill_batch(const qf_dataset *ds, const int64_t *idx, int64_t first, int64_t count,
                            float *x, int32_t *labels, qf_err *err) {
    if (!idx) return qf_dataset_fill(ds, first, count, x, labels, err);
    for (int64_t k = 0; k < count; k++) {
        qf_status s = qf_dataset_fill(ds, idx[first + k], 1, x + k * ds->sample_numel,
                                      labels + k, err);
        if (s) return s;
    }
    return QF_OK;
}

static qf_tensor batch_tensor(const qf_graph *g, const qf_dataset *ds, float *x, int64_t n) {
    const qf_value *in = &g->values[g->inputs[0]];
    qf_tensor t = {.dtype = QF_DT_F32, .rank = in->rank, .data = x};
    t.dims[0] = n;
    for (int k = 1; k < in->rank; k++) t.dims[k] = in->dims[k];
    if (in->rank != ds->rank + 1) { /* e.g. a flat input: feed the sample flat */
        t.rank = 2;
        t.dims[1] = ds->sample_numel;
    }
    return t;
}

static qf_status check_io(const qf_graph *g, const qf_dataset *ds, const char *what, qf_err *err) {
    const char *path = g->source_path ? g->source_path : "model";
    if (g->n_inputs != 1 || g->n_outputs < 1)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: training needs one input and an output (has %d inputs, %d outputs)",
                       path, g->n_inputs, g->n_outputs);
    const qf_value *in = &g->values[g->inputs[0]];
    int64_t per = 1;
    for (int k = 1; k < in->rank; k++) per *= in->dims[k] > 0 ? in->dims[k] : -1;
    if (in->rank < 2 || per != ds->sample_numel)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: %s samples have %lld values but input '%s' takes %lld per sample",
                       ds->source ? ds->source : what, what, (long long)ds->sample_numel, in->name,
                       (long long)per);
    if (in->dims[0] > 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: input '%s' has a fixed batch of %lld; training needs a dynamic batch",
                       path, in->name, (long long)in->dims[0]);
    if (ds->n <= 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: the %s set is empty",
                       ds->source ? ds->source : what, what);
    return QF_OK;
}

typedef struct trainer {
    qf_graph *g;
    qf_tape *tape;
    const qf_train_options *o;
    int batch;
    int64_t c; /* classes */
    bool softmax_out;
    float *x, *xa, *grad, *tlogits, *z;
    int32_t *labels;
    qf_session *teacher;
    qf_err *err;
} trainer;

static qf_status eval_set(trainer *tr, const qf_dataset *ds, int64_t limit, double *acc) {
    int64_t n = limit > 0 && limit < ds->n ? limit : ds->n, correct = 0;
    qf_status s = QF_OK;
    for (int64_t i = 0; i < n && !s; i += tr->batch) {
        int64_t cnt = QF_MIN((int64_t)tr->batch, n - i);
        if ((s = fill_batch(ds, NULL, i, cnt, tr->x, tr->labels, tr->err))) break;
        qf_tensor in = batch_tensor(tr->g, ds, tr->x, cnt);
        if ((s = qf_tape_forward(tr->tape, &in, 1, false, tr->err))) break;
        const qf_tensor *out = qf_tape_output(tr->tape, 0);
        int64_t k = 0;
        s = qf_accuracy_top1(out->data, cnt, tr->c, tr->labels, QF_DT_I32, &k, tr->err);
        correct += k;
    }
    *acc = n ? (double)correct / (double)n : 0;
    return s;
}

/* Loss and d(output) of one batch of cnt samples; *loss, *correct out. */
static qf_status batch_loss(trainer *tr, const qf_tensor *in, int64_t cnt, double *loss,
                            int64_t *correct) {
    const qf_train_options *o = tr->o;
    const qf_tensor *out = qf_tape_output(tr->tape, 0);
    const float *y = out->data;
    int64_t nc = cnt * tr->c;
    const float *logits = y;
    if (tr->softmax_out) {
        for (int64_t i = 0; i < nc; i++) tr->z[i] = logf(QF_MAX(y[i], P_FLOOR));
        logits = tr->z;
    }
    float l = 0;
    qf_status s;
    if (tr->teacher) {
        qf_tensor tout;
        if ((s = qf_session_run(tr->teacher, in, 1, &tout, 1, tr->err))) return s;
        if (tout.rank != 2 || tout.dims[0] != cnt || tout.dims[1] != tr->c)
            return qf_errf(tr->err, QF_ERR_SHAPE,
                           "teacher output is not [%lld, %lld] like the student's",
                           (long long)cnt, (long long)tr->c);
        s = qf_loss_kd(logits, tout.data, cnt, tr->c, tr->labels, QF_DT_I32, o->kd_temperature,
                       o->kd_alpha, o->label_smoothing, &l, tr->grad, tr->err);
    } else {
        s = qf_loss_softmax_ce(logits, cnt, tr->c, tr->labels, QF_DT_I32, o->label_smoothing, &l,
                               tr->grad, tr->err);
    }
    if (s) return s;
    if (tr->softmax_out)
        for (int64_t i = 0; i < nc; i++) tr->grad[i] /= QF_MAX(y[i], P_FLOOR);
    *loss = l;
    return qf_accuracy_top1(logits, cnt, tr->c, tr->labels, QF_DT_I32, correct, tr->err);
}

static qf_status alloc_buffers(trainer *tr, const qf_dataset *train, const qf_dataset *val) {
    size_t numel = (size_t)QF_MAX(train->sample_numel, val ? val->sample_numel : 0);
    size_t b = (size_t)tr->batch;
    tr->x = qf_malloc_aligned(sizeof(float) * b * numel);
    tr->xa = qf_malloc_aligned(sizeof(float) * b * numel);
    tr->labels = qf_malloc(sizeof(int32_t) * b);
    if (!tr->x || !tr->xa || !tr->labels)
        return qf_errf(tr->err, QF_ERR_NOMEM, "out of memory (training batch)");
    return QF_OK;
}

/* The first forward tells the class count and sizes the loss buffers. */
static qf_status probe_classes(trainer *tr, const qf_dataset *train) {
    qf_status s = fill_batch(train, NULL, 0, 1, tr->x, tr->labels, tr->err);
    if (s) return s;
    qf_tensor in = batch_tensor(tr->g, train, tr->x, 1);
    if ((s = qf_tape_forward(tr->tape, &in, 1, false, tr->err))) return s;
    const qf_tensor *out = qf_tape_output(tr->tape, 0);
    if (out->dtype != QF_DT_F32 || out->rank != 2 || out->dims[0] != 1 || out->dims[1] < 2)
        return qf_errf(tr->err, QF_ERR_UNSUPPORTED,
                       "%s: training needs a float [N, classes] output (output '%s' is rank %d)",
                       tr->g->source_path ? tr->g->source_path : "model",
                       tr->g->values[tr->g->outputs[0]].name, out->rank);
    tr->c = out->dims[1];
    if (train->num_classes > tr->c)
        return qf_errf(tr->err, QF_ERR_SHAPE,
                       "%s: labels go up to %d but the model has %lld classes",
                       train->source ? train->source : "training data", train->num_classes - 1,
                       (long long)tr->c);
    size_t nc = (size_t)tr->batch * (size_t)tr->c;
    tr->grad = qf_malloc_aligned(sizeof(float) * nc);
    tr->z = qf_malloc_aligned(sizeof(float) * nc);
    if (!tr->grad || !tr->z) return qf_errf(tr->err, QF_ERR_NOMEM, "out of memory (training)");
    return QF_OK;
}

static qf_status write_checkpoint(const qf_graph *g, const char *path, qf_err *err) {
    qf_onnx_export_options eo;
    qf_onnx_export_options_init(&eo);
    qf_status s = qf_onnx_export(g, path, &eo, err);
    if (s) qf_err_prefix(err, "checkpoint %s", path);
    return s;
}

static qf_status run_epochs(trainer *tr, const qf_dataset *train, const qf_dataset *val,
                            qf_optim *opt, qf_lr_schedule *lr, snapshot *best,
                            qf_train_result *res) {
    const qf_train_options *o = tr->o;
    int64_t n = train->n, step = 0;
    int64_t *idx = qf_malloc(sizeof(int64_t) * (size_t)n);
    if (!idx) return qf_errf(tr->err, QF_ERR_NOMEM, "out of memory (training)");
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qf_rng rng;
    qf_rng_seed(&rng, o->seed);
    bool aug = o->aug_pad > 0 || o->aug_flip;
    bool image = train->rank == 3;
    qf_status s = QF_OK;
    double train_time = 0;
    int64_t trained = 0;
    res->best_val_accuracy = -1;
    for (int ep = 1; ep <= o->epochs && !s; ep++) {
        qf_shuffle_indices(&rng, idx, n);
        double t0 = now_s(), loss_sum = 0;
        int64_t correct = 0, done = 0;
        for (int64_t i = 0; i < n && !s; i += tr->batch, step++) {
            int64_t cnt = QF_MIN((int64_t)tr->batch, n - i);
            if ((s = fill_batch(train, idx, i, cnt, tr->x, tr->labels, tr->err))) break;
            float *xb = tr->x;
            if (aug && image) {
                s = qf_augment_batch(&rng, tr->x, tr->xa, cnt, train->dims[0], train->dims[1],
                                     train->dims[2], o->aug_pad, o->aug_flip, tr->err);
                if (s) break;
                xb = tr->xa;
            }
            qf_tensor in = batch_tensor(tr->g, train, xb, cnt);
            if ((s = qf_tape_forward(tr->tape, &in, 1, true, tr->err))) break;
            double l = 0;
            int64_t k = 0;
            if ((s = batch_loss(tr, &in, cnt, &l, &k))) break;
            qf_tape_zero_grad(tr->tape);
            qf_tensor d = *qf_tape_output(tr->tape, 0);
            d.data = tr->grad;
            qf_tensor dout[QF_MAX_NODE_IO] = {d};
            if ((s = qf_tape_backward(tr->tape, dout, tr->g->n_outputs, tr->err))) break;
            float rate = qf_lr_at(lr, step);
            if ((s = qf_optim_step(opt, rate, tr->err))) break;
            if (o->after_step && (s = o->after_step(o->after_step_user, tr->tape, tr->err))) break;
            loss_sum += l * (double)cnt;
            correct += k;
            done += cnt;
            if (!isfinite(l)) {
                s = qf_errf(tr->err, QF_ERR_INVALID_ARG,
                            "training diverged at epoch %d (loss %g): lower the learning rate",
                            ep, (double)l);
                break;
            }
            if (o->progress && (step % 10 == 0 || done == n)) {
                double el = now_s() - t0;
                qf_train_progress p = {ep,  o->epochs, done, n, loss_sum / (double)done,
                                       (double)correct / (double)done,
                                       el > 0 ? (double)done / el : 0, rate};
                o->progress(o->user, &p);
            }
        }
        if (s) break;
        double el = now_s() - t0;
        train_time += el;
        trained += done;
        qf_train_epoch e = {ep, loss_sum / (double)QF_MAX(done, 1),
                            (double)correct / (double)QF_MAX(done, 1), -1, el,
                            el > 0 ? (double)done / el : 0, false};
        if (val) {
            if ((s = eval_set(tr, val, o->val_limit, &e.val_accuracy))) break;
            if (ep >= o->best_from_epoch && e.val_accuracy > res->best_val_accuracy) {
                e.best = true;
                res->best_val_accuracy = e.val_accuracy;
                res->best_epoch = ep;
                snap_take(best, tr->g);
                if (o->checkpoint && (s = write_checkpoint(tr->g, o->checkpoint, tr->err))) break;
            }
        } else if (o->checkpoint && (s = write_checkpoint(tr->g, o->checkpoint, tr->err))) {
            break;
        }
        res->epochs_run = ep;
        res->final_train_accuracy = e.train_accuracy;
        if (o->epoch_done) o->epoch_done(o->user, &e);
    }
    res->images_per_s = train_time > 0 ? (double)trained / train_time : 0;
    qf_free(idx);
    return s;
}

qf_status qf_train(qf_graph *g, const qf_dataset *train, const qf_dataset *val,
                   const qf_train_options *o, qf_train_result *res, qf_err *err) {
    memset(res, 0, sizeof *res);
    if (!g || !train || !o) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_train: NULL argument");
    if (o->epochs < 1 || o->batch < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "training: epochs %d / batch %d invalid",
                       o->epochs, o->batch);
    qf_status s = check_io(g, train, "training", err);
    if (!s && val) s = check_io(g, val, "validation", err);
    if (!s && val && val->sample_numel != train->sample_numel)
        s = qf_errf(err, QF_ERR_SHAPE, "validation samples (%lld values) differ from training "
                    "samples (%lld)", (long long)val->sample_numel,
                    (long long)train->sample_numel);
    if (s) return s;
    double t_start = now_s();
    trainer tr = {.g = g, .o = o, .batch = o->batch ? o->batch : 64, .err = err};
    tr.softmax_out = output_is_softmax(g);
    qf_tape_options to = {.num_threads = o->num_threads, .seed = o->seed, .frozen = o->frozen};
    qf_optim *opt = NULL;
    qf_param **pp = NULL;
    snapshot best = {0};
    if ((s = qf_tape_create(g, &to, &tr.tape, err))) return s;
    if ((s = alloc_buffers(&tr, train, val)) || (s = probe_classes(&tr, train))) goto out;
    if (o->teacher) {
        qf_session_options so = {.num_threads = o->num_threads};
        if ((s = qf_session_create(o->teacher, &so, &tr.teacher, err))) goto out;
    }
    int np = qf_tape_num_params(tr.tape);
    pp = qf_malloc(sizeof(qf_param *) * (size_t)(np + 1));
    if (!pp) {
        s = qf_errf(err, QF_ERR_NOMEM, "out of memory (training)");
        goto out;
    }
    for (int i = 0; i < np; i++) pp[i] = qf_tape_param(tr.tape, i);
    if ((s = qf_optim_create(&o->optim, pp, np, &opt, err))) goto out;
    qf_lr_schedule lr = o->lr;
    lr.steps_per_epoch = (train->n + tr.batch - 1) / tr.batch;
    lr.total_steps = lr.steps_per_epoch * o->epochs;
    lr.warmup_steps = (int64_t)(o->warmup_epochs * (float)lr.steps_per_epoch);
    if (lr.warmup_steps >= lr.total_steps) lr.warmup_steps = lr.total_steps - 1;
    if (lr.step_epochs <= 0) lr.step_epochs = 1;
    if ((s = qf_lr_schedule_check(&lr, err))) goto out;
    if ((s = snap_init(&best, g, err))) goto out;
    s = run_epochs(&tr, train, val, opt, &lr, &best, res);
    if (!s && val && res->best_epoch > 0) snap_restore(&best, g);
    res->seconds = now_s() - t_start;
out:
    snap_free(&best);
    qf_optim_free(opt);
    qf_free(pp);
    if (tr.teacher) qf_session_free(tr.teacher);
    qf_tape_free(tr.tape);
    qf_free_aligned(tr.x);
    qf_free_aligned(tr.xa);
    qf_free_aligned(tr.grad);
    qf_free_aligned(tr.z);
    qf_free(tr.labels);
    return s;
}
