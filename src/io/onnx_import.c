/* onnx_import.c - ONNX ModelProto -> qf_graph.
 *
 * One pass over the decoded model: initializers become constant values
 * (their weight buffers are adopted from the decoder, not copied), graph
 * inputs that are not initializers become inputs, Constant nodes are folded
 * into constant values, every other node is added with its decoded
 * attributes, and declared types (inputs, outputs, value_info) give values
 * their dtype and shape. Then the graph is sorted and its ops parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/onnx_internal.h"

#define MIN_OPSET 7
#define MAX_OPSET 21
/* Declared dims beyond this are corrupt data, not real models. */
#define MAX_DECLARED_DIM ((int64_t)1 << 31)
/* No real op has more; the cap keeps the duplicate check cheap on hostile input. */
#define MAX_NODE_ATTRS 1024
/* Marks an initializer name whose value is not created yet. */
#define PENDING_INITIALIZER (-2)

/* ---- name -> value index (open addressing; sized once, never full) ---- */
typedef struct name_map {
    const char **keys; /* NULL = empty slot */
    int *vals;
    size_t mask;
} name_map;

static size_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

static bool map_init(name_map *m, size_t max_entries) {
    size_t cap = 16;
    while (cap < max_entries * 2 + 1) {
        if (cap > SIZE_MAX / 4) return false;
        cap *= 2;
    }
    m->keys = qf_calloc(cap, sizeof *m->keys);
    m->vals = qf_calloc(cap, sizeof *m->vals);
    m->mask = cap - 1;
    return m->keys && m->vals;
}

static void map_free(name_map *m) {
    qf_free(m->keys);
    qf_free(m->vals);
}

/* Slot holding `key`, or the empty slot where it would go. */
static size_t map_slot(const name_map *m, const char *key) {
    size_t i = hash_name(key) & m->mask;
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & m->mask;
    return i;
}

/* ---- builder ---------------------------------------------------------- */
typedef struct builder {
    qf_graph *g;
    qf_onnx_ctx cx;
    Onnx__ModelProto *m;
    name_map names;
} builder;

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static const char *norm_domain(const char *d) {
    if (!d || strcmp(d, "ai.onnx") == 0) return "";
    return d;
}

/* Value of that name, created (type unknown) on first mention; -1 on OOM. */
static int value_for(builder *b, const char *name) {
    size_t s = map_slot(&b->names, name);
    if (b->names.keys[s]) return b->names.vals[s];
    int v = qf_graph_add_value(b->g, name, QF_DT_UNDEF, -1, NULL);
    if (v < 0) return -1;
    b->names.keys[s] = b->g->values[v].name;
    b->names.vals[s] = v;
    return v;
}

/* Declared type of a ValueInfo. `strict` (graph inputs/outputs): anything
 * qforge cannot represent is an error; otherwise (value_info, which is only
 * a hint) it is ignored. Corrupt dims are errors either way. */
static qf_status info_type(builder *b, const Onnx__ValueInfoProto *vi, const char *role,
                           bool strict, qf_dtype *dt, int *rank, int64_t *dims, qf_err *err) {
    const char *path = b->cx.path, *name = str_or_empty(vi->name);
    *dt = QF_DT_UNDEF;
    *rank = -1;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp) return QF_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        if (!strict || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) return QF_OK;
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s '%s' is not a tensor (sequence, map, optional and sparse values "
                       "are not supported)",
                       path, role, name);
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        char what[256];
        snprintf(what, sizeof what, "%s '%s'", role, name);
        qf_status st = qf_onnx_dtype(tt->elem_type, &b->cx, what, dt, strict ? err : NULL);
        if (st && strict) return st;
        if (st) *dt = QF_DT_UNDEF;
    }
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (!sh) return QF_OK;
    if (sh->n_dim > QF_MAX_DIMS) {
        if (!strict) return QF_OK;
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: %s '%s' has %zu dimensions; qforge supports at most %d", path, role,
                       name, sh->n_dim, QF_MAX_DIMS);
    }
    for (size_t i = 0; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0 || d->dim_value > MAX_DECLARED_DIM)
                return qf_errf(err, QF_ERR_FORMAT, "%s: %s '%s': dimension %zu is %lld", path, role,
                               name, i, (long long)d->dim_value);
            dims[i] = d->dim_value;
        } else {
            dims[i] = -1; /* dim_param or unset: bound at run time */
        }
    }
    *rank = (int)sh->n_dim;
    return QF_OK;
}

/* Apply a declared type to a value unless it already knows better. */
static qf_status merge_info(builder *b, int v, const Onnx__ValueInfoProto *vi, const char *role,
                            bool strict, qf_err *err) {
    qf_dtype dt;
    int rank;
    int64_t dims[QF_MAX_DIMS];
    qf_status st = info_type(b, vi, role, strict, &dt, &rank, dims, err);
    if (st) return st;
    qf_value *val = &b->g->values[v];
    if (val->flags & QF_VAL_CONST) return QF_OK; /* the data defines it */
    if (val->dtype == QF_DT_UNDEF) val->dtype = dt;
    if (val->rank < 0 && rank >= 0) {
        val->rank = rank;
        for (int i = 0; i < rank; i++)
            val->dims[i] = dims[i];
    }
    return QF_OK;
}

static qf_status read_opsets(builder *b, qf_err *err) {
    int64_t dflt = -1;
    for (size_t i = 0; i < b->m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = b->m->opset_import[i];
        if (*norm_domain(o->domain) == 0 && o->version > dflt) dflt = o->version;
    }
    if (dflt < 0) {
        /* Legal when every node is in another domain (e.g. the training
         * ops of ai.onnx.preview.training); parse_ops then names them. */
        const Onnx__GraphProto *gp = b->m->graph;
        for (size_t i = 0; i < gp->n_node; i++)
            if (!*norm_domain(gp->node[i]->domain))
                return qf_errf(err, QF_ERR_FORMAT,
                               "%s: the model imports no ONNX opset (opset_import has no entry "
                               "for the default domain)",
                               b->cx.path);
        b->g->opset = 0;
        return QF_OK;
    }
    if (dflt < MIN_OPSET || dflt > MAX_OPSET)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: ONNX opset %lld is not supported (qforge supports opsets %d to %d)",
                       b->cx.path, (long long)dflt, MIN_OPSET, MAX_OPSET);
    b->g->opset = (int)dflt;
    return QF_OK;
}

/* Opset version of a node's domain (highest import wins, as in ONNX); 0 for
 * a custom domain the model forgot to import (its ops are reported as
 * unsupported anyway, which is the more useful message). */
static int domain_opset(const builder *b, const char *domain) {
    if (!*domain) return b->g->opset;
    int64_t best = 0;
    for (size_t i = 0; i < b->m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = b->m->opset_import[i];
        if (strcmp(norm_domain(o->domain), domain) == 0 && o->version > best) best = o->version;
    }
    return best > INT32_MAX ? INT32_MAX : (int)best;
}

static qf_status add_initializers(builder *b, qf_err *err) {
    const Onnx__GraphProto *gp = b->m->graph;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        size_t s = map_slot(&b->names, tp->name);
        char what[256];
        snprintf(what, sizeof what, "initializer '%s'", tp->name);
        qf_tensor t;
        size_t nbytes;
        qf_status st = qf_onnx_tensor_from_proto(tp, &b->cx, what, &t, &nbytes, err);
        if (st) return st;
        int v = qf_graph_add_value(b->g, tp->name, t.dtype, t.rank, t.dims);
        if (v < 0) {
            qf_free_aligned(t.data);
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", b->cx.path);
        }
        qf_graph_set_const_owned(b->g, v, t.dtype, t.rank, t.dims, t.data, nbytes);
        b->names.keys[s] = b->g->values[v].name;
        b->names.vals[s] = v;
    }
    return QF_OK;
}

static qf_status add_inputs(builder *b, qf_err *err) {
    const Onnx__GraphProto *gp = b->m->graph;
    /* Initializer names first: old exporters also list every initializer
     * among the graph inputs, and those are constants, not inputs. */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const char *name = gp->initializer[i]->name;
        if (!name || !*name)
            return qf_errf(err, QF_ERR_FORMAT, "%s: initializer #%zu has no name", b->cx.path, i);
        size_t s = map_slot(&b->names, name);
        if (b->names.keys[s])
            return qf_errf(err, QF_ERR_FORMAT, "%s: initializer '%s' appears twice", b->cx.path,
                           name);
        b->names.keys[s] = name;
        b->names.vals[s] = PENDING_INITIALIZER;
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name)
            return qf_errf(err, QF_ERR_FORMAT, "%s: graph input #%zu has no name", b->cx.path, i);
        size_t s = map_slot(&b->names, vi->name);
        if (b->names.keys[s]) {
            if (b->names.vals[s] == PENDING_INITIALIZER) continue;
            return qf_errf(err, QF_ERR_FORMAT, "%s: graph input '%s' is listed twice", b->cx.path,
                           vi->name);
        }
        qf_dtype dt;
        int rank;
        int64_t dims[QF_MAX_DIMS];
        qf_status st = info_type(b, vi, "input", true, &dt, &rank, dims, err);
        if (st) return st;
        int v = qf_graph_add_value(b->g, vi->name, dt, rank, dims);
        if (v < 0 || qf_graph_add_input(b->g, v) != QF_OK)
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", b->cx.path);
        b->names.keys[s] = b->g->values[v].name;
        b->names.vals[s] = v;
    }
    return QF_OK;
}

static bool is_constant_value_attr(const char *name) {
    static const char *const names[] = {"value",         "value_float", "value_floats",
                                        "value_int",     "value_ints",  "value_string",
                                        "value_strings", "sparse_value"};
    for (size_t i = 0; i < QF_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

/* A Constant node becomes a constant value; the node itself is dropped. */
static qf_status fold_constant(builder *b, Onnx__NodeProto *np, const char *node_name,
                               qf_err *err) {
    const char *path = b->cx.path;
    if (np->n_output != 1 || !np->output[0][0])
        return qf_errf(err, QF_ERR_FORMAT, "%s: Constant node '%s' must have exactly one output",
                       path, node_name);
    Onnx__AttributeProto *ap = NULL;
    int n_values = 0;
    for (size_t i = 0; i < np->n_attribute; i++) {
        Onnx__AttributeProto *a = np->attribute[i];
        if (a->name && is_constant_value_attr(a->name)) {
            ap = a;
            n_values++;
        }
    }
    if (n_values != 1)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: Constant node '%s' must have exactly one value attribute (has %d)",
                       path, node_name, n_values);
    int v = value_for(b, np->output[0]);
    if (v < 0) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    if (b->g->values[v].flags & (QF_VAL_CONST | QF_VAL_INPUT))
        return qf_errf(err, QF_ERR_FORMAT, "%s: value '%s' is produced twice (node '%s')", path,
                       b->g->values[v].name, node_name);

    Onnx__AttributeProto__AttributeType type = qf_onnx_attr_type(ap);
    Onnx__AttributeProto__AttributeType want;
    qf_dtype dt;
    size_t n = 1;
    if (strcmp(ap->name, "value") == 0) {
        want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        dt = QF_DT_UNDEF;
    } else if (strcmp(ap->name, "value_float") == 0) {
        want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        dt = QF_DT_F32;
    } else if (strcmp(ap->name, "value_floats") == 0) {
        want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        dt = QF_DT_F32;
        n = ap->n_floats;
    } else if (strcmp(ap->name, "value_int") == 0) {
        want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        dt = QF_DT_I64;
    } else if (strcmp(ap->name, "value_ints") == 0) {
        want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        dt = QF_DT_I64;
        n = ap->n_ints;
    } else {
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: Constant node '%s': attribute '%s' is not supported", path, node_name,
                       ap->name);
    }
    if (type != want)
        return qf_errf(err, QF_ERR_FORMAT, "%s: Constant node '%s': attribute '%s' has type %d",
                       path, node_name, ap->name, (int)type);

    qf_tensor t;
    size_t nbytes;
    memset(&t, 0, sizeof t);
    if (want == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) {
        char what[256];
        snprintf(what, sizeof what, "Constant node '%s'", node_name);
        if (!ap->t) return qf_errf(err, QF_ERR_FORMAT, "%s: %s has no tensor", path, what);
        qf_status st = qf_onnx_tensor_from_proto(ap->t, &b->cx, what, &t, &nbytes, err);
        if (st) return st;
    } else {
        t.dtype = dt;
        bool list = want == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS ||
                    want == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        t.rank = list ? 1 : 0;
        t.dims[0] = (int64_t)n;
        nbytes = n * qf_dtype_size(dt); /* n is bounded by the input size */
        t.data = qf_malloc_aligned(nbytes);
        if (!t.data) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
        const void *src = dt == QF_DT_F32 ? (list ? (const void *)ap->floats : &ap->f)
                                          : (list ? (const void *)ap->ints : &ap->i);
        if (nbytes) memcpy(t.data, src, nbytes);
    }
    return qf_graph_set_const_owned(b->g, v, t.dtype, t.rank, t.dims, t.data, nbytes);
}

static qf_status add_node(builder *b, size_t idx, Onnx__NodeProto *np, qf_err *err) {
    const char *path = b->cx.path;
    if (!np->op_type || !*np->op_type)
        return qf_errf(err, QF_ERR_FORMAT, "%s: node #%zu has no op_type", path, idx);
    const char *domain = norm_domain(np->domain);
    char name[160];
    if (np->name && *np->name)
        snprintf(name, sizeof name, "%s", np->name);
    else
        snprintf(name, sizeof name, "%s_%zu", np->op_type, idx);
    if (!*domain && strcmp(np->op_type, "Constant") == 0) return fold_constant(b, np, name, err);

    if (np->n_input > QF_MAX_NODE_IO || np->n_output > QF_MAX_NODE_IO)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: node '%s' (%s) has %zu inputs and %zu outputs; qforge supports at "
                       "most %d of each",
                       path, name, np->op_type, np->n_input, np->n_output, QF_MAX_NODE_IO);
    if (np->n_attribute > MAX_NODE_ATTRS)
        return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' has %zu attributes", path, name,
                       np->n_attribute);
    int ins[QF_MAX_NODE_IO], outs[QF_MAX_NODE_IO];
    for (size_t k = 0; k < np->n_input; k++) {
        /* An empty name is an omitted optional input. */
        ins[k] = np->input[k][0] ? value_for(b, np->input[k]) : -1;
        if (np->input[k][0] && ins[k] < 0)
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t k = 0; k < np->n_output; k++) {
        outs[k] = np->output[k][0] ? value_for(b, np->output[k]) : -1;
        if (np->output[k][0] && outs[k] < 0)
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    }
    qf_attr *attrs = NULL;
    if (np->n_attribute) {
        attrs = qf_calloc(np->n_attribute, sizeof *attrs);
        if (!attrs) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    }
    qf_status st = QF_OK;
    for (size_t k = 0; k < np->n_attribute && !st; k++) {
        st = qf_onnx_decode_attr(b->g, &b->cx, name, np->attribute[k], &attrs[k], err);
        for (size_t j = 0; j < k && !st; j++)
            if (strcmp(attrs[j].name, attrs[k].name) == 0)
                st = qf_errf(err, QF_ERR_FORMAT, "%s: node '%s': attribute '%s' appears twice",
                             path, name, attrs[k].name);
    }
    if (!st && qf_graph_add_node(b->g, name, np->op_type, domain, domain_opset(b, domain), ins,
                                 (int)np->n_input, outs, (int)np->n_output, attrs,
                                 (int)np->n_attribute) < 0)
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    qf_free(attrs);
    return st;
}

static qf_status add_outputs_and_info(builder *b, qf_err *err) {
    const Onnx__GraphProto *gp = b->m->graph;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name)
            return qf_errf(err, QF_ERR_FORMAT, "%s: graph output #%zu has no name", b->cx.path, i);
        size_t s = map_slot(&b->names, vi->name);
        if (!b->names.keys[s])
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: graph output '%s' is not produced by any node, input or "
                           "initializer",
                           b->cx.path, vi->name);
        int v = b->names.vals[s];
        if (qf_graph_add_output(b->g, v) != QF_OK)
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", b->cx.path);
        qf_status st = merge_info(b, v, vi, "output", true, err);
        if (st) return st;
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        if (!vi->name || !*vi->name) continue;
        size_t s = map_slot(&b->names, vi->name);
        if (!b->names.keys[s]) continue; /* describes nothing we use */
        qf_status st = merge_info(b, b->names.vals[s], vi, "value", false, err);
        if (st) return st;
    }
    return QF_OK;
}

static qf_status build(builder *b, qf_err *err) {
    const Onnx__ModelProto *m = b->m;
    const char *path = b->cx.path;
    if (!m->has_ir_version || m->ir_version < 1)
        return qf_errf(err, QF_ERR_FORMAT, "%s: not an ONNX model (ir_version is missing)", path);
    if (!m->graph) return qf_errf(err, QF_ERR_FORMAT, "%s: the model has no graph", path);
    qf_status st = read_opsets(b, err);
    if (st) return st;

    qf_graph *g = b->g;
    const Onnx__GraphProto *gp = m->graph;
    g->source_path = qf_arena_strdup(&g->arena, path);
    g->name = qf_arena_strdup(&g->arena, str_or_empty(gp->name));
    g->producer = qf_arena_strdup(&g->arena, str_or_empty(m->producer_name));
    if (!g->source_path || !g->name || !g->producer)
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);

    /* Every distinct name is mentioned at least once in these lists, so
     * their total bounds the map's size. */
    size_t bound = gp->n_input, tmp;
    bool ok =
        qf_add_size(bound, gp->n_initializer, &bound) && qf_add_size(bound, gp->n_output, &bound);
    for (size_t i = 0; ok && i < gp->n_node; i++)
        ok = qf_add_size(gp->node[i]->n_input, gp->node[i]->n_output, &tmp) &&
             qf_add_size(bound, tmp, &bound);
    if (!ok || !map_init(&b->names, bound))
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);

    if ((st = add_inputs(b, err))) return st;
    if ((st = add_initializers(b, err))) return st;
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = add_node(b, i, gp->node[i], err))) return st;
    if ((st = add_outputs_and_info(b, err))) return st;
    if ((st = qf_graph_toposort(g, err))) return st;
    for (int i = 0; i < g->n_outputs; i++) {
        const qf_value *v = &g->values[g->outputs[i]];
        if (v->producer < 0 && !(v->flags & (QF_VAL_INPUT | QF_VAL_CONST)))
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: graph output '%s' is not produced by any node, input or "
                           "initializer",
                           path, v->name);
    }
    return QF_OK;
}

qf_status qf_onnx_build_graph(const void *buf, size_t len, const char *path_for_errors,
                              const char *base_dir, qf_graph **out, qf_err *err) {
    const char *path = path_for_errors ? path_for_errors : "model";
    *out = NULL;
    if (len == 0) return qf_errf(err, QF_ERR_FORMAT, "%s: empty file", path);
    if (!buf) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: no buffer", path);
    bool oom;
    Onnx__ModelProto *m = qf_onnx_unpack_model(buf, len, &oom);
    if (!m) {
        if (oom) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory decoding the model", path);
        return qf_errf(err, QF_ERR_FORMAT, "%s: not a valid ONNX model (protobuf decode failed)",
                       path);
    }
    builder b;
    memset(&b, 0, sizeof b);
    b.m = m;
    b.cx.path = path;
    b.cx.base_dir = base_dir;
    b.g = qf_graph_create();
    qf_status st = b.g ? build(&b, err) : qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    map_free(&b.names);
    qf_onnx_free_model(m);
    if (st) {
        qf_graph_free(b.g);
        return st;
    }
    *out = b.g;
    return QF_OK;
}

qf_status qf_onnx_import(const void *buf, size_t len, const char *path_for_errors,
                         const char *base_dir, qf_graph **out, qf_err *err) {
    qf_graph *g;
    qf_status st = qf_onnx_build_graph(buf, len, path_for_errors, base_dir, &g, err);
    if (st) {
        *out = NULL;
        return st;
    }
    st = qf_graph_parse_ops(g, err);
    if (st) {
        qf_graph_free(g);
        g = NULL;
    }
    *out = g;
    return st;
}

char *qf_onnx_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return qf_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = qf_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

qf_status qf_onnx_import_file(const char *path, qf_graph **out, qf_err *err) {
    *out = NULL;
    char *dir = qf_onnx_dirname(path);
    if (!dir) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    qf_status st;
    /* Map rather than read: the file's pages stay in the page cache instead
     * of a heap copy, so a large model costs one copy of its weights (the
     * decoded one). O_NONBLOCK: opening a FIFO must not hang. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        st = qf_errf(err, QF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        st = qf_errf(err, QF_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        st = qf_errf(err, QF_ERR_UNSUPPORTED, "%s: file too large", path);
        goto out;
    }
    size_t len = (size_t)sb.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (len == 0) {
        st = qf_onnx_import("", 0, path, dir, out, err);
    } else if (map != MAP_FAILED) {
        st = qf_onnx_import(map, len, path, dir, out, err);
        munmap(map, len);
    } else {
        void *buf;
        st = qf_read_file(path, &buf, &len, err);
        if (!st) {
            st = qf_onnx_import(buf, len, path, dir, out, err);
            qf_free(buf);
        }
    }
out:
    qf_free(dir);
    return st;
}
