/* compress_eval.c - measuring candidates for the compress pipeline: top-1
 * and output SQNR against cached float outputs, the stored size estimate,
 * batch-1 latency, and the up-front data checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/qfm.h"
#include "io/qfm_codec.h"
#include "ir/passes.h"
#include "pipeline/compress_internal.h"
#include "runtime/runtime.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Per-sample element count of the graph's input (dynamic dims read as 1). */
static int64_t input_sample_numel(const qf_graph *g) {
    const qf_value *iv = &g->values[g->inputs[0]];
    int64_t per = 1;
    for (int k = 1; k < iv->rank; k++)
        per *= iv->dims[k] > 0 ? iv->dims[k] : 1;
    return per;
}

qf_status qf_compress_check_data(const qf_graph *fg, const qf_dataset *d, const char *what,
                                 qf_err *err) {
    if (!fg || !d) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: missing", what);
    const char *src = d->source ? d->source : "dataset";
    if (fg->n_inputs != 1)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "compress: the model has %d inputs, not 1",
                       fg->n_inputs);
    if (fg->n_outputs < 1) return qf_errf(err, QF_ERR_FORMAT, "compress: the model has no output");
    if (d->n < 1) return qf_errf(err, QF_ERR_INVALID_ARG, "%s (%s): no samples", what, src);
    const qf_value *iv = &fg->values[fg->inputs[0]];
    if (iv->rank < 1 || input_sample_numel(fg) != d->sample_numel)
        return qf_errf(err, QF_ERR_SHAPE,
                       "%s (%s): samples have %lld values, model input '%s' takes %lld", what,
                       src, (long long)d->sample_numel, iv->name,
                       (long long)input_sample_numel(fg));
    if (d->num_classes < 1 || !d->labels)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s (%s): unlabelled; accuracy needs labels", what,
                       src);
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s (%s): sample %lld has no label", what, src,
                           (long long)i);
    /* the class count: from the declared output shape, else inferred */
    qf_graph *c = NULL;
    const qf_value *ov = &fg->values[fg->outputs[0]];
    if ((ov->rank < 1 || ov->dims[ov->rank - 1] <= 0) && qf_graph_clone(fg, &c, NULL) == QF_OK &&
        qf_pass_infer_shapes(c, NULL) == QF_OK)
        ov = &c->values[c->outputs[0]];
    qf_status st = QF_OK;
    if (ov->rank >= 1 && ov->dims[ov->rank - 1] > 0 && d->num_classes > ov->dims[ov->rank - 1])
        st = qf_errf(err, QF_ERR_SHAPE,
                     "%s (%s): labels go up to %d but the model's output '%s' has %lld classes",
                     what, src, d->num_classes - 1, ov->name, (long long)ov->dims[ov->rank - 1]);
    qf_graph_free(c);
    return st;
}

/* A session over a private copy of g with a batch-sized input buffer. */
typedef struct runner {
    qf_model *m;
    qf_session *s;
    float *in;
    qf_tensor t;
    int batch;
    bool fixed_batch;
} runner;

static void runner_free(runner *r) {
    qf_session_free(r->s);
    qf_model_free(r->m);
    qf_free_aligned(r->in);
    memset(r, 0, sizeof *r);
}

static qf_status runner_init(runner *r, const qf_graph *g, int batch, int threads, qf_err *err) {
    memset(r, 0, sizeof *r);
    qf_graph *c = NULL;
    qf_status st = qf_graph_clone(g, &c, err);
    if (st) return st;
    if ((st = qf_model_from_graph(c, g->source_path ? g->source_path : "model", &r->m, err))) {
        qf_graph_free(c);
        return st;
    }
    const qf_graph *mg = qf_model_graph(r->m);
    const qf_value *iv = &mg->values[mg->inputs[0]];
    if (iv->rank < 1) {
        runner_free(r);
        return qf_errf(err, QF_ERR_SHAPE, "compress: model input '%s' has no known shape",
                       iv->name);
    }
    r->fixed_batch = iv->dims[0] > 0;
    r->batch = r->fixed_batch ? (int)iv->dims[0] : batch;
    size_t n;
    if (!qf_mul_size((size_t)r->batch, (size_t)input_sample_numel(mg), &n) ||
        !qf_mul_size(n, sizeof(float), &n) || !(r->in = qf_malloc_aligned(n))) {
        runner_free(r);
        return qf_errf(err, QF_ERR_NOMEM, "compress: out of memory for the input batch");
    }
    memset(r->in, 0, n);
    r->t.dtype = QF_DT_F32;
    r->t.rank = iv->rank;
    r->t.data = r->in;
    for (int k = 0; k < iv->rank; k++)
        r->t.dims[k] = iv->dims[k] > 0 ? iv->dims[k] : 1;
    qf_session_options so = {.num_threads = threads > 0 ? threads : 1};
    if ((st = qf_session_create(r->m, &so, &r->s, err))) runner_free(r);
    return st;
}

qf_status qf_cp_eval_init(qf_cp_eval *ev, const qf_graph *fg, const qf_dataset *val,
                          int64_t limit, int num_threads, qf_err *err) {
    memset(ev, 0, sizeof *ev);
    ev->val = val;
    ev->num_threads = num_threads;
    runner r;
    qf_status st = runner_init(&r, fg, 32, num_threads, err);
    if (st) return st;
    int64_t total = limit > 0 ? QF_MIN(limit, val->n) : val->n;
    if (r.fixed_batch) total -= total % r.batch; /* whole batches only */
    if (total < 1) {
        runner_free(&r);
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: too few validation samples");
    }
    ev->n = total;
    ev->labels = qf_malloc(sizeof(int32_t) * (size_t)total);
    if (!ev->labels) st = qf_errf(err, QF_ERR_NOMEM, "compress: out of memory");
    int64_t correct = 0;
    for (int64_t i = 0; i < total && !st; i += r.batch) {
        int64_t cnt = QF_MIN((int64_t)r.batch, total - i);
        if ((st = qf_dataset_fill(val, i, cnt, r.in, ev->labels + i, err))) break;
        r.t.dims[0] = cnt;
        qf_tensor o;
        if ((st = qf_session_run(r.s, &r.t, 1, &o, 1, err))) break;
        int64_t on = qf_tensor_numel(&o);
        if (o.dtype != QF_DT_F32 || on <= 0 || on % cnt) {
            st = qf_errf(err, QF_ERR_SHAPE, "compress: the model's output is not [N, classes]");
            break;
        }
        if (!ev->ref) {
            ev->classes = on / cnt;
            size_t bytes;
            if (!qf_mul_size((size_t)total, (size_t)ev->classes, &bytes) ||
                !qf_mul_size(bytes, sizeof(float), &bytes) || !(ev->ref = qf_malloc(bytes))) {
                st = qf_errf(err, QF_ERR_NOMEM, "compress: out of memory");
                break;
            }
        }
        if (on / cnt != ev->classes) {
            st = qf_errf(err, QF_ERR_SHAPE, "compress: output size changes between batches");
            break;
        }
        memcpy(ev->ref + i * ev->classes, o.data, sizeof(float) * (size_t)on);
        for (int64_t b = 0; b < cnt; b++)
            correct += argmax(ev->ref + (i + b) * ev->classes, ev->classes) == ev->labels[i + b];
    }
    runner_free(&r);
    if (st) {
        qf_cp_eval_free(ev);
        return st;
    }
    ev->float_acc = (double)correct / (double)total;
    return QF_OK;
}

qf_status qf_cp_eval_graph(const qf_cp_eval *ev, const qf_graph *g, int64_t limit, double *acc,
                           double *sqnr_db, double *flips, qf_err *err) {
    runner r;
    qf_status st = runner_init(&r, g, 32, ev->num_threads, err);
    if (st) return st;
    int64_t total = limit > 0 ? QF_MIN(limit, ev->n) : ev->n;
    if (r.fixed_batch) total -= total % r.batch;
    int64_t correct = 0, done = 0, flipped = 0;
    double sig = 0, noise = 0;
    for (int64_t i = 0; i < total; i += r.batch) {
        int64_t cnt = QF_MIN((int64_t)r.batch, total - i);
        if ((st = qf_dataset_fill(ev->val, i, cnt, r.in, NULL, err))) break;
        r.t.dims[0] = cnt;
        qf_tensor o;
        if ((st = qf_session_run(r.s, &r.t, 1, &o, 1, err))) break;
        if (o.dtype != QF_DT_F32 || qf_tensor_numel(&o) != cnt * ev->classes) {
            st = qf_errf(err, QF_ERR_SHAPE, "compress: candidate's output differs in shape");
            break;
        }
        const float *q = o.data, *f = ev->ref + i * ev->classes;
        for (int64_t b = 0; b < cnt; b++) {
            int64_t aq = argmax(q + b * ev->classes, ev->classes);
            correct += aq == ev->labels[i + b];
            flipped += aq != argmax(f + b * ev->classes, ev->classes);
        }
        for (int64_t k = 0; k < cnt * ev->classes; k++) {
            double d = (double)f[k] - (double)q[k];
            sig += (double)f[k] * f[k];
            noise += d * d;
        }
        done += cnt;
    }
    runner_free(&r);
    if (st) return st;
    if (done < 1) return qf_errf(err, QF_ERR_INVALID_ARG, "compress: no samples evaluated");
    if (acc) *acc = (double)correct / (double)done;
    if (flips) *flips = (double)flipped / (double)done;
    if (sqnr_db) *sqnr_db = noise > 0 ? 10.0 * log10(sig / noise) : INFINITY;
    return QF_OK;
}

void qf_cp_eval_free(qf_cp_eval *ev) {
    if (!ev) return;
    qf_free(ev->ref);
    qf_free(ev->labels);
    ev->ref = NULL;
    ev->labels = NULL;
}

/* Fast zstd for estimates: level 3 lands within a few percent of the
 * writer's level 12 on weight tensors and is an order of magnitude faster. */
#define SIZE_EST_ZSTD_LEVEL 3

int64_t qf_compress_model_size(const qf_graph *g) {
    if (!g) return -1;
    /* header, section table and a compressed metadata section */
    int64_t total = QF_QFM_HEADER_SIZE + 10 * QF_QFM_SECTION_ENTRY_SIZE + 512;
    for (int i = 0; i < g->n_values; i++) {
        const qf_value *v = &g->values[i];
        total += QF_QFM_VALUE_REC_SIZE / 4 + (int64_t)strlen(v->name) / 2; /* zstd'd sections */
        if (v->qp) total += (QF_QFM_QPARAMS_HDR_SIZE + 8 * (int64_t)v->qp->n) / 2;
        if (!(v->flags & QF_VAL_CONST) || !v->data) continue;
        int64_t best = (int64_t)v->nbytes + QF_QFM_ALIGN / 2;
        size_t es = qf_dtype_size(v->dtype);
        if (v->nbytes >= 256 && es > 0 && v->nbytes % es == 0) {
            static const uint32_t encs[] = {QF_QFM_ENC_ZSTD, QF_QFM_ENC_SPARSE_BITMASK_ZSTD};
            for (size_t k = 0; k < QF_ARRAY_LEN(encs); k++) {
                void *out = NULL;
                size_t len = 0;
                if (qf_qfm_tensor_encode(encs[k], v->data, v->nbytes, es, SIZE_EST_ZSTD_LEVEL,
                                         &out, &len, NULL) == QF_OK &&
                    (int64_t)len + 64 <= best)
                    best = (int64_t)len; /* the writer keeps RAW unless 64 bytes are saved */
                qf_free(out);
            }
        }
        total += best + QF_QFM_TENSOR_REC_SIZE / 4;
    }
    for (int i = 0; i < g->n_nodes; i++)
        total += (QF_QFM_NODE_REC_SIZE + 4 * (g->nodes[i].n_inputs + g->nodes[i].n_outputs) +
                  QF_QFM_ATTR_REC_SIZE * g->nodes[i].n_attrs) / 4;
    return total;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

qf_status qf_compress_latency(const qf_graph *g, int runs, int num_threads, double *ms,
                              qf_err *err) {
    if (runs < 1 || runs > 1000)
        return qf_errf(err, QF_ERR_INVALID_ARG, "compress: latency runs %d not in 1..1000", runs);
    runner r;
    qf_status st = runner_init(&r, g, 1, num_threads, err);
    if (st) return st;
    double *t = qf_malloc(sizeof(double) * (size_t)runs);
    if (!t) st = qf_errf(err, QF_ERR_NOMEM, "compress: out of memory");
    qf_tensor o;
    if (!st) st = qf_session_run(r.s, &r.t, 1, &o, 1, err); /* warm-up: plans memory */
    for (int i = 0; i < runs && !st; i++) {
        double t0 = now_s();
        st = qf_session_run(r.s, &r.t, 1, &o, 1, err);
        t[i] = 1000.0 * (now_s() - t0);
    }
    if (!st) {
        qsort(t, (size_t)runs, sizeof(double), cmp_double);
        *ms = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    }
    qf_free(t);
    runner_free(&r);
    return st;
}
