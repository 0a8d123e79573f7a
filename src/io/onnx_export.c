/* onnx_export.c - qf_graph -> ONNX ModelProto (protobuf-c), written
 * atomically to a file or into memory.
 *
 * Every message, array and generated string lives in one arena released at
 * the end; tensor bytes are not copied (raw_data points at the graph's own
 * buffers on little-endian hosts), and the model is streamed to the file by
 * protobuf-c's pack_to_buffer, so exporting a large model costs no second
 * copy of its weights. Large initializers can go to "<path>.data" (ONNX's
 * external data convention), which also keeps a model under protobuf's
 * 2 GiB message limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/onnx_export_internal.h"
#include "onnx.pb-c.h"

/* protobuf refuses messages of 2 GiB and more. */
#define PROTOBUF_LIMIT ((size_t)INT32_MAX)
/* External tensors start on this boundary (lets a reader map them). */
#define EXTERNAL_ALIGN 64
/* Bytes an external tensor's bookkeeping adds beyond its location string:
 * three key/value entries with two decimal numbers, data_location, tags. */
#define EXTERNAL_OVERHEAD 96

/* Per-value roles, collected once. */
enum { ROLE_INPUT = 1, ROLE_OUTPUT = 2, ROLE_INIT = 4 };

typedef struct exporter {
    const qf_graph *g;
    const char *where; /* file name (or "ONNX export") in every message */
    qf_onnx_export_options opt;
    qf_arena arena;
    const char **names; /* per value, from qf_onnx_export_names */
    int *order;         /* node order */
    uint8_t *role;      /* per value */
    int opset;
    int64_t ir_version;
    Onnx__ModelProto *model;
    Onnx__GraphProto *graph;
    /* Initializers (graph->initializer[i]) and, for those that go external,
     * their little-endian bytes and offset in the data file. */
    const uint8_t **ext_data; /* NULL = inline */
    uint64_t *ext_offset;
    size_t *ext_len;
    size_t n_external;
    const char *data_location; /* base name of the data file */
} exporter;

void qf_onnx_export_options_init(qf_onnx_export_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->symbolic_batch = true;
}

/* protobuf-c's structs take char *; packing never writes through them. */
static char *pb_str(const char *s) { return (char *)(uintptr_t)s; }

static void *xalloc(exporter *x, size_t count, size_t size) {
    size_t n;
    if (!qf_mul_size(count, size, &n)) return NULL;
    return qf_arena_alloc(&x->arena, n ? n : 1);
}

static char *xstrf(exporter *x, const char *fmt, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, fmt, v);
    return qf_arena_strdup(&x->arena, buf);
}

static const char *node_label(const qf_node *n) {
    return n->name && *n->name ? n->name : n->op_type;
}

static const char *norm_domain(const char *d) {
    if (!d || strcmp(d, "ai.onnx") == 0) return "";
    return d;
}

static bool host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* The contents in ONNX's little-endian byte order: the buffer itself on a
 * little-endian host, a swapped arena copy otherwise. NULL on OOM. */
static const uint8_t *le_bytes(exporter *x, const void *data, size_t nbytes, size_t es) {
    if (es == 1 || host_is_little_endian()) return data;
    uint8_t *c = xalloc(x, nbytes, 1);
    if (!c) return NULL;
    const uint8_t *s = data;
    for (size_t i = 0; i < nbytes; i += es)
        for (size_t b = 0; b < es; b++)
            c[i + b] = s[i + es - 1 - b];
    return c;
}

/* ---- ONNX's release table: the IR version that came with an opset ------ */
static int64_t ir_for_opset(int opset) {
    if (opset <= 18) return 8; /* IR 8 readers accept every older opset */
    if (opset <= 20) return 9;
    if (opset <= 22) return 10;
    if (opset <= QF_ONNX_EXPORT_MAX_OPSET) return 11;
    return 0;
}

/* ---- tensors ----------------------------------------------------------- */
/* A TensorProto with raw_data for t. nbytes is the size the caller holds
 * (SIZE_MAX: derive it from the shape); it must match shape and dtype. */
static qf_status make_tensor(exporter *x, const char *name, const qf_tensor *t, size_t nbytes,
                             const char *what, Onnx__TensorProto **out, qf_err *err) {
    size_t es = qf_dtype_size(t->dtype);
    if (t->dtype == QF_DT_STRING || es == 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s has data type %s, which the ONNX exporter does not support",
                       x->where, what, qf_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s has rank %d", x->where, what, t->rank);
    size_t need = es;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s has dimension %d = %lld", x->where, what, d,
                           (long long)t->dims[d]);
        if ((uint64_t)t->dims[d] > SIZE_MAX || !qf_mul_size(need, (size_t)t->dims[d], &need))
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s is too large", x->where, what);
    }
    if (nbytes == SIZE_MAX) nbytes = need;
    if (nbytes != need)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: %s holds %zu bytes, but its shape and dtype (%s) need %zu", x->where,
                       what, nbytes, qf_dtype_name(t->dtype), need);
    if (nbytes && !t->data)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s has no data", x->where, what);

    Onnx__TensorProto *tp = xalloc(x, 1, sizeof *tp);
    int64_t *dims = xalloc(x, (size_t)t->rank, sizeof *dims);
    const uint8_t *bytes = nbytes ? le_bytes(x, t->data, nbytes, es) : NULL;
    if (!tp || !dims || (nbytes && !bytes))
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    onnx__tensor_proto__init(tp);
    tp->name = name ? pb_str(name) : NULL;
    tp->n_dims = (size_t)t->rank;
    tp->dims = dims;
    for (int d = 0; d < t->rank; d++)
        dims[d] = t->dims[d];
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype; /* qf_dtype values are ONNX's codes */
    tp->has_raw_data = 1;
    tp->raw_data.len = nbytes;
    tp->raw_data.data = (uint8_t *)(uintptr_t)bytes;
    *out = tp;
    return QF_OK;
}

/* ---- value info -------------------------------------------------------- */
static qf_status make_value_info(exporter *x, int v, bool graph_io, Onnx__ValueInfoProto **out,
                                 qf_err *err) {
    const qf_value *val = &x->g->values[v];
    if (val->rank > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_FORMAT, "%s: value '%s' has rank %d", x->where, x->names[v],
                       val->rank);
    Onnx__ValueInfoProto *vi = xalloc(x, 1, sizeof *vi);
    Onnx__TypeProto *tp = xalloc(x, 1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = xalloc(x, 1, sizeof *tt);
    if (!vi || !tp || !tt) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = pb_str(x->names[v]);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)val->dtype;
    if (val->rank >= 0) { /* rank unknown: no shape at all */
        Onnx__TensorShapeProto *sh = xalloc(x, 1, sizeof *sh);
        Onnx__TensorShapeProto__Dimension **dp = xalloc(x, (size_t)val->rank, sizeof *dp);
        Onnx__TensorShapeProto__Dimension *dims = xalloc(x, (size_t)val->rank, sizeof *dims);
        if (!sh || !dp || !dims) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)val->rank;
        sh->dim = dp;
        for (int d = 0; d < val->rank; d++) {
            onnx__tensor_shape_proto__dimension__init(&dims[d]);
            dp[d] = &dims[d];
            if (val->dims[d] >= 0) {
                dims[d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                dims[d].dim_value = val->dims[d];
            } else if (graph_io && d == 0 && x->opt.symbolic_batch) {
                dims[d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                dims[d].dim_param = pb_str("N");
            } /* else: an unknown dimension, neither value nor param */
        }
        tt->shape = sh;
    }
    *out = vi;
    return QF_OK;
}

/* ---- attributes ---------------------------------------------------------- */
static qf_status make_attr(exporter *x, const qf_node *n, const qf_attr *a,
                           Onnx__AttributeProto **out, qf_err *err) {
    const char *nl = node_label(n);
    if (!a->name || !*a->name)
        return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' has an attribute without a name",
                       x->where, nl);
    Onnx__AttributeProto *ap = xalloc(x, 1, sizeof *ap);
    if (!ap) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    onnx__attribute_proto__init(ap);
    ap->name = pb_str(a->name);
    ap->has_type = 1;
    bool list = a->type == QF_ATTR_INTS || a->type == QF_ATTR_FLOATS || a->type == QF_ATTR_STRINGS;
    if (list && a->n < 0)
        return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' attribute '%s' has %d elements", x->where,
                       nl, a->name, a->n);
    size_t n_el = list ? (size_t)a->n : 0;
    bool missing = (a->type == QF_ATTR_INTS && n_el && !a->ints) ||
                   (a->type == QF_ATTR_FLOATS && n_el && !a->floats) ||
                   (a->type == QF_ATTR_STRINGS && n_el && !a->strings);
    if (missing)
        return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' attribute '%s' has no values", x->where,
                       nl, a->name);
    switch (a->type) {
    case QF_ATTR_FLOAT:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case QF_ATTR_INT:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case QF_ATTR_STRING:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        ap->has_s = 1;
        ap->s.data = (uint8_t *)pb_str(a->s ? a->s : "");
        ap->s.len = a->s ? strlen(a->s) : 0;
        break;
    case QF_ATTR_INTS:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        ap->n_ints = n_el;
        ap->ints = a->ints;
        break;
    case QF_ATTR_FLOATS:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        ap->n_floats = n_el;
        ap->floats = a->floats;
        break;
    case QF_ATTR_STRINGS: {
        ProtobufCBinaryData *s = xalloc(x, n_el, sizeof *s);
        if (!s) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
        for (size_t k = 0; k < n_el; k++) {
            const char *str = a->strings[k] ? a->strings[k] : "";
            s[k].data = (uint8_t *)pb_str(str);
            s[k].len = strlen(str);
        }
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
        ap->n_strings = n_el;
        ap->strings = s;
        break;
    }
    case QF_ATTR_TENSOR: {
        char what[256];
        snprintf(what, sizeof what, "node '%s' attribute '%s'", nl, a->name);
        qf_status st = make_tensor(x, NULL, &a->t, SIZE_MAX, what, &ap->t, err);
        if (st) return st;
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        break;
    }
    case QF_ATTR_GRAPH:
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: node '%s' (%s): attribute '%s' is a graph, and subgraphs cannot be "
                       "exported",
                       x->where, nl, n->op_type, a->name);
    default:
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: node '%s' (%s): attribute '%s' has a type the exporter does not "
                       "support",
                       x->where, nl, n->op_type, a->name);
    }
    *out = ap;
    return QF_OK;
}

/* ---- nodes --------------------------------------------------------------- */
static char **io_names(exporter *x, const int *idx, int n) {
    char **s = xalloc(x, (size_t)n, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < n; i++)
        s[i] = pb_str(idx[i] >= 0 ? x->names[idx[i]] : ""); /* "" = omitted */
    return s;
}

static qf_status make_node(exporter *x, const qf_node *n, Onnx__NodeProto **out, qf_err *err) {
    Onnx__NodeProto *np = xalloc(x, 1, sizeof *np);
    char **ins = io_names(x, n->inputs, n->n_inputs);
    char **outs = io_names(x, n->outputs, n->n_outputs);
    Onnx__AttributeProto **attrs = xalloc(x, (size_t)n->n_attrs, sizeof *attrs);
    if (!np || !ins || !outs || !attrs)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    onnx__node_proto__init(np);
    np->name = n->name && *n->name ? pb_str(n->name) : NULL;
    np->op_type = pb_str(n->op_type);
    const char *dom = norm_domain(n->domain);
    np->domain = *dom ? pb_str(dom) : NULL;
    np->n_input = (size_t)n->n_inputs;
    np->input = ins;
    np->n_output = (size_t)n->n_outputs;
    np->output = outs;
    for (int i = 0; i < n->n_attrs; i++) {
        qf_status st = make_attr(x, n, &n->attrs[i], &attrs[i], err);
        if (st) return st;
        for (int j = 0; j < i; j++)
            if (strcmp(n->attrs[j].name, n->attrs[i].name) == 0)
                return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s': attribute '%s' appears twice",
                               x->where, node_label(n), n->attrs[i].name);
    }
    np->n_attribute = (size_t)n->n_attrs;
    np->attribute = attrs;
    *out = np;
    return QF_OK;
}

/* ---- opsets ------------------------------------------------------------ */
static Onnx__OperatorSetIdProto *make_opset(exporter *x, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *o = xalloc(x, 1, sizeof *o);
    if (!o) return NULL;
    onnx__operator_set_id_proto__init(o);
    o->domain = pb_str(domain);
    o->has_version = 1;
    o->version = version;
    return o;
}

/* Default-domain opset and IR version; opset_import for every domain. */
static qf_status make_opsets(exporter *x, qf_err *err) {
    const qf_graph *g = x->g;
    int max_node = 0;
    const qf_node *max_at = NULL;
    for (int k = 0; k < g->n_nodes; k++) {
        const qf_node *n = &g->nodes[k];
        if (!*norm_domain(n->domain) && n->opset > max_node) {
            max_node = n->opset;
            max_at = n;
        }
    }
    if (x->opt.opset < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: opset %d requested", x->where, x->opt.opset);
    if (x->opt.opset && x->opt.opset < max_node)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: opset %d requested, but node '%s' (%s) is at opset %d", x->where,
                       x->opt.opset, node_label(max_at), max_at->op_type, max_node);
    x->opset = x->opt.opset ? x->opt.opset : QF_MAX(g->opset, max_node);
    if (x->opset <= 0) x->opset = QF_ONNX_EXPORT_FALLBACK_OPSET;
    x->ir_version = x->opt.ir_version ? x->opt.ir_version : ir_for_opset(x->opset);
    if (x->ir_version == 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: no known IR version goes with opset %d (the table ends at %d); set "
                       "ir_version",
                       x->where, x->opset, QF_ONNX_EXPORT_MAX_OPSET);
    if (x->ir_version < 3)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: IR version %lld requested; opset imports need IR version 3 or later",
                       x->where, (long long)x->ir_version);

    /* One entry per domain, in order of first use; default domain first. */
    size_t nn = g->n_nodes > 0 ? (size_t)g->n_nodes : 0;
    Onnx__OperatorSetIdProto **ops = xalloc(x, nn + 1, sizeof *ops);
    if (!ops || !(ops[0] = make_opset(x, "", x->opset)))
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    size_t n_ops = 1;
    for (int k = 0; k < g->n_nodes; k++) {
        const char *dom = norm_domain(g->nodes[k].domain);
        int64_t ver = g->nodes[k].opset > 0 ? g->nodes[k].opset : 1;
        if (!*dom) continue;
        size_t i = 1;
        while (i < n_ops && strcmp(ops[i]->domain, dom) != 0)
            i++;
        if (i < n_ops) {
            if (ver > ops[i]->version) ops[i]->version = ver;
            continue;
        }
        if (!(ops[n_ops++] = make_opset(x, dom, ver)))
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    }
    x->model->n_opset_import = n_ops;
    x->model->opset_import = ops;
    return QF_OK;
}

/* ---- graph --------------------------------------------------------------- */
static qf_status collect_roles(exporter *x, qf_err *err) {
    const qf_graph *g = x->g;
    x->role = xalloc(x, g->n_values > 0 ? (size_t)g->n_values : 0, 1);
    if (!x->role) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    for (int i = 0; i < g->n_inputs; i++)
        if (!(g->values[g->inputs[i]].flags & QF_VAL_CONST)) x->role[g->inputs[i]] |= ROLE_INPUT;
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        x->role[v] |= ROLE_OUTPUT;
        if (g->values[v].flags & QF_VAL_CONST) x->role[v] |= ROLE_INIT;
    }
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_inputs; i++) {
            int v = g->nodes[k].inputs[i];
            if (v >= 0 && (g->values[v].flags & QF_VAL_CONST)) x->role[v] |= ROLE_INIT;
        }
    return QF_OK;
}

static qf_status io_info(exporter *x, const int *vals, int n, bool inputs, qf_err *err) {
    Onnx__ValueInfoProto **list = xalloc(x, (size_t)n, sizeof *list);
    if (!list) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    size_t count = 0;
    for (int i = 0; i < n; i++) {
        int v = vals[i];
        if (inputs && !(x->role[v] & ROLE_INPUT)) continue; /* a constant */
        if (x->g->values[v].dtype <= QF_DT_UNDEF || x->g->values[v].dtype >= QF_DT_COUNT ||
            x->g->values[v].dtype == QF_DT_STRING)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: graph %s '%s' has no supported dtype (run shape inference "
                           "first)",
                           x->where, inputs ? "input" : "output", x->names[v]);
        qf_status st = make_value_info(x, v, true, &list[count++], err);
        if (st) return st;
    }
    if (inputs) {
        x->graph->n_input = count;
        x->graph->input = list;
    } else {
        x->graph->n_output = count;
        x->graph->output = list;
    }
    return QF_OK;
}

static qf_status add_initializers(exporter *x, qf_err *err) {
    const qf_graph *g = x->g;
    size_t n = 0;
    for (int v = 0; v < g->n_values; v++)
        n += (x->role[v] & ROLE_INIT) != 0;
    Onnx__TensorProto **inits = xalloc(x, n, sizeof *inits);
    x->ext_data = xalloc(x, n, sizeof *x->ext_data);
    x->ext_offset = xalloc(x, n, sizeof *x->ext_offset);
    x->ext_len = xalloc(x, n, sizeof *x->ext_len);
    if (!inits || !x->ext_data || !x->ext_offset || !x->ext_len)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    size_t k = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (!(x->role[v] & ROLE_INIT)) continue;
        const qf_value *val = &g->values[v];
        char what[256];
        snprintf(what, sizeof what, "constant '%s'", x->names[v]);
        qf_tensor t = qf_value_tensor(val);
        t.rank = val->rank; /* qf_value_tensor maps an unknown rank to 0 */
        qf_status st = make_tensor(x, x->names[v], &t, val->nbytes, what, &inits[k++], err);
        if (st) return st;
    }
    x->graph->n_initializer = n;
    x->graph->initializer = inits;
    if (x->ir_version >= 4) return QF_OK;
    /* IR 3: every initializer must also be declared as a graph input. */
    size_t n_in = x->graph->n_input;
    Onnx__ValueInfoProto **in = xalloc(x, n_in + n, sizeof *in);
    if (!in) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    memcpy(in, x->graph->input, n_in * sizeof *in);
    for (int v = 0; v < g->n_values; v++) {
        if (!(x->role[v] & ROLE_INIT)) continue;
        qf_status st = make_value_info(x, v, false, &in[n_in++], err);
        if (st) return st;
    }
    x->graph->n_input = n_in;
    x->graph->input = in;
    return QF_OK;
}

/* Intermediate values whose dtype is known. */
static qf_status add_value_info(exporter *x, qf_err *err) {
    const qf_graph *g = x->g;
    size_t n = 0;
    for (int v = 0; v < g->n_values; v++)
        n += x->names[v] != NULL;
    Onnx__ValueInfoProto **list = xalloc(x, n, sizeof *list);
    if (!list) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    size_t count = 0;
    for (int v = 0; v < g->n_values; v++) {
        qf_dtype dt = g->values[v].dtype;
        if (!x->names[v] || x->role[v] || (g->values[v].flags & QF_VAL_CONST)) continue;
        if (dt <= QF_DT_UNDEF || dt >= QF_DT_COUNT || dt == QF_DT_STRING) continue;
        qf_status st = make_value_info(x, v, false, &list[count++], err);
        if (st) return st;
    }
    x->graph->n_value_info = count;
    x->graph->value_info = list;
    return QF_OK;
}

static qf_status add_nodes(exporter *x, qf_err *err) {
    const qf_graph *g = x->g;
    size_t nn = g->n_nodes > 0 ? (size_t)g->n_nodes : 0;
    Onnx__NodeProto **nodes = xalloc(x, nn, sizeof *nodes);
    if (!nodes) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    for (size_t i = 0; i < nn; i++) {
        qf_status st = make_node(x, &g->nodes[x->order[i]], &nodes[i], err);
        if (st) return st;
    }
    x->graph->n_node = nn;
    x->graph->node = nodes;
    return QF_OK;
}

static qf_status build(exporter *x, qf_err *err) {
    const qf_graph *g = x->g;
    qf_status st;
    if ((st = qf_onnx_export_names(g, x->where, &x->arena, &x->names, err))) return st;
    if ((st = qf_onnx_export_order(g, x->where, &x->arena, &x->order, err))) return st;
    if ((st = collect_roles(x, err))) return st;
    x->model = xalloc(x, 1, sizeof *x->model);
    x->graph = xalloc(x, 1, sizeof *x->graph);
    char *version = qf_arena_alloc(&x->arena, 32);
    if (!x->model || !x->graph || !version)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
    onnx__model_proto__init(x->model);
    onnx__graph_proto__init(x->graph);
    snprintf(version, 32, "%d.%d.%d", QF_VERSION_MAJOR, QF_VERSION_MINOR, QF_VERSION_PATCH);
    x->model->producer_name = pb_str(x->opt.producer_name ? x->opt.producer_name : "qforge");
    x->model->producer_version =
        pb_str(x->opt.producer_version ? x->opt.producer_version : version);
    x->model->graph = x->graph;
    /* The checker insists on a graph name. */
    x->graph->name = pb_str(g->name && *g->name ? g->name : "qforge");
    if ((st = make_opsets(x, err))) return st;
    x->model->has_ir_version = 1;
    x->model->ir_version = x->ir_version;
    if ((st = io_info(x, g->inputs, g->n_inputs, true, err))) return st;
    if ((st = io_info(x, g->outputs, g->n_outputs, false, err))) return st;
    if ((st = add_initializers(x, err))) return st;
    if ((st = add_value_info(x, err))) return st;
    return add_nodes(x, err);
}

/* ---- external data ------------------------------------------------------- */
typedef struct spill_cand {
    size_t bytes;
    size_t index;
} spill_cand;

static int cmp_spill(const void *a, const void *b) {
    const spill_cand *p = a, *q = b;
    if (p->bytes != q->bytes) return p->bytes < q->bytes ? 1 : -1; /* largest first */
    return p->index < q->index ? -1 : p->index > q->index;
}

static void mark_external(exporter *x, size_t i) {
    Onnx__TensorProto *tp = x->graph->initializer[i];
    x->ext_data[i] = tp->raw_data.data ? tp->raw_data.data : (const uint8_t *)"";
    x->ext_len[i] = tp->raw_data.len;
    x->n_external++;
}

/* Point the spilled initializers at the data file (offsets in order). */
static qf_status set_external_fields(exporter *x, qf_err *err) {
    uint64_t off = 0;
    for (size_t i = 0; i < x->graph->n_initializer; i++) {
        if (!x->ext_data[i]) continue;
        Onnx__TensorProto *tp = x->graph->initializer[i];
        off = (off + EXTERNAL_ALIGN - 1) / EXTERNAL_ALIGN * EXTERNAL_ALIGN;
        x->ext_offset[i] = off;
        Onnx__StringStringEntryProto **kv = xalloc(x, 3, sizeof *kv);
        Onnx__StringStringEntryProto *e = xalloc(x, 3, sizeof *e);
        char *off_s = xstrf(x, "%lld", (long long)off);
        char *len_s = xstrf(x, "%lld", (long long)tp->raw_data.len);
        if (!kv || !e || !off_s || !len_s)
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
        static const char *const keys[3] = {"location", "offset", "length"};
        const char *vals[3] = {x->data_location, off_s, len_s};
        for (int k = 0; k < 3; k++) {
            onnx__string_string_entry_proto__init(&e[k]);
            e[k].key = pb_str(keys[k]);
            e[k].value = pb_str(vals[k]);
            kv[k] = &e[k];
        }
        off += tp->raw_data.len;
        tp->n_external_data = 3;
        tp->external_data = kv;
        tp->has_data_location = 1;
        tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        tp->has_raw_data = 0;
        tp->raw_data.len = 0;
        tp->raw_data.data = NULL;
    }
    return QF_OK;
}

/* Choose the initializers that go external: those at or above the
 * threshold, then the largest others while the model would be too big. */
static qf_status plan_external(exporter *x, bool to_file, qf_err *err) {
    Onnx__GraphProto *gp = x->graph;
    size_t limit = x->opt.max_model_bytes ? x->opt.max_model_bytes : PROTOBUF_LIMIT;
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (x->opt.external_threshold &&
            gp->initializer[i]->raw_data.len >= x->opt.external_threshold)
            mark_external(x, i);
    size_t per_ext = (x->data_location ? strlen(x->data_location) : 0) + EXTERNAL_OVERHEAD;
    size_t size = onnx__model_proto__get_packed_size(x->model);
    /* Estimated size once the marked ones leave (they are still inline). */
    size_t est = size;
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (x->ext_data[i]) est = est - gp->initializer[i]->raw_data.len + per_ext;
    if (est > limit && gp->n_initializer) {
        spill_cand *c = qf_calloc(gp->n_initializer, sizeof *c);
        if (!c) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", x->where);
        size_t nc = 0;
        for (size_t i = 0; i < gp->n_initializer; i++)
            if (!x->ext_data[i]) c[nc++] = (spill_cand){gp->initializer[i]->raw_data.len, i};
        qsort(c, nc, sizeof *c, cmp_spill);
        for (size_t k = 0; k < nc && est > limit && c[k].bytes > per_ext; k++) {
            mark_external(x, c[k].index);
            est = est - c[k].bytes + per_ext;
        }
        qf_free(c);
    }
    if (x->n_external && !to_file)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: the model needs external data (%zu tensors), which an in-memory "
                       "export cannot hold",
                       x->where, x->n_external);
    qf_status st = set_external_fields(x, err);
    if (st) return st;
    size = onnx__model_proto__get_packed_size(x->model);
    if (size > limit)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: the model takes %zu bytes even with its large tensors in external "
                       "data (limit %zu)",
                       x->where, size, limit);
    return QF_OK;
}

/* ---- writing --------------------------------------------------------------- */
/* protobuf-c streams the packed model through this; errors stick. */
typedef struct file_sink {
    ProtobufCBuffer base;
    qf_atomic_file *f;
    qf_status st;
    qf_err *err;
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_sink *s = (file_sink *)b;
    if (!s->st) s->st = qf_atomic_write(s->f, data, len, s->err);
}

static qf_status write_data_file(exporter *x, qf_atomic_file *df, qf_err *err) {
    static const uint8_t zeros[EXTERNAL_ALIGN];
    uint64_t pos = 0;
    for (size_t i = 0; i < x->graph->n_initializer; i++) {
        if (!x->ext_data[i]) continue;
        size_t pad = (size_t)(x->ext_offset[i] - pos);
        size_t len = x->ext_len[i];
        qf_status st = qf_atomic_write(df, zeros, pad, err);
        if (!st) st = qf_atomic_write(df, x->ext_data[i], len, err);
        if (st) return st;
        pos = x->ext_offset[i] + len;
    }
    return QF_OK;
}

static qf_status write_files(exporter *x, const char *path, const char *data_path, qf_err *err) {
    qf_atomic_file df, mf;
    qf_status st;
    bool have_data = x->n_external > 0;
    if (have_data) {
        if ((st = qf_atomic_open(&df, data_path, err))) return st;
        if ((st = write_data_file(x, &df, err))) {
            qf_atomic_abort(&df);
            return st;
        }
    }
    if ((st = qf_atomic_open(&mf, path, err))) {
        if (have_data) qf_atomic_abort(&df);
        return st;
    }
    file_sink sink = {{sink_append}, &mf, QF_OK, err};
    onnx__model_proto__pack_to_buffer(x->model, &sink.base);
    if (sink.st) {
        qf_atomic_abort(&mf);
        if (have_data) qf_atomic_abort(&df);
        return sink.st;
    }
    /* Data first: a model never points at a data file that is not there. */
    if (have_data && (st = qf_atomic_commit(&df, err))) {
        qf_atomic_abort(&mf);
        return st;
    }
    if ((st = qf_atomic_commit(&mf, err))) {
        if (have_data) remove(data_path);
        return st;
    }
    return QF_OK;
}

/* ---- entry points ------------------------------------------------------- */
static qf_status export_init(exporter *x, const qf_graph *g, const char *where,
                             const qf_onnx_export_options *opt, qf_err *err) {
    memset(x, 0, sizeof *x);
    qf_arena_init(&x->arena);
    x->g = g;
    x->where = where;
    if (opt)
        x->opt = *opt;
    else
        qf_onnx_export_options_init(&x->opt);
    if (!g) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: no graph", where);
    if (g->n_values < 0 || g->n_nodes < 0 || g->n_inputs < 0 || g->n_outputs < 0 ||
        (g->n_values && !g->values) || (g->n_nodes && !g->nodes) || (g->n_inputs && !g->inputs) ||
        (g->n_outputs && !g->outputs))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: malformed graph", where);
    return QF_OK;
}

qf_status qf_onnx_export(const qf_graph *g, const char *path, const qf_onnx_export_options *opt,
                         qf_err *err) {
    if (!path || !*path) return qf_errf(err, QF_ERR_INVALID_ARG, "ONNX export: no output path");
    exporter x;
    qf_status st = export_init(&x, g, path, opt, err);
    char *data_path = NULL;
    if (!st) {
        size_t n = strlen(path) + 6;
        data_path = qf_arena_alloc(&x.arena, n);
        if (!data_path) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!st) {
        snprintf(data_path, strlen(path) + 6, "%s.data", path);
        const char *slash = strrchr(data_path, '/');
        x.data_location = slash ? slash + 1 : data_path;
        st = build(&x, err);
    }
    if (!st) st = plan_external(&x, true, err);
    if (!st) st = write_files(&x, path, data_path, err);
    qf_arena_free(&x.arena);
    return st;
}

qf_status qf_onnx_export_mem(const qf_graph *g, const qf_onnx_export_options *opt, void **buf,
                             size_t *len, qf_err *err) {
    *buf = NULL;
    *len = 0;
    exporter x;
    qf_status st = export_init(&x, g, "ONNX export", opt, err);
    if (!st) st = build(&x, err);
    if (!st) st = plan_external(&x, false, err);
    if (!st) {
        size_t n = onnx__model_proto__get_packed_size(x.model);
        uint8_t *p = qf_malloc(n ? n : 1);
        if (!p) {
            st = qf_errf(err, QF_ERR_NOMEM, "ONNX export: out of memory (%zu bytes)", n);
        } else {
            *len = onnx__model_proto__pack(x.model, p);
            *buf = p;
        }
    }
    qf_arena_free(&x.arena);
    return st;
}
