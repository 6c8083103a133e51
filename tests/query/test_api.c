/* SPDX-License-Identifier: Apache-2.0
 *
 * test_api.c - the Prometheus HTTP API handlers of query/api.h, called
 * through their request abstraction (no server) against a real tsdb in a
 * temporary directory holding known series:
 *
 *   - exact JSON of instant, range, scalar, string, matrix, series, labels
 *     and label-values answers (texts taken from a Prometheus 2.42 given
 *     the same data), including the two number forms of points;
 *   - every argument error with Prometheus's wording and status: bad time,
 *     bad or zero step, end before start, more than 11,000 points, parse
 *     errors with line:col, execution errors (422), the sample limit
 *     (422), timeouts (503), no match[], bad label names, unknown label
 *     names (an empty list), unknown paths and methods, not ready (503);
 *   - GET and POST forms, repeated match[];
 *   - seeded random values read back through the JSON text bit for bit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "check.h"
#include "tsdb/base/endian.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */
#define NRND 50

static tsdb *g_db;
static engine *g_eng;
static api *g_api;
static double g_rnd[NRND];

static sm_ms_t fixed_now(void) { return T0 + 60000; }

typedef struct answer {
    unsigned status;
    char body[16384];
    int rc;
} answer;

static answer ask_with(api *a, const char *method, const char *url, const char *form) {
    answer ans = {0};
    sm_arena *ar = sm_arena_new(0, 0);
    api_req r;
    sm_error err;
    sm_error_clear(&err);
    ans.rc = api_req_parse(ar, method, url, form ? "application/x-www-form-urlencoded" : NULL, form,
                           form ? strlen(form) : 0, &r, &err);
    if (!ans.rc) {
        api_resp resp;
        api_resp_init(&resp);
        ans.rc = api_serve(a, &r, &resp);
        ans.status = resp.status;
        size_t n = resp.body.len < sizeof ans.body - 1 ? resp.body.len : sizeof ans.body - 1;
        if (n) memcpy(ans.body, resp.body.p, n);
        ans.body[n] = '\0';
        api_resp_fini(&resp);
    }
    sm_arena_free(ar);
    return ans;
}

static answer ask(const char *url) { return ask_with(g_api, "GET", url, NULL); }

#define EXPECT(url, st, json)                                                                            \
    do {                                                                                                 \
        answer a_ = ask(url);                                                                            \
        CHECK_MSG(a_.rc == 0 && a_.status == (st) && !strcmp(a_.body, (json)),                           \
                  "GET %s:\n  got rc %d status %u %s\n  want status %u %s", (url), a_.rc, a_.status,      \
                  a_.body, (unsigned)(st), (json));                                                      \
    } while (0)

#define ERR(type, msg) "{\"status\":\"error\",\"errorType\":\"" type "\",\"error\":\"" msg "\"}"
#define OK(data) "{\"status\":\"success\",\"data\":" data "}"

static void load(const char *dir, uint64_t *rng) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(tsdb_open(dir, &o, &g_db, &err), &err);
    if (!g_db) exit(check_done());
    /* up{instance=a} = 1 and up{instance=b} = 0 every 15 s over 10 min;
     * a counter; a tiny and a huge gauge; NRND random values at T0+60s. */
    sm_label up_a[3] = {{"__name__", "up"}, {"instance", "a"}, {"job", "api"}};
    sm_label up_b[3] = {{"__name__", "up"}, {"instance", "b"}, {"job", "api"}};
    sm_label req[4] = {{"__name__", "http_requests_total"}, {"code", "200"}, {"instance", "a"}, {"job", "api"}};
    sm_label tiny[2] = {{"__name__", "tiny"}, {"job", "node"}};
    sm_label huge[2] = {{"__name__", "huge"}, {"job", "node"}};
    tsdb_sample sa[41], sb[41], sr[41], st = {T0, 1e-7}, sh = {T0, -2.5e21};
    for (int k = 0; k <= 40; k++) {
        sm_ms_t t = T0 + (sm_ms_t)k * 15000;
        sa[k] = (tsdb_sample){t, 1};
        sb[k] = (tsdb_sample){t, 0};
        sr[k] = (tsdb_sample){t, 10.0 * k};
    }
    tsdb_series_in in[5 + NRND] = {
        {{up_a, 3}, sa, 41}, {{up_b, 3}, sb, 41}, {{req, 4}, sr, 41}, {{tiny, 2}, &st, 1}, {{huge, 2}, &sh, 1},
    };
    static sm_label rl[NRND][2];
    static char iv[NRND][8];
    static tsdb_sample rs[NRND];
    for (int i = 0; i < NRND; i++) {
        snprintf(iv[i], sizeof iv[i], "%02d", i);
        rl[i][0] = (sm_label){"__name__", "rnd"};
        rl[i][1] = (sm_label){"i", iv[i]};
        double v;
        do v = sm_f64_from_bits(check_rand(rng));
        while (!isfinite(v));
        g_rnd[i] = v;
        rs[i] = (tsdb_sample){T0 + 60000, v};
        in[5 + i] = (tsdb_series_in){{rl[i], 2}, &rs[i], 1};
    }
    tsdb_append_result res;
    CHECK_OK_ERR(tsdb_append(g_db, in, 5 + NRND, &res, &err), &err);
    /* A dense series for the timeout check: 10 samples/s for 3 hours. */
    sm_label dl[1] = {{"__name__", "dense"}};
    size_t nd = 108000;
    tsdb_sample *ds = malloc(nd * sizeof *ds);
    for (size_t k = 0; k < nd; k++) ds[k] = (tsdb_sample){T0 + (sm_ms_t)k * 100, (double)(k % 97)};
    tsdb_series_in din = {{dl, 1}, ds, (uint32_t)nd};
    CHECK_OK_ERR(tsdb_append(g_db, &din, 1, &res, &err), &err);
    free(ds);
}

static void test_syntax(void) {
    sm_ms_t t = 0;
    CHECK_OK(api_parse_time("2015-07-01T20:10:51.781Z", &t));
    CHECK_EQ_INT(t, 1435781451781LL);
    CHECK_OK(api_parse_time("2015-07-01T20:10:51+02:00", &t));
    CHECK_EQ_INT(t, 1435774251000LL);
    CHECK_OK(api_parse_time("2015-07-01T20:10:51.123456789-00:30", &t));
    CHECK_EQ_INT(t, 1435783251123LL);
    CHECK_OK(api_parse_time("1435781451.781", &t));
    CHECK_EQ_INT(t, 1435781451781LL);
    CHECK_OK(api_parse_time("1.2346", &t));
    CHECK_EQ_INT(t, 1235);
    CHECK_OK(api_parse_time("-1.05", &t));
    CHECK_EQ_INT(t, -1050);
    CHECK_OK(api_parse_time("1e3", &t));
    CHECK_EQ_INT(t, 1000000);
    CHECK_OK(api_parse_time("1969-12-31T23:59:59Z", &t));
    CHECK_EQ_INT(t, -1000);
    const char *bad[] = {"", "now", "0x10", "Inf", "NaN", "1.2.3", "2015-02-29T00:00:00Z", "2015-07-01 20:10:51Z",
                         "2015-07-01T20:10:51", "2015-07-01T24:00:00Z", "1e400", "12abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(api_parse_time(bad[i], &t) == SM_EINVAL, "time \"%s\" accepted", bad[i]);
    int64_t d = 0;
    CHECK_OK(api_parse_duration("15s", &d));
    CHECK_EQ_INT(d, 15000);
    CHECK_OK(api_parse_duration("1.5", &d));
    CHECK_EQ_INT(d, 1500);
    CHECK_OK(api_parse_duration("1h30m", &d));
    CHECK_EQ_INT(d, 5400000);
    CHECK_OK(api_parse_duration("-2", &d));
    CHECK_EQ_INT(d, -2000);
    CHECK(api_parse_duration("abc", &d) == SM_EINVAL);
    CHECK(api_parse_duration("-1s", &d) == SM_EINVAL);
    CHECK(api_parse_duration("", &d) == SM_EINVAL);
    int line, col;
    api_line_col("up +\n  foo{", 11, &line, &col);
    CHECK(line == 2 && col == 7);
    api_line_col("up +", 4, &line, &col);
    CHECK(line == 1 && col == 5);
    api_line_col("a\n\nb", 3, &line, &col);
    CHECK(line == 3 && col == 1);
}

static void test_query(void) {
    EXPECT("/api/v1/query?query=up%7Binstance%3D%22a%22%7D&time=1700000060", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
              "\"value\":[1700000060,\"1\"]}]}"));
    /* No time: now (pinned to T0+60s here). */
    EXPECT("/api/v1/query?query=up%7Binstance%3D%22b%22%7D", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"},"
              "\"value\":[1700000060,\"0\"]}]}"));
    /* Point times keep three decimals; RFC 3339 times. */
    EXPECT("/api/v1/query?query=up%7Binstance%3D%22a%22%7D&time=2023-11-14T22:14:20.5Z", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
              "\"value\":[1700000060.500,\"1\"]}]}"));
    /* Point values switch to the exponent form outside [1e-6, 1e21). */
    EXPECT("/api/v1/query?query=tiny&time=1700000010", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"tiny\",\"job\":\"node\"},"
              "\"value\":[1700000010,\"1e-07\"]}]}"));
    EXPECT("/api/v1/query?query=huge&time=1700000010", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"huge\",\"job\":\"node\"},"
              "\"value\":[1700000010,\"-2.5e+21\"]}]}"));
    /* Scalars and strings: shortest forms, no exponent. */
    EXPECT("/api/v1/query?query=1.5&time=1.5", 200, OK("{\"resultType\":\"scalar\",\"result\":[1.5,\"1.5\"]}"));
    EXPECT("/api/v1/query?query=0.0000001&time=-1.05", 200,
           OK("{\"resultType\":\"scalar\",\"result\":[-1.05,\"0.0000001\"]}"));
    EXPECT("/api/v1/query?query=%22a%3Cb%22&time=5", 200, OK("{\"resultType\":\"string\",\"result\":[5,\"a\\u003cb\"]}"));
    /* A range vector from an instant query: Prometheus 2.42 ranges include
     * both ends. */
    EXPECT("/api/v1/query?query=up%7Binstance%3D%22a%22%7D%5B30s%5D&time=1700000060", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
              "\"values\":[[1700000030,\"1\"],[1700000045,\"1\"],[1700000060,\"1\"]]}]}"));
    /* Nothing matches: an empty list, not null. */
    EXPECT("/api/v1/query?query=nosuch&time=1700000060", 200, OK("{\"resultType\":\"vector\",\"result\":[]}"));
    /* POST form. */
    answer a = ask_with(g_api, "POST", "/api/v1/query", "query=up%7Binstance%3D%22a%22%7D&time=1700000060");
    CHECK_MSG(a.status == 200 && strstr(a.body, "\"value\":[1700000060,\"1\"]"), "POST query: %u %s", a.status, a.body);
}

static void test_query_range(void) {
    EXPECT("/api/v1/query_range?query=up%7Binstance%3D%22a%22%7D&start=1700000000&end=1700000030&step=15", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
              "\"values\":[[1700000000,\"1\"],[1700000015,\"1\"],[1700000030,\"1\"]]}]}"));
    EXPECT("/api/v1/query_range?query=2&start=0&end=3&step=1.5", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[0,\"2\"],[1.500,\"2\"],[3,\"2\"]]}]}"));
    EXPECT("/api/v1/query_range?query=1&start=5&end=5&step=1s", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[5,\"1\"]]}]}"));
    answer a = ask_with(g_api, "POST", "/api/v1/query_range", "query=up&start=1700000000&end=1700000600&step=60");
    CHECK_MSG(a.status == 200 && strstr(a.body, "\"instance\":\"b\""), "POST query_range: %u %.300s", a.status, a.body);
    /* Exactly 11,000 steps is allowed, 11,001 is not. */
    a = ask("/api/v1/query_range?query=1&start=0&end=11000&step=1");
    CHECK_MSG(a.status == 200, "11000 points: %u %.200s", a.status, a.body);
}

static void test_errors(void) {
    EXPECT("/api/v1/query?query=up&time=abc", 400,
           ERR("bad_data", "invalid parameter \\\"time\\\": Invalid time value for 'time': cannot parse \\\"abc\\\" to a valid timestamp"));
    EXPECT("/api/v1/query?query=up&timeout=abc", 400,
           ERR("bad_data", "invalid parameter \\\"timeout\\\": cannot parse \\\"abc\\\" to a valid duration"));
    EXPECT("/api/v1/query?query=1&timeout=0", 503, ERR("timeout", "query timed out in query queue"));
    EXPECT("/api/v1/query_range?query=1", 400,
           ERR("bad_data", "invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid timestamp"));
    EXPECT("/api/v1/query_range?query=1&start=0&end=x&step=1", 400,
           ERR("bad_data", "invalid parameter \\\"end\\\": cannot parse \\\"x\\\" to a valid timestamp"));
    EXPECT("/api/v1/query_range?query=1&start=10&end=5&step=1", 400,
           ERR("bad_data", "invalid parameter \\\"end\\\": end timestamp must not be before start time"));
    EXPECT("/api/v1/query_range?query=1&start=0&end=100&step=abc", 400,
           ERR("bad_data", "invalid parameter \\\"step\\\": cannot parse \\\"abc\\\" to a valid duration"));
    EXPECT("/api/v1/query_range?query=1&start=0&end=100", 400,
           ERR("bad_data", "invalid parameter \\\"step\\\": cannot parse \\\"\\\" to a valid duration"));
    EXPECT("/api/v1/query_range?query=1&start=0&end=100&step=0", 400,
           ERR("bad_data", "invalid parameter \\\"step\\\": zero or negative query resolution step widths are not "
                           "accepted. Try a positive integer"));
    EXPECT("/api/v1/query_range?query=1&start=0&end=100&step=-5", 400,
           ERR("bad_data", "invalid parameter \\\"step\\\": zero or negative query resolution step widths are not "
                           "accepted. Try a positive integer"));
    EXPECT("/api/v1/query_range?query=1&start=0&end=11001&step=1", 400,
           ERR("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
                           "resolution (?step=XX)"));
    /* Parse errors: line:col from the parser's byte position; the instant
     * query names the parameter, the range query does not. */
    EXPECT("/api/v1/query?query=up~1", 400,
           ERR("bad_data", "invalid parameter \\\"query\\\": 1:3: parse error: unexpected character: '~'"));
    EXPECT("/api/v1/query?query=up%20%2B%0A~", 400,
           ERR("bad_data", "invalid parameter \\\"query\\\": 2:1: parse error: unexpected character: '~'"));
    EXPECT("/api/v1/query_range?query=up~1&start=0&end=1&step=1", 400,
           ERR("bad_data", "1:3: parse error: unexpected character: '~'"));
    answer a = ask("/api/v1/query?query=up%7B");
    CHECK_MSG(a.status == 400 && strstr(a.body, "invalid parameter \\\"query\\\": 1:4: parse error: "), "up{: %u %s",
              a.status, a.body);
    a = ask("/api/v1/query");
    CHECK_MSG(a.status == 400 && strstr(a.body, "\"bad_data\"") && strstr(a.body, "1:1: parse error: "), "no query: %u %s",
              a.status, a.body);
    /* Range queries take scalars and instant vectors only. */
    EXPECT("/api/v1/query_range?query=up%5B5m%5D&start=0&end=10&step=1", 400,
           ERR("bad_data", "invalid expression type \\\"range vector\\\" for range query, must be Scalar or instant Vector"));
    EXPECT("/api/v1/query_range?query=%22a%22&start=0&end=10&step=1", 400,
           ERR("bad_data", "invalid expression type \\\"string\\\" for range query, must be Scalar or instant Vector"));
    /* Execution errors: 422.  Both sides match on nothing, many to many. */
    a = ask("/api/v1/query?query=up%20%2B%20on()%20up&time=1700000060");
    CHECK_MSG(a.status == 422 && strstr(a.body, "\"errorType\":\"execution\"") && strstr(a.body, "duplicate series"),
              "many-to-many: %u %s", a.status, a.body);
    /* The engine's timeout: 503, errorType timeout. */
    /* A sort of 36,000 samples at each of 11,000 steps: far over 1 ms. */
    a = ask("/api/v1/query_range?query=quantile_over_time(0.5,dense%5B1h%5D)&start=1700000000&end=1700011000&step=1&"
            "timeout=1ms");
    CHECK_MSG(a.status == 503 && strstr(a.body, "\"errorType\":\"timeout\""), "1 ms timeout: %u %.300s", a.status, a.body);
    /* Unknown paths and methods. */
    a = ask("/api/v1/nope");
    CHECK_EQ_INT(a.rc, SM_ENOTFOUND);
    a = ask("/api/v1/label/job");
    CHECK_EQ_INT(a.rc, SM_ENOTFOUND);
    a = ask("/metrics");
    CHECK_EQ_INT(a.rc, SM_ENOTFOUND);
    a = ask_with(g_api, "DELETE", "/api/v1/query?query=1", NULL);
    CHECK_EQ_INT(a.status, 405);
    a = ask_with(g_api, "POST", "/api/v1/label/job/values", "");
    CHECK_EQ_INT(a.status, 405);
}

static void test_sample_limit(void) {
    api_opts o;
    api_opts_default(&o);
    o.engine.max_samples = 10;
    engine *e;
    api *a;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(engine_new(&o.engine, g_db, &e, &err), &err);
    CHECK_OK_ERR(api_new(&o, e, g_db, &a, &err), &err);
    answer r = ask_with(a, "GET", "/api/v1/query?query=up%5B10m%5D&time=1700000600", NULL);
    CHECK_MSG(r.status == 422 &&
                  !strcmp(r.body, ERR("execution", "query processing would load too many samples into memory in query execution")),
              "sample limit: %u %s", r.status, r.body);
    api_free(a);
    engine_free(e);
    /* Without a database yet: 503 unavailable, status endpoints work. */
    CHECK_OK(api_new(&o, NULL, NULL, &a, &err));
    r = ask_with(a, "GET", "/api/v1/query?query=1", NULL);
    CHECK_MSG(r.status == 503 && strstr(r.body, "\"errorType\":\"unavailable\""), "not ready: %u %s", r.status, r.body);
    r = ask_with(a, "GET", "/api/v1/status/buildinfo", NULL);
    CHECK_EQ_INT(r.status, 200);
    api_free(a);
}

static void test_series_and_labels(void) {
    EXPECT("/api/v1/series", 400, ERR("bad_data", "no match[] parameter provided"));
    EXPECT("/api/v1/series?match[]=up", 200,
           OK("[{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"}]"));
    /* Two overlapping match[]: a sorted union without repeats. */
    EXPECT("/api/v1/series?match[]=up%7Binstance%3D%22b%22%7D&match[]=%7Bjob%3D%22api%22%7D&start=1700000000&end=1700000600",
           200,
           OK("[{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"instance\":\"a\",\"job\":\"api\"},"
              "{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"}]"));
    EXPECT("/api/v1/series?match[]=up&start=1800000000", 200, OK("[]"));
    EXPECT("/api/v1/series?match[]=up&start=abc", 400,
           ERR("bad_data", "invalid parameter \\\"start\\\": Invalid time value for 'start': cannot parse \\\"abc\\\" to a valid timestamp"));
    EXPECT("/api/v1/series?match[]=%7B%7D", 400,
           ERR("bad_data", "invalid parameter \\\"match[]\\\": match[] must contain at least one non-empty matcher"));
    EXPECT("/api/v1/series?match[]=up%5B5m%5D", 400,
           ERR("bad_data", "invalid parameter \\\"match[]\\\": 1:3: parse error: unexpected \\\"[\\\""));
    EXPECT("/api/v1/series?match[]=sum(up)", 400,
           ERR("bad_data", "invalid parameter \\\"match[]\\\": 1:4: parse error: unexpected \\\"(\\\""));
    answer a = ask_with(g_api, "POST", "/api/v1/series", "match%5B%5D=tiny&match%5B%5D=huge");
    CHECK_MSG(a.status == 200 && !strcmp(a.body, OK("[{\"__name__\":\"huge\",\"job\":\"node\"},{\"__name__\":\"tiny\",\"job\":\"node\"}]")),
              "POST series: %u %s", a.status, a.body);

    EXPECT("/api/v1/labels", 200, OK("[\"__name__\",\"code\",\"i\",\"instance\",\"job\"]"));
    EXPECT("/api/v1/labels?match[]=tiny", 200, OK("[\"__name__\",\"job\"]"));
    EXPECT("/api/v1/labels?match[]=tiny&match[]=up", 200, OK("[\"__name__\",\"instance\",\"job\"]"));
    EXPECT("/api/v1/labels?match[]=%7B%7D", 400, ERR("bad_data", "match[] must contain at least one non-empty matcher"));
    EXPECT("/api/v1/label/job/values", 200, OK("[\"api\",\"node\"]"));
    EXPECT("/api/v1/label/instance/values?match[]=up", 200, OK("[\"a\",\"b\"]"));
    EXPECT("/api/v1/label/__name__/values?match[]=%7Bjob%3D%22node%22%7D&match[]=up", 200,
           OK("[\"huge\",\"tiny\",\"up\"]"));
    EXPECT("/api/v1/label/nosuch/values", 200, OK("[]"));
    EXPECT("/api/v1/label/1bad/values", 400, ERR("bad_data", "invalid label name: \\\"1bad\\\""));
    EXPECT("/api/v1/label/job/values?match[]=1", 400, ERR("bad_data", "1:1: parse error: unexpected number \\\"1\\\""));
}

static void test_status(void) {
    EXPECT("/api/v1/metadata", 200, OK("{}"));
    EXPECT("/api/v1/query_exemplars?query=up", 200, OK("[]"));
    answer a = ask("/api/v1/status/buildinfo");
    CHECK_MSG(a.status == 200 && strstr(a.body, "\"version\":\"2.42.0\"") && strstr(a.body, "\"revision\":\"seismo-"),
              "buildinfo: %s", a.body);
    EXPECT("/api/v1/status/flags", 200, OK("{\"query.lookback-delta\":\"5m\",\"query.timeout\":\"2m\"}"));
    a = ask("/api/v1/status/runtimeinfo");
    CHECK_MSG(a.status == 200 && strstr(a.body, "\"startTime\":\"2023-11-14T22:14:20Z\"") &&
                  strstr(a.body, "\"storageRetention\":\"15d\""),
              "runtimeinfo: %s", a.body);
}

/* Every random value comes back as text that reads to the same bits. */
static void test_random_values(void) {
    answer a = ask("/api/v1/query?query=rnd&time=1700000060");
    CHECK_EQ_INT(a.status, 200);
    int found = 0;
    for (int i = 0; i < NRND; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"i\":\"%02d\"},\"value\":[1700000060,\"", i);
        const char *p = strstr(a.body, key);
        if (!p) continue;
        double v = strtod(p + strlen(key), NULL);
        CHECK_MSG(sm_f64_bits(v) == sm_f64_bits(g_rnd[i]), "rnd %d: %.17g came back as %.17g", i, g_rnd[i], v);
        found++;
    }
    CHECK_EQ_INT(found, NRND);
}

int main(void) {
    uint64_t rng = check_seed();
    const char *dir = check_tmpdir("api");
    load(dir, &rng);
    api_opts o;
    api_opts_default(&o);
    o.now_ms = fixed_now;
    o.start_ms = T0 + 60000;
    static const char *const flags[] = {"query.timeout", "2m", "query.lookback-delta", "5m", NULL};
    o.flags = flags;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(engine_new(&o.engine, g_db, &g_eng, &err), &err);
    CHECK_OK_ERR(api_new(&o, g_eng, g_db, &g_api, &err), &err);
    if (!g_api) return check_done();
    test_syntax();
    test_query();
    test_query_range();
    test_errors();
    test_sample_limit();
    test_series_and_labels();
    test_status();
    test_random_values();
    api_free(g_api);
    engine_free(g_eng);
    tsdb_close(g_db, NULL);
    check_rmdir(dir);
    return check_done();
}
