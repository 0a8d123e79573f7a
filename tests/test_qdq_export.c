/* test_qdq_export.c - quant/qdq_export: quantized qforge graph -> ONNX QDQ.
 *
 * References outside the exporter:
 *  - qforge's integer runtime running the quantized graph itself (the
 *    qforge-domain reference kernels): ONNX Runtime (tests/node/ort_run.js)
 *    running the exported file, and qforge's own importer + float runtime
 *    running it, must agree with it to within one output quantization step
 *    on >= 99.9% of the elements (both int8 and uint8 activations);
 *  - python-onnx's checker accepting every exported file;
 *  - ONNX Runtime's optimized graph (saved by a helper script) containing
 *    its integer ops (QLinearConv, ...), i.e. the QDQ groups were fused;
 *  - the structure of the built graph against values computed here: the
 *    unpacked 4-bit weights equal the int8 values the test packed, bias
 *    scales s_x * s_w[c], Clip bounds s * (act - z), shifted uint8 zero
 *    points and lookup tables.
 *  - opset-11 Squeeze/Unsqueeze on int8 data and an int8 graph boundary in
 *    uint8 mode: outputs bit-identical to the original graph's.
 * Models: A (QConv relu/per-channel/bias, QConv 4-bit packed fixed requant,
 * QAdd clip, QGlobalAveragePool, Flatten, QGemm), B (QMaxPool, QLut, QResize
 * linear, QMul, QConcat, QPad, QAveragePool, QGemm on rank 4), C (QResize
 * sizes/nearest, QPad reflect, per-tensor QConv), D (16-bit QConv, opset 21).
 * Errors: a quantized value without qparams (message names it), unwritable
 * paths (QF_ERR_IO, no file left), bad options, 16-bit activations below
 * opset 21, an unknown qforge op, allocation failure at every step.
 */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/data.h"
#include "ir/graph.h"
#include "kernels/ref/qref.h"
#include "qtest.h"
#include "quant/qdq_export.h"
#include "runtime/runtime.h"

#define PY "/usr/bin/python3"
#define ORT_RUN "tests/node/ort_run.js"
#define ORT_OPT "tests/fixtures/ort_optimized_ops.js"

/* ---- temp directory (removed at exit) ------------------------------------ */
static char tmp_root[512];

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_tree(p);
        else
            remove(p);
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup_tmp(void) {
    if (tmp_root[0] && !getenv("QF_KEEP_TMP")) rm_tree(tmp_root);
}

static const char *tmp_dir(const char *sub) {
    static char path[600];
    if (!tmp_root[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/qf_qdq_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_root)) {
            tmp_root[0] = 0;
            return NULL;
        }
        atexit(cleanup_tmp);
    }
    snprintf(path, sizeof path, "%s/%s", tmp_root, sub);
    rm_tree(path);
    if (mkdir(path, 0700) != 0) return NULL;
    return path;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Run a shell command with its output in `log`; on failure the end of the
 * log goes to stderr. */
static int run_cmd(const char *cmd, const char *log) {
    char full[4096];
    snprintf(full, sizeof full, "%s > %s 2>&1", cmd, log);
    int rc = system(full);
    FILE *f = fopen(log, "r");
    if (f && rc != 0) {
        char tail[2048];
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, n > (long)sizeof tail - 1 ? n - (long)sizeof tail + 1 : 0, SEEK_SET);
        size_t got = fread(tail, 1, sizeof tail - 1, f);
        tail[got] = 0;
        fprintf(stderr, "%s\n", tail);
    }
    if (f) fclose(f);
    return rc;
}

/* ---- graph building ---------------------------------------------------------- */

static uint32_t rng;
static int32_t rnd(int32_t lo, int32_t hi) { /* inclusive */
    rng = rng * 1664525u + 1013904223u;
    return lo + (int32_t)((uint64_t)(rng >> 8) * (uint64_t)(hi - lo + 1) >> 24);
}
static float frnd(float lo, float hi) {
    return lo + (hi - lo) * (float)rnd(0, 1 << 20) / (1 << 20);
}

#define A_INT(nm, v) ((qf_attr){.name = (nm), .type = QF_ATTR_INT, .i = (v)})
#define A_INTS(nm, arr, cnt)                                                                       \
    ((qf_attr){.name = (nm), .type = QF_ATTR_INTS, .ints = (arr), .n = (cnt)})
#define A_FLOATS(nm, arr, cnt)                                                                     \
    ((qf_attr){.name = (nm), .type = QF_ATTR_FLOATS, .floats = (arr), .n = (cnt)})
#define A_STR(nm, str) ((qf_attr){.name = (nm), .type = QF_ATTR_STRING, .s = (str)})

/* An activation of type dt (int8, or int16 for 16 bits) with per-tensor
 * qparams (scale <= 0: none). */
static int act_t(qf_graph *g, const char *name, qf_dtype dt, float scale, int32_t zp) {
    int v = qf_graph_add_value(g, name, dt, -1, NULL);
    if (v >= 0 && scale > 0)
        qf_value_set_qparams(g, v, dt == QF_DT_I16 ? 16 : 8, -1, 1, &scale, &zp);
    return v;
}

static int act(qf_graph *g, const char *name, float scale, int32_t zp) {
    return act_t(g, name, QF_DT_I8, scale, zp);
}

static int cnst(qf_graph *g, const char *name, qf_dtype dt, int rank, const int64_t *dims,
                const void *data) {
    int v = qf_graph_add_value(g, name, dt, rank, dims);
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.data = (void *)data;
    if (v < 0 || qf_graph_set_const(g, v, &t, NULL)) return -1;
    return v;
}

static void qnode(qf_graph *g, const char *name, const char *op, const int *ins, int n_in, int out,
                  const qf_attr *attrs, int n_attrs) {
    qf_graph_add_node(g, name, op, "qforge", 1, ins, n_in, &out, 1, attrs, n_attrs);
}

/* Float graph input x -> QuantizeLinear -> returned value "xq" of type dt. */
static int quant_input(qf_graph *g, int rank, const int64_t *dims, float s, int32_t z,
                       qf_dtype dt) {
    int x = qf_graph_add_value(g, "x", QF_DT_F32, rank, dims);
    qf_graph_add_input(g, x);
    int8_t z8 = (int8_t)z;
    int16_t z16 = (int16_t)z;
    int vs = cnst(g, "x_scale", QF_DT_F32, 0, NULL, &s);
    int vz = cnst(g, "x_zero_point", dt, 0, NULL, dt == QF_DT_I16 ? (void *)&z16 : (void *)&z8);
    int xq = act_t(g, "xq", dt, s, z);
    int ins[3] = {x, vs, vz};
    qf_graph_add_node(g, "quant", "QuantizeLinear", "", 13, ins, 3, &xq, 1, NULL, 0);
    return xq;
}

/* Value v of type dt -> DequantizeLinear -> float graph output "y". */
static void dequant_output(qf_graph *g, int v, float s, int32_t z, qf_dtype dt) {
    int8_t z8 = (int8_t)z;
    int16_t z16 = (int16_t)z;
    int vs = cnst(g, "y_scale", QF_DT_F32, 0, NULL, &s);
    int vz = cnst(g, "y_zero_point", dt, 0, NULL, dt == QF_DT_I16 ? (void *)&z16 : (void *)&z8);
    int y = qf_graph_add_value(g, "y", QF_DT_F32, -1, NULL);
    int ins[3] = {v, vs, vz};
    qf_graph_add_node(g, "dequant", "DequantizeLinear", "", 13, ins, 3, &y, 1, NULL, 0);
    qf_graph_add_output(g, y);
}

/* Weights of a QConv/QGemm: `rows` x `cols` values in the restricted
 * `bits`-bit range, scales (per channel, or one) with real magnitude about
 * 1/sqrt(cols) (outputs of order one), an int32 bias of real magnitude
 * <= 0.3 (b = -1 without). Packed when bits < 8; the int8 values are
 * copied to `unpacked` when given. */
typedef struct wts {
    int w, b;
    float scale[64];
} wts;

static wts weights_ex(qf_graph *g, const char *name, int rows, int cols, int bits, int rank,
                      const int64_t *shape, float s_x, int8_t *unpacked, bool per_channel,
                      bool with_bias) {
    wts r;
    const int qmax = (1 << (bits - 1)) - 1;
    int8_t *q = malloc((size_t)rows * cols);
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)rows);
    for (int i = 0; i < rows * cols; i++)
        q[i] = (int8_t)rnd(-qmax, qmax);
    const float a = 1.7f / sqrtf((float)cols);
    int32_t zeros[64] = {0};
    for (int c = 0; c < rows; c++) {
        r.scale[c] = a * (per_channel ? 0.6f + 0.1f * (float)(c % 7) : 0.8f) / (float)qmax;
        bias[c] = (int32_t)lrintf(frnd(-0.3f, 0.3f) / (s_x * r.scale[c]));
    }
    char nm[64];
    snprintf(nm, sizeof nm, "%s_w", name);
    if (bits == 8) {
        r.w = cnst(g, nm, QF_DT_I8, rank, shape, q);
    } else {
        size_t rb = qf_ref_packed_row_bytes(cols, bits);
        uint8_t *p = malloc(rb * (size_t)rows);
        qf_ref_pack_weights(q, rows, cols, bits, p, NULL);
        int64_t pd[2] = {rows, (int64_t)rb};
        r.w = cnst(g, nm, QF_DT_U8, 2, pd, p);
        free(p);
    }
    if (per_channel)
        qf_value_set_qparams(g, r.w, bits, 0, rows, r.scale, zeros);
    else
        qf_value_set_qparams(g, r.w, bits, -1, 1, r.scale, zeros);
    snprintf(nm, sizeof nm, "%s_b", name);
    int64_t bd[1] = {rows};
    r.b = with_bias ? cnst(g, nm, QF_DT_I32, 1, bd, bias) : -1;
    if (unpacked) memcpy(unpacked, q, (size_t)rows * cols);
    free(q);
    free(bias);
    return r;
}

static wts weights(qf_graph *g, const char *name, int rows, int cols, int bits, int rank,
                   const int64_t *shape, float s_x, int8_t *unpacked) {
    return weights_ex(g, name, rows, cols, bits, rank, shape, s_x, unpacked, true, true);
}

static int8_t conv2_unpacked[8 * 8 * 9]; /* what the test packed, for the structure check */

/* Graph A: Q -> QConv (relu, per-channel, bias) -> QConv (4-bit packed,
 * fixed requant) -> QAdd (residual, clip) -> QGlobalAveragePool -> Flatten
 * -> QGemm -> DQ. Input [64, 3, 10, 10], output [64, 16]. */
enum { A_N = 64, A_C = 3, A_H = 10, A_W = 10, A_C1 = 8, A_FC = 16 };
static const float A_SX = 6.0f / 255, A_S1 = 0.03f, A_S2 = 0.04f, A_SA = 0.05f, A_SP = 0.02f,
                   A_SY = 0.03f;
static const int32_t A_ZX = 3, A_Z1 = -20, A_Z2 = 5, A_ZA = -10, A_ZP = 0, A_ZY = 2;

static qf_graph *build_a(void) {
    rng = 1234u;
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {A_N, A_C, A_H, A_W};
    int xq = quant_input(g, 4, xd, A_SX, A_ZX, QF_DT_I8);
    /* attribute arrays are not copied by qf_graph_add_node: static */
    static int64_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
    static int64_t w1d[4] = {A_C1, A_C, 3, 3}, w2d[4] = {A_C1, A_C1, 3, 3};
    wts w1 = weights(g, "conv1", A_C1, A_C * 9, 8, 4, w1d, A_SX, NULL);
    int c1 = act(g, "c1", A_S1, A_Z1);
    int ins1[3] = {xq, w1.w, w1.b};
    qf_attr at1[3] = {A_INTS("pads", pads, 4), A_INTS("kernel_shape", ks, 2),
                      A_INT("act_min", A_Z1)};
    qnode(g, "conv1", "QConv", ins1, 3, c1, at1, 3);

    wts w2 = weights(g, "conv2", A_C1, A_C1 * 9, 4, 4, w2d, A_S1, conv2_unpacked);
    int c2 = act(g, "c2", A_S2, A_Z2);
    int ins2[3] = {c1, w2.w, w2.b};
    qf_attr at2[4] = {A_INTS("pads", pads, 4), A_INT("w_bits", 4), A_INTS("w_shape", w2d, 4),
                      A_STR("requant", "fixed")};
    qnode(g, "conv2", "QConv", ins2, 3, c2, at2, 4);

    int a = act(g, "a", A_SA, A_ZA);
    int insa[2] = {c2, c1};
    qf_attr ata[2] = {A_INT("act_min", -100), A_INT("act_max", 100)};
    qnode(g, "add", "QAdd", insa, 2, a, ata, 2);
    int p = act(g, "p", A_SP, A_ZP);
    qnode(g, "gap", "QGlobalAveragePool", &a, 1, p, NULL, 0);
    int f = act(g, "f", A_SP, A_ZP);
    g->values[f].rank = 2; /* known 2-D: QGemm exports without a Flatten */
    g->values[f].dims[0] = A_N;
    g->values[f].dims[1] = A_C1;
    qf_attr fat = A_INT("axis", 1);
    qf_graph_add_node(g, "flatten", "Flatten", "", 13, &p, 1, &f, 1, &fat, 1);
    int64_t wfd[2] = {A_FC, A_C1};
    wts wf = weights(g, "fc", A_FC, A_C1, 8, 2, wfd, A_SP, NULL);
    int fo = act(g, "fc_out", A_SY, A_ZY);
    int insf[3] = {f, wf.w, wf.b};
    qnode(g, "fc", "QGemm", insf, 3, fo, NULL, 0);
    dequant_output(g, fo, A_SY, A_ZY, QF_DT_I8);
    return g;
}

/* Graph B: Q -> QMaxPool, QLut, QResize (linear x2), QMul, QConcat (scales
 * differ), QPad, QAveragePool, QGemm on a rank-4 input (leading dims folded)
 * -> DQ. Input [4, 4, 8, 8], output [128, 6]. */
enum { B_N = 4, B_C = 4, B_H = 8, B_W = 8, B_FC = 6 };
static const float B_SX = 0.025f, B_SL = 1.0f / 127, B_SM = 0.01f, B_SC = 0.03f, B_SAP = 0.02f,
                   B_SY = 0.05f;
static const int32_t B_ZX = -5, B_ZL = 0, B_ZM = 1, B_ZC = 0, B_ZAP = -3, B_ZY = 0;
static int8_t b_table[256];

static float tanh_f(float x) { return tanhf(x); }

static qf_graph *build_b(void) {
    rng = 777u;
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {B_N, B_C, B_H, B_W};
    int xq = quant_input(g, 4, xd, B_SX, B_ZX, QF_DT_I8);
    /* attribute arrays are not copied by qf_graph_add_node: static */
    static int64_t k2[2] = {2, 2}, k3[2] = {3, 3}, s2[2] = {2, 2};
    int mp = act(g, "mp", B_SX, B_ZX);
    qf_attr mpa[2] = {A_INTS("kernel_shape", k2, 2), A_INTS("strides", s2, 2)};
    qnode(g, "maxpool", "QMaxPool", &xq, 1, mp, mpa, 2);

    qf_ref_lut_build(tanh_f, B_SX, B_ZX, B_SL, B_ZL, b_table);
    static int64_t tab[256];
    for (int i = 0; i < 256; i++)
        tab[i] = b_table[i];
    int lt = act(g, "lut", B_SL, B_ZL);
    qf_attr la = A_INTS("table", tab, 256);
    qnode(g, "tanh", "QLut", &xq, 1, lt, &la, 1);

    static float scales[4] = {1, 1, 2, 2};
    int rs = act(g, "rs", B_SX, B_ZX);
    qf_attr ra[2] = {A_FLOATS("scales", scales, 4), A_STR("mode", "linear")};
    qnode(g, "resize", "QResize", &mp, 1, rs, ra, 2);

    int mu = act(g, "mu", B_SM, B_ZM);
    int insm[2] = {lt, rs};
    qnode(g, "mul", "QMul", insm, 2, mu, NULL, 0);

    int cat = act(g, "cat", B_SC, B_ZC);
    int insc[2] = {mu, xq};
    qf_attr ca = A_INT("axis", 1);
    qnode(g, "concat", "QConcat", insc, 2, cat, &ca, 1);

    static int64_t pads[8] = {0, 0, 1, 1, 0, 0, 1, 1};
    int pd = act(g, "pd", B_SC, B_ZC);
    qf_attr pa = A_INTS("pads", pads, 8);
    qnode(g, "pad", "QPad", &cat, 1, pd, &pa, 1);

    int ap = act(g, "ap", B_SAP, B_ZAP);
    qf_attr aa[2] = {A_INTS("kernel_shape", k3, 2), A_INTS("strides", s2, 2)};
    qnode(g, "avgpool", "QAveragePool", &pd, 1, ap, aa, 2);

    int64_t wfd[2] = {B_FC, 4};
    wts wf = weights(g, "fc", B_FC, 4, 8, 2, wfd, B_SAP, NULL);
    int fo = act(g, "fc_out", B_SY, B_ZY);
    int insf[3] = {ap, wf.w, wf.b};
    qnode(g, "fc", "QGemm", insf, 3, fo, NULL, 0);
    dequant_output(g, fo, B_SY, B_ZY, QF_DT_I8);
    return g;
}

/* Graph C: Q -> QResize (sizes, nearest, asymmetric, floor) -> QPad
 * (reflect) -> QConv (per-tensor weights, bias, stride 2) -> DQ.
 * Input [1, 3, 5, 6], output [1, 4, 6, 5]. */
static const float C_SX = 0.03f, C_SY = 0.04f;
static const int32_t C_ZX = 10, C_ZY = -7;

static qf_graph *build_c(void) {
    rng = 4242u;
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {1, 3, 5, 6};
    int xq = quant_input(g, 4, xd, C_SX, C_ZX, QF_DT_I8);
    static int64_t sizes[4] = {1, 3, 10, 9}, pads[8] = {0, 0, 1, 2, 0, 0, 2, 1};
    static int64_t s2[2] = {2, 2}, wd[4] = {4, 3, 3, 3};
    int rz = act(g, "rz", C_SX, C_ZX);
    qf_attr ra[4] = {A_INTS("sizes", sizes, 4), A_STR("mode", "nearest"),
                     A_STR("coordinate_transformation_mode", "asymmetric"),
                     A_STR("nearest_mode", "floor")};
    qnode(g, "resize", "QResize", &xq, 1, rz, ra, 4);
    int pd = act(g, "pd", C_SX, C_ZX);
    qf_attr pa[2] = {A_INTS("pads", pads, 8), A_STR("mode", "reflect")};
    qnode(g, "pad", "QPad", &rz, 1, pd, pa, 2);
    wts w = weights_ex(g, "conv", 4, 27, 8, 4, wd, C_SX, NULL, false, true);
    int y = act(g, "conv_out", C_SY, C_ZY);
    int ins[3] = {pd, w.w, w.b};
    qf_attr ca = A_INTS("strides", s2, 2);
    qnode(g, "conv", "QConv", ins, 3, y, &ca, 1);
    dequant_output(g, y, C_SY, C_ZY, QF_DT_I8);
    return g;
}

/* Graph D (opset 21): Q (int16) -> QConv with 16-bit activations (no
 * bias) -> DQ.
 * Input [2, 3, 6, 6], output [2, 5, 6, 6]. */
static const float D_SX = 3.0f / 32767, D_SY = 4.0f / 32767;

static qf_graph *build_d(void) {
    rng = 5151u;
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {2, 3, 6, 6};
    int xq = quant_input(g, 4, xd, D_SX, 0, QF_DT_I16);
    static int64_t pads[4] = {1, 1, 1, 1}, wd[4] = {5, 3, 3, 3};
    wts w = weights_ex(g, "conv", 5, 27, 8, 4, wd, D_SX, NULL, true, false);
    int y = act_t(g, "conv_out", QF_DT_I16, D_SY, 0);
    int ins[2] = {xq, w.w};
    qf_attr ca = A_INTS("pads", pads, 4);
    qnode(g, "conv", "QConv", ins, 2, y, &ca, 1);
    dequant_output(g, y, D_SY, 0, QF_DT_I16);
    return g;
}

typedef struct model_case {
    const char *name;
    qf_graph *(*build)(void);
    int opset; /* 0: the default */
    int64_t in_dims[4];
    float in_lo, in_hi;
    float out_scale;
    int64_t out_numel;
    /* ops that must appear in ORT's optimized graph of the uint8 export:
     * its integer kernels (ORT on x86 only partly fuses int8 activations) */
    const char *want_ops;
} model_case;

/* Graph E: Q -> QLut with one table per channel (exported as a Gather with
 * channel offsets) -> QLut built from a BatchNormalization that carries
 * the op (exported as DequantizeLinear -> BatchNormalization ->
 * QuantizeLinear) -> DQ. Input [2, 4, 5, 6], output the same. */
enum { E_C = 4 };
static const float E_SX = 0.03f, E_SL = 1.0f / 100, E_SB = 0.02f, E_EPS = 1e-3f;
static const int32_t E_ZX = 4, E_ZL = -6, E_ZB = 3;
static float e_gamma[E_C] = {0.5f, 1.5f, -0.8f, 2.0f}, e_beta[E_C] = {0.1f, -0.3f, 0.25f, 0.0f},
             e_mean[E_C] = {0.2f, -0.1f, 0.0f, 0.3f}, e_var[E_C] = {0.5f, 2.0f, 0.9f, 4.0f};
static float e_f0(float x) { return tanhf(x); }
static float e_f1(float x) { return 0.5f * x; }
static float e_f2(float x) { return -x; }
static float e_f3(float x) { return 0.3f * x * x - 0.5f; }

static qf_graph *build_e(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[4] = {2, E_C, 5, 6};
    int xq = quant_input(g, 4, xd, E_SX, E_ZX, QF_DT_I8);
    g->values[xq].rank = 4; /* the channel offsets need the rank */
    memcpy(g->values[xq].dims, xd, sizeof xd);
    static int64_t t1[E_C * 256], t2[E_C * 256];
    float (*const fs[E_C])(float) = {e_f0, e_f1, e_f2, e_f3};
    for (int k = 0; k < E_C; k++) {
        int8_t t[256];
        qf_ref_lut_build(fs[k], E_SX, E_ZX, E_SL, E_ZL, t);
        for (int q = 0; q < 256; q++) {
            t1[k * 256 + q] = t[q];
            float x = E_SL * (float)(q - 128 - E_ZL);
            float y = (x - e_mean[k]) / sqrtf(e_var[k] + E_EPS) * e_gamma[k] + e_beta[k];
            t2[k * 256 + q] = qf_ref_quantize_one(y, E_SB, E_ZB, -128, 127);
        }
    }
    int lc = act(g, "lut_c", E_SL, E_ZL);
    qf_attr la[2] = {A_INTS("table", t1, E_C * 256), A_INT("axis", 1)};
    qnode(g, "perchannel", "QLut", &xq, 1, lc, la, 2);
    int64_t cd[1] = {E_C};
    int ins[5] = {
        lc, cnst(g, "gamma", QF_DT_F32, 1, cd, e_gamma), cnst(g, "beta", QF_DT_F32, 1, cd, e_beta),
        cnst(g, "mean", QF_DT_F32, 1, cd, e_mean), cnst(g, "var", QF_DT_F32, 1, cd, e_var)};
    int bn = act(g, "bn_out", E_SB, E_ZB);
    qf_attr ba[5] = {A_INTS("table", t2, E_C * 256),
                     A_INT("axis", 1),
                     A_STR("op", "BatchNormalization"),
                     A_INT("x_input", 0),
                     {.name = "epsilon", .type = QF_ATTR_FLOAT, .f = E_EPS}};
    qnode(g, "bn", "QLut", ins, 5, bn, ba, 5);
    dequant_output(g, bn, E_SB, E_ZB, QF_DT_I8);
    return g;
}

/* clang-format off */
static const model_case models[] = {
    {"a", build_a, 0, {A_N, A_C, A_H, A_W}, -3.2f, 3.2f, A_SY, A_N * A_FC,
     "QLinearConv,QLinearGlobalAveragePool,QGemm"},
    {"b", build_b, 0, {B_N, B_C, B_H, B_W}, -3.0f, 3.5f, B_SY, B_N * (2 * B_C) * 4 * B_FC,
     "QLinearMul,QLinearConcat,QLinearAveragePool,QGemm,MaxPool,Gather"},
    {"c", build_c, 0, {1, 3, 5, 6}, -3.5f, 3.5f, C_SY, 4 * 6 * 5, "QLinearConv"},
    {"d16", build_d, 21, {2, 3, 6, 6}, -2.8f, 2.8f, D_SY, 2 * 5 * 6 * 6, NULL},
    {"e", build_e, 0, {2, E_C, 5, 6}, -3.0f, 3.0f, E_SB, 2 * E_C * 5 * 6, NULL},
};
/* clang-format on */

/* ---- running ---------------------------------------------------------------------- */

/* Run model m (consumed) in qforge's session; *y gets a malloc'd copy of
 * output 0. */
static qf_status run_model(qf_model *m, const qf_tensor *x, float **y, int64_t *numel, qf_err *e) {
    qf_session *s = NULL;
    qf_tensor out;
    qf_status st = qf_session_create(m, NULL, &s, e);
    if (!st) st = qf_session_run(s, x, 1, &out, 1, e);
    if (!st && out.dtype != QF_DT_F32) st = QF_ERR_INTERNAL;
    if (!st) {
        *numel = qf_tensor_numel(&out);
        *y = malloc(sizeof(float) * (size_t)*numel);
        memcpy(*y, out.data, sizeof(float) * (size_t)*numel);
    }
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

/* The quantized graph g (sorted and parsed; consumed) on the integer runtime. */
static qf_status run_graph(qf_graph *g, const qf_tensor *x, float **y, int64_t *numel, qf_err *e) {
    qf_model *m = NULL;
    qf_status st = qf_model_from_graph(g, "q.qfm", &m, e);
    if (st) {
        qf_graph_free(g);
        return st;
    }
    return run_model(m, x, y, numel, e);
}

/* An exported file through qforge's importer and float runtime. */
static qf_status run_onnx(const char *path, const qf_tensor *x, float **y, int64_t *numel,
                          qf_err *e) {
    qf_model *m = NULL;
    qf_status st = qf_model_load_onnx(path, &m, e);
    return st ? st : run_model(m, x, y, numel, e);
}

/* Agreement in output steps of `scale`: fraction of elements within one
 * step, fraction exactly equal, largest difference. */
typedef struct agreement {
    double within, exact, max_steps;
} agreement;

static agreement steps(const float *ref, const float *got, int64_t n, float scale) {
    agreement a = {0, 0, 0};
    int64_t ok = 0, same = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)ref[i] - (double)got[i]) / scale;
        if (isnan(d)) d = 1e9;
        ok += d <= 1.001;
        same += d < 0.001;
        if (d > a.max_steps) a.max_steps = d;
    }
    a.within = n ? (double)ok / (double)n : 0;
    a.exact = n ? (double)same / (double)n : 0;
    return a;
}

static int distinct(const float *v, int64_t n) {
    int cnt = 0;
    for (int64_t i = 0; i < n && cnt < 1000; i++) {
        bool seen = false;
        for (int64_t j = 0; j < i && !seen; j++)
            seen = v[j] == v[i];
        cnt += !seen;
    }
    return cnt;
}

/* Each model x {int8, uint8}: export, check, run in ORT and in qforge, and
 * compare with the integer runtime on the quantized graph. */
static void exported_models_agree(void) {
    /* without VNNI, ONNX Runtime's fused int8 kernels saturate vpmaddubsw
     * pair sums (its documented u8s8 limitation): compare with the QDQ
     * graphs run as written instead (tests/node/ort_run.js) */
    if (!(qf_cpu_features() & (QF_CPU_AVX512VNNI | QF_CPU_AVXVNNI))) {
        setenv("QF_ORT_UNFUSED", "1", 1);
        printf("  no VNNI on this CPU: ONNX Runtime runs the exports unfused\n");
    }
    const char *dir = tmp_dir("agree");
    CHECK(dir);
    CHECK_MSG(access(ORT_RUN, R_OK) == 0, "%s missing (run from the repository root)", ORT_RUN);
    char log[700], in[700], files[4][700], outs[4][700], opts[4][700], cmd[4096];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    for (size_t mi = 0; mi < QF_ARRAY_LEN(models); mi++) {
        const model_case *mc = &models[mi];
        qf_err e;
        e.msg[0] = 0;
        /* input */
        int64_t n_in = 1;
        for (int i = 0; i < 4; i++)
            n_in *= mc->in_dims[i];
        float *xd = malloc(sizeof(float) * (size_t)n_in);
        rng = 99u + (uint32_t)mi;
        for (int64_t i = 0; i < n_in; i++)
            xd[i] = frnd(mc->in_lo, mc->in_hi);
        qf_tensor x;
        memset(&x, 0, sizeof x);
        x.dtype = QF_DT_F32;
        x.rank = 4;
        memcpy(x.dims, mc->in_dims, sizeof mc->in_dims);
        x.data = xd;
        snprintf(in, sizeof in, "%s/%s_in.npy", dir, mc->name);
        CHECK_MSG(qf_npy_write(in, &x, &e) == QF_OK, "%s", e.msg);

        /* export both activation types from the parsed quantized graph */
        qf_graph *g = mc->build();
        qf_status st = qf_graph_toposort(g, &e);
        if (!st) st = qf_graph_parse_ops(g, &e);
        for (int u8 = 0; !st && u8 <= 1; u8++) {
            qf_qdq_export_options o;
            qf_qdq_export_options_init(&o);
            o.act_type = u8 ? QF_QDQ_ACT_UINT8 : QF_QDQ_ACT_INT8;
            o.opset = mc->opset;
            snprintf(files[u8], sizeof files[u8], "%s/%s_%s.onnx", dir, mc->name, u8 ? "u8" : "s8");
            snprintf(outs[u8], sizeof outs[u8], "%s/%s_%s_ort.npy", dir, mc->name,
                     u8 ? "u8" : "s8");
            snprintf(opts[u8], sizeof opts[u8], "%s/%s_%s_opt.onnx", dir, mc->name,
                     u8 ? "u8" : "s8");
            st = qf_qdq_export(g, files[u8], &o, &e);
        }
        float *ref = NULL;
        int64_t n_ref = 0;
        if (!st)
            st = run_graph(g, &x, &ref, &n_ref, &e);
        else
            qf_graph_free(g);
        CHECK_MSG(st == QF_OK, "model %s: %s", mc->name, e.msg);
        CHECK_EQ_INT(n_ref, mc->out_numel);
        int nd = distinct(ref, n_ref);
        CHECK_MSG(nd >= 20, "model %s: output too flat (%d distinct values)", mc->name, nd);

        snprintf(cmd, sizeof cmd,
                 PY " -c \"import onnx,sys; [onnx.checker.check_model(onnx.load(f)) for f in "
                    "sys.argv[1:]]\" %s %s",
                 files[0], files[1]);
        /* Debian's python-onnx (1.12) knows opsets up to 17 only */
        CHECK_MSG(mc->opset > 17 || run_cmd(cmd, log) == 0,
                  "model %s: onnx checker rejected the export", mc->name);

        for (int u8 = 0; u8 <= 1; u8++) {
            snprintf(cmd, sizeof cmd, "node " ORT_RUN " %s %s %s", files[u8], in, outs[u8]);
            CHECK_MSG(run_cmd(cmd, log) == 0, "model %s: onnxruntime failed", mc->name);
            qf_tensor r;
            CHECK_MSG(qf_npy_read(outs[u8], &r, &e) == QF_OK, "%s", e.msg);
            bool shape_ok = r.dtype == QF_DT_F32 && qf_tensor_numel(&r) == n_ref;
            agreement ao = {0, 0, 1e9};
            if (shape_ok) ao = steps(ref, r.data, n_ref, mc->out_scale);
            qf_free_aligned(r.data);
            CHECK(shape_ok);

            float *qy = NULL;
            int64_t n_qy = 0;
            st = run_onnx(files[u8], &x, &qy, &n_qy, &e);
            CHECK_MSG(st == QF_OK, "qforge on the QDQ export: %s", e.msg);
            agreement aq = {0, 0, 1e9};
            if (n_qy == n_ref) aq = steps(ref, qy, n_ref, mc->out_scale);
            free(qy);
            printf("  model %s %-5s (%lld outputs): ORT %.2f%% within 1 step, %.2f%% exact, "
                   "max %.0f; qforge import %.2f%% / %.2f%%, max %.0f\n",
                   mc->name, u8 ? "uint8" : "int8", (long long)n_ref, 100 * ao.within,
                   100 * ao.exact, ao.max_steps, 100 * aq.within, 100 * aq.exact, aq.max_steps);
            CHECK_EQ_INT(n_qy, n_ref);
            CHECK_MSG(aq.within >= 0.999, "model %s: qforge agreement %.4f", mc->name, aq.within);
            CHECK_MSG(aq.max_steps <= 2.001, "model %s: max steps %.2f", mc->name, aq.max_steps);
            CHECK_MSG(ao.within >= 0.999, "model %s: ORT agreement %.4f", mc->name, ao.within);
            CHECK_MSG(ao.max_steps <= 2.001, "model %s: ORT max steps %.2f", mc->name,
                      ao.max_steps);

            if (u8 && mc->want_ops) {
                /* ORT's optimized graph must hold its integer kernels */
                snprintf(cmd, sizeof cmd,
                         "node " ORT_OPT " %s %s && " PY
                         " -c \"import onnx,sys; ops={n.op_type for n in "
                         "onnx.load(sys.argv[1]).graph.node}; print(sorted(ops)); "
                         "sys.exit(0 if ops.issuperset(sys.argv[2].split(',')) else 1)\" %s %s",
                         files[u8], opts[u8], opts[u8], mc->want_ops);
                CHECK_MSG(run_cmd(cmd, log) == 0, "model %s %s: ORT did not fuse to %s", mc->name,
                          u8 ? "uint8" : "int8", mc->want_ops);
            }
        }
        free(ref);
        free(xd);
    }
}

/* ---- structure of the built graph ------------------------------------------------- */

static int find(const qf_graph *g, const char *name) { return qf_graph_find_value(g, name); }

static int count_op(const qf_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i].op_type, op);
    return n;
}

static const qf_node *producer(const qf_graph *g, int v) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_outputs; j++)
            if (g->nodes[i].outputs[j] == v) return &g->nodes[i];
    return NULL;
}

static void structure_of_graph_a(void) {
    qf_graph *qg = build_a();
    CHECK(qg);
    for (int u8 = 0; u8 <= 1; u8++) {
        qf_qdq_export_options o;
        qf_qdq_export_options_init(&o);
        o.act_type = u8 ? QF_QDQ_ACT_UINT8 : QF_QDQ_ACT_INT8;
        qf_graph *g = NULL;
        qf_err e;
        qf_status st = qf_qdq_build(qg, &o, &g, &e);
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        bool ok = count_op(g, "Conv") == 2 && count_op(g, "Gemm") == 1 && count_op(g, "Add") == 1 &&
                  count_op(g, "GlobalAveragePool") == 1 && count_op(g, "Relu") == 1 &&
                  count_op(g, "Clip") == 1 && count_op(g, "Flatten") == 1 &&
                  count_op(g, "QuantizeLinear") == 6 &&
                  /* x (conv1), c1 (conv2, add), c2, a, f, 3 weights, 3 biases, output */
                  count_op(g, "DequantizeLinear") == 13 && g->opset == 13 && g->n_inputs == 1 &&
                  g->n_outputs == 1 && !strcmp(g->values[g->inputs[0]].name, "x") &&
                  !strcmp(g->values[g->outputs[0]].name, "y") &&
                  g->values[g->outputs[0]].dtype == QF_DT_F32 &&
                  /* shapes inferred for the output and the intermediates */
                  g->values[g->outputs[0]].rank == 2 && g->values[g->outputs[0]].dims[1] == A_FC &&
                  find(g, "conv1/out") >= 0 && g->values[find(g, "conv1/out")].rank == 4;
        if (!ok) qf_graph_free(g);
        CHECK_MSG(ok, "node counts (u8=%d)", u8);

        /* 4-bit weights unpacked to the logical int8 OIHW tensor */
        int w2 = find(g, "conv2_w");
        const qf_value *wv = w2 >= 0 ? &g->values[w2] : NULL;
        ok = wv && (wv->flags & QF_VAL_CONST) && wv->dtype == QF_DT_I8 && wv->rank == 4 &&
             wv->dims[0] == 8 && wv->dims[1] == 8 && wv->dims[2] == 3 && wv->dims[3] == 3 &&
             wv->nbytes == sizeof conv2_unpacked &&
             !memcmp(wv->data, conv2_unpacked, sizeof conv2_unpacked);
        /* its per-channel DequantizeLinear on axis 0 */
        const qf_node *wdq = ok ? producer(g, find(g, "conv2/w_dq")) : NULL;
        ok = ok && wdq && !strcmp(wdq->op_type, "DequantizeLinear") && wdq->inputs[0] == w2 &&
             qf_node_attr_int(wdq, "axis", 1) == 0 && g->values[wdq->inputs[1]].rank == 1 &&
             g->values[wdq->inputs[1]].dims[0] == 8;
        /* bias scale = s_x * s_w[c], int32 zero points */
        const qf_value *wsv = &qg->values[qf_graph_find_value(qg, "conv2_w")];
        int bs = find(g, "conv2/bias_scale"), bz = find(g, "conv2/bias_zero_point");
        ok = ok && bs >= 0 && bz >= 0 && g->values[bz].dtype == QF_DT_I32;
        for (int c = 0; ok && c < 8; c++)
            ok = ((float *)g->values[bs].data)[c] == A_S1 * wsv->qp->scale[c] &&
                 ((int32_t *)g->values[bz].data)[c] == 0;
        /* Clip bounds of the add: s_a * (act - z_a) */
        const qf_node *clip = ok ? producer(g, find(g, "add/act")) : NULL;
        ok = ok && clip && !strcmp(clip->op_type, "Clip") && clip->n_inputs == 3 &&
             fabsf(*(float *)g->values[clip->inputs[1]].data - A_SA * (-100 - A_ZA)) < 1e-6f &&
             fabsf(*(float *)g->values[clip->inputs[2]].data - A_SA * (100 - A_ZA)) < 1e-6f;
        /* conv1's relu, activation zero point (shifted in uint8 mode) */
        const qf_node *relu = ok ? producer(g, find(g, "conv1/act")) : NULL;
        int c1z = find(g, "c1/zero_point"), c1 = find(g, "c1");
        qf_dtype at = u8 ? QF_DT_U8 : QF_DT_I8;
        ok = ok && relu && !strcmp(relu->op_type, "Relu") && c1z >= 0 && c1 >= 0 &&
             g->values[c1z].dtype == at && g->values[c1].dtype == at &&
             (u8 ? *(uint8_t *)g->values[c1z].data == A_Z1 + 128
                 : *(int8_t *)g->values[c1z].data == A_Z1);
        /* the original QuantizeLinear's zero point follows the activation type */
        const qf_node *q = ok ? producer(g, find(g, "xq")) : NULL;
        ok = ok && q && !strcmp(q->op_type, "QuantizeLinear") &&
             g->values[q->inputs[2]].dtype == at &&
             (u8 ? *(uint8_t *)g->values[q->inputs[2]].data == A_ZX + 128
                 : *(int8_t *)g->values[q->inputs[2]].data == A_ZX);
        qf_graph_free(g);
        CHECK_MSG(ok, "structure (u8=%d)", u8);
    }
    qf_graph_free(qg);
}

/* QLut as Gather: the table initializer is the node's table (shifted by
 * 128 in uint8 mode), indexed by q + 128 (int8) or q (uint8). */
static void lut_becomes_gather(void) {
    qf_graph *qg = build_b();
    CHECK(qg);
    for (int u8 = 0; u8 <= 1; u8++) {
        qf_qdq_export_options o;
        qf_qdq_export_options_init(&o);
        o.act_type = u8 ? QF_QDQ_ACT_UINT8 : QF_QDQ_ACT_INT8;
        qf_graph *g = NULL;
        qf_err e;
        CHECK_MSG(qf_qdq_build(qg, &o, &g, &e) == QF_OK, "%s", e.msg);
        const qf_node *gather = producer(g, find(g, "lut"));
        int tv = find(g, "tanh/table");
        bool ok =
            gather && !strcmp(gather->op_type, "Gather") && tv >= 0 && gather->inputs[0] == tv &&
            g->values[tv].nbytes == 256 && g->values[tv].dtype == (u8 ? QF_DT_U8 : QF_DT_I8) &&
            count_op(g, "Add") == (u8 ? 0 : 1) && count_op(g, "Cast") == 1 &&
            count_op(g, "Resize") == 1 && count_op(g, "Pad") == 1 && count_op(g, "Concat") == 1 &&
            count_op(g, "Mul") == 1 && count_op(g, "MaxPool") == 1 &&
            count_op(g, "AveragePool") == 1 && count_op(g, "Flatten") == 1 &&
            count_op(g, "Relu") == 0 && count_op(g, "Gemm") == 1;
        for (int i = 0; ok && i < 256; i++) {
            int v =
                u8 ? ((uint8_t *)g->values[tv].data)[i] - 128 : ((int8_t *)g->values[tv].data)[i];
            ok = v == b_table[i];
        }
        qf_graph_free(g);
        CHECK_MSG(ok, "u8=%d", u8);
    }
    qf_graph_free(qg);
}

/* Per-channel QLut: without a float op a Gather over the flat tables with
 * channel offsets [1, C, 1, 1] (c * 256) added to the index; with one, the
 * op itself between DequantizeLinear and QuantizeLinear. */
static void per_channel_lut_export(void) {
    qf_graph *qg = build_e();
    qf_err e;
    CHECK_MSG(!qf_graph_toposort(qg, &e) && !qf_graph_parse_ops(qg, &e), "%s", e.msg);
    for (int u8 = 0; u8 <= 1; u8++) {
        qf_qdq_export_options o;
        qf_qdq_export_options_init(&o);
        o.act_type = u8 ? QF_QDQ_ACT_UINT8 : QF_QDQ_ACT_INT8;
        qf_graph *g = NULL;
        CHECK_MSG(qf_qdq_build(qg, &o, &g, &e) == QF_OK, "%s", e.msg);
        if (!g) continue;
        int tv = find(g, "perchannel/table"), ov = find(g, "perchannel/channel_offset");
        const qf_node *gather = producer(g, find(g, "lut_c"));
        bool ok = gather && !strcmp(gather->op_type, "Gather") && tv >= 0 && ov >= 0 &&
                  g->values[tv].nbytes == E_C * 256 && g->values[ov].rank == 4 &&
                  g->values[ov].dims[0] == 1 && g->values[ov].dims[1] == E_C &&
                  g->values[ov].dims[2] == 1 && g->values[ov].dims[3] == 1 &&
                  count_op(g, "Gather") == 1 && count_op(g, "BatchNormalization") == 1;
        for (int k = 0; ok && k < E_C; k++)
            ok = ((const int32_t *)g->values[ov].data)[k] == 256 * k;
        const qf_node *bq = producer(g, find(g, "bn_out"));
        ok = ok && bq && !strcmp(bq->op_type, "QuantizeLinear");
        qf_graph_free(g);
        CHECK_MSG(ok, "structure (u8=%d)", u8);
    }
    /* a table claiming a float op that is not element-wise: refused */
    for (int i = 0; i < qg->n_nodes; i++)
        for (int a = 0; a < qg->nodes[i].n_attrs; a++)
            if (!strcmp(qg->nodes[i].attrs[a].name, "op")) qg->nodes[i].attrs[a].s = "Conv";
    qf_qdq_export_options o;
    qf_qdq_export_options_init(&o);
    qf_graph *g = NULL;
    CHECK(qf_qdq_build(qg, &o, &g, &e) == QF_ERR_FORMAT && !g);
    CHECK_MSG(strstr(e.msg, "'Conv' is not an element-wise") && strstr(e.msg, "bn"), "%s", e.msg);
    qf_graph_free(qg);
}

/* uint8 mode with an int8 graph input and output: converted at the
 * boundary, so the model's interface and its results stay the same. */
static void uint8_mode_keeps_int8_boundaries(void) {
    const char *dir = tmp_dir("boundary");
    CHECK(dir);
    char path[700];
    snprintf(path, sizeof path, "%s/lut.onnx", dir);
    int8_t table[256];
    qf_ref_lut_build(tanh_f, 0.05f, 7, 1.0f / 127, 0, table);
    static int64_t tab[256];
    int64_t dims[2] = {2, 128};
    for (int i = 0; i < 256; i++)
        tab[i] = table[i];
    qf_graph *g = qf_graph_create();
    float s = 0.05f;
    int32_t z = 7;
    int x = qf_graph_add_value(g, "xq", QF_DT_I8, 2, dims);
    qf_value_set_qparams(g, x, 8, -1, 1, &s, &z);
    qf_graph_add_input(g, x);
    int y = qf_graph_add_value(g, "yq", QF_DT_I8, 2, dims);
    float so = 1.0f / 127;
    int32_t zo = 0;
    qf_value_set_qparams(g, y, 8, -1, 1, &so, &zo);
    qf_attr la = A_INTS("table", tab, 256);
    qnode(g, "lut", "QLut", &x, 1, y, &la, 1);
    qf_graph_add_output(g, y);
    qf_qdq_export_options o;
    qf_qdq_export_options_init(&o);
    o.act_type = QF_QDQ_ACT_UINT8;
    qf_err e;
    CHECK_MSG(qf_qdq_export(g, path, &o, &e) == QF_OK, "%s", e.msg);
    qf_graph_free(g);

    int8_t xin[256];
    for (int i = 0; i < 256; i++)
        xin[i] = (int8_t)(i - 128);
    qf_tensor xt;
    memset(&xt, 0, sizeof xt);
    xt.dtype = QF_DT_I8;
    xt.rank = 2;
    xt.dims[0] = 2;
    xt.dims[1] = 128;
    xt.data = xin;
    qf_model *m = NULL;
    qf_session *ss = NULL;
    qf_tensor out;
    qf_status st = qf_model_load_onnx(path, &m, &e);
    if (!st) st = qf_session_create(m, NULL, &ss, &e);
    if (!st) st = qf_session_run(ss, &xt, 1, &out, 1, &e);
    bool ok = !st && out.dtype == QF_DT_I8 && qf_tensor_numel(&out) == 256 &&
              qf_model_num_inputs(m) == 1 && !strcmp(qf_model_input_name(m, 0), "xq") &&
              !strcmp(qf_model_output_name(m, 0), "yq");
    for (int i = 0; ok && i < 256; i++)
        ok = ((int8_t *)out.data)[i] == table[i]; /* input i - 128 reads table[i] */
    qf_session_free(ss);
    qf_model_free(m);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(ok);
}

/* Layout ops on integer data are copied; Squeeze/Unsqueeze of opset 11
 * (axes attribute) get their axes as an input in the opset-13 export. Run
 * in ORT and qforge: the values must come out exactly as the original
 * graph's, in both activation types. */
static void old_layout_ops_copied(void) {
    const char *dir = tmp_dir("layout");
    CHECK(dir);
    static int64_t ax0[1] = {0}, ax1[1] = {1};
    float xd[6] = {-1.0f, -0.26f, 0.0f, 0.37f, 0.9f, 3.0f}, s = 0.01f;
    int64_t dims[2] = {1, 6};
    qf_tensor x;
    memset(&x, 0, sizeof x);
    x.dtype = QF_DT_F32;
    x.rank = 2;
    x.dims[0] = 1;
    x.dims[1] = 6;
    x.data = xd;
    char in[700], log[700], model[700], out[700], cmd[3000];
    snprintf(in, sizeof in, "%s/in.npy", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    qf_err e;
    CHECK_MSG(qf_npy_write(in, &x, &e) == QF_OK, "%s", e.msg);
    for (int u8 = 0; u8 <= 1; u8++) {
        qf_graph *g = qf_graph_create();
        g->opset = 11;
        int xv = qf_graph_add_value(g, "x", QF_DT_F32, 2, dims);
        qf_graph_add_input(g, xv);
        int8_t z = -3;
        int vs = cnst(g, "s", QF_DT_F32, 0, NULL, &s), vz = cnst(g, "z", QF_DT_I8, 0, NULL, &z);
        int xq = act(g, "xq", s, z), sq = act(g, "sq", s, z), uq = act(g, "uq", s, z);
        int y = qf_graph_add_value(g, "y", QF_DT_F32, -1, NULL);
        int qi[3] = {xv, vs, vz}, di[3] = {uq, vs, vz};
        qf_attr a0 = A_INTS("axes", ax0, 1), a1 = A_INTS("axes", ax1, 1);
        qf_graph_add_node(g, "q", "QuantizeLinear", "", 11, qi, 3, &xq, 1, NULL, 0);
        qf_graph_add_node(g, "squeeze", "Squeeze", "", 11, &xq, 1, &sq, 1, &a0, 1);
        qf_graph_add_node(g, "unsqueeze", "Unsqueeze", "", 11, &sq, 1, &uq, 1, &a1, 1);
        qf_graph_add_node(g, "dq", "DequantizeLinear", "", 11, di, 3, &y, 1, NULL, 0);
        qf_graph_add_output(g, y);
        snprintf(model, sizeof model, "%s/m%d.onnx", dir, u8);
        snprintf(out, sizeof out, "%s/out%d.npy", dir, u8);
        qf_qdq_export_options o;
        qf_qdq_export_options_init(&o);
        o.act_type = u8 ? QF_QDQ_ACT_UINT8 : QF_QDQ_ACT_INT8;
        qf_status st = qf_qdq_export(g, model, &o, &e);
        qf_graph *ng = NULL;
        if (!st) st = qf_qdq_build(g, &o, &ng, &e);
        bool shape_ok = false;
        for (int i = 0; ng && i < ng->n_nodes; i++) {
            const qf_node *n = &ng->nodes[i];
            if (strcmp(n->op_type, "Squeeze")) continue;
            const qf_value *a = n->n_inputs == 2 ? &ng->values[n->inputs[1]] : NULL;
            shape_ok = a && a->dtype == QF_DT_I64 && a->nbytes == 8 && *(int64_t *)a->data == 0 &&
                       !qf_node_attr(n, "axes") && n->opset == 13;
        }
        qf_graph_free(ng);
        float *ref = NULL, *got = NULL;
        int64_t n_ref = 0, n_got = 0;
        if (!st) st = qf_graph_toposort(g, &e);
        if (!st) st = qf_graph_parse_ops(g, &e);
        if (!st)
            st = run_graph(g, &x, &ref, &n_ref, &e);
        else
            qf_graph_free(g);
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        CHECK(shape_ok);
        CHECK_MSG(run_onnx(model, &x, &got, &n_got, &e) == QF_OK, "%s", e.msg);
        bool same = n_got == 6 && n_ref == 6 && !memcmp(ref, got, sizeof(float) * 6);
        free(got);
        snprintf(cmd, sizeof cmd, "node " ORT_RUN " %s %s %s", model, in, out);
        bool ort_ok = run_cmd(cmd, log) == 0;
        qf_tensor r;
        memset(&r, 0, sizeof r);
        bool ort_same = ort_ok && qf_npy_read(out, &r, &e) == QF_OK && r.rank == 2 &&
                        r.dims[0] == 6 && r.dims[1] == 1 && n_ref == 6 &&
                        !memcmp(ref, r.data, sizeof(float) * 6);
        qf_free_aligned(r.data);
        free(ref);
        CHECK_MSG(same, "qforge on the export (u8=%d)", u8);
        CHECK_MSG(ort_same, "ORT on the export (u8=%d)", u8);
    }
}

/* ---- errors --------------------------------------------------------------------------- */

typedef enum {
    E_NO_ACT_QP,
    E_NO_WEIGHT_QP,
    E_OPSET,
    E_ACT_TYPE,
    E_INT16,
    E_UNKNOWN_OP,
    E_BAD_SCALE
} err_kind;

typedef struct err_case {
    const char *name;
    err_kind kind;
    qf_status want;
    const char *must_name;
} err_case;

static const err_case err_cases[] = {
    {"activation without qparams", E_NO_ACT_QP, QF_ERR_FORMAT, "'c1'"},
    {"weight without qparams", E_NO_WEIGHT_QP, QF_ERR_FORMAT, "'conv1_w'"},
    {"opset 12", E_OPSET, QF_ERR_INVALID_ARG, "opset 12"},
    {"activation type", E_ACT_TYPE, QF_ERR_INVALID_ARG, "activation type"},
    {"int16 below opset 21", E_INT16, QF_ERR_UNSUPPORTED, "'c1'"},
    {"unknown qforge op", E_UNKNOWN_OP, QF_ERR_UNSUPPORTED, "'mystery'"},
    {"zero scale", E_BAD_SCALE, QF_ERR_FORMAT, "'c1'"},
};

static void errors(void) {
    const char *dir = tmp_dir("errors");
    CHECK(dir);
    char path[700];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    for (size_t ci = 0; ci < QF_ARRAY_LEN(err_cases); ci++) {
        const err_case *c = &err_cases[ci];
        qf_graph *g = build_a();
        qf_qdq_export_options o;
        qf_qdq_export_options_init(&o);
        int c1 = qf_graph_find_value(g, "c1");
        switch (c->kind) {
        case E_NO_ACT_QP: g->values[c1].qp = NULL; break;
        case E_NO_WEIGHT_QP: g->values[qf_graph_find_value(g, "conv1_w")].qp = NULL; break;
        case E_OPSET: o.opset = 12; break;
        case E_ACT_TYPE: o.act_type = (qf_qdq_act_type)7; break;
        case E_INT16: g->values[c1].qp->bits = 16, g->values[c1].dtype = QF_DT_I16; break;
        case E_UNKNOWN_OP: {
            int v = act(g, "m", 0.1f, 0);
            qnode(g, "mystery", "QSoftmax", &c1, 1, v, NULL, 0);
            break;
        }
        case E_BAD_SCALE: g->values[c1].qp->scale[0] = 0.0f; break;
        }
        qf_err e;
        e.msg[0] = 0;
        qf_status st = qf_qdq_export(g, path, &o, &e);
        qf_graph_free(g);
        CHECK_MSG(st == c->want, "%s: status %d (%s)", c->name, (int)st, e.msg);
        CHECK_MSG(strstr(e.msg, c->must_name), "%s: message '%s'", c->name, e.msg);
        CHECK_MSG(count_entries(dir) == 0, "%s: a file was left", c->name);
    }
    /* unwritable paths: QF_ERR_IO and nothing left behind */
    char missing[700], isdir[700];
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.onnx", dir);
    snprintf(isdir, sizeof isdir, "%s/adir", dir);
    CHECK(mkdir(isdir, 0700) == 0);
    qf_graph *g = build_a();
    qf_err e;
    qf_status s1 = qf_qdq_export(g, missing, NULL, &e);
    qf_status s2 = qf_qdq_export(g, isdir, NULL, &e);
    qf_graph_free(g);
    CHECK_EQ_INT(s1, QF_ERR_IO);
    CHECK_EQ_INT(s2, QF_ERR_IO);
    CHECK_EQ_INT(count_entries(dir), 1);
    CHECK_EQ_INT(count_entries(isdir), 0);
}

/* Allocation failure at every step of an export: QF_ERR_NOMEM, no file
 * left, nothing leaks (ASan). */
static long fail_at, n_alloc;
static void *oom_alloc(void *u, size_t n) {
    (void)u;
    return n_alloc++ == fail_at ? NULL : malloc(n);
}
static void *oom_realloc(void *u, void *p, size_t n) {
    (void)u;
    return n_alloc++ == fail_at ? NULL : realloc(p, n);
}
static void oom_free(void *u, void *p) {
    (void)u;
    free(p);
}

static void out_of_memory_everywhere(void) {
    const char *dir = tmp_dir("oom");
    CHECK(dir);
    char path[700];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    qf_graph *qg = build_b();
    const qf_allocator oom = {oom_alloc, oom_realloc, oom_free, NULL};
    qf_qdq_export_options o;
    qf_qdq_export_options_init(&o);
    o.act_type = QF_QDQ_ACT_UINT8;
    long steps_done = 0;
    bool bad = false;
    for (fail_at = 0; fail_at < 100000; fail_at++) {
        n_alloc = 0;
        qf_err e;
        qf_set_allocator(&oom);
        qf_status st = qf_qdq_export(qg, path, &o, &e);
        qf_set_allocator(NULL);
        if (n_alloc <= fail_at) { /* no failure was injected: done */
            bad = st != QF_OK;
            break;
        }
        steps_done++;
        if (st != QF_ERR_NOMEM || count_entries(dir) != 0) {
            fprintf(stderr, "  fail_at %ld: status %d, %d files (%s)\n", fail_at, (int)st,
                    count_entries(dir), e.msg);
            bad = true;
            break;
        }
    }
    qf_graph_free(qg);
    CHECK(!bad);
    CHECK_MSG(steps_done > 50, "%ld steps", steps_done);
    CHECK_EQ_INT(count_entries(dir), 1);
}

QT_MAIN(QT_CASE(out_of_memory_everywhere), QT_CASE(structure_of_graph_a),
        QT_CASE(lut_becomes_gather), QT_CASE(per_channel_lut_export),
        QT_CASE(uint8_mode_keeps_int8_boundaries), QT_CASE(old_layout_ops_copied), QT_CASE(errors),
        QT_CASE(exported_models_agree))
