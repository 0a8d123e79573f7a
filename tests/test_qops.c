/* test_qops.c - the qforge-domain integer ops (QConv, QGemm, QAdd, QMul,
 * QMaxPool, QAveragePool, QGlobalAveragePool, QConcat, QResize, QPad, QLut)
 * wired through the op registry, qf_graph_parse_ops and the session.
 *
 *  - wiring: small quantized graphs built by hand run through
 *    qf_session_run, and each output must equal, bit for bit, a direct call
 *    of the same qf_ref_* kernel on the same data with parameters assembled
 *    here from the test case (shapes from formulas written in this file);
 *  - a hand-computed QConv (multiplier 1, so the output is the integer sum);
 *  - float cross-check: QuantizeLinear -> QConv -> QAdd (residual) ->
 *    DequantizeLinear against the float Conv and Add ops on the dequantized
 *    input, weights and bias, within one output step of each requantization
 *    (both requant modes);
 *  - errors: missing qparams, packed weights of the wrong size, act_min >
 *    act_max, w_bits 3, overflow-prone layers and other bad parameters give
 *    the expected status and a message naming the node (and tensor).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ir/graph.h"
#include "kernels/ref/qref.h"
#include "qt_alloc.h"
#include "qtest.h"
#include "runtime/runtime.h"

/* ---- helpers --------------------------------------------------------------- */

static uint32_t rng = 12345u;
static int32_t rnd(int32_t lo, int32_t hi) { /* inclusive */
    rng = rng * 1664525u + 1013904223u;
    return lo + (int32_t)((uint64_t)(rng >> 8) * (uint64_t)(hi - lo + 1) >> 24);
}
static void fill_i8(int8_t *p, size_t n, int lo, int hi) {
    for (size_t i = 0; i < n; i++)
        p[i] = (int8_t)rnd(lo, hi);
}
static void fill_i16(int16_t *p, size_t n, int lo, int hi) {
    for (size_t i = 0; i < n; i++)
        p[i] = (int16_t)rnd(lo, hi);
}

#define A_INT(nm, v) ((qf_attr){.name = (nm), .type = QF_ATTR_INT, .i = (v)})
#define A_INTS(nm, arr, cnt)                                                                       \
    ((qf_attr){.name = (nm), .type = QF_ATTR_INTS, .ints = (arr), .n = (cnt)})
#define A_FLOATS(nm, arr, cnt)                                                                     \
    ((qf_attr){.name = (nm), .type = QF_ATTR_FLOATS, .floats = (arr), .n = (cnt)})
#define A_STR(nm, str) ((qf_attr){.name = (nm), .type = QF_ATTR_STRING, .s = (str)})

/* An activation value with per-tensor qparams (scale <= 0: none). */
static int act(qf_graph *g, const char *name, qf_dtype dt, float scale, int32_t zp, int bits) {
    int v = qf_graph_add_value(g, name, dt, -1, NULL);
    if (v >= 0 && scale > 0) qf_value_set_qparams(g, v, bits, -1, 1, &scale, &zp);
    return v;
}

static int input(qf_graph *g, const char *name, qf_dtype dt, float scale, int32_t zp, int bits) {
    int v = act(g, name, dt, scale, zp, bits);
    qf_graph_add_input(g, v);
    return v;
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
    qf_err e;
    if (v < 0 || qf_graph_set_const(g, v, &t, &e)) return -1;
    return v;
}

static int qnode(qf_graph *g, const char *name, const char *op, const int *ins, int n_in, int out,
                 const qf_attr *attrs, int n_attrs) {
    return qf_graph_add_node(g, name, op, "qforge", 1, ins, n_in, &out, 1, attrs, n_attrs);
}

/* Sort, parse, plan and run graph g (consumed); output 0 is copied into buf
 * (cap bytes) and *out describes it. */
static qf_status run_graph(qf_graph *g, const qf_tensor *ins, int n_in, qf_tensor *out, void *buf,
                           size_t cap, qf_err *e) {
    e->msg[0] = 0;
    qf_status st = qf_graph_toposort(g, e);
    if (!st) st = qf_graph_parse_ops(g, e);
    qf_model *m = NULL;
    if (!st) st = qf_model_from_graph(g, "q.onnx", &m, e);
    if (st) {
        qf_graph_free(g);
        return st;
    }
    qf_session *s = NULL;
    st = qf_session_create(m, NULL, &s, e);
    if (!st) st = qf_session_run(s, ins, n_in, out, 1, e);
    if (!st) {
        size_t b = (size_t)qf_tensor_numel(out) * qf_dtype_size(out->dtype);
        if (b > cap) {
            st = QF_ERR_INTERNAL;
        } else {
            memcpy(buf, out->data, b);
            out->data = buf;
        }
    }
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

/* toposort + parse only (the error tests); g is freed. */
static qf_status parse_graph(qf_graph *g, qf_err *e) {
    e->msg[0] = 0;
    qf_status st = qf_graph_toposort(g, e);
    if (!st) st = qf_graph_parse_ops(g, e);
    qf_graph_free(g);
    return st;
}

static qf_tensor tensor(qf_dtype dt, int rank, const int64_t *dims, void *data) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.data = data;
    return t;
}

static int64_t prod(const int64_t *d, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= d[i];
    return p;
}

/* ---- QConv wiring ------------------------------------------------------------ */

typedef struct conv_case {
    const char *name;
    int rank; /* 3 (1-D: h = kh = 1) or 4 */
    int n, c, h, w, oc, kh, kw, group;
    int sh, sw, dh, dw, pt, pl, pb, pr;
    int w_bits, per_channel, bias, fixed, i16;
    int has_act, act_min, act_max;
    const char *auto_pad; /* NULL: explicit pads */
} conv_case;

/* clang-format off */
/* name, rank, n c h w, oc kh kw group, sh sw dh dw, pt pl pb pr,
 * w_bits per_channel bias fixed i16, has_act act_min act_max, auto_pad */
static const conv_case conv_cases[] = {
    {"3x3 pad1 w8 per-channel bias", 4, 1, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 1, 1, 0,
     0, 0, 0, 0, NULL},
    {"stride2 dil2 asym pads fixed", 4, 2, 4, 9, 8, 6, 3, 2, 1, 2, 1, 2, 2, 0, 2, 1, 0, 8, 1, 0, 1,
     0, 0, 0, 0, NULL},
    {"grouped w4 relu", 4, 1, 6, 5, 5, 4, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 0, 0, 1, 10,
     127, NULL},
    {"depthwise w2 per-tensor fixed", 4, 2, 5, 7, 6, 5, 3, 3, 5, 1, 2, 1, 1, 1, 0, 1, 2, 2, 0, 1, 1,
     0, 0, 0, 0, NULL},
    {"depthwise multiplier 2 w4", 4, 1, 3, 5, 5, 6, 2, 2, 3, 1, 1, 1, 1, 0, 0, 1, 1, 4, 1, 0, 0, 0,
     1, -20, 40, NULL},
    {"1x1 pointwise", 4, 3, 8, 4, 4, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 0, 0,
     NULL},
    {"SAME_UPPER stride 2", 4, 1, 2, 7, 6, 3, 3, 3, 1, 2, 2, 1, 1, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 0,
     0, "SAME_UPPER"},
    {"1-D conv w4", 3, 2, 4, 1, 11, 3, 1, 3, 1, 1, 2, 1, 1, 0, 2, 0, 1, 4, 1, 1, 1, 0, 0, 0, 0,
     NULL},
    {"int16 activations", 4, 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 1, 1, 0, 1, 0, 0, 0,
     NULL},
};
/* clang-format on */

static void same_pads(int in, int k, int s, int d, int *pb, int *pe) {
    int out = (in + s - 1) / s, ek = (k - 1) * d + 1;
    int total = (out - 1) * s + ek - in;
    if (total < 0) total = 0;
    *pb = total / 2;
    *pe = total - *pb;
}

static void test_qconv_wiring(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(conv_cases); ci++) {
        const conv_case *c = &conv_cases[ci];
        qf_err e;
        int pt = c->pt, pb = c->pb, pl = c->pl, pr = c->pr;
        if (c->auto_pad) {
            same_pads(c->h, c->kh, c->sh, c->dh, &pt, &pb);
            same_pads(c->w, c->kw, c->sw, c->dw, &pl, &pr);
        }
        const int cpg = c->c / c->group, K = cpg * c->kh * c->kw;
        const int wmax = (1 << (c->w_bits - 1)) - 1;
        const int oh = qf_ref_conv_out_size(c->h, c->kh, c->sh, c->dh, pt, pb);
        const int ow = qf_ref_conv_out_size(c->w, c->kw, c->sw, c->dw, pl, pr);
        CHECK_MSG(oh > 0 && ow > 0, "%s", c->name);
        const size_t n_in = (size_t)c->n * c->c * c->h * c->w;
        const size_t n_out = (size_t)c->n * c->oc * oh * ow;
        static int16_t x16[4096], y16[4096], want16[4096];
        static int8_t x8[4096], y8[4096], want8[4096], wv[4096];
        static uint8_t wpacked[4096];
        static int32_t bias[64];
        static float wscale[64];
        CHECK(n_in <= 4096 && n_out <= 4096 && (size_t)c->oc * K <= 4096);
        if (c->i16)
            fill_i16(x16, n_in, -3000, 3000);
        else
            fill_i8(x8, n_in, -128, 127);
        fill_i8(wv, (size_t)c->oc * K, -wmax, wmax);
        for (int o = 0; o < c->oc; o++) {
            bias[o] = rnd(-2000, 2000);
            wscale[o] = 0.004f * (float)(1 + o % 4) * 127.0f / (float)wmax;
        }
        CHECK_OK(qf_ref_pack_weights(wv, c->oc, K, c->w_bits, wpacked, NULL));
        const size_t row = qf_ref_packed_row_bytes(K, c->w_bits);
        const float in_s = c->i16 ? 0.001f : 0.05f;
        const int32_t in_z = c->i16 ? 100 : -3;
        const float out_s =
            in_s * 0.004f * 127.0f * (c->i16 ? 1700.0f / 1500.0f : 74.0f / 40.0f) * sqrtf((float)K);
        const int32_t out_z = c->i16 ? -50 : 5;
        const int bits = c->i16 ? 16 : 8;
        const qf_dtype adt = c->i16 ? QF_DT_I16 : QF_DT_I8;

        qf_graph *g = qf_graph_create();
        int x = input(g, "x", adt, in_s, in_z, bits);
        int64_t wshape[4] = {c->oc, cpg, c->kh, c->kw};
        if (c->rank == 3) wshape[2] = c->kw;
        int64_t pdims[2] = {c->oc, (int64_t)row};
        int w = c->w_bits == 8 ? cnst(g, "w", QF_DT_I8, c->rank, wshape, wv)
                               : cnst(g, "w", QF_DT_U8, 2, pdims, wpacked);
        int32_t zeros[64] = {0};
        qf_value_set_qparams(g, w, c->w_bits, c->per_channel ? 0 : -1, c->per_channel ? c->oc : 1,
                             wscale, zeros);
        int64_t bdims[1] = {c->oc};
        int b = c->bias ? cnst(g, "b", QF_DT_I32, 1, bdims, bias) : -1;
        int y = act(g, "y", adt, out_s, out_z, bits);
        qf_graph_add_output(g, y);
        int64_t strides[2] = {c->sh, c->sw}, dils[2] = {c->dh, c->dw};
        int64_t pads[4] = {pt, pl, pb, pr};
        int64_t strides1[1] = {c->sw}, dils1[1] = {c->dw}, pads1[2] = {pl, pr};
        qf_attr at[16];
        int na = 0;
        if (c->rank == 4) {
            at[na++] = A_INTS("strides", strides, 2);
            at[na++] = A_INTS("dilations", dils, 2);
            if (c->auto_pad)
                at[na++] = A_STR("auto_pad", c->auto_pad);
            else
                at[na++] = A_INTS("pads", pads, 4);
        } else {
            at[na++] = A_INTS("strides", strides1, 1);
            at[na++] = A_INTS("dilations", dils1, 1);
            at[na++] = A_INTS("pads", pads1, 2);
        }
        at[na++] = A_INT("group", c->group);
        at[na++] = A_INT("w_bits", c->w_bits);
        if (c->w_bits != 8) at[na++] = A_INTS("w_shape", wshape, c->rank);
        if (c->fixed) at[na++] = A_STR("requant", "fixed");
        if (c->has_act) {
            at[na++] = A_INT("act_min", c->act_min);
            at[na++] = A_INT("act_max", c->act_max);
        }
        int ins[3] = {x, w, b};
        qnode(g, "conv", "QConv", ins, c->bias ? 3 : 2, y, at, na);

        int64_t xdims[4] = {c->n, c->c, c->h, c->w};
        if (c->rank == 3) xdims[2] = c->w;
        qf_tensor xt = tensor(adt, c->rank, xdims, c->i16 ? (void *)x16 : (void *)x8), yt;
        qf_status st = run_graph(g, &xt, 1, &yt, c->i16 ? (void *)y16 : (void *)y8, sizeof y16, &e);
        CHECK_MSG(st == QF_OK, "%s: %s", c->name, e.msg);
        CHECK_MSG(yt.dtype == adt && yt.rank == c->rank && yt.dims[0] == c->n &&
                      yt.dims[1] == c->oc && yt.dims[c->rank - 1] == ow &&
                      (c->rank == 3 || yt.dims[2] == oh),
                  "%s: output shape", c->name);

        /* the same kernel called directly */
        qf_ref_rescale mult[64];
        int n_mult = c->per_channel ? c->oc : 1;
        CHECK_OK(qf_ref_rescale_channels(in_s, wscale, n_mult, out_s, mult, NULL));
        qf_ref_conv_params p = {
            .batch = c->n,
            .in_c = c->c,
            .in_h = c->h,
            .in_w = c->w,
            .out_c = c->oc,
            .out_h = oh,
            .out_w = ow,
            .k_h = c->kh,
            .k_w = c->kw,
            .stride_h = c->sh,
            .stride_w = c->sw,
            .dil_h = c->dh,
            .dil_w = c->dw,
            .pad_top = pt,
            .pad_left = pl,
            .pad_bottom = pb,
            .pad_right = pr,
            .groups = c->group,
            .in_zp = in_z,
            .w_bits = c->w_bits,
            .rq = {.mode = c->fixed ? QF_RQ_FIXED : QF_RQ_FP32,
                   .mult = mult,
                   .n_mult = n_mult,
                   .out_zp = out_z,
                   .act_min = c->has_act ? c->act_min : (c->i16 ? -32768 : -128),
                   .act_max = c->has_act ? c->act_max : (c->i16 ? 32767 : 127)}};
        int n_distinct = 0;
        if (c->i16) {
            CHECK_OK(qf_ref_conv2d_s16(&p, x16, wpacked, c->bias ? bias : NULL, want16, NULL));
            for (size_t i = 0; i < n_out; i++) {
                CHECK_MSG(y16[i] == want16[i], "%s: [%zu] %d vs %d", c->name, i, y16[i], want16[i]);
                if (want16[i] != want16[0]) n_distinct++;
            }
        } else {
            CHECK_OK(qf_ref_conv2d_s8(&p, x8, wpacked, c->bias ? bias : NULL, want8, NULL));
            for (size_t i = 0; i < n_out; i++) {
                CHECK_MSG(y8[i] == want8[i], "%s: [%zu] %d vs %d", c->name, i, y8[i], want8[i]);
                if (want8[i] != want8[0]) n_distinct++;
            }
        }
        /* a constant output would make the comparison meaningless */
        CHECK_MSG(n_distinct > 0, "%s: degenerate output", c->name);
    }
}

/* A 1x1x3x3 input, one 2x2 filter, scales chosen so every multiplier is 1:
 * y = clamp(bias + sum (x - zx) * w + zy), computed by hand. */
static void test_qconv_hand(void) {
    static const int8_t xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int8_t wv[4] = {1, -1, 2, 0};
    static const int32_t bv[1] = {10};
    /* x - 1 = 0..8; windows (0,1,3,4) (1,2,4,5) (3,4,6,7) (4,5,7,8):
     * sum = a - b + 2c: 0-1+6=5, 1-2+8=7, 3-4+12=11, 4-5+14=13; + 10 bias, + zy 2 */
    static const int8_t want[4] = {17, 19, 23, 25};
    qf_graph *g = qf_graph_create();
    int x = input(g, "x", QF_DT_I8, 0.5f, 1, 8);
    int64_t wd[4] = {1, 1, 2, 2}, bd[1] = {1};
    int w = cnst(g, "w", QF_DT_I8, 4, wd, wv);
    float ws = 2.0f;
    int32_t wz = 0;
    qf_value_set_qparams(g, w, 8, -1, 1, &ws, &wz);
    int b = cnst(g, "b", QF_DT_I32, 1, bd, bv);
    int y = act(g, "y", QF_DT_I8, 1.0f, 2, 8);
    qf_graph_add_output(g, y);
    int ins[3] = {x, w, b};
    qnode(g, "conv", "QConv", ins, 3, y, NULL, 0);
    int64_t xd[4] = {1, 1, 3, 3};
    qf_tensor xt = tensor(QF_DT_I8, 4, xd, (void *)xv), yt;
    int8_t out[4];
    qf_err e;
    CHECK_MSG(run_graph(g, &xt, 1, &yt, out, sizeof out, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(yt.dims[2], 2);
    CHECK_EQ_INT(yt.dims[3], 2);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(out[i], want[i]);
}

/* ---- QGemm wiring ------------------------------------------------------------ */

typedef struct gemm_case {
    const char *name;
    int rank;
    int64_t xd[3]; /* last = K */
    int n, w_bits, per_channel, bias, fixed, i16;
} gemm_case;

/* clang-format off */
static const gemm_case gemm_cases[] = {
    {"w8 per-channel bias", 2, {3, 20, 0}, 7, 8, 1, 1, 0, 0},
    {"w4 per-tensor fixed", 2, {2, 33, 0}, 5, 4, 0, 0, 1, 0},
    {"w2 rank-3 folded", 3, {2, 3, 17}, 6, 2, 1, 1, 0, 0},
    {"int16 w8", 2, {4, 12, 0}, 3, 8, 1, 1, 1, 1},
};
/* clang-format on */

static void test_qgemm_wiring(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(gemm_cases); ci++) {
        const gemm_case *c = &gemm_cases[ci];
        const int K = (int)c->xd[c->rank - 1], M = (int)prod(c->xd, c->rank - 1), N = c->n;
        const int wmax = (1 << (c->w_bits - 1)) - 1;
        static int8_t x8[1024], y8[1024], want8[1024], wv[1024];
        static int16_t x16[1024], y16[1024], want16[1024];
        static uint8_t wp[1024];
        int32_t bias[16];
        float ws[16];
        int32_t zeros[16] = {0};
        if (c->i16)
            fill_i16(x16, (size_t)M * K, -2000, 2000);
        else
            fill_i8(x8, (size_t)M * K, -128, 127);
        fill_i8(wv, (size_t)N * K, -wmax, wmax);
        for (int o = 0; o < N; o++) {
            bias[o] = rnd(-500, 500);
            ws[o] = 0.01f * (float)(2 + o % 3) / (float)wmax;
        }
        CHECK_OK(qf_ref_pack_weights(wv, N, K, c->w_bits, wp, NULL));
        const size_t row = qf_ref_packed_row_bytes(K, c->w_bits);
        /* output scale for a spread of about +-40 (int8) or +-2000 (int16) codes:
         * std(acc) ~ sqrt(K) * std(x codes) * std(w codes) */
        const float in_s = c->i16 ? 0.002f : 0.03f;
        const float out_s =
            in_s * 0.0116f * (c->i16 ? 1155.0f / 2000.0f : 74.0f / 40.0f) * sqrtf((float)K);
        const int32_t in_z = c->i16 ? -7 : 4, out_z = c->i16 ? 30 : -6;
        const int bits = c->i16 ? 16 : 8;
        const qf_dtype adt = c->i16 ? QF_DT_I16 : QF_DT_I8;

        qf_graph *g = qf_graph_create();
        int x = input(g, "x", adt, in_s, in_z, bits);
        int64_t wshape[2] = {N, K}, pd[2] = {N, (int64_t)row}, bd[1] = {N};
        int w = c->w_bits == 8 ? cnst(g, "w", QF_DT_I8, 2, wshape, wv)
                               : cnst(g, "w", QF_DT_U8, 2, pd, wp);
        qf_value_set_qparams(g, w, c->w_bits, c->per_channel ? 0 : -1, c->per_channel ? N : 1, ws,
                             zeros);
        int b = c->bias ? cnst(g, "b", QF_DT_I32, 1, bd, bias) : -1;
        int y = act(g, "y", adt, out_s, out_z, bits);
        qf_graph_add_output(g, y);
        qf_attr at[4];
        int na = 0;
        at[na++] = A_INT("w_bits", c->w_bits);
        if (c->w_bits != 8) at[na++] = A_INTS("w_shape", wshape, 2);
        if (c->fixed) at[na++] = A_STR("requant", "fixed");
        int ins[3] = {x, w, b};
        qnode(g, "fc", "QGemm", ins, c->bias ? 3 : 2, y, at, na);
        qf_tensor xt = tensor(adt, c->rank, c->xd, c->i16 ? (void *)x16 : (void *)x8), yt;
        qf_err e;
        qf_status st = run_graph(g, &xt, 1, &yt, c->i16 ? (void *)y16 : (void *)y8, sizeof y16, &e);
        CHECK_MSG(st == QF_OK, "%s: %s", c->name, e.msg);
        CHECK_MSG(yt.rank == 2 && yt.dims[0] == M && yt.dims[1] == N && yt.dtype == adt, "%s",
                  c->name);
        qf_ref_rescale mult[16];
        const int n_mult = c->per_channel ? N : 1;
        CHECK_OK(qf_ref_rescale_channels(in_s, ws, n_mult, out_s, mult, NULL));
        qf_ref_gemm_params p = {.m = M,
                                .n = N,
                                .k = K,
                                .in_zp = in_z,
                                .w_bits = c->w_bits,
                                .rq = {.mode = c->fixed ? QF_RQ_FIXED : QF_RQ_FP32,
                                       .mult = mult,
                                       .n_mult = n_mult,
                                       .out_zp = out_z,
                                       .act_min = c->i16 ? -32768 : -128,
                                       .act_max = c->i16 ? 32767 : 127}};
        int distinct = 0;
        if (c->i16) {
            CHECK_OK(qf_ref_gemm_s16(&p, x16, wp, c->bias ? bias : NULL, want16, NULL));
            for (int i = 0; i < M * N; i++) {
                CHECK_MSG(y16[i] == want16[i], "%s [%d]", c->name, i);
                distinct += want16[i] != want16[0];
            }
        } else {
            CHECK_OK(qf_ref_gemm_s8(&p, x8, wp, c->bias ? bias : NULL, want8, NULL));
            for (int i = 0; i < M * N; i++) {
                CHECK_MSG(y8[i] == want8[i], "%s [%d]", c->name, i);
                distinct += want8[i] != want8[0];
            }
        }
        CHECK_MSG(distinct > 0, "%s: degenerate output", c->name);
    }
}

/* ---- QAdd / QMul wiring ------------------------------------------------------- */

typedef struct bin_case {
    const char *name;
    int mul;
    int ra;
    int64_t ad[4];
    int rb;
    int64_t bd[4];
    float sa, sb, so;
    int za, zb, zo;
    int fixed, has_act, act_min, act_max;
} bin_case;

/* clang-format off */
static const bin_case bin_cases[] = {
    {"add same shape", 0, 3, {2, 3, 4}, 3, {2, 3, 4}, 0.05f, 0.02f, 0.06f, 3, -10, 0, 0, 0, 0, 0},
    {"add broadcast fixed relu", 0, 4, {2, 3, 4, 5}, 2, {4, 1}, 0.1f, 0.03f, 0.1f, 0, 7, -20, 1, 1,
     -20, 127},
    {"add both broadcast", 0, 3, {3, 1, 5}, 2, {4, 1}, 0.02f, 0.02f, 0.05f, -1, 1, 2, 0, 0, 0, 0},
    {"mul broadcast", 1, 4, {1, 3, 2, 2}, 4, {1, 3, 1, 1}, 0.05f, 0.04f, 0.1f, 2, -3, 1, 0, 0, 0,
     0},
    {"mul fixed clamp", 1, 2, {6, 7}, 1, {7}, 0.1f, 0.1f, 0.4f, 0, 0, -5, 1, 1, -60, 60},
    {"mul scalar", 1, 2, {3, 4}, 0, {0}, 0.05f, 0.5f, 0.2f, -4, 3, 0, 0, 0, 0, 0},
};
/* clang-format on */

static void test_qbinary_wiring(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(bin_cases); ci++) {
        const bin_case *c = &bin_cases[ci];
        int8_t a[256], b[256], y[256], want[256];
        const int64_t na = prod(c->ad, c->ra), nb = prod(c->bd, c->rb);
        fill_i8(a, (size_t)na, -128, 127);
        fill_i8(b, (size_t)nb, -128, 127);
        qf_graph *g = qf_graph_create();
        int va = input(g, "a", QF_DT_I8, c->sa, c->za, 8);
        int vb = input(g, "b", QF_DT_I8, c->sb, c->zb, 8);
        int vy = act(g, "y", QF_DT_I8, c->so, c->zo, 8);
        qf_graph_add_output(g, vy);
        qf_attr at[3];
        int n_at = 0;
        if (c->fixed) at[n_at++] = A_STR("requant", "fixed");
        if (c->has_act) {
            at[n_at++] = A_INT("act_min", c->act_min);
            at[n_at++] = A_INT("act_max", c->act_max);
        }
        int ins[2] = {va, vb};
        qnode(g, "bin", c->mul ? "QMul" : "QAdd", ins, 2, vy, at, n_at);
        qf_tensor in[2] = {tensor(QF_DT_I8, c->ra, c->ad, a), tensor(QF_DT_I8, c->rb, c->bd, b)};
        qf_tensor yt;
        qf_err e;
        CHECK_MSG(run_graph(g, in, 2, &yt, y, sizeof y, &e) == QF_OK, "%s: %s", c->name, e.msg);
        /* broadcast shape, right-aligned */
        qf_ref_eltwise_params p;
        memset(&p, 0, sizeof p);
        p.rank = c->ra > c->rb ? c->ra : c->rb;
        for (int i = 0; i < p.rank; i++) {
            int ia = i - (p.rank - c->ra), ib = i - (p.rank - c->rb);
            p.a_dims[i] = ia >= 0 ? c->ad[ia] : 1;
            p.b_dims[i] = ib >= 0 ? c->bd[ib] : 1;
            p.out_dims[i] = p.a_dims[i] > p.b_dims[i] ? p.a_dims[i] : p.b_dims[i];
        }
        CHECK_EQ_INT(yt.rank, p.rank);
        for (int i = 0; i < p.rank; i++)
            CHECK_EQ_INT(yt.dims[i], p.out_dims[i]);
        p.a_scale = c->sa;
        p.b_scale = c->sb;
        p.out_scale = c->so;
        p.a_zp = c->za;
        p.b_zp = c->zb;
        p.out_zp = c->zo;
        p.act_min = c->has_act ? c->act_min : -128;
        p.act_max = c->has_act ? c->act_max : 127;
        p.mode = c->fixed ? QF_RQ_FIXED : QF_RQ_FP32;
        if (c->mul)
            CHECK_OK(qf_ref_mul_s8(&p, a, b, want, NULL));
        else
            CHECK_OK(qf_ref_add_s8(&p, a, b, want, NULL));
        int64_t n = prod(p.out_dims, p.rank);
        int distinct = 0;
        for (int64_t i = 0; i < n; i++) {
            CHECK_MSG(y[i] == want[i], "%s [%lld] %d vs %d", c->name, (long long)i, y[i], want[i]);
            distinct += want[i] != want[0];
        }
        CHECK_MSG(distinct > 0, "%s: degenerate output", c->name);
    }
}

/* ---- pools ------------------------------------------------------------------- */

enum { PK_MAX, PK_AVG, PK_GLOBAL };

typedef struct pool_case {
    const char *name;
    int kind, rank;
    int64_t xd[5];
    int kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
    int ceil, cip, fixed;
    float so;
    int zo;
} pool_case;

/* clang-format off */
/* name, kind, rank, x dims, kh kw sh sw, pt pl pb pr, dh dw, ceil cip fixed, out scale, out zp */
static const pool_case pool_cases[] = {
    {"max 2x2 s2", PK_MAX, 4, {2, 3, 6, 6}, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0},
    {"max 3x3 s2 pad1 ceil", PK_MAX, 4, {1, 2, 7, 8}, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    {"max 1-D dil2", PK_MAX, 3, {2, 3, 9}, 1, 3, 1, 1, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0},
    {"avg 3x3 pad1", PK_AVG, 4, {1, 3, 5, 6}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0.04f, -3},
    {"avg cip ceil fixed", PK_AVG, 4, {2, 2, 7, 7}, 3, 2, 2, 2, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0.03f,
     2},
    {"avg 1-D", PK_AVG, 3, {1, 4, 10}, 1, 4, 1, 3, 0, 1, 0, 2, 1, 1, 0, 0, 0, 0.05f, 0},
    {"global 2-D", PK_GLOBAL, 4, {2, 5, 4, 3}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.01f, 1},
    {"global 3-D fixed", PK_GLOBAL, 5, {1, 3, 2, 3, 4}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
     0.02f, -2},
    {"global 1-D", PK_GLOBAL, 3, {2, 2, 9}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.015f, 0},
};
/* clang-format on */

/* ONNX/PyTorch output size, with ceil mode's "last window must start inside
 * the input or the begin padding" rule. */
static int pool_out(int in, int k, int s, int d, int pa, int pb, int ceil_mode) {
    int span = in + pa + pb - ((k - 1) * d + 1);
    int out = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
    if (ceil_mode && (out - 1) * s >= in + pa) out--;
    return out;
}

static void test_qpool_wiring(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(pool_cases); ci++) {
        const pool_case *c = &pool_cases[ci];
        static int8_t x[2048], y[2048], want[2048];
        const int64_t nx = prod(c->xd, c->rank);
        fill_i8(x, (size_t)nx, -128, 127);
        const float in_s = 0.05f;
        const int32_t in_z = 6;
        const float out_s = c->kind == PK_MAX ? in_s : c->so;
        const int32_t out_z = c->kind == PK_MAX ? in_z : c->zo;
        qf_graph *g = qf_graph_create();
        int vx = input(g, "x", QF_DT_I8, in_s, in_z, 8);
        int vy = act(g, "y", QF_DT_I8, out_s, out_z, 8);
        qf_graph_add_output(g, vy);
        const bool one_d = c->rank == 3;
        int64_t ks[2] = {c->kh, c->kw}, st[2] = {c->sh, c->sw}, dl[2] = {c->dh, c->dw};
        int64_t pads[4] = {c->pt, c->pl, c->pb, c->pr};
        int64_t ks1[1] = {c->kw}, st1[1] = {c->sw}, dl1[1] = {c->dw}, pads1[2] = {c->pl, c->pr};
        qf_attr at[8];
        int na = 0;
        if (c->kind != PK_GLOBAL) {
            at[na++] = A_INTS("kernel_shape", one_d ? ks1 : ks, one_d ? 1 : 2);
            at[na++] = A_INTS("strides", one_d ? st1 : st, one_d ? 1 : 2);
            at[na++] = A_INTS("dilations", one_d ? dl1 : dl, one_d ? 1 : 2);
            at[na++] = A_INTS("pads", one_d ? pads1 : pads, one_d ? 2 : 4);
            at[na++] = A_INT("ceil_mode", c->ceil);
        }
        if (c->kind == PK_AVG) at[na++] = A_INT("count_include_pad", c->cip);
        if (c->fixed) at[na++] = A_STR("requant", "fixed");
        static const char *ops[3] = {"QMaxPool", "QAveragePool", "QGlobalAveragePool"};
        qnode(g, "pool", ops[c->kind], &vx, 1, vy, at, na);
        qf_tensor xt = tensor(QF_DT_I8, c->rank, c->xd, x), yt;
        qf_err e;
        CHECK_MSG(run_graph(g, &xt, 1, &yt, y, sizeof y, &e) == QF_OK, "%s: %s", c->name, e.msg);

        qf_ref_pool_params p;
        memset(&p, 0, sizeof p);
        p.batch = (int32_t)c->xd[0];
        p.channels = (int32_t)c->xd[1];
        p.in_scale = in_s;
        p.out_scale = out_s;
        p.in_zp = in_z;
        p.out_zp = out_z;
        p.act_min = -128;
        p.act_max = 127;
        p.mode = c->fixed ? QF_RQ_FIXED : QF_RQ_FP32;
        CHECK_EQ_INT(yt.rank, c->rank);
        CHECK_EQ_INT(yt.dims[0], c->xd[0]);
        CHECK_EQ_INT(yt.dims[1], c->xd[1]);
        if (c->kind == PK_GLOBAL) {
            p.in_h = 1;
            p.in_w = (int32_t)prod(c->xd + 2, c->rank - 2);
            p.out_h = p.out_w = 1;
            for (int i = 2; i < c->rank; i++)
                CHECK_EQ_INT(yt.dims[i], 1);
            CHECK_OK(qf_ref_global_avgpool_s8(&p, x, want, NULL));
        } else {
            p.in_h = one_d ? 1 : (int32_t)c->xd[2];
            p.in_w = (int32_t)c->xd[c->rank - 1];
            p.k_h = one_d ? 1 : c->kh;
            p.k_w = c->kw;
            p.stride_h = one_d ? 1 : c->sh;
            p.stride_w = c->sw;
            p.dil_h = one_d ? 1 : c->dh;
            p.dil_w = c->dw;
            p.pad_top = one_d ? 0 : c->pt;
            p.pad_bottom = one_d ? 0 : c->pb;
            p.pad_left = c->pl;
            p.pad_right = c->pr;
            p.count_include_pad = c->cip;
            p.out_h = one_d ? 1
                            : pool_out(p.in_h, p.k_h, p.stride_h, p.dil_h, p.pad_top, p.pad_bottom,
                                       c->ceil);
            p.out_w =
                pool_out(p.in_w, p.k_w, p.stride_w, p.dil_w, p.pad_left, p.pad_right, c->ceil);
            if (!one_d) CHECK_EQ_INT(yt.dims[2], p.out_h);
            CHECK_EQ_INT(yt.dims[c->rank - 1], p.out_w);
            if (c->kind == PK_MAX)
                CHECK_OK(qf_ref_maxpool_s8(&p, x, want, NULL));
            else
                CHECK_OK(qf_ref_avgpool_s8(&p, x, want, NULL));
        }
        int64_t ny = qf_tensor_numel(&yt);
        int distinct = 0;
        for (int64_t i = 0; i < ny; i++) {
            CHECK_MSG(y[i] == want[i], "%s [%lld] %d vs %d", c->name, (long long)i, y[i], want[i]);
            distinct += want[i] != want[0];
        }
        CHECK_MSG(distinct > 0, "%s: degenerate output", c->name);
    }
}

/* ---- QConcat ------------------------------------------------------------------ */

static void test_qconcat_wiring(void) {
    /* three inputs along axis 1 (or -1), one of them with the output's
     * parameters (copied), the others requantized */
    static const struct {
        const char *name;
        int axis, fixed;
    } cases[] = {{"axis 1", 1, 0}, {"axis -1 fixed", -1, 1}, {"axis 0", 0, 0}};
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        const int ax = cases[ci].axis < 0 ? cases[ci].axis + 3 : cases[ci].axis;
        int64_t d[3][3] = {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}};
        const int64_t ext[3] = {1, 4, 2};
        for (int i = 0; i < 3; i++)
            d[i][ax] = ext[i];
        const float sc[3] = {0.05f, 0.1f, 0.02f};
        const int32_t zp[3] = {0, -5, 12};
        int8_t xs[3][64], y[256], want[256];
        qf_graph *g = qf_graph_create();
        int ins[3];
        qf_tensor in[3];
        for (int i = 0; i < 3; i++) {
            char nm[8];
            snprintf(nm, sizeof nm, "x%d", i);
            fill_i8(xs[i], (size_t)prod(d[i], 3), -128, 127);
            ins[i] = input(g, nm, QF_DT_I8, sc[i], zp[i], 8);
            in[i] = tensor(QF_DT_I8, 3, d[i], xs[i]);
        }
        int vy = act(g, "y", QF_DT_I8, 0.05f, 0, 8); /* = input 0's parameters */
        qf_graph_add_output(g, vy);
        qf_attr at[2] = {A_INT("axis", cases[ci].axis), A_STR("requant", "fixed")};
        qnode(g, "cat", "QConcat", ins, 3, vy, at, cases[ci].fixed ? 2 : 1);
        qf_tensor yt;
        qf_err e;
        CHECK_MSG(run_graph(g, in, 3, &yt, y, sizeof y, &e) == QF_OK, "%s: %s", cases[ci].name,
                  e.msg);
        CHECK_EQ_INT(yt.rank, 3);
        for (int k = 0; k < 3; k++)
            CHECK_EQ_INT(yt.dims[k], k == ax ? 7 : d[0][k]);
        qf_ref_concat_input ci_in[3];
        for (int i = 0; i < 3; i++)
            ci_in[i] = (qf_ref_concat_input){xs[i], ext[i], sc[i], zp[i]};
        qf_ref_concat_params p = {.n_inputs = 3,
                                  .inputs = ci_in,
                                  .outer = prod(d[0], ax),
                                  .inner = prod(d[0] + ax + 1, 2 - ax),
                                  .out_scale = 0.05f,
                                  .out_zp = 0,
                                  .mode = cases[ci].fixed ? QF_RQ_FIXED : QF_RQ_FP32};
        CHECK_OK(qf_ref_concat_s8(&p, want, NULL));
        int64_t n = qf_tensor_numel(&yt);
        for (int64_t i = 0; i < n; i++)
            CHECK_MSG(y[i] == want[i], "%s [%lld]", cases[ci].name, (long long)i);
        /* input 0 has the output's parameters: its block is copied as is */
        if (ax == 1) CHECK(y[0] == xs[0][0] && y[4 * 7] == xs[0][4]);
    }
    /* every int8 value through the requantizing path, both modes: the op's
     * per-value tables must give exactly the reference's bytes */
    for (int fixed = 0; fixed < 2; fixed++) {
        int8_t xa[256], xb[256], y[512], want[512];
        for (int i = 0; i < 256; i++) {
            xa[i] = (int8_t)(i - 128);
            xb[i] = (int8_t)(127 - i);
        }
        qf_graph *g = qf_graph_create();
        int ins[2] = {input(g, "a", QF_DT_I8, 0.173f, -7, 8),
                      input(g, "b", QF_DT_I8, 0.031f, 100, 8)};
        int vy = act(g, "y", QF_DT_I8, 0.09f, 3, 8);
        qf_graph_add_output(g, vy);
        qf_attr at[2] = {A_INT("axis", 1), A_STR("requant", "fixed")};
        qnode(g, "cat", "QConcat", ins, 2, vy, at, fixed ? 2 : 1);
        int64_t dims[2] = {1, 256};
        qf_tensor in[2] = {tensor(QF_DT_I8, 2, dims, xa), tensor(QF_DT_I8, 2, dims, xb)};
        qf_tensor yt;
        qf_err e;
        CHECK_MSG(run_graph(g, in, 2, &yt, y, sizeof y, &e) == QF_OK, "all bytes: %s", e.msg);
        qf_ref_concat_input ci_in[2] = {{xa, 256, 0.173f, -7}, {xb, 256, 0.031f, 100}};
        qf_ref_concat_params p = {.n_inputs = 2,
                                  .inputs = ci_in,
                                  .outer = 1,
                                  .inner = 1,
                                  .out_scale = 0.09f,
                                  .out_zp = 3,
                                  .mode = fixed ? QF_RQ_FIXED : QF_RQ_FP32};
        CHECK_OK(qf_ref_concat_s8(&p, want, NULL));
        for (int i = 0; i < 512; i++)
            CHECK_MSG(y[i] == want[i], "all bytes, mode %d: [%d] %d vs %d", fixed, i, y[i],
                      want[i]);
    }
}

/* ---- QResize ------------------------------------------------------------------- */

typedef struct resize_case {
    const char *name;
    int rank;
    int64_t xd[4];
    const char *mode, *coord, *nearest;
    int use_sizes;
    float scales[4];
    int64_t sizes[4];
    qf_ref_resize_mode km;
    qf_ref_resize_coord kc;
    qf_ref_resize_nearest kn;
} resize_case;

/* clang-format off */
static const resize_case resize_cases[] = {
    {"nearest x2 default", 4, {1, 2, 3, 4}, NULL, NULL, NULL, 0, {1, 1, 2, 2}, {0},
     QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL, QF_NEAREST_ROUND_PREFER_FLOOR},
    {"nearest asymmetric floor x1.5", 4, {2, 1, 4, 4}, "nearest", "asymmetric", "floor", 0,
     {1, 1, 1.5f, 1.5f}, {0}, QF_RESIZE_NEAREST, QF_COORD_ASYMMETRIC, QF_NEAREST_FLOOR},
    {"linear half_pixel sizes", 4, {1, 3, 4, 5}, "linear", "half_pixel", NULL, 1, {0},
     {1, 3, 7, 3}, QF_RESIZE_LINEAR, QF_COORD_HALF_PIXEL, QF_NEAREST_ROUND_PREFER_FLOOR},
    {"linear align_corners", 4, {1, 1, 3, 3}, "linear", "align_corners", NULL, 0, {1, 1, 2, 2},
     {0}, QF_RESIZE_LINEAR, QF_COORD_ALIGN_CORNERS, QF_NEAREST_ROUND_PREFER_FLOOR},
    {"linear pytorch 1-D", 3, {2, 2, 5}, "linear", "pytorch_half_pixel", NULL, 0, {1, 1, 0.6f},
     {0}, QF_RESIZE_LINEAR, QF_COORD_PYTORCH_HALF_PIXEL, QF_NEAREST_ROUND_PREFER_FLOOR},
    /* floor(in * scale) != in * scale: the kernel must get the scale, not out / in */
    {"nearest scale 1.7", 4, {1, 2, 5, 5}, "nearest", "half_pixel", "round_prefer_ceil", 0,
     {1, 1, 1.7f, 1.3f}, {0}, QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL,
     QF_NEAREST_ROUND_PREFER_CEIL},
    {"linear asymmetric scale 1.7", 4, {1, 1, 4, 5}, "linear", "asymmetric", NULL, 0,
     {1, 1, 1.7f, 1.7f}, {0}, QF_RESIZE_LINEAR, QF_COORD_ASYMMETRIC,
     QF_NEAREST_ROUND_PREFER_FLOOR},
    {"nearest ceil down", 4, {1, 2, 6, 6}, "nearest", "half_pixel", "ceil", 1, {0},
     {1, 2, 4, 3}, QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL, QF_NEAREST_CEIL},
};
/* clang-format on */

static void test_qresize_wiring(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(resize_cases); ci++) {
        const resize_case *c = &resize_cases[ci];
        static int8_t x[1024], y[1024], want[1024];
        fill_i8(x, (size_t)prod(c->xd, c->rank), -128, 127);
        qf_graph *g = qf_graph_create();
        int vx = input(g, "x", QF_DT_I8, 0.1f, 3, 8);
        int vy = act(g, "y", QF_DT_I8, 0.1f, 3, 8);
        qf_graph_add_output(g, vy);
        qf_attr at[4];
        int na = 0;
        if (c->mode) at[na++] = A_STR("mode", c->mode);
        if (c->coord) at[na++] = A_STR("coordinate_transformation_mode", c->coord);
        if (c->nearest) at[na++] = A_STR("nearest_mode", c->nearest);
        if (c->use_sizes)
            at[na++] = A_INTS("sizes", (int64_t *)c->sizes, c->rank);
        else
            at[na++] = A_FLOATS("scales", (float *)c->scales, c->rank);
        qnode(g, "rs", "QResize", &vx, 1, vy, at, na);
        qf_tensor xt = tensor(QF_DT_I8, c->rank, c->xd, x), yt;
        qf_err e;
        CHECK_MSG(run_graph(g, &xt, 1, &yt, y, sizeof y, &e) == QF_OK, "%s: %s", c->name, e.msg);
        int64_t od[4];
        for (int i = 0; i < c->rank; i++) {
            od[i] = c->use_sizes ? c->sizes[i] : (int64_t)floorf((float)c->xd[i] * c->scales[i]);
            CHECK_EQ_INT(yt.dims[i], od[i]);
        }
        const bool r4 = c->rank == 4;
        qf_ref_resize_params p = {.batch = (int32_t)c->xd[0],
                                  .channels = (int32_t)c->xd[1],
                                  .in_h = r4 ? (int32_t)c->xd[2] : 1,
                                  .in_w = (int32_t)c->xd[c->rank - 1],
                                  .out_h = r4 ? (int32_t)od[2] : 1,
                                  .out_w = (int32_t)od[c->rank - 1],
                                  .scale_h = c->use_sizes ? -1.0 : (r4 ? c->scales[2] : 1.0),
                                  .scale_w = c->use_sizes ? -1.0 : c->scales[c->rank - 1],
                                  .mode = c->km,
                                  .coord = c->kc,
                                  .nearest = c->kn};
        CHECK_OK(qf_ref_resize_s8(&p, x, want, NULL));
        int64_t n = qf_tensor_numel(&yt);
        for (int64_t i = 0; i < n; i++)
            CHECK_MSG(y[i] == want[i], "%s [%lld]", c->name, (long long)i);
    }
}

/* ---- QPad ---------------------------------------------------------------------- */

typedef struct pad_case {
    const char *name;
    int rank;
    int64_t xd[4];
    int64_t pads[8];
    const char *mode;
    qf_ref_pad_mode km;
} pad_case;

/* clang-format off */
static const pad_case pad_cases[] = {
    {"constant 2-D", 2, {3, 4}, {1, 2, 0, 3}, NULL, QF_PAD_CONSTANT},
    {"edge NCHW", 4, {1, 2, 3, 3}, {0, 0, 1, 2, 0, 0, 2, 1}, "edge", QF_PAD_EDGE},
    {"reflect wide", 3, {2, 2, 4}, {0, 1, 5, 0, 0, 2}, "reflect", QF_PAD_REFLECT},
    {"constant negative crops", 2, {4, 5}, {-1, 2, 1, -2}, "constant", QF_PAD_CONSTANT},
};
/* clang-format on */

static void test_qpad_wiring(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(pad_cases); ci++) {
        const pad_case *c = &pad_cases[ci];
        static int8_t x[512], y[1024], want[1024];
        fill_i8(x, (size_t)prod(c->xd, c->rank), -128, 127);
        const int32_t zp = -7;
        qf_graph *g = qf_graph_create();
        int vx = input(g, "x", QF_DT_I8, 0.1f, zp, 8);
        int vy = act(g, "y", QF_DT_I8, 0.1f, zp, 8);
        qf_graph_add_output(g, vy);
        qf_attr at[2];
        int na = 0;
        at[na++] = A_INTS("pads", (int64_t *)c->pads, 2 * c->rank);
        if (c->mode) at[na++] = A_STR("mode", c->mode);
        qnode(g, "pad", "QPad", &vx, 1, vy, at, na);
        qf_tensor xt = tensor(QF_DT_I8, c->rank, c->xd, x), yt;
        qf_err e;
        CHECK_MSG(run_graph(g, &xt, 1, &yt, y, sizeof y, &e) == QF_OK, "%s: %s", c->name, e.msg);
        qf_ref_pad_params p;
        memset(&p, 0, sizeof p);
        p.rank = c->rank;
        p.mode = c->km;
        p.value = zp;
        for (int i = 0; i < c->rank; i++) {
            p.in_dims[i] = c->xd[i];
            p.pad_begin[i] = c->pads[i];
            p.pad_end[i] = c->pads[i + c->rank];
            CHECK_EQ_INT(yt.dims[i], c->xd[i] + c->pads[i] + c->pads[i + c->rank]);
        }
        CHECK_OK(qf_ref_pad_s8(&p, x, want, NULL));
        int64_t n = qf_tensor_numel(&yt);
        for (int64_t i = 0; i < n; i++)
            CHECK_MSG(y[i] == want[i], "%s [%lld]", c->name, (long long)i);
    }
    /* constant padding writes the zero point: first element of "constant 2-D" */
    {
        int64_t xd[2] = {2, 2}, pads[4] = {1, 0, 0, 0};
        int8_t x[4] = {1, 2, 3, 4}, y[16];
        qf_graph *g = qf_graph_create();
        int vx = input(g, "x", QF_DT_I8, 0.1f, -7, 8);
        int vy = act(g, "y", QF_DT_I8, 0.1f, -7, 8);
        qf_graph_add_output(g, vy);
        qf_attr at[1] = {A_INTS("pads", pads, 4)};
        qnode(g, "pad", "QPad", &vx, 1, vy, at, 1);
        qf_tensor xt = tensor(QF_DT_I8, 2, xd, x), yt;
        qf_err e;
        CHECK_MSG(run_graph(g, &xt, 1, &yt, y, sizeof y, &e) == QF_OK, "%s", e.msg);
        static const int8_t want[6] = {-7, -7, 1, 2, 3, 4};
        for (int i = 0; i < 6; i++)
            CHECK_EQ_INT(y[i], want[i]);
    }
}

/* ---- QLut ------------------------------------------------------------------------ */

static float f_tanh(float v) { return tanhf(v); }

static void test_qlut_wiring(void) {
    int8_t table[256];
    CHECK_OK(qf_ref_lut_build(f_tanh, 0.03f, -2, 1.0f / 128.0f, 0, table));
    int64_t tab64[256];
    for (int i = 0; i < 256; i++)
        tab64[i] = table[i];
    int8_t x[256], y[256], want[256];
    for (int i = 0; i < 256; i++)
        x[i] = (int8_t)(i - 128); /* every code once */
    qf_graph *g = qf_graph_create();
    int vx = input(g, "x", QF_DT_I8, 0.03f, -2, 8);
    int vy = act(g, "y", QF_DT_I8, 1.0f / 128.0f, 0, 8);
    qf_graph_add_output(g, vy);
    qf_attr at[1] = {A_INTS("table", tab64, 256)};
    qnode(g, "lut", "QLut", &vx, 1, vy, at, 1);
    int64_t xd[3] = {4, 8, 8};
    qf_tensor xt = tensor(QF_DT_I8, 3, xd, x), yt;
    qf_err e;
    CHECK_MSG(run_graph(g, &xt, 1, &yt, y, sizeof y, &e) == QF_OK, "%s", e.msg);
    CHECK(yt.rank == 3 && yt.dims[0] == 4 && yt.dims[1] == 8 && yt.dims[2] == 8);
    qf_ref_lut_apply(table, x, want, 256);
    for (int i = 0; i < 256; i++) {
        CHECK_EQ_INT(y[i], want[i]);
        /* and the semantics: tanh of the dequantized code, requantized */
        float ref = tanhf(0.03f * (float)(x[i] + 2)) * 128.0f;
        CHECK_NEAR(y[i], fminf(127.0f, ref), 0.51);
    }
}

/* Per-channel tables (axis 1): x [2, 3, 4, 5] reads table c for channel c,
 * in a session (the active ISA's kernel); a channel count that does not
 * match the input, and a table whose size is not a multiple of 256, are
 * errors naming the node. */
static void test_qlut_per_channel(void) {
    enum { N = 2, C = 3, HW = 20 };
    static int64_t tab64[C * 256];
    int8_t table[C * 256], x[N * C * HW], y[N * C * HW];
    for (int k = 0; k < C; k++)
        for (int q = 0; q < 256; q++) /* channel k: q - 128 mapped three different ways */
            table[k * 256 + q] = (int8_t)(k == 0   ? q - 128
                                          : k == 1 ? 127 - q
                                                   : (q * 7) % 256 - 128);
    for (int i = 0; i < C * 256; i++)
        tab64[i] = table[i];
    for (int i = 0; i < N * C * HW; i++)
        x[i] = (int8_t)((i * 37 + 11) % 256 - 128);
    for (int bad = 0; bad < 3; bad++) {
        qf_graph *g = qf_graph_create();
        int vx = input(g, "x", QF_DT_I8, 0.05f, 3, 8);
        int vy = act(g, "y", QF_DT_I8, 0.1f, -1, 8);
        qf_graph_add_output(g, vy);
        /* bad 1: axis 2 (4 entries there, 3 tables); bad 2: 700 entries */
        qf_attr at[2] = {A_INTS("table", tab64, bad == 2 ? 700 : C * 256),
                         A_INT("axis", bad == 1 ? 2 : 1)};
        qnode(g, "lut_c", "QLut", &vx, 1, vy, at, 2);
        int64_t xd[4] = {N, C, 4, 5};
        qf_tensor xt = tensor(QF_DT_I8, 4, xd, x), yt;
        qf_err e;
        qf_status st = run_graph(g, &xt, 1, &yt, y, sizeof y, &e);
        if (bad) {
            CHECK_MSG(st == (bad == 1 ? QF_ERR_SHAPE : QF_ERR_FORMAT), "bad %d: %d %s", bad,
                      (int)st, e.msg);
            CHECK_MSG(strstr(e.msg, "lut_c") != NULL, "%s", e.msg);
            continue;
        }
        CHECK_MSG(st == QF_OK, "%s", e.msg);
        for (int i = 0; i < N * C * HW; i++) {
            const int c = i / HW % C;
            CHECK_EQ_INT(y[i], table[c * 256 + x[i] + 128]);
        }
    }
}

/* ---- a chain in one session: arena reuse, no allocation in steady state ---- */

/* x -> QConv (1x1, 3 -> 4) -> QLut -> QMaxPool (2x2 s2), against the three
 * kernels called one after the other; a second run must not allocate. */
static void test_chain_session(void) {
    enum { N = 2, C = 3, O = 4, H = 6, W = 6 };
    static int8_t x[N * C * H * W], wv[O * C], t1[N * O * H * W], t2[N * O * H * W];
    static int8_t want[N * O * 9];
    int8_t table[256];
    int64_t tab64[256];
    for (int i = 0; i < 256; i++)
        table[i] = (int8_t)(127 - i); /* a decreasing map */
    for (int i = 0; i < 256; i++)
        tab64[i] = table[i];
    fill_i8(x, sizeof x, -128, 127);
    fill_i8(wv, sizeof wv, -127, 127);
    const float sx = 0.05f, sw = 0.01f, sc = 0.3f;
    const int32_t zx = 1, zc = -2, zero = 0;
    qf_graph *g = qf_graph_create();
    int vx = input(g, "x", QF_DT_I8, sx, zx, 8);
    int64_t wd[4] = {O, C, 1, 1};
    int vw = cnst(g, "w", QF_DT_I8, 4, wd, wv);
    qf_value_set_qparams(g, vw, 8, -1, 1, &sw, &zero);
    int vc = act(g, "c", QF_DT_I8, sc, zc, 8);
    int vl = act(g, "l", QF_DT_I8, 0.1f, 0, 8);
    int vy = act(g, "y", QF_DT_I8, 0.1f, 0, 8);
    qf_graph_add_output(g, vy);
    int cin[2] = {vx, vw};
    qnode(g, "conv", "QConv", cin, 2, vc, NULL, 0);
    qf_attr lat[1] = {A_INTS("table", tab64, 256)};
    qnode(g, "lut", "QLut", &vc, 1, vl, lat, 1);
    int64_t ks[2] = {2, 2};
    qf_attr pat[2] = {A_INTS("kernel_shape", ks, 2), A_INTS("strides", ks, 2)};
    qnode(g, "pool", "QMaxPool", &vl, 1, vy, pat, 2);
    qf_err e;
    qf_model *m = NULL;
    qf_session *s = NULL;
    CHECK_OK(qf_graph_toposort(g, &e));
    CHECK_MSG(qf_graph_parse_ops(g, &e) == QF_OK, "%s", e.msg);
    CHECK_OK(qf_model_from_graph(g, "chain.qfm", &m, &e));
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    int64_t xd[4] = {N, C, H, W};
    qf_tensor xt = tensor(QF_DT_I8, 4, xd, x), yt;
    qf_status st = qf_session_run(s, &xt, 1, &yt, 1, &e);
    qf_allocator a = qt_counting_allocator();
    if (st == QF_OK) {
        qf_set_allocator(&a);
        *qt_allocs() = 0;
        st = qf_session_run(s, &xt, 1, &yt, 1, &e);
        qf_set_allocator(NULL);
    }
    long allocs = *qt_allocs();
    int8_t y[N * O * 9];
    if (st == QF_OK) memcpy(y, yt.data, sizeof y);
    bool shape_ok = yt.rank == 4 && yt.dims[1] == O && yt.dims[2] == 3 && yt.dims[3] == 3;
    qf_session_free(s);
    qf_model_free(m);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(shape_ok);
    CHECK_EQ_INT(allocs, 0);

    qf_ref_rescale r;
    CHECK_OK(qf_ref_rescale_channels(sx, &sw, 1, sc, &r, NULL));
    qf_ref_conv_params cp = {.batch = N,
                             .in_c = C,
                             .in_h = H,
                             .in_w = W,
                             .out_c = O,
                             .out_h = H,
                             .out_w = W,
                             .k_h = 1,
                             .k_w = 1,
                             .stride_h = 1,
                             .stride_w = 1,
                             .dil_h = 1,
                             .dil_w = 1,
                             .groups = 1,
                             .in_zp = zx,
                             .w_bits = 8,
                             .rq = {.mode = QF_RQ_FP32,
                                    .mult = &r,
                                    .n_mult = 1,
                                    .out_zp = zc,
                                    .act_min = -128,
                                    .act_max = 127}};
    CHECK_OK(qf_ref_conv2d_s8(&cp, x, (const uint8_t *)wv, NULL, t1, NULL));
    qf_ref_lut_apply(table, t1, t2, sizeof t1);
    qf_ref_pool_params pp = {.batch = N,
                             .channels = O,
                             .in_h = H,
                             .in_w = W,
                             .out_h = 3,
                             .out_w = 3,
                             .k_h = 2,
                             .k_w = 2,
                             .stride_h = 2,
                             .stride_w = 2,
                             .dil_h = 1,
                             .dil_w = 1,
                             .act_min = -128,
                             .act_max = 127};
    CHECK_OK(qf_ref_maxpool_s8(&pp, t2, want, NULL));
    for (size_t i = 0; i < sizeof want; i++)
        CHECK_EQ_INT(y[i], want[i]);
}

/* ---- float cross-check ------------------------------------------------------------ */

/* QuantizeLinear -> QConv (3x3 pad 1, 4 -> 4, per-channel weights, bias) ->
 * QAdd (+ the quantized input) -> DequantizeLinear, against Conv -> Add in
 * float on the dequantized input, weights and bias. Each of the two
 * requantizations rounds once (at most half an output step, one step in
 * fixed mode) and the QAdd also rounds its operands' rescaling, so the
 * difference is at most s_conv + s_add plus float noise. */
static void test_float_crosscheck(void) {
    enum { C = 4, H = 6, W = 5, K = C * 9 };
    for (int fixed = 0; fixed <= 1; fixed++) {
        float xf[C * H * W], xdq[C * H * W];
        int8_t xq[C * H * W], wq[C * K];
        int32_t bq[C];
        float ws[C], wf[C * K], bf[C];
        int32_t zeros[C] = {0};
        for (int i = 0; i < C * H * W; i++)
            xf[i] = (float)rnd(-1000, 1000) / 400.0f;
        const float sx = 5.0f / 255.0f, sc = 0.08f, sa = 0.1f;
        const int32_t zx = 2, zc = -4, za = 3;
        CHECK_OK(qf_ref_quantize_s8(xf, C * H * W, sx, zx, xq, NULL));
        qf_ref_dequantize_s8(xq, C * H * W, sx, zx, xdq);
        fill_i8(wq, C * K, -127, 127);
        for (int o = 0; o < C; o++) {
            ws[o] = 0.0005f * (float)(1 + o);
            bq[o] = rnd(-30000, 30000);
            bf[o] = (float)bq[o] * sx * ws[o];
            for (int k = 0; k < K; k++)
                wf[o * K + k] = (float)wq[o * K + k] * ws[o];
        }
        int64_t xd[4] = {1, C, H, W}, wd[4] = {C, C, 3, 3}, bd[1] = {C}, sd[1] = {0};
        int64_t pads[4] = {1, 1, 1, 1};
        float y_int[C * H * W], y_flt[C * H * W];
        qf_err e;

        /* integer graph */
        qf_graph *g = qf_graph_create();
        int vx = input(g, "x", QF_DT_F32, 0, 0, 0);
        int vxs = cnst(g, "x_scale", QF_DT_F32, 0, sd, &sx);
        int8_t zx8 = (int8_t)zx, za8 = (int8_t)za;
        int vxz = cnst(g, "x_zp", QF_DT_I8, 0, sd, &zx8);
        int vxq = act(g, "xq", QF_DT_I8, sx, zx, 8);
        int vw = cnst(g, "w", QF_DT_I8, 4, wd, wq);
        qf_value_set_qparams(g, vw, 8, 0, C, ws, zeros);
        int vb = cnst(g, "b", QF_DT_I32, 1, bd, bq);
        int vc = act(g, "c", QF_DT_I8, sc, zc, 8);
        int va = act(g, "a", QF_DT_I8, sa, za, 8);
        int vas = cnst(g, "a_scale", QF_DT_F32, 0, sd, &sa);
        int vaz = cnst(g, "a_zp", QF_DT_I8, 0, sd, &za8);
        int vy = act(g, "y", QF_DT_F32, 0, 0, 0);
        qf_graph_add_output(g, vy);
        int q_in[3] = {vx, vxs, vxz}, c_in[3] = {vxq, vw, vb}, a_in[2] = {vc, vxq};
        int d_in[3] = {va, vas, vaz};
        qf_graph_add_node(g, "quant", "QuantizeLinear", "", 13, q_in, 3, &vxq, 1, NULL, 0);
        qf_attr cat[2] = {A_INTS("pads", pads, 4), A_STR("requant", "fixed")};
        qnode(g, "conv", "QConv", c_in, 3, vc, cat, fixed ? 2 : 1);
        qf_attr aat[1] = {A_STR("requant", "fixed")};
        qnode(g, "add", "QAdd", a_in, 2, va, aat, fixed ? 1 : 0);
        qf_graph_add_node(g, "dequant", "DequantizeLinear", "", 13, d_in, 3, &vy, 1, NULL, 0);
        qf_tensor xt = tensor(QF_DT_F32, 4, xd, xf), yt;
        CHECK_MSG(run_graph(g, &xt, 1, &yt, y_int, sizeof y_int, &e) == QF_OK, "%s", e.msg);
        CHECK(yt.dtype == QF_DT_F32 && yt.rank == 4 && yt.dims[2] == H && yt.dims[3] == W);

        /* float graph on the dequantized data */
        g = qf_graph_create();
        vx = input(g, "x", QF_DT_F32, 0, 0, 0);
        vw = cnst(g, "w", QF_DT_F32, 4, wd, wf);
        vb = cnst(g, "b", QF_DT_F32, 1, bd, bf);
        vc = act(g, "c", QF_DT_F32, 0, 0, 0);
        vy = act(g, "y", QF_DT_F32, 0, 0, 0);
        qf_graph_add_output(g, vy);
        int fc_in[3] = {vx, vw, vb}, fa_in[2] = {vc, vx};
        qf_attr fat[1] = {A_INTS("pads", pads, 4)};
        qf_graph_add_node(g, "conv", "Conv", "", 13, fc_in, 3, &vc, 1, fat, 1);
        qf_graph_add_node(g, "add", "Add", "", 13, fa_in, 2, &vy, 1, NULL, 0);
        xt = tensor(QF_DT_F32, 4, xd, xdq);
        CHECK_MSG(run_graph(g, &xt, 1, &yt, y_flt, sizeof y_flt, &e) == QF_OK, "%s", e.msg);

        double max_diff = 0, max_abs = 0;
        for (int i = 0; i < C * H * W; i++) {
            /* stay clear of the int8 clamps so only rounding differs */
            CHECK_MSG(y_flt[i] > sa * (-128 - za) + 0.5f && y_flt[i] < sa * (127 - za) - 0.5f,
                      "reference value %g saturates", (double)y_flt[i]);
            max_diff = fmax(max_diff, fabs((double)y_int[i] - (double)y_flt[i]));
            max_abs = fmax(max_abs, fabs((double)y_flt[i]));
        }
        CHECK_MSG(max_diff <= (double)(sc + sa) * (fixed ? 1.5 : 1.0) + 1e-4,
                  "fixed=%d: max diff %g", fixed, max_diff);
        CHECK_MSG(max_abs > 20 * sa, "output range too small (%g)", max_abs);
    }
}

/* ---- errors ------------------------------------------------------------------------ */

typedef enum {
    E_NO_INPUT_QP,
    E_NO_WEIGHT_QP,
    E_NO_OUTPUT_QP,
    E_PACKED_SIZE,
    E_ACT_ORDER,
    E_WBITS3,
    E_WEIGHT_ZP,
    E_CHANNELS,
    E_OVERFLOW,
    E_WEIGHT_RANGE,
    E_REQUANT,
    E_NO_WSHAPE,
    E_BIAS_SHAPE
} err_kind;

typedef struct err_case {
    const char *name;
    err_kind kind;
    int gemm;
    qf_status want;
    const char *must_name; /* tensor named in the message, besides the node */
} err_case;

/* clang-format off */
static const err_case err_cases[] = {
    {"missing input qparams", E_NO_INPUT_QP, 0, QF_ERR_FORMAT, "'x'"},
    {"missing weight qparams", E_NO_WEIGHT_QP, 1, QF_ERR_FORMAT, "'w'"},
    {"missing output qparams", E_NO_OUTPUT_QP, 0, QF_ERR_FORMAT, "'y'"},
    {"packed weight wrong size", E_PACKED_SIZE, 0, QF_ERR_FORMAT, "'w'"},
    {"packed gemm weight wrong size", E_PACKED_SIZE, 1, QF_ERR_FORMAT, "'w'"},
    {"act_min > act_max", E_ACT_ORDER, 0, QF_ERR_INVALID_ARG, "act_min"},
    {"w_bits 3", E_WBITS3, 1, QF_ERR_UNSUPPORTED, "w_bits 3"},
    {"weight zero point out of range", E_WEIGHT_ZP, 0, QF_ERR_FORMAT, "zero point[2] = 200"},
    {"per-channel count", E_CHANNELS, 1, QF_ERR_FORMAT, "'w'"},
    {"int32 overflow", E_OVERFLOW, 1, QF_ERR_UNSUPPORTED, "overflow"},
    {"weight outside restricted range", E_WEIGHT_RANGE, 0, QF_ERR_FORMAT, "'w'"},
    {"bad requant", E_REQUANT, 1, QF_ERR_INVALID_ARG, "requant"},
    {"packed without w_shape", E_NO_WSHAPE, 0, QF_ERR_FORMAT, "w_shape"},
    {"bias shape", E_BIAS_SHAPE, 1, QF_ERR_FORMAT, "'b'"},
};
/* clang-format on */

static void test_errors(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(err_cases); ci++) {
        const err_case *c = &err_cases[ci];
        const int O = 4, K = c->gemm ? (c->kind == E_OVERFLOW ? 300 : 8) : 2 * 3 * 3;
        static int8_t wv[4 * 300];
        fill_i8(wv, (size_t)O * K, -7, 7);
        if (c->kind == E_WEIGHT_RANGE) wv[5] = -128;
        const int bits = c->kind == E_PACKED_SIZE || c->kind == E_NO_WSHAPE ? 4 : 8;
        qf_graph *g = qf_graph_create();
        const int in_bits = c->kind == E_OVERFLOW ? 16 : 8;
        const qf_dtype adt = in_bits == 16 ? QF_DT_I16 : QF_DT_I8;
        int x = input(g, "x", adt, c->kind == E_NO_INPUT_QP ? 0 : 0.1f, 0, in_bits);
        int w;
        int64_t wshape_conv[4] = {O, 2, 3, 3}, wshape_gemm[2] = {O, K};
        int64_t *wshape = c->gemm ? wshape_gemm : wshape_conv;
        int wrank = c->gemm ? 2 : 4;
        if (bits == 4) {
            int64_t pd[2] = {O, (int64_t)qf_ref_packed_row_bytes(K, 4) + 1}; /* one byte too many */
            static uint8_t big[4 * 400];
            memset(big, 0, sizeof big);
            if (c->kind == E_NO_WSHAPE) pd[1]--;
            w = cnst(g, "w", QF_DT_U8, 2, pd, big);
        } else {
            w = cnst(g, "w", QF_DT_I8, wrank, wshape, wv);
        }
        float ws[5] = {0.01f, 0.02f, 0.03f, 0.04f, 0.05f};
        /* asymmetric weights are allowed; a zero point outside the weight
         * range [-(2^(b-1)-1), 2^(b-1)-1] is not */
        int32_t wz[5] = {0, 0, c->kind == E_WEIGHT_ZP ? 200 : 0, 0, 0};
        if (c->kind != E_NO_WEIGHT_QP)
            qf_value_set_qparams(g, w, bits, 0, c->kind == E_CHANNELS ? 5 : O, ws, wz);
        int y = act(g, "y", adt, c->kind == E_NO_OUTPUT_QP ? 0 : 0.2f, 0, in_bits);
        qf_graph_add_output(g, y);
        int ins[3] = {x, w, -1};
        int n_in = 2;
        if (c->kind == E_BIAS_SHAPE) {
            int32_t bv[3] = {1, 2, 3};
            int64_t bd[1] = {3};
            ins[2] = cnst(g, "b", QF_DT_I32, 1, bd, bv);
            n_in = 3;
        }
        qf_attr at[6];
        int na = 0;
        at[na++] = A_INT("w_bits", c->kind == E_WBITS3 ? 3 : bits);
        if (bits == 4 && c->kind != E_NO_WSHAPE) at[na++] = A_INTS("w_shape", wshape, wrank);
        if (c->kind == E_ACT_ORDER) {
            at[na++] = A_INT("act_min", 10);
            at[na++] = A_INT("act_max", -10);
        }
        if (c->kind == E_REQUANT) at[na++] = A_STR("requant", "float");
        qnode(g, "layer7", c->gemm ? "QGemm" : "QConv", ins, n_in, y, at, na);
        qf_err e;
        qf_status st = parse_graph(g, &e);
        CHECK_MSG(st == c->want, "%s: status %d (%s)", c->name, (int)st, e.msg);
        CHECK_MSG(strstr(e.msg, "layer7") != NULL, "%s: node not named: %s", c->name, e.msg);
        CHECK_MSG(strstr(e.msg, c->must_name) != NULL, "%s: '%s' not in: %s", c->name, c->must_name,
                  e.msg);
    }
}

/* Errors of the other ops: qparams that the op cannot honour. */
static void test_errors_other_ops(void) {
    static const struct {
        const char *name, *op;
        float out_scale;
        qf_status want;
        const char *must;
    } cases[] = {
        {"max pool changes scale", "QMaxPool", 0.2f, QF_ERR_FORMAT, "scale"},
        {"pad changes scale", "QPad", 0.2f, QF_ERR_FORMAT, "scale"},
        {"lut without table", "QLut", 0.1f, QF_ERR_FORMAT, "table"},
        {"add without output qparams", "QAdd", 0.0f, QF_ERR_FORMAT, "'y'"},
        {"concat without axis", "QConcat", 0.1f, QF_ERR_FORMAT, "axis"},
        {"resize without scales", "QResize", 0.1f, QF_ERR_FORMAT, "scales"},
    };
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        qf_graph *g = qf_graph_create();
        int x = input(g, "x", QF_DT_I8, 0.1f, 0, 8);
        int y = act(g, "y", QF_DT_I8, cases[ci].out_scale, 0, 8);
        qf_graph_add_output(g, y);
        int64_t ks[2] = {2, 2}, pads[4] = {0, 0, 1, 1};
        qf_attr at[1];
        int na = 0;
        if (strcmp(cases[ci].op, "QMaxPool") == 0) at[na++] = A_INTS("kernel_shape", ks, 2);
        if (strcmp(cases[ci].op, "QPad") == 0) at[na++] = A_INTS("pads", pads, 4);
        int ins[2] = {x, x};
        qnode(g, "op9", cases[ci].op, ins, strcmp(cases[ci].op, "QAdd") == 0 ? 2 : 1, y, at, na);
        qf_err e;
        qf_status st = parse_graph(g, &e);
        CHECK_MSG(st == cases[ci].want, "%s: status %d (%s)", cases[ci].name, (int)st, e.msg);
        CHECK_MSG(strstr(e.msg, "op9") && strstr(e.msg, cases[ci].must), "%s: %s", cases[ci].name,
                  e.msg);
    }
}

/* The registry resolves the domain-qualified names, and only in "qforge". */
static void test_registry_names(void) {
    static const char *names[] = {
        "QConv",   "QGemm",   "QAdd", "QMul", "QMaxPool", "QAveragePool", "QGlobalAveragePool",
        "QConcat", "QResize", "QPad", "QLut"};
    for (size_t i = 0; i < QF_ARRAY_LEN(names); i++) {
        qf_op_id id = qf_op_lookup(names[i], "qforge");
        CHECK_MSG(id != QF_OP_UNKNOWN && qf_op_get(id) != NULL, "%s", names[i]);
        CHECK_MSG(qf_op_lookup(names[i], "") == QF_OP_UNKNOWN, "%s in default domain", names[i]);
        char full[64];
        snprintf(full, sizeof full, "qforge.%s", names[i]);
        CHECK_MSG(strcmp(qf_op_name(id), full) == 0, "%s", qf_op_name(id));
    }
}

QT_MAIN(QT_CASE(test_registry_names), QT_CASE(test_qconv_wiring), QT_CASE(test_qconv_hand),
        QT_CASE(test_qgemm_wiring), QT_CASE(test_qbinary_wiring), QT_CASE(test_qpool_wiring),
        QT_CASE(test_qconcat_wiring), QT_CASE(test_qresize_wiring), QT_CASE(test_qpad_wiring),
        QT_CASE(test_qlut_wiring), QT_CASE(test_qlut_per_channel), QT_CASE(test_chain_session),
        QT_CASE(test_float_crosscheck), QT_CASE(test_errors), QT_CASE(test_errors_other_ops))
