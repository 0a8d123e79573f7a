/* qpad_s8.c - integer reference Pad of an int8 tensor (constant, edge,
 * reflect) of any rank up to QF_MAX_DIMS. Padding with the input's zero
 * point pads with real zero; nothing is requantized. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

/* Source index of i along an axis of extent n (n >= 1) or -1 for the
 * constant. Reflect mirrors around the border elements, period 2 * (n - 1). */
static int64_t pad_src(int64_t i, int64_t n, qf_ref_pad_mode mode) {
    if (i >= 0 && i < n) return i;
    if (mode == QF_PAD_CONSTANT) return -1;
    if (mode == QF_PAD_EDGE) return i < 0 ? 0 : n - 1;
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1);
    int64_t m = i % period;
    if (m < 0) m += period;
    return m < n ? m : period - m;
}

qf_status qf_ref_pad_s8(const qf_ref_pad_params *p, const int8_t *in, int8_t *out, qf_err *err) {
    const char *who = "qf_ref_pad_s8";
    if (!p || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    if (p->rank < 1 || p->rank > QF_MAX_DIMS ||
        (p->mode != QF_PAD_CONSTANT && p->mode != QF_PAD_EDGE && p->mode != QF_PAD_REFLECT) ||
        !qr_in_range(p->value, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad rank, mode or value", who);
    int64_t od[QF_MAX_DIMS], in_stride[QF_MAX_DIMS];
    int64_t total = 1, in_total = 1;
    for (int32_t i = p->rank - 1; i >= 0; i--) {
        const int64_t n = p->in_dims[i], b = p->pad_begin[i], e = p->pad_end[i];
        if (n < 0 || b < -n || e < -n || b > INT32_MAX || e > INT32_MAX || n > INT64_MAX / 4)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %d: extent or pads out of range", who,
                           (int)i);
        od[i] = n + b + e;
        if (od[i] < 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %d: negative output extent", who,
                           (int)i);
        if (od[i] > 0 && n == 0 && p->mode != QF_PAD_CONSTANT)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %d: edge/reflect of an empty axis",
                           who, (int)i);
        in_stride[i] = in_total;
        if ((n != 0 && in_total > INT64_MAX / n) || (od[i] != 0 && total > INT64_MAX / od[i]))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes overflow", who);
        in_total *= n;
        total *= od[i];
    }
    if (in_total > 0 && !in) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL input", who);
    int64_t idx[QF_MAX_DIMS] = {0};
    for (int64_t o = 0; o < total; o++) {
        int64_t src = 0;
        bool constant = false;
        for (int32_t d = 0; d < p->rank; d++) {
            int64_t s = pad_src(idx[d] - p->pad_begin[d], p->in_dims[d], p->mode);
            if (s < 0) {
                constant = true;
                break;
            }
            src += s * in_stride[d];
        }
        out[o] = constant ? (int8_t)p->value : in[src];
        for (int32_t d = p->rank - 1; d >= 0; d--) {
            if (++idx[d] < od[d]) break;
            idx[d] = 0;
        }
    }
    return QF_OK;
}
