/* report_svg.c - the inline SVG charts of the HTML report: per-layer SQNR
 * bars, the sensitivity ranking, histograms with clip lines and the
 * accuracy-vs-size scatter. Plain SVG 1.1 elements with a viewBox and an
 * explicit width/height (so they render at a known, non-zero size), styled
 * by the report's inline CSS classes; every label is escaped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

#define LABEL_W 190 /* px for layer names left of the bars */
#define ROW_H 18
#define CHART_W 720

/* A label cut to at most max bytes without splitting a UTF-8 sequence,
 * with an ellipsis when cut; escaped. */
static void label(qf_sb *b, const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) {
        qf_sb_html(b, s);
        return;
    }
    size_t cut = max - 1;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char tmp[128];
    if (cut >= sizeof tmp) cut = sizeof tmp - 1;
    memcpy(tmp, s, cut);
    tmp[cut] = 0;
    qf_sb_html(b, tmp);
    qf_sb_put(b, "\xE2\x80\xA6"); /* U+2026 */
}

static const char *bits_class(int w_bits) {
    switch (w_bits) {
    case 8: return "b8";
    case 4: return "b4";
    case 2: return "b2";
    case 0: return "b0";
    default: return "bx";
    }
}

static void svg_open(qf_sb *b, int w, int h, const char *cls, const char *aria) {
    qf_sb_printf(b,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart %s\" width=\"%d\" "
                 "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
                 cls, w, h, w, h);
    qf_sb_html(b, aria);
    qf_sb_put(b, "\">");
}

void qf_svg_sqnr_bars(qf_sb *b, const qf_report *r) {
    int n = 0;
    double top = 40; /* dB: the axis spans at least 0..40 */
    for (int i = 0; i < r->n_layers; i++) {
        double v = r->layers[i].sqnr_db;
        if (isnan(v)) continue;
        n++;
        if (isfinite(v)) top = QF_MAX(top, v);
    }
    if (n == 0) return;
    top = ceil(top / 10) * 10;
    int plot_w = CHART_W - LABEL_W - 90;
    int h = 30 + n * ROW_H + 24;
    svg_open(b, CHART_W, h, "sqnr", "per-layer SQNR in dB, colored by weight bits");
    /* grid every 10 dB */
    for (double t = 0; t <= top + 1e-9; t += 10) {
        double x = LABEL_W + plot_w * t / top;
        qf_sb_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"22\" x2=\"%.1f\" y2=\"%d\"/>", x, x,
                     h - 22);
        qf_sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>",
                     x, h - 8, t);
    }
    qf_sb_printf(b,
                 "<text class=\"axis\" x=\"%d\" y=\"14\">SQNR (dB) of each layer's output; "
                 "label: weight/activation bits</text>",
                 LABEL_W);
    int row = 0;
    for (int i = 0; i < r->n_layers; i++) {
        const qf_report_layer *l = &r->layers[i];
        if (isnan(l->sqnr_db)) continue;
        double y = 26 + row * ROW_H;
        double v = l->sqnr_db;
        double len = isinf(v) ? (v > 0 ? plot_w : 0) : plot_w * QF_MAX(0.0, v) / top;
        qf_sb_printf(b, "<text class=\"lbl\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LABEL_W - 6,
                     y + 12);
        label(b, l->name, 30);
        qf_sb_put(b, "</text>");
        qf_sb_printf(b, "<rect class=\"bar %s\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\">",
                     bits_class(l->w_bits), LABEL_W, y + 2, QF_MAX(len, 1.0), ROW_H - 5);
        qf_sb_put(b, "<title>");
        qf_sb_html(b, l->name);
        if (isinf(v))
            qf_sb_put(b, v > 0 ? ": no error" : ": no signal");
        else
            qf_sb_printf(b, ": %.2f dB", v);
        qf_sb_put(b, "</title></rect>");
        char bits[48];
        if (l->w_bits)
            snprintf(bits, sizeof bits, "w%d/a%d", l->w_bits, l->act_bits);
        else
            snprintf(bits, sizeof bits, "a%d", l->act_bits);
        char val[32];
        if (isinf(v))
            snprintf(val, sizeof val, "%s", v > 0 ? "\xE2\x88\x9E" : "-\xE2\x88\x9E");
        else
            snprintf(val, sizeof val, "%.1f", v);
        qf_sb_printf(b, "<text class=\"val\" x=\"%.1f\" y=\"%.1f\">%s dB \xC2\xB7 %s</text>",
                     LABEL_W + QF_MAX(len, 1.0) + 4, y + 12, val, bits);
        row++;
    }
    qf_sb_put(b, "</svg>");
}

typedef struct sens_item {
    int idx;
    double v;
} sens_item;

void qf_svg_sensitivity(qf_sb *b, const qf_report *r) {
    int n = 0;
    for (int i = 0; i < r->n_layers; i++)
        if (isfinite(r->layers[i].sensitivity)) n++;
    if (n == 0) return;
    sens_item *it = qf_malloc(sizeof(sens_item) * (size_t)n);
    if (!it) {
        b->oom = true;
        return;
    }
    n = 0;
    double top = 0.1;
    for (int i = 0; i < r->n_layers; i++)
        if (isfinite(r->layers[i].sensitivity)) {
            it[n].idx = i;
            it[n].v = r->layers[i].sensitivity;
            top = QF_MAX(top, fabs(it[n].v));
            n++;
        }
    /* insertion sort, most sensitive first (n is a layer count: small) */
    for (int i = 1; i < n; i++) {
        sens_item x = it[i];
        int j = i - 1;
        while (j >= 0 && it[j].v < x.v) {
            it[j + 1] = it[j];
            j--;
        }
        it[j + 1] = x;
    }
    int plot_w = CHART_W - LABEL_W - 90;
    int h = 30 + n * ROW_H + 10;
    svg_open(b, CHART_W, h, "sens", "sensitivity ranking: accuracy drop when quantized alone");
    qf_sb_printf(b,
                 "<text class=\"axis\" x=\"%d\" y=\"14\">accuracy drop (points) when only this "
                 "layer is quantized</text>",
                 LABEL_W);
    for (int k = 0; k < n; k++) {
        const qf_report_layer *l = &r->layers[it[k].idx];
        double y = 26 + k * ROW_H;
        double len = plot_w * QF_MAX(0.0, it[k].v) / top;
        qf_sb_printf(b, "<text class=\"lbl\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LABEL_W - 6,
                     y + 12);
        label(b, l->name, 30);
        qf_sb_printf(b,
                     "</text><rect class=\"bar sensbar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" "
                     "height=\"%d\"><title>",
                     LABEL_W, y + 2, QF_MAX(len, 1.0), ROW_H - 5);
        qf_sb_html(b, l->name);
        qf_sb_printf(b, ": %.3f points</title></rect>", it[k].v);
        qf_sb_printf(b, "<text class=\"val\" x=\"%.1f\" y=\"%.1f\">%.3f</text>",
                     LABEL_W + QF_MAX(len, 1.0) + 4, y + 12, it[k].v);
    }
    qf_sb_put(b, "</svg>");
    qf_free(it);
}

#define HW 300
#define HH 170
#define HPAD_L 8
#define HPAD_R 8
#define HTOP 24
#define HBOT 30

void qf_svg_histogram(qf_sb *b, const qf_report_hist *h, int index) {
    (void)index;
    double lo = h->lo, hi = h->hi;
    /* widen the view so clip lines just outside the data stay visible */
    if (isfinite(h->clip_lo) && h->clip_lo < lo) lo = h->clip_lo;
    if (isfinite(h->clip_hi) && h->clip_hi > hi) hi = h->clip_hi;
    if (!(hi > lo)) {
        lo -= 0.5;
        hi += 0.5;
    }
    double span = hi - lo;
    int pw = HW - HPAD_L - HPAD_R, ph = HH - HTOP - HBOT;
    double cmax = 0;
    for (int k = 0; k < h->n_bins; k++)
        cmax = QF_MAX(cmax, h->counts[k]);
    char aria[200];
    snprintf(aria, sizeof aria, "%s histogram (log counts) with the chosen clip range",
             h->kind == QF_HIST_WEIGHT ? "weight" : "activation");
    svg_open(b, HW, HH, h->kind == QF_HIST_WEIGHT ? "hist w" : "hist a", aria);
    qf_sb_printf(b, "<text class=\"htitle\" x=\"%d\" y=\"15\">", HPAD_L);
    label(b, h->name, 40);
    qf_sb_put(b, "</text>");
    qf_sb_printf(b, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>", HPAD_L,
                 HTOP, pw, ph);
    /* log scale: the tails decide the clip, and they are tiny next to the peak */
    double lmax = log10(1 + cmax);
    double bw = (h->hi - h->lo) / h->n_bins;
    qf_sb_put(b, "<path class=\"hbar\" d=\"");
    for (int k = 0; k < h->n_bins; k++) {
        if (h->counts[k] <= 0 || lmax <= 0) continue;
        double x0 = h->n_bins == 1 && bw == 0 ? h->lo - span / 100 : h->lo + k * bw;
        double x1 = h->n_bins == 1 && bw == 0 ? h->lo + span / 100 : x0 + bw;
        double px0 = HPAD_L + pw * (x0 - lo) / span, px1 = HPAD_L + pw * (x1 - lo) / span;
        double hh = ph * log10(1 + h->counts[k]) / lmax;
        qf_sb_printf(b, "M%.2f %.2fh%.2fv%.2fh%.2fz", px0, (double)(HTOP + ph),
                     QF_MAX(px1 - px0, 0.6), -hh, -QF_MAX(px1 - px0, 0.6));
    }
    qf_sb_put(b, "\"/>");
    /* zero line */
    if (lo < 0 && hi > 0) {
        double zx = HPAD_L + pw * (0 - lo) / span;
        qf_sb_printf(b, "<line class=\"zero\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>", zx,
                     HTOP, zx, HTOP + ph);
    }
    const double clips[2] = {h->clip_lo, h->clip_hi};
    for (int c = 0; c < 2; c++) {
        if (!isfinite(clips[c])) continue;
        double cx = HPAD_L + pw * (clips[c] - lo) / span;
        qf_sb_printf(b,
                     "<line class=\"clip\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\">"
                     "<title>clip %s %.6g</title></line>",
                     cx, HTOP - 4, cx, HTOP + ph, c ? "hi" : "lo", clips[c]);
    }
    qf_sb_printf(b, "<text class=\"tick\" x=\"%d\" y=\"%d\">%.3g</text>", HPAD_L, HH - 14, lo);
    qf_sb_printf(b, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>",
                 HW - HPAD_R, HH - 14, hi);
    char clip_txt[96] = "no clip";
    if (isfinite(h->clip_lo) && isfinite(h->clip_hi))
        snprintf(clip_txt, sizeof clip_txt, "clip [%.3g, %.3g]", h->clip_lo, h->clip_hi);
    qf_sb_printf(b,
                 "<text class=\"tick cliptxt\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s"
                 "</text>",
                 HW / 2, HH - 3, clip_txt);
    qf_sb_put(b, "</svg>");
}

/* Axis range with a little margin; a single value gets a unit-wide span. */
static void axis_range(double mn, double mx, double *lo, double *hi) {
    if (!(mx > mn)) {
        double pad = mn != 0 ? fabs(mn) * 0.1 : 1;
        *lo = mn - pad;
        *hi = mx + pad;
        return;
    }
    double pad = (mx - mn) * 0.08;
    *lo = mn - pad;
    *hi = mx + pad;
}

void qf_svg_configs(qf_sb *b, const qf_report *r) {
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    int n = 0;
    for (int i = 0; i < r->n_configs; i++) {
        const qf_report_config *c = &r->configs[i];
        if (c->size_bytes < 0 || !isfinite(c->accuracy)) continue;
        double x = (double)c->size_bytes / 1024.0, y = 100 * c->accuracy;
        xmn = QF_MIN(xmn, x);
        xmx = QF_MAX(xmx, x);
        ymn = QF_MIN(ymn, y);
        ymx = QF_MAX(ymx, y);
        n++;
    }
    if (n == 0) return;
    double x0, x1, y0, y1;
    axis_range(xmn, xmx, &x0, &x1);
    axis_range(ymn, ymx, &y0, &y1);
    const int W = CHART_W, H = 320, L = 64, R = 24, T = 20, B = 44;
    int pw = W - L - R, ph = H - T - B;
    svg_open(b, W, H, "scatter", "accuracy versus size of the configurations tried");
    qf_sb_printf(b, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>", L, T,
                 pw, ph);
    for (int t = 0; t <= 4; t++) {
        double fx = L + pw * t / 4.0, fy = T + ph - ph * t / 4.0;
        qf_sb_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", fx, T,
                     fx, T + ph);
        qf_sb_printf(b, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", L, fy,
                     L + pw, fy);
        qf_sb_printf(b,
                     "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.4g</text>",
                     fx, T + ph + 16, x0 + (x1 - x0) * t / 4.0);
        qf_sb_printf(b, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>",
                     L - 6, fy + 4, y0 + (y1 - y0) * t / 4.0);
    }
    qf_sb_printf(b,
                 "<text class=\"axis\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">size (KiB)</text>",
                 L + pw / 2, H - 6);
    qf_sb_printf(b,
                 "<text class=\"axis\" x=\"14\" y=\"%d\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 14 %d)\">top-1 (%%)</text>",
                 T + ph / 2, T + ph / 2);
    /* the chosen point last, so it is drawn on top */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < r->n_configs; i++) {
            const qf_report_config *c = &r->configs[i];
            if (c->size_bytes < 0 || !isfinite(c->accuracy) || c->chosen != (pass == 1)) continue;
            double x = (double)c->size_bytes / 1024.0, y = 100 * c->accuracy;
            double px = L + pw * (x - x0) / (x1 - x0), py = T + ph - ph * (y - y0) / (y1 - y0);
            qf_sb_printf(b, "<circle class=\"pt%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\"><title>",
                         c->chosen ? " chosen" : "", px, py, c->chosen ? 7 : 5);
            qf_sb_html(b, c->label);
            qf_sb_printf(b, ": %.2f%%, %.1f KiB</title></circle>", y, x);
            qf_sb_printf(b, "<text class=\"ptlbl%s\" x=\"%.1f\" y=\"%.1f\">",
                         c->chosen ? " chosen" : "", px + 9, py - 7);
            label(b, c->label, 24);
            if (c->chosen) qf_sb_put(b, " (chosen)");
            qf_sb_put(b, "</text>");
        }
    qf_sb_put(b, "</svg>");
}
