/* qfm.h - qforge's native model file: a versioned, checksummed, mmap-able
 * serialization of a qf_graph (float or quantized). The byte-level layout is
 * specified in docs/qfm-format.md; the constants below are that spec's
 * numbers, shared by the writer, the reader and the tests that craft
 * damaged files. */
#ifndef QF_IO_QFM_H
#define QF_IO_QFM_H

#include "ir/graph.h"

/* Bumped whenever the stored layout changes (docs/qfm-format.md,
 * "Versioning"). Readers accept exactly the versions they know: this one
 * reads 1 (raw storage only) and 2 (adds compressed sections and tensor
 * encodings); the writer writes 2. */
#define QF_QFM_VERSION 2u
#define QF_QFM_VERSION_MIN 1u

/* "\x89QFM\r\n\x1a\n": the high byte catches 7-bit transfers, CR LF and the
 * lone LF catch newline translation, ^Z stops DOS `type`. */
#define QF_QFM_MAGIC "\x89QFM\r\n\x1a\n"
#define QF_QFM_MAGIC_LEN 8
#define QF_QFM_HEADER_SIZE 64u
#define QF_QFM_SECTION_ENTRY_SIZE 32u
#define QF_QFM_ALIGN 64u

/* Section kinds (u32 on disk). Append only. */
enum {
    QF_QFM_SEC_STRINGS = 1,
    QF_QFM_SEC_GRAPH = 2,
    QF_QFM_SEC_VALUES = 3,
    QF_QFM_SEC_QPARAMS = 4,
    QF_QFM_SEC_NODES = 5,
    QF_QFM_SEC_ATTRS = 6,
    QF_QFM_SEC_TENSORS = 7,
    QF_QFM_SEC_TENSOR_DATA = 8,
    QF_QFM_SEC_METADATA_JSON = 9
};
/* Section flags: a reader that does not know a REQUIRED section's kind must
 * refuse the file; an unknown optional section is skipped. */
#define QF_QFM_SECF_REQUIRED 1u
/* Version 2: the section's stored bytes are one zstd frame (declaring its
 * content size) of the section's contents. Never on TENSOR_DATA, whose
 * tensors carry their own encodings so that raw ones stay mmap-able. */
#define QF_QFM_SECF_ZSTD 2u
/* A compressed section may expand at most this much (and never past
 * QF_QFM_MAX_SECTION): bounds what a crafted frame can make us allocate. */
#define QF_QFM_MAX_EXPANSION 256u
#define QF_QFM_MAX_SECTION ((uint64_t)1 << 30)

/* Tensor data encodings (u32 in a TENSORS record). Version 1 files hold RAW
 * only; the others are version 2 (layouts in src/io/qfm_codec.c and the
 * spec). Encoded tensors are decoded into owned memory at load. */
enum {
    QF_QFM_ENC_RAW = 0,
    QF_QFM_ENC_SPARSE_BITMASK = 1,
    QF_QFM_ENC_ZSTD = 2,
    QF_QFM_ENC_SPARSE_BITMASK_ZSTD = 3,
    QF_QFM_ENC_PALETTE = 4 /* codebook of <= 256 values + packed indices */
};

/* Fixed record sizes (bytes). */
#define QF_QFM_VALUE_REC_SIZE 88u
#define QF_QFM_TENSOR_REC_SIZE 96u
#define QF_QFM_NODE_REC_SIZE 40u
#define QF_QFM_ATTR_REC_SIZE 24u
#define QF_QFM_ATTR_TENSOR_HDR_SIZE 80u
#define QF_QFM_QPARAMS_HDR_SIZE 16u

/* Write g (and optionally a UTF-8 JSON metadata string, NULL = no metadata
 * section) to path through an atomic temp-file + rename: on any error the
 * previous file at path, if any, is left untouched and no temp file stays.
 * The graph is validated first (constant sizes, indices, qparams, attribute
 * types), so what is written can be read back. */
qf_status qf_qfm_write(const qf_graph *g, const char *metadata_json, const char *path, qf_err *err);

/* How the writer stores things. qf_qfm_write uses the defaults (all zero):
 * compressed metadata sections, RAW tensors (used in place from the
 * mapping). QF_QFM_STORE_AUTO stores each tensor in the smallest of RAW,
 * ZSTD, SPARSE_BITMASK, SPARSE_BITMASK_ZSTD and PALETTE (RAW unless another
 * saves at least 64 bytes): smaller files, tensors decoded at load. */
typedef enum qf_qfm_tensor_store {
    QF_QFM_STORE_RAW = 0,
    QF_QFM_STORE_AUTO = 1
} qf_qfm_tensor_store;

typedef struct qf_qfm_write_options {
    bool raw_sections;           /* true: do not compress metadata sections */
    qf_qfm_tensor_store tensors; /* default RAW */
    int zstd_level;              /* 0 = 19 for sections, 12 for tensors */
} qf_qfm_write_options;

qf_status qf_qfm_write_ex(const qf_graph *g, const char *metadata_json, const char *path,
                          const qf_qfm_write_options *opt, qf_err *err);

/* Load a qfm file. The file is mmapped read-only and constant values point
 * into the mapping (data_external = true; the graph owns the mapping and
 * unmaps it in qf_graph_free); if mmap fails the file is read into memory and
 * constants are copied. Every offset, size, count and checksum is checked
 * before use; damage gives QF_ERR_FORMAT with a one-line message naming the
 * file. The graph is toposorted and its ops parsed (unsupported ops give
 * QF_ERR_UNSUPPORTED). metadata_json may be NULL; otherwise it receives a
 * qf_malloc'd NUL-terminated copy of the metadata, or NULL if the file has
 * none. On failure *out (and *metadata_json) are NULL. */
/* Does the file at path start with the qfm magic? (false if unreadable) */
bool qf_qfm_file_has_magic(const char *path);

qf_status qf_qfm_load(const char *path, qf_graph **out, char **metadata_json, qf_err *err);

/* Same from a caller-owned buffer (tests, fuzzing): everything is copied, the
 * graph does not reference buf. name_for_errors may be NULL ("model.qfm"). */
qf_status qf_qfm_load_mem(const void *buf, size_t len, const char *name_for_errors, qf_graph **out,
                          char **metadata_json, qf_err *err);

/* Internal, shared by the reader and the writer: true if s[0..len) is
 * well-formed UTF-8 without NUL bytes. */
bool qf_qfm_utf8_ok(const char *s, size_t len);
/* Internal: are q's fields consistent with value v (bits 1..32, n >= 1,
 * axis -1 with n == 1 or a valid axis with n == dims[axis] when known,
 * scales finite and > 0)? Negative axes count as -1. On false, why gets a
 * short reason. */
bool qf_qfm_qparams_ok(const qf_value *v, const qf_qparams *q, char *why, size_t why_len);

#endif /* QF_IO_QFM_H */
