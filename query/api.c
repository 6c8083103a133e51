/* SPDX-License-Identifier: Apache-2.0
 *
 * api.c - the Prometheus HTTP query API (see api.h): requests built from
 * URL query strings and form bodies, time and duration arguments, error
 * answers, the dispatcher, and /api/v1/query and /api/v1/query_range with
 * their result JSON.  Series, label and status endpoints are in
 * api_meta.c.
 *
 * Result JSON follows Prometheus 2.42 byte for byte, which has two number
 * forms (web/api/v1 and promql.Scalar disagree):
 *   - points of vectors and matrices: timestamps as seconds with exactly
 *     three decimals when not whole ("1.500", "-1.050", "15"), values in
 *     Go's 'f' form except below 1e-6 or from 1e21 up in magnitude, where
 *     the shortest 'e' form is used ("1e-07", "1e+21");
 *   - scalars and strings: time and value both in the shortest 'f' form
 *     ("1.5", "0.0000001"), as json_time / json_format_value write them.
 *
 * Per-request timeouts: engine.h has no per-query timeout, so a `timeout`
 * shorter than the engine's is served by a short-lived engine with that
 * timeout over the same database (TODO: a timeout argument on
 * engine_query_* would make this cheaper and keep such queries inside the
 * shared max_concurrent cap).
 */
#include "api_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "promql.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_time.h"

/* ---- requests ---- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %XX-decode (and '+' as space when form) into the arena. */
static char *url_decode(sm_arena *a, const char *s, size_t n, bool form) {
    char *o = sm_arena_alloc(a, n + 1);
    if (!o) return NULL;
    char *w = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+' && form) *w++ = ' ';
        else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *w++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else *w++ = s[i];
    }
    *w = '\0';
    return o;
}

typedef struct kv_list {
    api_arg *v;
    size_t n, cap;
} kv_list;

static int add_pairs(sm_arena *a, kv_list *l, const char *s, size_t n) {
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        if (amp > p) {
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            const char *kend = eq ? eq : amp;
            if (l->n == l->cap) {
                size_t nc = l->cap ? l->cap * 2 : 8;
                api_arg *nv = sm_arena_realloc(a, l->v, l->cap * sizeof *nv, nc * sizeof *nv);
                if (!nv) return SM_ENOMEM;
                l->v = nv;
                l->cap = nc;
            }
            api_arg *kv = &l->v[l->n];
            kv->name = url_decode(a, p, (size_t)(kend - p), true);
            kv->value = eq ? url_decode(a, eq + 1, (size_t)(amp - eq - 1), true) : "";
            if (!kv->name || !kv->value) return SM_ENOMEM;
            l->n++;
        }
        p = amp + 1;
    }
    return 0;
}

static const char *kv_arg(const api_req *r, const char *name) {
    for (size_t i = 0; i < r->nkv; i++)
        if (!strcmp(r->kv[i].name, name)) return r->kv[i].value;
    return NULL;
}

static size_t kv_args(const api_req *r, const char *name, const char **out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < r->nkv; i++)
        if (!strcmp(r->kv[i].name, name)) {
            if (n < cap) out[n] = r->kv[i].value;
            n++;
        }
    return n;
}

int api_req_parse(sm_arena *a, const char *method, const char *path_and_query, const char *content_type,
                  const void *body, size_t len, api_req *out, sm_error *err) {
    const char *q = strchr(path_and_query, '?');
    size_t plen = q ? (size_t)(q - path_and_query) : strlen(path_and_query);
    kv_list l = {0};
    char *path = url_decode(a, path_and_query, plen, false);
    if (!path) return SM_ERR(err, SM_ENOMEM, "out of memory");
    if (q && add_pairs(a, &l, q + 1, strlen(q + 1))) return SM_ERR(err, SM_ENOMEM, "out of memory");
    if (body && len && content_type && !strncasecmp(content_type, "application/x-www-form-urlencoded", 33) &&
        add_pairs(a, &l, body, len))
        return SM_ERR(err, SM_ENOMEM, "out of memory");
    memset(out, 0, sizeof *out);
    out->method = method;
    out->path = path;
    out->arg = kv_arg;
    out->args = kv_args;
    out->kv = l.v;
    out->nkv = l.n;
    return 0;
}

/* ---- responses ---- */

void api_resp_init(api_resp *r) {
    r->status = 0;
    r->content_type = "application/json";
    sm_buf_init(&r->body);
}

void api_resp_fini(api_resp *r) { sm_buf_fini(&r->body); }

static unsigned status_of(const char *type) {
    if (!strcmp(type, API_BAD_DATA)) return 400;
    if (!strcmp(type, API_EXEC)) return 422;
    if (!strcmp(type, API_TIMEOUT) || !strcmp(type, API_UNAVAILABLE)) return 503;
    return 500;
}

int api_error(api_resp *resp, const char *type, const char *fmt, ...) {
    char msg[SM_ERROR_MSG_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sm_buf_clear(&resp->body);
    json_w w;
    json_init(&w, &resp->body);
    json_obj_begin(&w);
    json_key(&w, "status");
    json_str(&w, "error");
    json_key(&w, "errorType");
    json_str(&w, type);
    json_key(&w, "error");
    json_str(&w, msg);
    json_obj_end(&w);
    resp->status = status_of(type);
    resp->content_type = "application/json";
    return json_finish(&w);
}

void api_ok_begin(json_w *w, api_resp *resp) {
    sm_buf_clear(&resp->body);
    json_init(w, &resp->body);
    json_obj_begin(w);
    json_key(w, "status");
    json_str(w, "success");
    json_key(w, "data");
}

int api_ok_end(json_w *w, api_resp *resp) {
    json_obj_end(w);
    resp->status = 200;
    resp->content_type = "application/json";
    return json_finish(w);
}

/* ---- argument syntax ---- */

/* Go's strconv.ParseFloat syntax for decimals: [+-] digits [. digits]
 * [e [+-] digits], at least one digit before the exponent.  (Go also takes
 * Inf, NaN and hex floats; a time or duration cannot be those.) */
static bool decimal_syntax(const char *s) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (!digits) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p)) p++;
    }
    return *p == '\0';
}

static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits_at(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), as Go's RFC3339Nano
 * layout reads it; fractions below a millisecond are truncated. */
static int parse_rfc3339(const char *s, sm_ms_t *out) {
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 20 || !digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) || s[7] != '-' ||
        !digits_at(s + 8, 2, &d) || s[10] != 'T' || !digits_at(s + 11, 2, &h) || s[13] != ':' ||
        !digits_at(s + 14, 2, &mi) || s[16] != ':' || !digits_at(s + 17, 2, &sec))
        return SM_EINVAL;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
        sec > 59)
        return SM_EINVAL;
    const char *p = s + 19;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3) frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (!nd) return SM_EINVAL;
        for (int i = nd; i < 3; i++) frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits_at(p + 1, 2, &oh) || p[3] != ':' || !digits_at(p + 4, 2, &om) || oh > 23 || om > 59)
            return SM_EINVAL;
        off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return SM_EINVAL;
    }
    if (*p) return SM_EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *out = secs * 1000 + frac_ms;
    return 0;
}

int api_parse_time(const char *s, sm_ms_t *out) {
    if (!s || !*s) return SM_EINVAL;
    if (decimal_syntax(s)) {
        double v = strtod(s, NULL);
        /* Beyond +-2^53 ms the float has no millisecond left to round. */
        if (!isfinite(v) || fabs(v) > 9.0e15) return SM_EINVAL;
        double whole = trunc(v);
        *out = (sm_ms_t)whole * 1000 + (sm_ms_t)llround((v - whole) * 1000);
        return 0;
    }
    /* Prometheus's own min and max times, which clients send back as
     * bounds (Go's parser cannot read their years). */
    if (!strcmp(s, "-292273086-05-16T16:47:06Z")) {
        *out = SM_MS_MIN;
        return 0;
    }
    if (!strcmp(s, "292277025-08-18T07:12:54.999999999Z")) {
        *out = SM_MS_MAX;
        return 0;
    }
    return parse_rfc3339(s, out);
}

int api_parse_duration(const char *s, int64_t *ms_out) {
    if (!s || !*s) return SM_EINVAL;
    if (decimal_syntax(s)) {
        double v = strtod(s, NULL);
        if (!isfinite(v) || fabs(v) > 9.2e15) return SM_EINVAL;
        *ms_out = (int64_t)(v * 1000); /* toward zero, like time.Duration */
        return 0;
    }
    int64_t ms;
    if (promql_parse_duration(s, strlen(s), &ms)) return SM_EINVAL;
    *ms_out = ms;
    return 0;
}

void api_line_col(const char *src, size_t pos, int *line, int *col) {
    int l = 1;
    size_t last_nl = (size_t)-1; /* "before the start" */
    for (size_t i = 0; i < pos && src[i]; i++)
        if (src[i] == '\n') {
            l++;
            last_nl = i;
        }
    *line = l;
    *col = (int)(pos - last_nl); /* wraps to pos + 1 on the first line */
}

int api_time_param(const api_req *r, const char *name, sm_ms_t def, sm_ms_t *out, api_resp *resp) {
    const char *v = r->arg(r, name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    if (api_parse_time(v, out) == 0) return 0;
    api_error(resp, API_BAD_DATA, "invalid parameter \"%s\": Invalid time value for '%s': cannot parse \"%.200s\" to a valid timestamp",
              name, name, v);
    return 1;
}

/* A required time (query_range's start and end). */
static int required_time(const api_req *r, const char *name, sm_ms_t *out, api_resp *resp) {
    const char *v = r->arg(r, name);
    if (v && api_parse_time(v, out) == 0) return 0;
    api_error(resp, API_BAD_DATA, "invalid parameter \"%s\": cannot parse \"%.200s\" to a valid timestamp", name,
              v ? v : "");
    return 1;
}

/* ---- result JSON ---- */

void api_write_labels(json_w *w, const sm_labels *ls) {
    json_obj_begin(w);
    for (uint32_t i = 0; i < ls->n; i++) {
        json_key(w, ls->v[i].name);
        json_str(w, ls->v[i].value);
    }
    json_obj_end(w);
}

/* A range query's step times, formatted once for all series: a matrix
 * of 64 series over 241 steps writes each time string 64 times. */
typedef struct time_tab {
    sm_ms_t start, step;
    size_t n;
    char (*s)[24];
    uint8_t *len;
} time_tab;

static void time_tab_init(time_tab *tt, sm_ms_t start, sm_ms_t step, size_t n, sm_arena *ar) {
    memset(tt, 0, sizeof *tt);
    if (step <= 0 || !n) return;
    tt->s = sm_arena_alloc(ar, n * sizeof *tt->s);
    tt->len = sm_arena_alloc(ar, n);
    if (!tt->s || !tt->len) return; /* no table: each point formats its own time */
    tt->start = start;
    tt->step = step;
    tt->n = n;
    for (size_t k = 0; k < n; k++) tt->len[k] = (uint8_t)json_format_point_time(start + (sm_ms_t)k * step, tt->s[k]);
}

/* A point's value as Prometheus writes it (see the file comment) into o,
 * which has room for POINT_VALUE_MAX bytes; returns the length. */
#define POINT_VALUE_MAX 48
static size_t point_value(double v, char *o) {
    double m = fabs(v);
    if (isfinite(v) && m != 0 && (m < 1e-6 || m >= 1e21)) return json_format_e(v, o, NULL);
    /* Below 1e21 the plain layout has at most 26 bytes ("-0.0000" and 17
     * digits, or 21 integer digits and a sign), and json_format_value
     * touches at most 48 (json.h). */
    return json_format_value(v, o);
}

/* [t,"v"] of a vector or matrix point (see the file comment). */
static void write_point(json_w *w, const time_tab *tt, sm_ms_t t, double v) {
    char tb[24], vb[POINT_VALUE_MAX];
    const char *ts = tb;
    size_t tn;
    uint64_t k;
    if (tt && tt->n && t >= tt->start && (k = (uint64_t)(t - tt->start) / (uint64_t)tt->step) < tt->n &&
        (sm_ms_t)k * tt->step == t - tt->start) {
        ts = tt->s[k];
        tn = tt->len[k];
    } else {
        tn = json_format_point_time(t, tb);
    }
    json_point(w, ts, tn, vb, point_value(v, vb));
}

/* The points of a matrix series, [t,"v"],[t,"v"],..., written straight
 * into the answer with one reservation.  Points are in time order, so the
 * step-time table is walked with a cursor instead of a division a point. */
#define POINT_MAX (1 + 1 + 24 + 2 + POINT_VALUE_MAX + 2)
static void write_points(json_w *w, const time_tab *tt, const promql_point *p, size_t n) {
    char *o = json_raw_begin(w, n * POINT_MAX);
    if (!o) return;
    size_t ti = 0, tn = tt ? tt->n : 0;
    for (size_t k = 0; k < n; k++) {
        sm_ms_t t = p[k].t;
        if (k) *o++ = ',';
        *o++ = '[';
        while (ti < tn && tt->start + (sm_ms_t)ti * tt->step < t) ti++;
        if (ti < tn && tt->start + (sm_ms_t)ti * tt->step == t) {
            memcpy(o, tt->s[ti], sizeof tt->s[ti]); /* a fixed-size copy; the length follows */
            o += tt->len[ti];
        } else {
            o += json_format_point_time(t, o);
        }
        *o++ = ',';
        *o++ = '"';
        o += point_value(p[k].v, o);
        *o++ = '"';
        *o++ = ']';
    }
    json_raw_end(w, o);
}

/* [t,"v"] of a scalar or string result. */
static void write_scalar(json_w *w, sm_ms_t t, const char *s, double v) {
    char vb[400];
    json_arr_begin(w);
    json_time(w, t);
    if (s) {
        json_str(w, s);
    } else {
        json_format_value(v, vb);
        json_str(w, vb);
    }
    json_arr_end(w);
}

/* The series objects of a matrix, {"metric":...,"values":[...]},... */
static void write_matrix_series(json_w *w, const promql_series *s, size_t n, const time_tab *tt) {
    for (size_t i = 0; i < n; i++) {
        json_obj_begin(w);
        json_key(w, "metric");
        api_write_labels(w, &s[i].labels);
        json_key(w, "values");
        json_arr_begin(w);
        if (s[i].npoints) write_points(w, tt, s[i].points, s[i].npoints);
        json_arr_end(w);
        json_obj_end(w);
    }
}

/* tt: the step times of a range query, or NULL. */
static void write_result(json_w *w, const promql_result *res, const time_tab *tt) {
    json_obj_begin(w);
    json_key(w, "resultType");
    switch (res->type) {
    case PROMQL_SCALAR:
        json_str(w, "scalar");
        json_key(w, "result");
        if (res->nseries && res->series[0].npoints)
            write_scalar(w, res->series[0].points[0].t, NULL, res->series[0].points[0].v);
        else
            write_scalar(w, 0, NULL, NAN);
        break;
    case PROMQL_STRING:
        json_str(w, "string");
        json_key(w, "result");
        write_scalar(w, res->nseries && res->series[0].npoints ? res->series[0].points[0].t : 0,
                     res->str ? res->str : "", 0);
        break;
    case PROMQL_VECTOR:
        json_str(w, "vector");
        json_key(w, "result");
        json_arr_begin(w);
        for (size_t i = 0; i < res->nseries; i++) {
            const promql_series *s = &res->series[i];
            if (!s->npoints) continue;
            json_obj_begin(w);
            json_key(w, "metric");
            api_write_labels(w, &s->labels);
            json_key(w, "value");
            write_point(w, tt, s->points[0].t, s->points[0].v);
            json_obj_end(w);
        }
        json_arr_end(w);
        break;
    default:
        json_str(w, "matrix");
        json_key(w, "result");
        json_arr_begin(w);
        write_matrix_series(w, res->series, res->nseries, tt);
        json_arr_end(w);
        break;
    }
    json_obj_end(w);
}

/* ---- /api/v1/query and /api/v1/query_range ---- */

/* An evaluation error as Prometheus's API reports it. */
static int eval_error(int rc, const sm_error *err, api_resp *resp) {
    const char *msg = err->msg[0] ? err->msg : sm_strerror(rc);
    switch (rc) {
    case SM_EINVAL:
        return api_error(resp, engine_error_is_exec(err) ? API_EXEC : API_BAD_DATA, "%s", msg);
    case SM_ELIMIT:
        return api_error(resp, API_EXEC, "%s",
                         err->msg[0] ? msg : "query processing would load too many samples into memory in query execution");
    case SM_ETIMEOUT:
        return api_error(resp, API_TIMEOUT, "%s", err->msg[0] ? msg : "query timed out in expression evaluation");
    case SM_ECORRUPT:
    case SM_EIO:
    case SM_ENOMEM:
        return api_error(resp, API_INTERNAL, "%s", msg);
    default:
        return api_error(resp, API_EXEC, "%s", msg);
    }
}

/* The `timeout` argument: 0 and *ms set, or 1 after an answer in resp. */
static int timeout_param(api *a, const api_req *r, int64_t *ms, api_resp *resp) {
    *ms = a->o.engine.timeout_ms;
    const char *v = r->arg(r, "timeout");
    if (!v || !*v) return 0;
    int64_t t;
    if (api_parse_duration(v, &t)) {
        api_error(resp, API_BAD_DATA, "invalid parameter \"timeout\": cannot parse \"%.200s\" to a valid duration", v);
        return 1;
    }
    if (t <= 0) { /* already expired, as Go's context.WithTimeout makes it */
        api_error(resp, API_TIMEOUT, "query timed out in query queue");
        return 1;
    }
    if (*ms == 0 || t < *ms) *ms = t;
    return 0;
}

typedef struct qrun {
    bool range;
    sm_ms_t t, start, end, step;
    int64_t timeout_ms;
    const char *query;
} qrun;

static int run_query(api *a, const qrun *q, api_resp *resp) {
    sm_arena *ar = sm_arena_new(0, 0);
    if (!ar) return SM_ENOMEM;
    int rc = 0;
    promql_node *expr = NULL;
    engine *tmp = NULL;
    sm_error err;
    sm_error_clear(&err);
    size_t qlen = strlen(q->query);
    int prc = promql_parse(q->query, qlen, ar, &expr, &err);
    if (prc == SM_ENOMEM) {
        rc = SM_ENOMEM;
        goto out;
    }
    if (prc) {
        int line, col;
        api_line_col(q->query, err.pos >= 0 && (size_t)err.pos <= qlen ? (size_t)err.pos : 0, &line, &col);
        rc = api_error(resp, API_BAD_DATA, "%s%d:%d: parse error: %s", q->range ? "" : "invalid parameter \"query\": ",
                       line, col, err.msg);
        goto out;
    }
    if (q->range && expr->type != PROMQL_SCALAR && expr->type != PROMQL_VECTOR) {
        rc = api_error(resp, API_BAD_DATA,
                       "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                       promql_type_name(expr->type));
        goto out;
    }
    engine *e = a->e;
    if (q->timeout_ms != a->o.engine.timeout_ms) {
        engine_opts eo = a->o.engine;
        eo.timeout_ms = q->timeout_ms;
        eo.max_concurrent = 1;
        sm_error_clear(&err);
        int erc = engine_new(&eo, a->db, &tmp, &err);
        if (erc) {
            rc = erc == SM_ENOMEM ? SM_ENOMEM : api_error(resp, API_INTERNAL, "%s", err.msg);
            goto out;
        }
        e = tmp;
    }
    promql_result res;
    memset(&res, 0, sizeof res);
    sm_error_clear(&err);
    int erc = q->range ? engine_eval_range(e, expr, q->start, q->end, q->step, ar, &res, &err)
                       : engine_eval_instant(e, expr, q->t, ar, &res, &err);
    if (erc) {
        rc = eval_error(erc, &err, resp);
        goto out;
    }
    /* The answer's size, about: a point is [t,"v"] of up to ~30 bytes, a
     * series' labels about 200.  One reservation saves the copies of
     * doubling a 400 KB buffer. */
    size_t npoints = 0, most = 0;
    for (size_t i = 0; i < res.nseries; i++) {
        npoints += res.series[i].npoints;
        if (res.series[i].npoints > most) most = res.series[i].npoints;
    }
    sm_buf_clear(&resp->body);
    /* (write_points reserves a worst case for the series it writes.) */
    if (sm_buf_reserve(&resp->body, 256 + res.nseries * 200 + npoints * 30 + most * POINT_MAX)) {
        rc = SM_ENOMEM;
        goto out;
    }
    time_tab tt;
    time_tab_init(&tt, q->start, q->step, q->range ? (size_t)((q->end - q->start) / q->step) + 1 : 0, ar);
    json_w w;
    api_ok_begin(&w, resp);
    write_result(&w, &res, q->range ? &tt : NULL);
    rc = api_ok_end(&w, resp);
out:
    engine_free(tmp);
    promql_node_fini(expr);
    sm_arena_free(ar);
    return rc;
}

static int api_query(api *a, const api_req *r, api_resp *resp) {
    qrun q = {0};
    sm_ms_t now = a->o.now_ms ? a->o.now_ms() : sm_now_ms();
    if (api_time_param(r, "time", now, &q.t, resp)) return 0;
    if (timeout_param(a, r, &q.timeout_ms, resp)) return 0;
    q.query = r->arg(r, "query");
    if (!q.query) q.query = "";
    return run_query(a, &q, resp);
}

/* Prometheus's cap on points per series of a range query. */
#define API_MAX_POINTS 11000

static int api_query_range(api *a, const api_req *r, api_resp *resp) {
    qrun q = {0};
    q.range = true;
    if (required_time(r, "start", &q.start, resp) || required_time(r, "end", &q.end, resp)) return 0;
    if (q.end < q.start)
        return api_error(resp, API_BAD_DATA, "invalid parameter \"end\": end timestamp must not be before start time");
    const char *sv = r->arg(r, "step");
    if (api_parse_duration(sv, &q.step))
        return api_error(resp, API_BAD_DATA, "invalid parameter \"step\": cannot parse \"%.200s\" to a valid duration",
                         sv ? sv : "");
    /* Steps under a millisecond truncate to 0 here: the engine works in ms. */
    if (q.step <= 0)
        return api_error(resp, API_BAD_DATA,
                         "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. "
                         "Try a positive integer");
    /* Unsigned: end - start may not fit int64 (start near SM_MS_MIN). */
    if (((uint64_t)q.end - (uint64_t)q.start) / (uint64_t)q.step > API_MAX_POINTS)
        return api_error(resp, API_BAD_DATA,
                         "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
                         "resolution (?step=XX)");
    if (timeout_param(a, r, &q.timeout_ms, resp)) return 0;
    q.query = r->arg(r, "query");
    if (!q.query) q.query = "";
    return run_query(a, &q, resp);
}

/* ---- endpoints without data ---- */

static int empty_data(api_resp *resp, bool object) {
    json_w w;
    api_ok_begin(&w, resp);
    if (object) {
        json_obj_begin(&w);
        json_obj_end(&w);
    } else {
        json_arr_begin(&w);
        json_arr_end(&w);
    }
    return api_ok_end(&w, resp);
}

static int method_not_allowed(api_resp *resp) {
    sm_buf_clear(&resp->body);
    resp->status = 405;
    resp->content_type = "text/plain; charset=utf-8";
    return sm_buf_append(&resp->body, "Method Not Allowed\n", 19);
}

/* ---- the API object and the dispatcher ---- */

void api_opts_default(api_opts *o) {
    memset(o, 0, sizeof *o);
    engine_opts_default(&o->engine);
    o->storage_retention = "15d";
    o->start_ms = sm_now_ms();
}

int api_new(const api_opts *o, engine *e, tsdb *db, api **out, sm_error *err) {
    api *a = sm_calloc(1, sizeof *a);
    if (!a) return SM_ERR(err, SM_ENOMEM, "out of memory");
    a->o = *o;
    atomic_init(&a->e, e);
    atomic_init(&a->db, db);
    if (!getcwd(a->cwd, sizeof a->cwd)) a->cwd[0] = '\0';
    *out = a;
    return 0;
}

void api_free(api *a) { sm_free(a); }

void api_set_backend(api *a, engine *e, tsdb *db) {
    atomic_store(&a->db, db);
    atomic_store(&a->e, e);
}

#define API_PREFIX "/api/v1/"

int api_serve(api *a, const api_req *r, api_resp *resp) {
    if (strncmp(r->path, API_PREFIX, strlen(API_PREFIX)) != 0) return SM_ENOTFOUND;
    const char *p = r->path + strlen(API_PREFIX);
    bool get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    enum { QUERY, RANGE, SERIES, LABELS, VALUES, EXEMPLARS, METADATA, BUILD, RUNTIME, FLAGS } ep;
    bool post_ok = true;
    const char *name = NULL;
    size_t name_len = 0;
    if (!strcmp(p, "query")) ep = QUERY;
    else if (!strcmp(p, "query_range")) ep = RANGE;
    else if (!strcmp(p, "series")) ep = SERIES;
    else if (!strcmp(p, "labels")) ep = LABELS;
    else if (!strcmp(p, "query_exemplars")) ep = EXEMPLARS;
    else if (!strcmp(p, "metadata")) ep = METADATA, post_ok = false;
    else if (!strcmp(p, "status/buildinfo")) ep = BUILD, post_ok = false;
    else if (!strcmp(p, "status/runtimeinfo")) ep = RUNTIME, post_ok = false;
    else if (!strcmp(p, "status/flags")) ep = FLAGS, post_ok = false;
    else if (!strncmp(p, "label/", 6)) {
        name = p + 6;
        const char *slash = strchr(name, '/');
        if (!slash || strcmp(slash, "/values") != 0) return SM_ENOTFOUND;
        name_len = (size_t)(slash - name);
        ep = VALUES, post_ok = false;
    } else return SM_ENOTFOUND;
    if (!get && !(post && post_ok)) return method_not_allowed(resp);
    bool needs_db = ep == QUERY || ep == RANGE || ep == SERIES || ep == LABELS || ep == VALUES;
    if (needs_db && (!a->db || !a->e))
        return api_error(resp, API_UNAVAILABLE, "Seismo is not ready: the database is being opened");
    switch (ep) {
    case QUERY: return api_query(a, r, resp);
    case RANGE: return api_query_range(a, r, resp);
    case SERIES: return api_series(a, r, resp);
    case LABELS: return api_labels(a, r, resp);
    case VALUES: return api_label_values(a, r, name, name_len, resp);
    case EXEMPLARS: return empty_data(resp, false);
    case METADATA: return empty_data(resp, true);
    case BUILD: return api_buildinfo(a, resp);
    case RUNTIME: return api_runtimeinfo(a, resp);
    case FLAGS: return api_flags(a, resp);
    }
    return SM_ENOTFOUND;
}
