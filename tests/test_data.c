/* test_data.c - io/ array files and datasets: IDX (plain and gzip, every
 * element type), NPY round trips checked byte for byte against np.save,
 * hostile files (truncated at every length, empty, bad magic, huge dims,
 * header beyond the file), injected allocation failures, datasets from
 * directories and explicit files, and the real Fashion-MNIST test split. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/data.h"
#include "qtest.h"

/* ---- helpers ------------------------------------------------------------ */
static char tmp_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/qf_test_data_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

static int write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    fclose(f);
    return w == len ? 0 : -1;
}

/* Gzip with zlib's own writer: independent of the library's inflate code. */
static int write_gz(const char *path, const void *data, size_t len) {
    gzFile g = gzopen(path, "wb6");
    if (!g) return -1;
    int w = len ? gzwrite(g, data, (unsigned)len) : 0;
    gzclose(g);
    return (size_t)w == len ? 0 : -1;
}

static void *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Big-endian IDX image of `ndim` dims and raw big-endian element bytes. */
static size_t make_idx(unsigned char *out, unsigned type, int ndim, const uint32_t *dims,
                       const unsigned char *be_data, size_t data_len) {
    out[0] = 0;
    out[1] = 0;
    out[2] = (unsigned char)type;
    out[3] = (unsigned char)ndim;
    size_t o = 4;
    for (int i = 0; i < ndim; i++) {
        out[o++] = (unsigned char)(dims[i] >> 24);
        out[o++] = (unsigned char)(dims[i] >> 16);
        out[o++] = (unsigned char)(dims[i] >> 8);
        out[o++] = (unsigned char)dims[i];
    }
    memcpy(out + o, be_data, data_len);
    return o + data_len;
}

static void put_be(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* ---- IDX ---------------------------------------------------------------- */
typedef struct idx_case {
    unsigned type;
    qf_dtype dtype;
    int esize;
    double vals[6];
} idx_case;

static const idx_case idx_cases[] = {
    {0x08, QF_DT_U8, 1, {0, 1, 2, 127, 200, 255}},
    {0x09, QF_DT_I8, 1, {0, 1, -2, 127, -128, 5}},
    {0x0B, QF_DT_I16, 2, {0, 1, -2, 30000, -32768, 258}},
    {0x0C, QF_DT_I32, 4, {0, 1, -2, 2000000000, -7, 65536}},
    {0x0D, QF_DT_F32, 4, {0, 1.5, -2.25, 3e10, -7e-3, 100.125}},
    {0x0E, QF_DT_F64, 8, {0, 1.5, -2.25, 1e300, -7e-3, 100.125}},
};

static uint64_t be_bits(const idx_case *c, double v) {
    if (c->dtype == QF_DT_F32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        return u;
    }
    if (c->dtype == QF_DT_F64) {
        uint64_t u;
        memcpy(&u, &v, 8);
        return u;
    }
    return (uint64_t)(int64_t)v;
}

static double tensor_elem(const qf_tensor *t, int i) {
    switch (t->dtype) {
    case QF_DT_U8: return ((uint8_t *)t->data)[i];
    case QF_DT_I8: return ((int8_t *)t->data)[i];
    case QF_DT_I16: return ((int16_t *)t->data)[i];
    case QF_DT_U16: return ((uint16_t *)t->data)[i];
    case QF_DT_I32: return ((int32_t *)t->data)[i];
    case QF_DT_U32: return ((uint32_t *)t->data)[i];
    case QF_DT_I64: return (double)((int64_t *)t->data)[i];
    case QF_DT_U64: return (double)((uint64_t *)t->data)[i];
    case QF_DT_F32: return ((float *)t->data)[i];
    case QF_DT_F64: return ((double *)t->data)[i];
    case QF_DT_F16: return qf_f16_to_f32(((uint16_t *)t->data)[i]);
    case QF_DT_BOOL: return ((uint8_t *)t->data)[i];
    default: return NAN;
    }
}

static void idx_every_type_plain_and_gz(void) {
    for (size_t k = 0; k < QF_ARRAY_LEN(idx_cases); k++) {
        const idx_case *c = &idx_cases[k];
        unsigned char data[48], file[128];
        for (int i = 0; i < 6; i++)
            put_be(data + i * c->esize, be_bits(c, c->vals[i]), c->esize);
        uint32_t dims[3] = {1, 2, 3};
        size_t len = make_idx(file, c->type, 3, dims, data, 6 * (size_t)c->esize);
        for (int gz = 0; gz < 2; gz++) {
            const char *p = tmp_path(gz ? "a.idx.gz" : "a.idx");
            CHECK(gz ? write_gz(p, file, len) == 0 : write_bytes(p, file, len) == 0);
            qf_tensor t;
            qf_err e;
            qf_status st = qf_idx_read(p, &t, &e);
            CHECK_MSG(st == QF_OK, "type 0x%02x gz %d: %s", c->type, gz, e.msg);
            CHECK(t.dtype == c->dtype && t.rank == 3);
            CHECK(t.dims[0] == 1 && t.dims[1] == 2 && t.dims[2] == 3);
            CHECK(((uintptr_t)t.data & 63) == 0);
            for (int i = 0; i < 6; i++) {
                double want = c->dtype == QF_DT_F32 ? (double)(float)c->vals[i] : c->vals[i];
                if (tensor_elem(&t, i) != want) qf_free_aligned(t.data);
                CHECK_MSG(tensor_elem(&t, i) == want, "type 0x%02x gz %d elem %d", c->type, gz, i);
            }
            qf_free_aligned(t.data);
        }
    }
}

/* A gzip file made of two members decodes as the concatenation. */
static void idx_gzip_two_members(void) {
    unsigned char file[64];
    uint32_t dims[1] = {10};
    unsigned char data[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    size_t len = make_idx(file, 0x08, 1, dims, data, 10);
    const char *a = tmp_path("m1.gz"), *b = tmp_path("m2.gz");
    CHECK(write_gz(a, file, 7) == 0 && write_gz(b, file + 7, len - 7) == 0);
    size_t la, lb;
    unsigned char *ba = read_all(a, &la), *bb = read_all(b, &lb);
    CHECK(ba && bb);
    unsigned char cat[256];
    CHECK(la + lb <= sizeof cat);
    memcpy(cat, ba, la);
    memcpy(cat + la, bb, lb);
    free(ba);
    free(bb);
    qf_tensor t;
    qf_err e;
    CHECK_MSG(qf_idx_decode(cat, la + lb, "cat.gz", &t, &e) == QF_OK, "%s", e.msg);
    CHECK(t.rank == 1 && t.dims[0] == 10);
    int ok = memcmp(t.data, data, 10) == 0;
    qf_free_aligned(t.data);
    CHECK(ok);
    /* garbage after the last member is an error naming the file */
    cat[la + lb] = 'x';
    CHECK(qf_idx_decode(cat, la + lb + 1, "cat.gz", &t, &e) == QF_ERR_FORMAT);
    CHECK(strstr(e.msg, "cat.gz") && strstr(e.msg, "trailing garbage"));
}

/* Hostile IDX headers: every message names the file and the problem. */
static void idx_hostile_headers(void) {
    static const struct {
        unsigned char hdr[40];
        size_t len;
        const char *want; /* substring of the message */
    } cases[] = {
        {{0x01, 0x00, 0x08, 0x01, 0, 0, 0, 1, 7}, 9, "not an IDX file"},
        {{0x00, 0x00, 0x07, 0x01, 0, 0, 0, 1, 7}, 9, "unknown IDX data type 0x07"},
        {{0x00, 0x00, 0x08, 0x00, 7}, 5, "IDX rank 0"},
        {{0x00, 0x00, 0x08, 0x09}, 40, "IDX rank 9"},
        {{0x00, 0x00, 0x08, 0x02, 0, 0, 0, 1}, 8, "header needs 12 bytes, file has 8"},
        /* 2^32-1 cubed overflows any size_t */
        {{0x00, 0x00, 0x0E, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff},
         16,
         "too large"},
        /* big but representable: must not allocate, just say truncated */
        {{0x00, 0x00, 0x08, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 1, 2},
         14,
         "header says 4294967296 bytes of data, file has 2"},
        {{0x00, 0x00, 0x08, 0x01, 0, 0, 0, 2, 1, 2, 3}, 11, "trailing garbage: 1 bytes"},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        for (int gz = 0; gz < 2; gz++) {
            const char *p = tmp_path(gz ? "bad.idx.gz" : "bad.idx");
            CHECK(gz ? write_gz(p, cases[i].hdr, cases[i].len) == 0
                     : write_bytes(p, cases[i].hdr, cases[i].len) == 0);
            qf_tensor t;
            qf_err e;
            qf_status st = qf_idx_read(p, &t, &e);
            CHECK_MSG(st == QF_ERR_FORMAT, "case %zu gz %d: status %d", i, gz, (int)st);
            CHECK_MSG(strstr(e.msg, p) != NULL, "case %zu: '%s' lacks the file name", i, e.msg);
            /* the gzip path cannot count trailing bytes it did not inflate */
            const char *want =
                gz && strstr(cases[i].want, "trailing") ? "trailing garbage" : cases[i].want;
            CHECK_MSG(strstr(e.msg, want) != NULL, "case %zu gz %d: '%s'", i, gz, e.msg);
            CHECK(t.data == NULL);
        }
    }
}

/* The message the brief promises, word for word. */
static void idx_truncated_message(void) {
    unsigned char file[16 + 1200];
    uint32_t dims[3] = {10000, 28, 28};
    unsigned char data[1200] = {0};
    size_t len = make_idx(file, 0x08, 3, dims, data, sizeof data);
    const char *p = tmp_path("t10k-images-idx3-ubyte.gz");
    CHECK(write_gz(p, file, len) == 0);
    qf_tensor t;
    qf_err e;
    CHECK(qf_idx_read(p, &t, &e) == QF_ERR_FORMAT);
    char want[300];
    snprintf(want, sizeof want, "%s: truncated: header says 7840000 bytes of data, file has 1200",
             p);
    CHECK_MSG(strcmp(e.msg, want) == 0, "'%s'", e.msg);
}

/* Cut a valid file at every length, plain and gzip: always an error, never
 * a crash (ASan), and never a tensor. Then flip each byte of the gzip file:
 * either an error or the exact original contents. */
static void idx_truncated_every_length(void) {
    unsigned char file[64];
    uint32_t dims[2] = {3, 5};
    unsigned char data[15];
    for (int i = 0; i < 15; i++)
        data[i] = (unsigned char)(i * 17);
    size_t len = make_idx(file, 0x08, 2, dims, data, 15);
    for (size_t cut = 0; cut < len; cut++) {
        qf_tensor t;
        qf_err e;
        CHECK_MSG(qf_idx_decode(file, cut, "cut.idx", &t, &e) == QF_ERR_FORMAT, "cut %zu", cut);
        CHECK(strstr(e.msg, "cut.idx") && t.data == NULL);
    }
    const char *p = tmp_path("cut.gz");
    CHECK(write_gz(p, file, len) == 0);
    size_t glen;
    unsigned char *g = read_all(p, &glen);
    CHECK(g != NULL);
    for (size_t cut = 2; cut < glen; cut++) {
        qf_tensor t;
        qf_err e;
        qf_status st = qf_idx_decode(g, cut, "cut.gz", &t, &e);
        if (st == QF_OK) qf_free_aligned(t.data);
        CHECK_MSG(st == QF_ERR_FORMAT, "gz cut %zu: status %d", cut, (int)st);
        CHECK(strstr(e.msg, "cut.gz") != NULL);
    }
    int bad = 0;
    for (size_t i = 0; i < glen && !bad; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            g[i] ^= (unsigned char)(1u << bit);
            qf_tensor t;
            qf_err e;
            qf_status st = qf_idx_decode(g, glen, "flip.gz", &t, &e);
            if (st == QF_OK) {
                if (t.rank != 2 || t.dims[0] != 3 || memcmp(t.data, data, 15) != 0) bad = 1;
                qf_free_aligned(t.data);
            } else if (!strstr(e.msg, "flip.gz")) {
                bad = 1;
            }
            g[i] ^= (unsigned char)(1u << bit);
        }
    }
    free(g);
    CHECK(!bad);
}

/* ---- NPY ---------------------------------------------------------------- */
/* Data bytes written by np.save(np.array(vals, dtype).reshape(2, 3)) with
 * numpy 1.24; the headers are numpy's too (118 bytes, data at offset 128). */
static const struct npy_case {
    qf_dtype dtype;
    const char *descr;
    double vals[6];
    const char *numpy_hex;
} npy_cases[] = {
    {QF_DT_F16, "<f2", {0.0, 1.5, -2.25, 3.0, 100.125, -7.0}, "0000003e80c00042425600c7"},
    {QF_DT_F32,
     "<f4",
     {0.0, 1.5, -2.25, 3.0, 100.125, -0.007},
     "000000000000c03f000010c0000040400040c8424260e5bb"},
    {QF_DT_F64,
     "<f8",
     {0.0, 1.5, -2.25, 3.0, 1e+300, -0.007},
     "0000000000000000000000000000f83f00000000000002c000000000000008409c7500883ce4377e79e9263108ac7"
     "cbf"},
    {QF_DT_U8, "|u1", {0.0, 1.0, 2.0, 3.0, 200.0, 255.0}, "00010203c8ff"},
    {QF_DT_I8, "|i1", {0.0, 1.0, -2.0, 3.0, 127.0, -128.0}, "0001fe037f80"},
    {QF_DT_I16, "<i2", {0.0, 1.0, -2.0, 3.0, 30000.0, -32768.0}, "00000100feff030030750080"},
    {QF_DT_U16, "<u2", {0.0, 1.0, 2.0, 3.0, 60000.0, 65535.0}, "000001000200030060eaffff"},
    {QF_DT_I32,
     "<i4",
     {0.0, 1.0, -2.0, 3.0, 2000000000.0, -7.0},
     "0000000001000000feffffff0300000000943577f9ffffff"},
    {QF_DT_U32,
     "<u4",
     {0.0, 1.0, 2.0, 3.0, 4000000000.0, 7.0},
     "0000000001000000020000000300000000286bee07000000"},
    {QF_DT_I64,
     "<i8",
     {0.0, 1.0, -2.0, 3.0, -5000000000.0, 7.0},
     "00000000000000000100000000000000feffffffffffffff0300000000000000000efad5feffffff0700000000000"
     "000"},
    {QF_DT_U64,
     "<u8",
     {0.0, 1.0, 2.0, 3.0, 1e+19, 7.0},
     "00000000000000000100000000000000020000000000000003000000000000000000e8890423c78a0700000000000"
     "000"},
    {QF_DT_BOOL, "|b1", {0.0, 1.0, 1.0, 0.0, 1.0, 0.0}, "000101000100"},
};

static void set_elem(qf_dtype dt, void *data, int i, double v) {
    switch (dt) {
    case QF_DT_F16: ((uint16_t *)data)[i] = qf_f32_to_f16((float)v); break;
    case QF_DT_F32: ((float *)data)[i] = (float)v; break;
    case QF_DT_F64: ((double *)data)[i] = v; break;
    case QF_DT_U8:
    case QF_DT_BOOL: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case QF_DT_I8: ((int8_t *)data)[i] = (int8_t)v; break;
    case QF_DT_I16: ((int16_t *)data)[i] = (int16_t)v; break;
    case QF_DT_U16: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case QF_DT_I32: ((int32_t *)data)[i] = (int32_t)v; break;
    case QF_DT_U32: ((uint32_t *)data)[i] = (uint32_t)v; break;
    case QF_DT_I64: ((int64_t *)data)[i] = (int64_t)v; break;
    case QF_DT_U64: ((uint64_t *)data)[i] = (uint64_t)v; break;
    default: break;
    }
}

/* numpy's file for a case: its header (reconstructed: the dict, spaces to
 * 117 bytes, '\n') and its data bytes. Returns the length. */
static size_t numpy_file(const struct npy_case *c, unsigned char *out) {
    memcpy(out, "\x93NUMPY\x01\x00\x76\x00", 10); /* v1.0, header length 118 */
    memset(out + 10, ' ', 117);
    char dict[128];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3), }", c->descr);
    memcpy(out + 10, dict, (size_t)n);
    out[127] = '\n';
    size_t dl = strlen(c->numpy_hex) / 2;
    for (size_t i = 0; i < dl; i++)
        out[128 + i] =
            (unsigned char)(hexval(c->numpy_hex[2 * i]) << 4 | hexval(c->numpy_hex[2 * i + 1]));
    return 128 + dl;
}

static void npy_matches_numpy_every_dtype(void) {
    for (size_t k = 0; k < QF_ARRAY_LEN(npy_cases); k++) {
        const struct npy_case *c = &npy_cases[k];
        unsigned char want[256];
        size_t want_len = numpy_file(c, want);
        /* encode == numpy's bytes */
        uint64_t store[6];
        qf_tensor t = {.dtype = c->dtype, .rank = 2, .dims = {2, 3}, .data = store};
        for (int i = 0; i < 6; i++)
            set_elem(c->dtype, store, i, c->vals[i]);
        void *buf;
        size_t len;
        qf_err e;
        CHECK_MSG(qf_npy_encode(&t, &buf, &len, &e) == QF_OK, "%s: %s", c->descr, e.msg);
        int same = len == want_len && memcmp(buf, want, len) == 0;
        qf_free(buf);
        CHECK_MSG(same, "%s: encoding differs from np.save", c->descr);
        /* decode numpy's bytes == the values */
        qf_tensor d;
        CHECK_MSG(qf_npy_decode(want, want_len, "x.npy", &d, &e) == QF_OK, "%s", e.msg);
        CHECK(d.dtype == c->dtype && d.rank == 2 && d.dims[0] == 2 && d.dims[1] == 3);
        int ok = 1;
        for (int i = 0; i < 6; i++) {
            double v = c->vals[i];
            if (c->dtype == QF_DT_F32) v = (float)v;
            if (tensor_elem(&d, i) != v) ok = 0;
        }
        qf_free_aligned(d.data);
        CHECK_MSG(ok, "%s: decoded values differ", c->descr);
    }
}

/* Write to disk, read back: shapes of every rank, including 0-d and empty. */
static void npy_write_read_shapes(void) {
    static const struct {
        int rank;
        int64_t dims[8];
    } shapes[] = {{0, {0}}, {1, {7}}, {2, {0, 3}}, {3, {2, 3, 4}}, {8, {1, 2, 1, 2, 1, 2, 1, 3}}};
    const char *p = tmp_path("rt.npy");
    for (size_t k = 0; k < QF_ARRAY_LEN(shapes); k++) {
        qf_tensor t = {.dtype = QF_DT_F32, .rank = shapes[k].rank};
        memcpy(t.dims, shapes[k].dims, sizeof t.dims);
        int64_t n = qf_tensor_numel(&t);
        float vals[64];
        for (int i = 0; i < n; i++)
            vals[i] = (float)i * 0.5f - 3.0f;
        t.data = vals;
        qf_err e;
        CHECK_MSG(qf_npy_write(p, &t, &e) == QF_OK, "%s", e.msg);
        qf_tensor r;
        CHECK_MSG(qf_array_read(p, &r, &e) == QF_OK, "%s", e.msg);
        int ok = r.dtype == QF_DT_F32 && r.rank == t.rank &&
                 memcmp(r.dims, t.dims, sizeof(int64_t) * (size_t)t.rank) == 0 &&
                 (n == 0 || memcmp(r.data, vals, (size_t)n * 4) == 0);
        qf_free_aligned(r.data);
        CHECK_MSG(ok, "shape case %zu", k);
        /* the data offset is 64-byte aligned, as numpy's */
        size_t len;
        unsigned char *raw = read_all(p, &len);
        CHECK(raw != NULL);
        size_t hl = raw[8] | (size_t)raw[9] << 8;
        free(raw);
        CHECK((10 + hl) % 64 == 0);
        CHECK(len == 10 + hl + (size_t)n * 4);
    }
    /* unwritable destination: error names it, nothing is left */
    qf_tensor t = {.dtype = QF_DT_F32, .rank = 1, .dims = {1}, .data = (float[]){1}};
    qf_err e;
    CHECK(qf_npy_write("/nonexistent-dir/o.npy", &t, &e) == QF_ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent-dir/o.npy") != NULL);
    t.dtype = QF_DT_STRING;
    CHECK(qf_npy_write(p, &t, &e) == QF_ERR_UNSUPPORTED);
}

/* v2 and v3 headers (u32 length) decode like v1. */
static void npy_v2_v3(void) {
    const char *dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }";
    for (int ver = 2; ver <= 3; ver++) {
        unsigned char f[160];
        size_t dl = strlen(dict);
        size_t hl = 128 - 12; /* data starts at 128 */
        memcpy(f, "\x93NUMPY", 6);
        f[6] = (unsigned char)ver;
        f[7] = 0;
        f[8] = (unsigned char)hl;
        f[9] = f[10] = f[11] = 0;
        memset(f + 12, ' ', hl);
        memcpy(f + 12, dict, dl);
        f[12 + hl - 1] = '\n';
        int16_t v[3] = {-1, 2, 300};
        memcpy(f + 128, v, 6); /* host is little-endian on every target we test */
        qf_tensor t;
        qf_err e;
        CHECK_MSG(qf_npy_decode(f, 134, "v.npy", &t, &e) == QF_OK, "v%d: %s", ver, e.msg);
        int ok = t.dtype == QF_DT_I16 && t.rank == 1 && t.dims[0] == 3 && memcmp(t.data, v, 6) == 0;
        qf_free_aligned(t.data);
        CHECK(ok);
    }
}

static size_t npy_with_header(unsigned char *f, const char *dict, size_t data_len) {
    size_t dl = strlen(dict);
    memcpy(f, "\x93NUMPY\x01\x00", 8);
    f[8] = (unsigned char)(dl + 1);
    f[9] = 0;
    memcpy(f + 10, dict, dl);
    f[10 + dl] = '\n';
    memset(f + 11 + dl, 0, data_len);
    return 11 + dl + data_len;
}

static void npy_hostile(void) {
    static const struct {
        const char *dict;
        size_t data_len;
        qf_status want;
        const char *msg;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, QF_ERR_UNSUPPORTED,
         "fortran_order"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, QF_ERR_UNSUPPORTED,
         "big-endian"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, QF_ERR_UNSUPPORTED,
         "'<c8' not supported"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
         QF_ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, QF_ERR_FORMAT,
         "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), "
         "}",
         8, QF_ERR_FORMAT, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8,
         QF_ERR_FORMAT, "too large"},
        {"{'descr': '<u1', 'fortran_order': False, 'shape': (1000000000,), }", 8, QF_ERR_FORMAT,
         "header says 1000000000 bytes of data, file has 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 9, QF_ERR_FORMAT,
         "trailing garbage: 1 bytes"},
        {"{'descr': '<f4', 'fortran_order': False, }", 8, QF_ERR_FORMAT, "missing 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, QF_ERR_FORMAT,
         "unexpected key 'x'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
         QF_ERR_FORMAT, "rank above 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8, QF_ERR_FORMAT,
         "text after"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, QF_ERR_FORMAT,
         "True or False"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, QF_ERR_FORMAT,
         "bad NPY header"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 8, QF_ERR_FORMAT,
         "malformed shape"},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        unsigned char f[256];
        size_t len = npy_with_header(f, cases[i].dict, cases[i].data_len);
        qf_tensor t;
        qf_err e;
        qf_status st = qf_npy_decode(f, len, "h.npy", &t, &e);
        if (st == QF_OK) qf_free_aligned(t.data);
        CHECK_MSG(st == cases[i].want, "case %zu: status %d", i, (int)st);
        CHECK_MSG(strncmp(e.msg, "h.npy: ", 7) == 0 && strstr(e.msg, cases[i].msg),
                  "case %zu: '%s'", i, e.msg);
    }
    /* header length beyond the end of the file */
    unsigned char f[256];
    size_t len = npy_with_header(f, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    f[8] = 0xff;
    f[9] = 0xff;
    qf_tensor t;
    qf_err e;
    CHECK(qf_npy_decode(f, len, "h.npy", &t, &e) == QF_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "h.npy: NPY header length 65535 goes beyond the end"), "%s", e.msg);
    /* bad magic, unknown version */
    f[8] = 60;
    f[9] = 0;
    f[1] = 'M';
    CHECK(qf_npy_decode(f, len, "h.npy", &t, &e) == QF_ERR_FORMAT && strstr(e.msg, "bad magic"));
    f[1] = 'N';
    f[6] = 9;
    CHECK(qf_npy_decode(f, len, "h.npy", &t, &e) == QF_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "version 9.0"));
    /* zero-length file on disk */
    const char *p = tmp_path("empty.npy");
    CHECK(write_bytes(p, "", 0) == 0);
    CHECK(qf_npy_read(p, &t, &e) == QF_ERR_FORMAT && strstr(e.msg, p) &&
          strstr(e.msg, "truncated"));
    CHECK(qf_array_read(p, &t, &e) == QF_ERR_FORMAT && strstr(e.msg, "empty file"));
    CHECK(qf_array_read(tmp_path("missing.npy"), &t, &e) == QF_ERR_IO);
    CHECK(strstr(e.msg, "missing.npy"));
}

static void npy_truncated_every_length(void) {
    float v[5] = {1, 2, 3, 4, 5};
    qf_tensor t = {.dtype = QF_DT_F32, .rank = 2, .dims = {1, 5}, .data = v};
    void *buf;
    size_t len;
    qf_err e;
    CHECK(qf_npy_encode(&t, &buf, &len, &e) == QF_OK);
    int bad = 0;
    for (size_t cut = 0; cut < len && !bad; cut++) {
        /* a fresh exact-size copy so ASan sees any read past the end */
        unsigned char *c = malloc(cut ? cut : 1);
        memcpy(c, buf, cut);
        qf_tensor r;
        qf_status st = qf_npy_decode(c, cut, "cut.npy", &r, &e);
        if (st == QF_OK) {
            qf_free_aligned(r.data);
            bad = 1;
        } else if (!strstr(e.msg, "cut.npy")) {
            bad = 1;
        }
        free(c);
    }
    qf_free(buf);
    CHECK(!bad);
}

/* ---- format detection ---------------------------------------------------- */
static void array_read_by_content(void) {
    /* an IDX file named .npy and an NPY file named .idx */
    unsigned char file[32];
    uint32_t dims[1] = {3};
    size_t len = make_idx(file, 0x08, 1, dims, (const unsigned char *)"\x01\x02\x03", 3);
    const char *p1 = tmp_path("really_idx.npy");
    CHECK(write_bytes(p1, file, len) == 0);
    qf_tensor t;
    qf_err e;
    CHECK_MSG(qf_array_read(p1, &t, &e) == QF_OK, "%s", e.msg);
    int ok = t.dtype == QF_DT_U8 && t.dims[0] == 3 && ((uint8_t *)t.data)[2] == 3;
    qf_free_aligned(t.data);
    CHECK(ok);
    const char *p2 = tmp_path("really_npy.idx");
    int16_t v[2] = {-5, 7};
    qf_tensor w = {.dtype = QF_DT_I16, .rank = 1, .dims = {2}, .data = v};
    CHECK(qf_npy_write(p2, &w, &e) == QF_OK);
    CHECK_MSG(qf_array_read(p2, &t, &e) == QF_OK, "%s", e.msg);
    ok = t.dtype == QF_DT_I16 && ((int16_t *)t.data)[0] == -5;
    qf_free_aligned(t.data);
    CHECK(ok);
    const char *p3 = tmp_path("text.npy");
    CHECK(write_bytes(p3, "hello", 5) == 0);
    CHECK(qf_array_read(p3, &t, &e) == QF_ERR_FORMAT && strstr(e.msg, "not an NPY or IDX"));
}

/* ---- allocation failures --------------------------------------------------- */
static int fail_after;
static void *failing_alloc(void *u, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return malloc(n ? n : 1);
}
static void *failing_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return realloc(p, n ? n : 1);
}
static void plain_free(void *u, void *p) {
    (void)u;
    free(p);
}

/* Fail the Nth allocation for every N until the call succeeds: each failure
 * must be a clean QF_ERR_NOMEM (leaks show up under ASan). */
static void oom_every_allocation(void) {
    unsigned char file[64];
    uint32_t dims[2] = {2, 4};
    size_t len = make_idx(file, 0x08, 2, dims, (const unsigned char *)"abcdefgh", 8);
    const char *gzp = tmp_path("oom.gz");
    CHECK(write_gz(gzp, file, len) == 0);
    size_t glen;
    unsigned char *g = read_all(gzp, &glen);
    CHECK(g != NULL);
    qf_allocator a = {failing_alloc, failing_realloc, plain_free, NULL};
    int ok_seen = 0, bad = 0;
    for (int n = 0; n < 200 && !ok_seen; n++) {
        qf_set_allocator(&a);
        fail_after = n;
        qf_tensor t;
        qf_err e;
        qf_status st = qf_idx_decode(g, glen, "oom.gz", &t, &e);
        qf_set_allocator(NULL);
        if (st == QF_OK) {
            ok_seen = memcmp(t.data, "abcdefgh", 8) == 0 ? 1 : -1;
            qf_free_aligned(t.data);
        } else if (st != QF_ERR_NOMEM) {
            bad = 1;
        }
    }
    free(g);
    CHECK(ok_seen == 1 && !bad);
    ok_seen = 0;
    float v[3] = {1, 2, 3};
    qf_tensor w = {.dtype = QF_DT_F32, .rank = 1, .dims = {3}, .data = v};
    void *buf;
    qf_err e;
    CHECK(qf_npy_encode(&w, &buf, &len, &e) == QF_OK);
    for (int n = 0; n < 50 && !ok_seen; n++) {
        qf_set_allocator(&a);
        fail_after = n;
        qf_tensor t;
        qf_status st = qf_npy_decode(buf, len, "oom.npy", &t, &e);
        qf_set_allocator(NULL);
        if (st == QF_OK) {
            ok_seen = 1;
            qf_free_aligned(t.data);
        } else if (st != QF_ERR_NOMEM) {
            bad = 1;
        }
    }
    qf_free(buf);
    CHECK(ok_seen && !bad);
}

/* ---- datasets ------------------------------------------------------------ */
/* A directory with neutral names, NHWC float images, mean/std and limit. */
static void dataset_dir_npy_nhwc_norm(void) {
    const char *dir = tmp_path("ds1");
    CHECK(mkdir(dir, 0755) == 0);
    char ip[300], lp[300];
    snprintf(ip, sizeof ip, "%s/images.npy", dir);
    snprintf(lp, sizeof lp, "%s/labels.npy", dir);
    /* 3 samples of 2x2x2 (H, W, C): value = 100*n + 10*(h*2+w) + c */
    float img[3 * 8];
    for (int n = 0; n < 3; n++)
        for (int hw = 0; hw < 4; hw++)
            for (int c = 0; c < 2; c++)
                img[n * 8 + hw * 2 + c] = (float)(100 * n + 10 * hw + c);
    int64_t lab[3] = {4, 0, 2};
    qf_tensor ti = {.dtype = QF_DT_F32, .rank = 4, .dims = {3, 2, 2, 2}, .data = img};
    qf_tensor tl = {.dtype = QF_DT_I64, .rank = 1, .dims = {3}, .data = lab};
    qf_err e;
    CHECK(qf_npy_write(ip, &ti, &e) == QF_OK && qf_npy_write(lp, &tl, &e) == QF_OK);
    qf_dataset_options o = {.nhwc = true, .n_norm = 2, .mean = {1, 2}, .std = {2, 4}, .limit = 2};
    qf_dataset *d;
    CHECK_MSG(qf_dataset_open(dir, NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
    int ok = d->n == 2 && d->rank == 3 && d->dims[0] == 2 && d->dims[1] == 2 && d->dims[2] == 2 &&
             d->sample_numel == 8 && d->num_classes == 5 && d->scale == 1.0f;
    float out[16];
    int32_t labels[2];
    qf_status st = qf_dataset_fill(d, 0, 2, out, labels, &e);
    /* sample n, channel c, pixel hw (NCHW) = (100n + 10hw + c - mean[c]) / std[c] */
    for (int n = 0; n < 2 && st == QF_OK; n++)
        for (int c = 0; c < 2; c++)
            for (int hw = 0; hw < 4; hw++) {
                float want = (float)(100 * n + 10 * hw + c - (c ? 2 : 1)) / (c ? 4.0f : 2.0f);
                if (fabsf(out[n * 8 + c * 4 + hw] - want) > 1e-5f) ok = 0;
            }
    qf_status st2 = qf_dataset_fill(d, 1, 2, out, labels, &e); /* past the limit */
    qf_dataset_free(d);
    CHECK(st == QF_OK && ok);
    CHECK(labels[0] == 4 && labels[1] == 0);
    CHECK(st2 == QF_ERR_INVALID_ARG);
    /* mean/std count that fits no channel count */
    o.n_norm = 3;
    CHECK(qf_dataset_open(dir, NULL, &o, &d, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "3 mean/std values"));
}

/* MNIST-style names in a directory, both splits, gzip and plain mixed. */
static void dataset_dir_idx_splits(void) {
    const char *dir = tmp_path("ds2");
    CHECK(mkdir(dir, 0755) == 0);
    static const struct {
        const char *name;
        unsigned type;
        int ndim;
        uint32_t dims[3];
        unsigned char first;
    } files[] = {
        {"t10k-images-idx3-ubyte.gz", 0x08, 3, {2, 2, 3}, 10},
        {"t10k-labels-idx1-ubyte", 0x08, 1, {2}, 1},
        {"train-images-idx3-ubyte", 0x08, 3, {3, 2, 3}, 50},
        {"train-labels-idx1-ubyte.gz", 0x08, 1, {3}, 6},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(files); i++) {
        unsigned char data[64], file[128];
        size_t n = 1;
        for (int k = 0; k < files[i].ndim; k++)
            n *= files[i].dims[k];
        for (size_t k = 0; k < n; k++)
            data[k] = (unsigned char)(files[i].first + k);
        size_t len = make_idx(file, files[i].type, files[i].ndim, files[i].dims, data, n);
        char p[300];
        snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
        CHECK(strstr(p, ".gz") ? write_gz(p, file, len) == 0 : write_bytes(p, file, len) == 0);
    }
    qf_err e;
    qf_dataset *d;
    CHECK_MSG(qf_dataset_open(dir, NULL, NULL, &d, &e) == QF_OK, "%s", e.msg);
    float x[12];
    int32_t l[2];
    qf_status st = qf_dataset_fill(d, 0, 2, x, l, &e);
    int ok = d->n == 2 && d->rank == 3 && d->dims[0] == 1 && d->dims[1] == 2 && d->dims[2] == 3 &&
             d->num_classes == 3;
    qf_dataset_free(d);
    CHECK(st == QF_OK && ok);
    CHECK(l[0] == 1 && l[1] == 2);
    for (int k = 0; k < 12; k++)
        CHECK_NEAR(x[k], (10 + k) / 255.0, 1e-7);
    qf_dataset_options o = {.split = "train"};
    CHECK_MSG(qf_dataset_open(dir, NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
    st = qf_dataset_fill(d, 2, 1, x, l, &e);
    ok = d->n == 3 && d->num_classes == 9;
    qf_dataset_free(d);
    CHECK(st == QF_OK && ok && l[0] == 8);
    CHECK_NEAR(x[0], (50 + 12) / 255.0, 1e-7);
    o.split = "validation";
    CHECK(qf_dataset_open(dir, NULL, &o, &d, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "validation"));
}

static void dataset_bad_inputs(void) {
    const char *ip = tmp_path("bi.npy"), *lp = tmp_path("bl.npy");
    float img[4 * 3] = {0};
    qf_tensor ti = {.dtype = QF_DT_F32, .rank = 2, .dims = {4, 3}, .data = img};
    qf_err e;
    CHECK(qf_npy_write(ip, &ti, &e) == QF_OK);
    qf_dataset *d;
    static const struct {
        qf_dtype dt;
        int rank;
        int64_t dims[2];
        double vals[4];
        const char *msg;
    } cases[] = {
        {QF_DT_I32, 1, {3}, {0, 1, 2}, "3 labels but"},
        {QF_DT_F32, 1, {4}, {0, 1, 2, 3}, "labels must be integers"},
        {QF_DT_I32, 2, {2, 2}, {0, 1, 2, 3}, "shape [N] or [N,1]"},
        {QF_DT_I32, 1, {4}, {0, 1, -2, 3}, "label 2 is -2"},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        uint64_t store[4];
        qf_tensor tl = {.dtype = cases[i].dt, .rank = cases[i].rank, .data = store};
        memcpy(tl.dims, cases[i].dims, sizeof cases[i].dims);
        for (int k = 0; k < 4; k++)
            set_elem(cases[i].dt, store, k, cases[i].vals[k]);
        CHECK(qf_npy_write(lp, &tl, &e) == QF_OK);
        CHECK(qf_dataset_open(ip, lp, NULL, &d, &e) != QF_OK);
        CHECK_MSG(strstr(e.msg, lp) && strstr(e.msg, cases[i].msg), "case %zu: %s", i, e.msg);
    }
    /* [N,1] int labels with 2-d float features: fine, scale stays 1 */
    int32_t lab[4] = {3, 1, 0, 2};
    qf_tensor tl = {.dtype = QF_DT_I32, .rank = 2, .dims = {4, 1}, .data = lab};
    CHECK(qf_npy_write(lp, &tl, &e) == QF_OK);
    CHECK_MSG(qf_dataset_open(ip, lp, NULL, &d, &e) == QF_OK, "%s", e.msg);
    int ok = d->n == 4 && d->rank == 1 && d->dims[0] == 3 && d->scale == 1.0f &&
             d->labels[0] == 3 && d->num_classes == 4;
    qf_dataset_free(d);
    CHECK(ok);
    CHECK(qf_dataset_open(ip, NULL, NULL, &d, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "needs a labels file"));
    CHECK(qf_dataset_open("no-such-dataset", NULL, NULL, &d, &e) == QF_ERR_IO);
    CHECK(strstr(e.msg, "no-such-dataset: no such dataset"));
    const char *empty = tmp_path("empty_dir");
    CHECK(mkdir(empty, 0755) == 0);
    CHECK(qf_dataset_open(empty, NULL, NULL, &d, &e) == QF_ERR_IO);
    CHECK_MSG(strstr(e.msg, "no images file"), "%s", e.msg);
}

/* The Debian package's files. Reference values from numpy:
 *   labels: first 9 ('ankle boot'), 1000 of each class 0..9;
 *   image 0: raw pixel sum 33456; all 10000 test images: 573469082;
 *   train labels start 9 0 0 3 0 2 7 2 5 5. */
static void fashion_mnist_real_files(void) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "  (fashion-mnist not installed: checked nothing)\n");
        CHECK(0 && "fashion-mnist dataset missing");
    }
    qf_dataset *d;
    qf_err e;
    CHECK_MSG(qf_dataset_open("fashion-mnist", NULL, NULL, &d, &e) == QF_OK, "%s", e.msg);
    int shape_ok = d->n == 10000 && d->rank == 3 && d->dims[0] == 1 && d->dims[1] == 28 &&
                   d->dims[2] == 28 && d->num_classes == 10;
    int counts[10] = {0}, range_ok = 1;
    for (int i = 0; i < d->n; i++) {
        if (d->labels[i] < 0 || d->labels[i] > 9)
            range_ok = 0;
        else
            counts[d->labels[i]]++;
    }
    float *x = malloc(sizeof(float) * 784 * 100);
    int32_t l[100];
    double first_sum = 0, all_sum = 0;
    qf_status st = qf_dataset_fill(d, 0, 1, x, l, &e);
    for (int k = 0; k < 784; k++)
        first_sum += x[k];
    for (int64_t i = 0; i < d->n && st == QF_OK; i += 100) {
        st = qf_dataset_fill(d, i, 100, x, NULL, &e);
        for (int k = 0; k < 78400; k++)
            all_sum += x[k];
    }
    free(x);
    qf_dataset_free(d);
    CHECK(st == QF_OK && shape_ok && range_ok);
    for (int c = 0; c < 10; c++)
        CHECK_EQ_INT(counts[c], 1000);
    CHECK_EQ_INT(l[0], 9);
    CHECK_NEAR(first_sum, 33456 / 255.0, 1e-3);
    CHECK_NEAR(all_sum, 573469082 / 255.0, 1.0);

    qf_dataset_options o = {.split = "train", .limit = 10};
    CHECK_MSG(qf_dataset_open("fashion-mnist", NULL, &o, &d, &e) == QF_OK, "%s", e.msg);
    static const int want[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    int ok = d->n == 10 && d->images.dims[0] == 60000;
    for (int i = 0; i < 10; i++)
        if (d->labels[i] != want[i]) ok = 0;
    qf_dataset_free(d);
    CHECK(ok);
}

static void cleanup_tmp(void) {
    /* remove what the cases wrote; the check keeps this an honest case */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    CHECK(tmp_dir[0] && system(cmd) == 0);
    CHECK(access(tmp_dir, F_OK) != 0);
}

QT_MAIN(QT_CASE(idx_every_type_plain_and_gz), QT_CASE(idx_gzip_two_members),
        QT_CASE(idx_hostile_headers), QT_CASE(idx_truncated_message),
        QT_CASE(idx_truncated_every_length), QT_CASE(npy_matches_numpy_every_dtype),
        QT_CASE(npy_write_read_shapes), QT_CASE(npy_v2_v3), QT_CASE(npy_hostile),
        QT_CASE(npy_truncated_every_length), QT_CASE(array_read_by_content),
        QT_CASE(oom_every_allocation), QT_CASE(dataset_dir_npy_nhwc_norm),
        QT_CASE(dataset_dir_idx_splits), QT_CASE(dataset_bad_inputs),
        QT_CASE(fashion_mnist_real_files), QT_CASE(cleanup_tmp))
