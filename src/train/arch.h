/* arch.h - build float networks as qforge graphs with a small functional
 * API (the equivalent of a Keras functional model), and the built-in
 * architectures `qforge train --arch NAME` offers.
 *
 * Usage:
 *   qf_arch *a; qf_arch_begin(seed, &a, err);
 *   int x = qf_arch_input(a, "input", 1, 28, 28);
 *   x = qf_arch_conv(a, "conv1", x, 16, 3, 1, QF_ARCH_PAD_SAME, 1, false);
 *   x = qf_arch_batchnorm(a, "bn1", x);
 *   x = qf_arch_relu(a, "relu1", x);
 *   ...
 *   qf_arch_output(a, x, "logits");
 *   qf_arch_finish(a, &graph, err);      (frees the builder in every case)
 *
 * Layer functions take and return graph value indices. Errors are sticky:
 * a failing call records the first error and returns -1, every later call
 * that receives -1 (or runs after an error) returns -1 too, and
 * qf_arch_finish reports that first error. So a whole model can be written
 * without checking each call.
 *
 * Graphs are NCHW, float32, default-domain opset 13, with a dynamic batch
 * (-1) first dimension. Names: the node and its output value take the layer
 * name; parameters are "<layer>.weight" / "<layer>.bias" and, for
 * BatchNormalization, "<layer>.running_mean" / "<layer>.running_var" (the
 * torchvision state_dict names). A NULL or empty layer name gets "<op>_<k>".
 * Initialisation (seeded, deterministic): conv weights Kaiming-normal with
 * fan_out = out_ch * k * k (torchvision's ResNet/MobileNet init), dense
 * weights Kaiming-normal with fan_in (std = sqrt(2 / fan)), biases 0,
 * BatchNormalization gamma 1, beta 0, running mean 0, running var 1. */
#ifndef QF_TRAIN_ARCH_H
#define QF_TRAIN_ARCH_H

#include "ir/graph.h"

/* Padding argument of conv/pool: a non-negative int pads every side by
 * that much; QF_ARCH_PAD_SAME is Keras' "same" (output = ceil(in / stride),
 * the odd extra row/column of padding at the bottom/right, ONNX SAME_UPPER)
 * written as explicit pads. */
#define QF_ARCH_PAD_SAME (-1)

typedef struct qf_arch qf_arch;

qf_status qf_arch_begin(uint64_t seed, qf_arch **out, qf_err *err);
/* Release a builder without producing a graph (NULL is a no-op). */
void qf_arch_free(qf_arch *a);
/* The graph under construction (for callers that add their own nodes). */
qf_graph *qf_arch_graph(qf_arch *a);

/* Graph input [N, c, h, w] (N dynamic). */
int qf_arch_input(qf_arch *a, const char *name, int64_t c, int64_t h, int64_t w);
/* 2-D convolution, square kernel k, stride, pad (>= 0 or QF_ARCH_PAD_SAME),
 * groups (divides both channel counts; groups == in == out: depthwise). */
int qf_arch_conv(qf_arch *a, const char *name, int x, int64_t out_ch, int64_t k, int64_t stride,
                 int64_t pad, int64_t groups, bool bias);
/* BatchNormalization over channels (epsilon 1e-5, momentum 0.9 in ONNX's
 * convention = PyTorch's 0.1). */
int qf_arch_batchnorm(qf_arch *a, const char *name, int x);
int qf_arch_relu(qf_arch *a, const char *name, int x);
/* ReLU6 = Clip(x, 0, 6) with min/max as constant inputs "<name>.min/.max". */
int qf_arch_relu6(qf_arch *a, const char *name, int x);
int qf_arch_maxpool(qf_arch *a, const char *name, int x, int64_t k, int64_t stride, int64_t pad);
/* Average pool; padding is excluded from the mean (count_include_pad 0,
 * as Keras "same"). */
int qf_arch_avgpool(qf_arch *a, const char *name, int x, int64_t k, int64_t stride, int64_t pad);
int qf_arch_global_avgpool(qf_arch *a, const char *name, int x);
/* Element-wise sum of two values of the same shape. */
int qf_arch_add(qf_arch *a, const char *name, int x, int y);
/* Flatten to [N, rest]. */
int qf_arch_flatten(qf_arch *a, const char *name, int x);
/* Fully connected: Gemm(x, W[units, in], b) with transB = 1; x is [N, in]. */
int qf_arch_dense(qf_arch *a, const char *name, int x, int64_t units, bool bias);
/* Dropout with the given ratio in [0, 1) (ratio as a constant input
 * "<name>.ratio"); inference passes values through. */
int qf_arch_dropout(qf_arch *a, const char *name, int x, float ratio);
/* Softmax over axis 1 of an [N, C] value. */
int qf_arch_softmax(qf_arch *a, const char *name, int x);
/* Concatenate n values along the channel axis (other dims must match). */
int qf_arch_concat(qf_arch *a, const char *name, const int *xs, int n);
/* Mark x as a graph output; a non-NULL name renames its value (e.g.
 * "logits"). Returns x, or -1 on error. */
int qf_arch_output(qf_arch *a, int x, const char *name);

/* Finish: check that there is an input and an output, sort, parse the ops
 * and infer shapes. On success *out owns the graph. The builder is freed
 * whatever happens; on error *out is NULL and err has the first error. */
qf_status qf_arch_finish(qf_arch *a, qf_graph **out, qf_err *err);

/* ---- built-in architectures ------------------------------------------ */
typedef struct qf_arch_info {
    const char *name;
    const char *summary;    /* one line for --help */
    int64_t in_ch, in_h, in_w; /* default input */
    int64_t num_classes;    /* default classes */
} qf_arch_info;

/* The table of built-ins (*n receives the count). */
const qf_arch_info *qf_arch_list(int *n);
/* Build built-in `name` with num_classes outputs and in_ch input channels
 * (<= 0: the architecture's default) and the given init seed. Errors:
 * QF_ERR_INVALID_ARG for an unknown name (the message lists the names). */
qf_status qf_arch_build(const char *name, int64_t num_classes, int64_t in_ch, uint64_t seed,
                        qf_graph **out, qf_err *err);

#endif /* QF_TRAIN_ARCH_H */
