/* test_onnx_import.c - io/onnx: the ONNX importer.
 *
 * Most models are assembled here with the protobuf-c structs and packed, so
 * each case states exactly what the file holds; expected values are written
 * by hand (byte patterns, IEEE/fp16 encodings). Others come from outside:
 * ONNX's own test data in /usr/share/libonnx-testdata (expected shapes and
 * values read with the onnx python package, see tensor_files_from_testdata)
 * and models written by onnx's python writer (tests/fixtures/).
 * Bad input: every prefix of a model, every single-bit flip, hostile
 * external data, deep nesting, allocation failure at every step.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/onnx_internal.h"
#include "qtest.h"

/* ---- fixture builder ---------------------------------------------------- */
/* Test-side memory for fixtures (plain calloc, released before each case). */
static void *pool[16384];
static int pool_n;

static void *fx_mem(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (pool_n < (int)QF_ARRAY_LEN(pool)) pool[pool_n++] = p;
    return p;
}

static void fx_release(void) {
    while (pool_n)
        free(pool[--pool_n]);
}

static char *fx_str(const char *s) {
    char *d = fx_mem(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static void *fx_dup(const void *p, size_t n) {
    void *d = fx_mem(n);
    if (n) memcpy(d, p, n);
    return d;
}

#define FX_MAX 80
typedef struct fx {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto ops[4];
    Onnx__OperatorSetIdProto *ops_p[4];
    Onnx__NodeProto *nodes[FX_MAX];
    Onnx__TensorProto *inits[FX_MAX];
    Onnx__ValueInfoProto *ins[FX_MAX], *outs[FX_MAX], *vis[FX_MAX];
} fx;

static void fx_opset(fx *f, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *o = &f->ops[f->m.n_opset_import];
    onnx__operator_set_id_proto__init(o);
    o->domain = fx_str(domain);
    o->has_version = 1;
    o->version = version;
    f->ops_p[f->m.n_opset_import++] = o;
    f->m.opset_import = f->ops_p;
}

/* A model with ir_version 8 and (opset > 0) that default-domain opset. */
static fx *fx_new(int64_t opset) {
    fx *f = fx_mem(sizeof *f);
    onnx__model_proto__init(&f->m);
    onnx__graph_proto__init(&f->g);
    f->m.has_ir_version = 1;
    f->m.ir_version = 8;
    f->m.producer_name = fx_str("qforge-test");
    f->m.graph = &f->g;
    f->g.name = fx_str("g");
    f->g.node = f->nodes;
    f->g.initializer = f->inits;
    f->g.input = f->ins;
    f->g.output = f->outs;
    f->g.value_info = f->vis;
    if (opset > 0) fx_opset(f, "", opset);
    return f;
}

/* dims[i] >= 0 or <= -3: dim_value; -1: dim_param "N"; -2: neither set.
 * rank -1: no shape at all. */
static Onnx__ValueInfoProto *mk_vi(const char *name, int elem, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *vi = fx_mem(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = fx_str(name);
    Onnx__TypeProto *tp = fx_mem(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = fx_mem(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = fx_mem(sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank;
        sh->dim = fx_mem(sizeof(void *) * (size_t)(rank + 1));
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = fx_mem(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] == -1) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = fx_str("N");
            } else if (dims[i] != -2) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    return vi;
}

static void fx_input(fx *f, const char *name, int elem, int rank, const int64_t *dims) {
    f->ins[f->g.n_input++] = mk_vi(name, elem, rank, dims);
}
static void fx_output(fx *f, const char *name, int elem, int rank, const int64_t *dims) {
    f->outs[f->g.n_output++] = mk_vi(name, elem, rank, dims);
}

static Onnx__TensorProto *mk_tensor(const char *name, int dtype, int rank, const int64_t *dims) {
    Onnx__TensorProto *t = fx_mem(sizeof *t);
    onnx__tensor_proto__init(t);
    if (name) t->name = fx_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = fx_dup(dims, sizeof(int64_t) * (size_t)rank);
    return t;
}

static Onnx__TensorProto *fx_init(fx *f, const char *name, int dtype, int rank,
                                  const int64_t *dims) {
    Onnx__TensorProto *t = mk_tensor(name, dtype, rank, dims);
    f->inits[f->g.n_initializer++] = t;
    return t;
}

static void t_raw(Onnx__TensorProto *t, const void *p, size_t n) {
    t->has_raw_data = 1;
    t->raw_data.data = fx_dup(p, n);
    t->raw_data.len = n;
}

/* Fill a typed repeated field; `t` must be a plain variable (used twice). */
#define T_TYPED(t, field, arr, count)                                                              \
    do {                                                                                           \
        (t)->n_##field = (count);                                                                  \
        (t)->field = fx_dup((arr), sizeof((arr)[0]) * (size_t)(count));                            \
    } while (0)

/* "a,,b" -> {"a", "", "b"}; "" -> none. */
static char **split_names(const char *csv, size_t *n) {
    *n = 0;
    if (!*csv) return NULL;
    char **out = fx_mem(sizeof(char *) * (strlen(csv) + 2));
    const char *p = csv;
    for (;;) {
        size_t len = strcspn(p, ",");
        char *s = fx_mem(len + 1);
        memcpy(s, p, len);
        out[(*n)++] = s;
        if (!p[len]) break;
        p += len + 1;
    }
    return out;
}

static Onnx__NodeProto *fx_node(fx *f, const char *op, const char *name, const char *ins,
                                const char *outs) {
    Onnx__NodeProto *n = fx_mem(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = fx_str(op);
    if (name) n->name = fx_str(name);
    n->input = split_names(ins, &n->n_input);
    n->output = split_names(outs, &n->n_output);
    n->attribute = fx_mem(sizeof(void *) * 16);
    f->nodes[f->g.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *node_attr(Onnx__NodeProto *n, const char *name, int type) {
    Onnx__AttributeProto *a = fx_mem(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = fx_str(name);
    a->has_type = type != 0;
    a->type = type;
    /* proto2 optionals are packed only when flagged present */
    a->has_f = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_i = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_s = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static uint8_t *fx_pack(fx *f, size_t *len) {
    *len = onnx__model_proto__get_packed_size(&f->m);
    uint8_t *b = fx_mem(*len);
    onnx__model_proto__pack(&f->m, b);
    return b;
}

static qf_status fx_import(fx *f, qf_graph **g, qf_err *e) {
    size_t len;
    uint8_t *b = fx_pack(f, &len);
    e->msg[0] = 0;
    return qf_onnx_import(b, len, "t.onnx", NULL, g, e);
}

static qf_status fx_build(fx *f, qf_graph **g, qf_err *e) {
    size_t len;
    uint8_t *b = fx_pack(f, &len);
    e->msg[0] = 0;
    return qf_onnx_build_graph(b, len, "t.onnx", NULL, g, e);
}

static const qf_value *val(const qf_graph *g, const char *name) {
    int v = qf_graph_find_value(g, name);
    return v < 0 ? NULL : &g->values[v];
}

static const int64_t D1[] = {1}, D2[] = {2}, D3[] = {3}, D4[] = {4}, D13[] = {1, 3};

/* ---- initializers: every dtype, raw vs typed --------------------------- */
enum { F_FLOAT, F_INT32, F_INT64, F_DOUBLE, F_UINT64 };
typedef struct dtype_case {
    int onnx_type;
    size_t es;
    uint8_t bytes[24]; /* expected contents, little-endian (also the raw_data) */
    int field;         /* typed field holding the same 3 values */
    float f[3];
    int32_t i32[3];
    int64_t i64[3];
    double d[3];
    uint64_t u64[3];
} dtype_case;

static const dtype_case dtype_cases[] = {
    {1, 4, {0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0x50, 0x40}, F_FLOAT, .f = {1.5f, -2.0f, 3.25f}},
    {2, 1, {0x00, 0xc8, 0xff}, F_INT32, .i32 = {0, 200, 255}},
    {3, 1, {0x80, 0x7f, 0xff}, F_INT32, .i32 = {-128, 127, -1}},
    {4, 2, {1, 0, 0xff, 0xff, 0, 1}, F_INT32, .i32 = {1, 65535, 256}},
    {5, 2, {0xfe, 0xff, 0x2c, 0x01, 0x00, 0x80}, F_INT32, .i32 = {-2, 300, -32768}},
    {6,
     4,
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 5, 0, 0, 0},
     F_INT32,
     .i32 = {-1, 2147483647, 5}},
    {7,
     8,
     {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 7},
     F_INT64,
     .i64 = {-3, (int64_t)1 << 40, 7}},
    {9, 1, {1, 0, 1}, F_INT32, .i32 = {1, 0, 1}},
    /* fp16 bit patterns of 1.0, -2.0, 65504 (ONNX: in int32_data) */
    {10, 2, {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b}, F_INT32, .i32 = {0x3c00, 0xc000, 0x7bff}},
    {11,
     8,
     {0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0, 0, 0, 0, 0, 0, 0xf0, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0x40},
     F_DOUBLE,
     .d = {0.5, -1.0, 2.0}},
    {12,
     4,
     {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0},
     F_UINT64,
     .u64 = {1, 4294967295u, 65536}},
    {13,
     8,
     {1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 2},
     F_UINT64,
     .u64 = {1, UINT64_MAX, (uint64_t)1 << 33}},
};

static void initializer_dtypes_raw_and_typed(void) {
    for (size_t c = 0; c < QF_ARRAY_LEN(dtype_cases); c++) {
        const dtype_case *dc = &dtype_cases[c];
        fx_release();
        fx *f = fx_new(13);
        t_raw(fx_init(f, "r", dc->onnx_type, 2, D13), dc->bytes, 3 * dc->es);
        Onnx__TensorProto *t = fx_init(f, "t", dc->onnx_type, 2, D13);
        switch (dc->field) {
        case F_FLOAT: T_TYPED(t, float_data, dc->f, 3); break;
        case F_INT32: T_TYPED(t, int32_data, dc->i32, 3); break;
        case F_INT64: T_TYPED(t, int64_data, dc->i64, 3); break;
        case F_DOUBLE: T_TYPED(t, double_data, dc->d, 3); break;
        default: T_TYPED(t, uint64_data, dc->u64, 3); break;
        }
        fx_output(f, "r", dc->onnx_type, 2, D13);
        fx_output(f, "t", dc->onnx_type, 2, D13);
        qf_graph *g;
        qf_err e;
        qf_status st = fx_import(f, &g, &e);
        CHECK_MSG(st == QF_OK, "dtype %d: %s", dc->onnx_type, e.msg);
        CHECK_EQ_INT(g->n_inputs, 0);
        CHECK_EQ_INT(g->n_outputs, 2);
        CHECK_EQ_INT(g->n_nodes, 0);
        for (int k = 0; k < 2; k++) {
            const qf_value *v = val(g, k ? "t" : "r");
            CHECK(v && (v->flags & QF_VAL_CONST));
            CHECK_EQ_INT(v->dtype, dc->onnx_type);
            CHECK_EQ_INT(v->rank, 2);
            CHECK(v->dims[0] == 1 && v->dims[1] == 3);
            CHECK_EQ_INT(v->nbytes, 3 * dc->es);
            CHECK(((uintptr_t)v->data & 63) == 0);
            CHECK_MSG(memcmp(v->data, dc->bytes, 3 * dc->es) == 0, "dtype %d %s", dc->onnx_type,
                      k ? "typed" : "raw");
        }
        if (dc->onnx_type == 10) { /* decoded fp16 means what we wrote */
            const uint16_t *h = val(g, "t")->data;
            CHECK(qf_f16_to_f32(h[0]) == 1.0f && qf_f16_to_f32(h[1]) == -2.0f &&
                  qf_f16_to_f32(h[2]) == 65504.0f);
        }
        qf_graph_free(g);
    }
    fx_release();
}

static void initializer_listed_as_input_is_const(void) {
    fx_release();
    fx *f = fx_new(13);
    const float w[2] = {0.5f, 0.25f};
    t_raw(fx_init(f, "w", 1, 1, D2), w, sizeof w);
    const int64_t xd[2] = {-1, 2};
    fx_input(f, "x", 1, 2, xd);
    fx_input(f, "w", 1, 1, D2); /* old exporters list initializers as inputs */
    fx_output(f, "x", 1, 2, xd);
    fx_output(f, "w", 1, 1, D2);
    qf_graph *g;
    qf_err e;
    CHECK_MSG(fx_import(f, &g, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_inputs, 1);
    CHECK(strcmp(g->values[g->inputs[0]].name, "x") == 0);
    const qf_value *vw = val(g, "w");
    CHECK(vw->flags & QF_VAL_CONST);
    CHECK(!(vw->flags & QF_VAL_INPUT));
    CHECK(((const float *)vw->data)[1] == 0.25f);
    CHECK(strcmp(g->source_path, "t.onnx") == 0 && strcmp(g->name, "g") == 0);
    CHECK(strcmp(g->producer, "qforge-test") == 0);
    CHECK_EQ_INT(g->opset, 13);
    qf_graph_free(g);
    fx_release();
}

/* simple/test_sequence_model1 of ONNX's test data lists its two int64
 * initializers (pos = 1, pos_at = 2, rank 0, int64_data) among the inputs
 * (read with: onnx.load(...); numpy_helper.to_array(t) for t in
 * graph.initializer). Its Sequence* ops are ones qforge never runs. */
static void real_model_initializers_and_unsupported_ops(void) {
    const char *path = "/usr/share/libonnx-testdata/data/simple/test_sequence_model1/model.onnx";
    void *buf;
    size_t len;
    qf_err e;
    CHECK_MSG(qf_read_file(path, &buf, &len, &e) == QF_OK, "%s", e.msg);
    qf_graph *g;
    qf_status st = qf_onnx_build_graph(buf, len, path, NULL, &g, &e);
    qf_free(buf);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_inputs, 3);
    CHECK_EQ_INT(g->n_nodes, 5);
    CHECK_EQ_INT(g->opset, 12);
    const qf_value *pos = val(g, "pos"), *pos_at = val(g, "pos_at");
    CHECK(pos && (pos->flags & QF_VAL_CONST) && !(pos->flags & QF_VAL_INPUT));
    CHECK(pos->dtype == QF_DT_I64 && pos->rank == 0 && *(const int64_t *)pos->data == 1);
    CHECK(pos_at->dtype == QF_DT_I64 && *(const int64_t *)pos_at->data == 2);
    const qf_value *y = val(g, "Y");
    CHECK(y->rank == 3 && y->dims[0] == 1 && y->dims[1] == 3 && y->dims[2] == 4);
    qf_graph_free(g);

    st = qf_onnx_import_file(path, &g, &e);
    CHECK_EQ_INT(st, QF_ERR_UNSUPPORTED);
    CHECK(g == NULL);
    CHECK_MSG(strstr(e.msg, "SequenceEmpty (1 node)") &&
                  strstr(e.msg, "SequenceInsert (3 nodes)") && strstr(e.msg, "SequenceAt (1 node)"),
              "%s", e.msg);
}

static void dynamic_dims_and_value_info(void) {
    fx_release();
    fx *f = fx_new(13);
    fx_opset(f, "com.test", 1);
    const int64_t xd[3] = {-1, 3, -2};
    fx_input(f, "x", 1, 3, xd);
    fx_input(f, "s", 7, 0, NULL);  /* scalar */
    fx_input(f, "u", 1, -1, NULL); /* shape unknown */
    Onnx__NodeProto *n = fx_node(f, "Foo", "foo", "x,s,u", "y");
    n->domain = fx_str("com.test");
    const int64_t yd[2] = {-1, 4};
    f->vis[f->g.n_value_info++] = mk_vi("y", 1, 2, yd);
    f->vis[f->g.n_value_info++] = mk_vi("unrelated", 1, 1, D4);
    fx_output(f, "y", 1, -1, NULL);
    qf_graph *g;
    qf_err e;
    CHECK_MSG(fx_build(f, &g, &e) == QF_OK, "%s", e.msg);
    const qf_value *x = val(g, "x"), *s = val(g, "s"), *u = val(g, "u"), *y = val(g, "y");
    CHECK(x->rank == 3 && x->dims[0] == -1 && x->dims[1] == 3 && x->dims[2] == -1);
    CHECK(x->dtype == QF_DT_F32 && (x->flags & QF_VAL_INPUT));
    CHECK(s->rank == 0 && s->dtype == QF_DT_I64);
    CHECK(u->rank == -1);
    CHECK(y->dtype == QF_DT_F32 && y->rank == 2 && y->dims[0] == -1 && y->dims[1] == 4);
    CHECK(y->flags & QF_VAL_OUTPUT);
    CHECK(val(g, "unrelated") == NULL);
    CHECK(y->producer == 0);
    qf_graph_free(g);
    fx_release();
}

/* ---- Constant nodes ------------------------------------------------------ */
static void constant_nodes_fold(void) {
    fx_release();
    fx *f = fx_new(13);
    const int64_t d22[2] = {2, 2};
    const float v4[4] = {1, 2, 3, 4};
    Onnx__NodeProto *n = fx_node(f, "Constant", "c1", "", "c1");
    Onnx__AttributeProto *a = node_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor("c1v", 1, 2, d22);
    t_raw(a->t, v4, sizeof v4);
    n = fx_node(f, "Constant", NULL, "", "c2");
    node_attr(n, "value_float", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)->f = 2.5f;
    n = fx_node(f, "Constant", NULL, "", "c3");
    a = node_attr(n, "value_floats", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    const float f3[3] = {1.5f, -1, 8};
    T_TYPED(a, floats, f3, 3);
    n = fx_node(f, "Constant", NULL, "", "c4");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)->i = -7;
    n = fx_node(f, "Constant", NULL, "", "c5");
    a = node_attr(n, "value_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    const int64_t i2[2] = {4, (int64_t)1 << 35};
    T_TYPED(a, ints, i2, 2);
    n = fx_node(f, "Constant", NULL, "", "c6");
    a = node_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor(NULL, 7, 1, D2);
    const int64_t i2b[2] = {-1, 9};
    T_TYPED(a->t, int64_data, i2b, 2);
    for (int k = 1; k <= 6; k++) {
        char name[8];
        snprintf(name, sizeof name, "c%d", k);
        fx_output(f, name, 0, -1, NULL);
    }
    qf_graph *g;
    qf_err e;
    CHECK_MSG(fx_import(f, &g, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_nodes, 0);
    const qf_value *c1 = val(g, "c1"), *c2 = val(g, "c2"), *c3 = val(g, "c3");
    const qf_value *c4 = val(g, "c4"), *c5 = val(g, "c5"), *c6 = val(g, "c6");
    CHECK(c1->flags & QF_VAL_CONST);
    CHECK(c1->dtype == QF_DT_F32 && c1->rank == 2 && c1->dims[0] == 2 && c1->dims[1] == 2);
    CHECK(memcmp(c1->data, v4, sizeof v4) == 0);
    CHECK(c2->dtype == QF_DT_F32 && c2->rank == 0 && *(const float *)c2->data == 2.5f);
    CHECK(c3->dtype == QF_DT_F32 && c3->rank == 1 && c3->dims[0] == 3);
    CHECK(memcmp(c3->data, f3, sizeof f3) == 0);
    CHECK(c4->dtype == QF_DT_I64 && c4->rank == 0 && *(const int64_t *)c4->data == -7);
    CHECK(c5->dtype == QF_DT_I64 && c5->rank == 1 && c5->dims[0] == 2);
    CHECK(memcmp(c5->data, i2, sizeof i2) == 0);
    CHECK(c6->dtype == QF_DT_I64 && memcmp(c6->data, i2b, sizeof i2b) == 0);
    for (int k = 0; k < g->n_values; k++)
        CHECK(((uintptr_t)g->values[k].data & 63) == 0);
    qf_graph_free(g);

    /* A folded constant feeding a node (that comes first in the file). */
    fx_release();
    f = fx_new(13);
    fx_opset(f, "com.test", 1);
    fx_node(f, "Foo", "use", "k", "y")->domain = fx_str("com.test");
    n = fx_node(f, "Constant", "kc", "", "k");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)->i = 3;
    fx_output(f, "y", 1, -1, NULL);
    CHECK_MSG(fx_build(f, &g, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_nodes, 1);
    int k = g->nodes[0].inputs[0];
    CHECK(k >= 0 && (g->values[k].flags & QF_VAL_CONST));
    CHECK(*(const int64_t *)g->values[k].data == 3);
    qf_graph_free(g);
    fx_release();
}

/* ---- attributes ----------------------------------------------------------- */
static void attributes_and_node_fields(void) {
    fx_release();
    fx *f = fx_new(14);
    fx_opset(f, "com.test", 3);
    fx_input(f, "x", 1, 1, D4);
    fx_input(f, "w", 1, 1, D4);
    Onnx__NodeProto *n = fx_node(f, "Foo", "foo", "x,,w", "y,");
    n->domain = fx_str("com.test");
    node_attr(n, "alpha", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)->f = 0.25f;
    node_attr(n, "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)->i = -1;
    Onnx__AttributeProto *a = node_attr(n, "mode", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = fx_dup("nearest", 7); /* protobuf bytes: no NUL */
    a->s.len = 7;
    a = node_attr(n, "t", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor("tv", 6, 1, D2);
    const int32_t tv[2] = {7, -7};
    T_TYPED(a->t, int32_data, tv, 2);
    a = node_attr(n, "fs", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    const float fs[2] = {1.5f, -2.0f};
    T_TYPED(a, floats, fs, 2);
    a = node_attr(n, "is", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    const int64_t is[3] = {1, 2, -((int64_t)1 << 40)};
    T_TYPED(a, ints, is, 3);
    a = node_attr(n, "ss", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = 2;
    a->strings = fx_mem(2 * sizeof *a->strings);
    a->strings[0].data = fx_dup("a", 1);
    a->strings[0].len = 1;
    a->strings[1].data = fx_dup("bc", 2);
    a->strings[1].len = 2;
    a = node_attr(n, "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = fx_mem(sizeof *a->g);
    onnx__graph_proto__init(a->g);
    a = node_attr(n, "legacy", 0); /* IR v1: no type field, infer INT from i */
    a->has_i = 1;
    a->i = 42;
    fx_node(f, "Bar", NULL, "y", "z"); /* default domain, unnamed */
    fx_output(f, "z", 1, -1, NULL);
    qf_graph *g;
    qf_err e;
    CHECK_MSG(fx_build(f, &g, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_nodes, 2);
    const qf_node *nd = &g->nodes[0];
    CHECK(strcmp(nd->name, "foo") == 0 && strcmp(nd->op_type, "Foo") == 0);
    CHECK(strcmp(nd->domain, "com.test") == 0 && nd->opset == 3 && nd->op == QF_OP_UNKNOWN);
    CHECK_EQ_INT(nd->n_inputs, 3);
    CHECK(nd->inputs[0] == qf_graph_find_value(g, "x") && nd->inputs[1] == -1);
    CHECK(nd->inputs[2] == qf_graph_find_value(g, "w"));
    CHECK(nd->n_outputs == 2 && nd->outputs[1] == -1);
    CHECK_EQ_INT(nd->n_attrs, 9);
    CHECK(qf_node_attr_float(nd, "alpha", 0) == 0.25f);
    CHECK(qf_node_attr_int(nd, "axis", 0) == -1);
    CHECK(strcmp(qf_node_attr_str(nd, "mode", ""), "nearest") == 0);
    const qf_attr *at = qf_node_attr(nd, "t");
    CHECK(at && at->type == QF_ATTR_TENSOR && at->t.dtype == QF_DT_I32 && at->t.rank == 1);
    CHECK(at->t.dims[0] == 2 && memcmp(at->t.data, tv, sizeof tv) == 0);
    const float *pf;
    CHECK(qf_node_attr_floats(nd, "fs", &pf) == 2 && pf[0] == 1.5f && pf[1] == -2.0f);
    const int64_t *pi;
    CHECK(qf_node_attr_ints(nd, "is", &pi) == 3 && pi[2] == -((int64_t)1 << 40));
    const qf_attr *ss = qf_node_attr(nd, "ss");
    CHECK(ss->type == QF_ATTR_STRINGS && ss->n == 2);
    CHECK(strcmp(ss->strings[0], "a") == 0 && strcmp(ss->strings[1], "bc") == 0);
    CHECK(qf_node_attr(nd, "body")->type == QF_ATTR_GRAPH);
    CHECK(qf_node_attr_int(nd, "legacy", 0) == 42);
    const qf_node *bar = &g->nodes[1];
    CHECK(strcmp(bar->domain, "") == 0 && bar->opset == 14);
    CHECK_MSG(strcmp(bar->name, "Bar_1") == 0, "%s", bar->name);
    CHECK(val(g, "y")->producer == 0 && val(g, "z")->producer == 1);
    qf_graph_free(g);
    fx_release();
}

static void unsupported_ops_listed_at_once(void) {
    fx_release();
    fx *f = fx_new(13);
    fx_opset(f, "com.x", 1);
    fx_input(f, "x", 1, 1, D4);
    fx_node(f, "NonMaxSuppression", "a", "x", "a");
    fx_node(f, "TopK", "b", "a", "b");
    fx_node(f, "NonMaxSuppression", "c", "b", "c");
    fx_node(f, "Foo", "d", "c", "d")->domain = fx_str("com.x");
    fx_output(f, "d", 1, -1, NULL);
    qf_graph *g = (qf_graph *)&g;
    qf_err e;
    CHECK_EQ_INT(fx_import(f, &g, &e), QF_ERR_UNSUPPORTED);
    CHECK(g == NULL);
    CHECK_MSG(strcmp(e.msg, "t.onnx: unsupported ops: NonMaxSuppression (2 nodes), TopK (1 node), "
                            "com.x.Foo (1 node)") == 0,
              "%s", e.msg);
    fx_release();
}

/* ---- external data -------------------------------------------------------- */
static char tmpdir[64];

static void write_bytes(const char *dir, const char *name, const void *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(p, 1, n, fp);
        fclose(fp);
    }
}

static void remove_tree(const char *dir) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static fx *ext_model(const char *location, const char *offset, const char *length) {
    fx *f = fx_new(13);
    Onnx__TensorProto *t = fx_init(f, "w", 1, 1, D3);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *keys[3] = {"location", "offset", "length"};
    const char *vals[3] = {location, offset, length};
    t->external_data = fx_mem(3 * sizeof(void *));
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        Onnx__StringStringEntryProto *kv = fx_mem(sizeof *kv);
        onnx__string_string_entry_proto__init(kv);
        kv->key = fx_str(keys[i]);
        kv->value = fx_str(vals[i]);
        t->external_data[t->n_external_data++] = kv;
    }
    fx_output(f, "w", 1, 1, D3);
    return f;
}

typedef struct ext_case {
    const char *location, *offset, *length;
    qf_status status;
    const char *msg; /* expected message substring (full message must start "t.onnx: ") */
} ext_case;

static const ext_case ext_cases[] = {
    {"w.bin", "16", "12", QF_OK, NULL},
    {"sub/w2.bin", NULL, NULL, QF_OK, NULL},
    {"./sub/w2.bin", "0", NULL, QF_OK, NULL},
    {"../w.bin", NULL, NULL, QF_ERR_FORMAT, "'../w.bin' is not a relative path inside"},
    {"sub/../../w.bin", NULL, NULL, QF_ERR_FORMAT, "not a relative path"},
    {"sub\\..\\..\\w.bin", NULL, NULL, QF_ERR_FORMAT, "not a relative path"},
    {"/etc/passwd", NULL, NULL, QF_ERR_FORMAT, "not a relative path"},
    {"C:/w.bin", NULL, NULL, QF_ERR_FORMAT, "not a relative path"},
    {"", NULL, NULL, QF_ERR_FORMAT, "external data has no location"},
    {"w.bin", "100", NULL, QF_ERR_FORMAT, "offset 100 is past the end of '"},
    {"w.bin", "16", "100", QF_ERR_FORMAT, "offset 16 + length 100 runs past the end"},
    {"w.bin", "16", "18446744073709551615", QF_ERR_FORMAT, "runs past the end"},
    {"w.bin", "16", "8", QF_ERR_FORMAT, "has 8 bytes, expected 12"},
    {"w.bin", "16", NULL, QF_ERR_FORMAT, "has 16 bytes, expected 12"},
    {"w.bin", "-4", NULL, QF_ERR_FORMAT, "bad external data offset '-4'"},
    {"w.bin", "99999999999999999999", NULL, QF_ERR_FORMAT, "bad external data offset"},
    {"missing.bin", NULL, NULL, QF_ERR_IO, "cannot open external data file"},
    {"sub", NULL, NULL, QF_ERR_FORMAT, "is not a regular file"},
};

static void external_data(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qf_onnx_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    const float w[3] = {1.0f, -2.0f, 0.125f};
    uint8_t file[32];
    memset(file, 0xee, sizeof file);
    memcpy(file + 16, w, sizeof w);
    write_bytes(tmpdir, "w.bin", file, sizeof file);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    CHECK(mkdir(sub, 0700) == 0);
    write_bytes(sub, "w2.bin", w, sizeof w);
    for (size_t i = 0; i < QF_ARRAY_LEN(ext_cases); i++) {
        const ext_case *c = &ext_cases[i];
        fx_release();
        fx *f = ext_model(c->location, c->offset, c->length);
        size_t len;
        uint8_t *b = fx_pack(f, &len);
        qf_graph *g;
        qf_err e;
        e.msg[0] = 0;
        qf_status st = qf_onnx_import(b, len, "t.onnx", tmpdir, &g, &e);
        CHECK_MSG(st == c->status, "case %zu (%s): status %d: %s", i, c->location, st, e.msg);
        if (st == QF_OK) {
            const qf_value *v = val(g, "w");
            CHECK((v->flags & QF_VAL_CONST) && memcmp(v->data, w, sizeof w) == 0);
            CHECK(((uintptr_t)v->data & 63) == 0);
            qf_graph_free(g);
            continue;
        }
        CHECK(g == NULL);
        CHECK_MSG(strncmp(e.msg, "t.onnx: initializer 'w': ", 25) == 0 && strstr(e.msg, c->msg),
                  "case %zu: %s", i, e.msg);
        /* messages about the file's contents name both files */
        if (strstr(c->msg, "past the end") || strstr(c->msg, "expected"))
            CHECK_MSG(strstr(e.msg, "/w.bin'"), "%s", e.msg);
    }
    /* qf_onnx_import_file resolves locations next to the model file. */
    fx_release();
    fx *f = ext_model("w.bin", "16", "12");
    size_t len;
    uint8_t *b = fx_pack(f, &len);
    write_bytes(tmpdir, "m.onnx", b, len);
    char mpath[128];
    snprintf(mpath, sizeof mpath, "%s/m.onnx", tmpdir);
    qf_graph *g;
    qf_err e;
    CHECK_MSG(qf_onnx_import_file(mpath, &g, &e) == QF_OK, "%s", e.msg);
    CHECK(memcmp(val(g, "w")->data, w, sizeof w) == 0);
    CHECK(strcmp(g->source_path, mpath) == 0);
    qf_graph_free(g);
    remove_tree(tmpdir);
    fx_release();
}

/* ---- bad models ----------------------------------------------------------- */
static void bad_no_ir_version(fx *f) { f->m.has_ir_version = 0; }
static void bad_no_graph(fx *f) { f->m.graph = NULL; }
static void bad_opset6(fx *f) { f->ops[0].version = 6; }
static void bad_opset22(fx *f) { f->ops[0].version = 22; }
static void bad_no_default_opset(fx *f) {
    f->ops[0].domain = fx_str("com.x");
    fx_node(f, "Relu", "r", "", "y");
}
static void bad_input_negative_dim(fx *f) {
    const int64_t d[2] = {3, -5};
    fx_input(f, "x", 1, 2, d);
}
static void bad_input_huge_dim(fx *f) {
    const int64_t d[1] = {((int64_t)1 << 31) + 1};
    fx_input(f, "x", 1, 1, d);
}
static void bad_output_huge_dim(fx *f) {
    const int64_t d[1] = {(int64_t)1 << 40};
    fx_input(f, "x", 1, 1, D1);
    fx_output(f, "x", 1, 1, d);
}
static void bad_input_rank9(fx *f) {
    const int64_t d[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    fx_input(f, "x", 1, 9, d);
}
static void bad_input_sequence(fx *f) {
    fx_input(f, "x", 1, 1, D1);
    f->ins[0]->type->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    f->ins[0]->type->sequence_type = fx_mem(sizeof(Onnx__TypeProto__Sequence));
    onnx__type_proto__sequence__init(f->ins[0]->type->sequence_type);
}
static void bad_input_string(fx *f) { fx_input(f, "x", 8, 1, D1); }
static void bad_input_twice(fx *f) {
    fx_input(f, "x", 1, 1, D1);
    fx_input(f, "x", 1, 1, D1);
}
static void bad_input_unnamed(fx *f) { fx_input(f, "", 1, 1, D1); }
static void bad_init_negative_dim(fx *f) {
    const int64_t d[2] = {2, -1};
    t_raw(fx_init(f, "w", 1, 2, d), "12345678", 8);
}
static void bad_init_huge_dims(fx *f) {
    const int64_t d[3] = {(int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40};
    t_raw(fx_init(f, "w", 1, 3, d), "1234", 4);
}
static void bad_init_huge_bytes(fx *f) {
    const int64_t d[2] = {(int64_t)1 << 31, (int64_t)1 << 31}; /* numel fits, bytes do not */
    t_raw(fx_init(f, "w", 11, 2, d), "1234", 4);
}
static void bad_init_raw_size(fx *f) { t_raw(fx_init(f, "w", 1, 1, D4), "12345678", 8); }
static void bad_init_typed_count(fx *f) {
    const float v[3] = {1, 2, 3};
    Onnx__TensorProto *tw = fx_init(f, "w", 1, 1, D4);
    T_TYPED(tw, float_data, v, 3);
}
static void bad_init_wrong_field(fx *f) {
    const float v[4] = {1, 2, 3, 4};
    Onnx__TensorProto *tw = fx_init(f, "w", 7, 1, D4);
    T_TYPED(tw, float_data, v, 4); /* INT64 tensor, float field */
}
static void bad_init_no_data(fx *f) { fx_init(f, "w", 1, 1, D4); }
static void bad_init_string(fx *f) { fx_init(f, "w", 8, 1, D1); }
static void bad_init_bfloat16(fx *f) { t_raw(fx_init(f, "w", 16, 1, D1), "12", 2); }
static void bad_init_unknown_dtype(fx *f) { t_raw(fx_init(f, "w", 99, 1, D1), "12", 2); }
static void bad_init_no_dtype(fx *f) { fx_init(f, "w", 1, 1, D1)->has_data_type = 0; }
static void bad_init_rank9(fx *f) {
    const int64_t d[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    t_raw(fx_init(f, "w", 1, 9, d), "1234", 4);
}
static void bad_init_twice(fx *f) {
    t_raw(fx_init(f, "w", 1, 1, D1), "1234", 4);
    t_raw(fx_init(f, "w", 1, 1, D1), "1234", 4);
}
static void bad_init_unnamed(fx *f) { t_raw(fx_init(f, NULL, 1, 1, D1), "1234", 4); }
static void bad_init_segment(fx *f) {
    Onnx__TensorProto *t = fx_init(f, "w", 1, 1, D1);
    t_raw(t, "1234", 4);
    t->segment = fx_mem(sizeof *t->segment);
    onnx__tensor_proto__segment__init(t->segment);
}
static void bad_ext_no_location(fx *f) {
    Onnx__TensorProto *t = fx_init(f, "w", 1, 1, D1);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}
static void bad_cycle(fx *f) {
    fx_node(f, "Aop", "A", "b", "a");
    fx_node(f, "Bop", "B", "a", "b");
    fx_output(f, "a", 1, -1, NULL);
}
static void bad_undefined_input(fx *f) {
    fx_node(f, "Relu", "r", "nothing", "y");
    fx_output(f, "y", 1, -1, NULL);
}
static void bad_undefined_output(fx *f) {
    fx_input(f, "x", 1, 1, D1);
    fx_output(f, "ghost", 1, -1, NULL);
}
static void bad_produced_twice(fx *f) {
    fx_input(f, "x", 1, 1, D1);
    fx_node(f, "Relu", "r1", "x", "y");
    fx_node(f, "Relu", "r2", "x", "y");
    fx_output(f, "y", 1, -1, NULL);
}
static void bad_node_writes_input(fx *f) {
    fx_input(f, "x", 1, 1, D1);
    fx_node(f, "Relu", "r1", "x", "x");
    fx_output(f, "x", 1, -1, NULL);
}
static void bad_no_op_type(fx *f) { fx_node(f, "", "n", "", "y"); }
static void bad_too_many_inputs(fx *f) {
    char ins[65 * 2 + 1] = "";
    for (int i = 0; i < 65; i++)
        strcat(ins, i ? ",x" : "x");
    fx_input(f, "x", 1, 1, D1);
    fx_node(f, "Concat", "cat", ins, "y");
    fx_output(f, "y", 1, -1, NULL);
}
static void bad_attr_twice(fx *f) {
    fx_input(f, "x", 1, 1, D1);
    Onnx__NodeProto *n = fx_node(f, "Relu", "r", "x", "y");
    node_attr(n, "k", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    node_attr(n, "k", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
}
static void bad_attr_unnamed(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Relu", "r", "", "y");
    node_attr(n, "", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
}
static void bad_attr_tensor_raw_size(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "ConstantOfShape", "cos", "", "y");
    Onnx__AttributeProto *a = node_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor(NULL, 1, 1, D1);
    t_raw(a->t, "12", 2);
}
static void bad_const_string(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    Onnx__AttributeProto *a = node_attr(n, "value_string", 3);
    a->has_s = 1;
}
static void bad_const_sparse(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    node_attr(n, "sparse_value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR);
}
static void bad_const_string_tensor(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    Onnx__AttributeProto *a = node_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor(NULL, 8, 0, NULL);
}
static void bad_const_two_values(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    node_attr(n, "value_float", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
}
static void bad_const_no_value(fx *f) { fx_node(f, "Constant", "k", "", "y"); }
static void bad_const_wrong_type(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
}
static void bad_const_two_outputs(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y,z");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
}
static void bad_const_shadows_initializer(fx *f) {
    t_raw(fx_init(f, "y", 1, 1, D1), "1234", 4);
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
}
static void bad_const_then_node(fx *f) {
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "y");
    node_attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    fx_node(f, "Relu", "r", "y", "y");
}

typedef struct bad_case {
    const char *name;
    void (*make)(fx *f);
    qf_status status;
    const char *msg;
} bad_case;

static const bad_case bad_cases[] = {
    {"no ir_version", bad_no_ir_version, QF_ERR_FORMAT, "ir_version is missing"},
    {"no graph", bad_no_graph, QF_ERR_FORMAT, "the model has no graph"},
    {"opset 6", bad_opset6, QF_ERR_UNSUPPORTED, "ONNX opset 6 is not supported"},
    {"opset 22", bad_opset22, QF_ERR_UNSUPPORTED, "ONNX opset 22 is not supported"},
    {"no default opset", bad_no_default_opset, QF_ERR_FORMAT, "imports no ONNX opset"},
    {"input dim -5", bad_input_negative_dim, QF_ERR_FORMAT, "input 'x': dimension 1 is -5"},
    {"input dim 2^31+1", bad_input_huge_dim, QF_ERR_FORMAT, "input 'x': dimension 0 is 2147483649"},
    {"output dim 2^40", bad_output_huge_dim, QF_ERR_FORMAT, "output 'x': dimension 0 is"},
    {"input rank 9", bad_input_rank9, QF_ERR_UNSUPPORTED, "input 'x' has 9 dimensions"},
    {"input sequence", bad_input_sequence, QF_ERR_UNSUPPORTED, "input 'x' is not a tensor"},
    {"input string", bad_input_string, QF_ERR_UNSUPPORTED, "input 'x' has data type STRING"},
    {"input twice", bad_input_twice, QF_ERR_FORMAT, "graph input 'x' is listed twice"},
    {"input unnamed", bad_input_unnamed, QF_ERR_FORMAT, "graph input #0 has no name"},
    {"init dim -1", bad_init_negative_dim, QF_ERR_FORMAT,
     "initializer 'w': dimension 1 is negative (-1)"},
    {"init dims 2^120", bad_init_huge_dims, QF_ERR_FORMAT,
     "initializer 'w': element count overflows"},
    {"init bytes 2^65", bad_init_huge_bytes, QF_ERR_FORMAT, "initializer 'w': byte size overflows"},
    {"init raw size", bad_init_raw_size, QF_ERR_FORMAT,
     "t.onnx: initializer 'w': raw_data has 8 bytes, expected 16"},
    {"init typed count", bad_init_typed_count, QF_ERR_FORMAT,
     "initializer 'w': float_data has 3 values, expected 4"},
    {"init wrong field", bad_init_wrong_field, QF_ERR_FORMAT, "initializer 'w': has no data"},
    {"init no data", bad_init_no_data, QF_ERR_FORMAT, "initializer 'w': has no data"},
    {"init string", bad_init_string, QF_ERR_UNSUPPORTED,
     "initializer 'w' has data type STRING, which qforge does not support"},
    {"init bfloat16", bad_init_bfloat16, QF_ERR_UNSUPPORTED, "data type BFLOAT16"},
    {"init dtype 99", bad_init_unknown_dtype, QF_ERR_FORMAT, "unknown data type 99"},
    {"init no dtype", bad_init_no_dtype, QF_ERR_FORMAT, "initializer 'w' has no data type"},
    {"init rank 9", bad_init_rank9, QF_ERR_UNSUPPORTED, "initializer 'w' has 9 dimensions"},
    {"init twice", bad_init_twice, QF_ERR_FORMAT, "initializer 'w' appears twice"},
    {"init unnamed", bad_init_unnamed, QF_ERR_FORMAT, "initializer #0 has no name"},
    {"init segment", bad_init_segment, QF_ERR_UNSUPPORTED, "segmented tensors"},
    {"ext no location", bad_ext_no_location, QF_ERR_FORMAT, "external data has no location"},
    {"cycle", bad_cycle, QF_ERR_FORMAT, "has a cycle through node"},
    {"undefined input", bad_undefined_input, QF_ERR_FORMAT,
     "node 'r' reads 'nothing', which no node, input or initializer provides"},
    {"undefined output", bad_undefined_output, QF_ERR_FORMAT,
     "graph output 'ghost' is not produced"},
    {"produced twice", bad_produced_twice, QF_ERR_FORMAT, "value 'y' is produced twice"},
    {"node writes input", bad_node_writes_input, QF_ERR_FORMAT, "value 'x' is produced twice"},
    {"no op_type", bad_no_op_type, QF_ERR_FORMAT, "node #0 has no op_type"},
    {"65 inputs", bad_too_many_inputs, QF_ERR_UNSUPPORTED, "node 'cat' (Concat) has 65 inputs"},
    {"attr twice", bad_attr_twice, QF_ERR_FORMAT, "node 'r': attribute 'k' appears twice"},
    {"attr unnamed", bad_attr_unnamed, QF_ERR_FORMAT, "node 'r' has an attribute without a name"},
    {"attr tensor", bad_attr_tensor_raw_size, QF_ERR_FORMAT,
     "node 'cos' attribute 'value': raw_data has 2 bytes, expected 4"},
    {"Constant value_string", bad_const_string, QF_ERR_UNSUPPORTED,
     "Constant node 'k': attribute 'value_string' is not supported"},
    {"Constant sparse", bad_const_sparse, QF_ERR_UNSUPPORTED, "attribute 'sparse_value'"},
    {"Constant string tensor", bad_const_string_tensor, QF_ERR_UNSUPPORTED,
     "Constant node 'k' has data type STRING"},
    {"Constant two values", bad_const_two_values, QF_ERR_FORMAT,
     "exactly one value attribute (has 2)"},
    {"Constant no value", bad_const_no_value, QF_ERR_FORMAT, "exactly one value attribute (has 0)"},
    {"Constant wrong type", bad_const_wrong_type, QF_ERR_FORMAT, "'value_int' has type 1"},
    {"Constant two outputs", bad_const_two_outputs, QF_ERR_FORMAT, "exactly one output"},
    {"Constant shadows init", bad_const_shadows_initializer, QF_ERR_FORMAT,
     "value 'y' is produced twice (node 'k')"},
    {"Constant then node", bad_const_then_node, QF_ERR_FORMAT, "value 'y' is produced twice"},
};

static void bad_models_rejected(void) {
    for (size_t i = 0; i < QF_ARRAY_LEN(bad_cases); i++) {
        const bad_case *c = &bad_cases[i];
        fx_release();
        fx *f = fx_new(13);
        c->make(f);
        qf_graph *g = (qf_graph *)&g;
        qf_err e;
        qf_status st = fx_import(f, &g, &e);
        CHECK_MSG(st == c->status, "%s: status %d (%s)", c->name, st, e.msg);
        CHECK_MSG(g == NULL, "%s", c->name);
        CHECK_MSG(strncmp(e.msg, "t.onnx: ", 8) == 0 && strstr(e.msg, c->msg), "%s: '%s'", c->name,
                  e.msg);
    }
    fx_release();
}

static void empty_and_garbage_input(void) {
    qf_graph *g = (qf_graph *)&g;
    qf_err e;
    CHECK_EQ_INT(qf_onnx_import("", 0, "t.onnx", NULL, &g, &e), QF_ERR_FORMAT);
    CHECK(g == NULL && strcmp(e.msg, "t.onnx: empty file") == 0);
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0x01};
    CHECK_EQ_INT(qf_onnx_import(junk, sizeof junk, "t.onnx", NULL, &g, &e), QF_ERR_FORMAT);
    CHECK(strcmp(e.msg, "t.onnx: not a valid ONNX model (protobuf decode failed)") == 0);
    qf_tensor t;
    CHECK_EQ_INT(qf_onnx_decode_tensor("", 0, "in.pb", &t, &e), QF_ERR_FORMAT);
    CHECK(strcmp(e.msg, "in.pb: empty file") == 0);
    CHECK_EQ_INT(qf_onnx_decode_tensor(junk, sizeof junk, "in.pb", &t, &e), QF_ERR_FORMAT);
    CHECK(strstr(e.msg, "in.pb: not a valid ONNX TensorProto") == e.msg);
    /* files */
    CHECK_EQ_INT(qf_onnx_import_file("/nonexistent/m.onnx", &g, &e), QF_ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent/m.onnx: cannot open") == e.msg);
    CHECK_EQ_INT(qf_onnx_import_file("/tmp", &g, &e), QF_ERR_IO);
    CHECK(strcmp(e.msg, "/tmp: not a regular file") == 0);
    char path[] = "/tmp/qf_empty_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    qf_status st = qf_onnx_import_file(path, &g, &e);
    unlink(path);
    CHECK_EQ_INT(st, QF_ERR_FORMAT);
    CHECK(strstr(e.msg, ": empty file") != NULL && g == NULL);
}

/* ---- a model with a bit of everything, for the robustness sweeps -------- */
static uint8_t *rich_model(size_t *len) {
    fx *f = fx_new(13);
    fx_opset(f, "com.test", 2);
    const int64_t xd[2] = {-1, 4};
    fx_input(f, "x", 1, 2, xd);
    fx_input(f, "w", 1, 1, D4);
    const float w[4] = {1, 2, 3, 4};
    t_raw(fx_init(f, "w", 1, 1, D4), w, sizeof w);
    const int64_t sh[2] = {-1, 2};
    Onnx__TensorProto *tsh = fx_init(f, "shape", 7, 1, D2);
    T_TYPED(tsh, int64_data, sh, 2);
    const int32_t h[2] = {0x3c00, 0x4000};
    Onnx__TensorProto *th = fx_init(f, "h", 10, 1, D2);
    T_TYPED(th, int32_data, h, 2);
    Onnx__NodeProto *n = fx_node(f, "Constant", "k", "", "k");
    node_attr(n, "value_floats", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    T_TYPED(n->attribute[0], floats, w, 4);
    n = fx_node(f, "Mix", "mix", "x,w,,k", "y");
    n->domain = fx_str("com.test");
    node_attr(n, "alpha", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)->f = 0.5f;
    Onnx__AttributeProto *a = node_attr(n, "pads", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    T_TYPED(a, ints, sh, 2);
    a = node_attr(n, "mode", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = fx_dup("abc", 3);
    a->s.len = 3;
    a = node_attr(n, "t", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor(NULL, 6, 1, D2);
    T_TYPED(a->t, int32_data, h, 2);
    fx_node(f, "Reshape", "r", "y,shape", "z");
    fx_node(f, "Cast", "c", "h", "hc");
    f->vis[f->g.n_value_info++] = mk_vi("y", 1, 2, xd);
    fx_output(f, "z", 1, 2, sh);
    fx_output(f, "hc", 1, 1, D2);
    return fx_pack(f, len);
}

static bool check_result(qf_status st, const qf_graph *g, const qf_err *e) {
    if (st == QF_OK) return g != NULL;
    return g == NULL && strncmp(e->msg, "t.onnx: ", 8) == 0;
}

static void truncated_prefixes(void) {
    fx_release();
    size_t len;
    uint8_t *full = rich_model(&len);
    qf_graph *g;
    qf_err e;
    CHECK_MSG(qf_onnx_build_graph(full, len, "t.onnx", NULL, &g, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_nodes, 3);
    qf_graph_free(g);
    int rejected = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size so ASan sees any overread */
        memcpy(copy, full, n);
        qf_status st = qf_onnx_build_graph(copy, n, "t.onnx", NULL, &g, &e);
        free(copy);
        CHECK_MSG(check_result(st, g, &e), "prefix %zu: %s", n, e.msg);
        if (st) rejected++;
        qf_graph_free(st ? NULL : g);
    }
    /* Most prefixes cut a field; a few end on a field boundary and are
     * valid (smaller) models. */
    CHECK_MSG(rejected > (int)len * 3 / 4, "%d of %zu rejected", rejected, len);
    fx_release();
}

static void bit_flips(void) {
    fx_release();
    size_t len;
    uint8_t *model = rich_model(&len);
    uint8_t *copy = malloc(len);
    int rejected = 0, accepted = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, model, len);
            copy[i] ^= (uint8_t)(1u << bit);
            qf_graph *g;
            qf_err e;
            qf_status st = qf_onnx_build_graph(copy, len, "t.onnx", NULL, &g, &e);
            if (!check_result(st, g, &e)) {
                free(copy);
                CHECK_MSG(0, "byte %zu bit %d: %s", i, bit, e.msg);
            }
            if (st == QF_OK) {
                accepted++;
                qf_graph_free(g);
            } else {
                rejected++;
            }
        }
    free(copy);
    CHECK(rejected > 0 && accepted > 0);
    fx_release();
}

/* ---- nesting depth -------------------------------------------------------- */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void b_varint(bytes *b, uint64_t v) {
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        b_put(b, &c, 1);
    } while (v);
}

/* field `num` (wire type 2) holding `inner`; inner is consumed. */
static bytes b_wrap(int num, bytes inner) {
    bytes out = {0};
    b_varint(&out, (uint64_t)num << 3 | 2);
    b_varint(&out, inner.n);
    if (inner.n) b_put(&out, inner.p, inner.n);
    free(inner.p);
    return out;
}

static void b_string(bytes *b, int num, const char *s) {
    b_varint(b, (uint64_t)num << 3 | 2);
    b_varint(b, strlen(s));
    b_put(b, s, strlen(s));
}

/* A model whose graph holds a Loop node whose "body" holds a Loop node ...
 * `levels` deep: message depth 1 + 3 * levels below the ModelProto. */
static bytes nested_model(int levels) {
    bytes graph = {0};
    for (int i = 0; i < levels; i++) {
        bytes attr = {0};
        b_string(&attr, 1, "body");
        b_varint(&attr, 20 << 3 | 0); /* type = GRAPH */
        b_varint(&attr, 5);
        bytes gwrapped = b_wrap(6, graph); /* AttributeProto.g */
        b_put(&attr, gwrapped.p, gwrapped.n);
        free(gwrapped.p);
        bytes node = {0};
        b_string(&node, 4, "Loop");
        bytes awrapped = b_wrap(5, attr); /* NodeProto.attribute */
        b_put(&node, awrapped.p, awrapped.n);
        free(awrapped.p);
        graph = b_wrap(1, node); /* GraphProto.node */
    }
    bytes model = {0};
    b_varint(&model, 1 << 3 | 0); /* ir_version = 8 */
    b_varint(&model, 8);
    bytes opset = {0};
    b_varint(&opset, 2 << 3 | 0); /* OperatorSetIdProto.version = 13 */
    b_varint(&opset, 13);
    bytes owrapped = b_wrap(8, opset);
    b_put(&model, owrapped.p, owrapped.n);
    free(owrapped.p);
    bytes gwrapped = b_wrap(7, graph);
    b_put(&model, gwrapped.p, gwrapped.n);
    free(gwrapped.p);
    return model;
}

static void nesting_depth_limited(void) {
    bytes m = nested_model(2); /* depth 7 */
    CHECK(qf_onnx_wire_depth_ok(m.p, m.n, &onnx__model_proto__descriptor, 7));
    CHECK(!qf_onnx_wire_depth_ok(m.p, m.n, &onnx__model_proto__descriptor, 6));
    free(m.p);

    m = nested_model(5);
    qf_graph *g;
    qf_err e;
    qf_status st = qf_onnx_build_graph(m.p, m.n, "t.onnx", NULL, &g, &e);
    free(m.p);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(g->n_nodes == 1 && strcmp(g->nodes[0].op_type, "Loop") == 0);
    CHECK(qf_node_attr(&g->nodes[0], "body")->type == QF_ATTR_GRAPH);
    qf_graph_free(g);

    const int deep[] = {33, 34, 3000}; /* depth 100 (the limit), 103, 9001 */
    for (size_t i = 0; i < QF_ARRAY_LEN(deep); i++) {
        m = nested_model(deep[i]);
        st = qf_onnx_build_graph(m.p, m.n, "t.onnx", NULL, &g, &e);
        free(m.p);
        if (deep[i] == 33) {
            CHECK_MSG(st == QF_OK, "%s", e.msg);
            qf_graph_free(g);
        } else {
            CHECK_EQ_INT(st, QF_ERR_FORMAT);
            CHECK(strstr(e.msg, "protobuf decode failed") && g == NULL);
        }
    }
}

/* ---- tensor files from ONNX's test data ---------------------------------- */
/* Expected values printed by:
 *   t = onnx.TensorProto(); t.ParseFromString(open(p, 'rb').read())
 *   a = onnx.numpy_helper.to_array(t)
 *   print(t.data_type, list(t.dims), a.flatten()[:4], a.astype(np.float64).sum())
 * (/usr/bin/python3, onnx 1.12). */
typedef struct tfile_case {
    const char *path; /* under /usr/share/libonnx-testdata/data/node/ */
    const char *name;
    int dtype, rank;
    int64_t dims[4];
    double first[4];
    int n_first;
    double sum;
} tfile_case;

static const tfile_case tfile_cases[] = {
    {"test_conv_with_strides_padding/test_data_set_0/input_0.pb",
     "x",
     1,
     4,
     {1, 1, 7, 5},
     {0, 1, 2, 3},
     4,
     595.0},
    {"test_add_uint8/test_data_set_0/output_0.pb",
     "sum",
     2,
     3,
     {3, 4, 5},
     {18, 24, 22, 22},
     4,
     1404.0},
    {"test_cast_FLOAT_to_FLOAT16/test_data_set_0/output_0.pb",
     "output",
     10,
     2,
     {3, 4},
     {0.548828125, 0.71533203125, 0.6025390625, 0.544921875},
     4,
     7.47802734375},
    {"test_argmax_default_axis_example/test_data_set_0/output_0.pb",
     "result",
     7,
     2,
     {1, 2},
     {1, 1},
     2,
     2.0},
    {"test_and2d/test_data_set_0/input_0.pb", "x", 9, 2, {3, 4}, {1, 1, 1, 1}, 4, 9.0},
    {"test_cast_FLOAT_to_DOUBLE/test_data_set_0/output_0.pb",
     "output",
     11,
     2,
     {3, 4},
     {0.5680445432662964, 0.9255966544151306, 0.07103605568408966, 0.08712930232286453},
     4,
     7.172599183395505},
    {"test_adagrad/test_data_set_0/input_0.pb",
     "R",
     1,
     0,
     {0},
     {0.10000000149011612},
     1,
     0.10000000149011612},
    {"test_basic_convinteger/test_data_set_0/output_0.pb",
     "y",
     6,
     4,
     {1, 1, 2, 2},
     {12, 16, 24, 28},
     4,
     80.0},
    {"test_bitshift_left_uint16/test_data_set_0/input_0.pb", "x", 4, 1, {3}, {16, 4, 1}, 3, 21},
    {"test_bitshift_left_uint32/test_data_set_0/input_0.pb", "x", 12, 1, {3}, {16, 4, 1}, 3, 21},
    {"test_bitshift_left_uint64/test_data_set_0/input_0.pb", "x", 13, 1, {3}, {16, 4, 1}, 3, 21},
    {"test_clip_default_int8_inbounds/test_data_set_0/input_0.pb",
     "x",
     3,
     1,
     {3},
     {-1, 0, 1},
     3,
     0.0},
    {"test_max_int16/test_data_set_0/input_0.pb", "data_0", 5, 1, {3}, {3, 2, 1}, 3, 6.0},
};

static double elem_as_double(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_F32: return ((const float *)t->data)[i];
    case QF_DT_F64: return ((const double *)t->data)[i];
    case QF_DT_F16: return qf_f16_to_f32(((const uint16_t *)t->data)[i]);
    case QF_DT_U8:
    case QF_DT_BOOL: return ((const uint8_t *)t->data)[i];
    case QF_DT_I8: return ((const int8_t *)t->data)[i];
    case QF_DT_U16: return ((const uint16_t *)t->data)[i];
    case QF_DT_I16: return ((const int16_t *)t->data)[i];
    case QF_DT_U32: return ((const uint32_t *)t->data)[i];
    case QF_DT_I32: return ((const int32_t *)t->data)[i];
    case QF_DT_U64: return (double)((const uint64_t *)t->data)[i];
    case QF_DT_I64: return (double)((const int64_t *)t->data)[i];
    default: return NAN;
    }
}

static void tensor_files_from_testdata(void) {
    for (size_t i = 0; i < QF_ARRAY_LEN(tfile_cases); i++) {
        const tfile_case *c = &tfile_cases[i];
        char path[512];
        snprintf(path, sizeof path, "/usr/share/libonnx-testdata/data/node/%s", c->path);
        qf_tensor t;
        qf_err e;
        CHECK_MSG(qf_onnx_read_tensor_file(path, &t, &e) == QF_OK, "%s", e.msg);
        CHECK_MSG((int)t.dtype == c->dtype && t.rank == c->rank, "%s: dtype %d rank %d", c->path,
                  t.dtype, t.rank);
        for (int d = 0; d < c->rank; d++)
            CHECK(t.dims[d] == c->dims[d]);
        CHECK(((uintptr_t)t.data & 63) == 0);
        for (int k = 0; k < c->n_first; k++)
            CHECK_NEAR(elem_as_double(&t, k), c->first[k], 0);
        double sum = 0;
        int64_t n = qf_tensor_numel(&t);
        for (int64_t k = 0; k < n; k++)
            sum += elem_as_double(&t, k);
        qf_free_aligned(t.data);
        CHECK_NEAR(sum, c->sum, 1e-9 * (1 + fabs(c->sum)));
    }
    /* STRING tensors are reported, naming the tensor. */
    qf_tensor t;
    qf_err e;
    const char *sp =
        "/usr/share/libonnx-testdata/data/node/test_cast_FLOAT_to_STRING/test_data_set_0/"
        "output_0.pb";
    CHECK_EQ_INT(qf_onnx_read_tensor_file(sp, &t, &e), QF_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "tensor 'output' has data type STRING"), "%s", e.msg);
    CHECK(t.data == NULL);
}

static void decode_tensor_in_memory(void) {
    fx_release();
    /* rank 9 -> unsupported; rank 8 -> fine; uint32 from uint64_data */
    const int64_t d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    Onnx__TensorProto *tp = mk_tensor("big", 1, 9, d9);
    t_raw(tp, "1234", 4);
    size_t len = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *b = fx_mem(len);
    onnx__tensor_proto__pack(tp, b);
    qf_tensor t;
    qf_err e;
    CHECK_EQ_INT(qf_onnx_decode_tensor(b, len, "in.pb", &t, &e), QF_ERR_UNSUPPORTED);
    CHECK_MSG(strcmp(e.msg, "in.pb: tensor 'big' has 9 dimensions; qforge supports at most 8") == 0,
              "%s", e.msg);
    tp->n_dims = 8;
    len = onnx__tensor_proto__get_packed_size(tp);
    b = fx_mem(len);
    onnx__tensor_proto__pack(tp, b);
    CHECK_MSG(qf_onnx_decode_tensor(b, len, "in.pb", &t, &e) == QF_OK, "%s", e.msg);
    CHECK(t.rank == 8 && t.dtype == QF_DT_F32 && memcmp(t.data, "1234", 4) == 0);
    qf_free_aligned(t.data);
    tp = mk_tensor(NULL, 12, 1, D2);
    const uint64_t u[2] = {7, 4000000000u};
    T_TYPED(tp, uint64_data, u, 2);
    len = onnx__tensor_proto__get_packed_size(tp);
    b = fx_mem(len);
    onnx__tensor_proto__pack(tp, b);
    CHECK_MSG(qf_onnx_decode_tensor(b, len, "in.pb", &t, &e) == QF_OK, "%s", e.msg);
    CHECK(t.dtype == QF_DT_U32 && ((uint32_t *)t.data)[0] == 7);
    CHECK(((uint32_t *)t.data)[1] == 4000000000u);
    qf_free_aligned(t.data);
    /* zero elements: data still valid, nothing to read */
    const int64_t d0[2] = {0, 5};
    tp = mk_tensor(NULL, 1, 2, d0);
    len = onnx__tensor_proto__get_packed_size(tp);
    b = fx_mem(len);
    onnx__tensor_proto__pack(tp, b);
    CHECK_MSG(qf_onnx_decode_tensor(b, len, "in.pb", &t, &e) == QF_OK, "%s", e.msg);
    CHECK(t.data != NULL && qf_tensor_numel(&t) == 0);
    qf_free_aligned(t.data);
    fx_release();
}

/* node/test_conv_with_strides_padding/model.onnx (checked with onnx.load +
 * print(model)): opset 11, producer "backend-test", inputs x [1,1,7,5] and
 * W [1,1,3,3], output y [1,1,4,3], one Conv with kernel_shape [3,3],
 * pads [1,1,1,1], strides [2,2]. */
static void real_model_structure(void) {
    const char *path =
        "/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx";
    void *buf;
    size_t len;
    qf_err e;
    CHECK_MSG(qf_read_file(path, &buf, &len, &e) == QF_OK, "%s", e.msg);
    qf_graph *g;
    qf_status st = qf_onnx_build_graph(buf, len, path, NULL, &g, &e);
    qf_free(buf);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(g->opset == 11 && strcmp(g->producer, "backend-test") == 0);
    CHECK(strcmp(g->name, "test_conv_with_strides_padding") == 0);
    CHECK(g->n_inputs == 2 && g->n_outputs == 1 && g->n_nodes == 1);
    const qf_value *w = &g->values[g->inputs[1]];
    CHECK(strcmp(w->name, "W") == 0 && w->rank == 4 && w->dims[2] == 3 && w->dims[3] == 3);
    const qf_value *y = &g->values[g->outputs[0]];
    CHECK(y->rank == 4 && y->dims[2] == 4 && y->dims[3] == 3 && y->producer == 0);
    const qf_node *n = &g->nodes[0];
    CHECK(n->op == QF_OP_CONV && n->opset == 11);
    const int64_t *v;
    CHECK(qf_node_attr_ints(n, "kernel_shape", &v) == 2 && v[0] == 3 && v[1] == 3);
    CHECK(qf_node_attr_ints(n, "pads", &v) == 4 && v[0] == 1 && v[3] == 1);
    CHECK(qf_node_attr_ints(n, "strides", &v) == 2 && v[0] == 2 && v[1] == 2);
    qf_graph_free(g);

    /* The whole public path, op parsing included (Conv and Relu kernels). */
    st = qf_onnx_import_file(path, &g, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(g->n_nodes == 1 && g->nodes[0].op == QF_OP_CONV);
    qf_graph_free(g);
    st = qf_onnx_import_file(
        "/usr/share/libonnx-testdata/data/simple/test_single_relu_model/model.onnx", &g, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(g->n_nodes == 1 && g->nodes[0].op == QF_OP_RELU && g->opset == 9);
    CHECK(strcmp(g->nodes[0].name, "test") == 0 && g->n_inputs == 1);
    qf_graph_free(g);

    /* Only ai.onnx.preview.training imported (no default opset): legal, and
     * its op is reported as unsupported. */
    st = qf_onnx_import_file("/usr/share/libonnx-testdata/data/node/test_adagrad/model.onnx", &g,
                             &e);
    CHECK_EQ_INT(st, QF_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "unsupported op: ai.onnx.preview.training.Adagrad (1 node)"), "%s",
              e.msg);

    /* PyTorch's old exporter wrote opset 6 (checked with onnx.load). */
    st = qf_onnx_import_file(
        "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx", &g, &e);
    CHECK_EQ_INT(st, QF_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "test_Conv2d/model.onnx: ONNX opset 6 is not supported"), "%s", e.msg);
}

/* ---- models written by the onnx python package --------------------------- */
static void models_from_onnx_python(void) {
    char dir[] = "/tmp/qf_onnxpy_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/fixtures/make_onnx_fixtures.py %s", dir);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "fixture script failed (rc %d; run from the repository root)", rc);
    char path[128];
    snprintf(path, sizeof path, "%s/typed.onnx", dir);
    qf_graph *g;
    qf_err e;
    CHECK_MSG(qf_onnx_import_file(path, &g, &e) == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(g->n_nodes, 0);
    CHECK_EQ_INT(g->n_outputs, 9);
    const float *f32 = val(g, "f32")->data;
    CHECK(f32[0] == 0.5f && f32[1] == -4.0f);
    const int8_t *i8 = val(g, "i8")->data;
    CHECK(i8[0] == -7 && i8[1] == 0 && i8[2] == 127);
    const uint16_t *u16 = val(g, "u16")->data;
    CHECK(u16[0] == 65535 && u16[1] == 2);
    const int64_t *i64 = val(g, "i64")->data;
    CHECK(i64[0] == -9 && i64[1] == (int64_t)1 << 40);
    const uint8_t *bo = val(g, "b")->data;
    CHECK(val(g, "b")->dtype == QF_DT_BOOL && bo[0] == 1 && bo[1] == 0);
    const uint16_t *f16 = val(g, "f16")->data;
    CHECK(qf_f16_to_f32(f16[0]) == 1.0f && qf_f16_to_f32(f16[1]) == -0.5f);
    CHECK(*(const double *)val(g, "f64")->data == 0.25);
    CHECK(*(const uint32_t *)val(g, "u32")->data == 4000000000u);
    const qf_value *c = val(g, "c");
    CHECK(c->dtype == QF_DT_I32 && c->rank == 2 && c->dims[0] == 2 && c->dims[1] == 1);
    CHECK(((const int32_t *)c->data)[0] == 11 && ((const int32_t *)c->data)[1] == -12);
    qf_graph_free(g);

    snprintf(path, sizeof path, "%s/ext.onnx", dir);
    CHECK_MSG(qf_onnx_import_file(path, &g, &e) == QF_OK, "%s", e.msg);
    const qf_value *a = val(g, "a"), *b = val(g, "b");
    CHECK(a->rank == 2 && a->dims[0] == 2 && a->dims[1] == 3 && a->nbytes == 24);
    for (int i = 0; i < 6; i++)
        CHECK(((const float *)a->data)[i] == (float)i);
    CHECK(((const float *)b->data)[0] == -1.5f && ((const float *)b->data)[1] == 2.5f);
    qf_graph_free(g);
    remove_tree(dir);
}

/* ---- allocation failure at every step ------------------------------------ */
static long alloc_budget, alloc_count;

static void *failing_alloc(void *u, size_t n) {
    (void)u;
    if (alloc_count++ >= alloc_budget) return NULL;
    return malloc(n ? n : 1);
}
static void *failing_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (alloc_count++ >= alloc_budget) return NULL;
    return realloc(p, n ? n : 1);
}
static void plain_free(void *u, void *p) {
    (void)u;
    free(p);
}

static void allocation_failures(void) {
    fx_release();
    size_t len;
    uint8_t *model = rich_model(&len);
    qf_allocator a = {failing_alloc, failing_realloc, plain_free, NULL};
    long first_ok = -1, wrong_status = -1;
    qf_status bad_st = QF_OK;
    char bad_msg[QF_ERR_MSG_LEN] = "";
    for (alloc_budget = 0; alloc_budget < 100000 && first_ok < 0; alloc_budget++) {
        alloc_count = 0;
        qf_set_allocator(&a);
        qf_graph *g;
        qf_err e;
        qf_status st = qf_onnx_build_graph(model, len, "t.onnx", NULL, &g, &e);
        qf_graph_free(st ? NULL : g);
        qf_set_allocator(NULL);
        if (st == QF_OK) {
            first_ok = alloc_budget;
        } else if ((st != QF_ERR_NOMEM || g != NULL) && wrong_status < 0) {
            wrong_status = alloc_budget;
            bad_st = st;
            snprintf(bad_msg, sizeof bad_msg, "%s", e.msg);
        }
    }
    CHECK_MSG(wrong_status < 0, "budget %ld: status %d: %s", wrong_status, bad_st, bad_msg);
    CHECK(first_ok > 10);
    fx_release();
}

QT_MAIN(QT_CASE(initializer_dtypes_raw_and_typed), QT_CASE(initializer_listed_as_input_is_const),
        QT_CASE(real_model_initializers_and_unsupported_ops), QT_CASE(dynamic_dims_and_value_info),
        QT_CASE(constant_nodes_fold), QT_CASE(attributes_and_node_fields),
        QT_CASE(unsupported_ops_listed_at_once), QT_CASE(external_data),
        QT_CASE(bad_models_rejected), QT_CASE(empty_and_garbage_input), QT_CASE(truncated_prefixes),
        QT_CASE(bit_flips), QT_CASE(nesting_depth_limited), QT_CASE(tensor_files_from_testdata),
        QT_CASE(decode_tensor_in_memory), QT_CASE(real_model_structure),
        QT_CASE(models_from_onnx_python), QT_CASE(allocation_failures))
