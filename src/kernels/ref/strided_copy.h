/* strided_copy.h - the one loop nest behind Transpose, Slice, Expand and
 * Pad: copy an N-d box of elements between two strided layouts. */
#ifndef QF_KERNELS_REF_STRIDED_COPY_H
#define QF_KERNELS_REF_STRIDED_COPY_H

#include <stddef.h>
#include <stdint.h>

/* Copy the box sizes[0..rank) of elements of `esize` bytes from src to dst.
 * dst_strides / src_strides are in elements (not bytes) and may be negative
 * (reversed Slice) or zero on the source side (Expand broadcasting); dst and
 * src point at the box's first element. rank is 0..QF_MAX_DIMS (rank 0 copies
 * one element); a zero size copies nothing. Size-1 axes are dropped and axes
 * contiguous in both layouts merged, so a contiguous inner run becomes one
 * memcpy. dst and src must not overlap. */
void qf_ref_copy_strided(void *dst, const int64_t *dst_strides, const void *src,
                         const int64_t *src_strides, int rank, const int64_t *sizes, size_t esize);

/* Row-major element strides of dims[0..rank). */
void qf_ref_row_strides(int rank, const int64_t *dims, int64_t *strides);

#endif /* QF_KERNELS_REF_STRIDED_COPY_H */
