/* SPDX-License-Identifier: Apache-2.0
 *
 * report.c - build anomaly reports (rules in report.h, schema and prose
 * in docs/REPORTS.md) and write them as JSON, Markdown or HTML.
 *
 * Data flow: for each source (rule outputs filtered by a selector, or an
 * expression scored on query) five range queries over the previous period
 * and the window, at one step; the five results are joined by label set
 * (without __name__) into one row per series with five arrays of steps.
 * Periods are found per row (report_find_periods), then incidents by
 * union-find over pairs of anomalies that overlap (with slack) and share a
 * grouping label value.  Everything lives in the caller's arena.  The
 * renderers are in report_write.c.
 *
 * Not here: schedules and sinks (report_sched.c), reading files.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_int.h"
#include "tsdb/base/sm_time.h"

static const char *const default_groups[] = {"instance", "job", "service"};

void report_opts_default(report_opts *o) {
    memset(o, 0, sizeof *o);
    o->group_labels = default_groups;
    o->ngroup = sizeof default_groups / sizeof *default_groups;
    o->slack_ms = 5 * 60000;
    o->threshold = 0.5; /* ML_SCORE_THRESHOLD: outside the band */
    o->compare_previous = true;
    o->max_incidents = 50;
    o->title = "Seismo anomaly report";
}

/* ---- periods ---- */

size_t report_find_periods(const double *score, size_t n, double threshold, size_t slack_steps,
                           report_period_fn fn, void *ctx) {
    size_t count = 0, k = 0;
    while (k < n) {
        if (!(score[k] >= threshold)) {
            k++;
            continue;
        }
        size_t first = k, last = k, peak = k;
        /* Extend while the next anomalous step is within slack of the last. */
        for (size_t j = k + 1; j < n && j <= last + slack_steps + 1; j++) {
            if (score[j] >= threshold) {
                last = j;
                if (score[j] > score[peak]) peak = j;
            }
        }
        if (fn) fn(ctx, first, last, peak);
        count++;
        k = last + 1;
    }
    return count;
}

/* ---- fetching ---- */

/* Build the rule-output query for metric `name` and a --match selector:
 * "{...}" applies as is; "m{...}" or "m" selects anomaly_source="m". */
static char *match_query(sm_arena *a, const char *name, const char *sel) {
    sm_buf b = SM_BUF_INIT;
    char *out = NULL;
    if (!sel || !*sel) {
        if (sm_buf_append(&b, name, strlen(name))) goto done;
    } else {
        while (*sel == ' ') sel++;
        const char *brace = strchr(sel, '{');
        size_t nlen = brace ? (size_t)(brace - sel) : strlen(sel);
        while (nlen && sel[nlen - 1] == ' ') nlen--;
        const char *rest = brace ? brace + 1 : "}";
        int rc = sm_buf_append(&b, name, strlen(name));
        if (!rc && nlen) {
            rc = sm_buf_append(&b, "{anomaly_source=\"", 17);
            if (!rc) rc = sm_buf_append(&b, sel, nlen);
            const char *tail = rest;
            while (*tail == ' ') tail++;
            if (!rc) rc = sm_buf_append(&b, *tail == '}' ? "\"" : "\",", *tail == '}' ? 1 : 2);
        } else if (!rc) {
            rc = sm_buf_append(&b, "{", 1);
        }
        if (!rc) rc = sm_buf_append(&b, rest, strlen(rest));
        if (rc) goto done;
    }
    out = sm_arena_strndup(a, (const char *)b.p, b.len);
done:
    sm_buf_fini(&b);
    return out;
}

/* The labels of s without __name__, copied into the arena. */
static int strip_name(sm_arena *a, const sm_labels *in, sm_labels *out, const char **name) {
    sm_label *v = sm_arena_calloc(a, in->n ? in->n : 1, sizeof *v);
    if (!v) return SM_ENOMEM;
    uint32_t k = 0;
    *name = NULL;
    for (uint32_t i = 0; i < in->n; i++) {
        if (!strcmp(in->v[i].name, SM_METRIC_NAME_LABEL)) {
            *name = in->v[i].value;
            continue;
        }
        v[k++] = in->v[i];
    }
    *out = (sm_labels){v, k};
    return 0;
}

static rp_row *find_row(rp_rows *rows, const sm_labels *ls) {
    uint64_t h = sm_labels_hash(ls);
    for (size_t i = 0; i < rows->n; i++)
        if (rows->v[i].hash == h && sm_labels_equal(&rows->v[i].labels, ls)) return &rows->v[i];
    return NULL;
}

static double *nan_steps(sm_arena *a, size_t n) {
    double *d = sm_arena_alloc(a, (n ? n : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = NAN;
    return d;
}

/* Run one range query and put its points into field `which` of the rows
 * (creating rows as needed when `create`). */
static int fetch_into(rp_ctx *c, const char *query, int which, bool create, const char *rule) {
    promql_result res;
    sm_error qerr = {0};
    int rc = engine_query_range(c->e, query, c->t0, c->t1, c->step, c->a, &res, &qerr);
    if (rc) return SM_ERR(c->err, rc, "report query %s: %s", query, qerr.msg);
    for (size_t i = 0; i < res.nseries; i++) {
        const promql_series *s = &res.series[i];
        sm_labels ls;
        const char *name;
        if (strip_name(c->a, &s->labels, &ls, &name)) return SM_ERR(c->err, SM_ENOMEM, "out of memory");
        rp_row *row = find_row(&c->rows, &ls);
        if (!row) {
            if (!create) continue;
            if (c->rows.n == c->rows.cap) {
                size_t nc = c->rows.cap ? c->rows.cap * 2 : 64;
                rp_row *nv = sm_arena_realloc(c->a, c->rows.v, c->rows.cap * sizeof *nv, nc * sizeof *nv);
                if (!nv) return SM_ERR(c->err, SM_ENOMEM, "out of memory");
                c->rows.v = nv;
                c->rows.cap = nc;
            }
            row = &c->rows.v[c->rows.n++];
            memset(row, 0, sizeof *row);
            row->labels = ls;
            row->hash = sm_labels_hash(&ls);
            const char *r = sm_labels_get(&ls, "rule");
            row->rule = rule ? rule : (r ? r : "rule");
            const char *src = sm_labels_get(&ls, "anomaly_source");
            row->metric = src ? src : (r ? r : "series");
            for (int f = 0; f < RP_NFIELDS; f++)
                if (!(row->f[f] = nan_steps(c->a, c->nsteps))) return SM_ERR(c->err, SM_ENOMEM, "out of memory");
        }
        if (which == RP_VALUE && name && rule) row->metric = sm_arena_strdup(c->a, name);
        for (size_t k = 0; k < s->npoints; k++) {
            sm_ms_t t = s->points[k].t;
            if (t < c->t0 || t > c->t1 || (t - c->t0) % c->step) continue;
            row->f[which][(size_t)((t - c->t0) / c->step)] = s->points[k].v;
        }
    }
    return 0;
}

static const char *const rule_metrics[RP_NFIELDS] = {"anomaly:value", "anomaly:score", "anomaly:expected",
                                                     "anomaly:lower", "anomaly:upper"};
static const char *const expr_funcs[RP_NFIELDS] = {NULL, "anomaly_score", "baseline_expected",
                                                   "baseline_lower", "baseline_upper"};

static int fetch_rules(rp_ctx *c, const char *sel) {
    /* The score first: it defines which rows exist. */
    static const int order[RP_NFIELDS] = {RP_SCORE, RP_VALUE, RP_EXPECTED, RP_LOWER, RP_UPPER};
    for (int i = 0; i < RP_NFIELDS; i++) {
        char *q = match_query(c->a, rule_metrics[order[i]], sel);
        if (!q) return SM_ERR(c->err, SM_ENOMEM, "out of memory");
        int rc = fetch_into(c, q, order[i], order[i] == RP_SCORE, NULL);
        if (rc) return rc;
    }
    return 0;
}

static int fetch_expr(rp_ctx *c, const char *expr) {
    static const int order[RP_NFIELDS] = {RP_SCORE, RP_VALUE, RP_EXPECTED, RP_LOWER, RP_UPPER};
    for (int i = 0; i < RP_NFIELDS; i++) {
        int f = order[i];
        char *q;
        if (expr_funcs[f]) {
            size_t n = strlen(expr_funcs[f]) + strlen(expr) + 3;
            q = sm_arena_alloc(c->a, n);
            if (q) snprintf(q, n, "%s(%s)", expr_funcs[f], expr);
        } else {
            q = sm_arena_strdup(c->a, expr);
        }
        if (!q) return SM_ERR(c->err, SM_ENOMEM, "out of memory");
        int rc = fetch_into(c, q, f, f == RP_SCORE, "query");
        if (rc) return rc;
    }
    return 0;
}

/* ---- anomalies and incidents ---- */

typedef struct per_ctx {
    rp_ctx *c;
    rp_row *row;
    size_t base;  /* step index of the window's first step */
    bool count_only;
    size_t counted;
} per_ctx;

static double severity_of(double peak, sm_ms_t dur_ms) {
    double minutes = (double)dur_ms / 60000.0;
    return peak * (1.0 + log2(1.0 + minutes));
}

static void fmt_num(char *b, size_t n, double v) {
    if (isnan(v)) snprintf(b, n, "n/a");
    else snprintf(b, n, "%.4g", v);
}

static void explain(report_anomaly *an) {
    char a[24], e[24], l[24], u[24];
    fmt_num(a, sizeof a, an->actual);
    fmt_num(e, sizeof e, an->expected);
    fmt_num(l, sizeof l, an->lower);
    fmt_num(u, sizeof u, an->upper);
    double half = (an->upper - an->lower) / 2;
    if (!isnan(an->actual) && !isnan(an->upper) && an->actual > an->upper) {
        double x = half > 0 ? (an->actual - an->expected) / half : INFINITY;
        snprintf(an->explain, sizeof an->explain,
                 "%s is above the expected %s (band %s to %s), %.1fx the band's half-width", a, e, l, u, x);
    } else if (!isnan(an->actual) && !isnan(an->lower) && an->actual < an->lower) {
        double x = half > 0 ? (an->expected - an->actual) / half : INFINITY;
        snprintf(an->explain, sizeof an->explain,
                 "%s is below the expected %s (band %s to %s), %.1fx the band's half-width", a, e, l, u, x);
    } else if (isnan(an->expected)) {
        snprintf(an->explain, sizeof an->explain, "score %.2f; no baseline was recorded", an->peak_score);
    } else {
        snprintf(an->explain, sizeof an->explain,
                 "%s is inside the band %s to %s (expected %s), but its change or spread is unusual", a, l, u, e);
    }
}

static int push_anomaly(rp_ctx *c, rp_row *row, size_t first, size_t last, size_t peak) {
    if (c->nan == c->capan) {
        size_t nc = c->capan ? c->capan * 2 : 32;
        report_anomaly *nv = sm_arena_realloc(c->a, c->an, c->capan * sizeof *nv, nc * sizeof *nv);
        if (!nv) return SM_ENOMEM;
        c->an = nv;
        c->capan = nc;
    }
    report_anomaly *an = &c->an[c->nan++];
    memset(an, 0, sizeof *an);
    an->labels = row->labels;
    an->rule = row->rule;
    an->metric = row->metric;
    an->start = c->t0 + (sm_ms_t)first * c->step;
    an->end = c->t0 + (sm_ms_t)last * c->step;
    an->peak_t = c->t0 + (sm_ms_t)peak * c->step;
    an->peak_score = row->f[RP_SCORE][peak];
    an->actual = row->f[RP_VALUE][peak];
    an->expected = row->f[RP_EXPECTED][peak];
    an->lower = row->f[RP_LOWER][peak];
    an->upper = row->f[RP_UPPER][peak];
    an->severity = severity_of(an->peak_score, an->end - an->start + c->step);
    an->value = row->f[RP_VALUE];
    an->exp = row->f[RP_EXPECTED];
    an->lo = row->f[RP_LOWER];
    an->hi = row->f[RP_UPPER];
    an->score = row->f[RP_SCORE];
    explain(an);
    return 0;
}

static void on_period(void *p, size_t first, size_t last, size_t peak) {
    per_ctx *pc = p;
    pc->counted++;
    if (pc->count_only || pc->c->rc) return;
    if (push_anomaly(pc->c, pc->row, pc->base + first, pc->base + last, pc->base + peak))
        pc->c->rc = SM_ENOMEM;
}

static size_t uf_find(size_t *parent, size_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static bool share_group(const rp_ctx *c, const report_anomaly *x, const report_anomaly *y) {
    for (size_t g = 0; g < c->o->ngroup; g++) {
        const char *a = sm_labels_get(&x->labels, c->o->group_labels[g]);
        const char *b = sm_labels_get(&y->labels, c->o->group_labels[g]);
        if (a && b && !strcmp(a, b)) return true;
    }
    return false;
}

static bool overlaps(const report_anomaly *x, const report_anomaly *y, int64_t slack) {
    return x->start - slack <= y->end + slack && y->start - slack <= x->end + slack;
}

static int cmp_member(const void *pa, const void *pb, void *ctx) {
    const report_anomaly *an = ctx;
    const report_anomaly *a = &an[*(const size_t *)pa], *b = &an[*(const size_t *)pb];
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->peak_score != b->peak_score) return a->peak_score > b->peak_score ? -1 : 1;
    return sm_labels_cmp(&a->labels, &b->labels);
}

static int cmp_incident(const void *pa, const void *pb, void *ctx) {
    const report_incident *a = pa, *b = pb;
    const report_anomaly *an = ctx;
    if (a->severity != b->severity) return a->severity > b->severity ? -1 : 1;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return sm_labels_cmp(&an[a->members[0]].labels, &an[b->members[0]].labels);
}

static void fmt_dur(char *b, size_t n, int64_t ms) {
    int64_t s = ms / 1000;
    if (s < 60) snprintf(b, n, "%llds", (long long)s);
    else if (s < 3600) snprintf(b, n, "%lldm", (long long)(s / 60));
    else snprintf(b, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
}

static void name_cause(const rp_ctx *c, report_incident *inc, const report_anomaly *an) {
    if (inc->nseries < 2) {
        snprintf(inc->cause, sizeof inc->cause, "A single series: %s", an[inc->members[0]].metric);
        return;
    }
    const report_anomaly *first = &an[inc->members[0]];
    sm_ms_t next = SM_MS_MAX;
    size_t tied = 1;
    for (size_t k = 1; k < inc->n; k++) {
        const report_anomaly *m = &an[inc->members[k]];
        if (sm_labels_equal(&m->labels, &first->labels)) continue;
        if (m->start == first->start) tied++;
        else if (m->start < next) next = m->start;
    }
    char lead[32];
    if (tied == 1 && next != SM_MS_MAX && next - first->start > c->step) {
        fmt_dur(lead, sizeof lead, next - first->start);
        snprintf(inc->cause, sizeof inc->cause,
                 "Likely cause: %s started first, %s before the other %zu series moved", first->metric, lead,
                 inc->nseries - 1);
    } else {
        snprintf(inc->cause, sizeof inc->cause,
                 "Common factor: %zu series started together (within one step), %s among them", tied,
                 first->metric);
    }
}

static int build_incidents(rp_ctx *c, report *r) {
    size_t n = c->nan;
    size_t *parent = sm_arena_alloc(c->a, (n ? n : 1) * sizeof *parent);
    if (!parent) return SM_ENOMEM;
    for (size_t i = 0; i < n; i++) parent[i] = i;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (overlaps(&c->an[i], &c->an[j], c->o->slack_ms) && share_group(c, &c->an[i], &c->an[j])) {
                size_t a = uf_find(parent, i), b = uf_find(parent, j);
                if (a != b) parent[b] = a;
            }
    size_t *root_inc = sm_arena_alloc(c->a, (n ? n : 1) * sizeof *root_inc);
    report_incident *inc = sm_arena_calloc(c->a, n ? n : 1, sizeof *inc);
    if (!root_inc || !inc) return SM_ENOMEM;
    size_t ninc = 0;
    for (size_t i = 0; i < n; i++) root_inc[i] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t root = uf_find(parent, i);
        if (root_inc[root] == SIZE_MAX) root_inc[root] = ninc++;
        inc[root_inc[root]].n++;
    }
    for (size_t k = 0; k < ninc; k++) {
        inc[k].members = sm_arena_alloc(c->a, inc[k].n * sizeof *inc[k].members);
        if (!inc[k].members) return SM_ENOMEM;
        inc[k].n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        report_incident *x = &inc[root_inc[uf_find(parent, i)]];
        x->members[x->n++] = i;
    }
    for (size_t k = 0; k < ninc; k++) {
        report_incident *x = &inc[k];
        qsort_r(x->members, x->n, sizeof *x->members, cmp_member, c->an);
        x->start = SM_MS_MAX;
        x->end = SM_MS_MIN;
        /* Distinct series and their largest severity. */
        for (size_t m = 0; m < x->n; m++) {
            const report_anomaly *a = &c->an[x->members[m]];
            if (a->start < x->start) x->start = a->start;
            if (a->end > x->end) x->end = a->end;
            if (a->peak_score > x->peak_score) x->peak_score = a->peak_score;
            bool seen = false;
            double best = a->severity;
            for (size_t q = 0; q < x->n; q++) {
                const report_anomaly *b = &c->an[x->members[q]];
                if (!sm_labels_equal(&a->labels, &b->labels)) continue;
                if (q < m) seen = true;
                if (b->severity > best) best = b->severity;
            }
            if (!seen) {
                x->nseries++;
                x->severity += best;
            }
        }
        /* Shared grouping labels. */
        sm_label *cv = sm_arena_calloc(c->a, c->o->ngroup ? c->o->ngroup : 1, sizeof *cv);
        if (!cv) return SM_ENOMEM;
        uint32_t nc = 0;
        for (size_t g = 0; g < c->o->ngroup; g++) {
            const char *v0 = sm_labels_get(&c->an[x->members[0]].labels, c->o->group_labels[g]);
            bool same = v0 != NULL;
            for (size_t m = 1; m < x->n && same; m++) {
                const char *v = sm_labels_get(&c->an[x->members[m]].labels, c->o->group_labels[g]);
                same = v && !strcmp(v, v0);
            }
            if (same) cv[nc++] = (sm_label){c->o->group_labels[g], v0};
        }
        sm_labels_sort(cv, nc);
        x->common = (sm_labels){cv, nc};
        name_cause(c, x, c->an);
    }
    qsort_r(inc, ninc, sizeof *inc, cmp_incident, c->an);
    for (size_t k = 0; k < ninc; k++)
        for (size_t m = 0; m < inc[k].n; m++) c->an[inc[k].members[m]].incident = k;
    r->incidents = inc;
    r->nincidents = ninc;
    return 0;
}

/* Count incidents in the previous period with the same rules, without
 * keeping them. */
static int summarise_previous(rp_ctx *c, report *r) {
    size_t keep_n = c->nan;
    for (size_t i = 0; i < c->rows.n; i++) {
        rp_row *row = &c->rows.v[i];
        bool any = false;
        for (size_t k = 0; k < c->prev_steps && !any; k++) any = !isnan(row->f[RP_SCORE][k]);
        r->prev.series_scanned += any;
        per_ctx pc = {c, row, 0, false, 0};
        report_find_periods(row->f[RP_SCORE], c->prev_steps, c->o->threshold,
                            (size_t)(c->o->slack_ms / c->step), on_period, &pc);
        if (c->rc) return c->rc;
    }
    r->prev.anomalies = c->nan - keep_n;
    /* Incidents among the previous period's anomalies alone. */
    report tmp = {0};
    rp_ctx sub = *c;
    sub.an = c->an + keep_n;
    sub.nan = c->nan - keep_n;
    int rc = build_incidents(&sub, &tmp);
    if (rc) return rc;
    r->prev.incidents = tmp.nincidents;
    c->nan = keep_n;
    return 0;
}

int report_build(engine *e, const report_opts *o, sm_arena *a, report **out, sm_error *err) {
    if (!(o->from < o->to)) return SM_ERR(err, SM_EINVAL, "the report window must have from < to");
    if (!(o->threshold > 0 && o->threshold <= 1)) return SM_ERR(err, SM_EINVAL, "threshold must be in (0, 1]");
    if (o->slack_ms < 0) return SM_ERR(err, SM_EINVAL, "slack must not be negative");
    report *r = sm_arena_calloc(a, 1, sizeof *r);
    if (!r) return SM_ERR(err, SM_ENOMEM, "out of memory");
    r->o = *o;
    int64_t len = o->to - o->from;
    int64_t step = o->step_ms > 0 ? o->step_ms : 60000;
    if (len / step > REPORT_MAX_STEPS) {
        step = (len + REPORT_MAX_STEPS - 1) / REPORT_MAX_STEPS;
        step = (step + 999) / 1000 * 1000;
    }
    r->step_ms = step;
    /* Align the window to the step so both periods share one grid. */
    sm_ms_t from = o->from - ((o->from % step) + step) % step;
    size_t nsteps = (size_t)((o->to - from) / step) + 1;
    size_t prev_steps = o->compare_previous ? (size_t)((len + step - 1) / step) : 0;
    rp_ctx c = {0};
    c.e = e;
    c.o = &r->o;
    c.a = a;
    c.err = err;
    c.step = step;
    c.t0 = from - (sm_ms_t)prev_steps * step;
    c.t1 = from + (sm_ms_t)(nsteps - 1) * step;
    c.nsteps = prev_steps + nsteps;
    c.prev_steps = prev_steps;
    r->nsteps = nsteps;
    r->cur = (report_period_summary){from, o->to, 0, 0, 0};
    r->prev = (report_period_summary){from - (sm_ms_t)prev_steps * step, from, 0, 0, 0};
    int rc = 0;
    if (o->nmatch == 0 && o->nscore == 0) rc = fetch_rules(&c, NULL);
    for (size_t i = 0; i < o->nmatch && !rc; i++) rc = fetch_rules(&c, o->match[i]);
    for (size_t i = 0; i < o->nscore && !rc; i++) rc = fetch_expr(&c, o->score_exprs[i]);
    if (rc) return rc;
    if (o->compare_previous && (rc = summarise_previous(&c, r))) return SM_ERR(err, rc, "out of memory");
    for (size_t i = 0; i < c.rows.n; i++) {
        rp_row *row = &c.rows.v[i];
        const double *cur = row->f[RP_SCORE] + prev_steps;
        bool any = false;
        for (size_t k = 0; k < nsteps && !any; k++) any = !isnan(cur[k]);
        r->cur.series_scanned += any;
        per_ctx pc = {&c, row, prev_steps, false, 0};
        report_find_periods(cur, nsteps, o->threshold, (size_t)(o->slack_ms / step), on_period, &pc);
        if (c.rc) return SM_ERR(err, c.rc, "out of memory");
    }
    if ((rc = build_incidents(&c, r))) return SM_ERR(err, rc, "out of memory");
    r->anomalies = c.an;
    r->nanomalies = c.nan;
    r->cur.anomalies = c.nan;
    r->cur.incidents = r->nincidents;
    r->grid_t0 = c.t0;
    r->grid_n = c.nsteps;
    r->generated_ms = sm_now_ms();
    *out = r;
    return 0;
}
