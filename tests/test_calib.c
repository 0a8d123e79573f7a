/* test_calib.c - calibration observers and calibrators (src/quant/calib.h)
 * against independent references computed here or by a separate program:
 *  - running / moving-average min/max and per-channel min/max: naive loops;
 *  - histogram growth: exact count totals, bin counts vs binning all samples
 *    directly at the final width, percentiles vs a one-shot histogram;
 *  - percentile: exact order statistics of the sorted samples;
 *  - entropy: tests/fixtures/kl_reference.py, a direct numpy implementation
 *    of the same algorithm (run with /usr/bin/python3 at test time);
 *  - mse: a dense brute-force search over clip values that quantizes the
 *    samples themselves (not the histogram);
 *  - qparams: hand-computed scales / zero points and a quantizer written here;
 *  - weight scales: naive per-channel max and brute-force MSE.
 * Bounds: histogram results within one bin width w of the exact value
 * (interpolation stays inside the bin of the target order statistic);
 * entropy within one bin of the reference; MSE within 1% of brute force. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qtest.h"
#include "quant/calib.h"

/* ---- deterministic random numbers ---------------------------------------- */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; }
static uint64_t rng_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_unit(void) { /* (0, 1) */
    return ((double)(rng_u64() >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_gauss(void) {
    return sqrt(-2.0 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
}
static double rng_laplace(void) {
    double u = rng_unit() - 0.5;
    return u < 0 ? log(1 + 2 * u) : -log(1 - 2 * u);
}

typedef enum dist { D_GAUSS, D_LAPLACE, D_RELU, D_SKEW } dist;

static void fill(float *x, size_t n, dist d, double scale) {
    for (size_t i = 0; i < n; i++) {
        double v;
        switch (d) {
        case D_GAUSS: v = rng_gauss(); break;
        case D_LAPLACE: v = rng_laplace(); break;
        case D_RELU: v = fmax(rng_gauss(), 0.0); break;
        default: v = -0.3 + rng_laplace() * (rng_unit() < 0.8 ? 0.2 : 1.0); break;
        }
        x[i] = (float)(v * scale);
    }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static qf_observer *make_obs(const qf_observer_opts *o) {
    qf_observer *obs = NULL;
    qf_err e;
    if (qf_observer_create(o, "t", &obs, &e) != QF_OK) fprintf(stderr, "%s\n", e.msg);
    return obs;
}

/* ---- running and moving-average min/max ----------------------------------- */

static void minmax_moving_average(void) {
    static const struct {
        double momentum; /* 0: the default 0.01 */
        double c;        /* expected constant */
    } cases[] = {{0, 0.01}, {0.25, 0.25}, {1.0, 1.0}};
    static const double batch_scale[] = {1.0, 3.0, 0.5, 2.0, 0.1, 5.0, 1.5};
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        rng_seed(11 + ci);
        qf_observer_opts oo = {.momentum = cases[ci].momentum};
        qf_observer *o = make_obs(&oo);
        CHECK(o);
        double mn = INFINITY, mx = -INFINITY, ma_mn = 0, ma_mx = 0;
        float x[257];
        for (size_t b = 0; b < QF_ARRAY_LEN(batch_scale); b++) {
            size_t n = 100 + 20 * b;
            fill(x, n, D_GAUSS, batch_scale[b]);
            for (size_t i = 0; i < n; i++)
                x[i] += (float)(0.3 * b);
            double bmn = INFINITY, bmx = -INFINITY;
            for (size_t i = 0; i < n; i++) {
                bmn = fmin(bmn, x[i]);
                bmx = fmax(bmx, x[i]);
            }
            mn = fmin(mn, bmn);
            mx = fmax(mx, bmx);
            if (b == 0) {
                ma_mn = bmn;
                ma_mx = bmx;
            } else {
                ma_mn = ma_mn + cases[ci].c * (bmn - ma_mn);
                ma_mx = ma_mx + cases[ci].c * (bmx - ma_mx);
            }
            qf_err e;
            CHECK_MSG(qf_observer_observe(o, x, n, &e) == QF_OK, "%s", e.msg);
            CHECK_OK(qf_observer_observe(o, x, 0, NULL)); /* empty batch: no-op */
        }
        qf_observer_stats st;
        qf_observer_get_stats(o, &st);
        CHECK_EQ_INT(st.batches, QF_ARRAY_LEN(batch_scale));
        CHECK(st.min == mn && st.max == mx);
        CHECK_NEAR(st.ma_min, ma_mn, 1e-12);
        CHECK_NEAR(st.ma_max, ma_mx, 1e-12);
        float lo, hi;
        qf_calib_opts co = {.method = QF_CALIB_MINMAX};
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        CHECK(lo == (float)mn && hi == (float)mx);
        co.moving_average = true;
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        CHECK(lo == (float)ma_mn && hi == (float)ma_mx);
        co.symmetric = true;
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        CHECK(hi == (float)fmax(fabs(ma_mn), fabs(ma_mx)) && lo == -hi);
        co.moving_average = false;
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        CHECK(hi == (float)fmax(fabs(mn), fabs(mx)) && lo == -hi);
        qf_observer_reset(o);
        qf_observer_get_stats(o, &st);
        CHECK(st.count == 0 && st.batches == 0);
        CHECK_EQ_INT(qf_calib_range(o, &co, &lo, &hi, NULL), QF_ERR_INVALID_ARG);
        qf_observer_free(o);
    }
}

/* ---- per-channel min/max ---------------------------------------------------- */

static void per_channel_minmax(void) {
    static const struct {
        int rank;
        int64_t dims[4];
        int axis;
    } cases[] = {{4, {3, 4, 2, 5}, 1}, {4, {6, 2, 3, 3}, 0}, {2, {7, 9}, 1}, {3, {2, 3, 4}, 2}};
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        rng_seed(100 + ci);
        qf_observer_opts oo = {.per_channel = true, .axis = cases[ci].axis};
        qf_observer *o = make_obs(&oo);
        CHECK(o);
        qf_tensor t = {.dtype = QF_DT_F32, .rank = cases[ci].rank};
        size_t n = 1, inner = 1;
        for (int d = 0; d < t.rank; d++) {
            t.dims[d] = cases[ci].dims[d];
            n *= (size_t)t.dims[d];
            if (d > cases[ci].axis) inner *= (size_t)t.dims[d];
        }
        size_t C = (size_t)t.dims[cases[ci].axis];
        float x[256], emn[16], emx[16];
        for (size_t c = 0; c < C; c++) {
            emn[c] = INFINITY;
            emx[c] = -INFINITY;
        }
        t.data = x;
        for (int b = 0; b < 3; b++) {
            fill(x, n, D_LAPLACE, 1.0 + b);
            /* reference: walk every element and derive its channel index */
            for (size_t i = 0; i < n; i++) {
                size_t c = (i / inner) % C;
                emn[c] = fminf(emn[c], x[i]);
                emx[c] = fmaxf(emx[c], x[i]);
            }
            qf_err e;
            CHECK_MSG(qf_observer_observe_tensor(o, &t, &e) == QF_OK, "%s", e.msg);
        }
        int64_t nc;
        const float *mn, *mx;
        CHECK_OK(qf_observer_get_channels(o, &nc, &mn, &mx, NULL));
        CHECK_EQ_INT(nc, C);
        for (size_t c = 0; c < C; c++)
            CHECK(mn[c] == emn[c] && mx[c] == emx[c]);
        /* per-tensor stats come along */
        qf_observer_stats st;
        qf_observer_get_stats(o, &st);
        CHECK_EQ_INT(st.count, 3 * n);
        /* a different channel count is a shape error; plain observe refused */
        t.dims[cases[ci].axis] += 1;
        CHECK_EQ_INT(qf_observer_observe_tensor(o, &t, NULL), QF_ERR_SHAPE);
        CHECK_EQ_INT(qf_observer_observe(o, x, n, NULL), QF_ERR_INVALID_ARG);
        qf_observer_free(o);
    }
}

/* ---- argument and data errors ----------------------------------------------- */

static void observer_errors(void) {
    qf_observer *o = NULL;
    qf_err e;
    qf_observer_opts bad_bins = {.hist_bins = 8};
    CHECK_EQ_INT(qf_observer_create(&bad_bins, "x", &o, &e), QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "hist_bins"));
    qf_observer_opts bad_mom = {.momentum = 1.5};
    CHECK_EQ_INT(qf_observer_create(&bad_mom, "x", &o, NULL), QF_ERR_INVALID_ARG);
    qf_observer_free(NULL);

    o = make_obs(NULL);
    CHECK(o);
    float lo, hi;
    CHECK_EQ_INT(qf_calib_percentile(o, NULL, &lo, &hi, &e), QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "no data"));
    float good[4] = {1, -2, 3, 0.5f};
    CHECK_OK(qf_observer_observe(o, good, 4, NULL));
    float bad[4] = {1, NAN, 3, 0};
    CHECK_EQ_INT(qf_observer_observe(o, bad, 4, &e), QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "'t'") && strstr(e.msg, "non-finite"));
    bad[1] = INFINITY;
    CHECK_EQ_INT(qf_observer_observe(o, bad, 4, NULL), QF_ERR_INVALID_ARG);
    qf_observer_stats st;
    qf_observer_get_stats(o, &st); /* unchanged by the failed batches */
    CHECK(st.count == 4 && st.batches == 1 && st.min == -2 && st.max == 3);
    qf_hist h;
    CHECK_OK(qf_observer_get_hist(o, &h, NULL));
    CHECK_EQ_INT(h.total, 4);

    static const qf_calib_opts bad_opts[] = {
        {.method = QF_CALIB_MINMAX, .bits = 1},
        {.method = QF_CALIB_MINMAX, .bits = 17},
        {.method = QF_CALIB_PERCENTILE, .percentile = 30},
        {.method = QF_CALIB_PERCENTILE, .percentile = 100.5},
        {.method = QF_CALIB_MSE, .mse_grid = 4},
        {.method = (qf_calib_method)9},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(bad_opts); i++)
        CHECK_EQ_INT(qf_calib_range(o, &bad_opts[i], &lo, &hi, NULL), QF_ERR_INVALID_ARG);
    qf_observer_free(o);

    qf_observer_opts nohist = {.no_histogram = true};
    o = make_obs(&nohist);
    CHECK(o);
    CHECK_OK(qf_observer_observe(o, good, 4, NULL));
    CHECK_OK(qf_calib_minmax(o, NULL, &lo, &hi, NULL));
    CHECK(lo == -2 && hi == 3);
    qf_calib_method hist_methods[] = {QF_CALIB_PERCENTILE, QF_CALIB_ENTROPY, QF_CALIB_MSE};
    for (size_t i = 0; i < 3; i++) {
        qf_calib_opts co = {.method = hist_methods[i]};
        CHECK_EQ_INT(qf_calib_range(o, &co, &lo, &hi, &e), QF_ERR_INVALID_ARG);
        CHECK_MSG(strstr(e.msg, "without a histogram"), "%s", e.msg);
    }
    qf_observer_free(o);
}

/* ---- all-zero data ----------------------------------------------------------- */

static void all_zero_data(void) {
    qf_observer *o = make_obs(NULL);
    CHECK(o);
    float z[64] = {0};
    z[3] = -0.0f;
    CHECK_OK(qf_observer_observe(o, z, 64, NULL));
    for (int m = 0; m <= QF_CALIB_MSE; m++) {
        for (int sym = 0; sym < 2; sym++) {
            qf_calib_opts co = {.method = (qf_calib_method)m, .symmetric = sym};
            float lo = 1, hi = 1;
            CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
            CHECK_MSG(lo == 0 && hi == 0, "%s sym %d: %g %g", qf_calib_method_name(m), sym, lo, hi);
        }
    }
    /* zeros seen before the first non-zero batch stay in the bin of 0 */
    float x[4] = {1, 2, -4, 3};
    CHECK_OK(qf_observer_observe(o, x, 4, NULL));
    qf_hist h;
    CHECK_OK(qf_observer_get_hist(o, &h, NULL));
    CHECK(h.width == 4.0 / QF_OBS_DEFAULT_BINS && h.nbins == QF_OBS_DEFAULT_BINS);
    CHECK_EQ_INT(h.pos[0], 64);
    CHECK_EQ_INT(h.pos[512], 1);
    CHECK_EQ_INT(h.pos[1024], 1);
    CHECK_EQ_INT(h.pos[1536], 1);
    CHECK_EQ_INT(h.neg[2047], 1); /* -4: the top edge belongs to the last bin */
    qf_observer_free(o);
}

/* ---- histogram growth --------------------------------------------------------- */

static uint64_t hist_sum(const qf_hist *h) {
    uint64_t s = 0;
    for (size_t k = 0; k < h->nbins; k++)
        s += h->pos[k] + h->neg[k];
    return s;
}

static void histogram_growth(void) {
    /* Batches whose scale grows slowly (bins appended), by large factors
     * (bins merged by an integer factor) and once by 400x (many merges). */
    static const double scales[] = {0.5, 0.55, 0.7, 2.0, 2.1, 7.5, 3000.0, 3100.0, 10.0};
    enum { PER = 12000, NB = QF_ARRAY_LEN(scales) };
    static float all[PER * NB];
    rng_seed(7);
    qf_observer *grown = make_obs(NULL);
    CHECK(grown);
    for (size_t b = 0; b < NB; b++) {
        fill(all + b * PER, PER, b % 2 ? D_LAPLACE : D_GAUSS, scales[b]);
        for (size_t i = 0; i < PER; i += 7)
            all[b * PER + i] *= 0.001f; /* mass near 0 */
        CHECK_OK(qf_observer_observe(grown, all + b * PER, PER, NULL));
        qf_hist h;
        CHECK_OK(qf_observer_get_hist(grown, &h, NULL));
        CHECK_EQ_INT(h.total, (b + 1) * PER);
        CHECK_EQ_INT(hist_sum(&h), (b + 1) * PER);
    }
    qf_hist g;
    CHECK_OK(qf_observer_get_hist(grown, &g, NULL));
    qf_observer_stats st;
    qf_observer_get_stats(grown, &st);
    double absmax = fmax(-st.min, st.max);
    /* resolution stays between B and 2B bins over [0, absmax] */
    CHECK(g.nbins >= QF_OBS_DEFAULT_BINS && g.nbins <= 2 * QF_OBS_DEFAULT_BINS);
    CHECK(g.nbins * g.width >= absmax && (g.nbins - 1) * g.width < absmax);

    /* merged counts == binning every sample directly at the final width,
     * except values lying within rounding of an edge */
    static uint64_t direct[2][2 * QF_OBS_DEFAULT_BINS];
    memset(direct, 0, sizeof direct);
    for (size_t i = 0; i < PER * NB; i++) {
        double a = fabs((double)all[i]) / g.width;
        size_t k = (size_t)floor(a);
        if (k >= g.nbins) k = g.nbins - 1;
        direct[all[i] < 0 ? 1 : 0][k]++;
    }
    uint64_t moved = 0;
    for (size_t k = 0; k < g.nbins; k++) {
        moved += (uint64_t)llabs((long long)direct[0][k] - (long long)g.pos[k]);
        moved += (uint64_t)llabs((long long)direct[1][k] - (long long)g.neg[k]);
    }
    CHECK_MSG(moved <= 4, "%llu samples in a different bin", (unsigned long long)moved);

    /* percentiles vs one observation of everything with the final range */
    qf_observer *once = make_obs(NULL);
    CHECK(once);
    CHECK_OK(qf_observer_observe(once, all, PER * NB, NULL));
    qf_hist h1;
    CHECK_OK(qf_observer_get_hist(once, &h1, NULL));
    CHECK(h1.nbins == QF_OBS_DEFAULT_BINS && h1.width == absmax / QF_OBS_DEFAULT_BINS);
    double tol = fmax(g.width, h1.width) * 1.000001;
    static const double ps[] = {50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < QF_ARRAY_LEN(ps); i++) {
        for (int sym = 0; sym < 2; sym++) {
            qf_calib_opts co = {
                .method = QF_CALIB_PERCENTILE, .percentile = ps[i], .symmetric = sym};
            float lo_g, hi_g, lo_1, hi_1;
            CHECK_OK(qf_calib_range(grown, &co, &lo_g, &hi_g, NULL));
            CHECK_OK(qf_calib_range(once, &co, &lo_1, &hi_1, NULL));
            CHECK_MSG(fabs(lo_g - lo_1) <= tol && fabs(hi_g - hi_1) <= tol,
                      "p %g sym %d: [%g %g] vs [%g %g] (w %g)", ps[i], sym, lo_g, hi_g, lo_1, hi_1,
                      tol);
        }
    }
    qf_observer_free(grown);
    qf_observer_free(once);
}

/* ---- percentile vs sorting ------------------------------------------------------ */

static void percentile_vs_sort(void) {
    /* N chosen so that p * N is never an integer: the target order statistic
     * is then the one of rank ceil(p * N) without ambiguity. */
    enum { N = 100003 };
    static float x[N], sorted[N], sorted_abs[N];
    static const dist dists[] = {D_GAUSS, D_LAPLACE, D_SKEW};
    static const double ps[] = {99, 99.9, 99.99, 99.999};
    for (size_t di = 0; di < QF_ARRAY_LEN(dists); di++) {
        rng_seed(21 + di);
        fill(x, N, dists[di], 1.0);
        for (size_t i = 0; i < N; i++) {
            sorted[i] = x[i];
            sorted_abs[i] = fabsf(x[i]);
        }
        qsort(sorted, N, sizeof(float), cmp_float);
        qsort(sorted_abs, N, sizeof(float), cmp_float);
        /* observed in 10 batches (so the histogram may have grown) */
        qf_observer *o = make_obs(NULL);
        CHECK(o);
        for (size_t b = 0; b < 10; b++) {
            size_t a = b * N / 10, e = (b + 1) * N / 10;
            CHECK_OK(qf_observer_observe(o, x + a, e - a, NULL));
        }
        qf_hist h;
        CHECK_OK(qf_observer_get_hist(o, &h, NULL));
        double tol = h.width * 1.000001;
        for (size_t pi = 0; pi < QF_ARRAY_LEN(ps); pi++) {
            double f = ps[pi] / 100;
            size_t r_hi = (size_t)ceil(f * N), r_lo = (size_t)ceil((1 - f) * N); /* 1-based */
            qf_calib_opts co = {
                .method = QF_CALIB_PERCENTILE, .percentile = ps[pi], .symmetric = true};
            float lo, hi;
            CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
            CHECK_MSG(fabs(hi - sorted_abs[r_hi - 1]) <= tol && lo == -hi,
                      "dist %zu p %g: %g vs %g (w %g)", di, ps[pi], hi, sorted_abs[r_hi - 1], tol);
            co.symmetric = false;
            CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
            CHECK_MSG(fabs(hi - sorted[r_hi - 1]) <= tol && fabs(lo - sorted[r_lo - 1]) <= tol,
                      "dist %zu p %g: [%g %g] vs [%g %g]", di, ps[pi], lo, hi, sorted[r_lo - 1],
                      sorted[r_hi - 1]);
        }
        qf_calib_opts co = {.method = QF_CALIB_PERCENTILE, .percentile = 100};
        float lo, hi;
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        CHECK(lo == sorted[0] && hi == sorted[N - 1]);
        qf_observer_free(o);
    }
}

/* ---- entropy vs the python reference ------------------------------------------- */

typedef struct kl_case {
    const char *what;
    dist d;
    int outliers; /* number of +-60 sigma values added */
    int bits;
    bool symmetric;
    int nq;              /* levels the reference uses: 2^(bits-1), 2^bits for asym >= 0 data */
    double t_min, t_max; /* plausible band for the threshold */
} kl_case;

static void entropy_vs_reference(void) {
    static const kl_case cases[] = {
        {"gauss 8b", D_GAUSS, 0, 8, true, 128, 3.0, 4.5},
        {"gauss+outliers 8b", D_GAUSS, 12, 8, true, 128, 3.0, 8.0},
        {"relu 8b asym", D_RELU, 0, 8, false, 256, 1.0, 4.5},
        {"laplace 4b", D_LAPLACE, 0, 4, true, 8, 0.5, 8.0},
        {"gauss 6b", D_GAUSS, 0, 6, true, 32, 1.5, 4.5},
    };
    enum { N = 100000, NC = QF_ARRAY_LEN(cases) };
    static float x[NC][N];
    char paths[NC][64];
    char cmd[1024];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/fixtures/kl_reference.py %d",
                       QF_OBS_DEFAULT_BINS);
    for (size_t ci = 0; ci < NC; ci++) {
        rng_seed(300 + ci);
        fill(x[ci], N, cases[ci].d, 1.0);
        for (int k = 0; k < cases[ci].outliers; k++)
            x[ci][(size_t)k * (N / cases[ci].outliers)] = (k % 2 ? -60.0f : 60.0f) - k * 0.5f;
        snprintf(paths[ci], sizeof paths[ci], "/tmp/qf_calib_kl_XXXXXX");
        int fd = mkstemp(paths[ci]);
        CHECK(fd >= 0);
        CHECK(write(fd, x[ci], sizeof x[ci]) == (ssize_t)sizeof x[ci]);
        close(fd);
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s:%d", paths[ci], cases[ci].nq);
    }
    FILE *p = popen(cmd, "r");
    CHECK(p);
    double ref_t[NC], ref_w[NC];
    int got = 0;
    for (size_t ci = 0; ci < NC; ci++)
        if (fscanf(p, "%lf %lf", &ref_t[ci], &ref_w[ci]) == 2) got++;
    int rc = pclose(p);
    for (size_t ci = 0; ci < NC; ci++)
        unlink(paths[ci]);
    CHECK_MSG(rc == 0 && got == (int)NC,
              "kl_reference.py failed (rc %d, %d results; run from the repository root)", rc, got);
    for (size_t ci = 0; ci < NC; ci++) {
        const kl_case *c = &cases[ci];
        qf_observer *o = make_obs(NULL);
        CHECK(o);
        CHECK_OK(qf_observer_observe(o, x[ci], N, NULL));
        qf_calib_opts co = {.method = QF_CALIB_ENTROPY, .bits = c->bits, .symmetric = c->symmetric};
        float lo, hi;
        qf_err e;
        CHECK_MSG(qf_calib_range(o, &co, &lo, &hi, &e) == QF_OK, "%s", e.msg);
        qf_hist h;
        CHECK_OK(qf_observer_get_hist(o, &h, NULL));
        qf_observer_stats st;
        qf_observer_get_stats(o, &st);
        double absmax = fmax(-st.min, st.max);
        fprintf(stderr, "  entropy %-18s t = %.5f (reference %.5f, max %.3f)\n", c->what, hi,
                ref_t[ci], absmax);
        CHECK_NEAR(h.width, ref_w[ci], 1e-9);
        CHECK_MSG(fabs(hi - ref_t[ci]) <= h.width * 1.0001, "%s: %g vs reference %g", c->what, hi,
                  ref_t[ci]);
        CHECK_MSG(hi >= c->t_min && hi <= c->t_max, "%s: threshold %g outside [%g, %g]", c->what,
                  hi, c->t_min, c->t_max);
        if (c->symmetric)
            CHECK(lo == -hi);
        else
            CHECK(lo == (float)st.min);
        if (c->outliers) CHECK(hi < 0.15 * absmax); /* clips far below the outliers */
        /* 2^15 levels >= 2048 bins: nothing to clip */
        co.bits = 16;
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        CHECK(hi == (float)(c->symmetric ? absmax : st.max));
        qf_observer_free(o);
    }
}

/* ---- mse vs brute force ------------------------------------------------------------- */

/* The test's own quantizer: qparams by the DESIGN.md formulas, then
 * x -> s * (clamp(rint(x / s) + z, qmin, qmax) - z). */
static double sample_mse(const float *x, size_t n, double lo, double hi, int bits, bool sym) {
    double s, z, qmin, qmax;
    lo = fmin(lo, 0);
    hi = fmax(hi, 0);
    if (sym) {
        double qr = ldexp(1, bits - 1) - 1;
        s = (float)(fmax(-lo, hi) / qr);
        z = 0;
        qmin = -qr;
        qmax = qr;
    } else {
        qmin = -ldexp(1, bits - 1);
        qmax = ldexp(1, bits - 1) - 1;
        s = (float)((hi - lo) / (qmax - qmin));
        z = fmin(fmax(nearbyint(qmin - lo / s), qmin), qmax);
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double q = fmin(fmax(nearbyint(x[i] / s) + z, qmin), qmax);
        double d = x[i] - s * (q - z);
        sum += d * d;
    }
    return sum / (double)n;
}

static void mse_vs_bruteforce(void) {
    static const struct {
        dist d;
        int bits;
        bool symmetric;
    } cases[] = {
        {D_GAUSS, 8, true}, {D_GAUSS, 4, true}, {D_LAPLACE, 8, true}, {D_LAPLACE, 4, true},
        {D_RELU, 8, false}, {D_RELU, 4, false}, {D_SKEW, 8, false},   {D_SKEW, 4, false},
    };
    enum { N = 12000, DENSE = 600 };
    static float x[N];
    for (size_t ci = 0; ci < QF_ARRAY_LEN(cases); ci++) {
        rng_seed(500 + ci);
        fill(x, N, cases[ci].d, 1.0);
        int bits = cases[ci].bits;
        bool sym = cases[ci].symmetric;
        qf_observer *o = make_obs(NULL);
        CHECK(o);
        CHECK_OK(qf_observer_observe(o, x, N / 2, NULL));
        CHECK_OK(qf_observer_observe(o, x + N / 2, N - N / 2, NULL));
        qf_calib_opts co = {.method = QF_CALIB_MSE, .bits = bits, .symmetric = sym};
        float lo, hi;
        CHECK_OK(qf_calib_range(o, &co, &lo, &hi, NULL));
        double mn = x[0], mx = x[0];
        for (size_t i = 0; i < N; i++) {
            mn = fmin(mn, x[i]);
            mx = fmax(mx, x[i]);
        }
        double lo0 = sym ? -fmax(-mn, mx) : fmin(mn, 0), hi0 = sym ? fmax(-mn, mx) : fmax(mx, 0);
        double best = INFINITY, best_f = 1;
        for (int k = 1; k <= DENSE; k++) {
            double f = (double)k / DENSE;
            double e = sample_mse(x, N, lo0 * f, hi0 * f, bits, sym);
            if (e < best) {
                best = e;
                best_f = f;
            }
        }
        double mine = sample_mse(x, N, lo, hi, bits, sym);
        double full = sample_mse(x, N, lo0, hi0, bits, sym);
        fprintf(stderr,
                "  mse case %zu (%d bits%s): clip %.4f..%.4f, mse %.4g, brute %.4g at "
                "%.3f, minmax %.4g\n",
                ci, bits, sym ? " sym" : "", lo, hi, mine, best, best_f, full);
        CHECK_MSG(mine <= best * 1.01, "case %zu: mse %g vs brute force %g", ci, mine, best);
        if (sym) CHECK(lo == -hi);
        qf_observer_free(o);
    }
}

/* ---- scale / zero point ------------------------------------------------------------ */

/* Quantize with the returned parameters, the DESIGN.md way. */
static int32_t test_quantize(float v, const qf_qparam *q) {
    double r = nearbyint((double)(v / q->scale)) + q->zero_point;
    return (int32_t)fmin(fmax(r, q->qmin), q->qmax);
}

static void qparams_cases(void) {
    static const struct {
        float lo, hi;
        int bits;
        bool sym, is_signed;
        float scale;
        int32_t zp, qmin, qmax;
    } cases[] = {
        /* asymmetric int8 */
        /* -128 + 1 / (float)(2/255) = -0.5000075 (the float scale is a bit
         * small), so -1, not the 0 that exact arithmetic would give */
        {-1.0f, 1.0f, 8, false, true, 2.0f / 255, -1, -128, 127},
        {0.5f, 2.0f, 8, false, true, 2.0f / 255, -128, -128, 127},      /* lo extended to 0 */
        {-3.0f, -1.0f, 8, false, true, 3.0f / 255, 127, -128, 127},     /* hi extended to 0 */
        {-1.0f, 3.0f, 8, false, true, 4.0f / 255, -64, -128, 127},      /* -128 + 63.75 */
        {-1.0f, 3.0f, 8, false, false, 4.0f / 255, 64, 0, 255},         /* uint8 */
        {0.0f, 0.0f, 8, false, true, 1.0f, -128, -128, 127},            /* all zero */
        {-2.0f, 1.0f, 4, false, true, 3.0f / 15, 2, -8, 7},             /* -8 + 10 */
        {-1.0f, 1.0f, 16, false, true, 2.0f / 65535, 0, -32768, 32767}, /* -0.4999924 */
        /* symmetric: restricted range */
        {-0.5f, 2.0f, 8, true, true, 2.0f / 127, 0, -127, 127},
        {-0.5f, 2.0f, 8, true, false, 2.0f / 127, 128, 1, 255},
        {-3.0f, 1.0f, 4, true, true, 3.0f / 7, 0, -7, 7},
        {-1.0f, 0.25f, 2, true, true, 1.0f, 0, -1, 1},
        {0.0f, 0.0f, 8, true, true, 1.0f, 0, -127, 127},
        {0.0f, 0.0f, 4, true, false, 1.0f, 8, 1, 15},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        qf_qparam q;
        qf_err e;
        CHECK_MSG(qf_calib_qparams(cases[i].lo, cases[i].hi, cases[i].bits, cases[i].sym,
                                   cases[i].is_signed, &q, &e) == QF_OK,
                  "%s", e.msg);
        int32_t zp = cases[i].zp;
        CHECK_MSG(q.scale == cases[i].scale && q.zero_point == zp && q.qmin == cases[i].qmin &&
                      q.qmax == cases[i].qmax,
                  "case %zu: scale %.9g zp %d [%d %d]", i, q.scale, q.zero_point, q.qmin, q.qmax);
        CHECK(test_quantize(0.0f, &q) == q.zero_point); /* zero exact */
    }
    /* every bit width, random ranges: zero exactly representable, the range
     * ends land on (or one step inside) qmin / qmax, scale as specified */
    rng_seed(77);
    for (int bits = 2; bits <= 8; bits++) {
        for (int r = 0; r < 200; r++) {
            float lo = (float)(-rng_unit() * 10), hi = (float)(rng_unit() * 10);
            if (r % 4 == 1) lo = -lo; /* range above 0 */
            if (r % 4 == 2) hi = -hi; /* range below 0 */
            if (lo > hi) {
                float t = lo;
                lo = hi;
                hi = t;
            }
            for (int sym = 0; sym < 2; sym++) {
                qf_qparam q;
                CHECK_OK(qf_calib_qparams(lo, hi, bits, sym, true, &q, NULL));
                CHECK(q.zero_point >= q.qmin && q.zero_point <= q.qmax);
                CHECK(test_quantize(0.0f, &q) == q.zero_point);
                CHECK(q.scale * (float)(test_quantize(0.0f, &q) - q.zero_point) == 0.0f);
                double l = fmin(lo, 0), h = fmax(hi, 0);
                if (sym) {
                    double qr = ldexp(1, bits - 1) - 1;
                    CHECK(q.qmin == -qr && q.qmax == qr && q.zero_point == 0);
                    CHECK(q.scale == (float)(fmax(-l, h) / qr));
                    CHECK(abs(test_quantize((float)(fabs(l) > h ? l : h), &q)) == (int)qr);
                } else {
                    CHECK(q.qmin == -(1 << (bits - 1)) && q.qmax == (1 << (bits - 1)) - 1);
                    CHECK(q.scale == (float)((h - l) / (ldexp(1, bits) - 1)));
                    CHECK(test_quantize((float)l, &q) <= q.qmin + 1);
                    CHECK(test_quantize((float)h, &q) >= q.qmax - 1);
                }
            }
        }
    }
    /* tiny and huge ranges keep a finite positive scale */
    qf_qparam q;
    CHECK_OK(qf_calib_qparams(0.0f, 1e-44f, 8, false, true, &q, NULL));
    CHECK(q.scale == FLT_MIN && q.zero_point == -128);
    CHECK_OK(qf_calib_qparams(-FLT_MAX, FLT_MAX, 8, false, true, &q, NULL));
    CHECK(isfinite(q.scale) && q.scale > 0 && q.zero_point == 0);
    /* invalid */
    CHECK_EQ_INT(qf_calib_qparams(1.0f, 0.0f, 8, false, true, &q, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_calib_qparams(NAN, 1.0f, 8, false, true, &q, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_calib_qparams(0.0f, INFINITY, 8, false, true, &q, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_calib_qparams(-1.0f, 1.0f, 1, false, true, &q, NULL), QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(qf_calib_qparams(-1.0f, 1.0f, 17, true, true, &q, NULL), QF_ERR_INVALID_ARG);
}

/* ---- per-channel weight scales ---------------------------------------------------- */

static double weight_sse(const float *w, size_t n, float s, int bits) {
    double qr = ldexp(1, bits - 1) - 1, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double q = fmin(fmax(nearbyint(w[i] / s), -qr), qr);
        double d = w[i] - (double)(s * (float)q);
        sum += d * d;
    }
    return sum;
}

static void weight_scales(void) {
    /* [out=8, in=16, 3, 3], per output channel (axis 0), weights of varying
     * spread with a few outliers, as trained conv weights look */
    enum { CO = 8, PER = 16 * 9 };
    static float w[CO * PER];
    rng_seed(900);
    for (size_t c = 0; c < CO; c++) {
        double sc = 0.05 * (1 + (double)c);
        fill(w + c * PER, PER, c % 2 ? D_LAPLACE : D_GAUSS, sc);
        if (c == 3) memset(w + c * PER, 0, PER * sizeof(float)); /* dead channel */
    }
    qf_tensor t = {.dtype = QF_DT_F32, .rank = 4, .dims = {CO, 16, 3, 3}, .data = w};
    float s_mm[CO], s_mse[CO];
    qf_err e;
    for (int bits = 2; bits <= 8; bits++) {
        double qr = ldexp(1, bits - 1) - 1;
        CHECK_MSG(qf_calib_weight_scales(&t, 0, bits, QF_CALIB_MINMAX, s_mm, &e) == QF_OK, "%s",
                  e.msg);
        CHECK_MSG(qf_calib_weight_scales(&t, 0, bits, QF_CALIB_MSE, s_mse, &e) == QF_OK, "%s",
                  e.msg);
        for (size_t c = 0; c < CO; c++) {
            const float *wc = w + c * PER;
            double m = 0;
            for (size_t i = 0; i < PER; i++)
                m = fmax(m, fabs(wc[i]));
            if (m == 0) {
                CHECK(s_mm[c] == 1.0f && s_mse[c] == 1.0f);
                continue;
            }
            CHECK(s_mm[c] == (float)(m / qr));
            /* brute force over 2000 clip values */
            double best = INFINITY;
            for (int k = 1; k <= 2000; k++) {
                float s = (float)(m * k / 2000 / qr);
                best = fmin(best, weight_sse(wc, PER, s, bits));
            }
            double mine = weight_sse(wc, PER, s_mse[c], bits);
            double mm = weight_sse(wc, PER, s_mm[c], bits);
            CHECK_MSG(mine <= best * 1.01 + 1e-30 && mine <= mm,
                      "bits %d ch %zu: sse %g, brute force %g, minmax %g", bits, c, mine, best, mm);
        }
    }
    /* other axes and per-tensor, vs naive max */
    float x[3 * 4 * 5];
    fill(x, 60, D_LAPLACE, 1.0);
    qf_tensor t2 = {.dtype = QF_DT_F32, .rank = 3, .dims = {3, 4, 5}, .data = x};
    float s[5];
    for (int axis = -1; axis < 3; axis++) {
        CHECK_OK(qf_calib_weight_scales(&t2, axis, 8, QF_CALIB_MINMAX, s, NULL));
        size_t nc = axis < 0 ? 1 : (size_t)t2.dims[axis];
        for (size_t c = 0; c < nc; c++) {
            double m = 0;
            for (size_t i = 0; i < 60; i++) {
                size_t idx[3] = {i / 20, (i / 5) % 4, i % 5};
                if (axis < 0 || idx[axis] == c) m = fmax(m, fabs(x[i]));
            }
            CHECK_MSG(s[c] == (float)(m / 127), "axis %d ch %zu", axis, c);
        }
    }
    CHECK_EQ_INT(qf_calib_weight_scales(&t2, 0, 8, QF_CALIB_ENTROPY, s, &e), QF_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "entropy"));
    CHECK_EQ_INT(qf_calib_weight_scales(&t2, 3, 8, QF_CALIB_MINMAX, s, NULL), QF_ERR_SHAPE);
    CHECK_EQ_INT(qf_calib_weight_scales(&t2, 0, 9, QF_CALIB_MINMAX, s, NULL), QF_ERR_INVALID_ARG);
    x[7] = NAN;
    CHECK_EQ_INT(qf_calib_weight_scales(&t2, 0, 8, QF_CALIB_MINMAX, s, NULL), QF_ERR_INVALID_ARG);
}

/* ---- method names ---------------------------------------------------------------- */

static void method_names(void) {
    static const struct {
        const char *name;
        qf_calib_method m;
    } cases[] = {{"minmax", QF_CALIB_MINMAX},
                 {"percentile", QF_CALIB_PERCENTILE},
                 {"entropy", QF_CALIB_ENTROPY},
                 {"mse", QF_CALIB_MSE}};
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        qf_calib_method m = (qf_calib_method)99;
        CHECK_OK(qf_calib_method_parse(cases[i].name, &m, NULL));
        CHECK(m == cases[i].m);
        CHECK(strcmp(qf_calib_method_name(cases[i].m), cases[i].name) == 0);
    }
    qf_calib_method m;
    qf_err e;
    CHECK_EQ_INT(qf_calib_method_parse("kl", &m, &e), QF_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "'kl'") && strstr(e.msg, "minmax") && strstr(e.msg, "percentile") &&
                  strstr(e.msg, "entropy") && strstr(e.msg, "mse"),
              "%s", e.msg);
    CHECK_EQ_INT(qf_calib_method_parse("MinMax", &m, NULL), QF_ERR_INVALID_ARG);
}

/* ---- out of memory -------------------------------------------------------------- */

static int fail_after;
static void *failing_alloc(void *u, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return malloc(n);
}
static void *failing_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return realloc(p, n);
}
static void plain_free(void *u, void *p) {
    (void)u;
    free(p);
}

/* Every allocation failure gives QF_ERR_NOMEM, nothing leaks (ASan checks),
 * and with enough allocations the whole sequence succeeds. */
static void out_of_memory(void) {
    float x[2 * 3 * 4];
    fill(x, 24, D_GAUSS, 1.0);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = 3, .dims = {2, 3, 4}, .data = x};
    qf_allocator a = {failing_alloc, failing_realloc, plain_free, NULL};
    bool saw_nomem = false, saw_ok = false;
    for (int k = 0; k < 12 && !saw_ok; k++) {
        qf_set_allocator(&a);
        fail_after = k;
        qf_observer_opts oo = {.per_channel = true, .axis = 1};
        qf_observer *o = NULL;
        float lo, hi;
        qf_calib_opts co = {.method = QF_CALIB_ENTROPY, .bits = 4, .symmetric = true};
        qf_status st = qf_observer_create(&oo, "oom", &o, NULL);
        if (st == QF_OK) st = qf_observer_observe_tensor(o, &t, NULL);
        if (st == QF_OK) st = qf_calib_range(o, &co, &lo, &hi, NULL);
        qf_observer_free(o);
        qf_set_allocator(NULL);
        CHECK_MSG(st == QF_OK || st == QF_ERR_NOMEM, "k %d: status %d", k, (int)st);
        saw_nomem |= st == QF_ERR_NOMEM;
        saw_ok |= st == QF_OK;
    }
    CHECK(saw_nomem && saw_ok);
}

/* ---- speed: 1000 Fashion-MNIST images through a small CNN ------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void observe_speed(void) {
    /* LeNet-like activations of 1000 images: conv1 6x28x28, relu, pool
     * 6x14x14, conv2 16x10x10, relu, pool 16x5x5, fc 120, 84, 10 */
    static const size_t per_image[] = {6 * 784, 6 * 784, 6 * 196, 1600, 1600, 400, 120, 84, 10};
    enum { IMAGES = 1000, NT = QF_ARRAY_LEN(per_image) };
    size_t maxn = 6 * 784 * IMAGES / 10 + 10000;
    float *x = malloc(maxn * sizeof(float)), *relu = malloc(maxn * sizeof(float));
    CHECK(x && relu);
    rng_seed(4242);
    fill(x, maxn, D_GAUSS, 2.0);
    for (size_t i = 0; i < maxn; i++)
        relu[i] = fmaxf(x[i], 0.0f);
    qf_observer *o[NT];
    for (size_t i = 0; i < NT; i++)
        o[i] = make_obs(NULL);
    size_t total = 0;
    double t0 = now_s();
    for (size_t b = 0; b < 10; b++) { /* 10 batches of 100 images */
        for (size_t i = 0; i < NT; i++) {
            size_t n = per_image[i] * (IMAGES / 10);
            /* relu outputs: half zeros, which all hit one bin */
            const float *src = (i == 1 || i == 4 ? relu : x) + b * 1000;
            CHECK_OK(qf_observer_observe(o[i], src, n, NULL));
            total += n;
        }
    }
    double dt = now_s() - t0;
    for (size_t i = 0; i < NT; i++)
        qf_observer_free(o[i]);
    free(x);
    free(relu);
    fprintf(stderr, "  observed %zu values in %.3f s (%.2f ns/value)\n", total, dt,
            1e9 * dt / (double)total);
    /* generous: the design target is "well under a second"; sanitizers slow
     * everything down several times */
    if (!getenv("QF_SANITIZE")) CHECK_MSG(dt < 0.5, "%.3f s", dt);
}

QT_MAIN(QT_CASE(minmax_moving_average), QT_CASE(per_channel_minmax), QT_CASE(observer_errors),
        QT_CASE(all_zero_data), QT_CASE(histogram_growth), QT_CASE(percentile_vs_sort),
        QT_CASE(entropy_vs_reference), QT_CASE(mse_vs_bruteforce), QT_CASE(qparams_cases),
        QT_CASE(weight_scales), QT_CASE(method_names), QT_CASE(out_of_memory),
        QT_CASE(observe_speed))
