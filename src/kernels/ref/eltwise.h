/* eltwise.h - internals shared by the reference elementwise kernels
 * (binary arithmetic, Pow, variadic Sum/Mean/Max/Min, PRelu, unary math,
 * Cast): the typed inner loops of binary ops, the broadcasting driver, and
 * defined (never undefined-behaviour) numeric conversions. */
#ifndef QF_KERNELS_REF_ELTWISE_H
#define QF_KERNELS_REF_ELTWISE_H

#include <math.h>

#include "ir/ops.h"
#include "kernels/ref/broadcast.h"

/* Binary operations with a typed inner loop per dtype. */
typedef enum qf_ref_binop {
    QF_BIN_ADD,
    QF_BIN_SUB,
    QF_BIN_MUL,
    QF_BIN_DIV,
    QF_BIN_MAX,
    QF_BIN_MIN,
    QF_BIN_PRELU, /* a < 0 ? a * b : a */
    QF_BIN_COUNT
} qf_ref_binop;

/* One run: o[i] = a[i*sa] OP b[i*sb] for i < n, sa/sb in {0, 1}. o may
 * alias a or b element for element. */
typedef void (*qf_ref_bin_fn)(const void *a, const void *b, void *o, int64_t n, int sa, int sb);

/* Inner loop of op for dtype dt, or NULL when the pair is not supported.
 * F16 returns the F32 loop: qf_ref_binary_apply converts around it. */
qf_ref_bin_fn qf_ref_binary_fn(qf_ref_binop op, qf_dtype dt);

/* out = a OP b with broadcasting; a, b and out share dtype (checked by the
 * caller's infer). fn comes from qf_ref_binary_fn(op, out->dtype). */
void qf_ref_binary_apply(qf_ref_bin_fn fn, const qf_tensor *a, const qf_tensor *b, qf_tensor *out);

/* True for the dtypes binary arithmetic supports (numeric, incl. F16). */
bool qf_ref_is_numeric(qf_dtype dt);
bool qf_ref_is_float(qf_dtype dt); /* F16, F32, F64 */

/* Float -> integer conversions, truncating toward zero. C leaves NaN and
 * out-of-range values undefined; here NaN gives 0 and out-of-range values
 * saturate to the type's limits (what most hardware-saturating paths do and
 * what keeps UBSan quiet). */
static inline int64_t qf_ref_f64_to_i64_sat(double v, int64_t lo, int64_t hi) {
    if (v != v) return 0;
    /* (double)lo and (double)hi are exact for all types except the 64-bit
     * limits, where hi rounds up to 2^63: compare with >= so 2^63 itself
     * saturates too. */
    if (v <= (double)lo) return lo;
    if (v >= (double)hi) return hi;
    return (int64_t)v;
}
static inline uint64_t qf_ref_f64_to_u64_sat(double v, uint64_t hi) {
    if (v != v || v <= 0.0) return 0;
    if (v >= (double)hi) return hi;
    return (uint64_t)v;
}

/* ---- unary ------------------------------------------------------------ */
/* y[i] = f(x[i]) for i < n; params is the op's parsed attributes (may be
 * NULL). y may alias x. */
typedef void (*qf_ref_un_fn)(const void *x, void *y, int64_t n, const void *params);

/* Apply fn to every element of x into y (same shape). For F16 tensors fn is
 * the F32 loop and values are converted around it in stack chunks. */
void qf_ref_unary_apply(qf_ref_un_fn fn, const qf_tensor *x, qf_tensor *y, const void *params);
/* The same over ctx's thread pool (ctx may be NULL): large non-F16 tensors
 * are cut into contiguous ranges, one task each (same values: fn works
 * element by element). */
void qf_ref_unary_apply_ctx(const qf_exec_ctx *ctx, qf_ref_un_fn fn, const qf_tensor *x,
                            qf_tensor *y, const void *params);

/* infer for a shape- and type-preserving op whose loops are row[dtype]
 * (NULL entries: unsupported dtypes, reported naming the node). */
qf_status qf_ref_infer_unary(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, const qf_ref_un_fn *row, qf_err *err);
/* row[dt] for run, or NULL after filling err (QF_ERR_UNSUPPORTED, naming n). */
qf_ref_un_fn qf_ref_unary_fn(const qf_node *n, const qf_ref_un_fn *row, qf_dtype dt, qf_err *err);

#endif /* QF_KERNELS_REF_ELTWISE_H */
