/* SPDX-License-Identifier: Apache-2.0
 *
 * test_report.c - anomaly reports on a fixed data set with known incidents.
 *
 * The data is what the anomaly rules write (anomaly:value, :score,
 * :expected, :lower, :upper) for five series over twelve hours at one
 * minute: latency and errors of host web-1 go wrong together (latency five
 * minutes first), cpu of db-1 on its own, latency of web-2 later and
 * alone, memory of web-2 never, and one anomaly in the previous period.
 * The report must find exactly those incidents, in that ranking, with
 * their members, shared labels and likely cause; its JSON must validate
 * against docs/report.schema.json (python3-jsonschema), and its HTML must
 * be well-formed XML with no scripts and no external references.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "report.h"
#include "tsdb/tsdb.h"

#define MIN 60000LL
static const sm_ms_t T0 = 1767225600000LL; /* 2026-01-01T00:00:00Z */

typedef struct src_def {
    const char *metric, *instance, *job;
    int start_min, len_min; /* anomalous minutes relative to T0 (len 0: none) */
    double peak;
} src_def;

static const src_def SRC[] = {
    {"latency", "web-1", "api", 120, 21, 0.99},
    {"errors", "web-1", "api", 125, 21, 0.97},
    {"cpu", "db-1", "db", 240, 11, 0.95},
    {"mem", "web-2", "api", 0, 0, 0},
    {"latency", "web-2", "api", 300, 6, 0.97},
};
#define NSRC (sizeof SRC / sizeof *SRC)

static void load(tsdb *db) {
    static const char *const names[5] = {"anomaly:value", "anomaly:score", "anomaly:expected", "anomaly:lower",
                                         "anomaly:upper"};
    const int n = 12 * 60 + 1; /* T0-6h .. T0+6h */
    tsdb_sample *smp = calloc((size_t)n, sizeof *smp);
    for (size_t s = 0; s < NSRC; s++) {
        for (int f = 0; f < 5; f++) {
            sm_label lv[5] = {{"__name__", names[f]},
                              {"anomaly_source", SRC[s].metric},
                              {"instance", SRC[s].instance},
                              {"job", SRC[s].job},
                              {"rule", "hosts"}};
            for (int k = 0; k < n; k++) {
                int minute = k - 360;
                bool bad = SRC[s].len_min && minute >= SRC[s].start_min &&
                           minute < SRC[s].start_min + SRC[s].len_min;
                /* The previous period: cpu of db-1 once, at T0-3h for 4 min. */
                if (s == 2 && minute >= -180 && minute < -176) bad = true;
                double v;
                switch (f) {
                case 0: v = bad ? 30 : 10; break;
                case 1: v = bad ? (minute == SRC[s].start_min + 1 ? SRC[s].peak : SRC[s].peak - 0.02) : 0.1; break;
                case 2: v = 10; break;
                case 3: v = 8; break;
                default: v = 12; break;
                }
                smp[k] = (tsdb_sample){T0 + (sm_ms_t)minute * MIN, v};
            }
            tsdb_series_in in = {{lv, 5}, smp, (uint32_t)n};
            tsdb_append_result res;
            CHECK_OK(tsdb_append(db, &in, 1, &res, NULL));
        }
    }
    free(smp);
}

static void test_periods(void) {
    const double s[] = {0.1, 0.95, 0.2, 0.96, 0.1, 0.1, 0.1, 0.99, NAN, 0.1};
    size_t n = sizeof s / sizeof *s;
    CHECK_EQ_INT(report_find_periods(s, n, 0.9, 0, NULL, NULL), 3);
    CHECK_EQ_INT(report_find_periods(s, n, 0.9, 1, NULL, NULL), 2); /* 1 and 3 merge */
    CHECK_EQ_INT(report_find_periods(s, n, 0.9, 3, NULL, NULL), 1);
    CHECK_EQ_INT(report_find_periods(s, n, 0.995, 3, NULL, NULL), 0);
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void check_outputs(const report *r, const char *dir) {
    const char *src = getenv("SEISMO_SOURCE_DIR");
    char path[512], cmd[2048];
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(report_write_json(r, &b));
    snprintf(path, sizeof path, "%s/r.json", dir);
    FILE *f = fopen(path, "w");
    fwrite(b.p, 1, b.len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys,jsonschema; "
             "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))' %s %s/docs/report.schema.json",
             path, src ? src : "..");
    CHECK_MSG(run(cmd) == 0, "JSON does not validate against docs/report.schema.json: %s", cmd);
    sm_buf_clear(&b);
    CHECK_OK(report_write_html(r, &b));
    snprintf(path, sizeof path, "%s/r.html", dir);
    f = fopen(path, "w");
    fwrite(b.p, 1, b.len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys,xml.etree.ElementTree as E\n"
             "t=E.parse(sys.argv[1]); bad=[e.tag for e in t.iter() if e.tag.split(\"}\")[-1] in (\"script\",\"link\",\"img\",\"iframe\")]\n"
             "ext=[v for e in t.iter() for k,v in e.attrib.items() if k in (\"src\",\"href\")]\n"
             "n=sum(1 for e in t.iter() if e.tag.endswith(\"svg\"))\n"
             "sys.exit(1 if bad or ext or n!=4 else 0)' %s",
             path);
    CHECK_MSG(run(cmd) == 0, "HTML is not well-formed, not self-contained or lacks the 4 charts (%s)", path);
    CHECK(strstr((const char *)b.p, "<svg") != NULL);
    if (getenv("SEISMO_REPORT_OUT")) { /* to look at it */
        FILE *o = fopen(getenv("SEISMO_REPORT_OUT"), "w");
        if (o) {
            fwrite(b.p, 1, b.len, o);
            fclose(o);
        }
    }
    sm_buf_clear(&b);
    CHECK_OK(report_write_md(r, &b));
    CHECK(b.len > 0 && memmem(b.p, b.len, "## 1. {instance=\"web-1\", job=\"api\"}", 35) != NULL);
    sm_buf_fini(&b);
}

static void test_report(void) {
    const char *dir = check_tmpdir("report");
    char dd[512];
    snprintf(dd, sizeof dd, "%s/data", dir);
    tsdb *db;
    CHECK_TSDB_OPEN(dd, 365LL * 86400000, &db);
    load(db);
    engine_opts eo;
    engine_opts_default(&eo);
    engine *e;
    CHECK_OK(engine_new(&eo, db, &e, NULL));

    report_opts ro;
    report_opts_default(&ro);
    ro.from = T0;
    ro.to = T0 + 6 * 60 * MIN;
    sm_arena *a = sm_arena_new(0, 0);
    report *r = NULL;
    sm_error err = {0};
    CHECK_OK_ERR(report_build(e, &ro, a, &r, &err), &err);
    if (r) {
        CHECK_EQ_INT(r->cur.series_scanned, 5);
        CHECK_EQ_INT(r->cur.anomalies, 4);
        CHECK_EQ_INT(r->nincidents, 3);
        CHECK_EQ_INT(r->prev.anomalies, 1);
        CHECK_EQ_INT(r->prev.incidents, 1);
        if (r->nincidents == 3) {
            const report_incident *i0 = &r->incidents[0], *i1 = &r->incidents[1], *i2 = &r->incidents[2];
            CHECK_EQ_INT(i0->n, 2);
            CHECK_EQ_INT(i0->nseries, 2);
            CHECK_EQ_STR(r->anomalies[i0->members[0]].metric, "latency");
            CHECK_EQ_STR(r->anomalies[i0->members[1]].metric, "errors");
            CHECK_EQ_INT(i0->start, T0 + 120 * MIN);
            CHECK_EQ_INT(i0->end, T0 + 145 * MIN);
            CHECK_EQ_INT(i0->common.n, 2);
            CHECK_EQ_STR(sm_labels_get(&i0->common, "instance"), "web-1");
            CHECK_MSG(strstr(i0->cause, "Likely cause: latency started first, 5m before") != NULL, "cause: %s",
                      i0->cause);
            CHECK(fabs(i0->peak_score - 0.99) < 1e-12);
            const report_anomaly *lat = &r->anomalies[i0->members[0]];
            CHECK(lat->actual == 30 && lat->expected == 10 && lat->lower == 8 && lat->upper == 12);
            CHECK_MSG(strstr(lat->explain, "above the expected 10") != NULL, "explain: %s", lat->explain);
            CHECK_EQ_INT(i1->n, 1);
            CHECK_EQ_STR(r->anomalies[i1->members[0]].metric, "cpu");
            CHECK_EQ_INT(i2->n, 1);
            CHECK_EQ_STR(sm_labels_get(&r->anomalies[i2->members[0]].labels, "instance"), "web-2");
            CHECK(i0->severity > i1->severity && i1->severity > i2->severity);
        }
        check_outputs(r, dir);
    }
    /* A selector narrows the report to one host's rule outputs. */
    sm_arena_reset(a);
    const char *m[] = {"{instance=\"db-1\"}"};
    ro.match = m;
    ro.nmatch = 1;
    CHECK_OK_ERR(report_build(e, &ro, a, &r, &err), &err);
    CHECK(r && r->nincidents == 1 && r->cur.series_scanned == 1);
    /* By source metric name: latency on both hosts. */
    sm_arena_reset(a);
    const char *m2[] = {"latency"};
    ro.match = m2;
    CHECK_OK_ERR(report_build(e, &ro, a, &r, &err), &err);
    CHECK(r && r->nincidents == 2 && r->cur.series_scanned == 2);
    /* Bad options. */
    ro.to = ro.from;
    CHECK_EQ_INT(report_build(e, &ro, a, &r, NULL), SM_EINVAL);
    sm_arena_free(a);
    engine_free(e);
    CHECK_OK(tsdb_close(db, NULL));
    check_rmdir(dir);
}

int main(void) {
    test_periods();
    test_report();
    return check_done();
}
