/* qlinear_ops.c - ONNX integer convolution and matrix product, reference
 * kernels: QLinearConv and ConvInteger (opset 10), QLinearMatMul (opsets
 * 10..21) and MatMulInteger (opset 10).
 *
 * All four accumulate acc = sum (x - x_zp) * (w - w_zp) in 32 bits; the sum
 * wraps modulo 2^32 (the spec lets accumulation overflow "if and only if in
 * 32 bits"; the wrap is done in uint32_t so it is defined in C). ConvInteger
 * and MatMulInteger return acc; the QLinear ops add the int32 bias (conv) and
 * requantize like ONNX Runtime's CPU kernels, so results agree bit for bit:
 *
 *   mult = x_scale * w_scale[c] / y_scale        (binary32, in that order)
 *   y    = saturate(round_half_even((float)acc * mult) + y_zp)
 *
 * Zero points: x per tensor; w per tensor or per output channel (conv); a
 * per tensor or per row and b per tensor or per column (matmul, where a
 * parameter may also be given per batch as [..., M, 1] / [..., 1, N]).
 * Scales follow the same shapes. Padded conv taps read x_zp, so contribute 0.
 *
 * Both ops widen operands to int16 (x - x_zp and w - w_zp lie in
 * [-255, 255]) in scratch: the convolution as im2col over bands of output
 * rows (bounded scratch) times the widened weights, the matrix product row by
 * row against the widened B, with an int32 accumulator row.
 */
#include <math.h>
#include <string.h>

#include "kernels/ref/spatial.h"

/* ---- shared helpers --------------------------------------------------------- */

static bool present(const qf_tensor *in, int n_in, int i) {
    return i >= 0 && i < n_in && in[i].dtype != QF_DT_UNDEF;
}

static bool is_q8(qf_dtype t) { return t == QF_DT_U8 || t == QF_DT_I8; }

static int32_t load8(const void *p, qf_dtype t, int64_t i) {
    return t == QF_DT_U8 ? ((const uint8_t *)p)[i] : ((const int8_t *)p)[i];
}

static void store8(void *p, qf_dtype t, int64_t i, int32_t v) {
    if (t == QF_DT_U8)
        ((uint8_t *)p)[i] = (uint8_t)v;
    else
        ((int8_t *)p)[i] = (int8_t)v;
}

static float load_scale(const qf_tensor *t, int64_t i) {
    if (t->dtype == QF_DT_F16) return qf_f16_to_f32(((const uint16_t *)t->data)[i]);
    return ((const float *)t->data)[i];
}

static void q8_range(qf_dtype t, int32_t *lo, int32_t *hi) {
    *lo = t == QF_DT_U8 ? 0 : -128;
    *hi = t == QF_DT_U8 ? 255 : 127;
}

/* saturate(round_half_even(acc * mult) + zp). The int32 -> binary32
 * conversion and the multiply round to nearest even; clamping before the
 * rounding equals clamping after (the bounds are integers) and keeps the
 * conversion in range. nearbyintf rounds in the current rounding mode, which
 * qforge never changes from the default ties-to-even. NaN (a NaN scale) maps
 * to the zero point. */
static int32_t requant(int32_t acc, float mult, int32_t zp, int32_t qmin, int32_t qmax) {
    float r = (float)acc * mult;
    float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    if (r != r) r = 0.0f;
    if (r < lo) r = lo;
    if (r > hi) r = hi;
    return (int32_t)nearbyintf(r) + zp;
}

/* acc[0..n) += a * row[0..n), wrapping modulo 2^32. The fixed-length inner
 * block lets -O2 vectorize the bulk. */
static void axpy_s16(uint32_t *restrict acc, int32_t a, const int16_t *restrict row, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int t = 0; t < 16; t++)
            acc[j + t] += (uint32_t)(a * row[j + t]);
    for (; j < n; j++)
        acc[j] += (uint32_t)(a * row[j]);
}

/* dst[i] = src[off + i * stride] - zp for i < n (src uint8 or int8). */
static void widen_row(int16_t *restrict dst, const void *src, qf_dtype t, int64_t off,
                      int64_t stride, int64_t n, int32_t zp) {
    if (t == QF_DT_U8) {
        const uint8_t *s = (const uint8_t *)src + off;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (int16_t)(s[i * stride] - zp);
    } else {
        const int8_t *s = (const int8_t *)src + off;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (int16_t)(s[i * stride] - zp);
    }
}

static void *align64(void *p) { return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Per-tensor (one element) or a 1-D parameter of `count` entries. */
static qf_status check_param(const qf_node *n, const qf_tensor *t, const char *what, qf_dtype want,
                             int64_t count, qf_err *err) {
    char d[200];
    if (want == QF_DT_F32) {
        if (t->dtype != QF_DT_F32 && t->dtype != QF_DT_F16)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s has dtype %s (float32, float16)",
                           qf_node_desc(n, d, sizeof d), what, qf_dtype_name(t->dtype));
    } else if (t->dtype != want) {
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %s has dtype %s, expected %s",
                       qf_node_desc(n, d, sizeof d), what, qf_dtype_name(t->dtype),
                       qf_dtype_name(want));
    }
    int64_t ne = qf_tensor_numel(t);
    if (ne == 1 && t->rank <= 1) return QF_OK;
    if (count > 1 && t->rank == 1 && t->dims[0] == count) return QF_OK;
    if (count > 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: %s must be a scalar or have %lld entries",
                       qf_node_desc(n, d, sizeof d), what, (long long)count);
    return qf_errf(err, QF_ERR_SHAPE, "%s: %s must be a scalar", qf_node_desc(n, d, sizeof d),
                   what);
}

/* ======================================================================== */
/* QLinearConv, ConvInteger                                                  */
/* ======================================================================== */

typedef struct qconv_params {
    qf_spatial_attrs sp;
    int64_t group;
    bool qlinear;
} qconv_params;

/* input positions (-1: the op has no such input) */
typedef struct qconv_slots {
    int x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias;
} qconv_slots;
static const qconv_slots k_qlinear_conv_slots = {0, 1, 2, 3, 4, 5, 6, 7, 8};
static const qconv_slots k_conv_integer_slots = {0, -1, 2, 1, -1, 3, -1, -1, -1};

/* im2col budget in int16 elements (512 KiB: the band stays in L2) */
#define QCOL_BUDGET ((size_t)256 << 10)

typedef struct qconv_plan {
    qf_spatial_geom g;
    int64_t n, c, m, cg, mg, kk, k; /* batch, channels, outputs, per group, kernel, reduction */
    int64_t band_rows;              /* output rows (of out[2] columns) per im2col band */
    const qf_tensor *x, *w, *x_zp, *w_zp, *bias, *x_scale, *w_scale, *y_scale, *y_zp;
    qf_dtype y_dtype;
} qconv_plan;

static qf_status qconv_parse_common(qf_graph *g, qf_node *n, bool qlinear, qf_err *err) {
    char d[200];
    qconv_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    qf_status s = qf_spatial_parse(n, &p->sp, false, false, err);
    if (s) return s;
    p->group = qf_node_attr_int(n, "group", 1);
    if (p->group < 1)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: group %lld must be positive",
                       qf_node_desc(n, d, sizeof d), (long long)p->group);
    p->qlinear = qlinear;
    n->params = p;
    return QF_OK;
}

static qf_status qlinear_conv_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qconv_parse_common(g, n, true, err);
}

static qf_status conv_integer_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qconv_parse_common(g, n, false, err);
}

static qf_status qconv_make_plan(const qf_node *n, const qf_tensor *in, int n_in, qconv_plan *pl,
                                 qf_err *err) {
    const qconv_params *p = n->params;
    const qconv_slots *sl = p->qlinear ? &k_qlinear_conv_slots : &k_conv_integer_slots;
    char d[200];
    qf_status s;
    memset(pl, 0, sizeof *pl);
    if (!present(in, n_in, sl->x) || !present(in, n_in, sl->w))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs x and w",
                       qf_node_desc(n, d, sizeof d));
    if (p->qlinear)
        for (int i = 0; i < 8; i++)
            if (!present(in, n_in, i))
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "%s: input %d is required (x, x_scale, x_zero_point, w, w_scale, "
                               "w_zero_point, y_scale, y_zero_point)",
                               qf_node_desc(n, d, sizeof d), i);
    const qf_tensor *x = &in[sl->x], *w = &in[sl->w];
    pl->x = x;
    pl->w = w;
    if (!is_q8(x->dtype) || !is_q8(w->dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: x is %s and w %s (uint8 or int8 each)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(x->dtype),
                       qf_dtype_name(w->dtype));
    if (x->rank < 3 || w->rank != x->rank)
        return qf_errf(err, QF_ERR_SHAPE, "%s: x has rank %d and w rank %d (need equal, >= 3)",
                       qf_node_desc(n, d, sizeof d), x->rank, w->rank);
    pl->n = x->dims[0];
    pl->c = x->dims[1];
    pl->m = w->dims[0];
    if (pl->c % p->group || pl->m % p->group || w->dims[1] * p->group != pl->c)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: x has %lld channels, w is %lld x %lld, group %lld: w channels "
                       "times group must equal x channels and group must divide outputs",
                       qf_node_desc(n, d, sizeof d), (long long)pl->c, (long long)pl->m,
                       (long long)w->dims[1], (long long)p->group);
    pl->cg = pl->c / p->group;
    pl->mg = pl->m / p->group;
    if (present(in, n_in, sl->x_zp)) {
        pl->x_zp = &in[sl->x_zp];
        if ((s = check_param(n, pl->x_zp, "x_zero_point", x->dtype, 1, err))) return s;
    }
    if (present(in, n_in, sl->w_zp)) {
        pl->w_zp = &in[sl->w_zp];
        if ((s = check_param(n, pl->w_zp, "w_zero_point", w->dtype, pl->m, err))) return s;
    }
    pl->y_dtype = QF_DT_I32;
    if (p->qlinear) {
        pl->x_scale = &in[sl->x_scale];
        pl->w_scale = &in[sl->w_scale];
        pl->y_scale = &in[sl->y_scale];
        pl->y_zp = &in[sl->y_zp];
        if ((s = check_param(n, pl->x_scale, "x_scale", QF_DT_F32, 1, err)) ||
            (s = check_param(n, pl->w_scale, "w_scale", QF_DT_F32, pl->m, err)) ||
            (s = check_param(n, pl->y_scale, "y_scale", QF_DT_F32, 1, err)))
            return s;
        if (!is_q8(pl->y_zp->dtype))
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: y_zero_point is %s (uint8 or int8)",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(pl->y_zp->dtype));
        if ((s = check_param(n, pl->y_zp, "y_zero_point", pl->y_zp->dtype, 1, err))) return s;
        pl->y_dtype = pl->y_zp->dtype;
        if (present(in, n_in, sl->bias)) {
            pl->bias = &in[sl->bias];
            if (pl->bias->dtype != QF_DT_I32 || pl->bias->rank != 1 || pl->bias->dims[0] != pl->m)
                return qf_errf(err, QF_ERR_SHAPE, "%s: bias must be int32 of shape [%lld]",
                               qf_node_desc(n, d, sizeof d), (long long)pl->m);
        }
    }
    int nsp = x->rank - 2;
    s = qf_spatial_resolve(n, &p->sp, nsp, x->dims + 2, w->dims + 2, &pl->g, err);
    if (s) return s;
    const qf_spatial_geom *g = &pl->g;
    pl->kk = qf_spatial_prod(g->kernel);
    pl->k = pl->cg * pl->kk;
    int64_t rows = g->out[0] * g->out[1];
    int64_t per_row = pl->k * g->out[2];
    int64_t band = per_row > 0 ? (int64_t)QCOL_BUDGET / per_row : rows;
    if (band < 1) band = 1;
    pl->band_rows = band < rows ? band : rows;
    return QF_OK;
}

static qf_status qconv_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    qconv_plan pl;
    qf_status s = qconv_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    out[0].dtype = pl.y_dtype;
    out[0].rank = in[0].rank;
    out[0].dims[0] = pl.n;
    out[0].dims[1] = pl.m;
    for (int i = 0; i < pl.g.nsp; i++)
        out[0].dims[2 + i] = pl.g.out[QF_SPATIAL_MAX - pl.g.nsp + i];
    return QF_OK;
}

/* Scratch: widened weights [m][k], im2col band [k][cols], accumulators
 * [mg][cols]; each 64-byte aligned. SIZE_MAX when it cannot be represented. */
static size_t qconv_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out) {
    qconv_plan pl;
    if (qconv_make_plan(n, in, n_in, &pl, NULL)) return 0;
    size_t cols, wq, col, acc, total = 3 * 64;
    if (!qf_mul_size((size_t)pl.band_rows, (size_t)pl.g.out[2], &cols) ||
        !qf_mul_size((size_t)pl.m, (size_t)pl.k, &wq) || !qf_mul_size(wq, 2, &wq) ||
        !qf_mul_size((size_t)pl.k, cols, &col) || !qf_mul_size(col, 2, &col) ||
        !qf_mul_size((size_t)pl.mg, cols, &acc) || !qf_mul_size(acc, 4, &acc) ||
        !qf_add_size(total, wq, &total) || !qf_add_size(total, col, &total) ||
        !qf_add_size(total, acc, &total))
        return SIZE_MAX;
    return total;
}

/* im2col band of output rows [r0, r1) (row = (od, oh) pair) of one group:
 * col[(c, kd, kh, kw)][(row - r0) * out2 + ow] = x - x_zp, 0 in the padding. */
static void qim2col_band(const qconv_plan *pl, int64_t x_off, int32_t xzp, int64_t r0, int64_t r1,
                         int16_t *col) {
    const qf_spatial_geom *g = &pl->g;
    int64_t wo = g->out[2], cols = (r1 - r0) * wo;
    int64_t in_hw = g->in[1] * g->in[2];
    int16_t *dst = col;
    for (int64_t c = 0; c < pl->cg; c++)
        for (int64_t kd = 0; kd < g->kernel[0]; kd++)
            for (int64_t kh = 0; kh < g->kernel[1]; kh++)
                for (int64_t kw = 0; kw < g->kernel[2]; kw++, dst += cols) {
                    int64_t iw0 = kw * g->dil[2] - g->pad_b[2], lo, hi;
                    qf_spatial_valid_range(iw0, g->stride[2], g->in[2], wo, &lo, &hi);
                    for (int64_t r = r0; r < r1; r++) {
                        int64_t od = r / g->out[1], oh = r % g->out[1];
                        int64_t id = od * g->stride[0] - g->pad_b[0] + kd * g->dil[0];
                        int64_t ih = oh * g->stride[1] - g->pad_b[1] + kh * g->dil[1];
                        int16_t *seg = dst + (r - r0) * wo;
                        if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                            memset(seg, 0, sizeof(int16_t) * (size_t)wo);
                            continue;
                        }
                        int64_t src = x_off + c * g->in[0] * in_hw + id * in_hw + ih * g->in[2];
                        if (lo) memset(seg, 0, sizeof(int16_t) * (size_t)lo);
                        widen_row(seg + lo, pl->x->data, pl->x->dtype,
                                  src + iw0 + lo * g->stride[2], g->stride[2], hi - lo, xzp);
                        if (hi < wo) memset(seg + hi, 0, sizeof(int16_t) * (size_t)(wo - hi));
                    }
                }
}

static qf_status qconv_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qconv_plan pl;
    qf_status s = qconv_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    const qf_spatial_geom *g = &pl.g;
    int64_t group = pl.c / pl.cg;
    int64_t hwi = qf_spatial_prod(g->in), hwo = qf_spatial_prod(g->out);
    int64_t rows = g->out[0] * g->out[1], wo = g->out[2], k = pl.k;
    if (pl.n == 0 || pl.m == 0 || hwo == 0) return QF_OK;
    int32_t xzp = pl.x_zp ? load8(pl.x_zp->data, pl.x_zp->dtype, 0) : 0;
    bool w_zp_ch = pl.w_zp && qf_tensor_numel(pl.w_zp) > 1;
    bool w_sc_ch = pl.w_scale && qf_tensor_numel(pl.w_scale) > 1;

    int16_t *wq = align64(scratch);
    for (int64_t m = 0; m < pl.m; m++) {
        int32_t wzp = pl.w_zp ? load8(pl.w_zp->data, pl.w_zp->dtype, w_zp_ch ? m : 0) : 0;
        widen_row(wq + m * k, pl.w->data, pl.w->dtype, m * k, 1, k, wzp);
    }
    int16_t *col = align64(wq + pl.m * k);
    uint32_t *acc = align64(col + k * pl.band_rows * wo);

    float xs = 0.0f, ys = 1.0f;
    int32_t yzp = 0, qmin = 0, qmax = 0;
    if (pl.y_zp) {
        xs = load_scale(pl.x_scale, 0);
        ys = load_scale(pl.y_scale, 0);
        yzp = load8(pl.y_zp->data, pl.y_zp->dtype, 0);
        q8_range(pl.y_dtype, &qmin, &qmax);
    }
    const int32_t *bias = pl.bias ? pl.bias->data : NULL;

    for (int64_t b = 0; b < pl.n; b++)
        for (int64_t gi = 0; gi < group; gi++) {
            int64_t x_off = (b * pl.c + gi * pl.cg) * hwi;
            for (int64_t r0 = 0; r0 < rows; r0 += pl.band_rows) {
                int64_t r1 = r0 + pl.band_rows < rows ? r0 + pl.band_rows : rows;
                int64_t cols = (r1 - r0) * wo;
                qim2col_band(&pl, x_off, xzp, r0, r1, col);
                memset(acc, 0, sizeof(uint32_t) * (size_t)(pl.mg * cols));
                for (int64_t mm = 0; mm < pl.mg; mm++) {
                    const int16_t *wr = wq + (gi * pl.mg + mm) * k;
                    uint32_t *ar = acc + mm * cols;
                    for (int64_t kk = 0; kk < k; kk++)
                        if (wr[kk]) axpy_s16(ar, wr[kk], col + kk * cols, cols);
                }
                for (int64_t mm = 0; mm < pl.mg; mm++) {
                    int64_t oc = gi * pl.mg + mm;
                    int64_t y_off = (b * pl.m + oc) * hwo + r0 * wo;
                    const uint32_t *ar = acc + mm * cols;
                    if (!pl.y_zp) {
                        int32_t *y = (int32_t *)out[0].data + y_off;
                        for (int64_t j = 0; j < cols; j++)
                            y[j] = (int32_t)ar[j];
                        continue;
                    }
                    uint32_t bv = bias ? (uint32_t)bias[oc] : 0u;
                    float mult = xs * load_scale(pl.w_scale, w_sc_ch ? oc : 0) / ys;
                    for (int64_t j = 0; j < cols; j++)
                        store8(out[0].data, pl.y_dtype, y_off + j,
                               requant((int32_t)(ar[j] + bv), mult, yzp, qmin, qmax));
                }
            }
        }
    return QF_OK;
}

const qf_op_def qf_opdef_qlinear_conv = {
    .name = "QLinearConv",
    .flags = 0,
    .value_inputs = 0,
    .parse = qlinear_conv_parse,
    .infer = qconv_infer,
    .scratch = qconv_scratch,
    .run = qconv_run,
};

const qf_op_def qf_opdef_conv_integer = {
    .name = "ConvInteger",
    .flags = 0,
    .value_inputs = 0,
    .parse = conv_integer_parse,
    .infer = qconv_infer,
    .scratch = qconv_scratch,
    .run = qconv_run,
};

/* ======================================================================== */
/* QLinearMatMul, MatMulInteger                                              */
/* ======================================================================== */

/* Where a per-row (a) or per-column (b) parameter's entry for output batch
 * index idx and row/column i lives. */
typedef enum { QP_TENSOR = 0, QP_VECTOR, QP_BATCHED } qparam_kind;
typedef struct qparam_ix {
    const qf_tensor *t; /* NULL: absent (zero point 0) */
    qparam_kind kind;
    int64_t bstride[QF_MAX_DIMS]; /* QP_BATCHED: stride per output batch axis (0 = repeated) */
} qparam_ix;

typedef struct qmm_plan {
    int64_t m, n, k;
    int batch_rank;
    int64_t batch[QF_MAX_DIMS];
    int64_t a_bstride[QF_MAX_DIMS], b_bstride[QF_MAX_DIMS]; /* 0 where broadcast */
    int64_t n_batch;
    int out_rank;
    int64_t out_dims[QF_MAX_DIMS];
    const qf_tensor *a, *b, *y_zp, *y_scale;
    qparam_ix a_zp, b_zp, a_scale, b_scale;
    qf_dtype y_dtype;
} qmm_plan;

typedef struct qmm_params {
    bool qlinear;
} qmm_params;

static qf_status qmm_parse_common(qf_graph *g, qf_node *n, bool qlinear, qf_err *err) {
    char d[200];
    qmm_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", qf_node_desc(n, d, sizeof d));
    p->qlinear = qlinear;
    n->params = p;
    return QF_OK;
}

static qf_status qlinear_matmul_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qmm_parse_common(g, n, true, err);
}

static qf_status matmul_integer_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return qmm_parse_common(g, n, false, err);
}

/* Resolve parameter t of operand op (a when row, else b): one element, a
 * 1-D vector of M (rows) / N (columns) entries, or op's rank with shape
 * [..., M, 1] / [..., 1, N] whose batch axes match op's or are 1. */
static qf_status qparam_resolve(const qf_node *n, const qf_tensor *t, const qf_tensor *op, bool row,
                                const qmm_plan *pl, const char *what, qf_dtype want, qparam_ix *ix,
                                qf_err *err) {
    char d[200];
    memset(ix, 0, sizeof *ix);
    if (!t) return QF_OK;
    ix->t = t;
    if (want == QF_DT_F32) {
        if (t->dtype != QF_DT_F32 && t->dtype != QF_DT_F16)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s has dtype %s (float32, float16)",
                           qf_node_desc(n, d, sizeof d), what, qf_dtype_name(t->dtype));
    } else if (t->dtype != want) {
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %s has dtype %s, expected %s",
                       qf_node_desc(n, d, sizeof d), what, qf_dtype_name(t->dtype),
                       qf_dtype_name(want));
    }
    int64_t count = row ? pl->m : pl->n;
    if (qf_tensor_numel(t) == 1) {
        ix->kind = QP_TENSOR;
        return QF_OK;
    }
    int r = op->rank;
    if (t->rank == 1 && r >= 2 && t->dims[0] == count) {
        ix->kind = QP_VECTOR;
        return QF_OK;
    }
    if (r >= 2 && t->rank == r && t->dims[r - 1] == (row ? 1 : count) &&
        t->dims[r - 2] == (row ? count : 1)) {
        /* batch axes of t, aligned right to the output batch; each must be
         * op's size or 1 (repeated: stride 0) */
        int pb = r - 2;
        int64_t stride = count;
        bool ok = true;
        for (int j = pb - 1; j >= 0 && ok; j--) {
            if (t->dims[j] != 1 && t->dims[j] != op->dims[j]) {
                ok = false;
                break;
            }
            ix->bstride[j + (pl->batch_rank - pb)] = t->dims[j] == 1 ? 0 : stride;
            stride *= t->dims[j];
        }
        if (ok) {
            ix->kind = pb ? QP_BATCHED : QP_VECTOR;
            return QF_OK;
        }
    }
    return qf_errf(err, QF_ERR_SHAPE,
                   "%s: %s must be a scalar, %lld per-%s entries or shaped [..., %s]",
                   qf_node_desc(n, d, sizeof d), what, (long long)count, row ? "row" : "column",
                   row ? "M, 1" : "1, N");
}

static int64_t qparam_offset(const qparam_ix *ix, const int64_t *idx, int batch_rank, int64_t i) {
    if (ix->kind == QP_TENSOR) return 0;
    int64_t off = i;
    if (ix->kind == QP_BATCHED)
        for (int a = 0; a < batch_rank; a++)
            off += idx[a] * ix->bstride[a];
    return off;
}

static qf_status qmm_make_plan(const qf_node *n, const qf_tensor *in, int n_in, qmm_plan *pl,
                               qf_err *err) {
    char d[200];
    qf_status s;
    bool ql = ((const qmm_params *)n->params)->qlinear;
    int ia = 0, ib = ql ? 3 : 1;
    memset(pl, 0, sizeof *pl);
    if (ql) {
        for (int i = 0; i < 8; i++)
            if (!present(in, n_in, i))
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "%s: input %d is required (a, a_scale, a_zero_point, b, b_scale, "
                               "b_zero_point, y_scale, y_zero_point)",
                               qf_node_desc(n, d, sizeof d), i);
    } else if (!present(in, n_in, 0) || !present(in, n_in, 1)) {
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs inputs A and B",
                       qf_node_desc(n, d, sizeof d));
    }
    const qf_tensor *a = &in[ia], *b = &in[ib];
    pl->a = a;
    pl->b = b;
    if (!is_q8(a->dtype) || !is_q8(b->dtype))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: A is %s and B %s (uint8 or int8 each)",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(a->dtype),
                       qf_dtype_name(b->dtype));
    if (a->rank < 1 || b->rank < 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: operands must have rank >= 1",
                       qf_node_desc(n, d, sizeof d));
    pl->m = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    pl->k = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    pl->n = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != pl->k)
        return qf_errf(err, QF_ERR_SHAPE, "%s: inner dimensions differ (%lld vs %lld)",
                       qf_node_desc(n, d, sizeof d), (long long)pl->k, (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int r = ra > rb ? ra : rb;
    pl->batch_rank = r;
    pl->n_batch = 1;
    int64_t sa = pl->m * pl->k, sb = pl->k * pl->n;
    for (int i = r - 1; i >= 0; i--) {
        int ja = i - (r - ra), jb = i - (r - rb);
        int64_t da = ja >= 0 ? a->dims[ja] : 1, db = jb >= 0 ? b->dims[jb] : 1;
        if (da != db && da != 1 && db != 1)
            return qf_errf(err, QF_ERR_SHAPE, "%s: batch dims do not broadcast (%lld vs %lld)",
                           qf_node_desc(n, d, sizeof d), (long long)da, (long long)db);
        pl->batch[i] = da > db ? da : db;
        if (da == 0 || db == 0) pl->batch[i] = 0;
        pl->a_bstride[i] = da == 1 ? 0 : sa;
        pl->b_bstride[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        pl->n_batch *= pl->batch[i];
    }
    int o = 0;
    for (int i = 0; i < r; i++)
        pl->out_dims[o++] = pl->batch[i];
    if (a->rank > 1) pl->out_dims[o++] = pl->m;
    if (b->rank > 1) pl->out_dims[o++] = pl->n;
    pl->out_rank = o;

    int i_azp = 2, i_bzp = ql ? 5 : 3;
    const qf_tensor *azp = present(in, n_in, i_azp) ? &in[i_azp] : NULL;
    const qf_tensor *bzp = present(in, n_in, i_bzp) ? &in[i_bzp] : NULL;
    if ((s = qparam_resolve(n, azp, a, true, pl, "a_zero_point", a->dtype, &pl->a_zp, err)) ||
        (s = qparam_resolve(n, bzp, b, false, pl, "b_zero_point", b->dtype, &pl->b_zp, err)))
        return s;
    pl->y_dtype = QF_DT_I32;
    if (ql) {
        if ((s = qparam_resolve(n, &in[1], a, true, pl, "a_scale", QF_DT_F32, &pl->a_scale, err)) ||
            (s = qparam_resolve(n, &in[4], b, false, pl, "b_scale", QF_DT_F32, &pl->b_scale,
                                err)) ||
            (s = check_param(n, &in[6], "y_scale", QF_DT_F32, 1, err)))
            return s;
        if (!is_q8(in[7].dtype))
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: y_zero_point is %s (uint8 or int8)",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(in[7].dtype));
        if ((s = check_param(n, &in[7], "y_zero_point", in[7].dtype, 1, err))) return s;
        pl->y_scale = &in[6];
        pl->y_zp = &in[7];
        pl->y_dtype = in[7].dtype;
    }
    return QF_OK;
}

static qf_status qmm_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                           int n_out, qf_err *err) {
    qmm_plan pl;
    qf_status s = qmm_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    out[0].dtype = pl.y_dtype;
    out[0].rank = pl.out_rank;
    memcpy(out[0].dims, pl.out_dims, sizeof(int64_t) * (size_t)pl.out_rank);
    return QF_OK;
}

/* Scratch: widened B [k][n] and one accumulator row [n], 64-byte aligned. */
static size_t qmm_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                          int n_out) {
    qmm_plan pl;
    if (qmm_make_plan(n, in, n_in, &pl, NULL)) return 0;
    size_t bw, acc, total = 2 * 64;
    if (!qf_mul_size((size_t)pl.k, (size_t)pl.n, &bw) || !qf_mul_size(bw, 2, &bw) ||
        !qf_mul_size((size_t)pl.n, 4, &acc) || !qf_add_size(total, bw, &total) ||
        !qf_add_size(total, acc, &total))
        return SIZE_MAX;
    return total;
}

static int32_t zp_at(const qparam_ix *ix, const int64_t *idx, int batch_rank, int64_t i) {
    if (!ix->t) return 0;
    return load8(ix->t->data, ix->t->dtype, qparam_offset(ix, idx, batch_rank, i));
}

static qf_status qmm_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    qmm_plan pl;
    qf_status s = qmm_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    int64_t m = pl.m, nn = pl.n, k = pl.k;
    if (pl.n_batch == 0 || m == 0 || nn == 0) return QF_OK;
    int16_t *bw = align64(scratch);
    uint32_t *acc = align64(bw + k * nn);
    float ys = 1.0f;
    int32_t yzp = 0, qmin = 0, qmax = 0;
    if (pl.y_zp) {
        ys = load_scale(pl.y_scale, 0);
        yzp = load8(pl.y_zp->data, pl.y_zp->dtype, 0);
        q8_range(pl.y_dtype, &qmin, &qmax);
    }
    int64_t idx[QF_MAX_DIMS] = {0};
    int64_t last_ob = -1, last_bzp = -1;
    for (int64_t t = 0; t < pl.n_batch; t++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < pl.batch_rank; i++) {
            oa += idx[i] * pl.a_bstride[i];
            ob += idx[i] * pl.b_bstride[i];
        }
        /* widen B - b_zp once per distinct (B matrix, zero-point row) */
        int64_t bzp_off = qparam_offset(&pl.b_zp, idx, pl.batch_rank, 0);
        if (ob != last_ob || bzp_off != last_bzp) {
            for (int64_t kk = 0; kk < k; kk++)
                for (int64_t j = 0; j < nn; j++)
                    bw[kk * nn + j] = (int16_t)(load8(pl.b->data, pl.b->dtype, ob + kk * nn + j) -
                                                zp_at(&pl.b_zp, idx, pl.batch_rank, j));
            last_ob = ob;
            last_bzp = bzp_off;
        }
        int64_t y_base = t * m * nn;
        for (int64_t i = 0; i < m; i++) {
            int32_t azp = zp_at(&pl.a_zp, idx, pl.batch_rank, i);
            memset(acc, 0, sizeof(uint32_t) * (size_t)nn);
            for (int64_t kk = 0; kk < k; kk++) {
                int32_t av = load8(pl.a->data, pl.a->dtype, oa + i * k + kk) - azp;
                if (av) axpy_s16(acc, av, bw + kk * nn, nn);
            }
            if (!pl.y_zp) {
                int32_t *y = (int32_t *)out[0].data + y_base + i * nn;
                for (int64_t j = 0; j < nn; j++)
                    y[j] = (int32_t)acc[j];
                continue;
            }
            float as = load_scale(pl.a_scale.t, qparam_offset(&pl.a_scale, idx, pl.batch_rank, i));
            for (int64_t j = 0; j < nn; j++) {
                float bs =
                    load_scale(pl.b_scale.t, qparam_offset(&pl.b_scale, idx, pl.batch_rank, j));
                float mult = as * bs / ys;
                store8(out[0].data, pl.y_dtype, y_base + i * nn + j,
                       requant((int32_t)acc[j], mult, yzp, qmin, qmax));
            }
        }
        for (int i = pl.batch_rank - 1; i >= 0; i--) {
            if (++idx[i] < pl.batch[i]) break;
            idx[i] = 0;
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_qlinear_matmul = {
    .name = "QLinearMatMul",
    .flags = 0,
    .value_inputs = 0,
    .parse = qlinear_matmul_parse,
    .infer = qmm_infer,
    .scratch = qmm_scratch,
    .run = qmm_run,
};

const qf_op_def qf_opdef_matmul_integer = {
    .name = "MatMulInteger",
    .flags = 0,
    .value_inputs = 0,
    .parse = matmul_integer_parse,
    .infer = qmm_infer,
    .scratch = qmm_scratch,
    .run = qmm_run,
};
