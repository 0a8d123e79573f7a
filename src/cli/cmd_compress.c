/* cmd_compress.c - `qforge compress`: the whole pipeline with an accuracy
 * target (src/pipeline/compress.h): parse and check everything that can be
 * checked before the long work, run it with progress, write the model and
 * the report, and exit 0 (met), 1 (missed) or 2 (bad usage or input). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx.h"
#include "io/qfm.h"
#include "pipeline/compress.h"
#include "report/report.h"

static const cli_opt compress_opts[] = {
    {"data", 'd', "D",
     "training data (fashion-mnist, mnist, a directory or image folder): calibration, "
     "fine-tuning, QAT"},
    {"val", 0, "V",
     "validation data for every accuracy measurement (default: the test split "
     "of --data)"},
    {"max-drop", 0, "P", "accepted top-1 drop in percentage points, e.g. 0.5 (required)"},
    {"size-budget", 0, "B|F%",
     "largest model: bytes (K/M suffixes allowed) or a share of the "
     "float ONNX file, e.g. 10%"},
    {"latency-budget", 0, "MS", "batch-1 latency budget in milliseconds (median of 15 runs)"},
    {"prune", 0, "S", "prune a share S of the weights by magnitude first, then fine-tune"},
    {"prune-epochs", 0, "E", "fine-tuning epochs after pruning (default 1)"},
    {"teacher", 0, "T.onnx", "distill from this model while fine-tuning after --prune"},
    {"calibrators", 0, "LIST",
     "calibrators to try, comma-separated (default "
     "minmax,percentile,entropy,mse)"},
    {"calib-limit", 0, "N", "calibration samples (default 500)"},
    {"val-limit", 0, "N", "validation samples (default: all)"},
    {"sens-limit", 0, "N", "samples per sensitivity probe (default 500)"},
    {"train-limit", 0, "N", "training samples for fine-tuning and QAT (default 10000)"},
    {"qat-epochs", 0, "E", "QAT epochs when escalating (default 1; 0 = no QAT)"},
    {"no-cle", 0, NULL, "do not try cross-layer equalisation"},
    {"keep-best", 0, NULL, "when the target is missed, write the best model as OUT.best.qfm"},
    {"report", 'r', "R.html", "write a self-contained HTML report"},
    {"json", 0, NULL, "print the report as JSON on stdout (progress goes to stderr)"},
    {"threads", 't', "T", "worker threads (default 2)"},
    {"scale", 0, "S", "multiply raw values by S first (default 1/255 for uint8 data)"},
    {"mean", 0, "M[,M...]", "subtract a mean per channel (after scaling)"},
    {"std", 0, "S[,S...]", "divide by a std per channel (after the mean)"},
    {"nhwc", 0, NULL, "rank-4 images are stored N,H,W,C (fed as NCHW)"},
    {"output", 'o', "OUT.qfm", "where to write the compressed model (only if the target is met)"},
    {"quiet", 'q', NULL, "only the final summary"},
};

typedef struct ui {
    FILE *out; /* stdout, or stderr with --json */
    bool quiet;
    bool tty;
    cli_progress prog;
} ui;

static void on_log(void *user, const char *line) {
    ui *u = user;
    if (u->prog.active) cli_progress_finish(&u->prog);
    if (u->quiet) return;
    fprintf(u->out, "%s\n", line);
    fflush(u->out);
}

static void on_progress(void *user, int64_t done, int64_t total) {
    ui *u = user;
    if (u->quiet || !u->tty) return; /* plain logs get one line per step instead */
    if (!u->prog.active) cli_progress_start(&u->prog, "calibrate", total);
    cli_progress_update(&u->prog, done);
    if (done >= total) cli_progress_finish(&u->prog);
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static bool parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* "250000", "300K", "1.5M" -> bytes; "10%" -> fraction. */
static bool parse_budget(const char *s, int64_t *bytes, double *frac) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return false;
    *bytes = 0;
    *frac = 0;
    if (strcmp(end, "%") == 0) {
        if (v > 100) return false;
        *frac = v / 100.0;
        return true;
    }
    double mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024.0 * 1024.0, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v * mul > 1e15) return false;
    *bytes = (int64_t)(v * mul);
    return *bytes > 0;
}

static bool parse_calibrators(const char *s, unsigned *mask) {
    *mask = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        qf_calib_method m;
        if (qf_calib_method_parse(tok, &m, NULL)) return false;
        *mask |= 1u << m;
    }
    return *mask != 0;
}

/* OUT.qfm -> OUT.best.qfm (OUT -> OUT.best.qfm without the extension). */
static void best_path(const char *out, char *buf, size_t len) {
    size_t n = strlen(out);
    if (n > 4 && strcmp(out + n - 4, ".qfm") == 0) n -= 4;
    snprintf(buf, len, "%.*s.best.qfm", (int)n, out);
}

/* Fail before any long work when a file cannot be written there. */
static qf_status probe_writable(const char *path, qf_err *e) {
    qf_atomic_file f;
    qf_status st = qf_atomic_open(&f, path, e);
    if (!st) qf_atomic_abort(&f);
    return st;
}

static char *metadata(const char *model, const qf_compress_options *o,
                      const qf_compress_result *r) {
    size_t cap = 1024;
    char *m = qf_malloc(cap);
    if (!m) return NULL;
    snprintf(m, cap,
             "{\"source_model\": \"%s\", \"tool\": \"qforge %d.%d.%d compress\", "
             "\"max_drop\": %.4g, \"float_top1\": %.6f, \"top1\": %.6f, \"met\": %s, "
             "\"configuration\": \"%s\"}",
             strchr(model, '"') || strchr(model, '\\') ? "?" : model, QF_VERSION_MAJOR,
             QF_VERSION_MINOR, QF_VERSION_PATCH, o->max_drop, r->float_acc, r->acc,
             r->met ? "true" : "false", strchr(r->best_label, '"') ? "?" : r->best_label);
    return m;
}

static int compress_run(const cli_args *a) {
    const char *model = a->pos[0], *out = cli_get(a, "output"), *data = cli_get(a, "data");
    const char *report = cli_get(a, "report");
    if (!out) return cli_usage_error(a->cmd, "missing -o OUT.qfm");
    if (!data) return cli_usage_error(a->cmd, "missing --data D (training data)");
    const char *md = cli_get(a, "max-drop");
    if (!md) return cli_usage_error(a->cmd, "missing --max-drop P (accepted drop in points)");
    qf_compress_options o;
    qf_compress_options_default(&o);
    if (!parse_double(md, 0, 100, &o.max_drop))
        return cli_usage_error(a->cmd, "--max-drop must be points in [0, 100], got '%s'", md);
    const char *sb = cli_get(a, "size-budget");
    if (sb && !parse_budget(sb, &o.size_budget, &o.size_budget_frac))
        return cli_usage_error(a->cmd,
                               "--size-budget must be bytes (e.g. 200K) or a share "
                               "like 10%%, got '%s'",
                               sb);
    const char *lb = cli_get(a, "latency-budget");
    if (lb && (!parse_double(lb, 1e-6, 1e9, &o.latency_budget_ms)))
        return cli_usage_error(a->cmd, "--latency-budget must be milliseconds > 0, got '%s'", lb);
    const char *ps = cli_get(a, "prune");
    double sp = 0;
    if (ps && (!parse_double(ps, 0, 0.99, &sp)))
        return cli_usage_error(a->cmd, "--prune must be a share in [0, 0.99], got '%s'", ps);
    o.prune_sparsity = (float)sp;
    const char *cal = cli_get(a, "calibrators");
    if (cal && !parse_calibrators(cal, &o.calibrators))
        return cli_usage_error(a->cmd,
                               "--calibrators takes minmax,percentile,entropy,mse; got "
                               "'%s'",
                               cal);
    long long v[7];
    if (!cli_get_int(a, "calib-limit", 1, 1000000, 500, &v[0]) ||
        !cli_get_int(a, "val-limit", 0, INT64_MAX, 0, &v[1]) ||
        !cli_get_int(a, "sens-limit", 1, INT64_MAX, 500, &v[2]) ||
        !cli_get_int(a, "train-limit", 1, INT64_MAX, 10000, &v[3]) ||
        !cli_get_int(a, "qat-epochs", 0, 1000, 1, &v[4]) ||
        !cli_get_int(a, "prune-epochs", 1, 1000, 1, &v[5]) ||
        !cli_get_int(a, "threads", 1, 256, 2, &v[6]))
        return CLI_EXIT_USAGE;
    o.calib_limit = v[0];
    o.val_limit = v[1];
    o.sens_limit = v[2];
    o.train_limit = v[3];
    o.qat_epochs = v[4] > 0 ? (int)v[4] : -1;
    o.prune_epochs = (int)v[5];
    o.num_threads = (int)v[6];
    o.no_cle = cli_flag(a, "no-cle");
    if (cli_get(a, "teacher") && !ps)
        return cli_usage_error(a->cmd, "--teacher distills while fine-tuning: it needs --prune");
    bool keep_best = cli_flag(a, "keep-best"), json = cli_flag(a, "json");
    char bpath[4096];
    best_path(out, bpath, sizeof bpath);
    qf_dataset_options dopt;
    if (!cli_dataset_options(a, "train", &dopt)) return CLI_EXIT_USAGE;

    /* everything that can fail on bad input, before the long work */
    qf_err e = {0};
    qf_status st = probe_writable(out, &e);
    if (!st && keep_best) st = probe_writable(bpath, &e);
    if (!st && report) st = probe_writable(report, &e);
    if (st) return cli_fail(&e, st);
    o.float_size = file_size(model);
    qf_graph *g = NULL;
    qf_dataset *train = NULL, *val = NULL;
    qf_model *teacher = NULL;
    qf_report *rep = NULL;
    if ((st = qf_onnx_import_file(model, &g, &e))) return cli_fail(&e, st);
    dopt.split = "train";
    st = qf_dataset_open(data, NULL, &dopt, &train, &e);
    if (!st) {
        dopt.split = "test";
        const char *vs = cli_get(a, "val");
        st = qf_dataset_open(vs ? vs : data, NULL, &dopt, &val, &e);
    }
    if (!st) st = qf_compress_check_data(g, train, "training data", &e);
    if (!st) st = qf_compress_check_data(g, val, "validation data", &e);
    if (!st && cli_get(a, "teacher")) st = qf_model_load(cli_get(a, "teacher"), &teacher, &e);
    if (!st) st = qf_report_create("qforge compress", &rep, &e);
    if (!st) st = qf_report_add_meta(rep, "model", model, &e);
    if (!st)
        st = qf_report_add_meta(rep, "training data", train->source ? train->source : data, &e);
    if (!st) st = qf_report_add_meta(rep, "validation data", val->source ? val->source : "", &e);
    if (!st) st = qf_report_add_meta(rep, "max drop (points)", md, &e);
    if (!st && sb) st = qf_report_add_meta(rep, "size budget", sb, &e);
    if (st) {
        qf_report_free(rep);
        qf_model_free(teacher);
        qf_dataset_free(train);
        qf_dataset_free(val);
        qf_graph_free(g);
        return cli_fail(&e, st);
    }
    o.teacher = teacher;
    ui u = {.out = json ? stderr : stdout, .quiet = cli_flag(a, "quiet"), .tty = isatty(2)};
    o.log = on_log;
    o.log_user = &u;
    o.progress = on_progress;
    o.progress_user = &u;
    double t0 = cli_now();
    qf_compress_result r;
    st = qf_compress(g, train, val, &o, rep, &r, &e);
    if (u.prog.active) cli_progress_finish(&u.prog);
    qf_model_free(teacher);
    qf_dataset_free(train);
    qf_dataset_free(val);
    if (st) {
        qf_report_free(rep);
        qf_graph_free(g);
        return cli_fail(&e, st);
    }
    const char *written = r.met ? out : keep_best ? bpath : NULL;
    if (written) {
        char *meta = metadata(model, &o, &r);
        qf_qfm_write_options wo = {.tensors = QF_QFM_STORE_AUTO};
        st = meta ? qf_qfm_write_ex(r.model, meta, written, &wo, &e)
                  : qf_errf(&e, QF_ERR_NOMEM, "out of memory");
        qf_free(meta);
    }
    int64_t fsize = written && !st ? file_size(written) : -1;
    char buf[64];
    if (!st && fsize > 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)fsize);
        st = qf_report_add_meta(rep, "written file bytes", buf, &e);
        if (!st) st = qf_report_add_meta(rep, "written file", written, &e);
    }
    if (!st && report) st = qf_report_write_html(rep, report, &e);
    if (!st && json) {
        char *js = NULL;
        size_t len = 0;
        st = qf_report_to_json(rep, &js, &len, &e);
        if (!st) fwrite(js, 1, len, stdout), fputc('\n', stdout);
        qf_free(js);
    }
    qf_report_free(rep);
    qf_graph_free(g);
    if (st) {
        qf_compress_result_free(&r);
        return cli_fail(&e, st);
    }
    FILE *f = u.out;
    fprintf(f, "\n== summary\n%s", r.summary);
    fprintf(f, "float:      top-1 %6.2f%%  %10lld bytes (ONNX)\n", 100 * r.float_acc,
            (long long)o.float_size);
    fprintf(f, "compressed: top-1 %6.2f%%  %10lld bytes%s  drop %.2f pts (limit %.2f)", 100 * r.acc,
            (long long)(fsize > 0 ? fsize : r.size_bytes), fsize > 0 ? "" : " (est.)",
            r.drop_points, o.max_drop);
    if (o.float_size > 0 && fsize > 0)
        fprintf(f, "  %.1fx smaller", (double)o.float_size / (double)fsize);
    fprintf(f, "\n");
    if (r.budget_bytes > 0)
        fprintf(f, "size budget %lld bytes: %s\n", (long long)r.budget_bytes,
                r.size_met ? "met" : "missed");
    if (!isnan(r.latency_ms))
        fprintf(f, "latency %.3f ms (budget %.3f ms): %s\n", r.latency_ms, o.latency_budget_ms,
                r.latency_met ? "met" : "missed");
    fprintf(f, "%d configurations tried in %.1f s; chosen: %s\n", r.n_tried, cli_now() - t0,
            r.best_label);
    if (r.met)
        fprintf(f, "target met: wrote %s\n", out);
    else if (written)
        fprintf(f, "target NOT met: best result written as %s (not %s)\n", written, out);
    else
        fprintf(f, "target NOT met: nothing written (--keep-best writes the best result as %s)\n",
                bpath);
    if (report) fprintf(f, "report: %s\n", report);
    bool met = r.met;
    qf_compress_result_free(&r);
    return met ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

const cli_cmd cli_cmd_compress = {
    .name = "compress",
    .summary = "the whole pipeline: smallest model within an accuracy drop (and size budget)",
    .usage = "MODEL.onnx --data D --max-drop P [--size-budget B|F%] -o OUT.qfm [options]",
    .description =
        "Runs check -> [prune + fine-tune] -> int8 PTQ with each calibrator -> per-layer\n"
        "sensitivity (each layer alone at 4 and 2 bits) -> mixed-precision weight bits\n"
        "(8/4/2, greedy on estimated loss per byte saved) -> verify, and while the top-1\n"
        "drop exceeds --max-drop escalates: cross-layer equalisation, bias correction,\n"
        "GPTQ rounding (where weights are below 8 bits), raising the bits of the most\n"
        "sensitive layers (weights to 8, then activations to 16), quantization-aware\n"
        "training. Without --size-budget, bits are lowered in the\n"
        "greedy order as far as the measured drop (binary search) stays within --max-drop.\n"
        "The model is written (weights stored compressed) only when the target is met;\n"
        "otherwise the exit status is 1 and --keep-best writes the best result under\n"
        "OUT.best.qfm. Bad data (wrong sample size, unlabelled, labels beyond the model's\n"
        "classes) gives exit 2 before any long work.",
    .opts = compress_opts,
    .n_opts = (int)QF_ARRAY_LEN(compress_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge compress resnet8.onnx --data fashion-mnist --max-drop 0.5 -o r8.qfm\n"
               "  qforge compress cnn.onnx --data fashion-mnist --max-drop 1 --size-budget 10% \\\n"
               "      --report r.html -o cnn.qfm\n"
               "  qforge compress cnn.onnx --data train/ --val val/ --max-drop 0 --keep-best "
               "-o cnn.qfm",
    .run = compress_run,
};
