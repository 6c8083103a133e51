/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_func.c - PromQL function calls: dispatch, and the functions that
 * work on label sets or on whole vectors rather than on one value or one
 * window (those are query/functions.c's pure arithmetic): absent,
 * label_replace (PCRE2, fully anchored, Go's Regexp.Expand template rules),
 * label_join, sort, sort_desc, scalar, vector, time, pi, timestamp,
 * histogram_quantile (buckets grouped by their labels without `le`, le read
 * with Go's ParseFloat rules), and the native-histogram functions, which
 * are empty on float data.  Element-wise functions run series by series
 * (their scalar arguments have a value at every step) and drop __name__,
 * as every math function does in Prometheus 2.42; range functions are in
 * engine_select.c, anomaly_* in engine_anomaly.c.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "tsdb/base/sm_alloc.h"

static int eval_scalar_args(ev_ctx *c, const promql_call *pc, size_t from, const ev_grid *g,
                            double **sargs, size_t *ns) {
    *ns = 0;
    for (size_t i = from; i < pc->nargs; i++) {
        ev_val v;
        int rc = ev_eval(c, pc->args[i], g, &v);
        if (rc) return rc;
        if (v.type != PROMQL_SCALAR) return ev_exec_err(c, "expected a scalar argument");
        sargs[(*ns)++] = v.sc;
    }
    return 0;
}

static int scalar_out(ev_ctx *c, const ev_grid *g, ev_val *out) {
    out->type = PROMQL_SCALAR;
    out->sc = sm_arena_alloc(c->a, (g->n ? g->n : 1) * sizeof *out->sc);
    return out->sc ? 0 : ev_nomem(c);
}

static int elementwise(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    promql_func_id f = pc->func->id;
    if (pc->nargs == 0) {
        /* days_in_month() etc.: vector(time()), seconds truncated. */
        ev_series *s = sm_arena_calloc(c->a, 1, sizeof *s);
        if (!s) return ev_nomem(c);
        int rc = ev_series_reserve(c, s, (uint32_t)g->n);
        if (rc) return rc;
        for (size_t st = 0; st < g->n; st++) {
            sm_ms_t ts = ev_step_time(g, st);
            double v;
            if (fn_elem_eval(f, (double)(ts / 1000), NULL, 0, &v) == 1) {
                s->p[s->n].t = ts;
                s->p[s->n++].v = v;
            }
        }
        out->type = PROMQL_VECTOR;
        out->m.s = s;
        out->m.n = s->n ? 1 : 0;
        return ev_hold(c, s->n);
    }
    ev_val in;
    int rc = ev_eval(c, pc->args[0], g, &in);
    if (rc) return rc;
    double *sargs[PROMQL_MAX_FUNC_ARGS];
    size_t ns;
    rc = eval_scalar_args(c, pc, 1, g, sargs, &ns);
    if (rc) return rc;
    size_t k = 0;
    for (size_t i = 0; i < in.m.n; i++) {
        ev_series *s = &in.m.s[i];
        uint32_t j = 0;
        for (uint32_t p = 0; p < s->n; p++) {
            size_t st = ev_step_index(g, s->p[p].t);
            double a[PROMQL_MAX_FUNC_ARGS];
            for (size_t q = 0; q < ns; q++) a[q] = sargs[q][st];
            double v;
            int frc = fn_elem_eval(f, s->p[p].v, a, ns, &v);
            if (frc < 0) return ev_exec_err(c, "function %s cannot be evaluated", pc->func->name);
            if (frc == 0) continue;
            s->p[j].t = s->p[p].t;
            s->p[j++].v = v;
        }
        s->n = j;
        if (!j) continue;
        rc = ev_labels_without(c, &s->lbl, SM_METRIC_NAME_LABEL, &s->lbl);
        if (rc) return rc;
        in.m.s[k++] = *s;
    }
    in.m.n = k;
    *out = in;
    out->type = PROMQL_VECTOR;
    return ev_mat_dedupe(c, g, &out->m, false);
}

int ev_absent_labels(ev_ctx *c, const promql_node *arg, sm_labels *out) {
    arg = ev_unparen(arg);
    out->v = NULL;
    out->n = 0;
    const promql_vector_sel *vs;
    if (arg->kind == PN_VECTOR_SEL)
        vs = &arg->u.vs;
    else if (arg->kind == PN_MATRIX_SEL)
        vs = &arg->u.ms.sel->u.vs;
    else
        return 0;
    sm_label *v = sm_arena_alloc(c->a, (vs->nmatchers ? vs->nmatchers : 1) * sizeof *v);
    bool *seen = sm_arena_calloc(c->a, vs->nmatchers ? vs->nmatchers : 1, sizeof *seen);
    if (!v || !seen) return ev_nomem(c);
    uint32_t n = 0;
    for (size_t i = 0; i < vs->nmatchers; i++) {
        const sm_matcher *m = &vs->matchers[i];
        if (strcmp(m->name, SM_METRIC_NAME_LABEL) == 0) continue;
        /* Has this name been seen already (set or deleted)? */
        bool had = false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(vs->matchers[j].name, m->name) == 0 && seen[j]) had = true;
        uint32_t pos;
        for (pos = 0; pos < n && strcmp(v[pos].name, m->name) != 0; pos++) {
        }
        if (m->type == SM_MATCH_EQ && !had) {
            seen[i] = true;
            if (pos == n) n++;
            v[pos].name = m->name;
            v[pos].value = m->value;
        } else if (pos < n) {
            memmove(&v[pos], &v[pos + 1], (n - pos - 1) * sizeof *v);
            n--;
        }
    }
    n = sm_labels_drop_empty(v, n);
    sm_labels_sort(v, n);
    out->v = v;
    out->n = n;
    return 0;
}

static int absent(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    ev_val in;
    int rc = ev_eval(c, pc->args[0], g, &in);
    if (rc) return rc;
    bool *present = sm_arena_calloc(c->a, g->n ? g->n : 1, sizeof *present);
    if (!present) return ev_nomem(c);
    for (size_t i = 0; i < in.m.n; i++)
        for (uint32_t p = 0; p < in.m.s[i].n; p++) present[ev_step_index(g, in.m.s[i].p[p].t)] = true;
    ev_series *s = sm_arena_calloc(c->a, 1, sizeof *s);
    if (!s) return ev_nomem(c);
    rc = ev_absent_labels(c, pc->args[0], &s->lbl);
    if (rc) return rc;
    for (size_t st = 0; st < g->n; st++) {
        if (present[st]) continue;
        rc = ev_series_push(c, s, ev_step_time(g, st), 1);
        if (rc) return rc;
    }
    out->type = PROMQL_VECTOR;
    out->m.s = s;
    out->m.n = s->n ? 1 : 0;
    return 0;
}

/* Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$. */
static int expand(ev_ctx *c, const char *tmpl, const char *src, const PCRE2_SIZE *ov, int ngroups,
                  const pcre2_code *re, char **out) {
    size_t cap = strlen(tmpl) + 64, n = 0;
    char *buf = sm_malloc(cap);
    if (!buf) return ev_nomem(c);
#define APPEND(p, len)                                           \
    do {                                                         \
        size_t l_ = (len);                                       \
        if (n + l_ + 1 > cap) {                                  \
            size_t nc_ = (n + l_ + 1) * 2;                       \
            char *nb_ = sm_realloc(buf, nc_);                    \
            if (!nb_) {                                          \
                sm_free(buf);                                    \
                return ev_nomem(c);                              \
            }                                                    \
            buf = nb_;                                           \
            cap = nc_;                                           \
        }                                                        \
        memcpy(buf + n, (p), l_);                                \
        n += l_;                                                 \
    } while (0)
    const char *t = tmpl;
    while (*t) {
        if (*t != '$') {
            APPEND(t, 1);
            t++;
            continue;
        }
        t++;
        if (*t == '$') {
            APPEND("$", 1);
            t++;
            continue;
        }
        const char *name;
        size_t nlen;
        bool brace = *t == '{';
        if (brace) {
            const char *e = t + 1;
            while (*e && (*e == '_' || (*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'z') ||
                          (*e >= 'A' && *e <= 'Z')))
                e++;
            if (*e != '}' || e == t + 1) {
                APPEND("$", 1);
                continue;
            }
            name = t + 1;
            nlen = (size_t)(e - name);
            t = e + 1;
        } else {
            const char *e = t;
            while (*e && (*e == '_' || (*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'z') ||
                          (*e >= 'A' && *e <= 'Z')))
                e++;
            if (e == t) {
                APPEND("$", 1);
                continue;
            }
            name = t;
            nlen = (size_t)(e - t);
            t = e;
        }
        int gi = -1;
        bool digits = true;
        for (size_t i = 0; i < nlen; i++)
            if (name[i] < '0' || name[i] > '9') digits = false;
        if (digits) {
            long v = 0;
            for (size_t i = 0; i < nlen && v < 100000; i++) v = v * 10 + (name[i] - '0');
            gi = v < ngroups ? (int)v : -1;
        } else {
            char nm[256];
            if (nlen < sizeof nm) {
                memcpy(nm, name, nlen);
                nm[nlen] = '\0';
                int r = pcre2_substring_number_from_name(re, (PCRE2_SPTR)nm);
                if (r >= 0 && r < ngroups) gi = r;
            }
        }
        if (gi >= 0 && ov[2 * gi] != PCRE2_UNSET)
            APPEND(src + ov[2 * gi], ov[2 * gi + 1] - ov[2 * gi]);
    }
#undef APPEND
    buf[n] = '\0';
    *out = sm_arena_strdup(c->a, buf);
    sm_free(buf);
    return *out ? 0 : ev_nomem(c);
}

static int string_arg_dup(ev_ctx *c, const promql_node *n, const char **out) {
    n = ev_unparen(n);
    if (n->kind != PN_STRING) return ev_exec_err(c, "expected a string literal argument");
    *out = sm_arena_strndup(c->a, n->u.string.s, n->u.string.len);
    return *out ? 0 : ev_nomem(c);
}

static int label_replace(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    const char *dst, *repl, *src, *regex;
    int rc = string_arg_dup(c, pc->args[1], &dst);
    if (!rc) rc = string_arg_dup(c, pc->args[2], &repl);
    if (!rc) rc = string_arg_dup(c, pc->args[3], &src);
    if (!rc) rc = string_arg_dup(c, pc->args[4], &regex);
    if (rc) return rc;
    /* RE2 syntax is checked by the matcher compiler; PCRE2 then gives the
     * captures. */
    sm_matcher chk;
    sm_error e2;
    sm_error_clear(&e2);
    int mrc0 = sm_matcher_init(&chk, SM_MATCH_RE, "x", regex, &e2);
    if (mrc0 == SM_ENOMEM) return ev_nomem(c);
    if (mrc0 != 0)
        return ev_exec_err(c, "invalid regular expression in label_replace(): %s", regex);
    sm_matcher_fini(&chk);
    if (!sm_label_name_valid(dst))
        return ev_exec_err(c, "invalid destination label name in label_replace(): %s", dst);
    size_t plen = strlen(regex) + 16;
    char *pat = sm_arena_alloc(c->a, plen);
    if (!pat) return ev_nomem(c);
    snprintf(pat, plen, "^(?:%s)$", regex);
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                                   &ecode, &eoff, NULL);
    if (!re) return ev_exec_err(c, "invalid regular expression in label_replace(): %s", regex);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return ev_nomem(c);
    }
    ev_val in;
    rc = ev_eval(c, pc->args[0], g, &in);
    if (rc) goto done;
    for (size_t i = 0; i < in.m.n; i++) {
        ev_series *s = &in.m.s[i];
        const char *sv = sm_labels_get(&s->lbl, src);
        if (!sv) sv = "";
        int mrc = pcre2_match(re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, md, NULL);
        if (mrc < 0) continue; /* no match: unchanged */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int ngroups = (int)pcre2_get_ovector_count(md);
        char *res;
        rc = expand(c, repl, sv, ov, mrc > 0 ? ngroups : 1, re, &res);
        if (rc) goto done;
        rc = ev_labels_set(c, &s->lbl, dst, res, &s->lbl);
        if (rc) goto done;
    }
    *out = in;
    out->type = PROMQL_VECTOR;
    rc = ev_mat_dedupe(c, g, &out->m, false);
done:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

static int label_join(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    const char *dst, *sep;
    int rc = string_arg_dup(c, pc->args[1], &dst);
    if (!rc) rc = string_arg_dup(c, pc->args[2], &sep);
    if (rc) return rc;
    size_t nsrc = pc->nargs > 3 ? pc->nargs - 3 : 0;
    const char **srcs = sm_arena_alloc(c->a, (nsrc + 1) * sizeof *srcs);
    if (!srcs) return ev_nomem(c);
    for (size_t i = 0; i < nsrc; i++) {
        rc = string_arg_dup(c, pc->args[3 + i], &srcs[i]);
        if (rc) return rc;
        if (!sm_label_name_valid(srcs[i]))
            return ev_exec_err(c, "invalid source label name in label_join(): %s", srcs[i]);
    }
    if (!sm_label_name_valid(dst))
        return ev_exec_err(c, "invalid destination label name in label_join(): %s", dst);
    ev_val in;
    rc = ev_eval(c, pc->args[0], g, &in);
    if (rc) return rc;
    size_t seplen = strlen(sep);
    for (size_t i = 0; i < in.m.n; i++) {
        ev_series *s = &in.m.s[i];
        size_t len = 1;
        for (size_t j = 0; j < nsrc; j++) {
            const char *v = sm_labels_get(&s->lbl, srcs[j]);
            len += (v ? strlen(v) : 0) + seplen;
        }
        char *buf = sm_arena_alloc(c->a, len);
        if (!buf) return ev_nomem(c);
        size_t n = 0;
        for (size_t j = 0; j < nsrc; j++) {
            if (j) {
                memcpy(buf + n, sep, seplen);
                n += seplen;
            }
            const char *v = sm_labels_get(&s->lbl, srcs[j]);
            if (v) {
                size_t l = strlen(v);
                memcpy(buf + n, v, l);
                n += l;
            }
        }
        buf[n] = '\0';
        rc = ev_labels_set(c, &s->lbl, dst, buf, &s->lbl);
        if (rc) return rc;
    }
    *out = in;
    out->type = PROMQL_VECTOR;
    return ev_mat_dedupe(c, g, &out->m, false);
}

static int sort_fn(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    int rc = ev_eval(c, pc->args[0], g, out);
    if (rc) return rc;
    out->type = PROMQL_VECTOR;
    if (g->n != 1 || out->m.n < 2) return 0; /* range results are sorted by labels */
    ev_sortent *e = sm_arena_alloc(c->a, out->m.n * sizeof *e);
    ev_series *cp = sm_arena_alloc(c->a, out->m.n * sizeof *cp);
    if (!e || !cp) return ev_nomem(c);
    for (size_t i = 0; i < out->m.n; i++) {
        e[i].idx = (uint32_t)i;
        e[i].v = out->m.s[i].p[0].v;
        cp[i] = out->m.s[i];
    }
    ev_go_sort(e, out->m.n, pc->func->id == PF_SORT);
    for (size_t i = 0; i < out->m.n; i++) out->m.s[i] = cp[e[i].idx];
    return 0;
}

static int scalar_fn(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    ev_val in;
    int rc = ev_eval(c, pc->args[0], g, &in);
    if (rc) return rc;
    rc = scalar_out(c, g, out);
    if (rc) return rc;
    uint32_t *cnt = sm_arena_calloc(c->a, g->n ? g->n : 1, sizeof *cnt);
    if (!cnt) return ev_nomem(c);
    for (size_t st = 0; st < g->n; st++) out->sc[st] = NAN;
    for (size_t i = 0; i < in.m.n; i++)
        for (uint32_t p = 0; p < in.m.s[i].n; p++) {
            size_t st = ev_step_index(g, in.m.s[i].p[p].t);
            cnt[st]++;
            out->sc[st] = in.m.s[i].p[p].v;
        }
    for (size_t st = 0; st < g->n; st++)
        if (cnt[st] != 1) out->sc[st] = NAN;
    return 0;
}

static int vector_fn(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    ev_val in;
    int rc = ev_eval(c, pc->args[0], g, &in);
    if (rc) return rc;
    ev_series *s = sm_arena_calloc(c->a, 1, sizeof *s);
    if (!s) return ev_nomem(c);
    rc = ev_series_reserve(c, s, (uint32_t)(g->n ? g->n : 1));
    if (rc) return rc;
    for (size_t st = 0; st < g->n; st++) {
        s->p[st].t = ev_step_time(g, st);
        s->p[st].v = in.sc[st];
    }
    s->n = (uint32_t)g->n;
    out->type = PROMQL_VECTOR;
    out->m.s = s;
    out->m.n = 1;
    return 0;
}

static int timestamp_fn(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    const promql_node *arg = ev_unparen(pc->args[0]);
    int rc;
    if (arg->kind == PN_VECTOR_SEL) {
        rc = ev_select_vector(c, &arg->u.vs, g, true, true, out);
        if (rc) return rc;
    } else {
        rc = ev_eval(c, pc->args[0], g, out);
        if (rc) return rc;
        for (size_t i = 0; i < out->m.n; i++)
            for (uint32_t p = 0; p < out->m.s[i].n; p++)
                out->m.s[i].p[p].v = (double)out->m.s[i].p[p].t / 1000.0;
    }
    for (size_t i = 0; i < out->m.n; i++) {
        rc = ev_labels_without(c, &out->m.s[i].lbl, SM_METRIC_NAME_LABEL, &out->m.s[i].lbl);
        if (rc) return rc;
    }
    out->type = PROMQL_VECTOR;
    return ev_mat_dedupe(c, g, &out->m, false);
}

/* histogram_quantile's scratch, one row per input series.  The row index
 * means three things at once: the series (le, ok, key), the position in
 * the step's vector (gof, order) and a group (first, count, rep). */
typedef struct hq_row {
    double le;      /* series: its parsed le */
    uint64_t key;   /* series: labels without le */
    bool ok;        /* series: le parsed */
    uint32_t gof;   /* position: its group, UINT32_MAX when skipped */
    uint32_t order; /* position: the step positions, grouped */
    uint32_t first, count, rep; /* group: its slice of order, a member */
} hq_row;

static int histogram_quantile(ev_ctx *c, const promql_call *pc, const ev_grid *g, ev_val *out) {
    ev_val qv, in;
    int rc = ev_eval(c, pc->args[0], g, &qv);
    if (rc) return rc;
    rc = ev_eval(c, pc->args[1], g, &in);
    if (rc) return rc;
    const ev_mat *m = &in.m;
    /* Per series: le parsed and the group key (labels without le, name
     * kept); per step position: its group; per group: its buckets. */
    size_t cap = m->n + 1;
    hq_row *row = sm_arena_calloc(c->a, cap, sizeof *row);
    uint32_t *idx = sm_arena_alloc(c->a, cap * sizeof *idx);
    double *vals = sm_arena_alloc(c->a, cap * sizeof *vals);
    double *bl = sm_arena_alloc(c->a, 2 * cap * sizeof *bl), *bc = bl + cap;
    if (!row || !idx || !vals || !bl) return ev_nomem(c);
    static const char *const le_name[] = {"le"};
    for (size_t i = 0; i < m->n; i++) {
        const char *v = sm_labels_get(&m->s[i].lbl, "le");
        row[i].ok = v && ev_parse_float(v, &row[i].le);
        row[i].key = ev_labels_hash_subset(&m->s[i].lbl, le_name, 1, false, false);
    }
    ev_cursor k;
    rc = ev_cursor_init(c, &k, m);
    if (rc) return rc;
    ev_map groups, gout; /* gout: group key -> output series, across steps */
    rc = ev_map_init(c, &groups, m->n + 1);
    if (!rc) rc = ev_map_init(c, &gout, m->n + 1);
    if (rc) return rc;
    ev_out o;
    rc = ev_out_init(&o, c, g, m->n + 1);
    if (rc) return rc;
    for (size_t st = 0; st < g->n; st++) {
        sm_ms_t ts = ev_step_time(g, st);
        size_t n = ev_cursor_step(&k, ts, idx, vals);
        ev_map_clear(&groups);
        size_t ng = 0;
        for (size_t j = 0; j < n; j++) {
            if (!row[idx[j]].ok) {
                row[j].gof = UINT32_MAX;
                continue;
            }
            bool found;
            uint32_t *slot = ev_map_put(c, &groups, row[idx[j]].key, &found);
            if (!slot) return ev_nomem(c);
            if (!found) {
                *slot = (uint32_t)ng;
                row[ng].count = 0;
                row[ng].rep = idx[j];
                ng++;
            }
            row[j].gof = *slot;
            row[*slot].count++;
        }
        uint32_t acc = 0;
        for (size_t q = 0; q < ng; q++) {
            row[q].first = acc;
            acc += row[q].count;
            row[q].count = 0;
        }
        for (size_t j = 0; j < n; j++) {
            uint32_t q = row[j].gof;
            if (q != UINT32_MAX) row[row[q].first + row[q].count++].order = (uint32_t)j;
        }
        for (size_t q = 0; q < ng; q++) {
            for (uint32_t b = 0; b < row[q].count; b++) {
                uint32_t j = row[row[q].first + b].order;
                bl[b] = row[idx[j]].le;
                bc[b] = vals[j];
            }
            double v = fn_histogram_quantile(qv.sc[st], bl, bc, row[q].count);
            bool found;
            uint32_t *os = ev_map_put(c, &gout, row[row[q].rep].key, &found);
            if (!os) return ev_nomem(c);
            if (!found) {
                const sm_labels *src = &m->s[row[q].rep].lbl;
                sm_labels a, b;
                rc = ev_labels_without(c, src, "le", &a);
                if (!rc) rc = ev_labels_without(c, &a, SM_METRIC_NAME_LABEL, &b);
                size_t oi;
                if (!rc) rc = ev_out_series(&o, &b, sm_labels_hash(&b), false, &oi);
                if (rc) return rc;
                *os = (uint32_t)oi;
            }
            rc = ev_out_push(&o, *os, ts, v);
            if (rc) return rc;
        }
    }
    out->type = PROMQL_VECTOR;
    ev_out_finish(&o, &out->m);
    return 0;
}

int ev_call(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out) {
    const promql_call *pc = &n->u.call;
    promql_func_id f = pc->func->id;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < pc->nargs; i++)
        if (pc->args[i]->type == PROMQL_MATRIX) return ev_range_call(c, n, g, out);
    if (fn_is_elementwise(f)) return elementwise(c, pc, g, out);
    switch (f) {
    case PF_ABSENT: return absent(c, pc, g, out);
    case PF_LABEL_REPLACE: return label_replace(c, pc, g, out);
    case PF_LABEL_JOIN: return label_join(c, pc, g, out);
    case PF_SORT:
    case PF_SORT_DESC: return sort_fn(c, pc, g, out);
    case PF_SCALAR: return scalar_fn(c, pc, g, out);
    case PF_VECTOR: return vector_fn(c, pc, g, out);
    case PF_TIMESTAMP: return timestamp_fn(c, pc, g, out);
    case PF_TIME: {
        int rc = scalar_out(c, g, out);
        if (rc) return rc;
        for (size_t st = 0; st < g->n; st++) out->sc[st] = (double)ev_step_time(g, st) / 1000.0;
        return 0;
    }
    case PF_PI: {
        int rc = scalar_out(c, g, out);
        if (rc) return rc;
        for (size_t st = 0; st < g->n; st++) out->sc[st] = M_PI;
        return 0;
    }
    case PF_HISTOGRAM_QUANTILE: return histogram_quantile(c, pc, g, out);
    case PF_HISTOGRAM_COUNT:
    case PF_HISTOGRAM_SUM:
    case PF_HISTOGRAM_FRACTION: {
        /* Native histograms are not stored: float samples give nothing. */
        for (size_t i = 0; i < pc->nargs; i++) {
            ev_val v;
            int rc = ev_eval(c, pc->args[i], g, &v);
            if (rc) return rc;
        }
        out->type = PROMQL_VECTOR;
        return 0;
    }
    case PF_ANOMALY_SCORE:
    case PF_BASELINE_EXPECTED:
    case PF_BASELINE_LOWER:
    case PF_BASELINE_UPPER: return eval_anomaly(c, n, g, out);
    default: return ev_exec_err(c, "function %s is not supported", pc->func->name);
    }
}
