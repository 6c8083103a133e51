/* SPDX-License-Identifier: Apache-2.0
 *
 * test_rules.c - continuous anomaly rules end to end: a rule over a real
 * database warms up on its training window, writes the five anomaly
 * series back for the last hour, scores a spike above the ordinary points,
 * never feeds a point twice (R1), persists its models, and a new manager
 * continues from the saved state; the state file's checks refuse a
 * flipped byte; status JSON and metrics describe the runs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine.h"
#include "rules.h"
#include "tsdb/tsdb.h"

#define MIN 60000LL
static const sm_ms_t NOW = 1767225600000LL; /* 2026-01-01T00:00:00Z */

static double level(sm_ms_t t) {
    double day = (double)(t % 86400000) / 86400000.0;
    return 100 + 20 * sin(2 * M_PI * day);
}

static void put(tsdb *db, const char *inst, sm_ms_t from, sm_ms_t to, uint64_t *rng, sm_ms_t spike_at) {
    sm_label lv[2] = {{"__name__", "load"}, {"instance", inst}};
    size_t n = (size_t)((to - from) / MIN) + 1;
    tsdb_sample *s = calloc(n, sizeof *s);
    for (size_t k = 0; k < n; k++) {
        sm_ms_t t = from + (sm_ms_t)k * MIN;
        double noise = ((double)check_rand_below(rng, 1000) / 1000.0 - 0.5) * 2;
        s[k] = (tsdb_sample){t, level(t) + noise + (t == spike_at ? 80 : 0)};
    }
    tsdb_series_in in = {{lv, 2}, s, (uint32_t)n};
    tsdb_append_result r;
    CHECK_OK(tsdb_append(db, &in, 1, &r, NULL));
    free(s);
}

static rules_config *config(void) {
    const char *y = "groups:\n  - name: g\n    interval: 1m\n    rules:\n"
                    "      - anomaly: load_rule\n        expr: load\n        training_window: 4d\n"
                    "        retrain: 6h\n        labels:\n          team: ops\n";
    rules_config *c = NULL;
    sm_error err = {0};
    CHECK_OK_ERR(rules_file_parse(y, strlen(y), "t.yml", &c, &err), &err);
    return c;
}

/* The value of metric{instance=...} at t through the engine, NAN if none. */
static double at(engine *e, const char *q, sm_ms_t t) {
    sm_arena *a = sm_arena_new(0, 0);
    promql_result r;
    double v = NAN;
    if (engine_query_instant(e, q, t, a, &r, NULL) == 0 && r.type == PROMQL_VECTOR && r.nseries == 1)
        v = r.series[0].points[0].v;
    sm_arena_free(a);
    return v;
}

static size_t count_points(engine *e, const char *q, sm_ms_t from, sm_ms_t to) {
    sm_arena *a = sm_arena_new(0, 0);
    promql_result r;
    size_t n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "count_over_time(%s[%llds])", q, (long long)((to - from) / 1000));
    if (engine_query_instant(e, buf, to, a, &r, NULL) == 0 && r.type == PROMQL_VECTOR && r.nseries == 1)
        n = (size_t)r.series[0].points[0].v;
    sm_arena_free(a);
    return n;
}

int main(void) {
    uint64_t rng = check_seed();
    const char *dir = check_tmpdir("rules");
    char dd[512], sd[512];
    snprintf(dd, sizeof dd, "%s/data", dir);
    snprintf(sd, sizeof sd, "%s/data/rules", dir);
    tsdb *db;
    CHECK_TSDB_OPEN(dd, 6 * 86400000LL, &db);
    const sm_ms_t spike = NOW - 20 * MIN;
    put(db, "a", NOW - 5 * 86400000LL, NOW, &rng, spike);
    engine_opts eo;
    engine_opts_default(&eo);
    engine *e;
    CHECK_OK(engine_new(&eo, db, &e, NULL));

    rules_mgr_opts mo;
    rules_mgr_opts_default(&mo);
    mo.state_dir = sd;
    rules_mgr *m;
    sm_error err = {0};
    CHECK_OK_ERR(rules_mgr_new(&mo, config(), db, e, &m, &err), &err);
    CHECK_EQ_INT(rules_mgr_count(m), 1);
    CHECK_OK_ERR(rules_mgr_tick(m, NOW, &err), &err);

    /* Written back: the last hour, five series with the source labels. */
    const char *score = "anomaly:score{anomaly_source=\"load\",instance=\"a\",rule=\"load_rule\",team=\"ops\"}";
    CHECK_EQ_INT(count_points(e, score, NOW - 59 * MIN, NOW), 60);
    CHECK_EQ_INT(count_points(e, "anomaly:value{rule=\"load_rule\"}", NOW - 59 * MIN, NOW), 60);
    CHECK(count_points(e, "anomaly:expected{rule=\"load_rule\"}", NOW - 59 * MIN, NOW) == 60);
    CHECK(count_points(e, "anomaly:lower{rule=\"load_rule\"}", NOW - 59 * MIN, NOW) == 60);
    CHECK(count_points(e, "anomaly:upper{rule=\"load_rule\"}", NOW - 59 * MIN, NOW) == 60);
    CHECK_EQ_INT(count_points(e, score, NOW - 4 * 86400000LL, NOW - 61 * MIN), 0);
    double s_spike = at(e, score, spike), s_calm = at(e, score, NOW - 40 * MIN);
    CHECK_MSG(s_spike > s_calm && s_spike >= 0.5, "spike scored %g, an ordinary point %g", s_spike, s_calm);
    double ex = at(e, "anomaly:expected{rule=\"load_rule\"}", NOW - 40 * MIN);
    CHECK_MSG(fabs(ex - level(NOW - 40 * MIN)) < 5, "expected %g, true level %g", ex, level(NOW - 40 * MIN));
    double lo = at(e, "anomaly:lower{rule=\"load_rule\"}", spike), hi = at(e, "anomaly:upper{rule=\"load_rule\"}", spike);
    double v = at(e, "anomaly:value{rule=\"load_rule\"}", spike);
    CHECK_MSG(lo < hi && v > hi, "spike %g outside band %g..%g", v, lo, hi);

    /* Same time again: nothing is due; one minute later: one new point. */
    CHECK_OK(rules_mgr_tick(m, NOW + 30000, NULL));
    put(db, "a", NOW + MIN, NOW + MIN, &rng, 0);
    CHECK_OK(rules_mgr_tick(m, NOW + MIN, NULL));
    CHECK_EQ_INT(count_points(e, score, NOW - 59 * MIN, NOW + MIN), 61);

    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rules_mgr_status_json(m, &b));
    CHECK(memmem(b.p, b.len, "\"name\":\"load_rule\"", 18) && memmem(b.p, b.len, "\"health\":\"ok\"", 13));
    CHECK_MSG(memmem(b.p, b.len, "\"series\":1,", 11) != NULL, "status: %.*s", (int)b.len, (const char *)b.p);
    sm_buf_clear(&b);
    CHECK_OK(rules_mgr_metrics(m, &b));
    CHECK(memmem(b.p, b.len, "seismo_anomaly_rule_runs_total{rule=\"load_rule\"} 2", 50) != NULL);
    sm_buf_fini(&b);
    rules_mgr_free(m); /* saves */

    /* The state file: valid as written; one flipped byte is refused. */
    char path[600];
    snprintf(path, sizeof path, "%s/load_rule.state", sd);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static uint8_t st[1 << 24];
    size_t len = f ? fread(st, 1, sizeof st, f) : 0;
    if (f) fclose(f);
    size_t ns = 0;
    CHECK_OK(rules_state_validate(st, len, &ns, NULL));
    CHECK_EQ_INT(ns, 1);
    if (getenv("SEISMO_RULE_STATE_OUT")) {
        FILE *o2 = fopen(getenv("SEISMO_RULE_STATE_OUT"), "wb");
        if (o2) {
            fwrite(st, 1, len, o2);
            fclose(o2);
        }
    }
    if (len > 20) {
        st[len / 2] ^= 0x40;
        CHECK_EQ_INT(rules_state_validate(st, len, NULL, NULL), SM_ECORRUPT);
        st[len / 2] ^= 0x40;
        CHECK_EQ_INT(rules_state_validate(st, len - 1, NULL, NULL), SM_ECORRUPT);
    }

    /* A restarted manager continues: no warm-up, just the new minute. */
    put(db, "a", NOW + 2 * MIN, NOW + 2 * MIN, &rng, 0);
    CHECK_OK_ERR(rules_mgr_new(&mo, config(), db, e, &m, &err), &err);
    CHECK_OK_ERR(rules_mgr_tick(m, NOW + 2 * MIN, &err), &err);
    CHECK_EQ_INT(count_points(e, score, NOW - 59 * MIN, NOW + 2 * MIN), 62);
    b = (sm_buf)SM_BUF_INIT;
    CHECK_OK(rules_mgr_status_json(m, &b));
    CHECK(memmem(b.p, b.len, "\"points_scored\":1,", 18) != NULL);
    sm_buf_fini(&b);
    rules_mgr_free(m);

    engine_free(e);
    CHECK_OK(tsdb_close(db, NULL));
    check_rmdir(dir);
    return check_done();
}
