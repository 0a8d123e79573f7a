/* cmd_cluster.c - `qforge cluster MODEL.onnx --bits B -o OUT.onnx`: per-layer
 * k-means weight sharing (2^B shared values per Conv/Gemm/MatMul weight,
 * pruned zeros kept exact). Prints a per-layer table; the output (weights
 * replaced by their centroids) is written atomically. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/onnx_export.h"
#include "ir/passes.h"
#include "prune/prune.h"
#include "runtime/runtime.h"
#include "train/trainer.h"

static const cli_opt cluster_opts[] = {
    {"bits", 'b', "B", "index bits per weight: 2^B shared values per layer, 1..8"},
    {"epochs", 0, "E",
     "fine-tune the shared values (centroids) for E epochs on --data: each centroid moves by "
     "the mean gradient of its weights; the assignments stay fixed"},
    {"data", 'd', "D", "labelled data for --epochs (train split trains, test split validates)"},
    {"lr", 0, "LR", "centroid learning rate for --epochs (default 0.01)"},
    {"threads", 't', "T", "worker threads for --epochs (default 2)"},
    {"train-limit", 0, "N", "fine-tune on the first N training samples only"},
    {"output", 'o', "OUT.onnx", "where to write the clustered model"},
    {"quiet", 'q', NULL, "no table, only errors"},
};

static void print_table(const qf_graph *g, const qf_clusters *c) {
    printf("%-28s %10s %8s %8s %6s %6s %10s\n", "layer", "params", "clusters", "used", "zero",
           "iters", "rmse");
    int64_t total = 0;
    for (int i = 0; i < c->n; i++) {
        const qf_cluster_layer *l = &c->layers[i];
        /* how many centroids some weight actually uses */
        int used = 0;
        bool seen[256] = {false};
        for (size_t j = 0; j < l->n; j++)
            if (!seen[l->index[j]]) {
                seen[l->index[j]] = true;
                used++;
            }
        printf("%-28.28s %10zu %8d %8d %6s %6d %10.3g\n", l->node, l->n, l->k, used,
               l->zero_cluster ? "yes" : "no", l->iters, sqrt(l->mse));
        total += (int64_t)l->n;
    }
    printf("%d layers, %lld weights clustered (%s)\n", c->n, (long long)total, g->source_path);
}

/* Centroid fine-tuning (Deep Compression): after each optimizer step the
 * weights are put back on their (moved) centroids. The optimizer's own
 * update of the weights is discarded; the centroid moves by lr times the
 * mean of its weights' gradients (the mean rather than the paper's sum keeps
 * one learning rate meaningful across cluster sizes). */
typedef struct centroid_ft {
    qf_clusters *c;
    float lr;
    float *cg;    /* 256 */
    int64_t *cnt; /* 256 */
} centroid_ft;

static qf_status centroid_step(void *user, qf_tape *t, qf_err *err) {
    (void)err;
    centroid_ft *f = user;
    int np = qf_tape_num_params(t);
    for (int i = 0; i < f->c->n; i++) {
        qf_cluster_layer *l = &f->c->layers[i];
        qf_param *p = NULL;
        for (int k = 0; k < np && !p; k++)
            if (qf_tape_param(t, k)->value == l->value) p = qf_tape_param(t, k);
        if (!p || p->n != l->n) continue;
        qf_cluster_grad(l, p->grad, f->cg);
        for (int j = 0; j < l->k; j++) f->cnt[j] = 0;
        for (size_t j = 0; j < l->n; j++) f->cnt[l->index[j]]++;
        for (int j = 0; j < l->k; j++) f->cg[j] /= (float)(f->cnt[j] ? f->cnt[j] : 1);
        qf_cluster_step(l, f->cg, f->lr);
        qf_cluster_apply(l, p->data);
    }
    return QF_OK;
}

static qf_status finetune_centroids(const cli_args *a, qf_graph *g, qf_clusters *c, int epochs,
                                    qf_err *e) {
    qf_dataset_options d;
    memset(&d, 0, sizeof d);
    long long tl, threads;
    if (!cli_get_int(a, "train-limit", 1, INT64_MAX, 0, &tl) ||
        !cli_get_int(a, "threads", 1, 256, 2, &threads))
        return QF_ERR_INVALID_ARG;
    d.split = "train";
    d.limit = tl;
    qf_dataset *train = NULL, *val = NULL;
    qf_status st = qf_dataset_open(cli_get(a, "data"), NULL, &d, &train, e);
    d.split = "test";
    d.limit = 0;
    if (!st) st = qf_dataset_open(cli_get(a, "data"), NULL, &d, &val, e);
    float cg[256];
    int64_t cnt[256];
    const char *lrs = cli_get(a, "lr");
    centroid_ft f = {c, lrs ? (float)strtod(lrs, NULL) : 0.01f, cg, cnt};
    qf_train_options o;
    qf_train_options_default(&o);
    o.epochs = epochs;
    o.num_threads = (int)threads;
    o.lr.base_lr = 1e-3f; /* the weights' own step is discarded by the hook */
    o.warmup_epochs = 0;
    o.optim.weight_decay = 0;
    o.after_step = centroid_step;
    o.after_step_user = &f;
    qf_train_result r;
    if (g->n_inputs == 1 && g->values[g->inputs[0]].rank >= 1)
        g->values[g->inputs[0]].dims[0] = -1;
    if (!st) st = qf_train(g, train, val, &o, &r, e);
    if (!st && !cli_flag(a, "quiet"))
        printf("centroids fine-tuned %d epochs: best validation top-1 %.2f%% (epoch %d)\n",
               epochs, 100 * r.best_val_accuracy, r.best_epoch);
    qf_dataset_free(train);
    qf_dataset_free(val);
    return st;
}

static int cluster_run(const cli_args *a) {
    const char *out = cli_get(a, "output");
    if (!out) return cli_usage_error(a->cmd, "no output file: give -o OUT.onnx");
    if (!cli_get(a, "bits")) return cli_usage_error(a->cmd, "give --bits B (1..8)");
    long long bits;
    if (!cli_get_int(a, "bits", 1, 8, 0, &bits)) return CLI_EXIT_USAGE;
    long long epochs;
    if (!cli_get_int(a, "epochs", 1, 10000, 0, &epochs)) return CLI_EXIT_USAGE;
    if (epochs && !cli_get(a, "data"))
        return cli_usage_error(a->cmd, "--epochs needs --data D");
    const char *lrs = cli_get(a, "lr");
    if (lrs) {
        char *end;
        double v = strtod(lrs, &end);
        if (end == lrs || *end || !(v > 0 && v < 10))
            return cli_usage_error(a->cmd, "--lr must be a number in (0, 10), got '%s'", lrs);
    }
    qf_err e = {0};
    qf_model *m = NULL;
    qf_status st = qf_model_load_onnx(a->pos[0], &m, &e);
    if (st) return cli_fail(&e, st);
    qf_graph *g = qf_model_graph(m);
    qf_clusters *c = NULL;
    int rc;
    if ((st = qf_pass_infer_shapes(g, &e)) || (st = qf_cluster_weights(g, (int)bits, &c, &e)) ||
        (epochs && (st = finetune_centroids(a, g, c, (int)epochs, &e))) ||
        (st = qf_onnx_export(g, out, NULL, &e))) {
        rc = cli_fail(&e, st);
    } else {
        if (!cli_flag(a, "quiet")) {
            print_table(g, c);
            printf("wrote %s\n", out);
        }
        rc = CLI_EXIT_OK;
    }
    qf_clusters_free(c);
    qf_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_cluster = {
    .name = "cluster",
    .summary = "share weights: per-layer k-means to 2^B values (Deep Compression)",
    .usage = "MODEL.onnx --bits B -o OUT.onnx",
    .description =
        "Clusters the weights of every Conv/Gemm/MatMul with k-means (linear initialisation\n"
        "between min and max, Lloyd iterations) into 2^B shared values and writes the model\n"
        "with each weight replaced by its centroid. Zeros of a pruned layer stay an exact\n"
        "cluster of their own, so prune first, then cluster. --epochs E fine-tunes the\n"
        "shared values on --data (assignments fixed); quantizing the result and storing\n"
        "it with 'qforge quantize --compress' keeps each layer's codebook and indices\n"
        "(qfm PALETTE encoding).",
    .opts = cluster_opts,
    .n_opts = (int)(sizeof cluster_opts / sizeof cluster_opts[0]),
    .min_pos = 1,
    .max_pos = 1,
    .example = "qforge cluster model.onnx --bits 4 -o shared.onnx\n"
               "qforge prune model.onnx --sparsity 0.9 -o s.onnx && "
               "qforge cluster s.onnx --bits 5 -o s5.onnx",
    .run = cluster_run,
};
