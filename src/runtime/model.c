/* model.c - the public qf_model handle: a graph plus the file it came from. */
#include <string.h>

#include "io/onnx.h"
#include "io/qfm.h"
#include "ir/passes.h"
#include "runtime/runtime.h"

qf_status qf_model_from_graph(qf_graph *g, const char *path, qf_model **out, qf_err *err) {
    *out = NULL;
    qf_model *m = qf_calloc(1, sizeof *m);
    if (!m) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    m->path = qf_strdup(path ? path : g->source_path);
    if (!m->path) {
        qf_free(m);
        return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    }
    m->g = g;
    *out = m;
    return QF_OK;
}

qf_graph *qf_model_graph(qf_model *m) { return m ? m->g : NULL; }

qf_status qf_model_load_onnx(const char *path, qf_model **out, qf_err *err) {
    *out = NULL;
    qf_graph *g = NULL;
    qf_status s = qf_onnx_import_file(path, &g, err);
    if (s) return s;
    s = qf_model_from_graph(g, path, out, err);
    if (s) qf_graph_free(g);
    return s;
}

qf_status qf_model_load_onnx_mem(const void *buf, size_t len, const char *base_dir,
                                 const char *name_for_errors, qf_model **out, qf_err *err) {
    *out = NULL;
    qf_graph *g = NULL;
    const char *name = name_for_errors ? name_for_errors : "model";
    qf_status s = qf_onnx_import(buf, len, name, base_dir, &g, err);
    if (s) return s;
    s = qf_model_from_graph(g, name, out, err);
    if (s) qf_graph_free(g);
    return s;
}

/* An ONNX model loaded to run takes its inference form (qf_pass_optimize:
 * Identity and inference Dropout removed, constant subgraphs folded,
 * BatchNormalization folded into the Conv or Gemm before it, dead nodes
 * dropped), as ONNX Runtime's default graph optimizations do: the float
 * runtime is the baseline qforge's int8 runtime is compared with. Folding
 * changes float rounding only. qf_model_load_onnx keeps the file's graph
 * (tools that edit and write models back). */
qf_status qf_model_load(const char *path, qf_model **out, qf_err *err) {
    *out = NULL;
    if (!qf_qfm_file_has_magic(path)) {
        qf_status s = qf_model_load_onnx(path, out, err);
        if (!s) s = qf_pass_optimize((*out)->g, err);
        if (s) {
            qf_model_free(*out);
            *out = NULL;
        }
        return s;
    }
    qf_graph *g = NULL;
    qf_status s = qf_qfm_load(path, &g, NULL, err);
    if (s) return s;
    s = qf_model_from_graph(g, path, out, err);
    if (s) qf_graph_free(g);
    return s;
}

void qf_model_free(qf_model *m) {
    if (!m) return;
    qf_graph_free(m->g);
    qf_free(m->path);
    qf_free(m);
}

int qf_model_num_inputs(const qf_model *m) { return m->g->n_inputs; }
int qf_model_num_outputs(const qf_model *m) { return m->g->n_outputs; }

const char *qf_model_input_name(const qf_model *m, int i) {
    if (i < 0 || i >= m->g->n_inputs) return NULL;
    return m->g->values[m->g->inputs[i]].name;
}

const char *qf_model_output_name(const qf_model *m, int i) {
    if (i < 0 || i >= m->g->n_outputs) return NULL;
    return m->g->values[m->g->outputs[i]].name;
}

static qf_status value_info(const qf_value *v, qf_tensor *t) {
    memset(t, 0, sizeof *t);
    t->dtype = v->dtype;
    t->rank = v->rank < 0 ? 0 : v->rank;
    for (int k = 0; k < t->rank; k++) t->dims[k] = v->dims[k];
    return v->rank < 0 ? QF_ERR_UNSUPPORTED : QF_OK;
}

qf_status qf_model_input_info(const qf_model *m, int i, qf_tensor *t) {
    if (i < 0 || i >= m->g->n_inputs) return QF_ERR_INVALID_ARG;
    return value_info(&m->g->values[m->g->inputs[i]], t);
}

qf_status qf_model_output_info(const qf_model *m, int i, qf_tensor *t) {
    if (i < 0 || i >= m->g->n_outputs) return QF_ERR_INVALID_ARG;
    return value_info(&m->g->values[m->g->outputs[i]], t);
}
