/* cmd_bench.c - `qforge bench MODEL`: time a model's session run on random
 * inputs and report latency percentiles, throughput, the planned arena and
 * the process's peak resident memory. MODEL is an ONNX file (float runtime)
 * or a .qfm file (integer runtime); qf_model_load tells them apart. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "io/qfm.h"
#include "runtime/runtime.h"

static const cli_opt bench_opts[] = {
    {"batch", 'b', "N", "batch size: the first axis of every input (default 1)"},
    {"threads", 't', "T", "worker threads (default 1)"},
    {"warmup", 'w', "W",
     "untimed runs before timing (default 2; the first run plans shapes and memory, "
     "so with 0 the first timed run includes planning)"},
    {"iters", 'n', "I", "timed runs (default: as many as fit in --seconds)"},
    {"seconds", 's', "S",
     "time budget for timed runs when --iters is absent (default 3; at least one run)"},
    {"seed", 0, "K", "seed of the random inputs (default 1)"},
    {"json", 0, NULL, "print one JSON object on stdout instead of the table"},
    {"profile", 'p', NULL,
     "after timing, run again for about a second with a per-node clock and print the "
     "time of every node and of every operator type (slowest first)"},
};

/* Upper bound on recorded runs, so a tiny model under a long --seconds
 * cannot grow the sample array without limit. */
#define BENCH_MAX_ITERS 1000000

typedef struct bench_cfg {
    const char *path;
    long long batch, threads, warmup, iters, seed;
    double seconds;
    bool json, profile;
} bench_cfg;

typedef struct bench_result {
    double load_ms, first_ms;
    double median_ms, p10_ms, p90_ms, mean_ms, min_ms, max_ms;
    double total_s;
    long long iters;
    size_t arena_bytes, scratch_bytes;
    int fused_adds;
    int batch_chunk;
    int batch_workers;
    unsigned long long adaptive_runs, serial_runs;
    long long peak_rss_bytes;
} bench_result;

/* xorshift64* and Box-Muller: inputs only need to be plausible activations
 * (roughly unit normal, like normalized images); no quality demands. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s) {
    return ((double)(rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void fill_random(qf_tensor *t, size_t n, uint64_t *s) {
    switch (t->dtype) {
    case QF_DT_F32: {
        float *p = t->data;
        for (size_t i = 0; i < n; i += 2) {
            double r = sqrt(-2.0 * log(rng_unit(s))), a = 6.283185307179586 * rng_unit(s);
            p[i] = (float)(r * cos(a));
            if (i + 1 < n) p[i + 1] = (float)(r * sin(a));
        }
        break;
    }
    case QF_DT_U8:
    case QF_DT_I8: {
        uint8_t *p = t->data;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(rng_next(s) >> 56);
        break;
    }
    default:
        /* integer index-like inputs: zeros are valid for any table size */
        memset(t->data, 0, n * qf_dtype_size(t->dtype));
        break;
    }
}

/* Input i with the batch axis set to `batch`; other dims must be static. */
static int make_input(const bench_cfg *c, const qf_model *m, int i, qf_tensor *t, uint64_t *rng) {
    const char *name = qf_model_input_name(m, i);
    if (qf_model_input_info(m, i, t) != QF_OK || t->rank < 0) {
        cli_error("%s: input '%s' has no declared shape; bench needs one", c->path, name);
        return CLI_EXIT_USAGE;
    }
    if (qf_dtype_size(t->dtype) == 0) {
        cli_error("%s: input '%s' has dtype %s, which bench cannot fill", c->path, name,
                  qf_dtype_name(t->dtype));
        return CLI_EXIT_USAGE;
    }
    if (t->rank >= 1) t->dims[0] = c->batch;
    size_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0) {
            cli_error("%s: input '%s' has a dynamic axis %d; bench sets only axis 0", c->path, name,
                      d);
            return CLI_EXIT_USAGE;
        }
        if (!qf_mul_size(n, (size_t)t->dims[d], &n)) goto too_big;
    }
    size_t bytes;
    if (!qf_mul_size(n, qf_dtype_size(t->dtype), &bytes) || bytes > ((size_t)1 << 34)) goto too_big;
    t->data = qf_malloc_aligned(bytes + 1);
    if (!t->data) {
        cli_error("out of memory (input '%s', %zu bytes)", name, bytes);
        return CLI_EXIT_FAIL;
    }
    fill_random(t, n, rng);
    return -1;
too_big:
    cli_error("%s: input '%s' at batch %lld is too large", c->path, name, c->batch);
    return CLI_EXIT_USAGE;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile q in [0,1] of sorted v by linear interpolation between ranks. */
static double percentile(const double *v, long long n, double q) {
    if (n == 1) return v[0];
    double pos = q * (double)(n - 1);
    long long lo = (long long)pos;
    if (lo >= n - 1) return v[n - 1];
    double f = pos - (double)lo;
    return v[lo] + f * (v[lo + 1] - v[lo]);
}

static long long peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (long long)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}

/* Warm up, then time runs until the iteration count or time budget is met. */
static int time_runs(const bench_cfg *c, qf_session *s, const qf_tensor *in, int n_in,
                     qf_tensor *out, int n_out, bench_result *r) {
    qf_err e = {0};
    qf_status st;
    for (long long w = 0; w < c->warmup; w++) {
        double t0 = cli_now();
        st = qf_session_run(s, in, n_in, out, n_out, &e);
        if (st) return cli_fail(&e, st);
        if (w == 0) r->first_ms = 1e3 * (cli_now() - t0);
    }
    long long cap = c->iters > 0 ? c->iters : 64;
    double *ms = qf_malloc((size_t)cap * sizeof *ms);
    if (!ms) goto oom;
    long long n = 0;
    double start = cli_now();
    for (;;) {
        if (c->iters > 0 && n >= c->iters) break;
        if (c->iters <= 0 && n >= 1 && cli_now() - start >= c->seconds) break;
        if (n >= BENCH_MAX_ITERS) break;
        if (n == cap) {
            double *grown = qf_realloc(ms, (size_t)cap * 2 * sizeof *ms);
            if (!grown) goto oom;
            ms = grown;
            cap *= 2;
        }
        double t0 = cli_now();
        st = qf_session_run(s, in, n_in, out, n_out, &e);
        if (st) {
            qf_free(ms);
            return cli_fail(&e, st);
        }
        ms[n] = 1e3 * (cli_now() - t0);
        /* without warm-up the first timed run is also the planning run */
        if (n++ == 0 && c->warmup == 0) r->first_ms = ms[0];
    }
    r->total_s = cli_now() - start;
    r->iters = n;
    double sum = 0;
    for (long long i = 0; i < n; i++)
        sum += ms[i];
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    r->median_ms = percentile(ms, n, 0.5);
    r->p10_ms = percentile(ms, n, 0.1);
    r->p90_ms = percentile(ms, n, 0.9);
    r->mean_ms = sum / (double)n;
    r->min_ms = ms[0];
    r->max_ms = ms[n - 1];
    qf_free(ms);
    return -1;
oom:
    qf_free(ms);
    cli_error("out of memory (timing samples)");
    return CLI_EXIT_FAIL;
}

static void print_inputs(FILE *f, const qf_model *m, const qf_tensor *in, int n_in, bool json) {
    char shape[256];
    for (int i = 0; i < n_in; i++) {
        cli_format_shape(shape, sizeof shape, in[i].rank, in[i].dims);
        if (json) {
            fprintf(f, "%s{\"name\": ", i ? ", " : "");
            cli_json_str(f, qf_model_input_name(m, i));
            fprintf(f, ", \"dtype\": \"%s\", \"shape\": [", qf_dtype_name(in[i].dtype));
            for (int d = 0; d < in[i].rank; d++)
                fprintf(f, "%s%lld", d ? ", " : "", (long long)in[i].dims[d]);
            fprintf(f, "]}");
        } else {
            fprintf(f, "%-11s%s %s %s\n", i ? "" : "inputs", qf_model_input_name(m, i), shape,
                    qf_dtype_name(in[i].dtype));
        }
    }
}

static void report(const bench_cfg *c, const char *kind, const qf_model *m, const qf_tensor *in,
                   int n_in, const bench_result *r) {
    double items = (double)c->batch * 1e3 / r->median_ms;
    if (c->json) {
        printf("{\"model\": ");
        cli_json_str(stdout, c->path);
        printf(", \"runtime\": \"%s\", \"batch\": %lld, \"threads\": %lld, \"warmup\": %lld, "
               "\"iters\": %lld, \"inputs\": [",
               kind, c->batch, c->threads, c->warmup, r->iters);
        print_inputs(stdout, m, in, n_in, true);
        /* %.9g keeps sub-microsecond runs exact enough that batch / median
         * reproduces items_per_s */
        printf("], \"load_ms\": %.3f, \"first_run_ms\": %.3f, \"median_ms\": %.9g, "
               "\"p10_ms\": %.9g, \"p90_ms\": %.9g, \"mean_ms\": %.9g, \"min_ms\": %.9g, "
               "\"max_ms\": %.9g, \"items_per_s\": %.9g, \"arena_bytes\": %zu, "
               "\"scratch_bytes\": %zu, \"fused_adds\": %d, \"batch_chunk\": %d, "
               "\"batch_workers\": %d, \"adaptive_runs\": %llu, \"serial_runs\": %llu, "
               "\"peak_rss_bytes\": %lld}\n",
               r->load_ms, r->first_ms, r->median_ms, r->p10_ms, r->p90_ms, r->mean_ms, r->min_ms,
               r->max_ms, items, r->arena_bytes, r->scratch_bytes, r->fused_adds, r->batch_chunk,
               r->batch_workers, r->adaptive_runs, r->serial_runs, r->peak_rss_bytes);
        return;
    }
    printf("%-11s%s (%s runtime)\n", "model", c->path, kind);
    print_inputs(stdout, m, in, n_in, false);
    printf("%-11sbatch %lld, %lld thread%s, %lld warm-up, %lld timed runs in %.2f s\n", "setup",
           c->batch, c->threads, c->threads == 1 ? "" : "s", c->warmup, r->iters, r->total_s);
    printf("%-11smedian %.3f ms  p10 %.3f ms  p90 %.3f ms  (min %.3f, mean %.3f)\n", "latency",
           r->median_ms, r->p10_ms, r->p90_ms, r->min_ms, r->mean_ms);
    printf("%-11s%.1f items/s\n", "throughput", items);
    printf("%-11s%.2f MiB (%zu bytes) activations + %.2f MiB (%zu bytes) kernel scratch\n", "arena",
           (double)r->arena_bytes / 1048576.0, r->arena_bytes, (double)r->scratch_bytes / 1048576.0,
           r->scratch_bytes);
    if (r->fused_adds)
        printf("%-11s%d residual add%s in the convolution epilogue\n", "fused", r->fused_adds,
               r->fused_adds == 1 ? "" : "s");
    if (r->batch_chunk && r->batch_workers > 1)
        printf("%-11sthe batch runs %lld images at a time through the whole graph (activations "
               "stay in cache), %d chunks at once, one per thread\n",
               "chunks", (long long)r->batch_chunk, r->batch_workers);
    else if (r->batch_chunk)
        printf("%-11sthe batch runs %lld images at a time through the whole graph (activations "
               "stay in cache)\n",
               "chunks", (long long)r->batch_chunk);
    if (r->adaptive_runs)
        printf("%-11s%llu of %llu timed runs on the calling thread alone (it measured faster "
               "then: adaptive threading)\n",
               "threads", r->serial_runs, r->adaptive_runs);
    printf("%-11s%.2f MiB\n", "peak RSS", (double)r->peak_rss_bytes / 1048576.0);
    printf("%-11sload %.1f ms, first run (plans) %.1f ms\n", "startup", r->load_ms, r->first_ms);
}

/* ---- per-node profile (--profile) ----------------------------------------
 * The session calls the observer right after each node, so the time since
 * the previous call (or the start of the run) is that node's time, plus the
 * negligible bookkeeping between kernels. Profiled runs are separate from
 * the timed ones so the clock reads never disturb the reported latency. */
typedef struct bench_prof {
    const qf_graph *g;
    double *node_s; /* accumulated seconds per graph node */
    double last;
    long long runs;
} bench_prof;

static qf_status prof_observe(void *user, const qf_graph *g, int node, const qf_tensor *out,
                              int n_out) {
    (void)out;
    (void)n_out;
    bench_prof *p = user;
    double now = cli_now();
    p->g = g;
    p->node_s[node] += now - p->last;
    p->last = now;
    return QF_OK;
}

typedef struct prof_row {
    const char *name, *op;
    const char *kernel; /* the op's kernel for these shapes, NULL when it does not say */
    double s;
} prof_row;

static int cmp_row(const void *a, const void *b) {
    double x = ((const prof_row *)a)->s, y = ((const prof_row *)b)->s;
    return (x < y) - (x > y);
}

/* Runs for about a second (at least 3 runs) with the observer, then prints
 * (or adds to the JSON object) the per-node and per-operator tables. */
static int profile_runs(const bench_cfg *c, qf_session *s, qf_model *m, const qf_tensor *in,
                        int n_in, qf_tensor *out, int n_out, int fused) {
    const qf_graph *g = qf_model_graph(m);
    bench_prof p = {.g = g};
    prof_row *rows = NULL, *ops = NULL;
    int n_ops = 0, rc = -1;
    p.node_s = qf_calloc((size_t)g->n_nodes + 1, sizeof *p.node_s);
    rows = qf_calloc((size_t)g->n_nodes + 1, sizeof *rows);
    ops = qf_calloc((size_t)g->n_nodes + 1, sizeof *ops);
    if (!p.node_s || !rows || !ops) {
        cli_error("out of memory (profile)");
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    qf_session_set_observer(s, prof_observe, &p);
    double start = cli_now();
    while (p.runs < 3 || (cli_now() - start < 1.0 && p.runs < BENCH_MAX_ITERS)) {
        qf_err e = {0};
        p.last = cli_now();
        qf_status st = qf_session_run(s, in, n_in, out, n_out, &e);
        if (st) {
            rc = cli_fail(&e, st);
            goto done;
        }
        p.runs++;
    }
    qf_session_set_observer(s, NULL, NULL);
    double total = 0;
    int n_rows = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (p.node_s[i] <= 0) continue;
        const qf_node *nd = &g->nodes[i];
        rows[n_rows++] = (prof_row){nd->name ? nd->name : "", nd->op_type,
                                    qf_session_node_kernel(s, i), p.node_s[i]};
        total += p.node_s[i];
        int k = 0;
        while (k < n_ops && strcmp(ops[k].op, nd->op_type) != 0)
            k++;
        if (k == n_ops) ops[n_ops++] = (prof_row){nd->op_type, nd->op_type, NULL, 0};
        ops[k].s += p.node_s[i];
    }
    qsort(rows, (size_t)n_rows, sizeof *rows, cmp_row);
    qsort(ops, (size_t)n_ops, sizeof *ops, cmp_row);
    double per = 1e3 / (double)p.runs, pct = total > 0 ? 100.0 / total : 0;
    if (c->json) {
        printf("{\"profile_runs\": %lld, \"ops\": [", p.runs);
        for (int k = 0; k < n_ops; k++) {
            printf("%s{\"op\": ", k ? ", " : "");
            cli_json_str(stdout, ops[k].op);
            printf(", \"ms\": %.6g, \"percent\": %.4g}", ops[k].s * per, ops[k].s * pct);
        }
        printf("], \"nodes\": [");
        for (int k = 0; k < n_rows; k++) {
            printf("%s{\"node\": ", k ? ", " : "");
            cli_json_str(stdout, rows[k].name);
            printf(", \"op\": ");
            cli_json_str(stdout, rows[k].op);
            if (rows[k].kernel) {
                printf(", \"kernel\": ");
                cli_json_str(stdout, rows[k].kernel);
            }
            printf(", \"ms\": %.6g, \"percent\": %.4g}", rows[k].s * per, rows[k].s * pct);
        }
        printf("]}\n");
    } else {
        printf("\nprofile    %lld runs, %.3f ms per run in nodes\n", p.runs, total * per);
        if (fused)
            printf("           (while profiled, the %d fused residual adds run as their own "
                   "nodes)\n",
                   fused);
        printf("\n  %-24s %10s %7s\n", "operator", "ms/run", "share");
        for (int k = 0; k < n_ops; k++)
            printf("  %-24s %10.4f %6.1f%%\n", ops[k].op, ops[k].s * per, ops[k].s * pct);
        printf("\n  %-40s %-18s %10s %7s  %s\n", "node", "operator", "ms/run", "share", "kernel");
        for (int k = 0; k < n_rows; k++)
            printf("  %-40.40s %-18.18s %10.4f %6.1f%%  %s\n", rows[k].name, rows[k].op,
                   rows[k].s * per, rows[k].s * pct, rows[k].kernel ? rows[k].kernel : "-");
    }
done:
    qf_session_set_observer(s, NULL, NULL);
    qf_free(p.node_s);
    qf_free(rows);
    qf_free(ops);
    return rc;
}

static bool parse_seconds(const cli_args *a, double *out) {
    const char *v = cli_get(a, "seconds");
    *out = 3.0;
    if (!v) return true;
    char *end;
    double s = strtod(v, &end);
    if (end == v || *end || !(s > 0) || s > 86400) {
        cli_usage_error(a->cmd, "--seconds wants a number of seconds in (0, 86400], not '%s'", v);
        return false;
    }
    *out = s;
    return true;
}

static int run_bench(const cli_args *a) {
    bench_cfg c = {
        .path = a->pos[0], .json = cli_flag(a, "json"), .profile = cli_flag(a, "profile")};
    if (!cli_get_int(a, "batch", 1, 1 << 20, 1, &c.batch) ||
        !cli_get_int(a, "threads", 1, 1024, 1, &c.threads) ||
        !cli_get_int(a, "warmup", 0, 1000000, 2, &c.warmup) ||
        !cli_get_int(a, "iters", 1, BENCH_MAX_ITERS, 0, &c.iters) ||
        !cli_get_int(a, "seed", 0, (1LL << 62), 1, &c.seed) || !parse_seconds(a, &c.seconds))
        return CLI_EXIT_USAGE;
    if (cli_get(a, "iters") && cli_get(a, "seconds"))
        return cli_usage_error(a->cmd, "give --iters or --seconds, not both");
    const char *kind = qf_qfm_file_has_magic(c.path) ? "int8" : "fp32";

    bench_result r;
    memset(&r, 0, sizeof r);
    qf_err e = {0};
    qf_model *m = NULL;
    double t0 = cli_now();
    qf_status st = qf_model_load(c.path, &m, &e);
    if (st) return cli_fail(&e, st);
    r.load_ms = 1e3 * (cli_now() - t0);
    int n_in = qf_model_num_inputs(m), n_out = qf_model_num_outputs(m);
    qf_tensor *in = qf_calloc((size_t)n_in + 1, sizeof *in);
    qf_tensor *out = qf_calloc((size_t)n_out + 1, sizeof *out);
    qf_session *s = NULL;
    int rc = -1;
    if (!in || !out) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    }
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)c.seed;
    for (int i = 0; rc < 0 && i < n_in; i++)
        rc = make_input(&c, m, i, &in[i], &rng);
    qf_session_options so = {.num_threads = (int)c.threads};
    if (rc < 0 && (st = qf_session_create(m, &so, &s, &e)) != QF_OK) rc = cli_fail(&e, st);
    if (rc < 0) rc = time_runs(&c, s, in, n_in, out, n_out, &r);
    if (rc < 0) {
        r.arena_bytes = qf_session_arena_bytes(s);
        r.scratch_bytes = qf_session_scratch_bytes(s);
        r.fused_adds = qf_session_fused_adds(s);
        r.batch_chunk = qf_session_batch_chunk(s);
        r.batch_workers = qf_session_batch_workers(s);
        uint64_t timed = 0, serial = 0;
        qf_session_adaptive_runs(s, &timed, &serial);
        r.adaptive_runs = timed;
        r.serial_runs = serial;
        r.peak_rss_bytes = peak_rss_bytes();
        report(&c, kind, m, in, n_in, &r);
        rc = c.profile ? profile_runs(&c, s, m, in, n_in, out, n_out, r.fused_adds) : -1;
        if (rc < 0) rc = CLI_EXIT_OK;
    }
    qf_session_free(s);
    for (int i = 0; in && i < n_in; i++)
        qf_free_aligned(in[i].data);
    qf_free(in);
    qf_free(out);
    qf_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_bench = {
    .name = "bench",
    .summary = "time a model on random inputs: latency, throughput, memory",
    .usage = "MODEL.onnx|MODEL.qfm [--batch N] [--threads T] [--iters I | --seconds S] "
             "[options]",
    .description =
        "Runs the model on random inputs (unit normal for float inputs) of its declared\n"
        "shape with the first axis set to --batch, after --warmup untimed runs, and reports\n"
        "the median, p10 and p90 latency of the timed runs, throughput (batch / median),\n"
        "the planned activation arena and the process's peak resident memory. An .onnx\n"
        "model runs on the float runtime, a .qfm model on the integer runtime.\n"
        "--profile adds where the time goes: each node's and each operator type's share\n"
        "of a run (with --json, a second JSON object on its own line), and for integer\n"
        "convolutions and fully connected layers the kernel that runs them:\n"
        "\"x86 avx512vnni\", \"x86 avx2\" (AVX2 without VNNI: plain vpmaddubsw), \"x86 avx2\n"
        "split\" (plus exact fix-ups for weight pairs that could saturate it), \"x86 avx2\n"
        "sign\" (|activation| times the weight with the activation's sign: exact, about\n"
        "1.45x the plain form's time; 'qforge quantize --reduce-range' avoids both),\n"
        "\"x86 avx2 16-bit\" (vpmaddwd: weights at -128, from other packers), \"x86\n"
        "depthwise ...\", \"portable\" (plain C) or \"reference\" (the slow specification\n"
        "kernel: a layer no fast kernel takes).",
    .opts = bench_opts,
    .n_opts = (int)QF_ARRAY_LEN(bench_opts),
    .min_pos = 1,
    .max_pos = 1,
    .example = "  qforge bench mobilenetv2.qfm --batch 64 --threads 2 --seconds 5\n"
               "  qforge bench resnet18.onnx --iters 20 --json\n"
               "  qforge bench model.qfm --profile",
    .run = run_bench,
};
