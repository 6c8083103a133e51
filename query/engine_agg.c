/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_agg.c - PromQL aggregations (sum min max avg group stddev stdvar
 * count count_values bottomk topk quantile) with by/without, evaluated
 * step by step as Prometheus 2.42's aggregation() does.
 *
 * Each input series gets its grouping key once (a 64-bit hash of the by
 * labels, or of all labels but the without labels and __name__), and each
 * key its output series once, so a step costs one map probe per sample.
 * Arithmetic follows 2.42 exactly: avg is the incremental mean
 * mean += v/n - mean/n with its infinity special cases, stddev/stdvar are
 * Welford's running variance divided by n, min/max replace a NaN, topk and
 * bottomk keep the input series' labels and emit each group's members
 * in the order 2.42's heap and sort give (descending for topk, ascending
 * for bottomk, NaN last), groups in order of first appearance, and count_values labels its output with Go's
 * shortest 'f' formatting of the value.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "json.h"

typedef struct group {
    uint32_t out;   /* output series index, or UINT32_MAX (topk/bottomk) */
    double value, mean;
    uint64_t count;
    uint32_t first, nmem; /* members in the step's order array */
} group;

typedef ev_sortent member; /* idx: the input series */

/* topk and bottomk keep each group's candidates in a binary heap exactly
 * as Go's container/heap does over 2.42's vectorByValueHeap (topk) or
 * vectorByReverseValueHeap (bottomk), then sort it as sort.Sort does with
 * the reversed order (ev_go_sort), so that ties and NaNs come out in
 * Prometheus's order. */
static bool heap_less(const member *h, size_t i, size_t j, bool top) {
    if (isnan(h[i].v)) return true;
    return top ? h[i].v < h[j].v : h[i].v > h[j].v;
}

static void heap_swap(member *h, size_t i, size_t j) {
    member t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_up(member *h, size_t j, bool top) {
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (!heap_less(h, j, i, top)) break;
        heap_swap(h, i, j);
        j = i;
    }
}

static void heap_down(member *h, size_t i, size_t n, bool top) {
    for (;;) {
        size_t j1 = 2 * i + 1;
        if (j1 >= n) break;
        size_t j = j1;
        if (j1 + 1 < n && heap_less(h, j1 + 1, j1, top)) j = j1 + 1;
        if (!heap_less(h, j, i, top)) break;
        heap_swap(h, i, j);
        i = j;
    }
}

/* The k best of m[0..n) into h; returns how many, in output order. */
static size_t select_k(const member *m, size_t n, uint64_t k, bool top, member *h) {
    size_t len = 1;
    h[0] = m[0];
    for (size_t x = 1; x < n; x++) {
        bool better = top ? h[0].v < m[x].v : h[0].v > m[x].v;
        if (!(len < k || better || isnan(h[0].v))) continue;
        if (len == k) {
            if (k == 1) {
                h[0] = m[x];
                continue;
            }
            heap_swap(h, 0, len - 1);
            heap_down(h, 0, len - 1, top);
            len--;
        }
        h[len++] = m[x];
        heap_up(h, len - 1, top);
    }
    ev_go_sort(h, len, !top);
    return len;
}

/* Output labels of a group. */
static int group_labels(ev_ctx *c, const sm_labels *ls, const promql_aggregate *ag,
                        const char *const *grouping, size_t ng, sm_labels *out) {
    sm_label *v = sm_arena_alloc(c->a, (ls->n ? ls->n : 1) * sizeof *v);
    if (!v) return ev_nomem(c);
    uint32_t n = 0;
    for (uint32_t i = 0; i < ls->n; i++) {
        const char *nm = ls->v[i].name;
        bool in = ev_name_in(nm, grouping, ng);
        if (ag->without) {
            if (in || strcmp(nm, SM_METRIC_NAME_LABEL) == 0) continue;
        } else if (!in) {
            continue;
        }
        v[n++] = ls->v[i];
    }
    out->v = v;
    out->n = n;
    return 0;
}

int ev_aggregate(ev_ctx *c, const promql_node *node, const ev_grid *g, ev_val *out) {
    const promql_aggregate *ag = &node->u.agg;
    promql_aggop op = ag->op;
    int rc;
    double *param = NULL;
    const char *vlabel = NULL;
    if (ag->param) {
        ev_val pv;
        rc = ev_eval(c, ag->param, g, &pv);
        if (rc) return rc;
        if (op == PA_COUNT_VALUES) {
            if (pv.type != PROMQL_STRING) return ev_exec_err(c, "count_values needs a string");
            vlabel = pv.str;
        } else {
            if (pv.type != PROMQL_SCALAR) return ev_exec_err(c, "aggregation parameter must be a scalar");
            param = pv.sc;
        }
    }
    ev_val in;
    rc = ev_eval(c, ag->expr, g, &in);
    if (rc) return rc;
    if (op == PA_COUNT_VALUES && !sm_label_name_valid(vlabel))
        return ev_exec_err(c, "invalid label name \"%s\"", vlabel);
    const ev_mat *m = &in.m;

    /* Grouping names; count_values by(...) also groups by its label. */
    size_t ng = ag->ngrouping;
    const char **grouping = sm_arena_alloc(c->a, (ng + 1) * sizeof *grouping);
    if (!grouping) return ev_nomem(c);
    for (size_t i = 0; i < ng; i++) grouping[i] = ag->grouping[i];
    bool recompute = false;
    if (op == PA_COUNT_VALUES) {
        recompute = true;
        if (!ag->without) grouping[ng++] = vlabel;
    }
    uint64_t *key = sm_arena_alloc(c->a, (m->n ? m->n : 1) * sizeof *key);
    if (!key) return ev_nomem(c);
    for (size_t i = 0; i < m->n; i++)
        key[i] = ev_labels_hash_subset(&m->s[i].lbl, grouping, ng, !ag->without, true);

    ev_cursor k;
    rc = ev_cursor_init(c, &k, m);
    if (rc) return rc;
    size_t cap = m->n + 1;
    uint32_t *idx = sm_arena_alloc(c->a, cap * sizeof *idx);
    double *vals = sm_arena_alloc(c->a, cap * sizeof *vals);
    uint32_t *gof = sm_arena_alloc(c->a, cap * sizeof *gof);
    group *gs = sm_arena_alloc(c->a, cap * sizeof *gs);
    member *mem = sm_arena_alloc(c->a, cap * sizeof *mem);
    member *heap = sm_arena_alloc(c->a, cap * sizeof *heap);
    double *qv = sm_arena_alloc(c->a, cap * sizeof *qv);
    sm_labels *cvl = NULL;
    if (recompute) cvl = sm_arena_alloc(c->a, cap * sizeof *cvl);
    if (!idx || !vals || !gof || !gs || !mem || !heap || !qv || (recompute && !cvl)) return ev_nomem(c);
    ev_map step_groups, key_out;
    rc = ev_map_init(c, &step_groups, cap);
    if (!rc) rc = ev_map_init(c, &key_out, cap);
    if (rc) return rc;
    ev_out o;
    rc = ev_out_init(&o, c, g, cap);
    if (rc) return rc;
    bool members = op == PA_TOPK || op == PA_BOTTOMK || op == PA_QUANTILE;

    for (size_t st = 0; st < g->n; st++) {
        sm_ms_t ts = ev_step_time(g, st);
        size_t n = ev_cursor_step(&k, ts, idx, vals);
        rc = ev_tick(c, n);
        if (rc) return rc;
        int64_t kk = 0;
        if (op == PA_TOPK || op == PA_BOTTOMK) {
            double f = param[st];
            if (!(f >= -9223372036854775808.0 && f <= 9223372036854775807.0)) {
                char fb[64];
                ev_format_go_g(f, fb, sizeof fb);
                return ev_exec_err(c, "Scalar value %s overflows int64", fb);
            }
            kk = (int64_t)f;
            if (kk < 1) continue;
        }
        ev_map_clear(&step_groups);
        size_t ngroups = 0;
        for (size_t j = 0; j < n; j++) {
            const ev_series *s = &m->s[idx[j]];
            double v = vals[j];
            uint64_t gk = key[idx[j]];
            const sm_labels *ml = &s->lbl;
            if (recompute) {
                char buf[400]; /* Go's FormatFloat(v, 'f', -1, 64), 1e-300 included */
                json_format_value(v, buf);
                char *vs = sm_arena_strdup(c->a, buf);
                if (!vs) return ev_nomem(c);
                rc = ev_labels_set(c, &s->lbl, vlabel, vs, &cvl[j]);
                if (rc) return rc;
                ml = &cvl[j];
                gk = ev_labels_hash_subset(ml, grouping, ng, !ag->without, true);
            }
            bool found;
            uint32_t *slot = ev_map_put(c, &step_groups, gk, &found);
            if (!slot) return ev_nomem(c);
            if (!found) {
                *slot = (uint32_t)ngroups;
                group *gr = &gs[ngroups++];
                gr->value = v;
                gr->mean = v;
                gr->count = 1;
                gr->nmem = 0;
                gr->out = UINT32_MAX;
                if (op == PA_STDDEV || op == PA_STDVAR) gr->value = 0;
                if (op == PA_GROUP) gr->value = 1;
                if (!members || op == PA_QUANTILE) {
                    uint32_t *os = ev_map_put(c, &key_out, gk, &found);
                    if (!os) return ev_nomem(c);
                    if (!found) {
                        sm_labels gl;
                        rc = group_labels(c, ml, ag, grouping, ng, &gl);
                        if (rc) return rc;
                        size_t oi;
                        rc = ev_out_series(&o, &gl, sm_labels_hash(&gl), false, &oi);
                        if (rc) return rc;
                        *os = (uint32_t)oi;
                    }
                    gr->out = *os;
                }
                gof[j] = *slot;
                continue;
            }
            gof[j] = *slot;
            group *gr = &gs[*slot];
            switch (op) {
            case PA_SUM: gr->value += v; break;
            case PA_AVG:
                gr->count++;
                if (isinf(gr->mean)) {
                    if (isinf(v) && (gr->mean > 0) == (v > 0)) break;
                    if (!isinf(v) && !isnan(v)) break;
                }
                gr->mean += v / (double)gr->count - gr->mean / (double)gr->count;
                break;
            case PA_MAX:
                if (gr->value < v || isnan(gr->value)) gr->value = v;
                break;
            case PA_MIN:
                if (gr->value > v || isnan(gr->value)) gr->value = v;
                break;
            case PA_COUNT:
            case PA_COUNT_VALUES: gr->count++; break;
            case PA_STDDEV:
            case PA_STDVAR: {
                gr->count++;
                double delta = v - gr->mean;
                gr->mean += delta / (double)gr->count;
                gr->value += delta * (v - gr->mean);
                break;
            }
            default: break;
            }
        }
        if (members) {
            /* Bucket the step's samples by group (counting sort). */
            for (size_t q = 0; q < ngroups; q++) gs[q].nmem = 0;
            for (size_t j = 0; j < n; j++) gs[gof[j]].nmem++;
            uint32_t acc = 0;
            for (size_t q = 0; q < ngroups; q++) {
                gs[q].first = acc;
                acc += gs[q].nmem;
                gs[q].nmem = 0;
            }
            for (size_t j = 0; j < n; j++) {
                group *gr = &gs[gof[j]];
                mem[gr->first + gr->nmem].idx = idx[j];
                mem[gr->first + gr->nmem].v = vals[j];
                gr->nmem++;
            }
        }
        for (size_t q = 0; q < ngroups; q++) {
            group *gr = &gs[q];
            double v = gr->value;
            switch (op) {
            case PA_AVG: v = gr->mean; break;
            case PA_COUNT:
            case PA_COUNT_VALUES: v = (double)gr->count; break;
            case PA_STDVAR: v = gr->value / (double)gr->count; break;
            case PA_STDDEV: v = sqrt(gr->value / (double)gr->count); break;
            case PA_QUANTILE:
                for (uint32_t j = 0; j < gr->nmem; j++) qv[j] = mem[gr->first + j].v;
                v = fn_quantile(param[st], qv, gr->nmem);
                break;
            case PA_TOPK:
            case PA_BOTTOMK: {
                member *hb = &heap[gr->first];
                size_t take = select_k(&mem[gr->first], gr->nmem, (uint64_t)kk, op == PA_TOPK, hb);
                for (size_t j = 0; j < take; j++) {
                    const ev_series *s = &m->s[hb[j].idx];
                    rc = ev_out_add(&o, &s->lbl, s->hash, false, ts, hb[j].v);
                    if (rc) return rc;
                }
                continue;
            }
            default: break;
            }
            ev_series *os = &o.s[gr->out];
            if (os->n && os->p[os->n - 1].t == ts)
                return ev_exec_err(c, "vector cannot contain metrics with the same labelset");
            if (os->n == 0 && g->n > 1) {
                rc = ev_series_reserve(c, os, g->n < 64 ? (uint32_t)g->n : 16);
                if (rc) return rc;
            }
            rc = ev_series_push(c, os, ts, v);
            if (rc) return rc;
            rc = ev_hold(c, 1);
            if (rc) return rc;
        }
    }
    out->type = PROMQL_VECTOR;
    ev_out_finish(&o, &out->m);
    return 0;
}
