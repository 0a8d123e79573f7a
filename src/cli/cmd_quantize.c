/* cmd_quantize.c - `qforge quantize`: post-training quantization of an ONNX
 * model into a .qfm file, with a per-layer table of what was done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx.h"
#include "io/qfm.h"
#include "kernels/dispatch.h"
#include "quant/gptq.h"
#include "quant/quantize.h"

static const cli_opt quantize_opts[] = {
    {"calib", 'c', "D",
     "calibration data: fashion-mnist, mnist, a directory, or an images file (default "
     "split: train)"},
    {"labels", 0, "FILE", "labels file when --calib names an images file (unused, accepted)"},
    {"config", 0, "C.json", "quantization config (num_bits, act_bits, per_channel, ...)"},
    {"method", 'm', "M", "calibrator: minmax, percentile, entropy or mse (overrides the config)"},
    {"bits", 0, "B", "weight bits for every layer, 2..8 (overrides the config default)"},
    {"percentile", 0, "P", "percentile for --method percentile (default 99.99)"},
    {"per-tensor", 0, NULL, "one weight scale per layer instead of per output channel"},
    {"reduce-range", 0, NULL,
     "7-bit weights (8-bit layers get 7): AVX2 CPUs without VNNI then multiply them at full "
     "speed (vpmaddubsw cannot saturate), as ONNX Runtime's reduce_range; costs some "
     "accuracy"},
    {"bias-correction", 0, NULL,
     "correct each layer's bias for the mean error its weight quantization adds"},
    {"rounding", 0, "nearest|gptq",
     "how weights round once their scales are set: nearest, or gptq (each rounding error "
     "moved onto the weights not yet rounded, as the layer's calibration inputs say "
     "cancels it best; slower, better below 8 bits; default nearest)"},
    {"gptq-samples", 0, "N",
     "calibration samples that build GPTQ's per-layer input statistics (default 256; 0 = "
     "all)"},
    {"requant", 0, "fp32|fixed", "requantization arithmetic (default fp32)"},
    {"split", 0, "test|train", "split of a named dataset or directory (default train)"},
    {"limit", 'n', "N", "calibration samples (default 1000)"},
    {"batch", 'b', "B", "calibration batch size (default 32)"},
    {"threads", 't', "T", "worker threads (default 1)"},
    {"scale", 0, "S", "multiply raw values by S first (default 1/255 for uint8 data)"},
    {"mean", 0, "M[,M...]", "subtract a mean per channel (after scaling)"},
    {"std", 0, "S[,S...]", "divide by a std per channel (after the mean)"},
    {"nhwc", 0, NULL, "rank-4 images are stored N,H,W,C (fed as NCHW)"},
    {"size", 0, "HxW", "image folders: resize every image to HxW (bilinear; 'N' = NxN)"},
    {"resize-short", 0, "S",
     "image folders: resize the shorter side to S, keeping the aspect, then center-crop "
     "--size (default SxS)"},
    {"channels", 0, "1|3", "image folders: 1 = grayscale, 3 = RGB (default: as the first image)"},
    {"layout", 0, "nchw|nhwc", "layout of the samples fed to the model (default nchw)"},
    {"output", 'o', "OUT.qfm", "where to write the quantized model"},
    {"compress", 0, NULL,
     "store each weight tensor in its smallest encoding (sparse bitmask and/or zstd; "
     "decoded at load) instead of raw, mmap-able bytes"},
    {"json", 0, NULL, "print the per-layer report as JSON on stdout"},
    {"quiet", 'q', NULL, "no table, only errors"},
};

static void progress_cb(void *user, int64_t done, int64_t total) {
    cli_progress *p = user;
    if (!p->active) cli_progress_start(p, "calibrate", total);
    cli_progress_update(p, done);
}

static void print_table(const qf_quant_report *r, const char *out, double seconds) {
    printf("%-24s %-16s %-14s %5s %5s %11s %6s %21s %8s\n", "layer", "op", "lowered to", "wbits",
           "abits", "out scale", "zp", "clip range", "clipped");
    for (int i = 0; i < r->n_layers; i++) {
        const qf_quant_layer *L = &r->layers[i];
        char wb[8] = "-", ab[8] = "float", range[40] = "-", sc[16] = "-", zp[8] = "-", cl[16] = "-";
        if (L->w_bits) snprintf(wb, sizeof wb, "%d", L->w_bits);
        if (L->act_bits <= 16) snprintf(ab, sizeof ab, "%d", L->act_bits);
        if (L->out_scale > 0) {
            snprintf(sc, sizeof sc, "%.4g", (double)L->out_scale);
            snprintf(zp, sizeof zp, "%d", (int)L->out_zero_point);
            snprintf(range, sizeof range, "[%.3g, %.3g]", (double)L->clip_lo, (double)L->clip_hi);
            snprintf(cl, sizeof cl, "%.3f%%", 100.0 * L->clip_fraction);
        }
        printf("%-24.24s %-16.16s %-14.14s %5s %5s %11s %6s %21s %8s\n", L->name, L->op, L->lowered,
               wb, ab, sc, zp, range, cl);
    }
    printf("\ncalibrated on %lld samples; %d node%s left in float; %.2f s\n",
           (long long)r->calib_samples, r->n_float_fallback, r->n_float_fallback == 1 ? "" : "s",
           seconds);
    if (r->n_gptq || r->n_gptq_skipped)
        printf("GPTQ rounding: %d layer%s (first layer's Hessian from %lld input rows)\n",
               r->n_gptq, r->n_gptq == 1 ? "" : "s", (long long)r->gptq_rows);
    if (r->n_gptq_skipped)
        printf("GPTQ: %d layer%s kept nearest rounding (Hessians over %zu MiB in all, or more "
               "than %d columns)\n",
               r->n_gptq_skipped, r->n_gptq_skipped == 1 ? "" : "s", QF_GPTQ_MEM_BUDGET >> 20,
               QF_GPTQ_MAX_COLS);
    if (r->n_asym_wide)
        printf("asymmetric weights: %d layer%s with some w - zero_point outside int8 run the "
               "portable kernels, not the x86 ones (symmetric or 7-bit weights do)\n",
               r->n_asym_wide, r->n_asym_wide == 1 ? "" : "s");
    /* a hint for CPUs like this one: AVX2 without VNNI (the JSON always
     * has the count) */
    if (r->n_avx2_wide && qf_isa_supported(QF_ISA_AVX2) && !qf_isa_supported(QF_ISA_AVX512VNNI))
        printf("this CPU has AVX2 but no VNNI: %d layer%s with weights beyond +-64 run exact "
               "fix-ups or a slower exact form here (--reduce-range avoids them)\n",
               r->n_avx2_wide, r->n_avx2_wide == 1 ? "" : "s");
    printf("wrote %s\n", out);
}

static void print_json(const qf_quant_report *r, const char *model, const char *out) {
    printf("{\"model\": ");
    cli_json_str(stdout, model);
    printf(", \"output\": ");
    cli_json_str(stdout, out);
    printf(", \"calib_samples\": %lld, \"float_fallback\": %d, \"seconds\": %.3f, "
           "\"gptq_layers\": %d, \"gptq_skipped\": %d, \"asym_wide_layers\": %d, "
           "\"avx2_wide_layers\": %d, \"layers\": [",
           (long long)r->calib_samples, r->n_float_fallback, r->calib_seconds, r->n_gptq,
           r->n_gptq_skipped, r->n_asym_wide, r->n_avx2_wide);
    for (int i = 0; i < r->n_layers; i++) {
        const qf_quant_layer *L = &r->layers[i];
        printf("%s\n  {\"name\": ", i ? "," : "");
        cli_json_str(stdout, L->name);
        printf(", \"op\": ");
        cli_json_str(stdout, L->op);
        printf(", \"lowered\": ");
        cli_json_str(stdout, L->lowered);
        printf(", \"w_bits\": %d, \"act_bits\": %d, \"scale\": %.9g, \"zero_point\": %d, "
               "\"clip\": [%.9g, %.9g], \"observed\": [%.9g, %.9g], \"clip_fraction\": %.6g}",
               L->w_bits, L->act_bits, (double)L->out_scale, (int)L->out_zero_point,
               (double)L->clip_lo, (double)L->clip_hi, (double)L->obs_min, (double)L->obs_max,
               L->clip_fraction);
    }
    printf("\n]}\n");
}

/* Metadata stored in the qfm: where the model came from and how. */
static char *metadata_json(const char *model, uint32_t model_crc, const qf_qconfig *cfg,
                           const qf_quant_report *r) {
    const size_t cap = 640 + strlen(model);
    char *m = qf_malloc(cap);
    if (!m) return NULL;
    snprintf(
        m, cap,
        "{\"source_model\": \"%s\", \"source_crc32c\": \"%08x\", \"tool\": \"qforge %d.%d.%d\", "
        "\"weight_bits\": %d, \"per_channel\": %s, \"calibration\": \"%s\", "
        "\"requant\": \"%s\", \"reduce_range\": %s, \"calib_samples\": %lld}",
        strchr(model, '"') || strchr(model, '\\') ? "?" : model, model_crc, QF_VERSION_MAJOR,
        QF_VERSION_MINOR, QF_VERSION_PATCH, cfg->default_w_bits,
        cfg->per_channel ? "true" : "false", qf_calib_method_name(cfg->calib),
        cfg->requant == QF_REQUANT_FIXED ? "fixed" : "fp32", cfg->reduce_range ? "true" : "false",
        (long long)r->calib_samples);
    return m;
}

static int quantize_run(const cli_args *a) {
    const char *model = a->pos[0];
    const char *out = cli_get(a, "output");
    const char *calib = cli_get(a, "calib");
    if (!out) return cli_usage_error(a->cmd, "missing -o OUT.qfm");
    if (!calib) return cli_usage_error(a->cmd, "missing --calib D (calibration data)");
    static qf_qconfig cfg;
    qf_qconfig_default(&cfg);
    qf_err e;
    qf_status st;
    const char *config = cli_get(a, "config");
    if (config && (st = qf_qconfig_load_file(&cfg, config, &e))) return cli_fail(&e, st);
    const char *m = cli_get(a, "method");
    if (m && (st = qf_calib_method_parse(m, &cfg.calib, &e))) return cli_fail(&e, st);
    long long bits;
    if (!cli_get_int(a, "bits", 2, 8, cfg.default_w_bits, &bits)) return CLI_EXIT_USAGE;
    cfg.default_w_bits = (int)bits;
    if (cli_get(a, "bits")) {
        /* a uniform override replaces per-layer settings from the config */
        cfg.n_w = 0;
        cfg.w_list = false;
    }
    const char *p = cli_get(a, "percentile");
    if (p) {
        char *end;
        double v = strtod(p, &end);
        if (*end || !(v > 50 && v <= 100))
            return cli_usage_error(a->cmd, "--percentile must be in (50, 100], got '%s'", p);
        cfg.percentile = (float)v;
    }
    if (cli_flag(a, "per-tensor")) cfg.per_channel = false;
    if (cli_flag(a, "reduce-range")) cfg.reduce_range = true;
    if (cli_flag(a, "bias-correction")) cfg.bias_correction = true;
    const char *rd = cli_get(a, "rounding");
    if (rd) {
        if (strcmp(rd, "nearest") == 0)
            cfg.rounding = QF_ROUND_NEAREST;
        else if (strcmp(rd, "gptq") == 0)
            cfg.rounding = QF_ROUND_GPTQ;
        else
            return cli_usage_error(a->cmd, "--rounding must be nearest or gptq, not '%s'", rd);
    }
    long long gs;
    if (!cli_get_int(a, "gptq-samples", 0, 1000000000, cfg.gptq_samples, &gs))
        return CLI_EXIT_USAGE;
    cfg.gptq_samples = (int)gs;
    const char *rq = cli_get(a, "requant");
    if (rq) {
        if (strcmp(rq, "fp32") == 0)
            cfg.requant = QF_REQUANT_FP32;
        else if (strcmp(rq, "fixed") == 0)
            cfg.requant = QF_REQUANT_FIXED;
        else
            return cli_usage_error(a->cmd, "--requant must be fp32 or fixed, not '%s'", rq);
    }
    qf_quant_options qo = {0};
    long long limit, batch, threads;
    if (!cli_get_int(a, "limit", 1, 100000000, 1000, &limit) ||
        !cli_get_int(a, "batch", 1, 4096, 32, &batch) ||
        !cli_get_int(a, "threads", 1, 256, 1, &threads))
        return CLI_EXIT_USAGE;
    qo.calib_limit = limit;
    qo.batch = (int)batch;
    qo.num_threads = (int)threads;
    qo.config_path = config;
    qf_dataset_options dopt;
    if (!cli_dataset_options(a, "train", &dopt)) return CLI_EXIT_USAGE;
    dopt.limit = limit;

    double t0 = cli_now();
    void *buf = NULL;
    size_t len = 0;
    if ((st = qf_read_file(model, &buf, &len, &e))) return cli_fail(&e, st);
    uint32_t crc = qf_crc32c(0, buf, len);
    qf_free(buf);
    qf_graph *g = NULL;
    if ((st = qf_onnx_import_file(model, &g, &e))) return cli_fail(&e, st);
    qf_dataset *ds = NULL;
    if ((st = qf_dataset_open(calib, cli_get(a, "labels"), &dopt, &ds, &e))) {
        qf_graph_free(g);
        return cli_fail(&e, st);
    }
    cli_progress prog = {0};
    bool quiet = cli_flag(a, "quiet") || cli_flag(a, "json");
    if (!quiet) {
        qo.progress = progress_cb;
        qo.progress_user = &prog;
    }
    qf_quant_report rep;
    qf_graph *qg = NULL;
    st = qf_quantize(g, ds, &cfg, &qo, &qg, &rep, &e);
    if (prog.active) cli_progress_finish(&prog);
    qf_dataset_free(ds);
    qf_graph_free(g);
    if (st) return cli_fail(&e, st);
    char *meta = metadata_json(model, crc, &cfg, &rep);
    qf_qfm_write_options wo = {.tensors =
                                   cli_flag(a, "compress") ? QF_QFM_STORE_AUTO : QF_QFM_STORE_RAW};
    st =
        meta ? qf_qfm_write_ex(qg, meta, out, &wo, &e) : qf_errf(&e, QF_ERR_NOMEM, "out of memory");
    qf_free(meta);
    qf_graph_free(qg);
    if (st) {
        qf_quant_report_free(&rep);
        return cli_fail(&e, st);
    }
    if (cli_flag(a, "json"))
        print_json(&rep, model, out);
    else if (!cli_flag(a, "quiet"))
        print_table(&rep, out, cli_now() - t0);
    qf_quant_report_free(&rep);
    return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_quantize = {
    .name = "quantize",
    .summary = "post-training quantization of an ONNX model into a .qfm file",
    .usage = "MODEL.onnx --calib D -o OUT.qfm [options]",
    .description =
        "Calibrates activation ranges on --calib data (1000 samples by default), quantizes\n"
        "weights per output channel (MSE-optimal clipping below 8 bits), and lowers every op\n"
        "it can to qforge's integer kernels; the rest run in float between Dequantize and\n"
        "Quantize. Prints what happened to each layer.",
    .opts = quantize_opts,
    .n_opts = (int)(sizeof quantize_opts / sizeof quantize_opts[0]),
    .min_pos = 1,
    .max_pos = 1,
    .example = "qforge quantize model.onnx --calib fashion-mnist --method entropy -o model.qfm\n"
               "qforge quantize model.onnx --calib fashion-mnist --bits 4 --method mse -o m4.qfm\n"
               "qforge quantize model.onnx --calib data/ --config quant.json -o model.qfm\n"
               "qforge quantize model.onnx --calib fashion-mnist --reduce-range -o m7.qfm",
    .run = quantize_run,
};
