/* SPDX-License-Identifier: Apache-2.0
 *
 * rng.h - the one pseudo-random generator of ml/: xoshiro256** seeded
 * through splitmix64, so that every model is a pure function of its input
 * and its seed (ml/README.md, "Determinism").  Not for cryptography.
 *
 * The generator is small, inline and has no global state: each fit owns one
 * ml_rng_t on its stack.
 */
#ifndef SEISMO_ML_RNG_H
#define SEISMO_ML_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct ml_rng {
    uint64_t s[4]; /* xoshiro256** state, never all zero */
} ml_rng_t;

static inline uint64_t ml_rng_splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void ml_rng_seed(ml_rng_t *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = ml_rng_splitmix(&x);
}

static inline uint64_t ml_rng_rotl(uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }

static inline uint64_t ml_rng_next(ml_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t out = ml_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ml_rng_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double ml_rng_uniform(ml_rng_t *r) { return (double)(ml_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64). */
static inline uint64_t ml_rng_below(ml_rng_t *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)ml_rng_next(r) * n) >> 64);
}

/* Standard normal (Box-Muller; one value per call, the second is dropped so
 * that the stream stays a plain function of the call count). */
static inline double ml_rng_normal(ml_rng_t *r) {
    double u = 1.0 - ml_rng_uniform(r); /* (0, 1] */
    double v = ml_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif
