/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_select.c - reading storage for PromQL: instant-vector selectors
 * with lookback and staleness, range-vector selectors of instant queries,
 * subqueries, and range functions over a sliding window per series.
 *
 * A selector selects once, with mint = first reference time - offset -
 * lookback (or range) and maxt = last reference time - offset, and then
 * walks each series' iterator forward through the steps, reading in
 * batches (tsdb_iter_next_batch) and seeking over gaps longer than the
 * window.  Windows are closed at both ends, as in Prometheus 2.42: the
 * lookback window of step t is [t - offset - lookback, t - offset] and a
 * range window [t - offset - range, t - offset].  A stale marker (the exact
 * NaN bits SM_STALE_NAN_BITS) that is the newest sample of a lookback
 * window hides the series; range windows skip stale markers.  With an @
 * modifier the reference time is fixed, so the value is computed once per
 * series and repeated on every step.  Range functions never hold more than
 * one window per series; the windows' samples count as points held.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "tsdb/base/sm_alloc.h"

/* Times near the ends of int64 (an @ at an extreme) saturate rather than
 * overflow. */
static sm_ms_t tsub(sm_ms_t a, int64_t b) {
    sm_ms_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? SM_MS_MIN : SM_MS_MAX;
    return r;
}

/* A forward reader over one series: storage or an evaluated subquery. */
typedef struct rd {
    ev_ctx *c;
    tsdb_iter *it;          /* storage series, or NULL */
    const promql_point *mp; /* in-memory points (subqueries) */
    uint32_t mn, mpos;
    int pos, n;
    bool eof;
} rd;

static int rd_storage_err(ev_ctx *c, int rc) {
    return SM_ERR(c->err, rc, "query: reading a series from storage: %s", sm_strerror(rc));
}

/* The next batch from storage: 1, 0 at the end, < 0 on error. */
static int rd_fill(rd *r) {
    if (r->eof) return 0;
    int n = tsdb_iter_next_batch(r->it, r->c->bt, r->c->bv, EV_BATCH);
    if (n < 0) return rd_storage_err(r->c, n);
    r->pos = 0;
    r->n = n;
    if (n == 0) {
        r->eof = true;
        return 0;
    }
    r->c->samples_read += (uint64_t)n;
    int rc = ev_tick(r->c, (uint64_t)n);
    return rc ? rc : 1;
}

/* 1 with the next sample in *t, *v; 0 at the end; < 0 on error.  Inline:
 * range functions peek once a step. */
static inline int rd_peek(rd *r, sm_ms_t *t, double *v) {
    if (!r->it) {
        if (r->mpos >= r->mn) return 0;
        *t = r->mp[r->mpos].t;
        *v = r->mp[r->mpos].v;
        return 1;
    }
    if (r->pos >= r->n) {
        int rc = rd_fill(r);
        if (rc <= 0) return rc;
    }
    *t = r->c->bt[r->pos];
    *v = r->c->bv[r->pos];
    return 1;
}

static void rd_next(rd *r) {
    if (!r->it)
        r->mpos++;
    else
        r->pos++;
}

/* Skip so that the next sample has time >= t. */
static int rd_seek(rd *r, sm_ms_t t) {
    if (!r->it) {
        uint32_t lo = r->mpos, hi = r->mn;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (r->mp[mid].t < t)
                lo = mid + 1;
            else
                hi = mid;
        }
        r->mpos = lo;
        return 0;
    }
    while (r->pos < r->n && r->c->bt[r->pos] < t) r->pos++;
    if (r->pos < r->n || r->eof) return 0;
    int rc = tsdb_iter_seek(r->it, t);
    if (rc < 0) return rd_storage_err(r->c, rc);
    r->pos = r->n = 0;
    return 0;
}

static int keep_set(ev_ctx *c, tsdb_series_set *s) {
    if (c->nsets == c->capsets) {
        size_t ncap = c->capsets ? c->capsets * 2 : 8;
        tsdb_series_set **n = sm_realloc(c->sets, ncap * sizeof *n);
        if (!n) {
            tsdb_series_set_free(s);
            return ev_nomem(c);
        }
        c->sets = n;
        c->capsets = ncap;
    }
    c->sets[c->nsets++] = s;
    return 0;
}

static int do_select(ev_ctx *c, const promql_vector_sel *vs, sm_ms_t mint, sm_ms_t maxt,
                     tsdb_series_set **out) {
    tsdb_select_limits lim = {.max_series = c->e->o.max_series_per_select};
    tsdb_series_set *set = NULL;
    int rc = tsdb_select(c->e->db, vs->matchers, vs->nmatchers, mint, maxt, &lim, &set, c->err);
    if (rc) return rc;
    rc = keep_set(c, set);
    if (rc) return rc;
    *out = set;
    return 0;
}

static int open_rd(ev_ctx *c, tsdb_series_set *set, size_t i, rd *r) {
    memset(r, 0, sizeof *r);
    r->c = c;
    int rc = tsdb_series_set_iter(set, i, &r->it);
    if (rc) return rd_storage_err(c, rc);
    return 0;
}

/* The newest sample in [ref - lookback, ref], unless it is a stale marker. */
static int lookback_value(ev_ctx *c, rd *r, sm_ms_t ref, bool *have, sm_ms_t *pt, double *pv,
                          bool *ok) {
    sm_ms_t t;
    double v;
    int rc = rd_peek(r, &t, &v);
    if (rc < 0) return rc;
    if (rc == 1 && t < tsub(ref, c->lookback_ms)) {
        *have = false;
        rc = rd_seek(r, tsub(ref, c->lookback_ms));
        if (rc) return rc;
        rc = rd_peek(r, &t, &v);
        if (rc < 0) return rc;
    }
    while (rc == 1 && t <= ref) {
        *have = true;
        *pt = t;
        *pv = v;
        rd_next(r);
        rc = rd_peek(r, &t, &v);
        if (rc < 0) return rc;
    }
    *ok = *have && *pt >= tsub(ref, c->lookback_ms) && !ev_is_stale(*pv);
    return 0;
}

int ev_select_vector(ev_ctx *c, const promql_vector_sel *vs, const ev_grid *g, bool want_ts,
                     bool at_no_offset, ev_val *out) {
    memset(out, 0, sizeof *out);
    out->type = PROMQL_VECTOR;
    sm_ms_t at;
    bool has_at = ev_at_time(c, vs->at, vs->at_ms, &at);
    int64_t off = (has_at && at_no_offset) ? 0 : vs->offset_ms;
    sm_ms_t ref0 = tsub(has_at ? at : g->start, off), ref1 = tsub(has_at ? at : g->end, off);
    tsdb_series_set *set;
    int rc = do_select(c, vs, tsub(ref0, c->lookback_ms), ref1, &set);
    if (rc) return rc;
    size_t ns = tsdb_series_set_count(set);
    ev_series *ss = sm_arena_calloc(c->a, ns ? ns : 1, sizeof *ss);
    promql_point *tmp = sm_malloc((g->n ? g->n : 1) * sizeof *tmp);
    if (!ss || !tmp) {
        sm_free(tmp);
        return ev_nomem(c);
    }
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        rd r;
        rc = open_rd(c, set, i, &r);
        if (rc) goto fail;
        uint32_t np = 0;
        bool have = false, ok = false;
        sm_ms_t pt = 0;
        double pv = 0;
        for (size_t st = 0; st < g->n; st++) {
            sm_ms_t ts = ev_step_time(g, st);
            if (!has_at || st == 0) {
                rc = lookback_value(c, &r, tsub(has_at ? at : ts, off), &have, &pt, &pv, &ok);
                if (rc) goto fail;
            }
            if (ok) {
                tmp[np].t = ts;
                tmp[np].v = want_ts ? (double)pt / 1000.0 : pv;
                np++;
            }
        }
        if (!np) continue;
        rc = ev_hold(c, np);
        if (rc) goto fail;
        ev_series *s = &ss[k++];
        s->lbl = *tsdb_series_set_labels(set, i);
        s->hash = sm_labels_hash(&s->lbl);
        s->p = sm_arena_alloc(c->a, np * sizeof *s->p);
        if (!s->p) {
            rc = ev_nomem(c);
            goto fail;
        }
        memcpy(s->p, tmp, np * sizeof *s->p);
        s->n = s->cap = np;
    }
    sm_free(tmp);
    out->m.s = ss;
    out->m.n = k;
    return 0;
fail:
    sm_free(tmp);
    return rc;
}

int ev_select_matrix_instant(ev_ctx *c, const promql_matrix_sel *ms, sm_ms_t t, ev_val *out) {
    memset(out, 0, sizeof *out);
    out->type = PROMQL_MATRIX;
    const promql_vector_sel *vs = &ms->sel->u.vs;
    sm_ms_t at;
    bool has_at = ev_at_time(c, vs->at, vs->at_ms, &at);
    sm_ms_t maxt = tsub(has_at ? at : t, vs->offset_ms), mint = tsub(maxt, ms->range_ms);
    tsdb_series_set *set;
    int rc = do_select(c, vs, mint, maxt, &set);
    if (rc) return rc;
    size_t ns = tsdb_series_set_count(set);
    ev_series *ss = sm_arena_calloc(c->a, ns ? ns : 1, sizeof *ss);
    if (!ss) return ev_nomem(c);
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        rd r;
        rc = open_rd(c, set, i, &r);
        if (rc) return rc;
        rc = rd_seek(&r, mint);
        if (rc) return rc;
        ev_series *s = &ss[k];
        memset(s, 0, sizeof *s);
        sm_ms_t st;
        double sv;
        while ((rc = rd_peek(&r, &st, &sv)) == 1 && st <= maxt) {
            rd_next(&r);
            if (st < mint || ev_is_stale(sv)) continue;
            rc = ev_series_push(c, s, st, sv);
            if (rc) return rc;
            rc = ev_hold(c, 1);
            if (rc) return rc;
        }
        if (rc < 0) return rc;
        if (!s->n) continue;
        s->lbl = *tsdb_series_set_labels(set, i);
        s->hash = sm_labels_hash(&s->lbl);
        k++;
    }
    out->m.s = ss;
    out->m.n = k;
    return 0;
}

/* The first multiple of step at or after t (correct for negative t). */
static sm_ms_t align_up(sm_ms_t t, int64_t step) {
    sm_ms_t q = t / step * step; /* truncates toward zero */
    if (q < t && q <= SM_MS_MAX - step) q += step;
    return q;
}

int ev_subquery(ev_ctx *c, const promql_subquery *sq, const ev_grid *g, ev_val *out,
                ev_grid *inner) {
    memset(out, 0, sizeof *out);
    out->type = PROMQL_MATRIX;
    sm_ms_t at;
    bool has_at = ev_at_time(c, sq->at, sq->at_ms, &at);
    int64_t step = sq->step_ms > 0 ? sq->step_ms : c->e->o.default_subquery_step_ms;
    sm_ms_t lo = tsub(tsub(has_at ? at : g->start, sq->offset_ms), sq->range_ms);
    inner->start = align_up(lo, step);
    inner->end = tsub(has_at ? at : g->end, sq->offset_ms);
    inner->step = step;
    if (inner->end < inner->start) {
        inner->n = 0;
        return 0;
    }
    uint64_t span = (uint64_t)inner->end - (uint64_t)inner->start;
    if (span / (uint64_t)step >= UINT32_MAX / 2)
        return SM_ERR(c->err, SM_ELIMIT,
                      "query processing would load too many samples into memory in query execution");
    inner->n = (size_t)(span / (uint64_t)step) + 1;
    ev_val v;
    int rc = ev_eval(c, sq->expr, inner, &v);
    if (rc) return rc;
    if (v.type != PROMQL_VECTOR && v.type != PROMQL_MATRIX)
        return ev_exec_err(c, "subquery is only allowed on instant vector, got %s",
                           promql_type_name(v.type));
    out->m = v.m;
    return 0;
}

/* ---- range functions ---- */

typedef struct win {
    sm_ms_t *t;
    double *v;
    size_t h, n, cap; /* the window is [h, h + n) */
    size_t drops;     /* pairs in the window with v[i] < v[i - 1] */
} win;

/* win_reserve when the room after the end has run out. */
static int win_grow(ev_ctx *c, win *w, size_t more) {
    if (w->h > 0) {
        memmove(w->t, w->t + w->h, w->n * sizeof *w->t);
        memmove(w->v, w->v + w->h, w->n * sizeof *w->v);
        w->h = 0;
        if (w->n + more <= w->cap) return 0;
    }
    size_t ncap = w->cap ? w->cap : 256;
    while (ncap < w->n + more) ncap *= 2;
    sm_ms_t *nt = sm_realloc(w->t, ncap * sizeof *nt);
    if (!nt) return ev_nomem(c);
    w->t = nt;
    double *nv = sm_realloc(w->v, ncap * sizeof *nv);
    if (!nv) return ev_nomem(c);
    w->v = nv;
    w->cap = ncap;
    return 0;
}

/* Room for `more` samples after the window's end. */
static inline int win_reserve(ev_ctx *c, win *w, size_t more) {
    return w->h + w->n + more <= w->cap ? 0 : win_grow(c, w, more);
}

/* Store a sample at index k (reserved, right after the window's last
 * sample), counting a drop against the one before it. */
static inline void win_store(win *w, size_t k, sm_ms_t t, double v) {
    if (k > w->h && v < w->v[k - 1]) w->drops++;
    w->t[k] = t;
    w->v[k] = v;
}

static int win_push(ev_ctx *c, win *w, sm_ms_t t, double v) {
    int rc = win_reserve(c, w, 1);
    if (rc) return rc;
    win_store(w, w->h + w->n, t, v);
    w->n++;
    return ev_hold(c, 1);
}

/* Slide w to [mint, maxt] reading forward from r. */
static int win_slide(ev_ctx *c, win *w, rd *r, sm_ms_t mint, sm_ms_t maxt) {
    size_t drop = 0;
    while (drop < w->n && w->t[w->h + drop] < mint) {
        if (drop + 1 < w->n && w->v[w->h + drop + 1] < w->v[w->h + drop]) w->drops--;
        drop++;
    }
    w->h += drop;
    w->n -= drop;
    ev_release(c, drop);
    if (w->n == 0) w->h = 0;
    sm_ms_t t;
    double v;
    int rc = rd_peek(r, &t, &v);
    if (rc == 1 && t < mint) {
        rc = rd_seek(r, mint);
        if (rc) return rc;
        rc = rd_peek(r, &t, &v);
    }
    if (r->it) {
        /* Storage: copy runs of the current batch straight in. */
        while (rc == 1 && t <= maxt) {
            int end = r->pos;
            while (end < r->n && c->bt[end] <= maxt) end++;
            rc = win_reserve(c, w, (size_t)(end - r->pos));
            if (rc) return rc;
            size_t k = w->h + w->n, k0 = k;
            for (int i = r->pos; i < end; i++) {
                double x = c->bv[i];
                if (!ev_is_stale(x)) win_store(w, k++, c->bt[i], x);
            }
            w->n += k - k0;
            r->pos = end;
            rc = ev_hold(c, k - k0);
            if (rc) return rc;
            if (end < r->n) return 0; /* the next sample is past maxt */
            rc = rd_peek(r, &t, &v);
        }
        return rc < 0 ? rc : 0;
    }
    while (rc == 1 && t <= maxt) {
        rd_next(r);
        if (!ev_is_stale(v)) {
            rc = win_push(c, w, t, v);
            if (rc) return rc;
        }
        rc = rd_peek(r, &t, &v);
    }
    return rc < 0 ? rc : 0;
}

static int range_args_check(ev_ctx *c, promql_func_id fid, const double *a, size_t na) {
    sm_error aerr;
    sm_error_clear(&aerr);
    if (fn_range_args_check(fid, a, na, &aerr) != 0) return ev_exec_err(c, "%s", aerr.msg);
    return 0;
}

int ev_range_call(ev_ctx *c, const promql_node *call, const ev_grid *g, ev_val *out) {
    const promql_call *pc = &call->u.call;
    promql_func_id fid = pc->func->id;
    bool absent = fid == PF_ABSENT_OVER_TIME;
    memset(out, 0, sizeof *out);
    out->type = PROMQL_VECTOR;

    /* Scalar arguments first: one value per step. */
    size_t mi = pc->nargs;
    double *sargs[PROMQL_MAX_FUNC_ARGS] = {0};
    size_t nsargs = 0;
    int rc;
    for (size_t i = 0; i < pc->nargs; i++) {
        if (pc->args[i]->type == PROMQL_MATRIX && mi == pc->nargs) {
            mi = i;
            continue;
        }
        ev_val a;
        rc = ev_eval(c, pc->args[i], g, &a);
        if (rc) return rc;
        if (a.type != PROMQL_SCALAR) return ev_exec_err(c, "expected a scalar argument");
        if (nsargs < PROMQL_MAX_FUNC_ARGS) sargs[nsargs++] = a.sc;
    }
    if (mi == pc->nargs) return ev_exec_err(c, "function %s needs a range vector", pc->func->name);
    /* Without scalar arguments the check cannot change from step to step. */
    if (!nsargs && !absent && (rc = range_args_check(c, fid, NULL, 0))) return rc;
    const promql_node *arg = ev_unparen(pc->args[mi]);

    /* The source: a storage selection or an evaluated subquery. */
    tsdb_series_set *set = NULL;
    ev_mat sub = {0};
    size_t nsrc;
    int64_t range, off;
    sm_ms_t at;
    bool has_at;
    if (arg->kind == PN_MATRIX_SEL) {
        const promql_vector_sel *vs = &arg->u.ms.sel->u.vs;
        range = arg->u.ms.range_ms;
        off = vs->offset_ms;
        has_at = ev_at_time(c, vs->at, vs->at_ms, &at);
        rc = do_select(c, vs, tsub(tsub(has_at ? at : g->start, off), range), tsub(has_at ? at : g->end, off),
                       &set);
        if (rc) return rc;
        nsrc = tsdb_series_set_count(set);
    } else if (arg->kind == PN_SUBQUERY) {
        const promql_subquery *sq = &arg->u.sq;
        range = sq->range_ms;
        off = sq->offset_ms;
        has_at = ev_at_time(c, sq->at, sq->at_ms, &at);
        ev_val sv;
        ev_grid inner;
        rc = ev_subquery(c, sq, g, &sv, &inner);
        if (rc) return rc;
        sub = sv.m;
        nsrc = sub.n;
    } else {
        return ev_exec_err(c, "function %s needs a range vector selector or subquery",
                           pc->func->name);
    }
    uint64_t sub_held = 0;
    for (size_t i = 0; i < sub.n; i++) sub_held += sub.s[i].n;

    bool *present = NULL;
    if (absent) {
        present = sm_arena_calloc(c->a, g->n ? g->n : 1, sizeof *present);
        if (!present) return ev_nomem(c);
    }
    ev_series *os = sm_arena_calloc(c->a, nsrc ? nsrc : 1, sizeof *os);
    promql_point *tmp = sm_malloc((g->n ? g->n : 1) * sizeof *tmp);
    win w = {0};
    if (!os || !tmp) {
        rc = ev_nomem(c);
        goto done;
    }
    size_t k = 0;
    fn_rate_memo memo = {0};
    for (size_t i = 0; i < nsrc; i++) {
        rd r;
        const sm_labels *lbl;
        if (set) {
            rc = open_rd(c, set, i, &r);
            if (rc) goto done;
            lbl = tsdb_series_set_labels(set, i);
        } else {
            memset(&r, 0, sizeof r);
            r.c = c;
            r.mp = sub.s[i].p;
            r.mn = sub.s[i].n;
            lbl = &sub.s[i].lbl;
        }
        ev_release(c, w.n);
        w.h = w.n = w.drops = 0;
        uint32_t np = 0;
        for (size_t st = 0; st < g->n; st++) {
            sm_ms_t ts = ev_step_time(g, st);
            sm_ms_t maxt = tsub(has_at ? at : ts, off);
            /* Under @ the window is the same at every step; only
             * predict_linear's intercept time moves with the step. */
            if (!has_at || st == 0) {
                rc = win_slide(c, &w, &r, tsub(maxt, range), maxt);
                if (!rc) rc = ev_tick(c, w.n + 1);
                if (rc) goto done;
            }
            if (absent) {
                present[st] = present[st] || w.n > 0;
                continue;
            }
            if (w.n == 0) continue;
            fn_window fw = {.t = w.t + w.h, .v = w.v + w.h, .n = w.n, .start = tsub(maxt, range),
                            .memo = &memo, .no_drops = w.drops == 0,
                            .end = maxt};
            double a[PROMQL_MAX_FUNC_ARGS];
            for (size_t j = 0; j < nsargs; j++) a[j] = sargs[j][st];
            if (nsargs && (rc = range_args_check(c, fid, a, nsargs))) goto done;
            double v;
            int frc = fn_range_eval_checked(fid, &fw, ts, a, &v);
            if (frc < 0) {
                rc = frc == SM_ENOMEM ? ev_nomem(c)
                                      : ev_exec_err(c, "function %s cannot be evaluated",
                                                    pc->func->name);
                goto done;
            }
            if (frc == 1) {
                tmp[np].t = ts;
                tmp[np++].v = v;
            }
        }
        if (absent || !np) continue;
        rc = ev_hold(c, np);
        if (rc) goto done;
        ev_series *s = &os[k++];
        if (fid == PF_LAST_OVER_TIME)
            s->lbl = *lbl;
        else {
            rc = ev_labels_without(c, lbl, SM_METRIC_NAME_LABEL, &s->lbl);
            if (rc) goto done;
        }
        s->p = sm_arena_alloc(c->a, np * sizeof *s->p);
        if (!s->p) {
            rc = ev_nomem(c);
            goto done;
        }
        memcpy(s->p, tmp, np * sizeof *s->p);
        s->n = s->cap = np;
    }
    ev_release(c, w.n);
    ev_release(c, sub_held);
    if (absent) {
        size_t missing = 0;
        for (size_t st = 0; st < g->n; st++) missing += !present[st];
        out->m.n = 0;
        if (missing) {
            ev_series *s = &os[0];
            memset(s, 0, sizeof *s);
            rc = ev_absent_labels(c, arg, &s->lbl);
            if (rc) goto done;
            s->p = sm_arena_alloc(c->a, missing * sizeof *s->p);
            if (!s->p) {
                rc = ev_nomem(c);
                goto done;
            }
            for (size_t st = 0; st < g->n; st++)
                if (!present[st]) {
                    s->p[s->n].t = ev_step_time(g, st);
                    s->p[s->n++].v = 1;
                }
            s->cap = s->n;
            out->m.s = os;
            out->m.n = 1;
        }
        rc = 0;
        goto done;
    }
    out->m.s = os;
    out->m.n = k;
    rc = ev_mat_dedupe(c, g, &out->m, true);
done:
    sm_free(tmp);
    sm_free(w.t);
    sm_free(w.v);
    return rc;
}
