/* config.h - quantization settings: the JSON config users already write for
 * other toolkits, plus CLI overrides, resolved against a graph's layers.
 *
 *   {"num_bits": [8, 4, 8, 8] | {"default": 8, "conv1": 4},
 *    "act_bits": 8 | {"default": 8, "fc2": 16},
 *    "per_channel": true, "symmetric": true,
 *    "calibration": "minmax" | "percentile" | "entropy" | "mse",
 *    "percentile": 99.99, "requant": "fp32" | "fixed"}
 *
 * A list maps, in graph order, onto the quantizable layers (Conv, Gemm, and
 * MatMul with a constant weight); names are ONNX node names. */
#ifndef QF_QUANT_CONFIG_H
#define QF_QUANT_CONFIG_H

#include "ir/graph.h"

typedef enum qf_calib_method {
    QF_CALIB_MINMAX = 0,
    QF_CALIB_PERCENTILE,
    QF_CALIB_ENTROPY,
    QF_CALIB_MSE
} qf_calib_method;

typedef enum qf_rounding { QF_ROUND_NEAREST = 0, QF_ROUND_GPTQ = 1 } qf_rounding;

typedef enum qf_requant_mode { QF_REQUANT_FP32 = 0, QF_REQUANT_FIXED = 1 } qf_requant_mode;

#define QF_QCONFIG_MAX_LAYERS 512

typedef struct qf_qconfig_entry {
    char name[128]; /* node name; "" for list entries */
    int bits;
} qf_qconfig_entry;

typedef struct qf_qconfig {
    int default_w_bits;   /* 2..8, default 8 */
    int default_act_bits; /* 2..8 or 16, default 8 */
    bool w_list;          /* num_bits given as a list */
    int n_w;              /* entries in w (list or named) */
    qf_qconfig_entry w[QF_QCONFIG_MAX_LAYERS];
    int n_act; /* named act_bits entries */
    qf_qconfig_entry act[QF_QCONFIG_MAX_LAYERS];
    bool per_channel;        /* default true */
    bool symmetric_weights;  /* default true (DESIGN.md); false = asymmetric weights */
    qf_calib_method calib;   /* default entropy... see qf_qconfig_default */
    float percentile;        /* default 99.99 */
    qf_requant_mode requant; /* default fp32 */
    /* Empirical bias correction (Nagel et al. 2019): subtract from each
     * output channel's bias the mean error the weight quantization adds,
     * (W_q - W) . E[x], with E[x] per input channel from the calibration
     * data. Default false. */
    bool bias_correction;
    /* How weights round to their grid once the scales are chosen:
     * QF_ROUND_NEAREST, or QF_ROUND_GPTQ (quant/gptq.h: column by column,
     * each rounding error moved onto the columns not yet rounded as the
     * layer's input statistics say cancels it best). Default nearest. */
    qf_rounding rounding;
    /* GPTQ: calibration samples whose activations build the Hessians (the
     * first ones); 0 = every calibration sample. Default 256: GPTQ's paper
     * uses 128 sequences, and a convolution sees every output position of
     * every image, so a few hundred images give far more rows than a
     * layer has columns. A layer that has fewer than twice as many input
     * rows as columns by then (a Gemm after Flatten sees one row per image)
     * goes on accumulating over the rest of the calibration set. */
    int gptq_samples;
    /* Saturation-free weights for AVX2 without VNNI (ONNX Runtime's
     * reduce_range): every layer's weight bits are capped at 7, so a
     * symmetric weight is within [-63, 63], any two of them sum to at most
     * 126 in magnitude, and vpmaddubsw's int16 pair sums (uint8 activations,
     * 255 * 126 = 32130) cannot saturate: the AVX2 kernels run their plain
     * vpmaddubsw path, with no exactness fix-ups and no sign form.
     * Costs about 6 dB of weight SQNR. Asymmetric weights keep w - zero
     * point within [-126, 126] only. Default false. */
    bool reduce_range;
} qf_qconfig;

/* Defaults: 8-bit per-channel symmetric weights, 8-bit activations,
 * minmax calibration, fp32 requantization. */
void qf_qconfig_default(qf_qconfig *c);
/* Parse a JSON config (text of `len` bytes, `path` named in errors) on top
 * of the current contents of c. Unknown keys are errors (typos must not be
 * silently ignored); so are bits out of range and wrong types. */
qf_status qf_qconfig_parse_json(qf_qconfig *c, const char *text, size_t len, const char *path,
                                qf_err *err);
qf_status qf_qconfig_load_file(qf_qconfig *c, const char *path, qf_err *err);
qf_status qf_calib_method_parse(const char *s, qf_calib_method *out, qf_err *err);
const char *qf_calib_method_name(qf_calib_method m);

/* Is node n a quantizable layer (Conv, Gemm, MatMul with constant weight)? */
bool qf_node_is_quantizable_layer(const qf_graph *g, const qf_node *n);

/* Per-node weight and activation bits for graph g (arrays of g->n_nodes;
 * 0 for non-layer nodes in w_bits). Errors: a name that is not a layer of
 * the graph (the message lists the layers), a list whose length differs
 * from the number of layers. */
qf_status qf_qconfig_resolve(const qf_qconfig *c, const qf_graph *g, const char *config_path,
                             int *w_bits, int *act_bits, qf_err *err);

#endif /* QF_QUANT_CONFIG_H */
