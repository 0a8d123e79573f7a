/* calib_entropy.c - TensorRT-style entropy calibration: the clipping
 * threshold whose quantized distribution Q is closest, in KL divergence, to
 * the clipped reference distribution P (the algorithm is specified in
 * calib.h; TensorRT's "8-bit Inference with TensorRT", GTC 2017, with the
 * MXNet/TVM smoothing of zero bins).
 *
 * Evaluating KL(P||Q) directly costs O(i) per candidate i, O(n^2) in all.
 * Here each candidate costs O(nq) instead: inside one quantization level Q
 * is constant on the bins where P != 0, so the level's share of
 * sum P log Q is (its P mass) * log(level count / its non-zero bins), and
 * sum P log P comes from a prefix sum; only the last kept bin (which also
 * receives the outliers) needs special care. tests/fixtures/kl_reference.py
 * is the direct O(n^2) form used to check this one. */
#include <math.h>

#include "quant/calib_internal.h"

#define KL_EPS 1e-4 /* count given to empty bins of P and Q before normalizing */

static double xlogx(double v) { return v > 0 ? v * log(v) : 0; }

/* h: |x| histogram of n bins; H, Z, L: prefix sums (n + 1 entries) of the
 * counts, of the number of empty bins and of h log h. Returns the number of
 * bins i (nq <= i <= n) to keep. */
static size_t kl_best_bins(const double *h, size_t n, size_t nq, const double *H, const double *Z,
                           const double *L) {
    const double leps = log(KL_EPS);
    double total = H[n];
    double best = INFINITY;
    size_t best_i = n;
    for (size_t i = nq; i <= n; i++) {
        size_t last = i - 1;
        double outliers = total - H[i];
        double p_last = h[last] + outliers;
        /* P differs from h[0, i) only in its last bin. */
        bool last_gains = h[last] == 0 && p_last > 0;
        double p_zeros = Z[i] - (last_gains ? 1 : 0);
        double sum_p = total + KL_EPS * p_zeros; /* sum of smoothed P */
        double plogp = L[last] + xlogx(p_last) + KL_EPS * leps * p_zeros;
        double plogq = 0, sum_q = 0;
        for (size_t j = 0; j < nq; j++) {
            /* level j holds the bins k with floor(k * nq / i) == j */
            size_t a = (size_t)(((uint64_t)j * i + nq - 1) / nq);
            size_t b = (size_t)(((uint64_t)(j + 1) * i + nq - 1) / nq);
            double s = H[b] - H[a]; /* level count, outliers excluded */
            double len = (double)(b - a);
            double zeros = Z[b] - Z[a]; /* bins with P == 0 */
            double pmass = s;
            if (b == i) {
                pmass += outliers;
                if (last_gains) zeros -= 1;
            }
            if (s > 0) {
                /* s > 0 means some h > 0 here, so len - zeros >= 1 */
                plogq += pmass * log(s / (len - zeros)) + zeros * KL_EPS * leps;
                sum_q += s + KL_EPS * zeros;
            } else {
                plogq += (pmass + KL_EPS * zeros) * leps;
                sum_q += KL_EPS * len;
            }
        }
        double kl = (plogp - plogq) / sum_p + log(sum_q) - log(sum_p);
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    return best_i;
}

qf_status qf_calib_entropy(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                           qf_err *err) {
    qf_calib_input in;
    qf_status s = qf_calib_prepare(o, opts, true, "entropy", &in, err);
    if (s != QF_OK) return s;
    if (!lo || !hi) return qf_errf(err, QF_ERR_INVALID_ARG, "calibrate entropy: NULL output");
    if (in.absmax == 0 || in.h.width == 0) {
        *lo = *hi = 0;
        return QF_OK;
    }
    int bits = in.opts.bits;
    bool all_levels = !in.opts.symmetric && in.st.min >= 0;
    size_t nq = (size_t)1 << (all_levels ? bits : bits - 1);
    size_t n = in.h.nbins;
    if (nq >= n) { /* as many levels as bins: nothing to gain from clipping */
        qf_calib_store(&in, -in.absmax, in.absmax, lo, hi);
        return QF_OK;
    }
    double *buf = qf_malloc((4 * n + 3) * sizeof *buf);
    if (!buf) return qf_errf(err, QF_ERR_NOMEM, "calibrate entropy '%s': out of memory", in.name);
    double *h = buf, *H = buf + n, *Z = H + n + 1, *L = Z + n + 1;
    H[0] = Z[0] = L[0] = 0;
    for (size_t k = 0; k < n; k++) {
        h[k] = (double)in.h.pos[k] + (double)in.h.neg[k];
        H[k + 1] = H[k] + h[k];
        Z[k + 1] = Z[k] + (h[k] == 0 ? 1 : 0);
        L[k + 1] = L[k] + xlogx(h[k]);
    }
    size_t keep = kl_best_bins(h, n, nq, H, Z, L);
    qf_free(buf);
    double t = (double)keep * in.h.width;
    qf_calib_store(&in, -t, t, lo, hi);
    return QF_OK;
}
