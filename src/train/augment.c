/* augment.c - seeded RNG, index shuffling and crop/flip augmentation (see
 * augment.h for the exact draw order, which tests and reruns rely on). */
#include <math.h>
#include <string.h>

#include "train/augment.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void qf_rng_seed(qf_rng *r, uint64_t seed) {
    /* splitmix64 expands any seed (0 included) into a state that is never
     * all zero, the one state xoshiro cannot leave */
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t qf_rng_u64(qf_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t qf_rng_below(qf_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* reject the top partial block of 2^64 so every residue is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
        v = qf_rng_u64(r);
    } while (v >= limit);
    return v % n;
}

float qf_rng_uniform(qf_rng *r) { return (float)(qf_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float qf_rng_normal(qf_rng *r) {
    /* u1 in (0, 1] keeps log() finite */
    double u1 = ((double)(qf_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(qf_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void qf_rng_normal_fill(qf_rng *r, float *dst, size_t n, float std) {
    size_t i = 0;
    while (i < n) {
        /* uniform point in the unit disc (rejects ~21%), minus the origin */
        double u = (double)(qf_rng_u64(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
        double v = (double)(qf_rng_u64(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0) continue;
        double f = sqrt(-2.0 * log(s) / s) * std;
        dst[i++] = (float)(u * f);
        if (i < n) dst[i++] = (float)(v * f);
    }
}

void qf_shuffle_indices(qf_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)qf_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

void qf_augment_crop_flip_image(const float *src, float *dst, int64_t c, int64_t h, int64_t w,
                                int64_t pad, int64_t top, int64_t left, bool flip) {
    for (int64_t ch = 0; ch < c; ch++) {
        const float *sp = src + ch * h * w;
        float *dp = dst + ch * h * w;
        for (int64_t y = 0; y < h; y++) {
            int64_t sy = y + top - pad;
            float *drow = dp + y * w;
            if (sy < 0 || sy >= h) {
                memset(drow, 0, sizeof(float) * (size_t)w);
                continue;
            }
            const float *srow = sp + sy * w;
            for (int64_t x = 0; x < w; x++) {
                int64_t sx = (flip ? w - 1 - x : x) + left - pad;
                drow[x] = sx >= 0 && sx < w ? srow[sx] : 0.0f;
            }
        }
    }
}

qf_status qf_augment_batch(qf_rng *r, const float *src, float *dst, int64_t n, int64_t c, int64_t h,
                           int64_t w, int64_t pad, bool flip, qf_err *err) {
    if (!r || !src || !dst || n < 0 || c < 0 || h < 0 || w < 0 || pad < 0)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "qf_augment_batch: bad arguments (n %lld, c %lld, h %lld, w %lld, pad %lld)",
                       (long long)n, (long long)c, (long long)h, (long long)w, (long long)pad);
    size_t img, total;
    if (!qf_mul_size((size_t)c, (size_t)h, &img) || !qf_mul_size(img, (size_t)w, &img) ||
        !qf_mul_size(img, (size_t)n, &total) || !qf_mul_size(total, sizeof(float), &total))
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_augment_batch: batch size overflows");
    const char *s0 = (const char *)src, *d0 = (const char *)dst;
    if (total && s0 < d0 + total && d0 < s0 + total)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_augment_batch: src and dst overlap");
    for (int64_t i = 0; i < n; i++) {
        int64_t top = pad, left = pad;
        if (pad > 0) {
            top = (int64_t)qf_rng_below(r, (uint64_t)(2 * pad + 1));
            left = (int64_t)qf_rng_below(r, (uint64_t)(2 * pad + 1));
        }
        bool f = flip && (qf_rng_u64(r) & 1);
        qf_augment_crop_flip_image(src + (size_t)i * img, dst + (size_t)i * img, c, h, w, pad, top,
                                   left, f);
    }
    return QF_OK;
}
