/* verify.c - float vs quantized comparison (see verify.h). Both models run
 * on the same batches; an observer on the float session copies the
 * activations that have a quantized twin, an observer on the quantized
 * session dequantizes its twin and accumulates signal and noise. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "quant/verify.h"
#include "runtime/runtime.h"

typedef struct vctx {
    const qf_graph *fg, *qg;
    int n;              /* layers */
    qf_verify_layer *L;
    int *f_layer;       /* float value -> layer or -1 */
    int *q_layer;       /* quant value -> layer or -1 */
    float **buf;        /* per layer: copy of the float activation */
    int64_t *buf_cap, *buf_len;
    qf_err *err;
} vctx;

void qf_verify_result_free(qf_verify_result *r) {
    if (!r) return;
    qf_free(r->layers);
    memset(r, 0, sizeof *r);
}

static qf_status float_obs(void *user, const qf_graph *g, int node, const qf_tensor *out,
                           int n_out) {
    vctx *c = user;
    const qf_node *nd = &g->nodes[node];
    for (int j = 0; j < n_out; j++) {
        int v = nd->outputs[j];
        if (v < 0 || !out[j].data || out[j].dtype != QF_DT_F32) continue;
        int l = c->f_layer[v];
        if (l < 0) continue;
        int64_t n = qf_tensor_numel(&out[j]);
        if (n > c->buf_cap[l]) {
            /* grows only while the batch shape grows: first batch */
            float *nb = qf_realloc(c->buf[l], sizeof(float) * (size_t)n);
            if (!nb) return qf_errf(c->err, QF_ERR_NOMEM, "out of memory verifying");
            c->buf[l] = nb;
            c->buf_cap[l] = n;
        }
        memcpy(c->buf[l], out[j].data, sizeof(float) * (size_t)n);
        c->buf_len[l] = n;
    }
    return QF_OK;
}

static qf_status quant_obs(void *user, const qf_graph *g, int node, const qf_tensor *out,
                           int n_out) {
    vctx *c = user;
    const qf_node *nd = &g->nodes[node];
    for (int j = 0; j < n_out; j++) {
        int v = nd->outputs[j];
        if (v < 0 || !out[j].data) continue;
        int l = c->q_layer[v];
        if (l < 0) continue;
        int64_t n = qf_tensor_numel(&out[j]);
        if (n != c->buf_len[l]) continue; /* shapes differ: not comparable */
        qf_verify_layer *L = &c->L[l];
        const float *x = c->buf[l];
        double s = L->scale, sig = 0, noise = 0;
        int64_t clipped = 0;
        int32_t qmin = out[j].dtype == QF_DT_I16 ? INT16_MIN : -128;
        int32_t qmax = out[j].dtype == QF_DT_I16 ? INT16_MAX : 127;
        double lo = s * (qmin - L->zero_point), hi = s * (qmax - L->zero_point);
        for (int64_t i = 0; i < n; i++) {
            int32_t q = out[j].dtype == QF_DT_I16 ? ((const int16_t *)out[j].data)[i]
                                                  : ((const int8_t *)out[j].data)[i];
            double d = s * (q - L->zero_point), f = x[i];
            sig += f * f;
            noise += (f - d) * (f - d);
            if (f < lo - 0.5 * s || f > hi + 0.5 * s) clipped++;
        }
        L->signal += sig;
        L->noise += noise;
        L->clip_fraction += (double)clipped; /* a count until the end */
        L->count += n;
    }
    return QF_OK;
}

static double sqnr(double sig, double noise) {
    if (noise <= 0) return INFINITY;
    if (sig <= 0) return -INFINITY;
    return 10.0 * log10(sig / noise);
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

qf_status qf_verify(const qf_graph *float_g, const qf_graph *quant_g, const qf_dataset *ds,
                    const qf_verify_options *opt, qf_verify_result *res, qf_err *err) {
    memset(res, 0, sizeof *res);
    vctx c;
    memset(&c, 0, sizeof c);
    c.err = err;
    qf_graph *fg = NULL, *qg = NULL;
    qf_model *fm = NULL, *qm = NULL;
    qf_session *fs = NULL, *qs = NULL;
    float *in = NULL, *fout = NULL;
    qf_status st;
    if (float_g->n_inputs != 1 || quant_g->n_inputs != 1)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "verify: models must have exactly one input");
    if ((st = qf_graph_clone(float_g, &fg, err)) ||
        (st = qf_model_from_graph(fg, float_g->source_path, &fm, err))) {
        qf_graph_free(fg);
        return st;
    }
    if ((st = qf_graph_clone(quant_g, &qg, err)) ||
        (st = qf_model_from_graph(qg, quant_g->source_path, &qm, err))) {
        qf_graph_free(qg);
        qf_model_free(fm);
        return st;
    }
    c.fg = fg;
    c.qg = qg;
    /* layers: integer outputs of quantized nodes with a float twin */
    c.L = qf_calloc((size_t)qg->n_values + 1, sizeof(qf_verify_layer));
    c.f_layer = qf_malloc(sizeof(int) * (size_t)(fg->n_values + 1));
    c.q_layer = qf_malloc(sizeof(int) * (size_t)(qg->n_values + 1));
    c.buf = qf_calloc((size_t)qg->n_values + 1, sizeof(float *));
    c.buf_cap = qf_calloc((size_t)qg->n_values + 1, sizeof(int64_t));
    c.buf_len = qf_calloc((size_t)qg->n_values + 1, sizeof(int64_t));
    if (!c.L || !c.f_layer || !c.q_layer || !c.buf || !c.buf_cap || !c.buf_len) {
        st = qf_errf(err, QF_ERR_NOMEM, "out of memory verifying");
        goto out;
    }
    for (int v = 0; v < fg->n_values; v++) c.f_layer[v] = -1;
    for (int v = 0; v < qg->n_values; v++) c.q_layer[v] = -1;
    for (int n = 0; n < qg->n_nodes; n++) {
        const qf_node *nd = &qg->nodes[n];
        if (nd->op == QF_OP_QUANTIZE_LINEAR) continue;
        for (int j = 0; j < nd->n_outputs; j++) {
            int v = nd->outputs[j];
            if (v < 0 || !qg->values[v].qp || qg->values[v].qp->n != 1) continue;
            if (qg->values[v].dtype != QF_DT_I8 && qg->values[v].dtype != QF_DT_I16) continue;
            int f = qf_graph_find_value(fg, qg->values[v].name);
            size_t nl = strlen(qg->values[v].name);
            if (f < 0 && nl > 2 && strcmp(qg->values[v].name + nl - 2, ".q") == 0) {
                /* the integer twin of a graph output: "<output>.q" */
                char base[256];
                snprintf(base, sizeof base, "%.*s", (int)(nl - 2), qg->values[v].name);
                f = qf_graph_find_value(fg, base);
            }
            if (f < 0 || c.f_layer[f] >= 0) continue;
            qf_verify_layer *L = &c.L[c.n];
            snprintf(L->value, sizeof L->value, "%s", qg->values[v].name);
            snprintf(L->node, sizeof L->node, "%s", nd->name);
            snprintf(L->op, sizeof L->op, "%s", nd->op_type);
            L->bits = qg->values[v].qp->bits;
            L->scale = qg->values[v].qp->scale[0];
            L->zero_point = qg->values[v].qp->zero_point[0];
            if (nd->n_inputs > 1 && nd->inputs[1] >= 0 && qg->values[nd->inputs[1]].qp &&
                (qg->values[nd->inputs[1]].flags & QF_VAL_CONST))
                L->w_bits = qg->values[nd->inputs[1]].qp->bits;
            c.f_layer[f] = c.n;
            c.q_layer[v] = c.n;
            c.n++;
        }
    }
    const qf_value *iv = &fg->values[fg->inputs[0]];
    int64_t per = 1;
    for (int k = 1; k < iv->rank; k++) per *= iv->dims[k] > 0 ? iv->dims[k] : 1;
    if (iv->rank < 1 || per != ds->sample_numel) {
        st = qf_errf(err, QF_ERR_SHAPE, "%s: samples have %lld values, model input '%s' takes %lld",
                     ds->source ? ds->source : "dataset", (long long)ds->sample_numel, iv->name,
                     (long long)per);
        goto out;
    }
    int batch = opt && opt->batch > 0 ? opt->batch : 32;
    if (iv->dims[0] > 0) batch = (int)iv->dims[0];
    int64_t total = opt && opt->limit > 0 ? QF_MIN(opt->limit, ds->n) : ds->n;
    in = qf_malloc_aligned(sizeof(float) * (size_t)batch * (size_t)per);
    int32_t *labels = qf_malloc(sizeof(int32_t) * (size_t)batch);
    if (!in || !labels) {
        qf_free(labels);
        st = qf_errf(err, QF_ERR_NOMEM, "out of memory verifying");
        goto out;
    }
    qf_session_options so = {.num_threads = opt ? opt->num_threads : 1};
    if ((st = qf_session_create(fm, &so, &fs, err)) || (st = qf_session_create(qm, &so, &qs, err))) {
        qf_free(labels);
        goto out;
    }
    qf_session_set_observer(fs, float_obs, &c);
    qf_session_set_observer(qs, quant_obs, &c);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = iv->rank, .data = in};
    for (int k = 0; k < iv->rank; k++) t.dims[k] = iv->dims[k];
    double sig = 0, noise = 0;
    for (int64_t i = 0; i < total; i += batch) {
        int64_t cnt = QF_MIN((int64_t)batch, total - i);
        if (iv->dims[0] > 0 && cnt < batch) break;
        if ((st = qf_dataset_fill(ds, i, cnt, in, labels, err))) break;
        t.dims[0] = cnt;
        qf_tensor fo, qo;
        double t0 = now_s();
        if ((st = qf_session_run(fs, &t, 1, &fo, 1, err))) break;
        int64_t fn = qf_tensor_numel(&fo);
        fout = qf_realloc(fout, sizeof(float) * (size_t)(fn + 1));
        if (!fout) {
            st = qf_errf(err, QF_ERR_NOMEM, "out of memory verifying");
            break;
        }
        memcpy(fout, fo.data, sizeof(float) * (size_t)fn);
        double t1 = now_s();
        if ((st = qf_session_run(qs, &t, 1, &qo, 1, err))) break;
        double t2 = now_s();
        res->seconds_float += t1 - t0;
        res->seconds_quant += t2 - t1;
        if (qo.dtype != QF_DT_F32 || qf_tensor_numel(&qo) != fn || fn % cnt) {
            st = qf_errf(err, QF_ERR_SHAPE, "verify: float and quantized outputs differ in shape");
            break;
        }
        int64_t classes = fn / cnt;
        const float *qd = qo.data;
        for (int64_t b = 0; b < cnt; b++) {
            int64_t af = argmax(fout + b * classes, classes), aq = argmax(qd + b * classes, classes);
            res->top1_float += af == labels[b];
            res->top1_quant += aq == labels[b];
            res->agree += af == aq;
        }
        for (int64_t k = 0; k < fn; k++) {
            sig += (double)fout[k] * fout[k];
            noise += ((double)fout[k] - qd[k]) * ((double)fout[k] - qd[k]);
        }
        res->n += cnt;
        if (opt && opt->progress) opt->progress(opt->progress_user, i + cnt, total);
    }
    qf_free(labels);
    if (st) goto out;
    res->output_sqnr_db = sqnr(sig, noise);
    for (int l = 0; l < c.n; l++) {
        c.L[l].sqnr_db = sqnr(c.L[l].signal, c.L[l].noise);
        c.L[l].clip_fraction = c.L[l].count ? c.L[l].clip_fraction / (double)c.L[l].count : 0;
    }
    res->n_layers = c.n;
    res->layers = c.L;
    c.L = NULL;
out:
    if (c.buf)
        for (int l = 0; l < qg->n_values; l++) qf_free(c.buf[l]);
    qf_free(c.buf);
    qf_free(c.buf_cap);
    qf_free(c.buf_len);
    qf_free(c.f_layer);
    qf_free(c.q_layer);
    qf_free(c.L);
    qf_free_aligned(in);
    qf_free(fout);
    qf_session_free(fs);
    qf_session_free(qs);
    qf_model_free(fm);
    qf_model_free(qm);
    return st;
}
