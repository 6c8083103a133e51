/* SPDX-License-Identifier: Apache-2.0
 *
 * test_otlp.c - OTLP/HTTP metrics into series (ingest/otlp.c): metric
 * names with their unit and type suffixes, attributes as labels (sanitised,
 * merged, typed values), job, instance and target_info from the resource,
 * gauges, sums, histograms and summaries with every sample checked, the
 * points that are refused and why (delta temporality, exponential
 * histograms, bad buckets, label rules and limits) while the rest stays,
 * corrupt bodies, gzip bodies and their limit, and the answer bodies.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "otlp.h"
#include "otlp_metrics.pb-c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_types.h"

static rw_limits lim;
static sm_arena *ta; /* the test's request structures */

/* ---- Building requests ---- */

static Otlp__AnyValue *any_s(const char *s) {
    Otlp__AnyValue *v = sm_arena_alloc(ta, sizeof *v);
    otlp__any_value__init(v);
    v->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static Otlp__KeyValue *kv(const char *k, Otlp__AnyValue *v) {
    Otlp__KeyValue *p = sm_arena_alloc(ta, sizeof *p);
    otlp__key_value__init(p);
    p->key = (char *)k;
    p->value = v;
    return p;
}

static Otlp__KeyValue *kvs(const char *k, const char *v) { return kv(k, any_s(v)); }

static Otlp__KeyValue **kv_list(size_t n, Otlp__KeyValue *const *in) {
    Otlp__KeyValue **v = sm_arena_alloc(ta, (n ? n : 1) * sizeof *v);
    memcpy(v, in, n * sizeof *v);
    return v;
}
#define KVS(...) kv_list(sizeof((Otlp__KeyValue *[]){__VA_ARGS__}) / sizeof(Otlp__KeyValue *), \
                         (Otlp__KeyValue *[]){__VA_ARGS__})

static Otlp__NumberDataPoint *num(Otlp__KeyValue **attrs, size_t nattrs, uint64_t t_ns, double v) {
    Otlp__NumberDataPoint *p = sm_arena_alloc(ta, sizeof *p);
    otlp__number_data_point__init(p);
    p->attributes = attrs;
    p->n_attributes = nattrs;
    p->has_time_unix_nano = true;
    p->time_unix_nano = t_ns;
    p->value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    return p;
}

static Otlp__Metric *metric(const char *name, const char *unit) {
    Otlp__Metric *m = sm_arena_alloc(ta, sizeof *m);
    otlp__metric__init(m);
    m->name = (char *)name;
    m->unit = (char *)unit;
    return m;
}

static Otlp__Metric *gauge(const char *name, const char *unit, size_t n, Otlp__NumberDataPoint **pts) {
    Otlp__Metric *m = metric(name, unit);
    Otlp__Gauge *g = sm_arena_alloc(ta, sizeof *g);
    otlp__gauge__init(g);
    g->n_data_points = n;
    g->data_points = pts;
    m->data_case = OTLP__METRIC__DATA_GAUGE;
    m->gauge = g;
    return m;
}

static Otlp__Metric *sum(const char *name, const char *unit, int temporality, bool monotonic, size_t n,
                         Otlp__NumberDataPoint **pts) {
    Otlp__Metric *m = metric(name, unit);
    Otlp__Sum *s = sm_arena_alloc(ta, sizeof *s);
    otlp__sum__init(s);
    s->n_data_points = n;
    s->data_points = pts;
    s->has_aggregation_temporality = true;
    s->aggregation_temporality = temporality;
    s->has_is_monotonic = true;
    s->is_monotonic = monotonic;
    m->data_case = OTLP__METRIC__DATA_SUM;
    m->sum = s;
    return m;
}

static Otlp__NumberDataPoint **pts1(Otlp__NumberDataPoint *p) {
    Otlp__NumberDataPoint **v = sm_arena_alloc(ta, sizeof *v);
    v[0] = p;
    return v;
}

/* One resource (attrs) with one scope holding the metrics; body into b. */
static void request(sm_buf *b, Otlp__KeyValue **rattrs, size_t nr, Otlp__Metric **ms, size_t nm) {
    Otlp__Resource res = OTLP__RESOURCE__INIT;
    res.attributes = rattrs;
    res.n_attributes = nr;
    Otlp__ScopeMetrics sm = OTLP__SCOPE_METRICS__INIT;
    sm.metrics = ms;
    sm.n_metrics = nm;
    Otlp__ScopeMetrics *smp = &sm;
    Otlp__ResourceMetrics rm = OTLP__RESOURCE_METRICS__INIT;
    rm.resource = &res;
    rm.scope_metrics = &smp;
    rm.n_scope_metrics = 1;
    Otlp__ResourceMetrics *rmp = &rm;
    Otlp__ExportMetricsServiceRequest req = OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.resource_metrics = &rmp;
    req.n_resource_metrics = 1;
    size_t n = otlp__export_metrics_service_request__get_packed_size(&req);
    sm_buf_clear(b);
    CHECK_OK(sm_buf_reserve(b, n + 1));
    otlp__export_metrics_service_request__pack(&req, (uint8_t *)b->p);
    b->len = n;
}

/* ---- Reading results ---- */

/* The series whose labels, formatted, are want; NULL when none is. */
static const tsdb_series_in *find(const otlp_request *r, const char *want) {
    for (size_t i = 0; i < r->rw.n; i++) {
        char buf[1024];
        sm_labels_format(&r->rw.series[i].labels, buf, sizeof buf);
        if (!strcmp(buf, want)) return &r->rw.series[i];
    }
    return NULL;
}

static void dump(const otlp_request *r) {
    for (size_t i = 0; i < r->rw.n; i++) {
        char buf[1024];
        sm_labels_format(&r->rw.series[i].labels, buf, sizeof buf);
        fprintf(stderr, "  series %zu: %s %g @%lld\n", i, buf, r->rw.series[i].samples[0].v,
                (long long)r->rw.series[i].samples[0].t);
    }
}

static void expect(const otlp_request *r, const char *labels, int64_t t, double v) {
    const tsdb_series_in *s = find(r, labels);
    CHECK_MSG(s != NULL, "no series %s", labels);
    if (!s) {
        dump(r);
        return;
    }
    CHECK_EQ_INT(s->n, 1);
    CHECK_EQ_INT(s->samples[0].t, t);
    CHECK_MSG(sm_f64_bits(s->samples[0].v) == sm_f64_bits(v), "%s: %.17g, want %.17g", labels, s->samples[0].v, v);
}

static int decode(const sm_buf *b, sm_arena *a, otlp_request *r, sm_error *err) {
    return otlp_decode((const uint8_t *)b->p, b->len, &lim, a, r, err);
}

/* ---- Tests ---- */

/* Metric names: (OTLP name, unit, kind) -> Prometheus name. */
static void test_names(void) {
    static const struct {
        const char *name, *unit;
        int kind; /* 0 gauge, 1 monotonic sum, 2 non-monotonic sum */
        const char *want;
    } cases[] = {
        {"system.cpu.time", "s", 1, "system_cpu_time_seconds_total"},
        {"requests", "1", 0, "requests_ratio"},
        {"requests_ratio", "1", 0, "requests_ratio"},
        {"x", "1", 2, "x"},
        {"foo_total", "", 1, "foo_total"},
        {"foo.total.count", "", 1, "foo_count_total"},
        {"network.io", "By/s", 0, "network_io_bytes_per_second"},
        {"items", "{items}", 0, "items"},
        {"queue.size", "{message}", 2, "queue_size"},
        {"2xx.count", "", 0, "_2xx_count"},
        {"latency_seconds", "s", 0, "latency_seconds"},
        {"mem", "KiBy", 2, "mem_kibibytes"},
        {"cpu..util__x", "%", 0, "cpu_util_x_percent"},
        {"speed", "m/s", 0, "speed_meters_per_second"},
        {"odd", "foo.bar", 0, "odd_foo_bar"},
        {"weird", "/s", 0, "weird_per_second"},
        {"a:b", "", 0, "a:b"},
        {"temp", " Cel ", 0, "temp_celsius"},
        {"http.server.active_requests", "{request}", 2, "http_server_active_requests"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Otlp__NumberDataPoint *p = num(NULL, 0, 5000000000ull, 1);
        Otlp__Metric *m = cases[i].kind == 0 ? gauge(cases[i].name, cases[i].unit, 1, pts1(p))
                                             : sum(cases[i].name, cases[i].unit, 2, cases[i].kind == 1, 1, pts1(p));
        sm_buf b = SM_BUF_INIT;
        request(&b, NULL, 0, (Otlp__Metric *[]){m}, 1);
        sm_arena *a = sm_arena_new(0, 0);
        otlp_request r;
        sm_error err = {0};
        CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
        CHECK_EQ_INT(r.rw.n, 1);
        if (r.rw.n == 1) {
            CHECK_EQ_INT(r.rw.series[0].labels.n, 1);
            CHECK_EQ_STR(r.rw.series[0].labels.v[0].value, cases[i].want);
        }
        sm_arena_free(a);
        sm_buf_fini(&b);
    }
    /* Nothing left of the name: every point refused, with the name said. */
    sm_buf b = SM_BUF_INIT;
    request(&b, NULL, 0, (Otlp__Metric *[]){gauge("---", "", 1, pts1(num(NULL, 0, 1, 1)))}, 1);
    sm_arena *a = sm_arena_new(0, 0);
    otlp_request r;
    sm_error err = {0};
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_INT(r.rw.n, 0);
    CHECK_EQ_U64(r.points, 1);
    CHECK_EQ_U64(r.rejected_points, 1);
    CHECK(strstr(r.rw.reject.msg, "---") != NULL);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

/* Attributes and the resource: sanitised keys, merged values, typed
 * values, empty ones dropped; job/instance; target_info. */
static void test_labels_and_resource(void) {
    Otlp__AnyValue *vi = any_s(""), *vb = any_s(""), *vd = any_s(""), *va = any_s("");
    vi->value_case = OTLP__ANY_VALUE__VALUE_INT_VALUE;
    vi->int_value = -42;
    vb->value_case = OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
    vb->bool_value = true;
    vd->value_case = OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
    vd->double_value = 0.25;
    Otlp__ArrayValue arr = OTLP__ARRAY_VALUE__INIT;
    Otlp__AnyValue *elems[] = {any_s("a\"b"), vi};
    arr.values = elems;
    arr.n_values = 2;
    va->value_case = OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
    va->array_value = &arr;
    Otlp__AnyValue *vby = any_s("");
    vby->value_case = OTLP__ANY_VALUE__VALUE_BYTES_VALUE;
    vby->bytes_value = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
    Otlp__KeyValue **attrs = KVS(kvs("http.method", "GET"), kvs("a_b", "second"), kvs("a.b", "first"),
                                 kvs("9lives", "cat"), kvs("empty", ""), kv("int", vi), kv("flag", vb),
                                 kv("ratio", vd), kv("list", va), kv("raw", vby), kvs("job", "from-point"),
                                 kvs("__name__", "ignored"));
    Otlp__NumberDataPoint *p = num(attrs, 12, 1700000000123456789ull, 3.5);
    Otlp__KeyValue **rattrs = KVS(kvs("service.name", "api"), kvs("service.namespace", "shop"),
                                  kvs("service.instance.id", "pod-7"), kvs("host.name", "h1"),
                                  kvs("cloud.region", "eu-west-1"));
    Otlp__NumberDataPoint *p2 = num(NULL, 0, 1700000001000000000ull, 7);
    sm_buf b = SM_BUF_INIT;
    request(&b, rattrs, 5, (Otlp__Metric *[]){gauge("g", "", 1, pts1(p)), gauge("h", "", 1, pts1(p2))}, 2);
    sm_arena *a = sm_arena_new(0, 0);
    otlp_request r;
    sm_error err = {0};
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_INT(r.rw.n, 3);
    CHECK_EQ_U64(r.rw.samples, 3);
    CHECK_EQ_U64(r.rejected_points, 0);
    expect(&r,
           "g{a_b=\"first;second\", flag=\"true\", http_method=\"GET\", instance=\"pod-7\", "
           "int=\"-42\", job=\"shop/api\", key_9lives=\"cat\", list=\"[\\\"a\\\\\\\"b\\\",-42]\", "
           "ratio=\"0.25\", raw=\"aGVsbG8=\"}",
           1700000000123, 3.5);
    expect(&r, "h{instance=\"pod-7\", job=\"shop/api\"}", 1700000001000, 7);
    /* target_info at the resource's latest point, with its other attributes. */
    expect(&r,
           "target_info{cloud_region=\"eu-west-1\", host_name=\"h1\", instance=\"pod-7\", "
           "job=\"shop/api\"}",
           1700000001000, 1);
    sm_arena_free(a);

    /* No service.namespace: job is service.name; no other attribute: no
     * target_info. */
    request(&b, KVS(kvs("service.name", "api")), 1, (Otlp__Metric *[]){gauge("g", "", 1, pts1(p2))}, 1);
    a = sm_arena_new(0, 0);
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_INT(r.rw.n, 1);
    expect(&r, "g{job=\"api\"}", 1700000001000, 7);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

static void test_sums_and_flags(void) {
    Otlp__NumberDataPoint *p = num(KVS(kvs("k", "v")), 1, 2000000000ull, 10);
    Otlp__NumberDataPoint *pi = num(NULL, 0, 3000000000ull, 0);
    pi->value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
    pi->as_int = -9007199254740993ll; /* not exact in a double: rounds as a cast does */
    Otlp__NumberDataPoint *pstale = num(NULL, 0, 4000000000ull, 5);
    pstale->has_flags = true;
    pstale->flags = 1;
    Otlp__NumberDataPoint *pd = num(NULL, 0, 5000000000ull, 1);
    Otlp__NumberDataPoint *pu = num(NULL, 0, 5000000000ull, 1);
    Otlp__Metric *ms[] = {sum("c", "", 2, true, 1, pts1(p)), gauge("i", "", 1, pts1(pi)),
                          gauge("st", "", 1, pts1(pstale)), sum("d", "", 1, true, 1, pts1(pd)),
                          sum("u", "", 0, false, 1, pts1(pu))};
    sm_buf b = SM_BUF_INIT;
    request(&b, NULL, 0, ms, 5);
    sm_arena *a = sm_arena_new(0, 0);
    otlp_request r;
    sm_error err = {0};
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_INT(r.rw.n, 3);
    CHECK_EQ_U64(r.points, 5);
    CHECK_EQ_U64(r.rejected_points, 2);
    CHECK_EQ_U64(r.rw.rejected_samples, 2);
    expect(&r, "c_total{k=\"v\"}", 2000, 10);
    expect(&r, "i{}", 3000, (double)-9007199254740993ll);
    expect(&r, "st{}", 4000, sm_f64_from_bits(SM_STALE_NAN_BITS));
    CHECK(strstr(r.rw.reject.msg, "\"d\"") && strstr(r.rw.reject.msg, "delta"));
    sm_arena_free(a);
    sm_buf_fini(&b);
}

static Otlp__Metric *histogram(const char *name, int temporality, Otlp__HistogramDataPoint *p) {
    Otlp__Metric *m = metric(name, "s");
    Otlp__Histogram *h = sm_arena_alloc(ta, sizeof *h);
    otlp__histogram__init(h);
    Otlp__HistogramDataPoint **v = sm_arena_alloc(ta, sizeof *v);
    v[0] = p;
    h->data_points = v;
    h->n_data_points = 1;
    h->has_aggregation_temporality = true;
    h->aggregation_temporality = temporality;
    m->data_case = OTLP__METRIC__DATA_HISTOGRAM;
    m->histogram = h;
    return m;
}

static Otlp__HistogramDataPoint *hpoint(size_t nb, const double *bounds, size_t nc, const uint64_t *counts,
                                        uint64_t count, bool has_sum, double s) {
    Otlp__HistogramDataPoint *p = sm_arena_alloc(ta, sizeof *p);
    otlp__histogram_data_point__init(p);
    p->has_time_unix_nano = true;
    p->time_unix_nano = 9000000000ull;
    p->n_explicit_bounds = nb;
    p->explicit_bounds = (double *)bounds;
    p->n_bucket_counts = nc;
    p->bucket_counts = (uint64_t *)counts;
    p->has_count = true;
    p->count = count;
    p->has_sum = has_sum;
    p->sum = s;
    p->n_attributes = 1;
    p->attributes = KVS(kvs("route", "/x"));
    return p;
}

static void test_histograms_and_summaries(void) {
    static const double bounds[] = {0.005, 0.1, 1, 1e21};
    static const uint64_t counts[] = {1, 2, 3, 0, 4};
    Otlp__SummaryDataPoint sp = OTLP__SUMMARY_DATA_POINT__INIT;
    sp.has_time_unix_nano = true;
    sp.time_unix_nano = 8000000000ull;
    sp.has_count = true;
    sp.count = 12;
    sp.has_sum = true;
    sp.sum = 1.5;
    Otlp__SummaryDataPoint__ValueAtQuantile q1 = OTLP__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT,
                                            q2 = OTLP__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
    q1.has_quantile = q1.has_value = q2.has_quantile = q2.has_value = true;
    q1.quantile = 0.5;
    q1.value = 0.1;
    q2.quantile = 0.99;
    q2.value = 0.75;
    Otlp__SummaryDataPoint__ValueAtQuantile *qs[] = {&q1, &q2};
    sp.quantile_values = qs;
    sp.n_quantile_values = 2;
    Otlp__SummaryDataPoint *spp = &sp;
    Otlp__Summary su = OTLP__SUMMARY__INIT;
    su.data_points = &spp;
    su.n_data_points = 1;
    Otlp__Metric *msum = metric("rpc.latency", "ms");
    msum->data_case = OTLP__METRIC__DATA_SUMMARY;
    msum->summary = &su;
    Otlp__Metric *ms[] = {
        histogram("http.duration", 2, hpoint(4, bounds, 5, counts, 10, true, 5.5)),
        histogram("nosum", 2, hpoint(0, NULL, 0, NULL, 3, false, 0)),
        histogram("bad", 2, hpoint(4, bounds, 3, counts, 10, true, 5.5)),      /* counts do not fit */
        histogram("unsorted", 2, hpoint(2, (const double[]){1, 0.5}, 3, counts, 6, false, 0)),
        histogram("delta", 1, hpoint(4, bounds, 5, counts, 10, true, 5.5)),
        msum,
    };
    sm_buf b = SM_BUF_INIT;
    request(&b, NULL, 0, ms, 6);
    sm_arena *a = sm_arena_new(0, 0);
    otlp_request r;
    sm_error err = {0};
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_U64(r.points, 6);
    CHECK_EQ_U64(r.rejected_points, 3);
    CHECK_EQ_INT(r.rw.n, 7 + 2 + 4);
    CHECK_EQ_U64(r.rw.samples, 13);
    const char *h = "http_duration_seconds";
    char want[256];
    static const struct { const char *le; double v; } buckets[] = {
        {"0.005", 1}, {"0.1", 3}, {"1", 6}, {"1000000000000000000000", 6}, {"+Inf", 10}};
    for (size_t i = 0; i < 5; i++) {
        snprintf(want, sizeof want, "%s_bucket{le=\"%s\", route=\"/x\"}", h, buckets[i].le);
        expect(&r, want, 9000, buckets[i].v);
    }
    expect(&r, "http_duration_seconds_sum{route=\"/x\"}", 9000, 5.5);
    expect(&r, "http_duration_seconds_count{route=\"/x\"}", 9000, 10);
    expect(&r, "nosum_seconds_bucket{le=\"+Inf\", route=\"/x\"}", 9000, 3);
    expect(&r, "nosum_seconds_count{route=\"/x\"}", 9000, 3);
    CHECK(find(&r, "nosum_seconds_sum{route=\"/x\"}") == NULL);
    expect(&r, "rpc_latency_milliseconds{quantile=\"0.5\"}", 8000, 0.1);
    expect(&r, "rpc_latency_milliseconds{quantile=\"0.99\"}", 8000, 0.75);
    expect(&r, "rpc_latency_milliseconds_sum{}", 8000, 1.5);
    expect(&r, "rpc_latency_milliseconds_count{}", 8000, 12);
    CHECK(strstr(r.rw.reject.msg, "\"bad\"") && strstr(r.rw.reject.msg, "bucket counts"));
    sm_arena_free(a);

    /* No recorded value: every series of the point is a stale marker. */
    Otlp__HistogramDataPoint *hs = hpoint(1, bounds, 2, counts, 3, true, 1);
    hs->has_flags = true;
    hs->flags = 1;
    request(&b, NULL, 0, (Otlp__Metric *[]){histogram("gone", 2, hs)}, 1);
    a = sm_arena_new(0, 0);
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_INT(r.rw.n, 4);
    for (size_t i = 0; i < r.rw.n; i++) CHECK(sm_f64_bits(r.rw.series[i].samples[0].v) == SM_STALE_NAN_BITS);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

static void test_refused(void) {
    /* An exponential histogram: counted as a native histogram, refused. */
    Otlp__ExponentialHistogramDataPoint ep = OTLP__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT, *epp = &ep;
    Otlp__ExponentialHistogram eh = OTLP__EXPONENTIAL_HISTOGRAM__INIT;
    eh.data_points = &epp;
    eh.n_data_points = 1;
    Otlp__Metric *me = metric("exp", "");
    me->data_case = OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    me->exponential_histogram = &eh;
    /* Label rules and limits: invalid UTF-8, too many labels, a long value,
     * an empty key.  The good point beside them stays. */
    Otlp__KeyValue *many[80];
    char keys[80][8];
    for (int i = 0; i < 80; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = kvs(keys[i], "v");
    }
    static char longv[5000];
    memset(longv, 'x', sizeof longv - 1);
    Otlp__NumberDataPoint *bad[] = {num(KVS(kvs("u", "\xff\xfe")), 1, 1000000000ull, 1),
                                    num(kv_list(80, many), 80, 1000000000ull, 1),
                                    num(KVS(kvs("l", longv)), 1, 1000000000ull, 1),
                                    num(KVS(kvs("", "v")), 1, 1000000000ull, 1),
                                    num(KVS(kvs("ok", "yes")), 1, 1000000000ull, 2)};
    sm_buf b = SM_BUF_INIT;
    request(&b, NULL, 0, (Otlp__Metric *[]){me, gauge("g", "", 5, bad)}, 2);
    sm_arena *a = sm_arena_new(0, 0);
    otlp_request r;
    sm_error err = {0};
    CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
    CHECK_EQ_U64(r.points, 6);
    CHECK_EQ_U64(r.rejected_points, 5);
    CHECK_EQ_U64(r.rw.histograms, 1);
    CHECK_EQ_INT(r.rw.n, 1);
    expect(&r, "g{ok=\"yes\"}", 1000, 2);
    CHECK(strstr(r.rw.reject.msg, "exp") && strstr(r.rw.reject.msg, "exponential"));
    sm_arena_free(a);

    /* The limit on the body, and bodies that are not the message. */
    CHECK_OK(sm_buf_reserve(&b, 1));
    a = sm_arena_new(0, 0);
    rw_limits small = lim;
    small.max_decoded_bytes = b.len - 1;
    CHECK_EQ_INT(otlp_decode((const uint8_t *)b.p, b.len, &small, a, &r, &err), SM_ELIMIT);
    static const uint8_t junk[][4] = {{0x0a, 0x05, 0x01}, {0x0b}, {0xff, 0xff, 0xff, 0xff}, {0x0a, 0x02, 0x12}};
    static const size_t junk_len[] = {3, 1, 4, 3};
    for (size_t i = 0; i < 4; i++) CHECK_EQ_INT(otlp_decode(junk[i], junk_len[i], &lim, a, &r, &err), SM_ECORRUPT);
    /* An empty body is an empty request. */
    CHECK_OK(otlp_decode((const uint8_t *)"", 0, &lim, a, &r, &err));
    CHECK_EQ_INT(r.rw.n, 0);
    sm_arena_free(a);
    /* Structures past the arena's limit: too large to decode whenever it is
     * sent (413, not a 503 to retry for ever), not a crash. */
    sm_buf big = SM_BUF_INIT;
    for (int i = 0; i < 200000; i++) CHECK_OK(sm_buf_append(&big, "\x0a\x00", 2));
    a = sm_arena_new(0, 1u << 20);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(otlp_decode((const uint8_t *)big.p, big.len, &lim, a, &r, &err), SM_ELIMIT);
    CHECK(strstr(err.msg, "send smaller requests") != NULL);
    sm_arena_free(a);
    sm_buf_fini(&big);
    sm_buf_fini(&b);
}

/* Many resources, metrics and points with random values: every sample
 * arrives bit for bit under its labels. */
static void test_random(uint64_t *rng) {
    for (int round = 0; round < 30; round++) {
        size_t nm = 1 + check_rand_below(rng, 20);
        Otlp__Metric **ms = sm_arena_alloc(ta, nm * sizeof *ms);
        char (*names)[24] = sm_arena_alloc(ta, nm * sizeof *names);
        size_t total = 0;
        for (size_t i = 0; i < nm; i++) {
            snprintf(names[i], sizeof names[i], "m%zu", i);
            size_t np = 1 + check_rand_below(rng, 30);
            Otlp__NumberDataPoint **pts = sm_arena_alloc(ta, np * sizeof *pts);
            for (size_t k = 0; k < np; k++) {
                char *v = sm_arena_alloc(ta, 24);
                snprintf(v, 24, "%zu", k);
                uint64_t bits[] = {SM_STALE_NAN_BITS, 0x7ff8000000000001ull, 0xfff0000000000000ull, check_rand(rng)};
                pts[k] = num(KVS(kvs("p", v)), 1, (check_rand(rng) >> 24) * 1000000u,
                             sm_f64_from_bits(bits[check_rand_below(rng, 4)]));
            }
            ms[i] = gauge(names[i], "", np, pts);
            total += np;
        }
        sm_buf b = SM_BUF_INIT;
        request(&b, KVS(kvs("service.name", "r")), 1, ms, nm);
        sm_arena *a = sm_arena_new(0, 0);
        otlp_request r;
        sm_error err = {0};
        CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
        CHECK_EQ_INT(r.rw.n, total);
        for (size_t i = 0, j = 0; i < nm && j < r.rw.n; i++)
            for (size_t k = 0; k < ms[i]->gauge->n_data_points; k++, j++) {
                const Otlp__NumberDataPoint *p = ms[i]->gauge->data_points[k];
                const tsdb_series_in *s = &r.rw.series[j];
                CHECK_EQ_STR(sm_labels_get(&s->labels, "__name__"), names[i]);
                CHECK_EQ_STR(sm_labels_get(&s->labels, "p"), p->attributes[0]->value->string_value);
                CHECK_EQ_STR(sm_labels_get(&s->labels, "job"), "r");
                CHECK_EQ_INT(s->samples[0].t, (int64_t)(p->time_unix_nano / 1000000u));
                CHECK(sm_f64_bits(s->samples[0].v) == sm_f64_bits(p->as_double));
            }
        sm_arena_free(a);
        sm_buf_fini(&b);
    }
}

/* otlp_encode (the benchmark's bodies) decodes to the series it was given:
 * resources from job and instance, counters through a monotonic sum and
 * back, several samples of a series as several points, every value's bits
 * kept; otlp_gzip appends a member otlp_gunzip reads back. */
static void test_encode(uint64_t *rng) {
    enum { NS = 60 };
    static const char *names[] = {"node_cpu_seconds_total", "node_load1", "go_gc_duration_seconds"};
    sm_label lv[NS][4];
    char inst[NS][16], cpu[NS][8];
    tsdb_sample smp[NS][2];
    tsdb_series_in in[NS];
    uint64_t want_samples = 0;
    for (size_t i = 0; i < NS; i++) {
        snprintf(inst[i], sizeof inst[i], "host-%zu:9100", i / 20);
        snprintf(cpu[i], sizeof cpu[i], "%zu", i % 4);
        /* Sorted: __name__, cpu, instance, job; runs of one name per host. */
        lv[i][0] = (sm_label){"__name__", names[(i % 20) / 7]};
        lv[i][1] = (sm_label){"cpu", cpu[i]};
        lv[i][2] = (sm_label){"instance", inst[i]};
        lv[i][3] = (sm_label){"job", i < 40 ? "node" : "other"};
        uint32_t n = 1 + (i % 5 == 0);
        for (uint32_t k = 0; k < n; k++)
            smp[i][k] = (tsdb_sample){1700000000000 + (int64_t)k * 15000 + (int64_t)i,
                                      sm_f64_from_bits(check_rand(rng) >> 2)};
        in[i] = (tsdb_series_in){{lv[i], 4}, smp[i], n};
        want_samples += n;
    }
    sm_buf b = SM_BUF_INIT, gz = SM_BUF_INIT;
    CHECK_OK(otlp_encode(in, NS, &b));
    Otlp__ExportMetricsServiceRequest *req = otlp__export_metrics_service_request__unpack(NULL, b.len, b.p);
    CHECK(req != NULL);
    if (req) {
        CHECK_EQ_INT(req->n_resource_metrics, 3);
        CHECK_EQ_INT(req->resource_metrics[0]->scope_metrics[0]->n_metrics, 3);
        CHECK_EQ_INT(req->resource_metrics[0]->scope_metrics[0]->metrics[0]->data_case, OTLP__METRIC__DATA_SUM);
        CHECK_EQ_STR(req->resource_metrics[0]->scope_metrics[0]->metrics[0]->name, "node_cpu_seconds");
        otlp__export_metrics_service_request__free_unpacked(req, NULL);
    }
    CHECK_OK(sm_buf_append(&gz, "x", 1));
    CHECK_OK(otlp_gzip(b.p, b.len, &gz));
    sm_arena *a = sm_arena_new(0, 0);
    const uint8_t *raw;
    size_t rawn;
    sm_error err = {0};
    CHECK_OK_ERR(otlp_gunzip((const uint8_t *)gz.p + 1, gz.len - 1, 1u << 20, a, &raw, &rawn, &err), &err);
    CHECK(rawn == b.len && !memcmp(raw, b.p, b.len));
    otlp_request r;
    CHECK_OK_ERR(otlp_decode(raw, rawn, &lim, a, &r, &err), &err);
    CHECK_EQ_INT(r.points, want_samples);
    CHECK_EQ_INT(r.rejected_points, 0);
    CHECK_EQ_INT(r.rw.n, want_samples);
    for (size_t i = 0, j = 0; i < NS; i++)
        for (uint32_t k = 0; k < in[i].n && j < r.rw.n; k++, j++) {
            const tsdb_series_in *s = &r.rw.series[j];
            CHECK_MSG(sm_labels_equal(&s->labels, &in[i].labels), "series %zu point %u: labels differ", i, k);
            CHECK_EQ_INT(s->n, 1);
            CHECK_EQ_INT(s->samples[0].t, in[i].samples[k].t);
            CHECK(sm_f64_bits(s->samples[0].v) == sm_f64_bits(in[i].samples[k].v));
        }
    sm_arena_free(a);
    sm_buf_fini(&b);
    sm_buf_fini(&gz);
}

static void test_gzip(uint64_t *rng) {
    sm_buf raw = SM_BUF_INIT, gz = SM_BUF_INIT;
    for (int i = 0; i < 300000; i++) {
        uint8_t c = (uint8_t)(check_rand_below(rng, 4) + 'a');
        CHECK_OK(sm_buf_append(&raw, &c, 1));
    }
    sm_buf_clear(&gz);
    CHECK_OK(otlp_gzip(raw.p, raw.len, &gz));
    sm_arena *a = sm_arena_new(0, 0);
    const uint8_t *out;
    size_t n;
    sm_error err = {0};
    CHECK_OK_ERR(otlp_gunzip(gz.p, gz.len, raw.len, a, &out, &n, &err), &err);
    CHECK(n == raw.len && !memcmp(out, raw.p, n));
    /* One byte over the limit: refused, without inflating all of it. */
    CHECK_EQ_INT(otlp_gunzip(gz.p, gz.len, raw.len - 1, a, &out, &n, &err), SM_ELIMIT);
    /* Cut short, with bytes after the end, or not gzip at all. */
    CHECK_EQ_INT(otlp_gunzip(gz.p, gz.len - 5, raw.len, a, &out, &n, &err), SM_ECORRUPT);
    CHECK_OK(sm_buf_append(&gz, "xx", 2));
    CHECK_EQ_INT(otlp_gunzip(gz.p, gz.len, raw.len, a, &out, &n, &err), SM_ECORRUPT);
    CHECK_EQ_INT(otlp_gunzip(raw.p, 100, raw.len, a, &out, &n, &err), SM_ECORRUPT);
    /* An empty stream. */
    sm_buf_clear(&gz);
    CHECK_OK(otlp_gzip((const uint8_t *)"", 0, &gz));
    CHECK_OK_ERR(otlp_gunzip(gz.p, gz.len, 10, a, &out, &n, &err), &err);
    CHECK_EQ_INT(n, 0);
    sm_arena_free(a);
    sm_buf_fini(&raw);
    sm_buf_fini(&gz);
}

static void test_answers(void) {
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(otlp_encode_response(0, NULL, &b));
    CHECK_EQ_INT(b.len, 0); /* an empty message */
    CHECK_OK(otlp_encode_response(3, "metric \"d\" point 0: delta", &b));
    Otlp__ExportMetricsServiceResponse *r = otlp__export_metrics_service_response__unpack(NULL, b.len, b.p);
    CHECK(r && r->partial_success);
    if (r && r->partial_success) {
        CHECK_EQ_INT(r->partial_success->rejected_data_points, 3);
        CHECK_EQ_STR(r->partial_success->error_message, "metric \"d\" point 0: delta");
    }
    otlp__export_metrics_service_response__free_unpacked(r, NULL);
    sm_buf_clear(&b);
    CHECK_OK(otlp_encode_status(3, "bad body", &b));
    Otlp__Status *st = otlp__status__unpack(NULL, b.len, b.p);
    CHECK(st && st->code == 3);
    if (st) CHECK_EQ_STR(st->message, "bad body");
    otlp__status__free_unpacked(st, NULL);
    sm_buf_fini(&b);
}

int main(void) {
    uint64_t rng = check_seed();
    rw_limits_default(&lim);
    ta = sm_arena_new(0, 0);
    test_names();
    test_labels_and_resource();
    test_sums_and_flags();
    test_histograms_and_summaries();
    test_refused();
    test_random(&rng);
    test_gzip(&rng);
    test_encode(&rng);
    test_answers();
    sm_arena_free(ta);
    return check_done();
}
