/* requant.c - rounding, affine quantize/dequantize and the two
 * requantization modes (fp32 and fixed-point Q31) of the integer reference
 * kernels. The formulas are specified in qref.h; this file is their
 * executable form, so every optimized kernel is checked against it. */
#include <math.h>
#include <string.h>

#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

/* ---- rounding ----------------------------------------------------------- */

/* Adding and subtracting 2^23 rounds to an integer in binary32's own
 * round-to-nearest-even (for |x| < 2^23 the sum has a unit ulp; the
 * subtraction is exact). This is the default rounding mode, which the
 * whole integer spec assumes anyway (the int->float conversion and the one
 * multiply of the fp32 requantization round in it, like cvtps2dq); the
 * branch-free form matters because every requantized output goes through
 * here in the reference and portable kernels. */
float qf_ref_round_half_even_f(float x) {
    if (!(fabsf(x) < 8388608.0f)) return x; /* |x| >= 2^23 is integral; NaN, inf */
    const float big = 8388608.0f;
    return x >= 0.0f ? (x + big) - big : (x - big) + big;
}

double qf_ref_round_half_even_d(double x) {
    if (!(fabs(x) < 4503599627370496.0)) return x; /* 2^52 */
    double f = floor(x);
    double d = x - f;
    if (d > 0.5) return f + 1.0;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

/* ---- quantize / dequantize ---------------------------------------------- */

int32_t qf_ref_quantize_one(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    float p = x / scale;
    if (isnan(p)) return qr_clamp(zp, qmin, qmax);
    /* Clamp in float first: the bounds are integers, so this equals clamping
     * after rounding, and keeps the conversion to int in range. */
    float lo = (float)((int64_t)qmin - zp), hi = (float)((int64_t)qmax - zp);
    if (p < lo) p = lo;
    if (p > hi) p = hi;
    return (int32_t)qf_ref_round_half_even_f(p) + zp;
}

qf_status qf_ref_quantize_s8(const float *x, size_t n, float scale, int32_t zp, int8_t *q,
                             qf_err *err) {
    if (!qr_scale_ok(scale) || !qr_in_range(zp, -128, 127))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_quantize_s8: scale %g / zp %d invalid",
                       (double)scale, (int)zp);
    for (size_t i = 0; i < n; i++)
        q[i] = (int8_t)qf_ref_quantize_one(x[i], scale, zp, -128, 127);
    return QF_OK;
}

qf_status qf_ref_quantize_s16(const float *x, size_t n, float scale, int32_t zp, int16_t *q,
                              qf_err *err) {
    if (!qr_scale_ok(scale) || !qr_in_range(zp, -32768, 32767))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_quantize_s16: scale %g / zp %d invalid",
                       (double)scale, (int)zp);
    for (size_t i = 0; i < n; i++)
        q[i] = (int16_t)qf_ref_quantize_one(x[i], scale, zp, -32768, 32767);
    return QF_OK;
}

void qf_ref_dequantize_s8(const int8_t *q, size_t n, float scale, int32_t zp, float *x) {
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)((int32_t)q[i] - zp);
}

void qf_ref_dequantize_s16(const int16_t *q, size_t n, float scale, int32_t zp, float *x) {
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)((int32_t)q[i] - zp);
}

/* ---- multipliers -------------------------------------------------------- */

qf_status qf_ref_quantize_multiplier(double M, int32_t *m, int *shift) {
    if (!(M >= 0.0) || !(M < 1073741824.0)) return QF_ERR_INVALID_ARG; /* NaN, <0, >= 2^30 */
    *m = 0;
    *shift = 0;
    if (M == 0.0) return QF_OK;
    int e = 0;
    double frac = frexp(M, &e); /* M = frac * 2^e, frac in [0.5, 1) */
    int64_t q = (int64_t)round(frac * 2147483648.0);
    if (q == (INT64_C(1) << 31)) { /* frac rounded up to 1.0 */
        q >>= 1;
        e++;
    }
    if (e < -31) return QF_OK; /* M < 2^-32: |acc * M| <= 1/2 for every int32 acc */
    *m = (int32_t)q;
    *shift = e;
    return QF_OK;
}

qf_status qf_ref_rescale_init(double M, qf_ref_rescale *r) {
    int shift = 0;
    int32_t m = 0;
    qf_status s = qf_ref_quantize_multiplier(M, &m, &shift);
    if (s != QF_OK) return s;
    r->mult_f = (float)M;
    r->mult_q = m;
    r->shift = shift;
    return QF_OK;
}

qf_status qf_ref_rescale_channels(float in_scale, const float *w_scale, int32_t n, float out_scale,
                                  qf_ref_rescale *out, qf_err *err) {
    if (n < 1 || !w_scale || !out || !qr_scale_ok(in_scale) || !qr_scale_ok(out_scale))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_rescale_channels: bad arguments");
    for (int32_t c = 0; c < n; c++) {
        if (!qr_scale_ok(w_scale[c]))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "qf_ref_rescale_channels: weight scale %d is %g", (int)c,
                           (double)w_scale[c]);
        double M = ((double)in_scale * (double)w_scale[c]) / (double)out_scale;
        if (qf_ref_rescale_init(M, &out[c]) != QF_OK)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "qf_ref_rescale_channels: multiplier %g of channel %d out of range", M,
                           (int)c);
    }
    return QF_OK;
}

/* ---- gemmlowp fixed-point primitives ------------------------------------ */

int32_t qf_ref_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX; /* 1.0 * 1.0 does not fit Q31 */
    int64_t ab = (int64_t)a * (int64_t)b;
    /* gemmlowp's nudge with a truncating division: ties go toward +inf. */
    int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30));
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

int32_t qf_ref_rdbpot(int32_t x, int exponent) {
    if (exponent <= 0) return x;
    if (exponent > 62) exponent = 62; /* |x| <= 2^31: the result is 0 long before */
    int64_t v = x;
    int64_t pot = INT64_C(1) << exponent;
    /* floor(v / 2^e) without shifting a negative value (implementation-defined) */
    int64_t fl = v >= 0 ? v / pot : -((-v - 1) / pot) - 1;
    int64_t rem = v - fl * pot; /* in [0, 2^e) */
    int64_t threshold = ((pot - 1) >> 1) + (v < 0 ? 1 : 0);
    return (int32_t)(fl + (rem > threshold ? 1 : 0));
}

int32_t qf_ref_mul_by_qmult(int32_t x, int32_t m, int32_t shift) {
    if (shift > 31) shift = 31;
    if (shift < -62) shift = -62; /* also keeps -shift defined */
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    int64_t v = (int64_t)x * (INT64_C(1) << left); /* |x| * 2^31 <= 2^62 */
    if (v > INT32_MAX) v = INT32_MAX;
    if (v < INT32_MIN) v = INT32_MIN;
    return qf_ref_rdbpot(qf_ref_srdhm((int32_t)v, m), right);
}

/* ---- the two requantization modes ---------------------------------------- */

int32_t qf_ref_requant_fp32(int32_t acc, float mult_f, int32_t z, int32_t lo, int32_t hi) {
    /* Exactly: int->float (RNE), one binary32 multiply (RNE), clamp to the
     * integer bounds, round half even, add z. No other float operation, so
     * nothing a compiler could contract or reassociate. */
    float p = (float)acc * mult_f;
    float flo = (float)((int64_t)lo - z), fhi = (float)((int64_t)hi - z);
    if (p < flo) p = flo;
    if (p > fhi) p = fhi;
    return (int32_t)qf_ref_round_half_even_f(p) + z;
}

int32_t qf_ref_requant_fixed(int32_t acc, int32_t mult_q, int32_t shift, int32_t z, int32_t lo,
                             int32_t hi) {
    int64_t v = (int64_t)qf_ref_mul_by_qmult(acc, mult_q, shift) + z;
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

int32_t qf_ref_requantize(qf_ref_rq_mode mode, int32_t acc, const qf_ref_rescale *r, int32_t z,
                          int32_t lo, int32_t hi) {
    if (mode == QF_RQ_FIXED) return qf_ref_requant_fixed(acc, r->mult_q, r->shift, z, lo, hi);
    return qf_ref_requant_fp32(acc, r->mult_f, z, lo, hi);
}

/* ---- accumulator range ----------------------------------------------------- */

int64_t qf_ref_accum_bound(int64_t k, int in_bits, int w_bits) {
    if (k < 0 || in_bits < 1 || in_bits > 16 || w_bits < 2 || w_bits > 16) return -1;
    int64_t per_tap = ((INT64_C(1) << in_bits) - 1) * ((INT64_C(1) << (w_bits - 1)) - 1);
    if (k > INT64_MAX / per_tap) return INT64_MAX;
    return k * per_tap;
}

qf_status qf_ref_check_accum_range(int64_t k, int in_bits, int w_bits) {
    int64_t b = qf_ref_accum_bound(k, in_bits, w_bits);
    if (b < 0) return QF_ERR_INVALID_ARG;
    return b <= INT32_MAX ? QF_OK : QF_ERR_UNSUPPORTED;
}

/* ---- element-wise rescale between activation encodings ------------------- */

static int32_t qtype_load(const void *p, qf_ref_qtype t, size_t i) {
    return t == QF_REF_S8 ? ((const int8_t *)p)[i] : ((const int16_t *)p)[i];
}

static void qtype_store(void *p, qf_ref_qtype t, size_t i, int32_t v) {
    if (t == QF_REF_S8)
        ((int8_t *)p)[i] = (int8_t)v;
    else
        ((int16_t *)p)[i] = (int16_t)v;
}

static bool qtype_bounds(qf_ref_qtype t, int32_t *lo, int32_t *hi) {
    if (t == QF_REF_S8) {
        *lo = -128;
        *hi = 127;
        return true;
    }
    if (t == QF_REF_S16) {
        *lo = -32768;
        *hi = 32767;
        return true;
    }
    return false;
}

qf_status qf_ref_rescale_q(qf_ref_rq_mode mode, const void *in, qf_ref_qtype in_type,
                           float in_scale, int32_t in_zp, void *out, qf_ref_qtype out_type,
                           float out_scale, int32_t out_zp, size_t n, qf_err *err) {
    int32_t ilo, ihi, olo, ohi;
    if (!qtype_bounds(in_type, &ilo, &ihi) || !qtype_bounds(out_type, &olo, &ohi))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_rescale_q: bad element type");
    if ((mode != QF_RQ_FP32 && mode != QF_RQ_FIXED) || !qr_scale_ok(in_scale) ||
        !qr_scale_ok(out_scale) || !qr_in_range(in_zp, ilo, ihi) || !qr_in_range(out_zp, olo, ohi))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_rescale_q: bad mode, scale or zero point");
    if (in == out && in_type != out_type)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_rescale_q: in place needs equal types");
    if (in_type == out_type && in_scale == out_scale && in_zp == out_zp) {
        if (in != out) memmove(out, in, n * (size_t)(in_type / 8));
        return QF_OK;
    }
    qf_ref_rescale r;
    if (qf_ref_rescale_init((double)in_scale / (double)out_scale, &r) != QF_OK)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_ref_rescale_q: scale ratio out of range");
    for (size_t i = 0; i < n; i++) {
        int32_t acc = qtype_load(in, in_type, i) - in_zp;
        qtype_store(out, out_type, i, qf_ref_requantize(mode, acc, &r, out_zp, olo, ohi));
    }
    return QF_OK;
}
