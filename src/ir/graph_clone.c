/* graph_clone.c - deep copy of a graph, so passes that rewrite a graph
 * (quantization, pruning) can work on a copy while the caller keeps the
 * original for comparison. */
#include <string.h>

#include "ir/graph.h"

qf_status qf_attr_copy(qf_graph *g, const qf_attr *src, qf_attr *dst) {
    *dst = *src;
    dst->name = qf_arena_strdup(&g->arena, src->name);
    if (!dst->name) return QF_ERR_NOMEM;
    if (src->s && !(dst->s = qf_arena_strdup(&g->arena, src->s))) return QF_ERR_NOMEM;
    if (src->ints && src->n) {
        dst->ints = qf_arena_alloc(&g->arena, sizeof(int64_t) * (size_t)src->n);
        if (!dst->ints) return QF_ERR_NOMEM;
        memcpy(dst->ints, src->ints, sizeof(int64_t) * (size_t)src->n);
    }
    if (src->floats && src->n) {
        dst->floats = qf_arena_alloc(&g->arena, sizeof(float) * (size_t)src->n);
        if (!dst->floats) return QF_ERR_NOMEM;
        memcpy(dst->floats, src->floats, sizeof(float) * (size_t)src->n);
    }
    if (src->strings && src->n) {
        dst->strings = qf_arena_alloc(&g->arena, sizeof(char *) * (size_t)src->n);
        if (!dst->strings) return QF_ERR_NOMEM;
        for (int i = 0; i < src->n; i++)
            if (!(dst->strings[i] = qf_arena_strdup(&g->arena, src->strings[i])))
                return QF_ERR_NOMEM;
    }
    if (src->type == QF_ATTR_TENSOR && src->t.data) {
        int64_t n = qf_tensor_numel(&src->t);
        size_t bytes;
        if (n < 0 || !qf_mul_size((size_t)n, qf_dtype_size(src->t.dtype), &bytes))
            return QF_ERR_FORMAT;
        dst->t.data = qf_arena_alloc(&g->arena, bytes ? bytes : 1);
        if (!dst->t.data) return QF_ERR_NOMEM;
        memcpy(dst->t.data, src->t.data, bytes);
    }
    return QF_OK;
}

qf_status qf_graph_clone(const qf_graph *src, qf_graph **out, qf_err *err) {
    *out = NULL;
    qf_graph *g = qf_graph_create();
    if (!g) return qf_errf(err, QF_ERR_NOMEM, "out of memory cloning graph");
    g->name = qf_arena_strdup(&g->arena, src->name ? src->name : "");
    g->source_path = qf_arena_strdup(&g->arena, src->source_path ? src->source_path : "model");
    g->producer = qf_arena_strdup(&g->arena, src->producer ? src->producer : "");
    g->opset = src->opset;
    if (!g->name || !g->source_path || !g->producer) goto nomem;
    for (int v = 0; v < src->n_values; v++) {
        const qf_value *sv = &src->values[v];
        int nv = qf_graph_add_value(g, sv->name, sv->dtype, sv->rank < 0 ? 0 : sv->rank, sv->dims);
        if (nv != v) goto nomem;
        qf_value *dv = &g->values[nv];
        dv->rank = sv->rank;
        dv->flags = sv->flags & ~(uint32_t)(QF_VAL_INPUT | QF_VAL_OUTPUT);
        if ((sv->flags & QF_VAL_CONST) && sv->data) {
            void *d = qf_malloc_aligned(sv->nbytes ? sv->nbytes : 1);
            if (!d) goto nomem;
            memcpy(d, sv->data, sv->nbytes);
            dv->data = d;
            dv->nbytes = sv->nbytes;
            dv->data_external = false;
        } else {
            dv->data = NULL;
            dv->nbytes = 0;
        }
        if (sv->qp &&
            qf_value_set_qparams(g, nv, sv->qp->bits, sv->qp->axis, sv->qp->n, sv->qp->scale,
                                 sv->qp->zero_point))
            goto nomem;
    }
    for (int i = 0; i < src->n_inputs; i++)
        if (qf_graph_add_input(g, src->inputs[i])) goto nomem;
    for (int i = 0; i < src->n_outputs; i++)
        if (qf_graph_add_output(g, src->outputs[i])) goto nomem;
    for (int n = 0; n < src->n_nodes; n++) {
        const qf_node *sn = &src->nodes[n];
        qf_attr *attrs = NULL;
        if (sn->n_attrs) {
            attrs = qf_arena_alloc(&g->arena, sizeof(qf_attr) * (size_t)sn->n_attrs);
            if (!attrs) goto nomem;
            for (int a = 0; a < sn->n_attrs; a++)
                if (qf_attr_copy(g, &sn->attrs[a], &attrs[a])) goto nomem;
        }
        if (qf_graph_add_node(g, sn->name, sn->op_type, sn->domain, sn->opset, sn->inputs,
                              sn->n_inputs, sn->outputs, sn->n_outputs, attrs, sn->n_attrs) != n)
            goto nomem;
    }
    qf_graph_update_producers(g);
    qf_status s = qf_graph_parse_ops(g, err);
    if (s) {
        qf_graph_free(g);
        return s;
    }
    *out = g;
    return QF_OK;
nomem:
    qf_graph_free(g);
    return qf_errf(err, QF_ERR_NOMEM, "out of memory cloning graph");
}
