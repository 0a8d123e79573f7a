/* pad.c - Pad in modes constant, reflect, edge and wrap. Pads come from the
 * `pads` attribute (opset < 11) or input 1, optionally for a subset of axes
 * (input 3, opset 18). Negative pads crop: the input is cropped first, then
 * padded from the cropped region.
 *
 * Run copies the (cropped) input into the interior of the output, then for
 * the non-constant modes fills the border one axis at a time, innermost
 * first: when axis d is done, every axis after it is already complete, so a
 * border "row" of axis d is a contiguous block copied from an interior row
 * (this is also what makes the corners come out right, as in numpy.pad). */
#include "kernels/ref/movement_util.h"
#include "kernels/ref/strided_copy.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_params {
    int mode;
    /* opset < 11 attributes */
    int n_pads;
    const int64_t *pads;
    float value;
} pad_params;

static qf_status pad_parse(qf_graph *g, qf_node *n, qf_err *err) {
    pad_params *p = qf_graph_alloc(g, sizeof *p);
    char d[200];
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "out of memory");
    const char *mode = qf_node_attr_str(n, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0)
        p->mode = PAD_WRAP;
    else
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: attribute mode='%s' not supported",
                       qf_node_desc(n, d, sizeof d), mode);
    if (n->opset < 11) {
        if (!qf_node_attr(n, "pads"))
            return qf_errf(err, QF_ERR_FORMAT, "%s: required attribute 'pads' missing",
                           qf_node_desc(n, d, sizeof d));
        p->n_pads = qf_node_attr_ints(n, "pads", &p->pads);
        p->value = qf_node_attr_float(n, "value", 0.0f);
    }
    n->params = p;
    return QF_OK;
}

/* Per-axis geometry: pads before/after, and the part of the input that
 * survives cropping (src_start, len) landing at dst_start in the output. */
typedef struct pad_plan {
    int64_t before[QF_MAX_DIMS], after[QF_MAX_DIMS];
    int64_t src_start[QF_MAX_DIMS], dst_start[QF_MAX_DIMS], len[QF_MAX_DIMS];
    int64_t out[QF_MAX_DIMS];
} pad_plan;

/* The pads of a plan do not fit the input: name them and the shape. */
static qf_status pads_error(const qf_node *n, const qf_tensor *x, const pad_plan *pl, qf_err *err) {
    char d[200], s1[160], s2[160];
    int64_t all[2 * QF_MAX_DIMS];
    for (int a = 0; a < x->rank; a++) {
        all[a] = pl->before[a];
        all[a + x->rank] = pl->after[a];
    }
    return qf_errf(err, QF_ERR_SHAPE, "%s: pads %s do not fit input shape %s",
                   qf_node_desc(n, d, sizeof d), mv_fmt_dims(s1, sizeof s1, 2 * x->rank, all),
                   mv_fmt_dims(s2, sizeof s2, x->rank, x->dims));
}

static qf_status make_plan(const qf_node *n, const qf_tensor *in, int n_in, pad_plan *pl,
                           qf_err *err) {
    const pad_params *p = n->params;
    char d[200];
    if (!p) return mv_no_params(n, err);
    qf_status s = mv_check_data(n, in, n_in, err);
    if (s) return s;
    int r = in[0].rank;
    for (int a = 0; a < r; a++)
        pl->before[a] = pl->after[a] = 0;
    if (n->opset < 11) {
        if (p->n_pads != 2 * r)
            return qf_errf(err, QF_ERR_SHAPE, "%s: %d pads for rank %d",
                           qf_node_desc(n, d, sizeof d), p->n_pads, r);
        for (int a = 0; a < r; a++) {
            pl->before[a] = p->pads[a];
            pl->after[a] = p->pads[a + r];
        }
    } else {
        const qf_tensor *pads = mv_opt_in(in, n_in, 1), *axes = NULL;
        if (!pads)
            return qf_errf(err, QF_ERR_FORMAT, "%s: missing pads input",
                           qf_node_desc(n, d, sizeof d));
        int64_t np = 0, k = r;
        if ((s = mv_need_ints(n, pads, "pads", &np, err))) return s;
        if (n->opset >= 18) axes = mv_opt_in(in, n_in, 3);
        if (axes && (s = mv_need_ints(n, axes, "axes", &k, err))) return s;
        if (k > r || np != 2 * k)
            return qf_errf(err, QF_ERR_SHAPE, "%s: %lld pads for %lld axes of a rank-%d input",
                           qf_node_desc(n, d, sizeof d), (long long)np, (long long)k, r);
        uint32_t seen = 0;
        for (int64_t i = 0; i < k; i++) {
            int a = (int)i;
            if (axes && (s = qf_norm_axis(n, qf_tensor_get_i64(axes, i), r, &a, err))) return s;
            if ((seen >> a) & 1u)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: axis %d repeated",
                               qf_node_desc(n, d, sizeof d), a);
            seen |= 1u << a;
            pl->before[a] = qf_tensor_get_i64(pads, i);
            pl->after[a] = qf_tensor_get_i64(pads, i + k);
        }
    }
    for (int a = 0; a < r; a++) {
        int64_t dim = in[0].dims[a], b = pl->before[a], e = pl->after[a];
        /* pads are bounded so that the sums below cannot overflow */
        if (b < -dim || e < -dim || b > INT64_MAX / 4 || e > INT64_MAX / 4)
            return pads_error(n, &in[0], pl, err);
        pl->out[a] = dim + b + e;
        pl->src_start[a] = b < 0 ? -b : 0;
        pl->dst_start[a] = b > 0 ? b : 0;
        pl->len[a] = dim - (b < 0 ? -b : 0) - (e < 0 ? -e : 0);
        if (pl->out[a] < 0 || pl->len[a] < 0) return pads_error(n, &in[0], pl, err);
        if (p->mode != PAD_CONSTANT && pl->len[a] == 0 && pl->out[a] > 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: cannot pad an empty axis %d in mode %s",
                           qf_node_desc(n, d, sizeof d), a,
                           qf_node_attr_str(n, "mode", "constant"));
    }
    return QF_OK;
}

static qf_status pad_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                           int n_out, qf_err *err) {
    pad_plan pl;
    qf_status s = make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    const qf_tensor *cv = n->opset >= 11 ? mv_opt_in(in, n_in, 2) : NULL;
    if (cv && cv->dtype != in[0].dtype) {
        char d[200];
        return qf_errf(err, QF_ERR_FORMAT, "%s: constant_value is %s but data is %s",
                       qf_node_desc(n, d, sizeof d), qf_dtype_name(cv->dtype),
                       qf_dtype_name(in[0].dtype));
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    for (int a = 0; a < in[0].rank; a++)
        out[0].dims[a] = pl.out[a];
    return mv_check_out(n, &out[0], err);
}

/* Interior index in [0, len) that border offset j (< 0 or >= len) copies. */
static int64_t border_source(int mode, int64_t j, int64_t len) {
    switch (mode) {
    case PAD_EDGE: return j < 0 ? 0 : len - 1;
    case PAD_WRAP: return ((j % len) + len) % len;
    default: { /* reflect, mirrored on the first and last elements */
        if (len == 1) return 0;
        int64_t period = 2 * (len - 1), m = ((j % period) + period) % period;
        return m < len ? m : period - m;
    }
    }
}

static qf_status pad_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                         qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const pad_params *p = n->params;
    pad_plan pl;
    qf_status s = make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    int r = in[0].rank;
    size_t es = qf_dtype_size(in[0].dtype);
    int64_t total = qf_tensor_numel(&out[0]);
    if (total <= 0) return QF_OK;
    unsigned char *o = out[0].data;
    int64_t ostr[QF_MAX_DIMS], istr[QF_MAX_DIMS];
    qf_ref_row_strides(r, pl.out, ostr);
    qf_ref_row_strides(r, in[0].dims, istr);

    if (p->mode == PAD_CONSTANT) {
        unsigned char value[16] = {0};
        const qf_tensor *cv = n->opset >= 11 ? mv_opt_in(in, n_in, 2) : NULL;
        if (n->opset < 11)
            mv_store_f64(in[0].dtype, p->value, value);
        else if (cv && cv->data && qf_tensor_numel(cv) >= 1 && es <= sizeof value)
            memcpy(value, cv->data, es);
        if (es <= sizeof value) mv_fill(o, value, total, es);
    }
    /* the surviving input into the interior */
    int64_t doff = 0, soff = 0;
    bool empty = false;
    for (int a = 0; a < r; a++) {
        doff += pl.dst_start[a] * ostr[a];
        soff += pl.src_start[a] * istr[a];
        empty = empty || pl.len[a] == 0;
    }
    if (!empty)
        qf_ref_copy_strided(o + (size_t)doff * es, ostr,
                            (const unsigned char *)in[0].data + (size_t)soff * es, istr, r, pl.len,
                            es);
    if (p->mode == PAD_CONSTANT) return QF_OK;

    for (int dax = r - 1; dax >= 0; dax--) {
        if (pl.before[dax] <= 0 && pl.after[dax] <= 0) continue;
        size_t block = (size_t)ostr[dax] * es;
        /* odometer over the interior positions of the axes before dax */
        int64_t idx[QF_MAX_DIMS];
        int64_t base = 0;
        for (int a = 0; a < dax; a++) {
            idx[a] = 0;
            base += pl.dst_start[a] * ostr[a];
        }
        for (;;) {
            int64_t lo = pl.dst_start[dax], len = pl.len[dax];
            for (int64_t pos = 0; pos < pl.out[dax]; pos++) {
                if (pos == lo) pos = lo + len; /* skip the interior */
                if (pos >= pl.out[dax]) break;
                int64_t from = lo + border_source(p->mode, pos - lo, len);
                memcpy(o + (size_t)(base + pos * ostr[dax]) * es,
                       o + (size_t)(base + from * ostr[dax]) * es, block);
            }
            int a = dax - 1;
            for (; a >= 0; a--) {
                idx[a]++;
                base += ostr[a];
                if (idx[a] < pl.len[a]) break;
                base -= pl.len[a] * ostr[a];
                idx[a] = 0;
            }
            if (a < 0) break;
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_pad = {
    .name = "Pad",
    .value_inputs = (1u << 1) | (1u << 2) | (1u << 3),
    .parse = pad_parse,
    .infer = pad_infer,
    .run = pad_run,
};
