/* SPDX-License-Identifier: Apache-2.0
 *
 * head.c - the in-memory head (contract in head.h).
 *
 * Series.  Each series has its label set (strings interned in a reference-
 * counted symbol table, shared by every series that uses them), a list of
 * live sealed chunks (encoded bytes), one open chunk encoder taking in-order
 * samples, and the chunks the last export detached.  Invariants of the live
 * data (sealed list plus open chunk), kept by every function that changes it:
 *
 *   L1. Sealed chunks are sorted by time and do not overlap:
 *       ch[i].maxt < ch[i+1].mint.  So their maxt values increase too, and a
 *       binary search on maxt finds the chunk that covers or follows a time.
 *   L2. A non-empty open chunk starts after the last sealed chunk ends.
 *   L3. No chunk straddles a multiple of chunk_range_ms: a chunk is sealed
 *       when the next in-order sample falls in another range window (or when
 *       it reaches chunk_max_samples), and late samples only ever join a
 *       chunk of their own window.  So a cut at a window boundary hands
 *       whole chunks to blocks.
 *   L4. Detached chunks (det) are immutable until head_truncate frees them;
 *       each carries the generation of the export that detached it.
 *
 * Out-of-order samples (at or before the newest live time of the series)
 * are merged into the chunk that covers their time, else into a neighbour
 * in the same window with room, else into a new one-sample chunk: the chunk
 * is decoded, the sample inserted or replaced, and the chunk encoded again
 * (the open chunk is rebuilt into a fresh encoder, so it stays open).  Chunks
 * are small, so this costs microseconds, and only late samples pay it.  A
 * chunk that late samples grow past twice chunk_max_samples is split.
 * Equal bits at an existing time is a no-op (HEAD_DUPLICATE), different bits
 * replace (HEAD_REPLACED); bits, so the stale-marker NaN and -0.0 are values
 * of their own.
 *
 * Export moves every live chunk that ends before maxt (a prefix of the
 * sealed list, by L1; the open chunk is sealed first when it ends before
 * maxt) to the detached list and hands it to the writer.  A late sample for
 * a detached chunk's span goes to the live list like any other, so nothing
 * appended during a cut is lost; it is not compared with the detached
 * samples (an exported sample sent again is stored again, and the next
 * export writes it again).  Until head_truncate, reads see both; where a
 * detached chunk's span meets newer data, head_select drops the detached
 * samples whose times the newer data holds, so the newest value wins.  If
 * the writer fails, the export's chunks go back to the live list, merged
 * with whatever arrived for their span meanwhile (newer samples win).
 *
 * Index.  A hash table from label sets to series, an array from ref to
 * series, and postings: for each name=value pair the sorted refs of the
 * series that have it, and for each name its values.  Postings grow on
 * series creation and are rebuilt by head_truncate after it drops series.
 *
 * The series table is open addressing with linear probing; each slot holds
 * the label set's hash beside the series pointer, so a probe reads one
 * cache line of slots and follows a pointer (and compares strings) only
 * when the full 64-bit hash matches.  Invariants:
 *   T1. At most half the slots are used (tab_grow keeps it so), so every
 *       probe sequence reaches an empty slot.
 *   T2. There are no deletions and no tombstones: head_truncate, the only
 *       place series go away, rebuilds the table from the ref array.
 * A series' label array lives in the same allocation as the series, so a
 * hash hit costs one more cache miss, not two.  Appenders use batch calls
 * (head_lookup_many, head_append_runs) that take the index lock once per
 * request instead of once per series: with every connection taking it,
 * its cache line moving between cores was a visible share of the time.
 *
 * Locks.  idx (a rwlock, writer-preferring so that series creation is not
 * starved by appenders) guards the table, the postings and the symbols;
 * each series has a mutex for its chunks; export_mu serialises export and
 * truncate (so an export's series pointers stay valid while it calls the
 * writer without idx held).  Lock order: export_mu, idx, series.
 */
#include "head.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "base/sm_alloc.h"
#include "base/sm_hash.h"
#include "base/sm_log.h"
#include "chunk.h"

/* ---- a string-keyed open hash map (chained) ---- */

typedef struct sm_entry {
    char *key; /* owned */
    size_t klen;
    uint64_t hash;
    void *val;
    struct sm_entry *next;
} sm_entry;

typedef struct strmap {
    sm_entry **b;
    size_t nb, n;
} strmap;

static uint64_t hkey(const char *k, size_t n) { return sm_hash_bytes(k, n, 0x5eed); }

static sm_entry *strmap_find(const strmap *m, const char *k, size_t n) {
    if (!m->nb) return NULL;
    uint64_t h = hkey(k, n);
    for (sm_entry *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0) return e;
    return NULL;
}

static int strmap_grow(strmap *m) {
    size_t nb = m->nb ? m->nb * 2 : 64;
    sm_entry **b = sm_calloc(nb, sizeof *b);
    if (!b) return SM_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        sm_entry *e = m->b[i];
        while (e) {
            sm_entry *nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = nx;
        }
    }
    sm_free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Find or add key; *created tells which. */
static sm_entry *strmap_put(strmap *m, const char *k, size_t n, bool *created) {
    sm_entry *e = strmap_find(m, k, n);
    if (e) {
        *created = false;
        return e;
    }
    if (m->n >= m->nb && strmap_grow(m)) return NULL;
    e = sm_calloc(1, sizeof *e);
    if (!e || !(e->key = sm_malloc(n + 1))) {
        sm_free(e);
        return NULL;
    }
    memcpy(e->key, k, n);
    e->key[n] = '\0';
    e->klen = n;
    e->hash = hkey(k, n);
    e->next = m->b[e->hash & (m->nb - 1)];
    m->b[e->hash & (m->nb - 1)] = e;
    m->n++;
    *created = true;
    return e;
}

static void strmap_del(strmap *m, sm_entry *victim) {
    sm_entry **pp = &m->b[victim->hash & (m->nb - 1)];
    while (*pp && *pp != victim) pp = &(*pp)->next;
    if (*pp) *pp = victim->next;
    sm_free(victim->key);
    sm_free(victim);
    m->n--;
}

typedef void (*val_free_fn)(void *);
static void strmap_clear(strmap *m, val_free_fn fv) {
    for (size_t i = 0; i < m->nb; i++) {
        sm_entry *e = m->b[i];
        while (e) {
            sm_entry *nx = e->next;
            if (fv) fv(e->val);
            sm_free(e->key);
            sm_free(e);
            e = nx;
        }
    }
    sm_free(m->b);
    memset(m, 0, sizeof *m);
}

/* ---- shared time columns ----
 *
 * Every series of a scrape target carries the same timestamps and seals its
 * chunks at the same sample (L3, chunk_max_samples), so their time columns
 * are equal bytes; with scrape jitter that column is a third of a chunk.
 * seal() keeps one copy of such a column in the head's column table and
 * stores the chunk in its reference form (docs/FORMAT.md, "Shared time
 * columns"), whose offset is the column's id here instead of a file offset.
 * Invariants:
 *   C1. A column's refs is the number of chunk byte strings (live or
 *       detached, of any series) that name its id; at 0 it is freed and its
 *       id goes on the free list.
 *   C2. pages[id >> HCOL_PAGE_BITS][id % HCOL_PAGE] is the live column of
 *       id.  A page never moves and lives until head_free, and a column
 *       outlives every chunk naming it (C1), so whoever may read a chunk
 *       (series lock, or export_mu for detached chunks, L4) resolves its id
 *       without the column lock.
 *   C3. A column still alone (refs 1) when its series seals the next chunk
 *       goes back inline into its chunk (unshare_alone), so a series with
 *       timestamps of its own pays for the table on its newest chunk only.
 * cols.mu is the innermost lock: taken with a series lock or idx held,
 * never the other way round.
 */
#define HCOL_PAGE_BITS 12
#define HCOL_PAGE (1u << HCOL_PAGE_BITS)
#define HCOL_PAGES 4096u    /* so ids stay below 2^24 */
#define HCOL_MIN_SHARE 8    /* shorter columns cost less inline than referenced */
#define HCOL_HEADER 16u     /* sizeof(hcol), checked below */

typedef struct hcol {
    uint32_t refs;
    uint32_t len;  /* bytes at b */
    uint32_t next; /* id + 1 of the next column in the bucket, 0: none */
    uint32_t hash;
    uint8_t b[];
} hcol;

_Static_assert(sizeof(hcol) == HCOL_HEADER, "hcol header size");

typedef struct coltab {
    pthread_mutex_t mu;
    hcol **pages[HCOL_PAGES];
    uint32_t npages;
    uint32_t nid;          /* ids handed out at least once */
    uint32_t *freeids;     /* ids of freed columns, for reuse */
    uint32_t nfree, capfree;
    uint32_t *bucket;      /* id + 1 of a chain's first column; nbucket a power of two */
    uint32_t nbucket;
    uint32_t ncols;        /* live columns */
    uint64_t bytes;        /* their column bytes */
} coltab;

/* ---- series ---- */

typedef struct hchunk {
    sm_ms_t mint, maxt; /* first and last sample time */
    uint8_t *data;      /* owned, chunk.h format */
    uint32_t len;       /* bytes at data */
    uint32_t count;     /* samples */
    uint32_t gen;       /* detached chunks: the export that detached it, or 0 for
                           one an undo could not yet put back (see undo_export) */
} hchunk;

typedef struct hseries {
    uint64_t ref;
    uint64_t hash;         /* sm_labels_hash(&ls) */
    sm_labels ls;          /* v is lv below; strings are interned symbols */
    atomic_bool logged;    /* SERIES record in the WAL (read without mu) */
    pthread_mutex_t mu;    /* guards everything below */
    hchunk *ch;            /* live sealed chunks (L1) */
    uint32_t nch, capch;
    hchunk *det;           /* detached by exports, freed by truncate (L4) */
    uint32_t ndet, capdet;
    chunk_enc *open;       /* NULL until the first sample; empty after a seal */
    sm_label lv[];         /* ls.n labels */
} hseries;

typedef struct slot {
    uint64_t hash; /* of s's labels; meaningless when s is NULL */
    hseries *s;    /* NULL: empty */
} slot;

typedef struct posting {
    uint64_t *refs; /* sorted, no duplicates */
    size_t n, cap;
} posting;

typedef struct name_values {
    const char **v; /* interned values, one per name=value posting */
    size_t n, cap;
} name_values;

struct head {
    head_opts o;
    pthread_rwlock_t idx;
    slot *tab;     /* series by labels (T1, T2); ntab a power of two */
    size_t ntab, nseries;
    hseries **byref; /* ref -> series, NULL for none */
    size_t nbyref;
    uint64_t next_ref; /* above every ref seen */
    strmap syms;     /* string -> refcount (uintptr_t) */
    strmap postings; /* "name\xffvalue" -> posting */
    strmap names;    /* name -> name_values */
    _Atomic sm_ms_t maxt; /* newest sample time of the whole head */
    pthread_mutex_t export_mu;
    uint32_t export_gen; /* generation of the last export (export_mu) */
    coltab cols;         /* shared time columns (C1-C3) */
};

/* ---- shared time columns: the table (C1-C3) ---- */

static hcol *col_get(const coltab *t, uint32_t id) {
    return t->pages[id >> HCOL_PAGE_BITS][id & (HCOL_PAGE - 1)];
}

/* Does chunk bytes p name a shared column, and which (*id)? */
static bool chunk_col_id(const uint8_t *p, uint32_t len, uint32_t *id) {
    uint64_t off;
    uint32_t tlen;
    if (!p || !chunk_is_ref(p, len) || chunk_ref_target(p, len, &off, &tlen)) return false;
    *id = (uint32_t)off;
    return true;
}

/* The shared column that chunk bytes p name, NULL when their time column is
 * inline.  The bytes are the head's own, so the id is one of its live
 * columns (C1). */
static const hcol *chunk_col(const head *h, const uint8_t *p, uint32_t len) {
    uint32_t id;
    return chunk_col_id(p, len, &id) ? col_get(&h->cols, id) : NULL;
}

static int col_grow_buckets(coltab *t) {
    uint32_t nb = t->nbucket ? t->nbucket * 2 : 1024;
    uint32_t *b = sm_calloc(nb, sizeof *b);
    if (!b) return SM_ENOMEM;
    for (uint32_t id = 0; id < t->nid; id++) {
        hcol *c = col_get(t, id);
        if (!c) continue;
        c->next = b[c->hash & (nb - 1)];
        b[c->hash & (nb - 1)] = id + 1;
    }
    sm_free(t->bucket);
    t->bucket = b;
    t->nbucket = nb;
    return 0;
}

/* A new id (not yet taken off the free list or counted in nid: the caller
 * does that once the column exists).  SM_ENOMEM or SM_ELIMIT. */
static int col_new_id(coltab *t, uint32_t *id) {
    if (t->nfree) {
        *id = t->freeids[t->nfree - 1];
        return 0;
    }
    uint32_t n = t->nid;
    if (n >= HCOL_PAGES * HCOL_PAGE) return SM_ELIMIT;
    if (n == t->capfree) { /* room to free every id ever handed out */
        uint32_t nc = t->capfree ? t->capfree * 2 : 1024;
        uint32_t *f = sm_realloc(t->freeids, nc * sizeof *f);
        if (!f) return SM_ENOMEM;
        t->freeids = f;
        t->capfree = nc;
    }
    if ((n >> HCOL_PAGE_BITS) == t->npages) {
        hcol **page = sm_calloc(HCOL_PAGE, sizeof *page);
        if (!page) return SM_ENOMEM;
        t->pages[t->npages++] = page;
    }
    *id = n;
    return 0;
}

/* Take a reference on the column equal to col[0..len), adding it when it
 * is new.  0 and its id, or non-zero when it cannot be shared (no memory,
 * every id in use): the chunk then keeps its column inline. */
static int col_share(head *h, const uint8_t *col, uint32_t len, uint32_t *id) {
    coltab *t = &h->cols;
    uint32_t hash = (uint32_t)sm_hash_bytes(col, len, 0x68636f6cull);
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    for (uint32_t e = t->nbucket ? t->bucket[hash & (t->nbucket - 1)] : 0; e; e = col_get(t, e - 1)->next) {
        hcol *c = col_get(t, e - 1);
        if (c->hash == hash && c->len == len && memcmp(c->b, col, len) == 0 && c->refs < UINT32_MAX) {
            c->refs++;
            *id = e - 1;
            goto out;
        }
    }
    hcol *c = NULL;
    if ((t->ncols >= t->nbucket && (rc = col_grow_buckets(t))) || (rc = col_new_id(t, id))) goto out;
    if (!(c = sm_malloc(sizeof *c + len))) {
        rc = SM_ENOMEM;
        goto out;
    }
    uint32_t *chain = &t->bucket[hash & (t->nbucket - 1)];
    *c = (hcol){.refs = 1, .len = len, .next = *chain, .hash = hash};
    memcpy(c->b, col, len);
    *chain = *id + 1;
    t->pages[*id >> HCOL_PAGE_BITS][*id & (HCOL_PAGE - 1)] = c;
    if (t->nfree) t->nfree--;
    else t->nid++;
    t->ncols++;
    t->bytes += len;
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void col_release(head *h, uint32_t id) {
    coltab *t = &h->cols;
    pthread_mutex_lock(&t->mu);
    hcol *c = col_get(t, id);
    if (--c->refs == 0) {
        uint32_t *link = &t->bucket[c->hash & (t->nbucket - 1)];
        while (*link != id + 1) link = &col_get(t, *link - 1)->next;
        *link = c->next;
        t->pages[id >> HCOL_PAGE_BITS][id & (HCOL_PAGE - 1)] = NULL;
        t->freeids[t->nfree++] = id; /* capfree >= nid > nfree (col_new_id) */
        t->ncols--;
        t->bytes -= c->len;
        sm_free(c);
    }
    pthread_mutex_unlock(&t->mu);
}

static uint32_t col_refs(head *h, const hcol *c) {
    pthread_mutex_lock(&h->cols.mu);
    uint32_t r = c->refs;
    pthread_mutex_unlock(&h->cols.mu);
    return r;
}

static void coltab_fini(coltab *t) {
    for (uint32_t id = 0; id < t->nid; id++) sm_free(col_get(t, id)); /* none left after the series */
    for (uint32_t i = 0; i < t->npages; i++) sm_free(t->pages[i]);
    sm_free(t->bucket);
    sm_free(t->freeids);
    pthread_mutex_destroy(&t->mu);
}

/* Free a chunk's bytes, dropping its column reference (C1). */
static void chunk_bytes_free(head *h, uint8_t *data, uint32_t len) {
    uint32_t id;
    if (chunk_col_id(data, len, &id)) col_release(h, id);
    sm_free(data);
}

/* Decode chunk bytes with their column, wherever it is. */
static int chunk_bytes_decode(const head *h, const uint8_t *p, uint32_t len, sm_ms_t *ts, double *vs, size_t cap,
                              size_t *n) {
    const hcol *c = chunk_col(h, p, len);
    return chunk_decode_ref(p, len, c ? c->b : NULL, c ? c->len : 0, ts, vs, cap, n);
}

/* Turn the finished chunk in b into its reference form when its time
 * column is long enough to share.  Failing to share leaves b as it was. */
static void share_column(head *h, sm_buf *b) {
    size_t off, tlen;
    uint32_t id;
    if (chunk_time_column(b->p, b->len, &off, &tlen) || tlen < HCOL_MIN_SHARE || tlen > UINT32_MAX ||
        col_share(h, b->p + off, (uint32_t)tlen, &id))
        return;
    sm_buf r = SM_BUF_INIT;
    if (chunk_ref_encode(b->p, b->len, id, &r)) {
        sm_buf_fini(&r);
        col_release(h, id);
        return;
    }
    sm_buf_fini(b);
    *b = r;
}

/* The postings key of a pair, "name\xffvalue": in stack when it fits, else
 * on the heap (the caller frees it when it is not stack).  NULL: no memory. */
static char *pair_key(const char *name, const char *value, char *stack, size_t cap, size_t *len) {
    size_t nl = strlen(name), vl = strlen(value);
    char *k = nl + vl + 1 <= cap ? stack : sm_malloc(nl + vl + 1);
    if (!k) return NULL;
    memcpy(k, name, nl);
    k[nl] = '\xff';
    memcpy(k + nl + 1, value, vl);
    *len = nl + 1 + vl;
    return k;
}

static void key_done(char *k, char *stack) {
    if (k != stack) sm_free(k);
}

static const char *sym_get(head *h, const char *s) {
    bool created;
    sm_entry *e = strmap_put(&h->syms, s, strlen(s), &created);
    if (!e) return NULL;
    e->val = (void *)((uintptr_t)e->val + 1);
    return e->key;
}

static void sym_put(head *h, const char *s) {
    sm_entry *e = strmap_find(&h->syms, s, strlen(s));
    if (!e) return;
    e->val = (void *)((uintptr_t)e->val - 1);
    if (!e->val) strmap_del(&h->syms, e);
}

static void posting_free(void *p) {
    posting *q = p;
    if (!q) return;
    sm_free(q->refs);
    sm_free(q);
}

static void nv_free(void *p) {
    name_values *q = p;
    if (!q) return;
    sm_free(q->v);
    sm_free(q);
}

static int posting_add(posting *p, uint64_t ref) {
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 4;
        uint64_t *nr = sm_realloc(p->refs, nc * sizeof *nr);
        if (!nr) return SM_ENOMEM;
        p->refs = nr;
        p->cap = nc;
    }
    if (p->n == 0 || p->refs[p->n - 1] < ref) {
        p->refs[p->n++] = ref;
        return 0;
    }
    /* Replay may create refs out of order. */
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->refs[mid] < ref) lo = mid + 1;
        else hi = mid;
    }
    if (lo < p->n && p->refs[lo] == ref) return 0;
    memmove(p->refs + lo + 1, p->refs + lo, (p->n - lo) * sizeof *p->refs);
    p->refs[lo] = ref;
    p->n++;
    return 0;
}

static int index_series(head *h, const hseries *s) {
    char stack[512];
    for (uint32_t i = 0; i < s->ls.n; i++) {
        const char *name = s->ls.v[i].name;
        size_t kl;
        char *key = pair_key(name, s->ls.v[i].value, stack, sizeof stack, &kl);
        if (!key) return SM_ENOMEM;
        bool created;
        sm_entry *e = strmap_put(&h->postings, key, kl, &created);
        key_done(key, stack);
        if (!e) return SM_ENOMEM;
        if (created && !(e->val = sm_calloc(1, sizeof(posting)))) return SM_ENOMEM;
        if (posting_add(e->val, s->ref)) return SM_ENOMEM;
        if (created) {
            sm_entry *ne = strmap_put(&h->names, name, strlen(name), &created);
            if (!ne) return SM_ENOMEM;
            if (created && !(ne->val = sm_calloc(1, sizeof(name_values)))) return SM_ENOMEM;
            name_values *nv = ne->val;
            if (nv->n == nv->cap) {
                size_t nc = nv->cap ? nv->cap * 2 : 4;
                const char **v = sm_realloc(nv->v, nc * sizeof *v);
                if (!v) return SM_ENOMEM;
                nv->v = v;
                nv->cap = nc;
            }
            nv->v[nv->n++] = s->ls.v[i].value; /* interned: lives as long as the series */
        }
    }
    return 0;
}

static void series_free(head *h, hseries *s) {
    for (uint32_t i = 0; i < s->nch; i++) chunk_bytes_free(h, s->ch[i].data, s->ch[i].len);
    for (uint32_t i = 0; i < s->ndet; i++) chunk_bytes_free(h, s->det[i].data, s->det[i].len);
    sm_free(s->ch);
    sm_free(s->det);
    chunk_enc_free(s->open);
    for (uint32_t i = 0; i < s->ls.n; i++) {
        sym_put(h, s->ls.v[i].name);
        sym_put(h, s->ls.v[i].value);
    }
    pthread_mutex_destroy(&s->mu);
    sm_free(s);
}

int head_new(const head_opts *o, head **out) {
    head *h = sm_calloc(1, sizeof *h);
    if (!h) return SM_ENOMEM;
    if (o) {
        h->o = *o;
    } else {
        h->o = (head_opts){3600 * 1000, 120, 2 * 3600 * 1000, 0};
    }
    if (h->o.ooo_window_ms < 0) h->o.ooo_window_ms = 0;
    if (h->o.chunk_max_samples == 0 || h->o.chunk_max_samples > CHUNK_MAX_SAMPLES / 2)
        h->o.chunk_max_samples = h->o.chunk_max_samples ? CHUNK_MAX_SAMPLES / 2 : 120;
    if (h->o.chunk_range_ms <= 0) h->o.chunk_range_ms = 2 * 3600 * 1000;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->idx, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&h->export_mu, NULL);
    pthread_mutex_init(&h->cols.mu, NULL);
    h->next_ref = 1;
    atomic_store(&h->maxt, SM_MS_MIN);
    *out = h;
    return 0;
}

void head_free(head *h) {
    if (!h) return;
    for (size_t i = 0; i < h->nbyref; i++)
        if (h->byref[i]) series_free(h, h->byref[i]);
    sm_free(h->byref);
    sm_free(h->tab);
    strmap_clear(&h->postings, posting_free);
    strmap_clear(&h->names, nv_free);
    strmap_clear(&h->syms, NULL);
    pthread_rwlock_destroy(&h->idx);
    pthread_mutex_destroy(&h->export_mu);
    coltab_fini(&h->cols);
    sm_free(h);
}

static hseries *find_locked(const head *h, const sm_labels *ls, uint64_t hash) {
    if (!h->ntab) return NULL;
    size_t mask = h->ntab - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) { /* ends at an empty slot (T1) */
        const slot *sl = &h->tab[i];
        if (!sl->s) return NULL;
        if (sl->hash == hash && sm_labels_equal(&sl->s->ls, ls)) return sl->s;
    }
}

static hseries *by_ref(const head *h, uint64_t ref) {
    return ref < h->nbyref ? h->byref[ref] : NULL;
}

static void tab_put(slot *t, size_t nt, hseries *s) {
    size_t mask = nt - 1, i = s->hash & mask;
    while (t[i].s) i = (i + 1) & mask;
    t[i] = (slot){s->hash, s};
}

static int tab_grow(head *h) {
    size_t nt = h->ntab ? h->ntab * 2 : 1024;
    slot *t = sm_calloc(nt, sizeof *t);
    if (!t) return SM_ENOMEM;
    for (size_t i = 0; i < h->ntab; i++)
        if (h->tab[i].s) tab_put(t, nt, h->tab[i].s);
    sm_free(h->tab);
    h->tab = t;
    h->ntab = nt;
    return 0;
}

/* Create with the write lock held. */
static int create_locked(head *h, uint64_t ref, const sm_labels *ls, uint64_t hash, hseries **out) {
    if (2 * (h->nseries + 1) > h->ntab && tab_grow(h)) return SM_ENOMEM; /* T1 */
    if (ref >= h->nbyref) {
        if (ref > (uint64_t)1 << 40) return SM_EINVAL; /* not a ref we hand out */
        size_t nn = h->nbyref ? h->nbyref : 1024;
        while (nn <= ref) nn *= 2;
        hseries **nb = sm_realloc(h->byref, nn * sizeof *nb);
        if (!nb) return SM_ENOMEM;
        memset(nb + h->nbyref, 0, (nn - h->nbyref) * sizeof *nb);
        h->byref = nb;
        h->nbyref = nn;
    }
    hseries *s = sm_calloc(1, sizeof *s + ls->n * sizeof(sm_label));
    if (!s) return SM_ENOMEM;
    sm_label *lv = s->lv;
    for (uint32_t i = 0; i < ls->n; i++) {
        lv[i].name = sym_get(h, ls->v[i].name);
        lv[i].value = sym_get(h, ls->v[i].value);
        if (!lv[i].name || !lv[i].value) {
            /* Give back what was taken. */
            for (uint32_t k = 0; k <= i; k++) {
                if (lv[k].name) sym_put(h, lv[k].name);
                if (lv[k].value) sym_put(h, lv[k].value);
            }
            sm_free(s);
            return SM_ENOMEM;
        }
    }
    s->ref = ref;
    s->hash = hash;
    s->ls = (sm_labels){lv, ls->n};
    pthread_mutex_init(&s->mu, NULL);
    tab_put(h->tab, h->ntab, s);
    h->byref[ref] = s;
    h->nseries++;
    if (ref >= h->next_ref) h->next_ref = ref + 1;
    /* On failure the series exists with partial postings: a select may miss
     * it, nothing worse; the next truncate that drops a series rebuilds. */
    if (index_series(h, s)) return SM_ENOMEM;
    *out = s;
    return 0;
}

int head_get_or_create(head *h, const sm_labels *ls, uint64_t *ref, bool *created, sm_error *err) {
    uint64_t hash = sm_labels_hash(ls);
    pthread_rwlock_rdlock(&h->idx);
    hseries *s = find_locked(h, ls, hash);
    if (s) {
        *ref = s->ref;
        *created = false;
        pthread_rwlock_unlock(&h->idx);
        return 0;
    }
    pthread_rwlock_unlock(&h->idx);
    pthread_rwlock_wrlock(&h->idx);
    s = find_locked(h, ls, hash);
    int rc = 0;
    if (s) {
        *ref = s->ref;
        *created = false;
    } else if (h->o.max_series && h->nseries >= h->o.max_series) {
        rc = SM_ERR(err, SM_ELIMIT, "the head holds %zu series, the limit", h->nseries);
    } else {
        rc = create_locked(h, h->next_ref, ls, hash, &s);
        if (rc) rc = SM_ERR(err, rc, "out of memory creating a series");
        else {
            *ref = s->ref;
            *created = true;
        }
    }
    pthread_rwlock_unlock(&h->idx);
    return rc;
}

/* The hashes of n label sets, computed before an index lock is taken: in
 * stack (room for HASHES_STACK) or on the heap; NULL when that fails.
 * given[i], when given and not 0, is ls[i]'s hash already.  hashes_free
 * releases them. */
enum { HASHES_STACK = 256 };
static uint64_t *hashes_of(const sm_labels *const *ls, const uint64_t *given, size_t n, uint64_t *stack) {
    uint64_t *hv = n <= HASHES_STACK ? stack : sm_malloc(n * sizeof *hv);
    if (hv)
        for (size_t i = 0; i < n; i++) hv[i] = given && given[i] ? given[i] : sm_labels_hash(ls[i]);
    return hv;
}

static void hashes_free(uint64_t *hv, const uint64_t *stack) {
    if (hv != stack) sm_free(hv);
}

int head_get_or_create_many(head *h, const sm_labels *const *ls, size_t n, uint64_t *refs, bool *created) {
    uint64_t stackh[HASHES_STACK];
    uint64_t *hv = hashes_of(ls, NULL, n, stackh);
    if (!hv) return SM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        refs[i] = 0;
        created[i] = false;
    }
    int rc = 0;
    pthread_rwlock_wrlock(&h->idx);
    for (size_t i = 0; i < n; i++) {
        hseries *s = find_locked(h, ls[i], hv[i]);
        if (!s) {
            if (h->o.max_series && h->nseries >= h->o.max_series) continue;
            if ((rc = create_locked(h, h->next_ref, ls[i], hv[i], &s))) break;
            created[i] = true;
        }
        refs[i] = s->ref;
    }
    pthread_rwlock_unlock(&h->idx);
    hashes_free(hv, stackh);
    return rc ? SM_ENOMEM : 0;
}

int head_create_with_ref(head *h, uint64_t ref, const sm_labels *ls, sm_error *err) {
    if (ref == 0) return SM_ERR(err, SM_EINVAL, "series ref 0");
    uint64_t hash = sm_labels_hash(ls);
    pthread_rwlock_wrlock(&h->idx);
    int rc = 0;
    hseries *s = by_ref(h, ref), *other;
    if (s) {
        if (!sm_labels_equal(&s->ls, ls))
            rc = SM_ERR(err, SM_EINVAL, "series ref %llu reused", (unsigned long long)ref);
    } else if ((other = find_locked(h, ls, hash)) != NULL) {
        rc = SM_ERR(err, SM_EINVAL, "series logged twice with refs %llu and %llu",
                    (unsigned long long)other->ref, (unsigned long long)ref);
    } else {
        rc = create_locked(h, ref, ls, hash, &s);
        if (rc == SM_EINVAL) rc = SM_ERR(err, rc, "series ref %llu too large", (unsigned long long)ref);
        else if (rc) rc = SM_ERR(err, rc, "out of memory creating a series");
    }
    pthread_rwlock_unlock(&h->idx);
    return rc;
}

bool head_series_logged(head *h, uint64_t ref) {
    pthread_rwlock_rdlock(&h->idx);
    hseries *s = by_ref(h, ref);
    bool v = s && atomic_load(&s->logged);
    pthread_rwlock_unlock(&h->idx);
    return v;
}

void head_series_set_logged(head *h, uint64_t ref) {
    pthread_rwlock_rdlock(&h->idx);
    hseries *s = by_ref(h, ref);
    if (s) atomic_store(&s->logged, true);
    pthread_rwlock_unlock(&h->idx);
}

bool head_has_series(head *h, uint64_t ref) {
    pthread_rwlock_rdlock(&h->idx);
    bool v = by_ref(h, ref) != NULL;
    pthread_rwlock_unlock(&h->idx);
    return v;
}

int head_check_window(head *h, sm_ms_t t) {
    sm_ms_t mx = atomic_load(&h->maxt);
    if (mx == SM_MS_MIN || t >= mx) return 0;
    /* mx - t without overflow. */
    return (uint64_t)mx - (uint64_t)t > (uint64_t)h->o.ooo_window_ms ? SM_ERANGE : 0;
}

/* ---- chunks ---- */

/* Start of the range window holding t (floor division). */
static sm_ms_t window_of(const head *h, sm_ms_t t) {
    int64_t r = h->o.chunk_range_ms, q = t / r;
    if (t % r != 0 && t < 0) q--;
    return q * r;
}

static uint32_t open_count(const hseries *s) { return s->open ? chunk_enc_count(s->open) : 0; }

static int reserve(hchunk **v, uint32_t n, uint32_t *cap, uint32_t extra) {
    if (n + extra <= *cap) return 0;
    /* By half, not doubling: a 2 h window of 120-sample chunks is 4 chunks
     * at a 15 s scrape and 6 at 10 s, which 2, 3, 4, 6, 9 fit exactly. */
    uint32_t nc = *cap ? *cap : 2;
    while (nc < n + extra) nc += nc / 2;
    hchunk *nv = sm_realloc(*v, nc * sizeof *nv);
    if (!nv) return SM_ENOMEM;
    *v = nv;
    *cap = nc;
    return 0;
}

/* The chunk bytes of b, in an allocation of their own size: chunk_encode
 * reserves its worst case (about 4 KiB for 120 samples), and a sealed
 * chunk kept that reservation for its whole life in the head (260 MB of
 * heap for 9 MB of chunks after replaying a bench_query WAL). */
static uint8_t *detach_fit(sm_buf *b, size_t *len) {
    uint8_t *p = sm_buf_detach(b, len);
    uint8_t *fit = *len ? sm_realloc(p, *len) : NULL;
    return fit ? fit : p;
}

/* C3: put chunk c's column back inline when no other chunk shares it. */
static void unshare_alone(head *h, hchunk *c) {
    const hcol *col = chunk_col(h, c->data, c->len);
    if (!col || col_refs(h, col) != 1) return;
    sm_buf b = SM_BUF_INIT;
    if (chunk_ref_expand_to(c->data, c->len, col->b, col->len, &b)) {
        sm_buf_fini(&b);
        return;
    }
    size_t len;
    uint8_t *data = detach_fit(&b, &len);
    chunk_bytes_free(h, c->data, c->len);
    c->data = data;
    c->len = (uint32_t)len;
}

/* Seal the open chunk onto the end of the sealed list (L2 makes that its
 * place), its time column shared with the other series' (C1-C3). */
static int seal(head *h, hseries *s) {
    if (!open_count(s)) return 0;
    if (reserve(&s->ch, s->nch, &s->capch, 1)) return SM_ENOMEM;
    sm_buf b = SM_BUF_INIT;
    if (chunk_enc_finish(s->open, &b)) return SM_ENOMEM;
    if (s->nch) unshare_alone(h, &s->ch[s->nch - 1]);
    share_column(h, &b);
    size_t len;
    uint8_t *data = detach_fit(&b, &len);
    s->ch[s->nch++] = (hchunk){chunk_enc_mint(s->open), chunk_enc_maxt(s->open), data,
                               (uint32_t)len, chunk_enc_count(s->open), 0};
    chunk_enc_reset_release(s->open);
    return 0;
}

/* Newest live sample time; SM_MS_MIN when the series holds no live data. */
static sm_ms_t live_maxt(const hseries *s) {
    if (open_count(s)) return chunk_enc_maxt(s->open);
    return s->nch ? s->ch[s->nch - 1].maxt : SM_MS_MIN;
}

/* Decode n encoded bytes into fresh arrays with room for count + extra. */
static int decode_bytes(const head *h, const uint8_t *p, size_t len, uint32_t count, size_t extra, sm_ms_t **ts,
                        double **vs) {
    *ts = sm_malloc((count + extra) * sizeof **ts);
    *vs = sm_malloc((count + extra) * sizeof **vs);
    size_t n;
    int rc = !*ts || !*vs ? SM_ENOMEM : chunk_bytes_decode(h, p, (uint32_t)len, *ts, *vs, count, &n);
    if (!rc && n != count) rc = SM_ECORRUPT;
    if (rc) {
        sm_free(*ts);
        sm_free(*vs);
        *ts = NULL;
        *vs = NULL;
    }
    return rc;
}

/* Encode samples into a chunk, replacing its bytes. */
static int encode_into(head *h, hchunk *c, const sm_ms_t *ts, const double *vs, size_t n) {
    sm_buf b = SM_BUF_INIT;
    if (chunk_encode(ts, vs, n, &b)) {
        sm_buf_fini(&b);
        return SM_ENOMEM;
    }
    size_t len;
    uint8_t *data = detach_fit(&b, &len);
    chunk_bytes_free(h, c->data, c->len);
    c->data = data;
    c->len = (uint32_t)len;
    c->count = (uint32_t)n;
    c->mint = ts[0];
    c->maxt = ts[n - 1];
    return 0;
}

/* Put (t, v) into sorted arrays of *n samples (room for one more).
 * Returns a HEAD_ code. */
static int put_sample(sm_ms_t *ts, double *vs, size_t *n, sm_ms_t t, double v) {
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ts[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    if (lo < *n && ts[lo] == t) {
        if (sm_f64_bits(vs[lo]) == sm_f64_bits(v)) return HEAD_DUPLICATE;
        vs[lo] = v;
        return HEAD_REPLACED;
    }
    memmove(ts + lo + 1, ts + lo, (*n - lo) * sizeof *ts);
    memmove(vs + lo + 1, vs + lo, (*n - lo) * sizeof *vs);
    ts[lo] = t;
    vs[lo] = v;
    (*n)++;
    return HEAD_APPENDED;
}

/* Put (t, v) into live sealed chunk i.  Returns a HEAD_ code. */
static int merge_into(head *h, hseries *s, uint32_t i, sm_ms_t t, double v, uint32_t max) {
    sm_ms_t *ts;
    double *vs;
    int rc = decode_bytes(h, s->ch[i].data, s->ch[i].len, s->ch[i].count, 1, &ts, &vs);
    if (rc) return rc;
    size_t n = s->ch[i].count;
    int result = put_sample(ts, vs, &n, t, v);
    if (result == HEAD_DUPLICATE) {
        rc = 0;
    } else if (n > 2 * (size_t)max && reserve(&s->ch, s->nch, &s->capch, 1) == 0) {
        /* Split a chunk that late samples made large: both halves first,
         * then the list, so a failure changes nothing. */
        size_t half = n / 2;
        hchunk lo = {0}, hi = {0};
        rc = encode_into(h, &lo, ts, vs, half);
        if (!rc) rc = encode_into(h, &hi, ts + half, vs + half, n - half);
        if (rc) {
            chunk_bytes_free(h, lo.data, lo.len);
            chunk_bytes_free(h, hi.data, hi.len);
        } else {
            chunk_bytes_free(h, s->ch[i].data, s->ch[i].len);
            memmove(&s->ch[i + 2], &s->ch[i + 1], (s->nch - i - 1) * sizeof *s->ch);
            s->nch++;
            s->ch[i] = lo;
            s->ch[i + 1] = hi;
        }
    } else {
        rc = encode_into(h, &s->ch[i], ts, vs, n);
    }
    sm_free(ts);
    sm_free(vs);
    return rc ? rc : result;
}

/* Put (t, v) into the open chunk (t in its window): decode it, insert, and
 * re-append everything to a fresh encoder that replaces it on success. */
static int open_insert(hseries *s, sm_ms_t t, double v) {
    sm_buf b = SM_BUF_INIT;
    uint32_t cnt = chunk_enc_count(s->open);
    if (chunk_enc_finish(s->open, &b)) return SM_ENOMEM;
    sm_ms_t *ts;
    double *vs;
    int rc = decode_bytes(NULL, b.p, b.len, cnt, 1, &ts, &vs); /* a snapshot: inline */
    sm_buf_fini(&b);
    if (rc) return rc;
    size_t n = cnt;
    int result = put_sample(ts, vs, &n, t, v);
    chunk_enc *e = NULL;
    if (result != HEAD_DUPLICATE) {
        e = chunk_enc_new();
        rc = e ? 0 : SM_ENOMEM;
        for (size_t i = 0; i < n && !rc; i++) rc = chunk_enc_append(e, ts[i], vs[i]);
        if (rc) {
            chunk_enc_free(e);
            rc = SM_ENOMEM;
        } else {
            chunk_enc_free(s->open);
            s->open = e;
        }
    }
    sm_free(ts);
    sm_free(vs);
    return rc ? rc : result;
}

/* Insert a one-sample chunk at position i of the sealed list. */
static int insert_single(head *h, hseries *s, uint32_t i, sm_ms_t t, double v) {
    if (reserve(&s->ch, s->nch, &s->capch, 1)) return SM_ENOMEM;
    hchunk c = {0};
    if (encode_into(h, &c, &t, &v, 1)) return SM_ENOMEM;
    memmove(&s->ch[i + 1], &s->ch[i], (s->nch - i) * sizeof *s->ch);
    s->ch[i] = c;
    s->nch++;
    return HEAD_APPENDED;
}

/* First sealed chunk with maxt >= t (nch if none); L1 makes maxt sorted. */
static uint32_t first_ending_at_or_after(const hseries *s, sm_ms_t t) {
    uint32_t lo = 0, hi = s->nch;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->ch[mid].maxt < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A sample at or before the series' newest live time. */
static int append_late(head *h, hseries *s, sm_ms_t t, double v) {
    uint32_t max = h->o.chunk_max_samples;
    uint32_t oc = open_count(s);
    if (oc && t >= chunk_enc_mint(s->open)) {
        if (oc < max) return open_insert(s, t, v);
        if (seal(h, s)) return SM_ENOMEM; /* full: merge into it as a sealed chunk */
    }
    uint32_t lo = first_ending_at_or_after(s, t);
    if (lo < s->nch && s->ch[lo].mint <= t) return merge_into(h, s, lo, t, v, max);
    /* In the gap between chunk lo-1 and chunk lo (or the open chunk): join
     * a neighbour of the same window that has room, else start a chunk. */
    sm_ms_t win = window_of(h, t);
    if (lo > 0 && window_of(h, s->ch[lo - 1].mint) == win && s->ch[lo - 1].count < max)
        return merge_into(h, s, lo - 1, t, v, max);
    if (lo < s->nch && window_of(h, s->ch[lo].mint) == win && s->ch[lo].count < max)
        return merge_into(h, s, lo, t, v, max);
    oc = open_count(s);
    if (lo == s->nch && oc && oc < max && window_of(h, chunk_enc_mint(s->open)) == win)
        return open_insert(s, t, v);
    return insert_single(h, s, lo, t, v);
}

/* One sample into s, whose mutex the caller holds. */
static int append_locked(head *h, hseries *s, sm_ms_t t, double v) {
    if (t <= live_maxt(s)) return append_late(h, s, t, v);
    int rc = 0;
    if (!s->open && !(s->open = chunk_enc_new())) return SM_ENOMEM;
    uint32_t cnt = open_count(s);
    if (cnt && (cnt >= h->o.chunk_max_samples ||
                window_of(h, chunk_enc_mint(s->open)) != window_of(h, t)))
        rc = seal(h, s);
    if (!rc && chunk_enc_append(s->open, t, v)) rc = SM_ENOMEM; /* t is above the last */
    return rc ? rc : HEAD_APPENDED;
}

static void raise_maxt(head *h, sm_ms_t t) {
    sm_ms_t cur = atomic_load(&h->maxt);
    while (t > cur && !atomic_compare_exchange_weak(&h->maxt, &cur, t)) {
    }
}

int head_append(head *h, uint64_t ref, sm_ms_t t, double v, bool check_window) {
    if (check_window && head_check_window(h, t)) return SM_ERANGE;
    pthread_rwlock_rdlock(&h->idx);
    hseries *s = by_ref(h, ref);
    if (!s) {
        pthread_rwlock_unlock(&h->idx);
        return SM_ENOTFOUND;
    }
    pthread_mutex_lock(&s->mu);
    int rc = append_locked(h, s, t, v);
    pthread_mutex_unlock(&s->mu);
    pthread_rwlock_unlock(&h->idx);
    if (rc >= 0) raise_maxt(h, t);
    return rc;
}

int head_append_runs(head *h, const head_run *runs, size_t n, head_run_result *res) {
    head_run_result r = {0};
    int rc = 0;
    sm_ms_t mx = SM_MS_MIN;
    pthread_rwlock_rdlock(&h->idx);
    for (size_t i = 0; i < n && !rc; i++) {
        const head_run *run = &runs[i];
        hseries *s = by_ref(h, run->ref);
        if (!s) {
            rc = SM_ENOTFOUND;
            break;
        }
        if (run->set_logged) atomic_store(&s->logged, true);
        pthread_mutex_lock(&s->mu);
        for (uint32_t k = 0; k < run->n; k++) {
            int arc = append_locked(h, s, run->t[k], run->v[k]);
            if (arc < 0) {
                rc = arc;
                break;
            }
            r.duplicates += arc == HEAD_DUPLICATE;
            r.replaced += arc == HEAD_REPLACED;
            r.stored++;
            if (run->t[k] > mx) mx = run->t[k];
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_unlock(&h->idx);
    if (r.stored) raise_maxt(h, mx);
    if (res) *res = r;
    return rc;
}

void head_lookup_many(head *h, const sm_labels *const *ls, const uint64_t *hashes, size_t n, uint64_t *refs,
                      bool *logged) {
    /* Hashes first, outside the lock: the caller's, the others computed
     * here (without memory for them, each is computed at its lookup). */
    uint64_t stackh[HASHES_STACK];
    uint64_t *hv = hashes_of(ls, hashes, n, stackh);
    pthread_rwlock_rdlock(&h->idx);
    /* The table and the series are far larger than the caches, so each
     * lookup waits for two misses (the slot, then the series it points
     * to); with the hashes known up front, both are fetched ahead: slots
     * LOOKAHEAD lookups early, their series half as early.  A hint (a ref
     * an earlier lookup gave) needs neither: it is kept while its series
     * exists (refs are never reused for other labels); the hash
     * comparison only guards against a caller's mistake. */
    enum { LOOKAHEAD = 8 };
    size_t mask = h->ntab ? h->ntab - 1 : 0;
    bool pf = hv && h->ntab;
    for (size_t i = 0; pf && i < n && i < LOOKAHEAD; i++) __builtin_prefetch(&h->tab[hv[i] & mask]);
    for (size_t i = 0; i < n; i++) {
        if (pf && i + LOOKAHEAD < n) __builtin_prefetch(&h->tab[hv[i + LOOKAHEAD] & mask]);
        if (pf && i + LOOKAHEAD / 2 < n) {
            size_t j = i + LOOKAHEAD / 2;
            const hseries *ahead = refs[j] ? by_ref(h, refs[j]) : h->tab[hv[j] & mask].s;
            if (ahead) {
                __builtin_prefetch(ahead);
                __builtin_prefetch((const char *)ahead + 64);
            }
        }
        uint64_t hash = hv ? hv[i] : sm_labels_hash(ls[i]);
        hseries *s = refs[i] ? by_ref(h, refs[i]) : NULL;
        if (!s || s->hash != hash) s = find_locked(h, ls[i], hash);
        refs[i] = s ? s->ref : 0;
        logged[i] = s && atomic_load(&s->logged);
    }
    pthread_rwlock_unlock(&h->idx);
    hashes_free(hv, stackh);
}

/* ---- reading ---- */

static int cmp_series_labels(const void *a, const void *b) {
    return sm_labels_cmp(&(*(hseries *const *)a)->ls, &(*(hseries *const *)b)->ls);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Refs of the series with a value of m's label that m matches (m does not
 * match ""), sorted, into *out (sm_malloc'd, NULL when none). */
static int matcher_postings(head *h, const sm_matcher *m, uint64_t **out, size_t *n) {
    char stack[512];
    uint64_t *set = NULL;
    size_t nset = 0, capset = 0;
    const char *only = m->type == SM_MATCH_EQ ? m->value : NULL;
    const char **vals = &only;
    size_t nvals = 1;
    if (!only) {
        sm_entry *ne = strmap_find(&h->names, m->name, strlen(m->name));
        name_values *nv = ne ? ne->val : NULL;
        vals = nv ? nv->v : NULL;
        nvals = nv ? nv->n : 0;
    }
    size_t lists = 0;
    for (size_t k = 0; k < nvals; k++) {
        if (!only && !sm_matcher_matches(m, vals[k])) continue;
        size_t kl;
        char *key = pair_key(m->name, vals[k], stack, sizeof stack, &kl);
        if (!key) goto nomem;
        sm_entry *e = strmap_find(&h->postings, key, kl);
        key_done(key, stack);
        if (!e) continue;
        posting *p = e->val;
        if (!p->n) continue;
        if (nset + p->n > capset) {
            capset = (nset + p->n) * 2;
            uint64_t *ns = sm_realloc(set, capset * sizeof *ns);
            if (!ns) goto nomem;
            set = ns;
        }
        memcpy(set + nset, p->refs, p->n * sizeof *set);
        nset += p->n;
        lists++;
    }
    if (lists > 1) qsort(set, nset, sizeof *set, cmp_u64); /* a series has one value per name */
    *out = set;
    *n = nset;
    return 0;
nomem:
    sm_free(set);
    return SM_ENOMEM;
}

/* The series matching every matcher, sorted by labels.  idx held (read).
 * *out is sm_malloc'd. */
static int match_series(head *h, const sm_matcher *ms, size_t nms, hseries ***out, size_t *n) {
    /* Intersect the postings of the matchers that do not match "" (they
     * select only series that have the label); the others filter below. */
    uint64_t *cand = NULL;
    size_t ncand = 0;
    bool have = false;
    for (size_t i = 0; i < nms && !(have && ncand == 0); i++) {
        if (sm_matcher_matches_empty(&ms[i])) continue;
        uint64_t *set;
        size_t nset;
        if (matcher_postings(h, &ms[i], &set, &nset)) goto nomem;
        if (!have) {
            cand = set;
            ncand = nset;
            have = true;
            continue;
        }
        size_t a = 0, b = 0, k = 0;
        while (a < ncand && b < nset) {
            if (cand[a] < set[b]) a++;
            else if (cand[a] > set[b]) b++;
            else {
                cand[k++] = cand[a];
                a++;
                b++;
            }
        }
        ncand = k;
        sm_free(set);
    }
    size_t cap = have ? ncand : h->nseries;
    hseries **v = sm_malloc((cap ? cap : 1) * sizeof *v);
    if (!v) goto nomem;
    size_t nv = 0;
    if (have) {
        for (size_t i = 0; i < ncand; i++) {
            hseries *s = by_ref(h, cand[i]);
            if (s) v[nv++] = s;
        }
    } else { /* every matcher matches "": scan all series */
        for (size_t i = 0; i < h->nbyref && nv < cap; i++)
            if (h->byref[i]) v[nv++] = h->byref[i];
    }
    sm_free(cand);
    /* Every matcher, on every candidate (absent labels as ""). */
    size_t k = 0;
    for (size_t i = 0; i < nv; i++) {
        bool ok = true;
        for (size_t j = 0; j < nms && ok; j++) {
            const char *val = sm_labels_get(&v[i]->ls, ms[j].name);
            ok = sm_matcher_matches(&ms[j], val ? val : "");
        }
        if (ok) v[k++] = v[i];
    }
    if (k > 1) qsort(v, k, sizeof *v, cmp_series_labels);
    *out = v;
    *n = k;
    return 0;
nomem:
    sm_free(cand);
    return SM_ENOMEM;
}

/* Does the series have a chunk overlapping [mint, maxt]?  Series lock held. */
static bool has_data(const hseries *s, sm_ms_t mint, sm_ms_t maxt) {
    for (uint32_t i = 0; i < s->nch; i++)
        if (s->ch[i].mint <= maxt && s->ch[i].maxt >= mint) return true;
    for (uint32_t i = 0; i < s->ndet; i++)
        if (s->det[i].mint <= maxt && s->det[i].maxt >= mint) return true;
    return open_count(s) && chunk_enc_mint(s->open) <= maxt && chunk_enc_maxt(s->open) >= mint;
}

/* A chunk as select sees it: rank orders by age (detached chunks by export
 * generation, live ones newest of all). */
typedef struct view {
    sm_ms_t mint, maxt;
    const uint8_t *data;
    uint32_t len, count;
    uint32_t rank;
} view;

#define RANK_LIVE UINT32_MAX

/* Copy detached chunk d into the arena without the samples whose times a
 * newer overlapping chunk holds (so the newest value wins).  *keep false
 * when nothing is left. */
static int filter_detached(const head *h, const view *d, const view *all, uint32_t nall, sm_arena *a,
                           tsdb_chunk_ref *out, bool *keep) {
    sm_ms_t *ts, *yts = NULL;
    double *vs, *yvs = NULL;
    int rc = decode_bytes(h, d->data, d->len, d->count, 0, &ts, &vs);
    if (rc) return rc;
    size_t n = d->count;
    for (uint32_t y = 0; y < nall && n && !rc; y++) {
        const view *o = &all[y];
        if (o->rank <= d->rank || o->mint > d->maxt || o->maxt < d->mint) continue;
        rc = decode_bytes(h, o->data, o->len, o->count, 0, &yts, &yvs);
        if (rc) break;
        size_t i = 0, j = 0, k = 0;
        while (i < n) {
            while (j < o->count && yts[j] < ts[i]) j++;
            if (j < o->count && yts[j] == ts[i]) {
                i++;
                continue;
            }
            ts[k] = ts[i];
            vs[k++] = vs[i++];
        }
        n = k;
        sm_free(yts);
        sm_free(yvs);
    }
    *keep = false;
    if (!rc && n) {
        sm_buf b = SM_BUF_INIT;
        uint8_t *copy = NULL;
        rc = chunk_encode(ts, vs, n, &b) ? SM_ENOMEM : 0;
        if (!rc && !(copy = sm_arena_alloc(a, b.len))) rc = SM_ENOMEM;
        if (!rc) {
            memcpy(copy, b.p, b.len);
            *out = (tsdb_chunk_ref){
                .mint = ts[0], .maxt = ts[n - 1], .data = copy, .len = (uint32_t)b.len, .prio = 0};
            *keep = true;
        }
        sm_buf_fini(&b);
    }
    sm_free(ts);
    sm_free(vs);
    return rc;
}

/* The chunk refs of one series overlapping [mint, maxt], copied into the
 * arena and sorted by mint.  Series lock held.  *nout 0: none. */
static int series_chunks(const head *h, hseries *s, sm_ms_t mint, sm_ms_t maxt, uint32_t prio, sm_arena *a,
                         sm_buf *ob, tsdb_chunk_ref **out, uint32_t *nout) {
    uint32_t nall = s->nch + s->ndet + 1;
    view *all = sm_malloc(nall * sizeof *all);
    if (!all) return SM_ENOMEM;
    uint32_t nv = 0;
    bool any = false, det_any = false;
    for (uint32_t i = 0; i < s->nch; i++) {
        const hchunk *c = &s->ch[i];
        all[nv++] = (view){c->mint, c->maxt, c->data, c->len, c->count, RANK_LIVE};
        any |= c->mint <= maxt && c->maxt >= mint;
    }
    for (uint32_t i = 0; i < s->ndet; i++) {
        const hchunk *c = &s->det[i];
        all[nv++] = (view){c->mint, c->maxt, c->data, c->len, c->count, c->gen}; /* 0: oldest */
        bool in = c->mint <= maxt && c->maxt >= mint;
        any |= in;
        det_any |= in;
    }
    int rc = 0;
    uint32_t oc = open_count(s);
    if (oc) {
        sm_buf_clear(ob);
        if (chunk_enc_snapshot(s->open, ob)) rc = SM_ENOMEM; /* a copy: queries need no re-encoding */
        else
            all[nv++] = (view){chunk_enc_mint(s->open), chunk_enc_maxt(s->open), ob->p,
                               (uint32_t)ob->len, oc, RANK_LIVE};
        any |= chunk_enc_mint(s->open) <= maxt && chunk_enc_maxt(s->open) >= mint;
    }
    tsdb_chunk_ref *refs = NULL;
    uint32_t r = 0;
    if (!rc && any && !(refs = sm_arena_alloc(a, nv * sizeof *refs))) rc = SM_ENOMEM;
    for (uint32_t i = 0; i < nv && refs && !rc; i++) {
        const view *c = &all[i];
        if (c->mint > maxt || c->maxt < mint) continue;
        bool clash = false;
        if (det_any && c->rank != RANK_LIVE)
            for (uint32_t y = 0; y < nv && !clash; y++)
                clash = all[y].rank > c->rank && all[y].mint <= c->maxt && all[y].maxt >= c->mint;
        if (clash) {
            bool keep;
            rc = filter_detached(h, c, all, nv, a, &refs[r], &keep);
            if (!rc && keep) refs[r++].prio = prio;
            continue;
        }
        /* A copy, with a copy of its shared column beside it (the column
         * may be gone once the series lock is released); the reader decodes
         * the pair as it does a block's (chunk_decode_ref). */
        const hcol *col = chunk_col(h, c->data, c->len);
        size_t tl = col ? col->len : 0;
        uint8_t *copy = sm_arena_alloc(a, c->len + tl);
        if (!copy) {
            rc = SM_ENOMEM;
            break;
        }
        memcpy(copy, c->data, c->len);
        if (col) memcpy(copy + c->len, col->b, tl);
        refs[r++] = (tsdb_chunk_ref){.mint = c->mint, .maxt = c->maxt, .data = copy, .len = c->len, .prio = prio,
                                     .tcol = col ? copy + c->len : NULL, .tlen = (uint32_t)tl};
    }
    sm_free(all);
    if (rc) return rc;
    /* Detached and live chunks interleave: sort by mint (stable). */
    for (uint32_t x = 1; x < r; x++) {
        tsdb_chunk_ref t = refs[x];
        uint32_t y = x;
        while (y > 0 && refs[y - 1].mint > t.mint) {
            refs[y] = refs[y - 1];
            y--;
        }
        refs[y] = t;
    }
    *out = refs;
    *nout = r;
    return 0;
}

int head_select(head *h, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                uint32_t prio, sm_arena *a, tsdb_sel *out, sm_error *err) {
    pthread_rwlock_rdlock(&h->idx);
    hseries **v;
    size_t n;
    if (match_series(h, ms, nms, &v, &n)) {
        pthread_rwlock_unlock(&h->idx);
        return SM_ERR(err, SM_ENOMEM, "out of memory selecting head series");
    }
    tsdb_sel_series *res = sm_arena_alloc(a, (n ? n : 1) * sizeof *res);
    size_t k = 0;
    int rc = res ? 0 : SM_ENOMEM;
    sm_buf ob = SM_BUF_INIT; /* the open chunk's snapshot */
    for (size_t i = 0; i < n && !rc; i++) {
        hseries *s = v[i];
        tsdb_chunk_ref *refs = NULL;
        uint32_t r = 0;
        pthread_mutex_lock(&s->mu);
        rc = series_chunks(h, s, mint, maxt, prio, a, &ob, &refs, &r);
        pthread_mutex_unlock(&s->mu);
        if (rc || r == 0) continue;
        if (sm_labels_copy(a, &s->ls, &res[k].labels)) {
            rc = SM_ENOMEM;
            break;
        }
        res[k].chunks = refs;
        res[k].nchunks = r;
        k++;
    }
    sm_buf_fini(&ob);
    pthread_rwlock_unlock(&h->idx);
    sm_free(v);
    if (rc == SM_ENOMEM) return SM_ERR(err, rc, "out of memory selecting head series");
    if (rc) return SM_ERR(err, rc, "a head chunk does not decode");
    out->v = res;
    out->n = k;
    return 0;
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names (name == NULL) or values of `name` over matching series with data
 * in the range. */
static int label_list(head *h, const char *name, const sm_matcher *ms, size_t nms, sm_ms_t mint,
                      sm_ms_t maxt, sm_arena *a, const char ***out, size_t *n, sm_error *err) {
    pthread_rwlock_rdlock(&h->idx);
    hseries **v;
    size_t nv;
    if (match_series(h, ms, nms, &v, &nv)) {
        pthread_rwlock_unlock(&h->idx);
        return SM_ERR(err, SM_ENOMEM, "out of memory listing labels");
    }
    strmap seen = {0};
    int rc = 0;
    for (size_t i = 0; i < nv && !rc; i++) {
        hseries *s = v[i];
        pthread_mutex_lock(&s->mu);
        bool data = has_data(s, mint, maxt);
        pthread_mutex_unlock(&s->mu);
        if (!data) continue;
        for (uint32_t k = 0; k < s->ls.n; k++) {
            const char *str;
            if (name) {
                if (strcmp(s->ls.v[k].name, name) != 0) continue;
                str = s->ls.v[k].value;
            } else {
                str = s->ls.v[k].name;
            }
            bool created;
            if (!strmap_put(&seen, str, strlen(str), &created)) rc = SM_ENOMEM;
        }
    }
    const char **res = rc ? NULL : sm_arena_alloc(a, (seen.n ? seen.n : 1) * sizeof *res);
    size_t k = 0;
    if (res) {
        for (size_t i = 0; i < seen.nb; i++)
            for (sm_entry *e = seen.b[i]; e; e = e->next) {
                res[k] = sm_arena_strdup(a, e->key);
                if (!res[k]) rc = SM_ENOMEM;
                k++;
            }
        if (!rc && k) qsort(res, k, sizeof *res, cmp_cstr);
    } else {
        rc = SM_ENOMEM;
    }
    strmap_clear(&seen, NULL);
    pthread_rwlock_unlock(&h->idx);
    sm_free(v);
    if (rc) return SM_ERR(err, rc, "out of memory listing labels");
    *out = res;
    *n = k;
    return 0;
}

int head_label_names(head *h, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                     sm_arena *a, const char ***names, size_t *n, sm_error *err) {
    return label_list(h, NULL, ms, nms, mint, maxt, a, names, n, err);
}

int head_label_values(head *h, const char *name, const sm_matcher *ms, size_t nms,
                      sm_ms_t mint, sm_ms_t maxt, sm_arena *a, const char ***values, size_t *n,
                      sm_error *err) {
    return label_list(h, name, ms, nms, mint, maxt, a, values, n, err);
}

/* ---- export and truncate ---- */

/* Insert detached chunk c back into the live data (undoing an export),
 * merged with live samples that arrived for its span meanwhile: those are
 * newer and win on equal times.  Takes c's bytes.  Series lock held. */
static int restore_chunk(head *h, hseries *s, hchunk c) {
    c.gen = 0;
    int rc = 0;
    if (open_count(s) && chunk_enc_mint(s->open) <= c.maxt && (rc = seal(h, s)) != 0) return rc;
    uint32_t i = first_ending_at_or_after(s, c.mint), j = i;
    while (j < s->nch && s->ch[j].mint <= c.maxt) j++;
    if (i < j) {
        /* Merge c with chunks [i, j): all of one window (L3), sorted. */
        size_t total = c.count;
        for (uint32_t k = i; k < j; k++) total += s->ch[k].count;
        sm_ms_t *ts = sm_malloc(total * 2 * sizeof *ts);
        double *vs = sm_malloc(total * 2 * sizeof *vs);
        sm_ms_t *ct = NULL;
        double *cv = NULL;
        hchunk *parts = NULL;
        size_t nl = 0, n = 0, nparts = 0;
        rc = ts && vs ? decode_bytes(h, c.data, c.len, c.count, 0, &ct, &cv) : SM_ENOMEM;
        for (uint32_t k = i; k < j && !rc; k++) { /* live samples, after room for the result */
            sm_ms_t *kt;
            double *kv;
            rc = decode_bytes(h, s->ch[k].data, s->ch[k].len, s->ch[k].count, 0, &kt, &kv);
            if (rc) break;
            memcpy(ts + total + nl, kt, s->ch[k].count * sizeof *ts);
            memcpy(vs + total + nl, kv, s->ch[k].count * sizeof *vs);
            nl += s->ch[k].count;
            sm_free(kt);
            sm_free(kv);
        }
        if (!rc) {
            const sm_ms_t *lt = ts + total;
            const double *lv = vs + total;
            size_t a = 0, b = 0;
            while (a < c.count || b < nl) {
                if (b >= nl || (a < c.count && ct[a] < lt[b])) {
                    ts[n] = ct[a];
                    vs[n++] = cv[a++];
                } else {
                    if (a < c.count && ct[a] == lt[b]) a++; /* the live one wins */
                    ts[n] = lt[b];
                    vs[n++] = lv[b++];
                }
            }
            uint32_t max = h->o.chunk_max_samples;
            nparts = (n + max - 1) / max;
            parts = sm_calloc(nparts, sizeof *parts);
            rc = parts ? reserve(&s->ch, s->nch, &s->capch, (uint32_t)nparts) : SM_ENOMEM;
            for (size_t p = 0, off = 0; p < nparts && !rc; p++) {
                size_t len = (n - off) / (nparts - p);
                rc = encode_into(h, &parts[p], ts + off, vs + off, len);
                off += len;
            }
        }
        if (!rc) {
            for (uint32_t k = i; k < j; k++) chunk_bytes_free(h, s->ch[k].data, s->ch[k].len);
            chunk_bytes_free(h, c.data, c.len);
            memmove(&s->ch[i + nparts], &s->ch[j], (s->nch - j) * sizeof *s->ch);
            memcpy(&s->ch[i], parts, nparts * sizeof *parts);
            s->nch = s->nch - (j - i) + (uint32_t)nparts;
        } else if (parts) {
            for (size_t p = 0; p < nparts; p++) chunk_bytes_free(h, parts[p].data, parts[p].len);
        }
        sm_free(parts);
        sm_free(ts);
        sm_free(vs);
        sm_free(ct);
        sm_free(cv);
        if (!rc) return 0;
        /* Out of memory: keep the data, overlapping (reads still resolve
         * it, newest last on a tie) rather than lose it. */
        i = j;
    }
    if (reserve(&s->ch, s->nch, &s->capch, 1)) return SM_ENOMEM;
    memmove(&s->ch[i + 1], &s->ch[i], (s->nch - i) * sizeof *s->ch);
    s->ch[i] = c;
    s->nch++;
    return 0;
}

/* Put the chunks export `gen` detached back into the live data; gen 0:
 * retry the ones an earlier undo could not put back for lack of memory
 * (they stay detached with gen 0, readable as the oldest data, and are
 * never freed by truncate).  Returns how many are still waiting. */
static uint32_t undo_export(head *h, hseries *s, uint32_t gen) {
    uint32_t k = 0, waiting = 0;
    for (uint32_t i = 0; i < s->ndet; i++) {
        hchunk c = s->det[i];
        if (c.gen == gen) {
            if (restore_chunk(h, s, c) == 0) continue;
            c.gen = 0;
        }
        waiting += c.gen == 0;
        s->det[k++] = c;
    }
    s->ndet = k;
    return waiting;
}

int head_export(head *h, sm_ms_t maxt, head_export_fn fn, void *ctx, sm_ms_t *mint_out,
                sm_error *err) {
    pthread_mutex_lock(&h->export_mu);
    uint32_t gen = ++h->export_gen;
    if (gen == 0) gen = h->export_gen = 1; /* 0 marks live chunks */
    pthread_rwlock_rdlock(&h->idx);
    hseries **v;
    size_t n;
    int rc = match_series(h, NULL, 0, &v, &n) ? SM_ENOMEM : 0;
    pthread_rwlock_unlock(&h->idx);
    if (rc) {
        pthread_mutex_unlock(&h->export_mu);
        return SM_ERR(err, rc, "out of memory exporting the head");
    }
    /* Series pointers stay valid without idx: only head_truncate frees
     * series, and it takes export_mu. */
    sm_ms_t mint = SM_MS_MAX;
    tsdb_chunk_ref *refs = NULL;
    uint32_t caprefs = 0;
    size_t done = 0; /* series whose chunks this export detached */
    for (size_t i = 0; i < n && !rc; i++) {
        hseries *s = v[i];
        pthread_mutex_lock(&s->mu);
        if (s->ndet && undo_export(h, s, 0)) rc = SM_ENOMEM; /* an earlier undo's leftovers */
        if (!rc && open_count(s) && chunk_enc_maxt(s->open) < maxt && seal(h, s)) rc = SM_ENOMEM;
        /* The chunks ending before maxt: a prefix, by L1. */
        uint32_t cnt = first_ending_at_or_after(s, maxt);
        if (!rc && cnt > caprefs) {
            tsdb_chunk_ref *nr = sm_realloc(refs, cnt * sizeof *nr);
            if (nr) {
                refs = nr;
                caprefs = cnt;
            } else {
                rc = SM_ENOMEM;
            }
        }
        if (!rc && cnt) rc = reserve(&s->det, s->ndet, &s->capdet, cnt);
        if (rc) {
            pthread_mutex_unlock(&s->mu);
            SM_ERR(err, rc, "out of memory exporting the head");
            break;
        }
        for (uint32_t c = 0; c < cnt; c++) {
            hchunk ch = s->ch[c];
            ch.gen = gen;
            s->det[s->ndet++] = ch;
            /* The bytes (and their column, C1) stay put until truncate (L4),
             * so the writer may read them without the series lock. */
            const hcol *col = chunk_col(h, ch.data, ch.len);
            refs[c] = (tsdb_chunk_ref){.mint = ch.mint, .maxt = ch.maxt, .data = ch.data, .len = ch.len,
                                       .prio = 0, .tcol = col ? col->b : NULL, .tlen = col ? col->len : 0};
            if (ch.mint < mint) mint = ch.mint;
        }
        if (cnt) memmove(s->ch, s->ch + cnt, (s->nch - cnt) * sizeof *s->ch);
        s->nch -= cnt;
        pthread_mutex_unlock(&s->mu);
        done = i + 1;
        if (cnt) {
            rc = fn(ctx, &s->ls, refs, cnt);
            if (rc && !(err && err->code)) SM_ERR(err, rc, "writing exported series failed");
        }
    }
    if (rc) {
        /* Undo: nothing stays detached by this export. */
        size_t waiting = 0;
        for (size_t i = 0; i < done; i++) {
            pthread_mutex_lock(&v[i]->mu);
            waiting += undo_export(h, v[i], gen);
            pthread_mutex_unlock(&v[i]->mu);
        }
        if (waiting)
            sm_log(SM_LOG_ERROR, "head", "out of memory undoing an export; retried at the next cut",
                   "chunks=%zu", waiting);
    }
    sm_free(refs);
    sm_free(v);
    pthread_mutex_unlock(&h->export_mu);
    if (!rc && mint_out) *mint_out = mint;
    return rc;
}

static int rebuild_postings(head *h) {
    strmap_clear(&h->postings, posting_free);
    strmap_clear(&h->names, nv_free);
    for (size_t i = 0; i < h->nbyref; i++)
        if (h->byref[i] && index_series(h, h->byref[i])) return SM_ENOMEM;
    return 0;
}

int head_truncate(head *h) {
    pthread_mutex_lock(&h->export_mu);
    pthread_rwlock_wrlock(&h->idx);
    size_t dropped = 0;
    for (size_t i = 0; i < h->nbyref; i++) {
        hseries *s = h->byref[i];
        if (!s) continue;
        /* idx held for writing: no append or read is inside this series. */
        uint32_t k = 0;
        for (uint32_t c = 0; c < s->ndet; c++) {
            if (s->det[c].gen) chunk_bytes_free(h, s->det[c].data, s->det[c].len);
            else s->det[k++] = s->det[c]; /* an undone export's, not yet back */
        }
        s->ndet = k;
        if (k) undo_export(h, s, 0);
        if (!s->ndet) {
            sm_free(s->det);
            s->det = NULL;
            s->capdet = 0;
        }
        if (s->nch || s->ndet || open_count(s)) continue;
        h->byref[i] = NULL;
        h->nseries--;
        series_free(h, s);
        dropped++;
    }
    if (dropped) { /* T2: the table again, from the series that are left */
        memset(h->tab, 0, h->ntab * sizeof *h->tab);
        for (size_t i = 0; i < h->nbyref; i++)
            if (h->byref[i]) tab_put(h->tab, h->ntab, h->byref[i]);
    }
    if (dropped && rebuild_postings(h))
        sm_log(SM_LOG_ERROR, "head", "out of memory rebuilding postings; selects may miss series",
               "series=%zu", h->nseries);
    pthread_rwlock_unlock(&h->idx);
    pthread_mutex_unlock(&h->export_mu);
    return 0;
}

void head_get_stats(head *h, head_stats *out) {
    memset(out, 0, sizeof *out);
    out->mint = SM_MS_MAX;
    out->maxt = SM_MS_MIN;
    pthread_rwlock_rdlock(&h->idx);
    out->series = h->nseries;
    uint64_t bytes = sizeof *h + h->ntab * sizeof *h->tab + h->nbyref * sizeof *h->byref;
    for (size_t i = 0; i < h->nbyref; i++) {
        hseries *s = h->byref[i];
        if (!s) continue;
        pthread_mutex_lock(&s->mu);
        bytes += sizeof *s + s->ls.n * sizeof *s->ls.v + (s->capch + s->capdet) * sizeof(hchunk);
        for (int list = 0; list < 2; list++) {
            const hchunk *v = list ? s->det : s->ch;
            uint32_t nv = list ? s->ndet : s->nch;
            for (uint32_t c = 0; c < nv; c++) {
                out->chunks++;
                out->samples += v[c].count;
                out->sealed_samples += v[c].count;
                bytes += v[c].len;
                out->chunk_bytes += v[c].len;
                out->sealed_bytes += v[c].len;
                if (v[c].mint < out->mint) out->mint = v[c].mint;
                if (v[c].maxt > out->maxt) out->maxt = v[c].maxt;
            }
        }
        if (s->open) {
            bytes += chunk_enc_mem_bytes(s->open);
            out->chunk_bytes += chunk_enc_stream_bytes(s->open);
            uint32_t cnt = chunk_enc_count(s->open);
            if (cnt) {
                out->chunks++;
                out->samples += cnt;
                if (chunk_enc_mint(s->open) < out->mint) out->mint = chunk_enc_mint(s->open);
                if (chunk_enc_maxt(s->open) > out->maxt) out->maxt = chunk_enc_maxt(s->open);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    /* Symbols and index, roughly: entries, keys and postings arrays. */
    bytes += h->syms.nb * sizeof(sm_entry *) + h->syms.n * (sizeof(sm_entry) + 16);
    bytes += h->postings.nb * sizeof(sm_entry *) +
             h->postings.n * (sizeof(sm_entry) + sizeof(posting) + 24);
    for (size_t b = 0; b < h->postings.nb; b++)
        for (sm_entry *e = h->postings.b[b]; e; e = e->next)
            bytes += ((posting *)e->val)->cap * sizeof(uint64_t);
    /* Shared time columns: their bytes are sample bytes, counted once;
     * the table around them is not. */
    pthread_mutex_lock(&h->cols.mu);
    const coltab *t = &h->cols;
    out->shared_columns = t->ncols;
    out->chunk_bytes += t->bytes;
    out->sealed_bytes += t->bytes;
    bytes += t->bytes + (uint64_t)t->ncols * HCOL_HEADER + (uint64_t)t->nbucket * sizeof *t->bucket +
             (uint64_t)t->capfree * sizeof *t->freeids + (uint64_t)t->npages * HCOL_PAGE * sizeof(hcol *);
    pthread_mutex_unlock(&h->cols.mu);
    pthread_rwlock_unlock(&h->idx);
    out->bytes = bytes;
}
