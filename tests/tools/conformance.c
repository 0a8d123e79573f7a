/* conformance.c - run ONNX's own backend test data (Debian's libonnx-testdata)
 * through qforge's importer and float runtime, independently of qforge's
 * unit tests.
 *
 * For every test directory under ROOT/{node,pytorch-converted,pytorch-operator,
 * simple}: import model.onnx; an import that fails with QF_ERR_UNSUPPORTED
 * (an op or attribute qforge does not handle) is a SKIP; anything else that
 * goes wrong is a FAIL unless the test is listed in the exclusions file.
 * Each test_data_set_* is bound (inputs in model order), run, and every
 * output compared with the stored one using ONNX's backend-test tolerance:
 * |got - exp| <= atol + rtol * |exp| with rtol = 1e-3, atol = 1e-7, NaN equal
 * to NaN; integer and bool outputs must match exactly.
 *
 * Usage: conformance [--root DIR] [--exclusions FILE] [--filter SUBSTR]
 *                    [--min-pass N] [--optimize] [--verbose] [--list-failures]
 * Exit: 0 all non-excluded tests pass or skip (and at least N pass), 1 a
 * failure, 2 bad usage.
 * The last line is "conformance: N passed, N failed, N skipped, N excluded".
 */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/onnx.h"
#include "ir/ops.h"
#include "ir/passes.h"
#include "onnx.pb-c.h"
#include "qforge.h"
#include "runtime/runtime.h"

#define DEFAULT_ROOT "/usr/share/libonnx-testdata/data"
#define DEFAULT_EXCLUSIONS "tests/conformance_exclusions.txt"
#define RTOL 1e-3
#define ATOL 1e-7
#define MAX_IO 64
#define MSG_LEN 768

static const char *const k_subdirs[] = {"node", "pytorch-converted", "pytorch-operator",
                                        "simple"};
#define N_SUBDIRS ((int)(sizeof k_subdirs / sizeof k_subdirs[0]))

typedef enum { R_PASS, R_FAIL, R_SKIP } result_kind;

typedef struct options {
    const char *root;
    const char *exclusions;
    bool exclusions_given;
    const char *filter;
    bool optimize;
    bool verbose;
    bool list_failures;
    int min_pass;
} options;

typedef struct exclusion {
    char *name;   /* "<dir>/<test>" */
    char *reason;
    bool seen;
    bool passed;
    bool skipped;
} exclusion;

typedef struct hist_entry {
    char *key;
    int count;
} hist_entry;

typedef struct failure {
    char *name;
    char *reason;
} failure;

typedef struct state {
    options opt;
    exclusion *excl;
    int n_excl;
    hist_entry *hist;
    int n_hist, cap_hist;
    failure *fails;
    int n_fails, cap_fails;
    int pass[N_SUBDIRS], fail[N_SUBDIRS], skip[N_SUBDIRS], xfail[N_SUBDIRS];
} state;

/* ---- small utilities (the tool may use libc directly) ---------------- */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "conformance: out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    unsigned char *buf = xmalloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        return NULL;
    }
    *len = got;
    return buf;
}

/* ---- exclusions -------------------------------------------------------- */

/* Lines: "<dir>/<test_name>  <reason>"; '#' starts a comment. */
static int load_exclusions(state *st, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        if (st->opt.exclusions_given) {
            fprintf(stderr, "conformance: cannot open exclusions file %s\n", path);
            return -1;
        }
        return 0;
    }
    char line[1024];
    int cap = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        char *end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
                           end[-1] == '\t'))
            *--end = 0;
        if (!*p) continue;
        char *sep = p + strcspn(p, " \t");
        char *reason = sep;
        if (*sep) {
            *sep = 0;
            reason = sep + 1;
            while (*reason == ' ' || *reason == '\t') reason++;
        }
        if (!*reason) {
            fprintf(stderr, "conformance: %s:%d: exclusion of %s has no reason\n", path, lineno,
                    p);
            fclose(f);
            return -1;
        }
        if (st->n_excl == cap) {
            cap = cap ? 2 * cap : 32;
            exclusion *ne = realloc(st->excl, (size_t)cap * sizeof *ne);
            if (!ne) {
                fclose(f);
                return -1;
            }
            st->excl = ne;
        }
        st->excl[st->n_excl++] = (exclusion){xstrdup(p), xstrdup(reason), false, false, false};
    }
    fclose(f);
    return 0;
}

static exclusion *find_exclusion(state *st, const char *name) {
    for (int i = 0; i < st->n_excl; i++)
        if (strcmp(st->excl[i].name, name) == 0) return &st->excl[i];
    return NULL;
}

/* ---- skip-reason histogram ------------------------------------------- */

static void hist_add(state *st, const char *key) {
    for (int i = 0; i < st->n_hist; i++) {
        if (strcmp(st->hist[i].key, key) == 0) {
            st->hist[i].count++;
            return;
        }
    }
    if (st->n_hist == st->cap_hist) {
        st->cap_hist = st->cap_hist ? 2 * st->cap_hist : 64;
        hist_entry *nh = realloc(st->hist, (size_t)st->cap_hist * sizeof *nh);
        if (!nh) {
            fprintf(stderr, "conformance: out of memory\n");
            exit(2);
        }
        st->hist = nh;
    }
    st->hist[st->n_hist++] = (hist_entry){xstrdup(key), 1};
}

static bool is_default_domain(const char *d) {
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

/* Refusals that are about the model as a whole, not one op: the importer's
 * message is matched against these phrases first. */
static bool model_level_reason(const char *msg, char *key, size_t len) {
    const char *p;
    if ((p = strstr(msg, "ONNX opset ")) && strstr(p, "not supported")) {
        int v = atoi(p + strlen("ONNX opset "));
        snprintf(key, len, "(model opset %d, outside qforge's range)", v);
        return true;
    }
    if (strstr(msg, "is not a tensor")) {
        snprintf(key, len, "(sequence/optional/map value)");
        return true;
    }
    if ((p = strstr(msg, "has data type "))) {
        p += strlen("has data type ");
        size_t n = strcspn(p, " ,;:");
        snprintf(key, len, "(dtype %.*s)", (int)QF_MIN(n, (size_t)40), p);
        return true;
    }
    return false;
}

/* Why a model was refused, for the histogram. Model-wide reasons (opset,
 * value kinds, dtypes) come from the importer's message; otherwise the
 * model is decoded here with protobuf-c so ops missing from the registry
 * (or whose kernel is not linked) are named directly, whatever the wording
 * of the message; if every op is known, the op type the message mentions
 * is blamed for an attribute/dtype refusal. */
static void record_skip(state *st, const char *model_path, const char *msg) {
    int n_keys = 0;
    char keys[32][160];
    if (model_level_reason(msg, keys[0], sizeof keys[0])) {
        hist_add(st, keys[0]);
        return;
    }
    size_t len = 0;
    void *buf = read_whole(model_path, &len);
    Onnx__ModelProto *mp = buf ? onnx__model_proto__unpack(NULL, len, buf) : NULL;
    free(buf);
    if (mp && mp->graph) {
        for (size_t i = 0; i < mp->graph->n_node && n_keys < 32; i++) {
            const Onnx__NodeProto *nd = mp->graph->node[i];
            const char *op = nd->op_type ? nd->op_type : "?";
            const char *dom = nd->domain;
            qf_op_id id = qf_op_lookup(op, dom ? dom : "");
            if (id != QF_OP_UNKNOWN && qf_op_get(id)) continue;
            char key[160];
            if (is_default_domain(dom))
                snprintf(key, sizeof key, "%s", op);
            else
                snprintf(key, sizeof key, "%s::%s", dom, op);
            bool dup = false;
            for (int k = 0; k < n_keys; k++) dup |= strcmp(keys[k], key) == 0;
            if (!dup) snprintf(keys[n_keys++], sizeof keys[0], "%s", key);
        }
        /* All ops known: blame the (longest) op type named in the message. */
        if (n_keys == 0) {
            const char *best = NULL;
            for (size_t i = 0; i < mp->graph->n_node; i++) {
                const char *op = mp->graph->node[i]->op_type;
                if (op && strstr(msg, op) && (!best || strlen(op) > strlen(best))) best = op;
            }
            if (best) snprintf(keys[n_keys++], sizeof keys[0], "%s (attribute/dtype)", best);
        }
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    if (n_keys == 0) snprintf(keys[n_keys++], sizeof keys[0], "(other: see --verbose)");
    for (int k = 0; k < n_keys; k++) hist_add(st, keys[k]);
}

/* ---- comparison -------------------------------------------------------- */

static bool is_float_type(qf_dtype t) {
    return t == QF_DT_F32 || t == QF_DT_F64 || t == QF_DT_F16;
}

static double elem_f64(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_F32: return ((const float *)t->data)[i];
    case QF_DT_F64: return ((const double *)t->data)[i];
    case QF_DT_F16: return qf_f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return 0.0;
    }
}

/* Integer-like elements read exactly (u64 above INT64_MAX wraps, which is
 * harmless for an equality test). */
static int64_t elem_i64(const qf_tensor *t, int64_t i) {
    switch (t->dtype) {
    case QF_DT_U8: return ((const uint8_t *)t->data)[i];
    case QF_DT_I8: return ((const int8_t *)t->data)[i];
    case QF_DT_U16: return ((const uint16_t *)t->data)[i];
    case QF_DT_I16: return ((const int16_t *)t->data)[i];
    case QF_DT_I32: return ((const int32_t *)t->data)[i];
    case QF_DT_I64: return ((const int64_t *)t->data)[i];
    case QF_DT_BOOL: return ((const uint8_t *)t->data)[i] != 0;
    case QF_DT_U32: return ((const uint32_t *)t->data)[i];
    case QF_DT_U64: return (int64_t)((const uint64_t *)t->data)[i];
    default: return 0;
    }
}

static void shape_str(const qf_tensor *t, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->rank && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, d ? ",%lld" : "%lld", (long long)t->dims[d]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static bool floats_close(double got, double exp) {
    if (isnan(exp)) return isnan(got);
    if (isinf(exp)) return got == exp;
    if (isnan(got) || isinf(got)) return false;
    return fabs(got - exp) <= ATOL + RTOL * fabs(exp);
}

/* Returns true when got matches exp; otherwise fills why. */
static bool compare_tensor(const qf_tensor *got, const qf_tensor *exp, char *why, size_t len) {
    if (got->dtype != exp->dtype) {
        snprintf(why, len, "dtype %s, expected %s", qf_dtype_name(got->dtype),
                 qf_dtype_name(exp->dtype));
        return false;
    }
    bool same_shape = got->rank == exp->rank;
    for (int d = 0; same_shape && d < got->rank; d++) same_shape = got->dims[d] == exp->dims[d];
    if (!same_shape) {
        char a[128], b[128];
        shape_str(got, a, sizeof a);
        shape_str(exp, b, sizeof b);
        snprintf(why, len, "shape %s, expected %s", a, b);
        return false;
    }
    int64_t n = qf_tensor_numel(exp);
    if (n < 0) {
        snprintf(why, len, "bad element count");
        return false;
    }
    if (n > 0 && (!got->data || !exp->data)) {
        snprintf(why, len, "output has no data");
        return false;
    }
    if (exp->dtype == QF_DT_STRING || exp->dtype == QF_DT_UNDEF) {
        snprintf(why, len, "cannot compare dtype %s", qf_dtype_name(exp->dtype));
        return false;
    }
    int64_t n_bad = 0, first_bad = -1;
    for (int64_t i = 0; i < n; i++) {
        bool ok = is_float_type(exp->dtype) ? floats_close(elem_f64(got, i), elem_f64(exp, i))
                                            : elem_i64(got, i) == elem_i64(exp, i);
        if (!ok) {
            if (first_bad < 0) first_bad = i;
            n_bad++;
        }
    }
    if (n_bad == 0) return true;
    if (is_float_type(exp->dtype)) {
        double worst = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs(elem_f64(got, i) - elem_f64(exp, i));
            if (e > worst) worst = e;
        }
        snprintf(why, len, "%lld/%lld values differ; first at %lld: got %.9g expected %.9g "
                 "(max abs err %.3g)", (long long)n_bad, (long long)n, (long long)first_bad,
                 elem_f64(got, first_bad), elem_f64(exp, first_bad), worst);
    } else {
        snprintf(why, len, "%lld/%lld values differ; first at %lld: got %lld expected %lld",
                 (long long)n_bad, (long long)n, (long long)first_bad,
                 (long long)elem_i64(got, first_bad), (long long)elem_i64(exp, first_bad));
    }
    return false;
}

/* ---- one test ------------------------------------------------------------ */

/* The name stored in a serialized TensorProto ("" when absent/undecodable). */
static void pb_tensor_name(const char *path, char *name, size_t len) {
    name[0] = 0;
    size_t n = 0;
    void *buf = read_whole(path, &n);
    if (!buf) return;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, n, buf);
    free(buf);
    if (!tp) return;
    if (tp->name) snprintf(name, len, "%s", tp->name);
    onnx__tensor_proto__free_unpacked(tp, NULL);
}

typedef struct pb_set {
    int n;
    qf_tensor t[MAX_IO];
    char name[MAX_IO][128];
} pb_set;

static void pb_set_free(pb_set *s) {
    for (int i = 0; i < s->n; i++) qf_free_aligned(s->t[i].data);
    s->n = 0;
}

/* Read prefix_0.pb, prefix_1.pb, ... from dir until one is missing. */
static bool read_pb_set(const char *dir, const char *prefix, pb_set *s, char *why, size_t len) {
    s->n = 0;
    for (int i = 0; i < MAX_IO; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, i);
        if (!file_exists(path)) break;
        qf_err err = {0};
        memset(&s->t[i], 0, sizeof s->t[i]);
        qf_status rc = qf_onnx_read_tensor_file(path, &s->t[i], &err);
        if (rc != QF_OK) {
            snprintf(why, len, "reading %s_%d.pb: %s (%s)", prefix, i, err.msg,
                     qf_status_str(rc));
            return false;
        }
        s->n = i + 1;
        pb_tensor_name(path, s->name[i], sizeof s->name[i]);
    }
    return true;
}

/* Map file i -> model slot: by the TensorProto's name when it names a model
 * input/output, by position otherwise. Fails if two files land on one slot. */
typedef const char *(*slot_name_fn)(const qf_model *m, int i);

static bool map_by_name(const pb_set *s, int n_slots, slot_name_fn slot_name, const qf_model *m,
                        int *slot_of, char *why, size_t len) {
    bool used[MAX_IO] = {false};
    for (int i = 0; i < s->n; i++) {
        int slot = i;
        for (int j = 0; s->name[i][0] && j < n_slots; j++) {
            const char *nm = slot_name(m, j);
            if (nm && strcmp(nm, s->name[i]) == 0) {
                slot = j;
                break;
            }
        }
        if (slot >= n_slots || used[slot]) {
            snprintf(why, len, "cannot bind test tensor %d ('%s')", i, s->name[i]);
            return false;
        }
        used[slot] = true;
        slot_of[i] = slot;
    }
    return true;
}

typedef struct test_ctx {
    state *st;
    const char *subdir;
    const char *name;   /* "<subdir>/<test>" */
    const char *path;   /* directory of the test */
} test_ctx;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the test_data_set_* subdirectories, sorted. */
static int list_data_sets(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return 0;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_data_set_", 14) != 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

/* Run one data set through the session; false + why on failure. */
static bool run_data_set(qf_session *sess, const qf_model *m, const char *ds_dir, char *why,
                         size_t len) {
    pb_set in = {0}, exp = {0};
    bool ok = false;
    qf_tensor bound[MAX_IO], got[MAX_IO];
    int slot_in[MAX_IO], slot_out[MAX_IO];
    int n_in = qf_model_num_inputs(m), n_out = qf_model_num_outputs(m);
    if (!read_pb_set(ds_dir, "input", &in, why, len)) goto done;
    if (!read_pb_set(ds_dir, "output", &exp, why, len)) goto done;
    if (in.n != n_in) {
        snprintf(why, len, "test has %d inputs, model %d", in.n, n_in);
        goto done;
    }
    if (exp.n == 0 || exp.n > n_out || n_out > MAX_IO) {
        snprintf(why, len, "test has %d outputs, model %d", exp.n, n_out);
        goto done;
    }
    if (!map_by_name(&in, n_in, qf_model_input_name, m, slot_in, why, len)) goto done;
    if (!map_by_name(&exp, n_out, qf_model_output_name, m, slot_out, why, len)) goto done;
    for (int i = 0; i < in.n; i++) bound[slot_in[i]] = in.t[i];
    memset(got, 0, sizeof got);
    qf_err err = {0};
    qf_status rc = qf_session_run(sess, bound, n_in, got, n_out, &err);
    if (rc != QF_OK) {
        snprintf(why, len, "run: %s (%s)", err.msg, qf_status_str(rc));
        goto done;
    }
    for (int i = 0; i < exp.n; i++) {
        char sub[MSG_LEN];
        if (!compare_tensor(&got[slot_out[i]], &exp.t[i], sub, sizeof sub)) {
            const char *nm = qf_model_output_name(m, slot_out[i]);
            snprintf(why, len, "output %d '%s': %s", slot_out[i], nm ? nm : "", sub);
            goto done;
        }
    }
    ok = true;
done:
    pb_set_free(&in);
    pb_set_free(&exp);
    return ok;
}

/* Returns the result and a reason (for FAIL and SKIP). */
static result_kind run_test(const test_ctx *tc, char *why, size_t len) {
    char model_path[1100];
    snprintf(model_path, sizeof model_path, "%s/model.onnx", tc->path);
    if (!file_exists(model_path)) {
        snprintf(why, len, "no model.onnx");
        return R_FAIL;
    }
    qf_err err = {0};
    qf_graph *g = NULL;
    qf_status rc = qf_onnx_import_file(model_path, &g, &err);
    if (rc == QF_ERR_UNSUPPORTED) {
        snprintf(why, len, "%s", err.msg);
        record_skip(tc->st, model_path, err.msg);
        return R_SKIP;
    }
    if (rc != QF_OK) {
        snprintf(why, len, "import: %s (%s)", err.msg, qf_status_str(rc));
        return R_FAIL;
    }
    if (tc->st->opt.optimize) {
        rc = qf_pass_optimize(g, &err);
        if (rc != QF_OK) {
            qf_graph_free(g);
            snprintf(why, len, "optimize: %s (%s)", err.msg, qf_status_str(rc));
            return R_FAIL;
        }
    }
    qf_model *m = NULL;
    rc = qf_model_from_graph(g, model_path, &m, &err);
    if (rc != QF_OK) {
        snprintf(why, len, "model: %s (%s)", err.msg, qf_status_str(rc));
        return R_FAIL;
    }
    result_kind res = R_FAIL;
    qf_session *sess = NULL;
    char **sets = NULL;
    int n_sets = 0;
    rc = qf_session_create(m, NULL, &sess, &err);
    if (rc != QF_OK) {
        snprintf(why, len, "session: %s (%s)", err.msg, qf_status_str(rc));
        goto done;
    }
    n_sets = list_data_sets(tc->path, &sets);
    if (n_sets == 0) {
        snprintf(why, len, "no test_data_set_*");
        goto done;
    }
    res = R_PASS;
    for (int i = 0; i < n_sets && res == R_PASS; i++) {
        char ds_dir[1200], sub[MSG_LEN];
        snprintf(ds_dir, sizeof ds_dir, "%s/%s", tc->path, sets[i]);
        if (!run_data_set(sess, m, ds_dir, sub, sizeof sub)) {
            snprintf(why, len, "%s: %s", sets[i], sub);
            res = R_FAIL;
        }
    }
done:
    for (int i = 0; i < n_sets; i++) free(sets[i]);
    free(sets);
    qf_session_free(sess);
    qf_model_free(m);
    return res;
}

/* ---- driver ---------------------------------------------------------- */

static void add_failure(state *st, const char *name, const char *reason) {
    if (st->n_fails == st->cap_fails) {
        st->cap_fails = st->cap_fails ? 2 * st->cap_fails : 32;
        failure *nf = realloc(st->fails, (size_t)st->cap_fails * sizeof *nf);
        if (!nf) {
            fprintf(stderr, "conformance: out of memory\n");
            exit(2);
        }
        st->fails = nf;
    }
    st->fails[st->n_fails++] = (failure){xstrdup(name), xstrdup(reason)};
}

static void run_subdir(state *st, int sd) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", st->opt.root, k_subdirs[sd]);
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "conformance: warning: cannot read %s\n", dir);
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *tn = ents[i]->d_name;
        char name[512], path[1100];
        snprintf(name, sizeof name, "%s/%s", k_subdirs[sd], tn);
        snprintf(path, sizeof path, "%s/%s", dir, tn);
        bool wanted = tn[0] != '.' && dir_exists(path) &&
                      (!st->opt.filter || strstr(name, st->opt.filter));
        free(ents[i]);
        if (!wanted) continue;
        char why[MSG_LEN] = "";
        test_ctx tc = {st, k_subdirs[sd], name, path};
        result_kind r = run_test(&tc, why, sizeof why);
        exclusion *ex = find_exclusion(st, name);
        if (ex) ex->seen = true;
        switch (r) {
        case R_PASS:
            st->pass[sd]++;
            if (ex) ex->passed = true;
            if (st->opt.verbose) printf("PASS %s\n", name);
            break;
        case R_SKIP:
            st->skip[sd]++;
            if (ex) ex->skipped = true;
            if (st->opt.verbose) printf("SKIP %s: %s\n", name, why);
            break;
        case R_FAIL:
            if (ex) {
                st->xfail[sd]++;
                if (st->opt.verbose) printf("XFAIL %s: %s [excluded: %s]\n", name, why,
                                            ex->reason);
            } else {
                st->fail[sd]++;
                printf("FAIL %s: %s\n", name, why);
                add_failure(st, name, why);
            }
            break;
        }
        fflush(stdout);
    }
    free(ents);
}

static int cmp_hist(const void *a, const void *b) {
    const hist_entry *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->key, y->key);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: conformance [--root DIR] [--exclusions FILE] [--filter SUBSTR]\n"
            "                   [--min-pass N] [--optimize] [--verbose] [--list-failures]\n"
            "  --root DIR        test data root (default " DEFAULT_ROOT ")\n"
            "  --exclusions F    expected failures, '<dir>/<test>  <reason>' per line\n"
            "                    (default " DEFAULT_EXCLUSIONS " when present)\n"
            "  --filter SUBSTR   only tests whose '<dir>/<test>' contains SUBSTR\n"
            "  --min-pass N      fail if fewer than N tests pass (a regression that\n"
            "                    turns passes into skips would otherwise go unseen)\n"
            "  --optimize        run qf_pass_optimize on each graph before the session\n"
            "  --verbose         one line per test (PASS/SKIP/XFAIL/FAIL)\n"
            "  --list-failures   end with the failures in exclusions-file format\n"
            "example: conformance --filter node/test_conv --verbose\n");
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){DEFAULT_ROOT, DEFAULT_EXCLUSIONS, false, NULL, false, false, false, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--root") == 0 && has_val) {
            o->root = argv[++i];
        } else if (strcmp(a, "--exclusions") == 0 && has_val) {
            o->exclusions = argv[++i];
            o->exclusions_given = true;
        } else if (strcmp(a, "--filter") == 0 && has_val) {
            o->filter = argv[++i];
        } else if (strcmp(a, "--min-pass") == 0 && has_val) {
            o->min_pass = atoi(argv[++i]);
        } else if (strcmp(a, "--optimize") == 0) {
            o->optimize = true;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--list-failures") == 0) {
            o->list_failures = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "conformance: bad argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static void free_state(state *st) {
    for (int i = 0; i < st->n_excl; i++) {
        free(st->excl[i].name);
        free(st->excl[i].reason);
    }
    free(st->excl);
    for (int i = 0; i < st->n_hist; i++) free(st->hist[i].key);
    free(st->hist);
    for (int i = 0; i < st->n_fails; i++) {
        free(st->fails[i].name);
        free(st->fails[i].reason);
    }
    free(st->fails);
}

int main(int argc, char **argv) {
    state st;
    memset(&st, 0, sizeof st);
    if (parse_args(argc, argv, &st.opt) != 0) return 2;
    if (!dir_exists(st.opt.root)) {
        fprintf(stderr, "conformance: test data root %s not found (install libonnx-testdata)\n",
                st.opt.root);
        return 2;
    }
    if (load_exclusions(&st, st.opt.exclusions) != 0) {
        free_state(&st);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int sd = 0; sd < N_SUBDIRS; sd++) run_subdir(&st, sd);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    int tp = 0, tf = 0, ts = 0, tx = 0;
    printf("\nper directory:\n");
    for (int sd = 0; sd < N_SUBDIRS; sd++) {
        printf("  %-18s %4d passed %4d failed %4d skipped %4d excluded\n", k_subdirs[sd],
               st.pass[sd], st.fail[sd], st.skip[sd], st.xfail[sd]);
        tp += st.pass[sd];
        tf += st.fail[sd];
        ts += st.skip[sd];
        tx += st.xfail[sd];
    }
    if (st.n_hist) {
        qsort(st.hist, (size_t)st.n_hist, sizeof *st.hist, cmp_hist);
        printf("skip reasons (op -> tests; a test may count for several ops):\n");
        for (int i = 0; i < st.n_hist; i++)
            printf("  %-40s %d\n", st.hist[i].key, st.hist[i].count);
    }
    for (int i = 0; i < st.n_excl; i++) {
        if (st.excl[i].passed)
            printf("warning: stale exclusion: %s now passes (remove it from %s)\n",
                   st.excl[i].name, st.opt.exclusions);
        else if (st.excl[i].skipped)
            printf("warning: exclusion %s is not needed: the test is skipped\n",
                   st.excl[i].name);
        else if (!st.excl[i].seen && !st.opt.filter)
            printf("warning: exclusion %s names no test\n", st.excl[i].name);
    }
    if (st.opt.list_failures && st.n_fails) {
        printf("failures (exclusions-file format):\n");
        for (int i = 0; i < st.n_fails; i++)
            printf("%s  %s\n", st.fails[i].name, st.fails[i].reason);
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("time: %.1f s\n", secs);
    bool too_few = st.opt.min_pass > 0 && tp < st.opt.min_pass;
    if (too_few)
        printf("FAIL only %d tests passed, at least %d expected (--min-pass)\n", tp,
               st.opt.min_pass);
    printf("conformance: %d passed, %d failed, %d skipped, %d excluded\n", tp,
           tf + (too_few ? 1 : 0), ts, tx);
    free_state(&st);
    return tf || too_few ? 1 : 0;
}
