/* test_x86_ew.c - the memory-bound x86 int8 kernels (kernels/x86/qx86_ew.h)
 * against their specifications: qf_ref_add_s8, qf_ref_maxpool_s8 and
 * qf_ref_global_avgpool_s8 (kernels/ref/qref.h), and for the float <-> 8-bit
 * conversions a scalar loop written here from the ONNX formula.
 *
 * Every case runs for each ISA (scalar, and AVX2 / AVX-512 where this CPU
 * has them), with no pool and with a 2-thread pool, and must give the
 * reference's bytes (memcmp; floats compared bit for bit). Sizes sit below,
 * at and above the 8/16/32/64-lane widths and past the size at which the
 * work is split over threads; zero points at -128/0/127 (0/128/255 for
 * uint8); scales giving exact ties, saturation and all-zero outputs;
 * active clamps; windows made only of padding; NaN, infinities and -0.0
 * for the quantizer; lookup tables (QLut, one or one per channel) against
 * their definition. Guard bytes after each output catch overruns. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "kernels/dispatch.h"
#include "kernels/ref/qref.h"
#include "kernels/x86/qx86.h"
#include "kernels/x86/qx86_ew.h"
#include "qtest.h"

static uint32_t rng = 12345u;
static int32_t rnd(int32_t lo, int32_t hi) { /* inclusive */
    rng = rng * 1664525u + 1013904223u;
    return lo + (int32_t)((uint64_t)(rng >> 8) * (uint64_t)((int64_t)hi - lo + 1) >> 24);
}

#define GUARD 64
#define GUARD_BYTE 0x5A

static const qf_isa all_isas[] = {QF_ISA_SCALAR, QF_ISA_AVX2, QF_ISA_AVX512VNNI};
static int n_isa_runs[QF_ISA_COUNT];

static qf_threadpool *pool2(void) {
    static qf_threadpool *p;
    if (!p) qf_threadpool_create(2, &p, NULL);
    return p;
}

static bool isa_runs(qf_isa isa) { return isa == QF_ISA_SCALAR || qf_x86_isa_usable(isa); }

static bool guard_ok(const uint8_t *g) {
    for (int i = 0; i < GUARD; i++)
        if (g[i] != GUARD_BYTE) return false;
    return true;
}

static void fill_s8(int8_t *x, size_t n, int kind) {
    for (size_t i = 0; i < n; i++)
        x[i] = (int8_t)(kind == 0   ? rnd(-128, 127)
                        : kind == 1 ? (rnd(0, 1) ? 127 : -128)
                                    : rnd(-3, 3));
}

/* ---- QAdd ---------------------------------------------------------------- */

typedef struct add_case {
    const char *name;
    float sa, sb, so;
    int32_t za, zb, zo, lo, hi;
    int data; /* fill_s8 kind */
} add_case;

/* clang-format off */
static const add_case add_cases[] = {
    {"plain",            0.05f,  0.07f,  0.1f,   0,    0,    0,    -128, 127, 0},
    {"zp extremes",      0.02f,  0.03f,  0.04f,  -128, 127,  -128, -128, 127, 0},
    {"zp extremes 2",    0.02f,  0.03f,  0.04f,  127,  -128, 127,  -128, 127, 1},
    {"exact ties",       0.5f,   0.25f,  1.0f,   0,    3,    0,    -128, 127, 0},
    {"ties small vals",  0.5f,   0.5f,   1.0f,   1,    0,    -1,   -128, 127, 2},
    {"relu clamp",       0.1f,   0.1f,   0.1f,   -5,   7,    -128, -128, 127, 0},
    {"narrow clamp",     0.1f,   0.2f,   0.15f,  10,   -10,  3,    -20,  40,  0},
    {"single value",     0.1f,   0.2f,   0.15f,  0,    0,    0,    5,    5,   0},
    {"saturating",       1.0f,   2.0f,   0.001f, 0,    0,    0,    -128, 127, 0},
    {"tiny output",      1e-4f,  2e-4f,  10.0f,  0,    0,    17,   -128, 127, 0},
    {"unequal scales",   3e-3f,  0.9f,   0.2f,   -1,   2,    -3,   -128, 127, 1},
};
/* clang-format on */

static const size_t add_sizes[] = {1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 140001};

static void run_add_case(const add_case *c, size_t n, qf_isa isa, qf_threadpool *pool,
                         const int8_t *a, const int8_t *b, int8_t *want, int8_t *got) {
    qf_ref_eltwise_params p;
    memset(&p, 0, sizeof p);
    p.rank = 2;
    p.out_dims[0] = p.a_dims[0] = p.b_dims[0] = 1;
    p.out_dims[1] = p.a_dims[1] = p.b_dims[1] = (int64_t)n;
    p.a_scale = c->sa;
    p.b_scale = c->sb;
    p.out_scale = c->so;
    p.a_zp = c->za;
    p.b_zp = c->zb;
    p.out_zp = c->zo;
    p.act_min = c->lo;
    p.act_max = c->hi;
    p.mode = QF_RQ_FP32;
    qf_err e;
    CHECK(qf_x86_add_s8_supported(&p));
    CHECK_OK(qf_ref_add_s8(&p, a, b, want, &e));
    memset(got, GUARD_BYTE, n + GUARD);
    CHECK_OK(qf_x86_add_s8(pool, isa, &p, a, b, got, &e));
    CHECK_MSG(memcmp(want, got, n) == 0, "%s n=%zu isa=%s threads=%d", c->name, n, qf_isa_name(isa),
              qf_threadpool_size(pool));
    CHECK(guard_ok((const uint8_t *)got + n));
    n_isa_runs[isa]++;
}

static void test_add_matrix(void) {
    const size_t nmax = 140001;
    int8_t *a = malloc(nmax), *b = malloc(nmax), *want = malloc(nmax), *got = malloc(nmax + GUARD);
    CHECK(a && b && want && got);
    for (size_t ci = 0; ci < sizeof add_cases / sizeof add_cases[0] && !qt_failed_flag; ci++) {
        fill_s8(a, nmax, add_cases[ci].data);
        fill_s8(b, nmax, add_cases[ci].data);
        for (size_t si = 0; si < sizeof add_sizes / sizeof add_sizes[0] && !qt_failed_flag; si++)
            for (size_t ii = 0; ii < 3 && !qt_failed_flag; ii++) {
                if (!isa_runs(all_isas[ii])) continue;
                run_add_case(&add_cases[ci], add_sizes[si], all_isas[ii], NULL, a, b, want, got);
                if (!qt_failed_flag)
                    run_add_case(&add_cases[ci], add_sizes[si], all_isas[ii], pool2(), a, b, want,
                                 got);
            }
    }
    /* in place: out aliases a */
    if (!qt_failed_flag) {
        qf_ref_eltwise_params p;
        memset(&p, 0, sizeof p);
        p.rank = 1;
        p.out_dims[0] = p.a_dims[0] = p.b_dims[0] = 1000;
        p.a_scale = 0.03f;
        p.b_scale = 0.05f;
        p.out_scale = 0.06f;
        p.a_zp = 4;
        p.act_min = -128;
        p.act_max = 127;
        fill_s8(a, 1000, 0);
        fill_s8(b, 1000, 0);
        qf_err e;
        CHECK_OK(qf_ref_add_s8(&p, a, b, want, &e));
        CHECK_OK(qf_x86_add_s8(pool2(), qf_isa_best(), &p, a, b, a, &e));
        CHECK(memcmp(a, want, 1000) == 0);
    }
    /* broadcasting and FIXED mode are not this kernel's case */
    qf_ref_eltwise_params q;
    memset(&q, 0, sizeof q);
    q.rank = 2;
    q.out_dims[0] = q.a_dims[0] = 4;
    q.b_dims[0] = 1;
    q.out_dims[1] = q.a_dims[1] = q.b_dims[1] = 8;
    CHECK(!qf_x86_add_s8_supported(&q));
    q.b_dims[0] = 4;
    CHECK(qf_x86_add_s8_supported(&q));
    q.mode = QF_RQ_FIXED;
    CHECK(!qf_x86_add_s8_supported(&q));
    free(a);
    free(b);
    free(want);
    free(got);
}

/* ---- pools --------------------------------------------------------------- */

typedef struct pool_geom {
    const char *name;
    int batch, ch, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} pool_geom;

/* clang-format off */
static const pool_geom pool_geoms[] = {
    {"resnet stem",      1, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"2x2 s2",           2, 3,  16,  16,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    /* the 2x2 stride-2 plane kernel: narrow, odd sizes (last row and
     * column unused), rows over 64 bytes */
    {"2x2 s2 28x28",     3, 5,  28,  28,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 odd 7x9",   1, 4,  7,   9,   2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 wide 150",  2, 2,  6,   150, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    /* rows of 4-15 and 17-23 outputs: blocks of 8 or 4, the last moved
     * back to the row's end; below 4 scalar */
    {"2x2 s2 14x14",     2, 3,  14,  14,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 8",       1, 2,  5,   8,   2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 11",      1, 2,  6,   11,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 13",      1, 2,  4,   13,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 22",      1, 2,  4,   22,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 35",      1, 2,  4,   35,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 46",      1, 2,  4,   46,  2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"2x2 s2 w 6",       1, 2,  4,   6,   2, 2, 2, 2, 1, 1, 0, 0, 0, 0},
    {"3x3 s1 p1",        1, 5,  9,   70,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 odd",       1, 3,  13,  33,  3, 3, 2, 2, 1, 1, 0, 0, 0, 0},
    {"3x3 s2 wide",      1, 2,  5,   200, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    /* the 3x3 stride-2 plane kernel: SqueezeNet's and AlexNet's sizes,
     * windows past the right and bottom edges (ceil mode), pads of 2,
     * blocks around 32 outputs (64 columns), planes narrower than a window,
     * windows that see only padding */
    {"3x3 s2 111",       1, 3,  111, 111, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0},
    {"3x3 s2 ceil 14",   2, 3,  14,  14,  3, 3, 2, 2, 1, 1, 0, 0, 1, 1},
    {"3x3 s2 pad 2",     1, 3,  9,   11,  3, 3, 2, 2, 1, 1, 2, 2, 2, 2},
    {"3x3 s2 w 64-67",   1, 2,  5,   66,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 w 65",      1, 2,  4,   65,  3, 3, 2, 2, 1, 1, 0, 0, 0, 0},
    {"3x3 s2 w 67 ceil", 1, 2,  4,   67,  3, 3, 2, 2, 1, 1, 0, 1, 1, 2},
    {"3x3 s2 w 2",       1, 3,  2,   2,   3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 w 1",       1, 3,  5,   1,   3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 pad-only",  1, 2,  2,   2,   3, 3, 2, 2, 1, 1, 0, 0, 4, 4},
    /* AVX2 copies each input row once into a padded ring row of up to 64
     * blocks of 16 outputs: the widest such row (1024 outputs), and one
     * wider, which takes the per-block edge copies */
    {"3x3 s2 w 2047",    1, 1,  3,   2047, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 w 2101",    1, 1,  3,   2101, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"dilated",          1, 3,  15,  40,  3, 3, 1, 2, 2, 2, 2, 2, 2, 2},
    {"stride 3",         1, 3,  17,  29,  3, 3, 3, 3, 1, 1, 1, 1, 1, 1},
    {"asym pads",        2, 2,  6,   7,   3, 2, 1, 2, 1, 1, 2, 0, 0, 1},
    {"pad-only windows", 1, 2,  3,   3,   2, 2, 2, 2, 1, 1, 2, 2, 2, 2},
    {"width 1",          1, 4,  8,   1,   3, 1, 1, 1, 1, 1, 1, 0, 1, 0},
    {"1x1 s1",           1, 3,  4,   65,  1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    {"5x5 s1 64",        1, 2,  10,  64,  5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
};
/* clang-format on */

static void make_pool_params(const pool_geom *g, qf_ref_pool_params *p) {
    memset(p, 0, sizeof *p);
    p->batch = g->batch;
    p->channels = g->ch;
    p->in_h = g->h;
    p->in_w = g->w;
    p->k_h = g->kh;
    p->k_w = g->kw;
    p->stride_h = g->sh;
    p->stride_w = g->sw;
    p->dil_h = g->dh;
    p->dil_w = g->dw;
    p->pad_top = g->pt;
    p->pad_left = g->pl;
    p->pad_bottom = g->pb;
    p->pad_right = g->pr;
    p->out_h = qf_ref_conv_out_size(g->h, g->kh, g->sh, g->dh, g->pt, g->pb);
    p->out_w = qf_ref_conv_out_size(g->w, g->kw, g->sw, g->dw, g->pl, g->pr);
    p->in_scale = p->out_scale = 0.1f;
    p->act_min = -128;
    p->act_max = 127;
}

static void test_maxpool_matrix(void) {
    static const int32_t clamps[][2] = {{-128, 127}, {-20, 40}, {0, 127}, {-128, -128}};
    for (size_t gi = 0; gi < sizeof pool_geoms / sizeof pool_geoms[0]; gi++) {
        qf_ref_pool_params p;
        make_pool_params(&pool_geoms[gi], &p);
        CHECK_MSG(p.out_h >= 1 && p.out_w >= 1, "%s", pool_geoms[gi].name);
        CHECK(qf_x86_maxpool_s8_supported(&p));
        const size_t ni = (size_t)p.batch * p.channels * p.in_h * p.in_w;
        const size_t no = (size_t)p.batch * p.channels * p.out_h * p.out_w;
        int8_t *in = malloc(ni), *want = malloc(no), *got = malloc(no + GUARD);
        CHECK(in && want && got);
        for (int data = 0; data < 3; data++) {
            if (data == 2)
                memset(in, -128, ni);
            else
                fill_s8(in, ni, data);
            for (size_t ci = 0; ci < sizeof clamps / sizeof clamps[0]; ci++) {
                p.act_min = clamps[ci][0];
                p.act_max = clamps[ci][1];
                qf_err e;
                CHECK_OK(qf_ref_maxpool_s8(&p, in, want, &e));
                for (size_t ii = 0; ii < 3; ii++) {
                    if (!isa_runs(all_isas[ii])) continue;
                    for (int th = 0; th < 2; th++) {
                        memset(got, GUARD_BYTE, no + GUARD);
                        CHECK_OK(
                            qf_x86_maxpool_s8(th ? pool2() : NULL, all_isas[ii], &p, in, got, &e));
                        CHECK_MSG(memcmp(want, got, no) == 0, "%s data %d clamp %zu isa %s th %d",
                                  pool_geoms[gi].name, data, ci, qf_isa_name(all_isas[ii]), th + 1);
                        CHECK(guard_ok((const uint8_t *)got + no));
                        n_isa_runs[all_isas[ii]]++;
                    }
                }
            }
        }
        free(in);
        free(want);
        free(got);
    }
}

typedef struct gap_case {
    const char *name;
    int planes, hw;
    float si, so;
    int32_t zi, zo, lo, hi;
    qf_ref_rq_mode mode;
    int data;
} gap_case;

/* clang-format off */
static const gap_case gap_cases[] = {
    {"resnet 7x7",      512, 49,   0.1f,  0.05f,  -3,   5,    -128, 127, QF_RQ_FP32,  0},
    {"hw 1",            9,   1,    0.1f,  0.1f,   0,    0,    -128, 127, QF_RQ_FP32,  0},
    {"hw 31 fixed",     7,   31,   0.2f,  0.1f,   -128, 127,  -128, 127, QF_RQ_FIXED, 0},
    {"hw 32 ties",      5,   32,   1.0f,  1.0f,   0,    0,    -128, 127, QF_RQ_FP32,  2},
    {"hw 33 zp127",     5,   33,   0.1f,  0.01f,  127,  -128, -128, 127, QF_RQ_FP32,  1},
    {"hw 63 clamp",     5,   63,   0.1f,  0.02f,  0,    0,    -20,  40,  QF_RQ_FP32,  0},
    {"hw 64 fixed",     5,   64,   0.3f,  0.07f,  -128, 0,    -128, 127, QF_RQ_FIXED, 1},
    {"hw 65",           5,   65,   0.1f,  0.1f,   1,    -1,   -128, 127, QF_RQ_FP32,  0},
    {"threads",         80,  4096, 0.05f, 0.01f,  -7,   2,    -128, 127, QF_RQ_FP32,  0},
    {"threads fixed",   80,  4096, 0.05f, 0.01f,  -7,   2,    0,    127, QF_RQ_FIXED, 1},
};
/* clang-format on */

static void test_global_avgpool_matrix(void) {
    for (size_t ci = 0; ci < sizeof gap_cases / sizeof gap_cases[0]; ci++) {
        const gap_case *c = &gap_cases[ci];
        qf_ref_pool_params p;
        memset(&p, 0, sizeof p);
        p.batch = 1;
        p.channels = c->planes;
        p.in_h = 1;
        p.in_w = c->hw;
        p.out_h = p.out_w = 1;
        p.in_scale = c->si;
        p.out_scale = c->so;
        p.in_zp = c->zi;
        p.out_zp = c->zo;
        p.act_min = c->lo;
        p.act_max = c->hi;
        p.mode = c->mode;
        const size_t ni = (size_t)c->planes * c->hw, no = (size_t)c->planes;
        int8_t *in = malloc(ni), *want = malloc(no), *got = malloc(no + GUARD);
        CHECK(in && want && got);
        fill_s8(in, ni, c->data);
        qf_err e;
        CHECK_OK(qf_ref_global_avgpool_s8(&p, in, want, &e));
        for (size_t ii = 0; ii < 3; ii++) {
            if (!isa_runs(all_isas[ii])) continue;
            for (int th = 0; th < 2; th++) {
                memset(got, GUARD_BYTE, no + GUARD);
                CHECK_OK(
                    qf_x86_global_avgpool_s8(th ? pool2() : NULL, all_isas[ii], &p, in, got, &e));
                CHECK_MSG(memcmp(want, got, no) == 0, "%s isa %s th %d", c->name,
                          qf_isa_name(all_isas[ii]), th + 1);
                CHECK(guard_ok((const uint8_t *)got + no));
                n_isa_runs[all_isas[ii]]++;
            }
        }
        free(in);
        free(want);
        free(got);
    }
}

/* ---- QuantizeLinear / DequantizeLinear ----------------------------------- */

/* The ONNX formula as ONNX Runtime computes it, written out independently. */
static uint8_t quant_expect(float x, float scale, float zp, bool u8) {
    float r = nearbyintf(x / scale) + zp;
    float lo = u8 ? 0.0f : -128.0f, hi = u8 ? 255.0f : 127.0f;
    if (isnan(r)) r = zp;
    if (r < lo) r = lo;
    if (r > hi) r = hi;
    return u8 ? (uint8_t)(int32_t)r : (uint8_t)(int8_t)(int32_t)r;
}

static void test_quantize_matrix(void) {
    static const size_t sizes[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 70001};
    static const float scales[] = {1.0f, 0.1f, 3e-3f, 7.5f, 1e-38f};
    static const float zps_s8[] = {0.0f, -128.0f, 127.0f};
    static const float zps_u8[] = {0.0f, 128.0f, 255.0f};
    const size_t nmax = 70001;
    float *x = malloc(nmax * sizeof *x);
    uint8_t *want = malloc(nmax), *got = malloc(nmax + GUARD);
    CHECK(x && want && got);
    for (size_t sci = 0; sci < sizeof scales / sizeof scales[0]; sci++) {
        const float sc = scales[sci];
        for (size_t i = 0; i < nmax; i++) {
            switch (rnd(0, 9)) {
            case 0: x[i] = ((float)rnd(-300, 300) + 0.5f) * sc; break; /* ties */
            case 1: x[i] = (float)rnd(-1, 1) * INFINITY; break;
            case 2: x[i] = rnd(0, 1) ? NAN : -0.0f; break;
            case 3: x[i] = (float)rnd(-1000, 1000) * 1e30f; break;
            default: x[i] = (float)rnd(-200000, 200000) * sc * 1e-3f; break;
            }
            if (x[i] != x[i] && rnd(0, 1)) x[i] = (float)rnd(-5, 5); /* keep NaN rare-ish */
        }
        for (int u8 = 0; u8 < 2; u8++)
            for (size_t zi = 0; zi < 3; zi++) {
                const float zp = u8 ? zps_u8[zi] : zps_s8[zi];
                for (size_t i = 0; i < nmax; i++)
                    want[i] = quant_expect(x[i], sc, zp, u8);
                for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
                    for (size_t ii = 0; ii < 3; ii++) {
                        if (!isa_runs(all_isas[ii])) continue;
                        for (int th = 0; th < 2; th++) {
                            const size_t n = sizes[si];
                            memset(got, GUARD_BYTE, n + GUARD);
                            qf_x86_quantize_f32_8(th ? pool2() : NULL, all_isas[ii], x, n, sc, zp,
                                                  u8, got);
                            size_t bad = 0;
                            while (bad < n && want[bad] == got[bad])
                                bad++;
                            CHECK_MSG(bad == n,
                                      "scale %g zp %g u8 %d n %zu isa %s: x[%zu]=%g "
                                      "want %d got %d",
                                      (double)sc, (double)zp, u8, n, qf_isa_name(all_isas[ii]), bad,
                                      (double)x[bad], want[bad], got[bad]);
                            CHECK(guard_ok(got + n));
                            n_isa_runs[all_isas[ii]]++;
                        }
                    }
            }
    }
    free(x);
    free(want);
    free(got);
}

static void test_dequantize_matrix(void) {
    static const size_t sizes[] = {1, 7, 8, 9, 16, 17, 33, 70001};
    static const float scales[] = {1.0f, 0.1f, 3e-3f, 1e30f};
    const size_t nmax = 70001;
    uint8_t *q = malloc(nmax);
    float *want = malloc(nmax * sizeof(float)), *got = malloc((nmax + GUARD) * sizeof(float));
    CHECK(q && want && got);
    for (size_t i = 0; i < nmax; i++)
        q[i] = (uint8_t)rnd(0, 255);
    for (size_t sci = 0; sci < sizeof scales / sizeof scales[0]; sci++)
        for (int u8 = 0; u8 < 2; u8++)
            for (int32_t zp = u8 ? 0 : -128; zp <= (u8 ? 255 : 127); zp += 127) {
                for (size_t i = 0; i < nmax; i++) {
                    int32_t v = u8 ? (int32_t)q[i] : (int32_t)(int8_t)q[i];
                    want[i] = (float)(v - zp) * scales[sci];
                }
                for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
                    for (size_t ii = 0; ii < 3; ii++) {
                        if (!isa_runs(all_isas[ii])) continue;
                        for (int th = 0; th < 2; th++) {
                            const size_t n = sizes[si];
                            memset(got, GUARD_BYTE, (n + GUARD) * sizeof(float));
                            qf_x86_dequantize_8_f32(th ? pool2() : NULL, all_isas[ii], q, u8, n,
                                                    scales[sci], zp, got);
                            CHECK_MSG(memcmp(want, got, n * sizeof(float)) == 0,
                                      "scale %g zp %d u8 %d n %zu isa %s", (double)scales[sci], zp,
                                      u8, n, qf_isa_name(all_isas[ii]));
                            CHECK(guard_ok((const uint8_t *)(got + n)));
                            n_isa_runs[all_isas[ii]]++;
                        }
                    }
            }
    free(q);
    free(want);
    free(got);
}

/* Which ISAs actually ran (a CPU without one skips it, visibly). */
/* ---- lookup tables (QLut) -------------------------------------------------------- */

/* qf_x86_lut_s8 against the plain definition y[o][c][i] = lut[c][(uint8_t)x]:
 * one table and several, planes below, at and above the 64-byte vector and
 * past the 16 KiB task chunk, split over threads or not, in place too. */
static void test_lut_matrix(void) {
    static const struct {
        int64_t channels, outer, inner;
    } cases[] = {{1, 1, 1},  {1, 1, 63}, {1, 1, 64},   {1, 3, 65},   {1, 1, 70000}, {3, 2, 1},
                 {3, 1, 17}, {5, 2, 64}, {17, 2, 169}, {96, 1, 729}, {4, 1, 16385}, {2, 3, 40000}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int64_t C = cases[ci].channels, O = cases[ci].outer, I = cases[ci].inner;
        const size_t n = (size_t)(C * O * I);
        int8_t *lut = malloc((size_t)C * 256), *x = malloc(n), *want = malloc(n);
        int8_t *got = malloc(n + GUARD);
        CHECK(lut && x && want && got);
        for (int64_t k = 0; k < C * 256; k++)
            lut[k] = (int8_t)rnd(-128, 127);
        fill_s8(x, n, 0);
        x[0] = -128;
        x[n - 1] = 127;
        for (int64_t o = 0; o < O; o++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < I; i++) {
                    const size_t e = (size_t)((o * C + c) * I + i);
                    want[e] = lut[c * 256 + (uint8_t)x[e]];
                }
        for (size_t ii = 0; ii < 3; ii++) {
            if (!isa_runs(all_isas[ii])) continue;
            for (int th = 0; th < 2; th++) {
                memset(got, GUARD_BYTE, n + GUARD);
                qf_x86_lut_s8(th ? pool2() : NULL, all_isas[ii], lut, C, O, I, x, got);
                CHECK_MSG(memcmp(want, got, n) == 0, "C %lld outer %lld inner %lld isa %s th %d",
                          (long long)C, (long long)O, (long long)I, qf_isa_name(all_isas[ii]),
                          th + 1);
                CHECK(guard_ok((const uint8_t *)got + n));
                memcpy(got, x, n); /* in place */
                qf_x86_lut_s8(th ? pool2() : NULL, all_isas[ii], lut, C, O, I, got, got);
                CHECK_MSG(memcmp(want, got, n) == 0, "in place: C %lld inner %lld isa %s",
                          (long long)C, (long long)I, qf_isa_name(all_isas[ii]));
                n_isa_runs[all_isas[ii]]++;
            }
        }
        free(lut);
        free(x);
        free(want);
        free(got);
    }
}

static void test_report_isas(void) {
    for (int i = 0; i < QF_ISA_COUNT; i++) {
        if (isa_runs((qf_isa)i))
            CHECK_MSG(n_isa_runs[i] > 0, "ISA %s never ran", qf_isa_name((qf_isa)i));
        else
            printf("  SKIP ISA %s (this CPU cannot run it)\n", qf_isa_name((qf_isa)i));
    }
    printf("  runs per ISA: scalar %d, avx2 %d, avx512vnni %d\n", n_isa_runs[0], n_isa_runs[1],
           n_isa_runs[2]);
}

QT_MAIN(QT_CASE(test_add_matrix), QT_CASE(test_maxpool_matrix), QT_CASE(test_global_avgpool_matrix),
        QT_CASE(test_quantize_matrix), QT_CASE(test_dequantize_matrix), QT_CASE(test_lut_matrix),
        QT_CASE(test_report_isas))
