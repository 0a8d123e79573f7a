/* report.h - the report document model and its writers.
 *
 * A qf_report collects what a pipeline run measured: its steps, per-layer
 * quantization error, weight/activation histograms with the clip chosen,
 * the configurations it tried and free-form findings (qforge check). The
 * library fills it; two writers turn it into
 *  - JSON (every number and string of the model, nothing else), and
 *  - ONE self-contained HTML file: inline CSS and inline SVG charts, no
 *    scripts, fonts or images from anywhere (no JavaScript at all).
 * Every string is escaped on output, so names taken from user models (a
 * layer called "<script>") stay inert text.
 *
 * Numbers that were not measured are NAN (sizes and counts: -1); the
 * writers print them as "-" (HTML) or null (JSON). Infinite SQNR (a layer
 * quantized without error) is written as the string "inf" in JSON and
 * drawn as a full bar.
 *
 * Ownership: qf_report_add_* copy everything they are given (strings and
 * counts); the report owns its memory and qf_report_free (NULL-safe)
 * releases it. The arrays and counts in struct qf_report are readable by
 * callers (tests, the CLI) but must be changed only through the API.
 */
#ifndef QF_REPORT_REPORT_H
#define QF_REPORT_REPORT_H

#include "base/base.h"

typedef enum qf_severity { QF_SEV_OK = 0, QF_SEV_WARN = 1, QF_SEV_FAIL = 2 } qf_severity;
const char *qf_severity_name(qf_severity s); /* "ok", "warn", "fail" */

/* One pipeline step (float baseline, PTQ, an escalation, ...). */
typedef struct qf_report_step {
    const char *name;
    double accuracy;    /* top-1 in [0, 1]; NAN = not measured */
    int64_t size_bytes; /* model size after the step; -1 = unknown */
    double seconds;     /* time the step took; NAN = unknown */
    const char *note;   /* may be NULL */
} qf_report_step;

/* One quantized layer. */
typedef struct qf_report_layer {
    const char *name;     /* node name */
    const char *op;       /* op type */
    int w_bits;           /* 0: no weights */
    int act_bits;         /* 0: unknown */
    double sqnr_db;       /* NAN = not measured; +INF = no error */
    double scale;         /* output activation scale; NAN = unknown */
    double clip_fraction; /* in [0, 1]; NAN = unknown */
    double sensitivity;   /* accuracy drop (points) when quantized alone; NAN = unknown */
} qf_report_layer;

typedef enum qf_hist_kind { QF_HIST_WEIGHT = 0, QF_HIST_ACTIVATION = 1 } qf_hist_kind;

/* A histogram of n equal bins over [lo, hi] with the chosen clip range. */
typedef struct qf_report_hist {
    const char *name;
    qf_hist_kind kind;
    double lo, hi;           /* lo < hi (or lo == hi with one bin) */
    int n_bins;              /* 1..QF_REPORT_MAX_BINS */
    const double *counts;    /* n_bins counts (>= 0) */
    double clip_lo, clip_hi; /* chosen clip; NAN = none */
    const char *note;        /* may be NULL */
} qf_report_hist;
#define QF_REPORT_MAX_BINS 4096

/* A configuration tried (e.g. a bit-width assignment). */
typedef struct qf_report_config {
    const char *label;
    int64_t size_bytes; /* -1 = unknown (not drawn) */
    double accuracy;    /* top-1 in [0, 1]; NAN = not drawn */
    bool chosen;
} qf_report_config;

/* A check result (qforge check) or any other finding. */
typedef struct qf_report_finding {
    qf_severity severity;
    const char *check;   /* short id, e.g. "nan_inf" (may be NULL) */
    const char *subject; /* layer, tensor or "model" */
    double value;        /* the measured number; NAN = none */
    const char *message;
    const char *remedy; /* may be NULL */
} qf_report_finding;

typedef struct qf_report_kv {
    const char *key, *value;
} qf_report_kv;

/* The document. All strings and arrays are owned by the report. */
typedef struct qf_report {
    qf_arena arena; /* strings and histogram counts */
    const char *title;
    int n_meta, cap_meta;
    qf_report_kv *meta; /* summary lines: model, data, samples, ... (in order) */
    int n_steps, cap_steps;
    qf_report_step *steps;
    int n_layers, cap_layers;
    qf_report_layer *layers;
    int n_hists, cap_hists;
    qf_report_hist *hists;
    int n_configs, cap_configs;
    qf_report_config *configs;
    int n_findings, cap_findings;
    qf_report_finding *findings;
} qf_report;

/* Create an empty report; title is copied (NULL: "qforge report"). */
qf_status qf_report_create(const char *title, qf_report **out, qf_err *err);
void qf_report_free(qf_report *r);

/* Append items (copied). Invalid items (NULL names, n_bins out of range,
 * negative or non-finite counts, lo > hi, ...) give QF_ERR_INVALID_ARG. */
qf_status qf_report_add_meta(qf_report *r, const char *key, const char *value, qf_err *err);
qf_status qf_report_add_step(qf_report *r, const qf_report_step *s, qf_err *err);
qf_status qf_report_add_layer(qf_report *r, const qf_report_layer *l, qf_err *err);
qf_status qf_report_add_hist(qf_report *r, const qf_report_hist *h, qf_err *err);
qf_status qf_report_add_config(qf_report *r, const qf_report_config *c, qf_err *err);
qf_status qf_report_add_finding(qf_report *r, const qf_report_finding *f, qf_err *err);

/* Build a display histogram of n_bins bins over [min(x), max(x)] from raw
 * values (non-finite values are skipped) and add it. */
qf_status qf_report_add_hist_values(qf_report *r, const char *name, qf_hist_kind kind,
                                    const float *x, size_t n, int n_bins, double clip_lo,
                                    double clip_hi, const char *note, qf_err *err);

/* Serialize. *out is qf_malloc'd and NUL-terminated; *len excludes the NUL. */
qf_status qf_report_to_json(const qf_report *r, char **out, size_t *len, qf_err *err);
qf_status qf_report_to_html(const qf_report *r, char **out, size_t *len, qf_err *err);
/* Serialize and write atomically (temp file + rename: no half-written
 * report is ever left at path). */
qf_status qf_report_write_json(const qf_report *r, const char *path, qf_err *err);
qf_status qf_report_write_html(const qf_report *r, const char *path, qf_err *err);

#endif /* QF_REPORT_REPORT_H */
