/* quantize.c - post-training quantization driver (see quantize.h).
 *
 * The float graph is cloned and optimized into `fg`; the result `qg` is
 * built from scratch node by node. Every activation value of fg has up to
 * two representations in qg: an integer one (q_of) and a float one (f_of),
 * created on demand with QuantizeLinear / DequantizeLinear, so any mix of
 * integer ops and float fallbacks connects correctly. Integer values keep
 * the float graph's names (the per-layer error report pairs them by name);
 * graph outputs keep their names as float values.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "kernels/ref/qref.h"
#include "quant/calib.h"
#include "quant/gptq.h"
#include "quant/quantize.h"
#include "runtime/runtime.h"

typedef struct act_q {
    bool set;
    float scale;
    int32_t zp;
    int bits;
} act_q;

typedef struct qctx {
    const qf_qconfig *cfg;
    const qf_quant_options *opt; /* may be NULL */
    qf_graph *fg;                /* prepared float graph (owned by fm) */
    qf_model *fm;
    qf_graph *qg; /* result */
    int *w_bits, *act_bits;
    qf_observer **obs; /* per fg value */
    int *fused_into;   /* fg node -> index of the node it is fused into, or -1 */
    int *fused_act;    /* fg node -> fused Relu/Clip node, or -1 */
    act_q *aq;         /* per fg value: its 8-bit quantization */
    act_q *aq16;       /* per fg value: its 16-bit quantization (16-bit layers) */
    int *q_of, *f_of;  /* fg value -> qg value (int8, float) */
    int *q16_of;       /* fg value -> qg int16 value */
    bool *act16;       /* fg node: Conv/Gemm computed with 16-bit activations */
    qf_quant_report *rep;
    qf_err *err;
    int uniq;
    /* bias correction: per fg value, per-channel sums of the calibration
     * activations (channel axis 1) and the count of values per channel */
    double **ch_sum;
    int64_t *ch_cnt;
    /* GPTQ: per fg node, the Hessian of its input (NULL: nearest rounding);
     * batch_start: first sample of the calibration batch running now */
    qf_gptq_hess **hess;
    int64_t batch_start;
} qctx;

/* What quantize_weights needs to compute a layer's bias correction:
 * delta[r] = sum_k (q[r][k] * s[r] - w[r][k]) * mean[channel(r, k)]. */
typedef struct bias_corr {
    const double *mean; /* per input channel */
    int64_t cin_g;      /* input channels per group */
    int64_t spatial;    /* weights per input channel in a row (kh * kw) */
    int64_t groups;
    float *delta; /* out: rows */
} bias_corr;

void qf_quant_report_free(qf_quant_report *r) {
    if (!r) return;
    qf_free(r->layers);
    memset(r, 0, sizeof *r);
}

/* ---- small builders ----------------------------------------------------- */

static qf_status nomem(qctx *c) {
    return qf_errf(c->err, QF_ERR_NOMEM, "out of memory quantizing");
}

static bool name_taken(const qf_graph *g, const char *name) {
    return qf_graph_find_value(g, name) >= 0;
}

/* A value name not yet used in qg: base, else base.suffix, base.suffix2... */
static void fresh_name(qctx *c, const char *base, const char *suffix, char *out, size_t len) {
    if (!suffix) {
        snprintf(out, len, "%s", base);
        if (!name_taken(c->qg, out)) return;
        suffix = "v";
    }
    snprintf(out, len, "%s.%s", base, suffix);
    while (name_taken(c->qg, out))
        snprintf(out, len, "%s.%s%d", base, suffix, ++c->uniq);
}

static int new_value(qctx *c, const char *name, qf_dtype dt, const qf_value *like) {
    int v = qf_graph_add_value(c->qg, name, dt, like ? like->rank : -1, like ? like->dims : NULL);
    if (v >= 0 && like && like->rank < 0) c->qg->values[v].rank = -1;
    return v;
}

static int new_const(qctx *c, const char *name, qf_dtype dt, int rank, const int64_t *dims,
                     const void *data) {
    char nm[256];
    fresh_name(c, name, NULL, nm, sizeof nm);
    int v = qf_graph_add_value(c->qg, nm, dt, rank, dims);
    if (v < 0) return -1;
    qf_tensor t = {.dtype = dt, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    if (qf_graph_set_const(c->qg, v, &t, NULL)) return -1;
    return v;
}

static int add_node(qctx *c, const char *name, const char *op, const char *domain, int opset,
                    const int *in, int n_in, const int *out, int n_out, const qf_attr *attrs,
                    int n_attrs) {
    return qf_graph_add_node(c->qg, name, op, domain, opset, in, n_in, out, n_out, attrs, n_attrs);
}

static qf_attr attr_int(const char *name, int64_t v) {
    return (qf_attr){.name = name, .type = QF_ATTR_INT, .i = v};
}
static qf_attr attr_str(const char *name, const char *s) {
    return (qf_attr){.name = name, .type = QF_ATTR_STRING, .s = s};
}
static qf_attr attr_ints(qctx *c, const char *name, const int64_t *v, int n) {
    int64_t *d = qf_graph_alloc(c->qg, sizeof(int64_t) * (size_t)(n ? n : 1));
    if (d && n) memcpy(d, v, sizeof(int64_t) * (size_t)n);
    return (qf_attr){.name = name, .type = QF_ATTR_INTS, .ints = d, .n = n};
}

/* Copy the attributes of fg node n into qg's arena, skipping `skip` names. */
static int copy_attrs(qctx *c, const qf_node *n, qf_attr *dst, int cap, const char *const *skip,
                      int n_skip) {
    int k = 0;
    for (int a = 0; a < n->n_attrs && k < cap; a++) {
        bool drop = false;
        for (int s = 0; s < n_skip; s++)
            if (strcmp(n->attrs[a].name, skip[s]) == 0) drop = true;
        if (drop) continue;
        if (qf_attr_copy(c->qg, &n->attrs[a], &dst[k])) return -1;
        k++;
    }
    return k;
}

/* ---- representations of fg values in qg --------------------------------- */

static qf_status set_qp(qctx *c, int qv, const act_q *a) {
    float s = a->scale;
    int32_t z = a->zp;
    if (qf_value_set_qparams(c->qg, qv, a->bits, -1, 1, &s, &z)) return nomem(c);
    return QF_OK;
}

/* Scalar scale/zero-point constants for QuantizeLinear/DequantizeLinear. */
static qf_status qdq_params(qctx *c, const char *base, const act_q *a, int *sv, int *zv) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.scale", base);
    *sv = new_const(c, nm, QF_DT_F32, 0, NULL, &a->scale);
    int8_t z8 = (int8_t)a->zp;
    int16_t z16 = (int16_t)a->zp;
    snprintf(nm, sizeof nm, "%s.zero_point", base);
    *zv = a->bits > 8 ? new_const(c, nm, QF_DT_I16, 0, NULL, &z16)
                      : new_const(c, nm, QF_DT_I8, 0, NULL, &z8);
    return (*sv < 0 || *zv < 0) ? nomem(c) : QF_OK;
}

static qf_status get_f(qctx *c, int v, int *out);

/* Integer version of fg value v (quantizing its float version if needed). */
static qf_status get_q(qctx *c, int v, int *out) {
    if (c->q_of[v] >= 0) {
        *out = c->q_of[v];
        return QF_OK;
    }
    const qf_value *fv = &c->fg->values[v];
    if (!c->aq[v].set)
        return qf_errf(c->err, QF_ERR_INTERNAL, "%s: value '%s' has no calibrated range",
                       c->fg->source_path, fv->name);
    if (c->f_of[v] < 0 && c->q16_of[v] >= 0) {
        int f;
        qf_status s = get_f(c, v, &f); /* int16 -> float -> int8 at a precision boundary */
        if (s) return s;
    }
    if (c->f_of[v] < 0)
        return qf_errf(c->err, QF_ERR_INTERNAL, "%s: value '%s' has no representation",
                       c->fg->source_path, fv->name);
    char nm[256];
    bool float_named = strcmp(c->qg->values[c->f_of[v]].name, fv->name) == 0;
    fresh_name(c, fv->name, float_named ? "q" : NULL, nm, sizeof nm);
    int qv = new_value(c, nm, QF_DT_I8, fv);
    if (qv < 0) return nomem(c);
    qf_status s = set_qp(c, qv, &c->aq[v]);
    int sv, zv;
    if (!s) s = qdq_params(c, nm, &c->aq[v], &sv, &zv);
    if (s) return s;
    int in[3] = {c->f_of[v], sv, zv};
    char node[300];
    snprintf(node, sizeof node, "%s/quantize", fv->name);
    if (add_node(c, node, "QuantizeLinear", "", 13, in, 3, &qv, 1, NULL, 0) < 0) return nomem(c);
    c->q_of[v] = qv;
    *out = qv;
    return QF_OK;
}

/* Float version of fg value v (dequantizing its integer version if needed). */
static qf_status get_f(qctx *c, int v, int *out) {
    if (c->f_of[v] >= 0) {
        *out = c->f_of[v];
        return QF_OK;
    }
    const qf_value *fv = &c->fg->values[v];
    if ((fv->flags & QF_VAL_CONST)) {
        qf_tensor t = qf_value_tensor(fv);
        int cv = new_const(c, fv->name, t.dtype, t.rank, t.dims, t.data);
        if (cv < 0) return nomem(c);
        c->f_of[v] = *out = cv;
        return QF_OK;
    }
    /* the most precise integer version: int16 when there is one */
    bool wide = c->q16_of[v] >= 0;
    if (c->q_of[v] < 0 && !wide)
        return qf_errf(c->err, QF_ERR_INTERNAL, "%s: value '%s' has no representation",
                       c->fg->source_path, fv->name);
    char nm[256];
    bool out_named = (fv->flags & QF_VAL_OUTPUT) != 0;
    fresh_name(c, fv->name, out_named ? NULL : "dq", nm, sizeof nm);
    int dv = new_value(c, nm, QF_DT_F32, fv);
    if (dv < 0) return nomem(c);
    int sv, zv;
    qf_status s = qdq_params(c, nm, wide ? &c->aq16[v] : &c->aq[v], &sv, &zv);
    if (s) return s;
    int in[3] = {wide ? c->q16_of[v] : c->q_of[v], sv, zv};
    char node[300];
    snprintf(node, sizeof node, "%s/dequantize", fv->name);
    if (add_node(c, node, "DequantizeLinear", "", wide ? 21 : 13, in, 3, &dv, 1, NULL, 0) < 0)
        return nomem(c);
    c->f_of[v] = *out = dv;
    return QF_OK;
}

/* int16 version of fg value v for a 16-bit layer: quantized from its float
 * version with the 16-bit calibrated parameters (aq16, set by the driver). */
static qf_status get_q16(qctx *c, int v, int *out) {
    if (c->q16_of[v] >= 0) {
        *out = c->q16_of[v];
        return QF_OK;
    }
    const qf_value *fv = &c->fg->values[v];
    if (!c->aq16[v].set)
        return qf_errf(c->err, QF_ERR_INTERNAL, "%s: value '%s' has no 16-bit range",
                       c->fg->source_path, fv->name);
    int f;
    qf_status s = get_f(c, v, &f);
    if (s) return s;
    char nm[256];
    fresh_name(c, fv->name, "q16", nm, sizeof nm);
    int qv = new_value(c, nm, QF_DT_I16, fv);
    if (qv < 0) return nomem(c);
    int sv, zv;
    if ((s = set_qp(c, qv, &c->aq16[v])) || (s = qdq_params(c, nm, &c->aq16[v], &sv, &zv)))
        return s;
    int in[3] = {f, sv, zv};
    char node[300];
    snprintf(node, sizeof node, "%s/quantize16", fv->name);
    /* int16 QuantizeLinear is opset 21 */
    if (add_node(c, node, "QuantizeLinear", "", 21, in, 3, &qv, 1, NULL, 0) < 0) return nomem(c);
    c->q16_of[v] = *out = qv;
    return QF_OK;
}

/* Create the integer output value for fg value v (name kept unless v is a
 * graph output, whose name belongs to the float version). */
static qf_status make_q_output_bits(qctx *c, int v, int bits, int *out) {
    const qf_value *fv = &c->fg->values[v];
    char nm[256];
    fresh_name(c, fv->name, (fv->flags & QF_VAL_OUTPUT) ? "q" : NULL, nm, sizeof nm);
    int qv = new_value(c, nm, bits > 8 ? QF_DT_I16 : QF_DT_I8, fv);
    if (qv < 0) return nomem(c);
    qf_status s = set_qp(c, qv, bits > 8 ? &c->aq16[v] : &c->aq[v]);
    if (s) return s;
    if (bits > 8)
        c->q16_of[v] = *out = qv;
    else
        c->q_of[v] = *out = qv;
    return QF_OK;
}

static qf_status make_q_output(qctx *c, int v, int *out) {
    return make_q_output_bits(c, v, 8, out);
}

/* ---- calibration ------------------------------------------------------- */

/* Per-channel (axis 1) sums of a calibration activation, for bias correction. */
static void accumulate_means(qctx *c, int v, const qf_tensor *t) {
    if (!c->ch_sum || !c->ch_sum[v] || t->rank < 2) return;
    const qf_value *fv = &c->fg->values[v];
    int64_t ch = t->dims[1], inner = 1;
    if (fv->rank < 2 || ch != fv->dims[1]) return;
    for (int d = 2; d < t->rank; d++)
        inner *= t->dims[d];
    const float *x = t->data;
    double *sum = c->ch_sum[v];
    for (int64_t b = 0; b < t->dims[0]; b++)
        for (int64_t k = 0; k < ch; k++) {
            const float *p = x + (b * ch + k) * inner;
            double acc = 0;
            for (int64_t i = 0; i < inner; i++)
                acc += p[i];
            sum[k] += acc;
        }
    c->ch_cnt[v] += t->dims[0] * inner;
}

/* Adds calibration activation v to the Hessians of the GPTQ layers reading
 * it: from the first gptq_samples samples, and past them while a layer has
 * fewer than twice as many input rows as columns. */
static qf_status accumulate_hessians(qctx *c, int v, const qf_tensor *t) {
    if (!c->hess) return QF_OK;
    int64_t limit = c->cfg->gptq_samples;
    for (int i = 0; i < c->fg->n_nodes; i++) {
        qf_gptq_hess *hs = c->hess[i];
        if (!hs || c->fg->nodes[i].inputs[0] != v) continue;
        if (limit > 0 && c->batch_start >= limit && hs->rows >= 2 * hs->cols) continue;
        qf_status s = qf_gptq_hess_add(hs, t, c->err);
        if (s) {
            qf_err_prefix(c->err, "%s: '%s'", c->fg->source_path, c->fg->nodes[i].name);
            return s;
        }
    }
    return QF_OK;
}

static qf_status observe_cb(void *user, const qf_graph *g, int node, const qf_tensor *out,
                            int n_out) {
    qctx *c = user;
    const qf_node *n = &g->nodes[node];
    for (int j = 0; j < n_out; j++) {
        int v = n->outputs[j];
        if (v < 0 || !out[j].data || out[j].dtype != QF_DT_F32) continue;
        qf_status hs = accumulate_hessians(c, v, &out[j]);
        if (hs) return hs;
        if (!c->obs[v]) continue;
        qf_status s = qf_observer_observe_tensor(c->obs[v], &out[j], c->err);
        if (s) return s;
        accumulate_means(c, v, &out[j]);
    }
    return QF_OK;
}

static qf_status calibrate(qctx *c, const qf_dataset *ds, const qf_quant_options *opt) {
    qf_graph *g = c->fg;
    if (g->n_inputs != 1)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "%s: calibration needs a model with one input (it has %d)", g->source_path,
                       g->n_inputs);
    const qf_value *in = &g->values[g->inputs[0]];
    if (in->dtype != QF_DT_F32 && in->dtype != QF_DT_UNDEF)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                       "%s: input '%s' is %s; calibration feeds float32", g->source_path, in->name,
                       qf_dtype_name(in->dtype));
    if (ds->n <= 0)
        return qf_errf(c->err, QF_ERR_INVALID_ARG, "%s: the calibration dataset is empty",
                       ds->source ? ds->source : "dataset");
    /* the sample must fill the input's non-batch dims */
    if (in->rank < 1)
        return qf_errf(c->err, QF_ERR_UNSUPPORTED, "%s: input '%s' has no known shape",
                       g->source_path, in->name);
    int64_t per = 1;
    for (int k = 1; k < in->rank; k++) {
        if (in->dims[k] < 0)
            return qf_errf(c->err, QF_ERR_UNSUPPORTED,
                           "%s: input '%s' has a dynamic dimension %d besides the batch",
                           g->source_path, in->name, k);
        per *= in->dims[k];
    }
    if (per != ds->sample_numel) {
        char ss[128] = "", ms[128] = "";
        size_t o = 0;
        for (int k = 0; k < ds->rank; k++)
            o += (size_t)snprintf(ss + o, sizeof ss - o, "%s%lld", k ? "," : "",
                                  (long long)ds->dims[k]);
        o = 0;
        for (int k = 1; k < in->rank; k++)
            o += (size_t)snprintf(ms + o, sizeof ms - o, "%s%lld", k > 1 ? "," : "",
                                  (long long)in->dims[k]);
        return qf_errf(c->err, QF_ERR_SHAPE,
                       "%s: calibration samples are [%s] (%lld values) but model input '%s' "
                       "takes [N,%s] (%lld values per sample)",
                       ds->source ? ds->source : "dataset", ss, (long long)ds->sample_numel,
                       in->name, ms, (long long)per);
    }
    int64_t total = opt && opt->calib_limit > 0 ? opt->calib_limit : 1000;
    if (total > ds->n) total = ds->n;
    int batch = opt && opt->batch > 0 ? opt->batch : 32;
    if (in->dims[0] > 0) batch = (int)in->dims[0]; /* fixed batch size */
    float *buf = qf_malloc_aligned(sizeof(float) * (size_t)batch * (size_t)per);
    if (!buf) return nomem(c);
    qf_session_options so = {.num_threads = opt ? opt->num_threads : 1};
    qf_session *s = NULL;
    qf_status st = qf_session_create(c->fm, &so, &s, c->err);
    if (st) {
        qf_free_aligned(buf);
        return st;
    }
    qf_session_set_observer(s, observe_cb, c);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = in->rank, .data = buf};
    for (int k = 0; k < in->rank; k++)
        t.dims[k] = in->dims[k];
    int n_out = g->n_outputs;
    qf_tensor outs[QF_MAX_NODE_IO];
    for (int64_t i = 0; i < total && !st; i += batch) {
        int64_t cnt = QF_MIN((int64_t)batch, total - i);
        if (in->dims[0] > 0 && cnt < batch) break; /* fixed batch: drop the remainder */
        st = qf_dataset_fill(ds, i, cnt, buf, NULL, c->err);
        if (st) break;
        t.dims[0] = cnt;
        c->batch_start = i;
        if ((st = accumulate_hessians(c, g->inputs[0], &t))) break;
        if (c->obs[g->inputs[0]]) {
            st = qf_observer_observe_tensor(c->obs[g->inputs[0]], &t, c->err);
            if (st) break;
            accumulate_means(c, g->inputs[0], &t);
        }
        st = qf_session_run(s, &t, 1, outs, QF_MIN(n_out, QF_MAX_NODE_IO), c->err);
        if (c->rep) c->rep->calib_samples = i + cnt;
        if (opt && opt->progress) opt->progress(opt->progress_user, i + cnt, total);
    }
    qf_session_free(s);
    qf_free_aligned(buf);
    return st;
}

/* Range of fg value v from its observer -> integer qparams. */
static qf_status choose_act(qctx *c, int v, int bits, float *lo_out, float *hi_out) {
    qf_observer *o = c->obs[v];
    const qf_value *fv = &c->fg->values[v];
    if (!o)
        return qf_errf(c->err, QF_ERR_INTERNAL, "%s: no observer for '%s'", c->fg->source_path,
                       fv->name);
    qf_observer_stats st;
    qf_observer_get_stats(o, &st);
    if (st.count == 0)
        return qf_errf(c->err, QF_ERR_INVALID_ARG,
                       "%s: value '%s' was never computed during calibration", c->fg->source_path,
                       fv->name);
    qf_calib_opts co = {.method = c->cfg->calib,
                        .bits = bits,
                        .symmetric = false,
                        .percentile = c->cfg->percentile};
    float lo, hi;
    qf_status s = qf_calib_range(o, &co, &lo, &hi, c->err);
    if (s) {
        qf_err_prefix(c->err, "%s: calibrating '%s'", c->fg->source_path, fv->name);
        return s;
    }
    qf_qparam qp;
    s = qf_calib_qparams(lo, hi, bits, false, true, &qp, c->err);
    if (s) return s;
    act_q *dst = bits > 8 ? &c->aq16[v] : &c->aq[v];
    *dst = (act_q){.set = true, .scale = qp.scale, .zp = qp.zero_point, .bits = bits};
    float fs;
    int32_t fz;
    int32_t tmin = -(1 << (bits - 1)), tmax = (1 << (bits - 1)) - 1;
    if (c->opt && c->opt->act_params &&
        c->opt->act_params(c->opt->params_user, fv->name, bits, &fs, &fz)) {
        if (!(fs > 0) || !isfinite(fs) || fz < tmin || fz > tmax)
            return qf_errf(c->err, QF_ERR_INVALID_ARG,
                           "%s: imposed parameters of '%s' (scale %g, zero point %d) are invalid",
                           c->fg->source_path, fv->name, (double)fs, (int)fz);
        dst->scale = fs;
        dst->zp = fz;
        lo = (float)((double)(tmin - fz) * fs);
        hi = (float)((double)(tmax - fz) * fs);
    }
    *lo_out = lo;
    *hi_out = hi;
    return QF_OK;
}

static double clip_fraction(const qf_observer *o, float lo, float hi) {
    qf_hist h;
    if (!o || qf_observer_get_hist(o, &h, NULL) || h.total == 0 || h.width <= 0) return 0;
    uint64_t out = 0;
    for (size_t k = 0; k < h.nbins; k++) {
        double a = (double)k * h.width, b = a + h.width;
        if (a >= hi)
            out += h.pos[k];
        else if (b > hi)
            out += (uint64_t)((b - hi) / h.width * (double)h.pos[k]);
        if (-a <= lo)
            out += h.neg[k];
        else if (-b < lo)
            out += (uint64_t)((lo + b) / h.width * (double)h.neg[k]);
    }
    return (double)out / (double)h.total;
}

/* ---- node classification ----------------------------------------------- */

static bool is_const(const qf_graph *g, int v) {
    return v >= 0 && (g->values[v].flags & QF_VAL_CONST) && g->values[v].data;
}

static bool single_consumer(const qf_graph *g, int v, int *consumer) {
    if (g->values[v].flags & QF_VAL_OUTPUT) return false;
    int found = -1, count = 0;
    for (int n = 0; n < g->n_nodes; n++)
        for (int j = 0; j < g->nodes[n].n_inputs; j++)
            if (g->nodes[n].inputs[j] == v) {
                count++;
                found = n;
            }
    *consumer = found;
    return count == 1;
}

/* Float bounds of a Relu/Clip node (Clip needs constant bounds). */
static bool act_bounds(const qf_graph *g, const qf_node *n, float *lo, float *hi) {
    if (n->op == QF_OP_RELU) {
        *lo = 0;
        *hi = INFINITY;
        return true;
    }
    if (n->op != QF_OP_CLIP) return false;
    *lo = -INFINITY;
    *hi = INFINITY;
    if (n->opset < 11) {
        *lo = qf_node_attr_float(n, "min", -INFINITY);
        *hi = qf_node_attr_float(n, "max", INFINITY);
        return true;
    }
    for (int j = 1; j < n->n_inputs && j < 3; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        if (!is_const(g, v) || g->values[v].dtype != QF_DT_F32) return false;
        float x = *(const float *)g->values[v].data;
        if (j == 1)
            *lo = x;
        else
            *hi = x;
    }
    return true;
}

static bool is_layout_op(qf_op_id op) {
    return op == QF_OP_RESHAPE || op == QF_OP_FLATTEN || op == QF_OP_TRANSPOSE ||
           op == QF_OP_SQUEEZE || op == QF_OP_UNSQUEEZE || op == QF_OP_IDENTITY;
}

/* An op that maps each element of one float activation through a fixed
 * function of its value and channel, so that it becomes 256-entry tables
 * (qforge.QLut): an element-wise op with one activation input whose constant
 * side inputs are scalars (one table) or vary only along axis 1 (one table
 * per channel: PRelu slopes, Mul/Add by [C,1,1]), or an inference-mode
 * BatchNormalization with constant statistics (per channel). *act is the
 * activation's input slot, *channels 1 or the channel count. */
static bool lut_lowerable(const qf_graph *g, const qf_node *n, int *act, int64_t *channels) {
    *act = -1;
    *channels = 1;
    const qf_op_def *d = qf_op_get(n->op);
    const bool bn = n->op == QF_OP_BATCH_NORM;
    if (!d || n->n_outputs < 1 || n->outputs[0] < 0 || n->op == QF_OP_CAST) return false;
    if (bn) {
        for (int j = 1; j < n->n_outputs; j++)
            if (n->outputs[j] >= 0) return false; /* training-mode outputs */
        if (n->n_inputs != 5 || qf_node_attr_int(n, "training_mode", 0) != 0) return false;
    } else if (!(d->flags & QF_OPF_ELEMENTWISE) || n->n_outputs != 1) {
        return false;
    }
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0 || is_const(g, v)) continue;
        if (*act >= 0 || (bn && j != 0)) return false;
        *act = j;
    }
    if (*act < 0 || g->values[n->inputs[*act]].dtype != QF_DT_F32) return false;
    const qf_value *x = &g->values[n->inputs[*act]];
    const int64_t c = x->rank >= 2 ? x->dims[1] : -1;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0 || j == *act) continue;
        qf_tensor t = qf_value_tensor(&g->values[v]);
        const int64_t numel = qf_tensor_numel(&t);
        if (numel == 1 && !bn) continue;
        /* per channel: BatchNormalization's [C], or dims that are 1 except
         * C where they line up with axis 1 of the activation */
        if (c < 1 || c > 65536 || numel != c) return false; /* (tables: C x 256 ints) */
        if (bn) {
            if (t.rank != 1) return false;
        } else {
            if (t.rank > x->rank) return false;
            for (int k = 0; k < t.rank; k++) {
                int at = x->rank - t.rank + k;
                if (t.dims[k] != 1 && at != 1) return false;
            }
        }
        *channels = c;
    }
    return true;
}

/* ---- lowering ----------------------------------------------------------- */

/* Quantized clamp bounds [qlo, qhi] for a float range [lo, hi]. */
static void clamp_bounds(const act_q *a, float lo, float hi, int64_t *qlo, int64_t *qhi) {
    /* the value's own bit range: 2..8-bit activations live in int8 */
    double tmin = -(double)(1 << (a->bits - 1)), tmax = (double)((1 << (a->bits - 1)) - 1);
    double l = isinf(lo) ? -1e30 : nearbyint((double)lo / a->scale) + a->zp;
    double h = isinf(hi) ? 1e30 : nearbyint((double)hi / a->scale) + a->zp;
    *qlo = (int64_t)QF_MAX(tmin, QF_MIN(tmax, l));
    *qhi = (int64_t)QF_MAX(tmin, QF_MIN(tmax, h));
}

/* Weights of a Conv ([O, ...]) or of a Gemm/MatMul as rows [N, K]. */
static qf_status quantize_weights(qctx *c, const char *layer, const float *w, int64_t rows,
                                  int64_t cols, int bits, const int64_t *shape, int rank,
                                  int *wv_out, float *scales, int *container_bits,
                                  const bias_corr *bc, const qf_gptq_hess *hs) {
    qf_tensor wt = {.dtype = QF_DT_F32, .rank = 2, .dims = {rows, cols}, .data = (void *)w};
    /* min/max weight ranges for the plain minmax scheme; every other scheme
     * also clips weights where it lowers the quantization error, which
     * matters below 8 bits */
    qf_calib_method m =
        c->cfg->calib != QF_CALIB_MINMAX && (bits < 8 || c->cfg->calib == QF_CALIB_MSE)
            ? QF_CALIB_MSE
            : QF_CALIB_MINMAX;
    qf_status s =
        qf_calib_weight_scales(&wt, c->cfg->per_channel ? 0 : -1, bits, m, scales, c->err);
    if (s) {
        qf_err_prefix(c->err, "%s: weights of '%s'", c->fg->source_path, layer);
        return s;
    }
    if (!c->cfg->per_channel)
        for (int64_t r = 1; r < rows; r++)
            scales[r] = scales[0];
    if (c->opt && c->opt->weight_scales &&
        c->opt->weight_scales(c->opt->params_user, layer, rows, scales))
        for (int64_t r = 0; r < rows; r++)
            if (!(scales[r] > 0) || !isfinite(scales[r]))
                return qf_errf(c->err, QF_ERR_INVALID_ARG,
                               "%s: imposed weight scale %g of '%s' (channel %lld) is invalid",
                               c->fg->source_path, (double)scales[r], layer, (long long)r);
    size_t n = (size_t)rows * (size_t)cols;
    int8_t *q = qf_malloc(n ? n : 1);
    int32_t *zps = qf_calloc((size_t)rows + 1, sizeof(int32_t));
    if (!q || !zps) {
        qf_free(q);
        qf_free(zps);
        return nomem(c);
    }
    int32_t qmax = (1 << (bits - 1)) - 1;
    if (!c->cfg->symmetric_weights) {
        /* asymmetric: [min, max] of the channel (or the tensor) onto the
         * restricted range [-qmax, qmax], zero exactly representable */
        double tlo = 0, thi = 0;
        for (size_t i = 0; i < n; i++)
            tlo = QF_MIN(tlo, w[i]), thi = QF_MAX(thi, w[i]);
        for (int64_t r = 0; r < rows; r++) {
            double lo = 0, hi = 0;
            for (int64_t k = 0; k < cols && c->cfg->per_channel; k++)
                lo = QF_MIN(lo, w[r * cols + k]), hi = QF_MAX(hi, w[r * cols + k]);
            if (!c->cfg->per_channel) lo = tlo, hi = thi;
            double sc = (hi - lo) / (2.0 * qmax);
            scales[r] = sc > 0 ? (float)sc : 1.0f;
            double z = nearbyint(-qmax - lo / scales[r]);
            zps[r] = (int32_t)QF_MAX(-qmax, QF_MIN(qmax, z));
        }
    }
    if (hs && hs->rows > 0 && hs->cols == cols && rows % hs->groups == 0) {
        /* GPTQ, per group: each group's rows read their own inputs */
        int64_t rg = rows / hs->groups;
        for (int64_t g = 0; g < hs->groups && !s; g++)
            s = qf_gptq_round(w + g * rg * cols, rg, cols, hs->h + g * cols * cols, scales + g * rg,
                              zps + g * rg, -qmax, qmax, q + g * rg * cols, c->err);
        if (s) {
            qf_free(q);
            qf_free(zps);
            qf_err_prefix(c->err, "%s: weights of '%s'", c->fg->source_path, layer);
            return s;
        }
        c->rep->n_gptq++;
        if (!c->rep->gptq_rows) c->rep->gptq_rows = hs->rows;
    } else {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < cols; k++) {
                double x = nearbyint((double)w[r * cols + k] / scales[r]) + zps[r];
                q[r * cols + k] = (int8_t)QF_MAX(-qmax, QF_MIN(qmax, x));
            }
    }
    if (bc) /* the mean output error the rounding and clipping add */
        for (int64_t r = 0; r < rows; r++) {
            int64_t g0 = (r / QF_MAX((int64_t)1, rows / bc->groups)) * bc->cin_g;
            double d = 0;
            for (int64_t k = 0; k < cols; k++) {
                double err =
                    (double)(q[r * cols + k] - zps[r]) * scales[r] - (double)w[r * cols + k];
                d += err * bc->mean[g0 + k / bc->spatial];
            }
            bc->delta[r] = (float)d;
        }
    {
        bool over = false;
        for (int64_t r = 0; r < rows && !over; r++)
            for (int64_t k = 0; k < cols && !over; k++)
                over = q[r * cols + k] - zps[r] > 64 || q[r * cols + k] - zps[r] < -64;
        c->rep->n_avx2_wide += over;
    }
    if (!c->cfg->symmetric_weights) {
        bool wide = false;
        for (int64_t r = 0; r < rows && !wide; r++)
            for (int64_t k = 0; k < cols && !wide; k++)
                wide = q[r * cols + k] - zps[r] > 127 || q[r * cols + k] - zps[r] < -127;
        c->rep->n_asym_wide += wide;
    }
    int cb = bits > 4 ? 8 : (bits > 2 ? 4 : 2);
    *container_bits = cb;
    char nm[256];
    snprintf(nm, sizeof nm, "%s.weight_q", layer);
    int wv;
    if (cb == 8) {
        wv = new_const(c, nm, QF_DT_I8, rank, shape, q);
    } else {
        size_t rb = qf_ref_packed_row_bytes(cols, cb);
        uint8_t *p = qf_malloc(rb * (size_t)rows + 1);
        if (!p) {
            qf_free(q);
            return nomem(c);
        }
        s = qf_ref_pack_weights(q, rows, cols, cb, p, c->err);
        int64_t pd[2] = {rows, (int64_t)rb};
        wv = s ? -1 : new_const(c, nm, QF_DT_U8, 2, pd, p);
        qf_free(p);
        if (s) {
            qf_free(q);
            qf_free(zps);
            return s;
        }
    }
    qf_free(q);
    if (wv < 0) {
        qf_free(zps);
        return nomem(c);
    }
    s = qf_value_set_qparams(c->qg, wv, bits, 0, (int)rows, scales, zps);
    qf_free(zps);
    if (s) return nomem(c);
    *wv_out = wv;
    return QF_OK;
}

static qf_status quantize_bias(qctx *c, const char *layer, const float *b, int64_t n, float in_s,
                               const float *w_s, int *bv) {
    int32_t *q = qf_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!q) return nomem(c);
    for (int64_t i = 0; i < n; i++) {
        double x = nearbyint((double)(b ? b[i] : 0.0f) / ((double)in_s * (double)w_s[i]));
        q[i] = (int32_t)QF_MAX(-2147483647.0, QF_MIN(2147483647.0, x));
    }
    char nm[256];
    snprintf(nm, sizeof nm, "%s.bias_q", layer);
    *bv = new_const(c, nm, QF_DT_I32, 1, &n, q);
    qf_free(q);
    return *bv < 0 ? nomem(c) : QF_OK;
}

typedef struct lowered {
    const char *name; /* qforge op name */
    int out_fg;       /* fg value the op writes (after fusion) */
    float clip_lo, clip_hi;
} lowered;

/* Output qparams + fused clamp attributes shared by QConv/QGemm/QAdd/QMul. */
static qf_status out_and_clamp(qctx *c, const qf_node *n, int node_idx, int *out_fg, int *qy,
                               qf_attr *attrs, int *na, float *clo, float *chi) {
    int fa = c->fused_act[node_idx];
    *out_fg = fa >= 0 ? c->fg->nodes[fa].outputs[0] : n->outputs[0];
    int bits = c->act16[node_idx] ? 16 : 8;
    /* narrower activations (2..7 bits) live in the int8 container, clamped */
    int narrow = c->act_bits[node_idx] < 8 ? c->act_bits[node_idx] : 8;
    /* the 8-bit parameters are always chosen: consumers without a 16-bit
     * kernel read the value requantized to them */
    float lo8, hi8;
    qf_status s = choose_act(c, *out_fg, narrow, &lo8, &hi8);
    if (!s && bits > 8) s = choose_act(c, *out_fg, bits, clo, chi);
    if (s) return s;
    if (bits == 8) *clo = lo8, *chi = hi8;
    if ((s = make_q_output_bits(c, *out_fg, bits, qy))) return s;
    if (fa >= 0 || narrow < 8) {
        float lo = -INFINITY, hi = INFINITY;
        if (fa >= 0) act_bounds(c->fg, &c->fg->nodes[fa], &lo, &hi);
        int64_t qlo, qhi;
        clamp_bounds(bits > 8 ? &c->aq16[*out_fg] : &c->aq[*out_fg], lo, hi, &qlo, &qhi);
        attrs[(*na)++] = attr_int("act_min", qlo);
        attrs[(*na)++] = attr_int("act_max", qhi);
    }
    attrs[(*na)++] = attr_str("requant", c->cfg->requant == QF_REQUANT_FIXED ? "fixed" : "fp32");
    return QF_OK;
}

/* Mean of the calibration activation v per channel, or NULL (no bias
 * correction, or the channel count is not `channels`). */
static const double *channel_means(qctx *c, int v, int64_t channels) {
    if (!c->ch_sum || !c->ch_sum[v] || c->ch_cnt[v] == 0) return NULL;
    const qf_value *fv = &c->fg->values[v];
    if (fv->rank < 2 || fv->dims[1] != channels) return NULL;
    return c->ch_sum[v]; /* means since the end of calibration */
}

static qf_status lower_conv(qctx *c, int idx, lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    const qf_value *w = &c->fg->values[n->inputs[1]];
    int64_t rows = w->dims[0], cols = 1;
    for (int k = 1; k < w->rank; k++)
        cols *= w->dims[k];
    float *scales = qf_malloc(sizeof(float) * (size_t)rows);
    if (!scales) return nomem(c);
    int x;
    bool wide = c->act16[idx];
    qf_status s = wide ? get_q16(c, n->inputs[0], &x) : get_q(c, n->inputs[0], &x);
    float in_s = wide ? c->aq16[n->inputs[0]].scale : c->aq[n->inputs[0]].scale;
    int wv = -1, bv = -1, cb = 8;
    int64_t groups = qf_node_attr_int(n, "group", 1), cin_g = w->rank > 1 ? w->dims[1] : 1;
    const double *mean = c->cfg->bias_correction && groups >= 1
                             ? channel_means(c, n->inputs[0], cin_g * groups)
                             : NULL;
    float *bfix = mean ? qf_calloc((size_t)rows * 2 + 1, sizeof(float)) : NULL;
    bias_corr bc = {mean, cin_g, cols / QF_MAX(cin_g, (int64_t)1), groups, bfix};
    if (!s)
        s = quantize_weights(c, n->name, w->data, rows, cols, c->w_bits[idx], w->dims, w->rank, &wv,
                             scales, &cb, bfix ? &bc : NULL, c->hess ? c->hess[idx] : NULL);
    const float *bias =
        n->n_inputs > 2 && is_const(c->fg, n->inputs[2]) ? c->fg->values[n->inputs[2]].data : NULL;
    if (!s && bfix) { /* corrected bias = bias - delta */
        float *cb_bias = bfix + rows;
        for (int64_t r = 0; r < rows; r++)
            cb_bias[r] = (bias ? bias[r] : 0.0f) - bfix[r];
        bias = cb_bias;
    }
    if (!s) s = quantize_bias(c, n->name, bias, rows, in_s, scales, &bv);
    qf_free(scales);
    qf_free(bfix);
    if (s) return s;
    qf_attr attrs[24];
    static const char *const skip[] = {"act_min"};
    int na = copy_attrs(c, n, attrs, 16, skip, 1);
    if (na < 0) return nomem(c);
    attrs[na++] = attr_int("w_bits", cb);
    if (cb != 8) attrs[na++] = attr_ints(c, "w_shape", w->dims, w->rank);
    int y;
    if ((s = out_and_clamp(c, n, idx, &lw->out_fg, &y, attrs, &na, &lw->clip_lo, &lw->clip_hi)))
        return s;
    int in[3] = {x, wv, bv};
    if (add_node(c, n->name, "QConv", "qforge", 1, in, 3, &y, 1, attrs, na) < 0) return nomem(c);
    lw->name = "QConv";
    return QF_OK;
}

/* Bias correction of a Gemm/MatMul needs its input as [M, K] rows. */
static bool g_in_rank2(const qctx *c, int v) { return c->fg->values[v].rank == 2; }

/* Gemm (transA = 0, constant B, optional constant C) and MatMul with a
 * constant 2-D weight become QGemm with weight rows [N, K]. */
static qf_status lower_gemm(qctx *c, int idx, lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    const qf_value *b = &c->fg->values[n->inputs[1]];
    bool gemm = n->op == QF_OP_GEMM;
    bool trans_b = gemm && qf_node_attr_int(n, "transB", 0) != 0;
    float alpha = gemm ? qf_node_attr_float(n, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? qf_node_attr_float(n, "beta", 1.0f) : 1.0f;
    int64_t K = trans_b ? b->dims[1] : b->dims[0], N = trans_b ? b->dims[0] : b->dims[1];
    const float *bw = b->data;
    float *w = qf_malloc(sizeof(float) * (size_t)(N * K + 1));
    float *bias = qf_calloc((size_t)N + 1, sizeof(float));
    float *scales = qf_malloc(sizeof(float) * (size_t)(N + 1));
    qf_status s = QF_OK;
    if (!w || !bias || !scales) {
        s = nomem(c);
        goto out;
    }
    for (int64_t r = 0; r < N; r++)
        for (int64_t k = 0; k < K; k++)
            w[r * K + k] = alpha * (trans_b ? bw[r * K + k] : bw[k * N + r]);
    if (gemm && n->n_inputs > 2 && n->inputs[2] >= 0) {
        const qf_value *cv = &c->fg->values[n->inputs[2]];
        int64_t cn =
            qf_tensor_numel(&(qf_tensor){.rank = cv->rank, .dims = {cv->dims[0], cv->dims[1]}});
        const float *cd = cv->data;
        for (int64_t r = 0; r < N; r++)
            bias[r] = beta * (cn == 1 ? cd[0] : cd[r]);
    }
    int x;
    bool wide = c->act16[idx];
    if ((s = wide ? get_q16(c, n->inputs[0], &x) : get_q(c, n->inputs[0], &x))) goto out;
    float in_s = wide ? c->aq16[n->inputs[0]].scale : c->aq[n->inputs[0]].scale;
    int64_t shape[2] = {N, K};
    int wv, bv, cb;
    const double *mean = c->cfg->bias_correction && g_in_rank2(c, n->inputs[0])
                             ? channel_means(c, n->inputs[0], K)
                             : NULL;
    float *delta = mean ? qf_calloc((size_t)N + 1, sizeof(float)) : NULL;
    bias_corr bc = {mean, K, 1, 1, delta};
    s = quantize_weights(c, n->name, w, N, K, c->w_bits[idx], shape, 2, &wv, scales, &cb,
                         delta ? &bc : NULL, c->hess ? c->hess[idx] : NULL);
    if (!s && delta)
        for (int64_t r = 0; r < N; r++)
            bias[r] -= delta[r];
    qf_free(delta);
    if (s) goto out;
    if ((s = quantize_bias(c, n->name, bias, N, in_s, scales, &bv))) goto out;
    qf_attr attrs[8];
    int na = 0;
    attrs[na++] = attr_int("w_bits", cb);
    if (cb != 8) attrs[na++] = attr_ints(c, "w_shape", shape, 2);
    int y;
    if ((s = out_and_clamp(c, n, idx, &lw->out_fg, &y, attrs, &na, &lw->clip_lo, &lw->clip_hi)))
        goto out;
    int in[3] = {x, wv, bv};
    if (add_node(c, n->name, "QGemm", "qforge", 1, in, 3, &y, 1, attrs, na) < 0) {
        s = nomem(c);
        goto out;
    }
    lw->name = "QGemm";
out:
    qf_free(w);
    qf_free(bias);
    qf_free(scales);
    return s;
}

static qf_status lower_binary(qctx *c, int idx, lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    int a, b;
    qf_status s = get_q(c, n->inputs[0], &a);
    if (!s) s = get_q(c, n->inputs[1], &b);
    if (s) return s;
    qf_attr attrs[4];
    int na = 0, y;
    if ((s = out_and_clamp(c, n, idx, &lw->out_fg, &y, attrs, &na, &lw->clip_lo, &lw->clip_hi)))
        return s;
    const char *op = n->op == QF_OP_ADD ? "QAdd" : "QMul";
    int in[2] = {a, b};
    if (add_node(c, n->name, op, "qforge", 1, in, 2, &y, 1, attrs, na) < 0) return nomem(c);
    lw->name = op;
    return QF_OK;
}

/* Ops whose output is computed with their own calibrated range (average
 * pools, concat) or which keep the input's (max pool, layout ops). */
static qf_status lower_simple(qctx *c, int idx, const char *qop, const char *domain, bool same_qp,
                              lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    int in[QF_MAX_NODE_IO];
    qf_status s;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) {
            in[j] = -1;
        } else if (is_const(c->fg, v)) {
            if ((s = get_f(c, v, &in[j]))) return s; /* shape inputs etc. */
        } else if ((s = get_q(c, v, &in[j]))) {
            return s;
        }
    }
    int y = n->outputs[0];
    lw->out_fg = y;
    if (same_qp) {
        c->aq[y] = c->aq[n->inputs[0]];
        int half = 1 << (c->aq[y].bits - 1);
        lw->clip_lo = (float)((-half - c->aq[y].zp) * (double)c->aq[y].scale);
        lw->clip_hi = (float)((half - 1 - c->aq[y].zp) * (double)c->aq[y].scale);
    } else if ((s = choose_act(c, y, 8, &lw->clip_lo, &lw->clip_hi))) {
        return s;
    }
    int qy;
    if ((s = make_q_output(c, y, &qy))) return s;
    qf_attr attrs[24];
    static const char *const skip[] = {"x"};
    int na = copy_attrs(c, n, attrs, 20, skip, 0);
    if (na < 0) return nomem(c);
    if (strcmp(domain, "qforge") == 0 && !same_qp)
        attrs[na++] = attr_str("requant", c->cfg->requant == QF_REQUANT_FIXED ? "fixed" : "fp32");
    int opset = strcmp(domain, "qforge") == 0 ? 1 : n->opset;
    if (add_node(c, n->name, qop, domain, opset, in, n->n_inputs, &qy, 1, attrs, na) < 0)
        return nomem(c);
    lw->name = qop;
    return QF_OK;
}

/* Element-wise activation or per-channel map as 256-entry tables: the float
 * op applied to every dequantized int8 code (of every channel), quantized
 * with the output's parameters. Per channel (lut_lowerable), the codes run
 * as one tensor of the activation's rank with channels on axis 1 and the
 * 256 codes on another axis, so the op's own kernel broadcasts its
 * per-channel constants; the node gets `axis` 1 and channels x 256 entries. */
static qf_status lower_lut(qctx *c, int idx, lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    const qf_op_def *d = qf_op_get(n->op);
    int act;
    int64_t ch;
    if (!lut_lowerable(c->fg, n, &act, &ch))
        return qf_errf(c->err, QF_ERR_INTERNAL, "quantize: %s is not a table op", n->name);
    int x;
    qf_status s = get_q(c, n->inputs[act], &x);
    if (s) return s;
    int y = n->outputs[0];
    lw->out_fg = y;
    if ((s = choose_act(c, y, 8, &lw->clip_lo, &lw->clip_hi))) return s;
    const act_q *ia = &c->aq[n->inputs[act]], *oa = &c->aq[y];
    const int64_t n_codes = 256 * ch;
    float *xin = qf_malloc(sizeof(float) * (size_t)n_codes * 2);
    int64_t *table = qf_malloc(sizeof(int64_t) * (size_t)n_codes);
    if (!xin || !table) {
        qf_free(xin);
        qf_free(table);
        return nomem(c);
    }
    float *yout = xin + n_codes;
    /* element of code q (index q + 128) and channel k: rank 2 as [256, C]
     * (q * C + k), else [1, C, 256, 1, ...] (k * 256 + q) */
    /* (BatchNormalization needs its channel axis even for one channel) */
    const bool chan_layout = ch > 1 || n->op == QF_OP_BATCH_NORM;
    const int rank = chan_layout ? c->fg->values[n->inputs[act]].rank : 1;
    qf_tensor xt = {.dtype = QF_DT_F32, .rank = rank, .data = xin};
    for (int i = 0; i < rank; i++)
        xt.dims[i] = 1;
    if (!chan_layout) {
        xt.dims[0] = 256;
    } else if (rank == 2) {
        xt.dims[0] = 256;
        xt.dims[1] = ch;
    } else {
        xt.dims[1] = ch;
        xt.dims[2] = 256;
    }
    for (int64_t k = 0; k < ch; k++)
        for (int q = 0; q < 256; q++)
            xin[rank == 2 ? q * ch + k : k * 256 + q] = ia->scale * (float)(q - 128 - ia->zp);
    qf_tensor in[QF_MAX_NODE_IO], out[1];
    memset(in, 0, sizeof in);
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0) in[j] = qf_value_tensor(&c->fg->values[n->inputs[j]]);
    in[act] = xt;
    out[0] = xt;
    out[0].data = yout;
    qf_exec_ctx ctx = {.num_threads = 1};
    s = d->run(&ctx, n, in, n->n_inputs, out, 1, NULL, c->err);
    if (!s) {
        for (int64_t k = 0; k < ch; k++)
            for (int q = 0; q < 256; q++) {
                double v = (double)yout[rank == 2 ? q * ch + k : k * 256 + q];
                double r = nearbyint(v / oa->scale) + oa->zp;
                /* NaN (log of a negative code, ...) takes the zero point */
                table[k * 256 + q] = r != r ? oa->zp : (int64_t)QF_MAX(-128.0, QF_MIN(127.0, r));
            }
    }
    qf_free(xin);
    int qy;
    if (!s) s = make_q_output(c, y, &qy);
    qf_attr attrs[32] = {attr_ints(c, "table", table, (int)n_codes), attr_int("axis", 1)};
    qf_free(table);
    if (s) return s;
    if (!attrs[0].ints) return nomem(c);
    int na = ch > 1 ? 2 : 1, ins[QF_MAX_NODE_IO] = {x}, n_in = 1;
    /* Per channel, the float op rides along (its type, the activation's
     * slot, its constant inputs and attributes): the runtime reads only the
     * tables, and the QDQ export writes DequantizeLinear -> op ->
     * QuantizeLinear, which ONNX Runtime runs faster than a per-channel
     * Gather (AlexNet's three BatchNormalizations: about 0.7 ms of 9). */
    bool source = ch > 1 && n->n_inputs <= QF_MAX_NODE_IO && n->n_attrs <= 32 - 4;
    for (int a = 0; source && a < n->n_attrs; a++) {
        const char *an = n->attrs[a].name;
        source =
            strcmp(an, "table") && strcmp(an, "axis") && strcmp(an, "op") && strcmp(an, "x_input");
    }
    for (int j = 0; source && j < n->n_inputs; j++)
        source = n->inputs[j] >= 0;
    if (source) {
        for (int j = 0; j < n->n_inputs && !s; j++)
            if (j != act) s = get_f(c, n->inputs[j], &ins[n_in++]);
        if (s) return s;
        attrs[na++] = attr_str("op", n->op_type);
        attrs[na++] = attr_int("x_input", act);
        int k = copy_attrs(c, n, attrs + na, 32 - na, NULL, 0);
        if (k < 0) return nomem(c);
        na += k;
    }
    if (add_node(c, n->name, "QLut", "qforge", 1, ins, n_in, &qy, 1, attrs, na) < 0)
        return nomem(c);
    lw->name = "QLut";
    return QF_OK;
}

static qf_status lower_float(qctx *c, int idx, lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    int in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
    qf_status s;
    for (int j = 0; j < n->n_inputs; j++) {
        in[j] = -1;
        if (n->inputs[j] >= 0 && (s = get_f(c, n->inputs[j], &in[j]))) return s;
    }
    for (int j = 0; j < n->n_outputs; j++) {
        int v = n->outputs[j];
        out[j] = -1;
        if (v < 0) continue;
        const qf_value *fv = &c->fg->values[v];
        char nm[256];
        fresh_name(c, fv->name, NULL, nm, sizeof nm);
        if ((out[j] = new_value(c, nm, fv->dtype, fv)) < 0) return nomem(c);
        c->f_of[v] = out[j];
    }
    qf_attr attrs[32];
    int na = copy_attrs(c, n, attrs, 32, NULL, 0);
    if (na < 0) return nomem(c);
    if (add_node(c, n->name, n->op_type, n->domain, n->opset, in, n->n_inputs, out, n->n_outputs,
                 attrs, na) < 0)
        return nomem(c);
    lw->name = "float";
    lw->out_fg = n->outputs[0];
    c->rep->n_float_fallback++;
    return QF_OK;
}

/* Which values will be consumed as integers (they need observers). */
static bool consumes_int(const qf_node *n) {
    switch (n->op) {
    case QF_OP_CONV:
    case QF_OP_GEMM:
    case QF_OP_MATMUL:
    case QF_OP_ADD:
    case QF_OP_MUL:
    case QF_OP_MAX_POOL:
    case QF_OP_AVERAGE_POOL:
    case QF_OP_GLOBAL_AVERAGE_POOL:
    case QF_OP_CONCAT:
    case QF_OP_RESIZE:
    case QF_OP_PAD: return true;
    default: return is_layout_op(n->op);
    }
}

enum {
    K_FLOAT = 0,
    K_CONV,
    K_GEMM,
    K_BINARY,
    K_MAXPOOL,
    K_AVGPOOL,
    K_GAP,
    K_CONCAT,
    K_LAYOUT,
    K_LUT,
    K_RESIZE,
    K_PAD
};

/* Resize and Pad move int8 values without requantizing: the output keeps
 * the input's parameters; their constant shape inputs become attributes. */
static qf_status lower_resize_pad(qctx *c, int idx, bool resize, lowered *lw) {
    const qf_node *n = &c->fg->nodes[idx];
    int x;
    qf_status s = get_q(c, n->inputs[0], &x);
    if (s) return s;
    int y = n->outputs[0];
    lw->out_fg = y;
    c->aq[y] = c->aq[n->inputs[0]];
    lw->clip_lo = (float)((-128 - c->aq[y].zp) * (double)c->aq[y].scale);
    lw->clip_hi = (float)((127 - c->aq[y].zp) * (double)c->aq[y].scale);
    int qy;
    if ((s = make_q_output(c, y, &qy))) return s;
    qf_attr attrs[24];
    static const char *const skip[] = {"pads", "value", "scales", "sizes"};
    int na = copy_attrs(c, n, attrs, 20, skip, 4);
    if (na < 0) return nomem(c);
    if (resize) {
        int sv = n->opset < 11 ? (n->n_inputs > 1 ? n->inputs[1] : -1)
                               : (n->n_inputs > 2 ? n->inputs[2] : -1);
        int zv = n->opset >= 11 && n->n_inputs > 3 ? n->inputs[3] : -1;
        const qf_value *scv = sv >= 0 ? &c->fg->values[sv] : NULL;
        if (scv && scv->nbytes) {
            int cnt = (int)(scv->nbytes / sizeof(float));
            float *f = qf_graph_alloc(c->qg, scv->nbytes);
            if (!f) return nomem(c);
            memcpy(f, scv->data, scv->nbytes);
            attrs[na++] =
                (qf_attr){.name = "scales", .type = QF_ATTR_FLOATS, .floats = f, .n = cnt};
        } else if (zv >= 0) {
            const qf_value *szv = &c->fg->values[zv];
            attrs[na++] = attr_ints(c, "sizes", szv->data, (int)(szv->nbytes / sizeof(int64_t)));
        }
    } else {
        const int64_t *pads = NULL;
        int np = 0;
        if (n->opset < 11) {
            np = qf_node_attr_ints(n, "pads", &pads);
        } else {
            const qf_value *pv = &c->fg->values[n->inputs[1]];
            pads = pv->data;
            np = (int)(pv->nbytes / sizeof(int64_t));
        }
        attrs[na++] = attr_ints(c, "pads", pads, np);
    }
    const char *op = resize ? "QResize" : "QPad";
    if (add_node(c, n->name, op, "qforge", 1, &x, 1, &qy, 1, attrs, na) < 0) return nomem(c);
    lw->name = op;
    return QF_OK;
}

static bool resize_pad_ok(const qf_graph *g, const qf_node *n) {
    if (g->values[n->inputs[0]].rank != 4) return false;
    if (n->op == QF_OP_RESIZE) {
        const char *mode = qf_node_attr_str(n, "mode", "nearest");
        if (strcmp(mode, "nearest") && strcmp(mode, "linear")) return false;
        if (qf_node_attr_int(n, "antialias", 0) || qf_node_attr(n, "axes")) return false;
        const char *ct = qf_node_attr_str(n, "coordinate_transformation_mode", "half_pixel");
        if (strcmp(ct, "tf_crop_and_resize") == 0) return false;
        int sv = n->opset < 11 ? (n->n_inputs > 1 ? n->inputs[1] : -1)
                               : (n->n_inputs > 2 ? n->inputs[2] : -1);
        int zv = n->opset >= 11 && n->n_inputs > 3 ? n->inputs[3] : -1;
        bool scales = sv >= 0 && is_const(g, sv) && g->values[sv].nbytes == 4 * sizeof(float) &&
                      g->values[sv].dtype == QF_DT_F32;
        bool sizes = zv >= 0 && is_const(g, zv) && g->values[zv].dtype == QF_DT_I64 &&
                     g->values[zv].nbytes == 4 * sizeof(int64_t);
        if (scales) {
            const float *f = g->values[sv].data;
            return f[0] == 1.0f && f[1] == 1.0f;
        }
        if (sizes) {
            const int64_t *z = g->values[zv].data;
            return z[0] == g->values[n->inputs[0]].dims[0] &&
                   z[1] == g->values[n->inputs[0]].dims[1];
        }
        return false;
    }
    const char *mode = qf_node_attr_str(n, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "edge") && strcmp(mode, "reflect")) return false;
    if (n->opset < 11) return qf_node_attr_float(n, "value", 0.0f) == 0.0f;
    if (n->n_inputs < 2 || !is_const(g, n->inputs[1]) || g->values[n->inputs[1]].dtype != QF_DT_I64)
        return false;
    if (n->n_inputs > 3 && n->inputs[3] >= 0) return false; /* axes */
    if (n->n_inputs > 2 && n->inputs[2] >= 0) {
        int cv = n->inputs[2];
        if (!is_const(g, cv) || g->values[cv].dtype != QF_DT_F32 ||
            *(const float *)g->values[cv].data != 0.0f)
            return false;
    }
    return true;
}

static qf_status plan_lowering(qctx *c, int idx, int *kind) {
    const qf_graph *g = c->fg;
    const qf_node *n = &g->nodes[idx];
    *kind = K_FLOAT;
    int lut_act;
    int64_t lut_ch;
    bool act_in = n->n_inputs > 0 && n->inputs[0] >= 0 && !is_const(g, n->inputs[0]) &&
                  g->values[n->inputs[0]].dtype == QF_DT_F32;
    /* (constant * x and constant + x have their activation second) */
    if (!act_in &&
        !((n->op == QF_OP_ADD || n->op == QF_OP_MUL) && lut_lowerable(g, n, &lut_act, &lut_ch)))
        return QF_OK;
    switch (n->op) {
    case QF_OP_CONV: {
        const qf_value *w = &g->values[n->inputs[1]];
        bool bias_ok = n->n_inputs < 3 || n->inputs[2] < 0 || is_const(g, n->inputs[2]);
        if (is_const(g, n->inputs[1]) && w->dtype == QF_DT_F32 && (w->rank == 4 || w->rank == 3) &&
            bias_ok && strcmp(qf_node_attr_str(n, "auto_pad", "NOTSET"), "NOTSET") == 0)
            *kind = K_CONV;
        break;
    }
    case QF_OP_GEMM: {
        const qf_value *b = &g->values[n->inputs[1]];
        bool c_ok = n->n_inputs < 3 || n->inputs[2] < 0 ||
                    (is_const(g, n->inputs[2]) && g->values[n->inputs[2]].rank <= 2);
        if (is_const(g, n->inputs[1]) && b->rank == 2 && b->dtype == QF_DT_F32 && c_ok &&
            qf_node_attr_int(n, "transA", 0) == 0 && g->values[n->inputs[0]].rank == 2)
            *kind = K_GEMM;
        break;
    }
    case QF_OP_MATMUL: {
        const qf_value *b = &g->values[n->inputs[1]];
        if (is_const(g, n->inputs[1]) && b->rank == 2 && b->dtype == QF_DT_F32) *kind = K_GEMM;
        break;
    }
    case QF_OP_ADD:
    case QF_OP_MUL:
        if (n->inputs[1] >= 0 && !is_const(g, n->inputs[1]) &&
            g->values[n->inputs[1]].dtype == QF_DT_F32 && act_in)
            *kind = K_BINARY;
        else if (lut_lowerable(g, n, &lut_act, &lut_ch))
            *kind = K_LUT;
        break;
    case QF_OP_MAX_POOL:
        if (n->n_outputs == 1 || n->outputs[1] < 0) *kind = K_MAXPOOL;
        break;
    case QF_OP_AVERAGE_POOL: *kind = K_AVGPOOL; break;
    case QF_OP_GLOBAL_AVERAGE_POOL: *kind = K_GAP; break;
    case QF_OP_CONCAT: {
        bool all = true;
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] < 0 || is_const(g, n->inputs[j])) all = false;
        if (all) *kind = K_CONCAT;
        break;
    }
    case QF_OP_RESIZE:
        if (resize_pad_ok(g, n)) *kind = K_RESIZE;
        break;
    case QF_OP_PAD:
        if (resize_pad_ok(g, n)) *kind = K_PAD;
        break;
    default:
        if (is_layout_op(n->op))
            *kind = K_LAYOUT;
        else if (lut_lowerable(g, n, &lut_act, &lut_ch))
            *kind = K_LUT;
        break;
    }
    if (*kind == K_CONV || *kind == K_GEMM) {
        if (c->w_bits[idx] < 2 || c->w_bits[idx] > 8) *kind = K_FLOAT;
    }
    if (c->act_bits[idx] > 8) {
        /* 16-bit activations: Conv/Gemm/MatMul run the int16 kernels when
         * their int32 accumulator cannot overflow (with room for the bias);
         * any other 16-bit layer stays in float, which is more precise */
        int64_t k = 0;
        const qf_value *w = &g->values[n->inputs[1]];
        if (*kind == K_CONV) {
            k = 1;
            for (int d = 1; d < w->rank; d++)
                k *= w->dims[d];
        } else if (*kind == K_GEMM) {
            bool tb = n->op == QF_OP_GEMM && qf_node_attr_int(n, "transB", 0) != 0;
            k = tb ? w->dims[1] : w->dims[0];
        }
        int64_t bound = k > 0 ? qf_ref_accum_bound(k, 16, c->w_bits[idx]) : -1;
        if (bound >= 0 && bound <= INT32_MAX / 2)
            c->act16[idx] = true;
        else
            *kind = K_FLOAT;
    }
    return QF_OK;
}

/* ---- driver ------------------------------------------------------------- */

static qf_status prepare(const qf_graph *src, qctx *c) {
    qf_graph *g;
    qf_status s = qf_graph_clone(src, &g, c->err);
    if (s) return s;
    if ((s = qf_pass_optimize(g, c->err)) || (s = qf_pass_infer_shapes(g, c->err))) {
        qf_graph_free(g);
        return s;
    }
    if ((s = qf_model_from_graph(g, src->source_path, &c->fm, c->err))) {
        qf_graph_free(g);
        return s;
    }
    c->fg = g;
    return QF_OK;
}

qf_status qf_quantize(const qf_graph *src, const qf_dataset *calib, const qf_qconfig *cfg,
                      const qf_quant_options *opt, qf_graph **out, qf_quant_report *report,
                      qf_err *err) {
    *out = NULL;
    qf_quant_report local_rep;
    memset(&local_rep, 0, sizeof local_rep);
    qctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.opt = opt;
    c.err = err;
    c.rep = report ? report : &local_rep;
    memset(c.rep, 0, sizeof *c.rep);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    qf_status s = prepare(src, &c);
    if (s) return s;
    qf_graph *g = c.fg;
    int nn = g->n_nodes, nv = g->n_values;
    int *kind = NULL;
    c.w_bits = qf_calloc((size_t)nn + 1, sizeof(int));
    c.act_bits = qf_calloc((size_t)nn + 1, sizeof(int));
    c.fused_into = qf_malloc(sizeof(int) * (size_t)(nn + 1));
    c.fused_act = qf_malloc(sizeof(int) * (size_t)(nn + 1));
    kind = qf_calloc((size_t)nn + 1, sizeof(int));
    c.obs = qf_calloc((size_t)nv + 1, sizeof(qf_observer *));
    c.aq = qf_calloc((size_t)nv + 1, sizeof(act_q));
    c.aq16 = qf_calloc((size_t)nv + 1, sizeof(act_q));
    c.q16_of = qf_malloc(sizeof(int) * (size_t)(nv + 1));
    c.act16 = qf_calloc((size_t)nn + 1, sizeof(bool));
    c.q_of = qf_malloc(sizeof(int) * (size_t)(nv + 1));
    c.f_of = qf_malloc(sizeof(int) * (size_t)(nv + 1));
    c.rep->layers = qf_calloc((size_t)nn + 1, sizeof(qf_quant_layer));
    if (!c.w_bits || !c.act_bits || !c.fused_into || !c.fused_act || !kind || !c.obs || !c.aq ||
        !c.q_of || !c.f_of || !c.rep->layers || !c.aq16 || !c.q16_of || !c.act16) {
        s = nomem(&c);
        goto done;
    }
    for (int i = 0; i < nn; i++)
        c.fused_into[i] = c.fused_act[i] = -1;
    for (int v = 0; v < nv; v++)
        c.q_of[v] = c.f_of[v] = c.q16_of[v] = -1;
    if ((s = qf_qconfig_resolve(cfg, g, opt ? opt->config_path : NULL, c.w_bits, c.act_bits, err)))
        goto done;

    /* decide each node's lowering and the Relu/Clip fusions */
    for (int i = 0; i < nn; i++) {
        if ((s = plan_lowering(&c, i, &kind[i]))) goto done;
        if (kind[i] == K_CONV || kind[i] == K_GEMM || kind[i] == K_BINARY) {
            int consumer;
            float lo, hi;
            if (single_consumer(g, g->nodes[i].outputs[0], &consumer) && consumer > i &&
                act_bounds(g, &g->nodes[consumer], &lo, &hi) &&
                g->nodes[consumer].inputs[0] == g->nodes[i].outputs[0]) {
                c.fused_act[i] = consumer;
                c.fused_into[consumer] = i;
            }
        }
    }
    /* observers for every float activation that an integer op reads or writes */
    for (int i = 0; i < nn; i++) {
        const qf_node *n = &g->nodes[i];
        bool need_out = kind[i] != K_FLOAT && c.fused_into[i] < 0;
        if (kind[i] == K_FLOAT) {
            /* a float op whose consumer is an integer op needs its range */
            for (int j = 0; j < n->n_outputs; j++) {
                int v = n->outputs[j];
                if (v < 0) continue;
                for (int k = i + 1; k < nn; k++)
                    for (int m = 0; m < g->nodes[k].n_inputs; m++)
                        if (g->nodes[k].inputs[m] == v && kind[k] != K_FLOAT) need_out = true;
            }
        }
        int outs = c.fused_act[i] >= 0 ? g->nodes[c.fused_act[i]].outputs[0] : n->outputs[0];
        if (need_out && outs >= 0 && !c.obs[outs] && g->values[outs].dtype == QF_DT_F32) {
            char nm[160];
            snprintf(nm, sizeof nm, "%s", g->values[outs].name);
            if ((s = qf_observer_create(NULL, nm, &c.obs[outs], err))) goto done;
        }
        if (kind[i] != K_FLOAT && consumes_int(n))
            for (int j = 0; j < n->n_inputs; j++) {
                int v = n->inputs[j];
                if (v < 0 || is_const(g, v) || c.obs[v]) continue;
                if ((s = qf_observer_create(NULL, g->values[v].name, &c.obs[v], err))) goto done;
            }
        int la;
        int64_t lc;
        if (kind[i] == K_LUT && lut_lowerable(g, n, &la, &lc) && !c.obs[n->inputs[la]] &&
            (s = qf_observer_create(NULL, g->values[n->inputs[la]].name, &c.obs[n->inputs[la]],
                                    err)))
            goto done;
    }
    if (cfg->bias_correction) { /* per-channel input means of the weighted layers */
        c.ch_sum = qf_calloc((size_t)nv + 1, sizeof(double *));
        c.ch_cnt = qf_calloc((size_t)nv + 1, sizeof(int64_t));
        if (!c.ch_sum || !c.ch_cnt) {
            s = nomem(&c);
            goto done;
        }
        for (int i = 0; i < nn; i++) {
            if (kind[i] != K_CONV && kind[i] != K_GEMM) continue;
            int v = g->nodes[i].inputs[0];
            const qf_value *fv = &g->values[v];
            if (!c.obs[v] || c.ch_sum[v] || fv->rank < 2 || fv->dims[1] <= 0) continue;
            if (!(c.ch_sum[v] = qf_calloc((size_t)fv->dims[1], sizeof(double)))) {
                s = nomem(&c);
                goto done;
            }
        }
    }
    if (cfg->rounding == QF_ROUND_GPTQ) {
        c.hess = qf_calloc((size_t)nn + 1, sizeof(qf_gptq_hess *));
        if (!c.hess) {
            s = nomem(&c);
            goto done;
        }
        size_t used = 0;
        for (int i = 0; i < nn; i++) {
            if (kind[i] != K_CONV && kind[i] != K_GEMM) continue;
            const qf_node *n = &g->nodes[i];
            const qf_value *w = &g->values[n->inputs[1]];
            bool conv = kind[i] == K_CONV;
            int64_t k = 0, groups = conv ? qf_node_attr_int(n, "group", 1) : 1, cols = 1;
            if (conv) {
                for (int d = 1; d < w->rank; d++)
                    cols *= w->dims[d];
            } else {
                bool tb = n->op == QF_OP_GEMM && qf_node_attr_int(n, "transB", 0) != 0;
                k = cols = tb ? w->dims[1] : w->dims[0];
            }
            size_t need = qf_gptq_hess_bytes(groups, cols);
            if (need == SIZE_MAX || used + need > QF_GPTQ_MEM_BUDGET || cols > QF_GPTQ_MAX_COLS) {
                c.rep->n_gptq_skipped++;
                continue;
            }
            if (!(c.hess[i] = qf_malloc(sizeof(qf_gptq_hess)))) {
                s = nomem(&c);
                goto done;
            }
            if ((s = qf_gptq_hess_init(c.hess[i], conv ? n : NULL, w->dims, w->rank, k, err))) {
                qf_free(c.hess[i]);
                c.hess[i] = NULL;
                qf_err_prefix(err, "%s: '%s'", g->source_path, n->name);
                goto done;
            }
            used += need;
        }
    }
    if ((s = calibrate(&c, calib, opt))) goto done;
    for (int v = 0; c.ch_sum && v < nv; v++) /* sums -> means (ch_cnt: values per channel) */
        for (int64_t k = 0; c.ch_sum[v] && c.ch_cnt[v] > 0 && k < g->values[v].dims[1]; k++)
            c.ch_sum[v][k] /= (double)c.ch_cnt[v];
    /* input activations that are not produced by a lowered node */
    for (int v = 0; v < nv; v++)
        if (c.obs[v] && !c.aq[v].set) {
            float lo, hi;
            int prod = g->values[v].producer;
            bool mine = prod >= 0 && kind[prod] != K_FLOAT;
            if (prod >= 0 && c.fused_into[prod] >= 0) mine = true;
            if (!mine && (s = choose_act(&c, v, 8, &lo, &hi))) goto done;
        }
    /* 16-bit layers read their input with 16-bit parameters of its own range */
    for (int i = 0; i < nn; i++)
        if (c.act16[i] && !c.aq16[g->nodes[i].inputs[0]].set) {
            float lo, hi;
            if ((s = choose_act(&c, g->nodes[i].inputs[0], 16, &lo, &hi))) goto done;
        }

    /* build the quantized graph */
    c.qg = qf_graph_create();
    if (!c.qg) {
        s = nomem(&c);
        goto done;
    }
    c.qg->source_path = qf_arena_strdup(&c.qg->arena, src->source_path);
    c.qg->name = qf_arena_strdup(&c.qg->arena, src->name ? src->name : "");
    c.qg->producer = "qforge";
    c.qg->opset = QF_MAX(g->opset, 13);
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        int qv = new_value(&c, g->values[v].name, g->values[v].dtype, &g->values[v]);
        if (qv < 0 || qf_graph_add_input(c.qg, qv)) {
            s = nomem(&c);
            goto done;
        }
        c.f_of[v] = qv;
    }
    for (int i = 0; i < nn && !s; i++) {
        if (c.fused_into[i] >= 0) continue;
        lowered lw = {.name = "float", .out_fg = g->nodes[i].outputs[0]};
        switch (kind[i]) {
        case K_CONV: s = lower_conv(&c, i, &lw); break;
        case K_GEMM: s = lower_gemm(&c, i, &lw); break;
        case K_BINARY: s = lower_binary(&c, i, &lw); break;
        case K_MAXPOOL: s = lower_simple(&c, i, "QMaxPool", "qforge", true, &lw); break;
        case K_AVGPOOL: s = lower_simple(&c, i, "QAveragePool", "qforge", false, &lw); break;
        case K_GAP: s = lower_simple(&c, i, "QGlobalAveragePool", "qforge", false, &lw); break;
        case K_CONCAT: s = lower_simple(&c, i, "QConcat", "qforge", false, &lw); break;
        case K_LAYOUT: s = lower_simple(&c, i, g->nodes[i].op_type, "", true, &lw); break;
        case K_LUT: s = lower_lut(&c, i, &lw); break;
        case K_RESIZE: s = lower_resize_pad(&c, i, true, &lw); break;
        case K_PAD: s = lower_resize_pad(&c, i, false, &lw); break;
        default: s = lower_float(&c, i, &lw); break;
        }
        if (s) break;
        qf_quant_layer *L = &c.rep->layers[c.rep->n_layers++];
        const qf_node *n = &g->nodes[i];
        snprintf(L->name, sizeof L->name, "%s", n->name);
        snprintf(L->op, sizeof L->op, "%s%s", n->op_type,
                 c.fused_act[i] >= 0
                     ? (g->nodes[c.fused_act[i]].op == QF_OP_RELU ? "+Relu" : "+Clip")
                     : "");
        snprintf(L->lowered, sizeof L->lowered, "%s", lw.name);
        L->w_bits = (kind[i] == K_CONV || kind[i] == K_GEMM) ? c.w_bits[i] : 0;
        bool own_bits = kind[i] == K_CONV || kind[i] == K_GEMM || kind[i] == K_BINARY;
        L->act_bits = kind[i] == K_FLOAT ? 32
                      : c.act16[i]       ? 16
                      : own_bits         ? QF_MIN(c.act_bits[i], 8)
                                         : 8;
        int ov = lw.out_fg;
        if (ov >= 0) {
            snprintf(L->out_value, sizeof L->out_value, "%s", g->values[ov].name);
            const act_q *oq = c.act16[i] ? &c.aq16[ov] : &c.aq[ov];
            if (oq->set) {
                L->out_scale = oq->scale;
                L->out_zero_point = oq->zp;
                L->clip_lo = lw.clip_lo;
                L->clip_hi = lw.clip_hi;
            }
            if (c.obs[ov]) {
                qf_observer_stats st;
                qf_observer_get_stats(c.obs[ov], &st);
                L->obs_min = (float)st.min;
                L->obs_max = (float)st.max;
                if (c.aq[ov].set)
                    L->clip_fraction = clip_fraction(c.obs[ov], lw.clip_lo, lw.clip_hi);
            }
        }
    }
    if (s) goto done;
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i], fv;
        if ((s = get_f(&c, v, &fv))) goto done;
        if (strcmp(c.qg->values[fv].name, g->values[v].name) != 0) {
            s = qf_errf(err, QF_ERR_INTERNAL, "%s: output '%s' lost its name", src->source_path,
                        g->values[v].name);
            goto done;
        }
        if ((s = qf_graph_add_output(c.qg, fv))) goto done;
    }
    if ((s = qf_graph_toposort(c.qg, err))) goto done;
    if ((s = qf_graph_parse_ops(c.qg, err))) goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    c.rep->calib_seconds =
        (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    *out = c.qg;
    c.qg = NULL;
done:
    if (c.obs)
        for (int v = 0; v < nv; v++)
            qf_observer_free(c.obs[v]);
    qf_free(c.obs);
    qf_free(c.aq);
    qf_free(c.q_of);
    qf_free(c.f_of);
    qf_free(c.w_bits);
    qf_free(c.act_bits);
    qf_free(c.aq16);
    qf_free(c.q16_of);
    qf_free(c.act16);
    for (int v = 0; c.ch_sum && v < nv; v++)
        qf_free(c.ch_sum[v]);
    qf_free(c.ch_sum);
    qf_free(c.ch_cnt);
    for (int i = 0; c.hess && i < nn; i++) {
        qf_gptq_hess_free(c.hess[i]);
        qf_free(c.hess[i]);
    }
    qf_free(c.hess);
    qf_free(c.fused_into);
    qf_free(c.fused_act);
    qf_free(kind);
    qf_graph_free(c.qg);
    qf_model_free(c.fm);
    if (s || !report) qf_quant_report_free(c.rep);
    return s;
}
