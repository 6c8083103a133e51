/* SPDX-License-Identifier: Apache-2.0
 *
 * merge.c - joining selections from several sources and iterating a series'
 * samples across possibly overlapping chunks (see merge.h).
 *
 * How the sample iterator works.  A series' chunk list is sorted by mint.
 * It is cut into *clusters*: maximal runs of consecutive chunks whose time
 * ranges overlap (chunk k joins the cluster while its mint <= the largest
 * maxt seen in the cluster so far).  Chunks in different clusters cannot
 * hold the same timestamp, so clusters are read one after another.
 *
 *   - A cluster of one chunk (the normal case) is decoded straight into the
 *     iterator's buffer.
 *   - A cluster of several chunks (out-of-order data written to a later
 *     block, or a crash between compaction and deletion) is decoded chunk by
 *     chunk and merged by time; on equal timestamps the chunk with the
 *     higher prio wins, and between equal prios the later chunk in the list.
 *
 * Invariants:
 *   1. buf_ts[pos..n) are the not-yet-returned samples of the current
 *      cluster, strictly increasing, all within [mint, maxt].
 *   2. next_chunk is the index of the first chunk not yet in any cluster.
 *   3. Buffers only grow; they come from the caller's arena, so nothing is
 *      freed here.
 *
 * Limits: memory is the size of the largest cluster's samples; a cluster is
 * normally one chunk (at most CHUNK_MAX_SAMPLES samples).
 */
#include "merge.h"

#include <stdbool.h>
#include <string.h>

#include "base/sm_error.h"
#include "chunk.h"

/* ---- Selections ---- */

static void sort_chunks(tsdb_chunk_ref *c, uint32_t n) {
    /* Stable insertion sort by mint: lists are short and mostly sorted. */
    for (uint32_t i = 1; i < n; i++) {
        tsdb_chunk_ref x = c[i];
        uint32_t j = i;
        while (j > 0 && c[j - 1].mint > x.mint) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

int merge_sels(const tsdb_sel *sels, size_t n, sm_arena *a, tsdb_sel *out) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += sels[i].n;
    if (n == 1) {
        *out = sels[0];
        return 0;
    }
    tsdb_sel_series *v = sm_arena_alloc(a, sizeof *v * (total ? total : 1));
    size_t *pos = sm_arena_calloc(a, n ? n : 1, sizeof *pos);
    size_t *eq = sm_arena_alloc(a, sizeof *eq * (n ? n : 1));
    if (!v || !pos || !eq) return SM_ENOMEM;
    size_t o = 0;
    for (;;) {
        /* Find the smallest label set among the sources' heads. */
        const sm_labels *min = NULL;
        size_t neq = 0;
        for (size_t i = 0; i < n; i++) {
            if (pos[i] >= sels[i].n) continue;
            const sm_labels *l = &sels[i].v[pos[i]].labels;
            int c = min ? sm_labels_cmp(l, min) : -1;
            if (c < 0) {
                min = l;
                neq = 0;
                eq[neq++] = i;
            } else if (c == 0) {
                eq[neq++] = i;
            }
        }
        if (!min) break;
        if (neq == 1) {
            v[o++] = sels[eq[0]].v[pos[eq[0]]++];
            continue;
        }
        uint32_t nchunks = 0;
        for (size_t k = 0; k < neq; k++) nchunks += sels[eq[k]].v[pos[eq[k]]].nchunks;
        tsdb_chunk_ref *c = sm_arena_alloc(a, sizeof *c * (nchunks ? nchunks : 1));
        if (!c) return SM_ENOMEM;
        uint32_t m = 0;
        for (size_t k = 0; k < neq; k++) {
            const tsdb_sel_series *s = &sels[eq[k]].v[pos[eq[k]]++];
            memcpy(c + m, s->chunks, sizeof *c * s->nchunks);
            m += s->nchunks;
        }
        sort_chunks(c, m);
        v[o].labels = *min;
        v[o].chunks = c;
        v[o].nchunks = m;
        o++;
    }
    out->v = v;
    out->n = o;
    return 0;
}

/* ---- Sample iterator ---- */

struct merge_iter {
    sm_arena *a;
    const tsdb_chunk_ref *chunks;
    uint32_t nchunks;
    uint32_t next_chunk; /* invariant 2 */
    sm_ms_t mint, maxt;
    sm_ms_t *buf_ts;     /* invariant 1 */
    double *buf_vs;
    size_t cap;
    size_t n, pos;
    /* scratch for multi-chunk clusters */
    sm_ms_t *tmp_ts;
    double *tmp_vs;
    size_t tmp_cap;
    int err; /* sticky error */
};

int merge_iter_new(sm_arena *a, const tsdb_chunk_ref *chunks, uint32_t n, sm_ms_t mint,
                   sm_ms_t maxt, merge_iter **out) {
    merge_iter *it = sm_arena_calloc(a, 1, sizeof *it);
    if (!it) return SM_ENOMEM;
    it->a = a;
    it->chunks = chunks;
    it->nchunks = n;
    it->mint = mint;
    it->maxt = maxt;
    *out = it;
    return 0;
}

static int grow(sm_arena *a, sm_ms_t **ts, double **vs, size_t *cap, size_t need) {
    if (*cap >= need) return 0;
    size_t c = *cap ? *cap : 128;
    while (c < need) c *= 2;
    sm_ms_t *nt = sm_arena_alloc(a, sizeof *nt * c);
    double *nv = sm_arena_alloc(a, sizeof *nv * c);
    if (!nt || !nv) return SM_ENOMEM;
    *ts = nt;
    *vs = nv;
    *cap = c;
    return 0;
}

/* Decode chunk c into (*ts, *vs), growing them as needed; *n set. */
static int decode_into(merge_iter *it, const tsdb_chunk_ref *c, sm_ms_t **ts, double **vs,
                       size_t *cap, size_t *n) {
    chunk_info info;
    int rc = chunk_info_read(c->data, c->len, &info);
    if (rc) return rc;
    rc = grow(it->a, ts, vs, cap, info.count);
    if (rc) return rc;
    return chunk_decode_ref(c->data, c->len, c->tcol, c->tlen, *ts, *vs, *cap, n);
}

/* Trim buffer [0, n) to the samples inside [mint, maxt]. */
static void clip(merge_iter *it) {
    size_t lo = 0, hi = it->n;
    while (lo < hi) { /* first index with t >= mint */
        size_t mid = lo + (hi - lo) / 2;
        if (it->buf_ts[mid] < it->mint) lo = mid + 1;
        else hi = mid;
    }
    it->pos = lo;
    size_t lo2 = lo;
    hi = it->n;
    while (lo2 < hi) { /* first index with t > maxt */
        size_t mid = lo2 + (hi - lo2) / 2;
        if (it->buf_ts[mid] <= it->maxt) lo2 = mid + 1;
        else hi = mid;
    }
    it->n = lo2;
}

/* Merge the chunks [first, end) of a cluster into buf, resolving equal
 * timestamps by prio (later chunk on a tie). */
static int merge_cluster(merge_iter *it, uint32_t first, uint32_t end) {
    uint32_t *prio = NULL;
    it->n = 0;
    for (uint32_t k = first; k < end; k++) {
        size_t m;
        int rc = decode_into(it, &it->chunks[k], &it->tmp_ts, &it->tmp_vs, &it->tmp_cap, &m);
        if (rc) return rc;
        size_t need = it->n + m;
        sm_ms_t *nts = NULL;
        double *nvs = NULL;
        size_t ncap = 0;
        uint32_t *nprio = sm_arena_alloc(it->a, sizeof *nprio * (need ? need : 1));
        rc = grow(it->a, &nts, &nvs, &ncap, need);
        if (rc || !nprio) return SM_ENOMEM;
        uint32_t p = it->chunks[k].prio;
        size_t i = 0, j = 0, o = 0;
        while (i < it->n || j < m) {
            if (j >= m || (i < it->n && it->buf_ts[i] < it->tmp_ts[j])) {
                nts[o] = it->buf_ts[i];
                nvs[o] = it->buf_vs[i];
                nprio[o++] = prio[i++];
            } else if (i >= it->n || it->tmp_ts[j] < it->buf_ts[i]) {
                nts[o] = it->tmp_ts[j];
                nvs[o] = it->tmp_vs[j++];
                nprio[o++] = p;
            } else {
                bool take_new = p >= prio[i];
                nts[o] = it->buf_ts[i];
                nvs[o] = take_new ? it->tmp_vs[j] : it->buf_vs[i];
                nprio[o++] = take_new ? p : prio[i];
                i++;
                j++;
            }
        }
        it->buf_ts = nts;
        it->buf_vs = nvs;
        it->cap = ncap;
        it->n = o;
        prio = nprio;
    }
    return 0;
}

/* Load the next cluster that has samples in range.  0 = loaded (n > pos),
 * 1 = no more data, < 0 error. */
static int load_cluster(merge_iter *it) {
    for (;;) {
        if (it->next_chunk >= it->nchunks) return 1;
        uint32_t first = it->next_chunk;
        sm_ms_t cmax = it->chunks[first].maxt;
        uint32_t end = first + 1;
        while (end < it->nchunks && it->chunks[end].mint <= cmax) {
            if (it->chunks[end].maxt > cmax) cmax = it->chunks[end].maxt;
            end++;
        }
        it->next_chunk = end;
        if (cmax < it->mint) continue;
        if (it->chunks[first].mint > it->maxt) {
            it->next_chunk = it->nchunks;
            return 1;
        }
        int rc = end - first == 1
                     ? decode_into(it, &it->chunks[first], &it->buf_ts, &it->buf_vs, &it->cap, &it->n)
                     : merge_cluster(it, first, end);
        if (rc) return rc;
        clip(it);
        if (it->pos < it->n) return 0;
    }
}

int merge_iter_next(merge_iter *it, sm_ms_t *t, double *v) {
    if (it->err) return it->err;
    if (it->pos >= it->n) {
        int rc = load_cluster(it);
        if (rc < 0) return it->err = rc;
        if (rc == 1) return 0;
    }
    *t = it->buf_ts[it->pos];
    *v = it->buf_vs[it->pos];
    it->pos++;
    return 1;
}

int merge_iter_seek(merge_iter *it, sm_ms_t t) {
    if (it->err) return it->err;
    if (t <= it->mint) return 0;
    it->mint = t;
    if (it->pos < it->n && it->buf_ts[it->n - 1] >= t) {
        size_t lo = it->pos, hi = it->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (it->buf_ts[mid] < t) lo = mid + 1;
            else hi = mid;
        }
        it->pos = lo;
        return 0;
    }
    /* The buffered cluster ends before t: drop it.  load_cluster skips the
     * clusters that end before the new mint without decoding them. */
    it->pos = it->n = 0;
    return 0;
}

/* The next chunk's sample count when it can be decoded straight into a
 * caller's arrays with room for `room`: it overlaps no other chunk, lies
 * inside [mint, maxt] and fits; 0 otherwise. */
static uint32_t direct_count(const merge_iter *it, size_t room) {
    if (it->next_chunk >= it->nchunks) return 0;
    const tsdb_chunk_ref *c = &it->chunks[it->next_chunk];
    if (c->mint < it->mint || c->maxt > it->maxt) return 0;
    chunk_info info; /* the chunk's own times too, in case the reference is off */
    if (chunk_info_read(c->data, c->len, &info) || info.count == 0 || info.count > room) return 0;
    if (info.mint < it->mint || info.maxt > it->maxt) return 0;
    /* (Earlier chunks end before c starts: they closed their cluster.) */
    sm_ms_t end = info.maxt > c->maxt ? info.maxt : c->maxt;
    if (it->next_chunk + 1 < it->nchunks && it->chunks[it->next_chunk + 1].mint <= end) return 0;
    return info.count;
}

int merge_iter_next_batch(merge_iter *it, sm_ms_t *ts, double *vs, size_t cap) {
    if (it->err) return it->err;
    size_t o = 0;
    while (o < cap) {
        if (it->pos >= it->n && direct_count(it, cap - o)) {
            /* The common case of a block read: no buffer, no copy. */
            const tsdb_chunk_ref *c = &it->chunks[it->next_chunk];
            size_t got;
            int rc = chunk_decode_ref(c->data, c->len, c->tcol, c->tlen, ts + o, vs + o, cap - o, &got);
            if (rc) return it->err = rc;
            it->next_chunk++;
            o += got;
            continue;
        }
        if (it->pos >= it->n) {
            int rc = load_cluster(it);
            if (rc < 0) return it->err = rc;
            if (rc == 1) break;
        }
        size_t k = it->n - it->pos;
        if (k > cap - o) k = cap - o;
        memcpy(ts + o, it->buf_ts + it->pos, sizeof *ts * k);
        memcpy(vs + o, it->buf_vs + it->pos, sizeof *vs * k);
        it->pos += k;
        o += k;
    }
    return (int)o;
}
