/* compress.h - `qforge compress`: the accuracy-driven pipeline.
 *
 * Given a float graph, labelled training and validation data, the accuracy
 * drop the user accepts (points of top-1) and optionally a size budget, it
 * returns the smallest quantized model it found that keeps to them:
 *
 *   check -> [prune + fine-tune (+ distill)] -> PTQ int8, each calibrator
 *   -> per-layer sensitivity (one layer at 4 and 2 bits, the rest 8-bit)
 *   -> mixed precision (greedy on estimated loss per byte saved; with a
 *      size budget down to it, without one as far as the measured drop
 *      allows, found by binary search over the greedy order)
 *   -> verify -> escalate while the drop is too large: cross-layer
 *   equalisation, raising bits of the most sensitive layers, QAT.
 *
 * Every step is logged into a qf_report (name, accuracy, size, seconds,
 * note), every configuration tried too, plus per-layer SQNR/bits, the
 * sensitivity ranking and weight/activation histograms of the result.
 *
 * Sizes are estimates of the qfm file written with QF_QFM_STORE_AUTO: the
 * constants' bytes, each in the smallest of raw / zstd / sparse+zstd
 * (fast zstd level), plus a per-value overhead. The CLI reports the real
 * file size next to it.
 */
#ifndef QF_PIPELINE_COMPRESS_H
#define QF_PIPELINE_COMPRESS_H

#include "io/data.h"
#include "quant/quantize.h"
#include "report/report.h"

typedef struct qf_model qf_model;

/* Pipeline messages ("PTQ int8 (entropy): 90.12% ..."): one line each. */
typedef void (*qf_compress_log_fn)(void *user, const char *line);

typedef struct qf_compress_options {
    double max_drop;          /* accepted top-1 drop in points, >= 0 */
    int64_t size_budget;      /* bytes; 0 = none */
    double size_budget_frac;  /* of float_size, in (0, 1]; used when size_budget == 0 */
    int64_t float_size;       /* bytes of the float model file (reports, fraction) */
    double latency_budget_ms; /* per sample (batch 1) median; 0 = none */
    float prune_sparsity;     /* 0 = no pruning; else in (0, 1) */
    int prune_epochs;         /* fine-tune epochs after pruning (0 = 1) */
    const qf_model *teacher;  /* distill while fine-tuning (may be NULL) */
    unsigned calibrators;     /* bit (1 << qf_calib_method) per calibrator; 0 = all four */
    int64_t calib_limit;      /* calibration samples (0 = 500) */
    int64_t val_limit;        /* validation samples (0 = all) */
    int64_t sens_limit;       /* samples per sensitivity measurement (0 = 500) */
    int64_t train_limit;      /* training samples for fine-tuning / QAT (0 = 10000) */
    int qat_epochs;           /* QAT epochs (0 = 1; < 0: no QAT) */
    bool no_cle;              /* skip cross-layer equalisation */
    int num_threads;          /* 0 = 1 */
    qf_compress_log_fn log;   /* may be NULL */
    void *log_user;
    qf_progress_fn progress; /* inside long steps (may be NULL) */
    void *progress_user;
} qf_compress_options;

typedef struct qf_compress_result {
    bool met;            /* accuracy (and size budget, if any) met */
    bool size_met;       /* size within budget (true when none) */
    bool latency_met;    /* latency within budget (true when none) */
    double float_acc;    /* top-1 of the input float model on val, [0, 1] */
    double acc;          /* top-1 of the returned model */
    double drop_points;  /* 100 * (float_acc - acc) */
    int64_t size_bytes;  /* estimated stored size of the returned model */
    int64_t budget_bytes;/* resolved size budget (0: none) */
    double latency_ms;   /* measured when a latency budget is set, else NAN */
    int n_tried;         /* configurations evaluated */
    qf_graph *model;     /* the best quantized graph (caller frees); NULL on error */
    char best_label[128];
    char summary[1024];  /* what was tried and the outcome, one line per step */
} qf_compress_result;

void qf_compress_options_default(qf_compress_options *o);

/* Check that a dataset fits the graph (single input of matching sample
 * size, labelled, labels below the output's class count). QF_ERR_SHAPE /
 * QF_ERR_INVALID_ARG naming `what` ("validation data") otherwise. Cheap:
 * run it before any long work. */
qf_status qf_compress_check_data(const qf_graph *fg, const qf_dataset *d, const char *what,
                                 qf_err *err);

/* Run the pipeline on fg (not modified). train is used for calibration,
 * fine-tuning and QAT; val for every accuracy measurement. rep (may be
 * NULL) receives steps, layers, histograms, configurations and findings.
 * Returns QF_OK when the pipeline ran, whether the target was met or not
 * (res->met); an error status (bad data: before any long work; a check
 * with failing findings: QF_ERR_FORMAT) otherwise. */
qf_status qf_compress(const qf_graph *fg, const qf_dataset *train, const qf_dataset *val,
                      const qf_compress_options *o, qf_report *rep, qf_compress_result *res,
                      qf_err *err);
void qf_compress_result_free(qf_compress_result *r);

/* Estimated stored size (bytes) of g written as qfm with QF_QFM_STORE_AUTO. */
int64_t qf_compress_model_size(const qf_graph *g);

/* Median latency (ms) of `runs` batch-1 runs of g (after one warm-up). */
qf_status qf_compress_latency(const qf_graph *g, int runs, int num_threads, double *ms,
                              qf_err *err);

#endif /* QF_PIPELINE_COMPRESS_H */
