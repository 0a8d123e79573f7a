/* base.h - internal foundation: errors, allocation, arena, logging,
 * checksums, atomic file writing. Everything above base/ includes this. */
#ifndef QF_BASE_H
#define QF_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qforge.h"

#define QF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define QF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QF_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define QF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define QF_PRINTF(f, a)
#endif

/* Record an error (if err != NULL) and return `s`, so callers can write
 * `return qf_errf(err, QF_ERR_FORMAT, "%s: truncated", path);` */
qf_status qf_errf(qf_err *err, qf_status s, const char *fmt, ...) QF_PRINTF(3, 4);
/* Prefix an existing message: "prefix: old message". */
void qf_err_prefix(qf_err *err, const char *fmt, ...) QF_PRINTF(2, 3);
static inline void qf_err_clear(qf_err *err) {
    if (err) {
        err->status = QF_OK;
        err->msg[0] = 0;
    }
}

/* ---- allocation (through the injectable allocator) -------------------- */
void *qf_malloc(size_t n);
void *qf_calloc(size_t count, size_t size); /* overflow-checked, zeroed */
void *qf_realloc(void *p, size_t n);
void qf_free(void *p);
char *qf_strdup(const char *s);
/* 64-byte aligned allocation; free with qf_free_aligned. */
void *qf_malloc_aligned(size_t n);
void qf_free_aligned(void *p);

/* size arithmetic guards: return false on overflow */
static inline bool qf_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}
static inline bool qf_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return false;
    *out = a + b;
    return true;
}

/* ---- bump arena ------------------------------------------------------- */
/* Chunked bump allocator; everything is released at once by qf_arena_free.
 * Used for graph-lifetime data (names, attributes, parsed op params). */
typedef struct qf_arena_chunk qf_arena_chunk;
typedef struct qf_arena {
    qf_arena_chunk *head;
    size_t used_total;   /* bytes handed out */
    size_t high_water;   /* max used_total seen */
} qf_arena;
void qf_arena_init(qf_arena *a);
void *qf_arena_alloc(qf_arena *a, size_t n); /* 16-byte aligned, zeroed; NULL on OOM */
char *qf_arena_strdup(qf_arena *a, const char *s);
void qf_arena_free(qf_arena *a);

/* ---- logging ---------------------------------------------------------- */
void qf_log(qf_log_level lvl, const char *fmt, ...) QF_PRINTF(2, 3);

/* ---- checksums -------------------------------------------------------- */
/* CRC32C (Castagnoli), init 0; pass a previous result as `crc` to continue. */
uint32_t qf_crc32c(uint32_t crc, const void *data, size_t len);

/* ---- files ------------------------------------------------------------ */
/* Read a whole file into a qf_malloc'd buffer (NUL-terminated beyond len). */
qf_status qf_read_file(const char *path, void **buf, size_t *len, qf_err *err);

/* Atomic file writing: data goes to "<path>.tmp.<pid>" then is renamed over
 * path on commit; abort (or a failed commit) removes the temp file, so no
 * half-written output is ever left behind. */
typedef struct qf_atomic_file {
    void *fp; /* FILE* */
    char *path;
    char *tmp_path;
    bool failed;
} qf_atomic_file;
qf_status qf_atomic_open(qf_atomic_file *f, const char *path, qf_err *err);
qf_status qf_atomic_write(qf_atomic_file *f, const void *data, size_t len, qf_err *err);
qf_status qf_atomic_commit(qf_atomic_file *f, qf_err *err);
void qf_atomic_abort(qf_atomic_file *f);
/* One-shot helper. */
qf_status qf_write_file_atomic(const char *path, const void *data, size_t len, qf_err *err);

/* ---- fp16 ------------------------------------------------------------- */
float qf_f16_to_f32(uint16_t h);
uint16_t qf_f32_to_f16(float f);

#endif /* QF_BASE_H */
