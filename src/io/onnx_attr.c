/* onnx_attr.c - decode ONNX AttributeProto into qf_attr (graph.h). Every
 * string, array and tensor body is copied into the graph arena, so the
 * attribute outlives the protobuf message it came from. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "io/onnx_internal.h"

Onnx__AttributeProto__AttributeType qf_onnx_attr_type(const Onnx__AttributeProto *ap) {
    if (ap->has_type) return ap->type;
    /* IR version 1 left `type` out: infer it from the field in use. */
    if (ap->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (ap->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (ap->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (ap->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (ap->g) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    if (ap->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (ap->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (ap->n_strings) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
    if (ap->n_graphs) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS;
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

static const char *arena_bytes(qf_graph *g, const ProtobufCBinaryData *b) {
    char *s = qf_graph_alloc(g, b->len + 1);
    if (s && b->len) memcpy(s, b->data, b->len);
    return s;
}

static void *arena_copy(qf_graph *g, const void *src, size_t count, size_t elem) {
    size_t bytes;
    if (!qf_mul_size(count, elem, &bytes)) return NULL;
    void *p = qf_graph_alloc(g, bytes ? bytes : 1);
    if (p && bytes) memcpy(p, src, bytes);
    return p;
}

qf_status qf_onnx_decode_attr(qf_graph *g, const qf_onnx_ctx *cx, const char *node_name,
                              Onnx__AttributeProto *ap, qf_attr *out, qf_err *err) {
    memset(out, 0, sizeof *out);
    if (!ap->name || !*ap->name)
        return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' has an attribute without a name",
                       cx->path, node_name);
    out->name = qf_arena_strdup(&g->arena, ap->name);
    if (!out->name) goto nomem;
    switch (qf_onnx_attr_type(ap)) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        out->type = QF_ATTR_FLOAT;
        out->f = ap->f;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        out->type = QF_ATTR_INT;
        out->i = ap->i;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        out->type = QF_ATTR_STRING;
        out->s = arena_bytes(g, &ap->s);
        if (!out->s) goto nomem;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        char what[256];
        snprintf(what, sizeof what, "node '%s' attribute '%s'", node_name, ap->name);
        if (!ap->t)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s is a tensor attribute without a tensor",
                           cx->path, what);
        size_t nbytes;
        qf_tensor t;
        qf_status st = qf_onnx_tensor_from_proto(ap->t, cx, what, &t, &nbytes, err);
        if (st) return st;
        void *copy = arena_copy(g, t.data, nbytes, 1);
        qf_free_aligned(t.data);
        if (!copy) goto nomem;
        t.data = copy;
        out->type = QF_ATTR_TENSOR;
        out->t = t;
        break;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
        /* Subgraphs (If/Loop/Scan) are recorded but not decoded: no
         * supported op takes one, and parse_ops reports those ops. */
        out->type = QF_ATTR_GRAPH;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        if (ap->n_floats > INT_MAX) goto too_long;
        out->type = QF_ATTR_FLOATS;
        out->n = (int)ap->n_floats;
        out->floats = arena_copy(g, ap->floats, ap->n_floats, sizeof(float));
        if (!out->floats) goto nomem;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        if (ap->n_ints > INT_MAX) goto too_long;
        out->type = QF_ATTR_INTS;
        out->n = (int)ap->n_ints;
        out->ints = arena_copy(g, ap->ints, ap->n_ints, sizeof(int64_t));
        if (!out->ints) goto nomem;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: {
        if (ap->n_strings > INT_MAX) goto too_long;
        const char **list = qf_graph_alloc(g, sizeof(char *) * (ap->n_strings + 1));
        if (!list) goto nomem;
        for (size_t k = 0; k < ap->n_strings; k++) {
            list[k] = arena_bytes(g, &ap->strings[k]);
            if (!list[k]) goto nomem;
        }
        out->type = QF_ATTR_STRINGS;
        out->n = (int)ap->n_strings;
        out->strings = list;
        break;
    }
    default:
        /* TENSORS, SPARSE_TENSOR(S), TYPE_PROTO(S): only ops qforge does not
         * implement use them; keep the name so they can be reported. */
        out->type = QF_ATTR_UNDEF;
        break;
    }
    return QF_OK;
too_long:
    return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' attribute '%s' is too long", cx->path,
                   node_name, ap->name);
nomem:
    return qf_errf(err, QF_ERR_NOMEM, "%s: node '%s': out of memory decoding attributes", cx->path,
                   node_name);
}
