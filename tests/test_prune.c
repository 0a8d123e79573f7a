/* test_prune.c - pruning and weight sharing (src/prune).
 *
 * References, all independent of the code under test:
 *  - magnitude pruning: thresholds from a plain sorted copy of |w| (qsort
 *    here), checked against which weights became zero and how many;
 *  - N:M: every run of M along the reduction axis is re-sorted here and its
 *    N largest must be the kept ones;
 *  - the polynomial schedule: values computed by hand from the formula;
 *  - structured removal: small graphs built by hand whose removed channels
 *    are inert (zero filter and bias, zero BN mean/beta) give the same
 *    outputs before and after removal (1e-5) on random inputs, for a plain
 *    chain with BN, a residual block, a depthwise block, Flatten->Gemm and
 *    a Concat; shapes and MACs after removal are hand-computed;
 *  - k-means, the centroid gradient, L1 and group lasso: worked by hand
 *    (comments below), group lasso's gradient also by finite differences;
 *  - sensitivity: accuracy recomputed with a naive matmul in the test (for
 *    the structured scan, a naive MLP leaving out the lowest-L1 units);
 *  - shared/Identity-fed constants and a run-time Reshape target: outputs
 *    unchanged, resp. an error naming the node with the graph untouched;
 *  - automatic sparsity: a hand-worked greedy example. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/data.h"
#include "ir/graph.h"
#include "ir/ops.h"
#include "ir/passes.h"
#include "prune/prune.h"
#include "qtest.h"
#include "runtime/runtime.h"

#define OPSET 13

/* ---- deterministic random numbers -------------------------------------- */
static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}
static void fill_rand(float *p, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
}

/* ---- graph building ---------------------------------------------------- */
static int add_input(qf_graph *g, const char *name, int rank, const int64_t *dims) {
    int v = qf_graph_add_value(g, name, QF_DT_F32, rank, dims);
    qf_graph_add_input(g, v);
    return v;
}

static int add_tmp(qf_graph *g, const char *name) {
    return qf_graph_add_value(g, name, QF_DT_UNDEF, -1, NULL);
}

static int add_const(qf_graph *g, const char *name, qf_dtype dt, int rank, const int64_t *dims,
                     const void *data) {
    int v = qf_graph_add_value(g, name, dt, rank, dims);
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    t.data = (void *)data;
    if (v < 0 || qf_graph_set_const(g, v, &t, NULL)) return -1;
    return v;
}

/* A random float constant. */
static int add_rand(qf_graph *g, const char *name, int rank, const int64_t *dims, float scale) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *p = malloc(sizeof(float) * (size_t)n);
    fill_rand(p, (size_t)n, scale);
    int v = add_const(g, name, QF_DT_F32, rank, dims, p);
    free(p);
    return v;
}

static float *cdata(qf_graph *g, const char *name) {
    int v = qf_graph_find_value(g, name);
    return v >= 0 ? g->values[v].data : NULL;
}

static qf_attr attr_i(const char *name, int64_t v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INT;
    a.i = v;
    return a;
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

static void node(qf_graph *g, const char *name, const char *op, const int *in, int n_in, int out,
                 const qf_attr *attrs, int n_attrs) {
    qf_graph_add_node(g, name, op, "", OPSET, in, n_in, &out, 1, attrs, n_attrs);
}

/* Conv with `m` filters of k x k (pad k/2) over `c` input channels. */
static int conv(qf_graph *g, const char *name, int x, int64_t c, int64_t m, int64_t k,
                int64_t group) {
    char wn[64], bn[64], on[64];
    snprintf(wn, sizeof wn, "%s.w", name);
    snprintf(bn, sizeof bn, "%s.b", name);
    snprintf(on, sizeof on, "%s.out", name);
    int w = add_rand(g, wn, 4, (int64_t[]){m, c / group, k, k}, 0.5f);
    int b = add_rand(g, bn, 1, (int64_t[]){m}, 0.2f);
    int y = add_tmp(g, on);
    static int64_t pads[4];
    pads[0] = pads[1] = pads[2] = pads[3] = k / 2;
    qf_attr at[2] = {attr_ints("pads", pads, 4), attr_i("group", group)};
    node(g, name, "Conv", (int[]){x, w, b}, 3, y, at, 2);
    return y;
}

static int unary(qf_graph *g, const char *name, const char *op, int x) {
    char on[64];
    snprintf(on, sizeof on, "%s.out", name);
    int y = add_tmp(g, on);
    node(g, name, op, &x, 1, y, NULL, 0);
    return y;
}

static int batchnorm(qf_graph *g, const char *name, int x, int64_t c) {
    char n1[64], n2[64], n3[64], n4[64], on[64];
    snprintf(n1, sizeof n1, "%s.scale", name);
    snprintf(n2, sizeof n2, "%s.beta", name);
    snprintf(n3, sizeof n3, "%s.mean", name);
    snprintf(n4, sizeof n4, "%s.var", name);
    snprintf(on, sizeof on, "%s.out", name);
    int64_t d[1] = {c};
    int s = add_rand(g, n1, 1, d, 1.0f), b = add_rand(g, n2, 1, d, 0.3f);
    int m = add_rand(g, n3, 1, d, 0.3f), v = add_rand(g, n4, 1, d, 0.2f);
    float *var = g->values[v].data;
    for (int64_t i = 0; i < c; i++) var[i] = fabsf(var[i]) + 0.5f;
    int y = add_tmp(g, on);
    node(g, name, "BatchNormalization", (int[]){x, s, b, m, v}, 5, y, NULL, 0);
    return y;
}

static int gemm(qf_graph *g, const char *name, int x, int64_t k, int64_t n, bool out) {
    char wn[64], bn[64], on[64];
    snprintf(wn, sizeof wn, "%s.w", name);
    snprintf(bn, sizeof bn, "%s.b", name);
    snprintf(on, sizeof on, "%s.out", name);
    int w = add_rand(g, wn, 2, (int64_t[]){n, k}, 0.5f);
    int b = add_rand(g, bn, 1, (int64_t[]){n}, 0.2f);
    int y = add_tmp(g, on);
    if (out) qf_graph_add_output(g, y);
    qf_attr at[1] = {attr_i("transB", 1)};
    node(g, name, "Gemm", (int[]){x, w, b}, 3, y, at, 1);
    return y;
}

static int head(qf_graph *g, int x, int64_t c, int64_t classes) {
    int p = unary(g, "gap", "GlobalAveragePool", x);
    int f = unary(g, "flat", "Flatten", p);
    return gemm(g, "fc", f, c, classes, true);
}

static bool finish(qf_graph *g) {
    qf_err e;
    e.msg[0] = 0;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e) || qf_pass_infer_shapes(g, &e)) {
        fprintf(stderr, "  graph setup failed: %s\n", e.msg);
        return false;
    }
    return true;
}

/* Make channel c of a Conv (and optionally its BN) produce exact zeros. */
static void inert_conv(qf_graph *g, const char *conv_name, int64_t c) {
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s.w", conv_name);
    snprintf(bn, sizeof bn, "%s.b", conv_name);
    int w = qf_graph_find_value(g, wn);
    int64_t per = (int64_t)(g->values[w].nbytes / sizeof(float)) / g->values[w].dims[0];
    float *wd = g->values[w].data;
    for (int64_t i = 0; i < per; i++) wd[c * per + i] = 0.0f;
    cdata(g, bn)[c] = 0.0f;
}

static void inert_bn(qf_graph *g, const char *bn_name, int64_t c) {
    char n[64];
    snprintf(n, sizeof n, "%s.beta", bn_name);
    cdata(g, n)[c] = 0.0f;
    snprintf(n, sizeof n, "%s.mean", bn_name);
    cdata(g, n)[c] = 0.0f;
}

/* Run g (a clone of it) on x; copies output 0 into y (cap floats). */
static bool run_graph(const qf_graph *g, float *x, const int64_t *xdims, int xrank, float *y,
                      int64_t cap, int64_t *ny) {
    qf_graph *c = NULL;
    qf_model *m = NULL;
    qf_session *s = NULL;
    qf_err e;
    e.msg[0] = 0;
    bool ok = false;
    if (qf_graph_clone(g, &c, &e) || qf_model_from_graph(c, "t", &m, &e)) goto done;
    if (qf_session_create(m, NULL, &s, &e)) goto done;
    qf_tensor in = {.dtype = QF_DT_F32, .rank = xrank, .data = x}, out;
    memcpy(in.dims, xdims, sizeof(int64_t) * (size_t)xrank);
    if (qf_session_run(s, &in, 1, &out, 1, &e)) goto done;
    *ny = qf_tensor_numel(&out);
    if (*ny > cap) goto done;
    memcpy(y, out.data, sizeof(float) * (size_t)*ny);
    ok = true;
done:
    if (!ok) fprintf(stderr, "  run failed: %s\n", e.msg);
    qf_session_free(s);
    if (m)
        qf_model_free(m);
    else
        qf_graph_free(c);
    return ok;
}

/* ---- magnitude pruning --------------------------------------------------- */
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Two convs and a gemm: 8x3x3x3, 6x8x3x3, gemm 6 -> 4. */
static qf_graph *small_cnn(void) {
    qf_graph *g = qf_graph_create();
    int x = add_input(g, "x", 4, (int64_t[]){1, 3, 6, 6});
    int y = conv(g, "conv1", x, 3, 8, 3, 1);
    y = unary(g, "relu1", "Relu", y);
    y = conv(g, "conv2", y, 8, 8, 3, 1);
    y = unary(g, "relu2", "Relu", y);
    head(g, y, 8, 4);
    return g;
}

static void magnitude_layerwise_matches_sorted(void) {
    const float levels[] = {0.0f, 0.25f, 0.5f, 0.9f};
    for (size_t t = 0; t < QF_ARRAY_LEN(levels); t++) {
        qf_graph *g = small_cnn();
        CHECK(finish(g));
        const char *names[] = {"conv1.w", "conv2.w", "fc.w"};
        float *orig[3];
        size_t n[3];
        for (int l = 0; l < 3; l++) {
            int v = qf_graph_find_value(g, names[l]);
            n[l] = g->values[v].nbytes / sizeof(float);
            orig[l] = malloc(g->values[v].nbytes);
            memcpy(orig[l], g->values[v].data, g->values[v].nbytes);
        }
        qf_prune_options o = {.sparsity = levels[t]};
        qf_prune_masks *m = NULL;
        CHECK_OK(qf_prune_magnitude(g, &o, &m, NULL));
        CHECK_EQ_INT(m->n, 3);
        for (int l = 0; l < 3; l++) {
            /* reference: sort |w|, k = floor(s n), threshold = k-th smallest */
            float *mag = malloc(sizeof(float) * n[l]);
            for (size_t i = 0; i < n[l]; i++) mag[i] = fabsf(orig[l][i]);
            qsort(mag, n[l], sizeof(float), cmp_float);
            size_t k = (size_t)floor((double)levels[t] * (double)n[l]);
            float thr = k ? mag[k - 1] : -1.0f;
            const float *w = cdata(g, names[l]);
            size_t zeros = 0;
            for (size_t i = 0; i < n[l]; i++) {
                if (w[i] == 0.0f) {
                    zeros++;
                    CHECK(fabsf(orig[l][i]) <= thr);
                } else {
                    CHECK(w[i] == orig[l][i]);
                    CHECK(!k || fabsf(orig[l][i]) >= thr);
                }
            }
            CHECK_EQ_INT(zeros, k);
            CHECK_EQ_INT(m->layers[l].n_pruned, k);
            free(mag);
            free(orig[l]);
        }
        qf_prune_masks_free(m);
        qf_graph_free(g);
    }
}

static void magnitude_global_matches_sorted(void) {
    qf_graph *g = small_cnn();
    CHECK(finish(g));
    /* conv2 gets small weights: a global threshold must take more of it */
    float *w2 = cdata(g, "conv2.w");
    for (int i = 0; i < 8 * 8 * 9; i++) w2[i] *= 0.1f;
    const char *names[] = {"conv1.w", "conv2.w", "fc.w"};
    size_t n[3] = {8 * 3 * 9, 8 * 8 * 9, 4 * 8}, total = 0;
    float *all = malloc(sizeof(float) * 1000);
    float *orig[3];
    for (int l = 0; l < 3; l++) {
        orig[l] = malloc(sizeof(float) * n[l]);
        memcpy(orig[l], cdata(g, names[l]), sizeof(float) * n[l]);
        for (size_t i = 0; i < n[l]; i++) all[total++] = fabsf(orig[l][i]);
    }
    qsort(all, total, sizeof(float), cmp_float);
    size_t k = (size_t)floor(0.6 * (double)total);
    float thr = all[k - 1];
    qf_prune_options o = {.sparsity = 0.6f, .global = true};
    CHECK_OK(qf_prune_magnitude(g, &o, NULL, NULL));
    size_t zeros = 0, z2 = 0;
    for (int l = 0; l < 3; l++) {
        const float *w = cdata(g, names[l]);
        for (size_t i = 0; i < n[l]; i++) {
            if (w[i] == 0.0f) {
                zeros++;
                z2 += l == 1;
                CHECK(fabsf(orig[l][i]) <= thr);
            } else {
                CHECK(fabsf(orig[l][i]) >= thr);
            }
        }
        free(orig[l]);
    }
    CHECK_EQ_INT(zeros, k);
    CHECK(z2 > (size_t)(0.6 * 8 * 8 * 9)); /* the small layer lost more than 60% */
    free(all);
    qf_graph_free(g);
}

static void magnitude_skip_first_last_and_ties(void) {
    qf_graph *g = small_cnn();
    CHECK(finish(g));
    /* all-equal magnitudes in conv2: exactly k still go, by position */
    float *w2 = cdata(g, "conv2.w");
    for (int i = 0; i < 8 * 8 * 9; i++) w2[i] = (i & 1) ? 0.5f : -0.5f;
    float c1 = cdata(g, "conv1.w")[5], f1 = cdata(g, "fc.w")[3];
    qf_prune_options o = {.sparsity = 0.5f, .skip_first = true, .skip_last = true};
    qf_prune_masks *m = NULL;
    CHECK_OK(qf_prune_magnitude(g, &o, &m, NULL));
    CHECK(m->layers[0].skipped && m->layers[2].skipped && !m->layers[1].skipped);
    CHECK(cdata(g, "conv1.w")[5] == c1 && cdata(g, "fc.w")[3] == f1);
    CHECK_EQ_INT(m->layers[0].n_pruned, 0);
    CHECK_EQ_INT(m->layers[1].n_pruned, 8 * 8 * 9 / 2);
    for (int i = 0; i < 8 * 8 * 9; i++) CHECK((w2[i] == 0.0f) == (i < 8 * 8 * 9 / 2));
    qf_prune_masks_free(m);
    qf_graph_free(g);
}

static void masks_reapply_after_update(void) {
    qf_graph *g = small_cnn();
    CHECK(finish(g));
    qf_prune_options o = {.sparsity = 0.7f};
    qf_prune_masks *m = NULL;
    CHECK_OK(qf_prune_magnitude(g, &o, &m, NULL));
    int li = qf_prune_masks_find(m, "conv2.w");
    CHECK(li == 1);
    CHECK(qf_prune_masks_find(m, "nope") == -1);
    /* an "optimizer step" moves every weight, then the masks come back */
    float *w = cdata(g, "conv2.w");
    float *before = malloc(sizeof(float) * 576);
    memcpy(before, w, sizeof(float) * 576);
    for (int i = 0; i < 576; i++) w[i] += 0.01f;
    CHECK_OK(qf_prune_masks_apply(m, g, NULL));
    for (int i = 0; i < 576; i++) {
        if (before[i] == 0.0f)
            CHECK(w[i] == 0.0f);
        else
            CHECK_NEAR(w[i], before[i] + 0.01f, 1e-7);
    }
    /* the array form */
    float arr[4] = {1, 2, 3, 4};
    uint8_t mk[4] = {1, 0, 1, 0};
    qf_prune_mask_apply(mk, arr, 4);
    CHECK(arr[0] == 1 && arr[1] == 0 && arr[2] == 3 && arr[3] == 0);
    free(before);
    qf_prune_masks_free(m);
    qf_graph_free(g);
}

/* Check an N:M mask against a brute-force selection. */
static bool nm_ok(const float *orig, const float *w, int64_t outer, int64_t red, int64_t inner,
                  int nn, int mm) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t r0 = 0; r0 < red; r0 += mm)
            for (int64_t i = 0; i < inner; i++) {
                float mags[64];
                int zeros = 0;
                for (int j = 0; j < mm; j++) {
                    int64_t at = (o * red + r0 + j) * inner + i;
                    mags[j] = fabsf(orig[at]);
                    zeros += w[at] == 0.0f;
                }
                if (zeros != mm - nn) return false;
                qsort(mags, (size_t)mm, sizeof(float), cmp_float);
                float nth = mags[mm - nn]; /* smallest kept magnitude */
                for (int j = 0; j < mm; j++) {
                    int64_t at = (o * red + r0 + j) * inner + i;
                    if (w[at] != 0.0f && fabsf(orig[at]) < nth) return false;
                    if (w[at] == 0.0f && fabsf(orig[at]) > nth) return false;
                }
            }
    return true;
}

static void nm_pattern_2_4(void) {
    static const struct {
        int nn, mm;
        bool transB;
    } cases[] = {{2, 4, true}, {2, 4, false}, {1, 4, true}, {3, 8, false}};
    for (size_t t = 0; t < QF_ARRAY_LEN(cases); t++) {
        qf_graph *g = qf_graph_create();
        int x = add_input(g, "x", 4, (int64_t[]){1, 3, 5, 5});
        int y = conv(g, "conv1", x, 3, 8, 3, 1); /* C = 3: not a multiple of M, stays dense */
        y = conv(g, "conv2", y, 8, 16, 3, 1);
        int p = unary(g, "gap", "GlobalAveragePool", y);
        int f = unary(g, "flat", "Flatten", p);
        int64_t k = 16, n = 8;
        int64_t wd[2] = {cases[t].transB ? n : k, cases[t].transB ? k : n};
        int w = add_rand(g, "fc.w", 2, wd, 0.5f);
        int out = add_tmp(g, "y");
        qf_graph_add_output(g, out);
        qf_attr at[1] = {attr_i("transB", cases[t].transB)};
        node(g, "fc", "Gemm", (int[]){f, w}, 2, out, at, 1);
        CHECK(finish(g));
        float *o2 = malloc(sizeof(float) * 16 * 8 * 9), *of = malloc(sizeof(float) * 128);
        float *o1 = malloc(sizeof(float) * 8 * 3 * 9);
        memcpy(o2, cdata(g, "conv2.w"), sizeof(float) * 16 * 8 * 9);
        memcpy(of, cdata(g, "fc.w"), sizeof(float) * 128);
        memcpy(o1, cdata(g, "conv1.w"), sizeof(float) * 8 * 3 * 9);
        qf_prune_options o = {.nm_n = cases[t].nn, .nm_m = cases[t].mm};
        qf_prune_masks *m = NULL;
        CHECK_OK(qf_prune_magnitude(g, &o, &m, NULL));
        CHECK(m->layers[0].skipped);
        CHECK(memcmp(o1, cdata(g, "conv1.w"), sizeof(float) * 8 * 3 * 9) == 0);
        /* conv: groups along input channels at fixed (out, ky, kx) */
        CHECK(nm_ok(o2, cdata(g, "conv2.w"), 16, 8, 9, cases[t].nn, cases[t].mm));
        /* gemm: along K, which is axis 1 of [N,K] (transB) or axis 0 of [K,N] */
        if (cases[t].transB)
            CHECK(nm_ok(of, cdata(g, "fc.w"), n, k, 1, cases[t].nn, cases[t].mm));
        else
            CHECK(nm_ok(of, cdata(g, "fc.w"), 1, k, n, cases[t].nn, cases[t].mm));
        free(o1);
        free(o2);
        free(of);
        qf_prune_masks_free(m);
        qf_graph_free(g);
    }
}

static void schedule_closed_form(void) {
    /* s_i 0, s_f 0.8, t0 10, n 10 steps of dt 5: the ramp ends at t = 60 */
    static const struct {
        int64_t t;
        float want;
    } cases[] = {
        {0, 0.0f},         /* before t0: s_i */
        {10, 0.0f},        /* (1 - 0)^3 = 1 */
        {35, 0.7f},        /* 0.8 - 0.8 * 0.5^3 = 0.7 */
        {20, 0.3904f},     /* 0.8 - 0.8 * 0.8^3 = 0.8 - 0.4096 */
        {55, 0.7992f},     /* 0.8 - 0.8 * 0.1^3 */
        {60, 0.8f},        /* end */
        {1000, 0.8f},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++)
        CHECK_NEAR(qf_prune_schedule_poly(0.0f, 0.8f, cases[i].t, 10, 10, 5), cases[i].want, 1e-6);
    CHECK_NEAR(qf_prune_schedule_poly(0.5f, 0.9f, 5, 0, 0, 1), 0.9f, 0); /* empty ramp */
}

static void bad_sparsity_rejected(void) {
    const float bad[] = {-0.1f, 1.0f, 1.5f, NAN};
    for (size_t i = 0; i < QF_ARRAY_LEN(bad); i++) {
        qf_graph *g = small_cnn();
        CHECK(finish(g));
        float w0 = cdata(g, "conv1.w")[0];
        qf_err e;
        e.msg[0] = 0;
        qf_prune_options o = {.sparsity = bad[i]};
        CHECK_EQ_INT(qf_prune_magnitude(g, &o, NULL, &e), QF_ERR_INVALID_ARG);
        CHECK(strstr(e.msg, "sparsity") != NULL);
        CHECK(cdata(g, "conv1.w")[0] == w0);
        qf_struct_options so = {.sparsity = bad[i]};
        CHECK_EQ_INT(qf_prune_structured(g, &so, &e), QF_ERR_INVALID_ARG);
        qf_prune_options nm = {.nm_n = 5, .nm_m = 4};
        CHECK_EQ_INT(qf_prune_magnitude(g, &nm, NULL, &e), QF_ERR_INVALID_ARG);
        qf_graph_free(g);
    }
}

/* ---- structured removal ------------------------------------------------------ */
typedef struct inert_spec {
    const char *member; /* a node of the group */
    int n;
    int64_t ch[4];
} inert_spec;

/* Prune (L1) exactly the channels listed (made inert by the caller) and
 * compare outputs before/after on random inputs. */
static bool prune_listed(qf_graph *g, const inert_spec *spec, int n_spec) {
    qf_chan_groups *cg = NULL;
    qf_err e;
    e.msg[0] = 0;
    if (qf_chan_groups_build(g, &cg, &e)) {
        fprintf(stderr, "  groups: %s\n", e.msg);
        return false;
    }
    int ng = qf_chan_groups_count(cg);
    float *sp = calloc((size_t)ng, sizeof(float));
    for (int s = 0; s < n_spec; s++) {
        int node_ix = -1;
        for (int i = 0; i < g->n_nodes; i++)
            if (strcmp(g->nodes[i].name, spec[s].member) == 0) node_ix = i;
        for (int k = 0; k < ng; k++) {
            const qf_chan_group *gr = qf_chan_groups_get(cg, k);
            for (int j = 0; j < gr->n_members; j++)
                if (gr->members[j] == node_ix) {
                    sp[k] = ((float)spec[s].n + 0.5f) / (float)gr->channels;
                    /* independent check of the scores: inert ones score 0 */
                    float sc[64];
                    if (qf_chan_group_scores(g, cg, k, QF_PRUNE_L1, sc, &e)) return false;
                    for (int c = 0; c < spec[s].n; c++)
                        if (sc[spec[s].ch[c]] != 0.0f) return false;
                }
        }
    }
    qf_struct_options o = {.crit = QF_PRUNE_L1, .group_sparsity = sp, .n_group_sparsity = ng};
    qf_chan_groups_free(cg);
    qf_status st = qf_prune_structured(g, &o, &e);
    free(sp);
    if (st) fprintf(stderr, "  prune: %s\n", e.msg);
    return st == QF_OK;
}

static bool same_outputs(const qf_graph *a, const qf_graph *b, int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *x = malloc(sizeof(float) * (size_t)n);
    float ya[4096], yb[4096];
    int64_t na = 0, nb = 0;
    bool ok = true;
    for (int trial = 0; trial < 3 && ok; trial++) {
        fill_rand(x, (size_t)n, 2.0f);
        ok = run_graph(a, x, dims, rank, ya, 4096, &na) &&
             run_graph(b, x, dims, rank, yb, 4096, &nb);
        ok = ok && na == nb;
        for (int64_t i = 0; ok && i < na; i++)
            if (fabsf(ya[i] - yb[i]) > 1e-5f * (1.0f + fabsf(ya[i]))) {
                fprintf(stderr, "  output %lld: %g vs %g\n", (long long)i, ya[i], yb[i]);
                ok = false;
            }
    }
    free(x);
    return ok;
}

static const qf_value *vnamed(const qf_graph *g, const char *n) {
    int v = qf_graph_find_value(g, n);
    return v >= 0 ? &g->values[v] : NULL;
}

static void structured_chain_with_bn(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {2, 3, 8, 8};
    int x = add_input(g, "x", 4, xd);
    int y = conv(g, "conv1", x, 3, 8, 3, 1);
    y = batchnorm(g, "bn1", y, 8);
    y = unary(g, "relu1", "Relu", y);
    y = conv(g, "conv2", y, 8, 6, 3, 1);
    y = unary(g, "relu2", "Relu", y);
    head(g, y, 6, 4);
    CHECK(finish(g));
    /* MACs by hand: 8*64*27 + 6*64*72 + 6*4 */
    CHECK_EQ_INT(qf_prune_total_macs(g), 8 * 64 * 27 + 6 * 64 * 72 + 24);
    int64_t chans[3] = {1, 4, 6};
    for (int i = 0; i < 3; i++) {
        inert_conv(g, "conv1", chans[i]);
        inert_bn(g, "bn1", chans[i]);
    }
    inert_conv(g, "conv2", 2);
    qf_graph *ref = NULL;
    CHECK_OK(qf_graph_clone(g, &ref, NULL));
    inert_spec spec[] = {{"conv1", 3, {1, 4, 6}}, {"conv2", 1, {2}}};
    CHECK(prune_listed(g, spec, 2));
    CHECK_EQ_INT(vnamed(g, "conv1.w")->dims[0], 5);
    CHECK_EQ_INT(vnamed(g, "conv1.b")->dims[0], 5);
    CHECK_EQ_INT(vnamed(g, "bn1.var")->dims[0], 5);
    CHECK_EQ_INT(vnamed(g, "conv2.w")->dims[0], 5);
    CHECK_EQ_INT(vnamed(g, "conv2.w")->dims[1], 5);
    CHECK_EQ_INT(vnamed(g, "fc.w")->dims[1], 5);
    CHECK_EQ_INT(vnamed(g, "fc.w")->dims[0], 4); /* the graph output keeps its width */
    CHECK_EQ_INT(vnamed(g, "relu1.out")->dims[1], 5);
    CHECK_EQ_INT(qf_prune_total_macs(g), 5 * 64 * 27 + 5 * 64 * 45 + 20);
    /* the surviving filters are the original ones, in order */
    CHECK(vnamed(g, "conv1.w")->dims[1] == 3);
    CHECK(memcmp(cdata(g, "conv1.w"), cdata(ref, "conv1.w"), sizeof(float) * 27) == 0);
    CHECK(memcmp(cdata(g, "conv1.w") + 27, cdata(ref, "conv1.w") + 2 * 27,
                 sizeof(float) * 27) == 0);
    CHECK(same_outputs(ref, g, 4, xd));
    qf_graph_free(ref);
    qf_graph_free(g);
}

static void structured_residual_block(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {1, 3, 6, 6};
    int x = add_input(g, "x", 4, xd);
    int a = unary(g, "relu0", "Relu", conv(g, "conv0", x, 3, 8, 3, 1));
    int b = unary(g, "relu1", "Relu", conv(g, "conv1", a, 8, 8, 3, 1));
    b = conv(g, "conv2", b, 8, 8, 3, 1);
    int s = add_tmp(g, "sum");
    node(g, "add", "Add", (int[]){a, b}, 2, s, NULL, 0);
    s = unary(g, "relu2", "Relu", s);
    head(g, s, 8, 3);
    CHECK(finish(g));
    int64_t chans[2] = {2, 5};
    for (int i = 0; i < 2; i++) {
        inert_conv(g, "conv0", chans[i]);
        inert_conv(g, "conv2", chans[i]);
    }
    inert_conv(g, "conv1", 7);
    qf_chan_groups *cg = NULL;
    CHECK_OK(qf_chan_groups_build(g, &cg, NULL));
    int joint = 0;
    for (int k = 0; k < qf_chan_groups_count(cg); k++)
        if (qf_chan_groups_get(cg, k)->n_members == 2) joint++;
    qf_chan_groups_free(cg);
    CHECK_EQ_INT(joint, 1); /* conv0 and conv2 share the Add's channels */
    qf_graph *ref = NULL;
    CHECK_OK(qf_graph_clone(g, &ref, NULL));
    inert_spec spec[] = {{"conv0", 2, {2, 5}}, {"conv1", 1, {7}}};
    CHECK(prune_listed(g, spec, 2));
    CHECK_EQ_INT(vnamed(g, "conv0.w")->dims[0], 6);
    CHECK_EQ_INT(vnamed(g, "conv1.w")->dims[1], 6);
    CHECK_EQ_INT(vnamed(g, "conv1.w")->dims[0], 7);
    CHECK_EQ_INT(vnamed(g, "conv2.w")->dims[0], 6);
    CHECK_EQ_INT(vnamed(g, "conv2.w")->dims[1], 7);
    CHECK_EQ_INT(vnamed(g, "sum")->dims[1], 6);
    CHECK(same_outputs(ref, g, 4, xd));
    qf_graph_free(ref);
    qf_graph_free(g);
}

static void structured_depthwise_block(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {1, 3, 7, 7};
    int x = add_input(g, "x", 4, xd);
    int a = unary(g, "relu0", "Relu", conv(g, "conv0", x, 3, 6, 3, 1));
    int d = unary(g, "relu1", "Relu", conv(g, "dw", a, 6, 6, 3, 6));
    int p = unary(g, "relu2", "Relu", conv(g, "pw", d, 6, 4, 1, 1));
    head(g, p, 4, 3);
    CHECK(finish(g));
    inert_conv(g, "conv0", 0);
    inert_conv(g, "conv0", 3);
    cdata(g, "dw.b")[0] = 0.0f; /* the depthwise bias would revive them */
    cdata(g, "dw.b")[3] = 0.0f;
    qf_graph *ref = NULL;
    CHECK_OK(qf_graph_clone(g, &ref, NULL));
    inert_spec spec[] = {{"conv0", 2, {0, 3}}};
    CHECK(prune_listed(g, spec, 1));
    CHECK_EQ_INT(vnamed(g, "dw.w")->dims[0], 4);
    CHECK_EQ_INT(vnamed(g, "dw.w")->dims[1], 1);
    CHECK_EQ_INT(vnamed(g, "dw.b")->dims[0], 4);
    CHECK_EQ_INT(vnamed(g, "pw.w")->dims[1], 4);
    int dwn = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, "dw") == 0) dwn = i;
    CHECK_EQ_INT(qf_node_attr_int(&g->nodes[dwn], "group", 0), 4);
    CHECK(same_outputs(ref, g, 4, xd));
    qf_graph_free(ref);
    qf_graph_free(g);
}

static void structured_flatten_gemm_and_concat(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {2, 2, 4, 4};
    int x = add_input(g, "x", 4, xd);
    int a = unary(g, "relua", "Relu", conv(g, "conva", x, 2, 5, 3, 1));
    int b = unary(g, "relub", "Relu", conv(g, "convb", x, 2, 3, 1, 1));
    int c = add_tmp(g, "cat");
    qf_attr ax[1] = {attr_i("axis", 1)};
    node(g, "concat", "Concat", (int[]){a, b}, 2, c, ax, 1);
    int f = unary(g, "flat", "Flatten", c);
    int h = gemm(g, "fc1", f, 8 * 16, 6, false);
    h = unary(g, "relu3", "Relu", h);
    gemm(g, "fc2", h, 6, 3, true);
    CHECK(finish(g));
    inert_conv(g, "conva", 1);
    inert_conv(g, "conva", 4);
    inert_conv(g, "convb", 2);
    /* a Gemm's inert output: zero row of B and zero bias */
    for (int k = 0; k < 128; k++) cdata(g, "fc1.w")[3 * 128 + k] = 0.0f;
    cdata(g, "fc1.b")[3] = 0.0f;
    qf_graph *ref = NULL;
    CHECK_OK(qf_graph_clone(g, &ref, NULL));
    inert_spec spec[] = {{"conva", 2, {1, 4}}, {"convb", 1, {2}}, {"fc1", 1, {3}}};
    CHECK(prune_listed(g, spec, 3));
    CHECK_EQ_INT(vnamed(g, "fc1.w")->dims[1], 5 * 16); /* (3 + 2) channels x 4 x 4 */
    CHECK_EQ_INT(vnamed(g, "fc1.w")->dims[0], 5);
    CHECK_EQ_INT(vnamed(g, "fc2.w")->dims[1], 5);
    CHECK_EQ_INT(vnamed(g, "cat")->dims[1], 5);
    CHECK(same_outputs(ref, g, 4, xd));
    qf_graph_free(ref);
    qf_graph_free(g);
}

static void structured_frozen_and_errors(void) {
    /* a conv feeding the graph output is frozen */
    qf_graph *g = qf_graph_create();
    int x = add_input(g, "x", 4, (int64_t[]){1, 3, 4, 4});
    int y = conv(g, "conv1", x, 3, 4, 3, 1);
    y = conv(g, "conv2", unary(g, "r", "Relu", y), 4, 4, 3, 1);
    qf_graph_add_output(g, y);
    CHECK(finish(g));
    qf_chan_groups *cg = NULL;
    CHECK_OK(qf_chan_groups_build(g, &cg, NULL));
    CHECK_EQ_INT(qf_chan_groups_count(cg), 2);
    const qf_chan_group *g2 = qf_chan_groups_get(cg, 1);
    CHECK(g2->frozen && strstr(g2->why, "graph output"));
    CHECK(!qf_chan_groups_get(cg, 0)->frozen);
    /* removing every channel of conv1: an error naming it, graph unchanged */
    uint8_t none[4] = {0, 0, 0, 0};
    const uint8_t *keep[2] = {none, NULL};
    qf_err e;
    e.msg[0] = 0;
    CHECK_EQ_INT(qf_chan_groups_remove(g, cg, keep, &e), QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "conv1") && strstr(e.msg, "all 4"));
    CHECK_EQ_INT(vnamed(g, "conv1.w")->dims[0], 4);
    /* frozen groups refuse to shrink */
    uint8_t some[4] = {1, 0, 1, 1};
    const uint8_t *keep2[2] = {NULL, some};
    CHECK_EQ_INT(qf_chan_groups_remove(g, cg, keep2, &e), QF_ERR_INVALID_ARG);
    qf_chan_groups_free(cg);
    /* the one-call form leaves >= 1 channel at high sparsity */
    qf_struct_options o = {.sparsity = 0.99f};
    CHECK_OK(qf_prune_structured(g, &o, NULL));
    CHECK_EQ_INT(vnamed(g, "conv1.w")->dims[0], 1);
    CHECK_EQ_INT(vnamed(g, "conv2.w")->dims[0], 4);
    qf_graph_free(g);

    /* a Reshape that splits the channel axis cannot be followed */
    g = qf_graph_create();
    x = add_input(g, "x", 4, (int64_t[]){1, 3, 4, 4});
    y = conv(g, "conv1", x, 3, 4, 3, 1);
    int64_t shp[3] = {1, 2, 32};
    int s = add_const(g, "shape", QF_DT_I64, 1, (int64_t[]){3}, shp);
    int r = add_tmp(g, "reshaped");
    node(g, "mix", "Reshape", (int[]){y, s}, 2, r, NULL, 0);
    int z = add_tmp(g, "z");
    qf_graph_add_output(g, z);
    node(g, "sm", "Softmax", &r, 1, z, NULL, 0);
    CHECK(finish(g));
    e.msg[0] = 0;
    CHECK_EQ_INT(qf_chan_groups_build(g, &cg, &e), QF_ERR_UNSUPPORTED);
    CHECK(cg == NULL);
    CHECK(strstr(e.msg, "'mix'") != NULL);
    qf_graph_free(g);
}

/* A Reshape with a literal width after GAP is rewritten with the channels. */
static void structured_reshape_literal(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {1, 2, 5, 5};
    int x = add_input(g, "x", 4, xd);
    int y = unary(g, "r", "Relu", conv(g, "conv1", x, 2, 6, 3, 1));
    int p = unary(g, "gap", "GlobalAveragePool", y);
    int64_t shp[2] = {1, 6};
    int s = add_const(g, "shape", QF_DT_I64, 1, (int64_t[]){2}, shp);
    int r = add_tmp(g, "flat");
    node(g, "reshape", "Reshape", (int[]){p, s}, 2, r, NULL, 0);
    gemm(g, "fc", r, 6, 3, true);
    CHECK(finish(g));
    inert_conv(g, "conv1", 5);
    qf_graph *ref = NULL;
    CHECK_OK(qf_graph_clone(g, &ref, NULL));
    inert_spec spec[] = {{"conv1", 1, {5}}};
    CHECK(prune_listed(g, spec, 1));
    CHECK_EQ_INT(((int64_t *)vnamed(g, "shape")->data)[1], 5);
    CHECK(same_outputs(ref, g, 4, xd));
    qf_graph_free(ref);
    qf_graph_free(g);
}

/* PyTorch exports share equal initializers (also through Identity): the
 * analysis gives each reader its own copy, so one reader can shrink. */
static void structured_shared_bias_and_identity(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {1, 2, 5, 5};
    int x = add_input(g, "x", 4, xd);
    int zb = add_rand(g, "zb", 1, (int64_t[]){4}, 0.2f);
    int zi = add_tmp(g, "zb_id");
    node(g, "id", "Identity", &zb, 1, zi, NULL, 0);
    int64_t pads[4] = {1, 1, 1, 1};
    qf_attr at[1] = {attr_ints("pads", pads, 4)};
    const char *names[3] = {"c1", "c2", "c3"};
    int bias[3] = {zb, zi, zb}, y = x;
    int64_t cin = 2;
    for (int i = 0; i < 3; i++) {
        char wn[16], on[16];
        snprintf(wn, sizeof wn, "%s.w", names[i]);
        snprintf(on, sizeof on, "%s.out", names[i]);
        int w = add_rand(g, wn, 4, (int64_t[]){4, cin, 3, 3}, 0.5f);
        int o = add_tmp(g, on);
        node(g, names[i], "Conv", (int[]){y, w, bias[i]}, 3, o, at, 1);
        char rn[16];
        snprintf(rn, sizeof rn, "r%d", i + 1);
        y = unary(g, rn, "Relu", o);
        cin = 4;
    }
    head(g, y, 4, 3);
    CHECK(finish(g));
    float *w1 = cdata(g, "c1.w");
    for (int k = 0; k < 18; k++) w1[18 + k] = 0.0f; /* channel 1 of c1 */
    cdata(g, "zb")[1] = 0.0f;
    qf_graph *ref = NULL;
    CHECK_OK(qf_graph_clone(g, &ref, NULL));
    inert_spec spec[] = {{"c1", 1, {1}}};
    CHECK(prune_listed(g, spec, 1));
    CHECK_EQ_INT(vnamed(g, "c1.w")->dims[0], 3);
    CHECK_EQ_INT(vnamed(g, "c2.w")->dims[1], 3);
    CHECK_EQ_INT(vnamed(g, "c2.w")->dims[0], 4);
    int n_id = 0;
    for (int i = 0; i < g->n_nodes; i++) n_id += g->nodes[i].op == QF_OP_IDENTITY;
    CHECK_EQ_INT(n_id, 0);
    /* every conv reads a bias as wide as its output */
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == QF_OP_CONV)
            CHECK_EQ_INT(g->values[g->nodes[i].inputs[2]].dims[0],
                         g->values[g->nodes[i].inputs[1]].dims[0]);
    CHECK(same_outputs(ref, g, 4, xd));
    qf_graph_free(ref);
    qf_graph_free(g);
}

/* A Reshape target built at run time with a literal width: only shape
 * inference after the cut can tell; the graph must stay untouched. */
static void structured_runtime_shape_rejected(void) {
    qf_graph *g = qf_graph_create();
    int x = add_input(g, "x", 4, (int64_t[]){1, 2, 5, 5});
    int y = unary(g, "r", "Relu", conv(g, "conv1", x, 2, 4, 3, 1));
    int p = unary(g, "gap", "GlobalAveragePool", y);
    int sh = unary(g, "shape", "Shape", p);
    int64_t zero = 0, four = 4;
    int iz = add_const(g, "i0", QF_DT_I64, 0, (int64_t[]){1}, &zero);
    int ax = add_const(g, "ax", QF_DT_I64, 1, (int64_t[]){1}, &zero);
    int w4 = add_const(g, "w4", QF_DT_I64, 1, (int64_t[]){1}, &four);
    int n0 = add_tmp(g, "n0"), un = add_tmp(g, "n0u"), cat = add_tmp(g, "target");
    node(g, "gather", "Gather", (int[]){sh, iz}, 2, n0, NULL, 0);
    node(g, "unsq", "Unsqueeze", (int[]){n0, ax}, 2, un, NULL, 0);
    qf_attr a0[1] = {attr_i("axis", 0)};
    node(g, "cat", "Concat", (int[]){un, w4}, 2, cat, a0, 1);
    int r = add_tmp(g, "flat");
    node(g, "reshape", "Reshape", (int[]){p, cat}, 2, r, NULL, 0);
    gemm(g, "fc", r, 4, 3, true);
    CHECK(finish(g));
    qf_chan_groups *cg = NULL;
    CHECK_OK(qf_chan_groups_build(g, &cg, NULL));
    uint8_t keep[4] = {1, 1, 0, 1};
    const uint8_t *km[2] = {keep, NULL};
    qf_err e;
    e.msg[0] = 0;
    CHECK(qf_chan_groups_remove(g, cg, km, &e) != QF_OK);
    CHECK_MSG(strstr(e.msg, "'reshape'") != NULL, "%s", e.msg);
    CHECK_EQ_INT(vnamed(g, "conv1.w")->dims[0], 4);
    CHECK_EQ_INT(vnamed(g, "fc.w")->dims[1], 4);
    qf_chan_groups_free(cg);
    qf_graph_free(g);
}

static void structured_criteria_scores(void) {
    /* one Conv with 3 filters of 2 weights: (3,4) (1,-1) (0,2) */
    qf_graph *g = qf_graph_create();
    int x = add_input(g, "x", 4, (int64_t[]){1, 2, 1, 1});
    float w[6] = {3, 4, 1, -1, 0, 2};
    int wv = add_const(g, "w", QF_DT_F32, 4, (int64_t[]){3, 2, 1, 1}, w);
    int y = add_tmp(g, "y");
    node(g, "c", "Conv", (int[]){x, wv}, 2, y, NULL, 0);
    int z = unary(g, "r", "Relu", y);
    int p = unary(g, "gap", "GlobalAveragePool", z);
    int f = unary(g, "flat", "Flatten", p);
    gemm(g, "fc", f, 3, 2, true);
    CHECK(finish(g));
    qf_chan_groups *cg = NULL;
    CHECK_OK(qf_chan_groups_build(g, &cg, NULL));
    float sc[3];
    CHECK_OK(qf_chan_group_scores(g, cg, 0, QF_PRUNE_L1, sc, NULL));
    CHECK_NEAR(sc[0], 7, 1e-6);
    CHECK_NEAR(sc[1], 2, 1e-6);
    CHECK_NEAR(sc[2], 2, 1e-6);
    CHECK_OK(qf_chan_group_scores(g, cg, 0, QF_PRUNE_L2, sc, NULL));
    CHECK_NEAR(sc[0], 5, 1e-6);
    CHECK_NEAR(sc[1], sqrt(2.0), 1e-6);
    CHECK_NEAR(sc[2], 2, 1e-6);
    /* FPGM: sum of distances; |f0-f1| = sqrt(4+25), |f0-f2| = sqrt(9+4),
     * |f1-f2| = sqrt(1+9) */
    CHECK_OK(qf_chan_group_scores(g, cg, 0, QF_PRUNE_FPGM, sc, NULL));
    CHECK_NEAR(sc[0], sqrt(29.0) + sqrt(13.0), 1e-5);
    CHECK_NEAR(sc[1], sqrt(29.0) + sqrt(10.0), 1e-5);
    CHECK_NEAR(sc[2], sqrt(13.0) + sqrt(10.0), 1e-5);
    qf_chan_groups_free(cg);
    /* FPGM drops the filter closest to the others: f2 */
    qf_struct_options o = {.sparsity = 0.34f, .crit = QF_PRUNE_FPGM};
    CHECK_OK(qf_prune_structured(g, &o, NULL));
    const float *nw = cdata(g, "w");
    CHECK(vnamed(g, "w")->dims[0] == 2 && nw[0] == 3 && nw[1] == 4 && nw[2] == 1 && nw[3] == -1);
    qf_graph_free(g);
}

/* ---- regularisation ------------------------------------------------------- */
static void regularizers_hand_and_fd(void) {
    /* L1: w = (0.5, -2, 0), lambda 0.1: penalty 0.25, grad (0.1, -0.1, 0) */
    float w[3] = {0.5f, -2.0f, 0.0f}, g[3] = {1, 1, 1};
    CHECK_NEAR(qf_prune_l1_penalty(w, 3, 0.1f, g), 0.25, 1e-7);
    CHECK_NEAR(g[0], 1.1, 1e-7);
    CHECK_NEAR(g[1], 0.9, 1e-7);
    CHECK(g[2] == 1.0f);
    /* group lasso on [outer 2, ch 2, inner 1]: channel 0 = (3, 4) -> 5,
     * channel 1 = (0, 0) -> 0; lambda 2: penalty 10, grad of channel 0 =
     * 2 * (3, 4) / 5, channel 1 untouched */
    float gw[4] = {3, 0, 4, 0}, gg[4] = {0, 0, 0, 0};
    CHECK_NEAR(qf_prune_group_lasso(gw, 2, 2, 1, 2.0f, gg), 10.0, 1e-6);
    CHECK_NEAR(gg[0], 1.2, 1e-6);
    CHECK_NEAR(gg[2], 1.6, 1e-6);
    CHECK(gg[1] == 0 && gg[3] == 0);
    /* finite differences on a random [3, 4, 2] view (no zero groups) */
    float r[24], rg[24] = {0};
    fill_rand(r, 24, 1.0f);
    qf_prune_group_lasso(r, 3, 4, 2, 0.7f, rg);
    for (int i = 0; i < 24; i++) {
        float keep = r[i], h = 1e-3f;
        r[i] = keep + h;
        double up = qf_prune_group_lasso(r, 3, 4, 2, 0.7f, NULL);
        r[i] = keep - h;
        double dn = qf_prune_group_lasso(r, 3, 4, 2, 0.7f, NULL);
        r[i] = keep;
        CHECK_NEAR(rg[i], (up - dn) / (2 * h), 2e-3);
    }
}

/* ---- k-means --------------------------------------------------------------- */
static void kmeans_hand_example(void) {
    const float w[8] = {0, 0, 1.0f, 1.1f, 2.9f, 3.0f, -1.0f, 0.2f};
    float c[4];
    uint8_t idx[8];
    bool zc;
    int it;
    /* keep_zero, k = 4: zero cluster + 3 movable, init -1, 1, 3.
     * Assign: -1 -> c1; 0.2, 1.0, 1.1 -> c2 (midpoints 0 and 2); 2.9, 3 -> c3.
     * Update: c2 = 2.3/3 = 0.766667, c3 = 2.95; the assignment is stable. */
    CHECK_OK(qf_kmeans_1d(w, 8, 4, true, 0, c, idx, &zc, &it, NULL));
    CHECK(zc);
    CHECK(c[0] == 0.0f);
    CHECK_NEAR(c[1], -1.0, 1e-6);
    CHECK_NEAR(c[2], 2.3 / 3.0, 1e-6);
    CHECK_NEAR(c[3], 2.95, 1e-6);
    const uint8_t want[8] = {0, 0, 2, 2, 3, 3, 1, 2};
    CHECK(memcmp(idx, want, 8) == 0);
    /* Centroid gradient: grads 1..8 summed per cluster, zero cluster frozen:
     * c1 <- 7, c2 <- 3 + 4 + 8 = 15, c3 <- 5 + 6 = 11. */
    qf_cluster_layer l = {.n = 8, .k = 4, .centroids = c, .index = idx, .zero_cluster = true};
    const float grad[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float cg[4];
    qf_cluster_grad(&l, grad, cg);
    CHECK(cg[0] == 0 && cg[1] == 7 && cg[2] == 15 && cg[3] == 11);
    qf_cluster_step(&l, cg, 0.1f);
    CHECK(c[0] == 0.0f);
    CHECK_NEAR(c[1], -1.7, 1e-6);
    CHECK_NEAR(c[2], 2.3 / 3.0 - 1.5, 1e-6);
    CHECK_NEAR(c[3], 1.85, 1e-6);
    float out[8];
    qf_cluster_apply(&l, out);
    CHECK(out[0] == 0 && out[6] == c[1] && out[7] == c[2]);
    /* without the zero cluster, k = 2, init -1, 3 (midpoint 1, tie -> lower):
     * {0,0,1,-1,0.2} | {1.1,2.9,3} -> 0.04, 2.3333 (midpoint 1.18667)
     * {0,0,1,1.1,-1,0.2} | {2.9,3} -> 0.216667, 2.95, stable. */
    float c2[2];
    CHECK_OK(qf_kmeans_1d(w, 8, 2, false, 0, c2, idx, &zc, &it, NULL));
    CHECK(!zc);
    CHECK_NEAR(c2[0], 1.3 / 6.0, 1e-6);
    CHECK_NEAR(c2[1], 2.95, 1e-6);
    CHECK_EQ_INT(it, 2);
    CHECK_EQ_INT(qf_kmeans_1d(w, 8, 1, false, 0, c2, idx, &zc, &it, NULL), QF_ERR_INVALID_ARG);
}

static void cluster_graph_keeps_zeros(void) {
    qf_graph *g = small_cnn();
    CHECK(finish(g));
    qf_prune_options po = {.sparsity = 0.5f};
    CHECK_OK(qf_prune_magnitude(g, &po, NULL, NULL));
    float *before = malloc(sizeof(float) * 576);
    memcpy(before, cdata(g, "conv2.w"), sizeof(float) * 576);
    qf_clusters *cl = NULL;
    CHECK_OK(qf_cluster_weights(g, 3, &cl, NULL));
    CHECK_EQ_INT(cl->n, 3);
    const float *w = cdata(g, "conv2.w");
    float seen[16];
    int ns = 0;
    for (int i = 0; i < 576; i++) {
        CHECK((before[i] == 0.0f) == (w[i] == 0.0f)); /* zeros stay zeros, others move off 0 */
        int j = 0;
        while (j < ns && seen[j] != w[i]) j++;
        if (j == ns) {
            CHECK(ns < 8);
            seen[ns++] = w[i];
        }
        /* each weight got its nearest centroid */
        const qf_cluster_layer *l = &cl->layers[1];
        for (int k = 1; k < l->k && before[i] != 0.0f; k++)
            CHECK(fabsf(before[i] - w[i]) <= fabsf(before[i] - l->centroids[k]) + 1e-6f);
    }
    CHECK(cl->layers[1].zero_cluster);
    CHECK(cl->layers[1].mse > 0 && cl->layers[1].mse < 0.01);
    CHECK_EQ_INT(qf_cluster_weights(g, 9, NULL, NULL), QF_ERR_INVALID_ARG);
    free(before);
    qf_clusters_free(cl);
    qf_graph_free(g);
}

/* ---- sensitivity and automatic sparsity ----------------------------------- */
static void auto_hand_example(void) {
    /* Layer 0 (100 weights) is fragile, layer 1 (300) robust; target 0.5
     * means 200 pruned weights. Greedy: layer 1 to 0.5 (150 weights, cost
     * 0.01/150), then layer 1 towards 0.9 (120 more would overshoot): the
     * remaining 50 are 50/120 of that step -> 0.5 + 0.4 * 5/12 = 2/3.
     * Estimated accuracy 0.9 - 0.01 - (5/12) * 0.04. */
    float levels[2] = {0.5f, 0.9f};
    int64_t params[2] = {100, 300};
    float acc[4] = {0.5f, 0.1f, 0.89f, 0.85f};
    double loss[4] = {2.0, 3.0, 0.31, 0.4};
    char *names[2] = {"a", "b"};
    qf_sensitivity s = {.n_layers = 2, .n_levels = 2, .levels = levels, .names = names,
                        .params = params, .base_acc = 0.9f, .base_loss = 0.3, .acc = acc,
                        .loss = loss};
    float ls[2], est;
    CHECK_OK(qf_prune_auto(&s, 0.5f, ls, &est, NULL));
    CHECK_NEAR(ls[0], 0.0, 1e-6);
    CHECK_NEAR(ls[1], 2.0 / 3.0, 1e-6);
    CHECK_NEAR(est, 0.9 - 0.01 - 5.0 / 12.0 * 0.04, 1e-6);
    CHECK_NEAR((ls[0] * 100 + ls[1] * 300) / 400, 0.5, 1e-6);
    CHECK_EQ_INT(qf_prune_auto(&s, 0.95f, ls, &est, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_prune_auto(&s, -0.5f, ls, &est, NULL), QF_ERR_INVALID_ARG);
}

/* A linear classifier y = x W^T + b on a small NPY dataset: the scan's
 * accuracies are recomputed here with a naive loop. */
static void sensitivity_scan_linear(void) {
    enum { N = 40, F = 6, C = 3 };
    char dir[] = "/tmp/qf_prune_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char xp[256], lp[256];
    snprintf(xp, sizeof xp, "%s/x.npy", dir);
    snprintf(lp, sizeof lp, "%s/y.npy", dir);
    float x[N * F];
    int32_t lab[N];
    fill_rand(x, N * F, 1.0f);
    for (int i = 0; i < N; i++) lab[i] = i % C;
    qf_tensor tx = {.dtype = QF_DT_F32, .rank = 2, .dims = {N, F}, .data = x};
    qf_tensor ty = {.dtype = QF_DT_I32, .rank = 1, .dims = {N}, .data = lab};
    CHECK_OK(qf_npy_write(xp, &tx, NULL));
    CHECK_OK(qf_npy_write(lp, &ty, NULL));
    qf_dataset *d = NULL;
    qf_err e;
    e.msg[0] = 0;
    qf_status st = qf_dataset_open(xp, lp, NULL, &d, &e);
    unlink(xp);
    unlink(lp);
    rmdir(dir);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    qf_graph *g = qf_graph_create();
    add_input(g, "x", 2, (int64_t[]){-1, F});
    gemm(g, "fc", 0, F, C, true);
    CHECK(finish(g));
    float W[C * F], B[C];
    memcpy(W, cdata(g, "fc.w"), sizeof W);
    memcpy(B, cdata(g, "fc.b"), sizeof B);
    float lv[2] = {0.5f, 0.9f};
    qf_sens_options so = {.levels = lv, .n_levels = 2, .batch = 7};
    qf_sensitivity *s = NULL;
    st = qf_prune_sensitivity(g, d, &so, &s, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(s->n_layers, 1);
    CHECK_EQ_INT(s->params[0], C * F);
    CHECK(memcmp(W, cdata(g, "fc.w"), sizeof W) == 0); /* g untouched */
    for (int k = -1; k < 2; k++) {
        /* reference: prune by a sorted copy, then a naive classifier */
        float Wp[C * F], mag[C * F];
        memcpy(Wp, W, sizeof W);
        if (k >= 0) {
            for (int i = 0; i < C * F; i++) mag[i] = fabsf(W[i]);
            qsort(mag, C * F, sizeof(float), cmp_float);
            int kk = (int)floor(lv[k] * C * F);
            float thr = mag[kk - 1];
            int cut = 0;
            for (int i = 0; i < C * F; i++) /* no ties with random data */
                if (fabsf(W[i]) <= thr) {
                    Wp[i] = 0;
                    cut++;
                }
            CHECK_EQ_INT(cut, kk);
        }
        int hits = 0;
        double ce = 0;
        for (int n = 0; n < N; n++) {
            double sc[C], mx = -1e30;
            int best = 0;
            for (int c = 0; c < C; c++) {
                sc[c] = B[c];
                for (int f = 0; f < F; f++) sc[c] += (double)x[n * F + f] * Wp[c * F + f];
                if (sc[c] > mx) {
                    mx = sc[c];
                    best = c;
                }
            }
            double se = 0;
            for (int c = 0; c < C; c++) se += exp(sc[c] - mx);
            ce += log(se) + mx - sc[lab[n]];
            hits += best == lab[n];
        }
        float acc = k < 0 ? s->base_acc : s->acc[k];
        double loss = k < 0 ? s->base_loss : s->loss[k];
        CHECK_NEAR(acc, (double)hits / N, 1e-6);
        CHECK_NEAR(loss, ce / N, 1e-4);
    }
    qf_sensitivity_free(s);
    qf_dataset_free(d);
    qf_graph_free(g);
}

/* Structured scan on a 2-layer MLP: removing hidden unit j equals leaving
 * it out of a naive forward pass; the units go by the L1 norm of fc1's
 * rows (sorted here). */
static void sensitivity_scan_structured_mlp(void) {
    enum { N = 30, F = 5, H = 8, C = 3 };
    char dir[] = "/tmp/qf_prune_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char xp[256], lp[256];
    snprintf(xp, sizeof xp, "%s/x.npy", dir);
    snprintf(lp, sizeof lp, "%s/y.npy", dir);
    float x[N * F];
    int32_t lab[N];
    fill_rand(x, N * F, 1.0f);
    for (int i = 0; i < N; i++) lab[i] = (i * 7) % C;
    qf_tensor tx = {.dtype = QF_DT_F32, .rank = 2, .dims = {N, F}, .data = x};
    qf_tensor ty = {.dtype = QF_DT_I32, .rank = 1, .dims = {N}, .data = lab};
    CHECK_OK(qf_npy_write(xp, &tx, NULL));
    CHECK_OK(qf_npy_write(lp, &ty, NULL));
    qf_dataset *d = NULL;
    qf_status st = qf_dataset_open(xp, lp, NULL, &d, NULL);
    unlink(xp);
    unlink(lp);
    rmdir(dir);
    CHECK(st == QF_OK);
    qf_graph *g = qf_graph_create();
    add_input(g, "x", 2, (int64_t[]){-1, F});
    int h = unary(g, "relu", "Relu", gemm(g, "fc1", 0, F, H, false));
    gemm(g, "fc2", h, H, C, true);
    CHECK(finish(g));
    float W1[H * F], B1[H], W2[C * H], B2[C];
    memcpy(W1, cdata(g, "fc1.w"), sizeof W1);
    memcpy(B1, cdata(g, "fc1.b"), sizeof B1);
    memcpy(W2, cdata(g, "fc2.w"), sizeof W2);
    memcpy(B2, cdata(g, "fc2.b"), sizeof B2);
    float lv[3] = {0.3f, 0.5f, 0.9f};
    qf_sens_options so = {.levels = lv, .n_levels = 3};
    qf_sensitivity *s = NULL;
    qf_err e;
    e.msg[0] = 0;
    st = qf_prune_sensitivity_structured(g, d, &so, QF_PRUNE_L1, &s, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(s->n_layers, 2);
    CHECK_EQ_INT(s->params[0], H * F);
    CHECK_EQ_INT(s->params[1], 0); /* fc2 feeds the graph output: frozen */
    CHECK_EQ_INT(vnamed(g, "fc1.w")->dims[0], H); /* g untouched */
    for (int k = 0; k < 3; k++) {
        float l1[H], sorted[H];
        for (int j = 0; j < H; j++) {
            l1[j] = 0;
            for (int f = 0; f < F; f++) l1[j] += fabsf(W1[j * F + f]);
            sorted[j] = l1[j];
        }
        qsort(sorted, H, sizeof(float), cmp_float);
        int drop = (int)floor(lv[k] * H);
        int hits = 0;
        for (int n = 0; n < N; n++) {
            double hid[H], best = -1e30;
            int arg = 0;
            for (int j = 0; j < H; j++) {
                hid[j] = B1[j];
                for (int f = 0; f < F; f++) hid[j] += (double)x[n * F + f] * W1[j * F + f];
                if (hid[j] < 0 || (drop && l1[j] <= sorted[drop - 1])) hid[j] = 0;
            }
            for (int c = 0; c < C; c++) {
                double o = B2[c];
                for (int j = 0; j < H; j++) o += hid[j] * W2[c * H + j];
                if (o > best) {
                    best = o;
                    arg = c;
                }
            }
            hits += arg == lab[n];
        }
        CHECK_NEAR(s->acc[k], (double)hits / N, 1e-6);
        CHECK(s->acc[3 + k] == s->base_acc);
    }
    qf_sensitivity_free(s);
    qf_dataset_free(d);
    qf_graph_free(g);
}

QT_MAIN(QT_CASE(magnitude_layerwise_matches_sorted), QT_CASE(magnitude_global_matches_sorted),
        QT_CASE(magnitude_skip_first_last_and_ties), QT_CASE(masks_reapply_after_update),
        QT_CASE(nm_pattern_2_4), QT_CASE(schedule_closed_form), QT_CASE(bad_sparsity_rejected),
        QT_CASE(structured_chain_with_bn), QT_CASE(structured_residual_block),
        QT_CASE(structured_depthwise_block), QT_CASE(structured_flatten_gemm_and_concat),
        QT_CASE(structured_frozen_and_errors), QT_CASE(structured_reshape_literal),
        QT_CASE(structured_shared_bias_and_identity),
        QT_CASE(structured_runtime_shape_rejected),
        QT_CASE(structured_criteria_scores), QT_CASE(regularizers_hand_and_fd),
        QT_CASE(kmeans_hand_example),
        QT_CASE(cluster_graph_keeps_zeros), QT_CASE(auto_hand_example),
        QT_CASE(sensitivity_scan_linear), QT_CASE(sensitivity_scan_structured_mlp))
