/* report_json.c - the JSON writer: the same data as the HTML report, for
 * scripts. Non-finite numbers are null, except an infinite SQNR, which is
 * the string "inf" (a layer quantized without any error). */
#include <math.h>
#include <string.h>

#include "report/report_internal.h"

static void key(qf_sb *b, const char *k, bool first) {
    qf_sb_put(b, first ? "" : ", ");
    qf_sb_json_str(b, k);
    qf_sb_put(b, ": ");
}

static void size_val(qf_sb *b, int64_t v) {
    if (v < 0)
        qf_sb_put(b, "null");
    else
        qf_sb_printf(b, "%lld", (long long)v);
}

static void sqnr_val(qf_sb *b, double v) {
    if (isinf(v))
        qf_sb_put(b, v > 0 ? "\"inf\"" : "\"-inf\"");
    else
        qf_sb_json_num(b, v);
}

qf_status qf_report_to_json(const qf_report *r, char **out, size_t *len, qf_err *err) {
    qf_sb b = {0};
    qf_sb_put(&b, "{");
    key(&b, "title", true);
    qf_sb_json_str(&b, r->title);
    key(&b, "meta", false);
    qf_sb_put(&b, "{");
    for (int i = 0; i < r->n_meta; i++) {
        key(&b, r->meta[i].key, i == 0);
        qf_sb_json_str(&b, r->meta[i].value);
    }
    qf_sb_put(&b, "}");

    key(&b, "steps", false);
    qf_sb_put(&b, "[");
    for (int i = 0; i < r->n_steps; i++) {
        const qf_report_step *s = &r->steps[i];
        qf_sb_put(&b, i ? ",\n  {" : "\n  {");
        key(&b, "name", true);
        qf_sb_json_str(&b, s->name);
        key(&b, "accuracy", false);
        qf_sb_json_num(&b, s->accuracy);
        key(&b, "size_bytes", false);
        size_val(&b, s->size_bytes);
        key(&b, "seconds", false);
        qf_sb_json_num(&b, s->seconds);
        key(&b, "note", false);
        qf_sb_json_str(&b, s->note);
        qf_sb_put(&b, "}");
    }
    qf_sb_put(&b, "]");

    key(&b, "layers", false);
    qf_sb_put(&b, "[");
    for (int i = 0; i < r->n_layers; i++) {
        const qf_report_layer *l = &r->layers[i];
        qf_sb_put(&b, i ? ",\n  {" : "\n  {");
        key(&b, "name", true);
        qf_sb_json_str(&b, l->name);
        key(&b, "op", false);
        qf_sb_json_str(&b, l->op);
        key(&b, "w_bits", false);
        qf_sb_printf(&b, "%d", l->w_bits);
        key(&b, "act_bits", false);
        qf_sb_printf(&b, "%d", l->act_bits);
        key(&b, "sqnr_db", false);
        sqnr_val(&b, l->sqnr_db);
        key(&b, "scale", false);
        qf_sb_json_num(&b, l->scale);
        key(&b, "clip_fraction", false);
        qf_sb_json_num(&b, l->clip_fraction);
        key(&b, "sensitivity", false);
        qf_sb_json_num(&b, l->sensitivity);
        qf_sb_put(&b, "}");
    }
    qf_sb_put(&b, "]");

    key(&b, "histograms", false);
    qf_sb_put(&b, "[");
    for (int i = 0; i < r->n_hists; i++) {
        const qf_report_hist *h = &r->hists[i];
        qf_sb_put(&b, i ? ",\n  {" : "\n  {");
        key(&b, "name", true);
        qf_sb_json_str(&b, h->name);
        key(&b, "kind", false);
        qf_sb_json_str(&b, h->kind == QF_HIST_WEIGHT ? "weight" : "activation");
        key(&b, "lo", false);
        qf_sb_json_num(&b, h->lo);
        key(&b, "hi", false);
        qf_sb_json_num(&b, h->hi);
        key(&b, "clip_lo", false);
        qf_sb_json_num(&b, h->clip_lo);
        key(&b, "clip_hi", false);
        qf_sb_json_num(&b, h->clip_hi);
        key(&b, "note", false);
        qf_sb_json_str(&b, h->note);
        key(&b, "counts", false);
        qf_sb_put(&b, "[");
        for (int k = 0; k < h->n_bins; k++) {
            if (k) qf_sb_put(&b, ",");
            qf_sb_json_num(&b, h->counts[k]);
        }
        qf_sb_put(&b, "]}");
    }
    qf_sb_put(&b, "]");

    key(&b, "configs", false);
    qf_sb_put(&b, "[");
    for (int i = 0; i < r->n_configs; i++) {
        const qf_report_config *c = &r->configs[i];
        qf_sb_put(&b, i ? ",\n  {" : "\n  {");
        key(&b, "label", true);
        qf_sb_json_str(&b, c->label);
        key(&b, "size_bytes", false);
        size_val(&b, c->size_bytes);
        key(&b, "accuracy", false);
        qf_sb_json_num(&b, c->accuracy);
        key(&b, "chosen", false);
        qf_sb_put(&b, c->chosen ? "true" : "false");
        qf_sb_put(&b, "}");
    }
    qf_sb_put(&b, "]");

    key(&b, "findings", false);
    qf_sb_put(&b, "[");
    for (int i = 0; i < r->n_findings; i++) {
        const qf_report_finding *f = &r->findings[i];
        qf_sb_put(&b, i ? ",\n  {" : "\n  {");
        key(&b, "severity", true);
        qf_sb_json_str(&b, qf_severity_name(f->severity));
        key(&b, "check", false);
        qf_sb_json_str(&b, f->check);
        key(&b, "subject", false);
        qf_sb_json_str(&b, f->subject);
        key(&b, "value", false);
        qf_sb_json_num(&b, f->value);
        key(&b, "message", false);
        qf_sb_json_str(&b, f->message);
        key(&b, "remedy", false);
        qf_sb_json_str(&b, f->remedy);
        qf_sb_put(&b, "}");
    }
    qf_sb_put(&b, "]}\n");
    return qf_sb_finish(&b, out, len, err);
}

qf_status qf_report_write_json(const qf_report *r, const char *path, qf_err *err) {
    char *text = NULL;
    size_t len = 0;
    qf_status s = qf_report_to_json(r, &text, &len, err);
    if (!s) s = qf_write_file_atomic(path, text, len, err);
    qf_free(text);
    return s;
}
