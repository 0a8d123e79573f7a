/* test_quantize.c - the PTQ driver on hand-built models with random weights
 * and synthetic calibration data: what each op is lowered to, how close the
 * integer model stays to the float one (output SQNR measured here against
 * the float session), qfm round trip, and the bad-input errors. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/data.h"
#include "io/qfm.h"
#include "ir/graph.h"
#include "qtest.h"
#include "kernels/ref/qref.h"
#include "quant/quantize.h"
#include "runtime/runtime.h"

static uint32_t rng = 12345;
static float frand(void) { /* uniform [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

static char tmpdir[512];

/* The directory and the files the tests leave in it go at exit. */
static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[sizeof tmpdir + 256];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static void make_tmpdir(void) {
    if (tmpdir[0]) return;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/qf_test_quantXXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        tmpdir[0] = 0;
    else
        atexit(remove_tmpdir);
}

/* N samples [1, 8, 8] in [0, 1) and labels 0..3, written as NPY files. */
static qf_dataset *make_dataset(int n, int c, int h, int w) {
    make_tmpdir();
    char ip[128], lp[128];
    snprintf(ip, sizeof ip, "%s/x_%d_%d.npy", tmpdir, n, c);
    snprintf(lp, sizeof lp, "%s/y_%d_%d.npy", tmpdir, n, c);
    size_t cnt = (size_t)n * c * h * w;
    float *x = malloc(sizeof(float) * cnt);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    for (size_t i = 0; i < cnt; i++)
        x[i] = 0.5f * (frand() + 1.0f);
    for (int i = 0; i < n; i++)
        y[i] = i % 4;
    qf_tensor tx = {.dtype = QF_DT_F32, .rank = 4, .dims = {n, c, h, w}, .data = x};
    qf_tensor ty = {.dtype = QF_DT_I32, .rank = 1, .dims = {n}, .data = y};
    qf_err e;
    qf_status s1 = qf_npy_write(ip, &tx, &e), s2 = qf_npy_write(lp, &ty, &e);
    free(x);
    free(y);
    if (s1 || s2) return NULL;
    qf_dataset *d = NULL;
    qf_dataset_options o;
    memset(&o, 0, sizeof o);
    if (qf_dataset_open(ip, lp, &o, &d, &e)) {
        fprintf(stderr, "dataset: %s\n", e.msg);
        return NULL;
    }
    return d;
}

/* A float constant with the given contents. */
static int add_const_vals(qf_graph *g, const char *name, int rank, const int64_t *dims,
                          const float *vals) {
    int v = qf_graph_add_value(g, name, QF_DT_F32, rank, dims);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = rank, .data = (void *)vals};
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    qf_graph_set_const(g, v, &t, NULL);
    return v;
}

static int add_const(qf_graph *g, const char *name, int rank, const int64_t *dims, float amp) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *d = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        d[i] = amp * frand();
    int v = add_const_vals(g, name, rank, dims, d);
    free(d);
    return v;
}

/* Activation values of unknown type and shape, one per name. */
static void add_values(qf_graph *g, const char *const *names, int n, int *v) {
    for (int i = 0; i < n; i++)
        v[i] = qf_graph_add_value(g, names[i], QF_DT_UNDEF, -1, NULL);
}

/* Attributes of a 3x3 convolution with padding 1 and of a 2x2 stride-2 pool
 * (qf_graph_add_node copies them). */
static int64_t k3x3[2] = {3, 3}, pads1[4] = {1, 1, 1, 1}, k2x2[2] = {2, 2};
static const qf_attr conv3x3_pad1[2] = {
    {.name = "kernel_shape", .type = QF_ATTR_INTS, .ints = k3x3, .n = 2},
    {.name = "pads", .type = QF_ATTR_INTS, .ints = pads1, .n = 4}};
static const qf_attr pool2x2_s2[2] = {
    {.name = "kernel_shape", .type = QF_ATTR_INTS, .ints = k2x2, .n = 2},
    {.name = "strides", .type = QF_ATTR_INTS, .ints = k2x2, .n = 2}};

/* x[N,1,8,8] -> Conv(8,3x3,pad1)+Relu -> MaxPool 2 -> Conv(8,3x3,pad1) ->
 * Add(residual with pool) -> Relu -> GlobalAveragePool -> Flatten ->
 * Gemm(4) -> Sigmoid -> Softmax */
static qf_graph *small_net(void) {
    qf_graph *g = qf_graph_create();
    g->source_path = "small.onnx";
    int64_t xd[4] = {-1, 1, 8, 8};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    int64_t w1d[4] = {8, 1, 3, 3}, b1d[1] = {8}, w2d[4] = {8, 8, 3, 3}, fd[2] = {4, 8}, fb[1] = {4};
    int w1 = add_const(g, "w1", 4, w1d, 0.6f), b1 = add_const(g, "b1", 1, b1d, 0.1f);
    int w2 = add_const(g, "w2", 4, w2d, 0.25f), b2 = add_const(g, "b2", 1, b1d, 0.1f);
    int fw = add_const(g, "fw", 2, fd, 0.8f), fbias = add_const(g, "fb", 1, fb, 0.1f);
    const char *names[] = {"c1", "r1", "p1", "c2", "add", "r2", "gap", "flat", "fc", "sig", "prob"};
    int v[11];
    add_values(g, names, 11, v);
    const qf_attr *ca = conv3x3_pad1, *pa = pool2x2_s2;
    qf_attr tb = {.name = "transB", .type = QF_ATTR_INT, .i = 1};
    int i1[3] = {x, w1, b1}, i2[3] = {v[2], w2, b2}, ia[2] = {v[3], v[2]},
        ig[3] = {v[7], fw, fbias};
    qf_graph_add_node(g, "conv1", "Conv", "", 13, i1, 3, &v[0], 1, ca, 2);
    qf_graph_add_node(g, "relu1", "Relu", "", 13, &v[0], 1, &v[1], 1, NULL, 0);
    qf_graph_add_node(g, "pool", "MaxPool", "", 13, &v[1], 1, &v[2], 1, pa, 2);
    qf_graph_add_node(g, "conv2", "Conv", "", 13, i2, 3, &v[3], 1, ca, 2);
    qf_graph_add_node(g, "add", "Add", "", 13, ia, 2, &v[4], 1, NULL, 0);
    qf_graph_add_node(g, "relu2", "Relu", "", 13, &v[4], 1, &v[5], 1, NULL, 0);
    qf_graph_add_node(g, "gap", "GlobalAveragePool", "", 13, &v[5], 1, &v[6], 1, NULL, 0);
    qf_graph_add_node(g, "flat", "Flatten", "", 13, &v[6], 1, &v[7], 1, NULL, 0);
    qf_graph_add_node(g, "fc", "Gemm", "", 13, ig, 3, &v[8], 1, &tb, 1);
    qf_graph_add_node(g, "sig", "Sigmoid", "", 13, &v[8], 1, &v[9], 1, NULL, 0);
    qf_graph_add_node(g, "softmax", "Softmax", "", 13, &v[9], 1, &v[10], 1, NULL, 0);
    qf_graph_add_output(g, v[10]);
    qf_err e;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e)) {
        fprintf(stderr, "small_net: %s\n", e.msg);
        qf_graph_free(g);
        return NULL;
    }
    return g;
}

/* Output SQNR (dB) of qg against fg on `n` samples of ds. */
static double output_sqnr(const qf_graph *fg, const qf_graph *qg, const qf_dataset *ds, int n) {
    qf_graph *a, *b;
    qf_err e;
    if (qf_graph_clone(fg, &a, &e) || qf_graph_clone(qg, &b, &e)) return -999;
    qf_model *ma, *mb;
    qf_model_from_graph(a, "f", &ma, &e);
    qf_model_from_graph(b, "q", &mb, &e);
    qf_session *sa, *sb;
    qf_session_create(ma, NULL, &sa, &e);
    qf_session_create(mb, NULL, &sb, &e);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)ds->sample_numel);
    qf_dataset_fill(ds, 0, n, x, NULL, &e);
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 4, .dims = {n, 1, 8, 8}, .data = x}, oa, ob;
    double sig = 0, noise = 0;
    if (!qf_session_run(sa, &in, 1, &oa, 1, &e)) {
        int64_t cnt = qf_tensor_numel(&oa);
        float *fa = malloc(sizeof(float) * (size_t)cnt);
        memcpy(fa, oa.data, sizeof(float) * (size_t)cnt);
        if (!qf_session_run(sb, &in, 1, &ob, 1, &e) && qf_tensor_numel(&ob) == cnt)
            for (int64_t i = 0; i < cnt; i++) {
                double d = (double)fa[i] - ((float *)ob.data)[i];
                sig += (double)fa[i] * fa[i];
                noise += d * d;
            }
        else
            noise = -1;
        free(fa);
    }
    free(x);
    qf_session_free(sa);
    qf_session_free(sb);
    qf_model_free(ma);
    qf_model_free(mb);
    if (noise < 0) return -999;
    return noise == 0 ? 999 : 10 * log10(sig / noise);
}

/* qg written to a qfm file and loaded back gives identical outputs. */
static void check_qfm_round_trip(const qf_graph *qg, const qf_dataset *ds, const char *name) {
    char path[128];
    qf_err e;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    CHECK_OK(qf_qfm_write(qg, "{}", path, &e));
    qf_graph *lg = NULL;
    CHECK_MSG(qf_qfm_load(path, &lg, NULL, &e) == QF_OK, "%s", e.msg);
    double db = lg ? output_sqnr(qg, lg, ds, 64) : -999;
    CHECK_MSG(db >= 999, "%s: qfm reload changed outputs (%.2f dB)", name, db);
    qf_graph_free(lg);
    unlink(path);
}

static const qf_quant_layer *find_layer(const qf_quant_report *r, const char *name) {
    for (int i = 0; i < r->n_layers; i++)
        if (strcmp(r->layers[i].name, name) == 0) return &r->layers[i];
    return NULL;
}

static const char *lowered_as(const qf_quant_report *r, const char *name) {
    const qf_quant_layer *L = find_layer(r, name);
    return L ? L->lowered : "(missing)";
}

static qf_qconfig cfg;

static void int8_lowering_and_accuracy(void) {
    qf_graph *g = small_net();
    qf_dataset *ds = make_dataset(256, 1, 8, 8);
    CHECK(g && ds);
    qf_qconfig_default(&cfg);
    qf_quant_options o = {.calib_limit = 200, .batch = 16};
    qf_graph *qg = NULL;
    qf_quant_report rep;
    qf_err e;
    qf_status s = qf_quantize(g, ds, &cfg, &o, &qg, &rep, &e);
    CHECK_MSG(s == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(rep.calib_samples, 200);
    const qf_quant_layer *L;
    CHECK((L = find_layer(&rep, "conv1")) && strcmp(L->lowered, "QConv") == 0 &&
          strcmp(L->op, "Conv+Relu") == 0 && L->w_bits == 8);
    CHECK((L = find_layer(&rep, "pool")) && strcmp(L->lowered, "QMaxPool") == 0);
    CHECK((L = find_layer(&rep, "add")) && strcmp(L->lowered, "QAdd") == 0 &&
          strcmp(L->op, "Add+Relu") == 0);
    CHECK((L = find_layer(&rep, "gap")) && strcmp(L->lowered, "QGlobalAveragePool") == 0);
    CHECK((L = find_layer(&rep, "fc")) && strcmp(L->lowered, "QGemm") == 0);
    CHECK((L = find_layer(&rep, "sig")) && strcmp(L->lowered, "QLut") == 0);
    CHECK((L = find_layer(&rep, "softmax")) && strcmp(L->lowered, "float") == 0);
    CHECK(find_layer(&rep, "relu1") == NULL); /* fused */
    CHECK_EQ_INT(rep.n_float_fallback, 1);
    /* relu-fused outputs have a zero point at the bottom of the range */
    L = find_layer(&rep, "conv1");
    CHECK_EQ_INT(L->out_zero_point, -128);
    CHECK(L->clip_lo == 0.0f && L->clip_hi > 0);
    double db = output_sqnr(g, qg, ds, 64);
    CHECK_MSG(db > 30.0, "int8 output SQNR %.2f dB", db);
    /* qfm round trip: identical bytes out */
    check_qfm_round_trip(qg, ds, "small.qfm");
    qf_quant_report_free(&rep);
    qf_graph_free(qg);
    qf_graph_free(g);
    qf_dataset_free(ds);
}

/* BatchNormalization and PRelu folded by nothing before them (a pool in
 * between), and a Mul by a [1, 8, 1, 1] constant: per-channel maps that the
 * quantizer turns into per-channel tables (QLut, axis 1) instead of
 * leaving them in float.
 * x[N,1,8,8] -> BatchNormalization (1 channel) -> Conv(8,3x3,pad1)+Relu ->
 * MaxPool 2 -> BatchNormalization ->
 * PRelu([8,1,1]) -> Mul([1,8,1,1]) -> Conv(4,3x3,pad1) -> GlobalAveragePool */
static void per_channel_tables(void) {
    qf_graph *g = qf_graph_create();
    g->source_path = "bn.onnx";
    int64_t xd[4] = {-1, 1, 8, 8};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    int64_t w1d[4] = {8, 1, 3, 3}, b1d[1] = {8}, w2d[4] = {4, 8, 3, 3}, b2d[1] = {4};
    int64_t sd[3] = {8, 1, 1}, md[4] = {1, 8, 1, 1};
    float gamma[8], beta[8], mean[8], var[8], slope[8], mul[8];
    for (int k = 0; k < 8; k++) {
        gamma[k] = 0.5f + 0.2f * (float)k;
        beta[k] = 0.3f * frand();
        mean[k] = 0.4f + 0.2f * frand();
        var[k] = 0.05f + 0.1f * (float)k;
        slope[k] = 0.1f * (float)(k - 3);
        mul[k] = k % 2 ? 1.5f : -0.75f;
    }
    int w1 = add_const(g, "w1", 4, w1d, 0.6f), b1 = add_const(g, "b1", 1, b1d, 0.1f);
    int w2 = add_const(g, "w2", 4, w2d, 0.3f), b2 = add_const(g, "b2", 1, b2d, 0.1f);
    int gm = add_const_vals(g, "gamma", 1, b1d, gamma),
        bt = add_const_vals(g, "beta", 1, b1d, beta);
    int mn = add_const_vals(g, "mean", 1, b1d, mean), vr = add_const_vals(g, "var", 1, b1d, var);
    int sl = add_const_vals(g, "slope", 3, sd, slope), mc = add_const_vals(g, "mulc", 4, md, mul);
    const char *names[] = {"c1", "r1", "p1", "bn_out", "pr_out", "mul_out", "c2", "gap", "bn0_out"};
    int v[9];
    add_values(g, names, 9, v);
    const qf_attr *ca = conv3x3_pad1, *pa = pool2x2_s2;
    qf_attr eps = {.name = "epsilon", .type = QF_ATTR_FLOAT, .f = 1e-3f};
    /* a one-channel BatchNormalization on the input too (one table) */
    float one[4] = {1.3f, -0.2f, 0.4f, 0.25f};
    int64_t d1[1] = {1};
    int ib0[5] = {x, add_const_vals(g, "g0", 1, d1, &one[0]),
                  add_const_vals(g, "b0", 1, d1, &one[1]), add_const_vals(g, "m0", 1, d1, &one[2]),
                  add_const_vals(g, "v0", 1, d1, &one[3])};
    qf_graph_add_node(g, "bn0", "BatchNormalization", "", 15, ib0, 5, &v[8], 1, &eps, 1);
    int i1[3] = {v[8], w1, b1}, ib[5] = {v[2], gm, bt, mn, vr}, ip[2] = {v[3], sl},
        im[2] = {mc, v[4]}, i2[3] = {v[5], w2, b2};
    qf_graph_add_node(g, "conv1", "Conv", "", 13, i1, 3, &v[0], 1, ca, 2);
    qf_graph_add_node(g, "relu1", "Relu", "", 13, &v[0], 1, &v[1], 1, NULL, 0);
    qf_graph_add_node(g, "pool", "MaxPool", "", 13, &v[1], 1, &v[2], 1, pa, 2);
    qf_graph_add_node(g, "bn", "BatchNormalization", "", 15, ib, 5, &v[3], 1, &eps, 1);
    qf_graph_add_node(g, "prelu", "PRelu", "", 16, ip, 2, &v[4], 1, NULL, 0);
    qf_graph_add_node(g, "mul", "Mul", "", 14, im, 2, &v[5], 1, NULL, 0);
    qf_graph_add_node(g, "conv2", "Conv", "", 13, i2, 3, &v[6], 1, ca, 2);
    qf_graph_add_node(g, "gap", "GlobalAveragePool", "", 13, &v[6], 1, &v[7], 1, NULL, 0);
    qf_graph_add_output(g, v[7]);
    qf_err e;
    CHECK_MSG(!qf_graph_toposort(g, &e) && !qf_graph_parse_ops(g, &e), "%s", e.msg);
    qf_dataset *ds = make_dataset(256, 1, 8, 8);
    qf_qconfig_default(&cfg);
    qf_quant_options o = {.calib_limit = 200, .batch = 16};
    qf_graph *qg = NULL;
    qf_quant_report rep;
    CHECK_MSG(qf_quantize(g, ds, &cfg, &o, &qg, &rep, &e) == QF_OK, "%s", e.msg);
    CHECK_MSG(!strcmp(lowered_as(&rep, "bn"), "QLut"), "bn: %s", lowered_as(&rep, "bn"));
    CHECK_MSG(!strcmp(lowered_as(&rep, "bn0"), "QLut"), "bn0: %s", lowered_as(&rep, "bn0"));
    CHECK_MSG(!strcmp(lowered_as(&rep, "prelu"), "QLut"), "prelu: %s", lowered_as(&rep, "prelu"));
    CHECK_MSG(!strcmp(lowered_as(&rep, "mul"), "QLut"), "mul: %s", lowered_as(&rep, "mul"));
    CHECK_EQ_INT(rep.n_float_fallback, 0);
    /* the BatchNormalization's tables against the formula in double: every
     * code of every channel, dequantized, normalized, requantized */
    const qf_node *bn = NULL;
    for (int i = 0; i < qg->n_nodes; i++)
        if (!strcmp(qg->nodes[i].name, "bn")) bn = &qg->nodes[i];
    CHECK(bn && !strcmp(bn->op_type, "QLut"));
    if (bn) {
        const qf_attr *t = qf_node_attr(bn, "table");
        const qf_qparams *qi = qg->values[bn->inputs[0]].qp, *qo = qg->values[bn->outputs[0]].qp;
        CHECK(t && t->n == 8 * 256 && qf_node_attr_int(bn, "axis", -1) == 1 && qi && qo);
        CHECK(!strcmp(qf_node_attr_str(bn, "op", ""), "BatchNormalization") &&
              qf_node_attr_int(bn, "x_input", -1) == 0 && bn->n_inputs == 5);
        int exact = 0, total = 0;
        for (int k = 0; t && qi && qo && k < 8; k++)
            for (int q = -128; q < 128; q++) {
                double xf = (double)qi->scale[0] * (q - qi->zero_point[0]);
                double yf = (xf - mean[k]) / sqrt((double)var[k] + 1e-3) * gamma[k] + beta[k];
                double r = nearbyint(yf / qo->scale[0]) + qo->zero_point[0];
                int want = (int)(r < -128 ? -128 : r > 127 ? 127 : r);
                int got = (int)t->ints[k * 256 + q + 128];
                CHECK_MSG(abs(got - want) <= 1, "channel %d code %d: %d vs %d", k, q, got, want);
                exact += got == want;
                total++;
            }
        CHECK_MSG(exact >= total - 8, "%d of %d table entries exact", exact, total);
    }
    double db = output_sqnr(g, qg, ds, 64);
    CHECK_MSG(db > 30.0, "output SQNR %.2f dB", db);
    /* qfm round trip keeps the tables and the float op's constants */
    check_qfm_round_trip(qg, ds, "bn.qfm");
    qf_quant_report_free(&rep);
    qf_graph_free(qg);
    qf_graph_free(g);
    qf_dataset_free(ds);
}

static void four_bit_weights_and_methods(void) {
    qf_graph *g = small_net();
    qf_dataset *ds = make_dataset(256, 1, 8, 8);
    CHECK(g && ds);
    double db[4];
    for (int m = 0; m < 4; m++) {
        qf_qconfig_default(&cfg);
        cfg.default_w_bits = 4;
        cfg.calib = (qf_calib_method)m;
        qf_quant_options o = {.calib_limit = 128};
        qf_graph *qg = NULL;
        qf_err e;
        qf_status s = qf_quantize(g, ds, &cfg, &o, &qg, NULL, &e);
        CHECK_MSG(s == QF_OK, "%s: %s", qf_calib_method_name(cfg.calib), e.msg);
        /* conv weights are packed two per byte */
        bool packed = false;
        for (int v = 0; v < qg->n_values; v++)
            if (strcmp(qg->values[v].name, "conv1.weight_q") == 0)
                packed = qg->values[v].dtype == QF_DT_U8 && qg->values[v].qp->bits == 4 &&
                         qg->values[v].nbytes == 8 * 5; /* 9 nibbles -> 5 bytes a row */
        CHECK(packed);
        db[m] = output_sqnr(g, qg, ds, 64);
        qf_graph_free(qg);
    }
    /* 4-bit weights cost SQNR but every calibrator keeps the model usable
     * (uniform random weights: nothing for clipping to gain, so no ranking) */
    for (int m = 0; m < 4; m++)
        CHECK_MSG(db[m] > 20.0, "4-bit %s SQNR %.2f", qf_calib_method_name((qf_calib_method)m),
                  db[m]);
    qf_graph_free(g);
    qf_dataset_free(ds);
}

/* Bias correction: the quantized conv1's bias equals the float bias minus
 * (W_q - W) . E[x], computed here from the dequantized weights and the mean
 * of the calibration images (x in [0, 1): E[x] ~ 0.5, far from 0). */
static void bias_correction_matches_formula(void) {
    qf_graph *g = small_net();
    qf_dataset *ds = make_dataset(256, 1, 8, 8);
    CHECK(g && ds);
    /* E[x] over the calibration samples (all 256) */
    float *x = malloc(sizeof(float) * 256 * 64);
    qf_err e;
    CHECK_OK(qf_dataset_fill(ds, 0, 256, x, NULL, &e));
    double mean = 0;
    for (int i = 0; i < 256 * 64; i++)
        mean += x[i];
    mean /= 256.0 * 64;
    free(x);
    const qf_value *fw = &g->values[qf_graph_find_value(g, "w1")];
    const qf_value *fb = &g->values[qf_graph_find_value(g, "b1")];
    int meaningful = 0;
    for (int bc = 0; bc < 2; bc++) {
        qf_qconfig_default(&cfg);
        cfg.default_w_bits = 3;
        cfg.per_channel = false;
        cfg.calib = QF_CALIB_MINMAX;
        cfg.bias_correction = bc;
        qf_quant_options o = {.calib_limit = 256};
        qf_graph *qg = NULL;
        CHECK_OK(qf_quantize(g, ds, &cfg, &o, &qg, NULL, &e));
        const qf_node *n = NULL;
        for (int i = 0; i < qg->n_nodes; i++)
            if (strcmp(qg->nodes[i].name, "conv1") == 0) n = &qg->nodes[i];
        CHECK(n != NULL && n->op == QF_OP_QCONV);
        const qf_value *xv = &qg->values[n->inputs[0]], *wv = &qg->values[n->inputs[1]],
                       *bv = &qg->values[n->inputs[2]];
        int wbits = (int)qf_node_attr_int(n, "w_bits", 8);
        int8_t wq[8 * 9];
        CHECK_OK(qf_ref_unpack_weights(wv->data, 8, 9, wbits, wq, &e));
        for (int r = 0; r < 8; r++) {
            double ws = wv->qp->scale[wv->qp->n == 1 ? 0 : r], in_s = xv->qp->scale[0];
            double delta = 0;
            for (int k = 0; k < 9; k++)
                delta += (wq[r * 9 + k] * ws - ((const float *)fw->data)[r * 9 + k]) * mean;
            double got = ((const int32_t *)bv->data)[r] * in_s * ws;
            double want = ((const float *)fb->data)[r] - (bc ? delta : 0.0);
            double tol = 0.5 * in_s * ws + 1e-3 * fabs(delta) + 1e-6;
            CHECK_MSG(fabs(got - want) <= tol, "bc %d channel %d: bias %.6f want %.6f (delta %.6f)",
                      bc, r, got, want, delta);
            if (fabs(delta) > 4 * tol) meaningful++;
        }
        qf_graph_free(qg);
    }
    CHECK_MSG(meaningful >= 4, "only %d channels with a correction above the tolerance",
              meaningful);
    qf_graph_free(g);
    qf_dataset_free(ds);
}

static void per_layer_bits_from_config(void) {
    qf_graph *g = small_net();
    qf_dataset *ds = make_dataset(64, 1, 8, 8);
    CHECK(g && ds);
    qf_qconfig_default(&cfg);
    const char *json = "{\"num_bits\": {\"default\": 8, \"conv2\": 2, \"fc\": 4}}";
    qf_err e;
    CHECK_OK(qf_qconfig_parse_json(&cfg, json, strlen(json), "c.json", &e));
    qf_quant_report rep;
    qf_graph *qg = NULL;
    qf_quant_options o = {.calib_limit = 64};
    CHECK_MSG(qf_quantize(g, ds, &cfg, &o, &qg, &rep, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(find_layer(&rep, "conv1")->w_bits, 8);
    CHECK_EQ_INT(find_layer(&rep, "conv2")->w_bits, 2);
    CHECK_EQ_INT(find_layer(&rep, "fc")->w_bits, 4);
    qf_quant_report_free(&rep);
    qf_graph_free(qg);
    /* a layer name that does not exist */
    qf_qconfig_default(&cfg);
    const char *bad = "{\"num_bits\": {\"conv9\": 4}}";
    CHECK_OK(qf_qconfig_parse_json(&cfg, bad, strlen(bad), "c.json", &e));
    CHECK(qf_quantize(g, ds, &cfg, &o, &qg, NULL, &e) == QF_ERR_INVALID_ARG);
    CHECK(qg == NULL && strstr(e.msg, "conv9"));
    qf_graph_free(g);
    qf_dataset_free(ds);
}

/* reduce_range: 7-bit weights within [-63, 63] (none beyond +-64, the
 * AVX2 saturation-free bound), still a usable model; 8-bit weights
 * (uniform: each channel's largest maps to +-127) exceed it in every layer.
 * Asymmetric weights with reduce_range also get 7 bits. */
static void reduce_range_weights(void) {
    qf_graph *g = small_net();
    qf_dataset *ds = make_dataset(128, 1, 8, 8);
    CHECK(g && ds);
    static const char *layers[] = {"conv1", "conv2", "fc"};
    static const int64_t rows[] = {8, 8, 4}, cols[] = {9, 72, 8};
    double db[2] = {0, 0};
    for (int rr = 0; rr < 3; rr++) {
        qf_qconfig_default(&cfg);
        cfg.reduce_range = rr > 0;
        cfg.symmetric_weights = rr < 2;
        qf_quant_options o = {.calib_limit = 128};
        qf_graph *qg = NULL;
        qf_quant_report rep;
        qf_err e;
        CHECK_MSG(qf_quantize(g, ds, &cfg, &o, &qg, &rep, &e) == QF_OK, "%s", e.msg);
        if (rr < 2) CHECK_EQ_INT(rep.n_avx2_wide, rr ? 0 : 3);
        int wmax = 0;
        for (int l = 0; l < 3; l++) {
            const qf_quant_layer *L = find_layer(&rep, layers[l]);
            CHECK(L && L->w_bits == (rr ? 7 : 8));
            const qf_node *n = NULL;
            for (int i = 0; i < qg->n_nodes; i++)
                if (strcmp(qg->nodes[i].name, layers[l]) == 0) n = &qg->nodes[i];
            CHECK(n && n->n_inputs >= 2);
            if (!n) continue;
            const qf_value *wv = &qg->values[n->inputs[1]];
            CHECK(wv->dtype == QF_DT_I8 && wv->nbytes == (size_t)(rows[l] * cols[l]));
            const int8_t *q = wv->data;
            for (int64_t i = 0; i < rows[l] * cols[l]; i++) {
                const int zp = wv->qp->zero_point ? (int)wv->qp->zero_point[i / cols[l]] : 0;
                const int a = q[i] - zp < 0 ? zp - q[i] : q[i] - zp;
                if (rr == 2) CHECK_MSG(q[i] >= -63 && q[i] <= 63, "%s: w %d", layers[l], q[i]);
                if (rr < 2 && a > wmax) wmax = a;
            }
        }
        if (rr < 2) CHECK_EQ_INT(wmax, rr ? 63 : 127);
        if (rr < 2) db[rr] = output_sqnr(g, qg, ds, 64);
        qf_quant_report_free(&rep);
        qf_graph_free(qg);
    }
    /* a bit less precise, still far from broken */
    CHECK_MSG(db[1] > 25.0 && db[1] < db[0] + 1.0, "SQNR 8-bit %.2f dB, reduce_range %.2f dB",
              db[0], db[1]);
    qf_graph_free(g);
    qf_dataset_free(ds);
}

static void bad_calibration_data(void) {
    qf_graph *g = small_net();
    qf_dataset *wrong = make_dataset(16, 3, 8, 8); /* 3 channels, model takes 1 */
    CHECK(g && wrong);
    qf_qconfig_default(&cfg);
    qf_graph *qg = NULL;
    qf_err e;
    qf_status s = qf_quantize(g, wrong, &cfg, NULL, &qg, NULL, &e);
    CHECK(s == QF_ERR_SHAPE && qg == NULL);
    CHECK_MSG(strstr(e.msg, "'x'") && strstr(e.msg, "[3,8,8]"), "%s", e.msg);
    qf_dataset_free(wrong);
    qf_graph_free(g);
}

/* x -> Pad(reflect, const pads) -> Conv -> Resize(nearest x2, const scales)
 * -> Resize(linear x1.25, const scales): all stay integer */
static void pad_and_resize_lowered(void) {
    qf_graph *g = qf_graph_create();
    g->source_path = "up.onnx";
    int64_t xd[4] = {-1, 1, 8, 8}, wd[4] = {4, 1, 3, 3}, pd[1] = {8}, sd[1] = {4};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    int w = add_const(g, "w", 4, wd, 0.5f);
    int64_t pads[8] = {0, 0, 1, 1, 0, 0, 1, 1};
    float scales[4] = {1, 1, 2, 2}, scales2[4] = {1, 1, 1.25f, 1.25f};
    int pv = qf_graph_add_value(g, "pads", QF_DT_I64, 1, pd);
    int sv = qf_graph_add_value(g, "scales", QF_DT_F32, 1, sd);
    int zv = qf_graph_add_value(g, "scales2", QF_DT_F32, 1, sd);
    qf_tensor tp = {QF_DT_I64, 1, {8}, pads}, ts = {QF_DT_F32, 1, {4}, scales},
              tz = {QF_DT_F32, 1, {4}, scales2};
    qf_graph_set_const(g, pv, &tp, NULL);
    qf_graph_set_const(g, sv, &ts, NULL);
    qf_graph_set_const(g, zv, &tz, NULL);
    int p = qf_graph_add_value(g, "p", 0, -1, NULL), cv = qf_graph_add_value(g, "c", 0, -1, NULL),
        r = qf_graph_add_value(g, "r", 0, -1, NULL), y = qf_graph_add_value(g, "y", 0, -1, NULL);
    qf_attr refl = {.name = "mode", .type = QF_ATTR_STRING, .s = "reflect"};
    qf_attr lin = {.name = "mode", .type = QF_ATTR_STRING, .s = "linear"};
    int ip[2] = {x, pv}, ic[2] = {p, w}, ir[3] = {cv, -1, sv}, iz[3] = {r, -1, zv};
    qf_graph_add_node(g, "pad", "Pad", "", 13, ip, 2, &p, 1, &refl, 1);
    qf_graph_add_node(g, "conv", "Conv", "", 13, ic, 2, &cv, 1, NULL, 0);
    qf_graph_add_node(g, "up", "Resize", "", 13, ir, 3, &r, 1, NULL, 0);
    qf_graph_add_node(g, "up2", "Resize", "", 13, iz, 3, &y, 1, &lin, 1);
    qf_graph_add_output(g, y);
    qf_err e;
    CHECK_OK(qf_graph_toposort(g, &e));
    CHECK_MSG(qf_graph_parse_ops(g, &e) == QF_OK, "%s", e.msg);
    qf_dataset *ds = make_dataset(64, 1, 8, 8);
    CHECK(ds != NULL);
    qf_qconfig_default(&cfg);
    qf_quant_report rep;
    qf_graph *qg = NULL;
    qf_quant_options o = {.calib_limit = 64};
    CHECK_MSG(qf_quantize(g, ds, &cfg, &o, &qg, &rep, &e) == QF_OK, "%s", e.msg);
    CHECK(strcmp(lowered_as(&rep, "pad"), "QPad") == 0);
    CHECK(strcmp(lowered_as(&rep, "up"), "QResize") == 0);
    CHECK_MSG(strcmp(lowered_as(&rep, "up2"), "QResize") == 0, "%s", lowered_as(&rep, "up2"));
    CHECK_EQ_INT(rep.n_float_fallback, 0);
    double db = output_sqnr(g, qg, ds, 16);
    CHECK_MSG(db > 30.0, "SQNR %.2f dB", db);
    qf_quant_report_free(&rep);
    qf_graph_free(qg);
    qf_graph_free(g);
    qf_dataset_free(ds);
}

QT_MAIN(QT_CASE(bias_correction_matches_formula), QT_CASE(pad_and_resize_lowered),
        QT_CASE(int8_lowering_and_accuracy), QT_CASE(four_bit_weights_and_methods),
        QT_CASE(per_layer_bits_from_config), QT_CASE(reduce_range_weights),
        QT_CASE(bad_calibration_data), QT_CASE(per_channel_tables))
