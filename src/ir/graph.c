/* graph.c - construction and queries of the graph IR. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "ir/graph.h"
#include "ir/ops.h"

qf_graph *qf_graph_create(void) {
    qf_graph *g = qf_calloc(1, sizeof *g);
    if (!g) return NULL;
    qf_arena_init(&g->arena);
    g->name = "";
    g->source_path = "model";
    g->producer = "";
    return g;
}

void qf_graph_free(qf_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].data && !g->values[i].data_external) qf_free_aligned(g->values[i].data);
    qf_free(g->values);
    qf_free(g->nodes);
    qf_free(g->inputs);
    qf_free(g->outputs);
    qf_arena_free(&g->arena);
    if (g->mapping) munmap(g->mapping, g->mapping_len);
    qf_free(g);
}

void *qf_graph_alloc(qf_graph *g, size_t n) { return qf_arena_alloc(&g->arena, n); }

int qf_graph_add_value(qf_graph *g, const char *name, qf_dtype dtype, int rank,
                       const int64_t *dims) {
    if (rank > QF_MAX_DIMS) return -1;
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        size_t bytes;
        if (!qf_mul_size((size_t)cap, sizeof(qf_value), &bytes)) return -1;
        qf_value *nv = qf_realloc(g->values, bytes);
        if (!nv) return -1;
        g->values = nv;
        g->cap_values = cap;
    }
    qf_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = qf_arena_strdup(&g->arena, name ? name : "");
    if (!v->name) return -1;
    v->dtype = dtype;
    v->rank = rank;
    for (int i = 0; i < rank && dims; i++) v->dims[i] = dims[i];
    v->producer = -1;
    return g->n_values++;
}

int qf_graph_find_value(const qf_graph *g, const char *name) {
    for (int i = g->n_values - 1; i >= 0; i--)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

qf_status qf_graph_set_const_owned(qf_graph *g, int v, qf_dtype dt, int rank,
                                   const int64_t *dims, void *data, size_t nbytes) {
    qf_value *val = &g->values[v];
    if (val->data && !val->data_external) qf_free_aligned(val->data);
    val->dtype = dt;
    val->rank = rank;
    for (int i = 0; i < rank; i++) val->dims[i] = dims[i];
    val->data = data;
    val->nbytes = nbytes;
    val->data_external = false;
    val->flags |= QF_VAL_CONST;
    return QF_OK;
}

qf_status qf_graph_set_const(qf_graph *g, int v, const qf_tensor *t, qf_err *err) {
    int64_t n = qf_tensor_numel(t);
    size_t es = qf_dtype_size(t->dtype), bytes;
    if (n < 0 || es == 0 || !qf_mul_size((size_t)n, es, &bytes))
        return qf_errf(err, QF_ERR_FORMAT, "constant '%s': bad size", g->values[v].name);
    void *d = qf_malloc_aligned(bytes);
    if (!d) return qf_errf(err, QF_ERR_NOMEM, "constant '%s': out of memory", g->values[v].name);
    if (bytes) memcpy(d, t->data, bytes);
    return qf_graph_set_const_owned(g, v, t->dtype, t->rank, t->dims, d, bytes);
}

int qf_graph_add_node(qf_graph *g, const char *name, const char *op_type, const char *domain,
                      int opset, const int *inputs, int n_inputs, const int *outputs,
                      int n_outputs, const qf_attr *attrs, int n_attrs) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        size_t bytes;
        if (!qf_mul_size((size_t)cap, sizeof(qf_node), &bytes)) return -1;
        qf_node *nn = qf_realloc(g->nodes, bytes);
        if (!nn) return -1;
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    qf_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    char gen[32];
    if (!name || !*name) {
        snprintf(gen, sizeof gen, "%s_%d", op_type, g->n_nodes);
        name = gen;
    }
    n->name = qf_arena_strdup(&g->arena, name);
    n->op_type = qf_arena_strdup(&g->arena, op_type);
    n->domain = qf_arena_strdup(&g->arena, domain ? domain : "");
    if (!n->name || !n->op_type || !n->domain) return -1;
    n->opset = opset;
    n->op = qf_op_lookup(op_type, n->domain);
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->inputs = qf_arena_alloc(&g->arena, sizeof(int) * (size_t)(n_inputs + 1));
    n->outputs = qf_arena_alloc(&g->arena, sizeof(int) * (size_t)(n_outputs + 1));
    if (!n->inputs || !n->outputs) return -1;
    if (n_inputs) memcpy(n->inputs, inputs, sizeof(int) * (size_t)n_inputs);
    if (n_outputs) memcpy(n->outputs, outputs, sizeof(int) * (size_t)n_outputs);
    if (n_attrs) {
        n->attrs = qf_arena_alloc(&g->arena, sizeof(qf_attr) * (size_t)n_attrs);
        if (!n->attrs) return -1;
        /* deep copy: callers may pass attributes that live on their stack */
        for (int a = 0; a < n_attrs; a++)
            if (qf_attr_copy(g, &attrs[a], &n->attrs[a])) return -1;
        n->n_attrs = n_attrs;
    }
    return g->n_nodes++;
}

static qf_status append_index(int **arr, int *n, int v) {
    int *na = qf_realloc(*arr, sizeof(int) * (size_t)(*n + 1));
    if (!na) return QF_ERR_NOMEM;
    na[(*n)++] = v;
    *arr = na;
    return QF_OK;
}

qf_status qf_graph_add_input(qf_graph *g, int v) {
    g->values[v].flags |= QF_VAL_INPUT;
    return append_index(&g->inputs, &g->n_inputs, v);
}

qf_status qf_graph_add_output(qf_graph *g, int v) {
    g->values[v].flags |= QF_VAL_OUTPUT;
    return append_index(&g->outputs, &g->n_outputs, v);
}

qf_tensor qf_value_tensor(const qf_value *v) {
    qf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = v->dtype;
    t.rank = v->rank < 0 ? 0 : v->rank;
    for (int i = 0; i < t.rank; i++) t.dims[i] = v->dims[i];
    t.data = (v->flags & QF_VAL_CONST) ? v->data : NULL;
    return t;
}

void qf_graph_update_producers(qf_graph *g) {
    for (int i = 0; i < g->n_values; i++) g->values[i].producer = -1;
    for (int n = 0; n < g->n_nodes; n++)
        for (int j = 0; j < g->nodes[n].n_outputs; j++) {
            int v = g->nodes[n].outputs[j];
            if (v >= 0) g->values[v].producer = n;
        }
}

/* Kahn's algorithm over value dependencies; stable with respect to the
 * original order so models keep their familiar layer order. */
qf_status qf_graph_toposort(qf_graph *g, qf_err *err) {
    int nv = g->n_values, nn = g->n_nodes;
    qf_status st = QF_OK;
    int *producer = qf_malloc(sizeof(int) * (size_t)(nv + 1));
    int *pending = qf_malloc(sizeof(int) * (size_t)(nn + 1));
    int *order = qf_malloc(sizeof(int) * (size_t)(nn + 1));
    bool *done = qf_calloc((size_t)nn + 1, 1);
    if (!producer || !pending || !order || !done) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory sorting graph", g->source_path);
        goto out;
    }
    for (int i = 0; i < nv; i++) producer[i] = -1;
    for (int n = 0; n < nn; n++)
        for (int j = 0; j < g->nodes[n].n_outputs; j++) {
            int v = g->nodes[n].outputs[j];
            if (v < 0) continue;
            if (producer[v] >= 0 || (g->values[v].flags & (QF_VAL_INPUT | QF_VAL_CONST))) {
                st = qf_errf(err, QF_ERR_FORMAT, "%s: value '%s' is produced twice (node '%s')",
                             g->source_path, g->values[v].name, g->nodes[n].name);
                goto out;
            }
            producer[v] = n;
        }
    for (int n = 0; n < nn; n++) {
        const qf_node *nd = &g->nodes[n];
        for (int j = 0; j < nd->n_inputs; j++) {
            int v = nd->inputs[j];
            if (v < 0) continue;
            if (producer[v] < 0 && !(g->values[v].flags & (QF_VAL_INPUT | QF_VAL_CONST))) {
                st = qf_errf(err, QF_ERR_FORMAT,
                             "%s: node '%s' reads '%s', which no node, input or initializer provides",
                             g->source_path, nd->name, g->values[v].name);
                goto out;
            }
        }
    }
    /* Repeated passes keep original order among ready nodes; O(n^2) worst
     * case but graphs are small (thousands of nodes). */
    int count = 0;
    bool progress = true;
    while (count < nn && progress) {
        progress = false;
        for (int n = 0; n < nn; n++) {
            if (done[n]) continue;
            const qf_node *nd = &g->nodes[n];
            bool ready = true;
            for (int j = 0; j < nd->n_inputs && ready; j++) {
                int v = nd->inputs[j];
                if (v >= 0 && producer[v] >= 0 && !done[producer[v]]) ready = false;
            }
            if (ready) {
                done[n] = true;
                order[count++] = n;
                progress = true;
            }
        }
    }
    if (count < nn) {
        int bad = 0;
        while (done[bad]) bad++;
        st = qf_errf(err, QF_ERR_FORMAT, "%s: the graph has a cycle through node '%s'",
                     g->source_path, g->nodes[bad].name);
        goto out;
    }
    qf_node *sorted = qf_malloc(sizeof(qf_node) * (size_t)(nn + 1));
    if (!sorted) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory sorting graph", g->source_path);
        goto out;
    }
    for (int i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
    if (nn) memcpy(g->nodes, sorted, sizeof(qf_node) * (size_t)nn);
    qf_free(sorted);
    qf_graph_update_producers(g);
out:
    qf_free(producer);
    qf_free(pending);
    qf_free(order);
    qf_free(done);
    return st;
}

int qf_graph_consumers(const qf_graph *g, int v) {
    int c = 0;
    for (int n = 0; n < g->n_nodes; n++)
        for (int j = 0; j < g->nodes[n].n_inputs; j++)
            if (g->nodes[n].inputs[j] == v) c++;
    if (g->values[v].flags & QF_VAL_OUTPUT) c++;
    return c;
}

void qf_graph_remove_nodes(qf_graph *g, const bool *dead) {
    int w = 0;
    for (int n = 0; n < g->n_nodes; n++)
        if (!dead[n]) g->nodes[w++] = g->nodes[n];
    g->n_nodes = w;
    qf_graph_update_producers(g);
}

const qf_attr *qf_node_attr(const qf_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t qf_node_attr_int(const qf_node *n, const char *name, int64_t dflt) {
    const qf_attr *a = qf_node_attr(n, name);
    return (a && a->type == QF_ATTR_INT) ? a->i : dflt;
}

float qf_node_attr_float(const qf_node *n, const char *name, float dflt) {
    const qf_attr *a = qf_node_attr(n, name);
    if (a && a->type == QF_ATTR_FLOAT) return a->f;
    if (a && a->type == QF_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *qf_node_attr_str(const qf_node *n, const char *name, const char *dflt) {
    const qf_attr *a = qf_node_attr(n, name);
    return (a && a->type == QF_ATTR_STRING) ? a->s : dflt;
}

int qf_node_attr_ints(const qf_node *n, const char *name, const int64_t **vals) {
    const qf_attr *a = qf_node_attr(n, name);
    if (!a || a->type != QF_ATTR_INTS) {
        *vals = NULL;
        return 0;
    }
    *vals = a->ints;
    return a->n;
}

int qf_node_attr_floats(const qf_node *n, const char *name, const float **vals) {
    const qf_attr *a = qf_node_attr(n, name);
    if (!a || a->type != QF_ATTR_FLOATS) {
        *vals = NULL;
        return 0;
    }
    *vals = a->floats;
    return a->n;
}

qf_status qf_value_set_qparams(qf_graph *g, int v, int bits, int axis, int n, const float *scale,
                               const int32_t *zero_point) {
    if (n <= 0 || v < 0 || v >= g->n_values) return QF_ERR_INVALID_ARG;
    qf_qparams *q = qf_arena_alloc(&g->arena, sizeof *q);
    if (!q) return QF_ERR_NOMEM;
    q->scale = qf_arena_alloc(&g->arena, sizeof(float) * (size_t)n);
    q->zero_point = qf_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)n);
    if (!q->scale || !q->zero_point) return QF_ERR_NOMEM;
    memcpy(q->scale, scale, sizeof(float) * (size_t)n);
    if (zero_point) memcpy(q->zero_point, zero_point, sizeof(int32_t) * (size_t)n);
    q->bits = bits;
    q->axis = axis;
    q->n = n;
    g->values[v].qp = q;
    return QF_OK;
}
