/* qfm_write.c - serialize a qf_graph to a qfm file (docs/qfm-format.md).
 *
 * The graph is validated first, then every section except TENSOR_DATA is
 * built in memory; the constants' bytes are streamed straight from the
 * values (their CRC is computed in a first pass, since the section table
 * that holds it precedes the data). All output goes through the atomic
 * temp-file + rename helpers, so a failure never leaves a partial file. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "io/byteorder.h"
#include "io/qfm.h"
#include "io/qfm_codec.h"

/* ---- little-endian byte buffer ------------------------------------------ */
typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} wbuf;

static void wb_put(wbuf *b, const void *d, size_t n) {
    if (b->oom || n == 0) return;
    size_t need;
    if (!qf_add_size(b->len, n, &need)) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                cap = need;
                break;
            }
            cap *= 2;
        }
        unsigned char *np = qf_realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (d)
        memcpy(b->p + b->len, d, n);
    else
        memset(b->p + b->len, 0, n);
    b->len = need;
}

static void wb_u32(wbuf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    wb_put(b, x, 4);
}
static void wb_i32(wbuf *b, int32_t v) { wb_u32(b, (uint32_t)v); }
static void wb_u64(wbuf *b, uint64_t v) {
    wb_u32(b, (uint32_t)v);
    wb_u32(b, (uint32_t)(v >> 32));
}
static void wb_i64(wbuf *b, int64_t v) { wb_u64(b, (uint64_t)v); }
static void wb_f32(wbuf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4); /* bit pattern, NaN payloads included */
    wb_u32(b, u);
}
static void wb_free(wbuf *b) { qf_free(b->p); }

static void put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- string table (deduplicated) ---------------------------------------- */
typedef struct strtab {
    const char **strs;
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    uint32_t nslots; /* power of two */
    bool oom;
} strtab;

static uint32_t str_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static bool st_grow(strtab *t) {
    uint32_t ns = t->nslots ? t->nslots * 2 : 256;
    if (ns < t->nslots) return false;
    uint32_t *slots = qf_calloc(ns, sizeof *slots);
    if (!slots) return false;
    for (uint32_t i = 0; i < t->nslots; i++) {
        uint32_t e = t->slots[i];
        if (!e) continue;
        uint32_t h = str_hash(t->strs[e - 1]) & (ns - 1);
        while (slots[h])
            h = (h + 1) & (ns - 1);
        slots[h] = e;
    }
    qf_free(t->slots);
    t->slots = slots;
    t->nslots = ns;
    return true;
}

/* Index of s in the table (added if new); 0 with t->oom set on failure. */
static uint32_t st_intern(strtab *t, const char *s) {
    if (t->oom) return 0;
    if (!s) s = "";
    if ((uint64_t)(t->n + 1) * 2 > t->nslots && !st_grow(t)) {
        t->oom = true;
        return 0;
    }
    uint32_t h = str_hash(s) & (t->nslots - 1);
    while (t->slots[h]) {
        uint32_t i = t->slots[h] - 1;
        if (strcmp(t->strs[i], s) == 0) return i;
        h = (h + 1) & (t->nslots - 1);
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 256;
        const char **ns = cap > t->cap ? qf_realloc(t->strs, sizeof(char *) * (size_t)cap) : NULL;
        if (!ns) {
            t->oom = true;
            return 0;
        }
        t->strs = ns;
        t->cap = cap;
    }
    t->strs[t->n] = s;
    t->slots[h] = t->n + 1;
    return t->n++;
}

static void st_free(strtab *t) {
    qf_free(t->strs);
    qf_free(t->slots);
}

/* STRINGS: count, reserved, (offset, length) per string, then the bytes of
 * each string followed by a NUL. */
static void build_strings(const strtab *t, wbuf *b, qf_err *err, const char *path, bool *bad) {
    uint64_t pos = 8 + (uint64_t)t->n * 8;
    wb_u32(b, t->n);
    wb_u32(b, 0);
    for (uint32_t i = 0; i < t->n; i++) {
        size_t len = strlen(t->strs[i]);
        if (len > UINT32_MAX || pos > UINT32_MAX - len - 1) {
            *bad = true;
            qf_errf(err, QF_ERR_UNSUPPORTED, "%s: string table exceeds 4 GiB", path);
            return;
        }
        wb_u32(b, (uint32_t)pos);
        wb_u32(b, (uint32_t)len);
        pos += len + 1;
    }
    for (uint32_t i = 0; i < t->n; i++)
        wb_put(b, t->strs[i], strlen(t->strs[i]) + 1);
}

/* ---- validation: write only what the reader accepts ------------------- */
static bool tensor_nbytes(qf_dtype dt, int rank, const int64_t *dims, uint64_t *out) {
    size_t es = qf_dtype_size(dt);
    if (es == 0 || rank < 0 || rank > QF_MAX_DIMS) return false;
    uint64_t n = es;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return false;
        if (dims[i] != 0 && n > UINT64_MAX / (uint64_t)dims[i]) return false;
        n *= (uint64_t)dims[i];
    }
    if (n > SIZE_MAX) return false;
    *out = n;
    return true;
}

static qf_status check_value(const qf_graph *g, int i, const char *path, qf_err *err) {
    const qf_value *v = &g->values[i];
    const char *nm = v->name ? v->name : "";
    if ((int)v->dtype < 0 || v->dtype >= QF_DT_COUNT)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: value '%s' has unknown dtype %d", path, nm,
                       (int)v->dtype);
    if (v->rank < -1 || v->rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: value '%s' has rank %d", path, nm, v->rank);
    for (int d = 0; d < v->rank; d++)
        if (v->dims[d] < -1)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: value '%s' has dim %lld", path, nm,
                           (long long)v->dims[d]);
    if (v->flags & QF_VAL_CONST) {
        uint64_t nb;
        if (!tensor_nbytes(v->dtype, v->rank, v->dims, &nb))
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: constant '%s' (%s, rank %d) has no storable size", path, nm,
                           qf_dtype_name(v->dtype), v->rank);
        if (nb != v->nbytes || (nb && !v->data))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: constant '%s' holds %zu bytes, its shape needs %llu", path, nm,
                           v->data ? v->nbytes : 0, (unsigned long long)nb);
    }
    if (v->qp) {
        char why[128];
        if (!v->qp->scale || !v->qp->zero_point || !qf_qfm_qparams_ok(v, v->qp, why, sizeof why))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: value '%s': %s", path, nm,
                           (!v->qp->scale || !v->qp->zero_point) ? "qparams without arrays" : why);
    }
    return QF_OK;
}

static qf_status check_attr(const qf_node *n, const qf_attr *a, const char *path, qf_err *err) {
    const char *nm = a->name ? a->name : "?";
    switch (a->type) {
    case QF_ATTR_UNDEF:
    case QF_ATTR_GRAPH:
    case QF_ATTR_INT:
    case QF_ATTR_FLOAT: return QF_OK;
    case QF_ATTR_STRING: return QF_OK; /* NULL is written as "" */
    case QF_ATTR_INTS:
    case QF_ATTR_FLOATS:
    case QF_ATTR_STRINGS: {
        const void *arr = a->type == QF_ATTR_INTS     ? (const void *)a->ints
                          : a->type == QF_ATTR_FLOATS ? (const void *)a->floats
                                                      : (const void *)a->strings;
        if (a->n < 0 || (a->n > 0 && !arr))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node '%s' attribute '%s': bad list", path,
                           n->name, nm);
        return QF_OK;
    }
    case QF_ATTR_TENSOR: {
        uint64_t nb;
        if (!tensor_nbytes(a->t.dtype, a->t.rank, a->t.dims, &nb))
            return qf_errf(err, QF_ERR_UNSUPPORTED,
                           "%s: node '%s' attribute '%s': tensor of %s cannot be stored", path,
                           n->name, nm, qf_dtype_name(a->t.dtype));
        if (nb && !a->t.data)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node '%s' attribute '%s' has no data",
                           path, n->name, nm);
        return QF_OK;
    }
    }
    return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node '%s' attribute '%s' has unknown type %d",
                   path, n->name, nm, (int)a->type);
}

static qf_status check_graph(const qf_graph *g, const char *path, qf_err *err) {
    qf_status s;
    if (g->n_values < 0 || g->n_nodes < 0 || g->n_inputs < 0 || g->n_outputs < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: negative count in graph", path);
    for (int i = 0; i < g->n_values; i++)
        if ((s = check_value(g, i, path, err))) return s;
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        if (!n->op_type || !n->name)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node %d has no op type or name", path, i);
        if (n->n_inputs < 0 || n->n_inputs > QF_MAX_NODE_IO || n->n_outputs < 0 ||
            n->n_outputs > QF_MAX_NODE_IO || n->n_attrs < 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node '%s' has %d inputs, %d outputs", path,
                           n->name, n->n_inputs, n->n_outputs);
        for (int j = 0; j < n->n_inputs + n->n_outputs; j++) {
            int v = j < n->n_inputs ? n->inputs[j] : n->outputs[j - n->n_inputs];
            if (v < -1 || v >= g->n_values)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node '%s' refers to value %d of %d",
                               path, n->name, v, g->n_values);
        }
        for (int k = 0; k < n->n_attrs; k++)
            if ((s = check_attr(n, &n->attrs[k], path, err))) return s;
    }
    for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
        int v = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
        if (v < 0 || v >= g->n_values)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: graph input/output %d out of range", path,
                           v);
    }
    return QF_OK;
}

/* ---- section builders ---------------------------------------------------- */
typedef struct wsecs {
    wbuf graph, values, qparams, nodes, attrs, tensors;
    strtab st;
} wsecs;

#define QFM_KNOWN_VALUE_FLAGS (QF_VAL_INPUT | QF_VAL_OUTPUT | QF_VAL_CONST)

static void build_graph(const qf_graph *g, wsecs *w) {
    wbuf *b = &w->graph;
    wb_u32(b, st_intern(&w->st, g->name));
    wb_u32(b, st_intern(&w->st, g->producer));
    wb_i32(b, g->opset);
    wb_u32(b, (uint32_t)g->n_inputs);
    wb_u32(b, (uint32_t)g->n_outputs);
    wb_u32(b, 0);
    for (int i = 0; i < g->n_inputs; i++)
        wb_i32(b, g->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        wb_i32(b, g->outputs[i]);
}

static void build_values(const qf_graph *g, wsecs *w) {
    wbuf *b = &w->values, *q = &w->qparams;
    uint32_t n_qp = 0;
    wb_u32(b, (uint32_t)g->n_values);
    wb_u32(b, 0);
    wb_u32(q, 0); /* count, patched below */
    wb_u32(q, 0);
    for (int i = 0; i < g->n_values; i++) {
        const qf_value *v = &g->values[i];
        wb_u32(b, st_intern(&w->st, v->name));
        wb_u32(b, (uint32_t)v->dtype);
        wb_i32(b, v->rank);
        /* Only the flags this format version defines are stored (a flag
         * added to graph.h later needs a format version bump to persist). */
        wb_u32(b, v->flags & QFM_KNOWN_VALUE_FLAGS);
        wb_i32(b, v->qp ? (int32_t)n_qp : -1);
        wb_u32(b, 0);
        for (int d = 0; d < QF_MAX_DIMS; d++)
            wb_i64(b, d < v->rank ? v->dims[d] : 0);
        if (v->qp) {
            const qf_qparams *p = v->qp;
            wb_i32(q, p->bits);
            wb_i32(q, p->axis < 0 ? -1 : p->axis); /* any negative axis means per-tensor */
            wb_u32(q, (uint32_t)p->n);
            wb_u32(q, 0);
            for (int k = 0; k < p->n; k++)
                wb_f32(q, p->scale[k]);
            for (int k = 0; k < p->n; k++)
                wb_i32(q, p->zero_point[k]);
            n_qp++;
        }
    }
    if (!q->oom) put_le32(q->p, n_qp);
}

static void build_attr_payload(const qf_attr *a, wsecs *w, wbuf *pay, uint64_t *value,
                               uint32_t *count) {
    *value = 0;
    *count = 0;
    switch (a->type) {
    case QF_ATTR_INT: *value = (uint64_t)a->i; break;
    case QF_ATTR_FLOAT: {
        uint32_t u;
        memcpy(&u, &a->f, 4);
        *value = u;
        break;
    }
    case QF_ATTR_STRING: *value = st_intern(&w->st, a->s); break;
    case QF_ATTR_INTS:
        *value = pay->len;
        *count = (uint32_t)a->n;
        for (int k = 0; k < a->n; k++)
            wb_i64(pay, a->ints[k]);
        break;
    case QF_ATTR_FLOATS:
        *value = pay->len;
        *count = (uint32_t)a->n;
        for (int k = 0; k < a->n; k++)
            wb_f32(pay, a->floats[k]);
        break;
    case QF_ATTR_STRINGS:
        *value = pay->len;
        *count = (uint32_t)a->n;
        for (int k = 0; k < a->n; k++)
            wb_u32(pay, st_intern(&w->st, a->strings[k]));
        break;
    case QF_ATTR_TENSOR: {
        uint64_t nb = 0;
        tensor_nbytes(a->t.dtype, a->t.rank, a->t.dims, &nb); /* checked before */
        /* keep each tensor 8-byte aligned within the payload */
        if (pay->len % 8) wb_put(pay, NULL, 8 - pay->len % 8);
        *value = pay->len;
        wb_u32(pay, (uint32_t)a->t.dtype);
        wb_u32(pay, (uint32_t)a->t.rank);
        for (int d = 0; d < QF_MAX_DIMS; d++)
            wb_i64(pay, d < a->t.rank ? a->t.dims[d] : 0);
        wb_u64(pay, nb);
        wb_put(pay, a->t.data, (size_t)nb);
        break;
    }
    default: /* UNDEF, GRAPH: name and type only */ break;
    }
}

static void build_nodes(const qf_graph *g, wsecs *w, wbuf *pay) {
    wbuf *b = &w->nodes, *ab = &w->attrs;
    uint64_t n_io = 0, n_attrs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        n_io += (uint64_t)g->nodes[i].n_inputs + (uint64_t)g->nodes[i].n_outputs;
        n_attrs += (uint64_t)g->nodes[i].n_attrs;
    }
    if (n_io > UINT32_MAX || n_attrs > UINT32_MAX) {
        b->oom = true;
        return;
    }
    wb_u32(b, (uint32_t)g->n_nodes);
    wb_u32(b, (uint32_t)n_io);
    uint32_t io = 0, at = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        wb_u32(b, st_intern(&w->st, n->name));
        wb_u32(b, st_intern(&w->st, n->op_type));
        wb_u32(b, st_intern(&w->st, n->domain));
        wb_i32(b, n->opset);
        wb_i32(b, (int32_t)n->op);
        wb_u32(b, (uint32_t)n->n_inputs);
        wb_u32(b, (uint32_t)n->n_outputs);
        wb_u32(b, io);
        wb_u32(b, (uint32_t)n->n_attrs);
        wb_u32(b, at);
        io += (uint32_t)(n->n_inputs + n->n_outputs);
        at += (uint32_t)n->n_attrs;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++)
            wb_i32(b, n->inputs[j]);
        for (int j = 0; j < n->n_outputs; j++)
            wb_i32(b, n->outputs[j]);
    }
    /* ATTRS: records first, payload after; the header's payload size is
     * patched once the payload is complete. */
    wb_u32(ab, at);
    wb_u32(ab, 0);
    wb_u64(ab, 0);
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_attrs; k++) {
            const qf_attr *a = &n->attrs[k];
            uint64_t value;
            uint32_t count;
            build_attr_payload(a, w, pay, &value, &count);
            wb_u32(ab, st_intern(&w->st, a->name));
            wb_u32(ab, (uint32_t)a->type);
            wb_u32(ab, count);
            wb_u32(ab, 0);
            wb_u64(ab, value);
        }
    }
    if (!ab->oom && !pay->oom) put_le64(ab->p + 8, pay->len);
    wb_put(ab, pay->p, pay->len);
    if (pay->oom) ab->oom = true;
}

/* How each constant is stored: its raw bytes or an encoded copy. */
typedef struct wtensor {
    const void *p;
    uint64_t len;
    uint32_t enc;
    void *owned; /* encoded copy (qf_malloc), NULL for RAW */
} wtensor;

/* Choose each constant's encoding: RAW, or with QF_QFM_STORE_AUTO the
 * smallest encoding when it saves at least one alignment unit. */
static qf_status choose_encodings(const qf_graph *g, const qf_qfm_write_options *o, wtensor *wt,
                                  qf_err *err) {
    static const uint32_t encs[] = {QF_QFM_ENC_ZSTD, QF_QFM_ENC_SPARSE_BITMASK,
                                    QF_QFM_ENC_SPARSE_BITMASK_ZSTD, QF_QFM_ENC_PALETTE};
    int level = o->zstd_level ? o->zstd_level : 12;
    for (int i = 0; i < g->n_values; i++) {
        const qf_value *v = &g->values[i];
        if (!(v->flags & QF_VAL_CONST)) continue;
        wt[i] = (wtensor){v->data, v->nbytes, QF_QFM_ENC_RAW, NULL};
        size_t es = qf_dtype_size(v->dtype);
        if (o->tensors != QF_QFM_STORE_AUTO || v->nbytes < 2 * QF_QFM_ALIGN || !es) continue;
        for (size_t k = 0; k < QF_ARRAY_LEN(encs); k++) {
            void *buf;
            size_t len;
            qf_status s = qf_qfm_tensor_encode(encs[k], v->data, v->nbytes, es, level, &buf, &len,
                                               err);
            if (s == QF_ERR_UNSUPPORTED) continue; /* e.g. more than 256 values: no palette */
            if (s) return s;
            if (len + QF_QFM_ALIGN <= wt[i].len) {
                qf_free(wt[i].owned);
                wt[i] = (wtensor){buf, len, encs[k], buf};
            } else {
                qf_free(buf);
            }
        }
    }
    return QF_OK;
}

/* TENSORS records; fills data offsets (64-aligned) and the data size. */
static void build_tensors(const qf_graph *g, const wtensor *wt, wbuf *b, uint64_t *data_size) {
    uint32_t n = 0;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].flags & QF_VAL_CONST) n++;
    wb_u32(b, n);
    wb_u32(b, 0);
    uint64_t pos = 0;
    for (int i = 0; i < g->n_values; i++) {
        const qf_value *v = &g->values[i];
        if (!(v->flags & QF_VAL_CONST)) continue;
        pos = (pos + QF_QFM_ALIGN - 1) / QF_QFM_ALIGN * QF_QFM_ALIGN;
        wb_u32(b, (uint32_t)i);
        wb_u32(b, (uint32_t)v->dtype);
        wb_u32(b, (uint32_t)v->rank);
        wb_u32(b, wt[i].enc);
        for (int d = 0; d < QF_MAX_DIMS; d++)
            wb_i64(b, d < v->rank ? v->dims[d] : 0);
        wb_u64(b, pos);
        wb_u64(b, wt[i].len);
        pos += wt[i].len;
    }
    *data_size = pos;
}

/* ---- file assembly ------------------------------------------------------- */
static const unsigned char zeros64[QF_QFM_ALIGN];

typedef struct wsection {
    uint32_t kind, flags;
    uint64_t offset, size;
    uint32_t crc;
    const void *data; /* NULL for TENSOR_DATA (streamed) */
} wsection;

/* CRC of TENSOR_DATA exactly as it will be written (data + zero padding). */
static uint32_t tensor_data_crc(const qf_graph *g, const wtensor *wt) {
    uint32_t crc = 0;
    uint64_t pos = 0;
    for (int i = 0; i < g->n_values; i++) {
        const qf_value *v = &g->values[i];
        if (!(v->flags & QF_VAL_CONST)) continue;
        uint64_t pad = (QF_QFM_ALIGN - pos % QF_QFM_ALIGN) % QF_QFM_ALIGN;
        crc = qf_crc32c(crc, zeros64, (size_t)pad);
        pos += pad;
        if (wt[i].len) crc = qf_crc32c(crc, wt[i].p, (size_t)wt[i].len);
        pos += wt[i].len;
    }
    return crc;
}

static qf_status write_padding(qf_atomic_file *f, uint64_t *pos, uint64_t to, qf_err *err) {
    while (*pos < to) {
        size_t n = (size_t)QF_MIN(to - *pos, (uint64_t)sizeof zeros64);
        qf_status s = qf_atomic_write(f, zeros64, n, err);
        if (s) return s;
        *pos += n;
    }
    return QF_OK;
}

static qf_status write_tensor_data(qf_atomic_file *f, const qf_graph *g, const wtensor *wt,
                                   uint64_t base, uint64_t *pos, qf_err *err) {
    for (int i = 0; i < g->n_values; i++) {
        const qf_value *v = &g->values[i];
        if (!(v->flags & QF_VAL_CONST)) continue;
        uint64_t rel = *pos - base;
        rel = (rel + QF_QFM_ALIGN - 1) / QF_QFM_ALIGN * QF_QFM_ALIGN;
        qf_status s = write_padding(f, pos, base + rel, err);
        if (s) return s;
        if (wt[i].len && (s = qf_atomic_write(f, wt[i].p, (size_t)wt[i].len, err))) return s;
        *pos += wt[i].len;
    }
    return QF_OK;
}

static qf_status write_file(const char *path, const wsection *sec, uint32_t n_sec,
                            const qf_graph *g, const wtensor *wt, qf_err *err) {
    unsigned char hdr[QF_QFM_HEADER_SIZE];
    unsigned char table[QF_QFM_SECTION_ENTRY_SIZE * 16];
    uint64_t table_off = QF_QFM_HEADER_SIZE;
    uint64_t file_size = n_sec ? sec[n_sec - 1].offset + sec[n_sec - 1].size
                               : table_off + (uint64_t)n_sec * QF_QFM_SECTION_ENTRY_SIZE;
    memset(table, 0, sizeof table);
    for (uint32_t i = 0; i < n_sec; i++) {
        unsigned char *e = table + i * QF_QFM_SECTION_ENTRY_SIZE;
        put_le32(e, sec[i].kind);
        put_le32(e + 4, sec[i].flags);
        put_le64(e + 8, sec[i].offset);
        put_le64(e + 16, sec[i].size);
        put_le32(e + 24, sec[i].crc);
    }
    size_t table_len = (size_t)n_sec * QF_QFM_SECTION_ENTRY_SIZE;
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, QF_QFM_MAGIC, QF_QFM_MAGIC_LEN);
    put_le32(hdr + 8, QF_QFM_VERSION);
    put_le32(hdr + 12, 0); /* flags: none defined */
    put_le32(hdr + 16, QF_QFM_HEADER_SIZE);
    put_le32(hdr + 20, n_sec);
    put_le64(hdr + 24, table_off);
    put_le64(hdr + 32, file_size);
    put_le32(hdr + 40, qf_crc32c(0, table, table_len));
    put_le32(hdr + 60, qf_crc32c(0, hdr, 60));

    qf_atomic_file f;
    qf_status s = qf_atomic_open(&f, path, err);
    if (s) return s;
    uint64_t pos = 0;
    if ((s = qf_atomic_write(&f, hdr, sizeof hdr, err))) goto fail;
    if ((s = qf_atomic_write(&f, table, table_len, err))) goto fail;
    pos = QF_QFM_HEADER_SIZE + table_len;
    for (uint32_t i = 0; i < n_sec; i++) {
        if ((s = write_padding(&f, &pos, sec[i].offset, err))) goto fail;
        if (sec[i].kind == QF_QFM_SEC_TENSOR_DATA) {
            if ((s = write_tensor_data(&f, g, wt, sec[i].offset, &pos, err))) goto fail;
        } else {
            if ((s = qf_atomic_write(&f, sec[i].data, (size_t)sec[i].size, err))) goto fail;
            pos += sec[i].size;
        }
        if (pos != sec[i].offset + sec[i].size) {
            s = qf_errf(err, QF_ERR_INTERNAL, "%s: section %u size mismatch", path, i);
            goto fail;
        }
    }
    return qf_atomic_commit(&f, err);
fail:
    qf_atomic_abort(&f);
    return s;
}

/* Section i: its logical bytes, zstd-compressed when that is smaller and
 * allowed; *owned receives the compressed copy to free. */
static qf_status make_section(wsection *sec, uint32_t kind, uint32_t flags, const void *p,
                              size_t len, const qf_qfm_write_options *o, void **owned,
                              qf_err *err) {
    *owned = NULL;
    *sec = (wsection){kind, flags, 0, len, qf_crc32c(0, p, len), p};
    if (o->raw_sections || len < QF_QFM_ALIGN) return QF_OK;
    void *z;
    size_t zlen;
    qf_status s = qf_qfm_zstd_encode(p, len, o->zstd_level ? o->zstd_level : 19, &z, &zlen, err);
    if (s) return s;
    if (zlen >= len) {
        qf_free(z);
        return QF_OK;
    }
    *owned = z;
    *sec = (wsection){kind, flags | QF_QFM_SECF_ZSTD, 0, zlen, qf_crc32c(0, z, zlen), z};
    return QF_OK;
}

qf_status qf_qfm_write(const qf_graph *g, const char *metadata_json, const char *path,
                       qf_err *err) {
    return qf_qfm_write_ex(g, metadata_json, path, NULL, err);
}

qf_status qf_qfm_write_ex(const qf_graph *g, const char *metadata_json, const char *path,
                          const qf_qfm_write_options *opt, qf_err *err) {
    if (!g || !path) return qf_errf(err, QF_ERR_INVALID_ARG, "qfm write: NULL argument");
    if (qf_host_is_big_endian())
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: qfm needs a little-endian host", path);
    qf_qfm_write_options o = opt ? *opt : (qf_qfm_write_options){0};
    if (o.zstd_level < 0 || o.zstd_level > ZSTD_maxCLevel())
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: zstd level %d outside 0..%d", path,
                       o.zstd_level, ZSTD_maxCLevel());
    qf_status s = check_graph(g, path, err);
    if (s) return s;
    size_t meta_len = metadata_json ? strlen(metadata_json) : 0;
    if (metadata_json && !qf_qfm_utf8_ok(metadata_json, meta_len))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: metadata is not valid UTF-8", path);

    wsecs w;
    wbuf strings, pay;
    memset(&w, 0, sizeof w);
    memset(&strings, 0, sizeof strings);
    memset(&pay, 0, sizeof pay);
    void *owned[9] = {0};
    uint64_t data_size = 0;
    bool bad = false;
    wtensor *wt = qf_calloc((size_t)g->n_values + 1, sizeof *wt);
    if (!wt) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory serializing the graph", path);
    if ((s = choose_encodings(g, &o, wt, err))) goto out;
    build_graph(g, &w);
    build_values(g, &w);
    build_nodes(g, &w, &pay);
    build_tensors(g, wt, &w.tensors, &data_size);
    if (!w.st.oom) build_strings(&w.st, &strings, err, path, &bad);
    if (bad) {
        s = QF_ERR_UNSUPPORTED;
        goto out;
    }
    if (w.st.oom || strings.oom || w.graph.oom || w.values.oom || w.qparams.oom || w.nodes.oom ||
        w.attrs.oom || w.tensors.oom) {
        s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory serializing the graph", path);
        goto out;
    }

    wsection sec[9];
    uint32_t n = 0;
    const wbuf *bufs[] = {&strings, &w.graph, &w.values, &w.qparams,
                          &w.nodes, &w.attrs, &w.tensors};
    const uint32_t kinds[] = {QF_QFM_SEC_STRINGS, QF_QFM_SEC_GRAPH, QF_QFM_SEC_VALUES,
                              QF_QFM_SEC_QPARAMS, QF_QFM_SEC_NODES, QF_QFM_SEC_ATTRS,
                              QF_QFM_SEC_TENSORS};
    for (size_t i = 0; i < QF_ARRAY_LEN(kinds); i++, n++)
        if ((s = make_section(&sec[n], kinds[i], QF_QFM_SECF_REQUIRED, bufs[i]->p, bufs[i]->len,
                              &o, &owned[n], err)))
            goto out;
    if (metadata_json) {
        if ((s = make_section(&sec[n], QF_QFM_SEC_METADATA_JSON, 0, metadata_json, meta_len, &o,
                              &owned[n], err)))
            goto out;
        n++;
    }
    /* the bulk goes last so everything the loader parses is at the front */
    sec[n++] = (wsection){QF_QFM_SEC_TENSOR_DATA, QF_QFM_SECF_REQUIRED, 0, data_size,
                          tensor_data_crc(g, wt), NULL};
    uint64_t pos = QF_QFM_HEADER_SIZE + (uint64_t)n * QF_QFM_SECTION_ENTRY_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        pos = (pos + QF_QFM_ALIGN - 1) / QF_QFM_ALIGN * QF_QFM_ALIGN;
        sec[i].offset = pos;
        pos += sec[i].size;
    }
    s = write_file(path, sec, n, g, wt, err);
out:
    for (size_t i = 0; i < QF_ARRAY_LEN(owned); i++)
        qf_free(owned[i]);
    for (int i = 0; i < g->n_values; i++)
        qf_free(wt[i].owned);
    qf_free(wt);
    wb_free(&strings);
    wb_free(&pay);
    wb_free(&w.graph);
    wb_free(&w.values);
    wb_free(&w.qparams);
    wb_free(&w.nodes);
    wb_free(&w.attrs);
    wb_free(&w.tensors);
    st_free(&w.st);
    return s;
}
