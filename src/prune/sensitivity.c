/* sensitivity.c - per-layer pruning sensitivity and automatic per-layer
 * sparsity under a global target.
 *
 * The scan prunes one layer at a time (magnitude, layer-wise) at each level
 * on a private copy of the graph, measures top-1 and cross-entropy with the
 * float runtime, and restores the layer; the structured scan does the same
 * per channel group on fresh copies (removal changes shapes). qf_prune_auto
 * then spends a global budget of pruned weights greedily where the curves
 * say it costs least.
 */
#include <math.h>
#include <string.h>

#include "prune/prune.h"
#include "runtime/runtime.h"

static const float default_levels[] = {0.3f, 0.5f, 0.7f, 0.8f, 0.9f, 0.95f};

/* Shape of a batch of b samples for input 0 of g. */
static qf_status batch_shape(const qf_graph *g, const qf_dataset *d, int64_t b, qf_tensor *t,
                             qf_err *err) {
    memset(t, 0, sizeof *t);
    t->dtype = QF_DT_F32;
    const qf_value *in = &g->values[g->inputs[0]];
    bool use_model = in->rank >= 2;
    int64_t numel = 1;
    for (int i = 1; use_model && i < in->rank; i++) {
        if (in->dims[i] < 0) use_model = false;
        numel *= in->dims[i];
    }
    if (use_model && numel == d->sample_numel) {
        t->rank = in->rank;
        memcpy(t->dims, in->dims, sizeof(int64_t) * (size_t)in->rank);
    } else {
        if (d->rank + 1 > QF_MAX_DIMS)
            return qf_errf(err, QF_ERR_SHAPE, "%s: sample rank too high", d->source);
        t->rank = d->rank + 1;
        memcpy(t->dims + 1, d->dims, sizeof(int64_t) * (size_t)d->rank);
    }
    t->dims[0] = b;
    return QF_OK;
}

/* Top-1 and mean cross-entropy of a session over d. */
static qf_status eval_session(qf_session *s, const qf_graph *g, const qf_dataset *d, int batch,
                              float *acc, double *loss, qf_err *err) {
    if (g->n_inputs != 1 || g->n_outputs < 1)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: evaluation needs one input (has %d)",
                       g->source_path, g->n_inputs);
    if (d->n <= 0) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: dataset is empty", d->source);
    const qf_value *in = &g->values[g->inputs[0]];
    int64_t b = in->rank >= 1 && in->dims[0] > 0 ? in->dims[0] : (batch > 0 ? batch : 32);
    size_t nf;
    if (!qf_mul_size((size_t)b, (size_t)d->sample_numel, &nf))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: batch too large", d->source);
    float *x = qf_malloc_aligned(nf * sizeof(float));
    int32_t *lab = qf_malloc(sizeof(int32_t) * (size_t)b);
    qf_status st = QF_OK;
    if (!x || !lab) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", d->source);
    int64_t hits = 0, seen = 0;
    double ce = 0;
    bool fixed = in->rank >= 1 && in->dims[0] > 0;
    for (int64_t first = 0; !st && first < d->n; first += b) {
        int64_t cnt = QF_MIN(b, d->n - first);
        if (fixed && cnt < b) memset(x, 0, nf * sizeof(float));
        st = qf_dataset_fill(d, first, cnt, x, lab, err);
        if (st) break;
        qf_tensor t;
        st = batch_shape(g, d, fixed ? b : cnt, &t, err);
        if (st) break;
        t.data = x;
        qf_tensor out;
        st = qf_session_run(s, &t, 1, &out, 1, err);
        if (st) break;
        int64_t rows = out.rank >= 1 ? out.dims[0] : 1;
        int64_t classes = rows > 0 ? qf_tensor_numel(&out) / rows : 0;
        if (out.dtype != QF_DT_F32 || rows < cnt || classes < 1) {
            st = qf_errf(err, QF_ERR_SHAPE, "%s: output 0 is not [batch, classes] scores",
                         g->source_path);
            break;
        }
        const float *y = out.data;
        for (int64_t r = 0; r < cnt; r++) {
            const float *row = y + r * classes;
            int32_t l = lab[r];
            if (l < 0 || l >= classes) {
                st = qf_errf(err, QF_ERR_INVALID_ARG, "%s: label %d of sample %lld is not "
                             "among the model's %lld classes", d->source, (int)l,
                             (long long)(first + r), (long long)classes);
                break;
            }
            int64_t best = 0;
            float mx = row[0];
            for (int64_t c = 1; c < classes; c++)
                if (row[c] > mx) {
                    mx = row[c];
                    best = c;
                }
            double se = 0;
            for (int64_t c = 0; c < classes; c++) se += exp((double)row[c] - mx);
            ce += log(se) + mx - row[l];
            hits += best == l;
            seen++;
        }
    }
    qf_free_aligned(x);
    qf_free(lab);
    if (st) return st;
    *acc = (float)((double)hits / (double)seen);
    *loss = ce / (double)seen;
    return QF_OK;
}

/* A private runnable copy of g. */
static qf_status open_copy(const qf_graph *g, qf_model **m, qf_session **s, qf_err *err) {
    *m = NULL;
    *s = NULL;
    qf_graph *c = NULL;
    qf_status st = qf_graph_clone(g, &c, err);
    if (st) return st;
    st = qf_model_from_graph(c, g->source_path, m, err);
    if (st) {
        qf_graph_free(c);
        return st;
    }
    st = qf_session_create(*m, NULL, s, err);
    if (st) {
        qf_model_free(*m);
        *m = NULL;
    }
    return st;
}

qf_status qf_prune_evaluate(const qf_graph *g, const qf_dataset *d, int batch, float *acc,
                            double *loss, qf_err *err) {
    qf_model *m;
    qf_session *s;
    qf_status st = open_copy(g, &m, &s, err);
    if (st) return st;
    st = eval_session(s, qf_model_graph(m), d, batch, acc, loss, err);
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

void qf_sensitivity_free(qf_sensitivity *s) {
    if (!s) return;
    for (int i = 0; s->names && i < s->n_layers; i++) qf_free(s->names[i]);
    qf_free(s->names);
    qf_free(s->levels);
    qf_free(s->params);
    qf_free(s->acc);
    qf_free(s->loss);
    qf_free(s);
}

qf_status qf_prune_sensitivity(const qf_graph *g, const qf_dataset *d, const qf_sens_options *o,
                               qf_sensitivity **out, qf_err *err) {
    *out = NULL;
    const float *levels = o && o->levels ? o->levels : default_levels;
    int nl = o && o->levels ? o->n_levels : (int)QF_ARRAY_LEN(default_levels);
    int batch = o ? o->batch : 0;
    if (nl < 1) return qf_errf(err, QF_ERR_INVALID_ARG, "sensitivity: no levels");
    for (int k = 0; k < nl; k++)
        if (!(levels[k] >= 0.0f && levels[k] < 1.0f) || (k && levels[k] <= levels[k - 1]))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "sensitivity: levels must rise within [0, 1) (level %d is %g)", k,
                           levels[k]);
    qf_model *m;
    qf_session *ses;
    qf_status st = open_copy(g, &m, &ses, err);
    if (st) return st;
    qf_graph *c = qf_model_graph(m);
    qf_prunable *pl = NULL;
    int n = 0;
    qf_sensitivity *r = qf_calloc(1, sizeof *r);
    float *save = NULL;
    uint8_t *mask = NULL;
    if (!r) st = qf_errf(err, QF_ERR_NOMEM, "out of memory");
    if (!st) st = qf_prune_find_layers(c, &pl, &n, err);
    if (!st && !n) st = qf_errf(err, QF_ERR_INVALID_ARG, "%s: no prunable layers", g->source_path);
    if (!st) {
        r->n_layers = n;
        r->n_levels = nl;
        r->levels = qf_malloc(sizeof(float) * (size_t)nl);
        r->names = qf_calloc((size_t)n, sizeof(char *));
        r->params = qf_calloc((size_t)n, sizeof(int64_t));
        r->acc = qf_calloc((size_t)n * (size_t)nl, sizeof(float));
        r->loss = qf_calloc((size_t)n * (size_t)nl, sizeof(double));
        size_t maxn = 1;
        for (int i = 0; i < n; i++) maxn = QF_MAX(maxn, pl[i].n);
        save = qf_malloc(sizeof(float) * maxn);
        mask = qf_malloc(maxn);
        if (!r->levels || !r->names || !r->params || !r->acc || !r->loss || !save || !mask)
            st = qf_errf(err, QF_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        memcpy(r->levels, levels, sizeof(float) * (size_t)nl);
        st = eval_session(ses, c, d, batch, &r->base_acc, &r->base_loss, err);
    }
    for (int i = 0; i < n && !st; i++) {
        qf_value *v = &c->values[pl[i].value];
        r->names[i] = qf_strdup(c->nodes[pl[i].node].name);
        r->params[i] = (int64_t)pl[i].n;
        if (!r->names[i]) {
            st = qf_errf(err, QF_ERR_NOMEM, "out of memory");
            break;
        }
        /* the clone owns its constants: prune in place, restore after */
        float *w = v->data;
        memcpy(save, w, sizeof(float) * pl[i].n);
        for (int k = 0; k < nl && !st; k++) {
            memcpy(w, save, sizeof(float) * pl[i].n);
            st = qf_prune_magnitude_mask(w, pl[i].n, levels[k], mask, err);
            if (st) break;
            qf_prune_mask_apply(mask, w, pl[i].n);
            size_t at = (size_t)i * (size_t)nl + (size_t)k;
            st = eval_session(ses, c, d, batch, &r->acc[at], &r->loss[at], err);
        }
        memcpy(w, save, sizeof(float) * pl[i].n);
    }
    qf_free(save);
    qf_free(mask);
    qf_free(pl);
    qf_session_free(ses);
    qf_model_free(m);
    if (st) {
        qf_sensitivity_free(r);
        return st;
    }
    *out = r;
    return QF_OK;
}

/* Parameters of group i: the weights of its members. */
static int64_t group_params(const qf_graph *g, const qf_chan_group *gr) {
    int64_t p = 0;
    for (int k = 0; k < gr->n_members; k++) {
        const qf_node *n = &g->nodes[gr->members[k]];
        if (n->n_inputs < 2 || n->inputs[1] < 0) continue;
        qf_tensor t = qf_value_tensor(&g->values[n->inputs[1]]);
        if (t.data) p += qf_tensor_numel(&t);
    }
    return p;
}

qf_status qf_prune_sensitivity_structured(const qf_graph *g, const qf_dataset *d,
                                          const qf_sens_options *o, qf_prune_criterion crit,
                                          qf_sensitivity **out, qf_err *err) {
    *out = NULL;
    const float *levels = o && o->levels ? o->levels : default_levels;
    int nl = o && o->levels ? o->n_levels : (int)QF_ARRAY_LEN(default_levels);
    int batch = o ? o->batch : 0;
    if (nl < 1) return qf_errf(err, QF_ERR_INVALID_ARG, "sensitivity: no levels");
    for (int k = 0; k < nl; k++)
        if (!(levels[k] >= 0.0f && levels[k] < 1.0f) || (k && levels[k] <= levels[k - 1]))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "sensitivity: levels must rise within [0, 1) (level %d is %g)", k,
                           levels[k]);
    /* the analysis normalises its graph (Identity removal, unshared
     * constants): work on one normalised copy so group order is stable */
    qf_graph *base = NULL;
    qf_chan_groups *cg = NULL;
    qf_status st = qf_graph_clone(g, &base, err);
    if (!st) st = qf_chan_groups_build(base, &cg, err);
    int ng = qf_chan_groups_count(cg);
    qf_sensitivity *r = st ? NULL : qf_calloc(1, sizeof *r);
    float *gs = NULL;
    if (!st && !r) st = qf_errf(err, QF_ERR_NOMEM, "out of memory");
    if (!st && !ng) st = qf_errf(err, QF_ERR_INVALID_ARG, "%s: no channel groups",
                                 g->source_path);
    if (!st) {
        r->n_layers = ng;
        r->n_levels = nl;
        r->levels = qf_malloc(sizeof(float) * (size_t)nl);
        r->names = qf_calloc((size_t)ng, sizeof(char *));
        r->params = qf_calloc((size_t)ng, sizeof(int64_t));
        r->acc = qf_calloc((size_t)ng * (size_t)nl, sizeof(float));
        r->loss = qf_calloc((size_t)ng * (size_t)nl, sizeof(double));
        gs = qf_calloc((size_t)ng, sizeof(float));
        if (!r->levels || !r->names || !r->params || !r->acc || !r->loss || !gs)
            st = qf_errf(err, QF_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        memcpy(r->levels, levels, sizeof(float) * (size_t)nl);
        st = qf_prune_evaluate(base, d, batch, &r->base_acc, &r->base_loss, err);
    }
    for (int i = 0; i < ng && !st; i++) {
        const qf_chan_group *gr = qf_chan_groups_get(cg, i);
        r->names[i] = qf_strdup(base->nodes[gr->members[0]].name);
        if (!r->names[i]) {
            st = qf_errf(err, QF_ERR_NOMEM, "out of memory");
            break;
        }
        /* a frozen group costs nothing and gains nothing: params 0 */
        r->params[i] = gr->frozen ? 0 : group_params(base, gr);
        for (int k = 0; k < nl && !st; k++) {
            size_t at = (size_t)i * (size_t)nl + (size_t)k;
            r->acc[at] = r->base_acc;
            r->loss[at] = r->base_loss;
            if (gr->frozen) continue;
            qf_graph *c = NULL;
            if ((st = qf_graph_clone(base, &c, err))) break;
            gs[i] = levels[k];
            qf_struct_options so = {.crit = crit, .group_sparsity = gs, .n_group_sparsity = ng};
            st = qf_prune_structured(c, &so, err);
            gs[i] = 0.0f;
            if (!st) st = qf_prune_evaluate(c, d, batch, &r->acc[at], &r->loss[at], err);
            qf_graph_free(c);
        }
    }
    qf_free(gs);
    qf_chan_groups_free(cg);
    qf_graph_free(base);
    if (st) {
        qf_sensitivity_free(r);
        return st;
    }
    *out = r;
    return QF_OK;
}

qf_status qf_prune_auto(const qf_sensitivity *s, float target, float *layer_sparsity,
                        float *est_acc, qf_err *err) {
    if (!(target >= 0.0f && target < 1.0f))
        return qf_errf(err, QF_ERR_INVALID_ARG, "sparsity target %g is outside [0, 1)", target);
    double total = 0, maxp = 0;
    for (int i = 0; i < s->n_layers; i++) {
        total += (double)s->params[i];
        maxp += (double)s->params[i] * s->levels[s->n_levels - 1];
    }
    double want = (double)target * total;
    if (want > maxp + 0.5)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "sparsity target %g is beyond the highest scanned level %g", target,
                       s->levels[s->n_levels - 1]);
    /* level index per layer; -1 = unpruned */
    int *at = qf_malloc(sizeof(int) * (size_t)(s->n_layers + 1));
    if (!at) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->n_layers; i++) {
        at[i] = -1;
        layer_sparsity[i] = 0.0f;
    }
    double pruned = 0, drop = 0;
    while (pruned < want - 0.5) {
        int best = -1;
        double best_cost = 0, best_loss = 0;
        for (int i = 0; i < s->n_layers; i++) {
            if (at[i] + 1 >= s->n_levels) continue;
            float a0 = at[i] < 0 ? s->base_acc : s->acc[(size_t)i * s->n_levels + at[i]];
            double l0 = at[i] < 0 ? s->base_loss : s->loss[(size_t)i * s->n_levels + at[i]];
            float s0 = at[i] < 0 ? 0.0f : s->levels[at[i]];
            size_t nx = (size_t)i * s->n_levels + (size_t)(at[i] + 1);
            double gain = (double)s->params[i] * (s->levels[at[i] + 1] - s0);
            if (gain <= 0) continue;
            double cost = ((double)a0 - s->acc[nx]) / gain;
            double lcost = (s->loss[nx] - l0) / gain;
            if (best < 0 || cost < best_cost || (cost == best_cost && lcost < best_loss)) {
                best = i;
                best_cost = cost;
                best_loss = lcost;
            }
        }
        if (best < 0) break;
        int k = at[best] + 1;
        float s0 = at[best] < 0 ? 0.0f : s->levels[at[best]];
        float a0 = at[best] < 0 ? s->base_acc : s->acc[(size_t)best * s->n_levels + at[best]];
        float a1 = s->acc[(size_t)best * s->n_levels + k];
        double gain = (double)s->params[best] * (s->levels[k] - s0);
        if (pruned + gain > want) {
            /* land on the target: interpolate this layer's last step */
            double f = (want - pruned) / gain;
            layer_sparsity[best] = (float)(s0 + f * (s->levels[k] - s0));
            drop += f * ((double)a0 - a1);
            pruned = want;
            break;
        }
        at[best] = k;
        layer_sparsity[best] = s->levels[k];
        drop += (double)a0 - a1;
        pruned += gain;
    }
    qf_free(at);
    if (est_acc) *est_acc = (float)(s->base_acc - drop);
    return QF_OK;
}
