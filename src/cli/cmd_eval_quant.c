/* cmd_eval_quant.c - `qforge eval MODEL.qfm`: float vs quantized top-1,
 * agreement, and a per-layer error table (SQNR, scale, bits, clipping). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx.h"
#include "io/qfm.h"
#include "quant/verify.h"

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
    qf_status st = qf_qfm_load(path, &qg, &meta, &e);
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
    qf_verify_options vo = {.limit = dopt->limit, .batch = batch, .num_threads = threads,
                            .progress = json ? NULL : progress_cb, .progress_user = &prog};
    st = qf_verify(fg, qg, ds, &vo, &r, &e);
    if (prog.active) cli_progress_finish(&prog);
    if (st) {
        rc = cli_fail(&e, st);
        goto out;
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
        printf("%-28s %-20s %9s %11s %5s %5s %5s %8s\n", "layer output", "op", "SQNR dB",
               "scale", "zp", "bits", "wbits", "clipped");
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
