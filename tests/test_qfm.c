/* test_qfm.c - the qfm native format: round trips (a hand-built quantized
 * graph with every attribute type, and ONNX test models) compared value by
 * value and run through the session API bit for bit; zero-copy constants in
 * the mapping; every byte flipped, every truncation, hand-crafted hostile
 * counts and offsets (checksums recomputed so the checks behind them are
 * reached); atomic writes; every allocation failing in turn.
 * The crafted files are edited with field offsets taken from
 * docs/qfm-format.md, written out here independently of the reader. */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/onnx.h"
#include "io/qfm.h"
#include "io/qfm_codec.h"
#include "ir/ops.h"
#include "qtest.h"
#include "runtime/runtime.h"

#define TESTDATA "/usr/share/libonnx-testdata/data/"

/* ---- temp directory ------------------------------------------------------ */
static char tmp_dir[256];

/* Remove the temp directory and its files at exit. */
static void remove_tmp_dir(void) {
    DIR *d = opendir(tmp_dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmp_dir);
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    if (!tmp_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/qf_qfm_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_dir)) return NULL;
        atexit(remove_tmp_dir);
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* ---- the hand-built model ------------------------------------------------ */
/* x[N,2,5,5] -> Conv(W = Cast(wq) * ws, B = Cast(bq) * bs; 3x3, pad 1)
 *   -> LeakyRelu(0.1) -> Clip(min omitted, max = 2.5) -> Add(c from a
 *   Constant node's TENSOR attribute) -> Dropout(mask output omitted) -> y
 * wq is int8 with per-channel qparams, bq int32; two unused constants (an
 * empty int64 one and a uint8 one with per-tensor qparams) ride along. */
enum { M_OC = 3, M_IC = 2, M_K = 3, M_HW = 5 };
static const float w_scale[M_OC] = {0.02f, 0.05f, 0.1f};
static const float b_scale[M_OC] = {0.001f, 0.0025f, 0.005f};

static int8_t wq_data[M_OC * M_IC * M_K * M_K];
static int32_t bq_data[M_OC] = {-1200, 345, 70000};

/* attribute payloads must outlive the graph: static storage */
static int64_t a_kernel[2] = {3, 3}, a_pads[4] = {1, 1, 1, 1}, a_strides[2] = {1, 1};
static int64_t a_ints[3] = {INT64_MIN, -1, INT64_MAX};
static float a_floats[4] = {1.5f, -0.0f, 3.0e-39f /* subnormal */, 1e30f};
static const char *a_strings[3] = {"alpha", "",
                                   "\xc3\xbcnic\xc3\xb6"
                                   "de"};
static float c_value[1] = {0.25f};

/* value indices of the model (writer order = these) */
enum {
    V_X,
    V_WQ,
    V_WS,
    V_WF,
    V_W,
    V_BQ,
    V_BS,
    V_BF,
    V_B,
    V_CONV,
    V_LR,
    V_CLIPMAX,
    V_CLIP,
    V_C,
    V_ADD,
    V_Y,
    V_EMPTY,
    V_U8,
    V_COUNT
};

static qf_graph *build_model(void) {
    for (int i = 0; i < (int)sizeof wq_data; i++)
        wq_data[i] = (int8_t)((i * 53) % 255 - 127);
    qf_graph *g = qf_graph_create();
    if (!g) return NULL;
    g->name = "qfm_test";
    g->producer = "test_qfm";
    g->opset = 13;
    int64_t dx[4] = {-1, M_IC, M_HW, M_HW}, dw[4] = {M_OC, M_IC, M_K, M_K};
    int64_t ds[4] = {M_OC, 1, 1, 1}, db[1] = {M_OC}, dconv[4] = {-1, M_OC, M_HW, M_HW};
    int64_t dempty[1] = {0}, du8[2] = {2, 3};
    struct {
        const char *name;
        qf_dtype dt;
        int rank;
        const int64_t *dims;
    } vals[V_COUNT] = {
        [V_X] = {"x", QF_DT_F32, 4, dx},
        [V_WQ] = {"wq", QF_DT_I8, 4, dw},
        [V_WS] = {"ws", QF_DT_F32, 4, ds},
        [V_WF] = {"wf", QF_DT_UNDEF, -1, NULL},
        [V_W] = {"w", QF_DT_UNDEF, -1, NULL},
        [V_BQ] = {"bq", QF_DT_I32, 1, db},
        [V_BS] = {"bs", QF_DT_F32, 1, db},
        [V_BF] = {"bf", QF_DT_UNDEF, -1, NULL},
        [V_B] = {"b", QF_DT_UNDEF, -1, NULL},
        [V_CONV] = {"conv", QF_DT_F32, 4, dconv},
        [V_LR] = {"lr", QF_DT_UNDEF, -1, NULL},
        [V_CLIPMAX] = {"clip_max", QF_DT_F32, 0, NULL},
        [V_CLIP] = {"clip", QF_DT_UNDEF, -1, NULL},
        [V_C] = {"c", QF_DT_UNDEF, -1, NULL},
        [V_ADD] = {"add", QF_DT_UNDEF, -1, NULL},
        [V_Y] = {"y", QF_DT_F32, 4, dconv},
        [V_EMPTY] = {"unused_empty", QF_DT_I64, 1, dempty},
        [V_U8] = {"unused_u8", QF_DT_U8, 2, du8},
    };
    for (int i = 0; i < V_COUNT; i++)
        if (qf_graph_add_value(g, vals[i].name, vals[i].dt, vals[i].rank, vals[i].dims) != i)
            goto fail;
    float clip_max = 2.5f;
    uint8_t u8[6] = {0, 1, 127, 128, 254, 255};
    int64_t empty[1];
    struct {
        int v;
        const void *data;
    } consts[] = {{V_WQ, wq_data},        {V_WS, w_scale},  {V_BQ, bq_data}, {V_BS, b_scale},
                  {V_CLIPMAX, &clip_max}, {V_EMPTY, empty}, {V_U8, u8}};
    qf_err e;
    for (size_t i = 0; i < QF_ARRAY_LEN(consts); i++) {
        qf_tensor t = qf_value_tensor(&g->values[consts[i].v]);
        t.data = (void *)(uintptr_t)consts[i].data;
        if (qf_graph_set_const(g, consts[i].v, &t, &e)) goto fail;
    }
    int32_t zp0[M_OC] = {0, 0, 0}, zp_act = -3, zp_u8 = 128;
    float s_act = 0.05f, s_u8 = 0.5f;
    if (qf_value_set_qparams(g, V_WQ, 8, 0, M_OC, w_scale, zp0) ||
        qf_value_set_qparams(g, V_BQ, 32, 0, M_OC, b_scale, zp0) ||
        qf_value_set_qparams(g, V_CONV, 8, -1, 1, &s_act, &zp_act) ||
        qf_value_set_qparams(g, V_U8, 8, -1, 1, &s_u8, &zp_u8))
        goto fail;

    qf_attr cast_to = {.name = "to", .type = QF_ATTR_INT, .i = QF_DT_F32};
    qf_attr conv_attrs[] = {
        {.name = "kernel_shape", .type = QF_ATTR_INTS, .ints = a_kernel, .n = 2},
        {.name = "pads", .type = QF_ATTR_INTS, .ints = a_pads, .n = 4},
        {.name = "strides", .type = QF_ATTR_INTS, .ints = a_strides, .n = 2},
        {.name = "group", .type = QF_ATTR_INT, .i = 1},
        {.name = "auto_pad", .type = QF_ATTR_STRING, .s = "NOTSET"},
    };
    qf_attr lr_alpha = {.name = "alpha", .type = QF_ATTR_FLOAT, .f = 0.1f};
    qf_attr const_attr = {.name = "value",
                          .type = QF_ATTR_TENSOR,
                          .t = {.dtype = QF_DT_F32, .rank = 1, .dims = {1}, .data = c_value}};
    /* Dropout has no attribute parser: a carrier for the remaining types */
    qf_attr extra[] = {
        {.name = "qf_ints", .type = QF_ATTR_INTS, .ints = a_ints, .n = 3},
        {.name = "qf_floats", .type = QF_ATTR_FLOATS, .floats = a_floats, .n = 4},
        {.name = "qf_strings", .type = QF_ATTR_STRINGS, .strings = a_strings, .n = 3},
        {.name = "qf_empty_ints", .type = QF_ATTR_INTS, .ints = NULL, .n = 0},
        {.name = "qf_int", .type = QF_ATTR_INT, .i = INT64_MIN},
        {.name = "qf_undecoded", .type = QF_ATTR_UNDEF},
        {.name = "qf_subgraph", .type = QF_ATTR_GRAPH},
    };
    int in_cast_w[1] = {V_WQ}, in_mul_w[2] = {V_WF, V_WS}, in_cast_b[1] = {V_BQ};
    int in_mul_b[2] = {V_BF, V_BS}, in_conv[3] = {V_X, V_W, V_B}, in_lr[1] = {V_CONV};
    int in_clip[3] = {V_LR, -1, V_CLIPMAX}, in_add[2] = {V_CLIP, V_C}, in_drop[1] = {V_ADD};
    int o_wf = V_WF, o_w = V_W, o_bf = V_BF, o_b = V_B, o_conv = V_CONV, o_lr = V_LR;
    int o_clip = V_CLIP, o_c = V_C, o_add = V_ADD, o_drop[2] = {V_Y, -1};
    if (qf_graph_add_node(g, "cast_w", "Cast", "", 13, in_cast_w, 1, &o_wf, 1, &cast_to, 1) < 0 ||
        qf_graph_add_node(g, "dq_w", "Mul", "", 13, in_mul_w, 2, &o_w, 1, NULL, 0) < 0 ||
        qf_graph_add_node(g, "cast_b", "Cast", "ai.onnx", 13, in_cast_b, 1, &o_bf, 1, &cast_to, 1) <
            0 ||
        qf_graph_add_node(g, "dq_b", "Mul", "", 13, in_mul_b, 2, &o_b, 1, NULL, 0) < 0 ||
        qf_graph_add_node(g, "conv", "Conv", "", 11, in_conv, 3, &o_conv, 1, conv_attrs,
                          (int)QF_ARRAY_LEN(conv_attrs)) < 0 ||
        qf_graph_add_node(g, "lrelu", "LeakyRelu", "", 6, in_lr, 1, &o_lr, 1, &lr_alpha, 1) < 0 ||
        qf_graph_add_node(g, "clip", "Clip", "", 13, in_clip, 3, &o_clip, 1, NULL, 0) < 0 ||
        qf_graph_add_node(g, "", "Constant", "", 13, NULL, 0, &o_c, 1, &const_attr, 1) < 0 ||
        qf_graph_add_node(g, "add", "Add", "", 13, in_add, 2, &o_add, 1, NULL, 0) < 0 ||
        qf_graph_add_node(g, "drop", "Dropout", "", 13, in_drop, 1, o_drop, 2, extra,
                          (int)QF_ARRAY_LEN(extra)) < 0)
        goto fail;
    if (qf_graph_add_input(g, V_X) || qf_graph_add_output(g, V_Y)) goto fail;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e)) {
        fprintf(stderr, "build_model: %s\n", e.msg);
        goto fail;
    }
    return g;
fail:
    qf_graph_free(g);
    return NULL;
}

/* Independent reference of the model: naive convolution over dequantized
 * weights, then the elementwise tail. */
static void model_reference(const float *x, int n, float *y) {
    for (int b = 0; b < n; b++)
        for (int m = 0; m < M_OC; m++)
            for (int oh = 0; oh < M_HW; oh++)
                for (int ow = 0; ow < M_HW; ow++) {
                    double acc = (double)((float)bq_data[m] * b_scale[m]);
                    for (int c = 0; c < M_IC; c++)
                        for (int kh = 0; kh < M_K; kh++)
                            for (int kw = 0; kw < M_K; kw++) {
                                int ih = oh + kh - 1, iw = ow + kw - 1;
                                if (ih < 0 || iw < 0 || ih >= M_HW || iw >= M_HW) continue;
                                float wv = (float)wq_data[((m * M_IC + c) * M_K + kh) * M_K + kw] *
                                           w_scale[m];
                                acc += (double)wv * x[((b * M_IC + c) * M_HW + ih) * M_HW + iw];
                            }
                    double v = acc < 0 ? 0.1 * acc : acc;
                    if (v > 2.5) v = 2.5;
                    y[((b * M_OC + m) * M_HW + oh) * M_HW + ow] = (float)(v + 0.25);
                }
}

static void fill_input(float *x, int count) {
    for (int i = 0; i < count; i++)
        x[i] = (float)((i * 29) % 41 - 20) * 0.37f;
}

/* ---- graph comparison ---------------------------------------------------- */
static int same_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static void compare_tensor_attr(const qf_tensor *a, const qf_tensor *b) {
    CHECK_EQ_INT(a->dtype, b->dtype);
    CHECK_EQ_INT(a->rank, b->rank);
    for (int d = 0; d < a->rank; d++)
        CHECK_EQ_INT(a->dims[d], b->dims[d]);
    int64_t n = qf_tensor_numel(a);
    size_t bytes = (size_t)n * qf_dtype_size(a->dtype);
    CHECK(bytes == 0 || memcmp(a->data, b->data, bytes) == 0);
}

static void compare_attr(const qf_attr *a, const qf_attr *b) {
    CHECK_MSG(same_str(a->name, b->name), "%s vs %s", a->name, b->name);
    CHECK_EQ_INT(a->type, b->type);
    switch (a->type) {
    case QF_ATTR_INT: CHECK_EQ_INT(a->i, b->i); break;
    case QF_ATTR_FLOAT: CHECK(memcmp(&a->f, &b->f, 4) == 0); break;
    case QF_ATTR_STRING: CHECK(same_str(a->s, b->s)); break;
    case QF_ATTR_INTS:
        CHECK_EQ_INT(a->n, b->n);
        for (int k = 0; k < a->n; k++)
            CHECK_EQ_INT(a->ints[k], b->ints[k]);
        break;
    case QF_ATTR_FLOATS:
        CHECK_EQ_INT(a->n, b->n);
        for (int k = 0; k < a->n; k++)
            CHECK(memcmp(&a->floats[k], &b->floats[k], 4) == 0);
        break;
    case QF_ATTR_STRINGS:
        CHECK_EQ_INT(a->n, b->n);
        for (int k = 0; k < a->n; k++)
            CHECK(same_str(a->strings[k], b->strings[k]));
        break;
    case QF_ATTR_TENSOR: compare_tensor_attr(&a->t, &b->t); break;
    default: break;
    }
}

/* Every field of every value, node and attribute; every constant byte. */
static void compare_graphs(const qf_graph *a, const qf_graph *b) {
    CHECK(same_str(a->name, b->name));
    CHECK(same_str(a->producer, b->producer));
    CHECK_EQ_INT(a->opset, b->opset);
    CHECK_EQ_INT(a->n_values, b->n_values);
    CHECK_EQ_INT(a->n_nodes, b->n_nodes);
    CHECK_EQ_INT(a->n_inputs, b->n_inputs);
    CHECK_EQ_INT(a->n_outputs, b->n_outputs);
    for (int i = 0; i < a->n_inputs; i++)
        CHECK_EQ_INT(a->inputs[i], b->inputs[i]);
    for (int i = 0; i < a->n_outputs; i++)
        CHECK_EQ_INT(a->outputs[i], b->outputs[i]);
    for (int i = 0; i < a->n_values; i++) {
        const qf_value *u = &a->values[i], *v = &b->values[i];
        CHECK_MSG(same_str(u->name, v->name), "value %d: %s vs %s", i, u->name, v->name);
        CHECK_EQ_INT(u->dtype, v->dtype);
        CHECK_EQ_INT(u->rank, v->rank);
        for (int d = 0; d < u->rank; d++)
            CHECK_EQ_INT(u->dims[d], v->dims[d]);
        CHECK_EQ_INT(u->flags, v->flags);
        CHECK_EQ_INT(u->producer, v->producer);
        CHECK_EQ_INT(u->nbytes, v->nbytes);
        if (u->flags & QF_VAL_CONST) {
            CHECK(v->data != NULL);
            CHECK(u->nbytes == 0 || memcmp(u->data, v->data, u->nbytes) == 0);
        }
        CHECK_EQ_INT(u->qp != NULL, v->qp != NULL);
        if (u->qp) {
            CHECK_EQ_INT(u->qp->bits, v->qp->bits);
            CHECK_EQ_INT(u->qp->axis, v->qp->axis);
            CHECK_EQ_INT(u->qp->n, v->qp->n);
            for (int k = 0; k < u->qp->n; k++) {
                CHECK(memcmp(&u->qp->scale[k], &v->qp->scale[k], 4) == 0);
                CHECK_EQ_INT(u->qp->zero_point[k], v->qp->zero_point[k]);
            }
        }
    }
    for (int i = 0; i < a->n_nodes; i++) {
        const qf_node *m = &a->nodes[i], *n = &b->nodes[i];
        CHECK_MSG(same_str(m->name, n->name), "node %d: %s vs %s", i, m->name, n->name);
        CHECK(same_str(m->op_type, n->op_type));
        CHECK(same_str(m->domain, n->domain));
        CHECK_EQ_INT(m->op, n->op);
        CHECK_EQ_INT(m->opset, n->opset);
        CHECK_EQ_INT(m->n_inputs, n->n_inputs);
        CHECK_EQ_INT(m->n_outputs, n->n_outputs);
        CHECK_EQ_INT(m->n_attrs, n->n_attrs);
        CHECK_EQ_INT(m->params != NULL, n->params != NULL);
        for (int j = 0; j < m->n_inputs; j++)
            CHECK_EQ_INT(m->inputs[j], n->inputs[j]);
        for (int j = 0; j < m->n_outputs; j++)
            CHECK_EQ_INT(m->outputs[j], n->outputs[j]);
        for (int k = 0; k < m->n_attrs; k++) {
            compare_attr(&m->attrs[k], &n->attrs[k]);
            if (qt_failed_flag) return;
        }
    }
}

/* ---- running --------------------------------------------------------------- */
/* Run g (ownership taken) on inputs; copy output 0 into out (cap floats).
 * Returns the element count, or -1 on failure (message in e). */
static int64_t run_graph(qf_graph *g, const qf_tensor *in, int n_in, void *out, size_t cap,
                         qf_err *e) {
    qf_model *m;
    if (qf_model_from_graph(g, "qfm-test", &m, e)) {
        qf_graph_free(g);
        return -1;
    }
    qf_session *s = NULL;
    qf_tensor y;
    int64_t n = -1;
    if (!qf_session_create(m, NULL, &s, e) && !qf_session_run(s, in, n_in, &y, 1, e)) {
        n = qf_tensor_numel(&y);
        size_t bytes = (size_t)n * qf_dtype_size(y.dtype);
        if (bytes > cap)
            n = -1;
        else
            memcpy(out, y.data, bytes);
    }
    qf_session_free(s);
    qf_model_free(m);
    return n;
}

static const char *read_bytes(const char *path, unsigned char **buf, size_t *len) {
    qf_err e;
    void *b;
    if (qf_read_file(path, &b, len, &e)) return "read failed";
    *buf = b;
    return NULL;
}

/* ---- tests ------------------------------------------------------------------ */
static void roundtrip_handbuilt_model(void) {
    qf_graph *g = build_model();
    CHECK(g != NULL);
    const char *path = tmp_path("model.qfm");
    const char *meta = "{\"source_sha256\": \"ab12\", \"settings\": {\"bits\": 8}, "
                       "\"accuracy\": 0.9125, \"note\": \"\xe2\x9c\x93\"}";
    qf_err e;
    qf_status st = qf_qfm_write(g, meta, path, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    qf_graph *h = NULL;
    char *meta_back = NULL;
    st = qf_qfm_load(path, &h, &meta_back, &e);
    if (st) qf_graph_free(g);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    compare_graphs(g, h);
    int ok = !qt_failed_flag && meta_back && strcmp(meta, meta_back) == 0;
    qf_free(meta_back);
    enum { N = 2, NX = N * M_IC * M_HW * M_HW, NY = N * M_OC * M_HW * M_HW };
    static float x[NX], y1[NY], y2[NY], ref[NY];
    fill_input(x, NX);
    model_reference(x, N, ref);
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 4, .dims = {N, M_IC, M_HW, M_HW}, .data = x};
    int64_t n1 = run_graph(g, &in, 1, y1, sizeof y1, &e);
    CHECK_MSG(n1 == NY, "original: %s", e.msg);
    int64_t n2 = run_graph(h, &in, 1, y2, sizeof y2, &e);
    CHECK_MSG(n2 == NY, "loaded: %s", e.msg);
    CHECK(ok);
    CHECK(memcmp(y1, y2, sizeof y1) == 0); /* bit for bit */
    for (int i = 0; i < NY; i++)
        CHECK_NEAR(y2[i], ref[i], 1e-4);
}

static void constants_aligned_in_mapping(void) {
    qf_graph *g = build_model();
    CHECK(g != NULL);
    /* a tensor of two pages: large enough to be used in place */
    static uint8_t big[8192];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    int64_t dbig[1] = {(int64_t)sizeof big};
    int vbig = qf_graph_add_value(g, "big", QF_DT_U8, 1, dbig);
    qf_err e;
    qf_tensor tb = qf_value_tensor(&g->values[vbig]);
    tb.data = big;
    CHECK(vbig >= 0 && qf_graph_set_const(g, vbig, &tb, &e) == QF_OK);
    const char *path = tmp_path("aligned.qfm");
    qf_status st = qf_qfm_write(g, NULL, path, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    qf_graph *h = NULL, *k = NULL;
    char *meta = (char *)"sentinel";
    st = qf_qfm_load(path, &h, &meta, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(meta == NULL); /* written without metadata */
    CHECK(h->mapping != NULL && h->mapping_len > 0);
    const unsigned char *lo = h->mapping, *hi = lo + h->mapping_len;
    int n_const = 0;
    for (int i = 0; i < h->n_values; i++) {
        const qf_value *v = &h->values[i];
        if (!(v->flags & QF_VAL_CONST)) continue;
        n_const++;
        const unsigned char *p = v->data;
        /* tensors of a page or more stay in the mapping; smaller ones (read
         * on every run: scales, biases) are owned copies, so the runtime can
         * release the mapping's pages after packing the weights */
        const bool in_place = v->nbytes >= 4096;
        CHECK_MSG(v->data_external == in_place, "%s (%zu bytes)", v->name, v->nbytes);
        CHECK_MSG(((uintptr_t)p & 63) == 0, "%s at %p", v->name, v->data);
        if (in_place) CHECK(p >= lo && p + v->nbytes <= hi);
        if (!in_place && v->nbytes) CHECK(p + v->nbytes <= lo || p >= hi);
        CHECK(v->nbytes == 0 || memcmp(p, g->values[i].data, v->nbytes) == 0);
    }
    CHECK_EQ_INT(n_const, 8);
    CHECK(h->values[vbig].data_external);
    /* the in-memory loader copies: owned, aligned, equal */
    unsigned char *buf;
    size_t len;
    CHECK(read_bytes(path, &buf, &len) == NULL);
    st = qf_qfm_load_mem(buf, len, "aligned.qfm", &k, NULL, &e);
    qf_free(buf);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(k->mapping == NULL);
    for (int i = 0; i < k->n_values; i++) {
        const qf_value *v = &k->values[i];
        if (!(v->flags & QF_VAL_CONST)) continue;
        CHECK(!v->data_external && ((uintptr_t)v->data & 63) == 0);
    }
    compare_graphs(h, k);
    /* writing the mapped graph again gives the same bytes: the writer is
     * deterministic and reads constants straight from the mapping */
    const char *path2 = tmp_path("aligned2.qfm");
    st = qf_qfm_write(h, NULL, path2, &e);
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    int same = st == QF_OK && !read_bytes(path, &b1, &l1) && !read_bytes(path2, &b2, &l2) &&
               l1 == l2 && memcmp(b1, b2, l1) == 0;
    qf_free(b1);
    qf_free(b2);
    qf_graph_free(g);
    qf_graph_free(h);
    qf_graph_free(k);
    CHECK_MSG(same, "rewrite differs (%zu vs %zu bytes): %s", l1, l2, st ? e.msg : "");
}

/* An integer model as the quantizer emits it: QuantizeLinear ->
 * QLinearConv (int8 per-channel weights, int32 bias) -> DequantizeLinear.
 * Loaded and original run bit for bit alike; both are within one output
 * quantization step of a naive integer reference computed here. */
static void roundtrip_qlinear_model(void) {
    enum { OC = 3, IC = 2, K = 3, HW = 5, NX = IC * HW * HW, NY = OC * HW * HW };
    static const float xs = 0.05f, ys = 0.08f, ws[OC] = {0.01f, 0.02f, 0.015f};
    static const int8_t xzp = -2, yzp = 5, wzp[OC] = {0, 0, 0};
    static int8_t wq[OC * IC * K * K];
    static int32_t bias[OC] = {-300, 0, 450};
    static int64_t pads[4] = {1, 1, 1, 1};
    for (int i = 0; i < OC * IC * K * K; i++)
        wq[i] = (int8_t)((i * 71) % 201 - 100);
    float bs[OC];
    for (int m = 0; m < OC; m++)
        bs[m] = xs * ws[m];
    qf_graph *g = qf_graph_create();
    CHECK(g != NULL);
    int64_t dx[4] = {1, IC, HW, HW}, dw[4] = {OC, IC, K, K}, dc[1] = {OC};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, dx);
    int v_xs = qf_graph_add_value(g, "x_scale", QF_DT_F32, 0, NULL);
    int v_xzp = qf_graph_add_value(g, "x_zp", QF_DT_I8, 0, NULL);
    int xq = qf_graph_add_value(g, "x_q", QF_DT_I8, 4, dx);
    int v_wq = qf_graph_add_value(g, "w_q", QF_DT_I8, 4, dw);
    int v_ws = qf_graph_add_value(g, "w_scale", QF_DT_F32, 1, dc);
    int v_wzp = qf_graph_add_value(g, "w_zp", QF_DT_I8, 1, dc);
    int v_ys = qf_graph_add_value(g, "y_scale", QF_DT_F32, 0, NULL);
    int v_yzp = qf_graph_add_value(g, "y_zp", QF_DT_I8, 0, NULL);
    int v_b = qf_graph_add_value(g, "bias", QF_DT_I32, 1, dc);
    int yq = qf_graph_add_value(g, "y_q", QF_DT_UNDEF, -1, NULL);
    int y = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    struct {
        int v;
        const void *d;
    } c[] = {{v_xs, &xs},  {v_xzp, &xzp}, {v_wq, wq},    {v_ws, ws},
             {v_wzp, wzp}, {v_ys, &ys},   {v_yzp, &yzp}, {v_b, bias}};
    qf_err e;
    for (size_t i = 0; i < QF_ARRAY_LEN(c); i++) {
        qf_tensor t = qf_value_tensor(&g->values[c[i].v]);
        t.data = (void *)(uintptr_t)c[i].d;
        CHECK_OK(qf_graph_set_const(g, c[i].v, &t, &e));
    }
    int32_t zx = xzp, z0[OC] = {0, 0, 0};
    CHECK_OK(qf_value_set_qparams(g, xq, 8, -1, 1, &xs, &zx));
    CHECK_OK(qf_value_set_qparams(g, v_wq, 8, 0, OC, ws, z0));
    CHECK_OK(qf_value_set_qparams(g, v_b, 32, 0, OC, bs, z0));
    qf_attr pad = {.name = "pads", .type = QF_ATTR_INTS, .ints = pads, .n = 4};
    int in_q[3] = {x, v_xs, v_xzp};
    int in_c[9] = {xq, v_xs, v_xzp, v_wq, v_ws, v_wzp, v_ys, v_yzp, v_b};
    int in_d[3] = {yq, v_ys, v_yzp};
    CHECK(qf_graph_add_node(g, "quant", "QuantizeLinear", "", 13, in_q, 3, &xq, 1, NULL, 0) >= 0);
    CHECK(qf_graph_add_node(g, "qconv", "QLinearConv", "", 10, in_c, 9, &yq, 1, &pad, 1) >= 0);
    CHECK(qf_graph_add_node(g, "dequant", "DequantizeLinear", "", 13, in_d, 3, &y, 1, NULL, 0) >=
          0);
    CHECK_OK(qf_graph_add_input(g, x));
    CHECK_OK(qf_graph_add_output(g, y));
    qf_status st = qf_graph_toposort(g, &e);
    if (!st) st = qf_graph_parse_ops(g, &e);
    if (st) qf_graph_free(g);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    const char *path = tmp_path("qlinear.qfm");
    qf_graph *h = NULL;
    st = qf_qfm_write(g, "{\"scheme\": \"int8\"}", path, &e);
    if (!st) st = qf_qfm_load(path, &h, NULL, &e);
    if (!st) compare_graphs(g, h);
    if (st || qt_failed_flag) {
        qf_graph_free(g);
        qf_graph_free(h);
        CHECK_MSG(0, "%s", st ? e.msg : "graphs differ");
    }
    static float xin[NX], y1[NY], y2[NY];
    for (int i = 0; i < NX; i++)
        xin[i] = (float)((i * 37) % 61 - 30) * 0.11f;
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 4, .dims = {1, IC, HW, HW}, .data = xin};
    int64_t n1 = run_graph(g, &in, 1, y1, sizeof y1, &e);
    CHECK_MSG(n1 == NY, "original: %s", e.msg);
    int64_t n2 = run_graph(h, &in, 1, y2, sizeof y2, &e);
    CHECK_MSG(n2 == NY, "loaded: %s", e.msg);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    /* naive integer reference */
    for (int m = 0; m < OC; m++)
        for (int oh = 0; oh < HW; oh++)
            for (int ow = 0; ow < HW; ow++) {
                int64_t acc = bias[m];
                for (int ci = 0; ci < IC; ci++)
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            int ih = oh + kh - 1, iw = ow + kw - 1;
                            if (ih < 0 || iw < 0 || ih >= HW || iw >= HW) continue;
                            double q = nearbyint((double)xin[(ci * HW + ih) * HW + iw] / xs) + xzp;
                            q = q < -128 ? -128 : q > 127 ? 127 : q;
                            acc += ((int64_t)q - xzp) * wq[((m * IC + ci) * K + kh) * K + kw];
                        }
                double r = nearbyint((double)acc * xs * ws[m] / ys) + yzp;
                r = r < -128 ? -128 : r > 127 ? 127 : r;
                double want = (r - yzp) * ys;
                CHECK_NEAR(y2[(m * HW + oh) * HW + ow], want, ys * 1.001);
            }
}

/* Turn graph inputs k >= keep into constants holding t[k] (ONNX's node
 * tests feed weights as inputs; frozen, they become real initializers). */
static int freeze_inputs(qf_graph *g, int keep, const qf_tensor *t) {
    qf_err e;
    for (int k = keep; k < g->n_inputs; k++) {
        int v = g->inputs[k];
        if (qf_graph_set_const(g, v, &t[k], &e)) return -1;
        g->values[v].flags &= ~(uint32_t)QF_VAL_INPUT;
    }
    if (keep < g->n_inputs) g->n_inputs = keep;
    return 0;
}

/* ONNX test models: import, freeze weights into constants, write, load;
 * compare graphs; run both on ONNX's own test inputs: identical outputs,
 * close to ONNX's expected output. */
static void roundtrip_onnx_models(void) {
    static const struct {
        const char *dir;
        int keep;
    } models[] = {
        {"test_conv_with_strides_padding", 1}, /* W frozen */
        {"test_batchnorm_example", 1},         /* scale, B, mean, var frozen */
        {"test_gemm_all_attributes", 1},       /* B, C frozen; alpha, beta, transA/B */
        {"test_averagepool_2d_pads", 1},       {"test_leakyrelu", 1},
    };
    for (size_t mi = 0; mi < QF_ARRAY_LEN(models); mi++) {
        char p[512];
        qf_err e;
        qf_graph *g = NULL, *h = NULL;
        const char *dir = models[mi].dir;
        snprintf(p, sizeof p, TESTDATA "node/%s/model.onnx", dir);
        qf_status st = qf_onnx_import_file(p, &g, &e);
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        qf_tensor in[8], want;
        int n_in = g->n_inputs;
        if (n_in > 8) qf_graph_free(g);
        CHECK(n_in <= 8);
        for (int i = 0; i < n_in; i++) {
            snprintf(p, sizeof p, TESTDATA "node/%s/test_data_set_0/input_%d.pb", dir, i);
            CHECK_MSG(qf_onnx_read_tensor_file(p, &in[i], &e) == QF_OK, "%s", e.msg);
        }
        snprintf(p, sizeof p, TESTDATA "node/%s/test_data_set_0/output_0.pb", dir);
        CHECK_MSG(qf_onnx_read_tensor_file(p, &want, &e) == QF_OK, "%s", e.msg);
        CHECK(freeze_inputs(g, models[mi].keep, in) == 0);
        const char *out = tmp_path("onnx.qfm");
        st = qf_qfm_write(g, "{}", out, &e);
        if (!st) st = qf_qfm_load(out, &h, NULL, &e);
        if (!st) compare_graphs(g, h);
        if (st || qt_failed_flag) {
            fprintf(stderr, "  (model %s) %s\n", dir, st ? e.msg : "");
            qt_failed_flag = 1;
            qf_graph_free(g);
            qf_graph_free(h);
            return;
        }
        int64_t nw = qf_tensor_numel(&want);
        size_t bytes = sizeof(float) * (size_t)nw;
        float *y1 = qf_malloc(bytes), *y2 = qf_malloc(bytes);
        int n_run = models[mi].keep < n_in ? models[mi].keep : n_in;
        int64_t n1 = run_graph(g, in, n_run, y1, bytes, &e);
        int64_t n2 = run_graph(h, in, n_run, y2, bytes, &e);
        int same = n1 == nw && n2 == nw && memcmp(y1, y2, bytes) == 0;
        double maxdiff = 0;
        for (int64_t i = 0; same && i < nw; i++) {
            double d = fabs((double)y2[i] - ((const float *)want.data)[i]);
            if (d > maxdiff) maxdiff = d;
        }
        for (int i = 0; i < n_in; i++)
            qf_free_aligned(in[i].data);
        qf_free_aligned(want.data);
        qf_free(y1);
        qf_free(y2);
        CHECK_MSG(same, "%s: outputs differ (%lld, %lld of %lld): %s", dir, (long long)n1,
                  (long long)n2, (long long)nw, e.msg);
        CHECK_MSG(maxdiff < 1e-4, "%s: max diff %g from ONNX's output", dir, maxdiff);
    }
}

static void metadata_cases(void) {
    static const struct {
        const char *meta;
        qf_status want;
    } cases[] = {
        {NULL, QF_OK},
        {"", QF_OK},
        {"{\"k\": [1, 2, 3]}", QF_OK},
        {"{\"bad\": \"\xff\"}", QF_ERR_INVALID_ARG}, /* not UTF-8 */
        {"{\"overlong\": \"\xc0\xaf\"}", QF_ERR_INVALID_ARG},
        {"{\"surrogate\": \"\xed\xa0\x80\"}", QF_ERR_INVALID_ARG},
    };
    qf_graph *g = build_model();
    CHECK(g != NULL);
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        const char *path = tmp_path("meta.qfm");
        unlink(path);
        qf_err e;
        qf_status st = qf_qfm_write(g, cases[i].meta, path, &e);
        CHECK_MSG(st == cases[i].want, "case %zu: %d %s", i, (int)st, e.msg);
        if (st) {
            CHECK(access(path, F_OK) != 0);
            continue;
        }
        qf_graph *h;
        char *m = NULL;
        st = qf_qfm_load(path, &h, &m, &e);
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        int ok = cases[i].meta ? (m && strcmp(m, cases[i].meta) == 0) : m == NULL;
        qf_free(m);
        qf_graph_free(h);
        CHECK_MSG(ok, "case %zu", i);
    }
    qf_graph_free(g);
}

/* Bytes of the small model file (written once). */
/* The small model as written by default (compressed sections), or with
 * raw sections when a test edits fields at the spec's offsets. */
static unsigned char *small_file_ex(size_t *len, bool raw_sections) {
    qf_graph *g = build_model();
    if (!g) return NULL;
    const char *path = tmp_path("small.qfm");
    qf_err e;
    qf_qfm_write_options o = {.raw_sections = raw_sections};
    qf_status st = qf_qfm_write_ex(g, "{\"accuracy\": 0.5}", path, &o, &e);
    qf_graph_free(g);
    unsigned char *buf = NULL;
    if (st || read_bytes(path, &buf, len)) return NULL;
    return buf;
}

static unsigned char *small_file(size_t *len) { return small_file_ex(len, true); }

static int one_line_naming(const qf_err *e, const char *name) {
    return strncmp(e->msg, name, strlen(name)) == 0 && !strchr(e->msg, '\n');
}

static void every_byte_flipped_in(bool raw_sections) {
    size_t len;
    unsigned char *orig = small_file_ex(&len, raw_sections);
    CHECK(orig != NULL);
    CHECK_MSG(len > 1000 && len < 8192, "%zu bytes", len);
    enum { N = 1, NX = N * M_IC * M_HW * M_HW, NY = N * M_OC * M_HW * M_HW };
    static float x[NX], ref[NY], y[NY];
    fill_input(x, NX);
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 4, .dims = {N, M_IC, M_HW, M_HW}, .data = x};
    qf_err e;
    qf_graph *g0;
    CHECK_OK(qf_qfm_load_mem(orig, len, "flip.qfm", &g0, NULL, &e));
    CHECK(run_graph(g0, &in, 1, ref, sizeof ref, &e) == NY);
    unsigned char *buf = malloc(len);
    CHECK(buf != NULL);
    int loaded = 0, bad_msg = 0;
    /* two passes: all bits of a byte, then a single bit */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < len; i++) {
            memcpy(buf, orig, len);
            buf[i] ^= pass == 0 ? 0xFF : (unsigned char)(1u << (i % 8));
            qf_graph *g = NULL;
            qf_status st = qf_qfm_load_mem(buf, len, "flip.qfm", &g, NULL, &e);
            if (st == QF_OK) {
                /* allowed only if the model still computes the same thing */
                loaded++;
                int64_t n = run_graph(g, &in, 1, y, sizeof y, &e);
                CHECK_MSG(n == NY && memcmp(y, ref, sizeof y) == 0, "byte %zu: output differs", i);
            } else {
                CHECK(g == NULL);
                if (st != QF_ERR_FORMAT && st != QF_ERR_UNSUPPORTED) bad_msg++;
                if (!one_line_naming(&e, "flip.qfm")) bad_msg++;
            }
        }
    free(buf);
    qf_free(orig);
    CHECK_EQ_INT(bad_msg, 0);
    /* every byte of a qfm file is under a checksum or a must-be-zero rule,
     * so in practice each flip is detected; the format promises this */
    CHECK_EQ_INT(loaded, 0);
}

static void every_byte_flipped(void) {
    every_byte_flipped_in(true);
    every_byte_flipped_in(false);
}

static void every_truncation(void) {
    size_t len;
    unsigned char *orig = small_file_ex(&len, false);
    CHECK(orig != NULL);
    int bad = 0;
    for (size_t n = 0; n < len; n++) {
        /* a fresh copy of exactly n bytes so ASan sees any overread */
        unsigned char *b = malloc(n ? n : 1);
        CHECK(b != NULL);
        memcpy(b, orig, n);
        qf_graph *g = NULL;
        qf_err e;
        qf_status st = qf_qfm_load_mem(b, n, "cut.qfm", &g, NULL, &e);
        free(b);
        if (st != QF_ERR_FORMAT || g || !one_line_naming(&e, "cut.qfm")) {
            fprintf(stderr, "  length %zu: status %d: %s\n", n, (int)st, e.msg);
            bad++;
            qf_graph_free(g);
        }
    }
    qf_free(orig);
    CHECK_EQ_INT(bad, 0);
}

static void zero_length_and_missing_files(void) {
    const char *path = tmp_path("empty.qfm");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fclose(f);
    qf_graph *g = (qf_graph *)1;
    qf_err e;
    CHECK_EQ_INT(qf_qfm_load(path, &g, NULL, &e), QF_ERR_FORMAT);
    CHECK(g == NULL);
    CHECK_MSG(one_line_naming(&e, path) && strstr(e.msg, "empty file"), "%s", e.msg);
    CHECK_EQ_INT(qf_qfm_load(tmp_path("missing.qfm"), &g, NULL, &e), QF_ERR_IO);
    CHECK_EQ_INT(qf_qfm_load(tmp_dir, &g, NULL, &e), QF_ERR_IO); /* a directory */
    /* an ONNX file is not a qfm file */
    CHECK_EQ_INT(qf_qfm_load(TESTDATA "pytorch-converted/test_Conv2d/model.onnx", &g, NULL, &e),
                 QF_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "not a qfm file"), "%s", e.msg);
}

/* ---- hand-crafted hostile files ------------------------------------------ */
/* Field offsets below are those of docs/qfm-format.md. */
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void wr64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned char *entry(unsigned char *f, uint32_t kind) {
    uint32_t n = rd32(f + 20);
    uint64_t tab = rd64(f + 24);
    for (uint32_t i = 0; i < n; i++)
        if (rd32(f + tab + 32 * i) == kind) return f + tab + 32 * i;
    return NULL;
}
static unsigned char *sec(unsigned char *f, uint32_t kind) { return f + rd64(entry(f, kind) + 8); }

/* Recompute every in-bounds section CRC, the table CRC and the header CRC,
 * so a crafted value reaches the check behind the checksums. */
static void fix_crcs(unsigned char *f, size_t len) {
    uint32_t n = rd32(f + 20);
    uint64_t tab = rd64(f + 24);
    if (tab > len || (uint64_t)n * 32 > len - tab) {
        wr32(f + 60, qf_crc32c(0, f, 60));
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *e = f + tab + 32 * i;
        uint64_t off = rd64(e + 8), size = rd64(e + 16);
        if (off <= len && size <= len - off) wr32(e + 24, qf_crc32c(0, f + off, (size_t)size));
    }
    wr32(f + 40, qf_crc32c(0, f + tab, (size_t)n * 32));
    wr32(f + 60, qf_crc32c(0, f, 60));
}

static unsigned char *value_rec(unsigned char *f, int v) {
    return sec(f, QF_QFM_SEC_VALUES) + 8 + 88 * v;
}
/* the TENSORS record of value v */
static unsigned char *tensor_rec(unsigned char *f, int v) {
    unsigned char *t = sec(f, QF_QFM_SEC_TENSORS);
    for (uint32_t i = 0; i < rd32(t); i++)
        if ((int)rd32(t + 8 + 96 * i) == v) return t + 8 + 96 * i;
    return NULL;
}
static unsigned char *first_attr_of_type(unsigned char *f, uint32_t type) {
    unsigned char *a = sec(f, QF_QFM_SEC_ATTRS);
    for (uint32_t i = 0; i < rd32(a); i++)
        if (rd32(a + 16 + 24 * i + 4) == type) return a + 16 + 24 * i;
    return NULL;
}

static void m_sec_beyond_eof(unsigned char *f, size_t len) {
    wr64(entry(f, QF_QFM_SEC_TENSOR_DATA) + 8, ((uint64_t)len + 127) / 64 * 64);
}
static void m_sec_size_overflow(unsigned char *f, size_t len) {
    wr64(entry(f, QF_QFM_SEC_NODES) + 16, UINT64_MAX - 7);
}
static void m_table_beyond_eof(unsigned char *f, size_t len) { wr64(f + 24, (uint64_t)len + 64); }
static void m_table_huge_count(unsigned char *f, size_t len) { wr32(f + 20, 0x10000000u); }
static void m_sec_overlap(unsigned char *f, size_t len) {
    wr64(entry(f, QF_QFM_SEC_GRAPH) + 8, rd64(entry(f, QF_QFM_SEC_STRINGS) + 8));
}
static void m_sec_misaligned(unsigned char *f, size_t len) {
    unsigned char *e = entry(f, QF_QFM_SEC_GRAPH);
    wr64(e + 8, rd64(e + 8) + 8);
}
static void m_values_count_huge(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_VALUES), 0x7fffffffu);
}
static void m_values_count_max(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_VALUES), 0xffffffffu);
}
static void m_strings_count_huge(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_STRINGS), 0xffffffffu);
}
static void m_string_index(unsigned char *f, size_t len) { wr32(value_rec(f, V_X), 0x00ffffffu); }
static void m_string_offset(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_STRINGS) + 8, 0xfffffff0u);
}
static void m_rank_9(unsigned char *f, size_t len) { wr32(value_rec(f, V_X) + 8, 9); }
static void m_dims_overflow(unsigned char *f, size_t len) {
    /* ws [3,1,1,1] becomes [2^40]^4 in both its value and tensor records */
    for (int d = 0; d < 4; d++) {
        wr64(value_rec(f, V_WS) + 24 + 8 * d, 1ull << 40);
        wr64(tensor_rec(f, V_WS) + 16 + 8 * d, 1ull << 40);
    }
}
static void m_dim_negative(unsigned char *f, size_t len) {
    wr64(value_rec(f, V_WS) + 24, (uint64_t)-1);
    wr64(tensor_rec(f, V_WS) + 16, (uint64_t)-1);
}
static void m_tensor_size(unsigned char *f, size_t len) {
    unsigned char *t = tensor_rec(f, V_WQ);
    wr64(t + 88, rd64(t + 88) + 1);
}
static void m_tensor_misaligned(unsigned char *f, size_t len) {
    unsigned char *t = tensor_rec(f, V_WS);
    wr64(t + 80, rd64(t + 80) + 4);
}
static void m_tensor_outside(unsigned char *f, size_t len) {
    wr64(tensor_rec(f, V_WS) + 80, 1ull << 40);
}
static void m_tensor_zstd(unsigned char *f, size_t len) { wr32(tensor_rec(f, V_WQ) + 12, 2); }
static void m_tensor_zstd_v1(unsigned char *f, size_t len) {
    wr32(f + 8, 1);
    wr32(tensor_rec(f, V_WQ) + 12, 2);
}
static void m_section_zstd_v1(unsigned char *f, size_t len) {
    wr32(f + 8, 1);
    wr32(entry(f, QF_QFM_SEC_GRAPH) + 4, QF_QFM_SECF_REQUIRED | QF_QFM_SECF_ZSTD);
}
static void m_section_zstd_raw(unsigned char *f, size_t len) {
    wr32(entry(f, QF_QFM_SEC_GRAPH) + 4, QF_QFM_SECF_REQUIRED | QF_QFM_SECF_ZSTD);
}
static void m_tensor_data_zstd(unsigned char *f, size_t len) {
    wr32(entry(f, QF_QFM_SEC_TENSOR_DATA) + 4, QF_QFM_SECF_REQUIRED | QF_QFM_SECF_ZSTD);
}
static void m_tensor_sparse_short(unsigned char *f, size_t len) {
    wr32(tensor_rec(f, V_WQ) + 12, 1); /* the raw bytes are no valid mask + values */
}
static void m_tensor_enc_unknown(unsigned char *f, size_t len) {
    wr32(tensor_rec(f, V_WQ) + 12, 99);
}
static void m_tensor_not_const(unsigned char *f, size_t len) { wr32(tensor_rec(f, V_WQ), V_X); }
static void m_node_value_index(unsigned char *f, size_t len) {
    unsigned char *n = sec(f, QF_QFM_SEC_NODES);
    wr32(n + 8 + 40 * rd32(n), 1000000); /* first entry of the index list */
}
static void m_node_io_huge(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_NODES) + 4, 0x7fffffffu);
}
static void m_node_op_id(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_NODES) + 8 + 16, QF_OP_RELU); /* node 0 is a Cast */
}
static void m_attr_count_huge(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_ATTRS), 0x7ffffff0u);
}
static void m_attr_payload_huge(unsigned char *f, size_t len) {
    wr64(sec(f, QF_QFM_SEC_ATTRS) + 8, UINT64_MAX);
}
static void m_attr_list_outside(unsigned char *f, size_t len) {
    wr32(first_attr_of_type(f, QF_ATTR_INTS) + 8, 0x10000000u);
}
static void m_attr_type_unknown(unsigned char *f, size_t len) {
    wr32(first_attr_of_type(f, QF_ATTR_INT) + 4, 42);
}
static void m_qparams_count_huge(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_QPARAMS), 0x40000000u);
}
static void m_qparams_n_huge(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_QPARAMS) + 8 + 8, 0x7fffffffu);
}
static void m_qparams_nan(unsigned char *f, size_t len) {
    wr32(sec(f, QF_QFM_SEC_QPARAMS) + 8 + 16, 0x7fc00000u);
}
static void m_required_unknown(unsigned char *f, size_t len) {
    unsigned char *e = entry(f, QF_QFM_SEC_METADATA_JSON);
    wr32(e, 77);
    wr32(e + 4, QF_QFM_SECF_REQUIRED);
}
static void m_optional_unknown(unsigned char *f, size_t len) {
    wr32(entry(f, QF_QFM_SEC_METADATA_JSON), 77);
}
static void m_missing_section(unsigned char *f, size_t len) {
    unsigned char *e = entry(f, QF_QFM_SEC_QPARAMS);
    wr32(e, 78);
    wr32(e + 4, 0);
}
static void m_duplicate_section(unsigned char *f, size_t len) {
    wr32(entry(f, QF_QFM_SEC_GRAPH), QF_QFM_SEC_STRINGS);
}
static void m_newer_version(unsigned char *f, size_t len) { wr32(f + 8, QF_QFM_VERSION + 1); }
static void m_file_size(unsigned char *f, size_t len) { wr64(f + 32, (uint64_t)len + 64); }
static void m_padding(unsigned char *f, size_t len) {
    f[64 + 32 * rd32(f + 20)] = 1; /* right after the table, before STRINGS */
}
static void m_graph_output(unsigned char *f, size_t len) {
    unsigned char *g = sec(f, QF_QFM_SEC_GRAPH);
    wr32(g + 24 + 4 * rd32(g + 12), V_COUNT); /* output 0 */
}
static void m_metadata_utf8(unsigned char *f, size_t len) {
    sec(f, QF_QFM_SEC_METADATA_JSON)[0] = 0xff;
}

typedef struct hostile_case {
    const char *name;
    void (*mutate)(unsigned char *f, size_t len);
    qf_status want;
    const char *msg; /* expected part of the error message */
} hostile_case;

static const hostile_case hostile_cases[] = {
    {"section offset beyond EOF", m_sec_beyond_eof, QF_ERR_FORMAT, "extends past the end"},
    {"section size overflow", m_sec_size_overflow, QF_ERR_FORMAT, "extends past the end"},
    {"table beyond EOF", m_table_beyond_eof, QF_ERR_FORMAT, "section table"},
    {"table count huge", m_table_huge_count, QF_ERR_FORMAT, "section table"},
    {"sections overlap", m_sec_overlap, QF_ERR_FORMAT, "overlaps"},
    {"section misaligned", m_sec_misaligned, QF_ERR_FORMAT, "not 64-byte aligned"},
    {"value count 2^31-1", m_values_count_huge, QF_ERR_FORMAT,
     "section VALUES: count 2147483647 does not match its size"},
    {"value count 2^32-1", m_values_count_max, QF_ERR_FORMAT, "count 4294967295"},
    {"string count huge", m_strings_count_huge, QF_ERR_FORMAT, "does not fit"},
    {"string index", m_string_index, QF_ERR_FORMAT, "string index 16777215 out of range"},
    {"string offset", m_string_offset, QF_ERR_FORMAT, "outside section STRINGS"},
    {"rank 9", m_rank_9, QF_ERR_FORMAT, "rank 9"},
    {"numel overflow", m_dims_overflow, QF_ERR_FORMAT, "size overflow"},
    {"negative dim", m_dim_negative, QF_ERR_FORMAT, "negative dim"},
    {"tensor byte size", m_tensor_size, QF_ERR_FORMAT, "55 bytes stored, its shape needs 54"},
    {"tensor misaligned", m_tensor_misaligned, QF_ERR_FORMAT, "not 64-byte aligned"},
    {"tensor outside data", m_tensor_outside, QF_ERR_FORMAT, "outside TENSOR_DATA"},
    {"tensor zstd damaged", m_tensor_zstd, QF_ERR_FORMAT, "damaged zstd frame"},
    {"tensor zstd in v1", m_tensor_zstd_v1, QF_ERR_UNSUPPORTED,
     "encoding 2 is not allowed in a version 1 file"},
    {"section zstd in v1", m_section_zstd_v1, QF_ERR_UNSUPPORTED, "unknown flags 0x3"},
    {"section zstd damaged", m_section_zstd_raw, QF_ERR_FORMAT, "GRAPH: damaged zstd frame"},
    {"tensor data zstd", m_tensor_data_zstd, QF_ERR_FORMAT, "cannot be compressed"},
    {"tensor sparse invalid", m_tensor_sparse_short, QF_ERR_FORMAT, "sparse tensor"},
    {"tensor encoding 99", m_tensor_enc_unknown, QF_ERR_FORMAT, "unknown encoding 99"},
    {"tensor of non-constant", m_tensor_not_const, QF_ERR_FORMAT, "not a constant"},
    {"node value index", m_node_value_index, QF_ERR_FORMAT, "value index 1000000 out of range"},
    {"node index count huge", m_node_io_huge, QF_ERR_FORMAT, "do not match its size"},
    {"node op id", m_node_op_id, QF_ERR_FORMAT, "does not match op type 'Cast'"},
    {"attr count huge", m_attr_count_huge, QF_ERR_FORMAT, "do not match its size"},
    {"attr payload huge", m_attr_payload_huge, QF_ERR_FORMAT, "do not match its size"},
    {"attr list outside", m_attr_list_outside, QF_ERR_FORMAT, "outside the payload"},
    {"attr type unknown", m_attr_type_unknown, QF_ERR_FORMAT, "unknown type 42"},
    {"qparams count huge", m_qparams_count_huge, QF_ERR_FORMAT, "does not fit"},
    {"qparams n huge", m_qparams_n_huge, QF_ERR_FORMAT, "does not fit section QPARAMS"},
    {"qparams NaN scale", m_qparams_nan, QF_ERR_FORMAT, "not finite and positive"},
    {"unknown required section", m_required_unknown, QF_ERR_UNSUPPORTED,
     "section kind 77 is required but unknown"},
    {"unknown optional section", m_optional_unknown, QF_OK, NULL},
    {"missing section", m_missing_section, QF_ERR_FORMAT, "missing section QPARAMS"},
    {"duplicate section", m_duplicate_section, QF_ERR_FORMAT, "appears twice"},
    {"newer version", m_newer_version, QF_ERR_UNSUPPORTED, "version 3 is newer"},
    {"file size field", m_file_size, QF_ERR_FORMAT, "truncated: header says"},
    {"non-zero padding", m_padding, QF_ERR_FORMAT, "padding"},
    {"graph output index", m_graph_output, QF_ERR_FORMAT, "value index 18 out of range"},
    {"metadata not UTF-8", m_metadata_utf8, QF_ERR_FORMAT, "UTF-8"},
};

static void hostile_files(void) {
    size_t len;
    unsigned char *orig = small_file(&len);
    CHECK(orig != NULL);
    unsigned char *f = malloc(len);
    CHECK(f != NULL);
    int failures = 0;
    for (size_t i = 0; i < QF_ARRAY_LEN(hostile_cases); i++) {
        const hostile_case *hc = &hostile_cases[i];
        memcpy(f, orig, len);
        hc->mutate(f, len);
        fix_crcs(f, len);
        qf_graph *g = NULL;
        char *meta = NULL;
        qf_err e;
        e.msg[0] = 0;
        qf_status st = qf_qfm_load_mem(f, len, "evil.qfm", &g, &meta, &e);
        int ok = st == hc->want && (st == QF_OK ? g != NULL : g == NULL);
        if (st && (!one_line_naming(&e, "evil.qfm: ") || !strstr(e.msg, hc->msg))) ok = 0;
        if (st == QF_OK) ok = ok && meta == NULL; /* the skipped section was the metadata */
        if (!ok) {
            fprintf(stderr, "  %s: status %d (want %d): %s\n", hc->name, (int)st, (int)hc->want,
                    e.msg);
            failures++;
        }
        qf_graph_free(g);
        qf_free(meta);
    }
    /* checksums themselves: damage without recomputing them */
    memcpy(f, orig, len);
    sec(f, QF_QFM_SEC_NODES)[3] ^= 0x10;
    qf_graph *g = NULL;
    qf_err e;
    CHECK_EQ_INT(qf_qfm_load_mem(f, len, "evil.qfm", &g, NULL, &e), QF_ERR_FORMAT);
    CHECK_MSG(strcmp(e.msg, "evil.qfm: section NODES checksum mismatch") == 0, "%s", e.msg);
    memcpy(f, orig, len);
    f[9] ^= 1;
    CHECK_EQ_INT(qf_qfm_load_mem(f, len, "evil.qfm", &g, NULL, &e), QF_ERR_FORMAT);
    CHECK_MSG(strcmp(e.msg, "evil.qfm: header checksum mismatch") == 0, "%s", e.msg);
    free(f);
    qf_free(orig);
    CHECK_EQ_INT(failures, 0);
}

static void *capped_alloc(void *u, size_t n) {
    (void)u;
    return n > (1u << 20) ? NULL : malloc(n);
}
static void *capped_realloc(void *u, void *p, size_t n) {
    (void)u;
    return n > (1u << 20) ? NULL : realloc(p, n);
}
static void plain_free(void *u, void *p) {
    (void)u;
    free(p);
}

/* Every byte flipped again, now with all checksums recomputed, so each
 * change reaches the structural checks (this is what a crafted file can
 * do). Loading must fail cleanly or give a graph the session either runs
 * or rejects with an error: no crash, no out-of-bounds access (ASan). */
static void every_byte_flipped_checksums_fixed_in(bool raw_sections) {
    size_t len;
    unsigned char *orig = small_file_ex(&len, raw_sections);
    CHECK(orig != NULL);
    enum { N = 1, NX = N * M_IC * M_HW * M_HW, NY = N * M_OC * M_HW * M_HW };
    static float x[NX], y[NY * 64];
    fill_input(x, NX);
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 4, .dims = {N, M_IC, M_HW, M_HW}, .data = x};
    unsigned char *buf = malloc(len);
    CHECK(buf != NULL);
    int loaded = 0, rejected = 0, bad_msg = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(buf, orig, len);
        buf[i] ^= 0xFF;
        fix_crcs(buf, len);
        qf_graph *g = NULL;
        qf_err e;
        qf_status st = qf_qfm_load_mem(buf, len, "crafted.qfm", &g, NULL, &e);
        if (st == QF_OK) {
            /* a changed attribute can make a valid but huge model (pads of
             * 65281): cap allocations so such a run fails fast with NOMEM */
            qf_allocator cap = {capped_alloc, capped_realloc, plain_free, NULL};
            loaded++;
            qf_set_allocator(&cap);
            run_graph(g, &in, 1, y, sizeof y, &e); /* any status; must not crash */
            qf_set_allocator(NULL);
        } else {
            rejected++;
            if (g || !one_line_naming(&e, "crafted.qfm")) bad_msg++;
        }
    }
    free(buf);
    qf_free(orig);
    CHECK_EQ_INT(bad_msg, 0);
    CHECK_EQ_INT(loaded + rejected, (long long)len);
    /* most bytes are structure, names or data: both outcomes must occur */
    CHECK(rejected > 0 && loaded > 0);
}

static void every_byte_flipped_checksums_fixed(void) {
    every_byte_flipped_checksums_fixed_in(true);
    /* compressed sections: the zstd decoder sees every crafted frame */
    every_byte_flipped_checksums_fixed_in(false);
}

static void unsupported_op_reported(void) {
    qf_graph *g = qf_graph_create();
    CHECK(g != NULL);
    int64_t d[1] = {4};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 1, d);
    int y = qf_graph_add_value(g, "y", QF_DT_F32, 1, d);
    qf_graph_add_input(g, x);
    qf_graph_add_output(g, y);
    qf_graph_add_node(g, "n", "FooBar", "com.example", 1, &x, 1, &y, 1, NULL, 0);
    const char *path = tmp_path("unsup.qfm");
    qf_err e;
    qf_status st = qf_qfm_write(g, NULL, path, &e); /* writing needs no kernels */
    qf_graph_free(g);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    qf_graph *h = (qf_graph *)1;
    CHECK_EQ_INT(qf_qfm_load(path, &h, NULL, &e), QF_ERR_UNSUPPORTED);
    CHECK(h == NULL);
    CHECK_MSG(strstr(e.msg, "com.example.FooBar (1 node)") != NULL, "%s", e.msg);
}

static void writer_rejects_bad_graphs(void) {
    qf_graph *g = build_model();
    CHECK(g != NULL);
    const char *path = tmp_path("rejected.qfm");
    qf_err e;
    /* constant whose byte count disagrees with its shape */
    g->values[V_WS].nbytes -= 4;
    CHECK_EQ_INT(qf_qfm_write(g, NULL, path, &e), QF_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "'ws'") != NULL, "%s", e.msg);
    g->values[V_WS].nbytes += 4;
    /* per-channel qparams that do not match the axis' dim */
    g->values[V_WQ].qp->n = 2;
    CHECK_EQ_INT(qf_qfm_write(g, NULL, path, &e), QF_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "2 scales for a dim of 3"), "%s", e.msg);
    g->values[V_WQ].qp->n = 3;
    /* node input out of range */
    g->nodes[0].inputs[0] = V_COUNT;
    CHECK_EQ_INT(qf_qfm_write(g, NULL, path, &e), QF_ERR_INVALID_ARG);
    g->nodes[0].inputs[0] = V_WQ;
    CHECK(access(path, F_OK) != 0); /* nothing was written */
    CHECK_OK(qf_qfm_write(g, NULL, path, &e));
    qf_graph_free(g);
}

static void atomic_write(void) {
    qf_graph *g = build_model();
    CHECK(g != NULL);
    qf_err e;
    int before = dir_entries(tmp_dir);
    /* a path in a directory that does not exist: clean failure, nothing left */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no_such_dir/m.qfm", tmp_dir);
    CHECK_EQ_INT(qf_qfm_write(g, NULL, bad, &e), QF_ERR_IO);
    CHECK_MSG(one_line_naming(&e, bad), "%s", e.msg);
    CHECK_EQ_INT(dir_entries(tmp_dir), before);
    /* an existing file survives a failed write... */
    const char *path = tmp_path("keep.qfm");
    CHECK_OK(qf_write_file_atomic(path, "OLD", 3, &e));
    before = dir_entries(tmp_dir);
    g->values[V_BQ].nbytes = 3; /* invalid graph: fails before any byte is written */
    CHECK(qf_qfm_write(g, NULL, path, &e) != QF_OK);
    g->values[V_BQ].nbytes = 12;
    /* ...including one failing in the middle of the data (file size limit) */
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 700;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    qf_status st = qf_qfm_write(g, NULL, path, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK_EQ_INT(st, QF_ERR_IO);
    unsigned char *buf;
    size_t len;
    CHECK(read_bytes(path, &buf, &len) == NULL);
    int intact = len == 3 && memcmp(buf, "OLD", 3) == 0;
    qf_free(buf);
    CHECK(intact);
    CHECK_EQ_INT(dir_entries(tmp_dir), before); /* no temp file left */
    /* ...and is replaced on success */
    CHECK_OK(qf_qfm_write(g, NULL, path, &e));
    qf_graph *h;
    CHECK_OK(qf_qfm_load(path, &h, NULL, &e));
    compare_graphs(g, h);
    qf_graph_free(h);
    qf_graph_free(g);
    CHECK_EQ_INT(dir_entries(tmp_dir), before);
}

/* Allocator that fails the Nth allocation: every OOM path of the reader and
 * the writer runs, and must fail cleanly (ASan checks for leaks). */
static long fail_at, n_alloc;
static void *fail_alloc(void *u, size_t n) {
    (void)u;
    return n_alloc++ == fail_at ? NULL : malloc(n);
}
static void *fail_realloc(void *u, void *p, size_t n) {
    (void)u;
    return n_alloc++ == fail_at ? NULL : realloc(p, n);
}

static void out_of_memory_paths(void) {
    size_t len;
    unsigned char *file = small_file(&len);
    CHECK(file != NULL);
    qf_graph *g = build_model();
    CHECK(g != NULL);
    const char *path = tmp_path("oom.qfm");
    qf_allocator a = {fail_alloc, fail_realloc, plain_free, NULL};
    int load_ok = 0, write_ok = 0, bad = 0;
    for (fail_at = 0; fail_at < 5000 && !(load_ok && write_ok); fail_at++) {
        qf_err e;
        qf_graph *h = NULL;
        char *meta = NULL;
        n_alloc = 0;
        qf_set_allocator(&a);
        qf_status ls = load_ok ? QF_OK : qf_qfm_load_mem(file, len, "oom.qfm", &h, &meta, &e);
        qf_set_allocator(NULL);
        if (ls == QF_OK && !load_ok) {
            load_ok = 1;
        } else if (ls != QF_OK && (ls != QF_ERR_NOMEM || h || meta)) {
            fprintf(stderr, "  load, allocation %ld: status %d: %s\n", fail_at, (int)ls, e.msg);
            bad++;
        }
        qf_graph_free(h);
        qf_free(meta);
        unlink(path);
        n_alloc = 0;
        qf_set_allocator(&a);
        qf_status ws = write_ok ? QF_OK : qf_qfm_write(g, "{}", path, &e);
        qf_set_allocator(NULL);
        if (ws == QF_OK) {
            write_ok = 1;
        } else if (access(path, F_OK) == 0) {
            fprintf(stderr, "  write, allocation %ld: file left behind\n", fail_at);
            bad++;
        }
    }
    qf_graph_free(g);
    qf_free(file);
    CHECK(load_ok && write_ok);
    CHECK_MSG(fail_at > 10, "only %ld allocations", fail_at); /* the loop did test something */
    CHECK_EQ_INT(bad, 0);
}


/* ---- storage encodings (version 2) ------------------------------------------ */

/* Every encoding round-trips edge sizes exactly, and the sparse layout is
 * the one the spec describes (checked on a hand example). */
static void codec_roundtrip(void) {
    static const size_t sizes[] = {1, 7, 8, 9, 63, 64, 65, 1000};
    static const uint32_t encs[] = {QF_QFM_ENC_ZSTD, QF_QFM_ENC_SPARSE_BITMASK,
                                    QF_QFM_ENC_SPARSE_BITMASK_ZSTD, QF_QFM_ENC_PALETTE};
    qf_err e;
    for (size_t si = 0; si < QF_ARRAY_LEN(sizes); si++)
        for (size_t es = 1; es <= 4; es *= 2)
            for (int pattern = 0; pattern < 3; pattern++) {
                size_t nb = sizes[si] * es;
                unsigned char *raw = malloc(nb), *back = malloc(nb);
                CHECK(raw && back);
                for (size_t i = 0; i < nb; i++) /* all zero / dense / 1 in 5 elements */
                    raw[i] = pattern == 0 ? 0
                             : pattern == 1 ? (unsigned char)(i * 37 + 1)
                                            : ((i / es) % 5 == 0 ? (unsigned char)(i | 1) : 0);
                for (size_t k = 0; k < QF_ARRAY_LEN(encs); k++) {
                    void *enc = NULL;
                    size_t len = 0;
                    char why[160] = "";
                    qf_status es_ = qf_qfm_tensor_encode(encs[k], raw, nb, es, 3, &enc, &len, &e);
                    if (es_ == QF_ERR_UNSUPPORTED && encs[k] == QF_QFM_ENC_PALETTE)
                        continue; /* more than 256 distinct values */
                    CHECK_OK(es_);
                    memset(back, 0xAB, nb);
                    bool ok = qf_qfm_tensor_decode(encs[k], enc, len, es, back, nb, why, sizeof why);
                    CHECK_MSG(ok && memcmp(raw, back, nb) == 0, "enc %u n %zu es %zu pat %d: %s",
                              encs[k], sizes[si], es, pattern, why);
                    /* one byte short or long is rejected */
                    if (len > 0)
                        CHECK(!qf_qfm_tensor_decode(encs[k], enc, len - 1, es, back, nb, why,
                                                    sizeof why));
                    /* zstd frames declare their size: a different shape is
                                     * rejected (a sparse all-zero mask may fit several) */
                    if (encs[k] == QF_QFM_ENC_ZSTD)
                        CHECK(!qf_qfm_tensor_decode(encs[k], enc, len, es, back, nb + es, why,
                                                    sizeof why));
                    qf_free(enc);
                }
                free(raw);
                free(back);
            }
    /* hand example: int16 [0, 5, 0, 0, 0, 0, 0, 0, 0, -1] */
    int16_t v[10] = {0, 5, 0, 0, 0, 0, 0, 0, 0, -1};
    void *enc;
    size_t len;
    CHECK_OK(qf_qfm_tensor_encode(QF_QFM_ENC_SPARSE_BITMASK, v, sizeof v, 2, 0, &enc, &len, &e));
    const unsigned char want[] = {0x02, 0x02, 0x05, 0x00, 0xFF, 0xFF};
    CHECK(len == sizeof want && memcmp(enc, want, len) == 0);
    unsigned char *m = enc;
    char why[160];
    int16_t back[10];
    m[1] |= 0x04; /* a mask bit past element 9 */
    CHECK(!qf_qfm_tensor_decode(QF_QFM_ENC_SPARSE_BITMASK, m, len, 2, back, sizeof back, why,
                                sizeof why));
    CHECK_MSG(strstr(why, "past the last element") != NULL, "%s", why);
    m[1] = 0x03; /* three elements marked, two stored */
    CHECK(!qf_qfm_tensor_decode(QF_QFM_ENC_SPARSE_BITMASK, m, len, 2, back, sizeof back, why,
                                sizeof why));
    CHECK_MSG(strstr(why, "marks 3 elements") != NULL, "%s", why);
    qf_free(enc);
    /* palette hand example: int8 [7, -1, 7, 3, -1] -> k = 3 {7, -1, 3}, 2-bit
     * indices 0 1 0 2 1, index i at bits 2i..2i+1 -> bits 2, 7, 8 -> 0x84 0x01 */
    int8_t pv[5] = {7, -1, 7, 3, -1}, pb[5];
    CHECK_OK(qf_qfm_tensor_encode(QF_QFM_ENC_PALETTE, pv, 5, 1, 0, &enc, &len, &e));
    const unsigned char pw[] = {3, 0, 0, 0, 7, 0xFF, 3, 0x84, 0x01};
    CHECK(len == sizeof pw && memcmp(enc, pw, len) == 0);
    CHECK(qf_qfm_tensor_decode(QF_QFM_ENC_PALETTE, enc, len, 1, pb, 5, why, sizeof why) &&
          memcmp(pb, pv, 5) == 0);
    m = enc;
    m[8] = 0x03; /* index 3 >= 3 entries */
    CHECK(!qf_qfm_tensor_decode(QF_QFM_ENC_PALETTE, m, len, 1, pb, 5, why, sizeof why));
    CHECK_MSG(strstr(why, "palette index 3") != NULL, "%s", why);
    m[8] = 0x05; /* index 1, but a padding bit set */
    CHECK(!qf_qfm_tensor_decode(QF_QFM_ENC_PALETTE, m, len, 1, pb, 5, why, sizeof why));
    m[0] = 0; /* zero entries */
    CHECK(!qf_qfm_tensor_decode(QF_QFM_ENC_PALETTE, m, len, 1, pb, 5, why, sizeof why));
    qf_free(enc);
}

/* AUTO storage picks a smaller encoding for sparse or repetitive tensors,
 * keeps incompressible ones RAW (in place in the mapping), and the loaded
 * graph equals the original; files are smaller than with RAW storage. */
static void auto_storage_roundtrip(void) {
    qf_graph *g = qf_graph_create();
    CHECK(g != NULL);
    enum { N = 4096 };
    int64_t d[1] = {N};
    int8_t *sparse = qf_malloc_aligned(N), *lowent = qf_malloc_aligned(N);
    float *noise = qf_malloc_aligned(N * 4);
    CHECK(sparse && lowent && noise);
    uint32_t st32 = 12345;
    for (int i = 0; i < N; i++) {
        st32 = st32 * 1664525u + 1013904223u;
        sparse[i] = (st32 >> 24) % 10 == 0 ? (int8_t)((st32 >> 8) | 1) : 0;
        lowent[i] = (int8_t)((st32 >> 28) % 3 - 1);
        uint64_t x = (uint64_t)st32 * 0x9E3779B97F4A7C15ull; /* mix: no byte pattern */
        uint32_t bits = (uint32_t)(x >> 32);
        memcpy(&noise[i], &bits, 4);
    }
    const void *data[3] = {sparse, lowent, noise};
    const char *names[3] = {"sparse", "lowent", "noise"};
    qf_dtype dts[3] = {QF_DT_I8, QF_DT_I8, QF_DT_F32};
    int vals[3];
    for (int k = 0; k < 3; k++) {
        vals[k] = qf_graph_add_value(g, names[k], dts[k], 1, d);
        CHECK_OK(qf_graph_set_const_owned(g, vals[k], dts[k], 1, d, (void *)data[k],
                                          (size_t)N * qf_dtype_size(dts[k])));
        CHECK_OK(qf_graph_add_output(g, vals[k]));
    }
    qf_err e;
    const char *raw_path = tmp_path("raw.qfm"), *auto_path = tmp_path("auto.qfm");
    qf_qfm_write_options ao = {.tensors = QF_QFM_STORE_AUTO};
    CHECK_OK(qf_qfm_write(g, "{}", raw_path, &e));
    CHECK_OK(qf_qfm_write_ex(g, "{}", auto_path, &ao, &e));
    struct stat sr, sa;
    CHECK(stat(raw_path, &sr) == 0 && stat(auto_path, &sa) == 0);
    /* sparse: 4096/8 mask + ~410 values instead of 4096; lowent ~2 bits */
    CHECK_MSG(sa.st_size + 4096 < sr.st_size, "auto %lld raw %lld", (long long)sa.st_size,
              (long long)sr.st_size);
    qf_graph *h = NULL;
    CHECK_OK(qf_qfm_load(auto_path, &h, NULL, &e));
    for (int k = 0; k < 3; k++) {
        const qf_value *v = &h->values[vals[k]];
        CHECK_MSG(v->nbytes == g->values[vals[k]].nbytes &&
                      memcmp(v->data, g->values[vals[k]].data, v->nbytes) == 0,
                  "%s", names[k]);
        CHECK(((uintptr_t)v->data & 63) == 0);
    }
    /* the incompressible float tensor stays RAW and mapped, the others are decoded */
    CHECK(h->values[vals[2]].data_external);
    CHECK(!h->values[vals[0]].data_external && !h->values[vals[1]].data_external);
    qf_graph_free(h);
    qf_graph_free(g);
}

QT_MAIN(QT_CASE(codec_roundtrip), QT_CASE(auto_storage_roundtrip), QT_CASE(roundtrip_handbuilt_model), QT_CASE(roundtrip_qlinear_model),
        QT_CASE(constants_aligned_in_mapping), QT_CASE(roundtrip_onnx_models),
        QT_CASE(metadata_cases), QT_CASE(every_byte_flipped), QT_CASE(every_truncation),
        QT_CASE(zero_length_and_missing_files), QT_CASE(hostile_files),
        QT_CASE(every_byte_flipped_checksums_fixed), QT_CASE(unsupported_op_reported),
        QT_CASE(writer_rejects_bad_graphs), QT_CASE(atomic_write), QT_CASE(out_of_memory_paths))
