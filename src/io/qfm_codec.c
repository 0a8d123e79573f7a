/* qfm_codec.c - qfm storage encodings: zstd frames and sparse bitmasks.
 *
 * SPARSE_BITMASK layout for a tensor of numel elements of es bytes:
 *   mask: ceil(numel / 8) bytes, bit (i % 8) of byte i / 8 (least
 *         significant bit first) set when element i is stored; the bits past
 *         numel in the last byte are zero;
 *   then the stored elements in index order, es bytes each.
 * An element whose bytes are all zero is never stored by the writer; the
 * reader fills every unstored element with zero bytes. The stored size is
 * exactly mask + popcount(mask) * es.
 */
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "io/qfm.h"
#include "io/qfm_codec.h"

bool qf_qfm_zstd_content_size(const void *src, size_t n, uint64_t *size) {
    unsigned long long cs = ZSTD_getFrameContentSize(src, n);
    if (cs == ZSTD_CONTENTSIZE_UNKNOWN || cs == ZSTD_CONTENTSIZE_ERROR) return false;
    size_t fs = ZSTD_findFrameCompressedSize(src, n);
    if (ZSTD_isError(fs) || fs != n) return false;
    *size = (uint64_t)cs;
    return true;
}

bool qf_qfm_zstd_decode(const void *src, size_t n, void *dst, size_t want, char *why,
                        size_t why_len) {
    uint64_t cs;
    if (!qf_qfm_zstd_content_size(src, n, &cs)) {
        snprintf(why, why_len, "damaged zstd frame (%zu bytes)", n);
        return false;
    }
    if (cs != want) {
        snprintf(why, why_len, "zstd frame holds %llu bytes, expected %zu",
                 (unsigned long long)cs, want);
        return false;
    }
    size_t got = ZSTD_decompress(dst, want, src, n);
    if (ZSTD_isError(got) || got != want) {
        snprintf(why, why_len, "zstd: %s",
                 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
        return false;
    }
    return true;
}

qf_status qf_qfm_zstd_encode(const void *src, size_t n, int level, void **out, size_t *out_len,
                             qf_err *err) {
    size_t cap = ZSTD_compressBound(n);
    void *buf = qf_malloc(cap ? cap : 1);
    if (!buf) return qf_errf(err, QF_ERR_NOMEM, "out of memory compressing %zu bytes", n);
    size_t got = ZSTD_compress(buf, cap, src, n, level);
    if (ZSTD_isError(got)) {
        qf_free(buf);
        return qf_errf(err, QF_ERR_INTERNAL, "zstd compression failed: %s",
                       ZSTD_getErrorName(got));
    }
    *out = buf;
    *out_len = got;
    return QF_OK;
}

static bool elem_is_zero(const unsigned char *p, size_t es) {
    for (size_t k = 0; k < es; k++)
        if (p[k]) return false;
    return true;
}

static qf_status sparse_encode(const void *raw, size_t nbytes, size_t es, void **out,
                               size_t *out_len, qf_err *err) {
    const unsigned char *src = raw;
    size_t numel = nbytes / es, mask_bytes = (numel + 7) / 8, nnz = 0;
    for (size_t i = 0; i < numel; i++)
        nnz += !elem_is_zero(src + i * es, es);
    size_t len = mask_bytes + nnz * es;
    unsigned char *buf = qf_calloc(len ? len : 1, 1);
    if (!buf) return qf_errf(err, QF_ERR_NOMEM, "out of memory encoding a sparse tensor");
    unsigned char *vals = buf + mask_bytes;
    for (size_t i = 0; i < numel; i++) {
        const unsigned char *e = src + i * es;
        if (elem_is_zero(e, es)) continue;
        buf[i / 8] |= (unsigned char)(1u << (i % 8));
        memcpy(vals, e, es);
        vals += es;
    }
    *out = buf;
    *out_len = len;
    return QF_OK;
}

qf_status qf_qfm_tensor_encode(uint32_t enc, const void *raw, size_t nbytes, size_t elem_size,
                               int level, void **out, size_t *out_len, qf_err *err) {
    if (elem_size == 0 || nbytes % elem_size)
        return qf_errf(err, QF_ERR_INVALID_ARG, "tensor encode: %zu bytes of %zu-byte elements",
                       nbytes, elem_size);
    switch (enc) {
    case QF_QFM_ENC_ZSTD:
        return qf_qfm_zstd_encode(raw, nbytes, level, out, out_len, err);
    case QF_QFM_ENC_SPARSE_BITMASK:
        return sparse_encode(raw, nbytes, elem_size, out, out_len, err);
    case QF_QFM_ENC_SPARSE_BITMASK_ZSTD: {
        void *sp;
        size_t sp_len;
        qf_status s = sparse_encode(raw, nbytes, elem_size, &sp, &sp_len, err);
        if (s) return s;
        s = qf_qfm_zstd_encode(sp, sp_len, level, out, out_len, err);
        qf_free(sp);
        return s;
    }
    default:
        return qf_errf(err, QF_ERR_INVALID_ARG, "tensor encode: unknown encoding %u", enc);
    }
}

static bool sparse_decode(const unsigned char *src, uint64_t n, size_t es, unsigned char *dst,
                          uint64_t want, char *why, size_t why_len) {
    uint64_t numel = want / es, mask_bytes = (numel + 7) / 8;
    if (n < mask_bytes) {
        snprintf(why, why_len, "sparse tensor: %llu bytes, shorter than its %llu-byte mask",
                 (unsigned long long)n, (unsigned long long)mask_bytes);
        return false;
    }
    if (numel % 8 && (src[mask_bytes - 1] >> (numel % 8))) {
        snprintf(why, why_len, "sparse tensor: mask bits set past the last element");
        return false;
    }
    uint64_t nnz = 0;
    for (uint64_t i = 0; i < mask_bytes; i++)
        nnz += (uint64_t)__builtin_popcount(src[i]);
    if (n - mask_bytes != nnz * es) {
        snprintf(why, why_len, "sparse tensor: mask marks %llu elements, %llu value bytes stored",
                 (unsigned long long)nnz, (unsigned long long)(n - mask_bytes));
        return false;
    }
    const unsigned char *vals = src + mask_bytes;
    for (uint64_t i = 0; i < numel; i++) {
        if (src[i / 8] >> (i % 8) & 1u) {
            memcpy(dst + i * es, vals, es);
            vals += es;
        } else {
            memset(dst + i * es, 0, es);
        }
    }
    return true;
}

bool qf_qfm_tensor_decode(uint32_t enc, const unsigned char *src, uint64_t n, size_t elem_size,
                          void *dst, uint64_t want, char *why, size_t why_len) {
    if (elem_size == 0 || want % elem_size || want > SIZE_MAX || n > SIZE_MAX) {
        snprintf(why, why_len, "bad tensor size");
        return false;
    }
    switch (enc) {
    case QF_QFM_ENC_ZSTD:
        return qf_qfm_zstd_decode(src, (size_t)n, dst, (size_t)want, why, why_len);
    case QF_QFM_ENC_SPARSE_BITMASK:
        return sparse_decode(src, n, elem_size, dst, want, why, why_len);
    case QF_QFM_ENC_SPARSE_BITMASK_ZSTD: {
        /* the sparse layout is at most mask + all elements */
        uint64_t numel = want / elem_size, most = (numel + 7) / 8 + want, cs;
        if (!qf_qfm_zstd_content_size(src, (size_t)n, &cs) || cs > most) {
            snprintf(why, why_len, "damaged zstd frame or oversized sparse payload");
            return false;
        }
        unsigned char *tmp = qf_malloc(cs ? (size_t)cs : 1);
        if (!tmp) {
            snprintf(why, why_len, "out of memory");
            return false;
        }
        bool ok = qf_qfm_zstd_decode(src, (size_t)n, tmp, (size_t)cs, why, why_len) &&
                  sparse_decode(tmp, cs, elem_size, dst, want, why, why_len);
        qf_free(tmp);
        return ok;
    }
    default:
        snprintf(why, why_len, "unknown encoding %u", enc);
        return false;
    }
}
