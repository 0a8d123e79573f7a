/* test_kernels_qonnx.c - the ONNX standard quantization ops: QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, QLinearConv, QLinearMatMul,
 * ConvInteger and MatMulInteger.
 *
 * Each op runs through the registry as the runtime drives it (parse on a
 * node of a real graph, infer, scratch, run) with outputs and scratch fenced
 * by sentinel bytes. Expected values come from hand-computed examples (round
 * half to even ties, saturation, the ONNX documentation examples) and from
 * naive loops written separately here: direct convolution and matrix
 * products in int64, requantization in double with a round-half-even written
 * from floor(). The kernels compute the requantization in binary32 (as ONNX
 * Runtime does); where the double reference lies within rounding noise of a
 * .5 tie the two may legitimately differ by one, and only there is a
 * difference of one accepted.
 */
#include <float.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "qtest.h"

/* ---- small utilities ---------------------------------------------------- */
static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}
static int64_t rnd_int(int64_t lo, int64_t hi) { /* uniform in [lo, hi] */
    return lo + (int64_t)(rnd() % (uint32_t)(hi - lo + 1));
}
static float frand(float lo, float hi) {
    return lo + (hi - lo) * (float)(rnd() >> 8) / (float)(1u << 24);
}

static int64_t prod(const int64_t *d, int r) {
    int64_t p = 1;
    for (int i = 0; i < r; i++)
        p *= d[i];
    return p;
}

static qf_tensor tens(qf_dtype dt, int rank, const int64_t *dims, void *data) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.data = data;
    return t;
}
static qf_tensor scalar(qf_dtype dt, void *data) { return tens(dt, 0, NULL, data); }
static qf_tensor omitted(void) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    return t;
}

static qf_attr a_int(const char *name, int64_t v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INT;
    a.i = v;
    return a;
}
static qf_attr a_str(const char *name, const char *v) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_STRING;
    a.s = v;
    return a;
}
static qf_attr a_ints(const char *name, int64_t *v, int n) {
    qf_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = QF_ATTR_INTS;
    a.ints = v;
    a.n = n;
    return a;
}

static void qrange(qf_dtype t, int32_t *lo, int32_t *hi) {
    switch (t) {
    case QF_DT_U8: *lo = 0, *hi = 255; break;
    case QF_DT_I8: *lo = -128, *hi = 127; break;
    case QF_DT_U16: *lo = 0, *hi = 65535; break;
    case QF_DT_I16: *lo = -32768, *hi = 32767; break;
    default: *lo = INT32_MIN, *hi = INT32_MAX; break;
    }
}
static int64_t get_int(const void *p, qf_dtype t, int64_t i) {
    switch (t) {
    case QF_DT_U8: return ((const uint8_t *)p)[i];
    case QF_DT_I8: return ((const int8_t *)p)[i];
    case QF_DT_U16: return ((const uint16_t *)p)[i];
    case QF_DT_I16: return ((const int16_t *)p)[i];
    case QF_DT_I32: return ((const int32_t *)p)[i];
    default: return 0;
    }
}
static void put_int(void *p, qf_dtype t, int64_t i, int64_t v) {
    switch (t) {
    case QF_DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case QF_DT_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case QF_DT_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case QF_DT_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case QF_DT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    default: break;
    }
}
/* buffer of n random values of type t over its whole range */
static void *rand_q(qf_dtype t, int64_t n) {
    void *p = malloc((size_t)(n > 0 ? n : 1) * 4);
    int32_t lo, hi;
    qrange(t, &lo, &hi);
    for (int64_t i = 0; i < n; i++)
        put_int(p, t, i, rnd_int(lo, hi));
    return p;
}
/* zero point: mode 0 random, 1 the type's minimum, 2 its maximum */
static int64_t pick_zp(qf_dtype t, int mode) {
    int32_t lo, hi;
    qrange(t, &lo, &hi);
    return mode == 1 ? lo : mode == 2 ? hi : rnd_int(lo, hi);
}

/* round half to even, written from floor() */
static double rhe(double v) {
    double f = floor(v), d = v - f;
    if (d > 0.5) return f + 1.0;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}
/* v lies so close to a .5 tie that binary32 arithmetic may round it either
 * way (relative error of a few float ulps) */
static bool near_tie(double v) {
    double d = v - floor(v);
    return fabs(d - 0.5) <= 2e-6 * (1.0 + fabs(v));
}
static int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }
/* expected quantized value of real v (already divided by the scale) */
static int64_t ref_q(double v, int64_t zp, qf_dtype t) {
    int32_t lo, hi;
    qrange(t, &lo, &hi);
    return clampi((int64_t)rhe(v) + zp, lo, hi);
}
/* got matches ref_q(v): exactly, or by one when v is at a tie's edge */
static bool q_match(int64_t got, double v, int64_t zp, qf_dtype t) {
    int64_t want = ref_q(v, zp, t);
    if (got == want) return true;
    return near_tie(v) && llabs(got - want) == 1;
}

/* ---- harness: one node through parse / infer / scratch / run ----------- */
#define MAX_IO 10
#define FENCE 64
#define FENCE_BYTE 0x5C

typedef struct op_run {
    qf_graph *g;
    qf_node *n;
    const qf_op_def *def;
    qf_tensor out[MAX_IO];
    unsigned char *buf[MAX_IO];
    qf_err err;
} op_run;

static void op_free(op_run *r) {
    for (int j = 0; j < MAX_IO; j++)
        free(r->buf[j]);
    qf_graph_free(r->g);
    memset(r, 0, sizeof *r);
}

static bool fence_ok(const unsigned char *p) {
    for (int i = 0; i < FENCE; i++)
        if (p[i] != FENCE_BYTE) return false;
    return true;
}

static qf_status op_parse(op_run *r, const char *op_type, int opset, const qf_attr *attrs,
                          int n_attrs, const qf_tensor *in, int n_in, int n_out) {
    memset(r, 0, sizeof *r);
    r->g = qf_graph_create();
    int ins[MAX_IO], outs[MAX_IO];
    for (int i = 0; i < n_in; i++) {
        char name[8];
        snprintf(name, sizeof name, "in%d", i);
        ins[i] = in[i].dtype == QF_DT_UNDEF
                     ? -1
                     : qf_graph_add_value(r->g, name, in[i].dtype, in[i].rank, in[i].dims);
    }
    for (int j = 0; j < n_out; j++) {
        char name[8];
        snprintf(name, sizeof name, "out%d", j);
        outs[j] = qf_graph_add_value(r->g, name, QF_DT_UNDEF, -1, NULL);
    }
    int ni =
        qf_graph_add_node(r->g, "nut", op_type, "", opset, ins, n_in, outs, n_out, attrs, n_attrs);
    r->n = &r->g->nodes[ni];
    r->def = qf_op_get(r->n->op);
    if (!r->def) return qf_errf(&r->err, QF_ERR_UNSUPPORTED, "op %s not registered", op_type);
    return r->def->parse ? r->def->parse(r->g, r->n, &r->err) : QF_OK;
}

static qf_status op_exec(op_run *r, qf_tensor *in, int n_in) {
    qf_node *n = r->n;
    int n_out = n->n_outputs;
    qf_status s = r->def->infer(n, in, n_in, r->out, n_out, &r->err);
    if (s) return s;
    for (int j = 0; j < n_out; j++) {
        size_t bytes = (size_t)qf_tensor_numel(&r->out[j]) * qf_dtype_size(r->out[j].dtype);
        r->buf[j] = malloc(bytes + FENCE);
        memset(r->buf[j], 0x7F, bytes); /* garbage a kernel must overwrite */
        memset(r->buf[j] + bytes, FENCE_BYTE, FENCE);
        r->out[j].data = r->buf[j];
    }
    size_t sb = r->def->scratch ? r->def->scratch(n, in, n_in, r->out, n_out) : 0;
    unsigned char *scratch = malloc(sb + FENCE);
    memset(scratch, FENCE_BYTE, sb + FENCE);
    s = r->def->run(NULL, n, in, n_in, r->out, n_out, sb ? scratch : NULL, &r->err);
    bool ok = fence_ok(scratch + sb);
    free(scratch);
    if (s) return s;
    if (!ok) return qf_errf(&r->err, QF_ERR_INTERNAL, "scratch overrun (declared %zu)", sb);
    for (int j = 0; j < n_out; j++) {
        size_t bytes = (size_t)qf_tensor_numel(&r->out[j]) * qf_dtype_size(r->out[j].dtype);
        if (!fence_ok(r->buf[j] + bytes))
            return qf_errf(&r->err, QF_ERR_INTERNAL, "output %d overrun", j);
    }
    return QF_OK;
}

static qf_status op_call(op_run *r, const char *op_type, int opset, const qf_attr *attrs,
                         int n_attrs, qf_tensor *in, int n_in, int n_out) {
    qf_status s = op_parse(r, op_type, opset, attrs, n_attrs, in, n_in, n_out);
    return s ? s : op_exec(r, in, n_in);
}

#define CHECK_RUN(expr, r)                                                                         \
    do {                                                                                           \
        qf_status st_ = (expr);                                                                    \
        CHECK_MSG(st_ == QF_OK, "status %s: %s", qf_status_str(st_), (r)->err.msg);                \
    } while (0)

/* ---- registry ------------------------------------------------------------ */
extern const qf_op_def qf_opdef_quantize_linear, qf_opdef_dequantize_linear,
    qf_opdef_dynamic_quantize_linear, qf_opdef_qlinear_conv, qf_opdef_qlinear_matmul,
    qf_opdef_conv_integer, qf_opdef_matmul_integer;

static void test_registry(void) {
    static const struct {
        const char *name;
        const qf_op_def *def;
    } ops[] = {
        {"QuantizeLinear", &qf_opdef_quantize_linear},
        {"DequantizeLinear", &qf_opdef_dequantize_linear},
        {"DynamicQuantizeLinear", &qf_opdef_dynamic_quantize_linear},
        {"QLinearConv", &qf_opdef_qlinear_conv},
        {"QLinearMatMul", &qf_opdef_qlinear_matmul},
        {"ConvInteger", &qf_opdef_conv_integer},
        {"MatMulInteger", &qf_opdef_matmul_integer},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        qf_op_id id = qf_op_lookup(ops[i].name, "");
        CHECK(id != QF_OP_UNKNOWN);
        CHECK(qf_op_get(id) == ops[i].def);
        CHECK(strcmp(ops[i].def->name, ops[i].name) == 0);
        CHECK(ops[i].def->infer && ops[i].def->run);
    }
}

/* ---- QuantizeLinear: hand-computed values ---------------------------------- */
static void test_quantize_hand(void) {
    /* scale 2, zp 128: x/scale = 0.5, 1.5, 2.5, -0.5, -1.5, 3.5 are ties
     * (to even: 0, 2, 2, 0, -2, 4); 1000/-1000 saturate; 0.9 -> 0.45 -> 0;
     * NaN maps to the zero point. */
    float x[] = {1, 3, 5, -1, -3, 7, 1000, -1000, 0.9f, NAN};
    uint8_t want_u8[] = {128, 130, 130, 128, 126, 132, 255, 0, 128, 128};
    int64_t xd[1] = {10};
    float sc = 2.0f;
    uint8_t zp = 128;
    op_run r;
    qf_tensor in[3] = {tens(QF_DT_F32, 1, xd, x), scalar(QF_DT_F32, &sc), scalar(QF_DT_U8, &zp)};
    CHECK_RUN(op_call(&r, "QuantizeLinear", 13, NULL, 0, in, 3, 1), &r);
    CHECK_EQ_INT(r.out[0].dtype, QF_DT_U8);
    CHECK_EQ_INT(r.out[0].rank, 1);
    CHECK_EQ_INT(r.out[0].dims[0], 10);
    bool ok = memcmp(r.out[0].data, want_u8, sizeof want_u8) == 0;
    op_free(&r);
    CHECK(ok);

    /* int8 with the zero point at both extremes */
    static const struct {
        int8_t zp;
        int8_t want[10];
    } i8cases[] = {
        {-128, {-128, -126, -126, -128, -128, -124, 127, -128, -128, -128}},
        {127, {127, 127, 127, 127, 125, 127, 127, -128, 127, 127}},
    };
    for (size_t c = 0; c < 2; c++) {
        int8_t z = i8cases[c].zp;
        qf_tensor in2[3] = {tens(QF_DT_F32, 1, xd, x), scalar(QF_DT_F32, &sc),
                            scalar(QF_DT_I8, &z)};
        CHECK_RUN(op_call(&r, "QuantizeLinear", 13, NULL, 0, in2, 3, 1), &r);
        CHECK_EQ_INT(r.out[0].dtype, QF_DT_I8);
        ok = memcmp(r.out[0].data, i8cases[c].want, 10) == 0;
        op_free(&r);
        CHECK_MSG(ok, "int8 zp %d", z);
    }

    /* zero point omitted: uint8 with zp 0 (negative values clamp to 0) */
    qf_tensor in3[2] = {tens(QF_DT_F32, 1, xd, x), scalar(QF_DT_F32, &sc)};
    CHECK_RUN(op_call(&r, "QuantizeLinear", 10, NULL, 0, in3, 2, 1), &r);
    CHECK_EQ_INT(r.out[0].dtype, QF_DT_U8);
    uint8_t want_nozp[] = {0, 2, 2, 0, 0, 4, 255, 0, 0, 0};
    ok = memcmp(r.out[0].data, want_nozp, 10) == 0;
    op_free(&r);
    CHECK(ok);

    /* opset 21 output_dtype without a zero point: int16, zp 0; wide range */
    float x16[] = {70000.0f, -70000.0f, 5.0f, -5.0f, 1234.0f};
    int16_t want16[] = {32767, -32768, 2, -2, 617};
    int64_t x16d[1] = {5};
    qf_attr od = a_int("output_dtype", QF_DT_I16);
    qf_tensor in4[2] = {tens(QF_DT_F32, 1, x16d, x16), scalar(QF_DT_F32, &sc)};
    CHECK_RUN(op_call(&r, "QuantizeLinear", 21, &od, 1, in4, 2, 1), &r);
    CHECK_EQ_INT(r.out[0].dtype, QF_DT_I16);
    ok = memcmp(r.out[0].data, want16, sizeof want16) == 0;
    op_free(&r);
    CHECK(ok);

    /* uint16 zero point (opset 21) */
    uint16_t zp16 = 65000;
    uint16_t wantu16[] = {65535, 30000, 65002, 64998, 65535};
    qf_tensor in5[3] = {tens(QF_DT_F32, 1, x16d, x16), scalar(QF_DT_F32, &sc),
                        scalar(QF_DT_U16, &zp16)};
    CHECK_RUN(op_call(&r, "QuantizeLinear", 21, NULL, 0, in5, 3, 1), &r);
    CHECK_EQ_INT(r.out[0].dtype, QF_DT_U16);
    ok = memcmp(r.out[0].data, wantu16, sizeof wantu16) == 0;
    op_free(&r);
    CHECK(ok);

    /* float16 input and scale (opset 19): 3 / 2 = 1.5 -> 2, -5 / 2 -> -2 */
    uint16_t xh[3] = {qf_f32_to_f16(3.0f), qf_f32_to_f16(-5.0f), qf_f32_to_f16(100.0f)};
    uint16_t sh = qf_f32_to_f16(2.0f);
    int8_t zp0 = 0;
    int8_t wanth[3] = {2, -2, 50};
    int64_t xhd[1] = {3};
    qf_tensor in6[3] = {tens(QF_DT_F16, 1, xhd, xh), scalar(QF_DT_F16, &sh),
                        scalar(QF_DT_I8, &zp0)};
    CHECK_RUN(op_call(&r, "QuantizeLinear", 19, NULL, 0, in6, 3, 1), &r);
    ok = memcmp(r.out[0].data, wanth, 3) == 0;
    op_free(&r);
    CHECK(ok);

    /* int32 input (opsets 10+): 7 / 2 = 3.5 -> 4, -9 / 2 = -4.5 -> -4 */
    int32_t xi[3] = {7, -9, 1 << 20};
    int8_t wanti[3] = {4, -4, 127};
    qf_tensor in7[3] = {tens(QF_DT_I32, 1, xhd, xi), scalar(QF_DT_F32, &sc),
                        scalar(QF_DT_I8, &zp0)};
    CHECK_RUN(op_call(&r, "QuantizeLinear", 13, NULL, 0, in7, 3, 1), &r);
    ok = memcmp(r.out[0].data, wanti, 3) == 0;
    op_free(&r);
    CHECK(ok);
}

/* ---- QuantizeLinear / DequantizeLinear: random shapes, per axis ---------- */
static void test_quantize_random(void) {
    static const qf_dtype types[] = {QF_DT_U8, QF_DT_I8, QF_DT_U16, QF_DT_I16};
    int ties = 0;
    for (int trial = 0; trial < 60; trial++) {
        int rank = (int)rnd_int(1, 4);
        int64_t dims[4];
        for (int i = 0; i < rank; i++)
            dims[i] = rnd_int(1, 5);
        int64_t numel = prod(dims, rank);
        qf_dtype qt = types[trial % 4];
        bool per_axis = trial % 3 != 0;
        bool exact = trial % 4 < 2;
        int axis = (int)rnd_int(0, rank - 1);
        int64_t axis_attr = trial % 2 ? axis - rank : axis; /* negative axes too */
        int64_t nch = per_axis ? dims[axis] : 1;
        float sc[8];
        int64_t zp[8];
        void *zbuf = malloc(8 * 4);
        for (int64_t c = 0; c < nch; c++) {
            /* power-of-two scales keep x / scale exact: ties are real ties */
            sc[c] = exact ? ldexpf(1.0f, (int)rnd_int(-6, 3)) : frand(0.01f, 3.0f);
            zp[c] = pick_zp(qt, (int)(c + trial) % 3);
            put_int(zbuf, qt, c, zp[c]);
        }
        int32_t lo, hi;
        qrange(qt, &lo, &hi);
        float *x = malloc(sizeof(float) * (size_t)numel);
        for (int64_t i = 0; i < numel; i++) {
            /* half-integers (exact ties after division by a power of two) mixed
             * with values that saturate */
            double q = (double)rnd_int(-2 * (hi - lo), 2 * (hi - lo)) / 2.0;
            x[i] = (float)(q * 0.75);
            if (i % 3 == 0) x[i] = (float)(rnd_int(-400, 400) / 2.0);
        }
        int64_t sd[1] = {nch};
        qf_tensor in[3] = {tens(QF_DT_F32, rank, dims, x),
                           per_axis ? tens(QF_DT_F32, 1, sd, sc) : scalar(QF_DT_F32, sc),
                           per_axis ? tens(qt, 1, sd, zbuf) : scalar(qt, zbuf)};
        qf_attr ax = a_int("axis", axis_attr);
        op_run r;
        qf_status s = op_call(&r, "QuantizeLinear", 21, &ax, 1, in, 3, 1);
        bool ok = s == QF_OK && r.out[0].dtype == qt;
        int64_t bad = -1;
        int64_t inner = prod(dims + axis + 1, rank - axis - 1);
        for (int64_t i = 0; ok && i < numel; i++) {
            int64_t c = per_axis ? (i / inner) % dims[axis] : 0;
            double v = (double)x[i] / (double)sc[c];
            if (v - floor(v) == 0.5) ties++;
            int64_t got = get_int(r.out[0].data, qt, i);
            /* power-of-two scales divide exactly: no tolerance at all */
            bool match = exact ? got == ref_q(v, zp[c], qt) : q_match(got, v, zp[c], qt);
            if (!match) bad = i, ok = false;
        }
        /* DequantizeLinear of the result: (q - zp) * scale */
        if (ok) {
            void *q = malloc((size_t)numel * 2 + 1);
            memcpy(q, r.out[0].data, (size_t)numel * qf_dtype_size(qt));
            op_run r2;
            qf_tensor in2[3] = {tens(qt, rank, dims, q), in[1], in[2]};
            s = op_call(&r2, "DequantizeLinear", 21, &ax, 1, in2, 3, 1);
            ok = s == QF_OK && r2.out[0].dtype == QF_DT_F32 && r2.out[0].rank == rank;
            for (int64_t i = 0; ok && i < numel; i++) {
                int64_t c = per_axis ? (i / inner) % dims[axis] : 0;
                double want = (double)(get_int(q, qt, i) - zp[c]) * (double)sc[c];
                double got = ((float *)r2.out[0].data)[i];
                if (fabs(got - want) > 1e-6 * (1.0 + fabs(want))) bad = i, ok = false;
            }
            op_free(&r2);
            free(q);
        }
        op_free(&r);
        free(x);
        free(zbuf);
        CHECK_MSG(ok, "trial %d (%s, rank %d, axis %d, per_axis %d): status %d, element %lld",
                  trial, qf_dtype_name(qt), rank, axis, per_axis, (int)s, (long long)bad);
    }
    CHECK(ties > 50); /* the tie path really ran */
}

/* ---- DequantizeLinear: hand values, int32, float16, errors --------------- */
static void test_dequantize(void) {
    op_run r;
    /* the ONNX example: x_scale 2, zp 128 */
    uint8_t x[4] = {0, 3, 128, 255};
    float sc = 2.0f, want[4] = {-256, -250, 0, 254};
    uint8_t zp = 128;
    int64_t xd[1] = {4};
    qf_tensor in[3] = {tens(QF_DT_U8, 1, xd, x), scalar(QF_DT_F32, &sc), scalar(QF_DT_U8, &zp)};
    CHECK_RUN(op_call(&r, "DequantizeLinear", 10, NULL, 0, in, 3, 1), &r);
    bool ok = memcmp(r.out[0].data, want, sizeof want) == 0;
    op_free(&r);
    CHECK(ok);

    /* int32 (bias-like) input without zero point, and with a zero zp */
    int32_t xi[3] = {-2147483647, 5, 1000000};
    float sci = 0.5f;
    int32_t zpi = 0;
    int64_t xid[1] = {3};
    qf_tensor in2[3] = {tens(QF_DT_I32, 1, xid, xi), scalar(QF_DT_F32, &sci),
                        scalar(QF_DT_I32, &zpi)};
    for (int with_zp = 0; with_zp < 2; with_zp++) {
        CHECK_RUN(op_call(&r, "DequantizeLinear", 13, NULL, 0, in2, 2 + with_zp, 1), &r);
        const float *y = r.out[0].data;
        ok = y[0] == (float)(-2147483647.0 * 0.5) && y[1] == 2.5f && y[2] == 500000.0f;
        op_free(&r);
        CHECK(ok);
    }
    /* int32 with a nonzero zero point is invalid */
    zpi = 3;
    qf_status s = op_call(&r, "DequantizeLinear", 13, NULL, 0, in2, 3, 1);
    bool named = strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
    CHECK(named);

    /* float16 scale gives a float16 output (opset 19) */
    int8_t xs8[3] = {-128, 0, 127};
    int8_t zps8 = -128;
    uint16_t sh = qf_f32_to_f16(0.25f);
    qf_tensor in3[3] = {tens(QF_DT_I8, 1, xid, xs8), scalar(QF_DT_F16, &sh),
                        scalar(QF_DT_I8, &zps8)};
    CHECK_RUN(op_call(&r, "DequantizeLinear", 19, NULL, 0, in3, 3, 1), &r);
    CHECK_EQ_INT(r.out[0].dtype, QF_DT_F16);
    const uint16_t *yh = r.out[0].data;
    ok = qf_f16_to_f32(yh[0]) == 0.0f && qf_f16_to_f32(yh[1]) == 32.0f &&
         qf_f16_to_f32(yh[2]) == 63.75f;
    op_free(&r);
    CHECK(ok);

    /* per-axis scale of the wrong length; zero point of another type */
    uint8_t x4[6] = {0};
    int64_t x4d[2] = {2, 3}, s2d[1] = {2};
    float sc2[2] = {1, 2};
    uint8_t zp2[2] = {0, 0};
    qf_attr ax1 = a_int("axis", 1);
    qf_tensor in4[3] = {tens(QF_DT_U8, 2, x4d, x4), tens(QF_DT_F32, 1, s2d, sc2),
                        tens(QF_DT_U8, 1, s2d, zp2)};
    s = op_call(&r, "DequantizeLinear", 13, &ax1, 1, in4, 3, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    qf_attr ax0 = a_int("axis", 0);
    CHECK_RUN(op_call(&r, "DequantizeLinear", 13, &ax0, 1, in4, 3, 1), &r);
    op_free(&r);
    int8_t zp3[2] = {0, 0};
    qf_tensor in5[3] = {in4[0], in4[1], tens(QF_DT_I8, 1, s2d, zp3)};
    s = op_call(&r, "DequantizeLinear", 13, &ax0, 1, in5, 3, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);

    /* blocked quantization is rejected: block_size at parse, a rank-2 scale
     * at infer */
    qf_attr blk = a_int("block_size", 2);
    s = op_parse(&r, "QuantizeLinear", 21, &blk, 1, in4, 3, 1);
    named = strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    CHECK(named);
    s = op_parse(&r, "DequantizeLinear", 21, &blk, 1, in4, 3, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    int64_t s22[2] = {2, 1};
    qf_tensor in6[2] = {in4[0], tens(QF_DT_F32, 2, s22, sc2)};
    s = op_call(&r, "DequantizeLinear", 21, NULL, 0, in6, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    /* float input to DequantizeLinear */
    float xf[6] = {0};
    qf_tensor in7[2] = {tens(QF_DT_F32, 2, x4d, xf), scalar(QF_DT_F32, &sc)};
    s = op_call(&r, "DequantizeLinear", 13, NULL, 0, in7, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
}

/* ---- DynamicQuantizeLinear ---------------------------------------------- */
static void test_dynamic_quantize(void) {
    op_run r;
    /* the ONNX examples: range [-3, 2], [-4, 0] (max adjusted to 0),
     * [0, 4] (min adjusted to 0) */
    static const struct {
        int n;
        float x[12];
        uint8_t y[12];
        uint8_t zp;
    } ex[] = {
        {6, {0, 2, -3, -2.5f, 1.34f, 0.5f}, {153, 255, 0, 26, 221, 179}, 153},
        {6, {-1, -2.1f, -1.3f, -2.5f, -3.34f, -4}, {191, 121, 172, 96, 42, 0}, 255},
        {12,
         {1, 2.1f, 1.3f, 2.5f, 3.34f, 4, 1.5f, 2.6f, 3.9f, 4, 3, 2.345f},
         {64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149},
         0},
    };
    static const double ranges[] = {5.0, 4.0, 4.0};
    for (int e = 0; e < 3; e++) {
        int64_t xd[1] = {ex[e].n};
        qf_tensor in[1] = {tens(QF_DT_F32, 1, xd, (void *)ex[e].x)};
        CHECK_RUN(op_call(&r, "DynamicQuantizeLinear", 11, NULL, 0, in, 1, 3), &r);
        bool shapes = r.out[0].dtype == QF_DT_U8 && r.out[1].dtype == QF_DT_F32 &&
                      r.out[1].rank == 0 && r.out[2].dtype == QF_DT_U8 && r.out[2].rank == 0;
        bool y_ok = memcmp(r.out[0].data, ex[e].y, (size_t)ex[e].n) == 0;
        float scale = *(float *)r.out[1].data;
        uint8_t zp = *(uint8_t *)r.out[2].data;
        op_free(&r);
        CHECK(shapes);
        CHECK_MSG(y_ok, "example %d", e);
        CHECK_NEAR(scale, ranges[e] / 255.0, 1e-7);
        CHECK_EQ_INT(zp, ex[e].zp);
    }
    /* all zeros: the range is empty; scale 1 (as ONNX Runtime), zp 0, y 0 */
    float z[5] = {0};
    int64_t zd[1] = {5};
    qf_tensor inz[1] = {tens(QF_DT_F32, 1, zd, z)};
    CHECK_RUN(op_call(&r, "DynamicQuantizeLinear", 11, NULL, 0, inz, 1, 3), &r);
    uint8_t zeros[5] = {0};
    bool ok = memcmp(r.out[0].data, zeros, 5) == 0 && *(float *)r.out[1].data == 1.0f &&
              *(uint8_t *)r.out[2].data == 0;
    op_free(&r);
    CHECK(ok);

    /* random tensors against the double formula */
    for (int trial = 0; trial < 20; trial++) {
        int64_t d[2] = {rnd_int(1, 9), rnd_int(1, 9)};
        int64_t n = d[0] * d[1];
        float *x = malloc(sizeof(float) * (size_t)n);
        float lo = frand(-10.0f, 3.0f), hi = lo + frand(0.1f, 20.0f);
        for (int64_t i = 0; i < n; i++)
            x[i] = frand(lo, hi);
        double mn = 0.0, mx = 0.0;
        for (int64_t i = 0; i < n; i++)
            mn = fmin(mn, x[i]), mx = fmax(mx, x[i]);
        double scale = (mx - mn) / 255.0;
        double zpd = -mn / scale;
        qf_tensor in[1] = {tens(QF_DT_F32, 2, d, x)};
        CHECK_RUN(op_call(&r, "DynamicQuantizeLinear", 11, NULL, 0, in, 1, 3), &r);
        float got_scale = *(float *)r.out[1].data;
        int64_t got_zp = *(uint8_t *)r.out[2].data;
        ok = fabs(got_scale - scale) <= 1e-6 * scale && q_match(got_zp, zpd, 0, QF_DT_U8);
        int64_t bad = -1;
        for (int64_t i = 0; ok && i < n; i++) {
            int64_t q = ((uint8_t *)r.out[0].data)[i];
            if (!q_match(q, x[i] / scale, got_zp, QF_DT_U8)) bad = i, ok = false;
        }
        op_free(&r);
        free(x);
        CHECK_MSG(ok, "trial %d element %lld", trial, (long long)bad);
    }
}

/* ---- convolution: the independent reference -------------------------------- */
typedef struct qconv_case {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], stride[3], dil[3], pads[6];
    const char *auto_pad; /* NULL: explicit pads */
    qf_dtype xt, wt, yt;
    bool per_ch, bias;
    int zp_mode; /* 0 random, 1 minimum, 2 maximum */
} qconv_case;

/* clang-format off */
static const qconv_case qconv_cases[] = {
    {2, 1, 3, 4, 1, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, QF_DT_U8, QF_DT_U8,
     QF_DT_U8, false, false, 0},
    {2, 2, 4, 6, 2, {7, 5}, {3, 2}, {2, 1}, {1, 1}, {1, 0, 2, 1}, NULL, QF_DT_I8, QF_DT_I8,
     QF_DT_I8, true, true, 1},
    {2, 1, 6, 6, 6, {9, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, QF_DT_U8, QF_DT_I8,
     QF_DT_U8, true, true, 2},
    {2, 1, 4, 8, 1, {8, 8}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL, QF_DT_I8, QF_DT_U8,
     QF_DT_I8, false, true, 2},
    {2, 1, 5, 3, 1, {7, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, QF_DT_U8, QF_DT_U8,
     QF_DT_I8, true, false, 1},
    {2, 1, 3, 5, 1, {5, 7}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", QF_DT_U8, QF_DT_I8,
     QF_DT_U8, true, true, 0},
    {2, 1, 3, 5, 1, {6, 6}, {2, 3}, {1, 2}, {1, 1}, {0}, "SAME_LOWER", QF_DT_I8, QF_DT_I8,
     QF_DT_U8, false, true, 1},
    {1, 2, 4, 4, 2, {11}, {3}, {2}, {2}, {2, 1}, NULL, QF_DT_U8, QF_DT_U8, QF_DT_U8, true, true, 2},
    {3, 1, 2, 3, 1, {4, 5, 4}, {2, 3, 2}, {1, 1, 2}, {1, 1, 1}, {1, 0, 1, 0, 1, 1}, NULL,
     QF_DT_I8, QF_DT_I8, QF_DT_I8, true, true, 0},
    /* a wide image so im2col takes several bands */
    {2, 1, 16, 8, 1, {40, 150}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, QF_DT_U8, QF_DT_I8,
     QF_DT_U8, true, true, 0},
};
/* clang-format on */

typedef struct qconv_data {
    int64_t xd[5], wd[5], yd[5], pb[3], out[3];
    int rank;
    void *x, *w, *xzp, *wzp, *yzp;
    int32_t *bias;
    float xs, *ws, ys;
    int64_t *acc; /* reference accumulators, output layout */
    int64_t ny;
} qconv_data;

/* geometry and the reference int64 convolution (bias included) */
static void qconv_reference(const qconv_case *cc, qconv_data *q) {
    int nsp = cc->nsp, off = 3 - nsp;
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, st[3] = {1, 1, 1}, dl[3] = {1, 1, 1};
    int64_t pb[3] = {0, 0, 0};
    for (int a = 0; a < nsp; a++) {
        in[off + a] = cc->in[a];
        k[off + a] = cc->k[a];
        st[off + a] = cc->stride[a];
        dl[off + a] = cc->dil[a];
        int64_t ek = (cc->k[a] - 1) * cc->dil[a] + 1, o, pbeg;
        if (cc->auto_pad) {
            o = (cc->in[a] + cc->stride[a] - 1) / cc->stride[a];
            int64_t total = (o - 1) * cc->stride[a] + ek - cc->in[a];
            if (total < 0) total = 0;
            pbeg = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        } else {
            pbeg = cc->pads[a];
            o = (cc->in[a] + cc->pads[a] + cc->pads[a + nsp] - ek) / cc->stride[a] + 1;
        }
        q->out[a] = o;
        pb[off + a] = pbeg;
    }
    int64_t out3[3] = {1, 1, 1};
    for (int a = 0; a < nsp; a++)
        out3[off + a] = q->out[a];
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    int64_t hwo = out3[0] * out3[1] * out3[2], hwi = in[0] * in[1] * in[2];
    int64_t kk = k[0] * k[1] * k[2];
    q->ny = cc->n * cc->m * hwo;
    q->acc = malloc(sizeof(int64_t) * (size_t)q->ny);
    int64_t xz = get_int(q->xzp, cc->xt, 0);
    for (int64_t b = 0; b < cc->n; b++)
        for (int64_t oc = 0; oc < cc->m; oc++) {
            int64_t g = oc / mg;
            int64_t wz = get_int(q->wzp, cc->wt, cc->per_ch ? oc : 0);
            for (int64_t od = 0; od < out3[0]; od++)
                for (int64_t oh = 0; oh < out3[1]; oh++)
                    for (int64_t ow = 0; ow < out3[2]; ow++) {
                        int64_t s = q->bias ? q->bias[oc] : 0;
                        for (int64_t ic = 0; ic < cg; ic++)
                            for (int64_t kd = 0; kd < k[0]; kd++)
                                for (int64_t kh = 0; kh < k[1]; kh++)
                                    for (int64_t kw = 0; kw < k[2]; kw++) {
                                        int64_t id = od * st[0] - pb[0] + kd * dl[0];
                                        int64_t ih = oh * st[1] - pb[1] + kh * dl[1];
                                        int64_t iw = ow * st[2] - pb[2] + kw * dl[2];
                                        if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] ||
                                            iw < 0 || iw >= in[2])
                                            continue; /* padding reads x_zp: adds 0 */
                                        int64_t xi = (b * cc->c + g * cg + ic) * hwi +
                                                     (id * in[1] + ih) * in[2] + iw;
                                        int64_t wi = ((oc * cg + ic) * k[0] + kd) * k[1] * k[2] +
                                                     kh * k[2] + kw;
                                        s += (get_int(q->x, cc->xt, xi) - xz) *
                                             (get_int(q->w, cc->wt, wi) - wz);
                                    }
                        q->acc[(b * cc->m + oc) * hwo + (od * out3[1] + oh) * out3[2] + ow] = s;
                    }
        }
    (void)kk;
}

static void qconv_make(const qconv_case *cc, qconv_data *q) {
    memset(q, 0, sizeof *q);
    int nsp = cc->nsp;
    q->rank = nsp + 2;
    q->xd[0] = cc->n;
    q->xd[1] = cc->c;
    q->wd[0] = cc->m;
    q->wd[1] = cc->c / cc->group;
    for (int a = 0; a < nsp; a++) {
        q->xd[2 + a] = cc->in[a];
        q->wd[2 + a] = cc->k[a];
    }
    q->x = rand_q(cc->xt, prod(q->xd, q->rank));
    q->w = rand_q(cc->wt, prod(q->wd, q->rank));
    int64_t nw = cc->per_ch ? cc->m : 1;
    q->xzp = malloc(4);
    q->wzp = malloc((size_t)nw * 4);
    q->yzp = malloc(4);
    put_int(q->xzp, cc->xt, 0, pick_zp(cc->xt, cc->zp_mode));
    for (int64_t i = 0; i < nw; i++)
        put_int(q->wzp, cc->wt, i, pick_zp(cc->wt, i ? 0 : cc->zp_mode));
    put_int(q->yzp, cc->yt, 0, pick_zp(cc->yt, cc->zp_mode));
    q->ws = malloc(sizeof(float) * (size_t)nw);
    q->xs = frand(0.001f, 0.1f);
    for (int64_t i = 0; i < nw; i++)
        q->ws[i] = frand(0.001f, 0.05f);
    if (cc->bias) {
        q->bias = malloc(sizeof(int32_t) * (size_t)cc->m);
        for (int64_t i = 0; i < cc->m; i++)
            q->bias[i] = (int32_t)rnd_int(-20000, 20000);
    }
    qconv_reference(cc, q);
    /* y_scale so the outputs span about [-200, 200]: both ends saturate for
     * most zero points */
    int64_t amax = 1;
    for (int64_t i = 0; i < q->ny; i++)
        amax = QF_MAX(amax, llabs(q->acc[i]));
    q->ys = (float)((double)q->xs * q->ws[0] * (double)amax / 200.0);
    q->yd[0] = cc->n;
    q->yd[1] = cc->m;
    for (int a = 0; a < nsp; a++)
        q->yd[2 + a] = q->out[a];
}

static void qconv_free(qconv_data *q) {
    free(q->x);
    free(q->w);
    free(q->xzp);
    free(q->wzp);
    free(q->yzp);
    free(q->ws);
    free(q->bias);
    free(q->acc);
}

static int qconv_attrs(const qconv_case *cc, qf_attr *at, int64_t *strides, int64_t *dil,
                       int64_t *pads) {
    int na = 0, nsp = cc->nsp;
    for (int a = 0; a < nsp; a++) {
        strides[a] = cc->stride[a];
        dil[a] = cc->dil[a];
    }
    for (int a = 0; a < 2 * nsp; a++)
        pads[a] = cc->pads[a];
    at[na++] = a_ints("strides", strides, nsp);
    at[na++] = a_ints("dilations", dil, nsp);
    if (cc->auto_pad)
        at[na++] = a_str("auto_pad", cc->auto_pad);
    else
        at[na++] = a_ints("pads", pads, 2 * nsp);
    if (cc->group != 1) at[na++] = a_int("group", cc->group);
    return na;
}

static void test_qlinear_conv_cases(void) {
    int saturated = 0;
    for (size_t ci = 0; ci < sizeof qconv_cases / sizeof qconv_cases[0]; ci++) {
        const qconv_case *cc = &qconv_cases[ci];
        qconv_data q;
        qconv_make(cc, &q);
        int64_t nw = cc->per_ch ? cc->m : 1, wsd[1] = {nw}, bd[1] = {cc->m};
        qf_tensor in[9] = {
            tens(cc->xt, q.rank, q.xd, q.x),
            scalar(QF_DT_F32, &q.xs),
            scalar(cc->xt, q.xzp),
            tens(cc->wt, q.rank, q.wd, q.w),
            cc->per_ch ? tens(QF_DT_F32, 1, wsd, q.ws) : scalar(QF_DT_F32, q.ws),
            cc->per_ch ? tens(cc->wt, 1, wsd, q.wzp) : scalar(cc->wt, q.wzp),
            scalar(QF_DT_F32, &q.ys),
            scalar(cc->yt, q.yzp),
            cc->bias ? tens(QF_DT_I32, 1, bd, q.bias) : omitted(),
        };
        qf_attr at[6];
        int64_t strides[3], dil[3], pads[6];
        int na = qconv_attrs(cc, at, strides, dil, pads);
        op_run r;
        qf_status s = op_call(&r, "QLinearConv", 10, at, na, in, cc->bias ? 9 : 8, 1);
        bool ok = s == QF_OK && r.out[0].dtype == cc->yt && r.out[0].rank == q.rank;
        for (int i = 0; ok && i < q.rank; i++)
            ok = r.out[0].dims[i] == q.yd[i];
        int64_t bad = -1, yz = get_int(q.yzp, cc->yt, 0);
        int64_t hwo = q.ny / (cc->n * cc->m);
        int32_t lo, hi;
        qrange(cc->yt, &lo, &hi);
        for (int64_t i = 0; ok && i < q.ny; i++) {
            int64_t oc = (i / hwo) % cc->m;
            double mult = (double)q.xs * q.ws[cc->per_ch ? oc : 0] / q.ys;
            int64_t got = get_int(r.out[0].data, cc->yt, i);
            if (!q_match(got, (double)q.acc[i] * mult, yz, cc->yt)) bad = i, ok = false;
            if (got == lo || got == hi) saturated++;
        }
        /* ConvInteger on the same operands: the exact accumulators (less bias) */
        if (ok) {
            op_run r2;
            qf_tensor in2[4] = {in[0], in[3], in[2], in[5]};
            s = op_call(&r2, "ConvInteger", 10, at, na, in2, 4, 1);
            ok = s == QF_OK && r2.out[0].dtype == QF_DT_I32;
            for (int64_t i = 0; ok && i < q.ny; i++) {
                int64_t oc = (i / hwo) % cc->m;
                int64_t want = q.acc[i] - (q.bias ? q.bias[oc] : 0);
                if (((int32_t *)r2.out[0].data)[i] != want) bad = i, ok = false;
            }
            if (!ok && s) snprintf(r.err.msg, sizeof r.err.msg, "ConvInteger: %s", r2.err.msg);
            op_free(&r2);
        }
        CHECK_MSG(ok, "case %zu: status %d (%s), element %lld", ci, (int)s, r.err.msg,
                  (long long)bad);
        op_free(&r);
        qconv_free(&q);
    }
    CHECK(saturated > 20);
}

/* round-half-even ties in the requantization: 1x1 conv, scales 1, 1, 2 so
 * y = acc / 2 exactly; acc odd gives k + 0.5 */
static void test_qlinear_conv_ties(void) {
    int8_t x[8] = {1, 3, 5, 7, -1, -3, -5, 127};
    int8_t w = 1, xzp = 0, wzp = 0, yzp = 10;
    float xs = 1.0f, ws = 1.0f, ys = 2.0f;
    int8_t want[8] = {10, 12, 12, 14, 10, 8, 8, 74};
    int64_t xd[4] = {1, 1, 2, 4}, wd[4] = {1, 1, 1, 1};
    qf_tensor in[8] = {tens(QF_DT_I8, 4, xd, x),  scalar(QF_DT_F32, &xs), scalar(QF_DT_I8, &xzp),
                       tens(QF_DT_I8, 4, wd, &w), scalar(QF_DT_F32, &ws), scalar(QF_DT_I8, &wzp),
                       scalar(QF_DT_F32, &ys),    scalar(QF_DT_I8, &yzp)};
    op_run r;
    CHECK_RUN(op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1), &r);
    bool ok = memcmp(r.out[0].data, want, 8) == 0;
    op_free(&r);
    CHECK(ok);
    /* with an int32 bias of 2: (acc + 2) / 2, and y_zp 120 saturating */
    int32_t bias = 2;
    int8_t yzp2 = 120;
    int64_t bd[1] = {1};
    in[7] = scalar(QF_DT_I8, &yzp2);
    qf_tensor in9[9] = {
        in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], tens(QF_DT_I32, 1, bd, &bias)};
    int8_t want2[8] = {122, 122, 124, 124, 120, 120, 118, 127};
    CHECK_RUN(op_call(&r, "QLinearConv", 10, NULL, 0, in9, 9, 1), &r);
    ok = memcmp(r.out[0].data, want2, 8) == 0;
    op_free(&r);
    CHECK(ok);
}

/* the ONNX ConvInteger examples (x_zp 1, 2x2 kernel of ones) */
static void test_conv_integer_onnx(void) {
    uint8_t x[9] = {2, 3, 4, 5, 6, 7, 8, 9, 10}, w[4] = {1, 1, 1, 1}, xzp = 1;
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 1, 2, 2};
    qf_tensor in[3] = {tens(QF_DT_U8, 4, xd, x), tens(QF_DT_U8, 4, wd, w), scalar(QF_DT_U8, &xzp)};
    op_run r;
    CHECK_RUN(op_call(&r, "ConvInteger", 10, NULL, 0, in, 3, 1), &r);
    int32_t want[4] = {12, 16, 24, 28};
    bool ok = r.out[0].dims[2] == 2 && memcmp(r.out[0].data, want, sizeof want) == 0;
    op_free(&r);
    CHECK(ok);
    int64_t pads[4] = {1, 1, 1, 1};
    qf_attr at = a_ints("pads", pads, 4);
    CHECK_RUN(op_call(&r, "ConvInteger", 10, &at, 1, in, 3, 1), &r);
    int32_t want_p[16] = {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9};
    ok = r.out[0].dims[2] == 4 && memcmp(r.out[0].data, want_p, sizeof want_p) == 0;
    op_free(&r);
    CHECK(ok);
}

static void test_qconv_errors(void) {
    uint8_t x[2 * 4 * 25] = {0}, w[6 * 4 * 9] = {0}, zp = 0, wzp3[3] = {0};
    float sc = 1.0f, ws3[3] = {1, 1, 1};
    int64_t xd[4] = {2, 4, 5, 5}, wd[4] = {6, 4, 3, 3}, d3[1] = {3};
    op_run r;
    /* per-channel w_scale with 3 entries for 6 outputs */
    qf_tensor in[8] = {tens(QF_DT_U8, 4, xd, x), scalar(QF_DT_F32, &sc),      scalar(QF_DT_U8, &zp),
                       tens(QF_DT_U8, 4, wd, w), tens(QF_DT_F32, 1, d3, ws3), scalar(QF_DT_U8, &zp),
                       scalar(QF_DT_F32, &sc),   scalar(QF_DT_U8, &zp)};
    qf_status s = op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1);
    bool named = strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    CHECK(named);
    in[4] = scalar(QF_DT_F32, &sc);
    in[5] = tens(QF_DT_U8, 1, d3, wzp3);
    s = op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    in[5] = scalar(QF_DT_U8, &zp);
    CHECK_RUN(op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1), &r);
    op_free(&r);
    /* zero point of another type than x */
    int8_t zi = 0;
    in[2] = scalar(QF_DT_I8, &zi);
    s = op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
    in[2] = scalar(QF_DT_U8, &zp);
    /* float x */
    float xf[2 * 4 * 25] = {0};
    in[0] = tens(QF_DT_F32, 4, xd, xf);
    s = op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_UNSUPPORTED);
    in[0] = tens(QF_DT_U8, 4, xd, x);
    /* a required input omitted */
    in[6] = omitted();
    s = op_call(&r, "QLinearConv", 10, NULL, 0, in, 8, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_INVALID_ARG);
    /* int64 bias */
    in[6] = scalar(QF_DT_F32, &sc);
    int64_t b64[6] = {0}, bd[1] = {6};
    qf_tensor in9[9] = {
        in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], tens(QF_DT_I64, 1, bd, b64)};
    s = op_call(&r, "QLinearConv", 10, NULL, 0, in9, 9, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

/* ---- matrix products -------------------------------------------------------- */
typedef struct qmm_case {
    int ra, rb;
    int64_t ad[4], bd[4];
    qf_dtype at, bt, yt;
    int a_mode, b_mode; /* params: 0 per tensor, 1 vector, 2 batched [..., M, 1] / [..., 1, N] */
    int zp_mode;
} qmm_case;

/* clang-format off */
static const qmm_case qmm_cases[] = {
    {2, 2, {5, 7}, {7, 4}, QF_DT_U8, QF_DT_U8, QF_DT_U8, 0, 0, 0},
    {2, 2, {6, 9}, {9, 5}, QF_DT_I8, QF_DT_I8, QF_DT_I8, 1, 1, 1},
    {2, 2, {3, 40}, {40, 37}, QF_DT_U8, QF_DT_I8, QF_DT_U8, 0, 1, 2},
    {3, 3, {2, 4, 6}, {2, 6, 3}, QF_DT_I8, QF_DT_U8, QF_DT_I8, 2, 2, 0},
    {4, 3, {2, 1, 3, 5}, {4, 5, 6}, QF_DT_U8, QF_DT_U8, QF_DT_U8, 1, 0, 2},
    {3, 2, {3, 4, 5}, {5, 2}, QF_DT_U8, QF_DT_I8, QF_DT_I8, 2, 1, 1},
    {1, 2, {5}, {5, 3}, QF_DT_I8, QF_DT_I8, QF_DT_U8, 0, 1, 0},
    {2, 1, {4, 5}, {5}, QF_DT_U8, QF_DT_U8, QF_DT_U8, 1, 0, 0},
    {3, 4, {3, 2, 5}, {2, 1, 5, 3}, QF_DT_I8, QF_DT_U8, QF_DT_U8, 2, 2, 2},
};
/* clang-format on */

/* parameter shape for mode (row: for a, else b) */
static int param_shape(int mode, bool row, int r, const int64_t *od, int64_t *pd) {
    if (mode == 0) return 0;
    int64_t m = row ? (r == 1 ? 1 : od[r - 2]) : (r == 1 ? 1 : od[r - 1]);
    if (mode == 1) {
        pd[0] = m;
        return 1;
    }
    for (int i = 0; i < r - 2; i++)
        pd[i] = od[i];
    pd[r - 2] = row ? m : 1;
    pd[r - 1] = row ? 1 : m;
    return r;
}

static void test_qlinear_matmul_cases(void) {
    for (size_t ci = 0; ci < sizeof qmm_cases / sizeof qmm_cases[0]; ci++) {
        const qmm_case *cc = &qmm_cases[ci];
        int ra = cc->ra, rb = cc->rb;
        int64_t m = ra == 1 ? 1 : cc->ad[ra - 2], k = cc->ad[ra - 1];
        int64_t nn = rb == 1 ? 1 : cc->bd[rb - 1];
        /* output batch: numpy broadcast of the leading axes */
        int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0, br = QF_MAX(bra, brb);
        int64_t bdim[4];
        for (int i = 0; i < br; i++) {
            int ja = i - (br - bra), jb = i - (br - brb);
            int64_t da = ja >= 0 ? cc->ad[ja] : 1, db = jb >= 0 ? cc->bd[jb] : 1;
            bdim[i] = QF_MAX(da, db);
        }
        int64_t nbatch = prod(bdim, br);
        void *a = rand_q(cc->at, prod(cc->ad, ra)), *b = rand_q(cc->bt, prod(cc->bd, rb));
        int64_t pad[4], pbd[4];
        int pra = param_shape(cc->a_mode, true, ra, cc->ad, pad);
        int prb = param_shape(cc->b_mode, false, rb, cc->bd, pbd);
        int64_t npa = prod(pad, pra), npb = prod(pbd, prb);
        float *as = malloc(sizeof(float) * (size_t)npa), *bs = malloc(sizeof(float) * (size_t)npb);
        void *azp = malloc((size_t)npa), *bzp = malloc((size_t)npb);
        for (int64_t i = 0; i < npa; i++) {
            as[i] = frand(0.002f, 0.05f);
            put_int(azp, cc->at, i, pick_zp(cc->at, i ? 0 : cc->zp_mode));
        }
        for (int64_t i = 0; i < npb; i++) {
            bs[i] = frand(0.002f, 0.05f);
            put_int(bzp, cc->bt, i, pick_zp(cc->bt, i ? 0 : cc->zp_mode));
        }
        /* reference accumulators */
        int64_t ny = nbatch * m * nn;
        int64_t *acc = malloc(sizeof(int64_t) * (size_t)ny);
        double *mult = malloc(sizeof(double) * (size_t)ny);
        int64_t amax = 1;
        for (int64_t t = 0; t < nbatch; t++) {
            int64_t idx[4], rem = t;
            for (int i = br - 1; i >= 0; i--)
                idx[i] = rem % bdim[i], rem /= bdim[i];
            /* flat offsets of the broadcast operands and params */
            int64_t oa = 0, ob = 0, pa_b = 0, pb_b = 0;
            for (int i = 0; i < bra; i++) {
                int64_t ix = cc->ad[i] == 1 ? 0 : idx[i + (br - bra)];
                oa = oa * cc->ad[i] + ix;
                if (cc->a_mode == 2) pa_b = pa_b * pad[i] + (pad[i] == 1 ? 0 : ix);
            }
            for (int i = 0; i < brb; i++) {
                int64_t ix = cc->bd[i] == 1 ? 0 : idx[i + (br - brb)];
                ob = ob * cc->bd[i] + ix;
                if (cc->b_mode == 2) pb_b = pb_b * pbd[i] + (pbd[i] == 1 ? 0 : ix);
            }
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < nn; j++) {
                    int64_t pa = cc->a_mode == 0 ? 0 : cc->a_mode == 1 ? i : pa_b * m + i;
                    int64_t pb = cc->b_mode == 0 ? 0 : cc->b_mode == 1 ? j : pb_b * nn + j;
                    int64_t s = 0;
                    for (int64_t p = 0; p < k; p++)
                        s += (get_int(a, cc->at, oa * m * k + i * k + p) -
                              get_int(azp, cc->at, pa)) *
                             (get_int(b, cc->bt, ob * k * nn + p * nn + j) -
                              get_int(bzp, cc->bt, pb));
                    int64_t o = (t * m + i) * nn + j;
                    acc[o] = s;
                    mult[o] = (double)as[pa] * bs[pb];
                    amax = QF_MAX(amax, llabs(s));
                }
        }
        float ys = (float)((double)as[0] * bs[0] * (double)amax / 150.0);
        uint8_t yzp_buf[4];
        put_int(yzp_buf, cc->yt, 0, pick_zp(cc->yt, cc->zp_mode));
        int64_t yz = get_int(yzp_buf, cc->yt, 0);
        qf_tensor in[8] = {
            tens(cc->at, ra, cc->ad, a), tens(QF_DT_F32, pra, pad, as), tens(cc->at, pra, pad, azp),
            tens(cc->bt, rb, cc->bd, b), tens(QF_DT_F32, prb, pbd, bs), tens(cc->bt, prb, pbd, bzp),
            scalar(QF_DT_F32, &ys),      scalar(cc->yt, yzp_buf),
        };
        op_run r;
        qf_status s = op_call(&r, "QLinearMatMul", 10, NULL, 0, in, 8, 1);
        int out_rank = br + (ra > 1) + (rb > 1);
        bool ok = s == QF_OK && r.out[0].dtype == cc->yt && r.out[0].rank == out_rank &&
                  qf_tensor_numel(&r.out[0]) == ny;
        int64_t bad = -1;
        for (int64_t o = 0; ok && o < ny; o++)
            if (!q_match(get_int(r.out[0].data, cc->yt, o), (double)acc[o] * mult[o] / ys, yz,
                         cc->yt))
                bad = o, ok = false;
        /* MatMulInteger on the same operands: exact accumulators */
        if (ok) {
            op_run r2;
            qf_tensor in2[4] = {in[0], in[3], in[2], in[5]};
            s = op_call(&r2, "MatMulInteger", 10, NULL, 0, in2, 4, 1);
            ok = s == QF_OK && r2.out[0].dtype == QF_DT_I32 && r2.out[0].rank == out_rank;
            for (int64_t o = 0; ok && o < ny; o++)
                if (((int32_t *)r2.out[0].data)[o] != acc[o]) bad = o, ok = false;
            op_free(&r2);
        }
        CHECK_MSG(ok, "case %zu: status %d (%s), element %lld", ci, (int)s, r.err.msg,
                  (long long)bad);
        op_free(&r);
        free(a);
        free(b);
        free(as);
        free(bs);
        free(azp);
        free(bzp);
        free(acc);
        free(mult);
    }
}

static void test_matmul_integer_hand(void) {
    /* the ONNX example */
    uint8_t a[12] = {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0}, b[6] = {1, 4, 2, 5, 3, 6};
    uint8_t azp = 12, bzp = 0;
    int64_t ad[2] = {4, 3}, bd[2] = {3, 2}, one[1] = {1};
    qf_tensor in[4] = {tens(QF_DT_U8, 2, ad, a), tens(QF_DT_U8, 2, bd, b),
                       tens(QF_DT_U8, 1, one, &azp), tens(QF_DT_U8, 1, one, &bzp)};
    op_run r;
    CHECK_RUN(op_call(&r, "MatMulInteger", 10, NULL, 0, in, 4, 1), &r);
    int32_t want[8] = {-38, -83, -44, -98, -50, -113, -56, -128};
    bool ok = memcmp(r.out[0].data, want, sizeof want) == 0;
    op_free(&r);
    CHECK(ok);
    /* zero points omitted */
    CHECK_RUN(op_call(&r, "MatMulInteger", 10, NULL, 0, in, 2, 1), &r);
    int32_t want0[8] = {34, 97, 28, 82, 22, 67, 16, 52};
    ok = memcmp(r.out[0].data, want0, sizeof want0) == 0;
    op_free(&r);
    CHECK(ok);

    /* int32 accumulation wraps: 40000 * 255 * 255 = 2601000000 > 2^31 - 1 */
    int64_t k = 40000, ad2[2] = {1, 40000}, bd2[2] = {40000, 1};
    uint8_t *a2 = malloc((size_t)k), *b2 = malloc((size_t)k);
    memset(a2, 255, (size_t)k);
    memset(b2, 255, (size_t)k);
    qf_tensor in2[2] = {tens(QF_DT_U8, 2, ad2, a2), tens(QF_DT_U8, 2, bd2, b2)};
    qf_status s = op_call(&r, "MatMulInteger", 10, NULL, 0, in2, 2, 1);
    int32_t got = s == QF_OK ? *(int32_t *)r.out[0].data : 0;
    op_free(&r);
    free(a2);
    free(b2);
    CHECK_EQ_INT(s, QF_OK);
    CHECK_EQ_INT(got, (int64_t)2601000000LL - 4294967296LL);

    /* per-row a_zp of the wrong length */
    uint8_t zp3[3] = {0};
    int64_t d3[1] = {3};
    qf_tensor in3[4] = {in[0], in[1], tens(QF_DT_U8, 1, d3, zp3), omitted()};
    s = op_call(&r, "MatMulInteger", 10, NULL, 0, in3, 3, 1);
    bool named = strstr(r.err.msg, "nut") != NULL;
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
    CHECK(named);
    /* inner dimensions differ */
    int64_t bd3[2] = {2, 3};
    qf_tensor in4[2] = {in[0], tens(QF_DT_U8, 2, bd3, b)};
    s = op_call(&r, "MatMulInteger", 10, NULL, 0, in4, 2, 1);
    op_free(&r);
    CHECK_EQ_INT(s, QF_ERR_SHAPE);
}

/* the ONNX QLinearMatMul 2-D example */
static void test_qlinear_matmul_onnx(void) {
    uint8_t a[8] = {208, 236, 0, 238, 3, 214, 255, 29};
    uint8_t b[12] = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
    float as = 0.0066f, bs = 0.00705f, ys = 0.0107f;
    uint8_t azp = 113, bzp = 114, yzp = 118;
    int64_t ad[2] = {2, 4}, bd[2] = {4, 3}, one[1] = {1};
    qf_tensor in[8] = {tens(QF_DT_U8, 2, ad, a),     tens(QF_DT_F32, 1, one, &as),
                       tens(QF_DT_U8, 1, one, &azp), tens(QF_DT_U8, 2, bd, b),
                       tens(QF_DT_F32, 1, one, &bs), tens(QF_DT_U8, 1, one, &bzp),
                       tens(QF_DT_F32, 1, one, &ys), tens(QF_DT_U8, 1, one, &yzp)};
    op_run r;
    CHECK_RUN(op_call(&r, "QLinearMatMul", 10, NULL, 0, in, 8, 1), &r);
    uint8_t want[6] = {168, 115, 255, 1, 66, 151};
    bool ok = r.out[0].rank == 2 && memcmp(r.out[0].data, want, 6) == 0;
    op_free(&r);
    CHECK(ok);
}

QT_MAIN(QT_CASE(test_registry), QT_CASE(test_quantize_hand), QT_CASE(test_quantize_random),
        QT_CASE(test_dequantize), QT_CASE(test_dynamic_quantize), QT_CASE(test_qlinear_conv_cases),
        QT_CASE(test_qlinear_conv_ties), QT_CASE(test_conv_integer_onnx),
        QT_CASE(test_qconv_errors), QT_CASE(test_qlinear_matmul_cases),
        QT_CASE(test_matmul_integer_hand), QT_CASE(test_qlinear_matmul_onnx))
