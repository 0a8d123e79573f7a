/* qx86_conv.c - the x86 int8 convolution driver (qx86.h): plans the
 * stride-phase planes and slot bands, packs activations (SSE2 byte
 * interleave, baseline x86-64), splits the tiles over the thread pool and
 * calls the ISA's micro-kernel. Bit-identical to qf_ref_conv2d_s8. */
#include "kernels/x86/qx86.h"

/* see qx86.h */
static _Atomic double serial_macs = (double)(1 << 19);
double qf_x86_serial_macs(void) { return serial_macs; }
void qf_x86_set_serial_macs(double macs) { serial_macs = macs; }

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

/* Packed activation band shared by all threads (about half an L2). */
#define BAND_BYTES ((size_t)384 << 10)
/* Largest scratch this path asks for; bigger layers use another kernel. */
#define SCRATCH_MAX ((size_t)1 << 30)

typedef struct cplan {
    int64_t cpg, opg, k, k4, nb;
    int64_t hq, wq;      /* slot grid per image */
    int64_t pb;          /* bytes of one phase plane (all images) */
    int64_t ic_stride;   /* bytes between input channels in the source */
    bool direct;         /* read the input in place (stride 1, no pads) */
    int64_t img_stride;  /* source bytes between images at the same (ic, y, x) */
    bool grid;           /* slots on the phase grid, else one per output pixel */
    int64_t slots;       /* slots up to the last useful one */
    int64_t band_slots;  /* multiple of QX_CONV_SLOTS */
    int64_t rows_p;      /* packed rows: groups * nb * 8 */
    size_t planes_bytes, band_bytes, taps_off, corr_off, mult_off, mq_off, shift_off, total;
} cplan;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static bool shape_ok(const qf_ref_conv_params *p) {
    if (p->batch < 1 || p->in_c < 1 || p->out_c < 1 || p->groups < 1 || p->in_c % p->groups ||
        p->out_c % p->groups || p->in_h < 1 || p->in_w < 1 || p->stride_h < 1 ||
        p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1)
        return false;
    int32_t oh =
        qf_ref_conv_out_size(p->in_h, p->k_h, p->stride_h, p->dil_h, p->pad_top, p->pad_bottom);
    int32_t ow =
        qf_ref_conv_out_size(p->in_w, p->k_w, p->stride_w, p->dil_w, p->pad_left, p->pad_right);
    return oh >= 1 && ow >= 1 && oh == p->out_h && ow == p->out_w;
}

/* Every size below is checked against SCRATCH_MAX (2^30), so int64
 * products of a few of them cannot overflow. */
static bool make_plan(const qf_ref_conv_params *p, cplan *pl) {
    memset(pl, 0, sizeof *pl);
    if (!shape_ok(p)) return false;
    pl->cpg = p->in_c / p->groups;
    pl->opg = p->out_c / p->groups;
    const int64_t khw = (int64_t)p->k_h * p->k_w;
    if (khw > INT32_MAX || pl->cpg > (INT32_MAX - 3) / khw) return false;
    pl->k = pl->cpg * khw;
    pl->k4 = (pl->k + 3) / 4;
    pl->nb = (pl->opg + QX_CONV_ROWS - 1) / QX_CONV_ROWS;
    const int64_t sh = p->stride_h, sw = p->stride_w;
    const int64_t hp = (int64_t)p->pad_top + p->in_h + p->pad_bottom;
    const int64_t wp = (int64_t)p->pad_left + p->in_w + p->pad_right;
    pl->direct = sh == 1 && sw == 1 && p->pad_top == 0 && p->pad_left == 0 &&
                 p->pad_bottom == 0 && p->pad_right == 0;
    const double lim = (double)SCRATCH_MAX;
    if (pl->direct) {
        /* the NCHW input itself: channel planes of in_h x in_w, images
         * in_c planes apart */
        pl->hq = p->in_h;
        pl->wq = p->in_w;
        if ((double)pl->hq * (double)pl->wq * (double)p->in_c * (double)p->batch > lim)
            return false;
        pl->pb = pl->hq * pl->wq;
        pl->ic_stride = pl->pb;
        pl->img_stride = (int64_t)p->in_c * pl->pb;
        pl->planes_bytes = 0;
    } else {
        pl->hq = (hp + sh - 1) / sh;
        pl->wq = (wp + sw - 1) / sw;
        double planes = (double)p->in_c * (double)(sh * sw) * (double)p->batch *
                        (double)pl->hq * (double)pl->wq;
        if (planes > lim) return false;
        pl->pb = (int64_t)p->batch * pl->hq * pl->wq;
        pl->ic_stride = sh * sw * pl->pb;
        pl->img_stride = pl->hq * pl->wq;
        pl->planes_bytes = (size_t)(p->in_c * pl->ic_stride);
    }
    /* Slots: either the stride-phase grid (b, y < hq, x < wq: every tap of
     * 16 consecutive slots is one 16-byte load, but columns and rows of
     * padding are computed and dropped) or one slot per output pixel (no
     * wasted work; blocks that span rows are packed from several loads).
     * The grid is kept when it does not add tiles (mostly batch 1). */
    const int64_t grid_slots = (int64_t)(p->batch - 1) * pl->hq * pl->wq +
                               (int64_t)(p->out_h - 1) * pl->wq + p->out_w;
    const int64_t px_slots = (int64_t)p->batch * p->out_h * p->out_w;
    const int64_t gt = (grid_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
    const int64_t pt = (px_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
    /* (the grid needs images one grid apart: not so in a direct batch) */
    pl->grid = gt * 100 <= pt * 103 && !(pl->direct && p->batch > 1);
    pl->slots = pl->grid ? grid_slots : px_slots;
    const int64_t slot_bytes = pl->k4 * 4;
    int64_t band = (int64_t)(BAND_BYTES / (size_t)slot_bytes) / QX_CONV_SLOTS * QX_CONV_SLOTS;
    if (band < QX_CONV_SLOTS) band = QX_CONV_SLOTS;
    const int64_t all = (pl->slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS * QX_CONV_SLOTS;
    if (band > all) band = all;
    pl->band_slots = band;
    if ((double)band * (double)slot_bytes > lim) return false;
    pl->band_bytes = (size_t)(band * slot_bytes);
    pl->rows_p = (int64_t)p->groups * pl->nb * QX_CONV_ROWS;
    if ((double)pl->rows_p * 8.0 + (double)pl->k * 8.0 > lim) return false;
    size_t off = align64(pl->planes_bytes);
    off += align64(pl->band_bytes);
    pl->taps_off = off;
    off += align64((size_t)pl->k * sizeof(int64_t));
    pl->corr_off = off;
    off += align64((size_t)pl->rows_p * sizeof(int32_t));
    pl->mult_off = off;
    off += align64((size_t)pl->rows_p * sizeof(float));
    pl->mq_off = off;
    off += align64((size_t)pl->rows_p * sizeof(int32_t));
    pl->shift_off = off;
    off += align64((size_t)pl->rows_p * sizeof(int32_t));
    if (off > SCRATCH_MAX) return false;
    pl->total = off + 64; /* alignment slack */
    return true;
}

/* A batch of images that need no padded copy (stride 1, no pads: 1x1
 * convolutions, mostly) runs image by image on the input in place, unless
 * rounding each image's slots up to a whole tile wastes more than ~7% of the
 * work (small images, e.g. 7x7 or 14x14, are better folded into one slot grid
 * at the price of the copy). */
static bool per_image(const qf_ref_conv_params *p) {
    if (p->batch < 2 || p->stride_h != 1 || p->stride_w != 1 || p->pad_top || p->pad_left ||
        p->pad_bottom || p->pad_right)
        return false;
    const int64_t hw = (int64_t)p->in_h * p->in_w;
    const int64_t rounded = (hw + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS * QX_CONV_SLOTS;
    return rounded * 100 <= hw * 107;
}

size_t qf_x86_conv2d_s8_scratch_size(const qf_ref_conv_params *p) {
    cplan pl;
    if (!p) return 0;
    qf_ref_conv_params one;
    if (per_image(p)) {
        one = *p;
        one.batch = 1;
        p = &one;
    }
    if (!make_plan(p, &pl)) return 0;
    return pl.total;
}

/* ---- shared state of one call ---------------------------------------------- */

typedef struct conv_job {
    const qf_ref_conv_params *p;
    const cplan *pl;
    const qf_x86_weights *w;
    const qx_ukernels *uk;
    const int8_t *in;
    int8_t *out;
    uint8_t *planes;
    uint8_t *band;
    const int64_t *taps;
    const int32_t *corr;
    const float *mult;
    const int32_t *mq, *shift;
    bool fixed_vec;
    const uint8_t *src; /* planes or the input */
    int64_t src_len;
    int64_t tap_max; /* largest tap offset */
    uint64_t phases; /* bit py * sw + px: a tap reads that stride phase */
    /* current group and band: tasks are n_pt runs of ppt slot pairs times
     * n_cc chunks of cb channel blocks */
    int64_t g, s0, n_pairs, ppt, n_pt, n_cc, cb;
} conv_job;

/* n bytes from s to d (not overlapping): 16-byte moves, the last one
 * overlapping the previous when n is not a multiple of 16. */
static inline void copy_row(uint8_t *d, const uint8_t *s, int64_t n) {
    if (n < 16) {
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i];
        return;
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
    if (i < n)
        _mm_storeu_si128((__m128i *)(d + n - 16), _mm_loadu_si128((const __m128i *)(s + n - 16)));
}

/* Fill the stride-phase planes of input channel ic of image b. */
static void fill_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t ic = task / p->batch, b = task % p->batch;
    const int64_t sh = p->stride_h, sw = p->stride_w;
    const int8_t zp = (int8_t)p->in_zp;
    for (int64_t py = 0; py < sh; py++) {
        for (int64_t px = 0; px < sw; px++) {
            /* a phase no tap reads (1x1 stride 2: three of four) is never
             * filled; loads that run past a used plane into it only feed
             * lanes whose results are dropped */
            const int64_t ph = py * sw + px;
            if (ph < 64 && !((j->phases >> ph) & 1)) continue;
            uint8_t *plane = j->planes + ic * pl->ic_stride + ph * pl->pb + b * pl->hq * pl->wq;
            for (int64_t jy = 0; jy < pl->hq; jy++) {
                uint8_t *d = plane + jy * pl->wq;
                const int64_t iy = jy * sh + py - p->pad_top;
                if (iy < 0 || iy >= p->in_h) {
                    memset(d, (uint8_t)zp, (size_t)pl->wq);
                    continue;
                }
                const int8_t *row = j->in + ((b * p->in_c + ic) * p->in_h + iy) * p->in_w;
                if (sw == 1) {
                    /* columns i read input column i - pad_left; rows are
                     * short (7-224 bytes), so no library calls */
                    int64_t i0 = p->pad_left < pl->wq ? p->pad_left : pl->wq;
                    int64_t i1 = p->pad_left + p->in_w < pl->wq ? p->pad_left + p->in_w : pl->wq;
                    for (int64_t i = 0; i < i0; i++)
                        d[i] = (uint8_t)zp;
                    copy_row(d + i0, (const uint8_t *)row, i1 - i0);
                    for (int64_t i = i1; i < pl->wq; i++)
                        d[i] = (uint8_t)zp;
                } else if (sw == 2) {
                    /* column i reads input column 2i + off when inside the row */
                    const int64_t off = px - p->pad_left;
                    int64_t i_lo = off >= 0 ? 0 : (1 - off) / 2;
                    int64_t i_end = p->in_w - 1 - off >= 0 ? (p->in_w - 1 - off) / 2 + 1 : 0;
                    if (i_end > pl->wq) i_end = pl->wq;
                    if (i_lo > i_end) i_lo = i_end;
                    for (int64_t i = 0; i < i_lo; i++)
                        d[i] = (uint8_t)zp;
                    int64_t i = i_lo;
                    const __m128i even = _mm_set1_epi16(0x00FF);
                    const uint8_t *r8 = (const uint8_t *)row;
                    /* 32 input bytes -> their 16 even bytes */
                    for (; i + 16 <= i_end && 2 * i + off + 32 <= p->in_w; i += 16) {
                        const uint8_t *q = r8 + 2 * i + off;
                        const __m128i a = _mm_loadu_si128((const __m128i *)q);
                        const __m128i c = _mm_loadu_si128((const __m128i *)(q + 16));
                        _mm_storeu_si128((__m128i *)(d + i),
                                         _mm_packus_epi16(_mm_and_si128(a, even),
                                                          _mm_and_si128(c, even)));
                    }
                    for (; i < i_end; i++)
                        d[i] = r8[2 * i + off];
                    for (i = i_end; i < pl->wq; i++)
                        d[i] = (uint8_t)zp;
                } else {
                    for (int64_t i = 0; i < pl->wq; i++) {
                        const int64_t ix = i * sw + px - p->pad_left;
                        d[i] = (uint8_t)(ix < 0 || ix >= p->in_w ? zp : row[ix]);
                    }
                }
            }
        }
    }
}

/* 16 source bytes at idx, zero point beyond the end of the source. */
static inline __m128i load16(const conv_job *j, int64_t idx) {
    if (idx + 16 <= j->src_len) return _mm_loadu_si128((const __m128i *)(j->src + idx));
    uint8_t tmp[16];
    for (int i = 0; i < 16; i++)
        tmp[i] = idx + i < j->src_len ? j->src[idx + i] : (uint8_t)(int8_t)j->p->in_zp;
    return _mm_loadu_si128((const __m128i *)tmp);
}

/* 4 taps of 16 slots -> 16 lanes of 4 bytes, sign bit flipped (q + 128). */
static inline void interleave4(__m128i v0, __m128i v1, __m128i v2, __m128i v3, uint8_t *d) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const __m128i a = _mm_unpacklo_epi8(v0, v1), b = _mm_unpacklo_epi8(v2, v3);
    const __m128i c = _mm_unpackhi_epi8(v0, v1), e = _mm_unpackhi_epi8(v2, v3);
    _mm_storeu_si128((__m128i *)d, _mm_xor_si128(_mm_unpacklo_epi16(a, b), flip));
    _mm_storeu_si128((__m128i *)(d + 16), _mm_xor_si128(_mm_unpackhi_epi16(a, b), flip));
    _mm_storeu_si128((__m128i *)(d + 32), _mm_xor_si128(_mm_unpacklo_epi16(c, e), flip));
    _mm_storeu_si128((__m128i *)(d + 48), _mm_xor_si128(_mm_unpackhi_epi16(c, e), flip));
}

/* Pack 16-slot block `task` of the current band into [k4][16][4]. */
/* Pack the 16 slots starting at s into d ([k4][16][4], u8). Slot = output
 * pixel; its tap t reads the source at pos(b, oy, ox) + taps[t], where pos
 * is the pixel's place in the phase planes (or the input, direct). The 16
 * pixels form runs along output rows; within a run consecutive pixels have
 * consecutive positions, so each run is one 16-byte load per tap, masked to
 * its lanes (lanes past the last slot repeat the last run: computed, never
 * stored). */
/* Only ever called with an AVX2 or AVX-512 ISA active (qf_x86_isa_usable),
 * so it may use AVX2 encodings and SSE4.1 blends. */
__attribute__((target("avx2"))) static void pack_block(const conv_job *j, int64_t s,
                                                       uint8_t *d) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t ohw = (int64_t)p->out_h * p->out_w;
    const int64_t gbase = j->g * pl->cpg * pl->ic_stride;
    int64_t start[16]; /* source index of lane 0 for each run */
    __m128i mask[16];
    int nr = 0;
    if (pl->grid) {
        start[0] = gbase + s; /* consecutive slots, consecutive bytes */
        mask[0] = _mm_set1_epi8(-1);
        nr = 1;
    } else if (s < pl->slots) {
        int64_t b = s / ohw, rem = s % ohw, oy = rem / p->out_w, ox = rem % p->out_w;
        int64_t lane = 0;
        const __m128i lanes = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        while (lane < 16) {
            int64_t n = p->out_w - ox < 16 - lane ? p->out_w - ox : 16 - lane;
            const bool last = b * ohw + oy * p->out_w + ox + n >= pl->slots;
            if (last) n = 16 - lane;
            start[nr] = gbase + b * pl->img_stride + oy * pl->wq + ox - lane;
            /* lanes [lane, lane + n) */
            const __m128i lo = _mm_set1_epi8((char)(lane - 1)), hi = _mm_set1_epi8((char)(lane + n));
            mask[nr] = _mm_and_si128(_mm_cmpgt_epi8(lanes, lo), _mm_cmplt_epi8(lanes, hi));
            nr++;
            if (last) break;
            lane += n;
            ox += n;
            if (ox == p->out_w) {
                ox = 0;
                if (++oy == p->out_h) {
                    oy = 0;
                    b++;
                }
            }
        }
    }
    if (nr == 0) { /* a block past the last slot: computed, never stored */
        memset(d, 0, (size_t)pl->k4 * 64);
        return;
    }
    const int64_t last_tap = pl->k - 1;
    if (nr == 1) {
        const int64_t base = start[0];
        if (base + j->tap_max + 16 <= j->src_len) {
            /* every load of this block is inside the source: no bounds checks */
            const uint8_t *src = j->src + base;
            const int64_t *tp = j->taps;
            const int64_t full = pl->k / 4;
            for (int64_t kk = 0; kk < full; kk++, d += 64, tp += 4)
                interleave4(_mm_loadu_si128((const __m128i *)(src + tp[0])),
                            _mm_loadu_si128((const __m128i *)(src + tp[1])),
                            _mm_loadu_si128((const __m128i *)(src + tp[2])),
                            _mm_loadu_si128((const __m128i *)(src + tp[3])), d);
            if (full == pl->k4) return;
            /* the last, partial group: taps past k meet zero weights */
            const int64_t t = full * 4;
            interleave4(
                _mm_loadu_si128((const __m128i *)(src + j->taps[t])),
                _mm_loadu_si128((const __m128i *)(src + j->taps[t + 1 <= last_tap ? t + 1 : last_tap])),
                _mm_loadu_si128((const __m128i *)(src + j->taps[t + 2 <= last_tap ? t + 2 : last_tap])),
                _mm_loadu_si128((const __m128i *)(src + j->taps[last_tap])), d);
            return;
        }
    }
    /* several runs (rows shorter than 16 pixels, row or image ends) or a
     * block near the end of the source */
    bool inside = true;
    for (int r = 0; r < nr; r++)
        if (start[r] + j->tap_max + 16 > j->src_len) inside = false;
    if (nr == 2 && inside) {
        /* the common case of a row break inside the block: one blend per tap */
        const uint8_t *s0 = j->src + start[0], *s1 = j->src + start[1];
        const __m128i m = mask[0];
        for (int64_t kk = 0; kk < pl->k4; kk++, d += 64) {
            const int64_t t = kk * 4;
            const int64_t o0 = j->taps[t], o1 = j->taps[t + 1 < pl->k ? t + 1 : last_tap];
            const int64_t o2 = j->taps[t + 2 < pl->k ? t + 2 : last_tap];
            const int64_t o3 = j->taps[t + 3 < pl->k ? t + 3 : last_tap];
#define QX_BLEND2(o)                                                                \
    _mm_blendv_epi8(_mm_loadu_si128((const __m128i *)(s1 + (o))),                   \
                    _mm_loadu_si128((const __m128i *)(s0 + (o))), m)
            interleave4(QX_BLEND2(o0), QX_BLEND2(o1), QX_BLEND2(o2), QX_BLEND2(o3), d);
#undef QX_BLEND2
        }
        return;
    }
    for (int64_t kk = 0; kk < pl->k4; kk++, d += 64) {
        const int64_t t = kk * 4;
        /* taps past k meet zero weights: any bytes do, reuse the last tap */
        const int64_t tt[4] = {t, t + 1 < pl->k ? t + 1 : last_tap, t + 2 < pl->k ? t + 2 : last_tap,
                               t + 3 < pl->k ? t + 3 : last_tap};
        __m128i v[4];
        for (int q = 0; q < 4; q++) {
            const int64_t off = j->taps[tt[q]];
            __m128i acc = _mm_setzero_si128();
            for (int r = 0; r < nr; r++) {
                const __m128i x = inside ? _mm_loadu_si128((const __m128i *)(j->src + start[r] + off))
                                         : load16(j, start[r] + off);
                acc = _mm_blendv_epi8(acc, x, mask[r]);
            }
            v[q] = acc;
        }
        interleave4(v[0], v[1], v[2], v[3], d);
    }
}

static void pack_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    pack_block(j, j->s0 + task * 16, j->band + task * j->pl->k4 * 64);
}

/* Output runs of the 16 grid slots starting at s (slots with x >= out_w or
 * y >= out_h are dropped). */
static void make_grid_store(const qf_ref_conv_params *p, const cplan *pl, int64_t s,
                            qx_vec_store *st) {
    const int64_t img = pl->hq * pl->wq;
    const int64_t out_hw = (int64_t)p->out_h * p->out_w;
    int64_t b = s / img, rem = s % img, y = rem / pl->wq, x = rem % pl->wq;
    int64_t lane = 0;
    while (lane < 16) {
        int64_t run = pl->wq - x < 16 - lane ? pl->wq - x : 16 - lane;
        if (b < p->batch && y < p->out_h && x < p->out_w) {
            qx_seg *g = &st->seg[st->n_seg++];
            g->lane = (int32_t)lane;
            g->n = (int32_t)(run < p->out_w - x ? run : p->out_w - x);
            g->off = b * p->out_c * out_hw + y * p->out_w + x;
            g->mask = ((1u << g->n) - 1u) << lane;
        }
        lane += run;
        x += run;
        if (x == pl->wq) {
            x = 0;
            if (++y == pl->hq) {
                y = 0;
                b++;
            }
        }
    }
}

/* Output runs of the 16 slots starting at s: slots are output pixels in
 * (b, oy, ox) order, so a run only breaks where an image ends. */
static void make_store(const qf_ref_conv_params *p, const cplan *pl, int64_t s,
                       qx_vec_store *st) {
    const int64_t out_hw = (int64_t)p->out_h * p->out_w;
    st->n_seg = 0;
    if (pl->grid) {
        make_grid_store(p, pl, s, st);
        return;
    }
    if (s >= pl->slots) return;
    int64_t b = s / out_hw, rem = s % out_hw, lane = 0;
    while (lane < 16 && b < p->batch) {
        const int64_t n = out_hw - rem < 16 - lane ? out_hw - rem : 16 - lane;
        qx_seg *g = &st->seg[st->n_seg++];
        g->lane = (int32_t)lane;
        g->n = (int32_t)n;
        g->off = b * p->out_c * out_hw + rem;
        g->mask = ((1u << g->n) - 1u) << lane;
        lane += n;
        rem = 0;
        b++;
    }
}

/* Tiles of pairs [pair0, pair_end) x channel blocks [blk0, blk1) of the
 * current group: pair0 starts at slot s0 and its packed blocks at a0. */
static void run_tiles(const conv_job *j, int64_t pair0, int64_t pair_end, int64_t s0,
                      const uint8_t *a0, int64_t blk0, int64_t blk1) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    qx_vec_store st[2];
    qx_conv_tile t;
    t.a_stride = (size_t)pl->k4 * 64;
    t.k4 = (int32_t)pl->k4;
    t.maddubs_ok = j->w->maddubs_ok;
    t.ch_stride = (int64_t)p->out_h * p->out_w;
    t.out = j->out;
    t.st = st;
    t.e.rq = &p->rq;
    t.e.fixed_vec = j->fixed_vec;
    for (int64_t pair = pair0; pair < pair_end; pair++) {
        const int64_t s = s0 + (pair - pair0) * QX_CONV_SLOTS;
        make_store(p, pl, s, &st[0]);
        make_store(p, pl, s + 16, &st[1]);
        if (st[0].n_seg == 0 && st[1].n_seg == 0) continue;
        t.a = a0 + 2 * (pair - pair0) * pl->k4 * 64;
        for (int64_t blk = blk0; blk < blk1; blk++) {
            const int64_t pr = (j->g * pl->nb + blk) * QX_CONV_ROWS;
            t.w = j->w->data + pr * pl->k4 * 4;
            const int64_t left = pl->opg - blk * QX_CONV_ROWS;
            t.n_rows = (int32_t)(left < QX_CONV_ROWS ? left : QX_CONV_ROWS);
            t.ch0 = (int32_t)(j->g * pl->opg + blk * QX_CONV_ROWS);
            t.e.corr = j->corr + pr;
            t.e.mult_f = j->mult + pr;
            t.e.mult_q = j->mq + pr;
            t.e.shift = j->shift + pr;
            j->uk->conv_tile(&t);
        }
    }
}

/* Band path: a run of consecutive slot pairs of the packed band and a chunk
 * of channel blocks. Runs rather than single pairs: neighbouring pairs
 * write into the same output cache lines, and two threads taking turns on
 * them would pass the lines back and forth. */
static void compute_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const int64_t run = task / j->n_cc, cc = task % j->n_cc;
    const int64_t pair0 = run * j->ppt;
    const int64_t pair_end = pair0 + j->ppt < j->n_pairs ? pair0 + j->ppt : j->n_pairs;
    const int64_t blk_end = (cc + 1) * j->cb < j->pl->nb ? (cc + 1) * j->cb : j->pl->nb;
    run_tiles(j, pair0, pair_end, j->s0 + pair0 * QX_CONV_SLOTS,
              j->band + 2 * pair0 * j->pl->k4 * 64, cc * j->cb, blk_end);
}

/* Fused path: unit u = pairs [u * upairs, (u + 1) * upairs) of the current
 * group. The task packs its own slots into its thread's part of the band
 * and computes every channel block of them: no barrier between packing and
 * computing, and the packed bytes stay in the core that uses them. */
static void unit_task(void *ctx, int64_t u, int tid) {
    const conv_job *j = ctx;
    const cplan *pl = j->pl;
    const int64_t pair0 = u * j->ppt;
    const int64_t pair_end = pair0 + j->ppt < j->n_pairs ? pair0 + j->ppt : j->n_pairs;
    uint8_t *region = j->band + (size_t)tid * (size_t)j->ppt * 2 * (size_t)pl->k4 * 64;
    for (int64_t pair = pair0; pair < pair_end; pair++)
        for (int h = 0; h < 2; h++)
            pack_block(j, pair * QX_CONV_SLOTS + 16 * h,
                       region + ((pair - pair0) * 2 + h) * pl->k4 * 64);
    run_tiles(j, pair0, pair_end, pair0 * QX_CONV_SLOTS, region, 0, pl->nb);
}

qf_status qf_x86_conv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                           const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                           int8_t *out, void *scratch, size_t scratch_bytes, qf_err *err) {
    const char *who = "qf_x86_conv2d_s8";
    if (!p || !in || !w || !w->data || !out || !scratch)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (per_image(p)) {
        qf_ref_conv_params one = *p;
        one.batch = 1;
        const int64_t in_img = (int64_t)p->in_c * p->in_h * p->in_w;
        const int64_t out_img = (int64_t)p->out_c * p->out_h * p->out_w;
        for (int32_t b = 0; b < p->batch; b++) {
            qf_status s = qf_x86_conv2d_s8(pool, isa, &one, in + b * in_img, w, bias,
                                           out + b * out_img, scratch, scratch_bytes, err);
            if (s) return s;
        }
        return QF_OK;
    }
    cplan pl;
    if (!make_plan(p, &pl))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: batch %d in_c %d out_c %d groups %d, %dx%d -> %dx%d not supported",
                       who, (int)p->batch, (int)p->in_c, (int)p->out_c, (int)p->groups,
                       (int)p->in_h, (int)p->in_w, (int)p->out_h, (int)p->out_w);
    if ((double)pl.slots * (double)p->out_c * (double)pl.k < qf_x86_serial_macs()) pool = NULL;
    if (!qr_in_range(p->in_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    qf_status s = qr_check_requant(&p->rq, p->out_c, -128, 127, who, err);
    if (s != QF_OK) return s;
    if (w->layout != QX_LAYOUT_CONV8 || w->rows != p->out_c || w->k != pl.k ||
        w->groups != p->groups || w->nb != pl.nb)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: packed weights do not match the layer", who);
    if (!qf_x86_isa_usable(isa))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: ISA %s not available", who, qf_isa_name(isa));
    if (scratch_bytes < pl.total)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scratch of %zu bytes, need %zu", who,
                       scratch_bytes, pl.total);
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    conv_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.pl = &pl;
    j.w = w;
    j.uk = isa == QF_ISA_AVX512VNNI ? qx_ukernels_avx512vnni() : qx_ukernels_avx2();
    j.in = in;
    j.out = out;
    j.planes = base;
    j.band = base + align64(pl.planes_bytes);
    int64_t *taps = (int64_t *)(void *)(base + pl.taps_off);
    int32_t *corr = (int32_t *)(void *)(base + pl.corr_off);
    float *mult = (float *)(void *)(base + pl.mult_off);
    int32_t *mq = (int32_t *)(void *)(base + pl.mq_off);
    int32_t *shift = (int32_t *)(void *)(base + pl.shift_off);
    j.mq = mq;
    j.shift = shift;
    j.fixed_vec = true;
    j.taps = taps;
    j.corr = corr;
    j.mult = mult;

    /* tap t = (ic, ky, kx) -> byte offset from a slot's position; the
     * offsets within one channel are computed once (no divisions per tap:
     * this runs on every call) */
    const int64_t sh = p->stride_h, sw = p->stride_w, khw = (int64_t)p->k_h * p->k_w;
    for (int64_t ky = 0, t = 0; ky < p->k_h; ky++) {
        const int64_t ry = ky * p->dil_h;
        for (int64_t kx = 0; kx < p->k_w; kx++, t++) {
            const int64_t rx = kx * p->dil_w;
            taps[t] = ((ry % sh) * sw + rx % sw) * pl.pb + (ry / sh) * pl.wq + rx / sw;
        }
    }
    for (int64_t ic = 1; ic < pl.cpg; ic++)
        for (int64_t t = 0; t < khw; t++)
            taps[ic * khw + t] = ic * pl.ic_stride + taps[t];
    for (int64_t t = 0; t < pl.k; t++)
        if (taps[t] > j.tap_max) j.tap_max = taps[t];
    j.phases = sh * sw > 64 ? ~(uint64_t)0 : 0;
    for (int64_t ky = 0; ky < p->k_h && sh * sw <= 64; ky++)
        for (int64_t kx = 0; kx < p->k_w; kx++)
            j.phases |= (uint64_t)1 << (((ky * p->dil_h) % sh) * sw + (kx * p->dil_w) % sw);
    /* corr = bias - (128 + z) * wsum, modulo 2^32 like the reference sum */
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    for (int64_t g = 0; g < p->groups; g++)
        for (int64_t r = 0; r < pl.nb * QX_CONV_ROWS; r++) {
            const int64_t pr = g * pl.nb * QX_CONV_ROWS + r;
            if (r >= pl.opg) {
                corr[pr] = mq[pr] = shift[pr] = 0;
                mult[pr] = 0.0f;
                continue;
            }
            const int64_t c = g * pl.opg + r;
            const uint32_t bv = bias ? (uint32_t)bias[c] : 0u;
            const qf_ref_rescale *rs = qr_mult_of(&p->rq, c);
            corr[pr] = (int32_t)(bv - zc * (uint32_t)w->wsum[c]);
            mult[pr] = rs->mult_f;
            mq[pr] = rs->mult_q;
            shift[pr] = rs->shift;
            if (rs->shift < -31) j.fixed_vec = false;
        }

    if (pl.direct) {
        j.src = (const uint8_t *)in;
        j.src_len = (int64_t)p->batch * p->in_c * p->in_h * p->in_w;
    } else {
        qf_parallel_for(pool, (int64_t)p->in_c * p->batch, fill_task, &j);
        j.src = j.planes;
        j.src_len = (int64_t)pl.planes_bytes;
    }
    const int64_t nthreads = qf_threadpool_size(pool);
    /* Fused units when there are enough slot pairs to keep every thread
     * busy on whole units (two pairs each: a unit then writes 64 bytes of
     * each output row, so threads rarely share cache lines) and the band
     * holds one unit per thread; else pack a band, then split its tiles
     * over slots and channel blocks (layers with few pixels, many channels). */
    const int64_t all_pairs = (pl.slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
    const size_t pair_bytes = 2 * (size_t)pl.k4 * 64;
    int64_t upairs = 2;
    if ((size_t)nthreads * 2 * pair_bytes > pl.band_bytes) upairs = 1;
    if (all_pairs >= 4 * nthreads * upairs &&
        (size_t)nthreads * (size_t)upairs * pair_bytes <= pl.band_bytes) {
        j.ppt = upairs;
        j.n_pairs = all_pairs;
        for (j.g = 0; j.g < p->groups; j.g++)
            qf_parallel_for(pool, (all_pairs + upairs - 1) / upairs, unit_task, &j);
        return QF_OK;
    }
    for (j.g = 0; j.g < p->groups; j.g++) {
        for (j.s0 = 0; j.s0 < pl.slots; j.s0 += pl.band_slots) {
            int64_t n = pl.slots - j.s0;
            n = (n + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS * QX_CONV_SLOTS;
            if (n > pl.band_slots) n = pl.band_slots;
            qf_parallel_for(pool, n / 16, pack_task, &j);
            j.n_pairs = n / QX_CONV_SLOTS;
            /* about 4 tasks per thread: runs of pairs, and channel chunks
             * too when there are few pairs */
            const int64_t want = 4 * nthreads;
            int64_t n_cc = 1;
            if (nthreads > 1 && j.n_pairs < want) n_cc = (want + j.n_pairs - 1) / j.n_pairs;
            if (n_cc > pl.nb) n_cc = pl.nb;
            j.cb = (pl.nb + n_cc - 1) / n_cc;
            j.n_cc = (pl.nb + j.cb - 1) / j.cb;
            const int64_t runs = nthreads > 1 ? (want + j.n_cc - 1) / j.n_cc : 1;
            j.ppt = (j.n_pairs + runs - 1) / runs;
            j.n_pt = (j.n_pairs + j.ppt - 1) / j.ppt;
            qf_parallel_for(pool, j.n_pt * j.n_cc, compute_task, &j);
        }
    }
    return QF_OK;
}

#else

size_t qf_x86_conv2d_s8_scratch_size(const qf_ref_conv_params *p) {
    (void)p;
    return 0;
}

qf_status qf_x86_conv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                           const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                           int8_t *out, void *scratch, size_t scratch_bytes, qf_err *err) {
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_conv2d_s8: not an x86-64 build");
}

#endif
