/* SPDX-License-Identifier: Apache-2.0
 *
 * json_dtoa.c - shortest round-trip digits of a double, by Ryu (Ulf Adams,
 * "Ryu: fast float-to-string conversion", PLDI 2018).  Written from the
 * paper's description; no code of the reference implementation is copied.
 * It replaces json.c's loop of snprintf("%.*e") and strtod (about 800 ns a
 * value) with integer arithmetic (tens of ns).  It gives digits and an
 * exponent only: json.c lays them out without exponent.
 *
 * How it works.  A finite double is m2 x 2^e2 with an integer m2.  The
 * doubles next to it bound the interval of reals that read back to it:
 * in units of 2^(e2-2), the value is mv = 4 m2, the upper bound mp = mv + 2
 * and the lower bound mm = mv - 2, or mv - 1 when m2 is a power of two
 * above the smallest normal exponent (the gap below is then half the gap
 * above).  The bounds belong to the interval when m2 is even, because
 * strtod rounds ties to even.  Ryu multiplies all three by 2^e2 / 10^q for
 * a q chosen so that the results vm < vr < vp fit in 64 bits yet still
 * tell the bounds apart, then drops decimal digits while vp / 10 > vm / 10:
 * each drop keeps a decimal inside the interval.  The last dropped digit
 * of vr rounds the result to the nearest candidate (ties to even).  Exact
 * bound handling needs to know whether the products had nonzero digits
 * below 10^q (the *_zeros flags); that is decided from the powers of 2 and
 * 5 that divide mv, never by computing the full product.
 *
 * The multipliers.  For e2 >= 0 the factor is 1 / 5^q, kept as
 * INV[q] = floor(2^(len(5^q) - 1 + 125) / 5^q) + 1; for e2 < 0 it is 5^i,
 * kept as its top 125 bits, SPLIT[i] = floor(5^i / 2^(len(5^i) - 125))
 * (shifted left when 5^i is shorter).  len(x) is x's bit length.  125
 * bits are enough for every double (the paper's bound is 121/122 bits; we
 * keep Ryu's later, roomier choice).  The tables are not written in this
 * file: build_tables() computes them at first use with a 1024-bit integer
 * (5^i by repeated multiplication, the inverse by binary long division),
 * under pthread_once, in about a millisecond.  tests/query/test_json.c
 * checks the output against the snprintf/strtod reference on millions of
 * seeded random doubles and on the hard cases (powers of 2 and 10,
 * subnormals, neighbours of powers of ten).
 *
 * Not done here: signs, NaN, infinities, the decimal point.
 */
#include "json_dtoa.h"

#include <pthread.h>
#include <string.h>

#define MANT_BITS 52
#define EXP_BIAS 1023
#define POW5_BITS 125     /* bits of SPLIT[i] and of INV[q] */
#define SPLIT_N 326       /* i = -e2 - q reaches 325 (e2 = -1076) */
#define INV_N 292         /* q = log10(2^e2) - 1 reaches 290 (e2 = 969) */
#define BIG_WORDS 16      /* 1024 bits: 2^916 and 5^341 << 125 fit */

typedef unsigned __int128 u128;

static uint64_t split_tab[SPLIT_N][2]; /* [0] low 64 bits, [1] high bits */
static uint64_t inv_tab[INV_N][2];
static uint64_t pow10_tab[20]; /* 10^0 .. 10^19 */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* ---- the 1024-bit integers of the table builder (little-endian words) */

typedef struct big {
    uint64_t w[BIG_WORDS];
} big;

static int big_bitlen(const big *a) {
    for (int i = BIG_WORDS - 1; i >= 0; i--)
        if (a->w[i]) return i * 64 + 64 - __builtin_clzll(a->w[i]);
    return 0;
}

static void big_mul_small(big *a, uint64_t k) {
    u128 carry = 0;
    for (int i = 0; i < BIG_WORDS; i++) {
        u128 t = (u128)a->w[i] * k + carry;
        a->w[i] = (uint64_t)t;
        carry = t >> 64;
    }
}

/* a <<= n (n >= 0) or a >>= -n (n < 0); bits beyond the width are lost. */
static void big_shift(big *a, int n) {
    big r = {{0}};
    int words = (n < 0 ? -n : n) / 64, b = (n < 0 ? -n : n) % 64;
    for (int i = 0; i < BIG_WORDS; i++) {
        if (n >= 0) {
            int s = i - words; /* r.w[i] takes bits from a.w[s] and a.w[s - 1] */
            if (s >= 0) r.w[i] |= a->w[s] << b;
            if (b && s - 1 >= 0) r.w[i] |= a->w[s - 1] >> (64 - b);
        } else {
            int s = i + words; /* from a.w[s] and a.w[s + 1] */
            if (s < BIG_WORDS) r.w[i] |= a->w[s] >> b;
            if (b && s + 1 < BIG_WORDS) r.w[i] |= a->w[s + 1] << (64 - b);
        }
    }
    *a = r;
}

static int big_cmp(const big *a, const big *b) {
    for (int i = BIG_WORDS - 1; i >= 0; i--)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

static void big_sub(big *a, const big *b) { /* a -= b, with a >= b */
    uint64_t borrow = 0;
    for (int i = 0; i < BIG_WORDS; i++) {
        uint64_t x = a->w[i], y = b->w[i];
        uint64_t d = x - y - borrow;
        borrow = (x < y) || (x - y < borrow);
        a->w[i] = d;
    }
}

static void build_tables(void) {
    pow10_tab[0] = 1;
    for (int i = 1; i < 20; i++) pow10_tab[i] = pow10_tab[i - 1] * 10;
    big p = {{1}}; /* 5^i */
    for (int i = 0; i < SPLIT_N || i < INV_N; i++, big_mul_small(&p, 5)) {
        int len = big_bitlen(&p);
        if (i < SPLIT_N) {
            big s = p;
            big_shift(&s, POW5_BITS - len);
            split_tab[i][0] = s.w[0];
            split_tab[i][1] = s.w[1];
        }
        if (i < INV_N) {
            /* floor(2^(len - 1 + 125) / 5^i) has at most 126 bits (bit 125
             * only for 5^0); subtract 5^i << b for b = 125 down to 0. */
            big r = {{0}}, d = p;
            int j = len - 1 + POW5_BITS;
            r.w[j / 64] = (uint64_t)1 << (j % 64);
            big_shift(&d, POW5_BITS);
            u128 quot = 0;
            for (int b = POW5_BITS; b >= 0; b--) {
                if (big_cmp(&r, &d) >= 0) {
                    big_sub(&r, &d);
                    quot |= (u128)1 << b;
                }
                big_shift(&d, -1); /* exact: d's low bits are zeros */
            }
            quot += 1;
            inv_tab[i][0] = (uint64_t)quot;
            inv_tab[i][1] = (uint64_t)(quot >> 64);
        }
    }
}

/* ---- Ryu */

/* floor(log10(2^e)) for 0 <= e <= 1650, and floor(log10(5^e)) for
 * 0 <= e <= 2620 (fixed-point logarithms; the paper checks the ranges). */
static uint32_t log10_pow2(int e) { return ((uint32_t)e * 78913) >> 18; }
static uint32_t log10_pow5(int e) { return ((uint32_t)e * 732923) >> 20; }
/* len(5^e) = ceil(log2(5^e)) for e >= 1, and 1 for e = 0. */
static int pow5_bits(int e) { return (int)(((uint32_t)e * 1217359) >> 19) + 1; }

static int pow5_factor(uint64_t v) {
    int n = 0;
    while (v % 5 == 0) {
        v /= 5;
        n++;
    }
    return n;
}

static int multiple_of_pow5(uint64_t v, uint32_t p) { return pow5_factor(v) >= (int)p; }
static int multiple_of_pow2(uint64_t v, uint32_t p) { return (v & (((uint64_t)1 << p) - 1)) == 0; }

/* floor(m x mul / 2^j) for a 125-bit mul and 64 <= j < 192; m < 2^55 keeps
 * the sum of the two partial products inside 128 bits. */
static uint64_t mul_shift(uint64_t m, const uint64_t *mul, int j) {
    u128 lo = (u128)m * mul[0];
    u128 hi = (u128)m * mul[1];
    return (uint64_t)(((lo >> 64) + hi) >> (j - 64));
}

/* Divides vr, vp, vm by 10, keeping vr's dropped digit in *last and
 * whether all dropped digits before it were 0 in *vr_zeros. */
static void drop_digit(uint64_t *vr, uint64_t *vp, uint64_t *vm, uint64_t *last, int *vr_zeros) {
    *vr_zeros &= *last == 0;
    *last = *vr % 10;
    *vr /= 10;
    *vp /= 10;
    *vm /= 10;
}

static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";

/* v < 10^8 as exactly eight digits (leading zeros) at o. */
static void put8(char *o, uint32_t v) {
    uint32_t hi = v / 10000, lo = v - hi * 10000;
    uint32_t a = hi / 100, b = hi - a * 100, c = lo / 100, d = lo - c * 100;
    memcpy(o, pairs + 2 * a, 2);
    memcpy(o + 2, pairs + 2 * b, 2);
    memcpy(o + 4, pairs + 2 * c, 2);
    memcpy(o + 6, pairs + 2 * d, 2);
}

/* v, which has exactly k digits (1 <= k <= 8), at o. */
static void put_head(char *o, uint32_t v, int k) {
    while (k >= 2) {
        uint32_t q = v / 100;
        memcpy(o + k - 2, pairs + 2 * (v - q * 100), 2);
        v = q;
        k -= 2;
    }
    if (k) o[0] = (char)('0' + v);
}

int json_dtoa_shortest(double v, char *digits, int *exp10) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t mant = bits & (((uint64_t)1 << MANT_BITS) - 1);
    int bexp = (int)(bits >> MANT_BITS & 0x7ff);
    if (bexp == 0x7ff) bexp = 0x7fe; /* NaN/Inf: caller's bug, stay in bounds */
    if (bexp == 0 && mant == 0) {
        digits[0] = '0';
        *exp10 = 0;
        return 1;
    }
    pthread_once(&tables_once, build_tables);

    int e2;
    uint64_t m2;
    if (bexp == 0) {
        e2 = 1 - EXP_BIAS - MANT_BITS - 2;
        m2 = mant;
    } else {
        e2 = bexp - EXP_BIAS - MANT_BITS - 2;
        m2 = ((uint64_t)1 << MANT_BITS) | mant;
    }
    int accept_bounds = (m2 & 1) == 0;
    uint64_t mv = 4 * m2;
    uint32_t mm_shift = mant != 0 || bexp <= 1; /* 0: the gap below is half */
    uint64_t mp_ = mv + 2, mm_ = mv - 1 - mm_shift;

    uint64_t vr, vp, vm;
    int e10;
    int vm_zeros = 0, vr_zeros = 0; /* the dropped digits so far are all 0 */
    if (e2 >= 0) {
        uint32_t q = log10_pow2(e2) - (e2 > 3);
        e10 = (int)q;
        int k = POW5_BITS + pow5_bits((int)q) - 1;
        int i = -e2 + (int)q + k;
        vr = mul_shift(mv, inv_tab[q], i);
        vp = mul_shift(mp_, inv_tab[q], i);
        vm = mul_shift(mm_, inv_tab[q], i);
        if (q <= 21) {
            /* At most one of mp, mv, mm is a multiple of 5. */
            if (mv % 5 == 0) vr_zeros = multiple_of_pow5(mv, q);
            else if (accept_bounds) vm_zeros = multiple_of_pow5(mm_, q);
            else vp -= (uint64_t)multiple_of_pow5(mp_, q); /* mp itself is excluded */
        }
    } else {
        uint32_t q = log10_pow5(-e2) - (-e2 > 1);
        e10 = (int)q + e2;
        int i = -e2 - (int)q;
        int k = pow5_bits(i) - POW5_BITS;
        int j = (int)q - k;
        vr = mul_shift(mv, split_tab[i], j);
        vp = mul_shift(mp_, split_tab[i], j);
        vm = mul_shift(mm_, split_tab[i], j);
        if (q <= 1) {
            /* mv x 5^i / 2^q with q <= 1: mv = 4 m2 has two factors of 2. */
            vr_zeros = 1;
            if (accept_bounds) vm_zeros = mm_shift == 1; /* mm = mv - 2 is even */
            else vp--;                                   /* mp = mv + 2 also exact */
        } else if (q < 63) {
            /* The product has q trailing decimal zeros iff 2^q divides mv
             * (5^i supplies the fives, as i >= q). */
            vr_zeros = multiple_of_pow2(mv, q);
        }
    }

    /* Drop digits while a shorter decimal stays inside the interval. */
    int removed = 0;
    uint64_t out;
    if (!vm_zeros && !vr_zeros) {
        /* The common case: no exact products, so only the last dropped
         * digit decides the rounding.  Two digits a step while they go. */
        int up = 0;
        for (uint64_t p100 = vp / 100, m100 = vm / 100; p100 > m100; p100 = vp / 100, m100 = vm / 100) {
            uint64_t r100 = vr / 100;
            up = vr - r100 * 100 >= 50;
            vr = r100;
            vp = p100;
            vm = m100;
            removed += 2;
        }
        if (vp / 10 > vm / 10) {
            up = vr % 10 >= 5;
            vr /= 10;
            vm /= 10;
            removed++;
        }
        out = vr + (vr == vm || up);
    } else {
        /* Exact products: then (vm exact and inclusive) also drop while vm
         * itself ends in 0, and round an exact tie (a dropped 5 followed by
         * zeros) to even. */
        uint64_t last = 0; /* the last digit dropped from vr */
        while (vp / 10 > vm / 10) {
            vm_zeros &= vm % 10 == 0;
            drop_digit(&vr, &vp, &vm, &last, &vr_zeros);
            removed++;
        }
        if (vm_zeros) {
            while (vm % 10 == 0) {
                drop_digit(&vr, &vp, &vm, &last, &vr_zeros);
                removed++;
            }
        }
        if (vr_zeros && last == 5 && vr % 2 == 0) last = 4;
        out = vr + ((vr == vm && (!accept_bounds || !vm_zeros)) || last >= 5);
    }
    int exp = e10 + removed;
    while (out % 10 == 0 && out) { /* (the shortest form may still end in 0) */
        out /= 10;
        exp++;
    }

    /* The digit count from the bit length (log10(2) ~ 1233 / 4096), then
     * the digits: blocks of eight from the right, each written from a
     * table of digit pairs, so that the blocks' divisions do not wait for
     * one another (one division chain over all 17 digits was half of this
     * function's time). */
    int bitlen = 64 - __builtin_clzll(out | 1);
    int n = ((bitlen * 1233) >> 12) + 1;
    if (n > 1 && out < pow10_tab[n - 1]) n--;
    int at = n;
    if (at > 8) {
        uint64_t q = out / 100000000;
        put8(digits + at - 8, (uint32_t)(out - q * 100000000));
        out = q;
        at -= 8;
        if (at > 8) {
            q = out / 100000000;
            put8(digits + at - 8, (uint32_t)(out - q * 100000000));
            out = q;
            at -= 8;
        }
    }
    put_head(digits, (uint32_t)out, at);
    *exp10 = exp;
    return n;
}
