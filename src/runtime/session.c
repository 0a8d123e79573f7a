/* session.c - plan and run a graph in float (the reference runtime).
 *
 * Planning happens on the first run and whenever the bound input shapes (or
 * the contents of inputs that decide shapes) change:
 *   1. shapes: every node's infer callback, in topological order;
 *   2. plan-time evaluation: nodes whose inputs are all known (constants, or
 *      the contents of inputs that feed shape computations) run once now and
 *      their outputs become plan constants. This resolves PyTorch's
 *      Shape->Gather->Concat->Reshape chains and any op whose output shape
 *      depends on data (value_inputs);
 *   3. memory: each remaining intermediate gets an interval [def, last use];
 *      buffers are packed into one arena by greedy best-fit on size (largest
 *      first), views (Reshape, Flatten, ...) alias their input's buffer;
 *   4. scratch: one region sized for the hungriest kernel.
 * A run with the same shapes only rebinds the caller's input pointers and
 * calls kernels: no allocation.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "base/threadpool.h"

#define QF_ALIGN 64
/* An intermediate bigger than this is surely a hostile or broken model. */
#define QF_MAX_TENSOR_BYTES ((size_t)1 << 36)

typedef struct plan_value {
    qf_tensor t;   /* concrete shape; data bound at plan/run time */
    int kind;      /* PV_* below */
    int alias_of;  /* value whose buffer this one shares (-1: own) */
    int def_step;  /* runtime step that writes it (-1 = before run) */
    int last_step; /* last runtime step that reads it */
    size_t bytes;
    size_t offset; /* in the arena, for PV_ARENA roots */
} plan_value;

enum { PV_NONE = 0, PV_INPUT, PV_CONST, PV_PLANNED, PV_ARENA };

#define ADAPT_WINDOW 8 /* run times kept per mode (adaptive threading) */

struct qf_session {
    const qf_model *m;
    qf_exec_ctx ctx;
    bool planned;
    qf_tensor *bound;    /* input shapes of the current plan */
    void **bound_values; /* saved contents of inputs that decide shapes */
    size_t *bound_value_bytes;
    plan_value *pv;      /* one per graph value */
    void **plan_buffers; /* plan-time evaluated outputs (owned) */
    int n_plan_buffers, cap_plan_buffers;
    int *steps; /* node indices executed at run time */
    int n_steps;
    int *fused_add;   /* per step: the step of a QAdd fused into it, or -1 */
    bool *fused_away; /* per step: run as part of an earlier step */
    bool plan_fused;  /* the plan fuses (no observer wanted every value) */
    unsigned char *arena;
    size_t arena_bytes;
    void *scratch;
    size_t scratch_bytes;
    bool *value_needed; /* value contents needed at plan time */
    /* batch chunking (plan_chunked): the plan serves `chunk` images and a
     * run of full_bound's shapes (batch `batch`) runs it batch / chunk
     * times; full outputs are gathered in out_bufs */
    int chunk, batch;
    qf_tensor *full_bound;
    qf_tensor *out_full;
    void **out_bufs;
    /* image parallelism (plan_chunked): with workers > 1 the chunks run
     * concurrently, one whole-graph run per pool thread on single-threaded
     * kernels, each thread in its own frame (frames[0] uses arena and
     * scratch; frames[1..] own theirs) */
    int workers;
    struct run_frame *frames;
    /* adaptive threading (qf_session_run): the kernels' context of this
     * run (ctx, or serial: the caller alone), the plan generation (bumped
     * by every plan), and per mode (0: all threads, 1: the caller alone)
     * its last ADAPT_WINDOW run times */
    const qf_exec_ctx *run_ctx;
    qf_exec_ctx serial;
    unsigned plan_gen;
    int cur_mode;    /* the mode in use */
    int since_probe; /* runs in cur_mode since the last probe */
    int probe_left;  /* runs of the other mode left in this probe */
    int n_ring[2];   /* times recorded per mode (ring of ADAPT_WINDOW) */
    double ring[2][ADAPT_WINDOW];
    int last_mode;
    uint64_t adaptive_runs, serial_runs;
    qf_node_observer observer;
    void *observer_user;
};

/* One thread's memory for a run of the chunk plan: its arena and scratch,
 * and data[v], the address of value v in them (NULL: the plan's own, for
 * constants). */
typedef struct run_frame {
    unsigned char *arena; /* owned unless it is the session's */
    void *scratch;        /* likewise */
    void **data;
    qf_status st;
    qf_err err;
} run_frame;

void qf_session_set_observer(qf_session *s, qf_node_observer fn, void *user) {
    s->observer = fn;
    s->observer_user = user;
}

static unsigned char zero_size_buf[QF_ALIGN] __attribute__((aligned(QF_ALIGN)));

static size_t align_up(size_t n) { return (n + QF_ALIGN - 1) & ~(size_t)(QF_ALIGN - 1); }

/* Free the n buffers of *v with f, then the array; *v becomes NULL. */
static void free_each(void ***v, int n, void (*f)(void *)) {
    if (*v)
        for (int i = 0; i < n; i++)
            f((*v)[i]);
    qf_free(*v);
    *v = NULL;
}

static void free_frames(qf_session *s) {
    for (int w = 0; s->frames && w < s->workers; w++) {
        if (w > 0) {
            qf_free_aligned(s->frames[w].arena);
            qf_free_aligned(s->frames[w].scratch);
        }
        qf_free(s->frames[w].data);
    }
    qf_free(s->frames);
    s->frames = NULL;
    s->workers = 0;
}

static void free_plan(qf_session *s) {
    free_frames(s);
    free_each(&s->plan_buffers, s->n_plan_buffers, qf_free_aligned);
    s->n_plan_buffers = s->cap_plan_buffers = 0;
    qf_free(s->pv);
    s->pv = NULL;
    qf_free(s->steps);
    s->steps = NULL;
    s->n_steps = 0;
    qf_free(s->fused_add);
    s->fused_add = NULL;
    qf_free(s->fused_away);
    s->fused_away = NULL;
    qf_free_aligned(s->arena);
    s->arena = NULL;
    s->arena_bytes = 0;
    qf_free_aligned(s->scratch);
    s->scratch = NULL;
    s->scratch_bytes = 0;
    free_each(&s->bound_values, s->m->g->n_inputs, qf_free);
    qf_free(s->bound_value_bytes);
    s->bound_value_bytes = NULL;
    qf_free(s->bound);
    s->bound = NULL;
    qf_free(s->value_needed);
    s->value_needed = NULL;
    free_each(&s->out_bufs, s->m->g->n_outputs, qf_free_aligned);
    qf_free(s->out_full);
    s->out_full = NULL;
    qf_free(s->full_bound);
    s->full_bound = NULL;
    s->chunk = s->batch = 0;
    s->planned = false;
}

/* Loading a qfm file checksums every section, which leaves the whole
 * read-only file mapping resident; once the ops have packed their weights,
 * most of it is never read again. Asking the OS to reclaim it before the
 * arena is planned keeps the peak near packed weights + arena (issue 5).
 * MADV_PAGEOUT never changes contents (a clean file page is simply faulted
 * in again, e.g. biases on the first run), so this is only advice. */
static void release_mapping(const qf_graph *g) {
#if defined(MADV_PAGEOUT)
    if (g && g->mapping && g->mapping_len) (void)madvise(g->mapping, g->mapping_len, MADV_PAGEOUT);
#else
    (void)g;
#endif
}

static void adaptive_reset(qf_session *s);

qf_status qf_session_create(const qf_model *m, const qf_session_options *opt, qf_session **out,
                            qf_err *err) {
    *out = NULL;
    if (!m) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_session_create: model is NULL");
    qf_session *s = qf_calloc(1, sizeof *s);
    if (!s) return qf_errf(err, QF_ERR_NOMEM, "out of memory creating session");
    s->m = m;
    s->run_ctx = &s->ctx;
    adaptive_reset(s);
    s->ctx.num_threads = (opt && opt->num_threads > 0) ? opt->num_threads : 1;
    if (s->ctx.num_threads > QF_THREADPOOL_MAX) s->ctx.num_threads = QF_THREADPOOL_MAX;
    if (s->ctx.num_threads > 1) {
        qf_status st = qf_threadpool_create(s->ctx.num_threads, &s->ctx.pool, err);
        if (st != QF_OK) {
            qf_free(s);
            return st;
        }
    }
    release_mapping(m->g);
    *out = s;
    return QF_OK;
}

void qf_session_free(qf_session *s) {
    if (!s) return;
    free_plan(s);
    qf_threadpool_destroy(s->ctx.pool);
    qf_free(s);
}

/* with image parallelism every worker has an arena and a scratch region */
size_t qf_session_arena_bytes(const qf_session *s) {
    return s ? s->arena_bytes * (size_t)(s->workers > 1 ? s->workers : 1) : 0;
}

size_t qf_session_scratch_bytes(const qf_session *s) {
    return s ? s->scratch_bytes * (size_t)(s->workers > 1 ? s->workers : 1) : 0;
}

int qf_session_batch_chunk(const qf_session *s) { return s && s->planned ? s->chunk : 0; }

int qf_session_batch_workers(const qf_session *s) {
    return s && s->planned && s->chunk ? (s->workers > 1 ? s->workers : 1) : 0;
}

int qf_session_fused_adds(const qf_session *s) {
    int n = 0;
    if (!s || !s->planned) return 0;
    for (int k = 0; k < s->n_steps; k++)
        n += s->fused_away[k];
    return n;
}

static void node_tensors(const qf_session *s, const qf_node *nd, qf_tensor *in, qf_tensor *out);

const char *qf_session_node_kernel(const qf_session *s, int node) {
    if (!s || !s->planned || node < 0 || node >= s->m->g->n_nodes) return NULL;
    const qf_node *nd = &s->m->g->nodes[node];
    const qf_op_def *def = qf_op_get(nd->op);
    if (!def || !def->kernel) return NULL;
    for (int k = 0; k < s->n_steps; k++)
        if (s->steps[k] == node) {
            qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
            node_tensors(s, nd, in, out);
            return def->kernel(nd, in, nd->n_inputs, s->scratch != NULL);
        }
    return NULL;
}

static const char *shape_str(const qf_tensor *t, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < t->rank && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

static const char *decl_shape_str(const qf_value *v, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < v->rank && o < len; i++) {
        if (v->dims[i] < 0)
            o += (size_t)snprintf(buf + o, len - o, "%sN", i ? "," : "");
        else
            o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)v->dims[i]);
    }
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

/* Validate caller inputs against the model's declared inputs. */
static qf_status check_inputs(const qf_session *s, const qf_tensor *inputs, int n, qf_err *err) {
    const qf_graph *g = s->m->g;
    const char *path = s->m->path;
    if (n != g->n_inputs)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: model has %d input%s, %d given", path,
                       g->n_inputs, g->n_inputs == 1 ? "" : "s", n);
    for (int i = 0; i < n; i++) {
        const qf_value *v = &g->values[g->inputs[i]];
        const qf_tensor *t = &inputs[i];
        char a[160], b[160];
        if (t->rank < 0 || t->rank > QF_MAX_DIMS)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s': rank %d out of range", path,
                           v->name, t->rank);
        if (v->dtype != QF_DT_UNDEF && t->dtype != v->dtype)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s' is %s, model expects %s", path,
                           v->name, qf_dtype_name(t->dtype), qf_dtype_name(v->dtype));
        if (qf_dtype_size(t->dtype) == 0)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: input '%s': dtype %s not supported", path,
                           v->name, qf_dtype_name(t->dtype));
        for (int k = 0; k < t->rank; k++)
            if (t->dims[k] < 0)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s': negative dimension %s",
                               path, v->name, shape_str(t, a, sizeof a));
        if (v->rank >= 0) {
            bool ok = v->rank == t->rank;
            for (int k = 0; ok && k < t->rank; k++)
                if (v->dims[k] >= 0 && v->dims[k] != t->dims[k]) ok = false;
            if (!ok)
                return qf_errf(err, QF_ERR_SHAPE, "%s: input '%s' has shape %s, model expects %s",
                               path, v->name, shape_str(t, a, sizeof a),
                               decl_shape_str(v, b, sizeof b));
        }
        int64_t numel = qf_tensor_numel(t);
        size_t bytes;
        if (numel < 0 || !qf_mul_size((size_t)numel, qf_dtype_size(t->dtype), &bytes) ||
            bytes > QF_MAX_TENSOR_BYTES)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s': shape %s is too large", path,
                           v->name, shape_str(t, a, sizeof a));
        if (bytes && !t->data)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: input '%s': data is NULL", path, v->name);
    }
    return QF_OK;
}

static size_t tensor_bytes(const qf_tensor *t) {
    int64_t n = qf_tensor_numel(t);
    size_t b;
    if (n < 0 || !qf_mul_size((size_t)n, qf_dtype_size(t->dtype), &b)) return SIZE_MAX;
    return b;
}

/* Can the current plan serve these inputs? */
static bool plan_matches(const qf_session *s, const qf_tensor *inputs) {
    if (!s->planned) return false;
    const qf_graph *g = s->m->g;
    for (int i = 0; i < g->n_inputs; i++) {
        const qf_tensor *a = &s->bound[i], *b = &inputs[i];
        if (a->rank != b->rank || a->dtype != b->dtype) return false;
        for (int k = 0; k < a->rank; k++)
            if (a->dims[k] != b->dims[k]) return false;
        if (s->bound_values[i] && memcmp(s->bound_values[i], b->data, s->bound_value_bytes[i]) != 0)
            return false;
    }
    return true;
}

static qf_status push_plan_buffer(qf_session *s, void *p) {
    if (s->n_plan_buffers == s->cap_plan_buffers) {
        int cap = s->cap_plan_buffers ? s->cap_plan_buffers * 2 : 32;
        void **nb = qf_realloc(s->plan_buffers, sizeof(void *) * (size_t)cap);
        if (!nb) return QF_ERR_NOMEM;
        s->plan_buffers = nb;
        s->cap_plan_buffers = cap;
    }
    s->plan_buffers[s->n_plan_buffers++] = p;
    return QF_OK;
}

/* Mark the values whose contents the planner must know: value_inputs of
 * every op, and transitively the inputs of their producers. */
static qf_status mark_value_needed(qf_session *s) {
    const qf_graph *g = s->m->g;
    bool *need = qf_calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!need) return QF_ERR_NOMEM;
    for (int n = 0; n < g->n_nodes; n++) {
        const qf_op_def *d = qf_op_get(g->nodes[n].op);
        if (!d) continue;
        for (int j = 0; j < g->nodes[n].n_inputs && j < 32; j++)
            if ((d->value_inputs >> j) & 1u) {
                int v = g->nodes[n].inputs[j];
                if (v >= 0) need[v] = true;
            }
    }
    /* reverse topological sweep propagates the need to producers' inputs;
     * Shape's output needs only its input's shape, not its contents */
    for (int n = g->n_nodes - 1; n >= 0; n--) {
        const qf_node *nd = &g->nodes[n];
        bool any = false;
        for (int j = 0; j < nd->n_outputs; j++)
            if (nd->outputs[j] >= 0 && need[nd->outputs[j]]) any = true;
        if (!any) continue;
        const qf_op_def *d = qf_op_get(nd->op);
        if (d && (d->flags & QF_OPF_SHAPE_ONLY)) continue;
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] >= 0) need[nd->inputs[j]] = true;
    }
    s->value_needed = need;
    return QF_OK;
}

static void node_tensors(const qf_session *s, const qf_node *nd, qf_tensor *in, qf_tensor *out) {
    for (int j = 0; j < nd->n_inputs; j++) {
        int v = nd->inputs[j];
        if (v >= 0)
            in[j] = s->pv[v].t;
        else
            memset(&in[j], 0, sizeof in[j]);
    }
    for (int j = 0; j < nd->n_outputs; j++) {
        int v = nd->outputs[j];
        if (v >= 0)
            out[j] = s->pv[v].t;
        else
            memset(&out[j], 0, sizeof out[j]);
    }
}

/* Greedy best-fit packing of buffer intervals, largest first. */
typedef struct interval {
    int v;
    size_t bytes;
    int start, end;
} interval;

static int cmp_interval(const void *a, const void *b) {
    const interval *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->v - y->v;
}

static qf_status pack_arena(qf_session *s, qf_err *err) {
    const qf_graph *g = s->m->g;
    int n = 0;
    interval *iv = qf_calloc((size_t)g->n_values + 1, sizeof *iv);
    if (!iv) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory planning", s->m->path);
    for (int v = 0; v < g->n_values; v++) {
        plan_value *p = &s->pv[v];
        if (p->kind != PV_ARENA || p->alias_of >= 0) continue;
        iv[n++] = (interval){v, align_up(p->bytes), p->def_step, p->last_step};
    }
    qsort(iv, (size_t)n, sizeof *iv, cmp_interval);
    size_t total = 0;
    size_t *placed_off = qf_calloc((size_t)n + 1, sizeof(size_t));
    if (!placed_off) {
        qf_free(iv);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory planning", s->m->path);
    }
    for (int i = 0; i < n; i++) {
        /* candidate offsets: 0 and the end of every placed, time-overlapping
         * buffer; take the lowest that fits without overlap */
        size_t best = SIZE_MAX;
        for (int c = -1; c < i; c++) {
            size_t off;
            if (c < 0)
                off = 0;
            else {
                if (iv[c].end < iv[i].start || iv[i].end < iv[c].start) continue;
                off = placed_off[c] + iv[c].bytes;
            }
            if (off >= best) continue;
            bool ok = true;
            for (int k = 0; k < i && ok; k++) {
                if (iv[k].end < iv[i].start || iv[i].end < iv[k].start) continue;
                if (off < placed_off[k] + iv[k].bytes && placed_off[k] < off + iv[i].bytes)
                    ok = false;
            }
            if (ok) best = off;
        }
        placed_off[i] = best;
        s->pv[iv[i].v].offset = best;
        if (best + iv[i].bytes > total) total = best + iv[i].bytes;
    }
    qf_free(placed_off);
    qf_free(iv);
    s->arena_bytes = total;
    if (total) {
        s->arena = qf_malloc_aligned(total);
        if (!s->arena)
            return qf_errf(err, QF_ERR_NOMEM, "%s: cannot allocate a %zu-byte activation arena",
                           s->m->path, total);
    }
    return QF_OK;
}

/* Residual fusion (step 1b): a step whose node has run_add, whose output
 * feeds nothing but one input of a later qforge.QAdd step, and whose add's
 * other operand is ready before it (same shape, no broadcast) runs as one
 * step writing the add's output: that output is defined at the earlier
 * step, and the node's own output needs no buffer. Observers need every
 * value, so a session with one never fuses. */
static void fuse_residual_adds(qf_session *s) {
    const qf_graph *g = s->m->g;
    for (int i = 0; i < s->n_steps; i++) {
        const qf_node *nd = &g->nodes[s->steps[i]];
        const qf_op_def *def = qf_op_get(nd->op);
        if (!def->run_add || !def->fuse_add_ok || nd->n_outputs != 1 || s->fused_away[i]) continue;
        const int v = nd->outputs[0];
        if (v < 0 || (g->values[v].flags & QF_VAL_OUTPUT) || s->pv[v].kind != PV_ARENA ||
            s->pv[v].alias_of >= 0)
            continue;
        /* the one use of v: a QAdd step after i */
        int uses = 0, add_step = -1, slot = -1;
        for (int k = i + 1; k < s->n_steps; k++) {
            const qf_node *c = &g->nodes[s->steps[k]];
            for (int j = 0; j < c->n_inputs; j++)
                if (c->inputs[j] == v) {
                    uses++;
                    add_step = k;
                    slot = j;
                }
        }
        for (int n = 0; n < g->n_nodes && uses == 1; n++) /* plan-time nodes too */
            for (int j = 0; j < g->nodes[n].n_inputs; j++)
                if (g->nodes[n].inputs[j] == v && n != s->steps[add_step]) uses++;
        if (uses != 1 || s->fused_away[add_step]) continue;
        const qf_node *add = &g->nodes[s->steps[add_step]];
        if (add->op != QF_OP_QADD || add->n_inputs != 2 || add->n_outputs != 1 ||
            add->outputs[0] < 0 || add->inputs[1 - slot] < 0 || add->inputs[1 - slot] == v)
            continue;
        const int r = add->inputs[1 - slot], o = add->outputs[0];
        const plan_value *pr = &s->pv[r];
        const bool ready = pr->kind == PV_CONST || pr->kind == PV_PLANNED || pr->kind == PV_INPUT ||
                           (pr->kind == PV_ARENA && pr->def_step < i);
        if (!ready || s->pv[o].alias_of >= 0) continue;
        qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO], ain[QF_MAX_NODE_IO],
            aout[QF_MAX_NODE_IO];
        node_tensors(s, nd, in, out);
        node_tensors(s, add, ain, aout);
        (void)out;
        if (!def->fuse_add_ok(nd, in, nd->n_inputs, add, ain, slot, &aout[0])) continue;
        s->fused_add[i] = add_step;
        s->fused_away[add_step] = true;
        s->pv[o].def_step = i;
        s->pv[v].kind = PV_NONE; /* never written, no buffer */
    }
}

static qf_status plan(qf_session *s, const qf_tensor *inputs, qf_err *err) {
    free_plan(s);
    s->plan_gen++;
    const qf_graph *g = s->m->g;
    const char *path = s->m->path;
    qf_status st = QF_OK;
    void *tmp_scratch = NULL;
    char d[200], sh[160];

    s->pv = qf_calloc((size_t)g->n_values + 1, sizeof(plan_value));
    s->steps = qf_calloc((size_t)g->n_nodes + 1, sizeof(int));
    s->fused_add = qf_calloc((size_t)g->n_nodes + 1, sizeof(int));
    s->fused_away = qf_calloc((size_t)g->n_nodes + 1, sizeof(bool));
    s->bound = qf_calloc((size_t)g->n_inputs + 1, sizeof(qf_tensor));
    s->bound_values = qf_calloc((size_t)g->n_inputs + 1, sizeof(void *));
    s->bound_value_bytes = qf_calloc((size_t)g->n_inputs + 1, sizeof(size_t));
    if (!s->pv || !s->steps || !s->fused_add || !s->fused_away || !s->bound || !s->bound_values ||
        !s->bound_value_bytes || mark_value_needed(s) != QF_OK) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory planning", path);
        goto fail;
    }
    for (int v = 0; v < g->n_values; v++) {
        s->pv[v].alias_of = -1;
        s->pv[v].def_step = -1;
        s->pv[v].last_step = -1;
        if (g->values[v].flags & QF_VAL_CONST) {
            s->pv[v].kind = PV_CONST;
            s->pv[v].t = qf_value_tensor(&g->values[v]);
            if (!s->pv[v].t.data) s->pv[v].t.data = zero_size_buf;
        }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        s->bound[i] = inputs[i];
        s->bound[i].data = NULL;
        s->pv[v].kind = PV_INPUT;
        s->pv[v].t = inputs[i];
        if (s->value_needed[v]) {
            size_t b = tensor_bytes(&inputs[i]);
            s->bound_values[i] = qf_malloc(b ? b : 1);
            if (!s->bound_values[i]) {
                st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory planning", path);
                goto fail;
            }
            if (b) memcpy(s->bound_values[i], inputs[i].data, b);
            s->bound_value_bytes[i] = b;
        }
    }

    /* 1+2: shapes, plan-time evaluation, run-time step list */
    size_t max_scratch = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        const qf_node *nd = &g->nodes[n];
        const qf_op_def *def = qf_op_get(nd->op);
        if (!def || !def->infer || !def->run) {
            st = qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: no kernel", path,
                         qf_node_desc(nd, d, sizeof d));
            goto fail;
        }
        if (nd->n_inputs > QF_MAX_NODE_IO || nd->n_outputs > QF_MAX_NODE_IO) {
            st = qf_errf(err, QF_ERR_UNSUPPORTED, "%s: %s: too many inputs/outputs", path,
                         qf_node_desc(nd, d, sizeof d));
            goto fail;
        }
        qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
        node_tensors(s, nd, in, out);
        bool all_known = true;
        for (int j = 0; j < nd->n_inputs; j++) {
            int v = nd->inputs[j];
            if (v < 0) continue;
            int k = s->pv[v].kind;
            bool known = k == PV_CONST || k == PV_PLANNED || (k == PV_INPUT && s->value_needed[v]);
            if (!known) {
                all_known = false;
                /* infer sees data only for values known at plan time */
                in[j].data = NULL;
            }
        }
        /* Shape and friends need only shapes, which are all known now */
        if (def->flags & QF_OPF_SHAPE_ONLY) all_known = true;
        for (int j = 0; j < nd->n_outputs; j++)
            memset(&out[j], 0, sizeof out[j]);
        st = def->infer(nd, in, nd->n_inputs, out, nd->n_outputs, err);
        if (st) {
            qf_err_prefix(err, "%s", path);
            goto fail;
        }
        for (int j = 0; j < nd->n_outputs; j++) {
            int v = nd->outputs[j];
            if (v < 0) continue;
            size_t b = tensor_bytes(&out[j]);
            if (out[j].rank < 0 || out[j].rank > QF_MAX_DIMS || b == SIZE_MAX ||
                b > QF_MAX_TENSOR_BYTES) {
                st = qf_errf(err, QF_ERR_SHAPE, "%s: %s: output '%s' has an invalid shape %s", path,
                             qf_node_desc(nd, d, sizeof d), g->values[v].name,
                             shape_str(&out[j], sh, sizeof sh));
                goto fail;
            }
            s->pv[v].t = out[j];
            s->pv[v].t.data = NULL;
            s->pv[v].bytes = b;
        }
        size_t scr = def->scratch ? def->scratch(nd, in, nd->n_inputs, out, nd->n_outputs) : 0;
        if (all_known) {
            /* evaluate now: the outputs become plan constants */
            for (int j = 0; j < nd->n_outputs; j++) {
                int v = nd->outputs[j];
                if (v < 0) continue;
                void *buf = qf_malloc_aligned(s->pv[v].bytes ? s->pv[v].bytes : 1);
                if (!buf || push_plan_buffer(s, buf)) {
                    qf_free_aligned(buf);
                    st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory planning", path);
                    goto fail;
                }
                s->pv[v].t.data = buf;
                s->pv[v].kind = PV_PLANNED;
            }
            if (scr) {
                tmp_scratch = qf_malloc_aligned(scr);
                if (!tmp_scratch) {
                    st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory planning", path);
                    goto fail;
                }
            }
            node_tensors(s, nd, in, out);
            st = def->run(&s->ctx, nd, in, nd->n_inputs, out, nd->n_outputs, tmp_scratch, err);
            qf_free_aligned(tmp_scratch);
            tmp_scratch = NULL;
            if (st) {
                qf_err_prefix(err, "%s", path);
                goto fail;
            }
            continue;
        }
        int step = s->n_steps++;
        s->steps[step] = n;
        if (scr > max_scratch) max_scratch = scr;
        for (int j = 0; j < nd->n_inputs; j++) {
            int v = nd->inputs[j];
            if (v >= 0) s->pv[v].last_step = step;
        }
        for (int j = 0; j < nd->n_outputs; j++) {
            int v = nd->outputs[j];
            if (v < 0) continue;
            s->pv[v].kind = PV_ARENA;
            s->pv[v].def_step = step;
            s->pv[v].last_step = step;
        }
        /* views share their input's buffer when the input is an arena
         * buffer and the output is not a graph output */
        if ((def->flags & QF_OPF_VIEW) && nd->n_inputs > 0 && nd->inputs[0] >= 0 &&
            nd->outputs[0] >= 0) {
            int src = nd->inputs[0], dst = nd->outputs[0];
            while (s->pv[src].alias_of >= 0)
                src = s->pv[src].alias_of;
            if (s->pv[src].kind == PV_ARENA && !(g->values[dst].flags & QF_VAL_OUTPUT) &&
                !(g->values[src].flags & QF_VAL_OUTPUT) && s->pv[src].bytes == s->pv[dst].bytes)
                s->pv[dst].alias_of = src;
        }
    }
    for (int k = 0; k < s->n_steps; k++)
        s->fused_add[k] = -1;
    s->plan_fused = !s->observer;
    if (s->plan_fused) fuse_residual_adds(s);
    /* graph outputs live to the end; an alias extends its root's life */
    for (int i = 0; i < g->n_outputs; i++)
        s->pv[g->outputs[i]].last_step = s->n_steps;
    for (int v = 0; v < g->n_values; v++) {
        if (s->pv[v].alias_of < 0) continue;
        int root = s->pv[v].alias_of;
        while (s->pv[root].alias_of >= 0)
            root = s->pv[root].alias_of;
        s->pv[v].alias_of = root;
        if (s->pv[v].last_step > s->pv[root].last_step) s->pv[root].last_step = s->pv[v].last_step;
    }

    /* 3: memory */
    st = pack_arena(s, err);
    if (st) goto fail;
    for (int v = 0; v < g->n_values; v++) {
        plan_value *p = &s->pv[v];
        if (p->kind != PV_ARENA) continue;
        int root = p->alias_of >= 0 ? p->alias_of : v;
        p->t.data = s->pv[root].bytes ? s->arena + s->pv[root].offset : zero_size_buf;
    }
    /* 4: scratch */
    if (max_scratch) {
        s->scratch = qf_malloc_aligned(max_scratch);
        if (!s->scratch) {
            st = qf_errf(err, QF_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch", path,
                         max_scratch);
            goto fail;
        }
        s->scratch_bytes = max_scratch;
    }
    s->planned = true;
    return QF_OK;
fail:
    qf_free_aligned(tmp_scratch);
    free_plan(s);
    return st;
}

static qf_status session_run(qf_session *s, const qf_tensor *inputs, int n_inputs,
                             qf_tensor *outputs, int n_outputs, qf_err *err);

/* ---- adaptive threading ---------------------------------------------------
 *
 * Splitting every layer over threads pays only while moving data between
 * cores is cheap. On a virtual machine it is not always: the host moves
 * vCPUs between physical cores, and on this project's 2-vCPU benchmark
 * machine the round trip of a cache line between the two threads swung
 * between 50-160 ns and 330-380 ns within seconds. In the slow phases a
 * batch-1 run of the Fashion-MNIST ResNet on 2 threads took 0.24-0.27 ms
 * against 0.11 ms in the fast ones, and 0.145 ms on 1 thread (MobileNetV2:
 * 3.3 against 1.6 and 2.6 ms).
 * So a session with several threads whose runs split layers over them
 * times its runs in two modes, all threads (0) and the caller alone (1),
 * and runs in one of them. After every ADAPT_EVERY runs it probes the
 * other mode for ADAPT_PROBE runs and switches when the median of the
 * probe's last runs (the first ones warm that mode's caches and wake its
 * workers: in `make bench`, judging 3-run probes whole kept the 0.025 ms
 * Fashion-MNIST CNN on one thread for 90% of its runs, 1.3x slower) is
 * under ADAPT_GAIN times the median of the last ADAPT_WINDOW runs in the
 * mode in use (medians: a run that a preempted thread held up must not
 * flip the choice). Results are the same bytes in either mode (every
 * kernel gives each output to one task). Runs that plan, observed runs and
 * image-parallel batches (no data crosses cores there) are not timed.
 * QF_ADAPTIVE_THREADS=0 turns it off. */
#define ADAPT_EVERY 64
#define ADAPT_PROBE 5
#define ADAPT_PROBE_SKIP 2 /* a probe's first runs warm the other mode up */
#define ADAPT_GAIN 0.9

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static bool adaptive_ok(const qf_session *s) {
    if (!s->ctx.pool || s->observer || s->workers > 1) return false;
    const char *env = getenv("QF_ADAPTIVE_THREADS");
    return !(env && *env && atoi(env) == 0);
}

static void adaptive_reset(qf_session *s) {
    s->cur_mode = 0;
    s->since_probe = ADAPT_EVERY - ADAPT_WINDOW; /* first probe after a window */
    s->probe_left = 0;
    s->n_ring[0] = s->n_ring[1] = 0;
}

/* median of the last n (<= ADAPT_WINDOW) times of mode m */
static double ring_median(const qf_session *s, int m, int n) {
    double v[ADAPT_WINDOW];
    const int have = s->n_ring[m] < ADAPT_WINDOW ? s->n_ring[m] : ADAPT_WINDOW;
    if (n > have) n = have;
    for (int i = 0; i < n; i++)
        v[i] = s->ring[m][(s->n_ring[m] - 1 - i) % ADAPT_WINDOW];
    for (int i = 1; i < n; i++) /* insertion sort of <= 8 */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            const double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int adaptive_mode(const qf_session *s) {
    return s->probe_left > 0 ? 1 - s->cur_mode : s->cur_mode;
}

static void adaptive_record(qf_session *s, int mode, double ns) {
    s->ring[mode][s->n_ring[mode]++ % ADAPT_WINDOW] = ns;
    if (s->probe_left > 0) {
        if (--s->probe_left == 0 && ring_median(s, mode, ADAPT_PROBE - ADAPT_PROBE_SKIP) <
                                        ADAPT_GAIN * ring_median(s, s->cur_mode, ADAPT_WINDOW)) {
            s->cur_mode = mode;
            s->n_ring[1 - mode] = 0;
        }
        return;
    }
    if (++s->since_probe >= ADAPT_EVERY && s->n_ring[mode] >= ADAPT_WINDOW) {
        s->since_probe = 0;
        s->probe_left = ADAPT_PROBE;
        s->n_ring[1 - mode] = 0; /* the probe's own times only */
    }
}

static void noop_task(void *ctx, int64_t task, int thread_id) {
    (void)ctx, (void)task, (void)thread_id;
}

/* The pool is held (workers spin) for the length of a run on all threads:
 * its kernels follow each other within microseconds. */
qf_status qf_session_run(qf_session *s, const qf_tensor *inputs, int n_inputs, qf_tensor *outputs,
                         int n_outputs, qf_err *err) {
    if (!s) return qf_errf(err, QF_ERR_INVALID_ARG, "qf_session_run: session is NULL");
    const bool adapt = s->planned && adaptive_ok(s);
    const int mode = adapt ? adaptive_mode(s) : 0;
    s->serial = (qf_exec_ctx){.num_threads = 1, .pool = NULL};
    s->run_ctx = mode ? &s->serial : &s->ctx;
    if (!mode) {
        qf_threadpool_hold(s->ctx.pool, true);
        /* workers asleep after runs on the caller alone: wake them before
         * the clock starts (a woken vCPU can take 100 us to run) */
        if (adapt && s->last_mode)
            qf_parallel_for(s->ctx.pool, qf_threadpool_size(s->ctx.pool), noop_task, NULL);
    }
    const unsigned gen = s->plan_gen;
    const double t0 = adapt ? now_ns() : 0;
    qf_status st = session_run(s, inputs, n_inputs, outputs, n_outputs, err);
    if (adapt && st == QF_OK && s->plan_gen == gen) {
        adaptive_record(s, mode, now_ns() - t0);
        s->adaptive_runs++;
        s->serial_runs += (uint64_t)mode;
    } else if (s->plan_gen != gen) { /* new shapes: measure afresh */
        adaptive_reset(s);
    }
    s->last_mode = mode;
    if (!mode) qf_threadpool_hold(s->ctx.pool, false);
    s->run_ctx = &s->ctx;
    return st;
}

void qf_session_adaptive_runs(const qf_session *s, uint64_t *timed, uint64_t *serial) {
    if (timed) *timed = s ? s->adaptive_runs : 0;
    if (serial) *serial = s ? s->serial_runs : 0;
}

/* Point in/out at frame fr's copies of the values (fr NULL: the plan's). */
static void frame_tensors(const run_frame *fr, const qf_node *nd, qf_tensor *in, qf_tensor *out) {
    if (!fr) return;
    for (int j = 0; j < nd->n_inputs; j++)
        if (nd->inputs[j] >= 0 && fr->data[nd->inputs[j]]) in[j].data = fr->data[nd->inputs[j]];
    for (int j = 0; j < nd->n_outputs; j++)
        if (nd->outputs[j] >= 0 && fr->data[nd->outputs[j]]) out[j].data = fr->data[nd->outputs[j]];
}

/* The run-time steps of the current plan, on the bound inputs, with the
 * kernels' threads of ctx, in the memory of frame fr (NULL: the plan's). */
static qf_status run_steps(qf_session *s, const qf_exec_ctx *ctx, const run_frame *fr,
                           qf_err *err) {
    void *const scratch = fr ? fr->scratch : s->scratch;
    const qf_graph *g = s->m->g;
    char d[200];
    for (int k = 0; k < s->n_steps; k++) {
        if (s->fused_away[k]) continue;
        const qf_node *nd = &g->nodes[s->steps[k]];
        const qf_op_def *def = qf_op_get(nd->op);
        qf_tensor in[QF_MAX_NODE_IO], out[QF_MAX_NODE_IO];
        node_tensors(s, nd, in, out);
        frame_tensors(fr, nd, in, out);
        qf_status st;
        if (s->fused_add[k] >= 0) {
            const qf_node *add = &g->nodes[s->steps[s->fused_add[k]]];
            qf_tensor ain[QF_MAX_NODE_IO], aout[QF_MAX_NODE_IO];
            node_tensors(s, add, ain, aout);
            frame_tensors(fr, add, ain, aout);
            const int slot = add->inputs[0] == nd->outputs[0] ? 0 : 1;
            st = def->run_add(ctx, nd, in, nd->n_inputs, add, ain, slot, &aout[0], scratch, err);
        } else {
            st = def->run(ctx, nd, in, nd->n_inputs, out, nd->n_outputs, scratch, err);
        }
        if (st) {
            if (err && !strstr(err->msg, nd->name))
                qf_err_prefix(err, "%s: %s", s->m->path, qf_node_desc(nd, d, sizeof d));
            else
                qf_err_prefix(err, "%s", s->m->path);
            return st;
        }
        if (s->observer) {
            for (int j = 0; j < nd->n_outputs; j++)
                if (nd->outputs[j] < 0) out[j].data = NULL;
            st = s->observer(s->observer_user, g, s->steps[k], out, nd->n_outputs);
            if (st) return qf_errf(err, st, "%s: run stopped by observer", s->m->path);
        }
    }
    return QF_OK;
}

/* ---- batch chunking ------------------------------------------------------
 *
 * A batch whose activations overflow the cache runs as several smaller
 * batches through the whole graph: each layer's output is still in the
 * cache when the next layer reads it, instead of a round trip through
 * memory per layer (SqueezeNet and MobileNetV2 at batch 64 are memory-bound
 * there). Only for graphs that provably treat the images of a batch
 * independently: every run-time step is an operator on a list of per-sample
 * operators (axis attributes checked), and planning at the chunk's batch
 * gives every value the full plan's shape with the batch axis scaled, every
 * other value unchanged. */

static int norm_axis(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

static bool step_per_sample(const qf_session *s, const qf_node *nd) {
    const qf_op_def *def = qf_op_get(nd->op);
    if (!def) return false;
    static const char *const plain[] = {"qforge.QConv",
                                        "qforge.QGemm",
                                        "qforge.QAdd",
                                        "qforge.QMul",
                                        "qforge.QLut",
                                        "qforge.QMaxPool",
                                        "qforge.QGlobalAveragePool",
                                        "Conv",
                                        "Add",
                                        "Sub",
                                        "Mul",
                                        "Div",
                                        "Relu",
                                        "Clip",
                                        "Sigmoid",
                                        "Tanh",
                                        "MaxPool",
                                        "AveragePool",
                                        "GlobalAveragePool",
                                        "GlobalMaxPool",
                                        "BatchNormalization",
                                        "Identity",
                                        "Dropout",
                                        "Reshape"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (!strcmp(def->name, plain[i])) return true;
    const int rank = nd->n_inputs > 0 && nd->inputs[0] >= 0 ? s->pv[nd->inputs[0]].t.rank : 0;
    const char *n = def->name;
    if (!strcmp(n, "Flatten")) return norm_axis(qf_node_attr_int(nd, "axis", 1), rank) >= 1;
    if (!strcmp(n, "Concat") || !strcmp(n, "qforge.QConcat"))
        return qf_node_attr(nd, "axis") && norm_axis(qf_node_attr_int(nd, "axis", 0), rank) != 0;
    if (!strcmp(n, "Softmax") || !strcmp(n, "LogSoftmax"))
        return norm_axis(qf_node_attr_int(nd, "axis", nd->opset < 13 ? 1 : -1), rank) != 0;
    if (!strcmp(n, "QuantizeLinear") || !strcmp(n, "DequantizeLinear")) {
        const int sv = nd->n_inputs > 1 ? nd->inputs[1] : -1;
        if (sv >= 0 && qf_tensor_numel(&s->pv[sv].t) <= 1) return true;
        return norm_axis(qf_node_attr_int(nd, "axis", 1), rank) != 0;
    }
    if (!strcmp(n, "Gemm")) return qf_node_attr_int(nd, "transA", 0) == 0;
    if (!strcmp(n, "Transpose")) {
        const int64_t *perm = NULL;
        return qf_node_attr_ints(nd, "perm", &perm) > 0 && perm[0] == 0;
    }
    return false;
}

/* The last-level cache that cpu 0 shares (Linux sysfs: what a virtual
 * machine or one chiplet of a large part really has; glibc's sysconf sums
 * the package's), else sysconf, else 8 MiB. Read at planning only. */
static size_t llc_bytes(void) {
    size_t best = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        const bool got = fgets(buf, sizeof buf, f) != NULL;
        fclose(f);
        if (!got) continue;
        char *end = NULL;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end && (*end == 'K' || *end == 'k'))
            v <<= 10;
        else if (end && (*end == 'M' || *end == 'm'))
            v <<= 20;
        if (v > best) best = (size_t)v;
    }
    if (!best) {
        const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        best = l3 > 0 ? (size_t)l3 : l2 > 0 ? (size_t)l2 * 4 : (size_t)8 << 20;
    }
    return best;
}

/* Images per chunk for a batch of b: QF_BATCH_CHUNK=N forces N (0: never).
 * With image parallelism on `workers` > 1 threads: the largest divisor of
 * b that gives every thread at least two chunks and whose biggest
 * activation fits the thread's share of half the last-level cache, when
 * the chunks divide evenly among the threads (or are at least 4 per
 * thread); at batch 64 on 2 threads (A/B against both threads on every
 * layer of the whole batch) ResNet-18 ran 1.029x, AlexNet 1.032x and the
 * Fashion-MNIST ResNet 1.020x faster.
 * Otherwise, for graphs of little work per activation byte (memory-bound:
 * under CHUNK_MAX_MACS_PER_BYTE multiply-accumulates per byte written),
 * the largest divisor of b whose biggest activation fits half the
 * last-level cache; 0 when that is b itself. Measured at batch 64 on 2
 * threads, one chunk at a time: SqueezeNet 1.1 (77 MACs per byte) 1.20x,
 * MobileNetV2 (43) 1.10x faster; ResNet-18 (505) 5% slower (compute-bound:
 * smaller batches only add layer tails), AlexNet (549) even. */
#define CHUNK_MAX_MACS_PER_BYTE 200.0
static int largest_divisor_upto(int b, int c) {
    if (c < 1) c = 1;
    while (c > 1 && b % c)
        c--;
    return c;
}

static int choose_chunk(size_t per_image, double macs, double act_bytes, int b, int workers) {
    const char *env = getenv("QF_BATCH_CHUNK");
    if (env && *env) {
        const int c = atoi(env);
        if (c <= 0 || c >= b || b % c) return 0;
        return c;
    }
    const size_t llc_half = llc_bytes() / 2;
    if (workers > 1 && b >= workers) {
        const size_t fit = per_image ? llc_half / (size_t)workers / per_image : (size_t)b;
        const int most = b / (2 * workers);
        const int c = largest_divisor_upto(b, fit < (size_t)most ? (int)fit : most);
        const int n = b / c;
        if (n >= workers && (n % workers == 0 || n >= 4 * workers)) return c;
    }
    if (per_image == 0 || (size_t)b * per_image <= llc_half ||
        macs >= CHUNK_MAX_MACS_PER_BYTE * act_bytes)
        return 0;
    const int c = largest_divisor_upto(b, (int)(llc_half / per_image));
    return c < b ? c : 0;
}

/* Image parallelism: whether the chunks of this plan may run concurrently,
 * one per thread, each on single-threaded kernels. The pool's threads then
 * never wait for each other inside a layer and each thread's activations
 * stay in its own core's cache (MobileNetV2, batch 64, 2 threads, A/B
 * against both threads on every layer of one chunk at a time: 1.03x while
 * the VM was calm, 1.6-1.7x while moving data between its cores was slow).
 * Not for graphs with float convolutions or matrix products: OpenBLAS
 * runs those with its own threads. QF_IMAGE_PARALLEL=0 turns it off. */
static bool image_parallel_ok(const qf_session *s) {
    const char *env = getenv("QF_IMAGE_PARALLEL");
    if (env && *env && atoi(env) == 0) return false;
    if (s->ctx.num_threads < 2 || !s->ctx.pool) return false;
    for (int k = 0; k < s->n_steps; k++) {
        const qf_op_def *def = qf_op_get(s->m->g->nodes[s->steps[k]].op);
        if (!def || !strcmp(def->name, "Conv") || !strcmp(def->name, "Gemm") ||
            !strcmp(def->name, "MatMul") || !strcmp(def->name, "ConvTranspose"))
            return false;
    }
    return true;
}

/* Frames for `workers` threads over the current (chunk) plan. */
static bool make_frames(qf_session *s, int workers) {
    const qf_graph *g = s->m->g;
    s->frames = qf_calloc((size_t)workers, sizeof *s->frames);
    if (!s->frames) return false;
    s->workers = workers;
    for (int w = 0; w < workers; w++) {
        run_frame *fr = &s->frames[w];
        fr->data = qf_calloc((size_t)g->n_values + 1, sizeof(void *));
        if (!fr->data) return false;
        if (w == 0) {
            fr->arena = s->arena;
            fr->scratch = s->scratch;
        } else {
            if (s->arena_bytes && !(fr->arena = qf_malloc_aligned(s->arena_bytes))) return false;
            if (s->scratch_bytes && !(fr->scratch = qf_malloc_aligned(s->scratch_bytes)))
                return false;
        }
        for (int v = 0; v < g->n_values; v++) {
            const plan_value *p = &s->pv[v];
            if (p->kind != PV_ARENA) continue;
            const int root = p->alias_of >= 0 ? p->alias_of : v;
            fr->data[v] = s->pv[root].bytes ? fr->arena + s->pv[root].offset : zero_size_buf;
        }
    }
    return true;
}

/* After a plan for `inputs`, switch to a chunked plan when it applies;
 * any failure leaves (or restores) the full plan. */
static qf_status try_chunking(qf_session *s, const qf_tensor *inputs, qf_err *err) {
    const qf_graph *g = s->m->g;
    if (g->n_inputs < 1 || g->n_outputs < 1 || inputs[0].rank < 1) return QF_OK;
    const int64_t b = inputs[0].dims[0];
    if (b < 2 || b > INT32_MAX) return QF_OK;
    for (int i = 0; i < g->n_inputs; i++)
        if (inputs[i].rank < 1 || inputs[i].dims[0] != b || s->bound_values[i] ||
            tensor_bytes(&inputs[i]) == 0 || !inputs[i].data)
            return QF_OK;
    for (int k = 0; k < s->n_steps; k++)
        if (!step_per_sample(s, &g->nodes[s->steps[k]])) return QF_OK;
    /* the biggest activation and, for the decision, the work per byte of
     * activations: multiply-accumulates of convolutions and matrix
     * products (output elements x weights per output channel) over the
     * bytes every step writes, per image */
    size_t per_image = 0;
    double macs = 0, act = 0;
    for (int k = 0; k < s->n_steps; k++) {
        const qf_node *nd = &g->nodes[s->steps[k]];
        for (int j = 0; j < nd->n_outputs; j++) {
            const int v = nd->outputs[j];
            if (v < 0 || s->pv[v].t.rank < 1 || s->pv[v].t.dims[0] != b) continue;
            const size_t per = tensor_bytes(&s->pv[v].t) / (size_t)b;
            if (per > per_image) per_image = per;
            act += (double)per;
            const qf_tensor *w =
                nd->n_inputs > 1 && nd->inputs[1] >= 0 ? &s->pv[nd->inputs[1]].t : NULL;
            if (j == 0 && w && s->pv[nd->inputs[1]].kind == PV_CONST && w->rank >= 2 &&
                w->dims[0] > 0 && s->pv[v].t.rank >= 2)
                macs += (double)qf_tensor_numel(&s->pv[v].t) / (double)b *
                        ((double)qf_tensor_numel(w) / (double)w->dims[0]);
        }
    }
    const bool par = image_parallel_ok(s);
    const int c = choose_chunk(per_image, macs, act, (int)b, par ? s->ctx.num_threads : 1);
    if (!c) return QF_OK;
    /* the full plan's shapes, then a plan for c images */
    qf_tensor *full = qf_calloc((size_t)g->n_values + 1, sizeof(qf_tensor));
    qf_tensor *views = qf_calloc((size_t)g->n_inputs, sizeof(qf_tensor));
    bool ok = full && views;
    for (int v = 0; ok && v < g->n_values; v++)
        full[v] = s->pv[v].kind == PV_NONE ? (qf_tensor){0} : s->pv[v].t;
    for (int i = 0; ok && i < g->n_inputs; i++) {
        views[i] = inputs[i];
        views[i].dims[0] = c;
    }
    qf_err e2;
    ok = ok && plan(s, views, &e2) == QF_OK;
    for (int k = 0; ok && k < s->n_steps; k++)
        ok = step_per_sample(s, &g->nodes[s->steps[k]]);
    for (int v = 0; ok && v < g->n_values; v++) {
        if (s->pv[v].kind == PV_NONE || s->pv[v].kind == PV_CONST) continue;
        const qf_tensor *f = &full[v], *t = &s->pv[v].t;
        ok = f->rank == t->rank && f->dtype == t->dtype;
        const bool scaled = ok && f->rank >= 1 && f->dims[0] == b && t->dims[0] == c;
        for (int k = 0; ok && k < f->rank; k++)
            ok = f->dims[k] == t->dims[k] || (k == 0 && scaled);
    }
    for (int i = 0; ok && i < g->n_outputs; i++) {
        const qf_tensor *t = &s->pv[g->outputs[i]].t;
        ok = s->pv[g->outputs[i]].kind != PV_CONST && s->pv[g->outputs[i]].kind != PV_INPUT &&
             t->rank >= 1 && t->dims[0] == c;
    }
    if (ok) {
        s->full_bound = qf_calloc((size_t)g->n_inputs, sizeof(qf_tensor));
        s->out_full = qf_calloc((size_t)g->n_outputs, sizeof(qf_tensor));
        s->out_bufs = qf_calloc((size_t)g->n_outputs, sizeof(void *));
        ok = s->full_bound && s->out_full && s->out_bufs;
        for (int i = 0; ok && i < g->n_inputs; i++) {
            s->full_bound[i] = inputs[i];
            s->full_bound[i].data = NULL;
        }
        for (int i = 0; ok && i < g->n_outputs; i++) {
            s->out_full[i] = s->pv[g->outputs[i]].t;
            s->out_full[i].dims[0] = b;
            const size_t bytes = tensor_bytes(&s->out_full[i]);
            s->out_bufs[i] = qf_malloc_aligned(bytes ? bytes : 1);
            ok = s->out_bufs[i] != NULL;
            s->out_full[i].data = s->out_bufs[i];
        }
    }
    qf_free(full);
    qf_free(views);
    /* concurrent chunks when there is one for every thread (a frame per
     * pool thread: any thread may take any chunk) */
    if (ok && par && b / c >= s->ctx.num_threads) ok = make_frames(s, s->ctx.num_threads);
    if (ok) {
        s->chunk = c;
        s->batch = (int)b;
        return QF_OK;
    }
    return plan(s, inputs, err); /* back to the full plan */
}

static bool full_matches(const qf_session *s, const qf_tensor *inputs) {
    if (!s->planned || !s->chunk) return false;
    for (int i = 0; i < s->m->g->n_inputs; i++) {
        const qf_tensor *a = &s->full_bound[i], *b = &inputs[i];
        if (a->rank != b->rank || a->dtype != b->dtype) return false;
        for (int k = 0; k < a->rank; k++)
            if (a->dims[k] != b->dims[k]) return false;
    }
    return true;
}

/* Chunk c0 / chunk of the inputs through the chunk plan with ctx in frame
 * fr (NULL: the plan's own memory), its outputs copied into the full
 * buffers. */
static qf_status run_one_chunk(qf_session *s, const qf_tensor *inputs, int c0,
                               const qf_exec_ctx *ctx, run_frame *fr, qf_err *err) {
    const qf_graph *g = s->m->g;
    for (int i = 0; i < g->n_inputs; i++) {
        const size_t per = tensor_bytes(&inputs[i]) / (size_t)s->batch;
        void *at = (unsigned char *)inputs[i].data + (size_t)c0 * per;
        if (fr)
            fr->data[g->inputs[i]] = at;
        else
            s->pv[g->inputs[i]].t.data = at;
    }
    qf_status st = run_steps(s, ctx, fr, err);
    if (st) return st;
    for (int i = 0; i < g->n_outputs; i++) {
        const int v = g->outputs[i];
        const size_t per = tensor_bytes(&s->out_full[i]) / (size_t)s->batch;
        const void *src = fr && fr->data[v] ? fr->data[v] : s->pv[v].t.data;
        memcpy((unsigned char *)s->out_bufs[i] + (size_t)c0 * per, src, (size_t)s->chunk * per);
    }
    return QF_OK;
}

typedef struct chunk_job {
    qf_session *s;
    const qf_tensor *inputs;
    _Atomic int failed;
} chunk_job;

/* one chunk on pool thread `id`, single-threaded kernels, frame id */
static void chunk_task(void *arg, int64_t task, int id) {
    chunk_job *j = arg;
    run_frame *fr = &j->s->frames[id];
    if (atomic_load_explicit(&j->failed, memory_order_relaxed) || fr->st) return;
    static const qf_exec_ctx serial = {.num_threads = 1, .pool = NULL};
    fr->st = run_one_chunk(j->s, j->inputs, (int)task * j->s->chunk, &serial, fr, &fr->err);
    if (fr->st) atomic_store_explicit(&j->failed, 1, memory_order_relaxed);
}

/* batch / chunk runs of the chunk plan on slices of the inputs, outputs
 * gathered into the full buffers: one after another with all threads on
 * each layer, or, with workers, concurrently */
static qf_status run_chunked(qf_session *s, const qf_tensor *inputs, qf_tensor *outputs,
                             int n_outputs, qf_err *err) {
    if (s->workers > 1) {
        chunk_job j = {.s = s, .inputs = inputs};
        atomic_init(&j.failed, 0);
        for (int w = 0; w < s->workers; w++) {
            s->frames[w].st = QF_OK;
            s->frames[w].err.msg[0] = 0;
        }
        qf_parallel_for(s->ctx.pool, s->batch / s->chunk, chunk_task, &j);
        for (int w = 0; w < s->workers; w++)
            if (s->frames[w].st) {
                if (err) *err = s->frames[w].err;
                return s->frames[w].st;
            }
    } else {
        for (int c0 = 0; c0 < s->batch; c0 += s->chunk) {
            qf_status st = run_one_chunk(s, inputs, c0, s->run_ctx, NULL, err);
            if (st) return st;
        }
    }
    for (int i = 0; i < n_outputs; i++)
        outputs[i] = s->out_full[i];
    return QF_OK;
}

static qf_status session_run(qf_session *s, const qf_tensor *inputs, int n_inputs,
                             qf_tensor *outputs, int n_outputs, qf_err *err) {
    const qf_graph *g = s->m->g;
    qf_status st = check_inputs(s, inputs, n_inputs, err);
    if (st) return st;
    if (n_outputs > g->n_outputs)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: model has %d outputs, %d requested",
                       s->m->path, g->n_outputs, n_outputs);
    if (!s->observer && full_matches(s, inputs))
        return run_chunked(s, inputs, outputs, n_outputs, err);
    /* a plan made without an observer fuses steps whose values an observer
     * would miss, and one made with an observer does not: replan on change
     * (observers also see the whole batch: no chunking) */
    if (!plan_matches(s, inputs) || s->plan_fused != !s->observer || s->chunk) {
        st = plan(s, inputs, err);
        if (st) return st;
        if (!s->observer) {
            st = try_chunking(s, inputs, err);
            if (st) return st;
            if (s->chunk) return run_chunked(s, inputs, outputs, n_outputs, err);
        }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        s->pv[g->inputs[i]].t.data = inputs[i].data ? inputs[i].data : zero_size_buf;
    }
    st = run_steps(s, s->run_ctx, NULL, err);
    if (st) return st;
    for (int i = 0; i < n_outputs; i++)
        outputs[i] = s->pv[g->outputs[i]].t;
    return QF_OK;
}
