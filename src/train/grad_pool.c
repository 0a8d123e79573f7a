/* grad_pool.c - backward of MaxPool (the gradient goes to the window's
 * maximum, the first one on ties, as the forward picks it), AveragePool
 * (spread over the window's counted cells, count_include_pad as in the
 * forward) and GlobalAveragePool.
 *
 * The window geometry comes from kernels/ref/spatial.h, the same code the
 * forward kernels use, so forward and backward always agree on pads,
 * strides, dilations and ceil_mode.
 */
#include <string.h>

#include "base/threadpool.h"
#include "kernels/ref/spatial.h"
#include "train/grad.h"

typedef struct taps {
    int64_t lo, hi, start;
} taps;

static taps axis_taps(const qf_spatial_geom *g, int ax, int64_t o) {
    taps t;
    t.start = o * g->stride[ax] - g->pad_b[ax];
    qf_spatial_valid_range(t.start, g->dil[ax], g->in[ax], g->kernel[ax], &t.lo, &t.hi);
    return t;
}

static qf_status pool_geom(const qf_grad_args *a, qf_spatial_geom *g, qf_err *err) {
    const qf_tensor *x = &a->in[0];
    char d[200];
    if (x->dtype != QF_DT_F32 || x->rank < 3)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs a float X of rank >= 3",
                       qf_node_desc(a->node, d, sizeof d));
    qf_spatial_attrs at;
    qf_status s = qf_spatial_parse(a->node, &at, true, true, err);
    if (s) return s;
    return qf_spatial_resolve(a->node, &at, x->rank - 2, x->dims + 2, NULL, g, err);
}

/* One (batch, channel) plane per task, run on ctx->pool. */
typedef struct pool_job {
    qf_spatial_geom g;
    bool is_max, include_pad;
    const float *x, *dy;
    float *dx;
} pool_job;

static void pool_plane(void *ctx, int64_t pl, int tid) {
    (void)tid;
    const pool_job *j = ctx;
    const qf_spatial_geom g = j->g;
    bool is_max = j->is_max, include_pad = j->include_pad;
    int64_t hwi = qf_spatial_prod(g.in), in12 = g.in[1] * g.in[2];
    const float *xc = j->x + pl * hwi, *dy = j->dy + pl * qf_spatial_prod(g.out);
    float *dxc = j->dx + pl * hwi;
    {
        for (int64_t od = 0; od < g.out[0]; od++) {
            taps td = axis_taps(&g, 0, od);
            for (int64_t oh = 0; oh < g.out[1]; oh++) {
                taps th = axis_taps(&g, 1, oh);
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    taps tw = axis_taps(&g, 2, ow);
                    float gy = *dy++;
                    if (is_max) {
                        int64_t bi = -1;
                        float best = 0.0f;
                        for (int64_t kd = td.lo; kd < td.hi; kd++)
                            for (int64_t kh = th.lo; kh < th.hi; kh++)
                                for (int64_t kw = tw.lo; kw < tw.hi; kw++) {
                                    int64_t p = (td.start + kd * g.dil[0]) * in12 +
                                                (th.start + kh * g.dil[1]) * g.in[2] + tw.start +
                                                kw * g.dil[2];
                                    if (bi < 0 || xc[p] > best) {
                                        best = xc[p];
                                        bi = p;
                                    }
                                }
                        if (bi >= 0) dxc[bi] += gy;
                        continue;
                    }
                    int64_t count;
                    if (include_pad) {
                        count = 1;
                        int64_t o[QF_SPATIAL_MAX] = {od, oh, ow};
                        for (int ax = 0; ax < QF_SPATIAL_MAX; ax++) {
                            int64_t lo, hi;
                            qf_spatial_valid_range(o[ax] * g.stride[ax], g.dil[ax],
                                                   g.in[ax] + g.pad_b[ax] + g.pad_e[ax],
                                                   g.kernel[ax], &lo, &hi);
                            count *= hi - lo;
                        }
                    } else {
                        count = (td.hi - td.lo) * (th.hi - th.lo) * (tw.hi - tw.lo);
                    }
                    if (count <= 0) continue;
                    float v = gy / (float)count;
                    for (int64_t kd = td.lo; kd < td.hi; kd++)
                        for (int64_t kh = th.lo; kh < th.hi; kh++) {
                            float *row = dxc + (td.start + kd * g.dil[0]) * in12 +
                                         (th.start + kh * g.dil[1]) * g.in[2];
                            for (int64_t kw = tw.lo; kw < tw.hi; kw++)
                                row[tw.start + kw * g.dil[2]] += v;
                        }
                }
            }
        }
    }
}

static qf_status pool_backward(const qf_grad_args *a, bool is_max, qf_err *err) {
    pool_job j;
    memset(&j, 0, sizeof j);
    j.dy = a->d_out[0].data;
    j.dx = a->d_in[0].data;
    if (!j.dy || !j.dx) return QF_OK;
    qf_status s = pool_geom(a, &j.g, err);
    if (s) return s;
    j.is_max = is_max;
    j.include_pad = !is_max && qf_node_attr_int(a->node, "count_include_pad", 0) == 1;
    j.x = a->in[0].data;
    qf_parallel_for(a->ctx ? a->ctx->pool : NULL, a->in[0].dims[0] * a->in[0].dims[1], pool_plane,
                    &j);
    return QF_OK;
}

static qf_status maxpool_backward(const qf_grad_args *a, qf_err *err) {
    return pool_backward(a, true, err);
}
static qf_status avgpool_backward(const qf_grad_args *a, qf_err *err) {
    return pool_backward(a, false, err);
}

const qf_grad_def qf_graddef_max_pool = {.diff_inputs = 1, .backward = maxpool_backward};
const qf_grad_def qf_graddef_average_pool = {.diff_inputs = 1, .backward = avgpool_backward};

static qf_status gap_backward(const qf_grad_args *a, qf_err *err) {
    (void)err;
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data;
    if (!dy || !dx) return QF_OK;
    const qf_tensor *x = &a->in[0];
    int64_t planes = x->dims[0] * x->dims[1], size = 1;
    for (int d = 2; d < x->rank; d++)
        size *= x->dims[d];
    if (size == 0) return QF_OK;
    for (int64_t p = 0; p < planes; p++) {
        float v = dy[p] / (float)size;
        for (int64_t i = 0; i < size; i++)
            dx[p * size + i] += v;
    }
    return QF_OK;
}

const qf_grad_def qf_graddef_global_average_pool = {.diff_inputs = 1, .backward = gap_backward};
