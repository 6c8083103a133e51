/* SPDX-License-Identifier: Apache-2.0
 *
 * test_online.c - ml/online, the streaming scorer: no look-ahead (the
 * output of row i does not change when later rows change), determinism,
 * a spike scored high and quiet rows low, a lasting level shift alarmed
 * and then accepted, cold start, flat series, NaN and stale markers, the
 * multivariate driver, the state codec continuing bit for bit, and the
 * default forest (extended) next to a state that still holds the
 * standard forest of an older default, and the seasonal-naive mode (a
 * square daily wave predicted from its previous days: cold start, gaps,
 * the codec, corrupted seasonal fields refused), and shape novelty (a new
 * swing inside the band).
 * Seeded (SEISMO_TEST_SEED).
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "ml/online.h"
#include "ml/baseline.h"
#include "ml/features.h"
#include "ml/shape.h"
#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_types.h"

#define STEP_MS (5 * 60 * 1000LL)
#define T0 1700006400000LL

static uint64_t rng;

static double gauss(void) {
    double u = (check_rand(&rng) >> 11) * 0x1.0p-53 + 1e-300, v = (check_rand(&rng) >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static double season(size_t i) { return 50.0 + 10.0 * sin(6.283185307179586 * (double)(i % 288) / 288.0); }

typedef struct run {
    double *score, *expected, *upper, *combined, *residual;
    uint32_t *driver;
} run;

/* Step a fresh scorer over k series of n rows (y series-major). */
static int run_scorer(const ml_online_opts *o, const double *y, size_t n, run *r) {
    ml_online_t *s = NULL;
    sm_error err;
    sm_error_clear(&err);
    int rc = ml_online_new(o, &s, &err);
    CHECK_OK_ERR(rc, &err);
    if (rc) return rc;
    uint32_t k = o->series;
    double v[8], e[8], lo[8], hi[8];
    for (size_t i = 0; i < n && !rc; i++) {
        for (uint32_t j = 0; j < k; j++) v[j] = y[j * n + i];
        ml_online_point pt;
        rc = ml_online_step(s, T0 + (sm_ms_t)i * STEP_MS, v, e, lo, hi, &pt, &err);
        r->score[i] = pt.score;
        r->combined[i] = pt.combined;
        r->residual[i] = pt.residual_score;
        r->expected[i] = e[0];
        r->upper[i] = hi[0];
        if (r->driver) r->driver[i] = pt.driver_series;
        CHECK(pt.score >= 0 && pt.score <= 1);
    }
    CHECK_OK_ERR(rc, &err);
    ml_online_free(s);
    return rc;
}

static void run_alloc(run *r, size_t n) {
    r->score = sm_malloc(n * sizeof(double));
    r->expected = sm_malloc(n * sizeof(double));
    r->upper = sm_malloc(n * sizeof(double));
    r->combined = sm_malloc(n * sizeof(double));
    r->residual = sm_malloc(n * sizeof(double));
    r->driver = sm_malloc(n * sizeof(uint32_t));
}

static void run_free(run *r) {
    sm_free(r->score);
    sm_free(r->expected);
    sm_free(r->upper);
    sm_free(r->combined);
    sm_free(r->residual);
    sm_free(r->driver);
}

static bool same_bits(const double *a, const double *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static void test_no_lookahead_and_determinism(void) {
    size_t n = 3000, cut = 1700;
    double *a = sm_malloc(n * sizeof *a), *b = sm_malloc(n * sizeof *b);
    for (size_t i = 0; i < n; i++) a[i] = b[i] = season(i) + gauss();
    /* the future of b is different: noise, a spike, a shift, NaNs */
    for (size_t i = cut + 1; i < n; i++) b[i] = i % 50 == 0 ? NAN : season(i) + 5 * gauss() + (i > 2500 ? 40 : 0);
    ml_online_opts o;
    ml_online_opts_default(&o);
    run ra, rb, rc;
    run_alloc(&ra, n);
    run_alloc(&rb, n);
    run_alloc(&rc, n);
    run_scorer(&o, a, n, &ra);
    run_scorer(&o, b, n, &rb);
    run_scorer(&o, a, n, &rc);
    CHECK_MSG(same_bits(ra.score, rb.score, cut + 1), "scores up to row %zu changed with later rows", cut);
    CHECK(same_bits(ra.expected, rb.expected, cut + 1));
    CHECK(same_bits(ra.upper, rb.upper, cut + 1));
    CHECK(!same_bits(ra.score, rb.score, n));
    CHECK_MSG(same_bits(ra.score, rc.score, n) && same_bits(ra.expected, rc.expected, n), "not deterministic");
    /* another forest seed changes forest-driven scores, not the baseline */
    o.forest.seed = 777;
    run_scorer(&o, a, n, &rc);
    CHECK(same_bits(ra.expected, rc.expected, n));
    run_free(&ra);
    run_free(&rb);
    run_free(&rc);
    sm_free(a);
    sm_free(b);
}

static void test_spike_and_shift(void) {
    size_t n = 4032, spike = 2600, shift = 3200;
    double *y = sm_malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = season(i) + gauss() + (i >= shift ? 25.0 : 0.0);
    y[spike] += 15.0;
    for (int model = 0; model < 2; model++) {
        ml_online_opts o;
        ml_online_opts_default(&o);
        o.model = (ml_model_kind)model;
        run r;
        run_alloc(&r, n);
        if (run_scorer(&o, y, n, &r) == 0) {
            for (size_t i = 0; i < o.warmup; i++) CHECK(r.score[i] == 0);
            CHECK(isnan(r.expected[0]));
            size_t alarms = 0;
            double quiet = 0;
            for (size_t i = 900; i < spike - 1; i++) {
                alarms += r.score[i] >= 0.5;
                quiet = fmax(quiet, r.score[i]);
            }
            CHECK_MSG(alarms <= 5, "model %d: %zu alarms on %zu quiet rows", model, alarms, spike - 901);
            double at_shift = 0;
            for (size_t i = shift; i < shift + 3; i++) at_shift = fmax(at_shift, r.score[i]);
            CHECK_MSG(r.score[spike] > quiet && at_shift > quiet, "model %d: spike %.3f, shift %.3f, quiet max %.3f",
                      model, r.score[spike], at_shift, quiet);
            CHECK_MSG(r.score[spike] >= 0.5, "model %d: spike scored %.3f", model, r.score[spike]);
            CHECK_MSG(at_shift >= 0.5, "model %d: level shift scored %.3f", model, at_shift);
            /* accepted after a while: the expected value follows the new
             * level and the rows are quiet again */
            double err = fabs(r.expected[n - 1] - (season(n - 1) + 25.0));
            CHECK_MSG(err < 3.0, "model %d: expected off the new level by %.2f at the end", model, err);
            size_t late = 0;
            for (size_t i = n - 300; i < n; i++) late += r.score[i] >= 0.5;
            CHECK_MSG(late <= 2, "model %d: %zu alarms long after the shift", model, late);
        }
        run_free(&r);
    }
    sm_free(y);
}

/* The forest alone (no baseline, so no seasonality): on plain noise a
 * 12-sigma jump ranks in the top 0.5% of the combined scores (before
 * repeat suppression) of the quiet rows.  Not first: a forest's score
 * saturates beyond the range of its training points (cuts are drawn inside
 * it), so a 12-sigma point and a 3.5-sigma one isolate at similar depths;
 * that is why the auto model adds the residual score. */
static void test_forest_only(void) {
    size_t n = 3000, spike = 2400;
    double *y = sm_malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = 20.0 + gauss();
    y[spike] += 12.0;
    ml_online_opts o;
    ml_online_opts_default(&o);
    o.model = ML_MODEL_IFOREST;
    run r;
    run_alloc(&r, n);
    if (run_scorer(&o, y, n, &r) == 0) {
        size_t above = 0;
        for (size_t i = 900; i < spike; i++) above += r.combined[i] >= r.combined[spike];
        CHECK_MSG(above * 200 <= spike - 900, "forest-only spike %.3f: %zu quiet rows as high", r.combined[spike],
                  above);
    }
    run_free(&r);
    sm_free(y);
}

static void test_flat_nan_stale(void) {
    size_t n = 1500;
    double *y = sm_malloc(n * sizeof *y), stale;
    uint64_t bits = SM_STALE_NAN_BITS;
    memcpy(&stale, &bits, sizeof stale);
    for (size_t i = 0; i < n; i++) y[i] = 7.0;
    for (size_t i = 700; i < 720; i++) y[i] = i % 2 ? NAN : stale;
    y[1200] = 7.5;
    ml_online_opts o;
    ml_online_opts_default(&o);
    run r;
    run_alloc(&r, n);
    if (run_scorer(&o, y, n, &r) == 0) {
        double mx = 0;
        for (size_t i = 0; i < 1200; i++) mx = fmax(mx, r.score[i]);
        CHECK_MSG(mx == 0, "a flat series scored %.3f", mx);
        CHECK(fabs(r.expected[1199] - 7.0) < 1e-6);
        CHECK(isfinite(r.expected[710])); /* the prediction goes on over gaps */
        CHECK_MSG(r.score[1200] >= 0.5, "a change in a flat series scored %.3f", r.score[1200]);
    }
    run_free(&r);
    /* timestamps going backwards are refused, NaN everywhere is fine */
    ml_online_t *s = NULL;
    CHECK_OK(ml_online_new(&o, &s, NULL));
    if (s) {
        double v = NAN;
        ml_online_point pt;
        for (int i = 0; i < 100; i++) CHECK_OK(ml_online_step(s, T0 + i * STEP_MS, &v, NULL, NULL, NULL, &pt, NULL));
        CHECK(pt.score == 0);
        CHECK_EQ_INT(ml_online_step(s, T0, &v, NULL, NULL, NULL, &pt, NULL), SM_EINVAL);
    }
    ml_online_free(s);
    sm_free(y);
}

static void test_multivariate(void) {
    size_t n = 2500, k = 3, at = 2000;
    double *y = sm_malloc(k * n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        double common = gauss();
        for (size_t j = 0; j < k; j++) y[j * n + i] = season(i) * (1 + j) + common + 0.3 * gauss();
    }
    y[1 * n + at] += 12.0;
    ml_online_opts o;
    ml_online_opts_default(&o);
    o.series = (uint32_t)k;
    run r;
    run_alloc(&r, n);
    if (run_scorer(&o, y, n, &r) == 0) {
        CHECK_MSG(r.score[at] >= 0.5, "multivariate anomaly scored %.3f", r.score[at]);
        CHECK_EQ_INT(r.driver[at], 1);
    }
    run_free(&r);
    sm_free(y);
}

static void test_codec(void) {
    size_t n = 2600, cut = 1234;
    double *y = sm_malloc(2 * n * sizeof *y);
    for (size_t i = 0; i < 2 * n; i++) y[i] = season(i % n) + gauss() + (i % 333 == 0 ? 30 : 0);
    ml_online_opts o;
    ml_online_opts_default(&o);
    o.series = 2;
    ml_online_t *a = NULL, *b = NULL;
    CHECK_OK(ml_online_new(&o, &a, NULL));
    if (!a) return;
    double v[2], ea[2], eb[2];
    ml_online_point pa, pb;
    for (size_t i = 0; i < cut; i++) {
        v[0] = y[i];
        v[1] = y[n + i];
        ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, v, ea, NULL, NULL, &pa, NULL);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_OK(ml_online_encode(a, &buf, &len, NULL));
    sm_error err;
    sm_error_clear(&err);
    if (buf) CHECK_OK_ERR(ml_online_decode(buf, len, &b, &err), &err);
    if (b) {
        CHECK_EQ_INT(ml_online_rows(b), cut);
        int diverged = 0;
        for (size_t i = cut; i < n; i++) {
            v[0] = y[i];
            v[1] = y[n + i];
            ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, v, ea, NULL, NULL, &pa, NULL);
            ml_online_step(b, T0 + (sm_ms_t)i * STEP_MS, v, eb, NULL, NULL, &pb, NULL);
            diverged += pa.score != pb.score || memcmp(ea, eb, sizeof ea) != 0;
        }
        CHECK_EQ_INT(diverged, 0);
        ml_online_free(b);
        b = NULL;
    }
    if (buf) {
        int accepted = 0;
        for (size_t c = 0; c < len; c += len / 97 + 1) accepted += ml_online_decode(buf, c, &b, NULL) == 0;
        buf[len / 3] ^= 4;
        accepted += ml_online_decode(buf, len, &b, NULL) == 0;
        CHECK_EQ_INT(accepted, 0);
    }
    sm_free(buf);
    ml_online_free(a);
    sm_free(y);
}

/* A decoded state is bounded work per step: its robust-reweighting rounds
 * (option 13, at byte 5 + 13 * 4 after the magic and version, docs/ML.md)
 * are refused above ML_BASELINE_MAX_ITERATIONS, as ml_online_new refuses
 * them.  fuzz_ml_model timed out on a state asking for billions of rounds. */
static void test_decode_bounds_iterations(void) {
    ml_online_opts o;
    ml_online_opts_default(&o);
    ml_online_t *a = NULL, *b = NULL;
    o.baseline.iterations = ML_BASELINE_MAX_ITERATIONS + 1;
    CHECK(ml_online_new(&o, &a, NULL) == SM_EINVAL);
    o.baseline.iterations = 2;
    CHECK_OK(ml_online_new(&o, &a, NULL));
    if (!a) return;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_OK(ml_online_encode(a, &buf, &len, NULL));
    if (buf) {
        const uint32_t tries[] = {ML_BASELINE_MAX_ITERATIONS, ML_BASELINE_MAX_ITERATIONS + 1, UINT32_MAX};
        for (size_t i = 0; i < 3; i++) {
            CHECK_EQ_INT(sm_load_le32(buf + 5 + 13 * 4), i ? tries[i - 1] : 2);
            sm_store_le32(buf + 5 + 13 * 4, tries[i]);
            sm_store_le32(buf + len - 4, sm_crc32c(0, buf, len - 4));
            int rc = ml_online_decode(buf, len, &b, NULL);
            CHECK_EQ_INT(rc == 0, i == 0);
            ml_online_free(b);
            b = NULL;
        }
    }
    sm_free(buf);
    ml_online_free(a);
}

/* The defaults grow an extended forest (online.c, ml/README.md
 * "Evaluation").  A state stores its options, so a scorer encoded with
 * the standard forest of an older default decodes into a scorer that keeps
 * refitting standard forests: it continues bit for bit past the next
 * forest refits instead of switching to the new default. */
static void test_default_forest_and_old_states(void) {
    ml_online_opts o;
    ml_online_opts_default(&o);
    CHECK(o.forest.extended);
    CHECK(o.forest.extension == UINT32_MAX);
    size_t n = 2400, cut = 700;
    double *y = sm_malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = season(i) + gauss() + (i % 401 == 0 ? 20 : 0);
    o.forest.extended = false;
    ml_online_t *a = NULL, *b = NULL;
    CHECK_OK(ml_online_new(&o, &a, NULL));
    if (!a) {
        sm_free(y);
        return;
    }
    ml_online_point pa, pb;
    for (size_t i = 0; i < cut; i++) ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pa, NULL);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_OK(ml_online_encode(a, &buf, &len, NULL));
    if (buf) CHECK_OK(ml_online_decode(buf, len, &b, NULL));
    if (b) {
        int diverged = 0, forest_rows = 0;
        /* past cut the forest is refitted at least three times (every 512 rows) */
        for (size_t i = cut; i < n; i++) {
            ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pa, NULL);
            ml_online_step(b, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pb, NULL);
            diverged += pa.forest_score != pb.forest_score || pa.score != pb.score;
            forest_rows += pa.forest_score > 0;
        }
        CHECK_EQ_INT(diverged, 0);
        CHECK(forest_rows > 0);
        ml_online_free(b);
    }
    sm_free(buf);
    ml_online_free(a);
    sm_free(y);
}

/* A square daily wave (20 by night, 80 from 08:00 to 17:00 UTC; T0 is
 * midnight) with a little noise: the harmonics ripple around its edges,
 * the values of the previous days do not. */
static double square(size_t i) {
    size_t m = i % 288;
    return m >= 96 && m < 204 ? 80.0 : 20.0;
}

/* Byte offset of the per-series seasonal fields (scale, band, change
 * scale) of series 0 in an encoded state of k = 1 with options o
 * (docs/ML.md, "Streaming scorer state"). */
static size_t seasonal_offset(const ml_online_opts *o) {
    return 5 + 21 * 4 + 8 * 8 + 8 + 6 * 8 + 10 * 4 + (size_t)o->history * 8 * 2 + (size_t)o->spread_window * 8 +
           (size_t)o->feature_history * 3 * 8 + 6 * 8;
}

static int decode_patched(uint8_t *buf, size_t len, size_t off, const void *bytes, size_t n) {
    uint8_t *copy = sm_malloc(len);
    if (!copy) return SM_ENOMEM;
    memcpy(copy, buf, len);
    memcpy(copy + off, bytes, n);
    sm_store_le32(copy + len - 4, sm_crc32c(0, copy, len - 4));
    ml_online_t *b = NULL;
    int rc = ml_online_decode(copy, len, &b, NULL);
    ml_online_free(b);
    sm_free(copy);
    return rc;
}

static void test_seasonal_naive(void) {
    size_t n = 4032, gap = 1500, drop = 3600;
    double *y = sm_malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = square(i) + 0.5 * gauss();
    for (size_t i = gap; i < gap + 30; i++) y[i] = NAN; /* a gap on day 5 */
    for (size_t i = drop; i < drop + 12; i++) y[i] = 20.0 + 0.5 * gauss(); /* the high part starts late */
    ml_online_opts o, off;
    ml_online_opts_default(&o);
    CHECK(o.seasonal_ratio == 0.5 && o.seasonal_lags == 3);
    off = o;
    off.seasonal_ratio = 0;
    run r, q;
    run_alloc(&r, n);
    run_alloc(&q, n);
    if (run_scorer(&o, y, n, &r) == 0 && run_scorer(&off, y, n, &q) == 0) {
        /* cold start: no seasonal prediction before a day of history and
         * 64 seasonal residuals, so the first rows are the harmonic ones */
        CHECK(same_bits(r.expected, q.expected, 288 + 64));
        CHECK(same_bits(r.score, q.score, 288 + 64));
        /* later the prediction is the previous days' value, edges included */
        double worst = 0, worst_off = 0;
        for (size_t i = 1500; i < drop; i++) {
            if (i % 288 != 96 && i % 288 != 204) continue;
            worst = fmax(worst, fabs(r.expected[i] - square(i)));
            worst_off = fmax(worst_off, fabs(q.expected[i] - square(i)));
        }
        CHECK_MSG(worst < 3.0 && worst_off > 10.0, "edge error %.2f seasonal, %.2f harmonic", worst, worst_off);
        /* over the gap and a day after it (one of three lags missing) */
        for (size_t i = gap; i < gap + 30 + 288; i++) CHECK(isfinite(r.expected[i]));
        CHECK_MSG(fabs(r.expected[gap + 288 + 10] - square(gap + 288 + 10)) < 3.0, "after the gap: %.2f",
                  r.expected[gap + 288 + 10]);
        /* the edges no longer look odd to the residual score, and the
         * quiet days hardly alarm.  Off the edges a rare noise value is
         * odd in either mode (about 4 sigma from a prediction that is
         * itself noisy), so those are bounded, not forbidden: over seeds
         * 1..100 at most one odd row and one alarm in the 2,600 rows;
         * the bound is two */
        size_t alarms = 0, odd = 0, odd_off = 0, odd_mid = 0;
        for (size_t i = 1000; i < drop; i++) {
            size_t m = i % 288;
            bool edge = (m >= 90 && m <= 102) || (m >= 198 && m <= 210);
            alarms += r.score[i] >= 0.5;
            odd += edge && r.residual[i] >= 0.5;
            odd_off += edge && q.residual[i] >= 0.5;
            odd_mid += !edge && r.residual[i] >= 0.5;
        }
        CHECK_MSG(odd == 0 && odd_off >= 5 && odd_mid <= 2 && alarms <= 2,
                  "quiet rows: %zu odd edge rows seasonal, %zu harmonic; %zu odd other rows, %zu alarms", odd, odd_off,
                  odd_mid, alarms);
        CHECK_MSG(r.score[drop] >= 0.5, "a late daily edge scored %.3f", r.score[drop]);
    }
    run_free(&r);
    run_free(&q);

    /* the codec carries the mode: a state encoded in seasonal mode goes on
     * bit for bit, and corrupted seasonal fields are refused */
    size_t cut = 2000;
    ml_online_t *a = NULL, *b = NULL;
    CHECK_OK(ml_online_new(&o, &a, NULL));
    uint8_t *buf = NULL;
    size_t len = 0;
    if (a) {
        ml_online_point pa, pb;
        for (size_t i = 0; i < cut; i++) ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pa, NULL);
        CHECK_OK(ml_online_encode(a, &buf, &len, NULL));
        if (buf) CHECK_OK(ml_online_decode(buf, len, &b, NULL));
        if (b) {
            int diverged = 0;
            double ea, eb;
            for (size_t i = cut; i < n; i++) {
                ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], &ea, NULL, NULL, &pa, NULL);
                ml_online_step(b, T0 + (sm_ms_t)i * STEP_MS, &y[i], &eb, NULL, NULL, &pb, NULL);
                diverged += pa.score != pb.score || memcmp(&ea, &eb, sizeof ea) != 0;
            }
            CHECK_EQ_INT(diverged, 0);
        }
    }
    if (buf) {
        size_t off_sn = seasonal_offset(&o);
        double sn[3];
        for (int i = 0; i < 3; i++) sn[i] = sm_f64_from_bits(sm_load_le64(buf + off_sn + 8 * (size_t)i));
        CHECK_MSG(sn[0] > 0 && sn[1] >= o.baseline.z && sn[2] > 0, "not in seasonal mode at row %zu", cut);
        CHECK_OK(decode_patched(buf, len, off_sn, sn, 0)); /* the offset itself decodes unchanged */
        const double bad[] = {-1.0, NAN, INFINITY};
        for (int f = 0; f < 3; f++)
            for (int i = 0; i < 3; i++) {
                uint8_t le[8];
                sm_store_le64(le, sm_f64_bits(bad[i]));
                CHECK_EQ_INT(decode_patched(buf, len, off_sn + 8 * (size_t)f, le, 8), SM_ECORRUPT);
            }
        uint8_t le[8];
        sm_store_le64(le, sm_f64_bits(1.5)); /* seasonal_ratio, the sixth f64 option */
        CHECK_EQ_INT(decode_patched(buf, len, 5 + 21 * 4 + 5 * 8, le, 8), SM_ECORRUPT);
        sm_store_le32(le, 0); /* seasonal_lags, the twentieth le32 option */
        CHECK_EQ_INT(decode_patched(buf, len, 5 + 19 * 4, le, 4), SM_ECORRUPT);
        sm_store_le32(le, 4);
        CHECK_EQ_INT(decode_patched(buf, len, 5 + 19 * 4, le, 4), SM_ECORRUPT);
        sm_store_le64(le, (uint64_t)-300000); /* a negative step, the sixth counter */
        CHECK_EQ_INT(decode_patched(buf, len, 5 + 21 * 4 + 8 * 8 + 8 + 5 * 8, le, 8), SM_ECORRUPT);
        /* versions 1 (before the seasonal mode), 2 (before shape novelty) and 3
         * (before combine_p) are refused */
        for (uint8_t ver = 1; ver <= 3; ver++) CHECK_EQ_INT(decode_patched(buf, len, 4, &ver, 1), SM_ECORRUPT);
    }
    sm_free(buf);
    ml_online_free(a);
    ml_online_free(b);
    /* options out of range */
    off = o;
    off.seasonal_ratio = 1.01;
    CHECK_EQ_INT(ml_online_new(&off, &a, NULL), SM_EINVAL);
    off = o;
    off.seasonal_lags = 0;
    CHECK_EQ_INT(ml_online_new(&off, &a, NULL), SM_EINVAL);
    sm_free(y);
}

/* Shape novelty in the auto model (shape.h): a sine of period 32 rows
 * that swings at period 12 for 200 rows keeps its range, yet its shape is
 * new.  The
 * baseline model never reports a shape score; the options are checked. */
static void test_shape_novelty(void) {
    size_t n = 4000, at = 3000;
    double *y = sm_malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        bool odd = i >= at && i < at + 200;
        y[i] = 50 + 20 * sin(6.283185307179586 * (double)i / (odd ? 12.0 : 32.0)) + 0.2 * gauss();
    }
    ml_online_opts o;
    ml_online_opts_default(&o);
    CHECK(o.shape_history > 0 && o.shape_weight > 0);
    ml_online_t *a = NULL, *b = NULL;
    o.model = ML_MODEL_BASELINE;
    CHECK_OK(ml_online_new(&o, &b, NULL));
    o.model = ML_MODEL_AUTO;
    CHECK_OK(ml_online_new(&o, &a, NULL));
    double before[2000] = {0}, in_rows[200] = {0}, in = 0, base = 0;
    int shape_driven = 0;
    for (size_t i = 0; a && b && i < n; i++) {
        ml_online_point pa, pb;
        ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pa, NULL);
        ml_online_step(b, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pb, NULL);
        CHECK(pa.shape_score >= 0 && pa.shape_score <= o.shape_weight * ML_SHAPE_MAX && pa.score >= pa.shape_score);
        base = fmax(base, pb.shape_score);
        if (i >= 1000 && i < at) before[i - 1000] = pa.shape_score;
        if (i >= at && i < at + 200) {
            in = fmax(in, pa.shape_score);
            in_rows[i - at] = pa.shape_score;
        }
        shape_driven += pa.driver_feature == ML_FEAT_SHAPE && pa.score > 0;
    }
    /* The score peaks in the stretch, and a score of a quarter of that
     * peak is at least five times rarer per row before it (2,000 rows)
     * than in it (200 rows).  Noise alone reaches 0.17-0.30 on one or two
     * rows before the stretch in 6 of seeds 1..100, so a bound on the
     * largest score before it would test the seed, not the model. */
    size_t high_before = 0, high_in = 0;
    for (size_t i = 0; i < 2000; i++) high_before += before[i] > 0.25 * in;
    for (size_t i = 0; i < 200; i++) high_in += in_rows[i] > 0.25 * in;
    CHECK_MSG(in > 0.4 && high_before < 2 * high_in,
              "shape score %.3f in the faster stretch; %zu rows above %.3f in it, %zu before", in, high_in, 0.25 * in,
              high_before);
    CHECK(shape_driven > 0);
    CHECK(base == 0);
    ml_online_free(a);
    ml_online_free(b);
    const uint32_t bad_h[] = {1, ML_SHAPE_MIN_HISTORY - 1, ML_SHAPE_MAX_HISTORY + 1};
    for (int i = 0; i < 3; i++) {
        ml_online_opts_default(&o);
        o.shape_history = bad_h[i];
        CHECK_EQ_INT(ml_online_new(&o, &a, NULL), SM_EINVAL);
    }
    const double bad_w[] = {-0.1, 1.5, NAN};
    for (int i = 0; i < 3; i++) {
        ml_online_opts_default(&o);
        o.shape_weight = bad_w[i];
        CHECK_EQ_INT(ml_online_new(&o, &a, NULL), SM_EINVAL);
    }
    /* off: no shape state, nothing reported from it */
    ml_online_opts_default(&o);
    o.shape_history = 0;
    CHECK_OK(ml_online_new(&o, &a, NULL));
    for (size_t i = 0; a && i < n; i++) {
        ml_online_point pa;
        ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pa, NULL);
        CHECK(pa.shape_score == 0 && pa.driver_feature != ML_FEAT_SHAPE);
    }
    ml_online_free(a);
    sm_free(y);
}

/* The auto model combines its residual score r and forest score f as their
 * p-norm (combine_p, online.h): every row's combined score is that of its
 * reported parts, it exceeds their max where both speak, and combine_p = 0
 * is the max.  Out-of-range values are refused, also from a stored state
 * (options at byte 5 + 21 * 4, combine_p the 8th f64, docs/ML.md). */
static void test_combine(void) {
    size_t n = 3000;
    double *y = sm_malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = season(i) + gauss() + (i % 277 == 0 ? 12 : 0);
    ml_online_opts o;
    ml_online_opts_default(&o);
    CHECK(o.combine_p >= 1 && o.combine_p <= 64);
    const double ps[] = {o.combine_p, 0};
    for (int t = 0; t < 2; t++) {
        o.combine_p = ps[t];
        ml_online_t *a = NULL;
        CHECK_OK(ml_online_new(&o, &a, NULL));
        int wrong = 0, above = 0;
        for (size_t i = 0; a && i < n; i++) {
            ml_online_point pt;
            ml_online_step(a, T0 + (sm_ms_t)i * STEP_MS, &y[i], NULL, NULL, NULL, &pt, NULL);
            double r = pt.residual_score, f = pt.forest_score, hi = fmax(r, f);
            double want = ps[t] == 0 ? hi : fmin(1.0, pow(pow(r, ps[t]) + pow(f, ps[t]), 1.0 / ps[t]));
            wrong += fabs(pt.combined - want) > 1e-12 || pt.combined < hi;
            above += pt.combined > hi + 1e-9;
        }
        CHECK_EQ_INT(wrong, 0);
        CHECK_MSG(t ? above == 0 : above > 100, "p %g: %d rows above the max of their parts", ps[t], above);
        ml_online_free(a);
    }
    const double bad[] = {-1, 0.5, 64.5, NAN, INFINITY};
    ml_online_t *a = NULL;
    for (int i = 0; i < 5; i++) {
        ml_online_opts_default(&o);
        o.combine_p = bad[i];
        CHECK_EQ_INT(ml_online_new(&o, &a, NULL), SM_EINVAL);
    }
    ml_online_opts_default(&o);
    CHECK_OK(ml_online_new(&o, &a, NULL));
    uint8_t *buf = NULL;
    size_t len = 0;
    if (a) CHECK_OK(ml_online_encode(a, &buf, &len, NULL));
    size_t off = 5 + 21 * 4 + 7 * 8;
    if (buf) {
        uint8_t le[8];
        CHECK(sm_load_le64(buf + off) == sm_f64_bits(o.combine_p));
        const double tries[] = {0, 2, 64, NAN, 0.9, 65};
        for (int i = 0; i < 6; i++) {
            sm_store_le64(le, sm_f64_bits(tries[i]));
            CHECK_EQ_INT(decode_patched(buf, len, off, le, 8) == 0, i < 3);
        }
    }
    sm_free(buf);
    ml_online_free(a);
    sm_free(y);
}

int main(void) {
    rng = check_seed();
    test_no_lookahead_and_determinism();
    test_spike_and_shift();
    test_forest_only();
    test_flat_nan_stale();
    test_multivariate();
    test_codec();
    test_decode_bounds_iterations();
    test_default_forest_and_old_states();
    test_seasonal_naive();
    test_shape_novelty();
    test_combine();
    return check_done();
}
