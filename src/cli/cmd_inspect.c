/* cmd_inspect.c - `qforge inspect MODEL`: what a model is made of (inputs,
 * outputs, a per-node table with shapes and weights, op histogram, parameter
 * totals by dtype, quantizable ops), as text or JSON. */
#include <string.h>

#include "cli/cli.h"
#include "io/onnx.h"
#include "io/qfm.h"
#include "kernels/ref/qref.h"
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

/* One weight tensor of a layer: how many values, how many are zero, at
 * how many bits, and how it is stored. */
typedef struct weight_row {
    int node;
    const qf_value *w;
    int64_t count, zeros;
    int bits;               /* integer bits, 32 for float */
    uint64_t stored;        /* bytes on disk (qfm) or in memory */
    const char *encoding;
} weight_row;

typedef struct inspect_info {
    qf_graph *g;
    weight_row *wrows;
    int n_wrows;
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

static const char *encoding_name(uint32_t e) {
    switch (e) {
    case QF_QFM_ENC_RAW: return "raw";
    case QF_QFM_ENC_SPARSE_BITMASK: return "sparse";
    case QF_QFM_ENC_ZSTD: return "zstd";
    case QF_QFM_ENC_SPARSE_BITMASK_ZSTD: return "sparse+zstd";
    case QF_QFM_ENC_PALETTE: return "palette";
    default: return "?";
    }
}

/* Weight input (slot 1) of the layers that have one: float Conv/Gemm/
 * MatMul, and the integer QConv/QGemm (packed weights of w_bits). */
static void weight_row_of(const qf_graph *g, int i, weight_row *r) {
    const qf_node *n = &g->nodes[i];
    bool q = n->op == QF_OP_QCONV || n->op == QF_OP_QGEMM;
    memset(r, 0, sizeof *r);
    if (!(q || is_quantizable(n->op)) || n->n_inputs < 2 || n->inputs[1] < 0) return;
    const qf_value *w = &g->values[n->inputs[1]];
    if (!(w->flags & QF_VAL_CONST) || !w->data) return;
    r->node = i;
    r->w = w;
    r->stored = w->stored_nbytes ? w->stored_nbytes : w->nbytes;
    r->encoding = encoding_name(w->stored_encoding);
    if (w->dtype == QF_DT_F32) {
        r->bits = 32;
        r->count = (int64_t)(w->nbytes / 4);
        for (int64_t k = 0; k < r->count; k++) r->zeros += ((const float *)w->data)[k] == 0.0f;
        return;
    }
    if (!q || w->rank < 1 || w->dims[0] < 1) return;
    /* packed rows: w_bits container, logical shape in w_shape when packed */
    int cb = (int)qf_node_attr_int(n, "w_bits", 8);
    const int64_t *shape;
    int rank = qf_node_attr_ints(n, "w_shape", &shape);
    int64_t total = 1;
    if (rank > 0)
        for (int d = 0; d < rank; d++) total *= shape[d];
    else
        total = value_numel(w);
    int64_t rows = rank > 0 ? shape[0] : w->dims[0];
    if (rows < 1 || total % rows) return;
    int64_t cols = total / rows;
    size_t rb = qf_ref_packed_row_bytes(cols, cb);
    if (!rb || (uint64_t)rows * rb > w->nbytes) return;
    r->bits = w->qp ? w->qp->bits : cb;
    r->count = total;
    for (int64_t row = 0; row < rows; row++)
        for (int64_t k = 0; k < cols; k++)
            r->zeros += qf_ref_weight_get((const uint8_t *)w->data + row * rb, k, cb) == 0;
}

static bool analyse_weights(inspect_info *in) {
    const qf_graph *g = in->g;
    in->wrows = qf_calloc((size_t)g->n_nodes + 1, sizeof(weight_row));
    if (!in->wrows) return false;
    for (int i = 0; i < g->n_nodes; i++) {
        weight_row r;
        weight_row_of(g, i, &r);
        if (r.w && r.count > 0) in->wrows[in->n_wrows++] = r;
    }
    return true;
}

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
    if (!in->n_wrows) return;
    printf("\nweights (%d layers):\n  %-32s  %-6s  %10s  %5s  %8s  %10s  %s\n", in->n_wrows,
           "layer", "op", "values", "bits", "sparsity", "bytes", "storage");
    int64_t tv = 0, tz = 0;
    uint64_t tb = 0;
    for (int k = 0; k < in->n_wrows; k++) {
        const weight_row *r = &in->wrows[k];
        const qf_node *n = &g->nodes[r->node];
        char bits[8];
        snprintf(bits, sizeof bits, r->bits == 32 ? "float" : "%d", r->bits);
        printf("  %-32.32s  %-6.6s  %10lld  %5s  %7.2f%%  %10llu  %s\n", n->name ? n->name : "",
               n->op_type, (long long)r->count, bits, 100.0 * (double)r->zeros / (double)r->count,
               (unsigned long long)r->stored, r->encoding);
        tv += r->count;
        tz += r->zeros;
        tb += r->stored;
    }
    printf("  %-32s  %-6s  %10lld  %5s  %7.2f%%  %10llu\n", "total", "", (long long)tv, "",
           tv ? 100.0 * (double)tz / (double)tv : 0.0, (unsigned long long)tb);
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
           "\"MatMul\": %d},\n \"weights\": [",
           in->quantizable, in->quant_by_op[0], in->quant_by_op[1], in->quant_by_op[2]);
    for (int k = 0; k < in->n_wrows; k++) {
        const weight_row *r = &in->wrows[k];
        printf("%s\n  {\"layer\": ", k ? "," : "");
        cli_json_str(stdout, g->nodes[r->node].name);
        fputs(", \"op\": ", stdout);
        cli_json_str(stdout, g->nodes[r->node].op_type);
        printf(", \"values\": %lld, \"zeros\": %lld, \"bits\": %d, \"bytes\": %llu, "
               "\"storage\": \"%s\"}",
               (long long)r->count, (long long)r->zeros, r->bits, (unsigned long long)r->stored,
               r->encoding);
    }
    fputs("]}\n", stdout);
}

static int run_inspect(const cli_args *a) {
    const char *path = a->pos[0];
    qf_err e = {0};
    qf_graph *g = NULL;
    qf_status st = qf_qfm_file_has_magic(path) ? qf_qfm_load(path, &g, NULL, &e)
                                               : qf_onnx_import_file(path, &g, &e);
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
    if (!analyse(&in) || !analyse_weights(&in)) {
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
    qf_free(in.wrows);
    qf_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_inspect = {
    .name = "inspect",
    .summary = "show a model's inputs, outputs, layers, shapes and parameters",
    .usage = "MODEL.onnx|MODEL.qfm [--json]",
    .description = "Print a model's name, producer and opset, its inputs and outputs (dynamic\n"
                   "dims as N), one line per node (op, name, output shape, weight count), an\n"
                   "op histogram, parameter totals by dtype and the number of quantizable ops\n"
                   "(Conv, Gemm, MatMul), and a weights table: per layer the weight count,\n"
                   "bits, sparsity (share of zero weights) and bytes as stored (a .qfm shows\n"
                   "its storage encoding: raw, sparse, zstd, sparse+zstd).\n"
                   "Shapes that cannot be inferred print as '?'.\n"
                   "In --json output dynamic dims are -1 and unknown shapes null.",
    .opts = inspect_opts,
    .n_opts = (int)QF_ARRAY_LEN(inspect_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge inspect lenet.onnx\n  qforge inspect lenet.int8.qfm\n"
               "  qforge inspect lenet.onnx --json > lenet.json",
    .run = run_inspect,
};
