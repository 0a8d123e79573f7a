/* onnx_export_graph.c - what the ONNX exporter works out from the graph
 * before it builds messages: unique value names and a topological node
 * order, with every index and every producer checked first, so a broken
 * graph is reported by name instead of becoming a broken file. */
#include <stdio.h>
#include <string.h>

#include "io/onnx_export_internal.h"

static const char *node_label(const qf_node *n) {
    if (n->name && *n->name) return n->name;
    return n->op_type ? n->op_type : "?";
}

/* A value's name for messages ("#7" when it has none). */
static const char *value_label(const qf_graph *g, int v, char *buf, size_t len) {
    if (g->values[v].name && *g->values[v].name) return g->values[v].name;
    snprintf(buf, len, "#%d", v);
    return buf;
}

/* ---- set of names (open addressing, sized once for every name) -------- */
typedef struct name_set {
    const char **keys;
    size_t mask;
} name_set;

static size_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

static bool set_init(name_set *s, size_t max_entries) {
    size_t cap = 16;
    while (cap < max_entries * 2 + 1)
        cap *= 2; /* max_entries <= INT_MAX: cannot overflow */
    s->keys = qf_calloc(cap, sizeof *s->keys);
    s->mask = cap - 1;
    return s->keys != NULL;
}

/* Slot holding `key`, or the empty slot where it would go. */
static size_t set_slot(const name_set *s, const char *key) {
    size_t i = hash_name(key) & s->mask;
    while (s->keys[i] && strcmp(s->keys[i], key) != 0)
        i = (i + 1) & s->mask;
    return i;
}

/* Adds key unless present; true when it was added. */
static bool set_claim(name_set *s, const char *key) {
    size_t i = set_slot(s, key);
    if (s->keys[i]) return false;
    s->keys[i] = key;
    return true;
}

/* ---- index checks ------------------------------------------------------ */
static qf_status check_index(const qf_graph *g, const char *where, int v, bool may_omit,
                             const char *role, int pos, const qf_node *n, qf_err *err) {
    if ((v >= 0 && v < g->n_values) || (may_omit && v == -1)) return QF_OK;
    if (n)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: node '%s' (%s): %s %d refers to value %d (the graph has %d values)",
                       where, node_label(n), n->op_type ? n->op_type : "?", role, pos, v,
                       g->n_values);
    return qf_errf(err, QF_ERR_INVALID_ARG,
                   "%s: graph %s %d refers to value %d (the graph has %d values)", where, role, pos,
                   v, g->n_values);
}

/* Marks referenced values in ref[] after checking every index. */
static qf_status mark_referenced(const qf_graph *g, const char *where, bool *ref, qf_err *err) {
    qf_status st;
    for (int i = 0; i < g->n_inputs; i++) {
        if ((st = check_index(g, where, g->inputs[i], false, "input", i, NULL, err))) return st;
        ref[g->inputs[i]] = true;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        if ((st = check_index(g, where, g->outputs[i], false, "output", i, NULL, err))) return st;
        ref[g->outputs[i]] = true;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const qf_node *n = &g->nodes[k];
        if (n->n_inputs < 0 || n->n_outputs < 0 || n->n_attrs < 0 || (n->n_inputs && !n->inputs) ||
            (n->n_outputs && !n->outputs) || (n->n_attrs && !n->attrs) || !n->op_type ||
            !*n->op_type)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: node #%d ('%s') is malformed", where, k,
                           node_label(n));
        for (int i = 0; i < n->n_inputs; i++) {
            if ((st = check_index(g, where, n->inputs[i], true, "input", i, n, err))) return st;
            if (n->inputs[i] >= 0) ref[n->inputs[i]] = true;
        }
        for (int i = 0; i < n->n_outputs; i++) {
            if ((st = check_index(g, where, n->outputs[i], true, "output", i, n, err))) return st;
            if (n->outputs[i] >= 0) ref[n->outputs[i]] = true;
        }
    }
    return QF_OK;
}

/* ---- names ------------------------------------------------------------- */
typedef struct namer {
    const qf_graph *g;
    const bool *ref;
    const char **names;
    name_set set;
    qf_arena *arena;
} namer;

static void claim_own(namer *nm, int v) {
    const char *own = nm->g->values[v].name;
    if (!nm->ref[v] || nm->names[v] || !own || !*own) return;
    if (set_claim(&nm->set, own)) nm->names[v] = own;
}

/* Generated name for v; false on OOM. */
static bool generate(namer *nm, int v) {
    if (!nm->ref[v] || nm->names[v]) return true;
    const char *own = nm->g->values[v].name;
    bool has_own = own && *own;
    size_t len;
    if (!qf_add_size(has_own ? strlen(own) : 0, 48, &len)) return false;
    char *buf = qf_arena_alloc(nm->arena, len);
    if (!buf) return false;
    for (long k = has_own ? 1 : 0;; k++) {
        if (has_own)
            snprintf(buf, len, "%s_%ld", own, k);
        else if (k == 0)
            snprintf(buf, len, "qf_value_%d", v);
        else
            snprintf(buf, len, "qf_value_%d_%ld", v, k);
        /* Terminates: the set holds at most n_values names. */
        if (set_claim(&nm->set, buf)) break;
    }
    nm->names[v] = buf;
    return true;
}

qf_status qf_onnx_export_names(const qf_graph *g, const char *where, qf_arena *a,
                               const char ***names, qf_err *err) {
    *names = NULL;
    size_t nv = g->n_values > 0 ? (size_t)g->n_values : 0;
    bool *ref = qf_calloc(nv ? nv : 1, sizeof *ref);
    if (!ref) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", where);
    qf_status st = mark_referenced(g, where, ref, err);
    if (st) {
        qf_free(ref);
        return st;
    }
    namer nm = {g, ref, qf_arena_alloc(a, (nv ? nv : 1) * sizeof(char *)), {NULL, 0}, a};
    if (!nm.names || !set_init(&nm.set, nv)) {
        qf_free(ref);
        qf_free(nm.set.keys);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", where);
    }
    /* First every value that can keep its own name, inputs and outputs
     * first (callers bind them by name); then names for the rest, so a
     * generated name never takes one a later value owns. */
    for (int i = 0; i < g->n_inputs; i++)
        claim_own(&nm, g->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        claim_own(&nm, g->outputs[i]);
    for (int v = 0; v < g->n_values; v++)
        claim_own(&nm, v);
    bool ok = true;
    for (int i = 0; ok && i < g->n_inputs; i++)
        ok = generate(&nm, g->inputs[i]);
    for (int i = 0; ok && i < g->n_outputs; i++)
        ok = generate(&nm, g->outputs[i]);
    for (int v = 0; ok && v < g->n_values; v++)
        ok = generate(&nm, v);
    qf_free(ref);
    qf_free(nm.set.keys);
    if (!ok) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", where);
    *names = nm.names;
    return QF_OK;
}

/* ---- order ------------------------------------------------------------- */
typedef struct order_work {
    int *producer;  /* per value: producing node, -1 */
    bool *is_input; /* per value: listed among the graph inputs */
    uint8_t *state; /* per node: 0 unvisited, 1 on the stack, 2 placed */
    int *stack_node, *stack_pos;
} order_work;

static void work_free(order_work *w) {
    qf_free(w->producer);
    qf_free(w->is_input);
    qf_free(w->state);
    qf_free(w->stack_node);
    qf_free(w->stack_pos);
}

static bool provided(const qf_graph *g, const order_work *w, int v) {
    return w->producer[v] >= 0 || (g->values[v].flags & QF_VAL_CONST) || w->is_input[v];
}

static qf_status find_producers(const qf_graph *g, const char *where, order_work *w, qf_err *err) {
    char lb[32];
    for (int v = 0; v < g->n_values; v++)
        w->producer[v] = -1;
    for (int i = 0; i < g->n_inputs; i++)
        w->is_input[g->inputs[i]] = true;
    for (int k = 0; k < g->n_nodes; k++) {
        const qf_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            const char *vn = value_label(g, v, lb, sizeof lb);
            if (w->producer[v] >= 0)
                return qf_errf(err, QF_ERR_FORMAT,
                               "%s: value '%s' is produced by nodes '%s' and '%s'", where, vn,
                               node_label(&g->nodes[w->producer[v]]), node_label(n));
            if (g->values[v].flags & QF_VAL_CONST)
                return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' writes constant '%s'", where,
                               node_label(n), vn);
            if (w->is_input[v])
                return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' writes graph input '%s'", where,
                               node_label(n), vn);
            w->producer[v] = k;
        }
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const qf_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v >= 0 && !provided(g, w, v))
                return qf_errf(err, QF_ERR_FORMAT,
                               "%s: node '%s' reads '%s', which no node, graph input or "
                               "constant provides",
                               where, node_label(n), value_label(g, v, lb, sizeof lb));
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (!provided(g, w, g->outputs[i]))
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: graph output '%s' is not produced by any node, input or constant",
                           where, value_label(g, g->outputs[i], lb, sizeof lb));
    return QF_OK;
}

/* Depth-first, producers before consumers, roots in the graph's order: an
 * order that is already topological comes out unchanged. Iterative so a
 * long chain cannot exhaust the C stack. */
static qf_status dfs_order(const qf_graph *g, const char *where, order_work *w, int *order,
                           qf_err *err) {
    int placed = 0;
    for (int root = 0; root < g->n_nodes; root++) {
        if (w->state[root]) continue;
        int top = 0;
        w->stack_node[0] = root;
        w->stack_pos[0] = 0;
        w->state[root] = 1;
        while (top >= 0) {
            int k = w->stack_node[top];
            const qf_node *n = &g->nodes[k];
            if (w->stack_pos[top] < n->n_inputs) {
                int v = n->inputs[w->stack_pos[top]++];
                int p = v >= 0 ? w->producer[v] : -1;
                if (p < 0 || w->state[p] == 2) continue;
                if (w->state[p] == 1)
                    return qf_errf(err, QF_ERR_FORMAT, "%s: node '%s' is on a cycle", where,
                                   node_label(&g->nodes[p]));
                w->state[p] = 1;
                top++;
                w->stack_node[top] = p;
                w->stack_pos[top] = 0;
            } else {
                w->state[k] = 2;
                order[placed++] = k;
                top--;
            }
        }
    }
    return QF_OK;
}

qf_status qf_onnx_export_order(const qf_graph *g, const char *where, qf_arena *a, int **order,
                               qf_err *err) {
    *order = NULL;
    size_t nv = g->n_values > 0 ? (size_t)g->n_values : 1;
    size_t nn = g->n_nodes > 0 ? (size_t)g->n_nodes : 1;
    order_work w = {qf_calloc(nv, sizeof(int)), qf_calloc(nv, sizeof(bool)), qf_calloc(nn, 1),
                    qf_calloc(nn, sizeof(int)), qf_calloc(nn, sizeof(int))};
    int *out = qf_arena_alloc(a, nn * sizeof(int));
    qf_status st;
    if (!w.producer || !w.is_input || !w.state || !w.stack_node || !w.stack_pos || !out)
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", where);
    else if (!(st = find_producers(g, where, &w, err)))
        st = dfs_order(g, where, &w, out, err);
    work_free(&w);
    if (!st) *order = out;
    return st;
}
