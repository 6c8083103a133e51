/* SPDX-License-Identifier: Apache-2.0
 *
 * test_block.c - blocks written from random series and read back against the
 * model with every matcher kind and time ranges; label listings; damaged
 * files refused at open or by verify, never a crash; reference counting
 * with deletion at the last release; abandoned writers leave nothing.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/crc32c.h"
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
    /* Every fourth series has the timestamps of the one before (as the
     * series of one scrape target do), so the writer shares their time
     * columns. */
    for (int i = 1; i < NS; i += 4) {
        bseries *s = &S[i];
        s->n = S[i - 1].n;
        memcpy(s->t, S[i - 1].t, s->n * sizeof *s->t);
        for (size_t k = 0; k < s->n; k++) s->v[k] = (double)check_rand_below(rng, 1000) / 8;
    }
    /* Label sets are unique: the instance differs, and the 2-label ones
     * (every 7th) differ by name and dc. */
    qsort(order, NS, sizeof *order, cmp_idx);
}

static size_t g_chunk_bytes; /* bytes of the chunks the last write_block gave the writer */

static char *write_block(const char *dir, sm_uring *ring, block_meta *meta) {
    g_chunk_bytes = 0;
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
            refs[nr] = (tsdb_chunk_ref){
                .mint = s->t[i], .maxt = s->t[i + m - 1], .data = bufs[nr], .len = (uint32_t)b.len, .prio = 0};
            g_chunk_bytes += b.len;
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
        for (size_t k = 0; k < nms; k++) {
            const char *v = sm_labels_get(&s->ls, ms[k].name);
            bad += !sm_matcher_matches(&ms[k], v ? v : "");
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

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Label names and the values of `name` among written series matching ms,
 * against the model: sorted, distinct, exactly the model's set. */
static void check_lists(block *b, const sm_matcher *ms, size_t nms, const char *name, const char *what) {
    const char *want[3 * NS + 3];
    size_t nw = 0;
    for (int i = 0; i < NS; i++) {
        const bseries *s = &S[i];
        if (!s->n) continue; /* series without chunks are not written */
        bool ok = true;
        for (size_t k = 0; k < nms && ok; k++) {
            const char *v = sm_labels_get(&s->ls, ms[k].name);
            ok = sm_matcher_matches(&ms[k], v ? v : "");
        }
        if (!ok) continue;
        for (uint32_t l = 0; l < s->ls.n; l++) {
            if (!name) want[nw++] = s->ls.v[l].name;
            else if (!strcmp(name, s->ls.v[l].name)) want[nw++] = s->ls.v[l].value;
        }
    }
    qsort(want, nw, sizeof *want, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < nw; i++)
        if (u == 0 || strcmp(want[u - 1], want[i])) want[u++] = want[i];
    sm_arena *a = sm_arena_new(0, 0);
    const char **got;
    size_t ng = 0;
    int rc = name ? block_label_values(b, name, ms, nms, a, &got, &ng, NULL)
                  : block_label_names(b, ms, nms, a, &got, &ng, NULL);
    CHECK_EQ_INT(rc, 0);
    bool same = rc == 0 && ng == u;
    for (size_t i = 0; same && i < u; i++) same = !strcmp(got[i], want[i]);
    CHECK_MSG(same, "%s (%s): %zu strings, model %zu", what, name ? name : "names", ng, u);
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
    /* The shared time columns: the chunks file is smaller than the chunks
     * it was given (and every sample still reads back exactly, below). */
    char cpath[2100];
    snprintf(cpath, sizeof cpath, "%s/chunks", path);
    struct stat cst;
    CHECK(stat(cpath, &cst) == 0);
    CHECK_MSG((size_t)cst.st_size < 8 + g_chunk_bytes, "chunks file %lld bytes, chunks given %zu",
              (long long)cst.st_size, g_chunk_bytes);

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
    const struct {
        const sm_matcher *ms;
        size_t n;
        const char *what;
    } sets[] = {{NULL, 0, "none"}, {&all, 1, "all"}, {&eq, 1, "name="}, {m2, 2, "name= and dc=~"},
                {m3, 2, "instance!~"}, {m4, 2, "dc!="}, {m5, 2, "instance=\"\""}};
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        check_lists(b, sets[k].ms, sets[k].n, NULL, sets[k].what);
        check_lists(b, sets[k].ms, sets[k].n, "dc", sets[k].what);
        check_lists(b, sets[k].ms, sets[k].n, "instance", sets[k].what);
        check_lists(b, sets[k].ms, sets[k].n, "__name__", sets[k].what);
    }
    /* Random conjunctions of every matcher kind, with values that exist,
     * do not exist, are empty, and patterns that do and do not match "". */
    static const char *const mnames[] = {"__name__", "dc", "instance", "nope"};
    static const char *const lits[] = {"metric_1", "metric_3", "dc0", "dc2", "host-007", "host-014", "", "zzz"};
    static const char *const pats[] = {"metric_[0-2]", "dc0|dc1", "host-0[0-3].", ".*", ".+", "", "metric_4|", "h.*"};
    for (int k = 0; k < 60; k++) {
        sm_matcher rm[3];
        size_t nm = 1 + check_rand_below(rng, 3);
        for (size_t x = 0; x < nm; x++) {
            sm_match_type t = (sm_match_type)check_rand_below(rng, 4);
            const char *nm_ = mnames[check_rand_below(rng, 4)];
            const char *val = t == SM_MATCH_EQ || t == SM_MATCH_NEQ ? lits[check_rand_below(rng, 8)]
                                                                     : pats[check_rand_below(rng, 8)];
            CHECK_OK(sm_matcher_init(&rm[x], t, nm_, val, NULL));
        }
        sm_ms_t a = BMIN + (sm_ms_t)check_rand_below(rng, 2 * HOUR), z = a + (sm_ms_t)check_rand_below(rng, 2 * HOUR);
        check_sel(b, rm, nm, SM_MS_MIN, SM_MS_MAX, "random matchers");
        check_sel(b, rm, nm, a, z, "random matchers and range");
        check_lists(b, rm, nm, NULL, "random matchers");
        check_lists(b, rm, nm, "instance", "random matchers");
        for (size_t x = 0; x < nm; x++) sm_matcher_fini(&rm[x]);
    }
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

/* Walk the index's framed sections (u32 length, payload, u32 CRC-32C) and
 * recompute every CRC, so that damage inside a payload reaches the parser
 * (STYLE.md rule 47).  Returns the number of sections found. */
static int index_fix_crcs(uint8_t *p, size_t n, size_t *starts, size_t *lens, int max) {
    size_t off = 8;
    int k = 0;
    while (off + 8 <= n && k < max) {
        uint32_t len = sm_load_le32(p + off);
        if (len > n - off - 8) break;
        sm_store_le32(p + off + 4 + len, sm_crc32c(0, p + off + 4, len));
        starts[k] = off + 4;
        lens[k] = len;
        k++;
        off += 8 + (size_t)len;
    }
    return k;
}

/* Check what a block that passed verify hands out: sorted, distinct label
 * sets with sorted names, chunks that decode inside the block's range. */
static void check_consistent(block *b, const char *what) {
    sm_matcher all;
    sm_matcher_init(&all, SM_MATCH_RE, "__name__", ".*", NULL);
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    sm_error err = {0};
    int rc = block_select(b, &all, 1, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, &err);
    CHECK_MSG(rc == 0, "%s: verify passed but select failed: %s", what, err.msg);
    size_t bad = 0;
    static sm_ms_t ts[CHUNK_MAX_SAMPLES];
    static double vs[CHUNK_MAX_SAMPLES];
    const block_meta *m = block_get_meta(b);
    for (size_t i = 0; rc == 0 && i < sel.n; i++) {
        const tsdb_sel_series *se = &sel.v[i];
        if (i && sm_labels_cmp(&sel.v[i - 1].labels, &se->labels) >= 0) bad++;
        for (uint32_t l = 1; l < se->labels.n; l++)
            bad += strcmp(se->labels.v[l - 1].name, se->labels.v[l].name) >= 0;
        for (uint32_t c = 0; c < se->nchunks; c++) {
            size_t n;
            if (chunk_decode_ref(se->chunks[c].data, se->chunks[c].len, se->chunks[c].tcol, se->chunks[c].tlen,
                                 ts, vs, CHUNK_MAX_SAMPLES, &n) ||
                ts[0] < m->mint || ts[n - 1] >= m->maxt)
                bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: a verified block hands out %zu inconsistent items", what, bad);
    sm_arena_free(a);
    sm_matcher_fini(&all);
}

/* Damage inside index sections with their CRCs recomputed: open and verify
 * must find it (or the block must still be self-consistent), never crash. */
static void test_damage_parser(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta;
    char *path = write_block(dir, ring, &meta);
    char fpath[2100];
    snprintf(fpath, sizeof fpath, "%s/index", path);
    size_t n = 0;
    uint8_t *orig = slurp(fpath, &n);
    uint8_t *p = malloc(n);
    int refused = 0, total = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(p, orig, n);
        size_t st[8], ln[8];
        int ns = index_fix_crcs(p, n, st, ln, 8);
        CHECK_EQ_INT(ns, 5);
        int sec = (int)check_rand_below(rng, (uint64_t)ns);
        if (ln[sec] == 0) continue;
        int kind = (int)check_rand_below(rng, 3);
        for (int k = 0; k < 1 + (int)check_rand_below(rng, 3); k++) {
            size_t at = st[sec] + check_rand_below(rng, ln[sec]);
            if (kind == 0) p[at] ^= (uint8_t)(1u << check_rand_below(rng, 8));
            else if (kind == 1) p[at] = (uint8_t)check_rand(rng);
            else p[at] = (uint8_t)(p[at] + (check_rand_below(rng, 2) ? 1 : -1)); /* ids and deltas off by one */
        }
        index_fix_crcs(p, n, st, ln, 8);
        spit(fpath, p, n);
        block *b;
        sm_error err = {0};
        total++;
        int rc = block_open(path, &b, &err);
        if (rc == 0) {
            rc = block_verify(b, &err);
            if (rc == 0) check_consistent(b, "index damage with fixed CRCs");
            /* Queries on a block that failed verify may fail, cleanly. */
            sm_matcher m2[2];
            sm_matcher_init(&m2[0], SM_MATCH_RE, "__name__", "metric_[13]", NULL);
            sm_matcher_init(&m2[1], SM_MATCH_NEQ, "dc", "dc1", NULL);
            sm_arena *a = sm_arena_new(0, 0);
            tsdb_sel sel;
            const char **v;
            size_t nv;
            int rs = block_select(b, m2, 2, BMIN, BMAX, 0, a, &sel, NULL);
            CHECK(rs == 0 || rs == SM_ECORRUPT);
            rs = block_label_values(b, "instance", m2, 2, a, &v, &nv, NULL);
            CHECK(rs == 0 || rs == SM_ECORRUPT);
            rs = block_label_names(b, m2, 1, a, &v, &nv, NULL);
            CHECK(rs == 0 || rs == SM_ECORRUPT);
            sm_arena_free(a);
            sm_matcher_fini(&m2[0]);
            sm_matcher_fini(&m2[1]);
            block_release(b);
        }
        if (rc) {
            CHECK_MSG(rc == SM_ECORRUPT, "damage gave %d (%s)", rc, err.msg);
            refused++;
        }
    }
    spit(fpath, orig, n);
    /* Some damage is undetectable by design (a symbol's byte changed without
     * breaking the sort order), but most must be refused. */
    CHECK_MSG(refused > total / 2, "only %d of %d parser-level damages refused", refused, total);
    printf("parser-level damage: %d of %d refused\n", refused, total);
    free(orig);
    free(p);
    sm_fs_remove_all(path);
    sm_free(path);
}

/* meta.json is strict: any edit, including a value, is refused. */
static void test_meta_strict(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta;
    char *path = write_block(dir, ring, &meta);
    char fpath[2100];
    snprintf(fpath, sizeof fpath, "%s/meta.json", path);
    size_t n = 0;
    uint8_t *orig = slurp(fpath, &n);
    static const char *const edits[][2] = {
        {"\"level\": 1", "\"level\": 2"}, {"\"version\": 1", "\"version\": 2"},
        {"\"numSeries\": ", "\"numSeries\": 1"}, {"\"numSamples\": ", "\"numSamples\": 9"},
        {"\"ulid\": \"0", "\"ulid\": \"1"}, {"{\n", "{\r\n"}, {"\"level\": 1}", "\"level\": 1 }"},
        {"\"compaction\"", "\"Compaction\""},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        char *txt = malloc(n + 16);
        memcpy(txt, orig, n);
        txt[n] = '\0';
        char *at = strstr(txt, edits[e][0]);
        CHECK_MSG(at != NULL, "meta.json lacks %s", edits[e][0]);
        if (!at) {
            free(txt);
            continue;
        }
        size_t ol = strlen(edits[e][0]), nl = strlen(edits[e][1]);
        memmove(at + nl, at + ol, strlen(at + ol) + 1);
        memcpy(at, edits[e][1], nl);
        spit(fpath, (const uint8_t *)txt, strlen(txt));
        block *b;
        sm_error err = {0};
        int rc = block_open(path, &b, &err);
        CHECK_MSG(rc == SM_ECORRUPT, "meta edit %zu (%s) gave %d", e, edits[e][1], rc);
        if (rc == 0) block_release(b);
        free(txt);
    }
    spit(fpath, orig, n);
    block *b;
    CHECK_OK(block_open(path, &b, NULL));
    block_release(b);
    free(orig);
    sm_fs_remove_all(path);
    sm_free(path);
}

/* The writer refuses bad input before writing anything, so the block stays
 * usable; label-count limits are the same on both sides. */
static void test_writer_refusals(uint64_t *rng, const char *dir, sm_uring *ring) {
    block_writer *w;
    sm_error err = {0};
    CHECK_OK(block_writer_new(dir, ring, BMIN, BMAX, 2, &w, NULL));
    sm_ms_t ts[50];
    double vs[50];
    for (int i = 0; i < 50; i++) ts[i] = BMIN + 1000 * i + (sm_ms_t)check_rand_below(rng, 1000), vs[i] = i;
    sm_buf cb = SM_BUF_INIT;
    CHECK_OK(chunk_encode(ts, vs, 50, &cb));
    tsdb_chunk_ref good = {.mint = ts[0], .maxt = ts[49], .data = cb.p, .len = (uint32_t)cb.len, .prio = 0};
    tsdb_chunk_ref lie = good;
    lie.maxt = ts[49] + 1;
    sm_label l1[2] = {{"__name__", "a"}, {"x", "1"}};
    CHECK_EQ_INT(block_writer_add_series(w, &(sm_labels){l1, 2}, &lie, 1, &err), SM_EINVAL);
    tsdb_chunk_ref two[2] = {good, good};
    CHECK_EQ_INT(block_writer_add_series(w, &(sm_labels){l1, 2}, two, 2, NULL), SM_EINVAL);
    tsdb_chunk_ref outside = good;
    outside.mint = BMIN - 1;
    CHECK_EQ_INT(block_writer_add_series(w, &(sm_labels){l1, 2}, &outside, 1, NULL), SM_EINVAL);
    sm_label unsorted[2] = {{"x", "1"}, {"__name__", "a"}};
    CHECK_EQ_INT(block_writer_add_series(w, &(sm_labels){unsorted, 2}, &good, 1, NULL), SM_EINVAL);
    CHECK_EQ_INT(block_writer_add_series(w, &(sm_labels){l1, 0}, &good, 1, NULL), SM_EINVAL);
    CHECK_OK(block_writer_add_series(w, &(sm_labels){l1, 2}, &good, 1, NULL));
    /* 256 labels round-trip; 257 are refused. */
    static sm_label big[257];
    static char names[257][8];
    big[0] = (sm_label){"__name__", "b"};
    for (int i = 1; i < 257; i++) {
        snprintf(names[i], sizeof names[i], "l%03d", i);
        big[i] = (sm_label){names[i], names[i]};
    }
    CHECK_EQ_INT(block_writer_add_series(w, &(sm_labels){big, 257}, &good, 1, NULL), SM_ELIMIT);
    CHECK_OK(block_writer_add_series(w, &(sm_labels){big, 256}, &good, 1, NULL));
    block_meta meta;
    CHECK_OK_ERR(block_writer_commit(w, &meta, &err), &err);
    CHECK(meta.nseries == 2 && meta.nchunks == 2 && meta.nsamples == 100 && meta.level == 2);
    char path[2100];
    snprintf(path, sizeof path, "%s/%s", dir, meta.ulid);
    block *b;
    CHECK_OK_ERR(block_open(path, &b, &err), &err);
    CHECK_OK_ERR(block_verify(b, &err), &err);
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    CHECK_OK(block_select(b, NULL, 0, SM_MS_MIN, SM_MS_MAX, 1, a, &sel, NULL));
    CHECK(sel.n == 2 && sel.v[1].labels.n == 256 && sm_labels_equal(&sel.v[1].labels, &(sm_labels){big, 256}));
    /* Time ranges touching the edges of the one chunk. */
    CHECK_OK(block_select(b, NULL, 0, ts[49], SM_MS_MAX, 1, a, &sel, NULL));
    CHECK(sel.n == 2);
    CHECK_OK(block_select(b, NULL, 0, ts[49] + 1, SM_MS_MAX, 1, a, &sel, NULL));
    CHECK(sel.n == 0);
    CHECK_OK(block_select(b, NULL, 0, SM_MS_MIN, ts[0], 1, a, &sel, NULL));
    CHECK(sel.n == 2);
    CHECK_OK(block_select(b, NULL, 0, SM_MS_MIN, ts[0] - 1, 1, a, &sel, NULL));
    CHECK(sel.n == 0);
    sm_arena_free(a);
    block_mark_deleted(b);
    block_release(b);
    CHECK(access(path, F_OK) != 0);
    sm_buf_fini(&cb);

    /* An empty block. */
    CHECK_OK(block_writer_new(dir, ring, BMIN, BMAX, 1, &w, NULL));
    CHECK_OK(block_writer_add_series(w, &(sm_labels){l1, 2}, NULL, 0, NULL)); /* skipped */
    CHECK_OK_ERR(block_writer_commit(w, &meta, &err), &err);
    snprintf(path, sizeof path, "%s/%s", dir, meta.ulid);
    CHECK_OK_ERR(block_open(path, &b, &err), &err);
    CHECK_OK_ERR(block_verify(b, &err), &err);
    a = sm_arena_new(0, 0);
    CHECK_OK(block_select(b, NULL, 0, SM_MS_MIN, SM_MS_MAX, 1, a, &sel, NULL));
    CHECK(sel.n == 0 && block_get_meta(b)->nseries == 0);
    const char **v;
    size_t nv;
    CHECK_OK(block_label_names(b, NULL, 0, a, &v, &nv, NULL));
    CHECK(nv == 0);
    sm_arena_free(a);
    block_mark_deleted(b);
    block_release(b);
}

/* Concurrent readers: selects and acquire/release from several threads
 * while the block is marked deleted; it goes away after the last one. */
typedef struct reader_arg {
    block *b;
    int failures;
} reader_arg;

static void *reader_main(void *p) {
    reader_arg *ra = p;
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_RE, "dc", "dc[02]", NULL);
    for (int i = 0; i < 40; i++) {
        sm_arena *a = sm_arena_new(0, 0);
        tsdb_sel sel;
        if (block_select(ra->b, &m, 1, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, NULL) != 0 || sel.n == 0)
            ra->failures++;
        sm_arena_free(a);
    }
    sm_matcher_fini(&m);
    block_release(ra->b);
    return NULL;
}

static void test_threads(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta;
    char *path = write_block(dir, ring, &meta);
    block *b;
    CHECK_OK(block_open(path, &b, NULL));
    pthread_t th[4];
    reader_arg ra[4];
    for (int i = 0; i < 4; i++) {
        block_acquire(b);
        ra[i] = (reader_arg){b, 0};
        CHECK(pthread_create(&th[i], NULL, reader_main, &ra[i]) == 0);
    }
    block_mark_deleted(b);
    block_release(b);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(ra[i].failures, 0);
    }
    CHECK(access(path, F_OK) != 0);
    sm_free(path);
}

/* The byte layout of docs/FORMAT.md "Block", rebuilt here independently for
 * a two-series block and compared byte for byte with what the writer made
 * (STYLE.md rule 29). */
static void put_section(sm_buf *f, const sm_buf *payload) {
    sm_buf_put_le32(f, (uint32_t)payload->len);
    sm_buf_append(f, payload->p, payload->len);
    sm_buf_put_le32(f, sm_crc32c(0, payload->p, payload->len));
}

static void test_layout(const char *dir, sm_uring *ring) {
    const sm_ms_t mint = 1000, maxt = 10000;
    sm_ms_t ta[3] = {1000, 1001, 1002}, tb[2] = {2000, 3000};
    double va[3] = {1, 2, 3}, vb[2] = {-1.5, 0};
    sm_buf ca = SM_BUF_INIT, cb = SM_BUF_INIT;
    CHECK_OK(chunk_encode(ta, va, 3, &ca));
    CHECK_OK(chunk_encode(tb, vb, 2, &cb));
    sm_label la[2] = {{"__name__", "a"}, {"job", "x"}}, lb[1] = {{"__name__", "b"}};
    block_writer *w;
    CHECK_OK(block_writer_new(dir, ring, mint, maxt, 3, &w, NULL));
    tsdb_chunk_ref ra = {.mint = 1000, .maxt = 1002, .data = ca.p, .len = (uint32_t)ca.len, .prio = 0},
                   rb = {.mint = 2000, .maxt = 3000, .data = cb.p, .len = (uint32_t)cb.len, .prio = 0};
    CHECK_OK(block_writer_add_series(w, &(sm_labels){la, 2}, &ra, 1, NULL));
    CHECK_OK(block_writer_add_series(w, &(sm_labels){lb, 1}, &rb, 1, NULL));
    block_meta meta;
    CHECK_OK(block_writer_commit(w, &meta, NULL));
    char path[2100], fpath[2200];
    snprintf(path, sizeof path, "%s/%s", dir, meta.ulid);

    /* chunks: magic, then the chunks back to back. */
    sm_buf want = SM_BUF_INIT, sec = SM_BUF_INIT;
    sm_buf_append(&want, "SMCHK\0\0\1", 8);
    sm_buf_append(&want, ca.p, ca.len);
    sm_buf_append(&want, cb.p, cb.len);
    size_t n;
    snprintf(fpath, sizeof fpath, "%s/chunks", path);
    uint8_t *got = slurp(fpath, &n);
    CHECK_MSG(got && n == want.len && memcmp(got, want.p, n) == 0, "chunks file differs from FORMAT.md");
    size_t chunks_len = n;
    free(got);

    /* index: symbols __name__ a b job x (ids 0..4). */
    sm_buf_clear(&want);
    sm_buf_append(&want, "SMIDX\0\0\1", 8);
    static const char *syms[] = {"__name__", "a", "b", "job", "x"};
    sm_buf_put_uvarint(&sec, 5);
    for (int i = 0; i < 5; i++) sm_buf_put_str(&sec, syms[i], strlen(syms[i]));
    put_section(&want, &sec);
    /* series */
    sm_buf_clear(&sec);
    sm_buf_put_uvarint(&sec, 2);
    uint64_t off0 = sec.len;
    sm_buf_put_uvarint(&sec, 2);
    sm_buf_put_uvarint(&sec, 0), sm_buf_put_uvarint(&sec, 1), sm_buf_put_uvarint(&sec, 3), sm_buf_put_uvarint(&sec, 4);
    sm_buf_put_uvarint(&sec, 8);
    sm_buf_put_le32(&sec, sm_crc32c(0, ca.p, ca.len));
    sm_buf_put_uvarint(&sec, 1);
    sm_buf_put_uvarint(&sec, 1000 - 1000), sm_buf_put_uvarint(&sec, 2), sm_buf_put_uvarint(&sec, ca.len);
    uint64_t off1 = sec.len;
    sm_buf_put_uvarint(&sec, 1);
    sm_buf_put_uvarint(&sec, 0), sm_buf_put_uvarint(&sec, 2);
    sm_buf_put_uvarint(&sec, 8 + ca.len);
    sm_buf_put_le32(&sec, sm_crc32c(0, cb.p, cb.len));
    sm_buf_put_uvarint(&sec, 1);
    sm_buf_put_uvarint(&sec, 2000 - 1000), sm_buf_put_uvarint(&sec, 1000), sm_buf_put_uvarint(&sec, cb.len);
    put_section(&want, &sec);
    /* series offsets */
    sm_buf_clear(&sec);
    sm_buf_put_le64(&sec, off0);
    sm_buf_put_le64(&sec, off1);
    put_section(&want, &sec);
    /* label table: __name__ -> a (postings at 0), b (at 2); job -> x (at 4) */
    sm_buf_clear(&sec);
    sm_buf_put_uvarint(&sec, 2);
    sm_buf_put_uvarint(&sec, 0), sm_buf_put_uvarint(&sec, 2);
    sm_buf_put_uvarint(&sec, 1), sm_buf_put_uvarint(&sec, 0);
    sm_buf_put_uvarint(&sec, 2), sm_buf_put_uvarint(&sec, 2);
    sm_buf_put_uvarint(&sec, 3), sm_buf_put_uvarint(&sec, 1);
    sm_buf_put_uvarint(&sec, 4), sm_buf_put_uvarint(&sec, 4);
    put_section(&want, &sec);
    /* postings: [0], [1], [0] */
    sm_buf_clear(&sec);
    sm_buf_put_uvarint(&sec, 1), sm_buf_put_uvarint(&sec, 0);
    sm_buf_put_uvarint(&sec, 1), sm_buf_put_uvarint(&sec, 1);
    sm_buf_put_uvarint(&sec, 1), sm_buf_put_uvarint(&sec, 0);
    put_section(&want, &sec);
    snprintf(fpath, sizeof fpath, "%s/index", path);
    got = slurp(fpath, &n);
    CHECK_MSG(got && n == want.len && memcmp(got, want.p, n) == 0, "index file differs from FORMAT.md");
    size_t index_len = n;
    free(got);

    /* meta.json: the canonical text, numBytes counting itself, crc32c of the
     * bytes before its line. */
    snprintf(fpath, sizeof fpath, "%s/meta.json", path);
    got = slurp(fpath, &n);
    char head[600], text[700];
    int hl = snprintf(head, sizeof head,
                      "{\n  \"version\": 1,\n  \"ulid\": \"%s\",\n  \"minTime\": 1000,\n  \"maxTime\": 10000,\n"
                      "  \"stats\": {\"numSeries\": 2, \"numChunks\": 2, \"numSamples\": 5, \"numBytes\": %zu},\n"
                      "  \"compaction\": {\"level\": 3},\n",
                      meta.ulid, chunks_len + index_len + n);
    snprintf(text, sizeof text, "%s  \"crc32c\": \"%08x\"\n}\n", head, (unsigned)sm_crc32c(0, head, (size_t)hl));
    CHECK_MSG(got && n == strlen(text) && memcmp(got, text, n) == 0, "meta.json differs from FORMAT.md:\n%.*s",
              (int)n, got ? (const char *)got : "");
    CHECK(meta.bytes == chunks_len + index_len + n);
    free(got);
    sm_buf_fini(&want);
    sm_buf_fini(&sec);
    sm_buf_fini(&ca);
    sm_buf_fini(&cb);
    sm_fs_remove_all(path);
}

/* Allocation failure at every point of open, select, listings and verify,
 * and of a writer's life: a clean error (never a crash, never a wrong
 * success), nothing leaked (ASan), no temporary directory left behind. */
static void test_alloc_faults(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta;
    char *path = write_block(dir, ring, &meta);
    sm_matcher m[2];
    CHECK_OK(sm_matcher_init(&m[0], SM_MATCH_RE, "dc", "dc[01]", NULL));
    CHECK_OK(sm_matcher_init(&m[1], SM_MATCH_NEQ, "instance", "host-003", NULL));
    int bad = 0, steps = 0;
    for (long n = 0; n < 400; n++) {
        sm_alloc_fail_after(n);
        block *b = NULL;
        int rc = block_open(path, &b, NULL);
        int rs = 0, rv = 0, rl = 0;
        if (rc == 0) {
            sm_arena *a = sm_arena_new(0, 0);
            if (a) {
                tsdb_sel sel;
                const char **v;
                size_t nv;
                rs = block_select(b, m, 2, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, NULL);
                rl = block_label_values(b, "instance", m, 2, a, &v, &nv, NULL);
                if (!rl) rl = block_label_names(b, NULL, 0, a, &v, &nv, NULL);
                sm_arena_free(a);
            }
            rv = block_verify(b, NULL);
            block_release(b);
        }
        sm_alloc_fail_reset();
        bad += (rc && rc != SM_ENOMEM) || (rs && rs != SM_ENOMEM) || (rl && rl != SM_ENOMEM) ||
               (rv && rv != SM_ENOMEM);
        steps++;
        if (!rc && !rs && !rl && !rv) break;
    }
    CHECK_MSG(bad == 0, "%d of %d fault points gave something other than SM_ENOMEM", bad, steps);
    CHECK_MSG(steps > 5 && steps < 400, "reader fault loop ran %d steps", steps);
    printf("reader allocation fault points: %d\n", steps);
    sm_matcher_fini(&m[0]);
    sm_matcher_fini(&m[1]);
    sm_fs_remove_all(path);
    sm_free(path);

    /* The writer: any failure leaves data_dir as it was. */
    sm_ms_t ts[30];
    double vs[30];
    for (int i = 0; i < 30; i++) ts[i] = BMIN + 1000 * i, vs[i] = i;
    sm_buf cb = SM_BUF_INIT;
    CHECK_OK(chunk_encode(ts, vs, 30, &cb));
    tsdb_chunk_ref ref = {.mint = ts[0], .maxt = ts[29], .data = cb.p, .len = (uint32_t)cb.len, .prio = 0};
    sm_label l[2] = {{"__name__", "m"}, {"x", "1"}};
    int leftovers = 0, ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
        sm_alloc_fail_after(n);
        block_writer *w;
        int rc = block_writer_new(dir, ring, BMIN, BMAX, 1, &w, NULL);
        if (rc == 0) {
            rc = block_writer_add_series(w, &(sm_labels){l, 2}, &ref, 1, NULL);
            if (rc == 0) rc = block_writer_commit(w, &meta, NULL);
            else block_writer_abort(w);
        }
        sm_alloc_fail_reset();
        char **names;
        size_t nn;
        CHECK_OK(sm_fs_list(dir, &names, &nn));
        if (rc == 0) {
            ok = 1;
            leftovers += nn != 1;
            char bp[2100];
            snprintf(bp, sizeof bp, "%s/%s", dir, meta.ulid);
            block *b;
            CHECK_OK(block_open(bp, &b, NULL));
            CHECK_OK(block_verify(b, NULL));
            block_mark_deleted(b);
            block_release(b);
        } else {
            leftovers += nn != 0;
        }
        sm_fs_names_free(names, nn);
    }
    CHECK_MSG(ok && leftovers == 0, "writer under allocation faults: ok %d, leftovers %d", ok, leftovers);
    sm_buf_fini(&cb);
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

/* A block's shared-column chunks leave block_select as they lie in the
 * file (tcol set, nothing copied) and decode there (check_sel); written
 * into another block, as compaction does, they are expanded and shared
 * again, and the copy reads back the same.  A reference chunk handed to a
 * writer without its column is refused. */
static void test_rewrite_shared(uint64_t *rng, const char *dir, sm_uring *ring) {
    make_series(rng);
    block_meta meta, meta2;
    char *path = write_block(dir, ring, &meta);
    block *b, *b2;
    sm_error err = {0};
    CHECK_OK_ERR(block_open(path, &b, &err), &err);
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    CHECK_OK_ERR(block_select(b, NULL, 0, SM_MS_MIN, SM_MS_MAX, 0, a, &sel, &err), &err);
    size_t shared = 0, refused = 0;
    block_writer *w;
    CHECK_OK_ERR(block_writer_new(dir, ring, BMIN, BMAX, 2, &w, &err), &err);
    for (size_t i = 0; i < sel.n; i++) {
        const tsdb_sel_series *se = &sel.v[i];
        for (uint32_t c = 0; c < se->nchunks; c++) {
            if (!se->chunks[c].tcol) continue;
            shared++;
            CHECK(chunk_is_ref(se->chunks[c].data, se->chunks[c].len));
            if (refused++) continue;
            tsdb_chunk_ref bare = se->chunks[c];
            bare.tcol = NULL;
            CHECK_EQ_INT(block_writer_add_series(w, &se->labels, &bare, 1, NULL), SM_EINVAL);
        }
        CHECK_OK_ERR(block_writer_add_series(w, &se->labels, se->chunks, se->nchunks, &err), &err);
    }
    CHECK_MSG(shared > 0, "no chunk of the block came out with a shared column");
    CHECK_OK_ERR(block_writer_commit(w, &meta2, &err), &err);
    char path2[2048];
    snprintf(path2, sizeof path2, "%s/%s", dir, meta2.ulid);
    CHECK_OK_ERR(block_open(path2, &b2, &err), &err);
    CHECK_OK_ERR(block_verify(b2, &err), &err);
    CHECK(block_get_meta(b2)->nsamples == block_get_meta(b)->nsamples);
    CHECK(block_get_meta(b2)->bytes <= block_get_meta(b)->bytes + 64);
    sm_matcher all;
    CHECK_OK(sm_matcher_init(&all, SM_MATCH_RE, "__name__", ".+", NULL));
    check_sel(b2, &all, 1, SM_MS_MIN, SM_MS_MAX, "rewritten block");
    sm_matcher_fini(&all);
    sm_arena_free(a);
    block_mark_deleted(b2);
    block_release(b2);
    block_mark_deleted(b);
    block_release(b);
    CHECK(access(path, F_OK) != 0 && access(path2, F_OK) != 0);
    sm_free(path);
}

int main(void) {
    uint64_t rng = check_seed();
    const char *dir = check_tmpdir("block");
    sm_uring *ring;
    CHECK_OK(sm_uring_new(32, &ring));
    test_roundtrip(&rng, dir, ring);
    test_rewrite_shared(&rng, dir, ring);
    test_damage(&rng, dir, ring);
    test_damage_parser(&rng, dir, ring);
    test_meta_strict(&rng, dir, ring);
    test_writer_refusals(&rng, dir, ring);
    test_threads(&rng, dir, ring);
    test_layout(dir, ring);
    test_alloc_faults(&rng, dir, ring);
    test_abort(dir, ring);
    sm_uring_free(ring);
    check_rmdir(dir);
    return check_done();
}
