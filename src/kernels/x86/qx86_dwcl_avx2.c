/* qx86_dwcl_avx2.c - depthwise k x k int8 convolution of small planes with
 * AVX2, channels in the lanes; bit-identical to qf_ref_conv2d_s8. Reached
 * through qf_x86_dwconv2d_s8 (qx86.h) with QF_ISA_AVX2 where
 * qx_dwcl_avx2_takes() says so.
 *
 * Why: qx86_dw_avx2.c runs each channel plane along its rows, 8 or 16
 * output pixels a vector. On the 7x7 and 14x14 planes of a MobileNet's
 * last stages a row is 7 or 14 pixels and each plane pays its set-up (pair
 * rows, tails, epilogue constants) for 49 or 196 outputs: about 10 cycles
 * an output here, where ONNX Runtime's NHWC kernel took 4-5. This kernel
 * takes 16 channels at once instead:
 *
 *  1. their planes are transposed (16 x 16 byte blocks through unpacks)
 *     into a zero-padded grid T[Hp][Wp][16] of int16 d = q - z, where pad
 *     cells hold 0 (a padded tap contributes nothing, as in the reference,
 *     whose sums start at the bias);
 *  2. each output pixel takes its taps in pairs (ta, tb): the two grid
 *     cells' 16 int16 values interleaved by vpunpck{l,h}wd give, per 32-bit
 *     lane, (d_ta, d_tb) of one channel, and one vpmaddwd with the weights
 *     (w_ta, w_tb) of that channel adds both products (exact: |d| <= 255,
 *     |w| <= 128). An odd last tap pairs with zeros. The unpacks put
 *     channels 0-3 and 8-11 in one accumulator ("lo") and 4-7, 12-15 in the
 *     other ("hi"); the weights, biases and multipliers are laid out in
 *     that order, and vpackssdw of (lo, hi) puts the 16 channels back in
 *     order;
 *  3. FP32 requantization in the spec's SIMD form per lane (multiplier per
 *     channel), two pixels' 32 bytes stored at once into O[pixel][16];
 *  4. O is transposed back into the 16 output planes.
 *
 * FP32 mode only (FIXED mode stays on qx86_dw_avx2.c). Threads: tasks of
 * (image, 16-channel group) units; every output byte is computed by one
 * task with the same arithmetic for any thread count. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define TGT __attribute__((target("avx2")))
#define INL __attribute__((always_inline)) inline

/* Largest padded grid (Hp * Wp cells of 32 bytes: 32 KiB) and output plane
 * (pixels; O holds 16 bytes each, plus one spare pixel) this path takes. */
#define CL_MAX_CELLS 1024
#define CL_MAX_OUT 1024
/* Outputs per task at least (units are grouped). */
#define CL_TASK_OUTPUTS 4096
/* Relative cost of a depthwise multiply-accumulate against a GEMM's
 * (qf_x86_serial_macs counts GEMM MACs), as in qx86_dw_avx2.c. */
#define CL_MAC_COST 4.0
/* Output planes of at most this many pixels take this kernel by default.
 * Measured on MobileNetV2 (7-bit, batch 1, one thread; each layer's time
 * against an unchanged layer's in the same run): 1.45-1.6x on the 7x7
 * layers (960 channels, stride 1 and 2), 1.0-1.05x on the 14x14 ones, so
 * the row kernel keeps those. */
#define CL_TAKE_OUT 100

static _Atomic int cl_mode = 1;
void qf_x86_dw_set_cl(int mode) { cl_mode = mode; }

bool qx_dwcl_avx2_takes(const qf_ref_conv_params *p) {
    const int mode = cl_mode;
    const int64_t hp = (int64_t)p->pad_top + p->in_h + p->pad_bottom;
    const int64_t wp = (int64_t)p->pad_left + p->in_w + p->pad_right;
    const int64_t out = (int64_t)p->out_h * p->out_w;
    if (mode == 0 || p->rq.mode != QF_RQ_FP32 || hp * wp > CL_MAX_CELLS || out > CL_MAX_OUT)
        return false;
    return mode == 2 || (out <= CL_TAKE_OUT && p->in_c >= 8);
}

typedef struct cl_job {
    const qf_ref_conv_params *p;
    const qf_x86_weights *w;
    const int32_t *bias;
    const int8_t *in;
    int8_t *out;
    int64_t n_groups; /* 16-channel groups per image */
    int64_t n_units;  /* batch * n_groups */
    int64_t per_task; /* units per task */
} cl_job;

/* 16 x 16 byte transpose: r[i] byte j -> r[j] byte i. */
TGT static INL void transpose16(__m128i r[16]) {
    __m128i a[16], b[16];
    for (int k = 0; k < 8; k++) {
        a[2 * k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
    /* a[2k]: columns 0-7 of rows 2k, 2k+1 (byte pairs); a[2k+1]: 8-15 */
    for (int m = 0; m < 4; m++)
        for (int j = 0; j < 2; j++) {
            b[4 * m + 2 * j] = _mm_unpacklo_epi16(a[4 * m + j], a[4 * m + 2 + j]);
            b[4 * m + 2 * j + 1] = _mm_unpackhi_epi16(a[4 * m + j], a[4 * m + 2 + j]);
        }
    /* b[4m + 2j + h]: columns 8j + 4h .. + 3 of rows 4m .. 4m + 3 */
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 4; i++) {
            a[8 * n + 2 * i] = _mm_unpacklo_epi32(b[8 * n + i], b[8 * n + 4 + i]);
            a[8 * n + 2 * i + 1] = _mm_unpackhi_epi32(b[8 * n + i], b[8 * n + 4 + i]);
        }
    /* a[8n + 2i + h], i = 2j + g: columns 8j + 4g + 2h .. + 1 of rows 8n .. 8n + 7 */
    for (int i = 0; i < 8; i++) {
        b[2 * i] = _mm_unpacklo_epi64(a[i], a[8 + i]);
        b[2 * i + 1] = _mm_unpackhi_epi64(a[i], a[8 + i]);
    }
    /* b[2i + h] is column 8 (i / 4) + 4 ((i / 2) % 2) + 2 (i % 2) + h,
     * that is column 2i + h, of all 16 rows */
    for (int i = 0; i < 16; i++)
        r[i] = b[i];
}

/* Lane l of the "lo" accumulator holds channel lo_ch[l]; "hi" hi_ch[l]. */
static const int lo_ch[8] = {0, 1, 2, 3, 8, 9, 10, 11};
static const int hi_ch[8] = {4, 5, 6, 7, 12, 13, 14, 15};

/* One (image, group) unit's tables. */
typedef struct cl_tabs {
    _Alignas(32) int32_t wp[13][2][8]; /* tap pair j: lo / hi lanes, (w_2j, w_2j+1) */
    _Alignas(32) int32_t bias[2][8];
    _Alignas(32) float mult[2][8];
} cl_tabs;

static void tabs_init(const cl_job *j, int64_t c0, int nc, cl_tabs *tb) {
    const qf_ref_conv_params *p = j->p;
    const qf_x86_weights *w = j->w;
    const int kh = p->k_h, kw = p->k_w, k = kh * kw;
    const int64_t gw = (kw + 3) / 4, per = (int64_t)kh * gw * 4;
    memset(tb->wp, 0, sizeof tb->wp);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 8; l++) {
            const int ch = h ? hi_ch[l] : lo_ch[l];
            const int64_t c = c0 + (ch < nc ? ch : 0);
            tb->bias[h][l] = ch < nc && j->bias ? j->bias[c] : 0;
            tb->mult[h][l] = qr_mult_of(&p->rq, c)->mult_f;
            if (ch >= nc) continue;
            /* the channel's taps in (ky, kx) order, two per 32-bit lane
             * (the first in the low 16 bits) */
            int8_t tw[26] = {0};
            const int8_t *src = w->data + c * per;
            for (int ky = 0, t = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++, t++)
                    tw[t] = src[ky * gw * 4 + kx];
            for (int pr = 0; pr < (k + 1) / 2; pr++)
                tb->wp[pr][h][l] = (int32_t)((uint32_t)(uint16_t)(int16_t)tw[2 * pr] |
                                             (uint32_t)(uint16_t)(int16_t)tw[2 * pr + 1] << 16);
        }
}

/* The grid T of one unit: interior cells from the 16 channel planes (q - z
 * as int16; channels past nc 0), pad cells 0 (set once per task). */
TGT static void fill_grid(const cl_job *j, const int8_t *plane0, int nc, int64_t wp_cells,
                          int16_t *grid) {
    const qf_ref_conv_params *p = j->p;
    const int64_t hw = (int64_t)p->in_h * p->in_w;
    const __m256i z = _mm256_set1_epi16((int16_t)p->in_zp);
    int64_t y = 0, x = 0;
    for (int64_t p0 = 0; p0 < hw; p0 += 16) {
        const int64_t n = hw - p0 < 16 ? hw - p0 : 16;
        __m128i r[16];
        for (int c = 0; c < 16; c++) {
            if (c >= nc) {
                r[c] = _mm_set1_epi8((char)p->in_zp); /* d = 0 */
            } else if (n == 16) {
                r[c] = _mm_loadu_si128((const __m128i *)(plane0 + c * hw + p0));
            } else {
                int8_t t[16] = {0};
                memcpy(t, plane0 + c * hw + p0, (size_t)n);
                r[c] = _mm_loadu_si128((const __m128i *)t);
            }
        }
        transpose16(r);
        for (int64_t i = 0; i < n; i++) {
            const __m256i d = _mm256_sub_epi16(_mm256_cvtepi8_epi16(r[i]), z);
            int16_t *cell = grid + ((y + p->pad_top) * wp_cells + x + p->pad_left) * 16;
            _mm256_storeu_si256((__m256i *)cell, d);
            if (++x == p->in_w) x = 0, y++;
        }
    }
}

/* FP32 requantization of one pixel's accumulators, int16 lanes in channel
 * order (the spec's SIMD form; values within int8 after the clamps). */
TGT static INL __m256i rq_pixel(__m256i lo, __m256i hi, const cl_tabs *tb, __m256 fmin, __m256 fmax,
                                __m256i zo) {
    __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(lo), _mm256_load_ps(tb->mult[0]));
    __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(hi), _mm256_load_ps(tb->mult[1]));
    f0 = _mm256_min_ps(_mm256_max_ps(f0, fmin), fmax);
    f1 = _mm256_min_ps(_mm256_max_ps(f1, fmin), fmax);
    const __m256i v0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), zo);
    const __m256i v1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), zo);
    /* per 128-bit half: (lo 0-3, hi 0-3) = channels 0-7, (lo 4-7, hi 4-7) = 8-15 */
    return _mm256_packs_epi32(v0, v1);
}

/* Two pixels' accumulators (grid bytes g0, g1) over the K x K taps in
 * pairs; off: the taps' grid byte offsets. */
#define CL_PAIR(pr)                                                                                \
    do {                                                                                           \
        const int ta = 2 * (pr), tb2 = 2 * (pr) + 1;                                               \
        const __m256i wl = _mm256_load_si256((const __m256i *)tb->wp[pr][0]);                      \
        const __m256i wh = _mm256_load_si256((const __m256i *)tb->wp[pr][1]);                      \
        const __m256i x0 = _mm256_load_si256((const __m256i *)(g0 + off[ta]));                     \
        const __m256i x1 = _mm256_load_si256((const __m256i *)(g1 + off[ta]));                     \
        const __m256i y0 = tb2 < NT ? _mm256_load_si256((const __m256i *)(g0 + off[tb2])) : zero;  \
        const __m256i y1 = tb2 < NT ? _mm256_load_si256((const __m256i *)(g1 + off[tb2])) : zero;  \
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, y0), wl));           \
        b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, y0), wh));           \
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpacklo_epi16(x1, y1), wl));           \
        b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x1, y1), wh));           \
    } while (0)

TGT static INL void compute_k(const cl_job *j, const cl_tabs *tb, const int16_t *grid,
                              int64_t wp_cells, int8_t *o, const int K) {
    const int NT = K * K;
    const qf_ref_conv_params *p = j->p;
    const qf_ref_requant *rq = &p->rq;
    const __m256 fmin = _mm256_set1_ps((float)(rq->act_min - rq->out_zp));
    const __m256 fmax = _mm256_set1_ps((float)(rq->act_max - rq->out_zp));
    const __m256i zo = _mm256_set1_epi32(rq->out_zp);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i bl = _mm256_load_si256((const __m256i *)tb->bias[0]);
    const __m256i bh = _mm256_load_si256((const __m256i *)tb->bias[1]);
    int64_t off[25];
    for (int t = 0; t < NT; t++)
        off[t] = ((t / K) * wp_cells + t % K) * 32;
    const int64_t npix = (int64_t)p->out_h * p->out_w;
    const uint8_t *g = (const uint8_t *)grid;
    const int64_t sy = (int64_t)p->stride_h * wp_cells * 32, sx = (int64_t)p->stride_w * 32;
    int64_t oy = 0, ox = 0;
    for (int64_t px = 0; px < npix; px += 2) {
        const uint8_t *g0 = g + oy * sy + ox * sx;
        if (++ox == p->out_w) ox = 0, oy++;
        /* the second pixel (the first again past the plane's end: O has a
         * spare pixel) */
        const uint8_t *g1 = px + 1 < npix ? g + oy * sy + ox * sx : g0;
        if (px + 1 < npix && ++ox == p->out_w) ox = 0, oy++;
        __m256i a0 = bl, b0 = bh, a1 = bl, b1 = bh;
        CL_PAIR(0);
        CL_PAIR(1);
        CL_PAIR(2);
        CL_PAIR(3);
        CL_PAIR(4);
        if (K == 5) {
            CL_PAIR(5);
            CL_PAIR(6);
            CL_PAIR(7);
            CL_PAIR(8);
            CL_PAIR(9);
            CL_PAIR(10);
            CL_PAIR(11);
            CL_PAIR(12);
        }
        const __m256i q0 = rq_pixel(a0, b0, tb, fmin, fmax, zo);
        const __m256i q1 = rq_pixel(a1, b1, tb, fmin, fmax, zo);
        /* halves: (px ch 0-7, px+1 ch 0-7), (px ch 8-15, px+1 ch 8-15) */
        const __m256i q = _mm256_permute4x64_epi64(_mm256_packs_epi16(q0, q1), 0xD8);
        _mm256_storeu_si256((__m256i *)(o + px * 16), q);
    }
}
#undef CL_PAIR

/* O[pixel][16] back into the unit's nc output planes. */
TGT static void store_planes(const cl_job *j, const int8_t *o, int nc, int8_t *plane0) {
    const int64_t npix = (int64_t)j->p->out_h * j->p->out_w;
    for (int64_t p0 = 0; p0 < npix; p0 += 16) {
        const int64_t n = npix - p0 < 16 ? npix - p0 : 16;
        __m128i r[16];
        for (int i = 0; i < 16; i++)
            r[i] =
                i < n ? _mm_loadu_si128((const __m128i *)(o + (p0 + i) * 16)) : _mm_setzero_si128();
        transpose16(r);
        for (int c = 0; c < nc; c++) {
            int8_t *d = plane0 + c * npix + p0;
            if (n == 16) {
                _mm_storeu_si128((__m128i *)d, r[c]);
            } else {
                int8_t t[16];
                _mm_storeu_si128((__m128i *)t, r[c]);
                memcpy(d, t, (size_t)n);
            }
        }
    }
}

TGT static void cl_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const cl_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    const int64_t wp_cells = (int64_t)p->pad_left + p->in_w + p->pad_right;
    const int64_t hp = (int64_t)p->pad_top + p->in_h + p->pad_bottom;
    _Alignas(32) int16_t grid[CL_MAX_CELLS * 16];
    _Alignas(32) int8_t o[(CL_MAX_OUT + 1) * 16];
    cl_tabs tb;
    /* pad cells stay 0; interior cells are rewritten by every unit */
    memset(grid, 0, (size_t)(hp * wp_cells) * 32);
    const int64_t u0 = task * j->per_task;
    const int64_t u1 = u0 + j->per_task < j->n_units ? u0 + j->per_task : j->n_units;
    const int64_t in_hw = (int64_t)p->in_h * p->in_w, out_hw = (int64_t)p->out_h * p->out_w;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t b = u / j->n_groups, c0 = u % j->n_groups * 16;
        const int nc = p->in_c - c0 < 16 ? (int)(p->in_c - c0) : 16;
        tabs_init(j, c0, nc, &tb);
        fill_grid(j, j->in + (b * p->in_c + c0) * in_hw, nc, wp_cells, grid);
        if (p->k_h == 3)
            compute_k(j, &tb, grid, wp_cells, o, 3);
        else
            compute_k(j, &tb, grid, wp_cells, o, 5);
        store_planes(j, o, nc, j->out + (b * p->in_c + c0) * out_hw);
    }
}

void qx_dwcl_avx2(qf_threadpool *pool, const qf_ref_conv_params *p, const int8_t *in,
                  const qf_x86_weights *w, const int32_t *bias, int8_t *out) {
    cl_job j = {.p = p, .w = w, .bias = bias, .in = in, .out = out};
    j.n_groups = (p->in_c + 15) / 16;
    j.n_units = (int64_t)p->batch * j.n_groups;
    const int64_t unit_out = (int64_t)p->out_h * p->out_w * 16;
    j.per_task = unit_out >= CL_TASK_OUTPUTS ? 1 : (CL_TASK_OUTPUTS + unit_out - 1) / unit_out;
    const double macs = (double)p->batch * p->in_c * p->out_h * p->out_w * p->k_h * p->k_w;
    if (macs * CL_MAC_COST < qf_x86_serial_macs()) pool = NULL;
    qf_parallel_for(pool, (j.n_units + j.per_task - 1) / j.per_task, cl_task, &j);
}

#else

void qf_x86_dw_set_cl(int mode) { (void)mode; }

#endif
