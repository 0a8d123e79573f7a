/* pool_f32.c - ONNX MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
 * float reference kernels (MaxPool also takes uint8/int8, as in quantized
 * models).
 *
 * Windows follow spatial.h (1-D..3-D, strides, dilations, pads, auto_pad,
 * ceil_mode). Padding never contributes a value: MaxPool takes the max of
 * the real elements; AveragePool divides by the real elements, or with
 * count_include_pad=1 by the window's cells inside the padded extent (cells
 * past the end padding, which ceil_mode can create, never count). MaxPool's
 * optional Indices output holds flat indices into X (batch and channel
 * included), row-major for storage_order=0 and column-major over the
 * spatial axes for storage_order=1.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "base/threadpool.h"
#include "kernels/ref/spatial.h"

typedef struct pool_params {
    qf_spatial_attrs sp;
    bool count_include_pad; /* AveragePool */
    bool col_major;         /* MaxPool storage_order = 1 */
} pool_params;

typedef enum { POOL_MAX, POOL_AVG } pool_kind;

static qf_status pool_parse_common(qf_graph *g, qf_node *n, pool_kind kind, qf_err *err) {
    char d[200];
    pool_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", n->op_type);
    qf_status s = qf_spatial_parse(n, &p->sp, true, true, err);
    if (s) return s;
    if (kind == POOL_AVG) {
        int64_t c = qf_node_attr_int(n, "count_include_pad", 0);
        if (c != 0 && c != 1)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: count_include_pad must be 0 or 1",
                           qf_node_desc(n, d, sizeof d));
        p->count_include_pad = c == 1;
    } else {
        int64_t so = qf_node_attr_int(n, "storage_order", 0);
        if (so != 0 && so != 1)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: storage_order must be 0 or 1",
                           qf_node_desc(n, d, sizeof d));
        p->col_major = so == 1;
    }
    n->params = p;
    return QF_OK;
}

static qf_status maxpool_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return pool_parse_common(g, n, POOL_MAX, err);
}
static qf_status avgpool_parse(qf_graph *g, qf_node *n, qf_err *err) {
    return pool_parse_common(g, n, POOL_AVG, err);
}

static qf_status pool_geom(const qf_node *n, const qf_tensor *x, pool_kind kind, qf_spatial_geom *g,
                           qf_err *err) {
    const pool_params *p = n->params;
    char d[200];
    if (kind == POOL_MAX) {
        if (x->dtype != QF_DT_F32 && x->dtype != QF_DT_U8 && x->dtype != QF_DT_I8)
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: X has dtype %s; float32, uint8 and int8 are supported",
                           qf_node_desc(n, d, sizeof d), qf_dtype_name(x->dtype));
    } else {
        qf_status s = qf_require_f32(n, x, "X", err);
        if (s) return s;
    }
    if (x->rank < 3)
        return qf_errf(err, QF_ERR_SHAPE, "%s: X must have rank >= 3 (got %d)",
                       qf_node_desc(n, d, sizeof d), x->rank);
    return qf_spatial_resolve(n, &p->sp, x->rank - 2, x->dims + 2, NULL, g, err);
}

static qf_status pool_infer_common(const qf_node *n, const qf_tensor *in, qf_tensor *out, int n_out,
                                   pool_kind kind, qf_err *err) {
    qf_spatial_geom g;
    qf_status s = pool_geom(n, &in[0], kind, &g, err);
    if (s) return s;
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = in[0].dims[1];
    for (int i = 0; i < g.nsp; i++)
        out[0].dims[2 + i] = g.out[QF_SPATIAL_MAX - g.nsp + i];
    if (kind == POOL_MAX && n_out > 1) {
        out[1] = out[0];
        out[1].dtype = QF_DT_I64;
        out[1].data = NULL;
    }
    return QF_OK;
}

static qf_status maxpool_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    return pool_infer_common(n, in, out, n_out, POOL_MAX, err);
}
static qf_status avgpool_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                               int n_out, qf_err *err) {
    return pool_infer_common(n, in, out, n_out, POOL_AVG, err);
}

/* Taps [lo, hi) of one axis whose input position start + k*dil is real. */
typedef struct tap_range {
    int64_t lo, hi, start;
} tap_range;

static tap_range axis_taps(const qf_spatial_geom *g, int ax, int64_t o) {
    tap_range t;
    t.start = o * g->stride[ax] - g->pad_b[ax];
    qf_spatial_valid_range(t.start, g->dil[ax], g->in[ax], g->kernel[ax], &t.lo, &t.hi);
    return t;
}

/* Max pooling for one element type; idx (may be NULL) receives flat indices. */
#define DEFINE_MAXPOOL(NAME, T, LOWEST)                                                            \
    static void NAME(const qf_spatial_geom *g, bool col_major, int64_t planes, const T *x, T *y,   \
                     int64_t *idx) {                                                               \
        int64_t hwi = qf_spatial_prod(g->in), in12 = g->in[1] * g->in[2];                          \
        for (int64_t pl = 0; pl < planes; pl++) {                                                  \
            const T *xc = x + pl * hwi;                                                            \
            for (int64_t od = 0; od < g->out[0]; od++) {                                           \
                tap_range td = axis_taps(g, 0, od);                                                \
                for (int64_t oh = 0; oh < g->out[1]; oh++) {                                       \
                    tap_range th = axis_taps(g, 1, oh);                                            \
                    for (int64_t ow = 0; ow < g->out[2]; ow++) {                                   \
                        tap_range tw = axis_taps(g, 2, ow);                                        \
                        T best = LOWEST;                                                           \
                        int64_t bi = -1;                                                           \
                        for (int64_t kd = td.lo; kd < td.hi; kd++) {                               \
                            int64_t id = td.start + kd * g->dil[0];                                \
                            for (int64_t kh = th.lo; kh < th.hi; kh++) {                           \
                                int64_t ih = th.start + kh * g->dil[1];                            \
                                const T *row = xc + id * in12 + ih * g->in[2];                     \
                                for (int64_t kw = tw.lo; kw < tw.hi; kw++) {                       \
                                    int64_t iw = tw.start + kw * g->dil[2];                        \
                                    if (bi < 0 || row[iw] > best) {                                \
                                        best = row[iw];                                            \
                                        bi = col_major ? id + g->in[0] * (ih + g->in[1] * iw)      \
                                                       : id * in12 + ih * g->in[2] + iw;           \
                                    }                                                              \
                                }                                                                  \
                            }                                                                      \
                        }                                                                          \
                        *y++ = best;                                                               \
                        if (idx) *idx++ = bi < 0 ? -1 : pl * hwi + bi;                             \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_MAXPOOL(maxpool_f32, float, -FLT_MAX)
DEFINE_MAXPOOL(maxpool_u8, uint8_t, 0)
DEFINE_MAXPOOL(maxpool_i8, int8_t, INT8_MIN)

/* Float MaxPool without Indices over 1-D/2-D windows of dilation 1, the
 * runtime's usual case: per output row, the column-wise max of the row's
 * window rows (first row copied, then x > v ? x : v, vectorizable), then
 * each output's max over its columns, first column first. Per column and
 * then across columns, the first valid element wins ties and a NaN counts
 * only where it is the first element, so the value equals the reference's
 * (which scans the window row by row from the same first element): NaN
 * exactly where it has NaN; a +0 against a -0 may come out with the other
 * sign. Planes split over the pool. */
#define MP_ROW 4096

typedef struct mp_job {
    const qf_spatial_geom *g;
    const float *x;
    float *y;
    int64_t planes, per_task;
} mp_job;

static void mp_plane(const qf_spatial_geom *g, const float *xc, float *y) {
    float v[MP_ROW];
    const int64_t iw = g->in[2];
    for (int64_t oh = 0; oh < g->out[1]; oh++) {
        const tap_range th = axis_taps(g, 1, oh);
        if (th.lo >= th.hi) {
            for (int64_t ow = 0; ow < g->out[2]; ow++)
                *y++ = -FLT_MAX;
            continue;
        }
        memcpy(v, xc + (th.start + th.lo) * iw, sizeof(float) * (size_t)iw);
        for (int64_t kh = th.lo + 1; kh < th.hi; kh++) {
            const float *r = xc + (th.start + kh) * iw;
            for (int64_t c = 0; c < iw; c++)
                v[c] = r[c] > v[c] ? r[c] : v[c];
        }
        for (int64_t ow = 0; ow < g->out[2]; ow++) {
            const tap_range tw = axis_taps(g, 2, ow);
            float best = -FLT_MAX;
            for (int64_t kw = tw.lo; kw < tw.hi; kw++) {
                const float e = v[tw.start + kw];
                if (kw == tw.lo || e > best) best = e;
            }
            *y++ = best;
        }
    }
}

static void mp_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const mp_job *j = ctx;
    const int64_t hwi = j->g->in[1] * j->g->in[2], hwo = j->g->out[1] * j->g->out[2];
    const int64_t p1 = (task + 1) * j->per_task < j->planes ? (task + 1) * j->per_task : j->planes;
    for (int64_t pl = task * j->per_task; pl < p1; pl++)
        mp_plane(j->g, j->x + pl * hwi, j->y + pl * hwo);
}

static bool mp_fast(const qf_spatial_geom *g) {
    return g->in[0] == 1 && g->kernel[0] == 1 && g->out[0] == 1 && g->pad_b[0] == 0 &&
           g->dil[1] == 1 && g->dil[2] == 1 && g->in[2] <= MP_ROW;
}

static qf_status maxpool_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const pool_params *p = n->params;
    qf_spatial_geom g;
    qf_status s = pool_geom(n, &in[0], POOL_MAX, &g, err);
    if (s) return s;
    int64_t planes = in[0].dims[0] * in[0].dims[1];
    int64_t *idx = n_out > 1 ? out[1].data : NULL;
    if (in[0].dtype == QF_DT_F32 && !idx && mp_fast(&g) && planes > 0) {
        qf_threadpool *pool = ctx ? ctx->pool : NULL;
        mp_job j = {.g = &g, .x = in[0].data, .y = out[0].data, .planes = planes};
        j.per_task = qf_parallel_chunk(pool, planes, 4);
        qf_parallel_for(pool, (planes + j.per_task - 1) / j.per_task, mp_task, &j);
        return QF_OK;
    }
    switch (in[0].dtype) {
    case QF_DT_U8: maxpool_u8(&g, p->col_major, planes, in[0].data, out[0].data, idx); break;
    case QF_DT_I8: maxpool_i8(&g, p->col_major, planes, in[0].data, out[0].data, idx); break;
    default: maxpool_f32(&g, p->col_major, planes, in[0].data, out[0].data, idx); break;
    }
    return QF_OK;
}

static qf_status avgpool_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                             int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const pool_params *p = n->params;
    qf_spatial_geom g;
    qf_status s = pool_geom(n, &in[0], POOL_AVG, &g, err);
    if (s) return s;
    int64_t planes = in[0].dims[0] * in[0].dims[1];
    int64_t hwi = qf_spatial_prod(g.in), in12 = g.in[1] * g.in[2];
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xc = x + pl * hwi;
        for (int64_t od = 0; od < g.out[0]; od++) {
            tap_range td = axis_taps(&g, 0, od);
            for (int64_t oh = 0; oh < g.out[1]; oh++) {
                tap_range th = axis_taps(&g, 1, oh);
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    tap_range tw = axis_taps(&g, 2, ow);
                    float sum = 0.0f;
                    for (int64_t kd = td.lo; kd < td.hi; kd++) {
                        int64_t id = td.start + kd * g.dil[0];
                        for (int64_t kh = th.lo; kh < th.hi; kh++) {
                            const float *row =
                                xc + id * in12 + (th.start + kh * g.dil[1]) * g.in[2];
                            for (int64_t kw = tw.lo; kw < tw.hi; kw++)
                                sum += row[tw.start + kw * g.dil[2]];
                        }
                    }
                    int64_t count;
                    if (p->count_include_pad) {
                        count = 1;
                        int64_t o[QF_SPATIAL_MAX] = {od, oh, ow};
                        for (int ax = 0; ax < QF_SPATIAL_MAX; ax++) {
                            int64_t lo, hi;
                            /* taps inside the padded extent [-pad_b, in + pad_e) */
                            int64_t start = o[ax] * g.stride[ax];
                            qf_spatial_valid_range(start, g.dil[ax],
                                                   g.in[ax] + g.pad_b[ax] + g.pad_e[ax],
                                                   g.kernel[ax], &lo, &hi);
                            count *= hi - lo;
                        }
                    } else {
                        count = (td.hi - td.lo) * (th.hi - th.lo) * (tw.hi - tw.lo);
                    }
                    *y++ = count > 0 ? sum / (float)count : 0.0f;
                }
            }
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_max_pool = {
    .name = "MaxPool",
    .parse = maxpool_parse,
    .infer = maxpool_infer,
    .run = maxpool_run,
};

const qf_op_def qf_opdef_average_pool = {
    .name = "AveragePool",
    .parse = avgpool_parse,
    .infer = avgpool_infer,
    .run = avgpool_run,
};

/* ---- global pools --------------------------------------------------- */

static qf_status global_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    char d[200];
    qf_status s = qf_require_f32(n, &in[0], "X", err);
    if (s) return s;
    if (in[0].rank < 2)
        return qf_errf(err, QF_ERR_SHAPE, "%s: X must have rank >= 2 (got %d)",
                       qf_node_desc(n, d, sizeof d), in[0].rank);
    out[0].dtype = QF_DT_F32;
    out[0].rank = in[0].rank;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = in[0].dims[1];
    for (int i = 2; i < in[0].rank; i++)
        out[0].dims[i] = 1;
    return QF_OK;
}

static void plane_sizes(const qf_tensor *x, int64_t *planes, int64_t *size) {
    *planes = x->dims[0] * x->dims[1];
    *size = 1;
    for (int i = 2; i < x->rank; i++)
        *size *= x->dims[i];
}

static qf_status global_avg_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                                int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int64_t planes, size;
    plane_sizes(&in[0], &planes, &size);
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * size;
        double sum = 0.0; /* long planes: keep the sum exact enough */
        for (int64_t i = 0; i < size; i++)
            sum += xp[i];
        y[p] = size ? (float)(sum / (double)size) : 0.0f;
    }
    return QF_OK;
}

static qf_status global_max_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                                int n_in, qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    int64_t planes, size;
    plane_sizes(&in[0], &planes, &size);
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * size;
        float m = size ? xp[0] : -INFINITY;
        for (int64_t i = 1; i < size; i++)
            m = xp[i] > m ? xp[i] : m;
        y[p] = m;
    }
    return QF_OK;
}

const qf_op_def qf_opdef_global_average_pool = {
    .name = "GlobalAveragePool",
    .infer = global_infer,
    .run = global_avg_run,
};

const qf_op_def qf_opdef_global_max_pool = {
    .name = "GlobalMaxPool",
    .infer = global_infer,
    .run = global_max_run,
};
