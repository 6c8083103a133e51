/* SPDX-License-Identifier: Apache-2.0
 *
 * otlp.c - OTLP/HTTP metrics into Prometheus series (see otlp.h and
 * docs/OTLP.md).
 *
 * The request is unpacked whole by protobuf-c (ingest/proto/otlp_metrics.proto)
 * into the request's arena; then every data point is turned into its
 * series.  Per point: the attributes become a sorted, merged list of base
 * labels (point_base), the resource's job and instance are put over them,
 * and each series of the point (one for a gauge, many for a histogram) is
 * that list with __name__ and at most one more label (le, quantile) put in
 * (series_add).  OTLP is not the hot ingest path (remote_write is), so the
 * code goes for clarity: a few allocations a point, all from the arena.
 */
#include "otlp.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otlp_metrics.pb-c.h"
#include "query/json.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_types.h"
#include "tsdb/labels.h"

#define NO_RECORDED_VALUE 1u /* DataPointFlags */
#define TEMPORALITY_CUMULATIVE 2

static void *arena_alloc_pb(void *data, size_t n) { return sm_arena_alloc(data, n ? n : 1); }
static void arena_free_pb(void *data, void *p) {
    (void)data;
    (void)p; /* freed with the arena */
}

/* ---- Names ---- */

static bool metric_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':';
}

/* A growing string in the arena. */
typedef struct astr {
    sm_arena *a;
    char *p;
    size_t len, cap;
    bool oom;
} astr;

static void astr_put(astr *s, const char *p, size_t n) {
    if (s->oom) return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *q = sm_arena_realloc(s->a, s->p, s->cap, cap < 32 ? 32 : cap);
        if (!q) {
            s->oom = true;
            return;
        }
        s->p = q;
        s->cap = cap < 32 ? 32 : cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void astr_puts(astr *s, const char *p) { astr_put(s, p, strlen(p)); }

/* The words of a metric name: runs of [a-zA-Z0-9:]. */
#define MAX_WORDS 64
typedef struct words {
    const char *w[MAX_WORDS + 2];
    size_t n[MAX_WORDS + 2];
    size_t count;
} words;

static bool words_has(const words *ws, const char *s, size_t n) {
    for (size_t i = 0; i < ws->count; i++)
        if (ws->n[i] == n && !memcmp(ws->w[i], s, n)) return true;
    return false;
}

static void words_drop(words *ws, const char *s) {
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < ws->count; i++)
        if (!(ws->n[i] == n && !memcmp(ws->w[i], s, n))) {
            ws->w[k] = ws->w[i];
            ws->n[k++] = ws->n[i];
        }
    ws->count = k;
}

static void words_push(words *ws, const char *s, size_t n) {
    if (ws->count >= MAX_WORDS + 2) return;
    ws->w[ws->count] = s;
    ws->n[ws->count++] = n;
}

/* OTel unit -> Prometheus word (Prometheus's otlptranslator tables, which
 * follow the OpenTelemetry compatibility specification); NULL: the unit as
 * it is. */
static const char *unit_word(const char *u, size_t n) {
    static const char *const map[][2] = {
        {"d", "days"},          {"h", "hours"},         {"min", "minutes"},     {"s", "seconds"},
        {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"},  {"By", "bytes"},
        {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"},  {"TiBy", "tibibytes"},
        {"KBy", "kilobytes"},   {"MBy", "megabytes"},   {"GBy", "gigabytes"},   {"TBy", "terabytes"},
        {"m", "meters"},        {"V", "volts"},         {"A", "amperes"},       {"J", "joules"},
        {"W", "watts"},         {"g", "grams"},         {"Cel", "celsius"},     {"Hz", "hertz"},
        {"1", ""},              {"%", "percent"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && !memcmp(map[i][0], u, n)) return map[i][1];
    return NULL;
}

static const char *per_unit_word(const char *u, size_t n) {
    static const char *const map[][2] = {{"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
                                         {"w", "week"},   {"mo", "month"}, {"y", "year"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && !memcmp(map[i][0], u, n)) return map[i][1];
    return NULL;
}

/* One side of a unit (trimmed, annotations in braces dropped, mapped),
 * cleaned for a metric name: characters outside [a-zA-Z0-9:] made "_",
 * runs of "_" made one, a leading "_" dropped; with per, "per_" before it.
 * Into s (empty: no suffix). */
static void unit_part(const char *u, size_t n, bool per, astr *s) {
    while (n && *u == ' ') u++, n--;
    while (n && u[n - 1] == ' ') n--;
    if (!n || memchr(u, '{', n) || memchr(u, '}', n)) return;
    const char *m = per ? per_unit_word(u, n) : unit_word(u, n);
    if (m) {
        u = m;
        n = strlen(m);
    }
    if (!n) return;
    char tmp[256];
    size_t k = 0;
    if (per) {
        memcpy(tmp, "per_", 4);
        k = 4;
    }
    for (size_t i = 0; i < n && k < sizeof tmp - 1; i++) {
        char c = metric_char(u[i]) ? u[i] : '_';
        if (c == '_' && k && tmp[k - 1] == '_') continue;
        tmp[k++] = c;
    }
    size_t from = tmp[0] == '_' ? 1 : 0;
    astr_put(s, tmp + from, k - from);
}

/* What a metric is, for its name's suffixes. */
typedef enum { MT_GAUGE, MT_COUNTER, MT_UPDOWN, MT_HISTOGRAM, MT_SUMMARY } metric_type;

/* Prometheus's name for an OTLP metric (otlp.h); NULL when nothing is left
 * of it, or out of memory (*oom). */
static const char *metric_name(sm_arena *a, const char *name, const char *unit, metric_type type, bool *oom) {
    words ws = {.count = 0};
    for (const char *p = name; *p;) {
        while (*p && !metric_char(*p)) p++;
        const char *b = p;
        while (metric_char(*p)) p++;
        if (p > b && ws.count < MAX_WORDS) words_push(&ws, b, (size_t)(p - b));
    }
    astr mu = {.a = a}, pu = {.a = a};
    const char *slash = strchr(unit, '/');
    size_t mlen = slash ? (size_t)(slash - unit) : strlen(unit);
    unit_part(unit, mlen, false, &mu);
    if (slash && slash[1]) unit_part(slash + 1, strlen(slash + 1), true, &pu);
    if (mu.oom || pu.oom) return *oom = true, NULL;
    const char *main_s = mu.len ? mu.p : "", *per_s = pu.len ? pu.p : "";
    size_t main_n = mu.len, per_n = pu.len;
    if (main_n && words_has(&ws, main_s, main_n)) main_n = 0;
    if (per_n && words_has(&ws, per_s, per_n)) per_n = 0;
    if (per_n) {
        while (main_n && main_s[main_n - 1] == '_') main_n--;
    }
    if (main_n) words_push(&ws, main_s, main_n);
    if (per_n) words_push(&ws, per_s, per_n);
    if (type == MT_COUNTER) {
        words_drop(&ws, "total");
        words_push(&ws, "total", 5);
    }
    if (type == MT_GAUGE && !strcmp(unit, "1")) {
        words_drop(&ws, "ratio");
        words_push(&ws, "ratio", 5);
    }
    astr out = {.a = a};
    if (ws.count && ws.w[0][0] >= '0' && ws.w[0][0] <= '9') astr_put(&out, "_", 1);
    for (size_t i = 0; i < ws.count; i++) {
        if (i) astr_put(&out, "_", 1);
        astr_put(&out, ws.w[i], ws.n[i]);
    }
    if (out.oom) return *oom = true, NULL;
    return out.len ? out.p : NULL;
}

/* An attribute key as a label name: every character outside [a-zA-Z0-9_]
 * made "_" (byte by byte, so a multi-byte character gives several), "key_"
 * before a leading digit.  NULL for an empty key. */
static char *label_name(sm_arena *a, const char *key) {
    size_t n = strlen(key);
    if (!n) return NULL;
    bool digit = key[0] >= '0' && key[0] <= '9';
    char *s = sm_arena_alloc(a, n + 5);
    if (!s) return NULL;
    size_t k = 0;
    if (digit) {
        memcpy(s, "key_", 4);
        k = 4;
    }
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        s[k++] = ok ? c : '_';
    }
    s[k] = '\0';
    return s;
}

/* ---- Attribute values ---- */

static void b64(astr *s, const uint8_t *p, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {t[v >> 18], t[(v >> 12) & 63], i + 1 < n ? t[(v >> 6) & 63] : '=', i + 2 < n ? t[v & 63] : '='};
        astr_put(s, q, 4);
    }
}

/* v as JSON, for array and map values (nesting past 8 levels: null). */
static void any_json(json_w *w, const Otlp__AnyValue *v, int depth) {
    if (!v || depth > 8) {
        json_null(w);
        return;
    }
    switch (v->value_case) {
    case OTLP__ANY_VALUE__VALUE_STRING_VALUE: json_str(w, v->string_value ? v->string_value : ""); break;
    case OTLP__ANY_VALUE__VALUE_BOOL_VALUE: json_bool(w, v->bool_value); break;
    case OTLP__ANY_VALUE__VALUE_INT_VALUE: json_int(w, v->int_value); break;
    case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE: json_num(w, v->double_value); break;
    case OTLP__ANY_VALUE__VALUE_BYTES_VALUE: {
        sm_arena *a = sm_arena_new(0, 0);
        astr s = {.a = a};
        b64(&s, v->bytes_value.data, v->bytes_value.len);
        json_str(w, s.p ? s.p : "");
        sm_arena_free(a);
        break;
    }
    case OTLP__ANY_VALUE__VALUE_ARRAY_VALUE:
        json_arr_begin(w);
        if (v->array_value)
            for (size_t i = 0; i < v->array_value->n_values; i++) any_json(w, v->array_value->values[i], depth + 1);
        json_arr_end(w);
        break;
    case OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
        json_obj_begin(w);
        if (v->kvlist_value)
            for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
                const Otlp__KeyValue *kv = v->kvlist_value->values[i];
                json_key(w, kv->key ? kv->key : "");
                any_json(w, kv->value, depth + 1);
            }
        json_obj_end(w);
        break;
    default: json_null(w); break;
    }
}

/* An attribute's value as a label value (as OpenTelemetry's AsString
 * gives it): strings as they are, true/false, integers in decimal, doubles
 * in Prometheus's sample format, bytes in base64, arrays and maps as JSON;
 * "" for none (the label is then dropped).  NULL: out of memory. */
static const char *any_string(sm_arena *a, const Otlp__AnyValue *v) {
    if (!v) return "";
    char buf[400];
    switch (v->value_case) {
    case OTLP__ANY_VALUE__VALUE_STRING_VALUE: return v->string_value ? v->string_value : "";
    case OTLP__ANY_VALUE__VALUE_BOOL_VALUE: return v->bool_value ? "true" : "false";
    case OTLP__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(buf, sizeof buf, "%lld", (long long)v->int_value);
        return sm_arena_strdup(a, buf);
    case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE: {
        size_t n = json_format_value(v->double_value, buf);
        return sm_arena_strndup(a, buf, n);
    }
    case OTLP__ANY_VALUE__VALUE_BYTES_VALUE: {
        astr s = {.a = a};
        b64(&s, v->bytes_value.data, v->bytes_value.len);
        return s.oom ? NULL : s.p ? s.p : "";
    }
    case OTLP__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OTLP__ANY_VALUE__VALUE_KVLIST_VALUE: {
        sm_buf b = SM_BUF_INIT;
        json_w w;
        json_init(&w, &b);
        any_json(&w, v, 0);
        const char *r = json_finish(&w) ? NULL : sm_arena_strndup(a, b.p ? (const char *)b.p : "", b.len);
        sm_buf_fini(&b);
        return r;
    }
    default: return "";
    }
}

/* ---- Label sets ---- */

typedef struct attr {
    const char *name, *value, *key; /* key: the attribute's own, for the merge order */
} attr;

static int attr_cmp(const void *x, const void *y) {
    const attr *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : strcmp(a->key, b->key);
}

typedef struct labelset {
    sm_label *v;
    uint32_t n;
} labelset;

/* The decoder's state for one request. */
typedef struct dec {
    sm_arena *a;
    const rw_limits *lim;
    otlp_request *out;
    size_t cap;           /* of out->rw.series */
    const char *job, *instance; /* of the current resource, or NULL */
    int64_t res_last_ms;  /* latest point time of the current resource */
    bool res_any;         /* it had a stored point */
    const char *metric;   /* the OTLP name of the metric being read */
    size_t point;         /* index of its point being read */
    sm_error perr;        /* why the current point is refused */
} dec;

/* attrs (n of them) as sorted base labels: names made valid, keys that
 * end up equal merged (values joined by ";" in key order), empty values
 * dropped, job and instance of the resource put over any attribute of
 * those names.  0, SM_EINVAL (d->perr says why), SM_ENOMEM. */
static int point_base(dec *d, Otlp__KeyValue *const *attrs, size_t n, labelset *base) {
    attr *v = sm_arena_alloc(d->a, (n + 2) * sizeof *v);
    if (!v) return SM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = attrs[i]->key ? attrs[i]->key : "";
        if (!*key) return SM_ERR(&d->perr, SM_EINVAL, "an attribute has an empty key");
        const char *name = label_name(d->a, key), *value = any_string(d->a, attrs[i]->value);
        if (!name || !value) return SM_ENOMEM;
        if (!strcmp(name, "__name__")) continue; /* the metric's own name wins */
        if ((d->job && !strcmp(name, "job")) || (d->instance && !strcmp(name, "instance"))) continue;
        v[k++] = (attr){name, value, key};
    }
    if (d->job) v[k++] = (attr){"job", d->job, "job"};
    if (d->instance) v[k++] = (attr){"instance", d->instance, "instance"};
    qsort(v, k, sizeof *v, attr_cmp);
    base->v = sm_arena_alloc(d->a, (k ? k : 1) * sizeof *base->v);
    if (!base->v) return SM_ENOMEM;
    base->n = 0;
    for (size_t i = 0; i < k;) {
        size_t j = i + 1;
        while (j < k && !strcmp(v[j].name, v[i].name)) j++;
        const char *value = v[i].value;
        if (j > i + 1) {
            astr s = {.a = d->a};
            for (size_t m = i; m < j; m++) {
                if (m > i) astr_put(&s, ";", 1);
                astr_puts(&s, v[m].value);
            }
            if (s.oom) return SM_ENOMEM;
            value = s.p;
        }
        if (*value) base->v[base->n++] = (sm_label){v[i].name, value};
        i = j;
    }
    return 0;
}

static void refuse_point(dec *d, uint64_t samples) {
    otlp_request *o = d->out;
    o->rejected_points++;
    o->rw.rejected_samples += samples;
    if (o->rw.reject.code) return;
    SM_ERR(&o->rw.reject, SM_EINVAL, "metric \"%.120s\" point %zu: %s", d->metric, d->point, d->perr.msg);
    o->rw.reject.index = (int64_t)d->point;
}

/* One series of the current point into out->rw: base with __name__ = name
 * and, when extra_name is set, extra_name = extra_value put in.  0,
 * SM_EINVAL (the labels break a rule or limit: d->perr), SM_ENOMEM. */
static int series_add(dec *d, const labelset *base, const char *name, const char *extra_name,
                      const char *extra_value, int64_t t, double v) {
    uint32_t n = base->n + 2;
    sm_label *lv = sm_arena_alloc(d->a, n * sizeof *lv);
    tsdb_sample *smp = sm_arena_alloc(d->a, sizeof *smp);
    if (!lv || !smp) return SM_ENOMEM;
    uint32_t k = 0;
    bool put_name = false, put_extra = extra_name == NULL;
    for (uint32_t i = 0; i <= base->n; i++) {
        const sm_label *b = i < base->n ? &base->v[i] : NULL;
        if (!put_name && (!b || strcmp("__name__", b->name) < 0)) {
            lv[k++] = (sm_label){"__name__", name};
            put_name = true;
        }
        if (!put_extra && (!b || strcmp(extra_name, b->name) <= 0)) {
            lv[k++] = (sm_label){extra_name, extra_value};
            put_extra = true;
            if (b && !strcmp(extra_name, b->name)) continue; /* ours wins */
        }
        if (b) lv[k++] = *b;
    }
    if (k > d->lim->max_labels)
        return SM_ERR(&d->perr, SM_EINVAL, "%u labels, more than the limit of %u", k, d->lim->max_labels);
    for (uint32_t i = 0; i < k; i++)
        if (strlen(lv[i].name) > d->lim->max_label_bytes || strlen(lv[i].value) > d->lim->max_label_bytes)
            return SM_ERR(&d->perr, SM_EINVAL, "label %.60s is longer than the limit of %u bytes", lv[i].name,
                          d->lim->max_label_bytes);
    sm_labels ls = {lv, k};
    int rc = sm_labels_check(&ls, true, &d->perr);
    if (rc) return rc;
    rw_request *o = &d->out->rw;
    if (o->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        tsdb_series_in *s = sm_arena_realloc(d->a, o->series, d->cap * sizeof *s, cap * sizeof *s);
        tsdb_series_hint *h = sm_arena_realloc(d->a, o->hints, d->cap * sizeof *h, cap * sizeof *h);
        if (!s || !h) return SM_ENOMEM;
        o->series = s;
        o->hints = h;
        d->cap = cap;
    }
    *smp = (tsdb_sample){t, v};
    o->hints[o->n] = (tsdb_series_hint){0, 0};
    o->series[o->n++] = (tsdb_series_in){ls, smp, 1};
    return 0;
}

static double stale_nan(void) { return sm_f64_from_bits(SM_STALE_NAN_BITS); }

static int64_t ms_of(uint64_t unix_nano) { return (int64_t)(unix_nano / 1000000u); }

/* The end of one point, whose series go in all or none: rc is what adding
 * them (from out->rw.n = n0 on) came to.  On SM_EINVAL they are taken back
 * and the point counted as refused with its `samples` samples; else they
 * count as stored and t as the resource's latest time. */
static int point_done(dec *d, size_t n0, int rc, uint64_t samples, int64_t t) {
    if (rc == SM_ENOMEM) return rc;
    if (rc) {
        d->out->rw.n = n0;
        refuse_point(d, samples);
        return 0;
    }
    d->out->rw.samples += samples;
    if (!d->res_any || t > d->res_last_ms) d->res_last_ms = t;
    d->res_any = true;
    return 0;
}

static int number_points(dec *d, const char *name, Otlp__NumberDataPoint *const *pts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const Otlp__NumberDataPoint *p = pts[i];
        d->point = i;
        d->out->points++;
        size_t n0 = d->out->rw.n;
        int64_t t = ms_of(p->time_unix_nano);
        labelset base;
        int rc = point_base(d, p->attributes, p->n_attributes, &base);
        if (!rc) {
            double v = p->value_case == OTLP__NUMBER_DATA_POINT__VALUE_AS_INT ? (double)p->as_int
                       : p->value_case == OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE ? p->as_double
                                                                                    : 0;
            if (p->flags & NO_RECORDED_VALUE) v = stale_nan();
            rc = series_add(d, &base, name, NULL, NULL, t, v);
        }
        if ((rc = point_done(d, n0, rc, 1, t))) return rc;
    }
    return 0;
}

/* name with suffix, in the arena (the series keep it). */
static const char *suffixed(sm_arena *a, const char *name, const char *suffix) {
    astr s = {.a = a};
    astr_puts(&s, name);
    astr_puts(&s, suffix);
    return s.oom ? NULL : s.p;
}

static int histogram_points(dec *d, const char *name, Otlp__HistogramDataPoint *const *pts, size_t n) {
    char le[400];
    const char *bucket = suffixed(d->a, name, "_bucket"), *sum = suffixed(d->a, name, "_sum"),
               *count = suffixed(d->a, name, "_count");
    if (!bucket || !sum || !count) return SM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Otlp__HistogramDataPoint *p = pts[i];
        d->point = i;
        d->out->points++;
        size_t n0 = d->out->rw.n;
        int64_t t = ms_of(p->time_unix_nano);
        bool none = p->flags & NO_RECORDED_VALUE;
        uint64_t samples = p->n_explicit_bounds + 2 + (p->has_sum ? 1 : 0);
        labelset base;
        int rc = point_base(d, p->attributes, p->n_attributes, &base);
        if (!rc && p->n_bucket_counts && p->n_bucket_counts != p->n_explicit_bounds + 1)
            rc = SM_ERR(&d->perr, SM_EINVAL, "%zu bucket counts for %zu bounds (it takes one more)",
                        p->n_bucket_counts, p->n_explicit_bounds);
        for (size_t b = 0; !rc && b < p->n_explicit_bounds; b++)
            if (isnan(p->explicit_bounds[b]) || (b && !(p->explicit_bounds[b] > p->explicit_bounds[b - 1])))
                rc = SM_ERR(&d->perr, SM_EINVAL, "explicit bounds are not increasing at bound %zu", b);
        uint64_t cum = 0;
        for (size_t b = 0; !rc && b < p->n_explicit_bounds; b++) {
            cum += p->n_bucket_counts ? p->bucket_counts[b] : 0;
            size_t ln = json_format_value(p->explicit_bounds[b], le);
            le[ln] = '\0';
            const char *lv = sm_arena_strdup(d->a, le);
            rc = lv ? series_add(d, &base, bucket, "le", lv, t, none ? stale_nan() : (double)cum) : SM_ENOMEM;
        }
        if (!rc) rc = series_add(d, &base, bucket, "le", "+Inf", t, none ? stale_nan() : (double)p->count);
        if (!rc && p->has_sum) rc = series_add(d, &base, sum, NULL, NULL, t, none ? stale_nan() : p->sum);
        if (!rc) rc = series_add(d, &base, count, NULL, NULL, t, none ? stale_nan() : (double)p->count);
        if ((rc = point_done(d, n0, rc, samples, t))) return rc;
    }
    return 0;
}

static int summary_points(dec *d, const char *name, Otlp__SummaryDataPoint *const *pts, size_t n) {
    char q[400];
    const char *sum = suffixed(d->a, name, "_sum"), *count = suffixed(d->a, name, "_count");
    if (!sum || !count) return SM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Otlp__SummaryDataPoint *p = pts[i];
        d->point = i;
        d->out->points++;
        size_t n0 = d->out->rw.n;
        int64_t t = ms_of(p->time_unix_nano);
        bool none = p->flags & NO_RECORDED_VALUE;
        labelset base;
        int rc = point_base(d, p->attributes, p->n_attributes, &base);
        for (size_t k = 0; !rc && k < p->n_quantile_values; k++) {
            const Otlp__SummaryDataPoint__ValueAtQuantile *qv = p->quantile_values[k];
            size_t ln = json_format_value(qv->quantile, q);
            q[ln] = '\0';
            const char *qs = sm_arena_strdup(d->a, q);
            rc = qs ? series_add(d, &base, name, "quantile", qs, t, none ? stale_nan() : qv->value) : SM_ENOMEM;
        }
        if (!rc) rc = series_add(d, &base, sum, NULL, NULL, t, none ? stale_nan() : p->sum);
        if (!rc) rc = series_add(d, &base, count, NULL, NULL, t, none ? stale_nan() : (double)p->count);
        if ((rc = point_done(d, n0, rc, p->n_quantile_values + 2, t))) return rc;
    }
    return 0;
}

/* Every point of a metric refused for one reason. */
static void refuse_all(dec *d, size_t n, uint64_t samples_each, const char *fmt, const char *what) {
    for (size_t i = 0; i < n; i++) {
        d->point = i;
        d->out->points++;
        d->perr.code = 0;
        SM_ERR(&d->perr, SM_EINVAL, fmt, what);
        refuse_point(d, samples_each);
    }
}

static const char *temporality_name(int32_t t) {
    return t == 1 ? "delta" : t == 0 ? "unspecified" : "unknown";
}

static int metric_read(dec *d, const Otlp__Metric *m) {
    const char *oname = m->name ? m->name : "", *unit = m->unit ? m->unit : "";
    d->metric = oname;
    metric_type type = MT_GAUGE;
    switch (m->data_case) {
    case OTLP__METRIC__DATA_SUM: type = m->sum->is_monotonic ? MT_COUNTER : MT_UPDOWN; break;
    case OTLP__METRIC__DATA_HISTOGRAM: type = MT_HISTOGRAM; break;
    case OTLP__METRIC__DATA_SUMMARY: type = MT_SUMMARY; break;
    default: break;
    }
    bool oom = false;
    const char *name = metric_name(d->a, oname, unit, type, &oom);
    if (oom) return SM_ENOMEM;
    size_t npts = m->data_case == OTLP__METRIC__DATA_GAUGE                   ? m->gauge->n_data_points
                  : m->data_case == OTLP__METRIC__DATA_SUM                   ? m->sum->n_data_points
                  : m->data_case == OTLP__METRIC__DATA_HISTOGRAM             ? m->histogram->n_data_points
                  : m->data_case == OTLP__METRIC__DATA_SUMMARY               ? m->summary->n_data_points
                  : m->data_case == OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM ? m->exponential_histogram->n_data_points
                                                                             : 0;
    if (m->data_case == OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM) {
        d->out->rw.histograms += npts;
        refuse_all(d, npts, 0, "%s", "exponential histograms (native histograms) are not supported yet");
        return 0;
    }
    if (!name) {
        refuse_all(d, npts, 1, "the name \"%.100s\" has no character of [a-zA-Z0-9:] left", oname);
        return 0;
    }
    if (strlen(name) > 250 || strlen(name) > d->lim->max_label_bytes) {
        refuse_all(d, npts, 1, "the name \"%.100s...\" is too long", oname);
        return 0;
    }
    switch (m->data_case) {
    case OTLP__METRIC__DATA_GAUGE: return number_points(d, name, m->gauge->data_points, npts);
    case OTLP__METRIC__DATA_SUM:
        if (m->sum->aggregation_temporality != TEMPORALITY_CUMULATIVE) {
            refuse_all(d, npts, 1, "%s temporality is not supported for sums (only cumulative)",
                       temporality_name(m->sum->aggregation_temporality));
            return 0;
        }
        return number_points(d, name, m->sum->data_points, npts);
    case OTLP__METRIC__DATA_HISTOGRAM:
        if (m->histogram->aggregation_temporality != TEMPORALITY_CUMULATIVE) {
            refuse_all(d, npts, 0, "%s temporality is not supported for histograms (only cumulative)",
                       temporality_name(m->histogram->aggregation_temporality));
            return 0;
        }
        return histogram_points(d, name, m->histogram->data_points, npts);
    case OTLP__METRIC__DATA_SUMMARY: return summary_points(d, name, m->summary->data_points, npts);
    default: return 0; /* no data: nothing to store */
    }
}

static const char *attr_str(sm_arena *a, const Otlp__Resource *r, const char *key) {
    if (!r) return NULL;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (r->attributes[i]->key && !strcmp(r->attributes[i]->key, key)) {
            const char *v = any_string(a, r->attributes[i]->value);
            return v && *v ? v : NULL;
        }
    return NULL;
}

static bool identifying(const char *key) {
    return !strcmp(key, "service.name") || !strcmp(key, "service.namespace") || !strcmp(key, "service.instance.id");
}

/* target_info for the resource just read: its attributes other than the
 * identifying ones, with job and instance, at its latest point's time. */
static int target_info(dec *d, const Otlp__Resource *r) {
    if (!r || !d->res_any) return 0;
    size_t others = 0;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!identifying(r->attributes[i]->key ? r->attributes[i]->key : "")) others++;
    if (!others) return 0;
    Otlp__KeyValue **kv = sm_arena_alloc(d->a, others * sizeof *kv);
    if (!kv) return SM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!identifying(r->attributes[i]->key ? r->attributes[i]->key : "")) kv[k++] = r->attributes[i];
    d->metric = "target_info";
    d->point = 0;
    d->perr.code = 0;
    size_t n0 = d->out->rw.n;
    labelset base;
    int rc = point_base(d, kv, k, &base);
    if (!rc) rc = series_add(d, &base, "target_info", NULL, NULL, d->res_last_ms, 1);
    if (rc == SM_ENOMEM) return rc;
    if (rc) {
        d->out->rw.n = n0;
        d->out->points++; /* (counted, so that the refusal adds up) */
        refuse_point(d, 1);
        return 0;
    }
    d->out->rw.samples++;
    return 0;
}

int otlp_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, otlp_request *out,
                sm_error *err) {
    memset(out, 0, sizeof *out);
    if (len > lim->max_decoded_bytes)
        return SM_ERR(err, SM_ELIMIT, "request is %zu bytes, more than the limit of %zu", len, lim->max_decoded_bytes);
    ProtobufCAllocator alloc = {arena_alloc_pb, arena_free_pb, a};
    Otlp__ExportMetricsServiceRequest *req = otlp__export_metrics_service_request__unpack(&alloc, len, body);
    if (!req) {
        if (sm_arena_limit_hit(a)) return rw_nomem(a, err);
        return SM_ERR(err, SM_ECORRUPT, "invalid protobuf ExportMetricsServiceRequest (%zu bytes)", len);
    }
    dec d = {.a = a, .lim = lim, .out = out};
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Otlp__ResourceMetrics *rm = req->resource_metrics[i];
        const char *svc = attr_str(a, rm->resource, "service.name");
        const char *ns = attr_str(a, rm->resource, "service.namespace");
        d.job = svc;
        if (svc && ns) {
            astr s = {.a = a};
            astr_puts(&s, ns);
            astr_put(&s, "/", 1);
            astr_puts(&s, svc);
            if (s.oom) return rw_nomem(a, err);
            d.job = s.p;
        }
        d.instance = attr_str(a, rm->resource, "service.instance.id");
        d.res_any = false;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Otlp__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                d.perr.code = 0;
                if (metric_read(&d, sm->metrics[k]))
                    return rw_nomem(a, err);
            }
        }
        if (target_info(&d, rm->resource)) return rw_nomem(a, err);
    }
    out->rw.rejected_series = out->rejected_points;
    return 0;
}

int otlp_gunzip(const uint8_t *body, size_t len, size_t limit, sm_arena *a, const uint8_t **out, size_t *out_len,
                sm_error *err) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return SM_ERR(err, SM_ENOMEM, "gzip: out of memory");
    size_t cap = len * 4 < (64u << 10) ? (64u << 10) : len * 4;
    if (cap > limit + 1) cap = limit + 1;
    uint8_t *buf = sm_arena_alloc(a, cap);
    int rc = 0;
    if (!buf) {
        rc = SM_ERR(err, SM_ENOMEM, "gzip: out of memory");
        goto done;
    }
    z.next_in = (Bytef *)body;
    z.avail_in = (uInt)len;
    size_t have = 0;
    for (;;) {
        if (have == cap) {
            if (cap > limit) {
                rc = SM_ERR(err, SM_ELIMIT, "request inflates to more than the limit of %zu bytes", limit);
                goto done;
            }
            size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            uint8_t *nb = sm_arena_realloc(a, buf, cap, ncap);
            if (!nb) {
                rc = SM_ERR(err, SM_ENOMEM, "gzip: out of memory");
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        z.next_out = buf + have;
        z.avail_out = (uInt)(cap - have);
        int zr = inflate(&z, Z_NO_FLUSH);
        have = cap - z.avail_out;
        if (zr == Z_STREAM_END) break;
        if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            rc = SM_ERR(err, SM_ECORRUPT, "gzip: the body ends inside the stream");
            goto done;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = SM_ERR(err, SM_ECORRUPT, "gzip: %s", z.msg ? z.msg : "corrupt input");
            goto done;
        }
    }
    if (have > limit) {
        rc = SM_ERR(err, SM_ELIMIT, "request inflates to more than the limit of %zu bytes", limit);
        goto done;
    }
    if (z.avail_in) {
        rc = SM_ERR(err, SM_ECORRUPT, "gzip: %u bytes after the end of the stream", z.avail_in);
        goto done;
    }
    *out = buf;
    *out_len = have;
done:
    inflateEnd(&z);
    return rc;
}

static int pack_into(const ProtobufCMessage *m, sm_buf *out) {
    size_t n = protobuf_c_message_get_packed_size(m);
    if (sm_buf_reserve(out, n ? n : 1)) return SM_ENOMEM;
    protobuf_c_message_pack(m, (uint8_t *)out->p + out->len);
    out->len += n;
    return 0;
}

int otlp_encode_response(uint64_t rejected, const char *msg, sm_buf *out) {
    Otlp__ExportMetricsServiceResponse r = OTLP__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    Otlp__ExportMetricsPartialSuccess ps = OTLP__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    if (rejected || msg) {
        ps.has_rejected_data_points = rejected > 0;
        ps.rejected_data_points = (int64_t)rejected;
        ps.error_message = (char *)(msg ? msg : "");
        r.partial_success = &ps;
    }
    return pack_into(&r.base, out);
}

int otlp_encode_status(int code, const char *msg, sm_buf *out) {
    Otlp__Status st = OTLP__STATUS__INIT;
    st.has_code = true;
    st.code = code;
    st.message = (char *)msg;
    return pack_into(&st.base, out);
}

/* ---- the client side: bodies for tests and the benchmark ---- */

static Otlp__KeyValue *kv_string(sm_arena *a, const char *key, const char *val) {
    Otlp__KeyValue *kv = sm_arena_alloc(a, sizeof *kv);
    Otlp__AnyValue *v = sm_arena_alloc(a, sizeof *v);
    if (!kv || !v) return NULL;
    otlp__key_value__init(kv);
    otlp__any_value__init(v);
    v->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)val;
    kv->key = (char *)key;
    kv->value = v;
    return kv;
}

static const char *label_or_empty(const sm_labels *ls, const char *name) {
    const char *v = sm_labels_get(ls, name);
    return v ? v : "";
}

/* One resource per run of series with the same instance: its attributes. */
static Otlp__ResourceMetrics *resource_for(sm_arena *a, const sm_labels *ls, size_t nmetrics) {
    Otlp__ResourceMetrics *rm = sm_arena_alloc(a, sizeof *rm);
    Otlp__Resource *res = sm_arena_alloc(a, sizeof *res);
    Otlp__ScopeMetrics *sc = sm_arena_alloc(a, sizeof *sc);
    Otlp__ScopeMetrics **scp = sm_arena_alloc(a, sizeof *scp);
    Otlp__KeyValue **attrs = sm_arena_alloc(a, 2 * sizeof *attrs);
    Otlp__Metric **metrics = sm_arena_alloc(a, nmetrics * sizeof *metrics);
    if (!rm || !res || !sc || !scp || !attrs || !metrics) return NULL;
    otlp__resource_metrics__init(rm);
    otlp__resource__init(res);
    otlp__scope_metrics__init(sc);
    res->n_attributes = 0;
    const char *job = sm_labels_get(ls, "job"), *inst = sm_labels_get(ls, "instance");
    if (job && !(attrs[res->n_attributes++] = kv_string(a, "service.name", job))) return NULL;
    if (inst && !(attrs[res->n_attributes++] = kv_string(a, "service.instance.id", inst))) return NULL;
    res->attributes = attrs;
    sc->metrics = metrics;
    scp[0] = sc;
    rm->resource = res;
    rm->scope_metrics = scp;
    rm->n_scope_metrics = 1;
    return rm;
}

/* The metric for series[k..e) (one name): a cumulative monotonic sum for a
 * name ending in _total (without it), else a gauge; a data point per sample. */
static Otlp__Metric *metric_for(sm_arena *a, const tsdb_series_in *series, size_t k, size_t e) {
    const char *name = label_or_empty(&series[k].labels, "__name__");
    size_t len = strlen(name), npts = 0;
    bool counter = len > 6 && !strcmp(name + len - 6, "_total");
    for (size_t q = k; q < e; q++) npts += series[q].n;
    Otlp__Metric *m = sm_arena_alloc(a, sizeof *m);
    Otlp__NumberDataPoint **pts = sm_arena_alloc(a, (npts ? npts : 1) * sizeof *pts);
    if (!m || !pts) return NULL;
    otlp__metric__init(m);
    if (!(m->name = sm_arena_strndup(a, name, counter ? len - 6 : len))) return NULL;
    size_t np = 0;
    for (size_t q = k; q < e; q++) {
        const sm_labels *ls = &series[q].labels;
        Otlp__KeyValue **attrs = sm_arena_alloc(a, (ls->n ? ls->n : 1) * sizeof *attrs);
        if (!attrs) return NULL;
        size_t na = 0;
        for (uint32_t l = 0; l < ls->n; l++) {
            const char *ln = ls->v[l].name;
            if (!strcmp(ln, "__name__") || !strcmp(ln, "job") || !strcmp(ln, "instance")) continue;
            if (!(attrs[na++] = kv_string(a, ln, ls->v[l].value))) return NULL;
        }
        for (uint32_t s = 0; s < series[q].n; s++) {
            Otlp__NumberDataPoint *p = sm_arena_alloc(a, sizeof *p);
            if (!p) return NULL;
            otlp__number_data_point__init(p);
            p->attributes = attrs;
            p->n_attributes = na;
            p->has_time_unix_nano = true;
            p->time_unix_nano = (uint64_t)series[q].samples[s].t * 1000000u;
            p->value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
            p->as_double = series[q].samples[s].v;
            pts[np++] = p;
        }
    }
    if (counter) {
        Otlp__Sum *sum = sm_arena_alloc(a, sizeof *sum);
        if (!sum) return NULL;
        otlp__sum__init(sum);
        sum->data_points = pts;
        sum->n_data_points = np;
        sum->has_aggregation_temporality = sum->has_is_monotonic = true;
        sum->aggregation_temporality = TEMPORALITY_CUMULATIVE;
        sum->is_monotonic = true;
        m->data_case = OTLP__METRIC__DATA_SUM;
        m->sum = sum;
    } else {
        Otlp__Gauge *g = sm_arena_alloc(a, sizeof *g);
        if (!g) return NULL;
        otlp__gauge__init(g);
        g->data_points = pts;
        g->n_data_points = np;
        m->data_case = OTLP__METRIC__DATA_GAUGE;
        m->gauge = g;
    }
    return m;
}

int otlp_encode(const tsdb_series_in *series, size_t n, sm_buf *out) {
    sm_arena *a = sm_arena_new(0, 0);
    Otlp__ResourceMetrics **rms = a ? sm_arena_alloc(a, (n ? n : 1) * sizeof *rms) : NULL;
    Otlp__ExportMetricsServiceRequest req = OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    int rc = rms ? 0 : SM_ENOMEM;
    for (size_t i = 0; !rc && i < n;) {
        const char *inst = label_or_empty(&series[i].labels, "instance");
        size_t j = i;
        while (j < n && !strcmp(label_or_empty(&series[j].labels, "instance"), inst)) j++;
        Otlp__ResourceMetrics *rm = resource_for(a, &series[i].labels, j - i);
        if (!rm) rc = SM_ENOMEM;
        for (size_t k = i; !rc && k < j;) {
            const char *name = label_or_empty(&series[k].labels, "__name__");
            size_t e = k;
            while (e < j && !strcmp(label_or_empty(&series[e].labels, "__name__"), name)) e++;
            Otlp__Metric *m = metric_for(a, series, k, e);
            if (!m) rc = SM_ENOMEM;
            else rm->scope_metrics[0]->metrics[rm->scope_metrics[0]->n_metrics++] = m;
            k = e;
        }
        if (!rc) rms[req.n_resource_metrics++] = rm;
        i = j;
    }
    req.resource_metrics = rms;
    if (!rc) rc = pack_into(&req.base, out);
    sm_arena_free(a);
    return rc;
}

int otlp_gzip(const void *p, size_t n, sm_buf *out) {
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 16 + MAX_WBITS: a gzip header and trailer rather than zlib's. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return SM_ENOMEM;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    if (sm_buf_reserve(out, cap)) {
        deflateEnd(&z);
        return SM_ENOMEM;
    }
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->p + out->len;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (zr != Z_STREAM_END) return SM_ENOMEM;
    out->len += cap - z.avail_out;
    return 0;
}
