/* strided_copy.c - reference N-d strided copy shared by the data-movement
 * kernels. After dropping size-1 axes and merging axes that are contiguous
 * in both layouts, at most four axes are walked by plain nested loops (the
 * common case: NCHW transposes, slices and pads); deeper boxes use an
 * odometer over the outer axes. */
#include <string.h>

#include "kernels/ref/strided_copy.h"
#include "qforge.h"

void qf_ref_row_strides(int rank, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* One run of `count` elements along the innermost axis. */
static void copy_run(unsigned char *dst, int64_t ds, const unsigned char *src, int64_t ss,
                     int64_t count, size_t es) {
    if (ds == 1 && ss == 1) {
        memcpy(dst, src, (size_t)count * es);
        return;
    }
    /* typed loops: element-wise memcpy calls are slow for small elements */
    switch (es) {
    case 1:
        for (int64_t i = 0; i < count; i++)
            dst[i * ds] = src[i * ss];
        return;
    case 2: {
        uint16_t *d = (uint16_t *)(void *)dst;
        const uint16_t *s = (const uint16_t *)(const void *)src;
        for (int64_t i = 0; i < count; i++)
            d[i * ds] = s[i * ss];
        return;
    }
    case 4: {
        uint32_t *d = (uint32_t *)(void *)dst;
        const uint32_t *s = (const uint32_t *)(const void *)src;
        for (int64_t i = 0; i < count; i++)
            d[i * ds] = s[i * ss];
        return;
    }
    case 8: {
        uint64_t *d = (uint64_t *)(void *)dst;
        const uint64_t *s = (const uint64_t *)(const void *)src;
        for (int64_t i = 0; i < count; i++)
            d[i * ds] = s[i * ss];
        return;
    }
    default:
        for (int64_t i = 0; i < count; i++)
            memcpy(dst + (ptrdiff_t)(i * ds) * (ptrdiff_t)es,
                   src + (ptrdiff_t)(i * ss) * (ptrdiff_t)es, es);
        return;
    }
}

void qf_ref_copy_strided(void *dst, const int64_t *dst_strides, const void *src,
                         const int64_t *src_strides, int rank, const int64_t *sizes, size_t esize) {
    int64_t sz[QF_MAX_DIMS], ds[QF_MAX_DIMS], ss[QF_MAX_DIMS];
    int r = 0;
    if (rank > QF_MAX_DIMS) return;
    for (int i = 0; i < rank; i++) {
        if (sizes[i] <= 0) return; /* empty box */
        if (sizes[i] == 1) continue;
        if (r > 0 && ds[r - 1] == dst_strides[i] * sizes[i] &&
            ss[r - 1] == src_strides[i] * sizes[i]) {
            /* axis i continues the previous one in both layouts: merge */
            sz[r - 1] *= sizes[i];
            ds[r - 1] = dst_strides[i];
            ss[r - 1] = src_strides[i];
            continue;
        }
        sz[r] = sizes[i];
        ds[r] = dst_strides[i];
        ss[r] = src_strides[i];
        r++;
    }
    unsigned char *d = dst;
    const unsigned char *s = src;
    ptrdiff_t es = (ptrdiff_t)esize;
    if (r == 0) {
        memcpy(d, s, esize);
        return;
    }
    if (r <= 4) {
        /* pad to four axes with leading size-1 axes */
        int64_t z[4], dd[4], sd[4];
        int pad = 4 - r;
        for (int i = 0; i < 4; i++) {
            z[i] = i < pad ? 1 : sz[i - pad];
            dd[i] = i < pad ? 0 : ds[i - pad];
            sd[i] = i < pad ? 0 : ss[i - pad];
        }
        for (int64_t i0 = 0; i0 < z[0]; i0++)
            for (int64_t i1 = 0; i1 < z[1]; i1++)
                for (int64_t i2 = 0; i2 < z[2]; i2++) {
                    ptrdiff_t od = (ptrdiff_t)(i0 * dd[0] + i1 * dd[1] + i2 * dd[2]) * es;
                    ptrdiff_t os = (ptrdiff_t)(i0 * sd[0] + i1 * sd[1] + i2 * sd[2]) * es;
                    copy_run(d + od, dd[3], s + os, sd[3], z[3], esize);
                }
        return;
    }
    /* odometer over the outer r-1 axes */
    int64_t idx[QF_MAX_DIMS] = {0};
    ptrdiff_t od = 0, os = 0;
    for (;;) {
        copy_run(d + od, ds[r - 1], s + os, ss[r - 1], sz[r - 1], esize);
        int k = r - 2;
        for (; k >= 0; k--) {
            idx[k]++;
            od += (ptrdiff_t)ds[k] * es;
            os += (ptrdiff_t)ss[k] * es;
            if (idx[k] < sz[k]) break;
            od -= (ptrdiff_t)(ds[k] * sz[k]) * es;
            os -= (ptrdiff_t)(ss[k] * sz[k]) * es;
            idx[k] = 0;
        }
        if (k < 0) return;
    }
}
