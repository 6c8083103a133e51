/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_util.c - the evaluator's small shared pieces: series point storage
 * in the scratch arena, label-set edits that borrow strings, subset hashes
 * for vector matching and grouping, the output accumulator keyed by label
 * set (Prometheus's rangeEval series map, with its duplicate-labelset
 * check), an O(1)-clearable u64 map, step cursors, and Go's float
 * formatting and parsing rules (strconv.FormatFloat 'f' -1, ParseFloat).
 *
 * Nothing here reads storage or knows PromQL node kinds.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_int.h"
#include "json.h"
#include "tsdb/base/sm_hash.h"

int ev_series_reserve(ev_ctx *c, ev_series *s, uint32_t cap) {
    if (cap <= s->cap) return 0;
    promql_point *p = sm_arena_realloc(c->a, s->p, (size_t)s->cap * sizeof *p, (size_t)cap * sizeof *p);
    if (!p) return ev_nomem(c);
    s->p = p;
    s->cap = cap;
    return 0;
}

int ev_series_push(ev_ctx *c, ev_series *s, sm_ms_t t, double v) {
    if (s->n == s->cap) {
        int rc = ev_series_reserve(c, s, s->cap ? s->cap * 2 : 8);
        if (rc) return rc;
    }
    s->p[s->n].t = t;
    s->p[s->n].v = v;
    s->n++;
    return 0;
}

int ev_labels_dup(ev_ctx *c, const sm_label *v, uint32_t n, sm_labels *out) {
    sm_label *d = NULL;
    if (n) {
        d = sm_arena_alloc(c->a, (size_t)n * sizeof *d);
        if (!d) return ev_nomem(c);
        memcpy(d, v, (size_t)n * sizeof *d);
    }
    out->v = d;
    out->n = n;
    return 0;
}

int ev_labels_without(ev_ctx *c, const sm_labels *ls, const char *name, sm_labels *out) {
    uint32_t i;
    for (i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0) break;
    if (i == ls->n) {
        *out = *ls;
        return 0;
    }
    sm_label *d = NULL;
    if (ls->n > 1) {
        d = sm_arena_alloc(c->a, (size_t)(ls->n - 1) * sizeof *d);
        if (!d) return ev_nomem(c);
        memcpy(d, ls->v, (size_t)i * sizeof *d);
        memcpy(d + i, ls->v + i + 1, (size_t)(ls->n - i - 1) * sizeof *d);
    }
    out->v = d;
    out->n = ls->n - 1;
    return 0;
}

int ev_labels_set(ev_ctx *c, const sm_labels *ls, const char *name, const char *value,
                  sm_labels *out) {
    if (!value || !*value) return ev_labels_without(c, ls, name, out);
    sm_label *d = sm_arena_alloc(c->a, (size_t)(ls->n + 1) * sizeof *d);
    if (!d) return ev_nomem(c);
    uint32_t j = 0;
    bool done = false;
    for (uint32_t i = 0; i < ls->n; i++) {
        int cmp = strcmp(ls->v[i].name, name);
        if (!done && cmp >= 0) {
            d[j].name = name;
            d[j].value = value;
            j++;
            done = true;
            if (cmp == 0) continue;
        }
        d[j++] = ls->v[i];
    }
    if (!done) {
        d[j].name = name;
        d[j].value = value;
        j++;
    }
    out->v = d;
    out->n = j;
    return 0;
}

bool ev_name_in(const char *name, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

static uint64_t hash_pair(uint64_t h, const char *name, const char *value) {
    size_t ln = strlen(name), lv = strlen(value);
    h = sm_hash_mix(h ^ sm_hash_bytes(name, ln, SM_HASH_K1), SM_HASH_K0);
    h = sm_hash_mix(h ^ sm_hash_bytes(value, lv, SM_HASH_K2), SM_HASH_K1);
    return h;
}

uint64_t ev_labels_hash_subset(const sm_labels *ls, const char *const *names, size_t nn, bool on,
                               bool drop_name) {
    uint64_t h = SM_HASH_K2;
    for (uint32_t i = 0; i < ls->n; i++) {
        const char *nm = ls->v[i].name;
        bool in = ev_name_in(nm, names, nn);
        if (on) {
            if (!in) continue;
        } else {
            if (in) continue;
            if (drop_name && strcmp(nm, SM_METRIC_NAME_LABEL) == 0) continue;
        }
        h = hash_pair(h, nm, ls->v[i].value);
    }
    return h;
}

size_t ev_labels_go_string(const sm_labels *ls, char *buf, size_t cap) {
    size_t n = 0;
#define PUT(ch)                           \
    do {                                  \
        if (n + 1 < cap) buf[n] = (ch);   \
        n++;                              \
    } while (0)
    PUT('{');
    for (uint32_t i = 0; i < ls->n; i++) {
        if (i) {
            PUT(',');
            PUT(' ');
        }
        for (const char *p = ls->v[i].name; *p; p++) PUT(*p);
        PUT('=');
        PUT('"');
        for (const char *p = ls->v[i].value; *p; p++) {
            char ch = *p;
            if (ch == '"' || ch == '\\') {
                PUT('\\');
                PUT(ch);
            } else if (ch == '\n') {
                PUT('\\');
                PUT('n');
            } else {
                PUT(ch);
            }
        }
        PUT('"');
    }
    PUT('}');
#undef PUT
    if (cap) buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

void ev_format_go_g(double v, char *buf, size_t cap) {
    char b[400];
    int exp10 = 0;
    bool e_form = false;
    if (isfinite(v) && v != 0) { /* strconv 'g', shortest: 'e' below 1e-4 and from 1e6 */
        json_format_e(v, b, &exp10);
        e_form = exp10 < -4 || exp10 >= 6;
    }
    if (!e_form) json_format_value(v, b);
    snprintf(buf, cap, "%s", b);
}

/* Go's ParseFloat accepts decimal and hex floats, "inf", "infinity", "nan"
 * in any case with an optional sign, and underscores only between digits
 * of prefixed forms (not supported here: such le labels are skipped).  No
 * surrounding spaces. */
int ev_parse_float(const char *s, double *out) {
    if (!*s || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        return 0;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (strncasecmp(p, "nan", 3) == 0 && p[3] != '\0') return 0; /* "nan(...)" */
    if (strncasecmp(p, "inf", 3) == 0 && p[3] != '\0' && strcasecmp(p, "infinity") != 0) return 0;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') return 0;
    if (errno == ERANGE && !isinf(v) && v != 0) return 0;
    *out = v;
    return 1;
}

/* ---- ordering by value ---- */

static bool go_swap_needed(const ev_sortent *a, const ev_sortent *b, bool asc) {
    /* Less'(j, j-1) of the reversed heap order, with a = e[j-1], b = e[j]. */
    if (isnan(a->v)) return true;
    return asc ? a->v > b->v : a->v < b->v;
}

static int cmp_asc(const void *x, const void *y) {
    const ev_sortent *a = x, *b = y;
    bool an = isnan(a->v), bn = isnan(b->v);
    if (an != bn) return an ? 1 : -1;
    if (!an && a->v != b->v) return a->v < b->v ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int cmp_desc(const void *x, const void *y) {
    const ev_sortent *a = x, *b = y;
    bool an = isnan(a->v), bn = isnan(b->v);
    if (an != bn) return an ? 1 : -1;
    if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

void ev_go_sort(ev_sortent *e, size_t n, bool asc) {
    if (n <= 12) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && go_swap_needed(&e[j - 1], &e[j], asc); j--) {
                ev_sortent t = e[j];
                e[j] = e[j - 1];
                e[j - 1] = t;
            }
        return;
    }
    for (size_t i = 0; i < n; i++) e[i].pos = (uint32_t)i;
    qsort(e, n, sizeof *e, asc ? cmp_asc : cmp_desc);
}

/* ---- output accumulator ---- */

int ev_out_init(ev_out *o, ev_ctx *c, const ev_grid *g, size_t hint) {
    memset(o, 0, sizeof *o);
    o->c = c;
    o->g = g;
    size_t cap = 16;
    while (cap < hint * 2) cap <<= 1;
    o->tab = sm_arena_calloc(c->a, cap, sizeof *o->tab);
    if (!o->tab) return ev_nomem(c);
    o->tabcap = cap;
    return 0;
}

static int out_grow(ev_out *o) {
    size_t ncap = o->tabcap * 2;
    uint32_t *t = sm_arena_calloc(o->c->a, ncap, sizeof *t);
    if (!t) return ev_nomem(o->c);
    for (size_t i = 0; i < o->n; i++) {
        size_t j = o->s[i].hash & (ncap - 1);
        while (t[j]) j = (j + 1) & (ncap - 1);
        t[j] = (uint32_t)(i + 1);
    }
    o->tab = t;
    o->tabcap = ncap;
    return 0;
}

int ev_out_series(ev_out *o, const sm_labels *ls, uint64_t hash, bool copy, size_t *idx) {
    size_t j = hash & (o->tabcap - 1);
    while (o->tab[j]) {
        ev_series *s = &o->s[o->tab[j] - 1];
        if (s->hash == hash && sm_labels_equal(&s->lbl, ls)) {
            *idx = o->tab[j] - 1;
            return 0;
        }
        j = (j + 1) & (o->tabcap - 1);
    }
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 16;
        ev_series *ns = sm_arena_realloc(o->c->a, o->s, o->cap * sizeof *ns, ncap * sizeof *ns);
        if (!ns) return ev_nomem(o->c);
        o->s = ns;
        o->cap = ncap;
    }
    ev_series *s = &o->s[o->n];
    memset(s, 0, sizeof *s);
    if (copy) {
        int rc = ev_labels_dup(o->c, ls->v, ls->n, &s->lbl);
        if (rc) return rc;
    } else {
        s->lbl = *ls;
    }
    s->hash = hash;
    o->tab[j] = (uint32_t)(o->n + 1);
    *idx = o->n++;
    if (o->n * 2 > o->tabcap) {
        int rc = out_grow(o);
        if (rc) return rc;
    }
    return 0;
}

int ev_out_add(ev_out *o, const sm_labels *ls, uint64_t hash, bool copy, sm_ms_t t, double v) {
    size_t i;
    int rc = ev_out_series(o, ls, hash, copy, &i);
    if (rc) return rc;
    return ev_out_push(o, i, t, v);
}

int ev_out_push(ev_out *o, size_t i, sm_ms_t t, double v) {
    int rc;
    ev_series *s = &o->s[i];
    if (s->n && s->p[s->n - 1].t == t)
        return ev_exec_err(o->c, "vector cannot contain metrics with the same labelset");
    if (s->n == 0 && o->g->n > 1) {
        uint32_t want = o->g->n < 64 ? (uint32_t)o->g->n : 16;
        rc = ev_series_reserve(o->c, s, want);
        if (rc) return rc;
    } else if (s->n == s->cap && s->cap < o->g->n) {
        uint32_t want = s->cap * 2 > o->g->n ? (uint32_t)o->g->n : s->cap * 2;
        rc = ev_series_reserve(o->c, s, want);
        if (rc) return rc;
    }
    rc = ev_series_push(o->c, s, t, v);
    if (rc) return rc;
    return ev_hold(o->c, 1);
}

void ev_out_finish(ev_out *o, ev_mat *m) {
    size_t j = 0;
    for (size_t i = 0; i < o->n; i++)
        if (o->s[i].n) o->s[j++] = o->s[i];
    m->s = o->s;
    m->n = j;
}

static int cmp_point(const void *a, const void *b) {
    const promql_point *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

int ev_mat_dedupe(ev_ctx *c, const ev_grid *g, ev_mat *m, bool any_dup_is_error) {
    for (size_t i = 0; i < m->n; i++) m->s[i].hash = sm_labels_hash(&m->s[i].lbl);
    ev_out o;
    int rc = ev_out_init(&o, c, g, m->n);
    if (rc) return rc;
    /* Reuse the input series records: the accumulator only indexes them. */
    o.s = m->s;
    o.cap = m->n;
    size_t keep = 0;
    for (size_t i = 0; i < m->n; i++) {
        ev_series cur = m->s[i];
        size_t j = cur.hash & (o.tabcap - 1);
        ev_series *hit = NULL;
        while (o.tab[j]) {
            ev_series *s = &o.s[o.tab[j] - 1];
            if (s->hash == cur.hash && sm_labels_equal(&s->lbl, &cur.lbl)) {
                hit = s;
                break;
            }
            j = (j + 1) & (o.tabcap - 1);
        }
        if (!hit) {
            o.s[keep] = cur;
            o.tab[j] = (uint32_t)(keep + 1);
            keep++;
            o.n = keep;
            if (o.n * 2 > o.tabcap) {
                rc = out_grow(&o);
                if (rc) return rc;
            }
            continue;
        }
        if (any_dup_is_error)
            return ev_exec_err(c, "vector cannot contain metrics with the same labelset");
        /* Merge: the two must not share a time. */
        promql_point *np = sm_arena_alloc(c->a, (size_t)(hit->n + cur.n) * sizeof *np);
        if (!np) return ev_nomem(c);
        memcpy(np, hit->p, hit->n * sizeof *np);
        memcpy(np + hit->n, cur.p, cur.n * sizeof *np);
        uint32_t nn = hit->n + cur.n;
        qsort(np, nn, sizeof *np, cmp_point);
        for (uint32_t k = 1; k < nn; k++)
            if (np[k].t == np[k - 1].t)
                return ev_exec_err(c, "vector cannot contain metrics with the same labelset");
        hit->p = np;
        hit->n = hit->cap = nn;
    }
    m->n = keep;
    return 0;
}

/* ---- map ---- */

int ev_map_init(ev_ctx *c, ev_map *m, size_t hint) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < hint * 2) cap <<= 1;
    m->keys = sm_arena_alloc(c->a, cap * sizeof *m->keys);
    m->vals = sm_arena_alloc(c->a, cap * sizeof *m->vals);
    m->gen = sm_arena_calloc(c->a, cap, sizeof *m->gen);
    if (!m->keys || !m->vals || !m->gen) return ev_nomem(c);
    m->cap = cap;
    m->cur = 1;
    return 0;
}

void ev_map_clear(ev_map *m) {
    m->cur++;
    m->n = 0;
    if (m->cur == 0) {
        memset(m->gen, 0, m->cap * sizeof *m->gen);
        m->cur = 1;
    }
}

static int map_grow(ev_ctx *c, ev_map *m) {
    ev_map nm;
    int rc = ev_map_init(c, &nm, m->cap);
    if (rc) return rc;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->gen[i] != m->cur) continue;
        size_t j = sm_hash_u64(m->keys[i]) & (nm.cap - 1);
        while (nm.gen[j] == nm.cur) j = (j + 1) & (nm.cap - 1);
        nm.gen[j] = nm.cur;
        nm.keys[j] = m->keys[i];
        nm.vals[j] = m->vals[i];
        nm.n++;
    }
    *m = nm;
    return 0;
}

uint32_t *ev_map_put(ev_ctx *c, ev_map *m, uint64_t key, bool *found) {
    if ((m->n + 1) * 2 > m->cap && map_grow(c, m)) return NULL;
    size_t j = sm_hash_u64(key) & (m->cap - 1);
    while (m->gen[j] == m->cur) {
        if (m->keys[j] == key) {
            *found = true;
            return &m->vals[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->gen[j] = m->cur;
    m->keys[j] = key;
    m->vals[j] = 0;
    m->n++;
    *found = false;
    return &m->vals[j];
}

uint32_t *ev_map_get(ev_map *m, uint64_t key) {
    size_t j = sm_hash_u64(key) & (m->cap - 1);
    while (m->gen[j] == m->cur) {
        if (m->keys[j] == key) return &m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ---- cursors ---- */

int ev_cursor_init(ev_ctx *c, ev_cursor *k, const ev_mat *m) {
    k->m = m;
    k->pos = sm_arena_calloc(c->a, m->n ? m->n : 1, sizeof *k->pos);
    return k->pos ? 0 : ev_nomem(c);
}

size_t ev_cursor_step(ev_cursor *k, sm_ms_t t, uint32_t *idx, double *vals) {
    size_t n = 0;
    for (size_t i = 0; i < k->m->n; i++) {
        const ev_series *s = &k->m->s[i];
        uint32_t p = k->pos[i];
        while (p < s->n && s->p[p].t < t) p++;
        if (p < s->n && s->p[p].t == t) {
            if (idx) idx[n] = (uint32_t)i;
            if (vals) vals[n] = s->p[p].v;
            n++;
            p++;
        }
        k->pos[i] = p;
    }
    return n;
}
