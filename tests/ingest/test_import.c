/* SPDX-License-Identifier: Apache-2.0
 *
 * test_import.c - `seismo import`: Prometheus text, OpenMetrics and CSV
 * files land in blocks with every sample exact; a bad line anywhere stops
 * the import with its line number and leaves the data directory as it was;
 * the exposition line parser on valid and invalid lines.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "import.h"
#include "tsdb/base/endian.h"
#include "tsdb/fsutil.h"
#include "tsdb/tsdb.h"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Samples of one series (matched by its formatted labels) in dir. */
static size_t read_series(const char *dir, const char *want_labels, sm_ms_t *ts, double *vs, size_t cap) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    tsdb *db;
    if (tsdb_open(dir, &o, &db, NULL)) return 0;
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_RE, "__name__", ".+", NULL);
    tsdb_series_set *set;
    size_t n = 0;
    if (tsdb_select(db, &m, 1, SM_MS_MIN, SM_MS_MAX, NULL, &set, NULL) == 0) {
        for (size_t i = 0; i < tsdb_series_set_count(set); i++) {
            char lb[512];
            sm_labels_format(tsdb_series_set_labels(set, i), lb, sizeof lb);
            if (strcmp(lb, want_labels)) continue;
            tsdb_iter *it;
            tsdb_series_set_iter(set, i, &it);
            while (n < cap && tsdb_iter_next(it, &ts[n], &vs[n]) == 1) n++;
        }
        tsdb_series_set_free(set);
    }
    sm_matcher_fini(&m);
    tsdb_close(db, NULL);
    return n;
}

static size_t count_blocks(const char *dir) {
    char **names;
    size_t n, k = 0;
    if (sm_fs_list(dir, &names, &n)) return 0;
    for (size_t i = 0; i < n; i++) k += strlen(names[i]) == 26;
    sm_fs_names_free(names, n);
    return k;
}

static void test_parser(void) {
    sm_arena *a = sm_arena_new(0, 0);
    sm_labels ls;
    int64_t t;
    double v;
    const char *ok = "http_requests_total{method=\"post\",code=\"200\", path=\"a\\\"b\\\\c\\nd\"} 1027 1395066363000";
    CHECK_EQ_INT(import_parse_line(ok, strlen(ok), false, a, &ls, &t, &v, NULL), 1);
    CHECK(t == 1395066363000 && v == 1027 && ls.n == 4);
    CHECK_EQ_STR(sm_labels_get(&ls, "path"), "a\"b\\c\nd");
    CHECK_EQ_STR(ls.v[0].name, "__name__"); /* sorted */
    const char *om = "x_seconds 1.5 1700000000.250";
    CHECK_EQ_INT(import_parse_line(om, strlen(om), true, a, &ls, &t, &v, NULL), 1);
    CHECK(t == 1700000000250 && v == 1.5);
    const char *nan = "up NaN 5";
    CHECK_EQ_INT(import_parse_line(nan, strlen(nan), false, a, &ls, &t, &v, NULL), 1);
    CHECK(isnan(v));
    const char *inf = "up -Inf 5";
    CHECK_EQ_INT(import_parse_line(inf, strlen(inf), false, a, &ls, &t, &v, NULL), 1);
    CHECK(isinf(v) && v < 0);
    CHECK_EQ_INT(import_parse_line("# HELP x y", 10, false, a, &ls, &t, &v, NULL), 0);
    CHECK_EQ_INT(import_parse_line("", 0, false, a, &ls, &t, &v, NULL), 0);
    CHECK_EQ_INT(import_parse_line("# EOF", 5, true, a, &ls, &t, &v, NULL), 2);
    static const char *bad[] = {"up 1",                 /* no timestamp */
                                "up{a=\"x\" 1 2",       /* unclosed */
                                "up{a=x} 1 2",          /* unquoted */
                                "up abc 2",             /* not a number */
                                "up 1 2 3",             /* trailing */
                                "up{a=\"1\",a=\"2\"} 1 2", /* repeated */
                                "1up 1 2",              /* bad name */
                                "up{a=\"\\q\"} 1 2",     /* bad escape */
                                "up 1 1.5"};            /* ms must be whole */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sm_error err = {0};
        CHECK_MSG(import_parse_line(bad[i], strlen(bad[i]), false, a, &ls, &t, &v, &err) == SM_EINVAL,
                  "accepted: %s", bad[i]);
        CHECK(err.msg[0] != 0);
    }
    sm_arena_free(a);
}

static void test_files(const char *base) {
    char dir[1024], f1[1100], f2[1100], f3[1100], f4[1100];
    snprintf(dir, sizeof dir, "%s/data", base);
    sm_fs_mkdir_p(dir);
    snprintf(f1, sizeof f1, "%s/a.prom", base);
    snprintf(f2, sizeof f2, "%s/b.om", base);
    snprintf(f3, sizeof f3, "%s/c.csv", base);
    snprintf(f4, sizeof f4, "%s/bad.prom", base);
    /* Prometheus text, out of order and spanning three 2 h blocks. */
    write_file(f1, "# HELP node_load1 load\n# TYPE node_load1 gauge\n"
                   "node_load1{instance=\"a\"} 0.5 1700010000000\n"
                   "node_load1{instance=\"a\"} 0.25 1700000000000\n"
                   "node_load1{instance=\"a\"} 0.75 1700020000000\n"
                   "node_load1{instance=\"b\"} NaN 1700000000000\n");
    import_opts o = {IMPORT_PROMETHEUS, dir, NULL, NULL, 0, 0, IMPORT_TIME_AUTO, false};
    import_result res;
    sm_error err = {0};
    CHECK_OK_ERR(import_file(f1, &o, &res, &err), &err);
    CHECK(res.samples == 4 && res.series == 2 && res.mint == 1700000000000 && res.maxt == 1700020000000);
    CHECK_MSG(res.blocks == 3, "%llu blocks", (unsigned long long)res.blocks);
    sm_ms_t ts[16];
    double vs[16];
    size_t n = read_series(dir, "node_load1{instance=\"a\"}", ts, vs, 16);
    CHECK(n == 3 && ts[0] == 1700000000000 && vs[0] == 0.25 && vs[2] == 0.75);
    /* OpenMetrics, seconds. */
    write_file(f2, "# TYPE temp gauge\ntemp{room=\"x\"} 21.5 1700000000.5\ntemp{room=\"x\"} 22 1700000015.5\n# EOF\n");
    o.format = IMPORT_OPENMETRICS;
    CHECK_OK_ERR(import_file(f2, &o, &res, &err), &err);
    n = read_series(dir, "temp{room=\"x\"}", ts, vs, 16);
    CHECK(n == 2 && ts[0] == 1700000000500 && vs[1] == 22);
    /* CSV with two value columns, a gap, RFC 3339 times. */
    write_file(f3, "time,rx,tx\n2023-11-14T22:13:20Z,10,20\n2023-11-14T22:13:35Z,,21\n2023-11-14T22:13:50.5Z,12,22\n");
    sm_label extra[1] = {{"host", "web-1"}};
    import_opts oc = {IMPORT_CSV, dir, "net_bytes", extra, 1, 0, IMPORT_TIME_AUTO, false};
    CHECK_OK_ERR(import_file(f3, &oc, &res, &err), &err);
    CHECK(res.samples == 5);
    n = read_series(dir, "net_bytes{column=\"rx\", host=\"web-1\"}", ts, vs, 16);
    CHECK(n == 2 && ts[0] == 1700000000000 && vs[1] == 12 && ts[1] == 1700000030500);
    n = read_series(dir, "net_bytes{column=\"tx\", host=\"web-1\"}", ts, vs, 16);
    CHECK(n == 3);

    /* A bad line late in the file: its number, and nothing imported. */
    size_t before = count_blocks(dir);
    FILE *f = fopen(f4, "w");
    for (int i = 0; i < 1000; i++) fprintf(f, "good_metric{i=\"%d\"} %d %lld\n", i, i, 1700000000000LL + i);
    fprintf(f, "good_metric{i=\"x\" 1 1700000000000\n");
    fclose(f);
    o.format = IMPORT_PROMETHEUS;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(import_file(f4, &o, &res, &err), SM_EINVAL);
    CHECK_MSG(strstr(err.msg, "line 1001") != NULL, "error: %s", err.msg);
    CHECK(count_blocks(dir) == before);
    n = read_series(dir, "good_metric{i=\"5\"}", ts, vs, 16);
    CHECK(n == 0);
    /* CSV errors name line and column. */
    write_file(f3, "time,v\n1700000000,1\n1700000015,oops\n");
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(import_file(f3, &oc, &res, &err), SM_EINVAL);
    CHECK_MSG(strstr(err.msg, "line 3") && strstr(err.msg, "oops"), "error: %s", err.msg);
    write_file(f3, "time,v\n1700000000,1,2\n");
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(import_file(f3, &oc, &res, &err), SM_EINVAL);
    CHECK_MSG(strstr(err.msg, "line 2") != NULL, "error: %s", err.msg);
    CHECK(count_blocks(dir) == before);
    /* An empty file is an error, not a silent success. */
    write_file(f1, "# nothing\n");
    CHECK_EQ_INT(import_file(f1, &o, &res, &err), SM_EINVAL);
}

int main(void) {
    check_seed();
    const char *base = check_tmpdir("import");
    test_parser();
    test_files(base);
    check_rmdir(base);
    return check_done();
}
