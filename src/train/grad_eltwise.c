/* grad_eltwise.c - backward of the elementwise ops: the broadcasting
 * binaries Add, Sub, Mul, Div (the gradient of an operand that was
 * broadcast is summed over the broadcast axes) and the activations Relu,
 * LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh.
 *
 * At a kink (Relu at 0, Clip at a bound) the gradient follows PyTorch:
 * Relu passes nothing at x == 0, Clip passes at x == min and x == max.
 */
#include <math.h>
#include <string.h>

#include "base/threadpool.h"
#include "train/grad.h"

/* ---- broadcasting binaries -------------------------------------------- */

/* Element strides of t aligned (numpy, trailing) to an output of rank r;
 * 0 along axes where t is broadcast. */
static void bcast_strides(const qf_tensor *t, const qf_tensor *o, int64_t *st) {
    int r = o->rank, k = t->rank;
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        int td = d - (r - k);
        if (td < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = (t->dims[td] == 1 && o->dims[d] != 1) ? 0 : s;
        s *= t->dims[td];
    }
}

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } bin_kind;

static qf_status binary_backward(const qf_grad_args *a, bin_kind kind, qf_err *err) {
    const qf_tensor *A = &a->in[0], *B = &a->in[1], *Y = &a->out[0];
    const float *dy = a->d_out[0].data;
    float *da = a->d_in[0].data, *db = a->n_in > 1 ? a->d_in[1].data : NULL;
    if (!dy || (!da && !db)) return QF_OK;
    if (A->dtype != QF_DT_F32 || B->dtype != QF_DT_F32) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs float operands",
                       qf_node_desc(a->node, d, sizeof d));
    }
    const float *av = A->data, *bv = B->data, *yv = Y->data;
    int64_t ny = qf_tensor_numel(Y);
    if (kind == BIN_ADD && qf_tensor_numel(A) == ny && qf_tensor_numel(B) == ny) {
        /* no broadcast (a residual Add): both gradients are dy itself */
        if (da) qf_grad_add(da, dy, ny);
        if (db) qf_grad_add(db, dy, ny);
        return QF_OK;
    }
    int r = Y->rank;
    int64_t sa[QF_MAX_DIMS] = {0}, sb[QF_MAX_DIMS] = {0}, idx[QF_MAX_DIMS] = {0};
    bcast_strides(A, Y, sa);
    bcast_strides(B, Y, sb);
    int64_t n = qf_tensor_numel(Y), inner = r > 0 ? Y->dims[r - 1] : 1;
    int64_t ia = r > 0 ? sa[r - 1] : 0, ib = r > 0 ? sb[r - 1] : 0;
    int64_t oa = 0, ob = 0;
    /* one innermost row at a time; the odometer moves the outer offsets */
    for (int64_t e = 0; e < n; e += inner) {
        for (int64_t j = 0; j < inner; j++) {
            float g = dy[e + j];
            int64_t pa = oa + j * ia, pb = ob + j * ib;
            switch (kind) {
            case BIN_ADD:
                if (da) da[pa] += g;
                if (db) db[pb] += g;
                break;
            case BIN_SUB:
                if (da) da[pa] += g;
                if (db) db[pb] -= g;
                break;
            case BIN_MUL:
                if (da) da[pa] += g * bv[pb];
                if (db) db[pb] += g * av[pa];
                break;
            case BIN_DIV:
                if (da) da[pa] += g / bv[pb];
                /* d(a/b)/db = -a/b^2 = -y/b */
                if (db) db[pb] -= g * yv[e + j] / bv[pb];
                break;
            }
        }
        for (int d = r - 2; d >= 0; d--) {
            oa += sa[d];
            ob += sb[d];
            if (++idx[d] < Y->dims[d]) break;
            oa -= sa[d] * Y->dims[d];
            ob -= sb[d] * Y->dims[d];
            idx[d] = 0;
        }
    }
    return QF_OK;
}

static qf_status add_backward(const qf_grad_args *a, qf_err *err) {
    return binary_backward(a, BIN_ADD, err);
}
static qf_status sub_backward(const qf_grad_args *a, qf_err *err) {
    return binary_backward(a, BIN_SUB, err);
}
static qf_status mul_backward(const qf_grad_args *a, qf_err *err) {
    return binary_backward(a, BIN_MUL, err);
}
static qf_status div_backward(const qf_grad_args *a, qf_err *err) {
    return binary_backward(a, BIN_DIV, err);
}

const qf_grad_def qf_graddef_add = {
    .flags = QF_GRADF_NO_SCALAR_PARAMS, .diff_inputs = 3, .backward = add_backward};
const qf_grad_def qf_graddef_sub = {
    .flags = QF_GRADF_NO_SCALAR_PARAMS, .diff_inputs = 3, .backward = sub_backward};
const qf_grad_def qf_graddef_mul = {
    .flags = QF_GRADF_NO_SCALAR_PARAMS, .diff_inputs = 3, .backward = mul_backward};
const qf_grad_def qf_graddef_div = {
    .flags = QF_GRADF_NO_SCALAR_PARAMS, .diff_inputs = 3, .backward = div_backward};

/* ---- activations ------------------------------------------------------- */

typedef enum {
    ACT_RELU,
    ACT_LEAKY,
    ACT_CLIP,
    ACT_SIGMOID,
    ACT_HSIGMOID,
    ACT_HSWISH,
    ACT_TANH
} act_kind;

/* Clip's bounds: attributes before opset 11, optional inputs after. */
static void clip_bounds(const qf_grad_args *a, float *lo, float *hi) {
    *lo = -INFINITY;
    *hi = INFINITY;
    if (a->node->opset < 11) {
        *lo = qf_node_attr_float(a->node, "min", -INFINITY);
        *hi = qf_node_attr_float(a->node, "max", INFINITY);
        return;
    }
    if (a->n_in > 1 && a->in[1].data && qf_tensor_numel(&a->in[1]) >= 1)
        *lo = (float)qf_tensor_get_f64(&a->in[1], 0);
    if (a->n_in > 2 && a->in[2].data && qf_tensor_numel(&a->in[2]) >= 1)
        *hi = (float)qf_tensor_get_f64(&a->in[2], 0);
}

/* dx += dy where x > 0. Random signs make a branchy loop mispredict half
 * the time and GCC at -O2 does not vectorise selects, so with GCC/Clang the
 * mask is applied with generic vectors (4 floats). */
static void relu_backward_f32(float *restrict dx, const float *restrict x, const float *restrict dy,
                              int64_t n) {
    int64_t i = 0;
#if defined(__GNUC__)
    /* 16-byte vectors: native on the x86-64 baseline (SSE2); wider ones
     * are split through the stack there */
    typedef float v4f __attribute__((vector_size(16)));
    typedef int32_t v4i __attribute__((vector_size(16)));
    for (; i + 4 <= n; i += 4) {
        v4f vx, vg, vd;
        memcpy(&vx, x + i, sizeof vx);
        memcpy(&vg, dy + i, sizeof vg);
        memcpy(&vd, dx + i, sizeof vd);
        v4i keep = vx > 0.0f;
        vd += (v4f)((v4i)vg & keep);
        memcpy(dx + i, &vd, sizeof vd);
    }
#endif
    for (; i < n; i++)
        dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

/* A slice [i0, i0 + n) of an activation backward; slices run in parallel
 * on ctx->pool. */
typedef struct act_job {
    act_kind kind;
    float alpha, beta, lo, hi;
    const float *x, *y, *dy;
    float *dx;
    int64_t n;
} act_job;

#define ACT_SLICE 16384

static void act_slice(void *ctx, int64_t task, int tid) {
    (void)tid;
    const act_job *j = ctx;
    int64_t i0 = task * ACT_SLICE, n = j->n - i0 < ACT_SLICE ? j->n - i0 : ACT_SLICE;
    const float *x = j->x + i0, *y = j->y + i0, *dy = j->dy + i0;
    float *dx = j->dx + i0;
    float alpha = j->alpha, beta = j->beta, lo = j->lo, hi = j->hi;
    act_kind kind = j->kind;
    /* one branch-free loop per kind: the masks multiply instead of
     * branching, which random signs would mispredict half the time */
    switch (kind) {
    case ACT_RELU: relu_backward_f32(dx, x, dy, n); break;
    case ACT_LEAKY:
        for (int64_t i = 0; i < n; i++) {
            float pos = (float)(x[i] > 0.0f);
            dx[i] += dy[i] * (pos + alpha * (1.0f - pos));
        }
        break;
    case ACT_CLIP:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * (float)((x[i] >= lo) & (x[i] <= hi));
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * y[i] * (1.0f - y[i]);
        break;
    case ACT_HSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float t = alpha * x[i] + beta;
            dx[i] += dy[i] * alpha * (float)((t > 0.0f) & (t < 1.0f));
        }
        break;
    case ACT_HSWISH:
        /* y = x * clamp(x/6 + 1/2, 0, 1): slope 0 below -3, 1 above 3 */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], mid = (float)((v > -3.0f) & (v < 3.0f));
            dx[i] += dy[i] * (mid * (2.0f * v + 3.0f) / 6.0f + (float)(v >= 3.0f));
        }
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * (1.0f - y[i] * y[i]);
        break;
    }
}

static qf_status act_backward(const qf_grad_args *a, act_kind kind, qf_err *err) {
    act_job j;
    memset(&j, 0, sizeof j);
    j.dy = a->d_out[0].data;
    j.dx = a->d_in[0].data;
    if (!j.dy || !j.dx) return QF_OK;
    if (a->in[0].dtype != QF_DT_F32) {
        char d[200];
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs a float input",
                       qf_node_desc(a->node, d, sizeof d));
    }
    j.kind = kind;
    j.x = a->in[0].data;
    j.y = a->out[0].data;
    j.n = qf_tensor_numel(&a->in[0]);
    switch (kind) {
    case ACT_LEAKY: j.alpha = qf_node_attr_float(a->node, "alpha", 0.01f); break;
    case ACT_HSIGMOID:
        j.alpha = qf_node_attr_float(a->node, "alpha", 0.2f);
        j.beta = qf_node_attr_float(a->node, "beta", 0.5f);
        break;
    case ACT_CLIP: clip_bounds(a, &j.lo, &j.hi); break;
    default: break;
    }
    qf_parallel_for(a->ctx ? a->ctx->pool : NULL, (j.n + ACT_SLICE - 1) / ACT_SLICE, act_slice, &j);
    return QF_OK;
}

#define ACT_DEF(id, kind)                                                                          \
    static qf_status id##_backward(const qf_grad_args *a, qf_err *err) {                           \
        return act_backward(a, kind, err);                                                         \
    }                                                                                              \
    const qf_grad_def qf_graddef_##id = {.diff_inputs = 1, .backward = id##_backward};

ACT_DEF(relu, ACT_RELU)
ACT_DEF(leaky_relu, ACT_LEAKY)
ACT_DEF(clip, ACT_CLIP)
ACT_DEF(sigmoid, ACT_SIGMOID)
ACT_DEF(hard_sigmoid, ACT_HSIGMOID)
ACT_DEF(hard_swish, ACT_HSWISH)
ACT_DEF(tanh, ACT_TANH)
