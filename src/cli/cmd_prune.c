/* cmd_prune.c - `qforge prune MODEL.onnx --sparsity S -o OUT.onnx`:
 * magnitude (layer-wise or global), N:M, or structured channel pruning of a
 * float ONNX model, optionally with per-layer sparsities chosen from a
 * sensitivity scan (--auto). Prints a per-layer table (params, sparsity,
 * MACs before/after); the output is written atomically. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/data.h"
#include "io/onnx_export.h"
#include "ir/passes.h"
#include "prune/prune.h"
#include "runtime/runtime.h"
#include "train/trainer.h"

static const cli_opt prune_opts[] = {
    {"sparsity", 's', "S", "fraction of weights (or channels, with --structured) removed, [0, 1)"},
    {"structured", 0, NULL, "remove whole output channels (and everything that depends on them)"},
    {"criterion", 0, "l1|l2|fpgm", "channel importance for --structured (default l1)"},
    {"nm", 0, "N:M", "keep N of every M weights along the reduction axis (e.g. 2:4)"},
    {"global", 0, NULL, "one magnitude threshold over all layers (default: per layer)"},
    {"skip-first", 0, NULL, "leave the first Conv/Gemm/MatMul dense"},
    {"skip-last", 0, NULL, "leave the last Conv/Gemm/MatMul dense"},
    {"auto", 0, NULL, "choose per-layer sparsities from a sensitivity scan on --data"},
    {"data", 'd', "D", "data for --auto: fashion-mnist, mnist, a directory, an image folder"},
    {"labels", 0, "FILE", "labels file when --data names an images file"},
    {"split", 0, "test|train", "split of a named dataset or directory (default train)"},
    {"limit", 'n', "N", "samples used by the scan (default 500)"},
    {"batch", 'b', "B", "batch size when the model's batch dim is free (default 32)"},
    {"scale", 0, "S", "multiply raw values by S first (default 1/255 for uint8 data)"},
    {"mean", 0, "M[,M...]", "subtract a mean per channel (after scaling)"},
    {"std", 0, "S[,S...]", "divide by a std per channel (after the mean)"},
    {"nhwc", 0, NULL, "rank-4 images are stored N,H,W,C (fed as NCHW)"},
    {"epochs", 0, "E",
     "fine-tune for E epochs on --data after pruning (train split; validated on the test "
     "split; pruned weights stay zero)"},
    {"schedule", 0, "oneshot|gradual",
     "gradual: raise the sparsity from 0 to S during the first 2/3 of fine-tuning "
     "(Zhu & Gupta polynomial schedule, 10 steps), then fine-tune with fixed masks"},
    {"lr", 0, "LR", "fine-tuning learning rate (SGD, Nesterov momentum 0.9; default 0.005)"},
    {"train-limit", 0, "N", "fine-tune on the first N training samples only"},
    {"threads", 't', "T", "worker threads for fine-tuning (default 2)"},
    {"output", 'o', "OUT.onnx", "where to write the pruned model"},
    {"quiet", 'q', NULL, "no table, only errors"},
};

static bool parse_sparsity(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v >= 1) return false;
    *out = (float)v;
    return true;
}

static bool parse_nm(const char *s, int *n, int *m) {
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ':') return false;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (end == t || *end || a < 1 || b < 1 || b > 64 || a > b) return false;
    *n = (int)a;
    *m = (int)b;
    return true;
}

static void print_table(const qf_layer_stat *b, const qf_layer_stat *a, int n, bool structured) {
    printf("%-28s %-6s %10s %10s %8s %12s %12s\n", "layer", "op", "params", "after", "sparsity",
           "MACs", structured ? "MACs after" : "nz MACs");
    int64_t pb = 0, pa = 0, nz = 0, mb = 0, ma = 0;
    for (int i = 0; i < n; i++) {
        double sp = a[i].params ? 1.0 - (double)a[i].nonzero / (double)a[i].params : 0;
        /* unstructured zeros still cost MACs in a dense kernel: show the
         * non-zero share as what a sparse kernel would do */
        int64_t after = structured ? a[i].macs
                                   : (a[i].params ? (int64_t)((double)a[i].macs * (1.0 - sp)) : 0);
        printf("%-28.28s %-6.6s %10lld %10lld %7.1f%% %12lld %12lld\n", b[i].node, b[i].op,
               (long long)b[i].params, (long long)a[i].params, 100 * sp, (long long)b[i].macs,
               (long long)after);
        pb += b[i].params;
        pa += a[i].params;
        nz += a[i].nonzero;
        mb += b[i].macs;
        ma += after;
    }
    printf("%-28s %-6s %10lld %10lld %7.1f%% %12lld %12lld\n", "total", "", (long long)pb,
           (long long)pa, pa ? 100.0 * (1.0 - (double)nz / (double)pa) : 0.0, (long long)mb,
           (long long)ma);
    if (mb) printf("MACs: %lld -> %lld (%.2fx fewer)\n", (long long)mb, (long long)ma,
                   ma ? (double)mb / (double)ma : 0.0);
}

/* Which channel groups can shrink, and why the others cannot. */
static qf_status print_groups(qf_graph *g, qf_err *e) {
    qf_chan_groups *cg = NULL;
    qf_status st = qf_chan_groups_build(g, &cg, e);
    if (st) return st;
    int n = qf_chan_groups_count(cg), frozen = 0, joint = 0;
    for (int i = 0; i < n; i++) {
        const qf_chan_group *gr = qf_chan_groups_get(cg, i);
        frozen += gr->frozen;
        joint += gr->n_members > 1;
    }
    printf("channel groups: %d (%d joined by residual/element-wise ops), %d kept whole\n", n,
           joint, frozen);
    for (int i = 0, shown = 0; i < n; i++) {
        const qf_chan_group *gr = qf_chan_groups_get(cg, i);
        if (!gr->frozen) continue;
        if (shown++ == 8) {
            printf("  ... %d more\n", frozen - 8);
            break;
        }
        printf("  kept whole: %s (%lld channels): %s\n", g->nodes[gr->members[0]].name,
               (long long)gr->channels, gr->why);
    }
    qf_chan_groups_free(cg);
    return QF_OK;
}

/* --auto: scan, choose, report, and return the per-layer sparsities. */
static int auto_sparsity(const cli_args *a, qf_graph *g, float target, bool structured,
                         qf_prune_criterion crit, bool quiet, float **out_ls, int *out_n) {
    qf_dataset_options dopt;
    if (!cli_dataset_options(a, "train", &dopt)) return CLI_EXIT_USAGE;
    if (!dopt.limit) dopt.limit = 500;
    long long batch;
    if (!cli_get_int(a, "batch", 1, 65536, 32, &batch)) return CLI_EXIT_USAGE;
    qf_err e = {0};
    qf_dataset *d = NULL;
    qf_status st = qf_dataset_open(cli_get(a, "data"), cli_get(a, "labels"), &dopt, &d, &e);
    if (st) return cli_fail(&e, st);
    qf_sens_options so = {.batch = (int)batch};
    qf_sensitivity *s = NULL;
    if (!quiet) fprintf(stderr, "sensitivity scan on %lld samples of %s...\n", (long long)d->n,
                        d->source);
    st = structured ? qf_prune_sensitivity_structured(g, d, &so, crit, &s, &e)
                    : qf_prune_sensitivity(g, d, &so, &s, &e);
    float *ls = NULL;
    float est = 0;
    if (!st) {
        ls = qf_calloc((size_t)s->n_layers + 1, sizeof(float));
        if (!ls) st = qf_errf(&e, QF_ERR_NOMEM, "out of memory");
    }
    if (!st) st = qf_prune_auto(s, target, ls, &est, &e);
    if (!st && !quiet) {
        printf("sensitivity (top-1 %% with one %s pruned; unpruned %.2f%%)\n",
               structured ? "channel group" : "layer", 100.0 * s->base_acc);
        printf("%-28s", "layer");
        for (int k = 0; k < s->n_levels; k++) printf(" %6.0f%%", 100.0 * s->levels[k]);
        printf("   chosen\n");
        for (int i = 0; i < s->n_layers; i++) {
            if (structured && !s->params[i]) {
                printf("%-28.28s   (kept whole)\n", s->names[i]);
                continue;
            }
            printf("%-28.28s", s->names[i]);
            for (int k = 0; k < s->n_levels; k++)
                printf(" %6.2f%%", 100.0 * s->acc[(size_t)i * s->n_levels + k]);
            printf("  %6.1f%%\n", 100.0 * ls[i]);
        }
        /* what the choice is worth: measured, and against uniform sparsity */
        float acc_auto = 0, acc_uni = 0;
        double loss;
        qf_graph *ga = NULL, *gu = NULL;
        qf_prune_options pa = {.layer_sparsity = ls, .n_layer_sparsity = s->n_layers};
        qf_prune_options pu = {.sparsity = target};
        qf_struct_options sa = {.crit = crit, .group_sparsity = ls,
                                .n_group_sparsity = s->n_layers};
        qf_struct_options su = {.crit = crit, .sparsity = target};
        if (!(st = qf_graph_clone(g, &ga, &e)) && !(st = qf_graph_clone(g, &gu, &e)) &&
            !(st = structured ? qf_prune_structured(ga, &sa, &e)
                              : qf_prune_magnitude(ga, &pa, NULL, &e)) &&
            !(st = structured ? qf_prune_structured(gu, &su, &e)
                              : qf_prune_magnitude(gu, &pu, NULL, &e)) &&
            !(st = qf_prune_evaluate(ga, d, (int)batch, &acc_auto, &loss, &e)) &&
            !(st = qf_prune_evaluate(gu, d, (int)batch, &acc_uni, &loss, &e)))
            printf("top-1 on the scan data: auto %.2f%% (estimated %.2f%%), uniform %.2f%%\n",
                   100.0 * acc_auto, 100.0 * est, 100.0 * acc_uni);
        qf_graph_free(ga);
        qf_graph_free(gu);
    }
    int n = s ? s->n_layers : 0;
    qf_sensitivity_free(s);
    qf_dataset_free(d);
    if (st) {
        qf_free(ls);
        return cli_fail(&e, st);
    }
    *out_ls = ls;
    *out_n = n;
    return -1;
}

/* Fine-tuning state: masks re-applied after every optimizer step; with the
 * gradual schedule the masks are recomputed at the scheduled sparsity. */
typedef struct finetune {
    qf_graph *g;
    qf_prune_masks *masks;
    qf_prune_options po; /* the magnitude pruning being scheduled */
    bool gradual;
    float target;
    int64_t step, dt, n_events;
} finetune;

static qf_status finetune_step(void *user, qf_tape *t, qf_err *err) {
    (void)t;
    finetune *f = user;
    f->step++;
    if (f->gradual && f->step % f->dt == 0 && f->step <= f->dt * f->n_events) {
        qf_prune_options po = f->po;
        po.sparsity = qf_prune_schedule_poly(0.0f, f->target, f->step, 0, f->n_events, f->dt);
        qf_prune_masks *m = NULL;
        qf_status s = qf_prune_magnitude(f->g, &po, &m, err);
        if (s) return s;
        qf_prune_masks_free(f->masks);
        f->masks = m;
    }
    return f->masks ? qf_prune_masks_apply(f->masks, f->g, err) : QF_OK;
}

static void ft_epoch(void *user, const qf_train_epoch *e) {
    (void)user;
    char val[32] = "-";
    if (e->val_accuracy >= 0) snprintf(val, sizeof val, "%.2f%%", 100 * e->val_accuracy);
    printf("fine-tune epoch %3d  loss %.4f  train %6.2f%%  val %7s  %6.1f s%s\n", e->epoch,
           e->train_loss, 100 * e->train_accuracy, val, e->seconds, e->best ? "  * best" : "");
    fflush(stdout);
}

static qf_status run_finetune(const cli_args *a, qf_graph *g, finetune *f, int epochs, bool quiet,
                              qf_err *e) {
    qf_dataset_options d;
    if (!cli_dataset_options(a, "train", &d)) return QF_ERR_INVALID_ARG;
    long long tl;
    if (!cli_get_int(a, "train-limit", 1, INT64_MAX, 0, &tl)) return QF_ERR_INVALID_ARG;
    d.limit = tl;
    d.split = "train";
    qf_dataset *train = NULL, *val = NULL;
    qf_status st = qf_dataset_open(cli_get(a, "data"), cli_get(a, "labels"), &d, &train, e);
    d.split = "test";
    d.limit = 0;
    if (!st) st = qf_dataset_open(cli_get(a, "data"), cli_get(a, "labels"), &d, &val, e);
    qf_train_options o;
    qf_train_options_default(&o);
    long long threads;
    cli_get_int(a, "threads", 1, 256, 2, &threads);
    const char *lr = cli_get(a, "lr");
    o.epochs = epochs;
    o.num_threads = (int)threads;
    o.lr.base_lr = lr ? (float)strtod(lr, NULL) : 0.005f;
    o.warmup_epochs = 0;
    o.after_step = finetune_step;
    o.after_step_user = f;
    o.epoch_done = quiet ? NULL : ft_epoch;
    if (!st && f->gradual) {
        int64_t spe = (train->n + o.batch - 1) / o.batch, total = spe * epochs;
        f->n_events = 10;
        f->dt = QF_MAX((int64_t)1, total * 2 / 3 / f->n_events);
        /* the best model is one with the final sparsity: after the ramp */
        o.best_from_epoch = (int)((f->dt * f->n_events + spe - 1) / spe);
    }
    qf_train_result r;
    if (!st) {
        if (!quiet) {
            printf("fine-tuning %d epochs on %lld samples%s\n", epochs, (long long)train->n,
                   f->gradual ? " (gradual pruning)" : "");
            fflush(stdout);
        }
        st = qf_train(g, train, val, &o, &r, e);
    }
    if (!st && !quiet)
        printf("fine-tuned: best validation top-1 %.2f%% (epoch %d)\n",
               100 * r.best_val_accuracy, r.best_epoch);
    qf_dataset_free(train);
    qf_dataset_free(val);
    return st;
}

static int prune_run(const cli_args *a) {
    long long epochs;
    if (!cli_get_int(a, "epochs", 1, 10000, 0, &epochs)) return CLI_EXIT_USAGE;
    const char *sched = cli_get(a, "schedule");
    bool gradual = sched && strcmp(sched, "gradual") == 0;
    if (sched && !gradual && strcmp(sched, "oneshot") != 0)
        return cli_usage_error(a->cmd, "--schedule must be oneshot or gradual, not '%s'", sched);
    if ((epochs || sched) && !cli_get(a, "data"))
        return cli_usage_error(a->cmd, "fine-tuning (--epochs) needs --data D");
    if (sched && !epochs) return cli_usage_error(a->cmd, "--schedule needs --epochs E");
    const char *lrs = cli_get(a, "lr");
    if (lrs) {
        char *end;
        double v = strtod(lrs, &end);
        if (end == lrs || *end || !(v > 0 && v < 10))
            return cli_usage_error(a->cmd, "--lr must be a number in (0, 10), got '%s'", lrs);
    }
    const char *out = cli_get(a, "output");
    if (!out) return cli_usage_error(a->cmd, "no output file: give -o OUT.onnx");
    const char *ss = cli_get(a, "sparsity"), *nms = cli_get(a, "nm");
    bool structured = cli_flag(a, "structured"), autos = cli_flag(a, "auto");
    float sparsity = 0;
    int nm_n = 0, nm_m = 0;
    if (ss && !parse_sparsity(ss, &sparsity))
        return cli_usage_error(a->cmd, "--sparsity must be a number in [0, 1), got '%s'", ss);
    if (nms && !parse_nm(nms, &nm_n, &nm_m))
        return cli_usage_error(a->cmd, "--nm expects N:M with 1 <= N <= M <= 64, got '%s'", nms);
    if (!ss && !nms) return cli_usage_error(a->cmd, "give --sparsity S (or --nm N:M)");
    if (nms && (ss || structured || autos || cli_flag(a, "global")))
        return cli_usage_error(a->cmd, "--nm does not combine with --sparsity, --structured, "
                                       "--global or --auto");
    const char *crit_s = cli_get(a, "criterion");
    qf_prune_criterion crit = QF_PRUNE_L1;
    if (crit_s) {
        if (!structured) return cli_usage_error(a->cmd, "--criterion needs --structured");
        if (strcmp(crit_s, "l1") == 0)
            crit = QF_PRUNE_L1;
        else if (strcmp(crit_s, "l2") == 0)
            crit = QF_PRUNE_L2;
        else if (strcmp(crit_s, "fpgm") == 0)
            crit = QF_PRUNE_FPGM;
        else
            return cli_usage_error(a->cmd, "--criterion must be l1, l2 or fpgm, not '%s'", crit_s);
    }
    if (autos && !cli_get(a, "data")) return cli_usage_error(a->cmd, "--auto needs --data D");
    if (!autos && !epochs && cli_get(a, "data"))
        return cli_usage_error(a->cmd, "--data is used by --auto and --epochs");
    if (gradual && (structured || nms || autos))
        return cli_usage_error(a->cmd, "--schedule gradual applies to plain magnitude pruning "
                                       "(not --structured, --nm or --auto)");
    if (structured && (cli_flag(a, "global") || cli_flag(a, "skip-first") ||
                       cli_flag(a, "skip-last")))
        return cli_usage_error(a->cmd, "--global/--skip-first/--skip-last apply to weight "
                                       "pruning, not --structured");
    bool quiet = cli_flag(a, "quiet");

    qf_err e = {0};
    qf_model *m = NULL;
    qf_status st = qf_model_load_onnx(a->pos[0], &m, &e);
    if (st) return cli_fail(&e, st);
    qf_graph *g = qf_model_graph(m);
    qf_layer_stat *before = NULL, *after = NULL;
    int nb = 0, na = 0, rc = -1;
    float *ls = NULL;
    int nls = 0;
    finetune ft = {.g = g, .gradual = gradual, .target = sparsity};
    if ((st = qf_pass_infer_shapes(g, &e)) || (st = qf_prune_layer_stats(g, &before, &nb, &e)))
        goto fail;
    if (autos && (rc = auto_sparsity(a, g, sparsity, structured, crit, quiet, &ls, &nls)) >= 0)
        goto done;
    if (epochs && g->n_inputs == 1 && g->values[g->inputs[0]].rank >= 1)
        g->values[g->inputs[0]].dims[0] = -1; /* fine-tune with any batch */
    if (structured) {
        if (!quiet && (st = print_groups(g, &e))) goto fail;
        qf_struct_options so = {.sparsity = sparsity, .crit = crit, .group_sparsity = ls,
                                .n_group_sparsity = nls};
        st = qf_prune_structured(g, &so, &e);
    } else {
        qf_prune_options po = {.sparsity = gradual ? 0.0f : sparsity,
                               .global = cli_flag(a, "global"),
                               .skip_first = cli_flag(a, "skip-first"),
                               .skip_last = cli_flag(a, "skip-last"),
                               .nm_n = nm_n,
                               .nm_m = nm_m,
                               .layer_sparsity = ls,
                               .n_layer_sparsity = nls};
        ft.po = po;
        st = qf_prune_magnitude(g, &po, epochs ? &ft.masks : NULL, &e);
    }
    if (!st && epochs) st = run_finetune(a, g, &ft, (int)epochs, quiet, &e);
    if (st || (st = qf_pass_infer_shapes(g, &e)) ||
        (st = qf_prune_layer_stats(g, &after, &na, &e)))
        goto fail;
    if (na != nb) {
        st = qf_errf(&e, QF_ERR_INTERNAL, "layer count changed while pruning");
        goto fail;
    }
    st = qf_onnx_export(g, out, NULL, &e);
    if (st) goto fail;
    if (!quiet) {
        print_table(before, after, nb, structured);
        printf("wrote %s\n", out);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(&e, st);
done:
    qf_free(ls);
    qf_free(before);
    qf_free(after);
    qf_prune_masks_free(ft.masks);
    qf_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_prune = {
    .name = "prune",
    .summary = "prune a float ONNX model (magnitude, N:M, or real channel removal)",
    .usage = "MODEL.onnx --sparsity S [--structured] [--nm N:M] [--auto --data D] -o OUT.onnx",
    .description =
        "Zeroes the smallest-magnitude weights of every Conv/Gemm/MatMul (per layer, or with\n"
        "--global one threshold for all), or keeps N of every M along the reduction axis\n"
        "(--nm 2:4). With --structured, whole output channels are scored (L1, L2 or FPGM)\n"
        "and really removed together with everything that depends on them (BatchNorm,\n"
        "depthwise convs, the next layer's inputs, residual Adds, Concat, Flatten->Gemm), so\n"
        "the model gets smaller and faster; graph outputs keep their width. --auto scans\n"
        "each layer's sensitivity on --data and picks per-layer sparsities whose\n"
        "parameter-weighted mean is S (with --structured: per channel group, weighted by\n"
        "the group's weights). --epochs E fine-tunes on --data afterwards (pruned weights\n"
        "are kept at zero after every step); --schedule gradual prunes while fine-tuning,\n"
        "raising the sparsity along Zhu & Gupta's polynomial schedule.",
    .opts = prune_opts,
    .n_opts = (int)(sizeof prune_opts / sizeof prune_opts[0]),
    .min_pos = 1,
    .max_pos = 1,
    .example = "qforge prune model.onnx --sparsity 0.8 -o sparse.onnx\n"
               "qforge prune model.onnx --sparsity 0.9 --global --skip-first -o sparse.onnx\n"
               "qforge prune model.onnx --nm 2:4 -o nm.onnx\n"
               "qforge prune model.onnx --sparsity 0.5 --structured --criterion fpgm -o slim.onnx\n"
               "qforge prune model.onnx --sparsity 0.8 --auto --data fashion-mnist --limit 300 "
               "-o auto.onnx\n"
               "qforge prune model.onnx --sparsity 0.5 --structured --auto --data fashion-mnist "
               "-o slim.onnx\n"
               "qforge prune model.onnx --sparsity 0.9 --schedule gradual --epochs 3 "
               "--data fashion-mnist -o sparse.onnx",
    .run = prune_run,
};
