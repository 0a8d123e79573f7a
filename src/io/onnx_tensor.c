/* onnx_tensor.c - decode ONNX TensorProto messages (initializers, Constant
 * values, tensor attributes, test-data .pb files) into dense tensors.
 *
 * Sources of contents, in the order the ONNX spec gives them precedence:
 * external file (data_location == EXTERNAL), raw_data (little-endian bytes),
 * then the typed repeated field for the dtype. Every size is validated
 * before anything is allocated or copied, so a hostile file cannot make us
 * allocate more than it actually contains.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/onnx_internal.h"

static const char *onnx_type_name(int32_t code) {
    static const char *const names[] = {"UNDEFINED",  "FLOAT",   "UINT8",  "INT8",   "UINT16",
                                        "INT16",      "INT32",   "INT64",  "STRING", "BOOL",
                                        "FLOAT16",    "DOUBLE",  "UINT32", "UINT64", "COMPLEX64",
                                        "COMPLEX128", "BFLOAT16"};
    if (code >= 0 && (size_t)code < QF_ARRAY_LEN(names)) return names[code];
    return "unknown";
}

qf_status qf_onnx_dtype(int32_t code, const qf_onnx_ctx *cx, const char *what, qf_dtype *out,
                        qf_err *err) {
    *out = QF_DT_UNDEF;
    switch (code) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        /* qf_dtype values equal the ONNX codes (qforge.h). */
        *out = (qf_dtype)code;
        return QF_OK;
    case ONNX__TENSOR_PROTO__DATA_TYPE__STRING:
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s has data type %s, which qforge does not support", cx->path, what,
                       onnx_type_name(code));
    case ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED:
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s has no data type", cx->path, what);
    default:
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s has unknown data type %d", cx->path, what,
                       (int)code);
    }
}

static bool host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* raw_data and external files are little-endian by spec. */
static void le_to_host(void *data, size_t numel, size_t es) {
    if (es == 1 || host_is_little_endian()) return;
    uint8_t *p = data;
    for (size_t i = 0; i < numel; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t tmp = p[a];
            p[a] = p[b];
            p[b] = tmp;
        }
}

/* Strict unsigned decimal (the external_data "offset"/"length" strings). */
static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A location may only name a file at or below the model's directory: no
 * absolute paths, no drive letters, no ".." component (either separator,
 * since models travel between systems). */
static bool location_is_safe(const char *loc) {
    if (!*loc || loc[0] == '/' || loc[0] == '\\') return false;
    if (((loc[0] | 0x20) >= 'a' && (loc[0] | 0x20) <= 'z') && loc[1] == ':') return false;
    const char *c = loc;
    while (*c) {
        size_t n = strcspn(c, "/\\");
        if (n == 2 && c[0] == '.' && c[1] == '.') return false;
        c += n;
        if (*c) c++;
    }
    return true;
}

static qf_status read_external(const Onnx__TensorProto *tp, const qf_onnx_ctx *cx, const char *what,
                               size_t nbytes, void **data, qf_err *err) {
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        if (!kv->key || !kv->value) continue;
        if (strcmp(kv->key, "location") == 0)
            location = kv->value;
        else if (strcmp(kv->key, "offset") == 0)
            offset_s = kv->value;
        else if (strcmp(kv->key, "length") == 0)
            length_s = kv->value;
    }
    if (!location || !*location)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s: external data has no location", cx->path, what);
    if (!location_is_safe(location))
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: %s: external data location '%s' is not a relative path inside the "
                       "model's directory",
                       cx->path, what, location);
    uint64_t offset = 0, length = 0;
    if (offset_s && !parse_u64(offset_s, &offset))
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s: bad external data offset '%s'", cx->path, what,
                       offset_s);
    if (length_s && !parse_u64(length_s, &length))
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s: bad external data length '%s'", cx->path, what,
                       length_s);

    const char *dir = cx->base_dir && *cx->base_dir ? cx->base_dir : ".";
    size_t flen;
    if (!qf_add_size(strlen(dir), strlen(location), &flen) || !qf_add_size(flen, 2, &flen))
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s: external data path too long", cx->path, what);
    char *fname = qf_malloc(flen);
    if (!fname) return qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory", cx->path, what);
    snprintf(fname, flen, "%s/%s", dir, location);

    qf_status st = QF_OK;
    void *buf = NULL;
    /* O_NONBLOCK so a FIFO planted under that name cannot hang the open. */
    int fd = open(fname, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        st = qf_errf(err, QF_ERR_IO, "%s: %s: cannot open external data file '%s': %s", cx->path,
                     what, fname, strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: %s: external data '%s' is not a regular file",
                     cx->path, what, fname);
        goto out;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    if (offset > fsize) {
        st = qf_errf(err, QF_ERR_FORMAT,
                     "%s: %s: external data offset %llu is past the end of '%s' (%llu bytes)",
                     cx->path, what, (unsigned long long)offset, fname, (unsigned long long)fsize);
        goto out;
    }
    if (!length_s) length = fsize - offset; /* as onnx's loader: the rest of the file */
    if (length > fsize - offset) {
        st = qf_errf(err, QF_ERR_FORMAT,
                     "%s: %s: external data range offset %llu + length %llu runs past the end "
                     "of '%s' (%llu bytes)",
                     cx->path, what, (unsigned long long)offset, (unsigned long long)length, fname,
                     (unsigned long long)fsize);
        goto out;
    }
    if (length != (uint64_t)nbytes) {
        st = qf_errf(err, QF_ERR_FORMAT,
                     "%s: %s: external data in '%s' has %llu bytes, expected %zu", cx->path, what,
                     fname, (unsigned long long)length, nbytes);
        goto out;
    }
    buf = qf_malloc_aligned(nbytes);
    if (!buf) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory for %zu bytes", cx->path, what,
                     nbytes);
        goto out;
    }
    size_t done = 0;
    while (done < nbytes) {
        ssize_t r = pread(fd, (char *)buf + done, nbytes - done, (off_t)(offset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            st = qf_errf(err, QF_ERR_IO, "%s: %s: reading external data '%s' failed", cx->path,
                         what, fname);
            goto out;
        }
        done += (size_t)r;
    }
    *data = buf;
    buf = NULL;
out:
    if (fd >= 0) close(fd);
    qf_free_aligned(buf);
    qf_free(fname);
    return st;
}

/* Adopt an array allocated by the protobuf-c allocator (qf_malloc_aligned).
 * Blocks are 64-byte aligned by construction; the check keeps us honest. */
static void *adopt(void **field, size_t *count) {
    void *p = *field;
    if (!p || ((uintptr_t)p & 63)) return NULL;
    *field = NULL;
    *count = 0;
    return p;
}

/* The typed repeated field that carries dtype `dt` (ONNX spec: int32_data
 * also carries the 8/16-bit types, bool and float16 bit patterns;
 * uint64_data carries uint32). */
static qf_status decode_typed(Onnx__TensorProto *tp, const qf_onnx_ctx *cx, const char *what,
                              qf_dtype dt, size_t numel, size_t nbytes, void **data, qf_err *err) {
    const char *field;
    size_t count;
    switch (dt) {
    case QF_DT_F32: field = "float_data", count = tp->n_float_data; break;
    case QF_DT_F64: field = "double_data", count = tp->n_double_data; break;
    case QF_DT_I64: field = "int64_data", count = tp->n_int64_data; break;
    case QF_DT_U32:
    case QF_DT_U64: field = "uint64_data", count = tp->n_uint64_data; break;
    default: field = "int32_data", count = tp->n_int32_data; break;
    }
    if (count != numel) {
        if (count == 0)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s: has no data (expected %zu values of %s)",
                           cx->path, what, numel, qf_dtype_name(dt));
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s: %s has %zu values, expected %zu", cx->path,
                       what, field, count, numel);
    }
    void *p = NULL;
    switch (dt) {
    case QF_DT_F32: p = adopt((void **)&tp->float_data, &tp->n_float_data); break;
    case QF_DT_F64: p = adopt((void **)&tp->double_data, &tp->n_double_data); break;
    case QF_DT_I64: p = adopt((void **)&tp->int64_data, &tp->n_int64_data); break;
    case QF_DT_U64: p = adopt((void **)&tp->uint64_data, &tp->n_uint64_data); break;
    case QF_DT_I32: p = adopt((void **)&tp->int32_data, &tp->n_int32_data); break;
    default: break;
    }
    if (p) {
        *data = p;
        return QF_OK;
    }
    p = qf_malloc_aligned(nbytes);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory", cx->path, what);
    /* Narrowing conversions keep the low bits, as onnx's numpy_helper does. */
    for (size_t i = 0; i < numel; i++) {
        switch (dt) {
        case QF_DT_F32: ((float *)p)[i] = tp->float_data[i]; break;
        case QF_DT_F64: ((double *)p)[i] = tp->double_data[i]; break;
        case QF_DT_I64: ((int64_t *)p)[i] = tp->int64_data[i]; break;
        case QF_DT_U64: ((uint64_t *)p)[i] = tp->uint64_data[i]; break;
        case QF_DT_U32: ((uint32_t *)p)[i] = (uint32_t)tp->uint64_data[i]; break;
        case QF_DT_I32: ((int32_t *)p)[i] = tp->int32_data[i]; break;
        case QF_DT_I16: ((int16_t *)p)[i] = (int16_t)tp->int32_data[i]; break;
        case QF_DT_U16:
        case QF_DT_F16: ((uint16_t *)p)[i] = (uint16_t)tp->int32_data[i]; break;
        case QF_DT_I8: ((int8_t *)p)[i] = (int8_t)tp->int32_data[i]; break;
        case QF_DT_U8: ((uint8_t *)p)[i] = (uint8_t)tp->int32_data[i]; break;
        case QF_DT_BOOL: ((uint8_t *)p)[i] = tp->int32_data[i] != 0; break;
        default: break;
        }
    }
    *data = p;
    return QF_OK;
}

qf_status qf_onnx_tensor_from_proto(Onnx__TensorProto *tp, const qf_onnx_ctx *cx, const char *what,
                                    qf_tensor *t, size_t *nbytes, qf_err *err) {
    memset(t, 0, sizeof *t);
    *nbytes = 0;
    qf_dtype dt;
    if (!tp->has_data_type)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s has no data type", cx->path, what);
    qf_status st = qf_onnx_dtype(tp->data_type, cx, what, &dt, err);
    if (st) return st;
    if (tp->n_dims > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s has %zu dimensions; qforge supports at most %d", cx->path, what,
                       tp->n_dims, QF_MAX_DIMS);
    size_t numel = 1, es = qf_dtype_size(dt), bytes;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s: dimension %zu is negative (%lld)", cx->path,
                           what, i, (long long)d);
        if ((uint64_t)d > SIZE_MAX || !qf_mul_size(numel, (size_t)d, &numel) ||
            numel > (size_t)INT64_MAX)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s: element count overflows", cx->path, what);
    }
    if (!qf_mul_size(numel, es, &bytes))
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s: byte size overflows", cx->path, what);
    if (tp->segment)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: segmented tensors are not supported",
                       cx->path, what);

    void *data = NULL;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = read_external(tp, cx, what, bytes, &data, err);
        if (st) return st;
        le_to_host(data, numel, es);
    } else if (tp->has_raw_data || tp->raw_data.len) {
        if (tp->raw_data.len != bytes)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s: raw_data has %zu bytes, expected %zu",
                           cx->path, what, tp->raw_data.len, bytes);
        size_t len = tp->raw_data.len;
        data = adopt((void **)&tp->raw_data.data, &len);
        if (data) {
            tp->raw_data.len = 0;
            tp->has_raw_data = 0;
        } else {
            data = qf_malloc_aligned(bytes);
            if (!data) return qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory", cx->path, what);
            if (bytes) memcpy(data, tp->raw_data.data, bytes);
        }
        le_to_host(data, numel, es);
    } else if (numel == 0) {
        data = qf_malloc_aligned(0);
        if (!data) return qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory", cx->path, what);
    } else {
        st = decode_typed(tp, cx, what, dt, numel, bytes, &data, err);
        if (st) return st;
    }
    t->dtype = dt;
    t->rank = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        t->dims[i] = tp->dims[i];
    t->data = data;
    *nbytes = bytes;
    return QF_OK;
}

static qf_status decode_tensor_in(const void *buf, size_t len, const char *path_for_errors,
                                  const char *base_dir, qf_tensor *t, qf_err *err) {
    const char *path = path_for_errors ? path_for_errors : "tensor";
    memset(t, 0, sizeof *t);
    if (len == 0) return qf_errf(err, QF_ERR_FORMAT, "%s: empty file", path);
    if (!buf) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: no buffer", path);
    bool nomem;
    Onnx__TensorProto *tp = qf_onnx_unpack_tensor(buf, len, &nomem);
    if (!tp) {
        if (nomem) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory decoding tensor", path);
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: not a valid ONNX TensorProto (protobuf decode failed)", path);
    }
    char what[160];
    if (tp->name && *tp->name)
        snprintf(what, sizeof what, "tensor '%s'", tp->name);
    else
        snprintf(what, sizeof what, "tensor");
    qf_onnx_ctx cx = {path, base_dir};
    size_t nbytes;
    qf_status st = qf_onnx_tensor_from_proto(tp, &cx, what, t, &nbytes, err);
    qf_onnx_free_tensor(tp);
    return st;
}

qf_status qf_onnx_decode_tensor(const void *buf, size_t len, const char *path_for_errors,
                                qf_tensor *t, qf_err *err) {
    return decode_tensor_in(buf, len, path_for_errors, NULL, t, err);
}

qf_status qf_onnx_read_tensor_file(const char *path, qf_tensor *t, qf_err *err) {
    memset(t, 0, sizeof *t);
    void *buf;
    size_t len;
    qf_status st = qf_read_file(path, &buf, &len, err);
    if (st) return st;
    char *dir = qf_onnx_dirname(path);
    if (!dir) {
        qf_free(buf);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    }
    st = decode_tensor_in(buf, len, path, dir, t, err);
    qf_free(dir);
    qf_free(buf);
    return st;
}
