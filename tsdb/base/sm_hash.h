/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_hash.h - a fast 64-bit non-cryptographic hash for hash tables and series
 * identity.  Not stable across versions: never store it on disk.
 *
 * Construction: 8-byte words are folded with a 128-bit multiply-and-xor step
 * (the "mum" mixing idea), the tail is loaded with bounded reads, and the
 * length is mixed into the final avalanche.  Written here; constants are
 * arbitrary odd 64-bit numbers with balanced bits.
 */
#ifndef SEISMO_TSDB_BASE_SM_HASH_H
#define SEISMO_TSDB_BASE_SM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SM_HASH_K0 0x9e3779b97f4a7c15ULL
#define SM_HASH_K1 0xd6e8feb86659fd93ULL
#define SM_HASH_K2 0xa0761d6478bd642fULL

static inline uint64_t sm_hash_mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t sm_hash_bytes(const void *data, size_t n, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = seed ^ SM_HASH_K0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = sm_hash_mix(h ^ w, SM_HASH_K1);
    }
    uint64_t t = 0;
    for (size_t k = 0; i + k < n; k++) t |= (uint64_t)p[i + k] << (8 * k);
    h = sm_hash_mix(h ^ t ^ SM_HASH_K2, SM_HASH_K1 ^ (uint64_t)n);
    return sm_hash_mix(h, SM_HASH_K0);
}

static inline uint64_t sm_hash_u64(uint64_t v) { return sm_hash_mix(v ^ SM_HASH_K2, SM_HASH_K1); }

#endif
