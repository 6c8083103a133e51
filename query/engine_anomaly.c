/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_anomaly.c - Seismo's anomaly functions in PromQL (docs/PROMQL.md,
 * "Anomaly functions"):
 *
 *   baseline_expected(v [, "1w"])   the seasonal baseline's expected value
 *   baseline_lower(v [, "1w"]), baseline_upper(v [, "1w"])   its band
 *   anomaly_score(v [, "1w"])       the residual score in [0, 1), 0.5 at
 *                                   the band's edge (ML_SCORE_THRESHOLD)
 *
 * How: the argument is evaluated twice, once on the query's own grid (the
 * values to describe) and once over the training window before it on a
 * coarser grid (at most ~10,080 steps for the window: one minute for a
 * week).  The query range is cut into segments of at most one day; each
 * segment gets its own fit on the training window that ends where the
 * segment starts, so a long range query adapts day by day and no point is
 * ever described by a model that has seen it (no look-ahead).  Every
 * series of a segment is fitted in one ml_baseline_fit call, which solves
 * all of them with one GEMM per robust iteration (OpenBLAS) and one small
 * Cholesky factorisation (LAPACK).  Series keep their labels without
 * __name__, like every function.
 *
 * The continuous rules (rules.h) use the streaming scorer instead, which
 * adds an isolation forest over the residual features; on query only the
 * baseline's residual score is given, because a forest per series per
 * query would cost far more than a dashboard can wait for.
 */
#include <math.h>
#include <string.h>

#include "engine_int.h"
#include "ml/baseline.h"
#include "ml/features.h"
#include "tsdb/base/sm_alloc.h"

#define TRAIN_STEPS 10080     /* steps over the training window at most */
#define SEGMENT_MS 86400000LL /* refit at least daily */

static int training_window(ev_ctx *c, const promql_call *pc, int64_t *ms) {
    *ms = 7 * 86400000LL;
    if (pc->nargs < 2) return 0;
    const promql_node *a = ev_unparen(pc->args[1]);
    if (a->kind != PN_STRING || promql_parse_duration(a->u.string.s, a->u.string.len, ms) || *ms <= 0)
        return ev_exec_err(c, "%s: the training window must be a duration string such as \"1w\" or \"3d\"",
                           pc->func->name);
    if (*ms < 3600000) return ev_exec_err(c, "%s: the training window must be at least 1h", pc->func->name);
    return 0;
}

/* Find series of `m` by label set. */
static int index_series(ev_ctx *c, const ev_mat *m, ev_map *map) {
    int rc = ev_map_init(c, map, m->n);
    if (rc) return rc;
    for (size_t i = 0; i < m->n; i++) {
        bool found;
        uint32_t *slot = ev_map_put(c, map, sm_labels_hash(&m->s[i].lbl), &found);
        if (!slot) return ev_nomem(c);
        if (!found) *slot = (uint32_t)i;
    }
    return 0;
}

int eval_anomaly(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out) {
    const promql_call *pc = &n->u.call;
    promql_func_id f = pc->func->id;
    int64_t window;
    int rc = training_window(c, pc, &window);
    if (rc) return rc;

    /* The values on the query's grid. */
    ev_val cur;
    if ((rc = ev_eval(c, pc->args[0], g, &cur))) return rc;
    out->type = PROMQL_VECTOR;
    out->m.s = NULL;
    out->m.n = 0;
    if (!cur.m.n) return 0;

    /* The training grid: from the first segment's window to the query's
     * end, ending exactly at g->end. */
    int64_t tstep = g->step;
    int64_t want = (window + TRAIN_STEPS - 1) / TRAIN_STEPS;
    want = (want + 999) / 1000 * 1000;
    if (tstep < want) tstep = want;
    ev_grid tg;
    size_t k = (size_t)((g->end - (g->start - window)) / tstep) + 1;
    tg.step = tstep;
    tg.end = g->end;
    tg.start = g->end - (sm_ms_t)(k - 1) * tstep;
    tg.n = k;
    ev_val tr;
    if ((rc = ev_eval(c, pc->args[0], &tg, &tr))) return rc;
    ev_map tmap;
    if ((rc = index_series(c, &tr.m, &tmap))) return rc;

    /* Dense column-major training matrix: one column per series of `cur`
     * (NaN where absent), over the training grid. */
    size_t m = cur.m.n, ldy = tg.n;
    if ((rc = ev_hold(c, (uint64_t)m * ldy))) return rc;
    double *y = sm_malloc(m * ldy * sizeof *y);
    sm_ms_t *tt = sm_malloc(ldy * sizeof *tt);
    if (!y || !tt) {
        sm_free(y);
        sm_free(tt);
        return ev_nomem(c);
    }
    for (size_t i = 0; i < m * ldy; i++) y[i] = NAN;
    for (size_t i = 0; i < ldy; i++) tt[i] = ev_step_time(&tg, i);
    for (size_t j = 0; j < m; j++) {
        uint32_t *slot = ev_map_get(&tmap, sm_labels_hash(&cur.m.s[j].lbl));
        if (!slot) continue;
        const ev_series *ts = &tr.m.s[*slot];
        for (uint32_t p = 0; p < ts->n; p++)
            if (!ev_is_stale(ts->p[p].v)) y[j * ldy + ev_step_index(&tg, ts->p[p].t)] = ts->p[p].v;
    }

    ev_out o;
    if ((rc = ev_out_init(&o, c, g, m))) goto done;
    ml_baseline_opts bo;
    ml_baseline_opts_default(&bo);
    uint32_t *pos = sm_arena_calloc(c->a, m, sizeof *pos);
    sm_labels *lbl = sm_arena_alloc(c->a, m * sizeof *lbl);
    uint64_t *hash = sm_arena_alloc(c->a, m * sizeof *hash);
    if (!pos || !lbl || !hash) {
        rc = ev_nomem(c);
        goto done;
    }
    for (size_t j = 0; j < m; j++) {
        if ((rc = ev_labels_without(c, &cur.m.s[j].lbl, SM_METRIC_NAME_LABEL, &lbl[j]))) goto done;
        hash[j] = sm_labels_hash(&lbl[j]);
    }
    for (sm_ms_t seg = g->start; seg <= g->end; seg += SEGMENT_MS) {
        sm_ms_t seg_end = seg + SEGMENT_MS - 1 < g->end ? seg + SEGMENT_MS - 1 : g->end;
        /* Training rows: [seg - window, seg). */
        size_t lo = 0, hi = 0;
        while (lo < ldy && tt[lo] < seg - window) lo++;
        hi = lo;
        while (hi < ldy && tt[hi] < seg) hi++;
        if (hi - lo < 8) continue; /* cold start: not enough history */
        ml_baseline_t *b = NULL;
        sm_error ferr = {0};
        if (ml_baseline_fit(tt + lo, hi - lo, y + lo, m, ldy, &bo, &b, &ferr)) {
            rc = ferr.code == SM_ENOMEM ? ev_nomem(c) : ev_exec_err(c, "%s: %s", pc->func->name, ferr.msg);
            goto done;
        }
        for (size_t j = 0; j < m; j++) {
            const ev_series *s = &cur.m.s[j];
            if (ml_baseline_count(b, j) == 0) continue;
            double scale = ml_baseline_scale(b, j);
            while (pos[j] < s->n && s->p[pos[j]].t <= seg_end) {
                const promql_point *pt = &s->p[pos[j]++];
                if (pt->t < seg || ev_is_stale(pt->v)) continue;
                double ex, lw, up, v;
                ml_baseline_predict(b, j, pt->t, &ex, &lw, &up);
                switch (f) {
                case PF_BASELINE_EXPECTED: v = ex; break;
                case PF_BASELINE_LOWER: v = lw; break;
                case PF_BASELINE_UPPER: v = up; break;
                default: v = isnan(pt->v) ? NAN : ml_features_residual_score((pt->v - ex) / scale, bo.z); break;
                }
                if (isnan(v)) continue;
                if ((rc = ev_out_add(&o, &lbl[j], hash[j], false, pt->t, v))) {
                    ml_baseline_free(b);
                    goto done;
                }
            }
        }
        ml_baseline_free(b);
        if ((rc = ev_check_time(c))) goto done;
    }
    ev_out_finish(&o, &out->m);
done:
    ev_release(c, (uint64_t)m * ldy);
    sm_free(y);
    sm_free(tt);
    return rc;
}
