/* SPDX-License-Identifier: Apache-2.0
 *
 * report.h - anomaly reports: what behaved unusually in a time window,
 * which of those anomalies belong together, and how unusual each was.
 *
 *   report_build        read anomaly series through the query engine, find
 *                       anomalous periods, group them into incidents
 *   report_write_json   the machine form (docs/REPORTS.md has the schema)
 *   report_write_md     Markdown for chat and tickets
 *   report_write_html   one self-contained page with inline SVG charts
 *
 * Sources.  The continuous anomaly rules (rules.h) write, for every series
 * they score, five series that differ only in __name__: anomaly:value (the
 * scored expression), anomaly:score (0..1), anomaly:expected,
 * anomaly:lower, anomaly:upper, labelled with the source labels and
 * rule="<name>".  A report reads those (filtered by `match` selectors, which
 * apply to their labels), and scores on query any expression given in
 * `score_exprs` (series with no rule) through the PromQL functions
 * anomaly_score(), baseline_expected(), baseline_lower(), baseline_upper().
 *
 * Rules (docs/REPORTS.md says the same in prose):
 *   1. An anomalous period of a series is a run of steps whose score is at
 *      or above the threshold; runs separated by at most `slack_ms` merge.
 *   2. Two anomalies belong to one incident when their periods overlap once
 *      each is widened by slack_ms, and they share the value of at least
 *      one grouping label (instance, job, service by default).  Incidents
 *      are the connected groups of that relation (union-find).
 *   3. Severity of an anomaly = peak score x (1 + log2(1 + minutes)); of an
 *      incident = the sum over its distinct series of their largest
 *      severity, so a long, high, broad incident ranks first.  Ties break
 *      by earlier start, then by labels.
 *   4. An incident names what its members share (the grouping labels with
 *      one value across all members).  The member that started first is
 *      named the likely cause when it led every other member by more than
 *      one step; otherwise the earliest ones are named a common factor.
 *      The evidence (who started first, by how much) is printed.
 *   5. The previous period of the same length is summarised with the same
 *      rules, for comparison.
 */
#ifndef SEISMO_QUERY_REPORT_H
#define SEISMO_QUERY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"
#include "tsdb/labels.h"

typedef struct report_opts {
    sm_ms_t from, to;             /* the window, from < to */
    const char *const *match;     /* selectors over the anomaly series' labels */
    size_t nmatch;                /* 0: every anomaly series */
    const char *const *score_exprs; /* expressions to score on query */
    size_t nscore;
    const char *const *group_labels; /* default: instance, job, service */
    size_t ngroup;
    int64_t slack_ms;             /* default 5 m */
    int64_t step_ms;              /* 0: 60 s, widened to keep <= 2000 points */
    double threshold;             /* default 0.5, the models' documented threshold */
    bool compare_previous;        /* default true */
    size_t max_incidents;         /* in the output; default 50 */
    const char *title;            /* default "Seismo anomaly report" */
} report_opts;

void report_opts_default(report_opts *o);

/* One anomalous period of one series. */
typedef struct report_anomaly {
    sm_labels labels;      /* the source labels, rule included, no __name__ */
    const char *rule;      /* the rule's name, or "query" for score_exprs */
    const char *metric;    /* a display name: anomaly_source/__name__ or the rule */
    sm_ms_t start, end;    /* first and last anomalous step */
    sm_ms_t peak_t;
    double peak_score;
    double actual, expected, lower, upper; /* at the peak */
    double severity;
    char explain[256];     /* why, in words: above/below the band, by how much */
    /* The series around the period, for the chart: every step of the
     * window (NaN where absent). */
    const double *value, *exp, *lo, *hi, *score;
    size_t incident;       /* index into report.incidents */
} report_anomaly;

typedef struct report_incident {
    size_t *members;       /* indexes into report.anomalies, by start time */
    size_t n;
    size_t nseries;        /* distinct series among the members */
    sm_ms_t start, end;
    double severity;
    double peak_score;
    sm_labels common;      /* grouping labels with one value across members */
    char cause[256];       /* likely cause / common factor, in words */
} report_incident;

typedef struct report_period_summary {
    sm_ms_t from, to;
    size_t series_scanned;
    size_t anomalies;
    size_t incidents;
} report_period_summary;

typedef struct report {
    report_opts o;
    sm_ms_t step_ms;
    size_t nsteps;         /* steps in the window */
    report_period_summary cur, prev; /* prev valid when o.compare_previous */
    report_anomaly *anomalies;
    size_t nanomalies;
    report_incident *incidents; /* ranked by severity, most severe first */
    size_t nincidents;
    sm_ms_t generated_ms;  /* wall clock when built */
    /* The anomalies' chart arrays cover grid_n steps of step_ms from
     * grid_t0 (the previous period, when compared, then the window). */
    sm_ms_t grid_t0;
    size_t grid_n;
} report;

/* Build a report; everything is allocated from `a`, and *out (OUT) is
 * valid until the arena is freed.  SM_EINVAL for bad options or a bad
 * selector; the engine's errors otherwise. */
int report_build(engine *e, const report_opts *o, sm_arena *a, report **out, sm_error *err);

/* Renderers append to out; 0 or SM_ENOMEM. */
int report_write_json(const report *r, sm_buf *out);
int report_write_md(const report *r, sm_buf *out);
int report_write_html(const report *r, sm_buf *out);

/* The pure part, exposed for tests: find periods in one series' score
 * steps (n values at t0 + k*step, NaN = absent) and report them through fn.
 * Returns the number of periods. */
typedef void (*report_period_fn)(void *ctx, size_t first, size_t last, size_t peak);
size_t report_find_periods(const double *score, size_t n, double threshold, size_t slack_steps,
                           report_period_fn fn, void *ctx);

#endif
