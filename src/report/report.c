/* report.c - building the report document: create/free and the add_*
 * functions that copy each item into the report's own memory. */
#include <math.h>
#include <string.h>

#include "report/report.h"

const char *qf_severity_name(qf_severity s) {
    switch (s) {
    case QF_SEV_OK: return "ok";
    case QF_SEV_WARN: return "warn";
    case QF_SEV_FAIL: return "fail";
    }
    return "?";
}

qf_status qf_report_create(const char *title, qf_report **out, qf_err *err) {
    *out = NULL;
    qf_report *r = qf_calloc(1, sizeof *r);
    if (!r) return qf_errf(err, QF_ERR_NOMEM, "out of memory creating a report");
    qf_arena_init(&r->arena);
    r->title = qf_arena_strdup(&r->arena, title ? title : "qforge report");
    if (!r->title) {
        qf_report_free(r);
        return qf_errf(err, QF_ERR_NOMEM, "out of memory creating a report");
    }
    *out = r;
    return QF_OK;
}

void qf_report_free(qf_report *r) {
    if (!r) return;
    qf_free(r->meta);
    qf_free(r->steps);
    qf_free(r->layers);
    qf_free(r->hists);
    qf_free(r->configs);
    qf_free(r->findings);
    qf_arena_free(&r->arena);
    qf_free(r);
}

/* Make room for one more element of an array (doubling). */
static bool grow(void **arr, int *n, int *cap, size_t elem) {
    if (*n < *cap) return true;
    int nc = *cap ? *cap * 2 : 8;
    size_t bytes;
    if (nc < *cap || !qf_mul_size((size_t)nc, elem, &bytes)) return false;
    void *p = qf_realloc(*arr, bytes);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

#define GROW(r, field)                                                                             \
    grow((void **)&(r)->field, &(r)->n_##field, &(r)->cap_##field, sizeof(*(r)->field))

/* Copy a string into the arena: NULL stays NULL; *ok turns false on OOM. */
static const char *dup(qf_report *r, const char *s, bool *ok) {
    if (!s) return NULL;
    const char *d = qf_arena_strdup(&r->arena, s);
    if (!d) *ok = false;
    return d;
}

static qf_status nomem(qf_err *err) {
    return qf_errf(err, QF_ERR_NOMEM, "out of memory adding to a report");
}

qf_status qf_report_add_meta(qf_report *r, const char *key, const char *value, qf_err *err) {
    if (!r || !key) return qf_errf(err, QF_ERR_INVALID_ARG, "report: meta entry without a key");
    if (!GROW(r, meta)) return nomem(err);
    bool ok = true;
    qf_report_kv kv = {dup(r, key, &ok), dup(r, value ? value : "", &ok)};
    if (!ok) return nomem(err);
    r->meta[r->n_meta++] = kv;
    return QF_OK;
}

qf_status qf_report_add_step(qf_report *r, const qf_report_step *s, qf_err *err) {
    if (!r || !s || !s->name)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: step without a name");
    if (!GROW(r, steps)) return nomem(err);
    bool ok = true;
    qf_report_step c = *s;
    c.name = dup(r, s->name, &ok);
    c.note = dup(r, s->note, &ok);
    if (!ok) return nomem(err);
    r->steps[r->n_steps++] = c;
    return QF_OK;
}

qf_status qf_report_add_layer(qf_report *r, const qf_report_layer *l, qf_err *err) {
    if (!r || !l || !l->name)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: layer without a name");
    if (l->w_bits < 0 || l->w_bits > 32 || l->act_bits < 0 || l->act_bits > 32)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: layer '%s': bits out of range", l->name);
    if (!GROW(r, layers)) return nomem(err);
    bool ok = true;
    qf_report_layer c = *l;
    c.name = dup(r, l->name, &ok);
    c.op = dup(r, l->op ? l->op : "", &ok);
    if (!ok) return nomem(err);
    r->layers[r->n_layers++] = c;
    return QF_OK;
}

qf_status qf_report_add_hist(qf_report *r, const qf_report_hist *h, qf_err *err) {
    if (!r || !h || !h->name)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: histogram without a name");
    if (h->n_bins < 1 || h->n_bins > QF_REPORT_MAX_BINS || !h->counts)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: histogram '%s': %d bins (1..%d)", h->name,
                       h->n_bins, QF_REPORT_MAX_BINS);
    if (!isfinite(h->lo) || !isfinite(h->hi) || h->lo > h->hi)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: histogram '%s': bad range [%g, %g]",
                       h->name, h->lo, h->hi);
    for (int i = 0; i < h->n_bins; i++)
        if (!(h->counts[i] >= 0) || !isfinite(h->counts[i]))
            return qf_errf(err, QF_ERR_INVALID_ARG, "report: histogram '%s': bad count in bin %d",
                           h->name, i);
    if (!GROW(r, hists)) return nomem(err);
    bool ok = true;
    qf_report_hist c = *h;
    c.name = dup(r, h->name, &ok);
    c.note = dup(r, h->note, &ok);
    double *counts = qf_arena_alloc(&r->arena, sizeof(double) * (size_t)h->n_bins);
    if (!ok || !counts) return nomem(err);
    memcpy(counts, h->counts, sizeof(double) * (size_t)h->n_bins);
    c.counts = counts;
    r->hists[r->n_hists++] = c;
    return QF_OK;
}

qf_status qf_report_add_hist_values(qf_report *r, const char *name, qf_hist_kind kind,
                                    const float *x, size_t n, int n_bins, double clip_lo,
                                    double clip_hi, const char *note, qf_err *err) {
    if (n_bins < 1 || n_bins > QF_REPORT_MAX_BINS)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: histogram '%s': %d bins (1..%d)",
                       name ? name : "?", n_bins, QF_REPORT_MAX_BINS);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        lo = QF_MIN(lo, (double)x[i]);
        hi = QF_MAX(hi, (double)x[i]);
    }
    if (lo > hi) lo = hi = 0; /* nothing finite: one empty range */
    double *counts = qf_calloc((size_t)n_bins, sizeof(double));
    if (!counts) return nomem(err);
    double w = (hi - lo) / n_bins;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        int k = w > 0 ? (int)(((double)x[i] - lo) / w) : 0;
        counts[QF_MAX(0, QF_MIN(n_bins - 1, k))] += 1; /* the top edge joins the last bin */
    }
    qf_report_hist h = {.name = name,
                        .kind = kind,
                        .lo = lo,
                        .hi = hi,
                        .n_bins = n_bins,
                        .counts = counts,
                        .clip_lo = clip_lo,
                        .clip_hi = clip_hi,
                        .note = note};
    qf_status s = qf_report_add_hist(r, &h, err);
    qf_free(counts);
    return s;
}

qf_status qf_report_add_config(qf_report *r, const qf_report_config *c, qf_err *err) {
    if (!r || !c || !c->label)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: configuration without a label");
    if (!GROW(r, configs)) return nomem(err);
    bool ok = true;
    qf_report_config d = *c;
    d.label = dup(r, c->label, &ok);
    if (!ok) return nomem(err);
    r->configs[r->n_configs++] = d;
    return QF_OK;
}

qf_status qf_report_add_finding(qf_report *r, const qf_report_finding *f, qf_err *err) {
    if (!r || !f || !f->subject || !f->message)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: finding without subject or message");
    if (f->severity != QF_SEV_OK && f->severity != QF_SEV_WARN && f->severity != QF_SEV_FAIL)
        return qf_errf(err, QF_ERR_INVALID_ARG, "report: finding '%s': bad severity", f->subject);
    if (!GROW(r, findings)) return nomem(err);
    bool ok = true;
    qf_report_finding d = *f;
    d.check = dup(r, f->check, &ok);
    d.subject = dup(r, f->subject, &ok);
    d.message = dup(r, f->message, &ok);
    d.remedy = dup(r, f->remedy, &ok);
    if (!ok) return nomem(err);
    r->findings[r->n_findings++] = d;
    return QF_OK;
}
