/* qat.h - quantization-aware training: fine-tune a float model through
 * fake quantization, then freeze it into the integer model.
 *
 *  1. prepare: BatchNorm folded into the convolutions (the frozen model has
 *     no BatchNorm either, so training sees the weights the integer model
 *     will use), then post-training quantization with the config gives the
 *     initial ranges: the activation parameters of every value the integer
 *     graph quantizes and the per-channel weight scales;
 *  2. a qforge.FakeQuantize node is put after each of those activations and
 *     on each quantized layer's weights (straight-through estimator; with
 *     `lsq` the step sizes are learned, Esser et al. 2020);
 *  3. train (train/trainer.h) on the labelled data;
 *  4. freeze: the fake-quant nodes are removed and the trained float graph
 *     is quantized with the trained step sizes and zero points imposed, so
 *     the integer model computes what the fake-quantized model did (up to
 *     integer rounding of biases and requantization).
 */
#ifndef QF_QUANT_QAT_H
#define QF_QUANT_QAT_H

#include "quant/quantize.h"
#include "train/trainer.h"

typedef struct qf_qat_options {
    qf_train_options train; /* epochs, optimizer, schedule, progress callbacks */
    bool lsq;               /* learn the step sizes */
    int64_t calib_limit;    /* calibration samples for the initial ranges (0 = 1000) */
    const char *config_path;
    /* where the fake-quantized ONNX model goes after training (NULL: none) */
    const char *fake_quant_onnx;
} qf_qat_options;

typedef struct qf_qat_result {
    qf_train_result train;
    int n_act_sites, n_weight_sites; /* fake-quant nodes inserted */
    double ptq_val_accuracy;         /* fake-quant model before training (-1: no val) */
    double fq_val_accuracy;          /* fake-quant model after training (best epoch) */
} qf_qat_result;

/* Quantization-aware training of `fg` (not modified). `train` trains and
 * calibrates; `val` (may be NULL) picks the best epoch. On success *out is
 * the frozen quantized graph (caller frees) and *report (optional) the
 * freeze's per-layer report. */
qf_status qf_qat(const qf_graph *fg, const qf_dataset *train, const qf_dataset *val,
                 const qf_qconfig *cfg, const qf_qat_options *o, qf_graph **out,
                 qf_quant_report *report, qf_qat_result *res, qf_err *err);

#endif /* QF_QUANT_QAT_H */
