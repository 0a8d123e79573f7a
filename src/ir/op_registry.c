/* op_registry.c - the table of op definitions, indexed by qf_op_id.
 * References are strong on purpose: a weak reference does not make the
 * linker pull an op's object out of libqforge.a, so every op would silently
 * read as unsupported for static-library users. */
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"

#define QF_OP_DECL_(e, onnx, id) extern const qf_op_def qf_opdef_##id;
QF_OP_LIST(QF_OP_DECL_)
#undef QF_OP_DECL_

static const qf_op_def *const op_table[QF_OP_COUNT] = {
#define QF_OP_ENTRY_(e, onnx, id) [QF_OP_##e] = &qf_opdef_##id,
    QF_OP_LIST(QF_OP_ENTRY_)
#undef QF_OP_ENTRY_
};

static const char *const op_names[QF_OP_COUNT] = {
#define QF_OP_NAME_(e, onnx, id) [QF_OP_##e] = onnx,
    QF_OP_LIST(QF_OP_NAME_)
#undef QF_OP_NAME_
};
_Static_assert(QF_ARRAY_LEN(op_table) == QF_OP_COUNT, "op table out of sync with op_list.h");

const qf_op_def *qf_op_get(qf_op_id op) {
    if ((int)op < 0 || op >= QF_OP_COUNT) return NULL;
    return op_table[op];
}

/* Ops of the default ONNX domain are listed by their plain name; qforge's
 * own ops (the integer runtime's) as "qforge.<Name>", domain included. */
qf_op_id qf_op_lookup(const char *onnx_name, const char *domain) {
    bool default_domain = !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
    size_t dl = default_domain ? 0 : strlen(domain);
    for (int i = 0; i < QF_OP_COUNT; i++) {
        const char *n = op_names[i];
        if (default_domain) {
            if (!strchr(n, '.') && strcmp(n, onnx_name) == 0) return (qf_op_id)i;
        } else if (strncmp(n, domain, dl) == 0 && n[dl] == '.' &&
                   strcmp(n + dl + 1, onnx_name) == 0) {
            return (qf_op_id)i;
        }
    }
    return QF_OP_UNKNOWN;
}

const char *qf_op_name(qf_op_id op) {
    if ((int)op < 0 || op >= QF_OP_COUNT) return "?";
    return op_names[op];
}

qf_status qf_graph_parse_ops(qf_graph *g, qf_err *err) {
    /* First collect every unsupported op type (with counts) so the user sees
     * the whole list at once rather than one per attempt. */
    char list[QF_ERR_MSG_LEN - 64];
    size_t used = 0;
    int n_unsup_types = 0;
    list[0] = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const qf_node *n = &g->nodes[i];
        if (qf_op_get(n->op)) continue;
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            if (!qf_op_get(g->nodes[k].op) && strcmp(g->nodes[k].op_type, n->op_type) == 0 &&
                strcmp(g->nodes[k].domain, n->domain) == 0)
                seen = true;
        if (seen) continue;
        int count = 0;
        for (int k = i; k < g->n_nodes; k++)
            if (!qf_op_get(g->nodes[k].op) && strcmp(g->nodes[k].op_type, n->op_type) == 0 &&
                strcmp(g->nodes[k].domain, n->domain) == 0)
                count++;
        char item[160];
        snprintf(item, sizeof item, "%s%s%s%s (%d node%s)", n_unsup_types ? ", " : "",
                 *n->domain ? n->domain : "", *n->domain ? "." : "", n->op_type, count,
                 count == 1 ? "" : "s");
        size_t il = strlen(item);
        if (used + il + 4 < sizeof list) {
            memcpy(list + used, item, il + 1);
            used += il;
        } else if (used + 5 < sizeof list) {
            memcpy(list + used, ", ...", 6);
            used += 5;
        }
        n_unsup_types++;
    }
    if (n_unsup_types)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: unsupported op%s: %s", g->source_path,
                       n_unsup_types == 1 ? "" : "s", list);
    for (int i = 0; i < g->n_nodes; i++) {
        qf_node *n = &g->nodes[i];
        const qf_op_def *d = qf_op_get(n->op);
        if (d->parse) {
            qf_status s = d->parse(g, n, err);
            if (s) {
                qf_err_prefix(err, "%s", g->source_path);
                return s;
            }
        }
    }
    return QF_OK;
}
