/* optim.c - SGD / Adam / AdamW updates (rules in optim.h). State is kept in
 * float like torch; the bias corrections are computed in double. */
#include <math.h>
#include <string.h>

#include "train/optim.h"

struct qf_optim {
    qf_optim_config cfg;
    int n;
    qf_param **params;
    float **m; /* SGD momentum buffer or Adam first moment, per param */
    float **v; /* Adam second moment (NULL for SGD) */
    int64_t steps;
};

void qf_optim_config_default(qf_optim_config *cfg, qf_optim_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    if (kind == QF_OPTIM_ADAMW) cfg->weight_decay = 0.01f;
}

void qf_optim_free(qf_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        if (o->m) qf_free(o->m[i]);
        if (o->v) qf_free(o->v[i]);
    }
    qf_free(o->m);
    qf_free(o->v);
    qf_free(o->params);
    qf_free(o);
}

static qf_status check_config(const qf_optim_config *c, qf_err *err) {
    static const char who[] = "optimizer";
    if (c->kind != QF_OPTIM_SGD && c->kind != QF_OPTIM_ADAM && c->kind != QF_OPTIM_ADAMW)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: unknown kind %d", who, (int)c->kind);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: weight decay %g must be >= 0", who,
                       (double)c->weight_decay);
    if (c->kind == QF_OPTIM_SGD) {
        if (!(c->momentum >= 0.0f) || !isfinite(c->momentum))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: momentum %g must be >= 0", who,
                           (double)c->momentum);
        if (!isfinite(c->dampening))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: dampening must be finite", who);
        if (c->nesterov && (c->momentum <= 0.0f || c->dampening != 0.0f))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: Nesterov momentum requires momentum > 0 and dampening 0", who);
    } else {
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: betas (%g, %g) must be in [0, 1)", who,
                           (double)c->beta1, (double)c->beta2);
        if (!(c->eps > 0.0f) || !isfinite(c->eps))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: eps %g must be > 0", who, (double)c->eps);
    }
    return QF_OK;
}

qf_status qf_optim_create(const qf_optim_config *cfg, qf_param *const *params, int n,
                          qf_optim **out, qf_err *err) {
    if (out) *out = NULL;
    if (!cfg || !out || n < 0 || (n > 0 && !params))
        return qf_errf(err, QF_ERR_INVALID_ARG, "optimizer: bad arguments");
    qf_status s = check_config(cfg, err);
    if (s) return s;
    for (int i = 0; i < n; i++)
        if (!params[i] || (params[i]->n && (!params[i]->data || !params[i]->grad)))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "optimizer: parameter %d ('%s') has no data "
                           "or gradient",
                           i, params[i] && params[i]->name ? params[i]->name : "?");
    qf_optim *o = qf_calloc(1, sizeof *o);
    if (!o) return qf_errf(err, QF_ERR_NOMEM, "optimizer: out of memory");
    o->cfg = *cfg;
    o->n = n;
    bool adam = cfg->kind != QF_OPTIM_SGD;
    size_t np = n ? (size_t)n : 1;
    o->params = qf_calloc(np, sizeof *o->params);
    o->m = qf_calloc(np, sizeof *o->m);
    o->v = adam ? qf_calloc(np, sizeof *o->v) : NULL;
    if (!o->params || !o->m || (adam && !o->v)) goto oom;
    for (int i = 0; i < n; i++) {
        o->params[i] = params[i];
        size_t len = params[i]->n ? params[i]->n : 1;
        /* plain SGD keeps no state */
        if (adam || cfg->momentum != 0.0f) {
            o->m[i] = qf_calloc(len, sizeof(float));
            if (!o->m[i]) goto oom;
        }
        if (adam) {
            o->v[i] = qf_calloc(len, sizeof(float));
            if (!o->v[i]) goto oom;
        }
    }
    *out = o;
    return QF_OK;
oom:
    qf_optim_free(o);
    return qf_errf(err, QF_ERR_NOMEM, "optimizer: out of memory for %d parameters", n);
}

static void sgd_param(const qf_optim_config *c, qf_param *p, float *buf, bool first, float lr) {
    float wd = p->decay ? c->weight_decay : 0.0f;
    float mom = c->momentum, damp = 1.0f - c->dampening;
    float *w = p->data;
    const float *gr = p->grad;
    for (size_t i = 0; i < p->n; i++) {
        float g = gr[i];
        if (wd != 0.0f) g += wd * w[i];
        if (buf) {
            /* torch starts the buffer at the first gradient, undamped */
            buf[i] = first ? g : mom * buf[i] + damp * g;
            g = c->nesterov ? g + mom * buf[i] : buf[i];
        }
        w[i] -= lr * g;
    }
}

static void adam_param(const qf_optim_config *c, qf_param *p, float *m, float *v, float lr,
                       int64_t t) {
    bool decoupled = c->kind == QF_OPTIM_ADAMW;
    float wd = p->decay ? c->weight_decay : 0.0f;
    float b1 = c->beta1, b2 = c->beta2;
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float *w = p->data;
    const float *gr = p->grad;
    if (decoupled && wd != 0.0f) {
        float f = 1.0f - lr * wd;
        for (size_t i = 0; i < p->n; i++)
            w[i] *= f;
    }
    for (size_t i = 0; i < p->n; i++) {
        float g = gr[i];
        if (!decoupled && wd != 0.0f) g += wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + c->eps;
        w[i] -= step_size * (m[i] / denom);
    }
}

qf_status qf_optim_step(qf_optim *o, float lr, qf_err *err) {
    if (!o) return qf_errf(err, QF_ERR_INVALID_ARG, "optimizer: NULL handle");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "optimizer: learning rate %g must be finite and "
                       ">= 0",
                       (double)lr);
    int64_t t = o->steps + 1;
    for (int i = 0; i < o->n; i++) {
        qf_param *p = o->params[i];
        if (o->cfg.kind == QF_OPTIM_SGD)
            sgd_param(&o->cfg, p, o->m[i], o->steps == 0, lr);
        else
            adam_param(&o->cfg, p, o->m[i], o->v[i], lr, t);
    }
    o->steps = t;
    return QF_OK;
}

int64_t qf_optim_steps(const qf_optim *o) { return o ? o->steps : 0; }

void qf_optim_reset(qf_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        size_t len = o->params[i]->n ? o->params[i]->n : 1;
        if (o->m[i]) memset(o->m[i], 0, len * sizeof(float));
        if (o->v && o->v[i]) memset(o->v[i], 0, len * sizeof(float));
    }
    o->steps = 0;
}
