/* SPDX-License-Identifier: Apache-2.0
 *
 * engine.c - the PromQL evaluator's entry points and node dispatch: engine
 * lifetime, the max_concurrent slots, one query's context (scratch arena,
 * deadline, the max_samples accounting of points held), the evaluation of
 * literals, parentheses and unary minus, and the conversion of the root
 * value into a promql_result in the caller's arena.  Selectors and
 * subqueries are in engine_select.c, operators in engine_binop.c,
 * aggregations in engine_agg.c, functions in engine_func.c; README.md next
 * to this file describes the design.  Semantics are Prometheus 2.42's
 * promql/engine.go; nothing here parses (promql_parse does).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_time.h"

void engine_opts_default(engine_opts *o) {
    memset(o, 0, sizeof *o);
    o->lookback_ms = 5 * 60 * 1000;
    o->max_samples = 50000000;
    o->timeout_ms = 2 * 60 * 1000;
    o->max_concurrent = 20;
    o->default_subquery_step_ms = 60 * 1000;
    o->max_series_per_select = 0;
}

int engine_new(const engine_opts *o, tsdb *db, engine **out, sm_error *err) {
    if (!db || !out) return SM_ERR(err, SM_EINVAL, "engine_new: no database");
    engine_opts d;
    if (!o) {
        engine_opts_default(&d);
        o = &d;
    }
    if (o->lookback_ms <= 0 || o->default_subquery_step_ms <= 0 || o->timeout_ms < 0)
        return SM_ERR(err, SM_EINVAL, "engine_new: lookback, subquery step must be > 0");
    engine *e = sm_calloc(1, sizeof *e);
    pthread_mutex_t *mu = sm_malloc(sizeof *mu);
    pthread_cond_t *cv = sm_malloc(sizeof *cv);
    if (!e || !mu || !cv) {
        sm_free(e);
        sm_free(mu);
        sm_free(cv);
        return SM_ERR(err, SM_ENOMEM, "engine_new: out of memory");
    }
    pthread_mutex_init(mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    e->o = *o;
    if (e->o.max_concurrent == 0) e->o.max_concurrent = 1;
    if (e->o.max_samples == 0) e->o.max_samples = UINT64_MAX;
    e->db = db;
    e->mu = mu;
    e->cond = cv;
    *out = e;
    return 0;
}

void engine_free(engine *e) {
    if (!e) return;
    pthread_mutex_destroy(e->mu);
    pthread_cond_destroy(e->cond);
    sm_free(e->mu);
    sm_free(e->cond);
    sm_free(e);
}

bool engine_error_is_exec(const sm_error *err) {
    return err && err->code == SM_EINVAL && err->index == 1;
}

/* ---- context helpers ---- */

int ev_exec_err(ev_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = sm_error_vset(c->err, SM_EINVAL, __FILE__, __LINE__, fmt, ap);
    va_end(ap);
    if (c->err && c->err->code == SM_EINVAL) c->err->index = 1;
    return rc;
}

int ev_nomem(ev_ctx *c) {
    return SM_ERR(c->err, SM_ENOMEM, "query: out of memory");
}

int ev_hold_limit(ev_ctx *c) {
    return SM_ERR(c->err, SM_ELIMIT, "query processing would load too many samples into memory in query execution");
}

int ev_check_time(ev_ctx *c) {
    if (c->deadline_ns && sm_mono_ns() > c->deadline_ns)
        return SM_ERR(c->err, SM_ETIMEOUT, "query timed out in expression evaluation");
    return 0;
}


bool ev_at_time(const ev_ctx *c, promql_at_kind at, sm_ms_t at_ms, sm_ms_t *out) {
    switch (at) {
    case PROMQL_AT_TIME: *out = at_ms; return true;
    case PROMQL_AT_START: *out = c->qstart; return true;
    case PROMQL_AT_END: *out = c->qend; return true;
    default: return false;
    }
}

const promql_node *ev_unparen(const promql_node *n) {
    while (n && n->kind == PN_PAREN) n = n->u.paren;
    return n;
}

/* ---- node dispatch ---- */

static int eval_number(ev_ctx *c, double v, const ev_grid *g, ev_val *out) {
    double *sc = sm_arena_alloc(c->a, g->n * sizeof *sc);
    if (!sc) return ev_nomem(c);
    for (size_t i = 0; i < g->n; i++) sc[i] = v;
    out->type = PROMQL_SCALAR;
    out->sc = sc;
    return 0;
}

static int eval_unary(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out) {
    int rc = ev_eval(c, n->u.un.expr, g, out);
    if (rc || !n->u.un.neg) return rc;
    if (out->type == PROMQL_SCALAR) {
        for (size_t i = 0; i < g->n; i++) out->sc[i] = -out->sc[i];
        return 0;
    }
    for (size_t i = 0; i < out->m.n; i++) {
        ev_series *s = &out->m.s[i];
        rc = ev_labels_without(c, &s->lbl, SM_METRIC_NAME_LABEL, &s->lbl);
        if (rc) return rc;
        for (uint32_t j = 0; j < s->n; j++) s->p[j].v = -s->p[j].v;
    }
    return ev_mat_dedupe(c, g, &out->m, true);
}

static uint64_t mat_points(const ev_mat *m) {
    uint64_t n = 0;
    for (size_t i = 0; i < m->n; i++) n += m->s[i].n;
    return n;
}

int ev_eval(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out) {
    int rc = ev_check_time(c);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    uint64_t before = c->cur;
    switch (n->kind) {
    case PN_NUMBER: rc = eval_number(c, n->u.number, g, out); break;
    case PN_STRING:
        out->type = PROMQL_STRING;
        out->str = sm_arena_strndup(c->a, n->u.string.s, n->u.string.len);
        rc = out->str ? 0 : ev_nomem(c);
        break;
    case PN_PAREN: return ev_eval(c, n->u.paren, g, out);
    case PN_UNARY: rc = eval_unary(c, n, g, out); break;
    case PN_VECTOR_SEL: return ev_select_vector(c, &n->u.vs, g, false, false, out);
    case PN_MATRIX_SEL:
        if (g->n != 1)
            return ev_exec_err(c, "cannot do range evaluation of matrix selector");
        return ev_select_matrix_instant(c, &n->u.ms, g->start, out);
    case PN_SUBQUERY: {
        if (g->n != 1)
            return ev_exec_err(c, "cannot do range evaluation of subquery");
        ev_grid inner;
        return ev_subquery(c, &n->u.sq, g, out, &inner);
    }
    case PN_CALL: rc = ev_call(c, n, g, out); break;
    case PN_AGGREGATE: rc = ev_aggregate(c, n, g, out); break;
    case PN_BINARY: rc = ev_binary(c, n, g, out); break;
    default: return ev_exec_err(c, "unsupported expression node %d", (int)n->kind);
    }
    if (rc) return rc;
    /* The inputs are released; what the node holds is its output. */
    c->cur = before;
    if (out->type == PROMQL_VECTOR || out->type == PROMQL_MATRIX) rc = ev_hold(c, mat_points(&out->m));
    return rc;
}

/* ---- queries ---- */

static int slot_acquire(engine *e, uint64_t deadline_ns, sm_error *err) {
    pthread_mutex_t *mu = e->mu;
    pthread_cond_t *cv = e->cond;
    pthread_mutex_lock(mu);
    while (e->running >= e->o.max_concurrent) {
        if (deadline_ns) {
            struct timespec ts;
            ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
            ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
            if (pthread_cond_timedwait(cv, mu, &ts) != 0 && e->running >= e->o.max_concurrent) {
                pthread_mutex_unlock(mu);
                return SM_ERR(err, SM_ETIMEOUT, "query timed out in query queue");
            }
        } else {
            pthread_cond_wait(cv, mu);
        }
    }
    e->running++;
    pthread_mutex_unlock(mu);
    return 0;
}

static void slot_release(engine *e) {
    pthread_mutex_lock(e->mu);
    e->running--;
    pthread_cond_signal(e->cond);
    pthread_mutex_unlock(e->mu);
}

static int cmp_series_labels(const void *a, const void *b) {
    const ev_series *x = a, *y = b;
    return sm_labels_cmp(&x->lbl, &y->lbl);
}

/* Copy the root value into the caller's arena as a promql_result. */
static int build_result(ev_ctx *c, const ev_val *v, const ev_grid *g, bool instant, sm_arena *a,
                        promql_result *out) {
    memset(out, 0, sizeof *out);
    if (v->type == PROMQL_STRING) {
        out->type = PROMQL_STRING;
        out->str = sm_arena_strdup(a, v->str);
        out->series = sm_arena_calloc(a, 1, sizeof *out->series);
        promql_point *p = sm_arena_alloc(a, sizeof *p);
        if (!out->str || !out->series || !p) return ev_nomem(c);
        p->t = g->start;
        p->v = 0;
        out->series[0].points = p;
        out->series[0].npoints = 1;
        out->nseries = 1;
        return 0;
    }
    if (v->type == PROMQL_SCALAR) {
        out->type = instant ? PROMQL_SCALAR : PROMQL_MATRIX;
        out->series = sm_arena_calloc(a, 1, sizeof *out->series);
        promql_point *p = sm_arena_alloc(a, g->n * sizeof *p);
        if (!out->series || !p) return ev_nomem(c);
        for (size_t i = 0; i < g->n; i++) {
            p[i].t = ev_step_time(g, i);
            p[i].v = v->sc[i];
        }
        out->series[0].points = p;
        out->series[0].npoints = g->n;
        out->nseries = 1;
        return 0;
    }
    ev_mat m = v->m;
    if (!instant && m.n > 1) qsort(m.s, m.n, sizeof *m.s, cmp_series_labels);
    out->type = (instant && v->type == PROMQL_VECTOR) ? PROMQL_VECTOR : PROMQL_MATRIX;
    out->series = sm_arena_calloc(a, m.n ? m.n : 1, sizeof *out->series);
    if (!out->series) return ev_nomem(c);
    size_t k = 0;
    for (size_t i = 0; i < m.n; i++) {
        const ev_series *s = &m.s[i];
        if (!s->n) continue;
        promql_series *d = &out->series[k++];
        if (sm_labels_copy(a, &s->lbl, &d->labels)) return ev_nomem(c);
        d->points = sm_arena_alloc(a, s->n * sizeof *d->points);
        if (!d->points) return ev_nomem(c);
        memcpy(d->points, s->p, s->n * sizeof *d->points);
        d->npoints = s->n;
        if (out->type == PROMQL_VECTOR) d->points[0].t = g->start;
    }
    out->nseries = k;
    return 0;
}

static int run(engine *e, const promql_node *expr, sm_ms_t start, sm_ms_t end, sm_ms_t step,
               bool instant, sm_arena *a, promql_result *out, sm_error *err) {
    sm_error_clear(err);
    if (!e || !expr || !a || !out) return SM_ERR(err, SM_EINVAL, "query: missing argument");
    if (!instant) {
        if (step <= 0)
            return SM_ERR(err, SM_EINVAL,
                          "zero or negative query resolution step widths are not accepted. "
                          "Try a positive integer");
        if (end < start)
            return SM_ERR(err, SM_EINVAL, "end timestamp must not be before start time");
        /* Points are counted in 32 bits per series; no sane query is near. */
        uint64_t span = (uint64_t)end - (uint64_t)start; /* end >= start: no overflow */
        if (span / (uint64_t)step >= UINT32_MAX / 2)
            return SM_ERR(err, SM_EINVAL, "too many steps in range query: %" PRIu64,
                          span / (uint64_t)step + 1);
        if (expr->type != PROMQL_SCALAR && expr->type != PROMQL_VECTOR)
            return SM_ERR(err, SM_EINVAL,
                          "invalid expression type \"%s\" for range query, must be Scalar or "
                          "instant Vector",
                          promql_type_name(expr->type));
    }
    uint64_t deadline = 0;
    if (e->o.timeout_ms > 0) deadline = sm_mono_ns() + (uint64_t)e->o.timeout_ms * 1000000ull;
    int rc = slot_acquire(e, deadline, err);
    if (rc) return rc;

    ev_ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    c.err = err;
    c.lookback_ms = e->o.lookback_ms;
    c.qstart = start;
    c.qend = end;
    c.max = e->o.max_samples;
    c.deadline_ns = deadline;
    c.a = sm_arena_new(256 * 1024, 0);
    c.bt = sm_malloc(EV_BATCH * sizeof *c.bt);
    c.bv = sm_malloc(EV_BATCH * sizeof *c.bv);
    if (!c.a || !c.bt || !c.bv) {
        rc = SM_ERR(err, SM_ENOMEM, "query: out of memory");
        goto done;
    }
    ev_grid g = {.start = start, .end = instant ? start : end, .step = instant ? 1 : step};
    g.n = (size_t)(((uint64_t)g.end - (uint64_t)g.start) / (uint64_t)g.step) + 1;
    ev_val v;
    rc = ev_eval(&c, expr, &g, &v);
    if (rc) goto done;
    if (!instant && (v.type == PROMQL_MATRIX || v.type == PROMQL_STRING)) {
        rc = SM_ERR(err, SM_EINVAL,
                    "invalid expression type \"%s\" for range query, must be Scalar or instant "
                    "Vector",
                    promql_type_name(v.type));
        goto done;
    }
    rc = build_result(&c, &v, &g, instant, a, out);
    if (rc == 0) {
        out->samples_read = c.samples_read;
        out->peak_points = c.peak;
    }
done:
    for (size_t i = 0; i < c.nsets; i++) tsdb_series_set_free(c.sets[i]);
    sm_free(c.sets);
    sm_free(c.bt);
    sm_free(c.bv);
    sm_arena_free(c.a);
    slot_release(e);
    return rc;
}

int engine_eval_instant(engine *e, const promql_node *expr, sm_ms_t t, sm_arena *a,
                        promql_result *out, sm_error *err) {
    return run(e, expr, t, t, 1, true, a, out, err);
}

int engine_eval_range(engine *e, const promql_node *expr, sm_ms_t start, sm_ms_t end,
                      sm_ms_t step, sm_arena *a, promql_result *out, sm_error *err) {
    return run(e, expr, start, end, step, false, a, out, err);
}

static int parse_and_run(engine *e, const char *query, sm_ms_t start, sm_ms_t end, sm_ms_t step,
                         bool instant, sm_arena *a, promql_result *out, sm_error *err) {
    sm_error_clear(err);
    if (!query) return SM_ERR(err, SM_EINVAL, "query: no expression");
    /* The tree lives in a private arena; the result in the caller's. */
    sm_arena *pa = sm_arena_new(0, 0);
    if (!pa) return SM_ERR(err, SM_ENOMEM, "query: out of memory");
    promql_node *root = NULL;
    int rc = promql_parse(query, strlen(query), pa, &root, err);
    if (rc == 0) rc = run(e, root, start, end, step, instant, a, out, err);
    promql_node_fini(root);
    sm_arena_free(pa);
    return rc;
}

int engine_query_instant(engine *e, const char *query, sm_ms_t t, sm_arena *a,
                         promql_result *out, sm_error *err) {
    return parse_and_run(e, query, t, t, 1, true, a, out, err);
}

int engine_query_range(engine *e, const char *query, sm_ms_t start, sm_ms_t end, sm_ms_t step,
                       sm_arena *a, promql_result *out, sm_error *err) {
    return parse_and_run(e, query, start, end, step, false, a, out, err);
}
