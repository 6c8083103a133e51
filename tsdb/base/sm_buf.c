/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_buf.c - growable buffer and bounded reader (see sm_buf.h).
 */
#include "sm_buf.h"

#include <string.h>

#include "endian.h"
#include "sm_alloc.h"
#include "sm_error.h"

void sm_buf_init(sm_buf *b) {
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void sm_buf_fini(sm_buf *b) {
    sm_free(b->p);
    sm_buf_init(b);
}

int sm_buf_reserve(sm_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return 0;
    size_t need = b->len + extra;
    if (need < b->len) return SM_ENOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = sm_realloc(b->p, cap);
    if (!p) return SM_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int sm_buf_append(sm_buf *b, const void *data, size_t n) {
    if (sm_buf_reserve(b, n)) return SM_ENOMEM;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int sm_buf_put_u8(sm_buf *b, uint8_t v) { return sm_buf_append(b, &v, 1); }

int sm_buf_put_le32(sm_buf *b, uint32_t v) {
    if (sm_buf_reserve(b, 4)) return SM_ENOMEM;
    sm_store_le32(b->p + b->len, v);
    b->len += 4;
    return 0;
}

int sm_buf_put_le64(sm_buf *b, uint64_t v) {
    if (sm_buf_reserve(b, 8)) return SM_ENOMEM;
    sm_store_le64(b->p + b->len, v);
    b->len += 8;
    return 0;
}

int sm_uvarint_put(uint8_t *p, uint64_t v) {
    int n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

int sm_uvarint_len(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int sm_buf_put_uvarint(sm_buf *b, uint64_t v) {
    if (sm_buf_reserve(b, 10)) return SM_ENOMEM;
    b->len += (size_t)sm_uvarint_put(b->p + b->len, v);
    return 0;
}

int sm_buf_put_varint(sm_buf *b, int64_t v) { return sm_buf_put_uvarint(b, sm_zigzag_enc(v)); }

int sm_buf_put_str(sm_buf *b, const char *s, size_t n) {
    if (sm_buf_reserve(b, 10 + n)) return SM_ENOMEM;
    b->len += (size_t)sm_uvarint_put(b->p + b->len, n);
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

uint8_t *sm_buf_detach(sm_buf *b, size_t *len) {
    uint8_t *p = b->p;
    if (len) *len = b->len;
    sm_buf_init(b);
    return p;
}

int sm_rd_u8(sm_rd *r, uint8_t *out) {
    if (r->p >= r->end) return SM_ECORRUPT;
    *out = *r->p++;
    return 0;
}

int sm_rd_le32(sm_rd *r, uint32_t *out) {
    if (sm_rd_left(r) < 4) return SM_ECORRUPT;
    *out = sm_load_le32(r->p);
    r->p += 4;
    return 0;
}

int sm_rd_le64(sm_rd *r, uint64_t *out) {
    if (sm_rd_left(r) < 8) return SM_ECORRUPT;
    *out = sm_load_le64(r->p);
    r->p += 8;
    return 0;
}

int sm_rd_uvarint_long(sm_rd *r, uint64_t *out) {
    uint64_t v = 0;
    const uint8_t *p = r->p;
    if (r->end - p >= 10) {
        /* Room for the longest encoding: no bound check per byte. */
        for (unsigned i = 0; i < 9; i++) {
            uint8_t c = p[i];
            v |= (uint64_t)(c & 0x7f) << (7 * i);
            if (!(c & 0x80)) {
                if (c == 0 && i > 0) return SM_ECORRUPT; /* overlong */
                r->p = p + i + 1;
                *out = v;
                return 0;
            }
        }
        /* The tenth byte holds bit 63 only: 1 (0 would be overlong, more
         * would overflow or continue). */
        if (p[9] != 1) return SM_ECORRUPT;
        r->p = p + 10;
        *out = v | 1ull << 63;
        return 0;
    }
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= r->end) return SM_ECORRUPT;
        uint8_t c = *p++;
        if (shift == 63 && c > 1) return SM_ECORRUPT; /* overflow */
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift > 0) return SM_ECORRUPT; /* overlong: one encoding per value */
            r->p = p;
            *out = v;
            return 0;
        }
    }
    return SM_ECORRUPT;
}

int sm_rd_varint(sm_rd *r, int64_t *out) {
    uint64_t u;
    if (sm_rd_uvarint(r, &u)) return SM_ECORRUPT;
    *out = sm_zigzag_dec(u);
    return 0;
}

int sm_rd_bytes(sm_rd *r, size_t n, const uint8_t **out) {
    if (sm_rd_left(r) < n) return SM_ECORRUPT;
    *out = r->p;
    r->p += n;
    return 0;
}

int sm_rd_str(sm_rd *r, const char **out, size_t *len) {
    sm_rd save = *r;
    uint64_t n;
    const uint8_t *p;
    if (sm_rd_uvarint(r, &n) || n > sm_rd_left(r) || sm_rd_bytes(r, (size_t)n, &p)) {
        *r = save;
        return SM_ECORRUPT;
    }
    *out = (const char *)p;
    *len = (size_t)n;
    return 0;
}
