/* calib.h - post-training quantization calibration.
 *
 * Three pieces, used in this order by the PTQ pass:
 *  1. an observer (qf_observer) accumulates statistics of ONE tensor over any
 *     number of calibration batches: running min/max, moving-average min/max,
 *     a zero-anchored histogram, optionally per-channel min/max;
 *  2. a calibrator (qf_calib_range and the four qf_calib_<method> functions)
 *     turns an observer into a clipping range (lo, hi) for a bit width and a
 *     symmetric/asymmetric scheme;
 *  3. qf_calib_qparams turns (lo, hi) into (scale, zero_point) following the
 *     numerics of DESIGN.md; qf_calib_weight_scales does ranges + scales for
 *     static weights per output channel, straight from the weight values.
 *
 * Histogram design (the choice asked for by the PTQ plan, and its error):
 *  - Two magnitude histograms that share one bin width w and one bin count n:
 *    pos[k] counts x >= 0 with x in [k*w, (k+1)*w), neg[k] counts x < 0 with
 *    -x in [k*w, (k+1)*w); the top edge n*w belongs to the last bin. Together
 *    they are a 2n-bin histogram of x over [-n*w, n*w] whose middle edge is
 *    exactly 0. Anchoring at 0 loses nothing because every quantization range
 *    contains 0 (zero must be exactly representable), and it gives the
 *    |x| histogram (pos + neg) that TensorRT-style entropy calibration needs
 *    at full resolution, while the signed one still serves asymmetric tails.
 *  - The first batch with a non-zero value sets w = absmax / B (B = hist_bins,
 *    default 2048), n = B: the bins of numpy.histogram(|x|, B, (0, absmax)),
 *    up to values within rounding of an edge.
 *  - When a later batch has |x| > n*w: the bin count grows first (new bins are
 *    empty, same width; storage holds up to 2B bins per side); if 2B bins
 *    are not enough, the width is multiplied by the smallest integer factor f
 *    that makes the range fit and every f consecutive bins are merged. Old
 *    edges are a subset of the new ones, so no count is lost or moved to a
 *    wrong bin: the merged histogram equals the one that binning all past
 *    samples at the new width would give (up to floating-point rounding of
 *    values lying on an edge). The only error is the usual within-bin one,
 *    and the resolution stays between B and 2B bins over [0, absmax]
 *    (absmax <= n*w < absmax + w, so w < absmax / (B - 1)): a grown
 *    histogram is as fine as a one-shot one, and e.g. its percentiles are
 *    within one of its bin widths of the exact order statistic, like the
 *    one-shot histogram's.
 *  - Cost: two sweeps per batch (min/max + finiteness, then binning), O(n);
 *    nothing is allocated after the first batch; a merge is O(B) and, as
 *    each one at least doubles w, happens O(log(range growth)) times.

 * Non-finite values (NaN, +-Inf) make qf_observer_observe* fail with
 * QF_ERR_INVALID_ARG and leave the observer unchanged: calibration data that
 * drives a network to NaN/Inf is a bug to report, not something to average.
 *
 * Ownership: the observer owns its memory (qf_observer_free, NULL-safe);
 * pointers returned by the accessors stay valid until the next observe,
 * reset or free of that observer. Nothing here prints or keeps global state;
 * different observers may be used from different threads concurrently.
 */
#ifndef QF_QUANT_CALIB_H
#define QF_QUANT_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "quant/config.h"

/* ====================================================================== */
/* Observer                                                                */
/* ====================================================================== */

#define QF_OBS_DEFAULT_BINS 2048
#define QF_OBS_MIN_BINS 16
#define QF_OBS_MAX_BINS 65536
#define QF_OBS_DEFAULT_MOMENTUM 0.01

typedef struct qf_observer qf_observer;

/* Options; an all-zero struct (or NULL) means the defaults. */
typedef struct qf_observer_opts {
    int hist_bins;     /* nominal bins per side B, [QF_OBS_MIN_BINS, QF_OBS_MAX_BINS]; 0 -> 2048 */
    double momentum;   /* moving-average constant c in (0, 1]; 0 -> 0.01 (PyTorch's
                        * MovingAverageMinMaxObserver): m <- m + c * (batch - m) */
    bool no_histogram; /* keep min/max only (percentile/entropy/mse then refuse) */
    bool per_channel;  /* also keep min/max per slice along `axis`; needs
                        * qf_observer_observe_tensor */
    int axis;          /* channel axis when per_channel, 0 <= axis < rank */
} qf_observer_opts;

/* Create an observer. `name` (may be NULL) is copied and used in error
 * messages (the tensor's name). opts may be NULL. */
qf_status qf_observer_create(const qf_observer_opts *opts, const char *name, qf_observer **out,
                             qf_err *err);
void qf_observer_free(qf_observer *o);
/* Forget everything observed (options and name are kept). */
void qf_observer_reset(qf_observer *o);

/* Observe one batch of n float values (per-tensor statistics only; an
 * observer created with per_channel must use qf_observer_observe_tensor).
 * n == 0 is a no-op (it does not count as a batch for the moving average). */
qf_status qf_observer_observe(qf_observer *o, const float *x, size_t n, qf_err *err);
/* Observe one F32 tensor; with per_channel, t->dims[axis] must be the same in
 * every batch. */
qf_status qf_observer_observe_tensor(qf_observer *o, const qf_tensor *t, qf_err *err);

typedef struct qf_observer_stats {
    uint64_t count;        /* values observed */
    uint64_t batches;      /* non-empty batches observed */
    double min, max;       /* running min / max (exact float values); 0 if count == 0 */
    double ma_min, ma_max; /* moving-average min / max; the first batch sets them */
} qf_observer_stats;

/* Histogram view (see the design note above). pos/neg point into the
 * observer. width == 0 means only zeros were seen (all in pos[0]). */
typedef struct qf_hist {
    double width;        /* bin width w (> 0 unless only zeros were seen) */
    size_t nbins;        /* bins in use per side n; range covered [-n*w, n*w] */
    const uint64_t *pos; /* pos[k]: x >= 0, x in [k*w, (k+1)*w) */
    const uint64_t *neg; /* neg[k]: x < 0, -x in [k*w, (k+1)*w) */
    uint64_t total;      /* sum of all counts == stats.count */
} qf_hist;

const char *qf_observer_name(const qf_observer *o); /* "" when created without one */
void qf_observer_get_stats(const qf_observer *o, qf_observer_stats *out);
/* QF_ERR_INVALID_ARG when the observer was created with no_histogram. */
qf_status qf_observer_get_hist(const qf_observer *o, qf_hist *out, qf_err *err);
/* Per-channel running min/max (arrays of *n floats, owned by the observer).
 * QF_ERR_INVALID_ARG when not per_channel or nothing observed yet. */
qf_status qf_observer_get_channels(const qf_observer *o, int64_t *n, const float **min,
                                   const float **max, qf_err *err);

/* ====================================================================== */
/* Calibrators: observer -> clipping range                                 */
/* ====================================================================== */

/* The method enum (qf_calib_method: QF_CALIB_MINMAX, QF_CALIB_PERCENTILE,
 * QF_CALIB_ENTROPY, QF_CALIB_MSE) and its names for the CLI and configs
 * ("minmax", "percentile", "entropy", "mse": qf_calib_method_name and
 * qf_calib_method_parse, whose error lists the valid names) live in
 * quant/config.h, shared with the config parser. */

/* Options; all-zero means: minmax, 8 bits, asymmetric, running min/max. */
typedef struct qf_calib_opts {
    qf_calib_method method;
    int bits;            /* 2..16; 0 -> 8 */
    bool symmetric;      /* result is [-t, t]; else (lo, hi) from each tail */
    bool moving_average; /* minmax: use the moving-average min/max */
    double percentile;   /* percentile: in [50, 100]; 0 -> 99.99 */
    int mse_grid;        /* mse: coarse grid points, [8, 4096]; 0 -> 128 (plus 64 refined) */
} qf_calib_opts;

/* Clipping range of the observed tensor for opts->method.
 * Output: symmetric -> *lo = -t, *hi = t with 0 <= t <= observed absmax;
 * asymmetric -> observed min <= *lo <= *hi <= observed max (lo, hi need not
 * contain 0: qf_calib_qparams extends the range to 0). All-zero data gives
 * (0, 0). Fails with QF_ERR_INVALID_ARG when nothing was observed or (for
 * the histogram methods) the observer has no histogram.
 *
 * Methods (bits b, B histogram bins, w bin width):
 *  minmax     (min, max) or the moving averages; symmetric: t = max(|min|, |max|).
 *  percentile p: symmetric: t = the value below which p% of |x| lies;
 *             asymmetric: lo / hi = the values below which (100-p)% / p% of
 *             x lies. Linear interpolation inside the bin holding the target
 *             rank, so the result is within one bin width of the exact order
 *             statistic of rank ceil(p/100 * count).
 *  entropy    TensorRT's KL-divergence threshold on the |x| histogram h
 *             (n bins): for every candidate i in [nq, n]: P = h[0..i) with
 *             the outliers sum(h[i..n)) added to P[i-1]; Q = h[0..i)
 *             merged into nq levels (bin k -> level floor(k*nq/i)), each
 *             level's count spread evenly over the bins of the level where
 *             P != 0; zeros of P and Q replaced by eps = 1e-4 (in counts);
 *             both normalized; KL(P||Q). Threshold t = i_min * w (the top
 *             edge of the last kept bin; the first minimum wins).
 *             nq = 2^(b-1), except 2^b for asymmetric non-negative data
 *             (post-ReLU: all 2^b levels then cover [0, t]). When nq >= n the
 *             full range is returned. Asymmetric data of both signs: the
 *             symmetric t is applied to both tails, lo = max(min, -t),
 *             hi = min(max, t) (an approximation: TensorRT is symmetric only).
 *  mse        the range minimizing the expected squared error of
 *             dequantize(quantize(x)) over the histogram, with x uniform
 *             inside each bin (exact integrals of the rounding sawtooth inside
 *             the range and of (|x| - clip)^2 outside). Candidates: symmetric
 *             t = absmax * k / G, asymmetric (lo, hi) = (min(min,0), max(max,0))
 *             * k / G, k = 1..G (G = mse_grid), then 64 points between the
 *             neighbours of the best. The asymmetric grid is the exact one of
 *             qf_calib_qparams (float scale, rounded zero point). */
qf_status qf_calib_range(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                         qf_err *err);
/* The same, one method each (opts->method is ignored). */
qf_status qf_calib_minmax(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                          qf_err *err);
qf_status qf_calib_percentile(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                              qf_err *err);
qf_status qf_calib_entropy(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                           qf_err *err);
qf_status qf_calib_mse(const qf_observer *o, const qf_calib_opts *opts, float *lo, float *hi,
                       qf_err *err);

/* ====================================================================== */
/* Range -> quantization parameters                                        */
/* ====================================================================== */

typedef struct qf_qparam {
    float scale;        /* > 0, finite */
    int32_t zero_point; /* qmin <= zero_point <= qmax */
    int32_t qmin, qmax; /* the clamp bounds the quantizer must use */
} qf_qparam;

/* (lo, hi) -> (scale, zero_point) for `bits` in [2, 16] (DESIGN.md numerics):
 *  asymmetric: lo = min(lo, 0), hi = max(hi, 0) (zero exactly representable);
 *     qmin = -2^(b-1), qmax = 2^(b-1)-1 (signed) or 0, 2^b-1 (unsigned);
 *     scale = (float)((hi - lo) / (qmax - qmin));
 *     zero_point = clamp(round_half_even(qmin - lo / scale), qmin, qmax).
 *  symmetric: t = max(|lo|, |hi|), restricted range: qmax_r = 2^(b-1)-1,
 *     scale = (float)(t / qmax_r); signed: zero_point = 0,
 *     [qmin, qmax] = [-qmax_r, qmax_r]; unsigned: zero_point = 2^(b-1),
 *     [qmin, qmax] = [1, 2^b - 1] (uint8: zp 128, like ONNX symmetric uint8).
 *  Degenerate ranges: lo == hi == 0 (an all-zero tensor) gives scale = 1 (any
 *  scale represents 0 exactly; 1 keeps later multipliers well scaled); a
 *  positive scale below FLT_MIN (denormal range) is raised to FLT_MIN so that
 *  x / scale stays finite.
 * lo, hi must be finite with lo <= hi, else QF_ERR_INVALID_ARG. */
qf_status qf_calib_qparams(float lo, float hi, int bits, bool symmetric, bool is_signed,
                           qf_qparam *out, qf_err *err);

/* Symmetric weight scales (zero point 0, restricted range, b in [2, 8])
 * computed from the weight values themselves:
 *  w: F32 tensor; axis: the output-channel axis (0 <= axis < rank) giving
 *     dims[axis] scales, or axis < 0 for one per-tensor scale;
 *  method QF_CALIB_MINMAX: scale = max|w_c| / qmax_r;
 *         QF_CALIB_MSE: t minimizing sum (w - s*clamp(rhe(w/s)))^2 over the
 *         channel's own values (exact, no histogram), s = t / qmax_r, searched
 *         on t = max|w_c| * k/100, k = 1..100, then 50 points between the
 *         neighbours of the best (what keeps 4-bit weights accurate);
 *         other methods: QF_ERR_UNSUPPORTED.
 *  scales: caller-owned, dims[axis] floats (1 when axis < 0). An all-zero
 *  channel gets scale 1. Non-finite weights: QF_ERR_INVALID_ARG. */
qf_status qf_calib_weight_scales(const qf_tensor *w, int axis, int bits, qf_calib_method method,
                                 float *scales, qf_err *err);

#endif /* QF_QUANT_CALIB_H */
