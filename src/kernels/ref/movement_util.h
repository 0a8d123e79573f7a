/* movement_util.h - small helpers shared by the data-movement reference
 * kernels (shape ops, transpose, concat/split, gather, slice, pad, expand,
 * constant). These ops only move bytes, so they work on every dtype with a
 * non-zero element size. Private to src/kernels/ref/. */
#ifndef QF_KERNELS_REF_MOVEMENT_UTIL_H
#define QF_KERNELS_REF_MOVEMENT_UTIL_H

#include <stdio.h>
#include <string.h>

#include "ir/ops.h"

/* Optional input i, or NULL when it is absent or omitted. */
static inline const qf_tensor *mv_opt_in(const qf_tensor *in, int n_in, int i) {
    if (i >= n_in || in[i].dtype == QF_DT_UNDEF) return NULL;
    return &in[i];
}

/* Bytes of a tensor; false on overflow or an unknown element size. */
static inline bool mv_nbytes(const qf_tensor *t, size_t *out) {
    int64_t n = qf_tensor_numel(t);
    size_t es = qf_dtype_size(t->dtype);
    if (n < 0 || es == 0) return false;
    return qf_mul_size((size_t)n, es, out);
}

/* a * b for non-negative dims; false on overflow or a negative operand. */
static inline bool mv_mul_i64(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0 || (b != 0 && a > INT64_MAX / b)) return false;
    *out = a * b;
    return true;
}

/* memcpy that tolerates n == 0 with NULL pointers (empty tensors). */
static inline void mv_copy(void *dst, const void *src, size_t n) {
    if (n && dst != src) memmove(dst, src, n);
}

/* "[2,3,4]" into buf. */
static inline const char *mv_fmt_dims(char *buf, size_t len, int rank, const int64_t *dims) {
    size_t used = 0;
    if (len < 3) return "";
    buf[used++] = '[';
    buf[used] = 0;
    for (int i = 0; i < rank && used + 2 < len; i++) {
        int w = snprintf(buf + used, len - used - 1, "%s%lld", i ? "," : "", (long long)dims[i]);
        if (w < 0) break;
        used += (size_t)w < len - used - 1 ? (size_t)w : len - used - 2;
    }
    buf[used++] = ']';
    buf[used] = 0;
    return buf;
}

/* The data input must have a dtype whose bytes can be moved. */
static inline qf_status mv_check_data(const qf_node *n, const qf_tensor *in, int n_in,
                                      qf_err *err) {
    char d[200];
    if (n_in < 1 || in[0].dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_FORMAT, "%s: missing data input", qf_node_desc(n, d, sizeof d));
    if (qf_dtype_size(in[0].dtype) == 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: dtype %s not supported",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(in[0].dtype));
    if (in[0].rank < 0 || in[0].rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_SHAPE, "%s: bad input rank %d", qf_node_desc(n, d, sizeof d),
                       in[0].rank);
    return QF_OK;
}

/* A shape-like input whose contents infer needs (value_inputs bit): it must
 * be present with data, integer typed and at most 1-D. *count gets its
 * element count. */
static inline qf_status mv_need_ints(const qf_node *n, const qf_tensor *t, const char *what,
                                     int64_t *count, qf_err *err) {
    char d[200];
    if (!t->data) {
        /* an empty tensor may legitimately have no buffer */
        if (qf_tensor_numel(t) == 0) {
            *count = 0;
            return QF_OK;
        }
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: shape input not constant",
                       qf_node_desc(n, d, sizeof d));
    }
    if (t->dtype != QF_DT_I64 && t->dtype != QF_DT_I32)
        return qf_errf(err, QF_ERR_FORMAT, "%s: input '%s' must be int64 or int32, not %s",
                       qf_node_desc(n, d, sizeof d), what, qf_dtype_name(t->dtype));
    if (t->rank > 1)
        return qf_errf(err, QF_ERR_SHAPE, "%s: input '%s' must be 1-D, has rank %d",
                       qf_node_desc(n, d, sizeof d), what, t->rank);
    *count = qf_tensor_numel(t);
    if (*count < 0)
        return qf_errf(err, QF_ERR_SHAPE, "%s: input '%s' has a bad shape",
                       qf_node_desc(n, d, sizeof d), what);
    return QF_OK;
}

/* Output size guard: numel must fit int64 and bytes size_t. */
static inline qf_status mv_check_out(const qf_node *n, const qf_tensor *out, qf_err *err) {
    size_t bytes;
    if (!mv_nbytes(out, &bytes)) {
        char d[200], s[160];
        return qf_errf(err, QF_ERR_SHAPE, "%s: output shape %s is too large or invalid",
                       qf_node_desc(n, d, sizeof d),
                       mv_fmt_dims(s, sizeof s, out->rank, out->dims));
    }
    return QF_OK;
}

/* Clamp a double into [lo, hi] (NaN -> 0) so the integer casts below are
 * defined for any attribute value. */
static inline double mv_clamp_f64(double v, double lo, double hi) {
    if (v != v) return 0.0;
    return v < lo ? lo : v > hi ? hi : v;
}

/* Store `v` as one element of dtype dt at dst (Pad's float `value`
 * attribute, Dropout's ones mask for opset < 10). */
static inline void mv_store_f64(qf_dtype dt, double v, void *dst) {
    union {
        float f32;
        double f64;
        uint16_t u16;
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
    } x;
    size_t es = qf_dtype_size(dt);
    switch (dt) {
    case QF_DT_F32: x.f32 = (float)v; break;
    case QF_DT_F64: x.f64 = v; break;
    case QF_DT_F16: x.u16 = qf_f32_to_f16((float)v); break;
    case QF_DT_I8: x.i8 = (int8_t)mv_clamp_f64(v, -128.0, 127.0); break;
    case QF_DT_U8: x.u8 = (uint8_t)mv_clamp_f64(v, 0.0, 255.0); break;
    case QF_DT_BOOL: x.u8 = v != 0.0; break;
    case QF_DT_I16: x.i16 = (int16_t)mv_clamp_f64(v, -32768.0, 32767.0); break;
    case QF_DT_U16: x.u16 = (uint16_t)mv_clamp_f64(v, 0.0, 65535.0); break;
    case QF_DT_I32: x.i32 = (int32_t)mv_clamp_f64(v, -2147483648.0, 2147483647.0); break;
    case QF_DT_U32: x.u32 = (uint32_t)mv_clamp_f64(v, 0.0, 4294967295.0); break;
    /* 2^63 and 2^64 are not representable as int: stay just below them */
    case QF_DT_I64:
        x.i64 = (int64_t)mv_clamp_f64(v, -9223372036854775808.0, 9223372036854774784.0);
        break;
    case QF_DT_U64: x.u64 = (uint64_t)mv_clamp_f64(v, 0.0, 18446744073709549568.0); break;
    default: return;
    }
    memcpy(dst, &x, es);
}

/* Fill `count` elements of size es at dst with the element at val. */
static inline void mv_fill(void *dst, const void *val, int64_t count, size_t es) {
    unsigned char *p = dst;
    for (int64_t i = 0; i < count; i++, p += es)
        memcpy(p, val, es);
}

/* Params missing means parse was never run on this node: a bug upstream. */
static inline qf_status mv_no_params(const qf_node *n, qf_err *err) {
    char d[200];
    return qf_errf(err, QF_ERR_INTERNAL, "%s: attributes not parsed", qf_node_desc(n, d, sizeof d));
}

#endif /* QF_KERNELS_REF_MOVEMENT_UTIL_H */
