/* compress.c - the accuracy-driven compress pipeline (see compress.h):
 * the order of the steps, the bookkeeping of every candidate tried, the
 * best-so-far rule and the escalation loop. Measuring lives in
 * compress_eval.c, the report's histograms in compress_report.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ir/passes.h"
#include "pipeline/check.h"
#include "pipeline/compress_internal.h"
#include "prune/prune.h"
#include "quant/cle.h"
#include "quant/qat.h"
#include "quant/verify.h"
#include "train/trainer.h"

#define SENS_BITS_N 2
static const int sens_bits[SENS_BITS_N] = {4, 2};
#define MAX_RAISES 6 /* bit-raising escalation rounds */
#define REPORT_HIST_LAYERS 8

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One quantizable layer of the float graph, as the quantizer names it. */
typedef struct cp_layer {
    char name[128];
    char op[32];
    int64_t params;            /* weight elements */
    double sens[SENS_BITS_N];  /* top-1 drop (points) at sens_bits[k], others 8-bit */
    double sqnr[SENS_BITS_N];  /* output SQNR (dB) of that probe */
    double flips[SENS_BITS_N]; /* extra top-1 flips vs float (points) over the 8-bit model */
    int w_bits, act_bits;      /* current assignment */
} cp_layer;

typedef struct cp_ctx {
    const qf_compress_options *o;
    const qf_dataset *train, *val;
    qf_report *rep;
    qf_compress_result *res;
    qf_err *err;
    qf_cp_eval ev;
    qf_graph *work;  /* float graph being quantized (maybe pruned / equalised) */
    qf_qconfig *cfg; /* scratch config (large: heap) */
    qf_calib_method calib;
    bool bias_correction;
    bool gptq; /* GPTQ weight rounding */
    int n_layers;
    cp_layer *layers;
    int64_t budget;    /* bytes, 0: none */
    double target_acc; /* float_acc - max_drop / 100 */
    /* best candidate so far */
    qf_graph *best;
    double best_acc;
    int64_t best_size;
    bool best_ok, best_size_ok;
    /* summary text */
    size_t sum_len;
    /* configurations tried, added to the report at the end so that the one
     * returned can be marked chosen */
    struct cp_config *cfgs;
    int n_cfgs, cap_cfgs, best_cfg;
} cp_ctx;

typedef struct cp_config {
    char label[300];
    int64_t size;
    double acc;
} cp_config;

static qf_status record_config(cp_ctx *c, const char *label, int64_t size, double acc) {
    if (c->n_cfgs == c->cap_cfgs) {
        int cap = c->cap_cfgs ? 2 * c->cap_cfgs : 32;
        size_t bytes;
        if (!qf_mul_size((size_t)cap, sizeof(cp_config), &bytes))
            return qf_errf(c->err, QF_ERR_NOMEM, "compress: out of memory");
        cp_config *n = qf_realloc(c->cfgs, bytes);
        if (!n) return qf_errf(c->err, QF_ERR_NOMEM, "compress: out of memory");
        c->cfgs = n;
        c->cap_cfgs = cap;
    }
    cp_config *k = &c->cfgs[c->n_cfgs++];
    snprintf(k->label, sizeof k->label, "%s", label);
    k->size = size;
    k->acc = acc;
    return QF_OK;
}

static void say(cp_ctx *c, const char *fmt, ...) QF_PRINTF(2, 3);
static void say(cp_ctx *c, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->o->log) c->o->log(c->o->log_user, line);
}

static void summary_add(cp_ctx *c, const char *fmt, ...) QF_PRINTF(2, 3);
static void summary_add(cp_ctx *c, const char *fmt, ...) {
    char *s = c->res->summary;
    size_t cap = sizeof c->res->summary;
    if (c->sum_len + 2 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s + c->sum_len, cap - c->sum_len, fmt, ap);
    va_end(ap);
    if (n > 0) c->sum_len = QF_MIN(cap - 1, c->sum_len + (size_t)n);
}

static qf_status add_step(cp_ctx *c, const char *name, double acc, int64_t size, double secs,
                          const char *note) {
    if (!c->rep) return QF_OK;
    qf_report_step s = {
        .name = name, .accuracy = acc, .size_bytes = size, .seconds = secs, .note = note};
    return qf_report_add_step(c->rep, &s, c->err);
}

static bool size_ok(const cp_ctx *c, int64_t size) { return c->budget <= 0 || size <= c->budget; }

static bool acc_ok(const cp_ctx *c, double acc) {
    /* compare in points with a little slack for float rounding of the division */
    return 100.0 * (c->ev.float_acc - acc) <= c->o->max_drop + 1e-9;
}

/* Is candidate (acc, size) better than the best so far? Meeting both
 * targets wins, then the smaller model; else meeting the size budget, then
 * the higher accuracy. */
static bool better(const cp_ctx *c, double acc, int64_t size) {
    if (!c->best) return true;
    bool ok = acc_ok(c, acc) && size_ok(c, size), sok = size_ok(c, size);
    if (ok != c->best_ok) return ok;
    if (ok) { /* sizes within 1% count as equal: then the more accurate wins */
        if ((double)size < 0.99 * (double)c->best_size) return true;
        if ((double)size > 1.01 * (double)c->best_size) return false;
        return acc > c->best_acc || (acc == c->best_acc && size < c->best_size);
    }
    if (sok != c->best_size_ok) return sok;
    return acc > c->best_acc || (acc == c->best_acc && size < c->best_size);
}

/* Fill c->cfg from the current per-layer assignment. */
static void fill_cfg(cp_ctx *c) {
    qf_qconfig_default(c->cfg);
    c->cfg->calib = c->calib;
    c->cfg->bias_correction = c->bias_correction;
    c->cfg->rounding = c->gptq ? QF_ROUND_GPTQ : QF_ROUND_NEAREST;
    int nw = 0, na = 0;
    for (int i = 0; i < c->n_layers && i < QF_QCONFIG_MAX_LAYERS; i++) {
        const cp_layer *L = &c->layers[i];
        if (L->w_bits != 8) {
            snprintf(c->cfg->w[nw].name, sizeof c->cfg->w[nw].name, "%s", L->name);
            c->cfg->w[nw++].bits = L->w_bits;
        }
        if (L->act_bits != 8) {
            snprintf(c->cfg->act[na].name, sizeof c->cfg->act[na].name, "%s", L->name);
            c->cfg->act[na++].bits = L->act_bits;
        }
    }
    c->cfg->n_w = nw;
    c->cfg->n_act = na;
}

static void bits_label(const cp_ctx *c, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < c->n_layers && k + 8 < len; i++) {
        int n = snprintf(buf + k, len - k, "%s%d", i ? "/" : "w", c->layers[i].w_bits);
        if (n > 0) k += (size_t)n;
        if (c->layers[i].act_bits != 8 && k + 8 < len) {
            n = snprintf(buf + k, len - k, "a%d", c->layers[i].act_bits);
            if (n > 0) k += (size_t)n;
        }
    }
}

static void quant_progress(void *user, int64_t done, int64_t total) {
    cp_ctx *c = user;
    if (c->o->progress) c->o->progress(c->o->progress_user, done, total);
}

/* Quantize `fg` with c->cfg, calibrating on `calib_limit` training samples. */
static qf_status quantize_cfg(cp_ctx *c, const qf_graph *fg, int64_t calib_limit, qf_graph **qg) {
    qf_quant_options qo = {.calib_limit = calib_limit,
                           .num_threads = c->o->num_threads,
                           .progress = quant_progress,
                           .progress_user = c};
    return qf_quantize(fg, c->train, c->cfg, &qo, qg, NULL, c->err);
}

/* Evaluate a candidate on the whole validation set, log it as a
 * configuration, keep it if best. Takes ownership of qg. */
static qf_status consider(cp_ctx *c, qf_graph *qg, const char *label, double *acc_out,
                          int64_t *size_out) {
    double acc = 0, sqnr = 0;
    qf_status st = qf_cp_eval_graph(&c->ev, qg, 0, &acc, &sqnr, NULL, c->err);
    if (st) {
        qf_graph_free(qg);
        return st;
    }
    int64_t size = qf_compress_model_size(qg);
    c->res->n_tried++;
    say(c, "  %-28s top-1 %6.2f%% (drop %5.2f pts)  %8lld bytes  SQNR %5.1f dB%s", label, 100 * acc,
        100 * (c->ev.float_acc - acc), (long long)size, sqnr,
        acc_ok(c, acc) && size_ok(c, size) ? "  meets target" : "");
    if ((st = record_config(c, label, size, acc))) {
        qf_graph_free(qg);
        return st;
    }
    if (better(c, acc, size)) {
        c->best_cfg = c->n_cfgs - 1;
        qf_graph_free(c->best);
        c->best = qg;
        c->best_acc = acc;
        c->best_size = size;
        c->best_ok = acc_ok(c, acc) && size_ok(c, size);
        c->best_size_ok = size_ok(c, size);
        snprintf(c->res->best_label, sizeof c->res->best_label, "%s", label);
    } else {
        qf_graph_free(qg);
    }
    if (acc_out) *acc_out = acc;
    if (size_out) *size_out = size;
    return QF_OK;
}

/* Quantize work with the current assignment and consider it. */
static qf_status try_current(cp_ctx *c, const char *label, double *acc, int64_t *size) {
    fill_cfg(c);
    qf_graph *qg = NULL;
    qf_status st = quantize_cfg(c, c->work, c->o->calib_limit, &qg);
    if (st) return st;
    return consider(c, qg, label, acc, size);
}

/* ---- steps ------------------------------------------------------------- */

static qf_status step_check(cp_ctx *c, const qf_graph *fg) {
    double t0 = now_s();
    qf_check_options co = {
        .data = c->val, .train = c->train, .limit = 500, .num_threads = c->o->num_threads};
    qf_check_result cr;
    memset(&cr, 0, sizeof cr);
    qf_status st = qf_check_model(fg, &co, &cr, c->err);
    if (st) return st;
    if (c->rep) st = qf_check_to_report(&cr, c->rep, c->err);
    char note[160];
    snprintf(note, sizeof note, "%d ok, %d warn, %d fail", cr.n_ok, cr.n_warn, cr.n_fail);
    say(c, "check: %s", note);
    if (!st && cr.n_fail > 0) {
        for (int i = 0; i < cr.n_findings; i++)
            if (cr.findings[i].severity == QF_SEV_FAIL) {
                st = qf_errf(c->err, QF_ERR_FORMAT, "check failed: %s (%s): %s",
                             cr.findings[i].check, cr.findings[i].subject, cr.findings[i].message);
                break;
            }
    }
    if (!st) st = add_step(c, "check", NAN, c->o->float_size, now_s() - t0, note);
    summary_add(c, "check: %s\n", note);
    qf_check_result_free(&cr);
    return st;
}

typedef struct prune_ctx {
    qf_graph *g;
    qf_prune_masks *masks;
} prune_ctx;

static qf_status keep_masks(void *user, qf_tape *t, qf_err *err) {
    (void)t;
    prune_ctx *p = user;
    return qf_prune_masks_apply(p->masks, p->g, err);
}

/* A view of the first `limit` samples of d (shares d's arrays). */
static qf_dataset head_view(const qf_dataset *d, int64_t limit) {
    qf_dataset v = *d;
    if (limit > 0 && limit < v.n) v.n = limit;
    return v;
}

static qf_status step_prune(cp_ctx *c) {
    double t0 = now_s();
    qf_prune_options po = {.sparsity = c->o->prune_sparsity, .skip_first = true};
    prune_ctx p = {.g = c->work};
    qf_status st = qf_prune_magnitude(c->work, &po, &p.masks, c->err);
    if (st) return st;
    qf_dataset tv = head_view(c->train, c->o->train_limit > 0 ? c->o->train_limit : 10000);
    qf_dataset vv = head_view(c->val, c->ev.n);
    qf_train_options to;
    qf_train_options_default(&to);
    to.epochs = c->o->prune_epochs > 0 ? c->o->prune_epochs : 1;
    to.num_threads = c->o->num_threads;
    to.lr.base_lr = 0.005f;
    to.warmup_epochs = 0;
    to.after_step = keep_masks;
    to.after_step_user = &p;
    to.teacher = c->o->teacher;
    to.kd_temperature = 4.0f;
    to.kd_alpha = c->o->teacher ? 0.9f : 0.0f;
    if (!c->o->teacher) to.teacher = NULL;
    qf_train_result tr;
    say(c, "prune: %.0f%% of the weights, fine-tuning %d epoch%s on %lld samples%s",
        100.0 * c->o->prune_sparsity, to.epochs, to.epochs == 1 ? "" : "s", (long long)tv.n,
        c->o->teacher ? " (distilling from the teacher)" : "");
    st = qf_train(c->work, &tv, &vv, &to, &tr, c->err);
    qf_prune_masks_free(p.masks);
    if (st) return st;
    double acc = 0;
    if ((st = qf_cp_eval_graph(&c->ev, c->work, 0, &acc, NULL, NULL, c->err))) return st;
    char note[160];
    snprintf(note, sizeof note, "magnitude %.0f%%%s, %d epoch fine-tune", 100.0 * po.sparsity,
             c->o->teacher ? " + distillation" : "", to.epochs);
    say(c, "prune: float top-1 %.2f%% after fine-tuning", 100 * acc);
    summary_add(c, "prune: %s -> %.2f%% (float)\n", note, 100 * acc);
    return add_step(c, "prune + fine-tune", acc, qf_compress_model_size(c->work), now_s() - t0,
                    note);
}

/* Layers of the optimized work graph that the quantizer will quantize. */
static qf_status find_layers(cp_ctx *c) {
    qf_graph *opt = NULL;
    qf_status st = qf_graph_clone(c->work, &opt, c->err);
    if (!st) st = qf_pass_optimize(opt, c->err);
    if (!st) {
        c->layers = qf_calloc((size_t)opt->n_nodes + 1, sizeof(cp_layer));
        if (!c->layers) st = qf_errf(c->err, QF_ERR_NOMEM, "compress: out of memory");
    }
    for (int i = 0; !st && i < opt->n_nodes; i++) {
        const qf_node *n = &opt->nodes[i];
        if (!qf_node_is_quantizable_layer(opt, n)) continue;
        cp_layer *L = &c->layers[c->n_layers++];
        snprintf(L->name, sizeof L->name, "%s", n->name);
        snprintf(L->op, sizeof L->op, "%s", n->op_type);
        qf_tensor t = qf_value_tensor(&opt->values[n->inputs[1]]);
        L->params = qf_tensor_numel(&t);
        L->w_bits = 8;
        L->act_bits = 8;
    }
    qf_graph_free(opt);
    if (!st && c->n_layers == 0)
        st = qf_errf(c->err, QF_ERR_UNSUPPORTED,
                     "compress: the model has no quantizable layer (Conv, Gemm, MatMul)");
    if (!st && c->n_layers > QF_QCONFIG_MAX_LAYERS)
        st = qf_errf(c->err, QF_ERR_UNSUPPORTED, "compress: %d layers (at most %d)", c->n_layers,
                     QF_QCONFIG_MAX_LAYERS);
    return st;
}

static qf_status step_ptq(cp_ctx *c, double *acc_out, int64_t *size_out) {
    unsigned mask = c->o->calibrators ? c->o->calibrators : 0xFu;
    double best_acc = -1;
    int64_t best_size = 0;
    qf_calib_method best = QF_CALIB_MINMAX;
    for (int m = QF_CALIB_MINMAX; m <= QF_CALIB_MSE; m++) {
        if (!(mask & (1u << m))) continue;
        double t0 = now_s(), acc = 0;
        int64_t size = 0;
        c->calib = (qf_calib_method)m;
        char label[64];
        snprintf(label, sizeof label, "PTQ int8 (%s)", qf_calib_method_name(c->calib));
        qf_status st = try_current(c, label, &acc, &size);
        if (st) return st;
        if ((st = add_step(c, label, acc, size, now_s() - t0, "uniform 8-bit weights/activations")))
            return st;
        if (acc > best_acc) {
            best_acc = acc;
            best_size = size;
            best = c->calib;
        }
    }
    c->calib = best;
    *acc_out = best_acc;
    *size_out = best_size;
    say(c, "calibrator kept: %s (%.2f%%)", qf_calib_method_name(best), 100 * best_acc);
    summary_add(c, "PTQ int8: best calibrator %s, %.2f%% (float %.2f%%)\n",
                qf_calib_method_name(best), 100 * best_acc, 100 * c->ev.float_acc);
    return QF_OK;
}

static qf_status step_sensitivity(cp_ctx *c) {
    double t0 = now_s();
    int64_t lim = c->o->sens_limit > 0 ? c->o->sens_limit : 500;
    int64_t calib = QF_MIN(c->o->calib_limit, (int64_t)256);
    double base_acc = 0, base_flips = 0;
    fill_cfg(c);
    qf_graph *qg = NULL;
    qf_status st = quantize_cfg(c, c->work, calib, &qg);
    if (!st) st = qf_cp_eval_graph(&c->ev, qg, lim, &base_acc, NULL, &base_flips, c->err);
    qf_graph_free(qg);
    if (st) return st;
    say(c, "sensitivity: %d layers x %d bit widths on %lld samples", c->n_layers, SENS_BITS_N,
        (long long)QF_MIN(lim, c->ev.n));
    for (int i = 0; i < c->n_layers; i++) {
        cp_layer *L = &c->layers[i];
        for (int k = 0; k < SENS_BITS_N; k++) {
            L->w_bits = sens_bits[k];
            fill_cfg(c);
            L->w_bits = 8;
            double acc = 0, sq = 0, fl = 0;
            qg = NULL;
            if ((st = quantize_cfg(c, c->work, calib, &qg)) ||
                (st = qf_cp_eval_graph(&c->ev, qg, lim, &acc, &sq, &fl, c->err))) {
                qf_graph_free(qg);
                return st;
            }
            qf_graph_free(qg);
            L->sens[k] = 100.0 * (base_acc - acc);
            L->sqnr[k] = sq;
            L->flips[k] = 100.0 * QF_MAX(fl - base_flips, 0.0);
        }
        say(c,
            "  %-22s %-5s %7lld params  w4: drop %5.2f flips %5.2f %5.1f dB  w2: drop %5.2f "
            "flips %5.2f %5.1f dB",
            L->name, L->op, (long long)L->params, L->sens[0], L->flips[0], L->sqnr[0], L->sens[1],
            L->flips[1], L->sqnr[1]);
    }
    char note[96];
    snprintf(note, sizeof note, "%d layers at w4 and w2, others 8-bit", c->n_layers);
    return add_step(c, "sensitivity", NAN, -1, now_s() - t0, note);
}

/* Estimated loss (points) of a layer at `bits`. The accuracy drop of a
 * probe on a few hundred samples moves in steps of several tenths of a
 * point and can even be negative; the extra flips of the top-1 class are
 * less noisy (every changed decision counts, not just the net) but
 * overstate the loss, since a flip often swaps one wrong class for
 * another. Half of each, plus a small SQNR-derived floor so that ties at
 * zero still prefer the layer with less output noise. */
static double est_loss(const cp_layer *L, int bits) {
    if (bits >= 8) return 0;
    int k = bits >= 4 ? 0 : 1;
    double floor = isfinite(L->sqnr[k]) ? 0.01 * pow(10.0, -L->sqnr[k] / 10.0) * 100.0 : 0;
    return 0.5 * QF_MAX(L->sens[k], 0.0) + 0.5 * L->flips[k] + floor;
}

static int lower_bits(int b) { return b == 8 ? 4 : b == 4 ? 2 : 0; }

/* Predicted stored size of an assignment: the 8-bit model's size with each
 * layer's weights scaled to its bits (compression ratio of the 8-bit model
 * kept). */
static int64_t predict_size(const cp_ctx *c, int64_t size8) {
    double d = 0;
    for (int i = 0; i < c->n_layers; i++)
        d += (double)c->layers[i].params * (8 - c->layers[i].w_bits) / 8.0;
    return size8 - (int64_t)d;
}

/* Lower bits greedily, cheapest estimated loss per byte saved first, until
 * the predicted size reaches `target` (> 0) or, without a target, while the
 * summed estimate stays within the loss cap. Returns the moves made. */
static int greedy_lower(cp_ctx *c, int64_t size8, int64_t target, double *loss, double cap,
                        int max_moves) {
    int moves = 0;
    while (moves < max_moves) {
        if (target > 0 && predict_size(c, size8) <= target) break;
        int best = -1;
        double best_ratio = INFINITY, best_dl = 0, best_saved = 0;
        for (int i = 0; i < c->n_layers; i++) {
            cp_layer *L = &c->layers[i];
            int nb = lower_bits(L->w_bits);
            if (!nb) continue;
            double dl = est_loss(L, nb) - est_loss(L, L->w_bits);
            double saved = (double)L->params * (L->w_bits - nb) / 8.0;
            if (saved <= 0) continue;
            if (target <= 0 && *loss + dl > cap) continue;
            double ratio = QF_MAX(dl, 0.0) / saved;
            if (ratio < best_ratio || (ratio == best_ratio && saved > best_saved)) {
                best_ratio = ratio;
                best = i;
                best_dl = dl;
                best_saved = saved;
            }
        }
        if (best < 0) break;
        c->layers[best].w_bits = lower_bits(c->layers[best].w_bits);
        *loss += best_dl;
        moves++;
    }
    return moves;
}

#define MIXED_ROUNDS 4

static void apply_moves(cp_ctx *c, const int *moves, int k) {
    for (int i = 0; i < c->n_layers; i++)
        c->layers[i].w_bits = 8;
    for (int j = 0; j < k; j++)
        c->layers[moves[j]].w_bits = lower_bits(c->layers[moves[j]].w_bits);
}

/* Without a size budget: the greedy order of moves all the way down to 2
 * bits, then a binary search, measuring each probe on the validation set,
 * for the longest prefix that still meets the accuracy target. The
 * per-layer estimates only order the moves; the measurements decide how
 * far to go (they do not add up exactly across layers). */
static qf_status search_prefix(cp_ctx *c, int64_t size8, double *loss, bool *tried, double *acc,
                               int64_t *size) {
    int n = 0, cap_moves = 2 * c->n_layers;
    int *moves = qf_malloc(sizeof(int) * (size_t)(cap_moves + 1));
    double *cum = qf_malloc(sizeof(double) * (size_t)(cap_moves + 1));
    if (!moves || !cum) {
        qf_free(moves);
        qf_free(cum);
        return qf_errf(c->err, QF_ERR_NOMEM, "compress: out of memory");
    }
    int *before = qf_malloc(sizeof(int) * (size_t)c->n_layers);
    double l = 0;
    cum[0] = 0;
    for (; before && n < cap_moves; n++) {
        for (int i = 0; i < c->n_layers; i++)
            before[i] = c->layers[i].w_bits;
        if (greedy_lower(c, size8, 0, &l, INFINITY, 1) != 1) break;
        for (int i = 0; i < c->n_layers; i++)
            if (c->layers[i].w_bits != before[i]) moves[n] = i;
        cum[n + 1] = l;
    }
    qf_free(before);
    qf_status st = QF_OK;
    int lo = 0, hi = n;
    double lo_acc = 0;
    int64_t lo_size = 0;
    char label[256], clabel[300];
    say(c,
        "mixed precision: %d moves in greedy order; searching the longest that meets the "
        "target",
        n);
    while (lo < hi && !st) {
        int mid = (lo + hi + 1) / 2;
        apply_moves(c, moves, mid);
        bits_label(c, label, sizeof label);
        snprintf(clabel, sizeof clabel, "mixed %s", label);
        double a = 0;
        int64_t sz = 0;
        st = try_current(c, clabel, &a, &sz);
        if (!st && acc_ok(c, a)) {
            lo = mid;
            lo_acc = a;
            lo_size = sz;
        } else {
            hi = mid - 1;
        }
    }
    apply_moves(c, moves, lo);
    *loss = cum[lo];
    if (lo > 0) {
        *tried = true;
        *acc = lo_acc;
        *size = lo_size;
    }
    qf_free(moves);
    qf_free(cum);
    return st;
}

static qf_status step_mixed(cp_ctx *c, int64_t size8, bool *tried, double *acc_out,
                            int64_t *size_out) {
    double t0 = now_s(), loss = 0, acc = 0;
    int64_t target = c->budget, size = 0, pred = 0;
    int moves = 0;
    char label[256], note[320], clabel[300];
    qf_status st = QF_OK;
    if (c->budget <= 0) {
        st = search_prefix(c, size8, &loss, tried, &acc, &size);
        if (st) return st;
    }
    /* The prediction scales weight bytes linearly, but packed sub-8-bit
     * weights compress worse than int8 ones: when the measured size still
     * exceeds the budget, aim lower by the miss and go on. */
    for (int round = 0; c->budget > 0 && round < MIXED_ROUNDS && !st; round++) {
        int m = greedy_lower(c, size8, target, &loss, INFINITY, 1 << 20);
        moves += m;
        if (moves == 0 || (round > 0 && m == 0)) break;
        pred = predict_size(c, size8);
        bits_label(c, label, sizeof label);
        snprintf(clabel, sizeof clabel, "mixed %s", label);
        st = try_current(c, clabel, &acc, &size);
        *tried = true;
        if (st || c->budget <= 0 || size <= c->budget) break;
        target -= size - c->budget + 16;
    }
    if (st) return st;
    pred = predict_size(c, size8);
    bits_label(c, label, sizeof label);
    snprintf(note, sizeof note,
             "greedy on estimated loss per byte: %s, est. loss %.2f pts, "
             "predicted %lld bytes%s",
             label, loss, (long long)pred,
             c->budget > 0 && *tried && size > c->budget ? " (budget out of reach)" : "");
    say(c, "mixed precision: %s", note);
    summary_add(c, "mixed precision: %s\n", note);
    if (!*tried) return add_step(c, "mixed precision", NAN, -1, now_s() - t0, note);
    st = add_step(c, "mixed precision", acc, size, now_s() - t0, note);
    *acc_out = acc;
    *size_out = size;
    /* the uniform assignment of no larger predicted size, for comparison */
    int64_t mixed_pred = pred;
    for (int ub = 4; !st && ub >= 2; ub -= 2) {
        int64_t up = 0;
        for (int i = 0; i < c->n_layers; i++)
            up += (int64_t)((double)c->layers[i].params * (8 - ub) / 8.0);
        if (size8 - up > mixed_pred) continue;
        int *saved = qf_malloc(sizeof(int) * (size_t)c->n_layers);
        if (!saved) return qf_errf(c->err, QF_ERR_NOMEM, "compress: out of memory");
        for (int i = 0; i < c->n_layers; i++) {
            saved[i] = c->layers[i].w_bits;
            c->layers[i].w_bits = ub;
        }
        char ul[64];
        double uacc = 0;
        int64_t usize = 0;
        snprintf(ul, sizeof ul, "uniform w%d (comparison)", ub);
        st = try_current(c, ul, &uacc, &usize);
        for (int i = 0; i < c->n_layers; i++)
            c->layers[i].w_bits = saved[i];
        qf_free(saved);
        if (!st)
            summary_add(c, "uniform w%d at <= the mixed size: %.2f%% vs mixed %.2f%%\n", ub,
                        100 * uacc, 100 * acc);
        break;
    }
    return st;
}

/* Did the last candidate with the current assignment meet the target? */
static qf_status verify_current(cp_ctx *c, const char *name, double t0, const char *note, bool *ok,
                                double *acc_out) {
    double acc = 0;
    int64_t size = 0;
    char label[300], bl[256];
    bits_label(c, bl, sizeof bl);
    snprintf(label, sizeof label, "%s %s", name, bl);
    qf_status st = try_current(c, label, &acc, &size);
    if (st) return st;
    *ok = acc_ok(c, acc) && size_ok(c, size);
    if (acc_out) *acc_out = acc;
    summary_add(c, "%s: %.2f%% (drop %.2f pts), %lld bytes%s\n", name, 100 * acc,
                100 * (c->ev.float_acc - acc), (long long)size, *ok ? " - met" : "");
    return add_step(c, name, acc, size, now_s() - t0, note);
}

static qf_status escalate_cle(cp_ctx *c, bool *ok, double *acc) {
    double t0 = now_s();
    qf_graph *g = NULL;
    qf_status st = qf_graph_clone(c->work, &g, c->err);
    if (!st) st = qf_pass_optimize(g, c->err);
    if (!st) st = qf_pass_infer_shapes(g, c->err);
    qf_cle_stats cs = {0};
    if (!st) st = qf_cle_apply(g, 4, &cs, c->err);
    if (st) {
        qf_graph_free(g);
        return st;
    }
    char note[160];
    snprintf(note, sizeof note, "%d layer pairs, channel range imbalance %.3g -> %.3g", cs.n_pairs,
             cs.imbalance_before, cs.imbalance_after);
    say(c, "escalate: cross-layer equalisation (%s)", note);
    if (cs.n_pairs == 0) {
        qf_graph_free(g);
        summary_add(c, "CLE: no equalisable layer pair\n");
        return add_step(c, "CLE", NAN, -1, now_s() - t0, "no equalisable layer pair");
    }
    qf_graph *prev = c->work;
    c->work = g;
    double before = *acc;
    st = verify_current(c, "CLE", t0, note, ok, acc);
    if (!st && *acc < before) { /* equalisation did not help here: keep the old graph */
        c->work = prev;
        qf_graph_free(g);
        *acc = before;
    } else {
        qf_graph_free(prev);
    }
    return st;
}

static qf_status escalate_bias(cp_ctx *c, bool *ok, double *acc) {
    double t0 = now_s(), before = *acc;
    c->bias_correction = true;
    say(c, "escalate: bias correction");
    qf_status st =
        verify_current(c, "bias correction", t0,
                       "empirical bias correction of the weight quantization error", ok, acc);
    if (!st && *acc < before) {
        c->bias_correction = false;
        *acc = before;
    }
    return st;
}

/* GPTQ rounding, where some layer's weights are below 8 bits (at 8 bits
 * nearest rounding's error is already small next to the activations'). */
static qf_status escalate_gptq(cp_ctx *c, bool *ok, double *acc) {
    bool narrow = false;
    for (int i = 0; i < c->n_layers; i++)
        narrow |= c->layers[i].w_bits < 8;
    if (!narrow) return QF_OK;
    double t0 = now_s(), before = *acc;
    c->gptq = true;
    say(c, "escalate: GPTQ rounding");
    qf_status st = verify_current(c, "GPTQ rounding", t0,
                                  "weights rounded column by column against the layer inputs "
                                  "(GPTQ) instead of to nearest",
                                  ok, acc);
    if (!st && *acc < before) {
        c->gptq = false;
        *acc = before;
    }
    return st;
}

/* Most sensitive layer that can still be raised: weights below 8 bits by
 * their estimated loss, else activations still at 8 bits by the 4-bit
 * probe's drop. Returns the layer index or -1. */
static int pick_raise(const cp_ctx *c, bool *act) {
    int best = -1;
    double bl = -INFINITY;
    for (int i = 0; i < c->n_layers; i++) {
        double l = est_loss(&c->layers[i], c->layers[i].w_bits);
        if (c->layers[i].w_bits < 8 && l > bl) {
            bl = l;
            best = i;
        }
    }
    *act = false;
    if (best >= 0) return best;
    for (int i = 0; i < c->n_layers; i++) {
        double l = est_loss(&c->layers[i], 4);
        if (c->layers[i].act_bits < 16 && l > bl) {
            bl = l;
            best = i;
        }
    }
    *act = best >= 0;
    return best;
}

static qf_status escalate_raise(cp_ctx *c, bool *ok, double *acc) {
    for (int r = 0; r < MAX_RAISES && !*ok; r++) {
        double t0 = now_s();
        bool act;
        int i = pick_raise(c, &act);
        if (i < 0) break;
        cp_layer *L = &c->layers[i];
        char note[200];
        if (act) {
            L->act_bits = 16;
            snprintf(note, sizeof note, "%s: activations 8 -> 16 bits", L->name);
        } else {
            snprintf(note, sizeof note, "%s: weights %d -> 8 bits", L->name, L->w_bits);
            L->w_bits = 8;
        }
        say(c, "escalate: raise bits, %s", note);
        qf_status st = verify_current(c, "raise bits", t0, note, ok, acc);
        if (st) return st;
    }
    return QF_OK;
}

static qf_status escalate_qat(cp_ctx *c, bool *ok, double *acc) {
    double t0 = now_s();
    fill_cfg(c);
    qf_qat_options qo;
    memset(&qo, 0, sizeof qo);
    qf_train_options_default(&qo.train);
    qo.train.epochs = c->o->qat_epochs > 0 ? c->o->qat_epochs : 1;
    qo.train.num_threads = c->o->num_threads;
    qo.train.lr.base_lr = 0.002f;
    qo.train.warmup_epochs = 0;
    qo.calib_limit = c->o->calib_limit;
    qf_dataset tv = head_view(c->train, c->o->train_limit > 0 ? c->o->train_limit : 10000);
    qf_dataset vv = head_view(c->val, c->ev.n);
    say(c, "escalate: quantization-aware training, %d epoch%s on %lld samples", qo.train.epochs,
        qo.train.epochs == 1 ? "" : "s", (long long)tv.n);
    qf_graph *qg = NULL;
    qf_qat_result qr;
    qf_status st = qf_qat(c->work, &tv, &vv, c->cfg, &qo, &qg, NULL, &qr, c->err);
    if (st) return st;
    char bl[256], label[300];
    bits_label(c, bl, sizeof bl);
    snprintf(label, sizeof label, "QAT %s", bl);
    int64_t size = 0;
    if ((st = consider(c, qg, label, acc, &size))) return st;
    *ok = acc_ok(c, *acc) && size_ok(c, size);
    char note[160];
    snprintf(note, sizeof note, "%d epoch%s, fake-quant val %.2f%% before, %.2f%% after",
             qo.train.epochs, qo.train.epochs == 1 ? "" : "s", 100 * qr.ptq_val_accuracy,
             100 * qr.fq_val_accuracy);
    summary_add(c, "QAT: %.2f%% (drop %.2f pts), %lld bytes%s\n", 100 * *acc,
                100 * (c->ev.float_acc - *acc), (long long)size, *ok ? " - met" : "");
    return add_step(c, "QAT", *acc, size, now_s() - t0, note);
}

/* Per-layer SQNR/bits of the best model, sensitivity, histograms. */
static qf_status report_layers(cp_ctx *c) {
    if (!c->rep || !c->best) return QF_OK;
    qf_verify_options vo = {.limit = QF_MIN(c->ev.n, (int64_t)1000),
                            .num_threads = c->o->num_threads};
    qf_verify_result vr;
    memset(&vr, 0, sizeof vr);
    qf_status st = qf_verify(c->work, c->best, c->val, &vo, &vr, c->err);
    for (int i = 0; !st && i < vr.n_layers; i++) {
        const qf_verify_layer *V = &vr.layers[i];
        double sens = NAN;
        for (int k = 0; k < c->n_layers; k++)
            if (strcmp(c->layers[k].name, V->node) == 0) sens = c->layers[k].sens[0];
        qf_report_layer rl = {.name = V->node,
                              .op = V->op,
                              .w_bits = V->w_bits,
                              .act_bits = V->bits,
                              .sqnr_db = V->sqnr_db,
                              .scale = V->scale,
                              .clip_fraction = V->clip_fraction,
                              .sensitivity = sens};
        st = qf_report_add_layer(c->rep, &rl, c->err);
    }
    qf_verify_result_free(&vr);
    /* the sensitivity ranking, most sensitive first */
    bool *used = qf_calloc((size_t)c->n_layers + 1, sizeof(bool));
    if (!used && !st) st = qf_errf(c->err, QF_ERR_NOMEM, "compress: out of memory");
    for (int r = 0; !st && r < c->n_layers; r++) {
        int b = -1;
        for (int i = 0; i < c->n_layers; i++)
            if (!used[i] && (b < 0 || c->layers[i].sens[0] > c->layers[b].sens[0])) b = i;
        used[b] = true;
        const cp_layer *L = &c->layers[b];
        char msg[320];
        snprintf(msg, sizeof msg,
                 "rank %d: quantized alone to 4 bits drops %.2f pts (SQNR %.1f dB), to 2 bits "
                 "%.2f pts (%.1f dB); %lld weights; last assignment tried w%d a%d",
                 r + 1, L->sens[0], L->sqnr[0], L->sens[1], L->sqnr[1], (long long)L->params,
                 L->w_bits, L->act_bits);
        qf_report_finding f = {.severity = QF_SEV_OK,
                               .check = "sensitivity",
                               .subject = L->name,
                               .value = L->sens[0],
                               .message = msg};
        st = qf_report_add_finding(c->rep, &f, c->err);
    }
    qf_free(used);
    if (st) return st;
    qf_graph *fopt = NULL;
    st = qf_graph_clone(c->work, &fopt, c->err);
    if (!st) st = qf_pass_optimize(fopt, c->err);
    if (!st)
        st = qf_cp_report_hists(c->rep, fopt, c->best, c->val, REPORT_HIST_LAYERS,
                                c->o->num_threads, c->err);
    qf_graph_free(fopt);
    return st;
}

void qf_compress_options_default(qf_compress_options *o) {
    memset(o, 0, sizeof *o);
    o->max_drop = 1.0;
    o->calib_limit = 500;
    o->sens_limit = 500;
    o->train_limit = 10000;
    o->qat_epochs = 1;
    o->prune_epochs = 1;
    o->num_threads = 1;
}

void qf_compress_result_free(qf_compress_result *r) {
    if (!r) return;
    qf_graph_free(r->model);
    r->model = NULL;
}

static qf_status check_options(const qf_compress_options *o, qf_err *err) {
    if (!(o->max_drop >= 0 && o->max_drop <= 100))
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: max drop %g not in [0, 100] points",
                       o->max_drop);
    if (o->size_budget < 0 || !(o->size_budget_frac >= 0 && o->size_budget_frac <= 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: size budget out of range");
    if (o->size_budget == 0 && o->size_budget_frac > 0 && o->float_size <= 0)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "compress: a fractional size budget needs the float model's size");
    if (!(o->prune_sparsity >= 0 && o->prune_sparsity < 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: prune sparsity %g not in [0, 1)",
                       (double)o->prune_sparsity);
    if (!(o->latency_budget_ms >= 0))
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: negative latency budget");
    return QF_OK;
}

static qf_status run(cp_ctx *c, const qf_graph *fg) {
    const qf_compress_options *o = c->o;
    qf_compress_result *res = c->res;
    qf_status st = step_check(c, fg);
    if (st) return st;
    double t0 = now_s();
    if ((st = qf_cp_eval_init(&c->ev, fg, c->val, o->val_limit, o->num_threads, c->err))) return st;
    res->float_acc = c->ev.float_acc;
    c->target_acc = c->ev.float_acc - o->max_drop / 100.0;
    say(c, "float: top-1 %.2f%% on %lld validation samples; target >= %.2f%%%s",
        100 * c->ev.float_acc, (long long)c->ev.n, 100 * c->target_acc,
        c->budget > 0 ? "" : " (no size budget)");
    if (c->budget > 0) say(c, "size budget: %lld bytes", (long long)c->budget);
    summary_add(c, "float: %.2f%% on %lld samples, %lld bytes\n", 100 * c->ev.float_acc,
                (long long)c->ev.n, (long long)o->float_size);
    if ((st = add_step(c, "float", c->ev.float_acc, o->float_size > 0 ? o->float_size : -1,
                       now_s() - t0, "input model, fp32 runtime")))
        return st;
    if ((st = record_config(c, "float", o->float_size > 0 ? o->float_size : -1, c->ev.float_acc)))
        return st;
    if ((st = qf_graph_clone(fg, &c->work, c->err))) return st;
    if (o->prune_sparsity > 0 && (st = step_prune(c))) return st;
    if ((st = find_layers(c))) return st;
    int64_t size8 = 0;
    double acc8 = 0;
    if ((st = step_ptq(c, &acc8, &size8))) return st;
    bool need_mixed = c->budget > 0 ? size8 > c->budget : acc_ok(c, acc8);
    bool mixed_tried = false;
    double acc = acc8;
    int64_t msize = size8;
    if (need_mixed) {
        if ((st = step_sensitivity(c))) return st;
        if ((st = step_mixed(c, size8, &mixed_tried, &acc, &msize))) return st;
    }
    /* verify the current assignment (already measured on the whole
     * validation set when it was tried) and escalate while it misses */
    bool ok = acc_ok(c, acc) && size_ok(c, msize);
    char vnote[200];
    snprintf(vnote, sizeof vnote, "%s on %lld validation samples: %s",
             mixed_tried ? "mixed precision" : "int8", (long long)c->ev.n,
             ok ? "target met" : "target missed, escalating");
    say(c, "verify: %s", vnote);
    summary_add(c, "verify: %.2f%% (drop %.2f pts), %lld bytes%s\n", 100 * acc,
                100 * (c->ev.float_acc - acc), (long long)msize, ok ? " - met" : "");
    if ((st = add_step(c, "verify", acc, msize, NAN, vnote))) return st;
    bool sens_done = need_mixed;
    if (!ok && !o->no_cle && (st = escalate_cle(c, &ok, &acc))) return st;
    if (!ok && (st = escalate_bias(c, &ok, &acc))) return st;
    if (!ok && (st = escalate_gptq(c, &ok, &acc))) return st;
    if (!ok) {
        if (!sens_done && (st = step_sensitivity(c))) return st;
        if ((st = escalate_raise(c, &ok, &acc))) return st;
    }
    if (!ok && o->qat_epochs >= 0 && (st = escalate_qat(c, &ok, &acc))) return st;
    return QF_OK;
}

qf_status qf_compress(const qf_graph *fg, const qf_dataset *train, const qf_dataset *val,
                      const qf_compress_options *o, qf_report *rep, qf_compress_result *res,
                      qf_err *err) {
    if (!fg || !train || !val || !o || !res)
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: missing argument");
    memset(res, 0, sizeof *res);
    res->latency_ms = NAN;
    qf_status st = check_options(o, err);
    if (!st) st = qf_compress_check_data(fg, train, "training data", err);
    if (!st) st = qf_compress_check_data(fg, val, "validation data", err);
    if (st) return st;
    cp_ctx c = {.o = o, .train = train, .val = val, .rep = rep, .res = res, .err = err};
    c.budget = o->size_budget > 0        ? o->size_budget
               : o->size_budget_frac > 0 ? (int64_t)(o->size_budget_frac * (double)o->float_size)
                                         : 0;
    res->budget_bytes = c.budget;
    c.cfg = qf_malloc(sizeof *c.cfg);
    if (!c.cfg) return qf_errf(err, QF_ERR_NOMEM, "compress: out of memory");
    st = run(&c, fg);
    if (!st && !c.best) st = qf_errf(err, QF_ERR_INTERNAL, "compress: no candidate was built");
    if (!st) {
        res->acc = c.best_acc;
        res->drop_points = 100.0 * (c.ev.float_acc - c.best_acc);
        res->size_bytes = c.best_size;
        res->size_met = size_ok(&c, c.best_size);
        res->latency_met = true;
        if (o->latency_budget_ms > 0) {
            st = qf_compress_latency(c.best, 15, o->num_threads, &res->latency_ms, err);
            if (!st) {
                res->latency_met = res->latency_ms <= o->latency_budget_ms;
                char note[128];
                snprintf(note, sizeof note, "median of 15 batch-1 runs: %.3f ms (budget %.3f ms)",
                         res->latency_ms, o->latency_budget_ms);
                summary_add(&c, "latency: %s %s\n", note, res->latency_met ? "met" : "missed");
                st = add_step(&c, "latency", c.best_acc, c.best_size, NAN, note);
            }
        }
        res->met = c.best_ok && res->latency_met;
        if (!st) st = report_layers(&c);
        if (!st && rep) {
            for (int i = 0; i < c.n_cfgs && !st; i++) {
                qf_report_config rc = {.label = c.cfgs[i].label,
                                       .size_bytes = c.cfgs[i].size,
                                       .accuracy = c.cfgs[i].acc,
                                       .chosen = i == c.best_cfg};
                st = qf_report_add_config(rep, &rc, err);
            }
            char msg[300];
            snprintf(msg, sizeof msg,
                     "%s: %s, top-1 %.2f%% (drop %.2f pts, limit %.2f), "
                     "%lld bytes",
                     res->met ? "target met" : "target missed", res->best_label, 100 * res->acc,
                     res->drop_points, o->max_drop, (long long)res->size_bytes);
            qf_report_finding f = {.severity = res->met ? QF_SEV_OK : QF_SEV_FAIL,
                                   .check = "compress",
                                   .subject = "model",
                                   .value = res->drop_points,
                                   .message = msg,
                                   .remedy = res->met ? NULL
                                                      : "allow a larger drop or size, more QAT "
                                                        "epochs, or a larger float model"};
            if (!st) st = qf_report_add_finding(rep, &f, err);
        }
        summary_add(&c, "result: %s (%s)\n", res->met ? "met" : "not met", res->best_label);
    }
    if (!st) {
        res->model = c.best;
        c.best = NULL;
    }
    qf_graph_free(c.best);
    qf_graph_free(c.work);
    qf_free(c.layers);
    qf_free(c.cfg);
    qf_free(c.cfgs);
    qf_cp_eval_free(&c.ev);
    return st;
}
