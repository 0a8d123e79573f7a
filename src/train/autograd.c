/* autograd.c - the tape: reverse-mode differentiation over a float graph
 * (contract in autograd.h, per-op backward kernels in grad.h).
 *
 * Forward runs every node in graph order, inferring shapes from the actual
 * inputs each step (so shape subgraphs such as PyTorch's
 * Shape->Gather->Concat->Reshape simply run, and a new batch size just
 * grows the buffers), and keeps every intermediate in its own buffer for
 * the backward pass. Buffers only grow: once shapes are stable a step
 * allocates nothing.
 *
 * Which values need a gradient is decided once at create time: parameters
 * (float constants in differentiable slots of ops that have a backward, not
 * frozen), optionally the float graph inputs, and everything computed from
 * them through differentiable slots. Shape-only ops (Shape) and
 * non-differentiable slots (Reshape's shape, Clip's bounds, BN's running
 * statistics) cut the flow, so integer shape arithmetic never needs a
 * backward. A node that the flow reaches and that has no backward is an
 * error at create time.
 */
#include <string.h>

#include "base/threadpool.h"
#include "train/autograd.h"
#include "train/grad.h"

typedef struct tape_value {
    qf_tensor t; /* shape and data of the last forward */
    void *buf;   /* owned forward buffer (inputs, node outputs) */
    size_t cap;
    qf_tensor gt; /* gradient (F32, t's shape); data NULL when none */
    float *gbuf;  /* owned gradient buffer (not for parameters) */
    size_t gcap;
    int param;     /* parameter index or -1 */
    bool rg;       /* requires a gradient */
    bool computed; /* t is valid for the last forward */
} tape_value;

typedef struct tape_node {
    bool backward; /* gradient flows through this node */
    void *saved;   /* training-forward state (owned) */
    size_t saved_cap;
} tape_node;

struct qf_tape {
    qf_graph *g;
    qf_exec_ctx ctx;
    uint64_t seed, step;
    tape_value *v;
    tape_node *nd;
    qf_param *params;
    int n_params;
    void *scratch;
    size_t scratch_cap;
    qf_threadpool *pool; /* num_threads > 1: shared by forward and backward kernels */
    bool forward_done, training, input_grads;
};

#define TAPE_MIN_BUF 64

static qf_status grow(void **buf, size_t *cap, size_t need) {
    if (need < TAPE_MIN_BUF) need = TAPE_MIN_BUF;
    if (*buf && *cap >= need) return QF_OK;
    qf_free_aligned(*buf);
    *buf = qf_malloc_aligned(need);
    *cap = *buf ? need : 0;
    return *buf ? QF_OK : QF_ERR_NOMEM;
}

static size_t tensor_bytes(const qf_tensor *t) {
    int64_t n = qf_tensor_numel(t);
    size_t b;
    if (n < 0 || !qf_mul_size((size_t)n, qf_dtype_size(t->dtype), &b)) return SIZE_MAX;
    return b;
}

static bool is_frozen(const qf_tape_options *opt, const char *name) {
    if (!opt || !opt->frozen || !name) return false;
    for (const char *const *f = opt->frozen; *f; f++)
        if (strcmp(*f, name) == 0) return true;
    return false;
}

/* Constants must be owned and writable: training updates them in place. */
static qf_status own_constants(qf_graph *g, qf_err *err) {
    for (int i = 0; i < g->n_values; i++) {
        qf_value *val = &g->values[i];
        if (!(val->flags & QF_VAL_CONST) || !val->data_external || !val->data) continue;
        void *copy = qf_malloc_aligned(val->nbytes ? val->nbytes : 1);
        if (!copy)
            return qf_errf(err, QF_ERR_NOMEM, "qf_tape_create: out of memory copying '%s'",
                           val->name);
        memcpy(copy, val->data, val->nbytes);
        val->data = copy;
        val->data_external = false;
    }
    return QF_OK;
}

static qf_status add_param(qf_tape *t, int vi, qf_err *err) {
    qf_value *val = &t->g->values[vi];
    qf_tensor ct = qf_value_tensor(val);
    int64_t n = qf_tensor_numel(&ct);
    if (n < 0)
        return qf_errf(err, QF_ERR_FORMAT, "qf_tape_create: '%s' has a bad shape", val->name);
    qf_param *p = &t->params[t->n_params];
    p->name = val->name;
    p->value = vi;
    p->data = val->data;
    p->n = (size_t)n;
    p->grad = qf_calloc(p->n ? p->n : 1, sizeof(float));
    if (!p->grad) return qf_errf(err, QF_ERR_NOMEM, "qf_tape_create: out of memory");
    /* weight decay for weight matrices and kernels, not biases or affine
     * scales/shifts of normalisations (all 1-D) */
    p->decay = val->rank >= 2;
    t->v[vi].param = t->n_params++;
    t->v[vi].rg = true;
    return QF_OK;
}

static bool value_is_nonfloat(const qf_value *v) {
    return v->dtype != QF_DT_UNDEF && v->dtype != QF_DT_F32;
}

/* Decide parameters and the gradient flow; list every node that the flow
 * reaches without a backward. */
static qf_status plan_flow(qf_tape *t, const qf_tape_options *opt, qf_err *err) {
    qf_graph *g = t->g;
    for (int n = 0; n < g->n_nodes; n++) {
        const qf_node *nd = &g->nodes[n];
        const qf_grad_def *gd = qf_grad_get(nd->op);
        if (!gd) continue;
        uint32_t mask = qf_grad_diff_mask(nd);
        for (int i = 0; i < nd->n_inputs && i < 32; i++) {
            int vi = nd->inputs[i];
            if (vi < 0 || !((mask >> i) & 1u) || t->v[vi].param >= 0) continue;
            const qf_value *val = &g->values[vi];
            if (!(val->flags & QF_VAL_CONST) || val->dtype != QF_DT_F32 || !val->data) continue;
            if (is_frozen(opt, val->name)) continue;
            qf_tensor ct = qf_value_tensor(val);
            if ((gd->flags & QF_GRADF_NO_SCALAR_PARAMS) && qf_tensor_numel(&ct) == 1) continue;
            qf_status s = add_param(t, vi, err);
            if (s) return s;
        }
    }
    if (t->input_grads)
        for (int i = 0; i < g->n_inputs; i++) {
            int vi = g->inputs[i];
            if (!value_is_nonfloat(&g->values[vi])) t->v[vi].rg = true;
        }
    char list[QF_ERR_MSG_LEN - 96];
    size_t used = 0;
    int missing = 0;
    list[0] = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        const qf_node *nd = &g->nodes[n];
        bool any = false;
        for (int i = 0; i < nd->n_inputs; i++)
            if (nd->inputs[i] >= 0 && t->v[nd->inputs[i]].rg) any = true;
        if (!any) continue;
        const qf_op_def *def = qf_op_get(nd->op);
        if (def && (def->flags & QF_OPF_SHAPE_ONLY)) continue;
        const qf_grad_def *gd = qf_grad_get(nd->op);
        if (!gd) {
            bool float_out = false;
            for (int j = 0; j < nd->n_outputs; j++)
                if (nd->outputs[j] >= 0 && !value_is_nonfloat(&g->values[nd->outputs[j]]))
                    float_out = true;
            if (!float_out) continue;
            char d[200];
            qf_node_desc(nd, d, sizeof d);
            size_t l = strlen(d);
            if (used + l + 8 < sizeof list) {
                memcpy(list + used, missing ? ", " : "", missing ? 2 : 0);
                used += missing ? 2 : 0;
                memcpy(list + used, d, l + 1);
                used += l;
            }
            missing++;
            continue;
        }
        uint32_t mask = qf_grad_diff_mask(nd);
        bool flow = false;
        for (int i = 0; i < nd->n_inputs && i < 32; i++)
            if (((mask >> i) & 1u) && nd->inputs[i] >= 0 && t->v[nd->inputs[i]].rg) flow = true;
        if (!flow) continue;
        t->nd[n].backward = true;
        for (int j = 0; j < nd->n_outputs; j++) {
            int vo = nd->outputs[j];
            if (vo >= 0 && !value_is_nonfloat(&g->values[vo])) t->v[vo].rg = true;
        }
    }
    if (missing)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: no backward for %s",
                       g->source_path ? g->source_path : "model", list);
    return QF_OK;
}

/* Does every node read only constants, graph inputs and earlier outputs? */
static bool is_topological(const qf_graph *g) {
    bool *ready = qf_calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!ready) return false;
    for (int v = 0; v < g->n_values; v++)
        ready[v] = (g->values[v].flags & QF_VAL_CONST) != 0;
    for (int i = 0; i < g->n_inputs; i++)
        ready[g->inputs[i]] = true;
    bool ok = true;
    for (int n = 0; n < g->n_nodes && ok; n++) {
        const qf_node *nd = &g->nodes[n];
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] >= 0 && !ready[nd->inputs[j]]) ok = false;
        for (int j = 0; j < nd->n_outputs; j++)
            if (nd->outputs[j] >= 0) ready[nd->outputs[j]] = true;
    }
    qf_free(ready);
    return ok;
}

qf_status qf_tape_create(qf_graph *g, const qf_tape_options *opt, qf_tape **out, qf_err *err) {
    *out = NULL;
    if (!g) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_tape_create: graph is NULL");
    /* keep the caller's node order when it is already topological (node
     * indices may be held elsewhere, e.g. by QAT); sort only if it is not */
    qf_status s = QF_OK;
    if (!is_topological(g)) s = qf_graph_toposort(g, err);
    if (s) return s;
    if ((s = own_constants(g, err))) return s;
    qf_tape *t = qf_calloc(1, sizeof *t);
    if (!t) return qf_errf(err, QF_ERR_NOMEM, "qf_tape_create: out of memory");
    t->g = g;
    t->ctx.num_threads = opt && opt->num_threads > 0 ? opt->num_threads : 1;
    t->seed = opt ? opt->seed : 0;
    t->input_grads = opt && opt->input_grads;
    t->v = qf_calloc((size_t)g->n_values + 1, sizeof *t->v);
    t->nd = qf_calloc((size_t)g->n_nodes + 1, sizeof *t->nd);
    t->params = qf_calloc((size_t)g->n_values + 1, sizeof *t->params);
    if (!t->v || !t->nd || !t->params) {
        qf_tape_free(t);
        return qf_errf(err, QF_ERR_NOMEM, "qf_tape_create: out of memory");
    }
    for (int i = 0; i < g->n_values; i++) {
        t->v[i].param = -1;
        if (g->values[i].flags & QF_VAL_CONST) {
            t->v[i].t = qf_value_tensor(&g->values[i]);
            t->v[i].computed = true;
        }
    }
    s = plan_flow(t, opt, err);
    if (!s && t->ctx.num_threads > 1) {
        s = qf_threadpool_create(QF_MIN(t->ctx.num_threads, QF_THREADPOOL_MAX), &t->pool, err);
        t->ctx.pool = t->pool;
    }
    if (s) {
        qf_tape_free(t);
        return s;
    }
    *out = t;
    return QF_OK;
}

void qf_tape_free(qf_tape *t) {
    if (!t) return;
    if (t->v)
        for (int i = 0; i < t->g->n_values; i++) {
            qf_free_aligned(t->v[i].buf);
            qf_free_aligned(t->v[i].gbuf);
        }
    if (t->nd)
        for (int i = 0; i < t->g->n_nodes; i++)
            qf_free_aligned(t->nd[i].saved);
    if (t->params)
        for (int i = 0; i < t->n_params; i++)
            qf_free(t->params[i].grad);
    qf_free(t->params);
    qf_free(t->nd);
    qf_free(t->v);
    qf_free_aligned(t->scratch);
    qf_threadpool_destroy(t->pool);
    qf_free(t);
}

int qf_tape_num_params(const qf_tape *t) { return t ? t->n_params : 0; }

qf_param *qf_tape_param(qf_tape *t, int i) {
    if (!t || i < 0 || i >= t->n_params) return NULL;
    return &t->params[i];
}

static void node_tensors(const qf_tape *t, const qf_node *nd, qf_tensor *in, qf_tensor *out) {
    for (int j = 0; j < nd->n_inputs; j++) {
        int v = nd->inputs[j];
        if (v >= 0)
            in[j] = t->v[v].t;
        else
            memset(&in[j], 0, sizeof in[j]);
    }
    for (int j = 0; j < nd->n_outputs; j++) {
        int v = nd->outputs[j];
        if (v >= 0)
            out[j] = t->v[v].t;
        else
            memset(&out[j], 0, sizeof out[j]);
    }
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static qf_status ensure_scratch(qf_tape *t, size_t need, qf_err *err) {
    if (need == 0 || (t->scratch && t->scratch_cap >= need)) return QF_OK;
    if (grow(&t->scratch, &t->scratch_cap, need))
        return qf_errf(err, QF_ERR_NOMEM, "tape: cannot allocate %zu bytes of scratch", need);
    return QF_OK;
}

static qf_status run_node(qf_tape *t, int n, qf_err *err) {
    qf_graph *g = t->g;
    qf_node *nd = &g->nodes[n];
    const qf_op_def *def = qf_op_get(nd->op);
    char d[200];
    const char *path = g->source_path ? g->source_path : "model";
    if (!def || !def->infer || !def->run)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: no kernel", path,
                       qf_node_desc(nd, d, sizeof d));
    if (nd->n_inputs > QF_MAX_NODE_IO || nd->n_outputs > QF_MAX_NODE_IO)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: too many inputs/outputs", path,
                       qf_node_desc(nd, d, sizeof d));
    qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
    node_tensors(t, nd, in, out);
    for (int j = 0; j < nd->n_inputs; j++)
        if (nd->inputs[j] >= 0 && !t->v[nd->inputs[j]].computed)
            return qf_errf(err, QF_ERR_FORMAT, "%s: %s: input '%s' is not computed", path,
                           qf_node_desc(nd, d, sizeof d), g->values[nd->inputs[j]].name);
    for (int j = 0; j < nd->n_outputs; j++)
        memset(&out[j], 0, sizeof out[j]);
    qf_status s = def->infer(nd, in, nd->n_inputs, out, nd->n_outputs, err);
    if (s) {
        qf_err_prefix(err, "%s", path);
        return s;
    }
    for (int j = 0; j < nd->n_outputs; j++) {
        int v = nd->outputs[j];
        if (v < 0) continue;
        size_t b = tensor_bytes(&out[j]);
        if (out[j].rank < 0 || out[j].rank > QF_MAX_DIMS || b == SIZE_MAX)
            return qf_errf(err, QF_ERR_SHAPE, "%s: %s: output '%s' has an invalid shape", path,
                           qf_node_desc(nd, d, sizeof d), g->values[v].name);
        if (grow(&t->v[v].buf, &t->v[v].cap, b))
            return qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory for output '%s'", path,
                           qf_node_desc(nd, d, sizeof d), g->values[v].name);
        out[j].data = t->v[v].buf;
    }
    const qf_grad_def *gd = qf_grad_get(nd->op);
    if (t->training && gd && gd->train_forward) {
        size_t scr =
            gd->train_scratch ? gd->train_scratch(nd, in, nd->n_inputs, out, nd->n_outputs) : 0;
        size_t sb = gd->state_bytes ? gd->state_bytes(nd, in, nd->n_inputs, out, nd->n_outputs) : 0;
        if ((s = ensure_scratch(t, scr, err))) return s;
        if (grow(&t->nd[n].saved, &t->nd[n].saved_cap, sb))
            return qf_errf(err, QF_ERR_NOMEM, "%s: %s: out of memory", path,
                           qf_node_desc(nd, d, sizeof d));
        uint64_t seed = mix64(t->seed ^ mix64(t->step + 0x9E3779B97F4A7C15ull) ^
                              mix64((uint64_t)n * 0xD1B54A32D192ED03ull + 1));
        s = gd->train_forward(&t->ctx, nd, in, nd->n_inputs, out, nd->n_outputs, t->scratch,
                              t->nd[n].saved, seed, err);
    } else {
        size_t scr = def->scratch ? def->scratch(nd, in, nd->n_inputs, out, nd->n_outputs) : 0;
        if ((s = ensure_scratch(t, scr, err))) return s;
        s = def->run(&t->ctx, nd, in, nd->n_inputs, out, nd->n_outputs, t->scratch, err);
    }
    if (s) {
        if (err && !strstr(err->msg, nd->name))
            qf_err_prefix(err, "%s: %s", path, qf_node_desc(nd, d, sizeof d));
        return s;
    }
    for (int j = 0; j < nd->n_outputs; j++) {
        int v = nd->outputs[j];
        if (v < 0) continue;
        t->v[v].t = out[j];
        t->v[v].computed = true;
    }
    return QF_OK;
}

static qf_status tape_forward(qf_tape *t, const qf_tensor *inputs, int n_in, bool training,
                              qf_err *err);
static qf_status tape_backward(qf_tape *t, const qf_tensor *d_outputs, int n_out, qf_err *err);

/* Forward and backward hold the pool (workers spin between kernels, see
 * qf_threadpool_hold) for their length. */
qf_status qf_tape_forward(qf_tape *t, const qf_tensor *inputs, int n_in, bool training,
                          qf_err *err) {
    if (!t) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_tape_forward: tape is NULL");
    qf_threadpool_hold(t->pool, true);
    qf_status s = tape_forward(t, inputs, n_in, training, err);
    qf_threadpool_hold(t->pool, false);
    return s;
}

qf_status qf_tape_backward(qf_tape *t, const qf_tensor *d_outputs, int n_out, qf_err *err) {
    if (!t) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_tape_backward: tape is NULL");
    qf_threadpool_hold(t->pool, true);
    qf_status s = tape_backward(t, d_outputs, n_out, err);
    qf_threadpool_hold(t->pool, false);
    return s;
}

static qf_status tape_forward(qf_tape *t, const qf_tensor *inputs, int n_in, bool training,
                              qf_err *err) {
    qf_graph *g = t->g;
    const char *path = g->source_path ? g->source_path : "model";
    if (n_in != g->n_inputs)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: model has %d inputs, %d given", path,
                       g->n_inputs, n_in);
    t->forward_done = false;
    for (int v = 0; v < g->n_values; v++)
        if (!(g->values[v].flags & QF_VAL_CONST)) t->v[v].computed = false;
    for (int i = 0; i < n_in; i++) {
        int v = g->inputs[i];
        const qf_value *val = &g->values[v];
        const qf_tensor *x = &inputs[i];
        size_t b = tensor_bytes(x);
        if (x->rank < 0 || x->rank > QF_MAX_DIMS || b == SIZE_MAX || qf_dtype_size(x->dtype) == 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s' has a bad shape or dtype", path,
                           val->name);
        if (val->dtype != QF_DT_UNDEF && x->dtype != val->dtype)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s' is %s, model expects %s", path,
                           val->name, qf_dtype_name(x->dtype), qf_dtype_name(val->dtype));
        if (val->rank >= 0) {
            bool ok = val->rank == x->rank;
            for (int k = 0; ok && k < x->rank; k++)
                if (val->dims[k] >= 0 && val->dims[k] != x->dims[k]) ok = false;
            if (!ok)
                return qf_errf(err, QF_ERR_SHAPE, "%s: input '%s' does not match the model's shape",
                               path, val->name);
        }
        if (b && !x->data)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s': data is NULL", path,
                           val->name);
        /* copied: the caller may reuse its buffer before backward */
        if (grow(&t->v[v].buf, &t->v[v].cap, b))
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory for input '%s'", path, val->name);
        if (b) memcpy(t->v[v].buf, x->data, b);
        t->v[v].t = *x;
        t->v[v].t.data = t->v[v].buf;
        t->v[v].computed = true;
    }
    t->training = training;
    for (int n = 0; n < g->n_nodes; n++) {
        qf_status s = run_node(t, n, err);
        if (s) return s;
    }
    t->step++;
    t->forward_done = true;
    return QF_OK;
}

const qf_tensor *qf_tape_output(const qf_tape *t, int i) {
    if (!t || i < 0 || i >= t->g->n_outputs) return NULL;
    const tape_value *tv = &t->v[t->g->outputs[i]];
    return tv->computed ? &tv->t : NULL;
}

const qf_tensor *qf_tape_value(const qf_tape *t, int v) {
    if (!t || v < 0 || v >= t->g->n_values) return NULL;
    return t->v[v].computed ? &t->v[v].t : NULL;
}

/* Point every gradient-carrying value at a zeroed buffer of its shape
 * (parameters at their accumulating qf_param.grad). */
static qf_status prepare_grads(qf_tape *t, qf_err *err) {
    qf_graph *g = t->g;
    for (int v = 0; v < g->n_values; v++) {
        tape_value *tv = &t->v[v];
        memset(&tv->gt, 0, sizeof tv->gt);
        if (!tv->rg || !tv->computed || tv->t.dtype != QF_DT_F32) continue;
        tv->gt = tv->t;
        if (tv->param >= 0) {
            tv->gt.data = t->params[tv->param].grad;
            continue;
        }
        size_t b = tensor_bytes(&tv->t);
        if (b == SIZE_MAX || grow((void **)&tv->gbuf, &tv->gcap, b))
            return qf_errf(err, QF_ERR_NOMEM, "tape: out of memory for the gradient of '%s'",
                           g->values[v].name);
        memset(tv->gbuf, 0, b);
        tv->gt.data = tv->gbuf;
    }
    return QF_OK;
}

static qf_status tape_backward(qf_tape *t, const qf_tensor *d_outputs, int n_out, qf_err *err) {
    qf_graph *g = t->g;
    const char *path = g->source_path ? g->source_path : "model";
    if (!t->forward_done)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: backward needs a forward first", path);
    if (n_out != g->n_outputs)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: model has %d outputs, %d gradients given",
                       path, g->n_outputs, n_out);
    qf_status s = prepare_grads(t, err);
    if (s) return s;
    for (int i = 0; i < n_out; i++) {
        if (!d_outputs || !d_outputs[i].data) continue;
        tape_value *tv = &t->v[g->outputs[i]];
        if (!tv->gt.data) continue; /* the output depends on no parameter */
        int64_t n = qf_tensor_numel(&tv->t);
        if (d_outputs[i].dtype != QF_DT_F32 || qf_tensor_numel(&d_outputs[i]) != n)
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: gradient of output '%s' must be float with %lld elements", path,
                           g->values[g->outputs[i]].name, (long long)n);
        const float *src = d_outputs[i].data;
        float *dst = tv->gt.data;
        for (int64_t k = 0; k < n; k++)
            dst[k] += src[k];
    }
    char d[200];
    for (int n = g->n_nodes - 1; n >= 0; n--) {
        if (!t->nd[n].backward) continue;
        const qf_node *nd = &g->nodes[n];
        const qf_grad_def *gd = qf_grad_get(nd->op);
        qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
        qf_tensor d_out[QF_MAX_NODE_IO], d_in[QF_MAX_NODE_IO];
        node_tensors(t, nd, in, out);
        bool any = false;
        for (int j = 0; j < nd->n_outputs; j++) {
            int v = nd->outputs[j];
            memset(&d_out[j], 0, sizeof d_out[j]);
            if (v >= 0 && t->v[v].gt.data) {
                d_out[j] = t->v[v].gt;
                any = true;
            }
        }
        if (!any) continue;
        uint32_t mask = qf_grad_diff_mask(nd);
        for (int j = 0; j < nd->n_inputs; j++) {
            int v = nd->inputs[j];
            d_in[j] = in[j];
            d_in[j].data = NULL;
            if (v >= 0 && j < 32 && ((mask >> j) & 1u) && t->v[v].gt.data)
                d_in[j].data = t->v[v].gt.data;
        }
        size_t scr = gd->scratch ? gd->scratch(nd, in, nd->n_inputs, out, nd->n_outputs) : 0;
        if ((s = ensure_scratch(t, scr, err))) return s;
        qf_grad_args a = {.ctx = &t->ctx,
                          .node = nd,
                          .in = in,
                          .n_in = nd->n_inputs,
                          .out = out,
                          .n_out = nd->n_outputs,
                          .d_out = d_out,
                          .d_in = d_in,
                          .scratch = t->scratch,
                          .saved = t->nd[n].saved,
                          .training = t->training};
        s = gd->backward(&a, err);
        if (s) {
            if (err && !strstr(err->msg, nd->name))
                qf_err_prefix(err, "%s: backward of %s", path, qf_node_desc(nd, d, sizeof d));
            return s;
        }
    }
    t->forward_done = false;
    return QF_OK;
}

const qf_tensor *qf_tape_input_grad(const qf_tape *t, int i) {
    if (!t || i < 0 || i >= t->g->n_inputs) return NULL;
    const tape_value *tv = &t->v[t->g->inputs[i]];
    return tv->gt.data ? &tv->gt : NULL;
}

void qf_tape_zero_grad(qf_tape *t) {
    if (!t) return;
    for (int i = 0; i < t->n_params; i++)
        memset(t->params[i].grad, 0, sizeof(float) * t->params[i].n);
}
