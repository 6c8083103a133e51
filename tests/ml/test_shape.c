/* SPDX-License-Identifier: Apache-2.0
 *
 * test_shape.c - ml/shape, shape novelty: the scores against a plain
 * reference written from shape.h's description (whole arrays, a sorted
 * copy for the median, every earlier window searched), the bounded history
 * against an unbounded one, cold start, a flat series, a repeating series
 * scored 0 until its shape changes, NaN and infinities skipped, extreme
 * values kept finite, the codec continuing bit for bit and refusing bytes
 * no state could hold.  Seeded (SEISMO_TEST_SEED).
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ml/ml_int.h"
#include "ml/shape.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"

static uint64_t rng;

static double unif(void) { return (double)(check_rand(&rng) >> 11) * 0x1.0p-53; }

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* The reference: shape.h's steps over y[0..n) at once, every level kept
 * (the median clamp never binds for values inside the first rows' range
 * times -2..3, which the inputs here keep to). */
static void reference(const double *y, size_t n, double *out) {
    size_t nl = 0;
    int *lev = malloc((n / ML_SHAPE_BLOCK + 1) * sizeof *lev), *raw = malloc((n / ML_SHAPE_BLOCK + 1) * sizeof *raw);
    int *sorted = malloc((n / ML_SHAPE_BLOCK + 1) * sizeof *sorted);
    double lo = 0, hi = 0, ma = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0.0;
        if (i < ML_SHAPE_RANGE_ROWS) {
            lo = i == 0 || y[i] < lo ? y[i] : lo;
            hi = i == 0 || y[i] > hi ? y[i] : hi;
        }
        if (i % ML_SHAPE_BLOCK != ML_SHAPE_BLOCK - 1) continue;
        const double *b = y + i + 1 - ML_SHAPE_BLOCK;
        double mean = 0, mx = b[0], mn = b[0];
        for (int j = 0; j < ML_SHAPE_BLOCK; j++) {
            mean += b[j] / ML_SHAPE_BLOCK;
            mx = b[j] > mx ? b[j] : mx;
            mn = b[j] < mn ? b[j] : mn;
        }
        ma = nl == 0 ? mean : 0.5 * ma + 0.5 * mean;
        double ds = fabs(mx - ma) < fabs(mn - ma) ? mn : mx;
        if (fabs(ds - mean) < 0.1 * fabs(mean)) ds = mean;
        double span = hi > lo ? hi - lo : lo != 0 ? fabs(lo) : 1.0;
        raw[nl] = (int)nearbyint((ds - lo) / span * ML_SHAPE_LEVELS);
        memcpy(sorted, raw, (nl + 1) * sizeof *raw);
        qsort(sorted, nl + 1, sizeof *sorted, cmp_int);
        int med = sorted[(nl + 1) / 2];
        lev[nl] = abs(raw[nl] - med) < ML_SHAPE_SNAP ? med : raw[nl];
        nl++;
        if (i < ML_SHAPE_RANGE_ROWS || nl < ML_SHAPE_MIN_HISTORY) continue;
        double best = INFINITY;
        const int *cur = lev + nl - ML_SHAPE_WINDOW;
        for (size_t a = 0; a + 2 * ML_SHAPE_WINDOW <= nl; a++) {
            double d = 0;
            for (int w = 0; w < ML_SHAPE_WINDOW; w++) d += (double)(lev[a + w] - cur[w]) * (lev[a + w] - cur[w]);
            best = d < best ? d : best;
        }
        out[i] = fmin(1.0 - exp2(-sqrt(best) / ML_SHAPE_LEVELS / ML_SHAPE_D0), ML_SHAPE_MAX);
    }
    free(lev);
    free(raw);
    free(sorted);
}

/* A noisy wave of period 96 rows inside [0, 100], with a spike every 700
 * rows when spiky. */
static double wave_(size_t i, bool spiky) {
    double v = 50 + 30 * sin(6.283185307179586 * (double)i / 96.0) + 2 * (unif() - 0.5);
    return spiky && i % 700 == 350 ? 95 : v;
}

static double wave(size_t i) { return wave_(i, true); }

static void run(ml_shape *s, const double *y, size_t n, double *out) {
    for (size_t i = 0; i < n; i++) {
        out[i] = ml_shape_next(s, y[i]);
        CHECK(out[i] >= 0 && out[i] <= ML_SHAPE_MAX);
    }
}

static void test_reference_and_history(void) {
    size_t n = 6000;
    double *y = sm_malloc(n * sizeof *y), *want = sm_malloc(n * sizeof *want), *got = sm_malloc(n * sizeof *got);
    double *small = sm_malloc(n * sizeof *small);
    for (size_t i = 0; i < n; i++) y[i] = wave(i);
    for (size_t i = 4000; i < 4100; i++) y[i] = 50 + 30 * sin(6.283185307179586 * (double)i / 24.0); /* faster */
    reference(y, n, want);
    ml_shape s;
    CHECK_OK(ml_shape_init(&s, n / ML_SHAPE_BLOCK, NULL)); /* holds every level */
    run(&s, y, n, got);
    int differ = 0;
    for (size_t i = 0; i < n; i++) differ += fabs(got[i] - want[i]) > 1e-12;
    CHECK_EQ_INT(differ, 0);
    ml_shape_fini(&s);

    /* cold start: nothing before the range rows, and only where a block ends */
    int early = 0, off_block = 0;
    for (size_t i = 0; i < n; i++) {
        early += i < ML_SHAPE_RANGE_ROWS && got[i] != 0;
        off_block += i % ML_SHAPE_BLOCK != ML_SHAPE_BLOCK - 1 && got[i] != 0;
    }
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(off_block, 0);
    /* without the spikes: the faster stretch is new, the waves after it are not */
    for (size_t i = 0; i < n; i++) y[i] = i >= 4000 && i < 4100 ? y[i] : wave_(i, false);
    CHECK_OK(ml_shape_init(&s, n / ML_SHAPE_BLOCK, NULL));
    run(&s, y, n, got);
    ml_shape_fini(&s);
    double in = 0, before = 0, after = 0;
    for (size_t i = 1000; i < n; i++) {
        double *m = i < 4000 ? &before : i < 4120 ? &in : i > 4300 ? &after : NULL;
        if (m && got[i] > *m) *m = got[i];
    }
    CHECK_MSG(in >= ML_SHAPE_MAX, "new shape scored %g", in); /* capped */
    CHECK_MSG(before < 0.6 && after < 0.6, "new %g, before %g, after %g", in, before, after);

    /* the smallest history: a different (nearer-past) search, same cold start */
    CHECK_OK(ml_shape_init(&s, ML_SHAPE_MIN_HISTORY, NULL));
    run(&s, y, n, small);
    double top = 0;
    for (size_t i = 0; i < n; i++) top = small[i] > top ? small[i] : top;
    CHECK(top > 0);
    CHECK_EQ_INT(ml_shape_len(&s), ML_SHAPE_MIN_HISTORY);
    ml_shape_fini(&s);
    sm_free(y);
    sm_free(want);
    sm_free(got);
    sm_free(small);
}

static void test_flat_gaps_extremes(void) {
    ml_shape s, t;
    CHECK_OK(ml_shape_init(&s, 64, NULL));
    int nonzero = 0;
    for (int i = 0; i < 2000; i++) nonzero += ml_shape_next(&s, 7.0) != 0;
    CHECK_EQ_INT(nonzero, 0); /* every window equals the earlier ones */
    ml_shape_fini(&s);

    /* NaN and infinities are skipped: the finite values score as without them */
    CHECK_OK(ml_shape_init(&s, 256, NULL));
    CHECK_OK(ml_shape_init(&t, 256, NULL));
    int differ = 0, gaps = 0;
    for (size_t i = 0; i < 3000; i++) {
        double v = wave(i);
        if (i % 11 == 0) {
            double g = i % 3 ? NAN : (i % 2 ? INFINITY : -INFINITY);
            gaps += ml_shape_next(&t, g) != 0;
        }
        differ += ml_shape_next(&s, v) != ml_shape_next(&t, v);
    }
    CHECK_EQ_INT(gaps, 0);
    CHECK_EQ_INT(differ, 0);
    ml_shape_fini(&s);
    ml_shape_fini(&t);

    /* values of both signs near DBL_MAX: scores in range, state finite */
    CHECK_OK(ml_shape_init(&s, 32, NULL));
    int bad = 0;
    for (int i = 0; i < 1500; i++) {
        double r = ml_shape_next(&s, (i % 3 ? 1 : -1) * 1.7e308 * unif());
        bad += !(r >= 0 && r <= ML_SHAPE_MAX);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(isfinite(s.ma) && isfinite(s.bsum) && isfinite(s.lo) && isfinite(s.hi));
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(ml_shape_encode(&s, &b));
    CHECK_OK(ml_shape_init(&t, 32, NULL));
    sm_rd r;
    sm_rd_init(&r, b.p, b.len);
    CHECK_OK(ml_shape_decode(&t, &r));
    ml_shape_fini(&t);
    sm_buf_fini(&b);
    ml_shape_fini(&s);

    CHECK_EQ_INT(ml_shape_init(&s, ML_SHAPE_MIN_HISTORY - 1, NULL), SM_EINVAL);
    CHECK_EQ_INT(ml_shape_init(&s, ML_SHAPE_MAX_HISTORY + 1, NULL), SM_EINVAL);
}

/* Decode a copy of b with n bytes at off replaced (history h). */
static int decode_patched(const sm_buf *b, uint32_t h, size_t off, const void *bytes, size_t n) {
    uint8_t *copy = sm_malloc(b->len);
    memcpy(copy, b->p, b->len);
    memcpy(copy + off, bytes, n);
    ml_shape t;
    CHECK_OK(ml_shape_init(&t, h, NULL));
    sm_rd r;
    sm_rd_init(&r, copy, b->len);
    int rc = ml_shape_decode(&t, &r);
    ml_shape_fini(&t);
    sm_free(copy);
    return rc;
}

static void test_codec(void) {
    uint32_t h = 100;
    size_t n = 5000, cut = 2345; /* the ring has wrapped by cut, and cut is inside a block */
    ml_shape a, b;
    CHECK_OK(ml_shape_init(&a, h, NULL));
    for (size_t i = 0; i < cut; i++) ml_shape_next(&a, wave(i));
    sm_buf buf = SM_BUF_INIT;
    CHECK_OK(ml_shape_encode(&a, &buf));
    CHECK_EQ_U64(buf.len, ml_shape_encoded_len(h));
    CHECK_OK(ml_shape_init(&b, h, NULL));
    sm_rd r;
    sm_rd_init(&r, buf.p, buf.len);
    CHECK_OK(ml_shape_decode(&b, &r));
    CHECK_EQ_U64(sm_rd_left(&r), 0);
    int differ = 0, scored = 0;
    for (size_t i = cut; i < n; i++) {
        double v = wave(i), x = ml_shape_next(&a, v), y = ml_shape_next(&b, v);
        differ += x != y;
        scored += x > 0;
    }
    CHECK_EQ_INT(differ, 0);
    CHECK(scored > 0);
    ml_shape_fini(&b);

    /* truncated, and a history that does not match */
    CHECK_OK(ml_shape_init(&b, h, NULL));
    sm_rd_init(&r, buf.p, buf.len - 1);
    CHECK_EQ_INT(ml_shape_decode(&b, &r), SM_ECORRUPT);
    ml_shape_fini(&b);
    CHECK_OK(ml_shape_init(&b, h + 1, NULL));
    sm_rd_init(&r, buf.p, buf.len);
    CHECK_EQ_INT(ml_shape_decode(&b, &r), SM_ECORRUPT);
    ml_shape_fini(&b);

    /* fields no state holds: layout rows le64, pos, len, six f64, bins, ring */
    uint8_t le[8];
    sm_store_le32(le, h);
    CHECK_EQ_INT(decode_patched(&buf, h, 8, le, 4), SM_ECORRUPT); /* pos == capacity */
    sm_store_le32(le, h - 1);
    CHECK_EQ_INT(decode_patched(&buf, h, 12, le, 4), SM_ECORRUPT); /* len below min(levels, cap) */
    sm_store_le64(le, 40);
    CHECK_EQ_INT(decode_patched(&buf, h, 0, le, 8), SM_ECORRUPT); /* 10 levels, ring says 100 */
    const double bad[] = {NAN, INFINITY};
    for (int f = 0; f < 6; f++)
        for (int i = 0; i < 2; i++) {
            sm_store_le64(le, sm_f64_bits(bad[i]));
            CHECK_EQ_INT(decode_patched(&buf, h, 16 + 8 * (size_t)f, le, 8), SM_ECORRUPT);
        }
    sm_store_le64(le, sm_f64_bits(1e9)); /* lo above hi */
    CHECK_EQ_INT(decode_patched(&buf, h, 16 + 8 * 4, le, 8), SM_ECORRUPT);
    sm_store_le32(le, UINT32_MAX); /* more levels in the histogram than were made */
    CHECK_EQ_INT(decode_patched(&buf, h, 64, le, 4), SM_ECORRUPT);
    CHECK_OK(decode_patched(&buf, h, 0, buf.p, 8)); /* the patching itself changes nothing */
    sm_buf_fini(&buf);
    ml_shape_fini(&a);
}

int main(void) {
    rng = check_seed();
    test_reference_and_history();
    test_flat_gaps_extremes();
    test_codec();
    return check_done();
}
