/* schedule.c - learning rate as a closed-form function of the step (see
 * schedule.h). Computed in double, returned as float. */
#include <math.h>
#include <string.h>

#include "train/schedule.h"

qf_status qf_lr_schedule_check(const qf_lr_schedule *s, qf_err *err) {
    static const char who[] = "lr schedule";
    if (!s) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL", who);
    if (!(s->base_lr > 0.0f) || !isfinite(s->base_lr))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: base_lr %g must be > 0", who,
                       (double)s->base_lr);
    if (s->warmup_steps < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: warmup_steps %lld must be >= 0", who,
                       (long long)s->warmup_steps);
    switch (s->kind) {
    case QF_LR_CONSTANT: return QF_OK;
    case QF_LR_STEP:
        if (s->steps_per_epoch <= 0 || s->step_epochs <= 0)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: steps_per_epoch (%lld) and step_epochs (%lld) must be > 0", who,
                           (long long)s->steps_per_epoch, (long long)s->step_epochs);
        if (!(s->gamma > 0.0f) || !isfinite(s->gamma))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: gamma %g must be > 0", who,
                           (double)s->gamma);
        return QF_OK;
    case QF_LR_COSINE:
        if (s->total_steps <= s->warmup_steps)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: total_steps %lld must exceed warmup_steps %lld", who,
                           (long long)s->total_steps, (long long)s->warmup_steps);
        if (!(s->min_lr >= 0.0f) || !isfinite(s->min_lr))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: min_lr %g must be >= 0", who,
                           (double)s->min_lr);
        return QF_OK;
    }
    return qf_errf(err, QF_ERR_INVALID_ARG, "%s: unknown kind %d", who, (int)s->kind);
}

float qf_lr_at(const qf_lr_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    double base = s->base_lr;
    if (step < s->warmup_steps) return (float)(base * (double)(step + 1) / (double)s->warmup_steps);
    switch (s->kind) {
    case QF_LR_STEP: {
        int64_t e = step / s->steps_per_epoch;
        return (float)(base * pow((double)s->gamma, (double)(e / s->step_epochs)));
    }
    case QF_LR_COSINE: {
        double t = (double)(step - s->warmup_steps);
        double total = (double)(s->total_steps - s->warmup_steps);
        if (t > total) t = total;
        double lo = s->min_lr;
        return (float)(lo + (base - lo) * 0.5 * (1.0 + cos(3.141592653589793 * t / total)));
    }
    case QF_LR_CONSTANT:
    default: return (float)base;
    }
}

bool qf_lr_kind_parse(const char *name, qf_lr_kind *out) {
    static const struct {
        const char *name;
        qf_lr_kind kind;
    } names[] = {{"constant", QF_LR_CONSTANT}, {"step", QF_LR_STEP}, {"cosine", QF_LR_COSINE}};
    for (size_t i = 0; name && i < QF_ARRAY_LEN(names); i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].kind;
            return true;
        }
    return false;
}
