/* cle.h - cross-layer equalisation (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction") as a pass
 * over a float graph.
 *
 * For two layers in a row, A -> (Relu | nothing) -> B, with A's output
 * read by nothing else, output channel i of A is divided by s_i (weights
 * and bias) and input channel i of B multiplied by s_i, with
 *     s_i = sqrt(r1_i / r2_i),
 * r1_i the range (max |w|) of A's output channel i and r2_i the range of
 * B's weights reading input channel i. Both ranges become sqrt(r1_i r2_i),
 * so per-channel weight ranges stop spanning orders of magnitude and a
 * per-tensor scale (or the activation between them) wastes fewer levels.
 * ReLU is positively homogeneous (relu(x / s) = relu(x) / s for s > 0), so
 * the function is unchanged up to float rounding.
 *
 * Pairs handled: Conv -> Conv (any group count on either side: depthwise ->
 * pointwise is the case that gains most), Conv -> Flatten -> Gemm (the
 * Gemm's input features of channel i are i*H*W .. (i+1)*H*W - 1; needs
 * inferred shapes), Gemm -> Gemm. Weights must be constant, float, owned
 * by the graph and read by that node only; BatchNorm must be folded first
 * (qf_pass_optimize), since a BN between the layers breaks the pattern.
 */
#ifndef QF_QUANT_CLE_H
#define QF_QUANT_CLE_H

#include "ir/graph.h"

typedef struct qf_cle_stats {
    int n_pairs;             /* layer pairs equalised */
    double imbalance_before; /* max over pairs and channels of max(r1/r2, r2/r1) */
    double imbalance_after;
} qf_cle_stats;

/* Equalise every pair found in g, `iterations` sweeps (0 = 4; chains of
 * layers converge over sweeps). stats may be NULL. */
qf_status qf_cle_apply(qf_graph *g, int iterations, qf_cle_stats *stats, qf_err *err);

#endif /* QF_QUANT_CLE_H */
