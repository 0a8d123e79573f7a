/* test_onnx_export.c - io/onnx_export: qf_graph -> ONNX file.
 *
 * References outside the exporter:
 *  - ONNX's own test models (/usr/share/libonnx-testdata): every one that
 *    qforge imports is exported, re-imported and compared (structure,
 *    attributes, constant bytes), both graphs are run on test_data_set_0 and
 *    their outputs must be bit-identical; the exported files must pass
 *    python-onnx's checker;
 *  - python-onnx reading the hand-built export (attribute values, opsets,
 *    omitted inputs, int8 initializers, written in the script by hand);
 *  - ONNX Runtime (tests/node/ort_run.js) running an exported CNN generated
 *    at test time by onnx.helper, compared with qforge's output;
 *  - hand-computed outputs of a hand-built graph.
 * Errors: graph attributes, inconsistent graphs, bad options, unwritable
 * paths and allocation failure at every step leave no file behind.
 */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/data.h"
#include "io/onnx_export_internal.h"
#include "io/onnx_internal.h"
#include "qtest.h"
#include "runtime/runtime.h"

#define TESTDATA "/usr/share/libonnx-testdata/data"
#define PY "/usr/bin/python3"
#define ORT_RUN "tests/node/ort_run.js"
#define MAX_IO 64

/* ---- temp directory (removed at exit) ------------------------------------ */
static char tmp_root[512];

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_tree(p);
        else
            remove(p);
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup_tmp(void) {
    if (tmp_root[0] && !getenv("QF_KEEP_TMP")) rm_tree(tmp_root);
}

/* A fresh subdirectory of the test's temp dir. */
static const char *tmp_dir(const char *sub) {
    static char path[600];
    if (!tmp_root[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/qf_export_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_root)) {
            tmp_root[0] = 0;
            return NULL;
        }
        atexit(cleanup_tmp);
    }
    snprintf(path, sizeof path, "%s/%s", tmp_root, sub);
    rm_tree(path);
    if (mkdir(path, 0700) != 0) return NULL;
    return path;
}

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

/* Run a shell command with its output in `log`; on failure the end of the
 * log goes to stderr. Returns system()'s status. */
static int run_cmd(const char *cmd, const char *log) {
    char full[4096];
    snprintf(full, sizeof full, "%s > %s 2>&1", cmd, log);
    int rc = system(full);
    FILE *f = rc != 0 ? fopen(log, "r") : NULL;
    if (f) {
        char tail[2048];
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, n > (long)sizeof tail - 1 ? n - (long)sizeof tail + 1 : 0, SEEK_SET);
        size_t got = fread(tail, 1, sizeof tail - 1, f);
        tail[got] = 0;
        fclose(f);
        fprintf(stderr, "%s\n", tail);
    }
    return rc;
}

/* ---- graph comparison ------------------------------------------------------ */
static bool same_dims(int ra, const int64_t *a, int rb, const int64_t *b) {
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static size_t tensor_bytes(const qf_tensor *t) {
    int64_t n = qf_tensor_numel(t);
    return n < 0 ? 0 : (size_t)n * qf_dtype_size(t->dtype);
}

static bool same_attr(const qf_attr *a, const qf_attr *b) {
    if (strcmp(a->name, b->name) || a->type != b->type) return false;
    switch (a->type) {
    case QF_ATTR_INT: return a->i == b->i;
    case QF_ATTR_FLOAT: return memcmp(&a->f, &b->f, sizeof a->f) == 0;
    case QF_ATTR_STRING: return strcmp(a->s, b->s) == 0;
    case QF_ATTR_INTS:
        return a->n == b->n && (a->n == 0 || !memcmp(a->ints, b->ints, (size_t)a->n * 8));
    case QF_ATTR_FLOATS:
        return a->n == b->n && (a->n == 0 || !memcmp(a->floats, b->floats, (size_t)a->n * 4));
    case QF_ATTR_STRINGS:
        if (a->n != b->n) return false;
        for (int i = 0; i < a->n; i++)
            if (strcmp(a->strings[i], b->strings[i])) return false;
        return true;
    case QF_ATTR_TENSOR:
        return a->t.dtype == b->t.dtype && same_dims(a->t.rank, a->t.dims, b->t.rank, b->t.dims) &&
               !memcmp(a->t.data, b->t.data, tensor_bytes(&a->t));
    default: return true;
    }
}

static bool same_value(const qf_graph *ga, int va, const qf_graph *gb, int vb, bool names,
                       char *why, size_t len) {
    if (va < 0 || vb < 0) {
        if (va != vb) snprintf(why, len, "omitted input/output differs (%d vs %d)", va, vb);
        return va == vb;
    }
    const qf_value *a = &ga->values[va], *b = &gb->values[vb];
    if (names && strcmp(a->name, b->name)) {
        snprintf(why, len, "value '%s' came back as '%s'", a->name, b->name);
        return false;
    }
    bool ca = a->flags & QF_VAL_CONST, cb = b->flags & QF_VAL_CONST;
    if (ca != cb) {
        snprintf(why, len, "value '%s': constant %d vs %d", a->name, ca, cb);
        return false;
    }
    if (ca && (a->dtype != b->dtype || !same_dims(a->rank, a->dims, b->rank, b->dims) ||
               a->nbytes != b->nbytes || (a->nbytes && memcmp(a->data, b->data, a->nbytes)))) {
        snprintf(why, len, "constant '%s' differs", a->name);
        return false;
    }
    return true;
}

/* Same nodes (order, names, op types, domains, attributes, wiring) and the
 * same inputs, outputs and constants. */
static bool same_graph(const qf_graph *a, const qf_graph *b, bool names, char *why, size_t len) {
    if (a->n_nodes != b->n_nodes || a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs) {
        snprintf(why, len, "counts: nodes %d/%d inputs %d/%d outputs %d/%d", a->n_nodes, b->n_nodes,
                 a->n_inputs, b->n_inputs, a->n_outputs, b->n_outputs);
        return false;
    }
    for (int i = 0; i < a->n_inputs; i++) {
        const qf_value *x = &a->values[a->inputs[i]], *y = &b->values[b->inputs[i]];
        if (!same_value(a, a->inputs[i], b, b->inputs[i], names, why, len)) return false;
        if (x->dtype != y->dtype || !same_dims(x->rank, x->dims, y->rank, y->dims)) {
            snprintf(why, len, "input '%s' type differs", x->name);
            return false;
        }
    }
    for (int i = 0; i < a->n_outputs; i++)
        if (!same_value(a, a->outputs[i], b, b->outputs[i], names, why, len)) return false;
    for (int k = 0; k < a->n_nodes; k++) {
        const qf_node *x = &a->nodes[k], *y = &b->nodes[k];
        if (strcmp(x->op_type, y->op_type) || strcmp(x->domain, y->domain) ||
            strcmp(x->name, y->name) || x->n_inputs != y->n_inputs ||
            x->n_outputs != y->n_outputs || x->n_attrs != y->n_attrs) {
            snprintf(why, len, "node %d: '%s' (%s) vs '%s' (%s)", k, x->name, x->op_type, y->name,
                     y->op_type);
            return false;
        }
        for (int i = 0; i < x->n_inputs; i++)
            if (!same_value(a, x->inputs[i], b, y->inputs[i], names, why, len)) return false;
        for (int i = 0; i < x->n_outputs; i++)
            if (!same_value(a, x->outputs[i], b, y->outputs[i], names, why, len)) return false;
        for (int i = 0; i < x->n_attrs; i++)
            if (!same_attr(&x->attrs[i], &y->attrs[i])) {
                snprintf(why, len, "node '%s' attribute '%s' differs", x->name, x->attrs[i].name);
                return false;
            }
    }
    return true;
}

/* ---- running ---------------------------------------------------------------- */
typedef struct run_out {
    int n;
    qf_tensor t[MAX_IO];
    void *data[MAX_IO]; /* copies */
} run_out;

static void run_out_free(run_out *r) {
    for (int i = 0; i < r->n; i++)
        free(r->data[i]);
    r->n = 0;
}

/* Run model m once on inputs; copies the outputs. */
static qf_status run_model(const qf_model *m, const qf_tensor *in, int n_in, run_out *r,
                           qf_err *e) {
    memset(r, 0, sizeof *r);
    int n_out = qf_model_num_outputs(m);
    if (n_out > MAX_IO) return QF_ERR_UNSUPPORTED;
    qf_session *s;
    qf_status st = qf_session_create(m, NULL, &s, e);
    if (st) return st;
    qf_tensor got[MAX_IO];
    memset(got, 0, sizeof got);
    st = qf_session_run(s, in, n_in, got, n_out, e);
    for (int i = 0; !st && i < n_out; i++) {
        size_t nb = tensor_bytes(&got[i]);
        r->t[i] = got[i];
        r->data[i] = malloc(nb ? nb : 1);
        if (nb) memcpy(r->data[i], got[i].data, nb);
        r->t[i].data = r->data[i];
        r->n = i + 1;
    }
    qf_session_free(s);
    return st;
}

static bool same_outputs(const run_out *a, const run_out *b, char *why, size_t len) {
    if (a->n != b->n) {
        snprintf(why, len, "%d vs %d outputs", a->n, b->n);
        return false;
    }
    for (int i = 0; i < a->n; i++) {
        const qf_tensor *x = &a->t[i], *y = &b->t[i];
        if (x->dtype != y->dtype || !same_dims(x->rank, x->dims, y->rank, y->dims) ||
            memcmp(x->data, y->data, tensor_bytes(x))) {
            snprintf(why, len, "output %d differs", i);
            return false;
        }
    }
    return true;
}

/* ---- round trip of ONNX's test models ----------------------------------------- */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct rt_stats {
    int imported, exported, ran, checked_files;
} rt_stats;

/* Inputs of test_data_set_0, in file order (which is the model's input order). */
static int read_inputs(const char *dir, qf_tensor *in) {
    int n = 0;
    for (; n < MAX_IO; n++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/test_data_set_0/input_%d.pb", dir, n);
        if (!file_exists(p)) break;
        qf_err e;
        if (qf_onnx_read_tensor_file(p, &in[n], &e)) break;
    }
    return n;
}

/* One test directory: false + why on a failure; *skip when qforge does not
 * import the model (nothing to compare). */
static bool roundtrip_one(const char *dir, const char *name, const char *out_dir, FILE *list,
                          rt_stats *s, char *why, size_t len) {
    char model[1100], exported[1100];
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    snprintf(exported, sizeof exported, "%s/%s.onnx", out_dir, name);
    qf_graph *g1 = NULL, *g2 = NULL;
    qf_err e;
    if (qf_onnx_import_file(model, &g1, &e)) return true; /* unsupported: not ours */
    s->imported++;
    int opset = g1->opset;
    qf_status st = qf_onnx_export(g1, exported, NULL, &e);
    if (st) {
        snprintf(why, len, "export: %s", e.msg);
        qf_graph_free(g1);
        return false;
    }
    s->exported++;
    if (qf_onnx_import_file(exported, &g2, &e)) {
        snprintf(why, len, "re-import: %s", e.msg);
        qf_graph_free(g1);
        return false;
    }
    bool ok = same_graph(g1, g2, true, why, len);
    if (ok && g1->opset != g2->opset) {
        snprintf(why, len, "opset %d vs %d", g1->opset, g2->opset);
        ok = false;
    }
    qf_model *m1 = NULL, *m2 = NULL;
    if (qf_model_from_graph(g1, model, &m1, &e) || qf_model_from_graph(g2, exported, &m2, &e)) {
        snprintf(why, len, "model: %s", e.msg);
        ok = false;
    }
    /* onnx 1.12's checker knows opsets up to 17. */
    if (ok && list && opset <= 17) {
        fprintf(list, "%s\n", exported);
        s->checked_files++;
    }
    qf_tensor in[MAX_IO];
    int n_in = ok ? read_inputs(dir, in) : 0;
    if (ok && n_in == qf_model_num_inputs(m1)) {
        run_out r1, r2;
        qf_err e1, e2;
        if (run_model(m1, in, n_in, &r1, &e1) == QF_OK) {
            if (run_model(m2, in, n_in, &r2, &e2) != QF_OK) {
                snprintf(why, len, "exported model does not run: %s", e2.msg);
                ok = false;
            } else {
                ok = same_outputs(&r1, &r2, why, len);
                s->ran += ok;
            }
            run_out_free(&r2);
        }
        run_out_free(&r1);
    }
    for (int i = 0; i < n_in; i++)
        qf_free_aligned(in[i].data);
    if (!m1) qf_graph_free(g1);
    if (!m2) qf_graph_free(g2);
    qf_model_free(m1);
    qf_model_free(m2);
    return ok;
}

static const char checker_py[] =
    "import sys, onnx\n"
    "paths = [l.strip() for l in open(sys.argv[1]) if l.strip()]\n"
    "bad = 0\n"
    "for p in paths:\n"
    "    try:\n"
    "        onnx.checker.check_model(onnx.load(p))\n"
    "    except Exception as e:\n"
    "        bad += 1\n"
    "        print('CHECKER FAIL', p, str(e).strip().splitlines()[:1])\n"
    "print('checked', len(paths), 'bad', bad)\n"
    "sys.exit(1 if bad or not paths else 0)\n";

/* Export every model of ONNX's data/<sub> that qforge imports. */
static void roundtrip_dir(const char *sub, int min_ran) {
    char root[256];
    snprintf(root, sizeof root, "%s/%s", TESTDATA, sub);
    DIR *d = opendir(root);
    CHECK_MSG(d != NULL, "%s: not found (install libonnx-testdata)", root);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "test_", 5)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, (size_t)cap * sizeof *names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    const char *out_dir = tmp_dir(sub);
    char list_path[700];
    snprintf(list_path, sizeof list_path, "%s/list.txt", out_dir ? out_dir : ".");
    FILE *list = out_dir ? fopen(list_path, "w") : NULL;
    rt_stats s = {0};
    int failed = 0;
    for (int i = 0; out_dir && i < n; i++) {
        char dir[600], why[700] = "";
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        if (!roundtrip_one(dir, names[i], out_dir, list, &s, why, sizeof why)) {
            fprintf(stderr, "  %s/%s: %s\n", sub, names[i], why);
            failed++;
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (list) fclose(list);
    printf("  %s: %d imported, %d exported, %d ran bit-identical, %d failed\n", sub, s.imported,
           s.exported, s.ran, failed);
    CHECK(out_dir && list);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(s.exported, s.imported);
    CHECK_MSG(s.ran >= min_ran, "only %d models ran (expected >= %d)", s.ran, min_ran);
    /* Independent validation: python-onnx's checker on every exported file. */
    char script[700], cmd[2200], log[700];
    snprintf(script, sizeof script, "%s/check.py", out_dir);
    snprintf(log, sizeof log, "%s/checker.log", out_dir);
    CHECK(write_text(script, checker_py));
    snprintf(cmd, sizeof cmd, PY " %s %s", script, list_path);
    int rc = run_cmd(cmd, log);
    CHECK_MSG(rc == 0, "onnx.checker rejected exported models (%d files listed)", s.checked_files);
    CHECK(s.checked_files >= min_ran / 2);
}

static void roundtrip_node_tests(void) { roundtrip_dir("node", 150); }
/* Most of these are opset 6, below what qforge imports: few take part. */
static void roundtrip_pytorch_converted(void) { roundtrip_dir("pytorch-converted", 2); }
static void roundtrip_simple(void) { roundtrip_dir("simple", 1); }

/* ---- hand-built graphs ---------------------------------------------------------- */
static int add_const(qf_graph *g, const char *name, qf_dtype dt, int rank, const int64_t *dims,
                     const void *data) {
    int v = qf_graph_add_value(g, name, dt, rank, dims);
    qf_tensor t = {.dtype = dt, .rank = rank, .data = (void *)(uintptr_t)data};
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    qf_err e;
    if (v < 0 || qf_graph_set_const(g, v, &t, &e)) return -1;
    return v;
}

static const int8_t k_wq[6] = {-128, -1, 0, 1, 64, 127};
static const float k_x[6] = {1, 2, 3, 4, 5, 6};

/* x[N,3] + DequantizeLinear(int8 wq[2,3], 0.5, zp 1) -> s (no name);
 * Clip(s, <omitted min>, 10) -> "y"; Relu(s) -> also named "y". */
static qf_graph *runnable_graph(void) {
    qf_graph *g = qf_graph_create();
    int64_t xd[2] = {-1, 3}, wd[2] = {2, 3};
    float scale = 0.5f, maxv = 10.0f;
    int8_t zp = 1;
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 2, xd);
    qf_graph_add_input(g, x);
    int wq = add_const(g, "wq", QF_DT_I8, 2, wd, k_wq);
    int sc = add_const(g, "scale", QF_DT_F32, 0, NULL, &scale);
    int z = add_const(g, "zp", QF_DT_I8, 0, NULL, &zp);
    int mx = add_const(g, "maxv", QF_DT_F32, 0, NULL, &maxv);
    int w = qf_graph_add_value(g, "w", QF_DT_F32, 2, wd);
    int s = qf_graph_add_value(g, "", QF_DT_F32, 2, xd);
    int y1 = qf_graph_add_value(g, "y", QF_DT_F32, 2, xd);
    int y2 = qf_graph_add_value(g, "y", QF_DT_F32, 2, xd);
    int dq_in[3] = {wq, sc, z}, add_in[2] = {x, w}, clip_in[3] = {s, -1, mx};
    qf_graph_add_node(g, "dq", "DequantizeLinear", "", 13, dq_in, 3, &w, 1, NULL, 0);
    qf_graph_add_node(g, "add", "Add", "", 13, add_in, 2, &s, 1, NULL, 0);
    qf_graph_add_node(g, "clip", "Clip", "", 13, clip_in, 3, &y1, 1, NULL, 0);
    qf_graph_add_node(g, "relu", "Relu", "", 13, &s, 1, &y2, 1, NULL, 0);
    qf_graph_add_output(g, y1);
    qf_graph_add_output(g, y2);
    g->opset = 13;
    qf_err e;
    if (qf_graph_toposort(g, &e) || qf_graph_parse_ops(g, &e)) {
        fprintf(stderr, "runnable_graph: %s\n", e.msg);
        qf_graph_free(g);
        return NULL;
    }
    return g;
}

static const int64_t k_ints[3] = {1, -2, 3};
static const float k_floats[2] = {0.5f, -1.5f};
static const char *const k_strings[2] = {"a", "bc"};
static const int8_t k_tattr[4] = {-3, 0, 7, 127};

/* x -> qforge::AttrBag (one attribute of each exportable type) -> y -> Relu -> z. */
static qf_graph *custom_graph(bool with_graph_attr) {
    qf_graph *g = qf_graph_create();
    int64_t d[2] = {2, 2};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 2, d);
    int y = qf_graph_add_value(g, "y", QF_DT_F32, 2, d);
    int z = qf_graph_add_value(g, "z", QF_DT_F32, 2, d);
    int q = add_const(g, "q8", QF_DT_I8, 2, d, k_tattr);
    qf_graph_add_input(g, x);
    qf_attr a[8];
    memset(a, 0, sizeof a);
    a[0] = (qf_attr){.name = "i", .type = QF_ATTR_INT, .i = -7};
    a[1] = (qf_attr){.name = "f", .type = QF_ATTR_FLOAT, .f = 0.25f};
    a[2] = (qf_attr){.name = "s", .type = QF_ATTR_STRING, .s = "hello"};
    a[3] = (qf_attr){.name = "ints", .type = QF_ATTR_INTS, .ints = (int64_t *)k_ints, .n = 3};
    a[4] = (qf_attr){.name = "floats", .type = QF_ATTR_FLOATS, .floats = (float *)k_floats, .n = 2};
    a[5] = (qf_attr){
        .name = "strings", .type = QF_ATTR_STRINGS, .strings = (const char **)k_strings, .n = 2};
    a[6] = (qf_attr){.name = "t",
                     .type = QF_ATTR_TENSOR,
                     .t = {.dtype = QF_DT_I8, .rank = 2, .dims = {2, 2}, .data = (void *)k_tattr}};
    a[7] = (qf_attr){.name = "body", .type = QF_ATTR_GRAPH};
    int ins[3] = {x, -1, q};
    qf_graph_add_node(g, "bag", "AttrBag", "qforge", 1, ins, 3, &y, 1, a, with_graph_attr ? 8 : 7);
    qf_graph_add_node(g, "relu", "Relu", "", 13, &y, 1, &z, 1, NULL, 0);
    qf_graph_add_output(g, z);
    g->opset = 13;
    qf_err e;
    if (qf_graph_toposort(g, &e)) {
        qf_graph_free(g);
        return NULL;
    }
    return g;
}

static Onnx__ModelProto *unpack_file(const char *path) {
    void *buf;
    size_t len;
    qf_err e;
    if (qf_read_file(path, &buf, &len, &e)) return NULL;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    qf_free(buf);
    return m;
}

static void handbuilt_runs_and_matches_hand_values(void) {
    const char *dir = tmp_dir("runnable");
    CHECK(dir);
    char path[700];
    snprintf(path, sizeof path, "%s/r.onnx", dir);
    qf_graph *g1 = runnable_graph();
    CHECK(g1);
    qf_err e;
    qf_status st = qf_onnx_export(g1, path, NULL, &e);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    qf_graph *g2 = NULL;
    st = qf_onnx_import_file(path, &g2, &e);
    if (st) qf_graph_free(g1);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    char why[256] = "";
    bool same = same_graph(g1, g2, false, why, sizeof why);
    /* The nameless value and the second "y" got fresh, distinct names. */
    const qf_node *add = &g2->nodes[1], *relu = &g2->nodes[3];
    bool names_ok = strcmp(g2->values[add->outputs[0]].name, "qf_value_6") == 0 &&
                    strcmp(g2->values[g2->outputs[0]].name, "y") == 0 &&
                    strcmp(g2->values[g2->outputs[1]].name, "y_1") == 0 &&
                    relu->outputs[0] == g2->outputs[1] && g2->nodes[2].inputs[1] == -1 &&
                    g2->values[g2->inputs[0]].dims[0] == -1;
    qf_model *m1, *m2;
    qf_model_from_graph(g1, "r", &m1, &e);
    qf_model_from_graph(g2, path, &m2, &e);
    qf_tensor in = {.dtype = QF_DT_F32, .rank = 2, .dims = {2, 3}, .data = (void *)k_x};
    run_out r1, r2;
    qf_status s1 = run_model(m1, &in, 1, &r1, &e);
    qf_status s2 = run_model(m2, &in, 1, &r2, &e);
    bool bit_same = !s1 && !s2 && same_outputs(&r1, &r2, why, sizeof why);
    /* Hand values: w = (q - 1) * 0.5, s = x + w; y = min(s, 10); relu(s). */
    static const float want_y[6] = {-63.5f, 1, 2.5f, 4, 10, 10};
    static const float want_r[6] = {0, 1, 2.5f, 4, 36.5f, 69};
    bool values_ok = bit_same && r2.n == 2;
    for (int i = 0; values_ok && i < 6; i++)
        values_ok =
            ((float *)r2.t[0].data)[i] == want_y[i] && ((float *)r2.t[1].data)[i] == want_r[i];
    run_out_free(&r1);
    run_out_free(&r2);
    qf_model_free(m1);
    qf_model_free(m2);
    CHECK_MSG(same, "%s", why);
    CHECK(names_ok);
    CHECK_MSG(s1 == QF_OK && s2 == QF_OK, "%s", e.msg);
    CHECK_MSG(bit_same, "%s", why);
    CHECK(values_ok);
}

static const char *attr_of(const Onnx__NodeProto *n, const char *name, int *type) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) {
            *type = n->attribute[i]->type;
            return name;
        }
    return NULL;
}

/* Export-only graph with a custom-domain node: every attribute type, an
 * omitted input, an int8 initializer; checked in the proto and re-imported
 * without op parsing (AttrBag is not an op qforge knows). */
static void custom_domain_every_attr_type(void) {
    const char *dir = tmp_dir("custom");
    CHECK(dir);
    char path[700];
    snprintf(path, sizeof path, "%s/c.onnx", dir);
    qf_graph *g1 = custom_graph(false);
    CHECK(g1);
    qf_err e;
    qf_status st = qf_onnx_export(g1, path, NULL, &e);
    if (st) qf_graph_free(g1);
    CHECK_MSG(st == QF_OK, "%s", e.msg);

    Onnx__ModelProto *m = unpack_file(path);
    bool proto_ok =
        m && m->ir_version == 8 && !strcmp(m->producer_name, "qforge") && m->n_opset_import == 2 &&
        !strcmp(m->opset_import[0]->domain, "") && m->opset_import[0]->version == 13 &&
        !strcmp(m->opset_import[1]->domain, "qforge") && m->opset_import[1]->version == 1 &&
        m->graph->n_node == 2 && m->graph->n_initializer == 1 && m->graph->n_input == 1;
    int ty = -1;
    if (proto_ok) {
        const Onnx__NodeProto *n = m->graph->node[0];
        proto_ok = !strcmp(n->domain, "qforge") && n->n_input == 3 && !strcmp(n->input[1], "") &&
                   attr_of(n, "t", &ty) && ty == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR &&
                   attr_of(n, "strings", &ty) &&
                   ty == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
        const Onnx__TensorProto *q = m->graph->initializer[0];
        proto_ok = proto_ok && q->data_type == 3 && q->raw_data.len == 4 &&
                   !memcmp(q->raw_data.data, k_tattr, 4);
    }
    if (m) onnx__model_proto__free_unpacked(m, NULL);

    void *buf;
    size_t len;
    qf_graph *g2 = NULL;
    char why[256] = "";
    bool same = false;
    if (qf_read_file(path, &buf, &len, &e) == QF_OK) {
        if (qf_onnx_build_graph(buf, len, path, dir, &g2, &e) == QF_OK)
            same = same_graph(g1, g2, true, why, sizeof why) && g2->nodes[0].opset == 1;
        qf_free(buf);
    }
    qf_graph_free(g1);
    qf_graph_free(g2);
    CHECK(proto_ok);
    CHECK_MSG(same, "%s %s", why, e.msg);
}

static void batch_dim_symbolic_or_unset(void) {
    qf_graph *g = runnable_graph();
    CHECK(g);
    qf_onnx_export_options o;
    void *buf[2] = {NULL, NULL};
    size_t len[2];
    qf_err e;
    qf_onnx_export_options_init(&o);
    qf_status s0 = qf_onnx_export_mem(g, &o, &buf[0], &len[0], &e);
    o.symbolic_batch = false;
    o.opset = 15;
    o.producer_name = "tester";
    qf_status s1 = qf_onnx_export_mem(g, &o, &buf[1], &len[1], &e);
    qf_graph_free(g);
    Onnx__ModelProto *m[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        if (buf[i]) m[i] = onnx__model_proto__unpack(NULL, len[i], buf[i]);
    bool ok = !s0 && !s1 && m[0] && m[1];
    if (ok) {
        const Onnx__TensorShapeProto *a = m[0]->graph->input[0]->type->tensor_type->shape;
        const Onnx__TensorShapeProto *b = m[1]->graph->output[1]->type->tensor_type->shape;
        ok = a->n_dim == 2 &&
             a->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
             !strcmp(a->dim[0]->dim_param, "N") &&
             a->dim[1]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
             a->dim[1]->dim_value == 3 && b->n_dim == 2 &&
             b->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET &&
             m[1]->opset_import[0]->version == 15 && m[1]->ir_version == 8 &&
             !strcmp(m[1]->producer_name, "tester") &&
             /* value_info: "w" and the renamed nameless value */
             m[0]->graph->n_value_info == 2;
    }
    for (int i = 0; i < 2; i++) {
        if (m[i]) onnx__model_proto__free_unpacked(m[i], NULL);
        qf_free(buf[i]);
    }
    CHECK_MSG(!s0 && !s1, "%s", e.msg);
    CHECK(ok);
}

/* Nodes listed consumer first come out producer first; a sorted list keeps
 * its order (the round trips above compare node by node). */
static void unsorted_nodes_come_out_sorted(void) {
    qf_graph *g = qf_graph_create();
    int64_t d[1] = {4};
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 1, d);
    int a = qf_graph_add_value(g, "a", QF_DT_F32, 1, d);
    int b = qf_graph_add_value(g, "b", QF_DT_F32, 1, d);
    int c = qf_graph_add_value(g, "c", QF_DT_F32, 1, d);
    int ab[2] = {a, b};
    qf_graph_add_node(g, "last", "Add", "", 13, ab, 2, &c, 1, NULL, 0);
    qf_graph_add_node(g, "second", "Neg", "", 13, &a, 1, &b, 1, NULL, 0);
    qf_graph_add_node(g, "first", "Relu", "", 13, &x, 1, &a, 1, NULL, 0);
    qf_graph_add_input(g, x);
    qf_graph_add_output(g, c);
    void *buf = NULL;
    size_t len;
    qf_err e;
    qf_status st = qf_onnx_export_mem(g, NULL, &buf, &len, &e);
    qf_graph_free(g);
    Onnx__ModelProto *m = buf ? onnx__model_proto__unpack(NULL, len, buf) : NULL;
    bool ok = m && m->graph->n_node == 3 && !strcmp(m->graph->node[0]->name, "first") &&
              !strcmp(m->graph->node[1]->name, "second") &&
              !strcmp(m->graph->node[2]->name, "last") && m->graph->n_initializer == 0 &&
              m->ir_version == 8 && m->opset_import[0]->version == 13;
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    qf_free(buf);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(ok);
}

/* ONNX's release table: opset -> IR version. */
static void ir_version_table(void) {
    static const struct {
        int opset;
        int64_t ir;
    } cases[] = {{13, 8}, {14, 8}, {16, 8},  {17, 8},  {18, 8},
                 {19, 9}, {20, 9}, {21, 10}, {22, 10}, {23, 11}};
    qf_graph *g = runnable_graph();
    CHECK(g);
    int bad = -1;
    for (size_t i = 0; i < QF_ARRAY_LEN(cases) && bad < 0; i++) {
        qf_onnx_export_options o;
        qf_onnx_export_options_init(&o);
        o.opset = cases[i].opset;
        void *buf = NULL;
        size_t len;
        qf_err e;
        Onnx__ModelProto *m = NULL;
        if (!qf_onnx_export_mem(g, &o, &buf, &len, &e))
            m = onnx__model_proto__unpack(NULL, len, buf);
        if (!m || m->ir_version != cases[i].ir) bad = (int)i;
        if (m) onnx__model_proto__free_unpacked(m, NULL);
        qf_free(buf);
    }
    /* Beyond the table: needs an explicit ir_version. */
    qf_onnx_export_options o;
    qf_onnx_export_options_init(&o);
    o.opset = 24;
    void *buf = NULL;
    size_t len;
    qf_err e;
    qf_status st24 = qf_onnx_export_mem(g, &o, &buf, &len, &e);
    o.ir_version = 12;
    qf_status st24b = qf_onnx_export_mem(g, &o, &buf, &len, &e);
    qf_free(buf);
    qf_graph_free(g);
    CHECK_MSG(bad < 0, "case %d", bad);
    CHECK_EQ_INT(st24, QF_ERR_UNSUPPORTED);
    CHECK_EQ_INT(st24b, QF_OK);
}

/* ---- external data ------------------------------------------------------------------ */
static void external_data_roundtrip(void) {
    const char *dir = tmp_dir("external");
    CHECK(dir);
    qf_graph *g = qf_graph_create();
    int64_t xd[2] = {1, 300}, wd[2] = {300, 300}, bd[1] = {300};
    float *w = malloc(300 * 300 * sizeof *w), b[300];
    for (int i = 0; i < 300 * 300; i++)
        w[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < 300; i++)
        b[i] = (float)i / 100.0f;
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 2, xd);
    int wv = add_const(g, "w", QF_DT_F32, 2, wd, w);
    int bv = add_const(g, "b", QF_DT_F32, 1, bd, b);
    int y = qf_graph_add_value(g, "y", QF_DT_F32, 2, xd);
    int ins[3] = {x, wv, bv};
    qf_graph_add_node(g, "fc", "Gemm", "", 13, ins, 3, &y, 1, NULL, 0);
    qf_graph_add_input(g, x);
    qf_graph_add_output(g, y);
    g->opset = 13;
    free(w);
    char path[700], data[720], path2[700], data2[720];
    snprintf(path, sizeof path, "%s/ext.onnx", dir);
    snprintf(data, sizeof data, "%s.data", path);
    snprintf(path2, sizeof path2, "%s/auto.onnx", dir);
    snprintf(data2, sizeof data2, "%s.data", path2);
    qf_onnx_export_options o;
    qf_onnx_export_options_init(&o);
    o.external_threshold = 1024; /* w (360000 bytes) goes, b (1200) goes too */
    qf_err e;
    qf_status st = qf_onnx_export(g, path, &o, &e);
    /* Size-driven spill: only the big tensor has to leave. */
    qf_onnx_export_options o2;
    qf_onnx_export_options_init(&o2);
    o2.max_model_bytes = 100000;
    qf_status st2 = qf_onnx_export(g, path2, &o2, &e);
    /* In memory there is nowhere to put external data. */
    void *buf = NULL;
    size_t len;
    qf_status st3 = qf_onnx_export_mem(g, &o, &buf, &len, &e);
    qf_free(buf);

    struct stat sm, sd, sm2, sd2;
    bool sizes = !stat(path, &sm) && !stat(data, &sd) && !stat(path2, &sm2) && !stat(data2, &sd2);
    Onnx__ModelProto *m = unpack_file(path2);
    bool spill_ok =
        m && m->graph->n_initializer == 2 && m->graph->initializer[0]->data_location == 1 &&
        m->graph->initializer[1]->has_raw_data && m->graph->initializer[1]->raw_data.len == 1200;
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    qf_graph *g2 = NULL, *g3 = NULL;
    char why[256] = "";
    bool same =
        qf_onnx_import_file(path, &g2, &e) == QF_OK && same_graph(g, g2, true, why, sizeof why) &&
        qf_onnx_import_file(path2, &g3, &e) == QF_OK && same_graph(g, g3, true, why, sizeof why);
    qf_graph_free(g);
    qf_graph_free(g2);
    qf_graph_free(g3);
    CHECK_MSG(st == QF_OK && st2 == QF_OK, "%s", e.msg);
    CHECK_EQ_INT(st3, QF_ERR_UNSUPPORTED);
    CHECK(sizes);
    CHECK(sm.st_size < 2000);
    /* w at 0, b at the next 64-byte boundary after 360000 bytes. */
    CHECK_EQ_INT(sd.st_size, 360000 + 1200);
    CHECK_EQ_INT(sd2.st_size, 360000);
    CHECK(spill_ok);
    CHECK_MSG(same, "%s %s", why, e.msg);
}

/* ---- errors ---------------------------------------------------------------------------- */
static void errors_leave_no_file(void) {
    const char *dir = tmp_dir("errors");
    CHECK(dir);
    char path[700], missing[700], subdir[700], msg[QF_ERR_MSG_LEN] = "";
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.onnx", dir);
    snprintf(subdir, sizeof subdir, "%s/isdir", dir);
    CHECK(mkdir(subdir, 0700) == 0);
    qf_err e;
    qf_graph *gg = custom_graph(true);
    CHECK(gg);
    qf_status s_graph = qf_onnx_export(gg, path, NULL, &e);
    snprintf(msg, sizeof msg, "%s", e.msg);
    qf_graph_free(gg);
    CHECK_EQ_INT(s_graph, QF_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(msg, "'bag'") && strstr(msg, "'body'"), "%s", msg);

    qf_graph *g = runnable_graph();
    CHECK(g);
    qf_status s_missing = qf_onnx_export(g, missing, NULL, &e);
    qf_status s_dir = qf_onnx_export(g, subdir, NULL, &e); /* rename onto a directory */
    qf_onnx_export_options o;
    qf_onnx_export_options_init(&o);
    o.opset = 11; /* below the nodes' 13 */
    qf_status s_opset = qf_onnx_export(g, path, &o, &e);
    bool opset_msg = strstr(e.msg, "'dq'") != NULL;
    o.opset = 0;
    o.ir_version = 2;
    qf_status s_ir = qf_onnx_export(g, path, &o, &e);
    /* A constant whose byte count disagrees with its shape. */
    size_t saved = g->values[1].nbytes;
    g->values[1].nbytes = 5;
    qf_status s_bytes = qf_onnx_export(g, path, NULL, &e);
    bool bytes_msg = strstr(e.msg, "'wq'") != NULL;
    g->values[1].nbytes = saved;
    /* Output without a dtype. */
    qf_dtype dsaved = g->values[g->outputs[0]].dtype;
    g->values[g->outputs[0]].dtype = QF_DT_UNDEF;
    qf_status s_dtype = qf_onnx_export(g, path, NULL, &e);
    g->values[g->outputs[0]].dtype = dsaved;
    /* Two producers of one value, then a cycle (add reads relu's output). */
    int saved_out = g->nodes[3].outputs[0];
    g->nodes[3].outputs[0] = g->nodes[2].outputs[0];
    qf_status s_twice = qf_onnx_export(g, path, NULL, &e);
    g->nodes[3].outputs[0] = saved_out;
    int saved_in = g->nodes[1].inputs[0];
    g->nodes[1].inputs[0] = g->nodes[3].outputs[0];
    qf_status s_cycle = qf_onnx_export(g, path, NULL, &e);
    g->nodes[1].inputs[0] = saved_in;
    /* An index beyond the value table. */
    g->nodes[0].inputs[0] = 999;
    qf_status s_index = qf_onnx_export(g, path, NULL, &e);
    qf_graph_free(g);

    CHECK_EQ_INT(s_missing, QF_ERR_IO);
    CHECK_EQ_INT(s_dir, QF_ERR_IO);
    CHECK_EQ_INT(s_opset, QF_ERR_INVALID_ARG);
    CHECK(opset_msg);
    CHECK_EQ_INT(s_ir, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(s_bytes, QF_ERR_FORMAT);
    CHECK(bytes_msg);
    CHECK_EQ_INT(s_dtype, QF_ERR_INVALID_ARG);
    CHECK_EQ_INT(s_twice, QF_ERR_FORMAT);
    CHECK_EQ_INT(s_cycle, QF_ERR_FORMAT);
    CHECK_EQ_INT(s_index, QF_ERR_INVALID_ARG);
    /* Only the directory made above; no model, no temp file. */
    CHECK_EQ_INT(count_entries(dir), 1);
    CHECK_EQ_INT(count_entries(subdir), 0);
}

/* Allocation failure at every step: QF_ERR_NOMEM, nothing leaks (ASan), and
 * no file (model, data or temp) is left. */
static long fail_at, n_alloc;
static void *oom_alloc(void *u, size_t n) {
    (void)u;
    return n_alloc++ == fail_at ? NULL : malloc(n);
}
static void *oom_realloc(void *u, void *p, size_t n) {
    (void)u;
    return n_alloc++ == fail_at ? NULL : realloc(p, n);
}
static void oom_free(void *u, void *p) {
    (void)u;
    free(p);
}

static void out_of_memory_everywhere(void) {
    const char *dir = tmp_dir("oom");
    CHECK(dir);
    char path[700];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    qf_graph *g = runnable_graph();
    CHECK(g);
    qf_allocator a = {oom_alloc, oom_realloc, oom_free, NULL};
    qf_onnx_export_options o;
    qf_onnx_export_options_init(&o);
    o.external_threshold = 4; /* the data-file path too */
    int bad = 0, n_fail = 0, leftover = 0;
    qf_status st = QF_ERR_NOMEM;
    for (fail_at = 0; fail_at < 5000 && st != QF_OK; fail_at++) {
        n_alloc = 0;
        qf_err e;
        qf_set_allocator(&a);
        st = qf_onnx_export(g, path, &o, &e);
        qf_set_allocator(NULL);
        if (st == QF_OK) break;
        n_fail++;
        if (st != QF_ERR_NOMEM) bad++;
        if (count_entries(dir) != 0) leftover++;
    }
    qf_graph_free(g);
    CHECK_EQ_INT(st, QF_OK);
    CHECK(n_fail > 10);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(leftover, 0);
    CHECK_EQ_INT(count_entries(dir), 2); /* model + data */
}

/* ---- independent validation: python-onnx and ONNX Runtime ------------------------------ */
static const char cnn_py[] =
    "import sys, numpy as np, onnx\n"
    "from onnx import helper as h, TensorProto as T, numpy_helper as nh\n"
    "d = sys.argv[1]\n"
    "rng = np.random.default_rng(7)\n"
    "def w(name, shape):\n"
    "    return nh.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)\n"
    "inits = [w('w1', (4, 1, 3, 3)), w('b1', (4,)), w('w2', (6, 4, 3, 3)), w('b2', (6,)),\n"
    "         w('bn_s', (6,)), w('bn_b', (6,)), w('bn_m', (6,)),\n"
    "         nh.from_array(np.abs(rng.standard_normal(6)).astype(np.float32) + 0.5, 'bn_v'),\n"
    "         w('wf', (5, 24)), w('bf', (5,))]\n"
    "N = [\n"
    "  h.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], kernel_shape=[3, 3], pads=[1, 1, 1, 1],\n"
    "              name='conv1'),\n"
    "  h.make_node('Relu', ['c1'], ['r1'], name='relu1'),\n"
    "  h.make_node('MaxPool', ['r1'], ['p1'], kernel_shape=[2, 2], strides=[2, 2],\n"
    "              name='pool1'),\n"
    "  h.make_node('Conv', ['p1', 'w2', 'b2'], ['c2'], kernel_shape=[3, 3], name='conv2'),\n"
    "  h.make_node('BatchNormalization', ['c2', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], ['n2'],\n"
    "              epsilon=1e-5, name='bn'),\n"
    "  h.make_node('Clip', ['n2', '', 'six'], ['r2'], name='clip6'),\n"
    "  h.make_node('Flatten', ['r2'], ['f'], axis=1, name='flat'),\n"
    "  h.make_node('Gemm', ['f', 'wf', 'bf'], ['logits'], transB=1, alpha=0.5, name='fc'),\n"
    "  h.make_node('Softmax', ['logits'], ['y'], axis=1, name='softmax'),\n"
    "]\n"
    "six = h.make_node('Constant', [], ['six'], value=nh.from_array(np.array(6.0, np.float32)))\n"
    "g = h.make_graph([six] + N, 'tiny_cnn',\n"
    "    [h.make_tensor_value_info('x', T.FLOAT, ['N', 1, 8, 8])],\n"
    "    [h.make_tensor_value_info('y', T.FLOAT, ['N', 5])], inits)\n"
    "m = h.make_model(g, opset_imports=[h.make_opsetid('', 13)], producer_name='test')\n"
    "m.ir_version = 8\n"
    "onnx.checker.check_model(m)\n"
    "onnx.save(m, d + '/cnn.onnx')\n"
    "np.save(d + '/in.npy', rng.standard_normal((3, 1, 8, 8)).astype(np.float32))\n";

/* The custom-domain export read back by python-onnx; expected values are
 * written here by hand, independently of qforge's importer. */
static const char custom_py[] =
    "import sys, numpy as np, onnx\n"
    "from onnx import helper as h, numpy_helper as nh\n"
    "m = onnx.load(sys.argv[1])\n"
    "onnx.checker.check_model(m)\n"
    "assert m.ir_version == 8 and m.producer_name == 'qforge', m.ir_version\n"
    "assert {o.domain: o.version for o in m.opset_import} == {'': 13, 'qforge': 1}\n"
    "n = m.graph.node[0]\n"
    "assert (n.op_type, n.domain, n.name) == ('AttrBag', 'qforge', 'bag')\n"
    "assert list(n.input) == ['x', '', 'q8'] and list(n.output) == ['y']\n"
    "a = {x.name: h.get_attribute_value(x) for x in n.attribute}\n"
    "assert a['i'] == -7 and a['f'] == 0.25 and a['s'] == b'hello', a\n"
    "assert list(a['ints']) == [1, -2, 3] and list(a['floats']) == [0.5, -1.5]\n"
    "assert list(a['strings']) == [b'a', b'bc']\n"
    "t = nh.to_array(a['t'])\n"
    "assert t.dtype == np.int8 and t.tolist() == [[-3, 0], [7, 127]], t\n"
    "q = nh.to_array(m.graph.initializer[0])\n"
    "assert m.graph.initializer[0].name == 'q8' and q.dtype == np.int8\n"
    "assert q.tolist() == [[-3, 0], [7, 127]]\n"
    "assert [i.name for i in m.graph.input] == ['x'] and m.graph.output[0].name == 'z'\n"
    "assert m.graph.node[1].op_type == 'Relu' and m.graph.node[1].domain == ''\n"
    "print('custom ok')\n";

static void python_reads_custom_export(void) {
    const char *dir = tmp_dir("pycustom");
    CHECK(dir);
    char path[700], script[700], cmd[2000], log[700];
    snprintf(path, sizeof path, "%s/c.onnx", dir);
    snprintf(script, sizeof script, "%s/check.py", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    qf_graph *g = custom_graph(false);
    CHECK(g);
    qf_err e;
    qf_status st = qf_onnx_export(g, path, NULL, &e);
    qf_graph_free(g);
    CHECK_MSG(st == QF_OK, "%s", e.msg);
    CHECK(write_text(script, custom_py));
    snprintf(cmd, sizeof cmd, PY " %s %s", script, path);
    CHECK_EQ_INT(run_cmd(cmd, log), 0);
}

/* qforge's float run of `model` on in.npy. */
static qf_status qforge_run_npy(const char *model, const qf_tensor *x, qf_tensor *y, void **ydata,
                                qf_err *e) {
    qf_graph *g;
    qf_status st = qf_onnx_import_file(model, &g, e);
    if (st) return st;
    qf_model *m;
    if ((st = qf_model_from_graph(g, model, &m, e))) return st;
    run_out r;
    st = run_model(m, x, 1, &r, e);
    qf_model_free(m);
    if (st) return st;
    *y = r.t[0];
    *ydata = r.data[0];
    for (int i = 1; i < r.n; i++)
        free(r.data[i]);
    return QF_OK;
}

/* max |a - b| / max |b| */
static double rel_err(const qf_tensor *a, const qf_tensor *b) {
    int64_t n = qf_tensor_numel(b);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)((float *)a->data)[i] - ((float *)b->data)[i]);
        worst = d > worst ? d : worst;
        double m = fabs(((float *)b->data)[i]);
        scale = m > scale ? m : scale;
    }
    return scale > 0 ? worst / scale : worst;
}

static void onnxruntime_runs_exported_cnn(void) {
    const char *dir = tmp_dir("ort");
    CHECK(dir);
    CHECK_MSG(file_exists(ORT_RUN), "%s missing (run from the repository root)", ORT_RUN);
    char gen[700], model[700], exp1[700], exp2[700], in[700], out1[700], out2[700];
    char log[700], cmd[3000], list[700], chk[700];
    snprintf(gen, sizeof gen, "%s/gen.py", dir);
    snprintf(model, sizeof model, "%s/cnn.onnx", dir);
    snprintf(exp1, sizeof exp1, "%s/cnn_qf.onnx", dir);
    snprintf(exp2, sizeof exp2, "%s/cnn_qf_ext.onnx", dir);
    snprintf(in, sizeof in, "%s/in.npy", dir);
    snprintf(out1, sizeof out1, "%s/ort1.npy", dir);
    snprintf(out2, sizeof out2, "%s/ort2.npy", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(list, sizeof list, "%s/list.txt", dir);
    snprintf(chk, sizeof chk, "%s/check.py", dir);
    CHECK(write_text(gen, cnn_py));
    snprintf(cmd, sizeof cmd, PY " %s %s", gen, dir);
    CHECK_MSG(run_cmd(cmd, log) == 0, "model generation failed");

    qf_err e;
    qf_graph *g;
    CHECK_MSG(qf_onnx_import_file(model, &g, &e) == QF_OK, "%s", e.msg);
    qf_onnx_export_options o;
    qf_onnx_export_options_init(&o);
    qf_status s1 = qf_onnx_export(g, exp1, &o, &e);
    o.external_threshold = 256; /* w2 (864 bytes) and wf (480) go to cnn_qf_ext.onnx.data */
    qf_status s2 = s1 ? s1 : qf_onnx_export(g, exp2, &o, &e);
    qf_graph_free(g);
    CHECK_MSG(s1 == QF_OK && s2 == QF_OK, "%s", e.msg);
    CHECK(file_exists(exp2) && count_entries(dir) >= 6);

    /* python-onnx's checker (external data loaded by onnx.load). */
    char files[1500];
    snprintf(files, sizeof files, "%s\n%s\n", exp1, exp2);
    CHECK(write_text(list, files) && write_text(chk, checker_py));
    snprintf(cmd, sizeof cmd, PY " %s %s", chk, list);
    CHECK_MSG(run_cmd(cmd, log) == 0, "checker");

    /* ONNX Runtime on both exports vs qforge on the original. */
    snprintf(cmd, sizeof cmd, "node " ORT_RUN " %s %s %s && node " ORT_RUN " %s %s %s", exp1, in,
             out1, exp2, in, out2);
    CHECK_MSG(run_cmd(cmd, log) == 0, "onnxruntime failed");
    qf_tensor x, r1, r2, y;
    void *ydata = NULL;
    CHECK_MSG(qf_npy_read(in, &x, &e) == QF_OK, "%s", e.msg);
    qf_status sq = qforge_run_npy(model, &x, &y, &ydata, &e);
    qf_free_aligned(x.data);
    CHECK_MSG(sq == QF_OK, "%s", e.msg);
    qf_status sr1 = qf_npy_read(out1, &r1, &e);
    qf_status sr2 = qf_npy_read(out2, &r2, &e);
    bool shapes = !sr1 && !sr2 && same_dims(r1.rank, r1.dims, y.rank, y.dims) &&
                  same_dims(r2.rank, r2.dims, y.rank, y.dims) && y.dims[0] == 3 && y.dims[1] == 5;
    double err1 = shapes ? rel_err(&y, &r1) : 1, err2 = shapes ? rel_err(&y, &r2) : 1;
    if (!sr1) qf_free_aligned(r1.data);
    if (!sr2) qf_free_aligned(r2.data);
    free(ydata);
    printf("  onnxruntime vs qforge: max rel err %.3g (inline), %.3g (external data)\n", err1,
           err2);
    CHECK(shapes);
    CHECK(err1 <= 1e-5);
    CHECK(err2 <= 1e-5);
}

QT_MAIN(QT_CASE(handbuilt_runs_and_matches_hand_values), QT_CASE(custom_domain_every_attr_type),
        QT_CASE(batch_dim_symbolic_or_unset), QT_CASE(unsorted_nodes_come_out_sorted),
        QT_CASE(ir_version_table), QT_CASE(external_data_roundtrip), QT_CASE(errors_leave_no_file),
        QT_CASE(out_of_memory_everywhere), QT_CASE(python_reads_custom_export),
        QT_CASE(onnxruntime_runs_exported_cnn), QT_CASE(roundtrip_node_tests),
        QT_CASE(roundtrip_pytorch_converted), QT_CASE(roundtrip_simple))
