/* SPDX-License-Identifier: Apache-2.0
 *
 * test_merge.c - merging selections and iterating samples across chunks that
 * may overlap, checked against a reference model: for every timestamp, the
 * sample of the highest-prio chunk holding it (the later chunk on a tie).
 */
#include <math.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/chunk.h"
#include "tsdb/merge.h"

#define MAXS 4000

typedef struct model {
    sm_ms_t t[MAXS];
    uint64_t bits[MAXS];
    uint32_t prio[MAXS];
    int order[MAXS]; /* position of the winning chunk in the list */
    size_t n;
} model;

/* Insert (t, bits) with (prio, order) into the sorted model, resolving ties. */
static void model_put(model *m, sm_ms_t t, uint64_t bits, uint32_t prio, int order) {
    size_t i = 0;
    while (i < m->n && m->t[i] < t) i++;
    if (i < m->n && m->t[i] == t) {
        if (prio > m->prio[i] || (prio == m->prio[i] && order > m->order[i])) {
            m->bits[i] = bits;
            m->prio[i] = prio;
            m->order[i] = order;
        }
        return;
    }
    memmove(m->t + i + 1, m->t + i, sizeof m->t[0] * (m->n - i));
    memmove(m->bits + i + 1, m->bits + i, sizeof m->bits[0] * (m->n - i));
    memmove(m->prio + i + 1, m->prio + i, sizeof m->prio[0] * (m->n - i));
    memmove(m->order + i + 1, m->order + i, sizeof m->order[0] * (m->n - i));
    m->t[i] = t;
    m->bits[i] = bits;
    m->prio[i] = prio;
    m->order[i] = order;
    m->n++;
}

static double rand_value(uint64_t *rng) {
    switch (check_rand_below(rng, 6)) {
    case 0: return sm_f64_from_bits(SM_STALE_NAN_BITS);
    case 1: return (double)check_rand_below(rng, 1000);
    case 2: return -0.0;
    case 3: return sm_f64_from_bits(check_rand(rng));
    default: return (double)check_rand_below(rng, 100000) / 100.0;
    }
}

/* Build nchunks chunks of random samples; chunk k covers a random window.
 * With overlap=false the windows are disjoint and increasing. */
static int build(uint64_t *rng, sm_arena *a, bool overlap, tsdb_chunk_ref *chunks, uint32_t nch,
                 model *m) {
    sm_ms_t base = (sm_ms_t)check_rand_below(rng, 1000000) - 500000;
    m->n = 0;
    for (uint32_t k = 0; k < nch; k++) {
        sm_ms_t ts[200];
        double vs[200];
        size_t n = 1 + check_rand_below(rng, 150);
        sm_ms_t t = overlap ? base + (sm_ms_t)check_rand_below(rng, 3000) : base;
        for (size_t i = 0; i < n; i++) {
            t += 1 + (sm_ms_t)check_rand_below(rng, overlap ? 40 : 20);
            ts[i] = t;
            vs[i] = rand_value(rng);
        }
        if (!overlap) base = t + 1 + (sm_ms_t)check_rand_below(rng, 50);
        sm_buf b = SM_BUF_INIT;
        if (chunk_encode(ts, vs, n, &b) != 0) return -1;
        uint8_t *copy = sm_arena_alloc(a, b.len);
        memcpy(copy, b.p, b.len);
        chunks[k] = (tsdb_chunk_ref){.mint = ts[0],
                                     .maxt = ts[n - 1],
                                     .data = copy,
                                     .len = (uint32_t)b.len,
                                     .prio = (uint32_t)check_rand_below(rng, 3)};
        sm_buf_fini(&b);
    }
    /* merge.h requires the list sorted by mint; sort with a stable insertion
     * sort, then replay into the model in list order (ties: later wins). */
    for (uint32_t i = 1; i < nch; i++) {
        tsdb_chunk_ref x = chunks[i];
        uint32_t j = i;
        while (j > 0 && chunks[j - 1].mint > x.mint) {
            chunks[j] = chunks[j - 1];
            j--;
        }
        chunks[j] = x;
    }
    for (uint32_t k = 0; k < nch; k++) {
        sm_ms_t ts[200];
        double vs[200];
        size_t n;
        if (chunk_decode(chunks[k].data, chunks[k].len, ts, vs, 200, &n)) return -1;
        for (size_t i = 0; i < n; i++) model_put(m, ts[i], sm_f64_bits(vs[i]), chunks[k].prio, (int)k);
    }
    return 0;
}

static void check_range(sm_arena *a, const tsdb_chunk_ref *chunks, uint32_t nch, const model *m,
                        sm_ms_t mint, sm_ms_t maxt, uint64_t *rng) {
    merge_iter *it;
    CHECK_OK(merge_iter_new(a, chunks, nch, mint, maxt, &it));
    size_t i = 0;
    while (i < m->n && m->t[i] < mint) i++;
    int mode = (int)check_rand_below(rng, 3);
    /* Batches smaller and larger than a chunk: a whole chunk that overlaps
     * nothing and lies inside the range is decoded straight into them. */
    static const size_t caps[3] = {7, 160, 512};
    size_t cap = caps[check_rand_below(rng, 3)];
    for (;;) {
        sm_ms_t t;
        double v;
        int rc;
        if (mode == 1 && check_rand_below(rng, 10) == 0 && i < m->n) {
            /* seek forward a little */
            size_t consumed = i, skip = check_rand_below(rng, 5);
            while (skip-- && i < m->n && m->t[i] <= maxt) i++;
            if (i < m->n) {
                /* The target may fall on a skipped sample, which the
                 * iterator then returns: the next expected sample is the
                 * first unconsumed one at or after the target. */
                sm_ms_t target = m->t[i] - (sm_ms_t)check_rand_below(rng, 2);
                CHECK_OK(merge_iter_seek(it, target));
                while (i > consumed && m->t[i - 1] >= target) i--;
            } else {
                i = consumed; /* no seek was made */
            }
        }
        if (mode == 2) {
            sm_ms_t bt[512];
            double bv[512];
            rc = merge_iter_next_batch(it, bt, bv, cap);
            CHECK(rc >= 0);
            if (rc <= 0) break;
            for (int k = 0; k < rc; k++, i++) {
                CHECK(i < m->n && m->t[i] <= maxt);
                if (i >= m->n) return;
                CHECK_EQ_INT(bt[k], m->t[i]);
                CHECK_EQ_U64(sm_f64_bits(bv[k]), m->bits[i]);
            }
            continue;
        }
        rc = merge_iter_next(it, &t, &v);
        CHECK(rc >= 0);
        if (rc <= 0) break;
        CHECK(i < m->n && m->t[i] <= maxt);
        if (i >= m->n) return;
        CHECK_EQ_INT(t, m->t[i]);
        CHECK_EQ_U64(sm_f64_bits(v), m->bits[i]);
        i++;
    }
    CHECK_MSG(i >= m->n || m->t[i] > maxt, "iterator ended early at %zu of %zu", i, m->n);
}

static void test_iter(uint64_t *rng) {
    static model m;
    for (int round = 0; round < 300; round++) {
        sm_arena *a = sm_arena_new(0, 0);
        tsdb_chunk_ref chunks[8];
        uint32_t nch = 1 + (uint32_t)check_rand_below(rng, 8);
        bool overlap = round % 2;
        if (build(rng, a, overlap, chunks, nch, &m)) {
            CHECK_MSG(0, "chunk codec unavailable");
            sm_arena_free(a);
            return;
        }
        check_range(a, chunks, nch, &m, SM_MS_MIN, SM_MS_MAX, rng);
        if (m.n) {
            sm_ms_t lo = m.t[check_rand_below(rng, m.n)], hi = m.t[check_rand_below(rng, m.n)];
            if (lo > hi) { sm_ms_t x = lo; lo = hi; hi = x; }
            check_range(a, chunks, nch, &m, lo, hi, rng);
            check_range(a, chunks, nch, &m, lo + 1, hi - 1, rng);
        }
        sm_arena_free(a);
    }
    /* A corrupt chunk is an error, not a crash, and the error sticks. */
    sm_arena *a = sm_arena_new(0, 0);
    uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    tsdb_chunk_ref bad = {.mint = 0, .maxt = 10, .data = junk, .len = sizeof junk, .prio = 0};
    merge_iter *it;
    CHECK_OK(merge_iter_new(a, &bad, 1, SM_MS_MIN, SM_MS_MAX, &it));
    sm_ms_t t;
    double v;
    CHECK_EQ_INT(merge_iter_next(it, &t, &v), SM_ECORRUPT);
    CHECK_EQ_INT(merge_iter_next(it, &t, &v), SM_ECORRUPT);
    /* Empty list. */
    CHECK_OK(merge_iter_new(a, NULL, 0, SM_MS_MIN, SM_MS_MAX, &it));
    CHECK_EQ_INT(merge_iter_next(it, &t, &v), 0);
    sm_arena_free(a);
}

static void test_sels(void) {
    sm_arena *a = sm_arena_new(0, 0);
    sm_label la[] = {{"__name__", "a"}}, lb[] = {{"__name__", "b"}}, lc[] = {{"__name__", "c"}};
    uint8_t d = 0;
    tsdb_chunk_ref c1 = {.mint = 10, .maxt = 20, .data = &d, .len = 1, .prio = 0},
                   c2 = {.mint = 0, .maxt = 5, .data = &d, .len = 1, .prio = 1},
                   c3 = {.mint = 30, .maxt = 40, .data = &d, .len = 1, .prio = 2};
    tsdb_sel_series s0[] = {{{la, 1}, &c1, 1}, {{lc, 1}, &c1, 1}};
    tsdb_sel_series s1[] = {{{la, 1}, &c2, 1}, {{lb, 1}, &c2, 1}};
    tsdb_sel_series s2[] = {{{la, 1}, &c3, 1}};
    tsdb_sel sels[3] = {{s0, 2}, {s1, 2}, {s2, 1}};
    tsdb_sel out;
    CHECK_OK(merge_sels(sels, 3, a, &out));
    CHECK_EQ_INT(out.n, 3);
    CHECK_EQ_STR(out.v[0].labels.v[0].value, "a");
    CHECK_EQ_INT(out.v[0].nchunks, 3);
    CHECK_EQ_INT(out.v[0].chunks[0].mint, 0); /* sorted by mint */
    CHECK_EQ_INT(out.v[0].chunks[1].mint, 10);
    CHECK_EQ_INT(out.v[0].chunks[2].mint, 30);
    CHECK_EQ_STR(out.v[1].labels.v[0].value, "b");
    CHECK_EQ_STR(out.v[2].labels.v[0].value, "c");
    tsdb_sel none[2] = {{NULL, 0}, {NULL, 0}};
    CHECK_OK(merge_sels(none, 2, a, &out));
    CHECK_EQ_INT(out.n, 0);
    sm_arena_free(a);
}

int main(void) {
    uint64_t rng = check_seed();
    test_sels();
    test_iter(&rng);
    return check_done();
}
