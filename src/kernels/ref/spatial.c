/* spatial.c - parsing and output geometry of the windowed ops' attributes
 * (see spatial.h). Formulas follow the ONNX Conv/MaxPool specification. */
#include <string.h>

#include "kernels/ref/spatial.h"

static qf_status read_ints(const qf_node *n, const char *name, int64_t *dst, int max, int *count,
                           bool positive, qf_err *err) {
    const int64_t *v;
    int c = qf_node_attr_ints(n, name, &v);
    char d[200];
    if (c > max)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s has %d values (at most %d supported)",
                       qf_node_desc(n, d, sizeof d), name, c, max);
    for (int i = 0; i < c; i++) {
        /* the upper bound keeps every size computed from these in int64 */
        if ((positive ? v[i] <= 0 : v[i] < 0) || v[i] > INT32_MAX)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %s[%d] = %lld must be %s",
                           qf_node_desc(n, d, sizeof d), name, i, (long long)v[i],
                           positive ? "positive (< 2^31)" : "non-negative (< 2^31)");
        dst[i] = v[i];
    }
    *count = c;
    return QF_OK;
}

qf_status qf_spatial_parse(const qf_node *n, qf_spatial_attrs *a, bool need_kernel, bool with_ceil,
                           qf_err *err) {
    char d[200];
    memset(a, 0, sizeof *a);
    qf_status s;
    if ((s = read_ints(n, "kernel_shape", a->kernel, QF_SPATIAL_MAX, &a->n_kernel, true, err)) ||
        (s = read_ints(n, "strides", a->strides, QF_SPATIAL_MAX, &a->n_strides, true, err)) ||
        (s = read_ints(n, "dilations", a->dilations, QF_SPATIAL_MAX, &a->n_dilations, true, err)) ||
        (s = read_ints(n, "pads", a->pads, 2 * QF_SPATIAL_MAX, &a->n_pads, false, err)))
        return s;
    if (a->n_pads % 2)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: pads has an odd count (%d)",
                       qf_node_desc(n, d, sizeof d), a->n_pads);
    if (need_kernel && a->n_kernel == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: kernel_shape is required",
                       qf_node_desc(n, d, sizeof d));
    const char *ap = qf_node_attr_str(n, "auto_pad", "NOTSET");
    if (!*ap || strcmp(ap, "NOTSET") == 0)
        a->auto_pad = QF_AUTO_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        a->auto_pad = QF_AUTO_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        a->auto_pad = QF_AUTO_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        a->auto_pad = QF_AUTO_PAD_VALID;
    else
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: unknown auto_pad '%s'",
                       qf_node_desc(n, d, sizeof d), ap);
    if (with_ceil) {
        int64_t c = qf_node_attr_int(n, "ceil_mode", 0);
        if (c != 0 && c != 1)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: ceil_mode must be 0 or 1",
                           qf_node_desc(n, d, sizeof d));
        a->ceil_mode = c == 1;
    }
    return QF_OK;
}

qf_status qf_spatial_resolve(const qf_node *n, const qf_spatial_attrs *a, int nsp,
                             const int64_t *in_dims, const int64_t *kernel_dims, qf_spatial_geom *g,
                             qf_err *err) {
    char d[200];
    if (nsp < 1 || nsp > QF_SPATIAL_MAX)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %d spatial axes (1..%d supported)",
                       qf_node_desc(n, d, sizeof d), nsp, QF_SPATIAL_MAX);
    if ((a->n_kernel && a->n_kernel != nsp) || (a->n_strides && a->n_strides != nsp) ||
        (a->n_dilations && a->n_dilations != nsp) || (a->n_pads && a->n_pads != 2 * nsp))
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s: attribute lengths (kernel_shape %d, strides %d, dilations %d, "
                       "pads %d) do not fit %d spatial axes",
                       qf_node_desc(n, d, sizeof d), a->n_kernel, a->n_strides, a->n_dilations,
                       a->n_pads, nsp);
    if (!kernel_dims && a->n_kernel == 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: kernel_shape is required",
                       qf_node_desc(n, d, sizeof d));
    g->nsp = nsp;
    int off = QF_SPATIAL_MAX - nsp;
    for (int ax = 0; ax < QF_SPATIAL_MAX; ax++) {
        g->in[ax] = g->out[ax] = g->kernel[ax] = g->stride[ax] = g->dil[ax] = 1;
        g->pad_b[ax] = g->pad_e[ax] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int ax = off + i;
        int64_t in = in_dims[i];
        int64_t k = kernel_dims ? kernel_dims[i] : a->kernel[i];
        if (kernel_dims && a->n_kernel && a->kernel[i] != k)
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: kernel_shape[%d] = %lld but the weights have %lld",
                           qf_node_desc(n, d, sizeof d), i, (long long)a->kernel[i], (long long)k);
        if (k <= 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: kernel size %lld on axis %d",
                           qf_node_desc(n, d, sizeof d), (long long)k, i);
        int64_t s = a->n_strides ? a->strides[i] : 1;
        int64_t dl = a->n_dilations ? a->dilations[i] : 1;
        int64_t ek = (k - 1) * dl + 1; /* extent of the dilated kernel */
        int64_t pb = 0, pe = 0, out;
        switch (a->auto_pad) {
        case QF_AUTO_PAD_SAME_UPPER:
        case QF_AUTO_PAD_SAME_LOWER: {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ek - in;
            if (total < 0) total = 0;
            pb = a->auto_pad == QF_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
            break;
        }
        case QF_AUTO_PAD_VALID: out = in >= ek ? (in - ek) / s + 1 : 0; break;
        default: {
            pb = a->n_pads ? a->pads[i] : 0;
            pe = a->n_pads ? a->pads[i + nsp] : 0;
            int64_t span = in + pb + pe - ek;
            if (span < 0) {
                out = 0;
            } else if (a->ceil_mode) {
                out = (span + s - 1) / s + 1;
                /* a last window that would start inside the end padding is
                 * dropped (PyTorch/ONNX Runtime rule) */
                if ((out - 1) * s >= in + pb) out--;
            } else {
                out = span / s + 1;
            }
            break;
        }
        }
        if (out <= 0 || in <= 0)
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: spatial axis %d of size %lld is too small for kernel extent "
                           "%lld with pads %lld+%lld",
                           qf_node_desc(n, d, sizeof d), i, (long long)in, (long long)ek,
                           (long long)pb, (long long)pe);
        g->in[ax] = in;
        g->out[ax] = out;
        g->kernel[ax] = k;
        g->stride[ax] = s;
        g->dil[ax] = dl;
        g->pad_b[ax] = pb;
        g->pad_e[ax] = pe;
    }
    return QF_OK;
}

qf_status qf_require_f32(const qf_node *n, const qf_tensor *t, const char *what, qf_err *err) {
    if (t->dtype == QF_DT_F32) return QF_OK;
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s has dtype %s; only float32 is supported",
                   qf_node_desc(n, d, sizeof d), what, qf_dtype_name(t->dtype));
}
