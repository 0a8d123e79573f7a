/* loss.c - softmax cross-entropy, distillation loss and top-1 accuracy
 * (formulas in loss.h). Row-wise: one log-sum-exp per row, no scratch. */
#include <math.h>

#include "train/loss.h"

static qf_status read_label(const char *who, const void *labels, qf_dtype dt, int64_t i, int64_t c,
                            int64_t *out, qf_err *err) {
    int64_t y;
    if (dt == QF_DT_I64)
        y = ((const int64_t *)labels)[i];
    else if (dt == QF_DT_I32)
        y = ((const int32_t *)labels)[i];
    else
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: labels must be int32 or int64 (got %s)", who,
                       qf_dtype_name(dt));
    if (y < 0 || y >= c)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: label %lld of sample %lld is out of range "
                       "[0, %lld)",
                       who, (long long)y, (long long)i, (long long)c);
    *out = y;
    return QF_OK;
}

static qf_status check_common(const char *who, const float *logits, int64_t n, int64_t c,
                              float smoothing, float *loss, qf_err *err) {
    if (!logits || !loss || n <= 0 || c <= 0)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: needs logits, a loss pointer and n, c > 0 "
                       "(n %lld, c %lld)",
                       who, (long long)n, (long long)c);
    if (!(smoothing >= 0.0f && smoothing < 1.0f))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: label smoothing %g not in [0, 1)", who,
                       (double)smoothing);
    return QF_OK;
}

/* max and log(sum(exp(scale * (z - max)))) of one row, with z scaled. */
static double row_logsumexp(const float *z, int64_t c, double scale, double *mx) {
    double m = scale * z[0];
    for (int64_t j = 1; j < c; j++)
        if (scale * z[j] > m) m = scale * z[j];
    double s = 0.0;
    for (int64_t j = 0; j < c; j++)
        s += exp(scale * z[j] - m);
    *mx = m;
    return log(s);
}

/* CE of one row; adds w * dCE/dz into g (if g). Returns the row loss. */
static double ce_row(const float *z, int64_t c, int64_t y, double eps, double w, float *g) {
    double mx, lse = row_logsumexp(z, c, 1.0, &mx);
    double loss = 0.0, off = eps / (double)c;
    for (int64_t j = 0; j < c; j++) {
        double logp = (double)z[j] - mx - lse;
        double t = off + (j == y ? 1.0 - eps : 0.0);
        loss -= t * logp;
        if (g) g[j] += (float)(w * (exp(logp) - t));
    }
    return loss;
}

qf_status qf_loss_softmax_ce(const float *logits, int64_t n, int64_t c, const void *labels,
                             qf_dtype label_dtype, float smoothing, float *loss, float *dlogits,
                             qf_err *err) {
    static const char who[] = "softmax cross-entropy";
    qf_status s = check_common(who, logits, n, c, smoothing, loss, err);
    if (s) return s;
    if (!labels) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: labels missing", who);
    /* validate every label before writing anything */
    for (int64_t i = 0; i < n; i++) {
        int64_t y;
        if ((s = read_label(who, labels, label_dtype, i, c, &y, err))) return s;
    }
    double total = 0.0, inv_n = 1.0 / (double)n;
    for (int64_t i = 0; i < n; i++) {
        int64_t y;
        read_label(who, labels, label_dtype, i, c, &y, NULL);
        float *g = dlogits ? dlogits + i * c : NULL;
        if (g)
            for (int64_t j = 0; j < c; j++)
                g[j] = 0.0f;
        total += ce_row(logits + i * c, c, y, smoothing, inv_n, g);
    }
    *loss = (float)(total * inv_n);
    return QF_OK;
}

qf_status qf_loss_kd(const float *student, const float *teacher, int64_t n, int64_t c,
                     const void *labels, qf_dtype label_dtype, float temperature, float alpha,
                     float smoothing, float *loss, float *dstudent, qf_err *err) {
    static const char who[] = "distillation loss";
    qf_status s = check_common(who, student, n, c, smoothing, loss, err);
    if (s) return s;
    if (!teacher) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: teacher logits missing", who);
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: temperature %g must be > 0", who,
                       (double)temperature);
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: alpha %g not in [0, 1]", who, (double)alpha);
    bool use_ce = alpha < 1.0f;
    if (use_ce && !labels)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: labels missing (needed when alpha < 1)", who);
    if (use_ce)
        for (int64_t i = 0; i < n; i++) {
            int64_t y;
            if ((s = read_label(who, labels, label_dtype, i, c, &y, err))) return s;
        }
    double T = temperature, a = alpha, inv_n = 1.0 / (double)n, inv_t = 1.0 / T;
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *zs = student + i * c, *zt = teacher + i * c;
        float *g = dstudent ? dstudent + i * c : NULL;
        if (g)
            for (int64_t j = 0; j < c; j++)
                g[j] = 0.0f;
        double ms, mt;
        double lse_s = row_logsumexp(zs, c, inv_t, &ms);
        double lse_t = row_logsumexp(zt, c, inv_t, &mt);
        double kl = 0.0;
        for (int64_t j = 0; j < c; j++) {
            double lps = zs[j] * inv_t - ms - lse_s, lpt = zt[j] * inv_t - mt - lse_t;
            double pt = exp(lpt);
            /* 0 * log 0 = 0: a teacher probability that underflows adds nothing */
            if (pt > 0.0) kl += pt * (lpt - lps);
            if (g) g[j] += (float)(a * T * (exp(lps) - pt) * inv_n);
        }
        total += a * T * T * kl;
        if (use_ce) {
            int64_t y;
            read_label(who, labels, label_dtype, i, c, &y, NULL);
            total += (1.0 - a) * ce_row(zs, c, y, smoothing, (1.0 - a) * inv_n, g);
        }
    }
    *loss = (float)(total * inv_n);
    return QF_OK;
}

qf_status qf_accuracy_top1(const float *logits, int64_t n, int64_t c, const void *labels,
                           qf_dtype label_dtype, int64_t *correct, qf_err *err) {
    static const char who[] = "accuracy";
    if (!logits || !labels || !correct || n < 0 || c <= 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: bad arguments (n %lld, c %lld)", who,
                       (long long)n, (long long)c);
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t y;
        qf_status s = read_label(who, labels, label_dtype, i, c, &y, err);
        if (s) return s;
        const float *z = logits + i * c;
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++)
            if (z[j] > z[best]) best = j;
        hits += best == y;
    }
    *correct = hits;
    return QF_OK;
}
