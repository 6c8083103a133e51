/* SPDX-License-Identifier: Apache-2.0
 *
 * test_head.c - the in-memory head against a model: in-order, late,
 * duplicate and replacing samples (float specials compared by bits, so the
 * stale marker and -0.0 count as values of their own); selection by every
 * matcher kind and time range; export below a cut and truncation, with
 * samples arriving during the export; concurrent appenders and readers;
 * limits and WAL-replay creation.  Then targeted cases: value identity by
 * bits in the open chunk, sealed chunks and gaps; the window's edges; chunk
 * lists that stay sorted, disjoint, inside range windows and bounded under
 * heavy late traffic with tiny chunks; failed exports (also after an
 * untruncated one) with late samples inside the exported spans; label
 * values larger than any fixed buffer; and cuts running while appenders
 * append, every sample exported exactly once; and the appender's batch
 * calls (lookup of many label sets, runs of many series) against the model.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/merge.h"

#define NS 24
#define MAXS 4000
#define HOUR 3600000LL

typedef struct ms_model {
    char name[16], inst[16], zone[8];
    sm_label lv[3];
    sm_labels ls;
    uint64_t ref;
    sm_ms_t t[MAXS];
    uint64_t bits[MAXS];
    size_t n;
} ms_model;

static ms_model M[NS];

static int model_put(ms_model *m, sm_ms_t t, double v) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->t[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    if (lo < m->n && m->t[lo] == t) {
        if (m->bits[lo] == sm_f64_bits(v)) return HEAD_DUPLICATE;
        m->bits[lo] = sm_f64_bits(v);
        return HEAD_REPLACED;
    }
    memmove(m->t + lo + 1, m->t + lo, (m->n - lo) * sizeof *m->t);
    memmove(m->bits + lo + 1, m->bits + lo, (m->n - lo) * sizeof *m->bits);
    m->t[lo] = t;
    m->bits[lo] = sm_f64_bits(v);
    m->n++;
    return HEAD_APPENDED;
}

static double rand_value(uint64_t *rng) {
    switch (check_rand_below(rng, 6)) {
    case 0: return sm_f64_from_bits(SM_STALE_NAN_BITS);
    case 1: return -0.0;
    case 2: return 0.0;
    case 3: return sm_f64_from_bits(check_rand(rng));
    default: return (double)check_rand_below(rng, 1000) / 10.0;
    }
}

static head *new_head(uint64_t max_series) {
    head_opts o = {HOUR, 120, 2 * HOUR, max_series};
    head *h = NULL;
    CHECK_OK(head_new(&o, &h));
    for (int i = 0; i < NS; i++) {
        ms_model *m = &M[i];
        snprintf(m->name, sizeof m->name, "m%d", i % 4);
        snprintf(m->inst, sizeof m->inst, "i%02d", i);
        snprintf(m->zone, sizeof m->zone, "%s", i % 2 ? "a" : "");
        m->lv[0] = (sm_label){"__name__", m->name};
        m->lv[1] = (sm_label){"instance", m->inst};
        m->lv[2] = (sm_label){"zone", m->zone};
        m->ls = (sm_labels){m->lv, i % 2 ? 3u : 2u}; /* even series lack "zone" */
        m->n = 0;
        bool created;
        sm_error err = {0};
        CHECK_OK_ERR(head_get_or_create(h, &m->ls, &m->ref, &created, &err), &err);
        CHECK(created);
        uint64_t again;
        CHECK_OK(head_get_or_create(h, &m->ls, &again, &created, NULL));
        CHECK(!created && again == m->ref);
    }
    return h;
}

/* Append n rounds; late samples within the window. */
static void fill(head *h, uint64_t *rng, sm_ms_t *now, int rounds) {
    for (int r = 0; r < rounds; r++) {
        *now += 15000;
        for (int i = 0; i < NS; i++) {
            ms_model *m = &M[i];
            sm_ms_t t = *now + i;
            double v = rand_value(rng);
            int kind = (int)check_rand_below(rng, 12);
            if (kind == 0 && m->n) t = *now - (sm_ms_t)check_rand_below(rng, HOUR - 20000); /* late */
            if (kind == 1 && m->n) { /* an existing time: duplicate or replacement */
                size_t j = check_rand_below(rng, m->n);
                if (m->t[j] < *now - HOUR + 20000) continue;
                t = m->t[j];
                if (check_rand_below(rng, 2)) v = sm_f64_from_bits(m->bits[j]);
            }
            int want = model_put(m, t, v);
            int got = head_append(h, m->ref, t, v, true);
            if (got != want) {
                CHECK_MSG(0, "append series %d t=%lld: got %d want %d", i, (long long)t, got, want);
                return;
            }
        }
    }
}

/* Select with matchers and compare with the model in [mint, maxt]. */
static void check_select(head *h, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                         const bool *want_series, const char *what) {
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    sm_error err = {0};
    CHECK_OK_ERR(head_select(h, ms, nms, mint, maxt, 7, a, &sel, &err), &err);
    size_t want_n = 0;
    for (int i = 0; i < NS; i++) {
        if (!want_series[i]) continue;
        bool any = false;
        for (size_t k = 0; k < M[i].n && !any; k++) any = M[i].t[k] >= mint && M[i].t[k] <= maxt;
        want_n += any;
    }
    /* A series whose chunk spans the range may come back with no sample
     * inside it (as in Prometheus); count only those that have samples. */
    size_t got_n = 0;
    size_t bad = 0;
    for (size_t s = 0; s < sel.n; s++) {
        if (s && sm_labels_cmp(&sel.v[s - 1].labels, &sel.v[s].labels) >= 0) bad++;
        ms_model *m = NULL;
        for (int i = 0; i < NS && !m; i++)
            if (sm_labels_equal(&M[i].ls, &sel.v[s].labels)) m = &M[i];
        if (!m || !want_series[m - M]) {
            bad++;
            continue;
        }
        for (uint32_t c = 0; c < sel.v[s].nchunks; c++) bad += sel.v[s].chunks[c].prio != 7;
        merge_iter *it;
        CHECK_OK(merge_iter_new(a, sel.v[s].chunks, sel.v[s].nchunks, mint, maxt, &it));
        size_t k = 0;
        while (k < m->n && m->t[k] < mint) k++;
        sm_ms_t t;
        double v;
        int rc;
        while ((rc = merge_iter_next(it, &t, &v)) == 1) {
            if (k >= m->n || m->t[k] != t || m->bits[k] != sm_f64_bits(v)) bad++;
            k++;
        }
        CHECK(rc == 0);
        if (k < m->n && m->t[k] <= maxt) bad++;
        size_t first = 0;
        while (first < m->n && m->t[first] < mint) first++;
        got_n += first < m->n && m->t[first] <= maxt;
    }
    CHECK_MSG(got_n == want_n, "%s: %zu series with samples, want %zu", what, got_n, want_n);
    CHECK_MSG(bad == 0, "%s: %zu mismatches", what, bad);
    sm_arena_free(a);
}

static void test_model(uint64_t *rng) {
    head *h = new_head(0);
    sm_ms_t now = 1700000000000;
    fill(h, rng, &now, 1000); /* about 4 h */
    bool all[NS], odd[NS], m1[NS], nozone[NS];
    for (int i = 0; i < NS; i++) {
        all[i] = true;
        odd[i] = i % 2;
        m1[i] = i % 4 == 1;
        nozone[i] = i % 2 == 0;
    }
    sm_matcher re_all, eq_m1, zone_a, zone_empty, ne_zone, nre;
    CHECK_OK(sm_matcher_init(&re_all, SM_MATCH_RE, "__name__", "m.", NULL));
    CHECK_OK(sm_matcher_init(&eq_m1, SM_MATCH_EQ, "__name__", "m1", NULL));
    CHECK_OK(sm_matcher_init(&zone_a, SM_MATCH_EQ, "zone", "a", NULL));
    CHECK_OK(sm_matcher_init(&zone_empty, SM_MATCH_EQ, "zone", "", NULL));
    CHECK_OK(sm_matcher_init(&ne_zone, SM_MATCH_NEQ, "zone", "a", NULL));
    CHECK_OK(sm_matcher_init(&nre, SM_MATCH_NRE, "instance", "i0.|i1.", NULL));
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "all");
    check_select(h, &eq_m1, 1, SM_MS_MIN, SM_MS_MAX, m1, "m1");
    sm_matcher two[2] = {re_all, zone_a};
    check_select(h, two, 2, SM_MS_MIN, SM_MS_MAX, odd, "zone=a");
    sm_matcher three[2] = {re_all, zone_empty};
    check_select(h, three, 2, SM_MS_MIN, SM_MS_MAX, nozone, "zone=\"\" (absent)");
    sm_matcher four[2] = {re_all, ne_zone};
    check_select(h, four, 2, SM_MS_MIN, SM_MS_MAX, nozone, "zone!=a");
    bool twenties[NS];
    for (int i = 0; i < NS; i++) twenties[i] = i >= 20;
    sm_matcher five[2] = {re_all, nre};
    check_select(h, five, 2, SM_MS_MIN, SM_MS_MAX, twenties, "instance!~i0.|i1.");
    for (int k = 0; k < 20; k++) {
        sm_ms_t a = now - (sm_ms_t)check_rand_below(rng, 5 * HOUR), b = a + (sm_ms_t)check_rand_below(rng, HOUR);
        check_select(h, &re_all, 1, a, b, all, "time range");
    }

    /* Label listings. */
    sm_arena *ar = sm_arena_new(0, 0);
    const char **v;
    size_t n;
    CHECK_OK(head_label_names(h, NULL, 0, SM_MS_MIN, SM_MS_MAX, ar, &v, &n, NULL));
    CHECK(n == 3 && !strcmp(v[0], "__name__") && !strcmp(v[2], "zone"));
    CHECK_OK(head_label_values(h, "__name__", &zone_a, 1, SM_MS_MIN, SM_MS_MAX, ar, &v, &n, NULL));
    CHECK(n == 2 && !strcmp(v[0], "m1") && !strcmp(v[1], "m3"));
    CHECK_OK(head_label_values(h, "instance", NULL, 0, SM_MS_MAX - 1, SM_MS_MAX, ar, &v, &n, NULL));
    CHECK(n == 0);
    sm_arena_free(ar);

    /* Out of the window. */
    CHECK_EQ_INT(head_append(h, M[0].ref, now - 2 * HOUR, 1.0, true), SM_ERANGE);
    CHECK_EQ_INT(head_check_window(h, now - 2 * HOUR), SM_ERANGE);
    CHECK_EQ_INT(head_append(h, 999999, now, 1.0, true), SM_ENOTFOUND);
    head_stats st;
    head_get_stats(h, &st);
    size_t total = 0;
    for (int i = 0; i < NS; i++) total += M[i].n;
    CHECK_MSG(st.samples == total, "stats samples %llu want %zu", (unsigned long long)st.samples, total);
    sm_ms_t newest = SM_MS_MIN;
    for (int i = 0; i < NS; i++)
        if (M[i].n && M[i].t[M[i].n - 1] > newest) newest = M[i].t[M[i].n - 1];
    CHECK(st.series == NS && st.maxt == newest);
    printf("model: %llu samples in %llu chunks (1 in 12 late, 1 in 12 at an existing time)\n",
           (unsigned long long)st.samples, (unsigned long long)st.chunks);

    sm_matcher_fini(&re_all);
    sm_matcher_fini(&eq_m1);
    sm_matcher_fini(&zone_a);
    sm_matcher_fini(&zone_empty);
    sm_matcher_fini(&ne_zone);
    sm_matcher_fini(&nre);
    head_free(h);
}

/* ---- export ---- */

typedef struct exp_ctx {
    head *h;
    size_t calls, samples;
    sm_labels prev;
    sm_arena *a;
    sm_ms_t maxt;
    int fail_at;
    bool bad;
    uint64_t *rng;
    int late_series[NS * 4];
    sm_ms_t late_t[NS * 4];
    size_t nlate;
} exp_ctx;

static int on_export(void *ctx, const sm_labels *ls, const tsdb_chunk_ref *ch, uint32_t n) {
    exp_ctx *c = ctx;
    if (c->calls && sm_labels_cmp(&c->prev, ls) >= 0) c->bad = true;
    sm_labels_copy(c->a, ls, &c->prev);
    if ((int)c->calls == c->fail_at) return SM_EIO;
    c->calls++;
    for (uint32_t i = 0; i < n; i++) {
        if (ch[i].maxt >= c->maxt || (i && ch[i].mint <= ch[i - 1].maxt)) c->bad = true;
        chunk_info ci;
        if (chunk_info_read(ch[i].data, ch[i].len, &ci)) c->bad = true;
        else c->samples += ci.count;
    }
    /* A sample arriving for this very series during the export. */
    ms_model *m = NULL;
    for (int k = 0; k < NS && !m; k++)
        if (sm_labels_equal(&M[k].ls, ls)) m = &M[k];
    if (m && m->n) {
        sm_ms_t t = c->maxt - 1 - (sm_ms_t)check_rand_below(c->rng, 1000);
        double v = 42.0;
        model_put(m, t, v);
        if (head_append(c->h, m->ref, t, v, false) < 0) c->bad = true;
        if (c->nlate < NS * 4) {
            c->late_series[c->nlate] = (int)(m - M);
            c->late_t[c->nlate++] = t;
        }
    }
    return 0;
}

static void test_export(uint64_t *rng) {
    head *h = new_head(0);
    sm_ms_t now = 1700000000000 - 1700000000000 % (2 * HOUR);
    fill(h, rng, &now, 1200); /* 5 h */
    sm_ms_t cut = now - now % (2 * HOUR) - 2 * HOUR;
    /* A failing writer undoes the export. */
    static exp_ctx c;
    c = (exp_ctx){h, 0, 0, {0}, sm_arena_new(0, 0), cut, 3, false, rng, {0}, {0}, 0};
    sm_ms_t mint;
    CHECK(head_export(h, cut, on_export, &c, &mint, NULL) == SM_EIO);
    head_truncate(h);
    bool all[NS];
    for (int i = 0; i < NS; i++) all[i] = true;
    sm_matcher re_all;
    CHECK_OK(sm_matcher_init(&re_all, SM_MATCH_RE, "__name__", ".+", NULL));
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "after a failed export");

    /* A real one. */
    size_t below = 0;
    for (int i = 0; i < NS; i++)
        for (size_t k = 0; k < M[i].n; k++) below += M[i].t[k] < cut;
    c = (exp_ctx){h, 0, 0, {0}, c.a, cut, -1, false, rng, {0}, {0}, 0};
    CHECK_OK(head_export(h, cut, on_export, &c, &mint, NULL));
    CHECK(!c.bad);
    CHECK_MSG(c.samples == below, "exported %zu samples, %zu below the cut", c.samples, below);
    /* Still readable until truncated; then only what is above the cut (and
     * what arrived during the export) remains. */
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "exported, not truncated");
    head_truncate(h);
    for (int i = 0; i < NS; i++) {
        /* The model keeps the late samples appended during this export
         * (t < cut) and everything at or above the cut. */
        ms_model *m = &M[i];
        size_t k = 0;
        for (size_t j = 0; j < m->n; j++) {
            bool late = false;
            for (size_t x = 0; x < c.nlate && !late; x++) late = c.late_series[x] == i && c.late_t[x] == m->t[j];
            if (m->t[j] >= cut || late) {
                m->t[k] = m->t[j];
                m->bits[k++] = m->bits[j];
            }
        }
        m->n = k;
    }
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "after truncate");
    /* A second export takes the samples that arrived during the first. */
    size_t nlate = c.nlate;
    c = (exp_ctx){h, 0, 0, {0}, c.a, cut, -1, false, rng, {0}, {0}, 0};
    CHECK_OK(head_export(h, cut, on_export, &c, &mint, NULL));
    CHECK(!c.bad && c.calls > 0 && nlate > 0);
    sm_arena_free(c.a);
    sm_matcher_fini(&re_all);
    head_free(h);
}

/* ---- concurrency ---- */

typedef struct thr {
    head *h;
    int id;
    int errors;
} thr;

static void *appender(void *p) {
    thr *t = p;
    for (int k = 0; k < 3000; k++) {
        for (int i = t->id; i < NS; i += 4) {
            int rc = head_append(t->h, M[i].ref, 1000 + (sm_ms_t)k * 1000, (double)k, true);
            if (rc != HEAD_APPENDED) t->errors++;
        }
    }
    return NULL;
}

static void *reader(void *p) {
    thr *t = p;
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_RE, "__name__", ".+", NULL);
    for (int k = 0; k < 200; k++) {
        sm_arena *a = sm_arena_new(0, 0);
        tsdb_sel sel;
        if (head_select(t->h, &m, 1, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, NULL)) t->errors++;
        for (size_t s = 0; s < sel.n; s++) {
            merge_iter *it;
            merge_iter_new(a, sel.v[s].chunks, sel.v[s].nchunks, SM_MS_MIN, SM_MS_MAX, &it);
            sm_ms_t prev = SM_MS_MIN, ts;
            double v;
            while (merge_iter_next(it, &ts, &v) == 1) {
                if (ts <= prev || v != (double)((ts - 1000) / 1000)) t->errors++;
                prev = ts;
            }
        }
        sm_arena_free(a);
    }
    sm_matcher_fini(&m);
    return NULL;
}

static void test_concurrency(void) {
    head *h = new_head(0);
    pthread_t th[6];
    thr args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (thr){h, i, 0};
        pthread_create(&th[i], NULL, i < 4 ? appender : reader, &args[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(args[i].errors == 0, "thread %d: %d errors", i, args[i].errors);
    }
    head_stats st;
    head_get_stats(h, &st);
    CHECK(st.samples == (uint64_t)NS * 3000);
    head_free(h);
}

/* Overhead per series beyond its samples' bytes: under 1 KiB. */
static void test_memory(void) {
    head_opts o = {HOUR, 120, 2 * HOUR, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    char inst[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(inst, sizeof inst, "host-%05d:9100", i);
        sm_label l[4] = {{"__name__", "node_cpu_seconds_total"}, {"cpu", "3"}, {"instance", inst},
                         {"job", "node"}};
        uint64_t ref;
        bool created;
        CHECK_OK(head_get_or_create(h, &(sm_labels){l, 4}, &ref, &created, NULL));
        for (int k = 0; k < 4; k++) head_append(h, ref, 1000 + k * 15000, 1.0, true);
    }
    head_stats st;
    head_get_stats(h, &st);
    CHECK_MSG(st.bytes / st.series < 1024, "head bytes per series with 4 samples: %llu",
              (unsigned long long)(st.bytes / st.series));
    printf("head memory: %llu bytes per series (5000 series, 4 samples each)\n",
           (unsigned long long)(st.bytes / st.series));
    head_free(h);
}

/* What the head really allocates, from jemalloc's own count: sealed chunks
 * must not keep chunk_encode's worst-case reservation (they once kept
 * about 4 KiB each, 30 times their bytes). */
static void test_memory_sealed(void) {
    if (strcmp(sm_alloc_name(), "jemalloc") != 0) { /* sanitizer builds: no statistics */
        printf("head heap: not measured, the allocator is %s\n", sm_alloc_name());
        return;
    }
    sm_alloc_stats a0, a1;
    sm_alloc_get_stats(&a0);
    head_opts o = {HOUR, 120, 2 * HOUR, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    char inst[32];
    const int nser = 2000;
    for (int i = 0; i < nser; i++) {
        snprintf(inst, sizeof inst, "host-%05d:9100", i);
        sm_label l[3] = {{"__name__", "node_network_receive_bytes_total"}, {"instance", inst}, {"job", "node"}};
        uint64_t ref;
        bool created;
        CHECK_OK(head_get_or_create(h, &(sm_labels){l, 3}, &ref, &created, NULL));
        double v = 0;
        for (int k = 0; k < 360; k++) { /* two sealed chunks and an open one */
            v += 1000 + (k * 37 + i) % 200;
            head_append(h, ref, 2 * HOUR * 850000 + k * 15000, v, true);
        }
    }
    head_stats st;
    head_get_stats(h, &st);
    sm_alloc_get_stats(&a1);
    CHECK_MSG(a1.allocated_bytes > 0, "no allocator statistics: is jemalloc linked?");
    uint64_t heap = (a1.allocated_bytes - a0.allocated_bytes) / (uint64_t)nser;
    CHECK_MSG(st.chunks == 3ull * nser, "%llu chunks", (unsigned long long)st.chunks);
    CHECK_MSG(heap < 2048, "heap bytes per series with 360 samples: %llu (head_stats says %llu)",
              (unsigned long long)heap, (unsigned long long)(st.bytes / st.series));
    printf("head heap: %llu bytes per series (2000 series, 360 samples each)\n", (unsigned long long)heap);
    head_free(h);
}

static void test_limits(void) {
    head *h = new_head(NS + 1);
    sm_label l[1] = {{"__name__", "extra"}};
    sm_label l2[1] = {{"__name__", "extra2"}};
    uint64_t ref;
    bool created;
    sm_error err = {0};
    CHECK_OK(head_get_or_create(h, &(sm_labels){l, 1}, &ref, &created, NULL));
    CHECK_EQ_INT(head_get_or_create(h, &(sm_labels){l2, 1}, &ref, &created, &err), SM_ELIMIT);
    head_free(h);

    /* Replay creation: given refs, idempotent, later refs continue above. */
    head_opts o = {HOUR, 120, 2 * HOUR, 0};
    CHECK_OK(head_new(&o, &h));
    CHECK_OK(head_create_with_ref(h, 40, &(sm_labels){l, 1}, NULL));
    CHECK_OK(head_create_with_ref(h, 40, &(sm_labels){l, 1}, NULL));
    CHECK_EQ_INT(head_create_with_ref(h, 41, &(sm_labels){l, 1}, NULL), SM_EINVAL);
    CHECK_EQ_INT(head_create_with_ref(h, 40, &(sm_labels){l2, 1}, NULL), SM_EINVAL);
    CHECK(head_has_series(h, 40) && !head_has_series(h, 41));
    CHECK_OK(head_get_or_create(h, &(sm_labels){l2, 1}, &ref, &created, NULL));
    CHECK(created && ref == 41);
    CHECK(!head_series_logged(h, 41));
    head_series_set_logged(h, 41);
    CHECK(head_series_logged(h, 41));
    /* An empty series goes at truncate. */
    head_truncate(h);
    CHECK(!head_has_series(h, 40));
    head_free(h);
}

/* ---- targeted tests: a growable model keyed by a label "i" ---- */

typedef struct dm {
    sm_ms_t *t;
    uint64_t *b; /* value bits */
    size_t n, cap;
} dm;

static int dm_put(dm *m, sm_ms_t t, double v) {
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->t = sm_realloc(m->t, m->cap * sizeof *m->t);
        m->b = sm_realloc(m->b, m->cap * sizeof *m->b);
    }
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->t[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    if (lo < m->n && m->t[lo] == t) {
        if (m->b[lo] == sm_f64_bits(v)) return HEAD_DUPLICATE;
        m->b[lo] = sm_f64_bits(v);
        return HEAD_REPLACED;
    }
    memmove(m->t + lo + 1, m->t + lo, (m->n - lo) * sizeof *m->t);
    memmove(m->b + lo + 1, m->b + lo, (m->n - lo) * sizeof *m->b);
    m->t[lo] = t;
    m->b[lo] = sm_f64_bits(v);
    m->n++;
    return HEAD_APPENDED;
}

static void dm_free(dm *m) {
    sm_free(m->t);
    sm_free(m->b);
    memset(m, 0, sizeof *m);
}

typedef struct dser {
    char name[8], idx[8];
    sm_label lv[2];
    sm_labels ls;
    uint64_t ref;
    dm m;
} dser;

static void dser_init(head *h, dser *s, int i) {
    snprintf(s->name, sizeof s->name, "d%d", i % 3);
    snprintf(s->idx, sizeof s->idx, "%d", i);
    s->lv[0] = (sm_label){"__name__", s->name};
    s->lv[1] = (sm_label){"i", s->idx};
    s->ls = (sm_labels){s->lv, 2};
    memset(&s->m, 0, sizeof s->m);
    bool created;
    CHECK_OK(head_get_or_create(h, &s->ls, &s->ref, &created, NULL));
}

static sm_ms_t floor_win(sm_ms_t t, sm_ms_t r) { return t / r * r - (t % r < 0 ? r : 0); }

/* Check a chunk list's shape: sorted by mint, each chunk's header agreeing
 * with its ref, inside one range window, not overlapping the previous one
 * (when disjoint) and not larger than max_count.  Returns the problems. */
static size_t chunk_shape(const tsdb_chunk_ref *ch, uint32_t n, sm_ms_t range, bool disjoint,
                          uint32_t max_count) {
    size_t bad = 0;
    for (uint32_t c = 0; c < n; c++) {
        chunk_info ci;
        if (chunk_info_read(ch[c].data, ch[c].len, &ci) != 0) {
            bad++;
            continue;
        }
        bad += ci.mint != ch[c].mint || ci.maxt != ch[c].maxt || ci.count == 0;
        bad += ci.count > max_count;
        bad += floor_win(ch[c].mint, range) != floor_win(ch[c].maxt, range);
        if (c) {
            bad += ch[c].mint < ch[c - 1].mint;
            if (disjoint) bad += ch[c].mint <= ch[c - 1].maxt;
        }
    }
    return bad;
}

/* Select everything and compare with the models, sample by sample (bits). */
static void check_all(head *h, dser *S, int ns, sm_ms_t range, bool disjoint, uint32_t max_count,
                      const char *what) {
    sm_matcher all;
    CHECK_OK(sm_matcher_init(&all, SM_MATCH_RE, "__name__", ".+", NULL));
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    CHECK_OK(head_select(h, &all, 1, SM_MS_MIN, SM_MS_MAX, 3, a, &sel, NULL));
    size_t bad = 0, shape = 0, present = 0;
    for (size_t s = 0; s < sel.n; s++) {
        const char *iv = sm_labels_get(&sel.v[s].labels, "i");
        int i = iv ? atoi(iv) : -1;
        if (i < 0 || i >= ns || !sm_labels_equal(&S[i].ls, &sel.v[s].labels)) {
            bad++;
            continue;
        }
        present++;
        shape += chunk_shape(sel.v[s].chunks, sel.v[s].nchunks, range, disjoint, max_count);
        merge_iter *it;
        CHECK_OK(merge_iter_new(a, sel.v[s].chunks, sel.v[s].nchunks, SM_MS_MIN, SM_MS_MAX, &it));
        size_t k = 0;
        sm_ms_t t;
        double v;
        while (merge_iter_next(it, &t, &v) == 1) {
            if (k >= S[i].m.n || S[i].m.t[k] != t || S[i].m.b[k] != sm_f64_bits(v)) bad++;
            k++;
        }
        if (k != S[i].m.n) bad++;
    }
    size_t want = 0;
    for (int i = 0; i < ns; i++) want += S[i].m.n > 0;
    CHECK_MSG(present == want, "%s: %zu series, want %zu", what, present, want);
    CHECK_MSG(bad == 0, "%s: %zu sample mismatches", what, bad);
    CHECK_MSG(shape == 0, "%s: %zu chunk shape problems", what, shape);
    sm_arena_free(a);
    sm_matcher_fini(&all);
}

/* Value identity is by bits: the stale marker, another NaN, -0.0 and 0.0
 * are four different values; in the open chunk, in sealed chunks and in
 * gaps alike.  And the window's edges. */
static void test_values(void) {
    head_opts o = {HOUR, 4, 2 * HOUR, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    CHECK_EQ_INT(head_check_window(h, SM_MS_MIN), 0); /* empty head: anything goes */
    dser S[1];
    dser_init(h, &S[0], 0);
    const double stale = sm_f64_from_bits(SM_STALE_NAN_BITS);
    const double nan2 = sm_f64_from_bits(0x7ff8000000000001ULL);
    /* Times: 10..18 s sealed (chunks of 4), then a gap, then 100..102 s open. */
    for (int k = 0; k < 12; k++) {
        sm_ms_t t = k < 9 ? 10000 + k * 1000 : 100000 + (k - 9) * 1000;
        dm_put(&S[0].m, t, k);
        CHECK_EQ_INT(head_append(h, S[0].ref, t, k, true), HEAD_APPENDED);
    }
    const sm_ms_t where[] = {101000, 101500, 12000, 12500, 50000, 9000};
    for (size_t w = 0; w < sizeof where / sizeof *where; w++) {
        sm_ms_t t = where[w];
        const double seq[] = {stale, stale, nan2, nan2, stale, -0.0, -0.0, 0.0, 0.0, -0.0, 1.5};
        for (size_t q = 0; q < sizeof seq / sizeof *seq; q++) {
            int want = dm_put(&S[0].m, t, seq[q]);
            int got = head_append(h, S[0].ref, t, seq[q], true);
            CHECK_MSG(got == want, "t=%lld step %zu: got %d want %d", (long long)t, q, got, want);
        }
        check_all(h, S, 1, 2 * HOUR, true, 8, "value bits");
    }
    head_stats st;
    head_get_stats(h, &st);
    CHECK_EQ_INT(st.samples, S[0].m.n);
    CHECK_EQ_INT(st.mint, 9000);
    CHECK_EQ_INT(st.maxt, 102000);
    /* Window edges: newest 102000, window 1 h. */
    CHECK_EQ_INT(head_check_window(h, 102000 - HOUR), 0);
    CHECK_EQ_INT(head_check_window(h, 102000 - HOUR - 1), SM_ERANGE);
    CHECK_EQ_INT(head_check_window(h, SM_MS_MIN), SM_ERANGE);
    CHECK_EQ_INT(head_check_window(h, SM_MS_MAX), 0);
    CHECK_EQ_INT(head_append(h, S[0].ref, 102000 - HOUR - 1, 1.0, true), SM_ERANGE);
    /* Replay skips the check. */
    CHECK_EQ_INT(head_append(h, S[0].ref, 102000 - HOUR - 1, 1.0, false), HEAD_APPENDED);
    dm_put(&S[0].m, 102000 - HOUR - 1, 1.0);
    check_all(h, S, 1, 2 * HOUR, true, 8, "replayed old sample");
    dm_free(&S[0].m);
    head_free(h);
}

/* Heavy late traffic with tiny chunks and windows: the chunk lists stay
 * sorted, disjoint, inside windows and bounded, and hold the model. */
static void test_shapes(uint64_t *rng) {
    enum { N = 8 };
    const sm_ms_t R = 600000; /* 10 min windows */
    head_opts o = {10 * HOUR, 7, R, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    dser S[N];
    for (int i = 0; i < N; i++) dser_init(h, &S[i], i);
    sm_ms_t now = -3 * R + 17; /* negative times too: windows floor */
    size_t mism = 0;
    for (int op = 0; op < 24000; op++) {
        now += 1000;
        dser *s = &S[check_rand_below(rng, N)];
        sm_ms_t t = now;
        double v = rand_value(rng);
        uint64_t kind = check_rand_below(rng, 6);
        if (kind <= 1 && s->m.n) t = now - (sm_ms_t)check_rand_below(rng, 2 * HOUR);
        if (kind == 2 && s->m.n) {
            size_t j = s->m.n - 1 - check_rand_below(rng, s->m.n < 50 ? s->m.n : 50);
            t = s->m.t[j];
            if (check_rand_below(rng, 2)) v = sm_f64_from_bits(s->m.b[j]);
        }
        int want = dm_put(&s->m, t, v);
        int got = head_append(h, s->ref, t, v, true);
        mism += got != want;
        if (op % 6000 == 5999) check_all(h, S, N, R, true, 14, "shapes");
    }
    CHECK_MSG(mism == 0, "%zu append results differ from the model", mism);
    head_stats st;
    head_get_stats(h, &st);
    size_t total = 0;
    for (int i = 0; i < N; i++) total += S[i].m.n;
    CHECK_EQ_INT(st.samples, total);
    printf("shapes: %zu samples in %llu chunks (max 7 per chunk, 10 min windows)\n", total,
           (unsigned long long)st.chunks);
    for (int i = 0; i < N; i++) dm_free(&S[i].m);
    head_free(h);
}

/* ---- export with late samples inside the exported spans ---- */

enum { XN = 6 };

typedef struct xctx {
    head *h;
    dser *S;
    sm_ms_t cut, range;
    uint32_t maxc; /* most samples in a chunk; 0: 10 */
    int ns;        /* series in S; 0: XN (inject needs XN or fewer) */
    int fail_at, calls;
    bool inject, bad;
    uint64_t *rng;
    sm_ms_t late_t[XN][8]; /* times injected during this export */
    int nlate[XN];
    size_t exported;
} xctx;

static int on_xexport(void *p, const sm_labels *ls, const tsdb_chunk_ref *ch, uint32_t n) {
    xctx *c = p;
    if (c->calls++ == c->fail_at) return SM_EIO;
    const char *iv = sm_labels_get(ls, "i");
    int i = iv ? atoi(iv) : -1;
    if (i < 0 || i >= (c->ns ? c->ns : XN)) {
        c->bad = true;
        return 0;
    }
    dser *s = &c->S[i];
    if (chunk_shape(ch, n, c->range, true, c->maxc ? c->maxc : 10) != 0) c->bad = true;
    /* Exactly the model's samples below the cut, in order. */
    size_t k = 0;
    for (uint32_t j = 0; j < n; j++) {
        sm_ms_t ts[256];
        double vs[256];
        size_t got;
        /* A chunk whose time column the head shares comes with the column. */
        if (ch[j].maxt >= c->cut ||
            chunk_decode_ref(ch[j].data, ch[j].len, ch[j].tcol, ch[j].tlen, ts, vs, 256, &got)) {
            c->bad = true;
            continue;
        }
        for (size_t q = 0; q < got; q++, k++)
            if (k >= s->m.n || s->m.t[k] != ts[q] || s->m.b[k] != sm_f64_bits(vs[q])) c->bad = true;
        c->exported += got;
    }
    if (k != s->m.n && s->m.t[k] < c->cut) c->bad = true;
    if (!c->inject || !s->m.n || s->m.t[0] >= c->cut) return 0;
    /* While the export runs: replace an exported sample, add one inside
     * an exported span, and one in a random spot below the cut. */
    for (int q = 0; q < 3 && c->nlate[i] < 8; q++) {
        sm_ms_t t;
        if (q == 0) {
            t = s->m.t[check_rand_below(c->rng, k ? k : 1)];
        } else if (q == 1) {
            const tsdb_chunk_ref *r = &ch[check_rand_below(c->rng, n)];
            t = r->mint + (sm_ms_t)check_rand_below(c->rng, (uint64_t)(r->maxt - r->mint + 1));
        } else {
            t = c->cut - 1 - (sm_ms_t)check_rand_below(c->rng, (uint64_t)c->cut);
        }
        double v = (double)check_rand_below(c->rng, 1000) + 0.5;
        dm_put(&s->m, t, v);
        if (head_append(c->h, s->ref, t, v, true) < 0) c->bad = true;
        bool seen = false;
        for (int x = 0; x < c->nlate[i]; x++) seen |= c->late_t[i][x] == t;
        if (!seen) c->late_t[i][c->nlate[i]++] = t;
    }
    return 0;
}

/* Keep in each model only t >= cut and the times in keep[i]. */
static void models_after_truncate(dser *S, sm_ms_t cut, const xctx *c) {
    for (int i = 0; i < XN; i++) {
        dm *m = &S[i].m;
        size_t k = 0;
        for (size_t j = 0; j < m->n; j++) {
            bool keep = m->t[j] >= cut;
            for (int x = 0; x < c->nlate[i] && !keep; x++) keep = c->late_t[i][x] == m->t[j];
            if (keep) {
                m->t[k] = m->t[j];
                m->b[k++] = m->b[j];
            }
        }
        m->n = k;
    }
}

/* shared: every series gets the same jittered times and chunks long enough
 * for their time columns to be shared (head.c, C1-C3), so exports, undos,
 * late merges and truncation run on chunks in the reference form. */
static void test_export_undo(uint64_t *rng, bool shared) {
    const sm_ms_t R = 60000;
    const uint32_t max = shared ? 40 : 5;
    head_opts o = {100 * HOUR, max, R, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    dser S[XN];
    for (int i = 0; i < XN; i++) dser_init(h, &S[i], i);
    for (sm_ms_t t0 = 0; t0 < 5 * R; t0 += 1000) {
        sm_ms_t t = shared ? t0 + (sm_ms_t)check_rand_below(rng, 8) : t0;
        for (int i = 0; i < XN; i++)
            if (shared || check_rand_below(rng, 4)) {
                double v = rand_value(rng);
                dm_put(&S[i].m, t, v);
                head_append(h, S[i].ref, t, v, true);
            }
    }
    head_stats st;
    head_get_stats(h, &st);
    if (shared)
        CHECK_MSG(st.shared_columns >= (uint64_t)(5 * R / 1000 / max), "%llu shared columns",
                  (unsigned long long)st.shared_columns);
    const sm_ms_t cut = 3 * R;
    static xctx c;
    sm_ms_t mint = 0;

    /* 1: the writer fails at the 5th series after late samples landed in
     * the exported spans of the first four; the undo merges them. */
    c = (xctx){.h = h, .S = S, .cut = cut, .range = R, .maxc = 2 * max, .fail_at = 4, .inject = true, .rng = rng};
    CHECK_EQ_INT(head_export(h, cut, on_xexport, &c, &mint, NULL), SM_EIO);
    CHECK(!c.bad);
    check_all(h, S, XN, R, true, 2 * max, "after a failed export with late samples");
    head_truncate(h);
    check_all(h, S, XN, R, true, 2 * max, "truncate after a failed export");

    /* 2: a good export with late samples: before truncate the newest
     * values win; after it only the late ones and t >= cut are left. */
    c = (xctx){.h = h, .S = S, .cut = cut, .range = R, .maxc = 2 * max, .fail_at = -1, .inject = true, .rng = rng};
    size_t below = 0;
    sm_ms_t want_mint = SM_MS_MAX;
    for (int i = 0; i < XN; i++)
        for (size_t k = 0; k < S[i].m.n; k++) {
            below += S[i].m.t[k] < cut;
            if (S[i].m.t[k] < want_mint) want_mint = S[i].m.t[k];
        }
    CHECK_OK(head_export(h, cut, on_xexport, &c, &mint, NULL));
    CHECK(!c.bad);
    CHECK_EQ_INT(c.exported, below);
    CHECK_EQ_INT(mint, want_mint);
    check_all(h, S, XN, R, false, 2 * max, "exported, late samples, not truncated");
    head_truncate(h);
    models_after_truncate(S, cut, &c);
    check_all(h, S, XN, R, true, 2 * max, "after truncate");

    /* 3: export the late ones (no truncate), add more late samples, then
     * a failing export: only its own chunks come back, not the previous
     * export's, which truncate then frees. */
    c = (xctx){.h = h, .S = S, .cut = cut, .range = R, .maxc = 2 * max, .fail_at = -1, .rng = rng};
    CHECK_OK(head_export(h, cut, on_xexport, &c, &mint, NULL));
    CHECK(!c.bad && c.exported > 0);
    static xctx late;
    late = (xctx){0};
    for (int i = 0; i < XN; i += 2) {
        sm_ms_t t = 1 + (sm_ms_t)check_rand_below(rng, (uint64_t)cut - 1);
        dm_put(&S[i].m, t, 7.0);
        CHECK_EQ_INT(head_append(h, S[i].ref, t, 7.0, true), HEAD_APPENDED);
        late.late_t[i][late.nlate[i]++] = t;
    }
    c = (xctx){.h = h, .S = S, .cut = cut, .range = R, .maxc = 2 * max, .fail_at = 0, .rng = rng};
    CHECK_EQ_INT(head_export(h, cut, on_xexport, &c, &mint, NULL), SM_EIO);
    head_truncate(h);
    models_after_truncate(S, cut, &late);
    check_all(h, S, XN, R, true, 2 * max, "failed export after an untruncated one");
    /* Everything out: empty series are dropped. */
    c = (xctx){.h = h, .S = S, .cut = SM_MS_MAX, .range = R, .maxc = 2 * max, .fail_at = -1, .rng = rng};
    CHECK_OK(head_export(h, SM_MS_MAX, on_xexport, &c, &mint, NULL));
    CHECK(!c.bad);
    head_truncate(h);
    head_get_stats(h, &st);
    CHECK_EQ_INT(st.series, 0);
    CHECK_EQ_INT(st.shared_columns, 0); /* every column went with its last chunk (C1) */
    CHECK_EQ_INT(st.sealed_bytes, 0);
    CHECK_EQ_INT(st.samples, 0);
    CHECK(st.mint == SM_MS_MAX && st.maxt == SM_MS_MIN);
    for (int i = 0; i < XN; i++) dm_free(&S[i].m);
    head_free(h);
}

/* Shared time columns in the head (head.c, C1-C3): SH series scraped at the
 * same jittered times share one column per chunk; two series with times of
 * their own keep their columns inline but for the newest sealed chunk; a
 * late sample re-encodes one sharer's chunk inline and the others keep
 * sharing; selects and exports give back exactly the samples appended. */
static void test_shared_columns(uint64_t *rng) {
    enum { SH = 16, LONE = 2, N = SH + LONE, MAXC = 30, ROUNDS = 400 };
    head_opts o = {HOUR, MAXC, 2 * HOUR, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    static dser S[N];
    for (int i = 0; i < N; i++) dser_init(h, &S[i], i);
    const sm_ms_t base = 1000 * 2 * HOUR; /* a window start: 400 rounds of 15 s fit in one */
    for (int k = 0; k < ROUNDS; k++) {
        sm_ms_t t = base + (sm_ms_t)k * 15000 + (sm_ms_t)check_rand_below(rng, 8);
        for (int i = 0; i < N; i++) {
            sm_ms_t ti = i < SH ? t : base + (sm_ms_t)k * 15000 + (sm_ms_t)check_rand_below(rng, 8);
            double v = rand_value(rng);
            dm_put(&S[i].m, ti, v);
            CHECK_EQ_INT(head_append(h, S[i].ref, ti, v, true), HEAD_APPENDED);
        }
    }
    const int sealed = ROUNDS / MAXC; /* chunks sealed per series: 13 */
    head_stats st;
    head_get_stats(h, &st);
    /* One column per sealed chunk of the sharers, one per loner (C3). */
    CHECK_EQ_INT(st.shared_columns, sealed + LONE);
    CHECK_EQ_INT(st.sealed_samples, (uint64_t)N * sealed * MAXC);
    check_all(h, S, N, 2 * HOUR, true, 2 * MAXC, "shared columns");

    /* What the sealed chunks would take with every column inline: each
     * sharer chunk's column (8 bytes or more, a reference 3 or 4) is saved
     * SH - 1 times over. */
    sm_matcher all;
    CHECK_OK(sm_matcher_init(&all, SM_MATCH_RE, "__name__", ".+", NULL));
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    CHECK_OK(head_select(h, &all, 1, SM_MS_MIN, SM_MS_MAX, 1, a, &sel, NULL));
    uint64_t inline_bytes = 0, refs = 0;
    sm_buf xb = SM_BUF_INIT;
    for (size_t x = 0; x < sel.n; x++)
        for (uint32_t c = 0; c + 1 < sel.v[x].nchunks; c++) { /* the last is the open chunk */
            const tsdb_chunk_ref *cr = &sel.v[x].chunks[c];
            CHECK(chunk_is_ref(cr->data, cr->len) == (cr->tcol != NULL)); /* a column comes with its chunk */
            sm_buf_clear(&xb);
            if (cr->tcol) {
                CHECK_OK(chunk_ref_expand_to(cr->data, cr->len, cr->tcol, cr->tlen, &xb));
                inline_bytes += xb.len;
                refs++;
            } else {
                inline_bytes += cr->len;
            }
        }
    sm_buf_fini(&xb);
    sm_arena_free(a);
    CHECK_EQ_INT(refs, (uint64_t)SH * sealed + LONE); /* every sharer chunk and each loner's newest */
    sm_matcher_fini(&all);
    CHECK_MSG(st.sealed_bytes + (uint64_t)(SH - 1) * sealed * 4 <= inline_bytes, "sealed %llu bytes, %llu inline",
              (unsigned long long)st.sealed_bytes, (unsigned long long)inline_bytes);

    /* A late sample inside one of sharer 0's chunks: that chunk is encoded
     * again with its own column; the column stays for the other sharers. */
    sm_ms_t late = S[0].m.t[(sealed - 2) * MAXC + 5] + 1;
    dm_put(&S[0].m, late, 42.0);
    CHECK_EQ_INT(head_append(h, S[0].ref, late, 42.0, true), HEAD_APPENDED);
    head_get_stats(h, &st);
    CHECK_EQ_INT(st.shared_columns, sealed + LONE);
    check_all(h, S, N, 2 * HOUR, true, 2 * MAXC, "shared columns after a late sample");

    /* Export everything sealed, failing half way (the undo puts the
     * reference-form chunks back), then for real, then truncate. */
    static xctx c;
    sm_ms_t cut = base + (sm_ms_t)sealed * MAXC * 15000 - 1000; /* the open chunks start after it */
    c = (xctx){.h = h, .S = S, .cut = cut, .range = 2 * HOUR, .maxc = 2 * MAXC, .ns = N, .fail_at = N / 2, .rng = rng};
    CHECK_EQ_INT(head_export(h, cut, on_xexport, &c, NULL, NULL), SM_EIO);
    CHECK(!c.bad);
    check_all(h, S, N, 2 * HOUR, true, 2 * MAXC, "shared columns after a failed export");
    head_truncate(h);
    c = (xctx){.h = h, .S = S, .cut = cut, .range = 2 * HOUR, .maxc = 2 * MAXC, .ns = N, .fail_at = -1, .rng = rng};
    CHECK_OK(head_export(h, cut, on_xexport, &c, NULL, NULL));
    CHECK(!c.bad);
    head_truncate(h);
    head_get_stats(h, &st);
    CHECK_EQ_INT(st.shared_columns, 0); /* only open chunks are left */
    for (int i = 0; i < N; i++) dm_free(&S[i].m);
    head_free(h);
}

/* Label values longer than any fixed buffer are indexed like others. */
static void test_long_labels(void) {
    head_opts o = {HOUR, 120, 2 * HOUR, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    size_t L = 20000;
    char *big = sm_malloc(L + 1);
    memset(big, 'x', L);
    big[L] = '\0';
    big[L - 1] = 'y';
    sm_label l[2] = {{"__name__", "long"}, {"v", big}};
    uint64_t ref;
    bool created;
    CHECK_OK(head_get_or_create(h, &(sm_labels){l, 2}, &ref, &created, NULL));
    CHECK_EQ_INT(head_append(h, ref, 1000, 1.0, true), HEAD_APPENDED);
    sm_matcher m[3];
    CHECK_OK(sm_matcher_init(&m[0], SM_MATCH_EQ, "v", big, NULL));
    CHECK_OK(sm_matcher_init(&m[1], SM_MATCH_RE, "v", "x+y", NULL));
    CHECK_OK(sm_matcher_init(&m[2], SM_MATCH_NEQ, "v", "z", NULL));
    for (int k = 0; k < 3; k++) {
        sm_arena *a = sm_arena_new(0, 0);
        tsdb_sel sel;
        CHECK_OK(head_select(h, &m[k], 1, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, NULL));
        CHECK_MSG(sel.n == 1 && !strcmp(sm_labels_get(&sel.v[0].labels, "v"), big),
                  "long label value, matcher %d: %zu series", k, sel.n);
        const char **vals;
        size_t nv;
        CHECK_OK(head_label_values(h, "v", &m[k], 1, SM_MS_MIN, SM_MS_MAX, a, &vals, &nv, NULL));
        CHECK(nv == 1 && !strcmp(vals[0], big));
        sm_arena_free(a);
        sm_matcher_fini(&m[k]);
    }
    sm_free(big);
    head_free(h);
}

/* ---- cuts while appending: every sample exported exactly once ---- */

enum { CN = 8, CK = 3000 };
static const sm_ms_t CR = 50000;

typedef struct cctx {
    head *h;
    dser *S;
    _Atomic int done;
    unsigned char seen[CN][CK];
    int bad, errors, cuts;
    uint64_t max_shared; /* most shared time columns a cut saw */
} cctx;

/* Every series' k-th sample is at k s plus a jitter shared by all of them,
 * so their chunks share time columns (head.c, C1-C3) while cuts run. */
static sm_ms_t c_time(int k) { return (sm_ms_t)k * 1000 + (sm_ms_t)(((uint32_t)k * 2654435761u >> 7) & 15); }

static int on_cexport(void *p, const sm_labels *ls, const tsdb_chunk_ref *ch, uint32_t n) {
    cctx *c = p;
    const char *iv = sm_labels_get(ls, "i");
    int i = iv ? atoi(iv) : -1;
    if (i < 0 || i >= CN) {
        c->bad++;
        return 0;
    }
    c->bad += (int)chunk_shape(ch, n, CR, true, 20);
    for (uint32_t j = 0; j < n; j++) {
        sm_ms_t ts[32];
        double vs[32];
        size_t got;
        if (chunk_decode_ref(ch[j].data, ch[j].len, ch[j].tcol, ch[j].tlen, ts, vs, 32, &got)) {
            c->bad++;
            continue;
        }
        for (size_t q = 0; q < got; q++) {
            int64_t k = ts[q] / 1000;
            if (k < 0 || k >= CK || vs[q] != (double)k) c->bad++;
            else c->seen[i][k]++;
        }
    }
    return 0;
}

typedef struct cthr {
    cctx *c;
    int id;
} cthr;

static void *c_appender(void *p) {
    cthr *a = p;
    cctx *c = a->c;
    for (int k = 0; k < CK; k++)
        for (int i = a->id; i < CN; i += 2) {
            int rc;
            /* A cut may drop a series whose data it all took (as in tsdb.c,
             * the writer then creates it again under a new ref). */
            while ((rc = head_append(c->h, c->S[i].ref, c_time(k), (double)k, true)) == SM_ENOTFOUND) {
                bool created;
                if (head_get_or_create(c->h, &c->S[i].ls, &c->S[i].ref, &created, NULL)) break;
            }
            if (rc != HEAD_APPENDED) c->errors++;
            if (k % (4 + 4 * a->id) == 0) sched_yield(); /* let cuts interleave; 1 lags */
        }
    return NULL;
}

static void *c_cutter(void *p) {
    cctx *c = p;
    sm_ms_t last = SM_MS_MIN;
    while (!atomic_load(&c->done)) {
        head_stats st;
        head_get_stats(c->h, &st);
        if (st.shared_columns > c->max_shared) c->max_shared = st.shared_columns;
        sm_ms_t cut = st.maxt == SM_MS_MIN ? SM_MS_MIN : st.maxt / CR * CR - CR;
        if (cut <= last) {
            sched_yield();
            continue;
        }
        sm_ms_t mint;
        if (head_export(c->h, cut, on_cexport, c, &mint, NULL)) c->errors++;
        head_truncate(c->h);
        c->cuts++;
        last = cut;
    }
    return NULL;
}

static void *c_reader(void *p) {
    cctx *c = p;
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_RE, "__name__", ".+", NULL);
    while (!atomic_load(&c->done)) {
        sm_arena *a = sm_arena_new(0, 0);
        tsdb_sel sel;
        if (head_select(c->h, &m, 1, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, NULL) == 0)
            for (size_t s = 0; s < sel.n; s++) {
                merge_iter *it;
                merge_iter_new(a, sel.v[s].chunks, sel.v[s].nchunks, SM_MS_MIN, SM_MS_MAX, &it);
                sm_ms_t prev = SM_MS_MIN, ts;
                double v;
                while (merge_iter_next(it, &ts, &v) == 1) {
                    if (ts <= prev) c->bad++;
                    prev = ts;
                }
            }
        sm_arena_free(a);
    }
    sm_matcher_fini(&m);
    return NULL;
}

static void test_concurrent_cuts(void) {
    head_opts o = {1000 * HOUR, 20, CR, 0};
    head *h;
    CHECK_OK(head_new(&o, &h));
    static dser S[CN];
    static cctx c;
    memset(&c, 0, sizeof c);
    c.h = h;
    c.S = S;
    for (int i = 0; i < CN; i++) dser_init(h, &S[i], i);
    pthread_t ap[2], cu, rd;
    cthr args[2] = {{&c, 0}, {&c, 1}};
    pthread_create(&cu, NULL, c_cutter, &c);
    pthread_create(&rd, NULL, c_reader, &c);
    for (int i = 0; i < 2; i++) pthread_create(&ap[i], NULL, c_appender, &args[i]);
    for (int i = 0; i < 2; i++) pthread_join(ap[i], NULL);
    atomic_store(&c.done, 1);
    pthread_join(cu, NULL);
    pthread_join(rd, NULL);
    sm_ms_t mint;
    CHECK_OK(head_export(h, SM_MS_MAX, on_cexport, &c, &mint, NULL));
    head_truncate(h);
    size_t wrong = 0;
    for (int i = 0; i < CN; i++)
        for (int k = 0; k < CK; k++) wrong += c.seen[i][k] != 1;
    CHECK_MSG(wrong == 0, "%zu samples not exported exactly once (%d cuts)", wrong, c.cuts);
    CHECK_EQ_INT(c.bad, 0);
    CHECK_EQ_INT(c.errors, 0);
    CHECK_MSG(c.max_shared > 0, "no time column was shared");
    head_stats st;
    head_get_stats(h, &st);
    CHECK_EQ_INT(st.series, 0);
    CHECK_EQ_INT(st.shared_columns, 0);
    printf("concurrent cuts: %d cuts while appending %d samples (up to %llu shared time columns)\n", c.cuts,
           CN * CK, (unsigned long long)c.max_shared);
    head_free(h);
}

/* ---- batch calls: head_lookup_many and head_append_runs ---- */

/* The appender's batch path against the same model: lookups of known and
 * unknown label sets, logged flags set by runs, runs with late samples,
 * duplicates and replacements (also inside one run), and a batch that
 * stops at an unknown ref after storing the runs before it. */
static void test_batch(uint64_t *rng) {
    head *h = new_head(0);
    const sm_labels *ls[NS + 2];
    sm_label ghost_lv[2] = {{"__name__", "m0"}, {"instance", "nowhere"}};
    sm_labels ghost = {ghost_lv, 2}, empty_set = {NULL, 0};
    for (int i = 0; i < NS; i++) ls[i] = &M[i].ls;
    ls[NS] = &ghost;
    ls[NS + 1] = &empty_set;
    uint64_t refs[NS + 2] = {0}, hashes[NS + 2];
    bool logged[NS + 2];
    head_lookup_many(h, ls, NULL, NS + 2, refs, logged);
    for (int i = 0; i < NS; i++) CHECK_MSG(refs[i] == M[i].ref && !logged[i], "lookup %d", i);
    CHECK(refs[NS] == 0 && !logged[NS] && refs[NS + 1] == 0 && !logged[NS + 1]);
    /* With the caller's hashes (0 for one: computed) and hints: a right
     * one, one whose series does not exist, one that names another
     * series (its hash differs: looked up again), none. */
    for (int i = 0; i < NS + 2; i++) hashes[i] = i == 1 ? 0 : sm_labels_hash(ls[i]);
    for (int i = 0; i < NS; i++) refs[i] = i % 4 == 0 ? M[i].ref : i % 4 == 1 ? 999999 : i % 4 == 2 ? M[(i + 1) % NS].ref : 0;
    refs[NS] = M[0].ref; /* the ghost's hash is not M[0]'s */
    head_lookup_many(h, ls, hashes, NS + 2, refs, logged);
    for (int i = 0; i < NS; i++) CHECK_MSG(refs[i] == M[i].ref && !logged[i], "lookup with hints %d", i);
    CHECK(refs[NS] == 0 && refs[NS + 1] == 0);

    enum { PER = 9 };
    static sm_ms_t ts[NS][PER];
    static double vs[NS][PER];
    sm_ms_t now = 1700000000000;
    for (int round = 0; round < 300; round++) {
        now += 15000;
        head_run runs[NS];
        head_run_result want = {0};
        for (int i = 0; i < NS; i++) {
            ms_model *m = &M[i];
            uint32_t n = 1 + (uint32_t)check_rand_below(rng, PER);
            for (uint32_t k = 0; k < n; k++) {
                sm_ms_t t = now + i + (sm_ms_t)k;
                double v = rand_value(rng);
                int kind = (int)check_rand_below(rng, 6);
                if (kind == 0 && m->n) t = now - (sm_ms_t)check_rand_below(rng, HOUR - 20000);
                if (kind == 1 && k) { /* a time earlier in this run */
                    t = ts[i][check_rand_below(rng, k)];
                    if (check_rand_below(rng, 2)) v = vs[i][k - 1];
                }
                ts[i][k] = t;
                vs[i][k] = v;
                int r = model_put(m, t, v);
                want.stored++;
                want.duplicates += r == HEAD_DUPLICATE;
                want.replaced += r == HEAD_REPLACED;
            }
            runs[i] = (head_run){m->ref, ts[i], vs[i], n, round == 0 && i % 3 == 0};
        }
        head_run_result got = {0};
        CHECK_OK(head_append_runs(h, runs, NS, &got));
        if (got.stored != want.stored || got.duplicates != want.duplicates || got.replaced != want.replaced) {
            CHECK_MSG(0, "round %d: stored/dup/replaced %llu/%llu/%llu want %llu/%llu/%llu", round,
                      (unsigned long long)got.stored, (unsigned long long)got.duplicates,
                      (unsigned long long)got.replaced, (unsigned long long)want.stored,
                      (unsigned long long)want.duplicates, (unsigned long long)want.replaced);
            break;
        }
    }
    head_lookup_many(h, ls, NULL, NS, refs, logged); /* the refs as hints */
    for (int i = 0; i < NS; i++) CHECK_MSG(refs[i] == M[i].ref && logged[i] == (i % 3 == 0), "logged %d", i);
    bool all[NS];
    for (int i = 0; i < NS; i++) all[i] = true;
    sm_matcher re_all;
    CHECK_OK(sm_matcher_init(&re_all, SM_MATCH_RE, "__name__", "m.", NULL));
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "after runs");

    /* An unknown ref in the middle: the runs before it are stored and
     * counted, the ones after it are not. */
    sm_ms_t t1 = now + 15000;
    double one = 1.5;
    head_run bad[3] = {{M[0].ref, &t1, &one, 1, false}, {999999, &t1, &one, 1, false},
                       {M[1].ref, &t1, &one, 1, false}};
    head_run_result got = {0};
    CHECK_EQ_INT(head_append_runs(h, bad, 3, &got), SM_ENOTFOUND);
    CHECK(got.stored == 1 && got.duplicates == 0 && got.replaced == 0);
    model_put(&M[0], t1, one);
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "after a failed batch");
    /* Two runs of one series in one batch (a request may repeat a
     * series) keep their order: the later value at a time wins. */
    sm_ms_t t2 = t1 + 15000;
    double v1 = 7.0, v2 = 8.0, v3 = 9.0;
    head_run twice[3] = {{M[0].ref, &t2, &v1, 1, false}, {M[1].ref, &t2, &v3, 1, false},
                         {M[0].ref, &t2, &v2, 1, false}};
    got = (head_run_result){0};
    CHECK_OK(head_append_runs(h, twice, 3, &got));
    CHECK(got.stored == 3 && got.replaced == 1 && got.duplicates == 0);
    model_put(&M[0], t2, v1);
    model_put(&M[0], t2, v2);
    model_put(&M[1], t2, v3);
    check_select(h, &re_all, 1, SM_MS_MIN, SM_MS_MAX, all, "two runs of one series");
    head_stats st;
    head_get_stats(h, &st);
    CHECK(st.maxt == t2);
    sm_matcher_fini(&re_all);
    head_free(h);
}

/* Creation of many series under one lock: new ones made, existing ones
 * found, and those past max_series left with ref 0. */
static void test_create_many(void) {
    head *h = new_head(NS + 2);
    sm_label a[2] = {{"__name__", "new"}, {"instance", "a"}}, b[2] = {{"__name__", "new"}, {"instance", "b"}},
             c[2] = {{"__name__", "new"}, {"instance", "c"}};
    sm_labels la = {a, 2}, lb = {b, 2}, lc = {c, 2};
    const sm_labels *ls[5] = {&la, &M[3].ls, &lb, &la, &lc};
    uint64_t refs[5];
    bool created[5];
    CHECK_OK(head_get_or_create_many(h, ls, 5, refs, created));
    CHECK(refs[0] && created[0] && refs[1] == M[3].ref && !created[1]);
    CHECK(refs[2] && created[2] && refs[2] != refs[0]);
    CHECK(refs[3] == refs[0] && !created[3]); /* the same set twice in one call */
    CHECK(refs[4] == 0 && !created[4]);       /* past max_series */
    uint64_t again;
    bool cr;
    CHECK_OK(head_get_or_create(h, &lb, &again, &cr, NULL));
    CHECK(again == refs[2] && !cr);
    head_free(h);
}

int main(void) {
    uint64_t rng = check_seed();
    test_model(&rng);
    test_batch(&rng);
    test_create_many();
    test_export(&rng);
    test_concurrency();
    test_limits();
    test_memory();
    test_memory_sealed();
    test_values();
    test_shapes(&rng);
    test_export_undo(&rng, false);
    test_export_undo(&rng, true);
    test_shared_columns(&rng);
    test_long_labels();
    test_concurrent_cuts();
    return check_done();
}
