/* verify.h - how much did quantization cost? Runs the float model and the
 * quantized model on the same samples and reports top-1 of both, their
 * agreement, and per layer the SQNR of the quantized activation against its
 * float twin (values are paired by name, see docs/quantized-graph.md). */
#ifndef QF_QUANT_VERIFY_H
#define QF_QUANT_VERIFY_H

#include "io/data.h"
#include "quant/quantize.h"

typedef struct qf_verify_layer {
    char value[128];    /* activation value name */
    char node[128];     /* quantized node that writes it */
    char op[32];        /* its op type */
    int bits;           /* activation bits */
    int w_bits;         /* weight bits of that node (0: none) */
    float scale;
    int32_t zero_point;
    double signal, noise; /* sums of x^2 and (x - dq(q))^2 over all elements */
    double sqnr_db;       /* 10 log10(signal / noise); +inf when noise == 0 */
    double clip_fraction; /* float values outside the representable range */
    int64_t count;
} qf_verify_layer;

typedef struct qf_verify_result {
    int64_t n;             /* samples evaluated */
    int64_t top1_float, top1_quant, agree;
    int n_layers;
    qf_verify_layer *layers; /* qf_malloc'd, graph order of the quantized model */
    double output_sqnr_db;   /* of the first graph output */
    double seconds_float, seconds_quant;
} qf_verify_result;

typedef struct qf_verify_options {
    int64_t limit;  /* 0 = all samples */
    int batch;      /* 0 = 32 */
    int num_threads;
    qf_progress_fn progress;
    void *progress_user;
} qf_verify_options;

qf_status qf_verify(const qf_graph *float_g, const qf_graph *quant_g, const qf_dataset *ds,
                    const qf_verify_options *opt, qf_verify_result *res, qf_err *err);
void qf_verify_result_free(qf_verify_result *r);

#endif /* QF_QUANT_VERIFY_H */
