/* SPDX-License-Identifier: Apache-2.0
 *
 * test_baseline.c - ml/baseline: seasonality detection on synthetic daily,
 * weekly and plain series, accuracy, robustness to injected outliers, a
 * lasting level shift accepted after a while, flat series, NaN / stale
 * markers / gaps, the many-series GEMM path against one-series fits, the
 * state codec, and the same bits whatever the threads.  Seeded (SEISMO_TEST_SEED).
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "ml/baseline.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_types.h"

#define STEP_MS (5 * 60 * 1000LL)
#define T0 1700006400000LL /* a UTC midnight */

static uint64_t rng;

static double gauss(void) {
    double u = (check_rand(&rng) >> 11) * 0x1.0p-53 + 1e-300, v = (check_rand(&rng) >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static double daily(sm_ms_t t) { return 10.0 * sin(6.283185307179586 * (double)(t % ML_DAY_MS) / ML_DAY_MS); }
static double weekly(sm_ms_t t) {
    int64_t day = ((t / ML_DAY_MS) % 7 + 7) % 7;
    return day >= 5 ? -8.0 : 3.0; /* two "weekend" days lower */
}

static sm_ms_t *times(size_t n) {
    sm_ms_t *t = sm_malloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++) t[i] = T0 + (sm_ms_t)i * STEP_MS;
    return t;
}

static double rmse_vs(const ml_baseline_t *b, size_t j, const sm_ms_t *t, size_t n, double (*truth)(sm_ms_t, size_t),
                      size_t from) {
    double s = 0;
    for (size_t i = from; i < n; i++) {
        double e;
        ml_baseline_predict(b, j, t[i], &e, NULL, NULL);
        double d = e - truth(t[i], i);
        s += d * d;
    }
    return sqrt(s / (double)(n - from));
}

static double truth_daily(sm_ms_t t, size_t i) { return 100.0 + daily(t); }
static double truth_weekly(sm_ms_t t, size_t i) { return 100.0 + daily(t) + weekly(t); }
static double truth_flat(sm_ms_t t, size_t i) { return 100.0; }

static void test_detection(void) {
    size_t n = 21 * 288; /* three weeks */
    sm_ms_t *t = times(n);
    double *y = sm_malloc(3 * n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        y[i] = truth_daily(t[i], i) + gauss();
        y[n + i] = truth_weekly(t[i], i) + gauss();
        y[2 * n + i] = truth_flat(t[i], i) + 3.0 * gauss();
    }
    ml_baseline_opts o;
    ml_baseline_opts_default(&o);
    o.halflife_ms = 0;
    ml_baseline_t *b = NULL;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(ml_baseline_fit(t, n, y, 3, n, &o, &b, &err), &err);
    if (b) {
        CHECK_EQ_INT(ml_baseline_seasons(b, 0), ML_SEASON_DAILY);
        CHECK_EQ_INT(ml_baseline_seasons(b, 1), ML_SEASON_DAILY | ML_SEASON_WEEKLY);
        CHECK_EQ_INT(ml_baseline_seasons(b, 2), 0);
        double e0 = rmse_vs(b, 0, t, n, truth_daily, 0);
        CHECK_MSG(e0 < 0.3, "daily baseline rmse %.3f", e0);
        /* the weekly square wave is only approximated by 3 harmonics */
        double e1 = rmse_vs(b, 1, t, n, truth_weekly, 0);
        CHECK_MSG(e1 < 2.5, "weekly baseline rmse %.3f", e1);
        double e2 = rmse_vs(b, 2, t, n, truth_flat, 0);
        CHECK_MSG(e2 < 0.5, "plain baseline rmse %.3f", e2);
        CHECK_MSG(fabs(ml_baseline_scale(b, 0) - 1.0) < 0.15, "scale %.3f", ml_baseline_scale(b, 0));
        CHECK_MSG(fabs(ml_baseline_scale(b, 2) - 3.0) < 0.4, "scale %.3f", ml_baseline_scale(b, 2));
        double e, lo, hi;
        ml_baseline_predict(b, 0, t[n - 1] + STEP_MS, &e, &lo, &hi);
        CHECK(lo < e && e < hi);
        CHECK_MSG(fabs((hi - e) - o.z * ml_baseline_scale(b, 0)) < 1e-9, "band half-width");
    }
    ml_baseline_free(b);
    /* two days only: weekly is not even a candidate */
    CHECK_OK(ml_baseline_fit(t, 2 * 288 + 10, y + n, 1, n, &o, &b, NULL));
    if (b) CHECK_EQ_INT(ml_baseline_seasons(b, 0) & ML_SEASON_WEEKLY, 0);
    ml_baseline_free(b);
    sm_free(t);
    sm_free(y);
}

static void test_robust(void) {
    size_t n = 14 * 288;
    sm_ms_t *t = times(n);
    double *y = sm_malloc(2 * n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = y[n + i] = truth_daily(t[i], i) + gauss();
    /* 3% of points hit by huge outliers, all upwards, in the second copy */
    for (size_t i = 0; i < n; i++)
        if (check_rand_below(&rng, 100) < 3) y[n + i] += 200.0 + 100.0 * check_rand_below(&rng, 4);
    ml_baseline_opts o;
    ml_baseline_opts_default(&o);
    ml_baseline_t *b = NULL;
    CHECK_OK(ml_baseline_fit(t, n, y, 2, n, &o, &b, NULL));
    if (b) {
        double clean = rmse_vs(b, 0, t, n, truth_daily, 0), dirty = rmse_vs(b, 1, t, n, truth_daily, 0);
        CHECK_MSG(dirty < 0.6, "outliers bent the baseline: rmse %.3f (clean %.3f)", dirty, clean);
        CHECK_MSG(ml_baseline_scale(b, 1) < 1.5, "outliers inflated the scale to %.3f", ml_baseline_scale(b, 1));
        CHECK_EQ_INT(ml_baseline_seasons(b, 1), ML_SEASON_DAILY);
        /* the plain least-squares fit (no robust rounds) is visibly bent */
        ml_baseline_opts ls = o;
        ls.iterations = 0;
        ml_baseline_t *b2 = NULL;
        CHECK_OK(ml_baseline_fit(t, n, y + n, 1, n, &ls, &b2, NULL));
        if (b2) CHECK_MSG(rmse_vs(b2, 0, t, n, truth_daily, 0) > 3 * dirty, "non-robust fit not worse");
        ml_baseline_free(b2);
    }
    ml_baseline_free(b);
    sm_free(t);
    sm_free(y);
}

static size_t shift_at;
static double truth_shift(sm_ms_t t, size_t i) { return truth_daily(t, i) + (i >= shift_at ? 30.0 : 0.0); }

static void test_level_shift(void) {
    size_t n = 14 * 288;
    sm_ms_t *t = times(n);
    double *y = sm_malloc(n * sizeof *y);
    shift_at = 10 * 288; /* +30 (30 scales) for the last four days */
    for (size_t i = 0; i < n; i++) y[i] = truth_shift(t[i], i) + gauss();
    ml_baseline_opts o;
    ml_baseline_opts_default(&o);
    o.halflife_ms = 1.0 * ML_DAY_MS;
    /* a trend term reads a recent step as a slope and overshoots (by about
     * 3 here); level shifts are the level-only model's job, which is what
     * the streaming scorer runs */
    o.trend = false;
    ml_baseline_t *b = NULL;
    CHECK_OK(ml_baseline_fit(t, n, y, 1, n, &o, &b, NULL));
    if (b) {
        double e;
        ml_baseline_predict(b, 0, t[n - 1] + STEP_MS, &e, NULL, NULL);
        double want = truth_shift(t[n - 1] + STEP_MS, n);
        CHECK_MSG(fabs(e - want) < 2.0, "shift not accepted: expected %.2f, truth %.2f", e, want);
    }
    ml_baseline_free(b);
    /* only two hours after the shift: not accepted yet, the new points
     * stand out of the band */
    size_t m = shift_at + 24;
    CHECK_OK(ml_baseline_fit(t, m, y, 1, n, &o, &b, NULL));
    if (b) {
        double e, lo, hi;
        ml_baseline_predict(b, 0, t[m - 1], &e, &lo, &hi);
        CHECK_MSG(truth_shift(t[m - 1], m - 1) > hi, "a two-hour-old shift was already absorbed (%.2f <= %.2f)",
                  truth_shift(t[m - 1], m - 1), hi);
    }
    ml_baseline_free(b);
    sm_free(t);
    sm_free(y);
}

static void test_flat_nan_gaps(void) {
    size_t n = 4 * 288;
    sm_ms_t *t = times(n);
    double *y = sm_malloc(3 * n * sizeof *y);
    double stale;
    uint64_t bits = SM_STALE_NAN_BITS;
    memcpy(&stale, &bits, sizeof stale);
    /* timestamps with a gap too: the last day starts 6 hours late */
    for (size_t i = 3 * 288; i < n; i++) t[i] += 6 * 3600 * 1000LL;
    for (size_t i = 0; i < n; i++) {
        y[i] = 42.0; /* flat */
        y[n + i] = truth_daily(t[i], i) + 0.1 * gauss();
        y[2 * n + i] = NAN;
    }
    /* a day-long gap and stale markers in the second series */
    for (size_t i = 288; i < 2 * 288; i++) y[n + i] = NAN;
    for (size_t i = 3 * 288; i < 3 * 288 + 10; i++) y[n + i] = stale;
    ml_baseline_t *b = NULL;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(ml_baseline_fit(t, n, y, 3, n, NULL, &b, &err), &err);
    if (b) {
        double e, lo, hi;
        ml_baseline_predict(b, 0, t[n - 1], &e, &lo, &hi);
        CHECK_MSG(fabs(e - 42.0) < 1e-6, "flat expected %.9f", e);
        CHECK(ml_baseline_scale(b, 0) > 0 && ml_baseline_scale(b, 0) < 1e-6);
        CHECK(lo <= 42.0 && hi >= 42.0);
        CHECK_EQ_INT(ml_baseline_seasons(b, 0), 0);
        CHECK_EQ_INT(ml_baseline_count(b, 1), n - 288 - 10);
        ml_baseline_predict(b, 1, t[300], &e, NULL, NULL); /* inside the gap */
        CHECK_MSG(fabs(e - truth_daily(t[300], 300)) < 0.3, "gap prediction %.3f", e);
        CHECK_EQ_INT(ml_baseline_seasons(b, 1), ML_SEASON_DAILY);
        ml_baseline_predict(b, 2, t[0], &e, NULL, NULL);
        CHECK(isnan(e));
        CHECK_EQ_INT(ml_baseline_count(b, 2), 0);
        for (size_t j = 0; j < 2; j++) CHECK(isfinite(ml_baseline_scale(b, j)));
    }
    ml_baseline_free(b);
    /* cold start: one point, then two */
    CHECK_OK(ml_baseline_fit(t, 1, y + n, 1, n, NULL, &b, NULL));
    if (b) {
        double e;
        ml_baseline_predict(b, 0, t[0], &e, NULL, NULL);
        CHECK(fabs(e - y[n]) < 1e-6);
    }
    ml_baseline_free(b);
    /* bad arguments */
    sm_ms_t back[2] = {10, 5};
    CHECK_EQ_INT(ml_baseline_fit(back, 2, y, 1, 2, NULL, &b, NULL), SM_EINVAL);
    CHECK_EQ_INT(ml_baseline_fit(t, n, y, 1, n - 1, NULL, &b, NULL), SM_EINVAL);
    sm_free(t);
    sm_free(y);
}

/* The blocked many-series path equals fitting each series alone. */
static void test_many_equals_one(void) {
    size_t n = 3 * 288, m = 300; /* more than one block of series */
    sm_ms_t *t = times(n);
    double *y = sm_malloc(m * n * sizeof *y);
    for (size_t j = 0; j < m; j++)
        for (size_t i = 0; i < n; i++)
            y[j * n + i] = (double)j + (j % 3 ? daily(t[i]) : 0.0) + gauss() + (i % 97 == 0 ? 50.0 : 0.0);
    ml_baseline_t *all = NULL;
    CHECK_OK(ml_baseline_fit(t, n, y, m, n, NULL, &all, NULL));
    double worst = 0;
    int seasons_differ = 0;
    for (size_t j = 0; all && j < m; j += 37) {
        ml_baseline_t *one = NULL;
        CHECK_OK(ml_baseline_fit(t, n, y + j * n, 1, n, NULL, &one, NULL));
        if (!one) continue;
        for (size_t i = 0; i < n; i += 50) {
            double a, b;
            ml_baseline_predict(all, j, t[i], &a, NULL, NULL);
            ml_baseline_predict(one, 0, t[i], &b, NULL, NULL);
            if (fabs(a - b) > worst) worst = fabs(a - b);
        }
        seasons_differ += ml_baseline_seasons(all, j) != ml_baseline_seasons(one, 0);
        ml_baseline_free(one);
    }
    CHECK_MSG(worst < 1e-8, "many-series fit differs from one-series fit by %.3g", worst);
    CHECK_EQ_INT(seasons_differ, 0);
    ml_baseline_free(all);
    sm_free(t);
    sm_free(y);
}

static void test_codec(void) {
    size_t n = 15 * 288;
    sm_ms_t *t = times(n);
    double *y = sm_malloc(2 * n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        y[i] = truth_weekly(t[i], i) + gauss();
        y[n + i] = 5.0 + gauss();
    }
    ml_baseline_t *b = NULL, *d = NULL;
    CHECK_OK(ml_baseline_fit(t, n, y, 2, n, NULL, &b, NULL));
    uint8_t *buf = NULL;
    size_t len = 0;
    if (b) CHECK_OK(ml_baseline_encode(b, &buf, &len, NULL));
    if (buf) {
        CHECK_EQ_INT(buf[4], 1); /* version byte */
        CHECK_OK(ml_baseline_decode(buf, len, &d, NULL));
        for (size_t j = 0; d && j < 2; j++) {
            CHECK_EQ_INT(ml_baseline_seasons(d, j), ml_baseline_seasons(b, j));
            for (size_t i = 0; i < n; i += 111) {
                double a[3], c[3];
                ml_baseline_predict(b, j, t[i] + 777, &a[0], &a[1], &a[2]);
                ml_baseline_predict(d, j, t[i] + 777, &c[0], &c[1], &c[2]);
                CHECK(memcmp(a, c, sizeof a) == 0);
            }
        }
        ml_baseline_free(d);
        d = NULL;
        /* every truncation and every single-bit flip is refused */
        int accepted = 0;
        for (size_t cut = 0; cut < len; cut++) accepted += ml_baseline_decode(buf, cut, &d, NULL) == 0;
        for (size_t i = 0; i < len; i += 3) {
            buf[i] ^= 0x10;
            accepted += ml_baseline_decode(buf, len, &d, NULL) == 0;
            buf[i] ^= 0x10;
        }
        CHECK_EQ_INT(accepted, 0);
        CHECK(d == NULL);
    }
    sm_free(buf);
    ml_baseline_free(b);
    sm_free(t);
    sm_free(y);
}

/* A fit large enough to run on several threads gives the same bits twice,
 * and the same bits as fitting one block of its series alone (blocks are
 * independent, whichever thread takes them); gaps and outliers included so
 * the missing-value and correction paths run too. */
static void test_threads_same_bits(void) {
    size_t n = 3 * 288, m = 1300; /* n * m above the threaded size */
    sm_ms_t *t = times(n);
    double *y = sm_malloc(m * n * sizeof *y);
    for (size_t j = 0; j < m; j++)
        for (size_t i = 0; i < n; i++) {
            double v = (double)(j % 50) + (j % 3 ? daily(t[i]) : 0.0) + gauss() + (i % 89 == 0 ? 40.0 : 0.0);
            y[j * n + i] = j % 7 == 0 && i % 13 == 0 ? NAN : v;
        }
    ml_baseline_t *a = NULL, *b = NULL, *part = NULL;
    CHECK_OK(ml_baseline_fit(t, n, y, m, n, NULL, &a, NULL));
    CHECK_OK(ml_baseline_fit(t, n, y, m, n, NULL, &b, NULL));
    size_t j0 = 128, mp = 64; /* one whole block of the big fit */
    CHECK_OK(ml_baseline_fit(t, n, y + j0 * n, mp, n, NULL, &part, NULL));
    uint8_t *ba = NULL, *bb = NULL;
    size_t la = 0, lb = 0;
    if (a && b) {
        CHECK_OK(ml_baseline_encode(a, &ba, &la, NULL));
        CHECK_OK(ml_baseline_encode(b, &bb, &lb, NULL));
        CHECK(ba && bb && la == lb && memcmp(ba, bb, la) == 0);
    }
    int differ = 0;
    for (size_t j = 0; a && part && j < mp; j++) {
        differ += ml_baseline_seasons(a, j0 + j) != ml_baseline_seasons(part, j);
        double sa = ml_baseline_scale(a, j0 + j), sp = ml_baseline_scale(part, j);
        differ += memcmp(&sa, &sp, sizeof sa) != 0;
        for (size_t i = 0; i < n; i += 37) {
            double ea, ep;
            ml_baseline_predict(a, j0 + j, t[i], &ea, NULL, NULL);
            ml_baseline_predict(part, j, t[i], &ep, NULL, NULL);
            differ += memcmp(&ea, &ep, sizeof ea) != 0;
        }
    }
    CHECK_EQ_INT(differ, 0);
    sm_free(ba);
    sm_free(bb);
    ml_baseline_free(a);
    ml_baseline_free(b);
    ml_baseline_free(part);
    sm_free(t);
    sm_free(y);
}

int main(void) {
    rng = check_seed();
    test_detection();
    test_robust();
    test_level_shift();
    test_flat_nan_gaps();
    test_many_equals_one();
    test_codec();
    test_threads_same_bits();
    return check_done();
}
