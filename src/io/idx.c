/* idx.c - IDX array files (the MNIST family's format), plain or gzipped.
 * Layout: 00 00 <type> <ndim>, ndim big-endian u32 dims, big-endian data. */
#include <string.h>

#include "io/byteorder.h"
#include "io/data.h"
#include "io/gzip.h"

typedef struct idx_header {
    qf_dtype dtype;
    size_t esize;
    int ndim;
    int64_t dims[QF_MAX_DIMS];
    size_t header_bytes; /* 4 + 4 * ndim */
    size_t data_bytes;   /* product of dims * esize */
} idx_header;

static qf_dtype idx_dtype(unsigned code) {
    switch (code) {
    case 0x08: return QF_DT_U8;
    case 0x09: return QF_DT_I8;
    case 0x0B: return QF_DT_I16;
    case 0x0C: return QF_DT_I32;
    case 0x0D: return QF_DT_F32;
    case 0x0E: return QF_DT_F64;
    default: return QF_DT_UNDEF;
    }
}

/* Parse and size-check the header; len is what the file (or the inflated
 * stream) really holds. */
static qf_status idx_parse_header(const unsigned char *b, size_t len, const char *name,
                                  idx_header *h, qf_err *err) {
    memset(h, 0, sizeof *h);
    if (len < 4)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: truncated: %zu bytes, an IDX header needs at least 4", name, len);
    if (b[0] != 0 || b[1] != 0)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: not an IDX file (magic %02x %02x %02x %02x, expected 00 00 type ndim)",
                       name, b[0], b[1], b[2], b[3]);
    h->dtype = idx_dtype(b[2]);
    if (h->dtype == QF_DT_UNDEF)
        return qf_errf(err, QF_ERR_FORMAT, "%s: unknown IDX data type 0x%02x", name, b[2]);
    h->esize = qf_dtype_size(h->dtype);
    h->ndim = b[3];
    if (h->ndim < 1 || h->ndim > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_FORMAT, "%s: IDX rank %d not supported (1..%d)", name, h->ndim,
                       QF_MAX_DIMS);
    h->header_bytes = 4 + 4 * (size_t)h->ndim;
    if (len < h->header_bytes)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: truncated: the header needs %zu bytes, file has %zu", name,
                       h->header_bytes, len);
    size_t total = h->esize;
    for (int i = 0; i < h->ndim; i++) {
        uint32_t d = qf_load_be32(b + 4 + 4 * (size_t)i);
        h->dims[i] = d;
        if (!qf_mul_size(total, d, &total))
            return qf_errf(err, QF_ERR_FORMAT, "%s: dims too large (size overflows)", name);
    }
    /* header + data + 1 must fit too: the gzip path inflates that much. */
    size_t whole;
    if (!qf_add_size(total, h->header_bytes, &whole) || whole == SIZE_MAX)
        return qf_errf(err, QF_ERR_FORMAT, "%s: dims too large (size overflows)", name);
    h->data_bytes = total;
    return QF_OK;
}

static qf_status idx_decode_plain(const unsigned char *b, size_t len, const char *name,
                                  qf_tensor *out, qf_err *err) {
    idx_header h;
    qf_status st = idx_parse_header(b, len, name, &h, err);
    if (st) return st;
    size_t have = len - h.header_bytes;
    if (have < h.data_bytes)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: truncated: header says %zu bytes of data, file has %zu", name,
                       h.data_bytes, have);
    if (have > h.data_bytes)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: trailing garbage: %zu bytes after the %zu bytes of data", name,
                       have - h.data_bytes, h.data_bytes);
    void *data = qf_malloc_aligned(h.data_bytes ? h.data_bytes : 1);
    if (!data)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory (%zu bytes)", name, h.data_bytes);
    qf_copy_elems(data, b + h.header_bytes, h.data_bytes / h.esize, h.esize, true);
    memset(out, 0, sizeof *out);
    out->dtype = h.dtype;
    out->rank = h.ndim;
    memcpy(out->dims, h.dims, sizeof h.dims);
    out->data = data;
    return QF_OK;
}

qf_status qf_idx_decode(const void *buf, size_t len, const char *name, qf_tensor *out,
                        qf_err *err) {
    memset(out, 0, sizeof *out);
    if (!qf_is_gzip(buf, len)) return idx_decode_plain(buf, len, name, out, err);

    /* Inflate just the header first, so the data inflation can be capped at
     * what the header declares (+1 byte to notice trailing garbage). */
    void *hb;
    size_t hlen;
    bool complete;
    qf_status st = qf_gunzip(buf, len, 4 + 4 * QF_MAX_DIMS, name, &hb, &hlen, &complete, err);
    if (st) return st;
    idx_header h;
    st = idx_parse_header(hb, hlen, name, &h, err);
    qf_free(hb);
    if (st) return st;

    size_t cap = h.header_bytes + h.data_bytes + 1; /* no overflow: checked by the parser */
    void *raw;
    size_t rlen;
    st = qf_gunzip(buf, len, cap, name, &raw, &rlen, &complete, err);
    if (st) return st;
    if (rlen == cap) {
        qf_free(raw);
        return qf_errf(err, QF_ERR_FORMAT, "%s: trailing garbage after the %zu bytes of data", name,
                       h.data_bytes);
    }
    st = idx_decode_plain(raw, rlen, name, out, err);
    if (st == QF_OK && !complete) {
        /* Right amount of data but the gzip trailer (CRC, size) is missing. */
        qf_free_aligned(out->data);
        memset(out, 0, sizeof *out);
        st = qf_errf(err, QF_ERR_FORMAT, "%s: truncated gzip stream (end of stream missing)", name);
    }
    qf_free(raw);
    return st;
}

qf_status qf_idx_read(const char *path, qf_tensor *out, qf_err *err) {
    memset(out, 0, sizeof *out);
    void *buf;
    size_t len;
    qf_status st = qf_read_file(path, &buf, &len, err);
    if (st) return st;
    st = qf_idx_decode(buf, len, path, out, err);
    qf_free(buf);
    return st;
}
