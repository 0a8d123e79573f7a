/* cmd_cluster.c - `qforge cluster MODEL.onnx --bits B -o OUT.onnx`: per-layer
 * k-means weight sharing (2^B shared values per Conv/Gemm/MatMul weight,
 * pruned zeros kept exact). Prints a per-layer table; the output (weights
 * replaced by their centroids) is written atomically. */
#include <math.h>
#include <stdio.h>

#include "cli/cli.h"
#include "io/onnx_export.h"
#include "ir/passes.h"
#include "prune/prune.h"
#include "runtime/runtime.h"

static const cli_opt cluster_opts[] = {
    {"bits", 'b', "B", "index bits per weight: 2^B shared values per layer, 1..8"},
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

static int cluster_run(const cli_args *a) {
    const char *out = cli_get(a, "output");
    if (!out) return cli_usage_error(a->cmd, "no output file: give -o OUT.onnx");
    if (!cli_get(a, "bits")) return cli_usage_error(a->cmd, "give --bits B (1..8)");
    long long bits;
    if (!cli_get_int(a, "bits", 1, 8, 0, &bits)) return CLI_EXIT_USAGE;
    qf_err e = {0};
    qf_model *m = NULL;
    qf_status st = qf_model_load_onnx(a->pos[0], &m, &e);
    if (st) return cli_fail(&e, st);
    qf_graph *g = qf_model_graph(m);
    qf_clusters *c = NULL;
    int rc;
    if ((st = qf_pass_infer_shapes(g, &e)) || (st = qf_cluster_weights(g, (int)bits, &c, &e)) ||
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
        "cluster of their own, so prune first, then cluster.",
    .opts = cluster_opts,
    .n_opts = (int)(sizeof cluster_opts / sizeof cluster_opts[0]),
    .min_pos = 1,
    .max_pos = 1,
    .example = "qforge cluster model.onnx --bits 4 -o shared.onnx\n"
               "qforge prune model.onnx --sparsity 0.9 -o s.onnx && "
               "qforge cluster s.onnx --bits 5 -o s5.onnx",
    .run = cluster_run,
};
