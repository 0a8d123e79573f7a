/* test_base.c - base/: CRC32C vectors, arena, atomic writes, allocator
 * injection, fp16, dtype table. */
#include <unistd.h>

#include "base/base.h"
#include "qtest.h"

static void crc32c_vectors(void) {
    /* RFC 3720 B.4 test vectors */
    unsigned char zeros[32] = {0}, ones[32], inc[32];
    for (int i = 0; i < 32; i++) ones[i] = 0xff, inc[i] = (unsigned char)i;
    CHECK_EQ_INT(qf_crc32c(0, zeros, 32), 0x8A9136AAu);
    CHECK_EQ_INT(qf_crc32c(0, ones, 32), 0x62A8AB43u);
    CHECK_EQ_INT(qf_crc32c(0, inc, 32), 0x46DD794Eu);
    CHECK_EQ_INT(qf_crc32c(0, "123456789", 9), 0xE3069283u);
    /* incremental == one shot */
    uint32_t c = qf_crc32c(0, "1234", 4);
    CHECK_EQ_INT(qf_crc32c(c, "56789", 5), 0xE3069283u);
}

static void arena_alignment_and_zero(void) {
    qf_arena a;
    qf_arena_init(&a);
    for (int i = 1; i < 2000; i += 37) {
        unsigned char *p = qf_arena_alloc(&a, (size_t)i);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & 15) == 0);
        for (int k = 0; k < i; k++) CHECK(p[k] == 0);
        memset(p, 0xab, (size_t)i);
    }
    void *big = qf_arena_alloc(&a, 1 << 20);
    CHECK(big != NULL);
    CHECK(a.high_water >= (1u << 20));
    qf_arena_free(&a);
    CHECK(a.head == NULL);
}

static void atomic_write_commit_and_abort(void) {
    char path[] = "/tmp/qf_test_atomicXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    qf_err e;
    CHECK_OK(qf_write_file_atomic(path, "hello", 5, &e));
    void *buf;
    size_t len;
    CHECK_OK(qf_read_file(path, &buf, &len, &e));
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    qf_free(buf);
    /* abort leaves the old file intact and no temp file */
    qf_atomic_file f;
    CHECK_OK(qf_atomic_open(&f, path, &e));
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", f.tmp_path);
    CHECK_OK(qf_atomic_write(&f, "XXXXXXXX", 8, &e));
    qf_atomic_abort(&f);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_OK(qf_read_file(path, &buf, &len, &e));
    CHECK(len == 5);
    qf_free(buf);
    unlink(path);
    /* unwritable directory: clean error */
    qf_status s = qf_write_file_atomic("/nonexistent-dir/x.bin", "a", 1, &e);
    CHECK(s == QF_ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent-dir/x.bin") != NULL);
}

static int fail_after;
static void *failing_alloc(void *u, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return malloc(n);
}
static void *failing_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (fail_after-- <= 0) return NULL;
    return realloc(p, n);
}
static void plain_free(void *u, void *p) { (void)u; free(p); }

static void injected_allocator_failures(void) {
    qf_allocator a = {failing_alloc, failing_realloc, plain_free, NULL};
    qf_set_allocator(&a);
    fail_after = 0;
    void *p = qf_malloc(16);
    qf_set_allocator(NULL);
    CHECK(p == NULL);
    /* calloc overflow guard */
    CHECK(qf_calloc(SIZE_MAX / 2, 4) == NULL);
    void *q = qf_malloc_aligned(100);
    CHECK(q && ((uintptr_t)q & 63) == 0);
    qf_free_aligned(q);
}

static void f16_roundtrip(void) {
    const float vals[] = {0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f};
    for (size_t i = 0; i < QF_ARRAY_LEN(vals); i++)
        CHECK_NEAR(qf_f16_to_f32(qf_f32_to_f16(vals[i])), vals[i], 0);
    CHECK_EQ_INT(qf_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(qf_f32_to_f16(1e6f), 0x7c00);
}

static void dtype_table(void) {
    CHECK_EQ_INT(qf_dtype_size(QF_DT_F32), 4);
    CHECK_EQ_INT(qf_dtype_size(QF_DT_I64), 8);
    CHECK(strcmp(qf_dtype_name(QF_DT_U8), "uint8") == 0);
    qf_tensor t = {.dtype = QF_DT_F32, .rank = 3, .dims = {2, 3, 4}};
    CHECK_EQ_INT(qf_tensor_numel(&t), 24);
    t.dims[1] = -1;
    CHECK_EQ_INT(qf_tensor_numel(&t), -1);
    /* a zero dim wins over an overflowing product; a negative dim never does */
    qf_tensor z = {.dtype = QF_DT_U8, .rank = 4, .dims = {INT64_MAX / 2, INT64_MAX / 2, 0, 5}};
    CHECK_EQ_INT(qf_tensor_numel(&z), 0);
    z.dims[3] = -5;
    CHECK_EQ_INT(qf_tensor_numel(&z), -1);
    CHECK(strcmp(qf_status_str(QF_ERR_FORMAT), "bad format") == 0);
}

static void cpu_features_stable(void) {
    uint32_t a = qf_cpu_features(), b = qf_cpu_features();
    CHECK(a == b);
    /* AVX-512 VNNI implies AVX-512F */
    if (a & QF_CPU_AVX512VNNI) CHECK(a & QF_CPU_AVX512F);
}

QT_MAIN(QT_CASE(crc32c_vectors), QT_CASE(arena_alignment_and_zero),
        QT_CASE(atomic_write_commit_and_abort), QT_CASE(injected_allocator_failures),
        QT_CASE(f16_roundtrip), QT_CASE(dtype_table), QT_CASE(cpu_features_stable))
