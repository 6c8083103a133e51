/* SPDX-License-Identifier: Apache-2.0
 *
 * promql.h - the PromQL syntax tree, the parser that builds it and the
 * printer that writes it back, for the language of Prometheus 2.42.
 *
 *   promql_parse       text -> typed tree (arena-allocated), or an error
 *                      with the byte position and what was expected
 *   promql_print       tree -> text that parses back to the same tree
 *   promql_func_lookup the function table (names, argument and return types)
 *
 * The parser does Prometheus's static checks too: operand types of binary
 * operators and functions, `bool` only on comparisons, set operators only
 * between vectors, grouping only with vector matching, ranges only after
 * selectors, `@` and `offset` at most once each, a selector that has at
 * least one matcher that does not match the empty string.  Its messages
 * follow Prometheus's wording ("unexpected <by> in aggregation", "expected
 * type range vector in call to function \"rate\", got instant vector") so
 * that users searching for them find answers.
 *
 * Every node lives in the arena passed to promql_parse; nothing here frees.
 * Not supported: native-histogram literals (2.42 has none in PromQL text).
 */
#ifndef SEISMO_QUERY_PROMQL_H
#define SEISMO_QUERY_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"
#include "tsdb/matcher.h"

/* The four value types of PromQL. */
typedef enum promql_type {
    PROMQL_NONE = 0,
    PROMQL_SCALAR,
    PROMQL_VECTOR, /* instant vector */
    PROMQL_MATRIX, /* range vector */
    PROMQL_STRING,
} promql_type;

/* "scalar", "instant vector", "range vector", "string" (Prometheus's words). */
const char *promql_type_name(promql_type t);

typedef enum promql_node_kind {
    PN_NUMBER = 1, /* number literal */
    PN_STRING,     /* string literal */
    PN_VECTOR_SEL, /* foo{a="b"} offset 5m @ 123 */
    PN_MATRIX_SEL, /* foo{a="b"}[5m] offset 5m @ 123 (offset/@ kept on .sel) */
    PN_SUBQUERY,   /* expr[5m:1m] offset 5m @ 123 */
    PN_CALL,       /* f(args...) */
    PN_AGGREGATE,  /* sum by (a) (expr), topk(3, expr) */
    PN_BINARY,     /* a + on(x) group_left(y) b */
    PN_UNARY,      /* -expr, +expr */
    PN_PAREN,      /* (expr) */
} promql_node_kind;

/* Binary operators.  Order is not significant; precedence is the parser's
 * business (Prometheus: ^ binds tightest and is right-associative, then
 * * / % atan2, then + -, then comparisons, then and unless, then or). */
typedef enum promql_binop {
    PB_ADD = 1, PB_SUB, PB_MUL, PB_DIV, PB_MOD, PB_POW, PB_ATAN2,
    PB_EQL, PB_NEQ, PB_GTR, PB_LSS, PB_GTE, PB_LTE, /* comparisons */
    PB_AND, PB_OR, PB_UNLESS,                       /* set operators */
} promql_binop;

const char *promql_binop_name(promql_binop op); /* "+", "==", "and", "atan2", ... */
bool promql_binop_is_comparison(promql_binop op);
bool promql_binop_is_set(promql_binop op);

typedef enum promql_aggop {
    PA_SUM = 1, PA_MIN, PA_MAX, PA_AVG, PA_GROUP, PA_STDDEV, PA_STDVAR, PA_COUNT,
    PA_COUNT_VALUES, /* param: string (the output label name) */
    PA_BOTTOMK,      /* param: scalar k */
    PA_TOPK,         /* param: scalar k */
    PA_QUANTILE,     /* param: scalar phi */
} promql_aggop;

const char *promql_aggop_name(promql_aggop op); /* "sum", "count_values", ... */

/* Functions of Prometheus 2.42, then Seismo's own (ml/ behind them). */
typedef enum promql_func_id {
    PF_ABS = 1, PF_ABSENT, PF_ABSENT_OVER_TIME, PF_ACOS, PF_ACOSH, PF_ASIN, PF_ASINH,
    PF_ATAN, PF_ATANH, PF_AVG_OVER_TIME, PF_CEIL, PF_CHANGES, PF_CLAMP, PF_CLAMP_MAX,
    PF_CLAMP_MIN, PF_COS, PF_COSH, PF_COUNT_OVER_TIME, PF_DAYS_IN_MONTH, PF_DAY_OF_MONTH,
    PF_DAY_OF_WEEK, PF_DAY_OF_YEAR, PF_DEG, PF_DELTA, PF_DERIV, PF_EXP, PF_FLOOR,
    PF_HISTOGRAM_COUNT, PF_HISTOGRAM_SUM, PF_HISTOGRAM_FRACTION, /* native histograms only */
    PF_HISTOGRAM_QUANTILE, PF_HOLT_WINTERS, PF_HOUR, PF_IDELTA, PF_INCREASE, PF_IRATE,
    PF_LABEL_REPLACE, PF_LABEL_JOIN, PF_LAST_OVER_TIME, PF_LN, PF_LOG10, PF_LOG2,
    PF_MAX_OVER_TIME, PF_MIN_OVER_TIME, PF_MINUTE, PF_MONTH, PF_PI, PF_PREDICT_LINEAR,
    PF_PRESENT_OVER_TIME, PF_QUANTILE_OVER_TIME, PF_RAD, PF_RATE, PF_RESETS, PF_ROUND,
    PF_SCALAR, PF_SGN, PF_SIN, PF_SINH, PF_SORT, PF_SORT_DESC, PF_SQRT,
    PF_STDDEV_OVER_TIME, PF_STDVAR_OVER_TIME, PF_SUM_OVER_TIME, PF_TAN, PF_TANH, PF_TIME,
    PF_TIMESTAMP, PF_VECTOR, PF_YEAR,
    /* Seismo: anomaly detection on any instant-vector expression.  Each
     * takes (v instant-vector [, training_window string = "1w"]); see
     * docs/PROMQL.md.  The parser knows them; the engine evaluates them. */
    PF_ANOMALY_SCORE,      /* anomaly_score(v [, "1w"]): 0..1 */
    PF_BASELINE_EXPECTED,  /* baseline_expected(v [, "1w"]) */
    PF_BASELINE_LOWER,     /* baseline_lower(v [, "1w"]) */
    PF_BASELINE_UPPER,     /* baseline_upper(v [, "1w"]) */
    PF__COUNT
} promql_func_id;

#define PROMQL_MAX_FUNC_ARGS 6

typedef struct promql_func {
    const char *name;
    promql_func_id id;
    promql_type arg_types[PROMQL_MAX_FUNC_ARGS];
    int nargs;          /* declared argument types */
    int min_args;       /* fewer is an error */
    int max_args;       /* -1: the last type repeats without limit (label_join) */
    promql_type ret;
} promql_func;

/* The entry for `name`, or NULL when there is no such function. */
const promql_func *promql_func_lookup(const char *name);
const promql_func *promql_func_by_id(promql_func_id id);

/* The special `@ start()` / `@ end()` forms. */
typedef enum promql_at_kind { PROMQL_AT_NONE = 0, PROMQL_AT_TIME, PROMQL_AT_START, PROMQL_AT_END } promql_at_kind;

typedef struct promql_node promql_node;

/* A matcher as written; `matchers` are compiled at parse time. */
typedef struct promql_vector_sel {
    const char *name;       /* metric name written before {..}, or NULL */
    sm_matcher *matchers;   /* every matcher, the name as __name__="x" included */
    size_t nmatchers;
    int64_t offset_ms;      /* 0 when absent; negative offsets are allowed */
    promql_at_kind at;      /* @ modifier */
    sm_ms_t at_ms;          /* for PROMQL_AT_TIME */
} promql_vector_sel;

typedef struct promql_matrix_sel {
    promql_node *sel;       /* a PN_VECTOR_SEL (its offset/@ apply) */
    int64_t range_ms;
} promql_matrix_sel;

typedef struct promql_subquery {
    promql_node *expr;
    int64_t range_ms;
    int64_t step_ms;        /* 0: the engine's default step */
    int64_t offset_ms;
    promql_at_kind at;
    sm_ms_t at_ms;
} promql_subquery;

typedef struct promql_call {
    const promql_func *func;
    promql_node **args;
    size_t nargs;
} promql_call;

typedef struct promql_aggregate {
    promql_aggop op;
    promql_node *expr;
    promql_node *param;     /* topk/bottomk/quantile/count_values, else NULL */
    const char **grouping;  /* label names in by()/without(), as written */
    size_t ngrouping;
    bool without;
    bool has_grouping;      /* a by/without clause was written (even empty) */
} promql_aggregate;

typedef enum promql_card {
    PROMQL_CARD_ONE_TO_ONE = 0, PROMQL_CARD_MANY_TO_ONE, PROMQL_CARD_ONE_TO_MANY,
    PROMQL_CARD_MANY_TO_MANY /* the set operators */
} promql_card;

typedef struct promql_matching {
    promql_card card;
    const char **labels;    /* on(...) / ignoring(...) */
    size_t nlabels;
    bool on;                /* true: on(labels); false: ignoring(labels) */
    bool has_on_ignoring;   /* an on/ignoring clause was written */
    const char **include;   /* group_left(...)/group_right(...) labels */
    size_t ninclude;
} promql_matching;

typedef struct promql_binary {
    promql_binop op;
    promql_node *lhs, *rhs;
    bool return_bool;       /* the `bool` modifier */
    promql_matching match;  /* meaningful when both sides are vectors */
} promql_binary;

typedef struct promql_unary {
    bool neg;               /* '-' (else '+') */
    promql_node *expr;
} promql_unary;

struct promql_node {
    promql_node_kind kind;
    promql_type type;       /* the value type this node evaluates to */
    uint32_t pos, end;      /* byte range [pos, end) in the source */
    union {
        double number;
        struct { const char *s; size_t len; } string; /* unescaped */
        promql_vector_sel vs;
        promql_matrix_sel ms;
        promql_subquery sq;
        promql_call call;
        promql_aggregate agg;
        promql_binary bin;
        promql_unary un;
        promql_node *paren;
    } u;
};

/* Parse src (len bytes, need not be NUL-terminated).  On error returns
 * SM_EINVAL with err->pos the byte offset and err->msg like Prometheus's
 * ("1:5: parse error: unexpected <op:+>" style text is the caller's to
 * format; msg holds "unexpected \"+\", expected ..." without the prefix).
 * *out is untouched on error.  Matchers are compiled, so a bad regex is a
 * parse error.  Only the first error is reported.  Limits beyond
 * Prometheus's: 500 nested parentheses/signs/^ and a tree 2,000 levels
 * deep ("query is too deeply nested"), no NUL bytes in matcher values.
 * A node's [pos, end) covers its text, offset/@ modifiers included.
 * Allocation failure gives SM_ENOMEM, or SM_ELIMIT when the arena's byte
 * limit was reached. */
int promql_parse(const char *src, size_t len, sm_arena *a, promql_node **out, sm_error *err);

/* Write `n` as PromQL that promql_parse reads back to an equal tree
 * (Prometheus's String() forms: durations as 5m, strings double-quoted).
 * Appends to out.  Returns 0, SM_ENOMEM, or SM_EINVAL for a tree
 * promql_parse cannot have made (a range selector over a non-selector);
 * on failure out is as it was. */
int promql_print(const promql_node *n, sm_buf *out);

/* Durations: "1h30m", "5m", "1ms", "2d" (units y w d h m s ms in this
 * order, each once); 0 or SM_EINVAL.  Also used by the HTTP API.
 * Prometheus's model.ParseDuration rules: "0" and "0s" give 0 (callers
 * that need a positive duration check), totals past ~292y are refused;
 * *ms_out is untouched on error. */
int promql_parse_duration(const char *s, size_t len, int64_t *ms_out);
/* Format ms as Prometheus prints durations ("1h30m", "0s"; y and w only
 * when they divide exactly: "90d"); a negative value gets a leading '-'.
 * snprintf-style: writes at most cap-1 bytes and a NUL, returns the
 * length of the whole text. */
size_t promql_format_duration(int64_t ms, char *buf, size_t cap);

/* Release the matchers' compiled regexes (they hold heap memory outside
 * the arena).  Call before freeing the arena; NULL is fine. */
void promql_node_fini(promql_node *n);

#endif
