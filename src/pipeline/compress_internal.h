/* compress_internal.h - pieces shared by the files of the compress pipeline:
 * evaluation against cached float outputs (compress_eval.c) and the
 * report's histograms (compress_report.c). */
#ifndef QF_PIPELINE_COMPRESS_INTERNAL_H
#define QF_PIPELINE_COMPRESS_INTERNAL_H

#include "pipeline/compress.h"

/* The validation samples used, their labels and the float model's outputs
 * on them (the reference every quantized candidate is compared with). */
typedef struct qf_cp_eval {
    const qf_dataset *val;
    int64_t n;          /* samples evaluated (whole batches when the batch is fixed) */
    int64_t classes;    /* outputs per sample */
    float *ref;         /* n * classes float outputs */
    int32_t *labels;    /* n labels */
    double float_acc;   /* top-1 of the float model on these samples */
    int num_threads;
} qf_cp_eval;

qf_status qf_cp_eval_init(qf_cp_eval *ev, const qf_graph *fg, const qf_dataset *val,
                          int64_t limit, int num_threads, qf_err *err);
/* top-1 of g on the first `limit` (0: all) samples, the SQNR (dB) of its
 * outputs against the float outputs and the share of samples whose top-1
 * class differs from the float model's (flips; each may be NULL). */
qf_status qf_cp_eval_graph(const qf_cp_eval *ev, const qf_graph *g, int64_t limit, double *acc,
                           double *sqnr_db, double *flips, qf_err *err);
void qf_cp_eval_free(qf_cp_eval *ev);

/* Weight histograms (float weights of fopt against the clip of qg's
 * weight scales) and activation histograms (float activations on one batch
 * of data against the quantized value's range) for up to max_layers each. */
qf_status qf_cp_report_hists(qf_report *rep, const qf_graph *fopt, const qf_graph *qg,
                             const qf_dataset *data, int max_layers, int num_threads,
                             qf_err *err);

#endif /* QF_PIPELINE_COMPRESS_INTERNAL_H */
