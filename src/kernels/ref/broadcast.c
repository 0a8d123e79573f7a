/* broadcast.c - planning of numpy-style broadcasts (see broadcast.h). */
#include <string.h>

#include "kernels/ref/broadcast.h"

/* Dim d of t aligned to a rank-r output (leading missing dims read as 1). */
static int64_t aligned_dim(const qf_tensor *t, int r, int d) {
    int k = d - (r - t->rank);
    return k >= 0 ? t->dims[k] : 1;
}

void qf_bcast_init(qf_bcast *p, const qf_tensor *a, const qf_tensor *b, const qf_tensor *out) {
    memset(p, 0, sizeof *p);
    int r = out->rank;
    int64_t dims[QF_MAX_DIMS];
    int wa[QF_MAX_DIMS], wb[QF_MAX_DIMS]; /* 1: operand walks this dim */
    int n = 0;
    bool empty = false;
    for (int d = 0; d < r; d++) {
        int64_t od = out->dims[d];
        if (od == 0) empty = true;
        if (od == 1) continue; /* size-1 dims change no offsets */
        int fa = aligned_dim(a, r, d) == od, fb = aligned_dim(b, r, d) == od;
        if (n > 0 && wa[n - 1] == fa && wb[n - 1] == fb) {
            dims[n - 1] *= od; /* same pattern as the previous dim: merge */
            continue;
        }
        dims[n] = od;
        wa[n] = fa;
        wb[n] = fb;
        n++;
    }
    if (n == 0) { /* single element */
        dims[0] = 1;
        wa[0] = wb[0] = 1;
        n = 1;
    }
    int64_t ka = 1, kb = 1;
    for (int d = n - 1; d >= 0; d--) {
        p->dims[d] = dims[d];
        p->sa[d] = wa[d] ? ka : 0;
        p->sb[d] = wb[d] ? kb : 0;
        if (wa[d]) ka *= dims[d];
        if (wb[d]) kb *= dims[d];
    }
    p->rank = n;
    p->inner = dims[n - 1];
    p->step_a = wa[n - 1];
    p->step_b = wb[n - 1];
    p->runs = 1;
    for (int d = 0; d < n - 1; d++)
        p->runs *= dims[d];
    if (empty) p->runs = 0;
}

void qf_bcast_copy(qf_tensor *dst, const qf_tensor *src) {
    qf_bcast p;
    qf_bcast_init(&p, src, src, dst);
    size_t es = qf_dtype_size(dst->dtype);
    const unsigned char *s = src->data;
    unsigned char *o = dst->data;
    qf_bcast_iter it;
    qf_bcast_iter_start(&it);
    for (int64_t r = 0; r < p.runs; r++, qf_bcast_iter_next(&p, &it)) {
        unsigned char *orun = o + (size_t)(r * p.inner) * es;
        const unsigned char *srun = s + (size_t)it.off_a * es;
        if (p.step_a) {
            memcpy(orun, srun, (size_t)p.inner * es);
        } else {
            for (int64_t i = 0; i < p.inner; i++)
                memcpy(orun + (size_t)i * es, srun, es);
        }
    }
}
