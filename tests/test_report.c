/* test_report.c - the report model and its writers: JSON parses back with
 * cJSON and carries every number; the HTML is well formed for the tags it
 * emits, hostile names stay inert text, chart geometry matches values
 * computed by hand; histograms bin like a naive loop; files are written
 * atomically; every out-of-memory path fails cleanly. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qtest.h"
#include "report/report.h"

static const char *HOSTILE = "<script>alert(\"x\")</script>&'<img src=x onerror=alert(1)>";

/* A report with one of everything; returns NULL (and fails) on error. */
static qf_report *sample_report(void) {
    qf_report *r = NULL;
    qf_err e;
    if (qf_report_create("test <report>", &r, &e)) return NULL;
    static const double counts[4] = {1, 5, 0, 2};
    qf_report_step steps[] = {
        {.name = "float", .accuracy = 0.9, .size_bytes = 40000, .seconds = 1.5, .note = NULL},
        {.name = HOSTILE, .accuracy = 0.88, .size_bytes = 10000, .seconds = NAN, .note = HOSTILE},
    };
    qf_report_layer layers[] = {
        {.name = "conv1",
         .op = "QConv",
         .w_bits = 8,
         .act_bits = 8,
         .sqnr_db = 20.0,
         .scale = 0.5,
         .clip_fraction = 0.001,
         .sensitivity = 0.25},
        {.name = HOSTILE,
         .op = "QGemm",
         .w_bits = 4,
         .act_bits = 8,
         .sqnr_db = INFINITY,
         .scale = 0.25,
         .clip_fraction = 0,
         .sensitivity = 1.5},
        {.name = "pool",
         .op = "QMaxPool",
         .w_bits = 0,
         .act_bits = 8,
         .sqnr_db = NAN,
         .scale = NAN,
         .clip_fraction = NAN,
         .sensitivity = NAN},
    };
    qf_report_hist h = {.name = HOSTILE,
                        .kind = QF_HIST_WEIGHT,
                        .lo = -1,
                        .hi = 1,
                        .n_bins = 4,
                        .counts = counts,
                        .clip_lo = -0.5,
                        .clip_hi = 0.75,
                        .note = HOSTILE};
    qf_report_config cfgs[] = {
        {.label = "w8", .size_bytes = 20480, .accuracy = 0.89, .chosen = false},
        {.label = HOSTILE, .size_bytes = 10240, .accuracy = 0.88, .chosen = true},
    };
    qf_report_finding f = {.severity = QF_SEV_WARN,
                           .check = "outliers",
                           .subject = HOSTILE,
                           .value = 7.5,
                           .message = HOSTILE,
                           .remedy = "per-channel"};
    bool ok = !qf_report_add_meta(r, "model", HOSTILE, &e);
    for (size_t i = 0; ok && i < QF_ARRAY_LEN(steps); i++)
        ok = !qf_report_add_step(r, &steps[i], &e);
    for (size_t i = 0; ok && i < QF_ARRAY_LEN(layers); i++)
        ok = !qf_report_add_layer(r, &layers[i], &e);
    ok = ok && !qf_report_add_hist(r, &h, &e);
    for (size_t i = 0; ok && i < QF_ARRAY_LEN(cfgs); i++)
        ok = !qf_report_add_config(r, &cfgs[i], &e);
    ok = ok && !qf_report_add_finding(r, &f, &e);
    if (!ok) {
        qf_report_free(r);
        return NULL;
    }
    return r;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void json_roundtrip(void) {
    qf_report *r = sample_report();
    CHECK(r);
    char *text = NULL;
    size_t len = 0;
    qf_err e;
    CHECK_OK(qf_report_to_json(r, &text, &len, &e));
    qf_report_free(r);
    CHECK_EQ_INT(len, strlen(text));
    cJSON *root = cJSON_Parse(text);
    qf_free(text);
    CHECK_MSG(root, "JSON does not parse");
    const cJSON *steps = cJSON_GetObjectItem(root, "steps");
    const cJSON *layers = cJSON_GetObjectItem(root, "layers");
    const cJSON *hists = cJSON_GetObjectItem(root, "histograms");
    const cJSON *cfgs = cJSON_GetObjectItem(root, "configs");
    const cJSON *finds = cJSON_GetObjectItem(root, "findings");
    bool shape_ok = cJSON_GetArraySize(steps) == 2 && cJSON_GetArraySize(layers) == 3 &&
                    cJSON_GetArraySize(hists) == 1 && cJSON_GetArraySize(cfgs) == 2 &&
                    cJSON_GetArraySize(finds) == 1;
    const cJSON *s1 = cJSON_GetArrayItem(steps, 1), *l0 = cJSON_GetArrayItem(layers, 0);
    const cJSON *l1 = cJSON_GetArrayItem(layers, 1), *l2 = cJSON_GetArrayItem(layers, 2);
    const cJSON *h = cJSON_GetArrayItem(hists, 0), *c1 = cJSON_GetArrayItem(cfgs, 1);
    const cJSON *f = cJSON_GetArrayItem(finds, 0);
    const cJSON *meta = cJSON_GetObjectItem(root, "meta");
    bool vals_ok =
        shape_ok && strcmp(str(root, "title"), "test <report>") == 0 &&
        strcmp(str(meta, "model"), HOSTILE) == 0 && strcmp(str(s1, "name"), HOSTILE) == 0 &&
        num(s1, "accuracy") == 0.88 && num(s1, "size_bytes") == 10000 &&
        cJSON_IsNull(cJSON_GetObjectItem(s1, "seconds")) && num(l0, "sqnr_db") == 20.0 &&
        num(l0, "w_bits") == 8 && num(l0, "scale") == 0.5 && num(l0, "clip_fraction") == 0.001 &&
        num(l0, "sensitivity") == 0.25 && strcmp(str(l1, "sqnr_db"), "inf") == 0 &&
        num(l1, "w_bits") == 4 && cJSON_IsNull(cJSON_GetObjectItem(l2, "sqnr_db")) &&
        strcmp(str(h, "kind"), "weight") == 0 && num(h, "clip_lo") == -0.5 &&
        num(h, "clip_hi") == 0.75 && num(h, "lo") == -1 && num(h, "hi") == 1 &&
        cJSON_GetArraySize(cJSON_GetObjectItem(h, "counts")) == 4 &&
        cJSON_GetArrayItem(cJSON_GetObjectItem(h, "counts"), 1)->valuedouble == 5 &&
        cJSON_IsTrue(cJSON_GetObjectItem(c1, "chosen")) && num(c1, "size_bytes") == 10240 &&
        strcmp(str(f, "severity"), "warn") == 0 && num(f, "value") == 7.5 &&
        strcmp(str(f, "message"), HOSTILE) == 0 && strcmp(str(f, "remedy"), "per-channel") == 0;
    cJSON_Delete(root);
    CHECK_MSG(vals_ok, "JSON content differs from what was added");
}

/* Tag balance for the HTML we emit: every non-void element closed in
 * order, every '<' in the text starts a tag (so no raw '<' from data).
 * Returns NULL when fine, else a description. Counts <svg> elements. */
static const char *check_tags(const char *html, int *n_svg, char *why, size_t why_len) {
    static const char *const voids[] = {"meta", "br", "hr", "img", "input", "link"};
    const char *stack[256];
    size_t stack_len[256];
    int depth = 0;
    *n_svg = 0;
    const char *p = html;
    while ((p = strchr(p, '<'))) {
        if (strncmp(p, "<!DOCTYPE", 9) == 0) {
            p += 9;
            continue;
        }
        bool close = p[1] == '/';
        const char *nm = p + 1 + close;
        size_t n = 0;
        while (isalnum((unsigned char)nm[n]))
            n++;
        if (n == 0) {
            snprintf(why, why_len, "stray '<' at offset %ld", (long)(p - html));
            return why;
        }
        const char *end = strchr(nm, '>');
        if (!end) return "unterminated tag";
        /* a quoted '>' inside an attribute would end the tag early: our
         * attributes never hold one (escaped as &gt;) */
        for (const char *q = nm; q < end; q++)
            if (*q == '<') return "'<' inside a tag";
        bool self = end[-1] == '/';
        bool is_void = false;
        for (size_t k = 0; k < QF_ARRAY_LEN(voids); k++)
            if (strlen(voids[k]) == n && strncmp(nm, voids[k], n) == 0) is_void = true;
        if (!close && n == 3 && strncmp(nm, "svg", 3) == 0) (*n_svg)++;
        if (close) {
            if (depth == 0 || stack_len[depth - 1] != n || strncmp(stack[depth - 1], nm, n)) {
                snprintf(why, why_len, "</%.*s> closes <%.*s>", (int)n, nm,
                         depth ? (int)stack_len[depth - 1] : 0, depth ? stack[depth - 1] : "");
                return why;
            }
            depth--;
        } else if (!self && !is_void) {
            if (depth == 256) return "too deep";
            stack[depth] = nm;
            stack_len[depth] = n;
            depth++;
            /* <style> content is CSS: skip to its end tag */
            if (n == 5 && strncmp(nm, "style", 5) == 0) {
                const char *se = strstr(end, "</style>");
                if (!se) return "unterminated style";
                p = se;
                continue;
            }
        }
        p = end + 1;
    }
    if (depth) {
        snprintf(why, why_len, "%d unclosed, innermost <%.*s>", depth, (int)stack_len[depth - 1],
                 stack[depth - 1]);
        return why;
    }
    return NULL;
}

static void html_wellformed_and_escaped(void) {
    qf_report *r = sample_report();
    CHECK(r);
    char *html = NULL;
    size_t len;
    qf_err e;
    qf_status s = qf_report_to_html(r, &html, &len, &e);
    qf_report_free(r);
    CHECK_OK(s);
    int n_svg = 0;
    char why[200];
    const char *bad = check_tags(html, &n_svg, why, sizeof why);
    /* no script anywhere, the hostile text present only escaped */
    char *lower = qf_strdup(html);
    for (char *q = lower; q && *q; q++)
        *q = (char)tolower((unsigned char)*q);
    bool no_script = lower && !strstr(lower, "<script") && !strstr(lower, "<img");
    bool escaped =
        strstr(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;") != NULL;
    /* nothing remote: the only URL is the SVG namespace, no CSS url() */
    int http = 0;
    for (const char *q = lower; q && (q = strstr(q, "://")); q++)
        http += q - lower < 4 || strncmp(q - 4, "http://www.w3.org/2000/svg", 26) != 0;
    http += lower && strstr(lower, "url(") != NULL;
    bool csp = strstr(html, "Content-Security-Policy") != NULL;
    qf_free(lower);
    qf_free(html);
    CHECK_MSG(!bad, "%s", bad ? bad : "");
    CHECK(no_script);
    CHECK(escaped);
    CHECK_EQ_INT(http, 0);
    CHECK(csp);
    /* charts: SQNR bars, sensitivity, one histogram, the scatter */
    CHECK_EQ_INT(n_svg, 4);
}

/* Value of attribute `name` in the first tag at or after p. */
static double attr_after(const char *p, const char *name) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *q = strstr(p, pat);
    return q ? strtod(q + strlen(pat), NULL) : NAN;
}

static void chart_geometry(void) {
    qf_report *r = sample_report();
    CHECK(r);
    char *html = NULL;
    qf_err e;
    qf_status s = qf_report_to_html(r, &html, NULL, &e);
    qf_report_free(r);
    CHECK_OK(s);
    /* SQNR axis: 0..40 dB (max finite 20 dB, at least 40); plot width
     * 720 - 190 - 90 = 440 px: 20 dB -> 220 px, infinite -> 440 px. */
    const char *sq = strstr(html, "class=\"chart sqnr\"");
    const char *b1 = sq ? strstr(sq, "<rect class=\"bar b8\"") : NULL;
    const char *b2 = sq ? strstr(sq, "<rect class=\"bar b4\"") : NULL;
    double w1 = b1 ? attr_after(b1, "width") : NAN, w2 = b2 ? attr_after(b2, "width") : NAN;
    /* the scatter: exactly one chosen point, the larger radius */
    const char *sc = strstr(html, "class=\"chart scatter\"");
    int chosen = 0;
    for (const char *q = sc; q && (q = strstr(q, "<circle class=\"pt chosen\"")); q++)
        chosen++;
    /* sensitivity: most sensitive (1.5) first with the full 440 px bar */
    const char *se = strstr(html, "class=\"chart sens\"");
    const char *sb = se ? strstr(se, "<rect class=\"bar sensbar\"") : NULL;
    double ws = sb ? attr_after(sb, "width") : NAN;
    /* the histogram's clip lines: view [-1, 1] over 300 - 16 = 284 px from
     * x = 8: clip -0.5 -> 79, 0.75 -> 256.5 */
    const char *cl = strstr(html, "<line class=\"clip\"");
    double c1 = cl ? attr_after(cl, "x1") : NAN;
    const char *cl2 = cl ? strstr(cl + 1, "<line class=\"clip\"") : NULL;
    double c2 = cl2 ? attr_after(cl2, "x1") : NAN;
    qf_free(html);
    CHECK_NEAR(w1, 220.0, 0.05);
    CHECK_NEAR(w2, 440.0, 0.05);
    CHECK_EQ_INT(chosen, 1);
    CHECK_NEAR(ws, 440.0, 0.05);
    CHECK_NEAR(c1, 79.0, 0.01);
    CHECK_NEAR(c2, 256.5, 0.01);
}

static void hist_values_binning(void) {
    static const struct { int n, bins; } cases[] = {{1000, 10}, {7, 3}, {1, 1}, {500, 80}};
    for (size_t t = 0; t < QF_ARRAY_LEN(cases); t++) {
        int n = cases[t].n, bins = cases[t].bins;
        float *x = malloc(sizeof(float) * (size_t)(n + 2));
        uint32_t st = 99u + (uint32_t)t;
        for (int i = 0; i < n; i++) {
            st = st * 1664525u + 1013904223u;
            x[i] = (float)((st >> 8) % 2001) / 100.0f - 10.0f; /* -10..10 in 0.01 steps */
        }
        x[n] = NAN; /* skipped */
        qf_report *r = NULL;
        qf_err e;
        CHECK_OK(qf_report_create(NULL, &r, &e));
        qf_status s = qf_report_add_hist_values(r, "h", QF_HIST_ACTIVATION, x, (size_t)n + 1, bins,
                                                NAN, NAN, NULL, &e);
        /* naive reference: min/max, then bin index with the top edge in the last bin */
        float mn = x[0], mx = x[0];
        for (int i = 1; i < n; i++) {
            mn = x[i] < mn ? x[i] : mn;
            mx = x[i] > mx ? x[i] : mx;
        }
        double ref[80] = {0};
        for (int i = 0; i < n; i++) {
            int k = mx > mn ? (int)floor(((double)x[i] - mn) / (((double)mx - mn) / bins)) : 0;
            if (k >= bins) k = bins - 1;
            ref[k] += 1;
        }
        bool same = s == QF_OK && r->n_hists == 1 && r->hists[0].n_bins == bins &&
                    r->hists[0].lo == mn && r->hists[0].hi == mx;
        double total = 0;
        for (int k = 0; same && k < bins; k++) {
            same = r->hists[0].counts[k] == ref[k];
            total += r->hists[0].counts[k];
        }
        qf_report_free(r);
        free(x);
        CHECK_MSG(same, "case %zu: bins differ from the naive loop", t);
        CHECK_NEAR(total, n, 0);
    }
}

static void invalid_items(void) {
    qf_report *r = NULL;
    qf_err e;
    CHECK_OK(qf_report_create("t", &r, &e));
    double c[2] = {1, -1}, ok2[2] = {1, 2};
    qf_report_hist bad_count = {.name = "h", .lo = 0, .hi = 1, .n_bins = 2, .counts = c};
    qf_report_hist bad_bins = {.name = "h", .lo = 0, .hi = 1, .n_bins = 0, .counts = ok2};
    qf_report_hist bad_range = {.name = "h", .lo = 1, .hi = 0, .n_bins = 2, .counts = ok2};
    qf_report_hist no_name = {.name = NULL, .lo = 0, .hi = 1, .n_bins = 2, .counts = ok2};
    qf_report_layer bad_bits = {.name = "l", .w_bits = 99};
    qf_report_finding bad_sev = {.severity = (qf_severity)7, .subject = "s", .message = "m"};
    qf_report_step no_step_name = {.name = NULL};
    int rejected = (qf_report_add_hist(r, &bad_count, &e) == QF_ERR_INVALID_ARG) +
                   (qf_report_add_hist(r, &bad_bins, &e) == QF_ERR_INVALID_ARG) +
                   (qf_report_add_hist(r, &bad_range, &e) == QF_ERR_INVALID_ARG) +
                   (qf_report_add_hist(r, &no_name, &e) == QF_ERR_INVALID_ARG) +
                   (qf_report_add_layer(r, &bad_bits, &e) == QF_ERR_INVALID_ARG) +
                   (qf_report_add_finding(r, &bad_sev, &e) == QF_ERR_INVALID_ARG) +
                   (qf_report_add_step(r, &no_step_name, &e) == QF_ERR_INVALID_ARG);
    int stored = r->n_hists + r->n_layers + r->n_findings + r->n_steps;
    qf_report_free(r);
    qf_report_free(NULL); /* harmless */
    CHECK_EQ_INT(rejected, 7);
    CHECK_EQ_INT(stored, 0);
}

static void atomic_write(void) {
    char dir[] = "/tmp/qf_test_report.XXXXXX";
    CHECK(mkdtemp(dir));
    char path[128], json_path[128], bad[160];
    snprintf(path, sizeof path, "%s/r.html", dir);
    snprintf(json_path, sizeof json_path, "%s/r.json", dir);
    snprintf(bad, sizeof bad, "%s/missing/r.html", dir);
    qf_report *r = sample_report();
    CHECK(r);
    qf_err e;
    char *html = NULL;
    size_t len = 0;
    qf_status s1 = qf_report_to_html(r, &html, &len, &e);
    qf_status s2 = qf_report_write_html(r, path, &e);
    qf_status s3 = qf_report_write_json(r, json_path, &e);
    qf_status s4 = qf_report_write_html(r, bad, &e);
    qf_report_free(r);
    void *buf = NULL;
    size_t flen = 0;
    qf_status s5 = qf_read_file(path, &buf, &flen, &e);
    bool same = s5 == QF_OK && flen == len && memcmp(buf, html, len) == 0;
    qf_free(buf);
    qf_free(html);
    struct stat st;
    bool left = stat(bad, &st) == 0;
    unlink(path);
    unlink(json_path);
    rmdir(dir);
    CHECK_OK(s1);
    CHECK_OK(s2);
    CHECK_OK(s3);
    CHECK_EQ_INT(s4, QF_ERR_IO);
    CHECK(same);
    CHECK(!left);
}

/* ---- out of memory: fail the k-th allocation for every k -------------- */
static int oom_countdown = -1;
static void *oom_alloc(void *u, size_t n) {
    (void)u;
    if (oom_countdown == 0) return NULL;
    if (oom_countdown > 0) oom_countdown--;
    return malloc(n);
}
static void *oom_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (oom_countdown == 0) return NULL;
    if (oom_countdown > 0) oom_countdown--;
    return realloc(p, n);
}
static void oom_free(void *u, void *p) {
    (void)u;
    free(p);
}

static void out_of_memory(void) {
    qf_allocator a = {oom_alloc, oom_realloc, oom_free, NULL};
    int failures = 0, k;
    bool success = false, wrong_status = false;
    for (k = 0; k < 400 && !success; k++) {
        qf_set_allocator(&a);
        oom_countdown = k;
        qf_report *r = sample_report(); /* NULL when an add failed */
        char *html = NULL, *json = NULL;
        qf_err e;
        e.status = QF_OK;
        qf_status s = r ? qf_report_to_html(r, &html, NULL, &e) : QF_ERR_NOMEM;
        if (!s) s = qf_report_to_json(r, &json, NULL, &e);
        if (r && s && s != QF_ERR_NOMEM) wrong_status = true;
        oom_countdown = -1;
        qf_free(html);
        qf_free(json);
        qf_report_free(r);
        qf_set_allocator(NULL);
        if (s)
            failures++;
        else
            success = true;
    }
    CHECK(!wrong_status);
    CHECK(success);      /* enough allocations eventually succeed */
    CHECK(failures > 5); /* and the early ones all failed cleanly (ASan checks leaks) */
}

static void empty_report(void) {
    qf_report *r = NULL;
    qf_err e;
    CHECK_OK(qf_report_create(NULL, &r, &e));
    char *html = NULL, *json = NULL;
    CHECK_OK(qf_report_to_html(r, &html, NULL, &e));
    qf_status s = qf_report_to_json(r, &json, NULL, &e);
    qf_report_free(r);
    int n_svg = -1;
    char why[200];
    const char *bad = check_tags(html, &n_svg, why, sizeof why);
    cJSON *root = s ? NULL : cJSON_Parse(json);
    bool ok = root && strcmp(str(root, "title"), "qforge report") == 0 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(root, "layers")) == 0;
    cJSON_Delete(root);
    qf_free(html);
    qf_free(json);
    CHECK_MSG(!bad, "%s", bad ? bad : "");
    CHECK_EQ_INT(n_svg, 0);
    CHECK(ok);
}

/* The tag checker itself catches what it is there to catch. */
static void tag_checker_catches(void) {
    static const char *const bad[] = {"<p><b></p></b>", "<p>a < b</p>", "<div><p></p>", "</p>",
                                      "<svg><rect></svg>"};
    int n_svg;
    char why[200];
    for (size_t i = 0; i < QF_ARRAY_LEN(bad); i++)
        CHECK_MSG(check_tags(bad[i], &n_svg, why, sizeof why) != NULL, "accepted %s", bad[i]);
    CHECK(check_tags("<!DOCTYPE html><p><meta charset=x><rect/>a &lt; b</p>", &n_svg, why,
                     sizeof why) == NULL);
}

QT_MAIN(QT_CASE(json_roundtrip), QT_CASE(tag_checker_catches), QT_CASE(html_wellformed_and_escaped),
        QT_CASE(chart_geometry), QT_CASE(hist_values_binning), QT_CASE(invalid_items),
        QT_CASE(atomic_write), QT_CASE(out_of_memory), QT_CASE(empty_report))
