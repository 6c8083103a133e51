/* SPDX-License-Identifier: Apache-2.0
 *
 * test_engine.c - the PromQL evaluator against a real tsdb in a temporary
 * directory: selectors with lookback and staleness, offset and @,
 * subqueries, vector matching and its errors, aggregations, label
 * functions, absent, the sample and time limits, and (seeded) instant
 * versus range evaluation of the same expressions on random data.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "query/engine.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/tsdb.h"

static tsdb *db;
static engine *eng;
static sm_arena *ar;

static double stale_nan(void) {
    uint64_t b = SM_STALE_NAN_BITS;
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Append samples to the series written as "name{a=\"b\",...}" (no spaces). */
static void add(const char *spec, const sm_ms_t *ts, const double *vs, size_t n) {
    sm_label l[16];
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    uint32_t nl = 0;
    char *brace = strchr(buf, '{');
    if (brace) *brace = '\0';
    if (buf[0]) {
        l[nl].name = "__name__";
        l[nl++].value = sm_arena_strdup(ar, buf);
    }
    if (brace) {
        char *p = brace + 1;
        while (*p && *p != '}') {
            char *eq = strchr(p, '=');
            *eq = '\0';
            char *val = eq + 2;
            char *q = strchr(val, '"');
            *q = '\0';
            l[nl].name = sm_arena_strdup(ar, p);
            l[nl++].value = sm_arena_strdup(ar, val);
            p = q + 1;
            if (*p == ',') p++;
        }
    }
    sm_labels_sort(l, nl);
    tsdb_sample *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].t = ts[i];
        s[i].v = vs[i];
    }
    tsdb_series_in in = {.labels = {.v = l, .n = nl}, .samples = s, .n = (uint32_t)n};
    tsdb_append_result res;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(tsdb_append(db, &in, 1, &res, &err), &err);
    free(s);
}

/* spec, every `step` ms from t0, n samples with v = v0 + i * dv. */
static void add_linear(const char *spec, sm_ms_t t0, sm_ms_t step, size_t n, double v0, double dv) {
    sm_ms_t *ts = malloc(n * sizeof *ts);
    double *vs = malloc(n * sizeof *vs);
    for (size_t i = 0; i < n; i++) {
        ts[i] = t0 + (sm_ms_t)i * step;
        vs[i] = v0 + (double)i * dv;
    }
    add(spec, ts, vs, n);
    free(ts);
    free(vs);
}

static int query(const char *q, sm_ms_t t, promql_result *r, sm_error *err) {
    sm_error_clear(err);
    return engine_query_instant(eng, q, t, ar, r, err);
}

/* The value of the result series whose labels format as `want` ("{}" for
 * none), NAN when absent; *count gets the series count. */
static double value_of(const promql_result *r, const char *want) {
    for (size_t i = 0; i < r->nseries; i++) {
        char buf[512];
        sm_labels_format(&r->series[i].labels, buf, sizeof buf);
        if (strcmp(buf, want) == 0) return r->series[i].points[0].v;
    }
    return NAN;
}

#define CHECK_NEAR(a, b)                                                                    \
    do {                                                                                    \
        double a_ = (a), b_ = (b);                                                          \
        CHECK_MSG((isnan(a_) && isnan(b_)) || fabs(a_ - b_) <= 1e-9 * (fabs(b_) + 1),       \
                  "%s: got %.17g, expected %.17g", #a, a_, b_);                             \
    } while (0)

/* Instant query q at t gives exactly n series; returns the result. */
static promql_result expect_n(const char *q, sm_ms_t t, size_t n) {
    promql_result r;
    sm_error err;
    memset(&r, 0, sizeof r);
    int rc = query(q, t, &r, &err);
    CHECK_MSG(rc == 0, "%s: rc %d (%s)", q, rc, err.msg);
    CHECK_MSG(r.nseries == n, "%s at %lld: %zu series, expected %zu", q, (long long)t, r.nseries,
              n);
    return r;
}

static double scalar_at(const char *q, sm_ms_t t) {
    promql_result r = expect_n(q, t, 1);
    CHECK_EQ_INT(r.type, PROMQL_SCALAR);
    return r.nseries ? r.series[0].points[0].v : NAN;
}

/* One instant query and what it must give: nseries series, and when
 * `labels` is set, that series (as sm_labels_format writes it) = value. */
typedef struct qcase {
    const char *q;
    sm_ms_t t;
    size_t nseries;
    const char *labels;
    double value;
} qcase;

static void run_cases(const qcase *cs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        promql_result r = expect_n(cs[i].q, cs[i].t, cs[i].nseries);
        if (!cs[i].labels) continue;
        double got = value_of(&r, cs[i].labels);
        CHECK_MSG((isnan(got) && isnan(cs[i].value)) ||
                      fabs(got - cs[i].value) <= 1e-9 * (fabs(cs[i].value) + 1),
                  "%s at %lld: %s = %.17g, expected %.17g", cs[i].q, (long long)cs[i].t,
                  cs[i].labels, got, cs[i].value);
    }
}
#define RUN_CASES(cs) run_cases((cs), sizeof(cs) / sizeof *(cs))

static void expect_exec_error(const char *q, sm_ms_t t, const char *fragment) {
    promql_result r;
    sm_error err;
    int rc = query(q, t, &r, &err);
    CHECK_MSG(rc == SM_EINVAL && engine_error_is_exec(&err), "%s: rc %d (%s), want exec error", q,
              rc, err.msg);
    CHECK_MSG(strstr(err.msg, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", q, err.msg,
              fragment);
}

static void test_selectors(void) {
    /* a{x="1"}: 0..10 every 10 s; a stale marker at 200 s, then 5 at 250 s. */
    sm_ms_t ts[] = {0, 10000, 20000, 30000, 200000, 250000};
    double vs[] = {0, 1, 2, 3, stale_nan(), 5};
    add("sel{x=\"1\"}", ts, vs, 6);
    add_linear("sel{x=\"2\"}", 0, 60000, 11, 100, 1);
    static const qcase cs[] = {
        {"sel", 30000, 2, "sel{x=\"1\"}", 3},
        {"sel", 30000, 2, "sel{x=\"2\"}", 100},
        /* At 330 s the newest sample is 5 at 250 s; at 199.999 s the one
         * at 30 s is still inside the closed lookback window ... */
        {"sel{x=\"1\"}", 330000, 1, "sel{x=\"1\"}", 5},
        {"sel{x=\"1\"}", 199999, 1, "sel{x=\"1\"}", 3},
        /* ... but the stale marker at 200 s hides it from 200 s on. */
        {"sel{x=\"1\"}", 200000, 0, NULL, 0},
        {"sel{x=\"1\"}", 250000, 1, "sel{x=\"1\"}", 5},
        /* The lookback boundary on a clean series: last sample at 600 s. */
        {"sel{x=\"2\"}", 900000, 1, "sel{x=\"2\"}", 110},
        {"sel{x=\"2\"}", 900001, 0, NULL, 0},
        /* Range windows are closed at both ends and skip stale markers. */
        {"count_over_time(sel{x=\"1\"}[30s])", 30000, 1, "{x=\"1\"}", 4},
        {"count_over_time(sel{x=\"1\"}[250s])", 250000, 1, "{x=\"1\"}", 5},
        /* offset and @ */
        {"sel{x=\"2\"} offset 2m", 300000, 1, "sel{x=\"2\"}", 103},
        {"sel{x=\"2\"} @ 120", 600000, 1, "sel{x=\"2\"}", 102},
        {"sel{x=\"2\"} @ 300 offset 1m", 0, 1, "sel{x=\"2\"}", 104},
        {"timestamp(sel{x=\"2\"} @ 130)", 600000, 1, "{x=\"2\"}", 120},
        {"timestamp(sel{x=\"2\"})", 150000, 1, "{x=\"2\"}", 120},
        {"last_over_time(sel{x=\"2\"}[5m])", 150000, 1, "sel{x=\"2\"}", 102}, /* keeps the name */
    };
    RUN_CASES(cs);
    promql_result r = expect_n("sel{x=\"1\"}[250s]", 250000, 1);
    CHECK_EQ_INT(r.type, PROMQL_MATRIX);
    if (r.nseries) CHECK_EQ_INT(r.series[0].npoints, 5); /* 0 10 20 30 250; not 200 */
}

static void test_subqueries(void) {
    add_linear("sq", 0, 10000, 100, 0, 1); /* v = t/10 s */
    static const qcase cs[] = {
        /* [60s:20s] at 100 s: inner steps 40 60 80 100 s -> 4+6+8+10 */
        {"sum_over_time(sq[60s:20s])", 100000, 1, "{}", 28},
        /* Alignment to multiples of the step: at 105 s, steps 60 80 100. */
        {"sum_over_time(sq[50s:20s])", 105000, 1, "{}", 24},
        {"sum_over_time(sq[60s:20s] offset 20s)", 120000, 1, "{}", 28},
        /* @ on the subquery fixes it whatever the evaluation time. */
        {"sum_over_time(sq[60s:20s] @ 100)", 900000, 1, "{}", 28},
        /* Default step (1 m): [5m:] at 600 s -> 300..600 every 60 s. */
        {"count_over_time(sq[5m:])", 600000, 1, "{}", 6},
        /* Negative times align correctly: steps -40 s and -20 s. */
        {"count_over_time(vector(1)[50s:20s])", -5000, 1, "{}", 2},
    };
    RUN_CASES(cs);
}

static void test_binops(void) {
    add_linear("m{i=\"a\",j=\"x\"}", 0, 10000, 10, 1, 0);
    add_linear("m{i=\"b\",j=\"x\"}", 0, 10000, 10, 2, 0);
    add_linear("n{i=\"a\"}", 0, 10000, 10, 10, 0);
    add_linear("n{i=\"b\"}", 0, 10000, 10, 20, 0);
    add_linear("p{i=\"a\"}", 0, 10000, 10, 5, 0);
    add_linear("o{i=\"a\",k=\"1\"}", 0, 10000, 10, 7, 0);
    add_linear("o{i=\"a\",k=\"2\"}", 0, 10000, 10, 8, 0);
    const sm_ms_t t = 50000;
    static const qcase cs[] = {
        {"m + on(i) n", 50000, 2, "{i=\"a\"}", 11},
        {"m * on(i) group_left() n", 50000, 2, "{i=\"b\", j=\"x\"}", 40},
        {"m > 1", 50000, 1, "m{i=\"b\", j=\"x\"}", 2}, /* filtering keeps the name */
        {"m > bool 1", 50000, 2, "{i=\"a\", j=\"x\"}", 0},
        {"1 < m", 50000, 1, "m{i=\"b\", j=\"x\"}", 2}, /* the vector's value */
        {"m and on(i) n{i=\"a\"}", 50000, 1, "m{i=\"a\", j=\"x\"}", 1},
        {"m unless on(i) n{i=\"a\"}", 50000, 1, "m{i=\"b\", j=\"x\"}", 2},
        {"n or m", 50000, 4, NULL, 0},
        {"n or on(i) m", 50000, 2, NULL, 0},
        /* group_left(__name__) brings the one side's name back after
         * arithmetic dropped the many side's (resultMetric's order). */
        {"o + on(i) group_left(__name__) n", 50000, 2, "n{i=\"a\", k=\"1\"}", 17},
        {"o > bool on(i) group_left(__name__) n", 50000, 2, "{i=\"a\", k=\"1\"}", 0},
        {"o + on(i) group_left() n", 50000, 2, "{i=\"a\", k=\"2\"}", 18},
        {"-n", 50000, 2, "{i=\"b\"}", -20},
    };
    RUN_CASES(cs);
    CHECK_NEAR(scalar_at("2 ^ 10 % 7", t), fmod(pow(2, 10), 7));
    CHECK_NEAR(scalar_at("1 atan2 1", t), atan2(1, 1));
    /* Errors, in Prometheus's words. */
    expect_exec_error("n + on(i) o", t,
                      "found duplicate series for the match group {i=\"a\"} on the right hand-side "
                      "of the operation: [{__name__=\"o\", i=\"a\", k=\"2\"}, {__name__=\"o\", "
                      "i=\"a\", k=\"1\"}];many-to-many matching not allowed: matching labels "
                      "must be unique on one side");
    expect_exec_error("o + on(i) n", t,
                      "multiple matches for labels: many-to-one matching must be explicit "
                      "(group_left/group_right)");
    expect_exec_error("{__name__=~\"n|p\", i=\"a\"} * 2", t,
                      "vector cannot contain metrics with the same labelset");
}

static void test_aggregations(void) {
    add_linear("ag{g=\"1\",i=\"a\"}", 0, 10000, 10, 1, 0);
    add_linear("ag{g=\"1\",i=\"b\"}", 0, 10000, 10, 3, 0);
    add_linear("ag{g=\"2\",i=\"c\"}", 0, 10000, 10, 10, 0);
    add_linear("ag{g=\"2\",i=\"d\"}", 0, 10000, 10, 10, 0);
    const sm_ms_t t = 50000;
    /* stddev: mean 6, squared deviations 25 9 16 16. */
    static const qcase cs[] = {
        {"sum by (g) (ag)", 50000, 2, "{g=\"1\"}", 4},
        {"avg without (i) (ag)", 50000, 2, "{g=\"2\"}", 10},
        {"stdvar(ag)", 50000, 1, "{}", 66.0 / 4},
        {"count_values(\"val\", ag)", 50000, 3, "{val=\"10\"}", 2},
        {"count_values by (g) (\"val\", ag)", 50000, 3, "{g=\"2\", val=\"10\"}", 2},
        {"bottomk by (g) (1, ag)", 50000, 2, "ag{g=\"1\", i=\"a\"}", 1},
        {"quantile(0.5, ag)", 50000, 1, "{}", 6.5},
        {"max by (g) (ag) - min by (g) (ag)", 50000, 2, "{g=\"1\"}", 2},
    };
    RUN_CASES(cs);
    promql_result r = expect_n("stddev(ag)", t, 1);
    CHECK_NEAR(value_of(&r, "{}"), sqrt(66.0 / 4));
    r = expect_n("topk(3, ag)", t, 3);
    if (r.nseries == 3) {
        CHECK_NEAR(r.series[0].points[0].v, 10);
        CHECK_NEAR(r.series[2].points[0].v, 3);
        char buf[256];
        sm_labels_format(&r.series[2].labels, buf, sizeof buf);
        CHECK_EQ_STR(buf, "ag{g=\"1\", i=\"b\"}");
    }
    r = expect_n("sort_desc(ag)", t, 4);
    if (r.nseries == 4) CHECK_NEAR(r.series[3].points[0].v, 1);
    r = expect_n("sort(ag)", t, 4);
    if (r.nseries == 4) CHECK_NEAR(r.series[0].points[0].v, 1);
}

/* The result order of topk and sort where values tie or are NaN, as 2.42's
 * heap and Go's insertion sort leave it (worked through by hand). */
static void test_tie_order(void) {
    double tv[] = {1, 2, 2, 3}, sv[] = {NAN, 1, NAN, 1};
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "tie{i=\"%s\"}", names[i]);
        add_linear(spec, 0, 10000, 10, tv[i], 0);
        snprintf(spec, sizeof spec, "srt{i=\"%s\"}", names[i]);
        add_linear(spec, 0, 10000, 10, sv[i], 0);
    }
    promql_result r = expect_n("topk(2, tie)", 50000, 2);
    const char *want_topk[] = {"d", "c"}; /* not b: the heap replaced it */
    for (size_t i = 0; i < r.nseries && i < 2; i++)
        CHECK_EQ_STR(sm_labels_get(&r.series[i].labels, "i"), want_topk[i]);
    r = expect_n("sort(srt)", 50000, 4);
    const char *want_sort[] = {"b", "d", "c", "a"}; /* NaNs last, in reverse */
    for (size_t i = 0; i < r.nseries && i < 4; i++)
        CHECK_EQ_STR(sm_labels_get(&r.series[i].labels, "i"), want_sort[i]);
}

static void test_label_functions(void) {
    add_linear("lf{src=\"web-01\",x=\"y\"}", 0, 10000, 10, 1, 0);
    const sm_ms_t t = 50000;
    static const qcase cs[] = {
        {"label_replace(lf, \"host\", \"$1-${2}x$$\", \"src\", \"(\\\\w+)-(\\\\d+)\")", 50000, 1,
         "lf{host=\"web-01x$\", src=\"web-01\", x=\"y\"}", 1},
        {"label_replace(lf, \"host\", \"$name\", \"src\", \"(?P<name>w.b)-.*\")", 50000, 1,
         "lf{host=\"web\", src=\"web-01\", x=\"y\"}", 1},
        /* Fully anchored: a partial match changes nothing. */
        {"label_replace(lf, \"host\", \"$1\", \"src\", \"web\")", 50000, 1,
         "lf{src=\"web-01\", x=\"y\"}", 1},
        {"label_join(lf, \"j\", \"/\", \"src\", \"x\", \"none\")", 50000, 1,
         "lf{j=\"web-01/y/\", src=\"web-01\", x=\"y\"}", 1},
        {"absent(nothere{a=\"b\", c=~\"d\"})", 50000, 1, "{a=\"b\"}", 1},
        {"absent(lf)", 50000, 0, NULL, 0},
        {"absent_over_time(nothere{q=\"1\"}[1m])", 50000, 1, "{q=\"1\"}", 1},
        {"absent_over_time(lf[1m])", 50000, 0, NULL, 0},
        {"vector(time())", 50000, 1, "{}", 50},
    };
    RUN_CASES(cs);
    expect_exec_error("label_replace(lf, \"h\", \"\", \"src\", \"(.*\")", t,
                      "invalid regular expression in label_replace(): (.*");
    expect_exec_error("label_replace(lf, \"1h\", \"\", \"src\", \"(.*)\")", t,
                      "invalid destination label name in label_replace(): 1h");
    CHECK_NEAR(scalar_at("scalar(lf)", t), 1);
    CHECK_NEAR(scalar_at("scalar(nothere)", t), NAN);
}

static void test_histograms(void) {
    add_linear("h_bucket{le=\"0.1\"}", 0, 10000, 10, 10, 0);
    add_linear("h_bucket{le=\"1\"}", 0, 10000, 10, 20, 0);
    add_linear("h_bucket{le=\"+Inf\"}", 0, 10000, 10, 20, 0);
    add_linear("h_bucket{le=\"bogus\"}", 0, 10000, 10, 99, 0);
    promql_result r = expect_n("histogram_quantile(0.5, h_bucket)", 50000, 1);
    CHECK_NEAR(value_of(&r, "{}"), 0.1);
    expect_n("histogram_count(h_bucket)", 50000, 0);
}

static void test_limits(void) {
    add_linear("lim{i=\"1\"}", 0, 1000, 2000, 0, 1);
    add_linear("lim{i=\"2\"}", 0, 1000, 2000, 0, 1);
    engine_opts o;
    engine_opts_default(&o);
    o.max_samples = 50;
    engine *small;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(engine_new(&o, db, &small, &err), &err);
    promql_result r;
    int rc = engine_query_instant(small, "sum_over_time(lim[1m])", 1000000, ar, &r, &err);
    CHECK_EQ_INT(rc, SM_ELIMIT);
    CHECK(strstr(err.msg, "query processing would load too many samples into memory") != NULL);
    rc = engine_query_instant(small, "lim", 1000000, ar, &r, &err);
    CHECK_EQ_INT(rc, 0);
    rc = engine_query_range(small, "lim", 0, 1000000, 10000, ar, &r, &err);
    CHECK_EQ_INT(rc, SM_ELIMIT);
    engine_free(small);

    o.max_samples = 0;
    o.timeout_ms = 1;
    CHECK_OK_ERR(engine_new(&o, db, &small, &err), &err);
    rc = engine_query_range(small, "sum_over_time(lim[30m:1s])", 0, 2000000, 1000, ar, &r, &err);
    CHECK_EQ_INT(rc, SM_ETIMEOUT);
    CHECK(strstr(err.msg, "query timed out") != NULL);
    engine_free(small);

    /* Type errors of range queries are bad_data, not execution errors. */
    rc = engine_query_range(eng, "lim[1m]", 0, 10000, 1000, ar, &r, &err);
    CHECK_EQ_INT(rc, SM_EINVAL);
    CHECK(!engine_error_is_exec(&err));
    CHECK(strstr(err.msg, "invalid expression type \"range vector\" for range query") != NULL);
}

static void test_formatting(void) {
    add_linear("fmt{i=\"a\"}", 0, 10000, 10, 0.1, 0);
    add_linear("fmt{i=\"b\"}", 0, 10000, 10, 1e21, 0);
    add_linear("fmt{i=\"c\"}", 0, 10000, 10, -2.5e-7, 0);
    add_linear("fmt{i=\"d\"}", 0, 10000, 10, 1e-70, 0);
    promql_result r = expect_n("count_values(\"v\", fmt)", 50000, 4);
    CHECK_NEAR(value_of(&r, "{v=\"0.1\"}"), 1);
    CHECK_NEAR(value_of(&r, "{v=\"1000000000000000000000\"}"), 1);
    CHECK_NEAR(value_of(&r, "{v=\"-0.00000025\"}"), 1);
    /* no exponent however long: 0. then 69 zeros and 1 (it was cut at 63
     * bytes) */
    char tiny[96] = "{v=\"0.";
    memset(tiny + 6, '0', 69);
    strcpy(tiny + 75, "1\"}");
    CHECK_NEAR(value_of(&r, tiny), 1);
    expect_exec_error("topk(1e20, fmt)", 50000, "Scalar value 1e+20 overflows int64");
    expect_exec_error("topk(scalar(nothing), fmt)", 50000, "Scalar value NaN overflows int64");
    expect_exec_error("count_values(\"1x\", fmt)", 50000, "invalid label name \"1x\"");
}

/* Times at the ends of int64 neither overflow (UBSan watches) nor read
 * garbage: they answer, or fail cleanly. */
static void test_extreme_times(void) {
    static const char *qs[] = {
        "sel @ 9223372036854775.807",
        "sel @ -9223372036854775.808 offset 1y",
        "rate(sel[5m] @ 9223372036854775.807 offset -5m)",
        "max_over_time(sel[1h:1m] @ -9223372036854775.808)",
        "sum_over_time(sel[1y:1ms] @ 100)",
        "sel offset -100y",
    };
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        promql_result r;
        sm_error err;
        int rc = query(qs[i], 0, &r, &err);
        CHECK_MSG(rc == 0 || rc == SM_EINVAL || rc == SM_ELIMIT, "%s: rc %d (%s)", qs[i], rc,
                  err.msg);
        rc = query(qs[i], INT64_MAX / 2, &r, &err);
        CHECK_MSG(rc == 0 || rc == SM_EINVAL || rc == SM_ELIMIT, "%s: rc %d (%s)", qs[i], rc,
                  err.msg);
    }
}

typedef struct worker {
    engine *e;
    int failures;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    sm_arena *a = sm_arena_new(0, 0);
    for (int i = 0; i < 20; i++) {
        promql_result r;
        sm_error err;
        sm_error_clear(&err);
        int rc = engine_query_range(w->e, "sum by (g) (rate(ag[1m])) + on(g) count by (g) (ag)",
                                    0, 100000, 5000, a, &r, &err);
        if (rc != 0 || r.nseries != 2) w->failures++;
        sm_arena_reset(a);
    }
    sm_arena_free(a);
    return NULL;
}

/* Several threads on one engine with a single slot: they queue, and
 * everyone gets the same answer. */
static void test_concurrency(void) {
    engine_opts o;
    engine_opts_default(&o);
    o.max_concurrent = 1;
    engine *e;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(engine_new(&o, db, &e, &err), &err);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].e = e;
        w[i].failures = 0;
        pthread_create(&th[i], NULL, run_worker, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(w[i].failures, 0);
    }
    engine_free(e);
}

/* Every allocation of a query may fail: the answer is then SM_ENOMEM (or
 * a storage error), never a crash or a leak (ASan checks the leaks). */
static void test_alloc_failures(void) {
    static const char *qs[] = {
        "sum by (g) (rate(ag[1m])) / on(g) group_left max by (g) (ag)",
        "label_replace(topk(2, lf), \"h\", \"$1\", \"src\", \"(.*)\")",
        "histogram_quantile(0.9, h_bucket) or absent(nothing)",
        "avg_over_time(sq[1m:10s]) and on() vector(1)",
    };
    for (size_t q = 0; q < sizeof qs / sizeof *qs; q++) {
        bool succeeded = false;
        for (long n = 0; n < 400 && !succeeded; n++) {
            promql_result r;
            sm_error err;
            sm_error_clear(&err);
            sm_arena *a = sm_arena_new(0, 0);
            sm_alloc_fail_after(n);
            int rc = engine_query_range(eng, qs[q], 0, 100000, 10000, a, &r, &err);
            sm_alloc_fail_reset();
            CHECK_MSG(rc == 0 || rc == SM_ENOMEM || rc == SM_EIO || rc == SM_ECORRUPT,
                      "%s failing allocation %ld: rc %d (%s)", qs[q], n, rc, err.msg);
            succeeded = rc == 0;
            sm_arena_free(a);
        }
        CHECK_MSG(succeeded, "%s never succeeded", qs[q]);
    }
}

/* The range query's point at each step equals the instant query there. */
static void test_instant_vs_range(uint64_t seed) {
    uint64_t st = seed;
    char spec[64];
    for (int s = 0; s < 6; s++) {
        size_t n = 50 + check_rand_below(&st, 100);
        sm_ms_t *ts = malloc(n * sizeof *ts);
        double *vs = malloc(n * sizeof *vs);
        sm_ms_t t = (sm_ms_t)check_rand_below(&st, 20000);
        double v = 0;
        for (size_t i = 0; i < n; i++) {
            ts[i] = t;
            t += 1000 + (sm_ms_t)check_rand_below(&st, 40000);
            v += (double)check_rand_below(&st, 100);
            if (check_rand_below(&st, 10) == 0) v = 0; /* counter reset */
            vs[i] = check_rand_below(&st, 25) == 0 ? stale_nan() : v;
        }
        snprintf(spec, sizeof spec, "rnd{s=\"%d\",g=\"%d\"}", s, s % 2);
        add(spec, ts, vs, n);
        free(ts);
        free(vs);
    }
    static const char *qs[] = {
        "rnd",
        "rate(rnd[2m])",
        "sum by (g) (rnd)",
        "max_over_time(rnd[3m] offset 30s)",
        "avg_over_time(rnd[5m:30s])",
        "rnd / on(g) group_left sum by (g) (rnd)",
        "topk(2, rnd)",
        "count(rnd > 500)",
        "absent(rnd{s=\"0\"})",
        "deriv(rnd[5m]) * 60 + 1",
        "rnd @ 300 offset 10s",
        "time() - timestamp(rnd)",
        "increase(rnd[1m]) unless rnd < 300",
        "quantile_over_time(0.9, rnd[10m])",
    };
    for (size_t qi = 0; qi < sizeof qs / sizeof *qs; qi++) {
        sm_ms_t start = (sm_ms_t)check_rand_below(&st, 600000), step = 15000 + (sm_ms_t)check_rand_below(&st, 60000);
        sm_ms_t end = start + 40 * step;
        promql_result rr;
        sm_error err;
        sm_error_clear(&err);
        int rc = engine_query_range(eng, qs[qi], start, end, step, ar, &rr, &err);
        CHECK_MSG(rc == 0, "%s: range rc %d (%s)", qs[qi], rc, err.msg);
        if (rc) continue;
        for (sm_ms_t t = start; t <= end; t += step) {
            promql_result ri;
            rc = query(qs[qi], t, &ri, &err);
            CHECK_MSG(rc == 0, "%s: instant rc %d (%s)", qs[qi], rc, err.msg);
            if (rc) break;
            size_t matched = 0;
            for (size_t i = 0; i < rr.nseries; i++) {
                for (size_t p = 0; p < rr.series[i].npoints; p++) {
                    if (rr.series[i].points[p].t != t) continue;
                    matched++;
                    bool found = false;
                    for (size_t j = 0; j < ri.nseries; j++) {
                        if (!sm_labels_equal(&ri.series[j].labels, &rr.series[i].labels)) continue;
                        found = true;
                        double a = ri.series[j].points[0].v, b = rr.series[i].points[p].v;
                        CHECK_MSG((isnan(a) && isnan(b)) || a == b,
                                  "%s at %lld (seed %" PRIu64 "): instant %.17g, range %.17g",
                                  qs[qi], (long long)t, seed, a, b);
                    }
                    CHECK_MSG(found, "%s at %lld: series only in the range result", qs[qi],
                              (long long)t);
                }
            }
            if (ri.type == PROMQL_VECTOR)
                CHECK_MSG(matched == ri.nseries, "%s at %lld: %zu instant series, %zu range points",
                          qs[qi], (long long)t, ri.nseries, matched);
        }
    }
}

/* Queries give the same answer before and after the head is cut into
 * blocks (readers then seek through block chunks instead of head chunks). */
static void test_blocks_agree(void) {
    static const char *qs[] = {
        "rnd", "rate(rnd[2m])", "max_over_time(rnd[10m:45s] offset 1m)",
        "sum by (g) (rnd offset 3m)", "changes(lim[1m])", "sel", "sq @ 500",
    };
    enum { NQ = sizeof qs / sizeof *qs };
    promql_result before[NQ];
    sm_error err;
    for (size_t i = 0; i < NQ; i++) {
        sm_error_clear(&err);
        CHECK_OK_ERR(engine_query_range(eng, qs[i], 0, 2000000, 7000, ar, &before[i], &err), &err);
    }
    sm_error_clear(&err);
    CHECK_OK_ERR(tsdb_flush(db, &err), &err);
    for (size_t i = 0; i < NQ; i++) {
        promql_result r;
        sm_error_clear(&err);
        CHECK_OK_ERR(engine_query_range(eng, qs[i], 0, 2000000, 7000, ar, &r, &err), &err);
        CHECK_MSG(r.nseries == before[i].nseries, "%s: %zu series after the flush, %zu before",
                  qs[i], r.nseries, before[i].nseries);
        for (size_t s = 0; s < r.nseries && s < before[i].nseries; s++) {
            CHECK(sm_labels_equal(&r.series[s].labels, &before[i].series[s].labels));
            CHECK_EQ_INT(r.series[s].npoints, before[i].series[s].npoints);
            size_t n = r.series[s].npoints < before[i].series[s].npoints ? r.series[s].npoints
                                                                         : before[i].series[s].npoints;
            size_t diff = 0;
            for (size_t p = 0; p < n; p++) {
                double a = r.series[s].points[p].v, b = before[i].series[s].points[p].v;
                if (r.series[s].points[p].t != before[i].series[s].points[p].t ||
                    !((isnan(a) && isnan(b)) || a == b))
                    diff++;
            }
            CHECK_MSG(diff == 0, "%s: %zu points differ after the flush", qs[i], diff);
        }
    }
}

int main(void) {
    uint64_t seed = check_seed();
    const char *dir = check_tmpdir("engine");
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.wal_sync = WAL_SYNC_NONE;
    o.ooo_window_ms = INT64_MAX / 4;
    o.background = false;
    o.retention_ms = 0;
    sm_error err;
    sm_error_clear(&err);
    if (tsdb_open(dir, &o, &db, &err) != 0) {
        fprintf(stderr, "tsdb_open: %s\n", err.msg);
        return 1;
    }
    engine_opts eo;
    engine_opts_default(&eo);
    CHECK_OK_ERR(engine_new(&eo, db, &eng, &err), &err);
    ar = sm_arena_new(0, 0);

    test_selectors();
    test_subqueries();
    test_binops();
    test_aggregations();
    test_tie_order();
    test_label_functions();
    test_histograms();
    test_limits();
    test_formatting();
    test_extreme_times();
    test_concurrency();
    test_alloc_failures();
    test_instant_vs_range(seed);
    test_blocks_agree();

    engine_free(eng);
    tsdb_close(db, NULL);
    sm_arena_free(ar);
    check_rmdir(dir);
    return check_done();
}
