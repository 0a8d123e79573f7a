/* test_x86_kernels.c - the x86 int8 kernels (kernels/x86/qx86.h) against the
 * reference kernels of kernels/ref/qref.h, which are the specification.
 *
 * For every ISA this CPU runs (AVX2, AVX-512 VNNI; the others are counted
 * and printed as skipped), every conv geometry case (1x1/3x3/5x5/7x7,
 * strides 1/2, dilation, asymmetric pads, groups, batch 1/3, channel and
 * pixel counts below/at/above the 8-channel x 32-slot tile, reductions not a
 * multiple of 4/16/64) times every numerics case (input zero point
 * -128/0/127, 8/4/2-bit weights, weights at +-127, weights at the AVX2
 * vpmaddubsw saturation edge (both sides), fp32 and fixed requantization,
 * tiny and large multipliers, active clamps, wrapping biases) must give the
 * reference's bytes (memcmp), with 1 thread and with a 2-thread pool; the
 * depthwise cases (3x3/5x5, stride 1/2, narrow and wide rows, asymmetric
 * pads) also go through the VNNI depthwise kernel. Output
 * guards and a scratch of exactly the reported size at an odd address catch
 * overruns. Gemm: M 1..67 around the 4-row tile, N around the 32-channel
 * tile, K 1..301. FIXED requantization alone: accumulators over the whole
 * int32 range with multipliers and shifts over their whole domain. QConv
 * and QGemm nodes through a session of 1 and of 2 threads. QF_ISA
 * resolution: names, unknown names and unsupported
 * ISAs fall back to the best one with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "ir/graph.h"
#include "kernels/dispatch.h"
#include "kernels/ref/qops_util.h"
#include "kernels/ref/qref.h"
#include "kernels/x86/qx86.h"
#include "qtest.h"
#include "runtime/runtime.h"

static uint32_t rng = 77u;
static int32_t rnd(int32_t lo, int32_t hi) { /* inclusive */
    rng = rng * 1664525u + 1013904223u;
    return lo + (int32_t)((uint64_t)(rng >> 8) * (uint64_t)((int64_t)hi - lo + 1) >> 24);
}

#define GUARD 64

typedef enum { W_RANDOM, W_EXTREME, W_SAT_OK, W_SAT_OVER } wkind;
typedef enum { S_TINY, S_NORMAL, S_LARGE } skind;

typedef struct numerics {
    const char *name;
    int32_t in_zp, out_zp;
    int w_bits;
    wkind wk;
    int fixed, per_channel, bias; /* bias: 0 none, 1 small, 2 wrapping */
    skind scale;
    int32_t act_min, act_max;
} numerics;

/* clang-format off */
static const numerics num_cases[] = {
    {"w8 fp32 zp0",            0,    0,   8, W_RANDOM,   0, 1, 1, S_NORMAL, -128, 127},
    {"w8 fixed zp-128",        -128, -3,  8, W_RANDOM,   1, 1, 1, S_NORMAL, -128, 127},
    {"w8 fp32 zp127 +-127",    127,  10,  8, W_EXTREME,  0, 0, 0, S_NORMAL, -128, 127},
    {"w8 fixed +-127 clamp",   -128, 0,   8, W_EXTREME,  1, 1, 1, S_NORMAL, -20,  40},
    {"w8 sat edge ok",         -128, 0,   8, W_SAT_OK,   0, 1, 1, S_NORMAL, -128, 127},
    {"w8 sat edge over",       127,  0,   8, W_SAT_OVER, 0, 1, 1, S_NORMAL, -128, 127},
    {"w4 fp32 relu",           5,    -128,4, W_RANDOM,   0, 1, 1, S_NORMAL, -128, 127},
    {"w4 fixed per-tensor",    -128, 0,   4, W_EXTREME,  1, 0, 0, S_NORMAL, -128, 127},
    {"w2 fp32 zp127",          127,  0,   2, W_RANDOM,   0, 1, 1, S_NORMAL, -128, 127},
    {"tiny scale fp32",        -7,   3,   8, W_RANDOM,   0, 1, 1, S_TINY,   -128, 127},
    {"tiny scale fixed",       -7,   3,   8, W_RANDOM,   1, 1, 1, S_TINY,   -128, 127},
    {"large scale fp32 clamp", 0,    0,   8, W_RANDOM,   0, 1, 1, S_LARGE,  -100, 90},
    {"large scale fixed",      100,  -50, 8, W_RANDOM,   1, 1, 1, S_LARGE,  -128, 127},
    {"wrapping bias fp32",     -128, 0,   8, W_EXTREME,  0, 1, 2, S_NORMAL, -128, 127},
    {"wrapping bias fixed w4", 127,  1,   4, W_RANDOM,   1, 1, 2, S_NORMAL, -128, 127},
    {"wrapping bias large fixed", -5, 2,  8, W_EXTREME,  1, 1, 2, S_LARGE,  -128, 127},
    /* products past 2^31: the FP32 epilogue must clamp before converting */
    {"wrapping bias large fp32",  -5, 2,  8, W_EXTREME,  0, 1, 2, S_LARGE,  -128, 127},
};

typedef struct geom {
    const char *name;
    int batch, in_c, h, w, out_c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
} geom;

static const geom geo_cases[] = {
    {"1x1 tiny",            1, 1,  1,  1,  1,  1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 c17 oc9",         1, 17, 5,  7,  9,  1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 c64 oc8 32px",    1, 64, 4,  8,  8,  1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 c3 oc33 33px",    1, 3,  3,  11, 33, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 batch3",          3, 16, 6,  5,  16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 batch3 7x7",      3, 24, 7,  7,  20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"3x3 nopad batch2",    2, 5,  6,  7,  12, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 stride2",         2, 8,  9,  9,  7,  1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},
    {"3x3 pad1",            1, 8,  7,  7,  16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 c1 stem batch2",  2, 1,  9,  10, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 pad1 K=63",       1, 7,  12, 13, 31, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 stride2 batch3",  3, 5,  11, 10, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 wide rows",    2, 3,  7,  75, 9,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 wide pad2",    1, 2,  6,  68, 8,  3, 3, 2, 2, 1, 1, 2, 2, 0, 1, 1},
    {"3x3 no pad",          1, 4,  6,  40, 8,  3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"3x3 asym pads",       2, 3,  8,  9,  10, 3, 3, 1, 2, 1, 1, 0, 2, 1, 0, 1},
    {"3x3 dil2",            1, 6,  10, 10, 9,  3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},
    {"3x3 groups2",         1, 8,  6,  6,  12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {"3x3 groups3 odd",     2, 9,  5,  7,  9,  3, 3, 2, 1, 1, 1, 1, 0, 1, 1, 3},
    {"5x5 pad2",            1, 3,  9,  9,  17, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1},
    {"7x7 stride2 pad3",    2, 3,  17, 19, 8,  7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1},
    {"1x7 / 7x1 mix",       1, 5,  9,  11, 6,  1, 7, 1, 1, 1, 1, 0, 3, 0, 3, 1},
    {"3x3 stride3",         1, 4,  13, 14, 5,  3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    /* wide strided rows: the vector stride-4 fill and the strided copy */
    {"11x11 s4 stem w150",  2, 3,  15, 150, 10, 11, 11, 4, 4, 1, 1, 4, 3, 2, 5, 1},
    {"5x5 s3 c2 w100",      1, 2,  8,  100, 6,  5, 5, 3, 3, 1, 1, 2, 4, 2, 1, 1},
    {"3x3 K=1152 bands",    1, 128,6,  6,  20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"1x1 many px bands",   2, 24, 40, 37, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    /* conv8c4 planes: rows of 16+ bytes filled straight from the input,
     * short rows through the flat interleave (batched, runs across rows
     * and images), rows wider than the fill's stack rows, stride 2 phases,
     * and a reduction too long for the stack gather (bands) */
    {"c4 3x3 w40 pad1 b2",  2, 8,  5,  40, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"c4 3x3 7x7 b5",       5, 12, 7,  7,  9,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"c4 3x3 w1030",        1, 4,  2,  1030, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"c4 3x3 s2 b2",        2, 8,  15, 16, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
    {"c4 3x3 s2 w9 asym b3",3, 4,  9,  9,  6,  3, 3, 2, 2, 1, 1, 0, 2, 1, 0, 1},
    {"c4 5x5 s2x1 dil2",    1, 8,  13, 21, 5,  5, 5, 1, 2, 2, 2, 3, 1, 2, 4, 1},
    {"c4 3x3 s3x2 w37",     2, 4,  10, 37, 7,  3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1},
    {"c4 3x3 K=4176 bands", 2, 464,5,  5,  9,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    /* per-pixel slots (9 channel blocks: the grid's 30-column rows would
     * waste more than a gather) whose row breaks fall at different lanes
     * in a tile's two vectors (AVX-512 reads them in place, qx_ukernels.runs2) */
    {"c4 3x3 w28 b2 oc72",  2, 8,  6,  28, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    /* past the AVX2 kernel's widened weight copy (2048 steps): weights
     * widened in its loop */
    {"c4 3x3 K=8208 long",  2, 912,5,  5,  9,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    /* the VBMI stride-1 fill (qx_ukernels.fill_s1): groups of 2 rows of 16
     * (whole vectors), 32 columns with 5x5 pads (one row, 3 vectors), 3
     * columns (10 rows a group, a last group of 1), asymmetric pads, a row
     * band past the last group, and 1 column (groups too wide: the plain
     * fill) */
    {"c4 3x3 w16 b3",       3, 8,  7,  16, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"c4 5x5 w32 pad2",     1, 4,  5,  32, 9,  5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1},
    {"c4 3x3 w3 h11",       2, 4,  11, 3,  8,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"c4 3x3 w13 asym",     1, 8,  9,  13, 10, 3, 3, 1, 1, 1, 1, 0, 2, 2, 1, 1},
    {"c4 3x3 w1 h5",        1, 4,  5,  1,  8,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    /* transposed tiles (small images, long reductions): 8-pixel tiles with
     * tails of 1-7 pixels (4- and 8-row kernels), partial 32-channel chunks
     * (blocks past the last repeated), stride 2, groups, whole images of
     * fewer than 8 pixels; and a long 1x1 reduction (1x1 layers stay on
     * slot tiles: no planes) */
    {"tt 3x3 7x7 oc60",     1, 32, 7,  7,  60, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"tt 3x3 s2 14->7 b2",  2, 32, 14, 14, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
    {"1x1 c256 5x5 b3",     3, 256,5,  5,  64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"tt 3x3 groups2",      1, 64, 6,  6,  48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {"tt 3x3 13x13 oc64",   1, 32, 13, 13, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"tt 3x3 2x3 b2",       2, 32, 2,  3,  36, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"tt 3x3 4x5 oc96",     1, 40, 4,  5,  96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"tt 1x1 7x7 c256",     1, 256,7,  7,  256,1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    /* a last chunk of 17 channels: one past the first 16-channel half */
    {"tt 3x3 3x3 oc49 b2",  2, 32, 3,  3,  49, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"tt 1x1 s2 14->7 b2",  2, 260,14, 14, 264,1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},
    {"dw 3x3 s1 p1 w7",     1, 5,  7,  7,  5,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5},
    {"dw 3x3 s1 p1 w17",    2, 3,  6,  17, 3,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
    {"dw 3x3 s2 p1 w33",    1, 4,  9,  33, 4,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4},
    {"dw 3x3 s2 asym",      1, 2,  8,  40, 2,  3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2},
    {"dw 3x3 s1 no pad w70",1, 3,  5,  70, 3,  3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 3},
    {"dw 5x5 s1 p2 w16",    1, 3,  8,  16, 3,  5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 3},
    {"dw 5x5 s2 p2 w35",    2, 2,  11, 35, 2,  5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 2},
    {"dw 5x5 s1 tiny 2x3",  1, 6,  2,  3,  6,  5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 6},
    {"dw 3x3 s2 w1",        1, 3,  3,  1,  3,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3},
    /* depthwise row blocks (4 output rows x 16 pixels): heights around the
     * block, widths around the 16-pixel vector, rows wholly in the padding */
    {"dw 3x3 s1 h1 w15",    1, 3,  1,  15, 3,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
    {"dw 3x3 s1 h2 w16 b2", 2, 2,  2,  16, 2,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {"dw 3x3 s1 h3 w17",    1, 3,  3,  17, 3,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
    {"dw 3x3 s1 h5 w64",    1, 2,  5,  64, 2,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {"dw 3x3 s1 h7 w65",    1, 2,  7,  65, 2,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {"dw 3x3 s1 h13 w1",    1, 2,  13, 1,  2,  3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {"dw 3x3 s1 asym w33",  1, 3,  9,  33, 3,  3, 3, 1, 1, 1, 1, 0, 2, 2, 0, 3},
    {"dw 3x3 s1 pad3 h4",   1, 2,  4,  5,  2,  3, 3, 1, 1, 1, 1, 3, 3, 3, 3, 2},
    {"dw 3x3 s2 h7 w15 b2", 2, 3,  7,  15, 3,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3},
    {"dw 3x3 s2 asym w65",  1, 2,  5,  65, 2,  3, 3, 2, 2, 1, 1, 1, 0, 0, 1, 2},
    {"dw 3x3 s2 h1 w1",     1, 2,  1,  1,  2,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2},
    {"dw 3x3 s2 h11 w33",   1, 2,  11, 33, 2,  3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2},
    {"dw 5x5 s1 asym w17",  1, 2,  5,  17, 2,  5, 5, 1, 1, 1, 1, 1, 2, 3, 0, 2},
    {"dw 5x5 s1 h7 w64",    1, 2,  7,  64, 2,  5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 2},
    {"dw 5x5 s2 h7 w33",    1, 2,  7,  33, 2,  5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 2},
    {"dw 5x5 s2 asym w64 b2",2, 2, 9,  64, 2,  5, 5, 2, 2, 1, 1, 2, 1, 1, 2, 2},
};

typedef struct gcase {
    int m, n, k;
} gcase;

static const gcase gemm_cases[] = {
    {1, 1, 1},   {1, 31, 15},  {1, 32, 16},  {1, 33, 17},   {3, 16, 63},   {4, 32, 64},
    {5, 17, 65}, {7, 40, 3},   {8, 64, 129}, {13, 100, 301}, {67, 33, 256}, {2, 1000, 36},
};
/* clang-format on */

static const qf_isa isas[] = {QF_ISA_AVX2, QF_ISA_AVX512VNNI};
static int n_skipped;
static int n_dw_runs;
static int n_tt_runs;    /* conv8c4 runs on transposed tiles */
static int n_split_runs; /* AVX2 runs on split weights */
static int n_sign_runs;  /* AVX2 runs in the sign form (qf_x86_weights' sign_ok) */
static int n_wide_runs;  /* AVX2 runs on the 16-bit path */
static int n_gemm_sign;  /* the same for the gemm */
static int n_gemm_wide;
static bool tt_on = true; /* qf_x86_conv_set_tt for the current runs */

/* Weights in [-wmax, wmax] following the case's pattern; k taps per row. */
static void make_weights(const numerics *nc, int rows, int k, int8_t *w) {
    const int wmax = (1 << (nc->w_bits - 1)) - 1;
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < k; t++) {
            int8_t *v = &w[r * k + t];
            switch (nc->wk) {
            case W_RANDOM: *v = (int8_t)rnd(-wmax, wmax); break;
            case W_EXTREME:
                *v = (int8_t)(rnd(0, 3) == 0 ? rnd(-wmax, wmax) : (rnd(0, 1) ? wmax : -wmax));
                break;
            /* |w0| + |w1| = 128 exactly: 255 * 128 = 32640 <= 32767 */
            case W_SAT_OK: *v = (int8_t)(64 * (rnd(0, 1) ? 1 : -1)); break;
            /* one pair (taps 0, 1 of the last row) at 64 + 65 = 129: the
             * AVX2 kernel must take the exact path */
            case W_SAT_OVER:
                *v = (int8_t)((r == rows - 1 && t == 1) ? -65 : 64 * (rnd(0, 1) ? 1 : -1));
                break;
            }
        }
}

typedef struct prepared {
    qf_ref_rescale mult[1024];
    int32_t bias[1024];
} prepared;

static void make_rq(const numerics *nc, int channels, int k, prepared *pp, qf_ref_requant *rq) {
    const int nm = nc->per_channel ? channels : 1;
    for (int c = 0; c < nm; c++) {
        double base = nc->scale == S_TINY ? 1e-7 : nc->scale == S_LARGE ? 0.9 : 1.0 / (k * 20.0);
        double M = base * (0.5 + rnd(0, 1000) / 1000.0);
        qf_ref_rescale_init(M, &pp->mult[c]);
    }
    for (int c = 0; c < channels; c++)
        pp->bias[c] = nc->bias == 2
                          ? (rnd(0, 1) ? INT32_MAX - rnd(0, 1000) : INT32_MIN + rnd(0, 1000))
                          : rnd(-5000, 5000);
    rq->mode = nc->fixed ? QF_RQ_FIXED : QF_RQ_FP32;
    rq->mult = pp->mult;
    rq->n_mult = nm;
    rq->out_zp = nc->out_zp;
    rq->act_min = nc->act_min;
    rq->act_max = nc->act_max;
}

static int guards_ok(const int8_t *buf, size_t n) {
    for (size_t i = 0; i < GUARD; i++)
        if (buf[i] != 0x5A || buf[GUARD + n + i] != 0x5A) return 0;
    return 1;
}

/* A kernel run's check: its status, the guards around got[GUARD ..] and
 * every byte against want; 0, or 1 with msg set (which names the pass). */
static int check_run(qf_status s, const qf_err *e, const int8_t *got, const int8_t *want,
                     size_t n_out, const char *which, char *msg, size_t msg_len) {
    if (s != QF_OK) {
        snprintf(msg, msg_len, "%s: x86 kernel: status %d (%s)", which, (int)s, e->msg);
        return 1;
    }
    if (!guards_ok(got, n_out)) {
        snprintf(msg, msg_len, "%s: output guard overwritten", which);
        return 1;
    }
    for (size_t i = 0; i < n_out; i++)
        if (got[GUARD + i] != want[i]) {
            snprintf(msg, msg_len, "%s: byte %zu: %d, reference %d", which, i, got[GUARD + i],
                     want[i]);
            return 1;
        }
    return 0;
}

/* Run one conv case on one ISA and thread count; 0 on success. */
static int conv_one(qf_isa isa, qf_threadpool *pool, qx_layout lay, const geom *gc,
                    const numerics *nc, char *msg, size_t msg_len) {
    qf_ref_conv_params p;
    memset(&p, 0, sizeof p);
    p.batch = gc->batch;
    p.in_c = gc->in_c;
    p.in_h = gc->h;
    p.in_w = gc->w;
    p.out_c = gc->out_c;
    p.k_h = gc->kh;
    p.k_w = gc->kw;
    p.stride_h = gc->sh;
    p.stride_w = gc->sw;
    p.dil_h = gc->dh;
    p.dil_w = gc->dw;
    p.pad_top = gc->pt;
    p.pad_left = gc->pl;
    p.pad_bottom = gc->pb;
    p.pad_right = gc->pr;
    p.groups = gc->groups;
    p.out_h = qf_ref_conv_out_size(p.in_h, p.k_h, p.stride_h, p.dil_h, p.pad_top, p.pad_bottom);
    p.out_w = qf_ref_conv_out_size(p.in_w, p.k_w, p.stride_w, p.dil_w, p.pad_left, p.pad_right);
    p.in_zp = nc->in_zp;
    p.w_bits = nc->w_bits;
    const int k = (p.in_c / p.groups) * p.k_h * p.k_w;
    prepared pp;
    make_rq(nc, p.out_c, k, &pp, &p.rq);
    const size_t n_in = (size_t)p.batch * p.in_c * p.in_h * p.in_w;
    const size_t n_out = (size_t)p.batch * p.out_c * p.out_h * p.out_w;
    int8_t *x = malloc(n_in);
    int8_t *wv = malloc((size_t)p.out_c * k);
    const size_t row_bytes = qf_ref_packed_row_bytes(k, nc->w_bits);
    uint8_t *wp = malloc(row_bytes * p.out_c);
    int8_t *want = malloc(n_out), *got = malloc(n_out + 2 * GUARD);
    const int cpg = p.in_c / p.groups, khw = p.k_h * p.k_w;
    size_t wb = qf_x86_conv_weights_bytes(lay, p.out_c, cpg, khw, p.groups);
    const size_t wb_dw = qf_x86_dw_weights_bytes(p.out_c, p.k_h, p.k_w);
    if (wb_dw > wb) wb = wb_dw;
    void *packed = malloc(wb + 1);
    size_t sb = qf_x86_conv2d_s8_scratch_size(&p, lay);
    char *scr = malloc(sb + 1);
    int8_t *res = NULL, *want_add = NULL;
    void *epi_mem = NULL;
    int rc = 1;
    if (!x || !wv || !wp || !want || !got || !packed || !scr || !wb || !sb) {
        snprintf(msg, msg_len, "setup failed (wb %zu sb %zu)", wb, sb);
        goto done;
    }
    for (size_t i = 0; i < n_in; i++)
        x[i] = (int8_t)(rnd(0, 7) == 0 ? p.in_zp : rnd(-128, 127));
    make_weights(nc, p.out_c, k, wv);
    qf_err e;
    e.msg[0] = 0;
    if (qf_ref_pack_weights(wv, p.out_c, k, nc->w_bits, wp, &e) != QF_OK ||
        qf_ref_conv2d_s8(&p, x, wp, nc->bias ? pp.bias : NULL, want, &e) != QF_OK) {
        snprintf(msg, msg_len, "reference: %s", e.msg);
        goto done;
    }
    qf_x86_weights xw;
    /* odd addresses: the kernels must not assume alignment */
    if (qf_x86_pack_conv_weights(lay, wp, p.out_c, cpg, khw, nc->w_bits, p.groups,
                                 (char *)packed + 0, &xw, &e) != QF_OK) {
        snprintf(msg, msg_len, "pack: %s", e.msg);
        goto done;
    }
    if (nc->wk == W_SAT_OK && nc->w_bits == 8 && !xw.maddubs_ok) {
        snprintf(msg, msg_len, "saturation-free weights flagged unsafe");
        goto done;
    }
    /* the -65 is tap 1 of channel 0: conv8c4 pairs it with channel 1 (or,
     * 1x1, with channel 0) */
    const int paired = lay == QX_LAYOUT_CONV8 || cpg >= 2 || khw == 1;
    if (nc->wk == W_SAT_OVER && k >= 2 && paired && xw.maddubs_ok) {
        snprintf(msg, msg_len, "a pair over the AVX2 limit was not flagged");
        goto done;
    }
    /* the sign form: every weight set vpmaddubsw could saturate on (packed
     * weights are within +-127; a -128 would keep them on the 16-bit path) */
    if (xw.sign_ok != !xw.maddubs_ok) {
        snprintf(msg, msg_len, "sign form %s for these weights",
                 xw.sign_ok ? "allowed" : "refused");
        goto done;
    }
    /* epilogue tables built ahead for this layer, and stale ones (built for
     * another input zero point) that the kernel must not use */
    const int32_t *bias = nc->bias ? pp.bias : NULL;
    const size_t eb = qf_x86_conv_epi_bytes(&xw);
    epi_mem = malloc(2 * eb + 8);
    qf_x86_conv_epi epi, stale;
    const int32_t stale_zp = p.in_zp == 127 ? 126 : p.in_zp + 1;
    if (!eb || !epi_mem ||
        qf_x86_conv_epi_build(&xw, &p.rq, p.in_zp, bias, epi_mem, &epi, &e) != QF_OK ||
        qf_x86_conv_epi_build(&xw, &p.rq, stale_zp, bias, (char *)epi_mem + eb, &stale, &e) !=
            QF_OK) {
        snprintf(msg, msg_len, "epilogue tables (%zu bytes): %s", eb, e.msg);
        goto done;
    }
    /* the general kernel (tables per call, prebuilt, stale), then the
     * depthwise one where it applies */
    const int dw =
        isa == QF_ISA_AVX512VNNI && lay == QX_LAYOUT_CONV8 && qf_x86_dwconv_supported(&p);
    static const char *const pass_name[] = {"general", "general, prebuilt tables",
                                            "general, stale tables", "depthwise"};
    for (int pass = 0; pass < 3 + dw; pass++) {
        memset(got, 0x5A, n_out + 2 * GUARD);
        qf_status s;
        if (pass == 0) {
            s = qf_x86_conv2d_s8(pool, isa, &p, x, &xw, bias, got + GUARD, scr + 1, sb, &e);
        } else if (pass < 3) {
            s = qf_x86_conv2d_s8_add(pool, isa, &p, x, &xw, bias, pass == 1 ? &epi : &stale, NULL,
                                     got + GUARD, scr + 1, sb, &e);
        } else {
            qf_x86_weights dww;
            s = qf_x86_pack_dw_weights(wp, p.out_c, p.k_h, p.k_w, nc->w_bits, packed, &dww, &e);
            if (s == QF_OK)
                s = qf_x86_dwconv2d_s8(pool, isa, &p, x, &dww, nc->bias ? pp.bias : NULL,
                                       got + GUARD, &e);
        }
        if (check_run(s, &e, got, want, n_out, pass_name[pass], msg, msg_len)) goto done;
        if (pass == 3) n_dw_runs++;
    }
    /* (AVX2's transposed tiles take plain vpmaddubsw weights only) */
    if (lay == QX_LAYOUT_CONV8C4 && tt_on && qf_x86_conv_uses_tt(&p, isa) &&
        (isa != QF_ISA_AVX2 || xw.maddubs_ok))
        n_tt_runs++;
    if (isa == QF_ISA_AVX2 && xw.sign_ok) n_sign_runs++;
    if (isa == QF_ISA_AVX2 && !xw.maddubs_ok && !xw.sign_ok) n_wide_runs++;
    /* AVX2: weights of the sign form through the 16-bit path too */
    if (isa == QF_ISA_AVX2 && xw.sign_ok) {
        qf_x86_weights ww = xw;
        ww.sign_ok = false;
        memset(got, 0x5A, n_out + 2 * GUARD);
        const qf_status s =
            qf_x86_conv2d_s8(pool, isa, &p, x, &ww, bias, got + GUARD, scr + 1, sb, &e);
        if (check_run(s, &e, got, want, n_out, "16-bit", msg, msg_len)) goto done;
        n_wide_runs++;
    }
    /* AVX2: the same weights split for vpmaddubsw (pairs that could
     * saturate clamped to +-64, the remainders as fixes), packed again */
    if (isa == QF_ISA_AVX2 && qf_x86_conv_split_bytes(&xw)) {
        qf_x86_weights sw;
        const size_t fb = qf_x86_conv_split_bytes(&xw);
        int32_t *fix = malloc(fb);
        int8_t *wdata = malloc(wb);
        qf_status s = !fix || !wdata
                          ? QF_ERR_NOMEM
                          : qf_x86_pack_conv_weights(lay, wp, p.out_c, cpg, khw, nc->w_bits,
                                                     p.groups, wdata, &sw, &e);
        if (s == QF_OK && qf_x86_conv_split_bytes(&sw) != fb) s = QF_ERR_INVALID_ARG;
        if (s == QF_OK) s = qf_x86_conv_split(&sw, wdata, fix, fb, &e);
        if (s == QF_OK && (!sw.maddubs_ok || !sw.fix_start || qf_x86_conv_split_bytes(&sw) != 0))
            s = QF_ERR_INVALID_ARG;
        memset(got, 0x5A, n_out + 2 * GUARD);
        if (s == QF_OK)
            s = qf_x86_conv2d_s8(pool, isa, &p, x, &sw, bias, got + GUARD, scr + 1, sb, &e);
        const int bad = check_run(s, &e, got, want, n_out, "split", msg, msg_len);
        free(fix);
        free(wdata);
        if (bad) goto done;
        n_split_runs++;
    }
    /* the fused residual add: the FP32 QAdd of the conv's result and a
     * random residual (either operand order, sometimes in place), against
     * qf_ref_add_s8 on the reference conv output */
    {
        qf_ref_eltwise_params ep;
        memset(&ep, 0, sizeof ep);
        ep.rank = 1;
        ep.out_dims[0] = ep.a_dims[0] = ep.b_dims[0] = (int64_t)n_out;
        ep.a_scale = 0.01f * (float)rnd(1, 9);
        ep.b_scale = 0.01f * (float)rnd(1, 9);
        ep.out_scale = 0.01f * (float)rnd(2, 12);
        ep.a_zp = rnd(-20, 20);
        ep.b_zp = rnd(-128, 127);
        ep.out_zp = rnd(-30, 30);
        ep.act_min = rnd(0, 1) ? ep.out_zp : -128; /* a fused ReLU or none */
        ep.act_max = 127;
        ep.mode = QF_RQ_FP32;
        const int conv_is_a = rnd(0, 1), in_place = rnd(0, 1);
        res = malloc(n_out);
        want_add = malloc(n_out);
        if (!res || !want_add) {
            snprintf(msg, msg_len, "setup failed (residual)");
            goto done;
        }
        for (size_t i = 0; i < n_out; i++)
            res[i] = (int8_t)rnd(-128, 127);
        /* the depthwise pass reused the weight buffer */
        if (dw && qf_x86_pack_conv_weights(lay, wp, p.out_c, cpg, khw, nc->w_bits, p.groups, packed,
                                           &xw, &e) != QF_OK) {
            snprintf(msg, msg_len, "repack: %s", e.msg);
            goto done;
        }
        qf_x86_residual r;
        if (qf_ref_add_s8(&ep, conv_is_a ? want : res, conv_is_a ? res : want, want_add, &e) !=
                QF_OK ||
            qf_x86_add_consts(&ep, &r.c, &e) != QF_OK) {
            snprintf(msg, msg_len, "residual reference: %s", e.msg);
            goto done;
        }
        memset(got, 0x5A, n_out + 2 * GUARD);
        if (in_place) memcpy(got + GUARD, res, n_out);
        r.res = in_place ? got + GUARD : res;
        r.conv_is_a = conv_is_a;
        if (qf_x86_conv2d_s8_add(pool, isa, &p, x, &xw, bias, rnd(0, 1) ? &epi : NULL, &r,
                                 got + GUARD, scr + 1, sb, &e) != QF_OK) {
            snprintf(msg, msg_len, "residual x86 kernel: %s", e.msg);
            goto done;
        }
        if (!guards_ok(got, n_out)) {
            snprintf(msg, msg_len, "residual: output guard overwritten");
            goto done;
        }
        for (size_t i = 0; i < n_out; i++)
            if (got[GUARD + i] != want_add[i]) {
                snprintf(msg, msg_len, "residual (conv is %s%s): byte %zu: %d, reference %d",
                         conv_is_a ? "a" : "b", in_place ? ", in place" : "", i, got[GUARD + i],
                         want_add[i]);
                goto done;
            }
    }
    rc = 0;
done:
    free(x);
    free(wv);
    free(wp);
    free(want);
    free(got);
    free(packed);
    free(scr);
    free(res);
    free(want_add);
    free(epi_mem);
    return rc;
}

static qf_threadpool *pool2(void) {
    static qf_threadpool *p;
    if (!p) qf_threadpool_create(2, &p, NULL);
    return p;
}

static void test_conv_matrix(void) {
    qf_x86_set_serial_macs(0);          /* small layers too go through the thread pool */
    qf_x86_conv_set_split_always(true); /* split whatever the weights */
    int ran = 0;
    for (size_t ii = 0; ii < QF_ARRAY_LEN(isas); ii++) {
        if (!qf_x86_isa_usable(isas[ii])) {
            printf("  skip conv on %s (not supported by this CPU)\n", qf_isa_name(isas[ii]));
            n_skipped++;
            continue;
        }
        /* both layouts on every geometry: conv8 (taps per lane) and conv8c4
         * (channels per lane, planes read in place), the latter also with
         * the transposed tiles kept off */
        static const qx_layout lays[] = {QX_LAYOUT_CONV8, QX_LAYOUT_CONV8C4, QX_LAYOUT_CONV8C4};
        static const char *const lay_name[] = {"conv8", "conv8c4", "conv8c4 without tt"};
        for (size_t li = 0; li < 3; li++) {
            tt_on = li != 2;
            qf_x86_conv_set_tt(tt_on);
            /* the plain stride-1 fill too, as on CPUs without VBMI */
            qf_x86_conv_set_fill_vbmi(tt_on);
            for (size_t gi = 0; gi < QF_ARRAY_LEN(geo_cases); gi++)
                for (size_t ni = 0; ni < QF_ARRAY_LEN(num_cases); ni++)
                    for (int th = 0; th < 2; th++) {
                        char msg[200];
                        uint32_t seed = rng;
                        int rc = conv_one(isas[ii], th ? pool2() : NULL, lays[li], &geo_cases[gi],
                                          &num_cases[ni], msg, sizeof msg);
                        CHECK_MSG(rc == 0, "%s, %s, %s x %s, %d thread(s): %s (seed %u)",
                                  qf_isa_name(isas[ii]), lay_name[li], geo_cases[gi].name,
                                  num_cases[ni].name, th + 1, msg, seed);
                        ran++;
                    }
        }
        qf_x86_conv_set_tt(true);
        qf_x86_conv_set_fill_vbmi(true);
        tt_on = true;
    }
    printf("  conv: %d runs bit-exact (%d also through the depthwise kernel, %d on transposed "
           "tiles, %d on AVX2 split weights, %d in the AVX2 sign form, %d on its 16-bit path)\n",
           ran, n_dw_runs, n_tt_runs, n_split_runs, n_sign_runs, n_wide_runs);
    /* 8-bit random and extreme weights split on every geometry (both
     * layouts, 1 and 2 threads) */
    qf_x86_conv_set_split_always(false);
    if (qf_x86_isa_usable(QF_ISA_AVX2)) {
        CHECK(n_split_runs >= (int)QF_ARRAY_LEN(geo_cases) * 3 * 2 * 4);
        /* the same runs in the sign form, and again on the 16-bit path */
        CHECK(n_sign_runs >= (int)QF_ARRAY_LEN(geo_cases) * 3 * 2 * 4);
        CHECK(n_wide_runs >= n_sign_runs);
    }
    if (qf_x86_isa_usable(QF_ISA_AVX512VNNI)) CHECK(n_dw_runs >= 9 * 15 * 2);
    /* the nine "tt" geometries and "3x3 K=1152 bands", 1 and 2 threads:
     * every numerics case on AVX-512 VNNI, on AVX2 those whose weights
     * plain vpmaddubsw takes (4- and 2-bit, and the 8-bit "sat edge ok") */
    if (qf_x86_isa_usable(QF_ISA_AVX512VNNI))
        CHECK(n_tt_runs >= 10 * (int)QF_ARRAY_LEN(num_cases) * 2);
    else if (qf_x86_isa_usable(QF_ISA_AVX2))
        CHECK(n_tt_runs >= 10 * 5 * 2);
}

static int gemm_one(qf_isa isa, qf_threadpool *pool, const gcase *gc, const numerics *nc, char *msg,
                    size_t msg_len) {
    qf_ref_gemm_params p;
    memset(&p, 0, sizeof p);
    p.m = gc->m;
    p.n = gc->n;
    p.k = gc->k;
    p.in_zp = nc->in_zp;
    p.w_bits = nc->w_bits;
    prepared pp;
    make_rq(nc, p.n, p.k, &pp, &p.rq);
    int8_t *x = malloc((size_t)p.m * p.k), *wv = malloc((size_t)p.n * p.k);
    const size_t row_bytes = qf_ref_packed_row_bytes(p.k, nc->w_bits);
    uint8_t *wp = malloc(row_bytes * p.n);
    const size_t n_out = (size_t)p.m * p.n;
    int8_t *want = malloc(n_out), *got = malloc(n_out + 2 * GUARD);
    size_t wb = qf_x86_weights_bytes(QX_LAYOUT_GEMM16, p.n, p.k, 1);
    void *packed = malloc(wb);
    size_t sb = qf_x86_gemm_s8_scratch_size(&p);
    char *scr = malloc(sb + 3);
    int rc = 1;
    qf_err e;
    e.msg[0] = 0;
    qf_x86_weights xw;
    if (!x || !wv || !wp || !want || !got || !packed || !scr || !wb || !sb) {
        snprintf(msg, msg_len, "setup failed");
        goto done;
    }
    for (int i = 0; i < p.m * p.k; i++)
        x[i] = (int8_t)rnd(-128, 127);
    make_weights(nc, p.n, p.k, wv);
    if (qf_ref_pack_weights(wv, p.n, p.k, nc->w_bits, wp, &e) != QF_OK ||
        qf_ref_gemm_s8(&p, x, wp, nc->bias ? pp.bias : NULL, want, &e) != QF_OK ||
        qf_x86_pack_weights(QX_LAYOUT_GEMM16, wp, p.n, p.k, nc->w_bits, 1, packed, &xw, &e) !=
            QF_OK) {
        snprintf(msg, msg_len, "setup: %s", e.msg);
        goto done;
    }
    if (xw.sign_ok != !xw.maddubs_ok) {
        snprintf(msg, msg_len, "sign form %s for these weights",
                 xw.sign_ok ? "allowed" : "refused");
        goto done;
    }
    /* AVX2 weights of the sign form also through the 16-bit path */
    for (int pass = 0; pass < 1 + (isa == QF_ISA_AVX2 && xw.sign_ok); pass++) {
        qf_x86_weights ww = xw;
        if (pass) ww.sign_ok = false;
        const char *which = pass ? "16-bit" : "default";
        memset(got, 0x5A, n_out + 2 * GUARD);
        const qf_status s = qf_x86_gemm_s8(pool, isa, &p, x, &ww, nc->bias ? pp.bias : NULL,
                                           got + GUARD, scr + 3, sb, &e);
        if (check_run(s, &e, got, want, n_out, which, msg, msg_len)) goto done;
        if (isa == QF_ISA_AVX2 && ww.sign_ok) n_gemm_sign++;
        if (isa == QF_ISA_AVX2 && !ww.maddubs_ok && !ww.sign_ok) n_gemm_wide++;
    }
    rc = 0;
done:
    free(x);
    free(wv);
    free(wp);
    free(want);
    free(got);
    free(packed);
    free(scr);
    return rc;
}

static void test_gemm_matrix(void) {
    qf_x86_set_serial_macs(0);
    int ran = 0;
    for (size_t ii = 0; ii < QF_ARRAY_LEN(isas); ii++) {
        if (!qf_x86_isa_usable(isas[ii])) {
            printf("  skip gemm on %s (not supported by this CPU)\n", qf_isa_name(isas[ii]));
            n_skipped++;
            continue;
        }
        for (size_t gi = 0; gi < QF_ARRAY_LEN(gemm_cases); gi++)
            for (size_t ni = 0; ni < QF_ARRAY_LEN(num_cases); ni++)
                for (int th = 0; th < 2; th++) {
                    char msg[200];
                    int rc = gemm_one(isas[ii], th ? pool2() : NULL, &gemm_cases[gi],
                                      &num_cases[ni], msg, sizeof msg);
                    CHECK_MSG(rc == 0, "%s, gemm %dx%dx%d x %s, %d thread(s): %s",
                              qf_isa_name(isas[ii]), gemm_cases[gi].m, gemm_cases[gi].n,
                              gemm_cases[gi].k, num_cases[ni].name, th + 1, msg);
                    ran++;
                }
    }
    printf("  gemm: %d runs bit-exact (%d in the AVX2 sign form, %d on the 16-bit path)\n", ran,
           n_gemm_sign, n_gemm_wide);
    if (qf_x86_isa_usable(QF_ISA_AVX2)) {
        CHECK(n_gemm_sign >= (int)QF_ARRAY_LEN(gemm_cases) * 2);
        CHECK(n_gemm_wide >= n_gemm_sign);
    }
}

/* FIXED requantization in isolation: k = 1 gemms whose accumulators span
 * the int32 range (biases anywhere, including INT32_MIN/MAX), with Q31
 * multipliers and shifts drawn over their whole domain ([-31, 31] takes the
 * vector epilogue; one pass with shifts down to -62 takes the lane-by-lane
 * fallback), compared with the reference. */
/* FIXED requantization on transposed conv tiles (and, with them kept off,
 * on slot tiles): random per-channel multipliers with shifts in [-31, 31]
 * (vector form) and, on some passes, down to -62 (lane by lane), full-range
 * biases, against qf_ref_conv2d_s8. */
static void fixed_epilogue_tt(qf_isa isa);
static void test_fixed_epilogue_tt(void) {
    for (size_t ii = 0; ii < QF_ARRAY_LEN(isas); ii++) {
        if (!qf_x86_isa_usable(isas[ii])) {
            printf("  skip FIXED transposed tiles on %s (not supported by this CPU)\n",
                   qf_isa_name(isas[ii]));
            n_skipped++;
            continue;
        }
        fixed_epilogue_tt(isas[ii]);
    }
}

static void fixed_epilogue_tt(qf_isa isa) {
    enum { C = 32, H = 4, W = 5, OC = 44 };
    static qf_ref_rescale mult[OC];
    static int32_t bias[OC];
    static int8_t x[C * H * W], wv[OC * C * 9], want[OC * H * W], got[OC * H * W];
    static char packed[1 << 16], scr[1 << 18];
    qf_ref_conv_params p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.in_c = C;
    p.in_h = p.out_h = H;
    p.in_w = p.out_w = W;
    p.out_c = OC;
    p.k_h = p.k_w = 3;
    p.stride_h = p.stride_w = p.dil_h = p.dil_w = 1;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    p.groups = 1;
    p.w_bits = 8;
    p.rq.mode = QF_RQ_FIXED;
    p.rq.mult = mult;
    p.rq.n_mult = OC;
    CHECK(qf_x86_conv_uses_tt(&p, isa));
    CHECK(qf_x86_conv_weights_bytes(QX_LAYOUT_CONV8C4, OC, C, 9, 1) <= sizeof packed);
    CHECK(qf_x86_conv2d_s8_scratch_size(&p, QX_LAYOUT_CONV8C4) <= sizeof scr);
    int runs = 0;
    for (int pass = 0; pass < 24; pass++) {
        const int deep = pass % 3 == 2; /* shifts below -31 */
        for (int c = 0; c < OC; c++) {
            const int r = rnd(0, 9);
            mult[c].mult_q = r == 0 ? 0 : r == 1 ? INT32_MAX : rnd(1 << 30, INT32_MAX);
            /* mostly shifts that bring these sums (about +-2^17) into
             * range, some anywhere in [-31, 31], and on deep passes some
             * below -31 */
            const int k = rnd(0, 9);
            mult[c].shift = deep && k == 0 ? rnd(-62, -32) : k == 1 ? rnd(-31, 31) : rnd(-15, -7);
            mult[c].mult_f = 1.0f;
            bias[c] = rnd(0, 7) == 0 ? (int32_t)(rng ^ (rng << 7)) : rnd(-3000, 3000);
        }
        for (size_t i = 0; i < sizeof x; i++)
            x[i] = (int8_t)rnd(-128, 127);
        /* (AVX2's transposed tiles take weights plain vpmaddubsw takes) */
        const int wmax = isa == QF_ISA_AVX2 ? 63 : 127;
        for (size_t i = 0; i < sizeof wv; i++)
            wv[i] = (int8_t)rnd(-wmax, wmax);
        p.in_zp = rnd(-128, 127);
        p.rq.out_zp = rnd(-128, 127);
        p.rq.act_min = rnd(0, 1) ? -128 : rnd(-128, 0);
        p.rq.act_max = rnd(0, 1) ? 127 : rnd(p.rq.act_min, 127);
        qf_err e;
        qf_x86_weights xw;
        CHECK_OK(qf_ref_conv2d_s8(&p, x, (const uint8_t *)wv, bias, want, &e));
        CHECK_OK(qf_x86_pack_conv_weights(QX_LAYOUT_CONV8C4, (const uint8_t *)wv, OC, C, 9, 8, 1,
                                          packed, &xw, &e));
        CHECK(isa != QF_ISA_AVX2 || xw.maddubs_ok);
        for (int tt = 1; tt >= 0; tt--) {
            qf_x86_conv_set_tt(tt);
            memset(got, 0x5A, sizeof got);
            CHECK_OK(qf_x86_conv2d_s8(pass % 2 ? pool2() : NULL, isa, &p, x, &xw, bias, got, scr,
                                      sizeof scr, &e));
            for (size_t i = 0; i < sizeof got; i++)
                if (got[i] != want[i]) {
                    CHECK_MSG(0, "%s, %s tiles, pass %d, channel %zu pixel %zu: %d, reference %d",
                              qf_isa_name(isa), tt ? "transposed" : "slot", pass, i / (H * W),
                              i % (H * W), got[i], want[i]);
                    break;
                }
            runs++;
        }
    }
    qf_x86_conv_set_tt(true);
    printf("  fixed epilogue, conv tiles (%s): %d runs bit-exact\n", qf_isa_name(isa), runs);
}

static void test_fixed_epilogue(void) {
    enum { M = 37, N = 48 };
    static qf_ref_rescale mult[N];
    static int32_t bias[N];
    int8_t x[M * 2], wv[N * 2], want[M * N], got[M * N];
    char packed[4096];
    static char scr[1 << 16];
    int runs = 0;
    for (size_t ii = 0; ii < QF_ARRAY_LEN(isas); ii++) {
        if (!qf_x86_isa_usable(isas[ii])) continue;
        for (int pass = 0; pass < 40; pass++) {
            const int deep = pass == 39; /* shifts below -31 */
            for (int c = 0; c < N; c++) {
                int r = rnd(0, 9);
                mult[c].mult_q = r == 0   ? 0
                                 : r == 1 ? (1 << 30)
                                 : r == 2 ? INT32_MAX
                                          : rnd(1 << 30, INT32_MAX);
                mult[c].shift = deep ? rnd(-62, 31) : rnd(-31, 31);
                mult[c].mult_f = 1.0f;
                r = rnd(0, 9);
                bias[c] = r == 0   ? INT32_MIN
                          : r == 1 ? INT32_MAX
                          : r < 5  ? rnd(-300, 300)
                                   : (int32_t)(rng ^ (rng << 7));
            }
            for (int i = 0; i < M * 2; i++)
                x[i] = (int8_t)rnd(-128, 127);
            for (int i = 0; i < N * 2; i++)
                wv[i] = (int8_t)rnd(-127, 127);
            qf_ref_gemm_params p;
            memset(&p, 0, sizeof p);
            p.m = M;
            p.n = N;
            p.k = 2;
            p.in_zp = rnd(-128, 127);
            p.w_bits = 8;
            p.rq.mode = QF_RQ_FIXED;
            p.rq.mult = mult;
            p.rq.n_mult = N;
            p.rq.out_zp = rnd(-128, 127);
            p.rq.act_min = rnd(0, 1) ? -128 : rnd(-128, 0);
            p.rq.act_max = rnd(0, 1) ? 127 : rnd(p.rq.act_min, 127);
            qf_err e;
            qf_x86_weights xw;
            CHECK(qf_x86_weights_bytes(QX_LAYOUT_GEMM16, N, 2, 1) <= sizeof packed);
            CHECK(qf_x86_gemm_s8_scratch_size(&p) <= sizeof scr);
            CHECK_OK(qf_ref_gemm_s8(&p, x, (const uint8_t *)wv, bias, want, &e));
            CHECK_OK(qf_x86_pack_weights(QX_LAYOUT_GEMM16, (const uint8_t *)wv, N, 2, 8, 1, packed,
                                         &xw, &e));
            CHECK_OK(qf_x86_gemm_s8(NULL, isas[ii], &p, x, &xw, bias, got, scr, sizeof scr, &e));
            for (int i = 0; i < M * N; i++)
                CHECK_MSG(got[i] == want[i], "%s pass %d [%d][%d]: %d, reference %d (m %d s %d)",
                          qf_isa_name(isas[ii]), pass, i / N, i % N, got[i], want[i],
                          (int)mult[i % N].mult_q, (int)mult[i % N].shift);
            runs++;
        }
    }
    printf("  fixed epilogue: %d runs bit-exact\n", runs);
}

/* ---- through the runtime ------------------------------------------------- */

/* One QConv (general, depthwise 3x3/5x5, strided) or QGemm node in a
 * session of 1 and of 2 threads: the bytes of the reference kernel either
 * way (the active ISA's path: x86 packing at parse, the pool from the
 * session options). */
/* Weight zero points: symmetric; asymmetric 8-bit whose w - zp fit int8
 * (folded into the packed weights); 8-bit ones that do not (the portable
 * kernels correct for them); 4-bit values (folded). */
typedef enum { WZ_NONE, WZ_FOLD8, WZ_WIDE8, WZ_FOLD4 } wz_kind;

typedef struct sess_case {
    const char *name;
    int gemm, n, c, h, w, oc, k, stride, pad, group;
    wz_kind wz;
} sess_case;

static const sess_case sess_cases[] = {
    {"conv 3x3", 0, 3, 16, 9, 11, 24, 3, 1, 1, 1, WZ_NONE},
    {"conv 1x1 stride 2", 0, 2, 12, 8, 8, 20, 1, 2, 0, 1, WZ_NONE},
    {"depthwise 3x3", 0, 2, 16, 10, 19, 16, 3, 1, 1, 16, WZ_NONE},
    {"depthwise 5x5 stride 2", 0, 1, 8, 13, 21, 8, 5, 2, 2, 8, WZ_NONE},
    {"gemm", 1, 5, 40, 0, 0, 20, 0, 0, 0, 1, WZ_NONE},
    {"conv 3x3 asym w8 folded", 0, 2, 16, 9, 11, 24, 3, 1, 1, 1, WZ_FOLD8},
    {"conv 3x3 asym w8 wide", 0, 2, 16, 9, 11, 24, 3, 1, 1, 1, WZ_WIDE8},
    {"conv 3x3 asym w4", 0, 2, 16, 9, 11, 24, 3, 1, 1, 1, WZ_FOLD4},
    {"stem 3x3 asym w4", 0, 2, 3, 12, 12, 16, 3, 2, 1, 1, WZ_FOLD4},
    {"conv 1x1 asym w8 wide", 0, 2, 12, 8, 8, 20, 1, 2, 0, 1, WZ_WIDE8},
    {"depthwise 3x3 asym w8 folded", 0, 2, 16, 10, 19, 16, 3, 1, 1, 16, WZ_FOLD8},
    {"depthwise 3x3 asym w8 wide", 0, 2, 16, 10, 19, 16, 3, 1, 1, 16, WZ_WIDE8},
    {"depthwise 5x5 asym w4", 0, 1, 8, 13, 21, 8, 5, 2, 2, 8, WZ_FOLD4},
    {"gemm asym w8 folded", 1, 5, 40, 0, 0, 20, 0, 0, 0, 1, WZ_FOLD8},
    {"gemm asym w8 wide", 1, 5, 40, 0, 0, 20, 0, 0, 0, 1, WZ_WIDE8},
    {"gemm asym w4", 1, 5, 40, 0, 0, 20, 0, 0, 0, 1, WZ_FOLD4},
};

static int sess_add_value(qf_graph *g, const char *name, qf_dtype dt, int rank, const int64_t *dims,
                          const void *data, float scale, int32_t zp) {
    int v = qf_graph_add_value(g, name, dt, data ? rank : -1, data ? dims : NULL);
    if (v < 0) return -1;
    if (data) {
        qf_tensor t;
        memset(&t, 0, sizeof t);
        t.dtype = dt;
        t.rank = rank;
        for (int i = 0; i < rank; i++)
            t.dims[i] = dims[i];
        t.data = (void *)data;
        if (qf_graph_set_const(g, v, &t, NULL) != QF_OK) return -1;
    } else {
        qf_value_set_qparams(g, v, 8, -1, 1, &scale, &zp);
    }
    return v;
}

/* Build, run with `threads`, copy the output into y (n_y bytes). */
static qf_status sess_run(const sess_case *c, const int8_t *x, const int8_t *w, const int32_t *bias,
                          const float *wscale, const int32_t *wzp, int threads, int8_t *y,
                          size_t n_y, char *kernel, size_t kernel_len, qf_err *e) {
    qf_graph *g = qf_graph_create();
    if (!g) return QF_ERR_NOMEM;
    const int cpg = c->c / c->group;
    int64_t wdims[4] = {c->oc, c->gemm ? c->c : cpg, c->k, c->k};
    int64_t bdims[1] = {c->oc};
    int vx = sess_add_value(g, "x", QF_DT_I8, 0, NULL, NULL, 0.05f, -3);
    int vw = sess_add_value(g, "w", QF_DT_I8, c->gemm ? 2 : 4, wdims, w, 0, 0);
    int vb = sess_add_value(g, "b", QF_DT_I32, 1, bdims, bias, 0, 0);
    int vy = sess_add_value(g, "y", QF_DT_I8, 0, NULL, NULL, 0.5f, 4);
    if (vx < 0 || vw < 0 || vb < 0 || vy < 0) {
        qf_graph_free(g);
        return QF_ERR_INTERNAL;
    }
    qf_value_set_qparams(g, vw, c->wz == WZ_FOLD4 ? 4 : 8, 0, c->oc, wscale, wzp);
    qf_graph_add_input(g, vx);
    qf_graph_add_output(g, vy);
    int64_t pads[4] = {c->pad, c->pad, c->pad, c->pad}, strides[2] = {c->stride, c->stride};
    qf_attr at[3] = {
        {.name = "pads", .type = QF_ATTR_INTS, .ints = pads, .n = 4},
        {.name = "strides", .type = QF_ATTR_INTS, .ints = strides, .n = 2},
        {.name = "group", .type = QF_ATTR_INT, .i = c->group},
    };
    int ins[3] = {vx, vw, vb};
    qf_status st = QF_OK;
    if (qf_graph_add_node(g, "layer", c->gemm ? "QGemm" : "QConv", "qforge", 1, ins, 3, &vy, 1, at,
                          c->gemm ? 0 : 3) < 0 ||
        (st = qf_graph_toposort(g, e)) || (st = qf_graph_parse_ops(g, e))) {
        qf_graph_free(g);
        return st ? st : QF_ERR_INTERNAL;
    }
    qf_model *m = NULL;
    qf_session *s = NULL;
    if ((st = qf_model_from_graph(g, "x86.qfm", &m, e))) {
        qf_graph_free(g);
        return st;
    }
    qf_session_options opt = {.num_threads = threads};
    qf_tensor xt, yt;
    memset(&xt, 0, sizeof xt);
    xt.dtype = QF_DT_I8;
    xt.rank = c->gemm ? 2 : 4;
    xt.dims[0] = c->n;
    xt.dims[1] = c->c;
    xt.dims[2] = c->h;
    xt.dims[3] = c->w;
    xt.data = (void *)x;
    if (!(st = qf_session_create(m, &opt, &s, e)) && !(st = qf_session_run(s, &xt, 1, &yt, 1, e))) {
        if ((size_t)qf_tensor_numel(&yt) != n_y)
            st = QF_ERR_INTERNAL;
        else
            memcpy(y, yt.data, n_y);
        const char *kn = qf_session_node_kernel(s, 0);
        snprintf(kernel, kernel_len, "%s", kn ? kn : "(none)");
    }
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

/* ---- residual fusion in a session ---------------------------------------
 * y = QAdd(conv(x), x) (or QAdd(x, conv(x))): the session runs the add in
 * the conv's epilogue. Checked against qf_ref_conv2d_s8 + qf_ref_add_s8,
 * with 1 and 2 threads, with an observer (which turns fusion off), and with
 * the conv output also a graph output (which must not fuse). */
typedef struct fuse_case {
    const char *name;
    int conv_slot; /* the conv's input index in the add */
    int expose;    /* the conv output is a graph output too */
    int relu;      /* the add's act_min at its zero point */
} fuse_case;

static qf_status count_observer(void *user, const qf_graph *g, int node, const qf_tensor *outs,
                                int n_outs) {
    (void)g, (void)node, (void)outs, (void)n_outs;
    (*(int *)user)++;
    return QF_OK;
}

static qf_status fuse_run(const fuse_case *fc, const int8_t *x, const int8_t *w,
                          const int32_t *bias, const float *wscale, int threads, int observe,
                          int8_t *y, size_t n_y, int *fused, int *workers, qf_err *e) {
    enum { N = 2, C = 16, H = 9, W = 13 };
    qf_graph *g = qf_graph_create();
    if (!g) return QF_ERR_NOMEM;
    int64_t wdims[4] = {C, C, 3, 3}, bdims[1] = {C};
    int vx = sess_add_value(g, "x", QF_DT_I8, 0, NULL, NULL, 0.05f, -3);
    int vw = sess_add_value(g, "w", QF_DT_I8, 4, wdims, w, 0, 0);
    int vb = sess_add_value(g, "b", QF_DT_I32, 1, bdims, bias, 0, 0);
    int vt = sess_add_value(g, "t", QF_DT_I8, 0, NULL, NULL, 0.5f, 4);
    int vy = sess_add_value(g, "y", QF_DT_I8, 0, NULL, NULL, 0.3f, -7);
    int32_t zeros[C] = {0};
    if (vx < 0 || vw < 0 || vb < 0 || vt < 0 || vy < 0) {
        qf_graph_free(g);
        return QF_ERR_INTERNAL;
    }
    qf_value_set_qparams(g, vw, 8, 0, C, wscale, zeros);
    qf_graph_add_input(g, vx);
    qf_graph_add_output(g, vy);
    if (fc->expose) qf_graph_add_output(g, vt);
    int64_t pads[4] = {1, 1, 1, 1};
    qf_attr at[1] = {{.name = "pads", .type = QF_ATTR_INTS, .ints = pads, .n = 4}};
    qf_attr aa[1] = {{.name = "act_min", .type = QF_ATTR_INT, .i = -7}};
    int ins[3] = {vx, vw, vb};
    int add_in[2] = {fc->conv_slot == 0 ? vt : vx, fc->conv_slot == 0 ? vx : vt};
    qf_status st = QF_OK;
    if (qf_graph_add_node(g, "conv", "QConv", "qforge", 1, ins, 3, &vt, 1, at, 1) < 0 ||
        qf_graph_add_node(g, "add", "QAdd", "qforge", 1, add_in, 2, &vy, 1, aa, fc->relu ? 1 : 0) <
            0 ||
        (st = qf_graph_toposort(g, e)) || (st = qf_graph_parse_ops(g, e))) {
        qf_graph_free(g);
        return st ? st : QF_ERR_INTERNAL;
    }
    qf_model *m = NULL;
    qf_session *s = NULL;
    if ((st = qf_model_from_graph(g, "fuse.qfm", &m, e))) {
        qf_graph_free(g);
        return st;
    }
    qf_session_options opt = {.num_threads = threads};
    qf_tensor xt, yt[2];
    memset(&xt, 0, sizeof xt);
    xt.dtype = QF_DT_I8;
    xt.rank = 4;
    xt.dims[0] = N, xt.dims[1] = C, xt.dims[2] = H, xt.dims[3] = W;
    xt.data = (void *)x;
    int seen = 0;
    if (!(st = qf_session_create(m, &opt, &s, e))) {
        if (observe) qf_session_set_observer(s, count_observer, &seen);
        st = qf_session_run(s, &xt, 1, yt, 1, e);
    }
    if (!st) {
        if ((size_t)qf_tensor_numel(&yt[0]) != n_y || (observe && seen != 2))
            st = QF_ERR_INTERNAL;
        else
            memcpy(y, yt[0].data, n_y);
        *fused = qf_session_fused_adds(s);
        *workers = qf_session_batch_workers(s);
    }
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

static void test_session_fusion(void) {
    enum { N = 2, C = 16, H = 9, W = 13 };
    static const fuse_case cases[] = {
        {"conv + x", 0, 0, 0},
        {"x + conv, relu", 1, 0, 1},
        {"conv output also a graph output", 0, 1, 0},
    };
    const size_t n_x = (size_t)N * C * H * W, k = (size_t)C * 9;
    int8_t x[N * C * H * W], w[C * C * 9], conv[N * C * H * W], want[N * C * H * W];
    int8_t got[N * C * H * W];
    int32_t bias[C];
    float wscale[C];
    qf_ref_rescale mult[C];
    for (size_t i = 0; i < n_x; i++)
        x[i] = (int8_t)rnd(-128, 127);
    for (size_t i = 0; i < C * k; i++)
        w[i] = (int8_t)rnd(-127, 127);
    for (int o = 0; o < C; o++) {
        bias[o] = rnd(-3000, 3000);
        wscale[o] = 0.002f * (float)(1 + o % 5) / (float)k;
    }
    qf_err e;
    e.msg[0] = 0;
    CHECK_OK(qf_ref_rescale_channels(0.05f, wscale, C, 0.5f, mult, &e));
    qf_ref_requant rq = {.mode = QF_RQ_FP32,
                         .mult = mult,
                         .n_mult = C,
                         .out_zp = 4,
                         .act_min = -128,
                         .act_max = 127};
    qf_ref_conv_params p = {.batch = N,
                            .in_c = C,
                            .in_h = H,
                            .in_w = W,
                            .out_c = C,
                            .out_h = H,
                            .out_w = W,
                            .k_h = 3,
                            .k_w = 3,
                            .stride_h = 1,
                            .stride_w = 1,
                            .dil_h = 1,
                            .dil_w = 1,
                            .pad_top = 1,
                            .pad_left = 1,
                            .pad_bottom = 1,
                            .pad_right = 1,
                            .groups = 1,
                            .in_zp = -3,
                            .w_bits = 8,
                            .rq = rq};
    CHECK_OK(qf_ref_conv2d_s8(&p, x, (const uint8_t *)w, bias, conv, &e));
    /* FP32 requantization on AVX-512 VNNI runs unfused (faster there; the
     * fused kernel is checked directly above) */
    const int can_fuse = qf_x86_isa_usable(qf_isa_active()) && qf_isa_active() != QF_ISA_AVX512VNNI;
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        const fuse_case *fc = &cases[ci];
        qf_ref_eltwise_params ep;
        memset(&ep, 0, sizeof ep);
        ep.rank = 1;
        ep.out_dims[0] = ep.a_dims[0] = ep.b_dims[0] = (int64_t)n_x;
        ep.a_scale = fc->conv_slot == 0 ? 0.5f : 0.05f;
        ep.b_scale = fc->conv_slot == 0 ? 0.05f : 0.5f;
        ep.a_zp = fc->conv_slot == 0 ? 4 : -3;
        ep.b_zp = fc->conv_slot == 0 ? -3 : 4;
        ep.out_scale = 0.3f;
        ep.out_zp = -7;
        ep.act_min = fc->relu ? -7 : -128;
        ep.act_max = 127;
        ep.mode = QF_RQ_FP32;
        CHECK_OK(qf_ref_add_s8(&ep, fc->conv_slot == 0 ? conv : x, fc->conv_slot == 0 ? x : conv,
                               want, &e));
        /* mode 0: plain (2 threads: one image each, concurrently); 1:
         * observed; 2: one image per chunk; 3: QF_IMAGE_PARALLEL=0 (2
         * threads: both on every layer) */
        static const char *const mode_name[4] = {"", ", observed", ", chunks of 1 image",
                                                 ", no image parallelism"};
        for (int threads = 1; threads <= 2; threads++)
            for (int mode = 0; mode < 4; mode++) {
                int fused = -1, workers = -1;
                memset(got, 0x5A, sizeof got);
                if (mode == 2) setenv("QF_BATCH_CHUNK", "1", 1);
                if (mode == 3) setenv("QF_IMAGE_PARALLEL", "0", 1);
                qf_status st = fuse_run(fc, x, w, bias, wscale, threads, mode == 1, got, n_x,
                                        &fused, &workers, &e);
                unsetenv("QF_BATCH_CHUNK");
                unsetenv("QF_IMAGE_PARALLEL");
                CHECK_MSG(st == QF_OK, "%s: status %d %s", fc->name, (int)st, e.msg);
                CHECK_MSG(memcmp(got, want, n_x) == 0,
                          "%s, %d thread(s)%s: differs from conv + add", fc->name, threads,
                          mode_name[mode]);
                const int want_fused = can_fuse && mode != 1 && !fc->expose;
                CHECK_MSG(fused == want_fused, "%s, %d thread(s)%s: %d adds fused, expected %d",
                          fc->name, threads, mode_name[mode], fused, want_fused);
                const int want_workers = mode == 2 || (mode == 0 && threads == 2) ? threads : 0;
                CHECK_MSG(workers == want_workers,
                          "%s, %d thread(s)%s: %d batch workers, expected %d", fc->name, threads,
                          mode_name[mode], workers, want_workers);
            }
    }
    printf("  session fusion: %d residual graphs bit-exact, fused only where allowed\n",
           (int)QF_ARRAY_LEN(cases));
}

/* ---- concat through tables ----------------------------------------------
 * qf_x86_concat_s8 against a naive loop: inputs of 0 bytes, under and over
 * one 64 KiB chunk, tables and plain copies, scalar and vector ISAs, 1 and 2
 * threads; and the VBMI row kernel against the table on every byte value
 * and every tail length. */
static void test_concat_lut(void) {
    enum { OUTER = 3, NI = 4 };
    static const int64_t block[NI] = {0, 70000, 33, 140001};
    int64_t out_block = 0;
    for (int i = 0; i < NI; i++)
        out_block += block[i];
    int8_t lut[2][256];
    for (int v = 0; v < 256; v++) {
        lut[0][v] = (int8_t)rnd(-128, 127);
        lut[1][v] = (int8_t)(127 - v); /* distinct entries */
    }
    const int8_t *luts[NI] = {lut[0], NULL, lut[1], lut[0]};
    int8_t *src[NI];
    for (int i = 0; i < NI; i++) {
        src[i] = malloc((size_t)(block[i] * OUTER) + 1);
        for (int64_t e = 0; e < block[i] * OUTER; e++)
            src[i][e] = (int8_t)rnd(-128, 127);
    }
    const size_t n_out = (size_t)(out_block * OUTER);
    int8_t *want = malloc(n_out), *got = malloc(n_out);
    CHECK(want && got);
    for (int64_t o = 0, at = 0; o < OUTER; o++, at = 0)
        for (int i = 0; i < NI; i++) {
            for (int64_t e = 0; e < block[i]; e++) {
                const int8_t q = src[i][o * block[i] + e];
                want[o * out_block + at + e] = luts[i] ? luts[i][(uint8_t)q] : q;
            }
            at += block[i];
        }
    const int8_t *srcs[NI] = {src[0], src[1], src[2], src[3]};
    const qx_concat c = {.n_in = NI,
                         .src = srcs,
                         .lut = luts,
                         .block = block,
                         .outer = OUTER,
                         .out_block = out_block,
                         .dst = got};
    static const qf_isa isa_all[] = {QF_ISA_SCALAR, QF_ISA_AVX2, QF_ISA_AVX512VNNI};
    int runs = 0;
    for (size_t ii = 0; ii < QF_ARRAY_LEN(isa_all); ii++)
        for (int th = 0; th < 2; th++) {
            memset(got, 0x5A, n_out);
            qf_x86_concat_s8(th ? pool2() : NULL, isa_all[ii], &c);
            CHECK_MSG(memcmp(got, want, n_out) == 0, "concat, %s, %d thread(s)",
                      qf_isa_name(isa_all[ii]), th + 1);
            runs++;
        }
    const qx_lut_fn f = qx_ew_lut_vbmi();
    if (f) {
        int8_t x[256 + 70], y[256 + 70 + 8];
        for (int v = 0; v < 256; v++)
            x[v] = (int8_t)v;
        for (int v = 256; v < 256 + 70; v++)
            x[v] = (int8_t)rnd(-128, 127);
        for (size_t n = 0; n <= sizeof x; n += (n < 130 ? 1 : 61)) {
            memset(y, 0x5A, sizeof y);
            f(lut[0], x, y, n);
            int ok = 1;
            for (size_t e = 0; e < n; e++)
                ok &= y[e] == lut[0][(uint8_t)x[e]];
            for (size_t e = n; e < sizeof y; e++)
                ok &= y[e] == 0x5A;
            CHECK_MSG(ok, "vbmi lut, n %zu", n);
        }
    }
    for (int i = 0; i < NI; i++)
        free(src[i]);
    free(want);
    free(got);
    printf("  concat: %d runs bit-exact%s\n", runs, f ? ", VBMI table kernel checked" : "");
}

/* The profile's kernel name got is `want`; AVX2 adds the form of its dot
 * product ("x86 avx2 split", "x86 avx2 sign"; never "16-bit" here: qforge's
 * packing holds no weight at -128). */
static bool kernel_is(const char *got, const char *want) {
    if (!strcmp(got, want)) return true;
    return !strcmp(want, "x86 avx2") &&
           (!strcmp(got, "x86 avx2 split") || !strcmp(got, "x86 avx2 sign"));
}

static void test_session_threads(void) {
    for (size_t ci = 0; ci < QF_ARRAY_LEN(sess_cases); ci++) {
        const sess_case *c = &sess_cases[ci];
        const int cpg = c->c / c->group;
        const int k = c->gemm ? c->c : cpg * c->k * c->k;
        const int oh = c->gemm ? 1 : (c->h + 2 * c->pad - c->k) / c->stride + 1;
        const int ow = c->gemm ? 1 : (c->w + 2 * c->pad - c->k) / c->stride + 1;
        const size_t n_x = (size_t)c->n * c->c * (c->gemm ? 1 : c->h * c->w);
        const size_t n_y = (size_t)c->n * c->oc * oh * ow;
        int8_t *x = malloc(n_x), *w = malloc((size_t)c->oc * k);
        int8_t *want = malloc(n_y), *y1 = malloc(n_y), *y2 = malloc(n_y), *y3 = malloc(n_y);
        int32_t bias[64], wzp[64];
        float wscale[64];
        qf_ref_rescale mult[64];
        CHECK(x && w && want && y1 && y2 && y3 && c->oc <= 64);
        for (size_t i = 0; i < n_x; i++)
            x[i] = (int8_t)rnd(-128, 127);
        /* folding 8-bit weights: |w|, |zp| <= 63, so |w - zp| <= 126 */
        const int wmax = c->wz == WZ_FOLD4 ? 7 : c->wz == WZ_FOLD8 ? 63 : 127;
        for (int i = 0; i < c->oc * k; i++)
            w[i] = (int8_t)rnd(-wmax, wmax);
        for (int o = 0; o < c->oc; o++) /* extremes first, then random */
            wzp[o] = c->wz == WZ_NONE ? 0
                     : o % 3 == 0     ? -wmax
                     : o % 3 == 1     ? wmax
                                      : rnd(-wmax, wmax);
        for (int o = 0; o < c->oc; o++) {
            bias[o] = rnd(-3000, 3000);
            wscale[o] = 0.002f * (float)(1 + o % 5) / (float)k * 127.0f / (float)wmax;
        }
        qf_err e;
        e.msg[0] = 0;
        qf_status st = qf_ref_rescale_channels(0.05f, wscale, c->oc, 0.5f, mult, &e);
        qf_ref_requant rq = {.mode = QF_RQ_FP32,
                             .mult = mult,
                             .n_mult = c->oc,
                             .out_zp = 4,
                             .act_min = -128,
                             .act_max = 127};
        if (!st && c->gemm) {
            qf_ref_gemm_params p = {
                .m = c->n, .n = c->oc, .k = k, .in_zp = -3, .w_bits = 8, .rq = rq, .w_zp = wzp};
            st = qf_ref_gemm_s8(&p, x, (const uint8_t *)w, bias, want, &e);
        } else if (!st) {
            qf_ref_conv_params p = {.batch = c->n,
                                    .in_c = c->c,
                                    .in_h = c->h,
                                    .in_w = c->w,
                                    .out_c = c->oc,
                                    .out_h = oh,
                                    .out_w = ow,
                                    .k_h = c->k,
                                    .k_w = c->k,
                                    .stride_h = c->stride,
                                    .stride_w = c->stride,
                                    .dil_h = 1,
                                    .dil_w = 1,
                                    .pad_top = c->pad,
                                    .pad_left = c->pad,
                                    .pad_bottom = c->pad,
                                    .pad_right = c->pad,
                                    .groups = c->group,
                                    .in_zp = -3,
                                    .w_bits = 8,
                                    .rq = rq,
                                    .w_zp = wzp};
            st = qf_ref_conv2d_s8(&p, x, (const uint8_t *)w, bias, want, &e);
        }
        /* the sessions take a fast path (x86 or portable), never the reference */
        const uint64_t ref0 = qf_qops_reference_runs();
        /* 2 threads: both on every layer, then (batches of 2 or more)
         * one image each, concurrently */
        char kern1[64] = "", kern2[64] = "", kern3[64] = "", want_kern[64];
        if (!st) st = sess_run(c, x, w, bias, wscale, wzp, 1, y1, n_y, kern1, sizeof kern1, &e);
        setenv("QF_IMAGE_PARALLEL", "0", 1);
        if (!st) st = sess_run(c, x, w, bias, wscale, wzp, 2, y2, n_y, kern2, sizeof kern2, &e);
        unsetenv("QF_IMAGE_PARALLEL");
        if (!st) st = sess_run(c, x, w, bias, wscale, wzp, 2, y3, n_y, kern3, sizeof kern3, &e);
        /* the kernel the profile names: x86 wherever the ISA has one and
         * the weights are symmetric or fold, else the portable one */
        const qf_isa isa = qf_isa_active();
        const bool dw = !c->gemm && c->group == c->c && (c->k == 3 || c->k == 5);
        if (c->wz == WZ_WIDE8 || !qf_x86_isa_usable(isa))
            snprintf(want_kern, sizeof want_kern, "portable");
        else
            snprintf(want_kern, sizeof want_kern, "x86 %s%s", dw ? "depthwise " : "",
                     qf_isa_name(isa));
        const uint64_t ref_runs = qf_qops_reference_runs() - ref0;
        const int same1 = !st && memcmp(y1, want, n_y) == 0;
        const int same2 = !st && memcmp(y2, want, n_y) == 0;
        const int same3 = !st && memcmp(y3, want, n_y) == 0;
        int distinct = 0;
        for (size_t i = 1; !st && i < n_y && !distinct; i++)
            distinct = want[i] != want[0];
        free(x), free(w), free(want), free(y1), free(y2), free(y3);
        CHECK_MSG(st == QF_OK, "%s: status %d %s", c->name, (int)st, e.msg);
        CHECK_MSG(same1, "%s: 1 thread differs from the reference", c->name);
        CHECK_MSG(same2, "%s: 2 threads differ from the reference", c->name);
        CHECK_MSG(same3, "%s: 2 threads, one image each, differ from the reference", c->name);
        CHECK_MSG(distinct, "%s: degenerate output", c->name);
        CHECK_MSG(ref_runs == 0, "%s: %d runs fell back to the reference kernel", c->name,
                  (int)ref_runs);
        CHECK_MSG(kernel_is(kern1, want_kern) && kernel_is(kern2, want_kern) &&
                      kernel_is(kern3, want_kern),
                  "%s: kernel '%s' / '%s' / '%s', expected '%s'", c->name, kern1, kern2, kern3,
                  want_kern);
    }
    printf("  session (ISA %s): %d layers bit-exact with 1 and 2 threads (and 2 threads one "
           "image each)\n",
           qf_isa_name(qf_isa_active()), (int)QF_ARRAY_LEN(sess_cases));
}

/* QF_ISA values: names, unknown names and unsupported ISAs. */
static void test_isa_resolve(void) {
    char msg[160];
    const qf_isa best = qf_isa_best();
    CHECK(qf_isa_supported(QF_ISA_SCALAR));
    CHECK(qf_isa_supported(best));
    CHECK_EQ_INT(qf_isa_resolve(NULL, msg, sizeof msg), best);
    CHECK(msg[0] == 0);
    CHECK_EQ_INT(qf_isa_resolve("", msg, sizeof msg), best);
    CHECK_EQ_INT(qf_isa_resolve("scalar", msg, sizeof msg), QF_ISA_SCALAR);
    CHECK(msg[0] == 0);
    CHECK_EQ_INT(qf_isa_resolve("sse9", msg, sizeof msg), best);
    CHECK(strstr(msg, "unknown") != NULL);
    for (int i = 0; i < QF_ISA_COUNT; i++) {
        qf_isa got = qf_isa_resolve(qf_isa_name((qf_isa)i), msg, sizeof msg);
        if (qf_isa_supported((qf_isa)i)) {
            CHECK_EQ_INT(got, i);
            CHECK(msg[0] == 0);
        } else {
            CHECK_EQ_INT(got, best);
            CHECK(strstr(msg, "cannot run") != NULL);
            printf("  %s unsupported here: falls back to %s\n", qf_isa_name((qf_isa)i),
                   qf_isa_name(best));
        }
    }
    /* best is the highest supported */
    for (int i = best + 1; i < QF_ISA_COUNT; i++)
        CHECK(!qf_isa_supported((qf_isa)i));
    /* the active ISA follows QF_ISA when the process was started with it */
    const char *env = getenv("QF_ISA");
    CHECK_EQ_INT(qf_isa_active(), qf_isa_resolve(env, msg, sizeof msg));
    printf("  active ISA: %s (QF_ISA=%s)\n", qf_isa_name(qf_isa_active()), env ? env : "");
}

/* Refusals: mismatched packing, unusable ISA, short scratch. */
static void test_bad_arguments(void) {
    qf_ref_gemm_params p;
    memset(&p, 0, sizeof p);
    p.m = 2;
    p.n = 3;
    p.k = 5;
    qf_ref_rescale r;
    qf_ref_rescale_init(0.01, &r);
    p.rq.mult = &r;
    p.rq.n_mult = 1;
    p.rq.act_min = -128;
    p.rq.act_max = 127;
    p.w_bits = 8;
    int8_t x[10] = {0}, wv[15] = {0}, y[6];
    char packed[4096], scr[8192];
    qf_x86_weights xw;
    qf_err e;
    CHECK(qf_x86_weights_bytes(QX_LAYOUT_GEMM16, 3, 5, 1) <= sizeof packed);
    CHECK_OK(
        qf_x86_pack_weights(QX_LAYOUT_GEMM16, (const uint8_t *)wv, 3, 5, 8, 1, packed, &xw, &e));
    size_t sb = qf_x86_gemm_s8_scratch_size(&p);
    CHECK(sb > 0 && sb <= sizeof scr);
    qf_isa isa = qf_isa_best();
    if (!qf_x86_isa_usable(isa)) {
        printf("  skip bad-argument checks (no x86 ISA)\n");
        n_skipped++;
        CHECK(qf_x86_gemm_s8(NULL, isa, &p, x, &xw, NULL, y, scr, sb, &e) != QF_OK);
        return;
    }
    CHECK_OK(qf_x86_gemm_s8(NULL, isa, &p, x, &xw, NULL, y, scr, sb, &e));
    CHECK(qf_x86_gemm_s8(NULL, isa, &p, x, &xw, NULL, y, scr, sb - 1, &e) == QF_ERR_INVALID_ARG);
    CHECK(qf_x86_gemm_s8(NULL, QF_ISA_SCALAR, &p, x, &xw, NULL, y, scr, sb, &e) ==
          QF_ERR_UNSUPPORTED);
    p.k = 6;
    CHECK(qf_x86_gemm_s8(NULL, isa, &p, x, &xw, NULL, y, scr, sizeof scr, &e) ==
          QF_ERR_INVALID_ARG);
    CHECK(qf_x86_weights_bytes(QX_LAYOUT_CONV8, 6, 5, 4) == 0); /* 4 does not divide 6 */
    CHECK(qf_x86_weights_bytes(QX_LAYOUT_GEMM16, 6, 5, 2) == 0);
}

/* When AVX2 splits weights: bell-shaped rows (most pairs far below the
 * vpmaddubsw limit) are split, with fixes only where a pair is over it and
 * the clamped pair plus its fix equal to the weights; rows drawn uniformly
 * over [-127, 127] (about 3/4 of the (row, step) pairs need a fix) keep the
 * 16-bit path; split weights refuse other ISAs. */
static void test_split_choice(void) {
    enum { OC = 20, C = 32, KHW = 9, K = C * KHW };
    static int8_t wv[OC * K];
    static uint8_t wp[OC * K];
    static _Alignas(64) int8_t packed[1 << 16];
    static int32_t fix[1 << 14];
    qf_err e;
    for (int shape = 0; shape < 2; shape++) {
        for (int i = 0; i < OC * K; i++) {
            int v = shape == 0 ? rnd(-127, 127)
                               : (rnd(-40, 40) + rnd(-40, 40) + rnd(-40, 40)) / 2; /* +-60 */
            if (shape == 1 && i % K == 5) v = i % 2 ? 127 : -127; /* one full-scale weight a row */
            wv[i] = (int8_t)v;
        }
        CHECK_OK(qf_ref_pack_weights(wv, OC, K, 8, wp, &e));
        qf_x86_weights xw;
        CHECK(qf_x86_conv_weights_bytes(QX_LAYOUT_CONV8C4, OC, C, KHW, 1) <= sizeof packed);
        CHECK_OK(
            qf_x86_pack_conv_weights(QX_LAYOUT_CONV8C4, wp, OC, C, KHW, 8, 1, packed, &xw, &e));
        CHECK(!xw.maddubs_ok);
        const size_t fb = qf_x86_conv_split_bytes(&xw);
        if (shape == 0) {
            CHECK(fb == 0);
            continue;
        }
        CHECK(fb > 0 && fb <= sizeof fix);
        qf_x86_weights orig = xw;
        static int8_t before[1 << 16];
        const size_t data_bytes = (size_t)xw.nb * QX_CONV_ROWS * 4 * xw.k4;
        memcpy(before, packed, data_bytes);
        CHECK(qf_x86_conv_split(&xw, packed + 1, fix, fb, &e) == QF_ERR_INVALID_ARG);
        CHECK_OK(qf_x86_conv_split(&xw, packed, fix, fb, &e));
        CHECK(xw.maddubs_ok && xw.fix_start && qf_x86_conv_split_bytes(&xw) == 0);
        /* every packed byte: clamped + fix == original, fixes only where needed */
        const int64_t rows_p = (int64_t)xw.nb * QX_CONV_ROWS;
        int64_t n_fix = 0;
        for (int64_t pr = 0; pr < rows_p; pr++) {
            int32_t f = xw.fix_start[pr];
            for (int64_t k = 0; k < xw.k4; k++) {
                const size_t at = (size_t)(((pr / 8) * xw.k4 + k) * 32 + (pr % 8) * 4);
                int fixv[4] = {0, 0, 0, 0};
                /* the step's fixes, pairs in order, each over the limit before */
                while (f < xw.fix_start[pr + 1] && (int64_t)(xw.fix[f] & 0x7FFF) == k) {
                    const uint32_t fe = xw.fix[f];
                    const int j = fe & 0x8000 ? 2 : 0;
                    fixv[j] = (int8_t)(fe >> 16);
                    fixv[j + 1] = (int8_t)(fe >> 24);
                    const int a = before[at + j] < 0 ? -before[at + j] : before[at + j];
                    const int b = before[at + j + 1] < 0 ? -before[at + j + 1] : before[at + j + 1];
                    CHECK(255 * (a + b) > 32767);
                    f++, n_fix++;
                }
                for (int j = 0; j < 4; j++) {
                    CHECK(packed[at + j] + fixv[j] == before[at + j]);
                    CHECK(fixv[j] == 0 || (packed[at + j] == 64 || packed[at + j] == -64));
                }
                for (int j = 0; j < 4; j += 2) {
                    const int a = packed[at + j] < 0 ? -packed[at + j] : packed[at + j];
                    const int b = packed[at + j + 1] < 0 ? -packed[at + j + 1] : packed[at + j + 1];
                    CHECK(255 * (a + b) <= 32767);
                }
            }
            CHECK(f == xw.fix_start[pr + 1]);
        }
        /* one full-scale weight a row: at least one fix per real row, a few in all */
        printf("  split: %lld fixes over %lld (row, step) pairs\n", (long long)n_fix,
               (long long)(rows_p * xw.k4));
        CHECK(n_fix >= OC / 2 && n_fix * 4 <= rows_p * xw.k4);
        (void)orig;
        if (qf_x86_isa_usable(QF_ISA_AVX512VNNI)) {
            qf_ref_conv_params p;
            memset(&p, 0, sizeof p);
            CHECK(qf_x86_conv2d_s8(NULL, QF_ISA_AVX512VNNI, &p, wv, &xw, NULL, wv, fix, 0, &e) !=
                  QF_OK);
        }
    }
}

static void test_report_skips(void) {
    printf("  ISAs skipped: %d\n", n_skipped);
    CHECK(n_skipped >= 0);
}

QT_MAIN(QT_CASE(test_isa_resolve), QT_CASE(test_conv_matrix), QT_CASE(test_gemm_matrix),
        QT_CASE(test_fixed_epilogue), QT_CASE(test_fixed_epilogue_tt),
        QT_CASE(test_session_threads), QT_CASE(test_session_fusion), QT_CASE(test_concat_lut),
        QT_CASE(test_bad_arguments), QT_CASE(test_split_choice), QT_CASE(test_report_skips))
