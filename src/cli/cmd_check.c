/* cmd_check.c - `qforge check MODEL [--data D] [--train T]`: a sanity
 * report on a float ONNX model (pipeline/check.h lists the checks and their
 * thresholds), printed as a table, as JSON (--json) or as an HTML report
 * (--report). Exit 0 when nothing fails, 1 when a check fails, 2 for bad
 * usage or input. */
#include <math.h>
#include <string.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx.h"
#include "io/qfm.h"
#include "pipeline/check.h"

static const cli_opt check_opts[] = {
    {"data", 'd', "D",
     "validation data (fashion-mnist, mnist, a directory, an image folder): dead ReLUs, "
     "BatchNorm statistics, accuracy"},
    {"train", 0, "T", "training data (its train split): accuracy, for the overfitting gap"},
    {"labels", 0, "FILE", "labels file when --data names an images file"},
    {"split", 0, "test|train", "split of --data (default test)"},
    {"limit", 'n', "N", "samples used from each dataset (default 1000)"},
    {"batch", 'b', "B", "batch size when the model's batch dim is dynamic (default 32)"},
    {"threads", 't', "T", "worker threads (default 1)"},
    {"scale", 0, "S", "multiply raw values by S first (default 1/255 for uint8 data, else 1)"},
    {"mean", 0, "M[,M...]", "subtract a mean per channel (after scaling)"},
    {"std", 0, "S[,S...]", "divide by a std per channel (after the mean)"},
    {"nhwc", 0, NULL, "rank-4 images are stored N,H,W,C (fed as NCHW)"},
    {"json", 0, NULL, "print the findings as JSON on stdout"},
    {"report", 0, "R.html", "write a self-contained HTML report"},
};

static void progress_cb(void *user, int64_t done, int64_t total) {
    cli_progress *p = user;
    if (!p->active) cli_progress_start(p, "check", total);
    cli_progress_update(p, done);
}

/* Fail before any long work when the report cannot be written there: an
 * atomic file is opened (creating its temp file) and abandoned. */
static qf_status probe_writable(const char *path, qf_err *e) {
    qf_atomic_file f;
    qf_status st = qf_atomic_open(&f, path, e);
    if (!st) qf_atomic_abort(&f);
    return st;
}

static void print_findings(const qf_check_result *r, const char *model) {
    printf("%-5s %-15s %-28s %10s  %s\n", "", "check", "subject", "measured", "finding");
    for (int sev = QF_SEV_FAIL; sev >= QF_SEV_OK; sev--)
        for (int i = 0; i < r->n_findings; i++) {
            const qf_check_finding *f = &r->findings[i];
            if ((int)f->severity != sev) continue;
            char val[32] = "-";
            if (isfinite(f->value)) snprintf(val, sizeof val, "%.4g", f->value);
            printf("%-5s %-15s %-28.28s %10s  %s\n", qf_severity_name(f->severity), f->check,
                   f->subject, val, f->message);
            if (f->remedy[0])
                printf("%-5s %-15s %-28s %10s  remedy: %s\n", "", "", "", "", f->remedy);
        }
    printf("\nmodel:    %s\nverdict:  %s (%d fail, %d warn, %d ok)\n", model,
           r->n_fail   ? "FAIL"
           : r->n_warn ? "WARN"
                       : "OK",
           r->n_fail, r->n_warn, r->n_ok);
}

static qf_status build_report(const qf_check_result *r, const qf_graph *g, const char *model,
                              const char *data, const char *train, qf_report **out, qf_err *e) {
    char title[300];
    const char *base = strrchr(model, '/');
    snprintf(title, sizeof title, "qforge check: %s", base ? base + 1 : model);
    qf_report *rep = NULL;
    qf_status st = qf_report_create(title, &rep, e);
    if (st) return st;
    char buf[64];
    snprintf(buf, sizeof buf, "%s (%d fail, %d warn, %d ok)",
             r->n_fail   ? "FAIL"
             : r->n_warn ? "WARN"
                         : "OK",
             r->n_fail, r->n_warn, r->n_ok);
    if (!st) st = qf_report_add_meta(rep, "model", model, e);
    if (!st && data) st = qf_report_add_meta(rep, "data", data, e);
    if (!st && train) st = qf_report_add_meta(rep, "train", train, e);
    if (!st) st = qf_report_add_meta(rep, "verdict", buf, e);
    if (!st) st = qf_check_to_report(r, rep, e);
    if (!st) st = qf_check_weight_hists(g, rep, 32, e);
    if (st) {
        qf_report_free(rep);
        return st;
    }
    *out = rep;
    return QF_OK;
}

static int check_run(const cli_args *a) {
    const char *model = a->pos[0];
    const char *data = cli_get(a, "data"), *train = cli_get(a, "train");
    const char *report = cli_get(a, "report");
    bool json = cli_flag(a, "json");
    long long limit, batch, threads;
    if (!cli_get_int(a, "limit", 1, 100000000, QF_CHECK_DEFAULT_LIMIT, &limit) ||
        !cli_get_int(a, "batch", 1, 4096, 32, &batch) ||
        !cli_get_int(a, "threads", 1, 256, 1, &threads))
        return CLI_EXIT_USAGE;
    if (cli_get(a, "labels") && !data) return cli_usage_error(a->cmd, "--labels needs --data");
    if (report && !*report) return cli_usage_error(a->cmd, "--report needs a file name");
    qf_dataset_options dopt, topt;
    if (!cli_dataset_options(a, "test", &dopt)) return CLI_EXIT_USAGE;
    dopt.limit = limit;
    topt = dopt;
    topt.split = "train";
    if (qf_qfm_file_has_magic(model)) {
        cli_error("%s: check takes the float ONNX model, not a quantized .qfm "
                  "(use 'qforge eval' on a .qfm)",
                  model);
        return CLI_EXIT_USAGE;
    }
    qf_err e = {0};
    qf_graph *g = NULL;
    qf_dataset *dv = NULL, *dt = NULL;
    qf_check_result r;
    memset(&r, 0, sizeof r);
    qf_report *rep = NULL;
    int rc = CLI_EXIT_OK;
    qf_status st = report ? probe_writable(report, &e) : QF_OK;
    if (!st) st = qf_onnx_import_file(model, &g, &e);
    /* open (and so validate) both datasets before any long work */
    if (!st && data) st = qf_dataset_open(data, cli_get(a, "labels"), &dopt, &dv, &e);
    if (!st && train) st = qf_dataset_open(train, NULL, &topt, &dt, &e);
    if (st) {
        rc = cli_fail(&e, st);
        goto out;
    }
    cli_progress prog = {0};
    qf_check_options co = {.data = dv,
                           .train = dt,
                           .limit = limit,
                           .batch = (int)batch,
                           .num_threads = (int)threads,
                           .progress = json ? NULL : progress_cb,
                           .progress_user = &prog};
    st = qf_check_model(g, &co, &r, &e);
    if (prog.active) cli_progress_finish(&prog);
    if (st) {
        rc = cli_fail(&e, st);
        goto out;
    }
    if (report || json) {
        if ((st = build_report(&r, g, model, dv ? dv->source : NULL, dt ? dt->source : NULL, &rep,
                               &e))) {
            rc = cli_fail(&e, st);
            goto out;
        }
    }
    if (report && (st = qf_report_write_html(rep, report, &e))) {
        rc = cli_fail(&e, st);
        goto out;
    }
    if (json) {
        char *text = NULL;
        if ((st = qf_report_to_json(rep, &text, NULL, &e))) {
            rc = cli_fail(&e, st);
            goto out;
        }
        fputs(text, stdout);
        qf_free(text);
    } else {
        print_findings(&r, model);
        if (report) printf("report:   %s\n", report);
    }
    rc = r.n_fail ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    qf_report_free(rep);
    qf_check_result_free(&r);
    qf_dataset_free(dv);
    qf_dataset_free(dt);
    qf_graph_free(g);
    return rc;
}

const cli_cmd cli_cmd_check = {
    .name = "check",
    .summary = "sanity-check a float model: NaN/Inf, dead or exploding weights, BN stats, overfit",
    .usage = "MODEL.onnx [--data D] [--train T] [options]",
    .description =
        "Checks the weights (NaN/Inf, exploding or vanishing layer gain, all-zero output\n"
        "channels, outliers that quantize badly per tensor) and, with --data, runs the model:\n"
        "ReLU channels that never activate, BatchNorm running statistics against the data,\n"
        "non-finite activations, top-1; with --train too, the train-vs-validation gap.\n"
        "Each finding is ok, warn or fail with the measured number and a remedy.\n"
        "Exit status: 0 no failure, 1 a check failed, 2 bad usage or input.",
    .opts = check_opts,
    .n_opts = (int)QF_ARRAY_LEN(check_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge check model.onnx\n"
               "  qforge check model.onnx --data fashion-mnist --train fashion-mnist "
               "--report check.html\n"
               "  qforge check model.onnx --data val/ --json",
    .run = check_run,
};
