/* npy.c - NumPy .npy files (v1/v2/v3), read and write.
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE for v1, u32 LE for
 * v2/v3), a Python dict literal {'descr':..., 'fortran_order':..., 'shape':
 * (...)} padded with spaces and '\n', then the raw little-endian data. */
#include <stdio.h>
#include <string.h>

#include "io/byteorder.h"
#include "io/data.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    const char *code; /* descr without its byte-order character */
    qf_dtype dtype;
} npy_types[] = {
    {"f2", QF_DT_F16}, {"f4", QF_DT_F32}, {"f8", QF_DT_F64}, {"u1", QF_DT_U8},
    {"i1", QF_DT_I8},  {"i2", QF_DT_I16}, {"u2", QF_DT_U16}, {"i4", QF_DT_I32},
    {"u4", QF_DT_U32}, {"i8", QF_DT_I64}, {"u8", QF_DT_U64}, {"b1", QF_DT_BOOL},
};

/* ---- header dict parser ------------------------------------------------- */
typedef struct npy_cursor {
    const char *p, *end;
    const char *name; /* file, for messages */
} npy_cursor;

static void skip_ws(npy_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool accept_char(npy_cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static qf_status parse_string(npy_cursor *c, char *dst, size_t cap, qf_err *err) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: expected a quoted string", c->name);
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap)
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: string too long", c->name);
        dst[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: unterminated string", c->name);
    c->p++;
    dst[n] = 0;
    return QF_OK;
}

static qf_status parse_bool(npy_cursor *c, bool *v, qf_err *err) {
    skip_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        *v = true;
        c->p += 4;
        return QF_OK;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        *v = false;
        c->p += 5;
        return QF_OK;
    }
    return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: fortran_order must be True or False",
                   c->name);
}

static qf_status parse_shape(npy_cursor *c, int *rank, int64_t *dims, qf_err *err) {
    *rank = 0;
    if (!accept_char(c, '('))
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: shape must be a tuple", c->name);
    for (;;) {
        if (accept_char(c, ')')) return QF_OK;
        skip_ws(c);
        if (c->p < c->end && *c->p == '-')
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: negative dimension in shape",
                           c->name);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: bad number in shape", c->name);
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int digit = *c->p++ - '0';
            if (v > (INT64_MAX - digit) / 10)
                return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: dimension too large",
                               c->name);
            v = v * 10 + digit;
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 long suffix */
        if (*rank >= QF_MAX_DIMS)
            return qf_errf(err, QF_ERR_FORMAT, "%s: NPY rank above %d not supported", c->name,
                           QF_MAX_DIMS);
        dims[(*rank)++] = v;
        if (accept_char(c, ',')) continue;
        if (accept_char(c, ')')) return QF_OK;
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: malformed shape tuple", c->name);
    }
}

static qf_status descr_dtype(const char *descr, const char *name, qf_dtype *dt, qf_err *err) {
    char order = descr[0];
    const char *code = descr + (order ? 1 : 0);
    for (size_t i = 0; i < QF_ARRAY_LEN(npy_types); i++) {
        if (strcmp(code, npy_types[i].code) != 0) continue;
        bool one_byte = code[1] == '1';
        /* Byte order is meaningless for 1-byte types; '=' (native) is only
         * written by hand, and this reader assumes the NPY norm: little. */
        if (order == '>' && !one_byte)
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: big-endian NPY data ('%s') not supported; save it little-endian",
                           name, descr);
        if (order != '<' && order != '|' && order != '=' && order != '>') break;
        *dt = npy_types[i].dtype;
        return QF_OK;
    }
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: NPY dtype '%s' not supported", name, descr);
}

typedef struct npy_header {
    qf_dtype dtype;
    int rank;
    int64_t dims[QF_MAX_DIMS];
} npy_header;

static qf_status parse_header_dict(npy_cursor *c, npy_header *h, qf_err *err) {
    bool got_descr = false, got_order = false, got_shape = false, fortran = false;
    char descr[32] = {0};
    if (!accept_char(c, '{'))
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: expected '{'", c->name);
    while (!accept_char(c, '}')) {
        char key[32];
        qf_status st = parse_string(c, key, sizeof key, err);
        if (st) return st;
        if (!accept_char(c, ':'))
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: expected ':' after '%s'",
                           c->name, key);
        if (strcmp(key, "descr") == 0) {
            skip_ws(c);
            if (c->p < c->end && *c->p == '[')
                return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: structured NPY dtypes not supported",
                               c->name);
            st = parse_string(c, descr, sizeof descr, err);
            got_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            st = parse_bool(c, &fortran, err);
            got_order = true;
        } else if (strcmp(key, "shape") == 0) {
            st = parse_shape(c, &h->rank, h->dims, err);
            got_shape = true;
        } else {
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: unexpected key '%s'", c->name,
                           key);
        }
        if (st) return st;
        if (!accept_char(c, ',')) {
            if (accept_char(c, '}')) break;
            return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: expected ',' or '}'", c->name);
        }
    }
    skip_ws(c);
    if (c->p != c->end)
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: text after the dict", c->name);
    if (!got_descr || !got_order || !got_shape)
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad NPY header: missing '%s'", c->name,
                       !got_descr   ? "descr"
                       : !got_order ? "fortran_order"
                                    : "shape");
    if (fortran)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: fortran_order arrays not supported; save with np.ascontiguousarray",
                       c->name);
    return descr_dtype(descr, c->name, &h->dtype, err);
}

qf_status qf_npy_decode(const void *buf, size_t len, const char *name, qf_tensor *out,
                        qf_err *err) {
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (len < 10)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: truncated: %zu bytes, an NPY header needs at least 10", name, len);
    if (memcmp(b, npy_magic, sizeof npy_magic) != 0)
        return qf_errf(err, QF_ERR_FORMAT, "%s: not an NPY file (bad magic)", name);
    int major = b[6], minor = b[7];
    size_t start, hlen;
    if (major == 1) {
        start = 10;
        hlen = qf_load_le16(b + 8);
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: truncated: %zu bytes, an NPY v%d header needs 12", name, len,
                           major);
        start = 12;
        hlen = qf_load_le32(b + 8);
    } else {
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: NPY version %d.%d not supported", name, major,
                       minor);
    }
    if (hlen > len - start)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: NPY header length %zu goes beyond the end of the file (%zu bytes)",
                       name, hlen, len);
    npy_cursor c = {(const char *)b + start, (const char *)b + start + hlen, name};
    npy_header h;
    memset(&h, 0, sizeof h);
    qf_status st = parse_header_dict(&c, &h, err);
    if (st) return st;

    size_t esize = qf_dtype_size(h.dtype), nbytes = esize;
    for (int i = 0; i < h.rank; i++)
        if ((uint64_t)h.dims[i] > SIZE_MAX || !qf_mul_size(nbytes, (size_t)h.dims[i], &nbytes))
            return qf_errf(err, QF_ERR_FORMAT, "%s: NPY shape too large (size overflows)", name);
    size_t have = len - start - hlen;
    if (have < nbytes)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: truncated: header says %zu bytes of data, file has %zu", name, nbytes,
                       have);
    if (have > nbytes)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: trailing garbage: %zu bytes after the %zu bytes of data", name,
                       have - nbytes, nbytes);
    void *data = qf_malloc_aligned(nbytes ? nbytes : 1);
    if (!data) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory (%zu bytes)", name, nbytes);
    qf_copy_elems(data, b + start + hlen, nbytes / esize, esize, false);
    if (h.dtype == QF_DT_BOOL) {
        /* Kernels may rely on bools being exactly 0 or 1. */
        unsigned char *p = data;
        for (size_t i = 0; i < nbytes; i++)
            p[i] = p[i] != 0;
    }
    out->dtype = h.dtype;
    out->rank = h.rank;
    memcpy(out->dims, h.dims, sizeof h.dims);
    out->data = data;
    return QF_OK;
}

qf_status qf_npy_read(const char *path, qf_tensor *out, qf_err *err) {
    memset(out, 0, sizeof *out);
    void *buf;
    size_t len;
    qf_status st = qf_read_file(path, &buf, &len, err);
    if (st) return st;
    st = qf_npy_decode(buf, len, path, out, err);
    qf_free(buf);
    return st;
}

/* ---- writing ------------------------------------------------------------ */
qf_status qf_npy_encode(const qf_tensor *t, void **buf, size_t *len, qf_err *err) {
    *buf = NULL;
    *len = 0;
    const char *code = NULL;
    for (size_t i = 0; i < QF_ARRAY_LEN(npy_types); i++)
        if (npy_types[i].dtype == t->dtype) code = npy_types[i].code;
    if (!code)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "cannot write %s tensors as NPY",
                       qf_dtype_name(t->dtype));
    int64_t numel = qf_tensor_numel(t);
    size_t esize = qf_dtype_size(t->dtype), nbytes;
    if (numel < 0 || (uint64_t)numel > SIZE_MAX || !qf_mul_size((size_t)numel, esize, &nbytes))
        return qf_errf(err, QF_ERR_INVALID_ARG, "tensor shape invalid or too large for NPY");
    if (numel > 0 && !t->data) return qf_errf(err, QF_ERR_INVALID_ARG, "tensor has no data");

    /* At most 8 dims of 19 digits: the dict always fits a v1 (u16) header. */
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     code[1] == '1' ? '|' : '<', code);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                      (long long)t->dims[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
    /* Like np.save (numpy >= 1.23): room for the first axis to grow to 21
     * digits in place, then spaces so the data starts on a 64-byte boundary,
     * then '\n'. The bytes then match numpy's exactly. */
    size_t growth = 0;
    if (t->rank > 0) {
        char digits[24];
        int nd = snprintf(digits, sizeof digits, "%lld", (long long)t->dims[0]);
        growth = nd < 21 ? (size_t)(21 - nd) : 0;
    }
    size_t hlen = (size_t)n + growth + 1;
    size_t total_hdr = 10 + hlen;
    size_t pad = (64 - total_hdr % 64) % 64;
    hlen += pad;
    total_hdr += pad;
    size_t file_len;
    if (!qf_add_size(total_hdr, nbytes, &file_len))
        return qf_errf(err, QF_ERR_INVALID_ARG, "tensor too large for NPY");
    unsigned char *p = qf_malloc(file_len ? file_len : 1);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory encoding NPY (%zu bytes)", file_len);
    memcpy(p, npy_magic, 6);
    p[6] = 1;
    p[7] = 0;
    p[8] = (unsigned char)(hlen & 0xff);
    p[9] = (unsigned char)(hlen >> 8);
    memcpy(p + 10, dict, (size_t)n);
    memset(p + 10 + n, ' ', growth + pad);
    p[total_hdr - 1] = '\n';
    if (nbytes) qf_copy_elems(p + total_hdr, t->data, nbytes / esize, esize, false);
    *buf = p;
    *len = file_len;
    return QF_OK;
}

qf_status qf_npy_write(const char *path, const qf_tensor *t, qf_err *err) {
    void *buf;
    size_t len;
    qf_status st = qf_npy_encode(t, &buf, &len, err);
    if (st) {
        qf_err_prefix(err, "%s", path);
        return st;
    }
    st = qf_write_file_atomic(path, buf, len, err);
    qf_free(buf);
    return st;
}
