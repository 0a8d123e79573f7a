/* test_qkernels.c - the integer reference kernels (src/kernels/ref/qref.h)
 * against independent references written here: hand-computed values for
 * rounding, packing and the gemmlowp primitives, exact 64-bit rational
 * arithmetic for the fixed-point requantization, and for every kernel a
 * naive double-precision float op on the dequantized inputs whose result is
 * quantized (half even) and compared element by element.
 *
 * Bounds asserted (all cases, both requantization modes):
 *  - kernel vs float reference: every element equals the reference
 *    clamp(round_half_even(y / s_out) + z_out), except that it may differ by
 *    exactly 1 where y / s_out lies within `tol` of a rounding tie (k + 1/2):
 *      fp32 mode: tol = 1e-3 + 1e-6 * |y / s_out| (float scales, one rounding);
 *      fixed mode: the same plus 2^-(rs+1) for a multiplier with right shift
 *      rs = -shift > 0, the documented error of gemmlowp's two roundings
 *      (SRDHM, then RDBP) - for rs = 1 that admits a quarter of all values;
 *      linear resize: tol = 0.13 (Q11 weights: <= 2 * 255 / 4096 off);
 *    so max |diff| <= 1 everywhere and diff == 0 away from ties;
 *    max pool, nearest resize, pad and the identical-parameter concat block
 *    are exact (diff 0);
 *  - fp32 mode vs fixed mode: max |diff| <= 1 on every element;
 *  - 4-bit / 2-bit packed weights vs the same values in int8: identical bytes.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "kernels/ref/qref.h"
#include "qtest.h"

/* ---- deterministic random numbers ---------------------------------------- */

static uint64_t rng_state = 88172645463325252ull;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 0x1234567ull; }
static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static int32_t rng_range(int32_t lo, int32_t hi) { /* inclusive */
    return lo + (int32_t)(((uint64_t)rng_u32() * (uint64_t)((int64_t)hi - lo + 1)) >> 32);
}
static double rng_unit(void) { return (double)rng_u32() / 4294967296.0; }

/* ---- reference quantization and diff statistics ------------------------- */

/* clamp(round_half_even(y / s) + z, lo, hi) in double; nearbyint rounds half
 * to even under the default rounding mode. */
static int32_t ref_q(double y, double s, int32_t z, int32_t lo, int32_t hi) {
    double v = nearbyint(y / s) + z;
    if (v < lo) return lo;
    if (v > hi) return hi;
    return (int32_t)v;
}

typedef struct diffstat {
    int64_t n, n_diff, n_bad; /* n_bad: differences not explained by a near tie */
    int64_t n_inside;         /* reference strictly inside the clamp bounds */
    int32_t max_diff;
} diffstat;

static void diff_add(diffstat *d, int32_t a, int32_t b) {
    int32_t e = a > b ? a - b : b - a;
    d->n++;
    if (e) d->n_diff++;
    if (e > d->max_diff) d->max_diff = e;
    if (e) d->n_bad++;
}

/* Tie tolerance of a requantization with multiplier shift `shift` (see the
 * file comment); u = y / s_out. */
static double tie_tol(int mode, int32_t shift, double u) {
    double tol = 1e-3 + 1e-6 * fabs(u);
    if (mode == QF_RQ_FIXED && shift < 0) tol += ldexp(1.0, shift - 1);
    return tol;
}

/* got vs the float reference y at output scale s: equal, or 1 apart where
 * y / s is within tol of a tie. */
static void diff_ref(diffstat *d, int32_t got, double y, double s, int32_t z, int32_t lo,
                     int32_t hi, double tol) {
    int32_t want = ref_q(y, s, z, lo, hi);
    int32_t e = got > want ? got - want : want - got;
    d->n++;
    if (want > lo && want < hi) d->n_inside++;
    if (e > d->max_diff) d->max_diff = e;
    if (!e) return;
    d->n_diff++;
    double u = y / s;
    if (e > 1 || fabs(u - floor(u) - 0.5) > tol) d->n_bad++;
}

/* The bound every kernel-vs-float comparison asserts (see the file comment). */
static int diff_ok(const diffstat *d) { return d->max_diff <= 1 && d->n_bad == 0; }

/* Guard against vacuous cases: unless a case is meant to saturate, at least
 * a quarter of its reference outputs must lie strictly inside the bounds. */
static int not_saturated(const diffstat *d) { return d->n_inside * 4 >= d->n; }

/* ---- guarded output buffers: sentinel bytes catch overruns -------------- */

#define GUARD 32
static void *guarded_alloc(size_t bytes) {
    uint8_t *p = malloc(bytes + 2 * GUARD);
    if (!p) return NULL;
    memset(p, 0xA5, bytes + 2 * GUARD);
    return p + GUARD;
}
static int guard_intact(const void *buf, size_t bytes) {
    const uint8_t *p = (const uint8_t *)buf - GUARD;
    for (size_t i = 0; i < GUARD; i++)
        if (p[i] != 0xA5 || p[GUARD + bytes + i] != 0xA5) return 0;
    return 1;
}
static void guarded_free(void *buf) {
    if (buf) free((uint8_t *)buf - GUARD);
}

static int32_t tmin_of(int s16) { return s16 ? -32768 : -128; }
static int32_t tmax_of(int s16) { return s16 ? 32767 : 127; }

/* ======================================================================== */
/* Rounding, quantize / dequantize                                          */
/* ======================================================================== */

static void test_round_half_even(void) {
    static const struct {
        float x, want;
    } t[] = {{0.5f, 0.0f},
             {1.5f, 2.0f},
             {-0.5f, 0.0f},
             {-2.5f, -2.0f},
             {2.5f, 2.0f},
             {-1.5f, -2.0f},
             {3.5f, 4.0f},
             {0.49999997f, 0.0f},
             {-0.50000006f, -1.0f},
             {1.0000001f, 1.0f},
             {-7.0f, -7.0f},
             {8388607.5f, 8388608.0f},
             {16777216.0f, 16777216.0f},
             {-1e10f, -1e10f},
             {0.0f, 0.0f}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_MSG(qf_ref_round_half_even_f(t[i].x) == t[i].want, "f(%.9g) = %.9g, want %.9g",
                  (double)t[i].x, (double)qf_ref_round_half_even_f(t[i].x), (double)t[i].want);
        CHECK_MSG(qf_ref_round_half_even_d(t[i].x) == t[i].want, "d(%.9g)", (double)t[i].x);
    }
    CHECK(isnan(qf_ref_round_half_even_f(NAN)));
    CHECK(isinf(qf_ref_round_half_even_f(INFINITY)));
    CHECK(qf_ref_round_half_even_d(4503599627370495.5) == 4503599627370496.0);
    /* the float version against the double one (floor/fmod based) over
     * every magnitude, halves and quarter steps included */
    uint32_t st = 7;
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        st = st * 1664525u + 1013904223u;
        float x;
        if (i % 2) {
            x = (float)((int32_t)(st >> 4) % 40000) / 8.0f; /* multiples of 1/8 */
        } else {
            uint32_t bits = (st & 0x807FFFFFu) | ((100u + (st >> 26)) << 23); /* 2^-27 .. 2^36 */
            memcpy(&x, &bits, 4);
        }
        if (qf_ref_round_half_even_f(x) != (float)qf_ref_round_half_even_d((double)x)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_quantize_roundtrip(void) {
    static const struct {
        float scale;
        int32_t zp;
        int s16;
    } t[] = {{0.1f, 0, 0},     {0.0137f, -128, 0}, {0.25f, 127, 0},  {1e-6f, 3, 0},
             {500.0f, -20, 0}, {0.001f, 1000, 1},  {3.0f, -32768, 1}};
    for (size_t c = 0; c < sizeof t / sizeof t[0]; c++) {
        const float s = t[c].scale;
        const int32_t z = t[c].zp, lo = tmin_of(t[c].s16), hi = tmax_of(t[c].s16);
        /* every representable value survives dequantize -> quantize */
        for (int32_t q = lo; q <= hi; q += t[c].s16 ? 97 : 1) {
            float x = s * (float)(q - z);
            CHECK_EQ_INT(qf_ref_quantize_one(x, s, z, lo, hi), q);
        }
        /* random reals: |x - dequant(quant(x))| <= s/2 inside the range, clamped outside */
        for (int i = 0; i < 2000; i++) {
            double x = ((double)rng_unit() * 2.0 - 1.0) * s * (hi - lo) * 0.75;
            int32_t q = qf_ref_quantize_one((float)x, s, z, lo, hi);
            double back = (double)s * (q - z);
            double want = nearbyint((double)(float)x / s) + z;
            if (want >= lo && want <= hi)
                CHECK_MSG(fabs(back - (double)(float)x) <= 0.5001 * s, "x %g q %d", x, (int)q);
            else
                CHECK_EQ_INT(q, want < lo ? lo : hi);
        }
        CHECK_EQ_INT(qf_ref_quantize_one(NAN, s, z, lo, hi), z);
        CHECK_EQ_INT(qf_ref_quantize_one(INFINITY, s, z, lo, hi), hi);
        CHECK_EQ_INT(qf_ref_quantize_one(-INFINITY, s, z, lo, hi), lo);
    }
    /* ties at the quantization step go to even: x/s = k + 0.5 */
    CHECK_EQ_INT(qf_ref_quantize_one(0.5f, 1.0f, 0, -128, 127), 0);
    CHECK_EQ_INT(qf_ref_quantize_one(1.5f, 1.0f, 0, -128, 127), 2);
    CHECK_EQ_INT(qf_ref_quantize_one(-2.5f, 1.0f, 10, -128, 127), 8);
    CHECK_EQ_INT(qf_ref_quantize_one(0.75f, 0.5f, 0, -128, 127), 2); /* 1.5 -> 2 */
    CHECK_EQ_INT(qf_ref_quantize_one(1000.0f, 1.0f, 0, -128, 127), 127);
    /* array forms */
    float xs[5] = {-1.0f, -0.05f, 0.0f, 0.05f, 1.0f};
    int8_t q8[5];
    int16_t q16[5];
    float back[5];
    CHECK_OK(qf_ref_quantize_s8(xs, 5, 0.1f, -3, q8, NULL));
    static const int8_t want8[5] = {-13, -3, -3, -3, 7}; /* -0.5 -> 0 and 0.5 -> 0 (even) */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(q8[i], want8[i]);
    qf_ref_dequantize_s8(q8, 5, 0.1f, -3, back);
    CHECK_NEAR(back[0], -1.0, 1e-6);
    CHECK_OK(qf_ref_quantize_s16(xs, 5, 0.001f, 7, q16, NULL));
    CHECK_EQ_INT(q16[0], -993);
    CHECK_EQ_INT(q16[4], 1007);
    qf_ref_dequantize_s16(q16, 5, 0.001f, 7, back);
    CHECK_NEAR(back[3], 0.05, 1e-6);
    CHECK(qf_ref_quantize_s8(xs, 5, 0.0f, 0, q8, NULL) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_quantize_s8(xs, 5, 1.0f, 200, q8, NULL) == QF_ERR_INVALID_ARG);
}

/* ======================================================================== */
/* Fixed-point primitives and requantization                                */
/* ======================================================================== */

static void test_quantize_multiplier(void) {
    static const struct {
        double M;
        int32_t m;
        int shift;
    } t[] = {
        {1.0, 1 << 30, 1},
        {0.5, 1 << 30, 0},
        {0.75, 3 << 29, 0},
        {2.0, 1 << 30, 2},
        {0.0, 0, 0},
        {1e-12, 0, 0},                  /* < 2^-32: multiplier 0 */
        {0x1p-32, 1 << 30, -31},        /* smallest kept exponent */
        {0x1.fffffffffp-1, 1 << 30, 1}, /* frac rounds up to 1.0 */
        {0.1, 1717986918, -3},          /* round(0.8 * 2^31) */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int32_t m = -1;
        int sh = -99;
        CHECK_OK(qf_ref_quantize_multiplier(t[i].M, &m, &sh));
        CHECK_MSG(m == t[i].m && sh == t[i].shift, "M %g -> (%d, %d), want (%d, %d)", t[i].M,
                  (int)m, sh, (int)t[i].m, t[i].shift);
    }
    int32_t m;
    int sh;
    CHECK(qf_ref_quantize_multiplier(-0.5, &m, &sh) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_quantize_multiplier(NAN, &m, &sh) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_quantize_multiplier(INFINITY, &m, &sh) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_quantize_multiplier(0x1p30, &m, &sh) == QF_ERR_INVALID_ARG);
    /* random M: mantissa in [2^30, 2^31) and relative error <= 2^-31 */
    for (int i = 0; i < 5000; i++) {
        double M = exp2(rng_unit() * 60.0 - 31.0);
        CHECK_OK(qf_ref_quantize_multiplier(M, &m, &sh));
        CHECK(m >= (1 << 30));
        double back = ldexp((double)m, sh - 31);
        CHECK_MSG(fabs(back - M) <= M * 0x1p-31, "M %.17g back %.17g", M, back);
    }
    qf_ref_rescale r;
    CHECK_OK(qf_ref_rescale_init(0.3, &r));
    CHECK(r.mult_f == 0.3f);
    CHECK_EQ_INT(r.shift, -1);
}

static void test_gemmlowp_edges(void) {
    /* SaturatingRoundingDoublingHighMul */
    CHECK_EQ_INT(qf_ref_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    CHECK_EQ_INT(qf_ref_srdhm(INT32_MIN, INT32_MAX), -2147483647);
    CHECK_EQ_INT(qf_ref_srdhm(INT32_MAX, INT32_MAX), 2147483646);
    CHECK_EQ_INT(qf_ref_srdhm(INT32_MIN, 1 << 30), -(1 << 30));
    CHECK_EQ_INT(qf_ref_srdhm(0, INT32_MIN), 0);
    /* times 2^30 = halving; ties go toward +inf (gemmlowp's nudge) */
    static const int32_t half_in[] = {3, -3, 1, -1, 4, -4, 5, -5};
    static const int32_t half_out[] = {2, -1, 1, 0, 2, -2, 3, -2};
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(qf_ref_srdhm(half_in[i], 1 << 30), half_out[i]);
    /* RoundingDivideByPOT: ties away from zero */
    static const struct {
        int32_t x;
        int e;
        int32_t want;
    } r[] = {{5, 1, 3},           {-5, 1, -3},        {4, 1, 2},           {7, 2, 2},
             {6, 2, 2},           {-6, 2, -2},        {-7, 2, -2},         {-10, 2, -3},
             {-9, 2, -2},         {123, 0, 123},      {INT32_MIN, 31, -1}, {INT32_MAX, 31, 1},
             {INT32_MIN, 32, -1}, {INT32_MAX, 32, 0}, {INT32_MIN, 33, 0},  {-1, 40, 0},
             {1 << 30, 31, 1}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        CHECK_MSG(qf_ref_rdbpot(r[i].x, r[i].e) == r[i].want, "rdbpot(%d, %d) = %d, want %d",
                  (int)r[i].x, r[i].e, (int)qf_ref_rdbpot(r[i].x, r[i].e), (int)r[i].want);
    /* the composite: tiny M at shift -31, and ties on both sides of shift 0 */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(INT32_MIN, 1 << 30, -31), -1); /* -0.5 away */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(INT32_MAX, 1 << 30, -31), 1);  /* 0.4999..+tie step */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(3, 3 << 29, 1), 5);            /* 3 * 1.5 = 4.5 -> 5 */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(-3, 3 << 29, 1), -4);          /* -4.5 -> -4 (toward +inf) */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(-3, 3 << 29, -1), -1);         /* -3 * 0.375 = -1.125 */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(-6, 1 << 30, -1), -2);         /* -1.5 -> -2 (away) */
    CHECK_EQ_INT(qf_ref_mul_by_qmult(12345, 0, 0), 0);
    /* a saturated left shift keeps the sign and a magnitude >= 2^30, so any
     * activation clamp gives the right answer */
    CHECK(qf_ref_mul_by_qmult(1 << 30, 1 << 30, 3) >= (1 << 30));
    CHECK(qf_ref_mul_by_qmult(-(1 << 30), 1 << 30, 3) <= -(1 << 30));
    CHECK_EQ_INT(qf_ref_requant_fixed(1 << 30, 1 << 30, 3, 5, -128, 127), 127);
    CHECK_EQ_INT(qf_ref_requant_fixed(INT32_MIN, 1 << 30, 31, 5, -128, 127), -128);
    CHECK_EQ_INT(qf_ref_requant_fixed(INT32_MAX, INT32_MAX, -62, 0, -128, 127), 0);
    /* fp32 requant: one multiply, half even, clamp, huge products clamp */
    CHECK_EQ_INT(qf_ref_requant_fp32(5, 0.5f, 0, -128, 127), 2);  /* 2.5 -> 2 */
    CHECK_EQ_INT(qf_ref_requant_fp32(7, 0.5f, 0, -128, 127), 4);  /* 3.5 -> 4 */
    CHECK_EQ_INT(qf_ref_requant_fp32(-5, 0.5f, 3, -128, 127), 1); /* -2.5 -> -2, +3 */
    CHECK_EQ_INT(qf_ref_requant_fp32(INT32_MAX, 1e30f, 0, -128, 127), 127);
    CHECK_EQ_INT(qf_ref_requant_fp32(INT32_MIN, 1e30f, -7, -128, 127), -128);
    CHECK_EQ_INT(qf_ref_requant_fp32(1000, 0.01f, -128, -128, -100), -118);
    CHECK_EQ_INT(qf_ref_requant_fp32(1000, 0.1f, -128, -128, -100), -100); /* clip bound */
    /* accumulator range: 255 * 127 = 32385 per tap; INT32_MAX / 32385 = 66311 */
    CHECK_OK(qf_ref_check_accum_range(66311, 8, 8));
    CHECK(qf_ref_check_accum_range(66312, 8, 8) == QF_ERR_UNSUPPORTED);
    CHECK_OK(qf_ref_check_accum_range(258, 16, 8)); /* 65535 * 127 * 258 < 2^31 */
    CHECK(qf_ref_check_accum_range(259, 16, 8) == QF_ERR_UNSUPPORTED);
    CHECK_OK(qf_ref_check_accum_range(4681, 16, 4)); /* 65535 * 7 * 4681 < 2^31 */
    CHECK(qf_ref_check_accum_range(4682, 16, 4) == QF_ERR_UNSUPPORTED);
    CHECK_OK(qf_ref_check_accum_range(33025, 8, 9)); /* 255 * 255 * 33025 < 2^31 */
    CHECK(qf_ref_check_accum_range(33026, 8, 9) == QF_ERR_UNSUPPORTED);
    CHECK(qf_ref_check_accum_range(INT64_MAX, 16, 16) == QF_ERR_UNSUPPORTED);
    CHECK(qf_ref_check_accum_range(10, 0, 8) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_check_accum_range(10, 8, 1) == QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_ref_accum_bound(3, 8, 2), 3 * 255 * 1);
}

static int64_t floor_div64(int64_t n, int64_t d) { /* d > 0 */
    int64_t q = n / d;
    return (n % d != 0 && n < 0) ? q - 1 : q;
}

/* Fixed-point requantization vs exact rational arithmetic: r = acc * m *
 * 2^(shift-31) as N / D with N, D in int64. The result must be floor(r) or
 * ceil(r), within 1/2 + 2^-(rs+1) of r (two roundings), exact when r is an
 * integer, follow the documented tie rule when r is a tie, and be within 1 of
 * round(acc * M) for the real M. */
static int fixed_vs_exact(int32_t acc, double M, int *was_tie) {
    int32_t m;
    int sh;
    if (qf_ref_quantize_multiplier(M, &m, &sh) != QF_OK) return 0;
    int32_t got = qf_ref_mul_by_qmult(acc, m, sh);
    *was_tie = 0;
    if (m == 0) return got == 0 && fabs((double)acc * M) <= 0.5;
    int ls = sh > 0 ? sh : 0, rs = sh > 0 ? 0 : -sh;
    int64_t v = (int64_t)acc * ((int64_t)1 << ls);
    if (v > INT32_MAX || v < INT32_MIN) return 1; /* saturating: checked elsewhere */
    int64_t N = v * m;
    int64_t D = (int64_t)1 << (31 + rs);
    int64_t fl = floor_div64(N, D), rem = N - fl * D;
    if (got != fl && got != fl + 1) return 0;
    if (rem == 0 && got != fl) return 0;
    if (rem == D / 2) { /* exact tie */
        *was_tie = 1;
        int64_t want = sh >= 0 ? fl + 1 : (N < 0 ? fl : fl + 1);
        if (got != want) return 0;
    }
    int64_t slack = D / 2 + ((int64_t)1 << 30);
    if (got == fl && rem > slack) return 0;
    if (got == fl + 1 && D - rem > slack) return 0;
    double real = (double)acc * M;
    if (fabs(real) < 16777216.0 && fabs((double)got - nearbyint(real)) > 1.0) return 0;
    return 1;
}

static void test_fixed_requant_vs_exact(void) {
    rng_seed(7);
    int ties = 0;
    for (int i = 0; i < 200000; i++) {
        int32_t acc;
        switch (i % 3) {
        case 0: acc = rng_range(-1000, 1000); break;
        case 1: acc = rng_range(-(1 << 20), 1 << 20); break;
        default: acc = (int32_t)rng_u32(); break;
        }
        double M = exp2(rng_unit() * 44.0 - 36.0); /* 2^-36 .. 2^8 */
        int tie;
        CHECK_MSG(fixed_vs_exact(acc, M, &tie), "acc %d M %.17g", (int)acc, M);
        ties += tie;
    }
    /* deliberate ties: M = 2^-e and acc an odd multiple of 2^(e-1), and
     * M = 1.5 or 2.5 (shift >= 0) with odd acc */
    for (int e = 1; e <= 20; e++) {
        for (int j = 0; j < 60; j++) {
            int32_t odd = rng_range(-200, 200) * 2 + 1; /* |acc| <= 401 * 2^19 */
            int32_t acc = odd * (1 << (e - 1));
            int tie;
            CHECK_MSG(fixed_vs_exact(acc, ldexp(1.0, -e), &tie), "tie acc %d e %d", (int)acc, e);
            CHECK(tie);
            ties++;
        }
    }
    for (int j = 0; j < 200; j++) {
        int32_t acc = rng_range(-100000, 100000) * 2 + 1;
        int tie;
        CHECK(fixed_vs_exact(acc, j % 2 ? 1.5 : 2.5, &tie));
        CHECK(tie);
    }
    CHECK(ties >= 1200);
}

static void test_fp32_requant_vs_exact(void) {
    /* fp32 mode: exactly round_half_even((float)acc * (float)M) in double */
    rng_seed(11);
    for (int i = 0; i < 100000; i++) {
        int32_t acc = i % 2 ? rng_range(-100000, 100000) : (int32_t)rng_u32();
        float mf = (float)exp2(rng_unit() * 30.0 - 24.0);
        int32_t z = rng_range(-128, 127);
        double p = (double)(float)acc * (double)mf; /* exact product in double */
        float pf = (float)p;                        /* = binary32 multiply (RNE) */
        double want = nearbyint((double)pf) + z;
        if (want < -128) want = -128;
        if (want > 127) want = 127;
        CHECK_MSG(qf_ref_requant_fp32(acc, mf, z, -128, 127) == (int32_t)want, "acc %d mf %g",
                  (int)acc, (double)mf);
    }
}

static void test_rescale_q(void) {
    int8_t a[6] = {-128, -1, 0, 1, 50, 127};
    int16_t w[6];
    int8_t back[6];
    for (int mode = 0; mode < 2; mode++) {
        /* s8 (0.1, 3) -> s16 (0.001, -7): exact x100 */
        CHECK_OK(qf_ref_rescale_q((qf_ref_rq_mode)mode, a, QF_REF_S8, 0.1f, 3, w, QF_REF_S16,
                                  0.001f, -7, 6, NULL));
        for (int i = 0; i < 6; i++)
            CHECK_EQ_INT(w[i], (a[i] - 3) * 100 - 7);
        CHECK_OK(qf_ref_rescale_q((qf_ref_rq_mode)mode, w, QF_REF_S16, 0.001f, -7, back, QF_REF_S8,
                                  0.1f, 3, 6, NULL));
        for (int i = 0; i < 6; i++)
            CHECK_EQ_INT(back[i], a[i]);
        /* s8 -> s8 with a coarser scale: reference quantization within 1 */
        int8_t c[6];
        CHECK_OK(qf_ref_rescale_q((qf_ref_rq_mode)mode, a, QF_REF_S8, 0.1f, 3, c, QF_REF_S8, 0.37f,
                                  -20, 6, NULL));
        for (int i = 0; i < 6; i++) {
            int32_t want = ref_q(0.1 * (a[i] - 3), 0.37, -20, -128, 127);
            CHECK(abs(c[i] - want) <= 1);
        }
    }
    CHECK(qf_ref_rescale_q(QF_RQ_FP32, a, QF_REF_S8, 0.1f, 3, a, QF_REF_S16, 0.1f, 3, 6, NULL) ==
          QF_ERR_INVALID_ARG);
}

/* ======================================================================== */
/* Packing                                                                  */
/* ======================================================================== */

static void test_pack_layout(void) {
    /* int4, low nibble first: [1, -1, 7, -7, 3] -> 0xF1, 0x97, 0x03 */
    const int8_t v4[5] = {1, -1, 7, -7, 3};
    uint8_t p4[3];
    CHECK_EQ_INT(qf_ref_packed_row_bytes(5, 4), 3);
    CHECK_OK(qf_ref_pack_weights(v4, 1, 5, 4, p4, NULL));
    CHECK_EQ_INT(p4[0], 0xF1);
    CHECK_EQ_INT(p4[1], 0x97);
    CHECK_EQ_INT(p4[2], 0x03);
    /* int2, lowest bits first: [1, -1, 0, 1, -1] -> 0x4D, 0x03 */
    const int8_t v2[5] = {1, -1, 0, 1, -1};
    uint8_t p2[2];
    CHECK_EQ_INT(qf_ref_packed_row_bytes(5, 2), 2);
    CHECK_OK(qf_ref_pack_weights(v2, 1, 5, 2, p2, NULL));
    CHECK_EQ_INT(p2[0], 0x4D);
    CHECK_EQ_INT(p2[1], 0x03);
    /* rows pad to whole bytes: 2 rows x 3 int4 = 2 bytes per row */
    const int8_t r2[6] = {1, 2, 3, -4, -5, -6};
    uint8_t pr[4];
    CHECK_OK(qf_ref_pack_weights(r2, 2, 3, 4, pr, NULL));
    CHECK_EQ_INT(pr[0], 0x21);
    CHECK_EQ_INT(pr[1], 0x03);
    CHECK_EQ_INT(pr[2], 0xBC); /* -4 = 0xC, -5 = 0xB */
    CHECK_EQ_INT(pr[3], 0x0A); /* -6 = 0xA, padding nibble 0 */
    CHECK_EQ_INT(qf_ref_weight_get(pr + 2, 2, 4), -6);
    /* restricted range enforced */
    const int8_t bad4[1] = {-8}, bad2[1] = {-2}, bad8[1] = {-128};
    uint8_t tmp[1];
    CHECK(qf_ref_pack_weights(bad4, 1, 1, 4, tmp, NULL) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_pack_weights(bad2, 1, 1, 2, tmp, NULL) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_pack_weights(bad8, 1, 1, 8, tmp, NULL) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_pack_weights(v4, 1, 1, 3, tmp, NULL) == QF_ERR_INVALID_ARG);
    /* random round trips */
    rng_seed(3);
    static const int bits[3] = {8, 4, 2};
    for (int b = 0; b < 3; b++) {
        for (int cols = 1; cols <= 19; cols++) {
            int8_t src[4 * 19], back[4 * 19];
            uint8_t pk[4 * 19];
            int lim = (1 << (bits[b] - 1)) - 1;
            for (int i = 0; i < 4 * cols; i++)
                src[i] = (int8_t)rng_range(-lim, lim);
            CHECK_OK(qf_ref_pack_weights(src, 4, cols, bits[b], pk, NULL));
            CHECK_OK(qf_ref_unpack_weights(pk, 4, cols, bits[b], back, NULL));
            CHECK(memcmp(src, back, (size_t)(4 * cols)) == 0);
        }
    }
}

/* ======================================================================== */
/* Convolution                                                              */
/* ======================================================================== */

typedef struct conv_case {
    const char *name;
    int batch, in_c, in_h, in_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pt, pl, pb, pr, groups;
    int in_zp, out_zp;
    int act; /* 0 none, 1 ReLU (act_min = out_zp), 2 Clip (act_max = out_zp + 40) */
    float in_scale;
    float out_factor; /* output scale = auto (range fits) * out_factor */
    int w_bits, per_channel, s16;
} conv_case;

static const conv_case conv_cases[] = {
    /* clang-format off */
    {"1x1 single", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0.05f, 1, 8, 0, 0},
    {"3x3 pad1 odd channels", 2, 3, 7, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, -3, 5, 0, 0.02f, 1, 8,
     1, 0},
    {"stride2 asym pads", 1, 4, 8, 9, 6, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, 1, 10, -10, 0, 0.03f, 1, 8,
     1, 0},
    {"dilation2", 1, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0, 0, 0, 0.01f, 1, 8, 1, 0},
    {"groups2", 1, 4, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 7, 1, 0, 0.02f, 1, 8, 1, 0},
    {"depthwise", 2, 5, 6, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, -5, 3, 1, 0.04f, 1, 8, 1, 0},
    {"depthwise x2 stride2", 1, 3, 7, 8, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 0, 0, 0, 0.04f, 1, 8,
     1, 0},
    {"zp -128 relu", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, -128, 10, 1, 0.02f, 1, 8, 1,
     0},
    {"zp 127 out -128", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 127, -128, 0, 0.02f, 1, 8,
     1, 0},
    {"zp out 127", 1, 2, 4, 4, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, -7, 127, 0, 0.02f, 1, 8, 0, 0},
    {"tiny scale", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, -2, 0, 1e-6f, 1, 8, 1, 0},
    {"large scale", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, -2, 0, 1000.0f, 1, 8, 1, 0},
    {"saturating output", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0.02f, 0.01f, 8,
     1, 0},
    {"near-zero output", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 3, 0, 0.02f, 100.0f, 8,
     1, 0},
    {"clip", 1, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, -30, 2, 0.02f, 1, 8, 1, 0},
    {"int4 weights", 1, 3, 6, 7, 5, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 1, -1, 2, 0, 0.02f, 1, 4, 1, 0},
    {"int2 weights", 1, 5, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0, 1, 0.02f, 1, 2, 1, 0},
    {"int4 depthwise dil2", 1, 4, 7, 7, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 4, 0, 0, 0, 0.02f, 1, 4, 1,
     0},
    {"1x3 kernel strides 1,2", 1, 2, 4, 9, 3, 1, 3, 1, 2, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0.02f, 1, 8,
     0, 0},
    {"big K", 1, 64, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, -20, 0, 0, 0.01f, 1, 8, 1, 0},
    {"s16 3x3", 1, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1000, -2000, 0, 0.001f, 1, 8, 1, 1},
    {"s16 depthwise int4 relu", 1, 4, 6, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4, -32768, 0, 1,
     0.0005f, 1, 4, 1, 1},
    /* clang-format on */
};

static int conv_out(int in, int k, int s, int d, int pa, int pb) {
    return (in + pa + pb - d * (k - 1) - 1) / s + 1;
}

/* Run one conv case in one mode and one weight container. */
static qf_status run_conv(const conv_case *c, const qf_ref_conv_params *p, const int16_t *x,
                          const uint8_t *w, const int32_t *bias, int32_t *out_q, size_t n_out) {
    qf_status s;
    if (c->s16) {
        int16_t *o = guarded_alloc(n_out * sizeof *o);
        s = qf_ref_conv2d_s16(p, x, w, bias, o, NULL);
        if (!guard_intact(o, n_out * sizeof *o)) s = QF_ERR_INTERNAL;
        for (size_t i = 0; i < n_out; i++)
            out_q[i] = o[i];
        guarded_free(o);
    } else {
        size_t n_in = (size_t)p->batch * p->in_c * p->in_h * p->in_w;
        int8_t *x8 = malloc(n_in);
        for (size_t i = 0; i < n_in; i++)
            x8[i] = (int8_t)x[i];
        int8_t *o = guarded_alloc(n_out);
        s = qf_ref_conv2d_s8(p, x8, w, bias, o, NULL);
        if (!guard_intact(o, n_out)) s = QF_ERR_INTERNAL;
        for (size_t i = 0; i < n_out; i++)
            out_q[i] = o[i];
        guarded_free(o);
        free(x8);
    }
    return s;
}

static void test_conv_vs_float(void) {
    rng_seed(42);
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++) {
        const conv_case *c = &conv_cases[ci];
        const int oh = conv_out(c->in_h, c->k_h, c->s_h, c->d_h, c->pt, c->pb);
        const int ow = conv_out(c->in_w, c->k_w, c->s_w, c->d_w, c->pl, c->pr);
        const int cpg = c->in_c / c->groups, opg = c->out_c / c->groups;
        const int K = cpg * c->k_h * c->k_w;
        const int lim = (1 << (c->w_bits - 1)) - 1;
        const int32_t tmin = tmin_of(c->s16), tmax = tmax_of(c->s16);
        CHECK_OK(qf_ref_check_accum_range(K, c->s16 ? 16 : 8, c->w_bits));
        const size_t n_in = (size_t)c->batch * c->in_c * c->in_h * c->in_w;
        const size_t n_out = (size_t)c->batch * c->out_c * oh * ow;
        int16_t *x = malloc(n_in * sizeof *x);
        int8_t *w = malloc((size_t)c->out_c * K);
        float *w_scale = malloc((size_t)c->out_c * sizeof *w_scale);
        int32_t *bias = malloc((size_t)c->out_c * sizeof *bias);
        double *y = malloc(n_out * sizeof *y);
        int32_t *got[2] = {malloc(n_out * sizeof(int32_t)), malloc(n_out * sizeof(int32_t))};
        for (size_t i = 0; i < n_in; i++)
            x[i] = (int16_t)rng_range(tmin, tmax);
        for (int i = 0; i < c->out_c * K; i++)
            w[i] = (int8_t)rng_range(-lim, lim);
        for (int oc = 0; oc < c->out_c; oc++) {
            w_scale[oc] = (float)(0.02 * (c->per_channel ? 0.5 + rng_unit() : 1.0));
            bias[oc] = rng_range(-30 * K * lim, 30 * K * lim);
        }
        /* float reference: naive conv over dequantized doubles */
        double ymax = 0;
        for (int b = 0; b < c->batch; b++)
            for (int oc = 0; oc < c->out_c; oc++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        const double sw = w_scale[oc];
                        double acc = (double)c->in_scale * sw * bias[oc];
                        const int g = oc / opg;
                        for (int ic = 0; ic < cpg; ic++)
                            for (int ky = 0; ky < c->k_h; ky++)
                                for (int kx = 0; kx < c->k_w; kx++) {
                                    int iy = oy * c->s_h - c->pt + ky * c->d_h;
                                    int ix = ox * c->s_w - c->pl + kx * c->d_w;
                                    if (iy < 0 || iy >= c->in_h || ix < 0 || ix >= c->in_w)
                                        continue; /* real zero */
                                    int icg = g * cpg + ic;
                                    double xv =
                                        (double)c->in_scale *
                                        (x[((b * c->in_c + icg) * c->in_h + iy) * c->in_w + ix] -
                                         c->in_zp);
                                    double wv =
                                        sw *
                                        w[(oc * cpg + ic) * c->k_h * c->k_w + ky * c->k_w + kx];
                                    acc += xv * wv;
                                }
                        size_t at = (((size_t)b * c->out_c + oc) * oh + oy) * ow + ox;
                        y[at] = acc;
                        if (fabs(acc) > ymax) ymax = fabs(acc);
                    }
        float out_scale = (float)((ymax > 0 ? ymax / (0.9 * tmax) : 1.0) * c->out_factor);
        int32_t act_min = c->act == 1 ? c->out_zp : tmin;
        int32_t act_max = c->act == 2 ? (c->out_zp + 40 < tmax ? c->out_zp + 40 : tmax) : tmax;
        const int n_mult = c->per_channel ? c->out_c : 1;
        qf_ref_rescale mult[64];
        CHECK_OK(qf_ref_rescale_channels(c->in_scale, w_scale, n_mult, out_scale, mult, NULL));
        const size_t rb = qf_ref_packed_row_bytes(K, c->w_bits);
        uint8_t *wp = malloc((size_t)c->out_c * rb);
        CHECK_OK(qf_ref_pack_weights(w, c->out_c, K, c->w_bits, wp, NULL));
        qf_ref_conv_params p = {.batch = c->batch,
                                .in_c = c->in_c,
                                .in_h = c->in_h,
                                .in_w = c->in_w,
                                .out_c = c->out_c,
                                .out_h = oh,
                                .out_w = ow,
                                .k_h = c->k_h,
                                .k_w = c->k_w,
                                .stride_h = c->s_h,
                                .stride_w = c->s_w,
                                .dil_h = c->d_h,
                                .dil_w = c->d_w,
                                .pad_top = c->pt,
                                .pad_left = c->pl,
                                .pad_bottom = c->pb,
                                .pad_right = c->pr,
                                .groups = c->groups,
                                .in_zp = c->in_zp,
                                .w_bits = c->w_bits,
                                .rq = {.mult = mult,
                                       .n_mult = n_mult,
                                       .out_zp = c->out_zp,
                                       .act_min = act_min,
                                       .act_max = act_max}};
        CHECK_EQ_INT(qf_ref_conv_out_size(c->in_h, c->k_h, c->s_h, c->d_h, c->pt, c->pb), oh);
        for (int mode = 0; mode < 2; mode++) {
            p.rq.mode = (qf_ref_rq_mode)mode;
            CHECK_MSG(run_conv(c, &p, x, wp, bias, got[mode], n_out) == QF_OK, "%s", c->name);
            diffstat d = {0};
            for (size_t i = 0; i < n_out; i++) {
                const int oc = (int)((i / ((size_t)oh * ow)) % (size_t)c->out_c);
                const double tol =
                    tie_tol(mode, mult[n_mult == 1 ? 0 : oc].shift, y[i] / out_scale);
                diff_ref(&d, got[mode][i], y[i], out_scale, c->out_zp, act_min, act_max, tol);
            }
            CHECK_MSG(diff_ok(&d), "%s mode %d: max diff %d, %lld of %lld differ (%lld bad)",
                      c->name, mode, (int)d.max_diff, (long long)d.n_diff, (long long)d.n,
                      (long long)d.n_bad);
            CHECK_MSG(c->out_factor < 1 || not_saturated(&d), "%s: saturated (%lld of %lld)",
                      c->name, (long long)d.n_inside, (long long)d.n);
            /* packed weights must equal the same values stored as int8 */
            if (c->w_bits < 8) {
                uint8_t *w8 = malloc((size_t)c->out_c * K);
                int32_t *got8 = malloc(n_out * sizeof(int32_t));
                CHECK_OK(qf_ref_pack_weights(w, c->out_c, K, 8, w8, NULL));
                qf_ref_conv_params p8 = p;
                p8.w_bits = 8;
                CHECK(run_conv(c, &p8, x, w8, bias, got8, n_out) == QF_OK);
                CHECK_MSG(memcmp(got8, got[mode], n_out * sizeof(int32_t)) == 0,
                          "%s: packed != int8", c->name);
                free(w8);
                free(got8);
            }
        }
        diffstat dm = {0};
        for (size_t i = 0; i < n_out; i++)
            diff_add(&dm, got[0][i], got[1][i]);
        CHECK_MSG(dm.max_diff <= 1, "%s: fp32 vs fixed differ by %d", c->name, (int)dm.max_diff);
        free(x);
        free(w);
        free(w_scale);
        free(bias);
        free(y);
        free(got[0]);
        free(got[1]);
        free(wp);
    }
}


/* Asymmetric weights: a hand example, then (w, w_zp) must give exactly what
 * the symmetric kernel gives for the shifted weights w - w_zp, for conv
 * (grouped, padded, strided) and gemm. */
static void test_weight_zero_points(void) {
    qf_err e;
    /* 1x1 conv, 2 input channels: x = [3, 5], in_zp 1, w = [4, -2], w_zp 1:
     * acc = (3-1)(4-1) + (5-1)(-2-1) = 6 - 12 = -6; M = 1 -> -6 */
    int8_t hx[2] = {3, 5}, ho[1];
    uint8_t hw[2] = {4, (uint8_t)(int8_t)-2};
    int32_t hz[1] = {1};
    qf_ref_rescale one;
    CHECK_OK(qf_ref_rescale_init(1.0, &one));
    qf_ref_conv_params hp = {.batch = 1, .in_c = 2, .in_h = 1, .in_w = 1, .out_c = 1,
                             .out_h = 1, .out_w = 1, .k_h = 1, .k_w = 1, .stride_h = 1,
                             .stride_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .in_zp = 1,
                             .w_bits = 8,
                             .rq = {.mult = &one, .n_mult = 1, .act_min = -128, .act_max = 127},
                             .w_zp = hz};
    CHECK_OK(qf_ref_conv2d_s8(&hp, hx, hw, NULL, ho, &e));
    CHECK_EQ_INT(ho[0], -6);
    hz[0] = 128; /* outside the 8-bit container */
    CHECK(qf_ref_conv2d_s8(&hp, hx, hw, NULL, ho, &e) == QF_ERR_INVALID_ARG);

    enum { B = 2, C = 4, H = 7, W = 6, O = 6, K = 3, G = 2 };
    uint32_t st = 99;
#define RND(lo, hi) ((st = st * 1664525u + 1013904223u), (lo) + (int)((st >> 8) % ((hi) - (lo) + 1)))
    static int8_t x[B * C * H * W], y1[B * O * 4 * 2], y2[B * O * 4 * 2];
    int8_t w[O * (C / G) * K * K], ws[O * (C / G) * K * K];
    int32_t zp[O], bias[O];
    for (size_t i = 0; i < sizeof x; i++) x[i] = (int8_t)RND(-128, 127);
    for (int o = 0; o < O; o++) zp[o] = RND(-20, 20), bias[o] = RND(-500, 500);
    for (int i = 0; i < O * (C / G) * K * K; i++) {
        w[i] = (int8_t)RND(-100, 100);
        ws[i] = (int8_t)(w[i] - zp[i / ((C / G) * K * K)]);
    }
    qf_ref_rescale m[O];
    for (int o = 0; o < O; o++) CHECK_OK(qf_ref_rescale_init(0.002 + 0.001 * o, &m[o]));
    for (int mode = 0; mode < 2; mode++) {
        qf_ref_conv_params p = {.batch = B, .in_c = C, .in_h = H, .in_w = W, .out_c = O,
                                .out_h = 4, .out_w = 2, .k_h = K, .k_w = K, .stride_h = 2,
                                .stride_w = 2, .dil_h = 1, .dil_w = 1, .pad_top = 1,
                                .pad_left = 0, .pad_bottom = 1, .pad_right = 0, .groups = G,
                                .in_zp = -7, .w_bits = 8,
                                .rq = {.mode = (qf_ref_rq_mode)mode, .mult = m, .n_mult = O,
                                       .out_zp = 3, .act_min = -128, .act_max = 127}};
        CHECK_OK(qf_ref_conv2d_s8(&p, x, (const uint8_t *)ws, bias, y1, &e));
        p.w_zp = zp;
        CHECK_OK(qf_ref_conv2d_s8(&p, x, (const uint8_t *)w, bias, y2, &e));
        CHECK(memcmp(y1, y2, sizeof y1) == 0);
        /* gemm: x as [12, 14] rows, W [O, 14] */
        qf_ref_gemm_params gp = {.m = 12, .n = O, .k = 14, .in_zp = 5, .w_bits = 8,
                                 .rq = {.mode = (qf_ref_rq_mode)mode, .mult = m, .n_mult = O,
                                        .out_zp = -2, .act_min = -128, .act_max = 127}};
        static int8_t g1[12 * O], g2[12 * O];
        int8_t gw[O * 14], gws[O * 14];
        for (int i = 0; i < O * 14; i++) gw[i] = w[i % (O * (C / G) * K * K)];
        for (int i = 0; i < O * 14; i++) gws[i] = (int8_t)(gw[i] - zp[i / 14]);
        CHECK_OK(qf_ref_gemm_s8(&gp, x, (const uint8_t *)gws, bias, g1, &e));
        gp.w_zp = zp;
        CHECK_OK(qf_ref_gemm_s8(&gp, x, (const uint8_t *)gw, bias, g2, &e));
        CHECK(memcmp(g1, g2, sizeof g1) == 0);
    }
#undef RND
}

static void test_conv_bad_params(void) {
    int8_t x[16] = {0}, o[16];
    uint8_t w[9] = {0};
    qf_ref_rescale m = {1.0f, 1 << 30, 1};
    qf_ref_conv_params p = {.batch = 1,
                            .in_c = 1,
                            .in_h = 4,
                            .in_w = 4,
                            .out_c = 1,
                            .out_h = 2,
                            .out_w = 2,
                            .k_h = 3,
                            .k_w = 3,
                            .stride_h = 1,
                            .stride_w = 1,
                            .dil_h = 1,
                            .dil_w = 1,
                            .groups = 1,
                            .w_bits = 8,
                            .rq = {.mult = &m, .n_mult = 1, .act_min = -128, .act_max = 127}};
    qf_err e;
    CHECK_OK(qf_ref_conv2d_s8(&p, x, w, NULL, o, &e));
    qf_ref_conv_params q = p;
    q.out_h = 3;
    CHECK(qf_ref_conv2d_s8(&q, x, w, NULL, o, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "qf_ref_conv2d_s8") != NULL);
    q = p;
    q.groups = 2;
    CHECK(qf_ref_conv2d_s8(&q, x, w, NULL, o, &e) == QF_ERR_INVALID_ARG);
    q = p;
    q.w_bits = 3;
    CHECK(qf_ref_conv2d_s8(&q, x, w, NULL, o, &e) == QF_ERR_INVALID_ARG);
    q = p;
    q.rq.n_mult = 2;
    CHECK(qf_ref_conv2d_s8(&q, x, w, NULL, o, &e) == QF_ERR_INVALID_ARG);
    q = p;
    q.rq.act_min = 5;
    q.rq.act_max = 4;
    CHECK(qf_ref_conv2d_s8(&q, x, w, NULL, o, &e) == QF_ERR_INVALID_ARG);
    q = p;
    q.in_zp = 300;
    CHECK(qf_ref_conv2d_s8(&q, x, w, NULL, o, &e) == QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_ref_conv_out_size(2, 5, 1, 1, 0, 0), -1);
    CHECK_EQ_INT(qf_ref_conv_out_size(7, 3, 2, 2, 1, 1), 3);
}

/* ======================================================================== */
/* Gemm and matmul                                                          */
/* ======================================================================== */

typedef struct gemm_case {
    const char *name;
    int m, n, k, in_zp, out_zp, act, w_bits, per_channel, s16;
    float in_scale, out_factor;
} gemm_case;

static const gemm_case gemm_cases[] = {
    /* clang-format off */
    {"1x1x1", 1, 1, 1, 0, 0, 0, 8, 0, 0, 0.1f, 1},
    {"3x5x17 per channel", 3, 5, 17, -9, 4, 0, 8, 1, 0, 0.02f, 1},
    {"int4 odd k", 4, 7, 33, 3, -3, 0, 4, 1, 0, 0.02f, 1},
    {"int2", 4, 6, 9, 0, 0, 0, 2, 1, 0, 0.05f, 1},
    {"zp -128 relu", 3, 4, 16, -128, -128, 1, 8, 1, 0, 0.01f, 1},
    {"zp 127 clip", 3, 4, 16, 127, 0, 2, 8, 0, 0, 0.01f, 1},
    {"tiny scale saturating", 2, 6, 20, 1, 1, 0, 8, 1, 0, 1e-7f, 0.05f},
    {"large scale", 2, 6, 20, 1, 1, 0, 8, 1, 0, 300.0f, 1},
    {"s16", 3, 4, 20, 500, -700, 0, 8, 1, 1, 0.001f, 1},
    {"s16 int2 relu", 2, 5, 64, -32768, 100, 1, 2, 1, 1, 0.0001f, 1},
    {"big k", 1, 10, 256, 5, 0, 0, 8, 1, 0, 0.01f, 1},
    /* clang-format on */
};

static qf_status run_gemm(const gemm_case *c, const qf_ref_gemm_params *p, const int16_t *x,
                          const uint8_t *w, const int32_t *bias, int32_t *out_q) {
    const size_t n_out = (size_t)c->m * c->n, n_in = (size_t)c->m * c->k;
    qf_status s;
    if (c->s16) {
        int16_t *o = guarded_alloc(n_out * sizeof *o);
        s = qf_ref_gemm_s16(p, x, w, bias, o, NULL);
        if (!guard_intact(o, n_out * sizeof *o)) s = QF_ERR_INTERNAL;
        for (size_t i = 0; i < n_out; i++)
            out_q[i] = o[i];
        guarded_free(o);
    } else {
        int8_t *x8 = malloc(n_in);
        for (size_t i = 0; i < n_in; i++)
            x8[i] = (int8_t)x[i];
        int8_t *o = guarded_alloc(n_out);
        s = qf_ref_gemm_s8(p, x8, w, bias, o, NULL);
        if (!guard_intact(o, n_out)) s = QF_ERR_INTERNAL;
        for (size_t i = 0; i < n_out; i++)
            out_q[i] = o[i];
        guarded_free(o);
        free(x8);
    }
    return s;
}

static void test_gemm_vs_float(void) {
    rng_seed(5);
    for (size_t ci = 0; ci < sizeof gemm_cases / sizeof gemm_cases[0]; ci++) {
        const gemm_case *c = &gemm_cases[ci];
        const int32_t tmin = tmin_of(c->s16), tmax = tmax_of(c->s16);
        const int lim = (1 << (c->w_bits - 1)) - 1;
        CHECK_OK(qf_ref_check_accum_range(c->k, c->s16 ? 16 : 8, c->w_bits));
        int16_t x[3 * 256];
        int8_t w[10 * 256];
        float ws[10];
        int32_t bias[10], got[2][64];
        double y[64];
        for (int i = 0; i < c->m * c->k; i++)
            x[i] = (int16_t)rng_range(tmin, tmax);
        for (int i = 0; i < c->n * c->k; i++)
            w[i] = (int8_t)rng_range(-lim, lim);
        for (int j = 0; j < c->n; j++) {
            ws[j] = (float)(0.03 * (c->per_channel ? 0.5 + rng_unit() : 1.0));
            bias[j] = rng_range(-20 * c->k * lim, 20 * c->k * lim);
        }
        double ymax = 0;
        for (int i = 0; i < c->m; i++)
            for (int j = 0; j < c->n; j++) {
                double acc = (double)c->in_scale * ws[j] * bias[j];
                for (int t = 0; t < c->k; t++)
                    acc += ((double)c->in_scale * (x[i * c->k + t] - c->in_zp)) *
                           ((double)ws[j] * w[j * c->k + t]);
                y[i * c->n + j] = acc;
                if (fabs(acc) > ymax) ymax = fabs(acc);
            }
        float out_scale = (float)((ymax > 0 ? ymax / (0.9 * tmax) : 1.0) * c->out_factor);
        int32_t act_min = c->act == 1 ? c->out_zp : tmin;
        int32_t act_max = c->act == 2 ? c->out_zp + 40 : tmax;
        const int n_mult = c->per_channel ? c->n : 1;
        qf_ref_rescale mult[10];
        CHECK_OK(qf_ref_rescale_channels(c->in_scale, ws, n_mult, out_scale, mult, NULL));
        uint8_t wp[10 * 256], w8[10 * 256];
        CHECK_OK(qf_ref_pack_weights(w, c->n, c->k, c->w_bits, wp, NULL));
        CHECK_OK(qf_ref_pack_weights(w, c->n, c->k, 8, w8, NULL));
        qf_ref_gemm_params p = {.m = c->m,
                                .n = c->n,
                                .k = c->k,
                                .in_zp = c->in_zp,
                                .w_bits = c->w_bits,
                                .rq = {.mult = mult,
                                       .n_mult = n_mult,
                                       .out_zp = c->out_zp,
                                       .act_min = act_min,
                                       .act_max = act_max}};
        for (int mode = 0; mode < 2; mode++) {
            p.rq.mode = (qf_ref_rq_mode)mode;
            CHECK_MSG(run_gemm(c, &p, x, wp, bias, got[mode]) == QF_OK, "%s", c->name);
            diffstat d = {0};
            for (int i = 0; i < c->m * c->n; i++)
                diff_ref(&d, got[mode][i], y[i], out_scale, c->out_zp, act_min, act_max,
                         tie_tol(mode, mult[n_mult == 1 ? 0 : i % c->n].shift, y[i] / out_scale));
            CHECK_MSG(diff_ok(&d), "%s mode %d: max diff %d, %lld differ (%lld bad)", c->name, mode,
                      (int)d.max_diff, (long long)d.n_diff, (long long)d.n_bad);
            CHECK_MSG(c->out_factor < 1 || not_saturated(&d), "%s: saturated", c->name);
            qf_ref_gemm_params p8 = p;
            p8.w_bits = 8;
            int32_t got8[64];
            CHECK(run_gemm(c, &p8, x, w8, bias, got8) == QF_OK);
            CHECK_MSG(memcmp(got8, got[mode], (size_t)(c->m * c->n) * sizeof(int32_t)) == 0,
                      "%s: packed != int8", c->name);
        }
        for (int i = 0; i < c->m * c->n; i++)
            CHECK_MSG(abs(got[0][i] - got[1][i]) <= 1, "%s: fp32 vs fixed", c->name);
    }
}

/* int32 accumulation wraps modulo 2^32 (the documented, compiler-independent
 * behaviour for layers that check_accum_range would have rejected). */
static void test_gemm_accum_wraps(void) {
    enum { K = 300 };
    int16_t x[K];
    int8_t w[K];
    for (int i = 0; i < K; i++) {
        x[i] = 32767;
        w[i] = 127;
    }
    CHECK(qf_ref_check_accum_range(K, 16, 8) == QF_ERR_UNSUPPORTED);
    uint8_t wp[K];
    CHECK_OK(qf_ref_pack_weights(w, 1, K, 8, wp, NULL));
    qf_ref_rescale m;
    CHECK_OK(qf_ref_rescale_init(1e-6, &m));
    int16_t y[2];
    for (int mode = 0; mode < 2; mode++) {
        qf_ref_gemm_params p = {.m = 1,
                                .n = 1,
                                .k = K,
                                .in_zp = -32768,
                                .w_bits = 8,
                                .rq = {.mode = (qf_ref_rq_mode)mode,
                                       .mult = &m,
                                       .n_mult = 1,
                                       .act_min = -32768,
                                       .act_max = 32767}};
        CHECK_OK(qf_ref_gemm_s16(&p, x, wp, NULL, &y[mode], NULL));
    }
    /* 300 * 65535 * 127 = 2496883500 wraps to 2496883500 - 2^32 */
    const int32_t wrapped = (int32_t)(2496883500LL - 4294967296LL);
    CHECK_EQ_INT(y[0], qf_ref_requant_fp32(wrapped, m.mult_f, 0, -32768, 32767));
    CHECK_EQ_INT(y[1], qf_ref_requant_fixed(wrapped, m.mult_q, m.shift, 0, -32768, 32767));
    CHECK(y[0] < 0);
}

typedef struct matmul_case {
    const char *name;
    int batch, m, k, n, b_batched, a_zp, b_zp, out_zp, per_col;
} matmul_case;

static const matmul_case matmul_cases[] = {
    /* clang-format off */
    {"1x1x1", 1, 1, 1, 1, 1, 0, 0, 0, 0},
    {"batched zp extremes", 2, 3, 5, 4, 1, -128, 127, 0, 0},
    {"shared B per column", 3, 4, 7, 5, 0, 10, -3, -20, 1},
    {"long k", 1, 5, 64, 3, 1, 1, -1, 127, 1},
    /* clang-format on */
};

static void test_matmul_vs_float(void) {
    rng_seed(9);
    for (size_t ci = 0; ci < sizeof matmul_cases / sizeof matmul_cases[0]; ci++) {
        const matmul_case *c = &matmul_cases[ci];
        CHECK_OK(qf_ref_check_accum_range(c->k, 8, 9));
        const int nb = c->b_batched ? c->batch : 1;
        int8_t a[3 * 5 * 64], b[3 * 64 * 5], got[2][3 * 5 * 5];
        double y[3 * 5 * 5];
        for (int i = 0; i < c->batch * c->m * c->k; i++)
            a[i] = (int8_t)rng_range(-128, 127);
        for (int i = 0; i < nb * c->k * c->n; i++)
            b[i] = (int8_t)rng_range(-128, 127);
        const float sa = 0.013f;
        float sb[5];
        for (int j = 0; j < c->n; j++)
            sb[j] = (float)(0.02 * (c->per_col ? 0.5 + rng_unit() : 1));
        double ymax = 0;
        for (int bt = 0; bt < c->batch; bt++)
            for (int i = 0; i < c->m; i++)
                for (int j = 0; j < c->n; j++) {
                    double acc = 0;
                    const int8_t *bb = b + (c->b_batched ? bt * c->k * c->n : 0);
                    for (int t = 0; t < c->k; t++)
                        acc += ((double)sa * (a[(bt * c->m + i) * c->k + t] - c->a_zp)) *
                               ((double)sb[j] * (bb[t * c->n + j] - c->b_zp));
                    y[(bt * c->m + i) * c->n + j] = acc;
                    if (fabs(acc) > ymax) ymax = fabs(acc);
                }
        const float so = (float)(ymax / 110.0 + 1e-6);
        const int n_mult = c->per_col ? c->n : 1;
        qf_ref_rescale mult[5];
        CHECK_OK(qf_ref_rescale_channels(sa, sb, n_mult, so, mult, NULL));
        const int n_out = c->batch * c->m * c->n;
        for (int mode = 0; mode < 2; mode++) {
            qf_ref_matmul_params p = {.batch = c->batch,
                                      .m = c->m,
                                      .k = c->k,
                                      .n = c->n,
                                      .b_batched = c->b_batched,
                                      .a_zp = c->a_zp,
                                      .b_zp = c->b_zp,
                                      .rq = {.mode = (qf_ref_rq_mode)mode,
                                             .mult = mult,
                                             .n_mult = n_mult,
                                             .out_zp = c->out_zp,
                                             .act_min = -128,
                                             .act_max = 127}};
            CHECK_OK(qf_ref_matmul_s8(&p, a, b, got[mode], NULL));
            diffstat d = {0};
            for (int i = 0; i < n_out; i++)
                diff_ref(&d, got[mode][i], y[i], so, c->out_zp, -128, 127,
                         tie_tol(mode, mult[n_mult == 1 ? 0 : i % c->n].shift, y[i] / so));
            CHECK_MSG(diff_ok(&d), "%s mode %d: max diff %d, %lld differ (%lld bad)", c->name, mode,
                      (int)d.max_diff, (long long)d.n_diff, (long long)d.n_bad);
            CHECK_MSG(not_saturated(&d), "%s: saturated", c->name);
        }
        for (int i = 0; i < n_out; i++)
            CHECK(abs(got[0][i] - got[1][i]) <= 1);
    }
}

/* ======================================================================== */
/* Add and Mul with broadcasting                                            */
/* ======================================================================== */

typedef struct eltwise_case {
    const char *name;
    int rank;
    int64_t out[4], a[4], b[4];
    float sa, sb, so;
    int za, zb, zo, relu;
    int sat_ok; /* bit 0: add, bit 1: mul is expected to clamp (almost) everything */
} eltwise_case;

static const eltwise_case eltwise_cases[] = {
    /* clang-format off */
    {"same shape", 4, {2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}, 0.05f, 0.03f, 0.07f, 3, -5, 1, 0,
     0},
    {"per channel b", 4, {2, 3, 4, 5}, {2, 3, 4, 5}, {1, 3, 1, 1}, 0.02f, 0.1f, 0.09f, 0, 7, -2, 0,
     0},
    {"scalar b", 4, {2, 3, 2, 3}, {2, 3, 2, 3}, {1, 1, 1, 1}, 0.02f, 0.5f, 0.7f, -1, 20, 0, 0, 0},
    {"both broadcast", 3, {2, 3, 4}, {2, 1, 4}, {1, 3, 1}, 0.04f, 0.04f, 0.06f, 4, 4, 4, 0, 0},
    {"a broadcast", 2, {5, 6}, {1, 6}, {5, 6}, 0.1f, 0.01f, 0.08f, 0, 0, 0, 0, 0},
    {"zp extremes relu", 2, {4, 9}, {4, 9}, {4, 9}, 0.03f, 0.02f, 0.04f, -128, 127, -128, 1, 2},
    {"zp extremes 2", 1, {17}, {17}, {1}, 0.03f, 0.02f, 0.06f, 127, -128, 127, 0, 0},
    {"scale ratio 1e-3", 2, {3, 7}, {3, 7}, {3, 7}, 0.001f, 1.0f, 0.9f, 2, -2, 0, 0, 0},
    {"tiny scales", 2, {3, 7}, {3, 7}, {3, 7}, 1e-6f, 2e-6f, 2.5e-6f, 2, -2, 0, 1, 0},
    {"saturating out", 2, {3, 7}, {3, 7}, {3, 7}, 0.5f, 0.5f, 0.01f, 0, 0, 0, 0, 3},
    {"rank 0", 0, {0}, {0}, {0}, 0.25f, 0.125f, 0.3f, 1, 2, 3, 0, 0},
    /* clang-format on */
};

static void test_add_mul_vs_float(void) {
    rng_seed(13);
    for (size_t ci = 0; ci < sizeof eltwise_cases / sizeof eltwise_cases[0]; ci++) {
        const eltwise_case *c = &eltwise_cases[ci];
        qf_ref_eltwise_params p = {.rank = c->rank,
                                   .a_scale = c->sa,
                                   .b_scale = c->sb,
                                   .out_scale = c->so,
                                   .a_zp = c->za,
                                   .b_zp = c->zb,
                                   .out_zp = c->zo,
                                   .act_min = c->relu ? c->zo : -128,
                                   .act_max = 127};
        int64_t na = 1, nb = 1, no = 1;
        for (int i = 0; i < c->rank; i++) {
            p.out_dims[i] = c->out[i];
            p.a_dims[i] = c->a[i];
            p.b_dims[i] = c->b[i];
            na *= c->a[i];
            nb *= c->b[i];
            no *= c->out[i];
        }
        int8_t a[120], b[120], got[2][2][120];
        for (int i = 0; i < na; i++)
            a[i] = (int8_t)rng_range(-128, 127);
        for (int i = 0; i < nb; i++)
            b[i] = (int8_t)rng_range(-128, 127);
        for (int op = 0; op < 2; op++) { /* 0 add, 1 mul */
            double so = c->so;
            if (op == 1) /* products: about 100 steps for the largest |product| */
                so = (double)c->sa * c->sb * 128.0 * 128.0 / 100.0 * ((c->sat_ok & 2) ? 0.01 : 1);
            p.out_scale = (float)so;
            for (int mode = 0; mode < 2; mode++) {
                p.mode = (qf_ref_rq_mode)mode;
                int8_t *o = guarded_alloc((size_t)no);
                qf_status s =
                    op ? qf_ref_mul_s8(&p, a, b, o, NULL) : qf_ref_add_s8(&p, a, b, o, NULL);
                CHECK_MSG(s == QF_OK, "%s op %d", c->name, op);
                CHECK(guard_intact(o, (size_t)no));
                memcpy(got[op][mode], o, (size_t)no);
                guarded_free(o);
                diffstat d = {0};
                int64_t idx[4] = {0};
                /* the multiplier whose rounding dominates: add's output stage,
                 * mul's only stage */
                int32_t shift = 0;
                if (op) {
                    qf_ref_rescale r;
                    CHECK_OK(qf_ref_mul_prepare(&p, &r, NULL));
                    shift = r.shift;
                } else {
                    qf_ref_add_derived ad;
                    CHECK_OK(qf_ref_add_prepare(&p, &ad, NULL));
                    shift = ad.out_mult.shift;
                }
                for (int64_t i = 0; i < no; i++) {
                    /* independent broadcast indexing from the N-d index */
                    int64_t ia = 0, ib = 0, rem = i;
                    for (int k = c->rank - 1; k >= 0; k--) {
                        idx[k] = rem % c->out[k];
                        rem /= c->out[k];
                    }
                    for (int k = 0; k < c->rank; k++) {
                        ia = ia * c->a[k] + (c->a[k] == 1 ? 0 : idx[k]);
                        ib = ib * c->b[k] + (c->b[k] == 1 ? 0 : idx[k]);
                    }
                    double xa = (double)c->sa * (a[ia] - c->za);
                    double xb = (double)c->sb * (b[ib] - c->zb);
                    double yv = op ? xa * xb : xa + xb;
                    const double sof = (float)so;
                    diff_ref(&d, got[op][mode][i], yv, sof, c->zo, p.act_min, 127,
                             tie_tol(mode, shift, yv / sof));
                }
                CHECK_MSG(diff_ok(&d), "%s %s mode %d: max diff %d, %lld of %lld differ", c->name,
                          op ? "mul" : "add", mode, (int)d.max_diff, (long long)d.n_diff,
                          (long long)d.n);
                CHECK_MSG(((c->sat_ok >> op) & 1) || not_saturated(&d),
                          "%s %s: saturated (%lld of %lld inside)", c->name, op ? "mul" : "add",
                          (long long)d.n_inside, (long long)d.n);
            }
            for (int64_t i = 0; i < no; i++)
                CHECK_MSG(abs(got[op][0][i] - got[op][1][i]) <= 1, "%s: fp32 vs fixed", c->name);
        }
    }
    /* exact TFLite pipeline on a hand-checked value: 0.5 + 0.25 with scales
     * 0.5/0.25 -> 0.75 at scale 0.5 = 1.5 -> 2 (fp32, half even) */
    qf_ref_eltwise_params h = {.rank = 1,
                               .out_dims = {1},
                               .a_dims = {1},
                               .b_dims = {1},
                               .a_scale = 0.5f,
                               .b_scale = 0.25f,
                               .out_scale = 0.5f,
                               .act_min = -128,
                               .act_max = 127};
    int8_t ha = 1, hb = 1, ho;
    CHECK_OK(qf_ref_add_s8(&h, &ha, &hb, &ho, NULL));
    CHECK_EQ_INT(ho, 2);
    qf_ref_add_derived d;
    CHECK_OK(qf_ref_add_prepare(&h, &d, NULL));
    CHECK_EQ_INT(d.left_shift, 20);
    CHECK(d.a_mult_f == 1.0f && d.b_mult_f == 0.5f);
    /* shapes that do not broadcast are rejected */
    h.b_dims[0] = 2;
    CHECK(qf_ref_add_s8(&h, &ha, &hb, &ho, NULL) == QF_ERR_SHAPE);
}

/* ======================================================================== */
/* Pooling                                                                  */
/* ======================================================================== */

typedef struct pool_case {
    const char *name;
    int kind; /* 0 max, 1 avg, 2 global avg */
    int c, h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, include_pad;
    int in_zp, out_zp, relu;
    float si, so;
} pool_case;

static const pool_case pool_cases[] = {
    /* clang-format off */
    {"max 3x3 s2 p1", 0, 3, 7, 7, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 5, 5, 0, 0.1f, 0.1f},
    {"max 2x2 relu", 0, 2, 6, 5, 3, 2, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, -3, -3, 1, 0.1f, 0.1f},
    {"max dil2", 0, 2, 7, 7, 3, 3, 3, 3, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0.1f, 0.1f},
    {"max 1x1 ceil window", 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    {"avg 3x3 s1 p1 exclude", 1, 3, 5, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2, -4, 0, 0.05f,
     0.04f},
    {"avg 3x3 s1 p1 include", 1, 3, 5, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, -4, 0, 0.05f,
     0.04f},
    {"avg 2x2 s2", 1, 2, 6, 6, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, -128, -128, 0, 0.02f, 0.03f},
    {"avg ceil-mode window", 1, 2, 5, 5, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 1, 127, 127, 0, 0.02f,
     0.03f},
    {"avg relu big kernel", 1, 2, 9, 9, 4, 4, 5, 5, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 10, 1, 0.1f,
     0.05f},
    {"global 7x7", 2, 4, 7, 7, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, -1, 0, 0.05f, 0.01f},
    {"global 1x1", 2, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -128, -128, 0, 0.05f, 0.05f},
    {"global 3x5 relu", 2, 5, 3, 5, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -10, 0, 1, 0.03f, 0.01f},
    /* clang-format on */
};

static void test_pool_vs_float(void) {
    rng_seed(17);
    for (size_t ci = 0; ci < sizeof pool_cases / sizeof pool_cases[0]; ci++) {
        const pool_case *c = &pool_cases[ci];
        const int batch = 2, global = c->kind == 2;
        const int oh = global ? 1 : c->oh, ow = global ? 1 : c->ow;
        const int kh = global ? c->h : c->kh, kw = global ? c->w : c->kw;
        const int sh = global ? 1 : c->sh, sw = global ? 1 : c->sw;
        const int dh = global ? 1 : c->dh, dw = global ? 1 : c->dw;
        int8_t x[2 * 5 * 81], got[2][2 * 5 * 49];
        const int n_in = batch * c->c * c->h * c->w, n_out = batch * c->c * oh * ow;
        for (int i = 0; i < n_in; i++)
            x[i] = (int8_t)rng_range(-128, 127);
        qf_ref_pool_params p = {.batch = batch,
                                .channels = c->c,
                                .in_h = c->h,
                                .in_w = c->w,
                                .out_h = c->oh,
                                .out_w = c->ow,
                                .k_h = c->kh,
                                .k_w = c->kw,
                                .stride_h = c->sh,
                                .stride_w = c->sw,
                                .dil_h = c->dh,
                                .dil_w = c->dw,
                                .pad_top = c->pt,
                                .pad_left = c->pl,
                                .pad_bottom = c->pb,
                                .pad_right = c->pr,
                                .count_include_pad = c->include_pad,
                                .in_scale = c->si,
                                .out_scale = c->so,
                                .in_zp = c->in_zp,
                                .out_zp = c->out_zp,
                                .act_min = c->relu ? c->out_zp : -128,
                                .act_max = 127};
        for (int mode = 0; mode < 2; mode++) {
            p.mode = (qf_ref_rq_mode)mode;
            int8_t *o = guarded_alloc((size_t)n_out);
            qf_status s = c->kind == 0   ? qf_ref_maxpool_s8(&p, x, o, NULL)
                          : c->kind == 1 ? qf_ref_avgpool_s8(&p, x, o, NULL)
                                         : qf_ref_global_avgpool_s8(&p, x, o, NULL);
            CHECK_MSG(s == QF_OK, "%s", c->name);
            CHECK(guard_intact(o, (size_t)n_out));
            memcpy(got[mode], o, (size_t)n_out);
            guarded_free(o);
            diffstat d = {0};
            for (int pl = 0; pl < batch * c->c; pl++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double mx = -INFINITY, sum = 0;
                        int valid = 0, padded = 0;
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int iy = oy * sh - (global ? 0 : c->pt) + ky * dh;
                                int ix = ox * sw - (global ? 0 : c->pl) + kx * dw;
                                if (!global && iy >= -c->pt && iy < c->h + c->pb && ix >= -c->pl &&
                                    ix < c->w + c->pr)
                                    padded++;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                                double v =
                                    (double)c->si * (x[(pl * c->h + iy) * c->w + ix] - c->in_zp);
                                if (v > mx) mx = v;
                                sum += v;
                                valid++;
                            }
                        const int32_t g = got[mode][(pl * oh + oy) * ow + ox];
                        if (c->kind == 0) { /* output keeps the input's scale and zp */
                            diff_add(&d, g, ref_q(mx, c->si, c->in_zp, p.act_min, 127));
                            continue;
                        }
                        const int count = global ? c->h * c->w : (c->include_pad ? padded : valid);
                        qf_ref_rescale r;
                        CHECK_OK(qf_ref_avgpool_rescale(c->si, c->so, count, &r));
                        const double avg = sum / count;
                        diff_ref(&d, g, avg, c->so, c->out_zp, p.act_min, 127,
                                 tie_tol(mode, r.shift, avg / c->so));
                    }
            if (c->kind == 0) CHECK_MSG(d.max_diff == 0, "%s: max pool must be exact", c->name);
            CHECK_MSG(diff_ok(&d), "%s mode %d: max diff %d, %lld differ (%lld bad)", c->name, mode,
                      (int)d.max_diff, (long long)d.n_diff, (long long)d.n_bad);
            CHECK_MSG(c->kind == 0 || not_saturated(&d), "%s: saturated (%lld of %lld inside)",
                      c->name, (long long)d.n_inside, (long long)d.n);
        }
        for (int i = 0; i < n_out; i++)
            CHECK(abs(got[0][i] - got[1][i]) <= 1);
    }
    /* averaging ties: (1 + 2) / 2 = 1.5 at scale 1 -> 2 (fp32: half even) */
    qf_ref_pool_params g = {.batch = 1,
                            .channels = 1,
                            .in_h = 1,
                            .in_w = 2,
                            .in_scale = 1,
                            .out_scale = 1,
                            .act_min = -128,
                            .act_max = 127};
    int8_t gx[2] = {1, 2}, gy;
    CHECK_OK(qf_ref_global_avgpool_s8(&g, gx, &gy, NULL));
    CHECK_EQ_INT(gy, 2);
    gx[0] = 3;
    gx[1] = 2; /* 2.5 -> 2 in fp32 (even), 3 in fixed (away from zero) */
    CHECK_OK(qf_ref_global_avgpool_s8(&g, gx, &gy, NULL));
    CHECK_EQ_INT(gy, 2);
    g.mode = QF_RQ_FIXED;
    CHECK_OK(qf_ref_global_avgpool_s8(&g, gx, &gy, NULL));
    CHECK_EQ_INT(gy, 3);
}

/* ======================================================================== */
/* Concat                                                                   */
/* ======================================================================== */

static void test_concat_vs_float(void) {
    rng_seed(19);
    /* axis 1 of [2, c_i, 3, 4]: outer 2, inner 12 */
    const int outer = 2, inner = 12;
    const int dims[3] = {2, 1, 3};
    const float scales[3] = {0.05f, 0.05f, 0.011f};
    const int zps[3] = {-4, 9, 127};
    const float so = 0.05f;
    const int zo = -4; /* input 0 has the output's parameters: copied */
    int8_t in[3][3 * 12 * 2];
    qf_ref_concat_input ins[3];
    for (int i = 0; i < 3; i++) {
        for (int e = 0; e < outer * dims[i] * inner; e++)
            in[i][e] = (int8_t)rng_range(-128, 127);
        ins[i] = (qf_ref_concat_input){in[i], dims[i], scales[i], zps[i]};
    }
    const int total_axis = 6, n_out = outer * total_axis * inner;
    int8_t got[2][2 * 6 * 12];
    for (int mode = 0; mode < 2; mode++) {
        qf_ref_concat_params p = {.n_inputs = 3,
                                  .inputs = ins,
                                  .outer = outer,
                                  .inner = inner,
                                  .out_scale = so,
                                  .out_zp = zo,
                                  .mode = (qf_ref_rq_mode)mode};
        int8_t *o = guarded_alloc((size_t)n_out);
        CHECK_OK(qf_ref_concat_s8(&p, o, NULL));
        CHECK(guard_intact(o, (size_t)n_out));
        memcpy(got[mode], o, (size_t)n_out);
        guarded_free(o);
        diffstat d = {0};
        for (int ob = 0; ob < outer; ob++) {
            int at = 0;
            for (int i = 0; i < 3; i++) {
                for (int e = 0; e < dims[i] * inner; e++) {
                    int8_t q = in[i][ob * dims[i] * inner + e];
                    int32_t g = got[mode][ob * total_axis * inner + at + e];
                    if (i == 0) CHECK_EQ_INT(g, q); /* identical parameters: exact copy */
                    qf_ref_rescale r;
                    CHECK_OK(qf_ref_rescale_init((double)scales[i] / so, &r));
                    const double yv = (double)scales[i] * (q - zps[i]);
                    diff_ref(&d, g, yv, so, zo, -128, 127, tie_tol(mode, r.shift, yv / so));
                }
                at += dims[i] * inner;
            }
        }
        CHECK_MSG(diff_ok(&d), "concat mode %d: max diff %d, %lld differ (%lld bad)", mode,
                  (int)d.max_diff, (long long)d.n_diff, (long long)d.n_bad);
        CHECK(not_saturated(&d));
    }
    for (int i = 0; i < n_out; i++)
        CHECK(abs(got[0][i] - got[1][i]) <= 1);
    /* an empty input is fine; a bad scale is not */
    qf_ref_concat_input e2[2] = {{in[0], 2, so, zo}, {NULL, 0, 1.0f, 0}};
    qf_ref_concat_params pe = {
        .n_inputs = 2, .inputs = e2, .outer = outer, .inner = inner, .out_scale = so, .out_zp = zo};
    int8_t oe[2 * 2 * 12];
    CHECK_OK(qf_ref_concat_s8(&pe, oe, NULL));
    CHECK(memcmp(oe, in[0], sizeof oe) == 0);
    e2[1].scale = 0.0f;
    CHECK(qf_ref_concat_s8(&pe, oe, NULL) == QF_ERR_INVALID_ARG);
}

/* ======================================================================== */
/* Resize                                                                   */
/* ======================================================================== */

/* ONNX Resize coordinate transform, written from the operator spec. */
static double onnx_coord(qf_ref_resize_coord m, int o, int in, int out, double scale) {
    if (scale <= 0) scale = (double)out / in;
    switch (m) {
    case QF_COORD_HALF_PIXEL: return (o + 0.5) / scale - 0.5;
    case QF_COORD_PYTORCH_HALF_PIXEL: return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    case QF_COORD_ALIGN_CORNERS: return out == 1 ? 0.0 : o * (in - 1.0) / (out - 1.0);
    default: return o / scale;
    }
}

static int onnx_nearest(qf_ref_resize_nearest nm, double x, int in) {
    double r;
    double f = floor(x);
    if (nm == QF_NEAREST_FLOOR)
        r = f;
    else if (nm == QF_NEAREST_CEIL)
        r = ceil(x);
    else if (x - f == 0.5)
        r = nm == QF_NEAREST_ROUND_PREFER_FLOOR ? f : f + 1;
    else
        r = floor(x + 0.5);
    if (r < 0) r = 0;
    if (r > in - 1) r = in - 1;
    return (int)r;
}

typedef struct resize_case {
    const char *name;
    int h, w, oh, ow;
    double scale_h, scale_w;
    qf_ref_resize_mode mode;
    qf_ref_resize_coord coord;
    qf_ref_resize_nearest nearest;
} resize_case;

static const resize_case resize_cases[] = {
    /* clang-format off */
    {"nearest 2x asym floor", 3, 4, 6, 8, 0, 0, QF_RESIZE_NEAREST, QF_COORD_ASYMMETRIC,
     QF_NEAREST_FLOOR},
    {"nearest half_pixel prefer floor", 3, 5, 7, 4, 0, 0, QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL,
     QF_NEAREST_ROUND_PREFER_FLOOR},
    {"nearest prefer ceil", 4, 4, 6, 6, 0, 0, QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL,
     QF_NEAREST_ROUND_PREFER_CEIL},
    /* coordinates exactly on .5 - o / 2 (asymmetric up) and 2o + 0.5
     * (half_pixel down) - where prefer_floor and prefer_ceil disagree */
    {"nearest asym ties prefer floor", 3, 3, 6, 6, 0, 0, QF_RESIZE_NEAREST, QF_COORD_ASYMMETRIC,
     QF_NEAREST_ROUND_PREFER_FLOOR},
    {"nearest asym ties prefer ceil", 3, 3, 6, 6, 0, 0, QF_RESIZE_NEAREST, QF_COORD_ASYMMETRIC,
     QF_NEAREST_ROUND_PREFER_CEIL},
    {"nearest half_pixel down ties", 8, 8, 4, 4, 0, 0, QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL,
     QF_NEAREST_ROUND_PREFER_FLOOR},
    {"nearest ceil align", 5, 3, 3, 7, 0, 0, QF_RESIZE_NEAREST, QF_COORD_ALIGN_CORNERS,
     QF_NEAREST_CEIL},
    {"nearest 1x1", 1, 1, 3, 2, 0, 0, QF_RESIZE_NEAREST, QF_COORD_HALF_PIXEL,
     QF_NEAREST_ROUND_PREFER_FLOOR},
    {"linear 2x half_pixel", 3, 4, 6, 8, 0, 0, QF_RESIZE_LINEAR, QF_COORD_HALF_PIXEL, 0},
    {"linear odd half_pixel", 3, 5, 7, 4, 0, 0, QF_RESIZE_LINEAR, QF_COORD_HALF_PIXEL, 0},
    {"linear align corners", 4, 3, 7, 5, 0, 0, QF_RESIZE_LINEAR, QF_COORD_ALIGN_CORNERS, 0},
    {"linear asymmetric scales", 4, 4, 6, 10, 1.5, 2.5, QF_RESIZE_LINEAR, QF_COORD_ASYMMETRIC, 0},
    {"linear pytorch to 1", 4, 5, 1, 3, 0, 0, QF_RESIZE_LINEAR, QF_COORD_PYTORCH_HALF_PIXEL, 0},
    {"linear downsample", 8, 9, 3, 4, 0, 0, QF_RESIZE_LINEAR, QF_COORD_HALF_PIXEL, 0},
    /* clang-format on */
};

static void test_resize_vs_float(void) {
    rng_seed(23);
    const float s = 0.07f;
    const int z = -11, batch = 2, ch = 3;
    for (size_t ci = 0; ci < sizeof resize_cases / sizeof resize_cases[0]; ci++) {
        const resize_case *c = &resize_cases[ci];
        int8_t x[2 * 3 * 72];
        const int n_in = batch * ch * c->h * c->w, n_out = batch * ch * c->oh * c->ow;
        for (int i = 0; i < n_in; i++)
            x[i] = (int8_t)rng_range(-128, 127);
        qf_ref_resize_params p = {.batch = batch,
                                  .channels = ch,
                                  .in_h = c->h,
                                  .in_w = c->w,
                                  .out_h = c->oh,
                                  .out_w = c->ow,
                                  .scale_h = c->scale_h,
                                  .scale_w = c->scale_w,
                                  .mode = c->mode,
                                  .coord = c->coord,
                                  .nearest = c->nearest};
        int8_t *o = guarded_alloc((size_t)n_out);
        CHECK_MSG(qf_ref_resize_s8(&p, x, o, NULL) == QF_OK, "%s", c->name);
        CHECK(guard_intact(o, (size_t)n_out));
        diffstat d = {0};
        for (int pl = 0; pl < batch * ch; pl++)
            for (int oy = 0; oy < c->oh; oy++)
                for (int ox = 0; ox < c->ow; ox++) {
                    const int8_t *src = x + pl * c->h * c->w;
                    double yo = onnx_coord(c->coord, oy, c->h, c->oh, c->scale_h);
                    double xo = onnx_coord(c->coord, ox, c->w, c->ow, c->scale_w);
                    const int32_t g = o[(pl * c->oh + oy) * c->ow + ox];
                    if (c->mode == QF_RESIZE_NEAREST) {
                        diff_add(&d, g,
                                 src[onnx_nearest(c->nearest, yo, c->h) * c->w +
                                     onnx_nearest(c->nearest, xo, c->w)]);
                    } else {
                        /* ONNX linear: taps floor/floor+1 with edge padding */
                        int y0 = (int)floor(yo), x0 = (int)floor(xo);
                        double fy = yo - y0, fx = xo - x0;
                        int ys[2] = {y0, y0 + 1}, xs[2] = {x0, x0 + 1};
                        double wy[2] = {1 - fy, fy}, wx[2] = {1 - fx, fx};
                        double acc = 0;
                        for (int a = 0; a < 2; a++)
                            for (int b = 0; b < 2; b++) {
                                int yy = ys[a] < 0 ? 0 : (ys[a] >= c->h ? c->h - 1 : ys[a]);
                                int xx = xs[b] < 0 ? 0 : (xs[b] >= c->w ? c->w - 1 : xs[b]);
                                acc += wy[a] * wx[b] * ((double)s * (src[yy * c->w + xx] - z));
                            }
                        diff_ref(&d, g, acc, s, z, -128, 127, 0.13);
                    }
                }
        if (c->mode == QF_RESIZE_NEAREST)
            CHECK_MSG(d.max_diff == 0, "%s: nearest must be exact", c->name);
        CHECK_MSG(diff_ok(&d), "%s: max diff %d, %lld differ (%lld bad)", c->name, (int)d.max_diff,
                  (long long)d.n_diff, (long long)d.n_bad);
        CHECK(c->mode == QF_RESIZE_NEAREST || not_saturated(&d));
        guarded_free(o);
    }
    /* hand-checked linear: [0, 10] upsampled 2x half_pixel -> 0, 2.5, 7.5, 10
     * -> q 0, 3 (2.5 rounds half up), 8 (7.5 half up), 10 */
    int8_t hx[2] = {0, 10}, hy[4];
    qf_ref_resize_params hp = {.batch = 1,
                               .channels = 1,
                               .in_h = 1,
                               .in_w = 2,
                               .out_h = 1,
                               .out_w = 4,
                               .mode = QF_RESIZE_LINEAR};
    CHECK_OK(qf_ref_resize_s8(&hp, hx, hy, NULL));
    CHECK(hy[0] == 0 && hy[1] == 3 && hy[2] == 8 && hy[3] == 10);
    /* exact Q11 taps (hand-computed): w1 = floor(frac * 2048 + 0.5) */
    static const struct {
        qf_ref_resize_coord coord;
        int o, in, out, i0, i1, w1;
    } taps[] = {{QF_COORD_HALF_PIXEL, 1, 3, 7, 0, 1, 293},    /* frac*2048 = 292.57 */
                {QF_COORD_HALF_PIXEL, 2, 3, 7, 0, 1, 1170},   /* 1170.29 */
                {QF_COORD_HALF_PIXEL, 6, 3, 7, 2, 2, 0},      /* clamped to in - 1 */
                {QF_COORD_HALF_PIXEL, 0, 3, 7, 0, 1, 0},      /* -0.286 clamped to 0 */
                {QF_COORD_HALF_PIXEL, 1, 5, 2, 3, 4, 512},    /* 3.25 */
                {QF_COORD_ALIGN_CORNERS, 1, 3, 7, 0, 1, 683}, /* 682.67 */
                {QF_COORD_ALIGN_CORNERS, 5, 3, 7, 1, 2, 1365},
                {QF_COORD_ASYMMETRIC, 3, 4, 8, 1, 2, 1024}};
    for (size_t i = 0; i < sizeof taps / sizeof taps[0]; i++) {
        int32_t i0, i1, w1;
        qf_ref_resize_linear_taps(taps[i].coord, taps[i].o, taps[i].in, taps[i].out, 0, &i0, &i1,
                                  &w1);
        CHECK_MSG(i0 == taps[i].i0 && i1 == taps[i].i1 && w1 == taps[i].w1, "tap %d: (%d, %d, %d)",
                  (int)i, (int)i0, (int)i1, (int)w1);
    }
    hp.mode = (qf_ref_resize_mode)7;
    CHECK(qf_ref_resize_s8(&hp, hx, hy, NULL) == QF_ERR_UNSUPPORTED);
}

/* ======================================================================== */
/* Pad                                                                      */
/* ======================================================================== */

static int64_t ref_reflect(int64_t i, int64_t n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n)
        i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

static void test_pad(void) {
    /* hand-checked 1-D: [1, 2, 3] with pads 2, 2 */
    const int8_t v[3] = {1, 2, 3};
    static const int8_t want_reflect[7] = {3, 2, 1, 2, 3, 2, 1};
    static const int8_t want_edge[7] = {1, 1, 1, 2, 3, 3, 3};
    static const int8_t want_const[7] = {-5, -5, 1, 2, 3, -5, -5};
    const int8_t *wants[3] = {want_const, want_edge, want_reflect};
    for (int mode = 0; mode < 3; mode++) {
        qf_ref_pad_params p = {.rank = 1,
                               .in_dims = {3},
                               .pad_begin = {2},
                               .pad_end = {2},
                               .mode = (qf_ref_pad_mode)mode,
                               .value = -5};
        int8_t o[7];
        CHECK_OK(qf_ref_pad_s8(&p, v, o, NULL));
        CHECK_MSG(memcmp(o, wants[mode], 7) == 0, "mode %d", mode);
    }
    /* reflect wider than the axis: [1, 2] pads 3, 3 -> 2 1 2 | 1 2 | 1 2 1 */
    qf_ref_pad_params pw = {
        .rank = 1, .in_dims = {2}, .pad_begin = {3}, .pad_end = {3}, .mode = QF_PAD_REFLECT};
    int8_t ow[8];
    static const int8_t want_wide[8] = {2, 1, 2, 1, 2, 1, 2, 1};
    CHECK_OK(qf_ref_pad_s8(&pw, v, ow, NULL));
    CHECK(memcmp(ow, want_wide, 8) == 0);
    /* negative pads crop */
    qf_ref_pad_params pc = {.rank = 1,
                            .in_dims = {3},
                            .pad_begin = {-1},
                            .pad_end = {1},
                            .mode = QF_PAD_CONSTANT,
                            .value = 0};
    int8_t oc[3];
    CHECK_OK(qf_ref_pad_s8(&pc, v, oc, NULL));
    CHECK(oc[0] == 2 && oc[1] == 3 && oc[2] == 0);
    /* random 4-D NCHW pads vs an independent index mapping */
    rng_seed(29);
    for (int mode = 0; mode < 3; mode++) {
        const int64_t in_d[4] = {2, 3, 4, 5}, b[4] = {0, 1, 2, 3}, e[4] = {1, 0, 3, 2};
        qf_ref_pad_params p = {.rank = 4, .mode = (qf_ref_pad_mode)mode, .value = -128};
        int64_t od[4], n_in = 1, n_out = 1;
        for (int i = 0; i < 4; i++) {
            p.in_dims[i] = in_d[i];
            p.pad_begin[i] = b[i];
            p.pad_end[i] = e[i];
            od[i] = in_d[i] + b[i] + e[i];
            n_in *= in_d[i];
            n_out *= od[i];
        }
        int8_t x[120];
        for (int i = 0; i < n_in; i++)
            x[i] = (int8_t)rng_range(-128, 127);
        int8_t *o = guarded_alloc((size_t)n_out);
        CHECK_OK(qf_ref_pad_s8(&p, x, o, NULL));
        CHECK(guard_intact(o, (size_t)n_out));
        for (int64_t i = 0; i < n_out; i++) {
            int64_t rem = i, idx[4], src = 0;
            int constant = 0;
            for (int k = 3; k >= 0; k--) {
                idx[k] = rem % od[k] - b[k];
                rem /= od[k];
            }
            for (int k = 0; k < 4; k++) {
                int64_t s = idx[k];
                if (s < 0 || s >= in_d[k]) {
                    if (mode == QF_PAD_CONSTANT)
                        constant = 1;
                    else if (mode == QF_PAD_EDGE)
                        s = s < 0 ? 0 : in_d[k] - 1;
                    else
                        s = ref_reflect(s, in_d[k]);
                }
                src = src * in_d[k] + s;
            }
            int32_t want = constant ? -128 : x[src];
            CHECK_MSG(o[i] == want, "mode %d element %lld", mode, (long long)i);
        }
        guarded_free(o);
    }
}

/* ======================================================================== */
/* Lookup table                                                             */
/* ======================================================================== */

static float f_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static float f_tanh(float x) { return tanhf(x); }
static float f_nan(float x) { return x > 0 ? NAN : x; }

static void test_lut(void) {
    static const struct {
        float (*f)(float);
        double (*ref)(double);
        float si, so;
        int zi, zo;
    } t[] = {{f_sigmoid, NULL, 0.08f, 1.0f / 256, -3, -128},
             {f_tanh, tanh, 0.03f, 1.0f / 128, 10, 0},
             {f_tanh, tanh, 0.5f, 0.01f, -128, 5}};
    for (size_t c = 0; c < sizeof t / sizeof t[0]; c++) {
        int8_t table[256];
        CHECK_OK(qf_ref_lut_build(t[c].f, t[c].si, t[c].zi, t[c].so, t[c].zo, table));
        int8_t in[256], out[256];
        for (int i = 0; i < 256; i++)
            in[i] = (int8_t)(i - 128);
        qf_ref_lut_apply(table, in, out, 256);
        diffstat d = {0};
        for (int i = 0; i < 256; i++) {
            double xv = (double)t[c].si * (in[i] - t[c].zi);
            double yv = t[c].ref ? t[c].ref(xv) : 1.0 / (1.0 + exp(-xv));
            diff_ref(&d, out[i], yv, t[c].so, t[c].zo, -128, 127,
                     tie_tol(QF_RQ_FP32, 0, yv / t[c].so));
            CHECK_EQ_INT(out[i], table[i]); /* index = q + 128 */
        }
        CHECK_MSG(diff_ok(&d), "lut %d: max diff %d, %lld differ", (int)c, (int)d.max_diff,
                  (long long)d.n_diff);
        CHECK(not_saturated(&d));
        qf_ref_lut_apply(table, in, in, 256); /* in place */
        CHECK(memcmp(in, out, 256) == 0);
    }
    int8_t table[256];
    CHECK_OK(qf_ref_lut_build(f_nan, 1.0f, 0, 1.0f, 7, table));
    CHECK_EQ_INT(table[128 + 1], 7); /* NaN -> out_zp */
    CHECK_EQ_INT(table[128 - 1], 6); /* -1 -> -1 + 7 */
    CHECK_EQ_INT(table[0], -121);    /* -128 + 7 */
    CHECK(qf_ref_lut_build(NULL, 1.0f, 0, 1.0f, 0, table) == QF_ERR_INVALID_ARG);
    CHECK(qf_ref_lut_build(f_tanh, -1.0f, 0, 1.0f, 0, table) == QF_ERR_INVALID_ARG);
}

/* ======================================================================== */
/* Bit-exactness lock                                                       */
/* ======================================================================== */

/* CRC32C of the outputs of a fixed set of kernel runs in both modes. The
 * integer results are specified bit for bit, so this value must not change
 * with the compiler, optimization level, -ffp-contract or -march (it was
 * checked with gcc -O0/-O2/-O3 -march=native -ffp-contract=fast and clang).
 * A deliberate change of the reference numerics must update it - and every
 * optimized kernel with it. */
#define GOLDEN_CRC 0x000251ebu

static void test_golden_checksum(void) {
    rng_seed(99);
    uint32_t crc = 0;
    int8_t x[2 * 6 * 9 * 9], y[2 * 6 * 9 * 9];
    for (size_t i = 0; i < sizeof x; i++)
        x[i] = (int8_t)rng_range(-128, 127);
    int8_t w[6 * 27];
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (int8_t)rng_range(-7, 7);
    int32_t bias[6];
    float ws[6];
    for (int i = 0; i < 6; i++) {
        bias[i] = rng_range(-3000, 3000);
        ws[i] = (float)(0.01 + 0.02 * rng_unit());
    }
    qf_ref_rescale mult[6];
    CHECK_OK(qf_ref_rescale_channels(0.037f, ws, 6, 0.021f, mult, NULL));
    uint8_t wp[6 * 14];
    CHECK_OK(qf_ref_pack_weights(w, 6, 27, 4, wp, NULL));
    for (int mode = 0; mode < 2; mode++) {
        const qf_ref_rq_mode m = (qf_ref_rq_mode)mode;
        qf_ref_conv_params cp = {
            .batch = 2,
            .in_c = 3,
            .in_h = 9,
            .in_w = 9,
            .out_c = 6,
            .out_h = 5,
            .out_w = 5,
            .k_h = 3,
            .k_w = 3,
            .stride_h = 2,
            .stride_w = 2,
            .dil_h = 1,
            .dil_w = 1,
            .pad_top = 1,
            .pad_left = 1,
            .pad_bottom = 1,
            .pad_right = 1,
            .groups = 1,
            .in_zp = -9,
            .w_bits = 4,
            .rq = {
                .mode = m, .mult = mult, .n_mult = 6, .out_zp = 3, .act_min = 3, .act_max = 127}};
        CHECK_OK(qf_ref_conv2d_s8(&cp, x, wp, bias, y, NULL));
        crc = qf_crc32c(crc, y, 2 * 6 * 25);
        qf_ref_eltwise_params ep = {.rank = 2,
                                    .out_dims = {6, 81},
                                    .a_dims = {6, 81},
                                    .b_dims = {6, 1},
                                    .a_scale = 0.03f,
                                    .b_scale = 0.011f,
                                    .out_scale = 0.041f,
                                    .a_zp = 5,
                                    .b_zp = -17,
                                    .out_zp = -2,
                                    .act_min = -128,
                                    .act_max = 127,
                                    .mode = m};
        CHECK_OK(qf_ref_add_s8(&ep, x, x + 500, y, NULL));
        crc = qf_crc32c(crc, y, 6 * 81);
        ep.out_scale = 0.0029f;
        CHECK_OK(qf_ref_mul_s8(&ep, x, x + 500, y, NULL));
        crc = qf_crc32c(crc, y, 6 * 81);
        qf_ref_pool_params pp = {.batch = 2,
                                 .channels = 6,
                                 .in_h = 9,
                                 .in_w = 9,
                                 .out_h = 5,
                                 .out_w = 5,
                                 .k_h = 3,
                                 .k_w = 3,
                                 .stride_h = 2,
                                 .stride_w = 2,
                                 .dil_h = 1,
                                 .dil_w = 1,
                                 .pad_top = 1,
                                 .pad_left = 1,
                                 .pad_bottom = 1,
                                 .pad_right = 1,
                                 .in_scale = 0.05f,
                                 .out_scale = 0.031f,
                                 .in_zp = 1,
                                 .out_zp = -1,
                                 .act_min = -128,
                                 .act_max = 127,
                                 .mode = m};
        CHECK_OK(qf_ref_avgpool_s8(&pp, x, y, NULL));
        crc = qf_crc32c(crc, y, 2 * 6 * 25);
        qf_ref_concat_input ci[2] = {{x, 3, 0.02f, 4}, {x + 300, 2, 0.07f, -30}};
        qf_ref_concat_params cc = {.n_inputs = 2,
                                   .inputs = ci,
                                   .outer = 4,
                                   .inner = 25,
                                   .out_scale = 0.05f,
                                   .out_zp = 0,
                                   .mode = m};
        CHECK_OK(qf_ref_concat_s8(&cc, y, NULL));
        crc = qf_crc32c(crc, y, 4 * 5 * 25);
    }
    qf_ref_resize_params rp = {.batch = 1,
                               .channels = 2,
                               .in_h = 5,
                               .in_w = 7,
                               .out_h = 9,
                               .out_w = 4,
                               .mode = QF_RESIZE_LINEAR};
    CHECK_OK(qf_ref_resize_s8(&rp, x, y, NULL));
    crc = qf_crc32c(crc, y, 2 * 9 * 4);
    int8_t table[256];
    CHECK_OK(qf_ref_lut_build(f_tanh, 0.04f, 3, 1.0f / 128, 0, table));
    crc = qf_crc32c(crc, table, 256);
    if (getenv("QK_PRINT_GOLDEN")) fprintf(stderr, "golden crc 0x%08x\n", (unsigned)crc);
    CHECK_MSG(crc == GOLDEN_CRC, "crc 0x%08x, want 0x%08x", (unsigned)crc, (unsigned)GOLDEN_CRC);
}

QT_MAIN(QT_CASE(test_weight_zero_points), QT_CASE(test_round_half_even), QT_CASE(test_quantize_roundtrip),
        QT_CASE(test_quantize_multiplier), QT_CASE(test_gemmlowp_edges),
        QT_CASE(test_fixed_requant_vs_exact), QT_CASE(test_fp32_requant_vs_exact),
        QT_CASE(test_rescale_q), QT_CASE(test_pack_layout), QT_CASE(test_conv_vs_float),
        QT_CASE(test_conv_bad_params), QT_CASE(test_gemm_vs_float), QT_CASE(test_gemm_accum_wraps),
        QT_CASE(test_matmul_vs_float), QT_CASE(test_add_mul_vs_float), QT_CASE(test_pool_vs_float),
        QT_CASE(test_concat_vs_float), QT_CASE(test_resize_vs_float), QT_CASE(test_pad),
        QT_CASE(test_lut), QT_CASE(test_golden_checksum))
