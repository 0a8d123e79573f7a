/* test_check.c - qforge check's findings on models built node by node: a
 * NaN weight fails; an all-zero channel and a never-active ReLU warn;
 * BatchNorm statistics deliberately off by 3 std warn with z = 3; exploding,
 * vanishing and outlier weights warn with the ratios a naive loop computes;
 * a train/validation gap of 50 points warns; a healthy model is all ok.
 * Data statistics are checked against a naive scalar convolution written
 * here; datasets are NPY files written to a temp directory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/data.h"
#include "pipeline/check.h"
#include "qtest.h"

#define N_SAMPLES 64
#define C_IN 2
#define C_OUT 4
#define HW 4

static uint32_t rng = 12345u;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* ---- graph building ------------------------------------------------- */
static int cnst(qf_graph *g, const char *name, int rank, const int64_t *dims, const float *data) {
    int v = qf_graph_add_value(g, name, QF_DT_F32, rank, dims);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    qf_err e;
    if (v < 0 || qf_graph_set_const(g, v, &t, &e)) return -1;
    return v;
}

static qf_attr attr_ints(const char *name, int64_t *v, int n) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INTS;
    a.ints = v;
    a.n = n;
    return a;
}

static qf_attr attr_i(const char *name, int64_t v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INT;
    a.i = v;
    return a;
}

static qf_graph *finish(qf_graph *g) {
    qf_err e;
    e.msg[0] = 0;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e)) {
        fprintf(stderr, "  graph setup failed: %s\n", e.msg);
        qf_graph_free(g);
        return NULL;
    }
    return g;
}

/* The conv model: x[N,2,4,4] -> Conv 3x3 pad 1 -> BN -> Relu ->
 * GlobalAveragePool -> Flatten -> Gemm(transB) -> logits[N,3]. */
typedef struct conv_model {
    float w[C_OUT * C_IN * 9], b[C_OUT];
    float gamma[C_OUT], beta[C_OUT], mean[C_OUT], var[C_OUT];
    float fc_w[3 * C_OUT], fc_b[3];
} conv_model;

static qf_graph *build_conv(const conv_model *m) {
    qf_graph *g = qf_graph_create();
    if (!g) return NULL;
    int64_t xd[4] = {-1, C_IN, HW, HW}, wd[4] = {C_OUT, C_IN, 3, 3}, cd[1] = {C_OUT};
    int64_t fd[2] = {3, C_OUT}, fbd[1] = {3};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    int w = cnst(g, "conv.w", 4, wd, m->w), b = cnst(g, "conv.b", 1, cd, m->b);
    int ga = cnst(g, "bn.gamma", 1, cd, m->gamma), be = cnst(g, "bn.beta", 1, cd, m->beta);
    int mu = cnst(g, "bn.mean", 1, cd, m->mean), va = cnst(g, "bn.var", 1, cd, m->var);
    int fw = cnst(g, "fc.w", 2, fd, m->fc_w), fb = cnst(g, "fc.b", 1, fbd, m->fc_b);
    int c = qf_graph_add_value(g, "c", QF_DT_UNDEF, -1, NULL);
    int n = qf_graph_add_value(g, "n", QF_DT_UNDEF, -1, NULL);
    int r = qf_graph_add_value(g, "r", QF_DT_UNDEF, -1, NULL);
    int p = qf_graph_add_value(g, "p", QF_DT_UNDEF, -1, NULL);
    int f = qf_graph_add_value(g, "f", QF_DT_UNDEF, -1, NULL);
    int y = qf_graph_add_value(g, "logits", QF_DT_UNDEF, -1, NULL);
    qf_graph_add_output(g, y);
    int64_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
    qf_attr ca[2] = {attr_ints("pads", pads, 4), attr_ints("kernel_shape", ks, 2)};
    qf_attr ga1[1] = {attr_i("transB", 1)};
    int ci[3] = {x, w, b}, bi[5] = {c, ga, be, mu, va}, gi[3] = {f, fw, fb};
    qf_graph_add_node(g, "conv", "Conv", "", 13, ci, 3, &c, 1, ca, 2);
    qf_graph_add_node(g, "bn", "BatchNormalization", "", 13, bi, 5, &n, 1, NULL, 0);
    qf_graph_add_node(g, "relu", "Relu", "", 13, &n, 1, &r, 1, NULL, 0);
    qf_graph_add_node(g, "gap", "GlobalAveragePool", "", 13, &r, 1, &p, 1, NULL, 0);
    qf_graph_add_node(g, "flat", "Flatten", "", 13, &p, 1, &f, 1, NULL, 0);
    qf_graph_add_node(g, "fc", "Gemm", "", 13, gi, 3, &y, 1, ga1, 1);
    return finish(g);
}

/* x[N,K] -> Gemm(W[M,K], transB) -> y: for the weight and accuracy checks. */
static qf_graph *build_gemm(int64_t m, int64_t k, const float *w) {
    qf_graph *g = qf_graph_create();
    if (!g) return NULL;
    int64_t xd[2] = {-1, k}, wd[2] = {m, k};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 2, xd);
    qf_graph_add_input(g, x);
    int wv = cnst(g, "fc.w", 2, wd, w);
    int y = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    qf_graph_add_output(g, y);
    qf_attr a[1] = {attr_i("transB", 1)};
    int in[2] = {x, wv};
    qf_graph_add_node(g, "fc", "Gemm", "", 13, in, 2, &y, 1, a, 1);
    return finish(g);
}

/* ---- data ------------------------------------------------------------- */
static char tmpdir[64];
static float conv_x[N_SAMPLES * C_IN * HW * HW];

static bool ensure_tmpdir(void) {
    if (tmpdir[0]) return true;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qf_test_check.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = 0;
        return false;
    }
    return true;
}

/* Write x (float, [n, dims...]) and labels as NPY and open them. */
static qf_dataset *make_dataset(const char *tag, const float *x, int rank, const int64_t *dims,
                                const int32_t *labels) {
    if (!ensure_tmpdir()) return NULL;
    char xp[128], yp[128];
    snprintf(xp, sizeof xp, "%s/%s_x.npy", tmpdir, tag);
    snprintf(yp, sizeof yp, "%s/%s_y.npy", tmpdir, tag);
    qf_tensor xt = {.dtype = QF_DT_F32, .rank = rank, .data = (void *)x};
    for (int i = 0; i < rank; i++)
        xt.dims[i] = dims[i];
    qf_tensor yt = {.dtype = QF_DT_I32, .rank = 1, .dims = {dims[0]}, .data = (void *)labels};
    qf_err e;
    qf_dataset *d = NULL;
    if (qf_npy_write(xp, &xt, &e) || qf_npy_write(yp, &yt, &e) ||
        qf_dataset_open(xp, yp, NULL, &d, &e)) {
        fprintf(stderr, "  dataset: %s\n", e.msg);
        return NULL;
    }
    return d;
}

/* Naive 3x3 pad-1 convolution statistics of the conv output over the
 * conv data: per-channel mean and (population) variance. */
static void conv_stats(const conv_model *m, double *mean, double *var) {
    for (int oc = 0; oc < C_OUT; oc++) {
        double s = 0, s2 = 0;
        for (int n = 0; n < N_SAMPLES; n++)
            for (int oy = 0; oy < HW; oy++)
                for (int ox = 0; ox < HW; ox++) {
                    double acc = m->b[oc];
                    for (int ic = 0; ic < C_IN; ic++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = oy + ky - 1, ix = ox + kx - 1;
                                if (iy < 0 || iy >= HW || ix < 0 || ix >= HW) continue;
                                acc += (double)m->w[((oc * C_IN + ic) * 3 + ky) * 3 + kx] *
                                       conv_x[((n * C_IN + ic) * HW + iy) * HW + ix];
                            }
                    s += acc;
                    s2 += acc * acc;
                }
        double cnt = (double)N_SAMPLES * HW * HW;
        mean[oc] = s / cnt;
        var[oc] = s2 / cnt - mean[oc] * mean[oc];
    }
}

/* Random weights; BN running stats equal to the data's (a healthy model). */
static void healthy_conv(conv_model *m) {
    rng = 777u;
    for (size_t i = 0; i < QF_ARRAY_LEN(m->w); i++)
        m->w[i] = 0.4f * frand();
    for (int c = 0; c < C_OUT; c++) {
        m->b[c] = 0.1f * frand();
        m->gamma[c] = 1.0f;
        m->beta[c] = 0.1f;
    }
    for (size_t i = 0; i < QF_ARRAY_LEN(m->fc_w); i++)
        m->fc_w[i] = frand();
    for (int i = 0; i < 3; i++)
        m->fc_b[i] = 0;
    for (size_t i = 0; i < QF_ARRAY_LEN(conv_x); i++)
        conv_x[i] = frand();
    double mean[C_OUT], var[C_OUT];
    conv_stats(m, mean, var);
    for (int c = 0; c < C_OUT; c++) {
        m->mean[c] = (float)mean[c];
        m->var[c] = (float)var[c];
    }
}

static qf_dataset *conv_data(void) {
    static int32_t labels[N_SAMPLES];
    for (int i = 0; i < N_SAMPLES; i++)
        labels[i] = i % 3;
    int64_t d[4] = {N_SAMPLES, C_IN, HW, HW};
    return make_dataset("conv", conv_x, 4, d, labels);
}

/* ---- helpers on results ------------------------------------------------ */
static const qf_check_finding *find(const qf_check_result *r, const char *check,
                                    const char *subject) {
    for (int i = 0; i < r->n_findings; i++)
        if (strcmp(r->findings[i].check, check) == 0 &&
            (!subject || strcmp(r->findings[i].subject, subject) == 0))
            return &r->findings[i];
    return NULL;
}

static int count_sev(const qf_check_result *r, qf_severity s) {
    int n = 0;
    for (int i = 0; i < r->n_findings; i++)
        n += r->findings[i].severity == s;
    return n;
}

/* Run the check on the conv model with the conv data. */
static qf_status run_conv(const conv_model *m, qf_check_result *res) {
    qf_graph *g = build_conv(m);
    qf_dataset *d = conv_data();
    qf_err e;
    e.msg[0] = 0;
    qf_status s = QF_ERR_INTERNAL;
    if (g && d) {
        qf_check_options o = {.data = d, .batch = 16};
        s = qf_check_model(g, &o, res, &e);
        if (s) fprintf(stderr, "  check: %s\n", e.msg);
    }
    qf_dataset_free(d);
    qf_graph_free(g);
    return s;
}

/* ---- cases ------------------------------------------------------------- */
static void healthy_model_all_ok(void) {
    conv_model m;
    healthy_conv(&m);
    qf_check_result r;
    CHECK_OK(run_conv(&m, &r));
    int warn = count_sev(&r, QF_SEV_WARN), fail = count_sev(&r, QF_SEV_FAIL);
    const qf_check_finding *bn = find(&r, "bn_stats", "model");
    const qf_check_finding *relu = find(&r, "dead_relu", "model");
    const qf_check_finding *nan = find(&r, "nan_inf", "model");
    bool ok = bn && relu && nan && bn->severity == QF_SEV_OK && bn->value < 1e-3 &&
              r.samples_data == N_SAMPLES && isfinite(r.top1_data) && r.n_ok == r.n_findings;
    for (int i = 0; i < r.n_findings && warn + fail; i++)
        if (r.findings[i].severity)
            fprintf(stderr, "  unexpected: %s %s: %s\n", r.findings[i].check, r.findings[i].subject,
                    r.findings[i].message);
    qf_check_result_free(&r);
    CHECK_EQ_INT(warn, 0);
    CHECK_EQ_INT(fail, 0);
    CHECK(ok);
}

static void nan_weight_fails(void) {
    conv_model m;
    healthy_conv(&m);
    m.w[5] = NAN;
    m.fc_w[2] = INFINITY;
    qf_check_result r;
    CHECK_OK(run_conv(&m, &r));
    const qf_check_finding *a = find(&r, "nan_inf", "conv (conv.w)");
    const qf_check_finding *b = find(&r, "nan_inf", "fc (fc.w)");
    const qf_check_finding *act = find(&r, "nan_activation", NULL);
    bool ok = a && b && act && a->severity == QF_SEV_FAIL && a->value == 1 &&
              b->severity == QF_SEV_FAIL && b->value == 1 && act->severity == QF_SEV_FAIL &&
              r.n_fail >= 3;
    qf_check_result_free(&r);
    CHECK(ok);
}

static void dead_channel_warns(void) {
    conv_model m;
    healthy_conv(&m);
    /* channel 2: all-zero weights and bias -> conv output 0; BN maps it to
     * beta = -1 (mean 0, var 0), so the ReLU never fires there */
    for (int i = 0; i < C_IN * 9; i++)
        m.w[2 * C_IN * 9 + i] = 0;
    m.b[2] = 0;
    m.mean[2] = 0;
    m.var[2] = 0;
    m.beta[2] = -1;
    qf_check_result r;
    CHECK_OK(run_conv(&m, &r));
    const qf_check_finding *dw = find(&r, "dead_weights", "conv");
    const qf_check_finding *dr = find(&r, "dead_relu", "relu");
    const qf_check_finding *bn = find(&r, "bn_stats", "model");
    bool ok = dw && dr && bn && dw->severity == QF_SEV_WARN && dw->value == 1 &&
              dr->severity == QF_SEV_WARN && fabs(dr->value - 0.25) < 1e-12 &&
              bn->severity == QF_SEV_OK && r.n_fail == 0;
    qf_check_result_free(&r);
    CHECK(ok);
}

static void all_relu_dead_fails(void) {
    conv_model m;
    healthy_conv(&m);
    for (int c = 0; c < C_OUT; c++) {
        m.gamma[c] = 0; /* BN output = beta = -1 everywhere */
        m.beta[c] = -1;
    }
    qf_check_result r;
    CHECK_OK(run_conv(&m, &r));
    const qf_check_finding *dr = find(&r, "dead_relu", "relu");
    bool ok = dr && dr->severity == QF_SEV_FAIL && dr->value == 1.0 && r.n_fail == 1;
    qf_check_result_free(&r);
    CHECK(ok);
}

static void bn_stats_off_warn(void) {
    static const struct {
        double z;      /* mean offset of channel 1, in running std */
        double vscale; /* running var = data var * vscale for channel 3 */
        bool warn;
        double value; /* expected measured number */
    } cases[] = {
        {3.0, 1.0, true, 3.0},  /* mean off: z = 3 */
        {0.5, 1.0, false, 0.5}, /* within threshold: ok, largest z 0.5 */
        {0.0, 10.0, true, 0.1}, /* running var 10x the data's: ratio 0.1 */
    };
    for (size_t t = 0; t < QF_ARRAY_LEN(cases); t++) {
        conv_model m;
        healthy_conv(&m);
        m.var[3] = (float)(m.var[3] * cases[t].vscale);
        m.mean[1] = (float)(m.mean[1] + cases[t].z * sqrt((double)m.var[1] + 1e-5));
        double eps = 1e-5;
        double exp_val =
            cases[t].z > 0 ? cases[t].value
                           : ((double)m.var[3] / cases[t].vscale + eps) / ((double)m.var[3] + eps);
        qf_check_result r;
        CHECK_OK(run_conv(&m, &r));
        const qf_check_finding *f = find(&r, "bn_stats", cases[t].warn ? "bn" : "model");
        bool ok = f && f->severity == (cases[t].warn ? QF_SEV_WARN : QF_SEV_OK) &&
                  fabs(f->value - exp_val) < 1e-3 * QF_MAX(1.0, exp_val);
        double got = f ? f->value : NAN;
        qf_check_result_free(&r);
        CHECK_MSG(ok, "case %zu: value %g, wanted %g", t, got, exp_val);
    }
}

/* std * sqrt(fan_in) of a weight matrix, computed plainly. */
static double gain_of(const float *w, int n, int fan_in) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++)
        s += w[i];
    double mean = s / n;
    for (int i = 0; i < n; i++)
        s2 += (w[i] - mean) * (w[i] - mean);
    return sqrt(s2 / n) * sqrt((double)fan_in);
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void weight_scale_and_outliers(void) {
    enum { M = 40, K = 50 };
    static float w[M * K];
    static const struct {
        const char *what;
        float mul;     /* all weights scaled */
        float outlier; /* w[123] set to this when non-zero */
        const char *check;
        qf_severity sev;
    } cases[] = {
        {"exploding", 20.0f, 0, "weight_scale", QF_SEV_WARN},
        {"vanishing", 0.001f, 0, "weight_scale", QF_SEV_WARN},
        {"outlier", 1.0f, 50.0f, "outliers", QF_SEV_WARN},
        {"healthy gain", 1.0f, 0, "weight_scale", QF_SEV_OK},
        {"healthy range", 1.0f, 0, "outliers", QF_SEV_OK},
    };
    for (size_t t = 0; t < QF_ARRAY_LEN(cases); t++) {
        rng = 4242u;
        for (int i = 0; i < M * K; i++)
            w[i] = cases[t].mul * frand();
        if (cases[t].outlier != 0) w[123] = cases[t].outlier;
        double expect;
        if (strcmp(cases[t].check, "weight_scale") == 0) {
            expect = gain_of(w, M * K, K);
        } else {
            static float a[M * K];
            for (int i = 0; i < M * K; i++)
                a[i] = fabsf(w[i]);
            qsort(a, M * K, sizeof(float), cmp_f);
            /* 99.9th percentile: rank ceil(0.999 n) (1-based) */
            expect = a[M * K - 1] / a[(int)ceil(0.999 * M * K) - 1];
        }
        qf_graph *g = build_gemm(M, K, w);
        CHECK(g);
        qf_check_result r;
        qf_err e;
        qf_status s = qf_check_model(g, NULL, &r, &e);
        qf_graph_free(g);
        CHECK_OK(s);
        const qf_check_finding *f =
            find(&r, cases[t].check, cases[t].sev == QF_SEV_OK ? "model" : "fc");
        bool ok =
            f && f->severity == cases[t].sev && fabs(f->value - expect) <= 1e-4 * fabs(expect);
        double got = f ? f->value : NAN;
        qf_check_result_free(&r);
        CHECK_MSG(ok, "%s: %s value %g, wanted %g", cases[t].what, cases[t].check, got, expect);
    }
}

static void overfit_gap(void) {
    enum { N = 40, K = 4 };
    float ident[K * K] = {0}, x[N * K];
    for (int i = 0; i < K; i++)
        ident[i * K + i] = 1;
    int32_t lab_train[N], lab_val[N];
    rng = 99u;
    for (int n = 0; n < N; n++) {
        int best = 0;
        for (int k = 0; k < K; k++) {
            x[n * K + k] = frand();
            if (x[n * K + k] > x[n * K + best]) best = k;
        }
        lab_train[n] = best;                            /* identity model: 100% */
        lab_val[n] = n < N / 2 ? best : (best + 1) % K; /* 50% */
    }
    int64_t d[2] = {N, K};
    qf_dataset *tr = make_dataset("gap_train", x, 2, d, lab_train);
    qf_dataset *va = make_dataset("gap_val", x, 2, d, lab_val);
    qf_graph *g = build_gemm(K, K, ident);
    CHECK(tr && va && g);
    qf_check_result r, r2;
    qf_err e;
    qf_check_options o = {.data = va, .train = tr, .batch = 8};
    qf_status s = qf_check_model(g, &o, &r, &e);
    qf_check_options o2 = {.data = tr, .train = tr, .limit = 30};
    qf_status s2 = qf_check_model(g, &o2, &r2, &e);
    qf_graph_free(g);
    qf_dataset_free(tr);
    qf_dataset_free(va);
    CHECK_OK(s);
    CHECK_OK(s2);
    const qf_check_finding *f = find(&r, "overfit", NULL), *f2 = find(&r2, "overfit", NULL);
    bool ok = f && f->severity == QF_SEV_WARN && fabs(f->value - 50.0) < 1e-9 &&
              fabs(r.top1_train - 1.0) < 1e-12 && fabs(r.top1_data - 0.5) < 1e-12 && f2 &&
              f2->severity == QF_SEV_OK && f2->value == 0 && r2.samples_data == 30 &&
              r2.samples_train == 30;
    qf_check_result_free(&r);
    qf_check_result_free(&r2);
    CHECK(ok);
}

static void bad_data_shape(void) {
    float w[16] = {0}, x[12] = {0};
    int32_t lab[4] = {0};
    int64_t d[2] = {4, 3};
    qf_dataset *ds = make_dataset("bad", x, 2, d, lab);
    qf_graph *g = build_gemm(4, 4, w);
    CHECK(ds && g);
    qf_check_result r;
    qf_err e;
    e.msg[0] = 0;
    qf_check_options o = {.data = ds};
    qf_status s = qf_check_model(g, &o, &r, &e);
    qf_graph_free(g);
    qf_dataset_free(ds);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    CHECK(strstr(e.msg, "model input 'x' takes 4") != NULL);
    CHECK_EQ_INT(r.n_findings, 0);
}

static void findings_into_report(void) {
    conv_model m;
    healthy_conv(&m);
    m.w[0] = NAN;
    qf_check_result r;
    CHECK_OK(run_conv(&m, &r));
    qf_report *rep = NULL;
    qf_err e;
    CHECK_OK(qf_report_create("check", &rep, &e));
    qf_status s = qf_check_to_report(&r, rep, &e);
    bool ok = s == QF_OK && rep->n_findings == r.n_findings;
    for (int i = 0; ok && i < r.n_findings; i++)
        ok = rep->findings[i].severity == r.findings[i].severity &&
             strcmp(rep->findings[i].subject, r.findings[i].subject) == 0 &&
             (isnan(r.findings[i].value) ? isnan(rep->findings[i].value)
                                         : rep->findings[i].value == r.findings[i].value);
    qf_report_free(rep);
    qf_check_result_free(&r);
    CHECK(ok);
}

static void cleanup(void) {
    /* not a test of its own: removes the NPY files (always passes) */
    if (!tmpdir[0]) return;
    static const char *const tags[] = {"conv", "gap_train", "gap_val", "bad"};
    char p[160];
    for (size_t i = 0; i < QF_ARRAY_LEN(tags); i++) {
        snprintf(p, sizeof p, "%s/%s_x.npy", tmpdir, tags[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s_y.npy", tmpdir, tags[i]);
        unlink(p);
    }
    CHECK(rmdir(tmpdir) == 0);
}

QT_MAIN(QT_CASE(healthy_model_all_ok), QT_CASE(nan_weight_fails), QT_CASE(dead_channel_warns),
        QT_CASE(all_relu_dead_fails), QT_CASE(bn_stats_off_warn),
        QT_CASE(weight_scale_and_outliers), QT_CASE(overfit_gap), QT_CASE(bad_data_shape),
        QT_CASE(findings_into_report), QT_CASE(cleanup))
