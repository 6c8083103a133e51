/* SPDX-License-Identifier: Apache-2.0
 *
 * tsdb.c - the storage engine's public API over the head, the WAL and the
 * block set.  The design is in tsdb/README.md; in short:
 *
 * Append: validate each series, find or create it in the head, check each
 * sample against the out-of-order window and the cut floor, log the
 * batch's new series and accepted samples in one WAL append, apply them to
 * the head, then wait until the WAL says the batch is durable.  Appends hold
 * the cut lock shared, so a cut sees no half-applied batch.
 *
 * Cut: with the cut lock held exclusively, raise the floor to the cut time
 * (later samples below it are out of bounds, as in Prometheus), then export
 * the head below it into one block per block range, publish the blocks,
 * drop the exported data from the head and checkpoint the WAL down to the
 * floor.  Everything below the floor is then in blocks and everything above
 * it in the head and the WAL.
 *
 * Read: a selection is the head's matching series (chunk bytes copied) and
 * every overlapping block's (blocks acquired until the set is freed),
 * merged by labels; iterators resolve overlaps, the head winning, then the
 * newer block.
 */
#include "tsdb.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/sm_alloc.h"
#include "base/sm_log.h"
#include "base/sm_time.h"
#include "block.h"
#include "blockset.h"
#include "fsutil.h"
#include "head.h"
#include "merge.h"

#define HOUR_MS (3600LL * 1000)
#define HEAD_PRIO UINT32_MAX /* the head wins over every block */
#define BG_PERIOD_MS 30000

struct tsdb {
    char *dir;
    tsdb_opts o;
    int lock_fd;
    head *h;
    wal *w;
    blockset *bs;
    sm_uring *ring;           /* block writing; used under cut_mu */
    pthread_rwlock_t cut_lock; /* appends shared, the floor change exclusive */
    pthread_mutex_t cut_mu;   /* one cut or compaction at a time */
    sm_ms_t floor;            /* samples below are in blocks: out of bounds */
    bool cut_failed;          /* a cut could not publish: stop cutting */
    pthread_t bg;
    bool bg_running;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bool closing;
};

void tsdb_opts_default(tsdb_opts *o) {
    memset(o, 0, sizeof *o);
    wal_opts wo;
    wal_opts_default(&wo);
    o->wal_sync = WAL_SYNC_BATCH;
    o->wal_sync_interval_ms = wo.interval_ms;
    o->wal_segment_bytes = wo.segment_bytes;
    o->wal_max_pending_bytes = wo.max_pending_bytes;
    o->ooo_window_ms = HOUR_MS;
    o->block_range_ms = 2 * HOUR_MS;
    o->retention_ms = 15 * 24 * HOUR_MS;
    o->retention_bytes = 0;
    o->chunk_max_samples = 120;
    o->max_series = 0;
    o->background = true;
    o->background_interval_ms = BG_PERIOD_MS;
}

/* ---- WAL replay ---- */

typedef struct replay_ctx {
    tsdb *db;
    sm_arena *a;
    uint64_t series, samples, unknown, failed;
} replay_ctx;

static int replay_series(void *ctx, uint64_t ref, const sm_labels *ls) {
    replay_ctx *c = ctx;
    sm_error err = {0};
    if (head_create_with_ref(c->db->h, ref, ls, &err) == 0) {
        head_series_set_logged(c->db->h, ref);
        c->series++;
    } else {
        c->failed++;
    }
    return 0;
}

static int replay_samples(void *ctx, const wal_sample *s, size_t n) {
    replay_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        if (s[i].t < c->db->floor) continue; /* already in a block */
        int rc = head_append(c->db->h, s[i].ref, s[i].t, s[i].v, false);
        if (rc == SM_ENOTFOUND) c->unknown++;
        else if (rc < 0) return rc;
        else c->samples++;
    }
    return 0;
}

static int replay_rec(void *ctx, uint8_t type, const uint8_t *p, size_t len) {
    replay_ctx *c = ctx;
    int rc = 0;
    if (type == WAL_REC_SERIES) {
        sm_arena_reset(c->a);
        rc = wal_dec_series(p, len, c->a, replay_series, c);
    } else if (type == WAL_REC_SAMPLES) {
        rc = wal_dec_samples(p, len, replay_samples, c);
    }
    /* A record that passed its CRC but does not decode is a bug, not a torn
     * write: count it and go on rather than refuse to start. */
    if (rc == SM_ECORRUPT) {
        c->failed++;
        rc = 0;
    }
    return rc;
}

/* ---- open / close ---- */

static void *bg_main(void *arg);

int tsdb_open(const char *dir, const tsdb_opts *o, tsdb **out, sm_error *err) {
    tsdb_opts def;
    if (!o) {
        tsdb_opts_default(&def);
        o = &def;
    }
    int rc = sm_fs_mkdir_p(dir);
    if (rc) return SM_ERR_SYS(err, SM_EIO, -rc, "cannot create data directory %s", dir);
    tsdb *db = sm_calloc(1, sizeof *db);
    if (!db) return SM_ERR(err, SM_ENOMEM, "out of memory opening %s", dir);
    db->o = *o;
    if (db->o.block_range_ms <= 0) db->o.block_range_ms = 2 * HOUR_MS;
    if (db->o.chunk_max_samples == 0) db->o.chunk_max_samples = 120;
    if (db->o.background_interval_ms <= 0) db->o.background_interval_ms = BG_PERIOD_MS;
    db->lock_fd = -1;
    db->floor = SM_MS_MIN;
    pthread_rwlock_init(&db->cut_lock, NULL);
    pthread_mutex_init(&db->cut_mu, NULL);
    pthread_mutex_init(&db->bg_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    char path[4096];
    db->dir = sm_strdup(dir);
    if (!db->dir) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory opening %s", dir);
        goto fail;
    }

    /* One process per data directory. */
    snprintf(path, sizeof path, "%s/lock", dir);
    db->lock_fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (db->lock_fd < 0 || flock(db->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = SM_ERR_SYS(err, SM_EIO, errno, "data directory %s is in use by another process", dir);
        goto fail;
    }
    if ((rc = sm_uring_new(64, &db->ring)) != 0) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory opening %s", dir);
        goto fail;
    }
    blockset_opts bo = {db->o.block_range_ms, db->o.retention_ms, db->o.retention_bytes};
    if ((rc = blockset_open(dir, &bo, &db->bs, err)) != 0) goto fail;
    blockset_stats bst;
    blockset_get_stats(db->bs, &bst);
    if (bst.blocks) db->floor = bst.maxt; /* the newest block's (exclusive) end */

    head_opts ho = {db->o.ooo_window_ms, db->o.chunk_max_samples, db->o.block_range_ms,
                    db->o.max_series};
    if ((rc = head_new(&ho, &db->h)) != 0) {
        rc = SM_ERR(err, rc, "cannot create the head");
        goto fail;
    }
    wal_opts wo;
    wal_opts_default(&wo);
    wo.sync = db->o.wal_sync;
    if (db->o.wal_sync_interval_ms > 0) wo.interval_ms = db->o.wal_sync_interval_ms;
    if (db->o.wal_segment_bytes) wo.segment_bytes = db->o.wal_segment_bytes;
    if (db->o.wal_max_pending_bytes) wo.max_pending_bytes = db->o.wal_max_pending_bytes;
    snprintf(path, sizeof path, "%s/wal", dir);
    if ((rc = wal_open(path, &wo, &db->w, err)) != 0) goto fail;
    replay_ctx rc_ctx = {db, sm_arena_new(0, 0), 0, 0, 0, 0};
    if (!rc_ctx.a) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory replaying the WAL");
        goto fail;
    }
    uint64_t t0 = sm_mono_ns();
    rc = wal_replay(db->w, replay_rec, &rc_ctx, err);
    sm_arena_free(rc_ctx.a);
    if (rc) goto fail;
    sm_log(SM_LOG_INFO, "tsdb", "WAL replayed",
           "series=%llu samples=%llu unknown_refs=%llu undecodable=%llu blocks=%llu duration_ms=%llu",
           (unsigned long long)rc_ctx.series, (unsigned long long)rc_ctx.samples,
           (unsigned long long)rc_ctx.unknown, (unsigned long long)rc_ctx.failed,
           (unsigned long long)bst.blocks, (unsigned long long)((sm_mono_ns() - t0) / 1000000));

    if (db->o.background) {
        if (pthread_create(&db->bg, NULL, bg_main, db) != 0) {
            rc = SM_ERR(err, SM_ENOMEM, "cannot start the background thread");
            goto fail;
        }
        db->bg_running = true;
    }
    *out = db;
    return 0;
fail:
    wal_close(db->w, NULL);
    head_free(db->h);
    blockset_close(db->bs);
    sm_uring_free(db->ring);
    if (db->lock_fd >= 0) close(db->lock_fd);
    pthread_rwlock_destroy(&db->cut_lock);
    pthread_mutex_destroy(&db->cut_mu);
    pthread_mutex_destroy(&db->bg_mu);
    pthread_cond_destroy(&db->bg_cv);
    sm_free(db->dir);
    sm_free(db);
    return rc;
}

int tsdb_close(tsdb *db, sm_error *err) {
    if (!db) return 0;
    if (db->bg_running) {
        pthread_mutex_lock(&db->bg_mu);
        db->closing = true;
        pthread_cond_signal(&db->bg_cv);
        pthread_mutex_unlock(&db->bg_mu);
        pthread_join(db->bg, NULL);
    }
    int rc = wal_close(db->w, err);
    head_free(db->h);
    blockset_close(db->bs);
    sm_uring_free(db->ring);
    close(db->lock_fd);
    pthread_rwlock_destroy(&db->cut_lock);
    pthread_mutex_destroy(&db->cut_mu);
    pthread_mutex_destroy(&db->bg_mu);
    pthread_cond_destroy(&db->bg_cv);
    sm_free(db->dir);
    sm_free(db);
    return rc;
}

/* ---- append ---- */

/* Keep the first rejection's details. */
static void first_reject(sm_error *err, int *first, int code, size_t index, const char *fmt,
                         const sm_labels *ls, sm_ms_t t) {
    if (*first) return;
    *first = code;
    char lb[512];
    sm_labels_format(ls, lb, sizeof lb);
    SM_ERR(err, code, fmt, lb, (long long)t);
    if (err) err->index = (int64_t)index;
}

/* Count series i, which the head did not have and which was left out of
 * the batch, in r, and describe it in err if it is the batch's first
 * rejection.  Its labels are checked again to tell why: invalid labels, or
 * else the series limit (a rare path, so the check is not remembered). */
static void skip_new(const tsdb_series_in *s, size_t i, tsdb_append_result *r, int *first, sm_error *err) {
    sm_error lerr = {0};
    if (sm_labels_check(&s->labels, true, &lerr) != 0) {
        r->rejected_invalid += s->n;
        if (!*first) {
            *first = SM_EINVAL;
            SM_ERR(err, SM_EINVAL, "series %zu: %s", i, lerr.msg);
            if (err) err->index = (int64_t)i;
        }
        return;
    }
    r->rejected_limit += s->n;
    first_reject(err, first, SM_ELIMIT, i, "series limit reached: %s not created (first sample at %lld)",
                 &s->labels, s->n ? s->samples[0].t : 0);
}

/* The scratch arrays of one append, in one allocation. */
typedef struct append_scratch {
    const sm_labels **ls; /* [n] */
    uint64_t *hash;       /* [n] the callers' hashes (0: not given) */
    uint64_t *refs;       /* [n] */
    const sm_labels **nls; /* [n] the new series' labels, */
    uint64_t *nref;        /* [n] their refs */
    size_t *newi;          /* [n] and their indexes in the batch */
    head_run *runs;       /* [n] */
    wal_run *wruns;       /* [n] */
    sm_ms_t *ts;          /* [total] accepted samples, series after series */
    double *vs;           /* [total] */
    bool *logged;         /* [n] */
    bool *created;        /* [n] */
    void *mem;
} append_scratch;

static int scratch_init(append_scratch *x, size_t n, size_t total) {
    n = n ? n : 1;
    total = total ? total : 1;
    size_t per = sizeof(*x->ls) + sizeof(*x->hash) + sizeof(*x->refs) + sizeof(*x->runs) + sizeof(*x->wruns) + sizeof(*x->nls) +
                 sizeof(*x->nref) + sizeof(*x->newi) + sizeof(*x->logged) + sizeof(*x->created);
    if (n > SIZE_MAX / 2 / per || total > SIZE_MAX / 2 / 16) return SM_ENOMEM;
    char *m = sm_malloc(n * per + total * (sizeof(*x->ts) + sizeof(*x->vs)));
    if (!m) return SM_ENOMEM;
    x->mem = m;
    /* Largest alignment first; bools last. */
    x->runs = (head_run *)m;
    m += n * sizeof *x->runs;
    x->wruns = (wal_run *)m;
    m += n * sizeof *x->wruns;
    x->ls = (const sm_labels **)m;
    m += n * sizeof *x->ls;
    x->hash = (uint64_t *)m;
    m += n * sizeof *x->hash;
    x->refs = (uint64_t *)m;
    m += n * sizeof *x->refs;
    x->nls = (const sm_labels **)m;
    m += n * sizeof *x->nls;
    x->nref = (uint64_t *)m;
    m += n * sizeof *x->nref;
    x->newi = (size_t *)m;
    m += n * sizeof *x->newi;
    x->ts = (sm_ms_t *)m;
    m += total * sizeof *x->ts;
    x->vs = (double *)m;
    m += total * sizeof *x->vs;
    x->logged = (bool *)m;
    m += n * sizeof *x->logged;
    x->created = (bool *)m;
    return 0;
}

/* Append path, per batch: one head lookup call for every series (one index
 * lock), label checks and creation only for series the head lacks, the
 * window check per sample, one WAL append for the new series and the
 * accepted samples, one head call that stores every run (one index lock,
 * one series lock per series), then the wait for durability outside the
 * cut lock. */
int tsdb_append(tsdb *db, const tsdb_series_in *series, size_t n, tsdb_append_result *res,
                sm_error *err) {
    uint64_t lsn = 0;
    int rc = tsdb_append_begin(db, series, n, NULL, res, &lsn, err);
    /* (lsn is 0 after a hard error; a partial rejection's message stays
     * in err unless the wait fails.) */
    int wrc = tsdb_append_wait(db, lsn, err);
    return wrc ? wrc : rc;
}

int tsdb_append_wait(tsdb *db, uint64_t lsn, sm_error *err) { return lsn ? wal_wait(db->w, lsn, err) : 0; }

int tsdb_append_begin(tsdb *db, const tsdb_series_in *series, size_t n, const tsdb_series_hint *hints,
                      tsdb_append_result *res, uint64_t *lsn_out, sm_error *err) {
    *lsn_out = 0;
    tsdb_append_result r = {0};
    int first = 0, rc = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += series[i].n;
    append_scratch x;
    sm_buf sb = SM_BUF_INIT, xb = SM_BUF_INIT;
    if (scratch_init(&x, n, total)) {
        if (res) *res = r;
        return SM_ERR(err, SM_ENOMEM, "out of memory appending %zu samples", total);
    }
    for (size_t i = 0; i < n; i++) {
        x.ls[i] = &series[i].labels;
        x.hash[i] = hints ? hints[i].hash : 0;
        x.refs[i] = hints ? hints[i].ref : 0;
    }
    pthread_rwlock_rdlock(&db->cut_lock);
    head_lookup_many(db->h, x.ls, x.hash, n, x.refs, x.logged);
    /* Series the head lacks: labels checked, the valid ones created under
     * one index lock (a new client sends thousands at once); the left-out
     * ones are counted in batch order below. */
    size_t nnew = 0;
    for (size_t i = 0; i < n; i++) {
        if (x.refs[i]) continue;
        if (sm_labels_check(x.ls[i], true, NULL) != 0) continue;
        x.nls[nnew] = x.ls[i];
        x.newi[nnew++] = i;
    }
    if (nnew && head_get_or_create_many(db->h, x.nls, nnew, x.nref, x.created)) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory creating series");
        goto unlock;
    }
    for (size_t j = 0; j < nnew; j++) {
        size_t i = x.newi[j];
        if (!x.nref[j]) continue; /* past the series limit */
        x.refs[i] = x.nref[j];
        r.series_created += x.created[j];
        /* Found instead when another append created it meanwhile. */
        x.logged[i] = !x.created[j] && head_series_logged(db->h, x.refs[i]);
    }
    size_t nws = 0, nruns = 0;
    for (size_t i = 0; i < n; i++) {
        const tsdb_series_in *s = &series[i];
        if (!x.refs[i]) {
            skip_new(s, i, &r, &first, err);
            continue;
        }
        size_t k0 = nws;
        for (uint32_t k = 0; k < s->n; k++) {
            sm_ms_t t = s->samples[k].t;
            if (t < db->floor || head_check_window(db->h, t) != 0) {
                r.rejected_too_old++;
                first_reject(err, &first, SM_ERANGE, i,
                             "sample of %s at %lld is too old: outside the out-of-order window",
                             &s->labels, t);
                continue;
            }
            x.ts[nws] = t;
            x.vs[nws++] = s->samples[k].v;
        }
        if (nws == k0) continue;
        bool log = !x.logged[i];
        if (log && wal_enc_series(&sb, x.refs[i], &s->labels)) {
            rc = SM_ERR(err, SM_ENOMEM, "out of memory logging series");
            goto unlock;
        }
        uint32_t cnt = (uint32_t)(nws - k0);
        x.runs[nruns] = (head_run){x.refs[i], x.ts + k0, x.vs + k0, cnt, log};
        x.wruns[nruns++] = (wal_run){x.refs[i], x.ts + k0, x.vs + k0, cnt};
    }
    uint64_t lsn = 0;
    if (nws) {
        if (wal_enc_sample_runs(&xb, x.wruns, nruns)) {
            rc = SM_ERR(err, SM_ENOMEM, "out of memory logging samples");
            goto unlock;
        }
        wal_rec recs[2];
        size_t nr = 0;
        if (sb.len) recs[nr++] = (wal_rec){WAL_REC_SERIES, sb.p, sb.len};
        recs[nr++] = (wal_rec){WAL_REC_SAMPLES, xb.p, xb.len};
        rc = wal_append(db->w, recs, nr, &lsn, err);
        if (rc) goto unlock;
        head_run_result hr;
        int arc = head_append_runs(db->h, x.runs, nruns, &hr);
        r.accepted += hr.stored;
        r.duplicates += hr.duplicates;
        r.replaced += hr.replaced;
        if (arc < 0) {
            /* Logged but not applied: out of memory.  The WAL has it, so a
             * restart recovers it; report the batch as failed. */
            rc = SM_ERR(err, arc, "cannot store a logged sample");
            goto unlock;
        }
    }
    pthread_rwlock_unlock(&db->cut_lock);
    if (nws) *lsn_out = lsn;
    rc = first;
    goto out;
unlock:
    pthread_rwlock_unlock(&db->cut_lock);
out:
    if (res) *res = r;
    sm_buf_fini(&sb);
    sm_buf_fini(&xb);
    sm_free(x.mem);
    return rc;
}

void tsdb_lookup(tsdb *db, const tsdb_series_in *series, size_t n, tsdb_series_hint *hints) {
    const sm_labels **ls = sm_malloc((n ? n : 1) * (sizeof *ls + 2 * sizeof(uint64_t) + sizeof(bool)));
    if (!ls) { /* no hints: tsdb_append_begin looks every series up */
        for (size_t i = 0; i < n; i++) hints[i].ref = 0;
        return;
    }
    uint64_t *hash = (uint64_t *)(ls + n), *refs = hash + n;
    bool *logged = (bool *)(refs + n);
    for (size_t i = 0; i < n; i++) {
        ls[i] = &series[i].labels;
        if (!hints[i].hash) hints[i].hash = sm_labels_hash(ls[i]);
        hash[i] = hints[i].hash;
        refs[i] = hints[i].ref;
    }
    head_lookup_many(db->h, ls, hash, n, refs, logged);
    for (size_t i = 0; i < n; i++) hints[i].ref = refs[i];
    sm_free(ls);
}

/* ---- select ---- */

struct tsdb_series_set {
    sm_arena *a;
    tsdb_sel sel;
    block **blocks;
    size_t nblocks;
    sm_ms_t mint, maxt;
};

static bool any_nonempty(const sm_matcher *ms, size_t nms) {
    for (size_t i = 0; i < nms; i++)
        if (!sm_matcher_matches_empty(&ms[i])) return true;
    return false;
}

int tsdb_select(tsdb *db, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                const tsdb_select_limits *lim, tsdb_series_set **out, sm_error *err) {
    if (!any_nonempty(ms, nms))
        return SM_ERR(err, SM_EINVAL, "vector selector must contain at least one non-empty matcher");
    if (mint > maxt) return SM_ERR(err, SM_EINVAL, "start of the range is after its end");
    tsdb_series_set *s = sm_calloc(1, sizeof *s);
    if (!s || !(s->a = sm_arena_new(0, 0))) {
        sm_free(s);
        return SM_ERR(err, SM_ENOMEM, "out of memory selecting series");
    }
    s->mint = mint;
    s->maxt = maxt;
    int rc = blockset_acquire(db->bs, mint, maxt, &s->blocks, &s->nblocks);
    if (rc) {
        rc = SM_ERR(err, rc, "out of memory selecting series");
        goto fail;
    }
    tsdb_sel *sels = sm_arena_calloc(s->a, s->nblocks + 1, sizeof *sels);
    if (!sels) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory selecting series");
        goto fail;
    }
    for (size_t i = 0; i < s->nblocks; i++) {
        rc = block_select(s->blocks[i], ms, nms, mint, maxt, (uint32_t)i, s->a, &sels[i], err);
        if (rc) goto fail;
    }
    rc = head_select(db->h, ms, nms, mint, maxt, HEAD_PRIO, s->a, &sels[s->nblocks], err);
    if (rc) goto fail;
    rc = merge_sels(sels, s->nblocks + 1, s->a, &s->sel);
    if (rc) {
        rc = SM_ERR(err, rc, "out of memory merging series");
        goto fail;
    }
    if (lim && lim->max_series && s->sel.n > lim->max_series) {
        rc = SM_ERR(err, SM_ELIMIT, "the selection has %zu series, more than the limit of %llu",
                    s->sel.n, (unsigned long long)lim->max_series);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    tsdb_series_set_free(s);
    return rc;
}

size_t tsdb_series_set_count(const tsdb_series_set *s) { return s->sel.n; }

const sm_labels *tsdb_series_set_labels(const tsdb_series_set *s, size_t i) {
    return &s->sel.v[i].labels;
}

void tsdb_series_set_free(tsdb_series_set *s) {
    if (!s) return;
    blockset_release(s->blocks, s->nblocks);
    sm_arena_free(s->a);
    sm_free(s);
}

int tsdb_series_set_iter(tsdb_series_set *s, size_t i, tsdb_iter **out) {
    if (i >= s->sel.n) return SM_EINVAL;
    merge_iter *it;
    int rc = merge_iter_new(s->a, s->sel.v[i].chunks, s->sel.v[i].nchunks, s->mint, s->maxt, &it);
    if (rc) return rc;
    *out = (tsdb_iter *)it;
    return 0;
}

int tsdb_iter_next(tsdb_iter *it, sm_ms_t *t, double *v) {
    return merge_iter_next((merge_iter *)it, t, v);
}
int tsdb_iter_seek(tsdb_iter *it, sm_ms_t t) { return merge_iter_seek((merge_iter *)it, t); }
int tsdb_iter_next_batch(tsdb_iter *it, sm_ms_t *ts, double *vs, size_t cap) {
    return merge_iter_next_batch((merge_iter *)it, ts, vs, cap);
}

/* ---- label names and values ---- */

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Concatenate lists, sort, drop duplicates. */
static int union_lists(sm_arena *a, const char ***lists, const size_t *ns, size_t nl,
                       const char ***out, size_t *n) {
    size_t total = 0;
    for (size_t i = 0; i < nl; i++) total += ns[i];
    const char **v = sm_arena_alloc(a, (total ? total : 1) * sizeof *v);
    if (!v) return SM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < ns[i]; j++) v[k++] = lists[i][j];
    if (k) qsort(v, k, sizeof *v, cmp_cstr);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0) v[u++] = v[i];
    *out = v;
    *n = u;
    return 0;
}

static int labels_common(tsdb *db, const char *name, const sm_matcher *ms, size_t nms,
                         sm_ms_t mint, sm_ms_t maxt, sm_arena *a, const char ***out, size_t *n,
                         sm_error *err) {
    block **blocks;
    size_t nb;
    int rc = blockset_acquire(db->bs, mint, maxt, &blocks, &nb);
    if (rc) return SM_ERR(err, rc, "out of memory listing labels");
    const char ***lists = sm_arena_alloc(a, (nb + 1) * sizeof *lists);
    size_t *ns = sm_arena_alloc(a, (nb + 1) * sizeof *ns);
    if (!lists || !ns) {
        blockset_release(blocks, nb);
        return SM_ERR(err, SM_ENOMEM, "out of memory listing labels");
    }
    for (size_t i = 0; i < nb && !rc; i++)
        rc = name ? block_label_values(blocks[i], name, ms, nms, a, &lists[i], &ns[i], err)
                  : block_label_names(blocks[i], ms, nms, a, &lists[i], &ns[i], err);
    if (!rc)
        rc = name ? head_label_values(db->h, name, ms, nms, mint, maxt, a, &lists[nb], &ns[nb], err)
                  : head_label_names(db->h, ms, nms, mint, maxt, a, &lists[nb], &ns[nb], err);
    if (!rc) rc = union_lists(a, lists, ns, nb + 1, out, n);
    blockset_release(blocks, nb);
    return rc;
}

int tsdb_label_names(tsdb *db, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                     sm_arena *a, const char ***names, size_t *n, sm_error *err) {
    return labels_common(db, NULL, ms, nms, mint, maxt, a, names, n, err);
}

int tsdb_label_values(tsdb *db, const char *name, const sm_matcher *ms, size_t nms,
                      sm_ms_t mint, sm_ms_t maxt, sm_arena *a, const char ***values, size_t *n,
                      sm_error *err) {
    return labels_common(db, name, ms, nms, mint, maxt, a, values, n, err);
}

/* ---- cutting the head into blocks ---- */

typedef struct cut_win {
    sm_ms_t start;
    block_writer *w;
} cut_win;

typedef struct cut_ctx {
    tsdb *db;
    cut_win *wins;
    size_t nwins;
    sm_ms_t range;
    sm_ms_t first; /* start of the first window */
    sm_error *err;
    sm_arena *a;
} cut_ctx;

static int64_t floor_to(int64_t t, int64_t r) {
    int64_t q = t / r;
    if (t % r != 0 && t < 0) q--;
    return q * r;
}

/* One series from the head: each chunk goes to the block of its range. */
static int cut_series(void *ctx, const sm_labels *ls, const tsdb_chunk_ref *chunks, uint32_t n) {
    cut_ctx *c = ctx;
    uint32_t i = 0;
    while (i < n) {
        sm_ms_t ws = floor_to(chunks[i].mint, c->range);
        uint32_t j = i;
        while (j < n && floor_to(chunks[j].mint, c->range) == ws) j++;
        size_t wi = (size_t)((ws - c->first) / c->range);
        if (wi >= c->nwins) return SM_ERR(c->err, SM_EINVAL, "head exported a chunk outside the cut");
        cut_win *win = &c->wins[wi];
        if (!win->w) {
            int rc = block_writer_new(c->db->dir, c->db->ring, ws, ws + c->range, 1, &win->w, c->err);
            if (rc) return rc;
        }
        int rc = block_writer_add_series(win->w, ls, chunks + i, j - i, c->err);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

static bool keep_series(void *ctx, uint64_t ref) { return head_has_series(((tsdb *)ctx)->h, ref); }

/* Cut the head below maxt (a multiple of the block range, or the head's
 * end for a flush).  Caller holds cut_mu. */
static int cut(tsdb *db, sm_ms_t maxt, sm_error *err) {
    if (db->cut_failed)
        return SM_ERR(err, SM_EIO, "an earlier cut failed to publish its blocks; restart to recover");
    head_stats hs;
    head_get_stats(db->h, &hs);
    /* Raise the floor with no append in flight. */
    pthread_rwlock_wrlock(&db->cut_lock);
    if (maxt > db->floor) db->floor = maxt;
    pthread_rwlock_unlock(&db->cut_lock);
    if (hs.mint == SM_MS_MAX || hs.mint >= maxt) return 0;
    cut_ctx c = {db, NULL, 0, db->o.block_range_ms, floor_to(hs.mint, db->o.block_range_ms), err,
                 NULL};
    c.nwins = (size_t)((maxt - 1 - c.first) / c.range + 1);
    c.wins = sm_calloc(c.nwins, sizeof *c.wins);
    if (!c.wins) return SM_ERR(err, SM_ENOMEM, "out of memory cutting the head");
    sm_ms_t exported_mint;
    int rc = head_export(db->h, maxt, cut_series, &c, &exported_mint, err);
    if (rc) {
        for (size_t i = 0; i < c.nwins; i++)
            if (c.wins[i].w) block_writer_abort(c.wins[i].w);
        sm_free(c.wins);
        return rc;
    }
    /* Publish every block.  Past this point the head has detached the data:
     * a failure must not let a later cut truncate it. */
    size_t made = 0;
    for (size_t i = 0; i < c.nwins; i++) {
        if (!c.wins[i].w) continue;
        block_meta meta;
        if (rc == 0) {
            rc = block_writer_commit(c.wins[i].w, &meta, err);
        } else {
            block_writer_abort(c.wins[i].w);
            continue;
        }
        if (rc) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", db->dir, meta.ulid);
        block *b;
        rc = block_open(path, &b, err);
        if (rc == 0) rc = blockset_add(db->bs, b);
        made++;
    }
    sm_free(c.wins);
    if (rc) {
        db->cut_failed = true;
        sm_log(SM_LOG_ERROR, "tsdb", "cut failed; the WAL keeps the data, no more cuts until restart",
               "error=\"%s\"", err ? err->msg : "");
        return rc;
    }
    /* No append may hold a ref to a series truncate drops. */
    pthread_rwlock_wrlock(&db->cut_lock);
    head_truncate(db->h);
    pthread_rwlock_unlock(&db->cut_lock);
    rc = wal_checkpoint(db->w, maxt, keep_series, db, err);
    if (rc) /* the data is in blocks; the WAL is just longer than needed */
        sm_log(SM_LOG_WARN, "tsdb", "WAL checkpoint failed", "error=\"%s\"", err ? err->msg : "");
    sm_log(SM_LOG_INFO, "tsdb", "head cut", "maxt=%lld blocks=%zu", (long long)maxt, made);
    return 0;
}

int tsdb_flush(tsdb *db, sm_error *err) {
    pthread_mutex_lock(&db->cut_mu);
    head_stats hs;
    head_get_stats(db->h, &hs);
    int rc = 0;
    if (hs.samples > 0 && hs.maxt != SM_MS_MIN) rc = cut(db, hs.maxt + 1, err);
    pthread_mutex_unlock(&db->cut_mu);
    return rc;
}

int tsdb_compact(tsdb *db, sm_error *err) {
    pthread_mutex_lock(&db->cut_mu);
    int rc = 0;
    head_stats hs;
    head_get_stats(db->h, &hs);
    int64_t r = db->o.block_range_ms;
    /* Keep half a range in the head beyond the cut, so out-of-order
     * samples within the window still land in the head. */
    if (hs.samples > 0 && hs.maxt - hs.mint > r + r / 2) {
        sm_ms_t maxt = floor_to(hs.maxt - r / 2, r);
        if (maxt > hs.mint) rc = cut(db, maxt, err);
    }
    while (rc == 0) {
        int made = blockset_compact(db->bs, db->ring, err);
        if (made <= 0) {
            rc = made;
            break;
        }
    }
    if (rc == 0) {
        int del = blockset_apply_retention(db->bs, err);
        if (del < 0) rc = del;
    }
    pthread_mutex_unlock(&db->cut_mu);
    return rc;
}

static void *bg_main(void *arg) {
    tsdb *db = arg;
    pthread_mutex_lock(&db->bg_mu);
    while (!db->closing) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + db->o.background_interval_ms * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&db->bg_cv, &db->bg_mu, &ts);
        if (db->closing) break;
        pthread_mutex_unlock(&db->bg_mu);
        sm_error err = {0};
        if (tsdb_compact(db, &err) < 0)
            sm_log(SM_LOG_ERROR, "tsdb", "background compaction failed", "error=\"%s\"", err.msg);
        pthread_mutex_lock(&db->bg_mu);
    }
    pthread_mutex_unlock(&db->bg_mu);
    return NULL;
}

void tsdb_get_stats(tsdb *db, tsdb_stats *out) {
    memset(out, 0, sizeof *out);
    head_stats hs;
    head_get_stats(db->h, &hs);
    out->head_series = hs.series;
    out->head_chunks = hs.chunks;
    out->head_samples = hs.samples;
    out->head_bytes = hs.bytes;
    out->head_chunk_bytes = hs.chunk_bytes;
    out->head_sealed_samples = hs.sealed_samples;
    out->head_sealed_bytes = hs.sealed_bytes;
    out->head_shared_columns = hs.shared_columns;
    out->head_mint = hs.mint;
    out->head_maxt = hs.maxt;
    blockset_stats bs;
    blockset_get_stats(db->bs, &bs);
    out->blocks = bs.blocks;
    out->block_bytes = bs.bytes;
    out->compactions = bs.compactions;
    out->retention_deletions = bs.retention_deletions;
    wal_get_stats(db->w, &out->wal);
}
