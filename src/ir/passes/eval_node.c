/* eval_node.c - run one node's reference kernel at pass time (constant
 * folding, shape-only subgraphs during shape inference). */
#include <string.h>

#include "ir/passes/eval_node.h"

bool qf_pass_tensor_bytes(const qf_tensor *t, size_t *bytes) {
    int64_t numel = qf_tensor_numel(t);
    size_t es = qf_dtype_size(t->dtype);
    if (numel < 0 || es == 0) return false;
    return qf_mul_size((size_t)numel, es, bytes);
}

static void free_outputs(qf_tensor *out, int n_out) {
    for (int j = 0; j < n_out; j++) {
        qf_free_aligned(out[j].data);
        out[j].data = NULL;
    }
}

qf_status qf_pass_eval_node(const qf_node *n, const qf_op_def *def, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, qf_err *err) {
    char d[200];
    for (int j = 0; j < n_out; j++)
        out[j].data = NULL;
    if (!def || !def->run)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: no kernel to evaluate it",
                       qf_node_desc(n, d, sizeof d));
    for (int j = 0; j < n_out; j++) {
        if (j >= n->n_outputs || n->outputs[j] < 0) continue;
        size_t bytes;
        if (!qf_pass_tensor_bytes(&out[j], &bytes)) {
            free_outputs(out, n_out);
            return qf_errf(err, QF_ERR_SHAPE, "%s: output %d has no computable size",
                           qf_node_desc(n, d, sizeof d), j);
        }
        out[j].data = qf_malloc_aligned(bytes);
        if (!out[j].data) {
            free_outputs(out, n_out);
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory evaluating it",
                           qf_node_desc(n, d, sizeof d));
        }
        /* Zeroed so that a kernel that leaves padding untouched still gives
         * deterministic constants. */
        if (bytes) memset(out[j].data, 0, bytes);
    }
    size_t scratch_bytes = def->scratch ? def->scratch(n, in, n_in, out, n_out) : 0;
    void *scratch = NULL;
    if (scratch_bytes) {
        scratch = qf_malloc_aligned(scratch_bytes);
        if (!scratch) {
            free_outputs(out, n_out);
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory for scratch",
                           qf_node_desc(n, d, sizeof d));
        }
    }
    qf_exec_ctx ctx = {.num_threads = 1};
    qf_status s = def->run(&ctx, n, in, n_in, out, n_out, scratch, err);
    qf_free_aligned(scratch);
    if (s) free_outputs(out, n_out);
    return s;
}
