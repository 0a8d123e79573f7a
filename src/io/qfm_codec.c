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
 *
 * PALETTE layout (weight sharing: k-means clustered or low-bit weights):
 *   u32 k (1..256 distinct elements), then the k palette entries (es bytes
 *   each), then numel indices of b = bits(k - 1) bits each (b = 0 when k is
 *   1), packed least significant bit first, the last byte zero-padded. Every
 *   index must be < k. The stored size is 4 + k * es + ceil(numel * b / 8).
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

static int index_bits(uint32_t k) {
    int b = 0;
    while ((1u << b) < k) b++;
    return b;
}

/* Palette of at most 256 distinct elements, or QF_ERR_UNSUPPORTED. */
static qf_status palette_encode(const void *raw, size_t nbytes, size_t es, void **out,
                                size_t *out_len, qf_err *err) {
    const unsigned char *src = raw;
    size_t numel = nbytes / es;
    unsigned char pal[256 * 8];
    uint32_t k = 0;
    if (es > 8) return qf_errf(err, QF_ERR_UNSUPPORTED, "palette: %zu-byte elements", es);
    uint8_t *idx = qf_malloc(numel ? numel : 1);
    if (!idx) return qf_errf(err, QF_ERR_NOMEM, "out of memory encoding a palette");
    int16_t slot[256]; /* byte elements: value -> palette index, no search */
    memset(slot, 0xff, sizeof slot);
    for (size_t i = 0; i < numel; i++) {
        const unsigned char *e = src + i * es;
        uint32_t j = 0;
        if (es == 1)
            j = slot[e[0]] >= 0 ? (uint32_t)slot[e[0]] : k;
        else
            while (j < k && memcmp(pal + j * es, e, es) != 0) j++;
        if (es == 1 && j == k) slot[e[0]] = (int16_t)k;
        if (j == k) {
            if (k == 256) {
                qf_free(idx);
                return qf_errf(err, QF_ERR_UNSUPPORTED, "palette: more than 256 values");
            }
            memcpy(pal + k * es, e, es);
            k++;
        }
        idx[i] = (uint8_t)j;
    }
    int b = index_bits(k ? k : 1);
    size_t ib = (numel * (size_t)b + 7) / 8, len = 4 + (size_t)k * es + ib;
    unsigned char *buf = qf_calloc(len, 1);
    if (!buf) {
        qf_free(idx);
        return qf_errf(err, QF_ERR_NOMEM, "out of memory encoding a palette");
    }
    buf[0] = (unsigned char)k, buf[1] = (unsigned char)(k >> 8);
    memcpy(buf + 4, pal, (size_t)k * es);
    unsigned char *bits = buf + 4 + (size_t)k * es;
    for (size_t i = 0; i < numel && b; i++)
        for (int t = 0; t < b; t++)
            if (idx[i] >> t & 1) bits[(i * b + t) / 8] |= (unsigned char)(1u << ((i * b + t) % 8));
    qf_free(idx);
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
    case QF_QFM_ENC_PALETTE:
        return palette_encode(raw, nbytes, elem_size, out, out_len, err);
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

static bool palette_decode(const unsigned char *src, uint64_t n, size_t es, unsigned char *dst,
                           uint64_t want, char *why, size_t why_len) {
    uint64_t numel = want / es;
    if (n < 4) {
        snprintf(why, why_len, "palette: %llu bytes, no header", (unsigned long long)n);
        return false;
    }
    uint32_t k = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
                 (uint32_t)src[3] << 24;
    if (k < 1 || k > 256) {
        snprintf(why, why_len, "palette of %u entries (1..256 allowed)", k);
        return false;
    }
    int b = index_bits(k);
    uint64_t need = 4 + (uint64_t)k * es + (numel * (uint64_t)b + 7) / 8;
    if (n != need) {
        snprintf(why, why_len, "palette: %llu bytes stored, %llu expected",
                 (unsigned long long)n, (unsigned long long)need);
        return false;
    }
    const unsigned char *pal = src + 4, *bits = pal + (size_t)k * es;
    for (uint64_t i = 0; i < numel; i++) {
        uint32_t j = 0;
        for (int t = 0; t < b; t++) {
            uint64_t bit = i * (uint64_t)b + (uint64_t)t;
            j |= (uint32_t)(bits[bit / 8] >> (bit % 8) & 1u) << t;
        }
        if (j >= k) {
            snprintf(why, why_len, "palette index %u of element %llu >= %u entries", j,
                     (unsigned long long)i, k);
            return false;
        }
        memcpy(dst + i * es, pal + (size_t)j * es, es);
    }
    uint64_t used = numel * (uint64_t)b;
    if (used % 8 && (bits[used / 8] >> (used % 8))) {
        snprintf(why, why_len, "palette: padding bits are not zero");
        return false;
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
    case QF_QFM_ENC_PALETTE:
        return palette_decode(src, n, elem_size, dst, want, why, why_len);
    default:
        snprintf(why, why_len, "unknown encoding %u", enc);
        return false;
    }
}
