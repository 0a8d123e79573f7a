/* report_html.c - the self-contained HTML report: one file with inline CSS
 * and inline SVG (report_svg.c), no scripts, fonts or images. A strict
 * Content-Security-Policy meta tag forbids scripts and remote loads, so
 * even a string that escaped escaping could not run or fetch anything. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

static const char CSS[] =
    ":root{--fg:#1d2330;--mut:#5d6677;--bg:#f6f7fb;--card:#fff;--line:#e3e6ee;"
    "--ok:#1f8a4c;--warn:#b7791f;--fail:#c53030;--acc:#2b6cb0}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--fg);"
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}"
    "header{background:#1d2330;color:#fff;padding:20px 32px}"
    "header h1{margin:0 0 6px;font-size:22px;font-weight:600}"
    "dl.meta{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0;font-size:13px;color:#c9d1e3}"
    "dl.meta dt{font-weight:600;color:#fff}dl.meta dt::after{content:':'}"
    "dl.meta dd{margin:0 0 0 4px}dl.meta div{display:flex}"
    "main{max-width:1100px;margin:0 auto;padding:16px 24px 40px}"
    "section{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "padding:16px 20px;margin:16px 0}"
    "h2{font-size:17px;margin:0 0 10px}p.hint{color:var(--mut);margin:0 0 10px;font-size:13px}"
    "table{border-collapse:collapse;width:100%;font-size:13px}"
    "th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);"
    "vertical-align:top}"
    "th{color:var(--mut);font-weight:600;background:#fafbfd}th.n{text-align:right}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.name{overflow-wrap:anywhere;min-width:8em}"
    ".up{color:var(--ok)}.down{color:var(--fail)}"
    ".sev{display:inline-block;min-width:44px;text-align:center;border-radius:10px;"
    "padding:0 8px;font-size:12px;font-weight:600;color:#fff}"
    ".sev.ok{background:var(--ok)}.sev.warn{background:var(--warn)}"
    ".sev.fail{background:var(--fail)}"
    ".verdict{font-size:15px;margin:0}.verdict b{margin-right:10px}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}"
    ".card{border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff;"
    "width:314px}"
    ".card p{margin:2px 4px 0;font-size:12px;color:var(--mut)}"
    "svg.chart{display:block;max-width:100%;height:auto}"
    "svg text{font:11px system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "fill:#333}"
    "svg .axis{fill:var(--mut)}svg .tick{fill:#777;font-size:10px}"
    "svg .htitle{font-weight:600}svg .val{fill:#444;font-size:10px}"
    "svg .grid{stroke:#eceef4;stroke-width:1}svg .frame{fill:#fbfcfe;stroke:#d8dce6}"
    "svg .bar.b8{fill:#3b7dd8}svg .bar.b4{fill:#e08a1e}svg .bar.b2{fill:#d64545}"
    "svg .bar.b0{fill:#8a94a6}svg .bar.bx{fill:#7d5bd0}svg .sensbar{fill:#c2410c}"
    "svg.w .hbar{fill:#3b7dd8}svg.a .hbar{fill:#2f9e6e}"
    "svg .zero{stroke:#aab;stroke-dasharray:2 2}"
    "svg .clip{stroke:#d62828;stroke-width:1.6;stroke-dasharray:5 3}"
    "svg .cliptxt{fill:#d62828}"
    "svg .pt{fill:#8a94a6;stroke:#fff;stroke-width:1}"
    "svg .pt.chosen{fill:#d62828;stroke:#1d2330;stroke-width:2}"
    "svg .ptlbl{fill:#555;font-size:10px}svg .ptlbl.chosen{fill:#d62828;font-weight:700}"
    ".legend span{display:inline-block;margin-right:14px;font-size:12px;color:var(--mut)}"
    ".legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}"
    "footer{color:var(--mut);font-size:12px;text-align:center;padding:10px}";

static void num_cell(qf_sb *b, double v, const char *fmt) {
    qf_sb_put(b, "<td class=\"n\">");
    if (isfinite(v))
        qf_sb_printf(b, fmt, v);
    else if (isinf(v))
        qf_sb_put(b, v > 0 ? "\xE2\x88\x9E" : "-\xE2\x88\x9E");
    else
        qf_sb_put(b, "-");
    qf_sb_put(b, "</td>");
}

static void text_cell(qf_sb *b, const char *s, const char *cls) {
    qf_sb_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    qf_sb_html(b, s ? s : "");
    qf_sb_put(b, "</td>");
}

static void size_text(char *buf, size_t n, int64_t bytes) {
    if (bytes < 0)
        snprintf(buf, n, "-");
    else if (bytes < 10 * 1024)
        snprintf(buf, n, "%lld B", (long long)bytes);
    else if (bytes < 10 * 1024 * 1024)
        snprintf(buf, n, "%.1f KiB", (double)bytes / 1024.0);
    else
        snprintf(buf, n, "%.2f MiB", (double)bytes / (1024.0 * 1024.0));
}

static void steps_section(qf_sb *b, const qf_report *r) {
    if (r->n_steps == 0) return;
    qf_sb_put(
        b,
        "<section id=\"steps\"><h2>Pipeline steps</h2>"
        "<p class=\"hint\">Each step's effect: accuracy change in points and size change "
        "against the step before it; compression against the first step.</p>"
        "<table><thead><tr><th>step</th><th class=\"n\">top-1</th><th class=\"n\">&#916; top-1</th>"
        "<th class=\"n\">size</th><th class=\"n\">&#916; size</th><th "
        "class=\"n\">compression</th><th class=\"n\">time</th>"
        "<th>note</th></tr></thead><tbody>");
    const qf_report_step *first = &r->steps[0];
    for (int i = 0; i < r->n_steps; i++) {
        const qf_report_step *s = &r->steps[i], *prev = i ? &r->steps[i - 1] : NULL;
        qf_sb_put(b, "<tr>");
        text_cell(b, s->name, "name");
        num_cell(b, 100 * s->accuracy, "%.2f%%");
        if (prev && isfinite(s->accuracy) && isfinite(prev->accuracy)) {
            double d = 100 * (s->accuracy - prev->accuracy);
            qf_sb_printf(b, "<td class=\"n %s\">%+.2f</td>", d < 0 ? "down" : "up", d);
        } else {
            qf_sb_put(b, "<td class=\"n\">-</td>");
        }
        char sz[32];
        size_text(sz, sizeof sz, s->size_bytes);
        text_cell(b, sz, "n");
        if (prev && s->size_bytes >= 0 && prev->size_bytes > 0) {
            double d = 100.0 * ((double)s->size_bytes - (double)prev->size_bytes) /
                       (double)prev->size_bytes;
            qf_sb_printf(b, "<td class=\"n %s\">%+.1f%%</td>", d <= 0 ? "up" : "down", d);
        } else {
            qf_sb_put(b, "<td class=\"n\">-</td>");
        }
        if (i && s->size_bytes > 0 && first->size_bytes > 0)
            qf_sb_printf(b, "<td class=\"n\">%.2f&#215;</td>",
                         (double)first->size_bytes / (double)s->size_bytes);
        else
            qf_sb_put(b, "<td class=\"n\">-</td>");
        num_cell(b, s->seconds, "%.2f s");
        text_cell(b, s->note, NULL);
        qf_sb_put(b, "</tr>");
    }
    qf_sb_put(b, "</tbody></table></section>");
}

static void layers_section(qf_sb *b, const qf_report *r) {
    if (r->n_layers == 0) return;
    qf_sb_put(b, "<section id=\"layers\"><h2>Per-layer error</h2>"
                 "<p class=\"hint\">Signal-to-quantization-noise ratio of each quantized "
                 "layer's output against its float twin (higher is better; every 6 dB is about "
                 "one bit).</p><p class=\"legend\">"
                 "<span><i style=\"background:#3b7dd8\"></i>8-bit weights</span>"
                 "<span><i style=\"background:#e08a1e\"></i>4-bit</span>"
                 "<span><i style=\"background:#d64545\"></i>2-bit</span>"
                 "<span><i style=\"background:#7d5bd0\"></i>other</span>"
                 "<span><i style=\"background:#8a94a6\"></i>no weights</span></p>");
    qf_svg_sqnr_bars(b, r);
    qf_sb_put(b, "<table><thead><tr><th>layer</th><th>op</th><th class=\"n\">w bits</th><th "
                 "class=\"n\">act bits</th>"
                 "<th class=\"n\">SQNR dB</th><th class=\"n\">scale</th><th "
                 "class=\"n\">clipped</th><th class=\"n\">sensitivity</th></tr>"
                 "</thead><tbody>");
    for (int i = 0; i < r->n_layers; i++) {
        const qf_report_layer *l = &r->layers[i];
        qf_sb_put(b, "<tr>");
        text_cell(b, l->name, "name");
        text_cell(b, l->op, NULL);
        if (l->w_bits)
            qf_sb_printf(b, "<td class=\"n\">%d</td>", l->w_bits);
        else
            qf_sb_put(b, "<td class=\"n\">-</td>");
        if (l->act_bits)
            qf_sb_printf(b, "<td class=\"n\">%d</td>", l->act_bits);
        else
            qf_sb_put(b, "<td class=\"n\">-</td>");
        num_cell(b, l->sqnr_db, "%.2f");
        num_cell(b, l->scale, "%.4g");
        num_cell(b, 100 * l->clip_fraction, "%.3f%%");
        num_cell(b, l->sensitivity, "%.3f");
        qf_sb_put(b, "</tr>");
    }
    qf_sb_put(b, "</tbody></table></section>");
}

static void sensitivity_section(qf_sb *b, const qf_report *r) {
    bool any = false;
    for (int i = 0; i < r->n_layers; i++)
        if (isfinite(r->layers[i].sensitivity)) any = true;
    if (!any) return;
    qf_sb_put(b, "<section id=\"sensitivity\"><h2>Sensitivity ranking</h2><p class=\"hint\">"
                 "Layers ordered by the accuracy lost when each is quantized alone; the top ones "
                 "deserve more bits.</p>");
    qf_svg_sensitivity(b, r);
    qf_sb_put(b, "</section>");
}

static void hist_section(qf_sb *b, const qf_report *r) {
    if (r->n_hists == 0) return;
    qf_sb_put(b, "<section id=\"histograms\"><h2>Histograms and clipping</h2><p class=\"hint\">"
                 "Value distributions (log count) with the chosen clip range as red dashed lines: "
                 "values outside it saturate; a range much wider than the bulk wastes levels."
                 "</p>");
    for (int kind = 0; kind < 2; kind++) {
        bool any = false;
        for (int i = 0; i < r->n_hists; i++)
            if ((int)r->hists[i].kind == kind) any = true;
        if (!any) continue;
        qf_sb_printf(b, "<h3>%s</h3><div class=\"charts\">",
                     kind == QF_HIST_WEIGHT ? "Weights" : "Activations");
        for (int i = 0; i < r->n_hists; i++) {
            const qf_report_hist *h = &r->hists[i];
            if ((int)h->kind != kind) continue;
            qf_sb_put(b, "<div class=\"card\">");
            qf_svg_histogram(b, h, i);
            if (h->note) {
                qf_sb_put(b, "<p>");
                qf_sb_html(b, h->note);
                qf_sb_put(b, "</p>");
            }
            qf_sb_put(b, "</div>");
        }
        qf_sb_put(b, "</div>");
    }
    qf_sb_put(b, "</section>");
}

static void configs_section(qf_sb *b, const qf_report *r) {
    if (r->n_configs == 0) return;
    qf_sb_put(b, "<section id=\"configs\"><h2>Configurations tried</h2><p class=\"hint\">"
                 "Accuracy against size of every configuration measured; the chosen one is red."
                 "</p>");
    qf_svg_configs(b, r);
    qf_sb_put(b, "<table><thead><tr><th>configuration</th><th class=\"n\">size</th><th "
                 "class=\"n\">top-1</th>"
                 "<th>chosen</th></tr></thead><tbody>");
    for (int i = 0; i < r->n_configs; i++) {
        const qf_report_config *c = &r->configs[i];
        char sz[32];
        size_text(sz, sizeof sz, c->size_bytes);
        qf_sb_put(b, "<tr>");
        text_cell(b, c->label, "name");
        text_cell(b, sz, "n");
        num_cell(b, 100 * c->accuracy, "%.2f%%");
        text_cell(b, c->chosen ? "\xE2\x9C\x93" : "", NULL);
        qf_sb_put(b, "</tr>");
    }
    qf_sb_put(b, "</tbody></table></section>");
}

static void findings_section(qf_sb *b, const qf_report *r) {
    if (r->n_findings == 0) return;
    int cnt[3] = {0, 0, 0};
    for (int i = 0; i < r->n_findings; i++)
        cnt[r->findings[i].severity]++;
    qf_sb_printf(b,
                 "<section id=\"findings\"><h2>Findings</h2><p class=\"verdict\">"
                 "<b>%s</b>%d fail, %d warn, %d ok</p><table><thead><tr><th>verdict</th>"
                 "<th>check</th><th>subject</th><th class=\"n\">measured</th><th>finding</th>"
                 "<th>remedy</th></tr></thead><tbody>",
                 cnt[QF_SEV_FAIL]   ? "FAIL"
                 : cnt[QF_SEV_WARN] ? "WARN"
                                    : "OK",
                 cnt[QF_SEV_FAIL], cnt[QF_SEV_WARN], cnt[QF_SEV_OK]);
    /* worst first, keeping the order of equal severities */
    for (int sev = QF_SEV_FAIL; sev >= QF_SEV_OK; sev--)
        for (int i = 0; i < r->n_findings; i++) {
            const qf_report_finding *f = &r->findings[i];
            if ((int)f->severity != sev) continue;
            const char *nm = qf_severity_name(f->severity);
            qf_sb_printf(b, "<tr><td><span class=\"sev %s\">%s</span></td>", nm, nm);
            text_cell(b, f->check, NULL);
            text_cell(b, f->subject, "name");
            num_cell(b, f->value, "%.4g");
            text_cell(b, f->message, NULL);
            text_cell(b, f->remedy, NULL);
            qf_sb_put(b, "</tr>");
        }
    qf_sb_put(b, "</tbody></table></section>");
}

qf_status qf_report_to_html(const qf_report *r, char **out, size_t *len, qf_err *err) {
    qf_sb b = {0};
    qf_sb_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                  "style-src 'unsafe-inline'\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<title>");
    qf_sb_html(&b, r->title);
    qf_sb_printf(&b, "</title><style>%s</style></head>\n<body><header><h1>", CSS);
    qf_sb_html(&b, r->title);
    qf_sb_put(&b, "</h1>");
    if (r->n_meta) {
        qf_sb_put(&b, "<dl class=\"meta\">");
        for (int i = 0; i < r->n_meta; i++) {
            qf_sb_put(&b, "<div><dt>");
            qf_sb_html(&b, r->meta[i].key);
            qf_sb_put(&b, "</dt><dd>");
            qf_sb_html(&b, r->meta[i].value);
            qf_sb_put(&b, "</dd></div>");
        }
        qf_sb_put(&b, "</dl>");
    }
    qf_sb_put(&b, "</header>\n<main>");
    findings_section(&b, r);
    steps_section(&b, r);
    layers_section(&b, r);
    sensitivity_section(&b, r);
    hist_section(&b, r);
    configs_section(&b, r);
    if (!r->n_findings && !r->n_steps && !r->n_layers && !r->n_hists && !r->n_configs)
        qf_sb_put(&b, "<section><p class=\"hint\">Nothing was measured.</p></section>");
    qf_sb_printf(&b, "</main>\n<footer>qforge %d.%d.%d report</footer></body></html>\n",
                 QF_VERSION_MAJOR, QF_VERSION_MINOR, QF_VERSION_PATCH);
    return qf_sb_finish(&b, out, len, err);
}

qf_status qf_report_write_html(const qf_report *r, const char *path, qf_err *err) {
    char *text = NULL;
    size_t len = 0;
    qf_status s = qf_report_to_html(r, &text, &len, err);
    if (!s) s = qf_write_file_atomic(path, text, len, err);
    qf_free(text);
    return s;
}
