/* SPDX-License-Identifier: Apache-2.0
 *
 * test_anomaly_funcs.c - the PromQL anomaly functions on a real database:
 * a daily-seasonal series with noise and one spike, nine days at one
 * minute.  The expected value follows the seasonal shape, the band holds
 * the ordinary points, the score crosses 0.5 at the spike and not before,
 * range and instant queries agree, labels lose __name__, and bad
 * training windows are execution errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine.h"
#include "ml/score.h"
#include "tsdb/tsdb.h"

#define MIN 60000LL
static const sm_ms_t NOW = 1767225600000LL; /* 2026-01-01T00:00:00Z */

static double level(sm_ms_t t) {
    double day = (double)(t % 86400000) / 86400000.0;
    return 100 + 20 * sin(2 * M_PI * day);
}

static double q1(engine *e, const char *q, sm_ms_t t, char *labels, size_t cap) {
    sm_arena *a = sm_arena_new(0, 0);
    promql_result r;
    sm_error err = {0};
    double v = NAN;
    int rc = engine_query_instant(e, q, t, a, &r, &err);
    CHECK_MSG(rc == 0, "%s: %s", q, err.msg);
    if (!rc && r.type == PROMQL_VECTOR && r.nseries == 1) {
        v = r.series[0].points[0].v;
        if (labels) sm_labels_format(&r.series[0].labels, labels, cap);
    }
    sm_arena_free(a);
    return v;
}

int main(void) {
    uint64_t rng = check_seed();
    const char *dir = check_tmpdir("anomfn");
    char dd[512];
    snprintf(dd, sizeof dd, "%s/data", dir);
    tsdb *db;
    CHECK_TSDB_OPEN(dd, 30 * 86400000LL, &db);
    const sm_ms_t from = NOW - 9 * 86400000LL, spike = NOW - 30 * MIN;
    size_t n = (size_t)((NOW - from) / MIN) + 1;
    tsdb_sample *s = calloc(n, sizeof *s);
    for (size_t k = 0; k < n; k++) {
        sm_ms_t t = from + (sm_ms_t)k * MIN;
        double noise = ((double)check_rand_below(&rng, 1000) / 1000.0 - 0.5) * 2;
        s[k] = (tsdb_sample){t, level(t) + noise + (t == spike ? 60 : 0)};
    }
    sm_label lv[2] = {{"__name__", "load"}, {"host", "a"}};
    tsdb_series_in in = {{lv, 2}, s, (uint32_t)n};
    CHECK_OK(tsdb_append(db, &in, 1, NULL, NULL));
    free(s);
    engine_opts eo;
    engine_opts_default(&eo);
    engine *e;
    CHECK_OK(engine_new(&eo, db, &e, NULL));

    char lb[256] = "";
    const sm_ms_t calm = NOW - 3 * 3600000;
    double ex = q1(e, "baseline_expected(load)", calm, lb, sizeof lb);
    CHECK_MSG(fabs(ex - level(calm)) < 2, "expected %g, level %g", ex, level(calm));
    CHECK_EQ_STR(lb, "{host=\"a\"}");
    double lo = q1(e, "baseline_lower(load)", calm, NULL, 0), hi = q1(e, "baseline_upper(load)", calm, NULL, 0);
    CHECK_MSG(lo < ex && ex < hi && hi - lo < 20, "band %g..%g around %g", lo, hi, ex);
    double sc = q1(e, "anomaly_score(load)", calm, NULL, 0);
    double ss = q1(e, "anomaly_score(load)", spike, NULL, 0);
    CHECK_MSG(sc < ML_SCORE_THRESHOLD && ss > ML_SCORE_THRESHOLD, "calm %g, spike %g", sc, ss);
    double s2 = q1(e, "anomaly_score(load, \"2d\")", spike, NULL, 0);
    CHECK_MSG(s2 > ML_SCORE_THRESHOLD, "2d window: spike %g", s2);
    double ss2 = q1(e, "anomaly_score(avg by (host) (load * 2))", spike, NULL, 0);
    CHECK_MSG(ss2 > ML_SCORE_THRESHOLD, "expression argument: spike %g", ss2);

    /* A range query over the last two hours agrees with instant ones. */
    sm_arena *a = sm_arena_new(0, 0);
    promql_result r;
    sm_error err = {0};
    CHECK_OK_ERR(engine_query_range(e, "anomaly_score(load)", NOW - 2 * 3600000, NOW, MIN, a, &r, &err), &err);
    CHECK(r.type == PROMQL_MATRIX && r.nseries == 1);
    if (r.nseries == 1) {
        CHECK_EQ_INT(r.series[0].npoints, 121);
        size_t above = 0;
        for (size_t k = 0; k < r.series[0].npoints; k++) {
            above += r.series[0].points[k].v > ML_SCORE_THRESHOLD;
            if (r.series[0].points[k].t == spike)
                CHECK_MSG(fabs(r.series[0].points[k].v - ss) < 1e-9, "range %g, instant %g", r.series[0].points[k].v, ss);
        }
        CHECK_MSG(above >= 1 && above <= 3, "%zu points above the threshold", above);
    }
    /* Refusals. */
    CHECK_EQ_INT(engine_query_instant(e, "anomaly_score(load, \"soon\")", NOW, a, &r, &err), SM_EINVAL);
    CHECK(engine_error_is_exec(&err));
    sm_error_clear(&err);
    CHECK_EQ_INT(engine_query_instant(e, "anomaly_score(load, \"1m\")", NOW, a, &r, &err), SM_EINVAL);
    sm_error_clear(&err);
    CHECK_EQ_INT(engine_query_instant(e, "anomaly_score(load[5m])", NOW, a, &r, &err), SM_EINVAL);
    CHECK(!engine_error_is_exec(&err)); /* a type error: bad_data */
    /* No data: empty. */
    CHECK_OK(engine_query_instant(e, "anomaly_score(nothing_here)", NOW, a, &r, NULL));
    CHECK(r.nseries == 0);
    sm_arena_free(a);
    engine_free(e);
    CHECK_OK(tsdb_close(db, NULL));
    check_rmdir(dir);
    return check_done();
}
