/* observer.c - calibration observer: running and moving-average min/max, a
 * zero-anchored growing histogram and optional per-channel min/max of one
 * tensor over many batches. The histogram layout and its growth rule are
 * documented in calib.h. */
#include <math.h>
#include <string.h>

#include "quant/calib.h"

struct qf_observer {
    char *name;
    size_t bins; /* nominal resolution B */
    size_t cap;  /* storage per side: 2B bins */
    double momentum;
    bool hist_on;
    bool per_channel;
    int axis;
    qf_observer_stats st;
    /* histogram: counts[0, cap) negative side, counts[cap, 2cap) positive */
    double width;
    size_t used;
    uint64_t *counts;
    /* per channel */
    int64_t channels; /* 0 until the first tensor */
    float *ch_min, *ch_max;
};

static const char *obs_name(const qf_observer *o) { return o->name ? o->name : ""; }

qf_status qf_observer_create(const qf_observer_opts *opts, const char *name, qf_observer **out,
                             qf_err *err) {
    qf_observer_opts d;
    memset(&d, 0, sizeof d);
    if (opts) d = *opts;
    if (!out) return qf_errf(err, QF_ERR_INVALID_ARG, "observer: NULL output");
    *out = NULL;
    const char *nm = name ? name : "";
    if (d.hist_bins == 0) d.hist_bins = QF_OBS_DEFAULT_BINS;
    if (d.hist_bins < QF_OBS_MIN_BINS || d.hist_bins > QF_OBS_MAX_BINS)
        return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': hist_bins %d not in [%d, %d]", nm,
                       d.hist_bins, QF_OBS_MIN_BINS, QF_OBS_MAX_BINS);
    if (d.momentum == 0) d.momentum = QF_OBS_DEFAULT_MOMENTUM;
    if (!(d.momentum > 0 && d.momentum <= 1))
        return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': momentum %g not in (0, 1]", nm,
                       d.momentum);
    if (d.per_channel && (d.axis < 0 || d.axis >= QF_MAX_DIMS))
        return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': channel axis %d out of range", nm,
                       d.axis);
    qf_observer *o = qf_calloc(1, sizeof *o);
    if (!o) return qf_errf(err, QF_ERR_NOMEM, "observer '%s': out of memory", nm);
    o->name = qf_strdup(nm);
    o->bins = (size_t)d.hist_bins;
    o->cap = 2 * o->bins;
    o->momentum = d.momentum;
    o->hist_on = !d.no_histogram;
    o->per_channel = d.per_channel;
    o->axis = d.axis;
    if (o->hist_on) o->counts = qf_calloc(2 * o->cap, sizeof *o->counts);
    if (!o->name || (o->hist_on && !o->counts)) {
        qf_observer_free(o);
        return qf_errf(err, QF_ERR_NOMEM, "observer '%s': out of memory", nm);
    }
    *out = o;
    return QF_OK;
}

void qf_observer_free(qf_observer *o) {
    if (!o) return;
    qf_free(o->name);
    qf_free(o->counts);
    qf_free(o->ch_min);
    qf_free(o->ch_max);
    qf_free(o);
}

void qf_observer_reset(qf_observer *o) {
    if (!o) return;
    memset(&o->st, 0, sizeof o->st);
    o->width = 0;
    o->used = 0;
    if (o->counts) memset(o->counts, 0, 2 * o->cap * sizeof *o->counts);
    qf_free(o->ch_min);
    qf_free(o->ch_max);
    o->ch_min = o->ch_max = NULL;
    o->channels = 0;
}

/* Merge every f consecutive bins of one side into one (in place). Group j
 * reads bins >= j*f >= j, so writing bin j never clobbers an unread source. */
static void merge_side(uint64_t *c, size_t used, size_t f) {
    size_t groups = (used + f - 1) / f;
    for (size_t j = 0; j < groups; j++) {
        uint64_t s = 0;
        size_t end = QF_MIN(used, (j + 1) * f);
        for (size_t k = j * f; k < end; k++)
            s += c[k];
        c[j] = s;
    }
    for (size_t k = groups; k < used; k++)
        c[k] = 0;
}

/* Make the histogram cover |x| <= a (a > 0, finite). */
static void hist_ensure_range(qf_observer *o, double a) {
    if (o->width == 0) {
        /* First non-zero batch: B bins over [0, a]; zeros seen so far are
         * already in pos[0], which stays the bin of 0. */
        o->width = a / (double)o->bins;
        o->used = o->bins;
        return;
    }
    if (a <= (double)o->used * o->width) return;
    double need = ceil(a / o->width);
    if (need <= (double)o->cap) {
        o->used = (size_t)need; /* grow with empty bins of the same width */
        return;
    }
    /* Widen by the smallest integer factor that fits; the loop only corrects
     * rounding of the division (it runs once or twice). */
    double f = ceil(need / (double)o->cap);
    double new_used;
    for (;;) {
        new_used = ceil(a / (o->width * f));
        if (new_used <= (double)o->cap) break;
        f += 1;
    }
    uint64_t *neg = o->counts, *pos = o->counts + o->cap;
    if (f >= (double)o->used) {
        /* Everything seen so far lies in the new bin 0. */
        uint64_t sn = 0, sp = 0;
        for (size_t k = 0; k < o->used; k++) {
            sn += neg[k];
            sp += pos[k];
            neg[k] = pos[k] = 0;
        }
        neg[0] = sn;
        pos[0] = sp;
    } else {
        merge_side(neg, o->used, (size_t)f);
        merge_side(pos, o->used, (size_t)f);
    }
    o->width *= f;
    o->used = (size_t)new_used;
}

static void hist_add(qf_observer *o, const float *x, size_t n) {
    uint64_t *c = o->counts;
    size_t cap = o->cap;
    if (o->width == 0) { /* only zeros so far (absmax of this batch was 0) */
        c[cap] += n;
        return;
    }
    double inv = 1.0 / o->width;
    size_t last = o->used - 1;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        size_t k = (size_t)(fabs((double)v) * inv);
        k = k < last ? k : last; /* the top edge (and rounding above it) */
        c[(v < 0 ? 0 : cap) + k]++;
    }
}

/* One sweep: min, max and whether any value is NaN/Inf (v - v is NaN then). */
static bool scan_minmax(const float *x, size_t n, float *mn_out, float *mx_out) {
    float mn = x[0], mx = x[0];
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        bad |= (v - v) != 0.0f;
    }
    *mn_out = mn;
    *mx_out = mx;
    return !bad;
}

static qf_status observe_values(qf_observer *o, const float *x, size_t n, float mn, float mx) {
    qf_observer_stats *s = &o->st;
    if (s->batches == 0) {
        s->min = mn;
        s->max = mx;
        s->ma_min = mn;
        s->ma_max = mx;
    } else {
        s->min = QF_MIN(s->min, (double)mn);
        s->max = QF_MAX(s->max, (double)mx);
        s->ma_min += o->momentum * ((double)mn - s->ma_min);
        s->ma_max += o->momentum * ((double)mx - s->ma_max);
    }
    s->count += n;
    s->batches++;
    if (o->hist_on) {
        double a = QF_MAX(-(double)mn, (double)mx);
        if (a > 0) hist_ensure_range(o, a);
        hist_add(o, x, n);
    }
    return QF_OK;
}

qf_status qf_observer_observe(qf_observer *o, const float *x, size_t n, qf_err *err) {
    if (!o) return qf_errf(err, QF_ERR_INVALID_ARG, "observer: NULL");
    if (o->per_channel)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "observer '%s': per-channel observer needs qf_observer_observe_tensor",
                       obs_name(o));
    if (n == 0) return QF_OK;
    if (!x) return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': NULL data", obs_name(o));
    float mn, mx;
    if (!scan_minmax(x, n, &mn, &mx))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "observer '%s': non-finite value (NaN or Inf) in batch %llu", obs_name(o),
                       (unsigned long long)o->st.batches);
    return observe_values(o, x, n, mn, mx);
}

qf_status qf_observer_observe_tensor(qf_observer *o, const qf_tensor *t, qf_err *err) {
    if (!o || !t) return qf_errf(err, QF_ERR_INVALID_ARG, "observer: NULL argument");
    const char *nm = obs_name(o);
    if (t->dtype != QF_DT_F32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "observer '%s': tensor dtype %s, want float32", nm,
                       qf_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_SHAPE, "observer '%s': rank %d", nm, t->rank);
    size_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0 || !qf_mul_size(n, (size_t)t->dims[d], &n))
            return qf_errf(err, QF_ERR_SHAPE, "observer '%s': bad dims", nm);
    }
    if (!o->per_channel) return qf_observer_observe(o, t->data, n, err);

    if (o->axis >= t->rank)
        return qf_errf(err, QF_ERR_SHAPE, "observer '%s': channel axis %d but rank %d", nm, o->axis,
                       t->rank);
    int64_t ch = t->dims[o->axis];
    if (o->channels != 0 && ch != o->channels)
        return qf_errf(err, QF_ERR_SHAPE, "observer '%s': %lld channels, earlier batches had %lld",
                       nm, (long long)ch, (long long)o->channels);
    if (n == 0) return QF_OK;
    const float *x = t->data;
    if (!x) return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': NULL data", nm);
    float mn, mx;
    if (!scan_minmax(x, n, &mn, &mx))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "observer '%s': non-finite value (NaN or Inf) in batch %llu", nm,
                       (unsigned long long)o->st.batches);
    if (o->channels == 0) {
        o->ch_min = qf_malloc((size_t)ch * sizeof *o->ch_min);
        o->ch_max = qf_malloc((size_t)ch * sizeof *o->ch_max);
        if (!o->ch_min || !o->ch_max) {
            qf_free(o->ch_min);
            qf_free(o->ch_max);
            o->ch_min = o->ch_max = NULL;
            return qf_errf(err, QF_ERR_NOMEM, "observer '%s': out of memory", nm);
        }
        for (int64_t c = 0; c < ch; c++) {
            o->ch_min[c] = INFINITY;
            o->ch_max[c] = -INFINITY;
        }
        o->channels = ch;
    }
    size_t inner = 1, outer = 1;
    for (int d = 0; d < o->axis; d++)
        outer *= (size_t)t->dims[d];
    for (int d = o->axis + 1; d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    for (size_t a = 0; a < outer; a++) {
        for (size_t c = 0; c < (size_t)ch; c++) {
            const float *p = x + (a * (size_t)ch + c) * inner;
            float cmn = o->ch_min[c], cmx = o->ch_max[c];
            for (size_t i = 0; i < inner; i++) {
                cmn = p[i] < cmn ? p[i] : cmn;
                cmx = p[i] > cmx ? p[i] : cmx;
            }
            o->ch_min[c] = cmn;
            o->ch_max[c] = cmx;
        }
    }
    return observe_values(o, x, n, mn, mx);
}

const char *qf_observer_name(const qf_observer *o) { return o ? obs_name(o) : ""; }

void qf_observer_get_stats(const qf_observer *o, qf_observer_stats *out) {
    if (!out) return;
    if (!o) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = o->st;
}

qf_status qf_observer_get_hist(const qf_observer *o, qf_hist *out, qf_err *err) {
    if (!o || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "observer: NULL argument");
    if (!o->hist_on)
        return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': created without a histogram",
                       obs_name(o));
    out->width = o->width;
    out->nbins = o->used ? o->used : 1;
    out->neg = o->counts;
    out->pos = o->counts + o->cap;
    out->total = o->st.count;
    return QF_OK;
}

qf_status qf_observer_get_channels(const qf_observer *o, int64_t *n, const float **min,
                                   const float **max, qf_err *err) {
    if (!o || !n || !min || !max)
        return qf_errf(err, QF_ERR_INVALID_ARG, "observer: NULL argument");
    if (!o->per_channel || o->channels == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "observer '%s': no per-channel statistics",
                       obs_name(o));
    *n = o->channels;
    *min = o->ch_min;
    *max = o->ch_max;
    return QF_OK;
}
