/* check_data.c - the part of qforge check that runs the float model on
 * data: never-activated ReLU channels, BatchNorm running statistics against
 * the statistics of the BN input on the data, non-finite activations, and
 * top-1 on the validation and training sets (the overfitting gap). An
 * observer on the session sees every node's outputs; the graph runs as
 * imported, so BatchNormalization nodes are still there. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/check_internal.h"
#include "runtime/runtime.h"

typedef struct relu_stat {
    int node, value;
    int64_t channels; /* 0 until the first batch */
    int64_t *active;  /* per channel: elements > 0 seen */
} relu_stat;

typedef struct bn_stat {
    int node, in_value;
    int64_t channels;
    double *sum, *sum2;  /* per channel over N x spatial */
    int64_t per_channel; /* elements accumulated per channel */
    bool bad_shape;
} bn_stat;

typedef struct dctx {
    const qf_graph *g;
    relu_stat *relu;
    int n_relu;
    bn_stat *bn;
    int n_bn;
    int nan_node; /* first node with a non-finite output, -1 */
    int64_t nan_count;
    bool collect; /* false on the training pass: accuracy only */
} dctx;

/* Channels and inner (spatial) size of a [N, C, ...] tensor; [N] -> C 1. */
static void chan_layout(const qf_tensor *t, int64_t *n, int64_t *c, int64_t *inner) {
    *n = t->rank > 0 ? t->dims[0] : 1;
    *c = t->rank > 1 ? t->dims[1] : 1;
    *inner = 1;
    for (int k = 2; k < t->rank; k++)
        *inner *= t->dims[k];
}

static qf_status observe_relu(relu_stat *rs, const qf_tensor *t) {
    int64_t n, c, inner;
    chan_layout(t, &n, &c, &inner);
    if (rs->channels == 0) {
        rs->active = qf_calloc((size_t)(c > 0 ? c : 1), sizeof(int64_t));
        if (!rs->active) return QF_ERR_NOMEM;
        rs->channels = c;
    }
    if (c != rs->channels) return QF_OK; /* shape changed between batches: keep the first */
    const float *x = t->data;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *p = x + (b * c + ch) * inner;
            int64_t on = 0;
            for (int64_t i = 0; i < inner; i++)
                on += p[i] > 0;
            rs->active[ch] += on;
        }
    return QF_OK;
}

static qf_status observe_bn(bn_stat *bs, const qf_tensor *t) {
    int64_t n, c, inner;
    chan_layout(t, &n, &c, &inner);
    if (bs->channels == 0) {
        bs->sum = qf_calloc((size_t)(c > 0 ? c : 1), sizeof(double));
        bs->sum2 = qf_calloc((size_t)(c > 0 ? c : 1), sizeof(double));
        if (!bs->sum || !bs->sum2) return QF_ERR_NOMEM;
        bs->channels = c;
    }
    if (c != bs->channels) {
        bs->bad_shape = true;
        return QF_OK;
    }
    const float *x = t->data;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *p = x + (b * c + ch) * inner;
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < inner; i++) {
                s += p[i];
                s2 += (double)p[i] * p[i];
            }
            bs->sum[ch] += s;
            bs->sum2[ch] += s2;
        }
    bs->per_channel += n * inner;
    return QF_OK;
}

static qf_status observe_value(dctx *c, int v, const qf_tensor *t) {
    for (int i = 0; i < c->n_relu; i++)
        if (c->relu[i].value == v) {
            qf_status s = observe_relu(&c->relu[i], t);
            if (s) return s;
        }
    for (int i = 0; i < c->n_bn; i++)
        if (c->bn[i].in_value == v) {
            qf_status s = observe_bn(&c->bn[i], t);
            if (s) return s;
        }
    return QF_OK;
}

static qf_status observer(void *user, const qf_graph *g, int node, const qf_tensor *out,
                          int n_out) {
    dctx *c = user;
    if (!c->collect) return QF_OK;
    const qf_node *nd = &g->nodes[node];
    for (int j = 0; j < n_out; j++) {
        if (!out[j].data || out[j].dtype != QF_DT_F32 || nd->outputs[j] < 0) continue;
        int64_t n = qf_tensor_numel(&out[j]);
        const float *x = out[j].data;
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += !isfinite(x[i]);
        if (bad) {
            if (c->nan_node < 0) c->nan_node = node;
            c->nan_count += bad;
            continue; /* statistics of a broken tensor mean nothing */
        }
        qf_status s = observe_value(c, nd->outputs[j], &out[j]);
        if (s) return s;
    }
    return QF_OK;
}

/* Run the model over up to `limit` samples of ds; counts top-1 when the
 * data is labelled and the output is [N, classes]. */
static qf_status run_dataset(qf_session *s, const qf_graph *g, dctx *c, const qf_dataset *ds,
                             int64_t limit, int batch, const qf_check_options *o, int64_t done0,
                             int64_t total_all, int64_t *n_run, int64_t *correct, bool *labelled,
                             qf_err *err) {
    const qf_value *iv = &g->values[g->inputs[0]];
    int64_t per = 1;
    for (int k = 1; k < iv->rank; k++)
        per *= iv->dims[k] > 0 ? iv->dims[k] : 1;
    if (iv->rank < 1 || per != ds->sample_numel)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: samples have %lld values, model input '%s' takes %lld",
                       ds->source ? ds->source : "dataset", (long long)ds->sample_numel, iv->name,
                       (long long)per);
    int64_t total = QF_MIN(limit, ds->n);
    size_t nfl;
    if (!qf_mul_size((size_t)batch, (size_t)per, &nfl) || !qf_mul_size(nfl, sizeof(float), &nfl))
        return qf_errf(err, QF_ERR_INVALID_ARG, "check: batch of %d samples is too large", batch);
    float *in = qf_malloc_aligned(nfl);
    int32_t *labels = qf_malloc(sizeof(int32_t) * (size_t)batch);
    qf_status st = QF_OK;
    if (!in || !labels) st = qf_errf(err, QF_ERR_NOMEM, "out of memory running the check");
    qf_tensor t = {.dtype = QF_DT_F32, .rank = iv->rank, .data = in};
    for (int k = 0; k < iv->rank; k++)
        t.dims[k] = iv->dims[k] > 0 ? iv->dims[k] : 1;
    *labelled = true;
    for (int64_t i = 0; i < total && !st; i += batch) {
        int64_t cnt = QF_MIN((int64_t)batch, total - i);
        if ((st = qf_dataset_fill(ds, i, cnt, in, labels, err))) break;
        int64_t rows = cnt;
        if (iv->dims[0] > 0 && cnt < iv->dims[0]) {
            /* a fixed batch dim: zero-pad the last batch; padded rows are not
             * counted, but their activations are seen by the statistics, so
             * the statistics skip a padded batch entirely */
            memset(in + cnt * per, 0, sizeof(float) * (size_t)((iv->dims[0] - cnt) * per));
            rows = iv->dims[0];
        }
        bool collect = c->collect;
        if (rows != cnt) c->collect = false;
        t.dims[0] = rows;
        /* a BN reading the graph input itself sees the batch before the run */
        if (c->collect && rows == cnt) {
            int v = g->inputs[0];
            if ((st = observe_value(c, v, &t))) {
                st = qf_errf(err, st, "out of memory running the check");
                break;
            }
        }
        qf_tensor out;
        st = qf_session_run(s, &t, 1, &out, 1, err);
        c->collect = collect;
        if (st) break;
        int64_t on = qf_tensor_numel(&out);
        if (out.dtype == QF_DT_F32 && out.rank >= 1 && out.dims[0] == rows && on > 0 &&
            on % rows == 0) {
            int64_t classes = on / rows;
            const float *sc = out.data;
            for (int64_t b = 0; b < cnt; b++) {
                if (labels[b] < 0 || labels[b] >= classes) {
                    *labelled = false;
                    continue;
                }
                const float *row = sc + b * classes;
                int64_t best = 0;
                for (int64_t k = 1; k < classes; k++)
                    if (row[k] > row[best]) best = k;
                *correct += best == labels[b];
            }
        } else {
            *labelled = false;
        }
        *n_run += cnt;
        if (o->progress) o->progress(o->progress_user, done0 + i + cnt, total_all);
    }
    qf_free_aligned(in);
    qf_free(labels);
    return st;
}

static qf_status relu_findings(const qf_graph *g, dctx *c, qf_check_result *r, qf_err *err) {
    int bad = 0, seen = 0;
    for (int i = 0; i < c->n_relu; i++) {
        relu_stat *rs = &c->relu[i];
        if (rs->channels <= 0) continue;
        seen++;
        int64_t dead = 0, first = -1;
        for (int64_t ch = 0; ch < rs->channels; ch++)
            if (rs->active[ch] == 0) {
                if (first < 0) first = ch;
                dead++;
            }
        if (!dead) continue;
        bad++;
        double frac = (double)dead / (double)rs->channels;
        bool all = dead == rs->channels;
        qf_status s = qf_check_add(
            r, all ? QF_SEV_FAIL : QF_SEV_WARN, "dead_relu", g->nodes[rs->node].name, frac,
            all ? "every channel is dead: the model ignores its input from here on; retrain "
                  "with a lower learning rate or LeakyReLU"
                : "prune these channels (qforge prune --structured); if many, lower the learning "
                  "rate or use LeakyReLU",
            err, "%lld of %lld channels never activate on the data (first: channel %lld)",
            (long long)dead, (long long)rs->channels, (long long)first);
        if (s) return s;
    }
    if (bad || !seen) return QF_OK;
    return qf_check_add(r, QF_SEV_OK, "dead_relu", "model", 0, NULL, err,
                        "every channel of %d Relu outputs activates on the data", seen);
}

static qf_status bn_findings(const qf_graph *g, dctx *c, qf_check_result *r, qf_err *err) {
    int bad = 0, seen = 0;
    double z_all = 0;
    for (int i = 0; i < c->n_bn; i++) {
        bn_stat *bs = &c->bn[i];
        const qf_node *nd = &g->nodes[bs->node];
        if (bs->channels <= 0 || bs->per_channel <= 0 || bs->bad_shape) continue;
        const qf_value *mv = &g->values[nd->inputs[3]], *vv = &g->values[nd->inputs[4]];
        qf_tensor mt = qf_value_tensor(mv), vt = qf_value_tensor(vv);
        if (qf_tensor_numel(&mt) != bs->channels || qf_tensor_numel(&vt) != bs->channels) continue;
        seen++;
        const float *mu = mv->data, *s2 = vv->data;
        double eps = qf_node_attr_float(nd, "epsilon", 1e-5f);
        double zmax = 0, rworst = 1;
        int64_t zc = 0, rc = 0, nz = 0, nr = 0;
        for (int64_t ch = 0; ch < bs->channels; ch++) {
            double m = bs->sum[ch] / (double)bs->per_channel;
            double v = QF_MAX(0.0, bs->sum2[ch] / (double)bs->per_channel - m * m);
            double den = (double)s2[ch] + eps;
            if (!(den > 0)) continue; /* negative running var: caught as bad below */
            double z = fabs(m - mu[ch]) / sqrt(den);
            double ratio = (v + eps) / den;
            if (z > zmax) {
                zmax = z;
                zc = ch;
            }
            /* worst ratio by distance from 1 in log terms */
            if (fabs(log(ratio)) > fabs(log(rworst))) {
                rworst = ratio;
                rc = ch;
            }
            nz += z > QF_CHECK_BN_Z;
            nr += ratio > QF_CHECK_BN_RATIO || ratio < 1.0 / QF_CHECK_BN_RATIO;
        }
        z_all = QF_MAX(z_all, zmax);
        if (!nz && !nr) continue;
        bad++;
        qf_status s;
        if (nz)
            s = qf_check_add(r, QF_SEV_WARN, "bn_stats", nd->name, zmax,
                             "recalibrate the BatchNorm statistics on representative data (a few "
                             "hundred batches in train mode, no weight update), or check the "
                             "preprocessing (--mean/--std/--scale)",
                             err,
                             "running mean is off: %lld of %lld channels have |data mean - "
                             "running mean| > %g std (worst %.3g, channel %lld); worst variance "
                             "ratio %.3g (channel %lld)",
                             (long long)nz, (long long)bs->channels, QF_CHECK_BN_Z, zmax,
                             (long long)zc, rworst, (long long)rc);
        else
            s = qf_check_add(r, QF_SEV_WARN, "bn_stats", nd->name, rworst,
                             "recalibrate the BatchNorm statistics on representative data, or "
                             "check the preprocessing (--mean/--std/--scale)",
                             err,
                             "running variance is off: %lld of %lld channels have data/"
                             "running variance outside [1/%g, %g] (worst %.3g, channel %lld)",
                             (long long)nr, (long long)bs->channels, QF_CHECK_BN_RATIO,
                             QF_CHECK_BN_RATIO, rworst, (long long)rc);
        if (s) return s;
    }
    if (bad || !seen) return QF_OK;
    return qf_check_add(r, QF_SEV_OK, "bn_stats", "model", z_all, NULL, err,
                        "%d BatchNorm nodes match the data (largest mean offset %.3g std)", seen,
                        z_all);
}

static void ctx_free(dctx *c) {
    for (int i = 0; i < c->n_relu; i++)
        qf_free(c->relu[i].active);
    for (int i = 0; i < c->n_bn; i++) {
        qf_free(c->bn[i].sum);
        qf_free(c->bn[i].sum2);
    }
    qf_free(c->relu);
    qf_free(c->bn);
}

/* Relu outputs and BN inputs (with constant float statistics) to watch. */
static qf_status ctx_init(dctx *c, const qf_graph *g, qf_err *err) {
    memset(c, 0, sizeof *c);
    c->g = g;
    c->nan_node = -1;
    c->relu = qf_calloc((size_t)g->n_nodes + 1, sizeof(relu_stat));
    c->bn = qf_calloc((size_t)g->n_nodes + 1, sizeof(bn_stat));
    if (!c->relu || !c->bn) return qf_errf(err, QF_ERR_NOMEM, "out of memory running the check");
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *nd = &g->nodes[i];
        if (nd->op == QF_OP_RELU && nd->n_outputs > 0 && nd->outputs[0] >= 0) {
            c->relu[c->n_relu].node = i;
            c->relu[c->n_relu].value = nd->outputs[0];
            c->n_relu++;
        } else if (nd->op == QF_OP_BATCH_NORM && nd->n_inputs >= 5 && nd->inputs[0] >= 0) {
            bool ok = true;
            for (int k = 3; k < 5; k++) {
                int v = nd->inputs[k];
                ok = ok && v >= 0 && (g->values[v].flags & QF_VAL_CONST) &&
                     g->values[v].dtype == QF_DT_F32 && g->values[v].data;
            }
            if (!ok) continue;
            c->bn[c->n_bn].node = i;
            c->bn[c->n_bn].in_value = nd->inputs[0];
            c->n_bn++;
        }
    }
    return QF_OK;
}

qf_status qf_check_data(const qf_graph *g0, const qf_check_options *o, qf_check_result *r,
                        qf_err *err) {
    if (g0->n_inputs != 1)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: check runs models on data only when they have one input (this one "
                       "has %d)",
                       g0->source_path ? g0->source_path : "model", g0->n_inputs);
    /* validate both datasets before any long work */
    const qf_value *iv0 = &g0->values[g0->inputs[0]];
    int64_t per = 1;
    for (int k = 1; k < iv0->rank; k++)
        per *= iv0->dims[k] > 0 ? iv0->dims[k] : 1;
    const qf_dataset *sets[2] = {o->data, o->train};
    for (int k = 0; k < 2; k++)
        if (sets[k] && (iv0->rank < 1 || sets[k]->sample_numel != per))
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: samples have %lld values, model input '%s' takes %lld",
                           sets[k]->source ? sets[k]->source : "dataset",
                           (long long)sets[k]->sample_numel, iv0->name, (long long)per);
    qf_graph *gc = NULL;
    qf_model *m = NULL;
    qf_session *s = NULL;
    qf_status st = qf_graph_clone(g0, &gc, err);
    if (st) return st;
    if ((st = qf_model_from_graph(gc, g0->source_path ? g0->source_path : "model", &m, err))) {
        qf_graph_free(gc);
        return st;
    }
    const qf_graph *g = qf_model_graph(m);
    dctx c;
    if ((st = ctx_init(&c, g, err))) goto out;
    qf_session_options so = {.num_threads = o->num_threads > 0 ? o->num_threads : 1};
    if ((st = qf_session_create(m, &so, &s, err))) goto out;
    qf_session_set_observer(s, observer, &c);
    int64_t limit = o->limit > 0 ? o->limit : QF_CHECK_DEFAULT_LIMIT;
    int batch = o->batch > 0 ? o->batch : 32;
    if (g->values[g->inputs[0]].dims[0] > 0) batch = (int)g->values[g->inputs[0]].dims[0];
    int64_t total =
        (o->data ? QF_MIN(limit, o->data->n) : 0) + (o->train ? QF_MIN(limit, o->train->n) : 0);
    int64_t done = 0;
    bool lab_d = false, lab_t = false;
    int64_t cor_d = 0, cor_t = 0;
    /* statistics come from the validation data, or from the training data
     * when that is all there is */
    if (o->data) {
        c.collect = true;
        st = run_dataset(s, g, &c, o->data, limit, batch, o, 0, total, &r->samples_data, &cor_d,
                         &lab_d, err);
        done = r->samples_data;
    }
    if (!st && o->train) {
        c.collect = !o->data;
        st = run_dataset(s, g, &c, o->train, limit, batch, o, done, total, &r->samples_train,
                         &cor_t, &lab_t, err);
    }
    if (st) goto out;
    if (c.nan_node >= 0) {
        st = qf_check_add(r, QF_SEV_FAIL, "nan_activation", g->nodes[c.nan_node].name,
                          (double)c.nan_count,
                          "look for overflowing weights, a division by zero or log of zero "
                          "upstream; check the input preprocessing",
                          err,
                          "non-finite activations on the data (%lld values in all, first "
                          "at this node)",
                          (long long)c.nan_count);
    } else {
        st = qf_check_add(r, QF_SEV_OK, "nan_activation", "model", 0, NULL, err,
                          "all activations finite on %lld samples",
                          (long long)(o->data ? r->samples_data : r->samples_train));
    }
    if (!st) st = relu_findings(g, &c, r, err);
    if (!st) st = bn_findings(g, &c, r, err);
    if (st) goto out;
    if (o->data && lab_d && r->samples_data > 0) {
        r->top1_data = (double)cor_d / (double)r->samples_data;
        st = qf_check_add(r, QF_SEV_OK, "accuracy", o->data->source ? o->data->source : "data",
                          100 * r->top1_data, NULL, err, "top-1 %.2f%% on %lld samples",
                          100 * r->top1_data, (long long)r->samples_data);
    }
    if (!st && o->train && lab_t && r->samples_train > 0) {
        r->top1_train = (double)cor_t / (double)r->samples_train;
        st = qf_check_add(r, QF_SEV_OK, "accuracy", o->train->source ? o->train->source : "train",
                          100 * r->top1_train, NULL, err, "top-1 %.2f%% on %lld training samples",
                          100 * r->top1_train, (long long)r->samples_train);
    }
    if (!st && isfinite(r->top1_data) && isfinite(r->top1_train)) {
        double gap = 100 * (r->top1_train - r->top1_data);
        if (gap > QF_CHECK_GAP_POINTS)
            st = qf_check_add(r, QF_SEV_WARN, "overfit", "model", gap,
                              "regularize (weight decay, augmentation, dropout), stop earlier, "
                              "or collect more data; judge compression on the validation set",
                              err,
                              "train top-1 %.2f%% vs validation %.2f%%: a gap of %.2f points "
                              "> %g suggests overfitting",
                              100 * r->top1_train, 100 * r->top1_data, gap, QF_CHECK_GAP_POINTS);
        else
            st = qf_check_add(r, QF_SEV_OK, "overfit", "model", gap, NULL, err,
                              "train %.2f%% vs validation %.2f%%: gap %.2f points (<= %g)",
                              100 * r->top1_train, 100 * r->top1_data, gap, QF_CHECK_GAP_POINTS);
    }
out:
    ctx_free(&c);
    qf_session_free(s);
    qf_model_free(m);
    return st;
}
