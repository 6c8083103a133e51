/* SPDX-License-Identifier: Apache-2.0
 *
 * test_functions.c - the arithmetic of PromQL's functions (query/functions.h)
 * against values worked out by hand from Prometheus 2.42's definitions: the
 * extrapolation of rate/increase/delta (counter resets, the 1.1x average
 * interval threshold at both window edges, the zero-point limit), irate and
 * idelta, deriv and predict_linear (intercept at the evaluation time),
 * holt_winters and its argument errors, every *_over_time, the two
 * quantiles and their edge cases, the clamps, round, and the calendar
 * functions across month, year and leap-year boundaries.  The derivation
 * of each expected value is in the comment beside it.  A seeded random
 * part checks properties that hold whatever the data: rate = increase /
 * range, quantile_over_time between min and max, insensitivity of
 * histogram_quantile to bucket order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "functions.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_error.h"

/* Windows are written in seconds here; fn_window wants ms. */
#define MAXN 2048
typedef struct win {
    sm_ms_t t[MAXN];
    double v[MAXN];
    fn_window w;
} win;

static win W;

static const fn_window *mkwin(double start_s, double end_s, size_t n, const double *t_s,
                              const double *v) {
    for (size_t i = 0; i < n; i++) {
        W.t[i] = (sm_ms_t)llround(t_s[i] * 1000);
        W.v[i] = v[i];
    }
    W.w.t = W.t;
    W.w.v = W.v;
    W.w.n = n;
    W.w.start = (sm_ms_t)llround(start_s * 1000);
    W.w.end = (sm_ms_t)llround(end_s * 1000);
    return &W.w;
}

static bool close_to(double got, double want) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    double tol = 1e-12 * fmax(1, fabs(want));
    return fabs(got - want) <= tol;
}

/* Evaluate range function f, expecting a point close to want. */
#define RANGE_IS(f, w, args, nargs, want)                                                     \
    do {                                                                                      \
        double out_ = -12345;                                                                 \
        int rc_ = fn_range_eval((f), (w), (args), (nargs), &out_);                            \
        CHECK_MSG(rc_ == 1 && close_to(out_, (want)), "%s: rc %d, got %.17g, want %.17g", #f, \
                  rc_, out_, (double)(want));                                                 \
    } while (0)

#define RANGE_NONE(f, w, args, nargs)                                                         \
    do {                                                                                      \
        double out_ = -12345;                                                                 \
        int rc_ = fn_range_eval((f), (w), (args), (nargs), &out_);                            \
        CHECK_MSG(rc_ == 0 && out_ == -12345, "%s: rc %d, expected no point", #f, rc_);       \
    } while (0)

#define ELEM_IS(f, v, args, nargs, want)                                                      \
    do {                                                                                      \
        double out_ = -12345;                                                                 \
        int rc_ = fn_elem_eval((f), (v), (args), (nargs), &out_);                             \
        CHECK_MSG(rc_ == 1 && close_to(out_, (want)), "%s(%.17g): rc %d, got %.17g, want %.17g", \
                  #f, (double)(v), rc_, out_, (double)(want));                                \
    } while (0)

/* Exact bits, for the cases where the sign of zero or exactness matters. */
static bool same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void test_rate_family(void) {
    /* Six samples every 60 s from 0 to 300 s, 0 10 .. 50, window [0, 300]:
     * both edges are on samples, so no extrapolation: increase 50, rate
     * 50 / 300. */
    double t1[] = {0, 60, 120, 180, 240, 300}, v1[] = {0, 10, 20, 30, 40, 50};
    const fn_window *w = mkwin(0, 300, 6, t1, v1);
    RANGE_IS(PF_INCREASE, w, NULL, 0, 50);
    RANGE_IS(PF_RATE, w, NULL, 0, 50.0 / 300);
    RANGE_IS(PF_DELTA, w, NULL, 0, 50);

    /* Counter reset: 0 1 2 3 2 3 4 every 5 m over [0, 30m].  Last - first
     * is 4, the drop 3 -> 2 adds 3: 7 (Prometheus assumes 3 0 1 2). */
    double t2[] = {0, 300, 600, 900, 1200, 1500, 1800}, v2[] = {0, 1, 2, 3, 2, 3, 4};
    w = mkwin(0, 1800, 7, t2, v2);
    RANGE_IS(PF_INCREASE, w, NULL, 0, 7);
    RANGE_IS(PF_RATE, w, NULL, 0, 7.0 / 1800);
    /* delta ignores resets: 4 - 0. */
    RANGE_IS(PF_DELTA, w, NULL, 0, 4);

    /* Edges far from the samples: 1 2 3 at 100, 160, 220 s in [0, 400].
     * Sampled interval 120 s, average step 60 s, threshold 66 s.  Both
     * gaps (100 s and 180 s) exceed it, so each side extends by half a
     * step: 120 + 30 + 30 = 180 s, factor 1.5: delta 2 * 1.5 = 3. */
    double t3[] = {100, 160, 220}, v3[] = {1, 2, 3};
    w = mkwin(0, 400, 3, t3, v3);
    RANGE_IS(PF_DELTA, w, NULL, 0, 3);
    /* As a counter the zero point is 120 * (1 / 2) = 60 s before the first
     * sample, which is less than the 100 s gap but is then compared with
     * the threshold: 60 < 66, so the start extends by 60 s:
     * 120 + 60 + 30 = 210 s, factor 1.75: increase 3.5, rate 3.5 / 400. */
    RANGE_IS(PF_INCREASE, w, NULL, 0, 3.5);
    RANGE_IS(PF_RATE, w, NULL, 0, 3.5 / 400);

    /* The threshold is 1.1 average steps (66 s here): a 63 s gap at the
     * start is extrapolated in full, 2 * (120 + 63) / 120 = 3.05; a 70 s
     * gap gets half a step, 2 * (120 + 30) / 120 = 2.5. */
    double t3b[] = {63, 123, 183}, t3c[] = {70, 130, 190};
    w = mkwin(0, 183, 3, t3b, v3);
    RANGE_IS(PF_DELTA, w, NULL, 0, 3.05);
    w = mkwin(0, 190, 3, t3c, v3);
    RANGE_IS(PF_DELTA, w, NULL, 0, 2.5);
    /* The same at the end: samples at 0, 60, 120 in [0, 183] / [0, 190]. */
    double t3d[] = {0, 60, 120};
    w = mkwin(0, 183, 3, t3d, v3);
    RANGE_IS(PF_DELTA, w, NULL, 0, 3.05);
    w = mkwin(0, 190, 3, t3d, v3);
    RANGE_IS(PF_DELTA, w, NULL, 0, 2.5);

    /* Gaps inside the threshold extrapolate all the way: 10 20 30 at 10,
     * 70, 130 s in [0, 150] (gaps 10 s and 20 s < 66 s).  delta: 20 *
     * (120 + 10 + 20) / 120 = 25.  As a counter the zero point is
     * 120 * (10 / 20) = 60 s back, beyond the 10 s gap: no effect. */
    double t4[] = {10, 70, 130}, v4[] = {10, 20, 30};
    w = mkwin(0, 150, 3, t4, v4);
    RANGE_IS(PF_DELTA, w, NULL, 0, 25);
    RANGE_IS(PF_INCREASE, w, NULL, 0, 25);

    /* Prometheus's zero-cutoff case: samples every 4 m from 60 by 240,
     * rate over 20 m at 10 m: window [-600, 600], samples at 0, 240, 480 s
     * with 60 300 540.  Increase 480 over 480 s; the zero point is 60 s
     * before the first sample, inside the 264 s threshold, and the end gap
     * is 120 s: (480 + 60 + 120) / 480 * 480 / 1200 = 0.55. */
    double t5[] = {0, 240, 480}, v5[] = {60, 300, 540};
    w = mkwin(-600, 600, 3, t5, v5);
    RANGE_IS(PF_RATE, w, NULL, 0, 0.55);
    /* A counter starting at 0 has its zero point at the first sample: the
     * start does not extend at all: (480 + 0 + 120) / 480 * 480 / 1200. */
    double v5b[] = {0, 240, 480};
    w = mkwin(-600, 600, 3, t5, v5b);
    RANGE_IS(PF_RATE, w, NULL, 0, 0.5);
    /* A negative first value disables the zero-point rule: the 600 s gap
     * exceeds the threshold, half a step (120 s) then. */
    double v5c[] = {-60, 180, 420};
    w = mkwin(-600, 600, 3, t5, v5c);
    RANGE_IS(PF_INCREASE, w, NULL, 0, 480.0 * (480 + 120 + 120) / 480);

    /* A reset on the last sample: 0 10 0 is an increase of 0 + 10 = 10. */
    double t6[] = {0, 300, 600}, v6[] = {0, 10, 0};
    w = mkwin(0, 600, 3, t6, v6);
    RANGE_IS(PF_INCREASE, w, NULL, 0, 10);

    /* One sample yields no point; neither does an empty window. */
    w = mkwin(0, 300, 1, t1, v1);
    RANGE_NONE(PF_RATE, w, NULL, 0);
    RANGE_NONE(PF_INCREASE, w, NULL, 0);
    RANGE_NONE(PF_DELTA, w, NULL, 0);
    w = mkwin(0, 300, 0, t1, v1);
    RANGE_NONE(PF_RATE, w, NULL, 0);
    RANGE_NONE(PF_SUM_OVER_TIME, w, NULL, 0);

    /* A sub-second range divides by Go's Duration.Seconds(): 1.5 s. */
    double t7[] = {0, 1.5}, v7[] = {0, 3};
    w = mkwin(0, 1.5, 2, t7, v7);
    RANGE_IS(PF_RATE, w, NULL, 0, 2);

    /* A NaN inside a counter is invisible to the reset check (every
     * comparison with NaN is false) and to last - first: 1 NaN 3 is an
     * increase of 2 over the whole window.  A NaN at an end spoils it. */
    double v8[] = {1, NAN, 3};
    w = mkwin(0, 600, 3, t6, v8);
    RANGE_IS(PF_RATE, w, NULL, 0, 2.0 / 600);
    double v9[] = {1, 2, NAN};
    w = mkwin(0, 600, 3, t6, v9);
    RANGE_IS(PF_RATE, w, NULL, 0, NAN);
}

static void test_irate_idelta(void) {
    double t[] = {0, 5, 10}, v[] = {0, 10, 20};
    const fn_window *w = mkwin(0, 10, 3, t, v);
    RANGE_IS(PF_IRATE, w, NULL, 0, 2); /* (20 - 10) / 5 s */
    RANGE_IS(PF_IDELTA, w, NULL, 0, 10);
    /* Reset: 20 then 5: irate takes the new value, 5 / 5 s; idelta -15. */
    double v2[] = {0, 20, 5};
    w = mkwin(0, 10, 3, t, v2);
    RANGE_IS(PF_IRATE, w, NULL, 0, 1);
    RANGE_IS(PF_IDELTA, w, NULL, 0, -15);
    /* Only the last two samples count; a 250 ms interval. */
    double t3[] = {0, 9.75, 10}, v3[] = {100, 1, 2};
    w = mkwin(0, 10, 3, t3, v3);
    RANGE_IS(PF_IRATE, w, NULL, 0, 4);
    RANGE_IS(PF_IDELTA, w, NULL, 0, 1);
    /* One sample, or two at the same time: no point. */
    w = mkwin(0, 10, 1, t, v);
    RANGE_NONE(PF_IRATE, w, NULL, 0);
    RANGE_NONE(PF_IDELTA, w, NULL, 0);
    double t4[] = {5, 5};
    w = mkwin(0, 10, 2, t4, v);
    RANGE_NONE(PF_IRATE, w, NULL, 0);
}

static void test_regression(void) {
    /* y = t on 0, 60, 120 s: slope 1 per second. */
    double t[] = {0, 60, 120}, v[] = {0, 60, 120};
    const fn_window *w = mkwin(0, 120, 3, t, v);
    RANGE_IS(PF_DERIV, w, NULL, 0, 1);
    /* Intercept at the window end (120 s): x = -120 -60 0, sums -180, 180,
     * xy -3600, x2 18000: cov 7200, var 7200, slope 1, intercept
     * 60 + 60 = 120; 60 s later: 180. */
    double d = 60;
    RANGE_IS(PF_PREDICT_LINEAR, w, &d, 1, 180);
    /* With the evaluation time 60 s after the window end (an offset of
     * 1 m), the intercept is at 180 s: 180 + 60 = 240. */
    double out = 0;
    CHECK_EQ_INT(fn_range_eval_at(PF_PREDICT_LINEAR, w, 180000, &d, 1, &out), 1);
    CHECK_MSG(close_to(out, 240), "predict_linear at 180 s: %.17g", out);
    /* y = 10 - 0.5 t on 0, 10, 20, 40 s: slope -0.5, and the value at
     * 40 s plus 20 s: 10 - 0.5 * 60 = -20. */
    double t2[] = {0, 10, 20, 40}, v2[] = {10, 5, 0, -10};
    w = mkwin(0, 40, 4, t2, v2);
    RANGE_IS(PF_DERIV, w, NULL, 0, -0.5);
    d = 20;
    RANGE_IS(PF_PREDICT_LINEAR, w, &d, 1, -20);
    /* Noisy: points (0,1) (1,3) (2,2) (3,5): x mean 1.5, y mean 2.75,
     * Sxy = (-1.5)(-1.75) + (-0.5)(0.25) + (0.5)(-0.75) + (1.5)(2.25)
     *     = 2.625 - .125 - .375 + 3.375 = 5.5, Sxx = 5: slope 1.1. */
    double t3[] = {0, 1, 2, 3}, v3[] = {1, 3, 2, 5};
    w = mkwin(0, 3, 4, t3, v3);
    RANGE_IS(PF_DERIV, w, NULL, 0, 1.1);
    /* At 3 s: 2.75 + 1.1 * 1.5 = 4.4; 1 s later 5.5. */
    d = 1;
    RANGE_IS(PF_PREDICT_LINEAR, w, &d, 1, 5.5);
    /* Constant series: slope exactly 0, intercept the value; an infinite
     * constant gives NaN. */
    double v4[] = {5, 5, 5};
    w = mkwin(0, 120, 3, t, v4);
    RANGE_IS(PF_DERIV, w, NULL, 0, 0);
    d = 1000;
    RANGE_IS(PF_PREDICT_LINEAR, w, &d, 1, 5);
    double v5[] = {INFINITY, INFINITY, INFINITY};
    w = mkwin(0, 120, 3, t, v5);
    RANGE_IS(PF_DERIV, w, NULL, 0, NAN);
    /* One sample: no point.  A missing duration argument: SM_EINVAL. */
    w = mkwin(0, 120, 1, t, v);
    RANGE_NONE(PF_DERIV, w, NULL, 0);
    RANGE_NONE(PF_PREDICT_LINEAR, w, &d, 1);
    w = mkwin(0, 120, 3, t, v);
    CHECK_EQ_INT(fn_range_eval(PF_PREDICT_LINEAR, w, NULL, 0, &out), SM_EINVAL);
}

static void test_holt_winters(void) {
    double t[] = {0, 1, 2}, v[] = {1, 2, 3}, a[] = {0.5, 0.5};
    /* s1 = 1, b = 1.  i=1: x = 1, b stays 1 (first step), y = .5 * 2 = 1,
     * s = 2.  i=2: x = 1.5, b = .5 * (2 - 1) + .5 * 1 = 1, y = .5 * 3,
     * s = 3. */
    const fn_window *w = mkwin(0, 2, 3, t, v);
    RANGE_IS(PF_HOLT_WINTERS, w, a, 2, 3);
    /* 0 10 5: s1 = 0, b = 10.  i=1: x = 5, y = .5 * 10 = 5, s = 10.
     * i=2: x = 2.5, b = .5 * 10 + .5 * 10 = 10, y = .5 * 20 = 10, 12.5. */
    double v2[] = {0, 10, 5};
    w = mkwin(0, 2, 3, t, v2);
    RANGE_IS(PF_HOLT_WINTERS, w, a, 2, 12.5);
    /* sf .2 tf .8 on 0 10 5: i=1: x = 2, y = .8 * 10 = 8, s = 10.
     * i=2: x = 1, b = .8 * 10 + .2 * 10 = 10, y = .8 * 20 = 16: 17. */
    double a2[] = {0.2, 0.8};
    RANGE_IS(PF_HOLT_WINTERS, w, a2, 2, 17);
    /* Two samples: the loop runs once: x = sf * v1, y = (1-sf)(v0 + v1-v0). */
    w = mkwin(0, 2, 2, t, v2);
    RANGE_IS(PF_HOLT_WINTERS, w, a2, 2, 0.2 * 10 + 0.8 * 10);
    w = mkwin(0, 2, 1, t, v2);
    RANGE_NONE(PF_HOLT_WINTERS, w, a, 2);

    /* Bad factors: SM_EINVAL, and Prometheus's message. */
    w = mkwin(0, 2, 3, t, v);
    double out = 0, bad1[] = {1, 0.5}, bad2[] = {0.5, 0}, bad3[] = {-INFINITY, 0.5};
    CHECK_EQ_INT(fn_range_eval(PF_HOLT_WINTERS, w, bad1, 2, &out), SM_EINVAL);
    CHECK_EQ_INT(fn_range_eval(PF_HOLT_WINTERS, w, bad2, 2, &out), SM_EINVAL);
    sm_error err;
    sm_error_clear(&err);
    CHECK_EQ_INT(fn_range_args_check(PF_HOLT_WINTERS, bad1, 2, &err), SM_EINVAL);
    CHECK_EQ_STR(err.msg, "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000");
    sm_error_clear(&err);
    CHECK_EQ_INT(fn_range_args_check(PF_HOLT_WINTERS, bad2, 2, &err), SM_EINVAL);
    CHECK_EQ_STR(err.msg, "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000");
    sm_error_clear(&err);
    CHECK_EQ_INT(fn_range_args_check(PF_HOLT_WINTERS, bad3, 2, &err), SM_EINVAL);
    CHECK_EQ_STR(err.msg, "invalid smoothing factor. Expected: 0 < sf < 1, got: -Inf");
    CHECK_EQ_INT(fn_range_args_check(PF_HOLT_WINTERS, a, 2, NULL), 0);
    CHECK_EQ_INT(fn_range_args_check(PF_HOLT_WINTERS, a, 1, NULL), SM_EINVAL);
    /* NaN compares false both ways, so Prometheus lets it through. */
    double nanf[] = {NAN, 0.5};
    CHECK_EQ_INT(fn_range_args_check(PF_HOLT_WINTERS, nanf, 2, NULL), 0);
    /* An empty window is no error even with bad factors (Prometheus does
     * not call the function then). */
    w = mkwin(0, 2, 0, t, v);
    CHECK_EQ_INT(fn_range_eval(PF_HOLT_WINTERS, w, bad1, 2, &out), 0);
    /* One sample with bad factors: Prometheus checks before counting. */
    w = mkwin(0, 2, 1, t, v);
    CHECK_EQ_INT(fn_range_eval(PF_HOLT_WINTERS, w, bad1, 2, &out), SM_EINVAL);
}

static void test_over_time(void) {
    double t[] = {0, 1, 2, 3}, v[] = {1, 2, 3, 4};
    const fn_window *w = mkwin(0, 3, 4, t, v);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, 2.5);
    RANGE_IS(PF_SUM_OVER_TIME, w, NULL, 0, 10);
    RANGE_IS(PF_COUNT_OVER_TIME, w, NULL, 0, 4);
    RANGE_IS(PF_MIN_OVER_TIME, w, NULL, 0, 1);
    RANGE_IS(PF_MAX_OVER_TIME, w, NULL, 0, 4);
    RANGE_IS(PF_LAST_OVER_TIME, w, NULL, 0, 4);
    RANGE_IS(PF_PRESENT_OVER_TIME, w, NULL, 0, 1);
    /* Deviations from 2.5: 1.5 .5 .5 1.5, squares sum to 5, over 4. */
    RANGE_IS(PF_STDVAR_OVER_TIME, w, NULL, 0, 1.25);
    RANGE_IS(PF_STDDEV_OVER_TIME, w, NULL, 0, sqrt(1.25));
    /* rank .5 * 3 = 1.5: halfway between 2 and 3. rank .75: 1 * .25 + 2 * .75. */
    double q = 0.5;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 2.5);
    q = 0.25;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 1.75);
    q = 1;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 4);
    q = -0.1;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, -INFINITY);
    q = 1.1;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, INFINITY);
    q = NAN;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, NAN);
    /* The window is not reordered by quantile_over_time. */
    double vr[] = {4, 3, 2, 1};
    w = mkwin(0, 3, 4, t, vr);
    q = 0.25;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 1.75);
    CHECK(W.v[0] == 4 && W.v[3] == 1);
    RANGE_IS(PF_LAST_OVER_TIME, w, NULL, 0, 1);

    /* Constant: variance exactly 0. */
    double vc[] = {7, 7, 7};
    w = mkwin(0, 2, 3, t, vc);
    RANGE_IS(PF_STDVAR_OVER_TIME, w, NULL, 0, 0);
    RANGE_IS(PF_STDDEV_OVER_TIME, w, NULL, 0, 0);
    /* One sample: variance 0, everything else that sample. */
    w = mkwin(0, 2, 1, t, vc);
    RANGE_IS(PF_STDDEV_OVER_TIME, w, NULL, 0, 0);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, 7);
    RANGE_IS(PF_CHANGES, w, NULL, 0, 0);
    RANGE_IS(PF_RESETS, w, NULL, 0, 0);

    /* Compensated sum: 1e100 + 1 - 1e100 is 1, not the naive 0. */
    double vk[] = {1e100, 1, -1e100};
    w = mkwin(0, 2, 3, t, vk);
    RANGE_IS(PF_SUM_OVER_TIME, w, NULL, 0, 1);
    /* The incremental mean does not overflow where the plain sum would:
     * 1e308 twice averages to 1e308, not +Inf. */
    double vo[] = {1e308, 1e308};
    w = mkwin(0, 1, 2, t, vo);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, 1e308);
    RANGE_IS(PF_SUM_OVER_TIME, w, NULL, 0, INFINITY);
    /* Once the mean is infinite, finite values and the same infinity keep
     * it; the opposite infinity makes NaN. */
    double vi[] = {1, INFINITY, 3, INFINITY};
    w = mkwin(0, 3, 4, t, vi);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, INFINITY);
    double vi2[] = {-INFINITY, 5};
    w = mkwin(0, 1, 2, t, vi2);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, -INFINITY);
    double vi3[] = {INFINITY, -INFINITY};
    w = mkwin(0, 1, 2, t, vi3);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, NAN);
    RANGE_IS(PF_SUM_OVER_TIME, w, NULL, 0, NAN);
    double vn[] = {1, NAN, 3};
    w = mkwin(0, 2, 3, t, vn);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, NAN);
    RANGE_IS(PF_STDVAR_OVER_TIME, w, NULL, 0, NAN);

    /* min/max skip NaN unless nothing else is there. */
    double vm[] = {NAN, 1, NAN, 3};
    w = mkwin(0, 3, 4, t, vm);
    RANGE_IS(PF_MAX_OVER_TIME, w, NULL, 0, 3);
    RANGE_IS(PF_MIN_OVER_TIME, w, NULL, 0, 1);
    double vm2[] = {2, NAN};
    w = mkwin(0, 1, 2, t, vm2);
    RANGE_IS(PF_MAX_OVER_TIME, w, NULL, 0, 2);
    RANGE_IS(PF_MIN_OVER_TIME, w, NULL, 0, 2);
    RANGE_IS(PF_LAST_OVER_TIME, w, NULL, 0, NAN);
    double vm3[] = {NAN, NAN};
    w = mkwin(0, 1, 2, t, vm3);
    RANGE_IS(PF_MAX_OVER_TIME, w, NULL, 0, NAN);
    RANGE_IS(PF_MIN_OVER_TIME, w, NULL, 0, NAN);
    /* ...and NaN sorts first for quantile_over_time. */
    q = 0;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, NAN);
    w = mkwin(0, 3, 4, t, vm);
    q = 1;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 3);
    q = 0;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, NAN);

    /* changes and resets (Prometheus's own series). */
    double tt[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    double foo[] = {1, 2, 3, 0, 1, 0, 0, 1, 2, 0};
    w = mkwin(0, 9, 10, tt, foo);
    RANGE_IS(PF_RESETS, w, NULL, 0, 3);   /* 3->0, 1->0, 2->0 */
    RANGE_IS(PF_CHANGES, w, NULL, 0, 8);  /* all but 0->0 */
    double cn[] = {NAN, NAN, NAN};
    w = mkwin(0, 2, 3, tt, cn);
    RANGE_IS(PF_CHANGES, w, NULL, 0, 0);
    RANGE_IS(PF_RESETS, w, NULL, 0, 0);
    double cn2[] = {0, NAN, 0};
    w = mkwin(0, 2, 3, tt, cn2);
    RANGE_IS(PF_CHANGES, w, NULL, 0, 2);
    RANGE_IS(PF_RESETS, w, NULL, 0, 0);

    /* A long window (sorted on the heap): 1000 .. 1 reversed; the median
     * is halfway between 500 and 501. */
    static double big_t[1000], big_v[1000];
    for (int i = 0; i < 1000; i++) {
        big_t[i] = i;
        big_v[i] = 1000 - i;
    }
    w = mkwin(0, 999, 1000, big_t, big_v);
    q = 0.5;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 500.5);
    q = 0.9;
    RANGE_IS(PF_QUANTILE_OVER_TIME, w, &q, 1, 1 + 0.9 * 999);
    RANGE_IS(PF_COUNT_OVER_TIME, w, NULL, 0, 1000);
    RANGE_IS(PF_SUM_OVER_TIME, w, NULL, 0, 500500);
    RANGE_IS(PF_AVG_OVER_TIME, w, NULL, 0, 500.5);
    RANGE_IS(PF_RESETS, w, NULL, 0, 999);

    /* Sorting a long window needs the heap: a failed allocation is
     * SM_ENOMEM and no point; short windows never allocate. */
    double out_nomem = -1;
    sm_alloc_fail_after(0);
    int rc_nomem = fn_range_eval(PF_QUANTILE_OVER_TIME, w, &q, 1, &out_nomem);
    sm_ms_t short_t[] = {0, 1000};
    fn_window short_w = {.t = short_t, .v = big_v, .n = 2, .start = 0, .end = 1000};
    int rc_short = fn_range_eval(PF_QUANTILE_OVER_TIME, &short_w, &q, 1, &out_nomem);
    sm_alloc_fail_reset();
    CHECK_EQ_INT(rc_nomem, SM_ENOMEM);
    CHECK_EQ_INT(rc_short, 1);
    CHECK(close_to(out_nomem, 999 * 0.1 + 1000 * 0.9)); /* q .9 of 1000, 999 */

    /* absent_over_time is the evaluator's; unknown ids are refused. */
    CHECK(!fn_is_range(PF_ABSENT_OVER_TIME));
    CHECK(fn_is_range(PF_RATE) && fn_is_range(PF_QUANTILE_OVER_TIME));
    CHECK(!fn_is_range(PF_ABS));
    double out = 0;
    CHECK_EQ_INT(fn_range_eval(PF_ABS, w, NULL, 0, &out), SM_EINVAL);
    CHECK_EQ_INT(fn_range_eval(PF_ABSENT_OVER_TIME, w, NULL, 0, &out), SM_EINVAL);
}

static void test_quantile(void) {
    double a[] = {3, 1, 2};
    CHECK(close_to(fn_quantile(0.5, a, 3), 2));
    CHECK(a[0] == 1 && a[1] == 2 && a[2] == 3); /* sorted in place */
    CHECK(close_to(fn_quantile(0.75, a, 3), 2.5));
    CHECK(close_to(fn_quantile(0, a, 3), 1));
    CHECK(close_to(fn_quantile(1, a, 3), 3));
    CHECK(isnan(fn_quantile(0.5, a, 0)));
    CHECK(isnan(fn_quantile(NAN, a, 3)));
    CHECK(fn_quantile(-1, a, 3) == -INFINITY);
    CHECK(fn_quantile(2, a, 3) == INFINITY);
    double one[] = {42};
    CHECK(close_to(fn_quantile(0.9, one, 1), 42));
    /* NaN sorts first. */
    double b[] = {2, NAN, 1};
    CHECK(isnan(fn_quantile(0, b, 3)));
    CHECK(close_to(fn_quantile(1, b, 3), 2));
    CHECK(isnan(fn_quantile(0.25, b, 3))); /* NaN * .5 + 1 * .5 */
    /* Infinities interpolate to themselves or NaN (Inf * 0). */
    double c[] = {-INFINITY, 0, INFINITY};
    CHECK(fn_quantile(0, c, 3) == -INFINITY);
    CHECK(isnan(fn_quantile(0.5, c, 3)));
}

/* Exchange buckets i and j (bound and count together). */
static void swap_buckets(double *le, double *counts, size_t i, size_t j) {
    double x[2] = {le[i], counts[i]};
    le[i] = le[j];
    counts[i] = counts[j];
    le[j] = x[0];
    counts[j] = x[1];
}

static double hq(double q, const double *le, const double *counts, size_t n) {
    double l[64], c[64];
    memcpy(l, le, n * sizeof *l);
    memcpy(c, counts, n * sizeof *c);
    return fn_histogram_quantile(q, l, c, n);
}

#define HQ_IS(q, le, counts, n, want)                                                   \
    do {                                                                                \
        double got_ = hq((q), (le), (counts), (n));                                     \
        CHECK_MSG(close_to(got_, (want)), "histogram_quantile(%g): got %.17g, want %.17g", \
                  (double)(q), got_, (double)(want));                                   \
    } while (0)

static void test_histogram_quantile(void) {
    double le[] = {1, 2, 4, INFINITY}, cnt[] = {10, 20, 30, 40};
    /* rank = q * 40.  q .5: rank 20, bucket le=2 (first count >= 20):
     * 1 + (2 - 1) * (20 - 10) / 10 = 2. */
    HQ_IS(0.5, le, cnt, 4, 2);
    HQ_IS(0.25, le, cnt, 4, 1);   /* rank 10, lowest bucket from 0: 1 */
    HQ_IS(0.1, le, cnt, 4, 0.4);  /* rank 4: 0 + 1 * 4/10 */
    HQ_IS(0.6, le, cnt, 4, 2.8);  /* rank 24: 2 + 2 * 4/10 */
    HQ_IS(0.9, le, cnt, 4, 4);    /* rank 36, in +Inf: the bound below it */
    HQ_IS(1, le, cnt, 4, 4);
    HQ_IS(0, le, cnt, 4, 0);      /* rank 0 in the lowest bucket: 0 */
    HQ_IS(-0.5, le, cnt, 4, -INFINITY);
    HQ_IS(1.5, le, cnt, 4, INFINITY);
    HQ_IS(NAN, le, cnt, 4, NAN);
    /* Any order in, same answer out. */
    double le_s[] = {4, INFINITY, 1, 2}, cnt_s[] = {30, 40, 10, 20};
    HQ_IS(0.6, le_s, cnt_s, 4, 2.8);
    HQ_IS(0.1, le_s, cnt_s, 4, 0.4);
    /* No +Inf bucket: NaN; only +Inf: NaN (fewer than two buckets);
     * no observations: NaN; no buckets at all: NaN. */
    HQ_IS(0.5, le, cnt, 3, NAN);
    double inf_only[] = {INFINITY}, c1[] = {5};
    HQ_IS(0.5, inf_only, c1, 1, NAN);
    double zero[] = {0, 0, 0, 0};
    HQ_IS(0.5, le, zero, 4, NAN);
    HQ_IS(0.5, le, cnt, 0, NAN);
    /* The q checks come first, even without buckets. */
    HQ_IS(-1, le, cnt, 0, -INFINITY);
    /* Two buckets: 1 and +Inf: anything inside the first interpolates
     * from 0, anything above returns 1. */
    double le2[] = {1, INFINITY}, c2[] = {8, 10};
    HQ_IS(0.4, le2, c2, 2, 0.5); /* rank 4 of 8 in [0, 1] */
    HQ_IS(0.9, le2, c2, 2, 1);

    /* Non-monotonic counts are raised to the running maximum:
     * 10 5 15 20 -> 10 10 15 20; q .6 rank 12 in le=4: 2 + 2 * 2/5 = 2.8
     * (without the fix it would be 2 + 2 * 7/10 = 3.4). */
    double c3[] = {10, 5, 15, 20};
    HQ_IS(0.6, le, c3, 4, 2.8);
    /* Equal upper bounds are merged by summing: le 1,1,2,+Inf with
     * 5,5,15,20 is 1:10 2:15 +Inf:20; q .5 rank 10: 1 (not 1.5). */
    double le4[] = {1, 1, 2, INFINITY}, c4[] = {5, 5, 15, 20};
    HQ_IS(0.5, le4, c4, 4, 1);
    HQ_IS(0.6, le4, c4, 4, 1.4); /* rank 12: 1 + 1 * 2/5 */
    double le5[] = {1, INFINITY, INFINITY}, c5[] = {4, 3, 3};
    HQ_IS(0.5, le5, c5, 3, 0.75); /* 1:4 +Inf:6 -> ... rank 3 of 4 in [0,1] */
    /* A lowest bucket at or below 0 is returned as is; above it the
     * interpolation starts at the previous bound. */
    double le6[] = {-1, 0, 1, INFINITY}, c6[] = {5, 10, 15, 20};
    HQ_IS(0.1, le6, c6, 4, -1);
    HQ_IS(0.4, le6, c6, 4, -0.4); /* rank 8: -1 + 1 * 3/5 */
    HQ_IS(0.6, le6, c6, 4, 0.4);  /* rank 12: 0 + 1 * 2/5 */
    /* Twenty buckets (the long-sort path), shuffled: le k has count k for
     * k = 1..19, +Inf has 20.  q .375: rank 7.5 in le=8: 7 + .5 = 7.5. */
    double le7[20], c7[20];
    for (int k = 1; k <= 19; k++) {
        le7[k - 1] = k;
        c7[k - 1] = k;
    }
    le7[19] = INFINITY;
    c7[19] = 20;
    for (size_t i = 0; i < 20; i++) swap_buckets(le7, c7, i, (i * 7) % 20); /* fixed shuffle */
    HQ_IS(0.375, le7, c7, 20, 7.5);
    HQ_IS(0.5, le7, c7, 20, 10);
    HQ_IS(0.99, le7, c7, 20, 19); /* rank 19.8: in +Inf */
    /* Prometheus's histograms.test at 50 m, worked through.  "positive":
     * 0.1:50 .2:70 1:110 +Inf:120.  q .2: rank 24 in the lowest bucket,
     * .1 * 24/50 = .048; q .8: rank 96 in le=1: .2 + .8 * 26/40 = .72. */
    double lp[] = {0.1, 0.2, 1, INFINITY}, cp[] = {50, 70, 110, 120};
    HQ_IS(0.2, lp, cp, 4, 0.048);
    HQ_IS(0.8, lp, cp, 4, 0.72);
    /* "negative": -.2:10 -.1:20 .3:20 +Inf:30.  q 0: the lowest bound,
     * -.2; q .5: rank 15: -.2 + .1 * 5/10 = -.15; q .8: rank 24 is past
     * every finite bucket's count: .3. */
    double ln[] = {-0.2, -0.1, 0.3, INFINITY}, cn[] = {10, 20, 20, 30};
    HQ_IS(0, ln, cn, 4, -0.2);
    HQ_IS(0.5, ln, cn, 4, -0.15);
    HQ_IS(0.8, ln, cn, 4, 0.3);
    /* "nonmonotonic": .1:20 1:10 10:50 100:40 1000:90 +Inf:80, enveloped
     * to 20 20 50 50 90 90.  q .01: rank .9: .1 * .9/20 = .0045; q .5:
     * rank 45 in le=10: 1 + 9 * 25/30 = 8.5; q .99: rank 89.1 in le=1000:
     * 100 + 900 * 39.1/40 = 979.75. */
    double lm[] = {0.1, 1, 10, 100, 1000, INFINITY}, cm[] = {20, 10, 50, 40, 90, 80};
    HQ_IS(0.01, lm, cm, 6, 0.0045);
    HQ_IS(0.5, lm, cm, 6, 8.5);
    HQ_IS(0.99, lm, cm, 6, 979.75);
    /* "mixed": 0.1, 0.2, 2e-1, 2.0e-1 (one bound three times) with one
     * count each, +Inf 4: 0.1:1 0.2:3 +Inf:4.  q .5: rank 2: .1 + .1 *
     * 1/2 = .15; q .75 and 1: .2.  Two spellings of +Inf alone: NaN. */
    double lx[] = {0.1, 0.2, 0.2, 0.2, INFINITY}, cx[] = {1, 1, 1, 1, 4};
    HQ_IS(0.5, lx, cx, 5, 0.15);
    HQ_IS(0.75, lx, cx, 5, 0.2);
    HQ_IS(1, lx, cx, 5, 0.2);
    double li[] = {INFINITY, INFINITY}, ci[] = {0, 0};
    HQ_IS(0.5, li, ci, 2, NAN);
    /* A NaN count in the middle survives ensureMonotonic, and Go's binary
     * search then probes it first (index 1 of 0..2), goes right, and lands
     * on le=4 with a NaN count below it: NaN, although le=1 holds rank 4
     * (a linear scan would say 0.4). */
    double c9[] = {10, NAN, 30, 40};
    HQ_IS(0.1, le, c9, 4, NAN);
    /* NaN counts: rank NaN finds no bucket, the result is the bound below
     * +Inf. */
    double c8[] = {10, 20, 30, NAN};
    HQ_IS(0.5, le, c8, 4, 4);
}

static void test_elementwise(void) {
    double a[2];
    /* clamp */
    a[0] = 0;
    a[1] = 3;
    ELEM_IS(PF_CLAMP, 5, a, 2, 3);
    ELEM_IS(PF_CLAMP, -1, a, 2, 0);
    ELEM_IS(PF_CLAMP, 2, a, 2, 2);
    ELEM_IS(PF_CLAMP, NAN, a, 2, NAN);
    ELEM_IS(PF_CLAMP, INFINITY, a, 2, 3);
    a[0] = 3;
    a[1] = 0; /* max < min: every element is dropped */
    double out = -1;
    CHECK_EQ_INT(fn_elem_eval(PF_CLAMP, 1, a, 2, &out), 0);
    CHECK(out == -1);
    a[0] = a[1] = 2; /* min == max is fine */
    ELEM_IS(PF_CLAMP, 9, a, 2, 2);
    CHECK_EQ_INT(fn_elem_eval(PF_CLAMP, 1, a, 1, &out), SM_EINVAL);
    a[0] = 1;
    ELEM_IS(PF_CLAMP_MIN, 0, a, 1, 1);
    ELEM_IS(PF_CLAMP_MIN, 5, a, 1, 5);
    ELEM_IS(PF_CLAMP_MIN, NAN, a, 1, NAN); /* Go's Max keeps NaN */
    ELEM_IS(PF_CLAMP_MAX, 0, a, 1, 0);
    ELEM_IS(PF_CLAMP_MAX, 5, a, 1, 1);
    ELEM_IS(PF_CLAMP_MAX, NAN, a, 1, NAN);
    a[0] = NAN; /* a NaN bound makes every value NaN */
    ELEM_IS(PF_CLAMP_MAX, 5, a, 1, NAN);
    a[0] = 0;
    fn_elem_eval(PF_CLAMP_MIN, -0.0, a, 1, &out);
    CHECK(same_bits(out, 0.0)); /* Max(+0, -0) is +0 */
    fn_elem_eval(PF_CLAMP_MAX, -0.0, a, 1, &out);
    CHECK(same_bits(out, -0.0));

    /* round: ties up, to_nearest through its inverse. */
    ELEM_IS(PF_ROUND, 2.5, NULL, 0, 3);
    ELEM_IS(PF_ROUND, -2.5, NULL, 0, -2);
    ELEM_IS(PF_ROUND, 2.4, NULL, 0, 2);
    a[0] = 0.1;
    ELEM_IS(PF_ROUND, 1.234, a, 1, 1.2); /* floor(12.34 + .5) / 10 */
    a[0] = 5;
    ELEM_IS(PF_ROUND, 7, a, 1, 5);  /* floor(1.4 + .5) / .2 */
    ELEM_IS(PF_ROUND, 8, a, 1, 10); /* floor(1.6 + .5) / .2 */
    ELEM_IS(PF_ROUND, NAN, a, 1, NAN);
    ELEM_IS(PF_ROUND, INFINITY, NULL, 0, INFINITY);

    /* sgn keeps zeros and NaN. */
    ELEM_IS(PF_SGN, -3, NULL, 0, -1);
    ELEM_IS(PF_SGN, 7, NULL, 0, 1);
    ELEM_IS(PF_SGN, NAN, NULL, 0, NAN);
    fn_elem_eval(PF_SGN, -0.0, NULL, 0, &out);
    CHECK(same_bits(out, -0.0));

    ELEM_IS(PF_ABS, -2.5, NULL, 0, 2.5);
    ELEM_IS(PF_CEIL, 1.2, NULL, 0, 2);
    ELEM_IS(PF_CEIL, -1.2, NULL, 0, -1);
    ELEM_IS(PF_FLOOR, -1.2, NULL, 0, -2);
    ELEM_IS(PF_EXP, 0, NULL, 0, 1);
    ELEM_IS(PF_EXP, 1, NULL, 0, M_E);
    ELEM_IS(PF_EXP, INFINITY, NULL, 0, INFINITY);
    ELEM_IS(PF_EXP, -INFINITY, NULL, 0, 0);
    ELEM_IS(PF_SQRT, 16, NULL, 0, 4);
    ELEM_IS(PF_SQRT, -1, NULL, 0, NAN);
    ELEM_IS(PF_LN, M_E, NULL, 0, 1);
    ELEM_IS(PF_LN, 0, NULL, 0, -INFINITY);
    ELEM_IS(PF_LN, -1, NULL, 0, NAN);
    fn_elem_eval(PF_LOG2, 8, NULL, 0, &out);
    CHECK(out == 3); /* exact for powers of two */
    fn_elem_eval(PF_LOG2, 0.125, NULL, 0, &out);
    CHECK(out == -3);
    ELEM_IS(PF_LOG2, 10, NULL, 0, 3.321928094887362347870319429489390175864831393);
    ELEM_IS(PF_LOG2, 0, NULL, 0, -INFINITY);
    ELEM_IS(PF_LOG2, -4, NULL, 0, NAN);
    ELEM_IS(PF_LOG2, INFINITY, NULL, 0, INFINITY);
    ELEM_IS(PF_LOG10, 1000, NULL, 0, 3);
    ELEM_IS(PF_LOG10, 0.01, NULL, 0, -2);
    ELEM_IS(PF_LOG10, 0, NULL, 0, -INFINITY);
    ELEM_IS(PF_LOG10, -1, NULL, 0, NAN);
    /* ln, log2 and log10 give Go's bits (math.Log, Go 1.19 on amd64, which
     * Prometheus 2.42 runs): inputs where glibc's log, and log10 as log2
     * times log10(2), gave another last bit.  The expected values are
     * Go's, printed with %a by a Go 1.19 program on this machine. */
    static const struct {
        int fn; /* 0 ln, 1 log2, 2 log10 */
        double x, go;
    } golog[] = {
        {0, 0x1.b755fd74ae859p+6, 0x1.2cbbec441bc32p+2}, /* 109.8339746696014 */
        {0, 0x1.8305754f1d5f4p+6, 0x1.249eaf9ce1966p+2}, /* 96.755330310981492 */
        {0, 0x1.7d36686b251edp+7, 0x1.5003703a51da4p+2}, /* 190.60626540020112 */
        {0, 0x1.859a69d655329p+5, 0x1.f15e329c953cap+1}, /* 48.700397181010267 */
        {1, 0x1.696001183a363p+0, 0x1.fd4a1829cdbc6p-2}, /* 1.4116211589955234 */
        {1, 0x1.1f8fd1b1f2dfap+7, 0x1.cabc0f0b73d65p+2}, /* 143.78089672174229 */
        {1, 0x1.33f4db1675966p+6, 0x1.910fb08bc9f9ap+2}, /* 76.989117003371206 */
        {1, 0x1.5032c43cb6ce9p+6, 0x1.9929acd5f96d4p+2}, /* 84.049576710374495 */
        {2, 0x1.7f683d90b315fp+6, 0x1.fb4a279a582eep+0}, /* 95.851797352724574 */
        {2, 0x1.6bb063111277p+7, 0x1.213ddb0a7a9a2p+1},  /* 181.84450581884767 */
        {2, 0x1.b755fd74ae859p+6, 0x1.0536dc35647d6p+1}, /* 109.8339746696014 */
        {2, 0x1.4a5b7fd8b4f95p+6, 0x1.eabb893ddaa96p+0}, /* 82.589354883237618 */
    };
    for (size_t i = 0; i < sizeof golog / sizeof golog[0]; i++) {
        static const int fns[] = {PF_LN, PF_LOG2, PF_LOG10};
        fn_elem_eval(fns[golog[i].fn], golog[i].x, NULL, 0, &out);
        CHECK_MSG(same_bits(out, golog[i].go), "log %d of %a: %a, Go gives %a", golog[i].fn, golog[i].x, out,
                  golog[i].go);
    }

    /* Trigonometry. */
    ELEM_IS(PF_SIN, M_PI / 2, NULL, 0, 1);
    ELEM_IS(PF_COS, 0, NULL, 0, 1);
    ELEM_IS(PF_TAN, M_PI / 4, NULL, 0, 1);
    ELEM_IS(PF_ASIN, 1, NULL, 0, M_PI / 2);
    ELEM_IS(PF_ACOS, -1, NULL, 0, M_PI);
    ELEM_IS(PF_ATAN, 1, NULL, 0, M_PI / 4);
    ELEM_IS(PF_ASIN, 2, NULL, 0, NAN);
    ELEM_IS(PF_SINH, 0, NULL, 0, 0);
    ELEM_IS(PF_COSH, 0, NULL, 0, 1);
    ELEM_IS(PF_TANH, INFINITY, NULL, 0, 1);
    ELEM_IS(PF_SINH, 1, NULL, 0, (M_E - 1 / M_E) / 2);
    ELEM_IS(PF_ASINH, 0, NULL, 0, 0);
    ELEM_IS(PF_ACOSH, 1, NULL, 0, 0);
    ELEM_IS(PF_ACOSH, 0.5, NULL, 0, NAN);
    ELEM_IS(PF_ATANH, 1, NULL, 0, INFINITY);
    ELEM_IS(PF_ATANH, 0.5, NULL, 0, 0.5493061443340548456976226184612628);
    ELEM_IS(PF_SIN, INFINITY, NULL, 0, NAN);
    ELEM_IS(PF_DEG, M_PI, NULL, 0, 180);
    ELEM_IS(PF_RAD, 180, NULL, 0, M_PI);
    ELEM_IS(PF_DEG, -INFINITY, NULL, 0, -INFINITY);

    CHECK(fn_is_elementwise(PF_ROUND) && fn_is_elementwise(PF_YEAR));
    CHECK(!fn_is_elementwise(PF_TIMESTAMP) && !fn_is_elementwise(PF_RATE));
    CHECK(!fn_is_elementwise(PF_PI) && !fn_is_elementwise(PF_TIME));
    CHECK_EQ_INT(fn_elem_eval(PF_RATE, 1, NULL, 0, &out), SM_EINVAL);
    CHECK_EQ_INT(fn_elem_eval(PF_TIMESTAMP, 1, NULL, 0, &out), SM_EINVAL);
}

typedef struct cal {
    double t;
    double year, month, day, doy, dow, hour, minute, dim;
} cal;

static void test_calendar(void) {
    static const cal cases[] = {
        /* 2006-01-02T22:04:05Z, a Monday (Go's reference time). */
        {1136239445, 2006, 1, 2, 2, 1, 22, 4, 31},
        /* The epoch, a Thursday. */
        {0, 1970, 1, 1, 1, 4, 0, 0, 31},
        /* One second before: 1969-12-31T23:59:59Z, a Wednesday. */
        {-1, 1969, 12, 31, 365, 3, 23, 59, 31},
        /* -0.5 truncates toward zero to 0, as Go's int64() does. */
        {-0.5, 1970, 1, 1, 1, 4, 0, 0, 31},
        /* 59.9 s truncates to 59 s: still minute 0. */
        {59.9, 1970, 1, 1, 1, 4, 0, 0, 31},
        /* Year boundary 2008 -> 2009; 2008 is a leap year (day 366). */
        {1230767999, 2008, 12, 31, 366, 3, 23, 59, 31},
        {1230768000, 2009, 1, 1, 1, 4, 0, 0, 31},
        /* Leap day 2016 and the day after. */
        {1456790399, 2016, 2, 29, 60, 1, 23, 59, 29},
        {1456790400, 2016, 3, 1, 61, 2, 0, 0, 31},
        /* 2016-12-31T13:37:00Z (leap year) and 2022-12-31T13:37:00Z. */
        {1483191420, 2016, 12, 31, 366, 6, 13, 37, 31},
        {1672493820, 2022, 12, 31, 365, 6, 13, 37, 31},
        /* February 2016 has 29 days, February 2017 28. */
        {1454284800, 2016, 2, 1, 32, 1, 0, 0, 29},
        {1485907200, 2017, 2, 1, 32, 3, 0, 0, 28},
        /* 2000 is a leap year (divisible by 400): 2000-02-29, a Tuesday. */
        {951782400, 2000, 2, 29, 60, 2, 0, 0, 29},
        /* 1900 is not (divisible by 100): day 60 is 1 March, a Thursday,
         * and February 1900 (the 15th) has 28 days. */
        {-2203891200, 1900, 3, 1, 60, 4, 0, 0, 31},
        {-2205100800, 1900, 2, 15, 46, 4, 0, 0, 28},
        /* End of April (30 days) and the first of May. */
        {1588291199, 2020, 4, 30, 121, 4, 23, 59, 30},
        {1588291200, 2020, 5, 1, 122, 5, 0, 0, 31},
    };
    static const promql_func_id fs[] = {PF_YEAR, PF_MONTH, PF_DAY_OF_MONTH, PF_DAY_OF_YEAR,
                                        PF_DAY_OF_WEEK, PF_HOUR, PF_MINUTE, PF_DAYS_IN_MONTH};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cal *c = &cases[i];
        double want[8] = {c->year, c->month, c->day, c->doy, c->dow, c->hour, c->minute, c->dim};
        for (int k = 0; k < 8; k++) {
            double out = -1;
            int rc = fn_elem_eval(fs[k], c->t, NULL, 0, &out);
            CHECK_MSG(rc == 1 && out == want[k], "calendar fn %d at %.17g: got %.17g, want %g",
                      (int)fs[k], c->t, out, want[k]);
        }
    }
    /* NaN, the infinities and values beyond int64 all become INT64_MIN
     * seconds (amd64 Go's conversion), so they agree with each other and
     * with -2^63 itself, whatever odd date that is. */
    const double odd[] = {NAN, INFINITY, -INFINITY, 1e300, -1e19};
    for (int k = 0; k < 8; k++) {
        double ref = -1;
        CHECK_EQ_INT(fn_elem_eval(fs[k], -9223372036854775808.0, NULL, 0, &ref), 1);
        CHECK(isfinite(ref));
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            double out = -2;
            fn_elem_eval(fs[k], odd[i], NULL, 0, &out);
            CHECK_MSG(out == ref, "calendar fn %d at %g: %.17g vs %.17g", (int)fs[k], odd[i], out,
                      ref);
        }
    }
    /* That date is Go's well-known time.Unix(math.MinInt64, 0).UTC():
     * 292277026596-12-04 15:30:08, reached through unsigned wrap-around. */
    double y = 0, m = 0, d = 0, h = 0, mi = 0;
    fn_elem_eval(PF_YEAR, NAN, NULL, 0, &y);
    fn_elem_eval(PF_MONTH, NAN, NULL, 0, &m);
    fn_elem_eval(PF_DAY_OF_MONTH, NAN, NULL, 0, &d);
    fn_elem_eval(PF_HOUR, NAN, NULL, 0, &h);
    fn_elem_eval(PF_MINUTE, NAN, NULL, 0, &mi);
    CHECK_MSG(y == 292277026596.0 && m == 12 && d == 4 && h == 15 && mi == 30,
              "NaN date %.0f-%.0f-%.0f %.0f:%.0f", y, m, d, h, mi);
}

/* Properties on random data: they hold whatever the values. */
static void test_random(uint64_t *rng) {
    static double t[512], v[512];
    for (int round = 0; round < 200; round++) {
        size_t n = 2 + check_rand_below(rng, 300);
        double start = -(double)check_rand_below(rng, 1000);
        double tt = start + (double)check_rand_below(rng, 100);
        double val = (double)check_rand_below(rng, 1000);
        for (size_t i = 0; i < n; i++) {
            t[i] = tt;
            v[i] = val;
            tt += 1 + (double)check_rand_below(rng, 60);
            if (check_rand_below(rng, 20) == 0)
                val = (double)check_rand_below(rng, 50); /* reset */
            else
                val += (double)check_rand_below(rng, 100) / 8;
        }
        double end = t[n - 1] + (double)check_rand_below(rng, 100);
        const fn_window *w = mkwin(start, end, n, t, v);
        double rate = 0, inc = 0, mn = 0, mx = 0, qv = 0, cnt = 0, sum = 0, avg = 0;
        double q = (double)check_rand_below(rng, 1001) / 1000;
        CHECK_EQ_INT(fn_range_eval(PF_RATE, w, NULL, 0, &rate), 1);
        CHECK_EQ_INT(fn_range_eval(PF_INCREASE, w, NULL, 0, &inc), 1);
        CHECK_MSG(close_to(rate * (end - start), inc) || fabs(rate * (end - start) - inc) < 1e-9,
                  "rate %.17g * range %g vs increase %.17g", rate, end - start, inc);
        CHECK(inc >= 0);
        fn_range_eval(PF_MIN_OVER_TIME, w, NULL, 0, &mn);
        fn_range_eval(PF_MAX_OVER_TIME, w, NULL, 0, &mx);
        fn_range_eval(PF_QUANTILE_OVER_TIME, w, &q, 1, &qv);
        CHECK_MSG(qv >= mn && qv <= mx, "quantile %g = %g outside [%g, %g]", q, qv, mn, mx);
        fn_range_eval(PF_COUNT_OVER_TIME, w, NULL, 0, &cnt);
        fn_range_eval(PF_SUM_OVER_TIME, w, NULL, 0, &sum);
        fn_range_eval(PF_AVG_OVER_TIME, w, NULL, 0, &avg);
        CHECK(cnt == (double)n);
        CHECK_MSG(fabs(avg - sum / cnt) <= 1e-9 * fmax(1, fabs(avg)), "avg %.17g vs %.17g", avg,
                  sum / cnt);

        /* histogram_quantile ignores the order of its buckets. */
        size_t nb = 2 + check_rand_below(rng, 30);
        double le[64], c[64], le2[64], c2[64];
        double acc = 0;
        for (size_t i = 0; i < nb; i++) {
            le[i] = (i + 1 == nb) ? INFINITY : (double)(i + 1) * 0.5;
            acc += (double)check_rand_below(rng, 10);
            c[i] = acc;
        }
        memcpy(le2, le, sizeof le);
        memcpy(c2, c, sizeof c);
        for (size_t i = nb - 1; i > 0; i--) swap_buckets(le2, c2, i, check_rand_below(rng, i + 1));
        double h1 = fn_histogram_quantile(q, le, c, nb);
        double h2 = fn_histogram_quantile(q, le2, c2, nb);
        CHECK_MSG(same_bits(h1, h2) || (isnan(h1) && isnan(h2)), "order changed %g -> %g", h1,
                  h2);
    }
}

/* Prometheus 2.42's extrapolatedRate written out plainly, with no memo and
 * no shortcut: the memoised fast path must give the same bits. */
static double rate_reference(const sm_ms_t *t, const double *v, size_t n, sm_ms_t start, sm_ms_t end,
                             bool is_counter, bool is_rate) {
    double result = v[n - 1] - v[0];
    if (is_counter) {
        double prev = v[0];
        for (size_t i = 1; i < n; i++) {
            if (v[i] < prev) result += prev;
            prev = v[i];
        }
    }
    double to_start = (double)(t[0] - start) / 1000, to_end = (double)(end - t[n - 1]) / 1000;
    double sampled = (double)(t[n - 1] - t[0]) / 1000, avg = sampled / (double)(n - 1);
    if (is_counter && result > 0 && v[0] >= 0) {
        double to_zero = sampled * (v[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    double threshold = avg * 1.1, interval = sampled;
    interval += to_start < threshold ? to_start : avg / 2;
    interval += to_end < threshold ? to_end : avg / 2;
    double factor = interval / sampled;
    if (is_rate) factor /= (double)(end - start) / 1000;
    return result * factor;
}

/* Windows sliding over regular and jittered series, one memo shared by all
 * of them as the evaluator shares it: counters far from zero (the
 * shortcut), near zero (the clamp), with resets, gauges, huge and tiny
 * values. */
static void test_rate_memo(uint64_t *rng) {
    static sm_ms_t t[4096];
    static double v[4096];
    static const promql_func_id fs[] = {PF_RATE, PF_INCREASE, PF_DELTA};
    uint64_t mismatches = 0, windows = 0;
    for (int round = 0; round < 300; round++) {
        size_t n = 50 + check_rand_below(rng, 2000);
        int64_t scrape = 1000 * (1 + (int64_t)check_rand_below(rng, 60));
        int64_t jitter = check_rand_below(rng, 3) == 0 ? (int64_t)check_rand_below(rng, 50) : 0;
        double base = 0;
        switch (check_rand_below(rng, 4)) {
        case 0: base = 0; break;
        case 1: base = (double)check_rand_below(rng, 100); break;
        case 2: base = 1e12 * (double)(1 + check_rand_below(rng, 1000)); break;
        default: base = -(double)check_rand_below(rng, 1000); break; /* a gauge below zero */
        }
        double val = base;
        sm_ms_t tt = (sm_ms_t)check_rand_below(rng, 100000) - 50000;
        for (size_t i = 0; i < n; i++) {
            t[i] = tt + (jitter ? (int64_t)check_rand_below(rng, (uint64_t)jitter) : 0);
            v[i] = val;
            tt += scrape;
            if (check_rand_below(rng, 200) == 0)
                val = (double)check_rand_below(rng, 10); /* reset */
            else
                val += (double)check_rand_below(rng, 1000) / 16 * (check_rand_below(rng, 8) ? 1 : 1e-9);
        }
        int64_t range = scrape * (int64_t)(2 + check_rand_below(rng, 20));
        int64_t step = scrape * (int64_t)(1 + check_rand_below(rng, 3)) / (1 + (int64_t)check_rand_below(rng, 2));
        fn_rate_memo memo = {0};
        promql_func_id f = fs[check_rand_below(rng, 3)];
        size_t lo = 0, hi = 0;
        for (sm_ms_t e = t[0] + range; e <= t[n - 1]; e += step) {
            sm_ms_t st = e - range;
            while (lo < n && t[lo] < st) lo++;
            while (hi < n && t[hi] <= e) hi++;
            if (hi - lo < 2) continue;
            fn_window w = {.t = t + lo, .v = v + lo, .n = hi - lo, .start = st, .end = e, .memo = &memo};
            double got = 0, want = rate_reference(t + lo, v + lo, hi - lo, st, e, f != PF_DELTA, f == PF_RATE);
            CHECK_EQ_INT(fn_range_eval(f, &w, NULL, 0, &got), 1);
            windows++;
            if (!same_bits(got, want) && !(isnan(got) && isnan(want))) {
                if (!mismatches)
                    CHECK_MSG(false, "function %d window [%lld, %lld] n %zu: %.17g, reference %.17g", (int)f,
                              (long long)st, (long long)e, hi - lo, got, want);
                mismatches++;
            }
        }
    }
    CHECK_MSG(mismatches == 0, "%llu of %llu windows differ", (unsigned long long)mismatches,
              (unsigned long long)windows);
    CHECK(windows > 10000);
}

int main(void) {
    uint64_t rng = check_seed();
    test_rate_family();
    test_irate_idelta();
    test_regression();
    test_holt_winters();
    test_over_time();
    test_quantile();
    test_histogram_quantile();
    test_elementwise();
    test_calendar();
    test_random(&rng);
    test_rate_memo(&rng);
    return check_done();
}
