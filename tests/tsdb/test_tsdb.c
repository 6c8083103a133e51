/* SPDX-License-Identifier: Apache-2.0
 *
 * test_tsdb.c - the storage engine through its public API, against a model:
 * random series and samples (out of order within the window, duplicates,
 * replacements, every float special) appended in batches, then read back
 * bit for bit after each stage of a sample's life: in the head, replayed
 * from the WAL, cut into blocks, compacted, reopened.  Also: rejections
 * with their counts and messages, matchers, label listings, retention, and
 * a torn WAL tail.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/fsutil.h"
#include "tsdb/tsdb.h"

#define NSERIES 40
#define MAXS 6000
#define HOUR 3600000LL

typedef struct mseries {
    char name[32], job[16], inst[16];
    sm_label lv[3];
    sm_labels ls;
    sm_ms_t t[MAXS];
    uint64_t bits[MAXS];
    size_t n;
} mseries;

static mseries model[NSERIES];

static void model_init(void) {
    for (int i = 0; i < NSERIES; i++) {
        mseries *m = &model[i];
        snprintf(m->name, sizeof m->name, "metric_%d", i % 7);
        snprintf(m->inst, sizeof m->inst, "host-%02d", i);
        snprintf(m->job, sizeof m->job, "%s", i % 3 == 0 ? "api" : i % 3 == 1 ? "db" : "web");
        m->lv[0] = (sm_label){"__name__", m->name};
        m->lv[1] = (sm_label){"instance", m->inst};
        m->lv[2] = (sm_label){"job", m->job};
        m->ls = (sm_labels){m->lv, 3};
        m->n = 0;
    }
}

/* Last write wins, as the engine promises. */
static void model_put(mseries *m, sm_ms_t t, double v) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->t[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    if (lo < m->n && m->t[lo] == t) {
        m->bits[lo] = sm_f64_bits(v);
        return;
    }
    if (m->n == MAXS) return;
    memmove(m->t + lo + 1, m->t + lo, (m->n - lo) * sizeof *m->t);
    memmove(m->bits + lo + 1, m->bits + lo, (m->n - lo) * sizeof *m->bits);
    m->t[lo] = t;
    m->bits[lo] = sm_f64_bits(v);
    m->n++;
}

static double rand_value(uint64_t *rng) {
    switch (check_rand_below(rng, 8)) {
    case 0: return sm_f64_from_bits(SM_STALE_NAN_BITS);
    case 1: return -0.0;
    case 2: return INFINITY;
    case 3: return sm_f64_from_bits(check_rand(rng));
    default: return (double)check_rand_below(rng, 100000) / 100.0;
    }
}

static sm_ms_t g_now;   /* newest time appended */
static sm_ms_t g_floor; /* after a flush, older samples are out of bounds */

/* Append `rounds` scrapes of every series, with out-of-order and duplicate
 * samples mixed in. */
static void append_rounds(tsdb *db, uint64_t *rng, int rounds, sm_ms_t step) {
    tsdb_sample smp[NSERIES][4];
    tsdb_series_in in[NSERIES];
    for (int r = 0; r < rounds; r++) {
        g_now += step;
        for (int i = 0; i < NSERIES; i++) {
            mseries *m = &model[i];
            uint32_t k = 0;
            smp[i][k++] = (tsdb_sample){g_now + i, rand_value(rng)};
            if (check_rand_below(rng, 10) == 0 && m->n) { /* out of order, within 10 min */
                sm_ms_t t = g_now - (sm_ms_t)check_rand_below(rng, HOUR / 6);
                if (t >= g_floor) smp[i][k++] = (tsdb_sample){t, rand_value(rng)};
            }
            if (check_rand_below(rng, 10) == 0 && m->n) { /* duplicate or replacement */
                size_t j = m->n - 1 - check_rand_below(rng, m->n < 5 ? m->n : 5);
                double v = check_rand_below(rng, 2) ? sm_f64_from_bits(m->bits[j]) : rand_value(rng);
                if (m->t[j] >= g_floor) smp[i][k++] = (tsdb_sample){m->t[j], v};
            }
            in[i] = (tsdb_series_in){m->ls, smp[i], k};
        }
        tsdb_append_result res;
        sm_error err = {0};
        int rc = tsdb_append(db, in, NSERIES, &res, &err);
        CHECK_MSG(rc == 0, "append: %d %s", rc, err.msg);
        if (rc) return;
        for (int i = 0; i < NSERIES; i++)
            for (uint32_t k = 0; k < in[i].n; k++) model_put(&model[i], in[i].samples[k].t, in[i].samples[k].v);
    }
}

/* Select everything and compare with the model. */
static void check_all(tsdb *db, const char *stage) {
    sm_matcher mt;
    CHECK_OK(sm_matcher_init(&mt, SM_MATCH_RE, "__name__", "metric_.*", NULL));
    tsdb_series_set *set;
    sm_error err = {0};
    int rc = tsdb_select(db, &mt, 1, SM_MS_MIN, SM_MS_MAX, NULL, &set, &err);
    CHECK_MSG(rc == 0, "%s: select: %s", stage, err.msg);
    if (rc) {
        sm_matcher_fini(&mt);
        return;
    }
    size_t want = 0;
    for (int i = 0; i < NSERIES; i++) want += model[i].n > 0;
    CHECK_MSG(tsdb_series_set_count(set) == want, "%s: %zu series, want %zu", stage,
              tsdb_series_set_count(set), want);
    size_t bad = 0;
    for (size_t s = 0; s < tsdb_series_set_count(set); s++) {
        const sm_labels *ls = tsdb_series_set_labels(set, s);
        mseries *m = NULL;
        for (int i = 0; i < NSERIES && !m; i++)
            if (sm_labels_equal(&model[i].ls, ls)) m = &model[i];
        CHECK(m != NULL);
        if (!m) continue;
        tsdb_iter *it;
        CHECK_OK(tsdb_series_set_iter(set, s, &it));
        size_t k = 0;
        sm_ms_t t;
        double v;
        while ((rc = tsdb_iter_next(it, &t, &v)) == 1) {
            if (k >= m->n || m->t[k] != t || m->bits[k] != sm_f64_bits(v)) bad++;
            k++;
        }
        CHECK_MSG(rc == 0, "%s: iterator error %d", stage, rc);
        if (k != m->n) bad++;
    }
    CHECK_MSG(bad == 0, "%s: %zu mismatches", stage, bad);
    tsdb_series_set_free(set);
    sm_matcher_fini(&mt);
}

static tsdb_opts test_opts(void) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.block_range_ms = HOUR;
    o.ooo_window_ms = HOUR;
    o.background = false;
    o.retention_ms = 0;
    o.wal_segment_bytes = 64 * 1024; /* several segments */
    return o;
}

static tsdb *reopen(tsdb *db, const char *dir, const tsdb_opts *o) {
    if (db) CHECK_OK(tsdb_close(db, NULL));
    sm_error err = {0};
    tsdb *n = NULL;
    int rc = tsdb_open(dir, o, &n, &err);
    CHECK_MSG(rc == 0, "open: %s", err.msg);
    return n;
}

static void test_lifecycle(uint64_t *rng, const char *dir) {
    model_init();
    g_now = 1700000000000;
    g_floor = SM_MS_MIN;
    tsdb_opts o = test_opts();
    tsdb *db = reopen(NULL, dir, &o);
    if (!db) return;
    append_rounds(db, rng, 100, 15000);
    check_all(db, "head");
    db = reopen(db, dir, &o);
    if (!db) return;
    check_all(db, "after WAL replay");

    /* Several hours: cuts into blocks while appending. */
    for (int i = 0; i < 6; i++) {
        append_rounds(db, rng, 120, 15000);
        sm_error err = {0};
        CHECK_OK_ERR(tsdb_compact(db, &err), &err);
    }
    tsdb_stats st;
    tsdb_get_stats(db, &st);
    CHECK_MSG(st.blocks >= 2, "blocks: %llu", (unsigned long long)st.blocks);
    check_all(db, "head and blocks");
    db = reopen(db, dir, &o);
    if (!db) return;
    check_all(db, "head and blocks after reopen");

    sm_error err = {0};
    CHECK_OK_ERR(tsdb_flush(db, &err), &err);
    g_floor = g_now + NSERIES;
    /* After a flush, samples older than the flushed data are out of bounds. */
    tsdb_sample old = {g_now - 60000, 1.0};
    tsdb_series_in in = {model[0].ls, &old, 1};
    tsdb_append_result res;
    CHECK_EQ_INT(tsdb_append(db, &in, 1, &res, &err), SM_ERANGE);
    CHECK(res.rejected_too_old == 1 && res.accepted == 0);
    tsdb_get_stats(db, &st);
    CHECK(st.head_samples == 0);
    check_all(db, "after flush");
    /* Six more hours, so that complete 3 h ranges exist behind the head. */
    for (int i = 0; i < 6; i++) {
        append_rounds(db, rng, 240, 15000);
        CHECK_OK_ERR(tsdb_compact(db, &err), &err);
    }
    tsdb_get_stats(db, &st);
    CHECK_MSG(st.compactions >= 1, "compactions: %llu", (unsigned long long)st.compactions);
    check_all(db, "after compaction");
    db = reopen(db, dir, &o);
    if (!db) return;
    check_all(db, "after compaction and reopen");


    /* Labels. */
    sm_arena *a = sm_arena_new(0, 0);
    const char **names;
    size_t n;
    CHECK_OK(tsdb_label_names(db, NULL, 0, SM_MS_MIN, SM_MS_MAX, a, &names, &n, &err));
    CHECK(n == 3 && !strcmp(names[0], "__name__") && !strcmp(names[1], "instance") &&
          !strcmp(names[2], "job"));
    CHECK_OK(tsdb_label_values(db, "job", NULL, 0, SM_MS_MIN, SM_MS_MAX, a, &names, &n, &err));
    CHECK(n == 3 && !strcmp(names[0], "api") && !strcmp(names[2], "web"));
    sm_matcher m1;
    CHECK_OK(sm_matcher_init(&m1, SM_MATCH_EQ, "job", "db", NULL));
    CHECK_OK(tsdb_label_values(db, "instance", &m1, 1, SM_MS_MIN, SM_MS_MAX, a, &names, &n, &err));
    CHECK_MSG(n == (NSERIES + 1) / 3, "instances of job=db: %zu", n);

    /* Matchers through select. */
    sm_matcher m2;
    CHECK_OK(sm_matcher_init(&m2, SM_MATCH_NRE, "instance", "host-0.", NULL));
    sm_matcher both[2] = {m1, m2};
    tsdb_series_set *set;
    CHECK_OK(tsdb_select(db, both, 2, SM_MS_MIN, SM_MS_MAX, NULL, &set, &err));
    size_t want = 0;
    for (int i = 0; i < NSERIES; i++) want += (i % 3 == 1) && i >= 10;
    CHECK_MSG(tsdb_series_set_count(set) == want, "job=db,instance!~host-0.: %zu want %zu",
              tsdb_series_set_count(set), want);
    tsdb_series_set_free(set);
    sm_matcher empty;
    CHECK_OK(sm_matcher_init(&empty, SM_MATCH_RE, "job", ".*", NULL));
    CHECK_EQ_INT(tsdb_select(db, &empty, 1, 0, 1, NULL, &set, &err), SM_EINVAL);
    tsdb_select_limits lim = {5};
    CHECK_EQ_INT(tsdb_select(db, &m2, 1, SM_MS_MIN, SM_MS_MAX, &lim, &set, &err), SM_EINVAL);
    CHECK_EQ_INT(tsdb_select(db, &m1, 1, SM_MS_MIN, SM_MS_MAX, &lim, &set, &err), SM_ELIMIT);
    sm_matcher_fini(&empty);
    sm_matcher_fini(&m1);
    sm_matcher_fini(&m2);
    sm_arena_free(a);
    CHECK_OK(tsdb_close(db, NULL));
}

static void test_rejections(const char *dir) {
    tsdb_opts o = test_opts();
    o.max_series = 3;
    tsdb *db = reopen(NULL, dir, &o);
    if (!db) return;
    sm_label good[2] = {{"__name__", "up"}, {"job", "a"}};
    sm_label unsorted[2] = {{"job", "a"}, {"__name__", "up"}};
    sm_label badname[2] = {{"__name__", "up"}, {"1job", "a"}};
    sm_label noname[1] = {{"job", "a"}};
    tsdb_sample s[3] = {{1000, 1}, {2000, 2}, {3000, 3}};
    tsdb_series_in in[4] = {{{good, 2}, s, 3}, {{unsorted, 2}, s, 3}, {{badname, 2}, s, 2},
                            {{noname, 1}, s, 1}};
    tsdb_append_result res;
    sm_error err = {0};
    CHECK_EQ_INT(tsdb_append(db, in, 4, &res, &err), SM_EINVAL);
    CHECK(res.accepted == 3 && res.rejected_invalid == 6);
    CHECK_MSG(err.index == 1, "first rejected series index %lld", (long long)err.index);
    CHECK_MSG(strstr(err.msg, "series 1") != NULL, "message: %s", err.msg);

    /* Out of the window: older than the newest sample - 1 h (the newest
     * before the batch, as in Prometheus). */
    tsdb_sample newer = {3000 + 2 * HOUR, 5};
    tsdb_series_in in1 = {{good, 2}, &newer, 1};
    CHECK_OK(tsdb_append(db, &in1, 1, &res, &err));
    tsdb_sample late[2] = {{3000 + 2 * HOUR + 1, 5}, {1500, 6}};
    tsdb_series_in in2 = {{good, 2}, late, 2};
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsdb_append(db, &in2, 1, &res, &err), SM_ERANGE);
    CHECK(res.accepted == 1 && res.rejected_too_old == 1);
    CHECK_MSG(strstr(err.msg, "too old") != NULL, "message: %s", err.msg);

    /* The series limit. */
    sm_label l2[2] = {{"__name__", "up"}, {"job", "b"}}, l3[2] = {{"__name__", "up"}, {"job", "c"}},
             l4[2] = {{"__name__", "up"}, {"job", "d"}};
    tsdb_sample now = {3000 + 2 * HOUR, 1};
    tsdb_series_in in3[3] = {{{l2, 2}, &now, 1}, {{l3, 2}, &now, 1}, {{l4, 2}, &now, 1}};
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsdb_append(db, in3, 3, &res, &err), SM_ELIMIT);
    CHECK(res.accepted == 2 && res.rejected_limit == 1 && res.series_created == 2);
    CHECK_OK(tsdb_close(db, NULL));
}

/* Garbage after the last good WAL record: cut with a log line, no refusal. */
static void test_torn_wal(uint64_t *rng, const char *dir) {
    model_init();
    g_now = 1700000000000;
    g_floor = SM_MS_MIN;
    tsdb_opts o = test_opts();
    tsdb *db = reopen(NULL, dir, &o);
    if (!db) return;
    append_rounds(db, rng, 50, 15000);
    CHECK_OK(tsdb_close(db, NULL));
    char wdir[1100];
    snprintf(wdir, sizeof wdir, "%s/wal", dir);
    char **names;
    size_t n;
    CHECK_OK(sm_fs_list(wdir, &names, &n));
    CHECK(n > 0);
    if (n) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", wdir, names[n - 1]);
        int fd = open(path, O_WRONLY | O_APPEND);
        uint8_t junk[100];
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)check_rand(rng);
        CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
        close(fd);
    }
    sm_fs_names_free(names, n);
    db = reopen(NULL, dir, &o);
    if (!db) return;
    check_all(db, "after a torn WAL tail");
    append_rounds(db, rng, 10, 15000);
    db = reopen(db, dir, &o);
    if (!db) return;
    check_all(db, "appended after the torn tail");
    CHECK_OK(tsdb_close(db, NULL));
}

static void test_retention(uint64_t *rng, const char *dir) {
    model_init();
    g_now = 1700000000000;
    g_floor = SM_MS_MIN;
    tsdb_opts o = test_opts();
    o.retention_ms = 3 * HOUR;
    tsdb *db = reopen(NULL, dir, &o);
    if (!db) return;
    for (int i = 0; i < 20; i++) { /* 10 h */
        append_rounds(db, rng, 120, 15000);
        CHECK_OK(tsdb_compact(db, NULL));
    }
    tsdb_stats st;
    tsdb_get_stats(db, &st);
    CHECK_MSG(st.retention_deletions > 0, "retention deleted %llu blocks",
              (unsigned long long)st.retention_deletions);
    /* Retention is measured from the newest block's end, which trails the
     * newest sample by up to 1.5 block ranges, and a block goes only when
     * all of it is beyond: nothing older than 3 h + 1 h + 1.5 h is left. */
    sm_matcher mt;
    CHECK_OK(sm_matcher_init(&mt, SM_MATCH_RE, "__name__", ".+", NULL));
    tsdb_series_set *set;
    CHECK_OK(tsdb_select(db, &mt, 1, SM_MS_MIN, g_now - 11 * HOUR / 2, NULL, &set, NULL));
    size_t old = 0;
    for (size_t i = 0; i < tsdb_series_set_count(set); i++) {
        tsdb_iter *it;
        CHECK_OK(tsdb_series_set_iter(set, i, &it));
        sm_ms_t t;
        double v;
        while (tsdb_iter_next(it, &t, &v) == 1) old++;
    }
    CHECK_MSG(old == 0, "%zu samples older than retention remain", old);
    tsdb_series_set_free(set);
    sm_matcher_fini(&mt);
    CHECK_OK(tsdb_close(db, NULL));
}

int main(void) {
    uint64_t rng = check_seed();
    const char *base = check_tmpdir("tsdb");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/life", base);
    test_lifecycle(&rng, dir);
    snprintf(dir, sizeof dir, "%s/reject", base);
    test_rejections(dir);
    snprintf(dir, sizeof dir, "%s/torn", base);
    test_torn_wal(&rng, dir);
    snprintf(dir, sizeof dir, "%s/retention", base);
    test_retention(&rng, dir);
    check_rmdir(base);
    return check_done();
}
