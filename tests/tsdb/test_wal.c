/* SPDX-License-Identifier: Apache-2.0
 *
 * test_wal.c - the write-ahead log: payload codecs on random data, records
 * across segments in every sync mode, concurrent appenders with group
 * commit, a torn tail and a corrupt middle cut at the last good record,
 * checkpoints, backpressure and the fsync statistics.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/fsutil.h"
#include "tsdb/wal.h"

/* ---- a log of what was appended, to compare replay with ---- */

typedef struct rec {
    uint8_t type;
    uint8_t *p;
    size_t len;
} rec;

typedef struct reclog {
    rec *v;
    size_t n, cap;
    pthread_mutex_t mu;
} reclog;

static void reclog_add(reclog *l, uint8_t type, const void *p, size_t len) {
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].type = type;
    l->v[l->n].p = malloc(len ? len : 1);
    memcpy(l->v[l->n].p, p, len);
    l->v[l->n].len = len;
    l->n++;
    pthread_mutex_unlock(&l->mu);
}

static void reclog_free(reclog *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].p);
    free(l->v);
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

static int collect(void *ctx, uint8_t type, const uint8_t *p, size_t len) {
    reclog_add(ctx, type, p, len);
    return 0;
}

static int count_only(void *ctx, uint8_t type, const uint8_t *p, size_t len) {
    (void)type, (void)p, (void)len;
    ++*(size_t *)ctx;
    return 0;
}

static bool same_rec(const rec *a, const rec *b) {
    return a->type == b->type && a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static void random_payload(uint64_t *rng, uint8_t *p, size_t *len) {
    *len = check_rand_below(rng, 5) == 0 ? check_rand_below(rng, 3000) : check_rand_below(rng, 100);
    for (size_t i = 0; i < *len; i++) p[i] = (uint8_t)check_rand(rng);
}

static wal *open_wal(const char *dir, wal_sync_mode mode, uint64_t seg) {
    wal_opts o;
    wal_opts_default(&o);
    o.sync = mode;
    o.segment_bytes = seg;
    o.interval_ms = 20;
    wal *w = NULL;
    sm_error err = {0};
    int rc = wal_open(dir, &o, &w, &err);
    CHECK_MSG(rc == 0, "wal_open: %s", err.msg);
    return w;
}

static void replay_into(const char *dir, reclog *got) {
    wal *w = open_wal(dir, WAL_SYNC_BATCH, 1 << 20);
    if (!w) return;
    sm_error err = {0};
    CHECK_OK_ERR(wal_replay(w, collect, got, &err), &err);
    CHECK_OK(wal_close(w, NULL));
}

static void check_same(const reclog *want, const reclog *got, size_t nwant, const char *what) {
    CHECK_MSG(got->n == nwant, "%s: replayed %zu records, want %zu", what, got->n, nwant);
    size_t bad = 0;
    for (size_t i = 0; i < nwant && i < got->n; i++) bad += !same_rec(&want->v[i], &got->v[i]);
    CHECK_MSG(bad == 0, "%s: %zu records differ", what, bad);
}

/* Append one record, wait until it is durable, and log it in want. */
static void append_logged(wal *w, reclog *want, uint8_t type, const void *p, size_t len) {
    wal_rec r = {type, p, len};
    uint64_t lsn;
    CHECK_OK(wal_append(w, &r, 1, &lsn, NULL));
    CHECK_OK(wal_wait(w, lsn, NULL));
    reclog_add(want, type, p, len);
}

/* ---- tests ---- */

static void test_modes(uint64_t *rng, const char *base) {
    static const wal_sync_mode modes[] = {WAL_SYNC_BATCH, WAL_SYNC_INTERVAL, WAL_SYNC_NONE};
    uint8_t buf[3000];
    for (int m = 0; m < 3; m++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/mode%d", base, m);
        reclog want = {0}, got = {0};
        pthread_mutex_init(&want.mu, NULL);
        pthread_mutex_init(&got.mu, NULL);
        wal *w = open_wal(dir, modes[m], 8192);
        if (!w) return;
        CHECK_OK(wal_replay(w, collect, &got, NULL)); /* empty */
        CHECK(got.n == 0);
        for (int i = 0; i < 300; i++) {
            wal_rec recs[3];
            uint8_t payloads[3][3000];
            size_t nr = 1 + check_rand_below(rng, 3);
            for (size_t k = 0; k < nr; k++) {
                size_t len;
                random_payload(rng, payloads[k], &len);
                recs[k] = (wal_rec){(uint8_t)(1 + check_rand_below(rng, 2)), payloads[k], len};
                reclog_add(&want, recs[k].type, payloads[k], len);
            }
            uint64_t lsn;
            CHECK_OK(wal_append(w, recs, nr, &lsn, NULL));
            if (i % 7 == 0) CHECK_OK(wal_wait(w, lsn, NULL));
        }
        (void)buf;
        wal_stats st;
        wal_get_stats(w, &st);
        CHECK_OK(wal_close(w, NULL));
        CHECK_MSG(st.segments > 3, "mode %d: %llu segments", m, (unsigned long long)st.segments);
        replay_into(dir, &got);
        check_same(&want, &got, want.n, "modes");
        /* Appending after a replay goes on in a new segment. */
        w = open_wal(dir, modes[m], 8192);
        reclog_free(&got);
        CHECK_OK(wal_replay(w, collect, &got, NULL));
        uint8_t extra[] = "after";
        append_logged(w, &want, WAL_REC_SAMPLES, extra, sizeof extra);
        CHECK_OK(wal_close(w, NULL));
        reclog_free(&got);
        replay_into(dir, &got);
        check_same(&want, &got, want.n, "append after replay");
        reclog_free(&want);
        reclog_free(&got);
    }
}

typedef struct worker_arg {
    wal *w;
    int id;
    int fails;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    for (int i = 0; i < 400; i++) {
        uint32_t payload[2] = {(uint32_t)a->id, (uint32_t)i};
        wal_rec r = {WAL_REC_SAMPLES, payload, sizeof payload};
        uint64_t lsn;
        if (wal_append(a->w, &r, 1, &lsn, NULL) || wal_wait(a->w, lsn, NULL)) a->fails++;
    }
    return NULL;
}

static void test_concurrent(const char *base) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/concurrent", base);
    wal *w = open_wal(dir, WAL_SYNC_BATCH, 1 << 20);
    if (!w) return;
    CHECK_OK(wal_replay(w, count_only, &(size_t){0}, NULL));
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){w, i, 0};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].fails == 0);
    }
    wal_stats st;
    wal_get_stats(w, &st);
    /* Group commit: fewer fsyncs than appends. */
    CHECK_MSG(st.fsyncs > 0 && st.fsyncs <= 1600, "fsyncs %llu for 1600 appends", (unsigned long long)st.fsyncs);
    uint64_t prev = 0;
    bool mono = true;
    for (int i = 0; i < WAL_FSYNC_BUCKETS; i++) {
        mono = mono && st.fsync_buckets[i] >= prev;
        prev = st.fsync_buckets[i];
    }
    CHECK(mono && st.fsync_buckets[WAL_FSYNC_BUCKETS - 1] == st.fsyncs);
    CHECK_OK(wal_close(w, NULL));
    reclog got = {0};
    pthread_mutex_init(&got.mu, NULL);
    replay_into(dir, &got);
    CHECK(got.n == 1600);
    int next[4] = {0};
    bool ordered = true;
    for (size_t i = 0; i < got.n; i++) {
        uint32_t id = sm_load_le32(got.v[i].p), seq = sm_load_le32(got.v[i].p + 4);
        if (id >= 4 || (int)seq != next[id]) ordered = false;
        else next[id]++;
    }
    CHECK_MSG(ordered, "each appender's records replay in its order");
    reclog_free(&got);
}

/* Write 3 segments, damage one, and check what replay keeps. */
static void test_damage(uint64_t *rng, const char *base, int how) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/damage%d", base, how);
    reclog want = {0}, got = {0};
    pthread_mutex_init(&want.mu, NULL);
    pthread_mutex_init(&got.mu, NULL);
    wal *w = open_wal(dir, WAL_SYNC_BATCH, 4096);
    if (!w) return;
    CHECK_OK(wal_replay(w, collect, &got, NULL));
    for (int i = 0; i < 60; i++) {
        uint8_t p[200];
        size_t len = 150 + check_rand_below(rng, 50);
        for (size_t k = 0; k < len; k++) p[k] = (uint8_t)check_rand(rng);
        append_logged(w, &want, WAL_REC_SERIES, p, len); /* one record per write: known boundaries */
    }
    CHECK_OK(wal_close(w, NULL));
    char **names;
    size_t n;
    CHECK_OK(sm_fs_list(dir, &names, &n));
    CHECK(n >= 3);
    if (n < 3) return;
    char path[2048];
    size_t kept;
    if (how == 0) { /* torn tail: the last segment ends inside a record */
        snprintf(path, sizeof path, "%s/%s", dir, names[n - 1]);
        struct stat st;
        stat(path, &st);
        CHECK(truncate(path, st.st_size - 7) == 0);
        kept = want.n - 1;
    } else { /* a flipped byte in the middle of the second segment */
        snprintf(path, sizeof path, "%s/%s", dir, names[1]);
        int fd = open(path, O_RDWR);
        uint8_t b;
        CHECK(pread(fd, &b, 1, 100) == 1);
        b ^= 0x40;
        CHECK(pwrite(fd, &b, 1, 100) == 1);
        close(fd);
        /* Records of the first segment survive, nothing after the damage. */
        reclog first = {0};
        pthread_mutex_init(&first.mu, NULL);
        kept = 0;
        char p0[2048];
        snprintf(p0, sizeof p0, "%s/%s", dir, names[0]);
        struct stat st;
        stat(p0, &st);
        size_t off = 8;
        while (off < (size_t)st.st_size && kept < want.n) off += 9 + want.v[kept++].len;
        reclog_free(&first);
    }
    sm_fs_names_free(names, n);
    w = open_wal(dir, WAL_SYNC_BATCH, 4096);
    CHECK_OK(wal_replay(w, collect, &got, NULL));
    wal_stats st;
    wal_get_stats(w, &st);
    CHECK(st.replay_truncations == 1);
    CHECK_OK(wal_close(w, NULL));
    check_same(&want, &got, kept, how ? "corrupt middle" : "torn tail");
    /* The cut is durable: a second replay sees the same, with no new cut. */
    reclog_free(&got);
    w = open_wal(dir, WAL_SYNC_BATCH, 4096);
    CHECK_OK(wal_replay(w, collect, &got, NULL));
    wal_get_stats(w, &st);
    CHECK(st.replay_truncations == 0);
    CHECK_OK(wal_close(w, NULL));
    check_same(&want, &got, kept, "second replay");
    reclog_free(&want);
    reclog_free(&got);
}

/* A crash between creating a segment file and writing its header leaves
 * an empty file.  Replay must drop it for good: the records written after
 * that start (into later segments) must survive the next replay. */
static void test_empty_segment(const char *base) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/empty-seg", base);
    reclog want = {0}, got = {0};
    pthread_mutex_init(&want.mu, NULL);
    pthread_mutex_init(&got.mu, NULL);
    for (int session = 0; session < 3; session++) {
        wal *w = open_wal(dir, WAL_SYNC_BATCH, 1 << 20);
        if (!w) return;
        reclog_free(&got);
        CHECK_OK(wal_replay(w, collect, &got, NULL));
        wal_stats st;
        wal_get_stats(w, &st);
        CHECK_MSG(st.replay_truncations == (session == 1), "session %d: %llu cuts", session,
                  (unsigned long long)st.replay_truncations);
        check_same(&want, &got, want.n, "after an empty segment");
        if (session == 2) {
            CHECK_OK(wal_close(w, NULL));
            break;
        }
        for (int i = 0; i < 10; i++) {
            uint8_t p[64];
            memset(p, session * 16 + i, sizeof p);
            append_logged(w, &want, WAL_REC_SERIES, p, sizeof p);
        }
        CHECK_OK(wal_close(w, NULL));
        if (session == 0) {
            /* The file the next segment would have been, left empty. */
            char **names;
            size_t n;
            CHECK_OK(sm_fs_list(dir, &names, &n));
            unsigned hi = 0;
            for (size_t i = 0; i < n; i++)
                if (strlen(names[i]) == 8 && (unsigned)atoi(names[i]) > hi) hi = (unsigned)atoi(names[i]);
            sm_fs_names_free(names, n);
            char path[2048];
            snprintf(path, sizeof path, "%s/%08u", dir, hi + 1);
            int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
            CHECK(fd >= 0);
            if (fd >= 0) close(fd);
        }
    }
    reclog_free(&want);
    reclog_free(&got);
}

/* ---- codecs and checkpoints ---- */

typedef struct dec_ctx {
    wal_sample s[4096];
    size_t n;
    uint64_t refs[64];
    char names[64][64];
    size_t nseries;
} dec_ctx;

static int dec_samples(void *ctx, const wal_sample *s, size_t n) {
    dec_ctx *c = ctx;
    for (size_t i = 0; i < n && c->n < 4096; i++) c->s[c->n++] = s[i];
    return 0;
}

static int dec_series(void *ctx, uint64_t ref, const sm_labels *ls) {
    dec_ctx *c = ctx;
    if (c->nseries < 64) {
        c->refs[c->nseries] = ref;
        snprintf(c->names[c->nseries], 64, "%s", ls->v[0].value);
        c->nseries++;
    }
    return 0;
}

static void test_codecs(uint64_t *rng) {
    static dec_ctx c;
    wal_sample s[4000];
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + check_rand_below(rng, 4000);
        for (size_t i = 0; i < n; i++) {
            uint64_t specials[] = {SM_STALE_NAN_BITS, 0x8000000000000000ull, 0x7ff0000000000000ull,
                                   check_rand(rng)};
            s[i] = (wal_sample){1 + check_rand_below(rng, 1ull << (check_rand_below(rng, 40))),
                                (sm_ms_t)check_rand(rng) >> check_rand_below(rng, 64),
                                sm_f64_from_bits(specials[check_rand_below(rng, 4)])};
        }
        /* Runs of 1..40 samples share a series (some runs empty): the run
         * encoder must give wal_enc_samples' bytes exactly. */
        static wal_run runs[4000 * 2];
        static sm_ms_t rt[4000];
        static double rv[4000];
        size_t nruns = 0;
        for (size_t i = 0; i < n;) {
            size_t len = 1 + check_rand_below(rng, 40);
            if (len > n - i) len = n - i;
            if (check_rand_below(rng, 8) == 0) runs[nruns++] = (wal_run){7, rt + i, rv + i, 0};
            runs[nruns++] = (wal_run){s[i].ref, rt + i, rv + i, (uint32_t)len};
            for (size_t k = i; k < i + len; k++) {
                s[k].ref = s[i].ref;
                rt[k] = s[k].t;
                rv[k] = s[k].v;
            }
            i += len;
        }
        sm_buf b = SM_BUF_INIT, br = SM_BUF_INIT;
        CHECK_OK(wal_enc_samples(&b, s, n));
        CHECK_OK(wal_enc_sample_runs(&br, runs, nruns));
        CHECK_MSG(br.len == b.len && memcmp(br.p, b.p, b.len) == 0, "runs: %zu bytes, samples: %zu bytes",
                  br.len, b.len);
        sm_buf_fini(&br);
        c.n = 0;
        CHECK_OK(wal_dec_samples(b.p, b.len, dec_samples, &c));
        bool ok = c.n == n;
        for (size_t i = 0; ok && i < n; i++)
            ok = c.s[i].ref == s[i].ref && c.s[i].t == s[i].t &&
                 sm_f64_bits(c.s[i].v) == sm_f64_bits(s[i].v);
        CHECK(ok);
        /* Every truncation is refused. */
        size_t cut = check_rand_below(rng, b.len);
        c.n = 0;
        CHECK_EQ_INT(wal_dec_samples(b.p, cut, dec_samples, &c), SM_ECORRUPT);
        sm_buf_fini(&b);
    }
    sm_buf b = SM_BUF_INIT;
    sm_label l[2] = {{"__name__", "up"}, {"job", "x"}};
    for (uint64_t ref = 1; ref <= 10; ref++) CHECK_OK(wal_enc_series(&b, ref, &(sm_labels){l, 2}));
    sm_arena *a = sm_arena_new(0, 0);
    c.nseries = 0;
    CHECK_OK(wal_dec_series(b.p, b.len, a, dec_series, &c));
    CHECK(c.nseries == 10 && c.refs[9] == 10 && !strcmp(c.names[3], "up"));
    CHECK_EQ_INT(wal_dec_series(b.p, b.len - 1, a, dec_series, &c), SM_ECORRUPT);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

static bool keep_even(void *ctx, uint64_t ref) {
    (void)ctx;
    return ref % 2 == 0;
}

typedef struct ck_seen {
    uint64_t series_refs[64];
    size_t nseries;
    size_t nsamples, bad_samples;
    sm_ms_t mint;
} ck_seen;

static int ck_series_cb(void *ctx, uint64_t ref, const sm_labels *ls) {
    (void)ls;
    ck_seen *c = ctx;
    if (c->nseries < 64) c->series_refs[c->nseries++] = ref;
    return 0;
}
static int ck_samples_cb(void *ctx, const wal_sample *s, size_t n) {
    ck_seen *c = ctx;
    for (size_t i = 0; i < n; i++) {
        c->nsamples++;
        if (s[i].t < c->mint || s[i].ref % 2) c->bad_samples++;
    }
    return 0;
}
static int ck_collect(void *ctx, uint8_t type, const uint8_t *p, size_t len) {
    static sm_arena *a;
    if (!a) a = sm_arena_new(0, 0);
    sm_arena_reset(a);
    if (type == WAL_REC_SERIES) return wal_dec_series(p, len, a, ck_series_cb, ctx);
    if (type == WAL_REC_SAMPLES) return wal_dec_samples(p, len, ck_samples_cb, ctx);
    return 0;
}

static void test_checkpoint(const char *base) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ckpt", base);
    wal *w = open_wal(dir, WAL_SYNC_BATCH, 4096);
    if (!w) return;
    CHECK_OK(wal_replay(w, count_only, &(size_t){0}, NULL));
    sm_label l[2] = {{"__name__", "up"}, {"job", "x"}};
    sm_buf b = SM_BUF_INIT;
    for (uint64_t ref = 1; ref <= 10; ref++) CHECK_OK(wal_enc_series(&b, ref, &(sm_labels){l, 2}));
    wal_rec r = {WAL_REC_SERIES, b.p, b.len};
    uint64_t lsn;
    CHECK_OK(wal_append(w, &r, 1, &lsn, NULL));
    for (sm_ms_t t = 0; t < 1000; t += 10) {
        wal_sample s[10];
        for (int k = 0; k < 10; k++) s[k] = (wal_sample){(uint64_t)k + 1, t, (double)t};
        sm_buf_clear(&b);
        CHECK_OK(wal_enc_samples(&b, s, 10));
        r = (wal_rec){WAL_REC_SAMPLES, b.p, b.len};
        CHECK_OK(wal_append(w, &r, 1, &lsn, NULL));
        CHECK_OK(wal_wait(w, lsn, NULL));
    }
    sm_error err = {0};
    CHECK_OK_ERR(wal_checkpoint(w, 500, keep_even, NULL, &err), &err);
    /* Appends after the checkpoint land in a new segment and survive. */
    wal_sample late = {2, 2000, 1.0};
    sm_buf_clear(&b);
    CHECK_OK(wal_enc_samples(&b, &late, 1));
    r = (wal_rec){WAL_REC_SAMPLES, b.p, b.len};
    CHECK_OK(wal_append(w, &r, 1, &lsn, NULL));
    CHECK_OK(wal_wait(w, lsn, NULL));
    /* A second checkpoint folds the first one in. */
    CHECK_OK_ERR(wal_checkpoint(w, 600, keep_even, NULL, &err), &err);
    CHECK_OK(wal_close(w, NULL));
    sm_buf_fini(&b);
    char **names;
    size_t n;
    CHECK_OK(sm_fs_list(dir, &names, &n));
    size_t ckpts = 0;
    for (size_t i = 0; i < n; i++) ckpts += strncmp(names[i], "checkpoint.", 11) == 0;
    CHECK_MSG(ckpts == 1, "%zu checkpoints on disk", ckpts);
    sm_fs_names_free(names, n);

    static ck_seen seen;
    memset(&seen, 0, sizeof seen);
    seen.mint = 600;
    w = open_wal(dir, WAL_SYNC_BATCH, 4096);
    CHECK_OK(wal_replay(w, ck_collect, &seen, NULL));
    CHECK_OK(wal_close(w, NULL));
    CHECK_MSG(seen.nseries == 5, "series kept: %zu", seen.nseries);
    bool even = true;
    for (size_t i = 0; i < seen.nseries; i++) even = even && seen.series_refs[i] % 2 == 0;
    CHECK(even);
    /* t in [600, 990] step 10 for refs 2,4,..,10: 40 * 5, plus the late one. */
    CHECK_MSG(seen.nsamples == 40 * 5 + 1, "samples kept: %zu", seen.nsamples);
    CHECK(seen.bad_samples == 0);
}

static void test_backpressure(const char *base) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bp", base);
    wal_opts o;
    wal_opts_default(&o);
    o.max_pending_bytes = 2048;
    wal *w;
    CHECK_OK(wal_open(dir, &o, &w, NULL));
    CHECK_OK(wal_replay(w, count_only, &(size_t){0}, NULL));
    uint8_t p[1000] = {0};
    wal_rec r = {WAL_REC_SAMPLES, p, sizeof p};
    size_t ok = 0, again = 0;
    uint64_t lsn = 0;
    for (int i = 0; i < 20000 && again == 0; i++) {
        sm_error err = {0};
        int rc = wal_append(w, &r, 1, &lsn, &err);
        if (rc == 0) ok++;
        else if (rc == SM_EAGAIN) again++;
        else CHECK_MSG(0, "append: %d", rc);
    }
    if (lsn) CHECK_OK(wal_wait(w, lsn, NULL));
    CHECK_OK(wal_close(w, NULL));
    reclog got = {0};
    pthread_mutex_init(&got.mu, NULL);
    replay_into(dir, &got);
    CHECK_MSG(got.n == ok, "replayed %zu, acknowledged %zu (refused %zu)", got.n, ok, again);
    if (again == 0) printf("note: the writer kept up; backpressure not exercised this run\n");
    reclog_free(&got);
}

int main(void) {
    uint64_t rng = check_seed();
    const char *base = check_tmpdir("wal");
    test_codecs(&rng);
    test_modes(&rng, base);
    test_concurrent(base);
    test_damage(&rng, base, 0);
    test_damage(&rng, base, 1);
    test_empty_segment(base);
    test_checkpoint(base);
    test_backpressure(base);
    check_rmdir(base);
    return check_done();
}
