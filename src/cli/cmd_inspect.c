/* cmd_inspect.c - `qforge inspect MODEL`: what a model is made of (inputs,
 * outputs, a per-node table with shapes and weights, op histogram, parameter
 * totals by dtype, quantizable ops), as text or JSON. */
#include <string.h>

#include "cli/cli.h"
#include "io/onnx.h"
#include "ir/ops.h"
#include "ir/passes.h"
#include "runtime/runtime.h"

static const cli_opt inspect_opts[] = {
    {"json", 0, NULL, "print the report as JSON on stdout"},
};

/* Elements of a constant value, from its shape (its bytes as a fallback). */
static int64_t value_numel(const qf_value *v) {
    if (v->rank >= 0) {
        qf_tensor t = {.dtype = v->dtype, .rank = v->rank};
        memcpy(t.dims, v->dims, sizeof t.dims);
        int64_t n = qf_tensor_numel(&t);
        if (n >= 0) return n;
    }
    size_t es = qf_dtype_size(v->dtype);
    return es ? (int64_t)(v->nbytes / es) : 0;
}

/* Weights count as parameters; int64 constants are shapes and indices. */
static bool is_param(const qf_value *v) {
    return (v->flags & QF_VAL_CONST) && v->dtype != QF_DT_I64;
}

static bool is_quantizable(qf_op_id op) {
    return op == QF_OP_CONV || op == QF_OP_GEMM || op == QF_OP_MATMUL;
}

typedef struct op_count {
    const char *op_type;
    int count;
} op_count;

typedef struct inspect_info {
    qf_graph *g;
    bool shapes_ok;
    char shape_err[QF_ERR_MSG_LEN];
    int64_t *node_params; /* per node */
    op_count *hist;       /* sorted by count, descending */
    int n_hist;
    int64_t dt_count[QF_DT_COUNT], dt_bytes[QF_DT_COUNT];
    int64_t params, param_bytes;
    int quantizable;
    int quant_by_op[3]; /* Conv, Gemm, MatMul */
} inspect_info;

static bool analyse(inspect_info *in) {
    qf_graph *g = in->g;
    in->node_params = qf_calloc((size_t)g->n_nodes + 1, sizeof(int64_t));
    in->hist = qf_calloc((size_t)g->n_nodes + 1, sizeof(op_count));
    bool *counted = qf_calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!in->node_params || !in->hist || !counted) {
        qf_free(counted);
        return false;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int vi = n->inputs[k];
            if (vi < 0) continue;
            const qf_value *v = &g->values[vi];
            if (is_param(v)) in->node_params[i] += value_numel(v);
            if ((v->flags & QF_VAL_CONST) && !counted[vi]) {
                counted[vi] = true; /* shared weights count once */
                if ((unsigned)v->dtype < QF_DT_COUNT) {
                    in->dt_count[v->dtype] += value_numel(v);
                    in->dt_bytes[v->dtype] += (int64_t)v->nbytes;
                }
                if (is_param(v)) {
                    in->params += value_numel(v);
                    in->param_bytes += (int64_t)v->nbytes;
                }
            }
        }
        int h = 0;
        while (h < in->n_hist && strcmp(in->hist[h].op_type, n->op_type) != 0)
            h++;
        if (h == in->n_hist) in->hist[in->n_hist++] = (op_count){n->op_type, 0};
        in->hist[h].count++;
        if (is_quantizable(n->op)) {
            in->quantizable++;
            in->quant_by_op[n->op == QF_OP_CONV ? 0 : n->op == QF_OP_GEMM ? 1 : 2]++;
        }
    }
    qf_free(counted);
    /* stable insertion sort: most frequent first, ties in order of appearance */
    for (int i = 1; i < in->n_hist; i++) {
        op_count x = in->hist[i];
        int j = i;
        while (j > 0 && in->hist[j - 1].count < x.count) {
            in->hist[j] = in->hist[j - 1];
            j--;
        }
        in->hist[j] = x;
    }
    return true;
}

static const qf_value *node_out(const qf_graph *g, const qf_node *n) {
    return n->n_outputs > 0 && n->outputs[0] >= 0 ? &g->values[n->outputs[0]] : NULL;
}

static void human_bytes(char *buf, size_t len, int64_t b) {
    if (b < 1024)
        snprintf(buf, len, "%lld B", (long long)b);
    else if (b < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, len, "%.1f MiB", (double)b / (1024.0 * 1024));
}

static void print_io_text(const qf_graph *g, const int *idx, int n, const char *title) {
    printf("%s:\n", title);
    size_t w = 4;
    for (int i = 0; i < n; i++)
        w = QF_MAX(w, strlen(g->values[idx[i]].name));
    for (int i = 0; i < n; i++) {
        const qf_value *v = &g->values[idx[i]];
        char shape[256];
        cli_format_shape(shape, sizeof shape, v->rank, v->dims);
        printf("  %-*s  %-8s  %s\n", (int)w, v->name, qf_dtype_name(v->dtype), shape);
    }
}

static void print_text(const char *path, const inspect_info *in) {
    const qf_graph *g = in->g;
    printf("model:      %s\n", path);
    printf("graph:      %s\n", g->name && *g->name ? g->name : "(unnamed)");
    printf("producer:   %s\n", g->producer && *g->producer ? g->producer : "(unknown)");
    printf("opset:      %d\n", g->opset);
    if (!in->shapes_ok) printf("shapes:     unknown (%s)\n", in->shape_err);
    print_io_text(g, g->inputs, g->n_inputs, "inputs");
    print_io_text(g, g->outputs, g->n_outputs, "outputs");

    size_t wop = 2, wname = 4, wshape = 12;
    char shape[256];
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        wop = QF_MAX(wop, strlen(n->op_type));
        wname = QF_MAX(wname, strlen(n->name ? n->name : ""));
        const qf_value *o = node_out(g, n);
        cli_format_shape(shape, sizeof shape, o ? o->rank : -1, o ? o->dims : NULL);
        wshape = QF_MAX(wshape, strlen(shape));
    }
    wname = QF_MIN(wname, (size_t)48);
    int widx = snprintf(NULL, 0, "%d", g->n_nodes);
    printf("\nnodes (%d):\n  %*s  %-*s  %-*s  %-*s  %s\n", g->n_nodes, widx, "#", (int)wop, "op",
           (int)wname, "name", (int)wshape, "output shape", "params");
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        const qf_value *o = node_out(g, n);
        cli_format_shape(shape, sizeof shape, o ? o->rank : -1, o ? o->dims : NULL);
        printf("  %*d  %-*s  %-*.*s  %-*s  %lld\n", widx, i, (int)wop, n->op_type, (int)wname,
               (int)wname, n->name ? n->name : "", (int)wshape, shape,
               (long long)in->node_params[i]);
    }
    printf("\nop histogram:\n");
    for (int h = 0; h < in->n_hist; h++)
        printf("  %-*s  %d\n", (int)wop, in->hist[h].op_type, in->hist[h].count);

    char hb[32];
    human_bytes(hb, sizeof hb, in->param_bytes);
    printf("\nparameters: %lld (%s)\n", (long long)in->params, hb);
    for (int t = 0; t < QF_DT_COUNT; t++) {
        if (!in->dt_count[t] && !in->dt_bytes[t]) continue;
        printf("  %-8s  %lld values  %lld bytes%s\n", qf_dtype_name((qf_dtype)t),
               (long long)in->dt_count[t], (long long)in->dt_bytes[t],
               t == QF_DT_I64 ? "  (shapes/indices, not counted as parameters)" : "");
    }
    printf("quantizable ops: %d (Conv %d, Gemm %d, MatMul %d)\n", in->quantizable,
           in->quant_by_op[0], in->quant_by_op[1], in->quant_by_op[2]);
}

static void json_shape(int rank, const int64_t *dims) {
    if (rank < 0) {
        fputs("null", stdout);
        return;
    }
    putchar('[');
    for (int i = 0; i < rank; i++)
        printf("%s%lld", i ? ", " : "", (long long)dims[i]);
    putchar(']');
}

static void json_io(const qf_graph *g, const int *idx, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) {
        const qf_value *v = &g->values[idx[i]];
        printf("%s{\"name\": ", i ? ", " : "");
        cli_json_str(stdout, v->name);
        printf(", \"dtype\": \"%s\", \"shape\": ", qf_dtype_name(v->dtype));
        json_shape(v->rank, v->dims);
        putchar('}');
    }
    putchar(']');
}

static void print_json(const char *path, const inspect_info *in) {
    const qf_graph *g = in->g;
    fputs("{\"model\": ", stdout);
    cli_json_str(stdout, path);
    fputs(", \"graph\": ", stdout);
    cli_json_str(stdout, g->name);
    fputs(", \"producer\": ", stdout);
    cli_json_str(stdout, g->producer);
    printf(", \"opset\": %d, \"shapes_known\": %s", g->opset, in->shapes_ok ? "true" : "false");
    if (!in->shapes_ok) {
        fputs(", \"shape_error\": ", stdout);
        cli_json_str(stdout, in->shape_err);
    }
    fputs(",\n \"inputs\": ", stdout);
    json_io(g, g->inputs, g->n_inputs);
    fputs(",\n \"outputs\": ", stdout);
    json_io(g, g->outputs, g->n_outputs);
    fputs(",\n \"nodes\": [", stdout);
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        const qf_value *o = node_out(g, n);
        printf("%s\n  {\"index\": %d, \"op\": ", i ? "," : "", i);
        cli_json_str(stdout, n->op_type);
        fputs(", \"name\": ", stdout);
        cli_json_str(stdout, n->name);
        fputs(", \"output_shape\": ", stdout);
        json_shape(o ? o->rank : -1, o ? o->dims : NULL);
        printf(", \"params\": %lld}", (long long)in->node_params[i]);
    }
    fputs("],\n \"op_histogram\": {", stdout);
    for (int h = 0; h < in->n_hist; h++) {
        if (h) fputs(", ", stdout);
        cli_json_str(stdout, in->hist[h].op_type);
        printf(": %d", in->hist[h].count);
    }
    printf("},\n \"parameters\": %lld, \"parameter_bytes\": %lld, \"constants_by_dtype\": {",
           (long long)in->params, (long long)in->param_bytes);
    bool first = true;
    for (int t = 0; t < QF_DT_COUNT; t++) {
        if (!in->dt_count[t] && !in->dt_bytes[t]) continue;
        printf("%s\"%s\": {\"count\": %lld, \"bytes\": %lld}", first ? "" : ", ",
               qf_dtype_name((qf_dtype)t), (long long)in->dt_count[t], (long long)in->dt_bytes[t]);
        first = false;
    }
    printf("},\n \"quantizable_ops\": %d, \"quantizable_by_op\": {\"Conv\": %d, \"Gemm\": %d, "
           "\"MatMul\": %d}}\n",
           in->quantizable, in->quant_by_op[0], in->quant_by_op[1], in->quant_by_op[2]);
}

static int run_inspect(const cli_args *a) {
    const char *path = a->pos[0];
    qf_err e = {0};
    qf_graph *g = NULL;
    qf_status st = qf_onnx_import_file(path, &g, &e);
    if (st) return cli_fail(&e, st);
    qf_model *m = NULL;
    st = qf_model_from_graph(g, path, &m, &e);
    if (st) {
        qf_graph_free(g);
        return cli_fail(&e, st);
    }
    inspect_info in;
    memset(&in, 0, sizeof in);
    in.g = qf_model_graph(m);
    qf_err se = {0};
    /* Unknown shapes are not fatal for a report: they print as '?'. */
    in.shapes_ok = qf_pass_infer_shapes(in.g, &se) == QF_OK;
    if (!in.shapes_ok) snprintf(in.shape_err, sizeof in.shape_err, "%s", se.msg);
    int rc = CLI_EXIT_OK;
    if (!analyse(&in)) {
        cli_error("%s: out of memory", path);
        rc = CLI_EXIT_FAIL;
    } else if (cli_flag(a, "json")) {
        print_json(path, &in);
    } else {
        print_text(path, &in);
    }
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        cli_error("cannot write to stdout");
        rc = CLI_EXIT_FAIL;
    }
    qf_free(in.node_params);
    qf_free(in.hist);
    qf_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_inspect = {
    .name = "inspect",
    .summary = "show a model's inputs, outputs, layers, shapes and parameters",
    .usage = "MODEL.onnx [--json]",
    .description = "Print a model's name, producer and opset, its inputs and outputs (dynamic\n"
                   "dims as N), one line per node (op, name, output shape, weight count), an\n"
                   "op histogram, parameter totals by dtype and the number of quantizable ops\n"
                   "(Conv, Gemm, MatMul). Shapes that cannot be inferred print as '?'.\n"
                   "In --json output dynamic dims are -1 and unknown shapes null.",
    .opts = inspect_opts,
    .n_opts = (int)QF_ARRAY_LEN(inspect_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge inspect lenet.onnx\n  qforge inspect lenet.onnx --json > lenet.json",
    .run = run_inspect,
};
