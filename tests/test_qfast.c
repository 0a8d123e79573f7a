/* test_qfast.c - the portable fast int8 kernels (kernels/portable/qfast.h)
 * against the reference kernels, which are the specification.
 *
 *  - widening: qf_fast_widen_weights equals qf_ref_unpack_weights row by row
 *    and zero-pads each row to the block;
 *  - conv: every geometry case (1x1/3x3/5x5/7x7, stride 1/2/3, dilation
 *    1/2, asymmetric pads, groups 1/2/3, depthwise with multiplier 1/2/32,
 *    batch 1/3, pixel and channel counts below/at/above the tiles, reduction
 *    lengths 15/16/17...) times every numerics case (input zero point -128/0/
 *    127, 8/4/2-bit weights, fp32 and fixed requantization, tiny/normal/
 *    large scales, active clamps, with and without bias, biases that make
 *    the int32 accumulator wrap) must give the reference's bytes (memcmp),
 *    and so must a few hundred random small geometries;
 *    output guards and a scratch buffer of exactly the reported size at an
 *    odd address catch overruns; larger shapes cross the band boundaries;
 *  - gemm: M 1/3/4/5/64, K 1/15/16/17/33/301, N 1/2/3/5/17 and one
 *    multi-band shape, same numerics matrix;
 *  - bad parameters and infeasible shapes are refused;
 *  - the QConv/QGemm ops: through the session they give the bytes of direct
 *    reference calls; their scratch callbacks ask for the fast kernels'
 *    scratch; run without scratch, or with a weight tensor other than the
 *    one parse widened, still gives the reference's bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "ir/ops.h"
#include "kernels/dispatch.h"
#include "kernels/portable/qfast.h"
#include "kernels/x86/qx86.h"
#include "kernels/ref/qref.h"
#include "qtest.h"
#include "runtime/runtime.h"

/* ---- helpers ----------------------------------------------------------------- */

static uint32_t rng = 2024u;
static int32_t rnd(int32_t lo, int32_t hi) { /* inclusive */
    rng = rng * 1664525u + 1013904223u;
    return lo + (int32_t)((uint64_t)(rng >> 8) * (uint64_t)((int64_t)hi - lo + 1) >> 24);
}

#define GUARD 32
static char fail_msg[256];

typedef enum { SC_TINY, SC_NORMAL, SC_LARGE, SC_WRAP } scale_kind;
typedef enum { B_NONE, B_SMALL, B_EXTREME } bias_kind;

/* The numerics half of a test case. act_min > act_max means "relu": act_min
 * = out_zp, act_max = 127. */
typedef struct numerics {
    const char *name;
    int32_t in_zp, out_zp;
    int w_bits;
    int fixed;
    int per_channel;
    bias_kind bias;
    scale_kind scale;
    int32_t act_min, act_max;
    int asym; /* weight zero points per channel: -wmax, +wmax, then random */
} numerics;

/* clang-format off */
static const numerics num_cases[] = {
    {"w8 fp32 zp0",              0,    0,    8, 0, 1, B_SMALL,   SC_NORMAL, -128, 127, 0},
    {"w8 fixed zp-128",          -128, -3,   8, 1, 1, B_SMALL,   SC_NORMAL, -128, 127, 0},
    {"w8 fp32 zp127 no bias",    127,  10,   8, 0, 0, B_NONE,    SC_NORMAL, -128, 127, 0},
    {"w4 fp32 relu",             5,    -128, 4, 0, 1, B_SMALL,   SC_NORMAL, 1,    0, 0},
    {"w4 fixed clamp no bias",   -128, 0,    4, 1, 0, B_NONE,    SC_NORMAL, -20,  40, 0},
    {"w2 fp32 zp127",            127,  0,    2, 0, 1, B_SMALL,   SC_NORMAL, -128, 127, 0},
    {"w2 fixed per-tensor",      0,    5,    2, 1, 0, B_SMALL,   SC_NORMAL, -128, 127, 0},
    {"tiny scale fp32",          -7,   3,    8, 0, 1, B_SMALL,   SC_TINY,   -128, 127, 0},
    {"tiny scale fixed",         -7,   3,    8, 1, 1, B_SMALL,   SC_TINY,   -128, 127, 0},
    {"large scale fp32 clamp",   0,    0,    8, 0, 1, B_SMALL,   SC_LARGE,  -100, 90, 0},
    {"large scale fixed w4",     100,  -50,  4, 1, 1, B_SMALL,   SC_LARGE,  -128, 127, 0},
    {"wrapping bias fp32",       -128, 0,    8, 0, 1, B_EXTREME, SC_WRAP,   -128, 127, 0},
    {"wrapping bias fixed w4",   127,  1,    4, 1, 1, B_EXTREME, SC_WRAP,   -128, 127, 0},
};
/* Asymmetric weights (own table: the cases above keep their random draws) */
static const numerics asym_cases[] = {
    {"w8 asym fp32 zp0",         0,    2,    8, 0, 1, B_SMALL,   SC_NORMAL, -128, 127, 1},
    {"w8 asym fixed wrap",       127,  -1,   8, 1, 1, B_EXTREME, SC_WRAP,   -128, 127, 1},
    {"w4 asym fixed relu",       3,    -128, 4, 1, 1, B_NONE,    SC_NORMAL, 1,    0,   1},
    {"w2 asym fp32 per-tensor",  -9,   0,    2, 0, 0, B_SMALL,   SC_NORMAL, -128, 127, 1},
};
/* clang-format on */

/* Random weights in the restricted range, packed; bias and multipliers per
 * the numerics case for `oc` channels of reductions of length k. */
typedef struct layer {
    uint8_t *packed;
    int32_t *bias;  /* NULL for B_NONE */
    int32_t zp[64]; /* weight zero points (asym cases) */
    qf_ref_rescale mult[64];
    qf_ref_requant rq;
} layer;

static bool make_layer(const numerics *nc, int64_t oc, int64_t k, layer *L) {
    memset(L, 0, sizeof *L);
    if (oc > 64) return false;
    const int wmax = (1 << (nc->w_bits - 1)) - 1;
    int8_t *wv = malloc((size_t)(oc * k));
    L->packed = malloc(qf_ref_packed_row_bytes(k, nc->w_bits) * (size_t)oc);
    L->bias = malloc((size_t)oc * sizeof(int32_t));
    if (!wv || !L->packed || !L->bias) {
        free(wv);
        return false;
    }
    for (int64_t i = 0; i < oc * k; i++)
        wv[i] = (int8_t)rnd(-wmax, wmax);
    bool ok = qf_ref_pack_weights(wv, oc, k, nc->w_bits, L->packed, NULL) == QF_OK;
    if (nc->asym) /* per channel; a per-tensor case repeats channel 0's */
        for (int64_t c = 0; c < oc; c++)
            L->zp[c] = !nc->per_channel && c ? L->zp[0]
                       : c % 3 == 0          ? -wmax
                       : c % 3 == 1          ? wmax
                                             : rnd(-wmax, wmax);
    free(wv);
    /* about the standard deviation of the sum: "normal" scales map it to a
     * few dozen output steps, and small biases stay within it */
    const double spread = sqrt((double)k) * 74.0 * fmax(0.58 * wmax, 0.8);
    for (int64_t c = 0; c < oc; c++) {
        if (nc->bias == B_SMALL)
            L->bias[c] = rnd(-(int32_t)spread, (int32_t)spread);
        else /* within a few thousand of INT32_MAX or INT32_MIN: sums cross it */
            L->bias[c] = c % 2 ? INT32_MAX - rnd(0, 3000) : INT32_MIN + rnd(0, 3000);
    }
    if (nc->bias == B_NONE) {
        free(L->bias);
        L->bias = NULL;
    }
    double base = nc->scale == SC_TINY    ? 3e-6
                  : nc->scale == SC_LARGE ? 2.5
                  : nc->scale == SC_WRAP  ? 60.0 / 2147483648.0
                                          : 40.0 / spread;
    int n_mult = nc->per_channel ? (int)oc : 1;
    for (int c = 0; c < n_mult; c++)
        ok = ok && qf_ref_rescale_init(base * (0.6 + 0.2 * (c % 5)), &L->mult[c]) == QF_OK;
    L->rq.mode = nc->fixed ? QF_RQ_FIXED : QF_RQ_FP32;
    L->rq.mult = L->mult;
    L->rq.n_mult = n_mult;
    L->rq.out_zp = nc->out_zp;
    L->rq.act_min = nc->act_min > nc->act_max ? nc->out_zp : nc->act_min;
    L->rq.act_max = nc->act_min > nc->act_max ? 127 : nc->act_max;
    return ok;
}

static void free_layer(layer *L) {
    free(L->packed);
    free(L->bias);
}

static int8_t *random_i8(size_t n) {
    int8_t *p = malloc(n ? n : 1);
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = (int8_t)rnd(-128, 127);
    return p;
}

/* Compare `n` bytes of got (framed by GUARD bytes of 0x5A) with want.
 * Returns false with fail_msg set on a difference or a touched guard. */
static bool same_output(const char *what, const int8_t *want, const uint8_t *framed, size_t n) {
    for (size_t i = 0; i < GUARD; i++)
        if (framed[i] != 0x5A || framed[GUARD + n + i] != 0x5A) {
            snprintf(fail_msg, sizeof fail_msg, "%s: output guard overwritten", what);
            return false;
        }
    const int8_t *got = (const int8_t *)(framed + GUARD);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            snprintf(fail_msg, sizeof fail_msg, "%s: [%zu] fast %d, reference %d", what, i, got[i],
                     want[i]);
            return false;
        }
    return true;
}

static size_t count_distinct(const int8_t *v, size_t n) {
    bool seen[256] = {false};
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (!seen[v[i] + 128]) {
            seen[v[i] + 128] = true;
            d++;
        }
    return d;
}

/* ---- widening ---------------------------------------------------------------- */

static void test_widen_matches_unpack(void) {
    const int bits_list[3] = {8, 4, 2};
    for (int bi = 0; bi < 3; bi++) {
        for (int64_t k = 1; k <= 40; k++) {
            const int bits = bits_list[bi], wmax = (1 << (bits - 1)) - 1;
            enum { ROWS = 3 };
            int8_t v[ROWS * 40], unpacked[ROWS * 40];
            uint8_t packed[ROWS * 40];
            int8_t wide[ROWS * 48];
            for (int64_t i = 0; i < ROWS * k; i++)
                v[i] = (int8_t)rnd(-wmax, wmax);
            CHECK_OK(qf_ref_pack_weights(v, ROWS, k, bits, packed, NULL));
            CHECK_OK(qf_ref_unpack_weights(packed, ROWS, k, bits, unpacked, NULL));
            memset(wide, 0x77, sizeof wide);
            qf_fast_weights fw;
            CHECK_EQ_INT(qf_fast_weights_bytes(ROWS, k), ROWS * qf_fast_row_stride(k));
            CHECK_OK(qf_fast_widen_weights(packed, ROWS, k, bits, wide, &fw, NULL));
            const int32_t kp = (int32_t)((k + 15) / 16 * 16);
            CHECK(fw.data == wide && fw.rows == ROWS && fw.k == k && fw.kp == kp);
            for (int64_t r = 0; r < ROWS; r++) {
                CHECK(memcmp(wide + r * kp, unpacked + r * k, (size_t)k) == 0);
                for (int64_t t = k; t < kp; t++)
                    CHECK_EQ_INT(wide[r * kp + t], 0);
            }
            CHECK_EQ_INT(qf_fast_weights_in_place(k, bits), bits == 8 && k % 16 == 0);
        }
    }
    qf_fast_weights fw;
    uint8_t b[4] = {0};
    int8_t d[16];
    CHECK_EQ_INT(qf_fast_widen_weights(b, 1, 4, 3, d, &fw, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_fast_widen_weights(b, 0, 4, 8, d, &fw, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_fast_widen_weights(NULL, 1, 4, 8, d, &fw, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_fast_row_stride(0), 0);
    CHECK_EQ_INT(qf_fast_row_stride(INT32_MAX), 0);
    CHECK_EQ_INT(qf_fast_row_stride(16), 16);
    CHECK_EQ_INT(qf_fast_row_stride(17), 32);
}

/* ---- convolution --------------------------------------------------------------- */

typedef struct conv_geom {
    const char *name;
    int n, c, h, w, oc, kh, kw, group;
    int sh, sw, dh, dw, pt, pl, pb, pr;
} conv_geom;

/* clang-format off */
/* name, n c h w, oc kh kw group, sh sw dh dw, pt pl pb pr */
static const conv_geom conv_cases[] = {
    {"1x1 K16 (one block)",          1, 16, 5, 6,  8, 1, 1, 1,  1, 1, 1, 1,  0, 0, 0, 0},
    {"1x1 K15",                      1, 15, 4, 4,  5, 1, 1, 1,  1, 1, 1, 1,  0, 0, 0, 0},
    {"1x1 K17 batch 3",              3, 17, 3, 5,  7, 1, 1, 1,  1, 1, 1, 1,  0, 0, 0, 0},
    {"1x1 K33 npix 1",               1, 33, 1, 1,  4, 1, 1, 1,  1, 1, 1, 1,  0, 0, 0, 0},
    {"1x1 stride 2",                 1, 8,  7, 7,  6, 1, 1, 1,  2, 2, 1, 1,  0, 0, 0, 0},
    {"1x1 pad 1",                    1, 5,  4, 4,  3, 1, 1, 1,  1, 1, 1, 1,  1, 1, 1, 1},
    {"3x3 pad 1",                    1, 8,  6, 6,  9, 3, 3, 1,  1, 1, 1, 1,  1, 1, 1, 1},
    {"3x3 valid, one pixel",         1, 3,  3, 3,  4, 3, 3, 1,  1, 1, 1, 1,  0, 0, 0, 0},
    {"3x3 stride 2 asym pads",       1, 4,  9, 8,  6, 3, 3, 1,  2, 2, 1, 1,  0, 2, 1, 0},
    {"3x3 dilation 2 batch 2",       2, 3,  9, 9,  5, 3, 3, 1,  1, 1, 2, 2,  2, 2, 2, 2},
    {"5x5 pad 2",                    1, 2,  8, 7,  3, 5, 5, 1,  1, 1, 1, 1,  2, 2, 2, 2},
    {"7x7 stride 2 pad 3",           1, 3, 13, 12, 4, 7, 7, 1,  2, 2, 1, 1,  3, 3, 3, 3},
    {"5x3 strides 2,1 dils 1,2",     1, 3, 10, 9,  5, 5, 3, 1,  2, 1, 1, 2,  1, 0, 2, 3},
    {"kernel covers padded input",   1, 2,  3, 3,  3, 5, 5, 1,  1, 1, 1, 1,  1, 1, 1, 1},
    {"stride 3 > kernel",            1, 3, 10, 10, 4, 2, 2, 1,  3, 3, 1, 1,  0, 0, 0, 0},
    {"one input row",                2, 4,  1, 11, 3, 1, 3, 1,  1, 2, 1, 1,  0, 1, 0, 2},
    {"npix 35 (tile tail 3)",        1, 3,  5, 7,  5, 3, 3, 1,  1, 1, 1, 1,  1, 1, 1, 1},
    {"one output channel",           1, 4,  5, 5,  1, 3, 3, 1,  1, 1, 1, 1,  1, 1, 1, 1},
    {"three output channels",        3, 2,  4, 6,  3, 3, 3, 1,  1, 1, 1, 1,  0, 1, 1, 0},
    {"groups 2",                     1, 6,  6, 6,  4, 3, 3, 2,  1, 1, 1, 1,  1, 1, 1, 1},
    {"groups 2, 3 outputs each",     3, 4,  5, 5,  6, 3, 3, 2,  2, 1, 1, 1,  1, 0, 1, 1},
    {"groups 3 pointwise",           1, 9,  4, 4,  6, 1, 1, 3,  1, 1, 1, 1,  0, 0, 0, 0},
    {"depthwise 3x3",                1, 5,  7, 6,  5, 3, 3, 5,  1, 1, 1, 1,  1, 1, 1, 1},
    {"depthwise 3x3 s2 asym batch 3",3, 4,  9, 10, 4, 3, 3, 4,  2, 2, 1, 1,  0, 1, 1, 0},
    {"depthwise multiplier 2",       1, 3,  6, 5,  6, 3, 3, 3,  1, 1, 1, 1,  1, 1, 1, 1},
    {"depthwise mult 2 s2 dil 2",    2, 3,  9, 9,  6, 3, 3, 3,  2, 2, 2, 2,  2, 1, 0, 2},
    {"depthwise 5x5 out_w 21",       1, 2,  5, 21, 2, 5, 5, 2,  1, 1, 1, 1,  2, 2, 2, 2},
    {"depthwise 1x1",                1, 4,  3, 3,  4, 1, 1, 4,  1, 1, 1, 1,  0, 0, 0, 0},
    {"depthwise 7x7",                1, 3,  9, 9,  3, 7, 7, 3,  1, 1, 1, 1,  3, 3, 3, 3},
    {"depthwise stride 3 dil 2",     1, 2, 11, 12, 2, 3, 2, 2,  3, 3, 2, 2,  0, 3, 2, 0},
    {"depthwise dil 2 unit stride",  1, 3,  9, 10, 3, 3, 3, 3,  1, 1, 2, 2,  2, 1, 2, 3},
    {"depthwise strides 1,2",        2, 2,  7, 9,  4, 3, 3, 2,  1, 2, 1, 1,  1, 1, 1, 1},
    {"depthwise strides 2,1 dil 2,1",1, 2,  9, 7,  2, 3, 5, 2,  2, 1, 2, 1,  1, 2, 0, 2},
    {"one input channel -> 32",      1, 1,  6, 6, 32, 3, 3, 1,  1, 1, 1, 1,  1, 1, 1, 1},
};
/* clang-format on */

static qf_ref_conv_params conv_params(const conv_geom *g, const layer *L, const numerics *nc) {
    qf_ref_conv_params p = {.batch = g->n,
                            .in_c = g->c,
                            .in_h = g->h,
                            .in_w = g->w,
                            .out_c = g->oc,
                            .out_h = qf_ref_conv_out_size(g->h, g->kh, g->sh, g->dh, g->pt, g->pb),
                            .out_w = qf_ref_conv_out_size(g->w, g->kw, g->sw, g->dw, g->pl, g->pr),
                            .k_h = g->kh,
                            .k_w = g->kw,
                            .stride_h = g->sh,
                            .stride_w = g->sw,
                            .dil_h = g->dh,
                            .dil_w = g->dw,
                            .pad_top = g->pt,
                            .pad_left = g->pl,
                            .pad_bottom = g->pb,
                            .pad_right = g->pr,
                            .groups = g->group,
                            .in_zp = nc->in_zp,
                            .w_bits = nc->w_bits,
                            .rq = L->rq,
                            .w_zp = nc->asym ? L->zp : NULL};
    return p;
}

/* Run the reference and the fast kernel on the same data; false with
 * fail_msg on any difference. *distinct: distinct output values. */
static bool conv_pair(const char *what, const qf_ref_conv_params *p, const int8_t *x,
                      const layer *L, size_t *distinct) {
    const int64_t k = (int64_t)(p->in_c / p->groups) * p->k_h * p->k_w;
    const size_t n_out = (size_t)p->batch * p->out_c * p->out_h * p->out_w;
    const size_t need = qf_fast_conv2d_s8_scratch_size(p);
    int8_t *want = malloc(n_out);
    uint8_t *framed = malloc(n_out + 2 * GUARD);
    uint8_t *scr = malloc(need + 1 + GUARD);
    int8_t *wide = malloc(qf_fast_weights_bytes(p->out_c, k));
    bool ok = false;
    qf_err e = {0};
    qf_fast_weights fw;
    snprintf(fail_msg, sizeof fail_msg, "%s: setup failed", what);
    if (need == 0 || !want || !framed || !scr || !wide) goto out;
    if (qf_ref_conv2d_s8(p, x, L->packed, L->bias, want, &e) != QF_OK ||
        qf_fast_widen_weights(L->packed, p->out_c, k, p->w_bits, wide, &fw, &e) != QF_OK)
        goto out;
    fw.zp = p->w_zp;
    memset(framed, 0x5A, n_out + 2 * GUARD);
    memset(scr, 0xA5, need + 1 + GUARD);
    /* exactly the reported size, at an odd address */
    qf_status st =
        qf_fast_conv2d_s8(p, x, &fw, L->bias, (int8_t *)framed + GUARD, scr + 1, need, &e);
    if (st != QF_OK) {
        snprintf(fail_msg, sizeof fail_msg, "%s: status %d: %s", what, (int)st, e.msg);
        goto out;
    }
    for (size_t i = 0; i < GUARD; i++)
        if (scr[1 + need + i] != 0xA5) {
            snprintf(fail_msg, sizeof fail_msg, "%s: scratch overrun", what);
            goto out;
        }
    ok = same_output(what, want, framed, n_out);
    *distinct = count_distinct(want, n_out);
out:
    free(want);
    free(framed);
    free(scr);
    free(wide);
    return ok;
}

static void run_conv_case(const conv_geom *g, const numerics *nc, bool check_spread) {
    char what[160];
    snprintf(what, sizeof what, "%s / %s", g->name, nc->name);
    const int64_t k = (int64_t)(g->c / g->group) * g->kh * g->kw;
    layer L;
    bool made = make_layer(nc, g->oc, k, &L);
    qf_ref_conv_params p = conv_params(g, &L, nc);
    const size_t n_in = (size_t)g->n * g->c * g->h * g->w;
    int8_t *x = random_i8(n_in);
    size_t distinct = 0;
    bool ok = made && x && p.out_h > 0 && p.out_w > 0 && conv_pair(what, &p, x, &L, &distinct);
    free(x);
    free_layer(&L);
    CHECK_MSG(made && ok, "%s", made ? fail_msg : "layer setup");
    /* a constant output would make the comparison meaningless */
    const size_t n_out = (size_t)p.batch * p.out_c * p.out_h * p.out_w;
    /* (a 1-tap layer may draw an all-zero weight) */
    if (check_spread && nc->scale == SC_NORMAL && n_out >= 16 && k >= 4)
        CHECK_MSG(distinct >= 2, "%s: constant output", what);
}

static void test_conv_matrix(void) {
    for (size_t gi = 0; gi < QF_ARRAY_LEN(conv_cases); gi++)
        for (size_t ni = 0; ni < QF_ARRAY_LEN(num_cases); ni++) {
            run_conv_case(&conv_cases[gi], &num_cases[ni], true);
            if (qt_failed_flag) return;
        }
}

/* Asymmetric weights: the general and gemm kernels subtract zp times each
 * output's input sum, the depthwise one multiplies by w - zp. */
static void test_conv_asym(void) {
    for (size_t gi = 0; gi < QF_ARRAY_LEN(conv_cases); gi++)
        for (size_t ni = 0; ni < QF_ARRAY_LEN(asym_cases); ni++) {
            run_conv_case(&conv_cases[gi], &asym_cases[ni], true);
            if (qt_failed_flag) return;
        }
    static const conv_geom big[] = {
        {"im2row K1600, 2 bands", 1, 64, 12, 12, 3, 5, 5, 1, 1, 1, 1, 1, 2, 2, 2, 2},
        {"depthwise 300x500, 2 bands", 1, 1, 300, 500, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    };
    for (size_t gi = 0; gi < QF_ARRAY_LEN(big); gi++) {
        run_conv_case(&big[gi], &asym_cases[0], true);
        if (qt_failed_flag) return;
    }
}

/* Random small geometries (fixed seed) beyond the hand-picked table. */
static void test_conv_random(void) {
    for (int i = 0; i < 300; i++) {
        conv_geom g = {.name = "random"};
        g.n = rnd(1, 2);
        g.group = rnd(0, 2) == 0 ? 1 : rnd(1, 4);
        const int cpg = rnd(0, 2) == 0 ? 1 : rnd(1, 6);
        g.c = g.group * cpg;
        g.oc = g.group * rnd(1, 3);
        g.kh = rnd(1, 5);
        g.kw = rnd(1, 5);
        g.sh = rnd(1, 3);
        g.sw = rnd(1, 3);
        g.dh = rnd(1, 2);
        g.dw = rnd(1, 2);
        g.pt = rnd(0, 3);
        g.pl = rnd(0, 3);
        g.pb = rnd(0, 3);
        g.pr = rnd(0, 3);
        g.h = rnd(1, 12);
        g.w = rnd(1, 12);
        if (qf_ref_conv_out_size(g.h, g.kh, g.sh, g.dh, g.pt, g.pb) < 1 ||
            qf_ref_conv_out_size(g.w, g.kw, g.sw, g.dw, g.pl, g.pr) < 1)
            continue;
        run_conv_case(&g, &num_cases[(size_t)i % QF_ARRAY_LEN(num_cases)], false);
        if (qt_failed_flag) {
            fprintf(stderr,
                    "  random case %d: n %d c %d %dx%d oc %d k %dx%d group %d s %d,%d "
                    "d %d,%d pads %d,%d,%d,%d\n",
                    i, g.n, g.c, g.h, g.w, g.oc, g.kh, g.kw, g.group, g.sh, g.sw, g.dh, g.dw, g.pt,
                    g.pl, g.pb, g.pr);
            return;
        }
    }
}

/* Shapes whose packed band or padded plane spans several bands. */
static void test_conv_bands(void) {
    /* clang-format off */
    static const conv_geom big[] = {
        {"im2row K1600, 2 bands",       1, 64, 12, 12, 3, 5, 5, 1,  1, 1, 1, 1,  2, 2, 2, 2},
        {"pointwise K256, 2 bands",     1, 256, 24, 24, 3, 1, 1, 1, 1, 1, 1, 1,  0, 0, 0, 0},
        {"depthwise 300x500, 2 bands",  1, 1, 300, 500, 1, 3, 3, 1, 1, 1, 1, 1,  1, 1, 1, 1},
        {"depthwise s2 600x400",        1, 1, 600, 400, 1, 3, 3, 1, 2, 2, 1, 1,  1, 0, 1, 1},
    };
    /* clang-format on */
    for (size_t gi = 0; gi < QF_ARRAY_LEN(big); gi++) {
        run_conv_case(&big[gi], &num_cases[0], true);
        if (qt_failed_flag) return;
        run_conv_case(&big[gi], &num_cases[4], true);
        if (qt_failed_flag) return;
    }
}

/* ---- fully connected ------------------------------------------------------------ */

static bool gemm_pair(const char *what, const qf_ref_gemm_params *p, const int8_t *x,
                      const layer *L, size_t *distinct) {
    const size_t n_out = (size_t)p->m * p->n;
    const size_t need = qf_fast_gemm_s8_scratch_size(p);
    int8_t *want = malloc(n_out);
    uint8_t *framed = malloc(n_out + 2 * GUARD);
    uint8_t *scr = malloc(need + 1 + GUARD);
    int8_t *wide = malloc(qf_fast_weights_bytes(p->n, p->k));
    bool ok = false;
    qf_err e = {0};
    qf_fast_weights fw;
    snprintf(fail_msg, sizeof fail_msg, "%s: setup failed", what);
    if (need == 0 || !want || !framed || !scr || !wide) goto out;
    if (qf_ref_gemm_s8(p, x, L->packed, L->bias, want, &e) != QF_OK ||
        qf_fast_widen_weights(L->packed, p->n, p->k, p->w_bits, wide, &fw, &e) != QF_OK)
        goto out;
    fw.zp = p->w_zp;
    memset(framed, 0x5A, n_out + 2 * GUARD);
    memset(scr, 0xA5, need + 1 + GUARD);
    qf_status st = qf_fast_gemm_s8(p, x, &fw, L->bias, (int8_t *)framed + GUARD, scr + 1, need, &e);
    if (st != QF_OK) {
        snprintf(fail_msg, sizeof fail_msg, "%s: status %d: %s", what, (int)st, e.msg);
        goto out;
    }
    for (size_t i = 0; i < GUARD; i++)
        if (scr[1 + need + i] != 0xA5) {
            snprintf(fail_msg, sizeof fail_msg, "%s: scratch overrun", what);
            goto out;
        }
    ok = same_output(what, want, framed, n_out);
    *distinct = count_distinct(want, n_out);
out:
    free(want);
    free(framed);
    free(scr);
    free(wide);
    return ok;
}

static void run_gemm_case(int32_t m, int32_t k, int32_t n, const numerics *nc) {
    char what[160];
    snprintf(what, sizeof what, "gemm %dx%dx%d / %s", (int)m, (int)k, (int)n, nc->name);
    layer L;
    bool made = make_layer(nc, n, k, &L);
    qf_ref_gemm_params p = {.m = m,
                            .n = n,
                            .k = k,
                            .in_zp = nc->in_zp,
                            .w_bits = nc->w_bits,
                            .rq = L.rq,
                            .w_zp = nc->asym ? L.zp : NULL};
    int8_t *x = random_i8((size_t)m * k);
    size_t distinct = 0;
    bool ok = made && x && gemm_pair(what, &p, x, &L, &distinct);
    free(x);
    free_layer(&L);
    CHECK_MSG(made && ok, "%s", made ? fail_msg : "layer setup");
    if (nc->scale == SC_NORMAL && (size_t)m * n >= 16 && k >= 4)
        CHECK_MSG(distinct >= 2, "%s: constant output", what);
}

static void test_gemm_matrix(void) {
    static const int32_t ms[] = {1, 3, 4, 5, 64}, ks[] = {1, 15, 16, 17, 33, 301},
                         ns[] = {1, 2, 3, 5, 17};
    for (size_t a = 0; a < QF_ARRAY_LEN(ms); a++)
        for (size_t b = 0; b < QF_ARRAY_LEN(ks); b++)
            for (size_t c = 0; c < QF_ARRAY_LEN(ns); c++)
                for (size_t ni = 0; ni < QF_ARRAY_LEN(num_cases); ni++) {
                    run_gemm_case(ms[a], ks[b], ns[c], &num_cases[ni]);
                    if (qt_failed_flag) return;
                }
    /* several bands of packed rows (about 31 rows of K 4100 per band) */
    run_gemm_case(70, 4100, 3, &num_cases[1]);
}

static void test_gemm_asym(void) {
    static const int32_t ms[] = {1, 4, 5}, ks[] = {1, 16, 17, 301}, ns[] = {1, 3, 17};
    for (size_t a = 0; a < QF_ARRAY_LEN(ms); a++)
        for (size_t b = 0; b < QF_ARRAY_LEN(ks); b++)
            for (size_t c = 0; c < QF_ARRAY_LEN(ns); c++)
                for (size_t ni = 0; ni < QF_ARRAY_LEN(asym_cases); ni++) {
                    run_gemm_case(ms[a], ks[b], ns[c], &asym_cases[ni]);
                    if (qt_failed_flag) return;
                }
    run_gemm_case(70, 4100, 3, &asym_cases[1]);
}

/* ---- refusals ------------------------------------------------------------------ */

static void test_bad_arguments(void) {
    const numerics *nc = &num_cases[0];
    const conv_geom *g = &conv_cases[6]; /* 3x3 pad 1, 8 -> 9 */
    layer L;
    CHECK(make_layer(nc, g->oc, 72, &L));
    qf_ref_conv_params p = conv_params(g, &L, nc);
    int8_t x[8 * 36], y[9 * 36], wide[9 * 80];
    memset(x, 1, sizeof x);
    qf_fast_weights fw;
    qf_err e;
    qf_status s = qf_fast_widen_weights(L.packed, 9, 72, 8, wide, &fw, NULL);
    const size_t need = qf_fast_conv2d_s8_scratch_size(&p);
    void *scr = malloc(need);
    memset(y, 0x11, sizeof y);
    qf_status small = qf_fast_conv2d_s8(&p, x, &fw, L.bias, y, scr, need - 1, &e);
    bool untouched = y[0] == 0x11 && y[sizeof y - 1] == 0x11;
    qf_status null_scr = qf_fast_conv2d_s8(&p, x, &fw, L.bias, y, NULL, need, &e);
    qf_fast_weights wrong = fw;
    wrong.k = 71;
    qf_status bad_w = qf_fast_conv2d_s8(&p, x, &wrong, L.bias, y, scr, need, &e);
    qf_ref_conv_params q = p;
    q.out_w = p.out_w + 1;
    size_t bad_geom = qf_fast_conv2d_s8_scratch_size(&q);
    qf_status bad_geom_run = qf_fast_conv2d_s8(&q, x, &fw, L.bias, y, scr, need, &e);
    q = p;
    q.in_zp = 128;
    qf_status bad_zp = qf_fast_conv2d_s8(&q, x, &fw, L.bias, y, scr, need, &e);
    q = p;
    q.rq.act_min = 5;
    q.rq.act_max = 4;
    qf_status bad_act = qf_fast_conv2d_s8(&q, x, &fw, L.bias, y, scr, need, &e);
    q = p;
    q.groups = 3; /* does not divide 8 */
    size_t bad_groups = qf_fast_conv2d_s8_scratch_size(&q);
    free(scr);
    free_layer(&L);
    CHECK_OK(s);
    CHECK(need > 0);
    CHECK_EQ_INT(small, QF_ERR_INVALID_ARG);
    CHECK(untouched);
    CHECK_EQ_INT(null_scr, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(bad_w, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(bad_geom, 0);
    CHECK_EQ_INT(bad_geom_run, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(bad_zp, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(bad_act, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(bad_groups, 0);

    /* infeasible: 4 packed rows of a 2^21-long reduction exceed the 8 MiB cap;
     * a depthwise row of 2^23 pixels likewise (no allocation needed to ask) */
    qf_ref_conv_params h = p;
    h.in_c = 1 << 21;
    h.k_h = h.k_w = 1;
    h.in_h = h.in_w = h.out_h = h.out_w = 2;
    h.pad_top = h.pad_left = h.pad_bottom = h.pad_right = 0;
    h.out_c = 1;
    h.rq.n_mult = 1;
    CHECK_EQ_INT(qf_fast_conv2d_s8_scratch_size(&h), 0);
    h.in_c = h.out_c = h.groups = 1;
    h.in_w = h.out_w = 1 << 23;
    CHECK_EQ_INT(qf_fast_conv2d_s8_scratch_size(&h), 0);
    qf_ref_gemm_params gp = {.m = 5, .n = 1, .k = 1 << 21, .w_bits = 8, .rq = p.rq};
    gp.rq.n_mult = 1;
    CHECK_EQ_INT(qf_fast_gemm_s8_scratch_size(&gp), 0);
    gp.k = 0;
    CHECK_EQ_INT(qf_fast_gemm_s8_scratch_size(&gp), 0);
    gp.k = 20;
    int8_t gx[100], gy[5], gw[32 * 1];
    memset(gx, 0, sizeof gx);
    memset(gw, 0, sizeof gw);
    qf_fast_weights gfw = {.data = gw, .rows = 1, .k = 20, .kp = 32};
    size_t gneed = qf_fast_gemm_s8_scratch_size(&gp);
    CHECK(gneed > 0);
    void *gscr = malloc(gneed);
    qf_status g_ok = qf_fast_gemm_s8(&gp, gx, &gfw, NULL, gy, gscr, gneed, &e);
    qf_status g_small = qf_fast_gemm_s8(&gp, gx, &gfw, NULL, gy, gscr, gneed - 1, &e);
    gfw.kp = 20;
    qf_status g_stride = qf_fast_gemm_s8(&gp, gx, &gfw, NULL, gy, gscr, gneed, &e);
    free(gscr);
    CHECK_OK(g_ok);
    CHECK_EQ_INT(g_small, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(g_stride, QF_ERR_INVALID_ARG);
}

/* ---- the ops: session and run plumbing ---------------------------------------------- */

#define A_INT(nm, v) ((qf_attr){.name = (nm), .type = QF_ATTR_INT, .i = (v)})
#define A_INTS(nm, arr, cnt)                                                                       \
    ((qf_attr){.name = (nm), .type = QF_ATTR_INTS, .ints = (arr), .n = (cnt)})
#define A_STR(nm, str) ((qf_attr){.name = (nm), .type = QF_ATTR_STRING, .s = (str)})

static int add_act(qf_graph *g, const char *name, float scale, int32_t zp) {
    int v = qf_graph_add_value(g, name, QF_DT_I8, -1, NULL);
    if (v >= 0) qf_value_set_qparams(g, v, 8, -1, 1, &scale, &zp);
    return v;
}

static int add_const(qf_graph *g, const char *name, qf_dtype dt, int rank, const int64_t *dims,
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

/* One QConv (gemm == false) or QGemm node over x. Scales give per-channel
 * multipliers M[c] = in_s * w_s[c] / out_s, which the test recomputes. */
typedef struct op_case {
    const char *name;
    bool gemm;
    int n, c, h, w, oc, kh, kw, group, pad; /* gemm: x [n, c], weights [oc, c] */
    int w_bits;
    bool bias, fixed;
} op_case;

/* clang-format off */
static const op_case op_cases[] = {
    {"QConv 3x3 K144 w8 (in place)", false, 2, 16, 6, 5, 6, 3, 3, 1, 1, 8, true, false},
    {"QConv 3x3 K27 w8 (widened copy)", false, 1, 3, 7, 7, 5, 3, 3, 1, 1, 8, true, true},
    {"QConv 1x1 K12 w4", false, 3, 12, 4, 4, 7, 1, 1, 1, 0, 4, false, false},
    {"QConv depthwise w2", false, 1, 6, 5, 6, 6, 3, 3, 6, 1, 2, true, false},
    {"QConv grouped w4 fixed", false, 1, 8, 5, 5, 4, 3, 3, 2, 1, 4, true, true},
    {"QGemm K33 w8", true,  3, 33, 0, 0, 5, 0, 0, 0, 0, 8, true, false},
    {"QGemm K32 w8 in place", true,  1, 32, 0, 0, 7, 0, 0, 0, 0, 8, false, true},
    {"QGemm K17 w2", true,  4, 17, 0, 0, 3, 0, 0, 0, 0, 2, true, false},
};
/* clang-format on */

typedef struct op_fixture {
    qf_graph *g;
    int vx, vw, vb, vy;
    int8_t *x, *wv;
    uint8_t *packed;
    int32_t *bias;
    float wscale[16];
    float in_s, out_s;
    int32_t in_z, out_z;
    int64_t k;
    size_t n_in, n_out;
    int64_t xdims[4];
    int xrank;
} op_fixture;

static void free_fixture(op_fixture *f) {
    qf_graph_free(f->g);
    free(f->x);
    free(f->wv);
    free(f->packed);
    free(f->bias);
}

static bool build_op(const op_case *c, op_fixture *f) {
    memset(f, 0, sizeof *f);
    const int cpg = c->gemm ? c->c : c->c / c->group;
    f->k = c->gemm ? c->c : (int64_t)cpg * c->kh * c->kw;
    const int wmax = (1 << (c->w_bits - 1)) - 1;
    f->in_s = 0.05f;
    f->in_z = -3;
    f->out_z = 4;
    /* M of channel 0 maps the typical sum to about 25 output steps */
    const float spread = sqrtf((float)f->k) * 74.0f * 0.58f * (float)wmax;
    f->out_s = f->in_s * 0.01f * spread / 25.0f;
    f->xrank = c->gemm ? 2 : 4;
    f->xdims[0] = c->n;
    f->xdims[1] = c->c;
    f->xdims[2] = c->h;
    f->xdims[3] = c->w;
    f->n_in = (size_t)c->n * c->c * (c->gemm ? 1 : c->h * c->w);
    f->x = random_i8(f->n_in);
    f->wv = malloc((size_t)(c->oc * f->k));
    f->packed = malloc(qf_ref_packed_row_bytes(f->k, c->w_bits) * (size_t)c->oc);
    f->bias = malloc((size_t)c->oc * sizeof(int32_t));
    if (!f->x || !f->wv || !f->packed || !f->bias || c->oc > 16) return false;
    for (int64_t i = 0; i < c->oc * f->k; i++)
        f->wv[i] = (int8_t)rnd(-wmax, wmax);
    for (int o = 0; o < c->oc; o++) {
        f->bias[o] = rnd(-(int32_t)spread, (int32_t)spread);
        f->wscale[o] = 0.01f * (float)(1 + o % 3);
    }
    if (qf_ref_pack_weights(f->wv, c->oc, f->k, c->w_bits, f->packed, NULL)) return false;

    qf_graph *g = f->g = qf_graph_create();
    if (!g) return false;
    f->vx = add_act(g, "x", f->in_s, f->in_z);
    qf_graph_add_input(g, f->vx);
    int64_t wshape[4] = {c->oc, cpg, c->kh, c->kw};
    const int wrank = c->gemm ? 2 : 4;
    if (c->gemm) wshape[1] = c->c;
    int64_t pdims[2] = {c->oc, (int64_t)qf_ref_packed_row_bytes(f->k, c->w_bits)};
    f->vw = c->w_bits == 8 ? add_const(g, "w", QF_DT_I8, wrank, wshape, f->wv)
                           : add_const(g, "w", QF_DT_U8, 2, pdims, f->packed);
    int32_t zeros[16] = {0};
    qf_value_set_qparams(g, f->vw, c->w_bits, 0, c->oc, f->wscale, zeros);
    int64_t bdims[1] = {c->oc};
    f->vb = c->bias ? add_const(g, "b", QF_DT_I32, 1, bdims, f->bias) : -1;
    f->vy = add_act(g, "y", f->out_s, f->out_z);
    qf_graph_add_output(g, f->vy);
    static int64_t pads[4], strides[2] = {1, 1};
    for (int i = 0; i < 4; i++)
        pads[i] = c->pad;
    qf_attr at[8];
    int na = 0;
    if (!c->gemm) {
        at[na++] = A_INTS("pads", pads, 4);
        at[na++] = A_INTS("strides", strides, 2);
        at[na++] = A_INT("group", c->group);
    }
    at[na++] = A_INT("w_bits", c->w_bits);
    if (c->w_bits != 8) at[na++] = A_INTS("w_shape", wshape, wrank);
    if (c->fixed) at[na++] = A_STR("requant", "fixed");
    int ins[3] = {f->vx, f->vw, f->vb};
    int out = f->vy;
    if (qf_graph_add_node(g, "layer", c->gemm ? "QGemm" : "QConv", "qforge", 1, ins,
                          c->bias ? 3 : 2, &out, 1, at, na) < 0)
        return false;
    qf_err e;
    return f->vx >= 0 && f->vw >= 0 && f->vy >= 0 && qf_graph_toposort(g, &e) == QF_OK &&
           qf_graph_parse_ops(g, &e) == QF_OK;
}

/* The reference kernel on the fixture's data with weights `packed`. */
static qf_status op_reference(const op_case *c, const op_fixture *f, const uint8_t *packed,
                              int8_t *want) {
    qf_ref_rescale mult[16];
    qf_status s = qf_ref_rescale_channels(f->in_s, f->wscale, c->oc, f->out_s, mult, NULL);
    if (s) return s;
    qf_ref_requant rq = {.mode = c->fixed ? QF_RQ_FIXED : QF_RQ_FP32,
                         .mult = mult,
                         .n_mult = c->oc,
                         .out_zp = f->out_z,
                         .act_min = -128,
                         .act_max = 127};
    const int32_t *bias = c->bias ? f->bias : NULL;
    if (c->gemm) {
        qf_ref_gemm_params p = {
            .m = c->n, .n = c->oc, .k = c->c, .in_zp = f->in_z, .w_bits = c->w_bits, .rq = rq};
        return qf_ref_gemm_s8(&p, f->x, packed, bias, want, NULL);
    }
    qf_ref_conv_params p = {.batch = c->n,
                            .in_c = c->c,
                            .in_h = c->h,
                            .in_w = c->w,
                            .out_c = c->oc,
                            .out_h = c->h + 2 * c->pad - c->kh + 1,
                            .out_w = c->w + 2 * c->pad - c->kw + 1,
                            .k_h = c->kh,
                            .k_w = c->kw,
                            .stride_h = 1,
                            .stride_w = 1,
                            .dil_h = 1,
                            .dil_w = 1,
                            .pad_top = c->pad,
                            .pad_left = c->pad,
                            .pad_bottom = c->pad,
                            .pad_right = c->pad,
                            .groups = c->group,
                            .in_zp = f->in_z,
                            .w_bits = c->w_bits,
                            .rq = rq};
    return qf_ref_conv2d_s8(&p, f->x, packed, bias, want, NULL);
}

/* Through qf_session_run: the bytes of the reference kernel. */
static void test_ops_session(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(op_cases); ci++) {
        const op_case *c = &op_cases[ci];
        op_fixture f;
        bool built = build_op(c, &f);
        qf_graph *g = f.g;
        f.g = NULL; /* the model owns it from here */
        qf_model *m = NULL;
        qf_session *s = NULL;
        qf_err e = {0};
        qf_status st = built ? qf_model_from_graph(g, "qfast.qfm", &m, &e) : QF_ERR_INTERNAL;
        if (st) qf_graph_free(g);
        if (!st) st = qf_session_create(m, NULL, &s, &e);
        qf_tensor xt, yt;
        memset(&xt, 0, sizeof xt);
        xt.dtype = QF_DT_I8;
        xt.rank = f.xrank;
        for (int i = 0; i < f.xrank; i++)
            xt.dims[i] = f.xdims[i];
        xt.data = f.x;
        int8_t got[2048], want[2048];
        size_t n_out = 0;
        if (!st) st = qf_session_run(s, &xt, 1, &yt, 1, &e);
        if (!st) {
            n_out = (size_t)qf_tensor_numel(&yt);
            if (n_out > sizeof got)
                st = QF_ERR_INTERNAL;
            else
                memcpy(got, yt.data, n_out);
        }
        qf_status rs = st ? st : op_reference(c, &f, f.packed, want);
        qf_session_free(s);
        qf_model_free(m);
        free_fixture(&f);
        CHECK_MSG(built && st == QF_OK, "%s: %s", c->name, e.msg);
        CHECK_OK(rs);
        CHECK_MSG(memcmp(got, want, n_out) == 0, "%s: session output differs", c->name);
        CHECK_MSG(n_out < 8 || count_distinct(want, n_out) >= 3, "%s: degenerate", c->name);
    }
}

/* The op callbacks directly: scratch asks for the fast kernel's size; run
 * with and without scratch, and with a weight tensor parse did not see. */
static void test_ops_run_paths(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(op_cases); ci++) {
        const op_case *c = &op_cases[ci];
        op_fixture f;
        bool built = build_op(c, &f);
        const qf_node *n = built ? &f.g->nodes[0] : NULL;
        const qf_op_def *def = n ? qf_op_get(n->op) : NULL;
        qf_tensor in[3], out[1];
        memset(in, 0, sizeof in);
        memset(out, 0, sizeof out);
        qf_err e = {0};
        qf_status st = def && def->scratch ? QF_OK : QF_ERR_INTERNAL;
        size_t scr_bytes = 0, want_bytes = 1;
        int8_t got_fast[2048], got_ref[2048], got_swapped[2048], want[2048], want2[2048];
        size_t n_out = 0;
        uint8_t *other = NULL;
        int8_t *other_wv = NULL;
        void *scr = NULL;
        const qf_exec_ctx ctx = {.num_threads = 1};
        if (!st) {
            in[0].dtype = QF_DT_I8;
            in[0].rank = f.xrank;
            for (int i = 0; i < f.xrank; i++)
                in[0].dims[i] = f.xdims[i];
            in[0].data = f.x;
            in[1] = qf_value_tensor(&f.g->values[f.vw]);
            if (c->bias) in[2] = qf_value_tensor(&f.g->values[f.vb]);
            st = def->infer(n, in, c->bias ? 3 : 2, out, 1, &e);
        }
        if (!st) {
            n_out = (size_t)qf_tensor_numel(&out[0]);
            scr_bytes = def->scratch(n, in, c->bias ? 3 : 2, out, 1);
            scr = malloc(scr_bytes ? scr_bytes : 1);
            if (n_out > sizeof want || !scr) st = QF_ERR_INTERNAL;
        }
        if (!st) { /* what the fast kernels ask for, from parameters built here */
            if (c->gemm) {
                qf_ref_gemm_params gp = {.m = c->n, .n = c->oc, .k = c->c};
                /* with an x86 ISA active the op runs the x86 kernels */
                want_bytes = qf_x86_isa_usable(qf_isa_active()) ? qf_x86_gemm_s8_scratch_size(&gp)
                                                                : qf_fast_gemm_s8_scratch_size(&gp);
            } else {
                qf_ref_conv_params cp = {.batch = c->n,
                                         .in_c = c->c,
                                         .in_h = c->h,
                                         .in_w = c->w,
                                         .out_c = c->oc,
                                         .k_h = c->kh,
                                         .k_w = c->kw,
                                         .stride_h = 1,
                                         .stride_w = 1,
                                         .dil_h = 1,
                                         .dil_w = 1,
                                         .pad_top = c->pad,
                                         .pad_left = c->pad,
                                         .pad_bottom = c->pad,
                                         .pad_right = c->pad,
                                         .groups = c->group};
                cp.out_h = c->h + 2 * c->pad - c->kh + 1;
                cp.out_w = c->w + 2 * c->pad - c->kw + 1;
                /* depthwise layers keep the portable kernel's scratch */
                want_bytes = qf_x86_isa_usable(qf_isa_active()) && c->c / c->group > 1
                                 ? qf_x86_conv2d_s8_scratch_size(
                                       &cp, qf_x86_conv_layout(c->c / c->group, c->kh * c->kw))
                                 : qf_fast_conv2d_s8_scratch_size(&cp);
            }
        }
        if (!st) {
            out[0].data = got_fast;
            st = def->run(&ctx, n, in, c->bias ? 3 : 2, out, 1, scr, &e);
        }
        if (!st) {
            out[0].data = got_ref;
            st = def->run(&ctx, n, in, c->bias ? 3 : 2, out, 1, NULL, &e);
        }
        if (!st) st = op_reference(c, &f, f.packed, want);
        /* other weights of the same shape at another address */
        if (!st) {
            const int wmax = (1 << (c->w_bits - 1)) - 1;
            size_t wbytes = qf_ref_packed_row_bytes(f.k, c->w_bits) * (size_t)c->oc;
            other = malloc(wbytes);
            other_wv = malloc((size_t)(c->oc * f.k));
            if (!other || !other_wv) st = QF_ERR_INTERNAL;
            for (int64_t i = 0; !st && i < c->oc * f.k; i++)
                other_wv[i] = (int8_t)rnd(-wmax, wmax);
            if (!st) st = qf_ref_pack_weights(other_wv, c->oc, f.k, c->w_bits, other, NULL);
            if (!st) {
                in[1].data = c->w_bits == 8 ? (void *)other_wv : (void *)other;
                out[0].data = got_swapped;
                st = def->run(&ctx, n, in, c->bias ? 3 : 2, out, 1, scr, &e);
            }
            if (!st) st = op_reference(c, &f, other, want2);
        }
        free(scr);
        free(other);
        free(other_wv);
        free_fixture(&f);
        CHECK_MSG(built && st == QF_OK, "%s: status %d %s", c->name, (int)st, e.msg);
        CHECK_MSG(scr_bytes > 0 && scr_bytes == want_bytes, "%s: scratch %zu, fast kernel %zu",
                  c->name, scr_bytes, want_bytes);
        CHECK_MSG(memcmp(got_fast, want, n_out) == 0, "%s: run with scratch", c->name);
        CHECK_MSG(memcmp(got_ref, want, n_out) == 0, "%s: run without scratch", c->name);
        CHECK_MSG(memcmp(got_swapped, want2, n_out) == 0, "%s: other weights", c->name);
        CHECK_MSG(memcmp(want, want2, n_out) != 0, "%s: weights swap had no effect", c->name);
    }
}

QT_MAIN(QT_CASE(test_widen_matches_unpack), QT_CASE(test_conv_matrix), QT_CASE(test_conv_random),
        QT_CASE(test_conv_bands), QT_CASE(test_gemm_matrix), QT_CASE(test_bad_arguments),
        QT_CASE(test_ops_session), QT_CASE(test_ops_run_paths), QT_CASE(test_conv_asym),
        QT_CASE(test_gemm_asym))
