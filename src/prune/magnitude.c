/* magnitude.c - unstructured pruning: the k smallest-magnitude weights of a
 * layer (or of all layers at once) are zeroed, or N:M patterns along the
 * reduction axis; the masks are kept so a fine-tuning loop can re-apply them
 * after every optimizer step. Also the polynomial sparsity schedule.
 *
 * Exactly k = floor(s * n) weights are pruned: a plain "|w| <= threshold"
 * would prune a whole run of equal magnitudes (e.g. already-zero weights
 * plus some) and miss the target, so ties at the threshold are broken by
 * position (layer order, then index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune/prune.h"

static int float_cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static bool sparsity_ok(float s) { return s >= 0.0f && s < 1.0f; }

/* The k-th smallest magnitude (k >= 1) over several arrays, from a sorted
 * copy (4 bytes per weight). */
static qf_status kth_magnitude(const float *const *w, const size_t *n, int n_arr, size_t total,
                               size_t k, float *out, qf_err *err) {
    float *mag = qf_malloc(sizeof(float) * (total ? total : 1));
    if (!mag) return qf_errf(err, QF_ERR_NOMEM, "out of memory sorting %zu weights", total);
    size_t t = 0;
    for (int a = 0; a < n_arr; a++)
        for (size_t i = 0; w[a] && i < n[a]; i++) mag[t++] = fabsf(w[a][i]);
    qsort(mag, total, sizeof(float), float_cmp);
    *out = mag[k - 1];
    qf_free(mag);
    return QF_OK;
}

/* Prune everything below thr, then magnitudes equal to thr in array and
 * position order until k are pruned: the k smallest, ties by position. */
static void cut_below(const float *const *w, const size_t *n, uint8_t *const *mask, int n_arr,
                      float thr, size_t k) {
    size_t below = 0;
    for (int a = 0; a < n_arr; a++)
        for (size_t i = 0; w[a] && i < n[a]; i++) below += fabsf(w[a][i]) < thr;
    size_t ties = k - below;
    for (int a = 0; a < n_arr; a++)
        for (size_t i = 0; w[a] && i < n[a]; i++) {
            float m = fabsf(w[a][i]);
            if (m < thr) {
                mask[a][i] = 0;
            } else if (m == thr && ties) {
                mask[a][i] = 0;
                ties--;
            }
        }
}

qf_status qf_prune_magnitude_mask(const float *w, size_t n, float sparsity, uint8_t *mask,
                                  qf_err *err) {
    if (!sparsity_ok(sparsity))
        return qf_errf(err, QF_ERR_INVALID_ARG, "sparsity %g is outside [0, 1)", sparsity);
    size_t k = (size_t)floor((double)sparsity * (double)n);
    memset(mask, 1, n);
    if (!k) return QF_OK;
    float thr;
    qf_status s = kth_magnitude(&w, &n, 1, n, k, &thr, err);
    if (s) return s;
    cut_below(&w, &n, &mask, 1, thr, k);
    return QF_OK;
}

qf_status qf_prune_nm_mask(const float *w, int64_t outer, int64_t red, int64_t inner, int nm_n,
                           int nm_m, uint8_t *mask, qf_err *err) {
    if (nm_m < 1 || nm_m > 64 || nm_n < 1 || nm_n > nm_m)
        return qf_errf(err, QF_ERR_INVALID_ARG, "N:M pattern %d:%d: need 1 <= N <= M <= 64", nm_n,
                       nm_m);
    if (red % nm_m)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "reduction length %lld is not a multiple of M = %d", (long long)red, nm_m);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t r0 = 0; r0 < red; r0 += nm_m)
            for (int64_t i = 0; i < inner; i++) {
                /* selection of the N largest of M by repeated max (M <= 64) */
                int64_t base = (o * red + r0) * inner + i;
                uint64_t kept = 0;
                for (int t = 0; t < nm_n; t++) {
                    int best = -1;
                    float bm = -1.0f;
                    for (int j = 0; j < nm_m; j++) {
                        if (kept & ((uint64_t)1 << j)) continue;
                        float m = fabsf(w[base + j * inner]);
                        if (m > bm) { /* strict: ties keep the lower position */
                            bm = m;
                            best = j;
                        }
                    }
                    kept |= (uint64_t)1 << best;
                }
                for (int j = 0; j < nm_m; j++)
                    mask[base + j * inner] = (kept >> j) & 1;
            }
    return QF_OK;
}

void qf_prune_mask_apply(const uint8_t *mask, float *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!mask[i]) w[i] = 0.0f;
}

void qf_prune_masks_free(qf_prune_masks *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++)
        qf_free(m->layers[i].mask);
    qf_free(m->layers);
    qf_free(m);
}

int qf_prune_masks_find(const qf_prune_masks *m, const char *weight) {
    for (int i = 0; m && i < m->n; i++)
        if (strcmp(m->layers[i].weight, weight) == 0) return i;
    return -1;
}

/* Make a constant's data writable and owned (it may point into a mapping). */
static qf_status own_data(qf_graph *g, int v, qf_err *err) {
    qf_value *val = &g->values[v];
    if (!val->data_external) return QF_OK;
    void *copy = qf_malloc_aligned(val->nbytes ? val->nbytes : 1);
    if (!copy) return qf_errf(err, QF_ERR_NOMEM, "out of memory copying '%s'", val->name);
    memcpy(copy, val->data, val->nbytes);
    return qf_graph_set_const_owned(g, v, val->dtype, val->rank, val->dims, copy, val->nbytes);
}

qf_status qf_prune_masks_apply(const qf_prune_masks *m, qf_graph *g, qf_err *err) {
    for (int i = 0; m && i < m->n; i++) {
        const qf_prune_layer *l = &m->layers[i];
        if (l->value < 0 || l->value >= g->n_values ||
            g->values[l->value].nbytes != l->n * sizeof(float))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: mask of '%s' does not fit the graph",
                           g->source_path, l->weight);
        qf_status s = own_data(g, l->value, err);
        if (s) return s;
        qf_prune_mask_apply(l->mask, g->values[l->value].data, l->n);
    }
    return QF_OK;
}

static qf_status check_options(const qf_graph *g, const qf_prune_options *o, int n_layers,
                               qf_err *err) {
    if (o->nm_n || o->nm_m) {
        if (o->nm_m < 1 || o->nm_m > 64 || o->nm_n < 1 || o->nm_n > o->nm_m)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: N:M pattern %d:%d: need 1 <= N <= M <= 64",
                           g->source_path, o->nm_n, o->nm_m);
        return QF_OK;
    }
    if (o->layer_sparsity) {
        if (o->n_layer_sparsity != n_layers)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %d per-layer sparsities for %d layers",
                           g->source_path, o->n_layer_sparsity, n_layers);
        for (int i = 0; i < n_layers; i++)
            if (!sparsity_ok(o->layer_sparsity[i]))
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "%s: sparsity %g of layer %d is outside [0, 1)", g->source_path,
                               o->layer_sparsity[i], i);
        return QF_OK;
    }
    if (!sparsity_ok(o->sparsity))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sparsity %g is outside [0, 1)",
                       g->source_path, o->sparsity);
    return QF_OK;
}

/* One threshold over every non-skipped layer. */
static qf_status global_masks(qf_graph *g, const qf_prunable *pl, qf_prune_masks *m, float s,
                              qf_err *err) {
    size_t total = 0;
    const float **w = qf_calloc((size_t)m->n + 1, sizeof *w);
    size_t *n = qf_calloc((size_t)m->n + 1, sizeof *n);
    uint8_t **mask = qf_calloc((size_t)m->n + 1, sizeof *mask);
    qf_status st = QF_OK;
    if (!w || !n || !mask) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    for (int i = 0; !st && i < m->n; i++) {
        if (m->layers[i].skipped) continue; /* w[i] NULL: left out */
        w[i] = g->values[pl[i].value].data;
        n[i] = pl[i].n;
        mask[i] = m->layers[i].mask;
        total += pl[i].n;
    }
    size_t k = (size_t)floor((double)s * (double)total);
    float thr;
    if (!st && k && !(st = kth_magnitude(w, n, m->n, total, k, &thr, err)))
        cut_below(w, n, mask, m->n, thr, k);
    qf_free(w);
    qf_free(n);
    qf_free(mask);
    return st;
}

qf_status qf_prune_magnitude(qf_graph *g, const qf_prune_options *opt, qf_prune_masks **out,
                             qf_err *err) {
    if (out) *out = NULL;
    qf_prunable *pl = NULL;
    int n = 0;
    qf_status s = qf_prune_find_layers(g, &pl, &n, err);
    if (s) return s;
    if ((s = check_options(g, opt, n, err))) {
        qf_free(pl);
        return s;
    }
    qf_prune_masks *m = qf_calloc(1, sizeof *m);
    if (!m || (n && !(m->layers = qf_calloc((size_t)n, sizeof *m->layers)))) {
        qf_free(m);
        qf_free(pl);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    }
    m->n = n;
    bool nm = opt->nm_m > 0;
    for (int i = 0; i < n && !s; i++) {
        qf_prune_layer *l = &m->layers[i];
        l->node = g->nodes[pl[i].node].name;
        l->weight = g->values[pl[i].value].name;
        l->value = pl[i].value;
        l->n = pl[i].n;
        l->mask = qf_malloc(l->n);
        if (!l->mask) {
            s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory for masks", g->source_path);
            break;
        }
        memset(l->mask, 1, l->n);
        l->skipped = (opt->skip_first && i == 0) || (opt->skip_last && i == n - 1);
        if (!l->skipped) s = own_data(g, l->value, err);
        if (l->skipped || s) continue;
        const float *w = g->values[l->value].data;
        if (nm) {
            /* layers whose reduction length does not split into M stay dense */
            if (pl[i].red % opt->nm_m) {
                l->skipped = true;
                continue;
            }
            s = qf_prune_nm_mask(w, pl[i].outer, pl[i].red, pl[i].inner, opt->nm_n, opt->nm_m,
                                 l->mask, err);
        } else if (!opt->global || opt->layer_sparsity) {
            float ls = opt->layer_sparsity ? opt->layer_sparsity[i] : opt->sparsity;
            s = qf_prune_magnitude_mask(w, l->n, ls, l->mask, err);
        }
    }
    if (!s && !nm && opt->global && !opt->layer_sparsity)
        s = global_masks(g, pl, m, opt->sparsity, err);
    for (int i = 0; i < n && !s; i++) {
        qf_prune_layer *l = &m->layers[i];
        l->n_pruned = 0;
        for (size_t j = 0; j < l->n; j++)
            l->n_pruned += !l->mask[j];
        qf_prune_mask_apply(l->mask, g->values[l->value].data, l->n);
    }
    qf_free(pl);
    if (s || !out)
        qf_prune_masks_free(m);
    else
        *out = m;
    return s;
}

float qf_prune_schedule_poly(float s_i, float s_f, int64_t t, int64_t t0, int64_t n, int64_t dt) {
    if (t < t0) return s_i;
    double span = (double)n * (double)dt;
    if (span <= 0 || (double)(t - t0) >= span) return s_f;
    double r = 1.0 - (double)(t - t0) / span;
    return (float)(s_f + (s_i - s_f) * r * r * r);
}
