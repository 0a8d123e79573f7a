/* qconv_fast_s8.c - portable fast int8 2-D convolution (NCHW, grouped,
 * depthwise, strides, dilations, explicit pads), bit-identical to
 * qf_ref_conv2d_s8 (see qfast.h for the contract).
 *
 * Two paths:
 *  - general (more than one input channel per group): per batch, group and
 *    band of output pixels, im2row packs each pixel's receptive field into
 *    an int16 row of kp values (q_x - in_zp; 0 for padded taps and for the
 *    K padding), then qf_fast_panel_s8 multiplies the group's widened weight
 *    rows with those rows. A 1x1 stride-1 unpadded convolution needs no
 *    patch gathering: its packing is a blocked transpose of the input.
 *  - depthwise (one input channel per group, any multiplier): a direct loop
 *    over a zero-padded int16 copy (q_x - in_zp) of a band of input rows,
 *    accumulating tap by tap: with unit strides the accumulator has the
 *    plane's row stride, so each tap is one long vectorizable pass over the
 *    whole band (columns past out_w are computed and dropped); otherwise one
 *    output row at a time.
 * Both sum (q_x - in_zp) * w over exactly the reference's taps (the padded
 * ones add 0) in uint32, i.e. the reference's wrapped int32 sum, and finish
 * with qf_ref_requantize like the reference.
 */
#include "kernels/portable/qfast.h"

#include <string.h>

#include "kernels/ref/qref_util.h"

/* Scratch the general path packs per band (about L2 size). */
#define CONV_BAND_BYTES ((size_t)256 << 10)
/* Depthwise output rows are accumulated in blocks of this many pixels. */
#define DW_BLOCK 8

#if defined(__GNUC__)
#define QF_FAST_NOINLINE __attribute__((noinline))
#else
#define QF_FAST_NOINLINE
#endif

typedef struct conv_plan {
    int64_t cpg, opg;   /* input / output channels per group */
    int64_t npix;       /* out_h * out_w */
    int32_t k, kp;      /* taps per output, widened row stride */
    bool depthwise;     /* cpg == 1: direct loop */
    bool pointwise;     /* 1x1, stride 1, no padding: im2row is a transpose */
    int64_t band;       /* general: pixels per band; depthwise: output rows per band */
    bool unit;          /* depthwise with unit strides: whole-band taps */
    int64_t owp;        /* depthwise: out_w rounded up to DW_BLOCK */
    int64_t pw;         /* depthwise: padded plane width (a multiple of DW_BLOCK if unit) */
    size_t acc_elems;   /* depthwise: uint32 accumulators */
    size_t plane_elems; /* depthwise: int16 elements of the plane band (with slack) */
    size_t bytes;       /* scratch needed, alignment slack included; 0 = infeasible */
} conv_plan;

/* Padded input rows a band of n output rows reads. */
static int64_t dw_plane_rows(const qf_ref_conv_params *p, int64_t n) {
    return (n - 1) * p->stride_h + (int64_t)(p->k_h - 1) * p->dil_h + 1;
}

/* Geometry-only plan; assumes the shape fields are >= 1 and consistent. */
static void make_plan(const qf_ref_conv_params *p, conv_plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->cpg = p->in_c / p->groups;
    pl->opg = p->out_c / p->groups;
    pl->npix = (int64_t)p->out_h * p->out_w;
    const int64_t khw = (int64_t)p->k_h * p->k_w; /* < 2^62 */
    if (khw > INT32_MAX || pl->cpg > INT32_MAX / khw) return;
    const int64_t k = pl->cpg * khw;
    pl->kp = qf_fast_row_stride(k);
    if (pl->kp == 0) return;
    pl->k = (int32_t)k;
    pl->depthwise = pl->cpg == 1;
    pl->pointwise = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                    p->pad_top == 0 && p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
    if (!pl->depthwise) {
        /* each pixel's row and its int32 sum (asymmetric weights) */
        const uint64_t row = (uint64_t)pl->kp * sizeof(int16_t) + sizeof(int32_t);
        int64_t band = (int64_t)(CONV_BAND_BYTES / row);
        if (band < 4) band = 4;
        if (band > pl->npix) band = pl->npix;
        if ((uint64_t)band * row > QF_FAST_SCRATCH_MAX) return;
        pl->band = band;
        pl->bytes = (size_t)((uint64_t)band * row) + QF_FAST_SCRATCH_ALIGN;
        return;
    }
    /* depthwise: accumulators, then the padded plane band */
    pl->unit = p->stride_h == 1 && p->stride_w == 1;
    pl->owp = ((int64_t)p->out_w + DW_BLOCK - 1) / DW_BLOCK * DW_BLOCK;
    pl->pw = (pl->owp - 1) * p->stride_w + (int64_t)(p->k_w - 1) * p->dil_w + 1;
    if (pl->unit) pl->pw = (pl->pw + DW_BLOCK - 1) / DW_BLOCK * DW_BLOCK;
    /* a unit-stride tap reads up to (k_w - 1) * dil_w past the last row */
    const int64_t slack = pl->unit ? (int64_t)(p->k_w - 1) * p->dil_w : 0;
    const int64_t limit = (int64_t)(QF_FAST_SCRATCH_MAX / 4);
    if (pl->owp > limit || pl->pw > limit || slack > limit) return;
    /* below `limit` every product here stays under 2^53: no overflow */
    int64_t band = p->out_h;
    uint64_t acc = 0, plane = 0;
    for (;;) {
        const int64_t rows = dw_plane_rows(p, band);
        bool fits = rows <= limit;
        if (fits) {
            acc = pl->unit ? (uint64_t)band * (uint64_t)pl->pw : (uint64_t)pl->owp;
            plane = (uint64_t)rows * (uint64_t)pl->pw + (uint64_t)slack;
            fits = acc * sizeof(uint32_t) + plane * sizeof(int16_t) <= CONV_BAND_BYTES;
        }
        if (fits || band == 1) break;
        band = band / 2; /* the working set stays near CONV_BAND_BYTES */
    }
    if (dw_plane_rows(p, band) > limit ||
        acc * sizeof(uint32_t) + plane * sizeof(int16_t) > QF_FAST_SCRATCH_MAX)
        return;
    pl->band = band;
    pl->acc_elems = (size_t)acc;
    pl->plane_elems = (size_t)plane;
    pl->bytes = pl->acc_elems * sizeof(uint32_t) + pl->plane_elems * sizeof(int16_t) +
                QF_FAST_SCRATCH_ALIGN;
}

/* a * b * c * d elements fit in size_t and int64 (all >= 1). */
static bool dims_fit(int32_t a, int32_t b, int32_t c, int32_t d) {
    size_t n;
    return qf_mul_size((size_t)a, (size_t)b, &n) && qf_mul_size(n, (size_t)c, &n) &&
           qf_mul_size(n, (size_t)d, &n) && n <= (size_t)INT64_MAX;
}

static bool shape_ok(const qf_ref_conv_params *p) {
    if (p->batch < 1 || p->in_c < 1 || p->out_c < 1 || p->groups < 1 || p->in_c % p->groups ||
        p->out_c % p->groups || p->in_h < 1 || p->in_w < 1)
        return false;
    int32_t oh =
        qf_ref_conv_out_size(p->in_h, p->k_h, p->stride_h, p->dil_h, p->pad_top, p->pad_bottom);
    int32_t ow =
        qf_ref_conv_out_size(p->in_w, p->k_w, p->stride_w, p->dil_w, p->pad_left, p->pad_right);
    if (oh < 1 || ow < 1 || oh != p->out_h || ow != p->out_w) return false;
    /* every tensor must be addressable */
    return dims_fit(p->batch, p->in_c, p->in_h, p->in_w) &&
           dims_fit(p->batch, p->out_c, p->out_h, p->out_w);
}

size_t qf_fast_conv2d_s8_scratch_size(const qf_ref_conv_params *p) {
    if (!p || !shape_ok(p)) return 0;
    conv_plan pl;
    make_plan(p, &pl);
    return pl.bytes;
}

/* ---- general path --------------------------------------------------------- */

/* Rows for output pixels [p0, p0 + n) of one group: x points at the group's
 * first input channel plane of the current image. */
static void im2row(const qf_ref_conv_params *p, const conv_plan *pl, const int8_t *x, int64_t p0,
                   int64_t n, int16_t *dst) {
    const int16_t zp = (int16_t)p->in_zp;
    const int64_t in_h = p->in_h, in_w = p->in_w, kh = p->k_h, kw = p->k_w;
    const int64_t plane = in_h * in_w;
    int64_t oy = p0 / p->out_w, ox = p0 % p->out_w;
    for (int64_t j = 0; j < n; j++) {
        int16_t *d = dst + (size_t)j * (size_t)pl->kp;
        const int64_t iy0 = oy * p->stride_h - p->pad_top;
        const int64_t ix0 = ox * p->stride_w - p->pad_left;
        const bool cols_inside = ix0 >= 0 && ix0 + (kw - 1) * p->dil_w < in_w;
        for (int64_t ic = 0; ic < pl->cpg; ic++) {
            const int8_t *xc = x + (size_t)(ic * plane);
            for (int64_t ky = 0; ky < kh; ky++, d += kw) {
                const int64_t iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= in_h) {
                    for (int64_t kx = 0; kx < kw; kx++)
                        d[kx] = 0;
                    continue;
                }
                const int8_t *row = xc + (size_t)(iy * in_w);
                if (cols_inside) {
                    for (int64_t kx = 0; kx < kw; kx++)
                        d[kx] = (int16_t)(row[ix0 + kx * p->dil_w] - zp);
                } else {
                    for (int64_t kx = 0; kx < kw; kx++) {
                        const int64_t ix = ix0 + kx * p->dil_w;
                        d[kx] = ix < 0 || ix >= in_w ? 0 : (int16_t)(row[ix] - zp);
                    }
                }
            }
        }
        for (int64_t t = pl->k; t < pl->kp; t++)
            d[t - pl->k] = 0;
        if (++ox == p->out_w) {
            ox = 0;
            oy++;
        }
    }
}

/* 1x1 stride 1 without padding: row j is the channel vector of pixel p0 + j.
 * Blocks of 16 pixels keep both sides of the transpose in L1. */
static void pack_pointwise(const qf_ref_conv_params *p, const conv_plan *pl, const int8_t *x,
                           int64_t p0, int64_t n, int16_t *dst) {
    const int16_t zp = (int16_t)p->in_zp;
    const size_t kp = (size_t)pl->kp;
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int64_t jn = n - j0 < 16 ? n - j0 : 16;
        for (int64_t ic = 0; ic < pl->cpg; ic++) {
            const int8_t *src = x + (size_t)(ic * pl->npix + p0 + j0);
            int16_t *d = dst + (size_t)j0 * kp + (size_t)ic;
            for (int64_t j = 0; j < jn; j++)
                d[(size_t)j * kp] = (int16_t)(src[j] - zp);
        }
        for (int64_t j = j0; j < j0 + jn; j++) {
            int16_t *d = dst + (size_t)j * kp;
            for (int64_t t = pl->k; t < pl->kp; t++)
                d[t] = 0;
        }
    }
}

static void conv_general(const qf_ref_conv_params *p, const conv_plan *pl, const int8_t *in,
                         const qf_fast_weights *w, const int32_t *bias, int8_t *out,
                         int16_t *band) {
    int32_t *sums = (int32_t *)(void *)(band + (size_t)pl->band * (size_t)pl->kp);
    const int64_t in_plane = (int64_t)p->in_h * p->in_w;
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t g = 0; g < p->groups; g++) {
            const int8_t *xg = in + (size_t)((b * p->in_c + g * pl->cpg) * in_plane);
            int8_t *og = out + (size_t)((b * p->out_c + g * pl->opg) * pl->npix);
            for (int64_t p0 = 0; p0 < pl->npix; p0 += pl->band) {
                const int64_t n = pl->npix - p0 < pl->band ? pl->npix - p0 : pl->band;
                if (pl->pointwise)
                    pack_pointwise(p, pl, xg, p0, n, band);
                else
                    im2row(p, pl, xg, p0, n, band);
                if (w->zp) qf_fast_row_sums(band, (size_t)w->kp, n, sums);
                qf_fast_panel pp = {.w = w->data + (size_t)(g * pl->opg) * (size_t)w->kp,
                                    .x = band,
                                    .kp = (size_t)w->kp,
                                    .rows = (int32_t)pl->opg,
                                    .npix = n,
                                    .bias = bias,
                                    .zp = w->zp,
                                    .xsum = sums,
                                    .ch0 = (int32_t)(g * pl->opg),
                                    .rq = &p->rq,
                                    .out = og + p0,
                                    .ld_ch = (ptrdiff_t)pl->npix,
                                    .ld_px = 1};
                qf_fast_panel_s8(&pp);
            }
        }
    }
}

/* ---- depthwise path ------------------------------------------------------- */

/* acc[i] += wv * src[i] for i < nblk * DW_BLOCK (contiguous taps: stride 1).
 * Out of line for the same reason as the gemm micro-kernels. */
QF_FAST_NOINLINE static void dw_tap_unit(uint32_t *acc, const int16_t *src, int32_t wv,
                                         size_t nblk) {
    const size_t n = nblk * DW_BLOCK;
    const int16_t w16 = (int16_t)wv;
    for (size_t i = 0; i < n; i++)
        acc[i] += (uint32_t)(w16 * src[i]);
}

static void dw_tap_strided(uint32_t *acc, const int16_t *src, int32_t wv, size_t n, size_t stride) {
    for (size_t i = 0; i < n; i++)
        acc[i] += (uint32_t)(wv * src[i * stride]);
}

/* Zero-padded (q_x - in_zp) rows for output rows starting at oy0: plane row
 * r is input row oy0 * stride_h - pad_top + r, column c input column
 * c - pad_left. */
static void dw_fill_plane(const qf_ref_conv_params *p, const conv_plan *pl, const int8_t *xc,
                          int64_t oy0, int64_t rows, int16_t *plane) {
    const int16_t zp = (int16_t)p->in_zp;
    const size_t used = (size_t)(rows * pl->pw);
    memset(plane + used, 0, (pl->plane_elems - used) * sizeof(int16_t));
    for (int64_t r = 0; r < rows; r++) {
        const int64_t iy = oy0 * p->stride_h - p->pad_top + r;
        int16_t *d = plane + (size_t)(r * pl->pw);
        if (iy < 0 || iy >= p->in_h) {
            memset(d, 0, (size_t)pl->pw * sizeof(int16_t));
            continue;
        }
        const int8_t *src = xc + (size_t)(iy * p->in_w);
        for (int64_t c = 0; c < pl->pw; c++) {
            const int64_t ix = c - p->pad_left;
            d[c] = ix < 0 || ix >= p->in_w ? 0 : (int16_t)(src[ix] - zp);
        }
    }
}

/* Requantize one output row of sums. */
static void dw_store_row(const qf_ref_requant *rq, const qf_ref_rescale *r, uint32_t bv,
                         const uint32_t *acc, int8_t *o, int64_t n) {
    for (int64_t ox = 0; ox < n; ox++)
        o[ox] = (int8_t)qf_ref_requantize(rq->mode, (int32_t)(acc[ox] + bv), r, rq->out_zp,
                                          rq->act_min, rq->act_max);
}

/* Output rows [oy0, oy0 + nrows) of channel oc from the plane band. */
static void dw_band(const qf_ref_conv_params *p, const conv_plan *pl, const int8_t *wr, int32_t zr,
                    const int16_t *plane, int64_t nrows, uint32_t *acc, const qf_ref_rescale *r,
                    uint32_t bv, int8_t *o) {
    const qf_ref_requant *rq = &p->rq;
    if (pl->unit) {
        /* acc[y * pw + x] = output (oy0 + y, x); a tap shifts the plane */
        const size_t n = (size_t)(nrows * pl->pw);
        memset(acc, 0, n * sizeof(uint32_t));
        for (int64_t ky = 0; ky < p->k_h; ky++)
            for (int64_t kx = 0; kx < p->k_w; kx++)
                dw_tap_unit(acc, plane + (size_t)(ky * p->dil_h * pl->pw + kx * p->dil_w),
                            wr[ky * p->k_w + kx] - zr, n / DW_BLOCK);
        for (int64_t y = 0; y < nrows; y++)
            dw_store_row(rq, r, bv, acc + (size_t)(y * pl->pw), o + (size_t)(y * p->out_w),
                         p->out_w);
        return;
    }
    for (int64_t y = 0; y < nrows; y++) {
        memset(acc, 0, (size_t)pl->owp * sizeof(uint32_t));
        for (int64_t ky = 0; ky < p->k_h; ky++) {
            const int16_t *prow = plane + (size_t)((y * p->stride_h + ky * p->dil_h) * pl->pw);
            for (int64_t kx = 0; kx < p->k_w; kx++) {
                const int16_t *src = prow + (size_t)(kx * p->dil_w);
                if (p->stride_w == 1)
                    dw_tap_unit(acc, src, wr[ky * p->k_w + kx] - zr, (size_t)pl->owp / DW_BLOCK);
                else
                    dw_tap_strided(acc, src, wr[ky * p->k_w + kx] - zr, (size_t)pl->owp,
                                   (size_t)p->stride_w);
            }
        }
        dw_store_row(rq, r, bv, acc, o + (size_t)(y * p->out_w), p->out_w);
    }
}

static void conv_depthwise(const qf_ref_conv_params *p, const conv_plan *pl, const int8_t *in,
                           const qf_fast_weights *w, const int32_t *bias, int8_t *out,
                           uint32_t *acc, int16_t *plane) {
    const int64_t in_plane = (int64_t)p->in_h * p->in_w;
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t ic = 0; ic < p->in_c; ic++) {
            const int8_t *xc = in + (size_t)((b * p->in_c + ic) * in_plane);
            for (int64_t oy0 = 0; oy0 < p->out_h; oy0 += pl->band) {
                const int64_t nrows = p->out_h - oy0 < pl->band ? p->out_h - oy0 : pl->band;
                dw_fill_plane(p, pl, xc, oy0, dw_plane_rows(p, nrows), plane);
                for (int64_t j = 0; j < pl->opg; j++) {
                    const int64_t oc = ic * pl->opg + j;
                    int8_t *o = out + (size_t)(((b * p->out_c + oc) * p->out_h + oy0) * p->out_w);
                    dw_band(p, pl, w->data + (size_t)oc * (size_t)w->kp, w->zp ? w->zp[oc] : 0,
                            plane, nrows, acc, qr_mult_of(&p->rq, oc),
                            bias ? (uint32_t)bias[oc] : 0u, o);
                }
            }
        }
    }
}

/* ---- entry point ------------------------------------------------------------ */

qf_status qf_fast_conv2d_s8(const qf_ref_conv_params *p, const int8_t *in, const qf_fast_weights *w,
                            const int32_t *bias, int8_t *out, void *scratch, size_t scratch_bytes,
                            qf_err *err) {
    const char *who = "qf_fast_conv2d_s8";
    if (!p || !in || !w || !w->data || !out || !scratch)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (!shape_ok(p))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: batch %d in_c %d out_c %d groups %d, %dx%d -> %dx%d inconsistent", who,
                       (int)p->batch, (int)p->in_c, (int)p->out_c, (int)p->groups, (int)p->in_h,
                       (int)p->in_w, (int)p->out_h, (int)p->out_w);
    if (!qr_in_range(p->in_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    qf_status s = qr_check_requant(&p->rq, p->out_c, -128, 127, who, err);
    if (s != QF_OK) return s;
    conv_plan pl;
    make_plan(p, &pl);
    if (w->rows != p->out_c || pl.kp == 0 || w->k != pl.k || w->kp != pl.kp)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: widened weights are %d x %d (stride %d), expected %d x %d", who,
                       (int)w->rows, (int)w->k, (int)w->kp, (int)p->out_c, (int)pl.k);
    if (pl.bytes == 0 || scratch_bytes < pl.bytes)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scratch of %zu bytes, need %zu", who,
                       scratch_bytes, pl.bytes);
    void *base = qf_fast_scratch_base(scratch);
    if (pl.depthwise) {
        uint32_t *acc = base;
        int16_t *plane = (int16_t *)(acc + pl.acc_elems);
        conv_depthwise(p, &pl, in, w, bias, out, acc, plane);
    } else {
        conv_general(p, &pl, in, w, bias, out, base);
    }
    return QF_OK;
}
