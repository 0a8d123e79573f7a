/* cmd_run.c - `qforge run MODEL --input X.npy -o Y.npy`: run a model once on
 * array files and write its outputs as NPY (atomically: a failed run leaves
 * no output file behind). */
#include <string.h>

#include "cli/cli.h"
#include "io/data.h"

static const cli_opt run_opts[] = {
    {"input", 'i', "FILE|NAME=FILE",
     "an input array (NPY or IDX); repeat in model input order, "
     "or bind by name"},
    {"output", 'o', "FILE",
     "where output 0 goes (NPY); repeat for outputs 1, 2, ... "
     "(missing ones get _1, _2 suffixes)"},
    {"threads", 't', "T", "worker threads (default 1)"},
};

typedef struct run_ctx {
    qf_model *model;
    int n_in, n_out;
    qf_tensor *inputs;     /* loaded arrays (data owned) */
    const char **in_files; /* file of each model input */
    char **out_paths;
} run_ctx;

static void run_ctx_free(run_ctx *c) {
    for (int i = 0; i < c->n_in && c->inputs; i++)
        qf_free_aligned(c->inputs[i].data);
    for (int i = 0; i < c->n_out && c->out_paths; i++)
        qf_free(c->out_paths[i]);
    qf_free(c->inputs);
    qf_free(c->in_files);
    qf_free(c->out_paths);
    qf_model_free(c->model);
}

static int input_index(const qf_model *m, const char *name, size_t len) {
    for (int i = 0; i < qf_model_num_inputs(m); i++) {
        const char *n = qf_model_input_name(m, i);
        if (strlen(n) == len && strncmp(n, name, len) == 0) return i;
    }
    return -1;
}

/* Assign each --input to a model input: NAME=FILE when NAME is an input's
 * name, otherwise the next unbound input in model order. */
static int bind_inputs(const cli_args *a, run_ctx *c) {
    int n_given = cli_count(a, "input");
    for (int k = 0; k < n_given; k++) {
        const char *v = cli_get_nth(a, "input", k);
        const char *eq = strchr(v, '=');
        int idx = eq ? input_index(c->model, v, (size_t)(eq - v)) : -1;
        if (idx < 0) continue;
        if (c->in_files[idx])
            return cli_usage_error(a->cmd, "input '%s' is given twice",
                                   qf_model_input_name(c->model, idx));
        c->in_files[idx] = eq + 1;
    }
    int next = 0;
    for (int k = 0; k < n_given; k++) {
        const char *v = cli_get_nth(a, "input", k);
        const char *eq = strchr(v, '=');
        if (eq && input_index(c->model, v, (size_t)(eq - v)) >= 0) continue;
        while (next < c->n_in && c->in_files[next])
            next++;
        if (next == c->n_in)
            return cli_usage_error(a->cmd, "too many inputs: the model takes %d", c->n_in);
        c->in_files[next++] = v;
    }
    for (int i = 0; i < c->n_in; i++)
        if (!c->in_files[i])
            return cli_usage_error(a->cmd, "no file for model input %d '%s' (%d given)", i,
                                   qf_model_input_name(c->model, i), n_given);
    return -1;
}

/* Check a loaded array against the model's declared input. */
static int check_input(const run_ctx *c, int i) {
    qf_tensor want;
    const qf_tensor *got = &c->inputs[i];
    const char *name = qf_model_input_name(c->model, i);
    bool rank_known = qf_model_input_info(c->model, i, &want) == QF_OK;
    char ws[256], gs[256];
    cli_format_shape(gs, sizeof gs, got->rank, got->dims);
    if (want.dtype != QF_DT_UNDEF && want.dtype != got->dtype) {
        cli_error("%s: input '%s' must be %s, the file holds %s %s", c->in_files[i], name,
                  qf_dtype_name(want.dtype), qf_dtype_name(got->dtype), gs);
        return CLI_EXIT_USAGE;
    }
    if (!rank_known) return -1;
    cli_format_shape(ws, sizeof ws, want.rank, want.dims);
    bool ok = want.rank == got->rank;
    for (int d = 0; ok && d < want.rank; d++)
        if (want.dims[d] >= 0 && want.dims[d] != got->dims[d]) ok = false;
    if (!ok) {
        cli_error("%s: input '%s' expects shape %s, the file holds %s", c->in_files[i], name, ws,
                  gs);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* "out.npy" -> "out_2.npy"; "out" -> "out_2". */
static char *suffixed_path(const char *base, int k) {
    size_t len = strlen(base);
    size_t stem = len;
    if (len > 4 && strcmp(base + len - 4, ".npy") == 0) stem = len - 4;
    size_t n = len + 24;
    char *p = qf_malloc(n);
    if (p) snprintf(p, n, "%.*s_%d%s", (int)stem, base, k, base + stem);
    return p;
}

static int plan_outputs(const cli_args *a, run_ctx *c) {
    int n_o = cli_count(a, "output");
    if (n_o == 0) return cli_usage_error(a->cmd, "no output file: give -o OUT.npy");
    if (n_o > c->n_out)
        return cli_usage_error(a->cmd, "%d output files given, the model has %d outputs", n_o,
                               c->n_out);
    c->out_paths = qf_calloc((size_t)c->n_out, sizeof *c->out_paths);
    if (!c->out_paths) goto oom;
    for (int j = 0; j < c->n_out; j++) {
        c->out_paths[j] = j < n_o ? qf_strdup(cli_get_nth(a, "output", j))
                                  : suffixed_path(cli_get_nth(a, "output", 0), j);
        if (!c->out_paths[j]) goto oom;
    }
    for (int j = 0; j < c->n_out; j++)
        for (int k = 0; k < j; k++)
            if (strcmp(c->out_paths[j], c->out_paths[k]) == 0)
                return cli_usage_error(a->cmd, "outputs %d and %d would both go to %s", k, j,
                                       c->out_paths[j]);
    return -1;
oom:
    cli_error("out of memory");
    return CLI_EXIT_FAIL;
}

static int run_model(run_ctx *c, int threads) {
    qf_err e = {0};
    qf_session_options so = {.num_threads = threads};
    qf_session *s = NULL;
    qf_status st = qf_session_create(c->model, &so, &s, &e);
    if (st) return cli_fail(&e, st);
    qf_tensor *outs = qf_calloc((size_t)c->n_out, sizeof *outs);
    if (!outs) {
        qf_session_free(s);
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_OK;
    st = qf_session_run(s, c->inputs, c->n_in, outs, c->n_out, &e);
    if (st) rc = cli_fail(&e, st);
    for (int j = 0; j < c->n_out && rc == CLI_EXIT_OK; j++) {
        st = qf_npy_write(c->out_paths[j], &outs[j], &e);
        if (st) {
            /* the writer's message already names the file */
            cli_error("output '%s': %s", qf_model_output_name(c->model, j), e.msg);
            rc = st == QF_ERR_UNSUPPORTED || st == QF_ERR_IO ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        }
    }
    qf_free(outs);
    qf_session_free(s);
    return rc;
}

static int run_run(const cli_args *a) {
    long long threads;
    if (!cli_get_int(a, "threads", 1, 1024, 1, &threads)) return CLI_EXIT_USAGE;
    if (cli_count(a, "output") == 0)
        return cli_usage_error(a->cmd, "no output file: give -o OUT.npy");
    run_ctx c;
    memset(&c, 0, sizeof c);
    qf_err e = {0};
    qf_status st = qf_model_load(a->pos[0], &c.model, &e);
    if (st) return cli_fail(&e, st);
    c.n_in = qf_model_num_inputs(c.model);
    c.n_out = qf_model_num_outputs(c.model);
    int rc = -1;
    c.inputs = qf_calloc((size_t)c.n_in + 1, sizeof *c.inputs);
    c.in_files = qf_calloc((size_t)c.n_in + 1, sizeof *c.in_files);
    if (!c.inputs || !c.in_files) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    }
    if (rc < 0) rc = bind_inputs(a, &c);
    if (rc < 0) rc = plan_outputs(a, &c);
    for (int i = 0; rc < 0 && i < c.n_in; i++) {
        st = qf_array_read(c.in_files[i], &c.inputs[i], &e);
        if (st) {
            /* the loader's message already names the file */
            cli_error("input '%s': %s", qf_model_input_name(c.model, i), e.msg);
            rc = st == QF_ERR_NOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
            break;
        }
        rc = check_input(&c, i);
    }
    if (rc < 0) rc = run_model(&c, (int)threads);
    run_ctx_free(&c);
    return rc;
}

const cli_cmd cli_cmd_run = {
    .name = "run",
    .summary = "run a model on NPY inputs and write its outputs as NPY",
    .usage = "MODEL.onnx --input X.npy [--input ...] -o OUT.npy [options]",
    .description = "Run the model once. Inputs bind in model input order, or by name with\n"
                   "--input NAME=FILE; each must match the input's dtype and static dims\n"
                   "(dynamic dims take the file's size). Output 0 goes to the first -o file;\n"
                   "further outputs to further -o files or to OUT_1.npy, OUT_2.npy, ...\n"
                   "Outputs are written atomically: a failed run leaves no file behind.",
    .opts = run_opts,
    .n_opts = (int)QF_ARRAY_LEN(run_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge run lenet.onnx --input x.npy -o logits.npy\n"
               "  qforge run two_in.onnx --input b=b.npy --input a=a.npy -o y.npy --threads 4",
    .run = run_run,
};
