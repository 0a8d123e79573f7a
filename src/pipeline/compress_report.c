/* compress_report.c - histograms for the compress report: each quantized
 * layer's float weights with the clip its weight scales imply, and float
 * activations (one batch of data) with the range their quantized twins can
 * represent. */
#include <stdio.h>
#include <string.h>

#include "pipeline/compress_internal.h"
#include "runtime/runtime.h"

#define HIST_BINS 64
#define ACT_MAX_VALUES (1 << 16) /* per activation: enough for a display histogram */

static int node_named(const qf_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

static qf_status weight_hists(qf_report *rep, const qf_graph *fopt, const qf_graph *qg, int max,
                              qf_err *err) {
    int shown = 0;
    for (int i = 0; i < qg->n_nodes && shown < max; i++) {
        const qf_node *qn = &qg->nodes[i];
        if (qn->n_inputs < 2 || qn->inputs[1] < 0) continue;
        const qf_value *qw = &qg->values[qn->inputs[1]];
        if (!(qw->flags & QF_VAL_CONST) || !qw->qp || qw->qp->bits < 2 || qw->qp->n < 1) continue;
        int fi = node_named(fopt, qn->name);
        if (fi < 0 || fopt->nodes[fi].n_inputs < 2 || fopt->nodes[fi].inputs[1] < 0) continue;
        const qf_value *w = &fopt->values[fopt->nodes[fi].inputs[1]];
        if (w->dtype != QF_DT_F32 || !w->data) continue;
        qf_tensor t = qf_value_tensor(w);
        int64_t n = qf_tensor_numel(&t);
        if (n <= 0) continue;
        const qf_qparams *qp = qw->qp;
        double qmax = (double)((1 << (qp->bits - 1)) - 1), widest = 0;
        for (int c = 0; c < qp->n; c++)
            widest = QF_MAX(widest, (double)qp->scale[c] * qmax);
        char note[128];
        snprintf(note, sizeof note, "%d-bit weights, %d scale%s: lines at the widest clip",
                 qp->bits, qp->n, qp->n == 1 ? "" : "s");
        qf_status st = qf_report_add_hist_values(rep, qn->name, QF_HIST_WEIGHT, w->data, (size_t)n,
                                                 HIST_BINS, -widest, widest, note, err);
        if (st) return st;
        shown++;
    }
    return QF_OK;
}

typedef struct act_ctx {
    const qf_graph *qg;
    int n;           /* activations collected */
    int max;
    int *fvalue;     /* float value index of each */
    int *qvalue;     /* its quantized twin */
    float **buf;     /* collected values */
    size_t *count;
} act_ctx;

static qf_status observe(void *user, const qf_graph *g, int node, const qf_tensor *out,
                         int n_out) {
    act_ctx *c = user;
    for (int j = 0; j < n_out; j++) {
        int v = g->nodes[node].outputs[j];
        if (v < 0 || !out[j].data || out[j].dtype != QF_DT_F32) continue;
        for (int k = 0; k < c->n; k++) {
            if (c->fvalue[k] != v || c->count[k] >= ACT_MAX_VALUES) continue;
            int64_t n = qf_tensor_numel(&out[j]);
            size_t take = (size_t)QF_MIN((int64_t)(ACT_MAX_VALUES - c->count[k]), n);
            memcpy(c->buf[k] + c->count[k], out[j].data, take * sizeof(float));
            c->count[k] += take;
        }
    }
    return QF_OK;
}

static qf_status act_hists(qf_report *rep, const qf_graph *fopt, const qf_graph *qg,
                           const qf_dataset *data, int max, int threads, qf_err *err) {
    act_ctx c = {.qg = qg, .max = max};
    qf_graph *gc = NULL;
    qf_model *m = NULL;
    qf_session *s = NULL;
    float *in = NULL;
    c.fvalue = qf_calloc((size_t)max, sizeof(int));
    c.qvalue = qf_calloc((size_t)max, sizeof(int));
    c.buf = qf_calloc((size_t)max, sizeof(float *));
    c.count = qf_calloc((size_t)max, sizeof(size_t));
    qf_status st = QF_OK;
    if (!c.fvalue || !c.qvalue || !c.buf || !c.count) {
        st = qf_errf(err, QF_ERR_NOMEM, "compress: out of memory for the report");
        goto out;
    }
    if ((st = qf_graph_clone(fopt, &gc, err))) goto out;
    if ((st = qf_model_from_graph(gc, "float", &m, err))) {
        qf_graph_free(gc);
        goto out;
    }
    const qf_graph *g = qf_model_graph(m);
    /* activations of the float graph that the quantized graph holds in integers */
    for (int i = 0; i < g->n_nodes && c.n < max; i++) {
        int v = g->nodes[i].outputs[0];
        if (v < 0) continue;
        int q = qf_graph_find_value(qg, g->values[v].name);
        if (q < 0 || !qg->values[q].qp || qg->values[q].qp->n != 1) continue;
        if (qg->values[q].dtype != QF_DT_I8 && qg->values[q].dtype != QF_DT_I16) continue;
        if (!(c.buf[c.n] = qf_malloc(sizeof(float) * ACT_MAX_VALUES))) {
            st = qf_errf(err, QF_ERR_NOMEM, "compress: out of memory for the report");
            goto out;
        }
        c.fvalue[c.n] = v;
        c.qvalue[c.n] = q;
        c.n++;
    }
    if (c.n == 0) goto out;
    const qf_value *iv = &g->values[g->inputs[0]];
    int batch = iv->dims[0] > 0 ? (int)iv->dims[0] : 32;
    int64_t cnt = iv->dims[0] > 0 ? batch : QF_MIN((int64_t)batch, data->n);
    if (cnt > data->n) goto out;
    if (!(in = qf_malloc_aligned(sizeof(float) * (size_t)cnt * (size_t)data->sample_numel))) {
        st = qf_errf(err, QF_ERR_NOMEM, "compress: out of memory for the report");
        goto out;
    }
    qf_session_options so = {.num_threads = threads > 0 ? threads : 1};
    if ((st = qf_session_create(m, &so, &s, err))) goto out;
    qf_session_set_observer(s, observe, &c);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = iv->rank, .data = in};
    for (int k = 0; k < iv->rank; k++)
        t.dims[k] = iv->dims[k] > 0 ? iv->dims[k] : 1;
    t.dims[0] = cnt;
    qf_tensor o;
    if ((st = qf_dataset_fill(data, 0, cnt, in, NULL, err)) ||
        (st = qf_session_run(s, &t, 1, &o, 1, err)))
        goto out;
    for (int k = 0; k < c.n && !st; k++) {
        if (!c.count[k]) continue;
        const qf_value *qv = &qg->values[c.qvalue[k]];
        int b = qv->qp->bits;
        double qmin = -(double)(1 << (b - 1)), qmax = (double)((1 << (b - 1)) - 1);
        double sc = qv->qp->scale[0], zp = qv->qp->zero_point[0];
        char note[160];
        snprintf(note, sizeof note, "%d-bit activation, scale %.4g, zero point %d (%lld samples)",
                 b, sc, (int)zp, (long long)cnt);
        st = qf_report_add_hist_values(rep, qv->name, QF_HIST_ACTIVATION, c.buf[k], c.count[k],
                                       HIST_BINS, sc * (qmin - zp), sc * (qmax - zp), note, err);
    }
out:
    if (c.buf)
        for (int k = 0; k < max; k++)
            qf_free(c.buf[k]);
    qf_free(c.buf);
    qf_free(c.count);
    qf_free(c.fvalue);
    qf_free(c.qvalue);
    qf_free_aligned(in);
    qf_session_free(s);
    qf_model_free(m);
    return st;
}

qf_status qf_cp_report_hists(qf_report *rep, const qf_graph *fopt, const qf_graph *qg,
                             const qf_dataset *data, int max_layers, int num_threads,
                             qf_err *err) {
    if (max_layers < 1) return QF_OK;
    qf_status st = weight_hists(rep, fopt, qg, max_layers, err);
    if (!st && data) st = act_hists(rep, fopt, qg, data, max_layers, num_threads, err);
    return st;
}
