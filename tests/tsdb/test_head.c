/* SPDX-License-Identifier: Apache-2.0
 *
 * test_head.c - the in-memory head against a model: in-order, late,
 * duplicate and replacing samples (float specials compared by bits, so the
 * stale marker and -0.0 count as values of their own); selection by every
 * matcher kind and time range; export below a cut and truncation, with
 * samples arriving during the export; concurrent appenders and readers;
 * limits and WAL-replay creation.
 */
#include <pthread.h>
#include <stdio.h>
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

int main(void) {
    uint64_t rng = check_seed();
    test_model(&rng);
    test_export(&rng);
    test_concurrency();
    test_limits();
    test_memory();
    return check_done();
}
