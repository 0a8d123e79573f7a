/* qfm_read.c - load a qfm file into a qf_graph (docs/qfm-format.md).
 *
 * The file is treated as hostile: the header, the section table and every
 * section's checksum are verified before anything is parsed, and every
 * count, index, offset and size is checked against the bytes that hold it
 * before use, so a damaged or crafted file gives a one-line QF_ERR_FORMAT
 * naming the file instead of a crash or a huge allocation. Allocations are
 * bounded by the section sizes (a count must fit the section it describes).
 * With mmap, constant values point straight into the read-only mapping. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/byteorder.h"
#include "io/qfm.h"
#include "io/qfm_codec.h"
#include "ir/ops.h"

#define QFM_N_KINDS 10 /* known kinds are 1..9 */
#define QFM_KNOWN_VALUE_FLAGS (QF_VAL_INPUT | QF_VAL_OUTPUT | QF_VAL_CONST)

static const char *const sec_names[QFM_N_KINDS] = {
    "?",     "STRINGS", "GRAPH",   "VALUES",      "QPARAMS",
    "NODES", "ATTRS",   "TENSORS", "TENSOR_DATA", "METADATA_JSON"};

/* ---- little-endian loads (unaligned-safe) ------------------------------ */
static uint32_t le32(const unsigned char *p) { return qf_load_le32(p); }
static uint64_t le64(const unsigned char *p) {
    return (uint64_t)qf_load_le32(p) | (uint64_t)qf_load_le32(p + 4) << 32;
}
static int32_t lei32(const unsigned char *p) {
    uint32_t u = le32(p);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}
static int64_t lei64(const unsigned char *p) {
    uint64_t u = le64(p);
    int64_t v;
    memcpy(&v, &u, 8);
    return v;
}
static float lef32(const unsigned char *p) {
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- shared checks (also used by the writer) ---------------------------- */
bool qf_qfm_utf8_ok(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c == 0) return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n > len - i - 1) return false;
        for (size_t k = 1; k <= n; k++) {
            unsigned b = p[i + k];
            if ((b & 0xC0) != 0x80) return false;
            cp = cp << 6 | (b & 0x3F);
        }
        /* overlong forms, surrogates and code points past U+10FFFF */
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

bool qf_qfm_qparams_ok(const qf_value *v, const qf_qparams *q, char *why, size_t why_len) {
    if (q->bits < 1 || q->bits > 32) {
        snprintf(why, why_len, "qparams bits %d outside 1..32", q->bits);
        return false;
    }
    if (q->n < 1) {
        snprintf(why, why_len, "qparams with %d scales", q->n);
        return false;
    }
    if (q->axis < 0) {
        if (q->n != 1) {
            snprintf(why, why_len, "per-tensor qparams with %d scales", q->n);
            return false;
        }
    } else {
        if (q->axis >= QF_MAX_DIMS || (v->rank >= 0 && q->axis >= v->rank)) {
            snprintf(why, why_len, "qparams axis %d outside rank %d", q->axis, v->rank);
            return false;
        }
        if (v->rank >= 0 && v->dims[q->axis] >= 0 && v->dims[q->axis] != q->n) {
            snprintf(why, why_len, "qparams have %d scales for a dim of %lld", q->n,
                     (long long)v->dims[q->axis]);
            return false;
        }
    }
    for (int k = 0; k < q->n; k++)
        if (!isfinite(q->scale[k]) || !(q->scale[k] > 0)) {
            snprintf(why, why_len, "qparams scale[%d] = %g is not finite and positive", k,
                     (double)q->scale[k]);
            return false;
        }
    return true;
}

/* ---- reader context ---------------------------------------------------- */
typedef struct rsec {
    const unsigned char *p;
    uint64_t size;
    bool present;
} rsec;

typedef struct rqp { /* a QPARAMS record, validated for bounds */
    int32_t bits, axis;
    uint32_t n;
    const unsigned char *arrays; /* n scales then n zero points */
} rqp;

typedef struct rctx {
    const unsigned char *buf;
    size_t len;
    const char *path;
    bool zero_copy;
    uint32_t version;
    qf_err *err;
    rsec sec[QFM_N_KINDS];
    void *inflated[QFM_N_KINDS]; /* decompressed sections (version 2), owned */
    uint32_t n_strings;
    rqp *qps;
    uint32_t n_qps;
    qf_graph *g;
} rctx;

/* QF_ERR_FORMAT (or another status) with the file name in front. */
static qf_status fail(rctx *c, qf_status s, const char *fmt, ...) QF_PRINTF(3, 4);
static qf_status fail(rctx *c, qf_status s, const char *fmt, ...) {
    char msg[QF_ERR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qf_errf(c->err, s, "%s: %s", c->path, msg);
}
#define BAD(c, ...) fail((c), QF_ERR_FORMAT, __VA_ARGS__)
#define NOMEM(c) fail((c), QF_ERR_NOMEM, "out of memory loading the model")

static bool all_zero(const unsigned char *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static qf_status get_str(rctx *c, uint64_t idx, const char *what, const char **out) {
    if (idx >= c->n_strings)
        return BAD(c, "%s: string index %llu out of range (%u strings)", what,
                   (unsigned long long)idx, c->n_strings);
    const unsigned char *p = c->sec[QF_QFM_SEC_STRINGS].p;
    *out = (const char *)(p + le32(p + 8 + idx * 8));
    return QF_OK;
}

/* Header -> section count and table offset, both checked against the file. */
static qf_status check_header(rctx *c, uint32_t *n_sec, uint64_t *table_off) {
    const unsigned char *h = c->buf;
    if (c->len == 0) return BAD(c, "empty file (0 bytes), not a qfm model");
    if (c->len < QF_QFM_MAGIC_LEN || memcmp(h, QF_QFM_MAGIC, QF_QFM_MAGIC_LEN) != 0) {
        if (c->len >= 4 && memcmp(h + 1, "QFM", 3) == 0)
            return BAD(c, "damaged qfm signature (file transferred in text mode?)");
        return BAD(c, "not a qfm file (bad signature)");
    }
    if (c->len < QF_QFM_HEADER_SIZE)
        return BAD(c, "truncated: %zu bytes, shorter than the %u-byte header", c->len,
                   QF_QFM_HEADER_SIZE);
    if (le32(h + 60) != qf_crc32c(0, h, 60)) return BAD(c, "header checksum mismatch");
    uint32_t version = le32(h + 8);
    if (version < QF_QFM_VERSION_MIN || version > QF_QFM_VERSION)
        return fail(c, QF_ERR_UNSUPPORTED, "qfm format version %u %s (this qforge reads %u..%u)",
                    version, version > QF_QFM_VERSION ? "is newer than this qforge" : "is unknown",
                    QF_QFM_VERSION_MIN, QF_QFM_VERSION);
    c->version = version;
    if (le32(h + 12) != 0)
        return fail(c, QF_ERR_UNSUPPORTED, "unknown header flags 0x%x", le32(h + 12));
    if (le32(h + 16) != QF_QFM_HEADER_SIZE)
        return BAD(c, "header size %u, expected %u", le32(h + 16), QF_QFM_HEADER_SIZE);
    if (!all_zero(h + 44, 16)) return BAD(c, "reserved header bytes are not zero");
    uint64_t file_size = le64(h + 32);
    if (file_size > c->len)
        return BAD(c, "truncated: header says %llu bytes, file has %zu",
                   (unsigned long long)file_size, c->len);
    if (file_size < c->len)
        return BAD(c, "%zu bytes, header says %llu (trailing data)", c->len,
                   (unsigned long long)file_size);
    *n_sec = le32(h + 20);
    *table_off = le64(h + 24);
    uint64_t table_len = (uint64_t)*n_sec * QF_QFM_SECTION_ENTRY_SIZE;
    if (*table_off % QF_QFM_ALIGN || *table_off < QF_QFM_HEADER_SIZE || *table_off > c->len ||
        table_len > c->len - *table_off)
        return BAD(c, "section table (offset %llu, %u entries) lies outside the file",
                   (unsigned long long)*table_off, *n_sec);
    if (le32(h + 40) != qf_crc32c(0, h + *table_off, (size_t)table_len))
        return BAD(c, "section table checksum mismatch");
    return QF_OK;
}

/* Gap [from, to) between items: must be zero padding. */
static qf_status check_gap(rctx *c, uint64_t from, uint64_t to) {
    if (!all_zero(c->buf + from, to - from))
        return BAD(c, "non-zero bytes in the padding at offset %llu", (unsigned long long)from);
    return QF_OK;
}

/* Replace a zstd-compressed section's view by its decompressed contents
 * (owned). The declared size is bounded before anything is allocated. */
static qf_status inflate_section(rctx *c, uint32_t kind, const char *kname) {
    rsec *sec = &c->sec[kind];
    uint64_t cs;
    if (!qf_qfm_zstd_content_size(sec->p, (size_t)sec->size, &cs))
        return BAD(c, "section %s: damaged zstd frame", kname);
    if (cs > QF_QFM_MAX_SECTION || cs > sec->size * QF_QFM_MAX_EXPANSION)
        return BAD(c, "section %s: implausible decompressed size %llu from %llu bytes", kname,
                   (unsigned long long)cs, (unsigned long long)sec->size);
    void *buf = qf_malloc(cs ? (size_t)cs : 1);
    if (!buf) return NOMEM(c);
    char why[128];
    if (!qf_qfm_zstd_decode(sec->p, (size_t)sec->size, buf, (size_t)cs, why, sizeof why)) {
        qf_free(buf);
        return BAD(c, "section %s: %s", kname, why);
    }
    c->inflated[kind] = buf;
    sec->p = buf;
    sec->size = cs;
    return QF_OK;
}

/* Section table: bounds, alignment, order (ascending, no overlap with each
 * other, the header or the table), zero padding, checksums, kinds. */
static qf_status read_table(rctx *c, uint32_t n_sec, uint64_t table_off) {
    uint64_t table_end = table_off + (uint64_t)n_sec * QF_QFM_SECTION_ENTRY_SIZE;
    uint64_t cursor = QF_QFM_HEADER_SIZE; /* end of the last item walked */
    bool table_done = false;
    qf_status s;
    for (uint32_t i = 0; i <= n_sec; i++) {
        const unsigned char *e = c->buf + table_off + (uint64_t)i * QF_QFM_SECTION_ENTRY_SIZE;
        uint64_t off = i < n_sec ? le64(e + 8) : c->len;
        if (!table_done && table_off <= off) {
            if (table_off < cursor) return BAD(c, "section table overlaps a section");
            if ((s = check_gap(c, cursor, table_off))) return s;
            cursor = table_end;
            table_done = true;
        }
        if (i == n_sec) break;
        uint32_t kind = le32(e), flags = le32(e + 4), crc = le32(e + 24);
        uint64_t size = le64(e + 16);
        char kname[32];
        if (kind < QFM_N_KINDS && kind > 0)
            snprintf(kname, sizeof kname, "%s", sec_names[kind]);
        else
            snprintf(kname, sizeof kname, "kind %u", kind);
        if (le32(e + 28) != 0) return BAD(c, "section %s: reserved field is not zero", kname);
        uint32_t known_flags = QF_QFM_SECF_REQUIRED | (c->version >= 2 ? QF_QFM_SECF_ZSTD : 0);
        if (flags & ~known_flags)
            return fail(c, QF_ERR_UNSUPPORTED, "section %s: unknown flags 0x%x", kname, flags);
        if ((flags & QF_QFM_SECF_ZSTD) && kind == QF_QFM_SEC_TENSOR_DATA)
            return BAD(c, "section TENSOR_DATA cannot be compressed as a whole");
        if (off % QF_QFM_ALIGN)
            return BAD(c, "section %s: offset %llu is not %u-byte aligned", kname,
                       (unsigned long long)off, QF_QFM_ALIGN);
        if (off > c->len || size > c->len - off)
            return BAD(c,
                       "section %s (offset %llu, size %llu) extends past the end of the file "
                       "(%zu bytes)",
                       kname, (unsigned long long)off, (unsigned long long)size, c->len);
        if (off < cursor)
            return BAD(c,
                       "section %s (offset %llu) overlaps the header, the table or the "
                       "previous section",
                       kname, (unsigned long long)off);
        if ((s = check_gap(c, cursor, off))) return s;
        cursor = off + size;
        if (qf_crc32c(0, c->buf + off, (size_t)size) != crc)
            return BAD(c, "section %s checksum mismatch", kname);
        if (kind > 0 && kind < QFM_N_KINDS) {
            if (c->sec[kind].present) return BAD(c, "section %s appears twice", kname);
            c->sec[kind] = (rsec){c->buf + off, size, true};
            if ((flags & QF_QFM_SECF_ZSTD) && (s = inflate_section(c, kind, kname))) return s;
        } else if (flags & QF_QFM_SECF_REQUIRED) {
            return fail(c, QF_ERR_UNSUPPORTED,
                        "section %s is required but unknown to this qforge (newer writer?)", kname);
        } /* else: an optional section of a newer writer, skipped */
    }
    if ((s = check_gap(c, cursor, c->len))) return s;
    for (int k = QF_QFM_SEC_STRINGS; k <= QF_QFM_SEC_TENSOR_DATA; k++)
        if (!c->sec[k].present) return BAD(c, "missing section %s", sec_names[k]);
    return QF_OK;
}

/* ---- sections -------------------------------------------------------------- */
/* The 8-byte "count, reserved" header most sections start with. */
static qf_status sec_count(rctx *c, int kind, uint32_t *count) {
    const rsec *s = &c->sec[kind];
    if (s->size < 8)
        return BAD(c, "section %s: %llu bytes, too short", sec_names[kind],
                   (unsigned long long)s->size);
    *count = le32(s->p);
    if (le32(s->p + 4) != 0)
        return BAD(c, "section %s: reserved field is not zero", sec_names[kind]);
    return QF_OK;
}

/* Records of rec_size bytes must fill the section exactly: this bounds the
 * count by the section size before anything is allocated from it. */
static qf_status exact_records(rctx *c, int kind, uint32_t count, uint64_t head,
                               uint64_t rec_size) {
    if (count > INT32_MAX || (uint64_t)count * rec_size != c->sec[kind].size - head)
        return BAD(c, "section %s: count %u does not match its size (%llu bytes)", sec_names[kind],
                   count, (unsigned long long)c->sec[kind].size);
    return QF_OK;
}

static qf_status parse_strings(rctx *c) {
    uint32_t n;
    qf_status s = sec_count(c, QF_QFM_SEC_STRINGS, &n);
    if (s) return s;
    const rsec *sec = &c->sec[QF_QFM_SEC_STRINGS];
    if ((uint64_t)n * 8 > sec->size - 8)
        return BAD(c, "section STRINGS: count %u does not fit its %llu bytes", n,
                   (unsigned long long)sec->size);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = le32(sec->p + 8 + (uint64_t)i * 8),
                 len = le32(sec->p + 12 + (uint64_t)i * 8);
        if (off + len >= sec->size)
            return BAD(c, "string %u (offset %llu, length %llu) lies outside section STRINGS", i,
                       (unsigned long long)off, (unsigned long long)len);
        if (sec->p[off + len] != 0 || memchr(sec->p + off, 0, (size_t)len))
            return BAD(c, "string %u is not NUL-terminated at its length", i);
    }
    c->n_strings = n;
    return QF_OK;
}

static qf_status parse_qparams(rctx *c) {
    uint32_t n;
    qf_status s = sec_count(c, QF_QFM_SEC_QPARAMS, &n);
    if (s) return s;
    const rsec *sec = &c->sec[QF_QFM_SEC_QPARAMS];
    uint64_t min_rec = QF_QFM_QPARAMS_HDR_SIZE + 8; /* at least one scale and zero point */
    if ((uint64_t)n * min_rec > sec->size - 8)
        return BAD(c, "section QPARAMS: count %u does not fit its %llu bytes", n,
                   (unsigned long long)sec->size);
    c->qps = qf_calloc(n ? n : 1, sizeof *c->qps);
    if (!c->qps) return NOMEM(c);
    c->n_qps = n;
    uint64_t pos = 8;
    for (uint32_t i = 0; i < n; i++) {
        if (sec->size - pos < QF_QFM_QPARAMS_HDR_SIZE)
            return BAD(c, "section QPARAMS: record %u is truncated", i);
        const unsigned char *r = sec->p + pos;
        rqp *q = &c->qps[i];
        q->bits = lei32(r);
        q->axis = lei32(r + 4);
        q->n = le32(r + 8);
        if (le32(r + 12) != 0) return BAD(c, "qparams record %u: reserved field is not zero", i);
        if (q->n == 0 || q->n > INT32_MAX || q->axis < -1 ||
            (uint64_t)q->n * 8 > sec->size - pos - QF_QFM_QPARAMS_HDR_SIZE)
            return BAD(c, "qparams record %u (axis %d, %u scales) does not fit section QPARAMS", i,
                       q->axis, q->n);
        q->arrays = r + QF_QFM_QPARAMS_HDR_SIZE;
        pos += QF_QFM_QPARAMS_HDR_SIZE + (uint64_t)q->n * 8;
    }
    if (pos != sec->size)
        return BAD(c, "section QPARAMS: %llu bytes after the last record",
                   (unsigned long long)(sec->size - pos));
    return QF_OK;
}

static qf_status attach_qparams(rctx *c, int vi, uint32_t qi) {
    const rqp *r = &c->qps[qi];
    qf_graph *g = c->g;
    qf_qparams *q = qf_graph_alloc(g, sizeof *q);
    float *scale = q ? qf_graph_alloc(g, sizeof(float) * r->n) : NULL;
    int32_t *zp = scale ? qf_graph_alloc(g, sizeof(int32_t) * r->n) : NULL;
    if (!zp) return NOMEM(c);
    for (uint32_t k = 0; k < r->n; k++) {
        scale[k] = lef32(r->arrays + 4 * (uint64_t)k);
        zp[k] = lei32(r->arrays + 4 * ((uint64_t)r->n + k));
    }
    q->bits = r->bits;
    q->axis = r->axis;
    q->n = (int)r->n;
    q->scale = scale;
    q->zero_point = zp;
    char why[128];
    if (!qf_qfm_qparams_ok(&g->values[vi], q, why, sizeof why))
        return BAD(c, "value '%s': %s", g->values[vi].name, why);
    g->values[vi].qp = q;
    return QF_OK;
}

static qf_status parse_values(rctx *c) {
    uint32_t n;
    qf_status s = sec_count(c, QF_QFM_SEC_VALUES, &n);
    if (s || (s = exact_records(c, QF_QFM_SEC_VALUES, n, 8, QF_QFM_VALUE_REC_SIZE))) return s;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *r =
            c->sec[QF_QFM_SEC_VALUES].p + 8 + (uint64_t)i * QF_QFM_VALUE_REC_SIZE;
        char what[48];
        snprintf(what, sizeof what, "value %u", i);
        const char *name;
        if ((s = get_str(c, le32(r), what, &name))) return s;
        uint32_t dtype = le32(r + 4), flags = le32(r + 12);
        int32_t rank = lei32(r + 8), qi = lei32(r + 16);
        if (dtype >= QF_DT_COUNT) return BAD(c, "value '%s': unknown dtype %u", name, dtype);
        if (rank < -1 || rank > QF_MAX_DIMS)
            return BAD(c, "value '%s': rank %d outside -1..%d", name, rank, QF_MAX_DIMS);
        if (flags & ~(uint32_t)QFM_KNOWN_VALUE_FLAGS)
            return BAD(c, "value '%s': unknown flags 0x%x", name, flags);
        if (qi < -1 || (qi >= 0 && (uint32_t)qi >= c->n_qps))
            return BAD(c, "value '%s': qparams index %d out of range (%u records)", name, qi,
                       c->n_qps);
        if (le32(r + 20) != 0) return BAD(c, "value '%s': reserved field is not zero", name);
        int64_t dims[QF_MAX_DIMS];
        for (int d = 0; d < QF_MAX_DIMS; d++) {
            dims[d] = lei64(r + 24 + 8 * d);
            if (d < rank ? dims[d] < -1 : dims[d] != 0)
                return BAD(c, "value '%s': bad dim %d (%lld)", name, d, (long long)dims[d]);
        }
        int vi = qf_graph_add_value(c->g, name, (qf_dtype)dtype, rank, dims);
        if (vi < 0) return NOMEM(c);
        c->g->values[vi].flags = flags;
        if (qi >= 0 && (s = attach_qparams(c, vi, (uint32_t)qi))) return s;
    }
    return QF_OK;
}

/* Element count * element size, or false on a bad dtype, dim or overflow. */
static bool shape_bytes(uint32_t dtype, uint32_t rank, const int64_t *dims, uint64_t *out) {
    size_t es = dtype < QF_DT_COUNT ? qf_dtype_size((qf_dtype)dtype) : 0;
    if (es == 0 || rank > QF_MAX_DIMS) return false;
    uint64_t n = es;
    for (uint32_t i = 0; i < rank; i++) {
        if (dims[i] < 0) return false;
        if (dims[i] != 0 && n > UINT64_MAX / (uint64_t)dims[i]) return false;
        n *= (uint64_t)dims[i];
    }
    *out = n;
    return true;
}

/* Tensors below this size are copied even from a mapped file: scales, zero
 * points, biases and shapes are read on every run, while the runtime hands
 * the mapping's pages back to the OS after packing the weights; left in the
 * file, each would fault in a page (and its fault-around neighbours) per
 * run and keep them resident. */
#define QFM_COPY_BELOW 4096

static qf_status bind_tensor(rctx *c, qf_value *v, const unsigned char *src, uint64_t nb) {
    if (c->zero_copy && nb >= QFM_COPY_BELOW) {
        /* the file stays mapped for the graph's lifetime (g->mapping) */
        v->data = (void *)(uintptr_t)src;
        v->data_external = true;
    } else {
        if (nb > SIZE_MAX) return NOMEM(c);
        v->data = qf_malloc_aligned((size_t)nb);
        if (!v->data) return NOMEM(c);
        if (nb) memcpy(v->data, src, (size_t)nb);
        v->data_external = false;
    }
    v->nbytes = (size_t)nb;
    return QF_OK;
}

/* An encoded tensor is decoded into owned, aligned memory (never used in
 * place). The decoded size comes from the validated shape, not the file. */
static qf_status decode_tensor(rctx *c, qf_value *v, uint32_t enc, const unsigned char *src,
                               uint64_t nb, uint64_t want) {
    if (want > SIZE_MAX) return NOMEM(c);
    void *dst = qf_malloc_aligned(want ? (size_t)want : 1);
    if (!dst) return NOMEM(c);
    char why[160];
    if (!qf_qfm_tensor_decode(enc, src, nb, qf_dtype_size(v->dtype), dst, want, why, sizeof why)) {
        qf_free_aligned(dst);
        return BAD(c, "tensor '%s': %s", v->name, why);
    }
    v->data = dst;
    v->data_external = false;
    v->nbytes = (size_t)want;
    return QF_OK;
}

static qf_status parse_tensors(rctx *c) {
    uint32_t n;
    qf_status s = sec_count(c, QF_QFM_SEC_TENSORS, &n);
    if (s || (s = exact_records(c, QF_QFM_SEC_TENSORS, n, 8, QF_QFM_TENSOR_REC_SIZE))) return s;
    qf_graph *g = c->g;
    const rsec *data = &c->sec[QF_QFM_SEC_TENSOR_DATA];
    bool *seen = qf_calloc((size_t)g->n_values + 1, 1);
    if (!seen) return NOMEM(c);
    for (uint32_t i = 0; i < n && !s; i++) {
        const unsigned char *r =
            c->sec[QF_QFM_SEC_TENSORS].p + 8 + (uint64_t)i * QF_QFM_TENSOR_REC_SIZE;
        uint32_t vi = le32(r), dtype = le32(r + 4), rank = le32(r + 8), enc = le32(r + 12);
        if (vi >= (uint32_t)g->n_values) {
            s = BAD(c, "tensor record %u: value index %u out of range (%d values)", i, vi,
                    g->n_values);
            break;
        }
        qf_value *v = &g->values[vi];
        if (!(v->flags & QF_VAL_CONST) || seen[vi]) {
            s = BAD(c, "tensor record %u: value '%s' is %s", i, v->name,
                    seen[vi] ? "stored twice" : "not a constant");
            break;
        }
        uint32_t max_enc = c->version >= 2 ? QF_QFM_ENC_PALETTE : QF_QFM_ENC_RAW;
        if (enc > max_enc) {
            s = enc <= QF_QFM_ENC_PALETTE
                    ? fail(c, QF_ERR_UNSUPPORTED,
                           "tensor '%s': encoding %u is not allowed in a version %u file", v->name,
                           enc, c->version)
                    : BAD(c, "tensor '%s': unknown encoding %u", v->name, enc);
            break;
        }
        int64_t dims[QF_MAX_DIMS];
        bool same =
            dtype == (uint32_t)v->dtype && rank <= QF_MAX_DIMS && (int64_t)rank == (int64_t)v->rank;
        for (int d = 0; d < QF_MAX_DIMS; d++) {
            dims[d] = lei64(r + 16 + 8 * d);
            if ((uint32_t)d < rank ? (same && dims[d] != v->dims[d]) : dims[d] != 0) same = false;
        }
        uint64_t want, off = le64(r + 80), nb = le64(r + 88);
        if (!same) {
            s = BAD(c, "tensor '%s': dtype/shape differ from the value's", v->name);
        } else if (!shape_bytes(dtype, rank, dims, &want)) {
            s = BAD(c, "tensor '%s': bad dtype or shape (negative dim or size overflow)", v->name);
        } else if (enc == QF_QFM_ENC_RAW && nb != want) {
            s = BAD(c, "tensor '%s': %llu bytes stored, its shape needs %llu", v->name,
                    (unsigned long long)nb, (unsigned long long)want);
        } else if (off % QF_QFM_ALIGN) {
            s = BAD(c, "tensor '%s': offset %llu is not %u-byte aligned", v->name,
                    (unsigned long long)off, QF_QFM_ALIGN);
        } else if (off > data->size || nb > data->size - off) {
            s = BAD(c, "tensor '%s' (offset %llu, %llu bytes) lies outside TENSOR_DATA (%llu)",
                    v->name, (unsigned long long)off, (unsigned long long)nb,
                    (unsigned long long)data->size);
        } else {
            s = enc == QF_QFM_ENC_RAW ? bind_tensor(c, v, data->p + off, nb)
                                      : decode_tensor(c, v, enc, data->p + off, nb, want);
            v->stored_encoding = enc;
            v->stored_nbytes = nb;
            seen[vi] = true;
        }
    }
    for (int i = 0; i < g->n_values && !s; i++)
        if ((g->values[i].flags & QF_VAL_CONST) && !seen[i])
            s = BAD(c, "constant '%s' has no tensor record", g->values[i].name);
    qf_free(seen);
    return s;
}

typedef struct rattrs { /* ATTRS section view */
    uint32_t count;
    const unsigned char *recs, *pay;
    uint64_t pay_size;
} rattrs;

static qf_status parse_attr(rctx *c, const rattrs *at, uint32_t idx, const char *node, qf_attr *a) {
    const unsigned char *r = at->recs + (uint64_t)idx * QF_QFM_ATTR_REC_SIZE;
    qf_graph *g = c->g;
    char what[160];
    snprintf(what, sizeof what, "node '%s' attribute %u", node, idx);
    const char *name, *str;
    qf_status s = get_str(c, le32(r), what, &name);
    if (s) return s;
    uint32_t type = le32(r + 4), cnt = le32(r + 8);
    uint64_t val = le64(r + 16), avail = val <= at->pay_size ? at->pay_size - val : 0;
    snprintf(what, sizeof what, "node '%s' attribute '%s'", node, name);
    memset(a, 0, sizeof *a);
    a->name = qf_arena_strdup(&g->arena, name);
    if (!a->name) return NOMEM(c);
    a->type = (qf_attr_type)type;
    if (le32(r + 12) != 0) return BAD(c, "%s: reserved field is not zero", what);
    bool list = type == QF_ATTR_INTS || type == QF_ATTR_FLOATS || type == QF_ATTR_STRINGS;
    if (!list && cnt != 0) return BAD(c, "%s: count %u on a non-list", what, cnt);
    if (list && (cnt > INT32_MAX || val > at->pay_size ||
                 (uint64_t)cnt * (type == QF_ATTR_INTS ? 8 : 4) > avail))
        return BAD(c, "%s: %u elements at offset %llu lie outside the payload (%llu bytes)", what,
                   cnt, (unsigned long long)val, (unsigned long long)at->pay_size);
    const unsigned char *p = at->pay + (list ? val : 0);
    a->n = (int)cnt;
    switch (type) {
    case QF_ATTR_UNDEF:
    case QF_ATTR_GRAPH:
        if (val) return BAD(c, "%s: placeholder with a value", what);
        break;
    case QF_ATTR_INT: memcpy(&a->i, &val, 8); break;
    case QF_ATTR_FLOAT: {
        if (val >> 32) return BAD(c, "%s: float with high bits set", what);
        uint32_t u = (uint32_t)val;
        memcpy(&a->f, &u, 4);
        break;
    }
    case QF_ATTR_STRING:
        if ((s = get_str(c, val, what, &str))) return s;
        if (!(a->s = qf_arena_strdup(&g->arena, str))) return NOMEM(c);
        break;
    case QF_ATTR_INTS:
        if (!(a->ints = qf_graph_alloc(g, (size_t)cnt * 8))) return NOMEM(c);
        for (uint32_t k = 0; k < cnt; k++)
            a->ints[k] = lei64(p + 8 * (uint64_t)k);
        break;
    case QF_ATTR_FLOATS:
        if (!(a->floats = qf_graph_alloc(g, (size_t)cnt * 4))) return NOMEM(c);
        for (uint32_t k = 0; k < cnt; k++)
            a->floats[k] = lef32(p + 4 * (uint64_t)k);
        break;
    case QF_ATTR_STRINGS:
        if (!(a->strings = qf_graph_alloc(g, sizeof(char *) * ((size_t)cnt + 1)))) return NOMEM(c);
        for (uint32_t k = 0; k < cnt; k++) {
            if ((s = get_str(c, le32(p + 4 * (uint64_t)k), what, &str))) return s;
            if (!(a->strings[k] = qf_arena_strdup(&g->arena, str))) return NOMEM(c);
        }
        break;
    case QF_ATTR_TENSOR: {
        if (avail < QF_QFM_ATTR_TENSOR_HDR_SIZE || val > at->pay_size)
            return BAD(c, "%s: tensor header outside the payload", what);
        const unsigned char *t = at->pay + val;
        uint32_t dtype = le32(t), rank = le32(t + 4);
        uint64_t nb = le64(t + 72), want;
        if (rank > QF_MAX_DIMS) return BAD(c, "%s: tensor rank %u", what, rank);
        for (int d = 0; d < QF_MAX_DIMS; d++) {
            a->t.dims[d] = lei64(t + 8 + 8 * d);
            if ((uint32_t)d >= rank && a->t.dims[d] != 0)
                return BAD(c, "%s: tensor dim %d set beyond its rank", what, d);
        }
        if (!shape_bytes(dtype, rank, a->t.dims, &want) || want != nb ||
            nb > avail - QF_QFM_ATTR_TENSOR_HDR_SIZE)
            return BAD(c,
                       "%s: tensor of dtype %u, %llu bytes does not fit its shape or the "
                       "payload",
                       what, dtype, (unsigned long long)nb);
        a->t.dtype = (qf_dtype)dtype;
        a->t.rank = (int)rank;
        if (!(a->t.data = qf_graph_alloc(g, (size_t)nb))) return NOMEM(c);
        if (nb) memcpy(a->t.data, t + QF_QFM_ATTR_TENSOR_HDR_SIZE, (size_t)nb);
        break;
    }
    default: return BAD(c, "%s: unknown type %u", what, type);
    }
    return QF_OK;
}

/* A stored op id must agree with the op type: the enum is append-only, so a
 * disagreement means damage. An id this build does not know (a newer op)
 * with an unknown type is left for parse_ops to report as unsupported. */
static qf_status check_op_id(rctx *c, const qf_node *n, int32_t stored) {
    if (stored < -1 ||
        ((n->op != QF_OP_UNKNOWN || stored < QF_OP_COUNT) && stored != (int32_t)n->op))
        return BAD(c, "node '%s': stored op id %d does not match op type '%s' (id %d)", n->name,
                   stored, n->op_type, (int)n->op);
    return QF_OK;
}

static qf_status parse_nodes(rctx *c) {
    uint32_t n, n_attr;
    qf_status s;
    const rsec *ns = &c->sec[QF_QFM_SEC_NODES], *as = &c->sec[QF_QFM_SEC_ATTRS];
    if (ns->size < 8) return BAD(c, "section NODES: too short");
    n = le32(ns->p);
    uint32_t n_io = le32(ns->p + 4); /* NODES has no reserved field: count, n_io */
    if (n > INT32_MAX || (uint64_t)n * QF_QFM_NODE_REC_SIZE + (uint64_t)n_io * 4 != ns->size - 8)
        return BAD(c, "section NODES: counts %u, %u do not match its size (%llu bytes)", n, n_io,
                   (unsigned long long)ns->size);
    if (as->size < 16) return BAD(c, "section ATTRS: too short");
    rattrs at = {le32(as->p), as->p + 16, NULL, le64(as->p + 8)};
    if (le32(as->p + 4) != 0) return BAD(c, "section ATTRS: reserved field is not zero");
    if (at.pay_size > as->size - 16 ||
        (uint64_t)at.count * QF_QFM_ATTR_REC_SIZE != as->size - 16 - at.pay_size)
        return BAD(c, "section ATTRS: count %u and payload %llu do not match its size (%llu)",
                   at.count, (unsigned long long)at.pay_size, (unsigned long long)as->size);
    at.pay = at.recs + (uint64_t)at.count * QF_QFM_ATTR_REC_SIZE;
    n_attr = at.count;
    const unsigned char *io = ns->p + 8 + (uint64_t)n * QF_QFM_NODE_REC_SIZE;
    uint32_t io_next = 0, at_next = 0;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *r = ns->p + 8 + (uint64_t)i * QF_QFM_NODE_REC_SIZE;
        char what[48];
        snprintf(what, sizeof what, "node %u", i);
        const char *name, *op_type, *domain;
        if ((s = get_str(c, le32(r), what, &name)) ||
            (s = get_str(c, le32(r + 4), what, &op_type)) ||
            (s = get_str(c, le32(r + 8), what, &domain)))
            return s;
        int32_t opset = lei32(r + 12), op = lei32(r + 16);
        uint32_t nin = le32(r + 20), nout = le32(r + 24), io_first = le32(r + 28);
        uint32_t nat = le32(r + 32), at_first = le32(r + 36);
        if (nin > QF_MAX_NODE_IO || nout > QF_MAX_NODE_IO || io_first != io_next ||
            nin + nout > n_io - io_next)
            return BAD(c, "node '%s': %u inputs, %u outputs at %u do not fit the index list", name,
                       nin, nout, io_first);
        if (at_first != at_next || nat > n_attr - at_next)
            return BAD(c, "node '%s': %u attributes at %u do not fit section ATTRS", name, nat,
                       at_first);
        int vals[2 * QF_MAX_NODE_IO];
        for (uint32_t j = 0; j < nin + nout; j++) {
            vals[j] = lei32(io + 4 * ((uint64_t)io_first + j));
            if (vals[j] < -1 || vals[j] >= c->g->n_values)
                return BAD(c, "node '%s': value index %d out of range (%d values)", name, vals[j],
                           c->g->n_values);
        }
        qf_attr *attrs = nat ? qf_calloc(nat, sizeof *attrs) : NULL;
        if (nat && !attrs) return NOMEM(c);
        for (uint32_t k = 0; k < nat && !s; k++)
            s = parse_attr(c, &at, at_first + k, name, &attrs[k]);
        int ni = s ? -1
                   : qf_graph_add_node(c->g, name, op_type, domain, opset, vals, (int)nin,
                                       vals + nin, (int)nout, attrs, (int)nat);
        qf_free(attrs);
        if (s) return s;
        if (ni < 0) return NOMEM(c);
        if ((s = check_op_id(c, &c->g->nodes[ni], op))) return s;
        io_next += nin + nout;
        at_next += nat;
    }
    if (io_next != n_io || at_next != n_attr)
        return BAD(c, "%u value indices and %u attributes are not referenced by any node",
                   n_io - io_next, n_attr - at_next);
    return QF_OK;
}

static qf_status parse_graph(rctx *c) {
    const rsec *gs = &c->sec[QF_QFM_SEC_GRAPH];
    qf_graph *g = c->g;
    if (gs->size < 24) return BAD(c, "section GRAPH: too short");
    const char *name, *producer;
    qf_status s;
    if ((s = get_str(c, le32(gs->p), "graph name", &name)) ||
        (s = get_str(c, le32(gs->p + 4), "graph producer", &producer)))
        return s;
    uint32_t ni = le32(gs->p + 12), no = le32(gs->p + 16);
    if (le32(gs->p + 20) != 0) return BAD(c, "section GRAPH: reserved field is not zero");
    if (((uint64_t)ni + no) * 4 != gs->size - 24)
        return BAD(c, "section GRAPH: %u inputs and %u outputs do not match its size", ni, no);
    g->opset = lei32(gs->p + 8);
    g->name = qf_arena_strdup(&g->arena, name);
    g->producer = qf_arena_strdup(&g->arena, producer);
    if (!g->name || !g->producer) return NOMEM(c);
    for (uint64_t i = 0; i < (uint64_t)ni + no; i++) {
        int32_t v = lei32(gs->p + 24 + 4 * i);
        if (v < 0 || v >= g->n_values)
            return BAD(c, "graph %s %llu: value index %d out of range", i < ni ? "input" : "output",
                       (unsigned long long)(i < ni ? i : i - ni), v);
        if ((i < ni ? qf_graph_add_input(g, v) : qf_graph_add_output(g, v))) return NOMEM(c);
    }
    return QF_OK;
}

static qf_status parse_metadata(rctx *c, char **meta) {
    const rsec *ms = &c->sec[QF_QFM_SEC_METADATA_JSON];
    if (!ms->present) return QF_OK;
    if (ms->size > SIZE_MAX - 1 || !qf_qfm_utf8_ok((const char *)ms->p, (size_t)ms->size))
        return BAD(c, "metadata is not valid UTF-8 text");
    if (!meta) return QF_OK;
    *meta = qf_malloc((size_t)ms->size + 1);
    if (!*meta) return NOMEM(c);
    if (ms->size) memcpy(*meta, ms->p, (size_t)ms->size);
    (*meta)[ms->size] = 0;
    return QF_OK;
}

static qf_status qfm_parse(const unsigned char *buf, size_t len, const char *path, bool zero_copy,
                           qf_graph **out, char **meta, qf_err *err) {
    rctx c;
    memset(&c, 0, sizeof c);
    c.buf = buf;
    c.len = len;
    c.path = path;
    c.zero_copy = zero_copy;
    c.err = err;
    uint32_t n_sec = 0;
    uint64_t table_off = 0;
    char *md = NULL;
    qf_status s = check_header(&c, &n_sec, &table_off);
    if (s || (s = read_table(&c, n_sec, table_off))) {
        for (int k = 0; k < QFM_N_KINDS; k++) qf_free(c.inflated[k]);
        return s;
    }
    c.g = qf_graph_create();
    if (!c.g) return NOMEM(&c);
    if (!(c.g->source_path = qf_arena_strdup(&c.g->arena, path))) {
        s = NOMEM(&c);
        goto out;
    }
    if ((s = parse_strings(&c)) || (s = parse_qparams(&c)) || (s = parse_values(&c)) ||
        (s = parse_tensors(&c)) || (s = parse_nodes(&c)) || (s = parse_graph(&c)) ||
        (s = parse_metadata(&c, meta ? &md : NULL)))
        goto out;
    if ((s = qf_graph_toposort(c.g, err)) || (s = qf_graph_parse_ops(c.g, err))) goto out;
out:
    qf_free(c.qps);
    for (int k = 0; k < QFM_N_KINDS; k++)
        qf_free(c.inflated[k]);
    if (s) {
        qf_graph_free(c.g);
        qf_free(md);
        return s;
    }
    *out = c.g;
    if (meta) *meta = md;
    return QF_OK;
}

qf_status qf_qfm_load_mem(const void *buf, size_t len, const char *name_for_errors, qf_graph **out,
                          char **metadata_json, qf_err *err) {
    const char *path = name_for_errors ? name_for_errors : "model.qfm";
    if (out) *out = NULL;
    if (metadata_json) *metadata_json = NULL;
    if (!out || (!buf && len)) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", path);
    if (qf_host_is_big_endian())
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: qfm needs a little-endian host", path);
    return qfm_parse(buf, len, path, false, out, metadata_json, err);
}

qf_status qf_qfm_load(const char *path, qf_graph **out, char **metadata_json, qf_err *err) {
    if (out) *out = NULL;
    if (metadata_json) *metadata_json = NULL;
    if (!path || !out) return qf_errf(err, QF_ERR_INVALID_ARG, "qfm load: NULL argument");
    if (qf_host_is_big_endian())
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: qfm needs a little-endian host", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qf_errf(err, QF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return qf_errf(err, QF_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return qf_errf(err, QF_ERR_FORMAT, "%s: empty file (0 bytes), not a qfm model", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return qf_errf(err, QF_ERR_NOMEM, "%s: too large to map", path);
    }
    size_t len = (size_t)st.st_size;
    /* Read-only private mapping: constants are used in place. (If another
     * process truncates the file while it is mapped, access faults: the
     * usual mmap caveat, shared with every mmap-based loader.) */
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    qf_status s;
    if (m == MAP_FAILED) {
        void *buf;
        s = qf_read_file(path, &buf, &len, err);
        if (s) return s;
        s = qfm_parse(buf, len, path, false, out, metadata_json, err);
        qf_free(buf);
        return s;
    }
    s = qfm_parse(m, len, path, true, out, metadata_json, err);
    if (s) {
        munmap(m, len);
        return s;
    }
    (*out)->mapping = m;
    (*out)->mapping_len = len;
    return QF_OK;
}

bool qf_qfm_file_has_magic(const char *path) {
    unsigned char m[QF_QFM_MAGIC_LEN] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t got = fread(m, 1, sizeof m, f);
    fclose(f);
    return got == sizeof m && memcmp(m, QF_QFM_MAGIC, QF_QFM_MAGIC_LEN) == 0;
}
