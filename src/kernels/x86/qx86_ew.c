/* qx86_ew.c - drivers of the memory-bound int8 kernels (qx86_ew.h): argument
 * checks, the split over the thread pool, and the choice between the vector
 * row kernels and the scalar specification. */
#include "kernels/x86/qx86_ew.h"

#include <string.h>

#include "kernels/x86/qx86.h"

/* Below this many bytes a call runs on the caller alone. A call on the
 * pool costs about 0.2 us (a spinning worker starts a job 0.14 us after it
 * opens, measured here), while 64 KiB of element-wise work takes 2-4 us on
 * one core. */
#define QX_EW_PAR_BYTES (64 * 1024)
/* Elements per task of the element-wise kernels: small enough that a
 * thread the VM runs slower hands its tail to the other (several tasks per
 * thread from 64 KiB up). */
#define QX_EW_CHUNK (16 * 1024)
/* Max-pool row buffer: taps of one output row plus the kernels' slack. */
#define QX_POOL_ROW 8192

static const qx_ew_kernels *kernels_for(qf_isa isa) {
    if (!qf_x86_isa_usable(isa)) return NULL;
    return isa == QF_ISA_AVX512VNNI ? qx_ew_kernels_avx512() : qx_ew_kernels_avx2();
}

/* Tasks for a job of `bytes` bytes in `units` independent pieces. */
static int64_t n_tasks_for(qf_threadpool *pool, size_t bytes, int64_t units) {
    if (!pool || qf_threadpool_size(pool) < 2 || bytes < QX_EW_PAR_BYTES || units < 2) return 1;
    int64_t t = 4 * (int64_t)qf_threadpool_size(pool);
    return t < units ? t : units;
}

/* ---- concat -------------------------------------------------------------- */

typedef struct concat_job {
    const qx_concat *c;
    qx_lut_fn lut;
    int64_t first[65]; /* first chunk of input i in an output block; first[n_in]: all */
    int64_t at[64];    /* offset of input i's block in an output block */
} concat_job;

static void concat_task(void *ctx, int64_t task, int thread_id) {
    (void)thread_id;
    const concat_job *j = ctx;
    const qx_concat *c = j->c;
    /* tasks in output order: output block o, then its chunks */
    const int64_t o = task / j->first[c->n_in];
    const int64_t r = task % j->first[c->n_in];
    int i = 0;
    while (r >= j->first[i + 1])
        i++;
    const int64_t ch = r - j->first[i];
    const int64_t e0 = ch * QX_EW_CHUNK;
    const int64_t len = c->block[i] - e0 < QX_EW_CHUNK ? c->block[i] - e0 : QX_EW_CHUNK;
    const int8_t *x = c->src[i] + o * c->block[i] + e0;
    int8_t *y = c->dst + o * c->out_block + j->at[i] + e0;
    const int8_t *lut = c->lut[i];
    if (!lut) {
        memcpy(y, x, (size_t)len);
    } else if (j->lut) {
        j->lut(lut, x, y, (size_t)len);
    } else {
        for (int64_t e = 0; e < len; e++)
            y[e] = lut[(uint8_t)x[e]];
    }
}

void qf_x86_concat_s8(qf_threadpool *pool, qf_isa isa, const qx_concat *c) {
    if (!c || c->n_in < 1 || c->n_in > 64 || c->outer < 1) return;
    concat_job j;
    j.c = c;
    j.lut = isa == QF_ISA_AVX512VNNI && qf_x86_isa_usable(isa) ? qx_ew_lut_vbmi() : NULL;
    j.first[0] = 0;
    int64_t at = 0, bytes = 0;
    for (int i = 0; i < c->n_in; i++) {
        j.at[i] = at;
        at += c->block[i];
        j.first[i + 1] = j.first[i] + (c->block[i] + QX_EW_CHUNK - 1) / QX_EW_CHUNK;
        bytes += c->block[i] * c->outer;
    }
    /* below the threshold, one thread does it all */
    if (!pool || qf_threadpool_size(pool) < 2 || bytes < QX_EW_PAR_BYTES) pool = NULL;
    qf_parallel_for(pool, c->outer * j.first[c->n_in], concat_task, &j);
}

/* ---- lookup tables ------------------------------------------------------- */

typedef struct lut_job {
    qx_lut_fn fn;
    const int8_t *lut, *x;
    int8_t *y;
    int64_t channels, inner, chunks; /* chunks of QX_EW_CHUNK per plane */
} lut_job;

static void lut_task(void *ctx, int64_t task, int thread_id) {
    (void)thread_id;
    const lut_job *j = ctx;
    const int64_t plane = task / j->chunks, e0 = task % j->chunks * QX_EW_CHUNK;
    const int64_t len = j->inner - e0 < QX_EW_CHUNK ? j->inner - e0 : QX_EW_CHUNK;
    const int8_t *lut = j->lut + plane % j->channels * 256;
    const int8_t *x = j->x + plane * j->inner + e0;
    int8_t *y = j->y + plane * j->inner + e0;
    if (j->fn) {
        j->fn(lut, x, y, (size_t)len);
    } else {
        for (int64_t e = 0; e < len; e++)
            y[e] = lut[(uint8_t)x[e]];
    }
}

void qf_x86_lut_s8(qf_threadpool *pool, qf_isa isa, const int8_t *lut, int64_t channels,
                   int64_t outer, int64_t inner, const int8_t *x, int8_t *y) {
    if (!lut || !x || !y || channels < 1 || outer < 1 || inner < 1) return;
    lut_job j = {.fn = isa == QF_ISA_AVX512VNNI && qf_x86_isa_usable(isa) ? qx_ew_lut_vbmi() : NULL,
                 .lut = lut,
                 .x = x,
                 .y = y,
                 .channels = channels,
                 .inner = inner,
                 .chunks = (inner + QX_EW_CHUNK - 1) / QX_EW_CHUNK};
    const int64_t planes = outer * channels;
    if (!pool || qf_threadpool_size(pool) < 2 || planes * inner < QX_EW_PAR_BYTES) pool = NULL;
    qf_parallel_for(pool, planes * j.chunks, lut_task, &j);
}

/* ---- add ----------------------------------------------------------------- */

bool qf_x86_add_s8_supported(const qf_ref_eltwise_params *p) {
    if (!p || p->mode != QF_RQ_FP32 || p->rank < 0 || p->rank > QF_MAX_DIMS) return false;
    for (int i = 0; i < p->rank; i++)
        if (p->a_dims[i] != p->out_dims[i] || p->b_dims[i] != p->out_dims[i]) return false;
    return true;
}

typedef struct add_job {
    const qx_ew_kernels *k;
    const qx_add_consts *c;
    const int8_t *a, *b;
    int8_t *out;
    size_t n;
    int64_t n_tasks;
} add_job;

static void add_task(void *ctx, int64_t task, int thread_id) {
    const add_job *j = ctx;
    size_t per = (j->n + (size_t)j->n_tasks - 1) / (size_t)j->n_tasks;
    size_t i0 = (size_t)task * per, i1 = i0 + per < j->n ? i0 + per : j->n;
    if (i0 < i1) j->k->add(j->a + i0, j->b + i0, j->out + i0, i1 - i0, j->c);
}

static void consts_of(const qf_ref_eltwise_params *p, const qf_ref_add_derived *d,
                      qx_add_consts *c) {
    *c = (qx_add_consts){.a_zp = p->a_zp,
                         .b_zp = p->b_zp,
                         .out_zp = p->out_zp,
                         .a_mult = d->a_mult_f,
                         .b_mult = d->b_mult_f,
                         .lo = (float)(p->act_min - p->out_zp),
                         .hi = (float)(p->act_max - p->out_zp)};
}

qf_status qf_x86_add_consts(const qf_ref_eltwise_params *p, qx_add_consts *c, qf_err *err) {
    qf_ref_add_derived d;
    if (!p || !c || !qf_x86_add_s8_supported(p))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_x86_add_consts: unsupported add");
    qf_status s = qf_ref_add_prepare(p, &d, err);
    if (s != QF_OK) return s;
    if (p->act_min > p->act_max || p->act_min < -128 || p->act_max > 127 || p->out_zp < -128 ||
        p->out_zp > 127)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_x86_add_consts: bad clamp or zero point");
    consts_of(p, &d, c);
    return QF_OK;
}

qf_status qf_x86_add_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_eltwise_params *p,
                        const int8_t *a, const int8_t *b, int8_t *out, qf_err *err) {
    const qx_ew_kernels *k = kernels_for(isa);
    if (!k || !qf_x86_add_s8_supported(p)) return qf_ref_add_s8(p, a, b, out, err);
    qf_ref_add_derived d;
    qf_status s = qf_ref_add_prepare(p, &d, err);
    if (s != QF_OK) return s;
    if (!a || !b || !out || p->act_min > p->act_max || p->act_min < -128 || p->act_max > 127 ||
        p->out_zp < -128 || p->out_zp > 127)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_x86_add_s8: bad arguments");
    size_t n = 1;
    for (int i = 0; i < p->rank; i++)
        if (p->out_dims[i] < 0 || !qf_mul_size(n, (size_t)p->out_dims[i], &n))
            return qf_errf(err, QF_ERR_INVALID_ARG, "qf_x86_add_s8: bad shape");
    if (n == 0) return QF_OK;
    qx_add_consts c;
    consts_of(p, &d, &c);
    add_job j = {.k = k, .c = &c, .a = a, .b = b, .out = out, .n = n};
    j.n_tasks = n_tasks_for(pool, 2 * n, (int64_t)((n + QX_EW_CHUNK - 1) / QX_EW_CHUNK));
    qf_parallel_for(pool, j.n_tasks, add_task, &j);
    return QF_OK;
}

/* ---- max pool ------------------------------------------------------------ */

/* Row-buffer extent: every tap index ox * stride + kx * dil, and the input
 * row at [pad_left, pad_left + in_w). */
static int64_t pool_row_len(const qf_ref_pool_params *p) {
    int64_t last = (int64_t)(p->out_w - 1) * p->stride_w + (int64_t)(p->k_w - 1) * p->dil_w + 1;
    int64_t row = (int64_t)p->pad_left + p->in_w;
    return last > row ? last : row;
}

bool qf_x86_maxpool_s8_supported(const qf_ref_pool_params *p) {
    if (!p || p->out_w < 1 || p->k_w < 1 || p->k_h < 1 || p->in_w < 1 || p->pad_left < 0 ||
        p->stride_w < 1 || p->dil_w < 1 || p->k_h > 64)
        return false;
    return pool_row_len(p) + QX_POOL_SLACK <= QX_POOL_ROW;
}

typedef struct pool_job {
    const qx_ew_kernels *k;
    const qf_ref_pool_params *p;
    const int8_t *in;
    int8_t *out;
    int64_t planes, n_tasks;
    bool pool2;   /* 2x2 stride 2 without padding: the plane kernel */
    bool pool3s2; /* 3x3 stride 2, padding up to 2: the plane kernel */
} pool_job;

/* Horizontal pass for strides the vector kernels do not take. */
static void hmax_scalar(const int8_t *t, int32_t out_w, int32_t stride, int32_t k_w, int32_t dil,
                        int32_t lo, int32_t hi, int8_t *out) {
    for (int32_t ox = 0; ox < out_w; ox++) {
        int32_t m = -128;
        for (int32_t k = 0; k < k_w; k++)
            if (t[(int64_t)ox * stride + (int64_t)k * dil] > m)
                m = t[(int64_t)ox * stride + (int64_t)k * dil];
        out[ox] = (int8_t)(m < lo ? lo : m > hi ? hi : m);
    }
}

/* The reference's window rule with -128 as the identity: padded taps hold
 * -128 in the row buffer, rows outside the input are skipped, and a window
 * without valid taps yields -128, which the clamp turns into act_min. */
static void maxpool_task(void *ctx, int64_t task, int thread_id) {
    const pool_job *j = ctx;
    const qf_ref_pool_params *p = j->p;
    const int64_t per = (j->planes + j->n_tasks - 1) / j->n_tasks;
    const int64_t pl0 = task * per, pl1 = pl0 + per < j->planes ? pl0 + per : j->planes;
    if (j->pool2) {
        for (int64_t pl = pl0; pl < pl1; pl++)
            j->k->pool2(j->in + pl * p->in_h * p->in_w, p->in_w, p->out_h, p->out_w, p->act_min,
                        p->act_max, j->out + pl * p->out_h * p->out_w);
        return;
    }
    if (j->pool3s2) {
        for (int64_t pl = pl0; pl < pl1; pl++)
            j->k->pool3s2(j->in + pl * p->in_h * p->in_w, p->in_h, p->in_w, p->pad_top, p->pad_left,
                          p->out_h, p->out_w, p->act_min, p->act_max,
                          j->out + pl * p->out_h * p->out_w);
        return;
    }
    int8_t t[QX_POOL_ROW];
    const int64_t len = pool_row_len(p) + QX_POOL_SLACK;
    memset(t, -128, (size_t)len);
    const int8_t *rows[64];
    const bool vec_h = p->stride_w <= 2;
    for (int64_t pl = pl0; pl < pl1; pl++) {
        const int8_t *plane = j->in + pl * p->in_h * p->in_w;
        int8_t *o = j->out + pl * p->out_h * p->out_w;
        for (int64_t oy = 0; oy < p->out_h; oy++) {
            int nr = 0;
            for (int64_t ky = 0; ky < p->k_h; ky++) {
                const int64_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                if (iy >= 0 && iy < p->in_h) rows[nr++] = plane + iy * p->in_w;
            }
            if (nr)
                j->k->vmax(rows, nr, (size_t)p->in_w, t + p->pad_left);
            else
                memset(t + p->pad_left, -128, (size_t)p->in_w);
            int8_t *orow = o + oy * p->out_w;
            if (vec_h)
                j->k->hmax(t, p->out_w, p->stride_w, p->k_w, p->dil_w, p->act_min, p->act_max,
                           orow);
            else
                hmax_scalar(t, p->out_w, p->stride_w, p->k_w, p->dil_w, p->act_min, p->act_max,
                            orow);
        }
    }
}

qf_status qf_x86_maxpool_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_pool_params *p,
                            const int8_t *in, int8_t *out, qf_err *err) {
    const qx_ew_kernels *k = kernels_for(isa);
    if (!k || !qf_x86_maxpool_s8_supported(p)) return qf_ref_maxpool_s8(p, in, out, err);
    /* the reference's checks; on failure it reports them (writing nothing) */
    size_t bytes = 1;
    const int32_t dims[4] = {p->batch, p->channels, p->in_h, p->in_w};
    bool ok = in && out && p->out_h >= 1 && p->stride_h >= 1 && p->dil_h >= 1 && p->pad_top >= 0 &&
              p->pad_bottom >= 0 && p->pad_right >= 0 && p->in_zp >= -128 && p->in_zp <= 127 &&
              p->out_zp >= -128 && p->out_zp <= 127 && p->act_min >= -128 && p->act_max <= 127 &&
              p->act_min <= p->act_max;
    for (int i = 0; i < 4 && ok; i++)
        ok = dims[i] >= 1 && qf_mul_size(bytes, (size_t)dims[i], &bytes);
    /* the reference also rejects sizes whose product with the output's overflows */
    size_t all = bytes;
    ok = ok && qf_mul_size(all, (size_t)p->out_h, &all) &&
         qf_mul_size(all, (size_t)p->out_w, &all) && all <= (size_t)INT64_MAX;
    if (!ok) return qf_ref_maxpool_s8(p, in, out, err);
    pool_job j = {.k = k, .p = p, .in = in, .out = out};
    j.pool2 = k->pool2 && p->k_h == 2 && p->k_w == 2 && p->stride_h == 2 && p->stride_w == 2 &&
              p->dil_h == 1 && p->dil_w == 1 && !p->pad_top && !p->pad_left && !p->pad_bottom &&
              !p->pad_right && 2 * (int64_t)p->out_h <= p->in_h && 2 * (int64_t)p->out_w <= p->in_w;
    j.pool3s2 = k->pool3s2 && !j.pool2 && p->k_h == 3 && p->k_w == 3 && p->stride_h == 2 &&
                p->stride_w == 2 && p->dil_h == 1 && p->dil_w == 1 && p->pad_top <= 2 &&
                p->pad_left <= 2;
    j.planes = (int64_t)p->batch * p->channels;
    j.n_tasks = n_tasks_for(pool, bytes, j.planes);
    qf_parallel_for(pool, j.n_tasks, maxpool_task, &j);
    return QF_OK;
}

/* ---- global average pool ------------------------------------------------- */

typedef struct gap_job {
    const qx_ew_kernels *k;
    const qf_ref_pool_params *p;
    const qf_ref_rescale *r;
    const int8_t *in;
    int8_t *out;
    int64_t planes, n_tasks, hw;
} gap_job;

static void gap_task(void *ctx, int64_t task, int thread_id) {
    const gap_job *j = ctx;
    const qf_ref_pool_params *p = j->p;
    const int64_t per = (j->planes + j->n_tasks - 1) / j->n_tasks;
    const int64_t pl0 = task * per, pl1 = pl0 + per < j->planes ? pl0 + per : j->planes;
    for (int64_t pl = pl0; pl < pl1; pl++) {
        /* sum (q - zp) = sum (q + 128) - (128 + zp) * hw, exact: the caller
         * bounded hw * 255 below 2^31 */
        int64_t s = j->k->sum_biased(j->in + pl * j->hw, (size_t)j->hw) - (128 + p->in_zp) * j->hw;
        j->out[pl] =
            (int8_t)qf_ref_requantize(p->mode, (int32_t)s, j->r, p->out_zp, p->act_min, p->act_max);
    }
}

qf_status qf_x86_global_avgpool_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_pool_params *p,
                                   const int8_t *in, int8_t *out, qf_err *err) {
    const qx_ew_kernels *k = kernels_for(isa);
    if (!k || !p || !in || !out || p->batch < 1 || p->channels < 1 || p->in_h < 1 || p->in_w < 1 ||
        p->in_zp < -128 || p->in_zp > 127 || p->out_zp < -128 || p->out_zp > 127 ||
        p->act_min < -128 || p->act_max > 127 || p->act_min > p->act_max ||
        (p->mode != QF_RQ_FP32 && p->mode != QF_RQ_FIXED))
        return qf_ref_global_avgpool_s8(p, in, out, err); /* the spec, or its error */
    const int64_t hw = (int64_t)p->in_h * p->in_w;
    qf_ref_rescale r;
    if (hw > (int64_t)(INT32_MAX / 255) ||
        qf_ref_avgpool_rescale(p->in_scale, p->out_scale, hw, &r) != QF_OK)
        return qf_ref_global_avgpool_s8(p, in, out, err);
    gap_job j = {.k = k, .p = p, .r = &r, .in = in, .out = out, .hw = hw};
    j.planes = (int64_t)p->batch * p->channels;
    j.n_tasks = n_tasks_for(pool, (size_t)(j.planes * hw), j.planes);
    qf_parallel_for(pool, j.n_tasks, gap_task, &j);
    return QF_OK;
}

/* ---- quantize / dequantize ----------------------------------------------- */

typedef struct conv_job {
    const qx_ew_kernels *k;
    const float *x;
    void *q;
    float *xo;
    const void *qi;
    size_t n;
    float scale, fzp;
    int32_t zp;
    bool is_u8;
    int64_t n_tasks;
} conv_job;

static void task_range(const conv_job *j, int64_t task, size_t *i0, size_t *i1) {
    size_t per = (j->n + (size_t)j->n_tasks - 1) / (size_t)j->n_tasks;
    *i0 = (size_t)task * per;
    *i1 = *i0 + per < j->n ? *i0 + per : j->n;
    if (*i0 > *i1) *i0 = *i1;
}

static void quant_task(void *ctx, int64_t task, int thread_id) {
    const conv_job *j = ctx;
    size_t i0, i1;
    task_range(j, task, &i0, &i1);
    if (i0 < i1) j->k->quant(j->x + i0, i1 - i0, j->scale, j->fzp, j->is_u8, (uint8_t *)j->q + i0);
}

static void dequant_task(void *ctx, int64_t task, int thread_id) {
    const conv_job *j = ctx;
    size_t i0, i1;
    task_range(j, task, &i0, &i1);
    if (i0 < i1)
        j->k->dequant((const uint8_t *)j->qi + i0, j->is_u8, i1 - i0, j->scale, j->zp, j->xo + i0);
}

void qf_x86_quantize_f32_8(qf_threadpool *pool, qf_isa isa, const float *x, size_t n, float scale,
                           float zp, bool is_u8, void *y) {
    const qx_ew_kernels *k = kernels_for(isa);
    if (!k) {
        const int32_t qmin = is_u8 ? 0 : -128, qmax = is_u8 ? 255 : 127;
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)y)[i] = (uint8_t)qx_quant_one(x[i] / scale, zp, qmin, qmax);
        return;
    }
    conv_job j = {.k = k, .x = x, .q = y, .n = n, .scale = scale, .fzp = zp, .is_u8 = is_u8};
    j.n_tasks = n_tasks_for(pool, 4 * n, (int64_t)((n + QX_EW_CHUNK - 1) / QX_EW_CHUNK));
    qf_parallel_for(pool, j.n_tasks, quant_task, &j);
}

void qf_x86_dequantize_8_f32(qf_threadpool *pool, qf_isa isa, const void *q, bool is_u8, size_t n,
                             float scale, int32_t zp, float *x) {
    const qx_ew_kernels *k = kernels_for(isa);
    if (!k) {
        for (size_t i = 0; i < n; i++) {
            int32_t v = is_u8 ? (int32_t)((const uint8_t *)q)[i] : (int32_t)((const int8_t *)q)[i];
            x[i] = (float)(v - zp) * scale;
        }
        return;
    }
    conv_job j = {.k = k, .qi = q, .xo = x, .n = n, .scale = scale, .zp = zp, .is_u8 = is_u8};
    j.n_tasks = n_tasks_for(pool, 4 * n, (int64_t)((n + QX_EW_CHUNK - 1) / QX_EW_CHUNK));
    qf_parallel_for(pool, j.n_tasks, dequant_task, &j);
}
