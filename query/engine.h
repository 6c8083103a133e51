/* SPDX-License-Identifier: Apache-2.0
 *
 * engine.h - the PromQL evaluator: instant and range queries over the
 * storage engine, with Prometheus 2.42's semantics (5 m lookback, staleness
 * markers, extrapolated rate/increase, __name__ dropping, vector matching,
 * subqueries, @ and offset).  query/README.md describes its design.
 *
 *   engine_new / engine_free
 *   engine_query_instant   an expression at one time
 *   engine_query_range     an expression at start, start+step, ... end
 *
 * Results live in the arena the caller passes; they stay valid until the
 * caller frees it.  Evaluation streams samples from tsdb iterators and
 * holds, per selector, only the points it will return and one range
 * window per series; the number of points held at once is bounded by
 * max_samples (SM_ELIMIT past it, Prometheus's "query processing would
 * load too many samples into memory in query execution"), the time by
 * timeout_ms (SM_ETIMEOUT), and the number of queries at once by
 * max_concurrent (callers wait for a slot, up to the timeout).
 *
 * Errors: SM_EINVAL for a parse error or a bad argument (the API's
 * bad_data; err->pos is set for parse errors); SM_EEXEC-like failures
 * during evaluation (many-to-many matching, duplicate series, bad regex
 * in label_replace, ...) are SM_EINVAL with err->index == 1 (the API's
 * "execution"); SM_ELIMIT, SM_ETIMEOUT, SM_ENOMEM, SM_ECORRUPT/SM_EIO from
 * storage.  engine_error_is_exec() tells the two SM_EINVAL kinds apart.
 *
 * Thread safety: one engine serves any number of threads at once.
 */
#ifndef SEISMO_QUERY_ENGINE_H
#define SEISMO_QUERY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "promql.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"
#include "tsdb/labels.h"
#include "tsdb/tsdb.h"

typedef struct engine engine;

typedef struct engine_opts {
    int64_t lookback_ms;          /* default 5 m; must be > 0 */
    uint64_t max_samples;         /* points held at once; default 50,000,000; 0 = none */
    int64_t timeout_ms;           /* default 2 m; 0 = none; covers the wait for a slot */
    unsigned max_concurrent;      /* default 20; 0 is taken as 1 */
    int64_t default_subquery_step_ms; /* `x[5m:]`; default 1 m; must be > 0 */
    uint64_t max_series_per_select;   /* 0 = none; past it tsdb_select's SM_ELIMIT */
} engine_opts;

void engine_opts_default(engine_opts *o);

/* db is borrowed and must outlive the engine. */
int engine_new(const engine_opts *o, tsdb *db, engine **out, sm_error *err);
void engine_free(engine *e);

typedef struct promql_point {
    sm_ms_t t;
    double v;
} promql_point;

typedef struct promql_series {
    sm_labels labels;     /* sorted; strings in the result arena */
    promql_point *points; /* ascending t */
    size_t npoints;
} promql_series;

typedef struct promql_result {
    promql_type type;      /* SCALAR, VECTOR, MATRIX or STRING */
    /* SCALAR: points[0] of series[0] is (t, value) and labels are empty;
     * STRING: str (and t in series[0].points[0].t);
     * VECTOR (instant queries): one point per series, all at the query time;
     * MATRIX: range query results, or an instant query of a range vector. */
    promql_series *series;
    size_t nseries;
    const char *str;
    /* Informational: samples read from storage, the peak points held. */
    uint64_t samples_read;
    uint64_t peak_points;
} promql_result;

/* Parse and evaluate `query` at time t.  The result is in `a`; *out is
 * only meaningful when 0 is returned.  A vector result keeps evaluation
 * order (sort, sort_desc, topk and bottomk order it as Prometheus does). */
int engine_query_instant(engine *e, const char *query, sm_ms_t t, sm_arena *a,
                         promql_result *out, sm_error *err);
/* Range query: t = start, start+step, ..., <= end.  A scalar or vector
 * expression gives a MATRIX sorted by labels (a scalar as one series with
 * no labels); a range-vector or string expression is an error ("invalid
 * expression type \"range vector\" for range query, must be Scalar or
 * instant Vector"), as in Prometheus.  step > 0, end >= start, fewer than
 * 2^31 steps (else SM_EINVAL). */
int engine_query_range(engine *e, const char *query, sm_ms_t start, sm_ms_t end, sm_ms_t step,
                       sm_arena *a, promql_result *out, sm_error *err);

/* The same on an already parsed tree (the conformance runner re-runs
 * printed trees, the rules evaluator keeps parsed expressions). */
int engine_eval_instant(engine *e, const promql_node *expr, sm_ms_t t, sm_arena *a,
                        promql_result *out, sm_error *err);
int engine_eval_range(engine *e, const promql_node *expr, sm_ms_t start, sm_ms_t end,
                      sm_ms_t step, sm_arena *a, promql_result *out, sm_error *err);

/* For SM_EINVAL errors: true when raised while evaluating (Prometheus's
 * errorType "execution"), false for parse/type errors ("bad_data").  The
 * messages are Prometheus's own words (docs/PROMQL.md, "Semantics"). */
bool engine_error_is_exec(const sm_error *err);

#endif
