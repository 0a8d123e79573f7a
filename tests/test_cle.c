/* test_cle.c - cross-layer equalisation (src/quant/cle.h): hand-computed
 * scales on a two-layer pair, and on a conv -> depthwise -> pointwise ->
 * flatten -> gemm chain that the function is unchanged (within 1e-5) while
 * the per-channel weight ranges of each pair become balanced. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/passes.h"
#include "qtest.h"
#include "quant/cle.h"
#include "runtime/runtime.h"

static unsigned rng = 12345;
static float frand(void) { /* [-1, 1) */
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static int add_const(qf_graph *g, const char *name, int rank, const int64_t *dims,
                     const float *vals) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    int v = qf_graph_add_value(g, name, QF_DT_F32, rank, dims);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = rank, .data = (void *)vals};
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    qf_graph_set_const(g, v, &t, NULL);
    (void)n;
    return v;
}

static float *const_data(qf_graph *g, const char *name) {
    int v = qf_graph_find_value(g, name);
    return v >= 0 ? g->values[v].data : NULL;
}

/* Run g on x ([n, per] floats) and copy the first output into y. */
static int run(const qf_graph *g, const float *x, const int64_t *dims, int rank, float *y,
               int64_t ny) {
    qf_graph *c = NULL;
    qf_model *m = NULL;
    qf_session *s = NULL;
    qf_err e;
    if (qf_graph_clone(g, &c, &e) || qf_model_from_graph(c, "t", &m, &e)) return -1;
    if (qf_session_create(m, NULL, &s, &e)) {
        qf_model_free(m);
        return -1;
    }
    qf_tensor t = {.dtype = QF_DT_F32, .rank = rank, .data = (void *)x}, o;
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    int rc = -1;
    if (!qf_session_run(s, &t, 1, &o, 1, &e) && qf_tensor_numel(&o) == ny) {
        memcpy(y, o.data, sizeof(float) * (size_t)ny);
        rc = 0;
    } else {
        fprintf(stderr, "run: %s\n", e.msg);
    }
    qf_session_free(s);
    qf_model_free(m);
    return rc;
}

/* x[N,1,2,2] -> Conv A (2 ch, 1x1) -> Relu -> Conv B (1 ch, 1x1) */
static qf_graph *pair_net(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {-1, 1, 2, 2};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    static const float w1[2] = {4.0f, 0.25f}, b1[2] = {0.4f, 0.1f}, w2[2] = {1.0f, 4.0f},
                       b2[1] = {0.3f};
    int64_t w1d[4] = {2, 1, 1, 1}, b1d[1] = {2}, w2d[4] = {1, 2, 1, 1}, b2d[1] = {1};
    int vw1 = add_const(g, "w1", 4, w1d, w1), vb1 = add_const(g, "b1", 1, b1d, b1);
    int vw2 = add_const(g, "w2", 4, w2d, w2), vb2 = add_const(g, "b2", 1, b2d, b2);
    int a = qf_graph_add_value(g, "a", QF_DT_UNDEF, -1, NULL);
    int r = qf_graph_add_value(g, "r", QF_DT_UNDEF, -1, NULL);
    int y = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    int ia[3] = {x, vw1, vb1}, ib[3] = {r, vw2, vb2};
    qf_graph_add_node(g, "A", "Conv", "", 13, ia, 3, &a, 1, NULL, 0);
    qf_graph_add_node(g, "relu", "Relu", "", 13, &a, 1, &r, 1, NULL, 0);
    qf_graph_add_node(g, "B", "Conv", "", 13, ib, 3, &y, 1, NULL, 0);
    qf_graph_add_output(g, y);
    qf_err e;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e) || qf_pass_infer_shapes(g, &e)) {
        fprintf(stderr, "pair_net: %s\n", e.msg);
        qf_graph_free(g);
        return NULL;
    }
    return g;
}

/* r1 = {4, 0.25}, r2 = {1, 4}: s = {sqrt(4/1), sqrt(0.25/4)} = {2, 0.25};
 * W1 / s = {2, 1}, b1 / s = {0.2, 0.4}, W2 * s = {2, 1}. */
static void test_hand_pair(void) {
    qf_graph *g = pair_net();
    CHECK(g);
    float x[4] = {0.5f, -1.0f, 2.0f, 0.25f}, y0[4], y1[4];
    int64_t xd[4] = {1, 1, 2, 2};
    CHECK(run(g, x, xd, 4, y0, 4) == 0);
    qf_cle_stats st;
    qf_err e;
    CHECK(qf_cle_apply(g, 1, &st, &e) == QF_OK);
    CHECK_EQ_INT(st.n_pairs, 1);
    CHECK(fabs(st.imbalance_before - 16.0) < 1e-9);
    CHECK(fabs(st.imbalance_after - 1.0) < 1e-6);
    const float *w1 = const_data(g, "w1"), *b1 = const_data(g, "b1"), *w2 = const_data(g, "w2");
    const float *b2 = const_data(g, "b2");
    CHECK(fabsf(w1[0] - 2.0f) < 1e-6f && fabsf(w1[1] - 1.0f) < 1e-6f);
    CHECK(fabsf(b1[0] - 0.2f) < 1e-6f && fabsf(b1[1] - 0.4f) < 1e-6f);
    CHECK(fabsf(w2[0] - 2.0f) < 1e-6f && fabsf(w2[1] - 1.0f) < 1e-6f);
    CHECK(fabsf(b2[0] - 0.3f) < 1e-7f); /* B's bias is not touched */
    CHECK(run(g, x, xd, 4, y1, 4) == 0);
    /* hand value of one output: x = 0.5 -> relu(2 + 0.4) * 1 + relu(0.125 + 0.1) * 4 + 0.3 */
    CHECK(fabsf(y0[0] - (2.4f + 0.9f + 0.3f)) < 1e-5f);
    for (int i = 0; i < 4; i++) CHECK(fabsf(y0[i] - y1[i]) < 1e-5f);
    qf_graph_free(g);
}

/* A Gemm between two layers with no equalisable partner is left alone,
 * and a weight read by two nodes is never rescaled. */
static void test_no_pair(void) {
    qf_graph *g = pair_net();
    CHECK(g);
    /* make A's output a graph output too: its scale is observable, so no pair */
    qf_graph_add_output(g, qf_graph_find_value(g, "a"));
    qf_cle_stats st;
    qf_err e;
    CHECK(qf_cle_apply(g, 4, &st, &e) == QF_OK);
    CHECK_EQ_INT(st.n_pairs, 0);
    CHECK(const_data(g, "w1")[0] == 4.0f && const_data(g, "w2")[1] == 4.0f);
    CHECK(qf_cle_apply(g, 1000, &st, &e) == QF_ERR_INVALID_ARG);
    qf_graph_free(g);
}

/* x[N,3,6,6] -> Conv A (8, 3x3, pad 1) -> Relu -> depthwise (8, 3x3, pad 1)
 * -> pointwise Conv (4, 1x1) -> Relu -> Flatten -> Gemm (144 -> 5, transB)
 * with A's channels scaled by 10^(i%4 - 2) so their ranges span 1000x. */
static qf_graph *chain_net(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {-1, 3, 6, 6};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    float wa[8 * 3 * 9], ba[8], wd[8 * 9], bd[8], wp[4 * 8], bp[4], wg[5 * 144], bg[5];
    for (int i = 0; i < 8 * 27; i++) wa[i] = frand() * powf(10.0f, (float)((i / 27) % 4 - 2));
    for (int i = 0; i < 8; i++) ba[i] = 0.1f * frand() * powf(10.0f, (float)(i % 4 - 2));
    for (int i = 0; i < 8 * 9; i++) wd[i] = frand();
    for (int i = 0; i < 8; i++) bd[i] = 0.1f * frand();
    for (int i = 0; i < 32; i++) wp[i] = frand();
    for (int i = 0; i < 4; i++) bp[i] = 0.1f * frand();
    for (int i = 0; i < 5 * 144; i++) wg[i] = 0.1f * frand();
    for (int i = 0; i < 5; i++) bg[i] = 0.1f * frand();
    int64_t dwa[4] = {8, 3, 3, 3}, d8[1] = {8}, dwd[4] = {8, 1, 3, 3}, dwp[4] = {4, 8, 1, 1},
            d4[1] = {4}, dwg[2] = {5, 144}, d5[1] = {5};
    int va = add_const(g, "wa", 4, dwa, wa), vba = add_const(g, "ba", 1, d8, ba);
    int vd = add_const(g, "wd", 4, dwd, wd), vbd = add_const(g, "bd", 1, d8, bd);
    int vp = add_const(g, "wp", 4, dwp, wp), vbp = add_const(g, "bp", 1, d4, bp);
    int vg = add_const(g, "wg", 2, dwg, wg), vbg = add_const(g, "bg", 1, d5, bg);
    const char *names[] = {"a", "ar", "d", "p", "pr", "f", "y"};
    int v[7];
    for (int i = 0; i < 7; i++) v[i] = qf_graph_add_value(g, names[i], QF_DT_UNDEF, -1, NULL);
    int64_t ks[2] = {3, 3}, pads[4] = {1, 1, 1, 1}, k1[2] = {1, 1};
    qf_attr ca[2] = {{.name = "kernel_shape", .type = QF_ATTR_INTS, .ints = ks, .n = 2},
                     {.name = "pads", .type = QF_ATTR_INTS, .ints = pads, .n = 4}};
    qf_attr da[3] = {ca[0], ca[1], {.name = "group", .type = QF_ATTR_INT, .i = 8}};
    qf_attr pa[1] = {{.name = "kernel_shape", .type = QF_ATTR_INTS, .ints = k1, .n = 2}};
    qf_attr tb = {.name = "transB", .type = QF_ATTR_INT, .i = 1};
    int ia[3] = {x, va, vba}, id[3] = {v[1], vd, vbd}, ip[3] = {v[2], vp, vbp},
        ig[3] = {v[5], vg, vbg};
    qf_graph_add_node(g, "convA", "Conv", "", 13, ia, 3, &v[0], 1, ca, 2);
    qf_graph_add_node(g, "reluA", "Relu", "", 13, &v[0], 1, &v[1], 1, NULL, 0);
    qf_graph_add_node(g, "dw", "Conv", "", 13, id, 3, &v[2], 1, da, 3);
    qf_graph_add_node(g, "pw", "Conv", "", 13, ip, 3, &v[3], 1, pa, 1);
    qf_graph_add_node(g, "reluP", "Relu", "", 13, &v[3], 1, &v[4], 1, NULL, 0);
    qf_graph_add_node(g, "flat", "Flatten", "", 13, &v[4], 1, &v[5], 1, NULL, 0);
    qf_graph_add_node(g, "fc", "Gemm", "", 13, ig, 3, &v[6], 1, &tb, 1);
    qf_graph_add_output(g, v[6]);
    qf_err e;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e) || qf_pass_infer_shapes(g, &e)) {
        fprintf(stderr, "chain_net: %s\n", e.msg);
        qf_graph_free(g);
        return NULL;
    }
    return g;
}

/* max over channels of max(r1/r2, r2/r1) for A's output channels against
 * the depthwise conv's (one 3x3 filter per channel), computed directly. */
static double dw_imbalance(qf_graph *g) {
    const float *wa = const_data(g, "wa"), *wd = const_data(g, "wd");
    double worst = 1;
    for (int c = 0; c < 8; c++) {
        double r1 = 0, r2 = 0;
        for (int k = 0; k < 27; k++) r1 = fmax(r1, fabs(wa[c * 27 + k]));
        for (int k = 0; k < 9; k++) r2 = fmax(r2, fabs(wd[c * 9 + k]));
        worst = fmax(worst, fmax(r1 / r2, r2 / r1));
    }
    return worst;
}

static void test_chain_equal_outputs(void) {
    qf_graph *g = chain_net();
    CHECK(g);
    enum { N = 2, PER = 3 * 36 };
    float x[N * PER], y0[N * 5], y1[N * 5];
    for (int i = 0; i < N * PER; i++) x[i] = frand();
    int64_t xd[4] = {N, 3, 6, 6};
    CHECK(run(g, x, xd, 4, y0, N * 5) == 0);
    double before = dw_imbalance(g);
    CHECK(before > 50); /* the constructed spread */
    qf_cle_stats st;
    qf_err e;
    CHECK_MSG(qf_cle_apply(g, 8, &st, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(st.n_pairs, 3); /* A -> dw, dw -> pw, pw -> flatten -> fc */
    CHECK(st.imbalance_after < st.imbalance_before);
    double after = dw_imbalance(g);
    CHECK_MSG(after < 2.0 && after < before / 25, "imbalance %g -> %g", before, after);
    CHECK(run(g, x, xd, 4, y1, N * 5) == 0);
    for (int i = 0; i < N * 5; i++)
        CHECK_MSG(fabsf(y0[i] - y1[i]) <= 1e-5f * (1.0f + fabsf(y0[i])), "y[%d] %g vs %g", i,
                  (double)y0[i], (double)y1[i]);
    qf_graph_free(g);
}

QT_MAIN(QT_CASE(test_hand_pair), QT_CASE(test_no_pair), QT_CASE(test_chain_equal_outputs))
