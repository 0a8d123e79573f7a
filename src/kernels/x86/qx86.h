/* qx86.h - int8 convolution and fully connected kernels for x86 (AVX2 and
 * AVX-512 VNNI), bit-identical to the reference kernels of kernels/ref/qref.h
 * in both requantization modes.
 *
 * Numerics: vpdpbusd multiplies unsigned by signed bytes, so activations are
 * fed as u = q_x ^ 0x80 = q_x + 128 in [0, 255] and the products summed
 * modulo 2^32 (vpdpbusd and vpaddd wrap, like the reference's int32 sum):
 *     sum (q_x - z) * w = sum u * w - (128 + z) * sum w.
 * The per-channel term corr[c] = bias[c] - (128 + z) * wsum[c] (mod 2^32) is
 * added before requantization; wsum is computed when the weights are packed.
 * Padded taps read u = z + 128 (a tap of value z contributes 0) and the
 * zero-padded reduction tail has w = 0. AVX2 uses vpmaddubsw + vpmaddwd when
 * every pair of weights it combines satisfies 255 * (|w0| + |w1|) <= 32767
 * (no int16 saturation; checked at pack time), else an always-exact vpmaddwd
 * path on zero-extended activations. FP32 requantization is the spec's SIMD
 * form (cvtdq2ps, mulps, maxps, minps, cvtps2dq, paddd: no FMA). FIXED mode
 * runs the gemmlowp steps (saturating left shift, SRDHM, RDBP) on 16 lanes
 * with AVX-512 (64-bit products by vpmuldq); AVX2, and multipliers with a
 * shift below -31, requantize lane by lane with qf_ref_requant_fixed.
 *
 * Layout: the graph stays NCHW; the kernels pack internally. Convolutions
 * have two layouts, chosen per layer by qf_x86_conv_layout():
 *  - "conv8c4" (most layers: at least 4 input channels per group, or 1x1):
 *    weights per group in blocks of 8 output channels, each [k4][8][4]
 *    bytes where reduction step k4 = (channel quad, tap) and the 4 bytes of
 *    a lane are 4 consecutive input channels at that tap (channels padded to
 *    4 with zero weights). Activations: per run, one zero-point padded copy
 *    of the input, split into stride phases and interleaved by channel
 *    quads, already flipped to u8 ([group][quad][phase][batch][Hq][Wq][4]).
 *    Then the 64 bytes of 16 consecutive slots at one (quad, tap) are one
 *    load at a fixed offset from the slots' position: the micro-kernel reads
 *    the copy in place through a table of those offsets (an indirection by
 *    reduction step), and there is no packing per tile. A 16-slot vector
 *    whose slots are not consecutive in the copy (a row or image break) is
 *    read as up to 16 runs merged under lane masks (qx_src).
 *    Small images (AVX-512 VNNI, long reductions) run the same planes and
 *    weights on transposed tiles instead (qx_conv_tt: 8 output pixels, one
 *    broadcast each, x 32 output channels in the lanes), where the slot
 *    tiles would compute many grid columns past out_w or round each image
 *    up to whole tiles (qx86_conv.c's tt_pick).
 *  - "conv8" (1-3 input channels per group with a k x k kernel, e.g. RGB or
 *    grey stems, where quads of channels would pad the reduction): as above
 *    but the 4 bytes of a lane are 4 consecutive taps of one channel in
 *    (channel, ky, kx) order, taps padded to 4 with zeros, and:
 *  - conv8 activations: per run, a zero-point padded copy of the input split
 *    into stride phases ([ic][phase_y][phase_x][batch][Hq][Wq]; skipped for
 *    batch 1, stride 1, no padding), so that for every tap the activations of
 *    consecutive output "slots" (b, oy, ox in a Hq x Wq grid; slots with ox >=
 *    out_w or oy >= out_h are computed and dropped) are consecutive bytes.
 *    Bands of slots are then packed into [16 slots][k4][16][4] blocks by a
 *    4-way byte interleave, shared by all output channels. Batch is folded
 *    into the slot (GEMM M) dimension.
 *  - gemm weights ("gemm16"): blocks of 16 output channels [k4][16][4],
 *    padded to a multiple of 32 channels; activations rows of u8.
 *  - depthwise 3x3/5x5 weights ("dw", AVX-512 VNNI and AVX2): per channel
 *    and kernel row, ceil(kw/4) groups of 4 taps; direct kernels, no packing
 *    of activations (see qf_x86_dwconv2d_s8). On AVX2, planes of at most
 *    100 output pixels in FP32 mode take 16 channels at a time instead,
 *    transposed into a padded grid with the channels in the lanes
 *    (qx86_dwcl_avx2.c).
 * 4- and 2-bit weights are widened to int8 when packed.
 * Threads (base/threadpool.h) split packing and the output tiles; every
 * output byte is computed by one task with the same arithmetic, so results
 * do not depend on the thread count. */
#ifndef QF_KERNELS_X86_QX86_H
#define QF_KERNELS_X86_QX86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "kernels/dispatch.h"
#include "kernels/ref/qref.h"
#include "kernels/x86/qx86_ew.h"

/* Layers with fewer multiply-accumulates than qf_x86_serial_macs() run on
 * the calling thread alone (default 2^19: about 3 us of work at a core's
 * VNNI peak, roughly what waking and joining another thread costs). Tests
 * set 0 to put the multi-threaded paths of small layers to work. */
double qf_x86_serial_macs(void);
void qf_x86_set_serial_macs(double macs);

/* Output channels per conv weight block, slots per conv tile. */
#define QX_CONV_ROWS 8
#define QX_CONV_SLOTS 32
/* Channels per gemm weight block; a gemm tile is up to 8 rows x 32 channels. */
#define QX_GEMM_BLOCK 16
#define QX_GEMM_ROWS 8
#define QX_GEMM_COLS 32

typedef enum qx_layout {
    QX_LAYOUT_CONV8 = 1,  /* convolution, 4 taps of a channel per lane */
    QX_LAYOUT_GEMM16 = 2, /* fully connected */
    QX_LAYOUT_DW = 3,     /* depthwise: per channel, per kernel row, ceil(kw/4) dwords */
    QX_LAYOUT_CONV8C4 = 4 /* convolution, 4 channels of a tap per lane */
} qx_layout;

/* Packed weights (one allocation of qf_x86_weights_bytes(), caller-owned;
 * the ops keep it in the graph arena). */
typedef struct qf_x86_weights {
    const int8_t *data;  /* packed blocks */
    const int32_t *wsum; /* rows entries: sum of each channel's weights */
    int32_t rows;        /* output channels */
    int32_t k;           /* taps per channel */
    int32_t k4;          /* reduction steps: ceil(k / 4); conv8c4: ceil(cpg / 4) * khw */
    int32_t groups;      /* conv8: groups; gemm16: 1 */
    int32_t nb;          /* conv8: blocks per group; gemm16: blocks in all (even) */
    qx_layout layout;
    bool maddubs_ok; /* AVX2 vpmaddubsw cannot saturate on these weights */
    /* conv8 / conv8c4 / gemm16 weights vpmaddubsw could saturate on, none
     * of them -128: the AVX2 conv tiles multiply |q| (u8) by w * sign(q) (s8, within
     * +-127 as w != -128), where q = u - 128 is the signed activation; a
     * pair's products are then within 2 * 128 * 127 = 32512, exact in int16 */
    bool sign_ok;
    int32_t kh, kw; /* depthwise only: kernel size (k == kh * kw) */
    int32_t khw;    /* conv8 / conv8c4: taps per channel (k == cpg * khw) */
    /* depthwise: multipliers already checked for these weights (qf_x86_dw_accept_requant);
     * a call whose rq.mult is this array (n_rq_checked entries) skips the per-channel check */
    const qf_ref_rescale *rq_checked;
    int32_t n_rq_checked;
    /* conv8 / conv8c4 split for AVX2 (qf_x86_conv_split; fix_start NULL: not
     * split): every pair of weights vpmaddubsw combines whose products
     * could saturate (255 * (|w0| + |w1|) > 32767) holds w clamped to
     * [-64, 64] in data, and the remainder w - clamp (within +-63) in a
     * "fix" of its packed row and reduction step: packed row pr (block * 8 +
     * row) has fixes [fix_start[pr], fix_start[pr + 1]), each one pair:
     * bits 0-14 of fix[i] the step (reductions of up to 32768 steps), bit
     * 15 the pair (bytes 0-1 or 2-3 of the row's 4), bits 16-23 and 24-31
     * the remainders. Both parts stay within int16 products, so vpmaddubsw
     * over data plus the fixes is exact (maddubs_ok is then true). Only the
     * AVX2 kernels read split weights. */
    const int32_t *fix_start;
    const uint32_t *fix;
} qf_x86_weights;

/* Bytes for rows x k weights in `layout` with `groups` groups (rows % groups
 * == 0; gemm16 needs groups == 1); 0 when invalid or too large. */
size_t qf_x86_weights_bytes(qx_layout layout, int64_t rows, int64_t k, int64_t groups);

/* Pack rows x k weights (qref.h packed rows, container `bits` 8/4/2, values
 * in the restricted range) into dst (qf_x86_weights_bytes bytes, any
 * alignment >= 4) and describe them in *out. */
qf_status qf_x86_pack_weights(qx_layout layout, const uint8_t *packed, int64_t rows, int64_t k,
                              int bits, int64_t groups, void *dst, qf_x86_weights *out,
                              qf_err *err);

/* Convolution weights: rows = output channels, cpg input channels per
 * group, khw = k_h * k_w taps, k = cpg * khw values per row in (channel, ky,
 * kx) order. layout: QX_LAYOUT_CONV8 or QX_LAYOUT_CONV8C4, or 0 for
 * qf_x86_conv_layout()'s choice. Bytes 0 when invalid or too large. */
qx_layout qf_x86_conv_layout(int64_t cpg, int64_t khw);
size_t qf_x86_conv_weights_bytes(qx_layout layout, int64_t rows, int64_t cpg, int64_t khw,
                                 int64_t groups);
qf_status qf_x86_pack_conv_weights(qx_layout layout, const uint8_t *packed, int64_t rows,
                                   int64_t cpg, int64_t khw, int bits, int64_t groups, void *dst,
                                   qf_x86_weights *out, qf_err *err);

/* Bytes for the AVX2 split of packed conv8 / conv8c4 weights w (see
 * qf_x86_weights); 0 when w needs none (maddubs_ok already, another layout)
 * or when so many rows need fixes that the sign form is faster. */
size_t qf_x86_conv_split_bytes(const qf_x86_weights *w);
/* Test hook: true makes qf_x86_conv_split_bytes split weights however many
 * fixes they need, so tests reach the split kernels with any weights;
 * default false. */
void qf_x86_conv_set_split_always(bool always);
/* Split w for AVX2: data is w->data, writable (the packing's dst); dst
 * holds qf_x86_conv_split_bytes(w) bytes, 4-byte aligned, caller-owned
 * like the weights. Afterwards only QF_ISA_AVX2 runs w. */
qf_status qf_x86_conv_split(qf_x86_weights *w, int8_t *data, void *dst, size_t dst_bytes,
                            qf_err *err);
/* Depthwise weights (one input channel per group, multiplier 1): channels x
 * (kh * kw) values; bytes as above, 0 when invalid. */
size_t qf_x86_dw_weights_bytes(int64_t channels, int32_t kh, int32_t kw);
qf_status qf_x86_pack_dw_weights(const uint8_t *packed, int64_t channels, int32_t kh, int32_t kw,
                                 int bits, void *dst, qf_x86_weights *out, qf_err *err);
/* Check rq's multipliers once for the depthwise weights w (w->rows channels) and remember
 * them: calls with the same multiplier array then skip the per-channel check. The caller
 * must not change the array afterwards (the ops keep it in the graph arena). */
qf_status qf_x86_dw_accept_requant(qf_x86_weights *w, const qf_ref_requant *rq, qf_err *err);

/* True when isa has x86 kernels here (avx2, avx512vnni) and the CPU runs it. */
bool qf_x86_isa_usable(qf_isa isa);

/* Convolution: same contract and results as qf_ref_conv2d_s8 with weights
 * packed as conv8 or conv8c4 (w->rows == out_c, w->k == (in_c/groups) *
 * k_h * k_w, w->khw == k_h * k_w, w->groups == groups). isa: QF_ISA_AVX2 or
 * QF_ISA_AVX512VNNI (usable). scratch: >= qf_x86_conv2d_s8_scratch_size(p,
 * w->layout) bytes (0: not supported), any alignment. pool may be NULL. */
size_t qf_x86_conv2d_s8_scratch_size(const qf_ref_conv_params *p, qx_layout layout);
qf_status qf_x86_conv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                           const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                           int8_t *out, void *scratch, size_t scratch_bytes, qf_err *err);

/* A residual connection fused into the convolution's epilogue: each int8
 * result y is replaced by the FP32 QAdd of y and res at the same position
 * (res has the output's shape), as qf_ref_add_s8 would compute it from the
 * stored y: the consts' "a" operand is y when conv_is_a, else res. */
typedef struct qf_x86_residual {
    const int8_t *res;
    qx_add_consts c; /* from qf_x86_add_consts */
    bool conv_is_a;
} qf_x86_residual;

/* A convolution's per-channel epilogue tables (bias minus the input zero
 * point's share, multipliers, shifts), built once for a layer's constants
 * instead of on every call. They hold for the weights, requantization
 * (mode, multiplier array, zero point, clamp), input zero point and bias
 * they were built from (compared by address: the caller must not change
 * the bias or multiplier values afterwards; the ops keep them in the graph
 * arena): a call with any other uses its own, built in scratch. */
typedef struct qf_x86_conv_epi {
    const int32_t *wsum; /* built for: the weights' sums, bias (NULL: none), in_zp, rq */
    const int32_t *bias;
    int32_t in_zp;
    qf_ref_requant rq;
    int64_t rows_p; /* entries: groups * nb * QX_CONV_ROWS */
    int32_t *corr;  /* bias - (128 + in_zp) * weight sum, modulo 2^32 */
    float *mult;    /* FP32 multipliers */
    int32_t *mq;    /* fixed-point multipliers and shifts */
    int32_t *shift;
    bool fixed_vec;  /* every shift >= -31 (the vector fixed-point path) */
    bool mult_small; /* every FP32 multiplier passes qx_mult_small */
} qf_x86_conv_epi;

/* Bytes for the tables of w (conv8 or conv8c4 layout); 0 when invalid. */
size_t qf_x86_conv_epi_bytes(const qf_x86_weights *w);
/* Build into dst (qf_x86_conv_epi_bytes bytes, 4-byte aligned, caller-owned
 * like the weights) after checking rq against w->rows channels. */
qf_status qf_x86_conv_epi_build(const qf_x86_weights *w, const qf_ref_requant *rq, int32_t in_zp,
                                const int32_t *bias, void *dst, qf_x86_conv_epi *out, qf_err *err);

/* qf_x86_conv2d_s8, then the add of r (NULL: none) before the store; out
 * may be res itself. epi: prebuilt tables (NULL: built per call). */
qf_status qf_x86_conv2d_s8_add(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                               const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                               const qf_x86_conv_epi *epi, const qf_x86_residual *r, int8_t *out,
                               void *scratch, size_t scratch_bytes, qf_err *err);

/* Fully connected: as qf_ref_gemm_s8 with gemm16 weights (w->rows == n,
 * w->k == k). */
size_t qf_x86_gemm_s8_scratch_size(const qf_ref_gemm_params *p);
qf_status qf_x86_gemm_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_gemm_params *p,
                         const int8_t *x, const qf_x86_weights *w, const int32_t *bias, int8_t *y,
                         void *scratch, size_t scratch_bytes, qf_err *err);

/* Depthwise 3x3 and 5x5: groups == in_c == out_c, k_h == k_w in {3, 5},
 * stride 1 or 2 (both axes), dilation 1, pads <= 2k; dw weights. Direct
 * kernels over NCHW rows, no scratch. isa: QF_ISA_AVX512VNNI
 * (qx86_dw_avx512vnni.c: for each kernel row, 4 taps of 16 output pixels
 * are gathered per 32-bit lane, by vpermb with AVX512_VBMI, else vpermd +
 * vpshufb, and reduced with vpdpbusd) or QF_ISA_AVX2 (qx86_dw_avx2.c:
 * activations widened to int16, two taps per dword, from two kernel rows at
 * stride 1 and two columns at stride 2, reduced with vpmaddwd on 8 output
 * pixels per vector), when usable. Results do not depend on the ISA or the
 * thread count. */
bool qf_x86_dwconv_supported(const qf_ref_conv_params *p);
qf_status qf_x86_dwconv2d_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_conv_params *p,
                             const int8_t *in, const qf_x86_weights *w, const int32_t *bias,
                             int8_t *out, qf_err *err);

/* ---- micro-kernels (internal: qx86_avx512vnni.c, qx86_avx2.c) ---------- */

/* The AVX2 depthwise kernel (qx86_dw_avx2.c): qf_x86_dwconv2d_s8 after its
 * argument checks, which it does not repeat. */
void qx_dwconv2d_s8_avx2(qf_threadpool *pool, const qf_ref_conv_params *p, const int8_t *in,
                         const qf_x86_weights *w, const int32_t *bias, int8_t *out);

/* Where the 16 results of one slot vector go: runs of consecutive lanes
 * [lane, lane + n) stored at out + channel * ch_stride + off (+ lane offset). */
typedef struct qx_seg {
    int32_t lane, n;
    int64_t off;
    uint32_t mask; /* lanes [lane, lane + n) as a bit mask */
} qx_seg;
typedef struct qx_vec_store {
    int32_t n_seg;
    qx_seg seg[16];
} qx_vec_store;

/* Epilogue constants shared by both orientations. */
typedef struct qx_epi {
    const int32_t *corr;      /* per row (conv) / per channel (gemm) */
    const float *mult_f;      /* likewise */
    const int32_t *mult_q;    /* FIXED mode, likewise */
    const int32_t *shift;     /* FIXED mode, likewise */
    bool fixed_vec;           /* FIXED mode: every shift in [-31, 31] (vector form) */
    bool mult_small;          /* FP32 mode: every mult_f in [0, 0.5] (qx_mult_small) */
    const qf_ref_requant *rq; /* mode, zero point, bounds, fixed multipliers */
} qx_epi;

/* An FP32 multiplier m in [0, 0.5] maps every int32 accumulator into
 * [-2^30, 2^30] (float(acc) is at most 2^31), so its product converts to
 * int32 without overflow and the epilogue may skip the upper clamp before
 * the conversion: the saturating narrowings and the final clamp give the
 * same bytes. */
static inline bool qx_mult_small(float m) { return m >= 0.0f && m <= 0.5f; }

/* Where a 16-slot activation vector is read, at reduction step k: lanes of
 * run r come from p[r] + koff[k] + 4 * lane (run 0 is read whole, later
 * runs replace the lanes of mask[r]). Every such 64-byte read is inside the
 * caller's buffers. */
#define QX_MAX_RUNS 16
typedef struct qx_src {
    int32_t n; /* runs, 1..QX_MAX_RUNS */
    uint16_t mask[QX_MAX_RUNS];
    const uint8_t *p[QX_MAX_RUNS];
} qx_src;

/* Conv tile: 8 channel rows x 32 slots (two 16-slot activation vectors). */
typedef struct qx_conv_tile {
    const qx_src *src;   /* two entries */
    const int32_t *koff; /* k4 byte offsets, one per reduction step */
    const int8_t *w;     /* one weight block, k4 * 32 bytes */
    int32_t k4;
    bool maddubs_ok;
    /* the sign form (qf_x86_weights' sign_ok; maddubs_ok false): its sums
     * are the signed activations', 128 * sum(w) below the u8 ones the
     * corrections expect; wsum is the weights' sum per channel */
    bool sign_ok;
    const int32_t *wsum;
    /* split weights (AVX2; fix_start NULL: none): the block's 9 entries of
     * qf_x86_weights' fix_start (row r's fixes [fix_start[r], fix_start[r +
     * 1]) of fix) */
    const int32_t *fix_start;
    const uint32_t *fix;
    int32_t n_rows; /* valid rows (<= 8) */
    int32_t ch0;    /* global channel of row 0 */
    /* consecutive 8-channel blocks to run on the same slots (kernels with
     * qx_ukernels.multi_blk; else 1): block b has weights w + b * k4 * 32,
     * rows ch0 + 8b on (fix_start and the epilogue's arrays likewise 8b on),
     * and min(8, rows_left - 8b) valid rows; n_rows is block 0's */
    int32_t n_blk;
    int32_t rows_left;
    int64_t ch_stride; /* output bytes between channels (out_h * out_w) */
    int8_t *out;
    const qx_vec_store *st; /* two entries */
    qx_epi e;               /* corr/mult_f indexed by row (8 entries) */
    /* fused residual add (NULL: none): results are added to res, which has
     * out's layout (res + (q - out) for an output byte q), with add (the
     * conv's result as operand a) */
    const int8_t *res;
    const qx_add_consts *add;
} qx_conv_tile;

/* Block b of a multi-block tile t0 into *t (a copy of t0): its weights,
 * rows, first channel, split fixes and epilogue arrays. */
static inline void qx_tile_block(const qx_conv_tile *t0, int32_t b, qx_conv_tile *t) {
    const int32_t r8 = QX_CONV_ROWS * b;
    const int32_t left = t0->rows_left - r8;
    t->n_rows = left < QX_CONV_ROWS ? left : QX_CONV_ROWS;
    t->w = t0->w + (int64_t)b * t0->k4 * 32;
    t->ch0 = t0->ch0 + r8;
    if (t0->fix_start) t->fix_start = t0->fix_start + r8;
    t->e.corr = t0->e.corr + r8;
    t->e.mult_f = t0->e.mult_f + r8;
    t->e.mult_q = t0->e.mult_q + r8;
    t->e.shift = t0->e.shift + r8;
}

/* Gemm tile: up to 8 rows x 32 channels. */
typedef struct qx_gemm_tile {
    const uint8_t *a; /* row 0 of n_rows u8 rows, k4 * 4 bytes each */
    size_t a_stride;
    const int8_t *w; /* two consecutive gemm16 blocks */
    int32_t k4;
    bool maddubs_ok;
    bool sign_ok;        /* the sign form (as qx_conv_tile's) */
    const int32_t *wsum; /* weight sums by global channel */
    int32_t n_rows;      /* 1..8 */
    int32_t n_ch;        /* valid channels, 1..32 */
    int32_t ch0;         /* global channel of column 0 */
    int8_t *y;           /* y[row 0][ch0] */
    size_t ldy;
    qx_epi e; /* corr/mult_f indexed by channel - ch0 (32 entries) */
} qx_gemm_tile;

/* Transposed conv8c4 tile ("tt"): up to 8 output pixels (rows, one
 * broadcast each) x 32 output channels (lanes) of one image, for small
 * images, where 32-slot tiles leave lanes idle (a 7x7 output fills 49 of
 * 64). It reads the same planes, reduction steps and conv8c4 weights as
 * qx_conv_tile: the 32 channels are 4 consecutive 8-channel blocks, two per
 * vector. The epilogue transposes the 8 x 32 result bytes so each channel's
 * pixels are stored as one run. */
typedef struct qx_conv_tt {
    const uint8_t *px[8]; /* each row's place in the planes (rows past n_rows repeat the last) */
    const int32_t *koff;  /* k4 byte offsets, one per reduction step */
    const int8_t *wb[4];  /* 4 weight blocks [k4][8][4] (past the last block: repeat it) */
    int32_t k4;
    int32_t n_rows;    /* valid pixels, 1..8, consecutive in the output plane */
    int32_t n_ch;      /* valid channels, 1..32 */
    int32_t ch0;       /* global channel of lane 0 (FIXED mode's per-lane fallback) */
    int8_t *out;       /* the byte of (channel 0, pixel 0) */
    int64_t ch_stride; /* output bytes between channels (out_h * out_w) */
    qx_epi e;          /* corr/mult_f/mult_q/shift indexed by channel - ch0 (n_ch entries) */
    /* fused residual add (NULL: none), as in qx_conv_tile */
    const int8_t *res;
    const qx_add_consts *add;
} qx_conv_tt;

typedef struct qx_ukernels {
    void (*conv_tile)(const qx_conv_tile *t);
    void (*gemm_tile)(const qx_gemm_tile *t);
    void (*conv_tt)(const qx_conv_tt *t); /* NULL: not available */
    bool multi_blk;                       /* conv_tile runs qx_conv_tile.n_blk blocks per call */
    /* conv_tile reads vectors of up to 2 runs in place about as fast as
     * gathered ones (one masked load more per step), so they are not gathered */
    bool runs2;
    /* conv8c4 fill, width stride 2 (NULL: not available): the row of one
     * stride phase from an interleaved input row of at most 32 columns
     * (row: 128 readable bytes): column i < 16 of dst is column idx[i] of
     * row where bit i of valid is set, else pad4; the columns of bits set
     * in store are written, no other byte */
    void (*fill_s2)(const uint8_t *row, const int32_t *idx, uint32_t valid, uint32_t store,
                    uint32_t pad4, uint8_t *dst);
    /* conv8c4 fill, stride 1 (NULL: not available; needs AVX512_VBMI, which
     * the caller checks): `rows` consecutive input rows of w bytes in each
     * of 4 channels (src[k]: channel k's first) to as many quad-plane rows
     * of row_bytes at dst, in groups of g_rows rows (g_rows * w <= 32,
     * g_rows * row_bytes <= 256). Byte i of a group's plane rows is byte
     * idx[i] of c0 | c1 | c2 | c3 (the group's bytes of each channel, 32
     * bytes apart, bytes past the last row read as 0, all flipped to u8)
     * where bit i % 64 of valid[i / 64] is set, else idx[i] itself (the pad
     * byte). No byte past the last row is read or written. */
    void (*fill_s1)(const uint8_t *const src[4], int64_t rows, int64_t w, int64_t g_rows,
                    const uint8_t *idx, const uint64_t *valid, int64_t row_bytes, uint8_t *dst);
    /* conv8c4 fill, width stride 2 (NULL: not available; needs AVX512_VBMI):
     * one input row of w <= 32 bytes in each of 4 channels (src[k]) to the
     * rows of its two column phases, row_bytes <= 64 each: byte i of phase
     * x's row (at dst[x], not written when NULL) is byte idx[64 x + i] of
     * c0 | c1 | c2 | c3 (32 bytes each, flipped to u8) where bit i of
     * valid[x] is set, else idx[64 x + i] (the pad byte). No byte past w
     * of a channel is read. */
    void (*fill_s2v)(const uint8_t *const src[4], int64_t w, const uint8_t *idx,
                     const uint64_t *valid, int64_t row_bytes, uint8_t *const dst[2]);
} qx_ukernels;

/* NULL when isa has no micro-kernels here or is not compiled in. */
const qx_ukernels *qx_ukernels_avx512vnni(void);
const qx_ukernels *qx_ukernels_avx2(void);

/* Test hook: false keeps conv8c4 layers off the transposed tiles
 * (qx_conv_tt), so tests can check both kernels on the same shapes;
 * default true. */
void qf_x86_conv_set_tt(bool allow);
/* Test hook: false keeps the conv8c4 stride-1 fill off its AVX512_VBMI
 * kernel (qx_ukernels.fill_s1), so tests check the plain interleave that
 * CPUs without VBMI run, on VBMI machines too; default true. */
void qf_x86_conv_set_fill_vbmi(bool allow);
/* Whether qf_x86_conv2d_s8 with conv8c4 weights on `isa` runs p on
 * transposed tiles (for tests and reports; on AVX2, for weights that plain
 * vpmaddubsw takes (maddubs_ok, unsplit): the sign form, split weights
 * and the 16-bit path stay on slot tiles). */
bool qf_x86_conv_uses_tt(const qf_ref_conv_params *p, qf_isa isa);

/* The AVX2 depthwise kernel for small planes, channels in the lanes
 * (qx86_dwcl_avx2.c): whether it takes p (FP32 requantization, planes
 * within its stack buffers, and where measured faster than the row
 * kernel), and the kernel (arguments checked by qf_x86_dwconv2d_s8). */
bool qx_dwcl_avx2_takes(const qf_ref_conv_params *p);
void qx_dwcl_avx2(qf_threadpool *pool, const qf_ref_conv_params *p, const int8_t *in,
                  const qf_x86_weights *w, const int32_t *bias, int8_t *out);
/* Test hook for it: 0 never, 1 where it is faster (the default), 2
 * wherever it can run (FP32, planes within its buffers). */
void qf_x86_dw_set_cl(int mode);

/* Test hook: false keeps qf_x86_dwconv2d_s8 off its AVX512_VBMI paths (flat
 * and wide), so tests can check the row path, which CPUs without VBMI run,
 * on VBMI machines too; default true. Added for the depthwise kernel rework. */
void qf_x86_dw_set_vbmi(bool allow);

#endif /* QF_KERNELS_X86_QX86_H */
