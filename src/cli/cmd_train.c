/* cmd_train.c - `qforge train` (a built-in architecture or an ONNX model
 * fine-tuned on a labelled dataset) and `qforge distill` (a student trained
 * from a teacher's softened outputs). Both write the best epoch's model as
 * ONNX, rewritten at every new best so an interrupted run keeps it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx.h"
#include "io/onnx_export.h"
#include "io/qfm.h"
#include "quant/qat.h"
#include "quant/verify.h"
#include "runtime/runtime.h"
#include "train/arch.h"
#include "train/trainer.h"

#define TRAIN_COMMON_OPTS                                                                        \
    {"data", 'd', "D",                                                                           \
     "labelled training data: fashion-mnist, mnist, a directory of IDX/NPY files or an image "   \
     "folder (DIR/<class>/<image>); its train split trains, its test split validates"},          \
        {"val", 0, "V", "validation data (default: the test split of --data; 'none' to skip)"},   \
        {"epochs", 'e', "E", "training epochs (default 10; resnet8 8; fine-tuning/QAT 3)"},       \
        {"batch", 'b', "B", "mini-batch size (default 128 with --arch, else 64)"},               \
        {"lr", 0, "LR",                                                                           \
         "peak learning rate (sgd: 0.1 with --arch, 0.05 with --init, 0.005 for QAT; "          \
         "adam/adamw: 0.001)"},                                                                  \
        {"optimizer", 0, "sgd|adam|adamw", "optimizer (default sgd with Nesterov momentum)"},     \
        {"momentum", 0, "M", "SGD momentum (default 0.9)"},                                       \
        {"wd", 0, "W", "weight decay (default 5e-4 for sgd, 0.01 for adamw, 0 for adam)"},        \
        {"schedule", 0, "cosine|step|constant", "learning-rate schedule (default cosine)"},       \
        {"warmup", 0, "EPOCHS", "linear warm-up length in epochs (default 1)"},                  \
        {"pad", 0, "P", "augmentation: random crop after zero padding by P pixels (default 0)"}, \
        {"flip", 0, NULL, "augmentation: random horizontal flips"},                              \
        {"label-smoothing", 0, "EPS", "label smoothing in [0, 1) (default 0)"},                  \
        {"threads", 't', "T", "worker threads (default 2)"},                                      \
        {"seed", 0, "S", "random seed (initialisation, shuffling, augmentation; default 1)"},     \
        {"limit", 'n', "N", "train on the first N samples only"},                                 \
        {"val-limit", 0, "N", "validate on the first N samples only"},                            \
        {"split", 0, "train", "split used for training (default train)"},                        \
        {"scale", 0, "S", "multiply raw values by S first (default 1/255 for uint8 data)"},       \
        {"mean", 0, "M[,M...]", "subtract a mean per channel (after scaling)"},                  \
        {"std", 0, "S[,S...]", "divide by a std per channel (after the mean)"},                   \
        {"nhwc", 0, NULL, "rank-4 images are stored N,H,W,C (fed as NCHW)"},                     \
        {"size", 0, "HxW", "image folders: resize every image to HxW"},                           \
        {"resize-short", 0, "S", "image folders: resize the shorter side to S, then crop"},       \
        {"channels", 0, "1|3", "image folders: 1 = grayscale, 3 = RGB"},                          \
        {"layout", 0, "nchw", "layout of the samples (nchw)"},                                    \
        {"output", 'o', "OUT.onnx", "where to write the trained model (required)"},              \
        {"quiet", 'q', NULL, "only the final summary"}

static const cli_opt train_opts[] = {
    {"arch", 'a', "NAME", "built-in architecture to train from scratch (see below)"},
    {"init", 0, "M.onnx", "ONNX model to fine-tune instead of --arch"},
    {"classes", 0, "C", "classes of a built-in architecture (default: from the data)"},
    TRAIN_COMMON_OPTS,
};

static const cli_opt distill_opts[] = {
    {"teacher", 0, "T.onnx", "the teacher model (run in inference mode)"},
    {"student", 0, "S.onnx", "the student model to train (or --arch)"},
    {"arch", 'a', "NAME", "built-in student architecture, trained from scratch"},
    {"classes", 0, "C", "classes of a built-in student (default: from the data)"},
    {"temperature", 'T', "T", "softmax temperature of the KD loss (default 4)"},
    {"alpha", 0, "A", "weight of the KD term vs cross-entropy, in [0, 1] (default 0.9)"},
    TRAIN_COMMON_OPTS,
};

static const cli_opt qat_opts[] = {
    {"config", 0, "C.json", "quantization config (num_bits, act_bits, per_channel, ...)"},
    {"bits", 0, "B", "weight bits for every layer, 2..8 (overrides the config default)"},
    {"reduce-range", 0, NULL,
     "7-bit weights (8-bit layers get 7), trained as such: AVX2 CPUs without VNNI multiply "
     "them at full speed (see qforge quantize --help)"},
    {"method", 'm', "M", "calibrator for the initial ranges: minmax, percentile, entropy, mse"},
    {"lsq", 0, NULL, "learn the quantization step sizes (LSQ) instead of keeping them fixed"},
    {"calib-limit", 0, "N", "calibration samples for the initial ranges (default 1000)"},
    {"fake-quant", 0, "FQ.onnx", "also save the fake-quantized float model (ONNX)"},
    TRAIN_COMMON_OPTS,
};

typedef struct train_ui {
    cli_progress bar;
    bool quiet;
    int epoch;
    char label[64];
} train_ui;

static void on_progress(void *user, const qf_train_progress *p) {
    train_ui *ui = user;
    if (ui->quiet) return;
    if (!ui->bar.active || ui->epoch != p->epoch) {
        if (ui->bar.active) cli_progress_finish(&ui->bar);
        snprintf(ui->label, sizeof ui->label, "epoch %d/%d", p->epoch, p->epochs);
        cli_progress_start(&ui->bar, ui->label, p->total);
        ui->epoch = p->epoch;
    }
    cli_progress_update(&ui->bar, p->done);
}

static void on_epoch(void *user, const qf_train_epoch *e) {
    train_ui *ui = user;
    if (ui->bar.active) cli_progress_finish(&ui->bar);
    if (ui->quiet) return;
    char val[32] = "-";
    if (e->val_accuracy >= 0) snprintf(val, sizeof val, "%.2f%%", 100 * e->val_accuracy);
    printf("epoch %3d  loss %.4f  train %6.2f%%  val %7s  %7.0f img/s  %6.1f s%s\n", e->epoch,
           e->train_loss, 100 * e->train_accuracy, val, e->images_per_s, e->seconds,
           e->best ? "  * best, saved" : "");
    fflush(stdout);
}

static bool get_float(const cli_args *a, const char *name, double lo, double hi, double dflt,
                      float *out) {
    const char *s = cli_get(a, name);
    if (!s) {
        *out = (float)dflt;
        return true;
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        cli_usage_error(a->cmd, "--%s expects a number in [%g, %g], got '%s'", name, lo, hi, s);
        return false;
    }
    *out = (float)v;
    return true;
}

/* Options shared by train and distill -> trainer options. */
static bool parse_train_options(const cli_args *a, qf_train_options *o, bool finetune) {
    qf_train_options_default(o);
    /* Default recipe from scratch: batch 128 (bigger GEMMs, half the thread
     * synchronisations per image) with the lr scaled to match; resnet8 gets
     * 8 epochs so a Fashion-MNIST run fits in about 10 minutes on two cores
     * (measured: lenet 91.79% in 6 min, resnet8 92.76% in 8 epochs). */
    const char *arch = cli_get(a, "arch");
    bool scratch = !finetune && arch;
    bool r8 = scratch && strcmp(arch, "resnet8") == 0;
    long long epochs, batch, threads, seed, pad, vlimit;
    if (!cli_get_int(a, "epochs", 1, 100000, finetune ? 3 : (r8 ? 8 : 10), &epochs) ||
        !cli_get_int(a, "batch", 1, 1 << 16, scratch ? 128 : 64, &batch) ||
        !cli_get_int(a, "threads", 1, 256, 2, &threads) ||
        !cli_get_int(a, "seed", 0, INT64_MAX, 1, &seed) ||
        !cli_get_int(a, "pad", 0, 64, 0, &pad) ||
        !cli_get_int(a, "val-limit", 0, INT64_MAX, 0, &vlimit))
        return false;
    o->epochs = (int)epochs;
    o->batch = (int)batch;
    o->num_threads = (int)threads;
    o->seed = (uint64_t)seed;
    o->aug_pad = pad;
    o->aug_flip = cli_flag(a, "flip");
    o->val_limit = vlimit;
    const char *opt = cli_get(a, "optimizer") ? cli_get(a, "optimizer") : "sgd";
    qf_optim_kind kind;
    if (strcmp(opt, "sgd") == 0)
        kind = QF_OPTIM_SGD;
    else if (strcmp(opt, "adam") == 0)
        kind = QF_OPTIM_ADAM;
    else if (strcmp(opt, "adamw") == 0)
        kind = QF_OPTIM_ADAMW;
    else {
        cli_usage_error(a->cmd, "--optimizer must be sgd, adam or adamw, not '%s'", opt);
        return false;
    }
    qf_optim_config_default(&o->optim, kind);
    bool sgd = kind == QF_OPTIM_SGD;
    float mom;
    if (!get_float(a, "momentum", 0, 0.999, 0.9, &mom) ||
        !get_float(a, "wd", 0, 1, sgd ? 5e-4 : (kind == QF_OPTIM_ADAMW ? 0.01 : 0),
                   &o->optim.weight_decay) ||
        !get_float(a, "lr", 1e-8, 10,
                   sgd ? (finetune ? 0.005 : (scratch ? 0.1 : 0.05)) : (finetune ? 1e-4 : 0.001),
                   &o->lr.base_lr) ||
        !get_float(a, "warmup", 0, 1000, finetune ? 0 : 1, &o->warmup_epochs) ||
        !get_float(a, "label-smoothing", 0, 0.999, 0, &o->label_smoothing))
        return false;
    if (sgd) {
        o->optim.momentum = mom;
        o->optim.nesterov = mom > 0;
    }
    const char *sch = cli_get(a, "schedule") ? cli_get(a, "schedule") : "cosine";
    if (!qf_lr_kind_parse(sch, &o->lr.kind)) {
        cli_usage_error(a->cmd, "--schedule must be cosine, step or constant, not '%s'", sch);
        return false;
    }
    /* step schedule: x0.1 at 50% and 75% of training is a common default;
     * one decay every third of the run keeps it simple and general */
    o->lr.step_epochs = epochs >= 3 ? epochs / 3 : 1;
    o->lr.gamma = 0.1f;
    return true;
}

static qf_status open_sets(const cli_args *a, qf_dataset **train, qf_dataset **val, qf_err *e) {
    *train = *val = NULL;
    const char *spec = cli_get(a, "data");
    qf_dataset_options d;
    if (!cli_dataset_options(a, "train", &d)) return QF_ERR_INVALID_ARG;
    qf_status s = qf_dataset_open(spec, NULL, &d, train, e);
    if (s) return s;
    const char *vspec = cli_get(a, "val");
    if (vspec && strcmp(vspec, "none") == 0) return QF_OK;
    d.split = "test";
    d.limit = 0;
    s = qf_dataset_open(vspec ? vspec : spec, NULL, &d, val, e);
    if (s) {
        qf_dataset_free(*train);
        *train = NULL;
    }
    return s;
}

/* An imported ONNX model to fine-tune, with its batch made dynamic. */
static qf_status load_student(const char *path, qf_graph **g, qf_err *e) {
    qf_status s = qf_onnx_import_file(path, g, e);
    if (s) return s;
    if ((*g)->n_inputs == 1 && (*g)->values[(*g)->inputs[0]].rank >= 1)
        (*g)->values[(*g)->inputs[0]].dims[0] = -1; /* train with any batch */
    return QF_OK;
}

static int finish(const cli_args *a, qf_graph *g, qf_status st, const qf_train_result *r,
                  qf_err *e) {
    const char *out = cli_get(a, "output");
    if (!st) {
        qf_onnx_export_options eo;
        qf_onnx_export_options_init(&eo);
        st = qf_onnx_export(g, out, &eo, e);
    }
    if (st) return cli_fail(e, st);
    if (r->best_val_accuracy >= 0)
        printf("best validation top-1 %.2f%% (epoch %d of %d); %.1f s, %.0f img/s\nwrote %s\n",
               100 * r->best_val_accuracy, r->best_epoch, r->epochs_run, r->seconds,
               r->images_per_s, out);
    else
        printf("trained %d epochs (train top-1 %.2f%%); %.1f s, %.0f img/s\nwrote %s\n",
               r->epochs_run, 100 * r->final_train_accuracy, r->seconds, r->images_per_s, out);
    return CLI_EXIT_OK;
}

static int run_training(const cli_args *a, bool distill) {
    const char *out = cli_get(a, "output");
    if (!out) return cli_usage_error(a->cmd, "-o OUT.onnx is required");
    if (!cli_get(a, "data")) return cli_usage_error(a->cmd, "--data is required");
    const char *init_opt = distill ? "student" : "init";
    if (!!cli_get(a, "arch") == !!cli_get(a, init_opt))
        return cli_usage_error(a->cmd, "give exactly one of --arch and --%s", init_opt);
    if (distill && !cli_get(a, "teacher")) return cli_usage_error(a->cmd, "--teacher is required");
    qf_train_options o;
    if (!parse_train_options(a, &o, false)) return CLI_EXIT_USAGE;
    if (distill && (!get_float(a, "temperature", 0.01, 100, 4, &o.kd_temperature) ||
                    !get_float(a, "alpha", 0, 1, 0.9, &o.kd_alpha)))
        return CLI_EXIT_USAGE;
    long long seed;
    cli_get_int(a, "seed", 0, INT64_MAX, 1, &seed);

    qf_err e = {0};
    qf_dataset *train = NULL, *val = NULL;
    qf_status st = open_sets(a, &train, &val, &e);
    if (st == QF_ERR_INVALID_ARG && !e.msg[0]) return CLI_EXIT_USAGE;
    if (st) return cli_fail(&e, st);
    qf_graph *g = NULL;
    qf_model *teacher = NULL;
    if (cli_get(a, "arch")) {
        long long classes;
        if (!cli_get_int(a, "classes", 2, 1 << 20, train->num_classes, &classes)) {
            st = QF_ERR_INVALID_ARG;
            snprintf(e.msg, sizeof e.msg, "bad --classes");
        } else {
            int64_t in_ch = train->rank == 3 ? train->dims[0] : 1;
            st = qf_arch_build(cli_get(a, "arch"), classes, in_ch, (uint64_t)seed, &g, &e);
        }
    } else {
        st = load_student(cli_get(a, init_opt), &g, &e);
    }
    if (!st && distill) st = qf_model_load(cli_get(a, "teacher"), &teacher, &e);
    qf_train_result r;
    memset(&r, 0, sizeof r);
    if (!st) {
        train_ui ui = {.quiet = cli_flag(a, "quiet")};
        o.progress = on_progress;
        o.epoch_done = on_epoch;
        o.user = &ui;
        o.checkpoint = out;
        o.teacher = teacher;
        if (!ui.quiet)
            printf("training %s on %lld samples (%lld validation), %d epochs, batch %d, "
                   "%d threads\n",
                   cli_get(a, "arch") ? cli_get(a, "arch") : cli_get(a, init_opt),
                   (long long)train->n, val ? (long long)val->n : 0LL, o.epochs, o.batch,
                   o.num_threads);
        fflush(stdout);
        st = qf_train(g, train, val, &o, &r, &e);
        if (ui.bar.active) cli_progress_finish(&ui.bar);
    }
    int rc = finish(a, g, st, &r, &e);
    qf_model_free(teacher);
    qf_graph_free(g);
    qf_dataset_free(train);
    qf_dataset_free(val);
    return rc;
}

static void print_qat_layers(const qf_quant_report *rep) {
    printf("%-28s %-14s %5s %5s %11s %6s\n", "layer", "lowered to", "wbits", "abits", "out scale",
           "zp");
    for (int i = 0; i < rep->n_layers; i++) {
        const qf_quant_layer *L = &rep->layers[i];
        char wb[8] = "-", ab[8] = "float";
        if (L->w_bits) snprintf(wb, sizeof wb, "%d", L->w_bits);
        if (L->act_bits <= 16) snprintf(ab, sizeof ab, "%d", L->act_bits);
        printf("%-28.28s %-14.14s %5s %5s %11.4g %6d\n", L->name, L->lowered, wb, ab,
               (double)L->out_scale, (int)L->out_zero_point);
    }
}

static int run_qat(const cli_args *a) {
    const char *model = a->pos[0], *out = cli_get(a, "output");
    if (!out) return cli_usage_error(a->cmd, "-o OUT.qfm is required");
    if (!cli_get(a, "data")) return cli_usage_error(a->cmd, "--data is required");
    qf_qat_options qo;
    memset(&qo, 0, sizeof qo);
    if (!parse_train_options(a, &qo.train, true)) return CLI_EXIT_USAGE;
    long long climit;
    if (!cli_get_int(a, "calib-limit", 1, INT64_MAX, 1000, &climit)) return CLI_EXIT_USAGE;
    qo.calib_limit = climit;
    qo.lsq = cli_flag(a, "lsq");
    qo.fake_quant_onnx = cli_get(a, "fake-quant");
    static qf_qconfig cfg;
    qf_qconfig_default(&cfg);
    qf_err e = {0};
    qf_status st;
    const char *config = cli_get(a, "config");
    qo.config_path = config;
    if (config && (st = qf_qconfig_load_file(&cfg, config, &e))) return cli_fail(&e, st);
    const char *m = cli_get(a, "method");
    if (m && (st = qf_calib_method_parse(m, &cfg.calib, &e))) return cli_fail(&e, st);
    long long bits;
    if (!cli_get_int(a, "bits", 2, 8, cfg.default_w_bits, &bits)) return CLI_EXIT_USAGE;
    if (cli_get(a, "bits")) {
        cfg.default_w_bits = (int)bits;
        cfg.n_w = 0;
        cfg.w_list = false;
    }
    if (cli_flag(a, "reduce-range")) cfg.reduce_range = true;
    qf_dataset *train = NULL, *val = NULL;
    st = open_sets(a, &train, &val, &e);
    if (st == QF_ERR_INVALID_ARG && !e.msg[0]) return CLI_EXIT_USAGE;
    if (st) return cli_fail(&e, st);
    qf_graph *fg = NULL, *qg = NULL;
    qf_quant_report rep;
    memset(&rep, 0, sizeof rep);
    qf_qat_result r;
    memset(&r, 0, sizeof r);
    train_ui ui = {.quiet = cli_flag(a, "quiet")};
    qo.train.progress = on_progress;
    qo.train.epoch_done = on_epoch;
    qo.train.user = &ui;
    st = qf_onnx_import_file(model, &fg, &e);
    if (!st) {
        if (!ui.quiet) {
            printf("QAT of %s on %lld samples, %d epochs (step sizes %s)\n", model,
                   (long long)train->n, qo.train.epochs, qo.lsq ? "learned (LSQ)" : "fixed");
            fflush(stdout);
        }
        st = qf_qat(fg, train, val, &cfg, &qo, &qg, &rep, &r, &e);
        if (ui.bar.active) cli_progress_finish(&ui.bar);
    }
    if (!st) {
        char meta[1024];
        snprintf(meta, sizeof meta,
                 "{\"source_model\": \"%s\", \"tool\": \"qforge %d.%d.%d\", \"qat\": "
                 "{\"epochs\": %d, \"lsq\": %s, \"fake_quant_val_top1\": %.6f}, "
                 "\"weight_bits\": %d, \"per_channel\": %s}",
                 strchr(model, '"') ? "?" : model, QF_VERSION_MAJOR, QF_VERSION_MINOR,
                 QF_VERSION_PATCH, r.train.epochs_run, qo.lsq ? "true" : "false",
                 r.fq_val_accuracy, cfg.default_w_bits, cfg.per_channel ? "true" : "false");
        st = qf_qfm_write(qg, meta, out, &e);
    }
    /* the frozen integer model vs the float model, on the validation set */
    qf_verify_result vr;
    memset(&vr, 0, sizeof vr);
    if (!st && val) {
        qf_verify_options vo = {.num_threads = qo.train.num_threads, .limit = qo.train.val_limit};
        st = qf_verify(fg, qg, val, &vo, &vr, &e);
    }
    int rc = CLI_EXIT_OK;
    if (st) {
        rc = cli_fail(&e, st);
    } else {
        if (!ui.quiet) print_qat_layers(&rep);
        printf("fake-quant sites: %d activations, %d weight tensors\n", r.n_act_sites,
               r.n_weight_sites);
        if (val && vr.n > 0) {
            double fq = 100 * r.fq_val_accuracy, iq = 100.0 * (double)vr.top1_quant / (double)vr.n;
            printf("float model top-1:        %.2f%%\n",
                   100.0 * (double)vr.top1_float / (double)vr.n);
            printf("fake-quant top-1 (QAT):   %.2f%% (best epoch %d)\n", fq, r.train.best_epoch);
            printf("integer model top-1:      %.2f%% (frozen; %+.2f points vs fake-quant)\n", iq,
                   iq - fq);
        }
        printf("wrote %s\n", out);
    }
    qf_verify_result_free(&vr);
    qf_quant_report_free(&rep);
    qf_graph_free(qg);
    qf_graph_free(fg);
    qf_dataset_free(train);
    qf_dataset_free(val);
    return rc;
}

static int run_train(const cli_args *a) { return run_training(a, false); }
static int run_distill(const cli_args *a) { return run_training(a, true); }

const cli_cmd cli_cmd_train = {
    .name = "train",
    .summary = "train a built-in architecture, or fine-tune an ONNX model, in C",
    .usage = "--arch NAME|--init M.onnx --data D -o OUT.onnx [options]",
    .description =
        "Train with softmax cross-entropy, SGD (Nesterov momentum) or Adam/AdamW, a cosine,\n"
        "step or constant learning-rate schedule with linear warm-up, shuffled mini-batches\n"
        "and optional augmentation (random crop with padding, horizontal flip). After each\n"
        "epoch the model is evaluated on the validation set; every new best is written to\n"
        "OUT.onnx at once, so an interrupted run keeps its best model.\n"
        "Built-in architectures: lenet, resnet8, mobilenet_v2_tiny (28x28 inputs) and\n"
        "alexnet (227x227x3). Models whose output is a Softmax train through it.",
    .opts = train_opts,
    .n_opts = (int)QF_ARRAY_LEN(train_opts),
    .min_pos = 0,
    .max_pos = 0,
    .example = "  qforge train --arch lenet --data fashion-mnist --epochs 10 -o lenet.onnx\n"
               "  qforge train --arch resnet8 --data fashion-mnist --pad 2 -o resnet8.onnx\n"
               "  qforge train --init model.onnx --data fashion-mnist --lr 0.005 --epochs 2 "
               "-o tuned.onnx",
    .run = run_train,
};

const cli_cmd cli_cmd_distill = {
    .name = "distill",
    .summary = "train a small student model from a big teacher (knowledge distillation)",
    .usage = "--teacher T.onnx --student S.onnx|--arch NAME --data D -o OUT.onnx [options]",
    .description =
        "Train the student on alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) +\n"
        "(1 - alpha) * cross-entropy, where t and s are the teacher's and the student's\n"
        "logits on the same (augmented) batch. Other options as in 'qforge train'.",
    .opts = distill_opts,
    .n_opts = (int)QF_ARRAY_LEN(distill_opts),
    .min_pos = 0,
    .max_pos = 0,
    .example = "  qforge distill --teacher resnet8.onnx --arch lenet --data fashion-mnist "
               "-T 4 --alpha 0.9 -o lenet_kd.onnx",
    .run = run_distill,
};

const cli_cmd cli_cmd_qat = {
    .name = "qat",
    .summary = "quantization-aware training: fine-tune through fake quantization, freeze to .qfm",
    .usage = "MODEL.onnx --data D [--config C.json] [--bits B] [--lsq] -o OUT.qfm [options]",
    .description =
        "BatchNorm is folded into the convolutions, post-training quantization with the\n"
        "config gives initial activation ranges and weight scales, fake-quantization nodes\n"
        "(straight-through estimator; --lsq learns the step sizes) are inserted where the\n"
        "integer model quantizes, the model is fine-tuned (options as in 'qforge train';\n"
        "defaults here: 3 epochs, lr 0.005, no warm-up), and the best epoch is frozen into\n"
        "the integer model with the trained parameters. Prints the float, fake-quantized\n"
        "and frozen integer top-1 on the validation set.",
    .opts = qat_opts,
    .n_opts = (int)QF_ARRAY_LEN(qat_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge qat cnn.onnx --data fashion-mnist --bits 4 --epochs 2 -o cnn_w4.qfm\n"
               "  qforge qat cnn.onnx --data fashion-mnist --config w4a4.json --lsq -o cnn.qfm",
    .run = run_qat,
};
