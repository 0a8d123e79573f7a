/* calib_internal.h - helpers shared by the calibrator files (calib_*.c):
 * option defaults and checks, and the common shape of a result. Not part of
 * the module's interface (see calib.h). */
#ifndef QF_QUANT_CALIB_INTERNAL_H
#define QF_QUANT_CALIB_INTERNAL_H

#include "quant/calib.h"

#define QF_CALIB_DEFAULT_BITS 8
#define QF_CALIB_DEFAULT_PERCENTILE 99.99
#define QF_CALIB_DEFAULT_MSE_GRID 128

/* What a calibrator starts from, checked once. */
typedef struct qf_calib_input {
    qf_calib_opts opts; /* defaults filled in, ranges checked */
    qf_observer_stats st;
    qf_hist h;        /* valid when the histogram was asked for */
    double absmax;    /* max(|min|, |max|) */
    const char *name; /* the observer's name, for messages */
} qf_calib_input;

/* Fill `in` from the observer and the options (opts may be NULL). Fails when
 * nothing was observed, an option is out of range, or need_hist and the
 * observer has no histogram. `method` names the caller in messages. */
qf_status qf_calib_prepare(const qf_observer *o, const qf_calib_opts *opts, bool need_hist,
                           const char *method, qf_calib_input *in, qf_err *err);

/* Store a result: symmetric -> (-t, t) with t clamped to [0, absmax];
 * asymmetric -> (lo, hi) clamped to the observed [min, max]. */
void qf_calib_store(const qf_calib_input *in, double lo, double hi, float *lo_out, float *hi_out);

#endif /* QF_QUANT_CALIB_INTERNAL_H */
