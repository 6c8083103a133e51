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
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"

/* One series' samples inside a range window, stale markers removed, in
 * ascending time.  [start, end] is the window itself (end = evaluation
 * time - offset, start = end - range), which the extrapolating functions
 * (rate, increase, delta) need; it is closed at both ends, as in 2.42. */
/* The time-only part of rate/increase/delta's extrapolation, which is the
 * same for every window whose samples sit at the same offsets from its
 * ends (regular scrapes and steps: nearly all of them). */
typedef struct fn_rate_memo {
    bool valid;
    int64_t d_start, d_end, d_sampled, range_ms; /* the key, ms */
    size_t n;
    double to_start, to_end, sampled, avg_step, range_s; /* seconds */
    double factor, factor_rate; /* without the zero clamp; for rate, / range_s */
    double zero_ratio;          /* 2 to_start / sampled + 1 (see extrapolated_rate) */
} fn_rate_memo;

typedef struct fn_window {
    const sm_ms_t *t;
    const double *v;
    size_t n;
    sm_ms_t start, end;
    fn_rate_memo *memo; /* NULL, or a cache the caller keeps across windows */
    bool no_drops;      /* the caller knows no v[i] < v[i - 1] (no counter reset) */
} fn_window;

/* True for the functions fn_range_eval computes: every function whose
 * argument is a range vector except absent_over_time (the evaluator
 * handles that one, it concerns series that are not there). */
bool fn_is_range(promql_func_id f);

/* Evaluate range function f over w.  args are the scalar arguments at this
 * step in call order, without the range vector (quantile_over_time: phi;
 * predict_linear: t seconds; holt_winters: sf, tf).  Returns 1 with *out
 * set, 0 when the function yields no point for this window (rate with
 * fewer than two samples, ...), SM_EINVAL for an unknown f (and see
 * fn_range_eval_at for the other failures).  predict_linear evaluated here
 * takes w->end as the evaluation time, which is wrong under an offset or
 * @: the evaluator should call fn_range_eval_at for it. */
int fn_range_eval(promql_func_id f, const fn_window *w, const double *args, size_t nargs,
                  double *out);

/* fn_range_eval with the evaluation time given apart from the window.
 * Only predict_linear reads it: Prometheus fits its line with the intercept
 * at the evaluation step's time (enh.Ts), which is not w->end when the
 * selector has an offset or an @ modifier.  fn_range_eval is this call
 * with eval_ms = w->end.  An empty window (n == 0) yields 0, never an
 * error.  SM_EINVAL also for missing scalar arguments and for holt_winters
 * factors outside (0, 1); fn_range_args_check gives the message.
 * quantile_over_time copies windows of more than 256 samples to the heap
 * to sort them, so it alone can return SM_ENOMEM. */
int fn_range_eval_at(promql_func_id f, const fn_window *w, sm_ms_t eval_ms, const double *args,
                     size_t nargs, double *out);

/* Check the scalar arguments of range function f at one step: 0, or
 * SM_EINVAL with err->msg set to Prometheus's text, for holt_winters
 * "invalid smoothing factor. Expected: 0 < sf < 1, got: 0.000000" and
 * "invalid trend factor. Expected: 0 < tf < 1, got: 1.000000" (NaN passes,
 * as in Prometheus).  Prometheus raises these as execution errors, and
 * only at a step where some series has a sample in its window; the
 * evaluator calls this there.  err may be NULL. */
int fn_range_args_check(promql_func_id f, const double *args, size_t nargs, sm_error *err);

/* fn_range_eval_at for arguments that fn_range_args_check has passed (the
 * evaluator checks once per query, or once per step when the arguments
 * vary): the per-window check is left out.  w must not be NULL. */
int fn_range_eval_checked(promql_func_id f, const fn_window *w, sm_ms_t eval_ms, const double *args,
                          double *out);

/* True for the element-wise functions: one input value -> one output
 * value (abs ... year, clamp*, round, sgn, timestamp is NOT one of them). */
bool fn_is_elementwise(promql_func_id f);

/* Evaluate element-wise function f on v.  args are the scalar arguments
 * after the vector (clamp: min, max; clamp_min: min; round: to_nearest,
 * absent meaning 1).  The calendar functions (day_of_month, hour, ...)
 * read v as unix seconds, in UTC, truncated toward zero as Go's int64(v)
 * does; NaN, infinities and values beyond int64 become INT64_MIN seconds,
 * as on amd64 Go, and then give the same odd dates Prometheus prints (for
 * the argument-less forms pass (double)(eval_ms / 1000)).  Returns 1
 * with *out set, 0 when the element is dropped (clamp with min > max drops
 * every element), SM_EINVAL for an unknown f or a missing clamp bound. */
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
