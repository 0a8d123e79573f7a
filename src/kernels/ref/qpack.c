/* qpack.c - packing of sub-8-bit weights (int4: two per byte, low nibble
 * first; int2: four per byte, lowest bits first), one byte-aligned row per
 * output channel. This is the storage layout of qfm files and the input of
 * every integer kernel (qf_ref_weight_get widens one element). */
#include <string.h>

#include "kernels/ref/qref.h"

static bool bits_ok(int bits) { return bits == 8 || bits == 4 || bits == 2; }

size_t qf_ref_packed_row_bytes(int64_t cols, int bits) {
    if (!bits_ok(bits) || cols < 0) return 0;
    int per_byte = 8 / bits;
    return (size_t)((cols + per_byte - 1) / per_byte);
}

qf_status qf_ref_pack_weights(const int8_t *src, int64_t rows, int64_t cols, int bits, uint8_t *dst,
                              qf_err *err) {
    if (!bits_ok(bits) || rows < 0 || cols < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_pack_weights: bits %d rows %lld cols %lld",
                       bits, (long long)rows, (long long)cols);
    int32_t lim = (1 << (bits - 1)) - 1; /* restricted symmetric range */
    size_t rb = qf_ref_packed_row_bytes(cols, bits);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) {
            int32_t v = src[r * cols + c];
            if (v < -lim || v > lim)
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "qf_ref_pack_weights: value %d at [%lld][%lld] outside [%d, %d]",
                               (int)v, (long long)r, (long long)c, (int)-lim, (int)lim);
        }
    }
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = dst + (size_t)r * rb;
        const int8_t *s = src + r * cols;
        if (bits == 8) {
            memcpy(row, s, (size_t)cols);
            continue;
        }
        memset(row, 0, rb); /* padding bits of the last byte stay zero */
        int per_byte = 8 / bits;
        uint32_t mask = (1u << bits) - 1;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t field = (uint32_t)(int32_t)s[c] & mask; /* two's complement, low bits */
            row[c / per_byte] |= (uint8_t)(field << ((c % per_byte) * bits));
        }
    }
    return QF_OK;
}

qf_status qf_ref_unpack_weights(const uint8_t *src, int64_t rows, int64_t cols, int bits,
                                int8_t *dst, qf_err *err) {
    if (!bits_ok(bits) || rows < 0 || cols < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "qf_ref_unpack_weights: bits %d rows %lld cols %lld", bits, (long long)rows,
                       (long long)cols);
    size_t rb = qf_ref_packed_row_bytes(cols, bits);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = src + (size_t)r * rb;
        for (int64_t c = 0; c < cols; c++)
            dst[r * cols + c] = (int8_t)qf_ref_weight_get(row, c, bits);
    }
    return QF_OK;
}
