/* grad_norm.c - BatchNormalization (training-mode forward with batch
 * statistics and running-statistics update; backward in both modes) and
 * LayerNormalization backward.
 *
 * Running statistics follow the ONNX definition:
 *   running_mean = running_mean * momentum + batch_mean * (1 - momentum)
 *   running_var  = running_var  * momentum + batch_var  * (1 - momentum)
 * where batch_var is the biased (population) variance, as in ONNX's
 * reference implementation; momentum defaults to 0.9. (PyTorch's running
 * variance uses the unbiased estimate: the two differ by M/(M-1).)
 * Sums are accumulated in double.
 */
#include <math.h>
#include <string.h>

#include "base/threadpool.h"
#include "train/grad.h"

/* sum (p - m)^2 */
static float sqdev_f32(const float *p, int64_t n, float m) {
    float a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += (p[i + k] - m) * (p[i + k] - m);
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++)
        s += (p[i] - m) * (p[i] - m);
    return s;
}

/* sum g * (p - m) */
static float dotdev_f32(const float *g, const float *p, int64_t n, float m) {
    float a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += g[i + k] * (p[i + k] - m);
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++)
        s += g[i] * (p[i] - m);
    return s;
}

/* q = p * a + b. Blocks of 8 with restrict pointers let GCC's SLP
 * vectoriser use SIMD at -O2 (see qf_grad_add). */
static void affine_f32(float *restrict q, const float *restrict p, int64_t n, float a, float b) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            q[i + k] = p[i + k] * a + b;
    for (; i < n; i++)
        q[i] = p[i] * a + b;
}

/* q += k * (g - cm - (p - mean) * inv * cx): BN's input gradient. */
static void bn_dx_f32(float *restrict q, const float *restrict g, const float *restrict p,
                      int64_t n, float mean, float inv, float k, float cm, float cx) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int t = 0; t < 8; t++)
            q[i + t] += k * (g[i + t] - cm - (p[i + t] - mean) * inv * cx);
    for (; i < n; i++)
        q[i] += k * (g[i] - cm - (p[i] - mean) * inv * cx);
}

/* ---- BatchNormalization ------------------------------------------------- */

typedef struct bn_shape {
    int64_t n, c, hw;
} bn_shape;

static qf_status bn_check(const qf_node *n, const qf_tensor *in, int n_in, bn_shape *sh,
                          qf_err *err) {
    char d[200];
    if (n_in < 5 || in[0].rank < 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: needs 5 inputs and X of rank >= 2",
                       qf_node_desc(n, d, sizeof d));
    for (int i = 0; i < 5; i++)
        if (in[i].dtype != QF_DT_F32 || !in[i].data)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: input %d must be float",
                           qf_node_desc(n, d, sizeof d), i);
    sh->n = in[0].dims[0];
    sh->c = in[0].dims[1];
    sh->hw = 1;
    for (int k = 2; k < in[0].rank; k++)
        sh->hw *= in[0].dims[k];
    for (int i = 1; i < 5; i++)
        if (qf_tensor_numel(&in[i]) != sh->c)
            return qf_errf(err, QF_ERR_SHAPE, "%s: input %d must have %lld elements",
                           qf_node_desc(n, d, sizeof d), i, (long long)sh->c);
    return QF_OK;
}

/* saved: batch mean then 1/sqrt(batch_var + eps), C floats each */
static size_t bn_state(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                       int n_out) {
    if (n_in < 1 || in[0].rank < 2 || in[0].dims[1] < 0) return 0;
    return 2 * sizeof(float) * (size_t)in[0].dims[1];
}

/* One channel's work, shared by the forward and backward tasks below;
 * channels are independent, so they run in parallel on ctx->pool. */
typedef struct bn_job {
    bn_shape sh;
    bool training;
    float eps, mom;
    const float *x, *scale, *bias, *dy;
    float *rmean, *rvar, *y, *smean, *sinv, *dx, *dscale, *dbias;
} bn_job;

static void bn_train_channel(void *ctx, int64_t c, int tid) {
    (void)tid;
    const bn_job *j = ctx;
    const bn_shape sh = j->sh;
    int64_t m = sh.n * sh.hw;
    double sum = 0.0, sq = 0.0;
    /* float sums within a plane, double across planes */
    for (int64_t b = 0; b < sh.n; b++)
        sum += qf_grad_sum(j->x + (b * sh.c + c) * sh.hw, sh.hw);
    double mean = sum / (double)m;
    float fm = (float)mean;
    for (int64_t b = 0; b < sh.n; b++)
        sq += sqdev_f32(j->x + (b * sh.c + c) * sh.hw, sh.hw, fm);
    double var = sq / (double)m;
    float inv = (float)(1.0 / sqrt(var + (double)j->eps));
    j->smean[c] = fm;
    j->sinv[c] = inv;
    float a = j->scale[c] * inv, bb = j->bias[c] - fm * a;
    for (int64_t b = 0; b < sh.n; b++)
        affine_f32(j->y + (b * sh.c + c) * sh.hw, j->x + (b * sh.c + c) * sh.hw, sh.hw, a, bb);
    j->rmean[c] = j->rmean[c] * j->mom + fm * (1.0f - j->mom);
    j->rvar[c] = j->rvar[c] * j->mom + (float)var * (1.0f - j->mom);
}

static qf_status bn_train(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                          qf_tensor *out, int n_out, void *scratch, void *saved, uint64_t seed,
                          qf_err *err) {
    bn_job j;
    memset(&j, 0, sizeof j);
    qf_status s = bn_check(n, in, n_in, &j.sh, err);
    if (s) return s;
    j.eps = qf_node_attr_float(n, "epsilon", 1e-5f);
    j.mom = qf_node_attr_float(n, "momentum", 0.9f);
    j.x = in[0].data;
    j.scale = in[1].data;
    j.bias = in[2].data;
    j.rmean = in[3].data;
    j.rvar = in[4].data;
    j.y = out[0].data;
    j.smean = saved;
    j.sinv = j.smean + j.sh.c;
    if (j.sh.n * j.sh.hw == 0) return QF_OK;
    qf_parallel_for(ctx ? ctx->pool : NULL, j.sh.c, bn_train_channel, &j);
    /* optional running_mean / running_var outputs: the updated statistics */
    for (int k = 1; k < n_out && k < 3; k++)
        if (out[k].data) memcpy(out[k].data, in[k + 2].data, sizeof(float) * (size_t)j.sh.c);
    return QF_OK;
}

static void bn_backward_channel(void *ctx, int64_t c, int tid) {
    (void)tid;
    const bn_job *j = ctx;
    const bn_shape sh = j->sh;
    int64_t m = sh.n * sh.hw;
    float mean, inv;
    if (j->training) {
        mean = j->smean[c];
        inv = j->sinv[c];
    } else {
        mean = j->rmean[c];
        inv = (float)(1.0 / sqrt((double)j->rvar[c] + (double)j->eps));
    }
    double sdy = 0.0, sdyx = 0.0;
    for (int64_t b = 0; b < sh.n; b++) {
        const float *p = j->x + (b * sh.c + c) * sh.hw, *g = j->dy + (b * sh.c + c) * sh.hw;
        sdy += qf_grad_sum(g, sh.hw);
        sdyx += (double)dotdev_f32(g, p, sh.hw, mean) * inv;
    }
    if (j->dscale) j->dscale[c] += (float)sdyx;
    if (j->dbias) j->dbias[c] += (float)sdy;
    if (!j->dx) return;
    float k = j->scale[c] * inv;
    /* training: the batch statistics depend on x too, which removes the
     * gradient's mean and its projection on xhat */
    float cm = j->training ? (float)(sdy / (double)m) : 0.0f;
    float cx = j->training ? (float)(sdyx / (double)m) : 0.0f;
    for (int64_t b = 0; b < sh.n; b++) {
        const float *p = j->x + (b * sh.c + c) * sh.hw, *g = j->dy + (b * sh.c + c) * sh.hw;
        bn_dx_f32(j->dx + (b * sh.c + c) * sh.hw, g, p, sh.hw, mean, inv, k, cm, cx);
    }
}

static qf_status bn_backward(const qf_grad_args *a, qf_err *err) {
    bn_job j;
    memset(&j, 0, sizeof j);
    j.dy = a->d_out[0].data;
    j.dx = a->d_in[0].data;
    j.dscale = a->d_in[1].data;
    j.dbias = a->d_in[2].data;
    if (!j.dy || (!j.dx && !j.dscale && !j.dbias)) return QF_OK;
    qf_status s = bn_check(a->node, a->in, a->n_in, &j.sh, err);
    if (s) return s;
    j.training = a->training;
    j.eps = qf_node_attr_float(a->node, "epsilon", 1e-5f);
    j.x = a->in[0].data;
    j.scale = a->in[1].data;
    j.rmean = a->in[3].data;
    j.rvar = a->in[4].data;
    j.smean = a->saved;
    j.sinv = j.smean ? j.smean + j.sh.c : NULL;
    if (j.sh.n * j.sh.hw == 0) return QF_OK;
    if (j.training && !j.smean) {
        char d[200];
        return qf_errf(err, QF_ERR_INTERNAL, "%s: no batch statistics saved",
                       qf_node_desc(a->node, d, sizeof d));
    }
    qf_parallel_for(a->ctx ? a->ctx->pool : NULL, j.sh.c, bn_backward_channel, &j);
    return QF_OK;
}

const qf_grad_def qf_graddef_batch_norm = {
    .diff_inputs = 7, .backward = bn_backward, .train_forward = bn_train, .state_bytes = bn_state};

/* ---- LayerNormalization ------------------------------------------------- */

/* Offset into t (broadcast, trailing-aligned, onto dims[0..r)) of the k-th
 * element of the normalised block. */
static int64_t ln_bcast_offset(const qf_tensor *t, const int64_t *dims, int r, int64_t k) {
    int64_t off = 0, stride = 1;
    for (int d = r - 1; d >= 0; d--) {
        int64_t i = k % dims[d];
        k /= dims[d];
        int td = d - (r - t->rank);
        if (td < 0) continue;
        if (t->dims[td] != 1) off += i * stride;
        stride *= t->dims[td];
    }
    return off;
}

static qf_status ln_backward(const qf_grad_args *a, qf_err *err) {
    const float *dy = a->d_out[0].data;
    float *dx = a->d_in[0].data, *dscale = a->d_in[1].data;
    float *dbias = a->n_in > 2 ? a->d_in[2].data : NULL;
    if (!dy || (!dx && !dscale && !dbias)) return QF_OK;
    const qf_tensor *x = &a->in[0], *sc = &a->in[1];
    char d[200];
    if (x->dtype != QF_DT_F32 || sc->dtype != QF_DT_F32)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: backward needs float X and Scale",
                       qf_node_desc(a->node, d, sizeof d));
    int axis = 0;
    qf_status s = qf_norm_axis(a->node, qf_node_attr_int(a->node, "axis", -1), x->rank, &axis, err);
    if (s) return s;
    float eps = qf_node_attr_float(a->node, "epsilon", 1e-5f);
    int64_t rows = 1, len = 1;
    for (int k = 0; k < axis; k++)
        rows *= x->dims[k];
    for (int k = axis; k < x->rank; k++)
        len *= x->dims[k];
    const int64_t *nd = x->dims + axis;
    int nr = x->rank - axis;
    const float *xv = x->data, *scale = sc->data;
    if (len == 0) return QF_OK;
    for (int64_t r = 0; r < rows; r++) {
        const float *p = xv + r * len, *g = dy + r * len;
        double sum = 0.0, sq = 0.0;
        for (int64_t k = 0; k < len; k++)
            sum += p[k];
        double mean = sum / (double)len;
        for (int64_t k = 0; k < len; k++)
            sq += (p[k] - mean) * (p[k] - mean);
        double inv = 1.0 / sqrt(sq / (double)len + (double)eps);
        double sg = 0.0, sgx = 0.0;
        for (int64_t k = 0; k < len; k++) {
            double xh = (p[k] - mean) * inv;
            double gk = (double)g[k] * scale[ln_bcast_offset(sc, nd, nr, k)];
            sg += gk;
            sgx += gk * xh;
            if (dscale) dscale[ln_bcast_offset(sc, nd, nr, k)] += (float)(g[k] * xh);
            if (dbias) dbias[ln_bcast_offset(&a->in[2], nd, nr, k)] += g[k];
        }
        if (!dx) continue;
        float *q = dx + r * len;
        for (int64_t k = 0; k < len; k++) {
            double xh = (p[k] - mean) * inv;
            double gk = (double)g[k] * scale[ln_bcast_offset(sc, nd, nr, k)];
            q[k] += (float)(inv * (gk - sg / (double)len - xh * sgx / (double)len));
        }
    }
    return QF_OK;
}

const qf_grad_def qf_graddef_layer_norm = {.diff_inputs = 7, .backward = ln_backward};
