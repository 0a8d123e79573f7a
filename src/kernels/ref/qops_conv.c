/* qops_conv.c - qforge.QConv and qforge.QGemm, the integer convolution and
 * fully connected ops of the quantized runtime (docs/quantized-graph.md).
 *
 * Parse validates the constant weights (8-bit int8, or 4/2-bit packed uint8
 * rows with the logical shape in w_shape), the optional int32 bias and the
 * quantization parameters of input, weight and output, rejects layers whose
 * int32 accumulator could overflow, and precomputes the per-channel
 * requantization multipliers in the graph arena. Run maps the tensors onto
 * qf_ref_conv2d_s8/_s16 and qf_ref_gemm_s8/_s16 (1-D convolutions run as
 * 2-D ones of height 1).
 *
 * int8 layers run the bit-identical portable fast kernels instead
 * (kernels/portable/qfast.h): parse widens the weights once into the graph
 * arena (8-bit rows whose length is a multiple of QF_FAST_KBLOCK are used in
 * place), the scratch callback sizes their im2row buffer, and run falls back
 * to the reference kernel whenever the fast one cannot apply (no scratch, a
 * weight tensor that is not the one parse widened, an oversized shape).
 *
 * When the active ISA (kernels/dispatch.h) is AVX2 or AVX-512 VNNI, parse
 * packs the weights for the x86 kernels instead (kernels/x86/qx86.h; not for
 * depthwise convolutions, which keep the portable direct kernel, except
 * 3x3/5x5 ones with multiplier 1 on AVX-512 VNNI, which get their own
 * kernel), and run calls them with the session's thread pool.
 *
 * Asymmetric weights (per-channel zero points): the x86 kernels and the
 * depthwise ones take symmetric int8 weights, so parse packs them from
 * w - zp when every difference fits int8 (always for 7 bits or fewer: both
 * lie within +-(2^(bits-1) - 1)). 8-bit weights with large zero points keep
 * the portable fast kernels, which subtract zp times each output's input
 * sum. Only the reference kernels read the stored weights with w_zp.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/dispatch.h"
#include "kernels/portable/qfast.h"
#include "kernels/x86/qx86.h"
#include "kernels/ref/qops_util.h"
#include "kernels/ref/spatial.h"

/* What QConv and QGemm share: a weight matrix of out_ch rows of k values. */
typedef struct qweighted {
    int32_t w_bits; /* container: 8, 4 or 2 */
    int w_rank;
    int64_t w_shape[QF_MAX_DIMS]; /* logical weight shape (OIHW / [N, K]) */
    int64_t out_ch;               /* O (conv) or N (gemm) */
    int64_t k;                    /* values per row: prod(w_shape[1..]) */
    size_t row_bytes;             /* packed row stride */
    qf_dtype w_dtype;             /* I8 (8-bit) or U8 (packed) */
    int64_t w_dims[2];            /* stored shape when packed: [out_ch, row_bytes] */
    bool has_bias;
    /* asymmetric weights: out_ch zero points (graph arena), NULL when all
     * are 0. The x86 kernels take symmetric int8 weights: when every
     * w - zp fits int8 (always for 7 bits or fewer), parse packs them from
     * a temporary copy of those differences (pack_source); else (8-bit
     * weights with large zero points) the layer runs the portable fast
     * kernels, which correct for the zero points themselves. */
    const int32_t *w_zp;
    bool zp_folds;
    /* what parse packs for the fast and x86 kernels: the stored rows
     * (container w_bits) or, during parse only, the folded int8 copy */
    const uint8_t *pack_src;
    int32_t pack_bits;
    qo_act in, out;
    qf_ref_requant rq; /* rq.mult points into the graph arena */
    /* fast int8 path: fast.data is the widened copy (graph arena) of the
     * weight data at fast_src, or NULL when the stored rows are used in place */
    bool fast_ok;
    qf_fast_weights fast;
    const void *fast_src;
    /* x86 path: weights packed at parse from the data at x86_src */
    bool x86_ok;
    qf_isa isa;
    qf_x86_weights x86;
    const void *x86_src;
    /* conv: the epilogue tables for the parse-time bias, zero point and
     * requantization (x86_epi_ok), so a run does not rebuild them */
    bool x86_epi_ok;
    qf_x86_conv_epi x86_epi;
    /* depthwise 3x3/5x5 on AVX-512 VNNI or AVX2: weights packed from dw_src */
    bool dw_ok;
    qf_x86_weights dw;
    const void *dw_src;
} qweighted;

typedef struct qconv_params {
    qweighted w;
    qf_spatial_attrs sp;
    int64_t group;
} qconv_params;

static qf_status prepare_fast(qf_graph *g, const qf_node *n, qweighted *p, const qf_value *w,
                              qf_err *err);

static _Atomic uint64_t reference_runs;
uint64_t qf_qops_reference_runs(void) { return reference_runs; }

/* Weight rank bounds: QGemm 2..2, QConv 3..4 (1-D, 2-D). */
static qf_status parse_weights(qf_graph *g, const qf_node *n, int min_rank, int max_rank,
                               qweighted *p, qf_err *err) {
    char d[200];
    qf_node_desc(n, d, sizeof d);
    int wv = n->inputs[1];
    const qf_value *w = &g->values[wv];
    int64_t bits = qf_node_attr_int(n, "w_bits", 8);
    if (bits != 8 && bits != 4 && bits != 2)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: w_bits %lld (weights are stored in 8-, 4- or 2-bit containers; "
                       "3-bit weights use 4)",
                       d, (long long)bits);
    p->w_bits = (int32_t)bits;
    if (!(w->flags & QF_VAL_CONST) || !w->data)
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: weight '%s' must be a constant", d, w->name);
    const int64_t *ws;
    int n_ws = qf_node_attr_ints(n, "w_shape", &ws);
    if (p->w_bits == 8) {
        if (w->dtype != QF_DT_I8)
            return qf_errf(err, QF_ERR_FORMAT, "%s: 8-bit weight '%s' must be int8, not %s", d,
                           w->name, qf_dtype_name(w->dtype));
        if (n_ws && (n_ws != w->rank || memcmp(ws, w->dims, sizeof(int64_t) * (size_t)n_ws)))
            return qf_errf(err, QF_ERR_FORMAT, "%s: w_shape does not match weight '%s'", d,
                           w->name);
        p->w_rank = w->rank;
        for (int i = 0; i < w->rank; i++)
            p->w_shape[i] = w->dims[i];
        p->w_dtype = QF_DT_I8;
    } else {
        if (w->dtype != QF_DT_U8)
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: packed %d-bit weight '%s' must be uint8, not %s", d, (int)bits,
                           w->name, qf_dtype_name(w->dtype));
        if (n_ws == 0)
            return qf_errf(err, QF_ERR_FORMAT, "%s: packed weight '%s' needs the w_shape attribute",
                           d, w->name);
        if (n_ws > QF_MAX_DIMS)
            return qf_errf(err, QF_ERR_FORMAT, "%s: w_shape has %d dims", d, n_ws);
        p->w_rank = n_ws;
        for (int i = 0; i < n_ws; i++)
            p->w_shape[i] = ws[i];
        p->w_dtype = QF_DT_U8;
    }
    if (p->w_rank < min_rank || p->w_rank > max_rank) {
        /* a well-formed weight the kernels cannot run (3-D convolution) is
         * unsupported; any other rank is a malformed graph */
        qf_status st = p->w_rank == 5 && max_rank == 4 ? QF_ERR_UNSUPPORTED : QF_ERR_FORMAT;
        return qf_errf(err, st, "%s: weight '%s' has rank %d (%d..%d supported)", d, w->name,
                       p->w_rank, min_rank, max_rank);
    }
    int64_t k = 1;
    for (int i = 0; i < p->w_rank; i++) {
        if (p->w_shape[i] < 1 || p->w_shape[i] > INT32_MAX)
            return qf_errf(err, QF_ERR_FORMAT, "%s: weight '%s' dim %d is %lld", d, w->name, i,
                           (long long)p->w_shape[i]);
        if (i > 0) {
            if (k > INT32_MAX / p->w_shape[i])
                return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: weight '%s' rows are too long", d,
                               w->name);
            k *= p->w_shape[i];
        }
    }
    p->out_ch = p->w_shape[0];
    p->k = k;
    p->row_bytes = qf_ref_packed_row_bytes(k, p->w_bits);
    p->w_dims[0] = p->out_ch;
    p->w_dims[1] = (int64_t)p->row_bytes;
    size_t need;
    if (!qf_mul_size((size_t)p->out_ch, p->row_bytes, &need))
        return qf_errf(err, QF_ERR_FORMAT, "%s: weight '%s' is too large", d, w->name);
    if (p->w_bits != 8 &&
        (w->rank != 2 || w->dims[0] != p->w_dims[0] || w->dims[1] != p->w_dims[1])) {
        char got[64];
        if (w->rank == 2)
            snprintf(got, sizeof got, "[%lld, %lld]", (long long)w->dims[0], (long long)w->dims[1]);
        else
            snprintf(got, sizeof got, "rank %d", w->rank);
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: packed weight '%s' must be uint8 [%lld, %zu] (%lld rows of %lld "
                       "%d-bit values), got %s",
                       d, w->name, (long long)p->out_ch, p->row_bytes, (long long)p->out_ch,
                       (long long)k, (int)bits, got);
    }
    if (w->nbytes != need)
        return qf_errf(err, QF_ERR_FORMAT, "%s: weight '%s' holds %zu bytes, expected %zu", d,
                       w->name, w->nbytes, need);

    /* weight qparams: symmetric, per tensor or per output channel (axis 0) */
    const qf_qparams *wq = NULL;
    qf_status s = qo_get_qp(g, n, wv, "weight", &wq, err);
    if (s) return s;
    if (wq->bits < 2 || wq->bits > p->w_bits)
        return qf_errf(err, QF_ERR_FORMAT, "%s: weight '%s' has %d bits in a %d-bit container", d,
                       w->name, wq->bits, (int)p->w_bits);
    if (wq->n != 1 && (wq->n != p->out_ch || wq->axis != 0))
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: weight '%s' has %d scales on axis %d; expected 1 or %lld on axis 0", d,
                       w->name, wq->n, wq->axis, (long long)p->out_ch);
    /* the overflow bound assumes the restricted symmetric range */
    const int32_t wmax = (1 << (wq->bits - 1)) - 1;
    bool asym = false;
    for (int c = 0; c < wq->n; c++) {
        if (wq->zero_point[c] < -wmax || wq->zero_point[c] > wmax)
            return qf_errf(err, QF_ERR_FORMAT,
                           "%s: weight '%s' zero point[%d] = %d outside [%d, %d]", d, w->name, c,
                           (int)wq->zero_point[c], (int)-wmax, (int)wmax);
        asym |= wq->zero_point[c] != 0;
    }
    p->w_zp = NULL;
    if (asym) {
        int32_t *z = qf_graph_alloc(g, sizeof(int32_t) * (size_t)p->out_ch);
        if (!z) return qo_nomem(n, err);
        for (int64_t c = 0; c < p->out_ch; c++)
            z[c] = wq->zero_point[wq->n == 1 ? 0 : c];
        p->w_zp = z;
    }
    const uint8_t *wd = w->data;
    p->zp_folds = true;
    for (int64_t r = 0; r < p->out_ch; r++) {
        const uint8_t *row = wd + (size_t)r * p->row_bytes;
        const int32_t zr = p->w_zp ? p->w_zp[r] : 0;
        for (int64_t i = 0; i < k; i++) {
            int32_t v = qf_ref_weight_get(row, i, p->w_bits);
            if (v - zr < -127 || v - zr > 127) p->zp_folds = false;
            if (v < -wmax || v > wmax)
                return qf_errf(err, QF_ERR_FORMAT,
                               "%s: weight '%s' row %lld value %d outside the %d-bit range "
                               "[%d, %d]",
                               d, w->name, (long long)r, (int)v, wq->bits, (int)-wmax, (int)wmax);
        }
    }

    /* bias: constant int32 [out_ch], zero point 0 */
    int64_t max_bias = 0;
    p->has_bias = n->n_inputs > 2 && n->inputs[2] >= 0;
    if (p->has_bias) {
        const qf_value *b = &g->values[n->inputs[2]];
        if (!(b->flags & QF_VAL_CONST) || !b->data)
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: bias '%s' must be a constant", d, b->name);
        if (b->dtype != QF_DT_I32 || b->rank != 1 || b->dims[0] != p->out_ch ||
            b->nbytes != (size_t)p->out_ch * sizeof(int32_t))
            return qf_errf(err, QF_ERR_FORMAT, "%s: bias '%s' must be int32 [%lld]", d, b->name,
                           (long long)p->out_ch);
        if (b->qp)
            for (int c = 0; c < b->qp->n; c++)
                if (b->qp->zero_point[c] != 0)
                    return qf_errf(err, QF_ERR_FORMAT, "%s: bias '%s' zero point must be 0", d,
                                   b->name);
        const int32_t *bd = b->data;
        for (int64_t c = 0; c < p->out_ch; c++) {
            int64_t a = bd[c] < 0 ? -(int64_t)bd[c] : bd[c];
            if (a > max_bias) max_bias = a;
        }
        /* A bias in memory the graph does not own (a mapped model file) is
         * copied into the graph arena: every run reads it, and the runtime
         * hands the mapping's pages back to the OS once the weights are
         * packed. Left in the file, each layer's bias would fault in (and
         * fault around) tens of kilobytes of the file on every run. */
        if (b->data_external) {
            void *copy = qf_graph_alloc(g, b->nbytes);
            if (!copy) return qo_nomem(n, err);
            memcpy(copy, b->data, b->nbytes);
            g->values[n->inputs[2]].data = copy;
        }
    }

    /* activations, requantization */
    if ((s = qo_act_qp(g, n, n->inputs[0], "input", true, &p->in, err)) ||
        (s = qo_act_qp(g, n, n->outputs[0], "output", true, &p->out, err)))
        return s;
    if (p->in.dtype != p->out.dtype)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: input '%s' is %s but output '%s' is %s (both must have the same type)",
                       d, qo_vname(g, n->inputs[0]), qf_dtype_name(p->in.dtype),
                       qo_vname(g, n->outputs[0]), qf_dtype_name(p->out.dtype));
    /* w - w_zp spans twice the symmetric range: one more bit */
    int64_t bound = qf_ref_accum_bound(k, p->in.bits, wq->bits + (asym ? 1 : 0));
    if (bound < 0 || bound > INT32_MAX - max_bias)
        return qf_errf(err, QF_ERR_UNSUPPORTED,
                       "%s: the int32 accumulator could overflow (reduction of %lld terms of "
                       "%d-bit activations and %d-bit weights, |bias| up to %lld)",
                       d, (long long)k, p->in.bits, wq->bits, (long long)max_bias);
    if ((s = qo_parse_requant(n, &p->rq.mode, err)) ||
        (s = qo_parse_act_range(n, &p->out, &p->rq.act_min, &p->rq.act_max, err)))
        return s;
    qf_ref_rescale *mult = qf_graph_alloc(g, sizeof(qf_ref_rescale) * (size_t)wq->n);
    if (!mult) return qo_nomem(n, err);
    s = qf_ref_rescale_channels(p->in.scale, wq->scale, wq->n, p->out.scale, mult, err);
    if (s) {
        qf_err_prefix(err, "%s", d);
        return s;
    }
    p->rq.mult = mult;
    p->rq.n_mult = wq->n;
    p->rq.out_zp = p->out.zp;
    return QF_OK;
}

/* After packing, the source weights are only read again if a run falls
 * back to the reference kernel. When they are not the value's own copy
 * (data_external: the read-only mapping of a qfm file), ask the OS to
 * reclaim their pages with MADV_PAGEOUT, which never changes contents: a
 * clean file page is dropped and faulted in again from the file if read,
 * and anonymous memory is at most swapped. So the packed copy no longer
 * doubles the model's resident size (issue 5: peak memory of `qforge run`),
 * and a re-planned or falling-back run still reads the same bytes. Only
 * whole pages inside the tensor are advised; failures are ignored (advice). */
static void release_source_pages(const qf_value *w, size_t bytes) {
#if defined(MADV_PAGEOUT)
    if (!w->data_external || !w->data || bytes == 0) return;
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    const uintptr_t pg = (uintptr_t)page, d0 = (uintptr_t)w->data;
    if (bytes > UINTPTR_MAX - d0 - pg) return;
    const uintptr_t a0 = (d0 + pg - 1) / pg * pg, a1 = (d0 + bytes) / pg * pg;
    if (a1 > a0) (void)madvise((void *)a0, a1 - a0, MADV_PAGEOUT);
#else
    (void)w;
    (void)bytes;
#endif
}

/* What the fast and x86 packers read: the stored rows, or for asymmetric
 * weights that fold, a temporary int8 copy of w - zp per row (*tmp, which
 * the caller frees once packing is done). *ok false: asymmetric weights
 * that do not fold, which only the portable fast kernels run (they
 * subtract zp times each output's input sum). */
static qf_status pack_source(const qf_graph *g, const qf_node *n, qweighted *p, int8_t **tmp,
                             bool *ok, qf_err *err) {
    const qf_value *w = &g->values[n->inputs[1]];
    *tmp = NULL;
    *ok = !p->w_zp || p->zp_folds;
    p->pack_src = w->data;
    p->pack_bits = p->w_bits;
    if (!p->w_zp || !p->zp_folds) return QF_OK;
    size_t bytes;
    if (!qf_mul_size((size_t)p->out_ch, (size_t)p->k, &bytes) || !(*tmp = qf_malloc(bytes)))
        return qo_nomem(n, err);
    for (int64_t r = 0; r < p->out_ch; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * p->row_bytes;
        int8_t *d = *tmp + (size_t)r * (size_t)p->k;
        for (int64_t i = 0; i < p->k; i++)
            d[i] = (int8_t)(qf_ref_weight_get(row, i, p->w_bits) - p->w_zp[r]);
    }
    p->pack_src = (const uint8_t *)*tmp;
    p->pack_bits = 8;
    return QF_OK;
}

/* Pack for the x86 kernels when the active ISA has them (int8 only);
 * *done tells whether it did. */
static qf_status prepare_x86(qf_graph *g, const qf_node *n, qweighted *p, qx_layout layout,
                             int64_t groups, bool *done, qf_err *err) {
    *done = false;
    p->x86_ok = false;
    if (p->in.dtype != QF_DT_I8) return QF_OK;
    const qf_isa isa = qf_isa_active();
    if (!qf_x86_isa_usable(isa)) return QF_OK;
    /* convolutions: weights [out, cpg, k...]; the packer picks the layout */
    const bool conv = layout != QX_LAYOUT_GEMM16;
    const int64_t cpg = conv ? p->w_shape[1] : 0, khw = conv ? p->k / p->w_shape[1] : 0;
    size_t bytes = conv ? qf_x86_conv_weights_bytes(0, p->out_ch, cpg, khw, groups)
                        : qf_x86_weights_bytes(layout, p->out_ch, p->k, groups);
    if (bytes == 0) return QF_OK;
    void *dst = qf_graph_alloc(g, bytes);
    if (!dst) return qo_nomem(n, err);
    const qf_value *w = &g->values[n->inputs[1]];
    qf_status s = conv ? qf_x86_pack_conv_weights(0, p->pack_src, p->out_ch, cpg, khw, p->pack_bits,
                                                  groups, dst, &p->x86, err)
                       : qf_x86_pack_weights(layout, p->pack_src, p->out_ch, p->k, p->pack_bits,
                                             groups, dst, &p->x86, err);
    if (s) return s;
    /* AVX2: pairs of weights that could saturate vpmaddubsw are split into
     * a clamped part and sparse remainders (exact; the sign form otherwise) */
    const size_t split_bytes = conv && isa == QF_ISA_AVX2 ? qf_x86_conv_split_bytes(&p->x86) : 0;
    if (split_bytes) {
        void *sdst = qf_graph_alloc(g, split_bytes);
        if (!sdst) return qo_nomem(n, err);
        s = qf_x86_conv_split(&p->x86, dst, sdst, split_bytes, err);
        if (s) return s;
    }
    p->x86_epi_ok = false;
    const size_t epi_bytes = conv ? qf_x86_conv_epi_bytes(&p->x86) : 0;
    if (epi_bytes) {
        void *edst = qf_graph_alloc(g, epi_bytes);
        if (!edst) return qo_nomem(n, err);
        const int32_t *bias = p->has_bias ? g->values[n->inputs[2]].data : NULL;
        qf_err e2;
        /* a layer the kernel would refuse keeps reporting that at run */
        p->x86_epi_ok =
            qf_x86_conv_epi_build(&p->x86, &p->rq, p->in.zp, bias, edst, &p->x86_epi, &e2) == QF_OK;
    }
    p->isa = isa;
    p->x86_src = w->data;
    p->x86_ok = true;
    *done = true;
    size_t src_bytes = 0;
    if (qf_mul_size((size_t)p->out_ch, p->row_bytes, &src_bytes))
        release_source_pages(w, src_bytes);
    return QF_OK;
}

/* Depthwise 3x3/5x5 with multiplier 1 on AVX-512 VNNI or AVX2 (the active
 * ISA, kept in w->isa for the run): packed for the dedicated kernel
 * (strides and dilations are checked at run time; the portable kernel
 * stays as the fallback). */
static qf_status prepare_dw(qf_graph *g, const qf_node *n, qconv_params *p, qf_err *err) {
    qweighted *w = &p->w;
    w->dw_ok = false;
    const qf_isa isa = qf_isa_active();
    if (w->in.dtype != QF_DT_I8 || w->w_rank != 4 || p->group != w->out_ch ||
        w->w_shape[2] != w->w_shape[3] || (w->w_shape[2] != 3 && w->w_shape[2] != 5) ||
        (isa != QF_ISA_AVX512VNNI && isa != QF_ISA_AVX2) || !qf_x86_isa_usable(isa))
        return QF_OK;
    const int32_t k = (int32_t)w->w_shape[2];
    size_t bytes = qf_x86_dw_weights_bytes(w->out_ch, k, k);
    if (bytes == 0) return QF_OK;
    void *dst = qf_graph_alloc(g, bytes);
    if (!dst) return qo_nomem(n, err);
    const qf_value *wv = &g->values[n->inputs[1]];
    qf_status s =
        qf_x86_pack_dw_weights(w->pack_src, w->out_ch, k, k, w->pack_bits, dst, &w->dw, err);
    if (s) return s;
    /* checked once here; a layer the kernel refuses keeps reporting that at run */
    qf_err e2;
    (void)qf_x86_dw_accept_requant(&w->dw, &w->rq, &e2);
    w->dw_src = wv->data;
    w->isa = isa;
    w->dw_ok = true;
    return QF_OK;
}

/* Widen the weights for the fast int8 kernels (only int8 activations have
 * them). A layer too large for the widened layout just stays on the
 * reference kernel. */
static qf_status prepare_fast(qf_graph *g, const qf_node *n, qweighted *p, const qf_value *w,
                              qf_err *err) {
    p->fast_ok = false;
    if (p->in.dtype != QF_DT_I8) return QF_OK;
    if (p->pack_src == w->data && qf_fast_weights_in_place(p->k, p->w_bits)) {
        p->fast.data = NULL;
        p->fast.rows = (int32_t)p->out_ch;
        p->fast.k = (int32_t)p->k;
        p->fast.kp = qf_fast_row_stride(p->k);
        p->fast.zp = p->w_zp;
        p->fast_src = NULL;
        p->fast_ok = true;
        return QF_OK;
    }
    size_t bytes = qf_fast_weights_bytes(p->out_ch, p->k);
    if (bytes == 0) return QF_OK;
    int8_t *dst = qf_graph_alloc(g, bytes);
    if (!dst) return qo_nomem(n, err);
    qf_status s =
        qf_fast_widen_weights(p->pack_src, p->out_ch, p->k, p->pack_bits, dst, &p->fast, err);
    if (s) return s;
    /* folded zero points are in the copy already */
    p->fast.zp = p->pack_src == w->data ? p->w_zp : NULL;
    p->fast_src = w->data;
    p->fast_ok = true;
    return QF_OK;
}

/* The widened weights for this run, or false when the fast path is off or
 * the weight tensor is not the one parse widened. */
static bool fast_weights(const qweighted *p, const qf_tensor *w, qf_fast_weights *out) {
    if (!p->fast_ok || !w->data) return false;
    *out = p->fast;
    if (!p->fast.data)
        out->data = w->data; /* stored rows already have the widened layout */
    else if (w->data != p->fast_src)
        return false;
    return true;
}

/* infer-time checks of the input and (constant) weight tensors. */
static qf_status check_operands(const qf_node *n, const qweighted *p, const qf_tensor *in, int n_in,
                                qf_err *err) {
    qf_status s = qo_check_dtype(n, &in[0], p->in.dtype, "input", err);
    if (s) return s;
    const qf_tensor *w = &in[1];
    bool ok = w->dtype == p->w_dtype;
    if (ok && p->w_bits == 8) {
        ok = w->rank == p->w_rank;
        for (int i = 0; ok && i < p->w_rank; i++)
            ok = w->dims[i] == p->w_shape[i];
    } else if (ok) {
        ok = w->rank == 2 && w->dims[0] == p->w_dims[0] && w->dims[1] == p->w_dims[1];
    }
    if (ok && p->has_bias)
        ok = n_in > 2 && in[2].dtype == QF_DT_I32 && in[2].rank == 1 && in[2].dims[0] == p->out_ch;
    if (!ok) {
        char d[200];
        return qf_errf(err, QF_ERR_SHAPE, "%s: weight or bias changed shape since parse",
                       qf_node_desc(n, d, sizeof d));
    }
    return QF_OK;
}

/* ---- QConv ------------------------------------------------------------ */

static qf_status qconv_parse(qf_graph *g, qf_node *n, qf_err *err) {
    qf_status s = qo_check_io(n, 2, 3, err);
    if (s) return s;
    qconv_params *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    if ((s = parse_weights(g, n, 3, 4, &p->w, err)) ||
        (s = qf_spatial_parse(n, &p->sp, false, false, err)))
        return s;
    char d[200];
    p->group = qf_node_attr_int(n, "group", 1);
    if (p->group < 1 || p->group > p->w.out_ch || p->w.out_ch % p->group != 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: group %lld does not divide %lld outputs",
                       qf_node_desc(n, d, sizeof d), (long long)p->group, (long long)p->w.out_ch);
    /* depthwise-like layers (one input channel per group, several groups)
     * take the depthwise kernel where it applies, else the portable one; a
     * plain convolution of a one-channel input (a grey-scale stem) is an
     * ordinary GEMM with a short reduction and goes to the x86 kernel */
    bool packed = false, ok;
    int8_t *tmp;
    const bool per_channel = p->w.w_shape[1] == 1 && p->group > 1;
    if ((s = pack_source(g, n, &p->w, &tmp, &ok, err))) return s;
    if (ok && !per_channel) s = prepare_x86(g, n, &p->w, QX_LAYOUT_CONV8, p->group, &packed, err);
    if (ok && !s && per_channel) s = prepare_dw(g, n, p, err);
    if (!s && !packed) s = prepare_fast(g, n, &p->w, &g->values[n->inputs[1]], err);
    qf_free(tmp);
    p->w.pack_src = NULL;
    if (s) return s;
    /* depthwise: both packed copies made, the source rows are only read by
     * the reference fallback (unless the fast kernel uses them in place) */
    size_t src_bytes;
    if (p->w.dw_ok && !(p->w.fast_ok && !p->w.fast.data) &&
        qf_mul_size((size_t)p->w.out_ch, p->w.row_bytes, &src_bytes))
        release_source_pages(&g->values[n->inputs[1]], src_bytes);
    n->params = p;
    return QF_OK;
}

/* Shapes -> kernel parameters (shared by infer and run). out_dims gets the
 * output shape (rank of x). */
static qf_status qconv_setup(const qf_node *n, const qf_tensor *in, int n_in,
                             qf_ref_conv_params *cp, int64_t *out_dims, qf_err *err) {
    const qconv_params *p = n->params;
    const qf_tensor *x = &in[0];
    char d[200];
    qf_status s = check_operands(n, &p->w, in, n_in, err);
    if (s) return s;
    if (x->rank != p->w.w_rank)
        return qf_errf(err, QF_ERR_SHAPE, "%s: input has rank %d, weights rank %d",
                       qf_node_desc(n, d, sizeof d), x->rank, p->w.w_rank);
    if (x->dims[1] != p->group * p->w.w_shape[1])
        return qf_errf(err, QF_ERR_SHAPE, "%s: input has %lld channels, weights expect %lld x %lld",
                       qf_node_desc(n, d, sizeof d), (long long)x->dims[1], (long long)p->group,
                       (long long)p->w.w_shape[1]);
    qf_spatial_geom geo;
    s = qf_spatial_resolve(n, &p->sp, x->rank - 2, x->dims + 2, p->w.w_shape + 2, &geo, err);
    if (s) return s;
    /* the kernel is 2-D over normalised axes 1 (height) and 2 (width) */
    if (!qo_fits_i32(x->dims[0]) || !qo_fits_i32(x->dims[1]) || !qo_fits_i32(geo.in[1]) ||
        !qo_fits_i32(geo.in[2]) || !qo_fits_i32(geo.out[1]) || !qo_fits_i32(geo.out[2]) ||
        !qo_fits_i32(geo.pad_b[1] + geo.pad_e[1]) || !qo_fits_i32(geo.pad_b[2] + geo.pad_e[2]))
        return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: tensor extents exceed int32",
                       qf_node_desc(n, d, sizeof d));
    memset(cp, 0, sizeof *cp);
    cp->batch = (int32_t)x->dims[0];
    cp->in_c = (int32_t)x->dims[1];
    cp->in_h = (int32_t)geo.in[1];
    cp->in_w = (int32_t)geo.in[2];
    cp->out_c = (int32_t)p->w.out_ch;
    cp->out_h = (int32_t)geo.out[1];
    cp->out_w = (int32_t)geo.out[2];
    cp->k_h = (int32_t)geo.kernel[1];
    cp->k_w = (int32_t)geo.kernel[2];
    cp->stride_h = (int32_t)geo.stride[1];
    cp->stride_w = (int32_t)geo.stride[2];
    cp->dil_h = (int32_t)geo.dil[1];
    cp->dil_w = (int32_t)geo.dil[2];
    cp->pad_top = (int32_t)geo.pad_b[1];
    cp->pad_bottom = (int32_t)geo.pad_e[1];
    cp->pad_left = (int32_t)geo.pad_b[2];
    cp->pad_right = (int32_t)geo.pad_e[2];
    cp->groups = (int32_t)p->group;
    cp->in_zp = p->w.in.zp;
    cp->w_bits = p->w.w_bits;
    cp->rq = p->w.rq;
    cp->w_zp = p->w.w_zp;
    out_dims[0] = x->dims[0];
    out_dims[1] = p->w.out_ch;
    for (int i = 0; i < geo.nsp; i++)
        out_dims[2 + i] = geo.out[QF_SPATIAL_MAX - geo.nsp + i];
    return QF_OK;
}

static qf_status qconv_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    const qconv_params *p = n->params;
    qf_ref_conv_params cp;
    qf_status s = qconv_setup(n, in, n_in, &cp, out[0].dims, err);
    if (s) return s;
    out[0].dtype = p->w.out.dtype;
    out[0].rank = in[0].rank;
    return QF_OK;
}

/* The kernel a run takes, for the run itself and for profiles. */
typedef enum qpath { QP_REF16, QP_X86_DW, QP_X86, QP_FAST, QP_REF } qpath;

/* AVX2 names its dot-product form (x86w: the layer's packed weights):
 * "x86 avx2" plain vpmaddubsw (no pair of weights can saturate it), "x86
 * avx2 split" vpmaddubsw plus exact fix-ups for the pairs that could, "x86
 * avx2 sign" vpmaddubsw on |activation| x signed weight (too many such
 * pairs), "x86 avx2 16-bit" vpmaddwd on widened values (weights at -128,
 * which qforge's own packing never holds). */
static const char *qpath_name(qpath k, qf_isa isa, const qf_x86_weights *x86w) {
    const bool vnni = isa == QF_ISA_AVX512VNNI;
    switch (k) {
    case QP_REF16: return "reference int16";
    case QP_X86_DW: return vnni ? "x86 depthwise avx512vnni" : "x86 depthwise avx2";
    case QP_X86:
        if (vnni) return "x86 avx512vnni";
        if (x86w->fix_start) return "x86 avx2 split";
        if (x86w->maddubs_ok) return "x86 avx2";
        return x86w->sign_ok ? "x86 avx2 sign" : "x86 avx2 16-bit";
    case QP_FAST: return "portable";
    default: return "reference";
    }
}

/* *need: the scratch bytes of the x86 or portable kernel. */
static qpath conv_path(const qconv_params *p, const qf_ref_conv_params *cp, const qf_tensor *in,
                       bool scratch, qf_fast_weights *fw, size_t *need) {
    if (p->w.in.dtype == QF_DT_I16) return QP_REF16;
    if (p->w.dw_ok && in[1].data == p->w.dw_src && qf_x86_dwconv_supported(cp)) return QP_X86_DW;
    if (scratch && p->w.x86_ok && in[1].data == p->w.x86_src &&
        (*need = qf_x86_conv2d_s8_scratch_size(cp, p->w.x86.layout)))
        return QP_X86;
    /* qconv_scratch reported this size for these shapes */
    if (scratch && fast_weights(&p->w, &in[1], fw) && (*need = qf_fast_conv2d_s8_scratch_size(cp)))
        return QP_FAST;
    return QP_REF;
}

static qf_status qconv_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const qconv_params *p = n->params;
    qf_ref_conv_params cp;
    int64_t od[QF_MAX_DIMS];
    qf_status s = qconv_setup(n, in, n_in, &cp, od, err);
    if (s) return s;
    if (cp.batch == 0 || cp.in_c == 0) return QF_OK; /* empty batch: nothing to compute */
    const int32_t *bias = p->w.has_bias ? in[2].data : NULL;
    qf_fast_weights fw;
    size_t need = 0;
    switch (conv_path(p, &cp, in, scratch != NULL, &fw, &need)) {
    case QP_REF16: return qf_ref_conv2d_s16(&cp, in[0].data, in[1].data, bias, out[0].data, err);
    case QP_X86_DW:
        return qf_x86_dwconv2d_s8(ctx ? ctx->pool : NULL, p->w.isa, &cp, in[0].data, &p->w.dw, bias,
                                  out[0].data, err);
    case QP_X86:
        return qf_x86_conv2d_s8_add(ctx ? ctx->pool : NULL, p->w.isa, &cp, in[0].data, &p->w.x86,
                                    bias, p->w.x86_epi_ok ? &p->w.x86_epi : NULL, NULL, out[0].data,
                                    scratch, need, err);
    case QP_FAST:
        return qf_fast_conv2d_s8(&cp, in[0].data, &fw, bias, out[0].data, scratch, need, err);
    default: break;
    }
    reference_runs++;
    return qf_ref_conv2d_s8(&cp, in[0].data, in[1].data, bias, out[0].data, err);
}

static const char *qconv_kernel(const qf_node *n, const qf_tensor *in, int n_in, bool scratch) {
    const qconv_params *p = n->params;
    qf_ref_conv_params cp;
    int64_t od[QF_MAX_DIMS];
    qf_err e;
    qf_fast_weights fw;
    size_t need = 0;
    if (!p || qconv_setup(n, in, n_in, &cp, od, &e) != QF_OK) return NULL;
    return qpath_name(conv_path(p, &cp, in, scratch, &fw, &need), p->w.isa, &p->w.x86);
}

static size_t qconv_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out) {
    const qconv_params *p = n->params;
    qf_ref_conv_params cp;
    int64_t od[QF_MAX_DIMS];
    qf_err e;
    if ((!p->w.fast_ok && !p->w.x86_ok) || qconv_setup(n, in, n_in, &cp, od, &e) != QF_OK ||
        cp.batch == 0 || cp.in_c == 0)
        return 0;
    if (p->w.x86_ok) return qf_x86_conv2d_s8_scratch_size(&cp, p->w.x86.layout);
    return qf_fast_conv2d_s8_scratch_size(&cp);
}

/* Residual fusion: the layers that run the x86 general kernel (not the
 * depthwise one, not 16-bit) can add a same-shape int8 tensor in their
 * epilogue (qf_x86_conv2d_s8_add). */
/* The fusion's conditions, for the kernel parameters cp and output shape od
 * of qconv_setup; *c gets the add's constants. */
static bool fuse_add_check(const qf_node *n, const qf_tensor *in, const qf_ref_conv_params *cp,
                           const int64_t *od, const qf_node *add, const qf_tensor *add_in, int slot,
                           const qf_tensor *add_out, qx_add_consts *c) {
    const qconv_params *p = n->params;
    if (cp->batch == 0 || cp->in_c == 0) return false;
    if (p->w.dw_ok && in[1].data == p->w.dw_src && qf_x86_dwconv_supported(cp)) return false;
    /* AVX-512 VNNI, FP32 requantization: the plain conv (all channel blocks
     * per tile call, row-pair epilogue in registers) and a separate add ran
     * faster than the fused epilogue (A/B, 1 thread: Fashion-MNIST ResNet
     * 1.048x at batch 1 and 1.031x at 16, MobileNetV2 1.025x, ResNet-18
     * 1.007x; batch 64 on 2 threads 1.039x) */
    if (qf_isa_active() == QF_ISA_AVX512VNNI && cp->rq.mode == QF_RQ_FP32) return false;
    /* the add's operand is this layer's output, of this shape */
    const qf_tensor *y = &add_in[slot];
    if (y->rank != in[0].rank) return false;
    for (int i = 0; i < y->rank; i++)
        if (y->dims[i] != od[i]) return false;
    return qf_x86_conv2d_s8_scratch_size(cp, p->w.x86.layout) > 0 &&
           qf_qadd_fusable(add, &add_in[0], &add_in[1], add_out, c);
}

static bool qconv_fuse_add_ok(const qf_node *n, const qf_tensor *in, int n_in, const qf_node *add,
                              const qf_tensor *add_in, int slot, const qf_tensor *add_out) {
    const qconv_params *p = n->params;
    qf_ref_conv_params cp;
    int64_t od[QF_MAX_DIMS];
    qf_err e;
    qx_add_consts c;
    if (!p || !p->w.x86_ok || p->w.in.dtype != QF_DT_I8 || in[1].data != p->w.x86_src ||
        (slot != 0 && slot != 1) || qconv_setup(n, in, n_in, &cp, od, &e) != QF_OK)
        return false;
    return fuse_add_check(n, in, &cp, od, add, add_in, slot, add_out, &c);
}

static qf_status qconv_run_add(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in,
                               int n_in, const qf_node *add, const qf_tensor *add_in, int slot,
                               qf_tensor *add_out, void *scratch, qf_err *err) {
    const qconv_params *p = n->params;
    char d[200];
    qf_ref_conv_params cp;
    int64_t od[QF_MAX_DIMS];
    qf_status s = qconv_setup(n, in, n_in, &cp, od, err);
    if (s) return s;
    qf_x86_residual r;
    size_t need = qf_x86_conv2d_s8_scratch_size(&cp, p->w.x86.layout);
    /* (one setup: qconv_fuse_add_ok's checks on this call's parameters) */
    if (!scratch || need == 0 || !p->w.x86_ok || p->w.in.dtype != QF_DT_I8 ||
        in[1].data != p->w.x86_src || (slot != 0 && slot != 1) ||
        !fuse_add_check(n, in, &cp, od, add, add_in, slot, add_out, &r.c))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: cannot fuse the add %s",
                       qf_node_desc(n, d, sizeof d), add->name);
    r.res = add_in[1 - slot].data;
    r.conv_is_a = slot == 0;
    const int32_t *bias = p->w.has_bias ? in[2].data : NULL;
    return qf_x86_conv2d_s8_add(ctx ? ctx->pool : NULL, p->w.isa, &cp, in[0].data, &p->w.x86, bias,
                                p->w.x86_epi_ok ? &p->w.x86_epi : NULL, &r, add_out->data, scratch,
                                need, err);
}

const qf_op_def qf_opdef_qconv = {.name = "qforge.QConv",
                                  .parse = qconv_parse,
                                  .infer = qconv_infer,
                                  .scratch = qconv_scratch,
                                  .run = qconv_run,
                                  .kernel = qconv_kernel,
                                  .fuse_add_ok = qconv_fuse_add_ok,
                                  .run_add = qconv_run_add};

/* ---- QGemm ------------------------------------------------------------ */

static qf_status qgemm_parse(qf_graph *g, qf_node *n, qf_err *err) {
    qf_status s = qo_check_io(n, 2, 3, err);
    if (s) return s;
    qweighted *p = qf_graph_alloc(g, sizeof *p);
    if (!p) return qo_nomem(n, err);
    if ((s = parse_weights(g, n, 2, 2, p, err))) return s;
    bool packed = false, ok;
    int8_t *tmp;
    if ((s = pack_source(g, n, p, &tmp, &ok, err))) return s;
    if (ok) s = prepare_x86(g, n, p, QX_LAYOUT_GEMM16, 1, &packed, err);
    if (!s && !packed) s = prepare_fast(g, n, p, &g->values[n->inputs[1]], err);
    qf_free(tmp);
    p->pack_src = NULL;
    if (s) return s;
    n->params = p;
    return QF_OK;
}

/* x [..., K] folds to [M, K]; the output is [M, N]. */
static qf_status qgemm_setup(const qf_node *n, const qf_tensor *in, int n_in,
                             qf_ref_gemm_params *gp, int64_t *m_out, qf_err *err) {
    const qweighted *p = n->params;
    const qf_tensor *x = &in[0];
    char d[200];
    qf_status s = check_operands(n, p, in, n_in, err);
    if (s) return s;
    if (x->rank < 2)
        return qf_errf(err, QF_ERR_SHAPE, "%s: input must have rank >= 2 (got %d)",
                       qf_node_desc(n, d, sizeof d), x->rank);
    if (x->dims[x->rank - 1] != p->k)
        return qf_errf(err, QF_ERR_SHAPE, "%s: input rows have %lld values, weights %lld",
                       qf_node_desc(n, d, sizeof d), (long long)x->dims[x->rank - 1],
                       (long long)p->k);
    int64_t m = 1;
    for (int i = 0; i < x->rank - 1; i++) {
        if (x->dims[i] != 0 && m > INT32_MAX / x->dims[i])
            return qf_errf(err, QF_ERR_UNSUPPORTED, "%s: more than 2^31 rows",
                           qf_node_desc(n, d, sizeof d));
        m *= x->dims[i];
    }
    memset(gp, 0, sizeof *gp);
    gp->m = (int32_t)m;
    gp->n = (int32_t)p->out_ch;
    gp->k = (int32_t)p->k;
    gp->in_zp = p->in.zp;
    gp->w_bits = p->w_bits;
    gp->rq = p->rq;
    gp->w_zp = p->w_zp;
    *m_out = m;
    return QF_OK;
}

static qf_status qgemm_infer(const qf_node *n, const qf_tensor *in, int n_in, qf_tensor *out,
                             int n_out, qf_err *err) {
    const qweighted *p = n->params;
    qf_ref_gemm_params gp;
    int64_t m;
    qf_status s = qgemm_setup(n, in, n_in, &gp, &m, err);
    if (s) return s;
    out[0].dtype = p->out.dtype;
    out[0].rank = 2;
    out[0].dims[0] = m;
    out[0].dims[1] = p->out_ch;
    return QF_OK;
}

static qpath gemm_path(const qweighted *p, const qf_ref_gemm_params *gp, const qf_tensor *in,
                       bool scratch, qf_fast_weights *fw, size_t *need) {
    if (p->in.dtype == QF_DT_I16) return QP_REF16;
    if (scratch && p->x86_ok && in[1].data == p->x86_src &&
        (*need = qf_x86_gemm_s8_scratch_size(gp)))
        return QP_X86;
    /* qgemm_scratch reported this size for these shapes */
    if (scratch && fast_weights(p, &in[1], fw) && (*need = qf_fast_gemm_s8_scratch_size(gp)))
        return QP_FAST;
    return QP_REF;
}

static const char *qgemm_kernel(const qf_node *n, const qf_tensor *in, int n_in, bool scratch) {
    const qweighted *p = n->params;
    qf_ref_gemm_params gp;
    int64_t m;
    qf_err e;
    qf_fast_weights fw;
    size_t need = 0;
    if (!p || qgemm_setup(n, in, n_in, &gp, &m, &e) != QF_OK) return NULL;
    return qpath_name(gemm_path(p, &gp, in, scratch, &fw, &need), p->isa, &p->x86);
}

static qf_status qgemm_run(const qf_exec_ctx *ctx, const qf_node *n, const qf_tensor *in, int n_in,
                           qf_tensor *out, int n_out, void *scratch, qf_err *err) {
    const qweighted *p = n->params;
    qf_ref_gemm_params gp;
    int64_t m;
    qf_status s = qgemm_setup(n, in, n_in, &gp, &m, err);
    if (s) return s;
    if (m == 0) return QF_OK;
    const int32_t *bias = p->has_bias ? in[2].data : NULL;
    qf_fast_weights fw;
    size_t need = 0;
    switch (gemm_path(p, &gp, in, scratch != NULL, &fw, &need)) {
    case QP_REF16: return qf_ref_gemm_s16(&gp, in[0].data, in[1].data, bias, out[0].data, err);
    case QP_X86:
        return qf_x86_gemm_s8(ctx ? ctx->pool : NULL, p->isa, &gp, in[0].data, &p->x86, bias,
                              out[0].data, scratch, need, err);
    case QP_FAST:
        return qf_fast_gemm_s8(&gp, in[0].data, &fw, bias, out[0].data, scratch, need, err);
    default: break;
    }
    reference_runs++;
    return qf_ref_gemm_s8(&gp, in[0].data, in[1].data, bias, out[0].data, err);
}

static size_t qgemm_scratch(const qf_node *n, const qf_tensor *in, int n_in, const qf_tensor *out,
                            int n_out) {
    const qweighted *p = n->params;
    qf_ref_gemm_params gp;
    int64_t m;
    qf_err e;
    if ((!p->fast_ok && !p->x86_ok) || qgemm_setup(n, in, n_in, &gp, &m, &e) != QF_OK || m == 0)
        return 0;
    if (p->x86_ok) return qf_x86_gemm_s8_scratch_size(&gp);
    return qf_fast_gemm_s8_scratch_size(&gp);
}

const qf_op_def qf_opdef_qgemm = {.name = "qforge.QGemm",
                                  .parse = qgemm_parse,
                                  .infer = qgemm_infer,
                                  .scratch = qgemm_scratch,
                                  .run = qgemm_run,
                                  .kernel = qgemm_kernel};
