/* regularize.c - sparsity-inducing penalties a training loop adds to its
 * loss: L1 on weights (drives single weights to zero, before magnitude
 * pruning) and group lasso over output channels (drives whole filters to
 * zero, before structured pruning; Wen et al. 2016). Each returns the
 * penalty and adds its (sub)gradient into a gradient array. */
#include <math.h>

#include "prune/prune.h"

float qf_prune_l1_penalty(const float *w, size_t n, float lambda, float *grad) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += fabs(w[i]);
        /* subgradient 0 at w = 0, so pruned weights stay put */
        if (grad && w[i] != 0.0f) grad[i] += w[i] > 0 ? lambda : -lambda;
    }
    return (float)(lambda * sum);
}

float qf_prune_group_lasso(const float *w, int64_t outer, int64_t ch, int64_t inner, float lambda,
                           float *grad) {
    double total = 0;
    for (int64_t c = 0; c < ch; c++) {
        double ss = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                double v = w[(o * ch + c) * inner + i];
                ss += v * v;
            }
        double norm = sqrt(ss);
        total += norm;
        if (!grad || norm == 0) continue; /* subgradient 0 for an all-zero group */
        float k = (float)(lambda / norm);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (o * ch + c) * inner + i;
                grad[at] += k * w[at];
            }
    }
    return (float)(lambda * total);
}
