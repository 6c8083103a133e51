/* SPDX-License-Identifier: Apache-2.0
 *
 * test_block.c - blocks written from random series and read back against the
 * model with every matcher kind and time ranges; label listings; damaged
 * files refused at open or by verify, never a crash; reference counting
 * with deletion at the last release; abandoned writers leave nothing.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/block.h"
#include "tsdb/chunk.h"
#include "tsdb/fsutil.h"
#include "tsdb/merge.h"

#define NS 60
#define HOUR 3600000LL
#define BMIN 1700000000000LL
#define BMAX (BMIN + 2 * HOUR)

typedef struct bseries {
    char name[16], inst[16], dc[8];
    sm_label lv[3];
    sm_labels ls;
    sm_ms_t t[2000];
    double v[2000];
    size_t n;
} bseries;

static bseries S[NS];
static int order[NS];

static int cmp_idx(const void *a, const void *b) {
    return sm_labels_cmp(&S[*(const int *)a].ls, &S[*(const int *)b].ls);
}

static void make_series(uint64_t *rng) {
    for (int i = 0; i < NS; i++) {
        bseries *s = &S[i];
        snprintf(s->name, sizeof s->name, "metric_%d", i % 5);
        snprintf(s->inst, sizeof s->inst, "host-%03d", i);
        snprintf(s->dc, sizeof s->dc, "dc%d", i % 3);
        s->lv[0] = (sm_label){"__name__", s->name};
        s->lv[1] = (sm_label){"dc", s->dc};
        s->lv[2] = (sm_label){"instance", s->inst};
        s->ls = (sm_labels){s->lv, i % 7 == 0 ? 2u : 3u}; /* some lack instance */
        s->n = 0;
        sm_ms_t t = BMIN + (sm_ms_t)check_rand_below(rng, 60000);
        size_t want = check_rand_below(rng, 10) == 0 ? 0 : 1 + check_rand_below(rng, 500);
        while (s->n < want && t < BMAX) {
            s->t[s->n] = t;
            s->v[s->n] = check_rand_below(rng, 5) == 0 ? sm_f64_from_bits(check_rand(rng))
                                                       : (double)check_rand_below(rng, 10000) / 100;
            s->n++;
            t += 1 + (sm_ms_t)check_rand_below(rng, 30000);
        }
        order[i] = i;
    }
    /* Label sets are unique: the instance differs, and the 2-label ones
     * (every 7th) differ by name and dc. */
    qsort(order, NS, sizeof *order, cmp_idx);
}

static char *write_block(const char *dir, sm_uring *ring, block_meta *meta) {
    block_writer *w;
    sm_error err = {0};
    CHECK_OK_ERR(block_writer_new(dir, ring, BMIN, BMAX, 1, &w, &err), &err);
    sm_buf b = SM_BUF_INIT;
    for (int k = 0; k < NS; k++) {
        bseries *s = &S[order[k]];
        if (k && sm_labels_equal(&S[order[k - 1]].ls, &s->ls)) continue;
        tsdb_chunk_ref refs[20];
        uint32_t nr = 0;
        uint8_t *bufs[20];
        for (size_t i = 0; i < s->n; i += 120) {
            size_t m = s->n - i < 120 ? s->n - i : 120;
            sm_buf_clear(&b);
            CHECK_OK(chunk_encode(s->t + i, s->v + i, m, &b));
            bufs[nr] = sm_malloc(b.len);
            memcpy(bufs[nr], b.p, b.len);
            refs[nr] = (tsdb_chunk_ref){s->t[i], s->t[i + m - 1], bufs[nr], (uint32_t)b.len, 0};
            nr++;
        }
        CHECK_OK_ERR(block_writer_add_series(w, &s->ls, refs, nr, &err), &err);
        for (uint32_t i = 0; i < nr; i++) sm_free(bufs[i]);
    }
    sm_buf_fini(&b);
    /* Out-of-order series are refused. */
    CHECK_EQ_INT(block_writer_add_series(w, &S[order[0]].ls, NULL, 1, &err), SM_EINVAL);
    CHECK_OK_ERR(block_writer_commit(w, meta, &err), &err);
    char *path = sm_malloc(2048);
    snprintf(path, 2048, "%s/%s", dir, meta->ulid);
    return path;
}

static void check_sel(block *b, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt, const char *what) {
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    sm_error err = {0};
    CHECK_OK_ERR(block_select(b, ms, nms, mint, maxt, 3, a, &sel, &err), &err);
    size_t want = 0, bad = 0, got_with_data = 0;
    for (int i = 0; i < NS; i++) {
        bseries *s = &S[i];
        bool ok = true;
        for (size_t k = 0; k < nms && ok; k++) {
            const char *v = sm_labels_get(&s->ls, ms[k].name);
            ok = sm_matcher_matches(&ms[k], v ? v : "");
        }
        bool data = false;
        for (size_t k = 0; k < s->n && !data; k++) data = s->t[k] >= mint && s->t[k] <= maxt;
        want += ok && data;
    }
    for (size_t x = 0; x < sel.n; x++) {
        if (x && sm_labels_cmp(&sel.v[x - 1].labels, &sel.v[x].labels) >= 0) bad++;
        bseries *s = NULL;
        for (int i = 0; i < NS && !s; i++)
            if (sm_labels_equal(&S[i].ls, &sel.v[x].labels)) s = &S[i];
        if (!s) {
            bad++;
            continue;
        }
        merge_iter *it;
        CHECK_OK(merge_iter_new(a, sel.v[x].chunks, sel.v[x].nchunks, mint, maxt, &it));
        size_t k = 0;
        while (k < s->n && s->t[k] < mint) k++;
        size_t start = k;
        sm_ms_t t;
        double v;
        while (merge_iter_next(it, &t, &v) == 1) {
            if (k >= s->n || s->t[k] != t || sm_f64_bits(s->v[k]) != sm_f64_bits(v)) bad++;
            k++;
        }
        if (k < s->n && s->t[k] <= maxt) bad++;
        got_with_data += k > start;
        for (uint32_t c = 0; c < sel.v[x].nchunks; c++) bad += sel.v[x].chunks[c].prio != 3;
    }
    CHECK_MSG(got_with_data == want && bad == 0, "%s: %zu series with data (want %zu), %zu bad", what,
              got_with_data, want, bad);
    sm_arena_free(a);
}

static void test_roundtrip(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta;
    char *path = write_block(dir, ring, &meta);
    block *b;
    sm_error err = {0};
    CHECK_OK_ERR(block_open(path, &b, &err), &err);
    CHECK_OK_ERR(block_verify(b, &err), &err);
    const block_meta *m = block_get_meta(b);
    CHECK(!strcmp(m->ulid, meta.ulid) && m->mint == BMIN && m->maxt == BMAX && m->level == 1);
    size_t samples = 0, nonempty = 0;
    for (int i = 0; i < NS; i++) samples += S[i].n, nonempty += S[i].n > 0;
    CHECK(m->nsamples == samples && m->nseries == nonempty);
    unsigned long long du;
    sm_fs_du(path, &du);
    CHECK_MSG(m->bytes == du, "meta bytes %llu, on disk %llu", (unsigned long long)m->bytes, du);

    sm_matcher all, eq, re, nre, neq, empty_inst;
    CHECK_OK(sm_matcher_init(&all, SM_MATCH_RE, "__name__", ".+", NULL));
    CHECK_OK(sm_matcher_init(&eq, SM_MATCH_EQ, "__name__", "metric_2", NULL));
    CHECK_OK(sm_matcher_init(&re, SM_MATCH_RE, "dc", "dc0|dc2", NULL));
    CHECK_OK(sm_matcher_init(&nre, SM_MATCH_NRE, "instance", "host-0[0-4].", NULL));
    CHECK_OK(sm_matcher_init(&neq, SM_MATCH_NEQ, "dc", "dc1", NULL));
    CHECK_OK(sm_matcher_init(&empty_inst, SM_MATCH_EQ, "instance", "", NULL));
    check_sel(b, &all, 1, SM_MS_MIN, SM_MS_MAX, "all");
    check_sel(b, NULL, 0, SM_MS_MIN, SM_MS_MAX, "no matchers");
    check_sel(b, &eq, 1, SM_MS_MIN, SM_MS_MAX, "name=");
    sm_matcher m2[2] = {eq, re};
    check_sel(b, m2, 2, SM_MS_MIN, SM_MS_MAX, "name= and dc=~");
    sm_matcher m3[2] = {all, nre};
    check_sel(b, m3, 2, SM_MS_MIN, SM_MS_MAX, "instance!~");
    sm_matcher m4[2] = {all, neq};
    check_sel(b, m4, 2, SM_MS_MIN, SM_MS_MAX, "dc!=");
    sm_matcher m5[2] = {all, empty_inst};
    check_sel(b, m5, 2, SM_MS_MIN, SM_MS_MAX, "instance=\"\"");
    for (int k = 0; k < 30; k++) {
        sm_ms_t a = BMIN + (sm_ms_t)check_rand_below(rng, 2 * HOUR), z = a + (sm_ms_t)check_rand_below(rng, HOUR);
        check_sel(b, &all, 1, a, z, "time range");
        check_sel(b, m2, 2, a, z, "time range, name= and dc=~");
    }

    sm_arena *ar = sm_arena_new(0, 0);
    const char **v;
    size_t n;
    CHECK_OK(block_label_names(b, NULL, 0, ar, &v, &n, NULL));
    CHECK(n == 3 && !strcmp(v[0], "__name__") && !strcmp(v[1], "dc") && !strcmp(v[2], "instance"));
    CHECK_OK(block_label_values(b, "dc", NULL, 0, ar, &v, &n, NULL));
    CHECK(n == 3 && !strcmp(v[0], "dc0") && !strcmp(v[2], "dc2"));
    CHECK_OK(block_label_values(b, "dc", &eq, 1, ar, &v, &n, NULL));
    size_t want = 0;
    bool seen[3] = {0};
    for (int i = 0; i < NS; i++)
        if (i % 5 == 2 && S[i].n) seen[i % 3] = true;
    for (int i = 0; i < 3; i++) want += seen[i];
    CHECK_MSG(n == want, "dc values of metric_2: %zu want %zu", n, want);
    CHECK_OK(block_label_values(b, "nope", NULL, 0, ar, &v, &n, NULL));
    CHECK(n == 0);
    sm_arena_free(ar);

    /* Held references keep a deleted block until the last release. */
    block_acquire(b);
    block_mark_deleted(b);
    block_release(b);
    CHECK(access(path, F_OK) == 0);
    block_release(b);
    CHECK(access(path, F_OK) != 0);

    sm_matcher_fini(&all);
    sm_matcher_fini(&eq);
    sm_matcher_fini(&re);
    sm_matcher_fini(&nre);
    sm_matcher_fini(&neq);
    sm_matcher_fini(&empty_inst);
    sm_free(path);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n ? *n : 1);
    if (fread(p, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Damage each file in turn: open or verify (or a select) must fail with
 * SM_ECORRUPT, never crash or succeed with wrong data. */
static void test_damage(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta;
    char *path = write_block(dir, ring, &meta);
    static const char *files[] = {"index", "chunks", "meta.json"};
    int refused = 0, total = 0;
    for (int round = 0; round < 150; round++) {
        char fpath[2100];
        snprintf(fpath, sizeof fpath, "%s/%s", path, files[round % 3]);
        size_t n = 0;
        uint8_t *orig = slurp(fpath, &n);
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, orig, n);
        size_t len = n;
        if (check_rand_below(rng, 3) == 0) len = check_rand_below(rng, n);
        else
            for (int k = 0; k < 1 + (int)check_rand_below(rng, 3); k++)
                p[check_rand_below(rng, n)] ^= (uint8_t)(1u << check_rand_below(rng, 8));
        spit(fpath, p, len);
        block *b;
        sm_error err = {0};
        total++;
        int rc = block_open(path, &b, &err);
        if (rc == 0) {
            rc = block_verify(b, &err);
            sm_matcher all;
            sm_matcher_init(&all, SM_MATCH_RE, "__name__", ".+", NULL);
            sm_arena *a = sm_arena_new(0, 0);
            tsdb_sel sel;
            int rs = block_select(b, &all, 1, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, &err);
            if (rc == 0 && rs != 0) CHECK_MSG(0, "verify passed but select failed: %s", err.msg);
            sm_arena_free(a);
            sm_matcher_fini(&all);
            block_release(b);
        }
        if (rc) {
            CHECK_MSG(rc == SM_ECORRUPT, "damage gave %d (%s)", rc, err.msg);
            refused++;
        }
        spit(fpath, orig, n);
        free(orig);
        free(p);
    }
    /* meta.json damage to whitespace can pass; most damage must be found. */
    CHECK_MSG(refused > total * 2 / 3, "only %d of %d damaged blocks refused", refused, total);
    sm_fs_remove_all(path);
    sm_free(path);
}

static void test_abort(const char *dir, sm_uring *ring) {
    block_writer *w;
    CHECK_OK(block_writer_new(dir, ring, BMIN, BMAX, 1, &w, NULL));
    block_writer_abort(w);
    char **names;
    size_t n;
    CHECK_OK(sm_fs_list(dir, &names, &n));
    CHECK_MSG(n == 0, "%zu entries left after abort", n);
    sm_fs_names_free(names, n);
    char id[BLOCK_ULID_LEN + 1], id2[BLOCK_ULID_LEN + 1];
    block_ulid_new(1700000000000, id);
    block_ulid_new(1700000000001, id2);
    CHECK(strlen(id) == 26 && strcmp(id, id2) < 0);
    CHECK(strncmp(id, "01HF", 4) == 0); /* 2023-11-14 */
}

int main(void) {
    uint64_t rng = check_seed();
    const char *dir = check_tmpdir("block");
    sm_uring *ring;
    CHECK_OK(sm_uring_new(32, &ring));
    test_roundtrip(&rng, dir, ring);
    test_damage(&rng, dir, ring);
    test_abort(dir, ring);
    sm_uring_free(ring);
    check_rmdir(dir);
    return check_done();
}
