/* qdq_export.h - export a quantized qforge graph (docs/quantized-graph.md) as
 * a standard ONNX QDQ model that ONNX Runtime runs with its integer kernels.
 *
 * Every qforge-domain op becomes DequantizeLinear -> float op ->
 * QuantizeLinear (ORT's QDQ transformer fuses these groups into QLinearConv,
 * QGemm, QLinearAdd, ...). The rewrite, op by op:
 *  - activation values keep their names and are the outputs of
 *    QuantizeLinear nodes with their qparams (0-d scale and zero point, per
 *    tensor); each qforge consumer reads a DequantizeLinear of its own;
 *  - QConv / QGemm: weights become an int8 initializer with the logical
 *    shape (4-/2-bit packed rows are unpacked) read through a per-channel
 *    DequantizeLinear (axis 0, zero point 0); the bias an int32 initializer
 *    read through a DequantizeLinear of scale s_x * s_w[c]; then Conv (the
 *    node's spatial attributes) or Gemm (transB = 1; an input of rank other
 *    than 2 is first flattened to [M, K] on the integer side, as QGemm folds
 *    its leading dims, so the output keeps QGemm's [M, N] shape and the bias
 *    stays inside the fusable group);
 *  - a fused clamp (act_min/act_max tighter than the output type) becomes
 *    Relu (act_min is the zero point, act_max open) or Clip with the
 *    dequantized bounds, between the float op and the QuantizeLinear;
 *  - QAdd, QMul, QMaxPool, QAveragePool, QGlobalAveragePool, QConcat, QResize
 *    (scales/sizes attributes become the Resize input), QPad (pads attribute
 *    becomes the input, constant 0.0: the zero point is real 0) likewise;
 *  - QLut: its 256-entry table cannot be turned back into a float function,
 *    so it is exported integer-exact as Cast(q -> int32) [+ 128 for int8] ->
 *    Gather(table initializer of the activation type), which ORT runs on
 *    int8/uint8 directly;
 *  - QuantizeLinear, DequantizeLinear and every other default-domain node
 *    (float fallback regions, layout ops on integer data) are copied as they
 *    are; Squeeze/Unsqueeze written for opset < 13 get their axes as an input.
 * Graph inputs and outputs keep their names and types.
 *
 * Activation type: int8 (the graph's own), or uint8 (ORT prefers u8
 * activations on CPUs without VNNI): then every non-constant int8 value is
 * uint8 with its zero point (and, for QLut, its table) shifted by +128, which
 * represents exactly the same real numbers. Weights stay int8. An int8 graph
 * input or output is converted at the boundary (Cast, Add 128, Cast), so the
 * model's interface does not change. 16-bit activations export as int16
 * QuantizeLinear/DequantizeLinear, which needs opset 21.
 *
 * What ONNX Runtime makes of it (1.30, x86; tests/test_qdq_export.c checks
 * the optimized graph): with uint8 activations DQ -> Conv/Gemm -> Q become
 * QLinearConv/QGemm, Add/Mul/Concat/AveragePool/GlobalAveragePool their
 * QLinear* ops, MaxPool and the QLut Gather run on uint8 directly; Resize
 * and Pad stay float between Q and DQ. With int8 activations the model runs
 * and agrees just as well, but ORT on x86 fuses little of it. A clamp that
 * the output quantization does not already imply (Relu with a zero point
 * above the type's minimum, Clip) sits between the op and its Q, so ORT
 * runs that layer in float.
 */
#ifndef QF_QUANT_QDQ_EXPORT_H
#define QF_QUANT_QDQ_EXPORT_H

#include "io/onnx_export.h"

typedef enum qf_qdq_act_type {
    QF_QDQ_ACT_INT8 = 0, /* default */
    QF_QDQ_ACT_UINT8 = 1
} qf_qdq_act_type;

#define QF_QDQ_DEFAULT_OPSET 13
#define QF_QDQ_MIN_OPSET 13 /* per-axis DequantizeLinear, Resize/Pad/Clip inputs */

typedef struct qf_qdq_export_options {
    qf_qdq_act_type act_type;
    /* Default-domain opset of the model: 0 = QF_QDQ_DEFAULT_OPSET, else
     * QF_QDQ_MIN_OPSET..QF_ONNX_EXPORT_MAX_OPSET. Copied nodes that declare a
     * higher opset raise it (the file declares the highest). */
    int opset;
    /* File-level options (external data, symbolic batch, producer); NULL =
     * qf_onnx_export_options_init's defaults. Its opset field is ignored. */
    const qf_onnx_export_options *onnx;
} qf_qdq_export_options;

/* Zero everything: int8 activations, opset 13, default file options. */
void qf_qdq_export_options_init(qf_qdq_export_options *opt);

/* Build the float + QDQ graph from the quantized graph qg (not modified;
 * it need not be parsed or sorted). *out is a new graph owned by the caller
 * (qf_graph_free). Errors (message names the node and tensor):
 *  QF_ERR_FORMAT      a quantized value without quantization parameters (or
 *                     with bad ones: scale <= 0, zero point outside its
 *                     type), weights whose size does not match their shape;
 *  QF_ERR_UNSUPPORTED an op or attribute with no QDQ form (a qforge op this
 *                     exporter does not know, a non-constant weight, 16-bit
 *                     activations below opset 21, AveragePool dilations
 *                     below opset 19);
 *  QF_ERR_INVALID_ARG bad options; QF_ERR_NOMEM. */
qf_status qf_qdq_build(const qf_graph *qg, const qf_qdq_export_options *opt, qf_graph **out,
                       qf_err *err);

/* qf_qdq_build, then qf_onnx_export to `path` (atomically: on any error no
 * file is left behind; an unwritable path is QF_ERR_IO). opt NULL =
 * defaults. */
qf_status qf_qdq_export(const qf_graph *qg, const char *path, const qf_qdq_export_options *opt,
                        qf_err *err);

#endif /* QF_QUANT_QDQ_EXPORT_H */
