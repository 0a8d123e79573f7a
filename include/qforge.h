/* qforge.h - public C API of libqforge.
 *
 * Lifecycle (XNNPACK style): load a model -> create a session (plans shapes
 * and memory for a given input binding) -> run (never allocates once planned).
 * Every fallible function returns a qf_status; when an error buffer is passed
 * it receives a one-line human message naming the file, node or tensor.
 * Ownership: the caller owns every buffer it passes in; handles returned by
 * *_create / *_load are released with the matching *_free, which accepts NULL.
 */
#ifndef QFORGE_H
#define QFORGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QF_VERSION_MAJOR 0
#define QF_VERSION_MINOR 1
#define QF_VERSION_PATCH 0

/* ---- status codes --------------------------------------------------- */
typedef enum qf_status {
    QF_OK = 0,
    QF_ERR_INVALID_ARG, /* caller passed something out of range */
    QF_ERR_UNSUPPORTED, /* valid input that qforge does not handle (op, attr, dtype) */
    QF_ERR_NOMEM,       /* allocation failed */
    QF_ERR_IO,          /* open/read/write/rename failed */
    QF_ERR_FORMAT,      /* malformed file or inconsistent model */
    QF_ERR_SHAPE,       /* shapes do not agree */
    QF_ERR_INTERNAL,    /* a bug in qforge */
    QF_STATUS_COUNT
} qf_status;

const char *qf_status_str(qf_status s);

/* Error message buffer. Functions that take a qf_err* fill msg on failure
 * (when the pointer is non-NULL). */
#define QF_ERR_MSG_LEN 512
typedef struct qf_err {
    qf_status status;
    char msg[QF_ERR_MSG_LEN];
} qf_err;

/* ---- data types (values equal ONNX TensorProto.DataType) -------------- */
typedef enum qf_dtype {
    QF_DT_UNDEF = 0,
    QF_DT_F32 = 1,
    QF_DT_U8 = 2,
    QF_DT_I8 = 3,
    QF_DT_U16 = 4,
    QF_DT_I16 = 5,
    QF_DT_I32 = 6,
    QF_DT_I64 = 7,
    QF_DT_STRING = 8,
    QF_DT_BOOL = 9,
    QF_DT_F16 = 10,
    QF_DT_F64 = 11,
    QF_DT_U32 = 12,
    QF_DT_U64 = 13,
    QF_DT_COUNT
} qf_dtype;

/* Size in bytes of one element; 0 for UNDEF/STRING/unknown. */
size_t qf_dtype_size(qf_dtype t);
const char *qf_dtype_name(qf_dtype t);

/* ---- tensors ---------------------------------------------------------- */
#define QF_MAX_DIMS 8

/* A dense row-major tensor view. `data` is not owned by the struct. */
typedef struct qf_tensor {
    qf_dtype dtype;
    int rank;                  /* 0..QF_MAX_DIMS */
    int64_t dims[QF_MAX_DIMS]; /* each >= 0 */
    void *data;
} qf_tensor;

/* Number of elements (1 for rank 0); -1 on overflow or a negative dim. */
int64_t qf_tensor_numel(const qf_tensor *t);

/* ---- allocator -------------------------------------------------------- */
/* Every allocation of the library goes through this table. Install before
 * creating any handle; pass NULL to restore malloc/realloc/free. */
typedef struct qf_allocator {
    void *(*alloc)(void *user, size_t size);
    void *(*realloc)(void *user, void *ptr, size_t size);
    void (*free)(void *user, void *ptr);
    void *user;
} qf_allocator;
void qf_set_allocator(const qf_allocator *a);

/* ---- logging ---------------------------------------------------------- */
typedef enum qf_log_level { QF_LOG_ERROR = 0, QF_LOG_WARN, QF_LOG_INFO, QF_LOG_DEBUG } qf_log_level;
typedef void (*qf_log_fn)(void *user, qf_log_level level, const char *msg);
/* Route library log lines (default: none are printed). */
void qf_set_log(qf_log_fn fn, void *user, qf_log_level max_level);

/* ---- CPU features ----------------------------------------------------- */
enum {
    QF_CPU_SSE42 = 1u << 0,
    QF_CPU_AVX2 = 1u << 1,
    QF_CPU_FMA = 1u << 2,
    QF_CPU_AVX512F = 1u << 3,
    QF_CPU_AVX512BW = 1u << 4,
    QF_CPU_AVX512VNNI = 1u << 5,
    QF_CPU_AVXVNNI = 1u << 6,
    QF_CPU_AVX512VBMI = 1u << 7 /* vpermb/vpermi2b (the depthwise int8 kernel uses them) */
};
/* Probed once; later calls return the cached mask. */
uint32_t qf_cpu_features(void);

/* ---- models ----------------------------------------------------------- */
typedef struct qf_model qf_model;

/* Load an ONNX model file (external data resolved next to the file). */
qf_status qf_model_load_onnx(const char *path, qf_model **out, qf_err *err);
/* Load from memory; base_dir is used to resolve external data (may be NULL). */
qf_status qf_model_load_onnx_mem(const void *buf, size_t len, const char *base_dir,
                                 const char *name_for_errors, qf_model **out, qf_err *err);
/* Load an ONNX model or a qforge .qfm file (told apart by content), to run:
 * an ONNX graph gets the inference optimizations (BatchNormalization folded
 * into the Conv/Gemm before it, constants folded, Identity/Dropout and
 * dead nodes removed; float rounding may differ from the unfolded graph).
 * qf_model_load_onnx keeps the graph as the file has it. */
qf_status qf_model_load(const char *path, qf_model **out, qf_err *err);
void qf_model_free(qf_model *m);

int qf_model_num_inputs(const qf_model *m);
int qf_model_num_outputs(const qf_model *m);
/* Name/dtype/declared shape of input i. Dynamic dims are reported as -1. */
const char *qf_model_input_name(const qf_model *m, int i);
const char *qf_model_output_name(const qf_model *m, int i);
qf_status qf_model_input_info(const qf_model *m, int i, qf_tensor *shape_out);
qf_status qf_model_output_info(const qf_model *m, int i, qf_tensor *shape_out);

/* ---- sessions --------------------------------------------------------- */
typedef struct qf_session qf_session;

typedef struct qf_session_options {
    int num_threads; /* 0 = default (1) */
} qf_session_options;

/* Create a session over a model (the model must outlive the session). */
qf_status qf_session_create(const qf_model *m, const qf_session_options *opt, qf_session **out,
                            qf_err *err);
void qf_session_free(qf_session *s);

/* Run. inputs[i] binds graph input i (in model order, n_inputs must equal
 * qf_model_num_inputs). The first run, or a run whose input shapes differ
 * from the previous one, (re)plans shapes and memory; a run with the same
 * shapes does not allocate. On success outputs[i] describes output i; its
 * data points into session memory valid until the next run or free. */
qf_status qf_session_run(qf_session *s, const qf_tensor *inputs, int n_inputs, qf_tensor *outputs,
                         int n_outputs, qf_err *err);

/* Bytes of the planned activation arena (0 before the first run). */
size_t qf_session_arena_bytes(const qf_session *s);

/* Bytes of the planned kernel scratch region (packed activation bands,
 * padded input planes), shared by all nodes; 0 before the first run. The
 * session's planned memory is arena + scratch: a run allocates nothing. */
size_t qf_session_scratch_bytes(const qf_session *s);

/* Images per chunk when the current plan runs a batch as several smaller
 * ones (0: it does not). A batch whose activations would overflow the
 * last-level cache runs through the whole graph one chunk at a time (the
 * largest divisor of the batch whose biggest activation fits half that
 * cache, divided among the threads that run chunks at once), when every run-time node treats the images of a batch
 * independently; QF_BATCH_CHUNK=N forces N images (a divisor of the batch),
 * 0 turns it off. Results are the same bytes either way. */
int qf_session_batch_chunk(const qf_session *s);

/* Threads that run the chunks of the current plan at the same time, each a
 * whole chunk on single-threaded kernels in memory of its own (arena and
 * scratch are then per thread: the sizes above count them all): the
 * session's thread count when chunks run concurrently, 1 when they run one
 * after another with every thread on each layer, 0 when the plan has no
 * chunks. Integer graphs without float convolutions or matrix products,
 * at least one chunk per thread; QF_IMAGE_PARALLEL=0 turns it off. */
int qf_session_batch_workers(const qf_session *s);

/* Adaptive threading: a session with several threads whose runs split each
 * layer over them times those runs, on all threads and on the calling
 * thread alone, and takes whichever mode is faster at the moment, trying
 * the other one for 5 runs after every 64 (moving data between cores can
 * cost several times more at some moments than at others on a virtual
 * machine). Same
 * results either way. *timed: runs timed so far; *serial: how many of
 * them ran on the caller alone (either pointer may be NULL).
 * QF_ADAPTIVE_THREADS=0 turns it off. */
void qf_session_adaptive_runs(const qf_session *s, uint64_t *timed, uint64_t *serial);

/* Residual adds (qforge.QAdd) the current plan runs inside the convolution
 * that produces one of their operands (0 before the first run; always 0
 * while an observer is set, since observers see every node's output). */
int qf_session_fused_adds(const qf_session *s);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_H */
