/* op_list.h - the op registry's list (X-macro). APPEND ONLY: the enum value
 * of an op is stored in qfm files. Columns: enum suffix, ONNX op type,
 * C identifier of its qf_op_def (defined in the op's kernel file). */
#ifndef QF_IR_OP_LIST_H
#define QF_IR_OP_LIST_H

#define QF_OP_LIST(X)                                     \
    X(CONV, "Conv", conv)                                 \
    X(CONV_TRANSPOSE, "ConvTranspose", conv_transpose)    \
    X(GEMM, "Gemm", gemm)                                 \
    X(MATMUL, "MatMul", matmul)                           \
    X(ADD, "Add", add)                                    \
    X(SUB, "Sub", sub)                                    \
    X(MUL, "Mul", mul)                                    \
    X(DIV, "Div", div)                                    \
    X(POW, "Pow", pow)                                    \
    X(SQRT, "Sqrt", sqrt)                                 \
    X(RELU, "Relu", relu)                                 \
    X(LEAKY_RELU, "LeakyRelu", leaky_relu)                \
    X(CLIP, "Clip", clip)                                 \
    X(SIGMOID, "Sigmoid", sigmoid)                        \
    X(HARD_SIGMOID, "HardSigmoid", hard_sigmoid)          \
    X(HARD_SWISH, "HardSwish", hard_swish)                \
    X(TANH, "Tanh", tanh)                                 \
    X(ERF, "Erf", erf)                                    \
    X(SOFTMAX, "Softmax", softmax)                        \
    X(LOG_SOFTMAX, "LogSoftmax", log_softmax)             \
    X(MAX_POOL, "MaxPool", max_pool)                      \
    X(AVERAGE_POOL, "AveragePool", average_pool)          \
    X(GLOBAL_AVERAGE_POOL, "GlobalAveragePool", global_average_pool) \
    X(BATCH_NORM, "BatchNormalization", batch_norm)       \
    X(LAYER_NORM, "LayerNormalization", layer_norm)       \
    X(FLATTEN, "Flatten", flatten)                        \
    X(RESHAPE, "Reshape", reshape)                        \
    X(TRANSPOSE, "Transpose", transpose)                  \
    X(CONCAT, "Concat", concat)                           \
    X(SPLIT, "Split", split)                              \
    X(SQUEEZE, "Squeeze", squeeze)                        \
    X(UNSQUEEZE, "Unsqueeze", unsqueeze)                  \
    X(SHAPE, "Shape", shape)                              \
    X(GATHER, "Gather", gather)                           \
    X(SLICE, "Slice", slice)                              \
    X(CAST, "Cast", cast)                                 \
    X(CONSTANT, "Constant", constant)                     \
    X(IDENTITY, "Identity", identity)                     \
    X(DROPOUT, "Dropout", dropout)                        \
    X(PAD, "Pad", pad)                                    \
    X(RESIZE, "Resize", resize)                           \
    X(REDUCE_MEAN, "ReduceMean", reduce_mean)             \
    X(GLOBAL_MAX_POOL, "GlobalMaxPool", global_max_pool)  \
    X(ABS, "Abs", abs)                                    \
    X(NEG, "Neg", neg)                                    \
    X(EXP, "Exp", exp)                                    \
    X(LOG, "Log", log)                                    \
    X(RECIPROCAL, "Reciprocal", reciprocal)               \
    X(FLOOR, "Floor", floor)                              \
    X(CEIL, "Ceil", ceil)                                 \
    X(MAX, "Max", max)                                    \
    X(MIN, "Min", min)                                    \
    X(SUM, "Sum", sum)                                    \
    X(MEAN, "Mean", mean)                                 \
    X(ELU, "Elu", elu)                                    \
    X(SELU, "Selu", selu)                                 \
    X(SOFTPLUS, "Softplus", softplus)                     \
    X(PRELU, "PRelu", prelu)                              \
    X(EXPAND, "Expand", expand)                           \
    X(CONSTANT_OF_SHAPE, "ConstantOfShape", constant_of_shape) \
    X(REDUCE_SUM, "ReduceSum", reduce_sum)                \
    X(REDUCE_MAX, "ReduceMax", reduce_max)                \
    X(REDUCE_MIN, "ReduceMin", reduce_min)                \
    X(QUANTIZE_LINEAR, "QuantizeLinear", quantize_linear) \
    X(DEQUANTIZE_LINEAR, "DequantizeLinear", dequantize_linear) \
    X(DYNAMIC_QUANTIZE_LINEAR, "DynamicQuantizeLinear", dynamic_quantize_linear) \
    X(QLINEAR_CONV, "QLinearConv", qlinear_conv)          \
    X(QLINEAR_MATMUL, "QLinearMatMul", qlinear_matmul)    \
    X(CONV_INTEGER, "ConvInteger", conv_integer)          \
    X(MATMUL_INTEGER, "MatMulInteger", matmul_integer)    \
    X(QCONV, "qforge.QConv", qconv)                       \
    X(QGEMM, "qforge.QGemm", qgemm)                       \
    X(QADD, "qforge.QAdd", qadd)                          \
    X(QMUL, "qforge.QMul", qmul)                          \
    X(QMAX_POOL, "qforge.QMaxPool", qmax_pool)            \
    X(QAVERAGE_POOL, "qforge.QAveragePool", qaverage_pool) \
    X(QGLOBAL_AVERAGE_POOL, "qforge.QGlobalAveragePool", qglobal_average_pool) \
    X(QCONCAT, "qforge.QConcat", qconcat)                 \
    X(QRESIZE, "qforge.QResize", qresize)                 \
    X(QPAD, "qforge.QPad", qpad)                          \
    X(QLUT, "qforge.QLut", qlut)                          \
    X(FAKE_QUANTIZE, "qforge.FakeQuantize", fake_quantize)


typedef enum qf_op_id {
#define QF_OP_ENUM_(e, onnx, id) QF_OP_##e,
    QF_OP_LIST(QF_OP_ENUM_)
#undef QF_OP_ENUM_
    QF_OP_COUNT,
    QF_OP_UNKNOWN = -1
} qf_op_id;

#endif /* QF_IR_OP_LIST_H */
