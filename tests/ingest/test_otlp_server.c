/* SPDX-License-Identifier: Apache-2.0
 *
 * test_otlp_server.c - OTLP/HTTP metrics against a real `seismo serve`:
 * a request plain and gzipped is answered 200 with an empty
 * ExportMetricsServiceResponse, its samples read back exactly through the
 * query API (gauge, counter, histogram buckets, target_info); a refused
 * point gives partial_success with its count and reason while the rest is
 * stored; JSON bodies, unknown encodings, corrupt protobuf and gzip, and
 * bodies past the size limit get 415 / 400 / 413 with a google.rpc.Status
 * and the server stays up; the counters show in /metrics; what was
 * acknowledged survives kill -9.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "otlp.h"
#include "otlp_metrics.pb-c.h"
#include "rwclient.h"
#include "tsdb/base/sm_buf.h"

static const char *g_dir;
static uint16_t g_port;
static int64_t g_now_s; /* the points' time, in whole seconds */

static pid_t start(void) {
    static const check_serve_opts o = {.log_append = true, .tries = 200, .interval_ms = 50};
    static const char *const extra[] = {"--remote-write.max-decoded-bytes", "1MiB", NULL};
    pid_t pid = check_serve(g_dir, g_port, extra, &o, NULL);
    CHECK_MSG(pid > 0, "server did not start (see %s.log)", g_dir);
    return pid;
}

static Otlp__KeyValue kv_make(const char *k, Otlp__AnyValue *v) {
    Otlp__KeyValue p = OTLP__KEY_VALUE__INIT;
    p.key = (char *)k;
    p.value = v;
    return p;
}

static Otlp__AnyValue str_value(const char *s) {
    Otlp__AnyValue v = OTLP__ANY_VALUE__INIT;
    v.value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = (char *)s;
    return v;
}

/* One request: resource {service.name=shop, service.instance.id=i1,
 * host.name=h1}; gauge "cpu.temp" (Cel, attribute core=0) = temp;
 * monotonic cumulative sum "http.requests" = 42; histogram "rpc.duration"
 * (s) bounds {0.1, 1} counts {1, 2, 3}; with bad_delta also a delta sum
 * "bad.delta" (refused). */
static void build(sm_buf *out, double temp, bool bad_delta) {
    uint64_t t = (uint64_t)g_now_s * 1000000000u;
    Otlp__AnyValue vshop = str_value("shop"), vi1 = str_value("i1"), vh1 = str_value("h1"), v0 = str_value("0");
    Otlp__KeyValue rkv[3] = {kv_make("service.name", &vshop), kv_make("service.instance.id", &vi1),
                             kv_make("host.name", &vh1)};
    Otlp__KeyValue *rkvp[3] = {&rkv[0], &rkv[1], &rkv[2]};
    Otlp__Resource res = OTLP__RESOURCE__INIT;
    res.attributes = rkvp;
    res.n_attributes = 3;
    Otlp__KeyValue core = kv_make("core", &v0), *corep = &core;

    Otlp__NumberDataPoint g = OTLP__NUMBER_DATA_POINT__INIT, c = OTLP__NUMBER_DATA_POINT__INIT,
                          d = OTLP__NUMBER_DATA_POINT__INIT;
    g.attributes = &corep;
    g.n_attributes = 1;
    g.has_time_unix_nano = c.has_time_unix_nano = d.has_time_unix_nano = true;
    g.time_unix_nano = c.time_unix_nano = d.time_unix_nano = t;
    g.value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    g.as_double = temp;
    c.value_case = d.value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
    c.as_int = 42;
    d.as_int = 1;
    Otlp__NumberDataPoint *gp = &g, *cp = &c, *dp = &d;
    Otlp__Gauge gauge = OTLP__GAUGE__INIT;
    gauge.data_points = &gp;
    gauge.n_data_points = 1;
    Otlp__Sum sum = OTLP__SUM__INIT, dsum = OTLP__SUM__INIT;
    sum.data_points = &cp;
    sum.n_data_points = 1;
    sum.has_aggregation_temporality = sum.has_is_monotonic = true;
    sum.aggregation_temporality = 2;
    sum.is_monotonic = true;
    dsum = sum;
    dsum.data_points = &dp;
    dsum.aggregation_temporality = 1;
    double bounds[2] = {0.1, 1};
    uint64_t counts[3] = {1, 2, 3};
    Otlp__HistogramDataPoint h = OTLP__HISTOGRAM_DATA_POINT__INIT, *hp = &h;
    h.has_time_unix_nano = h.has_count = h.has_sum = true;
    h.time_unix_nano = t;
    h.count = 6;
    h.sum = 4.5;
    h.explicit_bounds = bounds;
    h.n_explicit_bounds = 2;
    h.bucket_counts = counts;
    h.n_bucket_counts = 3;
    Otlp__Histogram hist = OTLP__HISTOGRAM__INIT;
    hist.data_points = &hp;
    hist.n_data_points = 1;
    hist.has_aggregation_temporality = true;
    hist.aggregation_temporality = 2;

    Otlp__Metric m[4] = {OTLP__METRIC__INIT, OTLP__METRIC__INIT, OTLP__METRIC__INIT, OTLP__METRIC__INIT};
    m[0].name = "cpu.temp";
    m[0].unit = "Cel";
    m[0].data_case = OTLP__METRIC__DATA_GAUGE;
    m[0].gauge = &gauge;
    m[1].name = "http.requests";
    m[1].data_case = OTLP__METRIC__DATA_SUM;
    m[1].sum = &sum;
    m[2].name = "rpc.duration";
    m[2].unit = "s";
    m[2].data_case = OTLP__METRIC__DATA_HISTOGRAM;
    m[2].histogram = &hist;
    m[3].name = "bad.delta";
    m[3].data_case = OTLP__METRIC__DATA_SUM;
    m[3].sum = &dsum;
    Otlp__Metric *mp[4] = {&m[0], &m[1], &m[2], &m[3]};
    Otlp__ScopeMetrics sm = OTLP__SCOPE_METRICS__INIT, *smp = &sm;
    sm.metrics = mp;
    sm.n_metrics = bad_delta ? 4 : 3;
    Otlp__ResourceMetrics rm = OTLP__RESOURCE_METRICS__INIT, *rmp = &rm;
    rm.resource = &res;
    rm.scope_metrics = &smp;
    rm.n_scope_metrics = 1;
    Otlp__ExportMetricsServiceRequest req = OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.resource_metrics = &rmp;
    req.n_resource_metrics = 1;
    size_t n = otlp__export_metrics_service_request__get_packed_size(&req);
    sm_buf_clear(out);
    CHECK_OK(sm_buf_reserve(out, n + 1));
    otlp__export_metrics_service_request__pack(&req, (uint8_t *)out->p);
    out->len = n;
}

static int post(rwc *c, const char *ct, const char *ce, const sm_buf *b, rwc_resp *r) {
    return rwc_request(c, "POST", "/api/v1/otlp/v1/metrics", ct, ce, b->p, b->len, r);
}

/* The value of an instant query at g_now_s, as the API's JSON has it:
 * `"value":[<t>,"<v>"]` must be in the body. */
static void expect_value(rwc *c, const char *query_escaped, const char *labels_json, const char *v) {
    char path[512], want[512];
    snprintf(path, sizeof path, "/api/v1/query?query=%s&time=%lld", query_escaped, (long long)g_now_s);
    rwc_resp r;
    CHECK_OK(rwc_request(c, "GET", path, NULL, NULL, NULL, 0, &r));
    snprintf(want, sizeof want, "{\"metric\":%s,\"value\":[%lld,\"%s\"]}", labels_json, (long long)g_now_s, v);
    CHECK_MSG(r.status == 200 && strstr(r.body, want), "%s: %u %s (want %s)", query_escaped, r.status, r.body, want);
}

static void expect_status_body(const rwc_resp *r, unsigned status, const char *needle) {
    CHECK_MSG(r->status == status, "status %u, want %u: %s", r->status, status, r->body);
    Otlp__Status *st = otlp__status__unpack(NULL, r->body_len, (const uint8_t *)r->body);
    CHECK_MSG(st != NULL, "the %u answer's body is not a google.rpc.Status", status);
    if (st) {
        CHECK_MSG(st->message && strstr(st->message, needle), "message \"%s\" lacks \"%s\"",
                  st->message ? st->message : "", needle);
        otlp__status__free_unpacked(st, NULL);
    }
}

static void test_roundtrip(rwc *c) {
    sm_buf b = SM_BUF_INIT, gz = SM_BUF_INIT;
    rwc_resp r;
    build(&b, 61.25, false);
    CHECK_OK(post(c, "application/x-protobuf", NULL, &b, &r));
    CHECK_MSG(r.status == 200, "plain: %u %s", r.status, r.body);
    CHECK_EQ_INT(r.body_len, 0); /* an ExportMetricsServiceResponse with nothing in it */
    /* The same points again, gzipped: identical samples, accepted. */
    sm_buf_clear(&gz);
    CHECK_OK(otlp_gzip(b.p, b.len, &gz));
    CHECK_OK(post(c, "application/x-protobuf", "gzip", &gz, &r));
    CHECK_MSG(r.status == 200 && r.body_len == 0, "gzip: %u %s", r.status, r.body);
    expect_value(c, "cpu_temp_celsius",
                 "{\"__name__\":\"cpu_temp_celsius\",\"core\":\"0\",\"instance\":\"i1\",\"job\":\"shop\"}", "61.25");
    expect_value(c, "http_requests_total", "{\"__name__\":\"http_requests_total\",\"instance\":\"i1\",\"job\":\"shop\"}",
                 "42");
    expect_value(c, "rpc_duration_seconds_bucket%7Ble%3D%220.1%22%7D",
                 "{\"__name__\":\"rpc_duration_seconds_bucket\",\"instance\":\"i1\",\"job\":\"shop\",\"le\":\"0.1\"}",
                 "1");
    expect_value(c, "rpc_duration_seconds_bucket%7Ble%3D%22%2BInf%22%7D",
                 "{\"__name__\":\"rpc_duration_seconds_bucket\",\"instance\":\"i1\",\"job\":\"shop\",\"le\":\"+Inf\"}",
                 "6");
    expect_value(c, "rpc_duration_seconds_sum",
                 "{\"__name__\":\"rpc_duration_seconds_sum\",\"instance\":\"i1\",\"job\":\"shop\"}", "4.5");
    expect_value(c, "target_info",
                 "{\"__name__\":\"target_info\",\"host_name\":\"h1\",\"instance\":\"i1\",\"job\":\"shop\"}", "1");
    /* A refused point: 200 with partial_success, the rest stored. */
    g_now_s += 15;
    build(&b, 62.5, true);
    CHECK_OK(post(c, "application/x-protobuf", NULL, &b, &r));
    CHECK_MSG(r.status == 200, "partial: %u %s", r.status, r.body);
    Otlp__ExportMetricsServiceResponse *er =
        otlp__export_metrics_service_response__unpack(NULL, r.body_len, (const uint8_t *)r.body);
    CHECK(er && er->partial_success);
    if (er && er->partial_success) {
        CHECK_EQ_INT(er->partial_success->rejected_data_points, 1);
        CHECK_MSG(strstr(er->partial_success->error_message, "bad.delta") &&
                      strstr(er->partial_success->error_message, "delta temporality"),
                  "partial_success message: %s", er->partial_success->error_message);
    }
    otlp__export_metrics_service_response__free_unpacked(er, NULL);
    expect_value(c, "cpu_temp_celsius",
                 "{\"__name__\":\"cpu_temp_celsius\",\"core\":\"0\",\"instance\":\"i1\",\"job\":\"shop\"}", "62.5");
    sm_buf_fini(&b);
    sm_buf_fini(&gz);
}

static void test_bad_input(rwc *c) {
    sm_buf b = SM_BUF_INIT, gz = SM_BUF_INIT;
    rwc_resp r;
    build(&b, 1, false);
    CHECK_OK(post(c, "application/json", NULL, &b, &r));
    CHECK_MSG(r.status == 415 && strstr(r.body, "JSON is not supported"), "json: %u %s", r.status, r.body);
    CHECK_OK(post(c, "text/plain", NULL, &b, &r));
    expect_status_body(&r, 415, "is not application/x-protobuf");
    CHECK_OK(post(c, "application/x-protobuf", "br", &b, &r));
    expect_status_body(&r, 415, "Content-Encoding \"br\"");
    /* Not the message: a truncated body, and gzip that is not. */
    sm_buf cut = b;
    cut.len = b.len - 3;
    CHECK_OK(post(c, "application/x-protobuf", NULL, &cut, &r));
    expect_status_body(&r, 400, "invalid protobuf ExportMetricsServiceRequest");
    CHECK_OK(post(c, "application/x-protobuf", "gzip", &b, &r));
    expect_status_body(&r, 400, "gzip");
    /* Past the 1 MiB decoded limit (the server's flag): a gzip bomb is
     * refused with 413 without inflating all of it, and so is a plain body. */
    sm_buf zeros = SM_BUF_INIT;
    CHECK_OK(sm_buf_reserve(&zeros, 3u << 20));
    memset(zeros.p, 0, 3u << 20);
    zeros.len = 3u << 20;
    sm_buf_clear(&gz);
    CHECK_OK(otlp_gzip(zeros.p, zeros.len, &gz));
    CHECK_OK(post(c, "application/x-protobuf", "gzip", &gz, &r));
    expect_status_body(&r, 413, "more than the limit");
    CHECK_OK(post(c, "application/x-protobuf", NULL, &zeros, &r));
    expect_status_body(&r, 413, "more than the limit");
    sm_buf_fini(&zeros);
    CHECK_EQ_INT(check_http_status(g_port, "/-/healthy"), 200);
    sm_buf_fini(&b);
    sm_buf_fini(&gz);
}

/* The families of /metrics this test is about, read whole through a
 * bigger buffer than rwc_resp's. */
static void test_metrics_text(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%u/metrics", g_port);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    pclose(f);
    if (!n) {
        check_skip("curl is not installed (scripts/deps.sh test installs it)");
    }
    CHECK_MSG(strstr(text, "seismo_otlp_requests_total{status=\"2xx\"} 3\n"), "2xx count missing");
    CHECK_MSG(strstr(text, "seismo_otlp_requests_total{status=\"400\"} 2\n"), "400 count missing");
    CHECK_MSG(strstr(text, "seismo_otlp_requests_total{status=\"413\"} 2\n"), "413 count missing");
    CHECK_MSG(strstr(text, "seismo_otlp_requests_total{status=\"415\"} 3\n"), "415 count missing");
    CHECK_MSG(strstr(text, "seismo_otlp_data_points_received_total 10\n"), "points received missing");
    CHECK_MSG(strstr(text, "seismo_otlp_data_points_rejected_total 1\n"), "points rejected missing");
}

int main(void) {
    g_dir = check_tmpdir("otlp-server");
    g_port = check_free_port();
    g_now_s = ((int64_t)time(NULL) - 60) / 15 * 15;
    pid_t pid = start();
    if (pid <= 0) return check_done();
    rwc *c = NULL;
    CHECK_OK(rwc_connect("127.0.0.1", g_port, &c));
    test_roundtrip(c);
    test_bad_input(c);
    test_metrics_text();
    rwc_close(c);
    /* Acknowledged points survive kill -9. */
    check_stop(pid, SIGKILL);
    pid = start();
    if (pid > 0) {
        CHECK_OK(rwc_connect("127.0.0.1", g_port, &c));
        expect_value(c, "cpu_temp_celsius",
                     "{\"__name__\":\"cpu_temp_celsius\",\"core\":\"0\",\"instance\":\"i1\",\"job\":\"shop\"}", "62.5");
        g_now_s -= 15;
        expect_value(c, "http_requests_total",
                     "{\"__name__\":\"http_requests_total\",\"instance\":\"i1\",\"job\":\"shop\"}", "42");
        rwc_close(c);
        check_stop(pid, SIGTERM);
    }
    return check_done();
}
