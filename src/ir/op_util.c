/* op_util.c - small helpers shared by op implementations. */
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"

const char *qf_node_desc(const qf_node *n, char *buf, size_t len) {
    snprintf(buf, len, "%s node '%s'", n->op_type, n->name);
    return buf;
}

qf_status qf_norm_axis(const qf_node *n, int64_t axis, int rank, int *out, qf_err *err) {
    if (axis < -(int64_t)rank || axis >= (int64_t)rank) {
        char d[200];
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %lld out of range for rank %d",
                       qf_node_desc(n, d, sizeof d), (long long)axis, rank);
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return QF_OK;
}

qf_status qf_broadcast_shape(const qf_node *n, const qf_tensor *a, const qf_tensor *b,
                             qf_tensor *out, qf_err *err) {
    int r = QF_MAX(a->rank, b->rank);
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da == db || db == 1)
            out->dims[i] = da;
        else if (da == 1)
            out->dims[i] = db;
        else {
            char d[200];
            return qf_errf(err, QF_ERR_SHAPE, "%s: cannot broadcast dim %d (%lld vs %lld)",
                           qf_node_desc(n, d, sizeof d), i, (long long)da, (long long)db);
        }
    }
    return QF_OK;
}

int64_t qf_tensor_get_i64(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_I64: return ((const int64_t *)t->data)[i];
    case QF_DT_I32: return ((const int32_t *)t->data)[i];
    case QF_DT_I16: return ((const int16_t *)t->data)[i];
    case QF_DT_I8: return ((const int8_t *)t->data)[i];
    case QF_DT_U8: return ((const uint8_t *)t->data)[i];
    case QF_DT_BOOL: return ((const uint8_t *)t->data)[i];
    case QF_DT_U16: return ((const uint16_t *)t->data)[i];
    case QF_DT_U32: return ((const uint32_t *)t->data)[i];
    case QF_DT_U64: return (int64_t)((const uint64_t *)t->data)[i];
    case QF_DT_F32: return (int64_t)((const float *)t->data)[i];
    case QF_DT_F64: return (int64_t)((const double *)t->data)[i];
    default: return 0;
    }
}

double qf_tensor_get_f64(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_F32: return ((const float *)t->data)[i];
    case QF_DT_F64: return ((const double *)t->data)[i];
    case QF_DT_F16: return qf_f16_to_f32(((const uint16_t *)t->data)[i]);
    case QF_DT_U64: return (double)((const uint64_t *)t->data)[i];
    default: return (double)qf_tensor_get_i64(t, i);
    }
}
