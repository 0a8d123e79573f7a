/* test_runtime.c - the float session: memory planning (buffer reuse, views),
 * no allocation in a steady-state run, re-planning on new shapes, shape
 * inputs fed by the caller, and input validation errors. Graphs are built
 * by hand; expected values are computed in the test. */
#include <math.h>
#include <stdlib.h>

#include "ir/graph.h"
#include "qt_alloc.h"
#include "qtest.h"
#include "runtime/runtime.h"

/* x -> Relu -> Neg? keep to ops the runtime ships: a chain of k Relu/Add */
static qf_model *chain_model(int k, int64_t c) {
    qf_graph *g = qf_graph_create();
    int64_t dims[2] = {-1, c};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 2, dims);
    qf_graph_add_input(g, x);
    int cur = x;
    for (int i = 0; i < k; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%d", i);
        int o = qf_graph_add_value(g, name, QF_DT_UNDEF, -1, NULL);
        int ins[2] = {cur, x};
        if (i % 2 == 0)
            qf_graph_add_node(g, name, "Relu", "", 13, ins, 1, &o, 1, NULL, 0);
        else
            qf_graph_add_node(g, name, "Add", "", 13, ins, 2, &o, 1, NULL, 0);
        cur = o;
    }
    qf_graph_add_output(g, cur);
    qf_err e;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e)) {
        fprintf(stderr, "chain_model: %s\n", e.msg);
        qf_graph_free(g);
        return NULL;
    }
    qf_model *m;
    if (qf_model_from_graph(g, "chain.onnx", &m, &e)) return NULL;
    return m;
}

static void chain_values_and_buffer_reuse(void) {
    const int k = 12;
    qf_model *m = chain_model(k, 1000);
    CHECK(m != NULL);
    qf_session *s;
    qf_err e;
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    static float xin[2 * 1000];
    for (int i = 0; i < 2000; i++)
        xin[i] = (float)((i * 37) % 23) - 11.0f;
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {2, 1000}, .data = xin}, out;
    qf_status st = qf_session_run(s, &in, 1, &out, 1, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(out.rank, 2);
    CHECK_EQ_INT(out.dims[0], 2);
    const float *y = out.data;
    for (int i = 0; i < 2000; i++) {
        float r = xin[i];
        for (int j = 0; j < k; j++)
            r = (j % 2 == 0) ? (r > 0 ? r : 0) : r + xin[i];
        CHECK_NEAR(y[i], r, 1e-5);
    }
    /* 12 intermediates of 8000 bytes: a plan that reuses buffers needs at
     * most 3 live at once (the Add reads x, prev; writes new) */
    size_t arena = qf_session_arena_bytes(s);
    CHECK_MSG(arena > 0 && arena <= 3 * 8000 + 3 * 64, "arena %zu", arena);
    /* steady state: no allocation */
    qf_allocator a = qt_counting_allocator();
    qf_set_allocator(&a);
    *qt_allocs() = 0;
    st = qf_session_run(s, &in, 1, &out, 1, &e);
    long allocs = *qt_allocs();
    qf_set_allocator(NULL);
    CHECK(st == QF_OK);
    CHECK_EQ_INT(allocs, 0);
    /* a new batch size re-plans and still computes the right thing (the
     * previous output is invalid after the next run: keep what we need) */
    float y1005 = y[1005];
    qf_tensor in1 = {.dtype = QF_DT_F32, .rank = 2, .dims = {1, 1000}, .data = xin + 1000};
    st = qf_session_run(s, &in1, 1, &out, 1, &e);
    CHECK(st == QF_OK);
    CHECK_EQ_INT(out.dims[0], 1);
    CHECK_NEAR(((float *)out.data)[5], y1005, 0);
    qf_session_free(s);
    qf_model_free(m);
}

static void input_validation_errors(void) {
    qf_model *m = chain_model(2, 8);
    CHECK(m != NULL);
    qf_session *s;
    qf_err e;
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    float x[16] = {0};
    qf_tensor out;
    qf_tensor bad_shape = {.dtype = QF_DT_F32, .rank = 2, .dims = {2, 7}, .data = x};
    CHECK(qf_session_run(s, &bad_shape, 1, &out, 1, &e) == QF_ERR_SHAPE);
    CHECK(strstr(e.msg, "chain.onnx") && strstr(e.msg, "'x'") && strstr(e.msg, "[N,8]"));
    qf_tensor bad_type = {.dtype = QF_DT_I64, .rank = 2, .dims = {1, 8}, .data = x};
    CHECK(qf_session_run(s, &bad_type, 1, &out, 1, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "int64") != NULL);
    qf_tensor neg = {.dtype = QF_DT_F32, .rank = 2, .dims = {-3, 8}, .data = x};
    CHECK(qf_session_run(s, &neg, 1, &out, 1, &e) == QF_ERR_INVALID_ARG);
    qf_tensor huge = {.dtype = QF_DT_F32, .rank = 2, .dims = {INT64_MAX / 4, 8}, .data = x};
    CHECK(qf_session_run(s, &huge, 1, &out, 1, &e) == QF_ERR_INVALID_ARG);
    CHECK(qf_session_run(s, &neg, 0, &out, 1, &e) == QF_ERR_INVALID_ARG);
    qf_session_free(s);
    qf_model_free(m);
}

/* y = Reshape(x, shape) where `shape` is a second graph input: the planner
 * must read its contents, and re-plan when they change. */
static void shape_input_from_caller(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[1] = {12}, sd[1] = {2};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 1, xd);
    int shp = qf_graph_add_value(g, "shape", QF_DT_I64, 1, sd);
    int y = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    int r = qf_graph_add_value(g, "r", QF_DT_UNDEF, -1, NULL);
    qf_graph_add_input(g, x);
    qf_graph_add_input(g, shp);
    int ins[2] = {x, shp};
    qf_graph_add_node(g, "reshape", "Reshape", "", 14, ins, 2, &y, 1, NULL, 0);
    qf_graph_add_node(g, "relu", "Relu", "", 14, &y, 1, &r, 1, NULL, 0);
    qf_graph_add_output(g, r);
    qf_err e;
    CHECK_OK(qf_graph_toposort(g, &e));
    CHECK_MSG(qf_graph_parse_ops(g, &e) == QF_OK, "%s", e.msg);
    qf_model *m;
    CHECK_OK(qf_model_from_graph(g, "reshape.onnx", &m, &e));
    qf_session *s;
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    float xv[12];
    for (int i = 0; i < 12; i++)
        xv[i] = (float)i - 5;
    int64_t s1[2] = {3, 4}, s2[2] = {-1, 6};
    qf_tensor in[2] = {{.dtype = QF_DT_F32, .rank = 1, .dims = {12}, .data = xv},
                       {.dtype = QF_DT_I64, .rank = 1, .dims = {2}, .data = s1}};
    qf_tensor out;
    qf_status st = qf_session_run(s, in, 2, &out, 1, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(out.rank == 2 && out.dims[0] == 3 && out.dims[1] == 4);
    CHECK_NEAR(((float *)out.data)[11], 6, 0);
    CHECK_NEAR(((float *)out.data)[0], 0, 0);
    in[1].data = s2;
    st = qf_session_run(s, in, 2, &out, 1, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(out.rank == 2 && out.dims[0] == 2 && out.dims[1] == 6);
    qf_session_free(s);
    qf_model_free(m);
}

static int observed_nodes;
static double observed_sum;
static qf_status count_observer(void *user, const qf_graph *g, int node, const qf_tensor *out,
                                int n_out) {
    (void)user;
    (void)g;
    (void)node;
    observed_nodes++;
    if (n_out == 1 && out[0].dtype == QF_DT_F32) observed_sum += ((const float *)out[0].data)[0];
    return QF_OK;
}

static void observer_sees_every_node(void) {
    qf_model *m = chain_model(5, 4);
    CHECK(m != NULL);
    qf_session *s;
    qf_err e;
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    qf_session_set_observer(s, count_observer, NULL);
    float x[4] = {-1, 2, 3, 4};
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {1, 4}, .data = x}, out;
    observed_nodes = 0;
    observed_sum = 0;
    CHECK_OK(qf_session_run(s, &in, 1, &out, 1, &e));
    CHECK_EQ_INT(observed_nodes, 5);
    /* element 0 of x is -1: relu 0, add -1, relu 0, add -1, relu 0 */
    CHECK_NEAR(observed_sum, -2.0, 0);
    qf_session_free(s);
    qf_model_free(m);
}

/* PyTorch's view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape on a dynamic batch. The planner must evaluate Shape from the
 * bound shapes even though x's contents are not known at plan time. */
static void shape_chain_on_dynamic_batch(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[3] = {-1, 2, 3}, one[1] = {1};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 3, xd);
    qf_graph_add_input(g, x);
    int shp = qf_graph_add_value(g, "shp", QF_DT_UNDEF, -1, NULL);
    int idx = qf_graph_add_value(g, "idx", QF_DT_UNDEF, -1, NULL);
    int b = qf_graph_add_value(g, "b", QF_DT_UNDEF, -1, NULL);
    int bu = qf_graph_add_value(g, "bu", QF_DT_UNDEF, -1, NULL);
    int ax = qf_graph_add_value(g, "axes", QF_DT_UNDEF, -1, NULL);
    int m1 = qf_graph_add_value(g, "m1", QF_DT_UNDEF, -1, NULL);
    int cat = qf_graph_add_value(g, "cat", QF_DT_UNDEF, -1, NULL);
    int y = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    int64_t zero = 0, minus1 = -1;
    qf_tensor t0 = {.dtype = QF_DT_I64, .rank = 0, .data = &zero};
    qf_tensor ta = {.dtype = QF_DT_I64, .rank = 1, .dims = {1}, .data = &zero};
    qf_tensor tm = {.dtype = QF_DT_I64, .rank = 1, .dims = {1}, .data = &minus1};
    qf_err e;
    (void)one;
    CHECK_OK(qf_graph_set_const(g, idx, &t0, &e));
    CHECK_OK(qf_graph_set_const(g, ax, &ta, &e));
    CHECK_OK(qf_graph_set_const(g, m1, &tm, &e));
    qf_graph_add_node(g, "shape", "Shape", "", 13, &x, 1, &shp, 1, NULL, 0);
    int gi[2] = {shp, idx};
    qf_graph_add_node(g, "gather", "Gather", "", 13, gi, 2, &b, 1, NULL, 0);
    int ui[2] = {b, ax};
    qf_graph_add_node(g, "unsq", "Unsqueeze", "", 13, ui, 2, &bu, 1, NULL, 0);
    qf_attr axis = {.name = "axis", .type = QF_ATTR_INT, .i = 0};
    int ci[2] = {bu, m1};
    qf_graph_add_node(g, "concat", "Concat", "", 13, ci, 2, &cat, 1, &axis, 1);
    int ri[2] = {x, cat};
    qf_graph_add_node(g, "reshape", "Reshape", "", 13, ri, 2, &y, 1, NULL, 0);
    qf_graph_add_output(g, y);
    CHECK_OK(qf_graph_toposort(g, &e));
    CHECK_MSG(qf_graph_parse_ops(g, &e) == QF_OK, "%s", e.msg);
    qf_model *m;
    CHECK_OK(qf_model_from_graph(g, "view.onnx", &m, &e));
    qf_session *s;
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    float xv[4 * 6];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)i;
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 3, .dims = {4, 2, 3}, .data = xv}, out;
    qf_status st = qf_session_run(s, &in, 1, &out, 1, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(out.rank == 2 && out.dims[0] == 4 && out.dims[1] == 6);
    CHECK_NEAR(((float *)out.data)[23], 23, 0);
    in.dims[0] = 1;
    st = qf_session_run(s, &in, 1, &out, 1, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(out.rank == 2 && out.dims[0] == 1 && out.dims[1] == 6);
    qf_session_free(s);
    qf_model_free(m);
}

/* y = Softmax(Relu(x) + x, axis): per sample for axis 1, across the batch
 * for axis 0. */
static qf_model *softmax_model(int64_t axis) {
    qf_graph *g = qf_graph_create();
    int64_t dims[2] = {-1, 5};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 2, dims);
    int r = qf_graph_add_value(g, "r", QF_DT_UNDEF, -1, NULL);
    int a = qf_graph_add_value(g, "a", QF_DT_UNDEF, -1, NULL);
    int y = qf_graph_add_value(g, "y", QF_DT_UNDEF, -1, NULL);
    qf_graph_add_input(g, x);
    int ai[2] = {r, x};
    qf_attr ax = {.name = "axis", .type = QF_ATTR_INT, .i = axis};
    qf_graph_add_node(g, "relu", "Relu", "", 13, &x, 1, &r, 1, NULL, 0);
    qf_graph_add_node(g, "add", "Add", "", 13, ai, 2, &a, 1, NULL, 0);
    qf_graph_add_node(g, "softmax", "Softmax", "", 13, &a, 1, &y, 1, &ax, 1);
    qf_graph_add_output(g, y);
    qf_err e;
    qf_model *m = NULL;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e) ||
        qf_model_from_graph(g, "softmax.onnx", &m, &e)) {
        fprintf(stderr, "softmax_model: %s\n", e.msg);
        return NULL;
    }
    return m;
}

static void softmax_expect(const float *x, int b, int64_t axis, float *y) {
    float a[12 * 5]; /* batches up to 12 */
    for (int i = 0; i < b * 5; i++)
        a[i] = (x[i] > 0 ? x[i] : 0) + x[i];
    const int outer = axis == 1 ? b : 5, inner = axis == 1 ? 5 : b;
    for (int o = 0; o < outer; o++) {
        double sum = 0, mx = -1e30;
        for (int i = 0; i < inner; i++) {
            const int at = axis == 1 ? o * 5 + i : i * 5 + o;
            if (a[at] > mx) mx = a[at];
        }
        for (int i = 0; i < inner; i++)
            sum += exp(a[axis == 1 ? o * 5 + i : i * 5 + o] - mx);
        for (int i = 0; i < inner; i++) {
            const int at = axis == 1 ? o * 5 + i : i * 5 + o;
            y[at] = (float)(exp(a[at] - mx) / sum);
        }
    }
}

/* One run of softmax_model(axis) on the first b rows of x (b <= 12):
 * output shape and values checked; with no_alloc, that the run allocated
 * nothing. */
static void softmax_run(qf_session *s, const float *x, int b, int64_t axis, bool no_alloc) {
    float want[12 * 5];
    qf_err e;
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {b, 5}, .data = (void *)x}, out;
    qf_allocator a = qt_counting_allocator();
    if (no_alloc) {
        qf_set_allocator(&a);
        *qt_allocs() = 0;
    }
    qf_status st = qf_session_run(s, &in, 1, &out, 1, &e);
    if (no_alloc) {
        qf_set_allocator(NULL);
        CHECK_EQ_INT(*qt_allocs(), 0);
    }
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    if (st) return;
    CHECK(out.rank == 2 && out.dims[0] == b && out.dims[1] == 5);
    softmax_expect(x, b, axis, want);
    for (int i = 0; i < b * 5; i++)
        CHECK_NEAR(((const float *)out.data)[i], want[i], 1e-6);
}

/* Batch chunking (QF_BATCH_CHUNK forces the chunk size): a per-sample graph
 * runs the batch 2 images at a time with the unchunked results and no
 * allocation once planned; a batch the chunk does not divide, an observer
 * and a graph that mixes the batch (softmax over axis 0) run unchunked. */
static void batch_chunking(void) {
    setenv("QF_BATCH_CHUNK", "2", 1);
    float x[8 * 5], want[8 * 5];
    for (int i = 0; i < 8 * 5; i++)
        x[i] = (float)((i * 29) % 17) * 0.25f - 2.0f;
    for (int64_t axis = 1; axis >= 0; axis--) {
        qf_model *m = softmax_model(axis);
        CHECK(m != NULL);
        qf_session *s;
        qf_err e;
        CHECK_OK(qf_session_create(m, NULL, &s, &e));
        const int batches[4] = {6, 6, 3, 8};
        for (int k = 0; k < 4; k++) {
            const int b = batches[k];
            softmax_run(s, x, b, axis, k == 1);
            CHECK_EQ_INT(qf_session_batch_chunk(s), axis == 1 && b % 2 == 0 ? 2 : 0);
        }
        /* an observer sees the whole batch: no chunks */
        qf_session_set_observer(s, count_observer, NULL);
        qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {6, 5}, .data = x}, out;
        CHECK_OK(qf_session_run(s, &in, 1, &out, 1, &e));
        CHECK_EQ_INT(qf_session_batch_chunk(s), 0);
        softmax_expect(x, 6, axis, want);
        for (int i = 0; i < 30; i++)
            CHECK_NEAR(((const float *)out.data)[i], want[i], 1e-6);
        qf_session_free(s);
        qf_model_free(m);
    }
    /* 2 threads: 3 or 4 chunks run concurrently, one per thread, with the
     * same results and no allocation on a repeated shape; a forced chunk
     * of the whole batch means no chunks; QF_IMAGE_PARALLEL=0 runs the
     * chunks one after another */
    {
        qf_model *m = softmax_model(1);
        CHECK(m != NULL);
        qf_session *s;
        qf_err e;
        const qf_session_options opt = {.num_threads = 2};
        CHECK_OK(qf_session_create(m, &opt, &s, &e));
        const int batches[5] = {8, 8, 6, 4, 8};
        const int workers[5] = {2, 2, 2, 2, 1};
        for (int k = 0; k < 5; k++) {
            const int b = batches[k];
            if (k == 4) setenv("QF_IMAGE_PARALLEL", "0", 1);
            if (k == 3) setenv("QF_BATCH_CHUNK", "4", 1); /* 1 chunk of 4: no chunks */
            softmax_run(s, x, b, 1, k == 1);              /* k 1: the same shape again */
            CHECK_EQ_INT(qf_session_batch_chunk(s), k == 3 ? 0 : 2);
            CHECK_EQ_INT(qf_session_batch_workers(s), k == 3 ? 0 : workers[k]);
            if (k == 3) setenv("QF_BATCH_CHUNK", "2", 1);
        }
        unsetenv("QF_IMAGE_PARALLEL");
        qf_session_free(s);
        qf_model_free(m);
    }
    setenv("QF_BATCH_CHUNK", "0", 1);
    qf_model *m = softmax_model(1);
    qf_session *s;
    qf_err e;
    CHECK_OK(qf_session_create(m, NULL, &s, &e));
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {8, 5}, .data = x}, out;
    CHECK_OK(qf_session_run(s, &in, 1, &out, 1, &e));
    CHECK_EQ_INT(qf_session_batch_chunk(s), 0);
    qf_session_free(s);
    /* chosen chunks, 2 threads: a batch of b runs in chunks of the largest
     * divisor of b up to b / 4 (two per thread) when they divide evenly
     * among the threads or are at least 8 (9: 9 chunks of 1); else as one
     * batch (this graph
     * is small: no cache reason to cut it) */
    unsetenv("QF_BATCH_CHUNK");
    const qf_session_options opt = {.num_threads = 2};
    CHECK_OK(qf_session_create(m, &opt, &s, &e));
    static const int bs[6] = {8, 2, 3, 5, 9, 12}, chunks[6] = {2, 1, 0, 0, 1, 3};
    float xb[12 * 5];
    for (int i = 0; i < 12 * 5; i++)
        xb[i] = (float)((i * 31) % 19) * 0.2f - 1.5f;
    for (int k = 0; k < 6; k++) {
        softmax_run(s, xb, bs[k], 1, false);
        CHECK_MSG(qf_session_batch_chunk(s) == chunks[k], "batch %d: chunk %d, expected %d", bs[k],
                  qf_session_batch_chunk(s), chunks[k]);
        CHECK_EQ_INT(qf_session_batch_workers(s), chunks[k] ? 2 : 0);
    }
    qf_session_free(s);
    qf_model_free(m);
}

/* Adaptive threading: a 2-thread session times every run after the one
 * that plans, probes the caller-alone mode for 5 runs after 8 and then
 * after every 64 runs in the mode in use (so at least 15 of 199 timed runs
 * ran on one thread, whichever mode won), with the same results in every
 * run; QF_ADAPTIVE_THREADS=0 and 1-thread sessions time nothing. */
static void adaptive_threads(void) {
    qf_model *m = softmax_model(1);
    CHECK(m != NULL);
    float x[5] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f}, want[5];
    softmax_expect(x, 1, 1, want);
    for (int variant = 0; variant < 3; variant++) {
        if (variant == 1) setenv("QF_ADAPTIVE_THREADS", "0", 1);
        const qf_session_options opt = {.num_threads = variant == 2 ? 1 : 2};
        qf_session *s;
        qf_err e;
        CHECK_OK(qf_session_create(m, &opt, &s, &e));
        int bad = 0;
        for (int r = 0; r < 200; r++) {
            qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {1, 5}, .data = x}, out;
            CHECK_OK(qf_session_run(s, &in, 1, &out, 1, &e));
            for (int i = 0; i < 5; i++)
                bad += fabs(((const float *)out.data)[i] - want[i]) > 1e-6;
        }
        CHECK_EQ_INT(bad, 0);
        uint64_t timed = 99, serial = 99;
        qf_session_adaptive_runs(s, &timed, &serial);
        if (variant == 0) {
            CHECK_EQ_INT(timed, 199);
            CHECK_MSG(serial >= 15 && serial <= 199, "%llu runs on one thread",
                      (unsigned long long)serial);
        } else {
            CHECK_EQ_INT(timed, 0);
            CHECK_EQ_INT(serial, 0);
        }
        qf_session_free(s);
        unsetenv("QF_ADAPTIVE_THREADS");
    }
    qf_model_free(m);
}

QT_MAIN(QT_CASE(shape_chain_on_dynamic_batch), QT_CASE(observer_sees_every_node),
        QT_CASE(chain_values_and_buffer_reuse), QT_CASE(input_validation_errors),
        QT_CASE(shape_input_from_caller), QT_CASE(batch_chunking), QT_CASE(adaptive_threads))
