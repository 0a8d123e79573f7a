/* qx86_conv.c - the x86 int8 convolution driver (qx86.h): plans the
 * stride-phase planes, fills them (channel-quad interleaved for conv8c4;
 * plain, then packed into slot bands by a byte interleave, for conv8),
 * splits the tiles over the thread pool and calls the ISA's micro-kernel.
 * Bit-identical to qf_ref_conv2d_s8. */
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

/* Bytes past the conv8c4 planes that a vector read may touch (lanes past
 * the last slot, grid slots past the last output: up to 31 positions plus
 * one 64-byte load). */
#define PLANE_SLACK 256
/* Largest group of plane rows (bytes) one qx_ukernels.fill_s1 call writes. */
#define S1_BYTES 256
/* Widest padded row the conv8c4 fill interleaves through its stack rows. */
#define FILL_ROW 1024
/* Largest reduction (steps) whose multi-run vectors are gathered on the
 * stack, 64 KiB per vector; longer ones merge their runs in the kernel. */
#define GATHER_STEPS 1024

typedef struct cplan {
    bool c4;          /* conv8c4 layout: channel-quad planes read in place */
    int64_t nq;       /* conv8c4: channel quads per group */
    int64_t ppl;      /* conv8c4: bytes of one phase plane (all images) */
    int64_t q_stride; /* conv8c4: bytes between quads */
    int64_t g_stride; /* conv8c4: bytes between groups */
    int64_t cpg, opg, k, k4, nb;
    int64_t hq, wq;     /* slot grid per image */
    int64_t pb;         /* bytes of one phase plane (all images) */
    int64_t ic_stride;  /* bytes between input channels in the source */
    bool direct;        /* read the input in place (stride 1, no pads) */
    int64_t img_stride; /* source bytes between images at the same (ic, y, x) */
    bool grid;          /* slots on the phase grid, else one per output pixel */
    int64_t slots;      /* slots up to the last useful one */
    int64_t band_slots; /* multiple of QX_CONV_SLOTS */
    int64_t rows_p;     /* packed rows: groups * nb * 8 */
    size_t planes_bytes, band_bytes, taps_off, koff_off, seq_off, corr_off, mult_off, mq_off,
        shift_off, total;
} cplan;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static bool shape_ok(const qf_ref_conv_params *p) {
    if (p->batch < 1 || p->in_c < 1 || p->out_c < 1 || p->groups < 1 || p->in_c % p->groups ||
        p->out_c % p->groups || p->in_h < 1 || p->in_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->dil_h < 1 || p->dil_w < 1)
        return false;
    int32_t oh =
        qf_ref_conv_out_size(p->in_h, p->k_h, p->stride_h, p->dil_h, p->pad_top, p->pad_bottom);
    int32_t ow =
        qf_ref_conv_out_size(p->in_w, p->k_w, p->stride_w, p->dil_w, p->pad_left, p->pad_right);
    return oh >= 1 && ow >= 1 && oh == p->out_h && ow == p->out_w;
}

/* Every size below is checked against SCRATCH_MAX (2^30), so int64
 * products of a few of them cannot overflow. */
/* planes_1x1: a 1x1 layer with conv8c4 weights fills planes too (for the
 * transposed tiles, which read them; qf_x86_conv2d_s8 keeps the plan only
 * if it takes them). */
static bool make_plan(const qf_ref_conv_params *p, qx_layout layout, bool planes_1x1, cplan *pl) {
    memset(pl, 0, sizeof *pl);
    if (!shape_ok(p) || (layout != QX_LAYOUT_CONV8 && layout != QX_LAYOUT_CONV8C4)) return false;
    /* 1x1 kernels: both layouts are the same bytes (a lane is 4 channels);
     * for slot tiles, packing from the input in place (stride 1, no pads)
     * beats a filled copy read once, but a strided or padded 1x1 layer
     * needs a copy anyway: quad planes (one fill, read in place) then save
     * conv8's second copy, its packed band (ResNet shortcuts, 1x1 stride 2) */
    const bool in_place = p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                          p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
    pl->c4 =
        layout == QX_LAYOUT_CONV8C4 && ((int64_t)p->k_h * p->k_w > 1 || planes_1x1 || !in_place);
    pl->cpg = p->in_c / p->groups;
    pl->opg = p->out_c / p->groups;
    const int64_t khw = (int64_t)p->k_h * p->k_w;
    if (khw > INT32_MAX || pl->cpg > (INT32_MAX - 3) / khw) return false;
    pl->k = pl->cpg * khw;
    pl->nq = (pl->cpg + 3) / 4;
    pl->k4 = pl->c4 ? pl->nq * khw : (pl->k + 3) / 4;
    if (pl->k4 > INT32_MAX / 4) return false;
    pl->nb = (pl->opg + QX_CONV_ROWS - 1) / QX_CONV_ROWS;
    const int64_t sh = p->stride_h, sw = p->stride_w;
    const int64_t hp = (int64_t)p->pad_top + p->in_h + p->pad_bottom;
    const int64_t wp = (int64_t)p->pad_left + p->in_w + p->pad_right;
    pl->direct = !pl->c4 && sh == 1 && sw == 1 && p->pad_top == 0 && p->pad_left == 0 &&
                 p->pad_bottom == 0 && p->pad_right == 0;
    const double lim = (double)SCRATCH_MAX;
    if (pl->c4) {
        /* [group][quad][phase][batch][hq][wq][4], read in place */
        pl->hq = (hp + sh - 1) / sh;
        pl->wq = (wp + sw - 1) / sw;
        double planes = (double)p->groups * (double)pl->nq * 4.0 * (double)(sh * sw) *
                        (double)p->batch * (double)pl->hq * (double)pl->wq;
        if (planes > lim) return false;
        pl->ppl = (int64_t)p->batch * pl->hq * pl->wq * 4;
        pl->q_stride = sh * sw * pl->ppl;
        pl->g_stride = pl->nq * pl->q_stride;
        pl->img_stride = pl->hq * pl->wq;
        pl->planes_bytes = (size_t)(p->groups * pl->g_stride) + PLANE_SLACK;
    } else if (pl->direct) {
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
        double planes = (double)p->in_c * (double)(sh * sw) * (double)p->batch * (double)pl->hq *
                        (double)pl->wq;
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
    const int64_t grid_slots =
        (int64_t)(p->batch - 1) * pl->hq * pl->wq + (int64_t)(p->out_h - 1) * pl->wq + p->out_w;
    const int64_t px_slots = (int64_t)p->batch * p->out_h * p->out_w;
    const int64_t gt = (grid_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
    const int64_t pt = (px_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
    /* (the grid needs images one grid apart: not so in a direct batch) */
    pl->grid = gt * 100 <= pt * 103 && !(pl->direct && p->batch > 1);
    /* conv8c4 per-pixel vectors that span rows are gathered once per tile
     * pair, about 3/4 of one channel block's work: grid tiles are worth up
     * to that much more */
    if (pl->c4) {
        /* conv8c4's grid skips the rows past out_h (b, y < out_h, x < wq):
         * the same slots at batch 1, fewer after it; a vector that crosses
         * into the next image reads two runs */
        const int64_t rg_slots = ((int64_t)p->batch * p->out_h - 1) * pl->wq + p->out_w;
        const int64_t rt = (rg_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
        pl->grid = rt * pl->nb * 4 <= pt * (pl->nb * 4 + 3);
        pl->slots = pl->grid ? rg_slots : px_slots;
    } else {
        pl->slots = pl->grid ? grid_slots : px_slots;
    }
    /* conv8c4 packs nothing, except per-pixel vectors of long reductions
     * (too long to gather on the stack): gathered into bands */
    const bool banded = !pl->c4 || (!pl->grid && pl->k4 > GATHER_STEPS);
    const int64_t slot_bytes = banded ? pl->k4 * 4 : 0;
    int64_t band = slot_bytes
                       ? (int64_t)(BAND_BYTES / (size_t)slot_bytes) / QX_CONV_SLOTS * QX_CONV_SLOTS
                       : QX_CONV_SLOTS;
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
    pl->koff_off = off;
    off += align64((size_t)pl->k4 * sizeof(int32_t));
    pl->seq_off = off;
    off += align64((size_t)pl->k4 * sizeof(int32_t));
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
static bool per_image(const qf_ref_conv_params *p, qx_layout layout) {
    if ((layout != QX_LAYOUT_CONV8 && (int64_t)p->k_h * p->k_w > 1) || p->batch < 2 ||
        p->stride_h != 1 || p->stride_w != 1 || p->pad_top || p->pad_left || p->pad_bottom ||
        p->pad_right)
        return false;
    const int64_t hw = (int64_t)p->in_h * p->in_w;
    const int64_t rounded = (hw + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS * QX_CONV_SLOTS;
    return rounded * 100 <= hw * 107;
}

size_t qf_x86_conv2d_s8_scratch_size(const qf_ref_conv_params *p, qx_layout layout) {
    cplan pl;
    if (!p) return 0;
    qf_ref_conv_params one;
    if (per_image(p, layout)) {
        one = *p;
        one.batch = 1;
        p = &one;
    }
    if (!make_plan(p, layout, false, &pl)) return 0;
    size_t total = pl.total;
    /* a 1x1 layer may run on planes (transposed tiles) */
    cplan c4;
    if (layout == QX_LAYOUT_CONV8C4 && make_plan(p, layout, true, &c4) && c4.total > total)
        total = c4.total;
    return total;
}

/* ---- shared state of one call ---------------------------------------------- */

typedef struct conv_job {
    const qf_ref_conv_params *p;
    const cplan *pl;
    const qf_x86_weights *w;
    const qx_ukernels *uk;
    const int8_t *in, *in_end; /* the input and its end */
    int8_t *out;
    const int8_t *res;        /* fused residual, or NULL */
    const qx_add_consts *add; /* its add, the conv's result as operand a */
    uint8_t *planes;
    uint8_t *band;
    const int64_t *taps;
    const int32_t *koff; /* per reduction step: byte offset of its activations */
    const int32_t *seq;  /* 64 * step: offsets in packed or gathered blocks */
    const int32_t *corr;
    const float *mult;
    const int32_t *mq, *shift;
    bool fixed_vec, mult_small;
    const uint8_t *src; /* planes or the input */
    int64_t src_len;
    int64_t tap_max; /* largest tap offset */
    uint64_t phases; /* bit py * sw + px: a tap reads that stride phase */
    /* current group and band: tasks are n_pt runs of ppt slot pairs times
     * n_cc chunks of cb channel blocks, numbered run-major, or chunk-major
     * when cc_major (split_tiles) */
    int64_t g, s0, n_pairs, ppt, n_pt, n_cc, cb;
    bool cc_major;
    int64_t fill_bands; /* conv8c4 fill: row bands per plane (see fill_c4_task) */
    int64_t fill_tasks; /* conv8c4 fill: tasks, each a range of items */
    /* conv8c4 stride-1 fill by qx_ukernels.fill_s1: input rows per group
     * (0: not used), its index bytes and valid bits (s1_table), [0] for
     * quads of 4 channels, [1] for the last quad of a group of cpg % 4 */
    int64_t s1_rows;
    _Alignas(64) uint8_t s1_idx[2][S1_BYTES];
    uint64_t s1_valid[2][S1_BYTES / 64];
    /* width-stride-2 fill by qx_ukernels.fill_s2v (s2_ok): each column
     * phase's index bytes and valid bits (s2_table) */
    bool s2_ok;
    _Alignas(64) uint8_t s2_idx[2][64];
    uint64_t s2_valid[2];
    /* transposed tiles (tt_task): per group, tt_nc chunks of 32 channels x
     * tt_nr ranges of tt_per pixel tiles (tt_tpi tiles of 8 pixels per image) */
    int64_t tt_nc, tt_nr, tt_per, tt_tpi;
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

/* Padded row of wq bytes: byte i is input column i * sw + px - pad_left of
 * `row`, or the zero point outside the row (or everywhere when row is
 * NULL, a row of padding). Strided rows are read in vectors that may run
 * past the row's end, never past src_end (the end of the input). */
static void fill_row(uint8_t *d, const int8_t *row, const qf_ref_conv_params *p, int64_t wq,
                     int64_t px, const int8_t *src_end) {
    const int64_t sw = p->stride_w;
    const int8_t zp = (int8_t)p->in_zp;
    if (!row) {
        for (int64_t i = 0; i < wq; i++)
            d[i] = (uint8_t)zp;
        return;
    }
    if (sw == 1) {
        /* columns i read input column i - pad_left; rows are short (7-224
         * bytes), so no library calls */
        int64_t i0 = p->pad_left < wq ? p->pad_left : wq;
        int64_t i1 = p->pad_left + p->in_w < wq ? p->pad_left + p->in_w : wq;
        for (int64_t i = 0; i < i0; i++)
            d[i] = (uint8_t)zp;
        copy_row(d + i0, (const uint8_t *)row, i1 - i0);
        for (int64_t i = i1; i < wq; i++)
            d[i] = (uint8_t)zp;
    } else {
        /* column i reads input column sw * i + off when inside the row:
         * columns [i_lo, i_end) */
        const int64_t off = px - p->pad_left;
        int64_t i_lo = off >= 0 ? 0 : (sw - 1 - off) / sw;
        int64_t i_end = p->in_w - 1 - off >= 0 ? (p->in_w - 1 - off) / sw + 1 : 0;
        if (i_end > wq) i_end = wq;
        if (i_lo > i_end) i_lo = i_end;
        for (int64_t i = 0; i < i_lo; i++)
            d[i] = (uint8_t)zp;
        int64_t i = i_lo;
        const uint8_t *r8 = (const uint8_t *)row;
        /* 16 columns from 16 * sw input bytes while those lie inside the
         * input (the bytes past the row's last column are read, unused); a
         * last partial group through a stack block */
        const uint8_t *end = (const uint8_t *)src_end;
        if (sw == 2) {
            /* 32 input bytes -> their 16 even bytes */
            const __m128i even = _mm_set1_epi16(0x00FF);
            for (; i < i_end && r8 + 2 * i + off + 32 <= end; i += 16) {
                const uint8_t *q = r8 + 2 * i + off;
                const __m128i a = _mm_loadu_si128((const __m128i *)q);
                const __m128i c = _mm_loadu_si128((const __m128i *)(q + 16));
                const __m128i v = _mm_packus_epi16(_mm_and_si128(a, even), _mm_and_si128(c, even));
                if (i + 16 > i_end) {
                    uint8_t tmp[16];
                    _mm_storeu_si128((__m128i *)tmp, v);
                    memcpy(d + i, tmp, (size_t)(i_end - i));
                    i = i_end;
                    break;
                }
                _mm_storeu_si128((__m128i *)(d + i), v);
            }
        } else if (sw == 4) {
            /* 64 input bytes -> every fourth (dwords masked to their low
             * byte, packed twice without saturation reaching) */
            const __m128i low = _mm_set1_epi32(0xFF);
            for (; i < i_end && r8 + 4 * i + off + 64 <= end; i += 16) {
                const uint8_t *q = r8 + 4 * i + off;
                const __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)q), low);
                const __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(q + 16)), low);
                const __m128i c = _mm_and_si128(_mm_loadu_si128((const __m128i *)(q + 32)), low);
                const __m128i e = _mm_and_si128(_mm_loadu_si128((const __m128i *)(q + 48)), low);
                const __m128i v = _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, e));
                if (i + 16 > i_end) {
                    uint8_t tmp[16];
                    _mm_storeu_si128((__m128i *)tmp, v);
                    memcpy(d + i, tmp, (size_t)(i_end - i));
                    i = i_end;
                    break;
                }
                _mm_storeu_si128((__m128i *)(d + i), v);
            }
        }
        for (const uint8_t *q = r8 + sw * i + off; i < i_end; i++, q += sw)
            d[i] = *q;
        for (i = i_end; i < wq; i++)
            d[i] = (uint8_t)zp;
    }
}

/* Fill the stride-phase planes of input channel ic of image b (conv8). */
static void fill_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    /* image-major, like the tiles: a thread fills the images it computes */
    const int64_t b = task / p->in_c, ic = task % p->in_c;
    const int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t py = 0; py < sh; py++) {
        for (int64_t px = 0; px < sw; px++) {
            /* a phase no tap reads (1x1 stride 2: three of four) is never
             * filled; loads that run past a used plane into it only feed
             * lanes whose results are dropped */
            const int64_t ph = py * sw + px;
            if (ph < 64 && !((j->phases >> ph) & 1)) continue;
            uint8_t *plane = j->planes + ic * pl->ic_stride + ph * pl->pb + b * pl->hq * pl->wq;
            for (int64_t jy = 0; jy < pl->hq; jy++) {
                const int64_t iy = jy * sh + py - p->pad_top;
                const int8_t *row = iy < 0 || iy >= p->in_h
                                        ? NULL
                                        : j->in + ((b * p->in_c + ic) * p->in_h + iy) * p->in_w;
                fill_row(plane + jy * pl->wq, row, p, pl->wq, px, j->in_end);
            }
        }
    }
}

/* 4 rows of 16 bytes -> 16 lanes of 4 bytes (byte r of lane i is v_r[i]),
 * sign bit flipped (q + 128). */
static inline void interleave4(__m128i v0, __m128i v1, __m128i v2, __m128i v3, uint8_t *d) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const __m128i a = _mm_unpacklo_epi8(v0, v1), b = _mm_unpacklo_epi8(v2, v3);
    const __m128i c = _mm_unpackhi_epi8(v0, v1), e = _mm_unpackhi_epi8(v2, v3);
    _mm_storeu_si128((__m128i *)d, _mm_xor_si128(_mm_unpacklo_epi16(a, b), flip));
    _mm_storeu_si128((__m128i *)(d + 16), _mm_xor_si128(_mm_unpackhi_epi16(a, b), flip));
    _mm_storeu_si128((__m128i *)(d + 32), _mm_xor_si128(_mm_unpacklo_epi16(c, e), flip));
    _mm_storeu_si128((__m128i *)(d + 48), _mm_xor_si128(_mm_unpackhi_epi16(c, e), flip));
}

/* n bytes of value v at d. */
static inline void set_bytes(uint8_t *d, uint8_t v, int64_t n) {
    if (n < 16) {
        /* two overlapping stores (pads are mostly 4 or 8 bytes) */
        if (n >= 8) {
            const uint64_t x = v * 0x0101010101010101ull;
            memcpy(d, &x, 8);
            memcpy(d + n - 8, &x, 8);
        } else if (n >= 4) {
            const uint32_t x = v * 0x01010101u;
            memcpy(d, &x, 4);
            memcpy(d + n - 4, &x, 4);
        } else {
            for (int64_t i = 0; i < n; i++)
                d[i] = v;
        }
        return;
    }
    const __m128i x = _mm_set1_epi8((char)v);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(d + i), x);
    if (i < n) _mm_storeu_si128((__m128i *)(d + n - 16), x);
}

/* n positions (4 bytes each) interleaved from 4 byte rows into d; any n:
 * the last step overlaps the one before it (same bytes), so no load or
 * store leaves the rows or d. */
static inline void interleave_n(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                const uint8_t *r3, int64_t n, uint8_t *d) {
    if (n < 16) { /* too short for one vector step */
        for (int64_t i = 0; i < n; i++) {
            d[4 * i] = r0[i] ^ 0x80;
            d[4 * i + 1] = r1[i] ^ 0x80;
            d[4 * i + 2] = r2[i] ^ 0x80;
            d[4 * i + 3] = r3[i] ^ 0x80;
        }
        return;
    }
    for (int64_t i = 0;; i += 16) {
        if (i + 16 > n) i = n - 16;
        interleave4(_mm_loadu_si128((const __m128i *)(r0 + i)),
                    _mm_loadu_si128((const __m128i *)(r1 + i)),
                    _mm_loadu_si128((const __m128i *)(r2 + i)),
                    _mm_loadu_si128((const __m128i *)(r3 + i)), d + i * 4);
        if (i + 16 >= n) break;
    }
}

/* conv8c4 fill of one image's quad when stride is 1 and the 4 channels
 * exist: padded rows are interleaved straight from the input rows (rows
 * under 16 bytes from one 16-byte read of each channel), and the pads are
 * set to the flipped zero point. */
/* rows [lo, hi) of [a, b) clipped to the band [b0, b1) */
static inline void clip_rows(int64_t a, int64_t b, int64_t b0, int64_t b1, int64_t *lo,
                             int64_t *hi) {
    *lo = a > b0 ? a : b0;
    *hi = b < b1 ? b : b1;
    if (*hi < *lo) *hi = *lo;
}

static void fill_c4_s1(const conv_job *j, const int8_t *const chan[4], uint8_t *plane, int64_t jy0,
                       int64_t jy1) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t wq = pl->wq, w = p->in_w, row_bytes = wq * 4;
    const uint8_t pad = (uint8_t)(0x80 ^ (uint8_t)(int8_t)p->in_zp);
    const int64_t left = p->pad_left * 4, right = (wq - p->pad_left - w) * 4;
    const int64_t iy_all = p->in_h < pl->hq - p->pad_top ? p->in_h : pl->hq - p->pad_top;
    /* rows of padding above and below, within the band */
    int64_t ra, rb;
    clip_rows(0, p->pad_top, jy0, jy1, &ra, &rb);
    set_bytes(plane + ra * row_bytes, pad, (rb - ra) * row_bytes);
    const int64_t below = p->pad_top + iy_all;
    clip_rows(below, pl->hq, jy0, jy1, &ra, &rb);
    set_bytes(plane + ra * row_bytes, pad, (rb - ra) * row_bytes);
    /* the input rows whose plane rows are in the band */
    clip_rows(p->pad_top, below, jy0, jy1, &ra, &rb);
    const int64_t iy_begin = ra - p->pad_top, iy_end = rb - p->pad_top;
    const uint8_t *c0 = (const uint8_t *)chan[0], *c1 = (const uint8_t *)chan[1];
    const uint8_t *c2 = (const uint8_t *)chan[2], *c3 = (const uint8_t *)chan[3];
    if (j->s1_rows) {
        /* groups of s1_rows input rows (consecutive in each channel, and
         * their plane rows consecutive in the plane) by one kernel call; a
         * quad's missing channels (NULL) are pads in table 1, and their
         * reads go to channel 0's rows */
        const int64_t o = iy_begin * w;
        const int tab = c3 ? 0 : 1;
        const uint8_t *src[4] = {c0 + o, (c1 ? c1 : c0) + o, (c2 ? c2 : c0) + o,
                                 (c3 ? c3 : c0) + o};
        j->uk->fill_s1(src, iy_end - iy_begin, w, j->s1_rows, j->s1_idx[tab], j->s1_valid[tab],
                       row_bytes, plane + (p->pad_top + iy_begin) * row_bytes);
        return;
    }
    if (w >= 16) {
        for (int64_t iy = iy_begin; iy < iy_end; iy++) {
            uint8_t *d = plane + (p->pad_top + iy) * row_bytes;
            set_bytes(d, pad, left);
            const int64_t o = iy * w;
            interleave_n(c0 + o, c1 + o, c2 + o, c3 + o, w, d + left);
            set_bytes(d + left + w * 4, pad, right);
        }
        return;
    }
    /* short rows: each row's 16 bytes of every channel (the row and what
     * follows it in the channel's plane) interleaved in registers and its
     * w * 4 bytes stored (a stack block and reading it back at the rows'
     * offsets stalled on store forwarding); a row whose reads would pass
     * the input's end is interleaved byte by byte */
    const uint8_t *end = (const uint8_t *)j->in_end;
    const uint8_t *hi = c0 > c1 ? c0 : c1;
    hi = hi > c2 ? hi : c2;
    hi = hi > c3 ? hi : c3;
    const __m128i flip = _mm_set1_epi8((char)0x80);
    for (int64_t iy = iy_begin; iy < iy_end; iy++) {
        uint8_t *d = plane + (p->pad_top + iy) * row_bytes;
        const int64_t o = iy * w;
        set_bytes(d, pad, left);
        uint8_t *q = d + left;
        if (hi + o + 16 <= end) {
            const __m128i v0 = _mm_loadu_si128((const __m128i *)(c0 + o));
            const __m128i v1 = _mm_loadu_si128((const __m128i *)(c1 + o));
            const __m128i v2 = _mm_loadu_si128((const __m128i *)(c2 + o));
            const __m128i v3 = _mm_loadu_si128((const __m128i *)(c3 + o));
            const __m128i a = _mm_unpacklo_epi8(v0, v1), b = _mm_unpacklo_epi8(v2, v3);
            const __m128i c = _mm_unpackhi_epi8(v0, v1), e = _mm_unpackhi_epi8(v2, v3);
            const __m128i x[4] = {_mm_xor_si128(_mm_unpacklo_epi16(a, b), flip),
                                  _mm_xor_si128(_mm_unpackhi_epi16(a, b), flip),
                                  _mm_xor_si128(_mm_unpacklo_epi16(c, e), flip),
                                  _mm_xor_si128(_mm_unpackhi_epi16(c, e), flip)};
            /* w * 4 < 64 bytes: whole vectors, then 8 and 4 bytes */
            const int64_t n = w * 4;
            int64_t k = 0;
            for (; k + 16 <= n; k += 16)
                _mm_storeu_si128((__m128i *)(q + k), x[k / 16]);
            __m128i t = x[k / 16 < 4 ? k / 16 : 3];
            if (n - k >= 8) {
                _mm_storel_epi64((__m128i *)(q + k), t);
                t = _mm_srli_si128(t, 8);
                k += 8;
            }
            if (n - k >= 4) {
                const int32_t v = _mm_cvtsi128_si32(t);
                memcpy(q + k, &v, 4);
            }
        } else {
            for (int64_t i = 0; i < w; i++) {
                q[4 * i] = c0[o + i] ^ 0x80;
                q[4 * i + 1] = c1[o + i] ^ 0x80;
                q[4 * i + 2] = c2[o + i] ^ 0x80;
                q[4 * i + 3] = c3[o + i] ^ 0x80;
            }
        }
        set_bytes(q + w * 4, pad, right);
    }
}

/* conv8c4 fill of one image's quad when the width stride is 2 and the 4
 * channels exist: each input row is interleaved once (4 bytes per column),
 * then its even and odd columns are split into the row of each phase plane
 * that reads them (shufps on 8 columns at a time); rows no input row
 * reaches are set to the flipped zero point. */
static void fill_c4_s2(const conv_job *j, const int8_t *const chan[4], uint8_t *plane0, int64_t jy0,
                       int64_t jy1) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t sh = p->stride_h, wq = pl->wq, w = p->in_w, row_bytes = wq * 4;
    const uint8_t pad = (uint8_t)(0x80 ^ (uint8_t)(int8_t)p->in_zp);
    /* rows of padding: plane rows whose input row is outside the image */
    for (int64_t py = 0; py < sh; py++)
        for (int64_t px = 0; px < 2; px++) {
            const int64_t ph = py * 2 + px;
            if (ph < 64 && !((j->phases >> ph) & 1)) continue;
            uint8_t *plane = plane0 + ph * pl->ppl;
            for (int64_t jy = jy0; jy < jy1; jy++) {
                const int64_t iy = jy * sh + py - p->pad_top;
                if (iy < 0 || iy >= p->in_h) set_bytes(plane + jy * row_bytes, pad, row_bytes);
            }
        }
    const uint8_t *c0 = (const uint8_t *)chan[0], *c1 = (const uint8_t *)chan[1];
    const uint8_t *c2 = (const uint8_t *)chan[2], *c3 = (const uint8_t *)chan[3];
    if (j->s2_ok) {
        /* each input row to its phase rows by one kernel call */
        for (int64_t iy = 0; iy < p->in_h; iy++) {
            const int64_t r = iy + p->pad_top, jy = r / sh, py = r % sh;
            if (jy >= jy1) break;
            if (jy < jy0) continue;
            uint8_t *dst[2] = {NULL, NULL};
            for (int64_t px = 0; px < 2; px++) {
                const int64_t ph = py * 2 + px;
                if (ph >= 64 || ((j->phases >> ph) & 1))
                    dst[px] = plane0 + ph * pl->ppl + jy * row_bytes;
            }
            if (!dst[0] && !dst[1]) continue;
            const int64_t o = iy * w;
            const uint8_t *src[4] = {c0 + o, c1 + o, c2 + o, c3 + o};
            j->uk->fill_s2v(src, w, j->s2_idx[0], j->s2_valid, row_bytes, dst);
        }
        return;
    }
    _Alignas(16) uint8_t tmp[FILL_ROW * 4 + 64];
    /* rows of up to 32 columns into phase rows of up to 16: the ISA's
     * permute (plane column i reads input column 2i + px - pad_left) */
    const bool vec = j->uk && j->uk->fill_s2 && w <= 32 && wq <= 16;
    int32_t idx[2][16];
    uint32_t valid[2] = {0, 0};
    if (vec) {
        memset(tmp + w * 4, 0, (size_t)(128 - w * 4)); /* the permute's unread lanes */
        for (int px = 0; px < 2; px++)
            for (int i = 0; i < 16; i++) {
                const int64_t c = 2 * i + px - p->pad_left;
                const bool in = i < wq && c >= 0 && c < w;
                idx[px][i] = in ? (int32_t)c : 0;
                valid[px] |= (uint32_t)in << i;
            }
    }
    const uint32_t store = wq >= 32 ? 0xFFFFFFFFu : (1u << wq) - 1;
    for (int64_t iy = 0; iy < p->in_h; iy++) {
        const int64_t r = iy + p->pad_top, jy = r / sh, py = r % sh;
        if (jy >= jy1) break;
        if (jy < jy0) continue;
        /* rows no tap reads (1x1 stride 2: every other one) */
        const int64_t ph0 = py * 2;
        if (ph0 + 1 < 64 && !((j->phases >> ph0) & 3)) continue;
        const int64_t o = iy * w;
        const uint8_t *last = c0 + o; /* the rows' highest start */
        if (c1 + o > last) last = c1 + o;
        if (c2 + o > last) last = c2 + o;
        if (c3 + o > last) last = c3 + o;
        if (w < 16 && last + 16 <= (const uint8_t *)j->in_end)
            /* a short row: one 16-byte read per channel row (the bytes past
             * the row land in tmp past w columns, which no phase reads) */
            interleave4(_mm_loadu_si128((const __m128i *)(c0 + o)),
                        _mm_loadu_si128((const __m128i *)(c1 + o)),
                        _mm_loadu_si128((const __m128i *)(c2 + o)),
                        _mm_loadu_si128((const __m128i *)(c3 + o)), tmp);
        else
            interleave_n(c0 + o, c1 + o, c2 + o, c3 + o, w, tmp);
        const uint32_t *col = (const uint32_t *)(const void *)tmp;
        for (int64_t px = 0; px < 2; px++) {
            const int64_t ph = py * 2 + px;
            if (ph < 64 && !((j->phases >> ph) & 1)) continue;
            uint8_t *d = plane0 + ph * pl->ppl + jy * row_bytes;
            if (vec) {
                j->uk->fill_s2(tmp, idx[px], valid[px], store, pad * 0x01010101u, d);
                continue;
            }
            /* plane column i reads input column 2i + off */
            const int64_t off = px - p->pad_left;
            int64_t i_lo = off >= 0 ? 0 : (1 - off) / 2;
            int64_t i_end = w - 1 - off >= 0 ? (w - 1 - off) / 2 + 1 : 0;
            if (i_end > wq) i_end = wq;
            if (i_lo > i_end) i_lo = i_end;
            set_bytes(d, pad, i_lo * 4);
            int64_t i = i_lo;
            /* 8 columns (2 loads) -> their 4 even ones; loads stay inside
             * tmp's slack */
            for (; i + 4 <= i_end; i += 4) {
                const float *q = (const float *)(const void *)(col + 2 * i + off);
                const __m128 lo = _mm_loadu_ps(q), hi = _mm_loadu_ps(q + 4);
                _mm_storeu_ps((float *)(void *)(d + i * 4),
                              _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
            }
            for (; i < i_end; i++)
                memcpy(d + i * 4, col + 2 * i + off, 4);
            set_bytes(d + i_end * 4, pad, (wq - i_end) * 4);
        }
    }
}

/* Fill rows [jy0, jy1) of the phase planes of channel quad q of group g,
 * image b (conv8c4). Stride 1 and width stride 2 have their own fills;
 * otherwise rows are built per channel in stack buffers, several short rows
 * at a time, then interleaved by 4. */
static void fill_c4_one(const conv_job *j, int64_t jy0, int64_t jy1, int64_t b, int64_t g,
                        int64_t q) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t sh = p->stride_h, sw = p->stride_w, wq = pl->wq;
    /* the channel of each byte of a lane, or NULL past the group's channels */
    const int8_t *chan[4];
    for (int r = 0; r < 4; r++) {
        const int64_t c = q * 4 + r;
        chan[r] = c < pl->cpg ? j->in + (b * p->in_c + g * pl->cpg + c) * p->in_h * p->in_w : NULL;
    }
    uint8_t *plane0 = j->planes + g * pl->g_stride + q * pl->q_stride + b * pl->hq * wq * 4;
    /* (the VBMI stride-1 fill also takes a last quad of 1-3 channels) */
    if (sh == 1 && sw == 1 && (j->s1_rows || (chan[3] && p->in_w <= FILL_ROW))) {
        fill_c4_s1(j, chan, plane0, jy0, jy1);
        return;
    }
    if (sw == 2 && chan[3] && p->in_w <= FILL_ROW) {
        fill_c4_s2(j, chan, plane0, jy0, jy1);
        return;
    }
    /* rows per round: as many whole rows as the stack rows hold */
    const int64_t rpr = wq <= FILL_ROW ? FILL_ROW / wq : 0;
    uint8_t rows[4][FILL_ROW + 16];
    for (int64_t py = 0; py < sh; py++) {
        for (int64_t px = 0; px < sw; px++) {
            const int64_t ph = py * sw + px;
            if (ph < 64 && !((j->phases >> ph) & 1)) continue;
            uint8_t *plane = plane0 + ph * pl->ppl;
            if (rpr == 0) {
                /* rows too wide for the stack buffers: byte by byte */
                for (int64_t jy = jy0; jy < jy1; jy++) {
                    const int64_t iy = jy * sh + py - p->pad_top;
                    for (int64_t i = 0; i < wq; i++) {
                        const int64_t ix = i * sw + px - p->pad_left;
                        for (int r = 0; r < 4; r++) {
                            int8_t v = (int8_t)p->in_zp;
                            if (chan[r] && iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w)
                                v = chan[r][iy * p->in_w + ix];
                            plane[(jy * wq + i) * 4 + r] = (uint8_t)v ^ 0x80;
                        }
                    }
                }
                continue;
            }
            for (int64_t ja = jy0; ja < jy1; ja += rpr) {
                const int64_t nr = jy1 - ja < rpr ? jy1 - ja : rpr;
                for (int r = 0; r < 4; r++)
                    for (int64_t i = 0; i < nr; i++) {
                        const int64_t iy = (ja + i) * sh + py - p->pad_top;
                        const int8_t *row =
                            chan[r] && iy >= 0 && iy < p->in_h ? chan[r] + iy * p->in_w : NULL;
                        fill_row(rows[r] + i * wq, row, p, wq, px, j->in_end);
                    }
                /* interleave nr * wq positions; the rows are consecutive in
                 * the plane */
                const int64_t n = nr * wq;
                uint8_t *d = plane + ja * wq * 4;
                int64_t i = 0;
                for (; i + 16 <= n; i += 16)
                    interleave4(_mm_loadu_si128((const __m128i *)(rows[0] + i)),
                                _mm_loadu_si128((const __m128i *)(rows[1] + i)),
                                _mm_loadu_si128((const __m128i *)(rows[2] + i)),
                                _mm_loadu_si128((const __m128i *)(rows[3] + i)), d + i * 4);
                if (i < n) {
                    /* the tail through a local block: the bytes past the
                     * rows belong to another task's planes */
                    uint8_t tmp[64];
                    interleave4(_mm_loadu_si128((const __m128i *)(rows[0] + i)),
                                _mm_loadu_si128((const __m128i *)(rows[1] + i)),
                                _mm_loadu_si128((const __m128i *)(rows[2] + i)),
                                _mm_loadu_si128((const __m128i *)(rows[3] + i)), tmp);
                    memcpy(d + i * 4, tmp, (size_t)(n - i) * 4);
                }
            }
        }
    }
}

/* Task `task` of fill_tasks: a contiguous range of the fill's items (row
 * band, image, group, quad), numbered band-major then image-major, like the
 * tiles: with fill_bands = threads, thread r's range is row band r of every
 * plane, else a thread fills the images it computes. Ranges rather than one
 * item per task: an item (a quad of one small image) is often a few hundred
 * instructions, and the task's index arithmetic (divisions) was a third of
 * that. */
static void fill_c4_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t per_band = (int64_t)p->batch * p->groups * pl->nq;
    const int64_t items = j->fill_bands * per_band;
    const int64_t i0 = items * task / j->fill_tasks, i1 = items * (task + 1) / j->fill_tasks;
    if (i0 >= i1) return;
    int64_t band = i0 / per_band, r = i0 % per_band;
    int64_t b = r / (p->groups * pl->nq);
    r %= p->groups * pl->nq;
    int64_t g = r / pl->nq, q = r % pl->nq;
    int64_t jy0 = pl->hq * band / j->fill_bands, jy1 = pl->hq * (band + 1) / j->fill_bands;
    for (int64_t i = i0; i < i1; i++) {
        fill_c4_one(j, jy0, jy1, b, g, q);
        if (++q < pl->nq) continue;
        q = 0;
        if (++g < p->groups) continue;
        g = 0;
        if (++b < p->batch) continue;
        b = 0;
        band++;
        jy0 = jy1;
        jy1 = pl->hq * (band + 1) / j->fill_bands;
    }
}

/* The runs of the 16 per-pixel slots starting at s (s < slots): slots are
 * output pixels in (b, oy, ox) order, and a run is a stretch of one output
 * row. Run r covers lanes [lane[r], lane[r] + cnt[r]) and starts at grid
 * position pos[r]; the last run is stretched to lane 16 (lanes past the last
 * slot are computed and never stored). Returns the number of runs. */
static int slot_runs(const qf_ref_conv_params *p, const cplan *pl, int64_t s, int64_t pos[16],
                     int lane0[16], int cnt[16]) {
    const int64_t ohw = (int64_t)p->out_h * p->out_w;
    int64_t b = s / ohw, rem = s % ohw, oy = rem / p->out_w, ox = rem % p->out_w;
    int64_t lane = 0;
    int nr = 0;
    while (lane < 16) {
        int64_t n = p->out_w - ox < 16 - lane ? p->out_w - ox : 16 - lane;
        const bool last = b * ohw + oy * p->out_w + ox + n >= pl->slots;
        if (last) n = 16 - lane;
        pos[nr] = b * pl->img_stride + oy * pl->wq + ox;
        lane0[nr] = (int)lane;
        cnt[nr] = (int)n;
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
    return nr;
}

/* 16 source bytes at idx, zero point beyond the end of the source. */
static inline __m128i load16(const conv_job *j, int64_t idx) {
    if (idx + 16 <= j->src_len) return _mm_loadu_si128((const __m128i *)(j->src + idx));
    uint8_t tmp[16];
    for (int i = 0; i < 16; i++)
        tmp[i] = idx + i < j->src_len ? j->src[idx + i] : (uint8_t)(int8_t)j->p->in_zp;
    return _mm_loadu_si128((const __m128i *)tmp);
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
__attribute__((target("avx2"))) static void pack_block(const conv_job *j, int64_t s, uint8_t *d) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t gbase = j->g * pl->cpg * pl->ic_stride;
    int64_t start[16]; /* source index of lane 0 for each run */
    __m128i mask[16];
    int nr = 0;
    if (pl->grid) {
        start[0] = gbase + s; /* consecutive slots, consecutive bytes */
        mask[0] = _mm_set1_epi8(-1);
        nr = 1;
    } else if (s < pl->slots) {
        int64_t pos[16];
        int lane0[16], cnt[16];
        nr = slot_runs(p, pl, s, pos, lane0, cnt);
        const __m128i lanes = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int r = 0; r < nr; r++) {
            start[r] = gbase + pos[r] - lane0[r];
            /* lanes [lane, lane + n) */
            const __m128i lo = _mm_set1_epi8((char)(lane0[r] - 1));
            const __m128i hi = _mm_set1_epi8((char)(lane0[r] + cnt[r]));
            mask[r] = _mm_and_si128(_mm_cmpgt_epi8(lanes, lo), _mm_cmplt_epi8(lanes, hi));
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
            interleave4(_mm_loadu_si128((const __m128i *)(src + j->taps[t])),
                        _mm_loadu_si128(
                            (const __m128i *)(src + j->taps[t + 1 <= last_tap ? t + 1 : last_tap])),
                        _mm_loadu_si128(
                            (const __m128i *)(src + j->taps[t + 2 <= last_tap ? t + 2 : last_tap])),
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
#define QX_BLEND2(o)                                                                               \
    _mm_blendv_epi8(_mm_loadu_si128((const __m128i *)(s1 + (o))),                                  \
                    _mm_loadu_si128((const __m128i *)(s0 + (o))), m)
            interleave4(QX_BLEND2(o0), QX_BLEND2(o1), QX_BLEND2(o2), QX_BLEND2(o3), d);
#undef QX_BLEND2
        }
        return;
    }
    for (int64_t kk = 0; kk < pl->k4; kk++, d += 64) {
        const int64_t t = kk * 4;
        /* taps past k meet zero weights: any bytes do, reuse the last tap */
        const int64_t tt[4] = {t, t + 1 < pl->k ? t + 1 : last_tap,
                               t + 2 < pl->k ? t + 2 : last_tap, t + 3 < pl->k ? t + 3 : last_tap};
        __m128i v[4];
        for (int q = 0; q < 4; q++) {
            const int64_t off = j->taps[tt[q]];
            __m128i acc = _mm_setzero_si128();
            for (int r = 0; r < nr; r++) {
                const __m128i x = inside
                                      ? _mm_loadu_si128((const __m128i *)(j->src + start[r] + off))
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

static void gather_vec(const conv_job *j, const qx_src *src, uint8_t *d);
static void make_src(const conv_job *j, int64_t s, qx_src *src);

/* conv8c4 band: gather the 16-slot vector `task` of the current band. */
static void gather_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    qx_src src;
    make_src(j, j->s0 + task * 16, &src);
    gather_vec(j, &src, j->band + task * j->pl->k4 * 64);
}

/* Output runs of the 16 grid slots starting at s: rows of wq slots, of
 * which the first out_w are stored, `rows` rows per image (conv8's grid:
 * hq, rows past out_h dropped; conv8c4's: out_h). */
static void make_grid_store(const qf_ref_conv_params *p, const cplan *pl, int64_t s, int64_t rows,
                            qx_vec_store *st) {
    const int64_t img = rows * pl->wq;
    const int64_t out_hw = (int64_t)p->out_h * p->out_w;
    int64_t b = s / img, rem = s % img, y = rem / pl->wq, x = rem % pl->wq;
    int64_t lane = 0;
    while (lane < 16 && b < p->batch) {
        const int64_t run = pl->wq - x < 16 - lane ? pl->wq - x : 16 - lane;
        if (y < p->out_h && x < p->out_w) {
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
            if (++y == rows) {
                y = 0;
                b++;
            }
        }
    }
}

/* Output runs of the 16 slots starting at s: grid slots, or output pixels
 * in (b, oy, ox) order, where a run only breaks where an image ends. */
static void make_store(const qf_ref_conv_params *p, const cplan *pl, int64_t s, qx_vec_store *st) {
    const int64_t out_hw = (int64_t)p->out_h * p->out_w;
    st->n_seg = 0;
    if (pl->grid) {
        if (s < pl->slots) make_grid_store(p, pl, s, pl->c4 ? p->out_h : pl->hq, st);
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

/* conv8c4: where the 16 slots starting at s read the planes of the current
 * group. Slots past the last one read the group's first bytes (computed,
 * never stored). */
static void make_src(const conv_job *j, int64_t s, qx_src *src) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const uint8_t *gbase = j->planes + j->g * pl->g_stride;
    src->n = 1;
    src->mask[0] = 0xFFFF;
    if (s >= pl->slots) {
        src->p[0] = gbase;
        return;
    }
    if (pl->grid) {
        /* consecutive slots of one image are consecutive positions: one run
         * per image the vector touches, the last stretched to lane 16 (a
         * slot's position is at least its index, so no pointer falls before
         * the planes) */
        const int64_t per_img = (int64_t)p->out_h * pl->wq;
        int64_t b = s / per_img, r = s % per_img;
        int lane = 0, n = 0;
        while (lane < 16) {
            int64_t cnt = per_img - r < 16 - lane ? per_img - r : 16 - lane;
            const bool last = b + 1 >= p->batch || lane + cnt == 16;
            if (last) cnt = 16 - lane;
            src->p[n] = gbase + (b * pl->img_stride + r - lane) * 4;
            src->mask[n] = (uint16_t)(((1u << cnt) - 1u) << lane);
            n++;
            if (last) break;
            lane += (int)cnt;
            r = 0;
            b++;
        }
        src->n = n;
        return;
    }
    /* a run's pointer is where its lane 0 would be (its position minus its
     * first lane: never before the planes, as a slot's position is at least
     * its index) */
    int64_t pos[16];
    int lane0[16], cnt[16];
    const int nr = slot_runs(p, pl, s, pos, lane0, cnt);
    for (int r = 0; r < nr; r++) {
        src->p[r] = gbase + (pos[r] - lane0[r]) * 4;
        src->mask[r] = (uint16_t)(((1u << cnt[r]) - 1u) << lane0[r]);
    }
    src->n = (int32_t)nr;
}

/* conv8c4: the vector `src` describes, gathered into d ([k4][64] bytes)
 * once for all channel blocks of its tile. AVX2 encodings: only called with
 * an AVX2 or AVX-512 ISA active. */
__attribute__((target("avx2"))) static void gather_vec(const conv_job *j, const qx_src *src,
                                                       uint8_t *d) {
    __m256i bm[2 * QX_MAX_RUNS];
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int32_t r = 1; r < src->n; r++)
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_set1_epi32((src->mask[r] >> (8 * h)) & 0xFF);
            bm[2 * r + h] = _mm256_cmpeq_epi32(_mm256_and_si256(bits, sel), sel);
        }
    const int64_t k4 = j->pl->k4;
    for (int64_t k = 0; k < k4; k++, d += 64) {
        const int64_t o = j->koff[k];
        for (int h = 0; h < 2; h++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(src->p[0] + o + 32 * h));
            for (int32_t r = 1; r < src->n; r++)
                x = _mm256_blendv_epi8(
                    x, _mm256_loadu_si256((const __m256i *)(src->p[r] + o + 32 * h)),
                    bm[2 * r + h]);
            _mm256_storeu_si256((__m256i *)(d + 32 * h), x);
        }
    }
}

/* Tiles of pairs [pair0, pair_end) x channel blocks [blk0, blk1) of the
 * current group: pair0 starts at slot s0 and, for conv8, its packed blocks
 * at a0 (conv8c4 reads the planes: a0 unused). */
static void run_tiles(const conv_job *j, int64_t pair0, int64_t pair_end, int64_t s0,
                      const uint8_t *a0, int64_t blk0, int64_t blk1) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    qx_vec_store st[2];
    qx_src src[2];
    qx_conv_tile t;
    /* conv8c4 vectors of several runs are gathered here when the reduction
     * is short enough (then both vectors of the tile, read at 64 k) */
    _Alignas(64) uint8_t gbuf[2][GATHER_STEPS * 64];
    t.src = src;
    t.k4 = (int32_t)pl->k4;
    t.maddubs_ok = j->w->maddubs_ok;
    t.sign_ok = j->w->sign_ok;
    t.wsum = j->w->wsum;
    t.fix_start = NULL;
    t.fix = j->w->fix;
    t.ch_stride = (int64_t)p->out_h * p->out_w;
    t.out = j->out;
    t.st = st;
    t.e.rq = &p->rq;
    t.e.fixed_vec = j->fixed_vec;
    t.e.mult_small = j->mult_small;
    t.res = j->res;
    t.add = j->add;
    for (int64_t pair = pair0; pair < pair_end; pair++) {
        const int64_t s = s0 + (pair - pair0) * QX_CONV_SLOTS;
        make_store(p, pl, s, &st[0]);
        make_store(p, pl, s + 16, &st[1]);
        if (st[0].n_seg == 0 && st[1].n_seg == 0) continue;
        t.koff = j->koff;
        if (!a0) {
            make_src(j, s, &src[0]);
            make_src(j, s + 16, &src[1]);
            if ((src[0].n > 1 || src[1].n > 1) && pl->k4 <= GATHER_STEPS &&
                !(j->uk->runs2 && src[0].n <= 2 && src[1].n <= 2)) {
                for (int h = 0; h < 2; h++) {
                    gather_vec(j, &src[h], gbuf[h]);
                    src[h].n = 1;
                    src[h].p[0] = gbuf[h];
                }
                t.koff = j->seq;
            }
        } else {
            /* the two packed [k4][16][4] blocks, read at 64 k */
            t.koff = j->seq;
            const uint8_t *a = a0 + 2 * (pair - pair0) * pl->k4 * 64;
            src[0].n = src[1].n = 1;
            src[0].mask[0] = src[1].mask[0] = 0xFFFF;
            src[0].p[0] = a;
            src[1].p[0] = a + pl->k4 * 64;
        }
        /* one call for all the blocks where the kernel loops over them
         * (its per-call set-up then comes once per slot pair) */
        t.n_blk = j->uk->multi_blk ? (int32_t)(blk1 - blk0) : 1;
        for (int64_t blk = blk0; blk < blk1; blk += t.n_blk) {
            const int64_t pr = (j->g * pl->nb + blk) * QX_CONV_ROWS;
            t.w = j->w->data + pr * pl->k4 * 4;
            if (j->w->fix_start) t.fix_start = j->w->fix_start + pr;
            const int64_t left = pl->opg - blk * QX_CONV_ROWS;
            t.n_rows = (int32_t)(left < QX_CONV_ROWS ? left : QX_CONV_ROWS);
            t.rows_left = (int32_t)left;
            t.ch0 = (int32_t)(j->g * pl->opg + blk * QX_CONV_ROWS);
            t.e.corr = j->corr + pr;
            t.e.mult_f = j->mult + pr;
            t.e.mult_q = j->mq + pr;
            t.e.shift = j->shift + pr;
            j->uk->conv_tile(&t);
        }
    }
}

/* Split the tiles of n_pairs slot pairs x nb channel blocks (one group)
 * into about per_thread tasks per thread: runs of ppt pairs x chunks of cb
 * blocks. The pool gives each thread a contiguous range of task numbers, so
 * the numbering decides what a thread reads: run-major (the default) keeps
 * each thread on its own pixels, and their activations in its cache; when
 * the group's weights outweigh the activations it reads (act_bytes: small
 * images, many channels, mostly batch 1), chunk-major with one chunk per
 * thread has each thread stream only its own channels' weights. */
static void split_tiles(conv_job *j, int64_t nthreads, int64_t per_thread, size_t act_bytes) {
    const cplan *pl = j->pl;
    const int64_t want = per_thread * nthreads;
    const size_t w_bytes = (size_t)pl->nb * QX_CONV_ROWS * (size_t)pl->k4 * 4;
    j->cc_major = nthreads > 1 && pl->nb >= nthreads && w_bytes > act_bytes;
    int64_t n_cc = 1;
    if (j->cc_major)
        n_cc = nthreads;
    else if (nthreads > 1 && j->n_pairs < want)
        n_cc = (want + j->n_pairs - 1) / j->n_pairs;
    if (n_cc > pl->nb) n_cc = pl->nb;
    j->cb = (pl->nb + n_cc - 1) / n_cc;
    j->n_cc = (pl->nb + j->cb - 1) / j->cb;
    const int64_t runs = nthreads > 1 ? (want + j->n_cc - 1) / j->n_cc : 1;
    j->ppt = (j->n_pairs + runs - 1) / runs;
    j->n_pt = (j->n_pairs + j->ppt - 1) / j->ppt;
}

/* conv8c4: a run of consecutive slot pairs and a chunk of channel blocks,
 * read from the planes. */
/* Task `task` of split_tiles' numbering: pairs [pair0, pair_end) x channel
 * blocks [blk0, blk1). */
typedef struct tile_span {
    int64_t pair0, pair_end, blk0, blk1;
} tile_span;

static tile_span span_of(const conv_job *j, int64_t task) {
    const int64_t run = j->cc_major ? task % j->n_pt : task / j->n_cc;
    const int64_t cc = j->cc_major ? task / j->n_pt : task % j->n_cc;
    tile_span t = {.pair0 = run * j->ppt, .blk0 = cc * j->cb};
    t.pair_end = t.pair0 + j->ppt < j->n_pairs ? t.pair0 + j->ppt : j->n_pairs;
    t.blk1 = t.blk0 + j->cb < j->pl->nb ? t.blk0 + j->cb : j->pl->nb;
    return t;
}

static void c4_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const tile_span t = span_of(j, task);
    run_tiles(j, t.pair0, t.pair_end, t.pair0 * QX_CONV_SLOTS, NULL, t.blk0, t.blk1);
}

/* Band path: a run of consecutive slot pairs of the packed band and a chunk
 * of channel blocks. Runs rather than single pairs: neighbouring pairs
 * write into the same output cache lines, and two threads taking turns on
 * them would pass the lines back and forth. */
static void compute_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const tile_span t = span_of(j, task);
    run_tiles(j, t.pair0, t.pair_end, j->s0 + t.pair0 * QX_CONV_SLOTS,
              j->band + 2 * t.pair0 * j->pl->k4 * 64, t.blk0, t.blk1);
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

/* ---- transposed tiles (qx_conv_tt) -------------------------------------- */

static _Atomic bool tt_allowed = true;
static _Atomic bool fill_vbmi_allowed = true;
void qf_x86_conv_set_fill_vbmi(bool allow) { fill_vbmi_allowed = allow; }

/* Whether the CPU and the test hook let the VBMI fills run. */
static bool vbmi_fills_ok(void) {
    return fill_vbmi_allowed && (qf_cpu_features() & QF_CPU_AVX512VBMI);
}

/* The stride-1 conv8c4 fill by qx_ukernels.fill_s1, for input rows of at
 * most 32 columns: groups of 32 / in_w rows (each channel's bytes of a group
 * fit the kernel's 32), where a group's plane rows take at most S1_BYTES.
 * Byte i of a group (plane row t = i / row bytes, column c, channel lane k)
 * reads byte 32 k + t * in_w + c - pad_left, or is the pad byte. */
static void s1_table(const qf_ref_conv_params *p, const cplan *pl, conv_job *j) {
    j->s1_rows = 0;
    if (!j->uk || !j->uk->fill_s1 || !vbmi_fills_ok() || p->stride_h != 1 || p->stride_w != 1 ||
        p->in_w > 32)
        return;
    const int64_t w = p->in_w, rb = pl->wq * 4, g_rows = 32 / w;
    if (g_rows * rb > S1_BYTES) return;
    const uint8_t pad = (uint8_t)(0x80 ^ (uint8_t)(int8_t)p->in_zp);
    /* channels of the last quad of a group (4 when cpg is a multiple of 4) */
    const int64_t last = pl->cpg - (pl->nq - 1) * 4;
    memset(j->s1_valid, 0, sizeof j->s1_valid);
    /* (no divisions: this runs on every call, and batch-1 layers of small
     * images take only microseconds) */
    for (int tab = 0; tab < (last < 4 ? 2 : 1); tab++) {
        int64_t i = 0;
        for (int64_t t = 0; t < g_rows; t++)
            for (int64_t c = 0; c < pl->wq; c++) {
                const int64_t ix = c - p->pad_left;
                const bool in = ix >= 0 && ix < w;
                for (int64_t k = 0; k < 4; k++, i++) {
                    if (in && (tab == 0 || k < last)) {
                        j->s1_idx[tab][i] = (uint8_t)(32 * k + t * w + ix);
                        j->s1_valid[tab][i >> 6] |= (uint64_t)1 << (i & 63);
                    } else {
                        j->s1_idx[tab][i] = pad;
                    }
                }
            }
    }
    j->s1_rows = g_rows;
}
/* The width-stride-2 conv8c4 fill by qx_ukernels.fill_s2v, for input rows
 * of at most 32 columns and phase rows of at most 16 positions: byte i of
 * phase x's row (column c = i / 4, channel lane k) reads input column
 * 2 c + x - pad_left of channel k (byte 32 k + that), or is the pad byte. */
static void s2_table(const qf_ref_conv_params *p, const cplan *pl, conv_job *j) {
    j->s2_ok = false;
    if (!j->uk || !j->uk->fill_s2v || !vbmi_fills_ok() || p->stride_w != 2 || p->in_w > 32 ||
        pl->wq > 16)
        return;
    const uint8_t pad = (uint8_t)(0x80 ^ (uint8_t)(int8_t)p->in_zp);
    for (int x = 0; x < 2; x++) {
        j->s2_valid[x] = 0;
        for (int64_t c = 0, i = 0; c < 16; c++) {
            const int64_t ix = 2 * c + x - p->pad_left;
            const bool in = c < pl->wq && ix >= 0 && ix < p->in_w;
            for (int64_t k = 0; k < 4; k++, i++) {
                j->s2_idx[x][i] = in ? (uint8_t)(32 * k + ix) : pad;
                if (in) j->s2_valid[x] |= (uint64_t)1 << i;
            }
        }
    }
    j->s2_ok = true;
}

void qf_x86_conv_set_tt(bool allow) { tt_allowed = allow; }

/* Pixels per transposed tile and the rows a tail of r pixels costs. */
#define TT_ROWS 8
static int64_t tt_cost_rows(int64_t px) {
    const int64_t r = px % TT_ROWS;
    return px / TT_ROWS * TT_ROWS + (r == 0 ? 0 : r <= 4 ? 4 : TT_ROWS);
}

/* AVX2's transposed tiles take plain vpmaddubsw weights only (w NULL: the
 * weights qualify). */
static bool tt_weights_ok(const qx_ukernels *uk, const qf_x86_weights *w) {
    return !w || uk != qx_ukernels_avx2() || (w->maddubs_ok && !w->fix_start);
}

/* Kernels that read vectors of two runs in place (qx_ukernels.runs2) pay
 * almost nothing for per-pixel slots whose vectors break at most once
 * (rows of 15 or more pixels), so there a conv8c4 layer keeps the phase
 * grid only where it adds no tiles: ResNet-18's 56x56 layers (rows of 58
 * grid columns) measured 1.03x at batch 64 per pixel. The scratch size does
 * not change (no band either way: k4 <= GATHER_STEPS). */
static void prefer_pixels(const qf_ref_conv_params *p, cplan *pl) {
    if (!pl->c4 || !pl->grid || p->out_w < 15 || pl->k4 > GATHER_STEPS) return;
    const int64_t rg_slots = ((int64_t)p->batch * p->out_h - 1) * pl->wq + p->out_w;
    const int64_t px_slots = (int64_t)p->batch * p->out_h * p->out_w;
    if ((rg_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS >
        (px_slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS) {
        pl->grid = false;
        pl->slots = px_slots;
    }
}

/* Whether a conv8c4 layer runs on transposed tiles: they compute every
 * output pixel once (tails of 8-pixel tiles aside) where 32-slot tiles also
 * compute grid columns past out_w and round each image's slots up, so they
 * win on small images (7x7: 49 of 64 slots useful; transposed, 49 of 52).
 * Their epilogue (a byte transpose) costs more per output than the slot
 * tiles', so short reductions stay on slot tiles. */
static bool tt_pick(const qf_ref_conv_params *p, const cplan *pl, const qx_ukernels *uk,
                    const qf_x86_weights *w) {
    if (!pl->c4 || !uk->conv_tt || !tt_allowed || pl->k4 < 64 || !tt_weights_ok(uk, w))
        return false;
    const double px = (double)p->out_h * p->out_w;
    const double useful = (double)p->batch * px;
    /* channel padding: slot tiles round to blocks of 8, transposed ones to 32 */
    const double ch_slot = (double)pl->opg / (double)(pl->nb * QX_CONV_ROWS);
    const double ch_tt = (double)pl->opg / (double)((pl->opg + 31) / 32 * 32);
    const double slot_eff =
        useful / (double)((pl->slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS * QX_CONV_SLOTS) *
        ch_slot;
    const double tt_eff = px / (double)tt_cost_rows((int64_t)px) * ch_tt;
    /* per-pixel slot vectors that cross more than one row break (rows under
     * 15 pixels) are gathered: about 3/4 of one channel block's work per
     * tile pair (see make_plan) */
    if (!pl->grid && p->out_w < 15 && pl->k4 <= GATHER_STEPS)
        return tt_eff > slot_eff * (double)(pl->nb * 4) / (double)(pl->nb * 4 + 3);
    return tt_eff > slot_eff * 1.08;
}

/* A 1x1 layer fills planes only for transposed tiles, and only with many
 * output channels: the fill costs about what packing the input for slot
 * tiles does, but the tiles' gain grows with the channels that share it.
 * Measured at batch 1, one thread: 320->1280, 2048->512 and 512->2048 at
 * 7x7 and 1024->256 at 14x14 gained 3-10%; 384->64 at 14x14 and 960->160
 * at 7x7 lost 2-4%. On success *pl is the plan. */
#define TT_1X1_MIN_OPG 256
static bool tt_1x1(const qf_ref_conv_params *p, qx_layout layout, const qx_ukernels *uk,
                   const qf_x86_weights *w, cplan *pl) {
    return uk && (int64_t)p->k_h * p->k_w == 1 && layout == QX_LAYOUT_CONV8C4 &&
           p->out_c / p->groups >= TT_1X1_MIN_OPG && make_plan(p, layout, true, pl) &&
           tt_pick(p, pl, uk, w);
}

bool qf_x86_conv_uses_tt(const qf_ref_conv_params *p, qf_isa isa) {
    cplan pl;
    qf_ref_conv_params one;
    if (!p || (isa != QF_ISA_AVX512VNNI && isa != QF_ISA_AVX2) || !qf_x86_isa_usable(isa))
        return false;
    if (per_image(p, QX_LAYOUT_CONV8C4)) {
        one = *p;
        one.batch = 1;
        p = &one;
    }
    const qx_ukernels *uk =
        isa == QF_ISA_AVX512VNNI ? qx_ukernels_avx512vnni() : qx_ukernels_avx2();
    if ((int64_t)p->k_h * p->k_w == 1) return tt_1x1(p, QX_LAYOUT_CONV8C4, uk, NULL, &pl);
    if (!make_plan(p, QX_LAYOUT_CONV8C4, false, &pl)) return false;
    if (uk && uk->runs2) prefer_pixels(p, &pl);
    return tt_pick(p, &pl, uk, NULL);
}

/* Task `task`: group g, chunk of 32 channels, range of pixel tiles. */
static void tt_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t per_g = j->tt_nc * j->tt_nr;
    const int64_t g = task / per_g, cc = task % per_g / j->tt_nr, rg = task % j->tt_nr;
    const int64_t px = (int64_t)p->out_h * p->out_w;
    const int64_t all = (int64_t)p->batch * j->tt_tpi;
    const int64_t t0 = rg * j->tt_per, t1 = t0 + j->tt_per < all ? t0 + j->tt_per : all;
    const uint8_t *gbase = j->planes + g * pl->g_stride;
    qx_conv_tt t;
    t.koff = j->koff;
    t.k4 = (int32_t)pl->k4;
    const int64_t blk0 = cc * 4;
    for (int i = 0; i < 4; i++) {
        const int64_t b = blk0 + i < pl->nb ? blk0 + i : pl->nb - 1;
        t.wb[i] = j->w->data + (g * pl->nb + b) * QX_CONV_ROWS * pl->k4 * 4;
    }
    const int64_t left = pl->opg - cc * 32;
    t.n_ch = (int32_t)(left < 32 ? left : 32);
    t.ch0 = (int32_t)(g * pl->opg + cc * 32);
    const int64_t pr = (g * pl->nb + blk0) * QX_CONV_ROWS; /* epilogue table row */
    t.e.rq = &p->rq;
    t.e.corr = j->corr + pr;
    t.e.mult_f = j->mult + pr;
    t.e.mult_q = j->mq + pr;
    t.e.shift = j->shift + pr;
    t.e.fixed_vec = j->fixed_vec;
    t.e.mult_small = j->mult_small;
    t.ch_stride = px;
    t.add = j->add;
    /* the first tile's image and pixel, then stepped (no divisions per tile) */
    int64_t b = t0 / j->tt_tpi, q0 = t0 % j->tt_tpi * TT_ROWS;
    int64_t oy = q0 / p->out_w, ox = q0 % p->out_w;
    for (int64_t ti = t0; ti < t1; ti++) {
        const int64_t n = px - q0 < TT_ROWS ? px - q0 : TT_ROWS;
        t.n_rows = (int32_t)n;
        const uint8_t *img = gbase + b * pl->img_stride * 4;
        for (int64_t r = 0; r < n; r++) {
            t.px[r] = img + (oy * pl->wq + ox) * 4;
            if (++ox == p->out_w) {
                ox = 0;
                oy++;
            }
        }
        for (int64_t r = n; r < TT_ROWS; r++)
            t.px[r] = t.px[n - 1];
        const int64_t off = (b * p->out_c + t.ch0) * px + q0;
        t.out = j->out + off;
        t.res = j->res ? j->res + off : NULL;
        j->uk->conv_tt(&t);
        q0 += n;
        if (q0 == px) {
            q0 = oy = ox = 0;
            b++;
        }
    }
}

/* Band path: per group and band of slots, pack (conv8) or gather
 * (conv8c4) its 16-slot vectors, then split its tiles over runs of slot
 * pairs and chunks of channel blocks. */
static void band_loop(qf_threadpool *pool, conv_job *j, qf_task_fn fill_band) {
    const qf_ref_conv_params *p = j->p;
    const cplan *pl = j->pl;
    const int64_t nthreads = qf_threadpool_size(pool);
    for (j->g = 0; j->g < p->groups; j->g++) {
        for (j->s0 = 0; j->s0 < pl->slots; j->s0 += pl->band_slots) {
            int64_t n = pl->slots - j->s0;
            n = (n + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS * QX_CONV_SLOTS;
            if (n > pl->band_slots) n = pl->band_slots;
            qf_parallel_for(pool, n / 16, fill_band, j);
            j->n_pairs = n / QX_CONV_SLOTS;
            split_tiles(j, nthreads, 4, (size_t)n * (size_t)pl->k4 * 4);
            qf_parallel_for(pool, j->n_pt * j->n_cc, compute_task, j);
        }
    }
}

qf_status qf_x86_conv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                           const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                           int8_t *out, void *scratch, size_t scratch_bytes, qf_err *err) {
    return qf_x86_conv2d_s8_add(pool, isa, p, in, w, bias, NULL, NULL, out, scratch, scratch_bytes,
                                err);
}

/* The per-channel tables of rows_p = groups * nb * QX_CONV_ROWS entries
 * (rows past a group's channels are zero); false when a shift is beyond
 * the vector fixed-point path. */
static bool fill_epi(const qf_x86_weights *w, const qf_ref_requant *rq, int32_t in_zp,
                     const int32_t *bias, int32_t *corr, float *mult, int32_t *mq, int32_t *shift,
                     bool *mult_small) {
    bool fixed_vec = true;
    *mult_small = true;
    const int64_t opg = w->rows / w->groups;
    /* corr = bias - (128 + z) * wsum, modulo 2^32 like the reference sum */
    const uint32_t zc = (uint32_t)(128 + in_zp);
    for (int64_t g = 0; g < w->groups; g++)
        for (int64_t row = 0; row < (int64_t)w->nb * QX_CONV_ROWS; row++) {
            const int64_t pr = g * w->nb * QX_CONV_ROWS + row;
            if (row >= opg) {
                corr[pr] = mq[pr] = shift[pr] = 0;
                mult[pr] = 0.0f;
                continue;
            }
            const int64_t c = g * opg + row;
            const uint32_t bv = bias ? (uint32_t)bias[c] : 0u;
            const qf_ref_rescale *rs = qr_mult_of(rq, c);
            corr[pr] = (int32_t)(bv - zc * (uint32_t)w->wsum[c]);
            mult[pr] = rs->mult_f;
            mq[pr] = rs->mult_q;
            shift[pr] = rs->shift;
            if (rs->shift < -31) fixed_vec = false;
            if (!qx_mult_small(rs->mult_f)) *mult_small = false;
        }
    return fixed_vec;
}

static bool conv_weights_ok(const qf_x86_weights *w) {
    return w && w->wsum && (w->layout == QX_LAYOUT_CONV8 || w->layout == QX_LAYOUT_CONV8C4) &&
           w->groups >= 1 && w->rows >= 1 && w->rows % w->groups == 0 && w->nb >= 1 &&
           (int64_t)w->nb * QX_CONV_ROWS >= w->rows / w->groups;
}

size_t qf_x86_conv_epi_bytes(const qf_x86_weights *w) {
    if (!conv_weights_ok(w)) return 0;
    return 4 * (size_t)w->groups * (size_t)w->nb * QX_CONV_ROWS * sizeof(int32_t);
}

qf_status qf_x86_conv_epi_build(const qf_x86_weights *w, const qf_ref_requant *rq, int32_t in_zp,
                                const int32_t *bias, void *dst, qf_x86_conv_epi *out, qf_err *err) {
    const char *who = "qf_x86_conv_epi_build";
    if (!w || !rq || !dst || !out || !conv_weights_ok(w))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad arguments", who);
    if (!qr_in_range(in_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)in_zp);
    qf_status s = qr_check_requant(rq, w->rows, -128, 127, who, err);
    if (s != QF_OK) return s;
    memset(out, 0, sizeof *out);
    out->rows_p = (int64_t)w->groups * w->nb * QX_CONV_ROWS;
    int32_t *base = dst;
    out->corr = base;
    out->mult = (float *)(void *)(base + out->rows_p);
    out->mq = base + 2 * out->rows_p;
    out->shift = base + 3 * out->rows_p;
    out->fixed_vec =
        fill_epi(w, rq, in_zp, bias, out->corr, out->mult, out->mq, out->shift, &out->mult_small);
    out->wsum = w->wsum;
    out->bias = bias;
    out->in_zp = in_zp;
    out->rq = *rq;
    return QF_OK;
}

/* epi holds for this call's constants */
static bool epi_matches(const qf_x86_conv_epi *e, const qf_ref_conv_params *p,
                        const qf_x86_weights *w, const int32_t *bias) {
    return e && e->wsum == w->wsum && e->bias == bias && e->in_zp == p->in_zp &&
           e->rq.mode == p->rq.mode && e->rq.mult == p->rq.mult && e->rq.n_mult == p->rq.n_mult &&
           e->rq.out_zp == p->rq.out_zp && e->rq.act_min == p->rq.act_min &&
           e->rq.act_max == p->rq.act_max && e->rows_p == (int64_t)w->groups * w->nb * QX_CONV_ROWS;
}

qf_status qf_x86_conv2d_s8_add(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                               const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                               const qf_x86_conv_epi *epi, const qf_x86_residual *r, int8_t *out,
                               void *scratch, size_t scratch_bytes, qf_err *err) {
    const char *who = "qf_x86_conv2d_s8";
    if (!p || !in || !w || !w->data || !out || !scratch || (r && !r->res))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (per_image(p, w->layout)) {
        qf_ref_conv_params one = *p;
        one.batch = 1;
        const int64_t in_img = (int64_t)p->in_c * p->in_h * p->in_w;
        const int64_t out_img = (int64_t)p->out_c * p->out_h * p->out_w;
        for (int32_t b = 0; b < p->batch; b++) {
            qf_x86_residual rb;
            if (r) {
                rb = *r;
                rb.res = r->res + b * out_img;
            }
            qf_status s =
                qf_x86_conv2d_s8_add(pool, isa, &one, in + b * in_img, w, bias, epi, r ? &rb : NULL,
                                     out + b * out_img, scratch, scratch_bytes, err);
            if (s) return s;
        }
        return QF_OK;
    }
    cplan pl;
    const qx_ukernels *uk =
        isa == QF_ISA_AVX512VNNI ? qx_ukernels_avx512vnni() : qx_ukernels_avx2();
    bool planned = tt_1x1(p, w->layout, uk, w, &pl);
    if (!planned && !make_plan(p, w->layout, false, &pl))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: batch %d in_c %d out_c %d groups %d, %dx%d -> %dx%d not supported", who,
                       (int)p->batch, (int)p->in_c, (int)p->out_c, (int)p->groups, (int)p->in_h,
                       (int)p->in_w, (int)p->out_h, (int)p->out_w);
    if (!planned && uk && uk->runs2) prefer_pixels(p, &pl);
    if ((double)pl.slots * (double)p->out_c * (double)pl.k < qf_x86_serial_macs()) pool = NULL;
    if (!epi_matches(epi, p, w, bias)) {
        epi = NULL; /* (checked when it was built) */
        if (!qr_in_range(p->in_zp, -128, 127))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who,
                           (int)p->in_zp);
        qf_status s = qr_check_requant(&p->rq, p->out_c, -128, 127, who, err);
        if (s != QF_OK) return s;
    }
    if (w->rows != p->out_c || w->k != pl.k || w->k4 != pl.k4 || w->groups != p->groups ||
        w->nb != pl.nb || (pl.c4 && w->khw != (int32_t)p->k_h * p->k_w))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: packed weights do not match the layer", who);
    if (!qf_x86_isa_usable(isa))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: ISA %s not available", who, qf_isa_name(isa));
    if (w->fix_start && isa != QF_ISA_AVX2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: weights split for AVX2 run on %s", who,
                       qf_isa_name(isa));
    if (scratch_bytes < pl.total)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scratch of %zu bytes, need %zu", who,
                       scratch_bytes, pl.total);
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    conv_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.pl = &pl;
    j.w = w;
    j.uk = uk;
    j.in = in;
    j.in_end = in + (int64_t)p->batch * p->in_c * p->in_h * p->in_w;
    j.out = out;
    /* the tile adds with the conv's result as operand a */
    qx_add_consts add;
    if (r) {
        add = r->c;
        if (!r->conv_is_a) {
            add.a_zp = r->c.b_zp;
            add.b_zp = r->c.a_zp;
            add.a_mult = r->c.b_mult;
            add.b_mult = r->c.a_mult;
        }
        j.res = r->res;
        j.add = &add;
    }
    j.planes = base;
    j.band = base + align64(pl.planes_bytes);
    int64_t *taps = (int64_t *)(void *)(base + pl.taps_off);
    int32_t *koff = (int32_t *)(void *)(base + pl.koff_off);
    int32_t *seq = (int32_t *)(void *)(base + pl.seq_off);
    for (int64_t k = 0; k < pl.k4; k++)
        seq[k] = (int32_t)(k * 64);
    j.seq = seq;
    if (epi) {
        j.corr = epi->corr;
        j.mult = epi->mult;
        j.mq = epi->mq;
        j.shift = epi->shift;
        j.fixed_vec = epi->fixed_vec;
        j.mult_small = epi->mult_small;
    } else {
        int32_t *corr = (int32_t *)(void *)(base + pl.corr_off);
        float *mult = (float *)(void *)(base + pl.mult_off);
        int32_t *mq = (int32_t *)(void *)(base + pl.mq_off);
        int32_t *shift = (int32_t *)(void *)(base + pl.shift_off);
        j.fixed_vec = fill_epi(w, &p->rq, p->in_zp, bias, corr, mult, mq, shift, &j.mult_small);
        j.corr = corr;
        j.mult = mult;
        j.mq = mq;
        j.shift = shift;
    }
    j.taps = taps;
    j.koff = koff;

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
    if (pl.c4) {
        /* step (quad, tap): the tap's phase plane and position shift, in
         * 4-byte positions */
        for (int64_t ky = 0, t = 0; ky < p->k_h; ky++) {
            const int64_t ry = ky * p->dil_h;
            for (int64_t kx = 0; kx < p->k_w; kx++, t++) {
                const int64_t rx = kx * p->dil_w;
                koff[t] = (int32_t)(((ry % sh) * sw + rx % sw) * pl.ppl +
                                    ((ry / sh) * pl.wq + rx / sw) * 4);
            }
        }
        for (int64_t q = 1; q < pl.nq; q++)
            for (int64_t t = 0; t < khw; t++)
                koff[q * khw + t] = (int32_t)(q * pl.q_stride + koff[t]);
    } else {
        for (int64_t ic = 1; ic < pl.cpg; ic++)
            for (int64_t t = 0; t < khw; t++)
                taps[ic * khw + t] = ic * pl.ic_stride + taps[t];
        /* the largest offset: the last channel's (ic_stride >= 0) */
        int64_t tmax = 0;
        for (int64_t t = 0; t < khw; t++)
            if (taps[t] > tmax) tmax = taps[t];
        j.tap_max = (pl.cpg - 1) * pl.ic_stride + tmax;
    }
    j.phases = sh * sw > 64 ? ~(uint64_t)0 : 0;
    for (int64_t ky = 0; ky < p->k_h && sh * sw <= 64; ky++)
        for (int64_t kx = 0; kx < p->k_w; kx++)
            j.phases |= (uint64_t)1 << (((ky * p->dil_h) % sh) * sw + (kx * p->dil_w) % sw);

    const int64_t nthreads = qf_threadpool_size(pool);
    if (pl.c4) {
        /* fill the quad planes (the slack after them too: lanes past the
         * last slot read it), then tiles straight from them: runs of slot
         * pairs x chunks of channel blocks, about 8 tasks per thread */
        memset(j.planes + pl.planes_bytes - PLANE_SLACK, 0x80 ^ (uint8_t)(int8_t)p->in_zp,
               PLANE_SLACK);
        /* the fill in row bands, thread r's band r of every plane, where
         * the tiles then go to threads by pixels too (pixel-major, fewer
         * images than threads): each thread then reads what it filled, and
         * fills from the rows its previous layer wrote */
        const bool tt = tt_pick(p, &pl, j.uk, w);
        const bool slot_tiles = !tt && !pl.band_bytes;
        if (slot_tiles) {
            j.n_pairs = (pl.slots + QX_CONV_SLOTS - 1) / QX_CONV_SLOTS;
            split_tiles(&j, nthreads, 8, pl.planes_bytes / (size_t)p->groups);
        }
        s1_table(p, &pl, &j);
        s2_table(p, &pl, &j);
        j.fill_bands = slot_tiles && !j.cc_major && nthreads > 1 && p->batch < nthreads &&
                               pl.hq >= 2 * nthreads
                           ? nthreads
                           : 1;
        /* about 8 tasks per thread (one band each when banded) */
        const int64_t items = j.fill_bands * p->groups * pl.nq * p->batch;
        j.fill_tasks = nthreads > 1 ? 8 * nthreads : 1;
        if (j.fill_tasks > items) j.fill_tasks = items;
        qf_parallel_for(pool, j.fill_tasks, fill_c4_task, &j);
        if (tt) {
            /* chunk-major: each thread streams its own channels' weights;
             * about 4 tasks per thread */
            j.tt_tpi = ((int64_t)p->out_h * p->out_w + TT_ROWS - 1) / TT_ROWS;
            j.tt_nc = (pl.opg + 31) / 32;
            const int64_t all = (int64_t)p->batch * j.tt_tpi;
            const int64_t per_chunks = (int64_t)p->groups * j.tt_nc;
            int64_t nr = (4 * nthreads + per_chunks - 1) / per_chunks;
            if (nr > all) nr = all;
            j.tt_per = (all + nr - 1) / nr;
            j.tt_nr = (all + j.tt_per - 1) / j.tt_per;
            qf_parallel_for(pool, per_chunks * j.tt_nr, tt_task, &j);
            return QF_OK;
        }
        if (pl.band_bytes) {
            band_loop(pool, &j, gather_task);
            return QF_OK;
        }
        /* slot tiles, split before the fill */
        for (j.g = 0; j.g < p->groups; j.g++)
            qf_parallel_for(pool, j.n_pt * j.n_cc, c4_task, &j);
        return QF_OK;
    }
    if (pl.direct) {
        j.src = (const uint8_t *)in;
        j.src_len = (int64_t)p->batch * p->in_c * p->in_h * p->in_w;
    } else {
        qf_parallel_for(pool, (int64_t)p->in_c * p->batch, fill_task, &j);
        j.src = j.planes;
        j.src_len = (int64_t)pl.planes_bytes;
    }
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
    band_loop(pool, &j, pack_task);
    return QF_OK;
}

#else

void qf_x86_conv_set_tt(bool allow) { (void)allow; }
void qf_x86_conv_set_fill_vbmi(bool allow) { (void)allow; }

bool qf_x86_conv_uses_tt(const qf_ref_conv_params *p, qf_isa isa) {
    (void)p;
    (void)isa;
    return false;
}

size_t qf_x86_conv2d_s8_scratch_size(const qf_ref_conv_params *p, qx_layout layout) {
    (void)p;
    (void)layout;
    return 0;
}

qf_status qf_x86_conv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                           const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                           int8_t *out, void *scratch, size_t scratch_bytes, qf_err *err) {
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_conv2d_s8: not an x86-64 build");
}

qf_status qf_x86_conv2d_s8_add(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                               const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                               const qf_x86_conv_epi *epi, const qf_x86_residual *r, int8_t *out,
                               void *scratch, size_t scratch_bytes, qf_err *err) {
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_conv2d_s8_add: not an x86-64 build");
}

size_t qf_x86_conv_epi_bytes(const qf_x86_weights *w) {
    (void)w;
    return 0;
}

qf_status qf_x86_conv_epi_build(const qf_x86_weights *w, const qf_ref_requant *rq, int32_t in_zp,
                                const int32_t *bias, void *dst, qf_x86_conv_epi *out, qf_err *err) {
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_conv_epi_build: not an x86-64 build");
}

#endif
