/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_int.h - private to query/engine*.c: the evaluator's values, the
 * evaluation context and the helpers the node evaluators share.
 * query/README.md explains the design; nothing outside the engine's own
 * files includes this header (STYLE.md rule 3).
 *
 * Every node is evaluated over a step grid (start, end, step) at once, the
 * way Prometheus's rangeEval does: an instant vector is a set of series with
 * at most one point per step, a scalar one value per step.  All memory of a
 * query is in the context's scratch arena; label strings point either into
 * the arena or into storage series sets, which stay open until the query
 * ends and the result has been copied into the caller's arena.
 */
#ifndef SEISMO_QUERY_ENGINE_INT_H
#define SEISMO_QUERY_ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "functions.h"

/* One series of an evaluated node. */
typedef struct ev_series {
    sm_labels lbl;   /* sorted; strings borrowed (arena or storage) */
    uint64_t hash;   /* sm_labels_hash(&lbl) */
    promql_point *p; /* ascending t: grid times (vectors), sample times (matrices) */
    uint32_t n;      /* points used */
    uint32_t cap;    /* points allocated at p */
} ev_series;

typedef struct ev_mat {
    ev_series *s;
    size_t n;
} ev_mat;

/* A node's value over the grid. */
typedef struct ev_val {
    promql_type type; /* SCALAR, VECTOR, MATRIX, STRING */
    ev_mat m;         /* VECTOR and MATRIX */
    double *sc;       /* SCALAR: grid->n values */
    const char *str;  /* STRING */
} ev_val;

/* Evaluation times: start, start+step, ..., <= end; n of them. */
typedef struct ev_grid {
    sm_ms_t start, end;
    int64_t step; /* > 0 (1 for instant evaluation) */
    size_t n;
} ev_grid;

struct engine {
    engine_opts o;
    tsdb *db;
    /* max_concurrent slots: a counting semaphore. */
    unsigned running;
    void *mu;   /* pthread_mutex_t * */
    void *cond; /* pthread_cond_t * */
};

typedef struct ev_ctx {
    engine *e;
    sm_arena *a;        /* scratch: freed when the query ends */
    sm_error *err;
    int64_t lookback_ms;
    sm_ms_t qstart, qend; /* the query's own start and end (@ start()/end()) */
    uint64_t cur;         /* points held now (Prometheus's currentSamples) */
    uint64_t peak;
    uint64_t max;         /* max_samples */
    uint64_t samples_read;
    uint64_t deadline_ns; /* 0 = none */
    uint64_t tick;        /* samples since the last clock check */
    tsdb_series_set **sets; /* open selections, freed at the end */
    size_t nsets, capsets;
    /* Reusable read buffers of the streaming readers. */
    sm_ms_t *bt;
    double *bv;
} ev_ctx;

#define EV_BATCH 512

/* ---- engine.c ---- */
int ev_eval(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out);
/* An execution error (err->index = 1, engine_error_is_exec()). */
int ev_exec_err(ev_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ev_nomem(ev_ctx *c);
/* Count n more points held; SM_ELIMIT past max_samples.  Inline, as the
 * range functions call these for every step of every series. */
int ev_hold_limit(ev_ctx *c);
static inline int ev_hold(ev_ctx *c, uint64_t n) {
    c->cur += n;
    if (c->cur > c->peak) c->peak = c->cur;
    return c->cur > c->max ? ev_hold_limit(c) : 0;
}
static inline void ev_release(ev_ctx *c, uint64_t n) { c->cur = n > c->cur ? 0 : c->cur - n; }
/* Clock check every few thousand samples. */
int ev_check_time(ev_ctx *c);
static inline int ev_tick(ev_ctx *c, uint64_t n) {
    c->tick += n;
    if (c->tick < 4096) return 0;
    c->tick = 0;
    return ev_check_time(c);
}
/* Index of grid time t (t must be on the grid). */
static inline size_t ev_step_index(const ev_grid *g, sm_ms_t t) {
    return (size_t)((t - g->start) / g->step);
}
static inline sm_ms_t ev_step_time(const ev_grid *g, size_t i) {
    return g->start + (sm_ms_t)i * g->step;
}
/* Resolve an @ modifier: the fixed reference time, or false when none. */
bool ev_at_time(const ev_ctx *c, promql_at_kind at, sm_ms_t at_ms, sm_ms_t *out);
const promql_node *ev_unparen(const promql_node *n);

/* The stale marker, by its exact bits (never isnan). */
static inline bool ev_is_stale(double v) {
    uint64_t b;
    __builtin_memcpy(&b, &v, sizeof b);
    return b == SM_STALE_NAN_BITS;
}

/* ---- engine_util.c ---- */
/* Series storage in the arena. */
int ev_series_reserve(ev_ctx *c, ev_series *s, uint32_t cap);
int ev_series_push(ev_ctx *c, ev_series *s, sm_ms_t t, double v);
/* Labels: copies of arrays (strings borrowed). */
int ev_labels_dup(ev_ctx *c, const sm_label *v, uint32_t n, sm_labels *out);
/* ls without `name` (a view when absent, a copy otherwise). */
int ev_labels_without(ev_ctx *c, const sm_labels *ls, const char *name, sm_labels *out);
/* ls with name=value set (value "" deletes). */
int ev_labels_set(ev_ctx *c, const sm_labels *ls, const char *name, const char *value,
                  sm_labels *out);
/* Hash of a subset: on=true keeps only `names`, on=false drops them (and
 * __name__ when drop_name). */
uint64_t ev_labels_hash_subset(const sm_labels *ls, const char *const *names, size_t nn, bool on,
                               bool drop_name);
/* Go's labels.String(): {a="b", c="d"} with __name__ as a plain label. */
size_t ev_labels_go_string(const sm_labels *ls, char *buf, size_t cap);
/* An element of a vector being ordered by value. */
typedef struct ev_sortent {
    uint32_t idx; /* the caller's index (series, or position) */
    uint32_t pos; /* scratch for ev_go_sort */
    double v;
} ev_sortent;
/* Order as Go's sort.Sort does with 2.42's reversed value heaps (sort,
 * sort_desc, the end of topk/bottomk): ascending or descending, NaN last;
 * up to 12 elements this is Go's insertion sort exactly (ties and NaNs in
 * its order), beyond that ties keep their input order. */
void ev_go_sort(ev_sortent *e, size_t n, bool asc);
/* Go's fmt %v of a float64 (strconv 'g', shortest). */
void ev_format_go_g(double v, char *buf, size_t cap);
/* Go strconv.ParseFloat(s, 64) acceptance: 1 and *out, or 0. */
int ev_parse_float(const char *s, double *out);
bool ev_name_in(const char *name, const char *const *names, size_t n);

/* Output series keyed by label set: the rangeEval accumulator.  Appending a
 * second point at the same time to one label set is Prometheus's "vector
 * cannot contain metrics with the same labelset". */
typedef struct ev_out {
    ev_ctx *c;
    const ev_grid *g;
    ev_series *s;
    size_t n, cap;
    uint32_t *tab; /* open addressing: index+1, 0 empty */
    size_t tabcap; /* power of two */
} ev_out;
int ev_out_init(ev_out *o, ev_ctx *c, const ev_grid *g, size_t hint);
/* Find or create the series for ls (copied into the arena when created when
 * copy is set); returns its index or < 0. */
int ev_out_series(ev_out *o, const sm_labels *ls, uint64_t hash, bool copy, size_t *idx);
int ev_out_add(ev_out *o, const sm_labels *ls, uint64_t hash, bool copy, sm_ms_t t, double v);
/* Append to series i (from ev_out_series), with the same check. */
int ev_out_push(ev_out *o, size_t i, sm_ms_t t, double v);
void ev_out_finish(ev_out *o, ev_mat *m);
/* Re-key a matrix whose label sets may now collide (after __name__ was
 * dropped): series with equal labels merge when their points do not share
 * a time, else the labelset error.  any_dup_is_error: any two equal label
 * sets are an error (Prometheus's Matrix.ContainsSameLabelset). */
int ev_mat_dedupe(ev_ctx *c, const ev_grid *g, ev_mat *m, bool any_dup_is_error);

/* u64 -> u32 map in the arena, cleared in O(1) by generation. */
typedef struct ev_map {
    uint64_t *keys;
    uint32_t *vals;
    uint32_t *gen;
    size_t cap; /* power of two */
    uint32_t cur;
    size_t n;
} ev_map;
int ev_map_init(ev_ctx *c, ev_map *m, size_t hint);
void ev_map_clear(ev_map *m);
/* Returns a pointer to the value slot; *found says whether it existed.  NULL
 * when the map needs to grow and cannot. */
uint32_t *ev_map_put(ev_ctx *c, ev_map *m, uint64_t key, bool *found);
uint32_t *ev_map_get(ev_map *m, uint64_t key);

/* Gathers the points of a matrix at successive grid times. */
typedef struct ev_cursor {
    const ev_mat *m;
    uint32_t *pos;
} ev_cursor;
int ev_cursor_init(ev_ctx *c, ev_cursor *k, const ev_mat *m);
/* Series indices and values of m at time t, in series order; returns count. */
size_t ev_cursor_step(ev_cursor *k, sm_ms_t t, uint32_t *idx, double *vals);

/* ---- engine_select.c ---- */
/* want_ts: values are the sample times in seconds (timestamp()); at_no_offset:
 * 2.42's timestamp(x @ t) ignores x's offset. */
int ev_select_vector(ev_ctx *c, const promql_vector_sel *vs, const ev_grid *g, bool want_ts,
                     bool at_no_offset, ev_val *out);
int ev_select_matrix_instant(ev_ctx *c, const promql_matrix_sel *ms, sm_ms_t t, ev_val *out);
int ev_subquery(ev_ctx *c, const promql_subquery *sq, const ev_grid *g, ev_val *out,
                ev_grid *inner_used);
/* A range function (fn_range_eval) or absent_over_time over a matrix
 * selector or subquery argument. */
int ev_range_call(ev_ctx *c, const promql_node *call, const ev_grid *g, ev_val *out);

/* ---- engine_binop.c ---- */
int ev_binary(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out);

/* ---- engine_agg.c ---- */
int ev_aggregate(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out);

/* ---- engine_func.c ---- */
int ev_call(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out);
/* absent()'s label set from a selector argument's equality matchers. */
int ev_absent_labels(ev_ctx *c, const promql_node *arg, sm_labels *out);

/* ---- engine_anomaly.c ---- */
int eval_anomaly(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out);

#endif
