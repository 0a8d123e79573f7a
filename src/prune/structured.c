/* structured.c - channel scoring (L1, L2, FPGM) and the real removal of
 * channels found by the dependency analysis (channels.c): every recorded
 * constant is cut along its axis, depthwise group counts and Reshape
 * targets follow, and shapes are inferred again, so the result is a
 * smaller graph that computes the same thing minus the removed channels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "prune/channels_internal.h"

/* ---- scores ------------------------------------------------------------------ */
/* Add member r's per-channel criterion to scores. */
static qf_status score_member(const qf_graph *g, const chan_raw *r, qf_prune_criterion crit,
                              float *scores, qf_err *err) {
    const qf_value *w = &g->values[r->weight];
    if (w->dtype != QF_DT_F32 || !w->data || r->w_axis >= w->rank)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: weight '%s' is not a float constant",
                       g->source_path, w->name);
    int64_t outer = 1, inner = 1, c = w->dims[r->w_axis];
    for (int i = 0; i < r->w_axis; i++) outer *= w->dims[i];
    for (int i = r->w_axis + 1; i < w->rank; i++) inner *= w->dims[i];
    const float *d = w->data;
    int64_t len = outer * inner;
    /* gather filter ch into a contiguous row of len floats */
    float *f = qf_malloc(sizeof(float) * (size_t)(c * len > 0 ? c * len : 1));
    if (!f) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory scoring '%s'", g->source_path,
                           w->name);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t ch = 0; ch < c; ch++)
            memcpy(f + ch * len + o * inner, d + (o * c + ch) * inner,
                   sizeof(float) * (size_t)inner);
    for (int64_t ch = 0; ch < c; ch++) {
        const float *a = f + ch * len;
        double s = 0;
        if (crit == QF_PRUNE_L1) {
            for (int64_t k = 0; k < len; k++) s += fabs(a[k]);
        } else if (crit == QF_PRUNE_L2) {
            for (int64_t k = 0; k < len; k++) s += (double)a[k] * a[k];
            s = sqrt(s);
        } else {
            for (int64_t j = 0; j < c; j++) {
                const float *b = f + j * len;
                double dd = 0;
                for (int64_t k = 0; k < len; k++) {
                    double e = (double)a[k] - b[k];
                    dd += e * e;
                }
                s += sqrt(dd);
            }
        }
        scores[ch] += (float)s;
    }
    qf_free(f);
    return QF_OK;
}

qf_status qf_chan_group_scores(const qf_graph *g, const qf_chan_groups *cg, int i,
                               qf_prune_criterion crit, float *scores, qf_err *err) {
    if (!cg || i < 0 || i >= cg->n)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: no channel group %d", g->source_path, i);
    if (crit != QF_PRUNE_L1 && crit != QF_PRUNE_L2 && crit != QF_PRUNE_FPGM)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: unknown pruning criterion %d",
                       g->source_path, (int)crit);
    memset(scores, 0, sizeof(float) * (size_t)cg->groups[i].channels);
    for (int r = 0; r < cg->n_raw; r++) {
        if (cg->raw_group[r] != i) continue;
        qf_status s = score_member(g, &cg->raw[r], crit, scores, err);
        if (s) return s;
    }
    return QF_OK;
}

/* ---- removal ----------------------------------------------------------------- */
/* Positions along an axis that survive, for a layout; *n_out of them. */
static int64_t *kept_positions(const qf_chan_groups *cg, const chan_layout *l,
                               const uint8_t *const *keep, int64_t *n_out) {
    int64_t total = qf_chan_layout_total(l);
    int64_t *pos = qf_malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
    if (!pos) return NULL;
    int64_t off = 0, k = 0;
    for (int s = 0; s < l->n; s++) {
        const chan_seg *sg = &l->segs[s];
        const uint8_t *km = sg->group >= 0 ? keep[cg->raw_group[sg->group]] : NULL;
        for (int64_t c = 0; c < sg->count; c++) {
            if (!km || km[c])
                for (int64_t b = 0; b < sg->block; b++) pos[k++] = off + c * sg->block + b;
        }
        off += sg->count * sg->block;
    }
    *n_out = k;
    return pos;
}

static qf_status cut_value(qf_graph *g, int v, int axis, const int64_t *pos, int64_t n_keep,
                           qf_err *err) {
    qf_value *x = &g->values[v];
    if (n_keep == x->dims[axis]) return QF_OK;
    size_t esz = qf_dtype_size(x->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
    size_t row = (size_t)inner * esz, nbytes;
    if (!esz || !qf_mul_size((size_t)(outer * n_keep), row, &nbytes))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: cannot cut '%s'", g->source_path, x->name);
    uint8_t *dst = qf_malloc_aligned(nbytes ? nbytes : 1);
    if (!dst) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory cutting '%s'",
                             g->source_path, x->name);
    const uint8_t *src = x->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n_keep; k++)
            memcpy(dst + (size_t)(o * n_keep + k) * row,
                   src + (size_t)(o * x->dims[axis] + pos[k]) * row, row);
    int64_t dims[QF_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = n_keep;
    return qf_graph_set_const_owned(g, v, x->dtype, x->rank, dims, dst, nbytes);
}

static qf_status apply_fix(qf_graph *g, const qf_chan_groups *cg, const chan_fix *f,
                           const uint8_t *const *keep, qf_err *err) {
    int64_t n_keep = 0;
    int64_t *pos = kept_positions(cg, &f->lay, keep, &n_keep);
    if (!pos) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    qf_free(pos);
    qf_node *n = &g->nodes[f->node];
    char d[200];
    if (f->kind == CHAN_FIX_DW_GROUP) {
        qf_attr *ga = NULL;
        for (int k = 0; k < n->n_attrs; k++)
            if (strcmp(n->attrs[k].name, "group") == 0) ga = &n->attrs[k];
        if (!ga)
            return qf_errf(err, QF_ERR_INTERNAL, "%s: %s: no group attribute", g->source_path,
                           qf_node_desc(n, d, sizeof d));
        ga->i = n_keep;
        /* the kernel reads its parsed params: parse again */
        const qf_op_def *def = qf_op_get(n->op);
        return def && def->parse ? def->parse(g, n, err) : QF_OK;
    }
    qf_value *s = &g->values[f->value];
    void *copy = qf_malloc_aligned(s->nbytes ? s->nbytes : 1);
    if (!copy) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    memcpy(copy, s->data, s->nbytes);
    if (s->dtype == QF_DT_I64)
        ((int64_t *)copy)[f->index] = n_keep;
    else if (s->dtype == QF_DT_I32)
        ((int32_t *)copy)[f->index] = (int32_t)n_keep;
    else {
        qf_free_aligned(copy);
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: shape is %s", g->source_path,
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(s->dtype));
    }
    return qf_graph_set_const_owned(g, f->value, s->dtype, s->rank, s->dims, copy, s->nbytes);
}

static qf_status cut_all(qf_graph *g, const qf_chan_groups *cg, const uint8_t *const *km,
                         qf_err *err);

qf_status qf_chan_groups_remove(qf_graph *g, const qf_chan_groups *cg, const uint8_t *const *keep,
                                qf_err *err) {
    if (!cg || cg->n_nodes_seen != g->n_nodes || cg->n_values_seen != g->n_values)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: channel groups do not belong to this graph",
                       g->source_path);
    char d[200];
    /* validate everything before touching the graph: nothing half-done */
    bool changed = false;
    for (int i = 0; i < cg->n; i++) {
        const qf_chan_group *gr = &cg->groups[i];
        if (!keep || !keep[i]) continue;
        int64_t kept = 0;
        for (int64_t c = 0; c < gr->channels; c++) kept += keep[i][c] != 0;
        const qf_node *m = &g->nodes[gr->members[0]];
        if (kept == 0)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: %s: pruning would remove all %lld output channels (keep >= 1)",
                           g->source_path, qf_node_desc(m, d, sizeof d),
                           (long long)gr->channels);
        if (kept < gr->channels && gr->frozen)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: %s: its channels cannot shrink (%s)",
                           g->source_path, qf_node_desc(m, d, sizeof d), gr->why);
        changed = changed || kept < gr->channels;
    }
    if (!changed) return QF_OK;
    /* a NULL entry keeps everything: give kept_positions a full mask */
    const uint8_t **km = qf_calloc((size_t)cg->n + 1, sizeof *km);
    if (!km) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    int64_t maxc = 1;
    for (int i = 0; i < cg->n; i++) maxc = QF_MAX(maxc, cg->groups[i].channels);
    uint8_t *ones = qf_malloc((size_t)maxc);
    if (!ones) {
        qf_free(km);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    }
    memset(ones, 1, (size_t)maxc);
    for (int i = 0; i < cg->n; i++) km[i] = keep[i] ? keep[i] : ones;
    /* Dry run on a copy first: a shape the analysis cannot see (e.g. a
     * Reshape target computed at run time with a literal width) then fails
     * shape inference there, and g stays untouched. */
    qf_graph *c = NULL;
    qf_status s = qf_graph_clone(g, &c, err);
    if (!s) s = cut_all(c, cg, km, err);
    if (!s && (s = qf_pass_infer_shapes(c, err)))
        qf_err_prefix(err, "%s: the graph does not fit together after removing channels",
                      g->source_path);
    qf_graph_free(c);
    if (!s) s = cut_all(g, cg, km, err);
    qf_free(km);
    qf_free(ones);
    if (s) return s;
    return qf_pass_infer_shapes(g, err);
}

static qf_status cut_all(qf_graph *g, const qf_chan_groups *cg, const uint8_t *const *km,
                         qf_err *err) {
    qf_status s = QF_OK;
    for (int k = 0; k < cg->n_slices && !s; k++) {
        const chan_slice *sl = &cg->slices[k];
        const qf_value *x = &g->values[sl->value];
        if (x->rank <= sl->axis || x->dims[sl->axis] != qf_chan_layout_total(&sl->lay)) {
            s = qf_errf(err, QF_ERR_INTERNAL, "%s: '%s' changed since the analysis",
                        g->source_path, x->name);
            break;
        }
        int64_t n_keep = 0;
        int64_t *pos = kept_positions(cg, &sl->lay, km, &n_keep);
        if (!pos) {
            s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
            break;
        }
        s = cut_value(g, sl->value, sl->axis, pos, n_keep, err);
        qf_free(pos);
    }
    for (int k = 0; k < cg->n_fixes && !s; k++)
        s = apply_fix(g, cg, &cg->fixes[k], km, err);
    return s;
}

/* ---- one call ------------------------------------------------------------------ */
typedef struct scored {
    float s;
    int64_t c;
} scored;

static int scored_cmp(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return x->c < y->c ? -1 : x->c > y->c;
}

qf_status qf_prune_structured(qf_graph *g, const qf_struct_options *opt, qf_err *err) {
    if (!(opt->sparsity >= 0.0f && opt->sparsity < 1.0f))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sparsity %g is outside [0, 1)",
                       g->source_path, opt->sparsity);
    qf_chan_groups *cg = NULL;
    qf_status s = qf_chan_groups_build(g, &cg, err);
    if (s) return s;
    if (opt->group_sparsity && opt->n_group_sparsity != cg->n) {
        s = qf_errf(err, QF_ERR_INVALID_ARG, "%s: %d group sparsities for %d groups",
                    g->source_path, opt->n_group_sparsity, cg->n);
        qf_chan_groups_free(cg);
        return s;
    }
    uint8_t **keep = qf_calloc((size_t)cg->n + 1, sizeof *keep);
    if (!keep) {
        qf_chan_groups_free(cg);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    }
    for (int i = 0; i < cg->n && !s; i++) {
        const qf_chan_group *gr = &cg->groups[i];
        float sp = opt->group_sparsity ? opt->group_sparsity[i] : opt->sparsity;
        if (!(sp >= 0.0f && sp < 1.0f)) {
            s = qf_errf(err, QF_ERR_INVALID_ARG, "%s: sparsity %g of group %d is outside [0, 1)",
                        g->source_path, sp, i);
            break;
        }
        int64_t drop = (int64_t)floor((double)sp * (double)gr->channels);
        if (drop > gr->channels - 1) drop = gr->channels - 1;
        if (gr->frozen || drop <= 0) continue;
        float *sc = qf_malloc(sizeof(float) * (size_t)gr->channels);
        scored *order = qf_malloc(sizeof(scored) * (size_t)gr->channels);
        keep[i] = qf_malloc((size_t)gr->channels);
        if (!sc || !order || !keep[i]) {
            s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
        } else {
            s = qf_chan_group_scores(g, cg, i, opt->crit, sc, err);
        }
        if (!s) {
            for (int64_t c = 0; c < gr->channels; c++) order[c] = (scored){sc[c], c};
            qsort(order, (size_t)gr->channels, sizeof *order, scored_cmp);
            memset(keep[i], 1, (size_t)gr->channels);
            for (int64_t k = 0; k < drop; k++) keep[i][order[k].c] = 0;
        }
        qf_free(sc);
        qf_free(order);
    }
    if (!s) s = qf_chan_groups_remove(g, cg, (const uint8_t *const *)keep, err);
    for (int i = 0; i < cg->n; i++) qf_free(keep[i]);
    qf_free(keep);
    qf_chan_groups_free(cg);
    return s;
}
