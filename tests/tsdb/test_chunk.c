/* SPDX-License-Identifier: Apache-2.0
 *
 * test_chunk.c - chunk round trips on random and adversarial inputs (equal
 * and huge timestamp gaps, negative and extreme times, every float special),
 * through the one-shot encoder and the streaming one; encoder rollback on
 * refused appends; and decoding of damaged chunks, which must fail cleanly.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/chunk.h"

#define MAXN 3000

static sm_ms_t g_ts[MAXN], g_dts[MAXN];
static double g_vs[MAXN], g_dvs[MAXN];

static const uint64_t special_bits[] = {
    0x7ff0000000000002ull, /* Prometheus stale marker */
    0x7ff8000000000001ull, /* quiet NaN with payload */
    0xfff8000000000000ull, /* negative NaN */
    0x7ff0000000000000ull, /* +Inf */
    0xfff0000000000000ull, /* -Inf */
    0x8000000000000000ull, /* -0.0 */
    0x0000000000000000ull, /* +0.0 */
    0x0000000000000001ull, /* smallest denormal */
    0x7fefffffffffffffull, /* DBL_MAX */
    0x3ff0000000000000ull, /* 1.0 */
};

static sm_ms_t gen_times(uint64_t *rng, sm_ms_t *ts, size_t n) {
    int kind = (int)check_rand_below(rng, 7);
    sm_ms_t t;
    switch (check_rand_below(rng, 4)) {
    case 0: t = -(sm_ms_t)check_rand_below(rng, 1ull << 40); break;
    case 1: t = INT64_MIN + (sm_ms_t)check_rand_below(rng, 1000); break;
    default: t = 1700000000000 + (sm_ms_t)check_rand_below(rng, 1ull << 30); break;
    }
    sm_ms_t step = 1 + (sm_ms_t)check_rand_below(rng, 60000);
    for (size_t i = 0; i < n; i++) {
        ts[i] = t;
        sm_ms_t d;
        switch (kind) {
        case 0: d = step; break;                                                  /* regular */
        case 1: d = step + (sm_ms_t)check_rand_below(rng, 9) - 4; break;          /* jitter */
        case 2: d = 1; break;                                                     /* dense */
        case 3: d = 1 + (sm_ms_t)check_rand_below(rng, 1ull << 62 >> (n / 2 + 1 < 62 ? 0 : 0)) /
                        (sm_ms_t)(n + 1); break;                                  /* huge gaps */
        case 4: d = check_rand_below(rng, 10) ? step : 1 + (sm_ms_t)check_rand_below(rng, 1ull << 36);
            break;                                                                /* mostly regular */
        default: d = 1 + (sm_ms_t)check_rand_below(rng, 100000); break;           /* random */
        }
        if (d < 1) d = 1;
        if (t > INT64_MAX - d) { /* keep strictly increasing without overflow */
            return (sm_ms_t)i;
        }
        t += d;
    }
    return (sm_ms_t)n;
}

static void gen_values(uint64_t *rng, double *vs, size_t n) {
    int kind = (int)check_rand_below(rng, 8);
    double acc = (double)check_rand_below(rng, 1000000);
    double c = sm_f64_from_bits(special_bits[check_rand_below(rng, 10)]);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: vs[i] = c; break;                                              /* constant */
        case 1: acc += (double)check_rand_below(rng, 5000); vs[i] = acc; break; /* int counter */
        case 2: vs[i] = (double)(int64_t)check_rand_below(rng, 200) / 100.0; break; /* 2 decimals */
        case 3: vs[i] = sm_f64_from_bits(check_rand(rng)); break;             /* random bits */
        case 4: vs[i] = sm_f64_from_bits(special_bits[check_rand_below(rng, 10)]); break;
        case 5: vs[i] = check_rand_below(rng, 20) ? c : sm_f64_from_bits(check_rand(rng)); break;
        case 6: acc += (double)check_rand_below(rng, 300) / 100.0; vs[i] = acc; break;
        default: vs[i] = sin((double)i / 10.0) * 1e3; break; /* smooth float */
        }
    }
}

static bool same_bits(const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (sm_f64_bits(a[i]) != sm_f64_bits(b[i])) return false;
    return true;
}

/* Chunk bytes b (what: which form) decode to exactly ts, vs. */
static void check_decodes(const sm_buf *b, const sm_ms_t *ts, const double *vs, size_t n, const char *what) {
    size_t got = 0;
    int rc = chunk_decode(b->p, b->len, g_dts, g_dvs, MAXN, &got);
    CHECK_MSG(rc == 0 && got == n, "%s decode rc=%d n=%zu want %zu", what, rc, got, n);
    if (rc == 0 && got == n) {
        CHECK(memcmp(ts, g_dts, n * sizeof *ts) == 0);
        CHECK(same_bits(vs, g_dvs, n));
    }
}

/* The encoder's snapshot of its first n samples reads back as them. */
static void check_snapshot(const chunk_enc *e, const sm_ms_t *ts, const double *vs, size_t n) {
    sm_buf s = SM_BUF_INIT;
    CHECK_OK(chunk_enc_snapshot(e, &s));
    check_decodes(&s, ts, vs, n, "snapshot");
    CHECK(s.len <= chunk_enc_stream_bytes(e) + 32);
    sm_buf_fini(&s);
}

static void check_roundtrip(const sm_ms_t *ts, const double *vs, size_t n) {
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(chunk_encode(ts, vs, n, &b));
    check_decodes(&b, ts, vs, n, "chunk");
    chunk_info ci;
    CHECK_OK(chunk_info_read(b.p, b.len, &ci));
    CHECK(ci.count == n && ci.mint == ts[0] && ci.maxt == ts[n - 1]);

    /* The streaming encoder gives the same bytes, and finishing does not
     * disturb it. */
    chunk_enc *e = chunk_enc_new();
    sm_buf b2 = SM_BUF_INIT;
    size_t half = n / 2;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(chunk_enc_append(e, ts[i], vs[i]));
        if (i + 1 == half) {
            sm_buf tmp = SM_BUF_INIT;
            CHECK_OK(chunk_enc_finish(e, &tmp));
            sm_buf_fini(&tmp);
            check_snapshot(e, ts, vs, half);
        }
    }
    check_snapshot(e, ts, vs, n);
    CHECK(chunk_enc_count(e) == n);
    CHECK(chunk_enc_mint(e) == ts[0] && chunk_enc_maxt(e) == ts[n - 1]);
    CHECK_OK(chunk_enc_finish(e, &b2));
    CHECK(b2.len == b.len && memcmp(b.p, b2.p, b.len) == 0);
    CHECK(chunk_enc_size_bytes(e) == b.len);
    chunk_enc_free(e);
    sm_buf_fini(&b2);
    sm_buf_fini(&b);
}

static void test_random(uint64_t *rng) {
    for (int iter = 0; iter < 1500; iter++) {
        size_t n = 1 + (size_t)check_rand_below(rng, iter % 10 == 0 ? MAXN : 200);
        n = (size_t)gen_times(rng, g_ts, n);
        if (n == 0) continue;
        gen_values(rng, g_vs, n);
        check_roundtrip(g_ts, g_vs, n);
    }
}

static void test_specials(void) {
    /* Every special after every special, so each XOR transition is seen. */
    size_t n = 0;
    for (size_t i = 0; i < 10; i++)
        for (size_t j = 0; j < 10; j++) {
            g_ts[n] = (sm_ms_t)n * 15000 - 50000;
            g_vs[n++] = sm_f64_from_bits(special_bits[i]);
            g_ts[n] = (sm_ms_t)n * 15000 - 50000;
            g_vs[n++] = sm_f64_from_bits(special_bits[j]);
        }
    check_roundtrip(g_ts, g_vs, n);
    /* Extreme times: the whole int64 range in two samples. */
    sm_ms_t t2[2] = {INT64_MIN, INT64_MAX};
    double v2[2] = {1.5, -0.0};
    check_roundtrip(t2, v2, 2);
    sm_ms_t t3[3] = {INT64_MIN, 0, INT64_MAX};
    double v3[3] = {0.0, -0.0, 0.0};
    check_roundtrip(t3, v3, 3);
    sm_ms_t t1[1] = {-1};
    double v1[1] = {sm_f64_from_bits(0x7ff0000000000002ull)};
    check_roundtrip(t1, v1, 1);
    /* Integer-valued values near the limits of exact doubles. */
    for (size_t i = 0; i < 100; i++) {
        g_ts[i] = (sm_ms_t)i;
        g_vs[i] = (i & 1) ? 9007199254740992.0 : -9007199254740991.0;
    }
    check_roundtrip(g_ts, g_vs, 100);
}

/* A hand-made GRID chunk of ten samples from mint to mint + span with the
 * given step, a constant 1.0, and eight 3-bit residuals z[] (zigzagged,
 * docs/FORMAT.md "Packed columns"). */
static size_t grid_chunk(uint8_t *out, sm_ms_t mint, uint64_t span, uint64_t step, const uint8_t z[8]) {
    uint8_t tcol[16];
    size_t tl = (size_t)sm_uvarint_put(tcol, step);
    tcol[tl++] = 3; /* w = 3, no exceptions */
    uint32_t bits = 0;
    for (int i = 0; i < 8; i++) bits = bits << 3 | z[i];
    tcol[tl++] = (uint8_t)(bits >> 16);
    tcol[tl++] = (uint8_t)(bits >> 8);
    tcol[tl++] = (uint8_t)bits;
    uint8_t *p = out;
    *p++ = 0x01; /* GRID times, CONST values */
    p += sm_uvarint_put(p, 10);
    p += sm_uvarint_put(p, sm_zigzag_enc(mint));
    p += sm_uvarint_put(p, span);
    p += sm_uvarint_put(p, tl);
    memcpy(p, tcol, tl);
    p += tl;
    sm_store_le64(p, sm_f64_bits(1.0));
    return (size_t)(p + 8 - out);
}

/* Jittered grids: the decoder's one-pass path for narrow residuals skips
 * the order check when the step exceeds every residual difference (step
 * >= 2^w) and the grid cannot wrap past INT64_MAX; everywhere else the
 * times are checked.  Both sides of each condition. */
static void test_grid_edges(uint64_t *rng) {
    /* residual +3 then -4 at samples 4 and 5: they differ by step - 7 */
    const uint8_t z[8] = {0, 1, 2, 6, 7, 0, 2, 1};
    uint8_t buf[64];
    size_t n = 0, len = grid_chunk(buf, 1000, 72, 8, z);
    CHECK_OK(chunk_decode(buf, len, g_dts, g_dvs, MAXN, &n));
    const sm_ms_t want[10] = {1000, 1008, 1015, 1025, 1035, 1036, 1048, 1057, 1063, 1072};
    CHECK(n == 10 && memcmp(g_dts, want, sizeof want) == 0);
    len = grid_chunk(buf, 1000, 63, 7, z); /* samples 4 and 5 now equal: refused */
    CHECK_EQ_INT(chunk_decode(buf, len, g_dts, g_dvs, MAXN, &n), SM_ECORRUPT);
    /* A span that ends one past the grid's eighth time, at INT64_MAX: the
     * residual +3 there would wrap it round to the most negative times. */
    const uint8_t zw[8] = {0, 0, 0, 0, 0, 0, 0, 6};
    len = grid_chunk(buf, INT64_MAX - 81, 81, 10, zw);
    CHECK_EQ_INT(chunk_decode(buf, len, g_dts, g_dvs, MAXN, &n), SM_ECORRUPT);
    len = grid_chunk(buf, INT64_MAX - 84, 84, 10, zw); /* room for it: fine */
    CHECK_OK(chunk_decode(buf, len, g_dts, g_dvs, MAXN, &n));
    CHECK(n == 10 && g_dts[8] == INT64_MAX - 1 && g_dts[9] == INT64_MAX);
    /* Round trips of jittered grids at the top of the time range, with
     * steps on both sides of 2^w, and with the last sample early. */
    for (int iter = 0; iter < 400; iter++) {
        size_t cnt = 3 + (size_t)check_rand_below(rng, 200);
        sm_ms_t step = iter % 2 ? 15000 : 2 + (sm_ms_t)check_rand_below(rng, 14);
        sm_ms_t jit = 1 + (sm_ms_t)check_rand_below(rng, (uint64_t)(step < 8 ? step / 2 : 8));
        sm_ms_t top = INT64_MAX - (sm_ms_t)check_rand_below(rng, (uint64_t)step * 3);
        sm_ms_t mint = iter % 4 < 2 ? top - (sm_ms_t)(cnt + 1) * step : 1700000000000;
        for (size_t i = 0; i < cnt; i++) {
            sm_ms_t j = i ? (sm_ms_t)check_rand_below(rng, (uint64_t)(2 * jit + 1)) - jit : 0;
            g_ts[i] = mint + (sm_ms_t)i * step + j;
            if (i && g_ts[i] <= g_ts[i - 1]) g_ts[i] = g_ts[i - 1] + 1;
            g_vs[i] = (double)(iter % 3);
        }
        check_roundtrip(g_ts, g_vs, cnt);
    }
}

/* Integer columns whose running sums cross +-2^51, where the four-wide
 * conversion (int_to_f64's bias trick) stops being exact and the decoder
 * must take the scalar one, in delta and in delta-of-delta form, with the
 * crossing inside a group of four and at its edge.  Every column crosses
 * (it starts 1 to n - 1 below 2^51 and steps by at least 1), and has 16
 * values or more: below about 9 the XOR and XPK columns can be as small as
 * the INT one and win the encoder's choice, so the INT decoder would not
 * be what the round trip tests. */
static void test_int_range(uint64_t *rng) {
    for (int iter = 0; iter < 64; iter++) {
        size_t n = 16 + (size_t)check_rand_below(rng, 140);
        double sign = iter % 2 ? -1.0 : 1.0;
        double at = (double)(1ull << 51) - 1.0 - (double)check_rand_below(rng, (n < 40 ? n : 40) - 1);
        bool noisy = (iter / 2) % 2;
        for (size_t i = 0; i < n; i++) {
            g_ts[i] = 1700000000000 + (sm_ms_t)i * 15000;
            g_vs[i] = sign * at;
            at += noisy ? 1.0 + (double)check_rand_below(rng, 6) : 1.0;
        }
        CHECK(fabs(g_vs[0]) < (double)(1ull << 51) && fabs(g_vs[n - 1]) >= (double)(1ull << 51));
        check_roundtrip(g_ts, g_vs, n);
        chunk_info ci;
        sm_buf b = SM_BUF_INIT;
        CHECK_OK(chunk_encode(g_ts, g_vs, n, &b));
        CHECK_OK(chunk_info_read(b.p, b.len, &ci));
        CHECK_MSG(ci.val_enc == 1, "integers near 2^51: value encoding %u, want INT", ci.val_enc);
        sm_buf_fini(&b);
    }
    /* One value past 2^51 among small ones, at every lane of a group: the
     * range test must see each lane. */
    for (size_t spike = 1; spike < 14; spike++) {
        for (size_t i = 0; i < 16; i++) {
            g_ts[i] = 1700000000000 + (sm_ms_t)i * 15000;
            g_vs[i] = i == spike ? (double)(1ull << 51) + 3.0 : (double)(i % 3);
        }
        check_roundtrip(g_ts, g_vs, 16);
    }
}

/* The number of exceptions in the packed column of an INT value column
 * (docs/FORMAT.md), or -1 when the chunk has none or another encoding. */
static int int_exceptions(const sm_buf *b) {
    sm_rd r;
    sm_rd_init(&r, b->p, b->len);
    uint8_t enc, mode, w;
    uint64_t count, zmint, span, tlen, m0, d1, nexc;
    const uint8_t *skip;
    if (sm_rd_u8(&r, &enc) || sm_rd_uvarint(&r, &count) || sm_rd_uvarint(&r, &zmint) ||
        sm_rd_uvarint(&r, &span) || sm_rd_uvarint(&r, &tlen) || sm_rd_bytes(&r, tlen, &skip) || enc >> 4 != 1)
        return -1;
    if (sm_rd_u8(&r, &mode) || sm_rd_uvarint(&r, &m0) || ((mode & 0x80) && sm_rd_uvarint(&r, &d1)) ||
        sm_rd_u8(&r, &w) || !(w & 0x80) || sm_rd_uvarint(&r, &nexc))
        return -1;
    return (int)nexc;
}

/* Counters with a few large jumps keep them as exceptions of a narrow
 * column.  The decoder keeps up to 32 of them from validating the list and
 * parses longer lists again while reading: both sides of that, with the
 * jumps in one 256-value block and across blocks.  The ordinary steps are
 * 1..4, so about a quarter of the ordinary values need the column's top
 * bit.  With steps of 1..3 that share is about 1 in 9, and on some seeds
 * (10 to 12 of 200 values) a column one bit narrower, with those values as
 * exceptions too, was the smaller one: packed_plan rightly chose it, and
 * the count was not the jumps'. */
static void test_exceptions(uint64_t *rng) {
    const size_t njumps[] = {1, 31, 32, 33, 60};
    for (size_t t = 0; t < sizeof njumps / sizeof *njumps; t++) {
        for (int iter = 0; iter < 6; iter++) {
            size_t n = iter % 2 ? 600 : 200;
            double v = 1000;
            for (size_t i = 0; i < n; i++) {
                g_ts[i] = 1700000000000 + (sm_ms_t)i * 15000;
                v += (double)(1 + check_rand_below(rng, 4));
                if (i % (n / njumps[t]) == 1 && i / (n / njumps[t]) < njumps[t]) v += 1e6 + (double)i;
                g_vs[i] = v;
            }
            check_roundtrip(g_ts, g_vs, n);
            sm_buf b = SM_BUF_INIT;
            CHECK_OK(chunk_encode(g_ts, g_vs, n, &b));
            int got = int_exceptions(&b);
            CHECK_MSG(got == (int)njumps[t], "%zu jumps: %d exceptions", njumps[t], got);
            sm_buf_fini(&b);
        }
    }
}

static void test_refusals(void) {
    chunk_enc *e = chunk_enc_new();
    CHECK_OK(chunk_enc_append(e, 100, 1.0));
    CHECK_OK(chunk_enc_append(e, 200, 2.0));
    CHECK_EQ_INT(chunk_enc_append(e, 200, 3.0), SM_EINVAL); /* equal timestamp */
    CHECK_EQ_INT(chunk_enc_append(e, 150, 3.0), SM_EINVAL); /* older */
    CHECK_OK(chunk_enc_append(e, 300, 3.0));
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(chunk_enc_finish(e, &b));
    size_t n = 0;
    CHECK_OK(chunk_decode(b.p, b.len, g_dts, g_dvs, MAXN, &n));
    CHECK(n == 3 && g_dts[2] == 300 && g_dvs[2] == 3.0);
    CHECK_EQ_INT(chunk_decode(b.p, b.len, g_dts, g_dvs, 2, &n), SM_EINVAL);

    /* Failed allocation leaves the encoder as it was. */
    uint64_t rng = 7;
    for (int round = 0; round < 4; round++) {
        chunk_enc_free(e); /* fresh buffers, so appends must grow them */
        e = chunk_enc_new();
        int failures = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t before = chunk_enc_count(e);
            if (check_rand_below(&rng, 3) == 0) {
                sm_alloc_fail_after(0);
                int rc = chunk_enc_append(e, 1000 + i, (double)i * 1.25);
                sm_alloc_fail_reset();
                if (rc == SM_ENOMEM) {
                    failures++;
                    CHECK(chunk_enc_count(e) == before);
                } else {
                    CHECK_OK(rc);
                    continue;
                }
            }
            CHECK_OK(chunk_enc_append(e, 1000 + i, (double)i * 1.25));
        }
        CHECK(failures > 0);
        sm_buf_clear(&b);
        CHECK_OK(chunk_enc_finish(e, &b));
        CHECK_OK(chunk_decode(b.p, b.len, g_dts, g_dvs, MAXN, &n));
        CHECK(n == 2000);
        bool ok = true;
        for (size_t i = 0; i < n; i++) ok = ok && g_dts[i] == 1000 + (sm_ms_t)i && g_dvs[i] == i * 1.25;
        CHECK(ok);
    }
    sm_buf_fini(&b);

    /* The sample limit. */
    chunk_enc_reset(e);
    for (uint32_t i = 0; i < CHUNK_MAX_SAMPLES; i++) {
        if (chunk_enc_append(e, i, 1.0) != 0) {
            CHECK_MSG(0, "append %u failed", i);
            break;
        }
    }
    CHECK_EQ_INT(chunk_enc_append(e, CHUNK_MAX_SAMPLES + 1, 1.0), SM_ELIMIT);
    chunk_enc_free(e);

    sm_ms_t t[2] = {5, 5};
    double v[2] = {1, 2};
    sm_buf b2 = SM_BUF_INIT;
    CHECK_EQ_INT(chunk_encode(t, v, 2, &b2), SM_EINVAL);
    CHECK_EQ_INT(chunk_encode(t, v, 0, &b2), SM_EINVAL);
    CHECK(b2.len == 0);
    sm_buf_fini(&b2);
}

/* Damage valid chunks; decoding must fail or give strictly increasing
 * times inside the header's range, never read out of bounds (ASan). */
static void test_damage(uint64_t *rng) {
    sm_buf b = SM_BUF_INIT;
    int corrupt = 0, total = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + (size_t)check_rand_below(rng, 300);
        n = (size_t)gen_times(rng, g_ts, n);
        if (n == 0) continue;
        gen_values(rng, g_vs, n);
        sm_buf_clear(&b);
        if (iter % 2) {
            CHECK_OK(chunk_encode(g_ts, g_vs, n, &b));
        } else { /* the streaming form (time encoding STREAM) */
            chunk_enc *e = chunk_enc_new();
            for (size_t i = 0; i < n; i++) CHECK_OK(chunk_enc_append(e, g_ts[i], g_vs[i]));
            CHECK_OK(chunk_enc_snapshot(e, &b));
            chunk_enc_free(e);
        }
        /* Copy into an exactly sized heap block so ASan sees overreads. */
        size_t len = b.len;
        int how = (int)check_rand_below(rng, 3);
        if (how == 0) len = (size_t)check_rand_below(rng, len); /* truncate */
        uint8_t *p = sm_malloc(len ? len : 1);
        memcpy(p, b.p, len);
        if (how >= 1 && len) {
            int flips = 1 + (int)check_rand_below(rng, 3);
            for (int f = 0; f < flips; f++) p[check_rand_below(rng, len)] ^= (uint8_t)(1u << check_rand_below(rng, 8));
        }
        size_t got = 0;
        int rc = chunk_decode(p, len, g_dts, g_dvs, MAXN, &got);
        total++;
        if (rc != 0) {
            CHECK_MSG(rc == SM_ECORRUPT || rc == SM_EINVAL, "rc %d", rc);
            corrupt++;
        } else {
            chunk_info ci;
            CHECK_OK(chunk_info_read(p, len, &ci));
            bool ok = got == ci.count && g_dts[0] == ci.mint && g_dts[got - 1] == ci.maxt;
            for (size_t i = 1; i < got; i++) ok = ok && g_dts[i] > g_dts[i - 1];
            CHECK(ok);
        }
        sm_free(p);
    }
    CHECK_MSG(corrupt > total / 3, "only %d of %d damaged chunks were refused", corrupt, total);
    sm_buf_fini(&b);
}

/* Compression on typical shapes: a regular constant series costs almost
 * nothing, a jittered 2-decimal random walk under Gorilla's 1.37 B/sample. */
static void test_sizes(uint64_t *rng) {
    sm_buf b = SM_BUF_INIT;
    for (size_t i = 0; i < 120; i++) {
        g_ts[i] = 1700000000000 + (sm_ms_t)i * 15000;
        g_vs[i] = 1.0;
    }
    CHECK_OK(chunk_encode(g_ts, g_vs, 120, &b));
    CHECK_MSG(b.len <= 24, "regular constant chunk is %zu bytes", b.len);
    int level = 1000;
    for (size_t i = 0; i < 120; i++) {
        g_ts[i] = 1700000000000 + (sm_ms_t)i * 15000 + (sm_ms_t)check_rand_below(rng, 5);
        level += (int)check_rand_below(rng, 7) - 3;
        g_vs[i] = (double)level / 100.0;
    }
    sm_buf_clear(&b);
    CHECK_OK(chunk_encode(g_ts, g_vs, 120, &b));
    CHECK_MSG(b.len <= 137 * 120 / 100, "jittered 2-decimal random-walk gauge chunk is %zu bytes", b.len);
    /* A regular grid whose last sample is early: the times read back, and
     * with jitter on top the column still follows the true interval (the
     * encoder tries span / (n - 1) rounded up, not only down). */
    for (size_t i = 0; i < 120; i++) g_ts[i] = 1700000000000 + (sm_ms_t)i * 15000, g_vs[i] = (double)i;
    g_ts[119] -= 1;
    check_roundtrip(g_ts, g_vs, 120);
    for (size_t i = 1; i < 119; i++) g_ts[i] += (sm_ms_t)check_rand_below(rng, 5) - 2;
    g_ts[119] = 1700000000000 + 119 * 15000 - 2;
    check_roundtrip(g_ts, g_vs, 120);
    sm_buf_clear(&b);
    CHECK_OK(chunk_encode(g_ts, g_vs, 120, &b));
    chunk_info gi;
    CHECK_OK(chunk_info_read(b.p, b.len, &gi));
    CHECK_MSG(gi.ts_enc == 1, "jittered grid with an early last sample: time encoding %u, want GRID", gi.ts_enc);
    /* Noise in every mantissa bit: the packed XOR column (XPK), smaller than
     * Gorilla's XOR stream of the same values, and exact. */
    chunk_enc *e = chunk_enc_new();
    for (size_t i = 0; i < 120; i++) {
        g_ts[i] = 1700000000000 + (sm_ms_t)i * 60000;
        g_vs[i] = 100.0 + (double)(check_rand(rng) >> 11) / 9007199254740992.0;
        CHECK_OK(chunk_enc_append(e, g_ts[i], g_vs[i]));
    }
    sm_buf_clear(&b);
    CHECK_OK(chunk_encode(g_ts, g_vs, 120, &b));
    chunk_info ci;
    CHECK_OK(chunk_info_read(b.p, b.len, &ci));
    CHECK_MSG(ci.val_enc == 3, "noise floats got value encoding %u, want XPK (3)", ci.val_enc);
    CHECK_MSG(b.len < chunk_enc_stream_bytes(e), "XPK chunk %zu bytes, Gorilla stream %zu", b.len,
              chunk_enc_stream_bytes(e));
    check_roundtrip(g_ts, g_vs, 120);
    chunk_enc_free(e);
    sm_buf_fini(&b);
}

/* Shared time columns: a reference chunk expands back into the original,
 * byte for byte; bad references are refused; chunk_decode refuses the
 * reference form itself. */
static void test_time_refs(uint64_t *rng) {
    sm_arena *a = sm_arena_new(0, 0);
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 2 + (size_t)check_rand_below(rng, 300);
        n = (size_t)gen_times(rng, g_ts, n);
        if (n < 2) continue;
        gen_values(rng, g_vs, n);
        sm_buf orig = SM_BUF_INIT, file = SM_BUF_INIT, ref = SM_BUF_INIT;
        CHECK_OK(chunk_encode(g_ts, g_vs, n, &orig));
        size_t off, tlen;
        int rc = chunk_time_column(orig.p, orig.len, &off, &tlen);
        CHECK(rc == 0 || rc == 1);
        if (rc) {
            sm_buf_fini(&orig);
            continue;
        }
        /* The "file": some bytes, then the original chunk. */
        size_t pad = (size_t)check_rand_below(rng, 300);
        for (size_t i = 0; i < pad; i++) CHECK_OK(sm_buf_put_u8(&file, (uint8_t)check_rand(rng)));
        CHECK_OK(sm_buf_append(&file, orig.p, orig.len));
        CHECK_OK(chunk_ref_encode(orig.p, orig.len, pad + off, &ref));
        CHECK(chunk_is_ref(ref.p, ref.len) && !chunk_is_ref(orig.p, orig.len));
        size_t got;
        CHECK_EQ_INT(chunk_decode(ref.p, ref.len, g_dts, g_dvs, MAXN, &got), SM_ECORRUPT);
        const uint8_t *x;
        uint32_t xlen;
        CHECK_OK(chunk_ref_expand(file.p, file.len, ref.p, ref.len, a, &x, &xlen));
        CHECK(xlen == orig.len && memcmp(x, orig.p, orig.len) == 0);
        /* Without the copy: the column found in place decodes the reference
         * chunk to the original samples, and expands to the same bytes. */
        const uint8_t *col;
        uint32_t clen;
        CHECK_OK(chunk_ref_column(file.p, file.len, ref.p, ref.len, &col, &clen));
        CHECK(col == file.p + pad + off && clen == tlen);
        got = 0;
        CHECK_OK(chunk_decode_ref(ref.p, ref.len, col, clen, g_dts, g_dvs, MAXN, &got));
        CHECK(got == n && memcmp(g_dts, g_ts, n * sizeof *g_ts) == 0 && same_bits(g_dvs, g_vs, n));
        CHECK_OK(chunk_decode_ref(orig.p, orig.len, NULL, 0, g_dts, g_dvs, MAXN, &got)); /* plain */
        CHECK_EQ_INT(chunk_decode_ref(ref.p, ref.len, col, clen - 1, g_dts, g_dvs, MAXN, &got), SM_ECORRUPT);
        CHECK_EQ_INT(chunk_decode_ref(orig.p, orig.len, col, clen, g_dts, g_dvs, MAXN, &got), SM_ECORRUPT);
        sm_buf ex = SM_BUF_INIT;
        CHECK_OK(chunk_ref_expand_to(ref.p, ref.len, col, clen, &ex));
        CHECK(ex.len == orig.len && memcmp(ex.p, orig.p, orig.len) == 0);
        sm_buf_fini(&ex);
        chunk_info ri;
        CHECK_OK(chunk_info_read(ref.p, ref.len, &ri));
        CHECK(ri.count == n && ri.mint == g_ts[0] && ri.maxt == g_ts[n - 1] && ri.ts_enc == 4);
        /* A reference past the end of the file, and a truncated one. */
        sm_buf bad = SM_BUF_INIT;
        CHECK_OK(chunk_ref_encode(orig.p, orig.len, file.len - tlen + 1, &bad));
        CHECK_EQ_INT(chunk_ref_expand(file.p, file.len, bad.p, bad.len, a, &x, &xlen), SM_ECORRUPT);
        CHECK_EQ_INT(chunk_ref_column(file.p, file.len, bad.p, bad.len, &col, &clen), SM_ECORRUPT);
        /* Cut short: refused when expanding (the header or the reference)
         * or when decoding what it expanded to (the value column). */
        rc = chunk_ref_expand(file.p, file.len, ref.p, ref.len / 2, a, &x, &xlen);
        if (rc == 0) rc = chunk_decode(x, xlen, g_dts, g_dvs, MAXN, &got);
        CHECK_EQ_INT(rc, SM_ECORRUPT);
        sm_buf_fini(&bad);
        sm_buf_fini(&orig);
        sm_buf_fini(&file);
        sm_buf_fini(&ref);
        sm_arena_reset(a);
    }
    sm_arena_free(a);
}

int main(void) {
    uint64_t rng = check_seed();
    test_specials();
    test_refusals();
    test_random(&rng);
    test_damage(&rng);
    test_sizes(&rng);
    test_time_refs(&rng);
    test_grid_edges(&rng);
    test_int_range(&rng);
    test_exceptions(&rng);
    return check_done();
}
