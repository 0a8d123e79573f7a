/* channels.c - channel dependency analysis for structured pruning.
 *
 * Walks the graph in topological order and tracks, for every tensor, which
 * prunable channels its channel axis carries (a layout, see
 * channels_internal.h). Conv/Gemm/MatMul with constant weights start a new
 * raw group for their output channels; BatchNormalization, element-wise
 * activations, pools, Pad, Resize and depthwise Convs pass channels through
 * (recording the constants that must shrink with them); Flatten/Reshape/
 * Squeeze/Unsqueeze keep track of the axis when it survives the reshape
 * (channel blocks grow by the merged inner size); Concat appends segments;
 * element-wise joins (residual Add, Mul, ...) merge the groups of their
 * inputs (union-find) so they are pruned together.
 *
 * Anything that needs every channel (graph outputs, Softmax, grouped Convs,
 * Split/Slice/Gather, a constant read by two nodes, ops not modelled here)
 * freezes the groups it touches: keeping channels is always correct. A
 * reshape that mixes the channel axis with other axes is an error naming
 * the node (issue 6: unresolvable dependencies must be reported, not
 * silently worked around). */
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "ir/passes.h"
#include "prune/channels_internal.h"

typedef struct walk {
    qf_graph *g;
    qf_chan_groups *cg;
    chan_layout *lay; /* per value */
    qf_err *err;
    qf_status st; /* first error (OOM or unresolved) */
} walk;

/* ---- small helpers -------------------------------------------------------- */
static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *q = qf_realloc(*p, (size_t)nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static qf_status oom(walk *w) {
    if (!w->st) w->st = qf_errf(w->err, QF_ERR_NOMEM, "%s: out of memory in channel analysis",
                                w->g->source_path);
    return w->st;
}

int qf_chan_find(qf_chan_groups *cg, int r) {
    while (cg->raw[r].parent != r) {
        cg->raw[r].parent = cg->raw[cg->raw[r].parent].parent;
        r = cg->raw[r].parent;
    }
    return r;
}

int64_t qf_chan_layout_total(const chan_layout *l) {
    int64_t t = 0;
    for (int i = 0; i < l->n; i++)
        t += l->segs[i].count * l->segs[i].block;
    return t;
}

static const qf_value *val(const walk *w, int v) { return v >= 0 ? &w->g->values[v] : NULL; }

static bool is_const(const walk *w, int v) {
    return v >= 0 && (w->g->values[v].flags & QF_VAL_CONST) && w->g->values[v].data;
}

static int in_of(const qf_node *n, int j) { return j < n->n_inputs ? n->inputs[j] : -1; }

/* Layout of input j (an empty one for an omitted input). */
static const chan_layout *lay_in(const walk *w, const qf_node *n, int j) {
    static const chan_layout none = {0, 0, NULL};
    int v = in_of(n, j);
    return v >= 0 ? &w->lay[v] : &none;
}

static bool copy_layout(walk *w, chan_layout *dst, const chan_layout *src, int axis) {
    dst->axis = axis;
    dst->n = src->n;
    dst->segs = NULL;
    if (!src->n) return true;
    dst->segs = qf_arena_alloc(&w->cg->arena, sizeof(chan_seg) * (size_t)src->n);
    if (!dst->segs) return false;
    memcpy(dst->segs, src->segs, sizeof(chan_seg) * (size_t)src->n);
    return true;
}

static void set_out(walk *w, const qf_node *n, const chan_layout *l, int axis) {
    int o = n->n_outputs > 0 ? n->outputs[0] : -1;
    if (o < 0 || !l->n) return;
    if (!copy_layout(w, &w->lay[o], l, axis)) oom(w);
}

static void freeze_raw(walk *w, int r, const char *why) {
    chan_raw *c = &w->cg->raw[r];
    c->frozen = true;
    if (!c->why[0]) snprintf(c->why, sizeof c->why, "%s", why);
}

static void freeze_layout(walk *w, const chan_layout *l, const char *why) {
    for (int i = 0; i < l->n; i++)
        if (l->segs[i].group >= 0) freeze_raw(w, l->segs[i].group, why);
}

/* Freeze what every input of n carries: n needs all of its channels. */
static void freeze_inputs(walk *w, const qf_node *n, const char *reason) {
    char d[200], why[160];
    snprintf(why, sizeof why, "%s: %s", qf_node_desc(n, d, sizeof d), reason);
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0) freeze_layout(w, &w->lay[n->inputs[j]], why);
}

static qf_status unresolved(walk *w, const qf_node *n, const char *what) {
    char d[200];
    if (!w->st)
        w->st = qf_errf(w->err, QF_ERR_UNSUPPORTED,
                        "%s: %s: %s: cannot track its channels for structured pruning",
                        w->g->source_path, qf_node_desc(n, d, sizeof d), what);
    return w->st;
}

static int new_group(walk *w, int64_t count, int node, int weight, int w_axis) {
    qf_chan_groups *cg = w->cg;
    if (!grow((void **)&cg->raw, &cg->cap_raw, cg->n_raw + 1, sizeof *cg->raw)) {
        oom(w);
        return -1;
    }
    chan_raw *r = &cg->raw[cg->n_raw];
    memset(r, 0, sizeof *r);
    r->parent = cg->n_raw;
    r->count = count;
    r->node = node;
    r->weight = weight;
    r->w_axis = w_axis;
    return cg->n_raw++;
}

static void unite(walk *w, int a, int b) {
    a = qf_chan_find(w->cg, a);
    b = qf_chan_find(w->cg, b);
    if (a == b) return;
    if (w->cg->raw[a].count != w->cg->raw[b].count) {
        /* cannot happen for a graph whose shapes check out; stay safe */
        freeze_raw(w, a, "joined with a group of another size");
        freeze_raw(w, b, "joined with a group of another size");
        return;
    }
    w->cg->raw[b].parent = a;
}

static void add_slice(walk *w, int v, int axis, const chan_layout *l, int node) {
    const qf_value *x = val(w, v);
    if (!l->n) return;
    char d[200], why[160];
    if (!x || !is_const(w, v) || axis < 0 || axis >= x->rank ||
        x->dims[axis] != qf_chan_layout_total(l)) {
        snprintf(why, sizeof why, "%s: parameter '%s' does not match its channels",
                 qf_node_desc(&w->g->nodes[node], d, sizeof d), x ? x->name : "?");
        freeze_layout(w, l, why);
        return;
    }
    qf_chan_groups *cg = w->cg;
    if (!grow((void **)&cg->slices, &cg->cap_slices, cg->n_slices + 1, sizeof *cg->slices)) {
        oom(w);
        return;
    }
    chan_slice *s = &cg->slices[cg->n_slices];
    s->value = v;
    s->axis = axis;
    s->node = node;
    if (!copy_layout(w, &s->lay, l, axis)) {
        oom(w);
        return;
    }
    cg->n_slices++;
}

static void add_fix(walk *w, int kind, int node, int v, int index, const chan_layout *l) {
    qf_chan_groups *cg = w->cg;
    if (!grow((void **)&cg->fixes, &cg->cap_fixes, cg->n_fixes + 1, sizeof *cg->fixes)) {
        oom(w);
        return;
    }
    chan_fix *f = &cg->fixes[cg->n_fixes];
    f->kind = kind;
    f->node = node;
    f->value = v;
    f->index = index;
    if (!copy_layout(w, &f->lay, l, l->axis)) {
        oom(w);
        return;
    }
    cg->n_fixes++;
}

static bool same_structure(const chan_layout *a, const chan_layout *b) {
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
        if (a->segs[i].count != b->segs[i].count || a->segs[i].block != b->segs[i].block)
            return false;
    return true;
}

/* Join two layouts of the same structure channel by channel. */
static void join(walk *w, const chan_layout *a, const chan_layout *b, const char *why) {
    for (int i = 0; i < a->n; i++) {
        int ga = a->segs[i].group, gb = b->segs[i].group;
        if (ga >= 0 && gb >= 0)
            unite(w, ga, gb);
        else if (ga >= 0)
            freeze_raw(w, ga, why);
        else if (gb >= 0)
            freeze_raw(w, gb, why);
    }
}

/* ---- op handlers ------------------------------------------------------------ */
static void on_conv(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int x = in_of(n, 0), wv = in_of(n, 1), b = in_of(n, 2);
    const chan_layout *lx = x >= 0 ? &w->lay[x] : NULL;
    const qf_value *W = val(w, wv);
    int64_t group = qf_node_attr_int(n, "group", 1);
    if (!W || !is_const(w, wv) || W->rank < 3 || (b >= 0 && !is_const(w, b))) {
        freeze_inputs(w, n, "weights are not constant");
        return;
    }
    int64_t m = W->dims[0];
    if (lx && lx->n && lx->axis != 1) {
        freeze_inputs(w, n, "channels arrive on another axis");
        return;
    }
    if (group == 1) {
        if (lx && lx->n) add_slice(w, wv, 1, lx, i);
        int r = new_group(w, m, i, wv, 0);
        if (r < 0) return;
        chan_seg seg = {r, m, 1};
        chan_layout own = {0, 1, &seg};
        add_slice(w, wv, 0, &own, i);
        if (b >= 0) add_slice(w, b, 0, &own, i);
        set_out(w, n, &own, 1);
        return;
    }
    const qf_value *X = val(w, x);
    int64_t c = X && X->rank >= 2 ? X->dims[1] : -1;
    if (group == c && W->dims[1] == 1 && m == c) {
        /* depthwise (multiplier 1): each output channel follows its input */
        if (!lx || !lx->n) return;
        add_slice(w, wv, 0, lx, i);
        if (b >= 0) add_slice(w, b, 0, lx, i);
        add_fix(w, CHAN_FIX_DW_GROUP, i, -1, 0, lx);
        set_out(w, n, lx, 1);
        return;
    }
    freeze_inputs(w, n, "grouped convolution");
}

static void on_gemm(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int bv = in_of(n, 1), c = in_of(n, 2);
    const qf_value *B = val(w, bv);
    if (!B || !is_const(w, bv) || B->rank != 2 || qf_node_attr_int(n, "transA", 0) ||
        (c >= 0 && !is_const(w, c))) {
        freeze_inputs(w, n, "operand B is not a constant matrix");
        return;
    }
    bool tb = qf_node_attr_int(n, "transB", 0) != 0;
    const chan_layout *la = lay_in(w, n, 0);
    if (la->n) {
        if (la->axis != 1) {
            freeze_inputs(w, n, "features arrive on another axis");
            return;
        }
        add_slice(w, bv, tb ? 1 : 0, la, i);
    }
    int64_t nout = tb ? B->dims[0] : B->dims[1];
    int r = new_group(w, nout, i, bv, tb ? 0 : 1);
    if (r < 0) return;
    chan_seg seg = {r, nout, 1};
    chan_layout own = {0, 1, &seg};
    add_slice(w, bv, tb ? 0 : 1, &own, i);
    if (c >= 0) {
        const qf_value *C = val(w, c);
        if (C->rank >= 1 && C->dims[C->rank - 1] == nout && nout > 1) {
            if (C->rank == 2 && C->dims[0] != 1) {
                freeze_raw(w, r, "Gemm bias is a full matrix");
            } else {
                add_slice(w, c, C->rank - 1, &own, i);
            }
        }
    }
    set_out(w, n, &own, 1);
}

static void on_matmul(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int a = in_of(n, 0), bv = in_of(n, 1);
    const qf_value *A = val(w, a), *B = val(w, bv);
    if (!B || !is_const(w, bv) || B->rank != 2 || !A || A->rank < 1) {
        freeze_inputs(w, n, "operand B is not a constant matrix");
        return;
    }
    const chan_layout *la = lay_in(w, n, 0);
    if (la->n) {
        if (la->axis != A->rank - 1) {
            freeze_inputs(w, n, "features arrive on another axis");
            return;
        }
        add_slice(w, bv, 0, la, i);
    }
    int r = new_group(w, B->dims[1], i, bv, 1);
    if (r < 0) return;
    chan_seg seg = {r, B->dims[1], 1};
    chan_layout own = {0, 1, &seg};
    add_slice(w, bv, 1, &own, i);
    const qf_value *O = val(w, n->n_outputs > 0 ? n->outputs[0] : -1);
    if (!O || O->rank < 1) {
        freeze_raw(w, r, "MatMul output shape unknown");
        return;
    }
    set_out(w, n, &own, O->rank - 1);
}

static void on_batchnorm(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    const chan_layout *lx = lay_in(w, n, 0);
    if (!lx->n) return;
    if (lx->axis != 1) {
        freeze_inputs(w, n, "channels arrive on another axis");
        return;
    }
    for (int j = 1; j < 5; j++)
        if (!is_const(w, in_of(n, j))) {
            freeze_inputs(w, n, "parameters are not constant");
            return;
        }
    for (int j = 1; j < 5; j++)
        add_slice(w, in_of(n, j), 0, lx, i);
    set_out(w, n, lx, 1);
}

/* Element-wise ops (and Concat along another axis): the channel axes of all
 * inputs line up after broadcasting, so their groups merge; constants that
 * vary along the axis shrink with it. */
static void on_eltwise(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int o = n->n_outputs > 0 ? n->outputs[0] : -1;
    const qf_value *O = val(w, o);
    if (!O || O->rank < 0) {
        freeze_inputs(w, n, "output shape unknown");
        return;
    }
    int R = O->rank, axis = -1;
    const chan_layout *ref = NULL;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0 || !w->lay[v].n) continue;
        int ax = R - w->g->values[v].rank + w->lay[v].axis;
        if (!ref) {
            ref = &w->lay[v];
            axis = ax;
        } else if (ax != axis || !same_structure(ref, &w->lay[v])) {
            freeze_inputs(w, n, "inputs carry different channel sets");
            return;
        }
    }
    if (!ref) return;
    int64_t total = qf_chan_layout_total(ref);
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0 || w->lay[v].n) continue;
        const qf_value *x = &w->g->values[v];
        int pos = axis - (R - x->rank);
        int64_t size = pos >= 0 && x->rank >= 0 ? x->dims[pos] : 1;
        if (x->rank < 0 || (size != 1 && (size != total || !is_const(w, v)))) {
            freeze_inputs(w, n, "joined with a tensor whose channels cannot shrink");
            return;
        }
    }
    char d[200], why[160];
    snprintf(why, sizeof why, "%s: joins fixed channels", qf_node_desc(n, d, sizeof d));
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        if (w->lay[v].n) {
            join(w, ref, &w->lay[v], why);
            continue;
        }
        const qf_value *x = &w->g->values[v];
        int pos = axis - (R - x->rank);
        if (pos >= 0 && x->dims[pos] == total && total > 1) add_slice(w, v, pos, ref, i);
    }
    set_out(w, n, ref, axis);
}

static void on_concat(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int o = n->n_outputs > 0 ? n->outputs[0] : -1;
    const qf_value *O = val(w, o);
    if (!O || O->rank < 1) {
        freeze_inputs(w, n, "output shape unknown");
        return;
    }
    int64_t ax64 = qf_node_attr_int(n, "axis", 0);
    int axis = (int)(ax64 < 0 ? ax64 + O->rank : ax64);
    bool any = false, all_on_axis = true;
    int nseg = 0;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        if (w->lay[v].n) {
            any = true;
            if (w->lay[v].axis != axis) all_on_axis = false;
            nseg += w->lay[v].n;
        } else {
            nseg++;
        }
    }
    if (!any) return;
    if (!all_on_axis) {
        on_eltwise(w, i);
        return;
    }
    chan_seg *segs = qf_arena_alloc(&w->cg->arena, sizeof(chan_seg) * (size_t)nseg);
    if (!segs) {
        oom(w);
        return;
    }
    int k = 0;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        if (w->lay[v].n) {
            memcpy(segs + k, w->lay[v].segs, sizeof(chan_seg) * (size_t)w->lay[v].n);
            k += w->lay[v].n;
        } else {
            const qf_value *x = &w->g->values[v];
            if (x->rank <= axis || x->dims[axis] < 0) {
                freeze_inputs(w, n, "input shape unknown");
                return;
            }
            segs[k++] = (chan_seg){-1, x->dims[axis], 1};
        }
    }
    w->lay[o] = (chan_layout){axis, nseg, segs};
}

/* Product of dims[a, b) with dynamic dims counted apart, so "N x 4" of two
 * shapes compare equal. */
typedef struct sym_prod {
    int64_t known;
    int dyn;
} sym_prod;

static sym_prod sprod(const int64_t *d, int a, int b) {
    sym_prod p = {1, 0};
    for (int i = a; i < b; i++) {
        if (d[i] < 0)
            p.dyn++;
        else
            p.known *= d[i];
    }
    return p;
}

/* Flatten, Reshape, Squeeze, Unsqueeze: find the output axis whose leading
 * product equals the input's product before the channel axis; it must hold
 * the channel axis times a run of the following input dims. */
static void on_reshape(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int x = in_of(n, 0), o = n->n_outputs > 0 ? n->outputs[0] : -1;
    const chan_layout *lx = lay_in(w, n, 0);
    if (!lx->n) return;
    const qf_value *X = val(w, x), *O = val(w, o);
    if (!O || X->rank < 0 || O->rank < 0) {
        unresolved(w, n, "shapes unknown");
        return;
    }
    int a = lx->axis;
    int64_t t = X->dims[a];
    sym_prod pin = sprod(X->dims, 0, a);
    int b = -1;
    int64_t f = 0;
    for (int c = 0; c < O->rank && b < 0; c++) {
        sym_prod po = sprod(O->dims, 0, c);
        if (po.known != pin.known || po.dyn != pin.dyn) continue;
        if (O->dims[c] < 0 || t <= 0 || O->dims[c] % t) continue;
        if (O->dims[c] == 1 && t != 1) continue;
        int64_t ff = O->dims[c] / t, inner = 1;
        /* ff must be the product of the input dims right after the axis */
        for (int k = a + 1; k <= X->rank && inner < ff; k++)
            inner *= k < X->rank && X->dims[k] > 0 ? X->dims[k] : 0;
        if (inner == ff) {
            b = c;
            f = ff;
        }
    }
    if (b < 0) {
        unresolved(w, n, "the reshape mixes the channel axis with other axes");
        return;
    }
    chan_layout out;
    if (!copy_layout(w, &out, lx, b)) {
        oom(w);
        return;
    }
    for (int s = 0; s < out.n; s++)
        out.segs[s].block *= f;
    if (n->op == QF_OP_RESHAPE) {
        int sv = in_of(n, 1);
        if (is_const(w, sv)) {
            const qf_value *S = val(w, sv);
            qf_tensor st = qf_value_tensor(S);
            if (S->rank != 1 || S->dims[0] != O->rank) {
                unresolved(w, n, "unexpected shape operand");
                return;
            }
            int64_t e = qf_tensor_get_i64(&st, b);
            if (e > 0) {
                if (qf_graph_consumers(w->g, sv) > 1) {
                    unresolved(w, n, "its shape constant is shared");
                    return;
                }
                add_fix(w, CHAN_FIX_RESHAPE, i, sv, b, &out);
            } else if (e == 0 && !(b == a && f == 1)) {
                unresolved(w, n, "a 0 (copy) entry on the channel axis");
                return;
            }
        }
    }
    w->lay[o] = out;
}

static void on_transpose(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int x = in_of(n, 0);
    const chan_layout *lx = lay_in(w, n, 0);
    if (!lx->n) return;
    const qf_value *X = val(w, x);
    const int64_t *perm = NULL;
    int np = qf_node_attr_ints(n, "perm", &perm);
    int axis = -1;
    if (np == 0) {
        axis = X->rank - 1 - lx->axis;
    } else {
        for (int k = 0; k < np; k++)
            if (perm[k] == lx->axis) axis = k;
    }
    if (axis < 0) {
        unresolved(w, n, "perm does not name the channel axis");
        return;
    }
    set_out(w, n, lx, axis);
}

static void on_pad(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int x = in_of(n, 0);
    const chan_layout *lx = lay_in(w, n, 0);
    if (!lx->n) return;
    int r = w->g->values[x].rank;
    int64_t before = -1, after = -1;
    if (n->opset < 11) {
        const int64_t *p = NULL;
        int np = qf_node_attr_ints(n, "pads", &p);
        if (np == 2 * r) {
            before = p[lx->axis];
            after = p[lx->axis + r];
        }
    } else if (is_const(w, in_of(n, 1)) && in_of(n, 3) < 0) {
        qf_tensor pt = qf_value_tensor(val(w, in_of(n, 1)));
        if (qf_tensor_numel(&pt) == 2 * r) {
            before = qf_tensor_get_i64(&pt, lx->axis);
            after = qf_tensor_get_i64(&pt, lx->axis + r);
        }
    }
    if (before != 0 || after != 0) {
        freeze_inputs(w, n, "pads the channel axis");
        return;
    }
    set_out(w, n, lx, lx->axis);
}

static void on_passthrough(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    const chan_layout *lx = lay_in(w, n, 0);
    set_out(w, n, lx, lx->axis);
}

static void on_pool(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    const chan_layout *lx = lay_in(w, n, 0);
    if (lx->n && lx->axis != 1) {
        freeze_inputs(w, n, "channels arrive on another axis");
        return;
    }
    set_out(w, n, lx, 1);
}

static void on_resize(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    if (in_of(n, 3) >= 0) {
        freeze_inputs(w, n, "explicit output sizes");
        return;
    }
    on_passthrough(w, i);
}

static void on_reduce(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    int x = in_of(n, 0);
    const chan_layout *lx = lay_in(w, n, 0);
    if (!lx->n) return;
    int r = w->g->values[x].rank;
    const int64_t *axes = NULL;
    int na = qf_node_attr_ints(n, "axes", &axes);
    qf_tensor at = {0};
    bool from_input = in_of(n, 1) >= 0;
    if (from_input) {
        if (!is_const(w, in_of(n, 1))) {
            freeze_inputs(w, n, "reduction axes are not constant");
            return;
        }
        at = qf_value_tensor(val(w, in_of(n, 1)));
        na = (int)qf_tensor_numel(&at);
    }
    if (na == 0) {
        freeze_inputs(w, n, "reduces every axis");
        return;
    }
    bool keep = qf_node_attr_int(n, "keepdims", 1) != 0;
    int shift = 0;
    for (int k = 0; k < na; k++) {
        int64_t ax = from_input ? qf_tensor_get_i64(&at, k) : axes[k];
        if (ax < 0) ax += r;
        if (ax == lx->axis) {
            freeze_inputs(w, n, "reduces the channel axis");
            return;
        }
        if (ax < lx->axis) shift++;
    }
    set_out(w, n, lx, keep ? lx->axis : lx->axis - shift);
}

static void visit(walk *w, int i) {
    const qf_node *n = &w->g->nodes[i];
    bool any = false;
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0 && w->lay[n->inputs[j]].n) any = true;
    switch (n->op) {
    case QF_OP_CONV: on_conv(w, i); return;
    case QF_OP_GEMM: on_gemm(w, i); return;
    case QF_OP_MATMUL: on_matmul(w, i); return;
    default: break;
    }
    if (!any) return; /* nothing prunable flows through: nothing to do */
    switch (n->op) {
    case QF_OP_BATCH_NORM: on_batchnorm(w, i); return;
    case QF_OP_RELU: case QF_OP_LEAKY_RELU: case QF_OP_CLIP: case QF_OP_SIGMOID:
    case QF_OP_HARD_SIGMOID: case QF_OP_HARD_SWISH: case QF_OP_TANH: case QF_OP_ERF:
    case QF_OP_ABS: case QF_OP_NEG: case QF_OP_EXP: case QF_OP_LOG: case QF_OP_SQRT:
    case QF_OP_RECIPROCAL: case QF_OP_FLOOR: case QF_OP_CEIL: case QF_OP_ELU:
    case QF_OP_SELU: case QF_OP_SOFTPLUS: case QF_OP_IDENTITY: case QF_OP_DROPOUT:
    case QF_OP_CAST:
        on_passthrough(w, i);
        return;
    case QF_OP_ADD: case QF_OP_SUB: case QF_OP_MUL: case QF_OP_DIV: case QF_OP_POW:
    case QF_OP_MAX: case QF_OP_MIN: case QF_OP_SUM: case QF_OP_MEAN: case QF_OP_PRELU:
        on_eltwise(w, i);
        return;
    case QF_OP_MAX_POOL: case QF_OP_AVERAGE_POOL: case QF_OP_GLOBAL_AVERAGE_POOL:
    case QF_OP_GLOBAL_MAX_POOL:
        on_pool(w, i);
        return;
    case QF_OP_CONCAT: on_concat(w, i); return;
    case QF_OP_FLATTEN: case QF_OP_RESHAPE: case QF_OP_SQUEEZE: case QF_OP_UNSQUEEZE:
        on_reshape(w, i);
        return;
    case QF_OP_TRANSPOSE: on_transpose(w, i); return;
    case QF_OP_PAD: on_pad(w, i); return;
    case QF_OP_RESIZE: on_resize(w, i); return;
    case QF_OP_REDUCE_MEAN: case QF_OP_REDUCE_SUM: case QF_OP_REDUCE_MAX:
    case QF_OP_REDUCE_MIN:
        on_reduce(w, i);
        return;
    case QF_OP_SHAPE: return; /* reads dims only; they stay consistent */
    default: freeze_inputs(w, n, "needs every channel"); return;
    }
}

/* ---- finishing ----------------------------------------------------------------- */
static qf_status finalize(walk *w) {
    qf_chan_groups *cg = w->cg;
    qf_graph *g = w->g;
    char why[160];
    for (int k = 0; k < g->n_outputs; k++) {
        int v = g->outputs[k];
        snprintf(why, sizeof why, "graph output '%s'", g->values[v].name);
        freeze_layout(w, &w->lay[v], why);
    }
    for (int s = 0; s < cg->n_slices; s++) {
        int v = cg->slices[s].value;
        if (qf_graph_consumers(g, v) > 1 || (g->values[v].flags & QF_VAL_OUTPUT)) {
            snprintf(why, sizeof why, "constant '%s' is shared", g->values[v].name);
            freeze_layout(w, &cg->slices[s].lay, why);
        }
    }
    /* a raw frozen anywhere freezes its whole set */
    for (int r = 0; r < cg->n_raw; r++) {
        int root = qf_chan_find(cg, r);
        if (cg->raw[r].frozen && !cg->raw[root].frozen) {
            cg->raw[root].frozen = true;
            memcpy(cg->raw[root].why, cg->raw[r].why, sizeof why);
        }
    }
    cg->raw_group = qf_calloc((size_t)cg->n_raw + 1, sizeof(int));
    cg->groups = qf_calloc((size_t)cg->n_raw + 1, sizeof(qf_chan_group));
    if (!cg->raw_group || !cg->groups) return oom(w);
    for (int r = 0; r < cg->n_raw; r++)
        cg->raw_group[r] = -1;
    for (int r = 0; r < cg->n_raw; r++) {
        int root = qf_chan_find(cg, r);
        if (cg->raw_group[root] < 0) {
            qf_chan_group *gr = &cg->groups[cg->n];
            gr->channels = cg->raw[root].count;
            gr->frozen = cg->raw[root].frozen;
            memcpy(gr->why, cg->raw[root].why, sizeof gr->why);
            cg->raw_group[root] = cg->n++;
        }
        cg->raw_group[r] = cg->raw_group[root];
        qf_chan_group *gr = &cg->groups[cg->raw_group[r]];
        int *m = qf_realloc(gr->members, sizeof(int) * (size_t)(gr->n_members + 1));
        if (!m) return oom(w);
        gr->members = m;
        m[gr->n_members++] = cg->raw[r].node;
    }
    return QF_OK;
}

/* Exporters deduplicate equal initializers (PyTorch shares one all-zero
 * bias among many Convs, sometimes behind Identity nodes). Shared constants
 * cannot shrink for one reader only, so give every reader beyond the first
 * its own copy; Identity nodes go first so their readers see constants. */
static qf_status unshare_constants(qf_graph *g, qf_err *err) {
    int n0 = g->n_values;
    int *seen = qf_calloc((size_t)n0 + 1, sizeof(int));
    if (!seen) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
    qf_status s = QF_OK;
    for (int i = 0; i < g->n_nodes && !s; i++) {
        for (int j = 0; j < g->nodes[i].n_inputs && !s; j++) {
            int v = g->nodes[i].inputs[j];
            if (v < 0 || v >= n0) continue;
            const qf_value *x = &g->values[v];
            if (!(x->flags & QF_VAL_CONST) || !x->data || x->rank < 1) continue;
            qf_tensor t = qf_value_tensor(x);
            if (qf_tensor_numel(&t) <= 1 || seen[v]++ == 0) continue;
            char name[256];
            int k = seen[v];
            do {
                snprintf(name, sizeof name, "%s.copy%d", x->name, k++);
            } while (qf_graph_find_value(g, name) >= 0);
            int c = qf_graph_add_value(g, name, t.dtype, t.rank, t.dims);
            if (c < 0) {
                s = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", g->source_path);
                break;
            }
            /* add_value may move g->values: take the tensor view again */
            t = qf_value_tensor(&g->values[v]);
            s = qf_graph_set_const(g, c, &t, err);
            g->nodes[i].inputs[j] = c;
        }
    }
    qf_free(seen);
    return s;
}

qf_status qf_chan_groups_build(qf_graph *g, qf_chan_groups **out, qf_err *err) {
    *out = NULL;
    qf_status s;
    if ((s = qf_pass_remove_identity(g, NULL, err)) || (s = unshare_constants(g, err)) ||
        (s = qf_pass_infer_shapes(g, err)))
        return s;
    qf_chan_groups *cg = qf_calloc(1, sizeof *cg);
    chan_layout *lay = qf_calloc((size_t)g->n_values + 1, sizeof *lay);
    if (!cg || !lay) {
        qf_free(cg);
        qf_free(lay);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory in channel analysis", g->source_path);
    }
    qf_arena_init(&cg->arena);
    walk w = {g, cg, lay, err, QF_OK};
    for (int i = 0; i < g->n_nodes && !w.st; i++)
        visit(&w, i);
    if (!w.st) finalize(&w);
    qf_free(lay);
    if (w.st) {
        qf_chan_groups_free(cg);
        return w.st;
    }
    cg->n_nodes_seen = g->n_nodes;
    cg->n_values_seen = g->n_values;
    *out = cg;
    return QF_OK;
}

void qf_chan_groups_free(qf_chan_groups *cg) {
    if (!cg) return;
    for (int i = 0; i < cg->n; i++)
        qf_free(cg->groups[i].members);
    qf_free(cg->groups);
    qf_free(cg->raw_group);
    qf_free(cg->raw);
    qf_free(cg->slices);
    qf_free(cg->fixes);
    qf_arena_free(&cg->arena);
    qf_free(cg);
}

int qf_chan_groups_count(const qf_chan_groups *cg) { return cg ? cg->n : 0; }

const qf_chan_group *qf_chan_groups_get(const qf_chan_groups *cg, int i) {
    return cg && i >= 0 && i < cg->n ? &cg->groups[i] : NULL;
}
