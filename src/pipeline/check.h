/* check.h - `qforge check`: a sanity report on a float model before any
 * compression (the pipeline's first stage, also a verb of its own).
 *
 * Checks and their thresholds (one finding per problem, with the measured
 * number and a remedy; a check that finds nothing adds one "ok" finding):
 *  nan_inf        weights (any constant float tensor) holding NaN or Inf:
 *                 fail. value = count of non-finite elements.
 *  weight_scale   per weight layer (Conv, Gemm, MatMul with a constant
 *                 weight), r = std(W) * sqrt(fan_in): the gain the layer
 *                 applies to unit-variance inputs (LeCun init gives 1, He
 *                 init 1.41). warn when r > QF_CHECK_SCALE_HI (exploding:
 *                 activations grow ~r-fold per layer) or r <
 *                 QF_CHECK_SCALE_LO (vanishing). Layers whose output feeds
 *                 a BatchNormalization are scale-invariant and skipped.
 *  dead_weights   output channels whose weights are all zero (the channel
 *                 outputs a constant): warn. value = dead channel count.
 *  outliers       max|W| / p99.9(|W|) of a layer with at least
 *                 QF_CHECK_OUTLIER_MIN_N weights, else max|W| / std(W):
 *                 warn above QF_CHECK_OUTLIER_P999 / QF_CHECK_OUTLIER_STD:
 *                 a per-tensor scale spends its levels on a few outliers
 *                 (per-channel scales or percentile/MSE clipping help).
 *  dead_relu      (data) channels of a Relu output that are never > 0 on
 *                 the data: warn; every channel dead: fail.
 *                 value = fraction of dead channels.
 *  bn_stats       (data) per BatchNormalization node, per channel c, the
 *                 data's mean m and variance v of the BN input against the
 *                 running mean mu and variance s2: z = |m - mu| /
 *                 sqrt(s2 + eps) and ratio = (v + eps) / (s2 + eps). warn
 *                 when max z > QF_CHECK_BN_Z or a ratio is outside
 *                 [1/QF_CHECK_BN_RATIO, QF_CHECK_BN_RATIO]. value = max z
 *                 (or the worst ratio when only the variance is off).
 *                 The check runs on the graph as imported (BN not folded).
 *  nan_activation (data) a node output holding NaN/Inf on the data: fail.
 *  accuracy       (labelled data) top-1 of the model on each dataset: ok.
 *  overfit        (both datasets) gap = top-1(train) - top-1(data) in
 *                 points: warn above QF_CHECK_GAP_POINTS.
 */
#ifndef QF_PIPELINE_CHECK_H
#define QF_PIPELINE_CHECK_H

#include "io/data.h"
#include "quant/quantize.h" /* qf_progress_fn */
#include "report/report.h"

#define QF_CHECK_SCALE_HI 10.0
#define QF_CHECK_SCALE_LO 0.05
#define QF_CHECK_OUTLIER_P999 4.0
#define QF_CHECK_OUTLIER_STD 10.0
#define QF_CHECK_OUTLIER_MIN_N 1000
#define QF_CHECK_BN_Z 1.0
#define QF_CHECK_BN_RATIO 3.0
#define QF_CHECK_GAP_POINTS 3.0
#define QF_CHECK_DEFAULT_LIMIT 1000

typedef struct qf_check_options {
    const qf_dataset *data;  /* validation data: dead ReLUs, BN stats, accuracy (NULL: none) */
    const qf_dataset *train; /* training data: accuracy for the overfitting gap (NULL: none) */
    int64_t limit;           /* samples used from each dataset; 0 = QF_CHECK_DEFAULT_LIMIT */
    int batch;               /* 0 = 32 (a fixed batch dim in the model wins) */
    int num_threads;         /* 0 = 1 */
    qf_progress_fn progress; /* samples done / total over both datasets (may be NULL) */
    void *progress_user;
} qf_check_options;

typedef struct qf_check_finding {
    qf_severity severity;
    char check[24];    /* one of the ids above */
    char subject[160]; /* node or tensor name, or "model" */
    double value;      /* the measured number (NAN: none) */
    char message[320];
    char remedy[256]; /* "" for ok findings */
} qf_check_finding;

typedef struct qf_check_result {
    int n_findings;
    qf_check_finding *findings; /* qf_malloc'd, in check order */
    int n_ok, n_warn, n_fail;
    double top1_data, top1_train;        /* NAN when not measured */
    int64_t samples_data, samples_train; /* samples run (0: none) */
} qf_check_result;

/* Run every check that the given data allows on g (not modified; run it
 * before BatchNorm folding). Data problems (sample shape not fitting the
 * model, a model with other than one input when data is given) return
 * QF_ERR_SHAPE / QF_ERR_UNSUPPORTED before any sample is run. On failure
 * res is empty. */
qf_status qf_check_model(const qf_graph *g, const qf_check_options *opt, qf_check_result *res,
                         qf_err *err);
void qf_check_result_free(qf_check_result *r);

/* Copy the findings into a report (as qf_report_finding). */
qf_status qf_check_to_report(const qf_check_result *r, qf_report *rep, qf_err *err);
/* Add a weight histogram (no clip) for each of the first max_layers weight
 * layers (Conv, Gemm, MatMul with a constant float weight) of g; layers
 * with non-finite weights are skipped. */
qf_status qf_check_weight_hists(const qf_graph *g, qf_report *rep, int max_layers, qf_err *err);

#endif /* QF_PIPELINE_CHECK_H */
