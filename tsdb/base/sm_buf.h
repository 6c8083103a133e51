/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_buf.h - a growable byte buffer and the varint codecs used by every
 * format (LEB128 unsigned varints; signed values zigzag-mapped first).
 *
 * Writers reserve first and then fill (STYLE.md rule 23): sm_buf_reserve
 * makes room, the put helpers assume it is there only when named _unsafe.
 * Readers (sm_rd) know where the data ends and fail instead of running past
 * it: every get returns 0 or SM_ECORRUPT and leaves the output untouched on
 * failure.
 */
#ifndef SEISMO_TSDB_BASE_SM_BUF_H
#define SEISMO_TSDB_BASE_SM_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_buf {
    uint8_t *p;  /* heap (sm_alloc) storage, owned by the buffer */
    size_t len;  /* bytes written */
    size_t cap;  /* bytes allocated */
} sm_buf;

#define SM_BUF_INIT {NULL, 0, 0}

void sm_buf_init(sm_buf *b);
void sm_buf_fini(sm_buf *b);
static inline void sm_buf_clear(sm_buf *b) { b->len = 0; }
/* Ensure room for `extra` more bytes; 0 or SM_ENOMEM (buffer unchanged). */
int sm_buf_reserve(sm_buf *b, size_t extra);
int sm_buf_append(sm_buf *b, const void *data, size_t n);
int sm_buf_put_u8(sm_buf *b, uint8_t v);
int sm_buf_put_le32(sm_buf *b, uint32_t v);
int sm_buf_put_le64(sm_buf *b, uint64_t v);
int sm_buf_put_uvarint(sm_buf *b, uint64_t v);
int sm_buf_put_varint(sm_buf *b, int64_t v);
/* uvarint length followed by the bytes. */
int sm_buf_put_str(sm_buf *b, const char *s, size_t n);
/* Move the bytes out: the caller owns the returned pointer (sm_free); the
 * buffer is left empty. */
uint8_t *sm_buf_detach(sm_buf *b, size_t *len);

static inline uint64_t sm_zigzag_enc(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t sm_zigzag_dec(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

/* Writes at most 10 bytes at p; returns the count. */
int sm_uvarint_put(uint8_t *p, uint64_t v);
int sm_uvarint_len(uint64_t v);

/* A bounded reader over bytes it does not own. */
typedef struct sm_rd {
    const uint8_t *p;
    const uint8_t *end;
} sm_rd;

static inline void sm_rd_init(sm_rd *r, const void *p, size_t n) {
    r->p = p;
    r->end = (const uint8_t *)p + n;
}
static inline size_t sm_rd_left(const sm_rd *r) { return (size_t)(r->end - r->p); }

int sm_rd_u8(sm_rd *r, uint8_t *out);
int sm_rd_le32(sm_rd *r, uint32_t *out);
int sm_rd_le64(sm_rd *r, uint64_t *out);
/* Rejects overlong (more than 10 bytes) and overflowing encodings.  The
 * one-byte case (most lengths and counts in the formats) is inline. */
int sm_rd_uvarint_long(sm_rd *r, uint64_t *out);
static inline int sm_rd_uvarint(sm_rd *r, uint64_t *out) {
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return 0;
    }
    return sm_rd_uvarint_long(r, out);
}
int sm_rd_varint(sm_rd *r, int64_t *out);
/* Points *out into the input (not NUL-terminated). */
int sm_rd_bytes(sm_rd *r, size_t n, const uint8_t **out);
/* uvarint length then bytes. */
int sm_rd_str(sm_rd *r, const char **out, size_t *len);

#endif
