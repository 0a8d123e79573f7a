/* resize_f32.c - ONNX Resize (opsets 10..21), float reference kernel.
 *
 * Modes nearest (round_prefer_floor/ceil, floor, ceil), linear (N-linear on
 * every resized axis) and cubic (with cubic_coeff_a and exclude_outside);
 * coordinate transforms half_pixel, half_pixel_symmetric,
 * pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nearest
 * and tf_crop_and_resize (roi + extrapolation_value); output size from
 * scales or sizes (with keep_aspect_ratio_policy and axes, opset 18).
 * Opset 10 (inputs X, scales) behaves like ONNX Runtime: asymmetric
 * coordinates and, for nearest, truncation (ceil when downsampling).
 *
 * The interpolation is separable: for every output coordinate of every axis
 * a small table of (input offset, weight) taps is built in scratch, and each
 * output element sums the products of its axes' taps. Axes whose taps are a
 * plain copy collapse to one tap, so e.g. bilinear NCHW resizing costs four
 * reads per output. Taps outside the input are clamped to the edge, which
 * matches the ONNX reference's edge padding.
 */
#include <math.h>
#include <string.h>

#include "kernels/ref/spatial.h"

enum { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC };
enum {
    CT_HALF_PIXEL,
    CT_HALF_PIXEL_SYMMETRIC,
    CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS,
    CT_ASYMMETRIC,
    CT_TF_HALF_PIXEL_FOR_NN,
    CT_TF_CROP_AND_RESIZE
};
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
enum { KAR_STRETCH, KAR_NOT_LARGER, KAR_NOT_SMALLER };

typedef struct resize_params {
    int mode, coord, nearest, keep_aspect;
    float cubic_a, extrapolation;
    bool exclude_outside;
    int n_axes; /* 0 = all axes */
    int64_t axes[QF_MAX_DIMS];
    int in_roi, in_scales, in_sizes; /* input positions, -1 when the opset has none */
} resize_params;

typedef struct name_val {
    const char *name;
    int val;
} name_val;

static const name_val modes[] = {{"nearest", MODE_NEAREST},
                                 {"linear", MODE_LINEAR},
                                 {"bilinear", MODE_LINEAR},
                                 {"cubic", MODE_CUBIC},
                                 {NULL, 0}};
static const name_val coords[] = {{"half_pixel", CT_HALF_PIXEL},
                                  {"half_pixel_symmetric", CT_HALF_PIXEL_SYMMETRIC},
                                  {"pytorch_half_pixel", CT_PYTORCH_HALF_PIXEL},
                                  {"align_corners", CT_ALIGN_CORNERS},
                                  {"asymmetric", CT_ASYMMETRIC},
                                  {"tf_half_pixel_for_nearest", CT_TF_HALF_PIXEL_FOR_NN},
                                  {"tf_half_pixel_for_nn", CT_TF_HALF_PIXEL_FOR_NN},
                                  {"tf_crop_and_resize", CT_TF_CROP_AND_RESIZE},
                                  {NULL, 0}};
static const name_val nearests[] = {{"round_prefer_floor", NM_ROUND_PREFER_FLOOR},
                                    {"round_prefer_ceil", NM_ROUND_PREFER_CEIL},
                                    {"floor", NM_FLOOR},
                                    {"ceil", NM_CEIL},
                                    {NULL, 0}};
static const name_val aspects[] = {{"stretch", KAR_STRETCH},
                                   {"not_larger", KAR_NOT_LARGER},
                                   {"not_smaller", KAR_NOT_SMALLER},
                                   {NULL, 0}};

static qf_status pick(const qf_node *n, const char *attr, const char *dflt, const name_val *table,
                      int *out, qf_err *err) {
    const char *v = qf_node_attr_str(n, attr, dflt);
    for (int i = 0; table[i].name; i++)
        if (strcmp(v, table[i].name) == 0) {
            *out = table[i].val;
            return QF_OK;
        }
    char d[200];
    return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s '%s' is not supported",
                   qf_node_desc(n, d, sizeof d), attr, v);
}

static qf_status resize_parse(qf_graph *g, qf_node *n, qf_err *err) {
    char d[200];
    resize_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "Resize: out of memory");
    qf_status s;
    if ((s = pick(n, "mode", "nearest", modes, &p->mode, err))) return s;
    if (n->opset < 11) {
        p->coord = CT_ASYMMETRIC;
        p->nearest = NM_SIMPLE;
        p->in_roi = -1;
        p->in_scales = 1;
        p->in_sizes = -1;
        if (p->mode == MODE_CUBIC)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: mode 'cubic' needs opset >= 11",
                           qf_node_desc(n, d, sizeof d));
    } else {
        if ((s = pick(n, "coordinate_transformation_mode", "half_pixel", coords, &p->coord, err)) ||
            (s = pick(n, "nearest_mode", "round_prefer_floor", nearests, &p->nearest, err)) ||
            (s = pick(n, "keep_aspect_ratio_policy", "stretch", aspects, &p->keep_aspect, err)))
            return s;
        p->in_roi = 1;
        p->in_scales = 2;
        p->in_sizes = 3;
    }
    p->cubic_a = qf_node_attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = qf_node_attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation = qf_node_attr_float(n, "extrapolation_value", 0.0f);
    if (qf_node_attr_int(n, "antialias", 0) != 0)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: antialias=1 is not supported",
                       qf_node_desc(n, d, sizeof d));
    const int64_t *axes;
    int na = qf_node_attr_ints(n, "axes", &axes);
    if (na > QF_MAX_DIMS)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: too many axes (%d)",
                       qf_node_desc(n, d, sizeof d), na);
    p->n_axes = na;
    for (int i = 0; i < na; i++)
        p->axes[i] = axes[i];
    n->params = p;
    return QF_OK;
}

typedef struct resize_plan {
    int rank;
    int64_t in[QF_MAX_DIMS], out[QF_MAX_DIMS];
    double scale[QF_MAX_DIMS];   /* scale used by the coordinate transform */
    double len_out[QF_MAX_DIMS]; /* "length_resized" of the transform formulas */
    double roi_b[QF_MAX_DIMS], roi_e[QF_MAX_DIMS];
    int taps; /* taps per axis before collapsing: 1, 2 or 4 */
} resize_plan;

static bool present(const qf_tensor *in, int n_in, int i) {
    return i >= 0 && i < n_in && in[i].dtype != QF_DT_UNDEF && qf_tensor_numel(&in[i]) > 0;
}

static qf_status resize_make_plan(const qf_node *n, const qf_tensor *in, int n_in, resize_plan *pl,
                                  qf_err *err) {
    const resize_params *p = n->params;
    char d[200];
    qf_node_desc(n, d, sizeof d);
    qf_status s = qf_require_f32(n, &in[0], "X", err);
    if (s) return s;
    const qf_tensor *x = &in[0];
    if (x->rank < 1) return qf_errf(err, QF_ERR_SHAPE, "%s: X must have rank >= 1", d);
    memset(pl, 0, sizeof *pl);
    pl->rank = x->rank;
    pl->taps = p->mode == MODE_NEAREST ? 1 : p->mode == MODE_LINEAR ? 2 : 4;
    /* which axes the scales/sizes/roi entries refer to */
    int n_ax = p->n_axes ? p->n_axes : x->rank;
    int ax_of[QF_MAX_DIMS];
    for (int i = 0; i < n_ax; i++) {
        if (!p->n_axes) {
            ax_of[i] = i;
            continue;
        }
        int a;
        if ((s = qf_norm_axis(n, p->axes[i], x->rank, &a, err))) return s;
        for (int k = 0; k < i; k++)
            if (ax_of[k] == a) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: repeated axis", d);
        ax_of[i] = a;
    }
    for (int a = 0; a < x->rank; a++) {
        pl->in[a] = pl->out[a] = x->dims[a];
        pl->scale[a] = 1.0;
        pl->len_out[a] = (double)x->dims[a];
        pl->roi_b[a] = 0.0;
        pl->roi_e[a] = 1.0;
    }
    if (p->coord == CT_TF_CROP_AND_RESIZE) {
        if (!present(in, n_in, p->in_roi))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: tf_crop_and_resize needs roi", d);
        const qf_tensor *roi = &in[p->in_roi];
        if (!roi->data)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: roi must be known at plan time", d);
        if (qf_tensor_numel(roi) != 2 * n_ax)
            return qf_errf(err, QF_ERR_SHAPE, "%s: roi has %lld values, expected %d", d,
                           (long long)qf_tensor_numel(roi), 2 * n_ax);
        for (int i = 0; i < n_ax; i++) {
            pl->roi_b[ax_of[i]] = qf_tensor_get_f64(roi, i);
            pl->roi_e[ax_of[i]] = qf_tensor_get_f64(roi, n_ax + i);
        }
    }
    bool has_scales = present(in, n_in, p->in_scales), has_sizes = present(in, n_in, p->in_sizes);
    if (has_scales == has_sizes)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: exactly one of scales and sizes must be given",
                       d);
    const qf_tensor *t = &in[has_scales ? p->in_scales : p->in_sizes];
    if (!t->data)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s must be known at plan time", d,
                       has_scales ? "scales" : "sizes");
    if (qf_tensor_numel(t) != n_ax)
        return qf_errf(err, QF_ERR_SHAPE, "%s: %s has %lld values, expected %d", d,
                       has_scales ? "scales" : "sizes", (long long)qf_tensor_numel(t), n_ax);
    if (has_scales) {
        if (t->dtype != QF_DT_F32 && t->dtype != QF_DT_F64)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scales must be float", d);
        for (int i = 0; i < n_ax; i++) {
            int a = ax_of[i];
            float sc = (float)qf_tensor_get_f64(t, i);
            if (!(sc > 0.0f))
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scale %g on axis %d", d, sc, a);
            float span = (float)(pl->roi_e[a] - pl->roi_b[a]);
            /* float product, as ONNX Runtime computes it */
            float o = (float)x->dims[a] * (p->coord == CT_TF_CROP_AND_RESIZE ? span : 1.0f) * sc;
            if (!(o >= 0.0f && o < 0x1p40f))
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scale %g gives output size %g", d, sc,
                               o);
            pl->out[a] = (int64_t)floorf(o);
            pl->scale[a] = sc;
            pl->len_out[a] = (double)sc * (double)x->dims[a];
        }
    } else {
        if (t->dtype != QF_DT_I64)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: sizes must be int64", d);
        double common = 0.0;
        if (p->keep_aspect != KAR_STRETCH) {
            common = p->keep_aspect == KAR_NOT_LARGER ? INFINITY : 0.0;
            for (int i = 0; i < n_ax; i++) {
                double r = (double)qf_tensor_get_i64(t, i) / (double)x->dims[ax_of[i]];
                common = p->keep_aspect == KAR_NOT_LARGER ? fmin(common, r) : fmax(common, r);
            }
        }
        for (int i = 0; i < n_ax; i++) {
            int a = ax_of[i];
            int64_t sz = qf_tensor_get_i64(t, i);
            if (sz < 0 || sz > ((int64_t)1 << 40))
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: size %lld on axis %d", d,
                               (long long)sz, a);
            if (p->keep_aspect != KAR_STRETCH) {
                double o = floor(common * (double)x->dims[a] + 0.5);
                if (!(o >= 0.0 && o < 0x1p40))
                    return qf_errf(err, QF_ERR_INVALID_ARG, "%s: output size %g on axis %d", d, o,
                                   a);
                sz = (int64_t)o;
                pl->scale[a] = common;
            } else {
                pl->scale[a] = x->dims[a] ? (double)sz / (double)x->dims[a] : 1.0;
            }
            pl->out[a] = sz;
            pl->len_out[a] =
                p->keep_aspect != KAR_STRETCH ? common * (double)x->dims[a] : (double)sz;
        }
    }
    for (int a = 0; a < x->rank; a++)
        if (pl->out[a] > 0 && pl->in[a] == 0)
            return qf_errf(err, QF_ERR_SHAPE, "%s: cannot resize an empty axis %d", d, a);
    return QF_OK;
}

static qf_status resize_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                              int n_out, qf_err *err) {
    resize_plan pl;
    qf_status s = resize_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    out[0].dtype = QF_DT_F32;
    out[0].rank = pl.rank;
    memcpy(out[0].dims, pl.out, sizeof(int64_t) * (size_t)pl.rank);
    return QF_OK;
}

typedef struct tap {
    int64_t off; /* element offset into X (index * stride); -1 = extrapolate */
    float w;
} tap;

static size_t resize_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                             int n_out) {
    resize_plan pl;
    if (resize_make_plan(n, in, n_in, &pl, NULL)) return 0;
    size_t total = 0;
    for (int a = 0; a < pl.rank; a++)
        total += (size_t)pl.out[a] * (size_t)pl.taps;
    return total * sizeof(tap) + 64;
}

/* Input coordinate of output coordinate o on axis a; *outside is set when
 * tf_crop_and_resize lands outside the input. */
static double source_coord(const resize_params *p, const resize_plan *pl, int a, int64_t o,
                           bool *outside) {
    double x = (double)o, sc = pl->scale[a], lr = pl->len_out[a];
    double li = (double)pl->in[a];
    *outside = false;
    switch (p->coord) {
    case CT_HALF_PIXEL: return (x + 0.5) / sc - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)pl->out[a] / lr;
        double center = li / 2.0;
        return center * (1.0 - adj) + (x + 0.5) / sc - 0.5;
    }
    case CT_PYTORCH_HALF_PIXEL: return lr > 1.0 ? (x + 0.5) / sc - 0.5 : 0.0;
    case CT_ALIGN_CORNERS: return lr == 1.0 ? 0.0 : x * (li - 1.0) / (lr - 1.0);
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / sc;
    case CT_TF_CROP_AND_RESIZE: {
        double b = pl->roi_b[a], e = pl->roi_e[a], v;
        if (lr > 1.0)
            v = b * (li - 1.0) + x * (e - b) * (li - 1.0) / (lr - 1.0);
        else
            v = 0.5 * (b + e) * (li - 1.0);
        if (v < 0.0 || v > li - 1.0) *outside = true;
        return v;
    }
    default: return x / sc; /* asymmetric */
    }
}

static int64_t clamp_i(int64_t v, int64_t hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* Fill the taps of axis a (pl->taps per output coordinate). */
static void axis_taps(const resize_params *p, const resize_plan *pl, int a, int64_t stride,
                      tap *t) {
    int nt = pl->taps;
    int64_t last = pl->in[a] - 1;
    /* An axis that is not resized maps each index to itself, as in ONNX
     * Runtime. (tf_half_pixel_for_nearest would otherwise shift it by half
     * a pixel, which round_prefer_ceil turns into a whole one.) */
    bool identity =
        pl->scale[a] == 1.0 && pl->out[a] == pl->in[a] && p->coord != CT_TF_CROP_AND_RESIZE;
    for (int64_t o = 0; o < pl->out[a]; o++, t += nt) {
        if (identity) {
            for (int k = 0; k < nt; k++) {
                t[k].off = o * stride;
                t[k].w = k == 0 ? 1.0f : 0.0f;
            }
            continue;
        }
        bool outside;
        double x = source_coord(p, pl, a, o, &outside);
        if (outside) {
            for (int k = 0; k < nt; k++) {
                t[k].off = -1;
                t[k].w = 0.0f;
            }
            continue;
        }
        double f = floor(x), r = x - f;
        int64_t fi = (int64_t)f;
        if (p->mode == MODE_NEAREST) {
            int64_t idx;
            switch (p->nearest) {
            case NM_ROUND_PREFER_CEIL: idx = r >= 0.5 ? fi + 1 : fi; break;
            case NM_FLOOR: idx = fi; break;
            case NM_CEIL: idx = (int64_t)ceil(x); break;
            case NM_SIMPLE: idx = pl->scale[a] < 1.0 ? (int64_t)ceil(x) : (int64_t)x; break;
            default: idx = r > 0.5 ? fi + 1 : fi; break; /* round_prefer_floor */
            }
            t[0].off = clamp_i(idx, last) * stride;
            t[0].w = 1.0f;
        } else if (p->mode == MODE_LINEAR) {
            t[0].off = clamp_i(fi, last) * stride;
            t[0].w = (float)(1.0 - r);
            t[1].off = clamp_i(fi + 1, last) * stride;
            t[1].w = (float)r;
        } else {
            double A = p->cubic_a, c[4], s = 0.0;
            double d0 = r + 1.0, d1 = r, d2 = 1.0 - r, d3 = 2.0 - r; /* tap distances */
            c[0] = ((A * d0 - 5.0 * A) * d0 + 8.0 * A) * d0 - 4.0 * A;
            c[1] = ((A + 2.0) * d1 - (A + 3.0)) * d1 * d1 + 1.0;
            c[2] = ((A + 2.0) * d2 - (A + 3.0)) * d2 * d2 + 1.0;
            c[3] = ((A * d3 - 5.0 * A) * d3 + 8.0 * A) * d3 - 4.0 * A;
            for (int k = 0; k < 4; k++) {
                int64_t idx = fi - 1 + k;
                if (p->exclude_outside && (idx < 0 || idx > last)) c[k] = 0.0;
                s += c[k];
            }
            for (int k = 0; k < 4; k++) {
                t[k].off = clamp_i(fi - 1 + k, last) * stride;
                t[k].w = (float)(p->exclude_outside && s != 0.0 ? c[k] / s : c[k]);
            }
        }
    }
}

/* An axis whose every output reads exactly one input (weight 1, the rest 0)
 * needs one tap: compact its table in place. */
static bool collapse_axis(tap *t, int64_t n_out, int nt) {
    if (nt == 1) return true;
    for (int64_t o = 0; o < n_out; o++) {
        int ones = 0;
        for (int k = 0; k < nt; k++) {
            const tap *q = &t[o * nt + k];
            if (q->off < 0) return false;
            if (q->w == 1.0f)
                ones++;
            else if (q->w != 0.0f)
                return false;
        }
        if (ones != 1) return false;
    }
    for (int64_t o = 0; o < n_out; o++) {
        tap keep = t[o * nt];
        for (int k = 0; k < nt; k++)
            if (t[o * nt + k].w == 1.0f) keep = t[o * nt + k];
        t[o] = keep;
    }
    return true;
}

static qf_status resize_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                            qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const resize_params *p = n->params;
    resize_plan pl;
    qf_status s = resize_make_plan(n, in, n_in, &pl, err);
    if (s) return s;
    int r = pl.rank;
    tap *tabs[QF_MAX_DIMS];
    int nt[QF_MAX_DIMS];
    tap *cur = (tap *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int64_t stride = 1, total = 1;
    for (int a = r - 1; a >= 0; a--) {
        tabs[a] = cur;
        axis_taps(p, &pl, a, stride, cur);
        nt[a] = collapse_axis(cur, pl.out[a], pl.taps) ? 1 : pl.taps;
        cur += pl.out[a] * pl.taps;
        stride *= pl.in[a];
        total *= pl.out[a];
    }
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t o[QF_MAX_DIMS] = {0};
    int multi[QF_MAX_DIMS], n_multi = 0; /* axes with several taps */
    for (int a = 0; a < r; a++)
        if (nt[a] > 1) multi[n_multi++] = a;
    for (int64_t e = 0; e < total; e++) {
        int64_t base = 0;
        bool outside = false;
        for (int a = 0; a < r; a++)
            if (nt[a] == 1) {
                const tap *q = &tabs[a][o[a]];
                if (q->off < 0) outside = true;
                base += q->off;
            }
        const tap *mt[QF_MAX_DIMS];
        for (int k = 0; k < n_multi; k++) {
            mt[k] = &tabs[multi[k]][o[multi[k]] * nt[multi[k]]];
            if (mt[k][0].off < 0) outside = true;
        }
        float acc;
        if (outside) {
            acc = p->extrapolation;
        } else if (n_multi == 0) {
            acc = x[base];
        } else {
            int dig[QF_MAX_DIMS] = {0};
            acc = 0.0f;
            for (;;) {
                int64_t off = base;
                float w = 1.0f;
                for (int k = 0; k < n_multi; k++) {
                    off += mt[k][dig[k]].off;
                    w *= mt[k][dig[k]].w;
                }
                acc += w * x[off];
                int k = n_multi - 1;
                while (k >= 0 && ++dig[k] == nt[multi[k]])
                    dig[k--] = 0;
                if (k < 0) break;
            }
        }
        y[e] = acc;
        for (int a = r - 1; a >= 0; a--) {
            if (++o[a] < pl.out[a]) break;
            o[a] = 0;
        }
    }
    return QF_OK;
}

const qf_op_def qf_opdef_resize = {
    .name = "Resize",
    .flags = 0,
    .value_inputs = (1u << 1) | (1u << 2) | (1u << 3),
    .parse = resize_parse,
    .infer = resize_infer,
    .scratch = resize_scratch,
    .run = resize_run,
};
