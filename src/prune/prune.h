/* prune.h - pruning and weight sharing over float graphs (before quantization).
 *
 * Four parts, each in its own file:
 *  - layers.c      which weights are prunable (Conv/Gemm/MatMul constant
 *                  weights) and per-layer statistics (params, zeros, MACs);
 *  - magnitude.c   unstructured magnitude pruning (layer-wise or global
 *                  threshold), N:M patterns, masks a fine-tuning loop
 *                  re-applies, and the Zhu & Gupta polynomial schedule;
 *  - channels.c    channel dependency groups (which output channels must be
 *                  removed together), structured.c their scoring (L1, L2,
 *                  FPGM) and the real removal of channels;
 *  - sensitivity.c per-layer sensitivity scan and automatic per-layer
 *                  sparsity under a global target;
 *  - regularize.c  L1 and group-lasso penalties for training;
 *  - kmeans.c      per-layer k-means weight sharing (codebook + indices).
 * Biases and normalisation parameters are never pruned by magnitude. All
 * functions work in place on the graph's constant data.
 */
#ifndef QF_PRUNE_H
#define QF_PRUNE_H

#include "io/data.h"
#include "ir/graph.h"

/* ---- prunable layers -------------------------------------------------- */
/* A Conv/Gemm/MatMul node with a constant float weight, viewed as
 * [outer, red, inner] where `red` is the reduction axis along which N:M
 * groups run: Conv W [M, C/g, k...] -> outer M, red C/g, inner prod(k);
 * Gemm B [K, N] (transB 0) -> 1, K, N; B [N, K] (transB 1) -> N, K, 1;
 * MatMul constant B [K, N] -> 1, K, N. */
typedef struct qf_prunable {
    int node;    /* node index */
    int value;   /* weight value index */
    int64_t outer, red, inner;
    size_t n;    /* element count (outer * red * inner) */
} qf_prunable;

/* List the prunable layers of g in node order (*out qf_malloc'd, caller
 * frees with qf_free; *n may be 0 with *out NULL). */
qf_status qf_prune_find_layers(const qf_graph *g, qf_prunable **out, int *n, qf_err *err);

/* Per-layer statistics for reports (shapes must be inferred). */
typedef struct qf_layer_stat {
    const char *node;  /* node name (graph arena) */
    const char *op;    /* op type */
    int64_t params;    /* weight elements */
    int64_t nonzero;   /* weight elements != 0 */
    int64_t macs;      /* multiply-accumulates for one sample (batch dims read as 1) */
} qf_layer_stat;
/* One entry per Conv/Gemm/MatMul node in node order (*out qf_malloc'd). */
qf_status qf_prune_layer_stats(const qf_graph *g, qf_layer_stat **out, int *n, qf_err *err);
/* Total conv/gemm/matmul MACs for one sample. */
int64_t qf_prune_total_macs(const qf_graph *g);

/* ---- unstructured: masks --------------------------------------------- */
typedef struct qf_prune_layer {
    const char *node;   /* node name (graph arena) */
    const char *weight; /* weight value name (graph arena) */
    int value;          /* weight value index */
    size_t n;           /* elements */
    uint8_t *mask;      /* n entries: 1 keep, 0 pruned (owned) */
    size_t n_pruned;    /* zeros in mask */
    bool skipped;       /* left dense (first/last layer, or N:M does not fit) */
} qf_prune_layer;

typedef struct qf_prune_masks {
    int n;
    qf_prune_layer *layers;
} qf_prune_masks;

typedef struct qf_prune_options {
    float sparsity;   /* fraction of weights zeroed, [0, 1) */
    bool global;      /* one threshold over all layers (else per layer) */
    bool skip_first;  /* leave the first prunable layer dense */
    bool skip_last;   /* leave the last prunable layer dense */
    int nm_n, nm_m;   /* both > 0: keep the N largest of every M along the
                         reduction axis (sparsity/global ignored); 0: off */
    /* Optional per-layer sparsities (qf_prune_find_layers order), used
     * instead of `sparsity` when non-NULL (n_layer_sparsity entries). */
    const float *layer_sparsity;
    int n_layer_sparsity;
} qf_prune_options;

/* Magnitude pruning: per layer (or globally) the k = floor(s * n) weights of
 * smallest |w| are zeroed (ties broken by position, so exactly k). Masks
 * are returned (may be NULL: then only the weights change). Errors:
 * QF_ERR_INVALID_ARG for a sparsity outside [0, 1) or a bad N:M. */
qf_status qf_prune_magnitude(qf_graph *g, const qf_prune_options *opt, qf_prune_masks **out,
                             qf_err *err);
void qf_prune_masks_free(qf_prune_masks *m);
/* Index of the layer whose weight value is named `weight`, or -1. */
int qf_prune_masks_find(const qf_prune_masks *m, const char *weight);
/* w[i] = 0 where mask[i] == 0: call after each optimizer step. */
void qf_prune_mask_apply(const uint8_t *mask, float *w, size_t n);
/* Re-apply every mask to the graph's weights (by value index). */
qf_status qf_prune_masks_apply(const qf_prune_masks *m, qf_graph *g, qf_err *err);

/* Mask of the k smallest |w| of one array (k = floor(s * n)); the helper
 * behind layer-wise pruning, exposed for tests and the sensitivity scan. */
qf_status qf_prune_magnitude_mask(const float *w, size_t n, float sparsity, uint8_t *mask,
                                  qf_err *err);
/* N:M mask of a weight viewed as [outer, red, inner]: in every run of M
 * consecutive positions along `red` (fixed outer and inner) the N largest
 * |w| are kept (ties: lower position). red must be a multiple of M. */
qf_status qf_prune_nm_mask(const float *w, int64_t outer, int64_t red, int64_t inner, int nm_n,
                           int nm_m, uint8_t *mask, qf_err *err);

/* Zhu & Gupta (2017) polynomial schedule: sparsity at step t,
 * s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3, s_i before t0 and s_f
 * after t0 + n * dt. n * dt <= 0 means s_f from t0 on. */
float qf_prune_schedule_poly(float s_i, float s_f, int64_t t, int64_t t0, int64_t n, int64_t dt);

/* ---- regularisation (training options) --------------------------------- */
/* lambda * sum |w|; adds lambda * sign(w) (0 at w = 0) to grad (may be NULL). */
float qf_prune_l1_penalty(const float *w, size_t n, float lambda, float *grad);
/* Group lasso over output channels: lambda * sum_c ||w_c||_2 where w is
 * viewed as [outer, ch, inner] and channel c is w[o, c, i] for all o, i
 * (Conv W [M, C/g, k...]: outer 1, ch M, inner C/g * k...; Gemm B [K, N]:
 * outer K, ch N, inner 1; B [N, K] with transB: outer 1, ch N, inner K).
 * Adds lambda * w_c / ||w_c|| to grad (0 for an all-zero channel). */
float qf_prune_group_lasso(const float *w, int64_t outer, int64_t ch, int64_t inner, float lambda,
                           float *grad);

/* ---- structured: channel dependency groups ------------------------------ */
typedef enum qf_prune_criterion {
    QF_PRUNE_L1 = 0, /* sum |w| of the filter */
    QF_PRUNE_L2,     /* ||w||_2 of the filter */
    QF_PRUNE_FPGM    /* sum of distances to the other filters (geometric median) */
} qf_prune_criterion;

/* A set of output channels that must be removed together: the outputs of
 * every member (Conv/Gemm/MatMul producing them) share one index set, because
 * residual Adds (or other element-wise joins) combine them. */
typedef struct qf_chan_group {
    int64_t channels; /* channel count of every member */
    int n_members;
    int *members;     /* producing node indices (owned) */
    bool frozen;      /* cannot shrink (graph output, softmax, shared weight...) */
    char why[160];    /* why frozen (empty otherwise) */
} qf_chan_group;

typedef struct qf_chan_groups qf_chan_groups; /* groups + the tensors they shrink */

/* Analyse g. g is normalised first without changing what it computes:
 * Identity nodes are removed, a constant read by several nodes gets a copy
 * per extra reader (exporters deduplicate equal initializers), and shapes
 * are inferred. Fails with QF_ERR_UNSUPPORTED naming the node when a
 * dependency cannot be resolved (a Reshape or Transpose that mixes channels
 * with other axes). */
qf_status qf_chan_groups_build(qf_graph *g, qf_chan_groups **out, qf_err *err);
void qf_chan_groups_free(qf_chan_groups *cg);
int qf_chan_groups_count(const qf_chan_groups *cg);
const qf_chan_group *qf_chan_groups_get(const qf_chan_groups *cg, int i);

/* Importance of each channel of group i (channels entries; smaller = prune
 * first): the criterion summed over the group's members. */
qf_status qf_chan_group_scores(const qf_graph *g, const qf_chan_groups *cg, int i,
                               qf_prune_criterion crit, float *scores, qf_err *err);

/* Remove channels: keep[i] (channels entries of group i; NULL = keep all)
 * says which stay. Shrinks every weight, bias, BN parameter, depthwise
 * group and Reshape target, then re-infers shapes. Errors (g unchanged):
 * QF_ERR_INVALID_ARG when a group would lose every channel or a frozen
 * group loses one (naming a member node); the shape-inference error of the
 * node that no longer fits when the cut is tried on a copy first (e.g. a
 * Reshape target computed at run time with a literal width). cg must come
 * from g unchanged. */
qf_status qf_chan_groups_remove(qf_graph *g, const qf_chan_groups *cg, const uint8_t *const *keep,
                                qf_err *err);

typedef struct qf_struct_options {
    float sparsity;          /* fraction of channels removed per group, [0, 1) */
    qf_prune_criterion crit;
    /* Optional per-group sparsity (qf_chan_groups order), used instead. */
    const float *group_sparsity;
    int n_group_sparsity;
} qf_struct_options;

/* Build groups, score, remove floor(s * channels) lowest-scored channels of
 * every unfrozen group (at least one always stays). */
qf_status qf_prune_structured(qf_graph *g, const qf_struct_options *opt, qf_err *err);

/* ---- sensitivity and automatic per-layer sparsity ---------------------- */
typedef struct qf_sens_options {
    const float *levels; /* sparsity levels to try (NULL: 0.3, 0.5, 0.7, 0.8, 0.9, 0.95) */
    int n_levels;
    int batch;           /* samples per run when the batch dim is free (0: 32) */
} qf_sens_options;

typedef struct qf_sensitivity {
    int n_layers, n_levels;
    float *levels;        /* n_levels */
    char **names;         /* node name of each layer */
    int64_t *params;      /* weight elements of each layer */
    float base_acc;       /* unpruned top-1 (fraction) */
    double base_loss;     /* unpruned mean cross-entropy */
    float *acc;           /* [layer * n_levels + level] */
    double *loss;         /* same layout */
} qf_sensitivity;

/* For every prunable layer alone and every level: magnitude-prune it,
 * measure top-1 and cross-entropy on d (all of it: open d with a limit),
 * restore. g is not modified. */
qf_status qf_prune_sensitivity(const qf_graph *g, const qf_dataset *d, const qf_sens_options *o,
                               qf_sensitivity **out, qf_err *err);
void qf_sensitivity_free(qf_sensitivity *s);
/* The same per channel group (qf_chan_groups order of the graph after the
 * analysis' normalisation, which qf_prune_structured repeats): each group
 * alone loses floor(level * channels) channels by `crit`. Frozen groups
 * report params 0 (qf_prune_auto leaves them whole); "params" of a group
 * are its members' weights. Feed qf_prune_auto's choice to
 * qf_struct_options.group_sparsity. g is not modified. */
qf_status qf_prune_sensitivity_structured(const qf_graph *g, const qf_dataset *d,
                                          const qf_sens_options *o, qf_prune_criterion crit,
                                          qf_sensitivity **out, qf_err *err);

/* Per-layer sparsities whose parameter-weighted mean is `target` (within
 * rounding), chosen greedily from the curves: each step raises the layer
 * whose next level costs the least accuracy (then loss) per pruned weight;
 * the last step is interpolated to land on the target. *est_acc (may be
 * NULL) is base accuracy minus the summed drops. QF_ERR_INVALID_ARG when
 * target is outside [0, 1) or beyond the highest level. */
qf_status qf_prune_auto(const qf_sensitivity *s, float target, float *layer_sparsity,
                        float *est_acc, qf_err *err);

/* Top-1 and mean cross-entropy of a graph's output 0 over d (a helper the
 * scan uses, exposed for the CLI). */
qf_status qf_prune_evaluate(const qf_graph *g, const qf_dataset *d, int batch, float *acc,
                            double *loss, qf_err *err);

/* ---- weight sharing (k-means) ------------------------------------------ */
typedef struct qf_cluster_layer {
    const char *node;   /* node name (graph arena) */
    const char *weight; /* weight value name */
    int value;
    size_t n;
    int k;              /* centroids (2^bits) */
    float *centroids;   /* k entries, ascending (owned) */
    uint8_t *index;     /* n entries: centroid of each weight (owned) */
    bool zero_cluster;  /* centroid 0 is an exact, frozen 0 (the layer had zeros) */
    int iters;          /* Lloyd iterations run */
    double mse;         /* mean squared error of the replacement */
} qf_cluster_layer;

typedef struct qf_clusters {
    int n;
    qf_cluster_layer *layers;
} qf_clusters;

/* 1-D k-means of w: centroids initialised linearly between min and max
 * (of the non-zero weights when keep_zero and some weight is 0; centroid 0
 * is then exactly 0 and never moves), Lloyd iterations until assignments
 * settle or max_iter. Ties go to the lower centroid. k in [2, 256]. */
qf_status qf_kmeans_1d(const float *w, size_t n, int k, bool keep_zero, int max_iter,
                       float *centroids, uint8_t *index, bool *zero_cluster, int *iters,
                       qf_err *err);
/* Cluster every prunable layer of g with 2^bits centroids (bits 1..8) and
 * replace its weights by their centroids. out may be NULL. */
qf_status qf_cluster_weights(qf_graph *g, int bits, qf_clusters **out, qf_err *err);
void qf_clusters_free(qf_clusters *c);
/* Deep Compression's centroid gradient: cgrad[j] = sum of grad[i] over the
 * weights assigned to centroid j (0 for a frozen zero cluster). */
void qf_cluster_grad(const qf_cluster_layer *l, const float *grad, float *cgrad);
/* centroids[j] -= lr * cgrad[j] (the zero cluster stays 0). */
void qf_cluster_step(qf_cluster_layer *l, const float *cgrad, float lr);
/* w[i] = centroids[index[i]]. */
void qf_cluster_apply(const qf_cluster_layer *l, float *w);

#endif /* QF_PRUNE_H */
