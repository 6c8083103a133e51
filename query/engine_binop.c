/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_binop.c - PromQL's binary operators, as Prometheus 2.42 computes
 * them: scalar-scalar, vector-scalar (series by series: the scalar has a
 * value at every step) and vector-vector (step by step: which series match
 * depends on which are present), with on/ignoring, group_left/right, the
 * bool modifier, comparison filtering that keeps the left value, and the
 * set operators and/or/unless.  __name__ is dropped by arithmetic and by
 * comparisons with bool.  Matching uses 64-bit signatures of the matching
 * labels, computed once per input series; the "one" side's signatures go
 * into an O(1)-cleared map at each step.  Errors use Prometheus's words.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine_int.h"
#include "tsdb/base/sm_alloc.h"

static double btos(bool b) { return b ? 1.0 : 0.0; }

/* value, keep */
static bool elem_binop(promql_binop op, double l, double r, double *out) {
    switch (op) {
    case PB_ADD: *out = l + r; return true;
    case PB_SUB: *out = l - r; return true;
    case PB_MUL: *out = l * r; return true;
    case PB_DIV: *out = l / r; return true;
    case PB_POW: *out = pow(l, r); return true;
    case PB_MOD: *out = fmod(l, r); return true;
    case PB_ATAN2: *out = atan2(l, r); return true;
    case PB_EQL: *out = l; return l == r;
    case PB_NEQ: *out = l; return l != r;
    case PB_GTR: *out = l; return l > r;
    case PB_LSS: *out = l; return l < r;
    case PB_GTE: *out = l; return l >= r;
    case PB_LTE: *out = l; return l <= r;
    default: *out = 0; return false;
    }
}

static double scalar_binop(promql_binop op, double l, double r) {
    double v;
    bool keep = elem_binop(op, l, r, &v);
    if (promql_binop_is_comparison(op)) return btos(keep);
    return v;
}

static bool drops_name(promql_binop op) {
    switch (op) {
    case PB_ADD: case PB_SUB: case PB_MUL: case PB_DIV: case PB_POW: case PB_MOD: return true;
    default: return false; /* atan2 keeps it in 2.42 */
    }
}

/* b's operator on one matched pair: `a` is the vector element (vector op
 * scalar) or the "many" side's value, `o` the other operand; swap says the
 * other operand was written on the left.  Returns whether the element is
 * kept (always with bool, which gives 0 or 1).  A filtering comparison
 * yields the written left side's value, except that a scalar on the left
 * of a vector yields the vector's (keep_vector_value). */
static bool pair_op(const promql_binary *b, double a, double o, bool swap, bool keep_vector_value,
                    double *out) {
    double v;
    bool keep = elem_binop(b->op, swap ? o : a, swap ? a : o, &v);
    if (keep_vector_value && swap && promql_binop_is_comparison(b->op)) v = a;
    if (b->return_bool) {
        *out = btos(keep);
        return true;
    }
    *out = v;
    return keep;
}

static int vector_scalar(ev_ctx *c, const promql_binary *b, ev_val *vec, const double *sc,
                         bool swap, const ev_grid *g, ev_val *out) {
    bool drop = drops_name(b->op) || b->return_bool;
    ev_mat m = vec->m;
    size_t k = 0;
    for (size_t i = 0; i < m.n; i++) {
        ev_series *s = &m.s[i];
        uint32_t j = 0;
        for (uint32_t p = 0; p < s->n; p++) {
            double v;
            if (!pair_op(b, s->p[p].v, sc[ev_step_index(g, s->p[p].t)], swap, true, &v)) continue;
            s->p[j].t = s->p[p].t;
            s->p[j].v = v;
            j++;
        }
        s->n = j;
        if (!j) continue;
        if (drop) {
            int rc = ev_labels_without(c, &s->lbl, SM_METRIC_NAME_LABEL, &s->lbl);
            if (rc) return rc;
        }
        m.s[k++] = *s;
    }
    m.n = k;
    out->type = PROMQL_VECTOR;
    out->m = m;
    if (!drop) return 0;
    return ev_mat_dedupe(c, g, &out->m, false);
}

/* Per-series signatures for matching. */
static int signatures(ev_ctx *c, const ev_mat *m, const promql_matching *mt, uint64_t **out) {
    uint64_t *sig = sm_arena_alloc(c->a, (m->n ? m->n : 1) * sizeof *sig);
    if (!sig) return ev_nomem(c);
    for (size_t i = 0; i < m->n; i++)
        sig[i] = ev_labels_hash_subset(&m->s[i].lbl, mt->labels, mt->nlabels, mt->on, true);
    *out = sig;
    return 0;
}

/* Labels of the matching group, for the duplicate-series error. */
static int match_labels(ev_ctx *c, const sm_labels *ls, const promql_matching *mt,
                        sm_labels *out) {
    sm_label *v = sm_arena_alloc(c->a, (ls->n ? ls->n : 1) * sizeof *v);
    if (!v) return ev_nomem(c);
    uint32_t n = 0;
    for (uint32_t i = 0; i < ls->n; i++) {
        bool in = ev_name_in(ls->v[i].name, mt->labels, mt->nlabels);
        if (mt->on ? in : (!in && strcmp(ls->v[i].name, SM_METRIC_NAME_LABEL) != 0))
            v[n++] = ls->v[i];
    }
    out->v = v;
    out->n = n;
    return 0;
}

/* Prometheus's resultMetric: the output label set of a matched pair
 * (l is the "many" side, r the "one" side), in its order: arithmetic drops
 * the name, one-to-one keeps the on() labels or drops the ignoring() ones,
 * group_x(...) labels come from r (so group_left(__name__) brings r's name
 * back), and only then does bool drop the name. */
static void result_labels(const promql_binary *b, const sm_labels *l, const sm_labels *r,
                          sm_label *buf, sm_labels *out) {
    const promql_matching *mt = &b->match;
    bool drop = drops_name(b->op) || b->return_bool;
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const char *nm = l->v[i].name;
        if (drop && strcmp(nm, SM_METRIC_NAME_LABEL) == 0) continue;
        if (mt->card == PROMQL_CARD_ONE_TO_ONE) {
            bool in = ev_name_in(nm, mt->labels, mt->nlabels);
            if (mt->on ? !in : in) continue;
        }
        if (ev_name_in(nm, mt->include, mt->ninclude)) continue; /* set below */
        buf[n++] = l->v[i];
    }
    sm_labels base = {.v = buf, .n = n};
    for (size_t i = 0; i < mt->ninclude; i++) {
        const char *nm = mt->include[i];
        if (b->return_bool && strcmp(nm, SM_METRIC_NAME_LABEL) == 0) continue;
        const char *v = sm_labels_get(r, nm);
        if (v && *v) {
            /* insert keeping order */
            uint32_t j = base.n;
            while (j > 0 && strcmp(base.v[j - 1].name, nm) > 0) {
                base.v[j] = base.v[j - 1];
                j--;
            }
            base.v[j].name = nm;
            base.v[j].value = v;
            base.n++;
        }
    }
    *out = base;
}

static int vector_vector(ev_ctx *c, const promql_binary *b, const ev_mat *lm, const ev_mat *rm,
                         const ev_grid *g, ev_val *out) {
    const promql_matching *mt = &b->match;
    uint64_t *lsig, *rsig;
    int rc = signatures(c, lm, mt, &lsig);
    if (rc) return rc;
    rc = signatures(c, rm, mt, &rsig);
    if (rc) return rc;
    ev_cursor lk, rk;
    rc = ev_cursor_init(c, &lk, lm);
    if (rc) return rc;
    rc = ev_cursor_init(c, &rk, rm);
    if (rc) return rc;
    size_t maxn = (lm->n > rm->n ? lm->n : rm->n) + 1;
    uint32_t *li = sm_arena_alloc(c->a, lm->n * sizeof *li + 4);
    double *lv = sm_arena_alloc(c->a, lm->n * sizeof *lv + 8);
    uint32_t *ri = sm_arena_alloc(c->a, rm->n * sizeof *ri + 4);
    double *rv = sm_arena_alloc(c->a, rm->n * sizeof *rv + 8);
    sm_label *lbuf = NULL;
    size_t lbufcap = 0;
    for (size_t i = 0; i < lm->n; i++)
        if (lm->s[i].lbl.n > lbufcap) lbufcap = lm->s[i].lbl.n;
    for (size_t i = 0; i < rm->n; i++)
        if (rm->s[i].lbl.n > lbufcap) lbufcap = rm->s[i].lbl.n;
    lbufcap += mt->ninclude + 1;
    lbuf = sm_arena_alloc(c->a, lbufcap * sizeof *lbuf);
    if (!li || !lv || !ri || !rv || !lbuf) return ev_nomem(c);
    /* pairs: (many-side series, one-side series) -> output series + 1,
     * across steps, so a pair's labels are built and hashed once. */
    ev_map side, matched, inserted, pairs;
    rc = ev_map_init(c, &side, maxn);
    if (!rc) rc = ev_map_init(c, &matched, maxn);
    if (!rc) rc = ev_map_init(c, &inserted, maxn);
    if (!rc) rc = ev_map_init(c, &pairs, maxn);
    if (rc) return rc;
    ev_out o;
    rc = ev_out_init(&o, c, g, maxn);
    if (rc) return rc;
    bool set_op = promql_binop_is_set(b->op);
    bool swap = mt->card == PROMQL_CARD_ONE_TO_MANY;

    for (size_t st = 0; st < g->n; st++) {
        sm_ms_t ts = ev_step_time(g, st);
        size_t nl = ev_cursor_step(&lk, ts, li, lv);
        size_t nr = ev_cursor_step(&rk, ts, ri, rv);
        rc = ev_tick(c, nl + nr);
        if (rc) return rc;
        ev_map_clear(&side);
        bool found;
        if (set_op) {
            if (b->op == PB_AND) {
                if (!nl || !nr) continue;
                for (size_t j = 0; j < nr; j++)
                    if (!ev_map_put(c, &side, rsig[ri[j]], &found)) return ev_nomem(c);
                for (size_t j = 0; j < nl; j++) {
                    if (!ev_map_get(&side, lsig[li[j]])) continue;
                    const ev_series *s = &lm->s[li[j]];
                    rc = ev_out_add(&o, &s->lbl, s->hash, false, ts, lv[j]);
                    if (rc) return rc;
                }
            } else if (b->op == PB_OR) {
                for (size_t j = 0; j < nl; j++) {
                    if (!ev_map_put(c, &side, lsig[li[j]], &found)) return ev_nomem(c);
                    const ev_series *s = &lm->s[li[j]];
                    rc = ev_out_add(&o, &s->lbl, s->hash, false, ts, lv[j]);
                    if (rc) return rc;
                }
                for (size_t j = 0; j < nr; j++) {
                    if (nl && ev_map_get(&side, rsig[ri[j]])) continue;
                    const ev_series *s = &rm->s[ri[j]];
                    rc = ev_out_add(&o, &s->lbl, s->hash, false, ts, rv[j]);
                    if (rc) return rc;
                }
            } else { /* unless */
                for (size_t j = 0; j < nr; j++)
                    if (!ev_map_put(c, &side, rsig[ri[j]], &found)) return ev_nomem(c);
                for (size_t j = 0; j < nl; j++) {
                    if (nr && ev_map_get(&side, lsig[li[j]])) continue;
                    const ev_series *s = &lm->s[li[j]];
                    rc = ev_out_add(&o, &s->lbl, s->hash, false, ts, lv[j]);
                    if (rc) return rc;
                }
            }
            continue;
        }
        if (!nl || !nr) continue;
        /* "many" side m*, "one" side o*. */
        const ev_mat *mm = swap ? rm : lm, *om = swap ? lm : rm;
        const uint32_t *mi = swap ? ri : li, *oi = swap ? li : ri;
        const double *mv = swap ? rv : lv, *ov = swap ? lv : rv;
        const uint64_t *msig = swap ? rsig : lsig, *osig = swap ? lsig : rsig;
        size_t nm = swap ? nr : nl, no = swap ? nl : nr;
        for (size_t j = 0; j < no; j++) {
            uint32_t *slot = ev_map_put(c, &side, osig[oi[j]], &found);
            if (!slot) return ev_nomem(c);
            if (found) {
                const sm_labels *dup = &om->s[oi[*slot]].lbl, *cur = &om->s[oi[j]].lbl;
                sm_labels ml;
                rc = match_labels(c, cur, mt, &ml);
                if (rc) return rc;
                char a[512], x[512], y[512];
                ev_labels_go_string(&ml, a, sizeof a);
                ev_labels_go_string(cur, x, sizeof x);
                ev_labels_go_string(dup, y, sizeof y);
                return ev_exec_err(c,
                                   "found duplicate series for the match group %s on the %s "
                                   "hand-side of the operation: [%s, %s];many-to-many matching "
                                   "not allowed: matching labels must be unique on one side",
                                   a, swap ? "left" : "right", x, y);
            }
            *slot = (uint32_t)j; /* position in this step's one side */
        }
        ev_map_clear(&matched);
        ev_map_clear(&inserted);
        for (size_t j = 0; j < nm; j++) {
            uint64_t sg = msig[mi[j]];
            uint32_t *slot = ev_map_get(&side, sg);
            if (!slot) continue;
            size_t oj = *slot;
            uint32_t oidx = oi[oj];
            double v;
            if (!pair_op(b, mv[j], ov[oj], swap, false, &v)) continue;
            uint64_t pk = ((uint64_t)mi[j] << 32) | oidx;
            uint32_t *ps = ev_map_put(c, &pairs, pk, &found);
            if (!ps) return ev_nomem(c);
            if (!found) {
                sm_labels rl;
                result_labels(b, &mm->s[mi[j]].lbl, &om->s[oidx].lbl, lbuf, &rl);
                size_t oi_out;
                rc = ev_out_series(&o, &rl, sm_labels_hash(&rl), true, &oi_out);
                if (rc) return rc;
                ps = ev_map_get(&pairs, pk); /* ev_out_series does not touch pairs */
                *ps = (uint32_t)oi_out;
            }
            size_t out_idx = *ps;
            uint64_t h = o.s[out_idx].hash;
            if (mt->card == PROMQL_CARD_ONE_TO_ONE) {
                ev_map_put(c, &matched, sg, &found);
                if (found)
                    return ev_exec_err(c, "multiple matches for labels: many-to-one matching "
                                          "must be explicit (group_left/group_right)");
            } else {
                uint64_t key = h ^ (sg * 0x9e3779b97f4a7c15ULL);
                if (!ev_map_put(c, &inserted, key, &found)) return ev_nomem(c);
                if (found)
                    return ev_exec_err(
                        c, "multiple matches for labels: grouping labels must ensure unique matches");
            }
            rc = ev_out_push(&o, out_idx, ts, v);
            if (rc) return rc;
        }
    }
    out->type = PROMQL_VECTOR;
    ev_out_finish(&o, &out->m);
    return 0;
}

int ev_binary(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out) {
    const promql_binary *b = &n->u.bin;
    ev_val l, r;
    int rc = ev_eval(c, b->lhs, g, &l);
    if (rc) return rc;
    rc = ev_eval(c, b->rhs, g, &r);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    if (l.type == PROMQL_SCALAR && r.type == PROMQL_SCALAR) {
        out->type = PROMQL_SCALAR;
        out->sc = l.sc;
        for (size_t i = 0; i < g->n; i++) out->sc[i] = scalar_binop(b->op, l.sc[i], r.sc[i]);
        return 0;
    }
    if (l.type == PROMQL_VECTOR && r.type == PROMQL_SCALAR)
        return vector_scalar(c, b, &l, r.sc, false, g, out);
    if (l.type == PROMQL_SCALAR && r.type == PROMQL_VECTOR)
        return vector_scalar(c, b, &r, l.sc, true, g, out);
    if (l.type == PROMQL_VECTOR && r.type == PROMQL_VECTOR)
        return vector_vector(c, b, &l.m, &r.m, g, out);
    return ev_exec_err(c, "binary operator %s not defined between %s and %s",
                       promql_binop_name(b->op), promql_type_name(l.type),
                       promql_type_name(r.type));
}
