/* ab_harness.c - in-process A/B timing of two builds of libqforge.
 *
 * bench/ab.sh links two static libraries into this program: A with its
 * normal symbol names, B with every global symbol renamed B_qf_... (objcopy
 * --redefine-syms), so both builds live in one process. Each repetition
 * runs A and B back to back on the same input, in alternating order, and
 * the report gives each side's median and the median (and quartiles) of
 * the per-repetition ratio A/B: the machine's drift, which moves both runs
 * of a pair alike, mostly cancels. On the shared 2-core VMs this project is
 * measured on, medians of separate processes moved by +-30% within minutes
 * while the paired ratio of identical builds stayed within 1.00 +- 0.03.
 *
 * Usage: ab_harness MODEL BATCH THREADS REPS
 * (random input in [-1, 1) of the model's first input shape, batch set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qforge.h"

/* build B's entry points (the same signatures as qforge.h's) */
qf_status B_qf_model_load(const char *path, qf_model **out, qf_err *err);
qf_status B_qf_session_create(const qf_model *m, const qf_session_options *opt, qf_session **out,
                              qf_err *err);
qf_status B_qf_session_run(qf_session *s, const qf_tensor *inputs, int n_inputs, qf_tensor *outputs,
                           int n_outputs, qf_err *err);
void B_qf_session_free(qf_session *s);
void B_qf_model_free(qf_model *m);

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: ab_harness MODEL BATCH THREADS REPS\n");
        return 2;
    }
    const char *path = argv[1];
    const int batch = atoi(argv[2]), threads = atoi(argv[3]), reps = atoi(argv[4]);
    if (batch < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "ab_harness: BATCH, THREADS and REPS must be positive\n");
        return 2;
    }
    qf_err e;
    qf_model *ma = NULL, *mb = NULL;
    qf_session *sa = NULL, *sb = NULL;
    const qf_session_options o = {threads};
    if (qf_model_load(path, &ma, &e) || B_qf_model_load(path, &mb, &e) ||
        qf_session_create(ma, &o, &sa, &e) || B_qf_session_create(mb, &o, &sb, &e)) {
        fprintf(stderr, "ab_harness: %s\n", e.msg);
        return 1;
    }
    qf_tensor in;
    if (qf_model_input_info(ma, 0, &in) || in.rank < 1 || in.dtype != QF_DT_F32) {
        fprintf(stderr, "ab_harness: %s: the first input must be a float tensor\n", path);
        return 1;
    }
    in.dims[0] = batch;
    size_t n = 1;
    for (int i = 0; i < in.rank; i++) {
        if (in.dims[i] < 1) {
            fprintf(stderr, "ab_harness: %s: input dimension %d is not fixed\n", path, i);
            return 1;
        }
        n *= (size_t)in.dims[i];
    }
    float *x = malloc(n * sizeof *x);
    double *ta = malloc((size_t)reps * sizeof *ta), *tb = malloc((size_t)reps * sizeof *tb);
    double *r = malloc((size_t)reps * sizeof *r);
    if (!x || !ta || !tb || !r) {
        fprintf(stderr, "ab_harness: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    in.data = x;
    qf_tensor out[8];
    const int n_out = qf_model_num_outputs(ma) < 8 ? qf_model_num_outputs(ma) : 8;
    for (int w = 0; w < 2; w++)
        if (qf_session_run(sa, &in, 1, out, n_out, &e) ||
            B_qf_session_run(sb, &in, 1, out, n_out, &e)) {
            fprintf(stderr, "ab_harness: %s\n", e.msg);
            return 1;
        }
    for (int i = 0; i < reps; i++) {
        const double t0 = now_s();
        qf_status s1 = i & 1 ? B_qf_session_run(sb, &in, 1, out, n_out, &e)
                             : qf_session_run(sa, &in, 1, out, n_out, &e);
        const double t1 = now_s();
        qf_status s2 = i & 1 ? qf_session_run(sa, &in, 1, out, n_out, &e)
                             : B_qf_session_run(sb, &in, 1, out, n_out, &e);
        const double t2 = now_s();
        if (s1 || s2) { /* a failed run would time as a fast one */
            fprintf(stderr, "ab_harness: %s\n", e.msg);
            return 1;
        }
        ta[i] = i & 1 ? t2 - t1 : t1 - t0;
        tb[i] = i & 1 ? t1 - t0 : t2 - t1;
        r[i] = ta[i] / tb[i];
    }
    qsort(ta, (size_t)reps, sizeof *ta, cmp_d);
    qsort(tb, (size_t)reps, sizeof *tb, cmp_d);
    qsort(r, (size_t)reps, sizeof *r, cmp_d);
    printf("%s batch %d, %d thread(s), %d pairs: A %.3f ms, B %.3f ms (medians); "
           "B speed-up A/B: median %.3f, quartiles %.3f-%.3f\n",
           path, batch, threads, reps, ta[reps / 2] * 1e3, tb[reps / 2] * 1e3, r[reps / 2],
           r[reps / 4], r[3 * reps / 4]);
    qf_session_free(sa);
    B_qf_session_free(sb);
    qf_model_free(ma);
    B_qf_model_free(mb);
    free(x);
    free(ta);
    free(tb);
    free(r);
    return 0;
}
