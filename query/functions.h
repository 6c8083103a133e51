/* SPDX-License-Identifier: Apache-2.0
 *
 * functions.h - the arithmetic of PromQL's functions, as pure calls over
 * arrays: what each function computes from one series' window of samples
 * (range functions: rate, *_over_time, deriv, holt_winters, ...), from one
 * value (element-wise: abs, ceil, clamp, round, the trigonometric and
 * calendar functions, ...), and from one histogram's buckets
 * (histogram_quantile).  The evaluator (engine.c) picks the series, builds
 * the windows and the output label sets; nothing here knows about labels,
 * storage or allocation.  Every result matches Prometheus 2.42's
 * promql/functions.go to the last bit where the order of floating-point
 * operations allows (the conformance suite compares within 1e-6 relative,
 * the differential test within 1e-9), so the operation order follows it.
 */
#ifndef SEISMO_QUERY_FUNCTIONS_H
#define SEISMO_QUERY_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "promql.h"
#include "tsdb/base/sm_types.h"

/* One series' samples inside a range window, stale markers removed, in
 * ascending time.  [start, end] is the window itself (end = evaluation
 * time - offset, start = end - range), which the extrapolating functions
 * (rate, increase, delta) need; it is closed at both ends, as in 2.42. */
typedef struct fn_window {
    const sm_ms_t *t;
    const double *v;
    size_t n;
    sm_ms_t start, end;
} fn_window;

/* True for the functions fn_range_eval computes: every function whose
 * argument is a range vector except absent_over_time (the evaluator
 * handles that one, it concerns series that are not there). */
bool fn_is_range(promql_func_id f);

/* Evaluate range function f over w.  args are the scalar arguments at this
 * step in call order, without the range vector (quantile_over_time: phi;
 * predict_linear: t seconds; holt_winters: sf, tf).  Returns 1 with *out
 * set, 0 when the function yields no point for this window (rate with
 * fewer than two samples, ...), SM_EINVAL for an unknown f. */
int fn_range_eval(promql_func_id f, const fn_window *w, const double *args, size_t nargs,
                  double *out);

/* True for the element-wise functions: one input value -> one output
 * value (abs ... year, clamp*, round, sgn, timestamp is NOT one of them). */
bool fn_is_elementwise(promql_func_id f);

/* Evaluate element-wise function f on v.  args are the scalar arguments
 * after the vector (clamp: min, max; clamp_min: min; round: to_nearest,
 * absent meaning 1).  The calendar functions (day_of_month, hour, ...)
 * read v as unix seconds, in UTC.  Returns 1 with *out set, 0 when the
 * element is dropped (clamp with min > max drops every element), SM_EINVAL
 * for an unknown f. */
int fn_elem_eval(promql_func_id f, double v, const double *args, size_t nargs, double *out);

/* histogram_quantile over one histogram's buckets: upper bounds `le`
 * (any order; +Inf must be among them for a result) and cumulative counts,
 * n buckets.  The caller has parsed the le labels.  Sorts both arrays in
 * place (they are the caller's scratch), then applies Prometheus's rules:
 * q < 0 -> -Inf, q > 1 -> +Inf, NaN q -> NaN, fewer than 2 buckets or no
 * +Inf bucket -> NaN, non-monotonic counts are made monotonic, linear
 * interpolation inside the bucket, the lowest bucket starting at 0 when
 * its bound is positive. */
double fn_histogram_quantile(double q, double *le, double *counts, size_t n);

/* quantile over a set of values (the aggregation `quantile` and
 * quantile_over_time share it): Prometheus's linear interpolation between
 * closest ranks; q < 0 -> -Inf, q > 1 -> +Inf, n == 0 -> NaN.  Sorts vs in
 * place. */
double fn_quantile(double q, double *vs, size_t n);

#endif
