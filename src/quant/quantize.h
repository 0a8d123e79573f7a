/* quantize.h - post-training quantization: float graph + calibration data
 * + config -> quantized graph (docs/quantized-graph.md) that the reference
 * runtime executes with integer kernels.
 *
 * Steps: clone and optimize the float graph (BatchNorm folding, identity and
 * dead-code removal); fuse Relu/Clip into their producer's output range;
 * run the float graph over the calibration set observing every activation;
 * choose activation ranges with the configured calibrator; quantize weights
 * per channel (MSE-optimal clipping below 8 bits); lower each op to its
 * qforge integer op, or to DequantizeLinear -> float op -> QuantizeLinear
 * when it has no integer kernel. */
#ifndef QF_QUANT_QUANTIZE_H
#define QF_QUANT_QUANTIZE_H

#include "io/data.h"
#include "quant/config.h"

/* Progress callback: done/total calibration samples. */
typedef void (*qf_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct qf_quant_options {
    int64_t calib_limit; /* samples used for calibration; 0 = 1000 */
    int batch;           /* calibration batch; 0 = 32 */
    int num_threads;     /* float runtime threads; 0 = 1 */
    qf_progress_fn progress;
    void *progress_user;
    const char *config_path; /* named in config errors (NULL: "config") */
    /* Imposed parameters instead of calibrated ones (the QAT freeze uses the
     * ranges and step sizes training ended with). Each returns true and
     * fills its outputs to impose them; NULL: calibrate everything.
     * act_params: activation value (float graph name) at `bits`;
     * weight_scales: the `rows` per-output-channel scales of a layer's
     * weights (rows as QConv/QGemm store them: output channels). */
    bool (*act_params)(void *user, const char *value, int bits, float *scale, int32_t *zp);
    bool (*weight_scales)(void *user, const char *layer, int64_t rows, float *scales);
    void *params_user;
} qf_quant_options;

/* What happened to one node of the (optimized) float graph. */
typedef struct qf_quant_layer {
    char name[128];   /* node name */
    char op[32];      /* float op type */
    char lowered[32]; /* integer op ("QConv", ...) or "float" (fallback) or "fused" */
    int w_bits;       /* 0 when the node has no weights */
    int act_bits;
    float out_scale; /* output activation quantization */
    int32_t out_zero_point;
    float clip_lo, clip_hi; /* calibrated range (after fusion) */
    float obs_min, obs_max; /* observed range */
    double clip_fraction;   /* share of calibration values outside the range */
    char out_value[128];    /* name of the output activation value */
} qf_quant_layer;

typedef struct qf_quant_report {
    int n_layers;
    qf_quant_layer *layers; /* qf_malloc'd; free with qf_quant_report_free */
    int64_t calib_samples;
    int n_float_fallback; /* nodes left in float */
    double calib_seconds;
    int n_gptq;         /* layers whose weights GPTQ rounded */
    int n_gptq_skipped; /* weighted layers left at nearest rounding (memory) */
    int64_t gptq_rows;  /* Hessian input rows of the first GPTQ layer */
    /* layers with asymmetric weights some w - zero_point of which falls
     * outside int8 (8-bit only): the runtime's x86 kernels cannot take them
     * and they run the portable ones (qforge bench --profile) */
    int n_asym_wide;
    /* layers some weight of which (w - zero_point) exceeds 64 in magnitude,
     * so two of them can saturate AVX2's vpmaddubsw (255 * (|a| + |b|) >
     * 32767): on CPUs without VNNI their x86 kernels add exact fix-ups or
     * run the slower sign form. 0 with reduce_range and symmetric weights. */
    int n_avx2_wide;
} qf_quant_report;

void qf_quant_report_free(qf_quant_report *r);

/* Quantize `fg` (not modified) using calibration samples from `calib`.
 * On success *out is a new graph owned by the caller (qf_graph_free) and
 * *report (if non-NULL) describes each layer. Errors name the model, the
 * dataset or the node: e.g. calibration data whose sample shape does not
 * fit the model's input. */
qf_status qf_quantize(const qf_graph *fg, const qf_dataset *calib, const qf_qconfig *cfg,
                      const qf_quant_options *opt, qf_graph **out, qf_quant_report *report,
                      qf_err *err);

#endif /* QF_QUANT_QUANTIZE_H */
