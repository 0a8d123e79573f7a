/* qx86_pack.c - weight packing for the x86 int8 kernels (layouts in
 * qx86.h): blocks of 4-tap groups, per-channel weight sums for the unsigned
 * activation correction, and the AVX2 saturation check. Portable C; runs
 * once per layer at load. */
#include <string.h>

#include "kernels/x86/qx86.h"

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Blocks and bytes of the packed data (without the wsum array). */
static bool layout_blocks(qx_layout layout, int64_t rows, int64_t k, int64_t groups, int64_t *nb,
                          size_t *data_bytes) {
    if (rows < 1 || k < 1 || groups < 1 || rows % groups || rows > INT32_MAX || k > INT32_MAX - 3)
        return false;
    const int64_t k4 = (k + 3) / 4;
    int64_t blocks, block_bytes;
    if (layout == QX_LAYOUT_CONV8) {
        *nb = (rows / groups + QX_CONV_ROWS - 1) / QX_CONV_ROWS;
        blocks = *nb * groups;
        block_bytes = QX_CONV_ROWS * 4;
    } else if (layout == QX_LAYOUT_GEMM16) {
        if (groups != 1) return false;
        *nb = round_up(rows, QX_GEMM_COLS) / QX_GEMM_BLOCK;
        blocks = *nb;
        block_bytes = QX_GEMM_BLOCK * 4;
    } else {
        return false;
    }
    size_t n;
    if (!qf_mul_size((size_t)blocks, (size_t)k4, &n) || !qf_mul_size(n, (size_t)block_bytes, &n))
        return false;
    *data_bytes = n;
    return true;
}

/* Fill *out for packed conv8 / conv8c4 / gemm16 weights. */
static void describe(qf_x86_weights *out, const int8_t *d, const int32_t *wsum, qx_layout layout,
                     int64_t rows, int64_t k, int64_t k4, int64_t groups, int64_t nb, bool ok,
                     int64_t khw) {
    memset(out, 0, sizeof *out);
    out->data = d;
    out->wsum = wsum;
    out->rows = (int32_t)rows;
    out->k = (int32_t)k;
    out->k4 = (int32_t)k4;
    out->groups = (int32_t)groups;
    out->nb = (int32_t)nb;
    out->layout = layout;
    out->maddubs_ok = ok;
    out->khw = (int32_t)khw;
}

/* Whether the weights (maddubs_ok false) may take the AVX2 sign form: no
 * byte of the n packed bytes is -128 (padding bytes are 0). */
static void mark_sign(qf_x86_weights *w, size_t n) {
    w->sign_ok = false;
    if (w->maddubs_ok) return;
    for (size_t i = 0; i < n; i++)
        if (w->data[i] == INT8_MIN) return;
    w->sign_ok = true;
}

size_t qf_x86_weights_bytes(qx_layout layout, int64_t rows, int64_t k, int64_t groups) {
    int64_t nb;
    size_t data, total;
    if (!layout_blocks(layout, rows, k, groups, &nb, &data)) return 0;
    /* wsum follows the data, 4-byte aligned */
    data = (data + 3) & ~(size_t)3;
    if (!qf_add_size(data, (size_t)rows * sizeof(int32_t), &total)) return 0;
    return total;
}

qf_status qf_x86_pack_weights(qx_layout layout, const uint8_t *packed, int64_t rows, int64_t k,
                              int bits, int64_t groups, void *dst, qf_x86_weights *out,
                              qf_err *err) {
    const char *who = "qf_x86_pack_weights";
    int64_t nb;
    size_t data_bytes;
    if (!packed || !dst || !out || (bits != 8 && bits != 4 && bits != 2) ||
        !layout_blocks(layout, rows, k, groups, &nb, &data_bytes))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad arguments (%lld x %lld, %d bits)", who,
                       (long long)rows, (long long)k, bits);
    int8_t *d = dst;
    int32_t *wsum = (int32_t *)(void *)(d + ((data_bytes + 3) & ~(size_t)3));
    memset(d, 0, data_bytes);
    const int64_t k4 = (k + 3) / 4;
    const size_t row_bytes = qf_ref_packed_row_bytes(k, bits);
    const int64_t opg = rows / groups;
    bool ok = true;
    for (int64_t c = 0; c < rows; c++) {
        const uint8_t *src = packed + (size_t)c * row_bytes;
        int8_t *base;
        int64_t lane_bytes; /* bytes between consecutive k4 groups */
        if (layout == QX_LAYOUT_CONV8) {
            const int64_t g = c / opg, r = c % opg;
            const int64_t blk = g * nb + r / QX_CONV_ROWS;
            base = d + (size_t)(blk * k4 * QX_CONV_ROWS * 4 + (r % QX_CONV_ROWS) * 4);
            lane_bytes = QX_CONV_ROWS * 4;
        } else {
            const int64_t blk = c / QX_GEMM_BLOCK;
            base = d + (size_t)(blk * k4 * QX_GEMM_BLOCK * 4 + (c % QX_GEMM_BLOCK) * 4);
            lane_bytes = QX_GEMM_BLOCK * 4;
        }
        uint32_t sum = 0;
        int32_t prev = 0;
        for (int64_t t = 0; t < k; t++) {
            const int32_t v = qf_ref_weight_get(src, t, bits);
            base[(t / 4) * lane_bytes + (t % 4)] = (int8_t)v;
            sum += (uint32_t)v;
            /* vpmaddubsw adds the products of taps (0,1) and (2,3) */
            if (t % 2 == 1) {
                const int32_t a = prev < 0 ? -prev : prev, b = v < 0 ? -v : v;
                if (255 * (a + b) > 32767) ok = false;
            }
            prev = v;
        }
        if (k % 2 == 1) {
            const int32_t a = prev < 0 ? -prev : prev;
            if (255 * a > 32767) ok = false;
        }
        wsum[c] = (int32_t)sum;
    }
    /* khw unknown here: qf_x86_pack_conv_weights sets it */
    describe(out, d, wsum, layout, rows, k, k4, groups, nb, ok, 0);
    mark_sign(out, data_bytes);
    return QF_OK;
}

/* Quads of channels cost ceil(cpg / 4) * khw reduction steps against
 * ceil(cpg * khw / 4) for quads of taps: take them unless that pads the
 * reduction by more than 1/8 (1-3 channels with a k x k kernel). */
qx_layout qf_x86_conv_layout(int64_t cpg, int64_t khw) {
    if (cpg < 1 || khw < 1) return QX_LAYOUT_CONV8;
    const int64_t c4 = (cpg + 3) / 4 * khw, t4 = (cpg * khw + 3) / 4;
    return c4 * 8 <= t4 * 9 ? QX_LAYOUT_CONV8C4 : QX_LAYOUT_CONV8;
}

size_t qf_x86_conv_weights_bytes(qx_layout layout, int64_t rows, int64_t cpg, int64_t khw,
                                 int64_t groups) {
    if (cpg < 1 || khw < 1 || cpg > INT32_MAX / khw) return 0;
    if (layout == 0) layout = qf_x86_conv_layout(cpg, khw);
    if (layout == QX_LAYOUT_CONV8) return qf_x86_weights_bytes(layout, rows, cpg * khw, groups);
    if (layout != QX_LAYOUT_CONV8C4) return 0;
    /* as conv8 with a reduction of ceil(cpg / 4) * 4 * khw values */
    const int64_t kq = (cpg + 3) / 4 * 4 * khw;
    if (kq > INT32_MAX - 3) return 0;
    return qf_x86_weights_bytes(QX_LAYOUT_CONV8, rows, kq, groups);
}

qf_status qf_x86_pack_conv_weights(qx_layout layout, const uint8_t *packed, int64_t rows,
                                   int64_t cpg, int64_t khw, int bits, int64_t groups, void *dst,
                                   qf_x86_weights *out, qf_err *err) {
    if (layout == 0) layout = qf_x86_conv_layout(cpg, khw);
    if (qf_x86_conv_weights_bytes(layout, rows, cpg, khw, groups) == 0 || !packed || !dst || !out ||
        (bits != 8 && bits != 4 && bits != 2))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "qf_x86_pack_conv_weights: bad arguments (%lld x %lld x %lld, %d bits)",
                       (long long)rows, (long long)cpg, (long long)khw, bits);
    const int64_t k = cpg * khw;
    if (layout == QX_LAYOUT_CONV8) {
        qf_status s = qf_x86_pack_weights(layout, packed, rows, k, bits, groups, dst, out, err);
        out->khw = (int32_t)khw;
        return s;
    }
    const int64_t nq = (cpg + 3) / 4, k4 = nq * khw;
    const int64_t nb = (rows / groups + QX_CONV_ROWS - 1) / QX_CONV_ROWS;
    const size_t data_bytes = (size_t)(nb * groups * k4 * QX_CONV_ROWS * 4);
    int8_t *d = dst;
    int32_t *wsum = (int32_t *)(void *)(d + ((data_bytes + 3) & ~(size_t)3));
    memset(d, 0, data_bytes);
    const size_t row_bytes = qf_ref_packed_row_bytes(k, bits);
    const int64_t opg = rows / groups;
    bool ok = true;
    for (int64_t c = 0; c < rows; c++) {
        const uint8_t *src = packed + (size_t)c * row_bytes;
        const int64_t g = c / opg, r = c % opg;
        const int64_t blk = g * nb + r / QX_CONV_ROWS;
        int8_t *base = d + (size_t)(blk * k4 * QX_CONV_ROWS * 4 + (r % QX_CONV_ROWS) * 4);
        uint32_t sum = 0;
        for (int64_t ic = 0; ic < cpg; ic++)
            for (int64_t tap = 0; tap < khw; tap++) {
                const int32_t v = qf_ref_weight_get(src, ic * khw + tap, bits);
                base[((ic / 4) * khw + tap) * QX_CONV_ROWS * 4 + ic % 4] = (int8_t)v;
                sum += (uint32_t)v;
            }
        /* vpmaddubsw adds the products of bytes (0, 1) and (2, 3) of a lane */
        for (int64_t st = 0; st < k4; st++) {
            const int8_t *q = base + st * QX_CONV_ROWS * 4;
            for (int h = 0; h < 4; h += 2) {
                const int32_t a = q[h] < 0 ? -q[h] : q[h], b = q[h + 1] < 0 ? -q[h + 1] : q[h + 1];
                if (255 * (a + b) > 32767) ok = false;
            }
        }
        wsum[c] = (int32_t)sum;
    }
    describe(out, d, wsum, QX_LAYOUT_CONV8C4, rows, k, k4, groups, nb, ok, khw);
    mark_sign(out, data_bytes);
    return QF_OK;
}

/* ---- AVX2 split (qx86.h) ------------------------------------------------ */

static int32_t iabs32(int32_t v) { return v < 0 ? -v : v; }

/* Whether vpmaddubsw could saturate on the pair (a, b): 255 * (|a| + |b|) > 32767. */
static bool pair_over(int8_t a, int8_t b) { return 255 * (iabs32(a) + iabs32(b)) > 32767; }

/* Whether a row's 4 weights at a step hold a pair to split. */
static bool row_needs_fix(const int8_t *q) {
    return pair_over(q[0], q[1]) || pair_over(q[2], q[3]);
}

static bool splittable(const qf_x86_weights *w) {
    return w && w->data && !w->maddubs_ok && !w->fix_start &&
           (w->layout == QX_LAYOUT_CONV8 || w->layout == QX_LAYOUT_CONV8C4) && w->nb > 0 &&
           w->groups > 0 && w->k4 > 0;
}

/* (row, step) pairs that need fixes (*steps) and fixes (one per pair of
 * weights over the limit) of all packed rows. */
static int64_t count_fixes(const qf_x86_weights *w, int64_t *steps) {
    const int64_t blocks = (int64_t)w->nb * w->groups;
    int64_t n = 0, ns = 0;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t k = 0; k < w->k4; k++) {
            const int8_t *step = w->data + (b * w->k4 + k) * QX_CONV_ROWS * 4;
            for (int r = 0; r < QX_CONV_ROWS; r++) {
                const int8_t *q = step + 4 * r;
                ns += row_needs_fix(q);
                n += pair_over(q[0], q[1]) + pair_over(q[2], q[3]);
            }
        }
    *steps = ns;
    return n;
}

static _Atomic bool split_always = false;
void qf_x86_conv_set_split_always(bool always) { split_always = always; }

size_t qf_x86_conv_split_bytes(const qf_x86_weights *w) {
    if (!splittable(w)) return 0;
    const int64_t rows_p = (int64_t)w->nb * w->groups * QX_CONV_ROWS;
    int64_t steps;
    const int64_t n = count_fixes(w, &steps);
    /* Split tiles take about (1 + 1.5 f) of the unsplit vpmaddubsw time
     * when a fraction f of the (row, step) pairs need fixes (3x3 64->64 at
     * 56x56 on Zen 3), plus a cost per row and tile (its fix lists) that
     * short reductions feel; the sign form (sign_ok), the alternative, takes
     * about 1.45 of it. Split while (0.45 - 1.5 f) k4 > 8, i.e. f <= 0.3 -
     * 16 / (3 k4): in-process A/B on Zen 3, split against the sign form,
     * ResNet-18 (k4 49-1152, f 0.03-0.27) ran 1.07-1.16x faster split, while
     * MobileNetV2 (k4 4-240, f 0.07-0.52) and the Fashion-MNIST ResNet
     * (k4 4-144, f 0.07-0.56) ran 1.08x and 1.07-1.10x faster in the sign
     * form. Weights drawn uniformly over the range (untrained layers) need
     * fixes at about 0.6-0.75; trained, bell-shaped ones at a few percent. */
    if ((30 * steps > rows_p * (9 * (int64_t)w->k4 - 160) && !split_always) || n > INT32_MAX ||
        rows_p >= INT32_MAX || w->k4 > 0x8000)
        return 0;
    /* fix_start and the fixes, 4 bytes each */
    size_t total;
    if (!qf_mul_size((size_t)(rows_p + 1 + n), sizeof(int32_t), &total)) return 0;
    return total;
}

qf_status qf_x86_conv_split(qf_x86_weights *w, int8_t *data, void *dst, size_t dst_bytes,
                            qf_err *err) {
    const char *who = "qf_x86_conv_split";
    const size_t need = qf_x86_conv_split_bytes(w);
    if (need == 0 || !data || data != w->data || !dst || dst_bytes < need || ((uintptr_t)dst & 3))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad arguments", who);
    const int64_t rows_p = (int64_t)w->nb * w->groups * QX_CONV_ROWS;
    int32_t *start = dst;
    uint32_t *fix = (uint32_t *)(start + rows_p + 1);
    int32_t i = 0;
    for (int64_t pr = 0; pr < rows_p; pr++) {
        start[pr] = i;
        const int64_t b = pr / QX_CONV_ROWS;
        const int r = (int)(pr % QX_CONV_ROWS);
        for (int64_t k = 0; k < w->k4; k++) {
            int8_t *q = data + (b * w->k4 + k) * QX_CONV_ROWS * 4 + 4 * r;
            for (int j = 0; j < 4; j += 2) {
                if (!pair_over(q[j], q[j + 1])) continue;
                uint32_t e = (uint32_t)k | (j ? 0x8000u : 0);
                for (int h = 0; h < 2; h++) {
                    const int8_t c = q[j + h] > 64 ? 64 : q[j + h] < -64 ? -64 : q[j + h];
                    e |= (uint32_t)(uint8_t)(q[j + h] - c) << (16 + 8 * h);
                    q[j + h] = c;
                }
                fix[i++] = e;
            }
        }
    }
    start[rows_p] = i;
    w->fix_start = start;
    w->fix = fix;
    w->maddubs_ok = true;
    w->sign_ok = false;
    return QF_OK;
}

size_t qf_x86_dw_weights_bytes(int64_t channels, int32_t kh, int32_t kw) {
    if (channels < 1 || channels > INT32_MAX || kh < 1 || kw < 1 || kh > 64 || kw > 64) return 0;
    const size_t per = (size_t)kh * (size_t)((kw + 3) / 4) * 4;
    size_t n, total;
    if (!qf_mul_size((size_t)channels, per + sizeof(int32_t), &n)) return 0;
    if (!qf_add_size(n, 4, &total)) return 0;
    return total;
}

qf_status qf_x86_pack_dw_weights(const uint8_t *packed, int64_t channels, int32_t kh, int32_t kw,
                                 int bits, void *dst, qf_x86_weights *out, qf_err *err) {
    if (!packed || !dst || !out || (bits != 8 && bits != 4 && bits != 2) ||
        qf_x86_dw_weights_bytes(channels, kh, kw) == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_x86_pack_dw_weights: bad arguments");
    const int64_t gw = (kw + 3) / 4, per = (int64_t)kh * gw * 4;
    int8_t *d = dst;
    const size_t data = (size_t)(channels * per);
    int32_t *wsum = (int32_t *)(void *)(d + ((data + 3) & ~(size_t)3));
    memset(d, 0, data);
    const int64_t k = (int64_t)kh * kw;
    const size_t row_bytes = qf_ref_packed_row_bytes(k, bits);
    for (int64_t c = 0; c < channels; c++) {
        const uint8_t *src = packed + (size_t)c * row_bytes;
        uint32_t sum = 0;
        for (int64_t ky = 0; ky < kh; ky++)
            for (int64_t kx = 0; kx < kw; kx++) {
                const int32_t v = qf_ref_weight_get(src, ky * kw + kx, bits);
                d[c * per + ky * gw * 4 + kx] = (int8_t)v; /* kx = 4 * group + byte */
                sum += (uint32_t)v;
            }
        wsum[c] = (int32_t)sum;
    }
    memset(out, 0, sizeof *out);
    out->data = d;
    out->wsum = wsum;
    out->rows = (int32_t)channels;
    out->k = (int32_t)k;
    out->k4 = (int32_t)(kh * gw);
    out->groups = (int32_t)channels;
    out->nb = 0;
    out->layout = QX_LAYOUT_DW;
    out->kh = kh;
    out->kw = kw;
    return QF_OK;
}

bool qf_x86_isa_usable(qf_isa isa) {
    if (isa == QF_ISA_AVX512VNNI) return qx_ukernels_avx512vnni() && qf_isa_supported(isa);
    if (isa == QF_ISA_AVX2) return qx_ukernels_avx2() && qf_isa_supported(isa);
    return false;
}
