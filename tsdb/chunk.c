/* SPDX-License-Identifier: Apache-2.0
 *
 * chunk.c - columnar chunks: a timestamp column and a value column, each a
 * bit stream, chosen per chunk from a few encodings by what the data allows.
 * The byte format is in docs/FORMAT.md, "Chunk"; the short version:
 *
 *   u8       encodings: timestamp encoding (low 4 bits), value encoding (high 4)
 *   uvarint  count (1..65535)
 *   varint   mint
 *   uvarint  maxt - mint
 *   uvarint  bytes of the timestamp column
 *   ...      timestamp column, then the value column up to the end
 *
 * Timestamps: SINGLE (count 1, no column), GRID (an interval and per-sample
 * residuals from the regular grid mint + i*interval: scrape jitter costs a
 * few bits, a perfectly regular series nothing) or DOD (first delta, then
 * delta-of-deltas, as in the Gorilla paper).  Values: CONST (one float64),
 * INT (values that are decimal numbers with at most 15 fractional digits,
 * such as counters or 2-decimal CPU seconds, as scaled integers coded by
 * delta or delta-of-delta), XOR (Gorilla's XOR with leading/trailing-zero
 * window reuse) or XPK (the same XORs as one packed column, for floats
 * with noise in every bit).  Integer columns use a "packed" coding: one width w per
 * column and, only if some value needs more, a 1-bit flag per value with
 * 6-bit-length exceptions; the width is chosen to minimise the column.
 *
 * The encoder appends into a streaming form (DOD buckets for time, XOR for
 * values: about Gorilla's size) and re-encodes into the best columns when the
 * chunk is finished, so a head series costs little memory while it is open
 * and a sealed chunk is as small as its data allows.  A query reads an open
 * chunk through a snapshot: the streaming form copied behind a header, with
 * time encoding STREAM, which chunk_decode reads like the others and which
 * is never written to a block.
 *
 * All arithmetic on times and integer values is done in uint64 (wrapping),
 * so any int64 input round-trips, and decoders never see signed overflow.
 */
#include "chunk.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "base/endian.h"
#include "base/sm_alloc.h"
#include "base/sm_error.h"

enum { TS_SINGLE = 0, TS_GRID = 1, TS_DOD = 2, TS_STREAM = 3, TS_REF = 4 /* in blocks only */ };
enum { VAL_CONST = 0, VAL_INT = 1, VAL_XOR = 2, VAL_XPK = 3 };

/* The bit readers must inline into the decode loops to meet the speed
 * goal; gcc does not always do it on its own. */
#define SM_INLINE inline __attribute__((always_inline))

#define INT_MAX_SCALE 15 /* 10^15 and below are exact doubles */
#define INT_MODE_DOD 0x80
#define INT_MODE_MUL 0x40 /* m * 10^-k gives the same bits as m / 10^k for every value */

static const double pow10_tab[INT_MAX_SCALE + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
static const double pow10_inv[INT_MAX_SCALE + 1] = {1e0,  1e-1,  1e-2,  1e-3,  1e-4,  1e-5,
                                                    1e-6, 1e-7,  1e-8,  1e-9,  1e-10, 1e-11,
                                                    1e-12, 1e-13, 1e-14, 1e-15};

/* ---- bit writer: MSB first into a byte array the caller sized ---- */

typedef struct bitw {
    uint8_t *p;    /* next byte to write */
    uint64_t acc;  /* pending bits, right-aligned */
    unsigned nacc; /* number of pending bits (< 8 between calls) */
} bitw;

static SM_INLINE void bw_put_small(bitw *w, uint64_t v, unsigned n) {
    /* n <= 56; v holds n significant bits. */
    w->acc = (w->acc << n) | (v & ((1ull << n) - 1));
    w->nacc += n;
    while (w->nacc >= 8) {
        w->nacc -= 8;
        *w->p++ = (uint8_t)(w->acc >> w->nacc);
    }
}

static SM_INLINE void bw_put(bitw *w, uint64_t v, unsigned n) {
    /* n <= 64; v holds n significant bits. */
    if (n == 0) return;
    if (n > 56) {
        bw_put_small(w, v >> 32, n - 32);
        v &= 0xffffffffu;
        n = 32;
    }
    bw_put_small(w, v, n);
}

static SM_INLINE void bw_flush(bitw *w) {
    if (w->nacc) {
        *w->p++ = (uint8_t)(w->acc << (8 - w->nacc));
        w->nacc = 0;
    }
    w->acc = 0;
}

/* ---- bit reader: bounded, MSB first ---- */

typedef struct bitr {
    const uint8_t *p, *end;
    uint64_t buf;   /* valid bits left-aligned */
    unsigned nbits; /* valid bits in buf */
} bitr;

static SM_INLINE void br_init(bitr *r, const uint8_t *p, size_t len) {
    r->p = p;
    r->end = p + len;
    r->buf = 0;
    r->nbits = 0;
}

static SM_INLINE void br_refill(bitr *r) {
    if (r->end - r->p >= 8) {
        uint64_t v = sm_load_be64(r->p);
        r->buf |= v >> r->nbits;
        unsigned take = (63 - r->nbits) >> 3;
        r->p += take;
        r->nbits += take * 8;
    } else {
        while (r->nbits <= 56 && r->p < r->end) {
            r->buf |= (uint64_t)*r->p++ << (56 - r->nbits);
            r->nbits += 8;
        }
    }
}

/* Read n bits (1..56).  Returns false when the input ends first. */
static SM_INLINE bool br_get56(bitr *r, unsigned n, uint64_t *out) {
    if (r->nbits < n) {
        br_refill(r);
        if (r->nbits < n) return false;
    }
    *out = r->buf >> (64 - n);
    r->buf <<= n;
    r->nbits -= n;
    return true;
}

static SM_INLINE bool br_get(bitr *r, unsigned n, uint64_t *out) {
    if (n == 0) {
        *out = 0;
        return true;
    }
    if (n <= 56) return br_get56(r, n, out);
    uint64_t hi, lo;
    if (!br_get56(r, n - 32, &hi) || !br_get56(r, 32, &lo)) return false;
    *out = (hi << 32) | lo;
    return true;
}

static SM_INLINE bool br_bit(bitr *r, unsigned *out) {
    uint64_t b;
    if (!br_get56(r, 1, &b)) return false;
    *out = (unsigned)b;
    return true;
}

/* Whole bytes of the stream not yet touched by the reader (padding bits in
 * the last partly read byte are not counted). */
static SM_INLINE size_t br_unread_bytes(const bitr *r) {
    return (size_t)(r->end - r->p) + r->nbits / 8;
}

static SM_INLINE unsigned bitlen64(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }

/* ---- four-wide helpers ----
 *
 * GCC's vector extensions (clang has them too): AVX2 registers in the
 * x86-64-v3 build of chunk_decode, pairs of SSE2 registers otherwise.  The
 * loops they stand for are not vectorised by gcc at -O2 on its own. */
typedef uint64_t u64x4 __attribute__((vector_size(32)));
typedef double f64x4 __attribute__((vector_size(32)));
typedef int64_t i64x4 __attribute__((vector_size(32)));

static SM_INLINE void fill_u64(uint64_t *out, size_t n, uint64_t v) {
    size_t j = 0;
    u64x4 x = {v, v, v, v};
    for (; j + 4 <= n; j += 4) memcpy(out + j, &x, sizeof x);
    for (; j < n; j++) out[j] = v;
}

/* ---- packed integer columns ----
 *
 * m unsigned values (zigzagged deltas or residuals) in a fixed width w, with
 * the few that need more bits patched from an exception list (the "patched
 * frame of reference" idea), so that the decoder's inner loop has no
 * per-value branch:
 *
 *   u8       w (0..64), 0x80 set when an exception list follows
 *   uvarint  number of exceptions                  } only with 0x80
 *   (uvarint gap, uvarint high) per exception      }
 *   bits     the low w bits of every value, MSB first, padded to a byte
 *
 * gap is the exception's index minus the previous exception's index minus
 * one (the first: its index); high is value >> w, never 0.  The width is
 * chosen to minimise the column's size.
 */

/* Bits of a uvarint of v. */
static SM_INLINE unsigned uvarint_bits(uint64_t v) { return 8u * (unsigned)sm_uvarint_len(v); }

/* Estimated size in bits of zz[0..m) at each width; returns the best. */
static uint64_t packed_plan(const uint64_t *zz, size_t m, unsigned *w_out) {
    uint64_t hist[65] = {0}, all = 0;
    for (size_t i = 0; i < m; i++) {
        hist[bitlen64(zz[i])]++;
        all |= zz[i];
    }
    unsigned maxlen = bitlen64(all);
    /* The lengths that occur (few, usually), so each width's cost sums
     * over them only. */
    unsigned lens[65], nl = 0;
    for (unsigned len = 1; len <= maxlen; len++)
        if (hist[len]) lens[nl++] = len;
    uint64_t best = UINT64_MAX;
    unsigned bw = maxlen;
    unsigned first = 0; /* lens[first..nl) are the lengths above w */
    for (unsigned w = 0; w <= maxlen; w++) {
        while (first < nl && lens[first] <= w) first++;
        uint64_t cost = (uint64_t)m * w, nexc = 0;
        for (unsigned x = first; x < nl; x++) {
            unsigned len = lens[x];
            nexc += hist[len];
            /* gap (usually one byte) plus the high part */
            cost += hist[len] * (8u + 8u * ((len - w + 6) / 7));
        }
        if (nexc) cost += uvarint_bits(nexc);
        if (cost < best) {
            best = cost;
            bw = w;
        }
    }
    *w_out = bw;
    return best + 8;
}

static size_t packed_max_bytes(size_t m) { return 1 + 10 + m * 20 + (m * 64 + 7) / 8 + 1; }

/* Write the column; p must have packed_max_bytes(m) room.  Returns the end. */
static uint8_t *packed_write(uint8_t *p, const uint64_t *zz, size_t m) {
    unsigned w;
    packed_plan(zz, m, &w);
    uint64_t nexc = 0;
    for (size_t i = 0; i < m; i++) nexc += bitlen64(zz[i]) > w;
    *p++ = (uint8_t)(w | (nexc ? 0x80u : 0u));
    if (nexc) {
        p += sm_uvarint_put(p, nexc);
        size_t prev = 0;
        bool first = true;
        for (size_t i = 0; i < m; i++) {
            if (bitlen64(zz[i]) <= w) continue;
            p += sm_uvarint_put(p, first ? i : i - prev - 1);
            p += sm_uvarint_put(p, zz[i] >> w);
            prev = i;
            first = false;
        }
    }
    bitw bw = {p, 0, 0};
    uint64_t mask = w == 64 ? ~0ull : (1ull << w) - 1;
    for (size_t i = 0; i < m; i++) bw_put(&bw, zz[i] & mask, w);
    bw_flush(&bw);
    return bw.p;
}

#define PK_XKEEP 32

typedef struct pk {
    const uint8_t *bits; /* the bit section */
    size_t nbytes;
    uint64_t bitpos;     /* next bit to read */
    unsigned w;
    size_t m, pos;      /* values in the column / read so far */
    sm_rd exc;          /* the rest of the exception list */
    uint64_t exc_left;  /* exceptions not yet applied */
    size_t next_idx;    /* index of the next exception */
    uint64_t next_high;
    size_t tail_start;  /* the last (up to) 8 bytes, copied zero-padded */
    uint8_t tail[16];
    /* A short exception list (most are: a few large deltas in a counter)
     * is kept as pk_open validated it, so pk_read patches from these
     * arrays instead of parsing the list a second time.  nx == 0: not
     * kept (none, or more than PK_XKEEP). */
    uint32_t nx, xi;
    uint32_t xidx[PK_XKEEP];
    uint64_t xhigh[PK_XKEEP];
} pk;

static SM_INLINE bool pk_load_exc(pk *k, bool first) {
    uint64_t gap, high;
    if (sm_rd_uvarint(&k->exc, &gap) || sm_rd_uvarint(&k->exc, &high)) return false;
    size_t base = first ? 0 : k->next_idx + 1;
    if (gap >= k->m || base + gap >= k->m) return false;
    if (high == 0 || k->w == 64 || (k->w && (high >> (64 - k->w)) != 0)) return false;
    k->next_idx = base + (size_t)gap;
    k->next_high = high;
    return true;
}

/* Open a column of m values at [p, end). */
static int pk_open(pk *k, const uint8_t *p, const uint8_t *end, size_t m) {
    if (p >= end) return SM_ECORRUPT;
    k->w = p[0] & 0x7fu;
    k->m = m;
    k->pos = 0;
    k->exc_left = 0;
    k->nx = 0;
    if (k->w > 64) return SM_ECORRUPT;
    sm_rd_init(&k->exc, p + 1, (size_t)(end - p - 1));
    const uint8_t *bits = p + 1;
    if (p[0] & 0x80u) {
        uint64_t nexc;
        if (sm_rd_uvarint(&k->exc, &nexc) || nexc == 0 || nexc > m) return SM_ECORRUPT;
        sm_rd list = k->exc;
        /* Validate the whole list once to find where the bits start. */
        k->exc_left = nexc;
        bool keep = nexc <= PK_XKEEP;
        for (uint64_t i = 0; i < nexc; i++) {
            if (!pk_load_exc(k, i == 0)) return SM_ECORRUPT;
            if (keep) {
                k->xidx[i] = (uint32_t)k->next_idx;
                k->xhigh[i] = k->next_high;
            }
        }
        bits = k->exc.p;
        if (keep) {
            k->nx = (uint32_t)nexc;
            k->xi = 0;
        } else {
            k->exc = list;
            if (!pk_load_exc(k, true)) return SM_ECORRUPT;
        }
    }
    k->bits = bits;
    k->nbytes = (size_t)(end - bits);
    k->bitpos = 0;
    /* The bit section is exactly the bytes m values of w bits need. */
    if (((uint64_t)m * k->w + 7) / 8 != k->nbytes) return SM_ECORRUPT;
    /* Fixed-size copies where they can be: this runs once per column. */
    memset(k->tail + 8, 0, 8);
    if (k->nbytes >= 8) {
        k->tail_start = k->nbytes - 8;
        memcpy(k->tail, bits + k->tail_start, 8);
    } else {
        k->tail_start = 0;
        memset(k->tail, 0, 8);
        memcpy(k->tail, bits, k->nbytes);
    }
    return 0;
}

/* The w (<= 57) bits at bit position pos, reading at most the section. */
/* The 8 bytes at byte offset `byte` (< nbytes) of the section, big-endian,
 * zero-padded past its end. */
static SM_INLINE uint64_t pk_word_at(const pk *k, size_t byte) {
    return sm_load_be64(byte + 8 <= k->nbytes ? k->bits + byte : k->tail + (byte - k->tail_start));
}

static SM_INLINE uint64_t pk_bits_at(const pk *k, uint64_t pos, unsigned w) {
    return (pk_word_at(k, (size_t)(pos >> 3)) << (pos & 7)) >> (64 - w);
}

/* Read the next cnt values into out.  The section's size was checked at
 * open, so every read is inside it. */
static SM_INLINE bool pk_read(pk *k, uint64_t *out, size_t cnt) {
    unsigned w = k->w;
    if (cnt > k->m - k->pos) return false;
    uint64_t bp = k->bitpos;
    if (w == 0) {
        fill_u64(out, cnt, 0);
    } else if (w <= 57) {
        size_t j = 0;
        /* Fast loop while a whole 8-byte load stays inside the section. */
        uint64_t safe_bits = (uint64_t)(k->nbytes - 8) * 8;
        const uint8_t *bits = k->bits;
        if (w <= 8 && (bp & 7) == 0) {
            /* Narrow values (scrape jitter, small deltas): eight of them
             * fill exactly w bytes, so each group of eight starts on a
             * byte and comes from one load, split by per-lane shifts.  The
             * last loads come from the zero-padded copy of the tail. */
            const u64x4 s0 = {64 - w, 64 - 2 * w, 64 - 3 * w, 64 - 4 * w};
            const u64x4 s1 = {64 - 5 * w, 64 - 6 * w, 64 - 7 * w, 64 - 8 * w};
            const uint64_t mw = (1ull << w) - 1;
            const u64x4 mask = {mw, mw, mw, mw};
            for (; j + 8 <= cnt; j += 8, bp += 8 * w) {
                uint64_t v = pk_word_at(k, (size_t)(bp >> 3));
                u64x4 vv = {v, v, v, v};
                u64x4 lo = (vv >> s0) & mask, hi = (vv >> s1) & mask;
                memcpy(out + j, &lo, sizeof lo);
                memcpy(out + j + 4, &hi, sizeof hi);
            }
        }
        if (w > 8 && w <= 14) {
            /* Four values (at most 56 bits) from one load, whatever the
             * bit offset (at most 7) of the group. */
            const u64x4 s4 = {64 - w, 64 - 2 * w, 64 - 3 * w, 64 - 4 * w};
            const uint64_t mw = (1ull << w) - 1;
            const u64x4 mask = {mw, mw, mw, mw};
            for (; j + 4 <= cnt; j += 4, bp += 4 * w) {
                uint64_t v = pk_word_at(k, (size_t)(bp >> 3)) << (bp & 7);
                u64x4 vv = {v, v, v, v};
                u64x4 o = (vv >> s4) & mask;
                memcpy(out + j, &o, sizeof o);
            }
        }
        if (k->nbytes >= 8 && bp <= safe_bits) {
            size_t nsafe = j + (size_t)((safe_bits - bp) / w) + 1;
            if (nsafe > cnt) nsafe = cnt;
            unsigned rs = 64 - w;
            for (; j < nsafe; j++, bp += w) out[j] = (sm_load_be64(bits + (bp >> 3)) << (bp & 7)) >> rs;
        }
        for (; j < cnt; j++, bp += w) out[j] = pk_bits_at(k, bp, w);
    } else {
        for (size_t j = 0; j < cnt; j++, bp += w) {
            uint64_t hi = pk_bits_at(k, bp, 32);
            uint64_t lo = pk_bits_at(k, bp + 32, w - 32);
            out[j] = (hi << (w - 32)) | lo;
        }
    }
    k->bitpos = bp;
    size_t end = k->pos + cnt;
    if (k->nx) {
        uint32_t xi = k->xi;
        for (; xi < k->nx && k->xidx[xi] < end; xi++) out[k->xidx[xi] - k->pos] |= k->xhigh[xi] << w;
        k->xi = xi;
        k->exc_left = k->nx - xi;
    }
    while (k->exc_left && !k->nx && k->next_idx < end) {
        out[k->next_idx - k->pos] |= k->next_high << w;
        if (--k->exc_left && !pk_load_exc(k, false)) return false;
    }
    k->pos = end;
    return true;
}

/* All values read and every exception applied. */
static SM_INLINE bool pk_done(const pk *k) { return k->pos == k->m && k->exc_left == 0; }

/* ---- XOR value coding (Gorilla) ---- */

typedef struct xor_state {
    uint64_t prev;
    unsigned lead, sig; /* current window; sig == 0: none yet */
} xor_state;

static SM_INLINE void xor_put(bitw *w, xor_state *s, uint64_t bits) {
    uint64_t x = bits ^ s->prev;
    s->prev = bits;
    if (x == 0) {
        bw_put(w, 0, 1);
        return;
    }
    unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
    if (s->sig && lead >= s->lead && trail >= 64 - s->lead - s->sig) {
        bw_put(w, 2, 2);
        bw_put(w, x >> (64 - s->lead - s->sig), s->sig);
        return;
    }
    unsigned sig = 64 - lead - trail;
    bw_put(w, 3, 2);
    bw_put(w, lead, 6);
    bw_put(w, sig - 1, 6);
    bw_put(w, x >> trail, sig);
    s->lead = lead;
    s->sig = sig;
}

static SM_INLINE bool xor_get(bitr *r, xor_state *s, uint64_t *out) {
    /* Read the control bits (up to 14) from one refill. */
    if (r->nbits < 14) br_refill(r);
    uint64_t top = r->buf;
    if (r->nbits < 1) return false;
    if (!(top >> 63)) {
        r->buf <<= 1;
        r->nbits -= 1;
        *out = s->prev;
        return true;
    }
    if (r->nbits < 2) return false;
    if ((top >> 62) == 3) {
        if (r->nbits < 14) return false;
        unsigned lead = (unsigned)(top >> 56) & 63u, sig = ((unsigned)(top >> 50) & 63u) + 1;
        if (lead + sig > 64) return false;
        s->lead = lead;
        s->sig = sig;
        r->buf <<= 14;
        r->nbits -= 14;
    } else {
        if (s->sig == 0) return false; /* window reuse before any window */
        r->buf <<= 2;
        r->nbits -= 2;
    }
    uint64_t x;
    if (!br_get(r, s->sig, &x)) return false;
    if (x == 0) return false; /* a zero XOR has its own 1-bit code */
    s->prev ^= x << (64 - s->lead - s->sig);
    *out = s->prev;
    return true;
}

/* ---- column choice and writing (the one-shot encoder) ---- */

/* Can v be written as m / 10^k exactly (bit for bit)? */
static SM_INLINE bool dec_fits(double v, unsigned k, int64_t *m) {
    double s = v * pow10_tab[k];
    if (!(fabs(s) < 9.0e15)) return false; /* also rejects NaN and Inf */
    /* Any rounding that gives the nearest integer when s is within an ulp
     * or two of one will do (the round trip below decides), so not
     * llround's exact halfway rule, which is a libm call. */
    int64_t q = fabs(s) >= 0x1p52 ? (int64_t)s : (int64_t)(s + copysign(0.5, s));
    double back = k ? (double)q / pow10_tab[k] : (double)q;
    if (sm_f64_bits(back) != sm_f64_bits(v)) return false;
    *m = q;
    return true;
}

/* Smallest common decimal scale of all values, or -1. */
static int find_scale(const double *vs, size_t n) {
    unsigned k = 0;
    int64_t m;
    for (size_t i = 0; i < n; i++) {
        while (!dec_fits(vs[i], k, &m)) {
            if (++k > INT_MAX_SCALE) return -1;
        }
    }
    return (int)k;
}

typedef struct scratch {
    uint64_t *zz; /* n */
    uint64_t *zz2;
    int64_t *m;
} scratch;

static int scratch_get(scratch *s, size_t n) {
    s->zz = sm_malloc(sizeof(uint64_t) * (n ? n : 1) * 3);
    if (!s->zz) return SM_ENOMEM;
    s->zz2 = s->zz + n;
    s->m = (int64_t *)(s->zz2 + n);
    return 0;
}

/* GRID residuals of ts[1..n-2] from ts[0] + i * step into zz[0..n-2) (the
 * last time is maxt, stored in the header); returns their OR. */
static uint64_t grid_residuals(const sm_ms_t *ts, size_t n, uint64_t step, uint64_t *zz) {
    uint64_t any = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        zz[i - 1] = sm_zigzag_enc((int64_t)((uint64_t)ts[i] - ((uint64_t)ts[0] + step * i)));
        any |= zz[i - 1];
    }
    return any;
}

/* Timestamp column into p (room: 10 + packed_max_bytes(n)); returns the end. */
static uint8_t *ts_write(uint8_t *p, const sm_ms_t *ts, size_t n, scratch *sc, uint8_t *enc) {
    if (n == 1) {
        *enc = TS_SINGLE;
        return p;
    }
    uint64_t span = (uint64_t)ts[n - 1] - (uint64_t)ts[0];
    uint64_t step = span / (n - 1);
    size_t m = n - 2;
    grid_residuals(ts, n, step, sc->zz);
    /* DOD for i = 2..n-1 */
    uint64_t d1 = (uint64_t)ts[1] - (uint64_t)ts[0];
    for (size_t i = 2; i < n; i++) {
        uint64_t d = (uint64_t)ts[i] - (uint64_t)ts[i - 1];
        uint64_t dp = (uint64_t)ts[i - 1] - (uint64_t)ts[i - 2];
        sc->zz2[i - 2] = sm_zigzag_enc((int64_t)(d - dp));
    }
    unsigned w;
    uint64_t cg = packed_plan(sc->zz, m, &w) + 8 * (uint64_t)sm_uvarint_len(step);
    uint64_t cd = packed_plan(sc->zz2, m, &w) + 8 * (uint64_t)sm_uvarint_len(d1);
    /* span / (n - 1) rounds down: when the last sample came early (jitter)
     * the true interval is one more, and the residuals from the smaller
     * one drift by a millisecond every few samples.  Try it too (into
     * sc->m, free until the value column is chosen).  Not when its
     * residuals are all zero: a reader takes such a column for an exact
     * grid, which needs step <= span / (n - 1). */
    uint64_t *zz3 = (uint64_t *)sc->m;
    uint64_t step1 = step + 1;
    uint64_t any = m > 0 && span % (n - 1) != 0 ? grid_residuals(ts, n, step1, zz3) : 0;
    uint64_t cg1 = any ? packed_plan(zz3, m, &w) + 8 * (uint64_t)sm_uvarint_len(step1) : UINT64_MAX;
    if (cg1 < cg && cg1 <= cd) {
        *enc = TS_GRID;
        p += sm_uvarint_put(p, step1);
        return packed_write(p, zz3, m);
    }
    if (cg <= cd) {
        *enc = TS_GRID;
        p += sm_uvarint_put(p, step);
        return packed_write(p, sc->zz, m);
    }
    *enc = TS_DOD;
    p += sm_uvarint_put(p, d1);
    return packed_write(p, sc->zz2, m);
}

/* INT column of the m[] values into p; returns the end. */
static uint8_t *int_write(uint8_t *p, const int64_t *mv, size_t n, unsigned k, scratch *sc) {
    /* delta: n-1 values; dod: n-2 values after the first delta */
    for (size_t i = 1; i < n; i++)
        sc->zz[i - 1] = sm_zigzag_enc((int64_t)((uint64_t)mv[i] - (uint64_t)mv[i - 1]));
    uint64_t d1 = n > 1 ? sc->zz[0] : 0;
    for (size_t i = 2; i < n; i++) {
        uint64_t d = (uint64_t)mv[i] - (uint64_t)mv[i - 1];
        uint64_t dp = (uint64_t)mv[i - 1] - (uint64_t)mv[i - 2];
        sc->zz2[i - 2] = sm_zigzag_enc((int64_t)(d - dp));
    }
    unsigned w;
    uint64_t cdelta = packed_plan(sc->zz, n - 1, &w);
    uint64_t cdod = n > 1 ? packed_plan(sc->zz2, n - 2, &w) + 8 * (uint64_t)sm_uvarint_len(d1)
                          : UINT64_MAX;
    bool dod = cdod < cdelta;
    /* Multiplying is several times faster than dividing when decoding;
     * use it when it gives the same bits for every value. */
    bool mul = k > 0;
    for (size_t i = 0; i < n && mul; i++)
        mul = sm_f64_bits((double)mv[i] * pow10_inv[k]) == sm_f64_bits((double)mv[i] / pow10_tab[k]);
    *p++ = (uint8_t)(k | (dod ? INT_MODE_DOD : 0) | (mul ? INT_MODE_MUL : 0));
    p += sm_uvarint_put(p, sm_zigzag_enc(mv[0]));
    if (n == 1) return p;
    if (dod) {
        p += sm_uvarint_put(p, d1);
        return packed_write(p, sc->zz2, n - 2);
    }
    return packed_write(p, sc->zz, n - 1);
}

static size_t xor_max_bytes(size_t n) { return 8 + (n * 78 + 7) / 8 + 1; }

/* XPK: the first value's bits (u64 LE), a shift s (u8: the fewest trailing
 * zeros of any nonzero XOR of neighbours), then the n-1 XORs shifted right
 * by s as a packed column.  On high-entropy floats (noise in every mantissa
 * bit) this is smaller than Gorilla's XOR, which pays 2 to 14 control bits a
 * value for windows that do not help, and it decodes as an unpack and a
 * running XOR with no branch per value.  Needs n >= 2 and a nonzero XOR. */
static size_t xpk_max_bytes(size_t n) { return 9 + packed_max_bytes(n); }

static uint8_t *xpk_write(uint8_t *p, const double *vs, size_t n, scratch *sc) {
    uint64_t prev = sm_f64_bits(vs[0]), any = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t b = sm_f64_bits(vs[i]);
        sc->zz[i - 1] = b ^ prev;
        any |= b ^ prev;
        prev = b;
    }
    unsigned s = any ? (unsigned)__builtin_ctzll(any) : 0;
    for (size_t i = 0; i + 1 < n; i++) sc->zz[i] >>= s;
    sm_store_le64(p, sm_f64_bits(vs[0]));
    p[8] = (uint8_t)s;
    return packed_write(p + 9, sc->zz, n - 1);
}

static uint8_t *xor_write(uint8_t *p, const double *vs, size_t n) {
    bitw w = {p, 0, 0};
    xor_state s = {0, 0, 0};
    uint64_t first = sm_f64_bits(vs[0]);
    bw_put(&w, first, 64);
    s.prev = first;
    for (size_t i = 1; i < n; i++) xor_put(&w, &s, sm_f64_bits(vs[i]));
    bw_flush(&w);
    return w.p;
}

static int validate_times(const sm_ms_t *ts, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (ts[i] <= ts[i - 1]) return SM_EINVAL;
    return 0;
}

int chunk_encode(const sm_ms_t *ts, const double *vs, size_t n, sm_buf *out) {
    if (n == 0 || n > CHUNK_MAX_SAMPLES) return SM_EINVAL;
    if (validate_times(ts, n)) return SM_EINVAL;
    scratch sc;
    if (scratch_get(&sc, n)) return SM_ENOMEM;

    /* Worst case: header 32 + ts column + the larger value column. */
    size_t room = 32 + 10 + packed_max_bytes(n) + xor_max_bytes(n) + xpk_max_bytes(n) + 32 + packed_max_bytes(n);
    if (sm_buf_reserve(out, room)) {
        sm_free(sc.zz);
        return SM_ENOMEM;
    }
    uint8_t *base = out->p + out->len;
    /* Build the timestamp column after a gap big enough for the header. */
    uint8_t *tcol = base + 32;
    uint8_t tenc;
    uint8_t *tend = ts_write(tcol, ts, n, &sc, &tenc);
    size_t tlen = (size_t)(tend - tcol);

    /* Value column: CONST, else the smaller of INT and XOR. */
    uint8_t venc;
    uint8_t *vcol = tend;
    uint8_t *vend;
    uint64_t b0 = sm_f64_bits(vs[0]);
    size_t i = 1;
    while (i < n && sm_f64_bits(vs[i]) == b0) i++;
    if (i == n) {
        venc = VAL_CONST;
        sm_store_le64(vcol, b0);
        vend = vcol + 8;
    } else {
        venc = VAL_XOR;
        vend = xor_write(vcol, vs, n);
        /* Write XPK after it and keep the smaller (XPK on a tie: faster). */
        uint8_t *xcol = vend;
        uint8_t *xend = xpk_write(xcol, vs, n, &sc);
        if ((size_t)(xend - xcol) <= (size_t)(vend - vcol)) {
            memmove(vcol, xcol, (size_t)(xend - xcol));
            vend = vcol + (xend - xcol);
            venc = VAL_XPK;
        }
        int k = find_scale(vs, n);
        if (k >= 0) {
            bool ok = true;
            for (size_t j = 0; j < n && ok; j++) ok = dec_fits(vs[j], (unsigned)k, &sc.m[j]);
            if (ok) {
                /* Write the INT column after the XOR one and keep the smaller. */
                uint8_t *icol = vend;
                uint8_t *iend = int_write(icol, sc.m, n, (unsigned)k, &sc);
                if ((size_t)(iend - icol) < (size_t)(vend - vcol)) {
                    memmove(vcol, icol, (size_t)(iend - icol));
                    vend = vcol + (iend - icol);
                    venc = VAL_INT;
                }
            }
        }
    }
    sm_free(sc.zz);

    /* Header, then slide the columns down behind it. */
    uint8_t hdr[40];
    uint8_t *h = hdr;
    *h++ = (uint8_t)(tenc | (venc << 4));
    h += sm_uvarint_put(h, n);
    h += sm_uvarint_put(h, sm_zigzag_enc(ts[0]));
    h += sm_uvarint_put(h, (uint64_t)ts[n - 1] - (uint64_t)ts[0]);
    h += sm_uvarint_put(h, tlen);
    size_t hlen = (size_t)(h - hdr);
    size_t body = (size_t)(vend - tcol);
    memmove(base + hlen, tcol, body);
    memcpy(base, hdr, hlen);
    out->len += hlen + body;
    return 0;
}

/* ---- decoding ---- */

/* The header fields and the two columns of a chunk, without checking the
 * encodings beyond the framing. */
typedef struct chunk_parts {
    uint8_t enc;
    uint64_t count, zmint, span;
    const uint8_t *tcol, *vcol;
    size_t tlen, vlen;
} chunk_parts;

static int parts_read(const uint8_t *p, size_t len, chunk_parts *c) {
    sm_rd r;
    sm_rd_init(&r, p, len);
    uint64_t tlen;
    if (sm_rd_u8(&r, &c->enc) || sm_rd_uvarint(&r, &c->count) || sm_rd_uvarint(&r, &c->zmint) ||
        sm_rd_uvarint(&r, &c->span) || sm_rd_uvarint(&r, &tlen) || tlen > sm_rd_left(&r))
        return SM_ECORRUPT;
    c->tcol = r.p;
    c->tlen = (size_t)tlen;
    c->vcol = r.p + tlen;
    c->vlen = (size_t)(r.end - c->vcol);
    return 0;
}

typedef struct hdr {
    chunk_info info;
    const uint8_t *tcol, *tend; /* timestamp column */
    const uint8_t *vcol, *vend; /* value column */
} hdr;

/* ref_ok: a TS_REF header is accepted too (its time column is then the
 * reference, not times). */
static int hdr_read(const uint8_t *p, size_t len, hdr *h, bool ref_ok) {
    sm_rd r;
    sm_rd_init(&r, p, len);
    uint8_t enc;
    uint64_t count, zmint, span, tlen;
    if (sm_rd_u8(&r, &enc) || sm_rd_uvarint(&r, &count) || sm_rd_uvarint(&r, &zmint) ||
        sm_rd_uvarint(&r, &span) || sm_rd_uvarint(&r, &tlen))
        return SM_ECORRUPT;
    unsigned tenc = enc & 0x0fu, venc = enc >> 4;
    if ((tenc > TS_STREAM && !(ref_ok && tenc == TS_REF)) || venc > VAL_XPK) return SM_ECORRUPT;
    if (count == 0 || count > CHUNK_MAX_SAMPLES) return SM_ECORRUPT;
    if ((count == 1) != (tenc == TS_SINGLE)) return SM_ECORRUPT;
    if (count == 1 && span != 0) return SM_ECORRUPT;
    if (count > 1 && span == 0) return SM_ECORRUPT;
    int64_t mint = sm_zigzag_dec(zmint);
    int64_t maxt = (int64_t)((uint64_t)mint + span);
    if (maxt < mint) return SM_ECORRUPT; /* the span wrapped past INT64_MAX */
    if (count > 1 && span < count - 1) return SM_ECORRUPT; /* strictly increasing */
    if (tlen > sm_rd_left(&r)) return SM_ECORRUPT;
    h->info.count = (uint32_t)count;
    h->info.mint = mint;
    h->info.maxt = maxt;
    h->info.ts_enc = (uint8_t)tenc;
    h->info.val_enc = (uint8_t)venc;
    h->tcol = r.p;
    h->tend = r.p + tlen;
    h->vcol = h->tend;
    h->vend = r.end;
    return 0;
}

int chunk_info_read(const uint8_t *p, size_t len, chunk_info *out) {
    hdr h;
    if (hdr_read(p, len, &h, true)) return SM_ECORRUPT;
    *out = h.info;
    return 0;
}

/* Done with a bit column: no whole byte may be left over. */
static SM_INLINE bool col_done(const bitr *r) { return br_unread_bytes(r) == 0; }

#define BLOCK 256 /* values unpacked at a time */

/* The two fills that need no bits (a regular time column, a constant value
 * column) are a third of all samples on node_exporter data; written four at
 * a time in vector registers they cost a quarter of the stores (gcc does
 * not vectorise these loops at -O2 by itself). */

/* ts[j] = first + j * step for j in [0, n). */
static SM_INLINE void fill_grid(sm_ms_t *ts, size_t n, uint64_t first, uint64_t step) {
    size_t j = 0;
    if (n >= 4) {
        u64x4 v = {first, first + step, first + 2 * step, first + 3 * step};
        u64x4 inc = {4 * step, 4 * step, 4 * step, 4 * step};
        for (; j + 4 <= n; j += 4, v += inc) memcpy(ts + j, &v, sizeof v);
    }
    for (; j < n; j++) ts[j] = (sm_ms_t)(first + j * step);
}

/* ts[j] = first + j * step + zigzag-decoded zz[j], for j in [0, n)
 * (wrapping, as all time arithmetic here). */
static SM_INLINE void grid_add(sm_ms_t *ts, const uint64_t *zz, size_t n, uint64_t first, uint64_t step) {
    size_t j = 0;
    if (n >= 4) {
        u64x4 g = {first, first + step, first + 2 * step, first + 3 * step};
        const u64x4 inc = {4 * step, 4 * step, 4 * step, 4 * step};
        const u64x4 one = {1, 1, 1, 1};
        for (; j + 4 <= n; j += 4, g += inc) {
            u64x4 z;
            memcpy(&z, zz + j, sizeof z);
            u64x4 t = g + ((z >> 1) ^ -(z & one));
            memcpy(ts + j, &t, sizeof t);
        }
    }
    for (; j < n; j++) ts[j] = (sm_ms_t)(first + j * step + (uint64_t)sm_zigzag_dec(zz[j]));
}

/* Does mint + m * step plus a residual below 2^(w-1) (1 <= w <= 8) stay
 * at or below INT64_MAX, so that no time of the grid wraps?  (INT64_MAX -
 * mint, for any int64 mint, is exact in a uint64.) */
static SM_INLINE bool grid_below_max(uint64_t mint, size_t m, uint64_t step, unsigned w) {
    uint64_t room = (uint64_t)INT64_MAX - mint, reach;
    return !__builtin_mul_overflow((uint64_t)m, step, &reach) && reach <= room && room - reach >= 1ull << (w - 1);
}

/* A jittered grid's usual case, in one pass: residuals of w <= 8 bits with
 * no exceptions (k just opened, m of them), ts[j] = first + j * step +
 * zigzag-decoded residual j.  Eight residuals fill w bytes, so each group
 * of eight comes from one load split by per-lane shifts, as in pk_read.
 * The caller has checked step >= 2^w: a residual lies in [-2^(w-1),
 * 2^(w-1)), two neighbours differ by at most 2^w - 1, so the times
 * increase by construction and need no compare. */
static SM_INLINE void grid_narrow(pk *k, sm_ms_t *ts, size_t m, uint64_t first, uint64_t step) {
    unsigned w = k->w;
    const u64x4 s0 = {64 - w, 64 - 2 * w, 64 - 3 * w, 64 - 4 * w};
    const u64x4 s1 = {64 - 5 * w, 64 - 6 * w, 64 - 7 * w, 64 - 8 * w};
    const uint64_t mw = (1ull << w) - 1;
    const u64x4 mask = {mw, mw, mw, mw}, one = {1, 1, 1, 1};
    const u64x4 inc = {8 * step, 8 * step, 8 * step, 8 * step};
    u64x4 g0 = {first, first + step, first + 2 * step, first + 3 * step};
    u64x4 g1 = g0 + 4 * step;
    size_t j = 0, byte = 0;
#define GRID8(v, dst)                                                                                            \
    do {                                                                                                         \
        u64x4 vv = {v, v, v, v};                                                                                 \
        u64x4 z0 = (vv >> s0) & mask, z1 = (vv >> s1) & mask;                                                    \
        u64x4 t0 = g0 + ((z0 >> 1) ^ -(z0 & one)), t1 = g1 + ((z1 >> 1) ^ -(z1 & one));                         \
        memcpy((dst), &t0, sizeof t0);                                                                           \
        memcpy((dst) + 4, &t1, sizeof t1);                                                                       \
    } while (0)
    /* Loads from the section itself while eight bytes remain, then from
     * its zero-padded tail; the last, partial group goes through tmp. */
    for (; j + 8 <= m && byte + 8 <= k->nbytes; j += 8, byte += w, g0 += inc, g1 += inc) {
        uint64_t v = sm_load_be64(k->bits + byte);
        GRID8(v, ts + j);
    }
    for (; j < m; j += 8, byte += w, g0 += inc, g1 += inc) {
        uint64_t v = pk_word_at(k, byte);
        if (j + 8 <= m) {
            GRID8(v, ts + j);
        } else {
            sm_ms_t tmp[8];
            GRID8(v, tmp);
            memcpy(ts + j, tmp, (m - j) * sizeof *tmp);
        }
    }
#undef GRID8
    k->bitpos = (uint64_t)m * w;
    k->pos = m;
}

/* Is t[0..n) strictly increasing?  Four comparisons at a time, no branch
 * per element. */
static SM_INLINE bool increasing(const sm_ms_t *t, size_t n) {
    size_t j = 1;
    i64x4 bad = {0, 0, 0, 0};
    for (; j + 4 <= n; j += 4) {
        i64x4 a, b;
        memcpy(&a, t + j, sizeof a);
        memcpy(&b, t + j - 1, sizeof b);
        bad |= a <= b;
    }
    int64_t any = bad[0] | bad[1] | bad[2] | bad[3];
    for (; j < n; j++) any |= t[j] <= t[j - 1];
    return any == 0;
}

static SM_INLINE void fill_const(double *vs, size_t n, double v) {
    size_t j = 0;
    f64x4 x = {v, v, v, v};
    for (; j + 4 <= n; j += 4) memcpy(vs + j, &x, sizeof x);
    for (; j < n; j++) vs[j] = v;
}

/* TS_STREAM: the streaming encoder's bucketed delta-of-delta bits. */
static SM_INLINE int ts_stream_decode(const hdr *h, sm_ms_t *ts) {
    size_t n = h->info.count;
    bitr r;
    br_init(&r, h->tcol, (size_t)(h->tend - h->tcol));
    static const unsigned widths[5] = {0, 8, 16, 32, 64};
    uint64_t t = (uint64_t)h->info.mint, d = 0, z;
    for (size_t i = 1; i < n; i++) {
        unsigned b, nb = 0;
        while (nb < 4) {
            if (!br_bit(&r, &b)) return SM_ECORRUPT;
            if (!b) break;
            nb++;
        }
        if (!br_get(&r, widths[nb], &z)) return SM_ECORRUPT;
        d += (uint64_t)sm_zigzag_dec(z);
        uint64_t nt = t + d;
        if ((sm_ms_t)nt <= (sm_ms_t)t) return SM_ECORRUPT;
        ts[i] = (sm_ms_t)(t = nt);
    }
    return t == (uint64_t)h->info.maxt && col_done(&r) ? 0 : SM_ECORRUPT;
}

static SM_INLINE int ts_decode(const hdr *h, sm_ms_t *ts) {
    size_t n = h->info.count;
    uint64_t mint = (uint64_t)h->info.mint, maxt = (uint64_t)h->info.maxt;
    ts[0] = h->info.mint;
    if (n == 1) return h->tcol == h->tend ? 0 : SM_ECORRUPT;
    if (h->info.ts_enc == TS_STREAM) return ts_stream_decode(h, ts);
    sm_rd r;
    sm_rd_init(&r, h->tcol, (size_t)(h->tend - h->tcol));
    uint64_t first;
    if (sm_rd_uvarint(&r, &first)) return SM_ECORRUPT;
    pk k;
    if (pk_open(&k, r.p, r.end, n - 2)) return SM_ECORRUPT;
    uint64_t buf[BLOCK];
    if (h->info.ts_enc == TS_GRID) {
        uint64_t step = first;
        if (k.w == 0 && k.exc_left == 0) {
            /* An exact grid: increasing by construction (step >= 1, and
             * the header guarantees maxt - mint >= n - 1 times step). */
            if (step == 0 || step > (maxt - mint) / (n - 1)) return SM_ECORRUPT;
            fill_grid(ts + 1, n - 2, mint + step, step);
            k.pos = k.m;
        } else if (k.w <= 8 && k.exc_left == 0 && step >> k.w != 0 && grid_below_max(mint, n - 2, step, k.w)) {
            /* Increasing by construction (grid_narrow). */
            grid_narrow(&k, ts + 1, n - 2, mint + step, step);
            if ((sm_ms_t)maxt <= ts[n - 2]) return SM_ECORRUPT;
        } else {
            uint64_t grid = mint;
            for (size_t i = 1; i + 1 < n;) {
                size_t cnt = n - 1 - i < BLOCK ? n - 1 - i : BLOCK;
                if (!pk_read(&k, buf, cnt)) return SM_ECORRUPT;
                grid_add(ts + i, buf, cnt, grid + step, step);
                grid += cnt * step;
                /* Every time must exceed the one before (ts[0] too). */
                if (!increasing(ts + i - 1, cnt + 1)) return SM_ECORRUPT;
                i += cnt;
            }
            if ((sm_ms_t)maxt <= ts[n - 2]) return SM_ECORRUPT;
        }
        ts[n - 1] = (sm_ms_t)maxt;
    } else {
        uint64_t t = mint + first, d = first;
        if ((sm_ms_t)t <= (sm_ms_t)mint) return SM_ECORRUPT;
        ts[1] = (sm_ms_t)t;
        for (size_t i = 2; i < n;) {
            size_t cnt = n - i < BLOCK ? n - i : BLOCK;
            if (!pk_read(&k, buf, cnt)) return SM_ECORRUPT;
            uint64_t bad = 0;
            for (size_t j = 0; j < cnt; j++, i++) {
                d += (uint64_t)sm_zigzag_dec(buf[j]);
                uint64_t nt = t + d;
                bad |= (uint64_t)((sm_ms_t)nt <= (sm_ms_t)t);
                ts[i] = (sm_ms_t)(t = nt);
            }
            if (bad) return SM_ECORRUPT;
        }
        if (t != maxt) return SM_ECORRUPT;
    }
    return pk_done(&k) ? 0 : SM_ECORRUPT;
}

/* Scaled integers to doubles: vs[j] = mv[j] * f (mul) or mv[j] / f.  When
 * every integer of the block lies in [-2^51, 2^51) (fits is true), four at a
 * time: adding the integer to the bits of 1.5 * 2^52 gives a double whose
 * value is 1.5 * 2^52 + mv exactly, and subtracting 1.5 * 2^52 leaves mv,
 * so this is the same exact conversion as the scalar cast, and the product
 * or quotient is the same correctly rounded IEEE result either way. */
static SM_INLINE void int_to_f64(const uint64_t *mv, size_t cnt, bool fits, bool mul, double f,
                                 double *vs) {
    size_t j = 0;
    if (fits) {
        const uint64_t mb = 0x4338000000000000ull; /* the bits of 1.5 * 2^52 */
        const u64x4 magic_bits = {mb, mb, mb, mb};
        const f64x4 magic = {0x1.8p52, 0x1.8p52, 0x1.8p52, 0x1.8p52};
        const f64x4 fv = {f, f, f, f};
        for (; j + 4 <= cnt; j += 4) {
            u64x4 u;
            memcpy(&u, mv + j, sizeof u);
            u += magic_bits;
            f64x4 d;
            memcpy(&d, &u, sizeof d);
            d -= magic;
            d = mul ? d * fv : d / fv;
            memcpy(vs + j, &d, sizeof d);
        }
    }
    for (; j < cnt; j++) vs[j] = mul ? (double)(int64_t)mv[j] * f : (double)(int64_t)mv[j] / f;
}

/* Running sums, in place: buf[j] becomes *acc plus the zigzag-decoded
 * buf[0..j]; *acc ends as the last sum.  Returns the OR of every sum plus
 * half (int_decode's range test).  Four at a time: the sums inside a
 * group by two shifted adds, then the carry from the groups before; the
 * carry grows by each group's total, so the chain from one group to the
 * next is a single add (the scalar loop's is an add per value). */
static SM_INLINE uint64_t running_sums(uint64_t *buf, size_t cnt, uint64_t *acc, uint64_t half) {
    size_t j = 0;
    uint64_t mv = *acc, range = 0;
    if (cnt >= 4) {
        const u64x4 one = {1, 1, 1, 1}, zero = {0, 0, 0, 0}, hv = {half, half, half, half};
        u64x4 carry = {mv, mv, mv, mv}, rng = zero;
        for (; j + 4 <= cnt; j += 4) {
            u64x4 z;
            memcpy(&z, buf + j, sizeof z);
            u64x4 d = (z >> 1) ^ -(z & one);
            d += __builtin_shufflevector(zero, d, 0, 4, 5, 6);
            d += __builtin_shufflevector(zero, d, 0, 1, 4, 5);
            u64x4 sum = d + carry;
            memcpy(buf + j, &sum, sizeof sum);
            rng |= sum + hv;
            /* the group's total joins the carry off the chain of sums */
            carry += __builtin_shufflevector(d, d, 3, 3, 3, 3);
        }
        mv = carry[0];
        range = (rng[0] | rng[1]) | (rng[2] | rng[3]);
    }
    for (; j < cnt; j++) {
        mv += (uint64_t)sm_zigzag_dec(buf[j]);
        buf[j] = mv;
        range |= mv + half;
    }
    *acc = mv;
    return range;
}

/* The INT column after its mode byte.  mul: multiply by f, else divide by
 * it (f == 1: neither). */
static SM_INLINE int int_decode(sm_rd *r, bool dod, bool mul, double f, size_t n, double *vs) {
    uint64_t zfirst;
    if (sm_rd_uvarint(r, &zfirst)) return SM_ECORRUPT;
    uint64_t mv = (uint64_t)sm_zigzag_dec(zfirst);
#define CONV(x) (mul ? (double)(int64_t)(x) * f : (double)(int64_t)(x) / f)
    vs[0] = CONV(mv);
    if (n == 1) return sm_rd_left(r) == 0 ? 0 : SM_ECORRUPT;
    uint64_t d = 0;
    size_t i = 1;
    if (dod) {
        uint64_t zd;
        if (sm_rd_uvarint(r, &zd)) return SM_ECORRUPT;
        d = (uint64_t)sm_zigzag_dec(zd);
        mv += d;
        vs[1] = CONV(mv);
        i = 2;
    }
#undef CONV
    pk k;
    if (pk_open(&k, r->p, r->end, n - i)) return SM_ECORRUPT;
    uint64_t buf[BLOCK];
    const uint64_t half = 1ull << 51;
    while (i < n) {
        size_t cnt = n - i < BLOCK ? n - i : BLOCK;
        if (!pk_read(&k, buf, cnt)) return SM_ECORRUPT;
        /* The running sums replace the deltas in buf; range collects the
         * bits above 2^52 of every sum moved by 2^51 (zero: all fit). */
        uint64_t range = 0;
        if (dod) {
            for (size_t j = 0; j < cnt; j++) {
                d += (uint64_t)sm_zigzag_dec(buf[j]);
                mv += d;
                buf[j] = mv;
                range |= mv + half;
            }
        } else {
            range = running_sums(buf, cnt, &mv, half);
        }
        int_to_f64(buf, cnt, (range >> 52) == 0, mul, f, vs + i);
        i += cnt;
    }
    return pk_done(&k) ? 0 : SM_ECORRUPT;
}

/* XPK's running XOR: vs[j] is the bits of prev XOR every (buf[0..j] << s);
 * returns the last.  Four at a time, as running_sums does the adds. */
static SM_INLINE uint64_t running_xor(const uint64_t *buf, size_t cnt, uint64_t prev, unsigned s, double *vs) {
    size_t j = 0;
    if (cnt >= 4) {
        const u64x4 zero = {0, 0, 0, 0};
        u64x4 carry = {prev, prev, prev, prev};
        for (; j + 4 <= cnt; j += 4) {
            u64x4 x;
            memcpy(&x, buf + j, sizeof x);
            x <<= s;
            x ^= __builtin_shufflevector(zero, x, 0, 4, 5, 6);
            x ^= __builtin_shufflevector(zero, x, 0, 1, 4, 5);
            u64x4 v = x ^ carry;
            memcpy(vs + j, &v, sizeof v);
            carry ^= __builtin_shufflevector(x, x, 3, 3, 3, 3);
        }
        prev = carry[0];
    }
    for (; j < cnt; j++) vs[j] = sm_f64_from_bits(prev ^= buf[j] << s);
    return prev;
}

static SM_INLINE int val_decode(const hdr *h, double *vs) {
    size_t n = h->info.count;
    const uint8_t *p = h->vcol, *end = h->vend;
    if (h->info.val_enc == VAL_CONST) {
        if (end - p != 8) return SM_ECORRUPT;
        fill_const(vs, n, sm_f64_from_bits(sm_load_le64(p)));
        return 0;
    }
    if (h->info.val_enc == VAL_XOR) {
        bitr br;
        br_init(&br, p, (size_t)(end - p));
        xor_state s = {0, 0, 0};
        uint64_t b;
        if (!br_get(&br, 64, &b)) return SM_ECORRUPT;
        s.prev = b;
        vs[0] = sm_f64_from_bits(b);
        for (size_t i = 1; i < n; i++) {
            if (!xor_get(&br, &s, &b)) return SM_ECORRUPT;
            vs[i] = sm_f64_from_bits(b);
        }
        return col_done(&br) ? 0 : SM_ECORRUPT;
    }
    if (h->info.val_enc == VAL_XPK) {
        if (n < 2 || end - p < 10 || p[8] > 63) return SM_ECORRUPT;
        uint64_t prev = sm_load_le64(p);
        unsigned s = p[8];
        vs[0] = sm_f64_from_bits(prev);
        pk k;
        if (pk_open(&k, p + 9, end, n - 1)) return SM_ECORRUPT;
        uint64_t buf[BLOCK];
        for (size_t i = 1; i < n;) {
            size_t cnt = n - i < BLOCK ? n - i : BLOCK;
            if (!pk_read(&k, buf, cnt)) return SM_ECORRUPT;
            prev = running_xor(buf, cnt, prev, s, vs + i);
            i += cnt;
        }
        return pk_done(&k) ? 0 : SM_ECORRUPT;
    }
    /* VAL_INT */
    sm_rd r;
    sm_rd_init(&r, p, (size_t)(end - p));
    uint8_t mode;
    if (sm_rd_u8(&r, &mode)) return SM_ECORRUPT;
    unsigned k = mode & 0x3fu;
    bool dod = (mode & INT_MODE_DOD) != 0;
    bool mul = (mode & INT_MODE_MUL) != 0;
    if (k > INT_MAX_SCALE || (mul && k == 0)) return SM_ECORRUPT;
    /* Separate instantiations keep the inner loops free of the choice. */
    if (k == 0) return int_decode(&r, dod, true, 1.0, n, vs);
    if (mul) return int_decode(&r, dod, true, pow10_inv[k], n, vs);
    return int_decode(&r, dod, false, pow10_tab[k], n, vs);
}

/* Built twice, for baseline x86-64 and for x86-64-v3 (BMI2's one-cycle
 * variable shifts matter to the bit unpacking); the loader picks. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
int chunk_decode(const uint8_t *p, size_t len, sm_ms_t *ts, double *vs, size_t cap, size_t *n) {
    hdr h;
    if (hdr_read(p, len, &h, false)) return SM_ECORRUPT;
    if (h.info.count > cap) return SM_EINVAL;
    if (ts_decode(&h, ts) || val_decode(&h, vs)) return SM_ECORRUPT;
    *n = h.info.count;
    return 0;
}

/* The time column col[0..n) of a TS_REF chunk: the referenced encoding,
 * offset and length. */
static int ref_read(const uint8_t *col, size_t n, uint8_t *tenc, uint64_t *off, uint64_t *tlen) {
    sm_rd r;
    sm_rd_init(&r, col, n);
    if (sm_rd_u8(&r, tenc) || sm_rd_uvarint(&r, off) || sm_rd_uvarint(&r, tlen) || sm_rd_left(&r))
        return SM_ECORRUPT;
    return *tenc == TS_GRID || *tenc == TS_DOD ? 0 : SM_ECORRUPT;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
int chunk_decode_ref(const uint8_t *p, size_t len, const uint8_t *tcol, size_t tlen, sm_ms_t *ts, double *vs,
                     size_t cap, size_t *n) {
    if (!tcol) return chunk_decode(p, len, ts, vs, cap, n);
    hdr h;
    uint8_t tenc;
    uint64_t off, rlen;
    if (hdr_read(p, len, &h, true) || h.info.ts_enc != TS_REF ||
        ref_read(h.tcol, (size_t)(h.tend - h.tcol), &tenc, &off, &rlen) || rlen != tlen)
        return SM_ECORRUPT;
    if (h.info.count > cap) return SM_EINVAL;
    h.info.ts_enc = tenc;
    h.tcol = tcol;
    h.tend = tcol + tlen;
    if (ts_decode(&h, ts) || val_decode(&h, vs)) return SM_ECORRUPT;
    *n = h.info.count;
    return 0;
}

/* ---- the streaming encoder ----
 *
 * Times go into a bucketed delta-of-delta stream, values into an XOR stream
 * (both in heap buffers with room reserved before every append, so a failed
 * growth leaves the encoder untouched).  Buckets of the time stream, on the
 * zigzag of the delta-of-delta z: '0' z == 0; '10' 8 bits; '110' 16 bits;
 * '1110' 32 bits; '1111' 64 bits.
 */

typedef struct stream {
    uint8_t *p;
    size_t len, cap; /* whole bytes written / allocated */
    uint64_t acc;
    unsigned nacc;
} stream;

struct chunk_enc {
    uint32_t count;
    sm_ms_t mint, maxt;
    uint64_t last_delta;
    xor_state xs;
    stream ts, vs;
};

/* Streams grow by half (in 16-byte steps, which jemalloc's small size
 * classes hold without waste): a head keeps one open encoder per series,
 * and doubling left a full chunk's streams up to half empty. */
static int stream_reserve(stream *s, size_t extra) {
    if (s->cap - s->len >= extra) return 0;
    size_t ncap = s->cap ? s->cap : 32;
    while (ncap - s->len < extra) ncap = (ncap + ncap / 2 + 15) & ~(size_t)15;
    uint8_t *np = sm_realloc(s->p, ncap);
    if (!np) return SM_ENOMEM;
    s->p = np;
    s->cap = ncap;
    return 0;
}

static SM_INLINE bitw stream_w(stream *s) { return (bitw){s->p + s->len, s->acc, s->nacc}; }
static SM_INLINE void stream_keep(stream *s, const bitw *w) {
    s->len = (size_t)(w->p - s->p);
    s->acc = w->acc;
    s->nacc = w->nacc;
}

chunk_enc *chunk_enc_new(void) { return sm_calloc(1, sizeof(chunk_enc)); }

void chunk_enc_free(chunk_enc *e) {
    if (!e) return;
    sm_free(e->ts.p);
    sm_free(e->vs.p);
    sm_free(e);
}

void chunk_enc_reset(chunk_enc *e) {
    stream ts = e->ts, vs = e->vs;
    memset(e, 0, sizeof *e);
    e->ts.p = ts.p;
    e->ts.cap = ts.cap;
    e->vs.p = vs.p;
    e->vs.cap = vs.cap;
}

void chunk_enc_reset_release(chunk_enc *e) {
    sm_free(e->ts.p);
    sm_free(e->vs.p);
    memset(e, 0, sizeof *e);
}

uint32_t chunk_enc_count(const chunk_enc *e) { return e->count; }
sm_ms_t chunk_enc_mint(const chunk_enc *e) { return e->mint; }
sm_ms_t chunk_enc_maxt(const chunk_enc *e) { return e->maxt; }
size_t chunk_enc_stream_bytes(const chunk_enc *e) {
    return e->ts.len + (e->ts.nacc ? 1 : 0) + e->vs.len + (e->vs.nacc ? 1 : 0);
}
size_t chunk_enc_mem_bytes(const chunk_enc *e) { return sizeof *e + e->ts.cap + e->vs.cap; }

int chunk_enc_append(chunk_enc *e, sm_ms_t t, double v) {
    if (e->count >= CHUNK_MAX_SAMPLES) return SM_ELIMIT;
    if (e->count && t <= e->maxt) return SM_EINVAL;
    if (stream_reserve(&e->ts, 10) || stream_reserve(&e->vs, 11)) return SM_ENOMEM;
    uint64_t bits = sm_f64_bits(v);
    if (e->count == 0) {
        e->mint = e->maxt = t;
        e->xs.prev = bits;
        bitw w = stream_w(&e->vs);
        bw_put(&w, bits, 64);
        stream_keep(&e->vs, &w);
        e->count = 1;
        return 0;
    }
    uint64_t d = (uint64_t)t - (uint64_t)e->maxt;
    uint64_t z = sm_zigzag_enc((int64_t)(d - e->last_delta));
    bitw w = stream_w(&e->ts);
    if (z == 0) {
        bw_put(&w, 0, 1);
    } else if (z < (1u << 8)) {
        bw_put(&w, 2, 2);
        bw_put(&w, z, 8);
    } else if (z < (1u << 16)) {
        bw_put(&w, 6, 3);
        bw_put(&w, z, 16);
    } else if (z < (1ull << 32)) {
        bw_put(&w, 14, 4);
        bw_put(&w, z, 32);
    } else {
        bw_put(&w, 15, 4);
        bw_put(&w, z, 64);
    }
    stream_keep(&e->ts, &w);
    w = stream_w(&e->vs);
    xor_put(&w, &e->xs, bits);
    stream_keep(&e->vs, &w);
    e->last_delta = d;
    e->maxt = t;
    e->count++;
    return 0;
}

/* A stream's whole bytes and its pending bits, padded to a byte. */
static size_t stream_copy(const stream *st, uint8_t *o) {
    memcpy(o, st->p, st->len);
    size_t l = st->len;
    if (st->nacc) o[l++] = (uint8_t)(st->acc << (8 - st->nacc));
    return l;
}

int chunk_enc_snapshot(const chunk_enc *e, sm_buf *out) {
    if (e->count == 0) return SM_EINVAL;
    if (e->count == 1) {
        /* SINGLE has no time column; chunk_encode is cheap for one sample. */
        double v = sm_f64_from_bits(e->xs.prev);
        return chunk_encode(&e->mint, &v, 1, out);
    }
    size_t tl = e->ts.len + (e->ts.nacc ? 1 : 0), vl = e->vs.len + (e->vs.nacc ? 1 : 0);
    if (sm_buf_reserve(out, 1 + 4 * 10 + tl + vl)) return SM_ENOMEM;
    uint8_t *o = out->p + out->len, *o0 = o;
    *o++ = (uint8_t)(TS_STREAM | (VAL_XOR << 4));
    o += sm_uvarint_put(o, e->count);
    o += sm_uvarint_put(o, sm_zigzag_enc(e->mint));
    o += sm_uvarint_put(o, (uint64_t)e->maxt - (uint64_t)e->mint);
    o += sm_uvarint_put(o, tl);
    o += stream_copy(&e->ts, o);
    o += stream_copy(&e->vs, o);
    out->len += (size_t)(o - o0);
    return 0;
}

int chunk_enc_finish(const chunk_enc *e, sm_buf *out) {
    if (e->count == 0) return SM_EINVAL;
    size_t n = e->count;
    sm_ms_t tsa[256];
    double vsa[256];
    sm_ms_t *ts = tsa;
    double *vs = vsa;
    if (n > 256) {
        ts = sm_malloc(n * (sizeof *ts + sizeof *vs));
        if (!ts) return SM_ENOMEM;
        vs = (double *)(ts + n);
    }
    /* Through the snapshot: its decoder is the one chunk_decode uses. */
    sm_buf snap = SM_BUF_INIT;
    size_t got = 0;
    int rc = chunk_enc_snapshot(e, &snap);
    if (rc == 0 && chunk_decode(snap.p, snap.len, ts, vs, n, &got)) rc = SM_ECORRUPT; /* our own bytes */
    if (rc == 0) rc = chunk_encode(ts, vs, n, out);
    sm_buf_fini(&snap);
    if (ts != tsa) sm_free(ts);
    return rc;
}

size_t chunk_enc_size_bytes(const chunk_enc *e) {
    if (e->count == 0) return 0;
    sm_buf b = SM_BUF_INIT;
    size_t sz;
    if (chunk_enc_finish(e, &b) == 0)
        sz = b.len;
    else /* out of memory: the streaming size is an upper bound */
        sz = 16 + e->ts.len + e->vs.len + 2;
    sm_buf_fini(&b);
    return sz;
}

/* ---- time columns shared inside a block (TS_REF) ----
 *
 * The series of one scrape target carry the same timestamps, so when a
 * block writer meets a time column it has already written it stores a
 * reference to the first copy instead.  A TS_REF chunk has the normal
 * header (enc, count, mint, span, column length) with time encoding 4 and,
 * as its time column: u8 the referenced column's encoding (GRID or DOD),
 * uvarint its offset in the block's chunks file, uvarint its length.  Such
 * chunks exist only inside block files.  The block reader hands them out
 * with the referenced column (chunk_ref_column) and they are decoded with
 * it in place (chunk_decode_ref); block_verify and a writer given one
 * (compaction) expand them back into the chunk that was given to the
 * writer, byte for byte (docs/FORMAT.md, "Shared time columns"). */

/* Header plus columns into dst (room: parts_size). */
static size_t parts_size(const chunk_parts *c) {
    return 1 + sm_uvarint_len(c->count) + sm_uvarint_len(c->zmint) + sm_uvarint_len(c->span) +
           sm_uvarint_len(c->tlen) + c->tlen + c->vlen;
}

static void parts_write(const chunk_parts *c, uint8_t *dst) {
    *dst++ = c->enc;
    dst += sm_uvarint_put(dst, c->count);
    dst += sm_uvarint_put(dst, c->zmint);
    dst += sm_uvarint_put(dst, c->span);
    dst += sm_uvarint_put(dst, c->tlen);
    memcpy(dst, c->tcol, c->tlen);
    memcpy(dst + c->tlen, c->vcol, c->vlen);
}

int chunk_time_column(const uint8_t *p, size_t len, size_t *off, size_t *tlen) {
    chunk_parts c;
    if (parts_read(p, len, &c)) return SM_ECORRUPT;
    unsigned tenc = c.enc & 0x0fu;
    if (tenc != TS_GRID && tenc != TS_DOD) return 1;
    *off = (size_t)(c.tcol - p);
    *tlen = c.tlen;
    return 0;
}

int chunk_ref_encode(const uint8_t *p, size_t len, uint64_t ref_off, sm_buf *out) {
    chunk_parts c;
    if (parts_read(p, len, &c)) return SM_ECORRUPT;
    unsigned tenc = c.enc & 0x0fu;
    if (tenc != TS_GRID && tenc != TS_DOD) return SM_EINVAL;
    uint8_t col[1 + 10 + 10];
    col[0] = (uint8_t)tenc;
    size_t n = 1 + sm_uvarint_put(col + 1, ref_off);
    n += sm_uvarint_put(col + n, c.tlen);
    c.enc = (uint8_t)((c.enc & 0xf0u) | TS_REF);
    c.tcol = col;
    c.tlen = n;
    if (sm_buf_reserve(out, parts_size(&c))) return SM_ENOMEM;
    parts_write(&c, out->p + out->len);
    out->len += parts_size(&c);
    return 0;
}

bool chunk_is_ref(const uint8_t *p, size_t len) { return len > 0 && (p[0] & 0x0fu) == TS_REF; }

int chunk_ref_target(const uint8_t *p, size_t len, uint64_t *off, uint32_t *tlen) {
    chunk_parts c;
    uint8_t tenc;
    uint64_t n;
    if (parts_read(p, len, &c) || (c.enc & 0x0fu) != TS_REF || ref_read(c.tcol, c.tlen, &tenc, off, &n) ||
        n > UINT32_MAX)
        return SM_ECORRUPT;
    *tlen = (uint32_t)n;
    return 0;
}

int chunk_ref_column(const uint8_t *file, size_t file_len, const uint8_t *p, size_t len, const uint8_t **tcol,
                     uint32_t *tlen) {
    uint64_t off;
    uint32_t n;
    if (chunk_ref_target(p, len, &off, &n)) return SM_ECORRUPT;
    if (off > file_len || n > file_len - off) return SM_ECORRUPT;
    *tcol = file + off;
    *tlen = (uint32_t)n;
    return 0;
}

/* Chunk p (a TS_REF one) with tcol[0..tlen) as its time column again, in
 * c's form: the chunk the block writer was given. */
static int ref_parts(const uint8_t *p, size_t len, const uint8_t *tcol, size_t tlen, chunk_parts *c) {
    uint8_t tenc;
    uint64_t off, n;
    if (parts_read(p, len, c) || (c->enc & 0x0fu) != TS_REF || ref_read(c->tcol, c->tlen, &tenc, &off, &n) ||
        n != tlen)
        return SM_ECORRUPT;
    c->enc = (uint8_t)((c->enc & 0xf0u) | tenc);
    c->tcol = tcol;
    c->tlen = tlen;
    return 0;
}

int chunk_ref_expand_to(const uint8_t *p, size_t len, const uint8_t *tcol, size_t tlen, sm_buf *out) {
    chunk_parts c;
    if (ref_parts(p, len, tcol, tlen, &c)) return SM_ECORRUPT;
    size_t n = parts_size(&c);
    if (n > UINT32_MAX) return SM_ECORRUPT;
    if (sm_buf_reserve(out, n)) return SM_ENOMEM;
    parts_write(&c, out->p + out->len);
    out->len += n;
    return 0;
}

int chunk_ref_expand(const uint8_t *file, size_t file_len, const uint8_t *p, size_t len, sm_arena *a,
                     const uint8_t **out, uint32_t *out_len) {
    const uint8_t *tcol;
    uint32_t tlen;
    chunk_parts c;
    if (chunk_ref_column(file, file_len, p, len, &tcol, &tlen) || ref_parts(p, len, tcol, tlen, &c))
        return SM_ECORRUPT;
    size_t n = parts_size(&c);
    if (n > UINT32_MAX) return SM_ECORRUPT;
    uint8_t *dst = sm_arena_alloc(a, n);
    if (!dst) return SM_ENOMEM;
    parts_write(&c, dst);
    *out = dst;
    *out_len = (uint32_t)n;
    return 0;
}
