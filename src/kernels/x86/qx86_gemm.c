/* qx86_gemm.c - the x86 int8 fully connected driver (qx86.h): rows of x
 * are packed as unsigned bytes (q + 128) in bands, tiles of up to 8 rows x 32
 * output channels are split over the thread pool and run by the ISA's
 * micro-kernel. Bit-identical to qf_ref_gemm_s8. */
#include "kernels/x86/qx86.h"

#if defined(__x86_64__)
#include <emmintrin.h>
#include <string.h>

#include "kernels/ref/qref_util.h"

#define BAND_BYTES ((size_t)512 << 10)
#define SCRATCH_MAX ((size_t)1 << 30)

typedef struct gplan {
    int64_t k4, row_bytes, band_rows, nb, cols_p;
    size_t corr_off, mult_off, mq_off, shift_off, total;
} gplan;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static bool make_plan(const qf_ref_gemm_params *p, gplan *pl) {
    memset(pl, 0, sizeof *pl);
    if (p->m < 1 || p->n < 1 || p->k < 1 || p->k > INT32_MAX - 3) return false;
    pl->k4 = ((int64_t)p->k + 3) / 4;
    pl->row_bytes = pl->k4 * 4;
    int64_t band = (int64_t)(BAND_BYTES / (size_t)pl->row_bytes) / QX_GEMM_ROWS * QX_GEMM_ROWS;
    if (band < QX_GEMM_ROWS) band = QX_GEMM_ROWS;
    const int64_t all = ((int64_t)p->m + QX_GEMM_ROWS - 1) / QX_GEMM_ROWS * QX_GEMM_ROWS;
    if (band > all) band = all;
    pl->band_rows = band;
    pl->cols_p = ((int64_t)p->n + QX_GEMM_COLS - 1) / QX_GEMM_COLS * QX_GEMM_COLS;
    pl->nb = pl->cols_p / QX_GEMM_BLOCK;
    if ((double)band * (double)pl->row_bytes + (double)pl->cols_p * 16.0 > (double)SCRATCH_MAX)
        return false;
    size_t off = align64((size_t)(band * pl->row_bytes));
    pl->corr_off = off;
    off += align64((size_t)pl->cols_p * sizeof(int32_t));
    pl->mult_off = off;
    off += align64((size_t)pl->cols_p * sizeof(float));
    pl->mq_off = off;
    off += align64((size_t)pl->cols_p * sizeof(int32_t));
    pl->shift_off = off;
    off += align64((size_t)pl->cols_p * sizeof(int32_t));
    pl->total = off + 64;
    return true;
}

size_t qf_x86_gemm_s8_scratch_size(const qf_ref_gemm_params *p) {
    gplan pl;
    if (!p || !make_plan(p, &pl)) return 0;
    return pl.total;
}

typedef struct gemm_job {
    const qf_ref_gemm_params *p;
    const gplan *pl;
    const qf_x86_weights *w;
    const qx_ukernels *uk;
    const int8_t *x;
    int8_t *y;
    uint8_t *band;
    const int32_t *corr;
    const float *mult;
    const int32_t *mq, *shift;
    bool fixed_vec;
    int64_t r0, nr, n_cc, cb;
} gemm_job;

/* Row r of the band: x ^ 0x80, tail padded (its weights are 0). */
static void pack_task(void *ctx, int64_t r, int tid) {
    (void)tid;
    const gemm_job *j = ctx;
    const int64_t k = j->p->k;
    const uint8_t *src = (const uint8_t *)(j->x + (j->r0 + r) * k);
    uint8_t *d = j->band + r * j->pl->row_bytes;
    const __m128i flip = _mm_set1_epi8((char)0x80);
    int64_t t = 0;
    for (; t + 16 <= k; t += 16)
        _mm_storeu_si128((__m128i *)(d + t),
                         _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + t)), flip));
    for (; t < k; t++)
        d[t] = src[t] ^ 0x80u;
    for (; t < j->pl->row_bytes; t++)
        d[t] = 0x80u;
}

static void compute_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const gemm_job *j = ctx;
    const qf_ref_gemm_params *p = j->p;
    const gplan *pl = j->pl;
    const int64_t quad = task / j->n_cc, cc = task % j->n_cc;
    const int64_t r = quad * QX_GEMM_ROWS;
    const int64_t ntiles = pl->nb / 2;
    const int64_t t_end = (cc + 1) * j->cb < ntiles ? (cc + 1) * j->cb : ntiles;
    qx_gemm_tile t;
    t.a = j->band + r * pl->row_bytes;
    t.a_stride = (size_t)pl->row_bytes;
    t.k4 = (int32_t)pl->k4;
    t.maddubs_ok = j->w->maddubs_ok;
    t.sign_ok = j->w->sign_ok;
    t.wsum = j->w->wsum;
    t.n_rows = (int32_t)(j->nr - r < QX_GEMM_ROWS ? j->nr - r : QX_GEMM_ROWS);
    t.ldy = (size_t)p->n;
    t.e.rq = &p->rq;
    t.e.fixed_vec = j->fixed_vec;
    for (int64_t ti = cc * j->cb; ti < t_end; ti++) {
        const int64_t c0 = ti * QX_GEMM_COLS;
        t.w = j->w->data + 2 * ti * pl->k4 * 64;
        t.n_ch = (int32_t)(p->n - c0 < QX_GEMM_COLS ? p->n - c0 : QX_GEMM_COLS);
        t.ch0 = (int32_t)c0;
        t.y = j->y + (j->r0 + r) * p->n + c0;
        t.e.corr = j->corr + c0;
        t.e.mult_f = j->mult + c0;
        t.e.mult_q = j->mq + c0;
        t.e.shift = j->shift + c0;
        j->uk->gemm_tile(&t);
    }
}

qf_status qf_x86_gemm_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_gemm_params *p,
                         const int8_t *x, const qf_x86_weights *w, const int32_t *bias, int8_t *y,
                         void *scratch, size_t scratch_bytes, qf_err *err) {
    const char *who = "qf_x86_gemm_s8";
    if (!p || !x || !w || !w->data || !y || !scratch)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: NULL argument", who);
    gplan pl;
    if (!make_plan(p, &pl))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: m %d n %d k %d not supported", who,
                       (int)p->m, (int)p->n, (int)p->k);
    if ((double)p->m * (double)p->n * (double)p->k < qf_x86_serial_macs()) pool = NULL;
    if (!qr_in_range(p->in_zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: in_zp %d out of range", who, (int)p->in_zp);
    qf_status s = qr_check_requant(&p->rq, p->n, -128, 127, who, err);
    if (s != QF_OK) return s;
    if (w->layout != QX_LAYOUT_GEMM16 || w->rows != p->n || w->k != p->k || w->nb != pl.nb)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: packed weights do not match the layer", who);
    if (!qf_x86_isa_usable(isa))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: ISA %s not available", who, qf_isa_name(isa));
    if (scratch_bytes < pl.total)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: scratch of %zu bytes, need %zu", who,
                       scratch_bytes, pl.total);
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int32_t *corr = (int32_t *)(void *)(base + pl.corr_off);
    float *mult = (float *)(void *)(base + pl.mult_off);
    int32_t *mq = (int32_t *)(void *)(base + pl.mq_off);
    int32_t *shift = (int32_t *)(void *)(base + pl.shift_off);
    bool fixed_vec = true;
    const uint32_t zc = (uint32_t)(128 + p->in_zp);
    for (int64_t c = 0; c < pl.cols_p; c++) {
        if (c >= p->n) {
            corr[c] = mq[c] = shift[c] = 0;
            mult[c] = 0.0f;
            continue;
        }
        const uint32_t bv = bias ? (uint32_t)bias[c] : 0u;
        const qf_ref_rescale *rs = qr_mult_of(&p->rq, c);
        corr[c] = (int32_t)(bv - zc * (uint32_t)w->wsum[c]);
        mult[c] = rs->mult_f;
        mq[c] = rs->mult_q;
        shift[c] = rs->shift;
        if (rs->shift < -31) fixed_vec = false;
    }
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.pl = &pl;
    j.w = w;
    j.uk = isa == QF_ISA_AVX512VNNI ? qx_ukernels_avx512vnni() : qx_ukernels_avx2();
    j.x = x;
    j.y = y;
    j.band = base;
    j.corr = corr;
    j.mult = mult;
    j.mq = mq;
    j.shift = shift;
    j.fixed_vec = fixed_vec;
    const int64_t nthreads = qf_threadpool_size(pool);
    const int64_t ntiles = pl.nb / 2;
    for (j.r0 = 0; j.r0 < p->m; j.r0 += pl.band_rows) {
        j.nr = p->m - j.r0 < pl.band_rows ? p->m - j.r0 : pl.band_rows;
        qf_parallel_for(pool, j.nr, pack_task, &j);
        const int64_t quads = (j.nr + QX_GEMM_ROWS - 1) / QX_GEMM_ROWS;
        const int64_t want = 4 * nthreads;
        int64_t n_cc = 1;
        if (nthreads > 1 && quads < want) n_cc = (want + quads - 1) / quads;
        if (n_cc > ntiles) n_cc = ntiles;
        j.cb = (ntiles + n_cc - 1) / n_cc;
        j.n_cc = (ntiles + j.cb - 1) / j.cb;
        qf_parallel_for(pool, quads * j.n_cc, compute_task, &j);
    }
    return QF_OK;
}

#else

size_t qf_x86_gemm_s8_scratch_size(const qf_ref_gemm_params *p) {
    (void)p;
    return 0;
}

qf_status qf_x86_gemm_s8(qf_threadpool *pool, qf_isa isa, const qf_ref_gemm_params *p,
                         const int8_t *x, const qf_x86_weights *w, const int32_t *bias, int8_t *y,
                         void *scratch, size_t scratch_bytes, qf_err *err) {
    return qf_errf(err, QF_ERR_UNSUPPORTED, "qf_x86_gemm_s8: not an x86-64 build");
}

#endif
