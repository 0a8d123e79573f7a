/* check_weights.c - the static part of qforge check: non-finite weights,
 * exploding/vanishing layer gains, all-zero output channels and outlier
 * ratios (thresholds documented in check.h). Needs no data. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "pipeline/check_internal.h"

/* A weight layer: its constant weight and how output channels lie in it. */
typedef struct wlayer {
    const qf_node *node;
    const qf_value *w;
    int64_t numel;
    int64_t channels; /* output channels */
    int64_t fan_in;   /* inputs feeding one output */
    int axis;         /* 0: channel blocks are contiguous; 1: [K, N] column c */
} wlayer;

/* Describe node n's weight if it is a Conv/Gemm/MatMul with a constant
 * float weight; false otherwise (including degenerate shapes). */
static bool weight_layer(const qf_graph *g, const qf_node *n, wlayer *L) {
    if (n->op != QF_OP_CONV && n->op != QF_OP_GEMM && n->op != QF_OP_MATMUL) return false;
    if (n->n_inputs < 2 || n->inputs[1] < 0) return false;
    const qf_value *w = &g->values[n->inputs[1]];
    if (!(w->flags & QF_VAL_CONST) || w->dtype != QF_DT_F32 || !w->data || w->rank < 2)
        return false;
    qf_tensor t = qf_value_tensor(w);
    int64_t numel = qf_tensor_numel(&t);
    if (numel <= 0) return false;
    memset(L, 0, sizeof *L);
    L->node = n;
    L->w = w;
    L->numel = numel;
    if (n->op == QF_OP_CONV) {
        L->axis = 0;
        L->channels = w->dims[0];
    } else if (n->op == QF_OP_GEMM && qf_node_attr_int(n, "transB", 0)) {
        if (w->rank != 2) return false;
        L->axis = 0;
        L->channels = w->dims[0];
    } else {
        if (w->rank != 2) return false; /* batched MatMul weights: not a layer we judge */
        L->axis = 1;
        L->channels = w->dims[1];
    }
    if (L->channels <= 0) return false;
    L->fan_in = numel / L->channels;
    return L->fan_in > 0;
}

/* Element i of output channel c. */
static float wat(const wlayer *L, int64_t c, int64_t i) {
    const float *d = L->w->data;
    return L->axis == 0 ? d[c * L->fan_in + i] : d[i * L->channels + c];
}

static bool all_finite(const wlayer *L) {
    const float *d = L->w->data;
    for (int64_t i = 0; i < L->numel; i++)
        if (!isfinite(d[i])) return false;
    return true;
}

/* Does value v feed a BatchNormalization (directly)? */
static bool feeds_bn(const qf_graph *g, int v) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == QF_OP_BATCH_NORM && g->nodes[i].n_inputs > 0 &&
            g->nodes[i].inputs[0] == v)
            return true;
    return false;
}

/* k-th smallest (0-based) of x[0..n) by quickselect; reorders x. */
static float select_kth(float *x, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float a = x[lo], b = x[lo + (hi - lo) / 2], c = x[hi];
        float p = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] < p)
                i++;
            while (x[j] > p)
                j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return x[k];
    }
    return x[k];
}

static qf_status check_nan(const qf_graph *g, qf_check_result *r, qf_err *err) {
    int tensors = 0, bad = 0;
    for (int v = 0; v < g->n_values; v++) {
        const qf_value *val = &g->values[v];
        if (!(val->flags & QF_VAL_CONST) || val->dtype != QF_DT_F32 || !val->data) continue;
        qf_tensor t = qf_value_tensor(val);
        int64_t n = qf_tensor_numel(&t);
        const float *d = val->data;
        int64_t nan = 0, inf = 0;
        for (int64_t i = 0; i < n; i++) {
            if (isnan(d[i]))
                nan++;
            else if (isinf(d[i]))
                inf++;
        }
        tensors++;
        if (nan + inf == 0) continue;
        bad++;
        const char *reader = NULL;
        for (int i = 0; i < g->n_nodes && !reader; i++)
            for (int j = 0; j < g->nodes[i].n_inputs; j++)
                if (g->nodes[i].inputs[j] == v) {
                    reader = g->nodes[i].name;
                    break;
                }
        char subj[160];
        if (reader)
            snprintf(subj, sizeof subj, "%s (%s)", reader, val->name);
        else
            snprintf(subj, sizeof subj, "%s", val->name);
        qf_status s = qf_check_add(
            r, QF_SEV_FAIL, "nan_inf", subj, (double)(nan + inf),
            "retrain or restore the checkpoint from before the divergence (lower the learning "
            "rate, clip gradients); the model cannot be quantized as is",
            err, "tensor '%s' holds %lld NaN and %lld Inf of %lld values", val->name,
            (long long)nan, (long long)inf, (long long)n);
        if (s) return s;
    }
    if (bad) return QF_OK;
    return qf_check_add(r, QF_SEV_OK, "nan_inf", "model", 0, NULL, err,
                        "all %d constant float tensors are finite", tensors);
}

static qf_status check_layers(const qf_graph *g, qf_check_result *r, qf_err *err) {
    int layers = 0, scale_bad = 0, dead_bad = 0, out_bad = 0, bn_skipped = 0;
    double r_min = INFINITY, r_max = 0, out_max = 0;
    float *tmp = NULL;
    int64_t tmp_cap = 0;
    qf_status s = QF_OK;
    for (int ni = 0; ni < g->n_nodes && !s; ni++) {
        wlayer L;
        if (!weight_layer(g, &g->nodes[ni], &L) || !all_finite(&L)) continue;
        layers++;
        const char *name = L.node->name;
        const float *d = L.w->data;
        double sum = 0, sum2 = 0, amax = 0;
        for (int64_t i = 0; i < L.numel; i++) {
            sum += d[i];
            sum2 += (double)d[i] * d[i];
            amax = QF_MAX(amax, fabs((double)d[i]));
        }
        double mean = sum / (double)L.numel;
        double var = QF_MAX(0.0, sum2 / (double)L.numel - mean * mean);
        double sd = sqrt(var);

        /* exploding / vanishing gain */
        double gain = sd * sqrt((double)L.fan_in);
        int out_v = L.node->n_outputs > 0 ? L.node->outputs[0] : -1;
        if (out_v >= 0 && feeds_bn(g, out_v)) {
            bn_skipped++;
        } else {
            r_min = QF_MIN(r_min, gain);
            r_max = QF_MAX(r_max, gain);
            if (gain > QF_CHECK_SCALE_HI) {
                scale_bad++;
                s = qf_check_add(r, QF_SEV_WARN, "weight_scale", name, gain,
                                 "check the initialization and learning rate; add weight decay "
                                 "or normalization (BatchNorm) after this layer",
                                 err,
                                 "exploding weights: std %.4g x sqrt(fan_in %lld) = %.3g > %g "
                                 "(activations grow about %.3gx here)",
                                 sd, (long long)L.fan_in, gain, QF_CHECK_SCALE_HI, gain);
            } else if (gain < QF_CHECK_SCALE_LO) {
                scale_bad++;
                s = qf_check_add(r, QF_SEV_WARN, "weight_scale", name, gain,
                                 "check the initialization (He/LeCun) and weight decay strength; "
                                 "the signal shrinks through this layer",
                                 err, "vanishing weights: std %.4g x sqrt(fan_in %lld) = %.3g < %g",
                                 sd, (long long)L.fan_in, gain, QF_CHECK_SCALE_LO);
            }
            if (s) break;
        }

        /* all-zero output channels */
        int64_t dead = 0, first_dead = -1;
        for (int64_t c = 0; c < L.channels; c++) {
            bool zero = true;
            for (int64_t i = 0; i < L.fan_in && zero; i++)
                zero = wat(&L, c, i) == 0.0f;
            if (zero) {
                if (first_dead < 0) first_dead = c;
                dead++;
            }
        }
        if (dead) {
            dead_bad++;
            s = qf_check_add(r, QF_SEV_WARN, "dead_weights", name, (double)dead,
                             "remove the channels (qforge prune --structured) or retrain; "
                             "they output a constant",
                             err,
                             "%lld of %lld output channels have all-zero weights "
                             "(first: channel %lld)",
                             (long long)dead, (long long)L.channels, (long long)first_dead);
            if (s) break;
        }

        /* outlier ratio */
        if (amax > 0) {
            double ratio;
            char how[96];
            if (L.numel >= QF_CHECK_OUTLIER_MIN_N) {
                if (L.numel > tmp_cap) {
                    float *nt = qf_realloc(tmp, sizeof(float) * (size_t)L.numel);
                    if (!nt) {
                        s = qf_errf(err, QF_ERR_NOMEM, "out of memory checking '%s'", name);
                        break;
                    }
                    tmp = nt;
                    tmp_cap = L.numel;
                }
                for (int64_t i = 0; i < L.numel; i++)
                    tmp[i] = fabsf(d[i]);
                /* rank ceil(0.999 n), 1-based: the value below which 99.9% lie */
                int64_t k = (int64_t)ceil(0.999 * (double)L.numel) - 1;
                double p = select_kth(tmp, L.numel, k);
                ratio = p > 0 ? amax / p : INFINITY;
                snprintf(how, sizeof how, "max|w| %.4g / p99.9|w| %.4g", amax, p);
                if (ratio > QF_CHECK_OUTLIER_P999) {
                    out_bad++;
                    s = qf_check_add(r, QF_SEV_WARN, "outliers", name, ratio,
                                     "quantize per channel, or clip with percentile/mse "
                                     "calibration (--method mse)",
                                     err,
                                     "%s = %.3g > %g: a per-tensor scale would spend "
                                     "%.1f bits on a few outliers",
                                     how, ratio, QF_CHECK_OUTLIER_P999, log2(ratio));
                }
            } else {
                ratio = sd > 0 ? amax / sd : INFINITY;
                snprintf(how, sizeof how, "max|w| %.4g / std %.4g", amax, sd);
                if (ratio > QF_CHECK_OUTLIER_STD) {
                    out_bad++;
                    s = qf_check_add(r, QF_SEV_WARN, "outliers", name, ratio,
                                     "quantize per channel, or clip with percentile/mse "
                                     "calibration (--method mse)",
                                     err, "%s = %.3g > %g: a few weights dominate the range", how,
                                     ratio, QF_CHECK_OUTLIER_STD);
                }
            }
            if (isfinite(ratio)) out_max = QF_MAX(out_max, ratio);
        }
    }
    qf_free(tmp);
    if (s) return s;
    if (!scale_bad) {
        if (layers - bn_skipped > 0)
            s = qf_check_add(r, QF_SEV_OK, "weight_scale", "model", r_max, NULL, err,
                             "gain std*sqrt(fan_in) in [%.3g, %.3g] over %d layer(s) (%d "
                             "followed by BatchNorm not judged)",
                             r_min, r_max, layers - bn_skipped, bn_skipped);
        else
            s = qf_check_add(r, QF_SEV_OK, "weight_scale", "model", NAN, NULL, err,
                             "%d weight layer(s), all followed by BatchNorm (scale-invariant)",
                             layers);
    }
    if (!s && !dead_bad)
        s = qf_check_add(r, QF_SEV_OK, "dead_weights", "model", 0, NULL, err,
                         "no all-zero output channels in %d weight layer(s)", layers);
    if (!s && !out_bad)
        s = qf_check_add(r, QF_SEV_OK, "outliers", "model", out_max, NULL, err,
                         "%d weight layer(s): largest outlier ratio %.3g", layers, out_max);
    return s;
}

qf_status qf_check_weights(const qf_graph *g, qf_check_result *r, qf_err *err) {
    qf_status s = check_nan(g, r, err);
    if (!s) s = check_layers(g, r, err);
    return s;
}

qf_status qf_check_weight_hists(const qf_graph *g, qf_report *rep, int max_layers, qf_err *err) {
    int shown = 0;
    for (int ni = 0; ni < g->n_nodes && shown < max_layers; ni++) {
        wlayer L;
        if (!weight_layer(g, &g->nodes[ni], &L) || !all_finite(&L)) continue;
        char note[160];
        snprintf(note, sizeof note, "%s weight %s: %lld values, %lld output channels",
                 L.node->op_type, L.w->name, (long long)L.numel, (long long)L.channels);
        qf_status s = qf_report_add_hist_values(rep, L.node->name, QF_HIST_WEIGHT, L.w->data,
                                                (size_t)L.numel, 80, NAN, NAN, note, err);
        if (s) return s;
        shown++;
    }
    return QF_OK;
}
