/* augment.h - deterministic randomness for training: a seeded RNG
 * (xoshiro256** seeded through splitmix64), Fisher-Yates shuffling of sample
 * indices, and the two standard image augmentations on NCHW float batches
 * (random crop with zero padding, as torchvision's RandomCrop(padding=p),
 * and random horizontal flip with probability 1/2).
 *
 * Same seed, same sequence, on every machine: nothing here reads the clock
 * or depends on the platform's rand(). */
#ifndef QF_TRAIN_AUGMENT_H
#define QF_TRAIN_AUGMENT_H

#include "base/base.h"

typedef struct qf_rng {
    uint64_t s[4];
} qf_rng;

/* Seed the generator (any seed, 0 included, gives a valid state). */
void qf_rng_seed(qf_rng *r, uint64_t seed);
/* Next 64 random bits. */
uint64_t qf_rng_u64(qf_rng *r);
/* Uniform integer in [0, n) without modulo bias; 0 when n == 0. */
uint64_t qf_rng_below(qf_rng *r, uint64_t n);
/* Uniform float in [0, 1) (24 random bits). */
float qf_rng_uniform(qf_rng *r);
/* Standard normal N(0, 1) (Box-Muller, double precision inside). */
float qf_rng_normal(qf_rng *r);
/* dst[0..n) = std * N(0, 1) samples, drawn in pairs by Marsaglia's polar
 * method (about 4x faster than calling qf_rng_normal: no trigonometry, both
 * values of a pair used), for initialising large weight tensors. */
void qf_rng_normal_fill(qf_rng *r, float *dst, size_t n, float std);

/* Fill idx[0..n) with a uniformly random permutation of 0..n-1
 * (Fisher-Yates from the top: for i = n-1 down to 1, swap idx[i] with
 * idx[qf_rng_below(r, i + 1)]). */
void qf_shuffle_indices(qf_rng *r, int64_t *idx, int64_t n);

/* One image (C x H x W floats) cropped and optionally flipped:
 *   dst[c][y][x] = P[c][y + top][xs + left], xs = flip ? W-1-x : x,
 * where P is src zero-padded by `pad` on every side, top and left in
 * [0, 2*pad]. src and dst must not overlap. */
void qf_augment_crop_flip_image(const float *src, float *dst, int64_t c, int64_t h, int64_t w,
                                int64_t pad, int64_t top, int64_t left, bool flip);

/* Random crop (pad >= 0; 0 disables it) and random horizontal flip
 * (when `flip`) of every image of an N x C x H x W batch, src -> dst (no
 * overlap). Per image the draws are, in order: top = below(2*pad+1),
 * left = below(2*pad+1) (only when pad > 0), then flip = u64 & 1 (only when
 * `flip`). Errors: negative sizes or pad, NULL buffers, overlapping buffers
 * (QF_ERR_INVALID_ARG). */
qf_status qf_augment_batch(qf_rng *r, const float *src, float *dst, int64_t n, int64_t c,
                           int64_t h, int64_t w, int64_t pad, bool flip, qf_err *err);

#endif /* QF_TRAIN_AUGMENT_H */
