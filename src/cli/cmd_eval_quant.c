/* cmd_eval_quant.c - `qforge eval MODEL.qfm`: float vs quantized top-1,
 * agreement, and a per-layer error table (SQNR, scale, bits, clipping);
 * with --report R.html also a self-contained HTML report (report/report.h)
 * with weight and activation histograms and the clip ranges chosen. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx.h"
#include "io/qfm.h"
#include "ir/passes.h"
#include "quant/calib.h"
#include "quant/verify.h"
#include "report/report.h"
#include "runtime/runtime.h"

/* "source_model": "..." from the qfm metadata (no JSON parser needed for
 * the one string we wrote ourselves; anything unexpected yields NULL). */
static char *meta_source(const char *meta) {
    const char *k = meta ? strstr(meta, "\"source_model\": \"") : NULL;
    if (!k) return NULL;
    k += strlen("\"source_model\": \"");
    const char *e = strchr(k, '"');
    if (!e || e == k) return NULL;
    char *s = qf_malloc((size_t)(e - k) + 1);
    if (!s) return NULL;
    memcpy(s, k, (size_t)(e - k));
    s[e - k] = 0;
    return s;
}

static void progress_cb(void *user, int64_t done, int64_t total) {
    cli_progress *p = user;
    if (!p->active) cli_progress_start(p, "eval", total);
    cli_progress_update(p, done);
}

static void print_db(double db) {
    if (isinf(db))
        printf("%9s", db > 0 ? "inf" : "-inf");
    else
        printf("%9.2f", db);
}

/* ---- --report: the HTML report of a float-vs-quantized comparison -------- */

#define REPORT_BINS 80
#define REPORT_MAX_HISTS 32 /* per kind: keeps the page light for big models */

static int64_t file_size(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Float value paired with a quantized activation: same name, or the graph
 * output "<name>" of an integer twin "<name>.q" (as qf_verify pairs them). */
static int float_twin(const qf_graph *fg, const char *qname) {
    int f = qf_graph_find_value(fg, qname);
    size_t nl = strlen(qname);
    if (f < 0 && nl > 2 && strcmp(qname + nl - 2, ".q") == 0) {
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(nl - 2), qname);
        f = qf_graph_find_value(fg, base);
    }
    return f;
}

static const qf_node *node_named(const qf_graph *g, const char *name, bool with_weight) {
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        if (strcmp(n->name, name) != 0) continue;
        if (!with_weight) return n;
        if (n->n_inputs > 1 && n->inputs[1] >= 0 && (g->values[n->inputs[1]].flags & QF_VAL_CONST))
            return n;
    }
    return NULL;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Histogram of a layer's float weights (from the optimized float graph,
 * BatchNorm folded as the quantizer saw them) with the weight clip taken
 * from the quantized weight's scales. */
static qf_status add_weight_hist(qf_report *rep, const qf_graph *fopt, const qf_graph *qg,
                                 const char *node, qf_err *e) {
    const qf_node *fn = node_named(fopt, node, true), *qn = node_named(qg, node, true);
    if (!fn || !qn) return QF_OK;
    const qf_value *w = &fopt->values[fn->inputs[1]], *qw = &qg->values[qn->inputs[1]];
    if (w->dtype != QF_DT_F32 || !w->data || !qw->qp || qw->qp->n < 1 || qw->qp->bits < 2)
        return QF_OK;
    qf_tensor t = qf_value_tensor(w);
    int64_t n = qf_tensor_numel(&t);
    if (n <= 0) return QF_OK;
    const qf_qparams *qp = qw->qp;
    double qmax_r = (double)((1 << (qp->bits - 1)) - 1);
    float *clips = qf_malloc(sizeof(float) * (size_t)qp->n);
    if (!clips) return qf_errf(e, QF_ERR_NOMEM, "out of memory writing the report");
    for (int c = 0; c < qp->n; c++)
        clips[c] = (float)(qp->scale[c] * qmax_r);
    qsort(clips, (size_t)qp->n, sizeof(float), cmp_float);
    double widest = clips[qp->n - 1], median = clips[qp->n / 2];
    qf_free(clips);
    char note[200];
    if (qp->n > 1)
        snprintf(note, sizeof note,
                 "%d-bit, %d per-channel scales: lines at the widest channel's "
                 "clip; median channel clips at %.3g",
                 qp->bits, qp->n, median);
    else
        snprintf(note, sizeof note, "%d-bit, one per-tensor scale", qp->bits);
    return qf_report_add_hist_values(rep, node, QF_HIST_WEIGHT, w->data, (size_t)n, REPORT_BINS,
                                     -widest, widest, note, e);
}

typedef struct act_ctx {
    int *layer_of_value; /* float value -> verify layer, or -1 */
    qf_observer **obs;   /* per verify layer (NULL: not observed) */
    bool *broken;        /* the layer saw NaN/Inf: no histogram */
} act_ctx;

static qf_status act_observer(void *user, const qf_graph *g, int node, const qf_tensor *out,
                              int n_out) {
    act_ctx *c = user;
    const qf_node *nd = &g->nodes[node];
    for (int j = 0; j < n_out; j++) {
        int v = nd->outputs[j];
        if (v < 0 || !out[j].data || out[j].dtype != QF_DT_F32) continue;
        int l = c->layer_of_value[v];
        if (l < 0 || !c->obs[l] || c->broken[l]) continue;
        int64_t n = qf_tensor_numel(&out[j]);
        /* non-finite activations: observe refuses them; drop that layer */
        if (n > 0 && qf_observer_observe(c->obs[l], out[j].data, (size_t)n, NULL))
            c->broken[l] = true;
    }
    return QF_OK;
}

/* Observer histogram (2B zero-anchored bins) -> n equal display bins over
 * the observed [min, max]. */
static qf_status add_act_hist(qf_report *rep, const qf_observer *o, const char *name,
                              double clip_lo, double clip_hi, const char *note, qf_err *e) {
    qf_observer_stats st;
    qf_observer_get_stats(o, &st);
    qf_hist h;
    if (st.count == 0 || qf_observer_get_hist(o, &h, NULL)) return QF_OK;
    double counts[REPORT_BINS];
    memset(counts, 0, sizeof counts);
    double lo = st.min, hi = st.max;
    int nb = hi > lo ? REPORT_BINS : 1;
    double dw = hi > lo ? (hi - lo) / nb : 1;
    for (size_t k = 0; k < h.nbins; k++)
        for (int sign = 0; sign < 2; sign++) {
            uint64_t cnt = sign ? h.neg[k] : h.pos[k];
            if (!cnt) continue;
            double x = (sign ? -1 : 1) * ((double)k + 0.5) * h.width;
            x = QF_MAX(lo, QF_MIN(hi, x));
            int b = (int)((x - lo) / dw);
            counts[QF_MAX(0, QF_MIN(nb - 1, b))] += (double)cnt;
        }
    qf_report_hist rh = {.name = name,
                         .kind = QF_HIST_ACTIVATION,
                         .lo = lo,
                         .hi = hi,
                         .n_bins = nb,
                         .counts = counts,
                         .clip_lo = clip_lo,
                         .clip_hi = clip_hi,
                         .note = note};
    return qf_report_add_hist(rep, &rh, e);
}

/* Run the float model once more over the evaluated samples, observing the
 * activations that have a quantized twin, and add their histograms. */
static qf_status add_act_hists(qf_report *rep, const qf_graph *fg, const qf_dataset *ds,
                               const qf_verify_result *r, int64_t limit, int batch, int threads,
                               qf_err *e) {
    qf_graph *gc = NULL;
    qf_model *m = NULL;
    qf_session *s = NULL;
    float *in = NULL;
    act_ctx c = {0};
    qf_status st = qf_graph_clone(fg, &gc, e);
    if (st) return st;
    if ((st = qf_model_from_graph(gc, fg->source_path ? fg->source_path : "float", &m, e))) {
        qf_graph_free(gc);
        return st;
    }
    const qf_graph *g = qf_model_graph(m);
    int nl = r->n_layers;
    c.layer_of_value = qf_malloc(sizeof(int) * (size_t)(g->n_values + 1));
    c.obs = qf_calloc((size_t)nl + 1, sizeof(qf_observer *));
    c.broken = qf_calloc((size_t)nl + 1, sizeof(bool));
    if (!c.layer_of_value || !c.obs || !c.broken) {
        st = qf_errf(e, QF_ERR_NOMEM, "out of memory writing the report");
        goto out;
    }
    for (int v = 0; v < g->n_values; v++)
        c.layer_of_value[v] = -1;
    int shown = 0;
    for (int l = 0; l < nl && shown < REPORT_MAX_HISTS; l++) {
        int v = float_twin(g, r->layers[l].value);
        if (v < 0 || c.layer_of_value[v] >= 0) continue;
        if ((st = qf_observer_create(NULL, r->layers[l].value, &c.obs[l], e))) goto out;
        c.layer_of_value[v] = l;
        shown++;
    }
    const qf_value *iv = &g->values[g->inputs[0]];
    int64_t per = 1;
    for (int k = 1; k < iv->rank; k++)
        per *= iv->dims[k] > 0 ? iv->dims[k] : 1;
    if (iv->rank < 1 || per != ds->sample_numel) goto out; /* verify would have failed first */
    if (iv->dims[0] > 0) batch = (int)iv->dims[0];
    in = qf_malloc_aligned(sizeof(float) * (size_t)batch * (size_t)per);
    if (!in) {
        st = qf_errf(e, QF_ERR_NOMEM, "out of memory writing the report");
        goto out;
    }
    qf_session_options so = {.num_threads = threads};
    if ((st = qf_session_create(m, &so, &s, e))) goto out;
    qf_session_set_observer(s, act_observer, &c);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = iv->rank, .data = in};
    for (int k = 0; k < iv->rank; k++)
        t.dims[k] = iv->dims[k];
    int64_t total = limit > 0 ? QF_MIN(limit, ds->n) : ds->n;
    for (int64_t i = 0; i < total; i += batch) {
        int64_t cnt = QF_MIN((int64_t)batch, total - i);
        if (iv->dims[0] > 0 && cnt < batch) break; /* as qf_verify: whole batches only */
        if ((st = qf_dataset_fill(ds, i, cnt, in, NULL, e))) goto out;
        t.dims[0] = cnt;
        qf_tensor o;
        if ((st = qf_session_run(s, &t, 1, &o, 1, e))) goto out;
    }
    for (int l = 0; l < nl && !st; l++) {
        if (!c.obs[l] || c.broken[l]) continue;
        const qf_verify_layer *L = &r->layers[l];
        int b = L->bits >= 2 && L->bits <= 16 ? L->bits : 8;
        double qmin = -(double)(1 << (b - 1)), qmax = (double)((1 << (b - 1)) - 1);
        char note[160];
        snprintf(note, sizeof note, "output of %s (%s), %d-bit, scale %.4g, zero point %d", L->node,
                 L->op, b, (double)L->scale, (int)L->zero_point);
        st = add_act_hist(rep, c.obs[l], L->value, L->scale * (qmin - L->zero_point),
                          L->scale * (qmax - L->zero_point), note, e);
    }
out:
    if (c.obs)
        for (int l = 0; l < nl; l++)
            qf_observer_free(c.obs[l]);
    qf_free(c.obs);
    qf_free(c.broken);
    qf_free(c.layer_of_value);
    qf_free_aligned(in);
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

static qf_status build_report(qf_report *rep, const char *path, const char *float_path,
                              const qf_graph *fg, const qf_graph *qg, const qf_dataset *ds,
                              const qf_verify_result *r, int64_t limit, int batch, int threads,
                              qf_err *e) {
    double n = (double)(r->n ? r->n : 1);
    char buf[160];
    qf_status st = qf_report_add_meta(rep, "model", path, e);
    if (!st) st = qf_report_add_meta(rep, "float model", float_path, e);
    if (!st) st = qf_report_add_meta(rep, "data", ds->source ? ds->source : "", e);
    snprintf(buf, sizeof buf, "%lld", (long long)r->n);
    if (!st) st = qf_report_add_meta(rep, "samples", buf, e);
    snprintf(buf, sizeof buf, "%.2f%%", 100.0 * (double)r->agree / n);
    if (!st) st = qf_report_add_meta(rep, "agreement", buf, e);
    if (isinf(r->output_sqnr_db))
        snprintf(buf, sizeof buf, "%s", r->output_sqnr_db > 0 ? "inf" : "-inf");
    else
        snprintf(buf, sizeof buf, "%.2f dB", r->output_sqnr_db);
    if (!st) st = qf_report_add_meta(rep, "output SQNR", buf, e);
    int64_t fsize = file_size(float_path), qsize = file_size(path);
    qf_report_step s0 = {.name = "float",
                         .accuracy = (double)r->top1_float / n,
                         .size_bytes = fsize,
                         .seconds = r->seconds_float,
                         .note = "ONNX model, fp32 reference runtime"};
    qf_report_step s1 = {.name = "quantized",
                         .accuracy = (double)r->top1_quant / n,
                         .size_bytes = qsize,
                         .seconds = r->seconds_quant,
                         .note = "qfm, integer runtime"};
    if (!st) st = qf_report_add_step(rep, &s0, e);
    if (!st) st = qf_report_add_step(rep, &s1, e);
    qf_report_config c0 = {.label = "float", .size_bytes = fsize, .accuracy = s0.accuracy};
    qf_report_config c1 = {
        .label = "quantized", .size_bytes = qsize, .accuracy = s1.accuracy, .chosen = true};
    if (!st) st = qf_report_add_config(rep, &c0, e);
    if (!st) st = qf_report_add_config(rep, &c1, e);
    for (int i = 0; i < r->n_layers && !st; i++) {
        const qf_verify_layer *L = &r->layers[i];
        qf_report_layer rl = {.name = L->node,
                              .op = L->op,
                              .w_bits = L->w_bits,
                              .act_bits = L->bits,
                              .sqnr_db = L->sqnr_db,
                              .scale = L->scale,
                              .clip_fraction = L->clip_fraction,
                              .sensitivity = NAN};
        st = qf_report_add_layer(rep, &rl, e);
    }
    if (st) return st;
    /* weights as the quantizer saw them: BatchNorm folded into the convs */
    qf_graph *fopt = NULL;
    if ((st = qf_graph_clone(fg, &fopt, e)) || (st = qf_pass_optimize(fopt, e))) {
        qf_graph_free(fopt);
        return st;
    }
    int shown = 0;
    for (int i = 0; i < r->n_layers && !st && shown < REPORT_MAX_HISTS; i++)
        if (r->layers[i].w_bits) {
            int before = rep->n_hists;
            st = add_weight_hist(rep, fopt, qg, r->layers[i].node, e);
            shown += rep->n_hists > before;
        }
    qf_graph_free(fopt);
    if (!st) st = add_act_hists(rep, fg, ds, r, limit, batch, threads, e);
    return st;
}

/* Fail before any long work when the report cannot be written there: an
 * atomic file is opened (creating its temp file) and abandoned. */
static qf_status probe_writable(const char *path, qf_err *e) {
    qf_atomic_file f;
    qf_status st = qf_atomic_open(&f, path, e);
    if (!st) qf_atomic_abort(&f);
    return st;
}

static int write_report(const char *out, const char *path, const char *float_path,
                        const qf_graph *fg, const qf_graph *qg, const qf_dataset *ds,
                        const qf_verify_result *r, int64_t limit, int batch, int threads) {
    qf_err e = {0};
    qf_report *rep = NULL;
    char title[300];
    const char *base = strrchr(path, '/');
    snprintf(title, sizeof title, "qforge eval: %s", base ? base + 1 : path);
    qf_status st = qf_report_create(title, &rep, &e);
    if (!st) st = build_report(rep, path, float_path, fg, qg, ds, r, limit, batch, threads, &e);
    if (!st) st = qf_report_write_html(rep, out, &e);
    qf_report_free(rep);
    return st ? cli_fail(&e, st) : CLI_EXIT_OK;
}

int cli_eval_quant(const cli_args *a, const qf_dataset_options *dopt, const char *spec,
                   const char *labels, int threads, int batch) {
    const char *path = a->pos[0];
    qf_err e = {0};
    qf_graph *qg = NULL, *fg = NULL;
    char *meta = NULL, *src = NULL;
    qf_dataset *ds = NULL;
    qf_verify_result r;
    memset(&r, 0, sizeof r);
    int rc = CLI_EXIT_OK;
    const char *report = cli_get(a, "report");
    if (report && !*report) return cli_usage_error(a->cmd, "--report needs a file name");
    qf_status st = report ? probe_writable(report, &e) : QF_OK;
    if (st) return cli_fail(&e, st);
    st = qf_qfm_load(path, &qg, &meta, &e);
    if (st) return cli_fail(&e, st);
    const char *float_path = cli_get(a, "float");
    if (!float_path) {
        src = meta_source(meta);
        float_path = src;
    }
    if (!float_path) {
        cli_error("%s: no source model recorded; give the float model with --float M.onnx", path);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if ((st = qf_onnx_import_file(float_path, &fg, &e))) {
        rc = cli_fail(&e, st);
        if (!cli_get(a, "float"))
            cli_error("%s: (the float model recorded in %s; pass --float to use another)",
                      float_path, path);
        goto out;
    }
    if ((st = qf_dataset_open(spec, labels, dopt, &ds, &e))) {
        rc = cli_fail(&e, st);
        goto out;
    }
    cli_progress prog = {0};
    bool json = cli_flag(a, "json");
    qf_verify_options vo = {.limit = dopt->limit,
                            .batch = batch,
                            .num_threads = threads,
                            .progress = json ? NULL : progress_cb,
                            .progress_user = &prog};
    st = qf_verify(fg, qg, ds, &vo, &r, &e);
    if (prog.active) cli_progress_finish(&prog);
    if (st) {
        rc = cli_fail(&e, st);
        goto out;
    }
    if (report) {
        rc = write_report(report, path, float_path, fg, qg, ds, &r, dopt->limit, batch, threads);
        if (rc != CLI_EXIT_OK) goto out;
    }
    double n = (double)(r.n ? r.n : 1);
    if (json) {
        printf("{\"model\": ");
        cli_json_str(stdout, path);
        printf(", \"float_model\": ");
        cli_json_str(stdout, float_path);
        printf(", \"samples\": %lld, \"top1_float\": %.6f, \"top1_quant\": %.6f, "
               "\"agreement\": %.6f, \"output_sqnr_db\": %.4f, \"layers\": [",
               (long long)r.n, r.top1_float / n, r.top1_quant / n, r.agree / n,
               isinf(r.output_sqnr_db) ? 999.0 : r.output_sqnr_db);
        for (int i = 0; i < r.n_layers; i++) {
            const qf_verify_layer *L = &r.layers[i];
            printf("%s\n  {\"value\": ", i ? "," : "");
            cli_json_str(stdout, L->value);
            printf(", \"node\": ");
            cli_json_str(stdout, L->node);
            printf(", \"op\": ");
            cli_json_str(stdout, L->op);
            printf(", \"sqnr_db\": %.4f, \"scale\": %.9g, \"zero_point\": %d, \"bits\": %d, "
                   "\"w_bits\": %d, \"clip_fraction\": %.6g}",
                   isinf(L->sqnr_db) ? 999.0 : L->sqnr_db, (double)L->scale, (int)L->zero_point,
                   L->bits, L->w_bits, L->clip_fraction);
        }
        printf("\n]}\n");
    } else {
        printf("%-28s %-20s %9s %11s %5s %5s %5s %8s\n", "layer output", "op", "SQNR dB", "scale",
               "zp", "bits", "wbits", "clipped");
        for (int i = 0; i < r.n_layers; i++) {
            const qf_verify_layer *L = &r.layers[i];
            printf("%-28.28s %-20.20s ", L->value, L->op);
            print_db(L->sqnr_db);
            char wb[8] = "-";
            if (L->w_bits) snprintf(wb, sizeof wb, "%d", L->w_bits);
            printf(" %11.4g %5d %5d %5s %7.3f%%\n", (double)L->scale, (int)L->zero_point, L->bits,
                   wb, 100.0 * L->clip_fraction);
        }
        printf("\nmodel:        %s (float: %s)\n", path, float_path);
        printf("samples:      %lld\n", (long long)r.n);
        printf("top-1 float:  %.2f%% (%lld)\n", 100.0 * r.top1_float / n, (long long)r.top1_float);
        printf("top-1 quant:  %.2f%% (%lld)\n", 100.0 * r.top1_quant / n, (long long)r.top1_quant);
        printf("drop:         %.2f points\n", 100.0 * (r.top1_float - r.top1_quant) / n);
        printf("agreement:    %.2f%% of predictions\n", 100.0 * r.agree / n);
        printf("output SQNR:  ");
        print_db(r.output_sqnr_db);
        printf(" dB\ntime:         float %.2f s, quantized %.2f s (integer runtime)\n",
               r.seconds_float, r.seconds_quant);
        if (report) printf("report:       %s\n", report);
    }
out:
    qf_verify_result_free(&r);
    qf_dataset_free(ds);
    qf_graph_free(fg);
    qf_graph_free(qg);
    qf_free(meta);
    qf_free(src);
    return rc;
}
