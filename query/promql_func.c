/* SPDX-License-Identifier: Apache-2.0
 *
 * promql_func.c - the PromQL function table and the names of types,
 * operators and aggregations.
 *
 * The table is Prometheus 2.42's promql/parser/functions.go restated in
 * promql_func terms: `nargs` declared argument types; `min_args`/`max_args`
 * say how many may be given.  A Prometheus "Variadic: 1" function has one
 * optional trailing argument (min = nargs - 1, max = nargs); label_join's
 * "Variadic: -1" repeats its last type without limit (max = -1).  Seismo's
 * four anomaly functions take (instant vector [, string]) and return an
 * instant vector; their semantics are the engine's (docs/PROMQL.md).
 * Lookups are a binary search over the table, which is kept sorted by name
 * (a test checks the order and that every promql_func_id appears once).
 */
#include <string.h>

#include "promql_int.h"

#define S PROMQL_SCALAR
#define V PROMQL_VECTOR
#define M PROMQL_MATRIX
#define STR PROMQL_STRING

/* name, id, {types}, nargs, min, max, return type; sorted by name (strcmp). */
static const promql_func funcs[] = {
    {"abs", PF_ABS, {V}, 1, 1, 1, V},
    {"absent", PF_ABSENT, {V}, 1, 1, 1, V},
    {"absent_over_time", PF_ABSENT_OVER_TIME, {M}, 1, 1, 1, V},
    {"acos", PF_ACOS, {V}, 1, 1, 1, V},
    {"acosh", PF_ACOSH, {V}, 1, 1, 1, V},
    {"anomaly_score", PF_ANOMALY_SCORE, {V, STR}, 2, 1, 2, V},
    {"asin", PF_ASIN, {V}, 1, 1, 1, V},
    {"asinh", PF_ASINH, {V}, 1, 1, 1, V},
    {"atan", PF_ATAN, {V}, 1, 1, 1, V},
    {"atanh", PF_ATANH, {V}, 1, 1, 1, V},
    {"avg_over_time", PF_AVG_OVER_TIME, {M}, 1, 1, 1, V},
    {"baseline_expected", PF_BASELINE_EXPECTED, {V, STR}, 2, 1, 2, V},
    {"baseline_lower", PF_BASELINE_LOWER, {V, STR}, 2, 1, 2, V},
    {"baseline_upper", PF_BASELINE_UPPER, {V, STR}, 2, 1, 2, V},
    {"ceil", PF_CEIL, {V}, 1, 1, 1, V},
    {"changes", PF_CHANGES, {M}, 1, 1, 1, V},
    {"clamp", PF_CLAMP, {V, S, S}, 3, 3, 3, V},
    {"clamp_max", PF_CLAMP_MAX, {V, S}, 2, 2, 2, V},
    {"clamp_min", PF_CLAMP_MIN, {V, S}, 2, 2, 2, V},
    {"cos", PF_COS, {V}, 1, 1, 1, V},
    {"cosh", PF_COSH, {V}, 1, 1, 1, V},
    {"count_over_time", PF_COUNT_OVER_TIME, {M}, 1, 1, 1, V},
    {"day_of_month", PF_DAY_OF_MONTH, {V}, 1, 0, 1, V},
    {"day_of_week", PF_DAY_OF_WEEK, {V}, 1, 0, 1, V},
    {"day_of_year", PF_DAY_OF_YEAR, {V}, 1, 0, 1, V},
    {"days_in_month", PF_DAYS_IN_MONTH, {V}, 1, 0, 1, V},
    {"deg", PF_DEG, {V}, 1, 1, 1, V},
    {"delta", PF_DELTA, {M}, 1, 1, 1, V},
    {"deriv", PF_DERIV, {M}, 1, 1, 1, V},
    {"exp", PF_EXP, {V}, 1, 1, 1, V},
    {"floor", PF_FLOOR, {V}, 1, 1, 1, V},
    {"histogram_count", PF_HISTOGRAM_COUNT, {V}, 1, 1, 1, V},
    {"histogram_fraction", PF_HISTOGRAM_FRACTION, {S, S, V}, 3, 3, 3, V},
    {"histogram_quantile", PF_HISTOGRAM_QUANTILE, {S, V}, 2, 2, 2, V},
    {"histogram_sum", PF_HISTOGRAM_SUM, {V}, 1, 1, 1, V},
    {"holt_winters", PF_HOLT_WINTERS, {M, S, S}, 3, 3, 3, V},
    {"hour", PF_HOUR, {V}, 1, 0, 1, V},
    {"idelta", PF_IDELTA, {M}, 1, 1, 1, V},
    {"increase", PF_INCREASE, {M}, 1, 1, 1, V},
    {"irate", PF_IRATE, {M}, 1, 1, 1, V},
    {"label_join", PF_LABEL_JOIN, {V, STR, STR, STR}, 4, 3, -1, V},
    {"label_replace", PF_LABEL_REPLACE, {V, STR, STR, STR, STR}, 5, 5, 5, V},
    {"last_over_time", PF_LAST_OVER_TIME, {M}, 1, 1, 1, V},
    {"ln", PF_LN, {V}, 1, 1, 1, V},
    {"log10", PF_LOG10, {V}, 1, 1, 1, V},
    {"log2", PF_LOG2, {V}, 1, 1, 1, V},
    {"max_over_time", PF_MAX_OVER_TIME, {M}, 1, 1, 1, V},
    {"min_over_time", PF_MIN_OVER_TIME, {M}, 1, 1, 1, V},
    {"minute", PF_MINUTE, {V}, 1, 0, 1, V},
    {"month", PF_MONTH, {V}, 1, 0, 1, V},
    {"pi", PF_PI, {PROMQL_NONE}, 0, 0, 0, S},
    {"predict_linear", PF_PREDICT_LINEAR, {M, S}, 2, 2, 2, V},
    {"present_over_time", PF_PRESENT_OVER_TIME, {M}, 1, 1, 1, V},
    {"quantile_over_time", PF_QUANTILE_OVER_TIME, {S, M}, 2, 2, 2, V},
    {"rad", PF_RAD, {V}, 1, 1, 1, V},
    {"rate", PF_RATE, {M}, 1, 1, 1, V},
    {"resets", PF_RESETS, {M}, 1, 1, 1, V},
    {"round", PF_ROUND, {V, S}, 2, 1, 2, V},
    {"scalar", PF_SCALAR, {V}, 1, 1, 1, S},
    {"sgn", PF_SGN, {V}, 1, 1, 1, V},
    {"sin", PF_SIN, {V}, 1, 1, 1, V},
    {"sinh", PF_SINH, {V}, 1, 1, 1, V},
    {"sort", PF_SORT, {V}, 1, 1, 1, V},
    {"sort_desc", PF_SORT_DESC, {V}, 1, 1, 1, V},
    {"sqrt", PF_SQRT, {V}, 1, 1, 1, V},
    {"stddev_over_time", PF_STDDEV_OVER_TIME, {M}, 1, 1, 1, V},
    {"stdvar_over_time", PF_STDVAR_OVER_TIME, {M}, 1, 1, 1, V},
    {"sum_over_time", PF_SUM_OVER_TIME, {M}, 1, 1, 1, V},
    {"tan", PF_TAN, {V}, 1, 1, 1, V},
    {"tanh", PF_TANH, {V}, 1, 1, 1, V},
    {"time", PF_TIME, {PROMQL_NONE}, 0, 0, 0, S},
    {"timestamp", PF_TIMESTAMP, {V}, 1, 1, 1, V},
    {"vector", PF_VECTOR, {S}, 1, 1, 1, V},
    {"year", PF_YEAR, {V}, 1, 0, 1, V},
};

#define NFUNCS (sizeof funcs / sizeof funcs[0])

const promql_func *promql_func_lookup(const char *name) {
    if (!name) return NULL;
    size_t lo = 0, hi = NFUNCS;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, funcs[mid].name);
        if (c == 0) return &funcs[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const promql_func *promql_func_by_id(promql_func_id id) {
    for (size_t i = 0; i < NFUNCS; i++)
        if (funcs[i].id == id) return &funcs[i];
    return NULL;
}

/* Names indexed by enum value; index 0 is the "no such value" name. */
static const char *const type_names[][2] = {
    /* documented (messages to users), raw (Prometheus's ValueType) */
    [PROMQL_NONE] = {"none", "none"},
    [PROMQL_SCALAR] = {"scalar", "scalar"},
    [PROMQL_VECTOR] = {"instant vector", "vector"},
    [PROMQL_MATRIX] = {"range vector", "matrix"},
    [PROMQL_STRING] = {"string", "string"},
};

static const char *const binop_names[] = {
    [0] = "?",        [PB_ADD] = "+",  [PB_SUB] = "-",   [PB_MUL] = "*",   [PB_DIV] = "/",
    [PB_MOD] = "%",   [PB_POW] = "^",  [PB_ATAN2] = "atan2", [PB_EQL] = "==", [PB_NEQ] = "!=",
    [PB_GTR] = ">",   [PB_LSS] = "<",  [PB_GTE] = ">=",  [PB_LTE] = "<=",  [PB_AND] = "and",
    [PB_OR] = "or",   [PB_UNLESS] = "unless",
};

static const char *const aggop_names[] = {
    [0] = "?",
    [PA_SUM] = "sum",
    [PA_MIN] = "min",
    [PA_MAX] = "max",
    [PA_AVG] = "avg",
    [PA_GROUP] = "group",
    [PA_STDDEV] = "stddev",
    [PA_STDVAR] = "stdvar",
    [PA_COUNT] = "count",
    [PA_COUNT_VALUES] = "count_values",
    [PA_BOTTOMK] = "bottomk",
    [PA_TOPK] = "topk",
    [PA_QUANTILE] = "quantile",
};

#define NAME_OF(table, v) ((unsigned)(v) < sizeof table / sizeof table[0] ? table[v] : table[0])

const char *promql_type_name(promql_type t) {
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t][0] : "none";
}

const char *promql_type_raw_name(promql_type t) {
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t][1] : "none";
}

const char *promql_binop_name(promql_binop op) { return NAME_OF(binop_names, op); }

bool promql_binop_is_comparison(promql_binop op) { return op >= PB_EQL && op <= PB_LTE; }

bool promql_binop_is_set(promql_binop op) { return op == PB_AND || op == PB_OR || op == PB_UNLESS; }

const char *promql_aggop_name(promql_aggop op) { return NAME_OF(aggop_names, op); }
