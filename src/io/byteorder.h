/* byteorder.h - copying element arrays between file byte order and host
 * order (IDX is big-endian, NPY little-endian). Internal to io/. */
#ifndef QF_IO_BYTEORDER_H
#define QF_IO_BYTEORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool qf_host_is_big_endian(void) {
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
    return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
#else
    const unsigned one = 1;
    return *(const unsigned char *)&one == 0;
#endif
}

/* Copy n elements of esize bytes, reversing each element's bytes when the
 * file order (src_big_endian) differs from the host's. */
static inline void qf_copy_elems(void *dst, const void *src, size_t n, size_t esize,
                                 bool src_big_endian) {
    if (esize <= 1 || src_big_endian == qf_host_is_big_endian()) {
        memcpy(dst, src, n * esize);
        return;
    }
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++, d += esize, s += esize)
        for (size_t b = 0; b < esize; b++)
            d[b] = s[esize - 1 - b];
}

static inline uint32_t qf_load_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t qf_load_le32(const unsigned char *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline uint16_t qf_load_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

#endif /* QF_IO_BYTEORDER_H */
