/* kmeans.c - weight sharing (Deep Compression, Han et al. 2016): per layer,
 * 1-D k-means of the weights with linear initialisation between min and
 * max, Lloyd iterations, weights replaced by their centroid; the codebook
 * and the index of every weight are kept so fine-tuning can move the
 * centroids (gradient summed per cluster). A pruned layer keeps its zeros
 * as an exact cluster 0 that never moves, so clustering does not undo the
 * sparsity. */
#include <math.h>
#include <string.h>

#include "prune/prune.h"

#define KMEANS_MAX_ITER 30

/* Nearest of the sorted centroids c[lo, k) to x; ties to the lower one. */
static int nearest(const float *c, int lo, int k, float x) {
    int a = lo, b = k - 1;
    while (a < b) { /* first centroid whose midpoint with the next is >= x */
        int m = (a + b) / 2;
        float mid = c[m] + (c[m + 1] - c[m]) * 0.5f;
        if (x <= mid)
            b = m;
        else
            a = m + 1;
    }
    return a;
}

static void sort_floats(float *c, int k) {
    for (int i = 1; i < k; i++) { /* k <= 256: insertion sort */
        float v = c[i];
        int j = i - 1;
        while (j >= 0 && c[j] > v) {
            c[j + 1] = c[j];
            j--;
        }
        c[j + 1] = v;
    }
}

qf_status qf_kmeans_1d(const float *w, size_t n, int k, bool keep_zero, int max_iter,
                       float *centroids, uint8_t *index, bool *zero_cluster, int *iters,
                       qf_err *err) {
    if (k < 2 || k > 256)
        return qf_errf(err, QF_ERR_INVALID_ARG, "k-means: k = %d not in [2, 256]", k);
    if (max_iter <= 0) max_iter = KMEANS_MAX_ITER;
    bool has_zero = false;
    for (size_t i = 0; i < n && keep_zero; i++)
        if (w[i] == 0.0f) has_zero = true;
    int lo = has_zero ? 1 : 0; /* first movable centroid */
    float mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (has_zero && w[i] == 0.0f) continue;
        if (!isfinite(w[i]))
            return qf_errf(err, QF_ERR_INVALID_ARG, "k-means: weight %zu is not finite", i);
        mn = fminf(mn, w[i]);
        mx = fmaxf(mx, w[i]);
    }
    if (mn > mx) mn = mx = 0.0f; /* every weight is a pruned zero */
    int km = k - lo;
    if (has_zero) centroids[0] = 0.0f;
    for (int j = 0; j < km; j++)
        centroids[lo + j] = km == 1 ? mn : mn + (mx - mn) * (float)j / (float)(km - 1);
    double *sum = qf_calloc((size_t)k, sizeof *sum);
    size_t *cnt = qf_calloc((size_t)k, sizeof *cnt);
    if (!sum || !cnt) {
        qf_free(sum);
        qf_free(cnt);
        return qf_errf(err, QF_ERR_NOMEM, "k-means: out of memory");
    }
    memset(index, 0, n);
    int it = 0;
    for (; it < max_iter; it++) {
        bool moved = it == 0;
        for (size_t i = 0; i < n; i++) {
            int j = has_zero && w[i] == 0.0f ? 0 : nearest(centroids, lo, k, w[i]);
            if (index[i] != j) moved = true;
            index[i] = (uint8_t)j;
        }
        if (!moved) break;
        memset(sum, 0, sizeof(double) * (size_t)k);
        memset(cnt, 0, sizeof(size_t) * (size_t)k);
        for (size_t i = 0; i < n; i++) {
            sum[index[i]] += w[i];
            cnt[index[i]]++;
        }
        /* an empty cluster keeps its centroid */
        for (int j = lo; j < k; j++)
            if (cnt[j]) centroids[j] = (float)(sum[j] / (double)cnt[j]);
        sort_floats(centroids + lo, km);
    }
    if (it == max_iter) /* the last update moved centroids: assign once more */
        for (size_t i = 0; i < n; i++)
            index[i] = (uint8_t)(has_zero && w[i] == 0.0f ? 0 : nearest(centroids, lo, k, w[i]));
    qf_free(sum);
    qf_free(cnt);
    if (zero_cluster) *zero_cluster = has_zero;
    if (iters) *iters = it;
    return QF_OK;
}

void qf_clusters_free(qf_clusters *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        qf_free(c->layers[i].centroids);
        qf_free(c->layers[i].index);
    }
    qf_free(c->layers);
    qf_free(c);
}

qf_status qf_cluster_weights(qf_graph *g, int bits, qf_clusters **out, qf_err *err) {
    if (out) *out = NULL;
    if (bits < 1 || bits > 8)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: cluster bits %d not in [1, 8]",
                       g->source_path, bits);
    qf_prunable *pl = NULL;
    int n = 0;
    qf_status s = qf_prune_find_layers(g, &pl, &n, err);
    if (s) return s;
    qf_clusters *c = qf_calloc(1, sizeof *c);
    if (!c || (n && !(c->layers = qf_calloc((size_t)n, sizeof *c->layers)))) {
        qf_free(c);
        qf_free(pl);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    }
    c->n = n;
    int k = 1 << bits;
    for (int i = 0; i < n && !s; i++) {
        qf_cluster_layer *l = &c->layers[i];
        qf_value *v = &g->values[pl[i].value];
        l->node = g->nodes[pl[i].node].name;
        l->weight = v->name;
        l->value = pl[i].value;
        l->n = pl[i].n;
        l->k = k;
        l->centroids = qf_calloc((size_t)k, sizeof(float));
        l->index = qf_malloc(l->n);
        if (!l->centroids || !l->index) {
            s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory clustering '%s'", g->source_path,
                        v->name);
            break;
        }
        s = qf_kmeans_1d(v->data, l->n, k, true, 0, l->centroids, l->index, &l->zero_cluster,
                         &l->iters, err);
        if (s) {
            qf_err_prefix(err, "%s: weight '%s'", g->source_path, v->name);
            break;
        }
        float *w = qf_malloc_aligned(v->nbytes);
        if (!w) {
            s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
            break;
        }
        const float *orig = v->data;
        double se = 0;
        for (size_t j = 0; j < l->n; j++) {
            w[j] = l->centroids[l->index[j]];
            se += ((double)w[j] - orig[j]) * ((double)w[j] - orig[j]);
        }
        l->mse = l->n ? se / (double)l->n : 0;
        s = qf_graph_set_const_owned(g, l->value, v->dtype, v->rank, v->dims, w, v->nbytes);
    }
    qf_free(pl);
    if (s || !out)
        qf_clusters_free(c);
    else
        *out = c;
    return s;
}

void qf_cluster_grad(const qf_cluster_layer *l, const float *grad, float *cgrad) {
    memset(cgrad, 0, sizeof(float) * (size_t)l->k);
    for (size_t i = 0; i < l->n; i++)
        cgrad[l->index[i]] += grad[i];
    if (l->zero_cluster) cgrad[0] = 0.0f;
}

void qf_cluster_step(qf_cluster_layer *l, const float *cgrad, float lr) {
    for (int j = l->zero_cluster ? 1 : 0; j < l->k; j++)
        l->centroids[j] -= lr * cgrad[j];
}

void qf_cluster_apply(const qf_cluster_layer *l, float *w) {
    for (size_t i = 0; i < l->n; i++)
        w[i] = l->centroids[l->index[i]];
}
