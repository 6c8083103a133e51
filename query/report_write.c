/* SPDX-License-Identifier: Apache-2.0
 *
 * report_write.c - the three forms of an anomaly report (report.h):
 *
 *   JSON      the schema in docs/REPORTS.md ("seismo.report/v1"); times as
 *             RFC 3339 strings, numbers as JSON numbers or null
 *   Markdown  summary, then one section per incident with a member table
 *   HTML      one self-contained file: inline CSS, inline SVG charts (the
 *             actual series, its expected value and band, the anomalous
 *             span shaded), no scripts, no external fetches, so it reads the
 *             same in a mail client and a browser
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "report_int.h"

void report_fmt_time(sm_ms_t t, char *buf, size_t cap) {
    time_t s = (time_t)(t >= 0 ? t / 1000 : -((-t + 999) / 1000));
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int put(sm_buf *b, const char *s) { return sm_buf_append(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static int putf(sm_buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return SM_EINVAL;
    return sm_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- JSON ---- */

static void j_time(json_w *w, const char *k, sm_ms_t t) {
    char b[40];
    report_fmt_time(t, b, sizeof b);
    json_key(w, k);
    json_str(w, b);
}

static void j_num(json_w *w, const char *k, double v) {
    json_key(w, k);
    json_num(w, v);
}

static void j_labels(json_w *w, const sm_labels *ls) {
    json_obj_begin(w);
    for (uint32_t i = 0; i < ls->n; i++) {
        json_key(w, ls->v[i].name);
        json_str(w, ls->v[i].value);
    }
    json_obj_end(w);
}

static void j_summary(json_w *w, const report_period_summary *s) {
    json_obj_begin(w);
    j_time(w, "from", s->from);
    j_time(w, "to", s->to);
    json_key(w, "series_scanned");
    json_int(w, (int64_t)s->series_scanned);
    json_key(w, "anomalies");
    json_int(w, (int64_t)s->anomalies);
    json_key(w, "incidents");
    json_int(w, (int64_t)s->incidents);
    json_obj_end(w);
}

static size_t shown_incidents(const report *r) {
    return r->o.max_incidents && r->nincidents > r->o.max_incidents ? r->o.max_incidents : r->nincidents;
}

int report_write_json(const report *r, sm_buf *out) {
    json_w w;
    json_init(&w, out);
    json_obj_begin(&w);
    json_key(&w, "schema");
    json_str(&w, "seismo.report/v1");
    json_key(&w, "title");
    json_str(&w, r->o.title ? r->o.title : "");
    j_time(&w, "generated", r->generated_ms);
    j_time(&w, "from", r->cur.from);
    j_time(&w, "to", r->cur.to);
    json_key(&w, "step_seconds");
    json_int(&w, r->step_ms / 1000);
    j_num(&w, "threshold", r->o.threshold);
    json_key(&w, "slack_seconds");
    json_int(&w, r->o.slack_ms / 1000);
    json_key(&w, "group_labels");
    json_arr_begin(&w);
    for (size_t g = 0; g < r->o.ngroup; g++) json_str(&w, r->o.group_labels[g]);
    json_arr_end(&w);
    json_key(&w, "summary");
    j_summary(&w, &r->cur);
    json_key(&w, "previous");
    if (r->o.compare_previous) j_summary(&w, &r->prev);
    else json_null(&w);
    json_key(&w, "incidents_total");
    json_int(&w, (int64_t)r->nincidents);
    json_key(&w, "incidents");
    json_arr_begin(&w);
    for (size_t k = 0; k < shown_incidents(r); k++) {
        const report_incident *inc = &r->incidents[k];
        json_obj_begin(&w);
        json_key(&w, "rank");
        json_int(&w, (int64_t)k + 1);
        j_num(&w, "severity", inc->severity);
        j_num(&w, "peak_score", inc->peak_score);
        j_time(&w, "start", inc->start);
        j_time(&w, "end", inc->end);
        json_key(&w, "series");
        json_int(&w, (int64_t)inc->nseries);
        json_key(&w, "common_labels");
        j_labels(&w, &inc->common);
        json_key(&w, "cause");
        json_str(&w, inc->cause);
        json_key(&w, "members");
        json_arr_begin(&w);
        for (size_t m = 0; m < inc->n; m++) {
            const report_anomaly *a = &r->anomalies[inc->members[m]];
            json_obj_begin(&w);
            json_key(&w, "metric");
            json_str(&w, a->metric);
            json_key(&w, "rule");
            json_str(&w, a->rule);
            json_key(&w, "labels");
            j_labels(&w, &a->labels);
            j_time(&w, "start", a->start);
            j_time(&w, "end", a->end);
            j_time(&w, "peak_time", a->peak_t);
            j_num(&w, "peak_score", a->peak_score);
            j_num(&w, "actual", a->actual);
            j_num(&w, "expected", a->expected);
            j_num(&w, "lower", a->lower);
            j_num(&w, "upper", a->upper);
            j_num(&w, "severity", a->severity);
            json_key(&w, "explanation");
            json_str(&w, a->explain);
            json_obj_end(&w);
        }
        json_arr_end(&w);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    int rc = json_finish(&w);
    return rc ? rc : put(out, "\n");
}

/* ---- Markdown ---- */

static void md_labels(sm_buf *b, const sm_labels *ls) {
    put(b, "{");
    for (uint32_t i = 0; i < ls->n; i++) {
        putf(b, "%s%s=\"", i ? ", " : "", ls->v[i].name);
        /* Pipes would break the table. */
        for (const char *p = ls->v[i].value; *p; p++) sm_buf_append(b, *p == '|' ? "\\|" : p, *p == '|' ? 2 : 1);
        put(b, "\"");
    }
    put(b, "}");
}

static void md_num(sm_buf *b, double v) {
    if (isnan(v)) put(b, "n/a");
    else putf(b, "%.4g", v);
}

static void summary_line(sm_buf *b, const report *r) {
    putf(b, "%zu series scanned, %zu anomalous periods, %zu incidents", r->cur.series_scanned,
         r->cur.anomalies, r->cur.incidents);
    if (r->o.compare_previous)
        putf(b, " (previous period of the same length: %zu anomalous periods, %zu incidents)",
             r->prev.anomalies, r->prev.incidents);
}

int report_write_md(const report *r, sm_buf *out) {
    char f[40], t[40];
    report_fmt_time(r->cur.from, f, sizeof f);
    report_fmt_time(r->cur.to, t, sizeof t);
    putf(out, "# %s\n\n%s to %s, step %llds, threshold %.2f\n\n", r->o.title ? r->o.title : "", f, t,
         (long long)(r->step_ms / 1000), r->o.threshold);
    summary_line(out, r);
    put(out, ".\n");
    for (size_t k = 0; k < shown_incidents(r); k++) {
        const report_incident *inc = &r->incidents[k];
        report_fmt_time(inc->start, f, sizeof f);
        report_fmt_time(inc->end, t, sizeof t);
        putf(out, "\n## %zu. ", k + 1);
        if (inc->common.n) md_labels(out, &inc->common);
        else put(out, "unrelated labels");
        putf(out, " — severity %.2f, peak score %.2f\n\n%s to %s, %zu series. %s.\n\n", inc->severity,
             inc->peak_score, f, t, inc->nseries, inc->cause);
        put(out, "| metric | labels | start | end | peak score | actual | expected | band | why |\n"
                 "|---|---|---|---|---|---|---|---|---|\n");
        for (size_t m = 0; m < inc->n; m++) {
            const report_anomaly *a = &r->anomalies[inc->members[m]];
            report_fmt_time(a->start, f, sizeof f);
            report_fmt_time(a->end, t, sizeof t);
            putf(out, "| %s | ", a->metric);
            md_labels(out, &a->labels);
            putf(out, " | %s | %s | %.2f | ", f, t, a->peak_score);
            md_num(out, a->actual);
            put(out, " | ");
            md_num(out, a->expected);
            put(out, " | ");
            md_num(out, a->lower);
            put(out, " to ");
            md_num(out, a->upper);
            putf(out, " | %s |\n", a->explain);
        }
    }
    if (r->nincidents > shown_incidents(r))
        putf(out, "\n%zu more incidents are not shown.\n", r->nincidents - shown_incidents(r));
    if (!r->nincidents) put(out, "\nNothing unusual.\n");
    return out->len ? 0 : SM_ENOMEM;
}

/* ---- HTML ---- */

static void esc(sm_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '&': put(b, "&amp;"); break;
        case '"': put(b, "&quot;"); break;
        case '\'': put(b, "&#39;"); break;
        default: sm_buf_append(b, s, 1);
        }
    }
}

static void html_labels(sm_buf *b, const sm_labels *ls) {
    put(b, "{");
    for (uint32_t i = 0; i < ls->n; i++) {
        if (i) put(b, ", ");
        esc(b, ls->v[i].name);
        put(b, "=&quot;");
        esc(b, ls->v[i].value);
        put(b, "&quot;");
    }
    put(b, "}");
}

enum { SVG_W = 560, SVG_H = 140, SVG_PAD = 4 };

/* An inline chart of one anomaly: the steps around it (its span plus as
 * much again on each side, at least 30 steps), the band as a filled
 * polygon, the expected value dashed, the actual value solid, the span
 * shaded. */
static void svg_chart(sm_buf *b, const report *r, const report_anomaly *a) {
    size_t n = r->grid_n;
    int64_t step = r->step_ms;
    size_t i0 = (size_t)((a->start - r->grid_t0) / step), i1 = (size_t)((a->end - r->grid_t0) / step);
    size_t span = i1 - i0 + 1, pad = span > 30 ? span : 30;
    size_t lo = i0 > pad ? i0 - pad : 0, hi = i1 + pad < n ? i1 + pad : n - 1;
    double ymin = INFINITY, ymax = -INFINITY;
    for (size_t k = lo; k <= hi; k++) {
        const double vs[3] = {a->value[k], a->lo[k], a->hi[k]};
        for (int j = 0; j < 3; j++)
            if (isfinite(vs[j])) {
                if (vs[j] < ymin) ymin = vs[j];
                if (vs[j] > ymax) ymax = vs[j];
            }
    }
    if (!(ymin <= ymax)) {
        ymin = 0;
        ymax = 1;
    }
    if (ymax - ymin < 1e-12) {
        ymin -= 0.5;
        ymax += 0.5;
    }
    double xs = (double)(SVG_W - 2 * SVG_PAD) / (double)(hi > lo ? hi - lo : 1);
    double ys = (double)(SVG_H - 2 * SVG_PAD) / (ymax - ymin);
#define X(k) (SVG_PAD + (double)((k) - lo) * xs)
#define Y(v) (SVG_H - SVG_PAD - ((v) - ymin) * ys)
    putf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "role=\"img\" aria-label=\"chart\">",
         SVG_W, SVG_H, SVG_W, SVG_H);
    putf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#ddd\"/>", SVG_W, SVG_H);
    putf(b, "<rect x=\"%.1f\" y=\"0\" width=\"%.1f\" height=\"%d\" fill=\"#fde2e1\"/>", X(i0),
         X(i1) - X(i0) + (xs > 2 ? xs : 2), SVG_H);
    /* Band: runs of steps where both bounds exist. */
    for (size_t k = lo; k <= hi;) {
        if (!isfinite(a->lo[k]) || !isfinite(a->hi[k])) {
            k++;
            continue;
        }
        size_t e = k;
        while (e + 1 <= hi && isfinite(a->lo[e + 1]) && isfinite(a->hi[e + 1])) e++;
        put(b, "<polygon fill=\"#cfe3f7\" stroke=\"none\" points=\"");
        for (size_t j = k; j <= e; j++) putf(b, "%.1f,%.1f ", X(j), Y(a->hi[j]));
        for (size_t j = e + 1; j-- > k;) putf(b, "%.1f,%.1f ", X(j), Y(a->lo[j]));
        put(b, "\"/>");
        k = e + 1;
    }
    const double *lines[2] = {a->exp, a->value};
    const char *styles[2] = {"stroke=\"#3b7dc4\" stroke-dasharray=\"4 3\"", "stroke=\"#222\""};
    for (int L = 0; L < 2; L++) {
        bool open = false;
        for (size_t k = lo; k <= hi; k++) {
            if (!isfinite(lines[L][k])) {
                if (open) put(b, "\"/>");
                open = false;
                continue;
            }
            if (!open) putf(b, "<polyline fill=\"none\" %s stroke-width=\"1.5\" points=\"", styles[L]);
            open = true;
            putf(b, "%.1f,%.1f ", X(k), Y(lines[L][k]));
        }
        if (open) put(b, "\"/>");
    }
#undef X
#undef Y
    put(b, "</svg>");
}

static const char *const css =
    "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;max-width:960px;"
    "margin:16px auto;padding:0 12px}h1{font-size:22px}h2{font-size:17px;margin-top:28px;"
    "border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:13px;margin:8px 0}"
    "td,th{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}"
    ".muted{color:#666;font-size:13px}.member{margin:14px 0}.score{font-weight:bold;color:#b3261e}"
    "code{font-size:12px}";

int report_write_html(const report *r, sm_buf *out) {
    char f[40], t[40];
    report_fmt_time(r->cur.from, f, sizeof f);
    report_fmt_time(r->cur.to, t, sizeof t);
    put(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>");
    esc(out, r->o.title ? r->o.title : "");
    putf(out, "</title><style>%s</style></head><body>\n<h1>", css);
    esc(out, r->o.title ? r->o.title : "");
    putf(out, "</h1>\n<p class=\"muted\">%s to %s &#183; step %llds &#183; threshold %.2f</p>\n<p>", f, t,
         (long long)(r->step_ms / 1000), r->o.threshold);
    summary_line(out, r);
    put(out, ".</p>\n");
    if (!r->nincidents) put(out, "<p>Nothing unusual.</p>\n");
    for (size_t k = 0; k < shown_incidents(r); k++) {
        const report_incident *inc = &r->incidents[k];
        report_fmt_time(inc->start, f, sizeof f);
        report_fmt_time(inc->end, t, sizeof t);
        putf(out, "<h2>%zu. ", k + 1);
        if (inc->common.n) html_labels(out, &inc->common);
        else put(out, "unrelated labels");
        putf(out, " &#8212; severity %.2f</h2>\n<p>%s to %s, %zu series, peak score "
                  "<span class=\"score\">%.2f</span>. ",
             inc->severity, f, t, inc->nseries, inc->peak_score);
        esc(out, inc->cause);
        put(out, ".</p>\n");
        for (size_t m = 0; m < inc->n; m++) {
            const report_anomaly *a = &r->anomalies[inc->members[m]];
            report_fmt_time(a->start, f, sizeof f);
            report_fmt_time(a->end, t, sizeof t);
            put(out, "<div class=\"member\"><p><b>");
            esc(out, a->metric);
            put(out, "</b> <code>");
            html_labels(out, &a->labels);
            putf(out, "</code><br/>%s to %s, peak score <span class=\"score\">%.2f</span>: ", f, t, a->peak_score);
            esc(out, a->explain);
            put(out, "</p>");
            svg_chart(out, r, a);
            put(out, "</div>\n");
        }
    }
    if (r->nincidents > shown_incidents(r))
        putf(out, "<p class=\"muted\">%zu more incidents are not shown.</p>\n", r->nincidents - shown_incidents(r));
    put(out, "<p class=\"muted\">Generated by Seismo. Black: the series; dashed blue: expected; blue band: "
             "lower to upper; red: the anomalous span.</p>\n</body></html>\n");
    return out->len ? 0 : SM_ENOMEM;
}
