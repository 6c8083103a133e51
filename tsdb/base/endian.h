/* SPDX-License-Identifier: Apache-2.0
 *
 * endian.h - explicit byte-order loads and stores (STYLE.md rule 32).
 *
 * Every on-disk and wire integer goes through these; never cast a buffer to a
 * struct.  memcpy keeps them alignment-safe; compilers fold them into single
 * moves (and a bswap for big-endian).
 */
#ifndef SEISMO_TSDB_BASE_ENDIAN_H
#define SEISMO_TSDB_BASE_ENDIAN_H

#include <stdint.h>
#include <string.h>

static inline uint16_t sm_load_le16(const void *p) {
    const uint8_t *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t sm_load_le32(const void *p) {
    const uint8_t *b = p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t sm_load_le64(const void *p) {
    return (uint64_t)sm_load_le32(p) | ((uint64_t)sm_load_le32((const uint8_t *)p + 4) << 32);
}
static inline void sm_store_le16(void *p, uint16_t v) {
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void sm_store_le32(void *p, uint32_t v) {
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}
static inline void sm_store_le64(void *p, uint64_t v) {
    sm_store_le32(p, (uint32_t)v);
    sm_store_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t sm_load_be32(const void *p) {
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}
static inline uint64_t sm_load_be64(const void *p) {
    return ((uint64_t)sm_load_be32(p) << 32) | (uint64_t)sm_load_be32((const uint8_t *)p + 4);
}
static inline void sm_store_be32(void *p, uint32_t v) {
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}
static inline void sm_store_be64(void *p, uint64_t v) {
    sm_store_be32(p, (uint32_t)(v >> 32));
    sm_store_be32((uint8_t *)p + 4, (uint32_t)v);
}

/* Bit-exact reinterpretation of doubles (never a pointer cast; rule 41). */
static inline uint64_t sm_f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static inline double sm_f64_from_bits(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#endif
