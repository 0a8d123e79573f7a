/* status.c - status strings and the error-message helpers. */
#include <stdio.h>
#include <string.h>

#include "base/base.h"

static const char *const status_names[QF_STATUS_COUNT] = {
    [QF_OK] = "ok",
    [QF_ERR_INVALID_ARG] = "invalid argument",
    [QF_ERR_UNSUPPORTED] = "unsupported",
    [QF_ERR_NOMEM] = "out of memory",
    [QF_ERR_IO] = "i/o error",
    [QF_ERR_FORMAT] = "bad format",
    [QF_ERR_SHAPE] = "shape mismatch",
    [QF_ERR_INTERNAL] = "internal error",
};
_Static_assert(QF_ARRAY_LEN(status_names) == QF_STATUS_COUNT, "status table out of sync");

const char *qf_status_str(qf_status s) {
    if ((unsigned)s >= QF_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

qf_status qf_errf(qf_err *err, qf_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = s;
    }
    return s;
}

void qf_err_prefix(qf_err *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[QF_ERR_MSG_LEN];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}

static const struct {
    const char *name;
    size_t size;
} dtype_traits[QF_DT_COUNT] = {
    [QF_DT_UNDEF] = {"undefined", 0}, [QF_DT_F32] = {"float32", 4}, [QF_DT_U8] = {"uint8", 1},
    [QF_DT_I8] = {"int8", 1},         [QF_DT_U16] = {"uint16", 2},  [QF_DT_I16] = {"int16", 2},
    [QF_DT_I32] = {"int32", 4},       [QF_DT_I64] = {"int64", 8},   [QF_DT_STRING] = {"string", 0},
    [QF_DT_BOOL] = {"bool", 1},       [QF_DT_F16] = {"float16", 2}, [QF_DT_F64] = {"float64", 8},
    [QF_DT_U32] = {"uint32", 4},      [QF_DT_U64] = {"uint64", 8},
};
_Static_assert(QF_ARRAY_LEN(dtype_traits) == QF_DT_COUNT, "dtype table out of sync");

size_t qf_dtype_size(qf_dtype t) {
    if ((unsigned)t >= QF_DT_COUNT) return 0;
    return dtype_traits[t].size;
}

const char *qf_dtype_name(qf_dtype t) {
    if ((unsigned)t >= QF_DT_COUNT) return "unknown";
    return dtype_traits[t].name;
}

int64_t qf_tensor_numel(const qf_tensor *t) {
    int64_t n = 1;
    if (t->rank < 0 || t->rank > QF_MAX_DIMS) return -1;
    /* a zero dim makes the tensor empty however large the others are */
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return -1;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] == 0) return 0;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        if (t->dims[i] != 0 && n > INT64_MAX / t->dims[i]) return -1;
        n *= t->dims[i];
    }
    return n;
}
