/* test_x86_dw.c - edge cases of the depthwise kernels behind
 * qf_x86_dwconv2d_s8, on both ISAs it takes: AVX-512 VNNI, on the VBMI
 * paths (flat and wide, where the CPU has AVX512_VBMI) and with them
 * switched off (qf_x86_dw_set_vbmi(false): the row path), and AVX2: the
 * row kernel (qf_x86_dw_set_cl(0)) and the channel-lane kernel wherever it
 * can run (qf_x86_dw_set_cl(2): FP32 mode, grids within its buffers). Every
 * geometry of the table and of the width sweep, in both requantization
 * modes and at clamp/scale extremes, with 1 and 2 threads, each compared
 * byte for byte with a naive loop written here (int32 sum, then
 * qf_ref_requant_fp32 / qf_ref_requant_fixed per pixel). Guard bytes around
 * the output catch stores past the end. An ISA the CPU lacks is skipped
 * (and said so). */
#include <stdint.h>

#include "base/threadpool.h"
#include "kernels/dispatch.h"
#include "kernels/ref/qref.h"
#include "kernels/x86/qx86.h"
#include "qtest.h"

#define GUARD 80
#define MAX_CH 48

static uint32_t rng_state = 12345u;
static int rnd(int lo, int hi) { /* inclusive */
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (int)((rng_state >> 8) % (uint32_t)(hi - lo + 1));
}

typedef struct dgeom {
    const char *name;
    int batch, ch, h, w, k, s, pt, pl, pb, pr;
} dgeom;

/* Small planes are grouped into tasks of >= 2048 outputs; the "2 tasks"
 * rows split into a full and a partial group, so that 2 threads share them.
 * Which path each row takes on a VBMI CPU: flat (out_w <= 8, tables fit),
 * wide with 1 vector per row (out_w <= 16), 2 (<= 32) or 4, each with 1..3
 * loads per input row ("rN"), and the row path for 5x5 wider than 8. */
/* clang-format off */
static const dgeom geoms[] = {
    {"7x7 s1 (flat, one register)",   2, 3, 7,  7,   3, 1, 1, 1, 1, 1},
    {"14x14 s2 -> 7 (flat, 2 loads)", 1, 3, 14, 14,  3, 2, 1, 1, 1, 1},
    {"12x11 s2 -> 6 (flat)",          1, 2, 12, 11,  3, 2, 1, 1, 1, 1},
    {"10x17 k5 s2 (flat, 2 loads)",   2, 2, 10, 17,  5, 2, 0, 0, 0, 0},
    {"13x5 s2 asym",                  1, 2, 13, 5,   3, 2, 0, 2, 2, 0},
    {"1x1 s1 pad 2 (flat)",           1, 2, 1,  1,   3, 1, 2, 2, 2, 2},
    {"5x5 k5 s1 (flat)",              1, 2, 5,  5,   5, 1, 2, 2, 2, 2},
    {"15x16 k5 s2 (flat)",            1, 2, 15, 16,  5, 2, 2, 2, 2, 2},
    {"14x14 s1 (wide 1)",             1, 3, 14, 14,  3, 1, 1, 1, 1, 1},
    {"14x14 s1 14 planes (2 tasks)",  2, 7, 14, 14,  3, 1, 1, 1, 1, 1},
    {"7x7 s1 48 planes (2 tasks)",    6, 8, 7,  7,   3, 1, 1, 1, 1, 1},
    {"9x11 s1 (wide 1)",              1, 2, 9,  11,  3, 1, 1, 1, 1, 1},
    {"28x28 s2 -> 14 (wide 1)",       1, 2, 28, 28,  3, 2, 1, 1, 1, 1},
    {"19x9 s1 h > 16 (wide 1)",       1, 2, 19, 9,   3, 1, 1, 1, 1, 1},
    {"28x28 s1 (wide 2)",             1, 3, 28, 28,  3, 1, 1, 1, 1, 1},
    {"9x17 s1 (wide 2, h % 8)",       2, 2, 9,  17,  3, 1, 1, 1, 1, 1},
    {"11x33 s2 (wide 2 r1)",          1, 2, 11, 33,  3, 2, 1, 1, 1, 1},
    {"10x64 s2 no pad (wide 2 r1)",   1, 2, 10, 64,  3, 2, 0, 0, 0, 0},
    {"5x64 s2 -> 32 (wide 2 r2)",     1, 2, 5,  64,  3, 2, 1, 1, 1, 1},
    {"56x56 s2 (wide 2 r1)",          1, 2, 56, 56,  3, 2, 1, 1, 1, 1},
    {"56x56 s1 (wide 4 r1)",          1, 2, 56, 56,  3, 1, 1, 1, 1, 1},
    {"3x62 s1 -> 62 (wide 4 r1)",     1, 2, 3,  62,  3, 1, 1, 1, 1, 1},
    {"4x63 s1 -> 63 (wide 4 r2)",     1, 2, 4,  63,  3, 1, 1, 1, 1, 1},
    {"5x130 s1 (wide 4 r2, 3 blocks)",1, 2, 5,  130, 3, 1, 1, 1, 1, 1},
    {"3x97 s1 pad 3 (wide 4 r2)",     1, 2, 3,  97,  3, 1, 3, 3, 3, 3},
    {"6x66 s2 asym (wide 4 r2)",      1, 2, 6,  66,  3, 2, 1, 0, 0, 1},
    {"7x131 s2 (wide 4 r3)",          1, 2, 7,  131, 3, 2, 1, 1, 1, 1},
    {"16x16 k5 s1 (row path)",        1, 2, 16, 16,  5, 1, 2, 2, 2, 2},
    {"6x40 k5 s2 (row path)",         1, 2, 6,  40,  5, 2, 2, 2, 2, 2},
    /* AVX2 (qx86_dw_avx2.c): blocks of 16 (8 when out_w <= 8) pixels, the
     * last moved back to the row's end; column tiles of 256 pixels at
     * stride 1; at stride 2, blocks in place or (at a row edge, or ending
     * past the plane) through a padded copy of their window; row bands when
     * there are few planes; planes under 16 bytes through a stack copy;
     * first and last rows of a plane through shifted loads */
    {"112x112 s1 (MobileNetV2)",      1, 2, 112, 112, 3, 1, 1, 1, 1, 1},
    {"112x112 s2 -> 56",              1, 2, 112, 112, 3, 2, 0, 0, 1, 1},
    {"4x24 s1 out 24",                2, 3, 4,  24,  3, 1, 1, 1, 1, 1},
    {"5x25 s1 out 23",                1, 2, 5,  25,  3, 1, 0, 0, 0, 0},
    {"3x31 s1 out 33",                1, 2, 3,  31,  3, 1, 2, 2, 2, 2},
    {"6x256 s1 (one tile)",           1, 2, 6,  256, 3, 1, 1, 1, 1, 1},
    {"5x257 s1 (2 tiles, 1 px)",      1, 2, 5,  257, 3, 1, 1, 1, 1, 1},
    {"4x273 s1 no pad (2 tiles)",     1, 2, 4,  273, 3, 1, 0, 0, 0, 0},
    {"3x530 k5 s1 (3 tiles)",         1, 2, 3,  530, 5, 1, 2, 2, 2, 2},
    {"5x257 s2 -> 129",              1, 2, 5,  257, 3, 2, 1, 1, 1, 1},
    {"4x256 s2 -> 128 pad 1/0/0/1",  1, 2, 4,  256, 3, 2, 1, 0, 0, 1},
    {"7x259 k5 s2 -> 130",            1, 2, 7,  259, 5, 2, 2, 2, 2, 2},
    {"9x520 s2 pad 3/3/1/1",         1, 2, 9,  520, 3, 2, 3, 3, 1, 1},
    {"1 ch 70x40 s1 (row bands)",     1, 1, 70, 40,  3, 1, 1, 1, 1, 1},
    {"1 ch 67x33 s2 (row bands)",     1, 1, 67, 33,  3, 2, 1, 1, 1, 1},
    {"1 ch 61x19 k5 s1 (bands)",      1, 1, 61, 19,  5, 1, 2, 2, 2, 2},
    {"3 ch 45x21 k5 s2 (bands)",      1, 3, 45, 21,  5, 2, 1, 2, 3, 0},
    {"batch 3 x 1 ch 9x9 s2",         3, 1, 9,  9,   3, 2, 1, 1, 1, 1},
    {"batch 4 x 5 ch 3x3 (tiny)",     4, 5, 3,  3,   3, 1, 1, 1, 1, 1},
    {"2x7 k5 s1 (tiny, pad 2)",       2, 2, 2,  7,   5, 1, 2, 2, 2, 2},
    {"1x1 k5 pad 4/0/1/3",            1, 2, 1,  1,   5, 1, 4, 0, 1, 4},
    {"2x2 k5 s2 pad 10/9 (all pad)",  1, 2, 2,  2,   5, 2, 10, 9, 10, 9},
    {"3x40 k3 pad 6/0/0/6",           1, 2, 3,  40,  3, 1, 6, 0, 0, 6},
    {"4x40 k5 s2 pad 0/10/10/0",      1, 2, 4,  40,  5, 2, 0, 10, 10, 0},
    {"5x18 k5 s2 pad 10/10",          2, 2, 5,  18,  5, 2, 10, 10, 10, 10},
    /* AVX2 channel-lane kernel (qx86_dwcl_avx2.c, small planes): 16-channel
     * groups with a partial last group, pixel pairs with an odd count, grids
     * at the buffers' limits (32 x 32 padded cells, 1024 outputs) */
    {"7x7 s1 40 ch (3 groups, 8 left)", 1, 40, 7, 7,  3, 1, 1, 1, 1, 1},
    {"14x14 s2 -> 7, 17 ch b2",       2, 17, 14, 14, 3, 2, 1, 1, 1, 1},
    {"9x13 k5 s1 33 ch",              1, 33, 9,  13, 5, 1, 2, 2, 2, 2},
    {"11x6 k5 s2 asym 16 ch",         1, 16, 11, 6,  5, 2, 2, 1, 0, 3},
    {"30x30 s1 pad 1 (1024 cells)",   1, 9,  30, 30, 3, 1, 1, 1, 1, 1},
    {"32x32 s1 no pad (900 out)",     1, 5,  32, 32, 3, 1, 0, 0, 0, 0},
    {"3x3 s1 pad 1, 31 ch b3",        3, 31, 3,  3,  3, 1, 1, 1, 1, 1},
};
/* clang-format on */

/* The sweep: widths 1..17 x kernel 3/5 x stride 1/2, heights and
 * asymmetric pads (0..2k) varying with the width. */
#define SWEEP_W 17
#define N_SWEEP (SWEEP_W * 4)
static bool sweep_geom(int i, dgeom *g) {
    const int w = i % SWEEP_W + 1, ks = i / SWEEP_W, k = ks & 1 ? 5 : 3, s = ks & 2 ? 2 : 1;
    memset(g, 0, sizeof *g);
    g->name = "width sweep";
    g->batch = 1 + w % 2;
    g->ch = 1 + w % 3;
    g->h = 1 + (w * 7 + ks * 3) % 12;
    g->w = w;
    g->k = k;
    g->s = s;
    g->pt = (w + ks) % (k + 1);
    g->pb = (w * 3) % (2 * k + 1);
    g->pl = (w * 5 + ks) % (2 * k + 1);
    g->pr = (w + 2 * ks) % (k + 1);
    /* at least one output pixel each way */
    return g->h + g->pt + g->pb >= k && g->w + g->pl + g->pr >= k;
}

typedef struct dnum {
    int fixed;    /* QF_RQ_FIXED, else FP32 */
    double scale; /* requant multiplier (per channel: x (0.5 .. 1.5)) */
    int in_zp, out_zp, act_min, act_max;
    int big_bias; /* biases near the int32 limits (the sum wraps) */
    int shift;    /* FIXED mode: nonzero overrides every channel's shift */
} dnum;

static const dnum nums[] = {
    {0, 1.0 / 300, 3, -5, -128, 127, 0, 0},
    {0, 1.0 / 40, -128, 127, -128, 127, 0, 0}, /* zero points at the ends */
    {0, 1.0 / 90, 127, -128, 0, 6, 0, 0},      /* narrow clamp (ReLU6-like) */
    {0, 3.0, 10, 0, -128, 127, 1, 0},          /* |f| beyond int32: the clamps decide */
    {0, 0.6, -60, 30, -100, 100, 0, 0},        /* FP32 multipliers above 0.5 and below */
    {1, 1.0 / 300, -7, 4, -128, 127, 0, 0},
    {1, 1e-12, 0, 2, -128, 127, 0, 0}, /* M below 2^-32: multiplier 0 */
    {1, 0.9, 55, -100, -20, 90, 1, 0},
    {1, 0.02, -30, 9, -128, 127, 1, -36}, /* a shift below -31 (lane by lane) */
    {1, 2.5, 20, -3, -128, 127, 0, 0},    /* left shifts of 2 */
};

/* The naive reference: int32 sum (mod 2^32) over taps inside the image,
 * then the reference requantization of the mode. */
static void naive_dw(const qf_ref_conv_params *p, const int8_t *x, const int8_t *w,
                     const int32_t *bias, int8_t *y) {
    const int k = p->k_h;
    for (int b = 0; b < p->batch; b++)
        for (int c = 0; c < p->in_c; c++) {
            const qf_ref_rescale *r = &p->rq.mult[p->rq.n_mult == 1 ? 0 : c];
            for (int oy = 0; oy < p->out_h; oy++)
                for (int ox = 0; ox < p->out_w; ox++) {
                    uint32_t acc = (uint32_t)bias[c];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = oy * p->stride_h - p->pad_top + ky;
                            const int ix = ox * p->stride_w - p->pad_left + kx;
                            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) continue;
                            const int xv = x[((b * p->in_c + c) * p->in_h + iy) * p->in_w + ix];
                            acc += (uint32_t)((xv - p->in_zp) * w[(c * k + ky) * k + kx]);
                        }
                    const int32_t a = (int32_t)acc;
                    const int32_t q =
                        p->rq.mode == QF_RQ_FIXED
                            ? qf_ref_requant_fixed(a, r->mult_q, r->shift, p->rq.out_zp,
                                                   p->rq.act_min, p->rq.act_max)
                            : qf_ref_requant_fp32(a, r->mult_f, p->rq.out_zp, p->rq.act_min,
                                                  p->rq.act_max);
                    y[((b * p->out_c + c) * p->out_h + oy) * p->out_w + ox] = (int8_t)q;
                }
        }
}

/* Runs of the AVX2 channel-lane kernel (qx86_dwcl_avx2.c). */
static int n_cl_runs;

/* One geometry x numerics on all paths of isa and both thread counts; 0
 * when all match. */
static int run_case(qf_isa isa, const dgeom *g, const dnum *nc, qf_threadpool *pool, char *msg,
                    size_t len) {
    qf_ref_conv_params p;
    memset(&p, 0, sizeof p);
    p.batch = g->batch;
    p.in_c = p.out_c = p.groups = g->ch;
    p.in_h = g->h;
    p.in_w = g->w;
    p.k_h = p.k_w = g->k;
    p.stride_h = p.stride_w = g->s;
    p.dil_h = p.dil_w = 1;
    p.pad_top = g->pt;
    p.pad_left = g->pl;
    p.pad_bottom = g->pb;
    p.pad_right = g->pr;
    p.out_h = qf_ref_conv_out_size(p.in_h, p.k_h, p.stride_h, 1, p.pad_top, p.pad_bottom);
    p.out_w = qf_ref_conv_out_size(p.in_w, p.k_w, p.stride_w, 1, p.pad_left, p.pad_right);
    p.in_zp = nc->in_zp;
    p.w_bits = 8;
    qf_ref_rescale mult[MAX_CH];
    int32_t bias[MAX_CH];
    for (int c = 0; c < p.in_c; c++) {
        qf_ref_rescale_init(nc->scale * (0.5 + rnd(0, 1000) / 1000.0), &mult[c]);
        if (nc->shift) mult[c].shift = nc->shift;
        bias[c] = nc->big_bias ? (rnd(0, 1) ? INT32_MAX - rnd(0, 3000) : INT32_MIN + rnd(0, 3000))
                               : rnd(-20000, 20000);
    }
    p.rq.mode = nc->fixed ? QF_RQ_FIXED : QF_RQ_FP32;
    p.rq.mult = mult;
    p.rq.n_mult = p.in_c;
    p.rq.out_zp = nc->out_zp;
    p.rq.act_min = nc->act_min;
    p.rq.act_max = nc->act_max;
    const int kk = g->k * g->k;
    const size_t n_in = (size_t)p.batch * p.in_c * p.in_h * p.in_w;
    const size_t n_out = (size_t)p.batch * p.out_c * p.out_h * p.out_w;
    int8_t *x = malloc(n_in), *w = malloc((size_t)p.in_c * kk), *want = malloc(n_out);
    int8_t *got = malloc(n_out + 2 * GUARD);
    uint8_t *wp = malloc((size_t)p.in_c * kk);
    void *packed = malloc(qf_x86_dw_weights_bytes(p.out_c, g->k, g->k) + 4);
    int rc = 1;
    if (!x || !w || !want || !got || !wp || !packed) {
        snprintf(msg, len, "allocation failed");
        goto done;
    }
    for (size_t i = 0; i < n_in; i++)
        x[i] = (int8_t)(rnd(0, 5) == 0 ? p.in_zp : rnd(-128, 127));
    for (int i = 0; i < p.in_c * kk; i++)
        w[i] = (int8_t)rnd(-127, 127);
    naive_dw(&p, x, w, bias, want);
    qf_err e;
    e.msg[0] = 0;
    qf_x86_weights xw;
    /* 4 bytes off the allocation: the packed weights need only 4-byte alignment */
    if (qf_ref_pack_weights(w, p.in_c, kk, 8, wp, &e) != QF_OK ||
        qf_x86_pack_dw_weights(wp, p.out_c, g->k, g->k, 8, (char *)packed + 4, &xw, &e) != QF_OK) {
        snprintf(msg, len, "pack: %s", e.msg);
        goto done;
    }
    /* the VBMI switch only matters to AVX-512; AVX2 runs the row kernel
     * ("vbmi off": cl mode 0) and the channel-lane one wherever it can run
     * ("vbmi on": cl mode 2; FIXED mode and large planes stay on the row
     * kernel) */
    for (int vbmi = 1; vbmi >= 0; vbmi--)
        for (int th = 1; th <= 2; th++) {
            qf_x86_dw_set_vbmi(vbmi != 0);
            qf_x86_dw_set_cl(isa == QF_ISA_AVX2 ? 2 * vbmi : 1);
            if (isa == QF_ISA_AVX2 && vbmi && qx_dwcl_avx2_takes(&p)) n_cl_runs++;
            memset(got, 0x5A, n_out + 2 * GUARD);
            qf_status s =
                qf_x86_dwconv2d_s8(th == 2 ? pool : NULL, isa, &p, x, &xw, bias, got + GUARD, &e);
            qf_x86_dw_set_vbmi(true);
            qf_x86_dw_set_cl(1);
            if (s != QF_OK) {
                snprintf(msg, len, "%s threads %d: %s", vbmi ? "vbmi on" : "vbmi off", th, e.msg);
                goto done;
            }
            for (size_t i = 0; i < GUARD; i++)
                if (got[i] != 0x5A || got[GUARD + n_out + i] != 0x5A) {
                    snprintf(msg, len, "%s threads %d: guard byte overwritten",
                             vbmi ? "vbmi on" : "vbmi off", th);
                    goto done;
                }
            for (size_t i = 0; i < n_out; i++)
                if (got[GUARD + i] != want[i]) {
                    snprintf(msg, len, "%s threads %d: output %zu is %d, want %d",
                             vbmi ? "vbmi on" : "vbmi off", th, i, got[GUARD + i], want[i]);
                    goto done;
                }
        }
    /* multipliers accepted once (as the ops do at parse): same bytes; another
     * array is still checked channel by channel, and a bad one is refused */
    {
        qf_ref_rescale bad[MAX_CH];
        memcpy(bad, mult, sizeof bad);
        bad[p.in_c - 1].mult_f = -1.0f;
        qf_ref_conv_params pb = p;
        pb.rq.mult = bad;
        if (qf_x86_dw_accept_requant(&xw, &pb.rq, &e) == QF_OK) {
            snprintf(msg, len, "a negative multiplier was accepted");
            goto done;
        }
        if (qf_x86_dw_accept_requant(&xw, &p.rq, &e) != QF_OK || xw.rq_checked != mult) {
            snprintf(msg, len, "accept: %s", e.msg);
            goto done;
        }
        memset(got, 0x5A, n_out + 2 * GUARD);
        if (qf_x86_dwconv2d_s8(pool, isa, &p, x, &xw, bias, got + GUARD, &e) != QF_OK ||
            memcmp(got + GUARD, want, n_out) != 0) {
            snprintf(msg, len, "accepted multipliers: wrong result or error (%s)", e.msg);
            goto done;
        }
        if (qf_x86_dwconv2d_s8(pool, isa, &pb, x, &xw, bias, got + GUARD, &e) !=
            QF_ERR_INVALID_ARG) {
            snprintf(msg, len, "a bad multiplier array passed after another was accepted");
            goto done;
        }
    }
    rc = 0;
done:
    free(x), free(w), free(want), free(got), free(wp), free(packed);
    return rc;
}

/* All geometries (table and sweep) x numerics on isa; counts cases and
 * failures. */
static void matches_naive_on(qf_isa isa, int *runs, int *bad) {
    qf_threadpool *pool = NULL;
    if (qf_threadpool_create(2, &pool, NULL) != QF_OK) {
        (*bad)++;
        return;
    }
    const double old_serial = qf_x86_serial_macs();
    qf_x86_set_serial_macs(0);
    char msg[256];
    const int n_tab = (int)(sizeof geoms / sizeof geoms[0]);
    for (int gi = 0; gi < n_tab + N_SWEEP; gi++) {
        dgeom g;
        if (gi < n_tab)
            g = geoms[gi];
        else if (!sweep_geom(gi - n_tab, &g))
            continue;
        for (size_t ni = 0; ni < sizeof nums / sizeof nums[0]; ni++) {
            msg[0] = 0;
            if (run_case(isa, &g, &nums[ni], pool, msg, sizeof msg) && (*bad)++ < 5)
                fprintf(stderr,
                        "  %s: %s (%dx%dx%dx%d k%d s%d pads %d %d %d %d) / numerics %zu: %s\n",
                        qf_isa_name(isa), g.name, g.batch, g.ch, g.h, g.w, g.k, g.s, g.pt, g.pl,
                        g.pb, g.pr, ni, msg);
            (*runs)++;
        }
    }
    qf_x86_set_serial_macs(old_serial);
    qf_threadpool_destroy(pool);
}

static void dw_matches_naive_avx512vnni(void) {
    if (!qf_x86_isa_usable(QF_ISA_AVX512VNNI)) {
        printf("  AVX-512 VNNI not usable here: skipped\n");
        CHECK(!qf_x86_isa_usable(QF_ISA_AVX512VNNI));
        return;
    }
    printf("  AVX512_VBMI %s\n", (qf_cpu_features() & QF_CPU_AVX512VBMI) ? "present: flat and "
                                                                           "wide paths tested"
                                                                         : "absent: row path only");
    int runs = 0, bad = 0;
    matches_naive_on(QF_ISA_AVX512VNNI, &runs, &bad);
    printf("  AVX-512 VNNI: %d geometry x numerics cases, each on 2 paths x 2 thread counts\n",
           runs);
    CHECK_EQ_INT(bad, 0);
}

static void dw_matches_naive_avx2(void) {
    if (!qf_x86_isa_usable(QF_ISA_AVX2)) {
        printf("  AVX2 not usable here: skipped\n");
        CHECK(!qf_x86_isa_usable(QF_ISA_AVX2));
        return;
    }
    int runs = 0, bad = 0;
    matches_naive_on(QF_ISA_AVX2, &runs, &bad);
    printf("  AVX2: %d geometry x numerics cases, each on 2 kernels where both run x 2 thread "
           "counts; %d runs of the channel-lane kernel\n",
           runs, n_cl_runs);
    CHECK_EQ_INT(bad, 0);
    /* FP32 cases (5 of 10 numerics) of every geometry whose grid fits */
    CHECK(n_cl_runs >= 2 * 5 * 60);
}

/* Every geometry above is one the kernel accepts (else the test would not
 * reach the paths it names). */
static void dw_geoms_supported(void) {
    const int n_tab = (int)(sizeof geoms / sizeof geoms[0]);
    int n_sweep = 0;
    for (int gi = 0; gi < n_tab + N_SWEEP; gi++) {
        dgeom gs;
        if (gi < n_tab)
            gs = geoms[gi];
        else if (!sweep_geom(gi - n_tab, &gs))
            continue;
        else
            n_sweep++;
        const dgeom *g = &gs;
        qf_ref_conv_params p;
        memset(&p, 0, sizeof p);
        p.batch = g->batch;
        p.in_c = p.out_c = p.groups = g->ch;
        p.in_h = g->h;
        p.in_w = g->w;
        p.k_h = p.k_w = g->k;
        p.stride_h = p.stride_w = g->s;
        p.dil_h = p.dil_w = 1;
        p.pad_top = g->pt;
        p.pad_left = g->pl;
        p.pad_bottom = g->pb;
        p.pad_right = g->pr;
        p.out_h = qf_ref_conv_out_size(p.in_h, p.k_h, p.stride_h, 1, p.pad_top, p.pad_bottom);
        p.out_w = qf_ref_conv_out_size(p.in_w, p.k_w, p.stride_w, 1, p.pad_left, p.pad_right);
        CHECK_MSG(qf_x86_dwconv_supported(&p), "%s (w %d)", g->name, g->w);
    }
    CHECK(n_sweep >= N_SWEEP / 2); /* the sweep is not mostly skipped */
}

QT_MAIN(QT_CASE(dw_geoms_supported), QT_CASE(dw_matches_naive_avx512vnni),
        QT_CASE(dw_matches_naive_avx2))
