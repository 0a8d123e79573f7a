/* spatial.h - attributes and output geometry shared by the windowed ops
 * (Conv, ConvTranspose, MaxPool, AveragePool): kernel_shape, strides,
 * dilations, pads, auto_pad, ceil_mode.
 *
 * Parse stores the attributes as written (counts, not yet checked against
 * the input rank, which parse does not know); qf_spatial_resolve checks them
 * against the real rank and computes per-axis geometry. Kernels work on a
 * geometry normalised to 3 spatial axes (1-D and 2-D ops get leading axes of
 * size 1), so one loop nest serves 1-D, 2-D and 3-D.
 */
#ifndef QF_KERNELS_REF_SPATIAL_H
#define QF_KERNELS_REF_SPATIAL_H

#include "ir/ops.h"

#define QF_SPATIAL_MAX 3 /* spatial axes handled by the kernels */

typedef enum qf_auto_pad {
    QF_AUTO_PAD_NOTSET = 0,
    QF_AUTO_PAD_SAME_UPPER,
    QF_AUTO_PAD_SAME_LOWER,
    QF_AUTO_PAD_VALID
} qf_auto_pad;

typedef struct qf_spatial_attrs {
    qf_auto_pad auto_pad;
    int n_kernel, n_strides, n_dilations, n_pads; /* 0 = attribute absent */
    int64_t kernel[QF_SPATIAL_MAX];
    int64_t strides[QF_SPATIAL_MAX];
    int64_t dilations[QF_SPATIAL_MAX];
    int64_t pads[2 * QF_SPATIAL_MAX];
    bool ceil_mode;
} qf_spatial_attrs;

/* Per-axis geometry, normalised to QF_SPATIAL_MAX axes (index 0 = outermost;
 * the real axes are the last `nsp`, unused leading axes have size 1,
 * kernel 1, stride 1, dilation 1, no padding). */
typedef struct qf_spatial_geom {
    int nsp; /* real number of spatial axes (1..QF_SPATIAL_MAX) */
    int64_t in[QF_SPATIAL_MAX], out[QF_SPATIAL_MAX];
    int64_t kernel[QF_SPATIAL_MAX], stride[QF_SPATIAL_MAX], dil[QF_SPATIAL_MAX];
    int64_t pad_b[QF_SPATIAL_MAX], pad_e[QF_SPATIAL_MAX];
} qf_spatial_geom;

/* Read and validate kernel_shape/strides/dilations/pads/auto_pad (and
 * ceil_mode when `with_ceil`). Rejects non-positive strides, dilations or
 * kernel sizes, negative pads, odd pads counts, more than QF_SPATIAL_MAX axes
 * and an unknown auto_pad. need_kernel: kernel_shape is required (pools). */
qf_status qf_spatial_parse(const qf_node *n, qf_spatial_attrs *a, bool need_kernel, bool with_ceil,
                           qf_err *err);

/* Forward (Conv/pool) geometry for an input of `nsp` spatial axes with
 * sizes in_dims. kernel_dims: kernel sizes from W (Conv), or NULL to use the
 * kernel_shape attribute. Fails with QF_ERR_SHAPE naming the node when the
 * attributes do not fit the rank or the output would be empty. */
qf_status qf_spatial_resolve(const qf_node *n, const qf_spatial_attrs *a, int nsp,
                             const int64_t *in_dims, const int64_t *kernel_dims, qf_spatial_geom *g,
                             qf_err *err);

/* Product of the normalised axes of an array such as g->out. */
static inline int64_t qf_spatial_prod(const int64_t *v) {
    int64_t p = 1;
    for (int i = 0; i < QF_SPATIAL_MAX; i++)
        p *= v[i];
    return p;
}

/* Valid range [lo, hi) of positions o in [0, n_out) for which i0 + o*s lies
 * in [0, size); positions outside it fall into padding. s > 0. */
static inline void qf_spatial_valid_range(int64_t i0, int64_t s, int64_t size, int64_t n_out,
                                          int64_t *lo, int64_t *hi) {
    int64_t l = i0 < 0 ? (-i0 + s - 1) / s : 0;
    int64_t h = size - 1 - i0 >= 0 ? (size - 1 - i0) / s + 1 : 0;
    if (h > n_out) h = n_out;
    if (l > n_out) l = n_out;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* Common dtype guard: every float reference kernel here takes fp32 only. */
qf_status qf_require_f32(const qf_node *n, const qf_tensor *t, const char *what, qf_err *err);

/* dst[0, lo) = 0, dst[lo, hi) = s[0, hi - lo), dst[hi, n) = 0: one row of a
 * zero-padded im2col band (float convolution and its gradients). Rows are
 * short, so inline loops beat memcpy/memset calls; blocks of 8 let -O2
 * vectorise the copy. */
static inline void qf_spatial_gather_row(float *restrict dst, const float *restrict s,
                                         int64_t lo, int64_t hi, int64_t n) {
    for (int64_t p = 0; p < lo; p++)
        dst[p] = 0.0f;
    float *d = dst + lo;
    int64_t len = hi - lo, q = 0;
    for (; q + 8 <= len; q += 8)
        for (int k = 0; k < 8; k++)
            d[q + k] = s[q + k];
    for (; q < len; q++)
        d[q] = s[q];
    for (int64_t p = hi > lo ? hi : lo; p < n; p++)
        dst[p] = 0.0f;
}

#endif /* QF_KERNELS_REF_SPATIAL_H */
