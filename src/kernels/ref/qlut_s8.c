/* qlut_s8.c - 256-entry lookup tables: any element-wise int8 -> int8
 * activation (sigmoid, tanh, GELU, ...) becomes a table built once from the
 * float function, after which every kernel (reference or optimized) is a
 * table lookup and therefore bit-exact by construction. */
#include "kernels/ref/qref.h"
#include "kernels/ref/qref_util.h"

qf_status qf_ref_lut_build(float (*f)(float), float in_scale, int32_t in_zp, float out_scale,
                           int32_t out_zp, int8_t table[256]) {
    if (!f || !table || !qr_scale_ok(in_scale) || !qr_scale_ok(out_scale) ||
        !qr_in_range(in_zp, -128, 127) || !qr_in_range(out_zp, -128, 127))
        return QF_ERR_INVALID_ARG;
    for (int32_t q = -128; q <= 127; q++) {
        float x = in_scale * (float)(q - in_zp);
        table[q + 128] = (int8_t)qf_ref_quantize_one(f(x), out_scale, out_zp, -128, 127);
    }
    return QF_OK;
}

void qf_ref_lut_apply(const int8_t table[256], const int8_t *in, int8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = table[(int32_t)in[i] + 128];
}
