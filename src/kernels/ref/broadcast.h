/* broadcast.h - numpy-style broadcasting for the reference kernels.
 *
 * A qf_bcast plan folds the output shape into as few dims as possible:
 * neighbouring dims merge when each operand either walks both of them or
 * broadcasts over both. What is left is a list of "runs" (the innermost
 * collapsed dim) in which each operand steps by 1 (walks) or 0 (is repeated).
 * So equal shapes become one run over everything, a scalar operand is a
 * step-0 run, and a per-channel operand ([1,C,1,1] against [N,C,H,W]) is
 * N*C runs of H*W with a fixed value: kernels specialise on the two steps
 * and never compute an N-D index per element.
 *
 * Output element offset of run r is r * inner; the operand offsets come from
 * qf_bcast_iter, advanced once per run.
 */
#ifndef QF_KERNELS_REF_BROADCAST_H
#define QF_KERNELS_REF_BROADCAST_H

#include "base/base.h"

typedef struct qf_bcast {
    int rank;                  /* collapsed rank, >= 1 */
    int64_t dims[QF_MAX_DIMS]; /* collapsed output dims */
    int64_t sa[QF_MAX_DIMS];   /* element stride of a per collapsed dim (0 = repeated) */
    int64_t sb[QF_MAX_DIMS];
    int64_t inner;      /* run length = dims[rank-1] */
    int64_t runs;       /* number of runs; 0 when the output is empty */
    int step_a, step_b; /* stride of a/b inside a run: 1 or 0 */
} qf_bcast;

typedef struct qf_bcast_iter {
    int64_t idx[QF_MAX_DIMS];
    int64_t off_a, off_b; /* element offsets of the current run's start */
} qf_bcast_iter;

/* Plan a and b broadcast to out. out's dims must be the broadcast of a's and
 * b's (as qf_broadcast_shape computes; unidirectional cases such as PRelu's
 * slope qualify). Only rank/dims of the tensors are read. */
void qf_bcast_init(qf_bcast *p, const qf_tensor *a, const qf_tensor *b, const qf_tensor *out);

static inline void qf_bcast_iter_start(qf_bcast_iter *it) {
    for (int i = 0; i < QF_MAX_DIMS; i++)
        it->idx[i] = 0;
    it->off_a = it->off_b = 0;
}

/* Step to the next run (odometer over the outer collapsed dims). */
static inline void qf_bcast_iter_next(const qf_bcast *p, qf_bcast_iter *it) {
    for (int d = p->rank - 2; d >= 0; d--) {
        it->off_a += p->sa[d];
        it->off_b += p->sb[d];
        if (++it->idx[d] < p->dims[d]) return;
        it->off_a -= p->sa[d] * p->dims[d];
        it->off_b -= p->sb[d] * p->dims[d];
        it->idx[d] = 0;
    }
}

/* dst (shape of `dst`) = src broadcast to it, for any element size. src's
 * shape must broadcast to dst's. */
void qf_bcast_copy(qf_tensor *dst, const qf_tensor *src);

#endif /* QF_KERNELS_REF_BROADCAST_H */
