/* qfm_codec.h - the storage encodings of qfm version 2 (docs/qfm-format.md,
 * "Encodings"), shared by the writer and the reader:
 *  - zstd-compressed sections (section flag QF_QFM_SECF_ZSTD);
 *  - tensor encodings SPARSE_BITMASK, ZSTD and SPARSE_BITMASK_ZSTD.
 * Decoders treat their input as hostile: sizes are checked against the
 * caller's expectation before anything is written, and a zstd frame must
 * declare its content size, which must match exactly. */
#ifndef QF_IO_QFM_CODEC_H
#define QF_IO_QFM_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* A zstd frame's declared content size, or false when the frame does not
 * declare one, is damaged, or does not end exactly at n bytes. */
bool qf_qfm_zstd_content_size(const void *src, size_t n, uint64_t *size);

/* Decompress one frame of n bytes into dst, which must receive exactly
 * want bytes. False (with a reason) on damage or size mismatch. */
bool qf_qfm_zstd_decode(const void *src, size_t n, void *dst, size_t want, char *why,
                        size_t why_len);

/* Compress n bytes at the given level into a qf_malloc'd frame. */
qf_status qf_qfm_zstd_encode(const void *src, size_t n, int level, void **out, size_t *out_len,
                             qf_err *err);

/* Encode nbytes of raw tensor data (elements of elem_size bytes) with a
 * tensor encoding (QF_QFM_ENC_*, not RAW) into a qf_malloc'd buffer. */
qf_status qf_qfm_tensor_encode(uint32_t enc, const void *raw, size_t nbytes, size_t elem_size,
                               int level, void **out, size_t *out_len, qf_err *err);

/* Decode n stored bytes of encoding enc into dst (exactly want bytes,
 * elements of elem_size). False (with a reason) when the stored bytes are
 * not a valid encoding of a tensor of that size. */
bool qf_qfm_tensor_decode(uint32_t enc, const unsigned char *src, uint64_t n, size_t elem_size,
                          void *dst, uint64_t want, char *why, size_t why_len);

#endif /* QF_IO_QFM_CODEC_H */
