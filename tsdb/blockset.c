/* SPDX-License-Identifier: Apache-2.0
 *
 * blockset.c - the blocks of a data directory: loading, adding, compaction
 * and retention.
 *
 * Compaction plan.  Blocks cut from the head cover block_range_ms each
 * (level 1).  Larger ranges are block_range_ms * 3^k, k = 1, 2, ..., up to
 * a cap (a tenth of the retention, at most 31 days), aligned to multiples of
 * their own size, as Prometheus does.  One round picks the first of:
 *
 *   1. overlapping blocks: any set of blocks whose time ranges overlap (an
 *      out-of-order write cut into a second block of the same range, or a
 *      crash between publishing a compacted block and deleting its
 *      sources) is merged into one block;
 *   2. for the smallest range size first, a range that holds two or more
 *      blocks and is complete: its end is at or before the start of the
 *      newest block's range (no more head data can arrive for it), or its
 *      blocks cover the whole range.
 *
 * The new block is written from the sources' merged series: series present
 * in one source keep their chunks as they are (no re-encoding); series with
 * overlapping chunks are re-encoded from the merged samples, the newer block
 * winning on equal timestamps.  The new block is published, then the sources
 * are marked deleted (their directories go at their last release).  A crash
 * between the two leaves overlapping blocks, which queries merge and the
 * next round compacts.
 *
 * Retention: blocks whose maxt is older than (newest maxt - retention_ms),
 * then the oldest blocks while the total size exceeds retention_bytes (the
 * newest block is always kept).
 */
#include "blockset.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sm_alloc.h"
#include "base/sm_log.h"
#include "chunk.h"
#include "fsutil.h"
#include "merge.h"

#define MAX_RANGE_MS (31LL * 24 * 3600 * 1000)
#define COMPACT_CHUNK_SAMPLES 120

struct blockset {
    char *dir;
    blockset_opts o;
    pthread_mutex_t mu;
    block **v; /* sorted by mint, then ULID */
    size_t n, cap;
    uint64_t compactions, retention_deletions;
};

static int cmp_block(const void *a, const void *b) {
    const block_meta *x = block_get_meta(*(block *const *)a), *y = block_get_meta(*(block *const *)b);
    if (x->mint != y->mint) return x->mint < y->mint ? -1 : 1;
    return strcmp(x->ulid, y->ulid);
}

static int cmp_ulid(const void *a, const void *b) {
    return strcmp(block_get_meta(*(block *const *)a)->ulid, block_get_meta(*(block *const *)b)->ulid);
}

static bool ulid_name(const char *s) {
    if (strlen(s) != BLOCK_ULID_LEN) return false;
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *p)) return false;
    return true;
}

static int push(blockset *s, block *b) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        block **nv = sm_realloc(s->v, nc * sizeof *nv);
        if (!nv) return SM_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = b;
    return 0;
}

int blockset_open(const char *data_dir, const blockset_opts *o, blockset **out, sm_error *err) {
    int rc = sm_fs_mkdir_p(data_dir);
    if (rc) return SM_ERR_SYS(err, SM_EIO, -rc, "cannot create data directory %s", data_dir);
    blockset *s = sm_calloc(1, sizeof *s);
    if (!s || !(s->dir = sm_strdup(data_dir))) {
        sm_free(s);
        return SM_ERR(err, SM_ENOMEM, "out of memory opening blocks");
    }
    s->o = *o;
    if (s->o.block_range_ms <= 0) s->o.block_range_ms = 2 * 3600 * 1000;
    pthread_mutex_init(&s->mu, NULL);
    char **names;
    size_t nn;
    rc = sm_fs_list(data_dir, &names, &nn);
    if (rc) {
        blockset_close(s);
        return SM_ERR_SYS(err, SM_EIO, -rc, "cannot list data directory %s", data_dir);
    }
    char path[4096];
    for (size_t i = 0; i < nn; i++) {
        size_t len = strlen(names[i]);
        snprintf(path, sizeof path, "%s/%s", data_dir, names[i]);
        if (len == BLOCK_ULID_LEN + 4 && !strcmp(names[i] + BLOCK_ULID_LEN, ".tmp")) {
            /* A block whose writer did not finish: never published. */
            sm_log(SM_LOG_WARN, "blocks", "removing half-written block", "dir=%s", path);
            sm_fs_remove_all(path);
            continue;
        }
        if (!ulid_name(names[i])) continue;
        block *b;
        sm_error berr = {0};
        rc = block_open(path, &b, &berr);
        if (rc) {
            /* Leave it on disk for inspection; it is not served. */
            sm_log(SM_LOG_ERROR, "blocks", "skipping unreadable block", "dir=%s error=\"%s\"", path,
                   berr.msg);
            continue;
        }
        if (push(s, b)) {
            block_release(b);
            sm_fs_names_free(names, nn);
            blockset_close(s);
            return SM_ERR(err, SM_ENOMEM, "out of memory opening blocks");
        }
    }
    sm_fs_names_free(names, nn);
    if (s->n) qsort(s->v, s->n, sizeof *s->v, cmp_block);
    *out = s;
    return 0;
}

void blockset_close(blockset *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) block_release(s->v[i]);
    sm_free(s->v);
    sm_free(s->dir);
    pthread_mutex_destroy(&s->mu);
    sm_free(s);
}

int blockset_add(blockset *s, block *b) {
    pthread_mutex_lock(&s->mu);
    int rc = push(s, b);
    if (!rc) qsort(s->v, s->n, sizeof *s->v, cmp_block);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int blockset_acquire(blockset *s, sm_ms_t mint, sm_ms_t maxt, block ***blocks, size_t *n) {
    pthread_mutex_lock(&s->mu);
    block **v = sm_malloc((s->n ? s->n : 1) * sizeof *v);
    if (!v) {
        pthread_mutex_unlock(&s->mu);
        return SM_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const block_meta *m = block_get_meta(s->v[i]);
        if (m->mint <= maxt && m->maxt > mint) {
            block_acquire(s->v[i]);
            v[k++] = s->v[i];
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (k) qsort(v, k, sizeof *v, cmp_ulid);
    *blocks = v;
    *n = k;
    return 0;
}

void blockset_release(block **blocks, size_t n) {
    if (!blocks) return;
    for (size_t i = 0; i < n; i++) block_release(blocks[i]);
    sm_free(blocks);
}

/* ---- compaction ---- */

static int64_t max_range(const blockset *s) {
    int64_t cap = MAX_RANGE_MS;
    if (s->o.retention_ms > 0 && s->o.retention_ms / 10 < cap) cap = s->o.retention_ms / 10;
    return cap;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Choose the blocks of the next compaction (under the lock): indices into
 * s->v, in *pick; returns how many (0: nothing to do). */
static size_t plan(blockset *s, size_t *pick) {
    if (s->n < 2) return 0;
    /* 1. Overlaps: s->v is sorted by mint, so a run of blocks each starting
     * before the running maximum of maxt overlaps. */
    for (size_t i = 0; i + 1 < s->n; i++) {
        sm_ms_t end = block_get_meta(s->v[i])->maxt;
        size_t j = i + 1;
        while (j < s->n && block_get_meta(s->v[j])->mint < end) {
            if (block_get_meta(s->v[j])->maxt > end) end = block_get_meta(s->v[j])->maxt;
            j++;
        }
        if (j - i >= 2) {
            for (size_t k = i; k < j; k++) pick[k - i] = k;
            return j - i;
        }
    }
    /* 2. Complete ranges, smallest size first. */
    sm_ms_t newest_mint = block_get_meta(s->v[s->n - 1])->mint;
    for (int64_t r = s->o.block_range_ms * 3; r <= max_range(s); r *= 3) {
        size_t i = 0;
        while (i < s->n) {
            const block_meta *m = block_get_meta(s->v[i]);
            int64_t start = floor_div(m->mint, r) * r;
            size_t j = i, np = 0;
            int64_t covered = 0;
            while (j < s->n) {
                const block_meta *mj = block_get_meta(s->v[j]);
                if (mj->mint >= start + r) break;
                if (mj->maxt <= start + r && mj->maxt - mj->mint < r) {
                    pick[np++] = j;
                    covered += mj->maxt - mj->mint;
                }
                j++;
            }
            bool complete = start + r <= floor_div(newest_mint, s->o.block_range_ms) * s->o.block_range_ms ||
                            covered >= r;
            if (np >= 2 && complete) return np;
            i = j > i ? j : i + 1;
        }
    }
    return 0;
}

typedef struct wctx {
    block_writer *w;
    sm_arena *scratch;
    sm_ms_t mint, maxt;
} wctx;

/* Re-encode a series whose chunks overlap, from its merged samples. */
static int write_merged(wctx *c, const tsdb_sel_series *se, sm_error *err) {
    sm_arena_reset(c->scratch);
    merge_iter *it;
    int rc = merge_iter_new(c->scratch, se->chunks, se->nchunks, c->mint, c->maxt - 1, &it);
    if (rc) return SM_ERR(err, rc, "merging series for compaction");
    size_t cap_refs = 16, nrefs = 0;
    tsdb_chunk_ref *refs = sm_arena_alloc(c->scratch, cap_refs * sizeof *refs);
    sm_ms_t ts[COMPACT_CHUNK_SAMPLES];
    double vs[COMPACT_CHUNK_SAMPLES];
    sm_buf b = SM_BUF_INIT;
    for (;;) {
        int got = merge_iter_next_batch(it, ts, vs, COMPACT_CHUNK_SAMPLES);
        if (got < 0) {
            sm_buf_fini(&b);
            return SM_ERR(err, got, "reading a source block's chunk during compaction");
        }
        if (got == 0) break;
        sm_buf_clear(&b);
        rc = chunk_encode(ts, vs, (size_t)got, &b);
        uint8_t *copy = rc ? NULL : sm_arena_alloc(c->scratch, b.len);
        if (nrefs == cap_refs) {
            tsdb_chunk_ref *nr = sm_arena_alloc(c->scratch, 2 * cap_refs * sizeof *nr);
            if (nr) memcpy(nr, refs, nrefs * sizeof *nr);
            refs = nr;
            cap_refs *= 2;
        }
        if (!copy || !refs) {
            sm_buf_fini(&b);
            return SM_ERR(err, SM_ENOMEM, "out of memory during compaction");
        }
        memcpy(copy, b.p, b.len);
        refs[nrefs++] = (tsdb_chunk_ref){
            .mint = ts[0], .maxt = ts[got - 1], .data = copy, .len = (uint32_t)b.len, .prio = 0};
    }
    sm_buf_fini(&b);
    return block_writer_add_series(c->w, &se->labels, refs, (uint32_t)nrefs, err);
}

static bool chunks_overlap(const tsdb_sel_series *se) {
    for (uint32_t i = 1; i < se->nchunks; i++)
        if (se->chunks[i].mint <= se->chunks[i - 1].maxt) return true;
    return false;
}

static int compact_blocks(blockset *s, sm_uring *ring, block **src, size_t n, sm_error *err) {
    sm_ms_t mint = SM_MS_MAX, maxt = SM_MS_MIN;
    uint32_t level = 0;
    for (size_t i = 0; i < n; i++) {
        const block_meta *m = block_get_meta(src[i]);
        if (m->mint < mint) mint = m->mint;
        if (m->maxt > maxt) maxt = m->maxt;
        if (m->level > level) level = m->level;
    }
    sm_arena *a = sm_arena_new(0, 0), *scratch = sm_arena_new(0, 0);
    tsdb_sel *sels = sm_calloc(n, sizeof *sels);
    int rc = 0;
    block_writer *w = NULL;
    if (!a || !scratch || !sels) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory during compaction");
        goto done;
    }
    /* Oldest ULID first: src is in that order, so prio = index. */
    for (size_t i = 0; i < n; i++) {
        rc = block_select(src[i], NULL, 0, mint, maxt - 1, (uint32_t)i, a, &sels[i], err);
        if (rc) goto done;
    }
    tsdb_sel all;
    rc = merge_sels(sels, n, a, &all);
    if (rc) {
        rc = SM_ERR(err, rc, "merging block indexes during compaction");
        goto done;
    }
    rc = block_writer_new(s->dir, ring, mint, maxt, level + 1, &w, err);
    if (rc) goto done;
    wctx c = {w, scratch, mint, maxt};
    for (size_t i = 0; i < all.n && !rc; i++) {
        const tsdb_sel_series *se = &all.v[i];
        if (chunks_overlap(se)) rc = write_merged(&c, se, err);
        else rc = block_writer_add_series(w, &se->labels, se->chunks, se->nchunks, err);
    }
    if (rc) {
        block_writer_abort(w);
        goto done;
    }
    block_meta meta;
    rc = block_writer_commit(w, &meta, err);
    if (rc) goto done;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->dir, meta.ulid);
    block *nb;
    rc = block_open(path, &nb, err);
    if (rc) goto done;
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        bool gone = false;
        for (size_t j = 0; j < n && !gone; j++) gone = s->v[i] == src[j];
        if (gone) {
            block_mark_deleted(s->v[i]);
            block_release(s->v[i]); /* the set's reference */
        } else {
            s->v[k++] = s->v[i];
        }
    }
    s->n = k;
    push(s, nb); /* cannot fail: it replaces n >= 2 blocks just removed */
    qsort(s->v, s->n, sizeof *s->v, cmp_block);
    s->compactions++;
    pthread_mutex_unlock(&s->mu);
    sm_log(SM_LOG_INFO, "blocks", "compacted", "sources=%zu ulid=%s mint=%lld maxt=%lld series=%llu",
           n, meta.ulid, (long long)mint, (long long)maxt, (unsigned long long)meta.nseries);
done:
    sm_free(sels);
    sm_arena_free(a);
    sm_arena_free(scratch);
    return rc;
}

int blockset_compact(blockset *s, sm_uring *ring, sm_error *err) {
    pthread_mutex_lock(&s->mu);
    size_t *pick = sm_malloc((s->n ? s->n : 1) * sizeof *pick);
    if (!pick) {
        pthread_mutex_unlock(&s->mu);
        return SM_ERR(err, SM_ENOMEM, "out of memory planning compaction");
    }
    size_t np = plan(s, pick);
    block **src = np ? sm_malloc(np * sizeof *src) : NULL;
    for (size_t i = 0; i < np && src; i++) {
        src[i] = s->v[pick[i]];
        block_acquire(src[i]);
    }
    pthread_mutex_unlock(&s->mu);
    sm_free(pick);
    if (np == 0) return 0;
    if (!src) return SM_ERR(err, SM_ENOMEM, "out of memory planning compaction");
    qsort(src, np, sizeof *src, cmp_ulid);
    int rc = compact_blocks(s, ring, src, np, err);
    blockset_release(src, np);
    return rc < 0 ? rc : 1;
}

int blockset_apply_retention(blockset *s, sm_error *err) {
    (void)err;
    pthread_mutex_lock(&s->mu);
    int deleted = 0;
    if (s->n == 0) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    sm_ms_t newest = SM_MS_MIN;
    uint64_t total = 0;
    for (size_t i = 0; i < s->n; i++) {
        const block_meta *m = block_get_meta(s->v[i]);
        if (m->maxt > newest) newest = m->maxt;
        total += m->bytes;
    }
    /* s->v is oldest first (by mint). */
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const block_meta *m = block_get_meta(s->v[i]);
        bool too_old = s->o.retention_ms > 0 && m->maxt < newest - s->o.retention_ms;
        bool too_big = s->o.retention_bytes > 0 && total > s->o.retention_bytes && i + 1 < s->n;
        if (too_old || too_big) {
            sm_log(SM_LOG_INFO, "blocks", "retention: deleting block", "ulid=%s reason=%s", m->ulid,
                   too_old ? "age" : "size");
            total -= m->bytes;
            block_mark_deleted(s->v[i]);
            block_release(s->v[i]);
            deleted++;
        } else {
            s->v[k++] = s->v[i];
        }
    }
    s->n = k;
    s->retention_deletions += (uint64_t)deleted;
    pthread_mutex_unlock(&s->mu);
    return deleted;
}

void blockset_get_stats(blockset *s, blockset_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    out->blocks = s->n;
    for (size_t i = 0; i < s->n; i++) {
        const block_meta *m = block_get_meta(s->v[i]);
        out->bytes += m->bytes;
        if (i == 0 || m->mint < out->mint) out->mint = m->mint;
        if (i == 0 || m->maxt > out->maxt) out->maxt = m->maxt;
    }
    out->compactions = s->compactions;
    out->retention_deletions = s->retention_deletions;
    pthread_mutex_unlock(&s->mu);
}
